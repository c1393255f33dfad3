//! The log over the storage seam (`io/storage.rs`): every segment file operation goes through the
//! log's `Storage`, opening read-only where it only reads, and the same log runs over the real
//! filesystem and over the in-memory simulated disk.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{LogConfig, TopicLog};
use crate::CompressionType;
use crate::io::sim::SimDisk;
use crate::io::storage::{Access, FileHandle, FsStorage, Storage};
use crate::io::through::Through;
use crate::io::{Backend, IoBackendKind};
use crate::record::{BatchBuilder, BatchIter};

/// The real filesystem, recording how each file is opened.
#[derive(Debug, Default)]
struct Recording {
    inner: FsStorage,
    opens: Mutex<Vec<(PathBuf, Access)>>,
}

impl Recording {
    fn take(&self) -> Vec<(PathBuf, Access)> {
        std::mem::take(&mut *self.opens.lock().unwrap())
    }
}

impl Storage for Recording {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn create(&self, path: &Path) -> io::Result<FileHandle> {
        self.opens.lock().unwrap().push((path.to_path_buf(), Access::ReadWrite));
        self.inner.create(path)
    }
    fn open_as(&self, path: &Path, access: Access) -> io::Result<FileHandle> {
        self.opens.lock().unwrap().push((path.to_path_buf(), access));
        self.inner.open_as(path, access)
    }
    fn raw_fd(&self, file: FileHandle) -> Option<std::os::fd::RawFd> {
        self.inner.raw_fd(file)
    }
    fn close(&self, file: FileHandle) {
        self.inner.close(file)
    }
    fn write_at(&self, file: FileHandle, offset: u64, bufs: &[&[u8]]) -> io::Result<()> {
        self.inner.write_at(file, offset, bufs)
    }
    fn read_at(&self, file: FileHandle, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read_at(file, offset, buf)
    }
    fn sync_data(&self, file: FileHandle) -> io::Result<()> {
        self.inner.sync_data(file)
    }
    fn allocate(&self, file: FileHandle, len: u64) -> io::Result<()> {
        self.inner.allocate(file, len)
    }
    fn set_len(&self, file: FileHandle, len: u64) -> io::Result<()> {
        self.inner.set_len(file, len)
    }
    fn len(&self, file: FileHandle) -> io::Result<u64> {
        self.inner.len(file)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.inner.remove(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner.sync_dir(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }
}

fn batch(value: &str) -> Vec<u8> {
    let mut b = BatchBuilder::new(CompressionType::None);
    b.append(1_000, None, Some(value.as_bytes()), &[]);
    b.build(0).expect("build batch")
}

fn append(log: &TopicLog, value: &str) {
    let (tx, rx) = crossbeam_channel::bounded(1);
    log.append(
        0,
        batch(value),
        Box::new(move |r, _| {
            let _ = tx.send(r);
        }),
    );
    rx.recv().expect("the callback runs once").expect("append");
}

fn values(log: &TopicLog) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let data = log.read(0, out.len() as i64, usize::MAX).expect("read");
        if data.bytes.is_empty() {
            return out;
        }
        for b in BatchIter::new(&data.bytes, 0) {
            for r in b.expect("whole batch").records().expect("records").iter() {
                out.push(String::from_utf8_lossy(r.expect("record").value.unwrap_or_default()).into_owned());
            }
        }
    }
}

/// The log over `storage`, written by the `pwrite` backend (through descriptors) or, with
/// `through`, by the storage's own calls.
fn open(dir: &Path, config: &LogConfig, storage: &Arc<dyn Storage>, through: bool) -> TopicLog {
    let s = Arc::clone(storage);
    let storage = move |_: u32| -> Arc<dyn Storage> { Arc::clone(&s) };
    let backend = move |_: u32| -> Box<dyn Backend> {
        if through { Box::new(Through::default()) } else { crate::io::backend(IoBackendKind::Pwrite, None) }
    };
    TopicLog::open_on(dir, "t", 1, config.clone(), &storage, &backend).expect("open")
}

/// Small segments: a 300-byte value per batch rolls every few batches.
fn rolling() -> LogConfig {
    LogConfig { io: IoBackendKind::Pwrite, segment_bytes: 1024, index_interval_bytes: 256, ..LogConfig::default() }
}

