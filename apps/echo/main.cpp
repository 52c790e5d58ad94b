// SPDX-License-Identifier: MIT
// ringwork-echo: an httpbin-style test server on the web layer (ringwork::App), with a
// command-line flag for every ServerOptions field.
//
// Routes (any other path answers 404; `--help` prints the same list):
//   /anything[/...]             any method: a JSON echo of the request (method, path, raw_path,
//                               query, headers, body, body_length)
//   /get /post /put /patch /delete   the same echo, for that one method (others: 405)
//   /status/:code               answers `code` (200 to 599; anything else 400)
//   /delay/:ms                  waits `ms` (at most 10000) on a reactor timer, then the echo
//   /headers                    {"headers": {name: value}} (a repeated name: values joined by ", ")
//   /ip                         {"origin": client address} (see --trusted-proxy)
//   /bytes/:n?seed=S            `n` (at most 100 MiB) pseudo-random bytes, streamed with their
//                               Content-Length: splitmix64 from S (random without), each output
//                               as 8 little-endian bytes
//   /stream/:n                  `n` (at most 100) chunks, one JSON line each: {"id": i, echo...}
//   /gzip                       the echo plus "gzipped": true, always gzip-encoded
//   /redirect/:n                302 to /redirect/n-1, ..., /redirect/1 to /get (n 1 to 100)
//   /cookies                    {"cookies": {name: value}} from the Cookie header(s)
//   /cookies/set?name=value     sets each cookie (Path=/), then 302 to /cookies
//   /cookies/delete?name        expires each cookie, then 302 to /cookies
//   /basic-auth/:user/:pass     200 {"authenticated": true, "user": ...} when the Basic
//                               credentials are user:pass (compared in constant time), else 401
//   /sse?count=N&interval_ms=M  N (1 to 1000, default 10) server-sent events `id: i` /
//                               `data: {"count":i}`, M ms apart (at most 10000, default 1000)
//   /metrics                    Prometheus metrics (text format 0.0.4; docs/observability.md)
// Bad parameters answer 400 with {"error": ..., "status": 400}.
//
// Examples:
//   ringwork-echo --port 8080 --threads 2
//   curl -s 'localhost:8080/anything/x?y=1' -d hello       # the echo
//   curl -sL localhost:8080/redirect/3                      # three redirects, then /get
//   curl -s --compressed localhost:8080/gzip
//   curl -sN 'localhost:8080/sse?count=3&interval_ms=500'  # three events, half a second apart
//   ringwork-echo --unix /tmp/echo.sock                     # curl --unix-socket /tmp/echo.sock ...
//
// Listening: the App's routes are installed on its own http::Server (App::install), which then
// serves TCP (--host/--port), a Unix socket (--unix) or systemd's sockets (--systemd).
#include <ringwork/ringwork.hpp>
#include <ringwork/web/metrics.hpp>

#include "../common/cli.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

using ringwork::Context;
using ringwork::HttpError;
using ringwork::Task;
using ringwork::http::Exchange;
using ringwork::http::ServerOptions;
using OrderedJson = nlohmann::ordered_json;

struct Options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 8080;
    unsigned threads = 1;
    std::string unix_path; ///< --unix: serve a Unix socket instead of host:port
    bool systemd = false;  ///< --systemd: serve the sockets systemd passed (LISTEN_FDS)
    std::vector<std::string> trusted_proxies; ///< --trusted-proxy (AppOptions::trusted_proxies)
    ServerOptions server;
};

[[noreturn]] void fail_usage(std::string_view message) {
    fmt::print(stderr, "ringwork-echo: {}\n(see ringwork-echo --help)\n", message);
    std::exit(2); // NOLINT(concurrency-mt-unsafe)
}

/// An unsigned decimal in [min, max]; exits 2 naming `flag` otherwise.
std::uint64_t parse_number(std::string_view flag, std::string_view text, std::uint64_t min, std::uint64_t max) {
    std::uint64_t v = 0;
    const char* const end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, v);
    if (text.empty() || ec != std::errc{} || ptr != end) {
        fail_usage(fmt::format("invalid value for {}: '{}' (expected a non-negative integer)", flag, text));
    }
    if (v < min || v > max) {
        fail_usage(fmt::format("invalid value for {}: {} (expected {} to {})", flag, v, min, max));
    }
    return v;
}

/// One command-line flag: how it shows in --help and what it sets.
struct Flag {
    std::string_view name;
    std::string_view field;  ///< the ServerOptions field it sets (empty for app flags)
    std::string_view meta;   ///< value placeholder; empty for switches
    std::string_view help;
    std::string (*default_text)(const Options&);
    void (*apply)(Options&, std::string_view flag, std::string_view value);
};

constexpr std::uint64_t kMaxSize = std::numeric_limits<std::size_t>::max();
constexpr std::uint64_t kMaxMs = std::numeric_limits<std::int64_t>::max();

std::string ms_text(std::chrono::milliseconds v) { return fmt::format("{}", v.count()); }
std::string bool_text(bool v) { return v ? "on" : "off"; }
std::chrono::milliseconds parse_ms(std::string_view flag, std::string_view v) {
    return std::chrono::milliseconds(static_cast<std::int64_t>(parse_number(flag, v, 0, kMaxMs)));
}

