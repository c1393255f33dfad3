//! Sweeps: `section.key: [values]` expanded into cases (grid or zip) times `repeat`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::error::{error, locate};
use super::{SweepMode, Workload, WorkloadError};

/// One run of the workload: a sweep point and a repeat.
#[derive(Debug, Clone, Serialize)]
pub struct Case {
    /// Stable, filesystem-safe id, e.g. `003-batch.size=16384,linger.ms=5`.
    pub id: String,
    /// Sweep point index.
    pub index: usize,
    /// Repeat, from 0.
    pub repeat: u32,
    /// The swept keys and this case's values.
    pub params: BTreeMap<String, serde_json::Value>,
    /// The workload with this case's values, fully resolved.
    pub workload: Workload,
}

/// Sections that hold keys, longest first so `records.key.size` finds `records.key` and
/// `engine.properties.sasl.mechanism` finds `engine.properties` (librdkafka's names, dots included).
const SECTIONS: &[&str] =
    &["records.key", "records.value", "engine.properties", "engine", "topic", "producer", "records", "consumers"];

/// The workload with `key` (`section.key`, or a top-level key) set to `value`, re-checked by type.
pub(crate) fn with_value(w: &Workload, key: &str, value: &serde_json::Value) -> Result<Workload, String> {
    let mut json = serde_json::to_value(w).map_err(|e| e.to_string())?;
    let (section, field) = SECTIONS
        .iter()
        .find_map(|s| key.strip_prefix(s).and_then(|rest| rest.strip_prefix('.')).map(|f| (*s, f)))
        .unwrap_or(("", key));
    let mut target = &mut json;
    for part in section.split('.').filter(|p| !p.is_empty()) {
        target = target
            .as_object_mut()
            .ok_or("not a section")?
            .entry(part.to_string())
            .or_insert_with(|| serde_json::Value::Object(Default::default()));
    }
    let obj = target.as_object_mut().ok_or_else(|| format!("`{section}` is not a section"))?;
    if ["sweep", "sweep_mode"].contains(&field) && section.is_empty() {
        return Err("the sweep itself cannot be swept or overridden".into());
    }
    obj.insert(field.to_string(), value.clone());
    let mut out: Workload = serde_json::from_value(json).map_err(|e| {
        let m = e.to_string();
        match super::error::suggest(section, field) {
            Some(s) if m.contains("unknown field") && s != field => format!("{m} (did you mean `{section}.{s}`?)"),
            _ => m,
        }
    })?;
    out.source = w.source.clone();
    Ok(out)
}

/// Expands the sweep; `text` (the file, when known) locates errors.
pub(crate) fn expand(w: &Workload, text: &str) -> Result<Vec<Case>, WorkloadError> {
    let keys: Vec<&String> = w.sweep.keys().collect();
    for k in &keys {
        if w.sweep[*k].is_empty() {
            return Err(error(
                &w.source,
                locate(text, "sweep", k),
                Some(format!("sweep.{k}")),
                "a sweep list needs at least one value",
            ));
        }
    }
    let points: Vec<Vec<serde_json::Value>> = match w.sweep_mode {
        SweepMode::Grid => keys.iter().fold(vec![Vec::new()], |acc, k| {
            acc.into_iter()
                .flat_map(|prefix| {
                    w.sweep[*k].iter().map(move |v| {
                        let mut p = prefix.clone();
                        p.push(v.clone());
                        p
                    })
                })
                .collect()
        }),
        SweepMode::Zip => {
            let len = keys.first().map_or(1, |k| w.sweep[*k].len());
            if let Some(k) = keys.iter().find(|k| w.sweep[**k].len() != len) {
                return Err(error(
                    &w.source,
                    locate(text, "sweep", k),
                    Some(format!("sweep.{k}")),
                    format!("sweep_mode: zip needs lists of equal length ({len} values expected)"),
                ));
            }
            (0..len).map(|i| keys.iter().map(|k| w.sweep[*k][i].clone()).collect()).collect()
        }
    };
    let mut resolved_points = Vec::with_capacity(points.len());
    for values in &points {
        let mut resolved = w.clone();
        resolved.sweep.clear();
        let mut params = BTreeMap::new();
        for (k, v) in keys.iter().zip(values) {
            resolved = with_value(&resolved, k, v).map_err(|m| {
                error(&w.source, locate(text, "sweep", k), Some(format!("sweep.{k}")), format!("value {v}: {m}"))
            })?;
            params.insert((*k).clone(), v.clone());
        }
        resolved.sweep.clear();
        resolved_points.push((params, resolved));
    }
    // Repeats go round the whole sweep (A B A B, not A A B B), so that a slow minute of a shared
    // host lands on every point alike rather than on one point's repeats.
    let mut cases = Vec::with_capacity(points.len() * w.repeat as usize);
    for repeat in 0..w.repeat {
        for (index, (params, resolved)) in resolved_points.iter().enumerate() {
            let label: Vec<String> =
                params.iter().map(|(k, v)| format!("{}={}", short_key(k, &keys), value_text(v))).collect();
            let mut id = format!("{index:03}");
            if !label.is_empty() {
                id.push('-');
                id.push_str(&sanitize(&label.join(",")));
            }
            if w.repeat > 1 {
                id.push_str(&format!("-r{repeat}"));
            }
            cases.push(Case { id, index, repeat, params: params.clone(), workload: resolved.clone() });
        }
    }
    Ok(cases)
}

