//! Consumers in `kbench run`: the delivery accounting must report what really happened — nothing lost,
//! duplicated or reordered in a clean at-least-once case, and loss when a worker-pool member that
//! commits right after polling crashes with records still queued for its workers.

use std::path::Path;

mod run_support;

fn run(dir: &Path, consumers: &str, key: &str) -> serde_json::Value {
    let out_dir = run_support::run_ok(
        dir,
        &format!(
            "name: consumers-test\nengine: {{ kind: embedded, io: pwrite }}\ntopic: {{ name: t, partitions: 4 }}\n\
             producer: {{ threads: 2, acks: all, linger.ms: 2 }}\n\
             records: {{ count: 3000, warmup: 200ms, rate: 2000, key: {key} }}\n\
             consumers: {consumers}\n"
        ),
    );
    let run: serde_json::Value = serde_json::from_slice(&std::fs::read(out_dir.join("run.json")).unwrap()).unwrap();
    run["cases"][0]["summary"]["consumers"].clone()
}

#[test]
fn a_clean_at_least_once_case_accounts_for_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let c = run(
        dir.path(),
        "{ members: 2, strategy: per-thread, commit: after-processing, session.timeout.ms: 1000 }",
        "{ distribution: uniform, cardinality: 50 }",
    );
    let acknowledged = c["acknowledged"].as_u64().unwrap();
    // 3,000 measured sends plus the warmup's, acks=all, no faults: every one acknowledged and processed.
    assert!(acknowledged >= 3000, "{c}");
    assert!(c["processed"].as_u64().unwrap() >= 3000, "{c}");
    for field in ["lost", "duplicated", "out_of_order"] {
        assert_eq!(c[field].as_u64(), Some(0), "{field}: {c}");
    }
    assert!(c["end_to_end_ns"]["p99"].as_u64().unwrap() > 0);
}

#[test]
fn keyless_records_spread_over_partitions_are_not_counted_out_of_order() {
    // The sticky partitioner moves a thread's keyless records from partition to partition, and the
    // consumers read the partitions in any interleaving: Kafka orders records per partition only.
    let dir = tempfile::tempdir().unwrap();
    let c = run(
        dir.path(),
        "{ members: 2, strategy: per-thread, commit: after-processing, session.timeout.ms: 1000 }",
        "{ distribution: none }",
    );
    assert!(c["processed"].as_u64().unwrap() >= 3000, "{c}");
    for field in ["lost", "duplicated", "out_of_order"] {
        assert_eq!(c[field].as_u64(), Some(0), "{field}: {c}");
    }
}

#[test]
fn a_crashed_worker_pool_member_committing_after_poll_loses_records() {
    let dir = tempfile::tempdir().unwrap();
    // One slow worker per member: a poll's records queue behind it, already committed.
    let c = run(
        dir.path(),
        "{ members: 2, strategy: worker-pool, workers: 1, commit: after-poll, processing: 2ms, \
           max.poll.records: 100, session.timeout.ms: 1000, faults: [{ at: 600ms, action: crash }] }",
        "{ distribution: uniform, cardinality: 50 }",
    );
    assert!(c["lost"].as_u64().unwrap() > 0, "queued, committed, never processed: {c}");
    assert!(c["rebalances"].as_u64().unwrap() >= 3, "{c}");
}
