#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Measures server CPU time per request of benchmarks/canned_server (the reactor alone) under wrk,
# pipelined x16 and plain keep-alive, optionally against a bare C liburing loop (BARE=1).
#
# Usage: benchmarks/reactor_canned.sh            (from the repository root)
#   DURATION=10   seconds per wrk run          ROUNDS=5      rounds (each runs both scenarios)
#   CONNECTIONS=64                              PORT=8081
#   BUILD_DIR=build                             SERVER_CPU=0  CLIENT_CPU=1
#   BARE=1        also measure a bare C liburing loop (built from the source embedded below)
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
declare -A SERVER_PID=()  # name -> pid
declare -A SERVER_PORT=() # name -> port
WRK_PID=""

# True while the process runs (a zombie awaiting `wait` does not count).
alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ "${stat:0:1}" != Z ]]
}

stop_server() { # name
    local pid=${SERVER_PID[$1]:-}
    [[ -n "$pid" ]] || return 0
    if alive "$pid"; then
        kill -INT "$pid" 2>/dev/null || true
        for _ in $(seq 50); do
            alive "$pid" || break
            sleep 0.1
        done
        if alive "$pid"; then
            echo "reactor_canned.sh: $1 (pid $pid) ignored SIGINT for 5 s, killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
    unset "SERVER_PID[$1]"
}
cleanup() {
    local name
    if [[ -n "$WRK_PID" ]]; then
        kill -INT "$WRK_PID" 2>/dev/null || true
        wait "$WRK_PID" 2>/dev/null || true
    fi
    for name in "${!SERVER_PID[@]}"; do
        stop_server "$name"
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
# bash runs traps only after a foreground child ends, and `timeout` moves wrk into a process group
# of its own (a terminal's Ctrl-C misses it): wrk runs in the background and `wait` lets this trap
# fire at once; cleanup then stops wrk and the servers.
trap 'exit 130' INT TERM

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
    cat >"$WORK/bare.c" <<'EOF'
/* Bare liburing loop: multishot accept, multishot recv into a buffer ring, count CRLFCRLF,
 * answer all owed responses with one send from a prebuilt buffer. No coroutines, no library. */
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NBUF 1024
#define BUFSZ 4096
#define BGID 0
#define MASK (NBUF - 1)
#define MAXFD 65536
enum { OP_ACCEPT = 1, OP_RECV = 2, OP_SEND = 3 };
static const char resp[] =
    "HTTP/1.1 200 OK\r\nServer: R\r\nContent-Length: 13\r\n\r\nHello, World!";
#define RLEN (sizeof resp - 1)
static char batch[RLEN * 64];
static unsigned char state[MAXFD];
static volatile sig_atomic_t stop_flag;
static void on_sig(int s) { (void)s; stop_flag = 1; }
/* The same request-end counter as canned_server.cpp: carried partial match byte by byte,
 * then a Horspool skip for "\r\n\r\n", then the carry from the tail. */
static unsigned count_ends(const char *p, size_t len, unsigned *state) {
    unsigned s = *state, n = 0;
    size_t i = 0;
    for (; s != 0 && i < len; ++i) {
        char c = p[i];
        if (c == '\r') s = s == 2 ? 3 : 1;
        else if (c == '\n' && (s & 1)) { if (s == 3) { ++n; s = 0; } else s = 2; }
        else s = 0;
    }
    if (s != 0) { *state = s; return n; }
    size_t start = i;
    for (size_t j = i + 3; j < len;) {
        char c = p[j];
        if (c == '\n') {
            if (p[j - 1] == '\r' && p[j - 2] == '\n' && p[j - 3] == '\r') {
                ++n;
                start = j + 1;
                j += 4;
            } else {
                j += 2;
            }
        } else j += c == '\r' ? 1 : 4;
    }
    size_t tail = len - start;
    if (tail >= 3 && p[len - 3] == '\r' && p[len - 2] == '\n' && p[len - 1] == '\r') s = 3;
    else if (tail >= 2 && p[len - 2] == '\r' && p[len - 1] == '\n') s = 2;
    else s = (tail >= 1 && p[len - 1] == '\r') ? 1 : 0;
    *state = s;
    return n;
}
static unsigned long long ud(int op, int fd) {
    return ((unsigned long long)op << 32) | (unsigned)fd;
}

static void arm_recv(struct io_uring *r, int fd) {
    struct io_uring_sqe *s = io_uring_get_sqe(r);
    io_uring_prep_recv_multishot(s, fd, NULL, 0, 0);
    s->flags |= IOSQE_BUFFER_SELECT;
    s->buf_group = BGID;
    io_uring_sqe_set_data64(s, ud(OP_RECV, fd));
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 8082;
    for (int i = 0; i < 64; ++i) memcpy(batch + i * RLEN, resp, RLEN);
    struct sigaction sa = {.sa_handler = on_sig}; /* no SA_RESTART: the wait must return EINTR */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(lfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(0x7F000001);
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) || listen(lfd, 4096)) {
        perror("bind/listen");
        return 1;
    }
    struct io_uring r;
    struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
                                         IORING_SETUP_CQSIZE, .cq_entries = 16384};
    if (io_uring_queue_init_params(1024, &r, &p) < 0) { perror("io_uring"); return 1; }
    /* liburing 2.3 has no io_uring_setup_buf_ring: register a page-aligned ring by hand. */
    struct io_uring_buf_ring *br = aligned_alloc(4096, NBUF * sizeof(struct io_uring_buf));
    char *bufs = malloc((size_t)NBUF * BUFSZ);
    if (!br || !bufs) return 1;
    io_uring_buf_ring_init(br);
    struct io_uring_buf_reg reg = {.ring_addr = (unsigned long)br, .ring_entries = NBUF};
    reg.bgid = BGID;
    int err = io_uring_register_buf_ring(&r, &reg, 0);
    if (err) { fprintf(stderr, "buf ring: %s\n", strerror(-err)); return 1; }
    for (int i = 0; i < NBUF; ++i)
        io_uring_buf_ring_add(br, bufs + (size_t)i * BUFSZ, BUFSZ, i, MASK, i);
    io_uring_buf_ring_advance(br, NBUF);
    struct io_uring_sqe *s = io_uring_get_sqe(&r);
    io_uring_prep_multishot_accept(s, lfd, NULL, NULL, 0);
    io_uring_sqe_set_data64(s, ud(OP_ACCEPT, lfd));
    printf("bare listening on %d\n", port);
    fflush(stdout);
    unsigned long long loops = 0, cqes = 0;
    while (!stop_flag) {
        struct io_uring_cqe *cqe;
        ++loops;
        if (io_uring_submit_and_wait(&r, 1) < 0) continue;
        unsigned head, n = 0, added = 0;
        io_uring_for_each_cqe(&r, head, cqe) {
            ++n;
            int op = (int)(cqe->user_data >> 32), res = cqe->res;
            int fd = (int)(cqe->user_data & 0xffffffffu);
            if (op == OP_ACCEPT) {
                if (res >= 0 && res < MAXFD) { state[res] = 0; arm_recv(&r, res); }
                if (!(cqe->flags & IORING_CQE_F_MORE)) {
                    s = io_uring_get_sqe(&r);
                    io_uring_prep_multishot_accept(s, lfd, NULL, NULL, 0);
                    io_uring_sqe_set_data64(s, ud(OP_ACCEPT, lfd));
                }
            } else if (op == OP_RECV) {
                if (res <= 0) {
                    if (res == -ENOBUFS) { arm_recv(&r, fd); continue; }
                    if (!(cqe->flags & IORING_CQE_F_MORE)) close(fd);
                    continue;
                }
                unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
                const char *b = bufs + (size_t)bid * BUFSZ;
                unsigned st = state[fd];
                unsigned owed = count_ends(b, (size_t)res, &st);
                state[fd] = (unsigned char)st;
                io_uring_buf_ring_add(br, (void *)b, BUFSZ, bid, MASK, added++);
                while (owed) {
                    unsigned k = owed < 64 ? owed : 64;
                    s = io_uring_get_sqe(&r);
                    io_uring_prep_send(s, fd, batch, k * RLEN, MSG_NOSIGNAL);
                    io_uring_sqe_set_data64(s, ud(OP_SEND, fd));
                    owed -= k;
                }
                if (!(cqe->flags & IORING_CQE_F_MORE)) arm_recv(&r, fd);
            }
        }
        io_uring_cq_advance(&r, n);
        cqes += n;
        if (added) io_uring_buf_ring_advance(br, added);
    }
    fprintf(stderr, "bare stats: loop_iterations=%llu submit_calls=%llu completions=%llu\n",
            loops, loops, cqes);
    return 0;
}
EOF
    echo "== building the bare liburing loop"
    gcc -O2 -o "$WORK/bare" "$WORK/bare.c" -luring
