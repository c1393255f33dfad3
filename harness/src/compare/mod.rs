//! `kbench compare BASELINE CANDIDATE`: cases matched by parameters, throughput and latency changes,
//! real change told from noise, exit status 1 on a regression.
//!
//! With at least 3 repeats per case on both sides, a change counts only when Welch's t-test finds it
//! significant at 95% and it exceeds the threshold. With fewer repeats the noise is estimated from
//! each run's own seconds (intervals.csv) by a moving block [`bootstrap`]; with fewer than
//! [`bootstrap::MIN_INTERVALS`] seconds a side there is too little data and the case has no verdict.
//!
//! Compare fails closed: a candidate whose run is incomplete, that has failed or interrupted cases,
//! that lacks a sweep point the baseline has, that shares no sweep point with the baseline, whose
//! workload settings differ from the baseline's (unless `--allow-setting-changes`), or with a case
//! that has too little data for a verdict fails, and the output names the cases and why.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use statrs::distribution::{ContinuousCDF, StudentsT};

pub(crate) mod bootstrap;
mod page;
mod settings;

use crate::progress::human_count;
use crate::report::{case_label, markdown_table};
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
    /// Compare runs whose workload settings differ (listed, not failed): to judge a setting rather
    /// than a build.
    #[arg(long)]
    pub allow_setting_changes: bool,
}

/// Repeats needed on both sides for the significance test.
const MIN_REPEATS_FOR_TEST: usize = 3;

/// Per sweep point (params as JSON): every successful repeat's records/s and latency percentiles
/// (ns), the first successful repeat's case for its files, and the first case of any status for its
/// name.
#[derive(Default)]
struct Point<'a> {
    records_per_sec: Vec<f64>,
    p50: Vec<f64>,
    p99: Vec<f64>,
    p999: Vec<f64>,
    max: Vec<f64>,
    case: Option<&'a CaseResult>,
    any: Option<&'a CaseResult>,
    /// Every successful repeat, for their per-second files.
    ok: Vec<&'a CaseResult>,
}

impl Point<'_> {
    fn label(&self, key: &str) -> String {
        self.any.map_or_else(|| key.to_string(), case_label)
    }
}

fn point_key(c: &CaseResult) -> String {
    serde_json::to_string(&c.params).unwrap_or_default()
}

fn samples(run: &RunFile) -> BTreeMap<String, Point<'_>> {
    let mut out: BTreeMap<String, Point<'_>> = BTreeMap::new();
    for c in &run.cases {
        let e = out.entry(point_key(c)).or_default();
        e.any.get_or_insert(c);
        if c.status != CaseStatus::Ok {
            continue;
        }
        let l = &c.summary.end_to_end_ns;
        e.records_per_sec.push(c.summary.records_per_sec);
        e.p50.push(l.p50 as f64);
        e.p99.push(l.p99 as f64);
        e.p999.push(l.p999 as f64);
        e.max.push(l.max as f64);
        e.case.get_or_insert(c);
        e.ok.push(c);
    }
    out
}

/// The full seconds (0.5 s or longer) of a point's successful repeats: records/s, and p99 (ms) of
/// the seconds that delivered records.
/// Unreadable files give no seconds (and so too little data), never an error.
fn seconds(run_dir: &Path, point: &Point<'_>) -> (Vec<f64>, Vec<f64>) {
    let (mut tput, mut p99) = (Vec::new(), Vec::new());
    for c in &point.ok {
        let Ok(rows) = crate::results::case_files::read_intervals(&run_dir.join(&c.files.intervals_csv)) else {
            continue;
        };
        let mut last = 0.0;
        for r in rows {
            if r.elapsed_sec - last >= 0.5 {
                tput.push(r.records_per_sec);
                // A second with no delivery has no latency (its p99 column reads 0).
                if r.records_per_sec > 0.0 {
                    p99.push(r.p99_ms);
                }
            }
            last = r.elapsed_sec;
        }
    }
    (tput, p99)
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn var(v: &[f64]) -> f64 {
    let m = mean(v);
    v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len().saturating_sub(1)).max(1) as f64
}

