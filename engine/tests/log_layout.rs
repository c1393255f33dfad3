//! The partition log's layout, reader and per-append rules, through `TopicLog`'s public API, on
//! every backend: Kafka's file names and index formats, rolls, fetch by offset and by timestamp,
//! retention, idempotence, LogAppendTime, O_DIRECT, discard.

mod log_support;

use std::time::Duration;

use kbench_engine::Error;
use kbench_engine::io::IoBackendKind;
use kbench_engine::log::{LogConfig, TopicLog};
use kbench_engine::record::{BatchIter, ProducerIdentity, TimestampType, offsets};
use log_support::{append, batch, files, plain, read_all};

const WRITING: [IoBackendKind; 2] = [IoBackendKind::IoUring, IoBackendKind::Pwrite];

fn small(io: IoBackendKind) -> LogConfig {
    LogConfig {
        io,
        segment_bytes: 16 * 1024,
        index_interval_bytes: 1024,
        segment_index_bytes: 4096,
        ..LogConfig::default()
    }
}

fn be_i32(b: &[u8]) -> i32 {
    i32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

#[test]
fn segments_roll_at_segment_bytes_with_kafka_names_and_sparse_trimmed_indexes() {
    for io in WRITING {
        let dir = tempfile::tempdir().unwrap();
        let log = TopicLog::open(dir.path(), "orders", 2, small(io)).unwrap();
        assert_eq!(log.io_backend(), io);
        let mut expected = Vec::new();
        for i in 0..60 {
            let o = append(&log, 1, plain(&format!("b{i}"), 3, 300, 1_000 + i)).unwrap();
            assert_eq!(o.base_offset, i * 3, "{io}");
            assert_eq!(o.last_offset, i * 3 + 2, "{io}");
            assert!(!o.duplicate && o.sync_ns == 0 && o.log_append_time_ms == -1);
            for r in 0..3 {
                expected.push((i * 3 + r, format!("b{i}-{r}")));
            }
        }
        assert_eq!(log.log_end_offset(1), 180);
        assert_eq!(log.log_end_offset(0), 0);
        // Every record comes back, at its offset, contiguous.
        let got: Vec<(i64, String)> =
            read_all(&log, 1).into_iter().map(|(o, v)| (o, v.trim_end_matches('.').to_string())).collect();
        assert_eq!(got, expected, "{io}");

        let names = files(&log, 1);
        let logs: Vec<&String> = names.iter().filter(|n| n.ends_with(".log")).collect();
        assert!(logs.len() >= 3, "{io}: 60 x ~1 KiB batches in 16 KiB segments must roll: {names:?}");
        assert_eq!(logs[0], "00000000000000000000.log");
        let p = log.dir(1);
        for (i, name) in logs.iter().enumerate() {
            let base: i64 = name.trim_end_matches(".log").parse().unwrap();
            assert_eq!(name.len(), 24, "20-digit base offset: {name}");
            let seg = std::fs::read(p.join(name)).unwrap();
            assert!(seg.len() as u64 <= 16 * 1024, "{name} exceeds segment.bytes");
            // The first batch of each segment has the segment's base offset.
            assert_eq!(i64::from_be_bytes(seg[..8].try_into().unwrap()), base);
            let active = i == logs.len() - 1;
            if active {
                // Index files are created when first written: at roll, or at close.
                for ext in [".index", ".timeindex"] {
                    assert!(!p.join(name.replace(".log", ext)).exists(), "{io}: the active {ext} exists before close");
                }
            } else {
                let index = std::fs::read(p.join(name.replace(".log", ".index"))).unwrap();
                let timeindex = std::fs::read(p.join(name.replace(".log", ".timeindex"))).unwrap();
                assert!(index.len() < 4096 && index.len().is_multiple_of(8), "{io}: a rolled index is trimmed");
                assert!(
                    timeindex.len().is_multiple_of(12) && !timeindex.is_empty(),
                    "rolled time index trimmed, sealed"
                );
                assert!(!index.is_empty(), "{io}: ~15 KiB with index.interval.bytes=1024 has index entries");
                // Each entry points at a batch whose last offset is the entry's offset.
                let mut last_rel = -1;
                for e in index.chunks_exact(8) {
                    let (rel, pos) = (be_i32(&e[..4]), be_i32(&e[4..]) as usize);
                    assert!(rel > last_rel, "relative offsets increase");
                    last_rel = rel;
                    let b = BatchIter::new(&seg[pos..], pos as u64).next().unwrap().unwrap();
                    assert_eq!(b.header().last_offset(), base + i64::from(rel));
                }
            }
        }
        log.close().unwrap();
        let last = logs.last().unwrap().replace(".log", ".index");
        let len = std::fs::metadata(p.join(last)).unwrap().len();
        assert!(len > 0 && len < 4096 && len.is_multiple_of(8), "{io}: close writes the active index's {len} bytes");
    }
}

#[test]
fn fetch_returns_whole_batches_from_the_one_holding_the_offset() {
    for io in WRITING {
        let dir = tempfile::tempdir().unwrap();
        let log = TopicLog::open(dir.path(), "t", 1, small(io)).unwrap();
        for i in 0..30 {
            append(&log, 0, plain(&format!("b{i}"), 5, 100, 0)).unwrap();
        }
        // Offset 23 is inside the batch 20..=24: that batch comes first; max_bytes 1 still gives one.
        let one = log.read(0, 23, 1).unwrap();
        assert_eq!(one.first_offset, 20);
        assert_eq!(one.high_watermark, 150);
        let batches: Vec<_> = BatchIter::new(&one.bytes, 0).map(|b| b.unwrap().header().base_offset).collect();
        assert_eq!(batches, vec![20]);
        // A larger max_bytes: whole batches only, never past it after the first.
        let some = log.read(0, 23, 2000).unwrap();
        assert!(some.bytes.len() <= 2000);
        let count = BatchIter::new(&some.bytes, 0).count();
        assert!(count > 1);
        assert_eq!(some.bytes.len() % one.bytes.len(), 0, "equal-size batches, none cut");
        // Across segments to the end.
        let all = log.read(0, 0, usize::MAX).unwrap();
        let first_segment: usize = BatchIter::new(&all.bytes, 0).count();
        assert!(first_segment >= 1);
        assert!(log.read(0, 150, 1 << 20).unwrap().bytes.is_empty(), "at the high watermark");
        assert!(log.read(0, 999, 1 << 20).unwrap().bytes.is_empty(), "past it");
        assert!(matches!(log.read(5, 0, 10), Err(Error::UnknownPartition { .. })));
    }
}

#[test]
fn offset_for_timestamp_finds_the_first_batch_at_or_after() {
    let dir = tempfile::tempdir().unwrap();
    let log = TopicLog::open(dir.path(), "t", 1, small(IoBackendKind::IoUring)).unwrap();
    for i in 0..40i64 {
        append(&log, 0, plain("x", 2, 400, (i + 1) * 1000)).unwrap();
    }
    assert_eq!(log.offset_for_timestamp(0, 0).unwrap(), Some(0));
    assert_eq!(log.offset_for_timestamp(0, 1000).unwrap(), Some(0));
    assert_eq!(log.offset_for_timestamp(0, 1001).unwrap(), Some(2));
    assert_eq!(log.offset_for_timestamp(0, 25_500).unwrap(), Some(50));
    assert_eq!(log.offset_for_timestamp(0, 40_000).unwrap(), Some(78));
    assert_eq!(log.offset_for_timestamp(0, 40_001).unwrap(), None);
}

#[test]
fn retention_deletes_whole_old_segments_never_the_active_one() {
    // retention.bytes: keep about 20 KiB.
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_bytes: Some(20 * 1024),
        retention_ms: None,
        log_retention_check_interval_ms: 20,
        ..small(IoBackendKind::IoUring)
    };
    let log = TopicLog::open(dir.path(), "t", 1, config).unwrap();
    for i in 0..100 {
        append(&log, 0, plain(&format!("b{i}"), 1, 1000, 0)).unwrap();
    }
    std::thread::sleep(Duration::from_millis(200));
    // One more append so the thread's loop runs the check after the sleep even if it was waiting.
    append(&log, 0, plain("last", 1, 1000, 0)).unwrap();
    let start = log.log_start_offset(0);
    assert!(start > 0, "retention.bytes deleted nothing");
    let on_disk: u64 = files(&log, 0)
        .iter()
        .filter(|n| n.ends_with(".log"))
        .map(|n| std::fs::metadata(log.dir(0).join(n)).unwrap().len())
        .sum();
    assert!(on_disk < 20 * 1024 + 16 * 1024, "kept {on_disk} bytes");
    let first_log = format!("{start:020}.log");
    assert!(files(&log, 0).contains(&first_log), "the log starts at the first remaining segment");
    let rest = read_all(&log, 0);
    assert_eq!(rest.first().unwrap().0, start);
    assert_eq!(rest.last().unwrap().0, 100);

    // retention.ms: everything but the active segment is older than a day (timestamps of 1970).
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_ms: Some(24 * 3600 * 1000),
        log_retention_check_interval_ms: 20,
        ..small(IoBackendKind::Pwrite)
    };
    let log = TopicLog::open(dir.path(), "t", 1, config).unwrap();
    for i in 0..60 {
        append(&log, 0, plain(&format!("b{i}"), 1, 1000, 5)).unwrap();
    }
    std::thread::sleep(Duration::from_millis(100));
    append(&log, 0, plain("now", 1, 10, kbench_now())).unwrap();
    let logs = files(&log, 0).into_iter().filter(|n| n.ends_with(".log")).count();
    assert_eq!(logs, 1, "only the active segment survives retention.ms");
    assert!(read_all(&log, 0).last().unwrap().1.starts_with("now-0"));
}

