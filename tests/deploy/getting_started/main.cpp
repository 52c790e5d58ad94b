// SPDX-License-Identifier: MIT
// main.cpp: a first ringwork app: three routes, an access log and a timer.
#include <ringwork/ringwork.hpp>

#include <fmt/format.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

using namespace std::chrono_literals;

int main() {
    ringwork::App app;
    app.use(ringwork::mw::logger()); // one access-log line per request, on stdout

    // A handler that returns void answers at once.
    app.get("/", [](ringwork::Context& c) { c.text("Hello, World!\n"); });
    // Route parameters arrive percent-decoded.
    app.get("/hello/:name", [](ringwork::Context& c) {
        c.text(fmt::format("Hello, {}!\n", c.param("name")));
    });
    // A handler that returns Task<> may co_await: the thread serves other requests meanwhile.
    app.get("/slow", [](ringwork::Context& c) -> ringwork::Task<> {
        co_await ringwork::sleep_for(50ms);
        c.json({{"waited_ms", 50}});
    });

    // PORT=0 picks a free port. 0 threads: one reactor per CPU. The callback runs once the
    // server accepts connections; listen() returns after SIGINT or SIGTERM.
    const char* port = std::getenv("PORT");
    app.listen(fmt::format("127.0.0.1:{}", port != nullptr ? port : "8080"), 0,
               [](std::uint16_t bound) {
                   fmt::print("listening on http://127.0.0.1:{}/\n", bound);
                   std::fflush(stdout);
               });
}
