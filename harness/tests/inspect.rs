//! `kbench inspect` for machines and pipes: `--json` is complete with int64 fields as strings, a
//! missing path is a JSON document too, and a closed pipe ends the command without a panic.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn fixture(codec: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../engine/tests/fixtures/kafka-python-{codec}.log"))
}

#[test]
fn json_is_complete_with_int64_fields_as_strings() {
    let out = Command::new(env!("CARGO_BIN_EXE_kbench"))
        .args(["inspect", "--records", "--json"])
        .arg(fixture("none"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let batches = doc["batches"].as_array().unwrap();
    assert!(!batches.is_empty());
    for b in batches {
        for k in ["baseOffset", "lastOffset", "producerId", "baseTimestamp", "maxTimestamp"] {
            let v = b[k].as_str().unwrap_or_else(|| panic!("{k} is not a string: {b}"));
            v.parse::<i64>().unwrap_or_else(|e| panic!("{k} {v}: {e}"));
        }
        for r in b["records"].as_array().unwrap() {
            assert!(r["offset"].as_str().is_some() && r["timestamp"].as_str().is_some(), "{r}");
            let value = r["value"].as_str().unwrap_or_default();
            assert!(!value.contains("... ("), "never shortened: {value}");
        }
    }
    let longest = batches
        .iter()
        .flat_map(|b| b["records"].as_array().unwrap())
        .filter_map(|r| r["value"].as_str())
        .map(str::len)
        .max()
        .unwrap();
    assert!(longest > 64, "a value longer than the text output's 64 characters is there whole ({longest})");
}

#[test]
fn a_missing_path_with_json_is_a_json_error() {
    let out =
        Command::new(env!("CARGO_BIN_EXE_kbench")).args(["inspect", "--json", "/nonexistent/x.log"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(doc["file"], "/nonexistent/x.log");
    assert!(doc["error"].as_str().unwrap().contains("/nonexistent/x.log"), "{doc}");
}

#[test]
fn a_closed_pipe_ends_inspect_without_a_panic() {
    // A partition directory of 40 copies: far more output than a pipe holds.
    let dir = tempfile::tempdir().unwrap();
    for i in 0..40 {
        std::fs::copy(fixture("none"), dir.path().join(format!("{i:020}.log"))).unwrap();
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_kbench"))
        .args(["inspect", "--records", "--full"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 100];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap(); // then the pipe closes, like `| head`
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(status.code(), Some(101), "{stderr}");
}
