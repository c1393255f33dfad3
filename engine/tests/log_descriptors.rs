//! The log's descriptor budget: 10,000 partitions open under a limit far below four descriptors per
//! partition, what the log holds stays bounded (counted in /proc/self/fd) through appends, rolls,
//! reads of inactive segments, fsyncs and a reopen, the soft RLIMIT_NOFILE is raised to the hard
//! one, and a topic that cannot fit fails at open with an error naming the limit and the need.
//!
//! Each case runs in a child process (this test binary run again with one test selected), which
//! lowers its own RLIMIT_NOFILE first: limits are per process, and the fd counts must not see other
//! tests' files.

mod log_support;

use std::process::Command;

use kbench_engine::Error;
use kbench_engine::io::IoBackendKind;
use kbench_engine::log::{LogConfig, TopicLog, open_descriptors};
use log_support::{append, plain, read_all};

/// Set in the child: the soft and hard limits to apply, `soft:hard`.
const CHILD: &str = "KBENCH_DESCRIPTORS_CHILD";

/// Runs `test` (this file's test of that name) in a child process under RLIMIT_NOFILE `soft`/`hard`;
/// in the child, applies the limits and returns true (the caller then runs the case).
fn in_child(test: &str, soft: u64, hard: u64) -> bool {
    if let Ok(limits) = std::env::var(CHILD) {
        let (s, h) = limits.split_once(':').expect("soft:hard");
        let l = libc::rlimit { rlim_cur: s.parse().unwrap(), rlim_max: h.parse().unwrap() };
        // SAFETY: setrlimit reads the struct we pass, which lives for the call.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &l) }, 0, "{}", std::io::Error::last_os_error());
        return true;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, format!("{soft}:{hard}"))
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child {test} failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "the child ran no test:\n{stdout}");
    false
}

fn limits() -> (u64, u64) {
    let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes the struct we pass, which lives for the call.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) }, 0);
    (l.rlim_cur, l.rlim_max)
}

/// The hard limit this host allows (children may only lower it).
fn host_hard() -> u64 {
    limits().1
}

fn fds() -> u64 {
    open_descriptors().expect("/proc/self/fd")
}

#[test]
fn ten_thousand_partitions_open_write_flush_and_reopen_under_a_12000_descriptor_limit() {
    const PARTITIONS: u32 = 10_000;
    if !in_child("ten_thousand_partitions_open_write_flush_and_reopen_under_a_12000_descriptor_limit", 12_000, 12_000) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // `discard` keeps every file and descriptor of the log (segments, indexes, the directories
    // opened for their fsyncs) and skips the data writes and fsyncs: 10,000 real fdatasyncs would
    // take minutes on a shared disk. The rolls, reads and fsyncs of real files are the next test's.
    let config = LogConfig { io: IoBackendKind::Discard, ..LogConfig::default() };
    let before = fds();
    let log = TopicLog::open(dir.path(), "wide", PARTITIONS, config.clone()).unwrap();
    let open = fds() - before;
    // One per partition (its active segment) and the I/O thread's eventfd.
    assert!(open <= u64::from(PARTITIONS) + 8, "{open} descriptors for {PARTITIONS} partitions");
    for p in 0..PARTITIONS {
        append(&log, p, plain(&format!("p{p}"), 2, 50, 1_000)).unwrap();
    }
    assert_eq!(log.log_end_offset(PARTITIONS - 1), 2);
    assert!(fds() - before <= u64::from(PARTITIONS) + 8, "{} after a write to every partition", fds() - before);
    // Every partition's fsync, each with its directory (opened for the fsync only, 64 at a time).
    log.flush().unwrap();
    assert!(fds() - before <= u64::from(PARTITIONS) + 8, "{} after the flush", fds() - before);
    log.close().unwrap();
    drop(log);
    assert!(fds() <= before + 1, "{} descriptors left after close", fds() - before);
    let files: Vec<_> =
        std::fs::read_dir(dir.path().join("wide-9999")).unwrap().map(|e| e.unwrap().file_name()).collect();
    // Two 50-byte records are below index.interval.bytes: no index entry, so no index file.
    assert_eq!(files, ["00000000000000000000.log"], "one file per partition: its segment");
    let log = TopicLog::open(dir.path(), "wide", PARTITIONS, config).unwrap();
    assert!(fds() - before <= u64::from(PARTITIONS) + 8, "{} after reopening", fds() - before);
    log.close().unwrap();
}

