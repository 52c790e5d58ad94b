#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The benchmark suite (issue 7): ringwork's apps/techempower side by side with fasthttp and nginx
# on 127.0.0.1, same-run ratios, targets marked met or missed, plus the micro-benchmarks.
#
# Usage: benchmarks/suite.sh [--multicore] [--no-micro] [--no-callgrind] [--no-install]
#   (from any directory: it works from the repository root). Knobs (environment):
#   DURATION=10   seconds per wrk run            ROUNDS=5        interleaved rounds
#   LATENCY_DURATION=DURATION/2 (at least 1)     seconds per fixed-rate h2load run
#   CONNECTIONS=64  wrk and h2load connections   PORT_BASE=8090  ports PORT_BASE..PORT_BASE+7
#   BUILD_DIR=build (configured --buildtype=release --wrap-mode=nodownload if it does not exist)
#   IDLE_CONNS=10000  connections of the idle-memory scenario
#   ALLOC_REQUESTS=100000  CALLGRIND_REQUESTS=20000  requests counted (after a warm-up)
#   RESULTS_DIR=benchmarks/results
# Single-core (default): every server runs one thread pinned to CPU 0 (ringwork --threads 1,
# fasthttp GOMAXPROCS=1, nginx 1 worker), `wrk -t1` and the other clients on CPU 1.
# --multicore: 2 threads / GOMAXPROCS=2 / 2 workers, nothing pinned; scenarios (a)-(c) and (b') only.
#
# Servers: ringwork (io_uring), ringwork-epoll (the same binary, RINGWORK_BACKEND=epoll),
# fasthttp, nginx; in (a)-(c) also ringwork-metrics (the same binary with --metrics: every
# request counted and timed, issue 10's cost target).
# Scenarios per round, servers interleaved in an order that rotates each round:
#   (a) plaintext keep-alive, CONNECTIONS conns (wrk --latency: p99 at saturation), also on
#       the bare liburing loop (benchmarks/peers/bare_loop.c), the keep-alive CPU floor
#   (b) plaintext pipelined x16 (benchmarks/pipeline.lua)     (c) JSON keep-alive
#   (b') (b) with benchmarks/peers/pipe_load.c, a lean io_uring loader, instead of wrk (one wrk
#       thread is (b)'s ceiling), also on the bare loop
#   (d) latency p50/p99/p99.9 at 25/50/75 % of nginx's req/s in (a) of the same round, paced by
#       `h2load --h1 --rps` (per connection), CONNECTIONS connections
# Once, after the rounds: (e) RSS growth of each server's process tree and the kernel's Slab
# growth over IDLE_CONNS idle keep-alive connections that made one request each;
# (f) heap allocations per request of ringwork (LD_PRELOAD counter benchmarks/peers/alloc_count.c,
# a separate process); callgrind instructions per request of ringwork; micro-benchmarks
# (parser_bench, router_bench, json_bench, task_bench, middleware_chain.sh).
# Every figure except (e), (f) and callgrind is a median over ROUNDS. The metric that matters
# on 2 cores is server CPU per request: utime+stime of the server's process tree over a run
# divided by the requests completed. Output: RESULTS_DIR/<date>-<host>[-multicore].{md,csv,dat,png}
# and -raw.csv (every round). Decision rule and targets: docs/benchmarks.md.
set -euo pipefail

MULTICORE=0
MICRO=1
CALLGRIND=1
INSTALL=1
for arg in "$@"; do
    case "$arg" in
    --multicore) MULTICORE=1 ;;
    --no-micro) MICRO=0 ;;
    --no-callgrind) CALLGRIND=0 ;;
    --no-install) INSTALL=0 ;;
    -h | --help)
        sed -n '3,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "suite.sh: unknown option $arg (see --help)" >&2
        exit 2
        ;;
    esac
done

if ((MULTICORE)); then
    MICRO=0 # the micro-benchmarks and the single-process scenarios are single-core only
    CALLGRIND=0
fi

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-5}
LATENCY_DURATION=${LATENCY_DURATION:-$(((DURATION + 1) / 2))}
CONNECTIONS=${CONNECTIONS:-64}
PORT_BASE=${PORT_BASE:-8090}
BUILD_DIR=${BUILD_DIR:-build}
IDLE_CONNS=${IDLE_CONNS:-10000}
ALLOC_REQUESTS=${ALLOC_REQUESTS:-100000}
CALLGRIND_REQUESTS=${CALLGRIND_REQUESTS:-20000}
RESULTS_DIR=${RESULTS_DIR:-benchmarks/results}
if ((MULTICORE)); then
    THREADS=2
    SERVER_CPU="0-$(($(nproc) - 1))"
    CLIENT_CPU=$SERVER_CPU
