// SPDX-License-Identifier: MIT
// Adversarial clients over loopback (issue 8): slowloris, a connection flood against
// Concurrency, request smuggling over the wire, resets and half-closes, a client that stops
// reading, oversized heads and bodies, and handlers that throw, hang or allocate a lot.
#include <ringwork/http/server.hpp>
#include <ringwork/io/error.hpp>
#include <ringwork/io/timer.hpp>
#include <ringwork/web/app.hpp>
#include <ringwork/web/context.hpp>
#include <ringwork/web/middleware.hpp>

#include "helpers.hpp"
#include "log_capture.hpp"
#include "http_reader.hpp"
#include "running_server.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <doctest/doctest.h>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using ringwork::http::Exchange;
using ringwork::http::ServerOptions;
using ringwork::runtime::Task;

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kConcurrencyBody =
    "The connection cannot be served because Server.Concurrency limit exceeded";

using test::LogCapture;

/// Options of every server here: quiet, and a teardown that cannot hang on a failed test
/// (whatever is still in flight 5 s into the shutdown is cut).
ServerOptions options(LogCapture& log) {
    ServerOptions o;
    o.logger = log.sink();
    o.shutdown_timeout = 5s;
    return o;
}

/// Make sure the process may open `want` descriptors: when the soft RLIMIT_NOFILE is lower,
/// raise it to the hard limit (never lower it). Returns the soft limit in force.
rlim_t ensure_fd_limit(rlim_t want) {
    rlimit lim{};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    if (lim.rlim_cur < want) {
        lim.rlim_cur = lim.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &lim);
        ::getrlimit(RLIMIT_NOFILE, &lim);
    }
    return lim.rlim_cur;
}

using test::try_connect;

/// Everything a connection delivered until it ended, and how it ended.
struct Ending {
    std::string bytes;
    bool eof = false;       ///< an orderly end (FIN)
    bool reset = false;     ///< ECONNRESET / EPIPE
    bool timed_out = false; ///< the receive timeout passed with the connection still open
};

Ending read_until_end(int fd) {
    Ending e;
    char buf[16384];
    for (;;) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n > 0) {
            e.bytes.append(buf, static_cast<std::size_t>(n));
            continue;
        }
        if (n == 0) {
            e.eof = true;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            e.timed_out = true;
        } else {
            e.reset = true;
        }
        return e;
    }
}

/// One response of a byte stream, framed by its Content-Length.
struct Answer {
    int status = 0;
    std::string head;
    std::string body;
    [[nodiscard]] bool closes() const {
        return head.find("\r\nConnection: close\r\n") != std::string::npos;
    }
};

/// The whole responses at the start of `bytes`, in order; `rest` gets what follows them
/// (an incomplete response or garbage).
std::vector<Answer> split_answers(std::string_view bytes, std::string* rest) {
    std::vector<Answer> out;
    for (;;) {
        const auto end = bytes.find("\r\n\r\n");
        if (end == std::string_view::npos || bytes.rfind("HTTP/1.1 ", 0) != 0 || end < 12) {
            break;
        }
        Answer a;
        a.head = std::string(bytes.substr(0, end + 4));
        a.status = std::atoi(a.head.c_str() + 9);
        const auto cl = a.head.find("\r\nContent-Length: ");
        const std::size_t len = cl == std::string::npos ? 0 : std::stoul(a.head.substr(cl + 18));
        if (bytes.size() < end + 4 + len) {
            break;
        }
        a.body = std::string(bytes.substr(end + 4, len));
        bytes.remove_prefix(end + 4 + len);
        out.push_back(std::move(a));
    }
    if (rest != nullptr) {
        *rest = std::string(bytes);
    }
    return out;
}

std::string get(std::string_view path) {
    return fmt::format("GET {} HTTP/1.1\r\nHost: t\r\n\r\n", path);
}

/// What the site's handler saw (written on the reactor thread, read by the test).
struct Site {
    std::atomic<std::uint64_t> handled{0};
    std::atomic<std::uint64_t> smuggled{0};   ///< /smuggled reached the handler (never should)
    std::atomic<std::uint64_t> unfinished{0}; ///< /half or /body reached the handler (never should)
    std::atomic<std::uint64_t> streams_started{0};
    std::atomic<std::uint64_t> streams_ended{0};
    std::atomic<std::uint64_t> streams_cut{0}; ///< ended before kStreamChunks: the client was gone
    std::atomic<std::uint64_t> allocations{0};
};

constexpr std::size_t kStreamChunk = 64 * 1024;
/// 128 MiB: far more than the socket buffers of both ends hold (tcp_wmem/rmem max 4/32 MiB).
constexpr std::size_t kStreamChunks = 2048;
constexpr std::size_t kBigAlloc = 64U << 20;

/// /stream?chunks=N: writes N (default kStreamChunks) chunks of kStreamChunk bytes with
/// Exchange::write, stopping when a write says the client is gone (or the handler's stop
/// token cancels it).
Task<> stream_body(Site* site, Exchange& x) {
    ++site->streams_started;
    const auto asked = x.request.query("chunks");
    const std::size_t chunks = asked ? std::stoul(std::string(*asked)) : kStreamChunks;
    const std::string chunk(kStreamChunk, 's');
    std::size_t written = 0;
    try {
        for (; written < chunks; ++written) {
            auto w = x.write(chunk); // NOTE: a named task, GCC PR100611
            const bool sent = co_await w;
            if (!sent) {
                break;
            }
        }
    } catch (const ringwork::runtime::OperationCancelled&) {
        // The client reset: the server answers nobody; ending normally is fine.
    }
    if (written < chunks) {
        ++site->streams_cut;
    }
    ++site->streams_ended;
}

