// SPDX-License-Identifier: MIT
// An app for production: behind nginx or HAProxy on the same machine, or started by systemd.
#include <ringwork/ringwork.hpp>

#include <fmt/format.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <utility>

int main() {
    ringwork::AppOptions options;
    // The proxy connects from this machine: believe its X-Forwarded-For and X-Real-IP, and
    // nobody else's (a client talking to the app directly cannot choose its own c.ip()).
    options.trusted_proxies = {"127.0.0.1", "::1"};
    // While draining, answers say Connection: close, so the proxy sends nothing more on them.
    options.server.close_on_shutdown = true;
    ringwork::App app(std::move(options));

    app.use(ringwork::mw::logger()); // access log on stdout (journald, docker logs)
    app.get("/healthz", ringwork::mw::health()); // 503 once draining: proxies stop sending
    app.get("/", [](ringwork::Context& c) { c.text("Hello from behind the proxy!\n"); });
    app.get("/whoami", [](ringwork::Context& c) {
        c.json({{"ip", c.ip()},                           // the client, as the proxy saw it
                {"peer", c.remote_address().to_string()}, // the proxy's end of the connection
                {"x_forwarded_for", c.header("X-Forwarded-For")},
                {"x_real_ip", c.header("X-Real-IP")}});
    });

    auto ready = [](std::uint16_t port) {
        fmt::print("listening on port {}\n", port);
        std::fflush(stdout);
    };
    // 0 threads: one reactor per CPU, each with its own SO_REUSEPORT listener.
    if (std::getenv("LISTEN_FDS") != nullptr) { // systemd socket activation
        app.install(app.server());
        app.server().listen_and_serve_fds(ringwork::http::Server::systemd_listen_fds(), 0, ready);
    } else {
        const char* port = std::getenv("PORT"); // PORT=0 picks a free port
        app.listen(fmt::format("127.0.0.1:{}", port != nullptr ? port : "8080"), 0, ready);
    }
}
