// SPDX-License-Identifier: MIT
// Server: options, the handler contract and the HTTP/1.1 connection engine on the reactors.
#pragma once

#include <ringwork/http/request.hpp>
#include <ringwork/http/response.hpp>
#include <ringwork/io/runtime.hpp>
#include <ringwork/io/socket.hpp>
#include <ringwork/runtime/counter.hpp>
#include <ringwork/runtime/task.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace ringwork::http {

using std::chrono::milliseconds;

/// \brief A connection's state as reported to ServerOptions::conn_state (fasthttp's ConnState).
enum class ConnState : std::uint8_t {
    new_connection, ///< accepted and handed to a worker (also a connection refused with 503)
    active,         ///< the first byte of a request was read
    idle,           ///< responses queued, waiting for the next request (keep-alive)
    hijacked,       ///< handed to a hijack handler (terminal: no `closed` follows)
    closed,         ///< the connection is over (the descriptor is closed right after the call)
};

/// \brief "new", "active", "idle", "hijacked", "closed".
std::string_view to_string(ConnState state) noexcept;

/// \brief Per-request overrides returned by ServerOptions::header_received (fasthttp's
/// RequestConfig). Zero keeps the server's value.
struct RequestConfig {
    std::size_t max_request_body_size = 0; ///< 413 above; may be larger than the server's
    milliseconds read_timeout{0};          ///< the body must arrive within it from the head's end
    milliseconds write_timeout{0};         ///< a send of this response must complete within it
};

/// \brief A connection taken over by a hijack handler (see Exchange::hijack): raw bytes in
/// both directions, no HTTP. Move-only; reactor thread only.
///
/// Ownership: by default the server still owns the socket and closes it when the hijack
/// handler's Task completes (do not keep the object beyond it). With
/// ServerOptions::keep_hijacked_conns the object owns the socket: move it into a task of your
/// own and `co_await close()` when done (an object destroyed while its socket is open closes
/// it from a detached task).
class HijackedConn {
public:
    /// A view of a socket the server keeps owning (for the connection).
    HijackedConn(io::Socket& socket, std::string already_read) noexcept;
    /// Takes the socket over (keep_hijacked_conns; for the connection).
    HijackedConn(std::unique_ptr<io::Socket> socket, std::string already_read) noexcept;
    HijackedConn(HijackedConn&& other) noexcept;
    HijackedConn& operator=(HijackedConn&& other) = delete;
    HijackedConn(const HijackedConn&) = delete;
    HijackedConn& operator=(const HijackedConn&) = delete;
    ~HijackedConn();

    [[nodiscard]] int fd() const noexcept { return socket_ != nullptr ? socket_->fd() : -1; }
    /// The socket itself (recv() below serves the already-read bytes first: prefer it).
    [[nodiscard]] io::Socket& socket() noexcept { return *socket_; }
    /// Bytes the server had received past the hijacking request (a pipelined or eager client).
    [[nodiscard]] std::string_view already_read() const noexcept { return prefix_; }
    /// True when this object owns the socket (keep_hijacked_conns).
    [[nodiscard]] bool owns_socket() const noexcept { return owned_ != nullptr; }

    /// \brief The next received bytes: the already-read ones first, then the socket's. The view
    /// is valid until the next recv() or the object's end; an empty view means end of stream.
    runtime::Task<io::Result<std::string_view>> recv();
    /// \brief Send all of `data` (MSG_NOSIGNAL).
    io::SendAll send(std::string_view data) noexcept { return socket_->send(data); }
    /// \brief Close the socket now (either mode; the server's own close is then a no-op).
    runtime::Task<> close();

private:
    io::Socket* socket_ = nullptr;
    std::unique_ptr<io::Socket> owned_;
    std::string prefix_;
    bool prefix_taken_ = false;
    io::BufferLease lease_;
};

/// \brief What Exchange::hijack runs once the response is sent (a coroutine on the reactor).
using HijackHandler = std::function<runtime::Task<>(HijackedConn)>;

/// \brief One request/response pair handed to a handler. Pooled per reactor and reset between
/// requests. Reactor thread only; valid until the handler's Task completes.
class Exchange {
public:
    Request request;
    Response response;

    /// Per-request user value slot (middleware state); cleared between requests.
    void* user_value = nullptr;

