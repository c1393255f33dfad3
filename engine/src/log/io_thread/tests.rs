//! The I/O thread's jobs driven one step at a time against the fake backend ([`super::fake`]):
//! writes completing out of order, short or failed, fsyncs succeeding or failing, flush.ms, and the
//! requests around Close. Each step is a call the run loop makes (place, submit, reap, timers), so
//! no test depends on timing.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::fake::{FakeDisk, Outcome};
use super::intake::{Incoming, Request};
use super::state::State;
use super::timers::Timers;
use super::{IoThread, now_ms};
use crate::CompressionType;
use crate::error::{Error, Result};
use crate::io::Waker;
use crate::io::storage::{FsStorage, Storage};
use crate::log::notify::DataNotify;
use crate::log::offline::LogDirHealth;
use crate::log::partition::PartitionLog;
use crate::log::{AppendOutcome, Counters, LogConfig};
use crate::record::BatchBuilder;

/// Callbacks run so far: (the append's number, its outcome), in the order they ran.
type Outcomes = Arc<Mutex<Vec<(usize, Result<AppendOutcome>)>>>;

struct Rig {
    dir: tempfile::TempDir,
    io: IoThread,
    st: State,
    disk: FakeDisk,
    outcomes: Outcomes,
    appended: usize,
    _requests: crossbeam_channel::Sender<Request>,
}

fn open_partition(dir: &Path) -> PartitionLog {
    let storage: Arc<dyn Storage> = Arc::new(FsStorage::new());
    PartitionLog::open(storage, dir.join("t-0"), "t-0".into(), LogConfig::default(), now_ms()).expect("open")
}

fn rig(flush_messages: Option<u64>, flush_ms: Option<u64>) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let disk = FakeDisk::default();
    let (tx, rx) = crossbeam_channel::unbounded();
    let partitions: Arc<[Mutex<PartitionLog>]> = vec![Mutex::new(open_partition(dir.path()))].into();
    let io = IoThread {
        partitions,
        backend: disk.backend(),
        requests: rx,
        waker: Arc::new(Waker::new().unwrap()),
        flush_messages,
        flush_ms,
        retention_check: Duration::from_secs(3600),
        direct: false,
        stats: Arc::new(Counters::default()),
        notify: Arc::new(DataNotify::default()),
        health: Arc::new(LogDirHealth::new(dir.path().to_path_buf())),
        ack_before_sync: false,
    };
    Rig { dir, io, st: State::new(1), disk, outcomes: Outcomes::default(), appended: 0, _requests: tx }
}

fn batch(value: &str) -> Vec<u8> {
    let mut b = BatchBuilder::new(CompressionType::None);
    b.append(1_000, None, Some(value.as_bytes()), &[]);
    b.build(0).expect("build batch")
}

impl Rig {
    /// An append's callback: records its outcome under its number.
    fn callback(&mut self) -> (usize, crate::log::AppendCallback) {
        let id = self.appended;
        self.appended += 1;
        let outcomes = Arc::clone(&self.outcomes);
        (id, Box::new(move |r, _| outcomes.lock().unwrap().push((id, r))))
    }

    /// Places one append and submits its write (each append its own write).
    fn append(&mut self, value: &str) -> usize {
        let (id, done) = self.callback();
        let incoming = Incoming { batch: batch(value), done, enqueued: Instant::now(), follower: false };
        self.io.place(&mut self.st, 0, incoming, now_ms());
        self.io.submit_all(&mut self.st);
        id
    }

    fn reap(&mut self) {
        self.io.reap(&mut self.st, None);
    }

    /// The numbers of the appends acknowledged so far, in the order they were.
    fn acked(&self) -> Vec<usize> {
        self.outcomes.lock().unwrap().iter().filter(|(_, r)| r.is_ok()).map(|(id, _)| *id).collect()
    }

    /// The errors of the appends failed so far, by number.
    fn failed(&self) -> Vec<(usize, Error)> {
        let outcomes = self.outcomes.lock().unwrap();
        outcomes.iter().filter_map(|(id, r)| r.as_ref().err().map(|e| (*id, e.clone()))).collect()
    }

    fn high_watermark(&self) -> i64 {
        self.io.lock(0).high_watermark
    }

    /// The offset after the last batch that reopening the partition (recovery) finds.
    fn recovered_end(self) -> i64 {
        let Rig { dir, io, .. } = self;
        drop(io);
        open_partition(dir.path()).high_watermark
    }
}

/// A KafkaStorageException naming `operation` and the active segment's file.
fn assert_storage_error(e: &Error, operation: &str) {
    let text = e.to_string();
    assert!(matches!(e, Error::KafkaStorage { .. }), "not a KafkaStorageException: {text}");
    assert!(text.contains(operation) && text.contains("00000000000000000000.log"), "names no {operation}/file: {text}");
}

