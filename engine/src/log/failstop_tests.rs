//! Fail-stop and Kafka's flush-then-visible order, driven by the failpoint backend
//! ([`crate::io::faulty`]): each test fails a chosen write or fdatasync, or holds fdatasyncs.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{AppendOutcome, LogConfig, RequiredAcks, TopicLog};
use crate::CompressionType;
use crate::error::{Error, Result};
use crate::io::IoBackendKind;
use crate::io::faulty::{Failpoints, Faulty};
use crate::record::{BatchBuilder, BatchIter};

fn batch(value: &str) -> Vec<u8> {
    let mut b = BatchBuilder::new(CompressionType::None);
    b.append(1_000, None, Some(value.as_bytes()), &[]);
    b.build(0).expect("build batch")
}

fn append_async(log: &TopicLog, acks: RequiredAcks, value: &str) -> crossbeam_channel::Receiver<Result<AppendOutcome>> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    log.append_with(
        0,
        batch(value),
        acks,
        Box::new(move |r, _| {
            let _ = tx.send(r);
        }),
    );
    rx
}

fn append(log: &TopicLog, acks: RequiredAcks, value: &str) -> Result<AppendOutcome> {
    append_async(log, acks, value).recv().expect("the callback runs once")
}

/// The values served from offset 0.
fn values(log: &TopicLog) -> Result<Vec<String>> {
    let data = log.read(0, 0, usize::MAX)?;
    let mut out = Vec::new();
    for b in BatchIter::new(&data.bytes, 0) {
        for r in b?.records()?.iter() {
            out.push(String::from_utf8_lossy(r?.value.unwrap_or_default()).into_owned());
        }
    }
    Ok(out)
}

fn open(dir: &Path, config: LogConfig, points: &[Arc<Failpoints>]) -> TopicLog {
    let points = points.to_vec();
    TopicLog::open_with_backends(dir, "t", 1, config, &move |b| Box::new(Faulty::new(Arc::clone(&points[b as usize]))))
        .expect("open")
}

fn assert_storage_error(e: &Error, operation: &str) {
    let text = e.to_string();
    assert!(matches!(e, Error::KafkaStorage { .. }), "not a KafkaStorageException: {text}");
    assert!(text.contains(operation) && text.contains("00000000000000000000.log"), "names no {operation}/file: {text}");
}

fn config() -> LogConfig {
    LogConfig { io: IoBackendKind::Pwrite, flush_messages: Some(1), ..LogConfig::default() }
}

#[test]
fn a_failed_fsync_takes_the_log_offline_and_reopening_recovers_what_was_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let points = Arc::new(Failpoints::default());
    let log = open(dir.path(), config(), &[Arc::clone(&points)]);
    append(&log, RequiredAcks::Leader, "v0").expect("the first append is acknowledged");
    // The next fdatasync (of the segment) fails.
    points.fail_sync.store(points.syncs.load(Ordering::Acquire) + 1, Ordering::Release);
    let e = append(&log, RequiredAcks::Leader, "v1").expect_err("its fsync failed");
    assert_storage_error(&e, "fdatasync");
    // Fail-stop: a later append, a read and a flush all fail, naming the same failure.
    let e = append(&log, RequiredAcks::Leader, "v2").expect_err("the directory is offline");
    assert_storage_error(&e, "fdatasync");
    assert_storage_error(&values(&log).expect_err("reads fail too"), "fdatasync");
    assert_storage_error(&log.flush().expect_err("flush fails"), "fdatasync");
    drop(log);
    // Reopening runs recovery: what was acknowledged is there, v2 (never written) is not.
    let log = open(dir.path(), config(), &[Arc::new(Failpoints::default())]);
    let served = values(&log).unwrap();
    assert_eq!(served.first().map(String::as_str), Some("v0"));
    assert!(!served.iter().any(|v| v == "v2"), "{served:?}");
    assert!(append(&log, RequiredAcks::Leader, "v3").is_ok());
}

