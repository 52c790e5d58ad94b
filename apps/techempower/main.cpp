// SPDX-License-Identifier: MIT
// ringwork-techempower: the TechEmpower Framework Benchmarks "plaintext" and "json" tests.
//
// Per the TFB rules: every response carries Server and Date headers; /json serializes a new
// object per request (here a pool-allocated ringwork::Json written straight into the response
// buffer: no heap allocation); /plaintext answers "Hello, World!" as text/plain; pipelining is
// supported but not assumed. One reactor per core by default. `--metrics` adds the metrics
// observer and GET /metrics (Prometheus, docs/observability.md); off by default, so the
// benchmarked path is the bare one unless asked for.
#include <ringwork/ringwork.hpp>
#include <ringwork/web/metrics.hpp>

#include "../common/cli.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

int main(int argc, char** argv) {
    std::string host = "0.0.0.0";
    std::uint16_t port = 8080;
    unsigned threads = 0;
    bool metrics = false;
    unsigned park_ms = 20; // ServerOptions::idle_park_delay's default
    bool share_port = false;
    apps::Cli("ringwork-techempower", "routes: /plaintext  /json  (/metrics with --metrics)")
        .listen(&host, &port, &threads, &share_port)
        .toggle("--metrics", &metrics, true, "count and time requests, serve GET /metrics (Prometheus)")
        .number("--idle-park-delay-ms", &park_ms, 3600000,
                "park an idle keep-alive connection without a worker after (default 20; 0 = never)")
        .parse(argc, argv);
    try {
        ringwork::AppOptions options;
        options.server.idle_park_delay = std::chrono::milliseconds(park_ms);
        options.server.share_port = share_port;
        ringwork::App app(options);
        if (metrics) {
            const ringwork::web::mw::Metrics m(app); // counts every request the app dispatches
            app.get("/metrics", m.handler());
        }
        app.get("/plaintext", [](ringwork::Context& c) {
            c.set_header("Content-Type", "text/plain");
            c.response().set_body_static("Hello, World!");
        });
        app.get("/json", [](ringwork::Context& c) { c.json({{"message", "Hello, World!"}}); });
        app.listen(apps::listen_address(host, port), threads,
                   [&](std::uint16_t bound) { apps::print_listening("ringwork-techempower", host, bound); });
    } catch (const std::exception& e) {
        fmt::print(stderr, "ringwork-techempower: {}\n", e.what());
        return 1;
    }
    return 0;
}
