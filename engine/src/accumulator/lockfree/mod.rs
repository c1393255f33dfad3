//! The lock-free accumulator.
//!
//! Each partition has a slot holding its current batch (arc-swap: a lock-free load). A batch
//! is immutable but for its atomics, and is fully built before it is published, so appenders never see
//! a half-made batch. Appending (details in [`batch`]):
//! 1. claim: one `fetch_add` on the batch's `state` word (sealed bit | record count | bytes) gives the
//!    record its offsetDelta and its byte range at once; a claim that finds the batch sealed or full is
//!    void;
//! 2. write the record into that range of the buffer (ranges never overlap), then set its flag with
//!    Release: that store publishes the record;
//! 3. the record's completion handle takes one of the references the batch was created with: no
//!    reference-count increment.
//!
//! A record that does not fit seals the batch (one `fetch_or` sets the sealed bit; the thread that set
//! it hands the batch to the drainer through a lock-free queue) and installs a new batch, already
//! holding that record, with one CAS on the slot (an installer that loses the race drops its batch
//! and appends to the winner's). Batches carry a per-partition sequence number (the previous batch's + 1, so racing
//! installers agree), and the drainer takes each partition's batches in sequence order, each only once
//! sealed and every valid record in it published (it walks the records, reading each one's flag with
//! Acquire), so the bytes it reads are complete. The drainer seals lingering batches itself. Only
//! buffer.memory exhaustion blocks.
//!
//! Buffers go back to buffer.memory as they are: a batch's publication flags are its own, so the
//! record bytes need no zero-filling between uses. A batch itself (with the completion its records
//! share) lives in a block of a [`Pool`]: when its last reference goes, the next batch is built in
//! the same memory instead of a `malloc` per batch on the appending thread and a `free` wherever
//! the batch was let go.

mod batch;
mod buffer;
#[cfg(all(test, loom))]
mod loom_tests;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) use self::batch::BatchRef;
use self::batch::{Batch, Claim, Extent, Walk};
use self::buffer::Flags;
use super::control::Control;
use super::pool::{Pool, Pooled, free_list_capacity};
use super::{AccumulatorConfig, Appended, DrainedBatch, RecordAccumulator, ResultHandle};
use crate::error::Result;
use crate::record::{RecordHeader, RecordParts};
use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::{ArcSlot, Mutex, Queue};

/// A counted reference to a batch in its pool's block.
type BatchArc = Pooled<Batch>;

/// How soon the drainer looks again at a sealed batch whose appenders have not all published.
const COMMIT_RECHECK: Duration = Duration::from_micros(50);

/// The drainer's own bookkeeping (only the sender locks it).
#[derive(Default)]
struct DrainState {
    /// Batches installed, oldest first (linger order); sealed ones are dropped as found.
    open: VecDeque<BatchArc>,
    /// Per partition: its sealed batches waiting for their turn, and the next sequence number.
    partitions: Vec<PartitionQueue>,
    /// The partitions with a batch waiting, each once, so a drain visits only those.
    active: Vec<u32>,
}

/// One partition's sealed batches, in sequence order (they nearly always arrive in it: the push
/// looks from the back).
#[derive(Default)]
struct PartitionQueue {
    /// Next sequence number to drain.
    expected: u64,
    waiting: VecDeque<Pending>,
}

impl DrainState {
    fn insert(&mut self, batch: BatchArc) {
        let partition = batch.partition;
        let queue = &mut self.partitions[partition as usize];
        if queue.waiting.is_empty() {
            self.active.push(partition);
        }
        let seq = batch.seq;
        let at = queue.waiting.iter().rposition(|p| p.batch.seq < seq).map_or(0, |i| i + 1);
        queue.waiting.insert(at, Pending::new(batch));
    }
}

/// A sealed batch and how far the drainer got in it.
struct Pending {
    batch: BatchArc,
    /// Known once the claim that ended the batch is.
    extent: Option<Extent>,
    walk: Walk,
}

