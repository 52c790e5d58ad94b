// SPDX-License-Identifier: MIT
// ringwork-hello: the quick-start server: a few routes showing params, JSON and a timer.
#include <ringwork/ringwork.hpp>

#include <fmt/format.h>

#include <cstdlib>
#include <string>
#include <string_view>

namespace {

using namespace std::literals;

struct Options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 8080;
    unsigned threads = 1;
};

void usage() {
    fmt::print("usage: ringwork-hello [--host ADDR] [--port N] [--threads N]\n"
               "  --host ADDR    address to listen on (default 127.0.0.1)\n"
               "  --port N       port (default 8080; 0 picks a free one)\n"
               "  --threads N    reactor threads (default 1; 0 = one per CPU)\n"
               "routes: /  /hello/:name  /json  /users/:id  /delay?ms=N\n");
}

[[noreturn]] void fail(std::string_view message) {
    fmt::print(stderr, "ringwork-hello: {}\n", message);
    std::exit(2); // NOLINT(concurrency-mt-unsafe)
}

unsigned long number(std::string_view flag, std::string_view text, unsigned long max) {
    unsigned long v = 0;
    if (text.empty() || text.size() > 10) {
        fail(fmt::format("{} expects a number, got '{}'", flag, text));
    }
    for (const char c : text) {
        if (c < '0' || c > '9') {
            fail(fmt::format("{} expects a number, got '{}'", flag, text));
        }
        v = v * 10 + static_cast<unsigned long>(c - '0');
    }
    if (v > max) {
        fail(fmt::format("{} must be at most {}", flag, max));
    }
    return v;
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i]; // NOLINT
        auto value = [&]() -> std::string_view {
            if (i + 1 >= argc) {
                fail(fmt::format("{} needs a value", arg));
            }
            return argv[++i]; // NOLINT
        };
        if (arg == "--help" || arg == "-h") {
            usage();
            std::exit(0); // NOLINT(concurrency-mt-unsafe)
        } else if (arg == "--host") {
            o.host = value();
        } else if (arg == "--port") {
            o.port = static_cast<std::uint16_t>(number(arg, value(), 65535));
        } else if (arg == "--threads") {
            o.threads = static_cast<unsigned>(number(arg, value(), 1024));
        } else {
            usage();
            fail(fmt::format("unknown option {}", arg));
        }
    }
    return o;
}

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
    const Options options = parse(argc, argv);
    const bool v6 = options.host.find(':') != std::string::npos;
    const std::string address = v6 ? fmt::format("[{}]:{}", options.host, options.port)
                                   : fmt::format("{}:{}", options.host, options.port);
    try {
        ringwork::App app;
        routes(app);
        app.listen(address, options.threads, [&](std::uint16_t port) {
            fmt::print("ringwork-hello listening on http://{}{}{}:{}/\n", v6 ? "[" : "", options.host, v6 ? "]" : "",
                       port);
            std::fflush(stdout);
        });
    } catch (const std::exception& e) {
        fmt::print(stderr, "ringwork-hello: {}\n", e.what());
        return 1;
    }
    return 0;
}
