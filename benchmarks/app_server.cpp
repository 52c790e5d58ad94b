// SPDX-License-Identifier: MIT
// app_server: a ringwork::App answering the plaintext route bare and behind middleware chains
// (benchmarks/middleware_chain.sh drives it).
//
//   GET /plaintext           c.text("Hello, World!"), no middleware
//   GET /mw5/plaintext       the same handler behind 5 pass-through middleware (`co_await next()`)
//   GET /builtin5/plaintext  the same handler behind request_id, logger (to a discarding sink),
//                            recover, cors and etag
//
// Usage: app_server [--port N] [--threads N]
//   127.0.0.1, default port 8081, 1 reactor; stops on SIGINT/SIGTERM (App::listen), then prints
//   how many lines the logger's sink received.
#include <ringwork/ringwork.hpp>

#include <fmt/format.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>

namespace {

struct Options {
    std::uint16_t port = 8081;
    unsigned threads = 1;
};

[[noreturn]] void fail(std::string_view message) {
    fmt::print(stderr, "app_server: {}\n", message);
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
        if (arg == "--port") {
            o.port = static_cast<std::uint16_t>(number(arg, value(), 65535));
        } else if (arg == "--threads") {
            o.threads = static_cast<unsigned>(number(arg, value(), 1024));
        } else {
            fail(
                fmt::format("unknown option {} (usage: app_server [--port N] [--threads N])", arg));
        }
    }
    return o;
}

/// A middleware that does nothing but run the rest of the chain: measures the chain itself
/// (one coroutine frame from the frame pool, one indirect call, one symmetric transfer each).
ringwork::Task<> pass_through(ringwork::Context& /*c*/, ringwork::Next next) {
    co_await next();
}

/// The logger's sink: the line is formatted, then only counted (no I/O). Relaxed atomics so
/// that --threads > 1 stays race-free; uncontended with one reactor.
std::atomic<std::uint64_t> g_log_lines{0};
std::atomic<std::uint64_t> g_log_bytes{0};

void discard_line(std::string_view line) {
    g_log_lines.fetch_add(1, std::memory_order_relaxed);
    g_log_bytes.fetch_add(line.size(), std::memory_order_relaxed);
}

void plaintext(ringwork::Context& c) {
    c.text("Hello, World!");
}

void routes(ringwork::App& app) {
    namespace mw = ringwork::mw;
    app.get("/plaintext", plaintext);
    app.get("/mw5/plaintext", pass_through, pass_through, pass_through, pass_through, pass_through,
            plaintext);
    // The order web/middleware.hpp suggests, outermost first; etag innermost (it hashes the body
    // the handler set). Without an Origin header cors passes through untouched: the benchmark
    // script sends one on every route.
    app.get("/builtin5/plaintext", mw::request_id(),
            mw::logger({.format = mw::LogFormat::common, .sink = discard_line}), mw::recover(),
            mw::cors(), mw::etag(), plaintext);
}

} // namespace

int main(int argc, char** argv) {
    const Options options = parse(argc, argv);
    try {
        ringwork::App app;
        routes(app);
        app.listen(
            fmt::format("127.0.0.1:{}", options.port), options.threads, [&](std::uint16_t port) {
                fmt::print("app_server listening on http://127.0.0.1:{}/ ({} reactor thread{})\n",
                           port, options.threads, options.threads == 1 ? "" : "s");
                std::fflush(stdout);
            });
    } catch (const std::exception& e) {
        fmt::print(stderr, "app_server: {}\n", e.what());
        return 1;
    }
    fmt::print(stderr, "app_server: logger lines={} bytes={}\n", g_log_lines.load(),
               g_log_bytes.load());
    return 0;
}
