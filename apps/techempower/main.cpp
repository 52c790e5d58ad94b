// SPDX-License-Identifier: MIT
// ringwork-techempower: the TechEmpower Framework Benchmarks "plaintext" and "json" tests.
//
// Per the TFB rules: every response carries Server and Date headers; /json serializes a new
// object per request (here a pool-allocated ringwork::Json written straight into the response
// buffer: no heap allocation); /plaintext answers "Hello, World!" as text/plain; pipelining is
// supported but not assumed. One reactor per core by default.
#include <ringwork/ringwork.hpp>

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
    apps::Cli("ringwork-techempower", "routes: /plaintext  /json").listen(&host, &port, &threads).parse(argc, argv);
    try {
        ringwork::App app;
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
