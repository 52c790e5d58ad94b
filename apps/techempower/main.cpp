// SPDX-License-Identifier: MIT
// ringwork-techempower: the TechEmpower Framework Benchmarks "plaintext" and "json" tests.
//
// Per the TFB rules: every response carries Server and Date headers; /json serializes a new
// object per request (here a pool-allocated ringwork::Json written straight into the response
// buffer: no heap allocation); /plaintext answers "Hello, World!" as text/plain; pipelining is
// supported but not assumed. One reactor per core by default.
#include <ringwork/ringwork.hpp>

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

struct Options {
    std::string host = "0.0.0.0";
    std::uint16_t port = 8080;
    unsigned threads = 0;
};

void usage() {
    fmt::print("usage: ringwork-techempower [--host ADDR] [--port N] [--threads N]\n"
               "  --host ADDR    address to listen on (default 0.0.0.0)\n"
               "  --port N       port (default 8080; 0 picks a free one)\n"
               "  --threads N    reactor threads (default 0 = one per CPU)\n"
               "routes: /plaintext  /json\n");
}

[[noreturn]] void fail(std::string_view message) {
    fmt::print(stderr, "ringwork-techempower: {}\n", message);
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

} // namespace

int main(int argc, char** argv) {
    const Options options = parse(argc, argv);
    const bool v6 = options.host.find(':') != std::string::npos;
    const std::string address = v6 ? fmt::format("[{}]:{}", options.host, options.port)
                                   : fmt::format("{}:{}", options.host, options.port);
    try {
        ringwork::App app;
        app.get("/plaintext", [](ringwork::Context& c) {
            c.set_header("Content-Type", "text/plain");
            c.response().set_body_static("Hello, World!");
        });
        app.get("/json", [](ringwork::Context& c) { c.json({{"message", "Hello, World!"}}); });
        app.listen(address, options.threads, [&](std::uint16_t port) {
            fmt::print("ringwork-techempower listening on http://{}{}{}:{}/\n", v6 ? "[" : "", options.host,
                       v6 ? "]" : "", port);
            std::fflush(stdout);
        });
    } catch (const std::exception& e) {
        fmt::print(stderr, "ringwork-techempower: {}\n", e.what());
        return 1;
    }
    return 0;
}
