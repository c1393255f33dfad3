use std::path::Path;

use super::*;

const QUICKSTART: &str = r#"
name: quickstart
description: batch.size x linger.ms x compression on 8 partitions
engine: { kind: embedded, io: io_uring }        # io: io_uring | pwrite | discard | sim
topic:
  name: orders
  partitions: 8
  segment.bytes: 67108864
  flush.messages: null                          # Kafka's flush.messages; null = never fsync
producer:
  threads: 2
  sharing: shared                               # one Producer for all threads | per-thread
  send: async                                   # async | sync (wait for each delivery)
  acks: "1"
  batch.size: 16384
  linger.ms: 5
  compression.type: lz4                         # none | gzip | snappy | lz4 | zstd
  buffer.memory: 33554432
  enable.idempotence: true
  accumulator: lockfree                         # lockfree | mutex
records:
  duration: 10s                                 # or count: N
  warmup: 2s
  rate: 0                                       # records/s, all threads together; 0 = as fast as possible
  key: { distribution: uniform, cardinality: 10000 }   # none | uniform | zipf | sequential
  value: { size: 200, payload: json }                  # random | text | json | file
sweep:                                          # SECTION.KEY: [values]; grid product by default
  producer.batch.size: [16384, 262144]
  producer.linger.ms: [0, 5, 50]
  producer.compression.type: [none, lz4, zstd]
repeat: 1
"#;

fn load_text(text: &str) -> Result<Workload, WorkloadError> {
    load_str(text, Path::new("w.yaml"), &[])
}

#[test]
fn the_issue_example_loads_as_written() {
    let w = load_text(QUICKSTART).unwrap();
    assert_eq!(w.topic.partitions, 8);
    assert_eq!(w.producer.acks, Acks::One);
    assert_eq!(w.producer.compression_type, Compression::Lz4);
    assert_eq!(w.records.duration.unwrap().0, std::time::Duration::from_secs(10));
    assert_eq!(w.records.key.distribution, KeyDistribution::Uniform);
    assert!(w.warnings.iter().any(|m| m.contains("idempotence")), "{:?}", w.warnings);
    let cases = w.cases();
    assert_eq!(cases.len(), 18);
    assert_eq!(cases[0].id, "000-batch.size=16384,compression.type=none,linger.ms=0");
    let last = &cases[17].workload.producer;
    assert_eq!((last.batch_size.0, last.linger_ms, last.compression_type), (262144, 50, Compression::Zstd));
    let ids: std::collections::BTreeSet<_> = cases.iter().map(|c| &c.id).collect();
    assert_eq!(ids.len(), 18, "case ids are unique");
}

#[test]
fn a_typo_names_line_column_key_and_suggestion() {
    let text = "name: t\nproducer:\n  lingr.ms: 5\nrecords: { duration: 1s }\n";
    let e = load_text(text).unwrap_err();
    let s = e.to_string();
    assert!(s.starts_with("w.yaml:3:"), "{s}");
    assert!(s.contains("producer.lingr.ms"), "{s}");
    assert!(s.contains("did you mean `linger.ms`?"), "{s}");
}

#[test]
fn wrong_types_and_impossible_values_are_refused_with_their_place() {
    let e = load_text("name: t\ntopic:\n  partitions: lots\nrecords: { duration: 1s }\n").unwrap_err();
    assert_eq!(e.location.map(|l| l.0), Some(3), "{e}");
    let e = load_text("name: t\ntopic:\n  partitions: 0\nrecords: { duration: 1s }\n").unwrap_err();
    assert_eq!((e.location, e.key.as_deref()), (Some((3, 3)), Some("topic.partitions")), "{e}");
    let e = load_text("name: t\nrecords:\n  duration: 1s\n  count: 5\n").unwrap_err();
    assert!(e.to_string().contains("not both"), "{e}");
    let e = load_text("name: t\nrecords: { duration: 10 parsecs }\n").unwrap_err();
    assert!(e.to_string().contains("unknown duration unit"), "{e}");
    let e = load_text("name: t\nproducer: { acks: 2 }\nrecords: { count: 5 }\n").unwrap_err();
    assert!(e.to_string().contains("acks"), "{e}");
}

