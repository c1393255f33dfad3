//! Shared by the tests that run the `kbench` binary on a workload of their own.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Writes `yaml` to `dir/w.yaml`, runs `kbench run --quiet --out dir/run` on it, asserts that the run
/// succeeded (its stderr otherwise) and returns the run directory.
pub fn run_ok(dir: &Path, yaml: &str) -> PathBuf {
    let workload = dir.join("w.yaml");
    std::fs::write(&workload, yaml).unwrap();
    let out_dir = dir.join("run");
    let out = Command::new(env!("CARGO_BIN_EXE_kbench"))
        .args(["run", "--quiet", "--out"])
        .arg(&out_dir)
        .arg(&workload)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out_dir
}
