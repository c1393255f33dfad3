//! The sending threads' clock: the CPU's time-stamp counter (through `quanta`, which uses it where
//! the kernel trusts it and falls back to the OS clock elsewhere), read as `std::time::Instant`.
//!
//! A record's latency is the engine's completion instant (an `Instant`, taken once per batch) less
//! its send instant, so both must be on one time base. `quanta` converts counter ticks with a rate
//! it calibrates once against the OS clock; measured here, that rate is off by about 1.4 ppm, which
//! over a minute would move a latency by 84 us. So each thread anchors the counter to an `Instant`
//! reading and converts only the ticks since the anchor, and re-anchors every [`REANCHOR_READS`]
//! readings: the rate's error then applies to at most that many readings' worth of time (a
//! millisecond in a busy closed loop), well under a microsecond.

use std::time::{Duration, Instant};

/// Readings between two anchors (an `Instant::now()` each).
pub const REANCHOR_READS: u32 = 1024;

/// One thread's clock (not shared: `now` takes `&mut self`).
#[derive(Debug, Clone)]
pub struct SendClock {
    clock: quanta::Clock,
    anchor_raw: u64,
    anchor: Instant,
    until_anchor: u32,
}

impl SendClock {
    /// A clock anchored now (the counter's calibration, about 10 ms, happens once per process).
    pub fn new() -> Self {
        let clock = quanta::Clock::new();
        let (anchor_raw, anchor) = (clock.raw(), Instant::now());
        SendClock { clock, anchor_raw, anchor, until_anchor: REANCHOR_READS }
    }

    /// The current instant, on `Instant`'s time base.
    #[inline]
    pub fn now(&mut self) -> Instant {
        self.until_anchor -= 1;
        if self.until_anchor == 0 {
            self.until_anchor = REANCHOR_READS;
            self.anchor_raw = self.clock.raw();
            self.anchor = Instant::now();
            return self.anchor;
        }
        let raw = self.clock.raw();
        self.anchor + Duration::from_nanos(self.clock.delta_as_nanos(self.anchor_raw, raw))
    }
}

impl Default for SendClock {
    fn default() -> Self {
        SendClock::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_follow_the_os_clock_across_anchors() {
        // Every reading lies between the OS clock's readings around it (give or take the rounding
        // of the tick conversion and the rate's error since the anchor: far under 100 us), and the
        // readings keep their order across re-anchoring.
        let mut clock = SendClock::new();
        let start = Instant::now();
        let mut last = clock.now();
        for i in 0..(3 * REANCHOR_READS + 7) {
            let before = Instant::now();
            let t = clock.now();
            let after = Instant::now();
            // However long this thread was descheduled: a rate off by 0.1% would be absurd.
            let slack = Duration::from_micros(100).max(after.duration_since(start) / 1000);
            assert!(t + slack >= before && t <= after + slack, "reading {i}: {t:?} not within {before:?}..{after:?}");
            assert!(t + slack >= last, "reading {i} went back: {t:?} after {last:?}");
            last = t;
        }
    }
}
