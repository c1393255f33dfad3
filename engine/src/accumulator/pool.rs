//! A free list of batch allocations.
//!
//! A batch's bookkeeping is made on the appending thread and let go wherever its last reference goes:
//! the sender, the I/O thread once the batch completed, an appender replacing it in its partition's
//! slot, or a record's future. Made with `malloc` and freed with `free`, every batch pays the
//! allocator twice, and across threads, where glibc's per-thread caches do not recycle it. Here a
//! value lives in a block with its own reference count ([`Pooled`], an `Arc` for this one job): when
//! the last reference goes, the value is dropped in place and the block goes back to its [`Pool`]'s
//! free list, and the next batch is built in it. The lock-free accumulator keeps its whole `Batch` in a
//! block (the completion its records share is a field of it), the mutex accumulator its batches'
//! completions.
//!
//! Nothing here holds buffer.memory: a batch's buffer goes back to the `BufferPool` when the batch
//! completes, as in Kafka, whatever holds the block after that. The free list is bounded (beyond it a
//! block is freed), and a block keeps its pool alive, so a block outliving its accumulator (a record's
//! future kept after close) still has somewhere to go; the pool frees the blocks it holds when it is
//! dropped.

use std::mem::{ManuallyDrop, MaybeUninit};
use std::ptr::NonNull;
use std::sync::Arc;

use super::AccumulatorConfig;
use crate::sync::atomic::{AtomicUsize, Ordering, fence};

/// Free blocks an accumulator keeps: as many as buffer.memory holds batch.size batches, within
/// bounds (the list only has to absorb the batches let go between two batches made; a block is a few
/// hundred bytes).
pub(crate) fn free_list_capacity(config: &AccumulatorConfig) -> usize {
    (config.buffer_memory / config.batch_size.max(1)).clamp(64, 4096)
}

/// One value and its reference count.
#[repr(C)]
struct Block<T> {
    /// First, so a pointer to the block is a pointer to the value (`into_raw` / `from_raw`).
    value: T,
    refs: AtomicUsize,
    /// Where the block goes back to; taken out when it does.
    pool: ManuallyDrop<Arc<Pool<T>>>,
}

/// A block on the free list: its value and count are dropped, the memory is the pool's.
struct FreeBlock<T>(NonNull<Block<T>>);

// SAFETY: a free block is plain memory owned by whoever holds it (the list, or the thread that took
// it); no value lives in it.
unsafe impl<T> Send for FreeBlock<T> {}

/// A bounded free list of blocks for values of type `T`.
pub(crate) struct Pool<T> {
    free: free_list::FreeList<FreeBlock<T>>,
}

impl<T> std::fmt::Debug for Pool<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("free", &self.free.len()).finish()
    }
}

impl<T> Pool<T> {
    /// A pool keeping up to `capacity` free blocks.
    pub(crate) fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Pool { free: free_list::FreeList::new(capacity.max(1)) })
    }

    /// Free blocks held.
    #[cfg(test)]
    pub(crate) fn free_blocks(&self) -> usize {
        self.free.len()
    }

    fn allocate() -> NonNull<Block<T>> {
        let block = Box::into_raw(Box::new(MaybeUninit::<Block<T>>::uninit()));
        // SAFETY: `Box::into_raw` never returns null.
        unsafe { NonNull::new_unchecked(block.cast::<Block<T>>()) }
    }

    /// # Safety
    /// `block` came from [`allocate`](Self::allocate), holds no live value, and nobody uses it again.
    unsafe fn deallocate(block: NonNull<Block<T>>) {
        // SAFETY: allocated as a `Box<MaybeUninit<Block<T>>>` (the contract); `MaybeUninit` drops
        // nothing, so only the memory is freed.
        drop(unsafe { Box::from_raw(block.as_ptr().cast::<MaybeUninit<Block<T>>>()) });
    }

    /// Keeps a free block for reuse, or frees it if the list is full.
    fn give_back(&self, block: NonNull<Block<T>>) {
        if let Err(FreeBlock(block)) = self.free.push(FreeBlock(block)) {
            // SAFETY: the caller gave the block up (its value dropped) and the list refused it.
            unsafe { Self::deallocate(block) };
        }
    }
}

