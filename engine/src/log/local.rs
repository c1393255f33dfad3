//! One broker's log of a topic: the partitions' [`PartitionLog`]s and the [`IoThread`] that writes
//! them. [`TopicLog`](super::TopicLog) puts one (no replication) or one per replica in front of it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::io_thread::{IoThread, Request, now_ms};
use super::notify::DataNotify;
use super::offline::LogDirHealth;
use super::partition::PartitionLog;
use super::{AppendCallback, Counters, FetchData, IoStats, LogConfig};
use crate::error::{Error, Result};
use crate::io::storage::Storage;
use crate::io::{Backend, IoBackendKind, Waker};

/// One broker's copy of a topic: its partitions' logs and the I/O thread that writes them.
/// Thread-safe. With replication there is one per replica (broker), each in its own directory.
#[derive(Debug)]
pub(crate) struct LocalLog {
    topic: String,
    dir: PathBuf,
    partitions: Arc<[Mutex<PartitionLog>]>,
    requests: Sender<Request>,
    /// The channel's receiving end, kept so that a restarted I/O thread takes over the same queue
    /// (dropped on close, so that later sends fail).
    receiver: Mutex<Option<Receiver<Request>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    backend: IoBackendKind,
    closed: AtomicBool,
    waker: Arc<Waker>,
    stats: Arc<Counters>,
    health: Arc<LogDirHealth>,
    config: LogConfig,
    notify: Arc<DataNotify>,
    /// Where the partitions' files live: the real filesystem, or a simulated disk (tests).
    storage: Arc<dyn Storage>,
}

/// What an I/O thread is started with.
struct IoParts<'a> {
    topic: &'a str,
    dir: &'a Path,
    partitions: &'a Arc<[Mutex<PartitionLog>]>,
    requests: Receiver<Request>,
    waker: &'a Arc<Waker>,
    stats: &'a Arc<Counters>,
    health: &'a Arc<LogDirHealth>,
    config: &'a LogConfig,
    notify: &'a Arc<DataNotify>,
}

fn spawn_io(parts: IoParts<'_>, backend: Box<dyn Backend>) -> Result<JoinHandle<()>> {
    let kind = backend.kind();
    let io = IoThread {
        notify: Arc::clone(parts.notify),
        stats: Arc::clone(parts.stats),
        partitions: Arc::clone(parts.partitions),
        backend,
        requests: parts.requests,
        waker: Arc::clone(parts.waker),
        flush_messages: parts.config.flush_messages,
        flush_ms: parts.config.flush_ms,
        retention_check: Duration::from_millis(parts.config.log_retention_check_interval_ms.max(1)),
        direct: parts.config.direct_io && kind != IoBackendKind::Discard,
        health: Arc::clone(parts.health),
        ack_before_sync: parts.config.planted_ack_before_sync(),
    };
    std::thread::Builder::new()
        .name(format!("kbench-log-{}", parts.topic))
        .spawn(move || io.run())
        .map_err(|e| Error::io("spawn log I/O thread", parts.dir, e))
}

/// Opens every partition of `topic` under `data_dir` (recovering what is there).
fn open_partitions(
    storage: &Arc<dyn Storage>,
    data_dir: &Path,
    topic: &str,
    partitions: u32,
    config: &LogConfig,
) -> Result<Vec<PartitionLog>> {
    let now = now_ms();
    (0..partitions)
        .map(|p| {
            let name = format!("{topic}-{p}");
            PartitionLog::open(Arc::clone(storage), data_dir.join(&name), name, config.clone(), now)
        })
        .collect()
}

impl std::fmt::Debug for IoThread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IoThread").finish_non_exhaustive()
    }
}

