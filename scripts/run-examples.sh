#!/usr/bin/env bash
# Runs every example of the seed README, each with a time limit, and fails if any fails.
# Usage: scripts/run-examples.sh   (EXAMPLE_TIMEOUT_S=120 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
limit="${EXAMPLE_TIMEOUT_S:-120}"
cargo build --quiet --examples
for example in basic_cluster kv_operations multi_node_cluster; do
    echo "Running $example..."
    if ! timeout --kill-after=5 "$limit" "target/debug/examples/$example"; then
        echo "FAILED: $example (exit code $?, time limit ${limit}s)" >&2
        exit 1
    fi
done
echo "All examples passed."