#[test]
fn sweep_values_are_checked_like_the_file() {
    let text = "name: t\nrecords: { count: 5 }\nsweep:\n  producer.compression.type: [lz4, brotli]\n";
    let e = load_text(text).unwrap_err();
    assert_eq!(e.location.map(|l| l.0), Some(4), "{e}");
    assert!(e.to_string().contains("brotli"), "{e}");
    let text = "name: t\nrecords: { count: 5 }\nsweep:\n  producer.lingr.ms: [1]\n";
    assert!(load_text(text).unwrap_err().to_string().contains("linger.ms"));
}

#[test]
fn zip_mode_and_repeats() {
    let text = "name: t\nrecords: { count: 5 }\nsweep_mode: zip\nrepeat: 2\nsweep:\n  producer.threads: [1, 2]\n  topic.partitions: [4, 8]\n";
    let w = load_text(text).unwrap();
    let cases = w.cases();
    assert_eq!(cases.len(), 4);
    assert_eq!(cases[3].id, "001-threads=2,partitions=8-r1");
    // Repeats go round the sweep: A B A B.
    assert_eq!(cases[1].id, "001-threads=2,partitions=8-r0");
    assert_eq!(cases[2].id, "000-threads=1,partitions=4-r1");
    assert_eq!(cases[3].workload.topic.partitions, 8);
    let bad = "name: t\nrecords: { count: 5 }\nsweep_mode: zip\nsweep:\n  producer.threads: [1, 2]\n  topic.partitions: [4]\n";
    assert!(load_text(bad).unwrap_err().to_string().contains("equal length"));
}

#[test]
fn grid_follows_the_file_order_last_key_fastest() {
    // Written with the later-sorting key first: the file's order decides the order of cases (labels
    // keep the keys sorted, as run.json's params do).
    let text = "name: t\nrecords: { count: 5 }\nsweep:\n  topic.partitions: [1, 64]\n  producer.accumulator: [lockfree, mutex]\n";
    let ids: Vec<String> = load_text(text).unwrap().cases().into_iter().map(|c| c.id).collect();
    assert_eq!(
        ids,
        [
            "000-accumulator=lockfree,partitions=1",
            "001-accumulator=mutex,partitions=1",
            "002-accumulator=lockfree,partitions=64",
            "003-accumulator=mutex,partitions=64",
        ]
    );
}

#[test]
fn overrides_apply_before_validation() {
    let w = load_str(
        "name: t\nrecords: { count: 5 }\n",
        Path::new("w.yaml"),
        &["producer.linger.ms=20".into(), "records.key.distribution=zipf".into()],
    )
    .unwrap();
    assert_eq!(w.producer.linger_ms, 20);
    assert_eq!(w.records.key.distribution, KeyDistribution::Zipf);
    let e =
        load_str("name: t\nrecords: { count: 5 }\n", Path::new("w.yaml"), &["topic.partitions=0".into()]).unwrap_err();
    assert!(e.to_string().contains("partitions"), "{e}");
}

#[test]
fn direct_io_is_accepted_and_reaches_the_case() {
    let w = load_text("name: t\nrecords: { count: 5 }\ntopic: { direct_io: true }\n").unwrap();
    assert!(w.topic.direct_io);
    let e = load_text("name: t\nrecords: { count: 5 }\ntopic: { direct_io: maybe }\n").unwrap_err();
    assert!(e.to_string().contains("w.yaml:3:21") && e.to_string().contains("boolean"), "{e}");
}

#[test]
fn shipped_workloads_all_validate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../workloads");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            match load(&path, &[]) {
                Ok(_) => {}
                // A kafka workload is refused by a build without the feature, and only then.
                Err(e) if !cfg!(feature = "kafka") && e.to_string().contains("built without the `kafka` feature") => {}
                Err(e) => panic!("{e}"),
            }
            n += 1;
        }
    }
    assert!(n >= 6, "expected the six shipped workloads, found {n}");
}

