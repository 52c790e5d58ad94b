// SPDX-License-Identifier: MIT
// Server resilience over loopback: running out of descriptors (EMFILE) while accepting, and a
// graceful shutdown in the middle of a steady stream of requests (no read request is lost).
#include <ringwork/http/server.hpp>
#include <ringwork/io/timer.hpp>

#include "helpers.hpp"
#include "log_capture.hpp"
#include "running_server.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <dirent.h>
#include <fcntl.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using ringwork::http::ConnState;
using ringwork::http::Exchange;
using ringwork::http::ServerOptions;
using ringwork::runtime::Task;

namespace {

using test::LogCapture;

/// What a blocking client read for one request.
struct Reply {
    std::string bytes;
    bool complete = false;  ///< a whole response: head and Content-Length body
    bool timed_out = false; ///< the receive timeout passed: the server neither answered nor closed

    [[nodiscard]] std::string_view head() const {
        const auto end = bytes.find("\r\n\r\n");
        return end == std::string::npos ? std::string_view(bytes) : std::string_view(bytes).substr(0, end + 4);
    }
    [[nodiscard]] std::string_view body() const {
        const auto end = bytes.find("\r\n\r\n");
        return end == std::string::npos ? std::string_view() : std::string_view(bytes).substr(end + 4);
    }
    [[nodiscard]] bool ok() const { return complete && bytes.rfind("HTTP/1.1 200 OK\r\n", 0) == 0; }
    [[nodiscard]] bool closes() const { return head().find("\r\nConnection: close\r\n") != std::string_view::npos; }
};

/// Read one response framed by Content-Length, or what came before EOF, a reset or the timeout.
Reply read_reply(int fd) {
    Reply r;
    char buf[4096];
    for (;;) {
        const auto end = r.bytes.find("\r\n\r\n");
        if (end != std::string::npos) {
            const auto cl = r.bytes.find("Content-Length: ");
            const std::size_t len = cl != std::string::npos && cl < end ? std::stoul(r.bytes.substr(cl + 16)) : 0;
            if (r.bytes.size() >= end + 4 + len) {
                r.complete = r.bytes.size() == end + 4 + len; // nothing unasked for follows
                return r;
            }
        }
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n > 0) {
            r.bytes.append(buf, static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        r.timed_out = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
        return r;
    }
}

/// A GET request (built without fmt: the EMFILE children call it while their table is full).
std::string get(std::string_view path, bool close = false) {
    std::string out = "GET ";
    out.append(path);
    out.append(" HTTP/1.1\r\nHost: t\r\n");
    if (close) {
        out.append("Connection: close\r\n");
    }
    out.append("\r\n");
    return out;
}

/// Send GET `path` and read the answer (a failed send gives an empty, incomplete Reply).
Reply request(int fd, std::string_view path) {
    if (!test::write_all(fd, get(path))) {
        return {};
    }
    return read_reply(fd);
}

/// Connect the existing socket `fd` to 127.0.0.1:port (no new descriptor). The connect, and
/// every send and receive on it, give up after `timeout` (a listener that never accepts fills
/// its backlog, and a connect to it would wait for minutes).
bool connect_fd(int fd, std::uint16_t port, std::chrono::seconds timeout = 10s) {
    const timeval tv{static_cast<time_t>(timeout.count()), 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) { // NOLINT: sockaddr API
        return false;
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return true;
}

/// A new client connected to 127.0.0.1:port (5 s timeouts), or -1 with errno set
/// (ECONNREFUSED once the server stopped listening, ECONNRESET when it closed the listener
/// during the handshake).
int try_connect(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    if (!connect_fd(fd, port, 5s)) {
        const int err = errno;
        ::close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

// --- EMFILE ---------------------------------------------------------------------------------

/// The highest descriptor open in this process.
int highest_open_fd() {
    DIR* dir = ::opendir("/proc/self/fd");
    if (dir == nullptr) {
        return 1024;
    }
    const int own = ::dirfd(dir);
    int highest = 2;
    while (const dirent* e = ::readdir(dir)) {
        const int fd = std::atoi(e->d_name); // "." and ".." read as 0
        if (fd != own) {
            highest = std::max(highest, fd);
        }
    }
    ::closedir(dir);
    return highest;
}

/// Set the soft RLIMIT_NOFILE (a forked child only: the test process keeps its own).
bool set_fd_limit(rlim_t soft) {
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) != 0 || soft > lim.rlim_max) {
        return false;
    }
    lim.rlim_cur = soft;
    return ::setrlimit(RLIMIT_NOFILE, &lim) == 0;
}

/// The descriptor limits of a child that runs its server out of descriptors.
///
/// The kernel reads RLIMIT_NOFILE when an accept is submitted, and a multishot accept keeps
/// that value until it ends. So the server's accept is armed under `low` and the table is
/// filled below `low`; then the process gets kSpare more descriptors, above the table, that
/// the armed accept cannot use: the sanitizers' memory checks (a vptr check opens a pipe)
/// need them, and report false errors without them. An accept failure ends the multishot
/// accept: the logger line that reports it (formatted while the room is there) puts `low`
/// back before the server re-arms, so every retry meets the same full table.
struct FdLimits {
    static constexpr rlim_t kSpare = 16;
    rlim_t low;
    [[nodiscard]] bool lower() const { return set_fd_limit(low); }
    [[nodiscard]] bool raise() const { return set_fd_limit(low + kSpare); }
    /// Give the test room while the server's armed accept keeps the low limit: io_uring reads
    /// RLIMIT_NOFILE when the accept is prepared. An epoll accept reads it when it runs, so
    /// there the limit stays low (the test takes no descriptor meanwhile).
    [[nodiscard]] bool raise_past_armed_accept() const { return test::epoll_backend() || raise(); }
};

/// UBSan's vptr check reads an object's vtable through a new pipe the first time it meets a
/// (static type, dynamic type) pair that its cache does not hold; with the table full the pipe
/// fails and it reports a false "invalid vptr". io_uring children keep FdLimits::kSpare for it,
/// but an epoll accept takes any slot under the limit, so there the checks that the server makes
/// while the table is full are met first, while there is room: an error_code compared with an
/// errc (accept_loop) and fmt's buffer (the log lines), the same pairs in the same cache.
void meet_sanitizer_type_checks() {
    const std::error_code system(EMFILE, std::system_category());
    const std::error_code generic(EMFILE, std::generic_category());
    volatile bool same = system == std::errc::operation_canceled || generic == std::errc::operation_canceled;
    volatile std::size_t length = system.message().size() + generic.message().size() +
                                  fmt::format("{} {} {}", "accept failed", 1U, system.message()).size();
    (void)same;
    (void)length;
}

/// Take every free descriptor below the limit (with /dev/null), so that the caller decides
/// exactly how many stay free. Empty unless the last open failed with EMFILE.
std::vector<int> fill_fd_table() {
    meet_sanitizer_type_checks();
    std::vector<int> taken;
    for (;;) {
        const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            if (errno != EMFILE) {
                for (const int t : taken) {
                    ::close(t);
                }
                taken.clear();
            }
            return taken;
        }
        taken.push_back(fd);
    }
}

void close_all(std::vector<int>& fds) {
    for (int& fd : fds) {
        if (fd >= 0) {
            ::close(fd);
        }
        fd = -1;
    }
}

/// A failed check inside a forked child: say what on stderr, exit with `code`.
int child_failure(int code, std::string_view what) {
    fmt::print(stderr, "child check {} failed: {}\n", code, what);
    std::fflush(stderr);
    return code;
}

void answer_path(Exchange& x) { x.response.set_body("ok " + std::string(x.request.raw_path())); }

constexpr std::string_view kAcceptFailed = "accept failed";

/// ServerOptions::logger for an EMFILE child: captures into `log`, and puts the low limit back
/// when an accept failure is reported (see FdLimits).
std::function<void(std::string_view)> emfile_logger(LogCapture& log, FdLimits limits) {
    return [sink = log.sink(), limits](std::string_view line) {
        if (line.find(kAcceptFailed) != std::string_view::npos) {
            (void)limits.lower();
        }
        sink(line);
    };
}

// --- shutdown under a stream --------------------------------------------------------------

/// What the server saw (handler and conn_state, on the reactor thread).
struct ServerSide {
    std::atomic<std::uint64_t> handled{0}; ///< handler calls: requests read and parsed
    std::atomic<std::uint64_t> active{0};  ///< conn_state `active`: the first byte of a request read
    std::atomic<std::uint64_t> opened{0};
    std::atomic<std::uint64_t> closed{0};
    std::atomic<int> held{0};              ///< /hold handlers running
    std::atomic<bool> release{false};      ///< lets the /hold handlers answer
};

/// /hold waits (suspended) until released; every other path answers with itself, every
/// second request after a 1 ms suspension.
Task<> stream_handler(ServerSide* side, Exchange& x) {
    const std::uint64_t n = side->handled.fetch_add(1);
    const std::string path(x.request.raw_path());
    if (path == "/hold") {
        ++side->held;
        for (int i = 0; i < 30000 && !side->release.load(); ++i) {
            co_await ringwork::io::sleep_for(1ms);
        }
        x.response.set_body("held");
        co_return;
    }
    if (n % 2 == 1) {
        co_await ringwork::io::sleep_for(1ms);
    }
    x.response.set_body(path);
}

/// One streaming client's account: every request it sent is either answered (a complete
/// response to it) or unanswered (the connection ended before any byte of an answer).
struct Tally {
    std::uint64_t sent = 0;
    std::uint64_t answered = 0;
    std::uint64_t unanswered = 0;
    std::uint64_t send_failed = 0;  ///< the connection was gone before the request went out
    std::uint64_t torn = 0;         ///< part of a response, then the end: a lost answer
    std::uint64_t wrong = 0;        ///< a complete response that is not 200 with the path as body
    std::uint64_t timeouts = 0;     ///< neither an answer nor a close within 5 s
    std::uint64_t connections = 0;
    std::uint64_t close_answers = 0; ///< answers carrying Connection: close
    int connect_errno = 0;          ///< why the last connect failed (the end of the stream)
    bool overran = false;           ///< still streaming after 30 s
};

/// Send requests one at a time (no pipelining), each after the previous answer, on keep-alive
/// connections that every 8th request asks to close, until the server refuses connections.
void stream_requests(std::uint16_t port, int id, Tally& t) {
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    std::uint64_t seq = 0;
    for (;;) {
        if (std::chrono::steady_clock::now() > deadline) {
            t.overran = true;
            return;
        }
        const int fd = try_connect(port);
        if (fd < 0) {
            t.connect_errno = errno;
            return;
        }
        ++t.connections;
        for (int n = 1;; ++n) {
            const std::string path = fmt::format("/r/{}/{}", id, seq++);
            if (!test::write_all(fd, get(path, n % 8 == 0))) {
                ++t.send_failed;
                break;
            }
            ++t.sent;
            const Reply r = read_reply(fd);
            if (r.timed_out) {
                ++t.timeouts;
                break;
            }
            if (r.bytes.empty()) {
                ++t.unanswered;
                break;
            }
            if (!r.complete) {
                ++t.torn;
                break;
            }
            ++t.answered;
            if (!r.ok() || r.body() != path) {
                ++t.wrong;
            }
            if (r.closes()) {
                ++t.close_answers;
                break;
            }
        }
        ::close(fd);
    }
}

} // namespace

TEST_SUITE("server resilience") {
    TEST_CASE("EMFILE: existing connections are served, one log line, the backlog is served once descriptors free up") {
        const int status = test::run_in_child(
            []() -> int {
                constexpr std::size_t kServed = 3;
                constexpr std::size_t kWaiting = 3;
                const FdLimits limits{static_cast<rlim_t>(highest_open_fd()) + 64};
                if (!limits.lower()) {
                    return child_failure(1, "setrlimit");
                }
                LogCapture log;
                ServerOptions o;
                o.logger = emfile_logger(log, limits);
                test::RunningServer s(o, answer_path);
                const std::uint16_t port = s.port.load();
                // Every path made now: nothing below formats while the table is full.
                std::vector<std::string> served;
                std::vector<std::string> still;
                std::vector<std::string> waiting;
                for (std::size_t k = 0; k < kServed; ++k) {
                    served.push_back(fmt::format("/served/{}", k));
                    still.push_back(fmt::format("/still/{}", k));
                }
                for (std::size_t k = 0; k < kWaiting; ++k) {
                    waiting.push_back(fmt::format("/waiting/{}", k));
                }
                // The clients' sockets exist before the table is full: connecting them later
                // takes no descriptor, so every free slot is the server's.
                std::vector<int> clients;
                for (std::size_t i = 0; i < kServed + kWaiting; ++i) {
                    clients.push_back(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
                    if (clients.back() < 0) {
                        return child_failure(2, "client socket");
                    }
                }
                // The first client is served before the table fills: the accept that took it is
                // in the kernel, under the low limit.
                std::vector<int> filler;
                for (std::size_t k = 0; k < kServed; ++k) {
                    if (k == 1) {
                        filler = fill_fd_table();
                        if (filler.size() < kServed) {
                            return child_failure(3, fmt::format("filled only {} slots", filler.size()));
                        }
                        for (std::size_t i = 1; i < kServed; ++i) { // one free slot per served client
                            ::close(filler.back());
                            filler.pop_back();
                        }
                        if (!limits.raise_past_armed_accept()) {
                            return child_failure(3, "setrlimit");
                        }
                    }
                    if (!connect_fd(clients[k], port)) {
                        return child_failure(4, "connect a served client");
                    }
                    if (!test::eventually([&] { return s.server.stats().connections_accepted == k + 1; })) {
                        return child_failure(5, "a served client was not accepted");
                    }
                    const Reply r = request(clients[k], served[k]);
                    if (!r.ok() || r.body() != "ok " + served[k]) {
                        return child_failure(6, "first request: " + r.bytes);
                    }
                }
                // The table is full. The next clients' handshakes complete into the backlog and
                // their requests wait in their sockets; the server's accept fails with EMFILE.
                for (std::size_t k = 0; k < kWaiting; ++k) {
                    const int fd = clients[kServed + k];
                    if (!connect_fd(fd, port) || !test::write_all(fd, get(waiting[k]))) {
                        return child_failure(7, "connect a waiting client");
                    }
                }
                if (!test::eventually([&] { return log.count(kAcceptFailed) >= 1; }, 5000ms)) {
                    return child_failure(8, "no accept failure logged; log:\n" + log.all());
                }
                // While the table stays full every retry fails again; leave room for a few of
                // them (this only widens the window for a wrong second line: nothing depends on
                // how many retries happen).
                std::this_thread::sleep_for(350ms);
                for (std::size_t k = 0; k < kServed; ++k) { // the established connections still work
                    const Reply r = request(clients[k], still[k]);
                    if (!r.ok() || r.body() != "ok " + still[k]) {
                        return child_failure(9, "request on an established connection: " + r.bytes);
                    }
                }
                for (std::size_t k = 0; k < kWaiting; ++k) { // nobody could accept them yet
                    pollfd p{clients[kServed + k], POLLIN, 0};
                    if (::poll(&p, 1, 0) != 0) {
                        return child_failure(10, "a waiting client got bytes while the table was full");
                    }
                }
                if (s.server.stats().connections_accepted != kServed) {
                    return child_failure(11, "accepted while the table was full");
                }
                // Descriptors free up: two served clients leave (their descriptors and the
                // server's); the waiting clients are accepted and answered, in any order.
                ::close(clients[0]);
                ::close(clients[1]);
                clients[0] = clients[1] = -1;
                for (std::size_t k = 0; k < kWaiting; ++k) {
                    const Reply r = read_reply(clients[kServed + k]);
                    if (!r.ok() || r.body() != "ok " + waiting[k]) {
                        return child_failure(12, fmt::format("waiting client {}: {}", k, r.bytes));
                    }
                }
                if (s.server.stats().connections_accepted != kServed + kWaiting || !limits.raise()) {
                    return child_failure(13, "accepted count after the burst");
                }
                const Reply after = request(clients[2], "/after");
                if (!after.ok() || after.body() != "ok /after") {
                    return child_failure(14, "request after the burst: " + after.bytes);
                }
                // One line for the whole burst, naming the cause.
                if (log.count(kAcceptFailed) != 1 || log.count("Too many open files") != 1) {
                    return child_failure(15, "expected one accept failure line; log:\n" + log.all());
                }
                close_all(clients);
                close_all(filler);
                s.stop();
                return 0;
            },
            60s);
        REQUIRE(status != -1);
        CHECK(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0);
    }

    TEST_CASE("EMFILE is logged even right after a Concurrency 503 was") {
        const int status = test::run_in_child(
            []() -> int {
                const FdLimits limits{static_cast<rlim_t>(highest_open_fd()) + 64};
                if (!limits.lower()) {
                    return child_failure(1, "setrlimit");
                }
                LogCapture log;
                ServerOptions o;
                o.logger = emfile_logger(log, limits);
                o.concurrency = 1;
                test::RunningServer s(o, answer_path);
                const std::uint16_t port = s.port.load();
                std::vector<int> clients; // served, refused with 503, waiting
                for (int i = 0; i < 3; ++i) {
                    clients.push_back(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
                    if (clients.back() < 0) {
                        return child_failure(2, "client socket");
                    }
                }
                if (!connect_fd(clients[0], port) || !request(clients[0], "/a").ok()) {
                    return child_failure(3, "the served client");
                }
                std::vector<int> filler = fill_fd_table();
                if (filler.empty()) {
                    return child_failure(4, "fill");
                }
                ::close(filler.back()); // the slot of the refused connection
                filler.pop_back();
                if (!limits.raise_past_armed_accept()) {
                    return child_failure(4, "setrlimit");
                }
                // The second connection takes the last slot, gets the 503 and is closed: its
                // slot is free again before the client reads the end.
                if (!connect_fd(clients[1], port)) {
                    return child_failure(5, "connect the refused client");
                }
                const std::string refused = test::read_to_eof(clients[1]);
                if (refused.rfind("HTTP/1.1 503 ", 0) != 0) {
                    return child_failure(6, "expected a 503: " + refused);
                }
                if (!test::eventually([&] { return log.count("Concurrency limit") == 1; }, 5000ms)) {
                    return child_failure(7, "no concurrency line; log:\n" + log.all());
                }
                ::close(clients[1]);
                clients[1] = -1;
                if (!limits.lower()) {
                    return child_failure(8, "setrlimit");
                }
                std::vector<int> more = fill_fd_table(); // the client's and the server's slot
                if (more.size() != 2 || !limits.raise_past_armed_accept()) {
                    return child_failure(8, fmt::format("expected 2 free slots, found {}", more.size()));
                }
                filler.insert(filler.end(), more.begin(), more.end());
                if (!connect_fd(clients[2], port) || !test::write_all(clients[2], get("/c"))) {
                    return child_failure(9, "connect the waiting client");
                }
                if (!test::eventually([&] { return log.count(kAcceptFailed) == 1; }, 5000ms)) {
                    return child_failure(10, "the accept failure was not logged; log:\n" + log.all());
                }
                // The served client leaves: the waiting one is accepted and served.
                ::close(clients[0]);
                clients[0] = -1;
                const Reply r = read_reply(clients[2]);
                if (!r.ok() || r.body() != "ok /c" || !limits.raise()) {
                    return child_failure(11, "the waiting client: " + r.bytes);
                }
                close_all(clients);
                close_all(filler);
                s.stop();
                return 0;
            },
            60s);
        REQUIRE(status != -1);
        CHECK(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0);
    }

    TEST_CASE("graceful shutdown during a steady stream: every request is answered or refused unread") {
        constexpr int kStreams = 4;
        constexpr int kHeld = 3;
        ServerSide side;
        ServerOptions o;
        o.close_on_shutdown = true;
        o.conn_state = [&side](int, ConnState state) {
            if (state == ConnState::active) {
                ++side.active;
            } else if (state == ConnState::new_connection) {
                ++side.opened;
            } else if (state == ConnState::closed) {
                ++side.closed;
            }
        };
        test::RunningServer s(o, [&side](Exchange& x) { return stream_handler(&side, x); });
        const std::uint16_t port = s.port.load();

        std::vector<Tally> tallies(kStreams);
        std::vector<std::thread> streams;
        for (int i = 0; i < kStreams; ++i) {
            streams.emplace_back(stream_requests, port, i, std::ref(tallies[static_cast<std::size_t>(i)]));
        }
        REQUIRE(test::eventually([&] { return side.handled.load() >= 200; }));

        // An idle keep-alive connection, and kHeld requests whose handlers are running.
        const int idle = try_connect(port);
        REQUIRE(idle >= 0);
        CHECK(request(idle, "/idle").ok());
        std::vector<int> held;
        for (int i = 0; i < kHeld; ++i) {
            held.push_back(try_connect(port));
            REQUIRE(held.back() >= 0);
            REQUIRE(test::write_all(held.back(), get("/hold")));
        }
        REQUIRE(test::eventually([&] { return side.held.load() == kHeld; }));

        std::atomic<bool> stopped{false};
        std::thread stopper([&] {
            s.stop();
            stopped = true;
        });
        // The idle connection closes at once, without an answer, while the held requests are
        // still in their handlers; the server stops listening meanwhile.
        char byte = 0;
        CHECK(::recv(idle, &byte, 1, 0) == 0);
        CHECK(test::eventually([&] {
            const int fd = try_connect(port);
            if (fd < 0) {
                return errno == ECONNREFUSED;
            }
            ::close(fd);
            return false;
        }));
        CHECK_FALSE(stopped.load()); // it waits for the held requests

        side.release = true;
        for (const int fd : held) {
            const Reply r = read_reply(fd);
            CHECK(r.ok());
            CHECK(r.body() == "held");
            CHECK(r.closes()); // close_on_shutdown: an in-flight answer says so
            CHECK(::recv(fd, &byte, 1, 0) == 0);
        }
        CHECK(test::eventually([&] { return stopped.load(); }));
        stopper.join();
        for (std::thread& t : streams) {
            t.join();
        }

        std::uint64_t answered = 1 + kHeld; // /idle and the held ones
        std::uint64_t unanswered = 0;
        std::uint64_t connections = 0;
        for (const Tally& t : tallies) {
            INFO("sent=" << t.sent << " answered=" << t.answered << " unanswered=" << t.unanswered
                         << " send_failed=" << t.send_failed << " connections=" << t.connections
                         << " close_answers=" << t.close_answers);
            CHECK_FALSE(t.overran);
            // Each stream ended on the closed listener (a handshake it cut short: reset).
            CHECK((t.connect_errno == ECONNREFUSED || t.connect_errno == ECONNRESET));
            CHECK(t.torn == 0);
            CHECK(t.wrong == 0);
            CHECK(t.timeouts == 0);
            CHECK(t.answered > 0);
            CHECK(t.sent == t.answered + t.unanswered);
            answered += t.answered;
            unanswered += t.unanswered;
            connections += t.connections;
        }
        MESSAGE("answered " << answered << ", unanswered (closed before read) " << unanswered << ", connections "
                            << connections);
        // No request was read and then dropped: every request the server began to read, and
        // every one its handler saw, was answered in full.
        CHECK(side.handled.load() == answered);
        CHECK(side.active.load() == answered);
        CHECK(side.opened.load() == side.closed.load());
        ::close(idle);
        for (const int fd : held) {
            ::close(fd);
        }
    }

    /// Clients connect and send while the reactor is held inside a blocking handler, so their
    /// connections wait in the kernel's listen queue; the handler then starts the shutdown
    /// itself (on the reactor thread, before the ring is entered again). Before, closing the
    /// listener reset them unread; now accept_backlog() serves them. Run with the multishot
    /// accept (the ring's final task work takes them into the listener's queue) and with
    /// one-shot accepts (accept4 takes them from the kernel's queue).
    static void backlog_served_on_shutdown(bool one_shot) {
        if (one_shot) {
            ::setenv("RINGWORK_IO_URING_DISABLE", "multishot_accept", 1);
        }
        constexpr int kWaiting = 5;
        std::atomic<bool> blocking{false};
        std::atomic<bool> go{false};
        std::atomic<ringwork::http::Server*> server{nullptr};
        ServerOptions o;
        o.close_on_shutdown = true;
        test::RunningServer s(o, [&](Exchange& x) {
            if (x.request.raw_path() == "/block") {
                blocking = true;
                // Hold the reactor thread (on purpose) until the clients are queued, then
                // begin the shutdown from here.
                const auto until = std::chrono::steady_clock::now() + 10s;
                while (!go.load() && std::chrono::steady_clock::now() < until) {
                    std::this_thread::sleep_for(1ms);
                }
                server.load()->shutdown();
            }
            x.response.set_body(std::string(x.request.raw_path()));
        });
        server = &s.server;
        ::unsetenv("RINGWORK_IO_URING_DISABLE"); // read when the reactor was created
        const std::uint16_t port = s.port.load();
        // A fresh connection that has not sent its request when the shutdown begins.
        const int fresh = try_connect(port);
        REQUIRE(fresh >= 0);
        const int blocker = try_connect(port);
        REQUIRE(blocker >= 0);
        REQUIRE(test::eventually([&] { return s.server.stats().connections_open == 2; }));
        REQUIRE(test::write_all(blocker, get("/block")));
        REQUIRE(test::eventually([&] { return blocking.load(); }));
        std::vector<int> waiting;
        for (int i = 0; i < kWaiting; ++i) {
            waiting.push_back(try_connect(port)); // the kernel completes the handshake
            REQUIRE(waiting.back() >= 0);
            REQUIRE(test::write_all(waiting.back(), get(fmt::format("/w{}", i))));
        }
        go = true;
        const Reply b = read_reply(blocker);
        CHECK(b.ok());
        CHECK(b.closes()); // close_on_shutdown: the shutdown began while it ran
        for (int i = 0; i < kWaiting; ++i) {
            const Reply r = read_reply(waiting[static_cast<std::size_t>(i)]);
            INFO("waiting connection " << i << ": " << r.bytes);
            CHECK(r.ok());
            CHECK(r.body() == fmt::format("/w{}", i));
            CHECK(r.closes());
        }
        // The waiting connections came through accept_backlog() (the first may complete the
        // accept armed before the shutdown), and the server still runs: it waits for the
        // fresh connection's first request.
        const auto backlog = s.server.stats().backlog_accepted;
        CHECK(backlog >= kWaiting - 1);
        CHECK(backlog <= kWaiting);
        REQUIRE(test::write_all(fresh, get("/late")));
        const Reply late = read_reply(fresh);
        CHECK(late.ok());
        CHECK(late.body() == "/late");
        CHECK(late.closes());
        s.stop();
        ::close(fresh);
        ::close(blocker);
        for (const int fd : waiting) {
            ::close(fd);
        }
    }

    TEST_CASE("shutdown serves what waits in the listen backlog, and a new connection's first request") {
        backlog_served_on_shutdown(false);
    }

    TEST_CASE("shutdown serves the kernel's listen backlog (one-shot accepts)") { backlog_served_on_shutdown(true); }

    TEST_CASE("shutdown: a new connection that never sends is closed after header_read_timeout") {
        ServerOptions o;
        o.header_read_timeout = 300ms;
        test::RunningServer s(o, [](Exchange& x) { x.response.set_body("ok"); });
        const int silent = try_connect(s.port.load());
        REQUIRE(silent >= 0);
        const int used = try_connect(s.port.load());
        REQUIRE(used >= 0);
        CHECK(request(used, "/x").ok());
        REQUIRE(test::eventually([&] { return s.server.stats().connections_open == 2; }));
        std::atomic<bool> stopped{false};
        std::thread stopper([&] {
            s.stop();
            stopped = true;
        });
        char byte = 0;
        CHECK(::recv(used, &byte, 1, 0) == 0);   // idle keep-alive: closed at once
        CHECK(::recv(silent, &byte, 1, 0) == 0); // closed by the bound, not left hanging
        CHECK(test::eventually([&] { return stopped.load(); }));
        stopper.join();
        ::close(silent);
        ::close(used);
    }

    TEST_CASE("shutdown(grace) cuts what is still in flight when the grace period ends") {
        LogCapture log;
        std::atomic<int> started{0};
        std::atomic<int> cancelled{0};
        ServerOptions o;
        o.logger = log.sink();
        test::RunningServer s(o, [&](Exchange& x) -> Task<> {
            if (x.request.raw_path() == "/forever") {
                ++started;
                try {
                    co_await ringwork::io::sleep_for(60s); // its stop token ends it at the cut
                } catch (const ringwork::runtime::OperationCancelled&) {
                    ++cancelled;
                    throw;
                }
            }
            x.response.set_body("quick");
        });
        const std::uint16_t port = s.port.load();
        const int slow = try_connect(port);
        REQUIRE(slow >= 0);
        REQUIRE(test::write_all(slow, get("/forever")));
        REQUIRE(test::eventually([&] { return started.load() == 1; }));
        const auto t0 = std::chrono::steady_clock::now();
        s.server.shutdown(300ms);
        const Reply r = read_reply(slow); // 10 s receive timeout: the cut comes well before
        const auto waited = std::chrono::steady_clock::now() - t0;
        CHECK_FALSE(r.timed_out);
        CHECK(r.bytes.empty()); // cut: no answer, the connection closed
        CHECK(waited >= 250ms); // not before the grace period (timer ticks are 1 ms)
        CHECK(cancelled.load() == 1);
        s.stop(); // joins listen_and_serve, which returns once the cut connection is gone
        CHECK(log.count("grace period over: 1 connection(s) cut") == 1);
        ::close(slow);
    }

    TEST_CASE("ServerOptions::shutdown_timeout: requests that finish in time are answered, the rest cut") {
        LogCapture log;
        std::atomic<int> started{0};
        ServerOptions o;
        o.logger = log.sink();
        o.close_on_shutdown = true;
        o.shutdown_timeout = 2s;
        test::RunningServer s(o, [&](Exchange& x) -> Task<> {
            const std::string path(x.request.raw_path());
            ++started;
            co_await ringwork::io::sleep_for(path == "/short" ? 100ms : 60s);
            x.response.set_body(path);
        });
        const std::uint16_t port = s.port.load();
        const int quick = try_connect(port);
        const int slow = try_connect(port);
        REQUIRE(quick >= 0);
        REQUIRE(slow >= 0);
        REQUIRE(test::write_all(quick, get("/short")));
        REQUIRE(test::write_all(slow, get("/long")));
        REQUIRE(test::eventually([&] { return started.load() == 2; }));
        std::thread stopper([&] { s.stop(); });
        const Reply q = read_reply(quick);
        CHECK(q.ok());
        CHECK(q.body() == "/short");
        CHECK(q.closes());
        const Reply l = read_reply(slow);
        CHECK_FALSE(l.timed_out);
        CHECK(l.bytes.empty());
        stopper.join();
        CHECK(log.count("grace period over: 1 connection(s) cut") == 1);
        ::close(quick);
        ::close(slow);
    }

    TEST_CASE("shutdown_timeout must not be negative") {
        ServerOptions o;
        o.shutdown_timeout = -1ms;
        CHECK_THROWS_WITH_AS(ringwork::http::Server{o}, doctest::Contains("ServerOptions.shutdown_timeout"),
                             std::invalid_argument);
    }
}
