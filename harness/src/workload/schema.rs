//! The workload file's keys, by Kafka's names, with Kafka's defaults.

use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::units::{DurationSpec, Size};

fn default_name_topic() -> String {
    "kbench".into()
}
const fn one_u32() -> u32 {
    1
}
const fn yes() -> bool {
    true
}
macro_rules! const_default {
    ($name:ident, $t:ty, $v:expr) => {
        fn $name() -> $t {
            $v
        }
    };
}
const_default!(segment_bytes, Size, Size(1 << 30));
const_default!(segment_ms, u64, 7 * 24 * 3600 * 1000);
const_default!(segment_index_bytes, Size, Size(10 << 20));
const_default!(index_interval_bytes, Size, Size(4096));
const_default!(retention_ms, Option<i64>, Some(7 * 24 * 3600 * 1000));
const_default!(retention_check_ms, u64, 300_000);
const_default!(replica_lag_time_max_ms, u64, 30_000);
const_default!(batch_size, Size, Size(16384));
const_default!(linger_ms, u64, 5);
const_default!(buffer_memory, Size, Size(32 << 20));
const_default!(max_block_ms, u64, 60_000);
const_default!(max_request_size, Size, Size(1 << 20));
const_default!(max_in_flight, u32, 5);
const_default!(delivery_timeout_ms, u64, 120_000);
const_default!(cardinality, u64, 1000);
const_default!(zipf_s, f64, 1.0);
const_default!(key_size, usize, 16);
const_default!(value_size, Size, Size(100));
const_default!(seed, u64, 42);
const_default!(max_error_ratio, f64, 0.01);
const_default!(auto_commit_interval_ms, u64, 5000);
const_default!(max_poll_records, u32, 500);
const_default!(session_timeout_ms, u64, 45_000);
const_default!(workers, u32, 4);

/// `records.seed`'s default, for [`super::spelling`].
pub(super) fn default_seed() -> u64 {
    seed()
}

/// `records.max_error_ratio`'s default, for [`super::spelling`].
pub(super) fn default_max_error_ratio() -> f64 {
    max_error_ratio()
}

/// The whole file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Names the run directory.
    pub name: String,
    /// One line shown in reports.
    #[serde(default)]
    pub description: String,
    /// What runs the workload.
    #[serde(default)]
    pub engine: EngineSpec,
    /// The topic and its log settings.
    #[serde(default)]
    pub topic: TopicSpec,
    /// Producer settings.
    #[serde(default)]
    pub producer: ProducerSpec,
    /// What to send, how long and how fast.
    pub records: RecordsSpec,
    /// Consumers reading the topic back while it is written, with delivery accounting (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumers: Option<ConsumersSpec>,
    /// `section.key: [values]`, in the file's order: the grid's first key varies slowest, its last
    /// fastest (nested loops in the order written).
    #[serde(default)]
    pub sweep: indexmap::IndexMap<String, Vec<serde_json::Value>>,
    /// `grid` (every combination) or `zip` (lists taken together).
    #[serde(default)]
    pub sweep_mode: SweepMode,
    /// Runs of each sweep point.
    #[serde(default = "one_u32")]
    pub repeat: u32,
    /// The file it came from.
    #[serde(skip)]
    pub source: PathBuf,
    /// Legal but questionable settings, explained.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// How sweep lists combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SweepMode {
    /// Cartesian product.
    #[default]
    Grid,
    /// The i-th values of every list together.
    Zip,
}

/// `engine:`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct EngineSpec {
    /// `embedded` or `kafka`.
    #[serde(default)]
    pub kind: EngineKind,
    /// `io_uring`, `pwrite`, `discard` or `sim`.
    #[serde(default)]
    pub io: IoKind,
    /// Kafka only: the cluster.
    #[serde(rename = "bootstrap.servers", default, skip_serializing_if = "Option::is_none")]
    pub bootstrap_servers: Option<String>,
    /// Where case data goes (default: a temporary directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// Kafka only: librdkafka properties for every client kbench creates (docs/KAFKA.md).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub properties: std::collections::BTreeMap<String, serde_json::Value>,
    /// Kafka with `bootstrap.servers: mock:N` only: faults injected into the mock cluster.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mock_faults: Vec<super::kafka::MockFaultSpec>,
}

