//! The consumer side on librdkafka: one consumer group of `consumers.members` members, each on its
//! own thread processing what it polls (per-thread), committing `auto`, `after-poll` or
//! `after-processing`, every processed record reported to the case's [`Ledger`] and its end-to-end
//! latency (scheduled send to end of processing) recorded as the embedded consumers do.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use rdkafka::consumer::{BaseConsumer, CommitMode as RdCommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};

use super::errors::{ClientErrors, Seen};
use crate::driver::consumers::ConsumerStats;
use crate::driver::ledger::{ID_HEADER, Ledger, RecordId};
use crate::driver::phase::Phase;
use crate::metrics::new_histogram;
use crate::workload::CommitMode;

/// What the consumers of a case do.
#[derive(Debug, Clone)]
pub(crate) struct ConsumersKnobs {
    pub members: u32,
    pub commit: CommitMode,
    /// Records handled per poll: a poll returns up to this many, as Java's max.poll.records.
    pub max_poll_records: u32,
    pub processing: Duration,
    pub session_timeout: Duration,
}

/// What a member's callbacks tell its thread and the case.
#[derive(Debug, Default)]
struct Flags {
    /// A rebalance assigned partitions since the thread last looked.
    rebalanced: AtomicBool,
    /// Partitions assigned by the latest rebalance.
    assigned: AtomicU64,
}

/// The callbacks of one member: rebalances and errors.
struct MemberSide {
    errors: Arc<ClientErrors>,
    phase: Arc<Phase>,
    flags: Arc<Flags>,
}

impl ClientContext for MemberSide {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        super::errors::forward_log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        log::info!("librdkafka consumer: {error}: {reason}");
        if self.phase.is_measuring(Instant::now()) {
            self.errors.count(Seen::Client, &error);
        }
    }
}

impl ConsumerContext for MemberSide {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            self.flags.assigned.store(tpl.count() as u64, Ordering::Release);
            self.flags.rebalanced.store(true, Ordering::Release);
        }
    }
}

/// The running group.
pub(crate) struct KafkaConsumers {
    ledger: Arc<Ledger>,
    pub stats: Arc<ConsumerStats>,
    stop: Arc<AtomicBool>,
    members: Vec<JoinHandle<anyhow::Result<()>>>,
    /// A client of the group that is no member: reads committed offsets and log ends for the lag.
    monitor: BaseConsumer,
    topic: String,
    partitions: u32,
}

fn config(properties: &BTreeMap<String, String>, bootstrap: &str, group: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    for (k, v) in properties {
        c.set(k, v);
    }
    c.set("bootstrap.servers", bootstrap).set("group.id", group);
    c
}

