//! The open-loop schedule: send i of the run is due at start + i x interval, whatever happened to
//! send i-1, so latency measured from the due time includes every stall (free of coordinated
//! omission, as wrk2).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long before a due time the sender stops sleeping and spins: covers the sleep's own wake-up
/// delay (a few microseconds once [`precise_sleeps`] ran, more on a loaded host).
const SPIN: Duration = Duration::from_micros(30);
/// Shortest sleep worth a system call.
const SLEEP_MIN: Duration = Duration::from_micros(10);
/// The most of its time a sending thread may spend spinning: one part in this many of the
/// interval between its own sends. Above about 30,000 sends/s per thread the whole interval would
/// be spin (the interval is shorter than [`SPIN`] + [`SLEEP_MIN`]): the threads would take the cores
/// the engine's sender and I/O threads need, and the latency measured would be the harness's
/// (on 2 cores, 2 threads at 50,000/s each: p50 2.3 ms, the CPU 93% busy). There the thread sleeps
/// instead and sends what fell due while it slept back to back, each measured from its own due time.
const SPIN_SHARE: u32 = 8;

/// Makes this thread's sleeps end when asked (timer slack of 1 ns instead of Linux's default 50 µs,
/// which would add up to 50 µs to every send's wake-up). Call once on each open-loop sending thread.
pub fn precise_sleeps() {
    // SAFETY: PR_SET_TIMERSLACK takes an integer argument and touches no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
    }
}

/// One thread's share of a fixed-rate schedule: thread t of T takes sends t, t+T, t+2T, ...
#[derive(Debug, Clone)]
pub struct RateSchedule {
    start: Instant,
    interval_ns: f64,
    next: u64,
    step: u64,
    /// How close to a due time the thread spins rather than sleeps (see [`SPIN_SHARE`]).
    spin: Duration,
    /// Below this much time left, a sleep is not worth its system call: spin (or send at once).
    sleep_min: Duration,
}

impl RateSchedule {
    /// `rate_per_sec` over all `threads`; this is thread `thread`.
    pub fn new(rate_per_sec: f64, threads: u32, thread: u32, start: Instant) -> Self {
        let interval_ns = 1e9 / rate_per_sec.max(1e-9);
        let step = u64::from(threads.max(1));
        // This thread's own interval between sends, and the part of it it may spin.
        let own = Duration::from_secs_f64(interval_ns * step as f64 / 1e9);
        let budget = own / SPIN_SHARE;
        RateSchedule {
            start,
            interval_ns,
            next: u64::from(thread),
            step,
            spin: SPIN.min(budget),
            sleep_min: SLEEP_MIN.min(budget.saturating_sub(SPIN.min(budget))),
        }
    }

    /// When the next send of this thread is due.
    pub fn next_due(&self) -> Instant {
        self.start + Duration::from_nanos((self.next as f64 * self.interval_ns) as u64)
    }

    /// Waits until the next send is due (sleeping, then spinning the last [`SPIN`] at most) and
    /// returns its due time and the clock's reading at the return (the send instant); returns at once
    /// when behind schedule, and `None` as soon as `stop` is set (a slow schedule never holds up a
    /// stop).
    ///
    /// The spin is kept short, and to one part in [`SPIN_SHARE`] of the thread's interval: the kernel
    /// groups a process's threads for fair sharing (autogroup), so a sender spinning through the
    /// interval between sends takes the CPU share the engine's own threads need to answer, and the
    /// latency measured would be the harness's. [`precise_sleeps`] makes the sleep before the spin end
    /// on time; where the interval is shorter than a sleep's wake-up, the sends that fell due while
    /// the thread slept go back to back, late by what the wake-up took (counted: latency is measured
    /// from the due time).
    pub fn wait_until_due(&mut self, stop: &AtomicBool) -> Option<(Instant, Instant)> {
        let due = self.next_due();
        let now = loop {
            let now = Instant::now();
            if now >= due {
                break now;
            }
            let left = due - now;
            if left > self.spin + self.sleep_min {
                if stop.load(Ordering::Relaxed) {
                    return None;
                }
                std::thread::sleep((left - self.spin).min(Duration::from_millis(20)));
            } else if left > self.spin {
                // Too close for a sleep, too far for this thread's spin budget: give the core away.
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        };
        self.next += self.step;
        Some((due, now))
    }

    /// How far behind the schedule the thread is at `now`.
    pub fn lag(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.next_due())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_interleave_the_schedule() {
        let t0 = Instant::now();
        let mut a = RateSchedule::new(1000.0, 2, 0, t0);
        let b = RateSchedule::new(1000.0, 2, 1, t0);
        assert_eq!(a.next_due(), t0);
        assert_eq!(b.next_due(), t0 + Duration::from_millis(1));
        a.next += a.step;
        assert_eq!(a.next_due(), t0 + Duration::from_millis(2));
    }

    #[test]
    fn due_times_do_not_drift_when_late() {
        let t0 = Instant::now() - Duration::from_secs(1);
        let mut s = RateSchedule::new(100.0, 1, 0, t0);
        let stop = AtomicBool::new(false);
        let (first, sent) = s.wait_until_due(&stop).unwrap();
        let (second, _) = s.wait_until_due(&stop).unwrap();
        assert!(sent >= first);
        assert_eq!(second - first, Duration::from_millis(10), "a late sender keeps the original schedule");
        assert!(s.lag(Instant::now()) > Duration::from_millis(900));
    }

    #[test]
    fn a_thread_spins_at_most_its_share_of_the_interval() {
        let t0 = Instant::now();
        // 10,000/s over 2 threads: each sends every 200 us and may spin 25 us of it.
        let slow = RateSchedule::new(10_000.0, 2, 0, t0);
        assert_eq!(slow.spin, Duration::from_micros(25));
        // 100,000/s over 2 threads: every 20 us, 2.5 us of spin; never the whole interval.
        let fast = RateSchedule::new(100_000.0, 2, 1, t0);
        assert_eq!(fast.spin, Duration::from_nanos(2_500));
        assert_eq!(fast.sleep_min, Duration::ZERO);
        // Slow schedules keep the full spin and the shortest sleep worth a system call.
        let rare = RateSchedule::new(100.0, 1, 0, t0);
        assert_eq!((rare.spin, rare.sleep_min), (SPIN, SLEEP_MIN));
    }
}
