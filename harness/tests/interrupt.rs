//! Ctrl-C during `kbench run`: the first says what it stops and the run ends with the finished
//! cases, the interrupted one, a report and no engine data left behind, exit 130; a second Ctrl-C
//! does the same at once. The signal is sent once the first case is measuring (its folder exists).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn start(dir: &Path) -> (Child, PathBuf) {
    start_with(dir, "pwrite", "")
}

/// A 120 s case at 2,000 records/s on engine backend `io`, with `topic_extra` added to the topic.
fn start_with(dir: &Path, io: &str, topic_extra: &str) -> (Child, PathBuf) {
    let workload = dir.join("w.yaml");
    std::fs::write(
        &workload,
        format!(
            "name: interrupt\nengine: {{ kind: embedded, io: {io} }}\ntopic: {{ name: t, partitions: 1{topic_extra} }}\n\
             records: {{ duration: 120s, warmup: 0s, rate: 2000 }}\nsweep:\n  producer.linger.ms: [0, 5]\n"
        ),
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
    // The case runs on the simulated disk with every write and fdatasync taking a second, so that
    // finishing it after the first Ctrl-C (its writes still queued) takes seconds on any host: the
    // second Ctrl-C, sent as soon as the first has been taken (its message is on stderr; two signals
    // sent back to back would arrive as one), reaches a run that is still stopping.
    let dir = tempfile::tempdir().unwrap();
    let (mut child, out) =
        start_with(dir.path(), "sim", ", faults: [{ at: 0s, action: slow-disk, broker: 0, delay: 1s }]");
    wait_measuring(&out);
    let mut stderr_pipe = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match std::io::Read::read(&mut stderr_pipe, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    all.extend_from_slice(&buf[..n]);
                    let _ = tx.send(String::from_utf8_lossy(&all).into_owned());
                }
            }
        }
        String::from_utf8_lossy(&all).into_owned()
    });
    sigint(&child);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let seen = rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()));
        match seen {
            Ok(text) if text.contains("Ctrl-C again to stop at once") => break,
            Ok(_) => {}
            Err(e) => panic!("the first Ctrl-C was never taken ({e})"),
        }
    }
    assert!(child.try_wait().unwrap().is_none(), "the run ended before the second Ctrl-C, though its disk is slow");
    let second = std::time::Instant::now();
    sigint(&child);
    let status = child.wait().unwrap();
    let waited = second.elapsed();
    let stderr = reader.join().unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("second Ctrl-C: stopping at once"), "{stderr}");
    check_ended(&out, &stderr);
    // At once: without waiting for the queued one-second writes (several of them) to finish.
    assert!(waited < Duration::from_secs(30), "the second Ctrl-C took {waited:?}: {stderr}");
}
