//! The table printed at the end of `kbench run`: one row per case, within [`WIDTH`] columns by
//! default (`--wide`: every column), one unit per column under its name, `-` where a figure does not
//! apply, a legend for the less obvious columns, and under it every case's concerns (what failed,
//! what was lost and after which faults) in words.

use comfy_table::{CellAlignment, ContentLineStyle, LineStyle, Table, TableStyle};

use super::{NONE, has_batches, has_latency, has_throughput};
use crate::report::case_label;
use crate::report::figures::case_tag;
use crate::results::concerns::{concerns, faults_applied};
use crate::results::schema::{CaseResult, LatencySummary, RunFile};

/// The terminal width the default table keeps within.
pub const WIDTH: usize = 100;

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

type Cell = Box<dyn Fn(&CaseResult) -> String>;

/// One column: its header, the cell of each case, and the legend's words for it (if any).
struct Column {
    header: String,
    cell: Cell,
    legend: Option<&'static str>,
}

fn column(
    header: impl Into<String>,
    legend: Option<&'static str>,
    cell: impl Fn(&CaseResult) -> String + 'static,
) -> Column {
    Column { header: header.into(), cell: Box::new(cell), legend }
}

/// A name and its unit as a two-line header (`p99` over `(ms)`); no unit line when it is empty.
fn with_unit(name: &str, unit: &str) -> String {
    if unit.is_empty() { name.to_string() } else { format!("{name}\n({unit})") }
}

/// A count, or [`NONE`] when the case does not have the figure.
fn count(v: Option<u64>) -> String {
    v.map_or_else(|| NONE.to_string(), |n| n.to_string())
}

/// The columns of the table: the compact set, or with `wide` every one.
fn columns(cases: &[CaseResult], wide: bool) -> Vec<Column> {
    let rate = unit_for(cases.iter().filter(|c| has_throughput(c)).map(|c| c.summary.records_per_sec), &COUNT_UNITS);
    let replicated = cases.iter().any(|c| c.summary.replication.is_some());
    let consumers = cases.iter().any(|c| c.summary.consumers.is_some());
    let faulted = cases.iter().any(|c| !faults_applied(c).is_empty());

    let mut cols = vec![
        column("case", None, case_tag),
        column("status", None, |c: &CaseResult| {
            let mut s = format!("{:?}", c.status).to_lowercase();
            if c.summary.saturated {
                s.push('*');
            }
            s
        }),
        column("errors", Some("errors: failed sends"), |c: &CaseResult| c.summary.errors.to_string()),
    ];
    if replicated {
        cols.push(column(
            "lost",
            Some("lost: acknowledged records missing from the log after the faults (replication audit)"),
            |c: &CaseResult| count(c.summary.replication.as_ref().map(|r| r.lost_acknowledged)),
        ));
        cols.push(column("elect", Some("elect: leader elections"), |c: &CaseResult| {
            count(c.summary.replication.as_ref().map(|r| u64::from(r.elections)))
        }));
    }
    if faulted {
        cols.push(column("faults", Some("faults: fault steps applied (listed below the table)"), |c: &CaseResult| {
            faults_applied(c).len().to_string()
        }));
    }
    if consumers {
        cols.push(column("unread", Some("unread: acknowledged records no consumer processed"), |c: &CaseResult| {
            count(c.summary.consumers.as_ref().map(|k| k.lost))
        }));
        cols.push(column("dup", Some("dup: records processed more than once"), |c: &CaseResult| {
            count(c.summary.consumers.as_ref().map(|k| k.duplicated))
        }));
    }
    cols.push(column(with_unit("records/s", rate.0), None, move |c: &CaseResult| {
        if has_throughput(c) { figure(c.summary.records_per_sec / rate.1) } else { NONE.into() }
    }));
    if wide {
        cols.push(column("MB/s", None, |c: &CaseResult| {
            if has_throughput(c) { format!("{:.1}", c.summary.bytes_per_sec / 1e6) } else { NONE.into() }
        }));
    }
    type Pick = fn(&LatencySummary) -> u64;
    let mut latencies: Vec<(&str, Pick)> = vec![("p50", |l| l.p50), ("p99", |l| l.p99)];
    if wide {
        latencies.push(("p99.9", |l| l.p999));
    }
    latencies.push(("max", |l| l.max));
    for (name, pick) in latencies {
        let unit = unit_for(
            cases.iter().filter(|c| has_latency(&c.summary)).map(|c| pick(&c.summary.end_to_end_ns) as f64),
            &TIME_UNITS,
        );
        cols.push(column(with_unit(name, unit.0), None, move |c: &CaseResult| {
            let s = &c.summary;
            if has_latency(s) { figure(pick(&s.end_to_end_ns) as f64 / unit.1) } else { NONE.into() }
        }));
    }
    if wide {
        cols.push(column(
            "fill\n(%)",
            Some("fill: mean batch bytes / batch.size (over 100% when one record is larger than batch.size)"),
            |c: &CaseResult| {
                if has_batches(&c.summary) { format!("{:.0}", c.summary.batch_fill * 100.0) } else { NONE.into() }
            },
        ));
        cols.push(column(
            "ratio",
            Some("ratio: compressed / uncompressed bytes (1.00 = no reduction)"),
            |c: &CaseResult| super::ratio_cell(&c.summary, 2),
        ));
        cols.push(column(
            "harness\n(%)",
            Some("harness: the harness's own cost, as a share of the per-record time"),
            |c: &CaseResult| {
                let h = &c.summary.harness;
                if h.ns_per_record > 0.0 { format!("{:.1}", h.percent) } else { NONE.into() }
            },
        ));
        if consumers {
            cols.push(column("consumed/s", None, |c: &CaseResult| {
                c.summary.consumers.as_ref().map_or_else(|| NONE.into(), |k| super::human_count(k.processed_per_sec))
            }));
        }
    }
    cols
}

