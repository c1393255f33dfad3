//! Workload keys turned into librdkafka properties: every key with a librdkafka meaning is mapped,
//! every key without one is refused (when set to anything but its default) with the reason, and
//! `engine.properties` are passed through after librdkafka itself has accepted them (`${NAME}` in a
//! value read from the environment).

use std::collections::BTreeMap;

use rdkafka::ClientConfig;

use crate::workload::{
    AccumulatorKind, Acks, CommitMode, Compression, ConsumerStrategy, IoKind, PartitionerKind, TopicSpec, Workload,
};

/// A mapping error: the workload key (`producer.accumulator`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyError {
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

fn refuse(key: &str, message: impl Into<String>) -> KeyError {
    KeyError { key: key.to_string(), message: message.into() }
}

/// librdkafka properties (and their aliases) that workload keys or kbench itself set: passing them
/// through `engine.properties` would make a case say one thing and run another.
const OWNED: &[(&str, &str)] = &[
    ("bootstrap.servers", "engine.bootstrap.servers"),
    ("metadata.broker.list", "engine.bootstrap.servers"),
    ("acks", "producer.acks"),
    ("request.required.acks", "producer.acks"),
    ("batch.size", "producer.batch.size"),
    ("linger.ms", "producer.linger.ms"),
    ("queue.buffering.max.ms", "producer.linger.ms"),
    ("compression.type", "producer.compression.type"),
    ("compression.codec", "producer.compression.type"),
    ("compression.level", "producer.compression.<codec>.level"),
    ("queue.buffering.max.kbytes", "producer.buffer.memory"),
    ("message.max.bytes", "producer.max.request.size"),
    ("enable.idempotence", "producer.enable.idempotence"),
    ("max.in.flight.requests.per.connection", "producer.max.in.flight.requests.per.connection"),
    ("max.in.flight", "producer.max.in.flight.requests.per.connection"),
    ("delivery.timeout.ms", "producer.delivery.timeout.ms"),
    ("message.timeout.ms", "producer.delivery.timeout.ms"),
    ("partitioner", "producer.partitioner"),
    ("group.id", "consumers (kbench names a fresh group per case)"),
    ("enable.auto.commit", "consumers.commit"),
    ("auto.commit.interval.ms", "consumers.auto.commit.interval.ms"),
    ("partition.assignment.strategy", "consumers.partition.assignment.strategy"),
    ("session.timeout.ms", "consumers.session.timeout.ms"),
    ("auto.offset.reset", "consumers (kbench starts the group at the log end of the case's start)"),
    ("enable.auto.offset.store", "consumers.commit"),
    ("test.mock.num.brokers", "engine.bootstrap.servers: mock:N"),
];

/// Defaults kbench gives librdkafka so that workload keys keep their Kafka (Java client) meaning;
/// `engine.properties` may override them.
const KBENCH_DEFAULTS: &[(&str, &str)] = &[
    // Java's producer limits a batch by bytes only (batch.size); librdkafka also by count (10000).
    ("batch.num.messages", "1000000"),
    // Java's buffer.memory limits bytes only; librdkafka also queued messages (100000).
    ("queue.buffering.max.messages", "2147483647"),
    // Retries, request errors and round trips are read from librdkafka's statistics.
    ("statistics.interval.ms", "500"),
    ("client.id", "kbench"),
];

/// The librdkafka side of a case, ready to hand to client constructors.
#[derive(Debug, Clone)]
pub(crate) struct ClientProperties {
    /// Producer properties (bootstrap.servers excepted: the mock cluster's address is known only
    /// once it runs).
    pub producer: BTreeMap<String, String>,
    /// Consumer properties, the same way (group.id excepted: one per case).
    pub consumer: BTreeMap<String, String>,
    /// Topic configs to create the topic with (only those differing from Kafka's defaults).
    pub topic_configs: BTreeMap<String, String>,
    /// `engine.properties` alone (the admin client's: security settings and the like).
    pub common: BTreeMap<String, String>,
    /// `topic.replication.factor` when not 1 (1: the brokers' default.replication.factor).
    pub replication_factor: Option<i32>,
}

