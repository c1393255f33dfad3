#!/usr/bin/env bash
# The project's test command (README): unit, property, stress, crash-recovery and fault tests,
# then a smoke run of the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --locked
# The main job end to end, in seconds: workload -> engine -> results -> report.
smoke_out=$(mktemp -d)
trap 'rm -rf "$smoke_out"' EXIT
cargo run --locked --release -q -p kbench -- run workloads/smoke.yaml --out "$smoke_out/run" --quiet
for f in run.json report.md report.html; do
  test -s "$smoke_out/run/$f" || { echo "smoke run wrote no $f" >&2; exit 1; }
done
echo "smoke: run directory complete ($(ls "$smoke_out/run/cases" | wc -l) cases)"
