//! Workload files: Kafka property names, Kafka defaults, errors that name file:line:column, and
//! sweeps expanded into cases (docs/WORKLOADS.md lists every key).

mod describe;
mod error;
pub mod kafka;
pub(crate) mod limits;
mod schema;
mod spelling;
mod sweep;
pub(crate) mod units;

use std::path::Path;

pub use error::WorkloadError;
use error::{error, locate, suggest};
pub use schema::*;
pub use sweep::{Case, select, value_text};

/// Reads, checks and expands a workload file; `overrides` are `section.key=value` (YAML scalars).
pub fn load(path: &Path, overrides: &[String]) -> Result<Workload, WorkloadError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| error(path, None, None, format!("cannot read the workload file: {e}")))?;
    load_str(&text, path, overrides)
}

/// [`load`] from text already read (tests, stdin).
pub fn load_str(text: &str, path: &Path, overrides: &[String]) -> Result<Workload, WorkloadError> {
    let mut workload: Workload = serde_saphyr::from_str(text).map_err(|e| parse_error(text, path, &e))?;
    workload.source = path.to_path_buf();
    for o in overrides {
        let (key, value) = o.split_once('=').ok_or_else(|| {
            error(path, None, Some(o.clone()), "an override is written SECTION.KEY=VALUE, e.g. producer.linger.ms=10")
        })?;
        let value: serde_json::Value = serde_saphyr::from_str(value).map_err(|e| {
            error(path, None, Some(key.to_string()), format!("--set value `{value}` is not a YAML scalar: {e}"))
        })?;
        workload = sweep::with_value(&workload, key, &value)
            .map_err(|m| error(path, None, Some(key.to_string()), format!("--set {key}={value}: {m}")))?;
        // `--set` on a swept key pins it: every case takes the value given.
        workload.sweep.shift_remove(key.trim());
    }
    validate(&mut workload, text)?;
    // Every sweep point must be as valid as the file itself.
    for case in sweep::expand(&workload, text)? {
        let mut w = case.workload.clone();
        validate(&mut w, text).map_err(|mut e| {
            // A swept key is written in the sweep: point there, and name the point.
            if let Some(key) = e.key.clone()
                && let Some(value) = case.params.get(&key)
            {
                e.location = locate(text, "sweep", &key).or(e.location);
                e.message = format!("in sweep case {} ({key}: {}): {}", case.id, value_text(value), e.message);
            } else {
                e.message = format!("in sweep case {}: {}", case.id, e.message);
            }
            e
        })?;
    }
    Ok(workload)
}

impl Workload {
    /// The sweep expanded (grid or zip) times `repeat`, in a stable order; one case without a sweep.
    pub fn cases(&self) -> Vec<Case> {
        sweep::expand(self, "").unwrap_or_default()
    }
}

/// Turns a parser error into one that names the place and suggests the key meant.
fn parse_error(text: &str, path: &Path, e: &serde_saphyr::Error) -> WorkloadError {
    let location = e.location().map(|l| (l.line(), l.column()));
    let message = e.to_string();
    let mut key = None;
    let mut hint = String::new();
    if let Some(rest) = message.split("unknown field `").nth(1)
        && let Some(unknown) = rest.split('`').next()
    {
        let section = location.map(|(line, _)| section_at(text, line)).unwrap_or_default();
        key = Some(if section.is_empty() { unknown.to_string() } else { format!("{section}.{unknown}") });
        if let Some(s) = suggest(&section, unknown) {
            hint = format!(" (did you mean `{s}`?)");
        }
    }
    error(path, location, key, format!("{}{hint}", first_line(&message)))
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// The section (`producer`, `records.key`, ...) that the 1-based `line` belongs to.
fn section_at(text: &str, line: u64) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let upto = (line as usize).min(lines.len());
    let mut top = String::new();
    let mut nested = String::new();
    for l in &lines[..upto] {
        let trimmed = l.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = l.len() - trimmed.len();
        let name = trimmed.split(':').next().unwrap_or("").trim().to_string();
        if indent == 0 {
            top = name;
            nested.clear();
            // Flow mappings on the same line: `records: { key: { ... } }`.
            if let Some(inner) = trimmed.split_once('{').map(|(_, r)| r)
                && let Some((n, _)) = inner.split_once(": {")
            {
                nested = n.trim().to_string();
            }
        } else if (name == "key" || name == "value") && top == "records" {
            nested = name;
        }
    }
    if top.is_empty() || top == "name" || top == "description" {
        String::new()
    } else if !nested.is_empty() {
        format!("{top}.{nested}")
    } else {
        top
    }
}

