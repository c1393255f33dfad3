//! The log's I/O thread: the only thread that writes a topic's partitions.
//!
//! Its loop:
//! 1. take every queued request (up to [`MAX_ROUND`]) and place each append in its partition
//!    (offsets, file position, rolls) — in O_DIRECT mode also copy it into the segment's stage;
//! 2. submit writes for everything placed (see [`pipeline`](super::pipeline)): on io_uring they all go
//!    to the kernel in one `io_uring_enter` and stay in flight while the thread goes on;
//! 3. reap completions; batches whose writes (and every write before them) completed become
//!    readable, in offset order, and are acknowledged — unless flush.messages made an fsync due:
//!    then they wait for the next fdatasync of their partition's files (group commit: one fsync,
//!    started after their writes completed, covers every batch written before it; at most one is in
//!    flight per partition, and batches written meanwhile wait for the next);
//! 4. run flush.ms and retention when due;
//! 5. sleep: on the channel when nothing is in flight; in the ring (woken by a completion, by an
//!    append through the eventfd [`Waker`], or by the next timer) when something is.
//!
//! Visibility follows Kafka's UnifiedLog.append: a batch whose append makes a flush due becomes
//! readable (the high watermark passes it) only when the fsync covering it succeeded, and is
//! acknowledged then; batches behind it wait with it.
//!
//! Fail-stop ([`offline`](super::offline)): the first failed write, fsync or file operation takes the
//! whole log directory offline. Every batch not yet acknowledged fails with
//! [`Error::KafkaStorage`] naming the file, writes still in flight are reaped and their batches
//! failed too, and every later request fails at once; nothing more is written.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use slab::Slab;

use super::offline::LogDirHealth;
use super::partition::{PartitionLog, Placement, SyncTarget};
use super::pipeline::{Entry, Pipe, WriteOp};
use super::{AppendCallback, AppendOutcome};
use crate::error::{Error, Result};
use crate::io::{Backend, Completion, Waker};

/// Most requests one round takes, so acknowledgements keep flowing under sustained load.
const MAX_ROUND: usize = 4096;

/// Most descriptors opened for fsyncs in flight at once (directories, segments rolled since their
/// write): a flush of many partitions opens them in waves, within the descriptor budget
/// (`descriptors.rs` counts these as headroom).
pub(crate) const SYNC_OPENS_IN_FLIGHT: usize = 64;

pub(crate) enum Request {
    /// `follower`: the batch comes from the leader; its offsets and stamps are kept.
    Append {
        partition: u32,
        batch: Vec<u8>,
        done: AppendCallback,
        enqueued: Instant,
        follower: bool,
    },
    /// Appends of one sender drain (leader appends), placed in order: one message and at most one
    /// wake-up of the thread for all of them.
    Appends {
        appends: Vec<(u32, Vec<u8>, AppendCallback)>,
        enqueued: Instant,
    },
    /// Cut a partition back to an offset (see `LocalLog::truncate`).
    Truncate {
        partition: u32,
        offset: i64,
        reply: crossbeam_channel::Sender<Result<()>>,
    },
    Flush(crossbeam_channel::Sender<Result<()>>),
    Close,
}

/// An append as it arrived.
struct Incoming {
    batch: Vec<u8>,
    done: AppendCallback,
    enqueued: Instant,
    follower: bool,
}

/// A batch written and waiting for the fsync that will acknowledge it.
struct Waiter {
    entry: Entry,
    written: Instant,
}

/// One fsync of a partition's files, possibly several fds.
struct SyncGroup {
    partition: u32,
    pending: usize,
    error: Option<Error>,
    waiters: Vec<Waiter>,
    /// The files being synced, for the error's path.
    targets: Vec<SyncTarget>,
    /// Their descriptors, kept open until every fsync of the group completed.
    _files: Vec<Arc<crate::io::storage::OpenFile>>,
    /// How many of those were opened for this fsync (counted in `State::sync_opens`).
    opened: usize,
}

/// Marks an fsync's token (the rest is its key in `State::syncs`); a write's token is its key in
/// `State::writes`. Both slabs reuse keys of reaped operations: no token is live twice at once.
const SYNC_TOKEN: u64 = 1 << 62;

