//! "New data was written": a sequence number the I/O thread bumps after each round that moved a high
//! watermark, and a condition variable readers (consumers' `poll`) wait on. The bump costs one atomic
//! add, plus a wake-up only while someone is waiting.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

#[derive(Debug, Default)]
pub(crate) struct DataNotify {
    seq: AtomicU64,
    waiters: AtomicUsize,
    lock: Mutex<()>,
    cond: Condvar,
}

impl DataNotify {
    pub(crate) fn seq(&self) -> u64 {
        self.seq.load(Ordering::Acquire)
    }

    pub(crate) fn bump(&self) {
        self.seq.fetch_add(1, Ordering::AcqRel);
        if self.waiters.load(Ordering::Acquire) > 0 {
            let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
            self.cond.notify_all();
        }
    }

    /// Waits until the sequence moves past `seen` or `deadline`; returns the current sequence.
    pub(crate) fn wait(&self, seen: u64, deadline: Instant) -> u64 {
        self.waiters.fetch_add(1, Ordering::AcqRel);
        let mut g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        // Registered before this check, so a bump after it either sees the waiter or is seen here.
        while self.seq() == seen {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            g = self.cond.wait_timeout(g, left).unwrap_or_else(|p| p.into_inner()).0;
        }
        drop(g);
        self.waiters.fetch_sub(1, Ordering::AcqRel);
        self.seq()
    }
}
