// SPDX-License-Identifier: MIT
// ringwork-static: serve a folder (ranges, conditional GETs, gzip, optional directory listing).
#include <ringwork/ringwork.hpp>

#include "../common/cli.hpp"

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
    bool share_port = false;
};

Options parse(int argc, char** argv) {
    Options o;
    apps::Cli("ringwork-static")
        .text("--root", &o.root, "DIR folder to serve (default .)")
        .toggle("--listing", &o.listing, true, "answer a folder without index.html with an HTML listing")
        .toggle("--no-gzip", &o.gzip, false, "never compress (default: gzip when the client accepts it)")
        .number("--max-age", &o.max_age, 10UL * 365 * 24 * 3600, "Cache-Control: public, max-age=N seconds")
        .toggle("--log", &o.log, true, "access log on stdout")
        .listen(&o.host, &o.port, &o.threads, &o.share_port)
        .parse(argc, argv);
    return o;
}

} // namespace

int main(int argc, char** argv) {
    const Options options = parse(argc, argv);
    try {
        ringwork::AppOptions app_options;
        app_options.server.share_port = options.share_port;
        ringwork::App app(std::move(app_options));
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
        app.listen(apps::listen_address(options.host, options.port), options.threads,
                   [&](std::uint16_t bound) { apps::print_listening("ringwork-static", options.host, bound); });
        ringwork::mw::flush_access_log();
    } catch (const std::exception& e) {
        fmt::print(stderr, "ringwork-static: {}\n", e.what());
        return 1;
    }
    return 0;
}
