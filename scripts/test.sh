#!/usr/bin/env bash
# The test command of the README: every test of the workspace (one shared debug build), then
# every example of the seed README with a time limit.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo nextest run --workspace --all-targets --no-fail-fast
scripts/run-examples.sh
