//! Writing the run directory: atomic files, the interval log, the CSV and the .hgrm.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};

use super::schema::{CaseFiles, RunFile};
use crate::metrics::{Interval, Measured, Stage};

/// A run's directory.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
}

/// Writes `bytes` to `path` atomically: a temporary file of its own in the same directory, fsynced,
/// renamed. Two writers of the same path (the run loop and a second Ctrl-C's handler both write
/// run.json) each rename a whole file of their own; the last rename wins, and neither fails.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut tmp = tempfile::Builder::new().prefix(&format!(".{name}.")).suffix(".tmp").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map(drop).map_err(|e| e.error)
}

/// Whether `--out DIR` may be written: a missing or empty directory, or with `replace` one that
/// holds a run (run.json). Any other content is refused either way: --replace removes only runs.
pub fn check_out(dir: &Path, replace: bool) -> anyhow::Result<()> {
    let Ok(mut entries) = std::fs::read_dir(dir) else {
        if dir.exists() {
            anyhow::bail!("--out {}: exists and is not a directory", dir.display());
        }
        return Ok(());
    };
    if entries.next().is_none() {
        return Ok(());
    }
    if dir.join("run.json").is_file() {
        if replace {
            return Ok(());
        }
        anyhow::bail!(
            "--out {}: already holds a run (run.json); pass --replace to overwrite it, or choose another directory",
            dir.display()
        );
    }
    anyhow::bail!(
        "--out {}: is not empty and holds no run; kbench writes only into a new or empty directory",
        dir.display()
    )
}

