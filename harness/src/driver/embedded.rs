//! The embedded engine as a [`Backend`]: the case's topic log under the data directory, its
//! producers (one shared or one per thread), the batch observer, consumers reading the log back,
//! broker faults (replica and disk faults); at the end the faults are healed, the replicas converge
//! and acknowledged records are audited against the log, in all and per fault.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use kbench_engine::log::TopicLog;
use kbench_engine::producer::BatchObserver;
use kbench_engine::producer::{DeliveryFuture, Producer, ProducerRecord};

use super::audit;
use super::backend::{Backend, BackendReport, Delivery, Outgoing, SendFailed, Sender, Shared, Token};
use super::consumers::ConsumerSide;
use super::ledger::Ledger;
use super::observer::StageObserver;
use super::plan::CasePlan;
use super::replica_faults::FaultRunner;
use crate::results::schema::ReplicationSummary;

/// How long a replicated case waits, after its faults are healed, for every replica to catch up.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(30);

/// One case on the embedded engine.
pub(crate) struct Embedded {
    plan: CasePlan,
    data_dir: PathBuf,
    keep_data: bool,
    log: Arc<TopicLog>,
    observer: Arc<StageObserver>,
    producers: Vec<Producer>,
    faults: FaultRunner,
    /// The delivery ledger (consumers, replication or faults): faults snapshot it when they start.
    ledger: Option<Arc<Ledger>>,
    consumers: Option<ConsumerSide>,
    converged: bool,
}

impl Embedded {
    /// Whether the case ends with an audit: replicated, or with broker faults.
    fn audited(plan: &CasePlan) -> bool {
        plan.log.replication_factor > 1 || !plan.replica_faults.is_empty()
    }
}

