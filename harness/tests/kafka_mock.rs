//! `engine.kind: kafka` against librdkafka's in-process mock cluster (`bootstrap.servers: mock:3`):
//! a small workload runs end to end with complete results, the mock cluster's broker faults show up
//! as counted errors, and the side-by-side workload puts both engines in one report.
#![cfg(feature = "kafka")]

mod kafka_support;

use std::path::PathBuf;
use std::process::Command;

use kafka_support::*;

#[test]
fn a_small_workload_on_a_three_broker_mock_cluster_writes_complete_results() {
    let dir = tempfile::tempdir().unwrap();
    let run = run(
        dir.path(),
        "name: kafka-mock\nengine: { kind: kafka, bootstrap.servers: 'mock:3' }\ntopic: { name: orders, partitions: 3 }\n\
         producer: { threads: 2, acks: all, linger.ms: 2, compression.type: lz4 }\n\
         records: { duration: 2s, warmup: 300ms, rate: 3000, key: { distribution: uniform, cardinality: 100 } }\n\
         consumers: { members: 2, commit: after-processing, session.timeout.ms: 6000 }\n",
    );
    assert_eq!(run["complete"], true, "{run}");
    let case = &run["cases"][0];
    assert_eq!(case["status"], "ok");
    let s = &case["summary"];
    // 2 s at 3000/s: every record sent in the measured phase was acknowledged, none failed.
    let records = s["records"].as_u64().unwrap();
    assert!((5000..=6500).contains(&records), "records {records}: {s}");
    assert_eq!(s["errors"], 0, "{s}");
    for (stage, every) in [("end_to_end_ns", 1), ("end_to_end_actual_ns", 1), ("send_ns", 8)] {
        // A record scheduled right at the start of measurement may be recorded just before the
        // histograms are reset: counts agree to a few records. The send stage times every 8th
        // record of each thread (docs/RESULTS-FORMAT.md).
        let count = s[stage]["count"].as_u64().unwrap();
        assert!(count.abs_diff(records / every) <= 5, "{stage}: {count} of {records} / {every}: {s}");
        assert!(s[stage]["p99"].as_u64().unwrap() > 0, "{stage}: {s}");
    }
    assert!(s["end_to_end_ns"]["p50"].as_u64().unwrap() >= s["send_ns"]["p50"].as_u64().unwrap());
    let c = &s["consumers"];
    assert!(c["processed"].as_u64().unwrap() >= records, "{c}");
    for field in ["lost", "duplicated", "out_of_order"] {
        assert_eq!(c[field], 0, "{field}: {c}");
    }
    let k = &s["kafka"];
    assert!(k["client"].as_str().unwrap().starts_with("librdkafka 2."), "{k}");
    assert_eq!(k["bootstrap_servers"], "mock:3");
    let run_dir = dir.path().join("run");
    for f in ["report.md", "report.html"] {
        assert!(std::fs::metadata(run_dir.join(f)).unwrap().len() > 0, "{f}");
    }
    for f in ["hlog", "intervals_csv", "hgrm"] {
        let path = run_dir.join(case["files"][f].as_str().unwrap());
        assert!(std::fs::metadata(&path).unwrap().len() > 0, "{}", path.display());
    }
    let hlog = std::fs::read_to_string(run_dir.join(case["files"]["hlog"].as_str().unwrap())).unwrap();
    assert!(hlog.contains("Tag=e2e,") && hlog.contains("Tag=send,"), "{hlog}");
    let csv = std::fs::read_to_string(run_dir.join(case["files"]["intervals_csv"].as_str().unwrap())).unwrap();
    assert!(csv.lines().count() >= 3, "{csv}");
}

