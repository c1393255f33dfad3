//! `kbench report` and `kbench compare` on stored runs (harness/tests/fixtures, made by the commands
//! in fixtures/compare.yaml): `base`, a `rerun` of the same build and settings, and `slower`, the same
//! sweep with flush.messages=1 (an fsync per record); other candidates are copies of `base` with
//! run.json edited (failed, missing, interrupted, unmatched or slowed-down cases). Runs are copied to a temporary directory first,
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

/// Rewrites the run.json of `run` through `edit`.
fn edit_run(run: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = run.join("run.json");
    let mut json: serde_json::Value = serde_json::from_str(&read(&path)).unwrap();
    edit(&mut json);
    std::fs::write(&path, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
}

/// A copy of the `base` fixture named `name`, edited.
fn base_copy(name: &str, into: &Path, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let dst = into.join(name);
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/base"), &dst);
    edit_run(&dst, edit);
    dst
}

fn cases(json: &mut serde_json::Value) -> &mut Vec<serde_json::Value> {
    json["cases"].as_array_mut().unwrap()
}

fn compare(base: &Path, cand: &Path) -> (Option<i32>, String) {
    let out = kbench(&[Path::new("compare"), base, cand]);
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
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
    assert!(
        md.contains("## Winners")
            && md.lines().any(|l| l.starts_with("- Highest throughput: #") && l.contains(" producer.linger.ms=")),
        "{md}"
    );
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

/// A case that lost acknowledged records after a leader failure is in the table, under Concerns with
/// its faults and elections, and never crowned, even with the highest throughput; an open-loop case
/// competes only with open-loop cases.
#[test]
fn report_shows_lost_acknowledged_records_and_never_crowns_them_or_mixes_loops() {
    let tmp = tempfile::tempdir().unwrap();
    let run = base_copy("lossy", tmp.path(), |json| {
        let all = cases(json);
        for c in all.iter_mut() {
            c["summary"]["replication"] = serde_json::json!({
                "replication_factor": 3, "min_insync_replicas": 2, "acknowledged": 160000,
                "lost_acknowledged": 0, "elections": 1, "converged": true, "faults": []
            });
        }
        let lossy = &mut all[0];
        lossy["params"]["topic.faults"] = serde_json::json!([{"at": "3s", "action": "fail-leader", "until": "6s"}]);
        lossy["summary"]["records_per_sec"] = 9.9e6.into();
        lossy["summary"]["end_to_end_ns"]["p99"] = 1000.into();
        lossy["summary"]["errors"] = 22.into();
        lossy["summary"]["replication"]["lost_acknowledged"] = 29.into();
        lossy["summary"]["replication"]["elections"] = 2.into();
        lossy["summary"]["replication"]["faults"] =
            serde_json::json!(["3.0s fail leader broker 0 (epoch 1)", "6.0s restart failed leader broker 0"]);
        let open = &mut all[5];
        open["summary"]["target_rate"] = 20000.0.into();
    });
    let out = kbench(&[Path::new("report"), &run]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let md = read(&run.join("report.md"));
    let winners = md.split("## Winners").nth(1).unwrap().split("## ").next().unwrap();
    let crowned: Vec<&str> = winners.lines().filter(|l| l.starts_with("- ") && !l.contains("Not considered")).collect();
    assert_eq!(crowned.len(), 6, "three winners per loop: {winners}");
    assert!(crowned.iter().all(|l| !l.contains(": #0 ")), "the case that lost records is not crowned: {winners}");
    assert!(winners.contains("Highest throughput (closed loop): #"), "{winners}");
    assert!(winners.contains("Highest throughput (open loop at 20,000 records/s): #1.2 "), "{winners}");
    assert!(winners.contains("Not considered (closed loop): #0 (lost 29 acknowledged)"), "{winners}");
    let concerns = md.split("## Concerns").nth(1).expect("a Concerns section");
    assert!(
        concerns.contains(
            "#0 producer.linger.ms=0, topic.faults=fail-leader at 3s until 6s: lost 29 of 160,000 acknowledged records: \
             the log no longer has them after 3.0s fail leader broker 0 (epoch 1), 6.0s restart failed leader broker 0 \
             (2 leader election(s)"
        ),
        "{concerns}"
    );
    assert!(concerns.contains("22 of "), "errors within the ratio are told too: {concerns}");
    let header = md.lines().find(|l| l.starts_with("| #")).unwrap();
    for h in ["errors", "lost acknowledged", "elections", "faults applied", "concerns"] {
        assert!(header.contains(h), "report.md lacks column {h}: {header}");
    }
    let html = read(&run.join("report.html"));
    assert!(html.contains("<th>lost acknowledged</th>") && html.contains("<h2>Concerns</h2>"), "{html}");
    assert!(html.contains("lost 29 of 160,000 acknowledged records"), "report.html says why");
    assert!(html.contains("<tr class=\"warn\">"), "the barred case's row is marked");
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

/// `slower` (an fsync per record) has p99 3.5 times the baseline's at linger.ms=20, but its 3
/// repeats spread so wide (p99 36, 71 and 49 ms against 11, 24 and 10 ms) that Welch's t, 3.31 at
/// 2.69 degrees of freedom, stays below the exact 95% quantile (3.40). The old table, which took
/// the row of 3 degrees of freedom (3.182), called it a regression: this pins the exact quantile on
/// real data. The slowdown is still shown, with every percentile's change.
#[test]
fn compare_shows_the_fsync_per_record_slowdown_that_3_noisy_repeats_cannot_prove() {
    let tmp = tempfile::tempdir().unwrap();
    let base = fixture("base", tmp.path());
    let slower = fixture("slower", tmp.path());
    // Different settings (flush.messages) do not compare builds: a failure naming the key...
    let (code, text) = compare(&base, &slower);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("topic.flush.messages: null in the baseline, 1 in the candidate")
            && text.contains("--allow-setting-changes"),
        "{text}"
    );
    // ...unless asked for.
    let out = kbench(&[Path::new("compare"), Path::new("--allow-setting-changes"), &base, &slower]);
    let (code, text) = (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned());
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("workload settings differ (--allow-setting-changes): topic.flush.messages"), "{text}");
    assert!(text.contains("Result: no regression (2 case(s) compared)"), "{text}");
    let md = read(&slower.join("compare.md"));
    let header = md.lines().find(|l| l.starts_with("| case ") && l.contains("records/s base")).unwrap();
    let cells: Vec<&str> = header.split('|').map(str::trim).filter(|c| !c.is_empty()).collect();
    assert_eq!(
        cells[3..8],
        ["records/s change ↑", "p50 ↓", "p99 ↓", "p99.9 ↓", "max ↓"],
        "every percentile's change, and which way is better: {md}"
    );
    assert!(md.trim_end().ends_with("0 regressed, 0 improved, 2 within noise"), "{md}");
    let row = md.lines().find(|l| l.contains("producer.linger.ms=20")).unwrap();
    let cells: Vec<&str> = row.split('|').map(str::trim).filter(|c| !c.is_empty()).collect();
    assert_eq!(cells[5..], ["+250.3%", "+211.6%", "+140.3%", "3/3", "Welch 95%", "within noise"], "{row}");
}

/// Every repeat of the candidate 30% slower and its latencies 1.5 times longer than the baseline's:
/// a clear regression, whatever the noise of 3 repeats.
#[test]
fn compare_flags_a_clear_slowdown_with_exit_status_1() {
    let tmp = tempfile::tempdir().unwrap();
    let base = fixture("base", tmp.path());
    let slow = base_copy("slow", tmp.path(), |j| {
        for c in cases(j) {
            let s = &mut c["summary"];
            for k in ["records_per_sec", "bytes_per_sec"] {
                s[k] = (s[k].as_f64().unwrap() * 0.7).into();
            }
            for k in ["p50", "p99", "p999", "max"] {
                s["end_to_end_ns"][k] = (s["end_to_end_ns"][k].as_u64().unwrap() * 3 / 2).into();
            }
        }
    });
    let (code, text) = compare(&base, &slow);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("Result: REGRESSION: 2 case(s) slower beyond noise"), "{text}");
    assert_eq!(text.matches("| REGRESSION").count(), 2, "{text}");
    assert!(text.contains("-30.0%") && text.contains("+50.0%"), "{text}");
    let html = read(&slow.join("compare.html"));
    assert_eq!(html.matches("<tr class=\"regression\">").count(), 2, "{html}");
}

#[test]
fn compare_fails_a_candidate_with_a_failed_case_and_names_it() {
    let tmp = tempfile::tempdir().unwrap();
    let base = fixture("base", tmp.path());
    let cand = base_copy("failed", tmp.path(), |j| {
        let c = &mut cases(j)[4];
        c["status"] = "failed".into();
        c["error"] = "engine: disk full".into();
        c["summary"]["errors"] = 17.into();
    });
    let (code, text) = compare(&base, &cand);
    assert_eq!(code, Some(1), "a failed case fails the comparison: {text}");
    assert!(text.contains("## Candidate problems"), "{text}");
    let line = text.lines().find(|l| l.contains("001-linger.ms=20-r1")).unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("failed: engine: disk full (17 error(s) counted)"), "{line}");
    // The case's other repeats are still compared: 2 repeats of 1 s are too little data for a verdict.
    assert!(text.contains(" 3/2 |") && text.contains("| too little data |"), "{text}");
    assert!(read(&cand.join("compare.html")).contains("engine: disk full"));
}

