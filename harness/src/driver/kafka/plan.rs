//! A case's librdkafka side, resolved from its workload: the cluster, the client properties, the
//! mock cluster's faults and the knobs kbench itself applies.

use std::time::Duration;

use super::config::{self, ClientProperties};
use super::consumer::ConsumersKnobs;
use super::mock::{self, Fault};
use super::secrets;
use crate::workload::{Case, EngineKind};

/// The librdkafka side of one case.
#[derive(Debug, Clone)]
pub(crate) struct KafkaPlan {
    /// `engine.bootstrap.servers`, `${NAME}` read from the environment.
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
        // Swept values name the cases (ids, terminal, report): a secret is never one of them, and
        // this error does not quote the case id.
        if let Some(key) = secrets::swept_secret(&case.params) {
            anyhow::bail!("sweep.{key}: a secret cannot be swept (swept values name the cases); set it once");
        }
        let fail = |key: &str, message: &str| anyhow::anyhow!("case {}: {key}: {message}", case.id);
        let written = w
            .engine
            .bootstrap_servers
            .clone()
            .ok_or_else(|| fail("engine.bootstrap.servers", "kind: kafka needs the cluster's address"))?;
        let bootstrap = secrets::expand_env(&written).map_err(|m| fail("engine.bootstrap.servers", &m))?;
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
