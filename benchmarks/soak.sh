#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Soak (issue 8): apps/echo under a bounded mixed load, its RSS sampled every second, its pool
# figures read from /metrics before, during and after the load, two checks.
#
# Usage: benchmarks/soak.sh   (from any directory; it works from the repository root)
# Knobs (environment):
#   BUILD_DIR=build-soak  (configured --buildtype=release --wrap-mode=nodownload if missing)
#   DURATION=60   seconds of load          AFTER=25      seconds sampled after the load (the
#     pools are trimmed by the worker reaper: workers idle > max_idle_worker_duration (10 s) are
#     retired at its next 10 s tick, so 10 to 20 s after the load)
#   WARMUP=10     seconds before the RSS reference is taken
#   TOLERANCE=5   RSS may move this many % from its post-warm-up value
#   CONNECTIONS=32  wrk connections        PORT=8097
#   SERVER_CPU=0  CLIENT_CPU=1              RESULTS_DIR=benchmarks/results
# Server: build-soak/apps/echo/ringwork-echo --threads 1 on 127.0.0.1:PORT, pinned to SERVER_CPU.
# Load, pinned to CLIENT_CPU, both bounded by DURATION (and killed 30 s later at the latest):
#   - wrk -t1 -cCONNECTIONS with a Lua mix (written to a temp dir): GET /get, POST /post with a JSON
#     body, /status/404, /bytes/1000, /gzip, plain and pipelined (4 per write), 1 in 50
#     requests with `Connection: close`;
#   - a Python client (same): connections opened, used once and closed; aborted requests
#     (RST mid-head); 3 slow writers (a head byte by byte) and 1 slow reader (/bytes/1048576
#     read at ~256 KiB/s).
# Sampled every second from the load's start to AFTER seconds after its end: the server's VmRSS,
# RssAnon, RssFile (/proc/PID/status), Rss and AnonHugePages (/proc/PID/smaps_rollup), and from
# /metrics: connections open, ringwork_buffers_in_use and
# ringwork_buffer_pool_idle_buffers per pool, requests served.
# Checks (exit 1 with a message): (1) from WARMUP to the end of the load, the Rss of
# smaps_rollup stays within TOLERANCE % of its first value at or after WARMUP, and after the
# load it does not rise above that band (falling is the pools giving memory back) (VmRSS is
# reported, not checked: it comes from the kernel's approximate per-mm counters);
# (2) at the end, each pool's buffers in use, each pool's idle buffers and the open connections
# are back to (at most) their values before the load (pools trimmed to their idle size).
# Output: RESULTS_DIR/<date>-<host>-soak.{csv,png,md}.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BENCH_NAME=soak.sh
# shellcheck source=benchmarks/lib.sh
source benchmarks/lib.sh

BUILD_DIR=${BUILD_DIR:-build-soak}
DURATION=${DURATION:-60}
AFTER=${AFTER:-25}
WARMUP=${WARMUP:-10}
TOLERANCE=${TOLERANCE:-5}
CONNECTIONS=${CONNECTIONS:-32}
PORT=${PORT:-8097}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
RESULTS_DIR=${RESULTS_DIR:-benchmarks/results}

say() { echo "soak.sh: $*" >&2; }
for tool in wrk gnuplot curl python3 taskset meson ninja; do
    command -v "$tool" >/dev/null || bench_die "$tool not found (apt-get install wrk gnuplot-nox curl python3 util-linux meson ninja-build)"
done
((WARMUP < DURATION)) || bench_die "WARMUP ($WARMUP) must be below DURATION ($DURATION)"

WORK=$(mktemp -d /tmp/ringwork-soak.XXXXXX)
PY_PID=""
WRK_PID=""
soak_cleanup() {
    local pid
    for pid in "$WRK_PID" "$PY_PID"; do
        [[ -n "$pid" ]] || continue
        kill -INT "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    cleanup # lib.sh: stops the servers, removes $WORK
}
trap soak_cleanup EXIT
trap 'exit 130' INT TERM

