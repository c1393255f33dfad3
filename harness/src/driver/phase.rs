//! Warmup or measured: the boundary every thread checks against a record's scheduled send time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The start of the measured phase, set once by the case's control thread.
#[derive(Debug)]
pub(crate) struct Phase {
    epoch: Instant,
    /// Nanoseconds from `epoch` to the start of measurement; u64::MAX while warming up.
    measure_from: AtomicU64,
}

impl Phase {
    pub(crate) fn new(epoch: Instant) -> Self {
        Phase { epoch, measure_from: AtomicU64::new(u64::MAX) }
    }

    /// Ends the warmup: records scheduled from `at` on are measured.
    pub(crate) fn start_measuring(&self, at: Instant) {
        let ns = at.saturating_duration_since(self.epoch).as_nanos() as u64;
        self.measure_from.store(ns, Ordering::Release);
    }

    /// [`is_measuring`](Self::is_measuring) for a due time in nanoseconds since the epoch.
    #[inline]
    pub(crate) fn is_measuring_ns(&self, due_ns: u64) -> bool {
        let from = self.measure_from.load(Ordering::Acquire);
        from != u64::MAX && due_ns >= from
    }

    /// Whether a record scheduled at `due` belongs to the measured phase.
    #[inline]
    pub(crate) fn is_measuring(&self, due: Instant) -> bool {
        let from = self.measure_from.load(Ordering::Acquire);
        from != u64::MAX && due >= self.epoch + Duration::from_nanos(from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_records_are_not_measured() {
        let t0 = Instant::now();
        let p = Phase::new(t0);
        assert!(!p.is_measuring(t0 + Duration::from_secs(5)));
        p.start_measuring(t0 + Duration::from_secs(2));
        assert!(!p.is_measuring(t0 + Duration::from_secs(1)));
        assert!(p.is_measuring(t0 + Duration::from_secs(2)));
        assert!(p.is_measuring(t0 + Duration::from_secs(3)));
        assert!(!p.is_measuring_ns(1_999_999_999) && p.is_measuring_ns(2_000_000_000));
    }
}
