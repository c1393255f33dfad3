//! `report.md` and `report.html` of a run, rebuilt from run.json alone: machine facts, one table of
//! every case, and the winners (highest throughput, lowest p99, best throughput within a p99 budget).

pub(crate) mod charts;
pub(crate) mod figures;
mod threads;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::progress::{NONE, human_count, human_ns, ratio_cell, summary_cells};
use crate::results::concerns;
use crate::results::schema::{CaseResult, RunFile};
use crate::results::{load_run, writer_atomic};

/// `kbench report` arguments.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// A run directory (holding run.json).
    pub run_dir: PathBuf,
    /// p99 budget for "best throughput within budget", in ms (default: the median case's p99).
    #[arg(long, value_name = "MS")]
    pub p99_budget_ms: Option<f64>,
}

/// `kbench report`.
pub fn run_report(args: &ReportArgs) -> anyhow::Result<()> {
    write_report_with(&args.run_dir, args.p99_budget_ms)?;
    println!("wrote {} and {}", args.run_dir.join("report.md").display(), args.run_dir.join("report.html").display());
    Ok(())
}

/// Writes report.md and report.html into `run_dir`.
pub fn write_report(run_dir: &Path) -> anyhow::Result<()> {
    write_report_with(run_dir, None)
}

/// The winners of one group of comparable cases (closed loop, or open loop at one target rate).
struct Winners<'a> {
    /// `closed loop`, `open loop at 20,000 records/s`; empty when the run has one group.
    group: String,
    throughput: Option<&'a CaseResult>,
    latency: Option<&'a CaseResult>,
    within_budget: Option<&'a CaseResult>,
    budget_ns: u64,
    /// Cases left out for their concerns: (tag, the first barring concern).
    barred: Vec<(String, String)>,
}

/// Winners per group of comparable cases: closed-loop cases compete with each other, open-loop cases
/// with those at the same target rate; a case that failed, was interrupted, saturated or lost
/// acknowledged records is never crowned.
fn winners(run: &RunFile, budget_ms: Option<f64>) -> Vec<Winners<'_>> {
    let mut groups: Vec<(String, Vec<&CaseResult>)> = Vec::new();
    for c in &run.cases {
        let rate = c.summary.target_rate;
        let name = if rate > 0.0 {
            format!("open loop at {} records/s", crate::results::verdict::grouped(rate.round() as u64))
        } else {
            "closed loop".to_string()
        };
        match groups.iter_mut().find(|(n, _)| *n == name) {
            Some((_, cases)) => cases.push(c),
            None => groups.push((name, vec![c])),
        }
    }
    let single = groups.len() == 1;
    groups
        .into_iter()
        .map(|(group, cases)| {
            let barred = cases
                .iter()
                .filter(|c| !concerns::eligible(c))
                .map(|c| {
                    let why = concerns::concerns(c)
                        .into_iter()
                        .find(|k| k.bars)
                        .map_or_else(|| "nothing acknowledged".to_string(), |k| k.short);
                    (figures::case_tag(c), why)
                })
                .collect();
            let ok: Vec<&CaseResult> = cases.into_iter().filter(|c| concerns::eligible(c)).collect();
            let budget_ns = budget_ms.map(|ms| (ms * 1e6) as u64).unwrap_or_else(|| {
                let mut p99s: Vec<u64> = ok.iter().map(|c| c.summary.end_to_end_ns.p99).collect();
                p99s.sort_unstable();
                p99s.get(p99s.len() / 2).copied().unwrap_or(0)
            });
            let by_tput =
                |a: &&&CaseResult, b: &&&CaseResult| a.summary.records_per_sec.total_cmp(&b.summary.records_per_sec);
            Winners {
                group: if single { String::new() } else { group },
                throughput: ok.iter().max_by(by_tput).copied(),
                latency: ok.iter().min_by_key(|c| c.summary.end_to_end_ns.p99).copied(),
                within_budget: ok.iter().filter(|c| c.summary.end_to_end_ns.p99 <= budget_ns).max_by(by_tput).copied(),
                budget_ns,
                barred,
            }
        })
        .collect()
}

