//! Replication in process, as a Kafka cluster does it for one topic: replication.factor replicas
//! (brokers 0..RF), each a [`LocalLog`] in its own directory with its own I/O thread, so every copy
//! is real I/O. Broker 0 is every partition's preferred leader. Each follower broker runs a fetcher
//! thread ([`fetcher`]) that reads from the leaders and appends as a follower; the leader's
//! [`PartitionState`] tracks the ISR and the high watermark, completes acks=all appends when the
//! high watermark passes them and refuses them (NotEnoughReplicas) when the ISR is smaller than
//! min.insync.replicas. An ISR thread drops followers that have not caught up for
//! replica.lag.time.max.ms. Faults: a broker can be slowed (fetch delay), stopped and restarted;
//! stopping a leader elects a new one (clean, or unclean when allowed), and returning replicas cut
//! their logs back to where the leader's history agrees (leader epochs, KIP-101).

mod fetcher;
mod state;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use self::state::{PartitionState, Ready};
use super::local::LocalLog;
use super::notify::DataNotify;
use super::{AppendCallback, AppendOutcome};
use crate::error::{Error, Result};

/// A partition's replication as seen from outside (tests, the harness's reports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaStatus {
    /// The leading broker, `None` while the partition is offline.
    pub leader: Option<u32>,
    /// The current leader epoch (bumped by every election).
    pub leader_epoch: i32,
    /// The in-sync replicas' broker ids.
    pub isr: Vec<u32>,
    /// Offset below which every ISR member has the records (what consumers see).
    pub high_watermark: i64,
    /// Each broker's log end offset, by broker id.
    pub log_end_offsets: Vec<i64>,
}

/// What the replicas, the fetchers and the ISR thread share.
pub(crate) struct Shared {
    pub brokers: Vec<Arc<LocalLog>>,
    pub states: Vec<Mutex<PartitionState>>,
    pub alive: Vec<AtomicBool>,
    pub fetch_delay_ns: Vec<AtomicU64>,
    /// Bumped by every replica's writes: fetchers wait on it.
    pub writes: Arc<DataNotify>,
    /// Bumped when a high watermark moves: consumers wait on it.
    pub hw_moved: Arc<DataNotify>,
    pub shutdown: AtomicBool,
    pub lag: Duration,
    pub unclean: bool,
}

impl Shared {
    pub(crate) fn state(&self, partition: u32) -> MutexGuard<'_, PartitionState> {
        self.states[partition as usize].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs decided deliveries (outside every lock) and wakes consumers when the HW may have moved.
    pub(crate) fn finish(&self, ready: Vec<Ready>, hw_before: i64, hw_after: i64) {
        for r in ready {
            r.run();
        }
        if hw_after != hw_before {
            self.hw_moved.bump();
        }
    }

    fn ends(&self, partition: u32) -> Vec<i64> {
        self.brokers.iter().map(|b| b.log_end_offset(partition)).collect()
    }

    fn alive_now(&self) -> Vec<bool> {
        self.alive.iter().map(|a| a.load(Ordering::Acquire)).collect()
    }

    /// Broker `b` stops fetching and leading (a stop, or its log directory went offline): it leaves
    /// every ISR and partitions it led elect a new leader. False when it was already down.
    fn broker_down(&self, b: usize) -> bool {
        if !self.alive[b].swap(false, Ordering::AcqRel) {
            return false;
        }
        let alive = self.alive_now();
        for p in 0..self.states.len() as u32 {
            let ends = self.ends(p);
            let mut ready = Vec::new();
            let (before, after, elected) = {
                let mut st = self.state(p);
                let before = st.hw;
                let elected = st.replica_failed(b, &alive, &ends, self.unclean, Instant::now(), &mut ready);
                (before, st.hw, elected)
            };
            self.stamp_epoch(p, elected);
            self.finish(ready, before, after);
        }
        self.writes.bump();
        true
    }

    /// Brokers whose log directory went offline since the last look go down, as Kafka's controller
    /// moves leadership off a broker that reported a failed log dir and shrinks the ISRs.
    fn take_failed_disks_down(&self) {
        for b in 0..self.brokers.len() {
            if self.brokers[b].is_offline() && self.broker_down(b) {
                log::error!("broker {b}: its log directory is offline; it leaves the ISR and gives up leadership");
            }
        }
    }

