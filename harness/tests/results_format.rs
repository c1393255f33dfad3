//! The run directory against docs/RESULTS-FORMAT.md, on a real run: every field of run.json that
//! the doc's tables list (and no other), the columns and rows of intervals.csv, the tags of
//! latency.hlog and the rows of end_to_end.hgrm, each against the summary they must agree with.
//! The field lists live here once; one test holds the doc's tables to them and another holds a
//! real run.json to them, so either drifting fails. The files are also read back by HdrHistogram's
//! own tools, Java's and Python's (`hdrhistograms_own_tools_read_the_files_back`, run by
//! scripts/test.sh).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

mod run_support;

/// Every object of run.json and its fields, as docs/RESULTS-FORMAT.md's tables list them (a table
/// whose first header cell is `<object> field`).
const FIELDS: &[(&str, &[&str])] = &[
    (
        "run.json",
        &[
            "schema_version",
            "kbench_version",
            "name",
            "description",
            "workload_file",
            "overrides",
            "complete",
            "workload",
            "environment",
            "references",
            "cases",
        ],
    ),
    (
        "environment",
        &[
            "git_commit",
            "git_dirty",
            "rustc",
            "profile",
            "kernel",
            "hostname",
            "cpu_model",
            "cpu_count",
            "memory_bytes",
            "io_backend",
            "io_backend_effective",
            "io_uring_available",
            "data_dir",
            "filesystem",
            "started_at",
            "ended_at",
        ],
    ),
    (
        "references",
        &[
            "disk_write_bytes_per_sec",
            "disk_fsyncs_per_sec",
            "disk_read_bytes_per_sec",
            "disk_source",
            "codec_compress_bytes_per_sec",
        ],
    ),
    ("case", &["id", "index", "repeat", "params", "status", "error", "started_at", "ended_at", "files", "summary"]),
    ("files", &["hlog", "intervals_csv", "hgrm"]),
    (
        "summary",
        &[
            "records",
            "bytes",
            "duration_sec",
            "records_per_sec",
            "bytes_per_sec",
            "target_rate",
            "achieved_rate",
            "saturated",
            "errors",
            "end_to_end_ns",
            "end_to_end_actual_ns",
            "send_ns",
            "queue_ns",
            "compress_ns",
            "write_ns",
            "sync_ns",
            "batch_records",
            "batch_bytes",
            "batch_compression_ratio_permille",
            "batch_fill",
            "compression_ratio",
            "cpu_seconds",
            "cpu_utilization",
            "harness",
            "threads",
            "process",
            "consumers",
            "replication",
            "kafka",
        ],
    ),
    ("latency", &["count", "min", "max", "mean", "stddev", "p50", "p90", "p99", "p999", "p9999"]),
    ("harness", &["ns_per_record", "record_time_ns", "percent", "flagged"]),
    ("threads", &["harness", "sender", "io", "compression", "replication", "consumers", "librdkafka", "other"]),
    ("role", &["threads", "cpu_seconds"]),
    ("process", &["rss_bytes", "open_fds", "fd_limit", "open_sec", "close_sec"]),
    (
        "consumers",
        &[
            "processed",
            "processed_per_sec",
            "end_to_end_ns",
            "acknowledged",
            "lost",
            "duplicated",
            "out_of_order",
            "rebalances",
            "max_rebalance_pause_ms",
        ],
    ),
    (
        "replication",
        &[
            "replication_factor",
            "min_insync_replicas",
            "acknowledged",
            "lost_acknowledged",
            "elections",
            "converged",
            "faults",
            "fault_losses",
        ],
    ),
    ("fault_losses", &["fault", "acknowledged_before", "lost_acknowledged"]),
    (
        "kafka",
        &[
            "client",
            "bootstrap_servers",
            "send_errors",
            "delivery_errors",
            "client_errors",
            "consumer_errors",
            "request_retries",
            "request_errors",
            "request_timeouts",
            "faults_applied",
        ],
    ),
];

/// Fields the doc marks optional, and whether the run below has them (`None`: it depends on the
/// machine: results/disk-baseline.json may or may not give a read figure).
const OPTIONAL: &[(&str, &str, Option<bool>)] = &[
    ("references", "disk_read_bytes_per_sec", None),
    ("summary", "consumers", Some(true)),
    ("summary", "replication", Some(true)),
    ("summary", "kafka", Some(false)),
    ("replication", "faults", Some(true)),
    ("replication", "fault_losses", Some(true)),
];