#[test]
fn only_active_segments_hold_descriptors_through_rolls_reads_and_reopen() {
    const PARTITIONS: u32 = 40;
    if !in_child("only_active_segments_hold_descriptors_through_rolls_reads_and_reopen", 1_024, 1_024) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // 1 KiB segments: ~300-byte batches roll every three batches.
    let config = LogConfig { segment_bytes: 1024, index_interval_bytes: 256, ..LogConfig::default() };
    let before = fds();
    let log = TopicLog::open(dir.path(), "roll", PARTITIONS, config.clone()).unwrap();
    for i in 0..12 {
        for p in 0..PARTITIONS {
            append(&log, p, plain(&format!("b{i}"), 2, 120, 1_000 + i)).unwrap();
        }
    }
    let segments = std::fs::read_dir(log.dir(0))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "log"))
        .count();
    assert!(segments >= 3, "the partitions rolled: {segments} segments in one");
    assert!(fds() - before <= u64::from(PARTITIONS) + 8, "{} with ~4 segments per partition", fds() - before);
    for p in 0..PARTITIONS {
        assert_eq!(read_all(&log, p).len(), 24, "partition {p} read back through its inactive segments");
    }
    assert_eq!(log.offset_for_timestamp(3, 1_001).unwrap(), Some(2));
    assert!(fds() - before <= u64::from(PARTITIONS) + 8, "{} after reading", fds() - before);
    log.flush().unwrap();
    assert!(fds() - before <= u64::from(PARTITIONS) + 8, "{} after the flush", fds() - before);
    log.close().unwrap();
    drop(log);
    let log = TopicLog::open(dir.path(), "roll", PARTITIONS, config).unwrap();
    assert!(fds() - before <= u64::from(PARTITIONS) + 8, "{} after reopening", fds() - before);
    for p in 0..PARTITIONS {
        assert_eq!(read_all(&log, p).len(), 24, "partition {p} after reopening");
    }
}

#[test]
fn the_soft_limit_is_raised_to_the_hard_limit() {
    let hard = host_hard().min(8_192);
    if !in_child("the_soft_limit_is_raised_to_the_hard_limit", 256, hard) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // 1,000 partitions do not fit in 256 descriptors, but do in the hard limit.
    let log = TopicLog::open(dir.path(), "raised", 1_000, LogConfig::default()).unwrap();
    assert_eq!(limits(), (hard, hard), "the soft limit was raised to the hard one");
    append(&log, 999, plain("x", 1, 10, 1)).unwrap();
}

#[test]
fn a_topic_that_cannot_fit_fails_at_open_naming_the_limit_and_the_need() {
    if !in_child("a_topic_that_cannot_fit_fails_at_open_naming_the_limit_and_the_need", 1_000, 1_000) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let e = TopicLog::open(dir.path(), "toobig", 2_000, LogConfig::default()).unwrap_err();
    let text = e.to_string();
    let Error::DescriptorLimit { partitions, replicas, needed, limit, hard, .. } = e else {
        panic!("not DescriptorLimit: {text}");
    };
    assert_eq!((partitions, replicas, limit, hard), (2_000, 1, 1_000, 1_000), "{text}");
    assert!(needed > 2_000, "{text}");
    assert!(text.contains("RLIMIT_NOFILE allows 1000") && text.contains(&format!("need about {needed}")), "{text}");
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "nothing was created before the error");
    // Replicas count: 400 partitions fit alone, not with three replicas each.
    TopicLog::open(dir.path(), "fits", 400, LogConfig::default()).unwrap().close().unwrap();
    let config = LogConfig { replication_factor: 3, ..LogConfig::default() };
    let e = TopicLog::open(&dir.path().join("r"), "replicated", 400, config).unwrap_err();
    assert!(matches!(e, Error::DescriptorLimit { replicas: 3, .. }), "{e}");
}