#[test]
fn the_worst_case_record_is_the_record_the_case_builds() {
    use kbench_engine::record::{RECORD_BATCH_OVERHEAD, RecordHeader, record_size_upper_bound};
    let text = "name: t\ntopic: { replication.factor: 2 }\nrecords:\n  count: 5\n  headers: 3\n  key: { distribution: uniform, size: 24 }\n  value: { size: 700 }\n";
    let w = load_text(text).unwrap();
    let case = &w.cases()[0];
    let plan = crate::driver::plan_for_tests(case);
    // What the worker sends: the plan's headers plus the id header, a key and a value of their sizes.
    let mut headers = plan.headers.clone();
    headers.push(RecordHeader { key: "kbench-id".into(), value: Some(vec![0; 20]) });
    let built = record_size_upper_bound(Some(&[b'0'; 24]), Some(&[7u8; 700]), &headers) + RECORD_BATCH_OVERHEAD;
    assert_eq!(limits::worst_case_record(&case.workload).0, built as u64);
}

#[test]
fn refusals_name_the_written_key_and_line() {
    let e = load_text("name: t\nrecords:\n  count: 5\n  value:\n    payload: text\n    size: 4MiB\n").unwrap_err();
    assert_eq!((e.location, e.key.as_deref()), (Some((6, 5)), Some("records.value.size")), "{e}");
    let e = load_text(
        "name: t\nproducer: { acks: \"1\" }\ntopic: { replication.factor: 2, min.insync.replicas: 3 }\nrecords: { count: 5 }\n",
    );
    assert!(e.is_ok(), "min.insync.replicas only binds acks=all: {e:?}");
}

#[test]
fn validate_speaks_the_files_words_and_shows_swept_keys_as_their_lists() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../workloads/durability.yaml");
    let text = load(&path, &[]).unwrap().describe();
    for internal in ["IoUring", "Shared", "Async", "LockFree", "Some(", "Duration"] {
        assert!(!text.contains(internal), "internal name {internal}: {text}");
    }
    for words in [
        "engine: kind embedded, io [io_uring | io_uring | io_uring | io_uring | io_uring | io_uring | io_uring | io_uring | io_uring | io_uring | io_uring | sim | sim | sim] (swept)",
        "acks [0 | 1 | all | all | all | 1 | all | all | all | 1 | all | all | all | all] (swept)",
        "faults [none | none | none | none | none | none | none | none | none | fail-leader at 3s until 6s | fail-leader at 3s until 6s | power-loss broker all at 3s | power-loss broker all at 3s | power-loss broker leader at 3s] (swept)",
        "batch.size 65536, linger.ms 5, compression.type none",
        "records: duration 8s, warmup 2s, rate 20000,",
        "14 case(s): 14 sweep point(s) (zip)\n",
        // 14 x 10 s of phases, 14 x 2 s of setup, 9 replicated cases x 3 s, 4 s for the run.
        "estimated time: about 3m 19s (2m 20s of warmup and measured phases, about 59s of per-case setup",
    ] {
        assert!(text.contains(words), "lacks `{words}`:\n{text}");
    }
    assert!(!text.contains("replication.factor 1,"), "a swept key shows its list, not the base value: {text}");
}