impl<T> Drop for Pool<T> {
    fn drop(&mut self) {
        while let Some(FreeBlock(block)) = self.free.pop() {
            // SAFETY: a listed block holds no value, and the list's pop handed it to us alone.
            unsafe { Self::deallocate(block) };
        }
    }
}

/// A reference-counted value in a block of a [`Pool`]: `Arc`'s clone, deref and drop, except that
/// the last drop gives the block back to the pool instead of freeing it.
pub(crate) struct Pooled<T> {
    block: NonNull<Block<T>>,
}

// SAFETY: as `Arc<T>`: the value is shared across threads (Sync) and dropped on whichever thread lets
// go last (Send).
unsafe impl<T: Send + Sync> Send for Pooled<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Sync for Pooled<T> {}

impl<T> Pooled<T> {
    /// `value` in a free block of `pool`, or a new one.
    pub(crate) fn new(pool: &Arc<Pool<T>>, value: T) -> Self {
        let block = pool.free.pop().map_or_else(Pool::allocate, |FreeBlock(b)| b);
        // SAFETY: the block is this thread's alone (fresh, or popped off the list) and holds no live
        // value, so writing a whole new one over it drops nothing and races with nothing.
        unsafe {
            block.as_ptr().write(Block { value, refs: AtomicUsize::new(1), pool: ManuallyDrop::new(Arc::clone(pool)) });
        }
        Pooled { block }
    }

    fn inner(&self) -> &Block<T> {
        // SAFETY: this reference keeps the block's value alive.
        unsafe { self.block.as_ref() }
    }

    /// The value's address, leaking this reference (given back by [`from_raw`](Self::from_raw)).
    pub(crate) fn into_raw(this: Self) -> *const T {
        let ptr = Self::as_ptr(&this);
        std::mem::forget(this);
        ptr
    }

    /// The value's address.
    pub(crate) fn as_ptr(this: &Self) -> *const T {
        this.block.as_ptr().cast_const().cast::<T>()
    }

    /// Takes back a reference [`into_raw`](Self::into_raw) leaked.
    ///
    /// # Safety
    /// `ptr` came from `into_raw` and that reference is taken back once.
    pub(crate) unsafe fn from_raw(ptr: *const T) -> Self {
        // SAFETY: `into_raw` returned the address of a block's first field, which is the block's
        // own (`repr(C)`); it is non-null.
        Pooled { block: unsafe { NonNull::new_unchecked(ptr.cast_mut().cast::<Block<T>>()) } }
    }

    /// Drops a reference [`into_raw`](Self::into_raw) leaked.
    ///
    /// # Safety
    /// As [`from_raw`](Self::from_raw).
    pub(crate) unsafe fn decrement_strong_count(ptr: *const T) {
        // SAFETY: the caller's contract.
        drop(unsafe { Self::from_raw(ptr) });
    }

    /// References held (for tests: any other thread may change it at once).
    #[cfg(test)]
    pub(crate) fn strong_count(this: &Self) -> usize {
        this.inner().refs.load(Ordering::Acquire)
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Pooled<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

impl<T> std::ops::Deref for Pooled<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.inner().value
    }
}

impl<T> Clone for Pooled<T> {
    #[inline]
    fn clone(&self) -> Self {
        // Relaxed, as `Arc`: a new reference is made from an existing one, which keeps the value.
        let old = self.inner().refs.fetch_add(1, Ordering::Relaxed);
        if old > isize::MAX as usize {
            // As `Arc`: a count this high means references are being leaked; do not wrap.
            std::process::abort();
        }
        Pooled { block: self.block }
    }
}

