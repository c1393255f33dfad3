//! What the kafka backend's integration tests share: running `kbench run`, reading run.json, and
//! the local brokers scripts/broker.sh starts (their addresses come in environment variables).
#![allow(dead_code)] // each test binary uses its own part

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The address scripts/broker.sh wrote into `var`. A test that was asked to run without it fails
/// loudly rather than passing.
pub fn broker(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: start the brokers with scripts/broker.sh start and export its env file")
    })
}

/// A file under `KBENCH_TEST_TLS_DIR` (scripts/broker.sh's certificates).
pub fn tls_file(name: &str) -> PathBuf {
    Path::new(&broker("KBENCH_TEST_TLS_DIR")).join(name)
}

/// A topic name no other test (nor an earlier run against the same broker) uses.
pub fn fresh_topic(stem: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("kbench-{stem}-{}-{nanos}", std::process::id())
}

/// `kbench run --out OUT ARGS...` with `env` added to its environment.
pub fn kbench_output(args: &[&str], out_dir: &Path, env: &[(&str, &str)], quiet: bool) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kbench"));
    cmd.arg("run");
    if quiet {
        cmd.arg("--quiet");
    }
    cmd.arg("--out").arg(out_dir).args(args).envs(env.iter().copied());
    cmd.output().unwrap()
}

/// `kbench run`, which must succeed; its run.json.
pub fn kbench(args: &[&str], out_dir: &Path) -> Value {
    let out = kbench_output(args, out_dir, &[], true);
    assert!(out.status.success(), "kbench run failed: {}", String::from_utf8_lossy(&out.stderr));
    read_run(out_dir)
}

pub fn read_run(out_dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(out_dir.join("run.json")).unwrap()).unwrap()
}

/// Writes `workload` to DIR/w.yaml and runs it into DIR/run.
pub fn run(dir: &Path, workload: &str) -> Value {
    let file = dir.join("w.yaml");
    std::fs::write(&file, workload).unwrap();
    kbench(&[file.to_str().unwrap()], &dir.join("run"))
}

/// Writes `workload` to DIR/NAME.yaml and runs it into DIR/NAME, success or not.
pub fn try_run(dir: &Path, name: &str, workload: &str, env: &[(&str, &str)]) -> Output {
    let file = dir.join(format!("{name}.yaml"));
    std::fs::write(&file, workload).unwrap();
    kbench_output(&[file.to_str().unwrap()], &dir.join(name), env, true)
}

pub fn sum(map: &Value) -> u64 {
    map.as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum()
}

/// The one case of a run: it ran `ok`, every record sent in the measured phase was acknowledged,
/// none failed, and (with consumers) the group saw each exactly once, in order.
pub fn assert_clean_case(run: &Value) -> &Value {
    assert_eq!(run["complete"], true, "{run}");
    let case = &run["cases"][0];
    assert_eq!(case["status"], "ok", "{case}");
    let s = &case["summary"];
    assert!(s["records"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(s["errors"], 0, "{s}");
    if let Some(c) = s.get("consumers").filter(|c| !c.is_null()) {
        assert!(c["processed"].as_u64().unwrap() >= s["records"].as_u64().unwrap(), "{c}");
        for field in ["lost", "duplicated", "out_of_order"] {
            assert_eq!(c[field], 0, "{field}: {c}");
        }
    }
    s
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() { stack.push(p) } else { out.push(p) }
        }
    }
    out
}

/// Fails when `secret` occurs in any file under `dir` or in `texts` (a run's terminal output).
pub fn assert_secret_absent(secret: &str, dir: &Path, texts: &[&[u8]]) {
    let files = files_under(dir);
    assert!(files.iter().any(|f| f.ends_with("run.json")), "no run.json under {}", dir.display());
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        assert!(!contains(&bytes, secret.as_bytes()), "the secret is in {}", f.display());
    }
    for t in texts {
        assert!(!contains(t, secret.as_bytes()), "the secret is in the terminal output");
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
