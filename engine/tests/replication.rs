//! Replication through `TopicLog`'s public API: replicas with identical Kafka files, acks=all waiting
//! for the ISR, ISR shrink and expand, NotEnoughReplicas, leader failure with clean and unclean
//! election, and no acknowledged acks=all record lost across the faults.

mod log_support;

use std::collections::BTreeSet;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kbench_engine::Error;
use kbench_engine::io::IoBackendKind;
use kbench_engine::log::{AppendOutcome, LogConfig, RequiredAcks, TopicLog};
use log_support::{plain, read_all};

fn config(rf: u32, min_isr: u32, lag_ms: u64, unclean: bool) -> LogConfig {
    LogConfig {
        io: IoBackendKind::Pwrite,
        segment_bytes: 16 * 1024,
        replication_factor: rf,
        min_insync_replicas: min_isr,
        replica_lag_time_max_ms: lag_ms,
        unclean_leader_election_enable: unclean,
        ..LogConfig::default()
    }
}

/// Appends and waits for the acknowledgement `acks` asks for.
fn send(log: &TopicLog, tag: &str, acks: RequiredAcks) -> kbench_engine::Result<AppendOutcome> {
    let (tx, rx) = mpsc::channel();
    log.append_with(
        0,
        plain(tag, 2, 50, 1_000),
        acks,
        Box::new(move |r, _| {
            let _ = tx.send(r);
        }),
    );
    rx.recv_timeout(Duration::from_secs(30)).expect("an append is answered")
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn isr(log: &TopicLog) -> Vec<u32> {
    log.replica_status(0).unwrap().unwrap().isr
}

/// The tags of the batches readable now (each batch's first value, `"{tag}-0"`).
fn tags(log: &TopicLog) -> BTreeSet<String> {
    read_all(log, 0)
        .into_iter()
        .filter_map(|(_, v)| v.trim_end_matches('.').strip_suffix("-0").map(String::from))
        .collect()
}

#[test]
fn followers_hold_byte_identical_kafka_segments_and_acks_all_waits_for_the_high_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let log = TopicLog::open(dir.path(), "t", 1, config(3, 2, 10_000, false)).unwrap();
    for i in 0..200 {
        let o = send(&log, &format!("b{i}"), RequiredAcks::AllInSync).unwrap();
        assert_eq!(o.base_offset, i * 2);
        let st = log.replica_status(0).unwrap().unwrap();
        assert!(
            st.high_watermark > o.last_offset,
            "acknowledged at {} but the HW is {}",
            o.last_offset,
            st.high_watermark
        );
        assert!(st.log_end_offsets.iter().filter(|&&e| e > o.last_offset).count() >= 2);
    }
    wait_until("every replica at 400", || log.replica_status(0).unwrap().unwrap().log_end_offsets == vec![400; 3]);
    assert_eq!(log.log_end_offset(0), 400);
    assert_eq!(read_all(&log, 0).len(), 400);
    log.close().unwrap();
    let segment = |b: u32| {
        let p = dir.path().join(format!("broker-{b}/t-0"));
        let mut names: Vec<_> = std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        names
            .into_iter()
            .filter(|n| n.to_string_lossy().ends_with(".log"))
            .map(|n| std::fs::read(p.join(n)).unwrap())
            .collect::<Vec<_>>()
    };
    let leader = segment(0);
    assert!(leader.len() >= 2, "16 KiB segments roll");
    assert_eq!(segment(1), leader, "follower 1's segments are the leader's bytes");
    assert_eq!(segment(2), leader, "follower 2's segments are the leader's bytes");
}

#[test]
fn a_stopped_follower_leaves_the_isr_after_the_lag_time_and_rejoins_when_caught_up() {
    let dir = tempfile::tempdir().unwrap();
    // A lag time of 1 s: replica 1, running, must not fall out of the ISR on a loaded host.
    let log = TopicLog::open(dir.path(), "t", 1, config(3, 2, 1000, false)).unwrap();
    send(&log, "warm", RequiredAcks::AllInSync).unwrap();
    log.stop_broker(2).unwrap();
    let t0 = Instant::now();
    // acks=all waits for replica 2 until it leaves the ISR, then completes with ISR {0, 1}.
    send(&log, "stalled", RequiredAcks::AllInSync).unwrap();
    let waited = t0.elapsed();
    assert!(waited >= Duration::from_millis(1000), "acknowledged after {waited:?}, before replica.lag.time.max.ms");
    assert_eq!(isr(&log), vec![0, 1]);
    for i in 0..20 {
        send(&log, &format!("while-down-{i}"), RequiredAcks::AllInSync).unwrap();
    }
    log.start_broker(2).unwrap();
    wait_until("replica 2 back in the ISR", || isr(&log) == vec![0, 1, 2]);
    let st = log.replica_status(0).unwrap().unwrap();
    assert_eq!(st.log_end_offsets[2], st.log_end_offsets[0], "it caught up before rejoining");
}

#[test]
fn not_enough_replicas_refuses_acks_all_but_not_acks_1() {
    let dir = tempfile::tempdir().unwrap();
    let log = TopicLog::open(dir.path(), "t", 1, config(3, 2, 200, false)).unwrap();
    send(&log, "warm", RequiredAcks::AllInSync).unwrap();
    log.stop_broker(1).unwrap();
    log.stop_broker(2).unwrap();
    wait_until("the ISR down to the leader", || isr(&log) == vec![0]);
    let before = log.replica_status(0).unwrap().unwrap().log_end_offsets[0];
    match send(&log, "refused", RequiredAcks::AllInSync) {
        Err(Error::NotEnoughReplicas { isr: 1, min_insync_replicas: 2, after_append: false, .. }) => {}
        other => panic!("expected NotEnoughReplicas, got {other:?}"),
    }
    assert_eq!(log.replica_status(0).unwrap().unwrap().log_end_offsets[0], before, "a refused batch is not appended");
    let o = send(&log, "acks1", RequiredAcks::Leader).unwrap();
    assert_eq!(o.base_offset, before, "acks=1 is served by the leader alone");
    log.start_broker(1).unwrap();
    wait_until("replica 1 back", || isr(&log) == vec![0, 1]);
    send(&log, "again", RequiredAcks::AllInSync).unwrap();
}

