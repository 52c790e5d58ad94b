/* SPDX-License-Identifier: MIT */
/* pipe_load: a lean HTTP/1.1 pipelining load generator on liburing, for the pipelined
 * scenario where one `wrk -t1` thread is the ceiling (benchmarks/suite.sh, docs/benchmarks.md).
 * It does what wrk + benchmarks/pipeline.lua do: every connection writes DEPTH copies of
 * "GET PATH HTTP/1.1\r\nHost: localhost\r\n\r\n" in one send and writes the next batch once
 * all DEPTH answers are in, but with io_uring (one submit per loop, no epoll, no per-answer
 * clock read, no histogram) and a parser that reads only the status line, the line ends and
 * Content-Length. The same program, arguments and pinning serve every server measured.
 *
 * Usage: pipe_load [-c CONNS] [-n DEPTH] [-d SECONDS] [-w WARMUP_SECONDS] [-p PATH] PORT
 * Connects to 127.0.0.1:PORT. Prints wrk's two summary lines ("N requests in S", "Requests/sec:")
 * so scripts read it as they read wrk, plus "Non-2xx or 3xx responses: N" when there were any,
 * and the client's own CPU per request. Exits non-zero when a connection fails, the server
 * closes one, an answer has no Content-Length (chunked answers are not supported) or is not
 * HTTP/1.x with CRLF line ends, or bytes follow the last answer a batch was owed. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RBUF (64 * 1024)
enum { OP_RECV = 0, OP_SEND = 1 };

struct conn {
    int fd;
    char *buf;        /* RBUF bytes: [pos, have) is received and not parsed yet */
    size_t have, pos;
    unsigned pending; /* answers owed for the batch in flight */
    size_t sent;      /* bytes of the batch the kernel took so far */
};

static volatile sig_atomic_t stop_flag;
static void on_sig(int s) { (void)s; stop_flag = 1; }

static char *batch;
static size_t batch_len;
static unsigned depth = 16;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

static void die(const char *what, int err) {
    fprintf(stderr, "pipe_load: %s: %s\n", what, strerror(err));
    exit(1);
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* One answer at p[0, n): its length, 0 when incomplete, -1 when it cannot be framed here. */
static long parse_one(const char *p, size_t n, int *status) {
    if (n < 16) return 0;
    if (memcmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ' || !is_digit(p[9]) || !is_digit(p[10]) ||
        !is_digit(p[11]) || p[12] != ' ')
        return -1;
    *status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    const char *end = p + n;
    const char *nl = memchr(p, '\n', n);
    long length = -1;
    while (nl != NULL) {
        const char *s = nl + 1;
        if (nl == p || nl[-1] != '\r') return -1; /* a bare LF: not framed here */
        if (end - s < 2) return 0;
        if (s[0] == '\r') {
            if (s[1] != '\n') return -1;
            if (length < 0) return -1;
            const char *body = s + 2;
            return end - body < length ? 0 : (long)(body - p) + length;
        }
        nl = memchr(s, '\n', (size_t)(end - s));
        if (nl == NULL) return 0;
        if ((s[0] | 0x20) == 'c' && nl - s > 15 && strncasecmp(s, "content-length:", 15) == 0) {
            const char *d = s + 15;
            while (*d == ' ' || *d == '\t') ++d;
            if (!is_digit(*d)) return -1;
            length = 0;
            while (is_digit(*d) && length < (1L << 40)) length = length * 10 + (*d++ - '0');
        } else if ((s[0] | 0x20) == 't' && nl - s > 18 &&
                   strncasecmp(s, "transfer-encoding:", 18) == 0) {
            return -1;
        }
    }
    return 0;
}

static void *must_alloc(size_t n) {
    void *p = malloc(n);
    if (p == NULL) die("malloc", ENOMEM);
    return p;
}

static struct io_uring ring;

static struct io_uring_sqe *sqe_get(void) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
    if (sqe == NULL) {
        io_uring_submit(&ring);
        sqe = io_uring_get_sqe(&ring);
        if (sqe == NULL) die("io_uring_get_sqe", EBUSY);
    }
    return sqe;
}

static void arm_recv(struct conn *c, unsigned i) {
    struct io_uring_sqe *sqe = sqe_get();
    io_uring_prep_recv(sqe, c->fd, c->buf + c->have, RBUF - c->have, 0);
    io_uring_sqe_set_data64(sqe, ((uint64_t)i << 1) | OP_RECV);
}

static void arm_send(struct conn *c, unsigned i) {
    struct io_uring_sqe *sqe = sqe_get();
    io_uring_prep_send(sqe, c->fd, batch + c->sent, batch_len - c->sent, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, ((uint64_t)i << 1) | OP_SEND);
}