/// Per partition: the write pipeline and the group-commit state.
#[derive(Default)]
struct PartitionIo {
    pipe: Pipe,
    held: Vec<Incoming>,
    waiters: Vec<Waiter>,
    sync_in_flight: Option<u64>,
    sync_wanted: bool,
    /// In `State::sync_list`.
    sync_listed: bool,
    /// In `State::dirty` (placed batches or a completion since its last submit).
    dirty: bool,
    /// In this reap's list of partitions to advance.
    touched: bool,
}

pub(crate) struct IoThread {
    pub partitions: Arc<[Mutex<PartitionLog>]>,
    pub backend: Box<dyn Backend>,
    pub requests: Receiver<Request>,
    pub waker: Arc<Waker>,
    pub flush_messages: Option<u64>,
    pub flush_ms: Option<u64>,
    pub retention_check: Duration,
    pub direct: bool,
    pub stats: Arc<super::Counters>,
    /// Bumped when a round made data readable.
    pub notify: Arc<super::notify::DataNotify>,
    /// The log directory's health: the first storage error takes it offline.
    pub health: Arc<LogDirHealth>,
    /// A bug the simulation test plants (`LogConfig::planted`; false outside tests): a batch whose
    /// flush is due is acknowledged, and readable, before its fsync.
    pub ack_before_sync: bool,
}

/// Answers a request the thread will not run (it is stopping) with [`Error::Closed`].
fn refuse(r: Request) {
    match r {
        Request::Append { batch, done, .. } => done(Err(Error::Closed { what: "log".into() }), batch),
        Request::Appends { appends, .. } => {
            for (_, batch, done) in appends {
                done(Err(Error::Closed { what: "log".into() }), batch);
            }
        }
        Request::Flush(reply) | Request::Truncate { reply, .. } => {
            let _ = reply.send(Err(Error::Closed { what: "log".into() }));
        }
        Request::Close => {}
    }
}

/// Wall-clock milliseconds.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn nanos_since(t: Instant, now: Instant) -> u64 {
    now.saturating_duration_since(t).as_nanos() as u64
}

/// The running state of the loop.
struct State {
    io: Vec<PartitionIo>,
    /// Writes in flight, by token (their key): indices into a slab, not a hash map, per batch.
    writes: Slab<WriteOp>,
    /// fsyncs in flight, by token without [`SYNC_TOKEN`]: one file of a sync group (group, index
    /// into its targets).
    syncs: Slab<(u64, usize)>,
    groups: HashMap<u64, SyncGroup>,
    /// The next sync group's id.
    next_group: u64,
    completions: Vec<Completion>,
    /// Errors of fsyncs since a flush() began.
    sync_errors: Vec<Error>,
    /// Partitions that may have something to submit: a round's work is O(partitions it touched),
    /// not O(partitions).
    dirty: Vec<u32>,
    /// Partitions whose placement failed (O_DIRECT staging), to finish through the failure path.
    failing: Vec<u32>,
    /// Descriptors opened for the fsyncs in flight (bounded by [`SYNC_OPENS_IN_FLIGHT`]).
    sync_opens: usize,
    /// Partitions that may want an fsync started: every partition with `sync_wanted` and no fsync
    /// in flight is listed (one in flight is listed again when it completes), so starting fsyncs is
    /// O(partitions wanting one), not O(partitions), per reap.
    sync_list: Vec<u32>,
    /// Buffers reused by every reap (no allocation per round or per partition): the partitions a
    /// reap touched, the entries a partition's frontier passed, those acknowledged at once.
    touched: Vec<u32>,
    ready: Vec<Entry>,
    acks: Vec<Entry>,
}

impl State {
    fn mark_dirty(&mut self, p: u32) {
        let pio = &mut self.io[p as usize];
        if !pio.dirty {
            pio.dirty = true;
            self.dirty.push(p);
        }
    }

    /// The partition wants an fsync (started by the next `start_syncs`, once none is in flight).
    fn want_sync(&mut self, p: u32) {
        let pio = &mut self.io[p as usize];
        pio.sync_wanted = true;
        if !pio.sync_listed {
            pio.sync_listed = true;
            self.sync_list.push(p);
        }
    }
}

