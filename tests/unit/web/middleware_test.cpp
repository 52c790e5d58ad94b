// SPDX-License-Identifier: MIT
// Built-in middleware through the whole HTTP stack (TestClient): onion order, access log,
// recover, request id, CORS, body limit, basic auth, rate limit, timeout (with a sealed
// response), and the readiness handler.
#include <ringwork/io/error.hpp>
#include <ringwork/io/timer.hpp>
#include <ringwork/web/app.hpp>
#include <ringwork/web/error.hpp>
#include <ringwork/web/middleware.hpp>
#include <ringwork/web/testing.hpp>

#include "helpers.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <doctest/doctest.h>
#include <mutex>
#include <set>
#include <stdexcept>
#include <map>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
namespace mw = ringwork::web::mw;
using ringwork::runtime::Task;
using ringwork::web::App;
using ringwork::web::Context;
using ringwork::web::HttpError;
using ringwork::web::Next;
using ringwork::web::testing::TestClient;
using ringwork::web::testing::TestRequest;

namespace {

/// Lines written by the server's reactor thread, read by the test thread.
class Lines {
public:
    void add(std::string_view line) {
        const std::lock_guard<std::mutex> lock(mutex_);
        lines_.emplace_back(line);
    }
    std::vector<std::string> take() {
        const std::lock_guard<std::mutex> lock(mutex_);
        return std::exchange(lines_, {});
    }
    /// A sink writing here (the Lines object must outlive the App's serving).
    std::function<void(std::string_view)> sink() {
        return [this](std::string_view line) { add(line); };
    }

private:
    std::mutex mutex_;
    std::vector<std::string> lines_;
};

/// A middleware that records "<name>-in" / "<name>-out" (no captures: state by pointer).
struct Tracer {
    Lines* trace;
    std::string name;
    bool stop = false; ///< short-circuit: answer 403 without calling next
    Task<> operator()(Context& c, Next next) const {
        trace->add(name + "-in");
        if (stop) {
            c.status(403).text("stopped by " + name);
            co_return;
        }
        auto rest = next();
        co_await rest;
        trace->add(name + "-out");
    }
};

struct TraceHandler {
    Lines* trace;
    void operator()(Context& c) const {
        trace->add("handler");
        c.text("ok");
    }
};

void throw_runtime(Context&) {
    throw std::runtime_error("kaboom");
}
void throw_teapot(Context&) {
    throw HttpError(418, "short and stout");
}
void hello(Context& c) {
    c.text("hello");
}
void echo_user(Context& c) {
    c.text(mw::auth_user_of(c));
}
void echo_request_id(Context& c) {
    c.text(mw::request_id_of(c));
}

std::string basic(std::string_view credentials) {
    static constexpr std::string_view kAlphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < credentials.size(); i += 3) {
        const auto n =
            (static_cast<unsigned>(static_cast<unsigned char>(credentials[i])) << 16U) |
            (static_cast<unsigned>(static_cast<unsigned char>(credentials[i + 1])) << 8U) |
            static_cast<unsigned>(static_cast<unsigned char>(credentials[i + 2]));
        out += kAlphabet[(n >> 18U) & 63U];
        out += kAlphabet[(n >> 12U) & 63U];
        out += kAlphabet[(n >> 6U) & 63U];
        out += kAlphabet[n & 63U];
    }
    if (i + 1 == credentials.size()) {
        const auto n = static_cast<unsigned>(static_cast<unsigned char>(credentials[i])) << 16U;
        out += kAlphabet[(n >> 18U) & 63U];
        out += kAlphabet[(n >> 12U) & 63U];
        out += "==";
    } else if (i + 2 == credentials.size()) {
        const auto n =
            (static_cast<unsigned>(static_cast<unsigned char>(credentials[i])) << 16U) |
            (static_cast<unsigned>(static_cast<unsigned char>(credentials[i + 1])) << 8U);
        out += kAlphabet[(n >> 18U) & 63U];
        out += kAlphabet[(n >> 12U) & 63U];
        out += kAlphabet[(n >> 6U) & 63U];
        out += '=';
    }
    return "Basic " + out;
}

bool contains(std::string_view hay, std::string_view needle) {
    return hay.find(needle) != std::string_view::npos;
}

} // namespace