/// Maps the workload's keys; `mock` when the cluster is the in-process mock cluster.
pub(crate) fn map(w: &Workload, mock: bool) -> Result<ClientProperties, KeyError> {
    check_engine(w)?;
    let topic_configs = topic_configs(&w.topic, mock)?;
    let replication_factor = (w.topic.replication_factor != 1).then_some(w.topic.replication_factor as i32);
    if mock && replication_factor.is_some() {
        return Err(refuse(
            "topic.replication.factor",
            "the mock cluster replicates each partition on up to 3 of its brokers; remove it, or use a real cluster",
        ));
    }
    let mut producer = producer_properties(w)?;
    let mut consumer = consumer_properties(w)?;
    for (k, v) in KBENCH_DEFAULTS {
        producer.insert((*k).into(), (*v).into());
    }
    consumer.insert("client.id".into(), "kbench".into());
    let mut common = BTreeMap::new();
    for (k, v) in &w.engine.properties {
        let key = format!("engine.properties.{k}");
        if let Some((_, owner)) = OWNED.iter().find(|(p, _)| p == k) {
            return Err(refuse(&key, format!("set by kbench from {owner}; set that key instead")));
        }
        let value = match v {
            serde_json::Value::String(s) => super::secrets::expand_env(s).map_err(|m| refuse(&key, m))?,
            other => other.to_string(),
        };
        // Ask librdkafka whether it knows the property and accepts the value (names its own error,
        // which may quote the value: never a secret's).
        let mut probe = ClientConfig::new();
        probe.set(k.as_str(), value.as_str());
        if let Err(e) = probe.create_native_config() {
            let message = format!("librdkafka refuses it: {e}");
            let message = if super::secrets::is_secret(k) { super::secrets::scrub(&message, &value) } else { message };
            return Err(refuse(&key, message));
        }
        producer.insert(k.clone(), value.clone());
        consumer.insert(k.clone(), value.clone());
        common.insert(k.clone(), value);
    }
    Ok(ClientProperties { producer, consumer, topic_configs, common, replication_factor })
}

fn check_engine(w: &Workload) -> Result<(), KeyError> {
    if w.engine.io != IoKind::default() {
        return Err(refuse(
            "engine.io",
            "the io backend is kbench-engine's; a Kafka cluster writes with its own (remove it, or sweep it with engine.kind in zip mode)",
        ));
    }
    if w.engine.data_dir.is_some() {
        return Err(refuse("engine.data_dir", "the cluster keeps its own data; kind: kafka writes nothing locally"));
    }
    Ok(())
}

fn producer_properties(w: &Workload) -> Result<BTreeMap<String, String>, KeyError> {
    let p = &w.producer;
    if p.partitioner == PartitionerKind::RoundRobin {
        return Err(refuse(
            "producer.partitioner",
            "round_robin has no librdkafka partitioner (its partitioners hash keys: murmur2, fnv1a, crc32); use default",
        ));
    }
    if p.partitioner_ignore_keys {
        return Err(refuse(
            "producer.partitioner.ignore.keys",
            "librdkafka has no way to partition keyed records stickily; use null keys (records.key.distribution: none) instead",
        ));
    }
    if p.accumulator != AccumulatorKind::default() {
        return Err(refuse(
            "producer.accumulator",
            "the accumulator design is kbench-engine's own; librdkafka has one queue per partition (remove the key)",
        ));
    }
    if p.compression_threads.is_some() {
        return Err(refuse(
            "producer.compression.threads",
            "the compression pool is kbench-engine's own; librdkafka compresses on its broker threads (remove the key)",
        ));
    }
    if p.enable_idempotence && p.acks != Acks::All {
        return Err(refuse(
            "producer.acks",
            format!(
                "librdkafka refuses enable.idempotence=true with acks={} (as Kafka's Java client does); set producer.enable.idempotence: false",
                serde_json::to_value(p.acks).unwrap_or_default().as_str().unwrap_or("?")
            ),
        ));
    }
    let codec = match p.compression_type {
        Compression::None => "none",
        Compression::Gzip => "gzip",
        Compression::Snappy => "snappy",
        Compression::Lz4 => "lz4",
        Compression::Zstd => "zstd",
    };
    let level = match p.compression_type {
        Compression::Gzip => p.compression_gzip_level,
        Compression::Lz4 => p.compression_lz4_level,
        Compression::Zstd => p.compression_zstd_level,
        _ => None,
    };
    let mut m: BTreeMap<String, String> = BTreeMap::new();
    m.insert("acks".into(), if p.acks == Acks::All { "all".into() } else { json_text(p.acks) });
    m.insert("batch.size".into(), p.batch_size.0.min(i32::MAX as u64).to_string());
    m.insert("linger.ms".into(), p.linger_ms.to_string());
    m.insert("compression.type".into(), codec.into());
    if let Some(level) = level {
        m.insert("compression.level".into(), level.to_string());
    }
    m.insert(
        "queue.buffering.max.kbytes".into(),
        p.buffer_memory.0.div_ceil(1024).clamp(1, i32::MAX as u64).to_string(),
    );
    m.insert("message.max.bytes".into(), p.max_request_size.0.clamp(1000, 1_000_000_000).to_string());
    m.insert("enable.idempotence".into(), p.enable_idempotence.to_string());
    m.insert("max.in.flight.requests.per.connection".into(), p.max_in_flight.to_string());
    m.insert("delivery.timeout.ms".into(), p.delivery_timeout_ms.to_string());
    // Kafka's Java client hashes keys with murmur2 and spreads null keys stickily: librdkafka's
    // murmur2_random with its sticky partitioning of null keys.
    m.insert("partitioner".into(), "murmur2_random".into());
    // Each mapped value must be one librdkafka accepts, named by its workload key.
    for (k, v) in &m {
        let mut probe = ClientConfig::new();
        probe.set(k.as_str(), v.as_str());
        if let Err(e) = probe.create_native_config() {
            let key = match k.as_str() {
                "queue.buffering.max.kbytes" => "buffer.memory",
                "message.max.bytes" => "max.request.size",
                "compression.level" => "compression.type",
                other => other,
            };
            return Err(refuse(&format!("producer.{key}"), format!("librdkafka refuses {k}={v}: {e}")));
        }
    }
    Ok(m)
}