impl IoThread {
    fn lock(&self, p: u32) -> std::sync::MutexGuard<'_, PartitionLog> {
        self.partitions[p as usize].lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn run(mut self) {
        let mut st = State {
            io: (0..self.partitions.len()).map(|_| PartitionIo::default()).collect(),
            writes: Slab::new(),
            syncs: Slab::new(),
            groups: HashMap::new(),
            next_group: 1,
            completions: Vec::new(),
            sync_errors: Vec::new(),
            dirty: Vec::new(),
            failing: Vec::new(),
            sync_opens: 0,
            sync_list: Vec::new(),
            touched: Vec::new(),
            ready: Vec::new(),
            acks: Vec::new(),
        };
        let tick =
            self.flush_ms.map_or(self.retention_check, |ms| Duration::from_millis(ms.max(1)).min(self.retention_check));
        let mut last_flush = Instant::now();
        let mut last_retention = Instant::now();
        let mut round = Vec::with_capacity(256);
        'outer: loop {
            // 1. Requests: block on the channel only when nothing is in flight and nothing placed is
            // waiting to be submitted (an O_DIRECT stage unblocked by the last reap must go out now,
            // not after the next request or tick).
            let idle =
                self.backend.in_flight() == 0 && !st.dirty.iter().any(|&p| st.io[p as usize].pipe.has_submittable());
            if idle && round.is_empty() {
                match self.requests.recv_timeout(tick) {
                    Ok(r) => round.push(r),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
            while round.len() < MAX_ROUND {
                match self.requests.try_recv() {
                    Ok(r) => round.push(r),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        if round.is_empty() && self.backend.in_flight() == 0 {
                            break 'outer;
                        }
                        break;
                    }
                }
            }
            let now = now_ms();
            let mut close = false;
            for r in round.drain(..) {
                if close {
                    refuse(r); // queued after Close: refused, never dropped unanswered
                    continue;
                }
                match r {
                    Request::Append { partition, batch, done, enqueued, follower } => {
                        self.place(&mut st, partition, Incoming { batch, done, enqueued, follower }, now)
                    }
                    Request::Appends { appends, enqueued } => {
                        for (partition, batch, done) in appends {
                            self.place(&mut st, partition, Incoming { batch, done, enqueued, follower: false }, now)
                        }
                    }
                    Request::Truncate { partition, offset, reply } => {
                        let outcome = self.truncate(&mut st, partition, offset);
                        let _ = reply.send(outcome);
                    }
                    Request::Flush(reply) => {
                        let outcome = self.flush_all(&mut st);
                        let _ = reply.send(outcome);
                    }
                    Request::Close => close = true,
                }
            }
            if close {
                // Requests queued after Close are refused below; everything before it is written.
                let _ = self.flush_all(&mut st);
                break;
            }
            // 2. Submit.
            self.submit_all(&mut st);
            // 3. Reap, waiting in the ring when nothing else is to be done.
            let wait = if self.backend.in_flight() > 0 && self.requests.is_empty() {
                self.waker.prepare_sleep();
                if self.requests.is_empty() { Some(tick) } else { None }
            } else {
                None
            };
            self.reap(&mut st, wait);
            if wait.is_some() {
                self.waker.cancel_sleep();
            }
            // 4. Timers.
            if let Some(ms) = self.flush_ms
                && last_flush.elapsed() >= Duration::from_millis(ms)
            {
                last_flush = Instant::now();
                for p in 0..st.io.len() as u32 {
                    if self.lock(p).has_unsynced() {
                        st.want_sync(p);
                    }
                }
                self.start_syncs(&mut st);
            }
            if last_retention.elapsed() >= self.retention_check && !self.health.is_offline() {
                last_retention = Instant::now();
                for p in 0..self.partitions.len() {
                    let mut log = self.lock(p as u32);
                    if let Err(e) = log.apply_retention(now_ms()) {
                        log::warn!("retention on {}: {e}", log.name);
                    }
                }
            }
        }
        // Whatever was still queued is refused rather than dropped silently.
        while let Ok(r) = self.requests.try_recv() {
            refuse(r);
        }
        if self.health.is_offline() {
            // An offline directory is left as it is (recovery runs over it when the log reopens).
            return;
        }
        for p in 0..self.partitions.len() {
            let mut log = self.lock(p as u32);
            let (base, _) = log.active_segment();
            if let Err(e) = log.trim_padding(base) {
                log::warn!("closing {}: {e}", log.name);
            }
            if let Err(e) = log.close() {
                log::warn!("closing {}: {e}", log.name);
            }
        }
    }

