//! What `kbench validate` prints: the workload in the file's own words (its keys and values as
//! written in YAML, never the harness's internal names), swept keys as their lists, the number of
//! cases and an estimate of the run's length.

use std::time::Duration;

use serde_json::Value;

use super::sweep::value_text;
use super::{EngineKind, Workload};

/// The keys `validate` shows per section (every swept key is shown too, wherever it lives).
const SHOWN: &[(&str, &[&str])] = &[
    ("engine", &["kind", "io", "bootstrap.servers"]),
    (
        "topic",
        &["name", "partitions", "replication.factor", "min.insync.replicas", "flush.messages", "flush.ms", "faults"],
    ),
    (
        "producer",
        &[
            "threads",
            "sharing",
            "send",
            "acks",
            "enable.idempotence",
            "batch.size",
            "linger.ms",
            "compression.type",
            "accumulator",
        ],
    ),
    ("records", &["duration", "count", "warmup", "rate", "max_error_ratio"]),
    ("records.key", &["distribution", "cardinality", "size"]),
    ("records.value", &["size", "payload"]),
    ("consumers", &["members", "strategy", "workers", "commit", "faults"]),
];

/// Per case beyond its warmup and measured phase: the harness's own-cost probe, opening the
/// backend, joining the producers, closing and removing the log. Measured on this project's 2-core
/// machine, from run.json's case times (durability.yaml with 6 s phases, 11 cases in 1m 56s):
/// 1.3-1.9 s between an unreplicated case's end and the next one's warmup.
const SETUP_PER_CASE: Duration = Duration::from_secs(2);

/// A replicated case also heals its faults, waits for its replicas to converge and audits every
/// acknowledged record against the log: 3-5 s in all in the same run (up to 6 s after a failover).
const REPLICATED_SETUP: Duration = Duration::from_secs(3);

/// Once per run: the codec reference measurement before the first case and the report after the
/// last (4-5 s in the same run).
const PER_RUN: Duration = Duration::from_secs(4);

/// What a case costs beyond its phases: [`SETUP_PER_CASE`], [`REPLICATED_SETUP`] for a replicated
/// case, and with consumer faults the wait for records a crash left unprocessed (the consumers
/// drain until nothing moved for `session.timeout.ms` + 5 s).
fn setup(case: &super::Case) -> Duration {
    let w = &case.workload;
    let mut d = SETUP_PER_CASE;
    if w.topic.replication_factor > 1 {
        d += REPLICATED_SETUP;
    }
    if let Some(c) = w.consumers.as_ref().filter(|c| !c.faults.is_empty()) {
        d += Duration::from_millis(c.session_timeout_ms) + Duration::from_secs(5);
    }
    d
}

/// A value of the resolved workload by its dotted key (`records.key.size`).
fn lookup<'a>(json: &'a Value, section: &str, key: &str) -> Option<&'a Value> {
    let mut v = json;
    for part in section.split('.') {
        v = v.get(part)?;
    }
    v.get(key)
}

/// The section of [`SHOWN`] a swept key belongs to: the longest that prefixes it.
fn home(key: &str) -> Option<&'static str> {
    SHOWN
        .iter()
        .map(|(s, _)| *s)
        .filter(|s| key.strip_prefix(s).is_some_and(|r| r.starts_with('.')))
        .max_by_key(|s| s.len())
}

/// `1m 50s`, `45s`, `1h 02m`.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

impl Workload {
    /// A short summary for `kbench validate`, in the workload file's vocabulary.
    pub fn describe(&self) -> String {
        let json = serde_json::to_value(self).unwrap_or_default();
        let cases = self.cases();
        let mut out = format!("{}: ok", self.source.display());
        if !self.description.is_empty() {
            out.push_str(&format!("\n  {}", self.description));
        }
        for (section, keys) in SHOWN {
            if section.starts_with("consumers") && self.consumers.is_none() {
                continue;
            }
            let mut shown: Vec<String> = Vec::new();
            let swept_here = self.sweep.keys().filter(|k| home(k) == Some(section)).map(|k| &k[section.len() + 1..]);
            for key in keys.iter().copied().chain(swept_here.filter(|f| !keys.contains(f))) {
                let full = format!("{section}.{key}");
                if let Some(values) = self.sweep.get(&full) {
                    let list: Vec<String> = values.iter().map(value_text).collect();
                    shown.push(format!("{key} [{}] (swept)", list.join(" | ")));
                    continue;
                }
                match lookup(&json, section, key) {
                    None | Some(Value::Null) => {}
                    Some(Value::Array(a)) if a.is_empty() => {}
                    Some(v) => shown.push(format!("{key} {}", value_text(v))),
                }
            }
            if !shown.is_empty() {
                out.push_str(&format!("\n  {section}: {}", shown.join(", ")));
            }
        }
        let points = cases.iter().filter(|c| c.repeat == 0).count();
        out.push_str(&format!("\n  {} case(s)", cases.len()));
        if !self.sweep.is_empty() {
            out.push_str(&format!(
                ": {points} sweep point(s) ({}{})",
                serde_json::to_value(self.sweep_mode).ok().as_ref().map_or_else(String::new, value_text),
                if self.repeat > 1 { format!(") x repeat {}", self.repeat) } else { String::new() }
            ));
        } else if self.repeat > 1 {
            out.push_str(&format!(" (repeat {})", self.repeat));
        }
        out.push_str(&format!("\n  {}", self.estimate(&cases)));
        for w in &self.warnings {
            out.push_str(&format!("\n  warning: {w}"));
        }
        out
    }

    /// How long the run takes: each case's warmup and measured phase, each case's setup
    /// ([`setup`]) and the run's own start and end ([`PER_RUN`]).
    fn estimate(&self, cases: &[super::Case]) -> String {
        let phases: Duration = cases
            .iter()
            .map(|c| c.workload.records.warmup.0 + c.workload.records.duration.map(|d| d.0).unwrap_or_default())
            .sum();
        let setup: Duration = cases.iter().map(setup).sum::<Duration>() + PER_RUN;
        let kafka = cases.iter().any(|c| c.workload.engine.kind == EngineKind::Kafka);
        if self.records.count.is_some() {
            return format!(
                "estimated time: unknown (records.count: as long as the records take), plus about {} of setup",
                human(setup)
            );
        }
        format!(
            "estimated time: about {} ({} of warmup and measured phases, about {} of per-case setup, audits and \
             consumer draining, and the report{})",
            human(phases + setup),
            human(phases),
            human(setup),
            if kafka { "; kafka cases also wait for the cluster" } else { "" }
        )
    }
}
