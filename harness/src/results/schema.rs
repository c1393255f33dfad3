//! The types of `run.json`, the self-describing record of one `kbench run` (docs/RESULTS-FORMAT.md).
//!
//! `schema_version` changes whenever a field is renamed, removed or changes meaning; adding a field
//! keeps the version. Readers (`kbench report`, `kbench compare`) refuse versions they do not know.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

/// The whole of `run.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunFile {
    /// [`SCHEMA_VERSION`] when written.
    pub schema_version: u32,
    /// Version of the kbench binary that wrote the run.
    pub kbench_version: String,
    /// The workload's `name`.
    pub name: String,
    /// The workload's `description`.
    pub description: String,
    /// False while running, or when the run was interrupted (Ctrl-C) or a case failed to start.
    pub complete: bool,
    /// The workload file as given on the command line.
    pub workload_file: String,
    /// `--set` overrides, as given.
    pub overrides: Vec<String>,
    /// The resolved workload (every default filled in), in the YAML's vocabulary.
    pub workload: serde_json::Value,
    /// Where and with what the run was made.
    pub environment: Environment,
    /// Physical limits to draw as reference lines, where known.
    pub references: References,
    /// One entry per case (sweep point x repeat), in execution order.
    pub cases: Vec<CaseResult>,
}

/// Facts about the machine, the build and the engine that ran the workload.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Environment {
    /// `git rev-parse HEAD` of the source tree, when known.
    pub git_commit: Option<String>,
    /// Whether the tree had uncommitted changes.
    pub git_dirty: Option<bool>,
    /// `rustc --version` of the compiler that built kbench.
    pub rustc: String,
    /// Cargo profile (`release` or `debug`): debug figures are not comparable.
    pub profile: String,
    /// `uname -sr`.
    pub kernel: String,
    /// The host name.
    pub hostname: String,
    /// CPU model name (from /proc/cpuinfo).
    pub cpu_model: String,
    /// Logical CPUs available to the process.
    pub cpu_count: usize,
    /// Physical memory in bytes.
    pub memory_bytes: u64,
    /// The io backend the workload asked for (`io_uring`, `pwrite`, `discard`).
    pub io_backend: String,
    /// The io backend the engine actually used (differs when io_uring fell back to pwrite).
    pub io_backend_effective: String,
    /// Whether this kernel lets the process use io_uring.
    pub io_uring_available: bool,
    /// Engine data directory (temporary unless --data-dir) and its filesystem type.
    pub data_dir: String,
    /// Filesystem type of the data directory (`ext4`, `tmpfs`, ...), when known.
    pub filesystem: Option<String>,
    /// RFC 3339 UTC start of the run.
    pub started_at: String,
    /// RFC 3339 UTC end of the run (absent while running).
    pub ended_at: Option<String>,
}

/// Reference figures of the machine, for charts' reference lines.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct References {
    /// Sequential write bytes/s measured by fio (scripts/disk-baseline.sh), when a baseline file exists.
    pub disk_write_bytes_per_sec: Option<f64>,
    /// fsyncs per second measured by fio for the workload's write size, when known.
    pub disk_fsyncs_per_sec: Option<f64>,
    /// Sequential read bytes/s from a cold page cache measured by fio, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_read_bytes_per_sec: Option<f64>,
    /// Where the disk figures came from (a file path), when present.
    pub disk_source: Option<String>,
    /// Raw single-core compression speed of each codec in input bytes/s, measured at run start on the
    /// workload's payload (key = Kafka's codec name).
    pub codec_compress_bytes_per_sec: BTreeMap<String, f64>,
}

/// One case: a point of the sweep, one repeat.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseResult {
    /// Stable, filesystem-safe id; also the folder name under `cases/`.
    pub id: String,
    /// Position in the sweep (repeats share it).
    pub index: usize,
    /// Repeat number, from 0.
    pub repeat: u32,
    /// The swept keys and their values for this case (`producer.batch.size` -> 16384).
    pub params: BTreeMap<String, serde_json::Value>,
    /// `ok`, `failed` (see `error`) or `interrupted`.
    pub status: CaseStatus,
    /// What went wrong, when status is `failed`.
    pub error: Option<String>,
    /// RFC 3339 UTC start of the measured phase (after warmup).
    pub started_at: String,
    /// RFC 3339 UTC end of the measured phase.
    pub ended_at: String,
    /// Figures of the measured phase.
    pub summary: Summary,
    /// Paths of the per-case files, relative to the run directory.
    pub files: CaseFiles,
}

