//! What the terminal shows while a run goes: a bar per sweep and per case with live records/s, p99
//! and ETA on a terminal; plain lines otherwise; nothing with --quiet; a summary table at the end.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::results::schema::{CaseResult, CaseStatus, RunFile, Summary};

/// Progress display.
#[derive(Debug)]
pub struct Progress {
    quiet: bool,
    bars: Option<(MultiProgress, ProgressBar, ProgressBar)>,
    total: usize,
    last_line: Mutex<Instant>,
}

impl Progress {
    /// For a run of `total_cases`.
    pub fn new(total_cases: usize, quiet: bool) -> Self {
        let bars = (!quiet && total_cases > 0 && std::io::stderr().is_terminal()).then(|| {
            let multi = MultiProgress::new();
            let sweep = multi.add(ProgressBar::new(total_cases as u64));
            sweep.set_style(
                ProgressStyle::with_template("sweep [{bar:30}] {pos}/{len} cases, eta {eta}").expect("template"),
            );
            let case = multi.add(ProgressBar::new(1000));
            case.set_style(ProgressStyle::with_template("{prefix} [{bar:30}] {msg}").expect("template"));
            (multi, sweep, case)
        });
        Progress { quiet, bars, total: total_cases, last_line: Mutex::new(Instant::now()) }
    }

    /// A case begins; `expected` is warmup + duration (zero when counting records).
    pub fn case_started(&self, index: usize, id: &str, expected: Duration) {
        if self.quiet {
            return;
        }
        match &self.bars {
            Some((_, _, case)) => {
                case.set_prefix(id.to_string());
                case.set_length(expected.as_millis().max(1) as u64);
                case.set_position(0);
            }
            None => eprintln!("case {}/{}: {id}", index + 1, self.total),
        }
    }

    /// Live figures of the current case.
    pub fn update(&self, phase: &str, records_per_sec: f64, p99_ns: u64, elapsed: Duration) {
        if self.quiet {
            return;
        }
        let msg = format!("{phase}: {} records/s, p99 {}", human_count(records_per_sec), human_ns(p99_ns as f64));
        match &self.bars {
            Some((_, _, case)) => {
                case.set_position(elapsed.as_millis() as u64);
                case.set_message(msg);
            }
            None if phase == "warmup" => {}
            None => {
                let mut last = self.last_line.lock().unwrap_or_else(|p| p.into_inner());
                if last.elapsed() >= Duration::from_secs(5) {
                    *last = Instant::now();
                    eprintln!("  {msg}");
                }
            }
        }
    }

    /// A case ended.
    pub fn case_finished(&self, id: &str, s: &Summary) {
        if self.quiet {
            return;
        }
        let line = format!(
            "  {id}: {} records/s, {:.1} MB/s, p50 {} p99 {}{}",
            human_count(s.records_per_sec),
            s.bytes_per_sec / 1e6,
            human_ns(s.end_to_end_ns.p50 as f64),
            human_ns(s.end_to_end_ns.p99 as f64),
            if s.saturated { " (saturated)" } else { "" }
        );
        match &self.bars {
            Some((multi, sweep, _)) => {
                let _ = multi.println(line);
                sweep.inc(1);
            }
            None => eprintln!("{line}"),
        }
    }

    /// A warning, whatever the mode but quiet.
    pub fn warn(&self, msg: &str) {
        match &self.bars {
            Some((multi, _, _)) => {
                let _ = multi.println(format!("warning: {msg}"));
            }
            None => eprintln!("warning: {msg}"),
        }
    }

    /// The end: the summary table.
    pub fn finish(&self, run: &RunFile) {
        if let Some((_, sweep, case)) = &self.bars {
            case.finish_and_clear();
            sweep.finish_and_clear();
        }
        if !self.quiet {
            println!("{}", summary_table(run));
        }
    }
}

