// SPDX-License-Identifier: MIT
// Server over loopback: Concurrency and the 503, FILO worker reuse, the reaper, shutdown.
#include <ringwork/http/server.hpp>
#include <ringwork/io/reactor.hpp>
#include <ringwork/io/timer.hpp>

#include "helpers.hpp"
#include "http_reader.hpp"
#include "running_server.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using ringwork::http::Exchange;
using ringwork::http::Server;
using ringwork::http::ServerOptions;
using ringwork::runtime::Task;

namespace {

Task<> slow_or_ok(Exchange& x) {
    if (x.request.raw_path() == "/slow") {
        co_await ringwork::io::sleep_for(300ms);
    }
    x.response.set_body("ok " + std::string(x.request.raw_path()));
}

/// The test server of this file: /slow takes 300 ms, everything else answers at once.
class RunningServer : public test::RunningServer {
public:
    explicit RunningServer(ServerOptions options)
        : test::RunningServer(std::move(options), [](Exchange& x) { return slow_or_ok(x); }) {}
};

std::string get(int fd, std::string_view path, bool close = false) {
    std::string req = "GET " + std::string(path) + " HTTP/1.1\r\nHost: t\r\n";
    if (close) {
        req += "Connection: close\r\n";
    }
    req += "\r\n";
    REQUIRE(test::write_all(fd, req));
    std::string got;
    char buf[4096];
    while (got.find("\r\n\r\n") == std::string::npos || got.size() < got.find("\r\n\r\n") + 4 + 6) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) {
            break;
        }
        got.append(buf, static_cast<std::size_t>(n));
        const auto cl = got.find("Content-Length: ");
        const auto end = got.find("\r\n\r\n");
        if (cl != std::string::npos && end != std::string::npos) {
            const std::size_t len = std::stoul(got.substr(cl + 16));
            if (got.size() >= end + 4 + len) {
                break;
            }
        }
    }
    return got;
}

using test::read_to_eof;

} // namespace

TEST_SUITE("server") {
    TEST_CASE("Concurrency=2: the third concurrent connection gets the 503 and is closed") {
        ServerOptions o;
        o.concurrency = 2;
        RunningServer s(o);
        const int a = test::connect_blocking(s.port);
        const int b = test::connect_blocking(s.port);
        CHECK(get(a, "/a").find("200 OK") != std::string::npos);
        CHECK(get(b, "/b").find("200 OK") != std::string::npos);
        const int c = test::connect_blocking(s.port);
        const std::string refused = read_to_eof(c); // the server answers at once and closes
        CHECK(refused.find("HTTP/1.1 503 Service Unavailable") == 0);
        CHECK(refused.find("The connection cannot be served because Server.Concurrency limit exceeded") !=
              std::string::npos);
        CHECK(s.server.stats().rejected_concurrency == 1);
        ::close(c);
        ::close(a);
        // Once a connection is gone, a new one is served again.
        REQUIRE(test::eventually([&] { return s.server.open_connections() == 1; }));
        const int d = test::connect_blocking(s.port);
        CHECK(get(d, "/d").find("200 OK") != std::string::npos);
        ::close(b);
        ::close(d);
    }

    TEST_CASE("a released worker serves the next connection: the ready stack is FILO") {
        ServerOptions o;
        o.max_idle_worker_duration = 60s; // no reaping during this test
        o.idle_park_delay = 0ms;          // each open connection keeps its worker
        RunningServer s(o);
        int fds[3];
        for (int& fd : fds) {
            fd = test::connect_blocking(s.port);
            CHECK(get(fd, "/x").find("200 OK") != std::string::npos);
        }
        CHECK(s.server.stats().workers_alive == 3);
        for (std::size_t i = 0; i < 3; ++i) {
            ::close(fds[i]);
            REQUIRE(test::eventually([&] { return s.server.stats().workers_ready == i + 1; }));
            std::this_thread::sleep_for(2ms); // distinct last-use times
        }
        const auto before = s.server.ready_workers();
        REQUIRE(before.size() == 1);
        REQUIRE(before[0].size() == 3);
        CHECK(std::is_sorted(before[0].begin(), before[0].end()));
        // A new connection takes the top (most recently used) worker; no new worker is made.
        const int d = test::connect_blocking(s.port);
        CHECK(get(d, "/d").find("200 OK") != std::string::npos);
        const auto after = s.server.ready_workers();
        REQUIRE(after[0].size() == 2);
        CHECK(after[0][0] == before[0][0]);
        CHECK(after[0][1] == before[0][1]);
        CHECK(s.server.stats().workers_created == 3);
        ::close(d);
    }

    TEST_CASE("the reaper retires idle workers oldest first and the most recent survive longest") {
        ServerOptions o;
        o.max_idle_worker_duration = 200ms;
        o.idle_park_delay = 0ms; // each open connection keeps its worker
        RunningServer s(o);
        int fds[4];
        for (int& fd : fds) {
            fd = test::connect_blocking(s.port);
            CHECK(get(fd, "/x").find("200 OK") != std::string::npos);
        }
        std::vector<ringwork::io::Clock::time_point> stack;
        for (std::size_t i = 0; i < 4; ++i) {
            ::close(fds[i]);
            std::this_thread::sleep_for(60ms);
        }
        REQUIRE(test::eventually([&] { return s.server.stats().workers_retired + s.server.stats().workers_ready == 4; }));
        // Watch the stack shrink: what remains is always the most recently used workers.
        std::vector<ringwork::io::Clock::time_point> previous = s.server.ready_workers()[0];
        bool all_gone = test::eventually([&] {
            const auto now = s.server.ready_workers()[0];
            // `now` must be a suffix (top) of `previous`.
            const bool suffix = now.size() <= previous.size() &&
                                std::equal(now.begin(), now.end(), previous.end() - static_cast<long>(now.size()));
            CHECK(suffix);
            previous = now;
            return now.empty();
        }, 5000ms);
        CHECK(all_gone);
        // A retired worker leaves the ready stack before its frame ends (a later loop pass):
        // wait, bounded, for the count to follow instead of reading it at once.
        CHECK(test::eventually([&] { return s.server.stats().workers_alive == 0; }, 5000ms));
        CHECK(s.server.stats().workers_retired == 4);
        // Service continues: a new worker is created on demand.
        const int e = test::connect_blocking(s.port);
        CHECK(get(e, "/e").find("200 OK") != std::string::npos);
        CHECK(s.server.stats().workers_created == 5);
        ::close(e);
    }

    TEST_CASE("shutdown closes idle keep-alive connections at once and finishes in-flight requests") {
        RunningServer s(ServerOptions{});
        const int idle = test::connect_blocking(s.port);
        CHECK(get(idle, "/idle").find("200 OK") != std::string::npos);
        const int busy = test::connect_blocking(s.port);
        REQUIRE(test::write_all(busy, "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"));
        std::this_thread::sleep_for(50ms); // the slow handler is running
        std::thread stopper([&] { s.stop(); });
        const std::string from_busy = read_to_eof(busy);
        const std::string from_idle = read_to_eof(idle);
        stopper.join();
        CHECK(from_busy.find("200 OK") != std::string::npos); // not lost
        CHECK(from_busy.find("ok /slow") != std::string::npos);
        CHECK(from_idle.empty()); // closed without a response
        ::close(idle);
        ::close(busy);
    }

    TEST_CASE("ServerOptions are validated with the field's name") {
        ServerOptions o;
        o.max_headers = 0;
        CHECK_THROWS_WITH_AS(Server{o}, doctest::Contains("ServerOptions.max_headers"), std::invalid_argument);
        ServerOptions p;
        p.name = "bad\r\nname";
        CHECK_THROWS_WITH_AS(Server{p}, doctest::Contains("ServerOptions.name"), std::invalid_argument);
        // fasthttp's "0 = default" would refuse every connection / every body here: an error.
        ServerOptions c;
        c.concurrency = 0;
        CHECK_THROWS_WITH_AS(Server{c}, doctest::Contains("ServerOptions.concurrency"), std::invalid_argument);
        ServerOptions b;
        b.max_request_body_size = 0;
        CHECK_THROWS_WITH_AS(Server{b}, doctest::Contains("ServerOptions.max_request_body_size"), std::invalid_argument);
        // ... unless 0 means something: stream every body, or deny by default per route.
        b.stream_request_body = true;
        CHECK_NOTHROW(Server{b});
        b.stream_request_body = false;
        b.header_received = [](const ringwork::http::Request&) { return ringwork::http::RequestConfig{}; };
        CHECK_NOTHROW(Server{b});
    }
}

