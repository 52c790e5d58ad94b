// SPDX-License-Identifier: MIT
// Prometheus metrics (mw::Metrics): the exposition text (HELP/TYPE, labels, cumulative
// histograms with +Inf, _sum/_count, route patterns never raw paths), counters that move as
// requests are served, the server's and the rings' figures per reactor, scrapes racing the
// reactors, and no heap allocation per request with the middleware on.
#include <ringwork/io/timer.hpp>
#include <ringwork/web/app.hpp>
#include <ringwork/web/error.hpp>
#include <ringwork/web/metrics.hpp>
#include <ringwork/web/testing.hpp>

#include "alloc_counter.hpp"
#include "helpers.hpp"
#include "raw_exchange.hpp"

#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <doctest/doctest.h>
#include <limits>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace std::chrono_literals;
namespace mw = ringwork::web::mw;
using ringwork::runtime::Task;
using ringwork::web::App;
using ringwork::web::AppOptions;
using ringwork::web::Context;
using ringwork::web::HttpError;
using ringwork::web::testing::TestClient;

namespace {

/// A scrape parsed line by line: samples by `name{labels}` as printed, HELP and TYPE by family.
struct Scrape {
    std::vector<std::pair<std::string, double>> samples; // in order
    std::map<std::string, double, std::less<>> by_key;
    std::map<std::string, std::string, std::less<>> types;
    std::set<std::string, std::less<>> helps;
    std::vector<std::string> errors;

    [[nodiscard]] bool has(std::string_view key) const { return by_key.find(key) != by_key.end(); }
    /// The value of `key`; NaN when absent (every comparison with it fails).
    [[nodiscard]] double operator[](std::string_view key) const {
        const auto it = by_key.find(key);
        return it == by_key.end() ? std::numeric_limits<double>::quiet_NaN() : it->second;
    }
    /// Samples whose key starts with `prefix`, in order.
    [[nodiscard]] std::vector<std::pair<std::string, double>>
    starting(std::string_view prefix) const {
        std::vector<std::pair<std::string, double>> out;
        for (const auto& s : samples) {
            if (std::string_view(s.first).substr(0, prefix.size()) == prefix) {
                out.push_back(s);
            }
        }
        return out;
    }
};

Scrape parse(std::string_view text) {
    Scrape s;
    while (!text.empty()) {
        const auto nl = text.find('\n');
        if (nl == std::string_view::npos) {
            s.errors.emplace_back("last line without newline");
            break;
        }
        const std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl + 1);
        if (line.starts_with("# HELP ") || line.starts_with("# TYPE ")) {
            std::string_view rest = line.substr(7);
            const auto sp = rest.find(' ');
            const std::string name(rest.substr(0, sp));
            if (line[2] == 'H') {
                s.helps.insert(name);
            } else {
                s.types[name] = std::string(rest.substr(sp + 1));
            }
            continue;
        }
        const auto sp = line.rfind(' ');
        if (sp == std::string_view::npos) {
            s.errors.emplace_back(line);
            continue;
        }
        const std::string key(line.substr(0, sp));
        const std::string value(line.substr(sp + 1));
        char* end = nullptr;
        const double v = std::strtod(value.c_str(), &end);
        if (end != value.c_str() + value.size()) {
            s.errors.emplace_back(line);
        }
        // Every sample belongs to a family announced before it with HELP and TYPE.
        std::string family = key.substr(0, key.find('{'));
        for (const std::string_view suffix : {"_bucket", "_sum", "_count"}) {
            if (family.ends_with(suffix) &&
                s.types.count(family.substr(0, family.size() - suffix.size())) != 0 &&
                s.types[family.substr(0, family.size() - suffix.size())] == "histogram") {
                family.resize(family.size() - suffix.size());
            }
        }
        if (s.types.count(family) == 0 || s.helps.count(family) == 0) {
            s.errors.push_back("no HELP/TYPE before " + key);
        }
        if (!s.by_key.emplace(key, v).second) {
            s.errors.push_back("duplicate sample " + key);
        }
        s.samples.emplace_back(key, v);
    }
    return s;
}

