//! A Kafka cluster through librdkafka as a [`Backend`]: the cluster (a mock cluster started for
//! the case, or the topic checked or created on a real one), the consumer group when there is one,
//! the producers; the mock cluster's faults as they fall due; at the end every record's delivery
//! report and the client's errors.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rdkafka::ClientConfig;
use rdkafka::producer::Producer;

use super::KafkaPlan;
use super::consumer::KafkaConsumers;
use super::errors::ClientErrors;
use super::mock::{Fault, Mock};
use super::producer::{KafkaProducer, KafkaSender, Poller, ProducerSide};
use crate::driver::backend::{Backend, BackendReport, Shared};
use crate::driver::plan::CasePlan;
use crate::results::schema::KafkaSummary;

/// One case on a Kafka cluster.
pub(crate) struct Kafka {
    plan: CasePlan,
    k: KafkaPlan,
    errors: Arc<ClientErrors>,
    consumers: Option<KafkaConsumers>,
    /// Open loop or sync sends: a polling thread per producer (dropped, so stopped, first).
    _pollers: Vec<Poller>,
    /// Closed loop with async sends: the sending threads poll.
    senders_poll: bool,
    producers: Vec<Arc<KafkaProducer>>,
    faults: std::vec::IntoIter<Fault>,
    next_fault: Option<Fault>,
    faults_applied: Vec<String>,
    /// Declared last, dropped last: every client is gone before the mock cluster stops.
    mock: Option<Mock>,
}

impl Kafka {
    /// Reaches the cluster `k` names (or starts the mock), starts the consumer group and the
    /// producers.
    pub(crate) fn open(plan: &CasePlan, k: &KafkaPlan, shared: &Shared) -> anyhow::Result<Self> {
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
        let errors = Arc::new(ClientErrors::default());
        let group = format!("kbench-{}-{}", plan.id, jiff::Timestamp::now().as_millisecond());
        let consumers = match (&k.consumers, &shared.ledger) {
            (Some(c), Some(l)) => Some(KafkaConsumers::start(
                c.clone(),
                &k.properties.consumer,
                &bootstrap,
                &plan.topic,
                plan.partitions,
                &group,
                Arc::clone(l),
                Arc::clone(&shared.phase),
                shared.epoch,
                &errors,
            )?),
            _ => None,
        };
        let count = if plan.shared_producer { 1 } else { plan.threads };
        let producers = (0..count)
            .map(|i| {
                let mut config = ClientConfig::new();
                for (key, value) in &k.properties.producer {
                    config.set(key, value);
                }
                config.set("bootstrap.servers", &bootstrap);
                if count > 1 {
                    config.set("client.id", format!("{}-{i}", k.properties.producer["client.id"]));
                }
                let side = ProducerSide::new(Arc::clone(&shared.phase), Arc::clone(&errors), plan.threads);
                config.create_with_context(side).map(Arc::new).context("creating a librdkafka producer")
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        // A sending thread that sleeps until its next record is due (open loop), or blocks on each
        // record's outcome (sync), cannot also be the one that takes delivery reports as they come.
        let senders_poll = plan.rate == 0.0 && !plan.sync;
        let pollers = if senders_poll {
            Vec::new()
        } else {
            producers
                .iter()
                .map(|p| Poller::start(Arc::clone(p)).context("starting the librdkafka polling thread"))
                .collect::<anyhow::Result<Vec<_>>>()?
        };
        let mut faults = k.faults.clone().into_iter();
        let next_fault = faults.next();
        Ok(Kafka {
            plan: plan.clone(),
            k: k.clone(),
            errors,
            consumers,
            _pollers: pollers,
            senders_poll,
            producers,
            faults,
            next_fault,
            faults_applied: Vec::new(),
            mock,
        })
    }
}

impl Backend for Kafka {
    type Sender = KafkaSender;

    fn tracks_records(plan: &CasePlan) -> bool {
        plan.kafka.as_ref().is_some_and(|k| k.consumers.is_some())
    }

    fn sender(&mut self, thread: u32, shared: &Shared) -> anyhow::Result<KafkaSender> {
        Ok(KafkaSender::new(
            Arc::clone(&self.producers[thread as usize % self.producers.len()]),
            thread,
            self.plan.topic.clone(),
            Arc::clone(&self.errors),
            Arc::clone(&shared.stop),
            self.k.max_block,
            self.senders_poll,
        ))
    }

    fn start_measuring(&mut self) {
        self.errors.start_measuring();
    }

    fn tick(&mut self, since: Duration) -> anyhow::Result<Option<Duration>> {
        while let (Some(m), Some(f)) = (self.mock.as_ref(), self.next_fault.as_ref()) {
            if since < f.at {
                break;
            }
            m.apply(f)?;
            self.faults_applied.push(f.to_string());
            self.next_fault = self.faults.next();
        }
        Ok(self.next_fault.as_ref().map(|f| f.at))
    }

    fn consumer_lag(&self) -> Option<u64> {
        self.consumers.as_ref().and_then(KafkaConsumers::lag)
    }

    fn stop_producing(&mut self) -> anyhow::Result<()> {
        // Every record sent gets its delivery report: librdkafka gives up on a record after
        // delivery.timeout.ms at the latest.
        for p in &self.producers {
            p.flush(self.k.delivery_timeout + Duration::from_secs(10)).context("flushing the producer")?;
        }
        Ok(())
    }

    fn finish(mut self, shared: &Shared, measured: Duration) -> anyhow::Result<BackendReport> {
        let consumers = match (self.consumers.take(), &shared.ledger) {
            (Some(side), Some(ledger)) => {
                let stats = Arc::clone(&side.stats);
                let quiet =
                    self.k.consumers.as_ref().map_or(Duration::ZERO, |c| c.session_timeout) + Duration::from_secs(5);
                side.drain_and_stop(quiet)?;
                Some(stats.summary(ledger, measured))
            }
            _ => None,
        };
        let mut kafka = KafkaSummary {
            client: format!("librdkafka {}", rdkafka::util::get_rdkafka_version().1),
            bootstrap_servers: self.k.bootstrap.clone(),
            faults_applied: std::mem::take(&mut self.faults_applied),
            ..KafkaSummary::default()
        };
        self.errors.fill(&mut kafka);
        drop(self.producers);
        drop(self.mock);
        Ok(BackendReport { io_backend_effective: String::new(), consumers, kafka: Some(kafka), replication: None })
    }
}