    /// Places one append (or holds it while its partition recovers from a failed write).
    fn place(&self, st: &mut State, partition: u32, incoming: Incoming, now: i64) {
        let Incoming { mut batch, done, enqueued, follower } = incoming;
        if partition as usize >= st.io.len() {
            let partitions = self.partitions.len() as u32;
            done(Err(Error::UnknownPartition { partition, partitions }), batch);
            return;
        }
        if let Err(e) = self.health.check() {
            done(Err(e), batch);
            return;
        }
        let pio = &mut st.io[partition as usize];
        if pio.pipe.failure.is_some() {
            pio.held.push(Incoming { batch, done, enqueued, follower });
            return;
        }
        let placement = if follower {
            self.lock(partition).place_as_follower(&mut batch, now)
        } else {
            self.lock(partition).place(&mut batch, now)
        };
        match placement {
            Ok(Placement::Write(placed)) => {
                if let Err(e) = pio.pipe.push((batch, done, enqueued, placed), self.direct) {
                    // Only O_DIRECT staging can fail here (rereading a block): the directory goes
                    // offline, and the batch fails with the rest once nothing is in flight (the
                    // partition is listed in `failing` so that the next reap finishes it).
                    self.go_offline(st, e);
                    st.failing.push(partition);
                }
                st.mark_dirty(partition);
            }
            Ok(Placement::Duplicate { base_offset, last_offset }) => done(
                Ok(AppendOutcome {
                    base_offset,
                    last_offset,
                    log_append_time_ms: -1,
                    duplicate: true,
                    write_ns: 0,
                    sync_ns: 0,
                }),
                batch,
            ),
            // A file operation failed (a roll creating the next segment, say): fail-stop.
            Err(e @ Error::Io { .. }) => {
                let e = self.go_offline(st, e);
                done(Err(e), batch)
            }
            Err(e) => done(Err(e), batch),
        }
    }

    /// Takes the log directory offline because of `cause` (see the module docs): no partition
    /// submits or syncs again, and every batch waiting for an fsync or held fails now; batches whose
    /// writes are in flight fail once those are reaped. Never called with a partition lock held
    /// (callbacks run here). Returns the error everything fails with.
    fn go_offline(&self, st: &mut State, cause: Error) -> Error {
        let error = self.health.fail(cause);
        let mut failed = Vec::new();
        let mut unfinished = Vec::new();
        for (p, pio) in st.io.iter_mut().enumerate() {
            pio.pipe.failure.get_or_insert_with(|| error.clone());
            pio.sync_wanted = false;
            failed.extend(pio.waiters.drain(..).map(|w| (w.entry.done, w.entry.batch)));
            failed.extend(pio.held.drain(..).map(|h| (h.done, h.batch)));
            if !pio.pipe.is_idle() {
                // Batches placed and not yet in a write (this round's, when a roll failed) are never
                // submitted now, so no completion would finish them: the next reap does.
                unfinished.push(p as u32);
            }
        }
        st.failing.extend(unfinished);
        st.failing.sort_unstable();
        st.failing.dedup();
        for (done, batch) in failed {
            done(Err(error.clone()), batch);
        }
        error
    }

    fn submit_all(&mut self, st: &mut State) {
        // Only partitions placed into or unblocked by a completion since their last submit can have
        // something to send (see `Pipe::has_submittable`).
        for p in std::mem::take(&mut st.dirty) {
            let pio = &mut st.io[p as usize];
            pio.dirty = false;
            let (writes, bytes) = pio.pipe.submit(p, self.backend.as_mut(), &mut st.writes);
            if writes > 0 {
                self.stats.writes.fetch_add(writes, Ordering::Relaxed);
                self.stats.bytes.fetch_add(bytes, Ordering::Relaxed);
            }
        }
    }