impl Pending {
    fn new(batch: BatchArc) -> Self {
        Pending { batch, extent: None, walk: Walk::default() }
    }

    /// Every valid record is published.
    fn complete(&mut self) -> bool {
        if self.extent.is_none() {
            self.extent = self.batch.extent();
        }
        match self.extent {
            Some(extent) => self.batch.walk(&mut self.walk, extent),
            None => false,
        }
    }
}

/// See the module docs.
pub(crate) struct LockFreeAccumulator {
    control: Control,
    slots: Box<[ArcSlot<BatchArc>]>,
    opened: Queue<BatchArc>,
    sealed: Queue<BatchArc>,
    /// Publication flags of drained batches, cleared, for the next batches (see [`buffer`]).
    spare_flags: Queue<Flags>,
    drain: Mutex<DrainState>,
    /// The free list the batches are made in.
    batches: Arc<Pool<Batch>>,
    /// Batches installed and not yet taken by the drainer (every installed batch holds a record):
    /// `has_undrained` in O(1), whatever the partitions.
    undrained: AtomicUsize,
}

impl std::fmt::Debug for LockFreeAccumulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockFreeAccumulator").field("partitions", &self.slots.len()).finish_non_exhaustive()
    }
}

impl LockFreeAccumulator {
    pub(crate) fn new(config: AccumulatorConfig) -> Self {
        let partitions = config.partitions as usize;
        let free = free_list_capacity(&config);
        LockFreeAccumulator {
            control: Control::new(config),
            slots: (0..partitions).map(|_| ArcSlot::empty()).collect(),
            opened: Queue::new(),
            sealed: Queue::new(),
            spare_flags: Queue::new(),
            drain: Mutex::new(DrainState {
                partitions: (0..partitions).map(|_| PartitionQueue::default()).collect(),
                ..DrainState::default()
            }),
            batches: Pool::new(free),
            undrained: AtomicUsize::new(0),
        }
    }

    fn hand_over(&self, batch: BatchArc) {
        self.sealed.push(batch);
        self.control.wake();
    }

    /// What a claim in `batch` comes to: the append's answer, or `None` to go on with the next batch
    /// (after sealing this one, when the record did not fit).
    #[inline]
    fn finish(&self, batch: &BatchArc, claim: Claim, new_batch_created: bool) -> Option<Appended> {
        match claim {
            Claim::Done { offset_delta, size, full } => {
                let batch_is_full = full && batch.seal();
                // SAFETY: once, for this valid claim.
                let result = ResultHandle::from(unsafe { BatchRef::claimed(batch) });
                if batch_is_full {
                    self.hand_over(BatchArc::clone(batch));
                }
                Some(Appended {
                    result,
                    relative_offset: offset_delta,
                    batch_is_full,
                    new_batch_created,
                    appended_bytes: size,
                })
            }
            Claim::NoRoom => {
                if batch.seal() {
                    self.hand_over(BatchArc::clone(batch));
                }
                None
            }
            Claim::Sealed => None,
        }
    }
}

/// Per appending thread: the batch it appended to last in each partition of one accumulator (the
/// last one it used). A stale entry is harmless: a replaced batch is sealed, so a claim in it is
/// void, and so is one in a batch of a dropped accumulator (dropping seals them all), whatever
/// accumulator now lives at its address.
struct Recent {
    accumulator: usize,
    batches: Vec<Option<BatchArc>>,
}

impl Recent {
    const fn new() -> Self {
        Recent { accumulator: 0, batches: Vec::new() }
    }

    #[inline]
    fn get(&self, accumulator: usize, partition: u32) -> Option<&BatchArc> {
        if self.accumulator != accumulator {
            return None;
        }
        self.batches.get(partition as usize)?.as_ref().filter(|b| b.partition == partition)
    }