#[test]
fn writes_completing_out_of_order_are_readable_and_acknowledged_in_offset_order() {
    let mut r = rig(None, None);
    let ids: Vec<usize> = ["a", "b", "c"].iter().map(|v| r.append(v)).collect();
    assert_eq!(r.disk.writes(), 3, "one write per append");
    // The last write completes first, then the middle one: the first is still in flight, so
    // nothing after it is readable or acknowledged.
    r.disk.complete_write(2, Outcome::Whole);
    r.reap();
    r.disk.complete_write(1, Outcome::Whole);
    r.reap();
    assert!(r.acked().is_empty(), "acknowledged past a write in flight: {:?}", r.acked());
    assert_eq!(r.high_watermark(), 0, "readable past a write in flight");
    r.disk.complete_write(0, Outcome::Whole);
    r.reap();
    assert_eq!(r.acked(), ids, "acknowledged in offset order");
    let offsets: Vec<i64> = r.outcomes.lock().unwrap().iter().map(|(_, o)| o.as_ref().unwrap().base_offset).collect();
    assert_eq!(offsets, [0, 1, 2]);
    assert_eq!(r.high_watermark(), 3);
    assert_eq!(r.recovered_end(), 3, "every acknowledged batch is in the file");
}

#[test]
fn a_short_write_is_never_acknowledged_and_everything_after_it_fails() {
    let mut r = rig(None, None);
    r.append("first");
    r.disk.complete_write(0, Outcome::Whole);
    r.reap();
    assert_eq!(r.acked(), [0]);
    let torn = r.append("torn");
    let after = r.append("after");
    // The write after it completes whole, then this one writes 10 bytes and meets a full disk.
    r.disk.complete_write(1, Outcome::Whole);
    r.reap();
    r.disk.complete_write(0, Outcome::Short { bytes: 10, errno: libc::ENOSPC });
    r.reap();
    assert_eq!(r.acked(), [0], "a short write or one after it acknowledged");
    let failed = r.failed();
    assert_eq!(failed.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [torn, after]);
    for (_, e) in &failed {
        assert_storage_error(e, "write");
        assert!(e.to_string().contains("space"), "{e}");
    }
    assert_eq!(r.high_watermark(), 1);
    assert!(r.io.health.is_offline());
    // Fail-stop: a later append fails at once, naming the same write; nothing more is written.
    let later = r.append("later");
    assert_eq!(r.disk.writes(), 0);
    let e = r.failed().into_iter().find(|(id, _)| *id == later).expect("failed at once").1;
    assert_storage_error(&e, "write");
    // Recovery cuts the torn bytes: the log ends after the acknowledged batch.
    assert_eq!(r.recovered_end(), 1);
}

#[test]
fn a_failed_write_fails_the_batches_in_flight_once_they_are_reaped() {
    let mut r = rig(None, None);
    for v in ["a", "b", "c"] {
        r.append(v);
    }
    r.disk.complete_write(0, Outcome::Fail(libc::EIO));
    r.reap();
    assert!(r.acked().is_empty());
    // The writes still in flight complete (whole) later: their batches fail, none is acknowledged.
    r.disk.complete_writes();
    r.reap();
    assert!(r.acked().is_empty(), "acknowledged after a failed write: {:?}", r.acked());
    let failed = r.failed();
    assert_eq!(failed.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [0, 1, 2]);
    for (_, e) in &failed {
        assert_storage_error(e, "write");
    }
    assert_eq!(r.high_watermark(), 0);
}

#[test]
fn with_flush_messages_one_fsync_covers_only_the_batches_written_before_it_started() {
    let mut r = rig(Some(1), None);
    r.append("a");
    r.disk.complete_write(0, Outcome::Whole);
    r.reap();
    // Written, its fsync started (segment and directory): neither readable nor acknowledged.
    assert!(r.disk.syncs() >= 1);
    assert!(r.acked().is_empty());
    assert_eq!(r.high_watermark(), 0);
    // Written while that fsync runs: waits for the next one.
    r.append("b");
    r.disk.complete_write(0, Outcome::Whole);
    r.reap();
    r.disk.complete_syncs(None);
    r.reap();
    assert_eq!(r.acked(), [0]);
    assert_eq!(r.high_watermark(), 1, "b is readable before the fsync covering it");
    assert_eq!(r.disk.syncs(), 1, "the next fsync starts when the first completed");
    r.disk.complete_syncs(None);
    r.reap();
    assert_eq!(r.acked(), [0, 1]);
    assert_eq!(r.high_watermark(), 2);
}

