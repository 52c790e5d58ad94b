// SPDX-License-Identifier: MIT
// Test helpers: descriptor limits, blocking loopback clients, bounded waits, child processes.
#pragma once

#include <ringwork/io/socket.hpp>

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <thread>

namespace test {

/// True when the test runs under the epoll backend (the suite's epoll variants set
/// RINGWORK_BACKEND=epoll): a few tests observe io_uring-only behaviour and adapt.
inline bool epoll_backend() {
    const char* v = std::getenv("RINGWORK_BACKEND"); // NOLINT(concurrency-mt-unsafe)
    return v != nullptr && std::string_view(v) == "epoll";
}

/// Raise the soft RLIMIT_NOFILE to `want` (bounded by the hard limit); returns the new soft limit.
inline rlim_t raise_fd_limit(rlim_t want) {
    rlimit lim{};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    lim.rlim_cur = want < lim.rlim_max ? want : lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
    ::getrlimit(RLIMIT_NOFILE, &lim);
    return lim.rlim_cur;
}

/// A blocking TCP client connected to 127.0.0.1:`port` whose reads and writes give up after
/// `timeout`; -1 when the connect failed (no doctest assertion: usable from any thread and
/// from a forked child).
inline int try_connect(std::uint16_t port, std::chrono::seconds timeout = std::chrono::seconds(10)) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    const timeval tv{static_cast<time_t>(timeout.count()), 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) { // NOLINT: sockaddr API
        ::close(fd);
        return -1;
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/// A blocking TCP client connected to 127.0.0.1:port (receive timeout bounds every read).
inline int connect_blocking(std::uint16_t port, int recv_timeout_ms = 10000) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0); // NOLINT
    timeval tv{recv_timeout_ms / 1000, (recv_timeout_ms % 1000) * 1000};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

inline bool write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n <= 0) {
            return false;
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

/// Read exactly n bytes (or fewer on EOF/timeout).
inline std::string read_exactly(int fd, std::size_t n) {
    std::string out;
    out.resize(n);
    std::size_t got = 0;
    while (got < n) {
        const ssize_t r = ::recv(fd, out.data() + got, n - got, 0);
        if (r <= 0) {
            break;
        }
        got += static_cast<std::size_t>(r);
    }
    out.resize(got);
    return out;
}

/// Read until EOF (or the receive timeout); returns every byte received.
inline std::string read_to_eof(int fd) {
    std::string got;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) {
            break;
        }
        got.append(buf, static_cast<std::size_t>(n));
    }
    return got;
}

/// Abort the connection with a RST instead of a FIN.
inline void reset_close(int fd) {
    linger l{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    ::close(fd);
}

/// Run `body` in a forked child; returns the raw wait status, or -1 if it had to be killed
/// after `limit`. The child must _exit; an escaping exception exits 99.
inline int run_in_child(const std::function<int()>& body,
                        std::chrono::seconds limit = std::chrono::seconds(30)) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        int code = 99;
        try {
            code = body();
        } catch (...) {
        }
        ::_exit(code);
    }
    const auto deadline = std::chrono::steady_clock::now() + limit;
    int status = 0;
    while (::waitpid(pid, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > deadline) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            return -1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return status;
}

/// Poll `pred` until true or `limit` passes; returns the last value.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = std::chrono::milliseconds(10000)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > deadline) {
            return pred();
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

/// Lifetime-counting value type (cppcoro's counted.hpp idea).
struct Counted {
    static inline int alive = 0;
    static inline int constructed = 0;
    int value = 0;
    explicit Counted(int v = 0) : value(v) { ++alive, ++constructed; }
    Counted(const Counted& o) : value(o.value) { ++alive, ++constructed; }
    Counted(Counted&& o) noexcept : value(o.value) { ++alive, ++constructed; }
    Counted& operator=(const Counted&) = default;
    Counted& operator=(Counted&&) noexcept = default;
    ~Counted() { --alive; }
};

} // namespace test
