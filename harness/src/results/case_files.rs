//! Reading a case's per-case files back (for reports): the percentile distribution (`.hgrm`) and the
//! per-second CSV. Both formats are documented in docs/RESULTS-FORMAT.md.

use std::path::Path;

use anyhow::{Context, bail};

/// One row of an `.hgrm`: latency (ms) at a percentile (0-100).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PercentilePoint {
    pub percentile: f64,
    pub value_ms: f64,
}

/// The rows of an `.hgrm` percentile distribution, in file order (the final 100% row included).
pub fn read_hgrm(path: &Path) -> anyhow::Result<Vec<PercentilePoint>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_hgrm(&text).with_context(|| format!("parsing {}", path.display()))
}

fn parse_hgrm(text: &str) -> anyhow::Result<Vec<PercentilePoint>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with("Value") {
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(v), Some(p)) = (fields.next(), fields.next()) else {
            bail!("line {}: expected `Value Percentile ...`", n + 1);
        };
        let value_ms: f64 = v.parse().with_context(|| format!("line {}: value `{v}`", n + 1))?;
        let fraction: f64 = p.parse().with_context(|| format!("line {}: percentile `{p}`", n + 1))?;
        out.push(PercentilePoint { percentile: fraction * 100.0, value_ms });
    }
    Ok(out)
}

/// One second of `intervals.csv`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IntervalRow {
    pub elapsed_sec: f64,
    pub records_per_sec: f64,
    pub mb_per_sec: f64,
    pub p99_ms: f64,
    /// The consumer group's lag (records), when the case had consumers.
    pub consumer_lag: Option<f64>,
}

/// The rows of a case's `intervals.csv`.
pub fn read_intervals(path: &Path) -> anyhow::Result<Vec<IntervalRow>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_intervals(&text).with_context(|| format!("parsing {}", path.display()))
}

fn parse_intervals(text: &str) -> anyhow::Result<Vec<IntervalRow>> {
    let mut lines = text.lines().enumerate();
    let header = lines.next().map(|(_, h)| h).unwrap_or_default();
    let cols: Vec<&str> = header.split(',').collect();
    let col = |name: &str| cols.iter().position(|c| *c == name).with_context(|| format!("no `{name}` column"));
    let (e, r, m, p) = (col("elapsed_sec")?, col("records_per_sec")?, col("mb_per_sec")?, col("e2e_p99_ns")?);
    let lag = cols.iter().position(|c| *c == "consumer_lag");
    let mut out = Vec::new();
    for (n, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').collect();
        let num = |i: usize| -> anyhow::Result<f64> {
            let s = f.get(i).with_context(|| format!("line {}: too few fields", n + 1))?;
            s.parse().with_context(|| format!("line {}: `{s}` is not a number", n + 1))
        };
        out.push(IntervalRow {
            elapsed_sec: num(e)?,
            records_per_sec: num(r)?,
            mb_per_sec: num(m)?,
            p99_ms: num(p)? / 1e6,
            consumer_lag: lag.and_then(|i| f.get(i)).and_then(|s| s.parse().ok()),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hgrm_rows_and_intervals_parse() {
        let h = "       Value     Percentile TotalCount 1/(1-Percentile)\n\n       0.121 0.000000000000          1           1.00\n       3.607 0.500000000000       1995           2.00\n      15.499 1.000000000000          0\n#[Mean    =        4.172, StdDeviation   =        2.683]\n";
        let rows = parse_hgrm(h).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1], PercentilePoint { percentile: 50.0, value_ms: 3.607 });
        assert!(parse_hgrm("  x 0.5 1 2\n").is_err());

        let csv = "elapsed_sec,records,records_per_sec,mb_per_sec,e2e_p50_ns,e2e_p99_ns,e2e_p999_ns,e2e_max_ns\n1.007,20000,19852.1,2.303,3606527,12247039,14188543,15499263\n";
        let rows = parse_intervals(csv).unwrap();
        assert_eq!(rows.len(), 1);
        assert!((rows[0].p99_ms - 12.247039).abs() < 1e-9);
        assert!(parse_intervals("a,b\n1,2\n").is_err());
    }
}