impl LocalLog {
    /// Opens (creating or recovering) `partitions` partitions of `topic` under `data_dir` on
    /// `storage`, written through `backend`; `notify` is bumped whenever a write makes data readable.
    pub(crate) fn open(
        data_dir: &Path,
        topic: &str,
        partitions: u32,
        config: LogConfig,
        notify: Arc<DataNotify>,
        storage: Arc<dyn Storage>,
        backend: Box<dyn Backend>,
    ) -> Result<LocalLog> {
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
        let logs: Vec<Mutex<PartitionLog>> =
            open_partitions(&storage, data_dir, topic, partitions, &config)?.into_iter().map(Mutex::new).collect();
        let partitions_arc: Arc<[Mutex<PartitionLog>]> = logs.into();
        let kind = backend.kind();
        let health = Arc::new(LogDirHealth::new(data_dir.to_path_buf()));
        let waker = Arc::new(Waker::new().map_err(|e| Error::io("create eventfd", data_dir, e))?);
        let (tx, rx) = crossbeam_channel::unbounded();
        let stats = Arc::new(Counters::default());
        let parts = IoParts {
            topic,
            dir: data_dir,
            partitions: &partitions_arc,
            requests: rx.clone(),
            waker: &waker,
            stats: &stats,
            health: &health,
            config: &config,
            notify: &notify,
        };
        let thread = spawn_io(parts, backend)?;
        Ok(LocalLog {
            topic: topic.to_string(),
            dir: data_dir.to_path_buf(),
            partitions: partitions_arc,
            requests: tx,
            receiver: Mutex::new(Some(rx)),
            thread: Mutex::new(Some(thread)),
            backend: kind,
            closed: AtomicBool::new(false),
            waker,
            stats,
            health,
            config,
            notify,
            storage,
        })
    }

