//! `kbench inspect PATH`: a segment's batches (and records), like Kafka's kafka-dump-log.
//!
//! PATH is a `.log` file or a partition directory (every `.log` in base-offset order). Text output
//! mirrors DumpLogSegments' fields; `--json` prints one document per file:
//! `{"file", "batches": [{baseOffset, lastOffset, count, position, ...}], "partial_tail", "error"}`,
//! complete (keys and values never shortened), with Kafka's int64 fields (offsets, timestamps,
//! producerId) as decimal strings, which JSON readers holding numbers as doubles cannot round; a
//! path that cannot be read is a document too (`{"file", "error"}`). Output into a closed pipe
//! (`kbench inspect DIR | head`) ends the command quietly.
//! A corrupt file is reported at its first bad batch (file and byte position) after everything
//! before it, and the command fails; a torn tail is reported as such.

use std::path::{Path, PathBuf};

use anyhow::Context;
use kbench_engine::record::{BatchIter, RecordBatch, TimestampType, compute_crc};
use serde_json::json;

/// `kbench inspect` arguments.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// A `.log` segment or a partition directory.
    pub path: PathBuf,
    /// Print every record: offset, timestamp, key, value, headers.
    #[arg(long)]
    pub records: bool,
    /// Print keys and values as hex.
    #[arg(long)]
    pub hex: bool,
    /// Do not shorten long keys and values (`--json` never does).
    #[arg(long)]
    pub full: bool,
    /// One JSON document per file, for machines: complete, int64 fields as strings.
    #[arg(long)]
    pub json: bool,
}