/// Two-sided 95% critical value of Student's t for `df` (possibly fractional) degrees of freedom:
/// the exact 0.975 quantile. Infinite (nothing is significant) when `df` is not a valid degree of
/// freedom, which Welch's formula does not produce for two samples of 2 or more.
pub fn t_critical(df: f64) -> f64 {
    StudentsT::new(0.0, 1.0, df).map_or(f64::INFINITY, |t| t.inverse_cdf(0.975))
}

/// Welch–Satterthwaite degrees of freedom of two samples.
fn welch_df(a: &[f64], b: &[f64]) -> f64 {
    let (va, vb) = (var(a) / a.len() as f64, var(b) / b.len() as f64);
    (va + vb).powi(2) / (va.powi(2) / (a.len() as f64 - 1.0) + vb.powi(2) / (b.len() as f64 - 1.0))
}

/// Welch's t-test: whether the means of `a` and `b` differ at 95%.
pub fn significant(a: &[f64], b: &[f64]) -> bool {
    let (va, vb) = (var(a) / a.len() as f64, var(b) / b.len() as f64);
    let se = (va + vb).sqrt();
    if se == 0.0 {
        return mean(a) != mean(b);
    }
    let t = (mean(a) - mean(b)).abs() / se;
    t > t_critical(welch_df(a, b))
}

/// How a matched case was judged.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Regression,
    Improvement,
    Noise,
    /// Too few repeats for a test and too few seconds for a bootstrap.
    NoData,
}

impl Verdict {
    pub(crate) fn text(self) -> &'static str {
        match self {
            Verdict::Regression => "REGRESSION",
            Verdict::Improvement => "improvement",
            Verdict::Noise => "within noise",
            Verdict::NoData => "too little data",
        }
    }

    /// CSS class of the row in compare.html.
    pub(crate) fn class(self) -> &'static str {
        match self {
            Verdict::Regression => "regression",
            Verdict::Improvement => "improvement",
            Verdict::Noise => "noise",
            Verdict::NoData => "regression",
        }
    }
}

/// One matched case's verdict.
pub(crate) struct Row<'a> {
    pub label: String,
    pub base: Option<&'a CaseResult>,
    pub cand: Option<&'a CaseResult>,
    pub cells: Vec<String>,
    pub verdict: Verdict,
}

/// Something that makes the candidate fail whatever its figures: which case, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub case: String,
    pub why: String,
}

/// Everything compare found; rendered as text (stdout, compare.md) and as compare.html.
pub(crate) struct Outcome<'a> {
    pub baseline: &'a Path,
    pub candidate: &'a Path,
    pub rows: Vec<Row<'a>>,
    pub problems: Vec<Problem>,
    /// Sweep points not compared that do not fail the candidate (new in the candidate, or without a
    /// successful baseline case).
    pub notes: Vec<String>,
    pub method: String,
}

impl Outcome<'_> {
    pub(crate) fn regressions(&self) -> usize {
        self.rows.iter().filter(|r| r.verdict == Verdict::Regression).count()
    }

    fn count(&self, v: Verdict) -> usize {
        self.rows.iter().filter(|r| r.verdict == v).count()
    }

    pub(crate) fn regressed(&self) -> bool {
        self.regressions() > 0 || !self.problems.is_empty() || self.count(Verdict::NoData) > 0
    }

    /// The table's last line: `2 regressed, 1 improved, 15 within noise`.
    pub(crate) fn tally(&self) -> String {
        let mut t = format!(
            "{} regressed, {} improved, {} within noise",
            self.regressions(),
            self.count(Verdict::Improvement),
            self.count(Verdict::Noise)
        );
        if self.count(Verdict::NoData) > 0 {
            t.push_str(&format!(", {} with too little data", self.count(Verdict::NoData)));
        }
        t
    }

    /// One line: the verdict on the whole candidate.
    pub(crate) fn headline(&self) -> String {
        if !self.regressed() {
            return format!("Result: no regression ({} case(s) compared).", self.rows.len());
        }
        let mut why = Vec::new();
        if self.regressions() > 0 {
            why.push(format!("{} case(s) slower beyond noise", self.regressions()));
        }
        if self.count(Verdict::NoData) > 0 {
            why.push(format!(
                "{} case(s) with too little data for a verdict (fewer than {MIN_REPEATS_FOR_TEST} repeats and fewer \
                 than {} seconds a side: lengthen records.duration or raise repeat)",
                self.count(Verdict::NoData),
                bootstrap::MIN_INTERVALS
            ));
        }
        if !self.problems.is_empty() {
            why.push(format!("{} problem(s) with the candidate's cases", self.problems.len()));
        }
        format!("Result: REGRESSION: {} (exit status 1).", why.join(", "))
    }
}