else
    THREADS=1
    SERVER_CPU=0
    CLIENT_CPU=1
fi

cd "$(dirname "$0")/.."
# shellcheck source=benchmarks/lib.sh
source benchmarks/lib.sh

# --- dependencies ----------------------------------------------------------------------------
# The peers and tools, plus what building ringwork's `build` needs (as scripts/dev.sh, without
# its clang/sanitizer test matrix).
DEPS=(
    golang-go golang-github-valyala-fasthttp-dev nginx-light wrk nghttp2-client gnuplot-nox
    valgrind python3 procps gcc
    meson ninja-build pkg-config cmake g++ liburing-dev libfmt-dev nlohmann-json3-dev doctest-dev
    libhttp-parser-dev
)

pkg_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

ensure_deps() {
    local -a missing=()
    local p
    command -v dpkg-query >/dev/null || bench_die "dpkg-query not found: Debian hosts only"
    for p in "${DEPS[@]}"; do
        pkg_installed "$p" || missing+=("$p")
    done
    ((${#missing[@]} == 0)) && return 0
    say "missing Debian packages: ${missing[*]}"
    if ((!INSTALL)) || ((EUID != 0)); then
        bench_die "install them with: apt-get update && apt-get install -y" \
            "--no-install-recommends ${missing[*]}"
    fi
    timeout 600 apt-get update -qq || bench_die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive timeout 1800 apt-get install -y -qq --no-install-recommends \
        -o DPkg::Lock::Timeout=300 "${missing[@]}" || bench_die "apt-get install failed"
}

# --- work directory, servers, cleanup --------------------------------------------------------
WORK=$(mktemp -d /tmp/ringwork-suite.XXXXXX)
RAW="$WORK/raw.csv"
install_cleanup

# A progress line with the time elapsed since the start.
say() {
    printf '== [%d:%02d] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"
}

# Appends one measurement to the raw CSV: round, scenario, server, metric, value.
record() { # round, scenario, server, metric, value
    echo "$1,$2,$3,$4,$5" >>"$RAW"
}

port_in_use() { # port
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Starts `command` pinned to SERVER_CPU and waits (up to 20 s) until `port` accepts.
start_server() { # name, port, command...
    local name=$1 port=$2 pid
    shift 2
    port_in_use "$port" && bench_die "port $port is already in use (set PORT_BASE)"
    taskset -c "$SERVER_CPU" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    pid=$!
    SERVER_PID[$name]=$pid
    SERVER_PORT[$name]=$port
    for _ in $(seq 200); do
        port_in_use "$port" && break
        alive "$pid" || break
        sleep 0.1
    done
    if ! alive "$pid" || ! port_in_use "$port"; then
        echo "suite.sh: $name did not start listening on $port:" >&2
        cat "$WORK/$name.out" "$WORK/$name.err" >&2
        exit 1
    fi
    say "$name: pid $pid, CPU $SERVER_CPU, port $port"
}

start_ringwork() {
    start_server ringwork "$PORT_BASE" "$TECHEMPOWER_BIN" --host 127.0.0.1 --port "$PORT_BASE" \
        --threads "$THREADS"
}
# The same app counting and timing every request (issue 10: the cost of leaving metrics on).
start_ringwork_metrics() {
    local port=$((PORT_BASE + 7))
    start_server ringwork-metrics "$port" "$TECHEMPOWER_BIN" --metrics \
        --host 127.0.0.1 --port "$port" --threads "$THREADS"
}
# The same app on the epoll backend (issue 9): what runs where io_uring is blocked.
start_ringwork_epoll() {
    local port=$((PORT_BASE + 6))
    start_server ringwork-epoll "$port" env RINGWORK_BACKEND=epoll "$TECHEMPOWER_BIN" \
        --host 127.0.0.1 --port "$port" --threads "$THREADS"
}
start_fasthttp() {
    local port=$((PORT_BASE + 1))
    start_server fasthttp "$port" env GOMAXPROCS="$THREADS" "$WORK/fasthttp-peer" \
        -addr "127.0.0.1:$port"
}
start_nginx() {
    local port=$((PORT_BASE + 2)) prefix="$WORK/nginx"
    mkdir -p "$prefix"
    sed -e "s|@PREFIX@|$prefix|g" -e "s|@PORT@|$port|g" -e "s|@WORKERS@|$THREADS|g" \
        benchmarks/peers/nginx.conf >"$prefix/nginx.conf"
    start_server nginx "$port" nginx -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log"
}
start_bare() {
    local port=$((PORT_BASE + 3))
    start_server bare "$port" "$WORK/bare" "$port"
}

# --- build -----------------------------------------------------------------------------------
build_ringwork() {
    local -a targets=(apps/techempower/ringwork-techempower)
    if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
        say "configuring $BUILD_DIR (--buildtype=release)"
        timeout 600 meson setup "$BUILD_DIR" --buildtype=release --wrap-mode=nodownload \
            >"$WORK/setup.log" 2>&1 || { cat "$WORK/setup.log" >&2; exit 1; }
    fi
    BUILDTYPE=$(meson introspect --buildoptions "$BUILD_DIR" 2>/dev/null |
        python3 -c 'import json, sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "buildtype"))' ||
        echo unknown)
    if ((MICRO)); then
        targets+=(benchmarks/router_bench benchmarks/json_bench benchmarks/task_bench benchmarks/app_server)
        # parser_bench exists only when Debian's http-parser was found at configure time.
        ninja -C "$BUILD_DIR" -t query benchmarks/parser_bench >/dev/null 2>&1 &&
            targets+=(benchmarks/parser_bench)
    fi
    say "building ringwork in $BUILD_DIR (buildtype $BUILDTYPE): ${targets[*]}"
    timeout 1800 ninja -C "$BUILD_DIR" "${targets[@]}" >"$WORK/build.log" 2>&1 ||
        { cat "$WORK/build.log" >&2; exit 1; }
    TECHEMPOWER_BIN="$BUILD_DIR/apps/techempower/ringwork-techempower"
    # The tree as built (other work may change it while the suite runs).
    REVISION=$(git describe --always --dirty 2>/dev/null || echo unknown)
}

# GOPATH mode against Debian's packaged sources: modules are not reachable offline.
build_fasthttp() {
    say "building the fasthttp peer (Go $(go env GOVERSION), GOPATH mode)"
    GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$WORK/gocache" GOFLAGS='' \
        timeout 900 go build -o "$WORK/fasthttp-peer" ./benchmarks/peers/fasthttp \
        >"$WORK/go-build.log" 2>&1 || { cat "$WORK/go-build.log" >&2; exit 1; }
}

build_tools() {
    build_bare_loop "$WORK/bare"
    gcc -O2 -shared -fPIC -o "$WORK/alloc_count.so" benchmarks/peers/alloc_count.c -ldl
    gcc -O2 -o "$WORK/pipe_load" benchmarks/peers/pipe_load.c -luring
    PIPE_LOAD_BIN="$WORK/pipe_load"
}

# --- scenarios -------------------------------------------------------------------------------
# Latency in microseconds of a wrk figure such as 812.00us, 1.20ms or 2.01s.
wrk_to_us() {
    awk '{ v = $1 + 0; if ($1 ~ /ms$/) v *= 1e3; else if ($1 ~ /us$/) v *= 1; else if ($1 ~ /s$/) v *= 1e6
           printf "%.1f\n", v }' <<<"$1"
}

# One wrk run of `scenario` against `name`: records req/s, CPU us/request and, with --latency,
# p99. Non-2xx answers stop the suite (the route measured would not be the one intended).
measure() { # round, scenario, name, path, wrk args...
    local round=$1 scenario=$2 name=$3 path=$4 p99
    shift 4
    wrk_measure "${SERVER_PID[$name]}" "$name $scenario" "$WORK/$name.err" "$WORK/wrk.out" \
        "$DURATION" "$@" "http://127.0.0.1:${SERVER_PORT[$name]}$path"
    if grep -q 'Non-2xx' "$WORK/wrk.out"; then
        echo "suite.sh: non-2xx answers from $name on $path:" >&2
        cat "$WORK/wrk.out" >&2
        exit 1
    fi
    grep 'Socket errors' "$WORK/wrk.out" | sed 's/^/    wrk: /' || true
    measure_line "$name $scenario" 32
    record "$round" "$scenario" "$name" rps "$M_RPS"
    record "$round" "$scenario" "$name" cpu_us "$M_US"
    # How busy the server was: near 100 % it was the bottleneck, well below it the loader was.
    # Percent of one CPU (above 100 with --multicore).
    record "$round" "$scenario" "$name" cpu_busy_pct \
        "$(awk -v t="$M_TICKS" -v hz="$CLK_TCK" -v d="$DURATION" 'BEGIN { printf "%.1f", t / hz / d * 100 }')"
    p99=$(awk '$1 == "99%" { print $2 }' "$WORK/wrk.out")
    if [[ -n "$p99" ]]; then
        record "$round" "$scenario" "$name" p99_us "$(wrk_to_us "$p99")"
    fi
}

scenario_plaintext_keepalive() { # round, servers...
    local round=$1 name
    shift
    for name in "$@"; do
        measure "$round" plaintext-keepalive "$name" /plaintext --latency
    done
}
scenario_plaintext_pipelined() { # round, servers...
    local round=$1 name
    shift
    for name in "$@"; do
        measure "$round" plaintext-pipelined16 "$name" /plaintext -s benchmarks/pipeline.lua
    done
}
# (b) again with benchmarks/peers/pipe_load.c as the loader: one wrk thread on CPU 1 is the
# ceiling of (b) (the servers idle part of the time), pipe_load is light enough to keep CPU 0
# busy, so req/s measures the server. Same connections, depth, duration and pinning.
scenario_plaintext_pipelined_lean() { # round, servers...
    local round=$1 name LOADER=run_pipe_load # read by wrk_measure (lib.sh)
    shift
    for name in "$@"; do
        measure "$round" plaintext-pipelined16-lean "$name" /plaintext
    done
}
scenario_json_keepalive() { # round, servers...
    local round=$1 name
    shift
    for name in "$@"; do
        measure "$round" json-keepalive "$name" /json --latency
    done
}

# One h2load run at `rate` req/s in total against `name`: records the rate reached, p50, p99,
# p99.9 (from h2load's per-request log) and CPU us/request.
measure_rate() { # round, scenario, name, rate
    local round=$1 scenario=$2 name=$3 rate=$4 pid=${SERVER_PID[$3]} before after per_conn
    per_conn=$(awk -v r="$rate" -v c="$CONNECTIONS" 'BEGIN { printf "%.3f", r / c }')
    before=$(cpu_ticks "$pid")
    run_loader "$LATENCY_DURATION" taskset -c "$CLIENT_CPU" h2load --h1 -t1 -c"$CONNECTIONS" \
        -D"$LATENCY_DURATION" --rps="$per_conn" --log-file="$WORK/h2load.log" \
        "http://127.0.0.1:${SERVER_PORT[$name]}/plaintext" >"$WORK/h2load.out" 2>&1 ||
        { echo "suite.sh: h2load failed on $name" >&2; cat "$WORK/h2load.out" >&2; exit 1; }
    alive "$pid" || bench_die "$name died during $scenario (see $WORK/$name.err)"
    after=$(cpu_ticks "$pid")
    # Columns: start (us since epoch), status, microseconds to the end of the answer.
    awk -F'\t' '$2 == 200 { print $3 }' "$WORK/h2load.log" | sort -n >"$WORK/latencies"
    local done_ok failed rps
    done_ok=$(wc -l <"$WORK/latencies")
    failed=$(awk -F'\t' '$2 != 200' "$WORK/h2load.log" | wc -l)
    ((done_ok > 0)) || { cat "$WORK/h2load.out" >&2; bench_die "h2load completed nothing on $name"; }
    rps=$(awk '/^finished in/ { gsub(",", "", $4); print $4 }' "$WORK/h2load.out")
    awk -v n="$done_ok" -v f="$failed" -v rate="$rate" -v rps="$rps" -v t=$((after - before)) \
        -v hz="$CLK_TCK" -v l="$name $scenario" -v round="$round" -v s="$scenario" -v srv="$name" \
        -v raw="$RAW" '
        { v[NR] = $1 }
        function pct(p,   i) { i = int(p * n + 0.999999); if (i < 1) i = 1; return v[i] }
        END {
            us = t / hz * 1e6 / n
            printf "  %-32s %7.0f of %7.0f req/s  p50 %8.0f  p99 %8.0f  p99.9 %8.0f us  %6.3f us/request%s\n",
                l, rps, rate, pct(0.5), pct(0.99), pct(0.999), us, f ? "  FAILED: " f : ""
            printf "%s,%s,%s,rate_target,%.0f\n", round, s, srv, rate >> raw
            printf "%s,%s,%s,rps,%s\n", round, s, srv, rps >> raw
            printf "%s,%s,%s,p50_us,%.0f\n", round, s, srv, pct(0.5) >> raw
            printf "%s,%s,%s,p99_us,%.0f\n", round, s, srv, pct(0.99) >> raw
            printf "%s,%s,%s,p999_us,%.0f\n", round, s, srv, pct(0.999) >> raw
            printf "%s,%s,%s,cpu_us,%.4f\n", round, s, srv, us >> raw
            printf "%s,%s,%s,failed,%d\n", round, s, srv, f >> raw
        }' "$WORK/latencies"
}

# (d): rates are fractions of nginx's keep-alive req/s measured in (a) of the same round.
scenario_latency() { # round, servers...
    local round=$1 nginx_max pct name
    shift
    nginx_max=$(awk -F, -v r="$round" '$1 == r && $2 == "plaintext-keepalive" && $3 == "nginx" &&
        $4 == "rps" { print $5 }' "$RAW")
    [[ -n "$nginx_max" ]] || bench_die "no nginx req/s in round $round for the latency rates"
    for pct in 25 50 75; do
        for name in "$@"; do
            measure_rate "$round" "latency-$pct" "$name" \
                "$(awk -v m="$nginx_max" -v p="$pct" 'BEGIN { printf "%.0f", m * p / 100 }')"
        done
    done
}

# (e): RSS of the server's tree and the machine's Slab before and after IDLE_CONNS idle
# keep-alive connections (each made one request), measured while they are all open.
scenario_idle_memory() { # name
    local name=$1 pid=${SERVER_PID[$1]} rss0 slab0
    rss0=$(rss_kib "$pid")
    slab0=$(slab_kib)
    # The client runs this with every connection open; 1 s lets the servers settle (Go's GC).
    cat >"$WORK/idle-hook.sh" <<EOF
sleep 1
source benchmarks/lib.sh
rss_kib $pid >"$WORK/rss1"
slab_kib >"$WORK/slab1"
EOF
    run_loader 120 taskset -c "$CLIENT_CPU" python3 benchmarks/peers/client.py idle \
        --port "${SERVER_PORT[$name]}" --conns "$IDLE_CONNS" -- bash "$WORK/idle-hook.sh" \
        >"$WORK/idle.out" 2>&1 ||
        { echo "suite.sh: idle connections to $name failed:" >&2; cat "$WORK/idle.out" >&2; exit 1; }
    alive "$pid" || bench_die "$name died holding $IDLE_CONNS connections (see $WORK/$name.err)"
    local rss1 slab1 opened
    rss1=$(<"$WORK/rss1")
    slab1=$(<"$WORK/slab1")
    opened=$(awk '/^opened/ { print $5 }' "$WORK/idle.out")
    awk -v n="$IDLE_CONNS" -v r0="$rss0" -v r1="$rss1" -v s0="$slab0" -v s1="$slab1" -v l="$name" \
        -v o="$opened" 'BEGIN { printf "  %-10s RSS %7d -> %7d KiB: %6.2f KiB/conn   Slab %+8d KiB: %6.2f KiB/conn (both ends)   opened in %s s\n",
            l, r0, r1, (r1 - r0) / n, s1 - s0, (s1 - s0) / n, o }'
    record 1 idle-memory "$name" rss_kib_per_conn "$(awk -v n="$IDLE_CONNS" -v a="$rss0" -v b="$rss1" 'BEGIN { printf "%.3f", (b - a) / n }')"
    record 1 idle-memory "$name" slab_kib_per_conn "$(awk -v n="$IDLE_CONNS" -v a="$slab0" -v b="$slab1" 'BEGIN { printf "%.3f", (b - a) / n }')"
    record 1 idle-memory "$name" open_seconds "$opened"
}

# "heap-allocations operator-new" from a copy of the counter file: the malloc-family counters
# (malloc, calloc, realloc, aligned) summed, then operator new (which also reaches malloc).
alloc_counts() { # file
    od -An -tu8 -w40 -v "$1" | awk '{ print $1 + $2 + $3 + $4, $5 }'
}

# (f): a separate ringwork process under the LD_PRELOAD counter; counts over exactly
# ALLOC_REQUESTS requests on 16 connections once warm: windows of 2,000 requests on the same
# connections until one allocates nothing (the pools reached the load's peak), at most 10.
scenario_allocations() {
    local port=$((PORT_BASE + 4)) pid case path depth m0 n0 m1 n1 heap news ms windows settled
    cat >"$WORK/alloc-settled.sh" <<EOF
# Exit 0 when no allocation happened since the last call (the warm-up's stop test).
cur=\$(od -An -tu8 -w40 -v "$WORK/allocs.bin" | awk '{ print \$1 + \$2 + \$3 + \$4 }')
prev=\$(cat "$WORK/allocs.last")
echo "\$cur" >"$WORK/allocs.last"
[ "\$cur" = "\$prev" ]
EOF
    port_in_use "$port" && bench_die "port $port is already in use (set PORT_BASE)"
    ALLOC_COUNT_FILE="$WORK/allocs.bin" LD_PRELOAD="$WORK/alloc_count.so" \
        taskset -c "$SERVER_CPU" "$TECHEMPOWER_BIN" --host 127.0.0.1 --port "$port" --threads "$THREADS" \
        >"$WORK/alloc.out" 2>"$WORK/alloc.err" &
    pid=$!
    SERVER_PID[ringwork-allocs]=$pid
    wait_for_line "$WORK/alloc.out" listening "$pid" 200 ||
        { cat "$WORK/alloc.err" >&2; bench_die "ringwork under the allocation counter did not start"; }
    for case in plaintext-keepalive:/plaintext:1 plaintext-pipelined16:/plaintext:16 json-keepalive:/json:1; do
        IFS=: read -r case path depth <<<"$case"
        cp "$WORK/allocs.bin" "$WORK/allocs.start"
        read -r ms _ <<<"$(alloc_counts "$WORK/allocs.start")"
        echo "$ms" >"$WORK/allocs.last"
        run_loader 300 taskset -c "$CLIENT_CPU" python3 benchmarks/peers/client.py exact --port "$port" \
            --conns 16 --depth "$depth" --warmup 2000 --max-warmups 10 --settled "sh '$WORK/alloc-settled.sh'" \
            --requests "$ALLOC_REQUESTS" --path "$path" \
            --before "cp $WORK/allocs.bin $WORK/allocs.before" --after "cp $WORK/allocs.bin $WORK/allocs.after" \
            >"$WORK/client.out" 2>&1 || { cat "$WORK/client.out" >&2; bench_die "allocation client failed"; }
        windows=$(awk '/^warm-up windows/ { print $3 }' "$WORK/client.out")
        settled=$(awk '/^warm-up windows/ { print $5 }' "$WORK/client.out")
        read -r m0 n0 <<<"$(alloc_counts "$WORK/allocs.before")"
        read -r m1 n1 <<<"$(alloc_counts "$WORK/allocs.after")"
        heap=$((m1 - m0))
        news=$((n1 - n0))
        awk -v m="$heap" -v n="$news" -v r="$ALLOC_REQUESTS" -v l="$case" -v w="$windows" -v a="$((m0 - ms))" \
            -v z="$settled" 'BEGIN { printf "  ringwork %-22s %6d heap allocations (%d operator new) over %d requests: %.6f per request (warm-up: %d windows of 2,000, %d allocations, settled: %s)\n", l, m, n, r, m / r, w, a, z }'
        record 1 "$case" ringwork allocs_per_req "$(awk -v m="$heap" -v r="$ALLOC_REQUESTS" 'BEGIN { printf "%.6f", m / r }')"
        record 1 "$case" ringwork alloc_warmup_windows "$windows"
        record 1 "$case" ringwork alloc_warmup_allocs "$((m0 - ms))"
        record 1 "$case" ringwork alloc_warmup_settled "$([[ $settled == yes ]] && echo 1 || echo 0)"
    done
    stop_server ringwork-allocs
}

# Callgrind: instructions per request of ringwork (user space only), between
# `callgrind_control -z` and `-d` around exactly CALLGRIND_REQUESTS pipelined requests.
scenario_callgrind() {
    local port=$((PORT_BASE + 5)) pid case path depth dump=0 ir
    port_in_use "$port" && bench_die "port $port is already in use (set PORT_BASE)"
    taskset -c "$SERVER_CPU" valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" \
        "$TECHEMPOWER_BIN" --host 127.0.0.1 --port "$port" --threads "$THREADS" \
        >"$WORK/callgrind.stdout" 2>"$WORK/callgrind.stderr" &
    pid=$!
    SERVER_PID[ringwork-callgrind]=$pid
    wait_for_line "$WORK/callgrind.stdout" listening "$pid" 600 ||
        { cat "$WORK/callgrind.stderr" >&2; bench_die "ringwork under callgrind did not start"; }
    for case in plaintext-pipelined16:/plaintext:16 json-pipelined16:/json:16; do
        IFS=: read -r case path depth <<<"$case"
        run_loader 300 taskset -c "$CLIENT_CPU" python3 benchmarks/peers/client.py exact --port "$port" \
            --conns 16 --depth "$depth" --warmup 2000 --requests "$CALLGRIND_REQUESTS" --path "$path" \
            --before "timeout 60 callgrind_control -z $pid >/dev/null" \
            --after "timeout 60 callgrind_control -d $pid >/dev/null" \
            >"$WORK/client.out" 2>&1 || { cat "$WORK/client.out" >&2; bench_die "callgrind client failed"; }
        dump=$((dump + 1))
        [[ -f "$WORK/callgrind.out.$dump" ]] || bench_die "callgrind wrote no dump $dump"
        ir=$(awk '/^totals:/ { print $2 }' "$WORK/callgrind.out.$dump")
        awk -v i="$ir" -v r="$CALLGRIND_REQUESTS" -v l="$case" \
            'BEGIN { printf "  ringwork %-22s %11d instructions over %d requests: %.0f per request\n", l, i, r, i / r }'
        record 1 "callgrind-$case" ringwork instr_per_req "$(awk -v i="$ir" -v r="$CALLGRIND_REQUESTS" 'BEGIN { printf "%.1f", i / r }')"
    done
    # Under valgrind the server's signalfd never sees SIGINT (valgrind keeps signals unblocked
    # in the kernel and emulates the mask), so it is killed; the dumps are already written.
    kill -KILL "$pid" 2>/dev/null || true
    stop_server ringwork-callgrind
}

# Micro-benchmarks: their own output, kept verbatim for the report.
run_micro() {
    local bin
    {
        for bin in parser_bench router_bench json_bench task_bench; do
            [[ -x "$BUILD_DIR/benchmarks/$bin" ]] || { echo "($bin not built)"; continue; }
            echo "\$ taskset -c $CLIENT_CPU $BUILD_DIR/benchmarks/$bin"
            timeout 300 taskset -c "$CLIENT_CPU" "$BUILD_DIR/benchmarks/$bin" 2>&1 ||
                echo "($bin failed: exit $?)"
        done
        local mw_duration=$((DURATION < 3 ? DURATION : 3))
        echo "\$ DURATION=$mw_duration ROUNDS=1 PORT=$((PORT_BASE + 6)) BUILD_DIR=$BUILD_DIR benchmarks/middleware_chain.sh"
        DURATION=$mw_duration ROUNDS=1 PORT=$((PORT_BASE + 6)) BUILD_DIR=$BUILD_DIR \
            timeout 600 benchmarks/middleware_chain.sh 2>&1 || echo "(middleware_chain.sh failed: exit $?)"
    } | tee "$WORK/micro.txt" | sed 's/^/  /'
}

# --- run -------------------------------------------------------------------------------------
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

ensure_deps
# 10,000 client plus 10,000 server sockets: the hard limit here is 20,000.
ulimit -n "$(ulimit -Hn)"
CLK_TCK=$(getconf CLK_TCK)
STAMP=$(date +%Y-%m-%d-%H%M)
MODE=single-core
OUT="$RESULTS_DIR/$STAMP-$(hostname -s)"
if ((MULTICORE)); then
    MODE=multicore
    OUT+=-multicore
fi
mkdir -p "$RESULTS_DIR"
LOAD_START=$(loadavg)

build_ringwork
build_fasthttp
build_tools

SERVERS=(ringwork ringwork-epoll fasthttp nginx)
THROUGHPUT_SERVERS=(ringwork ringwork-metrics ringwork-epoll fasthttp nginx) # (a)-(c)
start_ringwork
start_ringwork_metrics
start_ringwork_epoll
start_fasthttp
start_nginx
if ((!MULTICORE)); then
    start_bare
fi
# Warm-up (not reported): connections, pools, page faults, both routes.
for name in "${!SERVER_PID[@]}"; do
    run_wrk 1 -s benchmarks/pipeline.lua "http://127.0.0.1:${SERVER_PORT[$name]}/" >/dev/null 2>&1 || true
    run_wrk 1 "http://127.0.0.1:${SERVER_PORT[$name]}/json" >/dev/null 2>&1 || true
done

say "$MODE: ${DURATION}s per wrk run, ${LATENCY_DURATION}s per h2load run, $ROUNDS rounds," \
    "$CONNECTIONS connections, servers on CPU $SERVER_CPU, clients on CPU $CLIENT_CPU," \
    "load average $LOAD_START"
for round in $(seq "$ROUNDS"); do
    load=$(loadavg)
    say "round $round (load average $load)"
    record "$round" machine - loadavg1 "${load%% *}"
    # Rotate the order so that no server always runs first or right after another.
    shift_by=$(((round - 1) % ${#SERVERS[@]}))
    order=("${SERVERS[@]:shift_by}" "${SERVERS[@]:0:shift_by}")
    shift_by=$(((round - 1) % ${#THROUGHPUT_SERVERS[@]}))
    torder=("${THROUGHPUT_SERVERS[@]:shift_by}" "${THROUGHPUT_SERVERS[@]:0:shift_by}")
    if ((MULTICORE)); then
        scenario_plaintext_keepalive "$round" "${torder[@]}"
    else
        scenario_plaintext_keepalive "$round" "${torder[@]}" bare
    fi
    scenario_plaintext_pipelined "$round" "${torder[@]}"
    if ((MULTICORE)); then
        scenario_plaintext_pipelined_lean "$round" "${torder[@]}"
    else
        scenario_plaintext_pipelined_lean "$round" "${torder[@]}" bare
    fi
    scenario_json_keepalive "$round" "${torder[@]}"
    if ((!MULTICORE)); then
        scenario_latency "$round" "${order[@]}"
    fi
done

if ((!MULTICORE)); then
    stop_server bare
    say "idle keep-alive memory: $IDLE_CONNS connections, one request each"
    for name in "${SERVERS[@]}"; do
        scenario_idle_memory "$name"
    done
fi
for name in "${SERVERS[@]}" ringwork-metrics; do
    stop_server "$name"
done
if ((!MULTICORE)); then
    say "heap allocations per request (ringwork, LD_PRELOAD counter)"
    scenario_allocations
    if ((CALLGRIND)); then
        say "callgrind instructions per request (ringwork)"
        scenario_callgrind
    fi
fi
: >"$WORK/micro.txt"
if ((MICRO && !MULTICORE)); then
    say "micro-benchmarks"
    run_micro
fi

LOAD_END=$(loadavg)
cat >"$WORK/meta.txt" <<EOF
mode=$MODE
command=$(printf '%q ' env DURATION="$DURATION" ROUNDS="$ROUNDS" benchmarks/suite.sh "$@")
date=$(date -Iseconds)
host=$(hostname -s)
kernel=$(uname -r)
cpus=$(nproc) x $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
buildtype=$BUILDTYPE ($BUILD_DIR)
ringwork=$REVISION
versions=$(dpkg-query -W -f='${Package} ${Version}, ' wrk nginx-light golang-go golang-github-valyala-fasthttp-dev nghttp2-client valgrind | sed 's/, $//')
duration=$DURATION
latency_duration=$LATENCY_DURATION
rounds=$ROUNDS
connections=$CONNECTIONS
idle_conns=$IDLE_CONNS
alloc_requests=$ALLOC_REQUESTS
callgrind_requests=$CALLGRIND_REQUESTS
server_cpu=$SERVER_CPU
client_cpu=$CLIENT_CPU
threads=$THREADS
load_start=$LOAD_START
load_end=$LOAD_END
EOF
cp "$RAW" "$OUT-raw.csv"
timeout 120 python3 benchmarks/peers/report.py --raw "$RAW" --meta "$WORK/meta.txt" \
    --micro "$WORK/micro.txt" --out "$OUT"
say "results: $OUT.md (.csv .dat .png, -raw.csv); load average now $LOAD_END"
