//! A batch's byte buffer, written by many appenders at once into ranges each claimed exclusively, and
//! moved out once by the drainer.
//!
//! A record is published by its first byte: the appender writes the rest of its range with plain
//! stores, then stores the first byte (the first byte of the record's length varint, never 0) with
//! Release. The buffer arrives zero-filled, so the drainer, walking the records from the start, sees a
//! 0 where a claimed record is not written yet, and a non-zero first byte (Acquire) once every byte of
//! that record is visible to it. No separate word is written per record.
//!
//! In production the bytes are a plain `Vec<u8>` reached through its base pointer, the first byte of
//! a record through `AtomicU8::from_ptr`. Under loom every byte is a `loom::cell::UnsafeCell` and every
//! position also has a loom `AtomicU8` for the first byte, so the model checks that each byte the
//! drainer reads was written by an appender whose write happens-before the read (a Relaxed publication
//! fails the model), while disjoint ranges stay disjoint cells and never look like a race.

/// The ordering of a record's publication (its first byte's store), shared by both versions so the
/// model checks the production one.
const PUBLISH: std::sync::atomic::Ordering = std::sync::atomic::Ordering::Release;
/// The ordering of the drainer's load of a record's first byte.
const OBSERVE: std::sync::atomic::Ordering = std::sync::atomic::Ordering::Acquire;

#[cfg(not(loom))]
pub(super) use production::ClaimableBuffer;

#[cfg(loom)]
pub(super) use model::ClaimableBuffer;

#[cfg(not(loom))]
mod production {
    use std::cell::UnsafeCell;
    use std::sync::atomic::AtomicU8;

    use super::{OBSERVE, PUBLISH};

    pub(crate) struct ClaimableBuffer {
        /// Start of `vec`'s storage, for appenders' disjoint writes.
        base: *mut u8,
        cap: usize,
        vec: UnsafeCell<Vec<u8>>,
    }

    impl ClaimableBuffer {
        /// Takes a zero-filled buffer (length = capacity).
        pub(crate) fn new(mut vec: Vec<u8>) -> Self {
            ClaimableBuffer { base: vec.as_mut_ptr(), cap: vec.len(), vec: UnsafeCell::new(vec) }
        }

        #[inline]
        pub(crate) fn capacity(&self) -> usize {
            self.cap
        }

        /// Calls `write` on bytes `[pos + 1, pos + len)`, then publishes the record by storing the
        /// first byte `write` returns at `pos` (Release).
        ///
        /// # Safety
        /// The caller claimed `[pos, pos + len)` exclusively (no other thread writes it, and nobody
        /// reads it before the first byte is published), `len >= 1`, `pos + len <= capacity()`, and
        /// [`take`](Self::take) cannot run before the publication.
        #[inline]
        pub(crate) unsafe fn write_record(&self, pos: usize, len: usize, write: impl FnOnce(&mut [u8]) -> u8) {
            debug_assert!(len >= 1 && pos + len <= self.cap);
            // The bytes are initialised: the Vec was zero-filled to its length.
            // SAFETY: the range is in the allocation (caller's bound) and the caller's alone (its
            // claim); the slice leaves out the first byte, which the drainer may be reading atomically.
            let rest = unsafe { std::slice::from_raw_parts_mut(self.base.add(pos + 1), len - 1) };
            let first = write(rest);
            debug_assert_ne!(first, 0, "a record's first byte is never 0");
            // SAFETY: `pos` is in the allocation; every other access to this byte is atomic too (the
            // drainer's load) or ordered by happens-before with this store (the zero-fill before the
            // batch was published, the drainer's take after its Acquire load of it).
            unsafe { AtomicU8::from_ptr(self.base.add(pos)) }.store(first, PUBLISH);
        }

        /// The first byte of the record at `pos` (Acquire), 0 while it is not published.
        ///
        /// # Safety
        /// `pos < capacity()`, and the buffer is not taken yet.
        #[inline]
        pub(crate) unsafe fn first_byte(&self, pos: usize) -> u8 {
            debug_assert!(pos < self.cap);
            // SAFETY: in the allocation; accessed atomically by everyone until take (see write_record).
            unsafe { AtomicU8::from_ptr(self.base.add(pos)) }.load(OBSERVE)
        }