/// Checks one histogram series: `le` bounds as configured then +Inf, counts cumulative,
/// +Inf == _count. `labels` is the series' other labels with a trailing comma ("" for none).
void check_histogram(const Scrape& s, const std::string& labels,
                     const std::vector<double>& bounds) {
    const std::string name = "ringwork_request_duration_seconds";
    const auto buckets = s.starting(name + "_bucket{" + labels + "le=");
    REQUIRE(buckets.size() == bounds.size() + 1);
    double previous = 0;
    for (std::size_t i = 0; i < buckets.size(); ++i) {
        const std::string& key = buckets[i].first;
        const std::string le =
            key.substr(key.find("le=\"") + 4, key.size() - key.find("le=\"") - 6);
        if (i < bounds.size()) {
            CHECK(std::strtod(le.c_str(), nullptr) == doctest::Approx(bounds[i]));
        } else {
            CHECK(le == "+Inf");
        }
        CHECK(buckets[i].second >= previous); // cumulative
        previous = buckets[i].second;
    }
    std::string plain = labels;
    if (!plain.empty()) {
        plain.pop_back();
        plain = "{" + plain + "}";
    }
    CHECK(s[name + "_count" + plain] == previous);
    CHECK(s[name + "_sum" + plain] >= 0);
}

/// GET `target` on a fresh connection (Connection: close); returns the body, "" on failure.
std::string http_get(std::uint16_t port, const std::string& target, std::string* head = nullptr) {
    const int fd = test::connect_blocking(port);
    if (fd < 0) {
        return {};
    }
    test::write_all(fd, "GET " + target + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    const std::string all = test::read_to_eof(fd);
    ::close(fd);
    const auto end = all.find("\r\n\r\n");
    if (end == std::string::npos) {
        return {};
    }
    if (head != nullptr) {
        *head = all.substr(0, end);
    }
    return all.substr(end + 4);
}

/// An App served by listen() on its own thread (port 0) until the object ends.
class Served {
public:
    Served(App& app, unsigned threads)
        : app_(app) {
        thread_ = std::thread([this, threads] {
            app_.listen("127.0.0.1:0", threads, [this](std::uint16_t p) { port_ = p; });
        });
        REQUIRE(test::eventually([this] { return port_.load() != 0; }));
    }
    ~Served() {
        app_.shutdown();
        thread_.join();
    }
    Served(const Served&) = delete;
    Served& operator=(const Served&) = delete;
    [[nodiscard]] std::uint16_t port() const noexcept { return port_.load(); }

private:
    App& app_;
    std::atomic<std::uint16_t> port_{0};
    std::thread thread_;
};

void add_routes(App& app) {
    app.get("/users/:id", [](Context& c) { c.text(c.param("id")); });
    app.post("/items", [](Context& c) { c.status(201).text("made"); });
    app.get("/teapot", [](Context&) { throw HttpError(418, "short and stout"); });
    app.get("/boom", [](Context&) -> Task<> {
        co_await ringwork::io::sleep_for(0ms);
        throw std::runtime_error("boom");
    });
}

} // namespace

