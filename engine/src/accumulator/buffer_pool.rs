//! buffer.memory: Kafka's BufferPool, with a lock-free fast path.
//!
//! Memory is either free (`available`), pooled (a free list of `batch.size` buffers, recycled so the
//! allocator is not asked for a buffer per batch), or held by batches until the log completes them.
//! Taking and returning a buffer is lock-free; only an append that finds the memory exhausted takes the
//! lock, to wait (FIFO-fair enough through the condvar) up to `max.block.ms` — Kafka's back-pressure.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;

use crate::error::{Error, Result};

/// The producer's buffer memory.
#[derive(Debug)]
pub(crate) struct BufferPool {
    total: usize,
    poolable: usize,
    available: AtomicUsize,
    free: ArrayQueue<Vec<u8>>,
    waiters: AtomicUsize,
    lock: Mutex<()>,
    freed: Condvar,
}

impl BufferPool {
    /// `total` bytes of buffer.memory, recycling buffers of exactly `poolable` (batch.size) bytes.
    pub(crate) fn new(total: usize, poolable: usize) -> Self {
        let slots = (total / poolable.max(1)).clamp(1, 1 << 16);
        BufferPool {
            total,
            poolable,
            available: AtomicUsize::new(total),
            free: ArrayQueue::new(slots),
            waiters: AtomicUsize::new(0),
            lock: Mutex::new(()),
            freed: Condvar::new(),
        }
    }

    /// Bytes not held by batches: free memory plus pooled buffers.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn available_memory(&self) -> usize {
        self.available.load(Ordering::Acquire) + self.free.len() * self.poolable
    }

    /// Appends blocked waiting for memory (makes batches ready, as in Kafka).
    pub(crate) fn waiters(&self) -> usize {
        self.waiters.load(Ordering::Acquire)
    }

    /// A zeroed buffer of `size` bytes (length = capacity = size), waiting up to `max_block` for the
    /// memory, then failing with [`Error::BufferExhausted`].
    pub(crate) fn allocate(&self, size: usize, max_block: Duration) -> Result<Vec<u8>> {
        if size > self.total {
            return Err(Error::RecordTooLarge { size, limit_name: "buffer.memory", limit: self.total });
        }
        if let Some(buffer) = self.try_allocate(size) {
            return Ok(buffer);
        }
        let deadline = Instant::now() + max_block;
        self.waiters.fetch_add(1, Ordering::AcqRel);
        let mut guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let outcome = loop {
            if let Some(buffer) = self.try_allocate(size) {
                break Ok(buffer);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break Err(Error::BufferExhausted { requested: size, max_block_ms: max_block.as_millis() as u64 });
            }
            // Bounded waits: a deallocation that raced our registration still wakes us soon.
            guard = self
                .freed
                .wait_timeout(guard, left.min(Duration::from_millis(10)))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        };
        drop(guard);
        self.waiters.fetch_sub(1, Ordering::AcqRel);
        outcome
    }

    fn try_allocate(&self, size: usize) -> Option<Vec<u8>> {
        if size == self.poolable
            && let Some(buffer) = self.free.pop()
        {
            return Some(buffer);
        }
        loop {
            if self.reserve(size) {
                return Some(vec![0; size]);
            }
            // Free pooled buffers to make room for a buffer of another size (Kafka's freeUp).
            let pooled = self.free.pop()?;
            drop(pooled);
            self.available.fetch_add(self.poolable, Ordering::AcqRel);
        }
    }

    fn reserve(&self, size: usize) -> bool {
        self.available.fetch_update(Ordering::AcqRel, Ordering::Acquire, |a| a.checked_sub(size)).is_ok()
    }

    /// Returns a buffer `allocate` handed out (whatever its length now): a batch.size buffer goes back
    /// to the free list, zero-filled to full length, any other size only returns its memory.
    pub(crate) fn deallocate(&self, mut buffer: Vec<u8>, size: usize) {
        if size == self.poolable && buffer.capacity() >= size {
            buffer.resize(size, 0);
            buffer.truncate(size);
            if let Err(buffer) = self.free.push(buffer) {
                drop(buffer);
                self.available.fetch_add(size, Ordering::AcqRel);
            }
        } else {
            drop(buffer);
            self.available.fetch_add(size, Ordering::AcqRel);
        }
        if self.waiters.load(Ordering::Acquire) > 0 {
            let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
            self.freed.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recycles_batch_size_buffers_and_accounts_memory() {
        let pool = BufferPool::new(4096, 1024);
        let a = pool.allocate(1024, Duration::ZERO).unwrap();
        assert_eq!((a.len(), pool.available_memory()), (1024, 3072));
        let odd = pool.allocate(2000, Duration::ZERO).unwrap();
        assert_eq!(pool.available_memory(), 1072);
        pool.deallocate(a, 1024);
        assert_eq!(pool.available_memory(), 2096);
        pool.deallocate(odd, 2000);
        assert_eq!(pool.available_memory(), 4096);
        // The pooled buffer is reused, and freed to make room for a large one.
        let big = pool.allocate(4096, Duration::ZERO).unwrap();
        assert_eq!(pool.available_memory(), 0);
        pool.deallocate(big, 4096);
    }

    #[test]
    fn exhausted_memory_blocks_then_fails_with_buffer_exhausted() {
        let pool = BufferPool::new(2048, 1024);
        let _a = pool.allocate(1024, Duration::ZERO).unwrap();
        let _b = pool.allocate(1024, Duration::ZERO).unwrap();
        let started = Instant::now();
        let err = pool.allocate(1024, Duration::from_millis(50)).unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert!(matches!(err, Error::BufferExhausted { requested: 1024, max_block_ms: 50 }), "{err}");
        assert!(matches!(pool.allocate(4096, Duration::ZERO), Err(Error::RecordTooLarge { .. })));
    }

    #[test]
    fn a_waiter_gets_memory_when_a_batch_completes() {
        let pool = std::sync::Arc::new(BufferPool::new(1024, 1024));
        let held = pool.allocate(1024, Duration::ZERO).unwrap();
        let p2 = std::sync::Arc::clone(&pool);
        let waiter = std::thread::spawn(move || p2.allocate(1024, Duration::from_secs(10)).map(|b| b.len()));
        while pool.waiters() == 0 {
            std::thread::yield_now();
        }
        pool.deallocate(held, 1024);
        assert_eq!(waiter.join().unwrap().unwrap(), 1024);
    }
}