/// --json-errors: the error_handler.
void json_error(Exchange& x, int status, std::string_view detail) {
    nlohmann::ordered_json j;
    j["status"] = status;
    j["error"] = ringwork::http::reason_phrase(status);
    j["detail"] = detail;
    x.response.set_content_type("application/json");
    x.response.set_body(j.dump());
}

/// --log-conn-state: the conn_state callback.
void log_conn_state(int fd, ringwork::http::ConnState state) {
    fmt::print(stderr, "ringwork-echo: connection fd {} {}\n", fd, ringwork::http::to_string(state));
}

// Captureless lambdas convert to the function pointers in Flag.
const std::vector<Flag>& flags() {
    static const std::vector<Flag> table = {
        {"--host", "", "ADDR", "address to listen on",
         [](const Options& o) { return o.host; },
         [](Options& o, std::string_view, std::string_view v) { o.host = std::string(v); }},
        {"--port", "", "N", "port (0 picks a free one)",
         [](const Options& o) { return fmt::format("{}", o.port); },
         [](Options& o, std::string_view f, std::string_view v) { o.port = static_cast<std::uint16_t>(parse_number(f, v, 0, 65535)); }},
        {"--unix", "", "PATH", "listen on a Unix socket (a stale socket file is replaced; '@name' = abstract) instead of --host/--port",
         [](const Options& o) { return o.unix_path; },
         [](Options& o, std::string_view f, std::string_view v) {
             try {
                 (void)ringwork::io::SocketAddress::unix_path(v);
             } catch (const std::invalid_argument& e) {
                 fail_usage(fmt::format("invalid value for {}: {}", f, e.what()));
             }
             o.unix_path = std::string(v);
         }},
        {"--systemd", "", "", "serve the listening sockets systemd passed (LISTEN_FDS/LISTEN_PID) instead of --host/--port",
         [](const Options& o) { return bool_text(o.systemd); },
         [](Options& o, std::string_view, std::string_view) { o.systemd = true; }},
        {"--trusted-proxy", "", "ADDR", "believe X-Forwarded-For/X-Real-IP (/ip) from this IP or CIDR range (repeatable)",
         [](const Options& o) {
             std::string list;
             for (const std::string& p : o.trusted_proxies) {
                 list += (list.empty() ? "" : ",") + p;
             }
             return list.empty() ? std::string("none") : list;
         },
         [](Options& o, std::string_view, std::string_view v) { o.trusted_proxies.emplace_back(v); }},
        {"--threads", "", "N", "reactor threads (0 = one per CPU)",
         [](const Options& o) { return fmt::format("{}", o.threads); },
         [](Options& o, std::string_view f, std::string_view v) { o.threads = static_cast<unsigned>(parse_number(f, v, 0, 1024)); }},
        {"--name", "name", "TEXT", "Server header value",
         [](const Options& o) { return o.server.name; },
         [](Options& o, std::string_view, std::string_view v) { o.server.name = std::string(v); }},
        {"--concurrency", "concurrency", "N", "max concurrent connections (beyond: 503 and close)",
         [](const Options& o) { return fmt::format("{}", o.server.concurrency); },
         [](Options& o, std::string_view f, std::string_view v) { o.server.concurrency = static_cast<std::size_t>(parse_number(f, v, 1, kMaxSize)); }},
        {"--max-idle-worker-duration-ms", "max_idle_worker_duration", "MS", "retire workers idle longer",
         [](const Options& o) { return ms_text(o.server.max_idle_worker_duration); },
         [](Options& o, std::string_view f, std::string_view v) { o.server.max_idle_worker_duration = parse_ms(f, v); }},
        {"--sleep-when-concurrency-limits-exceeded-ms", "sleep_when_concurrency_limits_exceeded", "MS",
         "pause accepting after a 503 (0 = no pause)",
         [](const Options& o) { return ms_text(o.server.sleep_when_concurrency_limits_exceeded); },
         [](Options& o, std::string_view f, std::string_view v) { o.server.sleep_when_concurrency_limits_exceeded = parse_ms(f, v); }},
        {"--max-conns-per-ip", "max_conns_per_ip", "N", "connections per client IP (0 = unlimited; beyond: 429)",
         [](const Options& o) { return fmt::format("{}", o.server.max_conns_per_ip); },
         [](Options& o, std::string_view f, std::string_view v) { o.server.max_conns_per_ip = static_cast<std::size_t>(parse_number(f, v, 0, kMaxSize)); }},
        {"--no-server-header", "no_default_server_header", "", "send no default Server header",
         [](const Options& o) { return bool_text(o.server.no_default_server_header); },
         [](Options& o, std::string_view, std::string_view) { o.server.no_default_server_header = true; }},
        {"--no-date", "no_default_date", "", "send no Date header",
         [](const Options& o) { return bool_text(o.server.no_default_date); },
         [](Options& o, std::string_view, std::string_view) { o.server.no_default_date = true; }},
        {"--no-default-content-type", "no_default_content_type", "", "no default Content-Type on untyped bodies",
         [](const Options& o) { return bool_text(o.server.no_default_content_type); },
         [](Options& o, std::string_view, std::string_view) { o.server.no_default_content_type = true; }},
        {"--max-body-size", "max_request_body_size", "BYTES", "request body limit (413 above)",
         [](const Options& o) { return fmt::format("{}", o.server.max_request_body_size); },
         [](Options& o, std::string_view f, std::string_view v) { o.server.max_request_body_size = static_cast<std::size_t>(parse_number(f, v, 0, kMaxSize)); }},
        {"--max-request-line", "max_request_line", "BYTES", "request line limit (414 above)",
         [](const Options& o) { return fmt::format("{}", o.server.max_request_line); },
         [](Options& o, std::string_view f, std::string_view v) { o.server.max_request_line = static_cast<std::size_t>(parse_number(f, v, 0, kMaxSize)); }},
        {"--max-header-bytes", "max_header_bytes", "BYTES", "header section limit (431 above)",
         [](const Options& o) { return fmt::format("{}", o.server.max_header_bytes); },
         [](Options& o, std::string_view f, std::string_view v) { o.server.max_header_bytes = static_cast<std::size_t>(parse_number(f, v, 0, kMaxSize)); }},
        {"--max-headers", "max_headers", "N", "header field count limit (431 above)",
         [](const Options& o) { return fmt::format("{}", o.server.max_headers); },
         [](Options& o, std::string_view f, std::string_view v) { o.server.max_headers = static_cast<std::size_t>(parse_number(f, v, 0, kMaxSize)); }},
        {"--write-buffer-size", "write_buffer_size", "BYTES", "pooled output buffer size",
         [](const Options& o) { return fmt::format("{}", o.server.write_buffer_size); },
         [](Options& o, std::string_view f, std::string_view v) { o.server.write_buffer_size = static_cast<std::size_t>(parse_number(f, v, 0, kMaxSize)); }},
        {"--read-timeout-ms", "read_timeout", "MS", "whole request must arrive within (0 = none)",
         [](const Options& o) { return ms_text(o.server.read_timeout); },
         [](Options& o, std::string_view f, std::string_view v) { o.server.read_timeout = parse_ms(f, v); }},
        {"--header-read-timeout-ms", "header_read_timeout", "MS", "request head must arrive within (0 = none)",
         [](const Options& o) { return ms_text(o.server.header_read_timeout); },
         [](Options& o, std::string_view f, std::string_view v) { o.server.header_read_timeout = parse_ms(f, v); }},
        {"--idle-timeout-ms", "idle_timeout", "MS", "keep-alive idle limit (0 = read timeout)",
         [](const Options& o) { return ms_text(o.server.idle_timeout); },
         [](Options& o, std::string_view f, std::string_view v) { o.server.idle_timeout = parse_ms(f, v); }},
        {"--idle-park-delay-ms", "idle_park_delay", "MS", "park an idle keep-alive connection without a worker after (0 = never)",
         [](const Options& o) { return ms_text(o.server.idle_park_delay); },
         [](Options& o, std::string_view f, std::string_view v) { o.server.idle_park_delay = parse_ms(f, v); }},
        {"--write-timeout-ms", "write_timeout", "MS", "a send must complete within (0 = none)",
         [](const Options& o) { return ms_text(o.server.write_timeout); },
         [](Options& o, std::string_view f, std::string_view v) { o.server.write_timeout = parse_ms(f, v); }},
        {"--linger-timeout-ms", "linger_timeout", "MS", "drain time after an error response",
         [](const Options& o) { return ms_text(o.server.linger_timeout); },
         [](Options& o, std::string_view f, std::string_view v) { o.server.linger_timeout = parse_ms(f, v); }},
        {"--disable-keepalive", "disable_keepalive", "", "close every connection after one response",
         [](const Options& o) { return bool_text(o.server.disable_keepalive); },
         [](Options& o, std::string_view, std::string_view) { o.server.disable_keepalive = true; }},
        {"--max-requests-per-conn", "max_requests_per_conn", "N", "requests per connection (0 = unlimited)",
         [](const Options& o) { return fmt::format("{}", o.server.max_requests_per_conn); },
         [](Options& o, std::string_view f, std::string_view v) { o.server.max_requests_per_conn = parse_number(f, v, 0, std::numeric_limits<std::uint64_t>::max()); }},
        {"--get-only", "get_only", "", "answer 405 to every method but GET",
         [](const Options& o) { return bool_text(o.server.get_only); },
         [](Options& o, std::string_view, std::string_view) { o.server.get_only = true; }},
        {"--disable-header-normalizing", "disable_header_names_normalizing", "", "keep header names as received",
         [](const Options& o) { return bool_text(o.server.disable_header_names_normalizing); },
         [](Options& o, std::string_view, std::string_view) { o.server.disable_header_names_normalizing = true; }},
        {"--close-on-shutdown", "close_on_shutdown", "", "in-flight responses get Connection: close on shutdown",
         [](const Options& o) { return bool_text(o.server.close_on_shutdown); },
         [](Options& o, std::string_view, std::string_view) { o.server.close_on_shutdown = true; }},
        {"--shutdown-timeout-ms", "shutdown_timeout", "MS", "grace period of a shutdown; then in-flight requests are cut (0 = none)",
         [](const Options& o) { return ms_text(o.server.shutdown_timeout); },
         [](Options& o, std::string_view f, std::string_view v) { o.server.shutdown_timeout = parse_ms(f, v); }},
        {"--read-buffer-size", "read_buffer_size", "BYTES", "receive buffer size of the reactors (power of two, 256 to 1 MiB)",
         [](const Options& o) { return fmt::format("{}", o.server.read_buffer_size); },
         [](Options& o, std::string_view f, std::string_view v) { o.server.read_buffer_size = static_cast<unsigned>(parse_number(f, v, 0, std::numeric_limits<unsigned>::max())); }},
        {"--ring-entries", "ring_entries", "N", "io_uring submission queue entries per reactor (power of two)",
         [](const Options& o) { return fmt::format("{}", o.server.ring_entries); },
         [](Options& o, std::string_view f, std::string_view v) { o.server.ring_entries = static_cast<unsigned>(parse_number(f, v, 0, std::numeric_limits<unsigned>::max())); }},
        {"--backend", "backend", "NAME", "I/O backend: auto (io_uring, else epoll), io_uring or epoll",
         [](const Options& o) { return std::string(ringwork::io::to_string(o.server.backend)); },
         [](Options& o, std::string_view f, std::string_view v) {
             if (v == "auto" || v == "automatic") {
                 o.server.backend = ringwork::io::Backend::automatic;
             } else if (v == "io_uring") {
                 o.server.backend = ringwork::io::Backend::io_uring;
             } else if (v == "epoll") {
                 o.server.backend = ringwork::io::Backend::epoll;
             } else {
                 fail_usage(fmt::format("invalid value for {}: '{}' (expected auto, io_uring or epoll)", f, v));
             }
         }},
        {"--buffer-count", "buffer_count", "N", "provided receive buffers per reactor (power of two)",
         [](const Options& o) { return fmt::format("{}", o.server.buffer_count); },
         [](Options& o, std::string_view f, std::string_view v) { o.server.buffer_count = static_cast<unsigned>(parse_number(f, v, 0, std::numeric_limits<unsigned>::max())); }},
        {"--tcp-keepalive", "tcp_keepalive", "", "enable TCP keep-alive probes on accepted connections",
         [](const Options& o) { return bool_text(o.server.tcp_keepalive); },
         [](Options& o, std::string_view, std::string_view) { o.server.tcp_keepalive = true; }},
        {"--tcp-keepalive-period-ms", "tcp_keepalive_period", "MS", "TCP keep-alive idle and interval (rounded up to s; 0 = OS default)",
         [](const Options& o) { return ms_text(o.server.tcp_keepalive_period); },
         [](Options& o, std::string_view f, std::string_view v) { o.server.tcp_keepalive_period = parse_ms(f, v); }},
        {"--reduce-memory-usage", "reduce_memory_usage", "", "idle connections hold no buffers; trim pools eagerly",
         [](const Options& o) { return bool_text(o.server.reduce_memory_usage); },
         [](Options& o, std::string_view, std::string_view) { o.server.reduce_memory_usage = true; }},
        {"--share-port", "share_port", "", "join a port another process of this user listens on (restarts)",
         [](const Options& o) { return bool_text(o.server.share_port); },
         [](Options& o, std::string_view, std::string_view) { o.server.share_port = true; }},
        {"--log-all-errors", "log_all_errors", "", "also log resets, broken pipes, unexpected EOF, timeouts",
         [](const Options& o) { return bool_text(o.server.log_all_errors); },
         [](Options& o, std::string_view, std::string_view) { o.server.log_all_errors = true; }},
        {"--secure-error-log-message", "secure_error_log_message", "", "log no request details (target, header values)",
         [](const Options& o) { return bool_text(o.server.secure_error_log_message); },
         [](Options& o, std::string_view, std::string_view) { o.server.secure_error_log_message = true; }},
        {"--expect-limit", "continue_handler", "BYTES", "refuse (417) Expect: 100-continue bodies larger (0 = accept all)",
         [](const Options&) { return std::string("0"); },
         [](Options& o, std::string_view f, std::string_view v) {
             const std::uint64_t limit = parse_number(f, v, 0, std::numeric_limits<std::uint64_t>::max());
             o.server.continue_handler = nullptr;
             if (limit != 0) {
                 o.server.continue_handler = [limit](const ringwork::http::Request& r) {
                     return r.head().content_length > limit ? 417 : 100;
                 };
             }
         }},
        {"--json-errors", "error_handler", "", "answer rejected requests with a JSON body (error_handler)",
         [](const Options& o) { return bool_text(static_cast<bool>(o.server.error_handler)); },
         [](Options& o, std::string_view, std::string_view) { o.server.error_handler = json_error; }},
        {"--log-conn-state", "conn_state", "", "log each connection state change to stderr (conn_state)",
         [](const Options& o) { return bool_text(static_cast<bool>(o.server.conn_state)); },
         [](Options& o, std::string_view, std::string_view) { o.server.conn_state = log_conn_state; }},
    };
    return table;
}