/// How a case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaseStatus {
    /// Ran to the end.
    Ok,
    /// Stopped by an error.
    Failed,
    /// Stopped by Ctrl-C; figures cover the part that ran.
    Interrupted,
}

/// The figures of one case's measured phase (warmup excluded).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Summary {
    /// Records acknowledged in the measured phase.
    pub records: u64,
    /// Record value+key bytes acknowledged in the measured phase.
    pub bytes: u64,
    /// Length of the measured phase in seconds.
    pub duration_sec: f64,
    /// records / duration_sec.
    pub records_per_sec: f64,
    /// bytes / duration_sec.
    pub bytes_per_sec: f64,
    /// records/s asked for (0 = as fast as possible, closed loop).
    pub target_rate: f64,
    /// Sends per second actually issued.
    pub achieved_rate: f64,
    /// Open loop only: the senders fell behind their schedule by more than 1% of the records or 1 s.
    pub saturated: bool,
    /// Sends or deliveries that failed.
    pub errors: u64,
    /// Delivery latency from the scheduled send time (open loop; equals `end_to_end_actual_ns` closed loop).
    pub end_to_end_ns: LatencySummary,
    /// Delivery latency from the actual send call.
    pub end_to_end_actual_ns: LatencySummary,
    /// Time inside `send` (partitioning, appending, back-pressure waits).
    pub send_ns: LatencySummary,
    /// Per batch: time from batch creation to drain by the sender (linger + waiting).
    pub queue_ns: LatencySummary,
    /// Per batch: compression time.
    pub compress_ns: LatencySummary,
    /// Per batch: time from hand-off to the log until the write completed.
    pub write_ns: LatencySummary,
    /// Per batch: fsync time awaited by the batch (count 0 when no flush policy forced one).
    pub sync_ns: LatencySummary,
    /// Records per batch.
    pub batch_records: LatencySummary,
    /// Uncompressed bytes per batch.
    pub batch_bytes: LatencySummary,
    /// Per batch: compressed / uncompressed size in thousandths (1000 = no reduction).
    #[serde(default)]
    pub batch_compression_ratio_permille: LatencySummary,
    /// Mean uncompressed batch bytes / batch.size.
    pub batch_fill: f64,
    /// Total compressed / uncompressed record bytes (1.0 for none).
    pub compression_ratio: f64,
    /// User + system CPU seconds of the process during the measured phase.
    pub cpu_seconds: f64,
    /// cpu_seconds / (duration_sec x cpu_count).
    pub cpu_utilization: f64,
    /// The consumer group's figures, when the workload has `consumers:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumers: Option<ConsumerSummary>,
    /// The client's side of an `engine.kind: kafka` case (absent for the embedded engine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka: Option<KafkaSummary>,
    /// Replication's figures and the acknowledged-record audit (replication.factor > 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication: Option<ReplicationSummary>,
    /// What the harness itself costs per record, beside the measured per-record time.
    #[serde(default)]
    pub harness: HarnessCost,
    /// The measured phase's CPU by thread role (engine threads and the harness's own).
    #[serde(default)]
    pub threads: ThreadsCpu,
    /// The process's memory and descriptors at the measured phase's end, and the backend's open
    /// and close times.
    #[serde(default)]
    pub process: ProcessSummary,
}

/// The whole kbench process's footprint in a case (engine and harness), and how long the backend
/// took to open and close around it.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct ProcessSummary {
    /// Resident memory at the measured phase's end, bytes (VmRSS).
    pub rss_bytes: u64,
    /// Descriptors open at the measured phase's end (entries of /proc/self/fd).
    pub open_fds: u64,
    /// The soft RLIMIT_NOFILE then (the engine raises it to the hard limit when a log opens).
    pub fd_limit: u64,
    /// Seconds to open the backend before the warmup: for the embedded engine, creating or
    /// recovering the topic's log and starting the producers (and consumers).
    pub open_sec: f64,
    /// Seconds from the producers' stop to the backend's report: for the embedded engine, draining
    /// consumers and the audit if any, closing the log and removing its data.
    pub close_sec: f64,
}

