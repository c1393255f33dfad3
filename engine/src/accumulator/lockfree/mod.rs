//! The lock-free accumulator.
//!
//! Each partition has a slot holding its current batch (`ArcSwapOption`: a lock-free load). A batch
//! is immutable but for its atomics, and is fully built before it is published, so appenders never see
//! a half-made batch. Appending:
//! 1. claim: one CAS on the batch's `state` word (sealed bit | record count | reserved bytes) moves the
//!    count and the end together, so the record learns its offsetDelta and its byte range at once;
//! 2. write the record into that range of the buffer (ranges never overlap);
//! 3. publish: add its size to `committed` (Release).
//!
//! A record that does not fit seals the batch (one CAS sets the sealed bit; the thread that set it
//! hands the batch to the drainer through a lock-free queue) and installs a new batch with one CAS on
//! the slot. Batches carry a per-partition sequence number (the previous batch's + 1, so racing
//! installers agree), and the drainer takes each partition's batches in sequence order, each only once
//! sealed and fully committed (`committed == reserved`, read with Acquire), so the bytes it reads are
//! complete. The drainer seals lingering batches itself. Only buffer.memory exhaustion blocks.

mod batch;
mod buffer;
#[cfg(all(test, loom))]
mod loom_tests;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use self::batch::{Batch, Claim};
use super::control::Control;
use super::{AccumulatorConfig, Appended, DrainedBatch, RecordAccumulator};
use crate::error::Result;
use crate::record::{RecordHeader, RecordParts};
use crate::sync::{ArcSlot, Mutex, Queue};

/// How soon the drainer looks again at a sealed batch whose appenders have not all committed.
const COMMIT_RECHECK: Duration = Duration::from_micros(50);

/// The drainer's own bookkeeping (only the sender locks it; `has_undrained` peeks).
#[derive(Default)]
struct DrainState {
    /// Batches installed, oldest first (linger order); sealed ones are dropped as found.
    open: VecDeque<Arc<Batch>>,
    /// Sealed batches waiting for their turn, per partition by sequence number.
    pending: BTreeMap<(u32, u64), Arc<Batch>>,
    /// Next sequence number to drain, per partition.
    expected: Vec<u64>,
}

/// See the module docs.
pub(crate) struct LockFreeAccumulator {
    control: Control,
    slots: Box<[ArcSlot<Batch>]>,
    opened: Queue<Arc<Batch>>,
    sealed: Queue<Arc<Batch>>,
    drain: Mutex<DrainState>,
}

impl std::fmt::Debug for LockFreeAccumulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockFreeAccumulator").field("partitions", &self.slots.len()).finish_non_exhaustive()
    }
}

impl LockFreeAccumulator {
    pub(crate) fn new(config: AccumulatorConfig) -> Self {
        let partitions = config.partitions as usize;
        LockFreeAccumulator {
            control: Control::new(config),
            slots: (0..partitions).map(|_| ArcSlot::empty()).collect(),
            opened: Queue::new(),
            sealed: Queue::new(),
            drain: Mutex::new(DrainState { expected: vec![0; partitions], ..DrainState::default() }),
        }
    }

    fn hand_over(&self, batch: Arc<Batch>) {
        self.sealed.push(batch);
        self.control.wake();
    }
}

impl RecordAccumulator for LockFreeAccumulator {
    fn append(
        &self,
        partition: u32,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[RecordHeader],
    ) -> Result<Appended> {
        self.control.check_open()?;
        let parts = RecordParts::new(key, value, headers);
        let upper = self.control.checked_upper_bound(&parts)?;
        let slot = &self.slots[partition as usize];
        let mut new_batch_created = false;
        loop {
            let current = slot.load();
            if let Some(batch) = current.as_ref() {
                match batch.try_append(timestamp, &parts) {
                    Claim::Done { offset_delta, size, full } => {
                        let batch_is_full = full && batch.seal();
                        let result = Arc::clone(&batch.result);
                        if batch_is_full {
                            self.hand_over(Arc::clone(batch));
                        }
                        return Ok(Appended {
                            result,
                            relative_offset: offset_delta,
                            batch_is_full,
                            new_batch_created,
                            appended_bytes: size,
                        });
                    }
                    Claim::NoRoom => {
                        if batch.seal() {
                            self.hand_over(Arc::clone(batch));
                        }
                    }
                    Claim::Sealed => {}
                }
            }
            // The slot is empty or holds a sealed batch: open the next one.
            self.control.check_open()?;
            let seq = current.as_ref().map_or(0, |b| b.seq + 1);
            let cap = self.control.new_batch_capacity(upper);
            let buffer = self.control.pool.allocate(cap, self.control.config.max_block)?;
            let fresh = Arc::new(Batch::new(partition, seq, timestamp, buffer));
            if slot.install(&current, Arc::clone(&fresh)) {
                new_batch_created = true;
                self.opened.push(fresh);
                self.control.wake();
            } else {
                // Another appender installed first; give the memory back and append there.
                let buffer = fresh.take_buffer_unpublished();
                self.control.deallocate(buffer);
            }
        }
    }