impl Embedded {
    /// Opens the log under `data_root/<case id>/`, starts the producers and the consumers.
    pub(crate) fn open(plan: &CasePlan, data_root: &Path, keep_data: bool, shared: &Shared) -> anyhow::Result<Self> {
        let data_dir = data_root.join(&plan.id);
        let log = Arc::new(
            TopicLog::open(&data_dir, &plan.topic, plan.partitions, plan.log.clone())
                .with_context(|| format!("opening the log under {}", data_dir.display()))?,
        );
        let observer = Arc::new(StageObserver::new(Arc::clone(&shared.metrics), Arc::clone(&shared.phase)));
        let as_observer: Arc<dyn BatchObserver> = Arc::clone(&observer) as Arc<dyn BatchObserver>;
        let count = if plan.shared_producer { 1 } else { plan.threads };
        let producers = (0..count)
            .map(|_| {
                Producer::new(plan.producer.clone(), Arc::clone(&log), Some(Arc::clone(&as_observer)))
                    .context("starting the producer")
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let consumers = match (&plan.consumers, &shared.ledger) {
            (Some(c), Some(l)) => Some(ConsumerSide::start(
                c.clone(),
                Arc::clone(&log),
                &data_dir.join("__consumer_offsets"),
                Arc::clone(l),
                Arc::clone(&shared.phase),
                shared.epoch,
            )?),
            _ => None,
        };
        Ok(Embedded {
            plan: plan.clone(),
            data_dir,
            keep_data,
            log,
            observer,
            producers,
            faults: FaultRunner::new(plan.replica_faults.clone(), plan.seed),
            ledger: shared.ledger.clone(),
            consumers,
            converged: true,
        })
    }
}

impl Backend for Embedded {
    type Sender = EmbeddedSender;

    fn tracks_records(plan: &CasePlan) -> bool {
        plan.consumers.is_some() || Self::audited(plan)
    }

    fn sender(&mut self, thread: u32, _shared: &Shared) -> anyhow::Result<EmbeddedSender> {
        let producer = self.producers[thread as usize % self.producers.len()].clone();
        Ok(EmbeddedSender { producer, in_flight: VecDeque::new() })
    }

    fn tick(&mut self, since: Duration) -> anyhow::Result<Option<Duration>> {
        if let Some(side) = self.consumers.as_mut() {
            side.apply_faults(since)?;
        }
        self.faults.apply(since, &self.log, self.ledger.as_deref())?;
        Ok(None)
    }

    fn consumer_lag(&self) -> Option<u64> {
        self.consumers.as_ref().map(ConsumerSide::lag)
    }

    fn stop_producing(&mut self) -> anyhow::Result<()> {
        for p in &self.producers {
            p.close().context("closing the producer")?;
        }
        self.observer.hand_over();
        Ok(())
    }

    fn finish(mut self, shared: &Shared, measured: Duration) -> anyhow::Result<BackendReport> {
        // After the measured phase: faults end so that consumers can finish and the replicas
        // converge before the audit (neither counts in the phase's duration or CPU).
        if Self::audited(&self.plan) {
            self.faults.heal(&self.log, self.plan.log.io == kbench_engine::io::IoBackendKind::Sim)?;
            self.converged = audit::converge(&self.log, CONVERGE_TIMEOUT)?;
        }
        let consumers = match (self.consumers.take(), &shared.ledger, &self.plan.consumers) {
            (Some(side), Some(ledger), Some(cp)) => {
                let stats = Arc::clone(&side.stats);
                side.drain_and_stop(cp.config.session_timeout + Duration::from_secs(5))?;
                Some(stats.summary(ledger, measured))
            }
            _ => None,
        };
        let replication = match (&shared.ledger, Self::audited(&self.plan)) {
            (Some(ledger), true) => {
                let (lost_acknowledged, fault_losses) =
                    audit::missing_acknowledged(&self.log, ledger, &self.faults.started)?;
                // Each started fault's line says what it cost, where the faults are listed.
                let faults = std::mem::take(&mut self.faults.applied)
                    .into_iter()
                    .map(|line| match fault_losses.iter().find(|f| f.fault == line) {
                        Some(f) => format!(
                            "{line} (lost {} of {} acknowledged by then)",
                            f.lost_acknowledged, f.acknowledged_before
                        ),
                        None => line,
                    })
                    .collect();
                Some(ReplicationSummary {
                    replication_factor: self.plan.log.replication_factor,
                    min_insync_replicas: self.plan.log.min_insync_replicas,
                    acknowledged: ledger.accounting().acknowledged,
                    lost_acknowledged,
                    elections: (0..self.log.partitions())
                        .filter_map(|p| self.log.replica_status(p).ok().flatten())
                        .map(|s| s.leader_epoch.max(0) as u32)
                        .max()
                        .unwrap_or(0),
                    converged: self.converged,
                    faults,
                    fault_losses,
                })
            }
            _ => None,
        };
        let io_backend_effective = self.log.io_backend().to_string();
        drop(self.producers);
        self.log.close().with_context(|| format!("closing the log under {}", self.data_dir.display()))?;
        if !self.keep_data {
            // Cases can write gigabytes; a temporary data directory is emptied case by case.
            remove_data_dir(&self.data_dir).with_context(|| format!("removing {}", self.data_dir.display()))?;
        }
        Ok(BackendReport { io_backend_effective, consumers, kafka: None, replication })
    }
}

/// Threads removing a case's data directory side by side.
const REMOVERS: usize = 8;

/// Removes `dir` (a case's data: one directory per partition and replica) with [`REMOVERS`] threads,
/// each taking whole partition directories. Unlinking waits on the filesystem's journal (and, on a
/// disk mounted with `discard`, on trimming the freed blocks), not on the CPU: one thread removed
/// 5,000 directories holding a small file each in 18 s on this project's host, eight in 2.1 s.
fn remove_data_dir(dir: &Path) -> std::io::Result<()> {
    let children = |d: &Path| -> std::io::Result<Vec<(PathBuf, bool)>> {
        std::fs::read_dir(d)?.map(|e| e.and_then(|e| Ok((e.path(), e.file_type()?.is_dir())))).collect()
    };
    // The units of work: the partition directories, found under `broker-<id>/` with replication.
    let mut units = children(dir)?;
    while units.len() < REMOVERS * 8 && units.iter().any(|(_, is_dir)| *is_dir) {
        let mut next = Vec::new();
        for (path, is_dir) in units {
            if is_dir {
                next.extend(children(&path)?);
            } else {
                next.push((path, false));
            }
        }
        units = next;
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let first_error = std::sync::Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..REMOVERS.min(units.len()) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((path, is_dir)) = units.get(i) else { break };
                    let removed = if *is_dir { std::fs::remove_dir_all(path) } else { std::fs::remove_file(path) };
                    if let Err(e) = removed {
                        first_error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    // What is left: the emptied directories above the units.
    std::fs::remove_dir_all(dir)
}

/// A producer thread's handle: the futures of its sends, oldest first.
pub(crate) struct EmbeddedSender {
    producer: Producer,
    in_flight: VecDeque<(DeliveryFuture, Token)>,
}

impl Sender for EmbeddedSender {
    #[inline]
    fn send(&mut self, record: &Outgoing<'_>, token: Token) -> Result<(), SendFailed> {
        let r = ProducerRecord {
            key: record.key,
            value: Some(record.value),
            headers: record.headers,
            ..ProducerRecord::default()
        };
        match self.producer.send(&r) {
            Ok(future) => {
                self.in_flight.push_back((future, token));
                Ok(())
            }
            Err(e) => Err(SendFailed { closed: matches!(e, kbench_engine::Error::Closed { .. }) }),
        }
    }

    #[inline]
    fn poll(&mut self, wait: bool, done: &mut dyn FnMut(Delivery)) -> usize {
        let mut n = 0;
        while let Some((head, _)) = self.in_flight.front() {
            let (ok, completed_at) = match head.peek() {
                Some(outcome) => outcome,
                None if !wait || n > 0 => break,
                None => {
                    // Every send is answered: by its batch's completion, or the producer's close.
                    while head.get_timeout(Duration::from_secs(1)).is_none() {}
                    continue;
                }
            };
            let (_, token) = self.in_flight.pop_front().expect("front exists");
            done(Delivery { token, ok, completed_at });
            n += 1;
        }
        n
    }

    fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}
