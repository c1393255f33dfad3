//! Disk faults in `kbench run` (`engine.io: sim`): a power loss drops what no fdatasync made
//! durable, and the audit counts acknowledged records lost, in all and per fault. Without any fsync
//! every acknowledged record is unsynced, so a power loss of every broker once records were
//! acknowledged must lose some; with flush.messages=1, or when one broker loses power and the
//! others keep the ISR's copies, none may be lost. Work is bounded by record counts, not times.

use std::path::Path;
use std::process::{Command, Output};

fn workload(dir: &Path, topic: &str, extra: &str) -> std::path::PathBuf {
    let path = dir.join("w.yaml");
    std::fs::write(
        &path,
        format!(
            "name: power-loss-test\nengine: {{ kind: embedded, io: sim }}\n\
             topic: {{ name: t, partitions: 2, replication.factor: 3, min.insync.replicas: 2, \
             replica.lag.time.max.ms: 500, {topic} }}\n\
             producer: {{ threads: 2, linger.ms: 2, acks: all, enable.idempotence: false }}\n\
             records: {{ count: 6000, warmup: 200ms, rate: 4000, max_error_ratio: 1, \
             key: {{ distribution: uniform, cardinality: 50 }} }}\n{extra}"
        ),
    )
    .unwrap();
    path
}

fn kbench(args: &[&str], workload: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kbench")).args(args).arg(workload).output().unwrap()
}

/// Runs the workload; the first case's `summary.replication`.
fn run(dir: &Path, topic: &str) -> serde_json::Value {
    let w = workload(dir, topic, "");
    let out_dir = dir.join("run");
    let out = kbench(&["run", "--quiet", "--out", out_dir.to_str().unwrap()], &w);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let run: serde_json::Value = serde_json::from_slice(&std::fs::read(out_dir.join("run.json")).unwrap()).unwrap();
    run["cases"][0]["summary"]["replication"].clone()
}

fn n(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

#[test]
fn every_broker_losing_power_without_fsync_loses_acknowledged_records() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), "faults: [{ at: 400ms, action: power-loss, broker: all }]");
    let losses = r["fault_losses"].as_array().unwrap_or_else(|| panic!("{r}"));
    assert_eq!(losses.len(), 1, "{r}");
    let before = n(&losses[0]["acknowledged_before"]);
    assert!(before > 0, "records were acknowledged before the fault: {r}");
    // Nothing was ever fsynced: what survives is at most a torn run of sectors per segment.
    let lost = n(&losses[0]["lost_acknowledged"]);
    assert!(lost > 0 && lost <= before, "{r}");
    assert!(n(&r["lost_acknowledged"]) >= lost, "{r}");
    assert!(r["faults"][0].as_str().unwrap().contains("power loss of every broker"), "{r}");
    assert_eq!(r["converged"], true, "{r}");
}

#[test]
fn with_flush_messages_1_every_broker_losing_power_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), "flush.messages: 1, faults: [{ at: 400ms, action: power-loss, broker: all }]");
    let losses = r["fault_losses"].as_array().unwrap_or_else(|| panic!("{r}"));
    assert!(n(&losses[0]["acknowledged_before"]) > 0, "{r}");
    assert_eq!(losses[0]["lost_acknowledged"], 0, "{r}");
    assert_eq!(r["lost_acknowledged"], 0, "{r}");
    assert_eq!(r["converged"], true, "{r}");
}

#[test]
fn one_broker_losing_power_with_acks_all_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    // The leader loses power: its unsynced log is gone, the ISR's other members have every record
    // acknowledged; it comes back as a follower, cuts its log back and catches up.
    let r = run(dir.path(), "faults: [{ at: 400ms, action: power-loss, broker: leader }]");
    let losses = r["fault_losses"].as_array().unwrap_or_else(|| panic!("{r}"));
    assert!(n(&losses[0]["acknowledged_before"]) > 0, "{r}");
    assert_eq!(losses[0]["lost_acknowledged"], 0, "{r}");
    assert_eq!(r["lost_acknowledged"], 0, "{r}");
    assert!(n(&r["elections"]) >= 1, "the leader's power loss moved leadership: {r}");
    assert_eq!(r["converged"], true, "{r}");
}

#[test]
fn a_full_disk_a_failed_fsync_and_a_slow_disk_lose_nothing_with_acks_all_and_heal() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(
        dir.path(),
        "flush.ms: 20, faults: [{ at: 0ms, action: slow-disk, broker: 1, delay: 2ms, until: 300ms }, \
         { at: 100ms, action: disk-full, broker: 2, until: 500ms }, { at: 600ms, action: fsync-failure, broker: 1 }]",
    );
    let faults: Vec<&str> = r["faults"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert!(faults.iter().any(|f| f.contains("broker 2's disk is full")), "{faults:?}");
    assert!(faults.iter().any(|f| f.contains("broker 2's disk has space again; restarted")), "{faults:?}");
    assert!(faults.iter().any(|f| f.contains("broker 1's next fdatasync fails")), "{faults:?}");
    assert_eq!(r["fault_losses"].as_array().unwrap().len(), 3, "{r}");
    assert_eq!(r["lost_acknowledged"], 0, "{r}");
    assert_eq!(r["converged"], true, "the offline brokers restarted when healed: {r}");
}

/// `kbench validate`'s stderr for a workload with `topic` and `engine` (not the default sim).
fn refused(dir: &Path, engine: &str, topic: &str) -> String {
    let path = dir.join("bad.yaml");
    std::fs::write(
        &path,
        format!("name: bad\nengine: {{ kind: embedded, io: {engine} }}\ntopic: {{ replication.factor: 3, {topic} }}\nrecords: {{ duration: 2s }}\n"),
    )
    .unwrap();
    let out = kbench(&["validate"], &path);
    assert!(!out.status.success(), "accepted: {topic}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn disk_faults_are_refused_with_their_place_without_the_simulated_disk_or_when_malformed() {
    let dir = tempfile::tempdir().unwrap();
    let e = refused(dir.path(), "pwrite", "faults: [{ at: 1s, action: power-loss, broker: all }]");
    assert!(e.contains("bad.yaml:3") && e.contains("faults[0].action"), "{e}");
    assert!(e.contains("engine.io: sim") && e.contains("pwrite"), "{e}");
    let e = refused(dir.path(), "sim", "faults: [{ at: 1s, action: power-loss, broker: all, until: 2s }]");
    assert!(e.contains("faults[0].until") && e.contains("no until"), "{e}");
    let e = refused(dir.path(), "sim", "faults: [{ at: 1s, action: stop, broker: all }]");
    assert!(e.contains("faults[0].broker") && e.contains("only power-loss"), "{e}");
    let e = refused(dir.path(), "sim", "faults: [{ at: 1s, action: slow-disk, broker: 1 }]");
    assert!(e.contains("faults[0].delay") && e.contains("slow-disk needs a delay"), "{e}");
    let e = refused(dir.path(), "sim", "faults: [{ at: 1s, action: disk-full, broker: 3 }]");
    assert!(e.contains("faults[0].broker") && e.contains("brokers 0 to 2, not 3"), "{e}");
    let e = refused(dir.path(), "sim", "faults: [{ at: 1s, action: fsync-failure }]");
    assert!(e.contains("faults[0].broker") && e.contains("which broker"), "{e}");
}
