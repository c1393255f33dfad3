//! One batch under construction by concurrent appenders: claim, write, publish; seal; walk; take.
//!
//! # The claim word
//! `state` packs sealed bit | record count | `excl`, where `excl` is the bytes of the claimed records
//! *minus* their offsetDelta varints. A record's offsetDelta is the count it claims at, and the width
//! of that varint is a function of the count alone, so the position of record `c` is
//! `RECORD_BATCH_OVERHEAD + excl + W(c)`, `W(c)` being the summed widths of offsetDeltas `0..c`
//! ([`offset_widths`]). What a record adds to `excl` — its size less its offsetDelta width — then does
//! not depend on where it lands (unless its length varint changes width with it, see
//! [`Batch::try_append`]), so one `fetch_add` both orders the record (its offsetDelta) and claims its
//! bytes, with no retry loop.
//!
//! A `fetch_add` cannot refuse, so a claim is checked after the fact: one that saw the sealed bit, or
//! does not fit (bytes or [`MAX_RECORDS`]), is void, and so is every claim after it (positions only
//! grow). The valid claims are therefore a prefix of the word's modification order, ending at the seal
//! or at the first claim that did not fit, whichever comes first: the sealer records the word it
//! sealed (`seal_point`), the first non-fitting claimer the word it saw (`cut`), and the drainer takes
//! the earlier ([`Batch::extent`]).
//!
//! # Publication
//! Each record is written whole into its range, then published by the Release store of its flag (one
//! byte per offsetDelta, [`ClaimableBuffer`]); the drainer reads the flags of the claimed records in
//! order and takes the batch once every one is set. Per record, the only read-modify-write on a shared
//! line is the claim, and the buffer's bytes need no zero-filling between uses.
//!
//! # The completion's references
//! A record's handle on its batch's completion ([`BatchRef`]) is not a reference-count increment: the
//! batch starts with [`PRECHARGE`] handle references, each valid claim takes one, and the drainer gives
//! back the ones no record took once the count is final, keeping one for the drained batch's own
//! handle (the sender completes the batch through it). The handles together own one strong reference
//! to the batch, dropped with the last handle.
//!
//! # The block
//! A batch lives in a block of the accumulator's [`Pool`]: its completion ([`ProduceResult`]) is a field
//! of it, not an allocation of its own, and when the last reference goes (the slot's, an appender's
//! cached one, the drainer's, the handles') the block goes back to the free list for a later batch.

use std::ptr::NonNull;
use std::sync::Arc;
use std::time::Instant;

use super::buffer::{ClaimableBuffer, Flags};
use crate::accumulator::ProduceResult;
use crate::accumulator::pool::{Pool, Pooled};
use crate::record::{RECORD_BATCH_OVERHEAD, RecordParts, varint};
use crate::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering, fence};

const SEALED: u64 = 1 << 63;
const COUNT_SHIFT: u32 = 39;
const ONE_RECORD: u64 = 1 << COUNT_SHIFT;
const COUNT_MASK: u64 = (1 << 24) - 1;
const BYTES_MASK: u64 = (1 << COUNT_SHIFT) - 1;
/// Records a batch holds at most: half the count field, the other half is headroom for void claims
/// (at most two per thread per batch: one from its cached batch, one through the slot) so the count never carries into the sealed bit. Kafka has no
/// such bound; it takes a batch of over 58 MB of 7-byte records to reach it.
pub(super) const MAX_RECORDS: u64 = 1 << 23;
/// Largest batch buffer: a sixteenth of the bytes field, the rest headroom for void claims.
const MAX_CAPACITY: usize = 1 << 35;
/// Records above this size claim with a compare-and-swap that checks the fit first, so a void claim
/// adds at most this much past the capacity.
const FETCH_ADD_MAX: usize = 1 << 20;
/// Handle references a batch starts with: more than it can hold records.
const PRECHARGE: u64 = 1 << 40;
/// `cut` and `seal_point` before they are set.
const UNSET: u64 = u64::MAX;