fi

# --- helpers ---------------------------------------------------------------------------------
# utime+stime of a process in clock ticks (fields 14 and 15; the comm field may hold spaces).
cpu_ticks() {
    local stat
    stat=$(<"/proc/$1/stat")
    stat=${stat##*) }
    # after "comm) ": field 3 is state, so utime/stime are words 12 and 13 here
    awk '{ print $12 + $13 }' <<<"$stat"
}

median() {
    sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

start_server() { # name, port, command...
    local name=$1 port=$2 pid
    shift 2
    taskset -c "$SERVER_CPU" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    pid=$!
    SERVER_PID[$name]=$pid
    SERVER_PORT[$name]=$port
    for _ in $(seq 100); do
        grep -q listening "$WORK/$name.out" 2>/dev/null && break
        alive "$pid" || break
        sleep 0.1
    done
    if ! grep -q listening "$WORK/$name.out" 2>/dev/null; then
        echo "reactor_canned.sh: $name did not start" >&2
        cat "$WORK/$name.err" >&2
        exit 1
    fi
    echo "== $name: pid $pid on CPU $SERVER_CPU, port $port"
    # Warm-up (not reported): connections, buffer ring, page faults.
    run_wrk 1 -s benchmarks/pipeline.lua "http://127.0.0.1:$port/" >/dev/null 2>&1 || true
}

# wrk -t1 -c$CONNECTIONS pinned to CLIENT_CPU for `seconds`, bounded by a timeout (see the trap).
run_wrk() { # seconds, wrk args...
    local seconds=$1 rc=0
    shift
    timeout $((seconds + 30)) taskset -c "$CLIENT_CPU" \
        wrk -t1 -c"$CONNECTIONS" -d"${seconds}s" "$@" &
    WRK_PID=$!
    wait "$WRK_PID" || rc=$?
    WRK_PID=""
    return "$rc"
}

# One wrk run against server `name`; appends "req/s us/request" to $WORK/<name>-<scenario>.
measure() { # name, scenario, wrk args...
    local name=$1 scenario=$2
    shift 2
    local label="$name-$scenario" pid=${SERVER_PID[$name]} before after requests rps ticks
    before=$(cpu_ticks "$pid")
    run_wrk "$DURATION" "$@" "http://127.0.0.1:${SERVER_PORT[$name]}/" >"$WORK/wrk.out" 2>&1 ||
        { echo "reactor_canned.sh: wrk failed against $name" >&2; cat "$WORK/wrk.out" >&2; exit 1; }
    if ! alive "$pid"; then
        echo "reactor_canned.sh: $name (pid $pid) died during the run" >&2
        sed 's/^/  /' "$WORK/$name.err" >&2
        exit 1
    fi
    after=$(cpu_ticks "$pid")
    requests=$(awk '/requests in/ { print $1 }' "$WORK/wrk.out")
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$WORK/wrk.out")
    if [[ -z "$requests" || "$requests" == 0 ]]; then
        echo "reactor_canned.sh: wrk completed no request against $name" >&2
        cat "$WORK/wrk.out" >&2
        exit 1
    fi
    if grep -qE 'Socket errors|Non-2xx' "$WORK/wrk.out"; then
        grep -E 'Socket errors|Non-2xx' "$WORK/wrk.out" | sed 's/^/    wrk: /'
    fi
    ticks=$((after - before))
    awk -v r="$requests" -v rps="$rps" -v t="$ticks" -v hz="$CLK_TCK" -v l="$label" \
        'BEGIN { printf "  %-22s %9.0f req/s %9d requests  server CPU %6.2fs  %6.3f us/request\n",
                 l, rps, r, t / hz, t / hz * 1e6 / r }'
    awk -v r="$requests" -v rps="$rps" -v t="$ticks" -v hz="$CLK_TCK" \
        'BEGIN { printf "%.0f %.4f\n", rps, t / hz * 1e6 / r }' >>"$WORK/$label"
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
