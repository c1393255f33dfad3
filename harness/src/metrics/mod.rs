//! Per-stage HdrHistograms of one case, collected once a second, and the open-loop rate schedule.
//!
//! Each recording thread records into histograms of its own without locks and hands them over once
//! per collection (see [`StageRecorder`]); the collector sums them into the interval and the totals.
//! Values are nanoseconds (batch stages: records and bytes), 3 significant digits.

mod clock;
mod process;
mod rate;
mod threads;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use clock::{SendClock, since};
use hdrhistogram::Histogram;
pub use process::rss_bytes;
pub use rate::{RateSchedule, precise_sleeps};
pub use threads::{ThreadSample, thread_cpu_time};

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
    /// End-to-end latencies whose scheduled and actual send were the same instant (every record of
    /// a closed loop): recorded once here and counted in both e2e histograms when summed, so a
    /// closed loop pays one histogram record per delivery, not two.
    same: Histogram<u64>,
    records: u64,
    bytes: u64,
    /// Something was recorded since the last reset.
    dirty: bool,
}

impl Local {
    fn new() -> Self {
        Local {
            stages: (0..STAGES).map(|_| new_histogram()).collect(),
            same: new_histogram(),
            records: 0,
            bytes: 0,
            dirty: false,
        }
    }

    /// Adds `other`'s figures; its `same` histogram goes into both e2e stages.
    fn add(&mut self, other: &Local) {
        for (s, h) in self.stages.iter_mut().zip(&other.stages) {
            if !h.is_empty() {
                let _ = s.add(h);
            }
        }
        if !other.same.is_empty() {
            let _ = self.stages[Stage::EndToEnd.index()].add(&other.same);
            let _ = self.stages[Stage::EndToEndActual.index()].add(&other.same);
        }
        self.records += other.records;
        self.bytes += other.bytes;
        self.dirty |= other.dirty;
    }

    fn reset(&mut self) {
        if self.dirty {
            for h in &mut self.stages {
                h.reset();
            }
            self.same.reset();
        }
        self.records = 0;
        self.bytes = 0;
        self.dirty = false;
    }
}

/// One thread's recorder: records into histograms only this thread touches (no lock, no atomic
/// read-modify-write per value) and hands them over once per interval.
///
/// The collector bumps a generation number when it collects; the recorder sees the change on its
/// next record (one relaxed load) and swaps its histograms into its mailbox, taking the empty ones
/// the collector left there. A thread that stops recording stalls nothing: what it holds is handed
/// over when it records again or is dropped, and counted in the interval of the hand-over.
#[derive(Debug)]
pub struct StageRecorder {
    local: Local,
    seen: u64,
    mailbox: Arc<Mutex<Local>>,
    generation: Arc<AtomicU64>,
}

impl StageRecorder {
    /// Records one value of `stage`.
    #[inline]
    pub fn record(&mut self, stage: Stage, value: u64) {
        self.local.stages[stage.index()].saturating_record(value.max(1));
        self.local.dirty = true;
    }

    /// Records one delivery's end-to-end latency from its scheduled send (`e2e`, the
    /// [`Stage::EndToEnd`] figure) and from its actual send (`actual`, [`Stage::EndToEndActual`]).
    #[inline]
    pub fn record_delivery(&mut self, e2e: u64, actual: u64) {
        if e2e == actual {
            self.local.same.saturating_record(e2e.max(1));
        } else {
            self.local.stages[Stage::EndToEnd.index()].saturating_record(e2e.max(1));
            self.local.stages[Stage::EndToEndActual.index()].saturating_record(actual.max(1));
        }
        self.local.dirty = true;
    }

    /// Counts acknowledged records and their bytes, and hands the histograms over when the
    /// collector asked for them.
    #[inline]
    pub fn add_records(&mut self, records: u64, bytes: u64) {
        self.local.records += records;
        self.local.bytes += bytes;
        self.local.dirty = true;
        self.maybe_hand_over();
    }

    /// Hands the histograms over if the collector collected since the last hand-over.
    #[inline]
    pub fn maybe_hand_over(&mut self) {
        let g = self.generation.load(Ordering::Relaxed);
        if g != self.seen {
            self.seen = g;
            self.hand_over();
        }
    }

