// SPDX-License-Identifier: MIT
// ServerOptions::stream_request_body: bodies over the limit (and chunked ones) reach the handler
// unread and are read with Exchange::read_body() as they arrive; raw TCP on 127.0.0.1.
#include <ringwork/http/server.hpp>
#include <ringwork/io/timer.hpp>

#include "helpers.hpp"
#include "http_reader.hpp"
#include "running_server.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <system_error>
#include <thread>

using namespace std::chrono_literals;
using ringwork::http::Exchange;
using ringwork::http::ServerOptions;
using ringwork::runtime::Task;
using test::body_of;
using test::ResponseReader;

namespace {

std::atomic<int> read_errors{0};
std::atomic<int> last_error{0};
std::atomic<int> reads_started{0};

/// FNV-1a over the bytes: the handler's answer proves it saw every byte in order.
std::uint64_t fnv(std::uint64_t h, std::string_view data) {
    for (const char ch : data) {
        h = (h ^ static_cast<unsigned char>(ch)) * 0x100000001b3ULL;
    }
    return h;
}
constexpr std::uint64_t kFnvStart = 0xcbf29ce484222325ULL;

/// /sum: reads the whole body, answers "bytes=N pieces=P hash=H streamed=S".
/// /ignore: answers without reading. /half: reads one piece, answers.
Task<> stream_handler(Exchange& x) {
    const std::string_view path = x.request.raw_path();
    if (path == "/ignore") {
        x.response.set_status(413);
        x.response.set_body("no thanks");
        co_return;
    }
    ++reads_started;
    std::uint64_t bytes = 0;
    std::uint64_t pieces = 0;
    std::uint64_t hash = fnv(kFnvStart, x.request.body());
    bytes += x.request.body().size();
    for (;;) {
        auto piece = co_await x.read_body();
        if (!piece) {
            ++read_errors;
            last_error = piece.error().value();
            x.response.set_status(400);
            x.response.set_body(fmt::format("read failed: {}", piece.error().message()));
            co_return;
        }
        if (piece->empty()) {
            break;
        }
        ++pieces;
        bytes += piece->size();
        hash = fnv(hash, *piece);
        if (path == "/half") {
            break;
        }
        co_await ringwork::io::sleep_for(0ms); // let other work interleave (views stay valid)
    }
    x.response.set_body(fmt::format("bytes={} hash={:x} streamed={} pieces>0={}", bytes, hash,
                                    x.request.body_streamed() ? 1 : 0, pieces > 0 ? 1 : 0));
}

std::string expected(std::string_view body, bool streamed) {
    return fmt::format("bytes={} hash={:x} streamed={} pieces>0={}", body.size(), fnv(kFnvStart, body), streamed ? 1 : 0,
                       streamed && !body.empty() ? 1 : 0);
}

std::string pattern_body(std::size_t n) {
    std::string b(n, '\0');
    for (std::size_t i = 0; i < n; ++i) {
        b[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
    }
    return b;
}

ServerOptions streaming(std::size_t limit) {
    ServerOptions o;
    o.stream_request_body = true;
    o.max_request_body_size = limit;
    return o;
}

/// Sends `data` in pieces of `step` bytes, with a short pause every `pause_every` pieces so the
/// server sees several receives.
bool write_in_pieces(int fd, std::string_view data, std::size_t step, std::size_t pause_every = 16) {
    std::size_t n = 0;
    for (std::size_t off = 0; off < data.size(); off += step) {
        if (!test::write_all(fd, data.substr(off, step))) {
            return false;
        }
        if (++n % pause_every == 0) {
            std::this_thread::sleep_for(1ms);
        }
    }
    return true;
}

std::string chunked(std::string_view body, std::size_t chunk) {
    std::string out;
    for (std::size_t off = 0; off < body.size(); off += chunk) {
        const std::string_view c = body.substr(off, chunk);
        out += fmt::format("{:x};ext=1\r\n", c.size());
        out += c;
        out += "\r\n";
    }
    out += "0\r\nTrailer-Field: x\r\n\r\n";
    return out;
}

} // namespace

TEST_SUITE("server stream_request_body") {
    TEST_CASE("a Content-Length body over the limit is streamed, every byte in order, and keep-alive goes on") {
        test::RunningServer s(streaming(1024), [](Exchange& x) { return stream_handler(x); });
        const int fd = test::connect_blocking(s.port);
        const std::string body = pattern_body(300 * 1024);
        REQUIRE(test::write_all(fd, fmt::format("POST /sum HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n", body.size())));
        REQUIRE(write_in_pieces(fd, body, 7000));
        // A pipelined request after the body: the connection goes on where the body ended.
        const std::string small = "tiny body";
        REQUIRE(test::write_all(fd, fmt::format("POST /sum HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{}",
                                                small.size(), small)));
        ResponseReader reader(fd);
        const std::string r1 = reader.next();
        CHECK(r1.find("HTTP/1.1 200 OK\r\n") == 0);
        CHECK(r1.find("Connection: close") == std::string::npos);
        CHECK(body_of(r1) == expected(body, true));
        // Within the limit: gathered as usual, body() has it, nothing streamed.
        CHECK(body_of(reader.next()) == expected(small, false));
        ::close(fd);
        const auto st = s.server.stats();
        CHECK(st.bodies_streamed == 1);
        CHECK(st.streamed_bodies_unread == 0);
        CHECK(read_errors == 0);
    }

    TEST_CASE("a chunked body is streamed de-chunked, fed one byte at a time or in one write") {
        test::RunningServer s(streaming(1U << 20), [](Exchange& x) { return stream_handler(x); });
        const std::string body = pattern_body(5000);
        for (const std::size_t step : {std::size_t{1}, std::size_t{1} << 20}) {
            CAPTURE(step);
            const int fd = test::connect_blocking(s.port);
            const std::string wire = "POST /sum HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" +
                                     chunked(body, 333) + "GET /sum HTTP/1.1\r\nHost: t\r\n\r\n";
            REQUIRE(write_in_pieces(fd, wire, step, 512));
            ResponseReader reader(fd);
            CHECK(body_of(reader.next()) == expected(body, true));
            CHECK(body_of(reader.next()) == expected("", false)); // the request after it
            ::close(fd);
        }
        CHECK(read_errors == 0);
    }

    TEST_CASE("a handler that does not read the body answers with Connection: close") {
        test::RunningServer s(streaming(16), [](Exchange& x) { return stream_handler(x); });
        for (const char* path : {"/ignore", "/half"}) {
            CAPTURE(path);
            const int fd = test::connect_blocking(s.port);
            const std::string body = pattern_body(64 * 1024);
            REQUIRE(test::write_all(fd, fmt::format("POST {} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{}",
                                                    path, body.size(), body.substr(0, 1000))));
            const std::string r = test::read_to_eof(fd); // the server closes after answering
            CHECK(r.find("Connection: close\r\n") != std::string::npos);
            if (std::string_view(path) == "/ignore") {
                CHECK(r.find("HTTP/1.1 413 ") == 0);
                CHECK(body_of(r) == "no thanks");
            } else {
                CHECK(r.find("HTTP/1.1 200 OK\r\n") == 0);
            }
            ::close(fd);
        }
        CHECK(s.server.stats().streamed_bodies_unread == 2);
    }

    TEST_CASE("Expect: 100-continue is answered only when the handler starts reading") {
        test::RunningServer s(streaming(16), [](Exchange& x) { return stream_handler(x); });
        const std::string body = pattern_body(4096);
        {
            // The handler refuses without reading: no 100 ever, the final answer at once.
            const int fd = test::connect_blocking(s.port);
            REQUIRE(test::write_all(fd, fmt::format("POST /ignore HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                                                    "Content-Length: {}\r\n\r\n",
                                                    body.size())));
            const std::string r = test::read_to_eof(fd);
            CHECK(r.find("HTTP/1.1 413 ") == 0);
            CHECK(r.find("100 Continue") == std::string::npos);
            ::close(fd);
        }
        {
            const int fd = test::connect_blocking(s.port);
            REQUIRE(test::write_all(fd, fmt::format("POST /sum HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                                                    "Content-Length: {}\r\n\r\n",
                                                    body.size())));
            const std::string cont = test::read_exactly(fd, 25);
            CHECK(cont == "HTTP/1.1 100 Continue\r\n\r\n");
            REQUIRE(test::write_all(fd, body));
            const std::string r = ResponseReader(fd).next();
            CHECK(body_of(r) == expected(body, true));
            ::close(fd);
        }
    }

    TEST_CASE("broken bodies: malformed chunk, client gone mid-body, read_timeout") {
        read_errors = 0;
        ServerOptions o = streaming(16);
        o.read_timeout = 300ms;
        test::RunningServer s(o, [](Exchange& x) { return stream_handler(x); });
        {
            const int fd = test::connect_blocking(s.port);
            REQUIRE(test::write_all(fd, "POST /sum HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                                        "5\r\nhello\r\nzz\r\n"));
            const std::string r = test::read_to_eof(fd);
            CHECK(r.find("HTTP/1.1 400 ") == 0);
            CHECK(r.find("Connection: close\r\n") != std::string::npos);
            CHECK(last_error == static_cast<int>(std::errc::bad_message));
            ::close(fd);
        }
        {
            const int before = reads_started.load();
            const int fd = test::connect_blocking(s.port);
            REQUIRE(test::write_all(fd, "POST /sum HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\nabc"));
            REQUIRE(test::eventually([&] { return reads_started.load() == before + 1; }));
            ::shutdown(fd, SHUT_WR); // EOF mid-body
            const std::string r = test::read_to_eof(fd);
            CHECK(r.find("HTTP/1.1 400 ") == 0);
            CHECK(last_error == static_cast<int>(std::errc::connection_aborted));
            ::close(fd);
        }
        {
            const int fd = test::connect_blocking(s.port);
            REQUIRE(test::write_all(fd, "POST /sum HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\nabc"));
            const std::string r = test::read_to_eof(fd); // nothing more is sent: read_timeout
            CHECK(r.find("HTTP/1.1 400 ") == 0);
            CHECK(last_error == static_cast<int>(std::errc::timed_out));
            ::close(fd);
        }
        CHECK(read_errors == 3);
        CHECK(test::eventually([&] { return s.server.open_connections() == 0; }));
    }

    TEST_CASE("without the option a body over the limit is still 413 before it is read") {
        ServerOptions o;
        o.max_request_body_size = 1024;
        test::RunningServer s(o, [](Exchange& x) { return stream_handler(x); });
        const int fd = test::connect_blocking(s.port);
        REQUIRE(test::write_all(fd, "POST /sum HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n"));
        const std::string r = test::read_to_eof(fd);
        CHECK(r.find("HTTP/1.1 413 ") == 0);
        ::close(fd);
        CHECK(s.server.stats().bodies_streamed == 0);
    }
}
