// SPDX-License-Identifier: MIT
// Built-in middleware: access log, recover, request id, CORS, body limit, basic auth, rate
// limit, timeout, and the readiness handler.
#include <ringwork/http/request.hpp>
#include <ringwork/io/error.hpp>
#include <ringwork/io/operation.hpp>
#include <ringwork/io/reactor.hpp>
#include <ringwork/io/timer.hpp>
#include <ringwork/runtime/stop_token.hpp>
#include <ringwork/runtime/when.hpp>
#include <ringwork/web/app.hpp>
#include <ringwork/web/error.hpp>
#include <ringwork/web/form.hpp>
#include <ringwork/web/middleware.hpp>

#include "http/fields.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <exception>
#include <limits>
#include <mutex>
#include <random>
#include <stdexcept>
#include <utility>

namespace ringwork::web::mw {

namespace {

using SteadyClock = std::chrono::steady_clock;

using web::detail::trim_ows;

std::string join(const std::vector<std::string>& items) {
    std::string out;
    for (const std::string& item : items) {
        if (!out.empty()) {
            out += ", ";
        }
        out += item;
    }
    return out;
}

/// Where messages of the server go when a middleware has no sink of its own.
void log_to_server(Context& c, std::string_view line) noexcept {
    try {
        const auto& logger = c.app().options().server.logger;
        if (logger) {
            logger(line);
            return;
        }
    } catch (...) { // a failing logger must not fail the request: fall back to stderr
    }
    std::fprintf(stderr, "ringwork: %.*s\n", static_cast<int>(line.size()), line.data());
}

/// Runs the rest of the chain. A named local binds the awaiter, which owns a Task: no
/// temporary with a destructor inside the co_await (GCC PR 100611).
runtime::Task<> run_rest(Next next) {
    auto rest = next();
    co_await rest;
}

// --- access log formatting ------------------------------------------------------------------

constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/// Formatted wall-clock time, refreshed once per second per thread.
struct TimeCache {
    std::int64_t second = std::numeric_limits<std::int64_t>::min();
    std::array<char, 40> clf{};
    std::size_t clf_size = 0;
    std::array<char, 40> iso{};
    std::size_t iso_size = 0;