/// A case named by its swept parameters as the workload writes them
/// (`producer.batch.size=16384, topic.faults=fail-leader at 3s until 6s`), or its id.
pub(crate) fn case_label(c: &CaseResult) -> String {
    if c.params.is_empty() {
        return c.id.clone();
    }
    c.params.iter().map(|(k, v)| format!("{k}={}", crate::workload::value_text(v))).collect::<Vec<_>>().join(", ")
}

fn rows(run: &RunFile) -> (Vec<String>, Vec<Vec<String>>) {
    let keys: Vec<String> = run.cases.first().map(|c| c.params.keys().cloned().collect()).unwrap_or_default();
    let mut header: Vec<String> = vec!["#".into()];
    header.extend(keys.iter().map(|k| figures::short_key(k).to_string()));
    header.extend(
        [
            "repeat",
            "records/s",
            "MB/s",
            "p50",
            "p99",
            "p99.9",
            "max",
            "batch fill",
            "compression ratio",
            "saturated",
            "status",
            "errors",
            "harness",
        ]
        .map(String::from),
    );
    let replicated = run.cases.iter().any(|c| c.summary.replication.is_some());
    if replicated {
        header.extend(["lost acknowledged", "elections"].map(String::from));
    }
    let faulted = run.cases.iter().any(|c| !concerns::faults_applied(c).is_empty());
    if faulted {
        header.push("faults applied".into());
    }
    let consumers = run.cases.iter().any(|c| c.summary.consumers.is_some());
    if consumers {
        header.extend(
            ["consumed/s", "consume p99", "lost", "duplicated", "out of order", "rebalance pause"].map(String::from),
        );
    }
    let body = run
        .cases
        .iter()
        .map(|c| {
            let s = &c.summary;
            let mut r: Vec<String> = vec![figures::case_tag(c)];
            r.extend(keys.iter().map(|k| c.params.get(k).map_or_else(String::new, crate::workload::value_text)));
            r.push(c.repeat.to_string());
            r.extend(summary_cells(c));
            r.extend([
                ratio_cell(s, 3),
                if s.saturated { "yes".into() } else { "no".into() },
                format!("{:?}", c.status).to_lowercase(),
                s.errors.to_string(),
                if s.harness.ns_per_record > 0.0 {
                    format!(
                        "{:.0} ns, {:.1}%{}",
                        s.harness.ns_per_record,
                        s.harness.percent,
                        if s.harness.flagged { " !" } else { "" }
                    )
                } else {
                    "-".into()
                },
            ]);
            if replicated {
                match &s.replication {
                    Some(k) => r.extend([k.lost_acknowledged.to_string(), k.elections.to_string()]),
                    None => r.extend([NONE.to_string(), NONE.to_string()]),
                }
            }
            if faulted {
                let f = concerns::faults_applied(c);
                r.push(if f.is_empty() { NONE.into() } else { f.join("; ") });
            }
            if consumers {
                match &s.consumers {
                    Some(k) => r.extend([
                        human_count(k.processed_per_sec),
                        human_ns(k.end_to_end_ns.p99 as f64),
                        k.lost.to_string(),
                        k.duplicated.to_string(),
                        k.out_of_order.to_string(),
                        format!("{:.0}ms", k.max_rebalance_pause_ms),
                    ]),
                    None => r.extend(std::iter::repeat_n(NONE.to_string(), 6)),
                }
            }
            let all = concerns::concerns(c);
            r.push(if all.is_empty() {
                NONE.into()
            } else {
                all.iter().map(|k| k.short.as_str()).collect::<Vec<_>>().join("; ")
            });
            r
        })
        .collect();
    header.push("concerns".into());
    (header, body)
}

