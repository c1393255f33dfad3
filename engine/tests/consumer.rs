//! The consumer against a real log: reading back in order, seek / position / lag, auto.offset.reset,
//! group assignment and rebalances on join, leave and crash, commits that survive a restart, and
//! CommitFailed for a member the group has moved on without.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kbench_engine::Error;
use kbench_engine::consumer::{
    AssignmentStrategy, AutoOffsetReset, Consumer, ConsumerConfig, ConsumerRecord, Coordinator,
};
use kbench_engine::log::{LogConfig, TopicLog};
use kbench_engine::producer::{Acks, Producer, ProducerConfig, ProducerRecord};

struct Topic {
    _dir: tempfile::TempDir,
    offsets_dir: std::path::PathBuf,
    log: Arc<TopicLog>,
    coordinator: Arc<Coordinator>,
}

/// A topic of `partitions` partitions holding `records` keyed records ("k{i}" -> "v{i}").
fn topic(partitions: u32, records: usize) -> Topic {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(TopicLog::open(&dir.path().join("data"), "t", partitions, LogConfig::default()).unwrap());
    let producer = Producer::new(
        ProducerConfig { acks: Acks::One, linger: Duration::ZERO, ..ProducerConfig::default() },
        Arc::clone(&log),
        None,
    )
    .unwrap();
    for i in 0..records {
        let (k, v) = (format!("k{i}"), format!("v{i}"));
        producer.send(&ProducerRecord::new(Some(k.as_bytes()), v.as_bytes())).unwrap();
    }
    producer.flush().unwrap();
    producer.close().unwrap();
    let offsets_dir = dir.path().join("offsets");
    let coordinator = Coordinator::open(&offsets_dir, partitions).unwrap();
    Topic { _dir: dir, offsets_dir, log, coordinator }
}

fn config(group: Option<&str>, client: &str) -> ConsumerConfig {
    ConsumerConfig {
        group_id: group.map(str::to_string),
        client_id: client.into(),
        auto_offset_reset: AutoOffsetReset::Earliest,
        enable_auto_commit: false,
        ..ConsumerConfig::default()
    }
}

/// Polls until `want` records arrived or 10 s passed.
fn poll_n(c: &mut Consumer, want: usize) -> Vec<ConsumerRecord> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut out = Vec::new();
    while out.len() < want && Instant::now() < deadline {
        out.extend(c.poll(Duration::from_millis(50)).unwrap());
    }
    out
}

fn assert_in_order(records: &[ConsumerRecord]) {
    let mut last = std::collections::HashMap::new();
    for r in records {
        if let Some(prev) = last.insert(r.partition, r.offset) {
            assert_eq!(r.offset, prev + 1, "partition {}: offsets contiguous", r.partition);
        }
        let i: usize = String::from_utf8_lossy(r.key.as_deref().unwrap())[1..].parse().unwrap();
        assert_eq!(r.value.as_deref(), Some(format!("v{i}").as_bytes()));
    }
}

#[test]
fn assigned_partitions_read_back_in_order_with_seek_position_and_lag() {
    let t = topic(2, 1000);
    let mut c = Consumer::new(
        ConsumerConfig { max_poll_records: 100, ..config(None, "c") },
        Arc::clone(&t.log),
        &t.coordinator,
    )
    .unwrap();
    c.assign(&[0, 1]).unwrap();
    let first = c.poll(Duration::from_secs(5)).unwrap();
    assert!(!first.is_empty() && first.len() <= 100, "max.poll.records bounds a poll: {}", first.len());
    let mut all = first;
    all.extend(poll_n(&mut c, 1000 - all.len()));
    assert_eq!(all.len(), 1000);
    assert_in_order(&all);
    assert!(c.poll(Duration::from_millis(20)).unwrap().is_empty(), "nothing past the end");
    let end0 = t.log.log_end_offset(0);
    assert_eq!((c.position(0).unwrap(), c.lag(0)), (end0, 0));
    c.seek(0, 10).unwrap();
    assert_eq!(c.lag(0), end0 - 10);
    let again = poll_n(&mut c, 1);
    assert_eq!((again[0].partition, again[0].offset), (0, 10));
    assert!(c.seek(5, 0).is_err());
}

#[test]
fn auto_offset_reset_latest_starts_at_the_end_and_none_fails() {
    let t = topic(1, 50);
    let mut latest = Consumer::new(
        ConsumerConfig { auto_offset_reset: AutoOffsetReset::Latest, ..config(None, "l") },
        Arc::clone(&t.log),
        &t.coordinator,
    )
    .unwrap();
    latest.assign(&[0]).unwrap();
    assert!(latest.poll(Duration::from_millis(20)).unwrap().is_empty());
    assert_eq!(latest.position(0).unwrap(), 50);
    let mut none = Consumer::new(
        ConsumerConfig { auto_offset_reset: AutoOffsetReset::None, ..config(Some("g"), "n") },
        Arc::clone(&t.log),
        &t.coordinator,
    )
    .unwrap();
    let err = none.poll(Duration::from_secs(5)).unwrap_err();
    assert!(matches!(err, Error::NoOffset { partition: 0, .. }), "{err}");
}

