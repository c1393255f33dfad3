//! One producer thread of a case, the same loop for every backend: send records (closed loop, or
//! open loop on a rate schedule), and record each delivery's latency from the scheduled and the
//! actual send.
//!
//! The loop reads the clock once per record before the send call (the time-stamp counter, see
//! [`SendClock`]; in an open loop the schedule's last reading is the send instant) and once more
//! after every [`SEND_SAMPLE`]-th, and records into the thread's own histograms without locks.
//! Deliveries are polled between sends, and the latency is taken from the backend's
//! completion instant (the batch's, or librdkafka's delivery report), not from when this thread
//! noticed it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use kbench_engine::record::RecordHeader;

use super::backend::{Delivery, NullSender, Outgoing, PROBE_MAX, PROBE_RECORDS, Sender, Shared, Token};
use super::keys::KeyGenerator;
use super::ledger::{ID_HEADER, Ledger, RecordId};
use super::payload::PayloadGenerator;
use super::phase::Phase;
use super::plan::CasePlan;
use crate::metrics::{CaseMetrics, RateSchedule, SendClock, Stage, StageRecorder, since, thread_cpu_time};

/// Everything one thread needs.
pub(crate) struct Worker<S> {
    pub sender: S,
    pub thread: u32,
    pub metrics: Arc<CaseMetrics>,
    pub phase: Arc<Phase>,
    pub stop: Arc<std::sync::atomic::AtomicBool>,
    pub keys: KeyGenerator,
    pub values: PayloadGenerator,
    pub headers: Vec<RecordHeader>,
    pub schedule: Option<RateSchedule>,
    /// Records this thread sends in the measured phase when the workload gives a count.
    pub quota: Option<u64>,
    pub sync: bool,
    pub core: Option<core_affinity::CoreId>,
    /// With consumers or an audit: the delivery ledger and the case's epoch (record ids).
    pub ledger: Option<(Arc<Ledger>, Instant)>,
    /// The case's epoch: tokens carry their instants as nanoseconds since it.
    pub epoch: Instant,
}

/// One record in this many has its time inside `send` recorded (`send_ns`, the `send` tag).
pub(crate) const SEND_SAMPLE: u64 = 8;

/// What a thread reports when it stops.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct WorkerReport {
    /// Sends issued in the measured phase.
    pub sent: u64,
    /// How far behind its schedule the thread was when it stopped (open loop).
    pub lag: Duration,
    /// The thread's CPU time from its first measured send to its end.
    pub cpu: Duration,
}

impl<S: Sender> Worker<S> {
    /// Thread `t`'s worker for `plan` on `sender`.
    pub(crate) fn new(
        plan: &CasePlan,
        t: u32,
        sender: S,
        shared: &Shared,
        schedule_start: Instant,
    ) -> anyhow::Result<Self> {
        let cores = if plan.pin_threads { core_affinity::get_core_ids().unwrap_or_default() } else { Vec::new() };
        let threads = u64::from(plan.threads);
        Ok(Worker {
            sender,
            thread: t,
            metrics: Arc::clone(&shared.metrics),
            phase: Arc::clone(&shared.phase),
            stop: Arc::clone(&shared.stop),
            keys: KeyGenerator::new(&plan.key, plan.seed ^ u64::from(t)),
            values: PayloadGenerator::new(&plan.value, plan.seed.wrapping_mul(31) ^ u64::from(t))?,
            headers: plan.headers.clone(),
            schedule: (plan.rate > 0.0).then(|| RateSchedule::new(plan.rate, plan.threads, t, schedule_start)),
            quota: plan.count.map(|n| n / threads + u64::from(u64::from(t) < n % threads)),
            sync: plan.sync,
            core: (!cores.is_empty()).then(|| cores[t as usize % cores.len()]),
            ledger: shared.ledger.as_ref().map(|l| (Arc::clone(l), shared.epoch)),
            epoch: shared.epoch,
        })
    }

