#!/usr/bin/env bash
# Runs the log's deterministic simulation test (engine/src/log/sim_tests.rs) over more seeds than CI:
#   scripts/simulate.sh --seeds N     seeds 1000..1000+N
#   scripts/simulate.sh --minutes M   as many seeds as M minutes allow
#   scripts/simulate.sh --seed S      one seed, printing what it ran
# A failing seed prints the one-line command that reproduces it.
set -euo pipefail
cd "$(dirname "$0")/.."
usage="usage: scripts/simulate.sh --seeds N | --minutes M | --seed S"
[ $# -eq 2 ] || { echo "$usage" >&2; exit 2; }
case "$2" in ''|*[!0-9]*) echo "simulate: $1 needs a whole number, got '$2'" >&2; exit 2 ;; esac
case "$1" in
  --seeds) export KBENCH_SIM_SEEDS="$2" ;;
  --minutes) export KBENCH_SIM_MINUTES="$2" ;;
  --seed) export KBENCH_SIM_SEED="$2" ;;
  *) echo "$usage" >&2; exit 2 ;;
esac
exec cargo test --locked --release -p kbench-engine --lib log::sim_tests::one_seed -- --ignored --nocapture
