//! Build-time facts for run.json's `environment`: the compiler version (`rustc`), and the git
//! commit and dirty state of the source tree kbench was built from (`git_commit`, `git_dirty`),
//! rather than of whatever directory `kbench run` happens to be started in. Without git, or outside
//! a repository, both are "unknown".
use std::path::Path;
use std::process::Command;

fn output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = output(&rustc, &["--version"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=KBENCH_RUSTC_VERSION={version}");
    println!("cargo:rerun-if-changed=build.rs");

    let commit = output("git", &["rev-parse", "HEAD"]);
    let dirty = commit.as_ref().and_then(|_| output("git", &["status", "--porcelain"])).map(|s| !s.is_empty());
    println!("cargo:rustc-env=KBENCH_GIT_COMMIT={}", commit.as_deref().unwrap_or("unknown"));
    println!("cargo:rustc-env=KBENCH_GIT_DIRTY={}", dirty.map_or_else(|| "unknown".to_string(), |d| d.to_string()));

    // Rerun when HEAD moves (checkout, commit: HEAD and the branch's ref, loose or packed), when the
    // index changes (add, commit), and when the sources built change (edits make the tree dirty).
    // In a worktree, HEAD and the index are in its own git dir, the refs in the common one.
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let resolve = |p: String| {
        let p = Path::new(&p).to_path_buf();
        if p.is_absolute() { p } else { manifest.join(p) }
    };
    if let Some(git_dir) = output("git", &["rev-parse", "--git-dir"]).map(resolve) {
        println!("cargo:rerun-if-changed={}", git_dir.join("HEAD").display());
        println!("cargo:rerun-if-changed={}", git_dir.join("index").display());
        let common = output("git", &["rev-parse", "--git-common-dir"]).map(resolve).unwrap_or(git_dir);
        println!("cargo:rerun-if-changed={}", common.join("packed-refs").display());
        if let Some(head_ref) = output("git", &["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={}", common.join(head_ref).display());
        }
    }
    for p in ["src", "Cargo.toml", "../engine/src", "../engine/Cargo.toml", "../Cargo.toml", "../Cargo.lock"] {
        println!("cargo:rerun-if-changed={p}");
    }
}
