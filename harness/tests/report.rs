//! `kbench report` and `kbench compare` on stored runs (harness/tests/fixtures, made by the commands
//! in fixtures/compare.yaml): `base`, a `rerun` of the same build and settings, and `slower`, the same
//! sweep with flush.messages=1 (an fsync per record). Runs are copied to a temporary directory first,
//! because both commands write their output into the run directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(name: &str, into: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    let dst = into.join(name);
    copy_dir(&src, &dst);
    dst
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), to).unwrap();
        }
    }
}

fn kbench(args: &[&Path]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kbench"));
    cmd.args(args.iter().map(|p| p.as_os_str()));
    cmd.output().expect("kbench runs")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn report_rebuilds_table_winners_and_charts_from_the_run_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let run = fixture("base", tmp.path());
    let out = kbench(&[Path::new("report"), &run]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let md = read(&run.join("report.md"));
    assert!(md.contains("## Winners") && md.contains("Highest throughput: producer.linger.ms="), "{md}");
    let rows = md.lines().filter(|l| l.starts_with("| #") && l[3..].starts_with(|c: char| c.is_ascii_digit())).count();
    assert_eq!(rows, 6, "one row per case (2 sweep points x 3 repeats)");

    let html = read(&run.join("report.html"));
    assert!(html.contains("<table>") && html.contains("Best throughput with p99"));
    // Throughput vs p99, percentiles, linger.ms vs throughput and vs p99, over time, MB/s vs machine.
    assert_eq!(html.matches("<svg").count(), 6, "figures drawn");
    for label in ["p99 end-to-end latency", "records/s", "percentile", "99.9%", "linger.ms", "MB/s", "lz4"] {
        assert!(html.contains(label), "report.html lacks `{label}`");
    }
    assert!(!html.contains("Not drawn"), "every case file was readable");
}

#[test]
fn report_survives_a_run_whose_cases_all_failed() {
    let tmp = tempfile::tempdir().unwrap();
    let run = fixture("base", tmp.path());
    let path = run.join("run.json");
    let mut json: serde_json::Value = serde_json::from_str(&read(&path)).unwrap();
    for c in json["cases"].as_array_mut().unwrap() {
        c["status"] = "failed".into();
        c["error"] = "disk full".into();
    }
    std::fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
    let out = kbench(&[Path::new("report"), &run]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let md = read(&run.join("report.md"));
    assert!(md.contains("Highest throughput: none"), "{md}");
}

#[test]
fn compare_is_quiet_on_itself_and_on_a_rerun_of_the_same_build() {
    let tmp = tempfile::tempdir().unwrap();
    let base = fixture("base", tmp.path());
    let rerun = fixture("rerun", tmp.path());
    let out = kbench(&[Path::new("compare"), &base, &base]);
    assert!(out.status.success(), "a run against itself: {}", String::from_utf8_lossy(&out.stdout));
    let out = kbench(&[Path::new("compare"), &base, &rerun]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "a re-run within noise must not fail: {text}");
    assert!(text.contains("Welch's t-test") && !text.contains("REGRESSION"), "{text}");
    let html = read(&rerun.join("compare.html"));
    assert_eq!(html.matches("<svg").count(), 2, "one overlaid percentile chart per matched case");
    assert!(html.contains("baseline (") && html.contains("candidate ("));
}

#[test]
fn compare_flags_a_real_regression_with_exit_status_1() {
    let tmp = tempfile::tempdir().unwrap();
    let base = fixture("base", tmp.path());
    let slower = fixture("slower", tmp.path());
    let out = kbench(&[Path::new("compare"), &base, &slower]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("REGRESSION"), "{text}");
    let md = read(&slower.join("compare.md"));
    assert!(md.contains("| p50 | p99 | p99.9 | max |"), "every percentile's change is shown: {md}");
    assert!(read(&slower.join("compare.html")).contains("REGRESSION"));
}
