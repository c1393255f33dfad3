//! Replication in `kbench run`: a replicated case audits acknowledged records against the log after
//! its faults are healed. acks=all with min.insync.replicas 2 must lose nothing across a leader
//! failure; an unclean election of a replica that was kept out of sync must lose what it lacked.

use std::path::Path;
use std::process::Command;

mod run_support;

fn run(dir: &Path, producer: &str, topic: &str, records: &str) -> serde_json::Value {
    let out_dir = run_support::run_ok(
        dir,
        &format!(
            "name: replication-test\nengine: {{ kind: embedded, io: pwrite }}\n\
             topic: {{ name: t, partitions: 2, replication.factor: 3, {topic} }}\n\
             producer: {{ threads: 2, linger.ms: 2, {producer} }}\n\
             records: {{ count: 8000, warmup: 200ms, rate: 4000, key: {{ distribution: uniform, cardinality: 50 }}{records} }}\n"
        ),
    );
    let run: serde_json::Value = serde_json::from_slice(&std::fs::read(out_dir.join("run.json")).unwrap()).unwrap();
    run["cases"][0]["summary"].clone()
}

#[test]
fn acks_all_with_two_in_sync_replicas_loses_nothing_when_the_leader_fails() {
    let dir = tempfile::tempdir().unwrap();
    let s = run(
        dir.path(),
        "acks: all",
        "min.insync.replicas: 2, replica.lag.time.max.ms: 500, faults: [{ at: 700ms, action: fail-leader, until: 1400ms }]",
        // The engine's producer does not retry (Kafka with retries=0): sends refused during the
        // failover are errors, as many as the host's speed makes them (30% seen under load). This
        // test judges the audit, not the verdict.
        ", max_error_ratio: 1",
    );
    let r = &s["replication"];
    assert_eq!(r["replication_factor"], 3, "{s}");
    // 8,000 measured sends (the count bounds the work, not the host's speed); failures during the
    // failover are errors, never losses.
    assert!(r["acknowledged"].as_u64().unwrap() >= 1000, "{r}");
    assert_eq!(r["lost_acknowledged"], 0, "acks=all lost acknowledged records: {r}");
    assert_eq!(r["elections"], 1, "one failover; the old leader returns as a follower: {r}");
    assert_eq!(r["converged"], true, "{r}");
    assert_eq!(r["faults"].as_array().unwrap().len(), 2, "{r}");
}

#[test]
fn an_unclean_election_of_a_lagging_replica_loses_acknowledged_records() {
    let dir = tempfile::tempdir().unwrap();
    // Brokers 1 and 2 fetch once an hour: they drop out of the ISR and the leader alone acknowledges.
    // Broker 1 stops, then the leader fails: broker 2, far behind, is elected uncleanly.
    let s = run(
        dir.path(),
        "acks: all",
        "min.insync.replicas: 1, replica.lag.time.max.ms: 200, unclean.leader.election.enable: true, faults: [\
         { at: 0ms, action: slow, broker: 1, delay: 1h }, { at: 0ms, action: slow, broker: 2, delay: 1h }, \
         { at: 900ms, action: stop, broker: 1 }, { at: 1s, action: fail-leader }]",
        // The partitions are offline until the unclean election: sends fail meanwhile, which is
        // not what this test judges.
        ", max_error_ratio: 1",
    );
    let r = &s["replication"];
    assert!(r["lost_acknowledged"].as_u64().unwrap() > 0, "the unclean leader lacked them: {r}");
    assert!(r["lost_acknowledged"].as_u64() <= r["acknowledged"].as_u64(), "{r}");
    assert!(r["elections"].as_u64().unwrap() >= 1, "{r}");
}

#[test]
fn replica_faults_are_checked_with_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let workload = dir.path().join("w.yaml");
    std::fs::write(
        &workload,
        "name: bad\ntopic: { replication.factor: 3, faults: [{ at: 1s, action: stop, broker: 3 }] }\nrecords: { duration: 1s }\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kbench")).arg("validate").arg(&workload).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("faults[0].broker") && err.contains("brokers 0 to 2"), "{err}");
}