    /// Reaps completions (waiting up to `wait` for one) and moves everything they unblock on.
    fn reap(&mut self, st: &mut State, wait: Option<Duration>) {
        let waker = Arc::clone(&self.waker);
        self.backend.reap(wait.map(|d| (&*waker, d)), &mut st.completions);
        let mut completions = std::mem::take(&mut st.completions);
        let mut touched = std::mem::take(&mut st.touched);
        for c in completions.drain(..) {
            if c.token & SYNC_TOKEN != 0 {
                match st.syncs.try_remove((c.token & !SYNC_TOKEN) as usize) {
                    Some((group, index)) => self.sync_done(st, group, index, c.result),
                    None => log::error!("completion for unknown fsync {}", c.token),
                }
                continue;
            }
            match st.writes.try_remove(c.token as usize) {
                Some(op) => {
                    let result = c.result.map_err(|e| Error::io("write", &*op.path, e));
                    let partition = op.partition;
                    if let Err(e) = &result {
                        self.go_offline(st, e.clone());
                    }
                    let pio = &mut st.io[partition as usize];
                    pio.pipe.complete(c.token, result);
                    if !pio.touched {
                        pio.touched = true;
                        touched.push(partition);
                    }
                    // The kernel is done with the op's buffers: drop them, or reuse an O_DIRECT one.
                    if let Some(buf) = op.into_buffer() {
                        st.io[partition as usize].pipe.recycle(buf);
                    }
                }
                None => log::error!("completion for unknown write {}", c.token),
            }
        }
        st.completions = completions;
        // A partition whose write failed was touched by that completion; one whose placement failed
        // is listed in `failing` until its failure is finished.
        let failing = std::mem::take(&mut st.failing);
        for p in failing {
            let pio = &mut st.io[p as usize];
            if pio.pipe.failure.is_some() && !pio.touched {
                pio.touched = true;
                touched.push(p);
            }
        }
        let written = Instant::now();
        let moved = !touched.is_empty();
        for p in touched.drain(..) {
            st.io[p as usize].touched = false;
            self.advance(st, p, written);
            // A completion may have unblocked an O_DIRECT stage; a finished failure placed the held
            // appends (marked by `place`); a failure still waiting for writes in flight stays listed.
            st.mark_dirty(p);
            if st.io[p as usize].pipe.failure.is_some() && !st.failing.contains(&p) {
                st.failing.push(p);
            }
        }
        st.touched = touched;
        if moved {
            self.notify.bump();
        }
        self.start_syncs(st);
    }

    /// Commits what the partition's frontier passed: acknowledges it, or (a flush due, or batches
    /// before it waiting) queues it, still invisible, for an fsync. Once the directory is offline,
    /// fails whatever was not acknowledged, when nothing of the partition is in flight any more.
    /// Callbacks run after the partition lock is released (a callback takes replication's lock,
    /// which a fetcher holds while it takes this one).
    fn advance(&mut self, st: &mut State, p: u32, written: Instant) {
        let mut entries = std::mem::take(&mut st.ready);
        st.io[p as usize].pipe.advance(&mut entries);
        let mut ready = entries.drain(..);
        let trims = st.io[p as usize].pipe.due_trims();
        let mut acks = std::mem::take(&mut st.acks);
        let mut storage_error = None;
        if !self.health.is_offline() {
            let mut log = self.lock(p);
            for base in trims {
                if let Err(e) = log.trim_padding(base) {
                    log::warn!("{}: {e}", log.name);
                }
            }
            for entry in ready.by_ref() {
                let records = entry.placed.header.records_count.max(0) as u64;
                let due = self.flush_messages.is_some_and(|n| log.unflushed_records + records >= n);
                let pio = &mut st.io[p as usize];
                let early = self.ack_before_sync;
                let wait = (due || !pio.waiters.is_empty()) && !early;
                if let Err(e) = log.commit(&entry.placed, !wait) {
                    storage_error = Some(e);
                    break;
                }
                if wait {
                    pio.waiters.push(Waiter { entry, written });
                    if due {
                        st.want_sync(p);
                    }
                } else {
                    if due && early {
                        st.want_sync(p);
                    }
                    acks.push(entry);
                }
            }
        }
        for entry in acks.drain(..) {
            let outcome = outcome(&entry, written, 0);
            (entry.done)(Ok(outcome), entry.batch);
        }
        st.acks = acks;
        if let Some(e) = storage_error {
            self.go_offline(st, e);
        }
        // Offline: what the frontier passed and was not committed fails (the batch whose commit
        // failed first among them).
        let mut failed: Vec<Entry> = ready.collect();
        st.ready = entries;
        if let Some((_, rest)) = st.io[p as usize].pipe.take_failed() {
            failed.extend(rest);
        }
        if !failed.is_empty() {
            let error = self.health.check().err().unwrap_or_else(|| Error::Closed { what: "log".into() });
            for e in failed {
                (e.done)(Err(error.clone()), e.batch);
            }
        }
    }

