//! `engine.kind: kafka` with no broker at `bootstrap.servers`: the first case fails on librdkafka's
//! AllBrokersDown within a few reconnection attempts (not after the 30 s metadata timeout), the
//! later cases on the same cluster are recorded as not run with the reason, and cases on another
//! engine in the same sweep still run.
#![cfg(feature = "kafka")]

mod kafka_support;

use kafka_support::*;

#[test]
fn no_reachable_broker_fails_the_first_case_and_skips_the_rest_on_that_cluster() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 1: every connection is refused at once.
    let out = try_run(
        dir.path(),
        "nobroker",
        "name: no-broker\nengine: { kind: kafka, bootstrap.servers: '127.0.0.1:1' }\n\
         topic: { name: orders, partitions: 1 }\nproducer: { threads: 1 }\n\
         records: { count: 2000 }\n\
         sweep: { engine.kind: [kafka, embedded], producer.linger.ms: [1, 2] }\n",
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "a case failed: exit 1: {stderr}");
    let run = read_run(&dir.path().join("nobroker"));
    assert_eq!(run["complete"], false);
    let cases = run["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 4, "every case is recorded, run or not: {run}");
    let error = |i: usize| cases[i]["error"].as_str().unwrap_or_default().to_string();

    // The first kafka case: librdkafka's own words, after the grace, not the metadata timeout.
    assert_eq!(cases[0]["status"], "failed");
    let first = error(0);
    assert!(first.contains("no broker reachable at 127.0.0.1:1: librdkafka: AllBrokersDown"), "{first}");
    assert!(!first.contains("30s"), "failed on AllBrokersDown, not the metadata timeout: {first}");
    // The second kafka case did not wait its turn: not run, with the reason and the case that found it.
    assert_eq!(cases[1]["status"], "failed");
    let second = error(1);
    assert!(
        second.starts_with("not run: no broker reachable at 127.0.0.1:1")
            && second.contains(&format!("(found by case {})", cases[0]["id"].as_str().unwrap())),
        "{second}"
    );
    assert_eq!(cases[1]["summary"]["records"], 0);
    // The embedded cases of the same sweep ran.
    for case in &cases[2..] {
        assert_eq!(case["status"], "ok", "{case}");
        assert_eq!(case["params"]["engine.kind"], "embedded");
    }
    assert!(stderr.contains("not run: no broker reachable at 127.0.0.1:1"), "{stderr}");
}
