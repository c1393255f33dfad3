//! The report's figures, built from run.json and the per-case files: throughput against p99,
//! percentile curves on the nines axis, each swept parameter against throughput and p99, throughput
//! over time, and MB/s against the machine's limits (disk, codecs).

use std::collections::BTreeMap;
use std::path::Path;

use super::charts::{Axis, Chart, Scale, Series};
use crate::progress::{human_count, human_ns};
use crate::results::case_files::{read_hgrm, read_intervals};
use crate::results::schema::{CaseResult, CaseStatus, RunFile};
use crate::workload::value_text;

/// A drawn figure: its caption and the chart.
#[derive(Debug)]
pub struct Figure {
    pub caption: String,
    pub chart: Chart,
}

/// Where a parameter value sits on the x axis.
type Position = Box<dyn Fn(&serde_json::Value) -> f64>;
/// Per combination of the other parameters, per value of the swept one: x and the samples
/// (records/s, p99 ms) of its repeats.
type Groups = BTreeMap<String, BTreeMap<String, (f64, Vec<(f64, f64)>)>>;

/// Curves per chart before it stops being readable; the rest are named in the caption.
const MAX_CURVES: usize = 8;

fn ok_cases(run: &RunFile) -> Vec<&CaseResult> {
    run.cases.iter().filter(|c| c.status == CaseStatus::Ok && c.summary.records > 0).collect()
}

/// The case's number as the table shows it ("#3").
pub fn case_tag(c: &CaseResult) -> String {
    let n = c.id.split('-').next().unwrap_or(&c.id).trim_start_matches('0');
    let n = if n.is_empty() { "0" } else { n };
    if c.repeat > 0 { format!("#{n}.{}", c.repeat) } else { format!("#{n}") }
}

/// `producer.batch.size` -> `batch.size`.
pub fn short_key(k: &str) -> &str {
    k.split_once('.').map_or(k, |(_, rest)| rest)
}

fn fmt_count(v: f64) -> String {
    human_count(v)
}

/// Milliseconds as `4.5ms`, `850.0µs`.
pub(crate) fn fmt_ms(v: f64) -> String {
    human_ns(v * 1e6)
}

fn fmt_mb(v: f64) -> String {
    format!("{v:.0} MB/s")
}

/// A plain number: integers without decimals.
pub(crate) fn fmt_plain(v: f64) -> String {
    if v.fract() == 0.0 { format!("{v:.0}") } else { format!("{v:.3}") }
}

fn fmt_secs(v: f64) -> String {
    if v.abs() < 10.0 { format!("{v:.1}s") } else { format!("{v:.0}s") }
}

/// Linear, or log10 when the values span two decades or more.
fn scale_for(values: &[f64]) -> Scale {
    let lo = values.iter().copied().filter(|v| *v > 0.0).fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(0.0, f64::max);
    if lo.is_finite() && values.iter().all(|v| *v > 0.0) && hi / lo >= 100.0 { Scale::Log10 } else { Scale::Linear }
}

/// The cases the curve charts draw (the highest throughput first), and a note when some are left out.
fn curve_cases<'a>(cases: &[&'a CaseResult]) -> (Vec<&'a CaseResult>, String) {
    let mut sorted = cases.to_vec();
    sorted.sort_by(|a, b| b.summary.records_per_sec.total_cmp(&a.summary.records_per_sec));
    if sorted.len() <= MAX_CURVES {
        return (sorted, String::new());
    }
    let left = sorted.len() - MAX_CURVES;
    sorted.truncate(MAX_CURVES);
    (sorted, format!(" The {MAX_CURVES} cases with the highest throughput are drawn; {left} more are in the table."))
}

/// One curve per drawn case from `load` (cases whose files cannot be read are named in `problems`;
/// cases with no points are left out), and the caption's note on cases not drawn.
fn case_curves(
    cases: &[&CaseResult],
    problems: &mut Vec<String>,
    load: impl Fn(&CaseResult) -> anyhow::Result<Vec<(f64, f64)>>,
) -> (Vec<Series>, String) {
    let (drawn, note) = curve_cases(cases);
    let mut series = Vec::new();
    for c in drawn {
        match load(c) {
            Ok(points) if points.is_empty() => {}
            Ok(points) => series.push(Series { name: legend(c), points, point_labels: vec![] }),
            Err(e) => problems.push(format!("{}: {e:#}", c.id)),
        }
    }
    (series, note)
}

fn legend(c: &CaseResult) -> String {
    let params: Vec<String> = c.params.iter().map(|(k, v)| format!("{}={}", short_key(k), value_text(v))).collect();
    format!("{} {}", case_tag(c), params.join(", "))
}

