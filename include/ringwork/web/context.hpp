// SPDX-License-Identifier: MIT
// Context: what a route handler and a middleware see of one request (request view, response
// builder, route params, per-request values) plus Next, the onion's continuation.
#pragma once

#include <ringwork/http/server.hpp>
#include <ringwork/runtime/frame_pool.hpp>
#include <ringwork/runtime/task.hpp>
#include <ringwork/web/error.hpp>
#include <ringwork/web/json.hpp>
#include <ringwork/web/router.hpp>

#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace ringwork::web {

class Context;
class App;
struct Cookie;
class MultipartForm;

namespace detail {

/// One link of a middleware chain: a type-erased middleware or handler. `async` gets the rest
/// of the chain as Next; `sync` is a plain synchronous handler (chain end, no frame).
struct Step {
    runtime::Task<> (*async)(const void* self, Context& c, const Step* next, const Step* end) = nullptr;
    void (*sync)(const void* self, Context& c) = nullptr;
    const void* self = nullptr;
};

} // namespace detail

class Compress;

namespace detail {
/// HttpError(400): `<what> '<name>' must be <kind>[ in range], got "<text>"`; `kind` is "an
/// integer", "a non-negative integer" (unsigned types: "-1" is no integer they hold) or "a number".
[[noreturn]] void throw_bad_number(std::string_view what, std::string_view name, std::string_view text,
                                   std::string_view kind, bool out_of_range);

/// The types param_as/query_as parse: integers (not bool or a character type) and floating point.
template <class T>
concept Number = (std::integral<T> && !std::is_same_v<T, bool> && !std::is_same_v<T, char> &&
                  !std::is_same_v<T, wchar_t> && !std::is_same_v<T, char8_t> && !std::is_same_v<T, char16_t> &&
                  !std::is_same_v<T, char32_t>) ||
                 std::floating_point<T>;

template <Number T>
T parse_number(std::string_view what, std::string_view name, std::string_view text) {
    T value{};
    const char* const end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    bool finite = true;
    if constexpr (std::floating_point<T>) {
        finite = std::isfinite(value); // "inf" and "nan" parse, but are not numbers to answer with
    }
    if (text.empty() || ec != std::errc{} || ptr != end || !finite) {
        const std::string_view kind = std::is_floating_point_v<T> ? "a number"
                                      : std::is_unsigned_v<T>     ? "a non-negative integer"
                                                                  : "an integer";
        throw_bad_number(what, name, text, kind, ec == std::errc::result_out_of_range);
    }
    return value;
}
} // namespace detail

/// \brief The rest of the chain, handed to a middleware: `co_await next()` runs the inner
/// middleware and the handler, then returns (exceptions propagate out of it). Not calling it
/// short-circuits the chain. Cheap to copy; call it at most once.
class Next {
public:
    Next(Context& c, const detail::Step* step, const detail::Step* end) noexcept : c_(&c), step_(step), end_(end) {}

    /// The awaitable returned by operator(): runs a synchronous handler inline (no frame) and
    /// an asynchronous step as a child task.
    class Awaiter {
    public:
        Awaiter(Context& c, const detail::Step* step, const detail::Step* end) noexcept
            : c_(&c), step_(step), end_(end) {}
        bool await_ready() {
            if (step_ == end_ || step_->sync != nullptr) {
                return true;
            }
            task_ = step_->async(step_->self, *c_, step_ + 1, end_);
            return false;
        }
        template <class Promise>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) noexcept {
            return runtime::Task<>::Awaiter{task_.handle()}.await_suspend(h);
        }
        void await_resume() {
            if (task_.handle()) {
                runtime::Task<>::Awaiter{task_.handle()}.await_resume();
            } else if (step_ != end_) {
                step_->sync(step_->self, *c_);
            }
        }

    private:
        Context* c_;
        const detail::Step* step_;
        const detail::Step* end_;
        runtime::Task<> task_;
    };

    [[nodiscard]] Awaiter operator()() const noexcept { return Awaiter(*c_, step_, end_); }
    /// True when nothing is left to run (the caller is the last link).
    [[nodiscard]] bool empty() const noexcept { return step_ == end_; }

private:
    Context* c_;
    const detail::Step* step_;
    const detail::Step* end_;
};

/// \brief A server-sent event (text/event-stream). Empty fields are left out; `data` may hold
/// several lines (each becomes a `data:` line).
struct SseEvent {
    std::string_view data;
    std::string_view event;
    std::string_view id;
    std::uint32_t retry_ms = 0;
};