    void refresh(std::int64_t now_s) {
        if (now_s == second) {
            return;
        }
        second = now_s;
        const auto t = static_cast<std::time_t>(now_s);
        std::tm tm{};
        ::gmtime_r(&t, &tm);
        const auto month = kMonths.at(static_cast<std::size_t>(tm.tm_mon) % kMonths.size());
        clf_size =
            fmt::format_to_n(clf.data(), clf.size(), "{:02}/{}/{:04}:{:02}:{:02}:{:02} +0000",
                             tm.tm_mday, month, tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec)
                .size;
        iso_size = fmt::format_to_n(iso.data(), iso.size(), "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                                    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                                    tm.tm_min, tm.tm_sec)
                       .size;
    }
};

/// Apache's log escaping: `"` and `\` backslash-escaped, other bytes outside 0x20-0x7E as \xhh.
void append_escaped(fmt::memory_buffer& out, std::string_view s) {
    for (const char ch : s) {
        const auto b = static_cast<unsigned char>(ch);
        if (ch == '"' || ch == '\\') {
            out.push_back('\\');
            out.push_back(ch);
        } else if (b < 0x20 || b > 0x7E) {
            fmt::format_to(std::back_inserter(out), "\\x{:02x}", b);
        } else {
            out.push_back(ch);
        }
    }
}

void append_field(fmt::memory_buffer& out, std::string_view s) {
    if (s.empty()) {
        out.push_back('-');
    } else {
        append_escaped(out, s);
    }
}

/// Length of the valid UTF-8 sequence at the start of `s`, or 0 when it is not one.
std::size_t utf8_sequence(std::string_view s) noexcept {
    const auto b0 = static_cast<unsigned char>(s[0]);
    std::size_t n = 0;
    unsigned lo = 0x80;
    unsigned hi = 0xBF;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        n = 2;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        n = 3;
        lo = b0 == 0xE0 ? 0xA0 : 0x80;
        hi = b0 == 0xED ? 0x9F : 0xBF;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        n = 4;
        lo = b0 == 0xF0 ? 0x90 : 0x80;
        hi = b0 == 0xF4 ? 0x8F : 0xBF;
    } else {
        return 0;
    }
    if (s.size() < n) {
        return 0;
    }
    for (std::size_t i = 1; i < n; ++i) {
        const auto b = static_cast<unsigned char>(s[i]);
        if (b < (i == 1 ? lo : 0x80) || b > (i == 1 ? hi : 0xBF)) {
            return 0;
        }
    }
    return n;
}

/// A JSON string literal; invalid UTF-8 becomes U+FFFD, as Context::json does.
void append_json_string(fmt::memory_buffer& out, std::string_view s) {
    out.push_back('"');
    while (!s.empty()) {
        const auto b = static_cast<unsigned char>(s[0]);
        if (b >= 0x80) {
            const std::size_t n = utf8_sequence(s);
            if (n == 0) {
                out.append(std::string_view("\\ufffd"));
                s.remove_prefix(1);
            } else {
                out.append(s.substr(0, n));
                s.remove_prefix(n);
            }
            continue;
        }
        switch (s[0]) {
        case '"':
            out.append(std::string_view("\\\""));
            break;
        case '\\':
            out.append(std::string_view("\\\\"));
            break;
        case '\n':
            out.append(std::string_view("\\n"));
            break;
        case '\r':
            out.append(std::string_view("\\r"));
            break;
        case '\t':
            out.append(std::string_view("\\t"));
            break;
        default:
            if (b < 0x20 || b == 0x7F) {
                fmt::format_to(std::back_inserter(out), "\\u{:04x}", b);
            } else {
                out.push_back(s[0]);
            }
        }
        s.remove_prefix(1);
    }
    out.push_back('"');
}

/// A logfmt value: bare when it is a plain token, else quoted with the JSON string escapes
/// (logfmt readers accept them; invalid UTF-8 becomes U+FFFD as in the JSON format).
void append_logfmt_value(fmt::memory_buffer& out, std::string_view s) {
    const bool bare = !s.empty() && std::none_of(s.begin(), s.end(), [](char ch) {
        const auto b = static_cast<unsigned char>(ch);
        return b <= 0x20 || b >= 0x7F || ch == '=' || ch == '"' || ch == '\\';
    });
    if (bare) {
        out.append(s);
    } else {
        append_json_string(out, s);
    }
}

/// The built-in sink: a per-thread buffer written just before the reactor's next submission
/// (io::Reactor::defer), so the lines of one loop pass cost one fwrite.
class StdoutLog final : public io::Deferred {
public:
    static constexpr std::size_t kFlushAt = 64 * 1024;

    StdoutLog() noexcept
        : io::Deferred(&run) {}
    StdoutLog(const StdoutLog&) = delete;
    StdoutLog& operator=(const StdoutLog&) = delete;
    ~StdoutLog() {
        if (queued_ && reactor_ != nullptr && io::Reactor::current() == reactor_) {
            reactor_->cancel_deferred(this);
        }
        flush();
    }

    void write(std::string_view line) {
        buffer_.append(line);
        buffer_.push_back('\n');
        if (buffer_.size() >= kFlushAt) {
            flush();
            return;
        }
        io::Reactor* reactor = io::Reactor::current();
        if (queued_) {
            if (reactor != reactor_) {
                // Queued on a reactor that no longer runs this thread (destroyed without a
                // final pass, or nested under another): never relink, write through instead.
                flush();
            }
            return;
        }
        if (reactor == nullptr) {
            flush();
            return;
        }
        reactor_ = reactor;
        reactor->defer(this);
    }

