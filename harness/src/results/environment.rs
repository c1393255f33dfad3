//! Facts about the machine and the build, for run.json's `environment`.

use std::path::Path;
use std::process::Command;

use super::schema::Environment;

fn run(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

/// The filesystem type of the mount holding `path` (longest matching mount point).
fn filesystem(path: &Path) -> Option<String> {
    let abs = std::fs::canonicalize(path).ok()?;
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, mount, fs) = (f.next()?, f.next()?, f.next()?);
            abs.starts_with(mount).then(|| (mount.len(), fs.to_string()))
        })
        .max()
        .map(|(_, fs)| fs)
}

/// The commit kbench was built from (harness/build.rs), when git knew it.
fn build_git_commit() -> Option<String> {
    Some(env!("KBENCH_GIT_COMMIT")).filter(|c| *c != "unknown").map(str::to_string)
}

/// Whether the tree kbench was built from had uncommitted changes, when git knew it.
fn build_git_dirty() -> Option<bool> {
    env!("KBENCH_GIT_DIRTY").parse().ok()
}

/// Captures the environment of a run starting now.
pub fn capture_environment(
    io_backend: &str,
    io_backend_effective: &str,
    io_uring_available: bool,
    data_dir: &Path,
) -> Environment {
    Environment {
        git_commit: build_git_commit(),
        git_dirty: build_git_dirty(),
        rustc: env!("KBENCH_RUSTC_VERSION").to_string(),
        profile: if cfg!(debug_assertions) { "debug".into() } else { "release".into() },
        kernel: run("uname", &["-sr"]).unwrap_or_default(),
        hostname: run("hostname", &[]).unwrap_or_default(),
        cpu_model: cpu_model(),
        cpu_count: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_bytes: memory_bytes(),
        io_backend: io_backend.to_string(),
        io_backend_effective: io_backend_effective.to_string(),
        io_uring_available,
        data_dir: data_dir.display().to_string(),
        filesystem: filesystem(data_dir),
        started_at: super::rfc3339(std::time::SystemTime::now()),
        ended_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_facts_are_those_of_the_build_not_of_the_working_directory() {
        let git = |args: &[&str]| {
            let out = Command::new("git").args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().ok()?;
            out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        };
        // Built from this checkout: the same commit as git reports now (tests are built from HEAD).
        assert_eq!(build_git_commit(), git(&["rev-parse", "HEAD"]));
        assert_eq!(build_git_commit().is_some(), build_git_dirty().is_some());
        let captured = capture_environment("pwrite", "pwrite", false, Path::new("."));
        assert_eq!(captured.git_commit, build_git_commit());
        assert_eq!(captured.git_dirty, build_git_dirty());
    }
}
