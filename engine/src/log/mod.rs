//! The partition log: Kafka's on-disk layout, written by one I/O thread per replica, replicated as a
//! Kafka cluster replicates it.
//!
//! `<data_dir>/<topic>-<partition>/` holds segments named by their base offset (20 digits): `.log`
//! (batches back to back), `.index` (sparse offset -> position) and `.timeindex` (sparse timestamp ->
//! offset), in Kafka's formats, so Kafka's tools read them (index files are created when first
//! written: at roll, or at close when they hold entries). Only each partition's active segment
//! holds a descriptor (`descriptors.rs`).
//! [`TopicLog::append`] queues a finished batch for the I/O thread ([`io_thread`]), which
//! assigns offsets, writes through the chosen [`io`](crate::io) backend, group-commits fsyncs by
//! flush.messages, and calls back. Opening a log recovers it (torn tails cut, indexes rebuilt).
//! With replication.factor > 1 each replica is a [`local`] log under `<data_dir>/broker-<id>/` and
//! [`replication`] keeps followers, the ISR and the high watermark.

mod config;
mod descriptors;
mod disk_faults;
#[cfg(test)]
mod failstop_tests;
mod index;
mod io_thread;
mod local;
mod notify;
mod offline;
mod partition;
mod pipeline;
mod producer_state;
mod reader;
#[cfg(test)]
mod reader_tests;
mod recovery;
mod replication;
mod retention;
#[cfg(test)]
mod seam_tests;
mod segment;
#[cfg(test)]
mod sim_tests;
mod truncation;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use config::LogConfig;
pub use descriptors::{descriptor_limit, open_descriptors, raise_descriptor_limit};
use local::LocalLog;
use notify::DataNotify;
pub use replication::ReplicaStatus;
use replication::Replication;

use crate::error::{Error, Result};
use crate::io::IoBackendKind;
use crate::io::storage::{FsStorage, Storage};

/// Called once per appended batch on the I/O thread with the outcome and the batch's buffer back.
pub type AppendCallback = Box<dyn FnOnce(Result<AppendOutcome>, Vec<u8>) + Send>;

/// Where an appended batch landed, and what it waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Offset of the batch's first record.
    pub base_offset: i64,
    /// Offset of its last record.
    pub last_offset: i64,
    /// The log's append time under LogAppendTime, else -1 (CreateTime).
    pub log_append_time_ms: i64,
    /// An exact duplicate of a recent batch of the same producer: acknowledged, not appended.
    pub duplicate: bool,
    /// From `append` to the write's completion.
    pub write_ns: u64,
    /// The fsync the batch waited for (0 when none was due).
    pub sync_ns: u64,
}

/// Bytes read from a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchData {
    /// Whole batches, as stored.
    pub bytes: Vec<u8>,
    /// baseOffset of the first batch (may be below the requested offset).
    pub first_offset: i64,
    /// Offset after the last written batch.
    pub high_watermark: i64,
}

/// What an append waits for before its callback runs (the sender maps Kafka's acks onto it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequiredAcks {
    /// The leader's write (acks=0 and acks=1).
    Leader,
    /// Every in-sync replica's write (acks=all).
    AllInSync,
}

/// A topic's partitions, replicated or not: the engine's log. Thread-safe.
pub struct TopicLog {
    /// Broker 0 first; one entry without replication.
    replicas: Vec<Arc<LocalLog>>,
    replication: Option<Replication>,
    topic_dir: PathBuf,
    notify: Arc<DataNotify>,
    /// With `io: sim`, each broker's modelled disk (see [`disk_faults`]); empty otherwise.
    disks: Vec<Arc<crate::io::powercut::PowerCut>>,
}

impl std::fmt::Debug for TopicLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicLog")
            .field("dir", &self.topic_dir)
            .field("replicas", &self.replicas.len())
            .finish_non_exhaustive()
    }
}

impl TopicLog {
    /// Opens (creating or recovering) `partitions` partitions of `topic` under `data_dir`: directly
    /// there without replication, else one `broker-<id>/` directory per replica.
    pub fn open(data_dir: &Path, topic: &str, partitions: u32, config: LogConfig) -> Result<TopicLog> {
        let io = config.io;
        let disks = disk_faults::disks(data_dir, &config);
        let mut log = Self::open_with_backends(data_dir, topic, partitions, config, &|b| {
            crate::io::backend(io, disks.get(b as usize))
        })?;
        log.disks = disks;
        Ok(log)
    }

    /// [`TopicLog::open`] with each broker's I/O backend made by `backend(broker)` (tests inject
    /// faults here).
    pub(crate) fn open_with_backends(
        data_dir: &Path,
        topic: &str,
        partitions: u32,
        config: LogConfig,
        backend: &dyn Fn(u32) -> Box<dyn crate::io::Backend>,
    ) -> Result<TopicLog> {
        let fs = |_: u32| -> Arc<dyn Storage> { Arc::new(FsStorage::new()) };
        Self::open_on(data_dir, topic, partitions, config, &fs, backend)
    }

