// SPDX-License-Identifier: MIT
// ringwork-static: serve a folder (ranges, conditional GETs, gzip, optional directory listing).
#include <ringwork/ringwork.hpp>

#include <fmt/format.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

struct Options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 8080;
    unsigned threads = 0;
    std::string root = ".";
    bool listing = false;
    bool gzip = true;
    bool log = false;
    long max_age = -1;
};

void usage() {
    fmt::print("usage: ringwork-static [--root DIR] [--listing] [--no-gzip] [--max-age S] [--log]\n"
               "                       [--host ADDR] [--port N] [--threads N]\n"
               "  --root DIR     folder to serve (default .)\n"
               "  --listing      answer a folder without index.html with an HTML listing\n"
               "  --no-gzip      never compress (default: gzip when the client accepts it)\n"
               "  --max-age S    Cache-Control: public, max-age=S\n"
               "  --log          access log on stdout\n"
               "  --host ADDR    address to listen on (default 127.0.0.1)\n"
               "  --port N       port (default 8080; 0 picks a free one)\n"
               "  --threads N    reactor threads (default 0 = one per CPU)\n");
}

[[noreturn]] void fail(std::string_view message) {
    fmt::print(stderr, "ringwork-static: {}\n", message);
    std::exit(2); // NOLINT(concurrency-mt-unsafe)
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
        auto number = [&](unsigned long max) {
            const std::string_view text = value();
            unsigned long v = 0;
            const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
            if (ec != std::errc{} || end != text.data() + text.size() || v > max) {
                fail(fmt::format("{} expects a number up to {}, got '{}'", arg, max, text));
            }
            return v;
        };
        if (arg == "--help" || arg == "-h") {
            usage();
            std::exit(0); // NOLINT(concurrency-mt-unsafe)
        } else if (arg == "--host") {
            o.host = value();
        } else if (arg == "--port") {
            o.port = static_cast<std::uint16_t>(number(65535));
        } else if (arg == "--threads") {
            o.threads = static_cast<unsigned>(number(1024));
        } else if (arg == "--root") {
            o.root = value();
        } else if (arg == "--listing") {
            o.listing = true;
        } else if (arg == "--no-gzip") {
            o.gzip = false;
        } else if (arg == "--log") {
            o.log = true;
        } else if (arg == "--max-age") {
            o.max_age = static_cast<long>(number(10UL * 365 * 24 * 3600));
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
        if (options.log) {
            app.use(ringwork::mw::logger());
        }
        app.use(ringwork::mw::recover());
        if (options.gzip) {
            app.use(ringwork::mw::compress());
        }
        ringwork::web::StaticOptions so;
        so.listing = options.listing;
        so.fallthrough = false;
        if (options.max_age >= 0) {
            so.max_age = std::chrono::seconds(options.max_age);
        }
        app.use(ringwork::mw::static_files(options.root, so));
        app.listen(address, options.threads, [&](std::uint16_t port) {
            fmt::print("ringwork-static listening on http://{}{}{}:{}/\n", v6 ? "[" : "", options.host,
                       v6 ? "]" : "", port);
            std::fflush(stdout);
        });
        ringwork::mw::flush_access_log();
    } catch (const std::exception& e) {
        fmt::print(stderr, "ringwork-static: {}\n", e.what());
        return 1;
    }
    return 0;
}
