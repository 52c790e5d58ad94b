// SPDX-License-Identifier: MIT
// canned_server: the reactor alone (no HTTP parsing) answers each request end "\r\n\r\n" with a
// fixed response, all answers owed after one receive in a single send
// (benchmarks/reactor_canned.sh).
#include <ringwork/ringwork.hpp>

#include <fmt/format.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <poll.h>
#include <signal.h>
#include <string>
#include <string_view>
#include <sys/signalfd.h>
#include <unistd.h>
#include <utility>

namespace {

constexpr std::string_view kResponse = "HTTP/1.1 200 OK\r\n"
                                       "Server: R\r\n"
                                       "Content-Length: 13\r\n"
                                       "\r\n"
                                       "Hello, World!";
constexpr std::size_t kBatch = 64; ///< responses in the prebuilt buffer: one send covers them

/// kBatch copies of kResponse back to back; a send of `n` answers is a prefix of it.
const std::string& response_batch() {
    static const std::string batch = [] {
        std::string s;
        s.reserve(kResponse.size() * kBatch);
        for (std::size_t i = 0; i < kBatch; ++i) {
            s += kResponse;
        }
        return s;
    }();
    return batch;
}

/// Advance the terminator automaton by one byte; returns true when "\r\n\r\n" completes.
/// `s` is how many bytes of the terminator the input so far ends with (0-3).
constexpr bool step(unsigned& s, char c) noexcept {
    if (c == '\r') {
        s = (s == 2) ? 3 : 1;
    } else if (c == '\n' && (s & 1U) != 0) {
        if (s == 3) {
            s = 0;
            return true;
        }
        s = 2;
    } else {
        s = 0;
    }
    return false;
}

/// Count request ends ("\r\n\r\n") across buffer boundaries; `state` carries how many bytes
/// of the terminator the previous buffer ended with. Finishes a carried partial match byte by
/// byte, then skips through the buffer Horspool-style (shift 4 past ordinary bytes, 2 past a
/// lone '\n', 1 past '\r'), and derives the carry for the next buffer from the tail.
std::size_t count_request_ends(std::string_view bytes, unsigned& state) noexcept {
    const char* p = bytes.data();
    const std::size_t len = bytes.size();
    std::size_t n = 0;
    std::size_t i = 0;
    unsigned s = state;
    for (; s != 0 && i < len; ++i) {
        n += step(s, p[i]) ? 1 : 0;
    }
    if (s != 0) {
        state = s;
        return n;
    }
    std::size_t start = i; // no terminator is pending before here
    for (std::size_t j = i + 3; j < len;) {
        const char c = p[j];
        if (c == '\n') {
            if (p[j - 1] == '\r' && p[j - 2] == '\n' && p[j - 3] == '\r') {
                ++n;
                start = j + 1;
                j += 4;
            } else {
                j += 2;
            }
        } else {
            j += (c == '\r') ? 1 : 4;
        }
    }
    const std::size_t tail = len - start;
    if (tail >= 3 && p[len - 3] == '\r' && p[len - 2] == '\n' && p[len - 1] == '\r') {
        state = 3;
    } else if (tail >= 2 && p[len - 2] == '\r' && p[len - 1] == '\n') {
        state = 2;
    } else {
        state = (tail >= 1 && p[len - 1] == '\r') ? 1 : 0;
    }
    return n;
}

ringwork::Task<> serve(ringwork::io::Socket socket) {
    const std::string& batch = response_batch();
    unsigned state = 0;
    for (;;) {
        auto lease = co_await socket.recv();
        if (!lease || lease->empty()) {
            break;
        }
        std::size_t owed = count_request_ends(lease->view(), state);
        lease->release();
        bool ok = true;
        while (owed > 0 && ok) {
            const std::size_t n = owed < kBatch ? owed : kBatch;
            ok = static_cast<bool>(
                co_await socket.send(std::string_view(batch.data(), n * kResponse.size())));
            owed -= n;
        }
        if (!ok) {
            break;
        }
    }
    co_await socket.close();
}

ringwork::Task<> accept_loop(ringwork::io::Listener& listener) {
    const ringwork::StopToken stop = ringwork::Reactor::current()->stop_token();
    while (!stop.stop_requested()) {
        auto socket = co_await listener.accept();
        if (socket) {
            ringwork::spawn(serve(std::move(*socket)));
        }
    }
    co_await listener.close();
}

/// Wait for SIGINT/SIGTERM on a signalfd through the ring, then stop the reactor.
ringwork::Task<> stop_on_signal(int signal_fd) {
    const auto ready = co_await ringwork::io::PollFd(signal_fd, POLLIN);
    if (ready) {
        signalfd_siginfo info{};
        [[maybe_unused]] const auto n = ::read(signal_fd, &info, sizeof info);
        fmt::print(stderr, "canned_server: signal {} received, stopping\n", info.ssi_signo);
    }
    ringwork::Reactor::current()->stop();
}

[[noreturn]] void usage(int code) {
    fmt::print(code == 0 ? stdout : stderr, "usage: canned_server [--port N]\n"
                                            "  --port N   port on 127.0.0.1 (default 8081)\n");
    std::exit(code); // NOLINT(concurrency-mt-unsafe)
}

std::uint16_t parse_port(int argc, char** argv) {
    unsigned long port = 8081;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i]; // NOLINT
        if (arg == "--help" || arg == "-h") {
            usage(0);
        } else if (arg == "--port" && i + 1 < argc) {
            const char* text = argv[++i]; // NOLINT
            char* end = nullptr;
            port = std::strtoul(text, &end, 10);
            if (end == text || *end != '\0' || port > 65535) {
                fmt::print(stderr, "canned_server: invalid port {}\n", text);
                std::exit(2); // NOLINT(concurrency-mt-unsafe)
            }
        } else {
            fmt::print(stderr, "canned_server: unknown or incomplete option {}\n", arg);
            usage(2);
        }
    }
    return static_cast<std::uint16_t>(port);
}

} // namespace

int main(int argc, char** argv) {
    const std::uint16_t port = parse_port(argc, argv);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    ::pthread_sigmask(SIG_BLOCK, &mask, nullptr);
    const int signal_fd = ::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (signal_fd < 0) {
        fmt::print(stderr, "canned_server: signalfd: {}\n", std::strerror(errno)); // NOLINT
        return 1;
    }
    try {
        ringwork::Reactor reactor;
        auto listener = ringwork::io::Listener::bind(ringwork::io::SocketAddress::loopback(port));
        fmt::print("canned_server listening on http://{}/ ({})\n",
                   listener.local_address().to_string(), reactor.features().describe());
        std::fflush(stdout);
        reactor.spawn(stop_on_signal(signal_fd));
        reactor.spawn(accept_loop(listener));
        reactor.run();
        const ringwork::io::ReactorStats s = reactor.stats();
        fmt::print(stderr,
                   "canned_server stats: loop_iterations={} submit_calls={} sqes_submitted={} "
                   "completions={} buffers_leased={} buffer_ring_exhausted={} multishot_rearms={} "
                   "spare_buffer_allocs={} cq_overflows={} resumed={} timers_fired={}\n",
                   s.loop_iterations, s.submit_calls, s.sqes_submitted, s.completions,
                   s.buffers_leased, s.buffer_ring_exhausted, s.multishot_rearms,
                   s.spare_buffer_allocs, s.cq_overflows, s.resumed, s.timers_fired);
    } catch (const std::exception& e) {
        fmt::print(stderr, "canned_server: {}\n", e.what());
        ::close(signal_fd);
        return 1;
    }
    ::close(signal_fd);
    return 0;
}