fn render(cols: &[Column], cases: &[CaseResult], settings: Option<&dyn Fn(&CaseResult) -> String>) -> Vec<String> {
    let mut t = Table::new();
    // No borders: a line under the header, two spaces between columns.
    t.load_style(
        TableStyle::new()
            .header_lines(ContentLineStyle::none())
            .header_separator(LineStyle::none().fill('-'))
            .content_lines(ContentLineStyle::none()),
    );
    let mut header: Vec<String> = cols.iter().map(|c| c.header.clone()).collect();
    if settings.is_some() {
        header.push("settings".into());
    }
    t.set_header(header);
    for c in cases {
        let mut row: Vec<String> = cols.iter().map(|col| (col.cell)(c)).collect();
        if let Some(s) = settings {
            row.push(s(c));
        }
        t.add_row(row);
    }
    let n = t.column_count();
    for (i, col) in t.column_iter_mut().enumerate() {
        col.set_padding((0, if i + 1 == n { 0 } else { 2 }));
        let text = i == 0 || (settings.is_some() && i + 1 == n);
        col.set_cell_alignment(if text || i == 1 { CellAlignment::Left } else { CellAlignment::Right });
    }
    t.lines().map(|l| l.trim_end().to_string()).collect()
}

/// `text` broken at spaces into lines of at most `width` characters, the later lines indented by
/// `indent` spaces.
pub(crate) fn wrap(text: &str, width: usize, indent: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    // A word longer than a line (a case id) is cut into pieces that fit.
    let room = width.saturating_sub(indent).max(1);
    let pieces = text.split(' ').filter(|w| !w.is_empty()).flat_map(|w| {
        let chars: Vec<char> = w.chars().collect();
        chars.chunks(room).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>()
    });
    for word in pieces {
        let len = line.chars().count();
        if len > 0 && len + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
            line = " ".repeat(indent);
        } else if len > 0 && !line.trim().is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !line.trim().is_empty() {
        lines.push(line);
    }
    lines
}

