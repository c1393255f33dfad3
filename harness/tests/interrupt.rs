//! Ctrl-C during `kbench run`: the first says what it stops and the run ends with the finished
//! cases, the interrupted one, a report and no engine data left behind, exit 130; a second Ctrl-C
//! does the same at once. The signal is sent once the first case is measuring (its folder exists).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn start(dir: &Path) -> (Child, PathBuf) {
    let workload = dir.join("w.yaml");
    std::fs::write(
        &workload,
        "name: interrupt\nengine: { kind: embedded, io: pwrite }\ntopic: { name: t, partitions: 1 }\n\
         records: { duration: 120s, warmup: 0s, rate: 2000 }\nsweep:\n  producer.linger.ms: [0, 5]\n",
    )
    .unwrap();
    let out = dir.join("run");
    let child = Command::new(env!("CARGO_BIN_EXE_kbench"))
        .args(["run", "--out", out.to_str().unwrap(), workload.to_str().unwrap()])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (child, out)
}

/// Waits (polling, at most 2 minutes) until the first case's folder exists: it is measuring.
fn wait_measuring(out: &Path) {
    for _ in 0..2400 {
        if std::fs::read_dir(out.join("cases")).is_ok_and(|mut d| d.next().is_some()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the first case never started");
}

fn sigint(child: &Child) {
    // SAFETY: kill(2) on the pid of a child this test spawned and has not yet waited for.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    assert_eq!(rc, 0);
}

fn check_ended(out: &Path, stderr: &str) -> serde_json::Value {
    let run: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["complete"], false, "{run}");
    let cases = run["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 1, "the interrupted case is recorded, the next never started: {run}");
    assert_eq!(cases[0]["status"], "interrupted", "{run}");
    assert!(out.join("report.md").is_file() && out.join("report.html").is_file(), "a report: {stderr}");
    let left: Vec<String> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".kbench-data"))
        .collect();
    assert!(left.is_empty(), "engine data left behind: {left:?}");
    assert!(stderr.contains("Ctrl-C: stopping case 000-linger.ms=0"), "says what it stops: {stderr}");
    run
}

#[test]
fn first_ctrl_c_stops_the_case_writes_the_report_and_removes_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let (child, out) = start(dir.path());
    wait_measuring(&out);
    sigint(&child);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    let run = check_ended(&out, &stderr);
    assert!(run["cases"][0]["summary"]["records"].as_u64().unwrap() > 0, "the figures of the part that ran: {run}");
    assert!(out.join("cases/000-linger.ms=0/intervals.csv").is_file(), "the case's files are finished");
}

#[test]
fn second_ctrl_c_does_the_same_at_once() {
    // Two signals sent back to back arrive as one (a pending signal is not queued twice): the second
    // follows once the first has been taken, while the case still drains. On a fast host the first
    // may finish everything before the second lands; then the scenario is run again (the first
    // Ctrl-C's own path is the test above), and the test fails if the second never lands.
    for _attempt in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let (mut child, out) = start(dir.path());
        wait_measuring(&out);
        sigint(&child);
        std::thread::sleep(Duration::from_millis(30));
        if child.try_wait().unwrap().is_some() {
            continue;
        }
        sigint(&child);
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(130), "{stderr}");
        check_ended(&out, &stderr);
        if stderr.contains("second Ctrl-C: stopping at once") {
            return;
        }
    }
    panic!("in 5 attempts the second Ctrl-C never reached a run still stopping");
}