fn consumer_properties(w: &Workload) -> Result<BTreeMap<String, String>, KeyError> {
    let mut m = BTreeMap::new();
    let Some(c) = &w.consumers else { return Ok(m) };
    if c.strategy == ConsumerStrategy::WorkerPool {
        return Err(refuse(
            "consumers.strategy",
            "worker-pool is not available with engine.kind: kafka yet (each member processes what it polls: per-thread)",
        ));
    }
    if !c.faults.is_empty() {
        return Err(refuse(
            "consumers.faults",
            "member crashes and joins are not available with engine.kind: kafka yet; use engine.mock_faults for broker faults",
        ));
    }
    m.insert("enable.auto.commit".into(), (c.commit == CommitMode::Auto).to_string());
    m.insert("auto.commit.interval.ms".into(), c.auto_commit_interval_ms.to_string());
    m.insert(
        "partition.assignment.strategy".into(),
        match c.partition_assignment_strategy {
            crate::workload::AssignmentSpec::Range => "range".into(),
            crate::workload::AssignmentSpec::Roundrobin => "roundrobin".into(),
        },
    );
    m.insert("session.timeout.ms".into(), c.session_timeout_ms.to_string());
    m.insert("auto.offset.reset".into(), "earliest".into());
    Ok(m)
}

/// Topic configs differing from Kafka's defaults, by Kafka's names, to create the topic with.
fn topic_configs(t: &TopicSpec, mock: bool) -> Result<BTreeMap<String, String>, KeyError> {
    let d = TopicSpec::default();
    if t.direct_io {
        return Err(refuse(
            "topic.direct_io",
            "O_DIRECT is kbench-engine's own; a broker writes through the page cache",
        ));
    }
    if t.log_retention_check_interval_ms != d.log_retention_check_interval_ms {
        return Err(refuse(
            "topic.log.retention.check.interval.ms",
            "a broker config, not a topic config: set it on the brokers (server.properties)",
        ));
    }
    if t.replica_lag_time_max_ms != d.replica_lag_time_max_ms {
        return Err(refuse(
            "topic.replica.lag.time.max.ms",
            "a broker config, not a topic config: set it on the brokers (server.properties)",
        ));
    }
    if !t.faults.is_empty() {
        return Err(refuse(
            "topic.faults",
            "replica faults act on the embedded engine's replicas; on the mock cluster use engine.mock_faults",
        ));
    }
    let opt = |v: Option<i64>| v.map_or("-1".to_string(), |v| v.to_string());
    let mut m = BTreeMap::new();
    let mut put = |key: &str, differs: bool, value: String| {
        if differs {
            m.insert(key.to_string(), value);
        }
    };
    put("segment.bytes", t.segment_bytes != d.segment_bytes, t.segment_bytes.0.to_string());
    put("segment.ms", t.segment_ms != d.segment_ms, t.segment_ms.to_string());
    put("segment.index.bytes", t.segment_index_bytes != d.segment_index_bytes, t.segment_index_bytes.0.to_string());
    put("index.interval.bytes", t.index_interval_bytes != d.index_interval_bytes, t.index_interval_bytes.0.to_string());
    put("flush.messages", t.flush_messages.is_some(), t.flush_messages.unwrap_or_default().to_string());
    put("flush.ms", t.flush_ms.is_some(), t.flush_ms.unwrap_or_default().to_string());
    put("retention.ms", t.retention_ms != d.retention_ms, opt(t.retention_ms));
    put("retention.bytes", t.retention_bytes.is_some_and(|v| v >= 0), opt(t.retention_bytes));
    put("preallocate", t.preallocate, "true".into());
    put("min.insync.replicas", t.min_insync_replicas != d.min_insync_replicas, t.min_insync_replicas.to_string());
    put("unclean.leader.election.enable", t.unclean_leader_election_enable, "true".into());
    if mock && let Some(k) = m.keys().next() {
        return Err(refuse(
            &format!("topic.{k}"),
            "librdkafka's mock cluster keeps records in memory and has no topic configs; remove it, or use a real cluster",
        ));
    }
    Ok(m)
}