/// Summed widths of the offsetDelta varints `0..count` (zig-zag: 1 byte below 64, 2 below 8192,
/// 3 below 2^20, 4 below 2^27).
#[inline]
pub(super) fn offset_widths(count: u64) -> u64 {
    // Batches of up to 8192 records (all but the tiniest records in all but the largest batches)
    // take the first two branches.
    if count <= 64 {
        count
    } else if count <= 8192 {
        2 * count - 64
    } else {
        3 * count - 64 - 8192 + count.saturating_sub(1 << 20)
    }
}

/// Width of the offsetDelta varint of record `count` (below 2^27, so at most 4 bytes).
#[inline]
fn offset_width(count: u64) -> usize {
    if count < 64 {
        1
    } else if count < 8192 {
        2
    } else if count < 1 << 20 {
        3
    } else {
        4
    }
}

/// What a record whose body less its offsetDelta is `base_body` bytes adds to `excl`: its length
/// varint plus `base_body`, when that width is the same at every offsetDelta width a batch reaches
/// (1 to 4 bytes, so bodies of `base_body + 1` to `base_body + 4`) and the record is at most
/// [`FETCH_ADD_MAX`]; `None` when the claim must check first.
#[inline]
fn fetch_add_amount(base_body: usize) -> Option<usize> {
    // A zig-zag varint of a positive length takes 1 byte below 64, 2 below 8192, 3 below 2^20
    // (which is FETCH_ADD_MAX: larger records check first).
    const _: () = assert!(FETCH_ADD_MAX <= 1 << 20);
    let width = if base_body + 4 < 64 {
        1
    } else if base_body + 1 >= 64 && base_body + 4 < 8192 {
        2
    } else if base_body + 1 >= 8192 && base_body + 4 < FETCH_ADD_MAX {
        3
    } else {
        return None;
    };
    Some(base_body + width)
}

#[inline]
fn count_of(state: u64) -> u64 {
    (state >> COUNT_SHIFT) & COUNT_MASK
}

#[inline]
fn excl_of(state: u64) -> u64 {
    state & BYTES_MASK
}

/// Where the record claimed at `state` starts.
#[inline]
fn position(state: u64) -> usize {
    RECORD_BATCH_OVERHEAD + (excl_of(state) + offset_widths(count_of(state))) as usize
}

/// What appenders write for every record, alone on its cache line.
#[repr(C, align(64))]
struct Hot {
    /// sealed bit | count << 39 | bytes claimed less their offsetDelta varints.
    state: AtomicU64,
    /// Handle references left (see the module docs).
    handles: AtomicU64,
    max_timestamp: AtomicI64,
}

/// One batch under construction.
#[repr(C)]
pub(super) struct Batch {
    hot: Hot,
    pub partition: u32,
    /// The partition's batch sequence number (install order), which the drainer takes them in.
    pub seq: u64,
    pub base_timestamp: i64,
    pub created: Instant,
    /// The completion the batch's records share.
    pub result: ProduceResult,
    buffer: ClaimableBuffer,
    /// The state word the sealer replaced (read by the drainer, after the hand-over).
    seal_point: AtomicU64,
    /// The state word the first claim that did not fit saw, if one did.
    cut: AtomicU64,
    /// The count is final and the unclaimed handle references are given back.
    finalized: AtomicBool,
}

// SAFETY: `buffer` is only reached under the batch's protocol: appenders write only byte ranges they
// claimed exclusively with the state word, the drainer reads a record only after the Acquire load of
// its published first byte, and moves the bytes out only after it walked every valid record (see
// `take_buffer`). Everything else is atomics or immutable after publication.
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

/// The valid records of a sealed batch: how many, and where they end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Extent {
    pub count: u32,
    pub end: usize,
}

/// How far the drainer's walk over published records got: the records seen published.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Walk {
    count: u32,
}

