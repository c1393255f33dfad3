//! Disk faults on a log opened with `io: sim` (the harness's `power-loss`, `fsync-failure`,
//! `disk-full` and `slow-disk`): each broker writes through its own modelled disk
//! ([`crate::io::powercut`]), and these calls play a fault on it.
//!
//! A power loss of some brokers: their disks stop taking writes at once, they stop as in a crash
//! (with replication they leave the ISR and partitions they led elect a new leader, clean unless
//! unclean.leader.election.enable), the model drops what no fdatasync made durable, each broker
//! reopens its log (recovery: torn tails cut by CRC, indexes rebuilt) and starts again. A restarted
//! broker stays out of the ISR until it has caught up with the leader, as Kafka's controller keeps
//! a broker that came back from an unclean shutdown out of it; a partition left without a leader
//! (every broker lost power) is led again by the first broker back that the ISR still names (Kafka
//! keeps the last member in the ISR), so every replica then cuts its log back to the new leader's.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::{LogConfig, TopicLog};
use crate::error::{Error, Result};
use crate::io::IoBackendKind;
use crate::io::powercut::PowerCut;

/// Each broker's modelled disk when `config.io` is `sim` (rooted at the broker's directory), else none.
pub(super) fn disks(data_dir: &Path, config: &LogConfig) -> Vec<Arc<PowerCut>> {
    if config.io != IoBackendKind::Sim {
        return Vec::new();
    }
    let rf = config.replication_factor.max(1);
    (0..rf)
        .map(|b| {
            let root: PathBuf = if rf == 1 { data_dir.to_path_buf() } else { data_dir.join(format!("broker-{b}")) };
            Arc::new(PowerCut::new(&root))
        })
        .collect()
}

impl TopicLog {
    fn disk(&self, broker: u32) -> Result<&Arc<PowerCut>> {
        if self.disks.is_empty() {
            return Err(Error::config("io", "disk faults need the simulated disk: io: sim"));
        }
        self.disks.get(broker as usize).ok_or_else(|| {
            Error::config(
                "broker",
                format!("broker {broker} does not exist (brokers 0 to {})", self.disks.len().saturating_sub(1)),
            )
        })
    }

    /// Fault (`io: sim`): `brokers` lose power at once (see the module docs); `seed` picks which
    /// unsynced sectors reached the disk. Returns when they have recovered and started again.
    pub fn power_loss(&self, brokers: &[u32], seed: u64) -> Result<()> {
        for &b in brokers {
            self.disk(b)?.cut();
        }
        if let Some(r) = &self.replication {
            for &b in brokers {
                r.stop_broker(b)?;
            }
        }
        for &b in brokers {
            let disk = Arc::clone(self.disk(b)?);
            let cause = Error::io(
                "power loss",
                self.replicas[b as usize].dir(0),
                std::io::Error::other("the broker lost power"),
            );
            let backend = crate::io::backend(IoBackendKind::Sim, Some(&disk));
            self.replicas[b as usize].restart(cause, backend, &|| disk.power_loss(seed ^ u64::from(b)))?;
        }
        if let Some(r) = &self.replication {
            for &b in brokers {
                r.start_broker_after_restart(b)?;
            }
        }
        Ok(())
    }

    /// Fault's end (`io: sim`): broker `broker` restarts as after a process crash (the page cache
    /// survives), running recovery; how a broker whose log directory went offline comes back.
    pub fn restart_broker(&self, broker: u32) -> Result<()> {
        let disk = Arc::clone(self.disk(broker)?);
        if let Some(r) = &self.replication {
            r.stop_broker(broker)?;
        }
        let log = &self.replicas[broker as usize];
        let cause = Error::io("restart", log.dir(0), std::io::Error::other("the broker restarts"));
        log.restart(cause, crate::io::backend(IoBackendKind::Sim, Some(&disk)), &|| {})?;
        if let Some(r) = &self.replication {
            r.start_broker_after_restart(broker)?;
        }
        Ok(())
    }

    /// Fault (`io: sim`): the next fdatasync on `broker`'s disk fails with EIO (Linux semantics:
    /// its dirty pages are dropped); the log directory goes offline (fail-stop).
    pub fn fail_next_fsync(&self, broker: u32) -> Result<()> {
        self.disk(broker)?.fail_sync(1);
        Ok(())
    }

    /// Fault (`io: sim`): while `full`, every write to `broker`'s disk fails with ENOSPC.
    pub fn set_disk_full(&self, broker: u32, full: bool) -> Result<()> {
        self.disk(broker)?.set_full(full);
        Ok(())
    }

    /// Fault (`io: sim`): every write and fdatasync on `broker`'s disk first waits `delay` (zero:
    /// back to normal).
    pub fn set_disk_latency(&self, broker: u32, delay: Duration) -> Result<()> {
        self.disk(broker)?.set_latency(delay);
        Ok(())
    }

