//! `kbench compare BASELINE CANDIDATE`: cases matched by parameters, throughput and latency changes,
//! real change told from noise, exit status 1 on a regression.
//!
//! With at least 3 repeats per case on both sides, a change counts only when Welch's t-test finds it
//! significant at 95% and it exceeds the threshold; with fewer repeats the threshold alone decides,
//! and the output says so.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

mod page;

use crate::progress::human_count;
use crate::results::load_run;
use crate::results::schema::{CaseResult, CaseStatus, RunFile};

/// `kbench compare` arguments.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// The reference run directory.
    pub baseline: PathBuf,
    /// The run to judge.
    pub candidate: PathBuf,
    /// Smallest change, in percent, that counts.
    #[arg(long, default_value_t = 5.0)]
    pub threshold: f64,
}

/// Per sweep point (params as JSON): every repeat's records/s and latency percentiles (ns), and the
/// first repeat's case for its files.
#[derive(Default)]
struct Point<'a> {
    records_per_sec: Vec<f64>,
    p50: Vec<f64>,
    p99: Vec<f64>,
    p999: Vec<f64>,
    max: Vec<f64>,
    case: Option<&'a CaseResult>,
}

fn samples(run: &RunFile) -> BTreeMap<String, Point<'_>> {
    let mut out: BTreeMap<String, Point<'_>> = BTreeMap::new();
    for c in run.cases.iter().filter(|c| c.status == CaseStatus::Ok) {
        let key = serde_json::to_string(&c.params).unwrap_or_default();
        let e = out.entry(key).or_default();
        let l = &c.summary.end_to_end_ns;
        e.records_per_sec.push(c.summary.records_per_sec);
        e.p50.push(l.p50 as f64);
        e.p99.push(l.p99 as f64);
        e.p999.push(l.p999 as f64);
        e.max.push(l.max as f64);
        e.case.get_or_insert(c);
    }
    out
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn var(v: &[f64]) -> f64 {
    let m = mean(v);
    v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len().saturating_sub(1)).max(1) as f64
}

/// Two-sided 95% critical value of Student's t for `df` degrees of freedom.
fn t_critical(df: f64) -> f64 {
    const TABLE: [(f64, f64); 12] = [
        (1.0, 12.706),
        (2.0, 4.303),
        (3.0, 3.182),
        (4.0, 2.776),
        (5.0, 2.571),
        (6.0, 2.447),
        (8.0, 2.306),
        (10.0, 2.228),
        (15.0, 2.131),
        (20.0, 2.086),
        (30.0, 2.042),
        (60.0, 2.000),
    ];
    TABLE.iter().find(|(d, _)| df <= *d).map_or(1.96, |(_, t)| *t)
}

/// Welch's t-test: whether the means of `a` and `b` differ at 95%.
pub fn significant(a: &[f64], b: &[f64]) -> bool {
    let (va, vb) = (var(a) / a.len() as f64, var(b) / b.len() as f64);
    let se = (va + vb).sqrt();
    if se == 0.0 {
        return mean(a) != mean(b);
    }
    let t = (mean(a) - mean(b)).abs() / se;
    let df = (va + vb).powi(2) / (va.powi(2) / (a.len() as f64 - 1.0) + vb.powi(2) / (b.len() as f64 - 1.0));
    t > t_critical(df)
}

/// One matched case's verdict.
pub(crate) struct Row<'a> {
    pub key: String,
    pub base: Option<&'a CaseResult>,
    pub cand: Option<&'a CaseResult>,
    pub cells: Vec<String>,
    pub verdict: &'static str,
}

fn pct(base: &[f64], cand: &[f64]) -> f64 {
    (mean(cand) / mean(base).max(f64::MIN_POSITIVE) - 1.0) * 100.0
}