impl Batch {
    /// A published-to-be batch over `buffer` (its length is the capacity, header space included;
    /// its bytes are overwritten before anyone reads them), in a block of `pool`, holding the handles'
    /// strong reference. `spare_flags`: publication flags a drained batch gave back (used if the
    /// length fits).
    pub(super) fn create(
        pool: &Arc<Pool<Batch>>,
        partition: u32,
        seq: u64,
        base_timestamp: i64,
        buffer: Vec<u8>,
        spare_flags: Option<Flags>,
    ) -> Pooled<Batch> {
        assert!(buffer.len() <= MAX_CAPACITY, "a batch buffer of {} bytes is over the lock-free limit", buffer.len());
        let batch = Pooled::new(
            pool,
            Batch {
                hot: Hot {
                    state: AtomicU64::new(0),
                    handles: AtomicU64::new(PRECHARGE),
                    max_timestamp: AtomicI64::new(base_timestamp),
                },
                partition,
                seq,
                base_timestamp,
                created: Instant::now(),
                result: ProduceResult::new(),
                buffer: ClaimableBuffer::new(buffer, spare_flags),
                seal_point: AtomicU64::new(UNSET),
                cut: AtomicU64::new(UNSET),
                finalized: AtomicBool::new(false),
            },
        );
        // The handles' share, given back by the last of them (`release_handles`).
        std::mem::forget(batch.clone());
        batch
    }

    /// [`try_append`](Self::try_append) for the calls off the per-record path (a batch from the
    /// slot, a fresh batch), so that only the per-record one is inlined.
    #[inline(never)]
    pub(super) fn try_append_outlined(&self, timestamp: i64, parts: &RecordParts<'_>) -> Claim {
        self.try_append(timestamp, parts)
    }

    /// Claims room for the record, writes it, and publishes it.
    #[inline(always)]
    pub(super) fn try_append(&self, timestamp: i64, parts: &RecordParts<'_>) -> Claim {
        let delta = timestamp.wrapping_sub(self.base_timestamp);
        // The body less its offsetDelta varint.
        let base_body = parts.body_size(delta, 0) - 1;
        let Some(amount) = fetch_add_amount(base_body) else {
            return self.try_append_checked(timestamp, delta, parts);
        };
        // The claim orders nothing else: the record's bytes reach the drainer through its own
        // publication, and the sealed bit and the fit are checked on the value it returns.
        let prev = self.hot.state.fetch_add(ONE_RECORD + amount as u64, Ordering::Relaxed);
        if prev & SEALED != 0 {
            return Claim::Sealed;
        }
        let count = count_of(prev);
        let pos = position(prev);
        let size = amount + offset_width(count);
        if count >= MAX_RECORDS || pos + size > self.buffer.capacity() {
            // Void, and so is every later claim. The first such claim (its predecessor fitted)
            // marks where the batch ends, in case the seal comes after it.
            // Relaxed: the cut only tells the drainer where to stop; the bytes it reads up to
            // there are ordered by each record's own publication.
            if count <= MAX_RECORDS && pos <= self.buffer.capacity() {
                self.cut.store(prev, Ordering::Relaxed);
            }
            return Claim::NoRoom;
        }
        self.write_claimed(count as u32, pos, size, timestamp, delta, parts)
    }

    /// The claim for records whose length varint may change width with the offsetDelta's, or too
    /// large for a `fetch_add` (see [`FETCH_ADD_MAX`]): a compare-and-swap that checks the fit first.
    #[cold]
    #[inline(never)]
    fn try_append_checked(&self, timestamp: i64, delta: i64, parts: &RecordParts<'_>) -> Claim {
        let cap = self.buffer.capacity();
        let mut s = self.hot.state.load(Ordering::Relaxed);
        let (prev, size) = loop {
            if s & SEALED != 0 {
                return Claim::Sealed;
            }
            let count = count_of(s);
            if count >= MAX_RECORDS {
                return Claim::NoRoom;
            }
            let size = parts.size(delta, count as i32);
            if position(s) + size > cap {
                return Claim::NoRoom;
            }
            let width = varint::varint_len(count as i32);
            let next = s + ONE_RECORD + (size - width) as u64;
            match self.hot.state.compare_exchange_weak(s, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => break (s, size),
                Err(actual) => s = actual,
            }
        };
        self.write_claimed(count_of(prev) as u32, position(prev), size, timestamp, delta, parts)
    }