/// `producer.batch.size` -> `batch.size`, unless another swept key has the same field name.
fn short_key(key: &str, all: &[&String]) -> String {
    let field = SECTIONS.iter().find_map(|s| key.strip_prefix(s).and_then(|r| r.strip_prefix('.'))).unwrap_or(key);
    let clash = all.iter().filter(|k| k.ends_with(&format!(".{field}")) || k.as_str() == field).count() > 1;
    if clash { key.to_string() } else { field.to_string() }
}

/// A swept value as people write it: strings without quotes, a list of faults as
/// `fail-leader at 3s until 6s, stop broker 1 at 0ms`, an empty list as `none`. Case ids, report
/// labels and `kbench validate` all print values through this.
pub fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n)
            if n.as_f64().is_some_and(|f| f.fract() == 0.0 && f.abs() < 1e15) && n.is_f64() =>
        {
            format!("{:.0}", n.as_f64().unwrap_or_default())
        }
        serde_json::Value::Array(items) if items.is_empty() => "none".into(),
        serde_json::Value::Array(items) => items.iter().map(value_text).collect::<Vec<_>>().join(", "),
        serde_json::Value::Object(map) => {
            // `action` first, then what it acts on, then when: `stop broker 1 at 0ms until 2s`.
            let mut words: Vec<String> = map.get("action").map(value_text).into_iter().collect();
            let when = ["at", "until"];
            for (k, v) in map.iter().filter(|(k, _)| *k != "action" && !when.contains(&k.as_str())) {
                words.push(format!("{k} {}", value_text(v)));
            }
            for k in when {
                if let Some(v) = map.get(k) {
                    words.push(format!("{k} {}", value_text(v)));
                }
            }
            words.join(" ")
        }
        other => other.to_string(),
    }
}

fn sanitize(s: &str) -> String {
    let cleaned: String =
        s.chars().map(|c| if c.is_ascii_alphanumeric() || "._=,-".contains(c) { c } else { '_' }).collect();
    cleaned.chars().take(120).collect()
}

/// The cases every `--only KEY=VALUE` selects: KEY a swept key (`producer.batch.size`, or without
/// its section, `batch.size`), VALUE as the sweep writes it (`16384`, `all`, `none` for an empty
/// list). Several `--only` must all hold; the same key twice means either value.
pub fn select(cases: Vec<Case>, only: &[String]) -> Result<Vec<Case>, String> {
    let mut wanted: Vec<(String, Vec<String>)> = Vec::new();
    for o in only {
        let (key, value) = o
            .split_once('=')
            .ok_or_else(|| format!("--only `{o}`: write KEY=VALUE, e.g. --only 'producer.batch.size=16384'"))?;
        let (key, value) = (key.trim(), value.trim().trim_matches(|c| c == '"' || c == '\'').to_string());
        let swept: Vec<&String> = cases.first().map(|c| c.params.keys().collect()).unwrap_or_default();
        let matching: Vec<&&String> =
            swept.iter().filter(|k| k.as_str() == key || k.split_once('.').is_some_and(|(_, f)| f == key)).collect();
        let full = match matching.as_slice() {
            [one] => (**one).clone(),
            [] => {
                let list: Vec<&str> = swept.iter().map(|k| k.as_str()).collect();
                return Err(format!(
                    "--only {o}: `{key}` is not a swept key (swept: {})",
                    if list.is_empty() { "nothing".to_string() } else { list.join(", ") }
                ));
            }
            _ => return Err(format!("--only {o}: `{key}` names several swept keys; write it with its section")),
        };
        match wanted.iter_mut().find(|(k, _)| *k == full) {
            Some((_, values)) => values.push(value),
            None => wanted.push((full, vec![value])),
        }
    }
    let picked: Vec<Case> = cases
        .iter()
        .filter(|c| wanted.iter().all(|(k, values)| c.params.get(k).is_some_and(|v| values.contains(&value_text(v)))))
        .cloned()
        .collect();
    if picked.is_empty() && !only.is_empty() {
        let mut known: Vec<String> = Vec::new();
        for (k, _) in &wanted {
            let mut values: Vec<String> = Vec::new();
            for c in &cases {
                let v = c.params.get(k).map(value_text).unwrap_or_default();
                if !values.contains(&v) {
                    values.push(v);
                }
            }
            known.push(format!("{k}: {}", values.join(", ")));
        }
        return Err(format!("--only {}: no case matches (the sweep has {})", only.join(" --only "), known.join("; ")));
    }
    Ok(picked)
}