    /// \brief Stream the response: the first call sends the status and headers set so far,
    /// then `data`. Framing: when the handler set `Content-Length` before the first call, the
    /// body is identity-encoded with that length (downloads, 206 ranges); writing more than
    /// declared throws std::logic_error (nothing of that call is sent), and a response that
    /// ends short of it closes the connection after what was sent (logged). Otherwise chunked
    /// for HTTP/1.1 (one chunk per call) and close-delimited for HTTP/1.0. Returns false once
    /// the client is gone. Nothing is sent for HEAD but the head (with the declared length).
    /// Memory: a piece of 16 KiB or more is sent from `data` itself, not copied (the task
    /// completes once the kernel has it, so `data` must live until then, as it does under
    /// `co_await`); smaller pieces are copied and coalesce until more than 64 KiB wait, so a
    /// stream of any length holds at most two output buffers of ~128 KiB while the client
    /// reads slowly. A body set before the first call (set_body, a JSON or text answer) throws
    /// std::logic_error there instead of being dropped.
    runtime::Task<bool> write(std::string_view data);
    /// \brief Wait until everything written so far has been handed to the kernel.
    runtime::Task<bool> flush();
    /// \brief A trailer field sent after the last chunk (streamed HTTP/1.1 responses only).
    /// The name and value as Response::add_header's.
    void add_trailer(FieldName name, std::string_view value);
    /// \brief Send a 103 Early Hints interim response now with `response`'s Link headers
    /// (ignored for HTTP/1.0 clients, which must never see a 1xx).
    void send_early_hints();
    [[nodiscard]] bool streaming() const noexcept { return streaming_; }
    /// \brief Take the connection over after this response (fasthttp's Hijack): once the
    /// handler returned and the response (e.g. 101 Switching Protocols, whose own `Connection`
    /// header is then kept) has been sent, `handler` runs on the reactor with the raw socket
    /// and the bytes received past this request. The server closes the socket when it
    /// completes unless ServerOptions::keep_hijacked_conns. No HTTP is spoken afterwards.
    void hijack(HijackHandler handler) { hijack_ = std::move(handler); }
    [[nodiscard]] bool hijacked() const noexcept { return static_cast<bool>(hijack_); }
    /// \brief Send the response now, before the handler returns (a deadline answered for it).
    /// The response is sealed (later changes are ignored) and marked Connection: close; the
    /// connection writes it and closes at once while the handler keeps running "into
    /// nothing": the Exchange stays valid until the handler's Task completes, then returns
    /// to the pool. A streamed response whose head is out is just closed. Reactor thread only.
    void respond_now() noexcept;
    [[nodiscard]] bool responded_early() const noexcept { return respond_now_; }
    /// \brief The next piece of a streamed request body (ServerOptions::stream_request_body,
    /// request.body_streamed()): de-chunked bytes as they arrive, an empty view at the end of
    /// the body (and always when the body is not streamed). The view is valid until the next
    /// call. The first call answers a client's `Expect: 100-continue` with 100. Errors (the
    /// connection closes after the response): std::errc::timed_out (read_timeout passed),
    /// std::errc::bad_message (malformed chunked framing), std::errc::connection_aborted (the
    /// client closed mid-body), operation_canceled (the handler's stop token fired), other
    /// socket errors. A handler that returns before the end of the body gets its response
    /// sent with Connection: close (the rest is not read).
    runtime::Task<io::Result<std::string_view>> read_body();

    /// \brief Called when the connection moves the request out of the receive buffer (the
    /// handler suspended for the first time): every view a layer above keeps into
    /// [from, from + len) must be re-pointed at the same offset of `to`. The request's own
    /// views are moved by the connection; the web layer registers its route parameters here.
    using RebaseHook = void (*)(void* self, const char* from, std::size_t len, char* to) noexcept;
    void on_rebase(RebaseHook hook, void* self) noexcept {
        rebase_hook_ = hook;
        rebase_self_ = self;
    }

    /// \brief When the server began reading this request: the reactor's clock at the wake-up
    /// that delivered its first bytes (read once per wake-up, not per request). Durations
    /// from it include the time the request waited behind others of the same batch.
    [[nodiscard]] io::Clock::time_point start_time() const noexcept { return start_time_; }
    /// \brief The same instant as a runtime::CycleClock tick: `CycleClock::now() -
    /// start_ticks()` is the request's age at the cost of one `rdtsc` (metrics, access logs).
    [[nodiscard]] std::uint64_t start_ticks() const noexcept { return start_ticks_; }