    /// Writes and publishes the record of a valid claim: offsetDelta `offset_delta`, bytes
    /// `[pos, pos + size)`.
    #[inline(always)]
    fn write_claimed(
        &self,
        offset_delta: u32,
        pos: usize,
        size: usize,
        timestamp: i64,
        delta: i64,
        parts: &RecordParts<'_>,
    ) -> Claim {
        debug_assert_eq!(size, parts.size(delta, offset_delta as i32));
        // Timestamps are milliseconds, so nearly every record ties the current maximum: a plain load
        // settles it, and only a record that raises it pays for the read-modify-write. Both precede
        // the publication below, which carries them to the drainer.
        if timestamp > self.hot.max_timestamp.load(Ordering::Relaxed) {
            self.hot.max_timestamp.fetch_max(timestamp, Ordering::Relaxed);
        }
        // Valid claims only move the end forward and end within `cap`, so ranges never overlap.
        // SAFETY: the claim gave this thread [pos, pos + size) and offsetDelta `offset_delta` alone,
        // within `cap`; the drainer reads none of it before the flag is set, and takes the buffer only
        // after that.
        unsafe {
            self.buffer.write_record(pos, size, offset_delta as usize, |slot| {
                let written = parts.write(slot, delta, offset_delta as i32);
                debug_assert_eq!(written, size);
            });
        }
        let cap = self.buffer.capacity();
        let full = pos + 2 * size > cap || u64::from(offset_delta) + 1 >= MAX_RECORDS;
        Claim::Done { offset_delta, size, full }
    }

    /// Sets the sealed bit; true for the one thread that set it, which records the word it sealed.
    pub(super) fn seal(&self) -> bool {
        let prev = self.hot.state.fetch_or(SEALED, Ordering::Relaxed);
        if prev & SEALED != 0 {
            return false;
        }
        // Read by the drainer after the hand-over queue (or by the sealing drainer itself).
        self.seal_point.store(prev, Ordering::Relaxed);
        true
    }

    pub(super) fn is_sealed(&self) -> bool {
        self.hot.state.load(Ordering::Relaxed) & SEALED != 0
    }

    /// The valid records, once known: the seal point, unless a claim before it did not fit, then
    /// that claim's cut (`None` until its claimer stored it). For the thread that sealed the batch or
    /// received it from the sealer.
    pub(super) fn extent(&self) -> Option<Extent> {
        let sealed = self.seal_point.load(Ordering::Relaxed);
        assert_ne!(sealed, UNSET, "extent of a batch not sealed by or for this thread");
        let cap = self.buffer.capacity();
        let at = if count_of(sealed) <= MAX_RECORDS && position(sealed) <= cap {
            sealed
        } else {
            let cut = self.cut.load(Ordering::Relaxed);
            if cut == UNSET {
                return None;
            }
            cut
        };
        Some(Extent { count: count_of(at) as u32, end: position(at) })
    }

    /// Walks on over the records published since; true once every record of `extent` is.
    pub(super) fn walk(&self, walk: &mut Walk, extent: Extent) -> bool {
        walk.count += self.buffer.published_run(walk.count as usize, extent.count as usize) as u32;
        walk.count == extent.count
    }

    /// Largest record timestamp; final once the walk reached the extent's end.
    pub(super) fn max_timestamp(&self) -> i64 {
        self.hot.max_timestamp.load(Ordering::Relaxed)
    }

    /// Moves the buffer out, cut to the extent, with its publication flags (cleared, for a later
    /// batch), and gives back the handle references no record took but one: the drained batch's
    /// handle, returned with them.
    /// Drainer only, once, after [`walk`](Self::walk) returned true.
    pub(super) fn take_buffer(&self, extent: Extent) -> (Vec<u8>, Flags, BatchRef) {
        assert!(self.finalize(extent.count, 1), "a batch's buffer is taken once");
        // SAFETY: the reference `finalize` kept, owned by this handle alone.
        let handle = unsafe { BatchRef::claimed(self) };
        // SAFETY: sealed, so every valid claim is in the extent, and the walk read each record's flag
        // as published (Acquire), so every byte up to `end` is written and visible, and the flags
        // of the extent's records are the only ones set and no appender touches them again; void
        // claims write nothing; `finalized` makes this the only take.
        unsafe { (self.buffer.take(extent.end), self.buffer.take_flags(extent.count as usize), handle) }
    }