#[test]
fn compare_fails_an_interrupted_incomplete_candidate() {
    let tmp = tempfile::tempdir().unwrap();
    let base = fixture("base", tmp.path());
    let cand = base_copy("interrupted", tmp.path(), |j| {
        j["complete"] = false.into();
        cases(j)[5]["status"] = "interrupted".into();
    });
    let (code, text) = compare(&base, &cand);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("incomplete: run.json says `complete: false`"), "{text}");
    assert!(text.lines().any(|l| l.contains("001-linger.ms=20-r2") && l.contains("interrupted")), "{text}");

    // Complete, all ok: the same figures pass.
    let cand = base_copy("complete", tmp.path(), |_| {});
    assert_eq!(compare(&base, &cand).0, Some(0));
}

#[test]
fn compare_fails_a_candidate_missing_a_case_of_the_baseline() {
    let tmp = tempfile::tempdir().unwrap();
    let base = fixture("base", tmp.path());
    let cand = base_copy("missing", tmp.path(), |j| cases(j).retain(|c| c["params"]["producer.linger.ms"] != 20));
    let (code, text) = compare(&base, &cand);
    assert_eq!(code, Some(1), "{text}");
    let line = text.lines().find(|l| l.contains("missing:")).unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("producer.linger.ms=20"), "{line}");
    // The other way round, a case only the candidate has is noted, and does not fail.
    let (code, text) = compare(&cand, &base);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("producer.linger.ms=20: new in the candidate, not compared"), "{text}");
}