fn pct(base: &[f64], cand: &[f64]) -> f64 {
    (mean(cand) / mean(base).max(f64::MIN_POSITIVE) - 1.0) * 100.0
}

/// What makes the candidate fail before any figure is looked at.
fn problems(cand: &RunFile, bs: &BTreeMap<String, Point<'_>>, cs: &BTreeMap<String, Point<'_>>) -> Vec<Problem> {
    let mut out = Vec::new();
    if !cand.complete {
        out.push(Problem {
            case: "(the whole run)".into(),
            why: "incomplete: run.json says `complete: false` (interrupted, or a case failed to start)".into(),
        });
    }
    for c in cand.cases.iter().filter(|c| c.status != CaseStatus::Ok) {
        let why = match c.status {
            CaseStatus::Failed => format!(
                "failed: {} ({} error(s) counted)",
                c.error.as_deref().unwrap_or("no error recorded"),
                c.summary.errors
            ),
            _ => format!("interrupted after {} records", c.summary.records),
        };
        out.push(Problem { case: format!("{} ({})", case_label(c), c.id), why });
    }
    for (key, b) in bs.iter().filter(|(k, _)| !cs.contains_key(*k)) {
        out.push(Problem {
            case: b.label(key),
            why: "missing: the baseline has this case, the candidate has no case with these parameters".into(),
        });
    }
    let matched = bs
        .iter()
        .any(|(k, b)| !b.records_per_sec.is_empty() && cs.get(k).is_some_and(|c| !c.records_per_sec.is_empty()));
    if !matched {
        out.push(Problem {
            case: "(all cases)".into(),
            why: "nothing compared: no case has the same parameters and a successful run on both sides (different \
                  workloads?)"
                .into(),
        });
    }
    out
}

