//! librdkafka's in-process mock cluster (`bootstrap.servers: mock:N`) and the faults a workload
//! injects into it (`engine.mock_faults`): brokers going down and up, requests answered with errors,
//! added round-trip time.

use std::time::Duration;

use anyhow::Context;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::types::{RDKafkaApiKey, RDKafkaErrorCode, RDKafkaRespErr};

use crate::workload::kafka::{MockFaultAction, MockFaultSpec};

/// A fault resolved against librdkafka's names, due `at` into the measured phase.
#[derive(Debug, Clone)]
pub(crate) struct Fault {
    pub at: Duration,
    pub what: FaultKind,
}

/// What a fault does to the mock cluster.
#[derive(Debug, Clone)]
pub(crate) enum FaultKind {
    BrokerDown(i32),
    BrokerUp(i32),
    RequestErrors { request: RDKafkaApiKey, error: RDKafkaRespErr, count: u32 },
    Rtt(i32, Duration),
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "at {:?}: ", self.at)?;
        match &self.what {
            FaultKind::BrokerDown(b) => write!(f, "broker {b} down"),
            FaultKind::BrokerUp(b) => write!(f, "broker {b} up"),
            FaultKind::RequestErrors { request, error, count } => {
                write!(f, "{count} {request:?} request(s) fail with {:?}", RDKafkaErrorCode::from(*error))
            }
            FaultKind::Rtt(b, d) => write!(f, "broker {b} round trip {d:?}"),
        }
    }
}

/// Request kinds a fault can target, by the names workloads use.
const REQUESTS: &[(&str, RDKafkaApiKey)] = &[
    ("produce", RDKafkaApiKey::Produce),
    ("fetch", RDKafkaApiKey::Fetch),
    ("list-offsets", RDKafkaApiKey::ListOffsets),
    ("metadata", RDKafkaApiKey::Metadata),
    ("offset-commit", RDKafkaApiKey::OffsetCommit),
    ("offset-fetch", RDKafkaApiKey::OffsetFetch),
    ("find-coordinator", RDKafkaApiKey::FindCoordinator),
    ("join-group", RDKafkaApiKey::JoinGroup),
    ("heartbeat", RDKafkaApiKey::Heartbeat),
    ("sync-group", RDKafkaApiKey::SyncGroup),
    ("init-producer-id", RDKafkaApiKey::InitProducerId),
];

/// Kafka's current protocol names where librdkafka still uses the older one, and librdkafka's
/// C name of the local error that makes a mock broker drop the connection.
const KAFKA_NAMES: &[(&str, i32)] = &[
    ("NOT_LEADER_OR_FOLLOWER", 6),
    ("MESSAGE_TOO_LARGE", 10),
    ("CORRUPT_MESSAGE", 2),
    ("RECORD_LIST_TOO_LARGE", 18),
    ("_TRANSPORT", -195),
];

fn squash(name: &str) -> String {
    name.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect()
}

/// An error code from a number or a name (Kafka's `NOT_ENOUGH_REPLICAS`, librdkafka's
/// `NotEnoughReplicas`, or a local error such as `_TRANSPORT`).
pub(crate) fn error_code(v: &serde_json::Value) -> Result<RDKafkaRespErr, String> {
    let code = match v {
        serde_json::Value::Number(n) => n.as_i64().and_then(|n| i32::try_from(n).ok()),
        serde_json::Value::String(s) => {
            let wanted = squash(s);
            KAFKA_NAMES.iter().find(|(n, _)| squash(n) == wanted).map(|(_, c)| *c).or_else(|| {
                (-200..200).find(|c| {
                    RDKafkaRespErr::try_from(*c)
                        .is_ok_and(|e| squash(&format!("{:?}", RDKafkaErrorCode::from(e))) == wanted)
                })
            })
        }
        _ => None,
    };
    code.and_then(|c| RDKafkaRespErr::try_from(c).ok())
        .ok_or_else(|| format!("`{v}` is no Kafka error (write a name such as NOT_LEADER_OR_FOLLOWER, or its number)"))
}

