//! `engine.kind: kafka`: the same workloads against a Kafka cluster through librdkafka (the rdkafka
//! crate with its bundled librdkafka), built with `--features kafka`.
//!
//! [`config`] maps workload keys to librdkafka properties and refuses those without a meaning there;
//! [`producer`] is the per-thread sender and the delivery callback; [`consumer`] reads the topic back in a consumer group for end-to-end latency and the
//! delivery accounting; [`mock`] runs librdkafka's in-process mock cluster (`bootstrap.servers:
//! mock:N`) and its faults; [`topic`] creates the topic on a real cluster; [`backend`] puts them behind the
//! backend trait, so a case runs in the same loop, with the same histograms and results, as on the
//! embedded engine. [`secrets`] keeps secret property values out of everything a run writes (built
//! with or without the feature). docs/KAFKA.md says what compares with the embedded engine and what
//! does not.

#[cfg(feature = "kafka")]
mod backend;
#[cfg(feature = "kafka")]
mod config;
#[cfg(feature = "kafka")]
mod consumer;
#[cfg(feature = "kafka")]
mod errors;
#[cfg(feature = "kafka")]
mod mock;
#[cfg(feature = "kafka")]
mod plan;
#[cfg(feature = "kafka")]
mod producer;
pub(crate) mod secrets;
#[cfg(feature = "kafka")]
mod topic;

#[cfg(feature = "kafka")]
pub(crate) use backend::Kafka;
#[cfg(feature = "kafka")]
pub(crate) use plan::KafkaPlan;

/// No broker of `bootstrap` could be reached: the case failed within seconds, and every later case
/// of the run on the same cluster is recorded as not run, with this reason, rather than waiting in
/// turn (a cluster that is down for one case is down for the next).
#[derive(Debug, Clone)]
// Made by the kafka backend only; without the feature, run() still asks a failed case for it.
#[cfg_attr(not(feature = "kafka"), allow(dead_code))]
pub(crate) struct Unreachable {
    /// `engine.bootstrap.servers` as the case used it.
    pub bootstrap: String,
    /// What librdkafka reported.
    pub reason: String,
}

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no broker reachable at {}: {}", self.bootstrap, self.reason)
    }
}

impl std::error::Error for Unreachable {}

impl Unreachable {
    /// The unreachable cluster a case's error names, if it does.
    pub(crate) fn of(e: &anyhow::Error) -> Option<Unreachable> {
        e.chain().find_map(|c| c.downcast_ref::<Unreachable>()).cloned()
    }

    /// Whether `plan` runs against this cluster (a mock cluster is started for its case: never).
    #[cfg(feature = "kafka")]
    pub(crate) fn reaches(&self, plan: &super::plan::CasePlan) -> bool {
        plan.kafka.as_ref().is_some_and(|k| k.mock_brokers.is_none() && k.bootstrap == self.bootstrap)
    }

    /// Without the kafka feature no case reaches a cluster.
    #[cfg(not(feature = "kafka"))]
    pub(crate) fn reaches(&self, _plan: &super::plan::CasePlan) -> bool {
        false
    }
}

/// `kbench --version`: the version and what the build can reach — the `kafka` feature, and what
/// librdkafka itself reports built in (its `builtin.features`): TLS and the SASL mechanisms.
pub(crate) fn version() -> &'static str {
    static VERSION: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| format!("{} (features: {})", env!("CARGO_PKG_VERSION"), built_in()));
    VERSION.as_str()
}

#[cfg(not(feature = "kafka"))]
fn built_in() -> String {
    "embedded engine only; no kafka (cargo build --features kafka)".into()
}

#[cfg(feature = "kafka")]
fn built_in() -> String {
    let builtin =
        rdkafka::ClientConfig::new().create_native_config().and_then(|c| c.get("builtin.features")).unwrap_or_default();
    let has: Vec<&str> = builtin.split(',').collect();
    let tls = if has.contains(&"ssl") { "TLS" } else { "no TLS" };
    let sasl: Vec<&str> = [
        ("sasl_plain", "PLAIN"),
        ("sasl_scram", "SCRAM-SHA-256"),
        ("sasl_scram", "SCRAM-SHA-512"),
        ("sasl_oauthbearer", "OAUTHBEARER"),
        ("sasl_gssapi", "GSSAPI"),
    ]
    .into_iter()
    .filter(|(f, _)| has.contains(f))
    .map(|(_, m)| m)
    .collect();
    format!(
        "kafka (librdkafka {}), {tls}, SASL {}",
        rdkafka::util::get_rdkafka_version().1,
        if sasl.is_empty() { "none".to_string() } else { sasl.join(" ") }
    )
}