/// \brief One request and its response, as route handlers and middleware see them.
///
/// Lifetime: created by the App for each request in the dispatching coroutine's frame (a
/// pooled frame: no heap allocation), destroyed when the chain has finished. Handlers get it
/// by reference and must not keep it, nor any view it returns, beyond their own completion.
/// Views into the request (path, params, headers, body) stay valid across `co_await`s.
/// Reactor thread only.
class Context {
public:
    Context(App& app, http::Exchange& x) noexcept : app_(&app), x_(&x) {}
    ~Context();
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;

    // --- the request -----------------------------------------------------------------------
    [[nodiscard]] http::Request& request() noexcept { return x_->request; }
    [[nodiscard]] http::Response& response() noexcept { return x_->response; }
    [[nodiscard]] http::Exchange& exchange() noexcept { return *x_; }
    [[nodiscard]] const http::Exchange& exchange() const noexcept { return *x_; }
    [[nodiscard]] App& app() noexcept { return *app_; }

    [[nodiscard]] http::Method method() const noexcept { return x_->request.method(); }
    /// The method token as received ("GET", "PURGE").
    [[nodiscard]] std::string_view method_text() const noexcept { return x_->request.method_text(); }
    /// The percent-decoded path (what the router matched).
    [[nodiscard]] std::string_view path() { return x_->request.path(); }
    /// The request-target as received (path and query, not decoded).
    [[nodiscard]] std::string_view raw_target() const noexcept { return x_->request.raw_target(); }
    /// The matched route's pattern, e.g. "/users/:id" (empty for not-found): a low-cardinality
    /// label for logs and metrics.
    [[nodiscard]] std::string_view route() const noexcept { return route_; }
    /// Route parameter `name` (already percent-decoded, since the router matches the decoded
    /// path); empty when the route has no such parameter.
    [[nodiscard]] std::string_view param(std::string_view name) const noexcept { return params_.get(name); }
    [[nodiscard]] const Params& params() const noexcept { return params_; }
    /// \brief Route parameter `name` as a number of type T (an integer or floating-point type):
    /// the whole text must be one, in T's range (std::from_chars: no sign for unsigned types,
    /// no spaces, no "0x"). Otherwise HttpError(400), e.g. `path parameter 'id' must be an
    /// integer, got "abc"`: `/users/abc` is answered without code of yours.
    template <detail::Number T>
    [[nodiscard]] T param_as(std::string_view name) const {
        return detail::parse_number<T>("path parameter", name, param(name));
    }
    /// First value of query argument `name`, decoded; nullopt when absent.
    [[nodiscard]] std::optional<std::string_view> query(std::string_view name) { return x_->request.query(name); }
    /// Query argument `name` or `fallback` when absent.
    [[nodiscard]] std::string_view query_or(std::string_view name, std::string_view fallback) {
        return query(name).value_or(fallback);
    }
    /// \brief Query argument `name` as a number of type T (as param_as): nullopt when absent,
    /// HttpError(400) naming the argument when present but not a number in T's range.
    /// `c.query_as<unsigned>("limit").value_or(20)`.
    template <detail::Number T>
    [[nodiscard]] std::optional<T> query_as(std::string_view name) {
        const std::optional<std::string_view> text = query(name);
        if (!text) {
            return std::nullopt;
        }
        return detail::parse_number<T>("query argument", name, *text);
    }
    /// Calls `f(value)` for every value of query argument `name` (multi-valued: ?tag=a&tag=b).
    template <class F>
    void for_each_query(std::string_view name, F&& f) {
        x_->request.for_each_query([&](std::string_view k, std::string_view v) {
            if (k == name) {
                f(v);
            }
        });
    }
    /// The query string after '?', not decoded.
    [[nodiscard]] std::string_view query_string() const noexcept { return x_->request.query_string(); }
    /// First header `name` (case-insensitive); empty when absent.
    [[nodiscard]] std::string_view header(std::string_view name) const noexcept { return x_->request.header(name); }
    /// Cookie `name` from the Cookie header(s); nullopt when absent.
    [[nodiscard]] std::optional<std::string_view> cookie(std::string_view name) const noexcept;
    /// The client's IP as text ("127.0.0.1", "::1"). When the direct peer is one of the App's
    /// trusted proxies (AppOptions::trusted_proxies), the address X-Forwarded-For (its
    /// right-most untrusted entry) or X-Real-IP names instead.
    [[nodiscard]] std::string_view ip();
    /// The direct peer's address (a Unix socket or the in-process test client: family AF_UNIX).
    [[nodiscard]] const io::SocketAddress& remote_address() { return x_->request.remote_address(); }
    /// The whole request body (de-chunked); empty when it is streamed (body_streamed()).
    [[nodiscard]] std::string_view body() const noexcept { return x_->request.body(); }
    /// The body was left unread for the handler (ServerOptions::stream_request_body: chunked,
    /// or over max_request_body_size): read it with read_body() or read_multipart().
    [[nodiscard]] bool body_streamed() const noexcept { return x_->request.body_streamed(); }
    /// The next piece of a streamed body as it arrives; empty at its end (and when the body is
    /// not streamed). The view is valid until the next call. Throws HttpError(400) for a
    /// malformed or cut body, HttpError(408) when read_timeout passes, runtime::OperationCancelled
    /// when the request is cancelled. Handlers that return before the end get their answer
    /// sent with Connection: close.
    runtime::Task<std::string_view> read_body();
    /// The body parsed as JSON. A body that is not valid JSON throws HttpError(400) with the
    /// parser's message (the App answers `{"error": ..., "status": 400}`); a request whose
    /// Content-Type is present and is not application/json or a `+json` type throws
    /// HttpError(415).
    [[nodiscard]] nlohmann::json json_body() const;
    /// The body parsed as JSON and converted to `T` (its from_json, or nlohmann's
    /// NLOHMANN_DEFINE_TYPE_* macros): json_body()'s 400 and 415, and HttpError(422) with
    /// nlohmann's message (a missing field, a wrong type) when the conversion throws.
    template <class T>
    [[nodiscard]] T json_body_as() const {
        nlohmann::json j = json_body();
        try {
            return std::move(j).get<T>();
        } catch (const nlohmann::json::exception& e) {
            unprocessable_json(e);
        }
    }
    /// Field `name` of an application/x-www-form-urlencoded body (decoded); nullopt when absent
    /// or when the body is not urlencoded.
    [[nodiscard]] std::optional<std::string_view> form_value(std::string_view name);
    /// The multipart/form-data body, parsed on first use within the App's limits (413 / 400 as
    /// HttpError otherwise). Files above AppOptions::multipart_memory_limit go to temporary
    /// files, removed when the request ends. A streamed body (body_streamed()) throws
    /// std::logic_error: use read_multipart().
    [[nodiscard]] const MultipartForm& multipart();
    /// multipart() for any body: a streamed one is parsed as it arrives, file parts written to
    /// their temporary file piece by piece (memory stays bounded by multipart_memory_limit per
    /// part), within AppOptions::multipart_max_body_size.
    runtime::Task<const MultipartForm&> read_multipart();
    /// True when the client accepts `type` ("application/json", parameters allowed) by its
    /// Accept header (RFC 9110 §12.5.1; every Accept line counts): the most specific media
    /// range that matches `type` decides (type/subtype with parameters, then type/subtype,
    /// type/*, */*; equally specific ones: the highest q), and its q must be above 0, so
    /// `application/json;q=0, */*` refuses JSON. A range with parameters matches only a `type`
    /// that has them. An element whose range, parameters or q value is malformed (`q=2`,
    /// `q =0`) is ignored as if absent. A missing or empty header accepts anything.
    [[nodiscard]] bool accepts(std::string_view type) const noexcept;