#[test]
fn a_failed_fsync_acknowledges_nothing_after_the_last_good_one_and_takes_the_log_offline() {
    let mut r = rig(Some(1), None);
    r.append("synced");
    r.disk.complete_writes();
    r.reap();
    r.disk.complete_syncs(None);
    r.reap();
    assert_eq!(r.acked(), [0]);
    // b's fsync is in flight when c is written; b's fsync fails.
    r.append("b");
    r.disk.complete_writes();
    r.reap();
    r.append("c");
    r.disk.complete_writes();
    r.reap();
    assert_eq!(r.disk.syncs(), 1);
    r.disk.complete_syncs(Some(libc::EIO));
    r.reap();
    assert_eq!(r.acked(), [0], "acknowledged after a failed fsync");
    let failed = r.failed();
    let mut ids: Vec<usize> = failed.iter().map(|(id, _)| *id).collect();
    ids.sort_unstable();
    assert_eq!(ids, [1, 2], "b (its fsync failed) and c (waiting behind it) fail");
    for (_, e) in &failed {
        assert_storage_error(e, "fdatasync");
    }
    assert_eq!(r.high_watermark(), 1, "readable past the last successful fsync");
    assert_eq!(r.disk.syncs(), 0, "an fsync retried after a failed one");
    // Later appends and a flush fail with the same error; nothing more is written or synced.
    r.append("later");
    assert_storage_error(&r.failed().last().expect("failed at once").1, "fdatasync");
    assert_storage_error(&r.io.flush_all(&mut r.st).expect_err("flush fails"), "fdatasync");
    assert_eq!((r.disk.writes(), r.disk.syncs()), (0, 0));
}

#[test]
fn flush_ms_starts_an_fsync_of_what_was_written() {
    let mut r = rig(None, Some(0));
    let mut timers = Timers::new(r.io.flush_ms, r.io.retention_check);
    r.append("a");
    r.disk.complete_writes();
    r.reap();
    assert_eq!(r.acked(), [0], "acknowledged at its write without flush.messages");
    assert_eq!(r.disk.syncs(), 0);
    r.io.run_timers(&mut r.st, &mut timers);
    assert!(r.disk.syncs() >= 1, "flush.ms started no fsync");
    r.disk.complete_syncs(None);
    r.reap();
    // Nothing left unsynced: the next tick starts none.
    r.io.run_timers(&mut r.st, &mut timers);
    assert_eq!(r.disk.syncs(), 0);
}

#[test]
fn flush_ms_looks_only_at_partitions_written_since_its_last_tick() {
    let mut r = rig(None, Some(0));
    let mut timers = Timers::new(r.io.flush_ms, r.io.retention_check);
    assert_eq!(r.st.flush_list, [0], "every partition is listed at open (its directory is unsynced)");
    r.io.run_timers(&mut r.st, &mut timers);
    r.disk.complete_syncs(None);
    r.reap();
    assert!(r.st.flush_list.is_empty(), "a tick takes what it looked at off the list");
    r.io.run_timers(&mut r.st, &mut timers);
    assert_eq!(r.disk.syncs(), 0, "nothing written, nothing listed");
    // A write lists its partition again, and the next tick syncs it.
    r.append("a");
    r.disk.complete_writes();
    r.reap();
    assert_eq!(r.st.flush_list, [0], "listed once, however often it was placed into or completed");
    r.io.run_timers(&mut r.st, &mut timers);
    assert!(r.disk.syncs() >= 1, "flush.ms missed a partition written after its last tick");
    r.disk.complete_syncs(None);
    r.reap();
    r.io.run_timers(&mut r.st, &mut timers);
    assert_eq!(r.disk.syncs(), 0);
}

#[test]
fn a_round_runs_what_came_before_close_and_refuses_what_came_after() {
    let mut r = rig(None, None);
    r.disk.set_auto();
    let (_, before) = r.callback();
    let (_, after) = r.callback();
    let (flush_tx, flush_rx) = crossbeam_channel::bounded(1);
    let mut round = vec![
        Request::Append {
            partition: 0,
            batch: batch("before"),
            done: before,
            enqueued: Instant::now(),
            follower: false,
        },
        Request::Close,
        Request::Append { partition: 0, batch: batch("after"), done: after, enqueued: Instant::now(), follower: false },
        Request::Flush(flush_tx),
    ];
    assert!(r.io.handle_round(&mut r.st, &mut round), "Close seen");
    r.io.flush_all(&mut r.st).expect("what came before is written and synced");
    assert_eq!(r.acked(), [0]);
    let failed = r.failed();
    assert_eq!(failed.len(), 1);
    assert!(matches!(failed[0], (1, Error::Closed { .. })), "{failed:?}");
    assert!(matches!(flush_rx.try_recv(), Ok(Err(Error::Closed { .. }))));
    assert_eq!(r.high_watermark(), 1);
}