#[test]
fn leader_failure_elects_an_in_sync_follower_and_loses_no_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let log = std::sync::Arc::new(TopicLog::open(dir.path(), "t", 1, config(3, 2, 500, false)).unwrap());
    let failed_over = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let log = std::sync::Arc::clone(&log);
        let failed_over = std::sync::Arc::clone(&failed_over);
        std::thread::spawn(move || {
            let mut acked = Vec::new();
            let (mut failed, mut acked_after) = (0, 0);
            // Sends go on until the new leader has acknowledged 100 of them: bounded by counts,
            // however fast the host.
            for i in 0.. {
                let after = failed_over.load(std::sync::atomic::Ordering::Acquire);
                match send(&log, &format!("r{i}"), RequiredAcks::AllInSync) {
                    Ok(_) => {
                        acked.push(format!("r{i}"));
                        acked_after += u32::from(after);
                    }
                    Err(Error::NotLeader { .. }) => failed += 1,
                    Err(e) => panic!("unexpected error {e}"),
                }
                if acked_after >= 100 {
                    break;
                }
                assert!(i < 100_000, "the new leader acknowledged {acked_after} sends in 100,000");
            }
            (acked, failed)
        })
    };
    wait_until("some records in", || log.log_end_offset(0) > 200);
    log.stop_broker(0).unwrap();
    failed_over.store(true, std::sync::atomic::Ordering::Release);
    let st = log.replica_status(0).unwrap().unwrap();
    assert_eq!((st.leader, st.leader_epoch), (Some(1), 1), "the first live ISR member leads epoch 1");
    let (acked, failed) = writer.join().unwrap();
    assert!(acked.len() >= 100, "{} acknowledged, {failed} failed over", acked.len());
    let present = tags(&log);
    let lost: Vec<&String> = acked.iter().filter(|t| !present.contains(*t)).collect();
    assert!(lost.is_empty(), "acknowledged acks=all records missing after a clean election: {lost:?}");
    // The old leader returns as a follower and converges on the new leader's log.
    log.start_broker(0).unwrap();
    wait_until("replica 0 back in the ISR", || isr(&log).contains(&0));
    let st = log.replica_status(0).unwrap().unwrap();
    assert_eq!(st.leader, Some(1));
    assert!(st.log_end_offsets.iter().all(|&e| e == st.log_end_offsets[1]), "{st:?}");
}

#[test]
fn without_unclean_election_the_partition_waits_and_with_it_records_are_lost() {
    for unclean in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let log = TopicLog::open(dir.path(), "t", 1, config(2, 1, 100, unclean)).unwrap();
        send(&log, "early", RequiredAcks::AllInSync).unwrap();
        wait_until("follower caught up", || log.replica_status(0).unwrap().unwrap().log_end_offsets == vec![2, 2]);
        // Replica 1 falls behind and out of the ISR; the leader alone acknowledges acks=all.
        log.set_fetch_delay(1, Duration::from_secs(3600)).unwrap();
        wait_until("replica 1 out of the ISR", || isr(&log) == vec![0]);
        for i in 0..10 {
            send(&log, &format!("late{i}"), RequiredAcks::AllInSync).unwrap();
        }
        log.stop_broker(0).unwrap();
        let st = log.replica_status(0).unwrap().unwrap();
        if !unclean {
            assert_eq!(st.leader, None, "no in-sync replica is alive: offline");
            assert!(matches!(send(&log, "x", RequiredAcks::Leader), Err(Error::NotLeader { .. })));
            assert!(log.read(0, 0, 1 << 20).unwrap().bytes.is_empty(), "nothing is served while offline");
            // The last ISR member returns and leads again, with everything it acknowledged.
            log.start_broker(0).unwrap();
            assert_eq!(log.replica_status(0).unwrap().unwrap().leader, Some(0));
            assert_eq!(tags(&log).len(), 11);
        } else {
            assert_eq!((st.leader, st.high_watermark), (Some(1), 2), "replica 1 leads from its own end");
            assert_eq!(tags(&log), BTreeSet::from(["early".to_string()]), "the ten late records are lost");
            send(&log, "after", RequiredAcks::Leader).unwrap();
            // The old leader returns, cuts the diverged records and follows.
            log.start_broker(0).unwrap();
            log.set_fetch_delay(1, Duration::ZERO).unwrap();
            wait_until("replica 0 converged", || {
                let s = log.replica_status(0).unwrap().unwrap();
                s.log_end_offsets == vec![4, 4] && s.isr == vec![0, 1]
            });
            log.close().unwrap();
            let reopened = TopicLog::open(
                &dir.path().join("broker-0"),
                "t",
                1,
                LogConfig { io: IoBackendKind::Pwrite, ..LogConfig::default() },
            )
            .unwrap();
            let values: Vec<String> =
                read_all(&reopened, 0).into_iter().map(|(_, v)| v.trim_end_matches('.').to_string()).collect();
            assert_eq!(values, vec!["early-0", "early-1", "after-0", "after-1"], "replica 0's files after truncation");
        }
    }
}
