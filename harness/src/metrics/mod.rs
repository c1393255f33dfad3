//! Per-stage HdrHistograms of one case, collected once a second, and the open-loop rate schedule.
//!
//! Each recording thread has its own histograms behind its own mutex, locked only by that thread and,
//! once a second, by the collector: uncontended, and a thread that stops recording cannot stall a
//! collection. Values are nanoseconds (batch stages: records and bytes), 3 significant digits.

mod rate;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
pub use rate::RateSchedule;

/// What is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Delivery latency from the scheduled send.
    EndToEnd,
    /// Delivery latency from the actual send.
    EndToEndActual,
    /// Time inside `send`.
    Send,
    /// Batch: creation to drain.
    Queue,
    /// Batch: compression.
    Compress,
    /// Batch: hand-off to write completion.
    Write,
    /// Batch: fsync awaited.
    Sync,
    /// Batch: records.
    BatchRecords,
    /// Batch: uncompressed bytes.
    BatchBytes,
    /// Batch: compressed / uncompressed size, in thousandths (1000 = no reduction).
    CompressionRatio,
}

/// Number of stages.
pub const STAGES: usize = 10;

impl Stage {
    /// Every stage, in `.hlog` order.
    pub const ALL: [Stage; STAGES] = [
        Stage::EndToEnd,
        Stage::EndToEndActual,
        Stage::Send,
        Stage::Queue,
        Stage::Compress,
        Stage::Write,
        Stage::Sync,
        Stage::BatchRecords,
        Stage::BatchBytes,
        Stage::CompressionRatio,
    ];

    /// The `.hlog` tag.
    pub fn tag(self) -> &'static str {
        match self {
            Stage::EndToEnd => "e2e",
            Stage::EndToEndActual => "e2e_actual",
            Stage::Send => "send",
            Stage::Queue => "queue",
            Stage::Compress => "compress",
            Stage::Write => "write",
            Stage::Sync => "sync",
            Stage::BatchRecords => "batch_records",
            Stage::BatchBytes => "batch_bytes",
            Stage::CompressionRatio => "compression_ratio_permille",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// An empty histogram for any stage: 1 ns to 1 hour, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid bounds")
}

#[derive(Debug)]
struct Local {
    stages: Vec<Histogram<u64>>,
    records: u64,
    bytes: u64,
}

impl Local {
    fn new() -> Self {
        Local { stages: (0..STAGES).map(|_| new_histogram()).collect(), records: 0, bytes: 0 }
    }
}

/// One thread's recorder.
#[derive(Debug)]
pub struct StageRecorder {
    local: Arc<Mutex<Local>>,
}

impl StageRecorder {
    /// Records one value of `stage`.
    #[inline]
    pub fn record(&mut self, stage: Stage, value: u64) {
        let mut l = self.local.lock().unwrap_or_else(|p| p.into_inner());
        l.stages[stage.index()].saturating_record(value.max(1));
    }

    /// Counts acknowledged records and their bytes.
    #[inline]
    pub fn add_records(&mut self, records: u64, bytes: u64) {
        let mut l = self.local.lock().unwrap_or_else(|p| p.into_inner());
        l.records += records;
        l.bytes += bytes;
    }
}

/// One second (or the last fraction) of a case.
#[derive(Debug, Clone)]
pub struct Interval {
    /// From the start of the measured phase.
    pub start: Duration,
    /// Length.
    pub length: Duration,
    /// Per stage.
    pub stages: Vec<Histogram<u64>>,
    /// Records acknowledged.
    pub records: u64,
    /// records / length.
    pub records_per_sec: f64,
    /// bytes / length / 1e6.
    pub mb_per_sec: f64,
    /// p99 of e2e in the interval.
    pub e2e_p99_ns: u64,
    /// The consumer group's lag at the end of the interval (records), when the case has consumers.
    pub consumer_lag: Option<u64>,
}

/// Totals of the measured phase.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Per stage.
    pub stages: Vec<Histogram<u64>>,
    /// Records acknowledged.
    pub records: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Failed sends and deliveries.
    pub errors: u64,
    /// Uncompressed record bytes of measured batches.
    pub uncompressed: u64,
    /// Compressed record bytes of measured batches.
    pub compressed: u64,
}

impl Measured {
    /// One stage's histogram.
    pub fn stage(&self, s: Stage) -> &Histogram<u64> {
        &self.stages[s.index()]
    }
}

/// One case's measurements.
#[derive(Debug)]
pub struct CaseMetrics {
    recorders: Mutex<Vec<Arc<Mutex<Local>>>>,
    totals: Mutex<Local>,
    measuring_since: Mutex<Option<Instant>>,
    last_collect: Mutex<Option<Instant>>,
    errors: AtomicU64,
    uncompressed: AtomicU64,
    compressed: AtomicU64,
}

impl CaseMetrics {
    /// Fresh metrics.
    pub fn new() -> Arc<Self> {
        Arc::new(CaseMetrics {
            recorders: Mutex::new(Vec::new()),
            totals: Mutex::new(Local::new()),
            measuring_since: Mutex::new(None),
            last_collect: Mutex::new(None),
            errors: AtomicU64::new(0),
            uncompressed: AtomicU64::new(0),
            compressed: AtomicU64::new(0),
        })
    }

    /// A recorder for the calling thread.
    pub fn recorder(&self) -> StageRecorder {
        let local = Arc::new(Mutex::new(Local::new()));
        self.recorders.lock().unwrap_or_else(|p| p.into_inner()).push(Arc::clone(&local));
        StageRecorder { local }
    }