/// Compares two loaded runs.
fn judge<'a>(
    args: &CompareArgs,
    base: &'a RunFile,
    cand: &'a RunFile,
    baseline: &'a Path,
    candidate: &'a Path,
) -> Outcome<'a> {
    let (bs, cs) = (samples(base), samples(cand));
    let mut problems = problems(cand, &bs, &cs);
    let mut notes = Vec::new();
    let strip = |w: &serde_json::Value| {
        let mut w = w.clone();
        if let Some(m) = w.as_object_mut() {
            // How often and with what prose a workload runs does not change what a case measures.
            m.remove("repeat");
            m.remove("description");
        }
        w
    };
    let changed = settings::differences(&strip(&base.workload), &strip(&cand.workload));
    if !changed.is_empty() {
        let list = changed.join("; ");
        if args.allow_setting_changes {
            notes.push(format!("workload settings differ (--allow-setting-changes): {list}"));
        } else {
            problems.push(Problem {
                case: "(workload settings)".into(),
                why: format!(
                    "the runs were made with different settings, so they do not compare builds: {list} (pass \
                     --allow-setting-changes to compare them anyway)"
                ),
            });
        }
    }
    let (mut tested_rows, mut booted_rows, mut nodata_rows) = (0, 0, 0);
    let mut rows = Vec::new();
    for (key, c) in &cs {
        let Some(b) = bs.get(key) else {
            notes.push(format!("{}: new in the candidate, not compared", c.label(key)));
            continue;
        };
        if b.records_per_sec.is_empty() {
            notes.push(format!("{}: no successful case in the baseline, not compared", b.label(key)));
            continue;
        }
        if c.records_per_sec.is_empty() {
            continue; // every candidate repeat failed: listed among the problems
        }
        let tput = pct(&b.records_per_sec, &c.records_per_sec);
        let p99 = pct(&b.p99, &c.p99);
        let tested = b.records_per_sec.len() >= MIN_REPEATS_FOR_TEST && c.records_per_sec.len() >= MIN_REPEATS_FOR_TEST;
        // Whether each of throughput and p99 changed beyond noise, or `None`: too little data.
        let (test, real): (&str, Option<(bool, bool)>) = if tested {
            tested_rows += 1;
            let real = |x: &[f64], y: &[f64], pct: f64| pct.abs() > args.threshold && significant(x, y);
            ("Welch 95%", Some((real(&b.records_per_sec, &c.records_per_sec, tput), real(&b.p99, &c.p99, p99))))
        } else {
            let ((bt, bp), (ct, cp)) = (seconds(baseline, b), seconds(candidate, c));
            match (bootstrap::change_interval(&bt, &ct), bootstrap::change_interval(&bp, &cp)) {
                (Some(ti), Some(pi)) => {
                    booted_rows += 1;
                    let t = args.threshold;
                    ("bootstrap 95%", Some((tput.abs() > t && ti.excludes_zero(), p99.abs() > t && pi.excludes_zero())))
                }
                _ => {
                    nodata_rows += 1;
                    ("too little data", None)
                }
            }
        };
        let verdict = match real {
            None => Verdict::NoData,
            Some((t, p)) if (tput < 0.0 && t) || (p99 > 0.0 && p) => Verdict::Regression,
            Some((t, p)) if (tput > 0.0 && t) || (p99 < 0.0 && p) => Verdict::Improvement,
            Some(_) => Verdict::Noise,
        };
        let label = b.label(key);
        rows.push(Row {
            base: b.case,
            cand: c.case,
            cells: vec![
                label.clone(),
                human_count(mean(&b.records_per_sec)),
                human_count(mean(&c.records_per_sec)),
                format!("{tput:+.1}%"),
                format!("{:+.1}%", pct(&b.p50, &c.p50)),
                format!("{p99:+.1}%"),
                format!("{:+.1}%", pct(&b.p999, &c.p999)),
                format!("{:+.1}%", pct(&b.max, &c.max)),
                format!("{}/{}", b.records_per_sec.len(), c.records_per_sec.len()),
                test.into(),
                verdict.text().to_string(),
            ],
            label,
            verdict,
        });
    }
    let t = args.threshold;
    let welch = "Welch's t-test at 95% (exact Student's t quantile at the Welch–Satterthwaite degrees of freedom)";
    let mut method = Vec::new();
    if tested_rows > 0 {
        method.push(format!("{welch} on the repeats, and a change beyond ±{t}% ({tested_rows} case(s), `Welch 95%`)."));
    }
    if booted_rows > 0 {
        method.push(format!(
            "With fewer than {MIN_REPEATS_FOR_TEST} repeats on a side, a moving block bootstrap of each run's own \
             seconds (intervals.csv): a change counts when the 95% interval of the change of the per-second mean \
             excludes zero and the change is beyond ±{t}% ({booted_rows} case(s), `bootstrap 95%`)."
        ));
    }
    if nodata_rows > 0 {
        method.push(format!(
            "{nodata_rows} case(s) have fewer than {MIN_REPEATS_FOR_TEST} repeats and fewer than {} full seconds a side: \
             too little data for a verdict, which fails the comparison.",
            bootstrap::MIN_INTERVALS
        ));
    }
    let method = if rows.is_empty() {
        "No case was compared, so no test was made.".to_string()
    } else {
        method.push(
            "The verdict weighs records/s and p99; p50, p99.9 and max are shown. ↑: higher is better, ↓: lower is \
             better; changes are in percent of the baseline."
                .into(),
        );
        method.join(" ")
    };
    Outcome { baseline, candidate, rows, problems, notes, method }
}

/// compare.md, also printed.
fn text(o: &Outcome<'_>, base: &RunFile, cand: &RunFile) -> String {
    let mut t = format!(
        "# kbench compare\n\nbaseline: {} ({}, {} cases)\ncandidate: {} ({}, {} cases)\n\n{}\n",
        o.baseline.display(),
        base.name,
        base.cases.len(),
        o.candidate.display(),
        cand.name,
        cand.cases.len(),
        o.headline()
    );
    if !o.problems.is_empty() {
        t.push_str("\n## Candidate problems (each fails the comparison)\n\n");
        let body: Vec<Vec<String>> = o.problems.iter().map(|p| vec![p.case.clone(), p.why.clone()]).collect();
        t.push_str(&markdown_table(&["case", "problem"], &body, &[]));
    }
    if !o.notes.is_empty() {
        t.push_str("\n## Not compared\n\n");
        for n in &o.notes {
            t.push_str(&format!("- {n}\n"));
        }
    }
    t.push_str("\n## Compared cases\n\n");
    t.push_str(&o.method);
    t.push('\n');
    if !o.rows.is_empty() {
        t.push('\n');
        let body: Vec<Vec<String>> = o.rows.iter().map(|r| r.cells.clone()).collect();
        t.push_str(&markdown_table(&HEADER, &body, &[1, 2, 3, 4, 5, 6, 7, 8]));
        t.push('\n');
        t.push_str(&o.tally());
        t.push('\n');
    }
    t
}