TEST_SUITE("web.middleware") {

    TEST_CASE("middleware wrap the handler as an onion and may short-circuit") {
        Lines trace;
        App app;
        app.use(Tracer{&trace, "A"});
        app.get("/x", Tracer{&trace, "B"}, TraceHandler{&trace});
        app.get("/stop", Tracer{&trace, "B", true}, TraceHandler{&trace});
        TestClient client(app);

        auto r = client.get("/x");
        CHECK(r.status == 200);
        CHECK(r.body == "ok");
        CHECK(trace.take() ==
              std::vector<std::string>{"A-in", "B-in", "handler", "B-out", "A-out"});

        r = client.get("/stop");
        CHECK(r.status == 403);
        CHECK(r.body == "stopped by B");
        CHECK(trace.take() == std::vector<std::string>{"A-in", "B-in", "A-out"});
    }

    TEST_CASE("logger: common and combined lines, escaped, with status and bytes") {
        Lines lines;
        App app;
        app.use(mw::logger({mw::LogFormat::common, lines.sink()}));
        app.get("/a", hello);
        TestClient client(app);

        CHECK(client.get("/a?x=1").status == 200);
        CHECK(client.get("/missing").status == 404);
        auto got = lines.take();
        REQUIRE(got.size() == 2);
        // ip - user [time] "request line" status bytes
        CHECK(got[0].rfind("local - - [", 0) == 0);
        CHECK(contains(got[0], " +0000] \"GET /a?x=1 HTTP/1.1\" 200 5"));
        CHECK(contains(got[1], "\"GET /missing HTTP/1.1\" 404 "));

        App app2;
        app2.use(mw::logger({mw::LogFormat::combined, lines.sink()}));
        app2.get("/a", hello);
        TestClient client2(app2);
        CHECK(client2.get("/a", {{"Referer", "http://r.example/"}, {"User-Agent", "curl \"8\"\\x"}})
                  .status == 200);
        CHECK(client2.get("/a").status == 200);
        got = lines.take();
        REQUIRE(got.size() == 2);
        CHECK(contains(got[0],
                       "\"GET /a HTTP/1.1\" 200 5 \"http://r.example/\" \"curl \\\"8\\\"\\\\x\""));
        CHECK(contains(got[1], "\" 200 5 \"-\" \"-\""));
    }

    TEST_CASE("logger: JSON lines carry request id, route, duration; exceptions are logged, then "
              "rethrown") {
        Lines lines;
        Lines server_log;
        ringwork::web::AppOptions options;
        options.server.logger = server_log.sink();
        App app(options);
        app.use(mw::request_id());
        app.use(mw::logger({mw::LogFormat::json, lines.sink()}));
        app.get("/users/:id", hello);
        app.get("/boom", throw_runtime);
        app.get("/teapot", throw_teapot);
        TestClient client(app);

        auto r = client.get("/users/7?q=%22", {{"X-Request-ID", "abc-123"}});
        CHECK(r.status == 200);
        r = client.get("/boom");
        CHECK(r.status == 500); // the App's boundary answered what the logger rethrew
        r = client.get("/teapot");
        CHECK(r.status == 418);
        auto got = lines.take();
        REQUIRE(got.size() == 3);
        const auto j = nlohmann::json::parse(got[0]);
        CHECK(j["remote_ip"] == "local");
        CHECK(j["method"] == "GET");
        CHECK(j["target"] == "/users/7?q=%22");
        CHECK(j["status"] == 200);
        CHECK(j["bytes"] == 5);
        CHECK(j["duration_us"].get<std::int64_t>() >= 0);
        CHECK(j["request_id"] == "abc-123");
        CHECK(j["route"] == "/users/:id");
        const std::string time = j["time"];
        CHECK(time.size() == 24);
        CHECK(time.back() == 'Z');
        CHECK(nlohmann::json::parse(got[1])["status"] == 500);
        CHECK(nlohmann::json::parse(got[1])["route"] == "/boom");
        CHECK(nlohmann::json::parse(got[2])["status"] == 418);
        const auto failures = server_log.take(); // the App's boundary logged the 500 only
        REQUIRE(failures.size() == 1);
        CHECK(contains(failures[0], "kaboom"));
    }

    TEST_CASE("logger: logfmt lines carry the JSON format's fields; values with spaces, = or quotes are quoted") {
        Lines lines;
        App app;
        app.use(mw::request_id());
        app.use(mw::logger({mw::LogFormat::logfmt, lines.sink()}));
        app.get("/users/:id", hello);
        TestClient client(app);
        CHECK(client.get("/users/7?q=a=b", {{"X-Request-ID", "abc-123"}}).status == 200);
        CHECK(client.get("/nowhere").status == 404);
        auto got = lines.take();
        REQUIRE(got.size() == 2);
        // Parse key=value / key="quoted \" value" pairs back.
        auto parse = [](std::string_view line) {
            std::map<std::string, std::string> kv;
            std::size_t i = 0;
            while (i < line.size()) {
                const std::size_t eq = line.find('=', i);
                REQUIRE(eq != std::string_view::npos);
                std::string key(line.substr(i, eq - i));
                std::string value;
                i = eq + 1;
                if (i < line.size() && line[i] == '"') {
                    ++i;
                    while (i < line.size() && line[i] != '"') {
                        if (line[i] == '\\' && i + 1 < line.size()) {
                            ++i;
                        }
                        value += line[i++];
                    }
                    ++i; // closing quote
                } else {
                    const std::size_t sp = line.find(' ', i);
                    value = std::string(line.substr(i, sp == std::string_view::npos ? line.npos : sp - i));
                    i = sp == std::string_view::npos ? line.size() : sp;
                }
                kv[key] = value;
                if (i < line.size()) {
                    CHECK(line[i] == ' ');
                    ++i;
                }
            }
            return kv;
        };
        const auto a = parse(got[0]);
        CHECK(a.at("remote_ip") == "local");
        CHECK(a.at("method") == "GET");
        CHECK(a.at("target") == "/users/7?q=a=b");
        CHECK(contains(got[0], " target=\"/users/7?q=a=b\" ")); // '=' in a value: quoted
        CHECK(a.at("status") == "200");
        CHECK(a.at("bytes") == "5");
        CHECK(a.contains("duration_us"));
        CHECK(a.at("request_id") == "abc-123");
        CHECK(contains(got[0], " route=/users/:id")); // a plain token: bare
        CHECK(a.at("time").size() == 24);
        CHECK(a.at("time").back() == 'Z');
        const auto b = parse(got[1]);
        CHECK(b.at("status") == "404");
        CHECK(b.at("target") == "/nowhere");
    }

    TEST_CASE("logger: the built-in stdout sink serves requests (flushed by the reactor)") {
        App app;
        app.use(mw::logger());
        app.get("/a", hello);
        TestClient client(app);
        CHECK(client.get("/a?from=middleware_test").status == 200);
        mw::flush_access_log(); // this thread's buffer (empty: lines are buffered per reactor
                                // thread)
    }

    TEST_CASE("recover: exceptions become error answers through App::answer_error, logged") {
        Lines log;
        App app;
        app.use(mw::request_id());
        app.use(mw::recover({log.sink()}));
        app.get("/boom", throw_runtime);
        app.get("/teapot", throw_teapot);
        app.get("/ok", hello);
        TestClient client(app);

        auto r = client.get("/boom", {{"X-Request-ID", "rid-1"}});
        CHECK(r.status == 500);
        CHECK(r.json()["error"] == "Internal Server Error"); // never the exception text
        CHECK(r.json()["status"] == 500);
        CHECK(r.header("X-Request-ID") == "rid-1"); // set again by request_id after the reset
        r = client.get("/teapot");
        CHECK(r.status == 418);
        CHECK(r.json()["error"] == "short and stout");
        CHECK(client.get("/ok").status == 200);
        const auto got = log.take();
        REQUIRE(got.size() == 1); // client errors are not logged by default
        CHECK(contains(got[0], "recovered 500 on GET /boom request rid-1: kaboom"));

        App app2;
        app2.use(mw::recover({log.sink(), true}));
        app2.get("/teapot", throw_teapot);
        TestClient client2(app2);
        CHECK(client2.get("/teapot").status == 418);
        CHECK(log.take().size() == 1);
    }

    TEST_CASE("recover: a custom on_error answers; one that throws still yields a 500") {
        Lines log;
        App app;
        app.on_error([](Context& c, int status, std::string_view message) {
            c.status(status).text("custom: " + std::string(message));
        });
        app.use(mw::recover({log.sink()}));
        app.get("/teapot", throw_teapot);
        TestClient client(app);
        auto r = client.get("/teapot");
        CHECK(r.status == 418);
        CHECK(r.body == "custom: short and stout");

        Lines server_log;
        ringwork::web::AppOptions options;
        options.server.logger = server_log.sink();
        App app2(options);
        app2.on_error(
            [](Context&, int, std::string_view) { throw std::runtime_error("on_error broke"); });
        app2.use(mw::recover({log.sink()}));
        app2.get("/boom", throw_runtime);
        TestClient client2(app2);
        r = client2.get("/boom");
        CHECK(r.status == 500);
        CHECK(r.body == "Internal Server Error\n");
        CHECK(client2.get("/boom").status == 500); // and the server keeps serving
        CHECK(log.take().size() == 2);
        const auto fallback = server_log.take();
        REQUIRE(fallback.size() == 2);
        CHECK(contains(fallback[0], "App::on_error threw"));
    }

    TEST_CASE(
        "request_id: a valid incoming id is kept, others are replaced by unique generated ones") {
        App app;
        app.use(mw::request_id());
        app.get("/id", echo_request_id);
        TestClient client(app);

        auto r = client.get("/id", {{"X-Request-ID", "client-id.42"}});
        CHECK(r.body == "client-id.42");
        CHECK(r.header("X-Request-ID") == "client-id.42");

        std::set<std::string> seen;
        const std::vector<std::string> invalid = {"", "has space", std::string(65, 'a'),
                                                  "tab\there", "caf\xC3\xA9"};
        for (const std::string& bad : invalid) {
            r = bad.empty() ? client.get("/id") : client.get("/id", {{"X-Request-ID", bad}});
            CHECK(r.status == 200);
            CHECK(r.body != bad);
            CHECK(r.body.size() == 33); // 16 hex, '-', 16 hex
            CHECK(r.body[16] == '-');
            CHECK(r.header("X-Request-ID") == r.body);
            seen.insert(r.body);
        }
        for (int i = 0; i < 50; ++i) {
            seen.insert(client.get("/id").body);
        }
        CHECK(seen.size() == invalid.size() + 50);
        CHECK(client.get("/id", {{"X-Request-ID", std::string(64, 'b')}}).body ==
              std::string(64, 'b'));
    }

    TEST_CASE("request_id: custom header, incoming ids not trusted") {
        App app;
        mw::RequestIdOptions o;
        o.header = "X-Trace";
        o.trust_incoming = false;
        app.use(mw::request_id(o));
        app.get("/id", echo_request_id);
        TestClient client(app);
        const auto r = client.get("/id", {{"X-Trace", "mine"}});
        CHECK(r.body != "mine");
        CHECK(r.header("X-Trace") == r.body);
        CHECK_FALSE(r.has_header("X-Request-ID"));
    }

    TEST_CASE("cors: wildcard, listed origins, Vary, credentials never with *") {
        App app;
        app.use(mw::cors());
        app.get("/a", hello);
        TestClient client(app);
        auto r = client.get("/a");
        CHECK(r.status == 200);
        CHECK_FALSE(r.has_header("Access-Control-Allow-Origin"));
        r = client.get("/a", {{"Origin", "https://x.example"}});
        CHECK(r.header("Access-Control-Allow-Origin") == "*");
        CHECK_FALSE(r.has_header("Vary"));

        App listed;
        mw::CorsOptions o;
        o.origins = {"https://app.example", "https://admin.example"};
        o.expose_headers = {"X-Total", "X-Page"};
        listed.use(mw::cors(o));
        listed.get("/a", hello);
        TestClient lc(listed);
        r = lc.get("/a", {{"Origin", "https://admin.example"}});
        CHECK(r.body == "hello");
        CHECK(r.header("Access-Control-Allow-Origin") == "https://admin.example");
        CHECK(r.header("Access-Control-Expose-Headers") == "X-Total, X-Page");
        CHECK(r.header("Vary") == "Origin");
        CHECK_FALSE(r.has_header("Access-Control-Allow-Credentials"));
        r = lc.get("/a", {{"Origin", "https://evil.example"}});
        CHECK(r.status == 200); // not blocked here: the browser blocks without the header
        CHECK_FALSE(r.has_header("Access-Control-Allow-Origin"));
        CHECK(r.header("Vary") == "Origin");
        r = lc.get("/a");
        CHECK(r.header("Vary") == "Origin"); // caches must key on Origin even without one

        App creds;
        mw::CorsOptions oc;
        oc.credentials = true; // with the default "*"
        creds.use(mw::cors(oc));
        creds.get("/a", hello);
        TestClient cc(creds);
        r = cc.get("/a", {{"Origin", "https://x.example"}});
        CHECK(r.header("Access-Control-Allow-Origin") == "https://x.example");
        CHECK(r.header("Access-Control-Allow-Credentials") == "true");
        CHECK(r.header("Vary") == "Origin");
    }

    TEST_CASE("cors: preflight is answered 204 without running the chain") {
        Lines trace;
        App app;
        mw::CorsOptions o;
        o.allow_origin = [](std::string_view origin) { return origin.ends_with(".example"); };
        o.methods = {"GET", "POST"};
        o.max_age = 600s;
        app.use(mw::cors(o));
        app.use(Tracer{&trace, "inner"});
        app.post("/a", TraceHandler{&trace});
        TestClient client(app);

        TestRequest pre;
        pre.method = "OPTIONS";
        pre.target = "/a";
        pre.headers = {{"Origin", "https://ok.example"},
                       {"Access-Control-Request-Method", "POST"},
                       {"Access-Control-Request-Headers", "content-type, x-token"}};
        auto r = client.request(pre);
        CHECK(r.status == 204);
        CHECK(r.body.empty());
        CHECK(r.header("Access-Control-Allow-Origin") == "https://ok.example");
        CHECK(r.header("Access-Control-Allow-Methods") == "GET, POST");
        CHECK(r.header("Access-Control-Allow-Headers") == "content-type, x-token");
        CHECK(r.header("Access-Control-Max-Age") == "600");
        CHECK(r.header("Vary") == "Origin, Access-Control-Request-Headers");
        CHECK(trace.take().empty());

        // A disallowed origin's preflight is not answered by CORS: the App's automatic OPTIONS.
        pre.headers[0].second = "https://evil.test";
        r = client.request(pre);
        CHECK(r.status == 204);
        CHECK_FALSE(r.has_header("Access-Control-Allow-Origin"));
        CHECK(r.has_header("Allow"));

        // Configured allowed headers win over echoing.
        App app2;
        mw::CorsOptions o2;
        o2.headers = {"Content-Type"};
        app2.use(mw::cors(o2));
        app2.post("/a", hello);
        TestClient client2(app2);
        pre.headers[0].second = "https://ok.example";
        r = client2.request(pre);
        CHECK(r.status == 204);
        CHECK(r.header("Access-Control-Allow-Origin") == "*");
        CHECK(r.header("Access-Control-Allow-Headers") == "Content-Type");
        CHECK_FALSE(r.has_header("Access-Control-Max-Age"));
    }

    TEST_CASE("cors: error answers from inner layers keep the CORS headers") {
        Lines log;
        App app;
        mw::CorsOptions o;
        o.origins = {"https://app.example"};
        app.use(mw::cors(o));
        app.use(mw::recover({log.sink()}));
        app.get("/boom", throw_runtime);
        TestClient client(app);
        const auto r = client.get("/boom", {{"Origin", "https://app.example"}});
        CHECK(r.status == 500);
        CHECK(r.header("Access-Control-Allow-Origin") == "https://app.example");
        CHECK(r.header("Vary") == "Origin");
    }

    TEST_CASE("body_limit: 413 above the limit, by Content-Length or by the received body") {
        App app;
        app.post("/small", mw::body_limit(5), hello);
        TestClient client(app);
        auto r = client.post("/small", "12345", "text/plain");
        CHECK(r.status == 200);
        r = client.post("/small", "123456", "text/plain");
        CHECK(r.status == 413);
        CHECK(r.json()["status"] == 413);
        CHECK(r.json()["error"] == "the request body exceeds 5 bytes");
        // Chunked: no Content-Length, the de-chunked body decides.
        r = client.raw("POST /small HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n");
        CHECK(r.status == 413);
        r = client.raw("POST /small HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "3\r\nabc\r\n0\r\n\r\n");
        CHECK(r.status == 200);
    }

    TEST_CASE(
        "basic_auth: 401 with a challenge unless the credentials match; the user is a local") {
        App app;
        mw::BasicAuthOptions o;
        o.realm = "ops \"zone\"";
        o.users = {{"alice", "s3cret:with:colons"}, {"bob", "hunter2"}};
        app.get("/me", mw::basic_auth(o), echo_user);
        TestClient client(app);

        auto r = client.get("/me");
        CHECK(r.status == 401);
        CHECK(r.header("WWW-Authenticate") ==
              "Basic realm=\"ops \\\"zone\\\"\", charset=\"UTF-8\"");
        CHECK(r.json()["status"] == 401);
        r = client.get("/me", {{"Authorization", basic("alice:s3cret:with:colons")}});
        CHECK(r.status == 200);
        CHECK(r.body == "alice");
        r = client.get("/me", {{"Authorization", "basic " + basic("bob:hunter2").substr(6)}});
        CHECK(r.status == 200);
        CHECK(r.body == "bob");
        const std::vector<std::string> wrong = {
            basic("alice:s3cret"),
            basic("alice:s3cret:with:colonsX"),
            basic("carol:hunter2"),
            basic("bob"),
            "Basic !!!notbase64",
            "Bearer abc",
            "Basic",
            basic(":hunter2"),
            basic("bob:"),
        };
        for (const std::string& h : wrong) {
            CAPTURE(h);
            r = client.get("/me", {{"Authorization", h}});
            CHECK(r.status == 401);
            CHECK(r.has_header("WWW-Authenticate"));
        }
        CHECK_THROWS_AS(mw::basic_auth({}), std::invalid_argument);
    }

    TEST_CASE("basic_auth: a validator decides when given") {
        App app;
        mw::BasicAuthOptions o;
        o.validator = [](std::string_view user, std::string_view password) {
            return user == "svc" && password == "token";
        };
        app.use(mw::basic_auth(o));
        app.get("/me", echo_user);
        TestClient client(app);
        CHECK(client.get("/me", {{"Authorization", basic("svc:token")}}).body == "svc");
        CHECK(client.get("/me", {{"Authorization", basic("svc:nope")}}).status == 401);
    }

    TEST_CASE("rate_limit: a burst, then 429 with Retry-After and RateLimit headers") {
        App app;
        mw::RateLimitOptions o;
        o.rate = 0.001; // one token per 1000 s: no refill during the test
        o.burst = 2;
        app.use(mw::rate_limit(o));
        app.get("/a", hello);
        TestClient client(app);

        auto r = client.get("/a");
        CHECK(r.status == 200);
        CHECK(r.header("RateLimit-Limit") == "2");
        CHECK(r.header("RateLimit-Remaining") == "1");
        r = client.get("/a");
        CHECK(r.status == 200);
        CHECK(r.header("RateLimit-Remaining") == "0");
        CHECK(r.header("RateLimit-Reset") == "2000");
        r = client.get("/a");
        CHECK(r.status == 429);
        CHECK(r.json()["status"] == 429);
        CHECK(r.header("Retry-After") == "1000");
        CHECK(r.header("RateLimit-Remaining") == "0");
        CHECK(r.header("RateLimit-Limit") == "2");
    }

    TEST_CASE("rate_limit: buckets are per client key and refill with time") {
        static std::atomic<std::int64_t> fake_ms{0};
        fake_ms = 1000;
        App app;
        mw::RateLimitOptions o;
        o.rate = 2; // a token every 500 ms
        o.burst = 1;
        o.key = [](Context& c) { return c.header("X-Client"); };
        o.clock = [] {
            return std::chrono::steady_clock::time_point(std::chrono::milliseconds(fake_ms.load()));
        };
        o.headers_on_success = false;
        app.use(mw::rate_limit(o));
        app.get("/a", hello);
        TestClient client(app);

        CHECK(client.get("/a", {{"X-Client", "one"}}).status == 200);
        CHECK_FALSE(client.get("/a", {{"X-Client", "two"}}).has_header("RateLimit-Limit"));
        CHECK(client.get("/a", {{"X-Client", "one"}}).status == 429);
        CHECK(client.get("/a", {{"X-Client", "two"}}).status == 429);
        fake_ms = 1400; // 0.8 token
        CHECK(client.get("/a", {{"X-Client", "one"}}).status == 429);
        fake_ms = 1600; // 1.0 token (and not counted twice: 400 ms already credited)
        CHECK(client.get("/a", {{"X-Client", "one"}}).status == 200);
        CHECK(client.get("/a", {{"X-Client", "one"}}).status == 429);
        fake_ms = 100000; // long idle: capped at burst
        CHECK(client.get("/a", {{"X-Client", "two"}}).status == 200);
        CHECK(client.get("/a", {{"X-Client", "two"}}).status == 429);
    }

    TEST_CASE("rate_limit: the table is bounded and shared safely by threads") {
        mw::RateLimitOptions o;
        o.rate = 1e-6;
        o.burst = 100;
        o.max_clients = 8; // one set of 8 entries
        const mw::RateLimit limiter(o);
        const auto t0 = std::chrono::steady_clock::time_point(1s);

        // Eight threads race for one key's 100 tokens: exactly 100 win.
        std::atomic<int> allowed{0};
        std::vector<std::thread> threads;
        for (int t = 0; t < 8; ++t) {
            threads.emplace_back([&] {
                for (int i = 0; i < 50; ++i) {
                    if (limiter.take("hot", t0).allowed) {
                        allowed.fetch_add(1);
                    }
                }
            });
        }
        for (auto& t : threads) {
            t.join();
        }
        CHECK(allowed.load() == 100);

        // More keys than entries: the least recently seen is forgotten, the table does not grow.
        for (int i = 0; i < 1000; ++i) {
            std::string key = "k"; // not "k" + to_string(i): g++ 12 -O3 -Wrestrict false positive
            key += std::to_string(i);
            CHECK(limiter.take(key, t0 + std::chrono::milliseconds(i)).allowed);
        }
        // "hot" was evicted long ago: it starts again with a full bucket.
        CHECK(limiter.take("hot", t0 + 2s).remaining == 99);
        // Keys longer than the entry keep their identity through a hash suffix.
        const std::string long_a(200, 'a');
        std::string long_b = long_a;
        long_b.back() = 'b';
        CHECK(limiter.take(long_a, t0 + 3s).remaining == 99);
        CHECK(limiter.take(long_a, t0 + 3s).remaining == 98);
        CHECK(limiter.take(long_b, t0 + 3s).remaining == 99);
        mw::RateLimitOptions zero;
        zero.rate = 0;
        CHECK_THROWS_AS(mw::rate_limit(zero), std::invalid_argument);
    }

} // TEST_SUITE

namespace {

struct SlowState {
    std::atomic<bool> cancelled{false};
    std::atomic<bool> token_fired{false};
    std::atomic<bool> finished{false};
};

/// Sleeps 30 s; on cancellation tries to overwrite the response in every way.
struct SlowHandler {
    SlowState* state;
    Task<> operator()(Context& c) const {
        bool cancelled = false;
        try {
            auto nap = ringwork::io::sleep_for(30s);
            co_await nap;
        } catch (const ringwork::runtime::OperationCancelled&) {
            cancelled = true;
        }
        state->cancelled = cancelled;
        state->token_fired = c.stop_token().stop_requested();
        c.status(200);
        c.set_header("X-Late", "1");
        c.response().set_close(false);
        c.text("late body");
        c.json(ringwork::web::Json{{"late", true}});
        c.response().remove_header("Content-Type");
        state->finished = true;
    }
};

/// Sleeps 30 s and lets the cancellation escape.
struct RethrowingSlowHandler {
    SlowState* state;
    Task<> operator()(Context&) const {
        state->cancelled = true; // set before: the exception below ends the handler
        auto nap = ringwork::io::sleep_for(30s);
        co_await nap;
        state->cancelled = false; // not reached when cancelled
    }
};

struct FastHandler {
    Task<> operator()(Context& c) const {
        auto nap = ringwork::io::sleep_for(1ms);
        co_await nap;
        c.text("fast");
    }
};

Task<> throwing_async(Context& c) {
    auto nap = ringwork::io::sleep_for(1ms);
    co_await nap;
    c.text("unreachable");
    throw HttpError(409, "conflict after a nap");
}

/// Seals a 299 answer before the rest runs (exercises Response::seal directly).
struct Sealer {
    Task<> operator()(Context& c, Next next) const {
        c.status(299).set_header("X-Sealed", "yes");
        c.text("sealed body");
        c.response().seal();
        auto rest = next();
        co_await rest;
    }
};

void overwrite_everything(Context& c) {
    c.status(200).set_header("X-Sealed", "no").add_header("X-More", "1");
    c.text("changed");
    c.response().remove_header("X-Sealed");
    c.response().append_body("more");
    c.json(ringwork::web::Json{{"changed", true}});
}

} // namespace

TEST_SUITE("web.middleware") {

    TEST_CASE(
        "timeout: the handler is cancelled, the answer is a sealed 503 and the connection closes") {
        SlowState state;
        App app;
        app.use(mw::timeout(50ms));
        app.get("/slow", SlowHandler{&state});
        app.get("/fast", FastHandler{});
        app.get("/throws", throwing_async);
        TestClient client(app, 20s);

        const auto start = std::chrono::steady_clock::now();
        auto r = client.get("/slow");
        const auto took = std::chrono::steady_clock::now() - start;
        CHECK(r.status == 503);
        CHECK(r.json()["error"] == "request timed out");
        CHECK(r.json()["status"] == 503);
        CHECK(r.header("Content-Type") == "application/json");
        CHECK_FALSE(r.has_header("X-Late"));
        CHECK(r.closed);
        CHECK(took < 15s); // far from the 30 s sleep
        // The 503 left before the handler's cancelled sleep completed; it finishes after.
        REQUIRE(test::eventually([&] { return state.finished.load(); }));
        CHECK(state.cancelled.load());
        CHECK(state.token_fired.load());

        // The next request reconnects; fast handlers and their errors pass through untouched.
        r = client.get("/fast");
        CHECK(r.status == 200);
        CHECK(r.body == "fast");
        CHECK_FALSE(r.closed);
        r = client.get("/throws");
        CHECK(r.status == 409);
        CHECK(r.json()["error"] == "conflict after a nap");
    }

    TEST_CASE("timeout: inside logger and recover, the 503 is what they see") {
        SlowState state;
        Lines lines;
        App app;
        app.use(mw::logger({mw::LogFormat::json, lines.sink()}));
        app.use(mw::recover({lines.sink()}));
        app.use(mw::timeout(50ms));
        app.get("/slow", SlowHandler{&state});
        TestClient client(app, 20s);
        const auto r = client.get("/slow");
        CHECK(r.status == 503);
        CHECK(r.closed);
        const auto got = lines.take();
        REQUIRE(got.size() == 1);
        CHECK(nlohmann::json::parse(got[0])["status"] == 503);
    }

    TEST_CASE("timeout: a recover() inside it leaves the sealed 503 alone") {
        SlowState state;
        Lines log;
        App app;
        app.use(mw::timeout(50ms));
        app.use(mw::recover({log.sink()}));
        app.get("/slow", RethrowingSlowHandler{&state});
        TestClient client(app, 20s);
        const auto r = client.get("/slow");
        CHECK(r.status == 503);
        CHECK(r.json()["error"] == "request timed out");
        CHECK(r.closed);
        CHECK(state.cancelled.load());
        CHECK(log.take().empty()); // the expected cancellation is not a failure
    }

    TEST_CASE("Response::seal: later status, header and body changes are ignored") {
        App app;
        app.get("/s", Sealer{}, overwrite_everything);
        TestClient client(app);
        const auto r = client.get("/s");
        CHECK(r.status == 299);
        CHECK(r.header("X-Sealed") == "yes");
        CHECK_FALSE(r.has_header("X-More"));
        CHECK(r.body == "sealed body");
        CHECK(r.header("Content-Type") == "text/plain; charset=utf-8");
    }

    TEST_CASE("health: ok while serving, draining once the server shuts down, unavailable when not "
              "ready") {
        static std::atomic<bool> ready{true};
        App app;
        app.get("/healthz", mw::health());
        app.get("/readyz", mw::health({[] { return ready.load(); }}));
        TestClient client(app);
        auto r = client.get("/healthz");
        CHECK(r.status == 200);
        CHECK(r.body == R"({"status":"ok"})");
        CHECK(r.header("Content-Type") == "application/json");
        CHECK(r.header("Cache-Control") == "no-store");
        ready = false;
        r = client.get("/readyz");
        CHECK(r.status == 503);
        CHECK(r.body == R"({"status":"unavailable"})");
        ready = true;
        CHECK(client.get("/readyz").status == 200);

        app.shutdown(); // the app's server: draining
        r = client.get("/healthz");
        CHECK(r.status == 503);
        CHECK(r.body == R"({"status":"draining"})");
    }

} // TEST_SUITE

namespace {

/// After the deadline, tries to stream its own body under the sealed 503.
struct WriteAfterCancel {
    Task<> operator()(Context& c) const {
        try {
            auto nap = ringwork::io::sleep_for(30s);
            co_await nap;
        } catch (const ringwork::runtime::OperationCancelled&) { // expected: the deadline passed
        }
        auto w = c.write("late chunk");
        co_await w;
    }
};

/// Ignores the deadline: naps in steps that no stop token reaches until the test releases it,
/// then tries to answer. Shows the 503 does not wait for it.
struct StubbornState {
    std::atomic<bool> cancelled{false};
    std::atomic<bool> release{false};
    std::atomic<bool> finished{false};
};

Task<> uncancellable_nap(std::chrono::milliseconds d) {
    auto nap = ringwork::io::sleep_for(d);
    co_await nap;
}

struct StubbornHandler {
    StubbornState* state;
    Task<> operator()(Context& c) const {
        ringwork::runtime::StopSource deaf; // never fired: what runs under it is not cancelled
        while (!state->release.load()) {
            auto nap = uncancellable_nap(2ms).with_stop_token(ringwork::runtime::StopToken(deaf));
            co_await nap;
            if (c.stop_token().stop_requested()) {
                state->cancelled = true;
            }
        }
        c.status(200).text("too late");
        auto w = c.write("and a chunk");
        const bool sent = co_await w;
        CHECK_FALSE(sent);
        state->finished = true;
    }
};

/// Streams a first chunk, then sleeps past the deadline.
struct StreamThenSlow {
    SlowState* state;
    Task<> operator()(Context& c) const {
        auto w = c.write("first chunk");
        co_await w;
        try {
            auto nap = ringwork::io::sleep_for(30s);
            co_await nap;
        } catch (const ringwork::runtime::OperationCancelled&) {
            state->cancelled = true;
        }
    }
};

} // namespace

TEST_SUITE("web.middleware") {

    TEST_CASE("timeout: a streamed response cut by the deadline ends in a close, not a last chunk") {
        SlowState state;
        App app;
        app.use(mw::timeout(50ms));
        app.get("/stream", StreamThenSlow{&state});
        app.get("/ok", hello);
        TestClient client(app, 20s);
        // The head and the first chunk were out before the deadline: no 503 is possible, and
        // no terminating chunk is sent either, so the client sees an incomplete response.
        CHECK_THROWS_WITH_AS(client.get("/stream"), doctest::Contains("closed before a complete response"),
                             std::runtime_error);
        REQUIRE(test::eventually([&] { return state.cancelled.load(); }));
        CHECK(client.get("/ok").status == 200); // reconnects
    }

    TEST_CASE("timeout: a handler that ignores cancellation does not hold the 503 back; it "
              "finishes into nothing") {
        StubbornState state;
        App app;
        app.use(mw::timeout(50ms));
        app.get("/stubborn", StubbornHandler{&state});
        app.get("/ok", hello);
        TestClient client(app, 20s);
        const auto r = client.get("/stubborn");
        // Answered while the handler still runs: it cannot finish before `release` is set.
        CHECK(r.status == 503);
        CHECK(r.json()["error"] == "request timed out");
        CHECK(r.closed);
        CHECK_FALSE(state.finished.load());
        REQUIRE(test::eventually([&] { return state.cancelled.load(); }));
        CHECK(client.server().stats().handlers_detached == 1);
        // Other clients are served meanwhile (the stubborn one holds only its own worker).
        CHECK(client.get("/ok").status == 200);
        state.release = true;
        REQUIRE(test::eventually([&] { return state.finished.load(); }));
        // Its exchange went back to the pool and its connection ended: only the new one is open.
        REQUIRE(test::eventually([&] { return client.server().open_connections() == 1; }));
        CHECK(client.get("/ok").status == 200);
    }

    TEST_CASE("timeout: a handler streaming after the deadline cannot replace the 503") {
        App app;
        app.use(mw::timeout(50ms));
        app.get("/late", WriteAfterCancel{});
        TestClient client(app, 20s);
        const auto r = client.get("/late");
        CHECK(r.status == 503);
        CHECK(r.closed);
        CHECK_FALSE(r.chunked);
        CHECK(r.body.find("late chunk") == std::string::npos);
    }

} // TEST_SUITE
