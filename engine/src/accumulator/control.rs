//! What both accumulators share: the pool, the ratio, the close/flush flags and the sender's wakeup.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use crossbeam_utils::sync::{Parker, Unparker};

use super::AccumulatorConfig;
use super::buffer_pool::BufferPool;
use super::ratio::RatioEstimator;
use crate::compression::CompressionType;
use crate::error::{Error, Result};
use crate::record::{RECORD_BATCH_OVERHEAD, RecordParts};

#[derive(Debug)]
pub(crate) struct Control {
    pub config: AccumulatorConfig,
    pub pool: BufferPool,
    pub ratio: RatioEstimator,
    closed: AtomicBool,
    flushes: AtomicUsize,
    parker: Mutex<Parker>,
    unparker: Unparker,
}

impl Control {
    pub(crate) fn new(config: AccumulatorConfig) -> Self {
        let parker = Parker::new();
        let unparker = parker.unparker().clone();
        Control {
            pool: BufferPool::new(config.buffer_memory, config.batch_size),
            ratio: RatioEstimator::new(config.compression != CompressionType::None),
            config,
            closed: AtomicBool::new(false),
            flushes: AtomicUsize::new(0),
            parker: Mutex::new(parker),
            unparker,
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.is_closed() { Err(Error::Closed { what: "producer".into() }) } else { Ok(()) }
    }

    /// The record's worst-case size, refused when its batch of its own would be over max.request.size
    /// or over buffer.memory (Kafka's ensureValidRecordSize: RecordTooLarge at once, before any wait
    /// for memory).
    pub(crate) fn checked_upper_bound(&self, parts: &RecordParts<'_>) -> Result<usize> {
        let upper = parts.size_upper_bound();
        let size = upper + RECORD_BATCH_OVERHEAD;
        for (limit_name, limit) in
            [("max.request.size", self.config.max_request_size), ("buffer.memory", self.config.buffer_memory)]
        {
            if size > limit {
                return Err(Error::RecordTooLarge { size, limit_name, limit });
            }
        }
        Ok(upper)
    }

    /// Capacity for a new batch that must hold a record of `upper` bytes: the batch.size estimate, at
    /// least the record (which [`checked_upper_bound`](Self::checked_upper_bound) kept within
    /// buffer.memory), and never more than buffer.memory, so that a compression-ratio estimate cannot
    /// ask the pool for a buffer it refuses.
    pub(crate) fn new_batch_capacity(&self, upper: usize) -> usize {
        let estimate = self.ratio.batch_capacity(self.config.batch_size).min(self.config.buffer_memory);
        estimate.max(RECORD_BATCH_OVERHEAD + upper)
    }

    /// Every non-empty batch is ready now: closing, flushing, or appends waiting for memory.
    pub(crate) fn force_ready(&self) -> bool {
        self.is_closed() || self.flushes.load(Ordering::Acquire) > 0 || self.pool.waiters() > 0
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake();
    }

    pub(crate) fn begin_flush(&self) {
        self.flushes.fetch_add(1, Ordering::AcqRel);
        self.wake();
    }

    pub(crate) fn end_flush(&self) {
        self.flushes.fetch_sub(1, Ordering::AcqRel);
    }

    #[inline]
    pub(crate) fn wake(&self) {
        self.unparker.unpark();
    }

    pub(crate) fn wait(&self, deadline: Option<Instant>) {
        let parker = self.parker.lock().unwrap_or_else(|p| p.into_inner());
        match deadline {
            Some(d) => parker.park_deadline(d),
            None => parker.park(),
        }
    }

    pub(crate) fn deallocate(&self, buffer: Vec<u8>) {
        let size = buffer.capacity();
        self.pool.deallocate(buffer, size);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RecordHeader;

    fn control(batch_size: usize, buffer_memory: usize, compression: CompressionType) -> Control {
        Control::new(AccumulatorConfig {
            batch_size,
            buffer_memory,
            max_request_size: 1 << 20,
            compression,
            ..AccumulatorConfig::default()
        })
    }

    #[test]
    fn a_record_over_buffer_memory_is_refused_by_name_before_any_wait() {
        let c = control(1024, 4096, CompressionType::None);
        let value = vec![0u8; 5000];
        let headers: [RecordHeader; 0] = [];
        let err = c.checked_upper_bound(&RecordParts::new(None, Some(&value), &headers)).unwrap_err();
        assert!(
            matches!(err, Error::RecordTooLarge { limit_name: "buffer.memory", limit: 4096, size } if size > 5000),
            "{err}"
        );
        let small = vec![0u8; 100];
        assert!(c.checked_upper_bound(&RecordParts::new(None, Some(&small), &headers)).is_ok());
    }

    #[test]
    fn a_compression_estimate_never_asks_for_more_than_buffer_memory() {
        // batch.size 64 KiB, buffer.memory 256 KiB: a ratio of 0.1 would size batches at ~600 KiB.
        let c = control(64 << 10, 256 << 10, CompressionType::Zstd);
        for _ in 0..200 {
            c.ratio.observe(0.1);
        }
        assert!(c.ratio.batch_capacity(64 << 10) > 256 << 10, "the estimate alone exceeds buffer.memory");
        assert_eq!(c.new_batch_capacity(100), 256 << 10);
        assert!(c.pool.allocate(c.new_batch_capacity(100), std::time::Duration::ZERO).is_ok());
    }
}
