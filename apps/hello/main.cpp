// SPDX-License-Identifier: MIT
// ringwork-hello: the quick-start server (a few routes on http::Server until the router lands).
#include <ringwork/http/server.hpp>
#include <ringwork/io/timer.hpp>

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
               "routes: /  /hello/NAME  /json  /delay?ms=N\n");
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

/// The routes. A plain coroutine: `co_await` anything, the reactor keeps serving others.
ringwork::runtime::Task<> handle(ringwork::http::Exchange& x) {
    auto& req = x.request;
    auto& res = x.response;
    const std::string_view path = req.path();
    if (path == "/") {
        res.set_body_static("Hello, World!\n");
    } else if (path.starts_with("/hello/") && path.size() > 7) {
        res.set_body(fmt::format("Hello, {}!\n", path.substr(7)));
    } else if (path == "/json") {
        res.set_content_type("application/json");
        res.set_body(R"({"message":"Hello, World!"})");
    } else if (path == "/delay") {
        const auto ms = req.query("ms").value_or("100");
        unsigned long wait = 0;
        for (const char c : ms) {
            wait = (c >= '0' && c <= '9' && wait < 10000) ? wait * 10 + static_cast<unsigned long>(c - '0') : wait;
        }
        wait = wait > 10000 ? 10000 : wait;
        co_await ringwork::io::sleep_for(std::chrono::milliseconds(wait)); // a timer, not a blocked thread
        res.set_body(fmt::format("waited {} ms\n", wait));
    } else {
        res.set_status(404);
        res.set_body("Not Found\n");
    }
}

} // namespace

int main(int argc, char** argv) {
    const Options options = parse(argc, argv);
    const bool v6 = options.host.find(':') != std::string::npos;
    const auto address = ringwork::io::SocketAddress::parse(
        v6 ? fmt::format("[{}]:{}", options.host, options.port) : fmt::format("{}:{}", options.host, options.port));
    if (!address) {
        fail(fmt::format("invalid --host {}", options.host));
    }
    try {
        ringwork::http::Server server;
        server.set_handler([](ringwork::http::Exchange& x) { return handle(x); });
        server.listen_and_serve(*address, options.threads, [&](std::uint16_t port) {
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
