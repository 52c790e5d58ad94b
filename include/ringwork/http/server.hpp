// SPDX-License-Identifier: MIT
// Server: options, the handler contract and the HTTP/1.1 connection engine on the reactors.
#pragma once

#include <ringwork/http/request.hpp>
#include <ringwork/http/response.hpp>
#include <ringwork/io/runtime.hpp>
#include <ringwork/io/socket.hpp>
#include <ringwork/runtime/task.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>
#include <memory>
#include <string>
#include <type_traits>

namespace ringwork::http {

using std::chrono::milliseconds;

/// \brief One request/response pair handed to a handler. Pooled per reactor and reset between
/// requests. Reactor thread only; valid until the handler's Task completes.
class Exchange {
public:
    Request request;
    Response response;

    /// Per-request user value slot (middleware state); cleared between requests.
    void* user_value = nullptr;

    /// \brief Stream the response: the first call sends the status and headers set so far
    /// (chunked for HTTP/1.1, close-delimited for HTTP/1.0), then `data` as one chunk.
    /// Returns false once the client is gone. Nothing is sent for HEAD but the head.
    runtime::Task<bool> write(std::string_view data);
    /// \brief Wait until everything written so far has been handed to the kernel.
    runtime::Task<bool> flush();
    /// \brief A trailer field sent after the last chunk (streamed HTTP/1.1 responses only).
    void add_trailer(std::string_view name, std::string_view value);
    /// \brief Send a 103 Early Hints interim response now with `response`'s Link headers
    /// (ignored for HTTP/1.0 clients, which must never see a 1xx).
    void send_early_hints();
    [[nodiscard]] bool streaming() const noexcept { return streaming_; }

    // --- for the connection --------------------------------------------------------------
    void* connection_ = nullptr;
    bool streaming_ = false;
    std::vector<Response::Field> trailers_;
    Arena arena_;
    std::unique_ptr<Header[]> header_storage_;
    std::size_t header_capacity_ = 0;
};

class Server;

/// \brief Server options; names follow fasthttp's Server fields, defaults equal fasthttp's
/// unless noted. Validated when serving starts (an invalid value throws std::invalid_argument
/// naming the field).
struct ServerOptions {
    std::string name = "ringwork";          ///< Server header value (fasthttp: Name)
    std::size_t concurrency = 256 * 1024;   ///< max concurrent connections, all reactors; beyond: 503 and close
    milliseconds max_idle_worker_duration{10000}; ///< the reaper retires workers idle longer
    milliseconds sleep_when_concurrency_limits_exceeded{0}; ///< pause accepting after a 503; 0 = no pause
    std::size_t max_conns_per_ip = 0;       ///< 0 = unlimited; beyond: 429 and close (all reactors)
    bool no_default_server_header = false;
    bool no_default_date = false;
    bool no_default_content_type = false;   ///< else text/plain; charset=utf-8 when a body has no type
    std::size_t max_request_body_size = 4U << 20; ///< 413 above (fasthttp default 4 MiB)
    std::size_t max_request_line = 8192;    ///< 414 above (beyond fasthttp: its own limit)
    std::size_t max_header_bytes = 16384;   ///< 431 above (beyond fasthttp: independent of buffers)
    std::size_t max_headers = 100;          ///< 431 above
    std::size_t write_buffer_size = 4096;   ///< pooled output buffer size per connection with pending output
    milliseconds read_timeout{0};           ///< whole request (head and body) must arrive within; 0 = none
    milliseconds header_read_timeout{10000};///< head must arrive within (slowloris defence); 0 = none
    milliseconds idle_timeout{0};           ///< keep-alive idle limit; 0 = read_timeout, else none
    milliseconds write_timeout{0};          ///< a send must complete within; 0 = none
    milliseconds linger_timeout{1000};      ///< drain after an error response before closing
    bool disable_keepalive = false;
    std::uint64_t max_requests_per_conn = 0;///< 0 = unlimited; last response carries Connection: close
    bool get_only = false;                  ///< 405 for other methods
    bool disable_header_names_normalizing = false;
    bool close_on_shutdown = false;         ///< in-flight responses get Connection: close during shutdown
    /// Expect: 100-continue: return 100 to go on, or a final status (e.g. 417) to refuse.
    std::function<int(const Request&)> continue_handler;

