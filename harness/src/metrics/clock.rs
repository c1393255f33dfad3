//! The sending threads' clock: the CPU's time-stamp counter (through `quanta`, which uses it where
//! the kernel trusts it and falls back to the OS clock elsewhere), read as nanoseconds since an
//! epoch `Instant` (the case's), so that the worker loop's arithmetic is on plain integers.
//!
//! A record's latency is the engine's completion instant (an `Instant`, taken once per batch) less
//! its send instant, so both must be on one time base. `quanta` converts counter ticks with a rate
//! it calibrates once against the OS clock; measured here, that rate is off by about 1.4 ppm, which
//! over a minute would move a latency by 84 us. So each thread anchors the counter to an `Instant`
//! reading and converts only the ticks since the anchor, and re-anchors every [`REANCHOR_READS`]
//! readings: the rate's error then applies to at most that many readings' worth of time (a
//! millisecond in a busy closed loop), well under a microsecond.

use std::time::Instant;

/// Readings between two anchors (an `Instant::now()` each).
pub const REANCHOR_READS: u32 = 1024;

/// One thread's clock (not shared: `now_ns` takes `&mut self`).
#[derive(Debug, Clone)]
pub struct SendClock {
    clock: quanta::Clock,
    epoch: Instant,
    anchor_raw: u64,
    /// The anchor's `Instant`, as nanoseconds since `epoch`.
    anchor_ns: u64,
    until_anchor: u32,
}

impl SendClock {
    /// A clock anchored now, reading nanoseconds since `epoch` (the counter's calibration, about
    /// 10 ms, happens once per process).
    pub fn new(epoch: Instant) -> Self {
        let clock = quanta::Clock::new();
        let (anchor_raw, anchor) = (clock.raw(), Instant::now());
        SendClock { clock, epoch, anchor_raw, anchor_ns: since(epoch, anchor), until_anchor: REANCHOR_READS }
    }

    /// Now, in nanoseconds since the epoch.
    #[inline]
    pub fn now_ns(&mut self) -> u64 {
        self.until_anchor -= 1;
        if self.until_anchor == 0 {
            self.until_anchor = REANCHOR_READS;
            self.anchor_raw = self.clock.raw();
            self.anchor_ns = since(self.epoch, Instant::now());
            return self.anchor_ns;
        }
        let raw = self.clock.raw();
        self.anchor_ns + self.clock.delta_as_nanos(self.anchor_raw, raw)
    }
}

/// `at` as nanoseconds since `epoch` (0 before it).
#[inline]
pub fn since(epoch: Instant, at: Instant) -> u64 {
    at.saturating_duration_since(epoch).as_nanos() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_follow_the_os_clock_across_anchors() {
        let epoch = Instant::now();
        let mut clock = SendClock::new(epoch);
        let mut last = clock.now_ns();
        for i in 0..(3 * REANCHOR_READS + 7) {
            let before = since(epoch, Instant::now());
            let t = clock.now_ns();
            let after = since(epoch, Instant::now());
            let slack = 100_000u64.max(after / 1000);
            assert!(t + slack >= before && t <= after + slack, "reading {i}: {t} not within {before}..{after}");
            assert!(t + slack >= last, "reading {i} went back: {t} after {last}");
            last = t;
        }
    }
}