    /// \brief The handler's ambient stop token (inside a coroutine handler, also what
    /// `co_await runtime::current_stop_token()` gives): fires when the client resets the
    /// connection while the handler waits, or when a shutdown's grace period ends.
    [[nodiscard]] runtime::StopToken stop_token() const noexcept { return stop_token_; }
    /// \brief Fires when the server begins a graceful shutdown (Server::shutdown(), SIGINT or
    /// SIGTERM), before any grace period: a handler that would run on without end (an event
    /// stream, a long poll) ends here and lets the drain finish. Reactor thread only.
    [[nodiscard]] runtime::StopToken shutdown_token() const noexcept { return shutdown_token_; }

    // --- for the connection --------------------------------------------------------------
    runtime::StopToken stop_token_{};
    runtime::StopToken shutdown_token_{}; ///< the reactor's: set once, when the pool makes it
    io::Clock::time_point start_time_{};
    std::uint64_t start_ticks_ = 0;
    RebaseHook rebase_hook_ = nullptr;
    void* rebase_self_ = nullptr;
    void* connection_ = nullptr;
    HijackHandler hijack_;
    bool streaming_ = false;
    bool respond_now_ = false;          ///< respond_now() was called for this request
    bool stream_known_length_ = false;  ///< streaming identity-encoded with a declared length
    std::uint64_t stream_remaining_ = 0; ///< bytes of the declared length not written yet
    std::vector<Response::Field> trailers_;
    ByteBuffer body_store_; ///< a request body gathered across receive buffers (pooled)
    Arena arena_;
    std::unique_ptr<Header[]> header_storage_;
    std::size_t header_capacity_ = 0;
};

class Server;

/// \brief Server options; names follow fasthttp's Server fields, defaults equal fasthttp's
/// unless noted. Validated when the Server is constructed (an invalid value throws
/// std::invalid_argument naming the field). See docs/configuration.md.
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
    /// The head must arrive within this of its first byte (slowloris defence), and a new
    /// connection's first request must begin within it of the accept; 0 = none.
    milliseconds header_read_timeout{10000};
    milliseconds idle_timeout{0};           ///< keep-alive idle limit; 0 = read_timeout, else none
    /// An idle keep-alive connection idle this long gives its worker, coroutine frames and
    /// Connection state back and waits as a ~0.3 KiB record with the receive armed in the
    /// kernel; its next bytes borrow a worker again. 0 = never park (not in fasthttp).
    milliseconds idle_park_delay{20};
    milliseconds write_timeout{0};          ///< a send must complete within; 0 = none
    milliseconds linger_timeout{1000};      ///< drain after an error response before closing
    bool disable_keepalive = false;
    std::uint64_t max_requests_per_conn = 0;///< 0 = unlimited; last response carries Connection: close
    bool get_only = false;                  ///< 405 for other methods
    bool disable_header_names_normalizing = false;
    bool close_on_shutdown = false;         ///< in-flight responses get Connection: close during shutdown
    /// Grace period of a shutdown (shutdown(), SIGINT/SIGTERM): when it ends, what is still in
    /// flight is cut (its I/O cancelled, its handler's stop token fired, the connection
    /// closed). 0 = no limit: wait for every in-flight request (fasthttp's Shutdown).
    milliseconds shutdown_timeout{0};
    /// Expect: 100-continue: return 100 to go on, or a final status (e.g. 417) to refuse;
    /// a refusal is sent with Connection: close and the body is never read (fasthttp's
    /// ContinueHandler; it plays the role of an ExpectHandler).
    std::function<int(const Request&)> continue_handler;
    /// Customizes the response to a request the server rejects (parse errors, limits, 408,
    /// get_only's 405): `x.response` holds the default answer for `status`, the hook may change
    /// status, headers and body; the request is empty unless its head was parsed. The
    /// connection closes afterwards regardless (fasthttp: ErrorHandler).
    std::function<void(Exchange& x, int status, std::string_view detail)> error_handler;
    /// Called after a request's head is parsed, before its body is read; non-zero fields of
    /// the result override the server's limits for this request (fasthttp: HeaderReceived).
    std::function<RequestConfig(const Request&)> header_received;
    /// Where the server's messages go (handler failures, connection errors, accept failures,
    /// limits); one line per call, without a newline. Default: stderr, "ringwork: " prefixed.
    std::function<void(std::string_view message)> logger;
    /// Also log the common errors: peer resets and broken pipes, unexpected EOF, timeouts,
    /// oversized heads (by default they are not logged).
    bool log_all_errors = false;
    /// Log messages carry no request details (raw target, header values, request bytes).
    bool secure_error_log_message = false;
    /// Called on the reactor thread at each state change of a connection (see ConnState);
    /// `fd` is the connection's descriptor (open during every call). Keep it cheap.
    std::function<void(int fd, ConnState state)> conn_state;
    bool tcp_keepalive = false;             ///< SO_KEEPALIVE on accepted sockets
    milliseconds tcp_keepalive_period{0};   ///< TCP_KEEPIDLE/KEEPINTVL (seconds, rounded up); 0 = OS default
    /// A request whose body is chunked, or whose Content-Length exceeds max_request_body_size,
    /// reaches the handler right after its head instead of being gathered (or refused with
    /// 413): request.body_streamed() is true and Exchange::read_body() yields the body as it
    /// arrives, with no size limit of the server's (fasthttp: StreamRequestBody). Bodies
    /// within the limit are gathered as usual. 100-continue is sent on the first read_body().
    bool stream_request_body = false;
    /// The pools (output, body, carry, spare buffers, frames) are trimmed every
    /// max_idle_worker_duration, not only when workers retire. (Idle keep-alive connections
    /// hold no output or carry buffer either way: they go back to the pools between requests.)
    bool reduce_memory_usage = false;
    /// Bytes per provided receive buffer of the reactors listen_and_serve() starts (power of
    /// two in [256, 1 MiB]). Unlike fasthttp it does not limit the head (see max_header_bytes).
    unsigned read_buffer_size = 4096;
    unsigned ring_entries = 1024;           ///< submission queue entries per reactor (power of two, [16, 32768])
    /// I/O backend of the reactors listen_and_serve() starts: automatic (io_uring, else epoll
    /// with one log line saying why), io_uring (else a start-up error), epoll.
    /// RINGWORK_BACKEND=io_uring|epoll|auto overrides it.
    io::Backend backend = io::Backend::automatic;
    unsigned buffer_count = 1024;           ///< provided receive buffers per reactor (power of two, [1, 32768])
    /// The hijack handler owns the hijacked socket: the server does not close it.
    bool keep_hijacked_conns = false;
    /// TCP listen_and_serve(): this server may join a port that another process of this user
    /// already listens on (every ringwork listener has SO_REUSEPORT, so the kernel then spreads
    /// new connections over both): set it on the *new* process of a restart without a refused
    /// connection (docs/deployment.md). Off: a port that another socket is bound to fails with
    /// EADDRINUSE before any thread starts, as most servers do.
    bool share_port = false;

    void validate() const;
};