    // --- the response ----------------------------------------------------------------------
    Context& status(int code) noexcept {
        x_->response.set_status(code);
        return *this;
    }
    [[nodiscard]] int status() const noexcept { return x_->response.status(); }
    /// Replace every response header `name` with one `name: value` (copied). A literal name
    /// that is no token does not compile, another throws (http::FieldName); CR, LF and NUL
    /// in `value` are sent as spaces.
    Context& set_header(http::FieldName name, std::string_view value) {
        x_->response.set_header(name, value);
        return *this;
    }
    /// Add a response header even if the name is present.
    Context& add_header(http::FieldName name, std::string_view value) {
        x_->response.add_header(name, value);
        return *this;
    }
    /// Add a Set-Cookie header.
    Context& set_cookie(const Cookie& cookie);
    /// text/plain; charset=utf-8 body (copied).
    void text(std::string_view body);
    /// text/html; charset=utf-8 body (copied).
    void html(std::string_view body);
    /// application/json body: `value` serialized straight into the pooled body buffer. With
    /// ringwork::web::Json (pool-allocated) building and sending a small object allocates
    /// nothing from the heap in steady state. Invalid UTF-8 in strings becomes U+FFFD.
    void json(const Json& value);
    template <class BasicJson>
        requires nlohmann::detail::is_basic_json<BasicJson>::value
    void json(const BasicJson& value) {
        begin_json();
        write_json(x_->response.body_buffer(), value);
    }
    /// application/json body given as already-serialized text (copied).
    void json_text(std::string_view serialized);
    /// Status (302 by default) and Location; a short HTML body for old clients.
    void redirect(std::string_view location, int code = 302);
    /// Send the file at `path` (MIME type from the extension, Range, conditional GET), as the
    /// static-file middleware does; 404 when it does not exist.
    runtime::Task<> file(std::string path);
    /// Stream the response (chunked): the first call sends the status and headers set so far.
    /// Returns false once the client is gone. A body set before (json, text) throws
    /// std::logic_error at the first call instead of being dropped.
    runtime::Task<bool> write(std::string_view chunk) { return x_->write(chunk); }
    /// Wait until everything written so far has reached the kernel.
    runtime::Task<bool> flush() { return x_->flush(); }
    /// Send one server-sent event and flush it (the first call sets Content-Type
    /// text/event-stream and Cache-Control: no-cache). Returns false once the client is gone,
    /// and, sending nothing, once the server began a graceful shutdown (shutdown_token(): an
    /// endless stream would hold the drain; EventSource clients reconnect with Last-Event-ID).
    /// Each line of `data` (ended by LF, CR or CRLF) goes in its own `data:` field; a CR or LF
    /// in `event` or `id` is sent as a space (it would start another field).
    runtime::Task<bool> sse(SseEvent event);

