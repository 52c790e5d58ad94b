#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Measures server CPU time per request of benchmarks/canned_server (the reactor alone) under wrk,
# pipelined x16 and plain keep-alive, optionally against a bare C liburing loop (BARE=1).
#
# Usage: benchmarks/reactor_canned.sh            (from the repository root)
#   DURATION=10   seconds per wrk run          ROUNDS=5      rounds (each runs both scenarios)
#   CONNECTIONS=64                              PORT=8081
#   BUILD_DIR=build                             SERVER_CPU=0  CLIENT_CPU=1
#   BARE=1        also measure a bare C liburing loop (benchmarks/peers/bare_loop.c)
# The server is pinned to SERVER_CPU and `wrk -t1` to CLIENT_CPU. CPU per request is the
# server's utime+stime (from /proc/PID/stat) over a run divided by the requests wrk completed.
set -euo pipefail

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-5}
CONNECTIONS=${CONNECTIONS:-64}
PORT=${PORT:-8081}
BUILD_DIR=${BUILD_DIR:-build}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
BARE=${BARE:-0}

cd "$(dirname "$0")/.."
for tool in wrk taskset getconf awk; do
    command -v "$tool" >/dev/null || { echo "reactor_canned.sh: $tool is required" >&2; exit 2; }
done
CLK_TCK=$(getconf CLK_TCK)
WORK=$(mktemp -d /tmp/reactor_canned.XXXXXX)

# shellcheck source=benchmarks/lib.sh
source benchmarks/lib.sh

install_cleanup

# --- build -----------------------------------------------------------------------------------
echo "== building canned_server in $BUILD_DIR"
if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
    timeout 300 meson setup "$BUILD_DIR" >"$WORK/setup.log" 2>&1 ||
        { cat "$WORK/setup.log" >&2; exit 1; }
fi
timeout 600 ninja -C "$BUILD_DIR" benchmarks/canned_server >"$WORK/build.log" 2>&1 ||
    { cat "$WORK/build.log" >&2; exit 1; }
SERVER_BIN="$BUILD_DIR/benchmarks/canned_server"

if [[ "$BARE" == 1 ]]; then
    echo "== building the bare liburing loop"
    build_bare_loop "$WORK/bare"
fi

# --- helpers ---------------------------------------------------------------------------------
start_server() { # name, port, command...
    local name=$1 port=$2 pid
    shift 2
    taskset -c "$SERVER_CPU" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    pid=$!
    SERVER_PID[$name]=$pid
    SERVER_PORT[$name]=$port
    if ! wait_for_line "$WORK/$name.out" listening "$pid" 100; then
        echo "reactor_canned.sh: $name did not start" >&2
        cat "$WORK/$name.err" >&2
        exit 1
    fi
    echo "== $name: pid $pid on CPU $SERVER_CPU, port $port"
    # Warm-up (not reported): connections, buffer ring, page faults.
    run_wrk 1 -s benchmarks/pipeline.lua "http://127.0.0.1:$port/" >/dev/null 2>&1 || true
}

# One wrk run against server `name`; appends "req/s us/request" to $WORK/<name>-<scenario>.
measure() { # name, scenario, wrk args...
    local name=$1 scenario=$2
    shift 2
    wrk_measure "${SERVER_PID[$name]}" "$name" "$WORK/$name.err" "$WORK/wrk.out" "$DURATION" \
        "$@" "http://127.0.0.1:${SERVER_PORT[$name]}/"
    if grep -qE 'Socket errors|Non-2xx' "$WORK/wrk.out"; then
        grep -E 'Socket errors|Non-2xx' "$WORK/wrk.out" | sed 's/^/    wrk: /'
    fi
    measure_line "$name-$scenario" 22
    measure_record "$WORK/$name-$scenario"
}

summarize() { # label
    local label=$1
    printf '  %-22s median %9.0f req/s  %6.3f us/request\n' "$label" \
        "$(cut -d' ' -f1 "$WORK/$label" | median)" "$(cut -d' ' -f2 "$WORK/$label" | median)"
}

# --- run -------------------------------------------------------------------------------------
SERVERS=(canned)
echo "== machine: nproc $(nproc), kernel $(uname -r), CLK_TCK $CLK_TCK," \
    "load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== wrk -t1 -c$CONNECTIONS on CPU $CLIENT_CPU, ${DURATION}s per run, $ROUNDS rounds"
start_server canned "$PORT" "$SERVER_BIN" --port "$PORT"
if [[ "$BARE" == 1 ]]; then
    SERVERS+=(bare)
    start_server bare "$((PORT + 1))" "$WORK/bare" "$((PORT + 1))"
fi
# Rounds interleave the servers and scenarios so that drifting host load hits all alike.
for round in $(seq "$ROUNDS"); do
    echo " round $round (load average $(cut -d' ' -f1 /proc/loadavg))"
    for name in "${SERVERS[@]}"; do
        measure "$name" pipelined-x16 -s benchmarks/pipeline.lua
    done
    for name in "${SERVERS[@]}"; do
        measure "$name" keepalive
    done
done
for name in "${SERVERS[@]}"; do
    stop_server "$name"
    sed 's/^/  /' "$WORK/$name.err"
done

echo "== medians over $ROUNDS rounds (target: canned pipelined-x16 <= 0.5 us/request);" \
    "load average now $(cut -d' ' -f1-3 /proc/loadavg)"
for name in "${SERVERS[@]}"; do
    summarize "$name-pipelined-x16"
done
for name in "${SERVERS[@]}"; do
    summarize "$name-keepalive"
done