/// The summary field each latency.hlog tag adds up to: the summary's latency objects.
const TAGS: &[(&str, &str)] = &[
    ("e2e", "end_to_end_ns"),
    ("e2e_actual", "end_to_end_actual_ns"),
    ("send", "send_ns"),
    ("queue", "queue_ns"),
    ("compress", "compress_ns"),
    ("write", "write_ns"),
    ("sync", "sync_ns"),
    ("batch_records", "batch_records"),
    ("batch_bytes", "batch_bytes"),
    ("compression_ratio_permille", "batch_compression_ratio_permille"),
];

const RECORDS: u64 = 4000;

fn doc() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/RESULTS-FORMAT.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The backticked names in `text`.
fn backticked(text: &str) -> Vec<String> {
    text.split('`').skip(1).step_by(2).map(str::to_string).collect()
}

/// The doc's field tables: object -> the names in the first column of its rows.
fn doc_tables(doc: &str) -> BTreeMap<String, BTreeSet<String>> {
    let lines: Vec<&str> = doc.lines().collect();
    let mut tables = BTreeMap::new();
    let mut i = 0;
    while i + 1 < lines.len() {
        let header = lines[i].trim();
        let object = header.strip_prefix('|').and_then(|h| h.split('|').next()).map(str::trim);
        match object.and_then(|o| o.strip_suffix(" field")) {
            Some(object) if lines[i + 1].starts_with("|---") => {
                let fields: &mut BTreeSet<String> = tables.entry(object.to_string()).or_default();
                i += 2;
                while i < lines.len() && lines[i].starts_with('|') {
                    let first = lines[i].trim_start_matches('|').split('|').next().unwrap_or("");
                    let names = backticked(first);
                    assert!(!names.is_empty(), "a row of the `{object} field` table names no field: {}", lines[i]);
                    fields.extend(names);
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    tables
}

fn fields(object: &str) -> BTreeSet<String> {
    let (_, f) = FIELDS.iter().find(|(o, _)| *o == object).unwrap_or_else(|| panic!("no object {object}"));
    f.iter().map(|s| s.to_string()).collect()
}

/// The text of the doc's section `## heading`, up to the next heading.
fn section<'a>(doc: &'a str, heading: &str) -> &'a str {
    let start = doc.find(&format!("\n## {heading}\n")).unwrap_or_else(|| panic!("no section {heading}"));
    let rest = &doc[start + heading.len() + 5..];
    &rest[..rest.find("\n## ").unwrap_or(rest.len())]
}

#[test]
fn the_docs_tables_list_every_run_json_field_and_no_other() {
    let tables = doc_tables(&doc());
    let objects: BTreeSet<&str> = FIELDS.iter().map(|(o, _)| *o).collect();
    assert_eq!(tables.keys().map(String::as_str).collect::<BTreeSet<_>>(), objects, "the doc's field tables");
    for (object, documented) in &tables {
        let want = fields(object);
        let missing: Vec<_> = want.difference(documented).collect();
        let unknown: Vec<_> = documented.difference(&want).collect();
        assert!(
            missing.is_empty() && unknown.is_empty(),
            "`{object} field` table: not documented {missing:?}, documented but not written {unknown:?}"
        );
    }
    for (object, field, _) in OPTIONAL {
        assert!(fields(object).contains(*field), "{object}.{field}");
    }
}

/// Runs a small replicated case with consumers and every batch stage (pwrite, lz4, flush.messages),
/// bounded by a record count; returns the run directory.
fn run_case(dir: &Path) -> PathBuf {
    run_support::run_ok(
        dir,
        &format!(
            "name: results-format\nengine: {{ kind: embedded, io: pwrite }}\n\
             topic: {{ name: t, partitions: 2, replication.factor: 2, flush.messages: 50, \
                       faults: [{{ at: 200ms, action: slow, broker: 1, delay: 1ms, until: 400ms }}] }}\n\
             producer: {{ threads: 2, acks: all, linger.ms: 2, compression.type: lz4 }}\n\
             records: {{ count: {RECORDS}, warmup: 200ms, rate: 4000, \
                         key: {{ distribution: uniform, cardinality: 50 }}, value: {{ size: 200, payload: text }} }}\n\
             consumers: {{ members: 1, session.timeout.ms: 1000 }}\n"
        ),
    )
}

fn keys(v: &Value, what: &str) -> BTreeSet<String> {
    v.as_object().unwrap_or_else(|| panic!("{what} is not an object: {v}")).keys().cloned().collect()
}

/// `v`'s keys are exactly `object`'s documented fields, less the optional ones this run lacks.
fn assert_fields(v: &Value, object: &str) {
    let mut want = fields(object);
    let got = keys(v, object);
    for (o, f, present) in OPTIONAL {
        if *o == object && (*present == Some(false) || (present.is_none() && !got.contains(*f))) {
            want.remove(*f);
        }
    }
    assert_eq!(got, want, "{object}: the fields run.json has (left) and the documented ones (right)");
}

fn time(v: &Value) -> jiff::Timestamp {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not an RFC 3339 time: {v}"))
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn a_real_run_writes_what_the_doc_says() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = run_case(dir.path());
    let run: Value = serde_json::from_str(&read(&run_dir.join("run.json"))).unwrap();
    let doc = doc();

    // run.json, object by object.
    assert_fields(&run, "run.json");
    assert_fields(&run["environment"], "environment");
    assert_fields(&run["references"], "references");
    assert_eq!(run["schema_version"], 1);
    assert_eq!(run["complete"], true, "{}", run["cases"]);
    let case = &run["cases"][0];
    assert_eq!(run["cases"].as_array().unwrap().len(), 1);
    assert_fields(case, "case");
    assert_fields(&case["files"], "files");
    let s = &case["summary"];
    assert_fields(s, "summary");
    for (_, f) in TAGS {
        assert_fields(&s[*f], "latency");
    }
    assert_fields(&s["harness"], "harness");
    assert_fields(&s["threads"], "threads");
    for role in fields("threads") {
        assert_fields(&s["threads"][&role], "role");
    }
    assert_fields(&s["consumers"], "consumers");
    assert_fields(&s["consumers"]["end_to_end_ns"], "latency");
    assert_fields(&s["replication"], "replication");
    for loss in s["replication"]["fault_losses"].as_array().unwrap() {
        assert_fields(loss, "fault_losses");
    }
    assert_fields(&s["process"], "process");
    assert!(s["process"]["open_fds"].as_u64().unwrap() > 0 && s["process"]["rss_bytes"].as_u64().unwrap() > 0);
    assert_eq!(case["status"], "ok", "{case}");
    assert_eq!(case["error"], Value::Null);

    // The figures agree with each other as the doc says.
    let records = s["records"].as_u64().unwrap();
    assert_eq!(records + s["errors"].as_u64().unwrap(), RECORDS, "records.count, acknowledged or failed");
    let duration = num(&s["duration_sec"]);
    assert!((num(&s["records_per_sec"]) - records as f64 / duration).abs() < 1e-6 * num(&s["records_per_sec"]));
    assert!((num(&s["bytes_per_sec"]) - num(&s["bytes"]) / duration).abs() < 1e-6 * num(&s["bytes_per_sec"]));
    let cpu = num(&s["cpu_utilization"]);
    assert!((0.0..=1.0).contains(&cpu), "cpu_utilization is a fraction of the CPUs: {cpu}");
    let (started, ended) = (time(&case["started_at"]), time(&case["ended_at"]));
    let span = ended.duration_since(started).as_secs_f64();
    assert!((span - duration).abs() <= 0.002, "ended_at - started_at {span} s, duration_sec {duration}");
    assert!(time(&run["environment"]["started_at"]) <= started && ended <= time(&run["environment"]["ended_at"]));
    for (_, f) in TAGS {
        assert!(s[*f]["count"].as_u64().unwrap() > 0, "{f}: every stage occurs in this case: {s}");
    }
    assert!(!s["replication"]["faults"].as_array().unwrap().is_empty());

    // The case files are where `files` says.
    let files = &case["files"];
    let id = case["id"].as_str().unwrap();
    for (field, name) in [("hlog", "latency.hlog"), ("intervals_csv", "intervals.csv"), ("hgrm", "end_to_end.hgrm")] {
        assert_eq!(files[field].as_str().unwrap(), format!("cases/{id}/{name}"));
    }

    // intervals.csv: the documented columns, in order; rows adding up to the summary.
    let columns = backticked(section(&doc, "intervals.csv"))[0].clone();
    let csv = read(&run_dir.join(files["intervals_csv"].as_str().unwrap()));
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some(columns.as_str()), "intervals.csv header against the doc");
    let cols: Vec<&str> = columns.split(',').collect();
    let rows: Vec<BTreeMap<&str, &str>> = lines.map(|l| cols.iter().copied().zip(l.split(',')).collect()).collect();
    assert!(!rows.is_empty());
    let mut sum = 0;
    let mut last_end = 0.0;
    for row in &rows {
        assert_eq!(row.len(), cols.len(), "{row:?}");
        let end: f64 = row["elapsed_sec"].parse().unwrap();
        assert!(end > last_end, "elapsed_sec rises: {csv}");
        last_end = end;
        sum += row["records"].parse::<u64>().unwrap();
        assert!(row["e2e_max_ns"].parse::<u64>().unwrap() <= s["end_to_end_ns"]["max"].as_u64().unwrap());
        row["consumer_lag"].parse::<u64>().unwrap_or_else(|_| panic!("consumer_lag with consumers: {row:?}"));
    }
    assert_eq!(sum, records, "the rows' records add up to summary.records: {csv}");
    assert!((last_end - duration).abs() <= 0.0006, "with records.count the last row ends at duration_sec: {csv}");

    // latency.hlog: documented tags, each adding up to its summary field.
    let tags_text = section(&doc, "latency.hlog");
    let tags_text = &tags_text[tags_text.find("Tags:").unwrap()..tags_text.find("Read it").unwrap()];
    let documented: BTreeSet<String> = backticked(tags_text).into_iter().collect();
    let known: BTreeSet<String> = TAGS.iter().map(|(t, _)| t.to_string()).collect();
    assert_eq!(documented, known, "latency.hlog tags in the doc");
    let hlog = std::fs::read(run_dir.join(files["hlog"].as_str().unwrap())).unwrap();
    let sums = hlog_sums(&hlog);
    for (tag, field) in TAGS {
        let h = sums.get(*tag).unwrap_or_else(|| panic!("no {tag} interval in latency.hlog"));
        let want = &s[*field];
        assert_eq!(h.len(), want["count"].as_u64().unwrap(), "{tag}");
        assert_eq!(h.value_at_quantile(0.99), want["p99"].as_u64().unwrap(), "{tag}");
        assert_eq!(h.highest_equivalent(h.max()), want["max"].as_u64().unwrap(), "{tag}");
    }

    // end_to_end.hgrm: HdrHistogram's percentile distribution of the e2e histogram.
    let hgrm = read(&run_dir.join(files["hgrm"].as_str().unwrap()));
    check_hgrm(&hgrm, &s["end_to_end_ns"]);
}

/// Each tag's intervals summed, read with the hdrhistogram crate's interval-log reader.
fn hlog_sums(bytes: &[u8]) -> BTreeMap<String, hdrhistogram::Histogram<u64>> {
    use base64::Engine;
    use hdrhistogram::serialization::Deserializer;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    let mut de = Deserializer::new();
    let mut sums: BTreeMap<String, hdrhistogram::Histogram<u64>> = BTreeMap::new();
    for entry in IntervalLogIterator::new(bytes) {
        if let LogEntry::Interval(ih) = entry.expect("every latency.hlog line parses") {
            let tag = ih.tag().expect("every interval is tagged").as_str().to_string();
            let raw = base64::engine::general_purpose::STANDARD.decode(ih.encoded_histogram()).unwrap();
            let h: hdrhistogram::Histogram<u64> = de.deserialize(&mut &raw[..]).unwrap();
            match sums.get_mut(&tag) {
                Some(sum) => sum.add(&h).unwrap(),
                None => {
                    sums.insert(tag, h);
                }
            }
        }
    }
    sums
}

/// The .hgrm's header, rows and footer as docs/RESULTS-FORMAT.md describes them, against the
/// summary's latency object.
fn check_hgrm(hgrm: &str, e2e: &Value) {
    let mut lines = hgrm.lines();
    assert_eq!(
        lines.next().map(|l| l.split_whitespace().collect::<Vec<_>>()),
        Some(vec!["Value", "Percentile", "TotalCount", "1/(1-Percentile)"])
    );
    assert_eq!(lines.next(), Some(""), "a blank line after the header");
    let count = e2e["count"].as_u64().unwrap();
    let ms = |ns: &Value| format!("{:.3}", ns.as_u64().unwrap() as f64 / 1e6);
    let (mut rows, mut footer) = (Vec::new(), Vec::new());
    for line in lines {
        if line.starts_with("#[") {
            footer.push(line);
        } else {
            assert!(footer.is_empty(), "rows before the footer: {hgrm}");
            rows.push(line.split_whitespace().collect::<Vec<_>>());
        }
    }
    assert!(rows.len() > 10, "{hgrm}");
    let (mut last_p, mut last_total) = (-1.0, 0);
    for (i, row) in rows.iter().enumerate() {
        let last = i + 1 == rows.len();
        assert_eq!(row.len(), if last { 3 } else { 4 }, "row {}: {hgrm}", i + 1);
        let p: f64 = row[1].parse().unwrap();
        let total: u64 = row[2].parse().unwrap();
        assert!(p >= last_p && total >= last_total, "percentile and TotalCount (cumulative) rise: {hgrm}");
        if !last {
            let inverse: f64 = row[3].parse().unwrap();
            let want = 1.0 / (1.0 - p);
            assert!((inverse - want).abs() < 0.006 + 1e-6 * want, "1/(1-Percentile): {row:?}");
        }
        (last_p, last_total) = (p, total);
    }
    let final_row = rows.last().unwrap();
    assert_eq!(final_row[1], "1.000000000000");
    assert_eq!(final_row[2], count.to_string(), "the last row counts every value: {hgrm}");
    assert_eq!(final_row[0], ms(&e2e["max"]));
    // The 50% row: the median.
    let median = rows.iter().find(|r| r[1] == "0.500000000000").expect("a 50% row");
    assert_eq!(median[0], ms(&e2e["p50"]));
    assert_eq!(footer.len(), 3, "{hgrm}");
    assert!(footer[0].starts_with("#[Mean    = ") && footer[0].contains(", StdDeviation   = "), "{hgrm}");
    assert!(footer[0].contains(&format!("{:.3}", num(&e2e["mean"]) / 1e6)), "{hgrm}");
    assert_eq!(footer[1], format!("#[Max     = {:>12}, Total count    = {count:>12}]", ms(&e2e["max"])));
    assert!(footer[2].starts_with("#[Buckets = ") && footer[2].ends_with(", SubBuckets     =         2048]"), "{hgrm}");
}

/// The same files through HdrHistogram's own tools: Java's `HistogramLogProcessor` reads
/// latency.hlog and writes the `e2e` tag's percentile distribution, which must be end_to_end.hgrm
/// line for line; harness/tests/hdrh_check.py reads the log with PyPI's `hdrhistogram`
/// (`HistogramLogReader`) and checks every tag and the .hgrm's counts against it.
#[test]
#[ignore = "needs Java's HdrHistogram and PyPI's hdrhistogram: scripts/test.sh runs it with env $(scripts/hdrh.sh)"]
fn hdrhistograms_own_tools_read_the_files_back() {
    let needs =
        |var: &str| std::env::var(var).unwrap_or_else(|_| panic!("{var} is not set: run with env $(scripts/hdrh.sh)"));
    let (jar, python) = (needs("KBENCH_HDRH_JAR"), needs("KBENCH_HDRH_PYTHON"));
    let dir = tempfile::tempdir().unwrap();
    let run_dir = run_case(dir.path());
    let run: Value = serde_json::from_str(&read(&run_dir.join("run.json"))).unwrap();
    let files = &run["cases"][0]["files"];

    let processed = dir.path().join("processed");
    let out = Command::new("java")
        .args(["-cp", &jar, "org.HdrHistogram.HistogramLogProcessor", "-i"])
        .arg(run_dir.join(files["hlog"].as_str().unwrap()))
        .args(["-tag", "e2e", "-outputValueUnitRatio", "1e6", "-o"])
        .arg(&processed)
        .output()
        .expect("java runs");
    assert!(out.status.success(), "HistogramLogProcessor: {}", String::from_utf8_lossy(&out.stderr));
    let java = read(&processed.with_extension("hgrm"));
    // Its own two lines first: the time range it covered and the log's start.
    let java: Vec<&str> =
        java.lines().filter(|l| !l.starts_with("#[Overall") && !l.starts_with("#[StartTime")).collect();
    let ours = read(&run_dir.join(files["hgrm"].as_str().unwrap()));
    let ours: Vec<&str> = ours.lines().collect();
    assert!(java.len() > 20, "{java:?}");
    for (i, (j, o)) in java.iter().zip(&ours).enumerate() {
        assert_eq!(o, j, "end_to_end.hgrm line {} (right: Java's HistogramLogProcessor)", i + 1);
    }
    assert_eq!(ours.len(), java.len(), "end_to_end.hgrm lines, and Java's");

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hdrh_check.py");
    let out = Command::new(&python).arg(&script).arg(&run_dir).output().expect("the python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(".hgrm rows counted as HdrHistogram counts"), "{stdout}");
}
