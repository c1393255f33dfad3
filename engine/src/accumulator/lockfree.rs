//! The lock-free accumulator.
//!
//! Each partition has a slot holding its current batch (`ArcSwapOption`: a lock-free load). A batch
//! is immutable but for its atomics, and is fully built before it is published, so appenders never see
//! a half-made batch. Appending:
//! 1. claim: one CAS on the batch's `state` word (sealed bit | record count | reserved bytes) moves the
//!    count and the end together, so the record learns its offsetDelta and its byte range at once;
//! 2. write the record into that range of the buffer (ranges never overlap);
//! 3. publish: add its size to `committed` (Release).
//!
//! A record that does not fit seals the batch (one CAS sets the sealed bit; the thread that set it
//! hands the batch to the drainer through a lock-free queue) and installs a new batch with one CAS on
//! the slot. Batches carry a per-partition sequence number (the previous batch's + 1, so racing
//! installers agree), and the drainer takes each partition's batches in sequence order, each only once
//! sealed and fully committed (`committed == reserved`, read with Acquire), so the bytes it reads are
//! complete. The drainer seals lingering batches itself. Only buffer.memory exhaustion blocks.

use std::cell::UnsafeCell;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use crossbeam_queue::SegQueue;

use super::control::Control;
use super::{AccumulatorConfig, Appended, DrainedBatch, ProduceResult, RecordAccumulator};
use crate::error::Result;
use crate::record::{RECORD_BATCH_OVERHEAD, RecordHeader, record_size, write_record};

const SEALED: u64 = 1 << 63;
const COUNT_SHIFT: u32 = 32;
const COUNT_MASK: u64 = (1 << 31) - 1;
const BYTES_MASK: u64 = (1 << 32) - 1;
/// How soon the drainer looks again at a sealed batch whose appenders have not all committed.
const COMMIT_RECHECK: Duration = Duration::from_micros(50);

/// One batch under construction.
struct Batch {
    partition: u32,
    seq: u64,
    base_timestamp: i64,
    created: Instant,
    cap: usize,
    /// sealed bit | count << 32 | reserved bytes (header included).
    state: AtomicU64,
    /// Bytes whose records are fully written (header included).
    committed: AtomicU64,
    max_timestamp: AtomicI64,
    result: Arc<ProduceResult>,
    /// Start of `buffer`'s storage, for appenders' disjoint writes.
    base: *mut u8,
    /// Owned by the batch until the drainer takes it (once, see `take_buffer`).
    buffer: UnsafeCell<Vec<u8>>,
    taken: AtomicBool,
}

// SAFETY: the raw pointer and the UnsafeCell are only used under the batch's protocol: appenders write
// through `base` only into byte ranges they claimed exclusively with a CAS on `state`, and the buffer
// is moved out only by the single drainer after the batch is sealed and every claimed range is
// committed (see `take_buffer`). Everything else is atomics or immutable after publication.
unsafe impl Send for Batch {}
// SAFETY: as above; shared access never creates overlapping mutable access.
unsafe impl Sync for Batch {}

enum Claim {
    Done { offset_delta: u32, size: usize, full: bool },
    NoRoom,
    Sealed,
}

impl Batch {
    fn new(partition: u32, seq: u64, base_timestamp: i64, mut buffer: Vec<u8>) -> Self {
        let cap = buffer.len();
        let base = buffer.as_mut_ptr();
        Batch {
            partition,
            seq,
            base_timestamp,
            created: Instant::now(),
            cap,
            state: AtomicU64::new(RECORD_BATCH_OVERHEAD as u64),
            committed: AtomicU64::new(RECORD_BATCH_OVERHEAD as u64),
            max_timestamp: AtomicI64::new(base_timestamp),
            result: Arc::new(ProduceResult::new()),
            base,
            buffer: UnsafeCell::new(buffer),
            taken: AtomicBool::new(false),
        }
    }

    fn count(state: u64) -> u64 {
        (state >> COUNT_SHIFT) & COUNT_MASK
    }