TEST_SUITE("web.metrics") {

    TEST_CASE("requests are counted by method and status class, timed per route pattern, never per "
              "raw path") {
        App app;
        mw::Metrics metrics(app);
        add_routes(app);
        app.get("/metrics", metrics.handler());
        TestClient client(app);

        auto first = client.get("/metrics");
        REQUIRE(first.status == 200);
        CHECK(first.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8");
        CHECK(first.header("Cache-Control") == "no-store");
        const Scrape before = parse(first.body);
        CHECK(before.errors.empty());
        CHECK_FALSE(before.has(
            R"(ringwork_requests_total{method="GET",status_class="2xx"})")); // nothing yet

        for (int i = 0; i < 3; ++i) {
            CHECK(client.get("/users/" + std::to_string(i)).status == 200);
        }
        CHECK(client.post("/items", "{}").status == 201);
        CHECK(client.get("/teapot").status == 418);
        CHECK(client.get("/boom").status == 500);
        CHECK(client.get("/no/such/path").status == 404);
        CHECK(client.del("/items").status == 405);

        const auto r = client.get("/metrics");
        REQUIRE(r.status == 200);
        const Scrape s = parse(r.body);
        for (const auto& e : s.errors) {
            FAIL_CHECK(e);
        }
        // 3 users + the first scrape.
        CHECK(s[R"(ringwork_requests_total{method="GET",status_class="2xx"})"] == 4);
        CHECK(s[R"(ringwork_requests_total{method="POST",status_class="2xx"})"] == 1);
        CHECK(s[R"(ringwork_requests_total{method="GET",status_class="4xx"})"] ==
              2); // 418 (HttpError), 404
        CHECK(s[R"(ringwork_requests_total{method="GET",status_class="5xx"})"] ==
              1); // runtime_error
        CHECK(s[R"(ringwork_requests_total{method="DELETE",status_class="4xx"})"] == 1);
        CHECK(s.types.at("ringwork_requests_total") == "counter");
        CHECK(s.types.at("ringwork_request_duration_seconds") == "histogram");

        // The histogram is labelled with the pattern; the raw paths appear nowhere.
        CHECK(s[R"(ringwork_request_duration_seconds_count{route="/users/:id"})"] == 3);
        CHECK(s[R"(ringwork_request_duration_seconds_count{route="/items"})"] ==
              2); // POST 201, DELETE 405
        CHECK(s[R"(ringwork_request_duration_seconds_count{route="/metrics"})"] == 1);
        CHECK(s["ringwork_request_duration_seconds_count{route=\"(unmatched)\"}"] == 1);
        CHECK(r.body.find("/users/0") == std::string::npos);
        CHECK(r.body.find("/users/2") == std::string::npos);
        CHECK(r.body.find("/no/such/path") == std::string::npos);
        const std::vector<double> bounds = mw::MetricsOptions{}.buckets;
        for (const char* route :
             {"/users/:id", "/items", "/teapot", "/boom", "/metrics", "(unmatched)"}) {
            CAPTURE(route);
            check_histogram(s, std::string("route=\"") + route + "\",", bounds);
        }

        // Counters only move forward; the scrape itself is counted by the next one.
        const Scrape again = parse(client.get("/metrics").body);
        CHECK(again[R"(ringwork_requests_total{method="GET",status_class="2xx"})"] == 5);
        CHECK(again[R"(ringwork_request_duration_seconds_count{route="/metrics"})"] == 2);
        CHECK(again[R"(ringwork_request_duration_seconds_sum{route="/users/:id"})"] ==
              s[R"(ringwork_request_duration_seconds_sum{route="/users/:id"})"]);
    }

    TEST_CASE("a request lands in the first bucket whose bound it does not exceed") {
        App app;
        mw::MetricsOptions options;
        options.buckets = {0.01, 100};
        mw::Metrics metrics(app, options);
        app.get("/slow", [](Context& c) -> Task<> {
            co_await ringwork::io::sleep_for(30ms); // never less than 30 ms (the wheel rounds up)
            c.text("done");
        });
        TestClient client(app);
        REQUIRE(client.get("/slow").status == 200);
        const Scrape s = parse(metrics.text());
        CHECK(s.errors.empty());
        CHECK(s[R"(ringwork_request_duration_seconds_bucket{route="/slow",le="0.01"})"] == 0);
        CHECK(s[R"(ringwork_request_duration_seconds_bucket{route="/slow",le="100"})"] == 1);
        CHECK(s[R"(ringwork_request_duration_seconds_bucket{route="/slow",le="+Inf"})"] == 1);
        CHECK(s[R"(ringwork_request_duration_seconds_count{route="/slow"})"] == 1);
        CHECK(s[R"(ringwork_request_duration_seconds_sum{route="/slow"})"] >= 0.03);
    }

    TEST_CASE("built from an App, metrics count from the request's first bytes to its final answer") {
        App app;
        mw::MetricsOptions options;
        options.buckets = {0.01, 100};
        options.process = false;
        mw::Metrics metrics(app, options);
        // No double counting: the App's observer records already.
        CHECK_THROWS_AS((void)metrics.middleware(), std::logic_error);
        app.get("/fast", [](Context& c) { c.text("fast"); });
        app.get("/busy", [](Context& c) {
            // 20 ms of CPU without a suspension: the end of the request is a fresh reading,
            // not the reactor's cached wake-up time.
            const auto until = std::chrono::steady_clock::now() + 20ms;
            while (std::chrono::steady_clock::now() < until) {
            }
            c.text("busy");
        });
        Served served(app, 1);
        const int fd = test::connect_blocking(served.port());
        // The head arrives in two parts 100 ms apart: the duration starts at the first part.
        REQUIRE(test::write_all(fd, "GET /fast HTTP/1.1\r\n"));
        std::this_thread::sleep_for(100ms);
        REQUIRE(test::raw_exchange(fd, "Host: a\r\n\r\n") == 200);
        REQUIRE(test::raw_exchange(fd, "GET /busy HTTP/1.1\r\nHost: a\r\n\r\n") == 200);
        ::close(fd);
        const Scrape s = parse(metrics.text());
        CHECK(s.errors.empty());
        CHECK(s[R"(ringwork_request_duration_seconds_count{route="/fast"})"] == 1);
        CHECK(s[R"(ringwork_request_duration_seconds_bucket{route="/fast",le="0.01"})"] == 0);
        CHECK(s[R"(ringwork_request_duration_seconds_sum{route="/fast"})"] >= 0.05);
        CHECK(s[R"(ringwork_request_duration_seconds_sum{route="/fast"})"] < 100);
        CHECK(s[R"(ringwork_request_duration_seconds_count{route="/busy"})"] == 1);
        CHECK(s[R"(ringwork_request_duration_seconds_bucket{route="/busy",le="0.01"})"] == 0);
        CHECK(s[R"(ringwork_request_duration_seconds_sum{route="/busy"})"] >= 0.019);
        CHECK(s[R"(ringwork_request_duration_seconds_sum{route="/busy"})"] < 100);
        CHECK(s[R"(ringwork_requests_total{method="GET",status_class="2xx"})"] == 2);
    }

    TEST_CASE("pipelined requests are counted one by one: runs of a route, routes alternating past "
              "the 64 entries a pass keeps, and slow handlers within the batch") {
        // The requests of one pass share their start: one pending entry counts a run of the
        // same route, and a route change starts a new entry (flushed early past 64).
        App app;
        mw::MetricsOptions options;
        options.buckets = {0.01, 100};
        options.process = false;
        mw::Metrics metrics(app, options);
        app.get("/a", [](Context& c) { c.text("a"); });
        app.get("/b", [](Context& c) { c.text("b"); });
        app.get("/users/:id", [](Context& c) { c.text(c.param("id")); });
        app.get("/busy", [](Context& c) {
            const auto until = std::chrono::steady_clock::now() + 15ms;
            while (std::chrono::steady_clock::now() < until) {
            }
            c.text("busy");
        });
        Served served(app, 1);
        std::string batch;
        std::map<std::string, int> sent;
        const auto add = [&](const std::string& target, const std::string& route) {
            batch += "GET " + target + " HTTP/1.1\r\nHost: t\r\n\r\n";
            ++sent[route];
        };
        for (int i = 0; i < 40; ++i) {
            add("/a", "/a");
        }
        for (int i = 0; i < 150; ++i) { // every request a new entry
            if (i % 2 == 0) {
                add("/a", "/a");
            } else {
                add("/users/" + std::to_string(i), "/users/:id");
            }
        }
        for (int i = 0; i < 3; ++i) {
            add("/busy", "/busy");
        }
        for (int i = 0; i < 30; ++i) {
            add("/b", "/b");
        }
        batch += "GET /b HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
        ++sent["/b"];
        const int fd = test::connect_blocking(served.port());
        REQUIRE(fd >= 0);
        REQUIRE(test::write_all(fd, batch));
        const std::string answers = test::read_to_eof(fd);
        ::close(fd);
        int total = 0;
        for (const auto& [route, n] : sent) {
            total += n;
        }
        std::size_t ok = 0;
        for (auto at = answers.find("HTTP/1.1 200 OK\r\n"); at != std::string::npos;
             at = answers.find("HTTP/1.1 200 OK\r\n", at + 1)) {
            ++ok;
        }
        REQUIRE(ok == static_cast<std::size_t>(total));

        const Scrape s = parse(metrics.text());
        CHECK(s.errors.empty());
        CHECK(s[R"(ringwork_requests_total{method="GET",status_class="2xx"})"] == total);
        for (const auto& entry : sent) {
            const std::string& route = entry.first;
            CAPTURE(route);
            const std::string key = "{route=\"" + route + "\"}";
            CHECK(s["ringwork_request_duration_seconds_count" + key] == entry.second);
            check_histogram(s, "route=\"" + route + "\",", options.buckets);
        }
        // Each busy request ends at least 15 ms after the batch's first bytes.
        CHECK(s[R"(ringwork_request_duration_seconds_bucket{route="/busy",le="0.01"})"] == 0);
        CHECK(s[R"(ringwork_request_duration_seconds_bucket{route="/busy",le="100"})"] == 3);
        CHECK(s[R"(ringwork_request_duration_seconds_sum{route="/busy"})"] >= 3 * 0.0149);
    }

    TEST_CASE(
        "per_route off: one unlabelled histogram; max_routes bounds the labels with (other)") {
        SUBCASE("per_route off") {
            App app;
            mw::MetricsOptions options;
            options.per_route = false;
            options.process = false;
            mw::Metrics metrics(options);
            // Before any request the one series is there, all zero.
            const Scrape empty = parse(metrics.text());
            CHECK(empty["ringwork_request_duration_seconds_count"] == 0);
            check_histogram(empty, "", options.buckets);
            app.use(metrics.middleware());
            add_routes(app);
            TestClient client(app);
            CHECK(client.get("/users/1").status == 200);
            CHECK(client.post("/items", "{}").status == 201);
            const std::string text = metrics.text();
            const Scrape s = parse(text);
            CHECK(s.errors.empty());
            CHECK(s["ringwork_request_duration_seconds_count"] == 2);
            check_histogram(s, "", options.buckets);
            CHECK(text.find("route=") == std::string::npos);
            CHECK(text.find("process_") == std::string::npos);
            CHECK(text.find("ringwork_connections_open") == std::string::npos); // no server given
        }
        SUBCASE("max_routes") {
            App app;
            mw::MetricsOptions options;
            options.max_routes = 2;
            mw::Metrics metrics(app, options);
            add_routes(app);
            TestClient client(app);
            CHECK(client.get("/users/1").status == 200);
            CHECK(client.post("/items", "{}").status == 201);
            CHECK(client.get("/teapot").status == 418);
            CHECK(client.get("/users/2").status == 200);
            CHECK(client.get("/nowhere").status == 404);
            const Scrape s = parse(metrics.text());
            CHECK(s.errors.empty());
            CHECK(s[R"(ringwork_request_duration_seconds_count{route="/users/:id"})"] == 2);
            CHECK(s[R"(ringwork_request_duration_seconds_count{route="/items"})"] == 1);
            CHECK(s["ringwork_request_duration_seconds_count{route=\"(other)\"}"] == 2);
            CHECK_FALSE(s.has(R"(ringwork_request_duration_seconds_count{route="/teapot"})"));
        }
    }

    TEST_CASE("invalid options are refused") {
        mw::MetricsOptions options;
        options.buckets = {0.1, 0.1};
        CHECK_THROWS_AS(mw::Metrics{options}, std::invalid_argument);
        options.buckets = {-1};
        CHECK_THROWS_AS(mw::Metrics{options}, std::invalid_argument);
        options.buckets = {std::numeric_limits<double>::infinity()};
        CHECK_THROWS_AS(mw::Metrics{options}, std::invalid_argument);
        options.buckets = {};
        options.max_routes = 0;
        CHECK_THROWS_AS(mw::Metrics{options}, std::invalid_argument);
        options.max_routes = 1;
        CHECK_NOTHROW(mw::Metrics{options}); // no bucket but +Inf is allowed
    }

    TEST_CASE(
        "a scrape of a listening app: connections, workers, pools, rings per reactor, process") {
        App app;
        mw::Metrics metrics(app);
        add_routes(app);
        app.get("/metrics", metrics.handler());
        Served served(app, 2);

        std::string head;
        Scrape s;
        // Both reactors join the server's list when they start serving: wait for that, not luck.
        REQUIRE(test::eventually([&] {
            s = parse(http_get(served.port(), "/metrics", &head));
            return s["ringwork_reactors"] == 2;
        }));
        CHECK(head.starts_with("HTTP/1.1 200"));
        for (const auto& e : s.errors) {
            FAIL_CHECK(e);
        }
        CHECK(s["ringwork_connections_open"] >= 1); // the scrape's own
        CHECK(s["ringwork_connections_accepted_total"] >= 1);
        CHECK(s[R"(ringwork_reactor_connections_accepted_total{reactor="0"})"] +
                  s[R"(ringwork_reactor_connections_accepted_total{reactor="1"})"] ==
              s["ringwork_connections_accepted_total"]);
        for (const char* reason : {"concurrency", "per_ip", "emfile"}) {
            CHECK(s[std::string(R"(ringwork_connections_rejected_total{reason=")") + reason +
                    "\"}"] == 0);
        }
        CHECK(s[R"(ringwork_workers{state="busy"})"] >= 1); // the one rendering this scrape
        CHECK(s.has(R"(ringwork_workers{state="ready"})"));
        CHECK(s["ringwork_workers_created_total"] >= 1);
        CHECK(s.has("ringwork_workers_retired_total"));
        for (const char* pool : {"out", "body", "carry"}) {
            CAPTURE(std::string(pool));
            CHECK(s.has(std::string(R"(ringwork_buffer_pool_hits_total{pool=")") + pool + "\"}"));
            CHECK(s.has(std::string(R"(ringwork_buffer_pool_misses_total{pool=")") + pool + "\"}"));
            CHECK(s.has(std::string(R"(ringwork_buffer_pool_idle_bytes{pool=")") + pool + "\"}"));
        }
        // The kernel may have put every connection on one reactor, and an idle reactor's first
        // io_uring_enter is counted when it returns: only the sum is sure to have moved.
        double submissions = 0;
        double enters = 0;
        double completions = 0;
        for (const char* reactor : {"0", "1"}) {
            CAPTURE(std::string(reactor));
            const std::string r = std::string("{reactor=\"") + reactor + "\"}";
            submissions += s["ringwork_io_uring_submissions_total" + r];
            enters += s["ringwork_io_uring_enter_calls_total" + r];
            completions += s["ringwork_io_uring_completions_total" + r];
            CHECK(s["ringwork_io_uring_cq_overflows_total" + r] == 0);
            CHECK(s.has("ringwork_io_uring_buffer_ring_exhausted_total" + r));
            CHECK(s.has("ringwork_io_uring_multishot_rearms_total" + r));
            CHECK(s[std::string(R"(ringwork_io_uring_entries{reactor=")") + reactor +
                    R"(",queue="sq"})"] == 1024);
            const bool epoll = test::epoll_backend();
            CHECK(s[std::string(R"(ringwork_io_uring_entries{reactor=")") + reactor +
                    R"(",queue="cq"})"] >= (epoll ? 0 : 1024));
            CHECK(s[std::string(R"(ringwork_reactor_backend{reactor=")") + reactor + R"(",backend=")" +
                    (epoll ? "epoll" : "io_uring") + R"("})"] == 1);
        }
        CHECK(submissions > 0); // the scrape's reactor accepted it: submit, complete
        CHECK(enters > 0);
        CHECK(completions > 0);
        CHECK(s["process_resident_memory_bytes"] > 0);
        CHECK(s["process_open_fds"] >= 3);
        CHECK(s["process_max_fds"] >= s["process_open_fds"]);
        CHECK(s["process_cpu_seconds_total"] >= 0);
        CHECK(s["process_start_time_seconds"] > 1.5e9);
        CHECK(s.types.at("ringwork_connections_open") == "gauge");
        CHECK(s.types.at("ringwork_connections_rejected_total") == "counter");

        // Serving moves the server's counters (and the ring's) between two scrapes.
        for (int i = 0; i < 5; ++i) {
            CHECK(http_get(served.port(), "/users/" + std::to_string(i)) == std::to_string(i));
        }
        const Scrape t = parse(http_get(served.port(), "/metrics"));
        CHECK(t["ringwork_connections_accepted_total"] >=
              s["ringwork_connections_accepted_total"] + 6);
        CHECK(t["ringwork_server_requests_total"] >= s["ringwork_server_requests_total"] + 6);
        CHECK(t[R"(ringwork_request_duration_seconds_count{route="/users/:id"})"] == 5);
        CHECK(t[R"(ringwork_io_uring_completions_total{reactor="0"})"] +
                  t[R"(ringwork_io_uring_completions_total{reactor="1"})"] >
              s[R"(ringwork_io_uring_completions_total{reactor="0"})"] +
                  s[R"(ringwork_io_uring_completions_total{reactor="1"})"]);
    }

    TEST_CASE("rejected connections are counted by reason") {
        SUBCASE("concurrency") {
            AppOptions options;
            options.server.concurrency = 1;
            App app(options);
            mw::Metrics metrics(app);
            add_routes(app);
            Served served(app, 1);
            const int holder = test::connect_blocking(served.port()); // keeps the one worker
            REQUIRE(test::write_all(holder, "GET /users/1 HTTP/1.1\r\nHost: t\r\n\r\n"));
            char buf[512];
            REQUIRE(::recv(holder, buf, sizeof(buf), 0) > 0);
            std::string head;
            http_get(served.port(), "/users/2", &head);
            CHECK(head.starts_with("HTTP/1.1 503"));
            const Scrape s = parse(metrics.text()); // from this thread: any thread may scrape
            CHECK(s[R"(ringwork_connections_rejected_total{reason="concurrency"})"] == 1);
            CHECK(s[R"(ringwork_connections_rejected_total{reason="per_ip"})"] == 0);
            ::close(holder);
        }
        SUBCASE("per_ip") {
            AppOptions options;
            options.server.max_conns_per_ip = 1;
            App app(options);
            mw::Metrics metrics(app);
            add_routes(app);
            Served served(app, 1);
            const int holder = test::connect_blocking(served.port());
            REQUIRE(test::write_all(holder, "GET /users/1 HTTP/1.1\r\nHost: t\r\n\r\n"));
            char buf[512];
            REQUIRE(::recv(holder, buf, sizeof(buf), 0) > 0);
            std::string head;
            http_get(served.port(), "/users/2", &head);
            CHECK(head.starts_with("HTTP/1.1 429"));
            const Scrape s = parse(metrics.text());
            CHECK(s[R"(ringwork_connections_rejected_total{reason="per_ip"})"] == 1);
            CHECK(s[R"(ringwork_connections_rejected_total{reason="concurrency"})"] == 0);
            ::close(holder);
        }
    }

    TEST_CASE(
        "scrapes from another thread race the reactors safely and never see a counter go back") {
        App app;
        mw::MetricsOptions options;
        options.process = false;
        mw::Metrics metrics(app, options);
        add_routes(app);
        Served served(app, 2);
        constexpr int kClients = 4;
        constexpr int kRequests = 300;
        std::atomic<int> done{0};
        std::atomic<int> ok{0};
        std::vector<std::thread> clients;
        for (int k = 0; k < kClients; ++k) {
            clients.emplace_back([&] {
                const int fd = test::connect_blocking(served.port());
                for (int i = 0; i < kRequests; ++i) {
                    if (!test::write_all(fd, "GET /users/7 HTTP/1.1\r\nHost: t\r\n\r\n")) {
                        break;
                    }
                    // "HTTP/1.1 200 OK" ... "Content-Length: 1\r\n\r\n7": read until the body.
                    std::string got;
                    char buf[1024];
                    while (!got.ends_with("\r\n\r\n7")) {
                        const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
                        if (n <= 0) {
                            break;
                        }
                        got.append(buf, static_cast<std::size_t>(n));
                    }
                    ok += got.ends_with("\r\n\r\n7") ? 1 : 0;
                }
                ::close(fd);
                ++done;
            });
        }
        double last_count = 0;
        double last_accepted = 0;
        double last_sum = 0;
        int scrapes = 0;
        bool monotonic = true;
        while (done.load() < kClients || scrapes < 10) {
            const Scrape s = parse(metrics.text());
            const double count =
                s[R"(ringwork_request_duration_seconds_count{route="/users/:id"})"];
            const double sum = s[R"(ringwork_request_duration_seconds_sum{route="/users/:id"})"];
            const double accepted = s["ringwork_connections_accepted_total"];
            if (s.has(R"(ringwork_request_duration_seconds_count{route="/users/:id"})")) {
                monotonic = monotonic && count >= last_count && sum >= last_sum &&
                            accepted >= last_accepted;
                check_histogram(s, R"(route="/users/:id",)", options.buckets);
                last_count = count;
                last_sum = sum;
                last_accepted = accepted;
            }
            ++scrapes;
        }
        for (auto& t : clients) {
            t.join();
        }
        CHECK(monotonic);
        CHECK(ok.load() == kClients * kRequests);
        // Each request was recorded before its response was sent.
        CHECK(test::eventually([&] {
            return parse(metrics.text())
                       [R"(ringwork_requests_total{method="GET",status_class="2xx"})"] ==
                   kClients * kRequests;
        }));
        MESSAGE(scrapes << " scrapes while serving");
    }

    TEST_CASE("metrics allocate nothing per request (process-wide count)") {
#ifdef TEST_NO_HEAP_COUNTER
        MESSAGE("skipped under ASan/TSan (the sanitizer owns operator new)");
#else
        App app;
        mw::Metrics metrics(app);
        app.get("/plaintext", [](Context& c) { c.text("Hello, World!"); });
        app.get("/users/:id", [](Context& c) { c.text(c.param("id")); });
        app.get("/async/:id", [](Context& c) -> Task<> {
            co_await ringwork::io::sleep_for(0ms);
            c.text(c.param("id"));
        });
        app.get("/metrics", metrics.handler());
        Served served(app, 1);
        const int fd = test::connect_blocking(served.port());
        auto exchange = [fd](std::string_view request) { return test::raw_exchange(fd, request); };
        struct Case {
            const char* name;
            std::string_view request;
            int status;
        };
        const Case cases[] = {
            {"plaintext", "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n", 200},
            {"params", "GET /users/12345 HTTP/1.1\r\nHost: a\r\n\r\n", 200},
            {"async (suspends)", "GET /async/77 HTTP/1.1\r\nHost: a\r\n\r\n", 200},
            {"404", "GET /nothing/here HTTP/1.1\r\nHost: a\r\n\r\n", 404},
            {"405", "DELETE /plaintext HTTP/1.1\r\nHost: a\r\n\r\n", 405},
            {"POST 405", "POST /plaintext HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", 405},
        };
        for (const Case& k : cases) {
            CAPTURE(k.name);
            for (int i = 0; i < 200; ++i) { // warm-up: pools fill, the route is interned
                REQUIRE(exchange(k.request) == k.status);
            }
            const std::size_t before = test::g_heap_allocations.load();
            int ok = 0;
            for (int i = 0; i < 2000; ++i) {
                ok += exchange(k.request) == k.status ? 1 : 0;
            }
            const std::size_t allocations = test::g_heap_allocations.load() - before;
            CHECK(ok == 2000);
            CHECK(allocations == 0);
        }
        // The middleware really ran for all of them.
        const Scrape s = parse(metrics.text());
        CHECK(s[R"(ringwork_request_duration_seconds_count{route="/plaintext"})"] ==
              3 * 2200); // GET, 405 x 2
        CHECK(s[R"(ringwork_request_duration_seconds_count{route="/users/:id"})"] == 2200);
        CHECK(s[R"(ringwork_request_duration_seconds_count{route="/async/:id"})"] == 2200);
        CHECK(s[R"(ringwork_requests_total{method="GET",status_class="2xx"})"] == 6600);
        CHECK(s[R"(ringwork_requests_total{method="GET",status_class="4xx"})"] == 2200);
        CHECK(s[R"(ringwork_requests_total{method="DELETE",status_class="4xx"})"] == 2200);
        CHECK(s[R"(ringwork_requests_total{method="POST",status_class="4xx"})"] == 2200);
        // The counter itself works in this program.
        const std::size_t sanity = test::g_heap_allocations.load();
        void* volatile block = ::operator new(16); // a direct call: never elided
        ::operator delete(block);
        CHECK(test::g_heap_allocations.load() > sanity);
        ::close(fd);
#endif
    }

} // TEST_SUITE