/// One line of the route list in --help.
struct RouteHelp {
    std::string_view pattern;
    std::string_view help;
};

constexpr std::array<RouteHelp, 16> kRoutes = {{
    {"/anything[/...]", "any method: JSON echo of the request (method, path, raw_path, query, headers, body)"},
    {"/get /post /put /patch /delete", "the same echo, for that one method (others: 405)"},
    {"/status/:code", "answers that status (200 to 599)"},
    {"/delay/:ms", "waits ms (at most 10000) on a timer, then the echo"},
    {"/headers", "{\"headers\": {name: value}} of the request"},
    {"/ip", "{\"origin\": client address} (see --trusted-proxy)"},
    {"/bytes/:n?seed=S", "n pseudo-random bytes (at most 104857600; splitmix64 from S, random without)"},
    {"/stream/:n", "n chunks (at most 100), one JSON line each with \"id\""},
    {"/gzip", "the echo, gzip-encoded (Content-Encoding: gzip)"},
    {"/redirect/:n", "302 to /redirect/n-1 ... /get (n from 1 to 100)"},
    {"/cookies", "{\"cookies\": {name: value}} of the request"},
    {"/cookies/set?name=value", "sets the cookies, then 302 to /cookies"},
    {"/cookies/delete?name", "expires the cookies, then 302 to /cookies"},
    {"/basic-auth/:user/:pass", "200 when the Basic credentials are user:pass, else 401"},
    {"/sse?count=N&interval_ms=M", "N server-sent events (1 to 1000, default 10) M ms apart (default 1000)"},
    {"/metrics", "Prometheus metrics of this server (docs/observability.md)"},
}};