/// CPU seconds of the measured phase per thread role, from /proc/self/task (10 ms ticks). The
/// roles add up to about `cpu_seconds`; `other` is the main thread, the results writer and the like.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct ThreadsCpu {
    /// The harness's sending threads (`kbench-producer-N`).
    pub harness: RoleCpu,
    /// The engine's sender thread (`kbench-sender`, one per producer).
    pub sender: RoleCpu,
    /// The engine's log I/O threads (`kbench-log-TOPIC`, one per broker).
    pub io: RoleCpu,
    /// The engine's compression pool (`kbench-compr-N`, `producer.compression.threads`).
    pub compression: RoleCpu,
    /// Replica fetchers and the ISR thread (`kbench-fetcher-N`, `kbench-isr`).
    pub replication: RoleCpu,
    /// Consumer group members (`kbench-consumer-N`, `kbench-kafka-consumer-N`).
    pub consumers: RoleCpu,
    /// librdkafka's own threads (`rdk:*`, the mock cluster's included) and the polling thread that
    /// runs its delivery callbacks, for `engine.kind: kafka`.
    pub librdkafka: RoleCpu,
    /// Every other thread of the process.
    pub other: RoleCpu,
}

/// One role's threads and their CPU.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct RoleCpu {
    /// Threads of this role alive at the end of the phase.
    pub threads: u32,
    /// Their user + system CPU seconds during the phase.
    pub cpu_seconds: f64,
}

impl ThreadsCpu {
    /// The roles with threads, by name, in a fixed order.
    pub fn roles(&self) -> [(&'static str, RoleCpu); 8] {
        [
            ("harness", self.harness),
            ("sender", self.sender),
            ("io", self.io),
            ("compression", self.compression),
            ("replication", self.replication),
            ("consumers", self.consumers),
            ("librdkafka", self.librdkafka),
            ("other", self.other),
        ]
    }
}

/// The harness's own per-record cost: the same worker loop, on one thread, against a backend that
/// completes every send at once, measured before the case with the case's records.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct HarnessCost {
    /// Nanoseconds of one thread per record in the harness alone.
    pub ns_per_record: f64,
    /// The measured per-record time: the producer threads' time (threads, at most the CPUs)
    /// over the measured phase, per acknowledged record, nanoseconds.
    pub record_time_ns: f64,
    /// `ns_per_record` as a percentage of `record_time_ns`.
    pub percent: f64,
    /// More than [`HARNESS_FLAG_PERCENT`]: the case measures the harness as much as the backend.
    pub flagged: bool,
}

/// Above this share of the per-record time a case's harness cost is flagged.
pub const HARNESS_FLAG_PERCENT: f64 = 10.0;

impl HarnessCost {
    /// "harness: 180 ns/record, 6.3% of the measured per-record time (2.9 µs)".
    pub fn line(&self) -> String {
        format!(
            "harness: {:.0} ns/record, {:.1}% of the measured per-record time ({}){}",
            self.ns_per_record,
            self.percent,
            crate::progress::human_ns(self.record_time_ns),
            if self.flagged { " (over 10%: the case measures the harness too)" } else { "" }
        )
    }

    /// The line for a whole run: the case with the largest share.
    pub fn run_line(cases: &[CaseResult]) -> Option<String> {
        let worst = cases
            .iter()
            .filter(|c| c.summary.harness.ns_per_record > 0.0)
            .max_by(|a, b| a.summary.harness.percent.total_cmp(&b.summary.harness.percent))?;
        let flagged: Vec<&str> = cases.iter().filter(|c| c.summary.harness.flagged).map(|c| c.id.as_str()).collect();
        let mut line = format!("{} at most, in case {}", worst.summary.harness.line(), worst.id);
        if !flagged.is_empty() {
            line.push_str(&format!("; flagged over 10%: {}", flagged.join(", ")));
        }
        Some(line)
    }

    /// The cost `ns_per_record` beside a measured phase of `duration` in which `threads` producer
    /// threads delivered `records`.
    pub fn new(ns_per_record: f64, threads: u32, duration_sec: f64, records: u64) -> HarnessCost {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let thread_ns = f64::from(threads.max(1)).min(cpus) * duration_sec * 1e9;
        let record_time_ns = if records > 0 { thread_ns / records as f64 } else { 0.0 };
        let percent = if record_time_ns > 0.0 { ns_per_record / record_time_ns * 100.0 } else { 0.0 };
        HarnessCost { ns_per_record, record_time_ns, percent, flagged: percent > HARNESS_FLAG_PERCENT }
    }
}

