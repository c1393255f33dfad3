//! One case: open the log, start the producer threads, warm up, measure second by second, stop,
//! and hand back the figures.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use kbench_engine::log::TopicLog;
use kbench_engine::producer::Producer;
use kbench_engine::sender::BatchObserver;

use super::audit;
use super::consumers::ConsumerSide;
use super::keys::KeyGenerator;
use super::ledger::Ledger;
use super::observer::StageObserver;
use super::payload::PayloadGenerator;
use super::phase::Phase;
use super::plan::CasePlan;
use super::replica_faults::FaultRunner;
use super::worker::{Worker, WorkerReport};
use crate::metrics::{CaseMetrics, Measured, RateSchedule, cpu_time};
use crate::progress::Progress;
use crate::results::schema::{CaseFiles, CaseStatus, ConsumerSummary, ReplicationSummary};
use crate::results::{CaseWriter, RunDir};

/// How often the control thread collects an interval (the .hlog and CSV resolution).
const INTERVAL: Duration = Duration::from_secs(1);

/// How long a replicated case waits, after its faults are healed, for every replica to catch up.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(30);

/// What a finished case hands back to the run.
pub(crate) struct CaseOutcome {
    pub status: CaseStatus,
    pub measured: Measured,
    pub files: CaseFiles,
    pub started_at: SystemTime,
    pub ended_at: SystemTime,
    pub duration: Duration,
    pub cpu: Duration,
    pub sent: u64,
    pub lag: Duration,
    pub io_backend_effective: String,
    pub consumers: Option<ConsumerSummary>,
    /// What the client saw, for `engine.kind: kafka`.
    pub kafka: Option<crate::results::schema::KafkaSummary>,
    /// Replication's figures and audit (replication.factor > 1).
    pub replication: Option<ReplicationSummary>,
}