    /// A restart of this broker (after a power loss, the caller has cut its disk first, so that
    /// nothing more becomes durable or acknowledged): the I/O thread stops (what it still holds
    /// fails through the disk's errors, or is written as a crash would leave it), the directory is
    /// offline with `cause` (reads fail) while `between` runs (the disk model drops what was not
    /// durable), every partition is opened again (recovery, as after any unclean shutdown) and a
    /// new I/O thread writes through `backend`. Appends sent after the old thread stopped wait in
    /// the queue for the new one.
    pub(crate) fn restart(&self, cause: Error, backend: Box<dyn Backend>, between: &dyn Fn()) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed { what: format!("log {}", self.topic) });
        }
        // The thread must see Close online or through its own errors: an outside offline mark
        // would leave batches waiting for an fsync that is then never started unanswered.
        let _ = self.requests.send(Request::Close);
        self.waker.notify();
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            h.join().map_err(|_| Error::io("join log I/O thread", &self.dir, std::io::Error::other("panicked")))?;
        }
        self.health.fail(cause);
        // `between` may rewrite files: reads holding views of them start again (`reader.rs`).
        for slot in self.partitions.iter() {
            slot.lock().unwrap_or_else(|p| p.into_inner()).generation = super::reader::next_generation();
        }
        between();
        let reopened = open_partitions(&self.storage, &self.dir, &self.topic, self.partitions(), &self.config)?;
        for (slot, log) in self.partitions.iter().zip(reopened) {
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = log;
        }
        let receiver = self.receiver.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let receiver = receiver.ok_or_else(|| Error::Closed { what: format!("log {}", self.topic) })?;
        self.health.revive();
        let parts = IoParts {
            topic: &self.topic,
            dir: &self.dir,
            partitions: &self.partitions,
            requests: receiver,
            waker: &self.waker,
            stats: &self.stats,
            health: &self.health,
            config: &self.config,
            notify: &self.notify,
        };
        *self.thread.lock().unwrap_or_else(|p| p.into_inner()) = Some(spawn_io(parts, backend)?);
        Ok(())
    }

    /// Whether the log directory went offline after a storage error (see `offline.rs`).
    pub(crate) fn is_offline(&self) -> bool {
        self.health.is_offline()
    }

    /// `Ok` while the directory is online, else its [`Error::KafkaStorage`].
    pub(crate) fn check_online(&self) -> Result<()> {
        self.health.check()
    }

    /// Number of partitions.
    pub(crate) fn partitions(&self) -> u32 {
        self.partitions.len() as u32
    }

    /// The topic's name.
    pub(crate) fn topic(&self) -> &str {
        &self.topic
    }

    /// Queues a complete RecordBatch v2 (CRC computed; baseOffset and partitionLeaderEpoch are set
    /// by the log, as a leader does). Never blocks on I/O; `done` runs once, on the I/O thread.
    pub(crate) fn append(&self, partition: u32, batch: Vec<u8>, done: AppendCallback) {
        self.send_append(partition, batch, false, done);
    }

    /// [`append`](Self::append) of several batches at once (a sender's drain), placed in this order:
    /// one message to the I/O thread, and at most one wake-up, for all of them.
    pub(crate) fn append_many(&self, appends: Vec<(u32, Vec<u8>, AppendCallback)>) {
        let refuse = |appends: Vec<(u32, Vec<u8>, AppendCallback)>| {
            for (_, batch, done) in appends {
                done(Err(Error::Closed { what: format!("log {}", self.topic) }), batch);
            }
        };
        if self.closed.load(Ordering::Acquire) {
            refuse(appends);
            return;
        }
        if let Err(crossbeam_channel::SendError(Request::Appends { appends, .. })) =
            self.requests.send(Request::Appends { appends, enqueued: Instant::now() })
        {
            refuse(appends);
            return;
        }
        self.waker.notify();
    }

    /// Queues a batch fetched from the leader, as a follower appends it: its baseOffset must be this
    /// log's next offset and its stamps (leader epoch, LogAppendTime) are kept.
    pub(crate) fn append_as_follower(&self, partition: u32, batch: Vec<u8>, done: AppendCallback) {
        self.send_append(partition, batch, true, done);
    }

    fn send_append(&self, partition: u32, batch: Vec<u8>, follower: bool, done: AppendCallback) {
        if self.closed.load(Ordering::Acquire) {
            done(Err(Error::Closed { what: format!("log {}", self.topic) }), batch);
            return;
        }
        if let Err(crossbeam_channel::SendError(Request::Append { batch, done, .. })) =
            self.requests.send(Request::Append { partition, batch, done, enqueued: Instant::now(), follower })
        {
            done(Err(Error::Closed { what: format!("log {}", self.topic) }), batch);
            return;
        }
        self.waker.notify();
    }

    /// Cuts the partition back to `offset` (a follower dropping records its new leader does not
    /// have): whole batches from the first at or after `offset` go, indexes are rebuilt. Waits until
    /// everything appended before the call is written.
    pub(crate) fn truncate(&self, partition: u32, offset: i64) -> Result<()> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.requests
            .send(Request::Truncate { partition, offset, reply: tx })
            .map_err(|_| Error::Closed { what: format!("log {}", self.topic) })?;
        self.waker.notify();
        rx.recv().map_err(|_| Error::Closed { what: format!("log {}", self.topic) })?
    }

    /// The partitionLeaderEpoch this log stamps on batches it appends as leader from now on.
    pub(crate) fn set_leader_epoch(&self, partition: u32, epoch: i32) -> Result<()> {
        self.partition(partition)?.leader_epoch = epoch;
        Ok(())
    }

    /// Blocks until everything appended before the call is written and fsynced.
    pub(crate) fn flush(&self) -> Result<()> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.requests.send(Request::Flush(tx)).map_err(|_| Error::Closed { what: format!("log {}", self.topic) })?;
        self.waker.notify();
        rx.recv().map_err(|_| Error::Closed { what: format!("log {}", self.topic) })?
    }

    /// Writes and fsyncs what was queued, trims the active indexes and stops the I/O thread. Later
    /// appends fail with [`Error::Closed`]. Idempotent.
    pub(crate) fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let _ = self.requests.send(Request::Close);
        self.waker.notify();
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        // Later sends fail (the channel has no receiver left) instead of waiting for a thread.
        self.receiver.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            h.join().map_err(|_| Error::io("join log I/O thread", &self.dir, std::io::Error::other("panicked")))?;
        }
        Ok(())
    }

    fn partition(&self, partition: u32) -> Result<std::sync::MutexGuard<'_, PartitionLog>> {
        Ok(self.slot(partition)?.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn slot(&self, partition: u32) -> Result<&Mutex<PartitionLog>> {
        self.partitions
            .get(partition as usize)
            .ok_or(Error::UnknownPartition { partition, partitions: self.partitions() })
    }

    /// Whole batches from the one holding `fetch_offset` (at least one, then up to `max_bytes`), only
    /// from what is written and below `limit` (the replicated high watermark; `i64::MAX` for none).
    /// Empty at or past either. The partition's lock is not held across the disk reads
    /// (`reader.rs`), so a slow read never stalls the I/O thread's commits.
    pub(crate) fn read(&self, partition: u32, fetch_offset: i64, max_bytes: usize, limit: i64) -> Result<FetchData> {
        self.health.check()?;
        let slot = self.slot(partition)?;
        if self.backend == IoBackendKind::Discard {
            let end = slot.lock().unwrap_or_else(|e| e.into_inner()).high_watermark.min(limit);
            return Ok(FetchData { bytes: Vec::new(), first_offset: fetch_offset, high_watermark: end });
        }
        super::reader::read(slot, fetch_offset, max_bytes, limit, &|| self.health.check())
    }

    /// Runs `f` on partition `partition` under its lock (tests).
    #[cfg(test)]
    pub(crate) fn with_partition<R>(&self, partition: u32, f: impl FnOnce(&mut PartitionLog) -> R) -> R {
        f(&mut self.partition(partition).expect("partition"))
    }

    /// Offset of the first batch with a timestamp at or after `timestamp_ms`, if any (disk reads
    /// without the partition's lock, as [`LocalLog::read`]).
    pub(crate) fn offset_for_timestamp(&self, partition: u32, timestamp_ms: i64) -> Result<Option<i64>> {
        super::reader::offset_for_timestamp(self.slot(partition)?, timestamp_ms, &|| self.health.check())
    }

    /// partitionLeaderEpoch of the partition's last batch (-1 when empty).
    pub(crate) fn last_epoch(&self, partition: u32) -> i32 {
        self.partition(partition).map_or(-1, |l| l.last_epoch)
    }

    /// First offset still in the log (retention moves it).
    pub(crate) fn log_start_offset(&self, partition: u32) -> i64 {
        self.partition(partition).map_or(0, |l| l.log_start_offset)
    }

    /// Offset after the last written batch.
    pub(crate) fn log_end_offset(&self, partition: u32) -> i64 {
        self.partition(partition).map_or(0, |l| l.high_watermark)
    }

    /// The backend in use (pwrite when io_uring was unavailable).
    pub(crate) fn io_backend(&self) -> IoBackendKind {
        self.backend
    }

    /// The partition's directory.
    pub(crate) fn dir(&self, partition: u32) -> PathBuf {
        self.dir.join(format!("{}-{partition}", self.topic))
    }

    /// Counters of the I/O thread's work so far.
    pub(crate) fn io_stats(&self) -> IoStats {
        IoStats {
            writes: self.stats.writes.load(Ordering::Relaxed),
            bytes_written: self.stats.bytes.load(Ordering::Relaxed),
            fsyncs: self.stats.fsyncs.load(Ordering::Relaxed),
            wakeups: self.waker.wakes.load(Ordering::Relaxed),
        }
    }
}

impl Drop for LocalLog {
    fn drop(&mut self) {
        let _ = self.close();
    }
}