/// A replicated case: its settings, the faults applied, the state the replicas ended in, and the
/// audit of acknowledged records against the log after the faults were healed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReplicationSummary {
    /// `replication.factor`.
    pub replication_factor: u32,
    /// `min.insync.replicas`.
    pub min_insync_replicas: u32,
    /// Records whose delivery was acknowledged (warmup included).
    pub acknowledged: u64,
    /// Acknowledged records the log no longer has (must be 0 for acks=all with
    /// min.insync.replicas >= 2 and unclean election off).
    pub lost_acknowledged: u64,
    /// Leader elections over the case (the highest leader epoch of any partition).
    pub elections: u32,
    /// Whether every partition had a leader, a full ISR and equal replicas before the audit.
    pub converged: bool,
    /// The faults as applied, `"<seconds>s <what>"`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<String>,
    /// Per fault started: the records acknowledged before it and, of those, the ones the log no
    /// longer had at the audit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fault_losses: Vec<FaultLoss>,
}

/// One fault's part in the audit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultLoss {
    /// The fault as applied, `"<seconds>s <what>"`.
    pub fault: String,
    /// Records acknowledged by the time it was applied (before it, or racing with it).
    pub acknowledged_before: u64,
    /// Of those, the ones missing from the log at the end of the case (after every fault healed).
    pub lost_acknowledged: u64,
}

/// What librdkafka saw during the measured phase of an `engine.kind: kafka` case. Error maps are
/// keyed by librdkafka's error name (`MessageTimedOut`, `NotEnoughReplicas`, `AllBrokersDown`, ...).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KafkaSummary {
    /// The client library and its version, e.g. `librdkafka 2.12.1`.
    pub client: String,
    /// `engine.bootstrap.servers` as the workload gave it (`mock:3`: an in-process mock cluster).
    pub bootstrap_servers: String,
    /// Failed send calls by error (part of the summary's `errors`).
    pub send_errors: BTreeMap<String, u64>,
    /// Failed deliveries by error (part of the summary's `errors`).
    pub delivery_errors: BTreeMap<String, u64>,
    /// Errors librdkafka reported about the cluster (broker down, connection refused): events, not
    /// records; a record fails only when its delivery does.
    pub client_errors: BTreeMap<String, u64>,
    /// Failed consumer polls and commits by error.
    pub consumer_errors: BTreeMap<String, u64>,
    /// Requests retried, from librdkafka's statistics (every 500 ms, so the phase's edges are
    /// approximate).
    pub request_retries: u64,
    /// Request send and receive errors, from librdkafka's statistics.
    pub request_errors: u64,
    /// Requests timed out, from librdkafka's statistics.
    pub request_timeouts: u64,
    /// The mock cluster faults applied, in order (`at 1s: broker 2 down`).
    pub faults_applied: Vec<String>,
}

/// What the consumers did, and the delivery accounting over the whole case (warmup included: every
/// record sent is tracked).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConsumerSummary {
    /// Records processed whose scheduled send fell in the measured phase.
    pub processed: u64,
    /// `processed` / measured duration.
    pub processed_per_sec: f64,
    /// From the scheduled send to the end of processing, ns.
    pub end_to_end_ns: LatencySummary,
    /// Records whose delivery the producers saw acknowledged.
    pub acknowledged: u64,
    /// Acknowledged records never processed.
    pub lost: u64,
    /// Processings beyond the first of a record.
    pub duplicated: u64,
    /// Records processed before an earlier record of the same producer thread and key.
    pub out_of_order: u64,
    /// Rebalances the members went through.
    pub rebalances: u64,
    /// Longest poll that included a rebalance, ms.
    pub max_rebalance_pause_ms: f64,
}

/// Percentiles of one HdrHistogram (3 significant digits); values in the unit its name says.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Values recorded.
    pub count: u64,
    /// Smallest value.
    pub min: u64,
    /// Mean.
    pub mean: f64,
    /// Standard deviation.
    pub stddev: f64,
    /// 50th percentile.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// 99.99th percentile.
    pub p9999: u64,
    /// Largest value.
    pub max: u64,
}

/// Per-case files, relative to the run directory.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CaseFiles {
    /// HdrHistogram interval log, one `Tag=` per stage, one interval per second.
    pub hlog: String,
    /// Per-second throughput and latency CSV.
    pub intervals_csv: String,
    /// End-to-end (scheduled) percentile distribution in HdrHistogram's .hgrm text format.
    pub hgrm: String,
}
