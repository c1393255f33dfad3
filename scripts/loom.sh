#!/usr/bin/env bash
# Model-checks the lock-free code with loom: every interleaving (up to the preemption bound) of the
# accumulator's claim / write / commit / seal / install / hand-over / drain, of the completion's
# callback stack, and of the batch free list's reference count (accumulator/pool.rs). Builds the
# engine with `--cfg loom` in its own target directory, so the normal build cache is untouched.
#
#   scripts/loom.sh                      # all loom models
#   LOOM_MAX_PREEMPTIONS=4 scripts/loom.sh   # a deeper search (slower)
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTFLAGS="${RUSTFLAGS:-} --cfg loom"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/loom"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}"
# Release: loom explores thousands of executions per model.
cargo test -p kbench-engine --lib --release --locked loom -- --test-threads=1 "$@"
