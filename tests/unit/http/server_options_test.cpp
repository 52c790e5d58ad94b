// SPDX-License-Identifier: MIT
// ServerOptions beyond the basics, over loopback: error_handler, header_received, refused
// expectations, logger/log_all_errors/secure_error_log_message, conn_state, TCP keep-alive,
// reduce_memory_usage, read_buffer_size/ring_entries/buffer_count, hijack/keep_hijacked_conns.
#include <ringwork/http/server.hpp>
#include <ringwork/io/timer.hpp>

#include "helpers.hpp"
#include "http_reader.hpp"
#include "http/server_metrics.hpp"
#include "log_capture.hpp"
#include "running_server.hpp"
#include "io/buffer_ring.hpp"
#include "io/reactor_impl.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using ringwork::http::ConnState;
using ringwork::http::Exchange;
using ringwork::http::HijackedConn;
using ringwork::http::RequestConfig;
using ringwork::http::Server;
using ringwork::http::ServerOptions;
using ringwork::runtime::Task;

namespace {

/// Output buffers a reactor's pool holds after its first connection took one and gave it
/// back: that connection's pair and the growth's margin, 8 pairs (ReactorState::out_margin_for).
constexpr std::size_t kFirstGrowth = 2 + 2 * 8;

std::atomic<int> handler_calls{0};

/// The hijack handler of /upgrade: greet, read one line, echo it back raw, return (the server
/// closes the socket).
Task<> line_echo(HijackedConn conn) {
    (void)co_await conn.send("HELLO\n");
    std::string line;
    while (line.find('\n') == std::string::npos) {
        auto r = co_await conn.recv();
        if (!r || r->empty()) {
            co_return;
        }
        line.append(*r);
    }
    (void)co_await conn.send(line.substr(0, line.find('\n') + 1));
}

/// keep_hijacked_conns: the connection outlives the hijack handler in a task of our own.
Task<> later(HijackedConn conn) {
    if (!conn.owns_socket()) {
        co_return; // the server kept it: it is closed (and gone) once the hijack handler returned
    }
    co_await ringwork::io::sleep_for(200ms);
    (void)co_await conn.send("LATER\n");
    co_await conn.close();
}

Task<> keep_and_hand_over(HijackedConn conn) {
    (void)co_await conn.send("HELLO\n");
    ringwork::io::Reactor::current()->spawn(later(std::move(conn)));
}

/// keep_hijacked_conns, but the handler drops the connection without closing it.
Task<> keep_and_drop(HijackedConn conn) { (void)co_await conn.send("HELLO\n"); }

void upgrade(Exchange& x, ringwork::http::HijackHandler handler) {
    x.response.set_status(101);
    x.response.set_header("Upgrade", "line-echo");
    x.response.set_header("Connection", "Upgrade");
    x.hijack(std::move(handler));
}

void handle(Exchange& x) {
    ++handler_calls;
    const std::string_view path = x.request.raw_path();
    if (path == "/boom") {
        throw std::runtime_error("boom");
    }
    if (path == "/upgrade") {
        upgrade(x, line_echo);
        return;
    }
    if (path == "/keep") {
        upgrade(x, keep_and_hand_over);
        return;
    }
    if (path == "/drop") {
        upgrade(x, keep_and_drop);
        return;
    }
    if (path == "/own-server") {
        x.response.set_header("Server", "mine");
        x.response.set_body("own");
        return;
    }
    if (path == "/404") {
        x.response.set_status(404);
        x.response.set_body("nope");
        return;
    }
    if (path == "/200k") {
        x.response.set_body(std::string(200 * 1024, 'k'));
        return;
    }
    if (path == "/huge") {
        x.response.set_body(std::string(16U << 20, 'x'));
        return;
    }
    if (path == "/reactor") {
        auto& impl = ringwork::io::detail::current_impl();
        const auto* ring = impl.buffer_ring();
        x.response.set_body(fmt::format("sq={} size={} count={}", ringwork::io::Reactor::current()->features().sq_entries,
                                        impl.spare().buffer_size(), ring != nullptr ? ring->count() : 0U));
        return;
    }
    x.response.set_body(fmt::format("ok {} body={}", path, x.request.body().size()));
}

/// The test server of this file (the `handle` routes above).
class RunningServer : public test::RunningServer {
public:
    explicit RunningServer(ServerOptions options) : test::RunningServer(std::move(options), handle) {}
};

using test::LogCapture;

/// Thread-safe record of ServerOptions::conn_state calls.
class StateLog {
public:
    std::function<void(int, ConnState)> sink() {
        return [this](int fd, ConnState s) {
            std::lock_guard lock(mutex_);
            events_.emplace_back(fd, s);
        };
    }
    std::vector<std::string> names() const {
        std::lock_guard lock(mutex_);
        std::vector<std::string> out;
        for (const auto& e : events_) {
            out.emplace_back(ringwork::http::to_string(e.second));
        }
        return out;
    }

private:
    mutable std::mutex mutex_;
    std::vector<std::pair<int, ConnState>> events_;
};

/// Read until end of stream; returns false on a timeout or error instead of EOF.
bool read_until_eof(int fd, std::string& got) {
    char buf[65536];
    for (;;) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n == 0) {
            return true;
        }
        if (n < 0) {
            return false;
        }
        got.append(buf, static_cast<std::size_t>(n));
    }
}

/// Read one response (head plus Content-Length body) or until EOF/timeout.
std::string read_response(int fd) {
    std::string got;
    char buf[65536];
    std::size_t end = std::string::npos;
    for (;;) {
        if (end == std::string::npos) {
            end = got.find("\r\n\r\n"); // once: a 16 MiB body must not make this quadratic
        }
        if (end != std::string::npos) {
            const auto cl = got.find("Content-Length: ");
            const std::size_t len = cl != std::string::npos && cl < end ? std::stoul(got.substr(cl + 16)) : 0;
            if (got.size() >= end + 4 + len) {
                return got;
            }
        }
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) {
            return got;
        }
        got.append(buf, static_cast<std::size_t>(n));
    }
}

/// Read until `needle` appears (or EOF/timeout).
std::string read_until(int fd, std::string_view needle) {
    std::string got;
    char buf[4096];
    while (got.find(needle) == std::string::npos) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) {
            break;
        }
        got.append(buf, static_cast<std::size_t>(n));
    }
    return got;
}

std::string round_trip(int fd, std::string_view request) {
    REQUIRE(test::write_all(fd, request));
    return read_response(fd);
}

std::string get(std::string_view path) { return fmt::format("GET {} HTTP/1.1\r\nHost: t\r\n\r\n", path); }

std::string post(std::string_view path, std::size_t body_size) {
    return fmt::format("POST {} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{}", path, body_size,
                       std::string(body_size, 'b'));
}

} // namespace