void usage() {
    const Options defaults;
    fmt::print("usage: ringwork-echo [OPTIONS]\n"
               "An httpbin-style test server. Routes (other paths answer 404; bad parameters 400):\n");
    for (const RouteHelp& r : kRoutes) {
        fmt::print("  {:<31} {}\n", r.pattern, r.help);
    }
    fmt::print("SIGINT/SIGTERM stop gracefully (a running /sse stream ends at its next pause).\n\n"
               "Options:\n");
    for (const Flag& f : flags()) {
        const std::string left = f.meta.empty() ? std::string(f.name) : fmt::format("{} {}", f.name, f.meta);
        if (left.size() >= 34) {
            fmt::print("  {}\n  {:<34} {} (default {})\n", left, "", f.help, f.default_text(defaults));
        } else {
            fmt::print("  {:<34} {} (default {})\n", left, f.help, f.default_text(defaults));
        }
    }
    fmt::print("  {:<34} show this help\n", "--help");
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i]; // NOLINT
        if (arg == "--help" || arg == "-h") {
            usage();
            std::exit(0); // NOLINT(concurrency-mt-unsafe)
        }
        std::string_view inline_value;
        const bool has_inline = apps::split_inline_value(arg, &inline_value);
        const Flag* flag = nullptr;
        for (const Flag& f : flags()) {
            if (f.name == arg) {
                flag = &f;
            }
        }
        if (flag == nullptr) {
            fail_usage(fmt::format("unknown option {}", arg));
        }
        if (flag->meta.empty()) {
            if (has_inline) {
                fail_usage(fmt::format("{} takes no value", arg));
            }
            flag->apply(o, arg, {});
            continue;
        }
        if (!has_inline) {
            if (i + 1 >= argc) {
                fail_usage(fmt::format("{} needs a value", arg));
            }
            inline_value = argv[++i]; // NOLINT
        }
        flag->apply(o, arg, inline_value);
    }
    // Range checks of the engine, reported with the flag's name.
    try {
        o.server.validate();
    } catch (const std::invalid_argument& e) {
        const std::string_view what = e.what();
        for (const Flag& f : flags()) {
            if (!f.field.empty() && what.find(fmt::format("ServerOptions.{}:", f.field)) != std::string_view::npos) {
                fail_usage(fmt::format("invalid value for {}: {}", f.name, what.substr(what.find(':') + 2)));
            }
        }
        fail_usage(what);
    }
    return o;
}

