//! [`ProduceResult`]: the one completion a batch's records share (Kafka's ProduceRequestResult plus
//! the batch's per-record callbacks).

use std::ptr;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

/// Where a completed batch landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchMetadata {
    /// Offset of the batch's first record, or -1 when unknown (acks=0).
    pub base_offset: i64,
    /// The log's append time under LogAppendTime, else -1.
    pub log_append_time_ms: i64,
}

/// A per-record callback: gets the batch's outcome and the record's offsetDelta.
pub(super) type RecordCallback = Box<dyn FnOnce(Result<BatchMetadata>, u32) + Send>;

struct Node {
    relative_offset: u32,
    callback: RecordCallback,
    next: *mut Node,
}

/// Marks the callback list as taken by `complete`: later registrations run at once.
fn done_marker() -> *mut Node {
    // A dangling, never-dereferenced, well-aligned address distinct from null and from any Box.
    ptr::dangling_mut::<Node>()
}

/// Completed once per batch; every record's future and callback reads it.
pub(crate) struct ProduceResult {
    outcome: OnceLock<(Result<BatchMetadata>, Instant)>,
    done: AtomicBool,
    /// Lock-free stack of callbacks registered before completion (Treiber push, one final take).
    callbacks: AtomicPtr<Node>,
    lock: Mutex<()>,
    completed: Condvar,
}

impl std::fmt::Debug for ProduceResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProduceResult").field("done", &self.is_done()).finish_non_exhaustive()
    }
}

impl Default for ProduceResult {
    fn default() -> Self {
        Self::new()
    }
}

impl ProduceResult {
    /// A pending result.
    pub(crate) fn new() -> Self {
        ProduceResult {
            outcome: OnceLock::new(),
            done: AtomicBool::new(false),
            callbacks: AtomicPtr::new(ptr::null_mut()),
            lock: Mutex::new(()),
            completed: Condvar::new(),
        }
    }

    /// Sets the outcome (the first call wins; later calls are ignored), wakes every waiter and runs
    /// every registered callback in registration order.
    pub(crate) fn complete(&self, outcome: Result<BatchMetadata>) {
        if self.outcome.set((outcome, Instant::now())).is_err() {
            return;
        }
        self.done.store(true, Ordering::Release);
        {
            let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
            self.completed.notify_all();
        }
        let mut head = self.callbacks.swap(done_marker(), Ordering::AcqRel);
        let mut nodes = Vec::new();
        while !head.is_null() && head != done_marker() {
            // The swap above removed the whole list from shared view.
            // SAFETY: each non-null, non-marker pointer came from Box::into_raw in `on_complete`, was
            // published by its CAS, and is taken exactly once, here.
            let node = unsafe { Box::from_raw(head) };
            head = node.next;
            nodes.push(node);
        }
        let (outcome, _) = self.outcome.get().expect("set above");
        for node in nodes.into_iter().rev() {
            (node.callback)(outcome.clone(), node.relative_offset);
        }
    }

    /// Whether the outcome is known.
    #[inline]
    pub(crate) fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// When the batch completed, if it has.
    pub(crate) fn completed_at(&self) -> Option<Instant> {
        self.outcome.get().map(|(_, at)| *at)
    }

    /// Whether the batch succeeded and when it completed, once it has: one look, no copy of the
    /// outcome (for callers that need neither the metadata nor the error, such as a benchmark loop).
    #[inline]
    pub(crate) fn peek(&self) -> Option<(bool, Instant)> {
        self.outcome.get().map(|(o, at)| (o.is_ok(), *at))
    }

