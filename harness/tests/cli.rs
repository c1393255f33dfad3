//! The command line around a run: `--only` narrows the sweep, `--out` never overwrites a run unless
//! `--replace`, and errors name the path the user gave. Work is bounded by record counts.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn kbench(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kbench")).args(args).current_dir(cwd).output().unwrap()
}

fn workload(dir: &Path) -> PathBuf {
    let path = dir.join("w.yaml");
    std::fs::write(
        &path,
        "name: cli\nengine: { kind: embedded, io: pwrite }\ntopic: { name: t, partitions: 1 }\n\
         records: { count: 200, rate: 0 }\nsweep:\n  producer.linger.ms: [0, 5, 10]\n",
    )
    .unwrap();
    path
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn only_runs_the_selected_cases_and_out_refuses_an_earlier_run_unless_replace() {
    let dir = tempfile::tempdir().unwrap();
    let w = workload(dir.path());
    let out = dir.path().join("run");
    let (w, o) = (w.to_str().unwrap(), out.to_str().unwrap());
    let first = kbench(&["run", "--quiet", "--only", "linger.ms=5", "--out", o, w], dir.path());
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let run: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    let cases = run["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 1, "{run}");
    assert_eq!(cases[0]["params"]["producer.linger.ms"], 5);
    assert_eq!(run["complete"], true, "the selected cases all ran: {run}");

    // The same --out again: refused before anything runs, naming the path; the run is untouched.
    let again = kbench(&["run", "--quiet", "--out", o, w], dir.path());
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
    assert!(
        stderr(&again).contains(&format!("--out {o}: already holds a run (run.json); pass --replace")),
        "{}",
        stderr(&again)
    );
    let kept: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(kept["cases"].as_array().unwrap().len(), 1);

    let replaced = kbench(&["run", "--quiet", "--replace", "--only", "linger.ms=0", "--out", o, w], dir.path());
    assert_eq!(replaced.status.code(), Some(0), "{}", stderr(&replaced));
    let run: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["cases"][0]["params"]["producer.linger.ms"], 0, "{run}");

    // A directory that holds something else is refused even with --replace.
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "mine").unwrap();
    let refused = kbench(&["run", "--quiet", "--replace", "--out", other.to_str().unwrap(), w], dir.path());
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("is not empty and holds no run"), "{}", stderr(&refused));
    assert!(other.join("notes.txt").exists());

    // A selection that matches nothing is refused with the sweep's values.
    let none = kbench(&["run", "--quiet", "--only", "linger.ms=7", w], dir.path());
    assert_eq!(none.status.code(), Some(2));
    assert!(
        stderr(&none).contains("no case matches (the sweep has producer.linger.ms: 0, 5, 10)"),
        "{}",
        stderr(&none)
    );
}

#[test]
fn an_unwritable_out_is_named_as_given() {
    let dir = tempfile::tempdir().unwrap();
    let w = workload(dir.path());
    let o = kbench(
        &["run", "--quiet", "--only", "linger.ms=0", "--out", "/proc/kbench-x", w.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("creating the results directory /proc/kbench-x"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("under results"), "{}", stderr(&o));
}
