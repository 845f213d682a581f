#!/usr/bin/env bash
# Runs aspen-bench's standard suite (issue #8's shapes) against a fresh 3-node release cluster on
# loopback and writes bench/results/<date>.json. bench/README.md explains every figure.
#
# Usage: scripts/bench.sh
#   BENCH_TOTAL=20000     operations per test (the issue's shape)
#   BENCH_TMPDIR=/tmp     where the cluster's temp dir goes (same file system as the floor)
#   BENCH_KEEP=1          keep the temp dir (node logs, data dirs, raw JSON lines)
#   BENCH_QUICK=1         only sequential puts, 64-client puts and linearizable gets, and no
#                         file in bench/results (a quick loop while working on the fast path)
#
# The cluster: 3 aspen-node processes on 127.0.0.1 with free ports, heartbeat 100 ms, election
# timeout 1000-2000 ms (the issue's failover setting), data dirs in the temp dir. Nodes are
# stopped by pid on exit (SIGTERM, then SIGKILL after 10 s), also on an error or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
total="${BENCH_TOTAL:-20000}"
bin="${CARGO_TARGET_DIR:-$repo/target}/release"
bench_timeout_s=900

echo "Building release binaries..."
cargo build --release --quiet -p aspen -p aspen-bench --bins

dir=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/aspen-bench.XXXXXX")
raw="$dir/results.jsonl"
floor="$dir/floor.jsonl"