/// Resolves the workload's faults, in time order; errors name the fault.
pub(crate) fn resolve(specs: &[MockFaultSpec]) -> Result<Vec<Fault>, (String, String)> {
    let mut faults = Vec::with_capacity(specs.len());
    for (i, f) in specs.iter().enumerate() {
        let place = |key: &str| format!("engine.mock_faults[{i}].{key}");
        let broker = f.broker.unwrap_or(0);
        let what = match f.action {
            MockFaultAction::BrokerDown => FaultKind::BrokerDown(broker),
            MockFaultAction::BrokerUp => FaultKind::BrokerUp(broker),
            MockFaultAction::Rtt => FaultKind::Rtt(broker, f.delay.map(|d| d.0).unwrap_or_default()),
            MockFaultAction::RequestErrors => {
                let name = f.request.as_deref().unwrap_or_default();
                let request =
                    REQUESTS.iter().find(|(n, _)| squash(n) == squash(name)).map(|(_, k)| *k).ok_or_else(|| {
                        let known: Vec<&str> = REQUESTS.iter().map(|(n, _)| *n).collect();
                        (place("request"), format!("`{name}` is not one of {}", known.join(", ")))
                    })?;
                let error = error_code(f.error.as_ref().unwrap_or(&serde_json::Value::Null))
                    .map_err(|m| (place("error"), m))?;
                FaultKind::RequestErrors { request, error, count: f.count.unwrap_or(1) }
            }
        };
        faults.push(Fault { at: f.at.0, what });
    }
    faults.sort_by_key(|f| f.at);
    Ok(faults)
}

/// A running mock cluster with the case's topic.
pub(crate) struct Mock {
    cluster: MockCluster<'static, DefaultProducerContext>,
}

impl std::fmt::Debug for Mock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mock").field("bootstrap", &self.cluster.bootstrap_servers()).finish()
    }
}

impl Mock {
    /// Starts `brokers` brokers with `topic` of `partitions` partitions, replicated on up to 3 of them.
    pub(crate) fn start(brokers: i32, topic: &str, partitions: u32) -> anyhow::Result<Mock> {
        let cluster = MockCluster::new(brokers).context("starting librdkafka's mock cluster")?;
        let partitions = i32::try_from(partitions).context("topic.partitions")?;
        cluster
            .create_topic(topic, partitions, brokers.min(3))
            .with_context(|| format!("creating topic {topic} on the mock cluster"))?;
        Ok(Mock { cluster })
    }

    pub(crate) fn bootstrap_servers(&self) -> String {
        self.cluster.bootstrap_servers()
    }

    /// Applies one fault.
    pub(crate) fn apply(&self, fault: &Fault) -> anyhow::Result<()> {
        log::info!("mock cluster fault {fault}");
        match &fault.what {
            FaultKind::BrokerDown(b) => self.cluster.broker_down(*b),
            FaultKind::BrokerUp(b) => self.cluster.broker_up(*b),
            FaultKind::Rtt(b, d) => self.cluster.broker_round_trip_time(*b, *d),
            FaultKind::RequestErrors { request, error, count } => {
                self.cluster.request_errors(*request, &vec![*error; *count as usize]);
                Ok(())
            }
        }
        .with_context(|| format!("applying mock cluster fault {fault}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_and_numbers_resolve() {
        let by = |v: serde_json::Value| error_code(&v).map(RDKafkaErrorCode::from);
        assert_eq!(by(serde_json::json!("NOT_LEADER_OR_FOLLOWER")), Ok(RDKafkaErrorCode::NotLeaderForPartition));
        assert_eq!(by(serde_json::json!("NotEnoughReplicas")), Ok(RDKafkaErrorCode::NotEnoughReplicas));
        assert_eq!(by(serde_json::json!("MESSAGE_TOO_LARGE")), Ok(RDKafkaErrorCode::MessageSizeTooLarge));
        assert_eq!(by(serde_json::json!(87)), Ok(RDKafkaErrorCode::InvalidRecord));
        assert_eq!(by(serde_json::json!("_TRANSPORT")), Ok(RDKafkaErrorCode::BrokerTransportFailure));
        assert!(by(serde_json::json!("NO_SUCH_ERROR")).is_err());
    }

    #[test]
    fn faults_resolve_in_time_order_and_name_bad_keys() {
        let specs: Vec<MockFaultSpec> = serde_json::from_value(serde_json::json!([
            {"at": "2s", "action": "broker-up", "broker": 1},
            {"at": "1s", "action": "request-errors", "request": "produce", "error": "NOT_ENOUGH_REPLICAS", "count": 4},
        ]))
        .unwrap();
        let faults = resolve(&specs).unwrap();
        assert_eq!(faults[0].at, Duration::from_secs(1));
        assert!(matches!(faults[0].what, FaultKind::RequestErrors { count: 4, .. }));
        let bad: Vec<MockFaultSpec> = serde_json::from_value(
            serde_json::json!([{"at": "1s", "action": "request-errors", "request": "produse", "error": 6}]),
        )
        .unwrap();
        assert_eq!(resolve(&bad).unwrap_err().0, "engine.mock_faults[0].request");
    }
}