fn kbench_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

#[test]
fn idempotent_duplicates_get_the_original_offsets_and_gaps_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = TopicLog::open(dir.path(), "t", 1, small(IoBackendKind::IoUring)).unwrap();
    let id = |seq| ProducerIdentity { producer_id: 42, producer_epoch: 0, base_sequence: seq };
    append(&log, 0, plain("plain", 2, 10, 0)).unwrap();
    let first = append(&log, 0, batch("a", 3, 10, 0, id(0))).unwrap();
    assert_eq!((first.base_offset, first.last_offset), (2, 4));
    let second = append(&log, 0, batch("b", 3, 10, 0, id(3))).unwrap();
    let again = append(&log, 0, batch("a", 3, 10, 0, id(0))).unwrap();
    assert!(again.duplicate);
    assert_eq!((again.base_offset, again.last_offset), (2, 4));
    assert_eq!(log.log_end_offset(0), second.last_offset + 1, "a duplicate is not appended");
    match append(&log, 0, batch("gap", 1, 10, 0, id(9))) {
        Err(Error::OutOfOrderSequence { expected, received, producer_id, .. }) => {
            assert_eq!((expected, received, producer_id), (6, 9, 42));
        }
        other => panic!("expected OutOfOrderSequence, got {other:?}"),
    }
    assert!(!append(&log, 0, batch("c", 1, 10, 0, id(6))).unwrap().duplicate);
}

