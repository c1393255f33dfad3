//! The run directory (docs/RESULTS-FORMAT.md): `run.json`, and per case an HdrHistogram interval log,
//! a per-second CSV and a percentile distribution. Every file is written atomically.

pub mod case_files;
pub mod concerns;
mod environment;
pub mod schema;
pub mod verdict;
mod writer;

use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::Context;
pub use environment::capture_environment;
use hdrhistogram::Histogram;
use schema::{LatencySummary, RunFile, SCHEMA_VERSION, Summary};
pub use writer::{CaseWriter, RunDir, check_out, write_atomic as writer_atomic};

use crate::metrics::{Measured, Stage};

/// RFC 3339 UTC, second precision with milliseconds.
pub fn rfc3339(t: SystemTime) -> String {
    jiff::Timestamp::try_from(t).map(|ts| format!("{ts:.3}")).unwrap_or_default()
}

/// Percentiles of a histogram.
pub fn latency_summary(h: &Histogram<u64>) -> LatencySummary {
    if h.is_empty() {
        return LatencySummary::default();
    }
    LatencySummary {
        count: h.len(),
        min: h.min(),
        mean: h.mean(),
        stddev: h.stdev(),
        p50: h.value_at_quantile(0.50),
        p90: h.value_at_quantile(0.90),
        p99: h.value_at_quantile(0.99),
        p999: h.value_at_quantile(0.999),
        p9999: h.value_at_quantile(0.9999),
        max: h.highest_equivalent(h.max()),
    }
}

/// A case's summary from its measurements.
#[allow(clippy::too_many_arguments)]
pub fn summarize(
    m: &Measured,
    target_rate: f64,
    duration: Duration,
    sent: u64,
    lag: Duration,
    cpu: Duration,
    batch_size: usize,
) -> Summary {
    let secs = duration.as_secs_f64().max(1e-9);
    let batch_bytes = latency_summary(m.stage(Stage::BatchBytes));
    let achieved_rate = sent as f64 / secs;
    // Saturated: behind schedule by more than a second of sends or 1% of them, or below 99% of the rate.
    let behind = target_rate > 0.0
        && (lag.as_secs_f64() * target_rate > (target_rate).max(sent as f64 * 0.01)
            || achieved_rate < 0.99 * target_rate);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    Summary {
        records: m.records,
        bytes: m.bytes,
        duration_sec: secs,
        records_per_sec: m.records as f64 / secs,
        bytes_per_sec: m.bytes as f64 / secs,
        target_rate,
        achieved_rate,
        saturated: behind,
        errors: m.errors,
        end_to_end_ns: latency_summary(m.stage(Stage::EndToEnd)),
        end_to_end_actual_ns: latency_summary(m.stage(Stage::EndToEndActual)),
        send_ns: latency_summary(m.stage(Stage::Send)),
        queue_ns: latency_summary(m.stage(Stage::Queue)),
        compress_ns: latency_summary(m.stage(Stage::Compress)),
        write_ns: latency_summary(m.stage(Stage::Write)),
        sync_ns: latency_summary(m.stage(Stage::Sync)),
        batch_records: latency_summary(m.stage(Stage::BatchRecords)),
        batch_compression_ratio_permille: latency_summary(m.stage(Stage::CompressionRatio)),
        batch_fill: if batch_bytes.count > 0 { batch_bytes.mean / batch_size.max(1) as f64 } else { 0.0 },
        batch_bytes,
        compression_ratio: if m.uncompressed > 0 { m.compressed as f64 / m.uncompressed as f64 } else { 1.0 },
        cpu_seconds: cpu.as_secs_f64(),
        cpu_utilization: cpu.as_secs_f64() / (secs * cpus),
        consumers: None,
        kafka: None,
        replication: None,
        harness: Default::default(),
        threads: Default::default(),
        process: Default::default(),
    }
}

/// Reads a run directory's run.json, refusing schema versions this build does not know.
pub fn load_run(dir: &Path) -> anyhow::Result<RunFile> {
    let path = dir.join("run.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let probe: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let version = probe.get("schema_version").and_then(serde_json::Value::as_u64);
    if version != Some(u64::from(SCHEMA_VERSION)) {
        anyhow::bail!(
            "{}: schema_version {} is not {SCHEMA_VERSION}, the version this kbench reads",
            path.display(),
            version.map_or("missing".to_string(), |v| v.to_string())
        );
    }
    serde_json::from_value(probe)
        .with_context(|| format!("{} does not match schema_version {SCHEMA_VERSION}", path.display()))
}
