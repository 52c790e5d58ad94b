// SPDX-License-Identifier: MIT
// ringwork-hello: the quick-start server: a few routes showing params, JSON and a timer.
#include <ringwork/ringwork.hpp>

#include "../common/cli.hpp"

#include <fmt/format.h>

#include <cstdlib>
#include <string>
#include <string_view>

namespace {

using namespace std::literals;

/// The routes: plain functions for instant answers, coroutines when they `co_await`.
void routes(ringwork::App& app) {
    app.get("/", [](ringwork::Context& c) { c.text("Hello, World!\n"); });
    app.get("/hello/:name", [](ringwork::Context& c) { c.text(fmt::format("Hello, {}!\n", c.param("name"))); });
    app.get("/json", [](ringwork::Context& c) { c.json({{"message", "Hello, World!"}}); });
    app.get("/users/:id", [](ringwork::Context& c) -> ringwork::Task<> {
        co_await ringwork::sleep_for(5ms); // e.g. a database call: the reactor serves others meanwhile
        c.json({{"id", c.param("id")}, {"name", "user " + std::string(c.param("id"))}});
    });
    app.get("/delay", [](ringwork::Context& c) -> ringwork::Task<> {
        unsigned long wait = 0;
        for (const char ch : c.query_or("ms", "100")) {
            wait = (ch >= '0' && ch <= '9' && wait < 10000) ? wait * 10 + static_cast<unsigned long>(ch - '0') : wait;
        }
        wait = wait > 10000 ? 10000 : wait;
        co_await ringwork::sleep_for(std::chrono::milliseconds(wait)); // a timer, not a blocked thread
        c.text(fmt::format("waited {} ms\n", wait));
    });
}

} // namespace

int main(int argc, char** argv) {
    std::string host = "127.0.0.1";
    std::uint16_t port = 8080;
    unsigned threads = 1;
    bool share_port = false;
    apps::Cli("ringwork-hello", "routes: /  /hello/:name  /json  /users/:id  /delay?ms=N")
        .listen(&host, &port, &threads, &share_port)
        .parse(argc, argv);
    try {
        ringwork::AppOptions app_options;
        app_options.server.share_port = share_port;
        ringwork::App app(std::move(app_options));
        routes(app);
        app.listen(apps::listen_address(host, port), threads,
                   [&](std::uint16_t bound) { apps::print_listening("ringwork-hello", host, bound); });
    } catch (const std::exception& e) {
        fmt::print(stderr, "ringwork-hello: {}\n", e.what());
        return 1;
    }
    return 0;
}