// --- the routes ------------------------------------------------------------------------------

constexpr std::uint64_t kMaxDelayMs = 10000;
constexpr std::uint64_t kMaxBytes = 100U << 20;
constexpr std::uint64_t kMaxStreamLines = 100;
constexpr std::uint64_t kMaxRedirects = 100;
constexpr std::uint64_t kMaxSseEvents = 1000;
constexpr std::uint64_t kMaxSseIntervalMs = 10000;
constexpr std::size_t kBytesPiece = 64U << 10; ///< /bytes streams in pieces this size (a multiple of 8)

/// `text` as a decimal in [min, max] (digits only: no sign, no spaces); otherwise HttpError 400
/// naming `what`.
std::uint64_t number(std::string_view what, std::string_view text, std::uint64_t min, std::uint64_t max) {
    std::uint64_t v = 0;
    const char* const end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, v);
    if (text.empty() || ec != std::errc{} || ptr != end || v < min || v > max) {
        throw HttpError(400, fmt::format("{} must be an integer from {} to {}", what, min, max));
    }
    return v;
}

/// Serialized without throwing: invalid UTF-8 (request bytes are arbitrary) becomes U+FFFD.
std::string dump(const OrderedJson& j) { return j.dump(-1, ' ', false, OrderedJson::error_handler_t::replace); }

void send_json(Context& c, const OrderedJson& j) { c.json_text(dump(j)); }

