//! A batch's byte buffer, written by many appenders at once into ranges each claimed exclusively, and
//! moved out once by the drainer.
//!
//! A record is published by its flag: the appender writes its whole range with plain stores, in one
//! pass, then stores 1 (Release) into the flag of its offsetDelta. The drainer reads the flags of the
//! claimed offsetDeltas in order (Acquire), so once it saw a record's flag, every byte of that record is
//! visible to it. The flags are a small array of their own (one byte per record the buffer could hold
//! at the smallest record size), zero when a batch starts; the record bytes need no zero-filling, so a
//! buffer is reused as it comes back, as the mutex accumulator's are. The flags are reused too: the
//! drainer moves them out with the bytes, clears the ones the batch's records set (the only ones set)
//! and the accumulator hands them to a later batch of the same capacity, so a batch does not
//! allocate and zero a fresh array.
//!
//! In production the bytes are a plain `Vec<u8>` reached through its base pointer. Under loom every
//! byte is a `loom::cell::UnsafeCell` and every flag a loom `AtomicU8`, so the model checks that each
//! byte the drainer reads was written by an appender whose write happens-before the read (a Relaxed
//! publication fails the model), while disjoint ranges stay disjoint cells and never look like a race.

use crate::record::RECORD_BATCH_OVERHEAD;

/// The ordering of a record's publication (its flag's store), shared by both versions so the model
/// checks the production one.
const PUBLISH: std::sync::atomic::Ordering = std::sync::atomic::Ordering::Release;
/// The ordering of the drainer's load of a record's flag.
const OBSERVE: std::sync::atomic::Ordering = std::sync::atomic::Ordering::Acquire;

/// The smallest record: length, attributes, timestampDelta, offsetDelta, key length (null), value
/// length (null) and header count, one byte each.
const MIN_RECORD: usize = 7;

/// Flags a buffer of `capacity` bytes needs: one per record it can hold at most.
fn flags_for(capacity: usize) -> usize {
    capacity.saturating_sub(RECORD_BATCH_OVERHEAD) / MIN_RECORD + 1
}

#[cfg(not(loom))]
pub(super) use production::{ClaimableBuffer, Flags};

#[cfg(loom)]
pub(super) use model::{ClaimableBuffer, Flags};

#[cfg(not(loom))]
mod production {
    use std::cell::UnsafeCell;
    use std::sync::atomic::AtomicU8;

    use super::{OBSERVE, PUBLISH, flags_for};

    pub(crate) struct ClaimableBuffer {
        /// Start of `vec`'s storage, for appenders' disjoint writes.
        base: *mut u8,
        cap: usize,
        vec: UnsafeCell<Vec<u8>>,
        /// Per offsetDelta: 1 once the record is written. Moved out by [`take_flags`](Self::take_flags).
        flags: UnsafeCell<Flags>,
    }

    /// A buffer's publication flags, all zero between batches.
    pub(crate) type Flags = Box<[AtomicU8]>;

    impl ClaimableBuffer {
        /// Takes a buffer (length = capacity; its bytes are overwritten before anyone reads them),
        /// and `spare` flags (all zero) if they are the length this capacity needs.
        pub(crate) fn new(mut vec: Vec<u8>, spare: Option<Flags>) -> Self {
            let n = flags_for(vec.len());
            let flags = match spare {
                Some(flags) if flags.len() == n => flags,
                // SAFETY: a zero byte is a valid `AtomicU8` (0), so the zeroed slice is initialised.
                _ => unsafe { Box::<[AtomicU8]>::new_zeroed_slice(n).assume_init() },
            };
            debug_assert!(flags.iter().all(|f| f.load(std::sync::atomic::Ordering::Relaxed) == 0));
            ClaimableBuffer {
                base: vec.as_mut_ptr(),
                cap: vec.len(),
                vec: UnsafeCell::new(vec),
                flags: UnsafeCell::new(flags),
            }
        }

        #[inline]
        pub(crate) fn capacity(&self) -> usize {
            self.cap
        }

        /// Calls `write` on bytes `[pos, pos + len)`, then publishes the record by setting the flag
        /// of `index` (Release). Panics if `index` is past the flags (it cannot be for a claim that
        /// fits: every record takes at least `MIN_RECORD` bytes).
        ///
        /// # Safety
        /// The caller claimed `[pos, pos + len)` and `index` exclusively (no other thread writes them,
        /// and nobody reads the range before the flag is set), `pos + len <= capacity()`, and
        /// [`take`](Self::take) cannot run before the publication.
        #[inline]
        pub(crate) unsafe fn write_record(&self, pos: usize, len: usize, index: usize, write: impl FnOnce(&mut [u8])) {
            debug_assert!(pos + len <= self.cap);
            // SAFETY: the flags are replaced only by `take_flags`, which the caller's contract puts
            // after this publication; until then everyone only reads the box.
            let flag = unsafe { &(*self.flags.get())[index] };
            // The bytes are initialised: the Vec is `cap` long.
            // SAFETY: the range is in the allocation (caller's bound) and the caller's alone (its
            // claim): nobody else writes it, and nobody reads it before the flag below is set.
            let slot = unsafe { std::slice::from_raw_parts_mut(self.base.add(pos), len) };
            write(slot);
            flag.store(1, PUBLISH);
        }