    fn stamp_epoch(&self, partition: u32, elected: Option<(usize, i32)>) {
        if let Some((leader, epoch)) = elected
            && let Err(e) = self.brokers[leader].set_leader_epoch(partition, epoch)
        {
            log::warn!("partition {partition}: stamping leader epoch {epoch}: {e}");
        }
    }
}

/// The replicas of one topic and their threads.
pub(crate) struct Replication {
    pub shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    min_isr: u32,
}

impl Replication {
    /// Starts a fetcher per broker (each follows the partitions it does not lead) and the ISR thread over `brokers` (already open).
    pub(crate) fn start(
        topic: &str,
        brokers: Vec<Arc<LocalLog>>,
        writes: Arc<DataNotify>,
        hw_moved: Arc<DataNotify>,
        min_isr: u32,
        lag: Duration,
        unclean: bool,
    ) -> Result<Replication> {
        let partitions = brokers[0].partitions();
        let now = Instant::now();
        let states = (0..partitions)
            .map(|p| {
                let ends: Vec<i64> = brokers.iter().map(|b| b.log_end_offset(p)).collect();
                Mutex::new(PartitionState::new(format!("{topic}-{p}"), brokers.len(), min_isr, &ends, now))
            })
            .collect();
        let shared = Arc::new(Shared {
            alive: brokers.iter().map(|_| AtomicBool::new(true)).collect(),
            fetch_delay_ns: brokers.iter().map(|_| AtomicU64::new(0)).collect(),
            brokers,
            states,
            writes,
            hw_moved,
            shutdown: AtomicBool::new(false),
            lag,
            unclean,
        });
        let mut threads = Vec::new();
        for follower in 0..shared.brokers.len() {
            let s = Arc::clone(&shared);
            threads.push(
                std::thread::Builder::new()
                    .name(format!("kbench-fetcher-{follower}"))
                    .spawn(move || fetcher::run(&s, follower))
                    .map_err(|e| Error::io("spawn replica fetcher", "", e))?,
            );
        }
        let s = Arc::clone(&shared);
        threads.push(
            std::thread::Builder::new()
                .name("kbench-isr".into())
                .spawn(move || isr_checks(&s))
                .map_err(|e| Error::io("spawn ISR thread", "", e))?,
        );
        Ok(Replication { shared, threads: Mutex::new(threads), min_isr })
    }

    /// Appends on the leader; `done` runs when the batch is acknowledged as `acks_all` requires.
    pub(crate) fn append(&self, partition: u32, batch: Vec<u8>, acks_all: bool, done: AppendCallback) {
        let Some(state) = self.shared.states.get(partition as usize) else {
            let partitions = self.shared.states.len() as u32;
            done(Err(Error::UnknownPartition { partition, partitions }), batch);
            return;
        };
        let admitted = state.lock().unwrap_or_else(|p| p.into_inner()).admit(acks_all);
        let (leader, epoch) = match admitted {
            Ok(le) => le,
            Err(e) => return done(Err(e), batch),
        };
        let shared = Arc::clone(&self.shared);
        self.shared.brokers[leader].append(
            partition,
            batch,
            Box::new(move |outcome: Result<AppendOutcome>, buffer: Vec<u8>| {
                let mut ready = Vec::new();
                let (before, after) = {
                    let mut st = shared.state(partition);
                    let before = st.hw;
                    st.leader_written(leader, epoch, acks_all, Ready::new(done, outcome, buffer), &mut ready);
                    (before, st.hw)
                };
                shared.finish(ready, before, after);
            }),
        );
    }

    /// The leader to read from and the high watermark reads stop at.
    pub(crate) fn read_view(&self, partition: u32) -> Result<(Option<usize>, i64)> {
        let st = self
            .shared
            .states
            .get(partition as usize)
            .ok_or(Error::UnknownPartition { partition, partitions: self.shared.states.len() as u32 })?;
        let st = st.lock().unwrap_or_else(|p| p.into_inner());
        Ok((st.leader, st.hw))
    }

    pub(crate) fn status(&self, partition: u32) -> Result<ReplicaStatus> {
        let (leader, leader_epoch, isr, high_watermark) = {
            let st = self
                .shared
                .states
                .get(partition as usize)
                .ok_or(Error::UnknownPartition { partition, partitions: self.shared.states.len() as u32 })?;
            let st = st.lock().unwrap_or_else(|p| p.into_inner());
            (st.leader.map(|l| l as u32), st.epoch, st.isr_ids(), st.hw)
        };
        Ok(ReplicaStatus { leader, leader_epoch, isr, high_watermark, log_end_offsets: self.shared.ends(partition) })
    }