/// The echo of the request (httpbin's /anything), appended to `j` in this order: method, path
/// (decoded), raw_path (the target as received), query (name -> every value), headers ([name,
/// value] pairs as received, in order), body, body_length.
void echo_fields(Context& c, OrderedJson& j) {
    ringwork::http::Request& req = c.request();
    j["method"] = req.method_text();
    j["path"] = req.path();
    j["raw_path"] = req.raw_target();
    OrderedJson query = OrderedJson::object();
    req.for_each_query([&query](std::string_view name, std::string_view value) {
        query[std::string(name)].push_back(value);
    });
    j["query"] = std::move(query);
    OrderedJson headers = OrderedJson::array();
    for (const ringwork::http::Header& h : req.headers()) {
        headers.push_back(OrderedJson::array({h.name, h.value}));
    }
    j["headers"] = std::move(headers);
    j["body"] = req.body();
    j["body_length"] = req.body().size();
}

/// /anything[/...], /get, /post, ...: the echo.
void echo(Context& c) {
    OrderedJson j;
    echo_fields(c, j);
    send_json(c, j);
}

/// /status/:code: an empty answer with that status; 3xx redirects to /redirect/1 and 401
/// challenges, as httpbin does. 1xx is refused: an interim status is not a final answer.
void status(Context& c) {
    const auto code = static_cast<int>(number("the status code", c.param("code"), 200, 599));
    c.status(code);
    switch (code) {
    case 301:
    case 302:
    case 303:
    case 305:
    case 307:
    case 308:
        c.set_header("Location", "/redirect/1");
        break;
    case 401:
        c.set_header("WWW-Authenticate", R"(Basic realm="Fake Realm")");
        break;
    default:
        break;
    }
}

/// /delay/:ms: a timer, never a blocked reactor, then the echo.
Task<> delay(Context& c) {
    const std::uint64_t ms = number("the delay (ms)", c.param("ms"), 0, kMaxDelayMs);
    bool cancelled = false;
    try {
        auto nap = ringwork::sleep_for(std::chrono::milliseconds(ms));
        co_await nap;
    } catch (const ringwork::runtime::OperationCancelled&) {
        cancelled = true; // the client went away
    }
    if (cancelled) {
        throw HttpError(503, "the delay was cancelled"); // an answer nobody reads; not a logged failure
    }
    echo(c);
}

/// /headers: {"headers": {name: value}}; a repeated name gets its values joined by ", ".
void headers(Context& c) {
    OrderedJson map = OrderedJson::object();
    for (const ringwork::http::Header& h : c.request().headers()) {
        const std::string name(h.name);
        const auto it = map.find(name);
        if (it == map.end()) {
            map[name] = h.value;
        } else {
            std::string joined = it->get<std::string>();
            joined.append(", ").append(h.value);
            *it = std::move(joined);
        }
    }
    OrderedJson j;
    j["headers"] = std::move(map);
    send_json(c, j);
}

/// /ip: {"origin": ...} (Context::ip(): the peer, or what a trusted proxy says).
void ip(Context& c) {
    OrderedJson j;
    j["origin"] = c.ip();
    send_json(c, j);
}

/// splitmix64: the /bytes generator (also reimplemented by the integration test).
std::uint64_t splitmix64(std::uint64_t& state) noexcept {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30U)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27U)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31U);
}

/// A seed for /bytes without ?seed=: this thread's splitmix64 stream, seeded once.
std::uint64_t random_seed() {
    thread_local std::uint64_t state = [] {
        std::random_device device;
        return (static_cast<std::uint64_t>(device()) << 32U) ^ device();
    }();
    return splitmix64(state);
}

/// /bytes/:n?seed=S: n bytes of splitmix64(S) output, each value as 8 little-endian bytes,
/// streamed with their Content-Length in kBytesPiece pieces (memory stays at one piece and the
/// reactor serves others between them).
Task<> bytes(Context& c) {
    const std::uint64_t n = number("the byte count", c.param("n"), 0, kMaxBytes);
    const std::optional<std::string_view> seed = c.query("seed");
    std::uint64_t state = seed ? number("seed", *seed, 0, std::numeric_limits<std::uint64_t>::max()) : random_seed();
    c.set_header("Content-Type", "application/octet-stream");
    c.set_header("Content-Length", std::to_string(n));
    if (n == 0 || c.method() == ringwork::http::Method::head) {
        auto head = c.write({}); // the head alone
        (void)co_await head;
        co_return;
    }
    std::string piece;
    for (std::uint64_t left = n; left > 0;) {
        const auto size = static_cast<std::size_t>(std::min<std::uint64_t>(left, kBytesPiece));
        piece.resize(size);
        for (std::size_t i = 0; i < size; i += 8) {
            std::uint64_t v = splitmix64(state);
            for (std::size_t k = i; k < i + 8 && k < size; ++k, v >>= 8U) {
                piece[k] = static_cast<char>(v & 0xFFU);
            }
        }
        auto sent = c.write(piece);
        if (!co_await sent) {
            co_return; // the client is gone
        }
        left -= size;
    }
}

/// /stream/:n: n chunks (Transfer-Encoding: chunked), one JSON line each: {"id": i, echo...}.
Task<> stream(Context& c) {
    const std::uint64_t n = number("the line count", c.param("n"), 0, kMaxStreamLines);
    c.set_header("Content-Type", "application/json");
    for (std::uint64_t i = 0; i < n; ++i) {
        OrderedJson j;
        j["id"] = i;
        echo_fields(c, j);
        const std::string line = dump(j) + "\n";
        auto sent = c.write(line);
        if (!co_await sent) {
            co_return;
        }
    }
}