/// Compares; returns whether the candidate regressed.
pub fn run_compare(args: &CompareArgs) -> anyhow::Result<bool> {
    let (base, cand) = (load_run(&args.baseline)?, load_run(&args.candidate)?);
    let (bs, cs) = (samples(&base), samples(&cand));
    let mut regressed = false;
    let mut method_threshold_only = false;
    let mut rows = Vec::new();
    for (key, b) in &bs {
        let Some(c) = cs.get(key) else { continue };
        let tested = b.records_per_sec.len() >= 3 && c.records_per_sec.len() >= 3;
        method_threshold_only |= !tested;
        let real = |a: &[f64], b: &[f64], pct: f64| pct.abs() > args.threshold && (!tested || significant(a, b));
        let tput = pct(&b.records_per_sec, &c.records_per_sec);
        let p99 = pct(&b.p99, &c.p99);
        let worse = (tput < 0.0 && real(&b.records_per_sec, &c.records_per_sec, tput))
            || (p99 > 0.0 && real(&b.p99, &c.p99, p99));
        let better = (tput > 0.0 && real(&b.records_per_sec, &c.records_per_sec, tput))
            || (p99 < 0.0 && real(&b.p99, &c.p99, p99));
        regressed |= worse;
        let verdict = if worse {
            "REGRESSION"
        } else if better {
            "improvement"
        } else {
            "within noise"
        };
        let name = b.case.map_or_else(|| key.clone(), crate::report::case_label);
        rows.push(Row {
            key: key.clone(),
            base: b.case,
            cand: c.case,
            cells: vec![
                name,
                human_count(mean(&b.records_per_sec)),
                human_count(mean(&c.records_per_sec)),
                format!("{tput:+.1}%"),
                format!("{:+.1}%", pct(&b.p50, &c.p50)),
                format!("{p99:+.1}%"),
                format!("{:+.1}%", pct(&b.p999, &c.p999)),
                format!("{:+.1}%", pct(&b.max, &c.max)),
                format!("{}/{}", b.records_per_sec.len(), c.records_per_sec.len()),
                verdict.to_string(),
            ],
            verdict,
        });
    }
    let unmatched =
        bs.keys().filter(|k| !cs.contains_key(*k)).count() + cs.keys().filter(|k| !bs.contains_key(*k)).count();
    let method = if method_threshold_only {
        format!(
            "Fewer than 3 repeats on some cases: changes beyond ±{}% count, without a significance test.",
            args.threshold
        )
    } else {
        format!("Welch's t-test at 95% on the repeats, and a change beyond ±{}%.", args.threshold)
    };
    let method = format!(
        "{method} The verdict weighs records/s and p99; p50, p99.9 and max are shown. {unmatched} case(s) without a match on the other side."
    );
    let mut table = format!("| {} |\n|{}\n", HEADER.join(" | "), "---|".repeat(HEADER.len()));
    for r in &rows {
        let _ = writeln!(table, "| {} |", r.cells.join(" | "));
    }
    let text = format!(
        "# kbench compare\n\nbaseline: {}\ncandidate: {}\n\n{method}\n\n{table}",
        args.baseline.display(),
        args.candidate.display()
    );
    println!("{text}");
    crate::results::writer_atomic(&args.candidate.join("compare.md"), text.as_bytes())?;
    let html = page::compare_html(&args.baseline, &args.candidate, &method, &rows)?;
    crate::results::writer_atomic(&args.candidate.join("compare.html"), html.as_bytes())?;
    Ok(regressed)
}

/// Columns of the comparison table.
pub(crate) const HEADER: [&str; 10] =
    ["case", "records/s base", "records/s cand", "change", "p50", "p99", "p99.9", "max", "repeats", "verdict"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welch_tells_shift_from_noise() {
        assert!(significant(&[100.0, 101.0, 99.0, 100.5], &[80.0, 81.0, 79.5, 80.2]));
        assert!(!significant(&[100.0, 104.0, 96.0], &[101.0, 97.0, 103.0]));
    }
}
