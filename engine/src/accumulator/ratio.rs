//! Kafka's CompressionRatioEstimator: an estimate that improves slowly and deteriorates fast.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::record::RECORD_BATCH_OVERHEAD;

/// Kafka's COMPRESSION_RATIO_IMPROVING_STEP.
const IMPROVING_STEP: f32 = 0.005;
/// Kafka's COMPRESSION_RATIO_DETERIORATE_STEP.
const DETERIORATE_STEP: f32 = 0.05;
/// Kafka's COMPRESSION_RATE_ESTIMATION_FACTOR.
const ESTIMATION_FACTOR: f32 = 1.05;

/// The estimated compressed/uncompressed ratio of one producer's codec, starting at 1.0.
#[derive(Debug)]
pub(crate) struct RatioEstimator {
    bits: AtomicU32,
    compressed: bool,
}

impl RatioEstimator {
    pub(crate) fn new(compressed: bool) -> Self {
        RatioEstimator { bits: AtomicU32::new(1.0f32.to_bits()), compressed }
    }

    pub(crate) fn estimate(&self) -> f32 {
        f32::from_bits(self.bits.load(Ordering::Relaxed))
    }

    /// Kafka's updateEstimation.
    pub(crate) fn observe(&self, observed: f32) {
        if !observed.is_finite() || observed <= 0.0 {
            return;
        }
        let current = self.estimate();
        let next = if observed > current {
            (current + DETERIORATE_STEP).max(observed)
        } else if observed < current {
            (current - IMPROVING_STEP).max(observed)
        } else {
            return;
        };
        self.bits.store(next.to_bits(), Ordering::Relaxed);
    }

    /// Capacity in uncompressed bytes of a batch whose compressed size should stay within `batch_size`.
    pub(crate) fn batch_capacity(&self, batch_size: usize) -> usize {
        if !self.compressed {
            return batch_size.max(RECORD_BATCH_OVERHEAD + 1);
        }
        let records = batch_size.saturating_sub(RECORD_BATCH_OVERHEAD) as f32;
        let estimated = (records / (self.estimate() * ESTIMATION_FACTOR)) as usize;
        // Bounded so a wildly compressible payload cannot make one batch eat buffer.memory.
        (RECORD_BATCH_OVERHEAD + estimated).clamp(RECORD_BATCH_OVERHEAD + 1, batch_size.saturating_mul(16))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn improves_slowly_deteriorates_fast() {
        let r = RatioEstimator::new(true);
        r.observe(0.3);
        assert!((r.estimate() - 0.995).abs() < 1e-6);
        r.observe(2.0);
        assert!((r.estimate() - 2.0).abs() < 1e-6);
        r.observe(2.01);
        assert!((r.estimate() - 2.05).abs() < 1e-6);
        assert!(r.batch_capacity(16384) < 16384);
        assert_eq!(RatioEstimator::new(false).batch_capacity(16384), 16384);
    }
}
