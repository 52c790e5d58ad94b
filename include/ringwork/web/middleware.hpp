// SPDX-License-Identifier: MIT
// Built-in middleware (access log, recover, request id, CORS, body limit, basic auth, rate
// limit, timeout) and the readiness handler, in namespace ringwork::web::mw.
#pragma once

#include <ringwork/runtime/task.hpp>
#include <ringwork/web/context.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

/// \brief Built-in middleware. Each factory returns a middleware object: a callable
/// `Task<>(Context&, Next)` to pass to `App::use()`, `Routes::use()`, `group()` or a route.
///
/// Every middleware object is immutable once built (shared state, where there is any, is
/// thread-safe) and may serve every reactor at once; the App keeps it alive while serving, which
/// is what lets operator() be a coroutine borrowing `this`. Suggested order, outermost first:
/// \code
/// app.use(mw::request_id());   // the id is known to everything inside
/// app.use(mw::logger());       // sees the final status, also of errors answered inside
/// app.use(mw::recover());      // turns exceptions into error responses (keeps the id header)
/// app.use(mw::cors({...}));    // after recover: error responses carry CORS headers too
/// app.use(mw::timeout(5s));    // innermost: bounds the handler only
/// \endcode
namespace ringwork::web::mw {

/// \brief Key of the RequestId local that request_id() stores.
inline constexpr std::string_view kRequestIdKey = "request_id";
/// \brief Key of the AuthUser local that basic_auth() stores.
inline constexpr std::string_view kUserKey = "user";

// --- logger -------------------------------------------------------------------------------

/// \brief Access log line layouts.
enum class LogFormat : std::uint8_t {
    /// Apache common: `ip - user [10/Oct/2000:13:55:36 +0000] "GET /a?b HTTP/1.1" 200 2326`
    common,
    /// Apache combined: common plus ` "Referer" "User-Agent"`
    combined,
    /// One JSON object per line: `{"time":"2000-10-10T13:55:36.123Z","remote_ip":...,"method":...,
    /// "target":...,"status":200,"bytes":2326,"duration_us":87,"request_id":...,"route":...}`
    /// (request_id and route are left out when empty).
    json,
    /// logfmt, the same fields as json: `time=2000-10-10T13:55:36.123Z remote_ip=1.2.3.4
    /// method=GET target=/a?b status=200 bytes=2326 duration_us=87 request_id=... route=...`;
    /// a value with a space, `=`, `"`, `\\`, a control or non-ASCII byte, or nothing in it is
    /// written as a JSON string (`\"`, `\\`, `\n`, `\u00XX`; invalid UTF-8 as U+FFFD).
    logfmt,
};

/// \brief logger() configuration.
struct LoggerOptions {
    LogFormat format = LogFormat::common;
    /// Receives each line, without the trailing newline, on the reactor thread that served the
    /// request (concurrently from several reactors: make it thread-safe). The view is valid for
    /// the call only. Empty: the built-in stdout writer, which buffers per reactor thread and
    /// writes the lines a loop pass produced with one fwrite + fflush just before the reactor
    /// waits again (also when more than 64 KiB pile up, and at thread exit; immediately on a
    /// thread without a reactor). Times are UTC.
    std::function<void(std::string_view line)> sink;
};

/// \brief The access-log middleware (see logger()).
class Logger {
public:
    explicit Logger(LoggerOptions options)
        : options_(std::move(options)) {}
    runtime::Task<> operator()(Context& c, Next next) const;

private:
    void emit(Context& c, int status, std::chrono::steady_clock::time_point start) const;
    LoggerOptions options_;
};

/// \brief One access log line per request, written after the chain ran: remote IP
/// (Context::ip()), user (basic_auth's local), time, request line, status, body bytes, and for
/// the JSON format the duration, request id (request_id's local) and route pattern.
///
/// When an exception escapes the inner layers it logs the status the App's error boundary will
/// answer (HttpError's status, else 500), then rethrows; that answer is built after the line,
/// so its bytes show as 0 / "-" (a recover() inside the logger builds it first: exact bytes).
/// `bytes` is the size of the response body the handler set (0 / "-" for a streamed
/// response). Allocation-free in steady state
/// with the built-in sink (per-thread buffers).
Logger logger(LoggerOptions options = {});

/// \brief Flush the calling thread's buffered access log lines (built-in stdout sink) now.
void flush_access_log() noexcept;

// --- recover --------------------------------------------------------------------------------

/// \brief recover() configuration.
struct RecoverOptions {
    /// Where failures are reported (one line, no newline). Empty: the server's
    /// ServerOptions::logger, or stderr with a "ringwork: " prefix when that is unset too.
    std::function<void(std::string_view message)> log;
    /// Also report HttpErrors with a status below 500 (client errors are not logged by default).
    bool log_client_errors = false;
};

/// \brief The exception-to-response middleware (see recover()).
class Recover {
public:
    explicit Recover(RecoverOptions options)
        : options_(std::move(options)) {}
    runtime::Task<> operator()(Context& c, Next next) const;

private:
    void handle(Context& c, const std::exception_ptr& error) const noexcept;
    RecoverOptions options_;
};

/// \brief Catches what the inner layers throw and answers through App::answer_error
/// (App::on_error): an HttpError with its status and message, anything else with 500
/// "Internal Server Error" (the exception text is logged, never sent). Once the head of a
/// streamed response is out no error response can follow: the connection is closed instead.
/// Never throws (a failing on_error falls back to a plain 500). Unlike the App's own boundary
/// it runs where you place it, so outer middleware (logger, request_id, cors) see the answer.
/// Inside a timeout() that expired (the response is sealed) it swallows the cancellation and
/// leaves the 503 alone.
Recover recover(RecoverOptions options = {});

// --- request id ----------------------------------------------------------------------------

/// \brief A request's id as the request_id() middleware stores it (Context local under
/// kRequestIdKey): inline characters, no heap.
struct RequestId {
    static constexpr std::size_t kCapacity = 128;
    std::array<char, kCapacity> chars{};
    std::uint8_t size = 0;
    [[nodiscard]] std::string_view view() const noexcept { return {chars.data(), size}; }
};

/// \brief request_id() configuration.
struct RequestIdOptions {
    /// The request and response header.
    std::string header = "X-Request-ID";
    /// Accept the client's id when it is 1..max_length visible ASCII characters (0x21-0x7E);
    /// otherwise generate one. Capped at RequestId::kCapacity.
    bool trust_incoming = true;
    std::size_t max_length = 64;
};

/// \brief The request-id middleware (see request_id()).
class RequestIdMiddleware {
public:
    explicit RequestIdMiddleware(RequestIdOptions options);
    runtime::Task<> operator()(Context& c, Next next) const;

private:
    RequestIdOptions options_;
};

/// \brief Gives every request an id: the client's (header `X-Request-ID`) when valid, else a
/// generated one, `<16 hex: process random + thread number>-<16 hex: per-thread counter>`
/// (unique within the process, no heap, no shared counter). Sets the response header and
/// stores a RequestId local under kRequestIdKey (logger() prints it).
RequestIdMiddleware request_id(RequestIdOptions options = {});

/// \brief The id request_id() assigned to this request; empty when it did not run.
std::string_view request_id_of(const Context& c) noexcept;

// --- cors ------------------------------------------------------------------------------------

/// \brief cors() configuration (names follow the Access-Control-* headers).
struct CorsOptions {
    /// Allowed origins, compared exactly ("https://app.example.com"); "*" allows any.
    std::vector<std::string> origins = {"*"};
    /// When set, decides instead of `origins` (called on the reactor thread; thread-safe).
    std::function<bool(std::string_view origin)> allow_origin;
    /// Access-Control-Allow-Methods of preflight answers.
    std::vector<std::string> methods = {"GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"};
    /// Access-Control-Allow-Headers of preflight answers; empty: echo the request's
    /// Access-Control-Request-Headers.
    std::vector<std::string> headers;
    /// Access-Control-Expose-Headers of actual responses.
    std::vector<std::string> expose_headers;
    /// Access-Control-Allow-Credentials: true. The allowed origin is then always echoed, never
    /// "*" (the Fetch standard forbids a wildcard with credentials).
    bool credentials = false;
    /// Access-Control-Max-Age of preflight answers; 0: not sent.
    std::chrono::seconds max_age{0};
};

/// \brief The CORS middleware (see cors()).
class Cors {
public:
    explicit Cors(CorsOptions options);
    runtime::Task<> operator()(Context& c, Next next) const;

private:
    [[nodiscard]] bool allowed(std::string_view origin) const;
    void preflight(Context& c, std::string_view origin) const;
    void decorate(Context& c, std::string_view origin) const;
    CorsOptions options_;
    std::string methods_;
    std::string headers_;
    std::string expose_;
    std::string max_age_;
    bool any_ = false;
};

/// \brief Cross-origin resource sharing. A preflight (OPTIONS with Origin and
/// Access-Control-Request-Method) from an allowed origin is answered 204 without calling the
/// rest of the chain. Other requests from allowed origins run the chain and get
/// Access-Control-Allow-Origin (`*`, or the origin echoed for a list, a predicate or
/// credentials), -Allow-Credentials and -Expose-Headers. `Vary: Origin` is added whenever the
/// answer depends on the origin (everything but a plain "*" configuration). Requests without
/// Origin, and from origins not allowed, pass through untouched (the browser then blocks).
Cors cors(CorsOptions options = {});

// --- body limit ----------------------------------------------------------------------------

/// \brief The body-size middleware (see body_limit()).
class BodyLimit {
public:
    explicit BodyLimit(std::size_t bytes) noexcept
        : limit_(bytes) {}
    runtime::Task<> operator()(Context& c, Next next) const;

private:
    std::size_t limit_;
};

/// \brief 413 (through App::answer_error) when Content-Length or the received body exceeds
/// `bytes`; the connection is closed when the body was not fully received. A per-route limit
/// below ServerOptions::max_request_body_size (which rejects before the body is read; use it,
/// or ServerOptions::header_received, to avoid reading large bodies at all).
BodyLimit body_limit(std::size_t bytes);

// --- basic auth ----------------------------------------------------------------------------

/// \brief The authenticated user basic_auth() stores (Context local under kUserKey).
struct AuthUser {
    std::string name;
};

/// \brief basic_auth() configuration: a validator, or a user → password map.
struct BasicAuthOptions {
    std::string realm = "Restricted";
    /// Decides when set (called on the reactor thread; thread-safe; should compare in
    /// constant time itself).
    std::function<bool(std::string_view user, std::string_view password)> validator;
    /// Used when there is no validator; passwords are compared in constant time, and an unknown
    /// user costs the same comparison.
    std::map<std::string, std::string, std::less<>> users;
};

/// \brief The HTTP Basic authentication middleware (see basic_auth()).
class BasicAuth {
public:
    /// \throws std::invalid_argument without a validator and users.
    explicit BasicAuth(BasicAuthOptions options);
    runtime::Task<> operator()(Context& c, Next next) const;

private:
    [[nodiscard]] bool check(Context& c) const;
    BasicAuthOptions options_;
    std::string challenge_;
};

/// \brief RFC 7617 Basic authentication: a valid `Authorization: Basic` header stores an
/// AuthUser local (kUserKey) and runs the chain; anything else answers 401 (through
/// App::answer_error) with `WWW-Authenticate: Basic realm="...", charset="UTF-8"`.
BasicAuth basic_auth(BasicAuthOptions options);

/// \brief The user basic_auth() authenticated; empty when it did not run or failed.
std::string_view auth_user_of(const Context& c) noexcept;

// --- rate limit ----------------------------------------------------------------------------

/// \brief rate_limit() configuration.
struct RateLimitOptions {
    /// Sustained requests per second per client (tokens added per second).
    double rate = 10.0;
    /// Bucket capacity: requests a client may send at once after being idle.
    std::uint32_t burst = 20;
    /// Clients tracked at once (rounded up to a multiple of 8). When full, the least recently
    /// seen client of a set is forgotten (it starts again with a full bucket).
    std::size_t max_clients = 16384;
    /// The client key; empty: Context::ip(). Keys longer than 64 bytes are reduced to a prefix
    /// plus a 64-bit hash.
    std::function<std::string_view(Context&)> key;
    /// Send RateLimit-Limit / -Remaining / -Reset on allowed responses too.
    bool headers_on_success = true;
    /// The clock (tests inject one); empty: std::chrono::steady_clock::now.
    std::function<std::chrono::steady_clock::time_point()> clock;
};

/// \brief The rate-limiting middleware (see rate_limit()).
class RateLimit {
public:
    /// \throws std::invalid_argument when rate <= 0 or burst == 0.
    explicit RateLimit(RateLimitOptions options);
    runtime::Task<> operator()(Context& c, Next next) const;

