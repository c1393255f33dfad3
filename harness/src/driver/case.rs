//! One case, the same loop for every backend: open the backend, start the producer threads, warm
//! up, measure second by second (applying what falls due), stop, and hand back the figures.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;

use super::backend::{Backend, Shared};
use super::ledger::Ledger;
use super::phase::Phase;
use super::plan::CasePlan;
use super::worker::{self, Worker, WorkerReport};
use crate::metrics::{CaseMetrics, Measured, ThreadSample, cpu_time, rss_bytes};
use crate::progress::Progress;
use crate::results::schema::{CaseFiles, CaseStatus, ConsumerSummary, ReplicationSummary};
use crate::results::schema::{ProcessSummary, RoleCpu};
use crate::results::{CaseWriter, RunDir};

/// How often the control thread collects an interval (the .hlog and CSV resolution).
const INTERVAL: Duration = Duration::from_secs(1);

/// What a finished case hands back to the run.
pub(crate) struct CaseOutcome {
    pub status: CaseStatus,
    pub measured: Measured,
    pub files: CaseFiles,
    pub started_at: SystemTime,
    pub ended_at: SystemTime,
    pub duration: Duration,
    pub cpu: Duration,
    /// The measured phase's CPU by thread role.
    pub threads: crate::results::schema::ThreadsCpu,
    pub sent: u64,
    pub lag: Duration,
    pub io_backend_effective: String,
    pub consumers: Option<ConsumerSummary>,
    /// What the client saw, for `engine.kind: kafka`.
    pub kafka: Option<crate::results::schema::KafkaSummary>,
    /// Replication's figures and audit (replication.factor > 1).
    pub replication: Option<ReplicationSummary>,
    /// The harness's own cost per record for this case's records (the worker loop against a
    /// backend that does nothing), nanoseconds.
    pub harness_ns_per_record: f64,
    /// Memory and descriptors at the phase's end, the backend's open and close times.
    pub process: ProcessSummary,
}

