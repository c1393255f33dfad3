//! Without `--features kafka`, an `engine.kind: kafka` workload is refused before anything runs,
//! with the way to build it.
#![cfg(not(feature = "kafka"))]

use std::process::Command;

#[test]
fn a_kafka_workload_names_the_missing_feature() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("w.yaml");
    std::fs::write(&file, "name: k\nengine: { kind: kafka, bootstrap.servers: 'mock:3' }\nrecords: { duration: 1s }\n")
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kbench"))
        .args(["run", "--quiet", "--out"])
        .arg(dir.path().join("run"))
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("built without the `kafka` feature: cargo build --features kafka"), "{err}");
    assert!(!dir.path().join("run").exists(), "nothing ran");
}

#[test]
fn validate_refuses_a_kafka_workload_the_build_cannot_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("w.yaml");
    std::fs::write(&file, "name: k\nengine: { kind: kafka, bootstrap.servers: 'mock:3' }\nrecords: { duration: 1s }\n")
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kbench")).arg("validate").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("engine.kind") && err.contains("cargo build --features kafka"), "{err}");
}