    /// Starts an fdatasync for every partition that wants one and has none in flight.
    fn start_syncs(&mut self, st: &mut State) {
        if self.health.is_offline() {
            // Nothing is synced any more: no fsync is wanted (flush and close must not wait for one).
            for pio in &mut st.io {
                pio.sync_wanted = false;
                pio.sync_listed = false;
            }
            st.sync_list.clear();
            return;
        }
        let listed = std::mem::take(&mut st.sync_list);
        for (at, &p32) in listed.iter().enumerate() {
            let p = p32 as usize;
            let pio = &mut st.io[p];
            pio.sync_listed = false;
            // One in flight: listed again by `sync_done` if still wanted.
            if !pio.sync_wanted || pio.sync_in_flight.is_some() {
                continue;
            }
            let to_open = self.lock(p32).unsynced_to_open();
            if to_open > 0 && st.sync_opens > 0 && st.sync_opens + to_open > SYNC_OPENS_IN_FLIGHT {
                // Waits (still wanted, still listed) for fsyncs in flight to give their descriptors back.
                st.want_sync(p32);
                continue;
            }
            pio.sync_wanted = false;
            let files = self.lock(p as u32).take_unsynced();
            let waiters = std::mem::take(&mut st.io[p].waiters);
            if files.is_empty() {
                if let Some(end) = waiters.last().map(|w| w.entry.placed.header.last_offset() + 1) {
                    self.lock(p as u32).expose(end);
                }
                let now = Instant::now();
                for w in waiters {
                    let o = outcome(&w.entry, w.written, nanos_since(w.written, now));
                    (w.entry.done)(Ok(o), w.entry.batch);
                }
                continue;
            }
            let opened = files.iter().filter(|t| t.file.is_none()).count();
            let fds = match files.iter().map(SyncTarget::open).collect::<Result<Vec<_>>>() {
                Ok(fds) => fds,
                Err(e) => {
                    // As a failed fsync: the directory goes offline and the waiters fail.
                    let e = self.go_offline(st, e);
                    for w in waiters {
                        (w.entry.done)(Err(e.clone()), w.entry.batch);
                    }
                    st.sync_errors.push(e);
                    // Offline now: nothing more is synced; the partitions not reached are unlisted.
                    for &q in &listed[at + 1..] {
                        st.io[q as usize].sync_listed = false;
                    }
                    return;
                }
            };
            let group = st.next_group;
            st.next_group += 1;
            for (i, f) in fds.iter().enumerate() {
                let token = SYNC_TOKEN | st.syncs.insert((group, i)) as u64;
                self.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
                self.backend.sync(token, f);
            }
            st.io[p].sync_in_flight = Some(group);
            st.sync_opens += opened;
            st.groups.insert(
                group,
                SyncGroup {
                    partition: p as u32,
                    pending: files.len(),
                    error: None,
                    waiters,
                    targets: files,
                    _files: fds,
                    opened,
                },
            );
        }
    }