TEST_SUITE("server options") {
    TEST_CASE("error_handler customizes error responses; the connection still closes") {
        ServerOptions o;
        o.max_request_body_size = 8;
        o.error_handler = [](Exchange& x, int status, std::string_view detail) {
            x.response.set_header("X-Error", "custom");
            x.response.set_body(fmt::format("custom {} for '{}': {}", status, x.request.raw_path(), detail));
        };
        RunningServer s(o);
        handler_calls = 0;
        SUBCASE("a parse error: the hook sees an empty request") {
            const int fd = test::connect_blocking(s.port, 3000);
            REQUIRE(test::write_all(fd, "GET /p HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n"));
            std::string got;
            CHECK(read_until_eof(fd, got));
            CHECK(got.find("HTTP/1.1 400 Bad Request\r\n") == 0);
            CHECK(got.find("X-Error: custom\r\n") != std::string::npos);
            CHECK(got.find("Connection: close\r\n") != std::string::npos);
            CHECK(got.find("custom 400 for '': ") != std::string::npos);
            ::close(fd);
        }
        SUBCASE("a limit (413): the hook sees the parsed head") {
            const int fd = test::connect_blocking(s.port, 3000);
            REQUIRE(test::write_all(fd, "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n"));
            std::string got;
            CHECK(read_until_eof(fd, got));
            CHECK(got.find("HTTP/1.1 413 ") == 0);
            CHECK(got.find("custom 413 for '/upload': request body exceeds") != std::string::npos);
            ::close(fd);
        }
        CHECK(handler_calls.load() == 0);
    }

    TEST_CASE("default Server and Date lines: name, no_default_server_header, no_default_date, a handler's own Server") {
        // Counts the occurrences of `needle` in `s`.
        const auto count = [](const std::string& s, std::string_view needle) {
            std::size_t n = 0;
            for (std::size_t at = s.find(needle); at != std::string::npos; at = s.find(needle, at + 1)) {
                ++n;
            }
            return n;
        };
        struct Case {
            const char* name;
            bool no_server;
            bool no_date;
        };
        for (const Case& k : {Case{"acme/1.0", false, false}, Case{"acme/1.0", true, false},
                              Case{"acme/1.0", false, true}, Case{"acme/1.0", true, true}, Case{"", false, false}}) {
            CAPTURE(k.name);
            CAPTURE(k.no_server);
            CAPTURE(k.no_date);
            ServerOptions o;
            o.name = k.name;
            o.no_default_server_header = k.no_server;
            o.no_default_date = k.no_date;
            RunningServer s(o);
            const int fd = test::connect_blocking(s.port, 3000);
            for (const char* path : {"/plain", "/404", "/own-server"}) {
                CAPTURE(path);
                const std::string got = round_trip(fd, fmt::format("GET {} HTTP/1.1\r\nHost: t\r\n\r\n", path));
                const std::string head = got.substr(0, got.find("\r\n\r\n") + 2);
                const bool own = std::string_view(path) == "/own-server";
                CHECK(head.find(std::string_view(path) == "/404" ? "HTTP/1.1 404 Not Found\r\n" : "HTTP/1.1 200 OK\r\n") == 0);
                const bool want_default = !own && !k.no_server && *k.name != '\0';
                CHECK(count(head, "\r\nServer: acme/1.0\r\n") == (want_default ? 1U : 0U));
                CHECK(count(head, "\r\nServer: ") == (own || want_default ? 1U : 0U));
                CHECK(count(head, "\r\nServer: mine\r\n") == (own ? 1U : 0U));
                const std::size_t date = head.find("\r\nDate: ");
                CHECK((date != std::string::npos) == !k.no_date);
                if (date != std::string::npos) {
                    // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT", 29 bytes, then CRLF.
                    const std::string value = head.substr(date + 8, head.find("\r\n", date + 2) - date - 8);
                    CHECK(value.size() == 29);
                    CHECK(value.substr(25) == " GMT");
                    CHECK(value[3] == ',');
                    CHECK(count(head, "\r\nDate: ") == 1);
                }
            }
            ::close(fd);
        }
    }

    TEST_CASE("error_handler also shapes get_only's 405, keeping its Allow header") {
        ServerOptions o;
        o.get_only = true;
        o.error_handler = [](Exchange& x, int status, std::string_view) {
            x.response.set_body(fmt::format("{{\"status\":{}}}", status));
            x.response.set_content_type("application/json");
        };
        RunningServer s(o);
        const int fd = test::connect_blocking(s.port, 3000);
        const std::string got = round_trip(fd, post("/x", 2));
        CHECK(got.find("HTTP/1.1 405 Method Not Allowed\r\n") == 0);
        CHECK(got.find("Allow: GET\r\n") != std::string::npos);
        CHECK(got.find("{\"status\":405}") != std::string::npos);
        ::close(fd);
    }

    TEST_CASE("header_received overrides the body limit and the read timeout per request") {
        ServerOptions o;
        o.max_request_body_size = 16;
        o.header_received = [](const ringwork::http::Request& r) {
            RequestConfig c;
            if (r.raw_path() == "/small") {
                c.max_request_body_size = 4;
            } else if (r.raw_path() == "/large") {
                c.max_request_body_size = 1000;
            } else if (r.raw_path() == "/slow") {
                c.read_timeout = 200ms;
            }
            return c;
        };
        RunningServer s(o);
        SUBCASE("smaller and larger than the server's limit") {
            const int a = test::connect_blocking(s.port, 3000);
            CHECK(round_trip(a, post("/small", 10)).find("HTTP/1.1 413 ") == 0);
            ::close(a);
            const int b = test::connect_blocking(s.port, 3000);
            CHECK(round_trip(b, post("/large", 500)).find("ok /large body=500") != std::string::npos);
            CHECK(round_trip(b, post("/other", 10)).find("ok /other body=10") != std::string::npos);
            CHECK(round_trip(b, post("/other", 20)).find("HTTP/1.1 413 ") == 0); // the server's limit again
            ::close(b);
        }
        SUBCASE("read_timeout: a stalled body gets 408 although the server has none") {
            const int fd = test::connect_blocking(s.port, 3000);
            REQUIRE(test::write_all(fd, "POST /slow HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc"));
            std::string got;
            CHECK(read_until_eof(fd, got)); // not the client's 3 s timeout
            CHECK(got.find("HTTP/1.1 408 ") == 0);
            ::close(fd);
        }
    }

    TEST_CASE("header_received's write_timeout cancels a response the client does not read") {
        ServerOptions o;
        o.header_received = [](const ringwork::http::Request& r) {
            RequestConfig c;
            if (r.raw_path() == "/huge") {
                c.write_timeout = 200ms;
            }
            return c;
        };
        RunningServer s(o);
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd >= 0);
        const int small = 4096;
        ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(s.port.load());
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0); // NOLINT
        timeval tv{3, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        REQUIRE(test::write_all(fd, get("/huge")));
        // Not reading: the send stalls past the write timeout and the server gives up.
        CHECK(test::eventually([&] { return s.server.stats().requests == 1 && s.server.open_connections() == 0; },
                               10000ms));
        std::string got;
        CHECK(read_until_eof(fd, got));
        CHECK(got.find("HTTP/1.1 200 OK") == 0);
        CHECK(got.size() < (16U << 20));
        ::close(fd);
    }

    TEST_CASE("a refused expectation answers its status, never reads the body and closes") {
        ServerOptions o;
        o.continue_handler = [](const ringwork::http::Request& r) { return r.raw_path() == "/ok" ? 100 : 417; };
        RunningServer s(o);
        handler_calls = 0;
        SUBCASE("refused") {
            const int fd = test::connect_blocking(s.port, 3000);
            REQUIRE(test::write_all(
                fd, "POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n"));
            std::string got;
            CHECK(read_until_eof(fd, got)); // closed without waiting for the body
            CHECK(got.find("HTTP/1.1 417 Expectation Failed\r\n") == 0);
            CHECK(got.find("100 Continue") == std::string::npos);
            CHECK(got.find("Connection: close\r\n") != std::string::npos);
            CHECK(handler_calls.load() == 0);
            ::close(fd);
        }
        SUBCASE("accepted") {
            const int fd = test::connect_blocking(s.port, 3000);
            REQUIRE(test::write_all(
                fd, "POST /ok HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
            CHECK(read_until(fd, "\r\n\r\n") == "HTTP/1.1 100 Continue\r\n\r\n");
            CHECK(round_trip(fd, "hello").find("ok /ok body=5") != std::string::npos);
            ::close(fd);
        }
    }

    TEST_CASE("an expectation whose Content-Length is over the limit gets 413 at once, not 100 Continue") {
        ServerOptions o;
        o.max_request_body_size = 1000;
        RunningServer s(o);
        handler_calls = 0;
        const int fd = test::connect_blocking(s.port, 3000);
        REQUIRE(test::write_all(
            fd, "POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 1001\r\nExpect: 100-continue\r\n\r\n"));
        std::string got;
        CHECK(read_until_eof(fd, got)); // answered and closed without any body sent
        CHECK(got.find("HTTP/1.1 413 ") == 0);
        CHECK(got.find("100 Continue") == std::string::npos);
        CHECK(handler_calls.load() == 0);
        ::close(fd);
        // Within the limit the 100 still comes first.
        const int ok = test::connect_blocking(s.port, 3000);
        REQUIRE(test::write_all(
            ok, "POST /ok HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n"));
        CHECK(read_until(ok, "\r\n\r\n") == "HTTP/1.1 100 Continue\r\n\r\n");
        CHECK(round_trip(ok, std::string(1000, 'b')).find("ok /ok body=1000") != std::string::npos);
        ::close(ok);
    }

    TEST_CASE("the server's own error answers to HEAD declare their length and send no content") {
        ServerOptions o;
        o.max_request_body_size = 8;
        SUBCASE("default answers") {}
        SUBCASE("error_handler answers") {
            // The hook's request is reset when the head failed: HEAD is still known.
            o.error_handler = [](Exchange& x, int status, std::string_view) {
                x.response.set_body(fmt::format("{{\"status\":{}}}", status));
            };
        }
        RunningServer s(o);
        for (const std::string_view request :
             {std::string_view("HEAD /h HTTP/1.1\r\nHost: t\r\nContent-Length: 9\r\n\r\n"),
              std::string_view("HEAD /h HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
              std::string_view("HEAD /h HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n"),
              std::string_view("\r\nHEAD /h HTTP/1.1\r\nBad Header\r\n\r\n")}) {
            INFO(request);
            const int fd = test::connect_blocking(s.port, 3000);
            REQUIRE(test::write_all(fd, request));
            std::string got;
            CHECK(read_until_eof(fd, got));
            const auto end = got.find("\r\n\r\n");
            REQUIRE(end != std::string::npos);
            CHECK(got.find("HTTP/1.1 4") == 0);
            CHECK(got.find("Content-Length: ") != std::string::npos);
            CHECK(got.size() == end + 4); // nothing after the head
            ::close(fd);
        }
        // The same error to GET carries its content.
        const int fd = test::connect_blocking(s.port, 3000);
        REQUIRE(test::write_all(fd, "GET /h HTTP/1.1\r\nHost: t\r\nContent-Length: 9\r\n\r\n"));
        std::string got;
        CHECK(read_until_eof(fd, got));
        CHECK(got.find("HTTP/1.1 413 ") == 0);
        CHECK((got.find("Content Too Large: request body exceeds the server's limit") != std::string::npos ||
               got.ends_with("{\"status\":413}")));
        ::close(fd);
    }

    TEST_CASE("a connection that never sends its first request is closed after header_read_timeout") {
        ServerOptions o;
        o.header_read_timeout = 300ms; // idle_timeout stays 0: between requests, no limit
        RunningServer s(o);
        const auto start = std::chrono::steady_clock::now(); // before the accept: a sound lower bound
        const int silent = test::connect_blocking(s.port, 5000);
        std::string got;
        CHECK(read_until_eof(silent, got)); // closed by the server, well before the 5 s receive timeout
        CHECK(got.empty());                 // without an answer: there was no request
        CHECK(std::chrono::steady_clock::now() - start >= 250ms);
        ::close(silent);
        // After a first request the idle limit (none here) applies, not header_read_timeout.
        const int served = test::connect_blocking(s.port, 5000);
        CHECK(round_trip(served, get("/a")).find("HTTP/1.1 200 OK") == 0);
        std::this_thread::sleep_for(600ms);
        CHECK(round_trip(served, get("/b")).find("HTTP/1.1 200 OK") == 0);
        ::close(served);
    }

    TEST_CASE("empty lines after a request leave the connection idle: no 408 for a request never begun") {
        ServerOptions o;
        o.header_read_timeout = 200ms; // a begun head would get its 408 after this
        RunningServer s(o);
        const int fd = test::connect_blocking(s.port, 3000);
        CHECK(round_trip(fd, "GET /a HTTP/1.1\r\nHost: t\r\n\r\n\r\n").find("ok /a") != std::string::npos);
        // Well past header_read_timeout: still idle, still open, and the next request is served.
        CHECK(test::eventually([&] { return s.server.stats().requests == 1; }, 3000ms));
        std::this_thread::sleep_for(600ms);
        CHECK(round_trip(fd, get("/b")).find("HTTP/1.1 200 OK") == 0);
        CHECK(s.server.stats().parse_errors == 0);
        ::close(fd);
    }

    TEST_CASE("logger: handler failures with request details, unless secure_error_log_message") {
        LogCapture log;
        ServerOptions o;
        o.logger = log.sink();
        SUBCASE("default") {
            RunningServer s(o);
            const int fd = test::connect_blocking(s.port, 3000);
            CHECK(round_trip(fd, get("/boom?token=s3cret")).find("HTTP/1.1 500 ") == 0);
            ::close(fd);
            const int bad = test::connect_blocking(s.port, 3000);
            REQUIRE(test::write_all(bad, "GET /p HTTP/1.1\r\nHost: t\r\nX-Secret: hunter2\r\nBad Header\r\n\r\n"));
            std::string got;
            CHECK(read_until_eof(bad, got));
            ::close(bad);
            REQUIRE(test::eventually([&] { return log.any("400 Bad Request"); }, 3000ms));
            INFO(log.all());
            CHECK(log.any("handler failed (request \"GET /boom?token=s3cret\"): boom"));
            CHECK(log.any("hunter2"));
        }
        SUBCASE("secure") {
            o.secure_error_log_message = true;
            RunningServer s(o);
            const int fd = test::connect_blocking(s.port, 3000);
            CHECK(round_trip(fd, get("/boom?token=s3cret")).find("HTTP/1.1 500 ") == 0);
            ::close(fd);
            const int bad = test::connect_blocking(s.port, 3000);
            REQUIRE(test::write_all(bad, "GET /p HTTP/1.1\r\nHost: t\r\nX-Secret: hunter2\r\nBad Header\r\n\r\n"));
            std::string got;
            CHECK(read_until_eof(bad, got));
            ::close(bad);
            REQUIRE(test::eventually([&] { return log.any("400 Bad Request"); }, 3000ms));
            INFO(log.all());
            CHECK(log.any("handler failed (method GET): boom"));
            CHECK_FALSE(log.any("s3cret"));
            CHECK_FALSE(log.any("hunter2"));
        }
    }

    TEST_CASE("common errors (reset, unexpected EOF, timeouts) are logged only with log_all_errors") {
        LogCapture log;
        ServerOptions o;
        o.logger = log.sink();
        o.header_read_timeout = 300ms;
        bool all = false;
        SUBCASE("default") {}
        SUBCASE("log_all_errors") {
            all = true;
            o.log_all_errors = true;
        }
        RunningServer s(o);
        const int reset = test::connect_blocking(s.port, 3000);
        REQUIRE(test::write_all(reset, "GET / HTTP/1.1\r\nHo"));
        std::this_thread::sleep_for(20ms);
        test::reset_close(reset);
        const int eof = test::connect_blocking(s.port, 3000);
        REQUIRE(test::write_all(eof, "GET / HTTP/1.1\r\nHo"));
        ::shutdown(eof, SHUT_WR);
        const int slow = test::connect_blocking(s.port, 3000);
        REQUIRE(test::write_all(slow, "GET / HTTP/1.1\r\nHo"));
        std::string got;
        CHECK(read_until_eof(slow, got));
        CHECK(got.find("HTTP/1.1 408 ") == 0);
        ::close(slow);
        ::close(eof);
        REQUIRE(test::eventually([&] { return s.server.open_connections() == 0; }, 3000ms));
        // A logged error as a barrier: everything before it has been handled.
        const int bad = test::connect_blocking(s.port, 3000);
        REQUIRE(test::write_all(bad, "GET /p HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n"));
        CHECK(read_until_eof(bad, got));
        ::close(bad);
        REQUIRE(test::eventually([&] { return log.any("400 Bad Request"); }, 3000ms));
        INFO(log.all());
        if (all) {
            CHECK(log.lines().size() == 4);
            CHECK(log.any("reset by peer"));
            CHECK(log.any("unexpected EOF"));
            CHECK(log.any("408 Request Timeout"));
        } else {
            CHECK(log.lines().size() == 1);
        }
    }

    TEST_CASE("the concurrency message goes through the logger") {
        LogCapture log;
        ServerOptions o;
        o.logger = log.sink();
        o.concurrency = 1;
        RunningServer s(o);
        const int a = test::connect_blocking(s.port, 3000);
        CHECK(round_trip(a, get("/a")).find("200 OK") != std::string::npos);
        const int b = test::connect_blocking(s.port, 3000);
        std::string got;
        CHECK(read_until_eof(b, got));
        CHECK(got.find("HTTP/1.1 503 ") == 0);
        CHECK(test::eventually([&] { return log.any("Concurrency limit (1) exceeded"); }, 3000ms));
        ::close(a);
        ::close(b);
    }

    TEST_CASE("conn_state: new, active, idle, active, idle, closed for two requests on one connection") {
        StateLog states;
        ServerOptions o;
        o.conn_state = states.sink();
        RunningServer s(o);
        const int fd = test::connect_blocking(s.port, 3000);
        CHECK(round_trip(fd, get("/a")).find("ok /a") != std::string::npos);
        CHECK(round_trip(fd, get("/b")).find("ok /b") != std::string::npos);
        ::close(fd);
        REQUIRE(test::eventually([&] { return states.names().size() >= 6; }, 3000ms));
        std::this_thread::sleep_for(50ms);
        CHECK(states.names() == std::vector<std::string>{"new", "active", "idle", "active", "idle", "closed"});
    }

    TEST_CASE("tcp_keepalive and tcp_keepalive_period are set on accepted sockets") {
        struct Seen {
            std::mutex mutex;
            int keepalive = -1;
            int idle = -1;
            int interval = -1;
        };
        static Seen seen;
        auto record = [](int fd, ConnState state) {
            if (state != ConnState::new_connection) {
                return;
            }
            int ka = -1;
            int idle = -1;
            int intvl = -1;
            socklen_t len = sizeof(int);
            ::getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &ka, &len);
            len = sizeof(int);
            ::getsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, &len);
            len = sizeof(int);
            ::getsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, &len);
            std::lock_guard lock(seen.mutex);
            seen.keepalive = ka;
            seen.idle = idle;
            seen.interval = intvl;
        };
        auto probe = [&](ServerOptions o) {
            {
                std::lock_guard lock(seen.mutex);
                seen.keepalive = -1;
            }
            o.conn_state = record;
            RunningServer s(o);
            const int fd = test::connect_blocking(s.port, 3000);
            CHECK(round_trip(fd, get("/k")).find("200 OK") != std::string::npos);
            ::close(fd);
            std::lock_guard lock(seen.mutex);
            return std::tuple{seen.keepalive, seen.idle, seen.interval};
        };
        ServerOptions off;
        CHECK(std::get<0>(probe(off)) == 0);
        ServerOptions on;
        on.tcp_keepalive = true;
        on.tcp_keepalive_period = 7s;
        CHECK(probe(on) == std::tuple{1, 7, 7});
        ServerOptions rounded;
        rounded.tcp_keepalive = true;
        rounded.tcp_keepalive_period = 1500ms;
        CHECK(probe(rounded) == std::tuple{1, 2, 2});
        ServerOptions bad;
        bad.tcp_keepalive_period = 40000s;
        CHECK_THROWS_WITH_AS(Server{bad}, doctest::Contains("ServerOptions.tcp_keepalive_period"), std::invalid_argument);
    }

    TEST_CASE("a connection whose last request spanned two receives idles like any other") {
        // The request's head is gathered in the carry buffer; once parsed to its end, the
        // connection waits for a new request: idle limit (not header_read_timeout), buffers back.
        ServerOptions o;
        o.header_read_timeout = 300ms;
        o.idle_timeout = 30s;
        o.max_idle_worker_duration = 60s;
        SUBCASE("not parked") { o.idle_park_delay = 0ms; }
        SUBCASE("parked after 100 ms") { o.idle_park_delay = 100ms; }
        RunningServer s(o);
        const int fd = test::connect_blocking(s.port, 5000);
        const std::string req = get("/split");
        REQUIRE(test::write_all(fd, req.substr(0, 10)));
        REQUIRE(test::eventually([&] { return s.server.stats().carry_copies == 1; }, 3000ms));
        REQUIRE(test::write_all(fd, req.substr(10)));
        CHECK(read_response(fd).find("ok /split") != std::string::npos);
        const std::uint64_t copies = s.server.stats().carry_copies; // the head's two parts
        CHECK(test::eventually([&] {
            const auto st = s.server.stats();
            return st.out_buffers_held == 0 && st.carry_buffers_held == 0;
        }, 3000ms));
        if (o.idle_park_delay.count() != 0) {
            CHECK(test::eventually([&] { return s.server.stats().connections_parked == 1; }, 3000ms));
        }
        std::this_thread::sleep_for(600ms); // twice header_read_timeout: no 408, no close
        CHECK(s.server.stats().connections_open == 1);
        CHECK(round_trip(fd, get("/again")).find("ok /again") != std::string::npos);
        CHECK(s.server.stats().carry_copies == copies); // the next window was not copied
        ::close(fd);
    }

    TEST_CASE("idle keep-alive connections give their output buffers back to the pool (either setting)") {
        ServerOptions o;
        o.max_idle_worker_duration = 60s; // no trimming during the test
        SUBCASE("reduce_memory_usage off") {}
        SUBCASE("reduce_memory_usage on") { o.reduce_memory_usage = true; }
        RunningServer s(o);
        std::vector<int> fds;
        for (int i = 0; i < 10; ++i) {
            fds.push_back(test::connect_blocking(s.port, 3000));
            CHECK(round_trip(fds.back(), get("/m")).find("200 OK") != std::string::npos);
        }
        REQUIRE(s.server.stats().connections_open == 10);
        CHECK(test::eventually([&] { return s.server.stats().out_buffers_held == 0; }, 3000ms));
        const auto st = s.server.stats();
        CHECK(st.out_buffers_pooled >= 1); // reused by the next request: no allocation
        CHECK(st.carry_buffers_held == 0);
        CHECK(round_trip(fds[0], get("/m")).find("200 OK") != std::string::npos); // from the pool
        for (const int fd : fds) {
            ::close(fd);
        }
    }

    TEST_CASE("reduce_memory_usage trims the pools every max_idle_worker_duration") {
        ServerOptions o;
        o.reduce_memory_usage = true;
        o.max_idle_worker_duration = 100ms;
        RunningServer s(o);
        std::vector<int> fds;
        for (int i = 0; i < 4; ++i) {
            fds.push_back(test::connect_blocking(s.port, 3000));
            CHECK(round_trip(fds.back(), get("/m")).find("200 OK") != std::string::npos);
        }
        // The connections stay open (their workers are busy: the reaper retires none), yet the
        // pooled buffers go back to the heap.
        CHECK(test::eventually([&] {
            const auto st = s.server.stats();
            return st.out_buffers_held == 0 && st.out_buffers_pooled == 0;
        }, 3000ms));
        CHECK(s.server.stats().connections_open == 4);
        for (const int fd : fds) {
            ::close(fd);
        }
    }

    TEST_CASE("read_buffer_size, ring_entries and buffer_count configure the reactors and are validated") {
        SUBCASE("validation names the field") {
            for (const unsigned bad : {100U, 128U, 1000U, 2U << 20}) {
                ServerOptions o;
                o.read_buffer_size = bad;
                CHECK_THROWS_WITH_AS(Server{o}, doctest::Contains("ServerOptions.read_buffer_size"), std::invalid_argument);
            }
            ServerOptions r;
            r.ring_entries = 1000;
            CHECK_THROWS_WITH_AS(Server{r}, doctest::Contains("ServerOptions.ring_entries"), std::invalid_argument);
            r.ring_entries = 65536;
            CHECK_THROWS_WITH_AS(Server{r}, doctest::Contains("ServerOptions.ring_entries"), std::invalid_argument);
            ServerOptions b;
            b.buffer_count = 3;
            CHECK_THROWS_WITH_AS(Server{b}, doctest::Contains("ServerOptions.buffer_count"), std::invalid_argument);
            ServerOptions ok;
            ok.read_buffer_size = 256;
            ok.ring_entries = 16;
            ok.buffer_count = 1;
            CHECK_NOTHROW(Server{ok});
        }
        SUBCASE("listen_and_serve's reactors get them") {
            ServerOptions o;
            o.read_buffer_size = 256;
            o.ring_entries = 64;
            o.buffer_count = 128;
            RunningServer s(o);
            const int fd = test::connect_blocking(s.port, 3000);
            const std::string got = round_trip(fd, get("/reactor"));
            CHECK(got.find("sq=64 size=256 ") != std::string::npos);
            if (got.find("count=0") == std::string::npos) { // 0: no buffer ring on this kernel
                CHECK(got.find("count=128") != std::string::npos);
            }
            // A head larger than a receive buffer spans buffers (gathered in the carry buffer).
            const std::string big = "GET /big HTTP/1.1\r\nHost: t\r\nX-Pad: " + std::string(600, 'p') + "\r\n\r\n";
            CHECK(round_trip(fd, big).find("ok /big") != std::string::npos);
            CHECK(s.server.stats().carry_copies > 0);
            ::close(fd);
        }
        SUBCASE("the default 4 KiB buffers hold the same head whole") {
            RunningServer s(ServerOptions{});
            const int fd = test::connect_blocking(s.port, 3000);
            const std::string big = "GET /big HTTP/1.1\r\nHost: t\r\nX-Pad: " + std::string(600, 'p') + "\r\n\r\n";
            CHECK(round_trip(fd, big).find("ok /big") != std::string::npos);
            CHECK(s.server.stats().carry_copies == 0);
            ::close(fd);
        }
    }

    TEST_CASE("hijack: 101, then raw bytes both ways; the server closes after the hijack handler") {
        StateLog states;
        ServerOptions o;
        o.conn_state = states.sink();
        RunningServer s(o);
        const int fd = test::connect_blocking(s.port, 3000);
        SUBCASE("the client writes after the greeting") {
            REQUIRE(test::write_all(fd, get("/upgrade")));
            const std::string greeting = read_until(fd, "HELLO\n");
            CHECK(greeting.find("HTTP/1.1 101 Switching Protocols\r\n") == 0);
            CHECK(greeting.find("Connection: Upgrade\r\n") != std::string::npos);
            CHECK(greeting.find("Upgrade: line-echo\r\n") != std::string::npos);
            CHECK(greeting.find("Content-Length") == std::string::npos);
            CHECK(greeting.ends_with("\r\n\r\nHELLO\n"));
            REQUIRE(test::write_all(fd, "ping\n"));
            std::string rest;
            CHECK(read_until_eof(fd, rest));
            CHECK(rest == "ping\n");
        }
        SUBCASE("bytes sent with the request reach the handler first") {
            REQUIRE(test::write_all(fd, get("/upgrade") + "early\n"));
            std::string all;
            CHECK(read_until_eof(fd, all));
            CHECK(all.ends_with("\r\n\r\nHELLO\nearly\n"));
        }
        ::close(fd);
        REQUIRE(test::eventually([&] { return s.server.open_connections() == 0; }, 3000ms));
        std::this_thread::sleep_for(20ms);
        CHECK(states.names() == std::vector<std::string>{"new", "active", "hijacked"});
    }

    TEST_CASE("keep_hijacked_conns: the hijack handler owns the socket beyond its return") {
        ServerOptions o;
        o.keep_hijacked_conns = true;
        RunningServer s(o);
        SUBCASE("handed to another task, which closes it later") {
            const int fd = test::connect_blocking(s.port, 3000);
            REQUIRE(test::write_all(fd, get("/keep")));
            std::string all;
            CHECK(read_until_eof(fd, all));
            CHECK(all.ends_with("\r\n\r\nHELLO\nLATER\n"));
            ::close(fd);
        }
        SUBCASE("dropped without close(): still closed") {
            const int fd = test::connect_blocking(s.port, 3000);
            REQUIRE(test::write_all(fd, get("/drop")));
            std::string all;
            CHECK(read_until_eof(fd, all));
            CHECK(all.ends_with("\r\n\r\nHELLO\n"));
            ::close(fd);
        }
        SUBCASE("ordinary requests still work") {
            const int fd = test::connect_blocking(s.port, 3000);
            CHECK(round_trip(fd, get("/a")).find("ok /a") != std::string::npos);
            CHECK(round_trip(fd, get("/b")).find("ok /b") != std::string::npos);
            ::close(fd);
        }
    }

    TEST_CASE("no_default_content_type: an untyped response has no Content-Type; a handler's own is kept") {
        auto typed = [](Exchange& x) {
            if (x.request.raw_path() == "/json") {
                x.response.set_header("Content-Type", "application/json");
                x.response.set_body("{}");
                return;
            }
            if (x.request.raw_path() == "/empty") {
                return; // 200 without content
            }
            x.response.set_body("plain");
        };
        // The Content-Type lines (any case) of a response's head.
        auto content_types = [](const std::string& response) {
            std::vector<std::string> out;
            const std::size_t head_end = response.find("\r\n\r\n");
            REQUIRE(head_end != std::string::npos);
            std::size_t at = response.find("\r\n") + 2; // past the status line
            while (at < head_end + 2) {
                const std::size_t end = response.find("\r\n", at);
                const std::string line = response.substr(at, end - at);
                std::string lower = line;
                for (char& c : lower) {
                    c = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
                }
                if (lower.starts_with("content-type:")) {
                    out.push_back(line);
                }
                at = end + 2;
            }
            return out;
        };
        for (const bool omit : {false, true}) {
            CAPTURE(omit);
            ServerOptions o;
            o.no_default_content_type = omit;
            test::RunningServer s(o, typed);
            const int fd = test::connect_blocking(s.port, 3000);
            const std::string plain = round_trip(fd, get("/plain"));
            CHECK(plain.starts_with("HTTP/1.1 200 OK\r\n"));
            CHECK(plain.ends_with("\r\n\r\nplain"));
            if (omit) {
                CHECK(content_types(plain).empty());
            } else {
                CHECK(content_types(plain) == std::vector<std::string>{"Content-Type: text/plain; charset=utf-8"});
            }
            const std::string json = round_trip(fd, get("/json"));
            CHECK(json.ends_with("\r\n\r\n{}"));
            CHECK(content_types(json) == std::vector<std::string>{"Content-Type: application/json"});
            // No content, no default type to describe it (either way).
            const std::string empty = round_trip(fd, get("/empty"));
            CHECK(empty.find("Content-Length: 0\r\n") != std::string::npos);
            CHECK(content_types(empty).empty());
            ::close(fd);
        }
    }

    TEST_CASE("sleep_when_concurrency_limits_exceeded: after a 503 nothing is accepted until the pause ends") {
        ServerOptions o;
        o.concurrency = 1;
        o.logger = [](std::string_view) {}; // the Concurrency message is expected
        SUBCASE("a pause of 2 s") { o.sleep_when_concurrency_limits_exceeded = 2000ms; }
        SUBCASE("no pause (the default)") {}
        const bool pause = o.sleep_when_concurrency_limits_exceeded.count() > 0;
        RunningServer s(o);
        // 1: an idle keep-alive connection holds the one slot.
        const int held = test::connect_blocking(s.port, 5000);
        CHECK(round_trip(held, get("/held")).find("ok /held") != std::string::npos);
        REQUIRE(s.server.stats().connections_accepted == 1);
        // 2: over the limit: 503 and EOF; with the option the accept loop pauses from here.
        const int second = test::connect_blocking(s.port, 5000);
        std::string refused;
        CHECK(read_until_eof(second, refused));
        CHECK(refused.starts_with("HTTP/1.1 503 "));
        REQUIRE(s.server.stats().rejected_concurrency == 1);
        // 3: connected right after (the kernel completes the handshake).
        const int third = test::connect_blocking(s.port, 5000);
        if (pause) {
            REQUIRE(test::write_all(third, get("/third"))); // a served connection would answer
            // For 300 ms, well inside the pause, the server takes nothing: neither refused nor
            // served, no byte for the client.
            auto moved = [&] {
                const auto st = s.server.stats();
                pollfd p{third, POLLIN, 0};
                return st.rejected_concurrency != 1 || st.connections_accepted != 1 || ::poll(&p, 1, 0) != 0;
            };
            CHECK_FALSE(test::eventually(moved, 300ms));
            // The slot frees long before the pause ends: the third is then served, not refused.
            ::close(held);
            REQUIRE(test::eventually([&] { return s.server.stats().connections_open == 0; }, 1000ms));
            const std::string answer = read_response(third);
            CHECK(answer.starts_with("HTTP/1.1 200 OK\r\n"));
            CHECK(answer.ends_with("ok /third body=0"));
            const auto st = s.server.stats();
            CHECK(st.rejected_concurrency == 1);
            CHECK(st.connections_accepted == 2);
        } else {
            // No pause: the third is refused at once, the first still holding the slot (no
            // request sent: the 503's close would reset a connection with unread bytes).
            std::string also_refused;
            CHECK(read_until_eof(third, also_refused));
            CHECK(also_refused.starts_with("HTTP/1.1 503 "));
            const auto st = s.server.stats();
            CHECK(st.rejected_concurrency == 2);
            CHECK(st.connections_accepted == 1);
            ::close(held);
        }
        ::close(second);
        ::close(third);
    }

    TEST_CASE("a worker retired under a steady load does not take the load's output buffers with it") {
        // The reaper trims the pools when it retires a worker. It kept the reserve of the
        // connections busy at that instant, and a keep-alive connection between two requests
        // holds no buffer: its next request allocated again. It keeps the reserve of the most
        // connections busy at once during its last interval.
        ServerOptions o;
        o.max_idle_worker_duration = 500ms; // a client stall this long before the tick would trim
        o.idle_park_delay = 20ms; // the idle connection parks: its worker goes back to the ready list
        test::RunningServer s(o, [](Exchange& x) { x.response.set_body("ok"); });
        const int busy = test::connect_blocking(s.port, 3000);
        const int idle = test::connect_blocking(s.port, 3000);
        REQUIRE(round_trip(busy, get("/")).ends_with("\r\n\r\nok"));
        REQUIRE(round_trip(idle, get("/")).ends_with("\r\n\r\nok"));
        auto out_misses = [&] { return ringwork::http::ServerMetricsAccess::reactors(s.server).at(0).out.misses; };
        const std::uint64_t misses = out_misses();
        const std::uint64_t retired = s.server.stats().workers_retired;
        // Requests on one connection until the idle one's worker is retired (a tick after it
        // has been idle 500 ms), then as many again.
        int after = 0;
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (after < 200 && std::chrono::steady_clock::now() < deadline) {
            REQUIRE(round_trip(busy, get("/")).ends_with("\r\n\r\nok"));
            after += s.server.stats().workers_retired > retired ? 1 : 0;
        }
        CHECK(s.server.stats().workers_retired > retired);
        CHECK(after == 200);
        CHECK(out_misses() == misses);
        CHECK(s.server.stats().out_buffers_pooled >= 2);
        // Once the load is gone its workers retire and the pool is given back whole.
        ::close(busy);
        ::close(idle);
        CHECK(test::eventually([&] { return s.server.stats().out_buffers_pooled == 0; }, 10000ms));
    }

    TEST_CASE("a worker retired under a steady load leaves the carry and body buffers the load uses") {
        // The reaper trimmed the carry and body pools whole on every retirement: a steady load
        // of heads or bodies spanning receive buffers allocated its buffers again after each.
        // It keeps what its last interval held at once, and gives the rest back a tick later.
        ServerOptions o;
        o.read_buffer_size = 1024; // the head below and the body below each span receive buffers
        o.max_idle_worker_duration = 500ms;
        o.idle_park_delay = 20ms;
        test::RunningServer s(o, [](Exchange& x) { x.response.set_body(fmt::format("ok {}", x.request.body().size())); });
        const std::string long_head = "GET /h HTTP/1.1\r\nHost: t\r\nX-Pad: " + std::string(2000, 'p') + "\r\n\r\n";
        const std::string long_body = post("/b", 2000);
        const int busy = test::connect_blocking(s.port, 3000);
        const int idle = test::connect_blocking(s.port, 3000);
        auto both = [&] {
            REQUIRE(round_trip(busy, long_head).ends_with("\r\n\r\nok 0"));
            REQUIRE(round_trip(busy, long_body).ends_with("\r\n\r\nok 2000"));
        };
        both();
        REQUIRE(round_trip(idle, get("/")).ends_with("\r\n\r\nok 0"));
        auto pools = [&] { return ringwork::http::ServerMetricsAccess::reactors(s.server).at(0); };
        const auto before = pools();
        REQUIRE(before.carry.misses >= 1);
        REQUIRE(before.body.misses >= 1);
        REQUIRE(s.server.stats().carry_copies >= 1);
        const std::uint64_t retired = s.server.stats().workers_retired;
        // Both kinds of request until the idle connection's worker is retired, then 100 more.
        int after = 0;
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (after < 100 && std::chrono::steady_clock::now() < deadline) {
            both();
            after += s.server.stats().workers_retired > retired ? 1 : 0;
        }
        CHECK(s.server.stats().workers_retired > retired);
        CHECK(after == 100);
        const auto now = pools();
        CHECK(now.carry.misses == before.carry.misses);
        CHECK(now.body.misses == before.body.misses);
        // Once the load is gone its workers retire and both pools are given back whole.
        ::close(busy);
        ::close(idle);
        CHECK(test::eventually([&] {
            const auto p = pools();
            return p.carry.idle == 0 && p.body.idle == 0 && s.server.stats().connections_open == 0;
        }, 10000ms));
    }

    TEST_CASE("a pooled output buffer that grew is freed at the next reaper tick; one of the pool's size stays") {
        auto sized = [](Exchange& x) {
            x.response.set_body(x.request.raw_path() == "/big" ? std::string(8192, 'w') : std::string("small"));
        };
        ServerOptions o;
        o.max_idle_worker_duration = 150ms; // the reaper's tick; the open connection keeps its worker busy
        o.idle_park_delay = 0ms;            // (not parked: a retired worker would trim the whole pool)
        test::RunningServer s(o, sized);
        auto idle = [&] { return test::eventually([&] { return s.server.stats().out_buffers_held == 0; }, 3000ms); };
        const int fd = test::connect_blocking(s.port, 3000);
        // The 8 KiB body grows the 4 KiB buffer to 16 KiB (<= 16 x 4096: pooled when given back).
        CHECK(round_trip(fd, get("/big")).ends_with("\r\n\r\n" + std::string(8192, 'w')));
        REQUIRE(idle());
        // (The pool held the grown buffer, the connection's reserve and the growth's margin:
        // kFirstGrowth, unless a tick came.) Next tick: the grown one is freed (the connection,
        // still open, is not retired: only the buffer goes); the rest stays.
        CHECK(test::eventually([&] { return s.server.stats().out_buffers_pooled == kFirstGrowth - 1; }, 3000ms));
        CHECK(s.server.stats().connections_open == 1);
        // Buffers of the pool's own size survive the ticks.
        CHECK(round_trip(fd, get("/small")).ends_with("\r\n\r\nsmall"));
        REQUIRE(idle());
        CHECK(s.server.stats().out_buffers_pooled == kFirstGrowth - 1);
        std::this_thread::sleep_for(500ms); // three ticks or more
        CHECK(s.server.stats().out_buffers_pooled == kFirstGrowth - 1);
        ::close(fd);
    }

    TEST_CASE("a connection's second output buffer is reserved with its first: a peak of sends in flight allocates none") {
        // A connection fills one output buffer while the other is in the kernel. The pool used
        // to grow on demand, so the first moment when every busy connection held two at once
        // (random under a pipelined load) allocated, long after warm-up.
        // Far more than the socket buffers take (the server's send buffer grows to tcp_wmem's
        // maximum, 4 MiB by default; the client's receive buffer is held at 256 KiB): the
        // send waits until the client reads.
        static const std::string big(32 << 20, 'b');
        auto h = [](Exchange& x) {
            if (x.request.raw_path() == "/big") {
                x.response.set_body_static(big); // sent from this memory: the buffer keeps only the head
            } else {
                x.response.set_body(std::string(16384, 'f'));
            }
        };
        ServerOptions o;
        o.max_idle_worker_duration = 60s; // no trimming during the test
        o.idle_park_delay = 0ms;
        test::RunningServer s(o, h);
        // More connections than the growth's margin covers (8 pairs, a quarter beyond 32): only
        // the reserve taken with each first buffer has their second buffers ready.
        constexpr std::size_t kConns = 24;
        auto open_conns = [&] {
            std::vector<int> fds;
            for (std::size_t i = 0; i < kConns; ++i) {
                const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
                REQUIRE(fd >= 0);
                const int small = 256 * 1024; // before connect: no receive-buffer autotuning
                ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
                const timeval tv{10, 0}; // bounded sends and receives: a stuck server fails the test
                ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
                ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
                sockaddr_in addr{};
                addr.sin_family = AF_INET;
                addr.sin_port = htons(s.port);
                addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                REQUIRE(::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
                fds.push_back(fd);
            }
            return fds;
        };
        auto out_misses = [&] { return ringwork::http::ServerMetricsAccess::reactors(s.server).at(0).out.misses; };
        auto held_is = [&](std::uint64_t n) {
            return test::eventually([&] { return s.server.stats().out_buffers_held == n; }, 10000ms);
        };
        // Warm-up: every connection busy at once with one buffer (an answer nobody reads), then
        // the clients go away (a reset: the send fails, the buffers go back to the pool).
        std::vector<int> fds = open_conns();
        for (const int fd : fds) {
            REQUIRE(test::write_all(fd, get("/big")));
        }
        REQUIRE(held_is(kConns));
        for (const int fd : fds) {
            test::reset_close(fd);
        }
        REQUIRE(held_is(0));
        const std::uint64_t warm_misses = out_misses();
        // Each busy connection's pair and the margin of the last growth (no more: a pool grown
        // on demand held only what was taken, kConns and a margin).
        const std::size_t pooled = s.server.stats().out_buffers_pooled;
        CHECK(pooled >= 2 * kConns);
        CHECK(pooled <= 2 * kConns + 2 * 8);
        CHECK(warm_misses == pooled);
        // New connections get 2,000 pipelined requests each and read nothing: 32 MiB of answers
        // fill the socket, so each ends up with one buffer in the kernel and one filling.
        std::string many;
        for (int i = 0; i < 2000; ++i) {
            many += get("/fill");
        }
        fds = open_conns();
        for (const int fd : fds) {
            REQUIRE(test::write_all(fd, many));
        }
        REQUIRE(held_is(2 * kConns));
        CHECK(out_misses() == warm_misses); // both from the pool
        // The answers come in order (the first 20 checked; the rest is cut by the close).
        const std::string fill(16384, 'f');
        for (const int fd : fds) {
            test::ResponseReader reader(fd);
            std::size_t ok = 0;
            for (int i = 0; i < 20; ++i) {
                const std::string r = reader.next();
                ok += r.starts_with("HTTP/1.1 200 OK\r\n") && r.ends_with("\r\n\r\n" + fill) ? 1 : 0;
            }
            CHECK(ok == 20);
            test::reset_close(fd);
        }
        CHECK(held_is(0));
    }

    TEST_CASE("write_buffer_size: the pooled output buffer's size; one grown beyond 16 times it is freed") {
        auto sized = [](Exchange& x) {
            x.response.set_body(x.request.raw_path() == "/big" ? std::string(8192, 'w') : std::string("small"));
        };
        ServerOptions bad;
        bad.write_buffer_size = 255;
        CHECK_THROWS_WITH_AS(Server{bad}, doctest::Contains("ServerOptions.write_buffer_size"), std::invalid_argument);
        for (const std::size_t size : {std::size_t{256}, std::size_t{4096}}) {
            CAPTURE(size);
            ServerOptions o;
            o.write_buffer_size = size;
            o.max_idle_worker_duration = 60s; // no trimming during the test
            test::RunningServer s(o, sized);
            auto idle = [&] { return test::eventually([&] { return s.server.stats().out_buffers_held == 0; }, 3000ms); };
            const int fd = test::connect_blocking(s.port, 3000);
            CHECK(round_trip(fd, get("/small")).ends_with("\r\n\r\nsmall"));
            REQUIRE(idle());
            // A small response's buffer is kept, with the connection's second one (its reserve)
            // and the growth's margin.
            CHECK(s.server.stats().out_buffers_pooled == kFirstGrowth);
            // An 8 KiB copied body grows the buffer to 16 KiB; the response leaves whole.
            const std::string big = round_trip(fd, get("/big"));
            CHECK(big.starts_with("HTTP/1.1 200 OK\r\n"));
            CHECK(big.ends_with("\r\n\r\n" + std::string(8192, 'w')));
            REQUIRE(idle());
            // 16 KiB > 16 x 256: freed; 16 KiB <= 16 x 4096: kept for the next response.
            const auto after_big = s.server.stats();
            CHECK(after_big.out_buffers_pooled == (size == 256 ? kFirstGrowth - 1 : kFirstGrowth));
            // The next response takes one of the pool's (the margin): no allocation either way.
            CHECK(round_trip(fd, get("/small")).ends_with("\r\n\r\nsmall"));
            REQUIRE(idle());
            CHECK(s.server.stats().buffer_pool_misses == after_big.buffer_pool_misses);
            CHECK(s.server.stats().out_buffers_pooled == after_big.out_buffers_pooled);
            ::close(fd);
        }
    }
}

