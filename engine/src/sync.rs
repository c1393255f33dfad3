//! The primitives of the lock-free code, switched between their production versions and loom's so the
//! protocols built on them are model-checked as written (`scripts/loom.sh` builds with
//! `RUSTFLAGS="--cfg loom"`).
//!
//! - Atomics and the mutex come from `std` or from `loom`.
//! - [`ArcSlot`] (a partition's current batch) is `arc_swap::ArcSwapOption` in production. Under loom
//!   it is a loom mutex around an `Option<Arc<T>>` with the same linearizable load and
//!   compare-and-swap: arc-swap's own correctness is its authors' to prove, the accumulator's use of it
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
    use std::sync::Arc;

    use arc_swap::ArcSwapOption;

    /// What [`ArcSlot::load`] returns: derefs to the slot's `Option<Arc<T>>` without touching its
    /// reference count.
    pub(crate) type Guard<T> = arc_swap::Guard<Option<Arc<T>>>;

    /// An atomically replaceable `Option<Arc<T>>` with lock-free loads.
    pub(crate) struct ArcSlot<T>(ArcSwapOption<T>);

    impl<T> ArcSlot<T> {
        pub(crate) fn empty() -> Self {
            ArcSlot(ArcSwapOption::empty())
        }

        #[inline]
        pub(crate) fn load(&self) -> Guard<T> {
            self.0.load()
        }

        /// Stores `new` if the slot still holds what `current` saw; true when it did.
        pub(crate) fn install(&self, current: &Guard<T>, new: Arc<T>) -> bool {
            let previous = self.0.compare_and_swap(current, Some(new));
            match (previous.as_ref(), current.as_ref()) {
                (Some(p), Some(c)) => Arc::ptr_eq(p, c),
                (None, None) => true,
                _ => false,
            }
        }
    }

    /// An unbounded lock-free MPMC queue.
    pub(crate) type Queue<T> = crossbeam_queue::SegQueue<T>;
}

#[cfg(loom)]
mod slot {
    use std::collections::VecDeque;
    use std::sync::Arc;

    use loom::sync::Mutex;

    /// A snapshot of the slot (the loom stand-in for arc-swap's guard).
    pub(crate) struct Guard<T>(Option<Arc<T>>);

    impl<T> std::ops::Deref for Guard<T> {
        type Target = Option<Arc<T>>;
        fn deref(&self) -> &Option<Arc<T>> {
            &self.0
        }
    }

    /// Loom stand-in for `ArcSwapOption`: the same load and compare-and-swap, linearized by a mutex.
    pub(crate) struct ArcSlot<T>(Mutex<Option<Arc<T>>>);

    impl<T> ArcSlot<T> {
        pub(crate) fn empty() -> Self {
            ArcSlot(Mutex::new(None))
        }

        pub(crate) fn load(&self) -> Guard<T> {
            Guard(self.0.lock().unwrap().clone())
        }

        pub(crate) fn install(&self, current: &Guard<T>, new: Arc<T>) -> bool {
            let mut slot = self.0.lock().unwrap();
            let same = match (slot.as_ref(), current.0.as_ref()) {
                (Some(s), Some(c)) => Arc::ptr_eq(s, c),
                (None, None) => true,
                _ => false,
            };
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

        pub(crate) fn is_empty(&self) -> bool {
            self.0.lock().unwrap().is_empty()
        }
    }
}

pub(crate) use slot::Queue;