int main(int argc, char **argv) {
    unsigned conns = 64;
    double duration = 10, warmup = 1;
    const char *path = "/plaintext";
    int opt;
    while ((opt = getopt(argc, argv, "c:n:d:w:p:")) != -1) {
        switch (opt) {
        case 'c': conns = atoi(optarg) > 0 ? (unsigned)atoi(optarg) : 0; break;
        case 'n': depth = atoi(optarg) > 0 ? (unsigned)atoi(optarg) : 0; break;
        case 'd': duration = atof(optarg); break;
        case 'w': warmup = atof(optarg); break;
        case 'p': path = optarg; break;
        default:
            fprintf(stderr, "usage: pipe_load [-c CONNS] [-n DEPTH] [-d SECONDS] "
                            "[-w WARMUP_SECONDS] [-p PATH] PORT\n");
            return 2;
        }
    }
    int port = optind == argc - 1 ? atoi(argv[optind]) : 0;
    if (port <= 0 || port > 65535 || conns == 0 || conns > 60000 || depth == 0 || depth > 4096 ||
        duration <= 0 || warmup < 0) {
        fprintf(stderr, "pipe_load: need PORT (1-65535), CONNS 1-60000, DEPTH 1-4096, SECONDS > 0\n");
        return 2;
    }

    char one[512];
    int one_len = snprintf(one, sizeof one, "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", path);
    if (one_len <= 0 || (size_t)one_len >= sizeof one) die("path", ENAMETOOLONG);
    batch_len = (size_t)one_len * depth;
    batch = must_alloc(batch_len);
    for (unsigned k = 0; k < depth; ++k) memcpy(batch + (size_t)k * one_len, one, (size_t)one_len);

    signal(SIGINT, on_sig);
    signal(SIGTERM, on_sig);
    signal(SIGPIPE, SIG_IGN);

    struct conn *cs = must_alloc(conns * sizeof *cs);
    memset(cs, 0, conns * sizeof *cs);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (unsigned i = 0; i < conns; ++i) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) die("socket", errno);
        if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) die("connect", errno);
        int one_flag = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one_flag, sizeof one_flag);
        cs[i].fd = fd;
        cs[i].buf = must_alloc(RBUF);
    }

    struct io_uring_params params = {0};
    params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    unsigned entries = 1;
    while (entries < 4 * conns) entries <<= 1;
    int rc = io_uring_queue_init_params(entries, &ring, &params);
    if (rc == -EINVAL) {
        memset(&params, 0, sizeof params);
        rc = io_uring_queue_init_params(entries, &ring, &params);
    }
    if (rc < 0) die("io_uring_queue_init", -rc);

    for (unsigned i = 0; i < conns; ++i) {
        cs[i].pending = depth;
        arm_send(&cs[i], i);
        arm_recv(&cs[i], i);
    }

    unsigned long long answers = 0, non2xx = 0, bytes = 0;
    int measuring = warmup == 0;
    double t0 = now_s(), c0 = cpu_s();
    double deadline = t0 + (measuring ? duration : warmup);
    for (;;) {
        /* Bounded: the deadline and a signal are seen even when a server stops answering. */
        struct __kernel_timespec wait = {.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000};
        struct io_uring_cqe *first;
        rc = io_uring_submit_and_wait_timeout(&ring, &first, 1, &wait, NULL);
        if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY && rc != -ETIME)
            die("io_uring_enter", -rc);
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&ring, head, cqe) {
            ++seen;
            uint64_t data = cqe->user_data;
            struct conn *c = &cs[data >> 1];
            unsigned i = (unsigned)(data >> 1);
            int res = cqe->res;
            if ((data & 1) == OP_SEND) {
                if (res < 0) die("send", -res);
                c->sent += (size_t)res;
                if (c->sent < batch_len) arm_send(c, i);
                continue;
            }
            if (res <= 0) {
                if (res == 0) {
                    fprintf(stderr, "pipe_load: the server closed connection %u\n", i);
                    exit(1);
                }
                die("recv", -res);
            }
            c->have += (size_t)res;
            bytes += (unsigned long long)res;
            for (;;) {
                int status = 0;
                long len = parse_one(c->buf + c->pos, c->have - c->pos, &status);
                if (len == 0) break;
                if (len < 0) {
                    fprintf(stderr, "pipe_load: an answer without Content-Length (or not HTTP/1.x):"
                                    " %.*s\n", (int)(c->have - c->pos < 200 ? c->have - c->pos : 200),
                            c->buf + c->pos);
                    exit(1);
                }
                c->pos += (size_t)len;
                ++answers;
                if (status < 200 || status > 399) ++non2xx;
                if (--c->pending == 0) {
                    /* The next batch is not sent yet: nothing may follow in this buffer. */
                    if (c->pos != c->have) {
                        fprintf(stderr, "pipe_load: %zu bytes after the last answer owed on"
                                        " connection %u\n", c->have - c->pos, i);
                        exit(1);
                    }
                    c->pending = depth;
                    c->sent = 0;
                    arm_send(c, i);
                }
            }
            if (c->pos == c->have) {
                c->pos = c->have = 0;
            } else if (c->have > RBUF / 2) {
                memmove(c->buf, c->buf + c->pos, c->have - c->pos);
                c->have -= c->pos;
                c->pos = 0;
            }
            if (c->have == RBUF) {
                fprintf(stderr, "pipe_load: an answer longer than %d bytes\n", RBUF);
                exit(1);
            }
            arm_recv(c, i);
        }
        io_uring_cq_advance(&ring, seen);
        if (stop_flag) break;
        double t = now_s();
        if (t < deadline) continue;
        if (measuring) break;
        measuring = 1;
        answers = non2xx = bytes = 0;
        t0 = t;
        c0 = cpu_s();
        deadline = t0 + duration;
    }
    double elapsed = now_s() - t0, cpu = cpu_s() - c0;
    if (!measuring) answers = 0;
    printf("pipe_load: %u connections, depth %u, 127.0.0.1:%d%s\n", conns, depth, port, path);
    printf("  %llu requests in %.2fs, %.2fMB read\n", answers, elapsed, (double)bytes / 1e6);
    if (non2xx > 0) printf("  Non-2xx or 3xx responses: %llu\n", non2xx);
    printf("Requests/sec: %.2f\n", elapsed > 0 ? (double)answers / elapsed : 0.0);
    printf("Client CPU: %.3f us/request\n", answers > 0 ? cpu * 1e6 / (double)answers : 0.0);
    return 0;
}