/// What runs the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// kbench-engine, in process.
    #[default]
    Embedded,
    /// A Kafka cluster through librdkafka.
    Kafka,
}

/// The io backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IoKind {
    /// io_uring.
    #[default]
    IoUring,
    /// pwrite.
    Pwrite,
    /// Nothing written.
    Discard,
    /// pwrite over a model of each broker's disk: what the disk faults need.
    Sim,
}

/// `topic:` — Kafka topic configs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicSpec {
    /// Topic name.
    #[serde(default = "default_name_topic")]
    pub name: String,
    /// Partition count.
    #[serde(default = "one_u32")]
    pub partitions: u32,
    /// `segment.bytes`.
    #[serde(rename = "segment.bytes", default = "segment_bytes")]
    pub segment_bytes: Size,
    /// `segment.ms`.
    #[serde(rename = "segment.ms", default = "segment_ms")]
    pub segment_ms: u64,
    /// `segment.index.bytes`.
    #[serde(rename = "segment.index.bytes", default = "segment_index_bytes")]
    pub segment_index_bytes: Size,
    /// `index.interval.bytes`.
    #[serde(rename = "index.interval.bytes", default = "index_interval_bytes")]
    pub index_interval_bytes: Size,
    /// `flush.messages` (null = never).
    #[serde(rename = "flush.messages", default)]
    pub flush_messages: Option<u64>,
    /// `flush.ms` (null = never).
    #[serde(rename = "flush.ms", default)]
    pub flush_ms: Option<u64>,
    /// `retention.ms` (null or -1 = forever).
    #[serde(rename = "retention.ms", default = "retention_ms")]
    pub retention_ms: Option<i64>,
    /// `retention.bytes` (null or -1 = no limit).
    #[serde(rename = "retention.bytes", default)]
    pub retention_bytes: Option<i64>,
    /// `log.retention.check.interval.ms`.
    #[serde(rename = "log.retention.check.interval.ms", default = "retention_check_ms")]
    pub log_retention_check_interval_ms: u64,
    /// `preallocate`.
    #[serde(default)]
    pub preallocate: bool,
    /// O_DIRECT writes (kbench's own).
    #[serde(default)]
    pub direct_io: bool,
    /// `replication.factor`: replicas per partition (brokers 0..N, broker 0 the preferred leader).
    #[serde(rename = "replication.factor", default = "one_u32")]
    pub replication_factor: u32,
    /// `min.insync.replicas`.
    #[serde(rename = "min.insync.replicas", default = "one_u32")]
    pub min_insync_replicas: u32,
    /// `replica.lag.time.max.ms`.
    #[serde(rename = "replica.lag.time.max.ms", default = "replica_lag_time_max_ms")]
    pub replica_lag_time_max_ms: u64,
    /// `unclean.leader.election.enable`.
    #[serde(rename = "unclean.leader.election.enable", default)]
    pub unclean_leader_election_enable: bool,
    /// Replica faults during the measured phase.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<ReplicaFaultSpec>,
}

/// One fault of the embedded engine's brokers: `{ at: 5s, action: stop, broker: 2, until: 10s }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicaFaultSpec {
    /// When, from the start of the measured phase.
    pub at: DurationSpec,
    /// Replica faults: `slow` (the broker's fetches wait `delay`), `stop` (the broker stops
    /// fetching and leading), `fail-leader` (the broker leading partition 0 at `at` stops). Disk
    /// faults (`engine.io: sim`): `power-loss`, `fsync-failure`, `disk-full`, `slow-disk`.
    pub action: ReplicaFaultAction,
    /// The broker: 0..replication.factor; `power-loss` also takes `leader` (partition 0's) or `all`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker: Option<BrokerRef>,
    /// `slow` and `slow-disk` only: the delay before each fetch, or each write and fdatasync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<DurationSpec>,
    /// When the fault ends (the broker restarts, fetches at full speed again, its disk has space or
    /// speed again); never when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DurationSpec>,
}