    /// \brief What one take() decided.
    struct Decision {
        bool allowed = false;
        std::uint32_t remaining = 0;     ///< whole tokens left
        std::uint32_t retry_after_s = 0; ///< until the next token (refused requests)
        std::uint32_t reset_s = 0;       ///< until the bucket is full again
    };
    /// \brief Take one token from `key`'s bucket at time `now` (thread-safe).
    Decision take(std::string_view key, std::chrono::steady_clock::time_point now) const;

private:
    struct Table;
    [[nodiscard]] bool admit(Context& c) const;
    RateLimitOptions options_;
    std::shared_ptr<Table> table_; ///< shared by copies of this object
};

/// \brief Token bucket per client: `rate` tokens per second up to `burst`. A request without a
/// token is answered 429 (through App::answer_error) with Retry-After (seconds) and the
/// RateLimit-Limit / -Remaining / -Reset fields of the IETF RateLimit header draft.
///
/// State: a fixed table allocated once (max_clients entries in 8-way sets), shared by every
/// reactor; each set has its own small mutex held for a few dozen instructions (the one lock on
/// this request path, accepted here because clients must be counted across reactors). Memory
/// is bounded: no allocation per request or per client.
RateLimit rate_limit(RateLimitOptions options = {});

// --- timeout ---------------------------------------------------------------------------------

/// \brief The deadline middleware (see timeout()).
class Timeout {
public:
    /// Throws std::invalid_argument for a limit of zero or less.
    explicit Timeout(std::chrono::milliseconds limit);
    runtime::Task<> operator()(Context& c, Next next) const;

private:
    std::chrono::milliseconds limit_;
};

/// \brief Bounds the rest of the chain to `limit`. When the time is up:
/// 1. the response becomes 503 "request timed out" (through App::answer_error), is sealed
///    (later changes are ignored) and sent at once with Connection: close
///    (http::Exchange::respond_now), and the connection closes;
/// 2. the inner layers are cancelled: their stop token (also Context::stop_token()) fires, so
///    pending sleeps throw runtime::OperationCancelled and I/O ends with operation_canceled;
/// 3. a handler that ignores cancellation runs on "into nothing": the client already has its
///    503; the Context stays valid until the handler returns, then its frame and the pooled
///    request state go back to the pools; what it throws is discarded. The connection's
///    worker stays busy until then (it counts towards Concurrency).
/// If a streamed response's head is already out, the connection is closed without the last
/// chunk. Timer resolution is 1 ms (the reactor's timer wheel).
/// A `limit` of zero or less throws std::invalid_argument (leave the middleware out instead).
Timeout timeout(std::chrono::milliseconds limit);

// --- health ----------------------------------------------------------------------------------

/// \brief health() configuration.
struct HealthOptions {
    /// Extra readiness check (database reachable, ...); false answers 503 like draining.
    /// Called on the reactor thread for every probe: keep it cheap and non-blocking.
    std::function<bool()> ready;
};

/// \brief The readiness handler (see health()).
class Health {
public:
    explicit Health(HealthOptions options)
        : options_(std::move(options)) {}
    void operator()(Context& c) const;

private:
    HealthOptions options_;
};

/// \brief A readiness endpoint handler (not a middleware): 200 `{"status":"ok"}` while
/// serving; 503 `{"status":"draining"}` once `c.app().server().shutting_down()` (so load
/// balancers stop sending during a graceful shutdown), or `{"status":"unavailable"}` when the
/// `ready` check fails. Always `Cache-Control: no-store`.
/// \code
/// app.get("/healthz", mw::health());
/// \endcode
Health health(HealthOptions options = {});

} // namespace ringwork::web::mw