    fn sync_done(&mut self, st: &mut State, group: u64, index: usize, result: std::io::Result<()>) {
        let Some(g) = st.groups.get_mut(&group) else { return };
        g.pending -= 1;
        if let Err(e) = result
            && g.error.is_none()
        {
            g.error = Some(Error::io("fdatasync", &g.targets[index].path, e));
        }
        if g.pending > 0 {
            return;
        }
        let Some(g) = st.groups.remove(&group) else { return };
        st.sync_opens -= g.opened;
        let pio = &mut st.io[g.partition as usize];
        pio.sync_in_flight = None;
        // Batches written while this fsync ran are acknowledged in order after the next one.
        if pio.sync_wanted || !pio.waiters.is_empty() {
            st.want_sync(g.partition);
        }
        if let Some(e) = g.error {
            // Linux reports a failed writeback once and may drop the pages: fail-stop.
            let e = self.go_offline(st, e);
            st.sync_errors.push(e);
        }
        // Offline (by this fsync or by another failure meanwhile): nothing more is acknowledged.
        let result = self.health.check();
        if result.is_ok()
            && let Some(end) = g.waiters.last().map(|w| w.entry.placed.header.last_offset() + 1)
        {
            // Kafka's order: the flush first, then the high watermark, then the acknowledgement.
            self.lock(g.partition).expose(end);
        }
        let now = Instant::now();
        for w in g.waiters {
            let result = match &result {
                Ok(()) => Ok(outcome(&w.entry, w.written, nanos_since(w.written, now))),
                Err(e) => Err(e.clone()),
            };
            (w.entry.done)(result, w.entry.batch);
        }
    }

    /// Cuts `partition` back to `offset` once everything placed is written and synced, and forgets
    /// the pipeline's staged tail (O_DIRECT), which may hold bytes past the cut.
    fn truncate(&mut self, st: &mut State, partition: u32, offset: i64) -> Result<()> {
        if partition as usize >= st.io.len() {
            return Err(Error::UnknownPartition { partition, partitions: st.io.len() as u32 });
        }
        self.health.check()?;
        self.flush_all(st)?;
        let truncated = self.lock(partition).truncate_to(offset, now_ms());
        if let Err(e) = truncated {
            return Err(if matches!(e, Error::Io { .. }) { self.go_offline(st, e) } else { e });
        }
        st.io[partition as usize].pipe = Pipe::default();
        Ok(())
    }

    /// Writes everything placed and fdatasyncs every partition with unsynced data (flush and close).
    fn flush_all(&mut self, st: &mut State) -> Result<()> {
        st.sync_errors.clear();
        let mut first_error = None;
        loop {
            self.submit_all(st);
            let busy = st.io.iter().any(|pio| !pio.pipe.is_idle() || !pio.held.is_empty());
            if !busy {
                break;
            }
            if self.backend.in_flight() == 0 {
                // Nothing in flight yet work left: a failed partition rolled back and placed its held
                // appends; go round again to submit them.
                self.reap(st, None);
                continue;
            }
            self.reap(st, Some(Duration::from_millis(100)));
        }
        for p in 0..st.io.len() {
            if self.lock(p as u32).has_unsynced() || !st.io[p].waiters.is_empty() {
                st.want_sync(p as u32);
            }
        }
        loop {
            self.start_syncs(st);
            // Nothing in flight means no fsync in flight, so every partition still wanting one is
            // listed (`start_syncs` just dropped those that no longer want one).
            if self.backend.in_flight() == 0 && st.sync_list.is_empty() {
                break;
            }
            self.reap(st, Some(Duration::from_millis(100)));
        }
        if let Some(e) = st.sync_errors.drain(..).next() {
            first_error = Some(e);
        }
        if first_error.is_none()
            && let Err(e) = self.health.check()
        {
            first_error = Some(e);
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

fn outcome(entry: &Entry, written: Instant, sync_ns: u64) -> AppendOutcome {
    AppendOutcome {
        base_offset: entry.placed.header.base_offset,
        last_offset: entry.placed.header.last_offset(),
        log_append_time_ms: entry.placed.log_append_time_ms,
        duplicate: false,
        write_ns: nanos_since(entry.enqueued, written),
        sync_ns,
    }
}