/// Every other path answers "<method> <path>[ <body>]".
Task<> site_handler(Site* site, Exchange& x) {
    ++site->handled;
    const std::string path(x.request.raw_path());
    if (path == "/stream") {
        auto s = stream_body(site, x);
        co_await s;
        co_return;
    }
    if (path == "/throw") {
        throw std::runtime_error("an adversarial handler failure");
    }
    if (path == "/throw-int") {
        throw 42; // NOLINT: a non-standard exception on purpose
    }
    if (path == "/alloc") {
        // 64 MiB touched page by page, a checksum over it: the allocation is really used.
        std::string big(kBigAlloc, '\0');
        std::uint64_t sum = 0;
        for (std::size_t i = 0; i < big.size(); i += 4096) {
            big[i] = static_cast<char>(i / 4096);
            sum += static_cast<unsigned char>(big[i]);
        }
        ++site->allocations;
        x.response.set_body(fmt::format("{} {}", big.size(), sum));
        co_return;
    }
    if (path == "/alloc-body") {
        x.response.set_body(std::string(16U << 20, 'b')); // a 16 MiB answer, copied out
        co_return;
    }
    if (path == "/smuggled") {
        ++site->smuggled;
    }
    if (path == "/half" || path == "/body") {
        ++site->unfinished;
    }
    const std::string_view body = x.request.body();
    x.response.set_body(body.empty()
                            ? fmt::format("{} {}", x.request.method_text(), path)
                            : fmt::format("{} {} {}", x.request.method_text(), path, body));
}

/// A test::RunningServer serving site_handler for `site`.
class SiteServer : public test::RunningServer {
public:
    SiteServer(ServerOptions o, Site& site)
        : test::RunningServer(std::move(o),
                              [s = &site](Exchange& x) { return site_handler(s, x); }) {}
};

/// Send GET `path` on a keep-alive connection and read its answer.
std::optional<Answer> round_trip(int fd, test::ResponseReader& reader, std::string_view path) {
    if (!test::write_all(fd, get(path))) {
        return std::nullopt;
    }
    std::string rest;
    auto answers = split_answers(reader.next(), &rest);
    if (answers.size() != 1 || !rest.empty()) {
        return std::nullopt;
    }
    return std::move(answers.front());
}

/// One request on a new connection; the answer's status (0: none).
int fresh_status(std::uint16_t port, std::string_view path) {
    const int fd = try_connect(port);
    if (fd < 0) {
        return 0;
    }
    test::ResponseReader reader(fd);
    const auto a = round_trip(fd, reader, path);
    ::close(fd);
    return a ? a->status : 0;
}

} // namespace

