# SPDX-License-Identifier: MIT
# Helpers shared by the benchmark scripts (sourced, never run): process liveness, CPU time and
# RSS of a server's process tree, stopping a server with a deadline, load generators bounded by
# a timeout, one measured wrk run, medians, the bare liburing loop.
#
# The sourcing script sets CONNECTIONS and CLIENT_CPU (wrk's -c and the CPU it is pinned to)
# and CLK_TCK (`getconf CLK_TCK`), traps EXIT to call stop_loader and stop its servers, and traps
# INT/TERM to `exit 130`: bash runs traps only after a foreground child ends, and `timeout`
# moves the loader into a process group of its own (a terminal's Ctrl-C misses it), so loaders
# run in the background and `wait` lets the trap fire at once.
# Messages are prefixed with BENCH_NAME (default: the script's file name).
# shellcheck shell=bash

BENCH_NAME=${BENCH_NAME:-$(basename "$0")}
LOADER_PID=""

bench_die() {
    echo "$BENCH_NAME: $*" >&2
    exit 1
}

# The fields of /proc/PID/stat after "comm) " (comm may hold spaces and parentheses) into the
# array named by `var`: [0] is the state, [1] the ppid, [11] utime, [12] stime. Bash builtins
# only: these run several times per measurement on a loaded machine, where a fork costs ~50 ms.
read_stat() { # pid, var
    local line
    { read -r line <"/proc/$1/stat"; } 2>/dev/null || return 1
    read -ra "$2" <<<"${line##*) }"
}

# True while the process runs (a zombie awaiting `wait` does not count).
alive() { # pid
    local -a st
    read_stat "$1" st && [[ "${st[0]}" != Z ]]
}