    /// Hands the histograms over now (a thread about to go quiet, or the last collection).
    pub fn hand_over(&mut self) {
        if !self.local.dirty {
            return;
        }
        let mut mailbox = self.mailbox.lock().unwrap_or_else(|p| p.into_inner());
        if mailbox.dirty {
            // The collector has not taken the last hand-over yet: merge (rare).
            mailbox.add(&self.local);
            self.local.reset();
        } else {
            // Swap: the mailbox holds the reset histograms of the previous hand-over.
            std::mem::swap(&mut *mailbox, &mut self.local);
            self.local.reset();
        }
    }
}

impl Drop for StageRecorder {
    fn drop(&mut self) {
        self.hand_over();
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
    mailboxes: Mutex<Vec<Arc<Mutex<Local>>>>,
    generation: Arc<AtomicU64>,
    /// The collector's scratch: the sum of one collection.
    scratch: Mutex<Local>,
    totals: Mutex<Local>,
    measuring: AtomicBool,
    times: Mutex<(Option<Instant>, Option<Instant>)>,
    errors: AtomicU64,
    uncompressed: AtomicU64,
    compressed: AtomicU64,
}

/// How long a collection waits for busy recorders to hand their histograms over.
const HAND_OVER_WAIT: Duration = Duration::from_millis(2);

impl CaseMetrics {
    /// Fresh metrics.
    pub fn new() -> Arc<Self> {
        Arc::new(CaseMetrics {
            mailboxes: Mutex::new(Vec::new()),
            generation: Arc::new(AtomicU64::new(0)),
            scratch: Mutex::new(Local::new()),
            totals: Mutex::new(Local::new()),
            measuring: AtomicBool::new(false),
            times: Mutex::new((None, None)),
            errors: AtomicU64::new(0),
            uncompressed: AtomicU64::new(0),
            compressed: AtomicU64::new(0),
        })
    }

    /// A recorder for the calling thread.
    pub fn recorder(&self) -> StageRecorder {
        let mailbox = Arc::new(Mutex::new(Local::new()));
        self.mailboxes.lock().unwrap_or_else(|p| p.into_inner()).push(Arc::clone(&mailbox));
        StageRecorder {
            local: Local::new(),
            seen: self.generation.load(Ordering::Relaxed),
            mailbox,
            generation: Arc::clone(&self.generation),
        }
    }

