#!/usr/bin/env bash
# Fuzz a record-layer target with cargo-fuzz (libFuzzer): scripts/fuzz.sh [TARGET] [SECONDS]
# Targets: batch_decoder (default), codecs. Not part of CI. cargo-fuzz needs nightly features;
# RUSTC_BOOTSTRAP=1 enables them on the stable toolchain this machine has.
set -euo pipefail
cd "$(dirname "$0")/../engine/fuzz"
target=${1:-batch_decoder}
seconds=${2:-600}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" -- -max_total_time="$seconds"
