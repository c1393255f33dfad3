//! What the terminal shows while a run goes: a bar per sweep and per case with live records/s, p99
//! and ETA on a terminal; plain lines otherwise; nothing with --quiet; a summary table at the end.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

mod table;
pub use table::{concern_line, summary_table};

use crate::results::schema::{CaseResult, CaseStatus, RunFile, Summary};

/// Progress display.
#[derive(Debug)]
pub struct Progress {
    quiet: bool,
    bars: Option<(MultiProgress, ProgressBar, ProgressBar)>,
    total: usize,
    last_line: Mutex<Instant>,
    wide: bool,
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
        Progress { quiet, bars, total: total_cases, last_line: Mutex::new(Instant::now()), wide: false }
    }

    /// The end table with every column (`--wide`), not only those that fit 100 columns.
    pub fn wide(mut self, wide: bool) -> Self {
        self.wide = wide;
        self
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
                // Until this case's first interval, nothing: never the previous case's figures.
                case.set_message("starting");
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
            println!("{}", summary_table(run, self.wide));
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