#[test]
fn log_append_time_is_stamped_and_the_crc_redone() {
    let dir = tempfile::tempdir().unwrap();
    let log = TopicLog::open(dir.path(), "t", 1, small(IoBackendKind::IoUring)).unwrap();
    let mut b = plain("x", 2, 10, 7);
    let attributes = i16::from_be_bytes([b[offsets::ATTRIBUTES], b[offsets::ATTRIBUTES + 1]]) | 0x08;
    b[offsets::ATTRIBUTES..][..2].copy_from_slice(&attributes.to_be_bytes());
    kbench_engine::record::finish_crc(&mut b);
    let before = kbench_now();
    let o = append(&log, 0, b).unwrap();
    assert!(o.log_append_time_ms >= before && o.log_append_time_ms <= kbench_now());
    let fetch = log.read(0, 0, 1 << 20).unwrap();
    let stored = BatchIter::new(&fetch.bytes, 0).next().unwrap().expect("CRC valid after stamping");
    assert_eq!(stored.header().attributes.timestamp_type, TimestampType::LogAppendTime);
    assert_eq!(stored.header().max_timestamp, o.log_append_time_ms);
}

#[test]
fn corrupt_or_short_batches_are_refused_and_nothing_is_appended() {
    let dir = tempfile::tempdir().unwrap();
    let log = TopicLog::open(dir.path(), "t", 1, small(IoBackendKind::IoUring)).unwrap();
    let mut b = plain("x", 2, 10, 0);
    let last = b.len() - 1;
    b[last] ^= 0xff;
    assert!(matches!(append(&log, 0, b), Err(Error::CorruptBatch { .. })));
    assert!(append(&log, 0, vec![0u8; 30]).is_err());
    assert_eq!(log.log_end_offset(0), 0);
    assert_eq!(append(&log, 0, plain("ok", 1, 1, 0)).unwrap().base_offset, 0);
}

