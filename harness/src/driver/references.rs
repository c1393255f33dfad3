//! The machine's physical limits, for the report's reference lines: the disk's figure from the last
//! `scripts/disk-baseline.sh`, and the raw compression speed, on this workload's payload, of each
//! codec its cases use (none when no case compresses: nothing then delays the first case).

use std::path::Path;
use std::time::{Duration, Instant};

use kbench_engine::CompressionType;
use kbench_engine::compression::compress;

use super::payload::PayloadGenerator;
use crate::results::schema::References;
use crate::workload::Workload;

/// Where scripts/disk-baseline.sh leaves its summary (inside the results root).
pub(crate) const DISK_BASELINE_FILE: &str = "disk-baseline.json";

/// Bytes of payload each codec compresses for its figure: large enough to leave cache effects behind,
/// small enough to cost well under a second for all codecs together.
const SAMPLE_BYTES: usize = 4 << 20;

pub(crate) fn measure(workload: &Workload, codecs: &[CompressionType], results_root: &Path) -> References {
    let mut refs = References::default();
    read_disk_baseline(&results_root.join(DISK_BASELINE_FILE), &mut refs);
    if codecs.iter().all(|c| *c == CompressionType::None) {
        return refs;
    }
    let Ok(mut values) = PayloadGenerator::new(&workload.records.value, 7) else {
        return refs;
    };
    let mut sample = Vec::with_capacity(SAMPLE_BYTES);
    while sample.len() < SAMPLE_BYTES {
        // At most SAMPLE_BYTES whatever the value size: a value of gigabytes must not make every
        // codec compress gigabytes before the first case starts.
        let value = values.next();
        let take = value.len().min(SAMPLE_BYTES - sample.len());
        sample.extend_from_slice(&value[..take]);
        if value.is_empty() {
            break;
        }
    }
    // Batches are compressed one at a time, so measure at a typical batch's size.
    let chunk = 64 * 1024;
    for codec in CompressionType::ALL.into_iter().filter(|c| *c != CompressionType::None && codecs.contains(c)) {
        let mut out = Vec::with_capacity(chunk * 2);
        let started = Instant::now();
        let mut done = 0usize;
        for piece in sample.chunks(chunk) {
            out.clear();
            if compress(codec, None, piece, &mut out).is_err() {
                break;
            }
            done += piece.len();
        }
        let elapsed = started.elapsed().max(Duration::from_nanos(1));
        if done > 0 {
            refs.codec_compress_bytes_per_sec.insert(codec.name().to_string(), done as f64 / elapsed.as_secs_f64());
        }
    }
    refs
}

fn read_disk_baseline(path: &Path, refs: &mut References) {
    let Ok(text) = std::fs::read_to_string(path) else { return };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else { return };
    refs.disk_write_bytes_per_sec = json.get("fio_write_bytes_per_sec").and_then(serde_json::Value::as_f64);
    refs.disk_fsyncs_per_sec = json.get("fio_fsyncs_per_sec").and_then(serde_json::Value::as_f64);
    refs.disk_read_bytes_per_sec = json.get("fio_read_bytes_per_sec").and_then(serde_json::Value::as_f64);
    if refs.disk_write_bytes_per_sec.is_some() || refs.disk_fsyncs_per_sec.is_some() {
        refs.disk_source = Some(path.display().to_string());
    }
}