/// Runs `plan` with its data under `data_root/<case id>/`.
pub(crate) fn run_case(
    plan: &CasePlan,
    data_root: &Path,
    run_dir: &RunDir,
    progress: &Progress,
    interrupted: &AtomicBool,
    keep_data: bool,
) -> anyhow::Result<CaseOutcome> {
    let data_dir = data_root.join(&plan.id);
    let log = Arc::new(
        TopicLog::open(&data_dir, &plan.topic, plan.partitions, plan.log.clone())
            .with_context(|| format!("opening the log under {}", data_dir.display()))?,
    );
    let io_backend_effective = log.io_backend().to_string();
    let metrics = CaseMetrics::new();
    let epoch = Instant::now();
    let phase = Arc::new(Phase::new(epoch));
    let stop = Arc::new(AtomicBool::new(false));
    let observer: Arc<dyn BatchObserver> = Arc::new(StageObserver::new(Arc::clone(&metrics), Arc::clone(&phase)));

    let producers = start_producers(plan, &log, &observer)?;
    let replicated = plan.log.replication_factor > 1;
    // Records carry ids (and the ledger tracks acknowledgements) when something will check them:
    // the consumers, or the audit of a replicated log.
    let ledger = (plan.consumers.is_some() || replicated).then(|| Arc::new(Ledger::new(plan.threads)));
    let mut faults = FaultRunner::new(plan.replica_faults.clone());
    let mut consumer_side = match (&plan.consumers, &ledger) {
        (Some(c), Some(l)) => Some(ConsumerSide::start(
            c.clone(),
            Arc::clone(&log),
            &data_dir.join("__consumer_offsets"),
            Arc::clone(l),
            Arc::clone(&phase),
            epoch,
        )?),
        _ => None,
    };
    let cores = if plan.pin_threads { core_affinity::get_core_ids().unwrap_or_default() } else { Vec::new() };
    let mut workers: Vec<JoinHandle<WorkerReport>> = Vec::with_capacity(plan.threads as usize);
    let measure_start_at = epoch + plan.warmup;
    for t in 0..plan.threads {
        let worker = Worker {
            producer: producers[t as usize % producers.len()].clone(),
            metrics: Arc::clone(&metrics),
            phase: Arc::clone(&phase),
            stop: Arc::clone(&stop),
            keys: KeyGenerator::new(&plan.key, plan.seed ^ u64::from(t)),
            values: PayloadGenerator::new(&plan.value, plan.seed.wrapping_mul(31) ^ u64::from(t))?,
            headers: plan.headers.clone(),
            schedule: (plan.rate > 0.0).then(|| RateSchedule::new(plan.rate, plan.threads, t, epoch)),
            quota: plan
                .count
                .map(|n| n / u64::from(plan.threads) + u64::from(u64::from(t) < n % u64::from(plan.threads))),
            sync: plan.sync,
            core: (!cores.is_empty()).then(|| cores[t as usize % cores.len()]),
            ledger: ledger.as_ref().map(|l| (Arc::clone(l), t, epoch)),
        };
        let handle = std::thread::Builder::new()
            .name(format!("kbench-producer-{t}"))
            .spawn(move || worker.run())
            .context("spawning a producer thread")?;
        workers.push(handle);
    }

    // Warmup: nothing is kept, the bar shows progress.
    let expected = plan.warmup + plan.duration.unwrap_or_default();
    progress.case_started(plan.index, &plan.id, expected);
    let mut status = CaseStatus::Ok;
    while Instant::now() < measure_start_at {
        if interrupted.load(Ordering::Relaxed) {
            status = CaseStatus::Interrupted;
            break;
        }
        std::thread::sleep(Duration::from_millis(50).min(measure_start_at.saturating_duration_since(Instant::now())));
        let iv = metrics.collect_interval(Instant::now());
        progress.update("warmup", iv.records_per_sec, iv.e2e_p99_ns, epoch.elapsed());
    }

    let measure_start = Instant::now();
    phase.start_measuring(measure_start);
    metrics.start_measuring(measure_start);
    let started_at = SystemTime::now();
    let cpu_start = cpu_time();
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
        if let Some(side) = consumer_side.as_mut() {
            side.apply_faults(now - measure_start)?;
        }
        faults.apply(now - measure_start, &log)?;
        if now >= next_tick {
            let mut iv = metrics.collect_interval(now);
            iv.consumer_lag = consumer_side.as_ref().map(ConsumerSide::lag);
            writer.write_interval(&iv)?;
            progress.update("measure", iv.records_per_sec, iv.e2e_p99_ns, now - measure_start);
            next_tick += INTERVAL;
        }
        let wake = [Some(next_tick), end_at].into_iter().flatten().min().unwrap_or(next_tick);
        std::thread::sleep(wake.saturating_duration_since(Instant::now()).min(Duration::from_millis(20)));
    }
    let stopped = Instant::now();
    stop.store(true, Ordering::Release);
    let mut sent = 0;
    let mut lag = Duration::ZERO;
    for w in workers {
        let report = w.join().map_err(|_| anyhow::anyhow!("a producer thread panicked"))?;
        sent += report.sent;
        lag = lag.max(report.lag);
    }
    for p in &producers {
        p.close().context("closing the producer")?;
    }
    // With a count the phase ends when the last record is delivered; with a duration, at the stop.
    let end = if plan.count.is_some() { Instant::now() } else { stopped };
    // Faults end here so that consumers can finish and the replicas converge before the audit.
    let converged = if replicated {
        faults.heal(&log)?;
        audit::converge(&log, CONVERGE_TIMEOUT)?
    } else {
        true
    };
    let mut last = metrics.collect_interval(Instant::now());
    last.consumer_lag = consumer_side.as_ref().map(ConsumerSide::lag);
    writer.write_interval(&last)?;
    let consumers = match (consumer_side.take(), &ledger, &plan.consumers) {
        (Some(side), Some(ledger), Some(cp)) => {
            let stats = Arc::clone(&side.stats);
            side.drain_and_stop(cp.config.session_timeout + Duration::from_secs(5))?;
            Some(stats.summary(ledger, stopped.saturating_duration_since(measure_start)))
        }
        _ => None,
    };
    let replication = match (&ledger, replicated) {
        (Some(ledger), true) => Some(ReplicationSummary {
            replication_factor: plan.log.replication_factor,
            min_insync_replicas: plan.log.min_insync_replicas,
            acknowledged: ledger.accounting().acknowledged,
            lost_acknowledged: audit::missing_acknowledged(&log, ledger)?,
            elections: (0..log.partitions())
                .filter_map(|p| log.replica_status(p).ok().flatten())
                .map(|s| s.leader_epoch.max(0) as u32)
                .max()
                .unwrap_or(0),
            converged,
            faults: std::mem::take(&mut faults.applied),
        }),
        _ => None,
    };
    let cpu = cpu_time().saturating_sub(cpu_start);
    let measured = metrics.finish(end);
    let files = writer.finish(&measured)?;
    log.close().with_context(|| format!("closing the log under {}", data_dir.display()))?;
    if !keep_data {
        // Cases can write gigabytes; a temporary data directory is emptied case by case.
        std::fs::remove_dir_all(&data_dir).with_context(|| format!("removing {}", data_dir.display()))?;
    }
    Ok(CaseOutcome {
        status,
        measured,
        files,
        started_at,
        ended_at: SystemTime::now(),
        duration: end.saturating_duration_since(measure_start),
        cpu,
        sent,
        lag,
        io_backend_effective,
        consumers,
        kafka: None,
        replication,
    })
}

fn start_producers(
    plan: &CasePlan,
    log: &Arc<TopicLog>,
    observer: &Arc<dyn BatchObserver>,
) -> anyhow::Result<Vec<Producer>> {
    let count = if plan.shared_producer { 1 } else { plan.threads };
    (0..count)
        .map(|_| {
            Producer::new(plan.producer.clone(), Arc::clone(log), Some(Arc::clone(observer)))
                .context("starting the producer")
        })
        .collect()
}