namespace {

// A field value taken from a request (a redirect to a `next` parameter, an echoed id) must
// not end its line: CR and LF in it would add headers, or a whole second response, of the
// client's choosing (response splitting). CR, LF and NUL become SP (RFC 9110 5.5); a name
// that is no token is refused with an exception (the handler's 500).
Task<> fields(Exchange& x) {
    const std::string_view path = x.request.raw_path();
    if (path == "/inject") {
        x.response.set_header("Location", "/home\r\nSet-Cookie: s=evil\r\nContent-Length: 0\r\n\r\n"
                                          "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
        x.response.add_header("X-Nul", std::string_view("a\0b\nc", 5));
        x.response.set_body("one");
    } else if (path == "/trailer") {
        x.add_trailer("X-Checksum", "abc\r\nX-Evil: 1");
        co_await x.write("chunk");
    } else if (path == "/bad-name") {
        x.response.set_header(std::string_view("X Bad\r\nName"), "v"); // checked at run time
        x.response.set_body("not reached");
    } else if (path == "/bad-trailer") {
        x.add_trailer(std::string("X:Colon"), "v");
        co_await x.write("not reached");
    } else {
        x.response.set_body("ok " + std::string(path));
    }
}

std::vector<std::string> head_lines(const std::string& response) {
    std::vector<std::string> lines;
    const std::string head = response.substr(0, response.find("\r\n\r\n"));
    std::size_t at = 0;
    for (;;) {
        const std::size_t end = head.find("\r\n", at);
        lines.push_back(head.substr(at, end == std::string::npos ? std::string::npos : end - at));
        if (end == std::string::npos) {
            return lines;
        }
        at = end + 2;
    }
}

} // namespace

TEST_SUITE("server: response fields") {
    TEST_CASE("CR, LF and NUL in a header value become spaces: one field, one response") {
        test::RunningServer s(ServerOptions{}, [](Exchange& x) { return fields(x); });
        const int fd = test::connect_blocking(s.port, 3000);
        REQUIRE(test::write_all(fd, "GET /inject HTTP/1.1\r\nHost: t\r\n\r\n"
                                    "GET /next HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
        const std::string got = test::read_to_eof(fd);
        const std::size_t head_end = got.find("\r\n\r\n");
        REQUIRE(head_end != std::string::npos);
        CHECK(got.starts_with("HTTP/1.1 200 OK\r\n"));
        const auto lines = head_lines(got.substr(0, head_end));
        CHECK(std::count(lines.begin(), lines.end(),
                         "Location: /home  Set-Cookie: s=evil  Content-Length: 0    HTTP/1.1 200 OK  "
                         "Content-Length: 5    hello") == 1);
        CHECK(std::count(lines.begin(), lines.end(), "X-Nul: a b c") == 1);
        CHECK(std::count(lines.begin(), lines.end(), "Content-Length: 3") == 1);
        CHECK(std::none_of(lines.begin(), lines.end(), [](const std::string& l) {
            return l.starts_with("Set-Cookie") || l == "Content-Length: 0" || l.starts_with("HTTP/1.1 200 OK ");
        }));
        // Its 3-byte body, then the next request's answer, then the close: two responses.
        const std::string rest = got.substr(head_end + 4);
        CHECK(rest.starts_with("oneHTTP/1.1 200 OK\r\n"));
        CHECK(rest.ends_with("\r\n\r\nok /next"));
        CHECK(rest.find("\r\n\r\n") == rest.rfind("\r\n\r\n"));
        ::close(fd);
    }

    TEST_CASE("a trailer value is made safe the same way; a name that is no token gets the handler's 500") {
        std::vector<std::string> logged;
        std::mutex log_mutex;
        ServerOptions o;
        o.logger = [&](std::string_view line) {
            const std::lock_guard lock(log_mutex);
            logged.emplace_back(line);
        };
        test::RunningServer s(o, [](Exchange& x) { return fields(x); });
        SUBCASE("trailer value") {
            const int fd = test::connect_blocking(s.port, 3000);
            REQUIRE(test::write_all(fd, "GET /trailer HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
            const std::string got = test::read_to_eof(fd);
            CHECK(got.find("Transfer-Encoding: chunked\r\n") != std::string::npos);
            CHECK(got.ends_with("5\r\nchunk\r\n0\r\nX-Checksum: abc  X-Evil: 1\r\n\r\n"));
            CHECK(got.find("\r\nX-Evil") == std::string::npos);
            ::close(fd);
        }
        for (const std::string_view path : {"/bad-name", "/bad-trailer"}) {
            CAPTURE(path);
            const int fd = test::connect_blocking(s.port, 3000);
            REQUIRE(test::write_all(fd, fmt::format("GET {} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", path)));
            const std::string got = test::read_to_eof(fd);
            CHECK(got.starts_with("HTTP/1.1 500 "));
            CHECK(got.find("Name") == std::string::npos);
            CHECK(got.find("not reached") == std::string::npos);
            ::close(fd);
        }
        const std::lock_guard lock(log_mutex);
        CHECK(std::any_of(logged.begin(), logged.end(), [](const std::string& l) {
            return l.find(R"(header name "X Bad\x0d\x0aName" is not a token)") != std::string::npos;
        }));
        CHECK(std::any_of(logged.begin(), logged.end(), [](const std::string& l) {
            return l.find(R"(header name "X:Colon" is not a token)") != std::string::npos;
        }));
    }
}

TEST_SUITE("server limits") {
    TEST_CASE("MaxConnsPerIP=1: a second connection from the same address gets 429 and is closed") {
        ServerOptions o;
        o.max_conns_per_ip = 1;
        RunningServer s(o);
        const int a = test::connect_blocking(s.port);
        CHECK(get(a, "/a").find("200 OK") != std::string::npos);
        const int b = test::connect_blocking(s.port);
        const std::string refused = read_to_eof(b);
        CHECK(refused.find("HTTP/1.1 429 Too Many Requests") == 0);
        CHECK(refused.find("MaxConnsPerIP") != std::string::npos);
        CHECK(s.server.stats().rejected_per_ip == 1);
        ::close(b);
        ::close(a);
        // The count is released with the connection: a new one is served.
        REQUIRE(test::eventually([&] { return s.server.open_connections() == 0; }));
        const int c = test::connect_blocking(s.port);
        CHECK(get(c, "/c").find("200 OK") != std::string::npos);
        ::close(c);
    }
}

// -----------------------------------------------------------------------------------------
// Streaming with a declared Content-Length (identity encoding).

namespace {

std::atomic<int> overflow_caught{0};

Task<> stream_handler(Exchange& x) {
    const std::string_view path = x.request.raw_path();
    if (path == "/known") {
        x.response.set_header("Content-Length", "10");
        (void)co_await x.write("hello");
        co_await ringwork::io::sleep_for(1ms); // a real suspension between the pieces
        (void)co_await x.write("world");
    } else if (path == "/over") {
        x.response.set_header("Content-Length", "4");
        (void)co_await x.write("abc");
        try {
            (void)co_await x.write("de"); // one byte too many: nothing of it may go out
        } catch (const std::logic_error&) {
            ++overflow_caught;
        }
        (void)co_await x.write("d");
    } else if (path == "/over-first") {
        x.response.set_header("Content-Length", "2");
        try {
            (void)co_await x.write("abc"); // nothing at all is sent: the handler may still answer
        } catch (const std::logic_error&) {
            ++overflow_caught;
        }
        x.response.remove_header("Content-Length");
        x.response.set_status(500);
        x.response.set_body("oops");
    } else if (path == "/short") {
        x.response.set_header("Content-Length", "10");
        (void)co_await x.write("abc");
    } else if (path == "/chunked") {
        (void)co_await x.write("abc");
        (void)co_await x.write("de");
    } else {
        x.response.set_body("plain");
    }
}

using test::body_of;
using test::read_response;
using test::ResponseReader;

/// A piece of `n` bytes: `tag` then a pattern, so misplaced or reused bytes show.
std::string piece_of(std::size_t n, char tag) {
    std::string p(n, '\0');
    for (std::size_t i = 0; i < n; ++i) {
        p[i] = static_cast<char>('a' + (i * 7 + static_cast<std::size_t>(tag)) % 26);
    }
    p[0] = tag;
    return p;
}

std::atomic<int> flood_finished{0};
std::atomic<int> flood_failed_writes{0};
constexpr std::size_t kFloodPiece = 64 * 1024;
constexpr std::size_t kFloodPieces = 128; // 8 MiB

/// Small and large pieces, each overwritten as soon as its write returned: the server must be
/// done with a piece's memory by then (large ones are sent from it, not copied).
Task<> pieces_handler(Exchange& x) {
    const std::string_view path = x.request.raw_path();
    if (path == "/pieces-known" || path == "/pieces-chunked") {
        if (path == "/pieces-known") {
            x.response.set_header("Content-Length", std::to_string(2 + 40960 + 2 + 102400));
        }
        for (const auto& [n, tag] : {std::pair<std::size_t, char>{2, 'S'}, {40960, 'L'}, {2, 's'}, {102400, 'M'}}) {
            std::string piece = n == 2 ? std::string(tag == 'S' ? "ab" : "cd") : piece_of(n, tag);
            auto sent = x.write(piece);
            (void)co_await sent;
            std::fill(piece.begin(), piece.end(), '#');
        }
    } else if (path == "/flood" || path == "/flood-long") {
        // /flood-long: 256 MiB, more than any socket buffers on the path can absorb.
        const std::size_t pieces = path == "/flood" ? kFloodPieces : 64 * kFloodPieces;
        x.response.set_header("Content-Length", std::to_string(kFloodPiece * pieces));
        std::string piece;
        for (std::size_t k = 0; k < pieces; ++k) {
            piece.assign(kFloodPiece, static_cast<char>('A' + k % 26));
            auto sent = x.write(piece);
            const bool ok = co_await sent;
            std::fill(piece.begin(), piece.end(), '#');
            if (!ok) {
                ++flood_failed_writes;
                break;
            }
        }
        ++flood_finished;
    } else {
        x.response.set_body("plain");
    }
}

} // namespace

TEST_SUITE("server streaming") {
    TEST_CASE("a declared Content-Length streams identity-encoded and keeps the connection") {
        test::RunningServer s(ServerOptions{}, [](Exchange& x) { return stream_handler(x); });
        const int fd = test::connect_blocking(s.port);
        REQUIRE(test::write_all(fd, "GET /known HTTP/1.1\r\nHost: t\r\n\r\n"));
        const std::string r = read_response(fd);
        CHECK(r.find("HTTP/1.1 200 OK\r\n") == 0);
        CHECK(r.find("Content-Length: 10\r\n") != std::string::npos);
        CHECK(r.find("Transfer-Encoding") == std::string::npos);
        CHECK(r.find("Content-Length", r.find("Content-Length") + 1) == std::string::npos); // once
        CHECK(body_of(r) == "helloworld");
        // Keep-alive: the next request is answered on the same connection, nothing in between.
        REQUIRE(test::write_all(fd, "GET /plain HTTP/1.1\r\nHost: t\r\n\r\n"));
        const std::string r2 = read_response(fd);
        CHECK(r2.find("HTTP/1.1 200 OK\r\n") == 0);
        CHECK(body_of(r2) == "plain");
        // Without a declared length the stream is still chunked.
        REQUIRE(test::write_all(fd, "GET /chunked HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
        const std::string r3 = test::read_to_eof(fd);
        CHECK(r3.find("Transfer-Encoding: chunked\r\n") != std::string::npos);
        CHECK(body_of(r3) == "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
        ::close(fd);
    }

    TEST_CASE("HTTP/1.0 with a declared length keeps alive on request; HEAD sends the length, no body") {
        test::RunningServer s(ServerOptions{}, [](Exchange& x) { return stream_handler(x); });
        const int fd = test::connect_blocking(s.port);
        REQUIRE(test::write_all(fd, "GET /known HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
        const std::string r = read_response(fd);
        CHECK(r.find("HTTP/1.1 200 OK\r\n") == 0);
        CHECK(r.find("Content-Length: 10\r\n") != std::string::npos);
        CHECK(r.find("Connection: keep-alive\r\n") != std::string::npos);
        CHECK(body_of(r) == "helloworld");
        REQUIRE(test::write_all(fd, "HEAD /known HTTP/1.1\r\nHost: t\r\n\r\n"));
        const std::string h = read_response(fd, true);
        CHECK(h.find("HTTP/1.1 200 OK\r\n") == 0);
        CHECK(h.find("Content-Length: 10\r\n") != std::string::npos);
        CHECK(body_of(h).empty());
        // The connection is in sync: the next response starts right after HEAD's head.
        REQUIRE(test::write_all(fd, "GET /plain HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
        const std::string r2 = test::read_to_eof(fd);
        CHECK(r2.find("HTTP/1.1 200 OK\r\n") == 0);
        CHECK(body_of(r2) == "plain");
        ::close(fd);
    }

    TEST_CASE("writing more than the declared length throws and sends nothing extra") {
        overflow_caught = 0;
        test::RunningServer s(ServerOptions{}, [](Exchange& x) { return stream_handler(x); });
        const int fd = test::connect_blocking(s.port);
        REQUIRE(test::write_all(fd, "GET /over HTTP/1.1\r\nHost: t\r\n\r\nGET /plain HTTP/1.1\r\nHost: t\r\n\r\n"));
        ResponseReader reader(fd);
        const std::string r = reader.next();
        CHECK(r.find("Content-Length: 4\r\n") != std::string::npos);
        CHECK(body_of(r) == "abcd");
        const std::string r2 = reader.next(); // the pipelined request follows at once
        CHECK(r2.find("HTTP/1.1 200 OK\r\n") == 0);
        CHECK(body_of(r2) == "plain");
        CHECK(overflow_caught == 1);
        // A first write that overflows sends nothing: the handler's own answer goes out.
        REQUIRE(test::write_all(fd, "GET /over-first HTTP/1.1\r\nHost: t\r\n\r\n"));
        const std::string r3 = read_response(fd);
        CHECK(r3.find("HTTP/1.1 500 Internal Server Error\r\n") == 0);
        CHECK(body_of(r3) == "oops");
        CHECK(overflow_caught == 2);
        ::close(fd);
    }

    TEST_CASE("large pieces are sent from the handler's memory, small ones copied, in order (known length and chunked)") {
        test::RunningServer s(ServerOptions{}, [](Exchange& x) { return pieces_handler(x); });
        const int fd = test::connect_blocking(s.port);
        const std::string big1 = piece_of(40960, 'L');
        const std::string big2 = piece_of(102400, 'M');
        REQUIRE(test::write_all(fd, "GET /pieces-known HTTP/1.1\r\nHost: t\r\n\r\n"));
        const std::string r = read_response(fd);
        CHECK(r.find("HTTP/1.1 200 OK\r\n") == 0);
        CHECK(body_of(r) == "ab" + big1 + "cd" + big2);
        REQUIRE(test::write_all(fd, "GET /pieces-chunked HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
        const std::string r2 = test::read_to_eof(fd);
        ::close(fd);
        CHECK(r2.find("Transfer-Encoding: chunked\r\n") != std::string::npos);
        CHECK(body_of(r2) == "2\r\nab\r\na000\r\n" + big1 + "\r\n2\r\ncd\r\n19000\r\n" + big2 + "\r\n0\r\n\r\n");
        const auto st = s.server.stats();
        CHECK(st.body_bytes_zero_copy == 2 * (big1.size() + big2.size()));
        CHECK(st.body_bytes_copied == 2 * 4);
    }

    TEST_CASE("a long stream to a slow reader holds the handler, copies nothing, and ends on a reset") {
        flood_finished = 0;
        flood_failed_writes = 0;
        test::RunningServer s(ServerOptions{}, [](Exchange& x) { return pieces_handler(x); });
        // A full read: every piece arrives intact and in order.
        {
            const int fd = test::connect_blocking(s.port);
            REQUIRE(test::write_all(fd, "GET /flood HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
            const std::string body = body_of(test::read_to_eof(fd));
            ::close(fd);
            REQUIRE(body.size() == kFloodPiece * kFloodPieces);
            std::size_t bad = 0;
            for (std::size_t k = 0; k < kFloodPieces; ++k) {
                bad += body.compare(k * kFloodPiece, kFloodPiece, std::string(kFloodPiece, static_cast<char>('A' + k % 26))) != 0;
            }
            CHECK(bad == 0);
            REQUIRE(test::eventually([] { return flood_finished.load() == 1; }));
            CHECK(flood_failed_writes == 0);
            const auto st = s.server.stats();
            CHECK(st.body_bytes_zero_copy == kFloodPiece * kFloodPieces);
            CHECK(st.body_bytes_copied == 0);
        }
        // A client that reads a little, then resets: the write waiting for the kernel ends
        // false and the handler stops (its piece dies only after the failed send completed).
        {
            const int fd = test::connect_blocking(s.port);
            REQUIRE(test::write_all(fd, "GET /flood-long HTTP/1.1\r\nHost: t\r\n\r\n"));
            CHECK(test::read_exactly(fd, 100 * 1024).size() == 100 * 1024);
            // The handler now waits on a client that does not read (the socket buffers fill).
            test::reset_close(fd);
            REQUIRE(test::eventually([] { return flood_finished.load() == 2; }, 10000ms));
            CHECK(flood_failed_writes == 1);
            CHECK(test::eventually([&] { return s.server.open_connections() == 0; }));
        }
    }

    TEST_CASE("a stream that ends short of its declared length closes the connection and is logged") {
        ServerOptions o;
        std::mutex m;
        std::vector<std::string> lines;
        o.logger = [&](std::string_view line) {
            std::lock_guard lock(m);
            lines.emplace_back(line);
        };
        test::RunningServer s(o, [](Exchange& x) { return stream_handler(x); });
        const int fd = test::connect_blocking(s.port);
        REQUIRE(test::write_all(fd, "GET /short HTTP/1.1\r\nHost: t\r\n\r\n"));
        const std::string r = test::read_to_eof(fd); // EOF, not the 10 s receive timeout
        CHECK(r.find("Content-Length: 10\r\n") != std::string::npos);
        CHECK(body_of(r) == "abc");
        CHECK(test::eventually([&] {
            std::lock_guard lock(m);
            return std::any_of(lines.begin(), lines.end(),
                               [](const std::string& l) { return l.find("7 bytes short") != std::string::npos; });
        }));
        ::close(fd);
    }
}

// -----------------------------------------------------------------------------------------
// A client reset cancels the suspended handler through its stop token.

namespace {

std::atomic<int> reset_started{0};
std::atomic<int> reset_cancelled{0};

Task<> nested_sleep(std::chrono::milliseconds d) { co_await ringwork::io::sleep_for(d); }

Task<> reset_handler(Exchange& x) {
    const std::string_view path = x.request.raw_path();
    if (path == "/sleep") {
        ++reset_started;
        try {
            co_await nested_sleep(30s); // a nested task inherits the handler's token
        } catch (const ringwork::runtime::OperationCancelled&) {
            ++reset_cancelled;
            throw; // the server must not answer (nor log it as a failure) after a reset
        }
        x.response.set_body("slept");
    } else if (path == "/half") {
        co_await ringwork::io::sleep_for(100ms);
        x.response.set_body("half-ok");
    } else {
        x.response.set_body("plain");
    }
}

std::atomic<bool> early_release{false};
std::atomic<int> early_finished{0};

/// Answers early (Exchange::respond_now), then runs on until the test releases it.
Task<> early_handler(Exchange& x) {
    const std::string_view path = x.request.raw_path();
    if (path == "/early-stream") {
        co_await x.write("part one");
    } else {
        x.response.set_body("early answer");
    }
    co_await ringwork::io::sleep_for(1ms); // suspended once: dispatch() waits in its Join
    x.respond_now();
    while (!early_release.load()) {
        co_await ringwork::io::sleep_for(2ms);
    }
    x.response.set_status(500); // sealed: ignored
    x.response.set_body("too late");
    const bool sent = co_await x.write("too late");
    if (!sent) {
        ++early_finished;
    }
}

std::atomic<int> blocked_pieces{0};
std::atomic<int> blocked_finished{0};
std::atomic<int> blocked_failed_writes{0};
std::atomic<int> blocked_responded{0};

/// Answers the request early (respond_now) once the handler has written 128 KiB and had 100 ms
/// more to fill the socket buffers of a client that reads nothing: the handler is then waiting
/// in a write.
Task<> respond_when_blocked(Exchange& x) {
    while (blocked_pieces.load() < 2) {
        co_await ringwork::io::sleep_for(5ms);
    }
    co_await ringwork::io::sleep_for(100ms);
    x.respond_now();
    blocked_responded = 1;
}

/// Streams 64 KiB pieces (sent from its memory) until a write fails.
Task<> blocked_stream_handler(Exchange& x) {
    ringwork::io::spawn(respond_when_blocked(x));
    std::string piece(64 * 1024, 'b');
    for (;;) {
        auto sent = x.write(piece);
        if (!co_await sent) {
            ++blocked_failed_writes;
            break;
        }
        ++blocked_pieces;
    }
    ++blocked_finished;
}

} // namespace

TEST_SUITE("server respond_now") {
    TEST_CASE("respond_now while the handler waits in a large write: both the handler and the connection wake") {
        blocked_pieces = 0;
        blocked_finished = 0;
        blocked_failed_writes = 0;
        blocked_responded = 0;
        test::RunningServer s(ServerOptions{}, [](Exchange& x) { return blocked_stream_handler(x); });
        const int fd = test::connect_blocking(s.port);
        REQUIRE(test::write_all(fd, "GET /blocked HTTP/1.1\r\nHost: t\r\n\r\n"));
        // The client reads nothing: the handler waits for the kernel to take a piece when
        // respond_now() detaches it, and the connection then waits for the same send (to close
        // after it). The client resets: the send fails, and both must wake. Before the fix the
        // connection's wait replaced the handler's: the handler never resumed and the
        // connection never closed.
        REQUIRE(test::eventually([] { return blocked_responded.load() == 1; }, 10000ms));
        CHECK(blocked_finished == 0); // still in its write
        test::reset_close(fd);
        CHECK(test::eventually([] { return blocked_finished.load() == 1; }, 10000ms));
        CHECK(blocked_failed_writes == 1);
        CHECK(blocked_pieces >= 2);
        CHECK(test::eventually([&] { return s.server.open_connections() == 0; }, 10000ms));
    }

    TEST_CASE("the answer leaves before the handler returns; the connection closes; the handler "
              "finishes into nothing") {
        early_release = false;
        early_finished = 0;
        test::RunningServer s(ServerOptions{}, [](Exchange& x) { return early_handler(x); });
        const int fd = test::connect_blocking(s.port);
        // A pipelined second request is not answered: the early answer closes the connection.
        REQUIRE(test::write_all(fd, "GET /early HTTP/1.1\r\nHost: t\r\n\r\nGET /plain HTTP/1.1\r\nHost: t\r\n\r\n"));
        const std::string r = test::read_to_eof(fd);
        ::close(fd);
        CHECK(r.find("HTTP/1.1 200 OK\r\n") == 0);
        CHECK(r.find("Connection: close\r\n") != std::string::npos);
        CHECK(body_of(r) == "early answer");
        CHECK(r.find("HTTP/1.1", 1) == std::string::npos);
        // The handler cannot have returned: it waits for early_release.
        CHECK(early_finished == 0);
        CHECK(s.server.open_connections() == 1); // the connection's worker waits for it
        early_release = true;
        REQUIRE(test::eventually([] { return early_finished.load() == 1; }));
        REQUIRE(test::eventually([&] { return s.server.open_connections() == 0; }));
        CHECK(s.server.stats().handlers_detached == 1);
        // The server goes on.
        const int fd2 = test::connect_blocking(s.port);
        REQUIRE(test::write_all(fd2, "GET /early HTTP/1.1\r\nHost: t\r\n\r\n"));
        CHECK(body_of(test::read_to_eof(fd2)) == "early answer");
        ::close(fd2);
    }

    TEST_CASE("a streamed response answered early is cut by the close, without the last chunk") {
        early_release = true; // the handler ends right after respond_now
        early_finished = 0;
        test::RunningServer s(ServerOptions{}, [](Exchange& x) { return early_handler(x); });
        const int fd = test::connect_blocking(s.port);
        REQUIRE(test::write_all(fd, "GET /early-stream HTTP/1.1\r\nHost: t\r\n\r\n"));
        const std::string r = test::read_to_eof(fd);
        ::close(fd);
        CHECK(r.find("HTTP/1.1 200 OK\r\n") == 0);
        CHECK(r.find("Transfer-Encoding: chunked\r\n") != std::string::npos);
        CHECK(r.find("8\r\npart one\r\n") != std::string::npos);
        CHECK(r.find("0\r\n\r\n") == std::string::npos); // incomplete, as the client must see
        CHECK(r.find("too late") == std::string::npos);
        REQUIRE(test::eventually([] { return early_finished.load() == 1; }));
    }
}

TEST_SUITE("server cancellation") {
    TEST_CASE("a client reset cancels the handler's pending co_await (sleep_for 30 s) at once") {
        reset_started = 0;
        reset_cancelled = 0;
        ServerOptions o;
        std::mutex m;
        std::vector<std::string> lines;
        o.logger = [&](std::string_view line) {
            std::lock_guard lock(m);
            lines.emplace_back(line);
        };
        test::RunningServer s(o, [](Exchange& x) { return reset_handler(x); });
        const int fd = test::connect_blocking(s.port);
        REQUIRE(test::write_all(fd, "GET /sleep HTTP/1.1\r\nHost: t\r\n\r\n"));
        REQUIRE(test::eventually([] { return reset_started.load() == 1; }));
        test::reset_close(fd); // SO_LINGER 0: RST instead of FIN
        // Far below the 30 s sleep: only the cancellation can end it this soon.
        CHECK(test::eventually([] { return reset_cancelled.load() == 1; }, 5000ms));
        CHECK(test::eventually([&] { return s.server.open_connections() == 0; }, 5000ms));
        const auto st = s.server.stats();
        CHECK(st.handlers_cancelled == 1);
        CHECK(st.reset_watches == 1);
        std::lock_guard lock(m);
        for (const std::string& l : lines) {
            CHECK(l.find("handler failed") == std::string::npos); // a reset is a common error
        }
    }

    TEST_CASE("a half-closing client (shutdown SHUT_WR) still gets its full answer") {
        reset_cancelled = 0;
        test::RunningServer s(ServerOptions{}, [](Exchange& x) { return reset_handler(x); });
        const int fd = test::connect_blocking(s.port);
        REQUIRE(test::write_all(fd, "GET /half HTTP/1.1\r\nHost: t\r\n\r\n"));
        REQUIRE(::shutdown(fd, SHUT_WR) == 0); // FIN while the handler sleeps
        const std::string r = test::read_to_eof(fd);
        CHECK(r.find("HTTP/1.1 200 OK\r\n") == 0);
        CHECK(body_of(r) == "half-ok");
        CHECK(reset_cancelled == 0);
        CHECK(s.server.stats().handlers_cancelled == 0);
        ::close(fd);
    }

    TEST_CASE("the reset watch is armed only for handlers that suspend, and keep-alive goes on after it") {
        test::RunningServer s(ServerOptions{}, [](Exchange& x) { return reset_handler(x); });
        const int fd = test::connect_blocking(s.port);
        for (int i = 0; i < 3; ++i) {
            REQUIRE(test::write_all(fd, "GET /plain HTTP/1.1\r\nHost: t\r\n\r\n"));
            CHECK(body_of(read_response(fd)) == "plain");
        }
        CHECK(s.server.stats().reset_watches == 0); // completed without suspending: no poll
        for (int i = 0; i < 2; ++i) {
            REQUIRE(test::write_all(fd, "GET /half HTTP/1.1\r\nHost: t\r\n\r\n"));
            CHECK(body_of(read_response(fd)) == "half-ok");
        }
        CHECK(s.server.stats().reset_watches == 2);
        CHECK(s.server.stats().handlers_cancelled == 0);
        ::close(fd);
    }
}

// -----------------------------------------------------------------------------------------
// Unix socket listeners and inherited (systemd) listening sockets.

namespace {

int connect_unix(const std::string& path) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    const auto a = ringwork::io::SocketAddress::unix_path(path);
    if (::connect(fd, a.data(), a.length) != 0) {
        ::close(fd);
        return -1;
    }
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

std::string unique_socket_path(std::string_view tag) {
    return fmt::format("/tmp/ringwork-test-{}-{}.sock", tag, ::getpid());
}

/// A server on a background thread serving `address` (or the inherited fds) with 2 reactors.
class UnixServer {
public:
    explicit UnixServer(const ringwork::io::SocketAddress& address) {
        server.set_handler([](Exchange& x) { x.response.set_body("unix " + std::string(x.request.raw_path())); });
        thread_ = std::thread([this, address] {
            try {
                server.listen_and_serve(address, 2, [this](std::uint16_t) { ready = true; });
            } catch (const std::exception& e) {
                error = e.what();
                ready = true;
            }
        });
        REQUIRE(test::eventually([this] { return ready.load(); }));
    }
    UnixServer(const UnixServer&) = delete;
    UnixServer& operator=(const UnixServer&) = delete;
    ~UnixServer() { stop(); }
    void stop() {
        if (thread_.joinable()) {
            server.shutdown();
            thread_.join();
        }
    }
    Server server;
    std::atomic<bool> ready{false};
    std::string error;

private:
    std::thread thread_;
};

} // namespace

TEST_SUITE("server listeners") {
    TEST_CASE("a busy TCP port fails listen_and_serve before any reactor starts; share_port joins it") {
        using ringwork::io::SocketAddress;
        // Someone else's plain listening socket.
        const int other = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(other >= 0);
        const SocketAddress any = SocketAddress::loopback(0);
        REQUIRE(::bind(other, any.data(), any.length) == 0);
        REQUIRE(::listen(other, 16) == 0);
        sockaddr_in got{};
        socklen_t len = sizeof got;
        REQUIRE(::getsockname(other, reinterpret_cast<sockaddr*>(&got), &len) == 0); // NOLINT
        const std::uint16_t busy = ntohs(got.sin_port);
        bool ready = false;
        {
            Server s;
            CHECK_THROWS_WITH_AS(s.listen_and_serve(SocketAddress::loopback(busy), 2, [&](std::uint16_t) { ready = true; }),
                                 doctest::Contains("another socket is bound to this port"), std::system_error);
        }
        CHECK_FALSE(ready);
        ::close(other);

        // A ringwork server on a port: a second one is refused unless it asks to share.
        test::RunningServer first(ServerOptions{}, [](Exchange& x) { x.response.set_body("first"); });
        const std::uint16_t port = first.port.load();
        {
            Server refused;
            CHECK_THROWS_WITH_AS(refused.listen_and_serve(SocketAddress::loopback(port), 1),
                                 doctest::Contains("Address already in use"), std::system_error);
        }
        ServerOptions o;
        o.share_port = true;
        Server shared(o);
        shared.set_handler([](Exchange& x) { x.response.set_body("second"); });
        std::atomic<std::uint16_t> shared_port{0};
        std::thread t([&] {
            shared.listen_and_serve(SocketAddress::loopback(port), 1, [&](std::uint16_t p) { shared_port.store(p); });
        });
        CHECK(test::eventually([&] { return shared_port.load() != 0; }));
        CHECK(shared_port.load() == port);
        // The first still serves its connections (the kernel spreads new ones over both).
        const int fd = test::connect_blocking(port, 3000);
        REQUIRE(fd >= 0);
        const std::string body = body_of(get(fd, "/x"));
        CHECK((body == "first" || body == "second"));
        ::close(fd);
        shared.shutdown();
        t.join();
    }

    TEST_CASE("listen_and_serve on a Unix socket path: two reactors share one socket; the file goes at the end") {
        const std::string path = unique_socket_path("serve");
        ::unlink(path.c_str());
        {
            UnixServer s(ringwork::io::SocketAddress::unix_path(path));
            REQUIRE(s.error.empty());
            struct stat st {};
            REQUIRE(::lstat(path.c_str(), &st) == 0);
            CHECK(S_ISSOCK(st.st_mode));
            // Several connections at once, each served (whichever reactor accepts it).
            int fds[4];
            for (int& fd : fds) {
                fd = connect_unix(path);
                REQUIRE(fd >= 0);
            }
            for (int i = 0; i < 4; ++i) {
                const std::string target = "/c" + std::to_string(i);
                CHECK(body_of(get(fds[i], target)) == "unix " + target);
            }
            for (const int fd : fds) {
                ::close(fd);
            }
            CHECK(s.server.stats().connections_accepted == 4);
            s.stop();
        }
        struct stat st {};
        CHECK(::lstat(path.c_str(), &st) != 0); // removed when serving ended
    }

    TEST_CASE("a stale Unix socket file is replaced; a live one or a regular file fails fast") {
        const std::string path = unique_socket_path("stale");
        ::unlink(path.c_str());
        {
            // A socket file whose server is gone (bound, never unlinked).
            const int dead = ::socket(AF_UNIX, SOCK_STREAM, 0);
            const auto a = ringwork::io::SocketAddress::unix_path(path);
            REQUIRE(::bind(dead, a.data(), a.length) == 0);
            ::close(dead);
        }
        {
            UnixServer s(ringwork::io::SocketAddress::unix_path(path));
            REQUIRE(s.error.empty());
            const int fd = connect_unix(path);
            REQUIRE(fd >= 0);
            CHECK(body_of(get(fd, "/after-stale")) == "unix /after-stale");
            ::close(fd);
            // A second server on the live path fails (it must not steal the socket).
            Server other;
            CHECK_THROWS_WITH_AS(other.listen_and_serve(ringwork::io::SocketAddress::unix_path(path), 1),
                                 doctest::Contains(path.c_str()), std::system_error);
            const int again = connect_unix(path); // the first still serves
            REQUIRE(again >= 0);
            CHECK(body_of(get(again, "/still")) == "unix /still");
            ::close(again);
        }
        // A regular file is never removed.
        const int f = ::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        REQUIRE(f >= 0);
        ::close(f);
        Server other;
        CHECK_THROWS_AS(other.listen_and_serve(ringwork::io::SocketAddress::unix_path(path), 1), std::system_error);
        struct stat st {};
        CHECK(::lstat(path.c_str(), &st) == 0);
        CHECK(S_ISREG(st.st_mode));
        ::unlink(path.c_str());
        // Configuration errors name the field.
        CHECK_THROWS_WITH_AS(ringwork::io::SocketAddress::unix_path(std::string(200, 'x')),
                             doctest::Contains("SocketAddress::unix_path"), std::invalid_argument);
        CHECK_THROWS_WITH_AS(ringwork::io::SocketAddress::unix_path(""), doctest::Contains("SocketAddress::unix_path"),
                             std::invalid_argument);
        CHECK(ringwork::io::SocketAddress::parse("unix:/run/x.sock").value().to_string() == "unix:/run/x.sock");
        CHECK(ringwork::io::SocketAddress::parse("unix:@abstract").value().path() == "@abstract");
    }

    TEST_CASE("systemd socket activation: LISTEN_FDS/LISTEN_PID hand a TCP and a Unix socket over") {
        const std::string path = unique_socket_path("systemd");
        ::unlink(path.c_str());
        const int status = test::run_in_child([&]() -> int {
            // What systemd does: listening sockets at fds 3 and 4, then the variables.
            auto tcp = ringwork::io::Listener::bind(ringwork::io::SocketAddress::loopback(0));
            const std::uint16_t port = tcp.local_address().port();
            auto unix_listener = ringwork::io::Listener::bind(ringwork::io::SocketAddress::unix_path(path));
            const int a = tcp.release();
            const int b = unix_listener.release();
            if (::dup2(a, 3) != 3 || ::dup2(b, 4) != 4) {
                return 10;
            }
            if (a != 3 && a != 4) {
                ::close(a);
            }
            if (b != 3 && b != 4) {
                ::close(b);
            }
            ::setenv("LISTEN_FDS", "2", 1);
            ::setenv("LISTEN_PID", "1", 1); // another process: refused, naming the variable
            try {
                (void)Server::systemd_listen_fds();
                return 11;
            } catch (const std::runtime_error& e) {
                if (std::string_view(e.what()).find("LISTEN_PID") == std::string_view::npos) {
                    return 12;
                }
            }
            ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);
            std::vector<int> fds = Server::systemd_listen_fds();
            if (fds != std::vector<int>{3, 4} || std::getenv("LISTEN_FDS") != nullptr ||
                std::getenv("LISTEN_PID") != nullptr) {
                return 13;
            }
            Server server;
            server.set_handler([](Exchange& x) { x.response.set_body("inherited"); });
            std::atomic<int> ready_port{-1};
            std::thread t([&] {
                server.listen_and_serve_fds(fds, 2, [&](std::uint16_t p) { ready_port = p; });
            });
            int code = 0;
            if (!test::eventually([&] { return ready_port.load() >= 0; })) {
                code = 14;
            } else if (ready_port.load() != port) {
                code = 15;
            } else {
                const int c1 = test::connect_blocking(port);
                const int c2 = connect_unix(path);
                if (c2 < 0) {
                    code = 16;
                } else if (body_of(get(c1, "/tcp")) != "inherited" || body_of(get(c2, "/unix")) != "inherited") {
                    code = 17;
                }
                ::close(c1);
                if (c2 >= 0) {
                    ::close(c2);
                }
            }
            server.shutdown();
            t.join();
            if (code == 0 && ::fcntl(3, F_GETFD) >= 0) {
                code = 18; // listen_and_serve_fds owns and closes the descriptors
            }
            return code;
        });
        ::unlink(path.c_str());
        REQUIRE(status != -1);
        CHECK(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0);
    }

    TEST_CASE("listen_and_serve_fds rejects a descriptor that is not a listening socket, naming it") {
        int p[2];
        REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
        Server s;
        CHECK_THROWS_WITH_AS(s.listen_and_serve_fds({p[0]}, 1), doctest::Contains(fmt::format("fd {}", p[0]).c_str()),
                             std::invalid_argument);
        CHECK(::fcntl(p[0], F_GETFD) < 0); // owned: closed even on failure
        ::close(p[1]);
    }
}

// -----------------------------------------------------------------------------------------
// Zero-copy large static bodies (sendmsg from the caller's memory).

namespace {

/// Static memory with a recognisable pattern (position-dependent, so a reordered or shifted
/// byte shows).
const std::string& big_body(std::size_t which) {
    static const std::string a = [] {
        std::string s(3U << 20, '\0');
        for (std::size_t i = 0; i < s.size(); ++i) {
            s[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
        }
        return s;
    }();
    static const std::string b = [] {
        std::string s(20000, '\0');
        for (std::size_t i = 0; i < s.size(); ++i) {
            s[i] = static_cast<char>('A' + (i * 13) % 26);
        }
        return s;
    }();
    return which == 0 ? a : b;
}

void zero_copy_handler(Exchange& x) {
    const std::string_view path = x.request.raw_path();
    if (path == "/huge") {
        x.response.set_body_static(big_body(0));
    } else if (path == "/large") {
        x.response.set_body_static(big_body(1));
    } else if (path == "/small-static") {
        x.response.set_body_static("small static body"); // below the threshold: copied
    } else {
        x.response.set_body("copied " + std::string(path));
    }
}

} // namespace

TEST_SUITE("server zero-copy") {
    TEST_CASE("large static bodies go out from their own memory, intact and in order when pipelined") {
        test::RunningServer s(ServerOptions{}, [](Exchange& x) { zero_copy_handler(x); });
        const int fd = test::connect_blocking(s.port);
        // One batch: small, huge (partial sends certain), small static, large, huge, small.
        const std::string req = "GET /a HTTP/1.1\r\nHost: t\r\n\r\n"
                                "GET /huge HTTP/1.1\r\nHost: t\r\n\r\n"
                                "GET /small-static HTTP/1.1\r\nHost: t\r\n\r\n"
                                "GET /large HTTP/1.1\r\nHost: t\r\n\r\n"
                                "GET /huge HTTP/1.1\r\nHost: t\r\n\r\n"
                                "GET /b HTTP/1.1\r\nHost: t\r\n\r\n";
        REQUIRE(test::write_all(fd, req));
        ResponseReader reader(fd);
        CHECK(body_of(reader.next()) == "copied /a");
        CHECK(body_of(reader.next()) == big_body(0));
        CHECK(body_of(reader.next()) == "small static body");
        CHECK(body_of(reader.next()) == big_body(1));
        const std::string huge2 = reader.next();
        CHECK(huge2.find("Content-Length: 3145728\r\n") != std::string::npos);
        CHECK(body_of(huge2) == big_body(0));
        CHECK(body_of(reader.next()) == "copied /b");
        ::close(fd);
        const auto st = s.server.stats();
        CHECK(st.body_bytes_zero_copy == 2 * big_body(0).size() + big_body(1).size());
        // Only the small bodies were copied into output buffers.
        CHECK(st.body_bytes_copied == std::string("copied /a").size() + std::string("small static body").size() +
                                          std::string("copied /b").size());
    }

    TEST_CASE("a large body built with set_body is copied (its buffer goes back to the pool)") {
        test::RunningServer s(ServerOptions{}, [](Exchange& x) { x.response.set_body(big_body(1)); });
        const int fd = test::connect_blocking(s.port);
        REQUIRE(test::write_all(fd, "GET /x HTTP/1.1\r\nHost: t\r\n\r\n"));
        CHECK(body_of(read_response(fd)) == big_body(1));
        ::close(fd);
        CHECK(s.server.stats().body_bytes_zero_copy == 0);
        CHECK(s.server.stats().body_bytes_copied == big_body(1).size());
    }
}
