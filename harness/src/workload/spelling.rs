//! The one spelling rule's two forms in `records:` (docs/WORKLOADS.md, "Key spelling"): the keys of
//! its `key` and `value` subsections written flat, whole, as the docs' tables write them
//! (`key.distribution: zipf`, `value.size: 512`), or nested (`key: { distribution: zipf }`). Both
//! read the same; one key given both ways is refused, naming both. Every other section's keys are
//! Kafka's dotted names, written whole.

use std::path::PathBuf;

use serde::Deserialize;

use super::schema::{KeyDistribution, KeySpec, Payload, RecordsSpec, ValueSpec};
use super::units::{DurationSpec, Size};

/// `records:` as a file writes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecordsFile {
    #[serde(default)]
    duration: Option<DurationSpec>,
    #[serde(default)]
    count: Option<u64>,
    #[serde(default)]
    warmup: Option<DurationSpec>,
    #[serde(default)]
    rate: Option<f64>,
    #[serde(default)]
    key: Option<KeyFile>,
    #[serde(default)]
    value: Option<ValueFile>,
    #[serde(default, rename = "key.distribution")]
    key_distribution: Option<KeyDistribution>,
    #[serde(default, rename = "key.cardinality")]
    key_cardinality: Option<u64>,
    #[serde(default, rename = "key.size")]
    key_size: Option<usize>,
    #[serde(default, rename = "key.s")]
    key_s: Option<f64>,
    #[serde(default, rename = "value.size")]
    value_size: Option<Size>,
    #[serde(default, rename = "value.payload")]
    value_payload: Option<Payload>,
    #[serde(default, rename = "value.file")]
    value_file: Option<PathBuf>,
    #[serde(default)]
    headers: Option<u32>,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    max_error_ratio: Option<f64>,
}

/// `records.key:` nested.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    #[serde(default)]
    distribution: Option<KeyDistribution>,
    #[serde(default)]
    cardinality: Option<u64>,
    #[serde(default)]
    size: Option<usize>,
    #[serde(default)]
    s: Option<f64>,
}

/// `records.value:` nested.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ValueFile {
    #[serde(default)]
    size: Option<Size>,
    #[serde(default)]
    payload: Option<Payload>,
    #[serde(default)]
    file: Option<PathBuf>,
}

/// The one value of `records.<sub>.<name>` given either way; both is an error naming both.
fn one<T>(sub: &str, name: &str, nested: Option<T>, flat: Option<T>) -> Result<Option<T>, String> {
    match (nested, flat) {
        (Some(_), Some(_)) => Err(format!(
            "records.{sub}.{name} is given twice, as `{sub}: {{ {name}: ... }}` and as `{sub}.{name}: ...`; write it once"
        )),
        (nested, flat) => Ok(nested.or(flat)),
    }
}

impl TryFrom<RecordsFile> for RecordsSpec {
    type Error = String;

    fn try_from(f: RecordsFile) -> Result<Self, String> {
        let (k, v) = (f.key.unwrap_or_default(), f.value.unwrap_or_default());
        let (key_default, value_default) = (KeySpec::default(), ValueSpec::default());
        let key = KeySpec {
            distribution: one("key", "distribution", k.distribution, f.key_distribution)?
                .unwrap_or(key_default.distribution),
            cardinality: one("key", "cardinality", k.cardinality, f.key_cardinality)?
                .unwrap_or(key_default.cardinality),
            size: one("key", "size", k.size, f.key_size)?.unwrap_or(key_default.size),
            s: one("key", "s", k.s, f.key_s)?.unwrap_or(key_default.s),
        };
        let value = ValueSpec {
            size: one("value", "size", v.size, f.value_size)?.unwrap_or(value_default.size),
            payload: one("value", "payload", v.payload, f.value_payload)?.unwrap_or(value_default.payload),
            file: one("value", "file", v.file, f.value_file)?,
        };
        Ok(RecordsSpec {
            duration: f.duration,
            count: f.count,
            warmup: f.warmup.unwrap_or_default(),
            rate: f.rate.unwrap_or(0.0),
            key,
            value,
            headers: f.headers.unwrap_or(0),
            seed: f.seed.unwrap_or_else(super::schema::default_seed),
            max_error_ratio: f.max_error_ratio.unwrap_or_else(super::schema::default_max_error_ratio),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(yaml: &str) -> Result<RecordsSpec, String> {
        serde_saphyr::from_str::<RecordsSpec>(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn flat_and_nested_read_the_same_and_a_key_given_twice_is_refused() {
        let nested = records(
            "duration: 1s\nkey: { distribution: zipf, cardinality: 10, size: 8, s: 1.2 }\n\
             value: { size: 512, payload: json }\n",
        )
        .unwrap();
        let flat = records(
            "duration: 1s\nkey.distribution: zipf\nkey.cardinality: 10\nkey.size: 8\nkey.s: 1.2\n\
             value.size: 512\nvalue.payload: json\n",
        )
        .unwrap();
        let mixed =
            records("duration: 1s\nkey: { distribution: zipf, cardinality: 10 }\nkey.size: 8\nkey.s: 1.2\nvalue.size: 512\nvalue: { payload: json }\n")
                .unwrap();
        let json = |r: &RecordsSpec| serde_json::to_value(r).unwrap();
        assert_eq!(json(&nested), json(&flat));
        assert_eq!(json(&nested), json(&mixed), "different keys may mix the spellings");
        assert_eq!(flat.key.distribution, KeyDistribution::Zipf);
        assert_eq!(flat.value.size.0, 512);
        // Written nested, whatever was read.
        assert_eq!(json(&flat)["key"]["cardinality"], 10);

        let e = records("duration: 1s\nkey: { size: 8 }\nkey.size: 9\n").unwrap_err();
        assert!(e.contains("records.key.size is given twice, as `key: { size: ... }` and as `key.size: ...`"), "{e}");
        let e = records("duration: 1s\nvalue.sise: 9\n").unwrap_err();
        assert!(e.contains("unknown field `value.sise`"), "{e}");
        let e = records("duration: 1s\nkey: { sise: 9 }\n").unwrap_err();
        assert!(e.contains("unknown field `sise`"), "{e}");
        // Untouched keys keep their defaults.
        let d = records("duration: 1s\n").unwrap();
        assert_eq!(json(&d), json(&RecordsSpec { duration: d.duration, ..RecordsSpec::default() }));
    }
}
