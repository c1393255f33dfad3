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

    /// The record's worst-case size, refused when over max.request.size (Kafka's RecordTooLarge).
    pub(crate) fn checked_upper_bound(&self, parts: &RecordParts<'_>) -> Result<usize> {
        let upper = parts.size_upper_bound();
        if upper + RECORD_BATCH_OVERHEAD > self.config.max_request_size {
            return Err(Error::RecordTooLarge {
                size: upper + RECORD_BATCH_OVERHEAD,
                limit_name: "max.request.size",
                limit: self.config.max_request_size,
            });
        }
        Ok(upper)
    }

    /// Capacity for a new batch that must hold a record of `upper` bytes.
    pub(crate) fn new_batch_capacity(&self, upper: usize) -> usize {
        self.ratio.batch_capacity(self.config.batch_size).max(RECORD_BATCH_OVERHEAD + upper)
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
