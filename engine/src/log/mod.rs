//! The partition log: Kafka's on-disk layout, written by one I/O thread per topic.
//!
//! `<data_dir>/<topic>-<partition>/` holds segments named by their base offset (20 digits): `.log`
//! (batches back to back), `.index` (sparse offset -> position) and `.timeindex` (sparse timestamp ->
//! offset), preallocated and trimmed on roll, exactly as a Kafka broker keeps them, so Kafka's tools
//! read them. [`TopicLog::append`] queues a finished batch for the I/O thread ([`io_thread`]), which
//! assigns offsets, writes through the chosen [`io`](crate::io) backend, group-commits fsyncs by
//! flush.messages, and calls back. Opening a log recovers it (torn tails cut, indexes rebuilt).

mod config;
mod index;
mod io_thread;
mod notify;
mod partition;
mod pipeline;
mod producer_state;
mod reader;
mod recovery;
mod retention;
mod segment;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use config::LogConfig;
use crossbeam_channel::Sender;
use io_thread::{IoThread, Request, now_ms};
use notify::DataNotify;
use partition::PartitionLog;

use crate::error::{Error, Result};
use crate::io::{IoBackendKind, Waker, backend};

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

/// The partitions of one topic and the thread that writes them. Thread-safe.
#[derive(Debug)]
pub struct TopicLog {
    topic: String,
    dir: PathBuf,
    partitions: Arc<[Mutex<PartitionLog>]>,
    requests: Sender<Request>,
    thread: Mutex<Option<JoinHandle<()>>>,
    backend: IoBackendKind,
    closed: AtomicBool,
    waker: Arc<Waker>,
    stats: Arc<Counters>,
    notify: Arc<DataNotify>,
}

impl std::fmt::Debug for IoThread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IoThread").finish_non_exhaustive()
    }
}

impl TopicLog {
    /// Opens (creating or recovering) `partitions` partitions of `topic` under `data_dir`.
    pub fn open(data_dir: &Path, topic: &str, partitions: u32, config: LogConfig) -> Result<TopicLog> {
        if partitions == 0 {
            return Err(Error::config("partitions", "must be at least 1"));
        }
        if topic.is_empty() || topic.contains('/') || topic == "." || topic == ".." {
            return Err(Error::config("topic", format!("`{topic}` is not a valid topic name")));
        }
        if config.index_interval_bytes == 0 || config.segment_bytes < 1024 {
            return Err(Error::config(
                "segment.bytes",
                "segment.bytes must be at least 1024 and index.interval.bytes at least 1",
            ));
        }
        let now = now_ms();
        let logs = (0..partitions)
            .map(|p| {
                let name = format!("{topic}-{p}");
                PartitionLog::open(data_dir.join(&name), name, config.clone(), now).map(Mutex::new)
            })
            .collect::<Result<Vec<_>>>()?;
        let partitions_arc: Arc<[Mutex<PartitionLog>]> = logs.into();
        let backend = backend(config.io);
        let kind = backend.kind();
        let waker = Arc::new(Waker::new().map_err(|e| Error::io("create eventfd", data_dir, e))?);
        let (tx, rx) = crossbeam_channel::unbounded();
        let stats = Arc::new(Counters::default());
        let notify = Arc::new(DataNotify::default());
        let io = IoThread {
            notify: Arc::clone(&notify),
            stats: Arc::clone(&stats),
            partitions: Arc::clone(&partitions_arc),
            backend,
            requests: rx,
            waker: Arc::clone(&waker),
            flush_messages: config.flush_messages,
            flush_ms: config.flush_ms,
            retention_check: Duration::from_millis(config.log_retention_check_interval_ms.max(1)),
            direct: config.direct_io && kind != IoBackendKind::Discard,
        };
        let thread = std::thread::Builder::new()
            .name(format!("kbench-log-{topic}"))
            .spawn(move || io.run())
            .map_err(|e| Error::io("spawn log I/O thread", data_dir, e))?;
        Ok(TopicLog {
            topic: topic.to_string(),
            dir: data_dir.to_path_buf(),
            partitions: partitions_arc,
            requests: tx,
            thread: Mutex::new(Some(thread)),
            backend: kind,
            closed: AtomicBool::new(false),
            waker,
            stats,
            notify,
        })
    }