fn json_text<T: serde::Serialize>(v: T) -> String {
    match serde_json::to_value(v).unwrap_or_default() {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn workload(extra: &str) -> Workload {
        let text = format!(
            "name: t\nengine: {{ kind: kafka, bootstrap.servers: 'mock:3' }}\nrecords: {{ duration: 1s }}\n{extra}"
        );
        crate::workload::load_str(&text, Path::new("w.yaml"), &[]).unwrap()
    }

    #[test]
    fn producer_keys_map_to_librdkafka_names() {
        let w = workload(
            "producer: { acks: all, batch.size: 65536, linger.ms: 20, compression.type: zstd, compression.zstd.level: 7, buffer.memory: 1MiB }",
        );
        let p = map(&w, true).unwrap().producer;
        assert_eq!(p["acks"], "all");
        assert_eq!(p["batch.size"], "65536");
        assert_eq!(p["linger.ms"], "20");
        assert_eq!(p["compression.type"], "zstd");
        assert_eq!(p["compression.level"], "7");
        assert_eq!(p["queue.buffering.max.kbytes"], "1024");
        assert_eq!(p["enable.idempotence"], "true");
        assert_eq!(p["partitioner"], "murmur2_random");
        assert_eq!(p["batch.num.messages"], "1000000");
    }

    #[test]
    fn keys_without_a_librdkafka_meaning_are_refused_by_name() {
        for (extra, key) in [
            ("producer: { accumulator: mutex }", "producer.accumulator"),
            ("producer: { partitioner: round_robin }", "producer.partitioner"),
            ("producer: { partitioner.ignore.keys: true }", "producer.partitioner.ignore.keys"),
            ("producer: { acks: 1 }", "producer.acks"),
            ("topic: { direct_io: true }", "topic.direct_io"),
            ("topic: { segment.bytes: 1048576 }", "topic.segment.bytes"),
            ("consumers: { strategy: worker-pool }", "consumers.strategy"),
        ] {
            let err = map(&workload(extra), true).unwrap_err();
            assert_eq!(err.key, key, "{extra}: {err}");
        }
    }

    #[test]
    fn properties_pass_through_unless_owned_or_unknown() {
        let mut w = workload("");
        w.engine.properties.insert("socket.nagle.disable".into(), serde_json::json!(true));
        w.engine.properties.insert("batch.num.messages".into(), serde_json::json!(500));
        let p = map(&w, true).unwrap();
        assert_eq!(p.producer["socket.nagle.disable"], "true");
        assert_eq!(p.producer["batch.num.messages"], "500", "properties override kbench's defaults");
        w.engine.properties.insert("linger.ms".into(), serde_json::json!(9));
        assert_eq!(map(&w, true).unwrap_err().key, "engine.properties.linger.ms");
        w.engine.properties.remove("linger.ms");
        w.engine.properties.insert("no.such.property".into(), serde_json::json!("x"));
        let err = map(&w, true).unwrap_err();
        assert_eq!(err.key, "engine.properties.no.such.property");
        assert!(err.message.contains("librdkafka"), "{err}");
    }

    #[test]
    fn real_clusters_get_non_default_topic_configs() {
        let w = workload("topic: { segment.bytes: 1048576, flush.messages: 1, retention.ms: null }");
        let t = map(&w, false).unwrap().topic_configs;
        assert_eq!(t["segment.bytes"], "1048576");
        assert_eq!(t["flush.messages"], "1");
        assert_eq!(t["retention.ms"], "-1");
        assert!(!t.contains_key("segment.ms"));
    }
}
