//! A batch's byte buffer, written by many appenders at once into ranges each claimed exclusively, and
//! moved out once by the drainer.
//!
//! In production the bytes are a plain `Vec<u8>` reached through its base pointer. Under loom every
//! byte is a `loom::cell::UnsafeCell`, so the model checks that each byte the drainer reads was written
//! by an appender whose write happens-before the read (a missing Release/Acquire edge between commit
//! and drain fails the model), while disjoint ranges stay disjoint cells and never look like a race.

#[cfg(not(loom))]
pub(super) use production::ClaimableBuffer;

#[cfg(loom)]
pub(super) use model::ClaimableBuffer;

#[cfg(not(loom))]
mod production {
    use std::cell::UnsafeCell;

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

        /// Calls `write` on bytes `[pos, pos + len)`.
        ///
        /// # Safety
        /// The caller claimed that range exclusively (no other thread writes or reads it until the
        /// caller publishes the write), `pos + len <= capacity()`, and [`take`](Self::take) cannot run
        /// before that publication.
        #[inline]
        pub(crate) unsafe fn write_range<R>(&self, pos: usize, len: usize, write: impl FnOnce(&mut [u8]) -> R) -> R {
            debug_assert!(pos + len <= self.cap);
            // The bytes are initialised: the Vec was zero-filled to its length.
            // SAFETY: the range is in the allocation (caller's bound) and the caller's alone (its
            // claim), so a unique `&mut [u8]` over it is valid for the duration of `write`.
            let slot = unsafe { std::slice::from_raw_parts_mut(self.base.add(pos), len) };
            write(slot)
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

    pub(crate) struct ClaimableBuffer {
        cells: Box<[UnsafeCell<u8>]>,
    }

    impl ClaimableBuffer {
        pub(crate) fn new(vec: Vec<u8>) -> Self {
            ClaimableBuffer { cells: vec.into_iter().map(UnsafeCell::new).collect() }
        }

        pub(crate) fn capacity(&self) -> usize {
            self.cells.len()
        }

        /// # Safety
        /// As the production version.
        pub(crate) unsafe fn write_range<R>(&self, pos: usize, len: usize, write: impl FnOnce(&mut [u8]) -> R) -> R {
            let mut scratch = vec![0u8; len];
            let r = write(&mut scratch);
            for (cell, byte) in self.cells[pos..pos + len].iter().zip(scratch) {
                // SAFETY: loom checks this access against every other access to the same byte.
                cell.with_mut(|p| unsafe { *p = byte });
            }
            r
        }

        /// # Safety
        /// As the production version.
        pub(crate) unsafe fn take(&self, len: usize) -> Vec<u8> {
            // Keep the capacity, as the production buffer does: the pool recycles by capacity.
            let mut vec = Vec::with_capacity(self.cells.len());
            // SAFETY: loom checks each read against the writes to the same byte.
            vec.extend(self.cells[..len].iter().map(|c| c.with(|p| unsafe { *p })));
            vec
        }

        pub(crate) fn into_inner(self) -> Vec<u8> {
            // SAFETY: `self` is owned, so nothing else accesses the cells.
            self.cells.iter().map(|c| c.with(|p| unsafe { *p })).collect()
        }
    }
}
