//! `kbench compare BASELINE CANDIDATE`: cases matched by parameters, throughput and latency changes,
//! real change told from noise, exit status 1 on a regression.
//!
//! With at least 3 repeats per case on both sides, a change counts only when Welch's t-test finds it
//! significant at 95% and it exceeds the threshold; with fewer repeats the threshold alone decides,
//! and the output says so.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use crate::progress::human_count;
use crate::results::load_run;
use crate::results::schema::{CaseStatus, RunFile};

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

type Samples = BTreeMap<String, (Vec<f64>, Vec<f64>)>;

fn samples(run: &RunFile) -> Samples {
    let mut out: Samples = BTreeMap::new();
    for c in run.cases.iter().filter(|c| c.status == CaseStatus::Ok) {
        let key = serde_json::to_string(&c.params).unwrap_or_default();
        let e = out.entry(key).or_default();
        e.0.push(c.summary.records_per_sec);
        e.1.push(c.summary.end_to_end_ns.p99 as f64);
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

/// Compares; returns whether the candidate regressed.
pub fn run_compare(args: &CompareArgs) -> anyhow::Result<bool> {
    let (base, cand) = (load_run(&args.baseline)?, load_run(&args.candidate)?);
    let (bs, cs) = (samples(&base), samples(&cand));
    let mut regressed = false;
    let mut out = String::from(
        "| case | records/s base | records/s cand | change | p99 change | verdict |\n|---|---|---|---|---|---|\n",
    );
    let mut method_threshold_only = false;
    for (key, (bt, bl)) in &bs {
        let Some((ct, cl)) = cs.get(key) else { continue };
        let tput = (mean(ct) / mean(bt) - 1.0) * 100.0;
        let lat = (mean(cl) / mean(bl).max(1.0) - 1.0) * 100.0;
        let tested = bt.len() >= 3 && ct.len() >= 3;
        method_threshold_only |= !tested;
        let real = |a: &[f64], b: &[f64], pct: f64| pct.abs() > args.threshold && (!tested || significant(a, b));
        let worse = (tput < 0.0 && real(bt, ct, tput)) || (lat > 0.0 && real(bl, cl, lat));
        let better = (tput > 0.0 && real(bt, ct, tput)) || (lat < 0.0 && real(bl, cl, lat));
        regressed |= worse;
        let verdict = if worse {
            "REGRESSION"
        } else if better {
            "improvement"
        } else {
            "within noise"
        };
        let _ = writeln!(
            out,
            "| {key} | {} | {} | {tput:+.1}% | {lat:+.1}% | {verdict} |",
            human_count(mean(bt)),
            human_count(mean(ct))
        );
    }
    let method = if method_threshold_only {
        format!(
            "Fewer than 3 repeats on some cases: changes beyond ±{}% count, without a significance test.",
            args.threshold
        )
    } else {
        format!("Welch's t-test at 95% on the repeats, and a change beyond ±{}%.", args.threshold)
    };
    let text = format!(
        "# kbench compare\n\nbaseline: {}\ncandidate: {}\n\n{method}\n\n{out}",
        args.baseline.display(),
        args.candidate.display()
    );
    println!("{text}");
    crate::results::writer_atomic(&args.candidate.join("compare.md"), text.as_bytes())?;
    Ok(regressed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welch_tells_shift_from_noise() {
        assert!(significant(&[100.0, 101.0, 99.0, 100.5], &[80.0, 81.0, 79.5, 80.2]));
        assert!(!significant(&[100.0, 104.0, 96.0], &[101.0, 97.0, 103.0]));
    }
}