    fn set(&mut self, accumulator: usize, partition: u32, batch: BatchArc) {
        if self.accumulator != accumulator {
            self.accumulator = accumulator;
            self.batches.clear();
        }
        let i = partition as usize;
        if self.batches.len() <= i {
            self.batches.resize(i + 1, None);
        }
        self.batches[i] = Some(batch);
    }
}

#[cfg(not(loom))]
std::thread_local! {
    // Constant-initialised: no lazy-initialisation check on each record's look-up.
    static RECENT: std::cell::RefCell<Recent> = const { std::cell::RefCell::new(Recent::new()) };
}

#[cfg(loom)]
loom::thread_local! {
    static RECENT: std::cell::RefCell<Recent> = std::cell::RefCell::new(Recent::new());
}

impl Drop for LockFreeAccumulator {
    fn drop(&mut self) {
        // `&mut self`: no appender or drainer is running, so every claim is finished. Batches the
        // drainer never took give back their unclaimed handle references, or records' handles would
        // keep them (and their completions) alive for ever.
        let mut st = self.drain.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(b) = self.opened.pop() {
            b.abandon();
        }
        while let Some(b) = self.sealed.pop() {
            b.abandon();
        }
        for b in st.open.drain(..) {
            b.abandon();
        }
        for queue in st.partitions.iter_mut() {
            for p in queue.waiting.drain(..) {
                p.batch.abandon();
            }
        }
        for slot in self.slots.iter() {
            if let Some(b) = slot.load().as_ref() {
                b.abandon();
            }
        }
    }
}

impl RecordAccumulator for LockFreeAccumulator {
    fn append(
        &self,
        partition: u32,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[RecordHeader],
    ) -> Result<Appended> {
        self.control.check_open()?;
        let parts = RecordParts::new(key, value, headers);
        let upper = self.control.checked_upper_bound(&parts)?;
        // The batch this thread appended to last in this partition: while it is not sealed it is the
        // partition's current batch (a batch is replaced only once sealed), so claiming in it needs
        // no load of the slot, whose guard costs locked instructions right after the record's stores.
        let me = self as *const Self as usize;
        let fast = RECENT.with(|recent| {
            let recent = recent.borrow();
            let batch = recent.get(me, partition)?;
            self.finish(batch, batch.try_append(timestamp, &parts), false)
        });
        if let Some(appended) = fast {
            return Ok(appended);
        }
        let slot = &self.slots[partition as usize];
        loop {
            let current = slot.load();
            if let Some(batch) = current.as_ref()
                && let Some(appended) = self.finish(batch, batch.try_append_outlined(timestamp, &parts), false)
            {
                RECENT.with(|recent| recent.borrow_mut().set(me, partition, BatchArc::clone(batch)));
                return Ok(appended);
            }
            // The slot is empty or holds a sealed batch: open the next one.
            self.control.check_open()?;
            let seq = current.as_ref().map_or(0, |b| b.seq + 1);
            let cap = self.control.new_batch_capacity(upper);
            let buffer = self.control.pool.allocate(cap, self.control.config.max_block)?;
            let fresh = Batch::create(&self.batches, partition, seq, timestamp, buffer, self.spare_flags.pop());
            // The record goes into the batch while it is still private, so the drainer never finds a
            // batch installed and empty (it would have to look again later: appenders do not signal
            // a batch's first record) and a lingered batch is complete the moment it is installed.
            let claim = fresh.try_append_outlined(timestamp, &parts);
            if !matches!(claim, Claim::Done { .. }) {
                unreachable!("a fresh batch of {} bytes holds a record of at most {upper}", cap);
            }
            // Counted before it can be seen, so the drainer's decrement never comes first.
            self.undrained.fetch_add(1, Ordering::AcqRel);
            if slot.install(&current, BatchArc::clone(&fresh)) {
                self.opened.push(BatchArc::clone(&fresh));
                let appended = self.finish(&fresh, claim, true).expect("a valid claim appends");
                RECENT.with(|recent| recent.borrow_mut().set(me, partition, BatchArc::clone(&fresh)));
                self.control.wake();
                return Ok(appended);
            }
            // Another appender installed first: its batch is the partition's now. Give the memory
            // back (the record written here goes with it) and append there.
            self.undrained.fetch_sub(1, Ordering::AcqRel);
            let buffer = fresh.take_buffer_unpublished();
            self.deallocate(buffer);
        }
    }