    /// Number of partitions.
    pub fn partitions(&self) -> u32 {
        self.partitions.len() as u32
    }

    /// The topic's name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Queues a complete RecordBatch v2 (CRC computed; baseOffset and partitionLeaderEpoch are set
    /// by the log, as a broker does). Never blocks on I/O; `done` runs once, on the I/O thread.
    pub fn append(&self, partition: u32, batch: Vec<u8>, done: AppendCallback) {
        if self.closed.load(Ordering::Acquire) {
            done(Err(Error::Closed { what: format!("log {}", self.topic) }), batch);
            return;
        }
        if let Err(crossbeam_channel::SendError(Request::Append { batch, done, .. })) =
            self.requests.send(Request::Append { partition, batch, done, enqueued: Instant::now() })
        {
            done(Err(Error::Closed { what: format!("log {}", self.topic) }), batch);
            return;
        }
        self.waker.notify();
    }

    /// Blocks until everything appended before the call is written and fsynced.
    pub fn flush(&self) -> Result<()> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.requests.send(Request::Flush(tx)).map_err(|_| Error::Closed { what: format!("log {}", self.topic) })?;
        self.waker.notify();
        rx.recv().map_err(|_| Error::Closed { what: format!("log {}", self.topic) })?
    }

    /// Writes and fsyncs what was queued, trims the active indexes and stops the I/O thread. Later
    /// appends fail with [`Error::Closed`]. Idempotent.
    pub fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let _ = self.requests.send(Request::Close);
        self.waker.notify();
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            h.join().map_err(|_| Error::io("join log I/O thread", &self.dir, std::io::Error::other("panicked")))?;
        }
        Ok(())
    }

    fn partition(&self, partition: u32) -> Result<std::sync::MutexGuard<'_, PartitionLog>> {
        let p = self
            .partitions
            .get(partition as usize)
            .ok_or(Error::UnknownPartition { partition, partitions: self.partitions() })?;
        Ok(p.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Whole batches from the one holding `fetch_offset` (at least one, then up to `max_bytes`), only
    /// from what is written. Empty at or past the high watermark.
    pub fn read(&self, partition: u32, fetch_offset: i64, max_bytes: usize) -> Result<FetchData> {
        let log = self.partition(partition)?;
        if self.backend == IoBackendKind::Discard {
            return Ok(FetchData { bytes: Vec::new(), first_offset: fetch_offset, high_watermark: log.high_watermark });
        }
        let (bytes, first_offset) = log.read(fetch_offset, max_bytes)?;
        Ok(FetchData { bytes, first_offset, high_watermark: log.high_watermark })
    }

    /// Offset of the first batch with a timestamp at or after `timestamp_ms`, if any.
    pub fn offset_for_timestamp(&self, partition: u32, timestamp_ms: i64) -> Result<Option<i64>> {
        self.partition(partition)?.offset_for_timestamp(timestamp_ms)
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
        self.partition(partition).map_or(0, |l| l.log_start_offset)
    }

    /// Offset after the last written batch.
    pub fn log_end_offset(&self, partition: u32) -> i64 {
        self.partition(partition).map_or(0, |l| l.high_watermark)
    }

    /// The backend in use (pwrite when io_uring was unavailable).
    pub fn io_backend(&self) -> IoBackendKind {
        self.backend
    }

    /// The partition's directory.
    pub fn dir(&self, partition: u32) -> PathBuf {
        self.dir.join(format!("{}-{partition}", self.topic))
    }

    /// Counters of the I/O thread's work so far.
    pub fn io_stats(&self) -> IoStats {
        IoStats {
            writes: self.stats.writes.load(Ordering::Relaxed),
            bytes_written: self.stats.bytes.load(Ordering::Relaxed),
            fsyncs: self.stats.fsyncs.load(Ordering::Relaxed),
            wakeups: self.waker.wakes.load(Ordering::Relaxed),
        }
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

impl Drop for TopicLog {
    fn drop(&mut self) {
        let _ = self.close();
    }
}