#[test]
fn compare_fails_when_no_case_matches() {
    let tmp = tempfile::tempdir().unwrap();
    let base = fixture("base", tmp.path());
    let other = base_copy("other", tmp.path(), |j| {
        j["name"] = "another-workload".into();
        for c in cases(j) {
            let linger = c["params"]["producer.linger.ms"].as_u64().unwrap();
            c["params"] = serde_json::json!({ "producer.batch.size": 1000 + linger });
        }
    });
    let (code, text) = compare(&base, &other);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("nothing compared: no case has the same parameters"), "{text}");
    assert!(text.contains("No case was compared, so no test was made."), "{text}");
    assert!(
        !text.contains("Welch") && !text.contains("records/s base"),
        "no empty table under a Welch heading: {text}"
    );
    let html = read(&other.join("compare.html"));
    assert!(!html.contains("<svg") && html.contains("nothing compared"), "{html}");
}

#[test]
fn compare_at_one_repeat_of_one_second_has_too_little_data_and_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let first_only = |j: &mut serde_json::Value| cases(j).retain(|c| c["repeat"] == 0);
    let base = base_copy("base1", tmp.path(), first_only);
    let rerun = fixture("rerun", tmp.path());
    edit_run(&rerun, first_only);
    let (code, text) = compare(&base, &rerun);
    assert_eq!(code, Some(1), "no verdict is no pass: {text}");
    assert!(text.contains("2 case(s) with too little data for a verdict"), "{text}");
    assert!(text.contains("lengthen records.duration or raise repeat"), "{text}");
    assert_eq!(text.matches("| too little data |").count(), 2, "{text}");
    assert!(!text.contains("| REGRESSION"), "noise is not called a regression: {text}");
    assert!(text.trim_end().ends_with("0 regressed, 0 improved, 0 within noise, 2 with too little data"), "{text}");
}

