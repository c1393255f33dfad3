//! Every case's summary says where its CPU went, by thread role: the harness's sending threads and
//! the engine's sender, I/O and compression threads (the compression pool sized by
//! `producer.compression.threads`, named `kbench-compr-N`). Work is bounded by a record count.

use std::process::Command;

#[test]
fn a_compressed_case_reports_cpu_per_engine_thread_role() {
    let dir = tempfile::tempdir().unwrap();
    let workload = dir.path().join("w.yaml");
    std::fs::write(
        &workload,
        "name: threads\nengine: { kind: embedded, io: discard }\ntopic: { name: t, partitions: 8 }\n\
         producer: { threads: 2, acks: \"1\", compression.type: lz4, compression.threads: 3, enable.idempotence: false }\n\
         records: { count: 200000, warmup: 0s, value: { size: 200, payload: json } }\n\
         sweep:\n  producer.compression.threads: [3, 0]\n",
    )
    .unwrap();
    let out_dir = dir.path().join("run");
    let out = Command::new(env!("CARGO_BIN_EXE_kbench"))
        .args(["run", "--quiet", "--out", out_dir.to_str().unwrap()])
        .arg(&workload)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let run: serde_json::Value = serde_json::from_slice(&std::fs::read(out_dir.join("run.json")).unwrap()).unwrap();
    let cases = run["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 2);
    for (case, pool) in cases.iter().zip([3, 0]) {
        let s = &case["summary"];
        let t = &s["threads"];
        assert_eq!(t["harness"]["threads"], 2, "{t}");
        assert!(t["harness"]["cpu_seconds"].as_f64().unwrap() > 0.0, "the senders measure their own CPU: {t}");
        assert_eq!(t["sender"]["threads"], 1, "{t}");
        assert_eq!(t["io"]["threads"], 1, "{t}");
        assert_eq!(t["compression"]["threads"], pool, "compression.threads {pool}: {t}");
        assert_eq!(t["replication"]["threads"], 0, "{t}");
        // The roles never claim more CPU than the process used (10 ms ticks per thread of slack).
        let roles: f64 = ["harness", "sender", "io", "compression", "replication", "consumers", "librdkafka", "other"]
            .iter()
            .map(|r| t[r]["cpu_seconds"].as_f64().unwrap())
            .sum();
        let process = s["cpu_seconds"].as_f64().unwrap();
        assert!(roles <= process + 0.01 * 12.0, "roles {roles} s against the process's {process} s: {t}");
    }
    let report = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(report.contains("## CPU by thread") && report.contains("compression (cores)"), "{report}");
}