    /// [`TopicLog::open_with_backends`] with each broker's files on `storage(broker)` (the
    /// simulation test's in-memory disk).
    pub(crate) fn open_on(
        data_dir: &Path,
        topic: &str,
        partitions: u32,
        config: LogConfig,
        storage: &dyn Fn(u32) -> Arc<dyn Storage>,
        backend: &dyn Fn(u32) -> Box<dyn crate::io::Backend>,
    ) -> Result<TopicLog> {
        let rf = config.replication_factor;
        if rf == 0 {
            return Err(Error::config("replication.factor", "must be at least 1"));
        }
        if config.min_insync_replicas == 0 {
            return Err(Error::config("min.insync.replicas", "must be at least 1"));
        }
        descriptors::check_fits(topic, partitions, rf)?;
        let notify = Arc::new(DataNotify::default());
        if rf == 1 {
            let local =
                LocalLog::open(data_dir, topic, partitions, config, Arc::clone(&notify), storage(0), backend(0))?;
            return Ok(TopicLog {
                replicas: vec![Arc::new(local)],
                replication: None,
                topic_dir: data_dir.to_path_buf(),
                notify,
                disks: Vec::new(),
            });
        }
        let writes = Arc::new(DataNotify::default());
        let replicas = (0..rf)
            .map(|b| {
                let dir = data_dir.join(format!("broker-{b}"));
                LocalLog::open(&dir, topic, partitions, config.clone(), Arc::clone(&writes), storage(b), backend(b))
                    .map(Arc::new)
            })
            .collect::<Result<Vec<_>>>()?;
        let replication = Replication::start(
            topic,
            replicas.clone(),
            writes,
            Arc::clone(&notify),
            config.min_insync_replicas,
            Duration::from_millis(config.replica_lag_time_max_ms),
            config.unclean_leader_election_enable,
        )?;
        Ok(TopicLog {
            replicas,
            replication: Some(replication),
            topic_dir: data_dir.to_path_buf(),
            notify,
            disks: Vec::new(),
        })
    }

    fn leader(&self) -> &LocalLog {
        &self.replicas[0]
    }

    /// Number of partitions.
    pub fn partitions(&self) -> u32 {
        self.leader().partitions()
    }

    /// The topic's name.
    pub fn topic(&self) -> &str {
        self.leader().topic()
    }

    /// Queues a complete RecordBatch v2 (CRC computed; baseOffset and partitionLeaderEpoch are set
    /// by the log, as a leader does) and calls `done` once the leader wrote it. Never blocks on I/O.
    pub fn append(&self, partition: u32, batch: Vec<u8>, done: AppendCallback) {
        self.append_with(partition, batch, RequiredAcks::Leader, done);
    }

    /// [`append`](Self::append), calling `done` when `acks` is met: with replication and
    /// [`RequiredAcks::AllInSync`], once the high watermark passes the batch, or with
    /// [`Error::NotEnoughReplicas`] when the ISR is below min.insync.replicas.
    pub fn append_with(&self, partition: u32, batch: Vec<u8>, acks: RequiredAcks, done: AppendCallback) {
        match &self.replication {
            None => self.leader().append(partition, batch, done),
            Some(r) => r.append(partition, batch, acks == RequiredAcks::AllInSync, done),
        }
    }

    /// [`append_with`](Self::append_with) of several batches (each partition's in their order), in
    /// one hand-off to the leader's I/O thread when there is no replication.
    pub fn append_many_with(&self, appends: Vec<(u32, Vec<u8>, AppendCallback)>, acks: RequiredAcks) {
        match &self.replication {
            None => self.leader().append_many(appends),
            Some(r) => {
                for (partition, batch, done) in appends {
                    r.append(partition, batch, acks == RequiredAcks::AllInSync, done);
                }
            }
        }
    }

    /// Blocks until everything appended before the call is written and fsynced on every replica.
    pub fn flush(&self) -> Result<()> {
        let mut first = Ok(());
        for r in &self.replicas {
            let outcome = r.flush();
            if first.is_ok() {
                first = outcome;
            }
        }
        first
    }

    /// Stops the fetchers (failing appends still waiting for the ISR), writes and fsyncs what was
    /// queued, and stops the I/O threads. Later appends fail with [`Error::Closed`]. Idempotent.
    pub fn close(&self) -> Result<()> {
        if let Some(r) = &self.replication {
            r.shutdown();
        }
        let mut first = Ok(());
        for r in &self.replicas {
            let outcome = r.close();
            if first.is_ok() {
                first = outcome;
            }
        }
        first
    }

    /// Whole batches from the one holding `fetch_offset` (at least one, then up to `max_bytes`), only
    /// from what is written and, with replication, below the high watermark, from the leader. Empty
    /// at or past the high watermark, and while the partition has no leader.
    pub fn read(&self, partition: u32, fetch_offset: i64, max_bytes: usize) -> Result<FetchData> {
        match &self.replication {
            None => self.leader().read(partition, fetch_offset, max_bytes, i64::MAX),
            Some(r) => match r.read_view(partition)? {
                (Some(leader), hw) => self.replicas[leader].read(partition, fetch_offset, max_bytes, hw),
                (None, hw) => Ok(FetchData { bytes: Vec::new(), first_offset: fetch_offset, high_watermark: hw }),
            },
        }
    }