/// Impossible values and combinations, each named with its place; questionable ones become warnings.
fn validate(w: &mut Workload, text: &str) -> Result<(), WorkloadError> {
    let path = w.source.clone();
    let fail = |section: &str, key: &str, message: String| {
        let full = if section.is_empty() { key.to_string() } else { format!("{section}.{key}") };
        Err(error(&path, locate_nested(text, section, key), Some(full), message))
    };
    if w.name.trim().is_empty() || w.name.contains('/') {
        return fail("", "name", "must be a non-empty name without `/` (it names the results directory)".into());
    }
    if w.topic.partitions == 0 {
        return fail("topic", "partitions", "must be at least 1".into());
    }
    if w.topic.segment_bytes.0 < 1024 {
        return fail("topic", "segment.bytes", format!("must be at least 1024 bytes, got {}", w.topic.segment_bytes.0));
    }
    if w.topic.index_interval_bytes.0 == 0 {
        return fail("topic", "index.interval.bytes", "must be at least 1".into());
    }
    if let Err((key, message)) = check_replication(&w.topic, w.engine.io) {
        return fail("topic", key, message);
    }
    if w.topic.flush_messages == Some(0) {
        return fail("topic", "flush.messages", "must be at least 1 (or null for never)".into());
    }
    if let Some(c) = &w.consumers {
        if w.engine.io == IoKind::Discard {
            return fail(
                "engine",
                "io",
                "consumers read the log back: use io_uring, pwrite or sim, not discard".into(),
            );
        }
        if c.members > 64 {
            return fail("consumers", "members", format!("must be at most 64, got {}", c.members));
        }
        if c.workers == 0 || c.workers > 256 {
            return fail("consumers", "workers", format!("must be between 1 and 256, got {}", c.workers));
        }
        if c.max_poll_records == 0 {
            return fail("consumers", "max.poll.records", "must be at least 1".into());
        }
        if c.session_timeout_ms == 0 {
            return fail("consumers", "session.timeout.ms", "must be at least 1".into());
        }
    }
    let p = &w.producer;
    if p.threads == 0 || p.threads > 1024 {
        return fail("producer", "threads", format!("must be between 1 and 1024, got {}", p.threads));
    }
    if p.batch_size.0 == 0 || p.batch_size.0 > 1 << 30 {
        return fail("producer", "batch.size", format!("must be between 1 and 1 GiB, got {}", p.batch_size.0));
    }
    if p.buffer_memory.0 == 0 {
        return fail("producer", "buffer.memory", "must be at least 1".into());
    }
    if p.enable_idempotence && p.max_in_flight > 5 {
        return fail(
            "producer",
            "max.in.flight.requests.per.connection",
            format!("must be at most 5 with enable.idempotence=true (Kafka refuses it too), got {}", p.max_in_flight),
        );
    }
    let r = &w.records;
    match (r.duration, r.count) {
        (Some(_), Some(_)) => return fail("records", "count", "give either duration or count, not both".into()),
        (None, None) => return fail("records", "duration", "records needs a duration (e.g. 10s) or a count".into()),
        (Some(d), None) if d.0.is_zero() => return fail("records", "duration", "must be more than 0".into()),
        (None, Some(0)) => return fail("records", "count", "must be at least 1".into()),
        _ => {}
    }
    if !(r.rate.is_finite() && r.rate >= 0.0) {
        return fail(
            "records",
            "rate",
            format!("must be 0 (as fast as possible) or a positive records/s, got {}", r.rate),
        );
    }
    if r.key.distribution != KeyDistribution::None && r.key.cardinality == 0 {
        return fail("records.key", "cardinality", "must be at least 1".into());
    }
    if r.key.distribution == KeyDistribution::Zipf && !(r.key.s.is_finite() && r.key.s > 0.0) {
        return fail("records.key", "s", "the zipf exponent must be positive".into());
    }
    if r.key.size == 0 || r.key.size > 1 << 20 {
        return fail("records.key", "size", "must be between 1 byte and 1 MiB".into());
    }
    if r.value.payload == Payload::File {
        let Some(file) = &r.value.file else {
            return fail("records.value", "file", "payload: file needs `file: PATH`".into());
        };
        let resolved = w.source.parent().unwrap_or(Path::new(".")).join(file);
        if !resolved.is_file() {
            return fail("records.value", "file", format!("{} does not exist", resolved.display()));
        }
    }
    if let Err((section, key, message)) = check_fault_times(w) {
        return fail(section, key, message);
    }
    if w.repeat == 0 {
        return fail("", "repeat", "must be at least 1".into());
    }
    if w.engine.kind == EngineKind::Kafka && !cfg!(feature = "kafka") {
        return fail(
            "engine",
            "kind",
            "kind: kafka: built without the `kafka` feature: cargo build --features kafka (validate refuses what \
             run cannot do)"
                .into(),
        );
    }
    if w.engine.kind == EngineKind::Kafka && w.engine.bootstrap_servers.is_none() {
        return fail("engine", "kind", "kind: kafka needs bootstrap.servers".into());
    }
    if let Err((key, message)) = check_kafka_engine(&w.engine) {
        return fail("engine", key, message);
    }
    if let Err((section, key, message)) = limits::check(w) {
        return fail(section, key, message);
    }
    let p = &w.producer;
    let mut warnings = Vec::new();
    if p.enable_idempotence && p.acks != Acks::All {
        warnings.push(format!(
            "producer.enable.idempotence=true with acks={}: Kafka's client refuses this combination (idempotence needs acks=all); kbench honours both, stamping sequences and acknowledging at acks={}",
            serde_json::to_value(p.acks).unwrap_or_default(),
            serde_json::to_value(p.acks).unwrap_or_default()
        ));
    }
    w.warnings = warnings;
    Ok(())
}