/// Runs `plan` on the backend `open` makes.
pub(crate) fn run_case<B: Backend>(
    plan: &CasePlan,
    open: impl FnOnce(&Shared) -> anyhow::Result<B>,
    run_dir: &RunDir,
    progress: &Progress,
    interrupted: &AtomicBool,
) -> anyhow::Result<CaseOutcome> {
    // First of all: the bar names this case (and shows no figures) while the probe and the backend's
    // setup run, rather than the previous case's last figures.
    progress.case_started(plan.index, &plan.id, plan.warmup + plan.duration.unwrap_or_default());
    let harness_ns_per_record =
        worker::probe_harness_cost(plan, B::tracks_records(plan)).context("measuring the harness's own cost")?;
    let epoch = Instant::now();
    let shared = Shared {
        metrics: CaseMetrics::new(),
        phase: Arc::new(Phase::new(epoch)),
        stop: Arc::new(AtomicBool::new(false)),
        ledger: B::tracks_records(plan).then(|| Arc::new(Ledger::new(plan.threads))),
        epoch,
    };
    let metrics = Arc::clone(&shared.metrics);
    let opening = Instant::now();
    let mut backend = open(&shared)?;
    let open_sec = opening.elapsed().as_secs_f64();

    // The schedule starts once the backend is up (a consumer group takes a while to form).
    let start = Instant::now();
    let mut workers: Vec<JoinHandle<WorkerReport>> = Vec::with_capacity(plan.threads as usize);
    for t in 0..plan.threads {
        let worker = Worker::new(plan, t, backend.sender(t, &shared)?, &shared, start)?;
        let handle = std::thread::Builder::new()
            .name(format!("kbench-producer-{t}"))
            .spawn(move || worker.run())
            .context("spawning a producer thread")?;
        workers.push(handle);
    }

    // Warmup: nothing is kept, the bar shows progress.
    let measure_start_at = start + plan.warmup;
    let mut status = CaseStatus::Ok;
    while Instant::now() < measure_start_at {
        if interrupted.load(Ordering::Relaxed) {
            status = CaseStatus::Interrupted;
            break;
        }
        std::thread::sleep(Duration::from_millis(50).min(measure_start_at.saturating_duration_since(Instant::now())));
        let iv = metrics.collect_interval(Instant::now());
        progress.update("warmup", iv.records_per_sec, iv.e2e_p99_ns, start.elapsed());
    }

    let measure_start = Instant::now();
    // Metrics first: errors of records the phase already counts as measured are never dropped.
    metrics.start_measuring(measure_start);
    shared.phase.start_measuring(measure_start);
    backend.start_measuring();
    let started_at = SystemTime::now();
    let cpu_start = cpu_time();
    let threads_start = ThreadSample::take();
    let mut writer: CaseWriter = run_dir.case_writer(&plan.id, started_at)?;
    let mut next_tick = measure_start + INTERVAL;
    let end_at = plan.duration.map(|d| measure_start + d);
    while status == CaseStatus::Ok {
        let now = Instant::now();
        if interrupted.load(Ordering::Relaxed) {
            status = CaseStatus::Interrupted;
            break;
        }
        if end_at.is_some_and(|end| now >= end) || (plan.count.is_some() && workers.iter().all(|w| w.is_finished())) {
            break;
        }
        let next_due = backend.tick(now - measure_start)?.map(|d| measure_start + d);
        if now >= next_tick {
            let mut iv = metrics.collect_interval(now);
            iv.consumer_lag = backend.consumer_lag();
            progress.update("measure", iv.records_per_sec, iv.e2e_p99_ns, now - measure_start);
            writer.write_interval(iv)?;
            next_tick += INTERVAL;
        }
        let wake = [Some(next_tick), end_at, next_due].into_iter().flatten().min().unwrap_or(next_tick);
        std::thread::sleep(wake.saturating_duration_since(Instant::now()).min(Duration::from_millis(20)));
    }
    let stopped = Instant::now();
    // Engine threads are sampled while the producer still runs (they end when it closes).
    let mut threads = ThreadSample::take().since(&threads_start);
    let mut process = ProcessSummary {
        rss_bytes: rss_bytes().unwrap_or(0),
        open_fds: kbench_engine::log::open_descriptors().unwrap_or(0),
        fd_limit: kbench_engine::log::descriptor_limit().unwrap_or(0),
        open_sec,
        close_sec: 0.0,
    };
    shared.stop.store(true, Ordering::Release);
    let mut sent = 0;
    let mut lag = Duration::ZERO;
    let mut worker_cpu = Duration::ZERO;
    for w in workers {
        let report = w.join().map_err(|_| anyhow::anyhow!("a producer thread panicked"))?;
        sent += report.sent;
        lag = lag.max(report.lag);
        worker_cpu += report.cpu;
    }
    let closing = Instant::now();
    backend.stop_producing()?;
    // Every record sent has its outcome. With a count the phase ends here, at the last delivery;
    // with a duration, at the stop (the records sent before it are counted however late they were
    // delivered, and the last interval runs to here).
    let drained = Instant::now();
    let end = if plan.count.is_some() { drained } else { stopped };
    // CPU of the measured phase only: what follows (audits, draining consumers) is not measured.
    let cpu = cpu_time().saturating_sub(cpu_start);
    // The sending threads measure themselves: with a record count they end before the sample.
    threads.harness = RoleCpu { threads: plan.threads, cpu_seconds: worker_cpu.as_secs_f64() };
    let mut last = metrics.collect_interval(drained);
    last.consumer_lag = backend.consumer_lag();
    writer.write_interval(last)?;
    let report = backend.finish(&shared, stopped.saturating_duration_since(measure_start))?;
    process.close_sec = closing.elapsed().as_secs_f64();
    let measured = metrics.finish(end);
    let files = writer.finish(&measured)?;
    Ok(CaseOutcome {
        status,
        measured,
        files,
        started_at,
        // The measured phase's end, not this moment: the audit and the consumers' draining are after it.
        ended_at: started_at + end.saturating_duration_since(measure_start),
        duration: end.saturating_duration_since(measure_start),
        cpu,
        threads,
        sent,
        lag,
        io_backend_effective: report.io_backend_effective,
        consumers: report.consumers,
        kafka: report.kafka,
        replication: report.replication,
        harness_ns_per_record,
        process,
    })
}