/// Which broker a fault hits: an id, or (power loss) the leader of partition 0, or every broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BrokerRef {
    /// Broker `n`.
    Id(u32),
    /// `leader` or `all`.
    Named(BrokerName),
}

/// The named broker choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BrokerName {
    /// Whoever leads partition 0 when the fault starts.
    Leader,
    /// Every broker at once.
    All,
}

/// What a broker fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReplicaFaultAction {
    /// Add a delay before each of a broker's fetches.
    Slow,
    /// Stop a broker (it neither fetches nor leads), restarting it at `until`.
    Stop,
    /// Stop the broker leading partition 0, restarting it at `until`.
    FailLeader,
    /// The broker(s) lose power: what no fdatasync made durable is dropped, then they recover and
    /// restart at once.
    PowerLoss,
    /// The broker's next fdatasync fails (its log directory goes offline); restarted at `until`
    /// or at the end of the measured phase.
    FsyncFailure,
    /// Every write of the broker fails with ENOSPC (its log directory goes offline); space again
    /// and the broker restarted at `until` or at the end of the measured phase.
    DiskFull,
    /// Every write and fdatasync of the broker waits `delay`, until `until`.
    SlowDisk,
}

impl ReplicaFaultAction {
    /// A fault of the simulated disk (it needs `engine.io: sim`).
    pub fn is_disk_fault(self) -> bool {
        matches!(
            self,
            ReplicaFaultAction::PowerLoss
                | ReplicaFaultAction::FsyncFailure
                | ReplicaFaultAction::DiskFull
                | ReplicaFaultAction::SlowDisk
        )
    }
}

impl Default for TopicSpec {
    fn default() -> Self {
        serde_json::from_value(serde_json::json!({})).expect("every topic key has a default")
    }
}

/// One Producer for all threads, or one per thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sharing {
    /// One shared producer.
    #[default]
    Shared,
    /// A producer per thread.
    PerThread,
}

/// Fire and forget with callbacks, or wait for each delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SendMode {
    /// Don't wait.
    #[default]
    Async,
    /// send().get().
    Sync,
}

/// Kafka's acks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Acks {
    /// 0
    Zero,
    /// 1
    One,
    /// all / -1
    #[default]
    All,
}

impl Serialize for Acks {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            Acks::Zero => "0",
            Acks::One => "1",
            Acks::All => "all",
        })
    }
}

impl<'de> Deserialize<'de> for Acks {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        let text = match &v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            other => other.to_string(),
        };
        match text.as_str() {
            "0" => Ok(Acks::Zero),
            "1" => Ok(Acks::One),
            "all" | "-1" => Ok(Acks::All),
            _ => Err(serde::de::Error::custom(format!("acks must be \"0\", \"1\", \"all\" or -1, not {v}"))),
        }
    }
}

/// compression.type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// none
    #[default]
    None,
    /// gzip
    Gzip,
    /// snappy
    Snappy,
    /// lz4
    Lz4,
    /// zstd
    Zstd,
}

/// Partitioner choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartitionerKind {
    /// murmur2 + sticky.
    #[default]
    Default,
    /// Round robin.
    RoundRobin,
}

/// Accumulator implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccumulatorKind {
    /// Lock-free.
    #[default]
    Lockfree,
    /// Mutex per partition.
    Mutex,
}