TEST_SUITE("http adversarial") {

    // --- slowloris -------------------------------------------------------------------------

    TEST_CASE("slowloris: 500 connections dripping a head all get 408 and EOF; a normal client is "
              "served in order") {
        constexpr std::size_t kLoris = 500;
        constexpr auto kHeaderTimeout = 1000ms;
        constexpr auto kDrip = 250ms;
        constexpr std::uint64_t kMinRequests = 200;
        constexpr std::uint64_t kMaxRequests = 100000; // the dripper's 30 s deadline ends it first
        constexpr auto kPace = 1ms;                    // a client, not a load generator
        // kLoris client and kLoris server descriptors live in this one process.
        REQUIRE_MESSAGE(ensure_fd_limit(2 * kLoris + 256) >= 2 * kLoris + 256,
                        "RLIMIT_NOFILE's hard limit is too low");
        const auto t0 = Clock::now();

        LogCapture log;
        Site site;
        ServerOptions o = options(log);
        o.header_read_timeout = kHeaderTimeout;
        // The 408 is followed by a lingering read of what the client still drips; a long
        // linger means a busy test thread never meets a reset instead of the 408.
        o.linger_timeout = 10s;
        SiteServer s(o, site);
        const std::uint16_t port = s.port.load();

        // A head that dripping cannot complete: 400 bytes at one per kDrip take 100 s.
        const std::string head =
            "GET /loris HTTP/1.1\r\nHost: t\r\nX-Drip: " + std::string(400, 'd');
        struct Loris {
            int fd = -1;
            std::string got;
            std::size_t sent = 0;
            bool eof = false;
            bool reset = false;
        };
        std::vector<Loris> lorises(kLoris);
        for (Loris& l : lorises) {
            l.fd = try_connect(port);
            REQUIRE(l.fd >= 0);
            // Its first byte at once: a connection that sends nothing for header_read_timeout
            // after the accept is closed without a 408, and connecting 500 can take that long.
            REQUIRE(::send(l.fd, head.data(), 1, MSG_NOSIGNAL) == 1);
            l.sent = 1;
        }
        REQUIRE(test::eventually([&] { return s.server.stats().connections_open == kLoris; }));

        std::atomic<std::size_t> lorises_open{kLoris};
        std::atomic<bool> attack_over{false};
        std::atomic<bool> dripping{false};
        std::thread dripper([&] {
            const auto deadline = Clock::now() + 30s;
            std::size_t open = kLoris;
            char buf[1024];
            while (open != 0 && Clock::now() < deadline) {
                for (Loris& l : lorises) {
                    if (l.fd < 0) {
                        continue;
                    }
                    for (;;) { // whatever the server sent so far
                        const ssize_t n = ::recv(l.fd, buf, sizeof buf, MSG_DONTWAIT);
                        if (n > 0) {
                            l.got.append(buf, static_cast<std::size_t>(n));
                            continue;
                        }
                        if (n == 0) {
                            l.eof = true;
                        } else if (errno == EINTR) {
                            continue;
                        } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
                            l.reset = true;
                        }
                        break;
                    }
                    if (l.eof || l.reset) {
                        ::close(l.fd);
                        l.fd = -1;
                        lorises_open.store(--open);
                        continue;
                    }
                    if (l.sent < head.size() &&
                        ::send(l.fd, head.data() + l.sent, 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1) {
                        ++l.sent; // a failed send: the next pass reads how the connection ended
                    }
                }
                dripping = true;
                std::this_thread::sleep_for(kDrip);
            }
            attack_over = true;
        });

        // The normal client: sequential keep-alive requests kPace apart, each body carrying its
        // number, from the first drip until every loris is gone (at least kMinRequests).
        REQUIRE(test::eventually([&] { return dripping.load(); }));
        std::uint64_t answered = 0;
        std::uint64_t answered_under_attack = 0;
        std::string first_wrong;
        {
            const int fd = try_connect(port);
            REQUIRE(fd >= 0);
            test::ResponseReader reader(fd);
            for (std::uint64_t i = 0; i < kMaxRequests && (i < kMinRequests || !attack_over.load());
                 ++i) {
                const auto a = round_trip(fd, reader, fmt::format("/seq/{}", i));
                if (!a || a->status != 200 || a->body != fmt::format("GET /seq/{}", i)) {
                    first_wrong = a ? a->head + a->body : "no answer";
                    break;
                }
                ++answered;
                if (lorises_open.load() == kLoris) {
                    ++answered_under_attack;
                }
                std::this_thread::sleep_for(kPace);
            }
            ::close(fd);
        }
        dripper.join();

        std::size_t got408 = 0;
        std::size_t other = 0;
        std::size_t max_sent = 0;
        std::string other_sample;
        for (const Loris& l : lorises) {
            std::string rest;
            const auto answers = split_answers(l.got, &rest);
            max_sent = std::max(max_sent, l.sent);
            if (l.fd < 0 && answers.size() == 1 && answers[0].status == 408 &&
                answers[0].closes() && rest.empty() && l.eof) {
                ++got408;
            } else {
                ++other;
                other_sample =
                    fmt::format("fd={} eof={} reset={} bytes: {}", l.fd, l.eof, l.reset, l.got);
            }
        }
        for (Loris& l : lorises) {
            if (l.fd >= 0) {
                ::close(l.fd);
            }
        }
        INFO("first wrong answer of the normal client: " << first_wrong);
        INFO("a loris that did not end with 408 + EOF: " << other_sample);
        CHECK(first_wrong.empty());
        CHECK(answered >= kMinRequests);
        CHECK(got408 == kLoris); // every one closed by the server, with its 408 first
        CHECK(other == 0);
        CHECK(max_sent < head.size()); // no head was ever complete: the timeout closed them all
        CHECK(test::eventually([&] { return s.server.stats().connections_open == 0; }));
        const auto st = s.server.stats();
        CHECK(st.parse_errors == kLoris); // the 408s, nothing else
        CHECK(st.requests == answered);   // only the normal client's requests were parsed
        CHECK(site.handled.load() == answered);
        MESSAGE("slowloris: "
                << kLoris << " connections, " << got408 << " got 408 + EOF, at most " << max_sent
                << " bytes dripped each; normal client: " << answered << " answers in order ("
                << answered_under_attack << " while all " << kLoris << " lorises were open); "
                << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count()
                << " ms");
    }

    // --- connection flood ------------------------------------------------------------------

    TEST_CASE("connection flood: 20,000 attempts against Concurrency=1000: 1,000 served, the rest "
              "503 + EOF, then back to normal") {
        constexpr std::size_t kConcurrency = 1000;
        constexpr std::size_t kAttempts = 20000; // 19,000 over the limit: within 32768-60999
        constexpr int kFloodThreads = 4;
        REQUIRE_MESSAGE(ensure_fd_limit(2 * kConcurrency + 256) >= 2 * kConcurrency + 256,
                        "RLIMIT_NOFILE's hard limit is too low");
        const auto t0 = Clock::now();

        LogCapture log;
        Site site;
        ServerOptions o = options(log);
        o.concurrency = kConcurrency;
        SiteServer s(o, site);
        const std::uint16_t port = s.port.load();

        // Hold the limit: kConcurrency connections, each answered once and kept alive.
        std::vector<int> held;
        std::size_t held_ok = 0;
        for (std::size_t i = 0; i < kConcurrency; ++i) {
            const int fd = try_connect(port);
            REQUIRE(fd >= 0);
            held.push_back(fd);
            test::ResponseReader reader(fd);
            const auto a = round_trip(fd, reader, fmt::format("/held/{}", i));
            held_ok += a && a->status == 200 && a->body == fmt::format("GET /held/{}", i) ? 1 : 0;
        }
        CHECK(held_ok == kConcurrency);
        REQUIRE(
            test::eventually([&] { return s.server.stats().connections_open == kConcurrency; }));

        // The flood: connect, read to the end, close; from kFloodThreads threads.
        struct Tally {
            std::size_t refused = 0; ///< the 503 with its body, then EOF
            std::size_t served = 0;  ///< a 200 (impossible while the limit is held)
            std::size_t connect_failed = 0;
            std::size_t other = 0;
            std::string sample;
        };
        std::atomic<std::size_t> next{kConcurrency};
        std::vector<Tally> tallies(kFloodThreads);
        std::vector<std::thread> flood;
        for (int t = 0; t < kFloodThreads; ++t) {
            flood.emplace_back([&, t] {
                Tally& tally = tallies[static_cast<std::size_t>(t)];
                while (next.fetch_add(1) < kAttempts) {
                    const int fd = try_connect(port);
                    if (fd < 0) {
                        ++tally.connect_failed;
                        tally.sample = fmt::format("connect: errno {}", errno);
                        continue;
                    }
                    const Ending e = read_until_end(fd);
                    ::close(fd);
                    std::string rest;
                    const auto answers = split_answers(e.bytes, &rest);
                    if (e.eof && rest.empty() && answers.size() == 1 && answers[0].status == 503 &&
                        answers[0].body == kConcurrencyBody && answers[0].closes()) {
                        ++tally.refused;
                    } else if (answers.size() == 1 && answers[0].status == 200) {
                        ++tally.served;
                    } else {
                        ++tally.other;
                        tally.sample = fmt::format("eof={} reset={} timed_out={} bytes: {}", e.eof,
                                                   e.reset, e.timed_out, e.bytes);
                    }
                }
            });
        }
        for (std::thread& t : flood) {
            t.join();
        }
        const auto flood_done = Clock::now();
        Tally total;
        for (const Tally& t : tallies) {
            total.refused += t.refused;
            total.served += t.served;
            total.connect_failed += t.connect_failed;
            total.other += t.other;
            if (!t.sample.empty()) {
                total.sample = t.sample;
            }
        }
        INFO("a flood attempt that was neither refused nor served: " << total.sample);
        // Every attempt is accounted for: the held ones were served, the rest refused.
        CHECK(held_ok + total.served + total.refused == kAttempts);
        CHECK(total.refused == kAttempts - kConcurrency);
        CHECK(total.served == 0);
        CHECK(total.connect_failed == 0);
        CHECK(total.other == 0);
        CHECK(test::eventually(
            [&] { return s.server.stats().rejected_concurrency == total.refused; }));
        CHECK(s.server.stats().connections_open == kConcurrency);
        CHECK(log.count("Concurrency limit (1000) exceeded") >= 1); // logged once a minute at most

        // The held connections were not disturbed: each answers a second request.
        std::size_t again_ok = 0;
        for (std::size_t i = 0; i < held.size(); ++i) {
            test::ResponseReader reader(held[i]);
            const auto a = round_trip(held[i], reader, fmt::format("/again/{}", i));
            again_ok += a && a->status == 200 && a->body == fmt::format("GET /again/{}", i) ? 1 : 0;
        }
        CHECK(again_ok == kConcurrency);

        // Release them: as soon as the server has closed them, new connections are served.
        for (const int fd : held) {
            ::close(fd);
        }
        REQUIRE(test::eventually([&] {
            return s.server.stats().connections_open == 0 && s.server.open_connections() == 0;
        }));
        const std::uint64_t rejected_before = s.server.stats().rejected_concurrency;
        std::size_t fresh_ok = 0;
        for (int i = 0; i < 20; ++i) {
            fresh_ok += fresh_status(port, fmt::format("/fresh/{}", i)) == 200 ? 1 : 0;
        }
        CHECK(fresh_ok == 20);
        CHECK(s.server.stats().rejected_concurrency == rejected_before);
        MESSAGE(
            "flood: "
            << kAttempts << " attempts: " << held_ok << " served, " << total.refused << " got 503, "
            << "rejected_concurrency " << s.server.stats().rejected_concurrency << "; flood phase "
            << std::chrono::duration_cast<std::chrono::milliseconds>(flood_done - t0).count()
            << " ms, whole test "
            << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count()
            << " ms");
    }

    // --- request smuggling over the wire ---------------------------------------------------

    TEST_CASE("smuggling: one 4xx/501 and EOF for every ambiguous framing; the pipelined request "
              "is never answered") {
        struct Case {
            const char* name;
            std::string request; // followed by a pipelined GET /smuggled
            int status;
        };
        const std::string post = "POST /first HTTP/1.1\r\nHost: t\r\n";
        const std::string te = post + "Transfer-Encoding: chunked\r\n\r\n";
        const std::vector<Case> cases = {
            // Content-Length and Transfer-Encoding together, in either order.
            {"CL then TE",
             post + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
            {"TE then CL",
             post + "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n", 400},
            {"TE then CL 0",
             post +
                 "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
             400},
            // Content-Length disagreeing with itself or malformed.
            {"two differing CL headers",
             post + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400},
            {"one CL list that disagrees", post + "Content-Length: 5, 6\r\n\r\nhello!", 400},
            {"CL with a sign", post + "Content-Length: +5\r\n\r\nhello", 400},
            {"CL in hex", post + "Content-Length: 0x5\r\n\r\nhello", 400},
            {"CL overflowing 64 bits", post + "Content-Length: 99999999999999999999\r\n\r\n", 400},
            {"CL with a space inside", post + "Content-Length: 1 0\r\n\r\nhelloworld", 400},
            // Obfuscated Transfer-Encoding: never read as chunked by one and not by another.
            // Final coding not chunked: 400 (RFC 9112 §6.3 (4)), also for a coding we do not know.
            {"TE xchunked (final coding not chunked)", post + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
             400},
            {"TE identity (final coding not chunked)", post + "Transfer-Encoding: identity\r\n\r\n0\r\n\r\n",
             400},
            {"TE gzip, chunked (unknown coding)", post + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
             501},
            {"TE chunked, identity (chunked not last)",
             post + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 400},
            {"TE chunked twice in one list",
             post + "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400},
            {"TE chunked in two headers",
             post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
             400},
            {"TE gzip after chunked in a second header",
             post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n", 400},
            {"TE with a space before the colon",
             post + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400},
            {"TE folded onto a second line",
             post + "Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", 400},
            {"TE line starting with a space (folding)",
             post + "X-A: b\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
            {"TE with a space inside the coding",
             post + "Transfer-Encoding: chu nked\r\n\r\n0\r\n\r\n", 400},
            {"TE with a vertical tab after chunked",
             post + "Transfer-Encoding: chunked\x0b\r\n\r\n0\r\n\r\n", 400},
            {"TE chunked with a parameter",
             post + "Transfer-Encoding: chunked;q=1\r\n\r\n0\r\n\r\n", 400},
            {"TE quoted", post + "Transfer-Encoding: \"chunked\"\r\n\r\n0\r\n\r\n", 400},
            {"TE with a bare LF ending its line",
             post + "Transfer-Encoding: chunked\n\r\n0\r\n\r\n", 400},
            // Chunk-size tricks.
            {"chunk size overflowing 64 bits", te + "ffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
             400},
            {"chunk size 2^64 + 5", te + "10000000000000005\r\nhello\r\n0\r\n\r\n", 400},
            {"chunk size -1", te + "-1\r\nhello\r\n0\r\n\r\n", 400},
            {"chunk size 0x10", te + "0x10\r\n0123456789abcdef\r\n0\r\n\r\n", 400},
            {"chunk size with a leading space", te + " 5\r\nhello\r\n0\r\n\r\n", 400},
            {"chunk size with a trailing space, no extension", te + "5 \r\nhello\r\n0\r\n\r\n",
             400},
            {"chunk extension ended by a bare LF", te + "5;ext=1\nhello\r\n0\r\n\r\n", 400},
            {"chunk size ended by a bare LF", te + "5\nhello\r\n0\r\n\r\n", 400},
            {"chunk data longer than its size", te + "3\r\nhello\r\n0\r\n\r\n", 400},
            {"chunk data ended by a bare LF", te + "5\r\nhello\n0\r\n\r\n", 400},
            {"last chunk ended by a bare LF", te + "0\r\n\n", 400},
            {"trailer with a space before the colon", te + "0\r\nX-T : 1\r\n\r\n", 400},
            // A head that fails outright.
            {"no Host", "GET /first HTTP/1.1\r\n\r\n", 400},
            {"two Host headers", "GET /first HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
        };
        LogCapture log;
        Site site;
        SiteServer s(options(log), site);
        const std::string smuggled = get("/smuggled");
        for (const Case& c : cases) {
            CAPTURE(c.name);
            const int fd = test::connect_blocking(s.port, 5000);
            REQUIRE(test::write_all(fd, c.request + smuggled));
            const Ending e = read_until_end(fd);
            ::close(fd);
            std::string rest;
            const auto answers = split_answers(e.bytes, &rest);
            INFO("received: " << e.bytes);
            REQUIRE(answers.size() == 1); // one answer, never a second one
            CHECK(answers[0].status == c.status);
            CHECK(answers[0].closes());
            CHECK(rest.empty());
            CHECK(e.eof); // then the end, not a reset or a connection left open
        }
        CHECK(site.smuggled.load() == 0);
        CHECK(site.handled.load() == 0); // every rejection came before any handler
        CHECK(test::eventually([&] { return s.server.stats().connections_open == 0; }));
        CHECK(s.server.stats().parse_errors == cases.size());
        MESSAGE("smuggling: " << cases.size() << " ambiguous requests, each one rejection and EOF");
    }

    TEST_CASE("smuggling: framings with one meaning are read exactly that way, and the next "
              "request follows") {
        struct Case {
            const char* name;
            std::string request;
            std::vector<std::string> bodies; // the answers' bodies, in order (all 200)
            bool closes;                     // the connection ends after them
        };
        const std::string next = get("/next");
        const std::vector<Case> cases = {
            {"two equal CL headers",
             "POST /one HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: "
             "5\r\n\r\nhello" +
                 next,
             {"POST /one hello", "GET /next"},
             false},
            {"an equal CL list",
             "POST /one HTTP/1.1\r\nHost: t\r\nContent-Length: 5, 5\r\n\r\nhello" + next,
             {"POST /one hello", "GET /next"},
             false},
            {"TE with spaces and tabs around chunked",
             "POST /one HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: \t chunked "
             "\t\r\n\r\n5\r\nhello\r\n0\r\n\r\n" +
                 next,
             {"POST /one hello", "GET /next"},
             false},
            {"TE in capitals",
             "POST /one HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: "
             "CHUNKED\r\n\r\n5\r\nhello\r\n0\r\n\r\n" +
                 next,
             {"POST /one hello", "GET /next"},
             false},
            {"chunk extensions and a trailer",
             "POST /one HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2;a=b\r\nhe\r\n3 "
             "; c\r\nllo\r\n0\r\nX-T: 1\r\n\r\n" +
                 next,
             {"POST /one hello", "GET /next"},
             false},
            {"a chunk size with leading zeros",
             "POST /one HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: "
             "chunked\r\n\r\n0005\r\nhello\r\n0\r\n\r\n" +
                 next,
             {"POST /one hello", "GET /next"},
             false},
            // HTTP/1.0 with chunked: served, but the connection closes (RFC 9112 6.1).
            {"HTTP/1.0 chunked",
             "POST /one HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" +
                 get("/smuggled"),
             {"POST /one hello"},
             true},
        };
        LogCapture log;
        Site site;
        SiteServer s(options(log), site);
        std::size_t answered = 0;
        for (const Case& c : cases) {
            CAPTURE(c.name);
            const int fd = test::connect_blocking(s.port, 5000);
            REQUIRE(test::write_all(fd, c.request));
            if (!c.closes) {
                REQUIRE(::shutdown(fd, SHUT_WR) == 0); // the server closes once it answered all
            }
            const Ending e = read_until_end(fd);
            ::close(fd);
            std::string rest;
            const auto answers = split_answers(e.bytes, &rest);
            INFO("received: " << e.bytes);
            REQUIRE(answers.size() == c.bodies.size());
            for (std::size_t i = 0; i < answers.size(); ++i) {
                CHECK(answers[i].status == 200);
                CHECK(answers[i].body == c.bodies[i]);
            }
            CHECK(answers.back().closes() == c.closes);
            CHECK(rest.empty());
            // A close after an answer (no lingering there) may meet the pipelined bytes
            // unread in the server's socket: the kernel then ends with a reset.
            CHECK((e.eof || (c.closes && e.reset)));
            answered += answers.size();
        }
        CHECK(site.smuggled.load() == 0);
        CHECK(site.handled.load() == answered);
        CHECK(s.server.stats().parse_errors == 0);
    }

    // --- resets, half-closes, slow readers, oversized requests -----------------------------

    TEST_CASE("clients resetting mid-head, mid-body and mid-response leave nothing behind; others "
              "are served") {
        constexpr int kRounds = 20;
        LogCapture log;
        Site site;
        SiteServer s(options(log), site);
        const std::uint16_t port = s.port.load();
        const int normal = test::connect_blocking(port, 10000);
        test::ResponseReader reader(normal);
        const auto first = round_trip(normal, reader, "/seq/0");
        REQUIRE(first);
        CHECK(first->body == "GET /seq/0");
        REQUIRE(test::eventually([&] { return s.server.stats().connections_open == 1; }));

        const std::string body_head =
            "POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n";
        std::size_t served = 1;
        std::size_t read_before_reset = 0;
        for (int round = 1; round <= kRounds; ++round) {
            {
                const int fd = test::connect_blocking(port);
                REQUIRE(test::write_all(fd, "GET /half HTTP/1.1\r\nHost: t\r\nX-Half: "));
                test::reset_close(fd);
            }
            {
                const int fd = test::connect_blocking(port);
                REQUIRE(test::write_all(fd, body_head + std::string(50000, 'b')));
                test::reset_close(fd);
            }
            {
                const int fd = test::connect_blocking(port);
                REQUIRE(test::write_all(fd, get("/stream")));
                const std::string some =
                    test::read_exactly(fd, 4 * kStreamChunk); // a bit of the answer
                CHECK(some.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
                read_before_reset += some.size();
                test::reset_close(fd);
            }
            const auto a = round_trip(normal, reader, fmt::format("/seq/{}", round));
            CHECK((a && a->status == 200 && a->body == fmt::format("GET /seq/{}", round)));
            served += a ? 1 : 0;
        }
        // Every reset connection is gone, every stream noticed its client left.
        CHECK(test::eventually([&] { return site.streams_ended.load() == kRounds; }));
        CHECK(site.streams_started.load() == kRounds);
        CHECK(site.streams_cut.load() == kRounds);
        CHECK(test::eventually([&] { return s.server.stats().connections_open == 1; }));
        CHECK(test::eventually([&] { // the normal client's: on its worker, or parked without one
            const auto st = s.server.stats();
            return st.workers_busy + st.connections_parked == 1;
        }));
        CHECK(site.unfinished.load() == 0); // half a head or half a body never reached a handler
        CHECK(served == kRounds + 1);
        ::close(normal);
        CHECK(test::eventually([&] {
            const auto st = s.server.stats();
            return st.connections_open == 0 && st.workers_busy == 0;
        }));
        CHECK(fresh_status(port, "/after") == 200);
        MESSAGE("resets: " << kRounds << " x (mid-head, mid-body, mid-response); "
                           << read_before_reset << " response bytes read before the resets; "
                           << served << " normal answers in order");
    }

    TEST_CASE("half-close after pipelined requests: every answer arrives in order, a streamed one "
              "whole, then EOF") {
        LogCapture log;
        Site site;
        ServerOptions o = options(log);
        SiteServer s(o, site);
        const int fd = test::connect_blocking(s.port);
        REQUIRE(test::write_all(
            fd,
            get("/a") + "POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nxyz" + get("/c")));
        REQUIRE(::shutdown(fd, SHUT_WR) == 0);
        const Ending e = read_until_end(fd);
        ::close(fd);
        std::string rest;
        const auto answers = split_answers(e.bytes, &rest);
        REQUIRE(answers.size() == 3);
        CHECK(answers[0].body == "GET /a");
        CHECK(answers[1].body == "POST /b xyz");
        CHECK(answers[2].body == "GET /c");
        CHECK(rest.empty());
        CHECK(e.eof);

        // A streamed answer larger than the socket buffers still arrives whole: the half
        // close is not taken for a reset.
        constexpr std::size_t kChunks = 256; // 16 MiB
        const int big = test::connect_blocking(s.port, 30000);
        REQUIRE(test::write_all(
            big,
            fmt::format("GET /stream?chunks={} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                        kChunks)));
        REQUIRE(::shutdown(big, SHUT_WR) == 0);
        const Ending b = read_until_end(big);
        ::close(big);
        CHECK(b.eof);
        const auto head_end = b.bytes.find("\r\n\r\n");
        REQUIRE(head_end != std::string::npos);
        CHECK(b.bytes.find("Transfer-Encoding: chunked\r\n") < head_end);
        // De-chunk: kStreamChunks chunks of kStreamChunk bytes, then the last chunk.
        std::string_view chunks = std::string_view(b.bytes).substr(head_end + 4);
        std::size_t body = 0;
        std::size_t count = 0;
        for (;;) {
            const auto eol = chunks.find("\r\n");
            REQUIRE(eol != std::string_view::npos);
            const std::size_t n = std::stoul(std::string(chunks.substr(0, eol)), nullptr, 16);
            chunks.remove_prefix(eol + 2);
            if (n == 0) {
                break;
            }
            REQUIRE(chunks.size() >= n + 2);
            body += n;
            ++count;
            chunks.remove_prefix(n + 2);
        }
        CHECK(chunks == "\r\n");
        CHECK(count == kChunks);
        CHECK(body == kChunks * kStreamChunk);
        CHECK(site.streams_cut.load() == 0);
    }

    TEST_CASE("a client that stops reading a large response: write_timeout closes it and frees the "
              "worker") {
        LogCapture log;
        Site site;
        ServerOptions o = options(log);
        o.write_timeout = 300ms;
        SiteServer s(o, site);
        // A small receive buffer set before connecting (the window is fixed at the handshake).
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd >= 0);
        const int small = 4096;
        ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        const timeval tv{10, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(s.port.load());
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) ==
                0); // NOLINT: sockaddr API
        REQUIRE(test::write_all(fd, get("/stream")));
        // Not reading: the stream stalls, a send outlives write_timeout, the server gives up.
        REQUIRE(test::eventually([&] { return site.streams_ended.load() == 1; }, 20000ms));
        CHECK(site.streams_cut.load() == 1);
        CHECK(test::eventually([&] {
            const auto st = s.server.stats();
            return st.connections_open == 0 && st.workers_busy == 0;
        }));
        // The client finds a truncated answer, then the end.
        const Ending e = read_until_end(fd);
        ::close(fd);
        CHECK(e.bytes.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
        CHECK(e.bytes.size() < kStreamChunks * kStreamChunk);
        CHECK((e.eof || e.reset));
        CHECK_FALSE(e.timed_out);
        CHECK(fresh_status(s.port.load(), "/after") == 200);
        MESSAGE("write_timeout: the stalled client got "
                << e.bytes.size() << " of " << kStreamChunks * kStreamChunk << " bytes");
    }

    TEST_CASE("a 1 GB Content-Length gets 413 before any body byte; 100 KB of headers get 431") {
        LogCapture log;
        Site site;
        SiteServer s(options(log), site);
        {
            const int fd = test::connect_blocking(s.port, 5000);
            REQUIRE(test::write_all(
                fd, "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 1073741824\r\n\r\n"));
            const Ending e = read_until_end(fd); // only the head was sent
            ::close(fd);
            std::string rest;
            const auto answers = split_answers(e.bytes, &rest);
            REQUIRE(answers.size() == 1);
            CHECK(answers[0].status == 413);
            CHECK(answers[0].closes());
            CHECK(rest.empty());
            CHECK(e.eof);
        }
        {
            std::string head = "GET /big-head HTTP/1.1\r\nHost: t\r\n";
            for (int i = 0; i < 50; ++i) {
                head += fmt::format("X-Pad-{}: {}\r\n", i, std::string(2000, 'p')); // 100 KB
            }
            head += "\r\n";
            const int fd = test::connect_blocking(s.port, 5000);
            (void)test::write_all(fd, head); // the server may answer before it all went out
            const Ending e = read_until_end(fd);
            ::close(fd);
            std::string rest;
            const auto answers = split_answers(e.bytes, &rest);
            REQUIRE(answers.size() == 1);
            CHECK(answers[0].status == 431);
            CHECK(answers[0].closes());
            CHECK(e.eof);
        }
        {
            std::string head = "GET /many-headers HTTP/1.1\r\nHost: t\r\n";
            for (int i = 0; i < 200; ++i) {
                head += fmt::format("X-{}: 1\r\n", i); // small, but more than max_headers
            }
            head += "\r\n";
            const int fd = test::connect_blocking(s.port, 5000);
            REQUIRE(test::write_all(fd, head));
            const Ending e = read_until_end(fd);
            ::close(fd);
            const auto answers = split_answers(e.bytes, nullptr);
            REQUIRE(answers.size() == 1);
            CHECK(answers[0].status == 431);
            CHECK(e.eof);
        }
        CHECK(site.handled.load() == 0);
        CHECK(fresh_status(s.port.load(), "/after") == 200);
    }

    // --- handler faults --------------------------------------------------------------------

    TEST_CASE("a handler that throws gets a 500; the connection and new ones go on being served") {
        LogCapture log;
        Site site;
        SiteServer s(options(log), site);
        const int fd = test::connect_blocking(s.port);
        test::ResponseReader reader(fd);
        for (const char* path : {"/throw", "/throw-int"}) {
            CAPTURE(path);
            const auto a = round_trip(fd, reader, path);
            REQUIRE(a);
            CHECK(a->status == 500);
            CHECK(a->body == "Internal Server Error\n");
            CHECK_FALSE(a->closes()); // the failure is the handler's, the framing is intact
            const auto b = round_trip(fd, reader, "/after-throw");
            REQUIRE(b);
            CHECK(b->status == 200);
            CHECK(b->body == "GET /after-throw");
        }
        ::close(fd);
        CHECK(fresh_status(s.port.load(), "/new-connection") == 200);
        CHECK(log.count("handler failed") == 2);
        CHECK(log.count("an adversarial handler failure") == 1);
    }

    TEST_CASE("a handler that never returns unless cancelled, behind mw::timeout: 503 at the "
              "deadline, others served") {
        constexpr int kHung = 10;
        constexpr auto kDeadline = 300ms;
        struct HangState {
            std::atomic<int> started{0};
            std::atomic<int> cancelled{0};
        };
        /// Sleeps in a loop forever; only its stop token ends it.
        struct Hang {
            HangState* state;
            Task<> operator()(ringwork::web::Context&) const {
                ++state->started;
                try {
                    for (;;) {
                        auto nap = ringwork::io::sleep_for(60s);
                        co_await nap;
                    }
                } catch (const ringwork::runtime::OperationCancelled&) {
                    ++state->cancelled;
                    throw;
                }
            }
        };
        HangState state;
        ringwork::web::App app;
        app.use(ringwork::web::mw::timeout(kDeadline));
        app.get("/hang", Hang{&state});
        app.get("/fast/:n", [](ringwork::web::Context& c) { c.text(std::string(c.param("n"))); });
        app.freeze();
        LogCapture log;
        test::RunningServer s(options(log), [&app](Exchange& x) { return app.handle(x); });

        std::vector<int> hung;
        const auto sent_at = Clock::now();
        for (int i = 0; i < kHung; ++i) {
            hung.push_back(test::connect_blocking(s.port, 10000));
            REQUIRE(test::write_all(hung.back(), get("/hang")));
        }
        REQUIRE(test::eventually([&] { return state.started.load() == kHung; }));
        // Another client is served meanwhile, in order (the hung handlers hold only their own
        // workers, not the reactor).
        const int normal = test::connect_blocking(s.port, 10000);
        test::ResponseReader reader(normal);
        int fast_ok = 0;
        for (int i = 0; i < 20; ++i) {
            const auto a = round_trip(normal, reader, fmt::format("/fast/{}", i));
            fast_ok += a && a->status == 200 && a->body == std::to_string(i) ? 1 : 0;
        }
        CHECK(fast_ok == 20);
        int timed_out = 0;
        for (const int fd : hung) {
            const Ending e = read_until_end(fd);
            ::close(fd);
            std::string rest;
            const auto answers = split_answers(e.bytes, &rest);
            INFO("received: " << e.bytes);
            REQUIRE(answers.size() == 1);
            CHECK(answers[0].status == 503);
            CHECK(answers[0].body.find("request timed out") != std::string::npos);
            CHECK(answers[0].closes());
            CHECK(e.eof);
            timed_out += answers[0].status == 503 ? 1 : 0;
        }
        CHECK(Clock::now() - sent_at >= kDeadline); // not before the deadline
        CHECK(test::eventually([&] { return state.cancelled.load() == kHung; }));
        ::close(normal);
        CHECK(test::eventually([&] {
            const auto st = s.server.stats();
            return st.connections_open == 0 && st.workers_busy == 0;
        }));
        MESSAGE("timeout middleware: " << timed_out << " hung handlers answered 503 and cancelled; "
                                       << fast_ok << " other requests served meanwhile");
    }

    TEST_CASE("a handler allocating 64 MiB per request: answered every time, and the server goes "
              "on serving") {
        constexpr int kRequests = 4;
        LogCapture log;
        Site site;
        SiteServer s(options(log), site);
        const int fd = test::connect_blocking(s.port, 30000);
        test::ResponseReader reader(fd);
        for (int i = 0; i < kRequests; ++i) {
            const auto a = round_trip(fd, reader, "/alloc");
            REQUIRE(a);
            CHECK(a->status == 200);
            CHECK(a->body.rfind(fmt::format("{} ", kBigAlloc), 0) == 0);
        }
        {
            // A 16 MiB answer built per request (read to the close: ResponseReader re-scans).
            const int big = test::connect_blocking(s.port, 30000);
            REQUIRE(test::write_all(
                big, "GET /alloc-body HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
            const Ending e = read_until_end(big);
            ::close(big);
            std::string rest;
            const auto answers = split_answers(e.bytes, &rest);
            REQUIRE(answers.size() == 1);
            CHECK(answers[0].status == 200);
            CHECK(answers[0].body.size() == (16U << 20));
            CHECK(answers[0].body.find_first_not_of('b') == std::string::npos);
            CHECK(rest.empty());
            CHECK(e.eof);
        }
        const auto after = round_trip(fd, reader, "/after");
        REQUIRE(after);
        CHECK(after->body == "GET /after");
        ::close(fd);
        CHECK(site.allocations.load() == kRequests);
        CHECK(fresh_status(s.port.load(), "/new-connection") == 200);
    }
}