/// `#9 producer.acks=1, ...: lost 29 of 160,000 acknowledged records ...; faults applied: ...`: a
/// case's concerns and the faults applied to it, in words; `None` for a clean case without faults.
pub fn concern_line(c: &CaseResult) -> Option<String> {
    let all = concerns(c);
    let faults = faults_applied(c);
    if all.is_empty() && faults.is_empty() {
        return None;
    }
    let mut text = format!("{} {}:", case_tag(c), case_label(c));
    for (i, k) in all.iter().enumerate() {
        text.push_str(if i == 0 { " " } else { "; " });
        text.push_str(&k.long);
    }
    if !faults.is_empty() && !all.iter().any(|k| k.long.contains(&faults[0])) {
        text.push_str(if all.is_empty() { " faults applied: " } else { "; faults applied: " });
        text.push_str(&faults.join(", "));
        // After faults, what the audit found is the point, lost or not: say it when nothing was lost.
        if let Some(r) = c.summary.replication.as_ref().filter(|r| r.lost_acknowledged == 0) {
            text.push_str(&format!(
                "; the audit found all {} acknowledged records in the log{}",
                crate::results::verdict::grouped(r.acknowledged),
                if r.converged { "" } else { " (replicas not converged: audited as they were)" }
            ));
        }
    }
    Some(text)
}

