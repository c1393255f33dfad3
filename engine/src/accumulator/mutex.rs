//! The accumulator as Kafka's Java client builds it: per partition a deque of batches behind a mutex;
//! append locks the deque, tries the last batch, and otherwise allocates a buffer (outside the lock,
//! possibly blocking on buffer.memory), locks again, re-checks, and appends to a new batch.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use super::control::Control;
use super::pool::{Pool, Pooled, free_list_capacity};
use super::{AccumulatorConfig, Appended, DrainedBatch, ProduceResult, RecordAccumulator};
use crate::error::Result;
use crate::record::{RECORD_BATCH_OVERHEAD, RecordHeader, RecordParts};

#[derive(Debug)]
struct Batch {
    buffer: Vec<u8>,
    len: usize,
    count: u32,
    base_timestamp: i64,
    max_timestamp: i64,
    created: Instant,
    full: bool,
    result: Pooled<ProduceResult>,
}

impl Batch {
    fn try_append(&mut self, timestamp: i64, parts: &RecordParts<'_>) -> Option<(u32, usize)> {
        if self.full {
            return None;
        }
        let delta = timestamp.wrapping_sub(self.base_timestamp);
        let size = parts.size(delta, self.count as i32);
        if self.len + size > self.buffer.len() {
            self.full = true;
            return None;
        }
        parts.write(&mut self.buffer[self.len..self.len + size], delta, self.count as i32);
        let offset_delta = self.count;
        self.len += size;
        self.count += 1;
        self.max_timestamp = self.max_timestamp.max(timestamp);
        // Full when a record like this one would not fit again (the lock-free batch's rule).
        if self.len + size > self.buffer.len() {
            self.full = true;
        }
        Some((offset_delta, size))
    }
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct MutexAccumulator {
    control: Control,
    deques: Box<[Mutex<VecDeque<Batch>>]>,
    /// Batches in the deques (each holds a record): `has_undrained` in O(1), whatever the partitions.
    queued: AtomicUsize,
    /// The free list the batches' completions are made in.
    results: Arc<Pool<ProduceResult>>,
}

impl MutexAccumulator {
    pub(crate) fn new(config: AccumulatorConfig) -> Self {
        let partitions = config.partitions as usize;
        let free = free_list_capacity(&config);
        MutexAccumulator {
            control: Control::new(config),
            deques: (0..partitions).map(|_| Mutex::default()).collect(),
            queued: AtomicUsize::new(0),
            results: Pool::new(free),
        }
    }

    fn deque(&self, partition: u32) -> MutexGuard<'_, VecDeque<Batch>> {
        self.deques[partition as usize].lock().unwrap_or_else(|p| p.into_inner())
    }

    fn appended(batch: &Batch, offset_delta: u32, size: usize, new_batch_created: bool) -> Appended {
        Appended {
            result: Pooled::clone(&batch.result).into(),
            relative_offset: offset_delta,
            batch_is_full: batch.full,
            new_batch_created,
            appended_bytes: size,
        }
    }
}

impl RecordAccumulator for MutexAccumulator {
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
        {
            let mut dq = self.deque(partition);
            if let Some(last) = dq.back_mut()
                && let Some((delta, size)) = last.try_append(timestamp, &parts)
            {
                let full = last.full;
                let a = Self::appended(last, delta, size, false);
                drop(dq);
                if full {
                    self.control.wake();
                }
                return Ok(a);
            }
        }
        // Allocate outside the deque's lock: this may block on buffer.memory.
        let buffer =
            self.control.pool.allocate(self.control.new_batch_capacity(upper), self.control.config.max_block)?;
        let mut dq = self.deque(partition);
        self.control.check_open()?;
        if let Some(last) = dq.back_mut()
            && let Some((delta, size)) = last.try_append(timestamp, &parts)
        {
            let a = Self::appended(last, delta, size, false);
            drop(dq);
            self.control.deallocate(buffer);
            return Ok(a);
        }
        let mut batch = Batch {
            buffer,
            len: RECORD_BATCH_OVERHEAD,
            count: 0,
            base_timestamp: timestamp,
            max_timestamp: timestamp,
            created: Instant::now(),
            full: false,
            result: Pooled::new(&self.results, ProduceResult::new()),
        };
        let (delta, size) = batch.try_append(timestamp, &parts).expect("a new batch fits its record");
        let a = Self::appended(&batch, delta, size, true);
        dq.push_back(batch);
        self.queued.fetch_add(1, Ordering::AcqRel);
        drop(dq);
        self.control.wake();
        Ok(a)
    }

    fn drain(&self, now: Instant, out: &mut Vec<DrainedBatch>) -> Option<Instant> {
        let force = self.control.force_ready();
        let linger = self.control.config.linger;
        let mut next_ready: Option<Instant> = None;
        for (partition, deque) in self.deques.iter().enumerate() {
            let mut dq = deque.lock().unwrap_or_else(|p| p.into_inner());
            while let Some(first) = dq.front() {
                let due = first.created + linger;
                let ready = dq.len() > 1 || first.full || force || now >= due;
                if !ready {
                    next_ready = Some(next_ready.map_or(due, |n| n.min(due)));
                    break;
                }
                let mut b = dq.pop_front().expect("front exists");
                self.queued.fetch_sub(1, Ordering::AcqRel);
                b.buffer.truncate(b.len);
                out.push(DrainedBatch {
                    partition: partition as u32,
                    buffer: b.buffer,
                    record_count: b.count,
                    base_timestamp: b.base_timestamp,
                    max_timestamp: b.max_timestamp,
                    created: b.created,
                    result: b.result.into(),
                });
            }
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
        self.queued.load(Ordering::Acquire) != 0
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