    /// Counts failures (measured phase only).
    pub fn add_errors(&self, n: u64) {
        if self.measuring.load(Ordering::Relaxed) {
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
        self.take(|_| ());
        self.totals.lock().unwrap_or_else(|p| p.into_inner()).reset();
        self.errors.store(0, Ordering::Relaxed);
        self.uncompressed.store(0, Ordering::Relaxed);
        self.compressed.store(0, Ordering::Relaxed);
        self.measuring.store(true, Ordering::Relaxed);
        *self.times.lock().unwrap_or_else(|p| p.into_inner()) = (Some(now), Some(now));
    }

    /// Asks every recorder for its histograms, sums what the mailboxes hold and hands the sum to
    /// `f`; the mailboxes are left reset.
    fn take<R>(&self, f: impl FnOnce(&Local) -> R) -> R {
        self.generation.fetch_add(1, Ordering::Relaxed);
        let mailboxes = self.mailboxes.lock().unwrap_or_else(|p| p.into_inner()).clone();
        // Recorders hand over on their next record: give busy ones a moment.
        std::thread::sleep(HAND_OVER_WAIT);
        let mut sum = self.scratch.lock().unwrap_or_else(|p| p.into_inner());
        sum.reset();
        for m in mailboxes {
            let mut l = m.lock().unwrap_or_else(|p| p.into_inner());
            if l.dirty {
                sum.add(&l);
                l.reset();
            }
        }
        f(&sum)
    }

    /// Collects what was recorded since the last collection (the driver calls it once a second).
    pub fn collect_interval(&self, now: Instant) -> Interval {
        let measuring = self.measuring.load(Ordering::Relaxed);
        let (since, from) = {
            let mut t = self.times.lock().unwrap_or_else(|p| p.into_inner());
            let from = t.1.unwrap_or(now);
            t.1 = Some(now);
            (t.0, from)
        };
        let (stages, records, bytes) = self.take(|taken| {
            if measuring {
                self.totals.lock().unwrap_or_else(|p| p.into_inner()).add(taken);
            }
            (taken.stages.clone(), taken.records, taken.bytes)
        });
        let length = now.saturating_duration_since(from).max(Duration::from_millis(1));
        let secs = length.as_secs_f64();
        Interval {
            start: since.map_or(Duration::ZERO, |s| from.saturating_duration_since(s)),
            length,
            e2e_p99_ns: stages[Stage::EndToEnd.index()].value_at_quantile(0.99),
            records_per_sec: records as f64 / secs,
            mb_per_sec: bytes as f64 / secs / 1e6,
            records,
            stages,
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
    fn recorders_hand_over_without_locks_and_intervals_add_up() {
        use std::sync::mpsc::{self, TryRecvError};
        let m = CaseMetrics::new();
        let idle = m.recorder(); // never records: must not stall collection
        let t0 = Instant::now();
        m.start_measuring(t0);
        let (values, rx) = mpsc::channel::<Vec<u64>>();
        let (done, recorded) = mpsc::channel::<()>();
        let worker = {
            let m = Arc::clone(&m);
            std::thread::spawn(move || {
                // A busy recording thread: it sees each collection on its next step.
                let mut r = m.recorder();
                loop {
                    match rx.try_recv() {
                        Ok(vs) => {
                            for v in vs {
                                r.record(Stage::EndToEnd, v);
                                r.add_records(1, 100);
                            }
                            done.send(()).unwrap();
                        }
                        Err(TryRecvError::Empty) => {
                            r.maybe_hand_over();
                            std::thread::yield_now();
                        }
                        Err(TryRecvError::Disconnected) => break,
                    }
                }
            })
        };
        values.send(vec![1_000, 2_000, 3_000]).unwrap();
        recorded.recv().unwrap();
        // However slow the host, the three values arrive in some interval, each exactly once.
        let (mut seen, mut second) = (0, 1);
        let deadline = Instant::now() + Duration::from_secs(20);
        while seen < 3 {
            assert!(Instant::now() < deadline, "the recorder never handed over");
            let iv = m.collect_interval(t0 + Duration::from_secs(second));
            assert!((iv.mb_per_sec - iv.records as f64 * 100e-6).abs() < 1e-9);
            assert!((iv.records_per_sec - iv.records as f64).abs() < 1e-9, "1 s intervals");
            seen += iv.records;
            second += 1;
        }
        assert_eq!(seen, 3);
        values.send(vec![4_000]).unwrap();
        recorded.recv().unwrap();
        drop(values); // the thread ends; its recorder hands over as it is dropped
        worker.join().unwrap();
        let _ = m.collect_interval(t0 + Duration::from_secs(second));
        let total = m.finish(t0 + Duration::from_secs(second));
        assert_eq!(total.records, 4);
        let h = total.stage(Stage::EndToEnd);
        assert_eq!(h.len(), 4);
        assert_eq!(h.max(), h.highest_equivalent(4_000));
        drop(idle);
    }

    #[test]
    fn a_delivery_sent_when_due_counts_in_both_e2e_stages_once() {
        let m = CaseMetrics::new();
        let t0 = Instant::now();
        m.start_measuring(t0);
        let mut r = m.recorder();
        r.record_delivery(5_000, 5_000); // closed loop: due is the send
        r.record_delivery(9_000, 2_000); // open loop, sent 7 us late
        r.add_records(2, 200);
        r.hand_over();
        // A second hand-over before the collector took the first merges into the mailbox.
        r.record_delivery(7_000, 7_000);
        r.hand_over();
        drop(r);
        let iv = m.collect_interval(t0 + Duration::from_secs(1));
        assert_eq!(iv.stages[Stage::EndToEndActual.index()].len(), 3, "intervals see both stages too");
        let total = m.finish(t0 + Duration::from_secs(1));
        let (e2e, actual) = (total.stage(Stage::EndToEnd), total.stage(Stage::EndToEndActual));
        assert_eq!((e2e.len(), actual.len()), (3, 3));
        assert_eq!(e2e.max(), e2e.highest_equivalent(9_000));
        assert_eq!(actual.max(), actual.highest_equivalent(7_000));
        assert_eq!(actual.min(), actual.lowest_equivalent(2_000));
        assert_eq!(e2e.min(), e2e.lowest_equivalent(5_000));
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