# --- load generators (written to $WORK) ------------------------------------------------------
cat >"$WORK/soak.lua" <<'LUA'
-- wrk script: a mix of echo routes, plain and pipelined (4 requests per write).
local reqs = {}
local n = 0
function init(args)
    local body = '{"name":"soak","values":[1,2,3,4,5,6,7,8],"text":"' .. string.rep("x", 512) .. '"}'
    local h = { ["Host"] = "localhost" }
    local get = wrk.format("GET", "/get?x=1", h)
    local post = wrk.format("POST", "/post", { ["Host"] = "localhost",
        ["Content-Type"] = "application/json" }, body)
    local s404 = wrk.format("GET", "/status/404", h)
    local bytes = wrk.format("GET", "/bytes/1000?seed=7", h)
    local gz = wrk.format("GET", "/gzip", { ["Host"] = "localhost", ["Accept-Encoding"] = "gzip" })
    local close = wrk.format("GET", "/get", { ["Host"] = "localhost", ["Connection"] = "close" })
    reqs = { get, post, s404, bytes, gz,
             get .. post .. bytes .. gz, post .. post .. s404 .. get, get .. get .. get .. get }
    closer = close
end
function request()
    n = n + 1
    if n % 50 == 0 then return closer end
    return reqs[(n % #reqs) + 1]
end
LUA
cat >"$WORK/soak_client.py" <<'PY'
"""Connection churn for soak.sh: short connections, aborts, slow writers, a slow reader."""
import socket, struct, sys, threading, time

host, port, duration = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
deadline = time.monotonic() + duration
stats = {"short": 0, "aborted": 0, "slow_write": 0, "slow_read": 0, "errors": 0}
lock = threading.Lock()

def bump(k):
    with lock:
        stats[k] += 1

def connect():
    s = socket.create_connection((host, port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s

def read_all(s, pause=0.0, chunk=65536):
    total = 0
    while True:
        b = s.recv(chunk)
        if not b:
            return total
        total += len(b)
        if pause:
            time.sleep(pause)

def short_loop():
    i = 0
    while time.monotonic() < deadline:
        i += 1
        try:
            s = connect()
            if i % 10 == 0:  # abort: half a head, then RST
                s.sendall(b"POST /post HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
                bump("aborted")
                continue
            path = (b"/get", b"/bytes/4000", b"/status/404", b"/gzip")[i % 4]
            s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            if read_all(s) == 0:
                raise OSError("empty response")
            s.close()
            bump("short")
        except OSError:
            bump("errors")
        time.sleep(0.002)

def slow_writer():
    head = b"GET /get HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\nConnection: close\r\n\r\n"
    while time.monotonic() < deadline - 3:
        try:
            s = connect()
            for c in head:
                s.send(bytes([c]))
                time.sleep(0.03)
            read_all(s)
            s.close()
            bump("slow_write")
        except OSError:
            bump("errors")

def slow_reader():
    while time.monotonic() < deadline - 5:
        try:
            s = connect()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
            s.sendall(b"GET /bytes/1048576?seed=3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            read_all(s, pause=0.0625, chunk=16384)  # ~256 KiB/s
            s.close()
            bump("slow_read")
        except OSError:
            bump("errors")

threads = [threading.Thread(target=short_loop)] + \
    [threading.Thread(target=slow_writer) for _ in range(3)] + [threading.Thread(target=slow_reader)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(" ".join(f"{k}={v}" for k, v in stats.items()))
PY

# --- build ------------------------------------------------------------------------------------
if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
    say "configuring $BUILD_DIR (--buildtype=release)"
    timeout 600 meson setup "$BUILD_DIR" --buildtype=release --wrap-mode=nodownload \
        -Dtests=false -Dbenchmarks=false >"$WORK/setup.log" 2>&1 ||
        { cat "$WORK/setup.log" >&2; bench_die "meson setup $BUILD_DIR failed"; }
fi
say "building $BUILD_DIR apps/echo/ringwork-echo"
timeout 1800 ninja -C "$BUILD_DIR" -j2 apps/echo/ringwork-echo >"$WORK/build.log" 2>&1 ||
    { tail -50 "$WORK/build.log" >&2; bench_die "build failed"; }
BIN="$BUILD_DIR/apps/echo/ringwork-echo"
BUILDTYPE=$(meson introspect --buildoptions "$BUILD_DIR" |
    python3 -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"]=="buildtype"))')

# --- server -----------------------------------------------------------------------------------
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port_in_use "$PORT" && bench_die "port $PORT is already in use (set PORT)"
taskset -c "$SERVER_CPU" "$BIN" --host 127.0.0.1 --port "$PORT" --threads 1 \
    >"$WORK/echo.out" 2>"$WORK/echo.err" &
SPID=$!
SERVER_PID[echo]=$SPID
for _ in $(seq 200); do
    port_in_use "$PORT" && break
    alive "$SPID" || break
    sleep 0.1
done
if ! alive "$SPID" || ! port_in_use "$PORT"; then
    cat "$WORK/echo.out" "$WORK/echo.err" >&2
    bench_die "ringwork-echo did not start listening on $PORT"
fi
say "ringwork-echo: pid $SPID, CPU $SERVER_CPU, port $PORT, buildtype $BUILDTYPE"

HAVE_METRICS=1
curl -sf --max-time 2 "http://127.0.0.1:$PORT/metrics" >"$WORK/m0.txt" &&
    grep -q '^ringwork_buffers_in_use' "$WORK/m0.txt" || HAVE_METRICS=0
((HAVE_METRICS)) || say "no /metrics with ringwork_buffers_in_use: the pool check is skipped"

# The pool figures of a /metrics text, comma-separated in the order of METRIC_COLS (a sum over
# the samples of a name, with pool="P" when given; empty when absent). One awk per sample.
METRIC_COLS=(connections_open requests_total in_use_out in_use_carry idle_out idle_body idle_carry)
metrics_fields() { # file
    awk '
        BEGIN {
            n = split("ringwork_connections_open: ringwork_requests_total: " \
                "ringwork_buffers_in_use:out ringwork_buffers_in_use:carry " \
                "ringwork_buffer_pool_idle_buffers:out ringwork_buffer_pool_idle_buffers:body " \
                "ringwork_buffer_pool_idle_buffers:carry", col, " ")
        }
        $1 ~ /^#/ { next }
        {
            name = $1; sub(/\{.*/, "", name)
            for (i = 1; i <= n; i++) {
                split(col[i], kv, ":")
                if (name == kv[1] && (kv[2] == "" || index($1, "pool=\"" kv[2] "\""))) {
                    sum[i] += $NF; seen[i] = 1
                }
            }
        }
        END {
            for (i = 1; i <= n; i++) printf "%s%s", (i > 1 ? "," : ""), (seen[i] ? sprintf("%.0f", sum[i]) : "")
            print ""
        }' "$1"
}
# One sample line: t,phase,rss_kib,rss_anon_kib,rss_file_kib,smaps_rss_kib,anon_huge_kib,METRIC_COLS... (t: seconds since the load started, measured).
sample() { # t, phase, metrics file
    local t=$1 phase=$2 f=$3 line
    line="$t,$phase,$(rss_kib "$SPID"),$(rss_parts "$SPID")"
    if ((HAVE_METRICS)) && curl -sf --max-time 2 "http://127.0.0.1:$PORT/metrics" >"$f"; then
        line+=",$(metrics_fields "$f")"
    else
        line+=",,,,,,,"
    fi
    echo "$line"
}
# RssAnon,RssFile of the server in KiB (what VmRSS is made of, with RssShmem), then Rss and
# AnonHugePages from /proc/PID/smaps_rollup: VmRSS comes from the kernel's per-CPU counters
# (approximate on Linux >= 6.2), smaps_rollup walks the page tables (exact).
rss_parts() { # pid
    local key value _ anon="" file="" rss="" huge=""
    while read -r key value _; do
        case "$key" in
        RssAnon:) anon=$value ;;
        RssFile:) file=$value ;;
        esac
    done 2>/dev/null <"/proc/$1/status" || true
    while read -r key value _; do
        case "$key" in
        Rss:) rss=$value ;;
        AnonHugePages:) huge=$value ;;
        esac
    done 2>/dev/null <"/proc/$1/smaps_rollup" || true
    echo "$anon,$file,$rss,$huge"
}
# Seconds since START (microseconds since the epoch), one decimal.
elapsed() {
    local us=$((${EPOCHREALTIME/./} - START))
    printf '%d.%d' $((us / 1000000)) $((us % 1000000 / 100000))
}

# Idle figures before any load (two reads: the first /metrics request may itself warm a pool).
sleep 1
sample 0 before "$WORK/m-before0.txt" >/dev/null
BEFORE=$(sample 0 before "$WORK/m-before.txt")
say "before: $BEFORE"

# --- load -------------------------------------------------------------------------------------
CSV="$WORK/soak.csv"
{
    IFS=, ; echo "t_s,phase,rss_kib,rss_anon_kib,rss_file_kib,smaps_rss_kib,anon_huge_kib,${METRIC_COLS[*]}"; unset IFS
} >"$CSV"
echo "${BEFORE/#0,before/-1,before}" >>"$CSV"
LOAD_END=""

START=${EPOCHREALTIME/./}
timeout $((DURATION + 30)) taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" \
    --timeout 10s -s "$WORK/soak.lua" "http://127.0.0.1:$PORT" >"$WORK/wrk.out" 2>&1 &
WRK_PID=$!
timeout $((DURATION + 30)) taskset -c "$CLIENT_CPU" python3 "$WORK/soak_client.py" \
    127.0.0.1 "$PORT" "$DURATION" >"$WORK/client.out" 2>&1 &
PY_PID=$!
say "load: wrk (pid $WRK_PID) and soak_client.py (pid $PY_PID) for ${DURATION} s, sampling every second"

END_T=$((DURATION + AFTER))
for ((t = 1; t <= END_T; t++)); do
    # Sleep until START + t seconds; a sample that overran its second skips the missed ticks.
    now=${EPOCHREALTIME/./}
    wait_us=$((START + t * 1000000 - now))
    ((wait_us < -500000)) && continue
    ((wait_us > 0)) && sleep "$(printf '%d.%06d' $((wait_us / 1000000)) $((wait_us % 1000000)))"
    alive "$SPID" || { sed 's/^/  /' "$WORK/echo.err" >&2; bench_die "the server died at t=$t s"; }
    phase=after
    [[ -z "$LOAD_END" ]] && phase=load
    sample "$(elapsed)" "$phase" "$WORK/m-$t.txt" >>"$CSV"
    if [[ -z "$LOAD_END" ]] && ! alive "$WRK_PID" && ! alive "$PY_PID"; then
        LOAD_END=$(elapsed) # both loaders exited (each stops by itself after DURATION s)
        rc=0
        wait "$WRK_PID" || rc=$?
        WRK_PID=""
        ((rc == 0)) || { cat "$WORK/wrk.out" >&2; bench_die "wrk failed (exit $rc)"; }
        rc=0
        wait "$PY_PID" || rc=$?
        PY_PID=""
        ((rc == 0)) || { cat "$WORK/client.out" >&2; bench_die "soak_client.py failed (exit $rc)"; }
        END_T=$((t + AFTER)) # AFTER more seconds of samples
    fi
done
[[ -n "$LOAD_END" ]] || bench_die "the load did not stop within DURATION + AFTER seconds"
say "load done: $(awk '/requests in/' "$WORK/wrk.out" | sed 's/^ *//')"

# --- checks and outputs -----------------------------------------------------------------------
mkdir -p "$RESULTS_DIR"
STAMP="$(date -u +%Y-%m-%d-%H%M)-$(hostname -s)-soak"
OUT="$RESULTS_DIR/$STAMP"
cp "$CSV" "$OUT.csv"

# RSS: reference at WARMUP, max deviation over [WARMUP, DURATION] and [WARMUP, END].
# rss_stats COLUMN: reference (first sample at t >= WARMUP), min, max from there, max deviation
# in % during the load and over load + after, the last value, the peak.
rss_stats() {
    awk -F, -v w="$WARMUP" -v c="$1" '
    NR == 1 { next }
    $1 >= 0 && $c > peak { peak = $c }
    $1 >= w && ref == "" { ref = $c }
    $1 >= w { v[NR] = $c; ph[NR] = $2; last = $c }
    END {
        min = ref; max = ref
        for (i in v) {
            x = (v[i] - ref) / ref * 100
            # After the load only growth counts: memory given back is what the pools should do.
            if (ph[i] != "load" && x < 0) x = 0
            if (x < 0) x = -x
            if (ph[i] == "load" && x > dl) dl = x
            if (x > da) da = x
            if (v[i] < min) min = v[i]; if (v[i] > max) max = v[i]
        }
        printf "%d %d %d %.2f %.2f %d %d\n", ref, min, max, dl, da, last, peak
    }' "$CSV"
}
# The check uses Rss of smaps_rollup (a page-table walk, exact); VmRSS (the kernel's RSS
# counters, approximate on Linux >= 6.2) is reported beside it. The two are read a few ms apart:
# a short-lived mapping can show in one and not the other.
read -r RSS_REF RSS_MIN RSS_MAX DEV_LOAD DEV_ALL RSS_END RSS_PEAK <<<"$(rss_stats 6)"
read -r VM_REF VM_MIN VM_MAX VM_DEV_LOAD VM_DEV_ALL VM_END VM_PEAK <<<"$(rss_stats 3)"
FAIL=()
RSS_OK=$(awk -v a="$DEV_ALL" -v t="$TOLERANCE" 'BEGIN { print (a <= t) ? 1 : 0 }')
((RSS_OK)) || FAIL+=("RSS (smaps_rollup) moved ${DEV_ALL} % from its post-warm-up value ${RSS_REF} KiB (limit ${TOLERANCE} %)")

# Pools: figures before, the maximum during the load, at the end.
POOL_ROWS=""
if ((HAVE_METRICS)); then
    LAST=$(tail -n1 "$CSV")
    for col in 10 11 12 13 14; do # in_use_out in_use_carry idle_out idle_body idle_carry
        name=${METRIC_COLS[col - 8]}
        kind=${name%_*}
        p=${name##*_}
        b=$(cut -d, -f"$col" <<<"$BEFORE")
        e=$(cut -d, -f"$col" <<<"$LAST")
        m=$(awk -F, -v c="$col" 'NR > 1 && $2 == "load" && $c != "" && $c + 0 > m { m = $c + 0 } END { print m + 0 }' "$CSV")
        [[ -n "$b" && -n "$e" ]] || continue # a pool without that gauge
        POOL_ROWS+="| \`$p\` | $kind | $b | $m | $e |"$'\n'
        if [[ $kind == in_use ]] && ((e != b)); then
            FAIL+=("pool $p: $e buffers in use after the load, $b before")
        fi
        if [[ $kind == idle ]] && ((e > b)); then
            FAIL+=("pool $p: $e idle buffers ${AFTER} s after the load, $b before it")
        fi
    done
    CONNS_END=$(cut -d, -f8 <<<"$LAST")
    CONNS_BEFORE=$(cut -d, -f8 <<<"$BEFORE")
    ((CONNS_END == CONNS_BEFORE)) ||
        FAIL+=("$CONNS_END connections open after the load, $CONNS_BEFORE before")
fi

# PNG: RSS over time, load window shaded, the reference and the tolerance band.
gnuplot <<EOF
set terminal pngcairo size 1000,500 noenhanced
set output "$OUT.png"
set datafile separator ","
set title "ringwork-echo soak: RSS every second (load 0-${LOAD_END} s shaded, reference at ${WARMUP} s, +-${TOLERANCE} % dotted)"
set xlabel "seconds since the load started"
set ylabel "RSS (MiB)"
set y2label "connections open"
set ytics nomirror
set y2tics
set key outside bottom center horizontal
set object 1 rect from 0, graph 0 to ${LOAD_END}, graph 1 fc rgb "#e8eef8" fs solid noborder behind
set label 1 "load" at ${LOAD_END} / 2, graph 0.95 center
set arrow 1 from ${WARMUP}, graph 0 to ${WARMUP}, graph 1 nohead dt 2 lc rgb "#888888"
ref = ${RSS_REF} / 1024.0
set yrange [0:*]
plot "$CSV" every ::1 using 1:(\$6/1024.0) with linespoints pt 7 ps 0.5 lw 2 title "Rss (smaps_rollup, checked)", \
     "$CSV" every ::1 using 1:(\$3/1024.0) with lines lw 1 lc rgb "#7777cc" title "VmRSS", \
     ref * (1 + ${TOLERANCE} / 100.0) with lines dt 3 lc rgb "#cc0000" title "+${TOLERANCE} %", \
     ref * (1 - ${TOLERANCE} / 100.0) with lines dt 3 lc rgb "#cc0000" title "-${TOLERANCE} %", \
     "$CSV" every ::1 using 1:(\$4/1024.0) with lines lw 1 lc rgb "#2a8a2a" title "RssAnon", \
     "$CSV" every ::1 using 1:8 axes x1y2 with lines lc rgb "#999999" title "connections open"
EOF

WRK_SUMMARY=$(grep -E 'requests in|Requests/sec|Non-2xx|Socket errors' "$WORK/wrk.out" | sed 's/^ */    /')
CLIENT_SUMMARY=$(tail -n1 "$WORK/client.out")
{
    echo "# Soak: ringwork-echo, ${DURATION} s mixed load"
    echo
    echo "Command: \`benchmarks/soak.sh\` (DURATION=$DURATION WARMUP=$WARMUP AFTER=$AFTER" \
        "TOLERANCE=$TOLERANCE CONNECTIONS=$CONNECTIONS), $(date -u '+%Y-%m-%d %H:%M UTC')," \
        "host $(hostname -s), kernel $(uname -r), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)."
    echo "Server: \`$BIN --threads 1\` (buildtype $BUILDTYPE) on CPU $SERVER_CPU; load on CPU $CLIENT_CPU."
    echo
    echo "## Load"
    echo
    echo "wrk -t1 -c$CONNECTIONS, Lua mix of /get, /post (JSON body), /status/404, /bytes/1000, /gzip, plain and pipelined x4, 1 in 50 with Connection: close:"
    echo
    echo "$WRK_SUMMARY"
    echo
    echo "soak_client.py: \`$CLIENT_SUMMARY\`"
    echo
    echo "## RSS"
    echo
    echo "| figure (KiB) | Rss, smaps_rollup (checked) | VmRSS, /proc/PID/status |"
    echo "|---|---|---|"
    echo "| before the load | $(cut -d, -f6 <<<"$BEFORE") | $(cut -d, -f3 <<<"$BEFORE") |"
    echo "| peak | $RSS_PEAK | $VM_PEAK |"
    echo "| reference (first sample at t >= ${WARMUP} s) | $RSS_REF | $VM_REF |"
    echo "| min / max from ${WARMUP} s to the end | $RSS_MIN / $RSS_MAX | $VM_MIN / $VM_MAX |"
    echo "| end (${AFTER} s after the load) | $RSS_END | $VM_END |"
    echo "| max deviation from the reference: load / load + after | ${DEV_LOAD} % / ${DEV_ALL} % | ${VM_DEV_LOAD} % / ${VM_DEV_ALL} % |"
    echo "| RssAnon / RssFile (status): before, at the reference, max, end | | $(awk -F, -v w="$WARMUP" '
        NR == 2 { a0 = $4; f0 = $5 } NR > 2 && $1 >= w && ar == "" { ar = $4; fr = $5 }
        NR > 1 { if ($4 > am) am = $4; if ($5 > fm) fm = $5; a = $4; f = $5 }
        END { printf "%s / %s, %s / %s, %s / %s, %s / %s", a0, f0, ar, fr, am, fm, a, f }' "$CSV") |"
    echo "| max AnonHugePages | $(awk -F, 'NR > 1 && $7 > h { h = $7 } END { print h + 0 }' "$CSV") | |"
    echo
    echo "Load from 0 to ${LOAD_END} s (both loaders exited); limit ${TOLERANCE} % on the smaps_rollup Rss." \
        "Plot: [$STAMP.png]($STAMP.png)."
    echo
    echo "## Buffer pools (/metrics)"
    echo
    if ((HAVE_METRICS)); then
        echo "| pool | gauge | before | max during the load | end |"
        echo "|---|---|---|---|---|"
        printf '%s' "$POOL_ROWS"
        echo
        echo "Connections open: before $CONNS_BEFORE, end $CONNS_END (the /metrics request included)."
    else
        echo "Skipped: the server has no /metrics with ringwork_buffers_in_use."
    fi
    echo
    echo "## Result"
    echo
    if ((${#FAIL[@]})); then
        printf -- '- FAILED: %s\n' "${FAIL[@]}"
    else
        echo "PASSED: RSS within ${TOLERANCE} % after the warm-up; buffers in use back to their"
        echo "value before the load and idle buffers back to their size before it (or below)."
    fi
} >"$OUT.md"

say "RSS (smaps_rollup): reference $RSS_REF KiB at ${WARMUP} s, max deviation ${DEV_LOAD} % (load), ${DEV_ALL} % (load + after); VmRSS: ${VM_DEV_LOAD} % / ${VM_DEV_ALL} %"
say "wrote $OUT.csv $OUT.png $OUT.md"
if ((${#FAIL[@]})); then
    for f in "${FAIL[@]}"; do say "FAILED: $f"; done
    exit 1
fi
say "PASSED"