/// /gzip: the echo plus "gzipped": true, gzip-encoded whatever Accept-Encoding says (httpbin
/// does the same; mw::compress() would skip a client that does not ask, or a body gzip does
/// not shrink). Same engine as mw::compress(): this thread's reused z_stream.
void gzip(Context& c) {
    OrderedJson j;
    echo_fields(c, j);
    j["gzipped"] = true;
    std::string packed;
    ringwork::web::gzip_compress(dump(j), 6, packed);
    c.set_header("Content-Type", "application/json");
    c.set_header("Content-Encoding", "gzip");
    c.response().set_body(packed);
}

/// /redirect/:n: 302 to /redirect/n-1; /redirect/1 goes to /get.
void redirect(Context& c) {
    const std::uint64_t n = number("the redirect count", c.param("n"), 1, kMaxRedirects);
    c.redirect(n == 1 ? std::string("/get") : fmt::format("/redirect/{}", n - 1), 302);
}

/// /cookies: {"cookies": {name: value}} from every Cookie header (the first of a repeated name).
void cookies(Context& c) {
    OrderedJson jar = OrderedJson::object();
    for (const ringwork::http::Header& h : c.request().headers()) {
        if (!ringwork::http::iequals(h.name, "Cookie")) {
            continue;
        }
        ringwork::web::for_each_cookie(h.value, [&jar](std::string_view name, std::string_view value) {
            const std::string key(name);
            if (!jar.contains(key)) {
                jar[key] = value;
            }
        });
    }
    OrderedJson j;
    j["cookies"] = std::move(jar);
    send_json(c, j);
}

/// /cookies/set?name=value&...: a Set-Cookie (Path=/) per query argument, then 302 to /cookies.
void cookies_set(Context& c) {
    try {
        c.request().for_each_query([&c](std::string_view name, std::string_view value) {
            c.set_cookie(ringwork::Cookie{.name = name, .value = value, .path = "/"});
        });
    } catch (const std::invalid_argument& e) {
        throw HttpError(400, e.what()); // not a token, or a value outside cookie-octet
    }
    c.redirect("/cookies", 302);
}

/// /cookies/delete?name&...: expires each named cookie (Max-Age=0 and a past Expires for old
/// clients), then 302 to /cookies.
void cookies_delete(Context& c) {
    try {
        c.request().for_each_query([&c](std::string_view name, std::string_view) {
            c.set_cookie(ringwork::Cookie{.name = name,
                                          .value = {},
                                          .path = "/",
                                          .domain = {},
                                          .max_age = std::chrono::seconds(0),
                                          .expires = std::chrono::system_clock::time_point{}});
        });
    } catch (const std::invalid_argument& e) {
        throw HttpError(400, e.what());
    }
    c.redirect("/cookies", 302);
}

/// Whether `given` equals `expected`, in a time that depends on the length of `expected` only.
bool constant_time_equals(std::string_view given, std::string_view expected) noexcept {
    unsigned diff = given.size() == expected.size() ? 0U : 1U;
    for (std::size_t i = 0; i < expected.size(); ++i) {
        const char g = i < given.size() ? given[i] : '\0';
        diff |= static_cast<unsigned>(static_cast<unsigned char>(g) ^ static_cast<unsigned char>(expected[i]));
    }
    return diff == 0;
}

/// Standard base64 (padding optional); nullopt when `in` is not base64.
std::optional<std::string> base64_decode(std::string_view in) {
    while (!in.empty() && in.back() == '=') {
        in.remove_suffix(1);
    }
    std::string out;
    out.reserve(in.size() / 4 * 3 + 3);
    std::uint32_t acc = 0;
    unsigned bits = 0;
    for (const char ch : in) {
        std::uint32_t v = 0;
        if (ch >= 'A' && ch <= 'Z') {
            v = static_cast<std::uint32_t>(ch - 'A');
        } else if (ch >= 'a' && ch <= 'z') {
            v = static_cast<std::uint32_t>(ch - 'a' + 26);
        } else if (ch >= '0' && ch <= '9') {
            v = static_cast<std::uint32_t>(ch - '0' + 52);
        } else if (ch == '+' || ch == '/') {
            v = ch == '+' ? 62U : 63U;
        } else {
            return std::nullopt;
        }
        acc = ((acc << 6U) | v) & 0xFFFFFFU;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xFFU));
        }
    }
    if (bits >= 6) {
        return std::nullopt; // a lone trailing sextet
    }
    return out;
}

/// Whether an Authorization header carries Basic credentials equal to `expected` ("user:pass").
bool basic_credentials_match(std::string_view header, std::string_view expected) {
    while (!header.empty() && (header.front() == ' ' || header.front() == '\t')) {
        header.remove_prefix(1);
    }
    while (!header.empty() && (header.back() == ' ' || header.back() == '\t')) {
        header.remove_suffix(1);
    }
    if (header.size() < 6 || !ringwork::http::iequals(header.substr(0, 6), "Basic ")) {
        return false;
    }
    std::string_view encoded = header.substr(6);
    while (!encoded.empty() && encoded.front() == ' ') {
        encoded.remove_prefix(1);
    }
    const std::optional<std::string> credentials = base64_decode(encoded);
    return credentials && constant_time_equals(*credentials, expected);
}

