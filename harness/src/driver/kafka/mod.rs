//! `engine.kind: kafka`: the same workloads against a Kafka cluster through librdkafka (the rdkafka
//! crate with its bundled librdkafka), built with `--features kafka`.
//!
//! [`config`] maps workload keys to librdkafka properties and refuses those without a meaning there;
//! [`producer`] is the per-thread sender and the delivery callback; [`consumer`] reads the topic back in a consumer group for end-to-end latency and the
//! delivery accounting; [`mock`] runs librdkafka's in-process mock cluster (`bootstrap.servers:
//! mock:N`) and its faults; [`topic`] creates the topic on a real cluster; [`backend`] puts them behind the
//! backend trait, so a case runs in the same loop, with the same histograms and results, as on the
//! embedded engine. docs/KAFKA.md says what
//! compares with the embedded engine and what does not.

mod backend;
mod config;
mod consumer;
mod errors;
mod mock;
mod producer;
mod topic;

use std::time::Duration;

pub(crate) use backend::Kafka;
use config::ClientProperties;
use consumer::ConsumersKnobs;
use mock::Fault;

use crate::workload::{Case, EngineKind};

/// The librdkafka side of one case.
#[derive(Debug, Clone)]
pub(crate) struct KafkaPlan {
    /// `engine.bootstrap.servers` as written.
    pub bootstrap: String,
    /// `Some(n)` for `bootstrap.servers: mock:n`.
    pub mock_brokers: Option<i32>,
    pub properties: ClientProperties,
    pub faults: Vec<Fault>,
    /// `producer.max.block.ms`.
    pub max_block: Duration,
    /// `producer.delivery.timeout.ms`.
    pub delivery_timeout: Duration,
    pub consumers: Option<ConsumersKnobs>,
}

impl KafkaPlan {
    /// The case's librdkafka side; `None` for the embedded engine. Errors name the workload key.
    pub(crate) fn from_case(case: &Case) -> anyhow::Result<Option<KafkaPlan>> {
        let w = &case.workload;
        if w.engine.kind != EngineKind::Kafka {
            return Ok(None);
        }
        let fail = |key: &str, message: &str| anyhow::anyhow!("case {}: {key}: {message}", case.id);
        let bootstrap = w
            .engine
            .bootstrap_servers
            .clone()
            .ok_or_else(|| fail("engine.bootstrap.servers", "kind: kafka needs the cluster's address"))?;
        let mock_brokers = crate::workload::kafka::mock_brokers(&bootstrap)
            .transpose()
            .map_err(|m| fail("engine.bootstrap.servers", &m))?;
        let properties = config::map(w, mock_brokers.is_some()).map_err(|e| fail(&e.key, &e.message))?;
        let faults = mock::resolve(&w.engine.mock_faults).map_err(|(key, m)| fail(&key, &m))?;
        Ok(Some(KafkaPlan {
            bootstrap,
            mock_brokers,
            properties,
            faults,
            max_block: Duration::from_millis(w.producer.max_block_ms),
            delivery_timeout: Duration::from_millis(w.producer.delivery_timeout_ms),
            consumers: w.consumers.as_ref().map(|c| ConsumersKnobs {
                members: c.members,
                commit: c.commit,
                max_poll_records: c.max_poll_records,
                processing: c.processing.0,
                session_timeout: Duration::from_millis(c.session_timeout_ms),
            }),
        }))
    }
}