/// Compares; returns whether the candidate regressed.
pub fn run_compare(args: &CompareArgs) -> anyhow::Result<bool> {
    let (base, cand) = (load_run(&args.baseline)?, load_run(&args.candidate)?);
    let outcome = judge(args, &base, &cand, &args.baseline, &args.candidate);
    let text = text(&outcome, &base, &cand);
    println!("{text}");
    crate::results::writer_atomic(&args.candidate.join("compare.md"), text.as_bytes())?;
    let html = page::compare_html(&outcome)?;
    crate::results::writer_atomic(&args.candidate.join("compare.html"), html.as_bytes())?;
    Ok(outcome.regressed())
}

/// Columns of the comparison table.
pub(crate) const HEADER: [&str; 11] = [
    "case",
    "records/s base",
    "records/s cand",
    "records/s change ↑",
    "p50 ↓",
    "p99 ↓",
    "p99.9 ↓",
    "max ↓",
    "repeats",
    "test",
    "verdict",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welch_tells_shift_from_noise() {
        assert!(significant(&[100.0, 101.0, 99.0, 100.5], &[80.0, 81.0, 79.5, 80.2]));
        assert!(!significant(&[100.0, 104.0, 96.0], &[101.0, 97.0, 103.0]));
    }

    /// Reference quantiles: t tables for integer df; for fractional df, the root of
    /// 0.5 + ∫₀^q pdf(t) dt = 0.975 with the density integrated by Simpson's rule.
    #[test]
    fn t_critical_is_the_exact_quantile_also_between_table_rows() {
        for (df, want) in [(1.0, 12.706), (2.0, 4.303), (2.5, 3.575), (3.0, 3.182), (4.7, 2.621), (30.0, 2.042)] {
            let got = t_critical(df);
            assert!((got - want).abs() < 1e-3, "df={df}: {got} != {want}");
        }
        // Between two table rows the quantile lies above the next row's: rounding df up was
        // anti-conservative.
        assert!(t_critical(2.5) > t_critical(3.0) + 0.3 && t_critical(2.5) < t_critical(2.0));
        assert!((t_critical(1e6) - 1.960).abs() < 1e-3, "large df tends to the normal quantile");
        assert!(t_critical(0.0).is_infinite() && t_critical(f64::NAN).is_infinite());
    }

    #[test]
    fn welch_uses_fractional_degrees_of_freedom() {
        // Unequal variances: df strictly between min(n)-1 and n_a+n_b-2.
        let (a, b) = ([10.0, 12.0, 11.0], [20.0, 30.0, 25.0, 28.0]);
        let df = welch_df(&a, &b);
        assert!(df > 2.0 && df < 5.0 && df.fract() != 0.0, "df={df}");
        // t = 6.56 at df ≈ 3.41 (quantile 2.98).
        assert!(significant(&a, &b));
        // t = 3.20 at df ≈ 2.88: the exact quantile (3.26) keeps this within noise, where the old
        // table's row for df 3 (3.182, df rounded up) called it significant.
        let (c, d) = ([10.0, 11.0, 12.0], [13.6, 14.6, 17.6]);
        let t = (mean(&d) - mean(&c)) / (var(&c) / 3.0 + var(&d) / 3.0).sqrt();
        let df = welch_df(&c, &d);
        assert!((df - 2.876).abs() < 1e-3 && (t - 3.2).abs() < 1e-9, "t={t} df={df}");
        assert!(t > 3.182 && t < t_critical(df), "t={t} df={df} critical={}", t_critical(df));
        assert!(!significant(&c, &d));
    }
}