/// \brief The server's statistics with fields of type T: std::uint64_t in a snapshot
/// (ServerStats), runtime::Counter in each reactor's own share (written by that reactor only,
/// summed by Server::stats() from any thread without a race).
template <class T>
struct BasicServerStats {
    T connections_accepted{};
    T connections_open{};
    T requests{};
    T parse_errors{};
    T head_copies{};      ///< handler suspended: head copied to the arena
    T carry_copies{};     ///< a request spanned receive buffers
    T exchange_pool_misses{};
    T buffer_pool_misses{};
    T sends{};
    T rejected_concurrency{}; ///< 503: Concurrency reached
    T rejected_per_ip{};      ///< 429: MaxConnsPerIP reached
    T accept_errors{};        ///< accept failures (EMFILE, ENFILE, ENOMEM...): retried after a pause
    T workers_alive{};
    T workers_ready{};
    T workers_busy{};
    T workers_created{};
    T workers_retired{};
    T out_buffers_held{};     ///< output buffers owned by live connections
    T out_buffers_pooled{};   ///< idle output buffers in the pools (at least one per busy connection: its second)
    T carry_buffers_held{};   ///< carry buffers owned by live connections
    T carry_buffers_pooled{}; ///< idle carry buffers in the pools
    T body_bytes_copied{};    ///< response body bytes copied into output buffers
    T body_bytes_zero_copy{}; ///< static body bytes sent from the caller's memory (sendmsg)
    T reset_watches{};        ///< polls armed for a client reset (handler suspended)
    T handlers_cancelled{};   ///< handlers whose stop token fired on a client reset
    T handlers_detached{};    ///< handlers still running after respond_now() sent their answer
    T bodies_streamed{};      ///< requests whose body the handler read with read_body()
    T streamed_bodies_unread{}; ///< ... and returned before its end (connection closed)
    T backlog_accepted{};     ///< connections taken from the listen backlog during shutdown
    T connections_cut{};      ///< connections still in flight when a shutdown's grace period ended
    T connections_parked{};   ///< idle keep-alive connections parked without a worker (now)
    T parks{};                ///< times an idle connection was parked (total)
};
/// \brief A snapshot of the server's statistics (Server::stats()).
using ServerStats = BasicServerStats<std::uint64_t>;

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
    /// \brief Same, accepting from every listener of `listeners` (which must stay alive and
    /// in place until the task completes).
    runtime::Task<> serve(std::span<io::Listener> listeners);
    /// \brief Serve one already-accepted connection to its end.
    runtime::Task<> serve_conn(io::Socket socket);
    /// \brief Start `threads` reactors (0 = one per CPU) and serve `address` until shutdown()
    /// or SIGINT/SIGTERM. TCP: one SO_REUSEPORT listener per reactor, all bound before any
    /// thread starts, so a bad address or a busy port throws here (std::system_error,
    /// EADDRINUSE for a port another socket is bound to, unless share_port). Unix socket
    /// (SocketAddress::unix_path): one socket is bound first (a stale socket file is replaced,
    /// anything else at the path fails the call), every reactor runs a multishot accept on its
    /// own dup() of it, and the file is removed when serving ends.
    /// `on_ready(port)` runs once every listener is ready (port 0 for a Unix socket).
    void listen_and_serve(const io::SocketAddress& address, unsigned threads = 0,
                          std::function<void(std::uint16_t port)> on_ready = {});
    /// \brief Serve listening sockets that are already open (systemd socket activation, a
    /// supervisor): every reactor accepts on its own dup() of each descriptor, and the kernel
    /// hands each connection to one of them. Takes ownership of `fds`: they are closed when
    /// the call returns or throws. Each must be a listening stream socket (TCP or Unix), else
    /// std::invalid_argument naming the fd before anything starts. `on_ready(port)` gets the
    /// first descriptor's port (0 for a Unix socket).
    void listen_and_serve_fds(std::vector<int> fds, unsigned threads = 0,
                              std::function<void(std::uint16_t port)> on_ready = {});
    /// \brief The listening sockets systemd passed to this process (sd_listen_fds): fds 3 to
    /// 3 + LISTEN_FDS - 1 when LISTEN_PID is this process. Marks them close-on-exec and
    /// unsets LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES (call it before starting threads).
    /// Throws std::runtime_error naming the variable when LISTEN_PID or LISTEN_FDS is missing,
    /// malformed or meant for another process.
    static std::vector<int> systemd_listen_fds();
    /// \brief Graceful shutdown: stop accepting (connections already in the listen backlog
    /// are still accepted and their first request served), close idle keep-alive
    /// connections, let in-flight requests finish, within ServerOptions::shutdown_timeout
    /// when set. Thread-safe; returns at once (serve()/listen_and_serve() return when done).
    void shutdown() noexcept;
    /// \brief Same, but whatever is still in flight `grace` after this call is cut: its I/O
    /// is cancelled, its handler's stop token fires and the connection closes (a handler
    /// that ignores its stop token still delays the end until it returns). A second call
    /// cannot lengthen a grace period already running.
    void shutdown(milliseconds grace) noexcept;
    [[nodiscard]] bool shutting_down() const noexcept { return shutting_down_.load(std::memory_order_acquire); }
    /// The grace period in force (shutdown(grace), else ServerOptions::shutdown_timeout), in
    /// ms; -1 = none.
    [[nodiscard]] std::int64_t grace_ms() const noexcept;
    [[nodiscard]] const ServerOptions& options() const noexcept { return options_; }
    /// \brief Counters summed over the reactors (read while serving: approximate). After run()
    /// returns they keep their final values (the gauges of live state, such as
    /// connections_open or workers_alive, read 0), added to by a later run().
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
    friend struct ServerMetricsAccess; // lib/http/server_metrics.cpp: per-reactor figures for scrapes
    ServerOptions options_;
    detail::HandlerRef handler_;
    std::shared_ptr<void> handler_owner_;
    /// listen_and_serve's engine: TCP listeners per reactor on `address` when `fds` is empty,
    /// else a dup() of every fd of `fds` per reactor.
    void run_reactors(const io::SocketAddress& address, const std::vector<int>& fds, unsigned threads,
                      std::function<void(std::uint16_t)>& on_ready);

    std::atomic<bool> shutting_down_{false};
    std::atomic<std::int64_t> grace_ms_{-1}; ///< shutdown(grace); -1 = options_.shutdown_timeout
    io::Runtime* runtime_ = nullptr;
    [[nodiscard]] ServerStats stats_locked() const;
    void end_states_locked();

    mutable std::mutex states_mutex_;
    std::vector<std::unique_ptr<detail::ReactorState>> states_;
    ServerStats ended_{}; ///< what the reactors of ended runs counted (states_mutex_)
};

} // namespace ringwork::http