/// Every figure of the report; a case whose files cannot be read is skipped and named in `problems`.
pub fn figures(run: &RunFile, run_dir: &Path, problems: &mut Vec<String>) -> Vec<Figure> {
    let cases = ok_cases(run);
    let mut out = vec![throughput_vs_p99(&cases)];
    out.extend(nines(&cases, run_dir, problems));
    out.extend(parameter_sweeps(&cases));
    out.extend(over_time(&cases, run_dir, problems));
    out.extend(consumer_lag(&cases, run_dir));
    out.push(against_machine(run, &cases));
    out
}

fn throughput_vs_p99(cases: &[&CaseResult]) -> Figure {
    let points: Vec<(f64, f64)> =
        cases.iter().map(|c| (c.summary.end_to_end_ns.p99 as f64 / 1e6, c.summary.records_per_sec)).collect();
    let x_values: Vec<f64> = points.iter().map(|p| p.0).collect();
    Figure {
        caption: "Every case: throughput against p99 end-to-end latency. Up and to the left is better; \
                  the numbers are the table's case numbers."
            .into(),
        chart: Chart {
            title: "Throughput against p99 latency".into(),
            x: Axis { label: "p99 end-to-end latency".into(), scale: scale_for(&x_values), format: fmt_ms },
            y: Axis { label: "records/s".into(), scale: Scale::Linear, format: fmt_count },
            series: vec![Series {
                name: String::new(),
                points,
                point_labels: cases.iter().map(|c| case_tag(c)).collect(),
            }],
            references: vec![],
            lines: false,
        },
    }
}

fn nines(cases: &[&CaseResult], run_dir: &Path, problems: &mut Vec<String>) -> Option<Figure> {
    let (series, note) = case_curves(cases, problems, |c| {
        Ok(read_hgrm(&run_dir.join(&c.files.hgrm))?.iter().map(|r| (r.percentile, r.value_ms)).collect())
    });
    (!series.is_empty()).then(|| Figure {
        caption: format!(
            "End-to-end latency by percentile (HdrHistogram's nines axis: each step right is ten times rarer).{note}"
        ),
        chart: Chart {
            title: "Latency percentiles".into(),
            x: Axis { label: "percentile".into(), scale: Scale::Nines, format: fmt_plain },
            y: Axis { label: "end-to-end latency".into(), scale: Scale::Log10, format: fmt_ms },
            series,
            references: vec![],
            lines: true,
        },
    })
}

/// For each swept parameter: it against throughput and against p99, one line per combination of the
/// other parameters (repeats averaged).
fn parameter_sweeps(cases: &[&CaseResult]) -> Vec<Figure> {
    let keys: Vec<&String> = cases.first().map(|c| c.params.keys().collect()).unwrap_or_default();
    let mut out = Vec::new();
    for key in keys {
        let mut values: Vec<&serde_json::Value> = Vec::new();
        for c in cases {
            if let Some(v) = c.params.get(key)
                && !values.contains(&v)
            {
                values.push(v);
            }
        }
        if values.len() < 2 {
            continue;
        }
        let numeric: Option<Vec<f64>> = values.iter().map(|v| v.as_f64()).collect();
        let (scale, position): (Scale, Position) = match numeric {
            Some(nums) => (scale_for(&nums), Box::new(|v| v.as_f64().unwrap_or(f64::NAN))),
            None => {
                let names: Vec<String> = values.iter().map(|v| value_text(v)).collect();
                let lookup = names.clone();
                (
                    Scale::Categories(names),
                    Box::new(move |v| lookup.iter().position(|n| *n == value_text(v)).map_or(f64::NAN, |i| i as f64)),
                )
            }
        };
        // Group by the other parameters; average repeats at each point.
        let mut groups: Groups = BTreeMap::new();
        for c in cases {
            let Some(v) = c.params.get(key) else { continue };
            let others: Vec<String> = c
                .params
                .iter()
                .filter(|(k, _)| *k != key)
                .map(|(k, v)| format!("{}={}", short_key(k), value_text(v)))
                .collect();
            let point =
                groups.entry(others.join(", ")).or_default().entry(value_text(v)).or_insert((position(v), vec![]));
            point.1.push((c.summary.records_per_sec, c.summary.end_to_end_ns.p99 as f64 / 1e6));
        }
        let series = |pick: fn(&(f64, f64)) -> f64| -> Vec<Series> {
            groups
                .iter()
                .map(|(name, pts)| {
                    let mut points: Vec<(f64, f64)> = pts
                        .values()
                        .map(|(x, samples)| (*x, samples.iter().map(pick).sum::<f64>() / samples.len() as f64))
                        .collect();
                    points.sort_by(|a, b| a.0.total_cmp(&b.0));
                    Series {
                        name: if name.is_empty() { short_key(key).to_string() } else { name.clone() },
                        points,
                        point_labels: vec![],
                    }
                })
                .collect()
        };
        let x = Axis { label: short_key(key).to_string(), scale, format: fmt_plain };
        let p99_values: Vec<f64> = cases.iter().map(|c| c.summary.end_to_end_ns.p99 as f64 / 1e6).collect();
        out.push(Figure {
            caption: format!(
                "{} against throughput, one line per combination of the other swept settings.",
                short_key(key)
            ),
            chart: Chart {
                title: format!("{}: throughput", short_key(key)),
                x: x.clone(),
                y: Axis { label: "records/s".into(), scale: Scale::Linear, format: fmt_count },
                series: series(|s| s.0),
                references: vec![],
                lines: true,
            },
        });
        out.push(Figure {
            caption: format!("{} against p99 end-to-end latency.", short_key(key)),
            chart: Chart {
                title: format!("{}: p99 latency", short_key(key)),
                x,
                y: Axis { label: "p99 end-to-end latency".into(), scale: scale_for(&p99_values), format: fmt_ms },
                series: series(|s| s.1),
                references: vec![],
                lines: true,
            },
        });
    }
    out
}

