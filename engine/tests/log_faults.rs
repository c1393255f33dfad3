//! Faults reach the producers as Kafka's KafkaStorageException naming the file, the log directory
//! goes offline (fail-stop: later appends and reads fail too), and reopening recovers everything
//! acknowledged. All of them real faults made by the tests, which need root: they are `#[ignore]`d
//! with the reason and run with `cargo test -p kbench-engine --test log_faults -- --ignored` as root
//! (without root they fail, never pass silently). The same failures are tested everywhere through
//! the failpoint backend (`engine/src/log/failstop_tests.rs`). The faults:
//! - ENOSPC at write time, on a 1 MiB tmpfs;
//! - a failed fdatasync: ext4 on a loop device whose image outgrows its 4 MiB tmpfs only at writeback,
//!   so writes succeed and the fsync reports the loss (the failing-disk case);
//! - EPERM when a roll creates the next segment in a directory made immutable with `chattr +i`.
//!
//! EIO itself cannot be produced on this kind of machine (no device-mapper for dm-error/dm-flakey, and
//! the loop driver hands the backing file's errors up as ENOSPC); it travels the same path as the
//! write and fsync errors above, by errno.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use kbench_engine::Error;
use kbench_engine::io::IoBackendKind;
use kbench_engine::log::{LogConfig, TopicLog};
use kbench_engine::producer::{Acks, Producer, ProducerConfig, ProducerRecord};
use kbench_engine::record::BatchIter;

struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
#[ignore = "needs root: mounts a tmpfs (run with --ignored as root)"]
fn enospc_takes_the_log_offline_naming_the_file_and_reopening_recovers_every_ack() {
    let dir = tempfile::tempdir().unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(dir.path())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)");
    let _mount = Mount(dir.path().to_path_buf());
    for io in [IoBackendKind::Pwrite, IoBackendKind::IoUring] {
        let data = dir.path().join(io.to_string());
        let config = LogConfig { io, segment_index_bytes: 4096, ..LogConfig::default() };
        let log = Arc::new(TopicLog::open(&data, "full", 1, config.clone()).unwrap());
        let producer = Producer::new(
            ProducerConfig { acks: Acks::One, linger: Duration::ZERO, ..ProducerConfig::default() },
            Arc::clone(&log),
            None,
        )
        .unwrap();
        let value = vec![7u8; 10_000];
        let mut first_error = None;
        let mut acked = Vec::new();
        for _ in 0..400 {
            match producer.send(&ProducerRecord::new(None, &value)).unwrap().get() {
                Ok(m) => acked.push(m.offset),
                Err(e) => {
                    first_error = Some(e);
                    break;
                }
            }
        }
        let e = first_error.expect("a 1 MiB filesystem must fill up");
        let text = e.to_string();
        assert!(matches!(e, Error::KafkaStorage { .. }), "{io}: {text}");
        assert!(
            text.contains("00000000000000000000.log") || text.contains("full-0"),
            "{io}: the error names no file: {text}"
        );
        assert!(text.to_lowercase().contains("space"), "{io}: not ENOSPC: {text}");
        let _ = producer.close();
        drop(producer);
        // Fail-stop: the directory is offline, reads fail with the same error.
        let read = log.read(0, 0, usize::MAX).expect_err("an offline log serves nothing");
        assert!(matches!(read, Error::KafkaStorage { .. }), "{io}: {read}");
        drop(log);
        // Reopening runs recovery: everything acknowledged is served (acks=1 without a flush policy
        // promises the page cache, which a process restart keeps).
        let log = TopicLog::open(&data, "full", 1, config.clone()).unwrap();
        assert!(log.log_end_offset(0) >= acked.len() as i64, "{io}");
        let fetch = log.read(0, 0, usize::MAX).unwrap();
        let served: usize = BatchIter::new(&fetch.bytes, 0).map(|b| b.unwrap().header().records_count as usize).sum();
        assert!(served >= acked.len(), "{io}: {served} served, {} acknowledged", acked.len());
        drop(log);
        std::fs::remove_dir_all(&data).unwrap();
    }
}

/// Sends 10 kB records with acks=1 until one fails; returns the offsets acknowledged and the error.
fn send_until_error(producer: &Producer, limit: usize) -> (Vec<i64>, Option<Error>) {
    let value = vec![7u8; 10_000];
    let mut acked = Vec::new();
    for _ in 0..limit {
        match producer.send(&ProducerRecord::new(None, &value)).unwrap().get() {
            Ok(m) => acked.push(m.offset),
            Err(e) => return (acked, Some(e)),
        }
    }
    (acked, None)
}

/// Runs `cmd`, true when it succeeded.
fn run(cmd: &mut Command) -> bool {
    cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).status().is_ok_and(|s| s.success())
}

/// An ext4 filesystem on a loop device whose sparse 64 MiB image lives on a 4 MiB tmpfs: writes land
/// in the page cache, and the device only fails (with the backing file's ENOSPC) at writeback — the
/// fsync is what reports the loss, as on a failing disk.
struct ThinDisk {
    mnt: std::path::PathBuf,
    back: std::path::PathBuf,
    loop_dev: String,
}

