//! Reads run without the partition's lock (Kafka's UnifiedLog.read takes none): a reader held in
//! its disk reads by a [`ReadGate`] (a slow disk, played exactly) must not stop the I/O thread from
//! placing, writing and committing the partition's appends, nor retention or truncation from
//! running; and a segment deleted or cut under a held read gives what the log holds afterwards,
//! never an error or bytes of the file as it was. Bounded by counts: a pass takes milliseconds, a
//! failure waits [`WAIT`] for work that never completes.

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use super::io_thread::now_ms;
use super::local::LocalLog;
use super::notify::DataNotify;
use super::reader::ReadGate;
use super::{AppendOutcome, FetchData, LogConfig};
use crate::CompressionType;
use crate::error::Result;
use crate::io::IoBackendKind;
use crate::record::{BatchBuilder, BatchIter};

/// Generous, for a shared and slow host: only a failing run waits this long.
const WAIT: Duration = Duration::from_secs(60);

fn batch(value: &str) -> Vec<u8> {
    let mut b = BatchBuilder::new(CompressionType::None);
    b.append(1_000, None, Some(value.as_bytes()), &[]);
    b.build(0).expect("build batch")
}

fn open(dir: &Path, config: LogConfig) -> Arc<LocalLog> {
    let config = LogConfig { io: IoBackendKind::Pwrite, ..config };
    let backend = crate::io::backend(IoBackendKind::Pwrite, None);
    let storage = Arc::new(crate::io::storage::FsStorage::new());
    Arc::new(LocalLog::open(dir, "t", 1, config, Arc::new(DataNotify::default()), storage, backend).expect("open"))
}

fn append(log: &LocalLog, value: &str) -> Receiver<Result<AppendOutcome>> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    log.append(
        0,
        batch(value),
        Box::new(move |r, _| {
            let _ = tx.send(r);
        }),
    );
    rx
}

fn values(data: &FetchData) -> Vec<String> {
    let mut out = Vec::new();
    for b in BatchIter::new(&data.bytes, 0) {
        for r in b.expect("batch").records().expect("records").iter() {
            out.push(String::from_utf8_lossy(r.expect("record").value.unwrap_or_default()).into_owned());
        }
    }
    out
}

/// Starts a read of partition 0 from `offset` and returns once it is held where its disk reads
/// begin: its thread, and the sender that lets it go on.
fn hold_read(log: &Arc<LocalLog>, offset: i64) -> (JoinHandle<Result<FetchData>>, Sender<()>) {
    hold(log, move |log| log.read(0, offset, usize::MAX, i64::MAX))
}

/// Starts `read` (a read of partition 0) on its own thread and returns once it is held where its
/// disk reads begin: its thread, and the sender that lets it go on.
fn hold<T: Send + 'static>(
    log: &Arc<LocalLog>,
    read: impl FnOnce(&LocalLog) -> T + Send + 'static,
) -> (JoinHandle<T>, Sender<()>) {
    let (gate, entered, release) = ReadGate::new();
    log.with_partition(0, |p| p.read_gate = Some(gate));
    let reader = {
        let log = Arc::clone(log);
        std::thread::spawn(move || read(&log))
    };
    entered.recv_timeout(WAIT).expect("the reader reached its disk read");
    (reader, release)
}

/// Runs `f` on another thread; `None` when it has not finished within [`WAIT`] (it blocks on the
/// held reader).
fn within<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(WAIT).ok()
}

/// Appends `v1`..`v{n}` one at a time, each waited for; how many were acknowledged before the first
/// that was not within [`WAIT`].
fn append_while_held(log: &Arc<LocalLog>, n: usize) -> usize {
    (1..=n).take_while(|i| append(log, &format!("v{i}")).recv_timeout(WAIT).map(|o| o.expect("append")).is_ok()).count()
}