#[test]
fn loading_and_reading_open_segments_read_only_and_only_the_active_one_for_writing() {
    let dir = tempfile::tempdir().unwrap();
    let recording = Arc::new(Recording::default());
    let storage: Arc<dyn Storage> = recording.clone();
    let config = rolling();
    let written: Vec<String> = (0..12).map(|i| format!("{i:0>300}")).collect();
    let log = open(dir.path(), &config, &storage, false);
    for v in &written {
        append(&log, v);
    }
    log.close().unwrap();
    drop(log);
    let segments = std::fs::read_dir(dir.path().join("t-0"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "log"))
        .count();
    assert!(segments >= 3, "the partition rolled: {segments} segments");
    recording.take();
    let log = open(dir.path(), &config, &storage, false);
    assert_eq!(values(&log), written, "every record read back through the reopened segments");
    let opens = recording.take();
    let logs: Vec<&(PathBuf, Access)> =
        opens.iter().filter(|(p, _)| p.extension().is_some_and(|x| x == "log")).collect();
    let writable: Vec<&PathBuf> = logs.iter().filter(|(_, a)| *a != Access::ReadOnly).map(|(p, _)| p).collect();
    assert_eq!(writable.len(), 1, "only the active segment is opened for writing: {opens:?}");
    let last = logs.iter().map(|(p, _)| p).max().expect("segments opened");
    assert_eq!(writable[0], last, "and it is the last segment");
    assert!(logs.len() > segments, "loading and reading opened every segment read-only: {opens:?}");
}

#[test]
fn a_log_runs_over_the_simulated_disk_alone_and_keeps_what_it_fsynced_across_a_power_loss() {
    let disk = Arc::new(SimDisk::new(5));
    let storage: Arc<dyn Storage> = disk.clone();
    // A path no real filesystem has: the log touches nothing but the simulated disk.
    let dir = Path::new("/kbench-simulated-disk-only");
    let config = LogConfig { io: IoBackendKind::Sim, flush_messages: Some(1), ..rolling() };
    let log = open(dir, &config, &storage, true);
    let written: Vec<String> = (0..8).map(|i| format!("{i:0>300}")).collect();
    for v in &written {
        append(&log, v);
    }
    assert_eq!(values(&log), written);
    assert!(!dir.exists(), "nothing was written to the real filesystem");
    disk.cut();
    drop(log);
    disk.power_loss();
    let log = open(dir, &config, &storage, true);
    assert_eq!(values(&log), written, "flush.messages=1: every acknowledged record was fsynced");
    append(&log, "after");
    assert_eq!(values(&log).len(), 9, "the recovered log appends on");
}

/// A file operation of a roll failing takes the directory offline after earlier batches of the same
/// round were placed but not yet written: they must fail too, not wait for ever (the simulated disk
/// found this: its disk fails every file operation, where the earlier model failed only writes and
/// fsyncs).
#[test]
fn a_roll_that_fails_answers_the_batches_placed_before_it_in_the_same_round() {
    let disk = Arc::new(SimDisk::new(9));
    let storage: Arc<dyn Storage> = disk.clone();
    let config = LogConfig { io: IoBackendKind::Sim, ..rolling() };
    let log = open(Path::new("/roll-fails"), &config, &storage, true);
    // A round places all its batches before writing any: the first write from now is the index file
    // the roll writes when the fourth 300-byte batch no longer fits the 1 KiB segment.
    disk.fail_write(1);
    let (tx, rx) = crossbeam_channel::unbounded();
    let appends: Vec<(u32, Vec<u8>, super::AppendCallback)> = (0..8)
        .map(|i| {
            let tx = tx.clone();
            let done: super::AppendCallback = Box::new(move |r, _| {
                let _ = tx.send(r.map(|o| o.base_offset));
            });
            (0, batch(&format!("{i:0>300}")), done)
        })
        .collect();
    log.append_many_with(appends, super::RequiredAcks::Leader);
    for i in 0..8 {
        // A bound far above any schedule: before the fix these never came, and closing the log hung
        // (so it is leaked here rather than dropped).
        let Ok(outcome) = rx.recv_timeout(std::time::Duration::from_secs(30)) else {
            std::mem::forget(log);
            panic!("batch {i} of the round was never answered");
        };
        let e = outcome.expect_err("the directory went offline before anything was written");
        assert!(e.to_string().contains("index"), "the failing roll names the index file: {e}");
    }
    assert!(log.flush().is_err(), "offline: the flush fails");
    log.close().unwrap();
}