    // --- per-request values (middleware state) ---------------------------------------------
    /// Construct a T stored under `key` (copied) for this request; destroyed when the request
    /// ends. A value already under `key` is replaced. At most kMaxLocals keys.
    template <class T, class... Args>
    T& emplace_local(std::string_view key, Args&&... args) {
        static_assert(alignof(T) <= alignof(std::max_align_t), "over-aligned local");
        void* memory = runtime::FramePool::allocate(sizeof(T));
        T* value = nullptr;
        try {
            value = ::new (memory) T(std::forward<Args>(args)...);
        } catch (...) {
            runtime::FramePool::deallocate(memory, sizeof(T));
            throw;
        }
        put_local(key, value, &type_tag<T>, [](void* p) noexcept {
            static_cast<T*>(p)->~T();
            runtime::FramePool::deallocate(p, sizeof(T));
        });
        return *value;
    }
    /// The T stored under `key`, or nullptr when absent or of another type.
    template <class T>
    [[nodiscard]] T* local(std::string_view key) const noexcept {
        return static_cast<T*>(find_local(key, &type_tag<T>));
    }
    static constexpr std::size_t kMaxLocals = 8;

    // --- cancellation ----------------------------------------------------------------------
    /// Fires when the request is abandoned (timeout middleware, client gone when the server
    /// can tell, shutdown cut); awaited ringwork operations are cancelled through it already.
    [[nodiscard]] runtime::StopToken stop_token() const noexcept { return stop_; }
    /// Fires when the server begins a graceful shutdown (before any grace period): end an
    /// event stream or a long poll here, and the drain does not wait for it. sse() and
    /// sleep_for() already return false from then on. (A Task given
    /// `.with_stop_token(c.shutdown_token())` is cancelled then, but no longer by
    /// stop_token(): the token replaces the request's own; sleep_for() watches both.)
    [[nodiscard]] runtime::StopToken shutdown_token() const noexcept { return x_->shutdown_token(); }
    /// Sleep `duration` on the reactor's timer wheel, or less: false, at once, when a graceful
    /// shutdown begins (before the call or during the pause), true after the whole pause. The
    /// request's own cancellation (client gone, timeout middleware) throws
    /// runtime::OperationCancelled as any awaited operation does. For event streams and long
    /// polls: `if (!co_await c.sleep_for(1s)) co_return;` lets a drain finish at once.
    runtime::Task<bool> sleep_for(std::chrono::milliseconds duration);

    /// json_body_as()'s 422: "invalid JSON body: " and nlohmann's message without its tag.
    [[noreturn]] static void unprocessable_json(const std::exception& e);

    // --- for the App -------------------------------------------------------------------------
    Params params_;
    std::string_view route_;
    runtime::StopToken stop_;
    /// The compress middleware around this request, if any (Compress::around()).
    const Compress* compress_ = nullptr;
    void begin_json();

private:
    template <class T>
    static constexpr char type_tag = 0;
    // Trivial on purpose: the slots past local_count_ are never read, and a Context is built
    // per request (zeroing the array cost more than the rest of its construction).
    struct Local {
        const char* key;
        std::size_t key_size;
        void* value;
        const void* type;
        void (*destroy)(void*) noexcept;
        [[nodiscard]] bool named(std::string_view k) const noexcept { return std::string_view(key, key_size) == k; }
    };
    void put_local(std::string_view key, void* value, const void* type, void (*destroy)(void*) noexcept);
    [[nodiscard]] void* find_local(std::string_view key, const void* type) const noexcept;

    App* app_;
    http::Exchange* x_;
    std::array<Local, kMaxLocals> locals_; // [0, local_count_) set
    std::uint8_t local_count_ = 0;
    std::string_view ip_;
};

} // namespace ringwork::web