    /// Counts failures.
    pub fn add_errors(&self, n: u64) {
        if self.measuring_since.lock().unwrap_or_else(|p| p.into_inner()).is_some() {
            self.errors.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Counts compression input and output of a measured batch.
    pub fn add_compression(&self, uncompressed: u64, compressed: u64) {
        self.uncompressed.fetch_add(uncompressed, Ordering::Relaxed);
        self.compressed.fetch_add(compressed, Ordering::Relaxed);
    }

    /// Ends the warmup: everything recorded so far is dropped.
    pub fn start_measuring(&self, now: Instant) {
        self.take(now);
        *self.totals.lock().unwrap_or_else(|p| p.into_inner()) = Local::new();
        self.errors.store(0, Ordering::Relaxed);
        self.uncompressed.store(0, Ordering::Relaxed);
        self.compressed.store(0, Ordering::Relaxed);
        *self.measuring_since.lock().unwrap_or_else(|p| p.into_inner()) = Some(now);
        *self.last_collect.lock().unwrap_or_else(|p| p.into_inner()) = Some(now);
    }

    fn take(&self, _now: Instant) -> Local {
        let mut sum = Local::new();
        let recorders = self.recorders.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for r in recorders {
            let mut l = r.lock().unwrap_or_else(|p| p.into_inner());
            for (s, h) in sum.stages.iter_mut().zip(l.stages.iter_mut()) {
                let _ = s.add(&*h);
                h.reset();
            }
            sum.records += std::mem::take(&mut l.records);
            sum.bytes += std::mem::take(&mut l.bytes);
        }
        sum
    }

    /// Collects what was recorded since the last collection (the driver calls it once a second).
    pub fn collect_interval(&self, now: Instant) -> Interval {
        let taken = self.take(now);
        let since = *self.measuring_since.lock().unwrap_or_else(|p| p.into_inner());
        let mut last = self.last_collect.lock().unwrap_or_else(|p| p.into_inner());
        let from = last.unwrap_or(now);
        *last = Some(now);
        drop(last);
        if since.is_some() {
            let mut totals = self.totals.lock().unwrap_or_else(|p| p.into_inner());
            for (t, h) in totals.stages.iter_mut().zip(&taken.stages) {
                let _ = t.add(h);
            }
            totals.records += taken.records;
            totals.bytes += taken.bytes;
        }
        let length = now.saturating_duration_since(from).max(Duration::from_millis(1));
        let secs = length.as_secs_f64();
        Interval {
            start: since.map_or(Duration::ZERO, |s| from.saturating_duration_since(s)),
            length,
            e2e_p99_ns: taken.stages[Stage::EndToEnd.index()].value_at_quantile(0.99),
            records_per_sec: taken.records as f64 / secs,
            mb_per_sec: taken.bytes as f64 / secs / 1e6,
            records: taken.records,
            stages: taken.stages,
            consumer_lag: None,
        }
    }

    /// The measured phase's totals (collect the last interval first).
    pub fn finish(&self, _end: Instant) -> Measured {
        let totals = self.totals.lock().unwrap_or_else(|p| p.into_inner());
        Measured {
            stages: totals.stages.clone(),
            records: totals.records,
            bytes: totals.bytes,
            errors: self.errors.load(Ordering::Relaxed),
            uncompressed: self.uncompressed.load(Ordering::Relaxed),
            compressed: self.compressed.load(Ordering::Relaxed),
        }
    }
}

/// User + system CPU time of the process so far.
pub fn cpu_time() -> Duration {
    // SAFETY: getrusage writes into the zeroed struct we pass and reads nothing else.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut u) != 0 {
            return Duration::ZERO;
        }
        u
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_is_dropped_and_intervals_add_up() {
        let m = CaseMetrics::new();
        let mut r = m.recorder();
        let idle = m.recorder(); // never records: must not stall collection
        r.record(Stage::EndToEnd, 5_000);
        r.add_records(1, 100);
        let t0 = Instant::now();
        m.start_measuring(t0);
        for v in [1_000, 2_000, 3_000] {
            r.record(Stage::EndToEnd, v);
            r.add_records(1, 100);
        }
        let iv = m.collect_interval(t0 + Duration::from_secs(1));
        assert_eq!(iv.records, 3);
        assert!((iv.mb_per_sec - 300e-6).abs() < 1e-9);
        assert!((iv.records_per_sec - 3.0).abs() < 1e-9);
        r.record(Stage::EndToEnd, 4_000);
        r.add_records(1, 100);
        let _ = m.collect_interval(t0 + Duration::from_secs(2));
        let total = m.finish(t0 + Duration::from_secs(2));
        assert_eq!(total.records, 4);
        let h = total.stage(Stage::EndToEnd);
        assert_eq!(h.len(), 4);
        assert_eq!(h.max(), h.highest_equivalent(4_000));
        drop(idle);
    }

    #[test]
    fn cpu_time_advances() {
        // Busy-spin (black-boxed, so it cannot be folded away) until the
        // process's CPU time moves; the kernel accounts it in ticks, so give
        // it twenty seconds of wall time (a loaded host) before calling it stuck.
        let a = cpu_time();
        let start = Instant::now();
        let mut x = 0u64;
        while cpu_time() <= a {
            for i in 0..100_000u64 {
                x = std::hint::black_box(x.wrapping_add(i * i));
            }
            assert!(start.elapsed() < Duration::from_secs(20), "cpu_time() did not advance in 20 s of spinning");
        }
        assert!(cpu_time() > a);
    }
}