    /// Whether `broker`'s log directory is offline after a storage error.
    pub fn broker_offline(&self, broker: u32) -> bool {
        self.replicas.get(broker as usize).is_some_and(|r| r.is_offline())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CompressionType;
    use crate::log::{AppendOutcome, RequiredAcks};
    use crate::record::{BatchBuilder, BatchIter};

    fn append(log: &TopicLog, value: &str) -> Result<AppendOutcome> {
        let mut b = BatchBuilder::new(CompressionType::None);
        b.append(1_000, None, Some(value.as_bytes()), &[]);
        let (tx, rx) = crossbeam_channel::bounded(1);
        let done = Box::new(move |r, _| {
            let _ = tx.send(r);
        });
        log.append_with(0, b.build(0).expect("build"), RequiredAcks::AllInSync, done);
        rx.recv().expect("the callback runs once")
    }

    fn values(log: &TopicLog) -> Vec<String> {
        let data = log.read(0, 0, usize::MAX).expect("read");
        let mut out = Vec::new();
        for b in BatchIter::new(&data.bytes, 0) {
            for r in b.expect("whole batch").records().expect("records").iter() {
                out.push(String::from_utf8_lossy(r.expect("record").value.unwrap_or_default()).into_owned());
            }
        }
        out
    }

    fn sim(rf: u32, flush_messages: Option<u64>) -> LogConfig {
        LogConfig {
            io: IoBackendKind::Sim,
            flush_messages,
            replication_factor: rf,
            min_insync_replicas: rf.min(2),
            ..LogConfig::default()
        }
    }

    /// Whether every replica of partition 0 comes to end at `end` in the ISR (looked at up to 6,000
    /// times, 5 ms apart: a generous bound for a loaded host, not a speed requirement).
    fn converged(log: &TopicLog, end: i64) -> bool {
        for _ in 0..6000 {
            let s = log.replica_status(0).expect("status").expect("replicated");
            if s.leader.is_some() && s.log_end_offsets.iter().all(|&e| e == end) && s.isr.len() == 3 {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    #[test]
    fn a_power_loss_keeps_what_flush_messages_1_made_durable_and_the_broker_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let log = TopicLog::open(dir.path(), "t", 1, sim(1, Some(1))).unwrap();
        assert_eq!(log.io_backend(), IoBackendKind::Sim);
        for i in 0..5 {
            append(&log, &format!("v{i}")).unwrap();
        }
        log.power_loss(&[0], 1).unwrap();
        assert_eq!(values(&log), ["v0", "v1", "v2", "v3", "v4"]);
        assert_eq!(append(&log, "after").unwrap().base_offset, 5, "the restarted broker appends on");
    }

    #[test]
    fn every_broker_losing_power_without_fsync_loses_what_was_acknowledged_and_the_replicas_agree_again() {
        let dir = tempfile::tempdir().unwrap();
        let log = TopicLog::open(dir.path(), "t", 1, sim(3, None)).unwrap();
        // Values of 2 KiB: a batch spans sectors, so a torn run of kept sectors cannot hold them all.
        let big = "x".repeat(2048);
        for _ in 0..20 {
            append(&log, &big).unwrap();
        }
        let epoch = log.replica_status(0).unwrap().unwrap().leader_epoch;
        log.power_loss(&[0, 1, 2], 7).unwrap();
        let s = log.replica_status(0).unwrap().unwrap();
        assert!(s.leader.is_some() && s.leader_epoch > epoch, "the ISR's last member leads again: {s:?}");
        let kept = log.log_end_offset(0);
        assert!(kept < 20, "nothing was fsynced, yet {kept} of 20 acknowledged records survived");
        assert!(converged(&log, kept), "the replicas cut back to the leader's end and rejoined the ISR");
        let o = append(&log, "after").unwrap();
        assert_eq!(o.base_offset, kept, "appends go on from the new leader's end");
        assert!(converged(&log, kept + 1));
    }

    #[test]
    fn one_broker_losing_power_loses_nothing_the_isr_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let log = TopicLog::open(dir.path(), "t", 1, sim(3, None)).unwrap();
        for i in 0..10 {
            append(&log, &format!("v{i}")).unwrap();
        }
        log.power_loss(&[0], 3).unwrap(); // the leader
        let s = log.replica_status(0).unwrap().unwrap();
        assert_ne!(s.leader, Some(0), "leadership moved: {s:?}");
        assert!(!s.isr.contains(&0), "the restarted broker is out of the ISR until caught up: {s:?}");
        append(&log, "v10").unwrap();
        let expected: Vec<String> = (0..11).map(|i| format!("v{i}")).collect();
        assert_eq!(values(&log), expected);
        assert!(converged(&log, 11), "broker 0 caught up and rejoined");
    }

    #[test]
    fn disk_faults_need_the_simulated_disk_and_an_existing_broker() {
        let dir = tempfile::tempdir().unwrap();
        let log = TopicLog::open(dir.path(), "t", 1, LogConfig { io: IoBackendKind::Pwrite, ..LogConfig::default() })
            .unwrap();
        let e = log.power_loss(&[0], 1).unwrap_err().to_string();
        assert!(e.contains("io: sim"), "{e}");
        let log = TopicLog::open(&dir.path().join("s"), "t", 1, sim(1, None)).unwrap();
        assert!(log.set_disk_full(1, true).unwrap_err().to_string().contains("broker 1 does not exist"));
    }
}