#[test]
fn group_members_split_partitions_and_rebalance_on_join_and_leave() {
    let t = topic(6, 600);
    let log = || Arc::clone(&t.log);
    let mut a = Consumer::new(config(Some("g"), "a"), log(), &t.coordinator).unwrap();
    a.poll(Duration::from_secs(1)).unwrap();
    assert_eq!(a.assignment(), [0, 1, 2, 3, 4, 5], "alone, a member has every partition");
    // A second member: the group waits for both to rejoin (the eager protocol's barrier).
    let mut b = Consumer::new(config(Some("g"), "b"), log(), &t.coordinator).unwrap();
    assert!(a.poll(Duration::from_millis(30)).unwrap().is_empty(), "a waits for b to join");
    assert!(a.assignment().is_empty(), "a revoked everything");
    b.poll(Duration::from_secs(1)).unwrap();
    a.poll(Duration::from_millis(10)).unwrap();
    assert_eq!((a.assignment(), b.assignment()), (&[0, 1, 2][..], &[3, 4, 5][..]), "RangeAssignor");
    // Round-robin in another group of the same topic.
    let rr = |client: &str| ConsumerConfig {
        partition_assignment_strategy: AssignmentStrategy::RoundRobin,
        ..config(Some("rr"), client)
    };
    let mut x = Consumer::new(rr("x"), log(), &t.coordinator).unwrap();
    let mut y = Consumer::new(rr("y"), log(), &t.coordinator).unwrap();
    x.poll(Duration::from_millis(10)).unwrap();
    y.poll(Duration::from_secs(1)).unwrap();
    x.poll(Duration::from_millis(10)).unwrap();
    assert_eq!((x.assignment(), y.assignment()), (&[0, 2, 4][..], &[1, 3, 5][..]));
    // b leaves: a takes everything back.
    b.close().unwrap();
    a.poll(Duration::from_secs(1)).unwrap();
    assert_eq!(a.assignment(), [0, 1, 2, 3, 4, 5]);
    assert!(a.rebalances() >= 3);
    assert!(t.coordinator.rebalances("g") >= 3);
}

#[test]
fn committed_offsets_survive_a_restart_and_the_group_resumes_there() {
    let t = topic(1, 500);
    {
        let mut c = Consumer::new(
            ConsumerConfig { max_poll_records: 120, ..config(Some("g"), "c") },
            Arc::clone(&t.log),
            &t.coordinator,
        )
        .unwrap();
        let got = poll_n(&mut c, 120);
        assert_eq!(got.last().unwrap().offset, 119);
        c.commit_sync().unwrap();
        assert_eq!(c.committed(0), Some(120));
        c.close().unwrap();
    }
    // A new coordinator over the same directory: a restarted process.
    let restarted = Coordinator::open(&t.offsets_dir, 1).unwrap();
    assert_eq!(restarted.committed("g", 0).unwrap(), Some(120));
    let mut c = Consumer::new(config(Some("g"), "c"), Arc::clone(&t.log), &restarted).unwrap();
    let got = poll_n(&mut c, 1);
    assert_eq!(got[0].offset, 120, "resumes at the committed offset, not at auto.offset.reset");
}

#[test]
fn a_crashed_member_is_removed_after_its_session_and_cannot_commit() {
    let t = topic(4, 400);
    let session = Duration::from_millis(300);
    let cfg = |client: &str| ConsumerConfig { session_timeout: session, ..config(Some("g"), client) };
    let mut a = Consumer::new(cfg("a"), Arc::clone(&t.log), &t.coordinator).unwrap();
    let mut b = Consumer::new(cfg("b"), Arc::clone(&t.log), &t.coordinator).unwrap();
    a.poll(Duration::from_millis(10)).unwrap();
    b.poll(Duration::from_secs(1)).unwrap();
    a.poll(Duration::from_millis(10)).unwrap();
    assert_eq!(a.assignment().len() + b.assignment().len(), 4);
    // b stops polling (a stuck or crashed process) without leaving.
    let started = Instant::now();
    while a.assignment().len() < 4 && started.elapsed() < Duration::from_secs(5) {
        a.poll(Duration::from_millis(50)).unwrap();
    }
    assert_eq!(a.assignment().len(), 4, "b's partitions moved to a");
    assert!(started.elapsed() >= session / 2, "not before b's session could expire");
    let err = b.commit_sync().unwrap_err();
    assert!(matches!(err, Error::CommitFailed { .. }), "{err}");
    b.abandon();
}

#[test]
fn auto_commit_commits_what_earlier_polls_returned() {
    let t = topic(1, 300);
    let cfg = ConsumerConfig {
        enable_auto_commit: true,
        auto_commit_interval: Duration::ZERO,
        max_poll_records: 100,
        ..config(Some("g"), "c")
    };
    let mut c = Consumer::new(cfg, Arc::clone(&t.log), &t.coordinator).unwrap();
    let first = poll_n(&mut c, 100);
    assert_eq!(first.len(), 100);
    assert_eq!(c.committed(0), None, "nothing is committed before the next poll");
    c.poll(Duration::from_millis(10)).unwrap();
    assert_eq!(c.committed(0), Some(100), "the next poll commits the previous one's position");
}