#[test]
fn a_failed_write_takes_the_log_offline() {
    let dir = tempfile::tempdir().unwrap();
    let points = Arc::new(Failpoints::default());
    points.errno.store(libc::ENOSPC as u64, Ordering::Release);
    let config = LogConfig { flush_messages: None, ..config() };
    let log = open(dir.path(), config.clone(), &[Arc::clone(&points)]);
    append(&log, RequiredAcks::Leader, "v0").expect("the first append is acknowledged");
    points.fail_write.store(points.writes.load(Ordering::Acquire) + 1, Ordering::Release);
    let e = append(&log, RequiredAcks::Leader, "v1").expect_err("its write failed");
    assert_storage_error(&e, "write");
    assert!(e.to_string().contains("space"), "{e}");
    // Before fail-stop the log rolled back and took the next append as if nothing had happened.
    assert_storage_error(&append(&log, RequiredAcks::Leader, "v2").expect_err("offline"), "write");
    drop(log);
    let log = open(dir.path(), config, &[Arc::new(Failpoints::default())]);
    assert_eq!(values(&log).unwrap(), ["v0"]);
}

#[test]
fn with_a_flush_due_a_batch_is_readable_and_acknowledged_only_after_its_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let points = Arc::new(Failpoints::default());
    points.hold_syncs.store(true, Ordering::Release);
    let log = open(dir.path(), config(), &[Arc::clone(&points)]);
    let acked = append_async(&log, RequiredAcks::Leader, "v0");
    // Wait (bounded by a count, not a time) until the batch is written and its fsync is queued.
    let mut polls = 0;
    while points.syncs.load(Ordering::Acquire) == 0 {
        polls += 1;
        assert!(polls < 100_000, "the fsync never started");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(points.writes.load(Ordering::Acquire) >= 1);
    // Written, not yet flushed: neither readable nor acknowledged (Kafka's UnifiedLog.append
    // flushes before the high watermark moves and the produce request completes).
    assert_eq!(log.log_end_offset(0), 0, "readable before its fsync");
    assert!(values(&log).unwrap().is_empty());
    assert!(acked.try_recv().is_err(), "acknowledged before its fsync");
    points.hold_syncs.store(false, Ordering::Release);
    let outcome = acked.recv().unwrap().expect("acknowledged after the fsync");
    assert_eq!(outcome.base_offset, 0);
    assert_eq!(log.log_end_offset(0), 1);
    assert_eq!(values(&log).unwrap(), ["v0"]);
}

#[test]
fn a_replica_whose_disk_failed_leaves_the_isr_and_leadership_moves() {
    let dir = tempfile::tempdir().unwrap();
    let points: Vec<Arc<Failpoints>> = (0..3).map(|_| Arc::new(Failpoints::default())).collect();
    let config = LogConfig { replication_factor: 3, min_insync_replicas: 2, ..config() };
    let log = open(dir.path(), config, &points);
    append(&log, RequiredAcks::AllInSync, "v0").expect("acks=all with three replicas");
    let leader = log.replica_status(0).unwrap().unwrap().leader.expect("a leader");
    let failing = &points[leader as usize];
    failing.fail_sync.store(failing.syncs.load(Ordering::Acquire) + 1, Ordering::Release);
    let e = append(&log, RequiredAcks::AllInSync, "v1").expect_err("the leader's fsync failed");
    assert!(matches!(e, Error::KafkaStorage { .. }), "{e}");
    // The ISR thread notices the offline directory: the broker leaves the ISR and a new leader is
    // elected (bounded by a count of polls).
    let mut polls = 0;
    let status = loop {
        let s = log.replica_status(0).unwrap().unwrap();
        if s.leader.is_some_and(|l| l != leader) && !s.isr.contains(&leader) {
            break s;
        }
        polls += 1;
        assert!(polls < 100_000, "leadership never moved: {s:?}");
        std::thread::sleep(Duration::from_millis(1));
    };
    assert_eq!(status.isr.len(), 2, "{status:?}");
    let o = append(&log, RequiredAcks::AllInSync, "v2").expect("the new leader takes acks=all appends");
    assert!(o.base_offset >= 1);
    let served = values(&log).unwrap();
    assert_eq!(served.first().map(String::as_str), Some("v0"));
    assert_eq!(served.last().map(String::as_str), Some("v2"));
    // A broker whose directory is offline cannot simply be started again.
    let e = log.start_broker(leader).expect_err("its disk failed");
    assert!(matches!(e, Error::KafkaStorage { .. }), "{e}");
}
