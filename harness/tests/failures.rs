//! Failures are never successes: a case whose sends fail is `failed` and the run exits 1 after
//! running every case; what cannot run is refused (exit 2) with its file:line and key before anything
//! runs. Work is bounded by record counts; nothing here depends on how fast the host is.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn kbench(args: &[&str], workload: &Path, cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kbench")).args(args).arg(workload).current_dir(cwd).output().unwrap()
}

fn write(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("w.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_case_whose_sends_all_fail_is_failed_and_the_run_exits_1_after_the_other_cases() {
    let dir = tempfile::tempdir().unwrap();
    // acks=all needs both replicas in sync; broker 1 stops at once and leaves the ISR after 100 ms:
    // from then every send fails with NotEnoughReplicas. The second case has no fault.
    let workload = write(
        dir.path(),
        "name: all-fail\nengine: { kind: embedded, io: pwrite }\n\
         topic: { name: t, partitions: 1, replication.factor: 2, min.insync.replicas: 2, replica.lag.time.max.ms: 100 }\n\
         producer: { acks: all, linger.ms: 1 }\n\
         records: { count: 400, rate: 1000 }\n\
         sweep:\n  topic.faults: [[{ at: 0ms, action: stop, broker: 1 }], []]\n",
    );
    let out_dir = dir.path().join("run");
    let out = kbench(&["run", "--quiet", "--out", out_dir.to_str().unwrap()], &workload, dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "a failed case exits 1: {stderr}");
    let run: serde_json::Value = serde_json::from_slice(&std::fs::read(out_dir.join("run.json")).unwrap()).unwrap();
    let cases = run["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 2, "both cases ran: {run}");
    let failed = &cases[0];
    assert_eq!(failed["status"], "failed", "{failed}");
    let errors = failed["summary"]["errors"].as_u64().unwrap();
    let records = failed["summary"]["records"].as_u64().unwrap();
    assert!(errors > 0, "the failed sends are counted: {failed}");
    assert!(errors as f64 > 0.01 * (errors + records) as f64, "{failed}");
    let message = failed["error"].as_str().unwrap();
    assert!(
        message.contains(&format!("of {} sends failed", records + errors))
            && message.contains("records.max_error_ratio 0.01"),
        "{message}"
    );
    assert!(stderr.contains(message), "stderr repeats why: {stderr}");
    let ok = &cases[1];
    assert_eq!(ok["status"], "ok", "{ok}");
    assert_eq!(ok["error"], serde_json::Value::Null);
    assert_eq!(ok["summary"]["records"], 400, "{ok}");
    assert_eq!(run["complete"], false, "a run with a failed case is not complete");
}

#[test]
fn max_error_ratio_reaches_the_run_and_an_error_free_case_is_ok() {
    let dir = tempfile::tempdir().unwrap();
    let workload =
        write(dir.path(), "name: fine\nengine: { io: discard }\nrecords: { count: 200, max_error_ratio: 0.5 }\n");
    let out_dir = dir.path().join("run");
    let out = kbench(&["run", "--quiet", "--out", out_dir.to_str().unwrap()], &workload, dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let run: serde_json::Value = serde_json::from_slice(&std::fs::read(out_dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["cases"][0]["status"], "ok");
    assert_eq!(run["workload"]["records"]["max_error_ratio"], 0.5);
}

/// Runs `validate` and `run` on `text`: both exit 2 naming `key` at `line`, and nothing ran.
fn refused(text: &str, key: &str, line: u32, says: &str) {
    let dir = tempfile::tempdir().unwrap();
    let workload = write(dir.path(), text);
    for command in ["validate", "run"] {
        let out = kbench(&[command], &workload, dir.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        let place = format!("w.yaml:{line}:");
        assert!(
            stderr.contains(&place) && stderr.contains(&format!("{key}:")),
            "{command} must name {place} and {key}: {stderr}"
        );
        assert!(stderr.contains(says), "{command}: expected `{says}` in {stderr}");
        assert!(!dir.path().join("results").exists(), "{command}: nothing may run: {stderr}");
    }
}

#[test]
fn a_record_over_max_request_size_is_refused_like_kafka() {
    refused(
        "name: big\nengine: { io: discard }\nrecords:\n  count: 10\n  value: { size: 2GiB }\n",
        "records.value.size",
        5,
        "RecordTooLargeException: The message is 2147483737 bytes when serialized which is larger than 1048576, which is the value of the max.request.size configuration",
    );
    // Key, value and headers count: 1,048,400 bytes of value alone fit, with a key and headers not.
    refused(
        "name: big\nengine: { io: discard }\nrecords:\n  count: 10\n  headers: 4\n  key: { distribution: uniform, size: 64 }\n  value: { size: 1048400 }\n",
        "records.value.size",
        7,
        "which is the value of the max.request.size configuration",
    );
}

#[test]
fn a_record_over_buffer_memory_is_refused_like_kafka() {
    refused(
        "name: mem\nengine: { io: discard }\nproducer: { batch.size: 1024, buffer.memory: 65536 }\nrecords:\n  count: 10\n  value:\n    size: 100000\n",
        "records.value.size",
        7,
        "larger than the total memory buffer you have configured with the buffer.memory configuration",
    );
}

#[test]
fn batch_size_above_buffer_memory_is_refused() {
    refused(
        "name: bs\nengine: { io: discard }\nproducer:\n  batch.size: 67108864\n  buffer.memory: 1048576\nrecords: { count: 10 }\n",
        "producer.batch.size",
        4,
        "is above buffer.memory 1,048,576",
    );
}

#[test]
fn min_insync_replicas_above_replication_factor_with_acks_all_is_refused() {
    refused(
        "name: isr\nengine: { io: discard }\ntopic:\n  replication.factor: 2\n  min.insync.replicas: 3\nproducer: { acks: all }\nrecords: { count: 10 }\n",
        "topic.min.insync.replicas",
        5,
        "NotEnoughReplicas",
    );
}

#[test]
fn topic_names_kafka_refuses_are_refused() {
    for (name, says) in [
        ("\"a b\"", "contains a character other than ASCII alphanumerics"),
        ("\"..\"", "cannot be \".\" or \"..\""),
        ("\"\"", "can't be empty"),
        (&"x".repeat(250) as &str, "can't be longer than 249 characters"),
    ] {
        refused(&format!("name: topic\ntopic:\n  name: {name}\nrecords: {{ count: 10 }}\n"), "topic.name", 3, says);
    }
    let dir = tempfile::tempdir().unwrap();
    let ok = write(
        dir.path(),
        &format!("name: topic\ntopic: {{ name: {} }}\nrecords: {{ count: 10 }}\n", "a.B_-9".repeat(41)),
    );
    assert!(kbench(&["validate"], &ok, dir.path()).status.success(), "246 legal characters are a legal name");
}

#[test]
fn rates_no_schedule_can_honour_are_refused_with_the_number() {
    refused(
        "name: slow\nrecords:\n  duration: 1s\n  rate: 0.000001\n",
        "records.rate",
        4,
        "schedules 0.000 records: below one record",
    );
    refused(
        "name: fast\nproducer: { threads: 2 }\nrecords:\n  duration: 1s\n  rate: 1e12\n",
        "records.rate",
        5,
        "at most 1,000,000,000 records/s per thread (2,000,000,000 with 2 thread(s))",
    );
}

#[test]
fn a_sweep_point_that_cannot_run_is_named() {
    refused(
        "name: sweep\nengine: { io: discard }\nrecords: { count: 10 }\nsweep:\n  records.value.size: [100, 1000, 4000000]\n",
        "records.value.size",
        5,
        "in sweep case 002-size=4000000 (records.value.size: 4000000): RecordTooLargeException: The message is 4000088 bytes",
    );
}

#[test]
fn max_error_ratio_outside_0_to_1_is_refused() {
    refused("name: r\nrecords:\n  count: 10\n  max_error_ratio: 2\n", "records.max_error_ratio", 4, "between 0 and 1");
}

#[test]
fn ctrl_c_exits_130_and_keeps_the_run_marked_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let workload = write(dir.path(), "name: long\nengine: { io: discard }\nrecords: { duration: 10m, rate: 1000 }\n");
    let out_dir = dir.path().join("run");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kbench"))
        .args(["run", "--quiet", "--out"])
        .arg(&out_dir)
        .arg(&workload)
        .current_dir(dir.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The run has started once its first case has written interval files.
    let started = std::time::Instant::now();
    while !out_dir.join("cases/000").exists() {
        assert!(started.elapsed() < std::time::Duration::from_secs(300), "the case never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // SAFETY: kill(2) on the pid of the child this test spawned and still owns.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) }, 0);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let run: serde_json::Value = serde_json::from_slice(&std::fs::read(out_dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["complete"], false);
    assert_eq!(run["cases"][0]["status"], "interrupted", "{run}");
}
