//! The workload settings two runs differ in: every resolved key of run.json's `workload`, dotted
//! (`topic.flush.messages`), with the baseline's and the candidate's value. Runs made with different
//! settings do not compare builds, so `kbench compare` fails on them unless told they are meant.

use serde_json::Value;

use crate::workload::value_text;

/// Every leaf of `v` under `prefix`, dotted; lists are leaves.
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, v, out);
            }
        }
        leaf => out.push((prefix.to_string(), leaf.clone())),
    }
}

/// `topic.flush.messages: null in the baseline, 1 in the candidate`, per key that differs, in key
/// order; a key only one side has reads `(absent)` on the other.
pub fn differences(base: &Value, cand: &Value) -> Vec<String> {
    let (mut b, mut c) = (Vec::new(), Vec::new());
    flatten("", base, &mut b);
    flatten("", cand, &mut c);
    let mut keys: Vec<&String> = b.iter().chain(&c).map(|(k, _)| k).collect();
    keys.sort();
    keys.dedup();
    let get = |side: &[(String, Value)], k: &str| {
        side.iter().find(|(key, _)| key == k).map_or_else(|| "(absent)".to_string(), |(_, v)| value_text(v))
    };
    keys.into_iter()
        .filter_map(|k| {
            let (bv, cv) = (get(&b, k), get(&c, k));
            (bv != cv).then(|| format!("{k}: {bv} in the baseline, {cv} in the candidate"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_each_differing_key_with_both_values() {
        let base = serde_json::json!({"topic": {"flush.messages": null, "partitions": 2}, "repeat": 3, "name": "a"});
        let cand =
            serde_json::json!({"topic": {"flush.messages": 1, "partitions": 2}, "repeat": 1, "name": "a", "x": true});
        assert_eq!(
            differences(&base, &cand),
            [
                "repeat: 3 in the baseline, 1 in the candidate",
                "topic.flush.messages: null in the baseline, 1 in the candidate",
                "x: (absent) in the baseline, true in the candidate",
            ]
        );
        assert!(differences(&base, &base).is_empty());
    }
}
