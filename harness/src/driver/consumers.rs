//! The consumer side of a case: one group of members reading the topic back while it is written,
//! `per-thread` or `worker-pool`, committing `auto`, `after-poll` or `after-processing`, with faults
//! (crash, remove, add a member) at set times, every processed record reported to the [`Ledger`].

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use kbench_engine::consumer::{AutoOffsetReset, Consumer, ConsumerConfig, ConsumerRecord, Coordinator};
use kbench_engine::log::TopicLog;

use super::ledger::{ID_HEADER, Ledger, RecordId};
use super::phase::Phase;
use crate::results::latency_summary;
use crate::results::schema::ConsumerSummary;
use crate::workload::{CommitMode, ConsumerStrategy, ConsumersSpec, FaultAction};

/// What the plan says about consumers.
#[derive(Debug, Clone)]
pub(crate) struct ConsumersPlan {
    pub members: u32,
    pub strategy: ConsumerStrategy,
    pub workers: u32,
    pub commit: CommitMode,
    pub config: ConsumerConfig,
    pub processing: Duration,
    pub faults: Vec<(Duration, FaultAction)>,
}

/// Measured-phase figures of the consumers.
pub(crate) struct ConsumerStats {
    pub processed: AtomicU64,
    pub latency: Mutex<Histogram<u64>>,
    pub max_pause_ns: AtomicU64,
    pub rebalances: AtomicU64,
}