fn over_time(cases: &[&CaseResult], run_dir: &Path, problems: &mut Vec<String>) -> Option<Figure> {
    let (series, note) = case_curves(cases, problems, |c| {
        let rows = read_intervals(&run_dir.join(&c.files.intervals_csv))?;
        Ok(rows.iter().map(|r| (r.elapsed_sec, r.records_per_sec)).collect())
    });
    (!series.is_empty()).then(|| Figure {
        caption: format!("Throughput second by second in the measured phase (warmup excluded).{note}"),
        chart: Chart {
            title: "Throughput over time".into(),
            x: Axis { label: "time into the measured phase".into(), scale: Scale::Linear, format: fmt_secs },
            y: Axis { label: "records/s".into(), scale: Scale::Linear, format: fmt_count },
            series,
            references: vec![],
            lines: true,
        },
    })
}

/// The consumer group's lag second by second, for cases with consumers.
fn consumer_lag(cases: &[&CaseResult], run_dir: &Path) -> Option<Figure> {
    let with_consumers: Vec<&CaseResult> = cases.iter().copied().filter(|c| c.summary.consumers.is_some()).collect();
    // An unreadable intervals.csv is already named by the throughput-over-time chart.
    let (series, note) = case_curves(&with_consumers, &mut Vec::new(), |c| {
        let rows = read_intervals(&run_dir.join(&c.files.intervals_csv))?;
        Ok(rows.iter().filter_map(|r| Some((r.elapsed_sec, r.consumer_lag?))).collect())
    });
    (!series.is_empty()).then(|| Figure {
        caption: format!(
            "Consumer lag: records between the group's committed offsets and the log end, summed over partitions. A crashed member's partitions climb until session.timeout.ms moves them.{note}"
        ),
        chart: Chart {
            title: "Consumer lag over time".into(),
            x: Axis { label: "time into the measured phase".into(), scale: Scale::Linear, format: fmt_secs },
            y: Axis { label: "records behind".into(), scale: Scale::Linear, format: fmt_count },
            series,
            references: vec![],
            lines: true,
        },
    })
}

/// MB/s of every case beside the disk's sequential write figure and each codec's raw single-core
/// compression speed, when known.
fn against_machine(run: &RunFile, cases: &[&CaseResult]) -> Figure {
    let mut references = Vec::new();
    if let Some(d) = run.references.disk_write_bytes_per_sec {
        references.push(("disk sequential write (fio)".to_string(), d / 1e6));
    }
    if let Some(d) = run.references.disk_read_bytes_per_sec
        && cases.iter().any(|c| c.summary.consumers.is_some())
    {
        references.push(("disk sequential read, cold cache (fio)".to_string(), d / 1e6));
    }
    for (codec, speed) in &run.references.codec_compress_bytes_per_sec {
        references.push((format!("{codec} compression, 1 core"), speed / 1e6));
    }
    let known = if run.references.disk_write_bytes_per_sec.is_none() {
        " The disk's figure is unknown for this run: scripts/disk-baseline.sh measures it (results/disk-baseline.json)."
    } else {
        ""
    };
    let names: Vec<String> = cases.iter().map(|c| case_tag(c)).collect();
    Figure {
        caption: format!(
            "Each case's MB/s of record payload (keys + values) against the machine's limits (dashed).{known}"
        ),
        chart: Chart {
            title: "MB/s against the machine".into(),
            x: Axis { label: "case".into(), scale: Scale::Categories(names), format: fmt_plain },
            y: Axis { label: "MB/s".into(), scale: Scale::Linear, format: fmt_mb },
            series: vec![Series {
                name: String::new(),
                points: cases.iter().enumerate().map(|(i, c)| (i as f64, c.summary.bytes_per_sec / 1e6)).collect(),
                point_labels: vec![],
            }],
            references,
            lines: false,
        },
    }
}