/// [`locate`] for `records.key` / `records.value` too: the subsection, then the key after it.
fn locate_nested(text: &str, section: &str, key: &str) -> Option<(u64, u64)> {
    let Some((top, sub)) = section.split_once('.') else { return locate(text, section, key) };
    // Flat (`key.size: 0`) first, then nested (`key: { size: 0 }`).
    if let Some(at) = locate(text, top, &format!("{sub}.{key}")) {
        return Some(at);
    }
    let (line, col) = locate(text, top, sub)?;
    let needle = format!("{key}:");
    for (i, l) in text.lines().enumerate().skip(line as usize - 1) {
        let from = if i + 1 == line as usize { col as usize - 1 + sub.len() + 1 } else { 0 };
        let Some(rest) = l.get(from..) else { continue };
        if let Some(pos) = rest.find(&needle) {
            let at = from + pos;
            let before = l.as_bytes().get(at.wrapping_sub(1)).copied();
            if at == 0 || matches!(before, Some(b' ' | b'{' | b',' | b'\t')) {
                return Some((i as u64 + 1, at as u64 + 1));
            }
        }
        // Past the subsection: a line indented no deeper than it ends the search.
        if i + 1 > line as usize && !l.trim().is_empty() && l.len() - l.trim_start().len() < col as usize {
            break;
        }
    }
    Some((line, col))
}

/// Every fault, crash and mock-cluster event falls inside the measured phase (times count from its
/// start): one at or after `records.duration` would never happen, and a shortened run must say so
/// rather than drop it. With `records.count` the phase's length is unknown and nothing is refused.
fn check_fault_times(w: &Workload) -> Result<(), (&'static str, &'static str, String)> {
    let Some(end) = w.records.duration.map(|d| d.0) else { return Ok(()) };
    let late = |what: String, when: &str, t: std::time::Duration| {
        format!(
            "{what}: {when} {} is not inside the measured phase (records.duration {}): it would never happen; \
             move it earlier or lengthen records.duration",
            units::format_duration(t),
            units::format_duration(end)
        )
    };
    let text = |v: serde_json::Value| value_text(&v);
    for (i, f) in w.topic.faults.iter().enumerate() {
        let name = format!("faults[{i}] ({})", serde_json::to_value(f).map(text).unwrap_or_default());
        if f.at.0 >= end {
            return Err(("topic", "faults", late(name, "at", f.at.0)));
        }
        if let Some(until) = &f.until
            && until.0 > end
        {
            return Err(("topic", "faults", late(name, "until", until.0)));
        }
    }
    if let Some(c) = &w.consumers {
        for (i, f) in c.faults.iter().enumerate() {
            if f.at.0 >= end {
                let name = format!("faults[{i}] ({})", serde_json::to_value(f).map(text).unwrap_or_default());
                return Err(("consumers", "faults", late(name, "at", f.at.0)));
            }
        }
    }
    for (i, f) in w.engine.mock_faults.iter().enumerate() {
        if f.at.0 >= end {
            let name = format!("mock_faults[{i}] ({})", serde_json::to_value(f).map(text).unwrap_or_default());
            return Err(("engine", "mock_faults", late(name, "at", f.at.0)));
        }
    }
    Ok(())
}