    fn drain(&self, now: Instant, out: &mut Vec<DrainedBatch>) -> Option<Instant> {
        let mut st = self.drain.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(b) = self.opened.pop() {
            st.open.push_back(b);
        }
        let force = self.control.force_ready();
        let linger = self.control.config.linger;
        let mut next_ready = None;
        let mut i = 0;
        while i < st.open.len() {
            let b = &st.open[i];
            if b.is_sealed() {
                st.open.remove(i);
                continue;
            }
            let due = b.created + linger;
            if force || now >= due {
                if b.is_empty() && !force {
                    // Installed, but its installer's record is not in yet: look again shortly, since
                    // appenders do not signal a batch's first record.
                    let recheck = now + COMMIT_RECHECK;
                    next_ready = Some(next_ready.map_or(recheck, |n: Instant| n.min(recheck)));
                    i += 1;
                    continue;
                }
                let b = st.open.remove(i).expect("index in range");
                if b.seal() {
                    st.pending.insert((b.partition, b.seq), b);
                }
                continue;
            }
            // Batches are in creation order: the rest linger longer.
            next_ready = Some(next_ready.map_or(due, |n: Instant| n.min(due)));
            break;
        }
        while let Some(b) = self.sealed.pop() {
            st.pending.insert((b.partition, b.seq), b);
        }
        let mut waiting_for_commit = false;
        let keys: Vec<(u32, u64)> = st.pending.keys().copied().collect();
        for (partition, seq) in keys {
            if st.expected[partition as usize] != seq {
                continue; // an earlier batch of this partition is not here yet
            }
            let complete = st.pending.get(&(partition, seq)).is_some_and(|b| b.is_complete());
            if !complete {
                waiting_for_commit = true;
                continue;
            }
            let b = st.pending.remove(&(partition, seq)).expect("present");
            st.expected[partition as usize] += 1;
            let record_count = b.record_count();
            let buffer = b.take_buffer();
            if record_count == 0 {
                self.control.deallocate(buffer);
                continue;
            }
            out.push(DrainedBatch {
                partition,
                buffer,
                record_count,
                base_timestamp: b.base_timestamp,
                max_timestamp: b.max_timestamp(),
                created: b.created,
                result: Arc::clone(&b.result),
            });
        }
        // A later batch of a partition may have become takeable behind one taken just now.
        if st.pending.keys().any(|(p, s)| st.expected[*p as usize] == *s) {
            waiting_for_commit = true;
        }
        if waiting_for_commit {
            let recheck = now + COMMIT_RECHECK;
            next_ready = Some(next_ready.map_or(recheck, |n: Instant| n.min(recheck)));
        }
        next_ready
    }

    fn wait_for_work(&self, deadline: Option<Instant>) {
        self.control.wait(deadline);
    }

    fn wake(&self) {
        self.control.wake();
    }

    fn begin_flush(&self) {
        self.control.begin_flush();
    }

    fn end_flush(&self) {
        self.control.end_flush();
    }

    fn close(&self) {
        self.control.close();
    }

    fn has_undrained(&self) -> bool {
        if !self.sealed.is_empty() {
            return true;
        }
        if self.slots.iter().any(|s| s.load().as_ref().is_some_and(|b| !b.is_empty() && !b.is_sealed())) {
            return true;
        }
        let st = self.drain.lock().unwrap_or_else(|p| p.into_inner());
        !st.pending.is_empty() || st.open.iter().any(|b| !b.is_empty() && !b.is_sealed())
    }

    fn deallocate(&self, buffer: Vec<u8>) {
        self.control.deallocate(buffer);
    }

    fn record_compression_ratio(&self, ratio: f32) {
        self.control.ratio.observe(ratio);
    }

    fn memory_waiters(&self) -> usize {
        self.control.pool.waiters()
    }

    fn available_memory(&self) -> usize {
        self.control.pool.available_memory()
    }
}
