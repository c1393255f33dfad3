//! The primitives of the lock-free code, switched between their production versions and loom's so the
//! protocols built on them are model-checked as written (`scripts/loom.sh` builds with
//! `RUSTFLAGS="--cfg loom"`).
//!
//! - Atomics and the mutex come from `std` or from `loom`.
//! - [`ArcSlot`] (a partition's current batch) is `arc_swap::ArcSwapAny<Option<P>>` in production,
//!   `P` a counted pointer. Under loom it is a loom mutex around an `Option<P>` with the same
//!   linearizable load and compare-and-swap: arc-swap's own correctness is its authors' to prove, the accumulator's use of it
//!   is ours, and that is what the model explores.
//! - [`Queue`] (the hand-over of sealed batches) is `crossbeam_queue::SegQueue` in production and a
//!   loom mutex around a `VecDeque` under loom, for the same reason.

#[cfg(loom)]
pub(crate) use loom::sync::Mutex;
#[cfg(loom)]
pub(crate) use loom::sync::atomic;
#[cfg(not(loom))]
pub(crate) use std::sync::Mutex;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic;

pub(crate) use slot::ArcSlot;

#[cfg(not(loom))]
mod slot {
    use arc_swap::{ArcSwapAny, RefCnt};

    /// What [`ArcSlot::load`] returns: derefs to the slot's `Option<P>` without touching its
    /// reference count.
    pub(crate) type Guard<P> = arc_swap::Guard<Option<P>>;

    /// An atomically replaceable `Option<P>` (`P` a counted pointer: `Arc`, or the accumulator's
    /// pooled one) with lock-free loads.
    pub(crate) struct ArcSlot<P: RefCnt>(ArcSwapAny<Option<P>>);

    impl<P: RefCnt> ArcSlot<P> {
        pub(crate) fn empty() -> Self {
            ArcSlot(ArcSwapAny::new(None))
        }

        #[inline]
        pub(crate) fn load(&self) -> Guard<P> {
            self.0.load()
        }

        /// Stores `new` if the slot still holds what `current` saw; true when it did.
        pub(crate) fn install(&self, current: &Guard<P>, new: P) -> bool {
            let previous = self.0.compare_and_swap(current, Some(new));
            RefCnt::as_ptr(&*previous) == RefCnt::as_ptr(&**current)
        }
    }

    /// An unbounded lock-free MPMC queue.
    pub(crate) type Queue<T> = crossbeam_queue::SegQueue<T>;
}

#[cfg(loom)]
mod slot {
    use std::collections::VecDeque;

    use arc_swap::RefCnt;
    use loom::sync::Mutex;

    /// A snapshot of the slot (the loom stand-in for arc-swap's guard).
    pub(crate) struct Guard<P>(Option<P>);

    impl<P> std::ops::Deref for Guard<P> {
        type Target = Option<P>;
        fn deref(&self) -> &Option<P> {
            &self.0
        }
    }

    /// Loom stand-in for `ArcSwapAny`: the same load and compare-and-swap, linearized by a mutex.
    pub(crate) struct ArcSlot<P>(Mutex<Option<P>>);

    impl<P: RefCnt> ArcSlot<P> {
        pub(crate) fn empty() -> Self {
            ArcSlot(Mutex::new(None))
        }

        pub(crate) fn load(&self) -> Guard<P> {
            Guard(self.0.lock().unwrap().clone())
        }

        pub(crate) fn install(&self, current: &Guard<P>, new: P) -> bool {
            let mut slot = self.0.lock().unwrap();
            let same = RefCnt::as_ptr(&*slot) == RefCnt::as_ptr(&current.0);
            if same {
                *slot = Some(new);
            }
            same
        }
    }

    /// Loom stand-in for `SegQueue`.
    pub(crate) struct Queue<T>(Mutex<VecDeque<T>>);

    impl<T> Queue<T> {
        pub(crate) fn new() -> Self {
            Queue(Mutex::new(VecDeque::new()))
        }

        pub(crate) fn push(&self, value: T) {
            self.0.lock().unwrap().push_back(value);
        }

        pub(crate) fn pop(&self) -> Option<T> {
            self.0.lock().unwrap().pop_front()
        }
    }
}

pub(crate) use slot::Queue;
