// SPDX-License-Identifier: MIT
// Server over loopback: Concurrency and the 503, FILO worker reuse, the reaper, shutdown.
#include <ringwork/http/server.hpp>
#include <ringwork/io/timer.hpp>

#include "helpers.hpp"
#include "running_server.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>

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
        const auto stats = s.server.stats();
        CHECK(stats.workers_retired == 4);
        CHECK(stats.workers_alive == 0);
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
