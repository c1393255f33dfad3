#!/usr/bin/env bash
# The project's test command (README): unit, integration and doc tests, then the loom model checks.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --locked
