//! One batch under construction by concurrent appenders: claim, write, commit; seal; take.

use std::sync::Arc;
use std::time::Instant;

use super::buffer::ClaimableBuffer;
use crate::accumulator::ProduceResult;
use crate::record::{RECORD_BATCH_OVERHEAD, RecordParts};
use crate::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

const SEALED: u64 = 1 << 63;
const COUNT_SHIFT: u32 = 32;
const COUNT_MASK: u64 = (1 << 31) - 1;
const BYTES_MASK: u64 = (1 << 32) - 1;

/// One batch under construction.
pub(super) struct Batch {
    pub partition: u32,
    /// The partition's batch sequence number (install order), which the drainer takes them in.
    pub seq: u64,
    pub base_timestamp: i64,
    pub created: Instant,
    /// sealed bit | count << 32 | reserved bytes (header included).
    state: AtomicU64,
    /// Bytes whose records are fully written (header included).
    committed: AtomicU64,
    max_timestamp: AtomicI64,
    pub result: Arc<ProduceResult>,
    buffer: ClaimableBuffer,
    taken: AtomicBool,
}

// SAFETY: `buffer` is only reached under the batch's protocol: appenders write only byte ranges they
// claimed exclusively with a CAS on `state`, and the single drainer moves the bytes out only after the
// batch is sealed and every claimed range is committed (see `take_buffer`). Everything else is atomics
// or immutable after publication.
unsafe impl Send for Batch {}
// SAFETY: as above; shared access never creates overlapping mutable access.
unsafe impl Sync for Batch {}

/// The outcome of [`Batch::try_append`].
pub(super) enum Claim {
    /// Appended at `offset_delta`, `size` bytes; `full` when a record like it would not fit again.
    Done { offset_delta: u32, size: usize, full: bool },
    /// The record does not fit: seal and open the next batch.
    NoRoom,
    /// Someone sealed the batch first.
    Sealed,
}

impl Batch {
    /// A batch over a zero-filled `buffer` (its length is the capacity, header space included).
    pub(super) fn new(partition: u32, seq: u64, base_timestamp: i64, buffer: Vec<u8>) -> Self {
        Batch {
            partition,
            seq,
            base_timestamp,
            created: Instant::now(),
            state: AtomicU64::new(RECORD_BATCH_OVERHEAD as u64),
            committed: AtomicU64::new(RECORD_BATCH_OVERHEAD as u64),
            max_timestamp: AtomicI64::new(base_timestamp),
            result: Arc::new(ProduceResult::new()),
            buffer: ClaimableBuffer::new(buffer),
            taken: AtomicBool::new(false),
        }
    }

    fn count(state: u64) -> u64 {
        (state >> COUNT_SHIFT) & COUNT_MASK
    }

    /// Claims room for the record, writes it, and commits it.
    pub(super) fn try_append(&self, timestamp: i64, parts: &RecordParts<'_>) -> Claim {
        let delta = timestamp.wrapping_sub(self.base_timestamp);
        let cap = self.buffer.capacity();
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
            let size = parts.size(delta, count as i32);
            if bytes as usize + size > cap {
                return Claim::NoRoom;
            }
            let next = s + (1 << COUNT_SHIFT) + size as u64;
            match self.state.compare_exchange_weak(s, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break (count as u32, bytes as usize, size),
                Err(actual) => s = actual,
            }
        };
        // Claims only move the end forward and are checked against `cap`, so ranges never overlap.
        let write = |slot: &mut [u8]| parts.write(slot, delta, offset_delta as i32);
        // SAFETY: the CAS gave this thread [pos, pos + size) alone, within `cap`; the drainer cannot
        // take the buffer before the commit below brings `committed` to the reserved end.
        let written = unsafe { self.buffer.write_range(pos, size, write) };
        debug_assert_eq!(written, size);
        // Timestamps are milliseconds, so nearly every record ties the current maximum: a plain load
        // settles it, and only a record that raises it pays for the read-modify-write.
        if timestamp > self.max_timestamp.load(Ordering::Relaxed) {
            self.max_timestamp.fetch_max(timestamp, Ordering::Relaxed);
        }
        // Publishes the record's bytes (and the max timestamp above) to the drainer's Acquire load.
        self.committed.fetch_add(size as u64, Ordering::Release);
        Claim::Done { offset_delta, size, full: pos + 2 * size > cap }
    }

    /// Sets the sealed bit; true for the one thread that set it.
    pub(super) fn seal(&self) -> bool {
        self.state.fetch_or(SEALED, Ordering::AcqRel) & SEALED == 0
    }

    pub(super) fn is_sealed(&self) -> bool {
        self.state.load(Ordering::Acquire) & SEALED != 0
    }

    pub(super) fn is_empty(&self) -> bool {
        self.record_count() == 0
    }

    /// Records claimed so far (final once sealed).
    pub(super) fn record_count(&self) -> u32 {
        Self::count(self.state.load(Ordering::Acquire)) as u32
    }

    /// Sealed, and every claimed record written.
    pub(super) fn is_complete(&self) -> bool {
        let s = self.state.load(Ordering::Acquire);
        s & SEALED != 0 && self.committed.load(Ordering::Acquire) == s & BYTES_MASK
    }

    /// Largest record timestamp; final once [`is_complete`](Self::is_complete) returned true.
    pub(super) fn max_timestamp(&self) -> i64 {
        self.max_timestamp.load(Ordering::Relaxed)
    }

    /// Moves the buffer out, cut to the batch's length. Drainer only, once, after `is_complete`.
    pub(super) fn take_buffer(&self) -> Vec<u8> {
        let already = self.taken.swap(true, Ordering::AcqRel);
        assert!(!already, "a batch's buffer is taken once");
        let len = (self.state.load(Ordering::Acquire) & BYTES_MASK) as usize;
        // Sealed: no new claims. `committed` == reserved end (Release adds, Acquire in is_complete).
        // SAFETY: so every claimed range is written and visible and no appender touches the buffer any
        // more; `taken` makes this the only take.
        unsafe { self.buffer.take(len) }
    }

    /// The buffer of a batch that lost the install race and was never visible to anyone else.
    pub(super) fn take_buffer_unpublished(self: Arc<Self>) -> Vec<u8> {
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