impl RunDir {
    /// `out`, or `results_root/<UTC timestamp>-<name>/`.
    pub fn create(out: Option<&Path>, results_root: &Path, name: &str, replace: bool) -> anyhow::Result<RunDir> {
        let path = match out {
            Some(p) => {
                check_out(p, replace)?;
                if replace && p.join("run.json").is_file() {
                    std::fs::remove_dir_all(p)
                        .with_context(|| format!("--replace: removing the run in {}", p.display()))?;
                }
                p.to_path_buf()
            }
            None => {
                let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ").to_string();
                results_root.join(format!("{stamp}-{name}"))
            }
        };
        std::fs::create_dir_all(path.join("cases"))
            .with_context(|| format!("creating the results directory {}", path.display()))?;
        Ok(RunDir { path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes run.json atomically.
    pub fn write_run(&self, run: &RunFile) -> anyhow::Result<()> {
        let json = serde_json::to_vec_pretty(run)?;
        write_atomic(&self.path.join("run.json"), &json)?;
        Ok(())
    }

    /// Starts a case's files.
    pub fn case_writer(&self, case_id: &str, start: SystemTime) -> anyhow::Result<CaseWriter> {
        let rel = PathBuf::from("cases").join(case_id);
        let dir = self.path.join(&rel);
        std::fs::create_dir_all(&dir)?;
        let hlog = File::create(dir.join("latency.hlog"))
            .with_context(|| format!("creating {}", dir.join("latency.hlog").display()))?;
        let csv = File::create(dir.join("intervals.csv"))
            .with_context(|| format!("creating {}", dir.join("intervals.csv").display()))?;
        let (tx, rx) = crossbeam_channel::bounded::<Interval>(4);
        let thread = std::thread::Builder::new()
            .name("kbench-results".into())
            .spawn(move || stream_intervals(rx, start, hlog, csv))
            .context("spawning the results writer")?;
        Ok(CaseWriter { dir, rel, tx: Some(tx), thread: Some(thread) })
    }
}

/// One case's files. Intervals stream to disk as they are taken (a writer thread owns the
/// interval log), so memory does not grow with the case's length and an interrupted case keeps
/// what it measured.
#[derive(Debug)]
pub struct CaseWriter {
    dir: PathBuf,
    rel: PathBuf,
    tx: Option<crossbeam_channel::Sender<Interval>>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

/// The writer thread: latency.hlog and intervals.csv, one interval at a time, each flushed.
fn stream_intervals(
    rx: crossbeam_channel::Receiver<Interval>,
    start: SystemTime,
    hlog: File,
    csv: File,
) -> anyhow::Result<()> {
    let mut hlog = BufWriter::new(hlog);
    let mut csv = BufWriter::new(csv);
    csv.write_all(
        b"elapsed_sec,records,records_per_sec,mb_per_sec,e2e_p50_ns,e2e_p99_ns,e2e_p999_ns,e2e_max_ns,consumer_lag\n",
    )?;
    let mut serializer = V2DeflateSerializer::new();
    let mut log = IntervalLogWriterBuilder::new()
        .add_comment("kbench interval log: values in nanoseconds (batch_records: records, batch_bytes: bytes, compression_ratio_permille: thousandths)")
        .with_start_time(start)
        .with_base_time(start)
        .with_max_value_divisor(1.0)
        .begin_log_with(&mut hlog, &mut serializer)
        .map_err(|e| anyhow::anyhow!("starting the interval log: {e:?}"))?;
    for iv in rx {
        let e2e = &iv.stages[0];
        let end = (iv.start + iv.length).as_secs_f64();
        writeln!(
            csv,
            "{end:.3},{},{:.1},{:.3},{},{},{},{},{}",
            iv.records,
            iv.records_per_sec,
            iv.mb_per_sec,
            e2e.value_at_quantile(0.5),
            e2e.value_at_quantile(0.99),
            e2e.value_at_quantile(0.999),
            if e2e.is_empty() { 0 } else { e2e.max() },
            iv.consumer_lag.map_or_else(String::new, |l| l.to_string())
        )?;
        csv.flush()?;
        for (stage, h) in Stage::ALL.iter().zip(&iv.stages) {
            if h.is_empty() {
                continue;
            }
            let tag = Tag::new(stage.tag()).ok_or_else(|| anyhow::anyhow!("bad tag"))?;
            log.write_histogram(h, iv.start, iv.length, Some(tag))
                .map_err(|e| anyhow::anyhow!("writing the interval log: {e:?}"))?;
        }
    }
    drop(log);
    hlog.flush()?;
    hlog.get_ref().sync_all()?;
    csv.get_ref().sync_all()?;
    Ok(())
}

impl CaseWriter {
    /// Adds one interval (written by the writer thread).
    pub fn write_interval(&mut self, iv: Interval) -> anyhow::Result<()> {
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(iv).is_ok());
        if !sent {
            // The writer stopped: its error says why.
            self.join()?;
            anyhow::bail!("the results writer of {} stopped", self.dir.display());
        }
        Ok(())
    }

    fn join(&mut self) -> anyhow::Result<()> {
        self.tx = None;
        match self.thread.take().map(std::thread::JoinHandle::join) {
            Some(Ok(r)) => r.with_context(|| format!("writing the interval files under {}", self.dir.display())),
            Some(Err(_)) => anyhow::bail!("the results writer panicked"),
            None => Ok(()),
        }
    }

    /// Closes latency.hlog and intervals.csv and writes end_to_end.hgrm.
    pub fn finish(mut self, m: &Measured) -> anyhow::Result<CaseFiles> {
        self.join()?;
        write_atomic(&self.dir.join("end_to_end.hgrm"), hgrm(m.stage(Stage::EndToEnd)).as_bytes())?;
        let rel = |f: &str| self.rel.join(f).display().to_string();
        Ok(CaseFiles { hlog: rel("latency.hlog"), intervals_csv: rel("intervals.csv"), hgrm: rel("end_to_end.hgrm") })
    }
}

/// HdrHistogram's percentile distribution text, as Java's `outputPercentileDistribution` writes it
/// (5 ticks per half distance, values scaled to milliseconds, the histogram's significant digits):
/// `Value Percentile TotalCount 1/(1-Percentile)` rows, where TotalCount is cumulative (the values
/// recorded up to and including the row's value), then the `#[Mean`, `#[Max` and `#[Buckets` lines.
/// The rows are HdrHistogram's own, row for row (harness/tests/results_format.rs compares them with
/// Java's HistogramLogProcessor): see [`percentile_rows`].
pub fn hgrm(h: &hdrhistogram::Histogram<u64>) -> String {
    let scale = 1_000_000.0;
    let digits = usize::from(h.sigfig());
    let mut out = format!("{:>12} {:>14} {:>10} {:>14}\n\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)");
    for (value, percentile, total) in percentile_rows(h, 5) {
        let (value, q) = (value as f64 / scale, percentile / 100.0);
        if percentile < 100.0 {
            out.push_str(&format!("{value:12.digits$} {q:14.12} {total:10} {:14.2}\n", 1.0 / (1.0 - q)));
        } else {
            out.push_str(&format!("{value:12.digits$} {q:14.12} {total:10}\n"));
        }
    }
    let max = if h.is_empty() { 0.0 } else { h.highest_equivalent(h.max()) as f64 / scale };
    out.push_str(&format!(
        "#[Mean    = {:12.digits$}, StdDeviation   = {:12.digits$}]\n#[Max     = {max:12.digits$}, Total count    = {:12}]\n#[Buckets = {:12}, SubBuckets     = {:12}]\n",
        h.mean() / scale,
        h.stdev() / scale,
        h.len(),
        h.buckets(),
        sub_buckets(h.sigfig()),
    ));
    out
}

/// The rows of HdrHistogram's percentile iteration: `(value, percentile level in %, cumulative
/// count)`. Levels step by `100 / (ticks x 2^(floor(log2(100 / (100 - level))) + 1))`, in percent as
/// Java's `PercentileIterator` steps them (the hdrhistogram crate steps quantiles from 0 to 1,
/// whose rounding lands some rows one bucket later than HdrHistogram's); a level is reached at the
/// first recorded value whose cumulative share is at or above it (one value may reach several),
/// and a last row at 100% repeats the largest value.
fn percentile_rows(h: &hdrhistogram::Histogram<u64>, ticks_per_half_distance: u32) -> Vec<(u64, f64, u64)> {
    let total = h.len();
    let mut rows = Vec::new();
    if total == 0 {
        return rows;
    }
    let mut level = 0.0f64;
    let mut cumulative = 0u64;
    for v in h.iter_recorded() {
        cumulative += v.count_at_value();
        let value = h.highest_equivalent(v.value_iterated_to());
        while 100.0 * cumulative as f64 / total as f64 >= level {
            rows.push((value, level, cumulative));
            let halvings = ((100.0 / (100.0 - level)).ln() / 2f64.ln()) as i64 + 1;
            let ticks = i64::from(ticks_per_half_distance) * 2f64.powi(halvings.clamp(0, 62) as i32) as i64;
            level += 100.0 / ticks as f64;
            if cumulative == total {
                break;
            }
        }
        if cumulative == total {
            rows.push((value, 100.0, total));
            break;
        }
    }
    rows
}

/// HdrHistogram's sub-bucket count for `sigfig` significant digits: the power of two that holds
/// 2 x 10^sigfig values at single-unit resolution (2048 for 3 digits), as its `#[Buckets` line says.
fn sub_buckets(sigfig: u8) -> u64 {
    let largest = 2.0 * 10f64.powi(i32::from(sigfig));
    let magnitude = (largest.log2().ceil() as u32).max(1);
    1u64 << magnitude
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::CaseMetrics;
    use hdrhistogram::serialization::Deserializer;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    use std::time::{Duration, Instant};

    #[test]
    fn hlog_round_trips_through_hdrhistograms_own_reader() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::create(Some(&dir.path().join("run")), dir.path(), "t", false).unwrap();
        let m = CaseMetrics::new();
        let mut r = m.recorder();
        let t0 = Instant::now();
        m.start_measuring(t0);
        let mut w = run.case_writer("000", SystemTime::now()).unwrap();
        for v in 1..=1000u64 {
            r.record(Stage::EndToEnd, v * 1000);
        }
        r.add_records(1000, 100_000);
        r.hand_over();
        w.write_interval(m.collect_interval(t0 + Duration::from_secs(1))).unwrap();
        let files = w.finish(&m.finish(t0 + Duration::from_secs(1))).unwrap();
        let bytes = std::fs::read(run.path().join(&files.hlog)).unwrap();
        let mut de = Deserializer::new();
        let mut seen = 0;
        for entry in IntervalLogIterator::new(&bytes) {
            if let Ok(LogEntry::Interval(ih)) = entry {
                assert_eq!(ih.tag().map(|t| t.as_str().to_string()), Some("e2e".to_string()));
                let decoded =
                    base64::Engine::decode(&base64::engine::general_purpose::STANDARD, ih.encoded_histogram()).unwrap();
                let h: hdrhistogram::Histogram<u64> = de.deserialize(&mut &decoded[..]).unwrap();
                assert_eq!(h.len(), 1000);
                assert!((h.value_at_quantile(0.99) as f64 - 990_000.0).abs() < 1000.0);
                seen += 1;
            }
        }
        assert_eq!(seen, 1);
        let csv = std::fs::read_to_string(run.path().join(&files.intervals_csv)).unwrap();
        assert_eq!(csv.lines().count(), 2);
        assert!(csv.lines().nth(1).unwrap().starts_with("1.000,1000,"), "{csv}");
        let hgrm = std::fs::read_to_string(run.path().join(&files.hgrm)).unwrap();
        assert!(hgrm.contains("#[Max     =") && hgrm.contains("Total count    =         1000"), "{hgrm}");
        assert!(hgrm.contains("SubBuckets     =         2048"), "3 digits: 2048 sub-buckets, {hgrm}");
        // TotalCount is cumulative, as in HdrHistogram's own output: rising to every value recorded.
        let totals: Vec<u64> = hgrm
            .lines()
            .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
            .map(|l| l.split_whitespace().nth(2).unwrap().parse().unwrap())
            .collect();
        assert!(totals.len() > 20 && totals.windows(2).all(|w| w[0] <= w[1]), "{hgrm}");
        assert_eq!(totals.last(), Some(&1000), "{hgrm}");
        assert!(totals.contains(&500), "the 50% row counts half of the values: {hgrm}");
        assert!(!run.path().join("run.json.tmp").exists());
    }
}