    fn current_leader(&self, partition: u32) -> &LocalLog {
        let leader = self.replication.as_ref().and_then(|r| r.read_view(partition).ok()).and_then(|v| v.0);
        &self.replicas[leader.unwrap_or(0)]
    }

    /// Offset of the first batch with a timestamp at or after `timestamp_ms`, if any.
    pub fn offset_for_timestamp(&self, partition: u32, timestamp_ms: i64) -> Result<Option<i64>> {
        self.current_leader(partition).offset_for_timestamp(partition, timestamp_ms)
    }

    /// A number that changes whenever newly written data becomes readable (any partition); pass it
    /// to [`wait_for_data`](Self::wait_for_data).
    pub fn data_seq(&self) -> u64 {
        self.notify.seq()
    }

    /// Blocks until data written after `seen` (a [`data_seq`](Self::data_seq) value) is readable, or
    /// `deadline`; returns the current sequence. Consumers' `poll` waits here.
    pub fn wait_for_data(&self, seen: u64, deadline: Instant) -> u64 {
        self.notify.wait(seen, deadline)
    }

    /// First offset still in the log (retention moves it).
    pub fn log_start_offset(&self, partition: u32) -> i64 {
        self.current_leader(partition).log_start_offset(partition)
    }

    /// Offset after the last readable batch: the log end without replication, the high watermark
    /// with it.
    pub fn log_end_offset(&self, partition: u32) -> i64 {
        match &self.replication {
            None => self.leader().log_end_offset(partition),
            Some(r) => r.read_view(partition).map_or(0, |v| v.1),
        }
    }

    /// The backend in use (pwrite when io_uring was unavailable).
    pub fn io_backend(&self) -> IoBackendKind {
        self.leader().io_backend()
    }

    /// The partition's directory (the current leader's).
    pub fn dir(&self, partition: u32) -> PathBuf {
        self.current_leader(partition).dir(partition)
    }

    /// Counters of the I/O threads' work so far, summed over replicas.
    pub fn io_stats(&self) -> IoStats {
        self.replicas.iter().map(|r| r.io_stats()).fold(IoStats::default(), |a, b| IoStats {
            writes: a.writes + b.writes,
            bytes_written: a.bytes_written + b.bytes_written,
            fsyncs: a.fsyncs + b.fsyncs,
            wakeups: a.wakeups + b.wakeups,
        })
    }

    /// replication.factor.
    pub fn replication_factor(&self) -> u32 {
        self.replicas.len() as u32
    }

    /// Leader, epoch, ISR, high watermark and every replica's end offset (`None` without replication).
    pub fn replica_status(&self, partition: u32) -> Result<Option<ReplicaStatus>> {
        self.replication.as_ref().map(|r| r.status(partition)).transpose()
    }

    fn replicated(&self) -> Result<&Replication> {
        self.replication
            .as_ref()
            .ok_or_else(|| Error::config("replication.factor", "replica faults need replication.factor > 1"))
    }

    /// Fault: broker `broker` stops (no fetching, no leading; partitions it led elect a new leader).
    pub fn stop_broker(&self, broker: u32) -> Result<()> {
        self.replicated()?.stop_broker(broker)
    }

    /// Fault: broker `broker` returns (cutting back diverged records, then following or leading).
    pub fn start_broker(&self, broker: u32) -> Result<()> {
        self.replicated()?.start_broker(broker)
    }

    /// Fault: broker `broker` waits `delay` before each fetch (zero: back to normal).
    pub fn set_fetch_delay(&self, broker: u32, delay: Duration) -> Result<()> {
        self.replicated()?.set_fetch_delay(broker, delay)
    }

    /// min.insync.replicas (1 without replication).
    pub fn min_insync_replicas(&self) -> u32 {
        self.replication.as_ref().map_or(1, Replication::min_insync_replicas)
    }
}

impl Drop for TopicLog {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// What the I/O thread did, for benchmarks and tests (group commit: `fsyncs` against appends).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IoStats {
    /// Write operations submitted (each a coalesced run of batches, or an O_DIRECT chunk).
    pub writes: u64,
    /// Bytes those writes carried (O_DIRECT padding included).
    pub bytes_written: u64,
    /// fdatasync operations submitted (one per file per group commit).
    pub fsyncs: u64,
    /// Times an append had to wake the I/O thread out of a wait in the ring (an eventfd write).
    pub wakeups: u64,
}

/// The I/O thread's counters behind [`IoStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub writes: std::sync::atomic::AtomicU64,
    pub bytes: std::sync::atomic::AtomicU64,
    pub fsyncs: std::sync::atomic::AtomicU64,
}