impl KafkaConsumers {
    /// Starts the group at the topic's current log end (records of earlier cases are not the
    /// case's) and waits until every partition is assigned.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start(
        knobs: ConsumersKnobs,
        properties: &BTreeMap<String, String>,
        bootstrap: &str,
        topic: &str,
        partitions: u32,
        group: &str,
        ledger: Arc<Ledger>,
        phase: Arc<Phase>,
        epoch: Instant,
        errors: &Arc<ClientErrors>,
    ) -> anyhow::Result<KafkaConsumers> {
        let timeout = Duration::from_secs(10);
        let monitor: BaseConsumer =
            config(properties, bootstrap, group).create().context("creating a Kafka consumer")?;
        let mut start = TopicPartitionList::new();
        for p in 0..partitions as i32 {
            let (_, high) = monitor
                .fetch_watermarks(topic, p, timeout)
                .with_context(|| format!("reading the log end of {topic}-{p}"))?;
            start.add_partition_offset(topic, p, Offset::Offset(high)).context("start offsets")?;
        }
        monitor.commit(&start, RdCommitMode::Sync).context("committing the group's start offsets")?;
        let stats = Arc::new(ConsumerStats {
            processed: AtomicU64::new(0),
            latency: Mutex::new(new_histogram()),
            max_pause_ns: AtomicU64::new(0),
            rebalances: AtomicU64::new(0),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let mut sides = Vec::new();
        let mut members = Vec::new();
        for n in 0..knobs.members {
            let flags = Arc::new(Flags::default());
            let side = MemberSide { errors: Arc::clone(errors), phase: Arc::clone(&phase), flags: Arc::clone(&flags) };
            let mut c = config(properties, bootstrap, group);
            c.set("client.id", format!("kbench-member-{n:03}"));
            let consumer: BaseConsumer<MemberSide> =
                c.create_with_context(side).context("creating a Kafka consumer")?;
            consumer.subscribe(&[topic]).with_context(|| format!("subscribing to {topic}"))?;
            let member = Member {
                knobs: knobs.clone(),
                ledger: Arc::clone(&ledger),
                stats: Arc::clone(&stats),
                phase: Arc::clone(&phase),
                errors: Arc::clone(errors),
                epoch,
                stop: Arc::clone(&stop),
                flags: Arc::clone(&flags),
            };
            sides.push(flags);
            members.push(
                std::thread::Builder::new()
                    .name(format!("kbench-kafka-consumer-{n}"))
                    .spawn(move || member.run(consumer))
                    .context("spawning a consumer thread")?,
            );
        }
        let group_ready = Instant::now() + knobs.session_timeout + Duration::from_secs(30);
        while sides.iter().map(|s| s.assigned.load(Ordering::Acquire)).sum::<u64>() < u64::from(partitions) {
            if Instant::now() > group_ready || members.iter().any(JoinHandle::is_finished) {
                stop.store(true, Ordering::Release);
                for m in members {
                    m.join().map_err(|_| anyhow::anyhow!("a consumer thread panicked"))??;
                }
                anyhow::bail!("the consumer group {group} did not get every partition of {topic} assigned");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(KafkaConsumers { ledger, stats, stop, members, monitor, topic: topic.to_string(), partitions })
    }

    /// The group's lag: log end minus committed offset, summed over partitions (`None` when the
    /// cluster does not answer quickly).
    pub(crate) fn lag(&self) -> Option<u64> {
        let timeout = Duration::from_millis(300);
        let mut tpl = TopicPartitionList::new();
        for p in 0..self.partitions as i32 {
            tpl.add_partition(&self.topic, p);
        }
        let committed = self.monitor.committed_offsets(tpl, timeout).ok()?;
        let mut lag = 0u64;
        for e in committed.elements() {
            let (_, high) = self.monitor.fetch_watermarks(&self.topic, e.partition(), timeout).ok()?;
            let from = match e.offset() {
                Offset::Offset(o) => o,
                _ => 0,
            };
            lag += (high - from).max(0) as u64;
        }
        Some(lag)
    }

    /// After the producers stopped: lets the members read on until every acknowledged record was
    /// processed, or nothing moved for `quiet`, then stops them.
    pub(crate) fn drain_and_stop(self, quiet: Duration) -> anyhow::Result<()> {
        let mut last = (self.ledger.outstanding(), Instant::now());
        while self.ledger.outstanding() > 0 && !self.members.iter().any(JoinHandle::is_finished) {
            std::thread::sleep(Duration::from_millis(20));
            let now = self.ledger.outstanding();
            if now != last.0 {
                last = (now, Instant::now());
            } else if last.1.elapsed() > quiet {
                log::warn!("consumers stopped with {now} acknowledged records unprocessed");
                break;
            }
        }
        self.stop.store(true, Ordering::Release);
        for m in self.members {
            m.join().map_err(|_| anyhow::anyhow!("a consumer thread panicked"))??;
        }
        Ok(())
    }
}

struct Member {
    knobs: ConsumersKnobs,
    ledger: Arc<Ledger>,
    stats: Arc<ConsumerStats>,
    phase: Arc<Phase>,
    errors: Arc<ClientErrors>,
    epoch: Instant,
    stop: Arc<AtomicBool>,
    flags: Arc<Flags>,
}

impl Member {
    fn run(self, consumer: BaseConsumer<MemberSide>) -> anyhow::Result<()> {
        let mut hist = new_histogram();
        while !self.stop.load(Ordering::Acquire) {
            let polled_at = Instant::now();
            let mut batch = Vec::new();
            let mut wait = Duration::from_millis(100);
            while batch.len() < self.knobs.max_poll_records as usize {
                match consumer.poll(wait) {
                    Some(Ok(m)) => batch.push(m),
                    Some(Err(e)) => {
                        if self.phase.is_measuring(Instant::now()) {
                            self.errors.count(Seen::Consumer, &e);
                        }
                        break;
                    }
                    None => break,
                }
                wait = Duration::ZERO;
            }
            if self.flags.rebalanced.swap(false, Ordering::AcqRel) {
                self.stats.rebalances.fetch_add(1, Ordering::Relaxed);
                self.stats.max_pause_ns.fetch_max(polled_at.elapsed().as_nanos() as u64, Ordering::Relaxed);
            }
            if batch.is_empty() {
                continue;
            }
            if self.knobs.commit == CommitMode::AfterPoll {
                self.commit(&consumer);
            }
            for m in &batch {
                self.process(m, &mut hist);
            }
            drop(batch);
            if self.knobs.commit == CommitMode::AfterProcessing {
                self.commit(&consumer);
            }
        }
        let _ = self.stats.latency.lock().unwrap_or_else(|p| p.into_inner()).add(&hist);
        Ok(())
    }

    fn commit(&self, consumer: &BaseConsumer<MemberSide>) {
        if let Err(e) = consumer.commit_consumer_state(RdCommitMode::Sync) {
            log::info!("commit: {e}");
            if self.phase.is_measuring(Instant::now()) {
                self.errors.count(Seen::Consumer, &e);
            }
        }
    }

    fn process(&self, m: &BorrowedMessage<'_>, hist: &mut Histogram<u64>) {
        if !self.knobs.processing.is_zero() {
            let until = Instant::now() + self.knobs.processing;
            while Instant::now() < until {
                std::hint::spin_loop();
            }
        }
        let id =
            m.headers().and_then(|h| h.iter().find(|h| h.key == ID_HEADER).and_then(|h| RecordId::decode(h.value?)));
        let Some(id) = id else { return };
        self.ledger.processed(id, u32::try_from(m.partition()).unwrap_or_default());
        let scheduled = self.epoch + Duration::from_nanos(id.scheduled_ns);
        if self.phase.is_measuring(scheduled) {
            self.stats.processed.fetch_add(1, Ordering::Relaxed);
            let _ = hist.record(scheduled.elapsed().as_nanos().max(1) as u64);
        }
    }
}
