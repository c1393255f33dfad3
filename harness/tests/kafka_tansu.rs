//! `engine.kind: kafka` against a real Kafka-compatible broker: tansu (records in memory), started by
//! scripts/broker.sh, which exports its address as `KBENCH_TEST_BROKER`. The same checks as
//! kafka_mock.rs runs on librdkafka's mock cluster: produce, a consumer group committing, the
//! ledger's exactly-once accounting, the topic created when missing and used as it is when it
//! exists, and a broker stopped under load. Ignored in a plain `cargo test` (no broker there);
//! scripts/test.sh runs them with `--ignored` after starting the broker.
#![cfg(feature = "kafka")]

mod kafka_support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kafka_support::*;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

/// The workload the mock cluster's first test runs, on `bootstrap`'s `topic`.
fn small_workload(bootstrap: &str, topic: &str) -> String {
    format!(
        "name: kafka-real\nengine: {{ kind: kafka, bootstrap.servers: '{bootstrap}' }}\n\
         topic: {{ name: {topic}, partitions: 3 }}\n\
         producer: {{ threads: 2, acks: all, linger.ms: 2, compression.type: lz4 }}\n\
         records: {{ duration: 2s, warmup: 300ms, rate: 3000, key: {{ distribution: uniform, cardinality: 100 }} }}\n\
         consumers: {{ members: 2, commit: after-processing, session.timeout.ms: 6000 }}\n"
    )
}

/// The topic's partition count on `bootstrap`, as a client other than kbench sees it.
fn partitions(bootstrap: &str, topic: &str) -> Option<usize> {
    let c: BaseConsumer = ClientConfig::new().set("bootstrap.servers", bootstrap).create().unwrap();
    let m = c.fetch_metadata(None, Duration::from_secs(10)).unwrap();
    m.topics().iter().find(|t| t.name() == topic && t.error().is_none()).map(|t| t.partitions().len())
}

#[test]
#[ignore = "needs the local brokers: scripts/broker.sh start, then --ignored (scripts/test.sh does)"]
fn a_missing_topic_is_created_and_a_group_reads_every_record_once() {
    let bootstrap = broker("KBENCH_TEST_BROKER");
    let topic = fresh_topic("created");
    assert_eq!(partitions(&bootstrap, &topic), None, "fresh topic");
    let dir = tempfile::tempdir().unwrap();
    let run = run(dir.path(), &small_workload(&bootstrap, &topic));
    let s = assert_clean_case(&run);
    // 2 s at 3000/s, acknowledged by the broker.
    let records = s["records"].as_u64().unwrap();
    assert!((5000..=6500).contains(&records), "records {records}: {s}");
    assert!(s["consumers"]["acknowledged"].as_u64().unwrap() >= records, "{s}");
    assert_eq!(s["kafka"]["bootstrap_servers"], bootstrap.as_str());
    assert_eq!(partitions(&bootstrap, &topic), Some(3), "kbench created the topic with topic.partitions");
}