    /// For a batch the drainer will never take (the accumulator is dropped): seals it and gives back
    /// the unclaimed handle references, unless that was done.
    ///
    /// Only once no appender can be running, so every cut is stored.
    pub(super) fn abandon(&self) {
        self.seal();
        if let Some(extent) = self.extent() {
            self.finalize(extent.count, 0);
        }
    }

    /// Marks the count final and gives back `PRECHARGE - count - keep` handle references (`keep`
    /// stay with the caller, for handles of its own); false if already.
    fn finalize(&self, count: u32, keep: u64) -> bool {
        if self.finalized.swap(true, Ordering::Relaxed) {
            return false;
        }
        // SAFETY: the caller holds a reference to `self`, so the batch outlives the call; the count
        // is final, so exactly `count` references stay with the records' handles, and `keep` with the
        // caller.
        unsafe { Self::release_handles(self, PRECHARGE - u64::from(count) - keep) };
        true
    }

    /// Drops `n` handle references; the last one drops the handles' strong reference to the batch.
    ///
    /// # Safety
    /// `batch` points to a live batch made by [`create`](Self::create), and the caller owns `n` of its
    /// handle references (it must not use them, or `batch`, afterwards unless it holds an `Arc`).
    unsafe fn release_handles(batch: *const Batch, n: u64) {
        // SAFETY: live per the contract: the caller's `n` references keep the allocation until the
        // subtraction below gives them up.
        let handles = unsafe { &(*batch).hot.handles };
        if handles.fetch_sub(n, Ordering::Release) == n {
            // Every other handle's use of the batch happens-before this (their Release subtractions).
            fence(Ordering::Acquire);
            // SAFETY: the handles' strong reference, leaked in `create` and dropped only here, when
            // the last reference goes.
            unsafe { Pooled::decrement_strong_count(batch) };
        }
    }

    /// The buffer of a batch that lost the install race and was never visible to anyone else (its
    /// one record, written by this thread, goes with it; no handle was made for it).
    pub(super) fn take_buffer_unpublished(&self) -> Vec<u8> {
        self.seal();
        self.finalize(0, 0);
        // SAFETY: no other thread ever saw the batch (its install failed), so this thread's own
        // write is the only one, and `finalized` makes this the only take.
        unsafe { self.buffer.take(0) }
    }
}

/// A record's share of its batch's completion (see the module docs): derefs to the batch's
/// [`ProduceResult`]; no reference-count increment to make one.
pub(crate) struct BatchRef(NonNull<Batch>);

// SAFETY: a `BatchRef` only reads the batch's immutable `result` and drops a handle reference with an
// atomic subtraction; `Batch` is Send + Sync.
unsafe impl Send for BatchRef {}
// SAFETY: as above.
unsafe impl Sync for BatchRef {}

impl BatchRef {
    /// The handle of the record that just claimed in `batch`.
    ///
    /// # Safety
    /// Once per valid claim (each owns one of the precharged references).
    pub(super) unsafe fn claimed(batch: &Batch) -> Self {
        BatchRef(NonNull::from(batch))
    }

    pub(crate) fn result(&self) -> &ProduceResult {
        // SAFETY: this handle's reference keeps the batch (and so its `result`) alive.
        unsafe { &self.0.as_ref().result }
    }
}

impl Drop for BatchRef {
    fn drop(&mut self) {
        // SAFETY: the batch is live (this handle's reference) and this handle owns one reference,
        // not used again.
        unsafe { Batch::release_handles(self.0.as_ptr(), 1) }
    }
}

#[cfg(all(test, not(loom)))]
#[path = "batch_tests.rs"]
mod tests;