    pub(crate) fn run(mut self) -> WorkerReport {
        if let Some(core) = self.core {
            core_affinity::set_for_current(core);
        }
        if self.schedule.is_some() {
            crate::metrics::precise_sleeps();
        }
        let mut rec = self.metrics.recorder();
        // A closed loop's send instants: the time-stamp counter, anchored to `Instant` (see
        // `metrics::clock`); an open loop's come from its schedule.
        let mut clock = SendClock::new(self.epoch);
        let mut completions = Completions::new(self.epoch);
        let mut report = WorkerReport::default();
        let mut seq = 0u64;
        let mut headers = self.headers.clone();
        let base_headers = self.headers.len();
        let mut cpu_at_measure: Option<Duration> = None;
        while !self.stop.load(Ordering::Relaxed) {
            if self.quota.is_some_and(|q| report.sent >= q) {
                break;
            }
            // The record is built before the wait, so the send follows the due time at once.
            let next_due = self.schedule.as_ref().map(RateSchedule::next_due);
            let key = self.keys.next();
            let value = self.values.next();
            let bytes = (value.len() + key.map_or(0, <[u8]>::len)) as u64;
            if let Some((_, epoch)) = &self.ledger {
                let scheduled = next_due.unwrap_or_else(Instant::now);
                let id = RecordId {
                    thread: self.thread,
                    seq,
                    scheduled_ns: scheduled.saturating_duration_since(*epoch).as_nanos() as u64,
                };
                headers.truncate(base_headers);
                headers.push(RecordHeader { key: ID_HEADER.into(), value: Some(id.encode()) });
            }
            let (due, sent) = match (self.schedule.as_mut(), next_due) {
                (Some(schedule), Some(next)) => {
                    // Poll deliveries while early, so waiting does not delay their recording.
                    while self.sender.in_flight() > 0 && Instant::now() + Duration::from_micros(50) < next {
                        if Self::collect(
                            &mut self.sender,
                            &self.metrics,
                            &self.ledger,
                            self.thread,
                            &mut rec,
                            &mut completions,
                            false,
                        ) == 0
                        {
                            break;
                        }
                    }
                    rec.maybe_hand_over();
                    match schedule.wait_until_due(&self.stop) {
                        Some((due, sent)) => (since(self.epoch, due), since(self.epoch, sent)),
                        None => break,
                    }
                }
                _ => {
                    let now = clock.now_ns();
                    (now, now)
                }
            };
            let measured = self.phase.is_measuring_ns(due);
            let token = Token { seq, due_ns: due, sent_ns: sent, bytes, measured };
            let outcome = self.sender.send(&Outgoing { key, value, headers: &headers }, token);
            if measured {
                if cpu_at_measure.is_none() {
                    cpu_at_measure = Some(thread_cpu_time());
                }
                // The send stage is timed on every SEND_SAMPLE-th record: a clock read costs as
                // much as a lock-free append on a VM, and a systematic sample keeps the percentiles.
                if seq.is_multiple_of(SEND_SAMPLE) {
                    rec.record(Stage::Send, clock.now_ns().saturating_sub(sent));
                }
                report.sent += 1;
            }
            seq += 1;
            match outcome {
                Ok(()) => {
                    // `send: sync` waits for the record's outcome; async collects what is done.
                    loop {
                        Self::collect(
                            &mut self.sender,
                            &self.metrics,
                            &self.ledger,
                            self.thread,
                            &mut rec,
                            &mut completions,
                            self.sync,
                        );
                        if !self.sync || self.sender.in_flight() == 0 {
                            break;
                        }
                    }
                }
                Err(failed) => {
                    if measured {
                        self.metrics.add_errors(1);
                    }
                    if failed.closed {
                        break;
                    }
                }
            }
        }
        if let Some(s) = &self.schedule {
            report.lag = s.lag(Instant::now());
        }
        // Every record sent gets its outcome recorded, however long the backend takes.
        while self.sender.in_flight() > 0 {
            Self::collect(&mut self.sender, &self.metrics, &self.ledger, self.thread, &mut rec, &mut completions, true);
        }
        rec.hand_over();
        report.cpu = cpu_at_measure.map_or(Duration::ZERO, |at| thread_cpu_time().saturating_sub(at));
        report
    }

