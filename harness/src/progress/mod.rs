//! What the terminal shows while a run goes: a bar per sweep and per case with live records/s, p99
//! and ETA on a terminal; plain lines otherwise; nothing with --quiet; a summary table at the end.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::results::schema::{RunFile, Summary};

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

/// A case's headline figures as the tables print them: records/s, MB/s, p50, p99, p99.9 and max
/// end-to-end latency, batch fill.
pub fn summary_cells(s: &crate::results::schema::Summary) -> [String; 7] {
    [
        human_count(s.records_per_sec),
        format!("{:.1}", s.bytes_per_sec / 1e6),
        human_ns(s.end_to_end_ns.p50 as f64),
        human_ns(s.end_to_end_ns.p99 as f64),
        human_ns(s.end_to_end_ns.p999 as f64),
        human_ns(s.end_to_end_ns.max as f64),
        format!("{:.0}%", s.batch_fill * 100.0),
    ]
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

/// An aligned text table of every case.
pub fn summary_table(run: &RunFile) -> String {
    let mut rows = vec![vec![
        "case".to_string(),
        "records/s".into(),
        "MB/s".into(),
        "p50".into(),
        "p99".into(),
        "p99.9".into(),
        "max".into(),
        "fill".into(),
        "ratio".into(),
        "status".into(),
    ]];
    for c in &run.cases {
        let s = &c.summary;
        let mut row = vec![c.id.clone()];
        row.extend(summary_cells(s));
        row.push(format!("{:.2}", s.compression_ratio));
        row.push(format!("{:?}{}", c.status, if s.saturated { " saturated" } else { "" }).to_lowercase());
        rows.push(row);
    }
    let widths: Vec<usize> =
        (0..rows[0].len()).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    rows.iter()
        .map(|r| {
            r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect::<Vec<_>>().join("  ").trim_end().to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}