/// `producer:` — Kafka producer configs plus kbench's threading keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProducerSpec {
    /// Sending threads.
    #[serde(default = "one_u32")]
    pub threads: u32,
    /// shared | per-thread.
    #[serde(default)]
    pub sharing: Sharing,
    /// async | sync.
    #[serde(default)]
    pub send: SendMode,
    /// acks.
    #[serde(default)]
    pub acks: Acks,
    /// batch.size.
    #[serde(rename = "batch.size", default = "batch_size")]
    pub batch_size: Size,
    /// linger.ms.
    #[serde(rename = "linger.ms", default = "linger_ms")]
    pub linger_ms: u64,
    /// compression.type.
    #[serde(rename = "compression.type", default)]
    pub compression_type: Compression,
    /// compression.gzip.level.
    #[serde(rename = "compression.gzip.level", default, skip_serializing_if = "Option::is_none")]
    pub compression_gzip_level: Option<i32>,
    /// compression.lz4.level.
    #[serde(rename = "compression.lz4.level", default, skip_serializing_if = "Option::is_none")]
    pub compression_lz4_level: Option<i32>,
    /// compression.zstd.level.
    #[serde(rename = "compression.zstd.level", default, skip_serializing_if = "Option::is_none")]
    pub compression_zstd_level: Option<i32>,
    /// compression.threads (kbench-engine's own): the engine's compression pool; absent = one per
    /// core, at most 4; 0 = compress on the sender thread.
    #[serde(rename = "compression.threads", default, skip_serializing_if = "Option::is_none")]
    pub compression_threads: Option<u32>,
    /// buffer.memory.
    #[serde(rename = "buffer.memory", default = "buffer_memory")]
    pub buffer_memory: Size,
    /// max.block.ms.
    #[serde(rename = "max.block.ms", default = "max_block_ms")]
    pub max_block_ms: u64,
    /// max.request.size.
    #[serde(rename = "max.request.size", default = "max_request_size")]
    pub max_request_size: Size,
    /// enable.idempotence.
    #[serde(rename = "enable.idempotence", default = "yes")]
    pub enable_idempotence: bool,
    /// max.in.flight.requests.per.connection.
    #[serde(rename = "max.in.flight.requests.per.connection", default = "max_in_flight")]
    pub max_in_flight: u32,
    /// delivery.timeout.ms (recorded; the embedded engine never retries).
    #[serde(rename = "delivery.timeout.ms", default = "delivery_timeout_ms")]
    pub delivery_timeout_ms: u64,
    /// default | round_robin.
    #[serde(default)]
    pub partitioner: PartitionerKind,
    /// partitioner.ignore.keys.
    #[serde(rename = "partitioner.ignore.keys", default)]
    pub partitioner_ignore_keys: bool,
    /// lockfree | mutex.
    #[serde(default)]
    pub accumulator: AccumulatorKind,
    /// Pin sending threads to cores.
    #[serde(default)]
    pub pin_threads: bool,
}

impl Default for ProducerSpec {
    fn default() -> Self {
        serde_json::from_value(serde_json::json!({})).expect("every producer key has a default")
    }
}

/// `records:`. Read through [`super::spelling::RecordsFile`]: `key` and `value` keys nested
/// (`key: { size: 16 }`) or flat (`key.size: 16`); written nested.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "super::spelling::RecordsFile")]
pub struct RecordsSpec {
    /// Measured phase length (or `count`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<DurationSpec>,
    /// Records to send in the measured phase (or `duration`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// Warmup before measuring (excluded from every figure).
    #[serde(default)]
    pub warmup: DurationSpec,
    /// Records/s over all threads; 0 = closed loop, as fast as possible.
    #[serde(default)]
    pub rate: f64,
    /// Keys.
    #[serde(default)]
    pub key: KeySpec,
    /// Values.
    #[serde(default)]
    pub value: ValueSpec,
    /// Headers per record (16-byte values).
    #[serde(default)]
    pub headers: u32,
    /// Seed of the key and payload generators.
    #[serde(default = "seed")]
    pub seed: u64,
    /// A case whose failed sends exceed this share of records + errors is `failed`.
    #[serde(rename = "max_error_ratio", default = "max_error_ratio")]
    pub max_error_ratio: f64,
}

/// Key distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyDistribution {
    /// Null keys (sticky partitioning).
    #[default]
    None,
    /// Uniform over `cardinality` keys.
    Uniform,
    /// Zipf over `cardinality` keys with exponent `s`.
    Zipf,
    /// 0, 1, 2, ... modulo `cardinality`.
    Sequential,
}

/// `records.key`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySpec {
    /// none | uniform | zipf | sequential.
    #[serde(default)]
    pub distribution: KeyDistribution,
    /// Distinct keys.
    #[serde(default = "cardinality")]
    pub cardinality: u64,
    /// Key length in bytes (zero-padded decimal ids).
    #[serde(default = "key_size")]
    pub size: usize,
    /// Zipf exponent.
    #[serde(default = "zipf_s")]
    pub s: f64,
}