impl ThinDisk {
    fn create(root: &std::path::Path) -> Option<ThinDisk> {
        let back = root.join("back");
        let mnt = root.join("mnt");
        std::fs::create_dir_all(&back).ok()?;
        std::fs::create_dir_all(&mnt).ok()?;
        if !run(Command::new("mount").args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"]).arg(&back)) {
            return None;
        }
        let image = back.join("disk.img");
        let made = std::fs::File::create(&image).and_then(|f| f.set_len(64 << 20)).is_ok();
        let loop_dev = made
            .then(|| Command::new("losetup").args(["-f", "--show"]).arg(&image).output().ok())
            .flatten()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        let Some(loop_dev) = loop_dev else {
            let _ = Command::new("umount").arg(&back).status();
            return None;
        };
        let disk = ThinDisk { mnt, back, loop_dev };
        let ok =
            run(Command::new("mkfs.ext4").args(["-q", "-O", "^has_journal", "-E", "nodiscard"]).arg(&disk.loop_dev))
                && run(Command::new("mount").arg(&disk.loop_dev).arg(&disk.mnt));
        ok.then_some(disk)
    }
}

impl Drop for ThinDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mnt).status();
        let _ = Command::new("losetup").arg("-d").arg(&self.loop_dev).status();
        let _ = Command::new("umount").arg(&self.back).status();
    }
}

#[test]
#[ignore = "needs root: tmpfs, losetup and mkfs.ext4 (run with --ignored as root)"]
fn a_failed_fsync_fails_the_acks_waiting_for_it_naming_the_file() {
    let root = tempfile::tempdir().unwrap();
    let disk = ThinDisk::create(root.path()).expect("a loop-mounted ext4 (needs root, losetup, mkfs.ext4)");
    let data = disk.mnt.join("data");
    // flush.messages=1: every ack waits for the fdatasync that covers its batch.
    let config = LogConfig { io: IoBackendKind::IoUring, flush_messages: Some(1), ..LogConfig::default() };
    let log = Arc::new(TopicLog::open(&data, "thin", 1, config).unwrap());
    let producer = Producer::new(
        ProducerConfig { acks: Acks::One, linger: Duration::ZERO, ..ProducerConfig::default() },
        Arc::clone(&log),
        None,
    )
    .unwrap();
    let (acked, error) = send_until_error(&producer, 2_000);
    let e = error.expect("a 4 MiB backing store must fail writeback");
    let text = e.to_string();
    eprintln!("after {} acknowledged records: {text}", acked.len());
    assert!(matches!(e, Error::KafkaStorage { .. }), "{text}");
    assert!(text.contains("fdatasync") || text.contains("write"), "names no operation: {text}");
    assert!(text.contains("00000000000000000000.log") || text.contains("thin-0"), "the error names no file: {text}");
    assert!(!acked.is_empty() && acked.len() < 2_000, "acknowledged {} records", acked.len());
    // Acknowledged offsets are contiguous from 0: nothing acknowledged was skipped.
    assert!(acked.iter().enumerate().all(|(i, &o)| o == i as i64));
    let _ = producer.close();
    drop(log);
}

#[test]
#[ignore = "needs root and ext4: chattr +i (run with --ignored as root)"]
fn a_permission_error_at_a_segment_roll_takes_the_log_offline_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = LogConfig { io: IoBackendKind::IoUring, segment_bytes: 64 * 1024, ..LogConfig::default() };
    let log = Arc::new(TopicLog::open(&data, "perm", 1, config).unwrap());
    let partition_dir = data.join("perm-0");
    // Immutable directory: no new entries, even for root (chattr needs ext4 and CAP_LINUX_IMMUTABLE).
    assert!(run(Command::new("chattr").arg("+i").arg(&partition_dir)), "chattr +i (needs root and ext4)");
    struct Mutable(std::path::PathBuf);
    impl Drop for Mutable {
        fn drop(&mut self) {
            let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
        }
    }
    let _mutable = Mutable(partition_dir.clone());
    let producer = Producer::new(
        ProducerConfig { acks: Acks::One, linger: Duration::ZERO, ..ProducerConfig::default() },
        Arc::clone(&log),
        None,
    )
    .unwrap();
    let (acked, error) = send_until_error(&producer, 100);
    let e = error.expect("the roll to a second segment must fail");
    let text = e.to_string();
    eprintln!("after {} acknowledged records: {text}", acked.len());
    assert!(matches!(e, Error::KafkaStorage { .. }), "{text}");
    assert!(text.contains("perm-0") && text.contains(".log") || text.contains(".index"), "names no file: {text}");
    assert!(text.to_lowercase().contains("not permitted"), "not EPERM: {text}");
    let _ = producer.close();
    drop(producer);
    assert!(matches!(log.read(0, 0, usize::MAX), Err(Error::KafkaStorage { .. })), "reads fail while offline");
    drop(log);
    drop(_mutable);
    // Reopened, everything acknowledged is served, and nothing beyond it.
    let log = TopicLog::open(&data, "perm", 1, LogConfig { segment_bytes: 64 * 1024, ..LogConfig::default() }).unwrap();
    assert_eq!(log.log_end_offset(0), acked.len() as i64);
    let fetch = log.read(0, 0, usize::MAX).unwrap();
    let served: usize = BatchIter::new(&fetch.bytes, 0).map(|b| b.unwrap().header().records_count as usize).sum();
    assert_eq!(served, acked.len());
}