#[test]
fn discard_assigns_offsets_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = TopicLog::open(dir.path(), "t", 1, small(IoBackendKind::Discard)).unwrap();
    for i in 0..50 {
        assert_eq!(append(&log, 0, plain("x", 2, 500, 0)).unwrap().base_offset, i * 2);
    }
    log.flush().unwrap();
    assert_eq!(log.log_end_offset(0), 100);
    assert!(log.read(0, 0, 1 << 20).unwrap().bytes.is_empty());
    for name in files(&log, 0).iter().filter(|n| n.ends_with(".log")) {
        assert_eq!(std::fs::metadata(log.dir(0).join(name)).unwrap().len(), 0, "{name}");
    }
}

#[test]
fn close_then_appends_fail_with_closed() {
    let dir = tempfile::tempdir().unwrap();
    let log = TopicLog::open(dir.path(), "t", 1, small(IoBackendKind::IoUring)).unwrap();
    append(&log, 0, plain("x", 1, 1, 0)).unwrap();
    log.close().unwrap();
    assert!(matches!(append(&log, 0, plain("x", 1, 1, 0)), Err(Error::Closed { .. })));
    assert!(log.close().is_ok(), "close is idempotent");
}

#[test]
fn direct_io_writes_aligned_blocks_and_leaves_exact_files() {
    for io in WRITING {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig { direct_io: true, preallocate: true, ..small(io) };
        let log = match TopicLog::open(dir.path(), "d", 1, config.clone()) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("SKIPPED: O_DIRECT not supported here: {e}");
                return;
            }
        };
        // Odd sizes, so every write ends inside a block and the next rewrites it.
        for i in 0..45 {
            append(&log, 0, plain(&format!("b{i}"), 1 + i % 3, 77 + (i * 13) % 500, 0)).unwrap();
        }
        let before = read_all(&log, 0);
        assert_eq!(before.len(), (0..45).map(|i| 1 + i % 3).sum::<i64>() as usize);
        log.close().unwrap();
        // Files hold exactly the batches: no padding left behind.
        for name in files(&log, 0).iter().filter(|n| n.ends_with(".log")) {
            let bytes = std::fs::read(log.dir(0).join(name)).unwrap();
            let mut it = BatchIter::new(&bytes, 0);
            for b in it.by_ref() {
                b.unwrap();
            }
            assert_eq!(it.valid_end(), bytes.len() as u64, "{io}: {name} ends with its last batch");
        }
        // Reopen and append at an unaligned position: the block's head is reread, nothing lost.
        let log = TopicLog::open(dir.path(), "d", 1, config).unwrap();
        let o = append(&log, 0, plain("after", 2, 33, 0)).unwrap();
        assert_eq!(o.base_offset, before.len() as i64);
        let after = read_all(&log, 0);
        assert_eq!(&after[..before.len()], &before[..]);
        assert_eq!(after.len(), before.len() + 2);
    }
}