#[test]
fn mock_cluster_faults_are_counted_as_errors() {
    let dir = tempfile::tempdir().unwrap();
    // Refused produce requests fail their records; with every broker down, records time out after
    // delivery.timeout.ms and the client reports the brokers unreachable. The errors are the point
    // here, not the verdict (max_error_ratio: 1; the verdict has its tests in failures.rs).
    let run = run(
        dir.path(),
        "name: kafka-faults\nengine:\n  kind: kafka\n  bootstrap.servers: 'mock:3'\n  mock_faults:\n\
         \x20   - { at: 300ms, action: request-errors, request: produce, error: MESSAGE_TOO_LARGE, count: 3 }\n\
         \x20   - { at: 1s, action: broker-down, broker: 1 }\n\
         \x20   - { at: 1s, action: broker-down, broker: 2 }\n\
         \x20   - { at: 1s, action: broker-down, broker: 3 }\n\
         topic: { name: t, partitions: 3 }\n\
         producer: { linger.ms: 2, delivery.timeout.ms: 500 }\n\
         records: { duration: 2s, warmup: 300ms, rate: 2000, max_error_ratio: 1 }\n",
    );
    let s = &run["cases"][0]["summary"];
    let k = &s["kafka"];
    assert_eq!(k["faults_applied"].as_array().unwrap().len(), 4, "{k}");
    assert!(k["delivery_errors"]["MessageSizeTooLarge"].as_u64().unwrap_or(0) > 0, "refused requests: {k}");
    assert!(k["delivery_errors"]["MessageTimedOut"].as_u64().unwrap_or(0) > 0, "brokers down: {k}");
    assert!(sum(&k["client_errors"]) > 0, "the client saw the brokers go: {k}");
    assert_eq!(s["errors"].as_u64().unwrap(), sum(&k["send_errors"]) + sum(&k["delivery_errors"]), "{s}");
    // Records before the faults got through (how many depends on the host's speed, not on kbench).
    assert!(s["records"].as_u64().unwrap() > 0, "{s}");
}

#[test]
fn keys_without_a_librdkafka_meaning_stop_the_run_before_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("w.yaml");
    std::fs::write(
        &file,
        "name: bad\nengine: { kind: kafka, bootstrap.servers: 'mock:1' }\nproducer: { accumulator: mutex }\nrecords: { duration: 1s }\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kbench"))
        .args(["run", "--quiet", "--out"])
        .arg(dir.path().join("run"))
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("producer.accumulator") && err.contains("librdkafka"), "{err}");
    assert!(!dir.path().join("run").exists(), "nothing ran");
}

#[test]
fn the_side_by_side_workload_puts_both_engines_in_one_report() {
    let dir = tempfile::tempdir().unwrap();
    let workload: PathBuf = [env!("CARGO_MANIFEST_DIR"), "..", "workloads", "kafka-side-by-side.yaml"].iter().collect();
    let run = kbench(
        &[workload.to_str().unwrap(), "--set", "records.duration=1s", "--set", "records.warmup=200ms"],
        &dir.path().join("run"),
    );
    let cases = run["cases"].as_array().unwrap();
    let kinds: Vec<&str> = cases.iter().map(|c| c["params"]["engine.kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["embedded", "embedded", "kafka", "kafka"], "{run}");
    for c in cases {
        assert_eq!(c["status"], "ok", "{c}");
        assert!(c["summary"]["records"].as_u64().unwrap() > 0, "{c}");
        assert_eq!(c["summary"].get("kafka").is_some(), c["params"]["engine.kind"] == "kafka", "{c}");
    }
    let report = std::fs::read_to_string(dir.path().join("run/report.md")).unwrap();
    assert!(report.contains("embedded") && report.contains("kafka"), "{report}");
}

#[test]
fn a_cluster_named_by_address_is_used_as_it_is_and_each_case_starts_at_the_log_end() {
    // A mock cluster started here stands in for a real one: kbench sees only its address.
    let cluster = rdkafka::mocking::MockCluster::new(2).unwrap();
    cluster.create_topic("existing", 2, 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let workload = |topic: &str, partitions: u32| {
        format!(
            "name: kafka-address\nengine: {{ kind: kafka, bootstrap.servers: '{}' }}\n\
             topic: {{ name: {topic}, partitions: {partitions} }}\nproducer: {{ linger.ms: 1 }}\n\
             records: {{ count: 1000, warmup: 200ms, rate: 1000 }}\nconsumers: {{ members: 1 }}\nrepeat: 2\n",
            cluster.bootstrap_servers()
        )
    };
    // Two cases on one topic: the second case's group starts where the first case's records end,
    // so neither counts the other's records.
    let run = run(dir.path(), &workload("existing", 2));
    for case in run["cases"].as_array().unwrap() {
        let c = &case["summary"]["consumers"];
        assert_eq!(case["status"], "ok", "{case}");
        assert!(c["acknowledged"].as_u64().unwrap() >= 1000, "{c}");
        assert_eq!(c["lost"], 0, "{c}");
        assert_eq!(c["duplicated"], 0, "{c}");
    }
    // The topic exists with another partition count: refused, naming the key.
    let file = dir.path().join("bad.yaml");
    std::fs::write(&file, workload("existing", 3)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kbench"))
        .args(["run", "--quiet", "--out"])
        .arg(dir.path().join("bad"))
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("topic.partitions") && err.contains("exists") && err.contains("2 partitions"), "{err}");
}