/// One of `topic.faults` against the topic's replication.factor and the engine's io: the key of the
/// fault at fault, and why.
fn check_fault(f: &ReplicaFaultSpec, rf: u32, io: IoKind) -> Result<(), (&'static str, String)> {
    use ReplicaFaultAction as A;
    let action = serde_json::to_value(f.action).map(|v| value_text(&v)).unwrap_or_default();
    if f.action.is_disk_fault() {
        if io != IoKind::Sim {
            let io = serde_json::to_value(io).map(|v| value_text(&v)).unwrap_or_default();
            return Err((
                "action",
                format!("{action} is a fault of the simulated disk: set engine.io: sim (it is {io})"),
            ));
        }
    } else if rf < 2 {
        return Err(("action", "replica faults need replication.factor of at least 2".into()));
    }
    let ids = if rf == 1 { "0".to_string() } else { format!("0 to {}", rf - 1) };
    match (f.action, f.broker) {
        (A::FailLeader, Some(_)) => {
            return Err(("broker", "fail-leader stops whichever broker leads partition 0; remove broker".into()));
        }
        (A::FailLeader, None) | (A::PowerLoss, Some(BrokerRef::Named(_))) => {}
        (A::PowerLoss, None) => return Err(("broker", format!("which broker: {ids}, leader or all?"))),
        (_, None) => return Err(("broker", format!("which broker, {ids}?"))),
        (_, Some(BrokerRef::Named(_))) => {
            return Err(("broker", format!("only power-loss takes leader or all; {action} needs a broker id, {ids}")));
        }
        (_, Some(BrokerRef::Id(b))) if b >= rf => {
            return Err(("broker", format!("replication.factor {rf} has brokers {ids}, not {b}")));
        }
        _ => {}
    }
    match (f.action, &f.delay) {
        (A::Slow | A::SlowDisk, None) => return Err(("delay", format!("{action} needs a delay, e.g. 50ms"))),
        (A::Slow | A::SlowDisk, Some(_)) | (_, None) => {}
        (_, Some(_)) => return Err(("delay", "only slow and slow-disk take a delay".into())),
    }
    if let Some(until) = &f.until {
        if f.action == A::PowerLoss {
            return Err(("until", "power-loss has no until: the broker(s) recover and restart at once".into()));
        }
        if until.0 <= f.at.0 {
            return Err(("until", format!("must be after at ({:?}), got {:?}", f.at.0, until.0)));
        }
    }
    Ok(())
}

/// replication.factor, min.insync.replicas and the broker faults.
fn check_replication(t: &TopicSpec, io: IoKind) -> Result<(), (&'static str, String)> {
    let rf = t.replication_factor;
    if !(1..=16).contains(&rf) {
        return Err(("replication.factor", format!("must be between 1 and 16 replicas, got {rf}")));
    }
    if t.min_insync_replicas == 0 {
        return Err(("min.insync.replicas", "must be at least 1".into()));
    }
    if t.replica_lag_time_max_ms == 0 {
        return Err(("replica.lag.time.max.ms", "must be at least 1".into()));
    }
    for (i, f) in t.faults.iter().enumerate() {
        let at = |key: &str, m: String| ("faults", format!("faults[{i}].{key}: {m}"));
        check_fault(f, rf, io).map_err(|(key, m)| at(key, m))?;
    }
    Ok(())
}

/// The shape of `engine.properties` and `engine.mock_faults` (their meaning is checked when a case is
/// planned, against librdkafka).
fn check_kafka_engine(e: &EngineSpec) -> Result<(), (&'static str, String)> {
    for (k, v) in &e.properties {
        if !(v.is_string() || v.is_number() || v.is_boolean()) {
            return Err(("properties", format!("properties.{k}: must be a string, number or boolean, not {v}")));
        }
    }
    let mock = e.bootstrap_servers.as_deref().and_then(kafka::mock_brokers);
    if let Some(Err(m)) = &mock {
        return Err(("bootstrap.servers", m.clone()));
    }
    if !e.mock_faults.is_empty() && !matches!(mock, Some(Ok(_))) {
        return Err(("mock_faults", "faults need the in-process mock cluster: bootstrap.servers: mock:N".into()));
    }
    for (i, f) in e.mock_faults.iter().enumerate() {
        f.check().map_err(|(key, m)| ("mock_faults", format!("mock_faults[{i}].{key}: {m}")))?;
        if let (Some(b), Some(Ok(n))) = (f.broker, &mock)
            && !(1..=*n).contains(&b)
        {
            return Err((
                "mock_faults",
                format!("mock_faults[{i}].broker: the mock cluster has brokers 1 to {n}, not {b}"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