impl Default for KeySpec {
    fn default() -> Self {
        KeySpec { distribution: KeyDistribution::None, cardinality: cardinality(), size: key_size(), s: zipf_s() }
    }
}

/// Payload kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Payload {
    /// Incompressible bytes.
    #[default]
    Random,
    /// Log-like text.
    Text,
    /// Order-like JSON events.
    Json,
    /// Lines of a file.
    File,
}

/// `records.value`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueSpec {
    /// Value size in bytes (file payloads use their lines' lengths).
    #[serde(default = "value_size")]
    pub size: Size,
    /// random | text | json | file.
    #[serde(default)]
    pub payload: Payload,
    /// For `file`: the path, relative to the workload file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
}

impl Default for ValueSpec {
    fn default() -> Self {
        ValueSpec { size: value_size(), payload: Payload::Random, file: None }
    }
}

impl Default for RecordsSpec {
    fn default() -> Self {
        serde_json::from_value(serde_json::json!({})).expect("every records key has a default")
    }
}

/// `consumers:` — one consumer group reading the topic back during the case.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumersSpec {
    /// Group members at the start (consumers, each on its own thread).
    #[serde(default = "one_u32")]
    pub members: u32,
    /// `per-thread` (each member processes what it polls) or `worker-pool` (each member hands its
    /// records to `workers` processing threads and polls on).
    #[serde(default)]
    pub strategy: ConsumerStrategy,
    /// Processing threads per member with `worker-pool`.
    #[serde(default = "workers")]
    pub workers: u32,
    /// When offsets are committed: `auto` (Kafka's enable.auto.commit), `after-poll` (commitSync
    /// right after each poll, before processing), `after-processing` (commitSync once a poll's
    /// records are processed).
    #[serde(default)]
    pub commit: CommitMode,
    /// `auto.commit.interval.ms` (with `commit: auto`).
    #[serde(default = "auto_commit_interval_ms", rename = "auto.commit.interval.ms")]
    pub auto_commit_interval_ms: u64,
    /// `partition.assignment.strategy`: `range` or `roundrobin`.
    #[serde(default, rename = "partition.assignment.strategy")]
    pub partition_assignment_strategy: AssignmentSpec,
    /// `max.poll.records`.
    #[serde(default = "max_poll_records", rename = "max.poll.records")]
    pub max_poll_records: u32,
    /// `session.timeout.ms`: how long a crashed member holds its partitions.
    #[serde(default = "session_timeout_ms", rename = "session.timeout.ms")]
    pub session_timeout_ms: u64,
    /// Processing time per record (a busy wait), e.g. `50us`.
    #[serde(default)]
    pub processing: DurationSpec,
    /// Faults, at times from the start of the measured phase.
    #[serde(default)]
    pub faults: Vec<FaultSpec>,
}

/// How a member's records are processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConsumerStrategy {
    /// One consumer per thread, processing what it polls.
    #[default]
    PerThread,
    /// One polling consumer handing records to a pool of workers.
    WorkerPool,
}

/// When offsets are committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CommitMode {
    /// Kafka's auto commit, every auto.commit.interval.ms at poll.
    #[default]
    Auto,
    /// commitSync right after each poll, before processing (at-most-once).
    AfterPoll,
    /// commitSync after the poll's records are processed (at-least-once).
    AfterProcessing,
}

/// `partition.assignment.strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AssignmentSpec {
    /// Kafka's RangeAssignor.
    #[default]
    Range,
    /// Kafka's RoundRobinAssignor.
    Roundrobin,
}

/// One consumer fault.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// When, from the start of the measured phase.
    pub at: DurationSpec,
    /// `crash` (the newest member stops without committing or leaving: its partitions wait for
    /// session.timeout.ms), `remove` (the newest member closes cleanly), `add` (a member joins).
    pub action: FaultAction,
}

/// What a fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultAction {
    /// Stop a member without commit or LeaveGroup.
    Crash,
    /// Close a member cleanly.
    Remove,
    /// Start one more member.
    Add,
}