    /// Blocks until the outcome is known.
    pub(crate) fn wait(&self) -> Result<BatchMetadata> {
        if let Some((o, _)) = self.outcome.get() {
            return o.clone();
        }
        let mut guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some((o, _)) = self.outcome.get() {
                return o.clone();
            }
            guard = self.completed.wait(guard).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Blocks up to `timeout`; `None` if still pending.
    pub(crate) fn wait_timeout(&self, timeout: Duration) -> Option<Result<BatchMetadata>> {
        let deadline = Instant::now() + timeout;
        let mut guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some((o, _)) = self.outcome.get() {
                return Some(o.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            guard = self.completed.wait_timeout(guard, left).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// Registers a per-record callback; runs it at once if the batch already completed.
    pub(crate) fn on_complete(&self, relative_offset: u32, callback: RecordCallback) {
        let node = Box::into_raw(Box::new(Node { relative_offset, callback, next: ptr::null_mut() }));
        let mut head = self.callbacks.load(Ordering::Acquire);
        loop {
            if head == done_marker() {
                // SAFETY: `node` came from Box::into_raw above and was never published.
                let node = unsafe { Box::from_raw(node) };
                let (outcome, _) = self.outcome.get().expect("the marker is set after the outcome");
                (node.callback)(outcome.clone(), node.relative_offset);
                return;
            }
            // SAFETY: `node` is ours until the CAS below publishes it.
            unsafe { (*node).next = head };
            match self.callbacks.compare_exchange_weak(head, node, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return,
                Err(actual) => head = actual,
            }
        }
    }
}

impl Drop for ProduceResult {
    fn drop(&mut self) {
        // `&mut self`: no other thread can touch the list, so this load only satisfies the type.
        let mut head = self.callbacks.load(Ordering::Acquire);
        while !head.is_null() && head != done_marker() {
            // SAFETY: with `&mut self` nobody else can reach the list; each node came from
            // Box::into_raw and is freed once.
            let node = unsafe { Box::from_raw(head) };
            head = node.next;
        }
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;
    use loom::sync::atomic::AtomicU32;

    /// Registration racing completion: every callback runs exactly once, after the outcome is set,
    /// and those registered before completion run in registration order.
    #[test]
    fn callbacks_racing_completion_run_exactly_once() {
        loom::model(|| {
            let r = Arc::new(ProduceResult::new());
            let ran = Arc::new(AtomicU32::new(0));
            let registrars: Vec<_> = (0..2u32)
                .map(|i| {
                    let (r, ran) = (Arc::clone(&r), Arc::clone(&ran));
                    loom::thread::spawn(move || {
                        r.on_complete(
                            i,
                            Box::new(move |outcome, rel| {
                                assert_eq!(outcome.expect("ok").base_offset, 7);
                                assert_eq!(rel, i);
                                ran.fetch_add(1, Ordering::Relaxed);
                            }),
                        );
                    })
                })
                .collect();
            r.complete(Ok(BatchMetadata { base_offset: 7, log_append_time_ms: -1 }));
            for t in registrars {
                t.join().unwrap();
            }
            assert_eq!(ran.load(Ordering::Relaxed), 2);
        });
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicU32;

    #[test]
    fn callbacks_before_and_after_completion_run_once_in_order() {
        let r = ProduceResult::new();
        let seen = Arc::new(Mutex::new(Vec::new()));
        for i in 0..3 {
            let seen = Arc::clone(&seen);
            r.on_complete(i, Box::new(move |o, rel| seen.lock().unwrap().push((o.unwrap().base_offset, rel))));
        }
        r.complete(Ok(BatchMetadata { base_offset: 10, log_append_time_ms: -1 }));
        r.complete(Ok(BatchMetadata { base_offset: 99, log_append_time_ms: -1 }));
        let s2 = Arc::clone(&seen);
        r.on_complete(3, Box::new(move |o, rel| s2.lock().unwrap().push((o.unwrap().base_offset, rel))));
        assert_eq!(*seen.lock().unwrap(), [(10, 0), (10, 1), (10, 2), (10, 3)]);
        assert_eq!(r.wait().unwrap().base_offset, 10);
        assert!(r.completed_at().is_some());
    }

    #[test]
    fn registration_racing_completion_never_loses_a_callback() {
        for _ in 0..200 {
            let r = Arc::new(ProduceResult::new());
            let ran = Arc::new(AtomicU32::new(0));
            let threads: Vec<_> = (0..4)
                .map(|t| {
                    let (r, ran) = (Arc::clone(&r), Arc::clone(&ran));
                    std::thread::spawn(move || {
                        for i in 0..10 {
                            let ran = Arc::clone(&ran);
                            r.on_complete(
                                t * 10 + i,
                                Box::new(move |_, _| {
                                    ran.fetch_add(1, Ordering::SeqCst);
                                }),
                            );
                        }
                    })
                })
                .collect();
            r.complete(Ok(BatchMetadata { base_offset: 0, log_append_time_ms: -1 }));
            for t in threads {
                t.join().unwrap();
            }
            assert_eq!(ran.load(Ordering::SeqCst), 40);
        }
    }

    #[test]
    fn wait_timeout_expires_while_pending() {
        let r = ProduceResult::new();
        assert!(r.wait_timeout(Duration::from_millis(10)).is_none());
        assert!(!r.is_done());
    }

    #[test]
    fn peek_says_nothing_until_done_then_the_outcome_and_its_instant() {
        let ok = ProduceResult::new();
        assert_eq!(ok.peek(), None);
        ok.complete(Ok(BatchMetadata { base_offset: 3, log_append_time_ms: -1 }));
        assert_eq!(ok.peek(), Some((true, ok.completed_at().unwrap())));
        let failed = ProduceResult::new();
        failed.complete(Err(crate::Error::Closed { what: "producer".into() }));
        assert_eq!(failed.peek(), Some((false, failed.completed_at().unwrap())));
    }
}
