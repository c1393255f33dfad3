//! One `engine.kind: kafka` case: the cluster (a mock cluster started for the case, or the topic
//! checked or created on a real one), the consumer group when there is one, the producers and their
//! threads; then warmup, the measured phase second by second with the mock cluster's faults, and the
//! same figures and files as an embedded case.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use rdkafka::ClientConfig;
use rdkafka::producer::Producer;

use super::KafkaPlan;
use super::consumer::KafkaConsumers;
use super::errors::ClientErrors;
use super::mock::Mock;
use super::producer::{KafkaProducer, KafkaWorker, ProducerSide};
use crate::driver::case::CaseOutcome;
use crate::driver::keys::KeyGenerator;
use crate::driver::ledger::Ledger;
use crate::driver::payload::PayloadGenerator;
use crate::driver::phase::Phase;
use crate::driver::plan::CasePlan;
use crate::driver::worker::WorkerReport;
use crate::metrics::{CaseMetrics, RateSchedule, cpu_time};
use crate::progress::Progress;
use crate::results::schema::{CaseStatus, KafkaSummary};
use crate::results::{CaseWriter, RunDir};

/// How often the control thread collects an interval (as for the embedded engine).
const INTERVAL: Duration = Duration::from_secs(1);

/// Runs `plan` against the cluster `k` names.
pub(crate) fn run_case(
    plan: &CasePlan,
    k: &KafkaPlan,
    run_dir: &RunDir,
    progress: &Progress,
    interrupted: &AtomicBool,
) -> anyhow::Result<CaseOutcome> {
    // Declared first, dropped last: every client is gone before the mock cluster stops.
    let mock = match k.mock_brokers {
        Some(n) => Some(Mock::start(n, &plan.topic, plan.partitions)?),
        None => None,
    };
    let bootstrap = mock.as_ref().map_or_else(|| k.bootstrap.clone(), Mock::bootstrap_servers);
    if mock.is_none() {
        super::topic::ensure(
            &k.properties.common,
            &bootstrap,
            &plan.topic,
            plan.partitions,
            &k.properties.topic_configs,
            k.properties.replication_factor,
        )?;
    }
    let metrics = CaseMetrics::new();
    let epoch = Instant::now();
    let phase = Arc::new(Phase::new(epoch));
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(ClientErrors::default());
    let ledger = k.consumers.as_ref().map(|_| Arc::new(Ledger::new(plan.threads)));
    let group = format!("kbench-{}-{}", plan.id, jiff::Timestamp::now().as_millisecond());
    let mut consumers = match (&k.consumers, &ledger) {
        (Some(c), Some(l)) => Some(KafkaConsumers::start(
            c.clone(),
            &k.properties.consumer,
            &bootstrap,
            &plan.topic,
            plan.partitions,
            &group,
            Arc::clone(l),
            Arc::clone(&phase),
            epoch,
            &errors,
        )?),
        _ => None,
    };
    let producers = start_producers(plan, k, &bootstrap, &metrics, &phase, ledger.as_ref(), &errors)?;

    // The schedule starts once the clients are up (a consumer group takes a while to form).
    let start = Instant::now();
    let cores = if plan.pin_threads { core_affinity::get_core_ids().unwrap_or_default() } else { Vec::new() };
    let mut workers: Vec<JoinHandle<WorkerReport>> = Vec::with_capacity(plan.threads as usize);
    for t in 0..plan.threads {
        let worker = KafkaWorker {
            producer: Arc::clone(&producers[t as usize % producers.len()]),
            topic: plan.topic.clone(),
            thread: t,
            metrics: Arc::clone(&metrics),
            phase: Arc::clone(&phase),
            stop: Arc::clone(&stop),
            errors: Arc::clone(&errors),
            keys: KeyGenerator::new(&plan.key, plan.seed ^ u64::from(t)),
            values: PayloadGenerator::new(&plan.value, plan.seed.wrapping_mul(31) ^ u64::from(t))?,
            headers: plan.headers.clone(),
            schedule: (plan.rate > 0.0).then(|| RateSchedule::new(plan.rate, plan.threads, t, start)),
            quota: plan
                .count
                .map(|n| n / u64::from(plan.threads) + u64::from(u64::from(t) < n % u64::from(plan.threads))),
            sync: plan.sync,
            max_block: k.max_block,
            core: (!cores.is_empty()).then(|| cores[t as usize % cores.len()]),
            ledger_epoch: ledger.as_ref().map(|_| epoch),
        };
        workers.push(
            std::thread::Builder::new()
                .name(format!("kbench-kafka-producer-{t}"))
                .spawn(move || worker.run())
                .context("spawning a producer thread")?,
        );
    }

    let measure_start_at = start + plan.warmup;
    progress.case_started(plan.index, &plan.id, plan.warmup + plan.duration.unwrap_or_default());
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
    phase.start_measuring(measure_start);
    metrics.start_measuring(measure_start);
    errors.start_measuring();
    let started_at = SystemTime::now();
    let cpu_start = cpu_time();
    let mut writer: CaseWriter = run_dir.case_writer(&plan.id, started_at)?;
    let mut next_tick = measure_start + INTERVAL;
    let end_at = plan.duration.map(|d| measure_start + d);
    let mut faults = k.faults.iter().peekable();
    let mut faults_applied = Vec::new();
    while status == CaseStatus::Ok {
        let now = Instant::now();
        if interrupted.load(Ordering::Relaxed) {
            status = CaseStatus::Interrupted;
            break;
        }
        if end_at.is_some_and(|end| now >= end) || (plan.count.is_some() && workers.iter().all(|w| w.is_finished())) {
            break;
        }
        while let (Some(m), Some(f)) = (mock.as_ref(), faults.next_if(|f| now - measure_start >= f.at)) {
            m.apply(f)?;
            faults_applied.push(f.to_string());
        }
        if now >= next_tick {
            let mut iv = metrics.collect_interval(now);
            iv.consumer_lag = consumers.as_ref().and_then(KafkaConsumers::lag);
            writer.write_interval(&iv)?;
            progress.update("measure", iv.records_per_sec, iv.e2e_p99_ns, now - measure_start);
            next_tick += INTERVAL;
        }
        let wake = [Some(next_tick), end_at, faults.peek().map(|f| measure_start + f.at)]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(next_tick);
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
    // Every record sent gets its delivery report: librdkafka gives up on a record after
    // delivery.timeout.ms at the latest.
    for p in &producers {
        p.flush(k.delivery_timeout + Duration::from_secs(10)).context("flushing the producer")?;
    }
    let end = if plan.count.is_some() { Instant::now() } else { stopped };
    let mut last = metrics.collect_interval(Instant::now());
    last.consumer_lag = consumers.as_ref().and_then(KafkaConsumers::lag);
    writer.write_interval(&last)?;
    let consumer_summary = match (consumers.take(), &ledger) {
        (Some(side), Some(ledger)) => {
            let stats = Arc::clone(&side.stats);
            let quiet = k.consumers.as_ref().map_or(Duration::ZERO, |c| c.session_timeout) + Duration::from_secs(5);
            side.drain_and_stop(quiet)?;
            Some(stats.summary(ledger, stopped.saturating_duration_since(measure_start)))
        }
        _ => None,
    };
    let cpu = cpu_time().saturating_sub(cpu_start);
    let measured = metrics.finish(end);
    let files = writer.finish(&measured)?;
    let mut kafka = KafkaSummary {
        client: format!("librdkafka {}", rdkafka::util::get_rdkafka_version().1),
        bootstrap_servers: k.bootstrap.clone(),
        faults_applied,
        ..KafkaSummary::default()
    };
    errors.fill(&mut kafka);
    drop(producers);
    drop(mock);
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
        io_backend_effective: String::new(),
        consumers: consumer_summary,
        kafka: Some(kafka),
        replication: None,
    })
}

fn start_producers(
    plan: &CasePlan,
    k: &KafkaPlan,
    bootstrap: &str,
    metrics: &Arc<CaseMetrics>,
    phase: &Arc<Phase>,
    ledger: Option<&Arc<Ledger>>,
    errors: &Arc<ClientErrors>,
) -> anyhow::Result<Vec<Arc<KafkaProducer>>> {
    let count = if plan.shared_producer { 1 } else { plan.threads };
    (0..count)
        .map(|i| {
            let mut config = ClientConfig::new();
            for (key, value) in &k.properties.producer {
                config.set(key, value);
            }
            config.set("bootstrap.servers", bootstrap);
            if count > 1 {
                config.set("client.id", format!("{}-{i}", k.properties.producer["client.id"]));
            }
            let side = ProducerSide::new(Arc::clone(metrics), Arc::clone(phase), ledger.cloned(), Arc::clone(errors));
            config.create_with_context(side).map(Arc::new).context("creating a librdkafka producer")
        })
        .collect()
}