    /// Records the deliveries the backend has completed; with `wait`, blocks for one.
    fn collect(
        sender: &mut S,
        metrics: &CaseMetrics,
        ledger: &Option<(Arc<Ledger>, Instant)>,
        thread: u32,
        rec: &mut StageRecorder,
        completions: &mut Completions,
        wait: bool,
    ) -> usize {
        sender.poll(wait, &mut |d: Delivery| {
            let t = d.token;
            if let (true, Some((ledger, _))) = (d.ok, ledger) {
                ledger.acknowledged(thread, t.seq);
            }
            // Measured or not was decided at the send, once for all of the record's figures.
            if !t.measured {
                return;
            }
            if d.ok {
                let done = completions.ns(d.completed_at);
                let e2e = done.saturating_sub(t.due_ns);
                // A closed loop's due is its send: one subtraction and one histogram record.
                let actual = if t.sent_ns == t.due_ns { e2e } else { done.saturating_sub(t.sent_ns) };
                rec.record_delivery(e2e, actual);
                rec.add_records(1, t.bytes);
            } else {
                metrics.add_errors(1);
            }
        })
    }
}

/// Completion instants as nanoseconds since the case's epoch. The records of one batch complete at
/// one instant, and arrive one after the other: the last conversion is kept, so a batch's records
/// pay one (a comparison for the others).
struct Completions {
    epoch: Instant,
    last: Option<(Instant, u64)>,
}

impl Completions {
    fn new(epoch: Instant) -> Self {
        Completions { epoch, last: None }
    }

    /// `at` (or now, when the backend does not say) in nanoseconds since the epoch.
    #[inline]
    fn ns(&mut self, at: Option<Instant>) -> u64 {
        let at = at.unwrap_or_else(Instant::now);
        match self.last {
            Some((last, ns)) if last == at => ns,
            _ => {
                let ns = since(self.epoch, at);
                self.last = Some((at, ns));
                ns
            }
        }
    }
}

/// The harness's own cost per record for `plan`'s records: the worker loop, closed, on one thread,
/// against a backend that completes every send at once ([`NullSender`]). Nanoseconds of the
/// thread's CPU time per record.
/// `tracks_records`: whether the case's records carry ids (the backend's answer), as the probe's do.
pub(crate) fn probe_harness_cost(plan: &CasePlan, tracks_records: bool) -> anyhow::Result<f64> {
    let metrics = CaseMetrics::new();
    let epoch = Instant::now();
    let phase = Arc::new(Phase::new(epoch));
    phase.start_measuring(epoch);
    metrics.start_measuring(epoch);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let shared = Shared {
        metrics,
        phase,
        stop: Arc::clone(&stop),
        ledger: tracks_records.then(|| Arc::new(Ledger::new(1))),
        epoch,
    };
    let probe_plan =
        CasePlan { rate: 0.0, count: Some(PROBE_RECORDS), threads: 1, sync: false, pin_threads: false, ..plan.clone() };
    let worker = Worker::new(&probe_plan, 0, NullSender::new(epoch), &shared, epoch)?;
    // The time-stamp counter's calibration (about 10 ms, once per process) is not the harness's
    // per-record cost: it happens here, before the probe's window, and not in the worker's first
    // `SendClock::new`.
    drop(SendClock::new(epoch));
    let timer = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let deadline = Instant::now() + PROBE_MAX;
            while let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
                std::thread::park_timeout(left);
                if stop.load(Ordering::Relaxed) {
                    return;
                }
            }
            stop.store(true, Ordering::Relaxed);
        })
    };
    let started = Instant::now();
    let report = worker.run();
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    timer.thread().unpark();
    let _ = timer.join();
    // The loop's CPU time, not its wall time: on a shared host the probe's thread waits for a core
    // as often as not (at load 7 on 2 cores, wall time read 3 to 50 times the CPU time), and that
    // wait is not what the harness costs a record.
    let spent = if report.cpu.is_zero() { elapsed } else { report.cpu };
    Ok(spent.as_nanos() as f64 / report.sent.max(1) as f64)
}