    fn try_append(&self, timestamp: i64, key: Option<&[u8]>, value: Option<&[u8]>, headers: &[RecordHeader]) -> Claim {
        let delta = timestamp.wrapping_sub(self.base_timestamp);
        let mut s = self.state.load(Ordering::Acquire);
        let (offset_delta, pos, size) = loop {
            if s & SEALED != 0 {
                return Claim::Sealed;
            }
            let count = Self::count(s);
            let bytes = s & BYTES_MASK;
            if count >= COUNT_MASK || count > i32::MAX as u64 {
                return Claim::NoRoom;
            }
            let size = record_size(delta, count as i32, key, value, headers);
            if bytes as usize + size > self.cap {
                return Claim::NoRoom;
            }
            let next = s + (1 << COUNT_SHIFT) + size as u64;
            match self.state.compare_exchange_weak(s, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break (count as u32, bytes as usize, size),
                Err(actual) => s = actual,
            }
        };
        // SAFETY: the CAS above gave this thread exclusive ownership of bytes [pos, pos + size) of the
        // buffer: claims only move the end forward and never overlap, the range lies within `cap`
        // (checked against the claimed end), and the buffer cannot be taken by the drainer before this
        // thread's commit below makes `committed` reach the reserved end. The buffer is initialised
        // (pool buffers are zero-filled), so a `&mut [u8]` over it is valid.
        let slot = unsafe { std::slice::from_raw_parts_mut(self.base.add(pos), size) };
        let written = write_record(slot, delta, offset_delta as i32, key, value, headers);
        debug_assert_eq!(written, size);
        self.max_timestamp.fetch_max(timestamp, Ordering::Relaxed);
        self.committed.fetch_add(size as u64, Ordering::Release);
        // Full when a record like this one would not fit again: ready now rather than on the next miss.
        let full = pos + 2 * size > self.cap;
        Claim::Done { offset_delta, size, full }
    }

    /// Sets the sealed bit; true for the one thread that set it.
    fn seal(&self) -> bool {
        self.state.fetch_or(SEALED, Ordering::AcqRel) & SEALED == 0
    }

    fn is_sealed(&self) -> bool {
        self.state.load(Ordering::Acquire) & SEALED != 0
    }

    fn is_empty(&self) -> bool {
        Self::count(self.state.load(Ordering::Acquire)) == 0
    }

    /// Sealed, and every claimed record written.
    fn is_complete(&self) -> bool {
        let s = self.state.load(Ordering::Acquire);
        s & SEALED != 0 && self.committed.load(Ordering::Acquire) == s & BYTES_MASK
    }

    /// Moves the buffer out, cut to the batch's length. Drainer only, once, after `is_complete`.
    fn take_buffer(&self) -> Vec<u8> {
        let already = self.taken.swap(true, Ordering::AcqRel);
        assert!(!already, "a batch's buffer is taken once");
        let len = (self.state.load(Ordering::Acquire) & BYTES_MASK) as usize;
        // SAFETY: the batch is sealed (no new claims) and `committed` equals the reserved end (every
        // claimed range written and published with Release, read with Acquire in `is_complete`), so no
        // appender touches the buffer any more; `taken` guarantees this happens once.
        let mut buffer = std::mem::take(unsafe { &mut *self.buffer.get() });
        buffer.truncate(len);
        buffer
    }
}

/// The drainer's own bookkeeping (only the sender locks it; `has_undrained` peeks).
#[derive(Default)]
struct DrainState {
    /// Batches installed, oldest first (linger order); sealed ones are dropped as found.
    open: VecDeque<Arc<Batch>>,
    /// Sealed batches waiting for their turn, per partition by sequence number.
    pending: BTreeMap<(u32, u64), Arc<Batch>>,
    /// Next sequence number to drain, per partition.
    expected: Vec<u64>,
}

/// See the module docs.
pub(crate) struct LockFreeAccumulator {
    control: Control,
    slots: Box<[ArcSwapOption<Batch>]>,
    opened: SegQueue<Arc<Batch>>,
    sealed: SegQueue<Arc<Batch>>,
    drain: Mutex<DrainState>,
}

impl std::fmt::Debug for LockFreeAccumulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockFreeAccumulator").field("partitions", &self.slots.len()).finish_non_exhaustive()
    }
}

impl LockFreeAccumulator {
    pub(crate) fn new(config: AccumulatorConfig) -> Self {
        let partitions = config.partitions as usize;
        LockFreeAccumulator {
            control: Control::new(config),
            slots: (0..partitions).map(|_| ArcSwapOption::empty()).collect(),
            opened: SegQueue::new(),
            sealed: SegQueue::new(),
            drain: Mutex::new(DrainState { expected: vec![0; partitions], ..DrainState::default() }),
        }
    }