# The pid and all its descendants (nginx's master and workers), one per line.
tree_pids() { # pid
    local -A children=() # ppid -> "pid pid ..."
    local -a pids=("$1") st
    local dir pid i=0
    for dir in /proc/[0-9]*; do
        pid=${dir#/proc/}
        read_stat "$pid" st || continue
        children[${st[1]}]+=" $pid"
    done
    while ((i < ${#pids[@]})); do
        # shellcheck disable=SC2206 # pids separated by spaces
        pids+=(${children[${pids[i]}]:-})
        i=$((i + 1))
    done
    printf '%s\n' "${pids[@]}"
}

# utime+stime of a process tree in clock ticks, all threads included (fields 14 and 15 of
# /proc/PID/stat).
cpu_ticks() { # pid
    local pid total=0
    local -a st
    for pid in $(tree_pids "$1"); do
        read_stat "$pid" st || continue
        total=$((total + st[11] + st[12]))
    done
    echo "$total"
}

# Resident set size of a process tree in KiB (sum of VmRSS; pages shared between the
# processes count once per process, which cancels out in a before/after difference).
rss_kib() { # pid
    local pid total=0 key value _
    for pid in $(tree_pids "$1"); do
        while read -r key value _; do
            [[ "$key" == VmRSS: ]] && total=$((total + value))
        done 2>/dev/null <"/proc/$pid/status" || true
    done
    echo "$total"
}

# The kernel's slab memory in KiB (Slab in /proc/meminfo: the whole machine).
slab_kib() {
    local key value _
    while read -r key value _; do
        [[ "$key" == Slab: ]] && echo "$value"
    done </proc/meminfo
    return 0
}

# SIGINT, then 5 s for the process to exit, then SIGKILL for it and every descendant it had.
stop_pid() { # pid, label
    local pid=$1 label=$2 tree
    [[ -n "$pid" ]] || return 0
    if alive "$pid"; then
        tree=$(tree_pids "$pid")
        kill -INT "$pid" 2>/dev/null || true
        for _ in $(seq 50); do
            alive "$pid" || break
            sleep 0.1
        done
        if alive "$pid"; then
            echo "$BENCH_NAME: $label (pid $pid) ignored SIGINT for 5 s, killing it" >&2
            # shellcheck disable=SC2086 # one pid per word
            kill -KILL $tree 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
}

# Stops a load generator started by run_loader (for the EXIT trap).
stop_loader() {
    [[ -n "$LOADER_PID" ]] || return 0
    kill -INT "$LOADER_PID" 2>/dev/null || true
    wait "$LOADER_PID" 2>/dev/null || true
    LOADER_PID=""
}

# Runs a load generator in the background for about `seconds`, killed 30 s after that.
run_loader() { # seconds, command...
    local seconds=$1 rc=0
    shift
    timeout -k 10 $((seconds + 30)) "$@" &
    LOADER_PID=$!
    wait "$LOADER_PID" || rc=$?
    LOADER_PID=""
    return "$rc"
}

# wrk -t1 -c$CONNECTIONS pinned to CLIENT_CPU for `seconds`.
run_wrk() { # seconds, wrk args...
    local seconds=$1
    shift
    run_loader "$seconds" taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNECTIONS" -d"${seconds}s" "$@"
}

# pipe_load (benchmarks/peers/pipe_load.c, built by the caller at $PIPE_LOAD_BIN) pinned to
# CLIENT_CPU for `seconds`, -c$CONNECTIONS, depth 16, no warm-up: takes wrk's URL argument and
# prints wrk's two summary lines.
run_pipe_load() { # seconds, url (http://127.0.0.1:PORT/PATH)
    (($# == 2)) || bench_die "run_pipe_load: takes seconds and one URL, got: $*"
    local seconds=$1 url=$2 rest port path
    [[ "$url" == http://127.0.0.1:* ]] || bench_die "run_pipe_load: not an http://127.0.0.1 URL: $url"
    rest=${url#http://127.0.0.1:}
    port=${rest%%/*}
    path=/${rest#*/}
    [[ "$rest" == */* ]] || path=/
    run_loader "$seconds" taskset -c "$CLIENT_CPU" "$PIPE_LOAD_BIN" -c"$CONNECTIONS" -n16 \
        -d"$seconds" -w0 -p "$path" "$port"
}

# One wrk run against the server `pid`, output in `out`. Sets M_REQUESTS (completed), M_RPS,
# M_TICKS (server tree CPU ticks during the run) and M_US (server CPU us per request).
# Exits when wrk fails, the server dies (printing `errfile`) or no request completed.
# LOADER=run_pipe_load runs pipe_load instead (its only argument: the URL).
wrk_measure() { # pid, label, errfile, out, seconds, wrk args...
    local pid=$1 label=$2 errfile=$3 out=$4 seconds=$5 before after
    shift 5
    before=$(cpu_ticks "$pid")
    "${LOADER:-run_wrk}" "$seconds" "$@" >"$out" 2>&1 ||
        { echo "$BENCH_NAME: ${LOADER:-run_wrk} failed on $label" >&2; cat "$out" >&2; exit 1; }
    if ! alive "$pid"; then
        echo "$BENCH_NAME: the server of $label (pid $pid) died during the run" >&2
        sed 's/^/  /' "$errfile" >&2
        exit 1
    fi
    after=$(cpu_ticks "$pid")
    M_REQUESTS=$(awk '/requests in/ { print $1 }' "$out")
    M_RPS=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
    if [[ -z "$M_REQUESTS" || "$M_REQUESTS" == 0 ]]; then
        echo "$BENCH_NAME: wrk completed no request on $label" >&2
        cat "$out" >&2
        exit 1
    fi
    M_TICKS=$((after - before))
    M_US=$(awk -v r="$M_REQUESTS" -v t="$M_TICKS" -v hz="$CLK_TCK" \
        'BEGIN { printf "%.4f", t / hz * 1e6 / r }')
}

# Prints the last wrk_measure as one line, the label padded to `width`.
measure_line() { # label, width
    awk -v r="$M_REQUESTS" -v rps="$M_RPS" -v t="$M_TICKS" -v hz="$CLK_TCK" -v l="$1" -v w="$2" \
        'BEGIN { printf "  %-*s %9.0f req/s %9d requests  server CPU %6.2fs  %6.3f us/request\n",
                 w, l, rps, r, t / hz, t / hz * 1e6 / r }'
}

# Appends "req/s us/request" of the last wrk_measure to `file`.
measure_record() { # file
    awk -v rps="$M_RPS" -v us="$M_US" 'BEGIN { printf "%.0f %.4f\n", rps, us }' >>"$1"
}

# The median of the numbers on stdin, one per line ("nan" when there is none).
median() {
    sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Waits up to `tries` x 0.1 s for `pattern` in `file` while `pid` runs.
wait_for_line() { # file, pattern, pid, tries
    for _ in $(seq "$4"); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        alive "$3" || break
        sleep 0.1
    done
    grep -q "$2" "$1" 2>/dev/null
}

# Builds benchmarks/peers/bare_loop.c, the bare C liburing loop (the floor the reactor is
# measured against), into `out`.
build_bare_loop() { # out
    local dir
    dir=$(dirname "${BASH_SOURCE[0]}")
    gcc -O2 -o "$1" "$dir/peers/bare_loop.c" -luring
}

# --- servers a script starts; stopped, and $WORK removed, when it exits ----------------------
declare -A SERVER_PID=()  # name -> pid of the process started (nginx: its master)
# shellcheck disable=SC2034 # read by the scripts that source this file
declare -A SERVER_PORT=() # name -> port

stop_server() { # name
    local pid=${SERVER_PID[$1]:-}
    [[ -n "$pid" ]] || return 0
    stop_pid "$pid" "$1"
    unset "SERVER_PID[$1]"
}
cleanup() {
    local name
    stop_loader
    for name in "${!SERVER_PID[@]}"; do
        stop_server "$name"
    done
    rm -rf "$WORK"
}
# bash runs traps only after a foreground child ends, and `timeout` moves wrk into a process group
# of its own (a terminal's Ctrl-C misses it): loaders run in the background and `wait` lets the
# trap fire at once; cleanup then stops the loader and the servers.
install_cleanup() {
    trap cleanup EXIT
    trap 'exit 130' INT TERM
}