#[test]
fn set_on_a_swept_key_pins_it_and_only_selects_cases() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../workloads/durability.yaml");
    let w = load(&path, &["producer.acks=all".into()]).unwrap();
    assert!(!w.sweep.contains_key("producer.acks"), "pinned, no longer swept");
    let cases = w.cases();
    assert_eq!(cases.len(), 14);
    assert!(cases.iter().all(|c| c.workload.producer.acks == Acks::All && !c.params.contains_key("producer.acks")));

    let all = load(&path, &[]).unwrap().cases();
    let one = select(all.clone(), &["acks=1".into(), "topic.replication.factor=3".into()]).unwrap();
    assert_eq!(one.iter().map(|c| c.index).collect::<Vec<_>>(), [5, 9], "acks=1 at replication.factor 3");
    let faulted = select(all.clone(), &["faults=fail-leader at 3s until 6s".into()]).unwrap();
    assert_eq!(faulted.len(), 2, "a swept fault selected as it reads");
    let either = select(all.clone(), &["acks=0".into(), "acks=1".into()]).unwrap();
    assert_eq!(either.len(), 4, "one key twice takes either value");
    let e = select(all.clone(), &["linger.ms=5".into()]).unwrap_err();
    assert!(e.contains("`linger.ms` is not a swept key (swept: engine.io, producer.acks,"), "{e}");
    let e = select(all.clone(), &["acks=2".into()]).unwrap_err();
    assert!(e.contains("no case matches (the sweep has producer.acks: 0, 1, all)"), "{e}");
    assert!(select(all, &["acks".into()]).unwrap_err().contains("write KEY=VALUE"));
}

#[test]
fn faults_outside_the_measured_phase_are_refused_by_name() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../workloads");
    let e = load(&dir.join("durability.yaml"), &["records.duration=2s".into()]).unwrap_err().to_string();
    assert!(
        e.contains(
            "faults[0] (fail-leader at 3s until 6s): at 3s is not inside the measured phase (records.duration 2s)"
        ),
        "{e}"
    );
    let e = load(&dir.join("durability.yaml"), &["records.duration=5s".into()]).unwrap_err().to_string();
    assert!(e.contains("until 6s is not inside"), "{e}");
    let e = load(&dir.join("consumer-strategies.yaml"), &["records.duration=1s".into()]).unwrap_err().to_string();
    assert!(e.contains("consumers.faults") && e.contains("faults[0] (crash at 1500ms): at 1500ms"), "{e}");
    assert!(load(&dir.join("durability.yaml"), &["records.duration=6s".into()]).is_ok(), "until at the end is inside");
}

/// Every ```yaml block of docs/*.md and README.md parses under the one spelling rule (docs/WORKLOADS.md,
/// "Key spelling"); fragments get the `name` and `records` a whole file needs. Parsed, not validated:
/// a kafka example must parse in a build without the kafka feature too.
#[test]
fn every_yaml_example_in_the_docs_parses() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.push(root.join("README.md"));
    let mut n = 0;
    // The "Key spelling" section's two examples, flat and nested.
    let mut spelling: Vec<serde_json::Value> = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let mut in_spelling = false;
        let mut block: Option<String> = None;
        for line in text.lines() {
            if line.starts_with("## ") {
                in_spelling = file.ends_with("WORKLOADS.md") && line == "## Key spelling";
            }
            match (&mut block, line.trim_start()) {
                (None, l) if l.starts_with("```yaml") => block = Some(String::new()),
                (Some(b), l) if l.starts_with("```") => {
                    let mut yaml = std::mem::take(b);
                    block = None;
                    if !yaml.lines().any(|l| l.starts_with("name:")) {
                        yaml.push_str("name: example\n");
                    }
                    if !yaml.lines().any(|l| l.starts_with("records:")) {
                        yaml.push_str("records: { duration: 1s }\n");
                    }
                    let parsed: Result<Workload, _> = serde_saphyr::from_str(&yaml);
                    match parsed {
                        Err(e) => panic!("{}: example does not parse: {e}\n{yaml}", file.display()),
                        Ok(w) if in_spelling => spelling.push(serde_json::to_value(&w).unwrap()),
                        Ok(_) => {}
                    }
                    n += 1;
                }
                (Some(b), _) => {
                    b.push_str(line);
                    b.push('\n');
                }
                (None, _) => {}
            }
        }
    }
    assert!(n >= 3, "found {n} yaml examples");
    assert_eq!(spelling.len(), 2, "WORKLOADS.md's Key spelling section shows the flat and the nested spelling");
    assert_eq!(spelling[0], spelling[1], "flat and nested `records` keys read the same");
    assert_eq!(spelling[0]["records"]["key"]["distribution"], "zipf");
    assert_eq!(spelling[0]["records"]["value"]["size"], 512);
}
