//! What cannot run, refused before it runs: records larger than the producer accepts, batches larger
//! than its memory, acks=all that no ISR can satisfy, topic names Kafka refuses, and rates no schedule
//! can honour. Each refusal names the key to change; `validate` adds the file:line.

use std::path::Path;

use kbench_engine::producer::serialized_size_upper_bound;

use super::{Acks, KeyDistribution, Payload, Workload};
use crate::results::verdict::grouped;

/// Kafka's longest topic name (org.apache.kafka.common.internals.Topic).
const TOPIC_MAX_LENGTH: usize = 249;
/// The open-loop schedule stamps due times in whole nanoseconds: one thread cannot be scheduled
/// more often than once a nanosecond.
const MAX_RATE_PER_THREAD: f64 = 1e9;
/// Kafka's INT configs (max.request.size, batch.size) end here.
const KAFKA_INT_MAX: u64 = i32::MAX as u64;
/// Lines of a `file` payload the generator uses (driver/payload.rs: POOL x 64).
const FILE_LINES_USED: usize = 1024 * 64;
/// The id header a case adds when something checks deliveries (driver/ledger.rs): key and value bytes.
const ID_HEADER: (usize, usize) = ("kbench-id".len(), 20);

/// A refusal: `section`, `key` (as `validate` locates them) and why.
pub(crate) type Refusal = (&'static str, &'static str, String);

/// Kafka's Topic.validate, in its words.
pub(crate) fn check_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Topic name is illegal, it can't be empty (Kafka's InvalidTopicException)".into());
    }
    if name == "." || name == ".." {
        return Err("Topic name cannot be \".\" or \"..\" (Kafka's InvalidTopicException)".into());
    }
    if name.chars().count() > TOPIC_MAX_LENGTH {
        return Err(format!(
            "Topic name is illegal, it can't be longer than {TOPIC_MAX_LENGTH} characters, topic name: {name} ({} characters; Kafka's InvalidTopicException)",
            name.chars().count()
        ));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-' ({c:?}; Kafka's InvalidTopicException)"
        ));
    }
    Ok(())
}

/// The largest value the workload sends: `value.size`, or the longest line a `file` payload uses.
fn largest_value(w: &Workload) -> u64 {
    match (&w.records.value.payload, &w.records.value.file) {
        (Payload::File, Some(file)) => {
            let path = w.source.parent().unwrap_or(Path::new(".")).join(file);
            std::fs::read(path)
                .map(|text| {
                    text.split(|b| *b == b'\n')
                        .filter(|l| !l.is_empty())
                        .take(FILE_LINES_USED)
                        .map(|l| l.len() as u64)
                        .max()
                        .unwrap_or(0)
                })
                .unwrap_or(0)
        }
        _ => w.records.value.size.0,
    }
}

/// The worst-case serialized size of one record of the workload, as the producer checks it, and a
/// description of its parts.
pub(crate) fn worst_case_record(w: &Workload) -> (u64, String) {
    let r = &w.records;
    let key = (r.key.distribution != KeyDistribution::None).then_some(r.key.size);
    let value = largest_value(w);
    // The headers driver/plan.rs attaches: `h<i>` = `header-value-<i:04>`.
    let mut headers: Vec<(usize, Option<usize>)> =
        (0..r.headers).map(|i| (format!("h{i}").len(), Some(format!("header-value-{i:04}").len()))).collect();
    let id_header = w.consumers.is_some() || w.topic.replication_factor > 1;
    if id_header {
        headers.push((ID_HEADER.0, Some(ID_HEADER.1)));
    }
    let size = serialized_size_upper_bound(key, usize::try_from(value).ok().or(Some(usize::MAX)), &headers);
    let parts = format!(
        "key {} + value {} + {} header(s){}",
        key.map_or("null".to_string(), |k| format!("{k} B")),
        grouped(value) + " B",
        headers.len(),
        if id_header { ", the kbench-id header included" } else { "" }
    );
    (size, parts)
}

/// Every check of this module, first refusal first.
pub(crate) fn check(w: &Workload) -> Result<(), Refusal> {
    check_topic_name(&w.topic.name).map_err(|m| ("topic", "name", m))?;
    let p = &w.producer;
    if p.max_request_size.0 > KAFKA_INT_MAX {
        return Err((
            "producer",
            "max.request.size",
            format!("must be at most {} (a Kafka INT), got {}", grouped(KAFKA_INT_MAX), grouped(p.max_request_size.0)),
        ));
    }
    if p.batch_size.0 > p.buffer_memory.0 {
        return Err((
            "producer",
            "batch.size",
            format!(
                "batch.size {} is above buffer.memory {}: Kafka's BufferPool refuses any allocation above buffer.memory (\"Attempt to allocate {} bytes, but there is a hard limit of {} on memory allocations\"), so every send would fail; raise buffer.memory or lower batch.size",
                grouped(p.batch_size.0),
                grouped(p.buffer_memory.0),
                p.batch_size.0,
                p.buffer_memory.0
            ),
        ));
    }
    let (size, parts) = worst_case_record(w);
    let value_key = if w.records.value.payload == Payload::File { "file" } else { "size" };
    if size > p.max_request_size.0 {
        return Err((
            "records.value",
            value_key,
            format!(
                "RecordTooLargeException: The message is {size} bytes when serialized which is larger than {}, which is the value of the max.request.size configuration ({parts}); every send would fail",
                p.max_request_size.0
            ),
        ));
    }
    if size > p.buffer_memory.0 {
        return Err((
            "records.value",
            value_key,
            format!(
                "RecordTooLargeException: The message is {size} bytes when serialized which is larger than the total memory buffer you have configured with the buffer.memory configuration ({} bytes; {parts}); every send would fail",
                p.buffer_memory.0
            ),
        ));
    }
    let t = &w.topic;
    if p.acks == Acks::All && t.min_insync_replicas > t.replication_factor {
        return Err((
            "topic",
            "min.insync.replicas",
            format!(
                "min.insync.replicas {} is above replication.factor {}: no ISR can be that large, so every acks=all send would fail with NotEnoughReplicas (Kafka's NotEnoughReplicasException)",
                t.min_insync_replicas, t.replication_factor
            ),
        ));
    }
    let r = &w.records;
    if r.rate > 0.0 {
        if let Some(d) = r.duration {
            let scheduled = r.rate * d.0.as_secs_f64();
            if scheduled < 1.0 {
                return Err((
                    "records",
                    "rate",
                    format!(
                        "rate {} records/s over a duration of {:?} schedules {scheduled:.3} records: below one record, the case would measure nothing; raise the rate to at least {} records/s or lengthen the duration",
                        r.rate,
                        d.0,
                        1.0 / d.0.as_secs_f64()
                    ),
                ));
            }
        }
        let limit = MAX_RATE_PER_THREAD * f64::from(p.threads);
        if r.rate > limit {
            return Err((
                "records",
                "rate",
                format!(
                    "rate {} records/s is above what the open-loop schedule can time: it stamps each send to the nanosecond, so at most {} records/s per thread ({} with {} thread(s)); use rate: 0 for as fast as possible",
                    r.rate,
                    grouped(MAX_RATE_PER_THREAD as u64),
                    grouped(limit as u64),
                    p.threads
                ),
            ));
        }
    }
    if !(r.max_error_ratio.is_finite() && (0.0..=1.0).contains(&r.max_error_ratio)) {
        return Err((
            "records",
            "max_error_ratio",
            format!("must be between 0 and 1 (a share of records + errors), got {}", r.max_error_ratio),
        ));
    }
    Ok(())
}