    void flush() noexcept {
        if (buffer_.size() == 0) {
            return;
        }
        std::fwrite(buffer_.data(), 1, buffer_.size(), stdout);
        std::fflush(stdout);
        buffer_.clear();
    }

private:
    static void run(io::Deferred* self) noexcept { static_cast<StdoutLog*>(self)->flush(); }
    fmt::memory_buffer buffer_;
    io::Reactor* reactor_ = nullptr;
};

StdoutLog& stdout_log() {
    thread_local StdoutLog log;
    return log;
}

} // namespace

Logger logger(LoggerOptions options) {
    return Logger(std::move(options));
}

void flush_access_log() noexcept {
    stdout_log().flush();
}

runtime::Task<> Logger::operator()(Context& c, Next next) const {
    const auto start = SteadyClock::now();
    std::exception_ptr error;
    try {
        auto rest = next();
        co_await rest;
    } catch (...) {
        error = std::current_exception();
    }
    if (!error) {
        emit(c, c.status(), start);
        co_return;
    }
    emit(c, error_status(error), start); // what the boundary will answer
    std::rethrow_exception(error);
}

void Logger::emit(Context& c, int status, SteadyClock::time_point start) const {
    const auto end = SteadyClock::now();
    try {
        thread_local fmt::memory_buffer line;
        thread_local TimeCache time;
        line.clear();
        const auto wall = std::chrono::system_clock::now().time_since_epoch();
        const auto wall_ms = std::chrono::duration_cast<std::chrono::milliseconds>(wall).count();
        time.refresh(wall_ms / 1000);
        const std::size_t bytes = c.response().body().size();
        const std::string_view ip = c.ip();
        auto out = std::back_inserter(line);
        if (options_.format == LogFormat::json) {
            const auto us =
                std::chrono::duration_cast<std::chrono::microseconds>(end - start).count();
            line.append(std::string_view(R"({"time":")"));
            line.append(std::string_view(time.iso.data(), time.iso_size));
            fmt::format_to(out, ".{:03}Z\",\"remote_ip\":", wall_ms % 1000);
            append_json_string(line, ip);
            line.append(std::string_view(R"(,"method":)"));
            append_json_string(line, c.method_text());
            line.append(std::string_view(R"(,"target":)"));
            append_json_string(line, c.raw_target());
            fmt::format_to(out, R"(,"status":{},"bytes":{},"duration_us":{})", status, bytes, us);
            if (const std::string_view id = request_id_of(c); !id.empty()) {
                line.append(std::string_view(R"(,"request_id":)"));
                append_json_string(line, id);
            }
            if (!c.route().empty()) {
                line.append(std::string_view(R"(,"route":)"));
                append_json_string(line, c.route());
            }
            const std::string_view user = auth_user_of(c);
            if (!user.empty()) {
                line.append(std::string_view(R"(,"user":)"));
                append_json_string(line, user);
            }
            line.push_back('}');
        } else if (options_.format == LogFormat::logfmt) {
            const auto us =
                std::chrono::duration_cast<std::chrono::microseconds>(end - start).count();
            line.append(std::string_view("time="));
            line.append(std::string_view(time.iso.data(), time.iso_size));
            fmt::format_to(out, ".{:03}Z remote_ip=", wall_ms % 1000);
            append_logfmt_value(line, ip);
            line.append(std::string_view(" method="));
            append_logfmt_value(line, c.method_text());
            line.append(std::string_view(" target="));
            append_logfmt_value(line, c.raw_target());
            fmt::format_to(out, " status={} bytes={} duration_us={}", status, bytes, us);
            if (const std::string_view id = request_id_of(c); !id.empty()) {
                line.append(std::string_view(" request_id="));
                append_logfmt_value(line, id);
            }
            if (!c.route().empty()) {
                line.append(std::string_view(" route="));
                append_logfmt_value(line, c.route());
            }
            if (const std::string_view user = auth_user_of(c); !user.empty()) {
                line.append(std::string_view(" user="));
                append_logfmt_value(line, user);
            }
        } else {
            append_field(line, ip);
            line.append(std::string_view(" - "));
            append_field(line, auth_user_of(c));
            line.append(std::string_view(" ["));
            line.append(std::string_view(time.clf.data(), time.clf_size));
            line.append(std::string_view("] \""));
            append_escaped(line, c.method_text());
            line.push_back(' ');
            append_escaped(line, c.raw_target());
            fmt::format_to(out, " HTTP/1.{}\" {} ", c.request().version_minor(), status);
            if (bytes == 0) {
                line.push_back('-');
            } else {
                fmt::format_to(out, "{}", bytes);
            }
            if (options_.format == LogFormat::combined) {
                line.append(std::string_view(" \""));
                append_field(line, c.header("Referer"));
                line.append(std::string_view("\" \""));
                append_field(line, c.header("User-Agent"));
                line.push_back('"');
            }
        }
        const std::string_view text(line.data(), line.size());
        if (options_.sink) {
            options_.sink(text);
        } else {
            stdout_log().write(text);
        }
    } catch (const std::exception& e) {
        log_to_server(c, fmt::format("access log failed: {}", e.what()));
    } catch (...) {
        log_to_server(c, "access log failed: unknown exception");
    }
}

// --- recover ----------------------------------------------------------------------------------

Recover recover(RecoverOptions options) {
    return Recover(std::move(options));
}

runtime::Task<> Recover::operator()(Context& c, Next next) const {
    std::exception_ptr error;
    try {
        auto rest = next();
        co_await rest;
    } catch (...) {
        error = std::current_exception();
    }
    if (!error) {
        co_return;
    }
    if (c.response().sealed()) {
        // A timeout() outside answered already and cancelled us: what we caught is the
        // cancellation (or whatever the handler did about it). The sealed answer stands, and
        // answering again would reset (and so unseal) it.
        co_return;
    }
    if (c.exchange().streaming()) {
        // The head is out: no error response can follow. The App's boundary has the server
        // close the connection (and the server logs the failure).
        std::rethrow_exception(error);
    }
    handle(c, error);
}

void Recover::handle(Context& c, const std::exception_ptr& error) const noexcept {
    int status = 500;
    std::string_view message = "Internal Server Error";
    std::string text;
    bool log = true;
    try {
        try {
            std::rethrow_exception(error);
        } catch (const HttpError& e) {
            status = e.status();
            text = e.what();
            message = text;
            log = status >= 500 || options_.log_client_errors;
        } catch (const runtime::OperationCancelled& e) {
            // An abandoned request's co_await said so: expected (error_status()).
            status = 503;
            message = "request cancelled";
            text = e.what();
            log = c.app().options().server.log_all_errors;
        } catch (const std::exception& e) {
            text = e.what();
        } catch (...) {
            text = "unknown exception";
        }
        if (log) {
            const std::string_view id = request_id_of(c);
            const std::string line =
                fmt::format("recovered {} on {} {}{}{}: {}", status, c.method_text(),
                            c.route().empty() ? std::string_view("(no route)") : c.route(),
                            id.empty() ? "" : " request ", id, text);
            if (options_.log) {
                options_.log(line);
            } else {
                log_to_server(c, line);
            }
        }
    } catch (...) { // formatting or the sink failed: still answer below
        log_to_server(c, "recover: logging a failure failed");
    }
    try {
        c.app().answer_error(c, status, message);
    } catch (...) { // App::on_error threw: a plain answer the server can always send
        log_to_server(c, "recover: App::on_error threw; answering a plain 500");
        http::Response& r = c.response();
        r.reset();
        r.set_status(500);
        try {
            r.set_body("Internal Server Error\n");
        } catch (...) { // out of memory: an empty 500 is still an answer
            log_to_server(c, "recover: could not set the body");
        }
    }
}

// --- request id ---------------------------------------------------------------------------

namespace {

/// 32 random bits per process and a 32-bit thread number: distinct per thread of the process.
std::uint64_t thread_prefix() noexcept {
    static const std::uint64_t process = [] {
        std::uint64_t seed = 0;
        try {
            std::random_device rd;
            seed = rd();
        } catch (...) { // no entropy source: time and address still differ between processes
            seed = static_cast<std::uint64_t>(SteadyClock::now().time_since_epoch().count());
        }
        return (seed & 0xFFFFFFFFU) << 32U;
    }();
    static std::atomic<std::uint32_t> threads{0};
    return process | threads.fetch_add(1, std::memory_order_relaxed);
}

bool valid_incoming_id(std::string_view id, std::size_t max) noexcept {
    if (id.empty() || id.size() > max) {
        return false;
    }
    return std::all_of(id.begin(), id.end(), [](char ch) {
        const auto b = static_cast<unsigned char>(ch);
        return b >= 0x21 && b <= 0x7E;
    });
}

} // namespace

RequestIdMiddleware::RequestIdMiddleware(RequestIdOptions options)
    : options_(std::move(options)) {
    options_.max_length = std::clamp<std::size_t>(options_.max_length, 1, RequestId::kCapacity);
    http::detail::check_field_name(options_.header, "RequestIdOptions.header");
}

RequestIdMiddleware request_id(RequestIdOptions options) {
    return RequestIdMiddleware(std::move(options));
}

runtime::Task<> RequestIdMiddleware::operator()(Context& c, Next next) const {
    RequestId& id = c.emplace_local<RequestId>(kRequestIdKey);
    const std::string_view incoming = c.header(options_.header);
    if (options_.trust_incoming && valid_incoming_id(incoming, options_.max_length)) {
        std::memcpy(id.chars.data(), incoming.data(), incoming.size());
        id.size = static_cast<std::uint8_t>(incoming.size());
    } else {
        thread_local const std::uint64_t prefix = thread_prefix();
        thread_local std::uint64_t counter = 0;
        ++counter;
        id.size = static_cast<std::uint8_t>(
            fmt::format_to_n(id.chars.data(), id.chars.size(), "{:016x}-{:016x}", prefix, counter)
                .size);
    }
    c.set_header(options_.header, id.view());
    auto rest = next();
    co_await rest;
    // An inner layer may have reset the response (an error answer): put the header back.
    if (!c.exchange().streaming() && c.response().header(options_.header).empty()) {
        c.set_header(options_.header, id.view());
    }
}

std::string_view request_id_of(const Context& c) noexcept {
    const RequestId* id = c.local<RequestId>(kRequestIdKey);
    return id != nullptr ? id->view() : std::string_view{};
}

// --- cors ---------------------------------------------------------------------------------------

namespace {

/// Add `token` to the Vary header unless it is listed already (or Vary is "*").
void add_vary(Context& c, std::string_view token) {
    const std::string_view vary = c.response().header("Vary");
    if (vary.empty()) {
        c.set_header("Vary", token);
        return;
    }
    std::string_view rest = vary;
    while (!rest.empty()) {
        const auto comma = rest.find(',');
        const std::string_view item = trim_ows(rest.substr(0, comma));
        if (item == "*" || http::iequals(item, token)) {
            return;
        }
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    }
    std::string merged(vary);
    merged += ", ";
    merged += token;
    c.set_header("Vary", merged);
}

} // namespace

Cors::Cors(CorsOptions options)
    : options_(std::move(options)) {
    any_ = !options_.allow_origin && std::find(options_.origins.begin(), options_.origins.end(),
                                               "*") != options_.origins.end();
    methods_ = join(options_.methods);
    headers_ = join(options_.headers);
    expose_ = join(options_.expose_headers);
    if (options_.max_age.count() > 0) {
        max_age_ = std::to_string(options_.max_age.count());
    }
}

Cors cors(CorsOptions options) {
    return Cors(std::move(options));
}

bool Cors::allowed(std::string_view origin) const {
    if (options_.allow_origin) {
        return options_.allow_origin(origin);
    }
    return any_ || std::find(options_.origins.begin(), options_.origins.end(), origin) !=
                       options_.origins.end();
}

void Cors::decorate(Context& c, std::string_view origin) const {
    const bool wildcard = any_ && !options_.credentials;
    c.set_header("Access-Control-Allow-Origin", wildcard ? std::string_view("*") : origin);
    if (options_.credentials) {
        c.set_header("Access-Control-Allow-Credentials", "true");
    }
    if (!wildcard) {
        add_vary(c, "Origin");
    }
}

void Cors::preflight(Context& c, std::string_view origin) const {
    c.status(204);
    decorate(c, origin);
    c.set_header("Access-Control-Allow-Methods", methods_);
    if (!headers_.empty()) {
        c.set_header("Access-Control-Allow-Headers", headers_);
    } else if (const std::string_view asked = c.header("Access-Control-Request-Headers");
               !asked.empty()) {
        c.set_header("Access-Control-Allow-Headers", asked);
        add_vary(c, "Access-Control-Request-Headers");
    }
    if (!max_age_.empty()) {
        c.set_header("Access-Control-Max-Age", max_age_);
    }
}

runtime::Task<> Cors::operator()(Context& c, Next next) const {
    const bool varies = !any_ || options_.credentials;
    const std::string_view origin = c.header("Origin");
    const bool ok = !origin.empty() && allowed(origin);
    if (ok && c.method() == http::Method::options &&
        !c.header("Access-Control-Request-Method").empty()) {
        preflight(c, origin);
        co_return;
    }
    if (ok) {
        decorate(c, origin);
        if (!expose_.empty()) {
            c.set_header("Access-Control-Expose-Headers", expose_);
        }
    } else if (varies) {
        add_vary(c, "Origin");
    }
    auto rest = next();
    co_await rest;
    // Inner layers may have reset the response (error answers): decorate it again. The
    // request's views must be re-read after a suspension.
    if (c.exchange().streaming()) {
        co_return;
    }
    if (ok && c.response().header("Access-Control-Allow-Origin").empty()) {
        decorate(c, c.header("Origin"));
        if (!expose_.empty()) {
            c.set_header("Access-Control-Expose-Headers", expose_);
        }
    } else if (!ok && varies) {
        add_vary(c, "Origin");
    }
}

// --- body limit ------------------------------------------------------------------------------

BodyLimit body_limit(std::size_t bytes) {
    return BodyLimit(bytes);
}

runtime::Task<> BodyLimit::operator()(Context& c, Next next) const {
    const http::RequestHead& head = c.request().head();
    const std::size_t received = c.body().size();
    const bool declared_too_big = head.body == http::BodyKind::content_length &&
                                  head.content_length > static_cast<std::uint64_t>(limit_);
    if (declared_too_big || received > limit_) {
        const bool unread =
            head.body == http::BodyKind::content_length && received < head.content_length;
        c.app().answer_error(c, 413, fmt::format("the request body exceeds {} bytes", limit_));
        if (unread) {
            c.response().set_close();
        }
        co_return;
    }
    auto rest = next();
    co_await rest;
}

// --- basic auth ------------------------------------------------------------------------------

namespace {

/// Constant-time comparison: the time depends on the length of `secret` only.
bool constant_time_equals(std::string_view given, std::string_view secret) noexcept {
    unsigned diff = given.size() == secret.size() ? 0U : 1U;
    for (std::size_t i = 0; i < secret.size(); ++i) {
        const char g = i < given.size() ? given[i] : '\0';
        diff |= static_cast<unsigned>(static_cast<unsigned char>(g) ^
                                      static_cast<unsigned char>(secret[i]));
    }
    return diff == 0;
}

int base64_value(char ch) noexcept {
    if (ch >= 'A' && ch <= 'Z') {
        return ch - 'A';
    }
    if (ch >= 'a' && ch <= 'z') {
        return ch - 'a' + 26;
    }
    if (ch >= '0' && ch <= '9') {
        return ch - '0' + 52;
    }
    if (ch == '+') {
        return 62;
    }
    if (ch == '/') {
        return 63;
    }
    return -1;
}

/// Standard base64 (padding optional) into `out`; false on invalid input or overflow.
bool base64_decode(std::string_view in, char* out, std::size_t capacity,
                   std::size_t& size) noexcept {
    while (!in.empty() && in.back() == '=') {
        in.remove_suffix(1);
    }
    size = 0;
    std::uint32_t acc = 0;
    int bits = 0;
    for (const char ch : in) {
        const int v = base64_value(ch);
        if (v < 0) {
            return false;
        }
        acc = (acc << 6U) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (size == capacity) {
                return false;
            }
            out[size++] = static_cast<char>((acc >> static_cast<unsigned>(bits)) & 0xFFU);
        }
    }
    return bits < 6; // a lone trailing sextet is not valid base64
}

std::string quote_realm(std::string_view s) {
    std::string out = "\"";
    for (const char ch : s) {
        if (ch == '"' || ch == '\\') {
            out += '\\';
        }
        out += ch;
    }
    out += '"';
    return out;
}

} // namespace

BasicAuth::BasicAuth(BasicAuthOptions options)
    : options_(std::move(options)) {
    if (!options_.validator && options_.users.empty()) {
        throw std::invalid_argument("basic_auth: give a validator or at least one user");
    }
    challenge_ = "Basic realm=" + quote_realm(options_.realm) + ", charset=\"UTF-8\"";
}

BasicAuth basic_auth(BasicAuthOptions options) {
    return BasicAuth(std::move(options));
}

bool BasicAuth::check(Context& c) const {
    const std::string_view header = trim_ows(c.header("Authorization"));
    if (header.size() < 6 || !http::iequals(header.substr(0, 5), "Basic") || header[5] != ' ') {
        return false;
    }
    const std::string_view encoded = trim_ows(header.substr(6));
    std::array<char, 1024> decoded{};
    std::size_t size = 0;
    if (encoded.empty() || !base64_decode(encoded, decoded.data(), decoded.size(), size)) {
        return false;
    }
    const std::string_view credentials(decoded.data(), size);
    const auto colon = credentials.find(':');
    if (colon == std::string_view::npos) {
        return false;
    }
    const std::string_view user = credentials.substr(0, colon);
    const std::string_view password = credentials.substr(colon + 1);
    bool ok = false;
    if (options_.validator) {
        ok = options_.validator(user, password);
    } else {
        static constexpr std::string_view kDummy = "ringwork-basic-auth-unknown-user";
        const auto it = options_.users.find(user);
        const bool known = it != options_.users.end();
        // An unknown user costs a comparison too; `&` (not `&&`) keeps both evaluated.
        ok = constant_time_equals(password, known ? std::string_view(it->second) : kDummy) & known;
    }
    if (ok) {
        c.emplace_local<AuthUser>(kUserKey, AuthUser{std::string(user)});
    }
    return ok;
}

runtime::Task<> BasicAuth::operator()(Context& c, Next next) const {
    if (!check(c)) {
        c.app().answer_error(c, 401, "Unauthorized");
        c.set_header("WWW-Authenticate", challenge_);
        co_return;
    }
    auto rest = next();
    co_await rest;
}

std::string_view auth_user_of(const Context& c) noexcept {
    const AuthUser* user = c.local<AuthUser>(kUserKey);
    return user != nullptr ? std::string_view(user->name) : std::string_view{};
}

// --- rate limit ------------------------------------------------------------------------------

/// Fixed-size, set-associative table of token buckets: a key hashes to one set of kWays
/// entries guarded by the set's mutex; a miss takes a free entry or the set's least recently
/// seen one. No allocation after construction.
struct RateLimit::Table {
    static constexpr std::size_t kWays = 8;
    static constexpr std::size_t kKeyMax = 64;
    struct Entry {
        std::array<char, kKeyMax> key{};
        std::uint8_t size = 0;
        bool used = false;
        double tokens = 0;
        std::int64_t last_ns = 0;
    };
    struct Set {
        std::mutex mutex;
        std::array<Entry, kWays> entries;
    };
    std::unique_ptr<Set[]> sets; // NOLINT(cppcoreguidelines-avoid-c-arrays): fixed, never resized
    std::size_t mask = 0;
};

namespace {

std::uint64_t fnv1a(std::string_view s) noexcept {
    std::uint64_t h = 14695981039346656037ULL;
    for (const char ch : s) {
        h ^= static_cast<unsigned char>(ch);
        h *= 1099511628211ULL;
    }
    // Final avalanche (splitmix64's) so the low bits choose sets evenly.
    h ^= h >> 30U;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27U;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31U;
    return h;
}

std::uint32_t ceil_seconds(double s) noexcept {
    if (!(s > 0)) {
        return 0;
    }
    const double up = std::ceil(s);
    return up >= 4e9 ? 4000000000U : static_cast<std::uint32_t>(up);
}

} // namespace

RateLimit::RateLimit(RateLimitOptions options)
    : options_(std::move(options))
    , table_(std::make_shared<Table>()) {
    if (!(options_.rate > 0) || options_.burst == 0) {
        throw std::invalid_argument("rate_limit: rate must be > 0 and burst >= 1");
    }
    std::size_t sets = 1;
    while (sets * Table::kWays < options_.max_clients && sets < (std::size_t{1} << 24U)) {
        sets *= 2;
    }
    table_->sets = std::make_unique<Table::Set[]>(sets); // NOLINT(cppcoreguidelines-avoid-c-arrays)
    table_->mask = sets - 1;
}

RateLimit rate_limit(RateLimitOptions options) {
    return RateLimit(std::move(options));
}

RateLimit::Decision RateLimit::take(std::string_view key, SteadyClock::time_point now) const {
    const std::uint64_t hash = fnv1a(key);
    std::array<char, Table::kKeyMax> stored{};
    std::size_t size = key.size();
    if (key.size() <= Table::kKeyMax) {
        std::memcpy(stored.data(), key.data(), key.size());
    } else {
        constexpr std::size_t kPrefix = Table::kKeyMax - 17;
        std::memcpy(stored.data(), key.data(), kPrefix);
        fmt::format_to_n(stored.data() + kPrefix, 17, "#{:016x}", hash);
        size = Table::kKeyMax;
    }
    const std::string_view k(stored.data(), size);
    const std::int64_t now_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
    const double burst = options_.burst;
    const double rate = options_.rate;

    Table::Set& set = table_->sets[hash & table_->mask];
    const std::lock_guard<std::mutex> lock(set.mutex);
    Table::Entry* entry = nullptr;
    Table::Entry* victim = nullptr;
    for (Table::Entry& e : set.entries) {
        if (e.used && e.size == size && std::string_view(e.key.data(), e.size) == k) {
            entry = &e;
            break;
        }
        if (victim == nullptr || (victim->used && (!e.used || e.last_ns < victim->last_ns))) {
            victim = &e;
        }
    }
    if (entry == nullptr) {
        entry = victim;
        std::memcpy(entry->key.data(), stored.data(), size);
        entry->size = static_cast<std::uint8_t>(size);
        entry->used = true;
        entry->tokens = burst;
        entry->last_ns = now_ns;
    } else if (now_ns > entry->last_ns) {
        const double elapsed = static_cast<double>(now_ns - entry->last_ns) / 1e9;
        entry->tokens = std::min(burst, entry->tokens + elapsed * rate);
        entry->last_ns = now_ns;
    }
    Decision d;
    if (entry->tokens >= 1.0) {
        entry->tokens -= 1.0;
        d.allowed = true;
    } else {
        d.retry_after_s = std::max<std::uint32_t>(1, ceil_seconds((1.0 - entry->tokens) / rate));
    }
    d.remaining = static_cast<std::uint32_t>(std::floor(entry->tokens));
    d.reset_s = ceil_seconds((burst - entry->tokens) / rate);
    return d;
}

bool RateLimit::admit(Context& c) const {
    const std::string_view key = options_.key ? options_.key(c) : c.ip();
    const auto now = options_.clock ? options_.clock() : SteadyClock::now();
    const Decision d = take(key, now);
    const auto put_headers = [&] {
        c.set_header("RateLimit-Limit", fmt::format_int(options_.burst).c_str());
        c.set_header("RateLimit-Remaining", fmt::format_int(d.remaining).c_str());
        c.set_header("RateLimit-Reset", fmt::format_int(d.reset_s).c_str());
    };
    if (!d.allowed) {
        c.app().answer_error(c, 429, "Too Many Requests");
        c.set_header("Retry-After", fmt::format_int(d.retry_after_s).c_str());
        put_headers();
        return false;
    }
    if (options_.headers_on_success) {
        put_headers();
    }
    return true;
}

runtime::Task<> RateLimit::operator()(Context& c, Next next) const {
    if (!admit(c)) {
        co_return;
    }
    auto rest = next();
    co_await rest;
}

// --- timeout ---------------------------------------------------------------------------------

namespace {

void forward_stop(void* source) noexcept {
    static_cast<runtime::StopSource*>(source)->request_stop();
}

/// At the deadline: answer 503, seal it, then cancel the inner layers.
void expire(Context& c, runtime::StopSource& inner) noexcept {
    http::Response& r = c.response();
    if (!c.exchange().streaming()) {
        try {
            c.app().answer_error(c, 503, "request timed out");
        } catch (...) { // App::on_error threw: a plain answer instead
            log_to_server(c, "timeout: App::on_error threw; answering a plain 503");
            r.reset();
            r.set_status(503);
        }
    }
    // Out now, sealed, Connection: close; the inner layers finish into nothing (the
    // connection keeps the exchange until they return).
    c.exchange().respond_now();
    inner.request_stop();
}

/// The timer side of the race; cancelled (OperationCancelled, discarded) when the chain wins.
runtime::Task<> deadline(Context& c, std::chrono::milliseconds limit, runtime::StopSource* inner,
                         bool* fired) {
    auto sleep = io::sleep_for(limit);
    co_await sleep;
    *fired = true;
    expire(c, *inner);
}

} // namespace

Timeout::Timeout(std::chrono::milliseconds limit) : limit_(limit) {
    if (limit.count() <= 0) {
        throw std::invalid_argument(fmt::format("mw::timeout: the limit must be positive, got {} ms", limit.count()));
    }
}

Timeout timeout(std::chrono::milliseconds limit) {
    return Timeout(limit);
}

runtime::Task<> Timeout::operator()(Context& c, Next next) const {
    // The inner layers observe a source of our own, fired by the deadline and by the outer
    // tokens (the App's and the awaiting coroutine's). Destroyed in reverse: the forwarding
    // registrations go before the source.
    runtime::StopSource inner;
    runtime::StopRegistration from_context;
    runtime::StopRegistration from_caller;
    const runtime::StopToken saved = c.stop_;
    const runtime::StopToken caller = co_await runtime::current_stop_token();
    from_context.arm(saved, &forward_stop, &inner);
    if (caller != saved) {
        from_caller.arm(caller, &forward_stop, &inner);
    }
    c.stop_ = runtime::StopToken(inner);
    bool fired = false;
    std::exception_ptr error;
    try {
        auto chain = run_rest(next).with_stop_token(runtime::StopToken(inner));
        auto timer = deadline(c, limit_, &inner, &fired);
        auto race = runtime::when_any(std::move(chain), std::move(timer));
        co_await std::move(race);
    } catch (...) {
        error = std::current_exception();
    }
    from_caller.disarm();
    from_context.disarm();
    c.stop_ = saved;
    if (error && !fired) {
        std::rethrow_exception(error);
    }
}

// --- health ----------------------------------------------------------------------------------

Health health(HealthOptions options) {
    return Health(std::move(options));
}

void Health::operator()(Context& c) const {
    c.set_header("Cache-Control", "no-store");
    if (c.app().server().shutting_down()) {
        c.status(503).json_text(R"({"status":"draining"})");
        return;
    }
    if (options_.ready && !options_.ready()) {
        c.status(503).json_text(R"({"status":"unavailable"})");
        return;
    }
    c.status(200).json_text(R"({"status":"ok"})");
}

} // namespace ringwork::web::mw
