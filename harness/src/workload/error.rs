//! Workload errors that name the place: `file:line:column: key.path: what is wrong (expected ...)`.

use std::fmt;
use std::path::{Path, PathBuf};

/// A workload file that cannot be run, and where.
#[derive(Debug, Clone)]
pub struct WorkloadError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line and column, when known.
    pub location: Option<(u64, u64)>,
    /// `section.key`, when known.
    pub key: Option<String>,
    /// What is wrong, what was expected, and a suggestion.
    pub message: String,
}

impl fmt::Display for WorkloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some((line, col)) = self.location {
            write!(f, ":{line}:{col}")?;
        }
        write!(f, ": ")?;
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for WorkloadError {}

/// Every key a section accepts, for suggestions.
pub(crate) const KNOWN_KEYS: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "name",
            "description",
            "engine",
            "topic",
            "producer",
            "records",
            "consumers",
            "sweep",
            "sweep_mode",
            "repeat",
        ],
    ),
    (
        "consumers",
        &[
            "members",
            "strategy",
            "workers",
            "commit",
            "auto.commit.interval.ms",
            "partition.assignment.strategy",
            "max.poll.records",
            "session.timeout.ms",
            "processing",
            "faults",
        ],
    ),
    ("engine", &["kind", "io", "bootstrap.servers", "data_dir", "properties", "mock_faults"]),
    (
        "topic",
        &[
            "name",
            "partitions",
            "segment.bytes",
            "segment.ms",
            "segment.index.bytes",
            "index.interval.bytes",
            "flush.messages",
            "flush.ms",
            "retention.ms",
            "retention.bytes",
            "replication.factor",
            "min.insync.replicas",
            "replica.lag.time.max.ms",
            "unclean.leader.election.enable",
            "log.retention.check.interval.ms",
            "preallocate",
            "direct_io",
            "faults",
        ],
    ),
    (
        "producer",
        &[
            "threads",
            "sharing",
            "send",
            "acks",
            "batch.size",
            "linger.ms",
            "compression.type",
            "compression.gzip.level",
            "compression.lz4.level",
            "compression.zstd.level",
            "buffer.memory",
            "max.block.ms",
            "max.request.size",
            "enable.idempotence",
            "max.in.flight.requests.per.connection",
            "delivery.timeout.ms",
            "partitioner",
            "partitioner.ignore.keys",
            "accumulator",
            "pin_threads",
        ],
    ),
    (
        "records",
        &[
            "duration",
            "count",
            "warmup",
            "rate",
            "key",
            "value",
            "key.distribution",
            "key.cardinality",
            "key.size",
            "key.s",
            "value.size",
            "value.payload",
            "value.file",
            "headers",
            "seed",
            "max_error_ratio",
        ],
    ),
    ("records.key", &["distribution", "cardinality", "size", "s"]),
    ("records.value", &["size", "payload", "file"]),
];

/// The known key closest to `unknown` in `section`, if close enough to be a typo.
pub(crate) fn suggest(section: &str, unknown: &str) -> Option<&'static str> {
    let keys = KNOWN_KEYS.iter().find(|(s, _)| *s == section).map(|(_, k)| *k)?;
    keys.iter()
        .map(|k| (strsim::damerau_levenshtein(k, unknown), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min()
        .map(|(_, k)| k)
}

/// Finds the line and column of `key:` under `section` in the YAML text (1-based), to locate
/// errors found after parsing (impossible values, sweep entries).
pub(crate) fn locate(text: &str, section: &str, key: &str) -> Option<(u64, u64)> {
    let mut in_section = section.is_empty();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if indent == 0 && !trimmed.is_empty() && !trimmed.starts_with('#') {
            in_section = section.is_empty() || trimmed.starts_with(&format!("{section}:"));
            if section.is_empty() && trimmed.starts_with(&format!("{key}:")) {
                return Some((i as u64 + 1, 1));
            }
            if !section.is_empty()
                && let Some(pos) = trimmed.find(&format!("{key}:"))
                && in_section
                && pos > 0
            {
                return Some((i as u64 + 1, pos as u64 + 1));
            }
            continue;
        }
        if in_section && let Some(pos) = line.find(&format!("{key}:")) {
            let before = line.as_bytes().get(pos.wrapping_sub(1)).copied();
            if pos == 0 || matches!(before, Some(b' ' | b'{' | b',' | b'\t')) {
                return Some((i as u64 + 1, pos as u64 + 1));
            }
        }
    }
    None
}

pub(crate) fn error(
    path: &Path,
    location: Option<(u64, u64)>,
    key: Option<String>,
    message: impl Into<String>,
) -> WorkloadError {
    WorkloadError { path: path.to_path_buf(), location, key, message: message.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_keys_only() {
        assert_eq!(suggest("producer", "lingr.ms"), Some("linger.ms"));
        assert_eq!(suggest("producer", "batch_size"), Some("batch.size"));
        assert_eq!(suggest("producer", "zebra"), None);
    }

    #[test]
    fn locates_keys_in_sections() {
        let text = "name: x\ntopic:\n  partitions: 8\nproducer:\n  linger.ms: 5\nrecords: { duration: 1s }\n";
        assert_eq!(locate(text, "producer", "linger.ms"), Some((5, 3)));
        assert_eq!(locate(text, "topic", "partitions"), Some((3, 3)));
        assert_eq!(locate(text, "records", "duration"), Some((6, 12)));
        assert_eq!(locate(text, "", "name"), Some((1, 1)));
    }
}
