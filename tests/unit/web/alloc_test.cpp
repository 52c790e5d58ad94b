// SPDX-License-Identifier: MIT
// The hot path allocates nothing: requests through App, router, middleware chain and JSON
// responses, counted over the whole process (server and client) in steady state.
#include <ringwork/io/timer.hpp>
#include <ringwork/web/app.hpp>
#include <ringwork/web/compress.hpp>
#include <ringwork/web/middleware.hpp>

#include "alloc_counter.hpp"
#include "raw_exchange.hpp"
#include "helpers.hpp"

#include <doctest/doctest.h>

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cstring>
#include <thread>

using ringwork::runtime::Task;
using ringwork::web::App;
using ringwork::web::Context;
using ringwork::web::Next;

#ifndef TEST_NO_HEAP_COUNTER
namespace {

int exchange(int fd, std::string_view request) { return test::raw_exchange(fd, request); }

struct Pass {
    Task<> operator()(Context& c, Next next) const {
        c.set_header("X-Pass", "1");
        co_await next();
    }
};

} // namespace
#endif

TEST_SUITE("web.alloc") {

TEST_CASE("steady-state requests through the App allocate nothing (process-wide count)") {
#ifdef TEST_NO_HEAP_COUNTER
    MESSAGE("skipped under ASan/TSan (the sanitizer owns operator new)");
#else
    App app;
    app.get("/plaintext", [](Context& c) { c.text("Hello, World!"); });
    app.get("/json", [](Context& c) { c.json({{"message", "Hello, World!"}}); });
    app.get("/users/:id", [](Context& c) { c.json({{"id", c.param("id")}, {"q", c.query_or("q", "")}}); });
    app.get("/async/:id", [](Context& c) -> Task<> {
        co_await ringwork::io::sleep_for(std::chrono::milliseconds(0));
        c.text(c.param("id"));
    });
    auto chain = app.group("/mw", Pass{}, Pass{}, Pass{}, Pass{}, Pass{});
    chain.get("/plaintext", [](Context& c) { c.text("Hello, World!"); });
    auto builtin = app.group("/builtin", ringwork::web::mw::request_id(), ringwork::web::mw::recover(),
                             ringwork::web::mw::cors(), ringwork::web::mw::etag());
    builtin.get("/plaintext", [](Context& c) { c.text("Hello, World!"); });
    std::atomic<std::uint16_t> port{0};
    std::thread server([&] { app.listen("127.0.0.1:0", 1, [&](std::uint16_t p) { port = p; }); });
    REQUIRE(test::eventually([&] { return port.load() != 0; }));
    const int fd = test::connect_blocking(port.load());
    struct Case {
        const char* name;
        std::string_view request;
    };
    const Case cases[] = {
        {"plaintext", "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n"},
        {"json", "GET /json HTTP/1.1\r\nHost: a\r\n\r\n"},
        {"params+query json", "GET /users/12345?q=abc HTTP/1.1\r\nHost: a\r\n\r\n"},
        {"async (suspends)", "GET /async/77 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n"},
        {"5 middleware", "GET /mw/plaintext HTTP/1.1\r\nHost: a\r\n\r\n"},
        {"404", "GET /nothing/here HTTP/1.1\r\nHost: a\r\n\r\n"},
        {"405", "DELETE /plaintext HTTP/1.1\r\nHost: a\r\n\r\n"},
        {"request_id+recover+cors+etag", "GET /builtin/plaintext HTTP/1.1\r\nHost: a\r\nOrigin: http://x\r\n\r\n"},
    };
    for (const Case& k : cases) {
        CAPTURE(k.name);
        for (int i = 0; i < 200; ++i) { // warm-up: pools fill
            REQUIRE(exchange(fd, k.request) > 0);
        }
        const std::size_t before = test::g_heap_allocations.load();
        int ok = 0;
        for (int i = 0; i < 2000; ++i) {
            ok += exchange(fd, k.request) > 0 ? 1 : 0;
        }
        const std::size_t allocations = test::g_heap_allocations.load() - before;
        CHECK(ok == 2000);
        CHECK(allocations == 0);
    }
    // The counter itself works in this program.
    const std::size_t sanity = test::g_heap_allocations.load();
    void* volatile block = ::operator new(16); // a direct call: never elided
    ::operator delete(block);
    CHECK(test::g_heap_allocations.load() > sanity);
    ::close(fd);
    app.shutdown();
    server.join();
#endif
}

TEST_CASE("an idle connection parked and resumed again and again allocates nothing") {
#ifdef TEST_NO_HEAP_COUNTER
    MESSAGE("skipped under ASan/TSan (the sanitizer owns operator new)");
#else
    ringwork::web::AppOptions options;
    options.server.idle_park_delay = std::chrono::milliseconds(1);
    App app(options);
    app.get("/plaintext", [](Context& c) { c.text("Hello, World!"); });
    std::atomic<std::uint16_t> port{0};
    std::thread server([&] { app.listen("127.0.0.1:0", 1, [&](std::uint16_t p) { port = p; }); });
    REQUIRE(test::eventually([&] { return port.load() != 0; }));
    const int fd = test::connect_blocking(port.load());
    const std::string_view request = "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n";
    // Each request waits until the connection is parked (polled: no timing luck), so each is
    // served by a worker the parked record borrows and by a Connection built anew.
    auto parked_round = [&] {
        if (!test::eventually([&] { return app.server().stats().connections_parked == 1; })) {
            return false;
        }
        return exchange(fd, request) == 200;
    };
    for (int i = 0; i < 20; ++i) { // warm-up: the ready stack, frame and record pools
        REQUIRE(parked_round());
    }
    const std::uint64_t parks_before = app.server().stats().parks;
    const std::size_t before = test::g_heap_allocations.load();
    int ok = 0;
    for (int i = 0; i < 100; ++i) {
        ok += parked_round() ? 1 : 0;
    }
    const std::size_t allocations = test::g_heap_allocations.load() - before;
    CHECK(ok == 100);
    CHECK(app.server().stats().parks - parks_before >= 100);
    CHECK(allocations == 0);
    ::close(fd);
    app.shutdown();
    server.join();
#endif
}

} // TEST_SUITE