/// `single` and `single-rerun`: the same build and settings at one repeat of 8 s (fixtures/compare.yaml).
/// Their p99 differ by up to +800% on the loaded 2-core host that made them, yet the bootstrap of each
/// run's own seconds calls both cases noise. That host's seconds ranged from 0 to 2.4M records/s, so
/// 8 of them prove only a large change: the rerun's seconds at a fifth of their rate are a regression.
#[test]
fn compare_at_one_repeat_bootstraps_each_runs_seconds() {
    let tmp = tempfile::tempdir().unwrap();
    let base = fixture("single", tmp.path());
    let rerun = fixture("single-rerun", tmp.path());
    let (code, text) = compare(&base, &rerun);
    assert_eq!(code, Some(0), "an identical rerun passes: {text}");
    assert_eq!(text.matches("| bootstrap 95% | within noise |").count(), 2, "{text}");
    assert!(text.contains("moving block bootstrap of each run's own seconds"), "{text}");
    assert!(text.trim_end().ends_with("0 regressed, 0 improved, 2 within noise"), "{text}");

    // The rerun's every second and its summary at a fifth of the rate.
    let slow = tmp.path().join("single-slow");
    copy_dir(&rerun, &slow);
    edit_run(&slow, |j| {
        for c in cases(j) {
            let s = &mut c["summary"];
            s["records_per_sec"] = (s["records_per_sec"].as_f64().unwrap() * 0.2).into();
        }
    });
    for dir in std::fs::read_dir(slow.join("cases")).unwrap() {
        let path = dir.unwrap().path().join("intervals.csv");
        let text = read(&path);
        let mut lines = text.lines();
        let mut out = format!("{}\n", lines.next().unwrap());
        for l in lines {
            let mut cells: Vec<String> = l.split(',').map(String::from).collect();
            cells[2] = format!("{:.1}", cells[2].parse::<f64>().unwrap() * 0.2);
            out.push_str(&cells.join(","));
            out.push('\n');
        }
        std::fs::write(&path, out).unwrap();
    }
    let (code, text) = compare(&base, &slow);
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(text.matches("| bootstrap 95% | REGRESSION |").count(), 2, "{text}");
    assert!(text.trim_end().ends_with("2 regressed, 0 improved, 0 within noise"), "{text}");
}

#[test]
fn report_and_compare_pages_escape_what_they_interpolate() {
    let tmp = tempfile::tempdir().unwrap();
    let base = fixture("base", tmp.path());
    let cand = base_copy("escaped", tmp.path(), |j| {
        j["description"] = "<script>alert(1)</script> & co".into();
        let c = &mut cases(j)[0];
        c["status"] = "failed".into();
        c["error"] = "<img src=x onerror=alert(2)>".into();
    });
    let out = kbench(&[Path::new("report"), &cand]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let html = read(&cand.join("report.html"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; co") && !html.contains("<script>"), "{html}");
    assert_eq!(compare(&base, &cand).0, Some(1));
    let html = read(&cand.join("compare.html"));
    assert!(html.contains("&lt;img src=x onerror=alert(2)&gt;") && !html.contains("<img"), "{html}");
}