    fn check_broker(&self, broker: u32) -> Result<usize> {
        let b = broker as usize;
        if b >= self.shared.brokers.len() {
            return Err(Error::config(
                "replica",
                format!("broker {broker} does not exist (replication.factor is {})", self.shared.brokers.len()),
            ));
        }
        Ok(b)
    }

    /// Broker `broker` stops: it no longer fetches or leads; partitions it led elect a new leader.
    pub(crate) fn stop_broker(&self, broker: u32) -> Result<()> {
        let b = self.check_broker(broker)?;
        self.shared.broker_down(b);
        Ok(())
    }

    /// Broker `broker` comes back: it leads offline partitions it may lead, and follows the rest
    /// (cutting back any records the current leader's history does not have). A broker whose log
    /// directory went offline cannot come back ([`Error::KafkaStorage`]); reopening the log does.
    pub(crate) fn start_broker(&self, broker: u32) -> Result<()> {
        let b = self.check_broker(broker)?;
        if self.shared.alive[b].load(Ordering::Acquire) {
            return Ok(());
        }
        self.shared.brokers[b].check_online()?;
        for p in 0..self.shared.states.len() as u32 {
            let end = self.shared.brokers[b].log_end_offset(p);
            let elected = self.shared.state(p).replica_started(b, end, self.shared.unclean, Instant::now());
            self.shared.stamp_epoch(p, elected);
        }
        self.shared.alive[b].store(true, Ordering::Release);
        self.shared.writes.bump();
        Ok(())
    }

    /// Broker `broker` comes back after a restart (its log reopened, possibly without its unflushed
    /// tail): it is out of every ISR another replica leads, until it has caught up, then starts as
    /// [`Replication::start_broker`] does.
    pub(crate) fn start_broker_after_restart(&self, broker: u32) -> Result<()> {
        let b = self.check_broker(broker)?;
        for p in 0..self.shared.states.len() as u32 {
            let end = self.shared.brokers[b].log_end_offset(p);
            let mut ready = Vec::new();
            let (before, after) = {
                let mut st = self.shared.state(p);
                let before = st.hw;
                st.replica_restarted(b, end, &mut ready);
                (before, st.hw)
            };
            self.shared.finish(ready, before, after);
        }
        self.start_broker(broker)
    }

    /// Adds `delay` before each of `broker`'s fetches (a slow follower); zero removes it.
    pub(crate) fn set_fetch_delay(&self, broker: u32, delay: Duration) -> Result<()> {
        let b = self.check_broker(broker)?;
        self.shared.fetch_delay_ns[b].store(delay.as_nanos() as u64, Ordering::Release);
        Ok(())
    }

    /// Stops the threads and fails appends still waiting for the ISR.
    pub(crate) fn shutdown(&self) {
        self.shared.shutdown.store(true, Ordering::Release);
        self.shared.writes.bump();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for t in threads {
            let _ = t.join();
        }
        let closed = Error::Closed { what: "replicated log".into() };
        for p in 0..self.shared.states.len() as u32 {
            let mut ready = Vec::new();
            self.shared.state(p).fail_pending(&closed, &mut ready);
            self.shared.finish(ready, 0, 0);
        }
    }

    pub(crate) fn min_insync_replicas(&self) -> u32 {
        self.min_isr
    }
}

/// Kafka's isr-expiration task: every replica.lag.time.max.ms / 2, followers not caught up for
/// replica.lag.time.max.ms leave the ISR. Every 20 ms at most it also takes brokers whose log
/// directory went offline down.
fn isr_checks(shared: &Shared) {
    let period = (shared.lag / 2).max(Duration::from_millis(1));
    let mut next = Instant::now() + period;
    while !shared.shutdown.load(Ordering::Acquire) {
        shared.take_failed_disks_down();
        let now = Instant::now();
        if now < next {
            std::thread::sleep((next - now).min(Duration::from_millis(20)));
            continue;
        }
        next = now + period;
        for p in 0..shared.states.len() as u32 {
            let mut ready = Vec::new();
            let (before, after) = {
                let mut st = shared.state(p);
                let before = st.hw;
                st.shrink_isr(now, shared.lag, &mut ready);
                (before, st.hw)
            };
            shared.finish(ready, before, after);
        }
    }
}