    fn drain(&self, now: Instant, out: &mut Vec<DrainedBatch>) -> Option<Instant> {
        let mut st = self.drain.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(b) = self.opened.pop() {
            st.open.push_back(b);
        }
        let force = self.control.force_ready();
        let linger = self.control.config.linger;
        let mut next_ready = None;
        // Batches are in creation order: taking from the front while they are due (or sealed by an
        // appender, which handed them over already) costs O(batches taken), whatever the partitions.
        while let Some(b) = st.open.front() {
            if b.is_sealed() {
                st.open.pop_front();
                continue;
            }
            let due = b.created + linger;
            if force || now >= due {
                // Never empty: a batch is installed with its first record in (see `append`).
                let b = st.open.pop_front().expect("front exists");
                if b.seal() {
                    st.insert(b);
                }
                continue;
            }
            // The rest linger longer.
            next_ready = Some(next_ready.map_or(due, |n: Instant| n.min(due)));
            break;
        }
        while let Some(b) = self.sealed.pop() {
            st.insert(b);
        }
        let mut waiting_for_commit = false;
        let DrainState { partitions, active, .. } = &mut *st;
        let mut i = 0;
        while i < active.len() {
            let partition = active[i];
            let queue = &mut partitions[partition as usize];
            // Each batch in turn, while the next one in sequence is here (an earlier one not here
            // yet is still open or on its way through `sealed`) and complete.
            while let Some(front) = queue.waiting.front_mut() {
                if front.batch.seq != queue.expected {
                    break;
                }
                if !front.complete() {
                    waiting_for_commit = true;
                    break;
                }
                let Pending { batch: b, extent, .. } = queue.waiting.pop_front().expect("front exists");
                let extent = extent.expect("complete");
                queue.expected += 1;
                self.undrained.fetch_sub(1, Ordering::AcqRel);
                let record_count = extent.count;
                let (buffer, flags, handle) = b.take_buffer(extent);
                self.spare_flags.push(flags);
                if record_count == 0 {
                    self.deallocate(buffer);
                    continue;
                }
                out.push(DrainedBatch {
                    partition,
                    buffer,
                    record_count,
                    base_timestamp: b.base_timestamp,
                    max_timestamp: b.max_timestamp(),
                    created: b.created,
                    result: ResultHandle::from(handle),
                });
            }
            if queue.waiting.is_empty() {
                active.swap_remove(i);
            } else {
                i += 1;
            }
        }
        if waiting_for_commit {
            let recheck = now + COMMIT_RECHECK;
            next_ready = Some(next_ready.map_or(recheck, |n: Instant| n.min(recheck)));
        }
        next_ready
    }

    fn wait_for_work(&self, deadline: Option<Instant>) {
        self.control.wait(deadline);
    }

    fn wake(&self) {
        self.control.wake();
    }

    fn begin_flush(&self) {
        self.control.begin_flush();
    }

    fn end_flush(&self) {
        self.control.end_flush();
    }

    fn close(&self) {
        self.control.close();
    }

    fn has_undrained(&self) -> bool {
        // Every installed batch holds a record, and leaves the count when the drainer takes it.
        self.undrained.load(Ordering::Acquire) != 0
    }

    fn deallocate(&self, buffer: Vec<u8>) {
        self.control.deallocate(buffer);
    }

    fn record_compression_ratio(&self, ratio: f32) {
        self.control.ratio.observe(ratio);
    }

    fn memory_waiters(&self) -> usize {
        self.control.pool.waiters()
    }

    fn available_memory(&self) -> usize {
        self.control.pool.available_memory()
    }
}
