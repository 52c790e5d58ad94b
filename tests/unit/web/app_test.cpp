// SPDX-License-Identifier: MIT
// App: routing through the full stack (TestClient), middleware chains, groups, the error
// boundary, automatic OPTIONS / 405 / trailing-slash answers, locals, streaming, client IP.
#include <ringwork/io/timer.hpp>
#include <ringwork/web/app.hpp>
#include <ringwork/web/middleware.hpp>
#include <ringwork/web/testing.hpp>

#include "helpers.hpp"
#include "http_reader.hpp"
#include "running_server.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using ringwork::runtime::Task;
using ringwork::web::App;
using ringwork::web::Context;
using ringwork::web::Next;
using ringwork::web::testing::TestClient;
using ringwork::web::testing::TestRequest;

TEST_SUITE("web.app") {

TEST_CASE("sync and async handlers, params, query and JSON") {
    App app;
    app.get("/hello/:name", [](Context& c) { c.text(std::string("hello ") + std::string(c.param("name"))); });
    app.get("/users/:id/posts/*rest", [](Context& c) {
        c.json({{"id", c.param("id")}, {"rest", c.param("rest")}, {"route", c.route()}, {"page", c.query_or("page", "1")}});
    });
    app.get("/slow", [](Context& c) -> Task<> {
        co_await ringwork::io::sleep_for(5ms);
        c.status(202).text("late");
    });
    TestClient client(app);
    auto r = client.get("/hello/w%C3%B6rld");
    CHECK(r.status == 200);
    CHECK(r.body == "hello w\xC3\xB6rld");
    CHECK(r.header("Content-Type") == "text/plain; charset=utf-8");

    r = client.get("/users/42/posts/a/b?page=3");
    CHECK(r.status == 200);
    CHECK(r.header("Content-Type") == "application/json");
    const auto j = r.json();
    CHECK(j["id"] == "42");
    CHECK(j["rest"] == "a/b");
    CHECK(j["route"] == "/users/:id/posts/*rest");
    CHECK(j["page"] == "3");

    r = client.get("/slow");
    CHECK(r.status == 202);
    CHECK(r.body == "late");
    CHECK_FALSE(r.closed); // one kept-alive connection served all three
}

TEST_CASE("views a suspended handler took before its co_await stay its own while other requests "
          "reuse receive buffers") {
    // A handler keeps c.param() and c.path() in locals across a co_await. Meanwhile a second
    // connection sends requests to the same reactor: with the receive buffer given back at
    // the suspension, the locals read those requests' bytes (the spare pool of the epoll
    // backend, or io_uring without a buffer ring, reuses a buffer at once; this test runs
    // under both, and with 2 ring buffers so that the ring recycles quickly too).
    App app;
    std::atomic<int> parked{0};
    app.get("/slow/:id", [&parked](Context& c) -> Task<> {
        const std::string_view id = c.param("id");
        const std::string_view path = c.path();
        const std::string_view ua = c.header("User-Agent");
        ++parked;
        co_await ringwork::io::sleep_for(300ms);
        c.text(std::string(id) + "|" + std::string(path) + "|" + std::string(ua) + "|" +
               std::string(c.param("id")));
    });
    app.get("/fast/:id", [](Context& c) { c.text(std::string(c.param("id"))); });
    app.freeze();
    ringwork::http::ServerOptions o;
    o.buffer_count = 2;
    test::RunningServer s(o, [&app](ringwork::http::Exchange& x) { return app.handle(x); });
    const int slow = test::connect_blocking(s.port.load());
    REQUIRE(test::write_all(slow, "GET /slow/first-id-AAAA HTTP/1.1\r\nHost: t\r\nUser-Agent: slow-agent\r\n\r\n"));
    REQUIRE(test::eventually([&] { return parked.load() == 1; }));
    const int fast = test::connect_blocking(s.port.load());
    for (int i = 0; i < 20; ++i) {
        const std::string id = "zzzzzzzzzzzz-" + std::to_string(i);
        REQUIRE(test::write_all(fast, "GET /fast/" + id + " HTTP/1.1\r\nHost: t\r\nUser-Agent: other-agent-xx\r\n\r\n"));
        const std::string reply = test::read_response(fast);
        CHECK(reply.ends_with(id));
    }
    const std::string reply = test::read_response(slow);
    CHECK(reply.ends_with("first-id-AAAA|/slow/first-id-AAAA|slow-agent|first-id-AAAA"));
    ::close(fast);
    ::close(slow);
}

TEST_CASE("middleware run as an onion, in registration order, and may short-circuit") {
    App app;
    std::vector<std::string> trace;
    app.use([&trace](Context& c, Next next) -> Task<> {
        trace.emplace_back("A-in");
        co_await next();
        trace.emplace_back("A-out");
        c.set_header("X-A", "1");
    });
    auto b = [&trace](Context& c, Next next) -> Task<> {
        trace.emplace_back("B-in");
        if (c.query("deny")) {
            c.status(403).text("denied");
            co_return; // next() not called
        }
        co_await next();
        trace.emplace_back("B-out");
    };
    app.get("/x", b, [&trace](Context& c) {
        trace.emplace_back("handler");
        c.text("x");
    });
    TestClient client(app);
    auto r = client.get("/x");
    CHECK(r.status == 200);
    CHECK(r.header("X-A") == "1");
    CHECK(trace == std::vector<std::string>{"A-in", "B-in", "handler", "B-out", "A-out"});
    trace.clear();
    r = client.get("/x?deny=1");
    CHECK(r.status == 403);
    CHECK(r.body == "denied");
    CHECK(trace == std::vector<std::string>{"A-in", "B-in", "A-out"});
}

TEST_CASE("global middleware added after the routes still wraps them, and wraps 404s") {
    App app;
    app.get("/a", [](Context& c) { c.text("a"); });
    app.use([](Context& c, Next next) -> Task<> {
        co_await next();
        c.set_header("X-Seen", "yes");
    });
    TestClient client(app);
    CHECK(client.get("/a").header("X-Seen") == "yes");
    auto r = client.get("/nope");
    CHECK(r.status == 404);
    CHECK(r.header("X-Seen") == "yes");
}

TEST_CASE("groups prefix their routes and add their own middleware, nested") {
    App app;
    auto api = app.group("/api", [](Context& c, Next next) -> Task<> {
        c.add_header("X-Layer", "api");
        co_await next();
    });
    auto v1 = api.group("/v1");
    v1.use([](Context& c, Next next) -> Task<> {
        c.add_header("X-Layer", "v1");
        co_await next();
    });
    v1.get("/items/:id", [](Context& c) { c.text(c.param("id")); });
    api.get("/ping", [](Context& c) { c.text("pong"); });
    app.get("/plain", [](Context& c) { c.text("plain"); });
    TestClient client(app);
    auto r = client.get("/api/v1/items/7");
    CHECK(r.status == 200);
    CHECK(r.body == "7");
    std::vector<std::string> layers;
    for (const auto& [k, v] : r.headers) {
        if (k == "X-Layer") {
            layers.push_back(v);
        }
    }
    CHECK(layers == std::vector<std::string>{"api", "v1"});
    r = client.get("/api/ping");
    CHECK(r.body == "pong");
    CHECK(r.header("X-Layer") == "api");
    r = client.get("/plain");
    CHECK_FALSE(r.has_header("X-Layer"));
}

TEST_CASE("a group's middleware also wraps the automatic answers of its paths: 405, OPTIONS, "
          "trailing-slash redirect and 404 under its prefix") {
    App app;
    auto layer = [](std::string name) {
        return [name](Context& c, Next next) -> Task<> {
            c.add_header("X-Layer", name);
            co_await next();
        };
    };
    app.use(layer("app"));
    auto api = app.group("/api", layer("api"));
    auto v1 = api.group("/v1", layer("v1"));
    v1.get("/items/:id", [](Context& c) { c.text(c.param("id")); });
    api.post("/jobs", [](Context& c) { c.text("queued"); });
    auto plain = app.group("/apiary"); // a prefix that starts like /api but is another segment
    plain.get("/bees", [](Context& c) { c.text("bzz"); });
    auto bare = app.group("", layer("bare")); // no prefix: claims no unrouted path
    bare.get("/bare", [](Context& c) { c.text("bare"); });
    TestClient client(app);
    auto layers = [](const ringwork::web::testing::TestResponse& r) {
        std::vector<std::string> out;
        for (const auto& [k, v] : r.headers) {
            if (k == "X-Layer") {
                out.push_back(v);
            }
        }
        return out;
    };
    using L = std::vector<std::string>;
    auto r = client.request(TestRequest{"DELETE", "/api/v1/items/7", {}, {}});
    CHECK(r.status == 405);
    CHECK(layers(r) == L{"app", "api", "v1"});
    r = client.request(TestRequest{"OPTIONS", "/api/jobs", {}, {}});
    CHECK(r.status == 204);
    CHECK(r.header("Allow") == "POST, OPTIONS");
    CHECK(layers(r) == L{"app", "api"});
    r = client.get("/api/v1/items/7/");
    CHECK(r.status == 301);
    CHECK(layers(r) == L{"app", "api", "v1"});
    r = client.get("/api/v1/nothing/here");
    CHECK(r.status == 404);
    CHECK(layers(r) == L{"app", "api", "v1"});
    r = client.get("/api");
    CHECK(r.status == 404);
    CHECK(layers(r) == L{"app", "api"});
    r = client.get("/apiary/none");
    CHECK(r.status == 404);
    CHECK(layers(r) == L{"app"});
    r = client.get("/elsewhere");
    CHECK(r.status == 404);
    CHECK(layers(r) == L{"app"});
    CHECK(client.get("/bare").body == "bare");
    r = client.request(TestRequest{"POST", "/bare", {}, {}});
    CHECK(r.status == 405);
    CHECK(layers(r) == L{"app", "bare"}); // the path is the group's route
}

TEST_CASE("405 with Allow, automatic OPTIONS, HEAD through GET, custom not-found") {
    App app;
    app.get("/r", [](Context& c) { c.text("body!"); });
    app.post("/r", [](Context& c) { c.status(201).text("made"); });
    app.not_found([](Context& c) { c.status(404).json({{"missing", c.path()}}); });
    TestClient client(app);
    auto r = client.del("/r");
    CHECK(r.status == 405);
    CHECK(r.header("Allow") == "GET, HEAD, POST, OPTIONS");
    r = client.request({"OPTIONS", "/r", {}, {}});
    CHECK(r.status == 204);
    CHECK(r.header("Allow") == "GET, HEAD, POST, OPTIONS");
    r = client.head("/r");
    CHECK(r.status == 200);
    CHECK(r.body.empty());
    CHECK(r.header("Content-Length") == "5");
    r = client.get("/else");
    CHECK(r.status == 404);
    CHECK(r.json()["missing"] == "/else");
}

TEST_CASE("trailing-slash redirect: 301 for GET, 308 otherwise, query kept; off gives 404") {
    {
        App app;
        app.get("/dir/", [](Context& c) { c.text("dir"); });
        app.post("/file", [](Context& c) { c.text("file"); });
        TestClient client(app);
        auto r = client.get("/dir?x=1");
        CHECK(r.status == 301);
        CHECK(r.header("Location") == "/dir/?x=1");
        r = client.post("/file/", "{}");
        CHECK(r.status == 308);
        CHECK(r.header("Location") == "/file");
    }
    {
        ringwork::web::AppOptions o;
        o.redirect_trailing_slash = false;
        App app(o);
        app.get("/dir/", [](Context& c) { c.text("dir"); });
        TestClient client(app);
        CHECK(client.get("/dir").status == 404);
    }
}

TEST_CASE("a redirect to a decoded query parameter cannot split the response (CR and LF become spaces)") {
    // The common `c.redirect(c.query_or("next", "/"))`: query() decodes %0D%0A to CR LF.
    App app;
    app.get("/login", [](Context& c) { c.redirect(c.query_or("next", "/")); });
    app.get("/after", [](Context& c) { c.text("after"); });
    TestClient client(app);
    const auto r = client.get("/login?next=/home%0D%0ASet-Cookie:%20s=evil%0D%0AContent-Length:%200%0D%0A%0D%0A"
                              "HTTP/1.1%20200%20OK%0D%0AContent-Length:%205%0D%0A%0D%0Ahello");
    CHECK(r.status == 302);
    CHECK(r.header("Location") ==
          "/home  Set-Cookie: s=evil  Content-Length: 0    HTTP/1.1 200 OK  Content-Length: 5    hello");
    CHECK_FALSE(r.has_header("Set-Cookie"));
    CHECK_FALSE(r.closed);
    // The connection's next answer is the next request's, not an injected one.
    const auto next = client.get("/after");
    CHECK(next.status == 200);
    CHECK(next.body == "after");
}

TEST_CASE("request_id: a header name that is no token fails when the middleware is made, naming the field") {
    ringwork::web::mw::RequestIdOptions o;
    o.header = "X Request Id";
    CHECK_THROWS_WITH_AS(ringwork::web::mw::request_id(o), doctest::Contains("RequestIdOptions.header"),
                         std::invalid_argument);
    o.header = "";
    CHECK_THROWS_WITH_AS(ringwork::web::mw::request_id(o), doctest::Contains("RequestIdOptions.header"),
                         std::invalid_argument);
    o.header = "X-Trace-Id";
    CHECK_NOTHROW(ringwork::web::mw::request_id(o));
}

TEST_CASE("the error boundary: HttpError keeps its status, other exceptions are a logged 500") {
    std::vector<std::string> logged;
    std::mutex m;
    ringwork::web::AppOptions o;
    o.server.logger = [&](std::string_view line) {
        std::lock_guard lock(m);
        logged.emplace_back(line);
    };
    App app(o);
    app.get("/teapot", [](Context&) { throw ringwork::web::HttpError(418, "short and stout"); });
    app.get("/boom", [](Context&) -> Task<> {
        co_await ringwork::io::sleep_for(1ms);
        throw std::runtime_error("kaboom");
    });
    app.post("/echo", [](Context& c) { c.json(c.json_body()); });
    TestClient client(app);
    auto r = client.get("/teapot");
    CHECK(r.status == 418);
    CHECK(r.json()["error"] == "short and stout");
    CHECK(r.json()["status"] == 418);
    r = client.get("/boom");
    CHECK(r.status == 500);
    CHECK(r.json()["error"] == "Internal Server Error");
    {
        std::lock_guard lock(m);
        REQUIRE(logged.size() == 1);
        CHECK(logged[0].find("kaboom") != std::string::npos);
        CHECK(logged[0].find("/boom") != std::string::npos);
    }
    r = client.post("/echo", R"({"a":[1,2]})");
    CHECK(r.status == 200);
    CHECK(r.json()["a"][1] == 2);
    r = client.post("/echo", "{nope");
    CHECK(r.status == 400);
    CHECK(r.json()["error"].get<std::string>().find("invalid JSON") != std::string::npos);
    // The message is nlohmann's, without its internal "[json.exception.parse_error.101]" tag.
    CHECK(r.json()["error"].get<std::string>().find("[json.exception") == std::string::npos);
    CHECK(r.json()["error"].get<std::string>().find("syntax error") != std::string::npos);
    r = client.post("/echo", "{}", "text/plain");
    CHECK(r.status == 415);
    // Nesting past kMaxJsonDepth is refused before anything recurses over it (a million '['
    // used to overflow the reactor's stack in the echo); the limit itself passes.
    const std::size_t limit = ringwork::web::kMaxJsonDepth;
    r = client.post("/echo", std::string(limit, '[') + std::string(limit, ']'));
    CHECK(r.status == 200);
    CHECK(r.body.size() == 2 * limit);
    r = client.post("/echo", std::string(limit + 1, '[') + std::string(limit + 1, ']'));
    CHECK(r.status == 400);
    CHECK(r.json()["error"].get<std::string>().find("nested deeper than 512 levels") != std::string::npos);
    r = client.post("/echo", std::string(1000000, '[') + std::string(1000000, ']'));
    CHECK(r.status == 400);
    // The connection survived every error.
    CHECK(client.get("/teapot").status == 418);
}

TEST_CASE("registration errors: conflicts name both routes, nothing after freeze") {
    App app;
    app.get("/users/:id", [](Context&) {});
    try {
        app.get("/users/:name/x", [](Context&) {});
        FAIL("expected a conflict");
    } catch (const std::invalid_argument& e) {
        const std::string what = e.what();
        CHECK(what.find("/users/:id") != std::string::npos);
        CHECK(what.find("/users/:name/x") != std::string::npos);
    }
    app.freeze();
    CHECK_THROWS_AS(app.get("/late", [](Context&) {}), std::logic_error);
    CHECK_THROWS_AS(app.use([](Context&, Next n) -> Task<> { co_await n(); }), std::logic_error);
    ringwork::web::AppOptions bad;
    bad.trusted_proxies = {"10.0.0.0/33"};
    CHECK_THROWS_AS(App{bad}, std::invalid_argument);
    bad.trusted_proxies = {"not-an-ip"};
    CHECK_THROWS_WITH_AS(App{bad}, doctest::Contains("trusted_proxies"), std::invalid_argument);
    // The upload directory is checked when the App is built, not at the first upload.
    ringwork::web::AppOptions no_dir;
    no_dir.multipart_temp_dir = "/nonexistent-ringwork-dir";
    CHECK_THROWS_WITH_AS(App{no_dir}, doctest::Contains("AppOptions.multipart_temp_dir: '/nonexistent-ringwork-dir'"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(App{no_dir}, doctest::Contains("(No such file or directory)"), std::invalid_argument);
    no_dir.multipart_temp_dir = "/etc/hostname"; // a file
    CHECK_THROWS_WITH_AS(App{no_dir}, doctest::Contains("is not a writable directory (not a directory)"),
                         std::invalid_argument);
    no_dir.multipart_temp_dir = "/var/tmp";
    CHECK_NOTHROW(App{no_dir});
    // A deadline must be positive (0 used to mean none, silently).
    CHECK_THROWS_WITH_AS(ringwork::web::mw::timeout(0ms), doctest::Contains("mw::timeout"), std::invalid_argument);
    CHECK_THROWS_AS(ringwork::web::mw::timeout(-5ms), std::invalid_argument);
}

TEST_CASE("per-request locals are typed, replaced by key and destroyed with the request") {
    App app;
    test::Counted::alive = 0;
    app.use([](Context& c, Next next) -> Task<> {
        c.emplace_local<test::Counted>("counted", 7);
        c.emplace_local<std::string>("user", "ada");
        co_await next();
    });
    app.get("/me", [](Context& c) {
        REQUIRE(c.local<std::string>("user") != nullptr);
        CHECK(c.local<int>("user") == nullptr); // wrong type
        CHECK(c.local<std::string>("nobody") == nullptr);
        c.emplace_local<std::string>("user", "grace"); // replaces
        c.text(*c.local<std::string>("user") + std::to_string(c.local<test::Counted>("counted")->value) +
               std::to_string(test::Counted::alive));
    });
    TestClient client(app);
    CHECK(client.get("/me").body == "grace71");
    CHECK(test::Counted::alive == 0);
}

TEST_CASE("server-sent events stream through the test client") {
    App app;
    app.get("/events", [](Context& c) -> Task<> {
        for (int i = 1; i <= 3; ++i) {
            const std::string n = std::to_string(i);
            const bool ok = co_await c.sse({.data = n, .event = "tick", .id = n});
            if (!ok) {
                co_return;
            }
        }
    });
    TestClient client(app);
    std::vector<std::string> chunks;
    auto r = client.stream({"GET", "/events", {}, {}}, [&](std::string_view chunk) { chunks.emplace_back(chunk); });
    CHECK(r.status == 200);
    CHECK(r.header("Content-Type") == "text/event-stream");
    REQUIRE(chunks.size() == 3);
    CHECK(chunks[0] == "id: 1\nevent: tick\ndata: 1\n\n");
    CHECK(chunks[2] == "id: 3\nevent: tick\ndata: 3\n\n");
}

TEST_CASE("server-sent events: a CR or LF cannot start another field; every data line has its own field") {
    App app;
    app.get("/events", [](Context& c) -> Task<> {
        co_await c.sse({.data = "a\r\nb\rc\nd", .event = "x\ny", .id = "1\r2"});
        co_await c.sse({.data = "trailing\n", .event = {}, .id = {}});
    });
    TestClient client(app);
    std::vector<std::string> chunks;
    auto r = client.stream({"GET", "/events", {}, {}}, [&](std::string_view chunk) { chunks.emplace_back(chunk); });
    CHECK(r.status == 200);
    REQUIRE(chunks.size() == 2);
    CHECK(chunks[0] == "id: 1 2\nevent: x y\ndata: a\ndata: b\ndata: c\ndata: d\n\n");
    CHECK(chunks[1] == "data: trailing\n\n");
}

TEST_CASE("an endless event stream ends when a graceful shutdown begins, and the drain completes") {
    ringwork::web::AppOptions o;
    o.server.shutdown_timeout = 5s; // a failure is a cut after 5 s (no last chunk), not a hang
    App app(o);
    std::atomic<bool> saw_shutdown{false};
    app.get("/ticks", [&](Context& c) -> Task<> {
        for (int i = 1;; ++i) {
            const std::string n = std::to_string(i);
            if (!co_await c.sse({.data = n, .event = {}, .id = n})) {
                saw_shutdown = c.shutdown_token().stop_requested();
                co_return;
            }
            co_await ringwork::io::sleep_for(20ms);
        }
    });
    std::atomic<std::uint16_t> port{0};
    std::thread t([&] { app.listen("127.0.0.1:0", 1, [&](std::uint16_t p) { port = p; }); });
    REQUIRE(test::eventually([&] { return port.load() != 0; }));
    const int fd = test::connect_blocking(port.load());
    REQUIRE(test::write_all(fd, "GET /ticks HTTP/1.1\r\nHost: x\r\n\r\n"));
    std::string got;
    char buf[4096];
    while (got.find("data: 3\n") == std::string::npos) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        REQUIRE(n > 0);
        got.append(buf, static_cast<std::size_t>(n));
    }
    const auto asked = std::chrono::steady_clock::now();
    app.shutdown();
    got += test::read_to_eof(fd);
    ::close(fd);
    t.join();
    CHECK(std::chrono::steady_clock::now() - asked < 3s);
    CHECK(saw_shutdown.load());
    CHECK(got.ends_with("\r\n0\r\n\r\n")); // the stream's own end, not a cut
    CHECK(app.server().stats().connections_cut == 0);
}

TEST_CASE("Context::sleep_for: true after the pause, false at once when a shutdown begins, a throw when the request is cancelled") {
    ringwork::web::AppOptions o;
    o.server.shutdown_timeout = 5s; // a failure is a cut after 5 s, not a hang
    std::mutex log_mutex;
    std::vector<std::string> logged;
    o.server.logger = [&](std::string_view line) {
        const std::lock_guard lock(log_mutex);
        logged.emplace_back(line);
    };
    App app(o);
    // The access log records what is answered; recover (when used) answers the same.
    std::vector<std::string> access;
    ringwork::web::mw::LoggerOptions lo;
    lo.format = ringwork::web::mw::LogFormat::json;
    lo.sink = [&](std::string_view line) {
        const std::lock_guard lock(log_mutex);
        access.emplace_back(line);
    };
    app.use(ringwork::web::mw::logger(lo));
    SUBCASE("the App's boundary") {}
    SUBCASE("under mw::recover") { app.use(ringwork::web::mw::recover()); }
    std::atomic<int> cancelled{0};
    app.get("/short", [](Context& c) -> Task<> { c.text((co_await c.sleep_for(10ms)) ? "slept" : "woken"); });
    app.get("/poll", [](Context& c) -> Task<> { c.text((co_await c.sleep_for(30s)) ? "timed out" : "shutting down"); });
    app.get("/reset", [&](Context& c) -> Task<> {
        try {
            co_await c.sleep_for(30s);
        } catch (const ringwork::runtime::OperationCancelled&) {
            ++cancelled;
            throw;
        }
    });
    std::atomic<std::uint16_t> port{0};
    std::thread t([&] { app.listen("127.0.0.1:0", 1, [&](std::uint16_t p) { port = p; }); });
    REQUIRE(test::eventually([&] { return port.load() != 0; }));
    auto ask = [&](std::string_view path) {
        const int fd = test::connect_blocking(port.load());
        REQUIRE(test::write_all(fd, "GET " + std::string(path) + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
        return fd;
    };
    int fd = ask("/short");
    CHECK(test::read_to_eof(fd).ends_with("\r\n\r\nslept"));
    ::close(fd);
    // A client that resets while the handler sleeps: the request's own cancellation throws.
    fd = ask("/reset");
    REQUIRE(test::eventually([&] { return app.server().stats().requests >= 2; }));
    const linger reset{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    ::close(fd);
    CHECK(test::eventually([&] { return cancelled.load() == 1; }, 5000ms));
    // A long poll under way when the shutdown begins answers at once.
    fd = ask("/poll");
    REQUIRE(test::eventually([&] { return app.server().stats().requests >= 3; }));
    const auto asked = std::chrono::steady_clock::now();
    app.shutdown();
    const std::string got = test::read_to_eof(fd);
    ::close(fd);
    t.join();
    CHECK(std::chrono::steady_clock::now() - asked < 3s);
    CHECK(got.ends_with("\r\n\r\nshutting down"));
    CHECK(app.server().stats().connections_cut == 0);
    // The reset's cancellation escaped the handler: expected, not logged (log_all_errors off).
    const std::lock_guard lock(log_mutex);
    for (const std::string& line : logged) {
        CHECK(line.find("handler failed") == std::string::npos);
        CHECK(line.find("recovered") == std::string::npos);
    }
    CHECK(std::count_if(access.begin(), access.end(), [](const std::string& l) {
              return l.find("/reset") != std::string::npos && l.find(R"("status":503)") != std::string::npos;
          }) == 1);
}

namespace json_binding {
struct Point {
    int x = 0;
    int y = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Point, x, y)
} // namespace json_binding

TEST_CASE("json_body_as<T>: the value, or 400 / 415 / 422 with a message the client can act on") {
    App app;
    app.post("/points", [](Context& c) {
        const auto p = c.json_body_as<json_binding::Point>();
        c.text(std::to_string(p.x + p.y));
    });
    TestClient client(app);
    auto r = client.post("/points", R"({"x": 2, "y": 40})");
    CHECK(r.status == 200);
    CHECK(r.body == "42");
    r = client.post("/points", R"({"x": 2})");
    CHECK(r.status == 422);
    CHECK(r.json()["error"] == "invalid JSON body: key 'y' not found");
    r = client.post("/points", R"({"x": "two", "y": 1})");
    CHECK(r.status == 422);
    CHECK(r.json()["error"] == "invalid JSON body: type must be number, but is string");
    r = client.post("/points", R"({"x": 2,)");
    CHECK(r.status == 400);
    CHECK(r.json()["error"].get<std::string>().starts_with("invalid JSON body: parse error"));
    CHECK(client.post("/points", "x=2", "application/x-www-form-urlencoded").status == 415);
}

TEST_CASE("param_as and query_as: numbers, or a 400 that names the parameter") {
    App app;
    app.get("/users/:id", [](Context& c) {
        const auto id = c.param_as<long>("id");
        const auto limit = c.query_as<unsigned>("limit").value_or(20);
        const auto ratio = c.query_as<double>("ratio");
        c.json({{"id", id}, {"limit", limit}, {"ratio", ratio.value_or(-1.0)}});
    });
    TestClient client(app);
    auto r = client.get("/users/42?limit=5&ratio=0.25");
    REQUIRE(r.status == 200);
    CHECK(r.json()["id"] == 42);
    CHECK(r.json()["limit"] == 5);
    CHECK(r.json()["ratio"] == 0.25);
    CHECK(client.get("/users/-7").json()["id"] == -7);
    CHECK(client.get("/users/7").json()["limit"] == 20); // absent: the fallback
    const auto error_of = [&](const std::string& target) {
        const auto e = client.get(target);
        CHECK(e.status == 400);
        return e.json()["error"].get<std::string>();
    };
    CHECK(error_of("/users/abc") == "path parameter 'id' must be an integer, got \"abc\"");
    CHECK(error_of("/users/1x") == "path parameter 'id' must be an integer, got \"1x\"");
    CHECK(error_of("/users/99999999999999999999") ==
          "path parameter 'id' must be an integer in range, got \"99999999999999999999\"");
    CHECK(error_of("/users/1?limit=-1") == "query argument 'limit' must be a non-negative integer, got \"-1\"");
    CHECK(error_of("/users/1?limit=") == "query argument 'limit' must be a non-negative integer, got \"\"");
    CHECK(error_of("/users/1?ratio=half") == "query argument 'ratio' must be a number, got \"half\"");
    CHECK(error_of("/users/1?ratio=inf") == "query argument 'ratio' must be a number, got \"inf\"");
    CHECK(error_of("/users/1?ratio=nan") == "query argument 'ratio' must be a number, got \"nan\"");
    CHECK(error_of("/users/1?limit=%22%0A") == "query argument 'limit' must be a non-negative integer, got \"??\"");
}

TEST_CASE("streaming after a body was set fails loudly instead of dropping the body") {
    App app;
    app.get("/mixed", [](Context& c) -> Task<> {
        c.json({{"a", 1}});
        auto sent = c.write("more");
        (void)co_await sent;
    });
    app.get("/stream", [](Context& c) -> Task<> {
        auto sent = c.write("only");
        (void)co_await sent;
    });
    TestClient client(app);
    const auto mixed = client.get("/mixed");
    CHECK(mixed.status == 500); // the head was not out yet: an error answer
    CHECK(mixed.body.find("more") == std::string::npos);
    const auto streamed = client.get("/stream");
    CHECK(streamed.status == 200);
    CHECK(streamed.body == "only");
}

TEST_CASE("listen: a bad address says what is wrong with it; localhost is the IPv4 loopback") {
    const auto problem = [](std::string_view address) {
        App app;
        try {
            app.listen(address, 1);
        } catch (const std::invalid_argument& e) {
            return std::string(e.what());
        }
        return std::string("<no error>");
    };
    CHECK(problem("http://127.0.0.1:8080").find("without a scheme") != std::string::npos);
    CHECK(problem("19320").find("no port: write host:port, e.g. '0.0.0.0:19320'") != std::string::npos);
    CHECK(problem("127.0.0.1:99999").find("the port '99999' is not a number in [0, 65535]") != std::string::npos);
    CHECK(problem("127.0.0.1:http").find("the port 'http'") != std::string::npos);
    CHECK(problem("example.com:80").find("'example.com' is not an IP address") != std::string::npos);
    CHECK(problem("::1:80").find("an IPv6 address goes in brackets: '[::1]:80'") != std::string::npos);
    CHECK(problem("[::1]").find("no port") != std::string::npos);

    App app;
    app.get("/", [](Context& c) { c.text("local"); });
    std::atomic<std::uint16_t> port{0};
    std::thread t([&] { app.listen("LocalHost:0", 1, [&](std::uint16_t p) { port = p; }); });
    REQUIRE(test::eventually([&] { return port.load() != 0; }));
    const int fd = test::connect_blocking(port.load());
    REQUIRE(test::write_all(fd, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    CHECK(test::read_to_eof(fd).ends_with("local"));
    ::close(fd);
    app.shutdown();
    t.join();
}

TEST_CASE("client IP: the peer, or X-Forwarded-For / X-Real-IP from a trusted proxy") {
    auto run = [](std::vector<std::string> proxies, std::string extra_headers) {
        ringwork::web::AppOptions o;
        o.trusted_proxies = std::move(proxies);
        App app(o);
        app.get("/ip", [](Context& c) { c.text(c.ip()); });
        std::atomic<std::uint16_t> port{0};
        std::thread t([&] { app.listen("127.0.0.1:0", 1, [&](std::uint16_t p) { port = p; }); });
        REQUIRE(test::eventually([&] { return port.load() != 0; }));
        const int fd = test::connect_blocking(port.load());
        REQUIRE(test::write_all(fd, "GET /ip HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + extra_headers + "\r\n"));
        const std::string response = test::read_to_eof(fd);
        ::close(fd);
        app.shutdown();
        t.join();
        return response.substr(response.find("\r\n\r\n") + 4);
    };
    CHECK(run({}, "X-Forwarded-For: 1.2.3.4\r\n") == "127.0.0.1");
    CHECK(run({"127.0.0.0/8"}, "X-Forwarded-For: 9.9.9.9, 1.2.3.4\r\n") == "1.2.3.4");
    CHECK(run({"127.0.0.1", "1.2.3.0/24"}, "X-Forwarded-For: 9.9.9.9, 1.2.3.4\r\n") == "9.9.9.9");
    CHECK(run({"127.0.0.1"}, "X-Real-IP: 5.6.7.8\r\n") == "5.6.7.8");
    CHECK(run({"::1"}, "X-Real-IP: 5.6.7.8\r\n") == "127.0.0.1");
    // A proxy that adds its own line: the forged first line is not believed.
    CHECK(run({"127.0.0.1"}, "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 1.2.3.4\r\n") == "1.2.3.4");
    CHECK(run({"127.0.0.1"}, "X-Forwarded-For: 2001:db8::1\r\n") == "2001:db8::1");
    CHECK(run({"127.0.0.1"}, "X-Real-IP: not-an-ip\r\n") == "127.0.0.1");
    CHECK(run({"127.0.0.1"}, "X-Forwarded-For: 1.2.3.4, garbage\r\n") == "127.0.0.1");
}

TEST_CASE("the test client reports a closed connection and reconnects") {
    App app;
    app.get("/bye", [](Context& c) {
        c.response().set_close();
        c.text("bye");
    });
    TestClient client(app);
    auto r = client.get("/bye");
    CHECK(r.closed);
    CHECK(client.get("/bye").body == "bye");
    r = client.raw("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
    CHECK(r.status == 400);
    CHECK(r.closed);
}

} // TEST_SUITE

TEST_SUITE("web.app") {

TEST_CASE("handlers run under the connection's stop token; the test client notices a silent close") {
    App app;
    app.get("/token", [](Context& c) { c.text(c.stop_token().stop_possible() ? "yes" : "no"); });
    app.get("/cut", [](Context& c) -> Task<> {
        co_await c.write("first");
        throw std::runtime_error("stream cut"); // head already out: the server closes
    });
    TestClient client(app);
    const auto token = client.get("/token");
    CHECK(token.status == 200);
    CHECK(token.body == "yes");
    auto r = client.stream({"GET", "/cut", {}, {}}, [](std::string_view) {});
    CHECK(r.status == 200);
    // No Connection: close was announced, yet the next call must reconnect and succeed.
    CHECK(client.get("/token").status == 200);
}

} // TEST_SUITE

TEST_SUITE("web.app") {

TEST_CASE("trailing-slash redirects never point at another host, and follow the decoded path") {
    App app;
    app.get("/:slug", [](Context& c) { c.text(c.param("slug")); });
    app.get("/dir/:name/", [](Context& c) { c.text(c.param("name")); });
    TestClient client(app);
    // "/\evil.com/" misses /:slug only by its slash: a Location of "/\evil.com" would send
    // browsers to evil.com.
    auto r = client.get("/\\evil.com/");
    CHECK(r.status == 404);
    CHECK_FALSE(r.has_header("Location"));
    r = client.get("//evil.com/");
    CHECK(r.status != 301);
    CHECK_FALSE(r.has_header("Location"));
    r = client.get("/dir/x");
    CHECK(r.status == 301);
    CHECK(r.header("Location") == "/dir/x/");
    // The router sees "/a/" (decoded) and wants it removed; the raw path ends in "%2F".
    r = client.get("/a%2F");
    CHECK(r.status == 404);
    CHECK_FALSE(r.has_header("Location"));
}

TEST_CASE("a trailing-slash miss that cannot be redirected goes to the custom not-found handler") {
    App app;
    app.get("/:slug", [](Context& c) { c.text(c.param("slug")); });
    app.get("/dir/:name/", [](Context& c) { c.text(c.param("name")); });
    app.post("/form", [](Context& c) { c.text("posted"); });
    app.not_found([](Context& c) { c.status(404).json({{"missing", c.path()}}); });
    TestClient client(app);
    // The slash the router wants removed is "%2F" in the raw path: no safe rewrite.
    auto r = client.get("/get%2F");
    CHECK(r.status == 404);
    CHECK_FALSE(r.has_header("Location"));
    CHECK(r.json()["missing"] == "/get/");
    r = client.post("/form%2F", "{}");
    CHECK(r.status == 404);
    CHECK(r.json()["missing"] == "/form/");
    // A redirect target that browsers would read as another host.
    r = client.get("/\\evil.com/");
    CHECK(r.status == 404);
    CHECK_FALSE(r.has_header("Location"));
    CHECK(r.json()["missing"] == "/\\evil.com/");
    // The possible redirects still happen; plain misses were the handler's already.
    r = client.get("/dir/x");
    CHECK(r.status == 301);
    CHECK(r.header("Location") == "/dir/x/");
    CHECK(client.get("/dir/x/y").json()["missing"] == "/dir/x/y");
}

TEST_CASE("accepts(): the most specific matching media range decides, by its q value") {
    App app;
    app.get("/accepts", [](Context& c) { c.text(c.accepts(c.header("X-Type")) ? "yes" : "no"); });
    TestClient client(app);
    const auto accepts = [&](std::vector<std::pair<std::string, std::string>> headers, const std::string& type) {
        headers.emplace_back("X-Type", type);
        const auto r = client.get("/accepts", std::move(headers));
        REQUIRE(r.status == 200);
        return r.body == "yes";
    };
    const auto with = [&](const std::string& accept, const std::string& type) {
        return accepts({{"Accept", accept}}, type);
    };
    const std::string json = "application/json";

    // No header, or an empty one: anything.
    CHECK(accepts({}, json));
    CHECK(with("", json));
    // Plain matches and wildcards, case-insensitive.
    CHECK(with("application/json", json));
    CHECK(with("Application/JSON", json));
    CHECK(with("text/html, application/json", json));
    CHECK(with("*/*", json));
    CHECK(with("application/*", json));
    CHECK_FALSE(with("text/html", json));
    CHECK_FALSE(with("text/*", json));
    CHECK_FALSE(with("application/xml", json));
    CHECK_FALSE(with("application/jsonx", json));
    // Empty parameters are allowed and skipped (RFC 9110 §5.6.6).
    CHECK(with("application/json;;q=0.5", json));
    CHECK_FALSE(with("application/json; ;q=0, */*", json));
    // q=0 in every spelling the grammar allows refuses; any q above 0 accepts.
    for (const std::string zero : {"application/json;q=0", "application/json;q=0.0", "application/json;q=0.000",
                                   "application/json; q=0.000", "application/json ;Q=0", "application/json\t;\tq=0."}) {
        CAPTURE(zero);
        CHECK_FALSE(with(zero, json));
    }
    CHECK(with("application/json;q=0.001", json));
    CHECK(with("application/json;q=0.5", json));
    CHECK(with("application/json;q=1", json));
    CHECK(with("application/json;q=1.000", json));
    // The most specific range wins whatever the order and the others' q values.
    CHECK_FALSE(with("application/json;q=0, */*", json));
    CHECK_FALSE(with("*/*, application/json;q=0", json));
    CHECK_FALSE(with("application/*;q=0, */*", json));
    CHECK(with("*/*;q=0, application/json", json));
    CHECK(with("application/*;q=0, application/json;q=0.1", json));
    CHECK(with("*/*;q=0, application/*;q=0.2", json));
    CHECK_FALSE(with("application/json;q=0, application/*", json));
    CHECK(with("application/json;q=0, */*", "text/html")); // the refusal is about JSON only
    // Equally specific ranges: the highest q.
    CHECK(with("application/json;q=0, application/json;q=0.5", json));
    // A range with parameters applies only to a type with them.
    CHECK_FALSE(with("text/html;level=1", "text/html"));
    CHECK(with("text/html;level=1", "text/html;level=1"));
    CHECK(with("text/html;level=1;q=0, text/html", "text/html"));
    CHECK_FALSE(with("text/html;level=1;q=0, text/html", "text/html;level=1"));
    CHECK(with("text/plain;charset=\"UTF-8\"", "text/plain; charset=utf-8"));
    CHECK_FALSE(with("text/html;q=0, text/html;level=1", "text/html"));
    // A quoted ',' or ';' in a parameter is data, not a separator.
    CHECK_FALSE(with("text/plain;x=\"a, application/json, b\"", json));
    CHECK(with("text/plain;x=\"a;q=0\"", "text/plain;x=\"a;q=0\""));
    // Malformed elements are ignored as if absent: another range then decides.
    for (const std::string bad : {"application/json;q=2", "application/json;q=1.5", "application/json;q=1.001",
                                  "application/json;q=0.0001", "application/json;q =0", "application/json;q= 0",
                                  "application/json;q=abc", "application/json;q", "application/json;q=",
                                  "application/json;level", "*/json;q=0", "application;q=0"}) {
        CAPTURE(bad);
        CHECK_FALSE(with(bad, json));
        CHECK(with(bad + ", */*", json));
    }
    // Every Accept line counts.
    CHECK(accepts({{"Accept", "text/html"}, {"Accept", "application/json"}}, json));
    CHECK_FALSE(accepts({{"Accept", "*/*"}, {"Accept", "application/json;q=0"}}, json));
}

TEST_CASE("custom method-not-allowed handler keeps the Allow header") {
    App app;
    app.get("/only-get", [](Context& c) { c.text("ok"); });
    app.method_not_allowed([](Context& c) { c.status(405).json({{"allowed", c.response().header("Allow")}}); });
    TestClient client(app);
    auto r = client.post("/only-get", "{}");
    CHECK(r.status == 405);
    CHECK(r.header("Allow") == "GET, HEAD, OPTIONS");
    CHECK(r.json()["allowed"] == "GET, HEAD, OPTIONS");
}

} // TEST_SUITE