/// `12.3k`, `4.56M`.
pub fn human_count(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// What a table prints for a figure the case does not have (a failed case's latency, a kafka
/// case's batch stages).
pub const NONE: &str = "-";

/// Whether the case has the figures of a run (records/s, MB/s): every ok case, and a failed or
/// interrupted one that got records through.
fn has_throughput(c: &CaseResult) -> bool {
    c.status == CaseStatus::Ok || c.summary.records > 0
}

/// Whether end-to-end latencies were measured.
fn has_latency(s: &Summary) -> bool {
    s.end_to_end_ns.count > 0
}

/// Whether batch figures (fill, compression ratio) were measured: not for kafka cases, whose
/// batches librdkafka makes.
fn has_batches(s: &Summary) -> bool {
    s.batch_bytes.count > 0
}

/// A case's headline figures as report.md and report.html print them: records/s, MB/s, p50, p99,
/// p99.9 and max end-to-end latency, batch fill; [`NONE`] for what the case does not have.
pub fn summary_cells(c: &CaseResult) -> [String; 7] {
    let s = &c.summary;
    let lat = |v: u64| if has_latency(s) { human_ns(v as f64) } else { NONE.into() };
    let tput = has_throughput(c);
    [
        if tput { human_count(s.records_per_sec) } else { NONE.into() },
        if tput { format!("{:.1}", s.bytes_per_sec / 1e6) } else { NONE.into() },
        lat(s.end_to_end_ns.p50),
        lat(s.end_to_end_ns.p99),
        lat(s.end_to_end_ns.p999),
        lat(s.end_to_end_ns.max),
        if has_batches(s) { format!("{:.0}%", s.batch_fill * 100.0) } else { NONE.into() },
    ]
}

/// The compression ratio as the tables print it, or [`NONE`].
pub fn ratio_cell(s: &Summary, decimals: usize) -> String {
    if has_batches(s) { format!("{:.decimals$}", s.compression_ratio) } else { NONE.into() }
}

/// `850ns`, `12.3µs`, `4.5ms`, `1.20s`.
pub fn human_ns(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.2}s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.1}ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.1}µs", ns / 1e3)
    } else {
        format!("{ns:.0}ns")
    }
}