        /// Asks for the cache lines of `[from, to)`: the drainer's walk reads one byte per record,
        /// each address depending on the last, so without this every line is a miss of its own.
        #[inline]
        pub(crate) fn prefetch(&self, from: usize, to: usize) {
            #[cfg(target_arch = "x86_64")]
            for pos in (from..to.min(self.cap)).step_by(64) {
                // SAFETY: SSE is part of x86_64's baseline; a prefetch is a hint, not a memory access
                // (it cannot fault or race with the appenders' stores), of an address in the buffer.
                unsafe {
                    std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                        self.base.wrapping_add(pos) as *const i8
                    )
                };
            }
            #[cfg(not(target_arch = "x86_64"))]
            let _ = (from, to);
        }

        /// A byte of a published record other than its first.
        ///
        /// # Safety
        /// `pos < capacity()`, inside a record whose first byte this thread read as published.
        #[inline]
        pub(crate) unsafe fn published_byte(&self, pos: usize) -> u8 {
            debug_assert!(pos < self.cap);
            // SAFETY: the record's writer wrote this byte before its Release store of the first byte,
            // which this thread's Acquire load read, and nobody writes it again.
            unsafe { self.base.add(pos).read() }
        }

        /// Moves the bytes out, cut to `len`.
        ///
        /// # Safety
        /// Called once, after every claimed range was written and its write published to this thread.
        pub(crate) unsafe fn take(&self, len: usize) -> Vec<u8> {
            // SAFETY: per the contract no appender touches the buffer any more and nobody else takes
            // it, so this is the only access to the Vec.
            let mut vec = std::mem::take(unsafe { &mut *self.vec.get() });
            vec.truncate(len);
            vec
        }

        /// The buffer of a batch nobody else ever saw.
        pub(crate) fn into_inner(self) -> Vec<u8> {
            self.vec.into_inner()
        }
    }
}

#[cfg(loom)]
mod model {
    use loom::cell::UnsafeCell;
    use loom::sync::atomic::{AtomicU8, Ordering};

    use super::{OBSERVE, PUBLISH};

    pub(crate) struct ClaimableBuffer {
        cells: Box<[UnsafeCell<u8>]>,
        /// A record's first byte lives here (the cell at its position stays 0).
        firsts: Box<[AtomicU8]>,
    }

    impl ClaimableBuffer {
        pub(crate) fn new(vec: Vec<u8>) -> Self {
            let firsts = (0..vec.len()).map(|_| AtomicU8::new(0)).collect();
            ClaimableBuffer { cells: vec.into_iter().map(UnsafeCell::new).collect(), firsts }
        }

        pub(crate) fn capacity(&self) -> usize {
            self.cells.len()
        }

        /// # Safety
        /// As the production version.
        pub(crate) unsafe fn write_record(&self, pos: usize, len: usize, write: impl FnOnce(&mut [u8]) -> u8) {
            let mut scratch = vec![0u8; len - 1];
            let first = write(&mut scratch);
            for (cell, byte) in self.cells[pos + 1..pos + len].iter().zip(scratch) {
                // SAFETY: loom checks this access against every other access to the same byte.
                cell.with_mut(|p| unsafe { *p = byte });
            }
            self.firsts[pos].store(first, PUBLISH);
        }

        /// # Safety
        /// As the production version.
        pub(crate) unsafe fn first_byte(&self, pos: usize) -> u8 {
            self.firsts[pos].load(OBSERVE)
        }

        pub(crate) fn prefetch(&self, _from: usize, _to: usize) {}

        /// # Safety
        /// As the production version.
        pub(crate) unsafe fn published_byte(&self, pos: usize) -> u8 {
            // SAFETY: loom checks this read against the writes to the same byte.
            self.cells[pos].with(|p| unsafe { *p })
        }

        /// # Safety
        /// As the production version.
        pub(crate) unsafe fn take(&self, len: usize) -> Vec<u8> {
            // Keep the capacity, as the production buffer does: the pool recycles by capacity.
            let mut vec = Vec::with_capacity(self.cells.len());
            // SAFETY: loom checks each read against the writes to the same byte; the first bytes were
            // read with Acquire by the drainer's walk before the take.
            vec.extend(
                self.cells[..len]
                    .iter()
                    .zip(&self.firsts[..len])
                    .map(|(c, f)| c.with(|p| unsafe { *p }) | f.load(Ordering::Relaxed)),
            );
            vec
        }

        pub(crate) fn into_inner(self) -> Vec<u8> {
            // SAFETY: `self` is owned, so nothing else accesses the cells.
            self.cells.iter().map(|c| c.with(|p| unsafe { *p })).collect()
        }
    }
}