cleanup() {
    local status=$?
    local pid_file pid
    for pid_file in "$dir"/node-*.pid; do
        [ -e "$pid_file" ] || continue
        pid=$(cat "$pid_file")
        kill -TERM "$pid" 2>/dev/null || continue
        # Gone, or a zombie (exited; this shell reaps it, or init does for a restarted node).
        for _ in $(seq 100); do
            [ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" = "" ] && break
            [ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" = Z ] && break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    done
    if [ "${BENCH_KEEP:-0}" = 1 ] || [ "$status" != 0 ]; then
        echo "Cluster dir kept: $dir"
    else
        rm -rf "$dir"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A TCP and UDP port nobody listens on now and that this script has not handed out yet.
used_ports=" "
free_port() {
    local port
    for _ in $(seq 200); do
        port=$((20000 + RANDOM % 40000))
        case "$used_ports" in *" $port "*) continue ;; esac
        if ! ss -Htuan | awk '{print $5}' | grep -q ":$port\$"; then
            used_ports+="$port "
            echo "$port"
            return 0
        fi
    done
    echo "no free port found" >&2
    return 1
}

aspen() { timeout 60 "$bin/aspen" "$@"; }

# Polls "$@" every 0.1 s, at most $1 times; fails naming what it waited for ($2).
wait_for() {
    local tries=$1 what=$2
    shift 2
    for _ in $(seq "$tries"); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    echo "timed out waiting for $what" >&2
    return 1
}

echo "Starting 3 nodes in $dir..."
for n in 1 2 3; do
    http=$(free_port)
    iroh=$(free_port)
    "$bin/aspen-node" --node-id "$n" --data-dir "$dir/node-$n" \
        --http-addr "127.0.0.1:$http" --iroh-port "$iroh" --cookie aspen-bench \
        --heartbeat-interval-ms 100 --election-timeout-min-ms 1000 \
        --election-timeout-max-ms 2000 --disable-gossip --disable-mdns \
        </dev/null >>"$dir/node-$n.log" 2>&1 &
    echo $! >"$dir/node-$n.pid"
    disown "$!" # stopped by pid in cleanup; no job notices from bash
    echo "http://127.0.0.1:$http" >"$dir/node-$n.url"
done
for n in 1 2 3; do
    wait_for 300 "node $n to answer /health" aspen --node "$(cat "$dir/node-$n.url")" node health
done

echo "Forming the cluster..."
for a in 1 2 3; do for b in 1 2 3; do
    [ "$a" = "$b" ] || aspen --node "$(cat "$dir/node-$a.url")" node add-peer "$b" \
        "$(aspen --node "$(cat "$dir/node-$b.url")" node addr)" >/dev/null
done; done
export ASPEN_NODE
ASPEN_NODE=$(cat "$dir/node-1.url")
aspen cluster init >/dev/null
aspen cluster add-learner 2 >/dev/null
aspen cluster add-learner 3 >/dev/null
aspen cluster change-membership 1 2 3 >/dev/null
leader_of() {
    aspen --node "$(cat "$dir/node-$1.url")" --json cluster status |
        grep -o '"leader":[0-9]*' | cut -d: -f2
}
leaders_agree() {
    local one
    one=$(leader_of 1) && [ -n "$one" ] && [ "$(leader_of 2)" = "$one" ] &&
        [ "$(leader_of 3)" = "$one" ]
}
wait_for 300 "a leader all three nodes name" leaders_agree
leader=$(leader_of 1)
leader_url=$(cat "$dir/node-$leader.url")
echo "Leader: node $leader ($leader_url)"

bench() {
    echo
    echo "== aspen-bench $*"
    timeout --kill-after=10 "$bench_timeout_s" "$bin/aspen-bench" "$@" --json-out "$raw"
}
shape=(--cluster-dir "$dir" --key-size 8 --val-size 256 --total "$total" --floor "$floor")

if [ "${BENCH_QUICK:-0}" != 1 ]; then bench idle --cluster-dir "$dir"; fi
echo
echo "== aspen-bench floor"
timeout "$bench_timeout_s" "$bin/aspen-bench" floor --dir "$dir" --json-out "$floor"
cat "$floor" >>"$raw"
bench put "${shape[@]}" --endpoints "$leader_url" --clients 1 --conns 1
if [ "${BENCH_QUICK:-0}" = 1 ]; then
    bench put "${shape[@]}" --endpoints "$leader_url" --clients 64 --conns 8
    bench get "${shape[@]}" --endpoints "$leader_url" --clients 64 --conns 8 \
        --consistency linearizable
    exit 0
fi
bench put "${shape[@]}" --endpoints "$leader_url" --clients 64 --conns 8
bench put "${shape[@]}" --endpoints "$leader_url" --clients 64 --conns 64
bench get "${shape[@]}" --endpoints "$leader_url" --clients 64 --conns 8 --consistency linearizable
bench get "${shape[@]}" --endpoints "$leader_url" --clients 64 --conns 64 --consistency linearizable
# No --endpoints: the connections spread over all three nodes (the cluster dir's), each
# answering serializable reads from its own state.
bench get "${shape[@]}" --clients 64 --conns 8 --consistency serializable
bench mixed "${shape[@]}" --endpoints "$leader_url" --clients 64 --conns 64
# Writers spread over all three nodes; --total only bounds them (the test stops on its own).
bench failover --cluster-dir "$dir" --key-size 8 --val-size 256 --total 1000000 \
    --floor "$floor" --clients 8

mkdir -p bench/results
out="bench/results/$(date -u +%Y-%m-%dT%H-%M-%SZ).json"
{
    echo "{"
    echo "  \"date\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\","
    echo "  \"commit\": \"$(git rev-parse --short HEAD 2>/dev/null || echo unknown)\","
    echo "  \"machine\": {\"cpus\": $(nproc), \"cpu\": \"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)\", \"kernel\": \"$(uname -r)\"},"
    echo "  \"cluster\": {\"nodes\": 3, \"heartbeat_interval_ms\": 100, \"election_timeout_ms\": [1000, 2000], \"transport\": \"loopback\"},"
    echo "  \"tests\": ["
    sed -e 's/^/    /' -e '$!s/$/,/' "$raw"
    echo "  ]"
    echo "}"
} >"$out"
echo
echo "Wrote $out"