/// Runs `kbench inspect`.
pub fn run(args: &InspectArgs) -> anyhow::Result<()> {
    // SAFETY: signal(2) with SIG_DFL only restores the default action of SIGPIPE (Rust's runtime sets
    // it to ignored), before any thread of ours exists: a reader that closes the pipe ends the process
    // as it ends `cat`, instead of println! panicking on EPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let files = match segment_files(&args.path) {
        Ok(f) => f,
        Err(e) if args.json => {
            println!("{}", json!({"file": args.path.display().to_string(), "error": format!("{e:#}")}));
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    let mut failure = None;
    for file in files {
        if let Err(e) = inspect_file(&file, args) {
            failure.get_or_insert(e);
        }
    }
    failure.map_or(Ok(()), Err)
}

fn segment_files(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if path.is_dir() {
        let mut logs: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("listing {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect();
        logs.sort();
        if logs.is_empty() {
            anyhow::bail!("{} holds no .log segment", path.display());
        }
        Ok(logs)
    } else {
        Ok(vec![path.to_path_buf()])
    }
}

fn show(bytes: Option<&[u8]>, args: &InspectArgs) -> String {
    let Some(b) = bytes else { return "null".into() };
    let limit = if args.full || args.json { usize::MAX } else { 64 };
    let text = std::str::from_utf8(b)
        .ok()
        .filter(|s| !args.hex && s.chars().all(|c| !c.is_control() || c == '\n' || c == '\t'));
    let mut s = match text {
        Some(t) => t.chars().take(limit).collect::<String>(),
        None => b.iter().take(limit).map(|x| format!("{x:02x}")).collect(),
    };
    if b.len() > limit {
        s.push_str(&format!("... ({} bytes)", b.len()));
    }
    s
}

fn batch_json(b: &RecordBatch<'_>) -> serde_json::Value {
    let h = b.header();
    let uncompressed = b.records().map(|r| r.as_bytes().len()).ok();
    json!({
        "baseOffset": h.base_offset.to_string(), "lastOffset": h.last_offset().to_string(), "count": h.records_count,
        "position": b.position(), "size": b.size_in_bytes(), "uncompressedRecordsSize": uncompressed,
        "compresscodec": h.attributes.compression.name(),
        "timestampType": if h.attributes.timestamp_type == TimestampType::LogAppendTime { "LogAppendTime" } else { "CreateTime" },
        "baseTimestamp": h.base_timestamp.to_string(), "maxTimestamp": h.max_timestamp.to_string(),
        "crc": h.crc, "isvalid": compute_crc(b.as_bytes()) == h.crc,
        "isTransactional": h.attributes.is_transactional, "isControl": h.attributes.is_control,
        "producerId": h.producer_id.to_string(), "producerEpoch": h.producer_epoch, "baseSequence": h.base_sequence,
        "partitionLeaderEpoch": h.partition_leader_epoch,
    })
}

fn inspect_file(file: &Path, args: &InspectArgs) -> anyhow::Result<()> {
    let bytes = match std::fs::read(file).with_context(|| format!("reading {}", file.display())) {
        Ok(b) => b,
        Err(e) => {
            if args.json {
                println!("{}", json!({"file": file.display().to_string(), "error": format!("{e:#}")}));
            }
            return Err(e);
        }
    };
    let mut iter = BatchIter::with_max_batch_size(&bytes, 0, usize::MAX);
    let mut batches = Vec::new();
    let mut error = None;
    if !args.json {
        println!("Dumping {}", file.display());
    }
    for item in iter.by_ref() {
        let batch = match item {
            Ok(b) => b,
            Err(e) => {
                error = Some(format!("{}: {e}", file.display()));
                break;
            }
        };
        let h = *batch.header();
        let mut entry = batch_json(&batch);
        let mut records_json = Vec::new();
        if !args.json {
            println!(
                "baseOffset: {} lastOffset: {} count: {} baseSequence: {} lastSequence: {} producerId: {} producerEpoch: {} partitionLeaderEpoch: {} isTransactional: {} isControl: {} position: {} CreateTime: {} size: {} magic: 2 compresscodec: {} crc: {} isvalid: {}",
                h.base_offset,
                h.last_offset(),
                h.records_count,
                h.base_sequence,
                h.last_sequence(),
                h.producer_id,
                h.producer_epoch,
                h.partition_leader_epoch,
                h.attributes.is_transactional,
                h.attributes.is_control,
                batch.position(),
                h.max_timestamp,
                batch.size_in_bytes(),
                h.attributes.compression.name(),
                h.crc,
                entry["isvalid"]
            );
        }
        if args.records {
            let records = match batch.records() {
                Ok(r) => r,
                Err(e) => {
                    error = Some(format!("{}: {e}", file.display()));
                    break;
                }
            };
            for r in records.iter() {
                let r = match r {
                    Ok(r) => r,
                    Err(e) => {
                        error = Some(format!("{}: {e}", file.display()));
                        break;
                    }
                };
                let offset = h.base_offset.wrapping_add(i64::from(r.offset_delta));
                let ts = h.base_timestamp.wrapping_add(r.timestamp_delta);
                let headers: Vec<String> = r
                    .headers()
                    .map(|hd| format!("{}:{}", String::from_utf8_lossy(hd.key), show(hd.value, args)))
                    .collect();
                if args.json {
                    records_json.push(json!({
                        "offset": offset.to_string(), "timestamp": ts.to_string(),
                        "key": r.key.map(|k| show(Some(k), args)), "value": r.value.map(|v| show(Some(v), args)),
                        "headers": headers,
                    }));
                } else {
                    println!(
                        "| offset: {offset} CreateTime: {ts} keySize: {} valueSize: {} headerKeys: [{}] key: {} payload: {}",
                        r.key.map_or(-1, |k| k.len() as i64),
                        r.value.map_or(-1, |v| v.len() as i64),
                        headers.join(","),
                        show(r.key, args),
                        show(r.value, args)
                    );
                }
            }
            if error.is_some() {
                break;
            }
            entry["records"] = json!(records_json);
        }
        batches.push(entry);
    }
    let tail = iter.partial_tail();
    if args.json {
        println!(
            "{}",
            json!({"file": file.display().to_string(), "batches": batches, "partial_tail": tail, "error": error})
        );
    } else if let Some(pos) = tail {
        println!("Partial batch at position {pos} (a torn write at the tail; {} bytes)", bytes.len() as u64 - pos);
    }
    match error {
        Some(e) => anyhow::bail!("{e}"),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(path: PathBuf) -> InspectArgs {
        InspectArgs { path, records: true, hex: false, full: false, json: true }
    }

    #[test]
    fn reads_all_five_kafka_python_codecs() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/tests/fixtures");
        for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
            run(&args(dir.join(format!("kafka-python-{codec}.log")))).unwrap_or_else(|e| panic!("{codec}: {e}"));
        }
    }

    #[test]
    fn corruption_is_an_error_naming_file_and_position_and_a_torn_tail_is_not() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/tests/fixtures/kafka-python-none.log");
        let bytes = std::fs::read(&src).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let torn = dir.path().join("torn.log");
        std::fs::write(&torn, &bytes[..bytes.len() - 3]).unwrap();
        run(&args(torn)).unwrap();
        let mut bad = bytes.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        let corrupt = dir.path().join("corrupt.log");
        std::fs::write(&corrupt, &bad).unwrap();
        let e = run(&args(corrupt)).unwrap_err().to_string();
        assert!(e.contains("corrupt.log") && e.contains("byte"), "{e}");
    }
}