#[test]
fn a_reader_held_in_its_disk_read_does_not_stop_the_writer_committing() {
    const BATCHES: usize = 50;
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    append(&log, "v0").recv_timeout(WAIT).expect("acknowledged").expect("append");
    let (reader, release) = hold_read(&log, 0);
    let committed = append_while_held(&log, BATCHES);
    // Let the reader go either way, so that a failure ends instead of hanging the close.
    release.send(()).unwrap();
    assert_eq!(committed, BATCHES, "the writer committed {committed} of {BATCHES} batches while a reader was held");
    let data = reader.join().expect("reader thread").expect("read");
    assert_eq!(values(&data), ["v0"], "the held read returns what was readable when it began");
    assert_eq!(log.log_end_offset(0), BATCHES as i64 + 1);
    let all = log.read(0, 0, usize::MAX, i64::MAX).expect("read");
    assert_eq!(values(&all).len(), BATCHES + 1);
}

#[test]
fn a_list_offsets_by_time_held_in_its_disk_read_does_not_stop_the_writer_committing() {
    const BATCHES: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    append(&log, "v0").recv_timeout(WAIT).expect("acknowledged").expect("append");
    let (reader, release) = hold(&log, |log| log.offset_for_timestamp(0, 1_000));
    let committed = append_while_held(&log, BATCHES);
    release.send(()).unwrap();
    assert_eq!(committed, BATCHES, "the writer committed {committed} of {BATCHES} batches while ListOffsets was held");
    assert_eq!(reader.join().expect("reader thread").expect("ListOffsets"), Some(0));
}

#[test]
fn a_segment_deleted_by_retention_under_a_held_read_gives_the_new_log_start_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    // Small segments, and retention that only the test runs (every batch is from 1970).
    let config = LogConfig { segment_bytes: 1024, log_retention_check_interval_ms: 3_600_000, ..LogConfig::default() };
    let log = open(dir.path(), config);
    let value = "x".repeat(100);
    for _ in 0..30 {
        append(&log, &value).recv_timeout(WAIT).expect("acknowledged").expect("append");
    }
    // One .log per segment (the active segment's index files are created lazily).
    let segments = std::fs::read_dir(dir.path().join("t-0"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .count();
    assert!(segments >= 3, "{segments} segments");
    // Held at offset 0, in the first (inactive) segment, which retention then deletes.
    let (reader, release) = hold_read(&log, 0);
    let retained = {
        let log = Arc::clone(&log);
        within(move || log.with_partition(0, |p| p.apply_retention(now_ms())))
    };
    release.send(()).unwrap();
    let deleted = retained.expect("retention ran while a reader was held").expect("retention");
    assert_eq!(deleted, segments - 1);
    let data = reader.join().expect("reader thread").expect("a read of a deleted segment is retried, not failed");
    let start = log.log_start_offset(0);
    assert!(start > 0);
    assert!(data.bytes.is_empty(), "nothing below the new log start offset {start} is served");
    let rest = log.read(0, start, usize::MAX, i64::MAX).expect("read");
    assert_eq!(rest.first_offset, start);
    assert_eq!(values(&rest).len() as i64, 30 - start);
}

#[test]
fn a_segment_cut_by_truncation_under_a_held_read_gives_what_the_log_holds_after() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    for v in ["v0", "v1", "v2"] {
        append(&log, v).recv_timeout(WAIT).expect("acknowledged").expect("append");
    }
    // Held in the active segment while a new leader's log replaces offsets 1 and 2 by one batch.
    let (reader, release) = hold_read(&log, 1);
    let replaced = {
        let log = Arc::clone(&log);
        within(move || -> Result<()> {
            log.truncate(0, 1)?;
            append(&log, "w1").recv().expect("acknowledged")?;
            Ok(())
        })
    };
    release.send(()).unwrap();
    replaced.expect("truncation and the next append ran while a reader was held").expect("truncate and append");
    let data = reader.join().expect("reader thread").expect("a read of a cut segment is retried, not failed");
    assert_eq!(data.first_offset, 1);
    assert_eq!(values(&data), ["w1"], "the read serves the log as it is after the cut");
    assert_eq!(data.high_watermark, 2);
}
