//! The I/O thread's timers: flush.ms (an fsync of every partition with unsynced data) and the
//! retention check (log.retention.check.interval.ms), run between rounds when due.

use std::time::{Duration, Instant};

use super::state::State;
use super::{IoThread, now_ms};

/// When each timer last ran, and the longest the thread sleeps between rounds.
pub(super) struct Timers {
    /// The shortest timer period: the longest wait on the channel or in the ring.
    pub(super) tick: Duration,
    last_flush: Instant,
    last_retention: Instant,
}

impl Timers {
    pub(super) fn new(flush_ms: Option<u64>, retention_check: Duration) -> Self {
        let tick = flush_ms.map_or(retention_check, |ms| Duration::from_millis(ms.max(1)).min(retention_check));
        Timers { tick, last_flush: Instant::now(), last_retention: Instant::now() }
    }
}

impl IoThread {
    /// Runs flush.ms and retention when due.
    pub(super) fn run_timers(&mut self, st: &mut State, timers: &mut Timers) {
        if let Some(ms) = self.flush_ms
            && timers.last_flush.elapsed() >= Duration::from_millis(ms)
        {
            timers.last_flush = Instant::now();
            for p in 0..st.io.len() as u32 {
                if self.lock(p).has_unsynced() {
                    st.want_sync(p);
                }
            }
            self.start_syncs(st);
        }
        if timers.last_retention.elapsed() >= self.retention_check && !self.health.is_offline() {
            timers.last_retention = Instant::now();
            for p in 0..self.partitions.len() {
                let mut log = self.lock(p as u32);
                if let Err(e) = log.apply_retention(now_ms()) {
                    log::warn!("retention on {}: {e}", log.name);
                }
            }
        }
    }
}