#[test]
#[ignore = "needs the local brokers: scripts/broker.sh start, then --ignored (scripts/test.sh does)"]
fn an_existing_topic_is_used_as_it_is_and_each_case_starts_at_the_log_end() {
    let bootstrap = broker("KBENCH_TEST_BROKER");
    let topic = fresh_topic("existing");
    let dir = tempfile::tempdir().unwrap();
    let workload = |partitions: u32, extra: &str| {
        format!(
            "name: kafka-existing\nengine: {{ kind: kafka, bootstrap.servers: '{bootstrap}' }}\n\
             topic: {{ name: {topic}, partitions: {partitions}{extra} }}\nproducer: {{ linger.ms: 1 }}\n\
             records: {{ count: 1000, warmup: 200ms, rate: 1000, key: {{ distribution: uniform, cardinality: 100 }} }}\n\
             consumers: {{ members: 1 }}\nrepeat: 2\n"
        )
    };
    // The first case creates the topic, the second finds it with 1000+ records in it: its group
    // starts at the log end, so neither case counts the other's records (processed, which counts
    // only records of the case's own ledger, stays within what the case had acknowledged). Not
    // asserted here: duplicates — one CI run on a loaded host saw tansu deliver one record twice
    // in one of these cases (at-least-once allows it; docs/KAFKA.md).
    let first = run(dir.path(), &workload(2, ""));
    for case in first["cases"].as_array().unwrap() {
        let c = &case["summary"]["consumers"];
        assert_eq!(case["status"], "ok", "{case}");
        let acknowledged = c["acknowledged"].as_u64().unwrap();
        assert!(acknowledged >= 1000, "{c}");
        assert!(c["processed"].as_u64().unwrap() <= acknowledged + c["duplicated"].as_u64().unwrap(), "{c}");
        assert_eq!(c["lost"], 0, "{c}");
    }
    // Another partition count on the existing topic: refused, naming the key.
    let out = try_run(dir.path(), "bad-partitions", &workload(3, ""), &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    let case_error = read_run(&dir.path().join("bad-partitions"))["cases"][0]["error"].to_string();
    assert!(case_error.contains("topic.partitions") && case_error.contains("2 partitions"), "{case_error}");
    // A topic config on an existing topic: refused (kbench sets configs only on topics it creates).
    let out = try_run(dir.path(), "bad-config", &workload(2, ", segment.bytes: 1048576"), &[]);
    assert!(!out.status.success());
    let case_error = read_run(&dir.path().join("bad-config"))["cases"][0]["error"].to_string();
    assert!(case_error.contains("topic.segment.bytes") && case_error.contains("exists"), "{case_error}");
}

#[test]
#[ignore = "needs the local brokers: scripts/broker.sh start, then --ignored (scripts/test.sh does)"]
fn a_missing_topic_is_created_with_the_workloads_topic_configs() {
    let bootstrap = broker("KBENCH_TEST_BROKER");
    let topic = fresh_topic("configs");
    let dir = tempfile::tempdir().unwrap();
    let run = run(
        dir.path(),
        &format!(
            "name: kafka-configs\nengine: {{ kind: kafka, bootstrap.servers: '{bootstrap}' }}\n\
             topic: {{ name: {topic}, partitions: 2, segment.bytes: 1048576, retention.ms: 3600000 }}\n\
             records: {{ count: 500, warmup: 0s, rate: 1000 }}\n"
        ),
    );
    assert_clean_case(&run);
    assert_eq!(partitions(&bootstrap, &topic), Some(2));
}

/// A tansu broker of this test's own on a free port (the shared one must keep running).
struct OwnBroker {
    child: Child,
    address: String,
}

impl OwnBroker {
    fn start() -> OwnBroker {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(broker("KBENCH_TANSU"))
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Owned at once: dropped (killed and waited for) on every path, panics included.
        let own = OwnBroker { child, address: format!("127.0.0.1:{port}") };
        for _ in 0..100 {
            if std::net::TcpStream::connect(&own.address).is_ok() {
                return own;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("tansu did not listen on {}", own.address);
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
#[ignore = "needs the local brokers: scripts/broker.sh start, then --ignored (scripts/test.sh does)"]
fn a_broker_stopped_under_load_times_records_out_and_is_reported() {
    let mut own = OwnBroker::start();
    let topic = fresh_topic("stopped");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("w.yaml");
    std::fs::write(
        &file,
        format!(
            "name: kafka-stopped\nengine: {{ kind: kafka, bootstrap.servers: '{}' }}\n\
             topic: {{ name: {topic}, partitions: 2 }}\nproducer: {{ linger.ms: 2, delivery.timeout.ms: 1000 }}\n\
             records: {{ duration: 4s, warmup: 300ms, rate: 2000, max_error_ratio: 1 }}\n",
            own.address
        ),
    )
    .unwrap();
    let kbench = Command::new(env!("CARGO_BIN_EXE_kbench"))
        .args(["run", "--quiet", "--out"])
        .arg(dir.path().join("run"))
        .arg(&file)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Stop the broker once measured records have reached it (its log end passed the warmup's 600
    // records by 1,400 more, 0.7 s of the measured phase), not at a guessed time.
    let probe: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &own.address).create().unwrap();
    let mut reached = false;
    for _ in 0..300 {
        let ends = (0..2).filter_map(|p| probe.fetch_watermarks(&topic, p, Duration::from_secs(1)).ok());
        if ends.map(|(_, high)| high).sum::<i64>() > 2000 {
            reached = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(probe);
    own.child.kill().unwrap();
    own.child.wait().unwrap();
    let out = kbench.wait_with_output().unwrap();
    assert!(reached, "no records reached the broker: {}", String::from_utf8_lossy(&out.stderr));
    let s = &read_run(&dir.path().join("run"))["cases"][0]["summary"];
    let k = &s["kafka"];
    assert!(s["records"].as_u64().unwrap() > 0, "records before the stop: {s}");
    assert!(k["delivery_errors"]["MessageTimedOut"].as_u64().unwrap_or(0) > 0, "broker gone: {k}");
    assert!(sum(&k["client_errors"]) > 0, "the client saw the broker go: {k}");
    assert_eq!(s["errors"].as_u64().unwrap(), sum(&k["send_errors"]) + sum(&k["delivery_errors"]), "{s}");
}
