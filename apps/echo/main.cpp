// SPDX-License-Identifier: MIT
// ringwork-echo: answers /anything with a JSON echo of the request (httpbin's /anything), every ServerOptions field a flag.
#include <ringwork/http/server.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

using ringwork::http::Exchange;
using ringwork::http::ServerOptions;

struct Options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 8080;
    unsigned threads = 1;
    std::string unix_path; ///< --unix: serve a Unix socket instead of host:port
    bool systemd = false;  ///< --systemd: serve the sockets systemd passed (LISTEN_FDS)
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
        {"--read-buffer-size", "read_buffer_size", "BYTES", "receive buffer size of the reactors (power of two, 256 to 1 MiB)",
         [](const Options& o) { return fmt::format("{}", o.server.read_buffer_size); },
         [](Options& o, std::string_view f, std::string_view v) { o.server.read_buffer_size = static_cast<unsigned>(parse_number(f, v, 0, std::numeric_limits<unsigned>::max())); }},
        {"--ring-entries", "ring_entries", "N", "io_uring submission queue entries per reactor (power of two)",
         [](const Options& o) { return fmt::format("{}", o.server.ring_entries); },
         [](Options& o, std::string_view f, std::string_view v) { o.server.ring_entries = static_cast<unsigned>(parse_number(f, v, 0, std::numeric_limits<unsigned>::max())); }},
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

void usage() {
    const Options defaults;
    fmt::print("usage: ringwork-echo [OPTIONS]\n"
               "Any method on /anything or /anything/... answers a JSON echo of the request;\n"
               "other paths answer 404. SIGINT/SIGTERM stop gracefully.\n\n");
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
        bool has_inline = false;
        if (const auto eq = arg.find('='); eq != std::string_view::npos && arg.starts_with("--")) {
            inline_value = arg.substr(eq + 1);
            arg = arg.substr(0, eq);
            has_inline = true;
        }
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

/// The httpbin-style echo of one request.
void handle(Exchange& x) {
    ringwork::http::Request& req = x.request;
    ringwork::http::Response& resp = x.response;
    const std::string_view path = req.path();
    if (!req.path_valid()) {
        resp.set_status(400);
        resp.set_body("Bad Request: invalid percent-encoding in the path\n");
        return;
    }
    if (path != "/anything" && !path.starts_with("/anything/")) {
        resp.set_status(404);
        resp.set_body("Not Found: try /anything\n");
        return;
    }
    nlohmann::ordered_json j;
    j["method"] = req.method_text();
    j["path"] = path;
    j["raw_path"] = req.raw_target();
    nlohmann::ordered_json query = nlohmann::ordered_json::object();
    req.for_each_query([&query](std::string_view name, std::string_view value) {
        query[std::string(name)].push_back(value);
    });
    j["query"] = std::move(query);
    nlohmann::ordered_json headers = nlohmann::ordered_json::array();
    for (const ringwork::http::Header& h : req.headers()) {
        headers.push_back(nlohmann::ordered_json::array({h.name, h.value}));
    }
    j["headers"] = std::move(headers);
    j["body"] = req.body();
    j["body_length"] = req.body().size();
    resp.set_status(200);
    resp.set_content_type("application/json");
    resp.set_body(j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
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
    try {
        ringwork::http::Server server(options.server);
        server.set_handler(handle);
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
