//! The "CPU by thread" table: where each case's CPU went during its measured phase, in cores
//! (CPU seconds / measured seconds), by thread role. A role no case used is left out.

use crate::results::schema::RunFile;

/// Header and rows, one row per case that ran; empty when no case has thread figures.
pub(crate) fn cpu_by_thread(run: &RunFile) -> (Vec<String>, Vec<Vec<String>>) {
    let used: Vec<&'static str> = crate::results::schema::ThreadsCpu::default()
        .roles()
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| {
            run.cases.iter().any(|c| {
                c.summary.threads.roles().iter().any(|(n, r)| n == name && r.threads > 0 && r.cpu_seconds > 0.0)
            })
        })
        .collect();
    if used.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let mut header = vec!["case".to_string()];
    header.extend(used.iter().map(|n| format!("{n} (cores)")));
    let body = run
        .cases
        .iter()
        .filter(|c| c.summary.duration_sec > 0.0)
        .map(|c| {
            let mut row = vec![super::case_label(c)];
            for name in &used {
                let role = c.summary.threads.roles().into_iter().find(|(n, _)| n == name).map(|(_, r)| r);
                row.push(match role {
                    Some(r) if r.threads > 0 => {
                        format!("{:.2} ({} thr)", r.cpu_seconds / c.summary.duration_sec, r.threads)
                    }
                    _ => "-".into(),
                });
            }
            row
        })
        .collect();
    (header, body)
}