/// /basic-auth/:user/:pass: the credentials come from the path, so the handler compares them
/// itself (mw::basic_auth checks a fixed user table). 401 with a challenge otherwise.
void basic_auth(Context& c) {
    const std::string_view user = c.param("user");
    const std::string expected = fmt::format("{}:{}", user, c.param("pass"));
    if (!basic_credentials_match(c.header("Authorization"), expected)) {
        c.status(401);
        c.set_header("WWW-Authenticate", R"(Basic realm="Fake Realm", charset="UTF-8")");
        c.json_text(R"({"authenticated":false})");
        return;
    }
    OrderedJson j;
    j["authenticated"] = true;
    j["user"] = user;
    send_json(c, j);
}

/// /sse?count=N&interval_ms=M: N events `id: i` / `data: {"count":i}` (i from 1), M ms apart,
/// then the stream ends. It also ends early when the client goes or the server stops.
Task<> sse(Context& c) {
    const std::uint64_t count = number("count", c.query_or("count", "10"), 1, kMaxSseEvents);
    const std::uint64_t interval = number("interval_ms", c.query_or("interval_ms", "1000"), 0, kMaxSseIntervalMs);
    const bool head = c.method() == ringwork::http::Method::head;
    for (std::uint64_t i = 1; i <= count; ++i) {
        const std::string id = std::to_string(i);
        const std::string data = fmt::format(R"({{"count":{}}})", i);
        auto sent = c.sse({.data = data, .event = {}, .id = id});
        if (!co_await sent) {
            co_return;
        }
        if (i < count && !head) {
            // False at once when a graceful shutdown begins; a client gone throws (and ends us).
            auto waited = c.sleep_for(std::chrono::milliseconds(interval));
            if (!co_await waited) {
                co_return;
            }
        }
    }
}

void not_found(Context& c) {
    c.status(404);
    c.text("Not Found: try /anything (ringwork-echo --help lists the routes)\n");
}

void routes(ringwork::App& app) {
    // Every request the app dispatches is counted and timed (the app's observer and the
    // handler share the metrics object's state, so it need not outlive this function).
    const ringwork::web::mw::Metrics metrics(app);
    app.get("/metrics", metrics.handler());
    app.any("/anything", echo);
    app.any("/anything/*rest", echo);
    app.get("/get", echo);
    app.post("/post", echo);
    app.put("/put", echo);
    app.patch("/patch", echo);
    app.del("/delete", echo);
    app.any("/status/:code", status);
    app.any("/delay/:ms", delay);
    app.get("/headers", headers);
    app.get("/ip", ip);
    app.get("/bytes/:n", bytes);
    app.get("/stream/:n", stream);
    app.get("/gzip", gzip);
    app.get("/redirect/:n", redirect);
    app.get("/cookies", cookies);
    app.get("/cookies/set", cookies_set);
    app.get("/cookies/delete", cookies_delete);
    app.get("/basic-auth/:user/:pass", basic_auth);
    app.get("/sse", sse);
    app.not_found(not_found);
}

/// The App over the parsed options; a bad --trusted-proxy exits 2 naming the flag.
std::unique_ptr<ringwork::App> make_app(const Options& options) {
    ringwork::AppOptions app_options;
    app_options.server = options.server;
    app_options.trusted_proxies = options.trusted_proxies;
    try {
        return std::make_unique<ringwork::App>(std::move(app_options));
    } catch (const std::invalid_argument& e) {
        const std::string_view what = e.what();
        if (what.find("trusted_proxies") != std::string_view::npos) {
            fail_usage(fmt::format("invalid value for --trusted-proxy: {}", what));
        }
        fail_usage(what);
    }
}

} // namespace

int main(int argc, char** argv) {
    const Options options = parse(argc, argv);
    const bool v6 = options.host.find(':') != std::string::npos;
    const std::string host = v6 ? fmt::format("[{}]", options.host) : options.host;
    auto address = ringwork::io::SocketAddress::parse(fmt::format("{}:{}", host, options.port));
    if (!address) {
        fail_usage(fmt::format("invalid value for --host: '{}'", options.host));
    }
    const std::unique_ptr<ringwork::App> app = make_app(options);
    try {
        routes(*app);
        // The App's own server (built from options.server) serves it: every ServerOptions flag
        // applies, and Server::listen_and_serve_fds / unix sockets stay available.
        ringwork::http::Server& server = app->server();
        app->install(server);
        if (options.systemd) {
            std::vector<int> fds = ringwork::http::Server::systemd_listen_fds();
            const std::size_t count = fds.size();
            server.listen_and_serve_fds(std::move(fds), options.threads, [count](std::uint16_t) {
                fmt::print("ringwork-echo serving {} socket(s) from systemd\n", count);
                std::fflush(stdout);
            });
        } else if (!options.unix_path.empty()) {
            const auto where = ringwork::io::SocketAddress::unix_path(options.unix_path);
            server.listen_and_serve(where, options.threads, [&where](std::uint16_t) {
                fmt::print("ringwork-echo listening on {}\n", where.to_string());
                std::fflush(stdout);
            });
        } else {
            server.listen_and_serve(*address, options.threads, [&host](std::uint16_t port) {
                fmt::print("ringwork-echo listening on http://{}:{}/\n", host, port);
                std::fflush(stdout);
            });
        }
    } catch (const std::exception& e) {
        fmt::print(stderr, "ringwork-echo: {}\n", e.what());
        return 1;
    }
    return 0;
}
