//! The wall clock `send` stamps records with.
//!
//! Kafka timestamps are milliseconds, so the coarse realtime clock (updated every tick, 1-4 ms) gives
//! the same resolution Kafka's `System.currentTimeMillis()` does at a fraction of the cost of the
//! precise clock, which matters at ten million sends a second.

/// Milliseconds since the Unix epoch, from `CLOCK_REALTIME_COARSE`.
pub(super) fn now_ms() -> i64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call; clock_gettime only
    // writes through the pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
    if rc != 0 {
        return std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
    }
    ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
}

#[cfg(test)]
mod tests {
    #[test]
    fn coarse_clock_agrees_with_system_time() {
        let precise = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        let coarse = super::now_ms();
        assert!((precise - coarse).abs() < 50, "coarse {coarse} vs precise {precise}");
    }
}