/// A column's unit: the largest of `units` (name, size) that the column's largest value reaches,
/// else the smallest.
fn unit_for(values: impl Iterator<Item = f64>, units: &[(&'static str, f64)]) -> (&'static str, f64) {
    let max = values.fold(0.0, f64::max);
    units.iter().rev().find(|(_, size)| max >= *size).copied().unwrap_or(units[0])
}

/// Three significant figures at most, no exponent.
fn figure(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

const TIME_UNITS: [(&str, f64); 4] = [("ns", 1.0), ("µs", 1e3), ("ms", 1e6), ("s", 1e9)];
const COUNT_UNITS: [(&str, f64); 3] = [("", 1.0), ("k", 1e3), ("M", 1e6)];

/// The table printed at the end of `kbench run`: one row per case with its status and error count,
/// records/s, MB/s, end-to-end latency percentiles, batch fill and compression ratio; one unit per
/// column (under its name), `-` for what a case does not have; then the failed cases' errors.
pub fn summary_table(run: &RunFile) -> String {
    use comfy_table::{CellAlignment, ContentLineStyle, LineStyle, Table, TableStyle};

    let cases = &run.cases;
    let lat_cases = || cases.iter().filter(|c| has_latency(&c.summary)).map(|c| &c.summary.end_to_end_ns);
    let rate = unit_for(cases.iter().filter(|c| has_throughput(c)).map(|c| c.summary.records_per_sec), &COUNT_UNITS);
    type Pick = fn(&crate::results::schema::LatencySummary) -> u64;
    let lat_columns: [(&str, Pick); 4] =
        [("p50", |l| l.p50), ("p99", |l| l.p99), ("p99.9", |l| l.p999), ("max", |l| l.max)];
    let lat_units: Vec<(&str, f64)> =
        lat_columns.iter().map(|(_, pick)| unit_for(lat_cases().map(|l| pick(l) as f64), &TIME_UNITS)).collect();

    let mut header = vec![
        "case".to_string(),
        "status".into(),
        "errors".into(),
        if rate.0.is_empty() { "records/s".into() } else { format!("records/s\n({})", rate.0) },
        "MB/s".into(),
    ];
    header.extend(lat_columns.iter().zip(&lat_units).map(|((name, _), (unit, _))| format!("{name}\n({unit})")));
    header.extend(["fill\n(%)".to_string(), "ratio".into()]);

    let mut t = Table::new();
    // No borders: a line under the header, two spaces between columns.
    t.load_style(
        TableStyle::new()
            .header_lines(ContentLineStyle::none())
            .header_separator(LineStyle::none().fill('-'))
            .content_lines(ContentLineStyle::none()),
    );
    t.set_header(header);
    let mut footnotes = Vec::new();
    for c in cases {
        let s = &c.summary;
        let tput = has_throughput(c);
        let mut status = format!("{:?}", c.status).to_lowercase();
        if s.saturated {
            status.push('*');
        }
        let mut row = vec![
            c.id.clone(),
            status,
            s.errors.to_string(),
            if tput { figure(s.records_per_sec / rate.1) } else { NONE.into() },
            if tput { format!("{:.1}", s.bytes_per_sec / 1e6) } else { NONE.into() },
        ];
        row.extend(lat_columns.iter().zip(&lat_units).map(|((_, pick), (_, size))| {
            if has_latency(s) { figure(pick(&s.end_to_end_ns) as f64 / size) } else { NONE.into() }
        }));
        row.push(if has_batches(s) { format!("{:.0}", s.batch_fill * 100.0) } else { NONE.into() });
        row.push(ratio_cell(s, 2));
        t.add_row(row);
        if c.status != CaseStatus::Ok {
            let status = format!("{:?}", c.status).to_lowercase();
            footnotes.push(match &c.error {
                Some(e) => format!("{}: {status}: {e}", c.id),
                None => format!("{}: {status}", c.id),
            });
        }
    }
    let columns = t.column_count();
    for (i, col) in t.column_iter_mut().enumerate() {
        col.set_padding((0, if i + 1 == columns { 0 } else { 2 }));
        if i >= 2 {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
    let mut out = t.lines().map(|l| l.trim_end().to_string()).collect::<Vec<_>>().join("\n");
    if cases.iter().any(|c| c.summary.saturated) {
        out.push_str("\n* saturated: the senders fell behind their schedule (open loop)");
    }
    for f in footnotes {
        out.push('\n');
        out.push_str(&f);
    }
    if let Some(line) = crate::results::schema::HarnessCost::run_line(cases) {
        out.push('\n');
        out.push_str(&line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stored `base` run (2 points x 3 repeats, embedded engine), with case 1 failed without
    /// figures and case 4 made a kafka case (no batch stages) at a lower rate.
    fn run() -> RunFile {
        let mut run: RunFile = serde_json::from_str(include_str!("../../tests/fixtures/base/run.json")).unwrap();
        let failed = &mut run.cases[1];
        failed.status = CaseStatus::Failed;
        failed.error = Some("engine: disk full".into());
        failed.summary = Summary { errors: 42, ..Summary::default() };
        let kafka = &mut run.cases[4].summary;
        kafka.batch_bytes = Default::default();
        kafka.records_per_sec = 900.0;
        kafka.end_to_end_ns.max = 2_500_000_000;
        run
    }

    #[test]
    fn summary_table_shows_status_errors_and_dashes_in_one_unit_per_column() {
        let table = summary_table(&run());
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines.iter().all(|l| l.chars().count() <= 100), "fits 100 columns:\n{table}");
        let header = format!("{}\n{}", lines[0], lines[1]);
        for h in ["case", "status", "errors", "records/s", "(M)", "MB/s", "p50", "p99", "p99.9", "(ms)", "max", "(s)"] {
            assert!(header.contains(h), "header lacks {h}:\n{table}");
        }
        assert!(lines[2].starts_with("----"), "{table}");
        let row = |id: &str| *lines.iter().find(|l| l.starts_with(id)).unwrap_or_else(|| panic!("{id}:\n{table}"));
        let cells = |id: &str| row(id).split_whitespace().skip(1).collect::<Vec<_>>();

        let failed = cells("000-linger.ms=0-r1");
        assert_eq!(failed[..2], ["failed", "42"], "{table}");
        assert!(failed[2..].iter().all(|c| *c == NONE), "a failed case has no figures: {failed:?}");
        let kafka = cells("001-linger.ms=20-r1");
        assert_eq!(kafka[..3], ["ok", "0", "0.00"], "900 records/s in the column's M: {kafka:?}");
        assert_eq!(kafka[7..], ["2.50", NONE, NONE], "max in s, no batch fill or ratio: {kafka:?}");
        let ok = cells("000-linger.ms=0-r0");
        // 2425651 records/s, p50 13.09ms, p99 31.93ms, p99.9 34.87ms in the columns' ms, max in s.
        assert_eq!(ok[..8], ["ok", "0", "2.43", "281.4", "13.1", "31.9", "34.9", "0.04"], "{ok:?}");
        assert!(lines[3..].iter().all(|l| !l.contains("ns") && !l.contains("µs") && !l.contains('%')), "{table}");
        assert!(table.ends_with("000-linger.ms=0-r1: failed: engine: disk full"), "{table}");
    }

    #[test]
    fn report_cells_dash_what_a_case_lacks() {
        let run = run();
        assert_eq!(summary_cells(&run.cases[1]), [NONE; 7].map(String::from));
        assert_eq!(summary_cells(&run.cases[4])[6], NONE);
        assert_eq!(ratio_cell(&run.cases[4].summary, 3), NONE);
        assert_eq!(summary_cells(&run.cases[0])[3], "31.9ms");
    }
}