impl<T> Drop for Pooled<T> {
    #[inline]
    fn drop(&mut self) {
        // Release: this holder's uses of the value happen-before the recycling below, wherever it runs.
        if self.inner().refs.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        // Every other holder's Release decrement is ordered before the reuse of the block.
        fence(Ordering::Acquire);
        // SAFETY: the count reached zero, so this is the last reference and nobody else can reach the
        // block.
        unsafe { recycle(self.block) }
    }
}

/// Drops the value and gives the block back to its pool.
///
/// # Safety
/// The block's count reached zero: the caller alone reaches it.
#[cold]
unsafe fn recycle<T>(block: NonNull<Block<T>>) {
    let b = block.as_ptr();
    // SAFETY: exclusive (the contract); `pool` is taken out once, here, and the value and count are
    // dropped once, so the block holds no live value when it is listed.
    let pool = unsafe {
        let pool = ManuallyDrop::take(&mut (*b).pool);
        std::ptr::drop_in_place(&raw mut (*b).value);
        std::ptr::drop_in_place(&raw mut (*b).refs);
        pool
    };
    pool.give_back(block);
    // Possibly the pool's last owner (its accumulator gone): it frees its list, this block included.
    drop(pool);
}

// SAFETY: `Pooled` is a counted pointer to its value, as arc-swap requires: `into_ptr` / `from_ptr`
// move one reference out and back, and the pointer is the value's address.
unsafe impl<T> arc_swap::RefCnt for Pooled<T> {
    type Base = T;
    fn into_ptr(me: Self) -> *mut T {
        Self::into_raw(me).cast_mut()
    }
    fn as_ptr(me: &Self) -> *mut T {
        Pooled::as_ptr(me).cast_mut()
    }
    unsafe fn from_ptr(ptr: *const T) -> Self {
        // SAFETY: arc-swap hands back a pointer `into_ptr` made, once.
        unsafe { Self::from_raw(ptr) }
    }
}

/// The free list: crossbeam's lock-free bounded queue, a loom mutex under loom (the model checks the
/// reference count's protocol; the queue's own correctness is crossbeam's).
#[cfg(not(loom))]
mod free_list {
    pub(super) type FreeList<T> = crossbeam_queue::ArrayQueue<T>;
}

#[cfg(loom)]
mod free_list {
    use std::collections::VecDeque;

    pub(super) struct FreeList<T> {
        capacity: usize,
        items: loom::sync::Mutex<VecDeque<T>>,
    }

    impl<T> FreeList<T> {
        pub(super) fn new(capacity: usize) -> Self {
            FreeList { capacity, items: loom::sync::Mutex::new(VecDeque::new()) }
        }

        pub(super) fn push(&self, item: T) -> Result<(), T> {
            let mut items = self.items.lock().unwrap();
            if items.len() >= self.capacity {
                return Err(item);
            }
            items.push_back(item);
            Ok(())
        }

        pub(super) fn pop(&self) -> Option<T> {
            self.items.lock().unwrap().pop_front()
        }