impl ConsumerStats {
    /// The consumers' figures over a measured phase of `measured`, with the ledger's accounting.
    pub(crate) fn summary(&self, ledger: &Ledger, measured: Duration) -> ConsumerSummary {
        let a = ledger.accounting();
        let secs = measured.as_secs_f64().max(1e-9);
        let processed = self.processed.load(Ordering::Relaxed);
        let latency = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        ConsumerSummary {
            processed,
            processed_per_sec: processed as f64 / secs,
            end_to_end_ns: latency_summary(&latency),
            acknowledged: a.acknowledged,
            lost: a.lost,
            duplicated: a.duplicated,
            out_of_order: a.out_of_order,
            rebalances: self.rebalances.load(Ordering::Relaxed),
            max_rebalance_pause_ms: self.max_pause_ns.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

/// How a member thread must stop.
const RUN: usize = 0;
const STOP: usize = 1;
const CRASH: usize = 2;

struct Member {
    control: Arc<AtomicUsize>,
    handle: JoinHandle<anyhow::Result<()>>,
}

/// The running consumer side of a case.
pub(crate) struct ConsumerSide {
    plan: ConsumersPlan,
    log: Arc<TopicLog>,
    coordinator: Arc<Coordinator>,
    ledger: Arc<Ledger>,
    phase: Arc<Phase>,
    epoch: Instant,
    pub stats: Arc<ConsumerStats>,
    members: Vec<Member>,
    next_fault: usize,
}

fn busy_wait(d: Duration) {
    if d.is_zero() {
        return;
    }
    let until = Instant::now() + d;
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

impl ConsumerSide {
    pub(crate) fn start(
        plan: ConsumersPlan,
        log: Arc<TopicLog>,
        offsets_dir: &std::path::Path,
        ledger: Arc<Ledger>,
        phase: Arc<Phase>,
        epoch: Instant,
    ) -> anyhow::Result<ConsumerSide> {
        let coordinator = Coordinator::open(offsets_dir, log.partitions()).context("opening the group coordinator")?;
        let stats = Arc::new(ConsumerStats {
            processed: AtomicU64::new(0),
            latency: Mutex::new(Histogram::new_with_bounds(1, 3_600_000_000_000, 3).context("histogram")?),
            max_pause_ns: AtomicU64::new(0),
            rebalances: AtomicU64::new(0),
        });
        let mut side =
            ConsumerSide { plan, log, coordinator, ledger, phase, epoch, stats, members: Vec::new(), next_fault: 0 };
        for _ in 0..side.plan.members {
            side.add_member()?;
        }
        Ok(side)
    }

    fn add_member(&mut self) -> anyhow::Result<()> {
        let control = Arc::new(AtomicUsize::new(RUN));
        let n = self.members.len();
        let config = ConsumerConfig { client_id: format!("member-{n:03}"), ..self.plan.config.clone() };
        let consumer =
            Consumer::new(config, Arc::clone(&self.log), &self.coordinator).context("starting a consumer")?;
        let ctx = MemberContext {
            plan: self.plan.clone(),
            ledger: Arc::clone(&self.ledger),
            stats: Arc::clone(&self.stats),
            phase: Arc::clone(&self.phase),
            epoch: self.epoch,
            control: Arc::clone(&control),
        };
        let handle = std::thread::Builder::new()
            .name(format!("kbench-consumer-{n}"))
            .spawn(move || ctx.run(consumer))
            .context("spawning a consumer thread")?;
        self.members.push(Member { control, handle });
        Ok(())
    }

    /// Applies the faults due `since_measure` into the measured phase.
    pub(crate) fn apply_faults(&mut self, since_measure: Duration) -> anyhow::Result<()> {
        while let Some(&(at, action)) = self.plan.faults.get(self.next_fault) {
            if since_measure < at {
                break;
            }
            self.next_fault += 1;
            log::info!("consumer fault at {at:?}: {action:?}");
            match action {
                FaultAction::Add => self.add_member()?,
                FaultAction::Crash | FaultAction::Remove => {
                    let how = if action == FaultAction::Crash { CRASH } else { STOP };
                    if let Some(m) = self.members.iter().rev().find(|m| m.control.load(Ordering::Acquire) == RUN) {
                        m.control.store(how, Ordering::Release);
                    }
                }
            }
        }
        Ok(())
    }

    /// The group's lag: records between each partition's committed offset (or its start, before any
    /// commit) and its end, summed.
    pub(crate) fn lag(&self) -> u64 {
        let group = self.plan.config.group_id.as_deref().unwrap_or_default();
        (0..self.log.partitions())
            .map(|p| {
                let end = self.log.log_end_offset(p);
                let from = self.coordinator.committed(group, p).ok().flatten().unwrap_or(self.log.log_start_offset(p));
                (end - from).max(0) as u64
            })
            .sum()
    }

    /// After the producers stopped: lets the members read on until every acknowledged record was
    /// processed, or nothing moved for `quiet` (a crashed member's partitions come back only after
    /// session.timeout.ms), then stops them.
    pub(crate) fn drain_and_stop(self, quiet: Duration) -> anyhow::Result<()> {
        let mut last = (self.ledger.outstanding(), Instant::now());
        while self.ledger.outstanding() > 0 {
            std::thread::sleep(Duration::from_millis(20));
            let now = self.ledger.outstanding();
            if now != last.0 {
                last = (now, Instant::now());
            } else if last.1.elapsed() > quiet {
                log::warn!("consumers stopped with {now} acknowledged records unprocessed");
                break;
            }
        }
        for m in &self.members {
            let _ = m.control.compare_exchange(RUN, STOP, Ordering::AcqRel, Ordering::Acquire);
        }
        for m in self.members {
            m.handle.join().map_err(|_| anyhow::anyhow!("a consumer thread panicked"))??;
        }
        Ok(())
    }
}

#[derive(Clone)]
struct MemberContext {
    plan: ConsumersPlan,
    ledger: Arc<Ledger>,
    stats: Arc<ConsumerStats>,
    phase: Arc<Phase>,
    epoch: Instant,
    control: Arc<AtomicUsize>,
}

impl MemberContext {
    fn process(&self, r: &ConsumerRecord, hist: &mut Histogram<u64>) {
        busy_wait(self.plan.processing);
        let id = r.headers.iter().find(|(k, _)| k == ID_HEADER).and_then(|(_, v)| RecordId::decode(v.as_deref()?));
        let Some(id) = id else { return };
        self.ledger.processed(id, r.partition);
        let scheduled = self.epoch + Duration::from_nanos(id.scheduled_ns);
        if self.phase.is_measuring(scheduled) {
            self.stats.processed.fetch_add(1, Ordering::Relaxed);
            let _ = hist.record(scheduled.elapsed().as_nanos().max(1) as u64);
        }
    }

    fn run(self, mut consumer: Consumer) -> anyhow::Result<()> {
        let mut hist = Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3).context("histogram")?;
        let crashed = Arc::new(AtomicBool::new(false));
        let pool = (self.plan.strategy == ConsumerStrategy::WorkerPool).then(|| self.start_pool(&crashed));
        let mut rebalances = consumer.rebalances();
        let outcome = loop {
            match self.control.load(Ordering::Acquire) {
                RUN => {}
                CRASH => break Ok(true),
                _ => break Ok(false),
            }
            let polled_at = Instant::now();
            let records = match consumer.poll(Duration::from_millis(100)) {
                Ok(r) => r,
                Err(e) => break Err(anyhow::Error::new(e).context("consumer poll")),
            };
            if consumer.rebalances() != rebalances {
                rebalances = consumer.rebalances();
                self.stats.rebalances.fetch_add(1, Ordering::Relaxed);
                self.stats.max_pause_ns.fetch_max(polled_at.elapsed().as_nanos() as u64, Ordering::Relaxed);
            }
            if self.plan.commit == CommitMode::AfterPoll {
                commit(&mut consumer);
            }
            match &pool {
                None => {
                    for r in &records {
                        // A crash can come mid-poll: the rest of the poll is never processed.
                        if self.control.load(Ordering::Acquire) == CRASH {
                            break;
                        }
                        self.process(r, &mut hist);
                    }
                }
                Some((tx, pending, _)) => {
                    pending.fetch_add(records.len(), Ordering::AcqRel);
                    for r in records {
                        let _ = tx.send(r);
                    }
                    if self.plan.commit == CommitMode::AfterProcessing {
                        while pending.load(Ordering::Acquire) > 0 && self.control.load(Ordering::Acquire) == RUN {
                            std::thread::sleep(Duration::from_micros(50));
                        }
                    }
                }
            }
            // Only what was processed may be committed: not after a crash cut processing short.
            if self.plan.commit == CommitMode::AfterProcessing && self.control.load(Ordering::Acquire) != CRASH {
                commit(&mut consumer);
            }
        };
        let crash = matches!(outcome, Ok(true));
        crashed.store(crash, Ordering::Release);
        if let Some((tx, _, workers)) = pool {
            drop(tx);
            for w in workers {
                if let Ok(h) = w.join() {
                    self.merge(&h);
                }
            }
        }
        self.merge(&hist);
        if crash {
            consumer.abandon();
        } else if let Err(e) = consumer.close() {
            log::warn!("closing a consumer: {e}");
        }
        outcome.map(|_| ())
    }

    fn merge(&self, h: &Histogram<u64>) {
        let _ = self.stats.latency.lock().unwrap_or_else(|p| p.into_inner()).add(h);
    }

    #[allow(clippy::type_complexity)]
    fn start_pool(
        &self,
        crashed: &Arc<AtomicBool>,
    ) -> (crossbeam_channel::Sender<ConsumerRecord>, Arc<AtomicUsize>, Vec<JoinHandle<Histogram<u64>>>) {
        let (tx, rx) = crossbeam_channel::unbounded::<ConsumerRecord>();
        let pending = Arc::new(AtomicUsize::new(0));
        let workers = (0..self.plan.workers)
            .map(|_| {
                let rx = rx.clone();
                let pending = Arc::clone(&pending);
                let crashed = Arc::clone(crashed);
                let ctx = self.clone();
                std::thread::spawn(move || {
                    let mut hist = Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid bounds");
                    for r in rx {
                        // A crashed process's queued records are never processed.
                        if !crashed.load(Ordering::Acquire) && ctx.control.load(Ordering::Acquire) != CRASH {
                            ctx.process(&r, &mut hist);
                        }
                        pending.fetch_sub(1, Ordering::AcqRel);
                    }
                    hist
                })
            })
            .collect();
        (tx, pending, workers)
    }
}

fn commit(consumer: &mut Consumer) {
    match consumer.commit_sync() {
        Ok(()) | Err(kbench_engine::Error::CommitFailed { .. }) => {}
        Err(e) => log::warn!("commit: {e}"),
    }
}

/// The engine consumer settings a plan's members use.
pub(crate) fn consumer_config(spec: &ConsumersSpec) -> ConsumerConfig {
    use crate::workload::AssignmentSpec;
    use kbench_engine::consumer::AssignmentStrategy;
    ConsumerConfig {
        group_id: Some("kbench".into()),
        client_id: "member".into(),
        max_poll_records: spec.max_poll_records as usize,
        enable_auto_commit: spec.commit == CommitMode::Auto,
        auto_commit_interval: Duration::from_millis(spec.auto_commit_interval_ms),
        auto_offset_reset: AutoOffsetReset::Earliest,
        partition_assignment_strategy: match spec.partition_assignment_strategy {
            AssignmentSpec::Range => AssignmentStrategy::Range,
            AssignmentSpec::Roundrobin => AssignmentStrategy::RoundRobin,
        },
        session_timeout: Duration::from_millis(spec.session_timeout_ms),
        ..ConsumerConfig::default()
    }
}
