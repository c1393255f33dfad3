//! compare.html: the verdict, the candidate's problems, the comparison table, then per matched case
//! the two runs' percentile curves overlaid on the nines axis. Markup from maud (every interpolated
//! string escaped); the charts are plotters' SVG, inserted as is.

use std::path::Path;

use maud::{Markup, PreEscaped, html};

use super::{HEADER, Outcome};
use crate::report::charts::{Axis, Chart, Scale, Series, render};
use crate::report::figures::{fmt_ms, fmt_plain};
use crate::results::case_files::read_hgrm;
use crate::results::schema::CaseResult;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;font-size:14px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}table.problems td{text-align:left}.regression{background:#fbe9e9}.improvement{background:#eef8ee}.verdict{font-weight:bold}.verdict.fail{color:#a00}figure{margin:1.5em 0}figcaption{color:#555;font-size:14px}.warn{color:#a40}";

/// The case's percentile curve, or why not.
fn curve(run_dir: &Path, case: Option<&CaseResult>, name: &str) -> Result<Series, String> {
    let c = case.ok_or_else(|| format!("{name}: no successful case"))?;
    let rows = read_hgrm(&run_dir.join(&c.files.hgrm)).map_err(|e| format!("{name}: {e:#}"))?;
    Ok(Series {
        name: format!("{name} ({})", c.id),
        points: rows.iter().map(|r| (r.percentile, r.value_ms)).collect(),
        point_labels: vec![],
    })
}

/// Per matched case: the overlaid chart's SVG, or why a side was not drawn.
fn figures(o: &Outcome<'_>) -> anyhow::Result<Markup> {
    let mut parts = Vec::new();
    for r in &o.rows {
        let mut series = Vec::new();
        let mut warnings = Vec::new();
        for outcome in [curve(o.baseline, r.base, "baseline"), curve(o.candidate, r.cand, "candidate")] {
            match outcome {
                Ok(s) => series.push(s),
                Err(e) => warnings.push(e),
            }
        }
        let svg = if series.is_empty() {
            None
        } else {
            let chart = Chart {
                title: r.label.clone(),
                x: Axis { label: "percentile".into(), scale: Scale::Nines, format: fmt_plain },
                y: Axis { label: "end-to-end latency".into(), scale: Scale::Log10, format: fmt_ms },
                series,
                references: vec![],
                lines: true,
            };
            Some(render(&chart)?)
        };
        parts.push(html! {
            @for w in &warnings { p.warn { "Not drawn: " (w) } }
            @if let Some(svg) = svg {
                figure { (PreEscaped(svg)) figcaption { (r.label) ": " (r.verdict.text()) } }
            }
        });
    }
    Ok(html! { @for p in parts { (p) } })
}

pub(super) fn compare_html(o: &Outcome<'_>) -> anyhow::Result<String> {
    let figures = figures(o)?;
    let body = html! {
        h1 { "kbench compare" }
        ul {
            li { b { "baseline" } ": " (o.baseline.display()) }
            li { b { "candidate" } ": " (o.candidate.display()) }
        }
        p.verdict.fail[o.regressed()] { (o.headline()) }
        @if !o.problems.is_empty() {
            h2 { "Candidate problems (each fails the comparison)" }
            table.problems {
                tr { th { "case" } th { "problem" } }
                @for p in &o.problems { tr { td { (p.case) } td { (p.why) } } }
            }
        }
        @if !o.notes.is_empty() {
            h2 { "Not compared" }
            ul { @for n in &o.notes { li { (n) } } }
        }
        h2 { "Compared cases" }
        p { (o.method) }
        @if !o.rows.is_empty() {
            table {
                tr { @for h in HEADER { th { (h) } } }
                @for r in &o.rows {
                    tr class=(r.verdict.class()) { @for c in &r.cells { td { (c) } } }
                }
            }
            p { (o.tally()) }
            h2 { "Latency percentiles, baseline against candidate" }
            (figures)
        }
    };
    Ok(crate::report::html_page("kbench compare", STYLE, body))
}
