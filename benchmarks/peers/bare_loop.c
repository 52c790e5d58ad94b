/* SPDX-License-Identifier: MIT */
/* Bare liburing loop: multishot accept, multishot recv into a buffer ring, count CRLFCRLF,
 * answer all owed responses with one send from a prebuilt buffer. No coroutines, no library.
 * The floor that ringwork's reactor is measured against: benchmarks/reactor_canned.sh (BARE=1)
 * and benchmarks/suite.sh build it with lib.sh's build_bare_loop. Usage: bare_loop [PORT]. */
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