        pub(super) fn len(&self) -> usize {
            self.items.lock().unwrap().len()
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize as StdCount;

    /// Counts its drops.
    struct Tracked(Arc<StdCount>);

    impl Drop for Tracked {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn the_last_reference_drops_the_value_and_the_next_value_reuses_its_block() {
        let pool = Pool::new(4);
        let drops = Arc::new(StdCount::new(0));
        let a = Pooled::new(&pool, Tracked(Arc::clone(&drops)));
        let a2 = a.clone();
        let address = Pooled::as_ptr(&a) as usize;
        assert_eq!(Pooled::strong_count(&a), 2);
        drop(a);
        assert_eq!((drops.load(Ordering::Relaxed), pool.free_blocks()), (0, 0), "a reference is left");
        drop(a2);
        assert_eq!((drops.load(Ordering::Relaxed), pool.free_blocks()), (1, 1));
        let b = Pooled::new(&pool, Tracked(Arc::clone(&drops)));
        assert_eq!(Pooled::as_ptr(&b) as usize, address, "built in the freed block");
        assert_eq!(pool.free_blocks(), 0);
        // A raw reference counts like any other.
        let raw = Pooled::into_raw(b.clone());
        drop(b);
        assert_eq!(drops.load(Ordering::Relaxed), 1);
        // SAFETY: `raw` came from `into_raw`, taken back once.
        unsafe { Pooled::decrement_strong_count(raw) };
        assert_eq!((drops.load(Ordering::Relaxed), pool.free_blocks()), (2, 1));
    }

    #[test]
    fn a_full_list_frees_the_block_and_a_value_may_outlive_its_pool() {
        let pool = Pool::new(1);
        let drops = Arc::new(StdCount::new(0));
        let (a, b) = (Pooled::new(&pool, Tracked(Arc::clone(&drops))), Pooled::new(&pool, Tracked(Arc::clone(&drops))));
        drop(a);
        drop(b);
        assert_eq!((drops.load(Ordering::Relaxed), pool.free_blocks()), (2, 1), "the second block is freed");
        let kept = Pooled::new(&pool, Tracked(Arc::clone(&drops)));
        drop(pool);
        // The block's share keeps the pool until the value goes (Miri / ASan would see a leak or a
        // use after free here; the count shows the value was dropped once).
        drop(kept);
        assert_eq!(drops.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn references_dropped_on_many_threads_drop_the_value_once() {
        let pool = Pool::new(64);
        let drops = Arc::new(StdCount::new(0));
        for round in 0..200 {
            let value = Pooled::new(&pool, Tracked(Arc::clone(&drops)));
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    let v = value.clone();
                    std::thread::spawn(move || drop(v))
                })
                .collect();
            drop(value);
            for t in threads {
                t.join().unwrap();
            }
            assert_eq!(drops.load(Ordering::Relaxed), round + 1);
        }
        assert_eq!(pool.free_blocks(), 1, "every round reused the one block");
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::cell::UnsafeCell;

    /// A value loom watches: every holder reads it, its drop (when the block is recycled) writes it.
    struct Watched(UnsafeCell<u32>);

    // SAFETY: every access to the cell goes through loom, which fails the model on any access not
    // ordered after the writes it could race with.
    unsafe impl Sync for Watched {}

    impl Watched {
        fn read(&self) -> u32 {
            // SAFETY: loom checks this read against every write to the cell.
            self.0.with(|p| unsafe { *p })
        }
    }

    impl Drop for Watched {
        fn drop(&mut self) {
            // SAFETY: as above: loom fails the model unless every holder's read happens-before this.
            self.0.with_mut(|p| unsafe { *p = 0 });
        }
    }

    /// Two holders let go on two threads while a third value is made: the block is dropped and
    /// reused only after both holders' last use (a Relaxed decrement, or no Acquire fence, fails the
    /// model), and a value made meanwhile gets a block of its own.
    #[test]
    fn a_block_is_recycled_once_after_every_holder_let_go() {
        loom::model(|| {
            let pool = Pool::new(2);
            let a = Pooled::new(&pool, Watched(UnsafeCell::new(7)));
            let b = a.clone();
            let t = loom::thread::spawn(move || {
                assert_eq!(b.read(), 7);
                drop(b);
            });
            assert_eq!(a.read(), 7);
            drop(a);
            let c = Pooled::new(&pool, Watched(UnsafeCell::new(9)));
            assert_eq!(c.read(), 9);
            t.join().unwrap();
            let reused = pool.free_blocks() == 0;
            drop(c);
            // One block if `c` was made in the recycled one, else two, both listed now.
            assert_eq!(pool.free_blocks(), if reused { 1 } else { 2 });
        });
    }
}