fn facts(run: &RunFile) -> Vec<(String, String)> {
    let e = &run.environment;
    let mut f = vec![
        ("workload".to_string(), format!("{} ({})", run.name, run.workload_file)),
        ("complete".into(), run.complete.to_string()),
        (
            "machine".into(),
            format!(
                "{} x {}, {:.1} GiB, {}",
                e.cpu_count,
                e.cpu_model,
                e.memory_bytes as f64 / (1u64 << 30) as f64,
                e.kernel
            ),
        ),
        (
            "build".into(),
            format!(
                "kbench {} ({} profile), {}, commit {}",
                run.kbench_version,
                e.profile,
                e.rustc,
                e.git_commit.as_deref().unwrap_or("unknown")
            ),
        ),
        (
            "io".into(),
            format!(
                "{} (effective {}; io_uring available: {}), data on {}",
                e.io_backend,
                e.io_backend_effective,
                e.io_uring_available,
                e.filesystem.as_deref().unwrap_or("?")
            ),
        ),
        ("time".into(), format!("{} to {}", e.started_at, e.ended_at.as_deref().unwrap_or("(running)"))),
    ];
    if let Some(d) = run.references.disk_write_bytes_per_sec {
        f.push(("disk (fio)".into(), format!("{:.0} MB/s sequential write", d / 1e6)));
    }
    if !run.references.codec_compress_bytes_per_sec.is_empty() {
        let codecs: Vec<String> = run
            .references
            .codec_compress_bytes_per_sec
            .iter()
            .map(|(k, v)| format!("{k} {:.0} MB/s", v / 1e6))
            .collect();
        f.push(("codecs (1 core, this payload)".into(), codecs.join(", ")));
    }
    f
}

/// What the table's figures mean.
fn notes(run: &RunFile) -> Vec<String> {
    let mut n = vec![
        "Latency is end-to-end delivery latency (from the scheduled send in open loop). Charts are in report.html."
            .to_string(),
    ];
    if let Some(line) = crate::results::schema::HarnessCost::run_line(&run.cases) {
        n.push(format!(
            "The {line}. It is the same worker loop against a backend that does nothing, measured before each case \
             with the case's records (column \"harness\": its share of each case's per-record time)."
        ));
    }
    if run.cases.iter().any(|c| c.summary.consumers.is_some()) {
        n.push(
            "Consumer columns: records processed per second, p99 from the scheduled send to the end of processing, and the \
             delivery accounting of the whole case: acknowledged records never processed (lost), processed more than once \
             (duplicated), processed before an earlier record of the same producer thread and key (out of order); and the \
             longest poll that included a rebalance."
                .into(),
        );
    }
    n
}

fn winner_lines(w: &Winners<'_>) -> Vec<String> {
    let group = if w.group.is_empty() { String::new() } else { format!(" ({})", w.group) };
    let line = |label: &str, c: Option<&CaseResult>| match c {
        Some(c) => format!(
            "{label}{group}: {} {} — {} records/s, p99 {}",
            figures::case_tag(c),
            case_label(c),
            human_count(c.summary.records_per_sec),
            human_ns(c.summary.end_to_end_ns.p99 as f64)
        ),
        None => format!("{label}{group}: none (no case without a concern)"),
    };
    let mut out = vec![
        line("Highest throughput", w.throughput),
        line("Lowest p99 latency", w.latency),
        line(&format!("Best throughput with p99 <= {}", human_ns(w.budget_ns as f64)), w.within_budget),
    ];
    if !w.barred.is_empty() {
        let list: Vec<String> = w.barred.iter().map(|(tag, why)| format!("{tag} ({why})")).collect();
        out.push(format!("Not considered{group}: {}", list.join(", ")));
    }
    out
}

/// Every case's concerns and faults in words, and whether they bar it from the Winners.
fn concern_lines(run: &RunFile) -> Vec<(String, bool)> {
    run.cases.iter().filter_map(|c| Some((crate::progress::concern_line(c)?, !concerns::eligible(c)))).collect()
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;font-size:14px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.win{background:#eef8ee;padding:.5em 1em;border-left:4px solid #4a4}figure{margin:1.5em 0}figcaption{color:#555;font-size:14px;max-width:880px}.warn{color:#a40}tr.warn td{background:#fdf0e6}";

/// A markdown table in comfy-table's markdown style, columns padded to a common width; `right`
/// lists the right-aligned columns. Pipes and line breaks in cells are escaped.
pub(crate) fn markdown_table<S: AsRef<str>>(header: &[S], body: &[Vec<String>], right: &[usize]) -> String {
    let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    let mut t = comfy_table::Table::new();
    t.load_style(comfy_table::presets::ASCII_MARKDOWN);
    t.set_header(header.iter().map(|h| cell(h.as_ref())).collect::<Vec<_>>());
    for r in body {
        t.add_row(r.iter().map(|c| cell(c)).collect::<Vec<_>>());
    }
    for &i in right {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(comfy_table::CellAlignment::Right);
        }
    }
    format!("{t}\n")
}

/// A whole HTML page: `title`, the inline `style`, and `body` (escaped by maud where it interpolates).
pub(crate) fn html_page(title: &str, style: &str, body: Markup) -> String {
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) }
                style { (PreEscaped(style)) }
            }
            body { (body) }
        }
    };
    page.into_string() + "\n"
}