TEST_SUITE("server options: idle_park_delay") {
    /// Options for the parking tests: a short delay, no reaper retiring workers meanwhile.
    static ServerOptions parking(std::chrono::milliseconds delay = 100ms) {
        ServerOptions o;
        o.idle_park_delay = delay;
        o.max_idle_worker_duration = 60s;
        return o;
    }

    TEST_CASE("an idle connection parks without a worker; its next requests are served on one") {
        StateLog states;
        ServerOptions o = parking();
        o.conn_state = states.sink();
        RunningServer s(o);
        std::vector<int> fds;
        for (int i = 0; i < 3; ++i) {
            fds.push_back(test::connect_blocking(s.port, 3000));
            CHECK(round_trip(fds.back(), get("/p")).find("ok /p") != std::string::npos);
        }
        // Each gives its worker back: three ready workers, none busy, three parked connections.
        REQUIRE(test::eventually([&] { return s.server.stats().connections_parked == 3; }, 3000ms));
        auto st = s.server.stats();
        CHECK(st.connections_open == 3);
        CHECK(st.workers_busy == 0);
        CHECK(st.workers_ready == st.workers_alive); // (fewer than 3 if one parked before the next came)
        CHECK(st.parks == 3);
        CHECK(st.out_buffers_held == 0);
        // Bytes on a parked connection borrow a worker; the connection is the same one (keep-alive,
        // request count carried: a pipelined pair is answered in order).
        for (const int fd : fds) {
            CHECK(round_trip(fd, get("/again")).find("ok /again") != std::string::npos);
        }
        REQUIRE(test::write_all(fds[0], get("/x") + get("/y")));
        const std::string both = read_until(fds[0], "ok /y");
        CHECK(both.find("ok /x") < both.find("ok /y"));
        REQUIRE(test::eventually([&] { return s.server.stats().connections_parked == 3; }, 3000ms));
        CHECK(s.server.stats().parks >= 6);
        CHECK(s.server.stats().workers_created <= 3); // served by the pool's workers
        ::close(fds[1]);
        ::close(fds[2]);
        // A parked connection whose client leaves is closed (end of stream on a borrowed worker).
        REQUIRE(test::eventually([&] {
            const auto now = s.server.stats();
            return now.connections_open == 1 && now.connections_parked == 1;
        }, 3000ms));
        ::close(fds[0]);
        REQUIRE(test::eventually([&] { return s.server.stats().connections_open == 0; }, 3000ms));
        CHECK(s.server.stats().connections_parked == 0);
        // The states a conn_state hook sees do not change: parking is not a state.
        const auto names = states.names();
        CHECK(std::count(names.begin(), names.end(), std::string("new")) == 3);
        CHECK(std::count(names.begin(), names.end(), std::string("closed")) == 3);
        CHECK(std::count(names.begin(), names.end(), std::string("active")) ==
              std::count(names.begin(), names.end(), std::string("idle")));
    }

    TEST_CASE("a parked connection closes when the rest of idle_timeout has passed") {
        ServerOptions o = parking();
        o.idle_timeout = 700ms;
        RunningServer s(o);
        const int fd = test::connect_blocking(s.port, 5000);
        CHECK(round_trip(fd, get("/p")).find("ok /p") != std::string::npos);
        const auto answered = std::chrono::steady_clock::now();
        REQUIRE(test::eventually([&] { return s.server.stats().connections_parked == 1; }, 3000ms));
        std::string rest;
        CHECK(read_until_eof(fd, rest)); // the server closes (a timeout would return false)
        const auto waited = std::chrono::steady_clock::now() - answered;
        CHECK(rest.empty());
        CHECK(waited >= 500ms); // the idle limit, not the park delay (margin for a slow client)
        REQUIRE(test::eventually([&] { return s.server.stats().connections_open == 0; }, 3000ms));
        CHECK(s.server.stats().connections_parked == 0);
        ::close(fd);
    }

    TEST_CASE("not parked: a head in progress, a response the client does not read, a delay of 0") {
        SUBCASE("half a head") {
            RunningServer s(parking());
            const int fd = test::connect_blocking(s.port, 5000);
            REQUIRE(test::write_all(fd, "GET /half HTTP/1.1\r\nHo"));
            std::this_thread::sleep_for(400ms); // four delays
            CHECK(s.server.stats().connections_parked == 0);
            CHECK(s.server.stats().workers_busy == 1);
            CHECK(round_trip(fd, "st: t\r\n\r\n").find("ok /half") != std::string::npos);
            ::close(fd);
        }
        SUBCASE("a response still in the kernel: the client does not read") {
            ServerOptions o = parking();
            o.conn_state = [](int server_fd, ConnState state) { // a small send buffer on the server's side
                if (state == ConnState::new_connection) {
                    const int small = 4096;
                    ::setsockopt(server_fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
                }
            };
            RunningServer s(o);
            // Small socket buffers both ways: the 200 KiB answer (under the 256 KiB at which a
            // connection waits for its output) stays in the server's send while it idles.
            const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            const int small = 4096;
            REQUIRE(::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small) == 0);
            timeval tv{5, 0};
            REQUIRE(::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0);
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_port = htons(s.port.load());
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0); // NOLINT: sockaddr API
            REQUIRE(test::write_all(fd, get("/200k")));
            REQUIRE(test::eventually([&] { return s.server.stats().workers_busy == 1; }, 3000ms));
            std::this_thread::sleep_for(300ms); // 15 park delays
            CHECK(s.server.stats().connections_parked == 0);
            CHECK(s.server.stats().parks == 0);
            const std::string all = read_response(fd);
            CHECK(all.ends_with("\r\n\r\n" + std::string(200 * 1024, 'k')));
            CHECK(round_trip(fd, get("/after")).find("ok /after") != std::string::npos);
            ::close(fd);
        }
        SUBCASE("idle_park_delay = 0") {
            RunningServer s(parking(0ms));
            const int fd = test::connect_blocking(s.port, 5000);
            CHECK(round_trip(fd, get("/p")).find("ok /p") != std::string::npos);
            std::this_thread::sleep_for(300ms);
            CHECK(s.server.stats().connections_parked == 0);
            CHECK(s.server.stats().parks == 0);
            CHECK(s.server.stats().workers_busy == 1);
            ::close(fd);
        }
        SUBCASE("an idle limit shorter than the delay: closed where it waits") {
            ServerOptions o = parking(1000ms);
            o.idle_timeout = 200ms;
            RunningServer s(o);
            const int fd = test::connect_blocking(s.port, 5000);
            CHECK(round_trip(fd, get("/p")).find("ok /p") != std::string::npos);
            std::string rest;
            CHECK(read_until_eof(fd, rest));
            CHECK(s.server.stats().parks == 0);
            ::close(fd);
        }
    }

    TEST_CASE("shutdown: parked keep-alive connections close at once; a parked new one may still send its request") {
        ServerOptions o = parking();
        o.header_read_timeout = 5000ms;
        RunningServer s(o);
        const int used = test::connect_blocking(s.port, 5000);
        CHECK(round_trip(used, get("/p")).find("ok /p") != std::string::npos);
        const int fresh = test::connect_blocking(s.port, 5000); // connected, nothing sent yet
        REQUIRE(test::eventually([&] { return s.server.stats().connections_parked == 2; }, 3000ms));
        std::thread stopper([&] { s.stop(); });
        std::string rest;
        CHECK(read_until_eof(used, rest)); // closed by the shutdown
        CHECK(rest.empty());
        // The fresh connection's client connected before the shutdown: its first request is
        // served (the pool may be stopped by now: the parked record then gets a worker of its
        // own), then the connection closes.
        std::this_thread::sleep_for(100ms);
        REQUIRE(test::write_all(fresh, get("/late")));
        std::string answer;
        CHECK(read_until_eof(fresh, answer));
        CHECK(answer.find("ok /late") != std::string::npos); // then closed (read_until_eof)
        stopper.join();
        CHECK(s.server.stats().connections_open == 0);
        ::close(used);
        ::close(fresh);
    }

    TEST_CASE("shutdown within a new connection's park delay: it still gets header_read_timeout") {
        ServerOptions o = parking(300ms); // the shutdown begins inside this first wait
        o.header_read_timeout = 5000ms;
        RunningServer s(o);
        const int fresh = test::connect_blocking(s.port, 5000);
        REQUIRE(test::eventually([&] { return s.server.stats().connections_open == 1; }, 3000ms));
        s.server.shutdown();
        std::this_thread::sleep_for(500ms); // past the park delay: not closed there
        REQUIRE(test::write_all(fresh, get("/late")));
        std::string answer;
        CHECK(read_until_eof(fresh, answer));
        CHECK(answer.find("ok /late") != std::string::npos);
        CHECK(s.server.stats().parks == 0);
        s.stop();
        ::close(fresh);
    }

    TEST_CASE("a shutdown's grace period cuts a parked connection that never sent a request") {
        ServerOptions o = parking();
        o.header_read_timeout = 0ms; // nothing else would close it
        RunningServer s(o);
        const int fresh = test::connect_blocking(s.port, 5000);
        REQUIRE(test::eventually([&] { return s.server.stats().connections_parked == 1; }, 3000ms));
        s.server.shutdown(300ms);
        std::string rest;
        CHECK(read_until_eof(fresh, rest)); // closed by the cut
        CHECK(rest.empty());
        CHECK(test::eventually([&] { return s.server.stats().connections_cut == 1; }, 3000ms));
        CHECK(s.server.stats().connections_parked == 0);
        s.stop();
        // Once run() has returned the counts stay (they used to read 0 then, so the poll above
        // could miss a cut that the reactor counted just before it ended).
        const auto after = s.server.stats();
        CHECK(after.connections_cut == 1);
        CHECK(after.connections_parked == 0);
        CHECK(after.connections_open == 0);
        CHECK(after.connections_accepted == 1);
        ::close(fresh);
    }

    TEST_CASE("a parked connection closed at its idle limit gives its max_conns_per_ip slot back") {
        ServerOptions o = parking();
        o.idle_timeout = 400ms;
        o.max_conns_per_ip = 1;
        RunningServer s(o);
        const int first = test::connect_blocking(s.port, 5000);
        CHECK(round_trip(first, get("/p")).find("ok /p") != std::string::npos);
        REQUIRE(test::eventually([&] { return s.server.stats().connections_parked == 1; }, 3000ms));
        std::string rest;
        CHECK(read_until_eof(first, rest)); // the idle limit
        REQUIRE(test::eventually([&] { return s.server.stats().connections_open == 0; }, 3000ms));
        const int second = test::connect_blocking(s.port, 5000);
        CHECK(round_trip(second, get("/q")).find("ok /q") != std::string::npos); // not 429
        CHECK(s.server.stats().rejected_per_ip == 0);
        ::close(first);
        ::close(second);
    }

    TEST_CASE("the reaper retires the workers parked connections gave back") {
        ServerOptions o = parking();
        o.max_idle_worker_duration = 300ms;
        RunningServer s(o);
        std::vector<int> fds;
        for (int i = 0; i < 4; ++i) {
            fds.push_back(test::connect_blocking(s.port, 5000));
            CHECK(round_trip(fds.back(), get("/p")).find("ok /p") != std::string::npos);
        }
        REQUIRE(test::eventually([&] {
            const auto st = s.server.stats();
            return st.connections_parked == 4 && st.workers_alive == 0;
        }, 5000ms));
        CHECK(s.server.stats().workers_retired >= 1);
        CHECK(s.server.stats().connections_open == 4);
        for (const int fd : fds) { // still served: a new worker each
            CHECK(round_trip(fd, get("/back")).find("ok /back") != std::string::npos);
        }
        for (const int fd : fds) {
            ::close(fd);
        }
    }

    TEST_CASE("idle_park_delay is validated") {
        ServerOptions bad;
        bad.idle_park_delay = -1ms;
        CHECK_THROWS_WITH_AS(Server{bad}, doctest::Contains("ServerOptions.idle_park_delay"), std::invalid_argument);
    }
}