    fn hand_over(&self, batch: Arc<Batch>) {
        self.sealed.push(batch);
        self.control.wake();
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
        let upper = self.control.checked_upper_bound(key, value, headers)?;
        let slot = &self.slots[partition as usize];
        let mut new_batch_created = false;
        loop {
            let current = slot.load();
            if let Some(batch) = current.as_ref() {
                match batch.try_append(timestamp, key, value, headers) {
                    Claim::Done { offset_delta, size, full } => {
                        let batch_is_full = full && batch.seal();
                        let result = Arc::clone(&batch.result);
                        if batch_is_full {
                            self.hand_over(Arc::clone(batch));
                        }
                        return Ok(Appended {
                            result,
                            relative_offset: offset_delta,
                            batch_is_full,
                            new_batch_created,
                            appended_bytes: size,
                        });
                    }
                    Claim::NoRoom => {
                        if batch.seal() {
                            self.hand_over(Arc::clone(batch));
                        }
                    }
                    Claim::Sealed => {}
                }
            }
            // The slot is empty or holds a sealed batch: open the next one.
            self.control.check_open()?;
            let seq = current.as_ref().map_or(0, |b| b.seq + 1);
            let cap = self.control.new_batch_capacity(upper);
            let buffer = self.control.pool.allocate(cap, self.control.config.max_block)?;
            let fresh = Arc::new(Batch::new(partition, seq, timestamp, buffer));
            let previous = slot.compare_and_swap(&current, Some(Arc::clone(&fresh)));
            let won = match (previous.as_ref(), current.as_ref()) {
                (Some(p), Some(c)) => Arc::ptr_eq(p, c),
                (None, None) => true,
                _ => false,
            };
            if won {
                new_batch_created = true;
                self.opened.push(fresh);
                self.control.wake();
            } else {
                // Another appender installed first; give the memory back and append there.
                let buffer = fresh.take_buffer_unpublished();
                self.control.deallocate(buffer);
            }
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
        let mut i = 0;
        while i < st.open.len() {
            let b = &st.open[i];
            if b.is_sealed() {
                st.open.remove(i);
                continue;
            }
            let due = b.created + linger;
            if force || now >= due {
                if b.is_empty() && !force {
                    // Installed, but its installer's record is not in yet: look again shortly, since
                    // appenders do not signal a batch's first record.
                    let recheck = now + COMMIT_RECHECK;
                    next_ready = Some(next_ready.map_or(recheck, |n: Instant| n.min(recheck)));
                    i += 1;
                    continue;
                }
                let b = st.open.remove(i).expect("index in range");
                if b.seal() {
                    st.pending.insert((b.partition, b.seq), b);
                }
                continue;
            }
            // Batches are in creation order: the rest linger longer.
            next_ready = Some(next_ready.map_or(due, |n: Instant| n.min(due)));
            break;
        }
        while let Some(b) = self.sealed.pop() {
            st.pending.insert((b.partition, b.seq), b);
        }
        let mut waiting_for_commit = false;
        let keys: Vec<(u32, u64)> = st.pending.keys().copied().collect();
        for (partition, seq) in keys {
            if st.expected[partition as usize] != seq {
                continue; // an earlier batch of this partition is not here yet
            }
            let complete = st.pending.get(&(partition, seq)).is_some_and(|b| b.is_complete());
            if !complete {
                waiting_for_commit = true;
                continue;
            }
            let b = st.pending.remove(&(partition, seq)).expect("present");
            st.expected[partition as usize] += 1;
            let record_count = Batch::count(b.state.load(Ordering::Acquire)) as u32;
            let buffer = b.take_buffer();
            if record_count == 0 {
                self.control.deallocate(buffer);
                continue;
            }
            out.push(DrainedBatch {
                partition,
                buffer,
                record_count,
                base_timestamp: b.base_timestamp,
                max_timestamp: b.max_timestamp.load(Ordering::Acquire),
                created: b.created,
                result: Arc::clone(&b.result),
            });
        }
        // A later batch of a partition may have become takeable behind one taken just now.
        if st.pending.keys().any(|(p, s)| st.expected[*p as usize] == *s) {
            waiting_for_commit = true;
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
        if !self.sealed.is_empty() {
            return true;
        }
        if self.slots.iter().any(|s| s.load().as_ref().is_some_and(|b| !b.is_empty() && !b.is_sealed())) {
            return true;
        }
        let st = self.drain.lock().unwrap_or_else(|p| p.into_inner());
        !st.pending.is_empty() || st.open.iter().any(|b| !b.is_empty() && !b.is_sealed())
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

impl Batch {
    /// The buffer of a batch that lost the install race and was never visible to anyone else.
    fn take_buffer_unpublished(self: Arc<Self>) -> Vec<u8> {
        match Arc::try_unwrap(self) {
            Ok(batch) => batch.buffer.into_inner(),
            // Unreachable in practice (the failed CAS never shared it); keep the memory accounted.
            Err(shared) => {
                shared.seal();
                shared.take_buffer()
            }
        }
    }
}