fn write_report_with(run_dir: &Path, budget_ms: Option<f64>) -> anyhow::Result<()> {
    let run = load_run(run_dir)?;
    let w = winners(&run, budget_ms);
    let (header, body) = rows(&run);
    let facts = facts(&run);
    let winners: Vec<String> = w.iter().flat_map(winner_lines).collect();
    let concerns = concern_lines(&run);
    let notes = notes(&run);

    let mut md = format!("# kbench report: {}\n\n{}\n\n", run.name, run.description);
    for (k, v) in &facts {
        let _ = writeln!(md, "- **{k}**: {v}");
    }
    md.push_str("\n## Winners\n\n");
    for l in &winners {
        let _ = writeln!(md, "- {l}");
    }
    if !concerns.is_empty() {
        md.push_str("\n## Concerns\n\n");
        for (l, _) in &concerns {
            let _ = writeln!(md, "- {l}");
        }
    }
    md.push('\n');
    for n in &notes {
        let _ = writeln!(md, "{n}");
    }
    md.push_str("\n## Cases\n\n");
    let numeric: Vec<usize> = (1..header.len()).collect();
    md.push_str(&markdown_table(&header, &body, &numeric));
    let (cpu_header, cpu_body) = threads::cpu_by_thread(&run);
    if !cpu_body.is_empty() {
        md.push_str(
            "\n## CPU by thread\n\nCores used during each measured phase (CPU seconds / seconds), by thread role.\n\n",
        );
        md.push_str(&markdown_table(&cpu_header, &cpu_body, &(1..cpu_header.len()).collect::<Vec<_>>()));
    }
    writer_atomic(&run_dir.join("report.md"), md.as_bytes()).context("writing report.md")?;

    let mut problems = Vec::new();
    let figs = figures::figures(&run, run_dir, &mut problems);
    let svgs = figs
        .iter()
        .map(|f| charts::render(&f.chart).map(|svg| (svg, &f.caption)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let body = html! {
        h1 { "kbench report: " (run.name) }
        p { (run.description) }
        ul { @for (k, v) in &facts { li { b { (k) } ": " (v) } } }
        h2 { "Winners" }
        div.win { @for l in &winners { p { (l) } } }
        @if !concerns.is_empty() {
            h2 { "Concerns" }
            ul { @for (l, bars) in &concerns { li class=(if *bars { "warn" } else { "" }) { (l) } } }
        }
        @for n in &notes { p { (n) } }
        h2 { "Cases" }
        table {
            tr { @for h in &header { th { (h) } } }
            @for (r, c) in body.iter().zip(&run.cases) {
                tr class=(if concerns::eligible(c) { "" } else { "warn" }) { @for cell in r { td { (cell) } } }
            }
        }
        @if !cpu_body.is_empty() {
            h2 { "CPU by thread" }
            p { "Cores used during each measured phase (CPU seconds / seconds), by thread role." }
            table {
                tr { @for h in &cpu_header { th { (h) } } }
                @for r in &cpu_body { tr { @for c in r { td { (c) } } } }
            }
        }
        h2 { "Charts" }
        @for p in &problems { p.warn { "Not drawn: " (p) } }
        @for (svg, caption) in &svgs {
            figure { (PreEscaped(svg)) figcaption { (caption) } }
        }
    };
    let html = html_page("kbench report", STYLE, body);
    writer_atomic(&run_dir.join("report.html"), html.as_bytes()).context("writing report.html")?;
    Ok(())
}
