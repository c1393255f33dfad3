//! compare.html: the comparison table, then per matched case the two runs' percentile curves overlaid
//! on the nines axis.

use std::fmt::Write as _;
use std::path::Path;

use super::{HEADER, Row};
use crate::report::charts::{Axis, Chart, Scale, Series, render};
use crate::report::esc;
use crate::report::figures::{fmt_ms, fmt_plain};
use crate::results::case_files::read_hgrm;
use crate::results::schema::CaseResult;

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

pub(super) fn compare_html(
    baseline: &Path,
    candidate: &Path,
    method: &str,
    rows: &[Row<'_>],
) -> anyhow::Result<String> {
    let mut html = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>kbench compare</title><style>body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;font-size:14px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.REGRESSION{background:#fbe9e9}.improvement{background:#eef8ee}figure{margin:1.5em 0}figcaption{color:#555;font-size:14px}.warn{color:#a40}</style></head><body>",
    );
    let _ = write!(
        html,
        "<h1>kbench compare</h1><ul><li><b>baseline</b>: {}</li><li><b>candidate</b>: {}</li></ul><p>{}</p><table><tr>",
        esc(&baseline.display().to_string()),
        esc(&candidate.display().to_string()),
        esc(method)
    );
    for h in HEADER {
        let _ = write!(html, "<th>{}</th>", esc(h));
    }
    html.push_str("</tr>");
    for r in rows {
        let _ = write!(html, "<tr class=\"{}\">", r.verdict.split_whitespace().next().unwrap_or(""));
        for c in &r.cells {
            let _ = write!(html, "<td>{}</td>", esc(c));
        }
        html.push_str("</tr>");
    }
    html.push_str("</table><h2>Latency percentiles, baseline against candidate</h2>");
    for r in rows {
        let mut series = Vec::new();
        for outcome in [curve(baseline, r.base, "baseline"), curve(candidate, r.cand, "candidate")] {
            match outcome {
                Ok(s) => series.push(s),
                Err(e) => {
                    let _ = write!(html, "<p class=\"warn\">Not drawn: {}</p>", esc(&e));
                }
            }
        }
        if series.is_empty() {
            continue;
        }
        let chart = Chart {
            title: r.cells.first().cloned().unwrap_or_else(|| r.key.clone()),
            x: Axis { label: "percentile".into(), scale: Scale::Nines, format: fmt_plain },
            y: Axis { label: "end-to-end latency".into(), scale: Scale::Log10, format: fmt_ms },
            series,
            references: vec![],
            lines: true,
        };
        let _ = write!(
            html,
            "<figure>{}<figcaption>{}: {}</figcaption></figure>",
            render(&chart)?,
            esc(r.cells.first().map_or("", String::as_str)),
            esc(r.verdict)
        );
    }
    html.push_str("</body></html>\n");
    Ok(html)
}