/// The table, its legend and every case's concerns: within [`WIDTH`] columns unless `wide`.
pub fn summary_table(run: &RunFile, wide: bool) -> String {
    let cases = &run.cases;
    let cols = columns(cases, wide);
    let has_params = cases.iter().any(|c| !c.params.is_empty());
    let width = if wide { usize::MAX } else { WIDTH };
    let mut lines = Vec::new();
    if !has_params {
        lines.extend(render(&cols, cases, None));
    } else {
        let used = render(&cols, cases, None).iter().map(|l| l.chars().count()).max().unwrap_or(0);
        let room = width.saturating_sub(used + 2);
        if cases.iter().all(|c| case_label(c).chars().count() <= room) {
            lines.extend(render(&cols, cases, Some(&|c| case_label(c))));
        } else {
            // Settings too long for a column: each sweep point's, once, above the table.
            let mut seen = std::collections::BTreeSet::new();
            for c in cases.iter().filter(|c| seen.insert(c.index)) {
                lines.extend(wrap(&format!("#{} {}", c.index, case_label(c)), width, 2));
            }
            lines.extend(render(&cols, cases, None));
        }
    }
    let width = if wide { usize::MAX } else { WIDTH };

    let mut legend: Vec<&str> = Vec::new();
    if cases.iter().any(|c| c.summary.saturated) {
        legend.push("*: saturated, the senders fell behind their schedule (open loop)");
    }
    legend.extend(cols.iter().filter_map(|c| c.legend));
    legend.push("latency: end-to-end, from the scheduled send");
    legend.push("-: does not apply");
    if !wide {
        legend.push("--wide: every column");
    }
    lines.extend(wrap(&legend.join("; "), width, 2));

    for c in cases {
        if let Some(text) = concern_line(c) {
            lines.extend(wrap(&text, width, 2));
        }
    }
    if let Some(line) = crate::results::schema::HarnessCost::run_line(cases) {
        lines.extend(wrap(&line, width, 2));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::schema::{CaseStatus, ReplicationSummary, Summary};

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

    fn cells<'a>(lines: &'a [&'a str], tag: &str) -> Vec<&'a str> {
        let is_row = |l: &&&str| {
            let mut words = l.split_whitespace();
            words.next() == Some(tag) && words.next().is_some_and(|s| s.starts_with("ok") || s.starts_with("failed"))
        };
        let row = lines.iter().find(is_row).unwrap_or_else(|| panic!("{tag}"));
        row.split_whitespace().skip(1).collect()
    }

    #[test]
    fn compact_table_fits_100_columns_with_one_unit_per_column_and_dashes() {
        let table = summary_table(&run(), false);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines.iter().all(|l| l.chars().count() <= WIDTH), "fits {WIDTH} columns:\n{table}");
        let header = format!("{}\n{}", lines[0], lines[1]);
        for h in ["case", "status", "errors", "records/s", "(M)", "p50", "p99", "(ms)", "max", "(s)", "settings"] {
            assert!(header.contains(h), "header lacks {h}:\n{table}");
        }
        for h in ["MB/s", "fill", "ratio", "lost", "unread"] {
            assert!(!header.contains(h), "compact or not applicable: {h}\n{table}");
        }
        assert!(lines[2].starts_with("----"), "{table}");
        let failed = cells(&lines, "#0.1");
        assert_eq!(failed[..2], ["failed", "42"], "{table}");
        assert_eq!(failed[2..6], [NONE; 4], "a failed case has no figures: {failed:?}");
        assert_eq!(failed[6], "producer.linger.ms=0");
        let kafka = cells(&lines, "#1.1");
        assert_eq!(kafka[..3], ["ok", "0", "0.00"], "900 records/s in the column's M: {kafka:?}");
        assert_eq!(kafka[5], "2.50", "max in s: {kafka:?}");
        // 2425651 records/s, p50 13.09ms, p99 31.93ms in the columns' ms, max in s.
        assert_eq!(cells(&lines, "#0")[..7], ["ok", "0", "2.43", "13.1", "31.9", "0.04", "producer.linger.ms=0"]);
        assert!(lines[3..9].iter().all(|l| !l.contains("ns") && !l.contains("µs") && !l.contains('%')), "{table}");
        assert!(table.contains("errors: failed sends") && table.contains("--wide"), "legend:\n{table}");
        assert!(table.contains("#0.1 producer.linger.ms=0: failed: engine: disk full"), "{table}");
    }

    #[test]
    fn wide_table_has_every_column() {
        let table = summary_table(&run(), true);
        let header = table.lines().take(2).collect::<Vec<_>>().join("\n");
        for h in ["MB/s", "p99.9", "fill", "ratio", "harness", "settings"] {
            assert!(header.contains(h), "wide lacks {h}:\n{table}");
        }
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(cells(&lines, "#1.1")[8..10], [NONE, NONE], "no batch fill or ratio for kafka: {table}");
        assert!(table.contains("fill: mean batch bytes / batch.size"), "{table}");
    }

    #[test]
    fn lost_acknowledged_records_and_their_faults_are_in_the_table_and_below_it() {
        let mut run = run();
        let long = "fail-leader at 3s until 6s";
        for (i, c) in run.cases.iter_mut().enumerate() {
            c.params.insert("producer.acks".into(), serde_json::json!(if i % 2 == 0 { "1" } else { "all" }));
            c.params.insert(
                "topic.faults".into(),
                serde_json::json!([{"at": "3s", "action": "fail-leader", "until": "6s"}]),
            );
            c.summary.replication = Some(ReplicationSummary {
                replication_factor: 3,
                min_insync_replicas: 2,
                acknowledged: 160_000,
                lost_acknowledged: if i == 2 { 29 } else { 0 },
                elections: 2,
                converged: true,
                faults: vec![
                    "3.0s fail leader broker 0 (epoch 1)".into(),
                    "6.0s restart failed leader broker 0".into(),
                ],
                fault_losses: Vec::new(),
            });
        }
        let table = summary_table(&run, false);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines.iter().all(|l| l.chars().count() <= WIDTH), "fits {WIDTH} columns:\n{table}");
        let header = lines.iter().find(|l| l.starts_with("case ")).unwrap();
        assert!(header.contains("lost") && header.contains("elect") && header.contains("faults"), "{table}");
        let flat = table.replace("\n  ", " ");
        assert!(
            flat.contains(
                "#1 producer.acks=all, producer.linger.ms=20, topic.faults=fail-leader at 3s until 6s: faults \
                           applied: 3.0s"
            ),
            "a clean case's faults are told too: {table}"
        );
        assert_eq!(cells(&lines, "#0.2")[..5], ["ok", "0", "29", "2", "2"], "{table}");
        assert_eq!(cells(&lines, "#0")[2], "0", "{table}");
        assert!(table.contains(long), "swept faults read as written: {table}");
        assert!(
            lines[0].starts_with("#0 producer.acks=1, producer.linger.ms=0, topic.faults=fail-leader at 3s"),
            "settings too long for a column are listed above the table: {table}"
        );
        let listed = |l: &&&str| l.starts_with("#1 producer.") && !l.contains(':');
        assert_eq!(lines.iter().filter(listed).count(), 1, "once per sweep point: {table}");
        let note = flat.split("#0.2 ").nth(2).unwrap_or_else(|| panic!("a note for #0.2:\n{table}"));
        assert!(
            note.starts_with(
                "producer.acks=1, producer.linger.ms=0, topic.faults=fail-leader at 3s until 6s: lost 29 of 160,000"
            ),
            "{note}"
        );
        assert!(note.contains("after 3.0s fail leader broker 0"), "{note}");
    }
}