        /// How many records from offsetDelta `from` on, up to `to`, are published, counting up to the
        /// first that is not (Acquire: the bytes of every record counted are visible to the caller).
        #[inline]
        pub(crate) fn published_run(&self, from: usize, to: usize) -> usize {
            // SAFETY: the drainer calls this before `take_flags`, on its own thread, the only one
            // that replaces the box; appenders only read it.
            let flags = unsafe { &*self.flags.get() };
            flags[from..to].iter().take_while(|f| f.load(OBSERVE) != 0).count()
        }

        /// Moves the flags out for a later batch, clearing the first `published`.
        ///
        /// # Safety
        /// As [`take`](Self::take): once, after the flags of offsetDeltas `0..published` were seen set,
        /// and no other flag can be set (every other claim is void and writes nothing).
        pub(crate) unsafe fn take_flags(&self, published: usize) -> Flags {
            // SAFETY: each appender's last access to the flags is its publication, which this thread
            // observed (Acquire) before the call, and no appender accesses them afterwards (the
            // contract), so this is the only access.
            let mut flags = std::mem::take(unsafe { &mut *self.flags.get() });
            for flag in &mut flags[..published] {
                *flag.get_mut() = 0;
            }
            flags
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
    }
}

#[cfg(loom)]
mod model {
    use loom::cell::UnsafeCell;
    use loom::sync::atomic::AtomicU8;

    use super::{OBSERVE, PUBLISH, flags_for};

    pub(crate) struct ClaimableBuffer {
        cells: Box<[UnsafeCell<u8>]>,
        flags: UnsafeCell<Flags>,
    }

    pub(crate) type Flags = Box<[AtomicU8]>;

    impl ClaimableBuffer {
        pub(crate) fn new(vec: Vec<u8>, spare: Option<Flags>) -> Self {
            let n = flags_for(vec.len());
            let flags = match spare {
                Some(flags) if flags.len() == n => flags,
                _ => (0..n).map(|_| AtomicU8::new(0)).collect(),
            };
            assert!(flags.iter().all(|f| f.load(std::sync::atomic::Ordering::Relaxed) == 0), "spare flags are clear");
            ClaimableBuffer { cells: vec.into_iter().map(UnsafeCell::new).collect(), flags: UnsafeCell::new(flags) }
        }

        pub(crate) fn capacity(&self) -> usize {
            self.cells.len()
        }

        /// # Safety
        /// As the production version.
        pub(crate) unsafe fn write_record(&self, pos: usize, len: usize, index: usize, write: impl FnOnce(&mut [u8])) {
            let mut scratch = vec![0u8; len];
            write(&mut scratch);
            for (cell, byte) in self.cells[pos..pos + len].iter().zip(scratch) {
                // SAFETY: loom checks this access against every other access to the same byte.
                cell.with_mut(|p| unsafe { *p = byte });
            }
            // SAFETY: loom checks this read of the box against `take_flags`' replacement of it.
            self.flags.with(|flags| unsafe { (&*flags)[index].store(1, PUBLISH) });
        }

        pub(crate) fn published_run(&self, from: usize, to: usize) -> usize {
            // SAFETY: as above.
            self.flags.with(|flags| unsafe { (&*flags)[from..to].iter().take_while(|f| f.load(OBSERVE) != 0).count() })
        }

        /// # Safety
        /// As the production version.
        pub(crate) unsafe fn take_flags(&self, published: usize) -> Flags {
            // SAFETY: loom checks this replacement against every appender's read of the box.
            let flags = self.flags.with_mut(|flags| std::mem::take(unsafe { &mut *flags }));
            for flag in &flags[..published] {
                flag.store(0, std::sync::atomic::Ordering::Relaxed);
            }
            flags
        }

        /// # Safety
        /// As the production version.
        pub(crate) unsafe fn take(&self, len: usize) -> Vec<u8> {
            // Keep the capacity, as the production buffer does: the pool recycles by capacity.
            let mut vec = Vec::with_capacity(self.cells.len());
            // SAFETY: loom checks each read against the writes to the same byte; their records' flags
            // were read with Acquire by the drainer's walk before the take.
            vec.extend(self.cells[..len].iter().map(|c| c.with(|p| unsafe { *p })));
            vec
        }
    }
}