    void validate() const;
};

/// \brief Counters of one reactor's share of a server (summed by Server::stats()).
struct ServerStats {
    std::uint64_t connections_accepted = 0;
    std::uint64_t connections_open = 0;
    std::uint64_t requests = 0;
    std::uint64_t parse_errors = 0;
    std::uint64_t head_copies = 0;      ///< handler suspended: head copied to the arena
    std::uint64_t carry_copies = 0;     ///< a request spanned receive buffers
    std::uint64_t exchange_pool_misses = 0;
    std::uint64_t buffer_pool_misses = 0;
    std::uint64_t sends = 0;
    std::uint64_t rejected_concurrency = 0; ///< 503: Concurrency reached
    std::uint64_t rejected_per_ip = 0;      ///< 429: MaxConnsPerIP reached
    std::uint64_t workers_alive = 0;
    std::uint64_t workers_ready = 0;
    std::uint64_t workers_busy = 0;
    std::uint64_t workers_created = 0;
    std::uint64_t workers_retired = 0;
};

namespace detail {
class PerIpTable;
struct HandlerRef {
    using Async = runtime::Task<> (*)(void* self, Exchange& x);
    using Sync = void (*)(void* self, Exchange& x);
    Async async = nullptr;
    Sync sync = nullptr;
    void* self = nullptr;
};
class ReactorState;
} // namespace detail

/// \brief The HTTP/1.1 server: one engine shared by the reactors, per-reactor pools and
/// connections (share nothing on the request path).
class Server {
public:
    explicit Server(ServerOptions options = {});
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    /// \brief Set the handler: a callable taking `Exchange&` and returning `Task<>` or void.
    /// Called before serving; the callable is stored for the server's lifetime.
    template <class F>
    void set_handler(F f) {
        auto holder = std::make_shared<F>(std::move(f));
        detail::HandlerRef ref;
        ref.self = holder.get();
        if constexpr (std::is_void_v<std::invoke_result_t<F&, Exchange&>>) {
            ref.sync = [](void* self, Exchange& x) { (*static_cast<F*>(self))(x); };
        } else {
            ref.async = [](void* self, Exchange& x) -> runtime::Task<> { return (*static_cast<F*>(self))(x); };
        }
        handler_ = ref;
        handler_owner_ = std::move(holder);
    }

    /// \brief Accept and serve connections from `listener` on the calling reactor until
    /// shutdown; then close the listener and wait for this reactor's connections to finish.
    runtime::Task<> serve(io::Listener& listener);
    /// \brief Serve one already-accepted connection to its end.
    runtime::Task<> serve_conn(io::Socket socket);
    /// \brief Start `threads` reactors (0 = one per CPU), each with its own SO_REUSEPORT
    /// listener on `address`, and serve until shutdown() or SIGINT/SIGTERM.
    /// `on_ready(port)` runs once every listener is bound (tests, "listening on" messages).
    void listen_and_serve(const io::SocketAddress& address, unsigned threads = 0,
                          std::function<void(std::uint16_t port)> on_ready = {});
    /// \brief Graceful shutdown: stop accepting, close idle keep-alive connections, let
    /// in-flight requests finish. Thread-safe.
    void shutdown() noexcept;
    [[nodiscard]] bool shutting_down() const noexcept { return shutting_down_.load(std::memory_order_acquire); }
    [[nodiscard]] const ServerOptions& options() const noexcept { return options_; }
    /// \brief Counters summed over the reactors (read while serving: approximate).
    [[nodiscard]] ServerStats stats() const;

    // --- internal -------------------------------------------------------------------------
    [[nodiscard]] const detail::HandlerRef& handler() const noexcept { return handler_; }
    detail::ReactorState& state_for_current_reactor();
    /// \brief Last-use times of the ready workers of every reactor, each list bottom (oldest)
    /// first. Asks each reactor thread and waits for the answers (tests, diagnostics).
    [[nodiscard]] std::vector<std::vector<io::Clock::time_point>> ready_workers() const;
    /// Connections open across every reactor (fasthttp's GetOpenConnectionsCount).
    [[nodiscard]] std::uint64_t open_connections() const noexcept { return open_.load(std::memory_order_relaxed); }
    std::atomic<std::uint64_t> open_{0}; ///< touched once per accept and once per close
    std::unique_ptr<detail::PerIpTable> per_ip_;

private:
    ServerOptions options_;
    detail::HandlerRef handler_;
    std::shared_ptr<void> handler_owner_;
    std::atomic<bool> shutting_down_{false};
    io::Runtime* runtime_ = nullptr;
    mutable std::mutex states_mutex_;
    std::vector<std::unique_ptr<detail::ReactorState>> states_;
};

} // namespace ringwork::http
