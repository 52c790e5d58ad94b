// SPDX-License-Identifier: MIT
// The HTTP/1.1 connection engine: read, parse in place, dispatch, batch responses, close.
#include <ringwork/http/server.hpp>

#include "http/chars.hpp"
#include "http/fields.hpp"
#include "http/per_ip.hpp"
#include "http/reactor_state.hpp"
#include "io/reactor_impl.hpp"

#include <ringwork/io/timer.hpp>
#include <ringwork/runtime/frame_pool.hpp>
#include <ringwork/runtime/when.hpp>

#include <fmt/format.h>

#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <memory>
#include <cstdlib>
#include <stdexcept>

namespace ringwork::http {

void ServerOptions::validate() const {
    auto fail = [](std::string_view field, std::string_view why) {
        throw std::invalid_argument(fmt::format("ServerOptions.{}: {}", field, why));
    };
    // fasthttp reads 0 as "the default" for these two; here it would refuse every connection
    // or every body, so it is an error rather than a surprise.
    if (concurrency == 0) {
        fail("concurrency", "must be at least 1 (fasthttp's 0 means its default, 256 Ki: leave ringwork's)");
    }
    if (max_request_body_size == 0 && !stream_request_body && !header_received) {
        // (With stream_request_body 0 streams every body; with header_received it is a
        // deny-by-default limit that a route raises.)
        fail("max_request_body_size", "0 would refuse every request body (fasthttp's 0 means its default, 4 MiB)");
    }
    if (max_request_line < 16) {
        fail("max_request_line", "must be at least 16 bytes");
    }
    if (max_header_bytes < 64) {
        fail("max_header_bytes", "must be at least 64 bytes");
    }
    if (max_headers == 0 || max_headers > 10000) {
        fail("max_headers", "must be in [1, 10000]");
    }
    if (write_buffer_size < 256) {
        fail("write_buffer_size", "must be at least 256 bytes");
    }
    if (name.find_first_of("\r\n") != std::string::npos) {
        fail("name", "must not contain CR or LF");
    }
    for (auto [field, v] : {std::pair{"read_timeout", read_timeout}, std::pair{"header_read_timeout", header_read_timeout},
                            std::pair{"idle_timeout", idle_timeout}, std::pair{"write_timeout", write_timeout},
                            std::pair{"idle_park_delay", idle_park_delay},
                            std::pair{"linger_timeout", linger_timeout},
                            std::pair{"shutdown_timeout", shutdown_timeout}}) {
        if (v.count() < 0) {
            fail(field, "must not be negative");
        }
    }
    if (tcp_keepalive_period.count() < 0 || tcp_keepalive_period > std::chrono::seconds(32767)) {
        fail("tcp_keepalive_period", "must be in [0, 32767 s]");
    }
    auto pow2_in = [&fail](std::string_view field, unsigned v, unsigned lo, unsigned hi, std::string_view range) {
        if (v < lo || v > hi || (v & (v - 1)) != 0) {
            fail(field, fmt::format("{} is not a power of two in {}", v, range));
        }
    };
    pow2_in("read_buffer_size", read_buffer_size, 256, 1U << 20, "[256, 1 MiB]");
    pow2_in("ring_entries", ring_entries, 16, 32768, "[16, 32768]");
    pow2_in("buffer_count", buffer_count, 1, 32768, "[1, 32768]");
}

std::string_view to_string(ConnState state) noexcept {
    switch (state) {
    case ConnState::new_connection:
        return "new";
    case ConnState::active:
        return "active";
    case ConnState::idle:
        return "idle";
    case ConnState::hijacked:
        return "hijacked";
    case ConnState::closed:
        return "closed";
    }
    return "unknown";
}

namespace detail {

/// The message of an exception for the log (what() or a placeholder).
std::string describe_exception(const std::exception_ptr& error);
std::string describe_exception(const std::exception_ptr& error) {
    try {
        std::rethrow_exception(error);
    } catch (const std::exception& e) {
        return e.what();
    } catch (...) {
        return "a non-standard exception";
    }
}

// -----------------------------------------------------------------------------------------
// ReactorState

ReactorState::ShutdownWork::ShutdownWork(ReactorState* s) noexcept
    : RemoteWork([](RemoteWork* w) noexcept {
        auto* self = static_cast<ShutdownWork*>(w);
        self->queued.store(false, std::memory_order_release); // a later shutdown(grace) posts again
        self->state->begin_shutdown();
    })
    , state(s) {}

ReactorState::ReactorState(Server& s, io::Reactor& r)
    : server(s), reactor(r), options(s.options()), out_pool(s.options().write_buffer_size), body_pool(4096)
    , carry_pool(4096)
    , date(s.options().no_default_server_header ? std::string_view{} : std::string_view(s.options().name))
    , workers(*this, s.options().concurrency) {
    grace_timer.st = this;
    grace_timer.fire_ = [](io::TimerNode* n) noexcept { static_cast<GraceTimer*>(n)->st->cut_connections(); };
}

Exchange* ReactorState::take_exchange() {
    Exchange* x = take_exchange_slot();
    // The wake-up's time, not a clock read per request (~30 ns under kvm-clock, 4 % of a
    // pipelined request): a request counts from when its first bytes arrived.
    const io::detail::ReactorImpl& impl = io::detail::current_impl();
    x->start_time_ = impl.now();
    x->start_ticks_ = impl.wake_ticks();
    return x;
}

Exchange* ReactorState::take_exchange_slot() {
    if (!free_exchanges_.empty()) {
        Exchange* x = free_exchanges_.back().release();
        free_exchanges_.pop_back();
        return x;
    }
    ++stats.exchange_pool_misses;
    auto x = std::make_unique<Exchange>();
    x->header_capacity_ = options.max_headers;
    x->header_storage_ = std::make_unique<Header[]>(options.max_headers);
    x->request.arena_ = &x->arena_;
    x->response.attach(&x->arena_, &body_pool);
    x->shutdown_token_ = runtime::StopToken(shutdown); // exchanges never leave their reactor
    free_exchanges_.reserve(free_exchanges_.size() + 1);
    return x.release();
}

void ReactorState::log(std::string_view message) const noexcept {
    try {
        if (options.logger) {
            options.logger(message);
        } else {
            fmt::print(stderr, "ringwork: {}\n", message);
        }
    } catch (...) { // NOLINT(bugprone-empty-catch): a failing logger must not take a connection down
    }
}

void ReactorState::notify_state_slow(int fd, ConnState state) const noexcept {
    std::string failure;
    try {
        options.conn_state(fd, state);
        return;
    } catch (const std::exception& e) {
        failure = e.what();
    } catch (...) {
        failure = "a non-standard exception";
    }
    log(fmt::format("conn_state callback failed: {}", failure));
}

ReactorState::~ReactorState() {
    assert(parked == nullptr && "a reactor's share destroyed with parked connections");
    trim_records();
}

ConnRecord* ReactorState::take_record() {
    if (!free_records_.empty()) {
        ConnRecord* rec = free_records_.back();
        free_records_.pop_back();
        return rec;
    }
    auto rec = std::make_unique<ConnRecord>();
    rec->st = this;
    rec->fire = [](io::Socket::ReadyHook* h) noexcept {
        auto* r = static_cast<ConnRecord*>(h);
        r->st->unlink_parked(r);
        r->st->workers.resume(r); // bytes, end of stream or an error: a worker reads them
    };
    rec->idle_timer.rec = rec.get();
    rec->idle_timer.fire_ = [](io::TimerNode* n) noexcept {
        ConnRecord* r = static_cast<ConnRecord::IdleTimer*>(n)->rec;
        r->st->close_parked(r);
    };
    if (free_records_.capacity() < ++records_made_) {
        free_records_.reserve(2 * records_made_); // give_record() never allocates
    }
    return rec.release();
}

void ReactorState::give_record(ConnRecord* rec) noexcept {
    assert(!rec->parked && !rec->idle_timer.linked());
    // A fresh socket (every field, not only what a move carries); closes a descriptor still
    // open (never armed here).
    std::destroy_at(&rec->socket);
    std::construct_at(&rec->socket);
    rec->ip = IpKey{};
    rec->requests = 0;
    rec->may_park = true;
    rec->opened = false;
    free_records_.push_back(rec); // NOLINT: capacity reserved in take_record()
}

void ReactorState::trim_records() noexcept {
    records_made_ -= free_records_.size();
    for (ConnRecord* rec : free_records_) {
        delete rec; // NOLINT: pooled raw records
    }
    free_records_.clear(); // capacity kept: records in use come back without allocating
}

void ReactorState::park(ConnRecord* rec, milliseconds idle_left) noexcept {
    rec->parked = true;
    rec->prev = nullptr;
    rec->next = parked;
    if (parked != nullptr) {
        parked->prev = rec;
    }
    parked = rec;
    ++parked_count;
    ++stats.connections_parked;
    if (idle_left.count() > 0) {
        io::detail::ReactorImpl& impl = io::detail::current_impl();
        impl.timers().add(rec->idle_timer, io::detail::ReactorImpl::to_tick_ceil(impl.now() + idle_left));
    }
    if (!rec->socket.notify_when_ready(rec)) {
        unlink_parked(rec); // bytes arrived since the check: serve them at once
        workers.resume(rec);
    }
}

void ReactorState::unlink_parked(ConnRecord* rec) noexcept {
    assert(rec->parked);
    rec->parked = false;
    (rec->prev != nullptr ? rec->prev->next : parked) = rec->next;
    if (rec->next != nullptr) {
        rec->next->prev = rec->prev;
    }
    rec->next = rec->prev = nullptr;
    --parked_count;
    --stats.connections_parked;
    io::detail::current_impl().timers().remove(rec->idle_timer);
    rec->socket.cancel_notify();
}

namespace {
runtime::Task<> close_parked_conn(ReactorState* st, ConnRecord* rec) {
    st->notify_state(rec->socket.fd(), ConnState::closed);
    co_await rec->socket.close();
    st->connection_closed(rec->ip);
    st->give_record(rec);
}
} // namespace

void ReactorState::close_parked(ConnRecord* rec) noexcept {
    unlink_parked(rec);
    // The descriptor closes through the ring once the armed receive has ended (a coroutine;
    // counted in `active` until then, so a shutdown waits for it).
    reactor.spawn(close_parked_conn(this, rec).with_stop_token(runtime::StopToken(cut)));
}

void ReactorState::connection_closed(const IpKey& ip) noexcept {
    --stats.connections_open;
    server.open_.fetch_sub(1, std::memory_order_relaxed);
    if (ip.known()) {
        server.per_ip_->release(ip);
    }
    if (--active == 0 && drained_waiter) {
        reactor.impl().schedule(std::exchange(drained_waiter, nullptr));
    }
}

void ReactorState::give_exchange(Exchange* x) noexcept {
    x->hijack_ = nullptr;
    x->rebase_hook_ = nullptr;
    x->rebase_self_ = nullptr;
    x->streaming_ = false;
    x->respond_now_ = false;
    x->stream_known_length_ = false;
    x->stream_remaining_ = 0;
    x->trailers_.clear();
    x->connection_ = nullptr;
    x->stop_token_ = {};
    x->request.reset();
    x->response.reset();
    x->arena_.reset();
    x->user_value = nullptr;
    if (x->body_store_.capacity() != 0) {
        body_pool.give(std::move(x->body_store_));
        x->body_store_ = ByteBuffer();
    }
    free_exchanges_.emplace_back(x); // capacity reserved in take_exchange(): no allocation
}

// -----------------------------------------------------------------------------------------
// Connection

/// One connection's state; lives in the serve_conn coroutine frame.
class Connection {
public:
    /// Serve `rec`'s connection: a new one, or a parked one whose next bytes arrived.
    Connection(ReactorState& st, ConnRecord& rec);
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    runtime::Task<> run();
    /// run() ended by parking the idle connection (its record waits without this object).
    [[nodiscard]] bool parked() const noexcept { return parked_; }
    runtime::Task<> finish();
    /// After finish(): wait for a handler whose response went out early (respond_now) to
    /// return, then give its exchange back.
    runtime::Task<> join_detached();
    /// Exchange::respond_now(): wake run() if it is waiting for the handler.
    void respond_now(Exchange& x) noexcept;
    /// Exchange::read_body(): the next piece of a streamed request body.
    runtime::Task<io::Result<std::string_view>> stream_read(Exchange& x);

    // --- streaming (called through Exchange) --------------------------------------------
    runtime::Task<bool> stream_write(Exchange& x, std::string_view data);
    runtime::Task<bool> stream_flush();
    void stream_end(Exchange& x);
    void early_hints(Exchange& x);

    /// The shutdown's grace period ended: stop reading and writing, fire the handler's stop
    /// token; run() and finish() then close without lingering (the worker's I/O observes
    /// ReactorState::cut too).
    void cut() noexcept;

    Connection* next_ = nullptr;
    Connection* prev_ = nullptr;
    bool idle_ = true; ///< waiting for the first byte of a request (shutdown may close it)
    /// Shutdown began: an idle keep-alive connection closes at once; a new one waiting for
    /// its first request gets at most header_read_timeout more to send it.
    void shutdown_began() noexcept;
    runtime::StopSource read_stop_; ///< fires on read deadlines and idle shutdown

private:
    // --- reading -------------------------------------------------------------------------
    runtime::Task<io::Result<io::BufferLease>> receive(milliseconds limit);
    /// Time left before the earliest of the request's deadlines (0 = none, negative = passed).
    milliseconds remaining(milliseconds head_limit, milliseconds request_limit) const noexcept {
        const auto now = io::Clock::now();
        milliseconds best{0};
        for (const milliseconds t : {head_limit, request_limit}) {
            if (t.count() > 0) {
                auto left = std::chrono::ceil<milliseconds>(request_start_ + t - now);
                if (left.count() <= 0) {
                    return milliseconds(-1);
                }
                if (best.count() == 0 || left < best) {
                    best = left;
                }
            }
        }
        return best;
    }
    /// Time left before `deadline` (negative = passed).
    static milliseconds until(io::Clock::time_point deadline) noexcept {
        const auto left = std::chrono::ceil<milliseconds>(deadline - io::Clock::now());
        return left.count() <= 0 ? milliseconds(-1) : left;
    }
    io::Clock::time_point request_start_{};
    io::Clock::time_point body_deadline_{}; ///< header_received's read_timeout; epoch = none
    std::size_t body_limit_ = 0;            ///< this request's max body size
    milliseconds write_timeout_{0};         ///< this response's write timeout
    bool window_from_carry() const noexcept { return !lease_.holds_buffer(); }
    /// The unparsed rest of the window.
    std::string_view unparsed() const noexcept {
        const std::string_view w = window_from_carry() ? carry_.view() : lease_.view();
        return pos_ < w.size() ? w.substr(pos_) : std::string_view{};
    }
    void to_carry();
    void rebase_head(RequestHead& head, const char* from, std::size_t len, char* to) noexcept;
    runtime::Task<bool> read_body(Exchange& x);
    /// stream_request_body: hand the body to the handler unread (head kept in the arena).
    void start_body_stream(Exchange& x, bool continue_pending);
    // --- writing -------------------------------------------------------------------------
    void queue_flush() noexcept { st_.reactor.defer(&flush_work_); }
    static void on_flush(io::Deferred* d) noexcept;
    void start_send() noexcept;
    static void on_send(io::Operation* op, int res, std::uint32_t flags) noexcept;
    runtime::Task<> drain_output();
    /// Answer `status` (default body, or error_handler's) and close after a lingering drain.
    /// `x` may be null; `head_complete` says whether its head views are a parsed head; `raw`
    /// is the offending request's bytes when still at hand (for the log).
    void respond_error(int status, std::string_view detail, Exchange* x, bool head_complete, std::string_view raw);
    void custom_error(int status, std::string_view detail, Exchange* x, bool head_complete, bool head_request);
    /// error_handler on a prepared default response (a throwing hook leaves the default).
    void call_error_handler(Exchange& x, int status, std::string_view detail);
    /// `head_request`: answer as to HEAD although the request is not (one reset after a failed head).
    void write_response(Exchange& x, bool close, bool head_request = false);

    void ensure_pending() {
        if (pending_.capacity() == 0) {
            const bool first = sending_.capacity() == 0;
            if (first) {
                st_.reserve_for_new_out_holder(); // the first of its two: the second waits in the pool
            }
            pending_ = st_.out_pool.take();
            ++st_.out_held;
            if (first) {
                ++st_.out_holders;
            }
        }
    }
    void give_out(ByteBuffer& b) {
        if (b.capacity() != 0) {
            const bool kept = st_.out_pool.give(std::move(b));
            b = ByteBuffer();
            --st_.out_held;
            if (pending_.capacity() == 0 && sending_.capacity() == 0) {
                --st_.out_holders;
            } else if (!kept) {
                st_.restore_out_reserve(); // freed (grown too big): this connection's second comes back
            }
        }
    }
    void give_carry() {
        if (carry_.capacity() != 0) {
            st_.carry_pool.give(std::move(carry_));
            carry_ = ByteBuffer();
            --st_.carry_held;
        }
    }
    /// An idle connection gives its buffers back to the pools (once nothing is in flight).
    void release_idle_buffers();
    // --- state, logging ------------------------------------------------------------------
    void set_state(ConnState s) noexcept {
        if (s != state_) {
            state_ = s;
            st_.notify_state(socket_->fd(), s);
        }
    }
    /// "local<->peer" (two syscalls: error paths only).
    std::string endpoints() const;
    /// A connection-level error; `common` ones are logged only with log_all_errors.
    void log_error(std::string_view what, bool common);
    /// Request details for a log line (none under secure_error_log_message but the method).
    std::string request_details(const Exchange* x, bool head_complete, std::string_view raw) const;
    // --- handlers ------------------------------------------------------------------------
    /// Runs the handler until it returns or first suspends. True when it is done (its
    /// failure, if any, already turned into the response); false when it suspended, with its
    /// task in `task`: join_handler() then waits for it.
    bool start_handler(Exchange& x, runtime::Task<>& task);
    runtime::Task<> join_handler(Exchange& x, runtime::Task<> task);
    /// A handler's exception: a 500 answer, or none when the client or the shutdown cut it.
    void finish_handler(Exchange& x, const std::exception_ptr& error);
    RequestConfig request_config(Exchange& x);
    runtime::Task<> hijack(HijackHandler handler);

    ReactorState& st_;
    ConnRecord* rec_;            ///< the connection's lasting part (socket, address, count)
    std::unique_ptr<io::Socket> heap_socket_; ///< keep_hijacked_conns: may outlive the connection
    io::Socket* socket_;         ///< &rec_->socket or heap_socket_
    bool parked_ = false;        ///< run() parked the connection: the destructor hands rec_ over
    milliseconds park_left_{0};  ///< the rest of its idle limit (0 = none)
    /// Idle past idle_park_delay: may the connection give this object and its worker back?
    [[nodiscard]] bool can_park() const noexcept;
    io::SocketAddress peer_{};   ///< the peer, once a request asked (Request::remote_address)
    ConnState state_ = ConnState::new_connection;
    bool hijacked_ = false;
    RequestParser parser_;
    io::BufferLease lease_;      ///< current receive buffer (window when it holds one)
    ByteBuffer carry_;           ///< window when lease_ is empty; pooled, released when empty
    std::size_t pos_ = 0;        ///< parse position in the window
    bool closing_ = false;
    bool lingering_ = false;
    bool close_planned_ = false; ///< the current response will carry Connection: close

    // Client reset while a handler is suspended: a poll for POLLERR|POLLHUP (armed only when
    // the handler suspends) fires handler_stop_, the handler's ambient stop token.
    runtime::StopSource handler_stop_;
    // A handler suspended: its frame, and join_handler() waiting for it (Join).
    std::coroutine_handle<runtime::Task<>::promise_type> running_handler_{};
    std::coroutine_handle<> join_waiter_{};
    // A handler that outlived its response (respond_now) and the exchange it still uses.
    runtime::Task<> detached_handler_;
    Exchange* detached_exchange_ = nullptr;

    // A request body the handler reads itself (stream_request_body); the window holds its
    // next bytes from pos_.
    struct BodyStream {
        Exchange* x = nullptr;       ///< the request being streamed; null: none
        bool chunked = false;
        bool done = false;
        bool continue_pending = false; ///< send 100 Continue before the first receive
        std::error_code failed;      ///< sticky: the stream broke, the connection closes
        std::uint64_t remaining = 0; ///< Content-Length bytes not yet handed out
        ChunkedDecoder decoder{8192};
    } in_stream_;
    struct WatchOp : io::Operation {
        explicit WatchOp(Connection* c) noexcept : Operation(&on_watch), conn(c) {}
        Connection* conn;
    } watch_op_{this};
    bool watching_ = false;       ///< the poll is in the kernel
    bool watch_cancelled_ = false;///< a cancel for it was submitted
    bool handler_running_ = false;///< a suspended handler may be cancelled
    bool peer_reset_ = false;     ///< the poll saw a reset or error
    std::coroutine_handle<> watch_waiter_{};
    void arm_watch() noexcept;
    void cancel_watch() noexcept;
    static void on_watch(io::Operation* op, int res, std::uint32_t flags) noexcept;
    runtime::Task<> end_watch();

    // Output: `pending_` fills while `sending_` is in the kernel (double buffering).
    ByteBuffer pending_;
    ByteBuffer sending_;
    // Large static bodies are not copied: each is a segment of caller memory that goes out
    // after the first `at` bytes of its buffer (sendmsg with an iovec, in order).
    static constexpr std::size_t kZeroCopyMin = 16 * 1024;
    static constexpr std::size_t kMaxSegments = 8;
    /// Copied output a handler's Exchange::write() may leave queued before it waits for the
    /// client (per buffer; two exist while one is in the kernel).
    static constexpr std::size_t kStreamHighWater = 64 * 1024;
    struct Segment {
        std::size_t at;
        const char* data;
        std::size_t len;
    };
    struct Segments {
        std::array<Segment, kMaxSegments> items{};
        std::size_t count = 0;
        std::size_t bytes = 0;
    };
    Segments pending_segs_;
    Segments sending_segs_;
    std::array<iovec, 2 * kMaxSegments + 1> send_iov_{};
    std::size_t send_iov_first_ = 0;
    std::size_t send_iov_count_ = 0;
    msghdr send_msg_{};
    void submit_send() noexcept;
    /// Queue a body after what `pending_` holds: sent from the caller's memory (a segment) when
    /// `may_reference`, large enough and a segment is free, else copied. True for a segment.
    bool queue_body(std::string_view body, bool may_reference) {
        if (may_reference && body.size() >= kZeroCopyMin && pending_segs_.count < kMaxSegments) {
            pending_segs_.items[pending_segs_.count++] = Segment{pending_.size(), body.data(), body.size()};
            pending_segs_.bytes += body.size();
            st_.stats.body_bytes_zero_copy += body.size();
            return true;
        }
        pending_.append(body);
        st_.stats.body_bytes_copied += body.size();
        return false;
    }
    /// Bytes queued in `pending_` and its segments (backpressure).
    [[nodiscard]] std::size_t pending_bytes() const noexcept { return pending_.size() + pending_segs_.bytes; }
    struct SendOp : io::Operation {
        explicit SendOp(Connection* c) noexcept : Operation(&on_send), conn(c) {}
        Connection* conn;
        std::size_t done = 0;
    } send_op_{this};
    bool send_inflight_ = false;
    int send_error_ = 0;
    /// Coroutines waiting for the output to drain: a handler's write and, once respond_now()
    /// detached that handler, the connection's own finish() may both wait (an intrusive list
    /// through their awaiters; all are woken together).
    struct DrainWaiter {
        std::coroutine_handle<> handle;
        DrainWaiter* next = nullptr;
    };
    DrainWaiter* drain_waiters_ = nullptr;
    void wake_drain_waiters() noexcept;
    struct FlushWork : io::Deferred {
        explicit FlushWork(Connection* c) noexcept : Deferred(&on_flush), conn(c) {}
        Connection* conn;
    } flush_work_{this};

    // Deadlines: one wheel node for the read side, one for the write side.
    struct ReadTimer : io::TimerNode {
        Connection* conn = nullptr;
    } read_timer_;
    struct WriteTimer : io::TimerNode {
        Connection* conn = nullptr;
    } write_timer_;
    bool timed_out_ = false;
};

// The state a busy or idle keep-alive connection keeps (in its worker's serve_connection frame):
// 1,792 bytes on x86-64 with libstdc++ 12. Growing it grows every connection's memory; the
// issue 7 target for an idle connection is 0.5 KiB, so this budget only ever goes down.
static_assert(sizeof(Connection) <= 1792, "Connection grew: every open connection pays for it");

Connection::Connection(ReactorState& st, ConnRecord& rec)
    : st_(st), rec_(&rec), socket_(&rec.socket) {
    if (st.options.keep_hijacked_conns && !rec.opened) {
        // A hijack handler may keep the socket after the connection is gone, and an armed
        // Socket cannot move: it lives on the heap from the start (one allocation per
        // connection; such a connection never parks).
        heap_socket_ = std::make_unique<io::Socket>(std::move(rec.socket));
        socket_ = heap_socket_.get();
    }
    body_limit_ = st.options.max_request_body_size;
    write_timeout_ = st.options.write_timeout;
    ParserLimits limits;
    limits.max_request_line = st.options.max_request_line;
    limits.max_header_bytes = st.options.max_header_bytes;
    limits.max_headers = st.options.max_headers;
    limits.normalize_header_names = !st.options.disable_header_names_normalizing;
    parser_ = RequestParser(limits);
    read_timer_.conn = this;
    read_timer_.fire_ = [](io::TimerNode* n) noexcept {
        auto* c = static_cast<ReadTimer*>(n)->conn;
        c->timed_out_ = true;
        c->read_stop_.request_stop();
    };
    write_timer_.conn = this;
    write_timer_.fire_ = [](io::TimerNode* n) noexcept {
        auto* c = static_cast<WriteTimer*>(n)->conn;
        if (c->send_inflight_) {
            io::detail::current_impl().cancel(&c->send_op_);
        }
    };
    // Link into the reactor's list (shutdown closes idle connections).
    next_ = st.connections;
    if (next_ != nullptr) {
        next_->prev_ = this;
    }
    st.connections = this;
    if (rec.opened) {
        state_ = ConnState::idle; // a parked connection's next request: still the same connection
        return;
    }
    rec.opened = true;
    ++st.active;
    ++st.stats.connections_open;
    ++st.stats.connections_accepted;
    st.notify_state(socket_->fd(), ConnState::new_connection);
}

Connection::~Connection() {
    auto& timers = io::detail::current_impl().timers();
    timers.remove(read_timer_);
    timers.remove(write_timer_);
    st_.reactor.cancel_deferred(&flush_work_);
    lease_.release();
    give_carry();
    give_out(pending_);
    give_out(sending_);
    (prev_ != nullptr ? prev_->next_ : st_.connections) = next_;
    if (next_ != nullptr) {
        next_->prev_ = prev_;
    }
    if (parked_) {
        st_.park(rec_, park_left_); // the record waits for the next bytes without this object
        return;
    }
    heap_socket_.reset(); // closed by finish(), or taken by a hijack handler
    st_.connection_closed(rec_->ip);
    st_.give_record(rec_);
}

bool Connection::can_park() const noexcept {
    return rec_->may_park && !heap_socket_ && !hijacked_ && !closing_ && !send_inflight_ && send_error_ == 0 &&
           pending_bytes() == 0 && drain_waiters_ == nullptr && !detached_handler_.valid() && !watching_ &&
           in_stream_.x == nullptr && !lease_.holds_buffer() && carry_.empty() && socket_->queued() == 0 &&
           !st_.shutdown.stop_requested();
}

runtime::Task<io::Result<io::BufferLease>> Connection::receive(milliseconds limit) {
    if (st_.cut.stop_requested()) { // read_stop_ is reset below: the cut must be checked first
        co_return std::make_error_code(std::errc::operation_canceled);
    }
    io::detail::ReactorImpl& impl = io::detail::current_impl();
    if (limit.count() > 0) {
        // From the loop pass's wake-up time, not a clock read (~30 ns under kvm-clock, once per
        // idle wait now that idle_park_delay arms this timer): at most one pass early.
        impl.timers().add(read_timer_, io::detail::ReactorImpl::to_tick_ceil(impl.now() + limit));
    }
    read_stop_.reset();
    timed_out_ = false;
    auto r = co_await socket_->recv(runtime::StopToken(read_stop_));
    impl.timers().remove(read_timer_);
    co_return r;
}

void Connection::to_carry() {
    // Move the unparsed rest of the lease into the carry buffer and give the lease back.
    if (!lease_.holds_buffer()) {
        return;
    }
    const std::string_view rest = lease_.view().substr(pos_);
    if (!rest.empty()) {
        if (carry_.capacity() == 0) {
            carry_ = st_.carry_pool.take();
            ++st_.carry_held;
        }
        carry_.clear();
        carry_.append(rest);
        ++st_.stats.carry_copies;
    }
    pos_ = 0;
    lease_.release();
}

void Connection::rebase_head(RequestHead& head, const char* from, std::size_t len, char* to) noexcept {
    auto move = [&](std::string_view& v) {
        if (v.data() >= from && v.data() < from + len) {
            v = std::string_view(to + (v.data() - from), v.size());
        }
    };
    move(head.method_text);
    move(head.target);
    move(head.path);
    move(head.query);
    move(head.host);
    for (Header& h : head.headers) {
        move(h.name);
        move(h.value);
    }
}

void Connection::arm_watch() noexcept {
    if (watching_) {
        return; // still in the kernel (maybe being cancelled): on_watch re-arms if needed
    }
    watching_ = true;
    watch_cancelled_ = false;
    ++st_.stats.reset_watches;
    io_uring_sqe* s = io::detail::current_impl().sqe_for(&watch_op_);
    // Not POLLRDHUP: a half-close (FIN) is not a reset; the request is answered. ERR and HUP
    // are reported whatever the mask: HUP once both directions are shut (a RST does that).
    io_uring_prep_poll_add(s, socket_->fd(), POLLERR | POLLHUP);
}

void Connection::cancel_watch() noexcept {
    if (watching_ && !watch_cancelled_) {
        watch_cancelled_ = true;
        io::detail::current_impl().cancel(&watch_op_);
    }
}

void Connection::on_watch(io::Operation* op, int res, std::uint32_t /*flags*/) noexcept {
    Connection* c = static_cast<WatchOp*>(op)->conn;
    c->watching_ = false;
    if (res > 0 && (static_cast<unsigned>(res) & (POLLERR | POLLHUP | POLLNVAL)) != 0) {
        c->peer_reset_ = true;
        if (c->handler_running_ && c->handler_stop_.request_stop()) {
            ++c->st_.stats.handlers_cancelled; // the handler's pending co_awaits end now
        }
    } else if (res == -ECANCELED && c->handler_running_ && !c->watch_waiter_) {
        c->arm_watch(); // cancelled for the previous handler while this one was starting
    }
    if (c->watch_waiter_) {
        io::detail::current_impl().schedule(std::exchange(c->watch_waiter_, nullptr));
    }
}

runtime::Task<> Connection::end_watch() {
    struct Gone {
        Connection* c;
        bool await_ready() const noexcept { return !c->watching_; }
        void await_suspend(std::coroutine_handle<> h) noexcept { c->watch_waiter_ = h; }
        void await_resume() const noexcept {}
    };
    cancel_watch();
    while (watching_) {
        co_await Gone{this};
    }
}

void Connection::on_flush(io::Deferred* d) noexcept {
    static_cast<FlushWork*>(d)->conn->start_send();
}

void Connection::start_send() noexcept {
    if (send_inflight_ || pending_bytes() == 0 || send_error_ != 0) {
        return;
    }
    std::swap(pending_, sending_);
    std::swap(pending_segs_, sending_segs_);
    pending_segs_.count = 0;
    pending_segs_.bytes = 0;
    send_op_.done = 0;
    send_inflight_ = true;
    ++st_.stats.sends;
    if (sending_segs_.count != 0) {
        // Buffer slices interleaved with the zero-copy bodies, in order.
        std::size_t n = 0;
        std::size_t from = 0;
        for (std::size_t i = 0; i < sending_segs_.count; ++i) {
            const Segment& seg = sending_segs_.items[i];
            if (seg.at > from) {
                send_iov_[n++] = iovec{sending_.data() + from, seg.at - from};
            }
            send_iov_[n++] = iovec{const_cast<char*>(seg.data), seg.len}; // NOLINT: never written through
            from = seg.at;
        }
        if (sending_.size() > from) {
            send_iov_[n++] = iovec{sending_.data() + from, sending_.size() - from};
        }
        send_iov_first_ = 0;
        send_iov_count_ = n;
    }
    submit_send();
    if (write_timeout_.count() > 0 && !write_timer_.linked()) {
        io::detail::ReactorImpl& r = io::detail::current_impl();
        r.timers().add(write_timer_, io::detail::ReactorImpl::to_tick_ceil(io::Clock::now() + write_timeout_));
    }
}

void Connection::submit_send() noexcept {
    io::detail::ReactorImpl& r = io::detail::current_impl();
    io_uring_sqe* s = r.sqe_for(&send_op_);
    if (sending_segs_.count == 0) {
        io_uring_prep_send(s, socket_->fd(), sending_.data() + send_op_.done, sending_.size() - send_op_.done,
                           MSG_NOSIGNAL);
        return;
    }
    send_msg_ = msghdr{};
    send_msg_.msg_iov = send_iov_.data() + send_iov_first_;
    send_msg_.msg_iovlen = send_iov_count_ - send_iov_first_;
    io_uring_prep_sendmsg(s, socket_->fd(), &send_msg_, MSG_NOSIGNAL);
}

void Connection::on_send(io::Operation* op, int res, std::uint32_t /*flags*/) noexcept {
    auto* so = static_cast<SendOp*>(op);
    Connection* c = so->conn;
    io::detail::ReactorImpl& r = io::detail::current_impl();
    if (res > 0) {
        so->done += static_cast<std::size_t>(res);
        if (so->done < c->sending_.size() + c->sending_segs_.bytes && c->send_error_ == 0) {
            // Partial: continue from the completion, without resuming anyone (unless cut()
            // failed the connection's output meanwhile).
            auto left = static_cast<std::size_t>(res);
            while (c->sending_segs_.count != 0 && left != 0) {
                iovec& v = c->send_iov_[c->send_iov_first_];
                if (left >= v.iov_len) {
                    left -= v.iov_len;
                    ++c->send_iov_first_;
                } else {
                    v.iov_base = static_cast<char*>(v.iov_base) + left;
                    v.iov_len -= left;
                    left = 0;
                }
            }
            c->submit_send();
            return;
        }
    } else {
        c->send_error_ = res == 0 ? -EPIPE : res;
    }
    c->send_inflight_ = false;
    c->sending_.clear();
    c->sending_segs_.count = 0;
    c->sending_segs_.bytes = 0;
    r.timers().remove(c->write_timer_);
    if (c->send_error_ == 0 && c->pending_bytes() != 0) {
        c->start_send();
    } else if (c->drain_waiters_ != nullptr && (c->pending_bytes() == 0 || c->send_error_ != 0)) {
        c->wake_drain_waiters();
    } else if (c->idle_) {
        c->release_idle_buffers(); // the last response of a batch left while the connection idles
    }
}

void Connection::release_idle_buffers() {
    if (!send_inflight_ && pending_bytes() == 0 && send_error_ == 0) {
        give_out(pending_);
        give_out(sending_);
    }
    if (window_from_carry() && carry_.empty()) {
        give_carry();
    }
}

void Connection::wake_drain_waiters() noexcept {
    io::detail::ReactorImpl& r = io::detail::current_impl();
    for (DrainWaiter* w = std::exchange(drain_waiters_, nullptr); w != nullptr;) {
        DrainWaiter* next = w->next;
        r.schedule(w->handle);
        w = next;
    }
}

runtime::Task<> Connection::drain_output() {
    struct Drained : DrainWaiter {
        explicit Drained(Connection* conn) noexcept : c(conn) {}
        Connection* c;
        // Also after an error, nothing of ours stays in the kernel: a zero-copy piece is the
        // caller's memory (cut() cancels the send, whose completion then wakes us).
        bool await_ready() const noexcept {
            return !c->send_inflight_ && (c->send_error_ != 0 || c->pending_bytes() == 0);
        }
        void await_suspend(std::coroutine_handle<> h) noexcept {
            handle = h;
            next = c->drain_waiters_;
            c->drain_waiters_ = this;
            c->start_send();
        }
        void await_resume() const noexcept {}
    };
    while (!Drained{this}.await_ready()) {
        co_await Drained{this};
    }
}

void Connection::respond_error(int status, std::string_view detail, Exchange* x, bool head_complete,
                               std::string_view raw) {
    ++st_.stats.parse_errors;
    // Timeouts and oversized heads are common on the internet (fasthttp: "small read buffer").
    std::string_view line = raw;
    while (line.starts_with("\r\n")) {
        line.remove_prefix(2);
    }
    // So are bytes that cannot start a request at all (a TLS ClientHello, a scanner's probe on
    // the plain port): refused at the first byte, once per probe.
    const bool not_http = status == 400 && !head_complete && !line.empty() &&
                          http::detail::kTchar[static_cast<unsigned char>(line.front())] == 0;
    const bool common = status == 408 || status == 431 || not_http;
    if (!common || st_.options.log_all_errors) {
        log_error(fmt::format("{} {}: {}{}", status, reason_phrase(status), detail,
                              request_details(x, head_complete, raw)),
                  common);
    }
    // No content in an answer to HEAD (RFC 9110 §9.3.2), also when the head itself failed:
    // its request line is then only in the raw bytes.
    const bool head_request =
        line.starts_with("HEAD ") || (x != nullptr && head_complete && x->request.head_.method == Method::head);
    if (st_.options.error_handler) {
        custom_error(status, detail, x, head_complete, head_request);
    } else {
        ensure_pending();
        const std::string body = fmt::format("{}: {}\n", reason_phrase(status), detail);
        write_simple(pending_, status, body, st_.options, st_.date, true, head_request);
        queue_flush();
    }
    closing_ = true;
    lingering_ = true;
}

void Connection::custom_error(int status, std::string_view detail, Exchange* x, bool head_complete,
                              bool head_request) {
    Exchange* ex = x != nullptr ? x : st_.take_exchange();
    if (!head_complete) {
        // A failed or incomplete parse leaves half-filled views: the hook sees no request.
        ex->request.reset();
    }
    ex->request.peer_fd_ = socket_->fd();
    ex->request.peer_cache_ = &peer_;
    ex->connection_ = this;
    ex->hijack_ = nullptr;
    ex->streaming_ = false;
    ex->response.reset();
    ex->response.set_status(status);
    ex->response.set_body(fmt::format("{}: {}\n", reason_phrase(status), detail));
    call_error_handler(*ex, status, detail);
    write_response(*ex, true, head_request);
    if (x == nullptr) {
        st_.give_exchange(ex);
    }
}

void Connection::call_error_handler(Exchange& x, int status, std::string_view detail) {
    std::string failure;
    try {
        st_.options.error_handler(x, status, detail);
    } catch (const std::exception& e) {
        failure = e.what();
    } catch (...) {
        failure = "a non-standard exception";
    }
    if (!failure.empty()) {
        st_.log(fmt::format("error_handler failed: {}", failure));
        x.response.reset();
        x.response.set_status(status);
        x.response.set_body(fmt::format("{}: {}\n", reason_phrase(status), detail));
    }
    x.hijack_ = nullptr; // no takeover from an error response
    x.streaming_ = false;
}

std::string Connection::endpoints() const {
    auto name = [](int fd, bool peer) {
        io::SocketAddress a;
        a.length = sizeof(a.storage);
        auto* sa = reinterpret_cast<sockaddr*>(&a.storage); // NOLINT: sockaddr API
        const int rc = peer ? ::getpeername(fd, sa, &a.length) : ::getsockname(fd, sa, &a.length);
        return rc == 0 ? a.to_string() : std::string("?");
    };
    return fmt::format("{}<->{}", name(socket_->fd(), false), name(socket_->fd(), true));
}

void Connection::log_error(std::string_view what, bool common) {
    if (common && !st_.options.log_all_errors) {
        return;
    }
    st_.log(fmt::format("error when serving connection {}: {}", endpoints(), what));
}

std::string Connection::request_details(const Exchange* x, bool head_complete, std::string_view raw) const {
    const RequestHead* head = x != nullptr && head_complete ? &x->request.head_ : nullptr;
    if (st_.options.secure_error_log_message) {
        // No target, no header values, no raw bytes: the method at most.
        return head != nullptr && !head->method_text.empty() ? fmt::format(" (method {})", head->method_text)
                                                             : std::string();
    }
    constexpr std::size_t kSnippet = 256;
    if (!raw.empty()) {
        return fmt::format(" (request {:?}{})", raw.substr(0, kSnippet), raw.size() > kSnippet ? "..." : "");
    }
    if (head != nullptr && !head->method_text.empty()) {
        return fmt::format(" (request {:?})", fmt::format("{} {}", head->method_text, head->target));
    }
    return {};
}

void Connection::write_response(Exchange& x, bool close, bool head_request) {
    if (x.streaming_) {
        if (x.respond_now_) {
            closing_ = true; // cut short: no last chunk, the close tells the client it is incomplete
            return;
        }
        stream_end(x);
        if (close || x.response.close()) {
            closing_ = true;
        }
        return;
    }
    Response& resp = x.response;
    const RequestHead& head = x.request.head_;
    if (resp.close()) {
        close = true;
    }
    HeadPlan plan;
    plan.head_request = head_request || head.method == Method::head;
    if (x.hijack_) {
        close = false; // the connection changes hands instead: the handler's Connection header goes out
        plan.keep_connection_header = true;
    }
    plan.close = close;
    plan.keep_alive_10 = !close && !x.hijack_ && head.version_minor == 0;
    const std::string_view body = bodyless_status(resp.status()) ? std::string_view{} : resp.body();
    ensure_pending();
    write_head(pending_, resp, body.size(), plan, st_.options, st_.date);
    if (!plan.head_request) {
        // A non-empty body without a pooled buffer is set_body_static()'s (a static body set
        // after set_body() keeps the buffer and is copied: Response does not say more).
        (void)queue_body(body, !resp.has_body_buffer());
    }
    queue_flush();
    if (close) {
        closing_ = true;
    }
}

runtime::Task<bool> Connection::read_body(Exchange& x) {
    RequestHead& head = x.request.head_;
    const std::string_view window = window_from_carry() ? carry_.view() : lease_.view();
    const std::size_t body_start = pos_ + head.head_size;
    if (head.body == BodyKind::content_length) {
        if (head.content_length > body_limit_) {
            respond_error(413, "request body exceeds the server's limit", &x, true, window.substr(pos_, head.head_size));
            co_return false;
        }
        const std::size_t have = window.size() - body_start;
        if (have >= head.content_length) {
            x.request.body_ = window.substr(body_start, head.content_length);
            pos_ = body_start + head.content_length;
            co_return true;
        }
    }
    // The body goes beyond this window: keep the head in the arena, gather the body in a
    // pooled buffer, and put what follows it into the carry buffer.
    {
        const std::string_view head_bytes = window.substr(pos_, head.head_size);
        char* copy = x.arena_.allocate(head_bytes.size());
        std::memcpy(copy, head_bytes.data(), head_bytes.size());
        rebase_head(head, head_bytes.data(), head_bytes.size(), copy);
        ++st_.stats.head_copies;
    }
    // The exchange owns the gathered body until it goes back to the pool (give_exchange).
    if (x.body_store_.capacity() == 0) {
        x.body_store_ = st_.body_pool.take();
    }
    ByteBuffer& request_body = x.body_store_;
    std::string_view input = window.substr(body_start);
    pos_ = window.size();
    ChunkedDecoder decoder;
    const bool chunked = head.body == BodyKind::chunked;
    if (!chunked) {
        request_body.reserve(head.content_length);
    }
    std::string_view leftover;
    for (;;) {
        if (chunked) {
            while (!input.empty() && !decoder.done()) {
                const ChunkedDecoder::Step step = decoder.feed(input);
                if (step.error != Error::none) {
                    respond_error(status_of(step.error), describe(step.error), &x, true, {});
                    co_return false;
                }
                if (request_body.size() + step.data.size() > body_limit_) {
                    respond_error(413, "request body exceeds the server's limit", &x, true, {});
                    co_return false;
                }
                request_body.append(step.data);
                input.remove_prefix(step.consumed);
            }
            if (decoder.done()) {
                leftover = input;
                break;
            }
        } else {
            const std::size_t want = head.content_length - request_body.size();
            const std::size_t take = std::min(want, input.size());
            request_body.append(input.substr(0, take));
            input.remove_prefix(take);
            if (request_body.size() == head.content_length) {
                leftover = input;
                break;
            }
        }
        // Need more bytes.
        lease_.release();
        if (carry_.capacity() != 0) {
            carry_.clear();
        }
        const milliseconds limit = body_deadline_ != io::Clock::time_point{}
                                       ? until(body_deadline_)
                                       : remaining(milliseconds(0), st_.options.read_timeout);
        if (limit.count() < 0) {
            respond_error(408, "the request body did not arrive in time", &x, true, {});
            co_return false;
        }
        auto r = co_await receive(limit);
        if (!r || r->empty()) {
            if (!r && timed_out_) {
                respond_error(408, "the request body did not arrive in time", &x, true, {});
            } else {
                if (r) {
                    log_error("unexpected EOF while reading the request body", true);
                } else if (r.error() != std::errc::operation_canceled) {
                    log_error(fmt::format("error when reading the request body: {}", r.error().message()),
                              io::is_disconnect(r.error()));
                }
                closing_ = true;
            }
            co_return false;
        }
        lease_ = std::move(*r);
        input = lease_.view();
        pos_ = 0;
    }
    // What follows the body starts the next request.
    if (lease_.holds_buffer()) {
        pos_ = lease_.view().size() - leftover.size();
    } else {
        carry_.consume_front(carry_.size() - leftover.size());
        pos_ = 0;
    }
    x.request.body_ = request_body.view();
    co_return true;
}

bool Connection::start_handler(Exchange& x, runtime::Task<>& task) {
    const detail::HandlerRef& h = st_.server.handler();
    std::exception_ptr error;
    if (h.sync != nullptr) {
        try {
            h.sync(h.self, x);
        } catch (...) {
            error = std::current_exception();
        }
    } else if (h.async != nullptr) {
        try {
            task = h.async(h.self, x);
        } catch (...) {
            error = std::current_exception();
        }
        if (task.valid()) {
            auto handle = task.handle();
            if (handler_stop_.stop_requested()) {
                handler_stop_.reset(); // a reset seen between requests is peer_reset_'s business
            }
            // The handler's ambient token: nested tasks and I/O inherit it (a pointer store).
            handle.promise().set_stop_token(runtime::StopToken(handler_stop_));
            handle.resume(); // runs until the handler first suspends (or finishes)
            if (!handle.done()) {
                return false; // join_handler() waits for it
            }
            try {
                handle.promise().result();
            } catch (...) {
                error = std::current_exception();
            }
            task = {};
        }
    } else {
        x.response.set_status(404);
        x.response.set_body("Not Found\n");
    }
    finish_handler(x, error);
    return true;
}

runtime::Task<> Connection::join_handler(Exchange& x, runtime::Task<> task) {
    auto handle = task.handle();
    // Watch for a client reset while it waits (only now: a handler that completes without
    // suspending costs nothing).
    handler_running_ = true;
    if (peer_reset_) {
        handler_stop_.request_stop();
        ++st_.stats.handlers_cancelled;
    } else {
        arm_watch();
    }
    // The handler suspended. The request's stored views (head, body, decoded path, and
    // through on_rebase the web layer's route parameters) move to the arena, where they
    // outlive the connection if the handler is detached (respond_now). The receive buffer
    // itself stays leased until the handler returns: a view the handler took before it
    // suspended and kept in a local (`auto id = c.param("id"); co_await ...;`) must not start
    // reading another client's bytes once the buffer is reused. A suspended handler thus
    // holds one receive buffer; when the provided ring runs dry, receives fall back to spare
    // buffers (-ENOBUFS path).
    if (lease_.holds_buffer() && in_stream_.x == nullptr) {
        const std::string_view win = lease_.view();
        const char* req_start = x.request.head_.method_text.data();
        const std::size_t req_off = static_cast<std::size_t>(req_start - win.data());
        if (req_off < win.size()) {
            const std::size_t n = pos_ - req_off;
            char* copy = x.arena_.allocate(n);
            std::memcpy(copy, req_start, n);
            rebase_head(x.request.head_, req_start, n, copy);
            auto move = [&](std::string_view& v) {
                if (v.data() >= req_start && v.data() < req_start + n) {
                    v = std::string_view(copy + (v.data() - req_start), v.size());
                }
            };
            move(x.request.body_);
            move(x.request.decoded_path_); // path() of a path without escapes
            if (x.rebase_hook_ != nullptr) {
                x.rebase_hook_(x.rebase_self_, req_start, n, copy); // e.g. route parameters
            }
            ++st_.stats.head_copies;
        }
    }
    // Wait for the handler to return, or for respond_now() (which wakes us with the handler
    // still running).
    struct Join {
        Connection* conn;
        std::coroutine_handle<runtime::Task<>::promise_type> h;
        bool await_ready() const noexcept { return h.done() || conn->detached_exchange_ != nullptr; }
        void await_suspend(std::coroutine_handle<> me) noexcept {
            h.promise().continuation_ = me;
            conn->running_handler_ = h;
            conn->join_waiter_ = me;
        }
        void await_resume() const noexcept {
            conn->running_handler_ = {};
            conn->join_waiter_ = {};
        }
    };
    if (x.respond_now_) {
        detached_exchange_ = &x; // called before the handler first suspended
    }
    co_await Join{this, handle};
    handler_running_ = false;
    cancel_watch();
    if (!handle.done()) {
        // respond_now(): the answer goes out now; the handler finishes into nothing after,
        // its frame kept here until then (join_detached). The peer's address is looked up
        // now, while the descriptor is still ours.
        (void)x.request.remote_address();
        detached_exchange_ = &x;
        detached_handler_ = std::move(task);
        ++st_.stats.handlers_detached;
        co_return;
    }
    detached_exchange_ = nullptr;
    std::exception_ptr error;
    try {
        handle.promise().result();
    } catch (...) {
        error = std::current_exception();
    }
    finish_handler(x, error);
}

void Connection::finish_handler(Exchange& x, const std::exception_ptr& error) {
    if (!error) {
        return;
    }
    if (peer_reset_) {
        // Cancelled because the client reset the connection: nobody is left to answer.
        log_error(fmt::format("the client reset the connection while the handler ran{}", request_details(&x, true, {})),
                  true);
        x.hijack_ = nullptr;
    } else if (st_.cut.stop_requested()) {
        x.hijack_ = nullptr; // cancelled by the end of a shutdown's grace period: nobody answers
    } else {
        const std::string what = describe_exception(error);
        st_.log(fmt::format("handler failed{}: {}", request_details(&x, true, {}), what));
        x.hijack_ = nullptr;
        x.response.reset();
        x.response.set_status(500);
        x.response.set_body("Internal Server Error\n");
    }
}

/// Whether `rest` is nothing but whole CRLF pairs (a lone CR may be half of one: not).
static bool only_empty_lines(std::string_view rest) noexcept {
    if (rest.size() % 2 != 0) {
        return false;
    }
    for (std::size_t i = 0; i < rest.size(); i += 2) {
        if (rest[i] != '\r' || rest[i + 1] != '\n') {
            return false;
        }
    }
    return true;
}

runtime::Task<> Connection::run() {
    const ServerOptions& o = st_.options;
    const milliseconds idle = o.idle_timeout.count() > 0 ? o.idle_timeout : o.read_timeout;
    Exchange* x = nullptr;
    for (;;) {
        // Need bytes: either nothing buffered or an incomplete head.
        const bool mid_request = window_from_carry() ? !carry_.empty() : pos_ < lease_.view().size();
        // Shutdown: an idle keep-alive connection closes; a request already begun is read to
        // its end; a new connection (one accepted from the backlog too) waits for its first
        // request as for a head: its client connected before the listener closed.
        const bool draining = st_.shutdown.stop_requested();
        // (Bytes already received are a request in flight: served, as a parked connection's
        // are when its worker starts after the shutdown began.)
        if (closing_ || (draining && !mid_request && rec_->requests != 0 && socket_->queued() == 0)) {
            break;
        }
        idle_ = !mid_request;
        milliseconds limit = idle;
        if (rec_->requests == 0 && o.header_read_timeout.count() > 0 &&
            (limit.count() == 0 || o.header_read_timeout < limit)) {
            // A new connection has header_read_timeout for its first request's head, counted
            // from the accept: one that never sends a byte is closed, not kept forever (the
            // idle limit, none by default, only applies between requests).
            limit = o.header_read_timeout;
        }
        if (draining && o.header_read_timeout.count() > 0) {
            limit = o.header_read_timeout;
        }
        if (mid_request) {
            // The head as a whole must arrive within header_read_timeout (and the request
            // within read_timeout) of its first byte: a client dripping bytes gains nothing.
            limit = remaining(o.header_read_timeout, o.read_timeout);
            if (limit.count() < 0) {
                respond_error(408, "the request did not arrive in time", x, false, unparsed());
                break;
            }
        }
        to_carry();
        if (idle_) {
            if (state_ == ConnState::active) {
                set_state(ConnState::idle);
            }
            release_idle_buffers(); // an idle keep-alive connection holds no buffer
        }
        // Idle past idle_park_delay (before the idle limit): give the worker, the frames and
        // this object back and wait as a record (see can_park()). The delay keeps a busy
        // keep-alive connection off this path; what it pays is one wheel-timer add and remove
        // per idle wait (before, none when the connection had no idle limit).
        const milliseconds park_delay = o.idle_park_delay;
        const bool park_phase = idle_ && !draining && park_delay.count() > 0 && rec_->may_park && !heap_socket_ &&
                                (limit.count() == 0 || park_delay < limit);
        auto r = co_await receive(park_phase ? park_delay : limit);
        if (park_phase && !r && timed_out_ && r.error() == std::errc::operation_canceled && !closing_) {
            if (st_.shutdown.stop_requested()) {
                continue; // the shutdown's rules at the top (header_read_timeout for a new one)
            }
            const milliseconds rest = limit.count() == 0 ? milliseconds(0) : limit - park_delay;
            if (x == nullptr && can_park()) {
                release_idle_buffers();
                park_left_ = rest;
                parked_ = true;
                ++st_.stats.parks;
                co_return; // serve_connection ends; ~Connection parks the record
            }
            // Not now (a response still in the kernel, a detached handler): wait out the rest
            // of the idle limit here.
            r = co_await receive(rest);
        }
        idle_ = false;
        if (!r || r->empty()) {
            if (mid_request) {
                if (!r && timed_out_) {
                    respond_error(408, "the request did not arrive in time", x, false, unparsed());
                } else if (r) {
                    log_error("unexpected EOF while reading the request head", true);
                }
            }
            if (!r && r.error() != std::errc::operation_canceled) {
                log_error(fmt::format("error when reading a request: {}", r.error().message()),
                          io::is_disconnect(r.error()));
            }
            break;
        }
        if (!mid_request) {
            set_state(ConnState::active);
        }
        if (window_from_carry() && !carry_.empty()) {
            carry_.append(r->view()); // the head continues: gather it (counted slow path)
            r->release();
            ++st_.stats.carry_copies;
        } else {
            lease_ = std::move(*r);
            pos_ = 0;
            give_carry();
        }
        // Parse every complete request in the window, in order.
        while (!closing_) {
            char* base = window_from_carry() ? carry_.data() : lease_.data();
            const std::size_t size = window_from_carry() ? carry_.size() : lease_.view().size();
            if (x == nullptr && pos_ < size && base[pos_] == '\r' && rec_->requests != 0 &&
                only_empty_lines(std::string_view(base + pos_, size - pos_))) {
                // Empty lines after a request and nothing else (RFC 9112 §2.2: a server ignores
                // them): no request has begun, so the connection idles (idle limit, parking, no
                // buffer) instead of timing a head out with an unsolicited 408. Before the
                // first request they stay: the head's timer and the parser's count of leading
                // empty lines apply, so they cannot stretch the new connection's deadline.
                pos_ = size;
            }
            if (pos_ >= size) {
                if (window_from_carry()) {
                    // Parsed to its end: the next bytes start a new window (a lease). Kept, the
                    // spent carry counted as a request begun: the connection never idled
                    // (header_read_timeout instead of the idle limit, no parking, buffers held)
                    // and every later byte was copied into it.
                    carry_.clear();
                    pos_ = 0;
                }
                break;
            }
            if (x == nullptr) {
                x = st_.take_exchange();
                request_start_ = x->start_time_; // deadlines count from the bytes' arrival
                x->request.peer_fd_ = socket_->fd();
                x->request.peer_cache_ = &peer_;
                x->stop_token_ = runtime::StopToken(handler_stop_);
                x->connection_ = this;
            }
            RequestHead& head = x->request.head_;
            const ParseResult pr = parser_.parse(std::span<char>(base + pos_, size - pos_), head,
                                                 std::span<Header>(x->header_storage_.get(), x->header_capacity_));
            if (pr.incomplete()) {
                if (window_from_carry() && pos_ != 0) {
                    carry_.consume_front(pos_);
                    pos_ = 0;
                }
                break; // read more
            }
            if (pr.failed()) {
                respond_error(status_of(pr.error), describe(pr.error), x, false,
                              std::string_view(base + pos_, size - pos_));
                break;
            }
            parser_.reset();
            ++rec_->requests;
            ++st_.stats.requests;
            bool close = !head.keep_alive || head.close_after || o.disable_keepalive ||
                         (o.max_requests_per_conn != 0 && rec_->requests >= o.max_requests_per_conn) ||
                         (o.close_on_shutdown && st_.shutdown.stop_requested());
            const bool get_only_rejects = o.get_only && head.method != Method::get;
            const RequestConfig cfg = o.header_received && !get_only_rejects ? request_config(*x) : RequestConfig{};
            body_limit_ = cfg.max_request_body_size != 0 ? cfg.max_request_body_size : o.max_request_body_size;
            write_timeout_ = cfg.write_timeout.count() > 0 ? cfg.write_timeout : o.write_timeout;
            body_deadline_ = cfg.read_timeout.count() > 0 ? io::Clock::now() + cfg.read_timeout : io::Clock::time_point{};
            if (closing_) {
                break; // header_received threw: answered 500
            }
            if (get_only_rejects) {
                x->response.set_status(405);
                x->response.set_header("Allow", "GET");
                x->response.set_body("Method Not Allowed\n");
                if (o.error_handler) {
                    call_error_handler(*x, 405, "the server accepts only GET requests");
                }
                close = true;
                pos_ = size;
            } else {
                if (head.body != BodyKind::none) {
                    const bool stream = o.stream_request_body &&
                                        (head.body == BodyKind::chunked || head.content_length > body_limit_);
                    bool continue_pending = false;
                    // A declared length over the limit is refused by read_body with 413 before
                    // any of the body is read: no 100 first, which would ask for the upload.
                    const bool refused_by_length =
                        !stream && head.body == BodyKind::content_length && head.content_length > body_limit_;
                    if (head.expect_continue && head.version_minor == 1 && !refused_by_length) {
                        const std::size_t have = size - pos_ - head.head_size;
                        if (head.body == BodyKind::chunked || have < head.content_length) {
                            const int verdict = o.continue_handler ? o.continue_handler(x->request) : 100;
                            if (verdict != 100) {
                                // Refused: answer, never read the body, close (lingering, so
                                // the client reads the answer rather than a reset).
                                x->response.set_status(verdict);
                                write_response(*x, true);
                                lingering_ = true;
                                break;
                            }
                            if (stream) {
                                continue_pending = true; // sent when the handler starts reading
                            } else {
                                ensure_pending();
                                pending_.append("HTTP/1.1 100 Continue\r\n\r\n");
                                queue_flush();
                            }
                        }
                    }
                    if (stream) {
                        start_body_stream(*x, continue_pending);
                    } else if (!co_await read_body(*x)) {
                        break;
                    }
                } else {
                    pos_ += head.head_size;
                }
                const bool close_by_rules = close;
                if (in_stream_.x != nullptr && !in_stream_.done) {
                    close = true; // a streamed answer's head says close unless the body is read first
                }
                close_planned_ = close;
                // The handler runs inline; only one that suspends costs a coroutine frame.
                if (runtime::Task<> handler; !start_handler(*x, handler)) {
                    auto join = join_handler(*x, std::move(handler)); // named (GCC PR 100611)
                    co_await join;
                }
                if (in_stream_.x != nullptr) {
                    if (in_stream_.done) {
                        // Read to its end: the next request follows at pos_ (unless a streamed
                        // answer already announced the close).
                        close = close_by_rules || (x->streaming_ && close_planned_);
                    } else {
                        // The rest of the body is unread (or broke): answer and close,
                        // lingering so the client reads the answer rather than a reset.
                        if (!in_stream_.failed) {
                            ++st_.stats.streamed_bodies_unread;
                        }
                        lingering_ = true;
                        close = true;
                    }
                    if (!detached_handler_.valid()) {
                        in_stream_ = BodyStream{};
                    }
                }
                if (detached_handler_.valid()) {
                    // Answered early (respond_now): send the sealed response and close; the
                    // exchange stays with the handler until it returns (join_detached).
                    write_response(*x, true);
                    x = nullptr;
                    closing_ = true;
                    break;
                }
                if (peer_reset_) {
                    closing_ = true; // reset by the client: no answer, close
                    break;
                }
                if (x->hijack_) {
                    write_response(*x, false);
                    HijackHandler handler = std::move(x->hijack_);
                    st_.give_exchange(x);
                    x = nullptr;
                    co_await hijack(std::move(handler));
                    co_return;
                }
            }
            // A shutdown that began while the handler ran: its answer says so (fasthttp
            // decides CloseOnShutdown after the handler, too).
            close = close || (o.close_on_shutdown && st_.shutdown.stop_requested());
            write_response(*x, close);
            st_.give_exchange(x);
            x = nullptr;
            if (pending_bytes() > 256 * 1024) {
                co_await drain_output(); // backpressure: a client that does not read
            }
            if (send_error_ != 0) {
                closing_ = true;
            }
        }
        if (closing_ || send_error_ != 0) {
            break;
        }
    }
    if (x != nullptr) {
        st_.give_exchange(x);
    }
}

RequestConfig Connection::request_config(Exchange& x) {
    std::string failure;
    try {
        return st_.options.header_received(x.request);
    } catch (const std::exception& e) {
        failure = e.what();
    } catch (...) {
        failure = "a non-standard exception";
    }
    st_.log(fmt::format("header_received failed{}: {}", request_details(&x, true, {}), failure));
    x.response.set_status(500);
    x.response.set_body("Internal Server Error\n");
    write_response(x, true);
    return {};
}

runtime::Task<> Connection::hijack(HijackHandler handler) {
    co_await end_watch(); // the hijack handler owns every operation on the socket from now on
    // Whatever the client sent past the hijacking request belongs to the new protocol.
    std::string already_read(unparsed());
    lease_.release();
    pos_ = 0;
    give_carry();
    co_await drain_output(); // the 101 (or whatever the handler answered) goes out first
    if (send_error_ != 0) {
        closing_ = true;
        co_return; // finish() logs and closes
    }
    give_out(pending_);
    give_out(sending_);
    hijacked_ = true;
    set_state(ConnState::hijacked);
    std::exception_ptr error;
    try {
        runtime::Task<> task;
        if (heap_socket_) { // keep_hijacked_conns: the handler takes the socket over
            task = handler(HijackedConn(std::move(heap_socket_), std::move(already_read)));
            socket_ = &rec_->socket; // empty: finish() closes nothing
        } else {
            task = handler(HijackedConn(*socket_, std::move(already_read)));
        }
        co_await std::move(task);
    } catch (...) {
        error = std::current_exception();
    }
    if (error) {
        const std::string what = describe_exception(error);
        st_.log(fmt::format("hijack handler failed: {}", what));
    }
}

runtime::Task<> Connection::finish() {
    co_await end_watch();
    co_await drain_output();
    if (send_error_ != 0) {
        const std::error_code ec = io::make_error(send_error_);
        if (ec == std::errc::operation_canceled && st_.cut.stop_requested()) {
            log_error("the shutdown grace period ended before the response was sent", true);
        } else if (ec == std::errc::operation_canceled) {
            log_error("the response could not be sent within write_timeout", true);
        } else {
            log_error(fmt::format("error when writing a response: {}", ec.message()), io::is_disconnect(ec));
        }
    }
    if (lingering_ && send_error_ == 0) {
        // Lingering close: stop writing, read (and drop) what the client still sends for a
        // bounded time, so it reads our status instead of a reset.
        (void)co_await socket_->shutdown(SHUT_WR);
        const auto until = io::Clock::now() + st_.options.linger_timeout;
        std::size_t drained = 0;
        lease_.release();
        while (drained < (1U << 20)) {
            const auto left = std::chrono::duration_cast<milliseconds>(until - io::Clock::now());
            if (left.count() <= 0) {
                break;
            }
            auto r = co_await receive(left);
            if (!r || r->empty()) {
                break;
            }
            drained += r->size();
        }
    }
    lease_.release();
    if (!hijacked_) {
        set_state(ConnState::closed);
    }
    co_await socket_->close();
}

void Connection::respond_now(Exchange& x) noexcept {
    x.respond_now_ = true;
    x.response.set_close();
    x.response.seal();
    if (join_waiter_ && running_handler_ && !running_handler_.done()) {
        // join_handler() waits in Join: wake it (through the ready queue, not from inside the
        // caller's stack) and stop the handler's return from resuming it a second time.
        running_handler_.promise().continuation_ = {};
        detached_exchange_ = &x;
        runtime::schedule(std::exchange(join_waiter_, {}));
    }
}

void Connection::start_body_stream(Exchange& x, bool continue_pending) {
    RequestHead& head = x.request.head_;
    const std::string_view window = window_from_carry() ? carry_.view() : lease_.view();
    // The window moves on as the body is read: keep the head in the arena.
    const std::string_view head_bytes = window.substr(pos_, head.head_size);
    char* copy = x.arena_.allocate(head_bytes.size());
    std::memcpy(copy, head_bytes.data(), head_bytes.size());
    rebase_head(head, head_bytes.data(), head_bytes.size(), copy);
    ++st_.stats.head_copies;
    pos_ += head.head_size;
    in_stream_ = BodyStream{};
    in_stream_.x = &x;
    in_stream_.chunked = head.body == BodyKind::chunked;
    in_stream_.remaining = in_stream_.chunked ? 0 : head.content_length;
    in_stream_.continue_pending = continue_pending;
    in_stream_.decoder = ChunkedDecoder(st_.options.max_header_bytes);
    x.request.body_streamed_ = true;
    ++st_.stats.bodies_streamed;
}

runtime::Task<io::Result<std::string_view>> Connection::stream_read(Exchange& x) {
    BodyStream& in = in_stream_;
    if (in.x != &x || in.done) {
        co_return std::string_view{};
    }
    if (in.failed) {
        co_return in.failed;
    }
    if (detached_exchange_ == &x || (closing_ && send_error_ != 0)) {
        in.failed = std::make_error_code(std::errc::connection_aborted); // answered already: gone
        co_return in.failed;
    }
    const runtime::StopToken caller = co_await runtime::current_stop_token();
    for (;;) {
        const std::string_view window = window_from_carry() ? carry_.view() : lease_.view();
        if (pos_ < window.size()) {
            const std::string_view input = window.substr(pos_);
            if (in.chunked) {
                const ChunkedDecoder::Step step = in.decoder.feed(input);
                if (step.error != Error::none) {
                    in.failed = std::make_error_code(std::errc::bad_message);
                    log_error(fmt::format("malformed chunked request body: {}", describe(step.error)), true);
                    co_return in.failed;
                }
                pos_ += step.consumed;
                in.done = in.decoder.done();
                if (!step.data.empty() || in.done) {
                    co_return step.data;
                }
                continue;
            }
            const std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(in.remaining, input.size()));
            pos_ += take;
            in.remaining -= take;
            in.done = in.remaining == 0;
            co_return input.substr(0, take);
        }
        // The window is used up: receive more.
        if (in.continue_pending) {
            in.continue_pending = false;
            ensure_pending();
            pending_.append("HTTP/1.1 100 Continue\r\n\r\n");
            queue_flush();
        }
        lease_.release();
        if (carry_.capacity() != 0) {
            carry_.clear();
        }
        pos_ = 0;
        const milliseconds limit = body_deadline_ != io::Clock::time_point{}
                                       ? until(body_deadline_)
                                       : remaining(milliseconds(0), st_.options.read_timeout);
        if (limit.count() < 0) {
            in.failed = std::make_error_code(std::errc::timed_out);
            co_return in.failed;
        }
        // The handler's cancellation (client reset, a timeout middleware) ends the wait too;
        // checked first, because receive() starts from a fresh read_stop_.
        if (caller.stop_requested()) {
            in.failed = std::make_error_code(std::errc::operation_canceled);
            co_return in.failed;
        }
        runtime::StopRegistration cancel;
        cancel.arm(caller, [](void* source) noexcept { static_cast<runtime::StopSource*>(source)->request_stop(); },
                   &read_stop_);
        auto r = co_await receive(limit);
        cancel.disarm();
        if (!r || r->empty()) {
            if (!r && timed_out_) {
                in.failed = std::make_error_code(std::errc::timed_out);
            } else if (r) {
                in.failed = std::make_error_code(std::errc::connection_aborted);
                log_error("unexpected EOF while reading the request body", true);
            } else {
                in.failed = r.error();
                if (r.error() != std::errc::operation_canceled) {
                    log_error(fmt::format("error when reading the request body: {}", r.error().message()),
                              io::is_disconnect(r.error()));
                }
            }
            co_return in.failed;
        }
        lease_ = std::move(*r);
    }
}

runtime::Task<> Connection::join_detached() {
    if (!detached_handler_.valid()) {
        co_return;
    }
    struct Wait {
        std::coroutine_handle<runtime::Task<>::promise_type> h;
        bool await_ready() const noexcept { return h.done(); }
        void await_suspend(std::coroutine_handle<> me) noexcept { h.promise().continuation_ = me; }
        void await_resume() const noexcept {}
    };
    co_await Wait{detached_handler_.handle()};
    try {
        detached_handler_.handle().promise().result();
    } catch (...) {
        // The client has its answer; what the handler did after is only worth a log line.
        log_error(fmt::format("a handler failed after its response was sent: {}",
                              describe_exception(std::current_exception())),
                  true);
    }
    detached_handler_ = runtime::Task<>();
    in_stream_ = BodyStream{};
    st_.give_exchange(std::exchange(detached_exchange_, nullptr));
}

runtime::Task<bool> Connection::stream_write(Exchange& x, std::string_view data) {
    if (send_error_ != 0 || x.response.sealed()) {
        co_return false; // gone, or sealed (a timeout already answered): nothing more is sent
    }
    const RequestHead& head = x.request.head_;
    const bool http10 = head.version_minor == 0;
    const bool head_only = head.method == Method::head;
    if (!x.streaming_) {
        Response& r = x.response;
        if (!r.body().empty()) {
            // It would be dropped without a word: the head goes out now and only the written
            // chunks follow it.
            throw std::logic_error("Exchange::write: the response already has a body (set_body, json, text): write "
                                   "all of it with write(), or answer without write()");
        }
        HeadPlan plan;
        plan.head_request = head_only;
        std::uint64_t declared = 0;
        const std::string_view length = r.header("Content-Length");
        if (!length.empty()) {
            // Known length: identity encoding, keep-alive stays possible (HTTP/1.0 too).
            const auto [end, ec] = std::from_chars(length.data(), length.data() + length.size(), declared);
            if (ec != std::errc{} || end != length.data() + length.size()) {
                throw std::logic_error(fmt::format("Exchange::write: invalid Content-Length {:?}", length));
            }
            if (data.size() > declared) {
                throw std::logic_error(fmt::format(
                    "Exchange::write: {} bytes exceed the declared Content-Length ({})", data.size(), declared));
            }
            x.stream_known_length_ = true;
            x.stream_remaining_ = declared;
            plan.close = r.close() || closing_ || close_planned_;
            plan.keep_alive_10 = http10 && !plan.close;
        } else {
            plan.close = http10 || r.close() || closing_ || close_planned_;
            plan.chunked = !http10;
            plan.close_delimited = http10;
            if (http10) {
                closing_ = true; // the body ends when the connection does
            }
        }
        x.streaming_ = true;
        ensure_pending();
        write_head(pending_, r, declared, plan, st_.options, st_.date);
    } else if (x.stream_known_length_ && data.size() > x.stream_remaining_) {
        throw std::logic_error(fmt::format("Exchange::write: {} bytes exceed the declared Content-Length ({} left)",
                                           data.size(), x.stream_remaining_));
    }
    ensure_pending();
    if (x.stream_known_length_) {
        x.stream_remaining_ -= data.size();
    }
    // A large piece is sent from the caller's memory (which it keeps until this returns),
    // not copied: the write waits for it to reach the kernel. Small pieces are copied and
    // coalesce until kStreamHighWater bytes wait (a client that does not read holds the
    // handler there), so a stream holds at most two output buffers whatever its length.
    bool zero_copy = false;
    if (!head_only && !data.empty()) {
        const bool chunk = !x.stream_known_length_ && !http10;
        if (chunk) {
            char size_line[24];
            const auto n = fmt::format_to_n(size_line, sizeof size_line, "{:x}\r\n", data.size()).size;
            pending_.append(std::string_view(size_line, n));
        }
        zero_copy = queue_body(data, true);
        if (chunk) {
            pending_.append("\r\n");
        }
    }
    queue_flush();
    if (zero_copy || pending_bytes() > kStreamHighWater) {
        co_await drain_output();
    }
    co_return send_error_ == 0;
}

runtime::Task<bool> Connection::stream_flush() {
    co_await drain_output();
    co_return send_error_ == 0;
}

void Connection::stream_end(Exchange& x) {
    const RequestHead& head = x.request.head_;
    if (x.stream_known_length_) {
        if (x.stream_remaining_ != 0 && head.method != Method::head) {
            // The declared length was not met: the framing is broken, so the client must see
            // the connection end after what was sent rather than wait or misparse.
            log_error(fmt::format("streamed response ended {} bytes short of its Content-Length{}; closing",
                                  x.stream_remaining_, request_details(&x, true, {})),
                      false);
            closing_ = true;
        }
        queue_flush();
        return;
    }
    if (head.version_minor == 0 || head.method == Method::head) {
        queue_flush();
        return;
    }
    ensure_pending();
    pending_.append("0\r\n");
    for (const Response::Field& f : x.trailers_) {
        pending_.append(f.name);
        pending_.append(": ");
        pending_.append(f.value);
        pending_.append("\r\n");
    }
    pending_.append("\r\n");
    queue_flush();
}

void Connection::early_hints(Exchange& x) {
    if (x.request.head_.version_minor == 0 || x.streaming_) {
        return; // never a 1xx to an HTTP/1.0 client, nor after the final head
    }
    ensure_pending();
    pending_.append("HTTP/1.1 103 Early Hints\r\n");
    for (const Response::Field& f : x.response.fields()) {
        if (iequals(f.name, "Link")) {
            pending_.append("Link: ");
            pending_.append(f.value);
            pending_.append("\r\n");
        }
    }
    pending_.append("\r\n");
    queue_flush();
}

/// Make `node` fire within `bound` from now (0 = leave it): re-armed only if it would fire later.
static void due_within(io::TimerNode& node, milliseconds bound) noexcept {
    if (bound.count() <= 0) {
        return;
    }
    auto& timers = io::detail::current_impl().timers();
    const auto tick = io::detail::ReactorImpl::to_tick_ceil(io::Clock::now() + bound);
    if (!node.linked() || node.deadline_ > tick) {
        timers.remove(node);
        timers.add(node, tick);
    }
}

void ReactorState::begin_shutdown() noexcept {
    shutdown.request_stop();
    // Idle keep-alive connections close at once; busy ones finish their request first.
    for (Connection* c = connections; c != nullptr; c = c->next_) {
        c->shutdown_began();
    }
    // Parked ones too; one that has not sent its first request yet gets header_read_timeout
    // to send it, as an unparked one does.
    for (ConnRecord* rec = parked; rec != nullptr;) {
        ConnRecord* next = rec->next;
        if (rec->requests != 0) {
            close_parked(rec);
        } else {
            due_within(rec->idle_timer, options.header_read_timeout);
        }
        rec = next;
    }
    // The grace period, counted from the first shutdown that names one (serve() disarms it).
    const std::int64_t grace = server.grace_ms();
    if (grace >= 0 && serving && !grace_armed) {
        grace_armed = true;
        auto& impl = io::detail::current_impl();
        impl.timers().add(grace_timer, io::detail::ReactorImpl::to_tick_ceil(io::Clock::now() + milliseconds(grace)));
    }
}

void ReactorState::cut_connections() noexcept {
    if (cut.stop_requested()) {
        return;
    }
    std::size_t n = 0;
    for (Connection* c = connections; c != nullptr; c = c->next_) {
        c->cut();
        ++n;
    }
    while (parked != nullptr) {
        close_parked(parked); // idle: nothing in flight is cut, but counted like the rest
        ++n;
    }
    stats.connections_cut += n;
    cut.request_stop(); // the workers' and reject()'s pending I/O ends now
    if (n != 0) {
        log(fmt::format("shutdown grace period over: {} connection(s) cut", n));
    }
}

void Connection::shutdown_began() noexcept {
    if (!idle_) {
        return; // busy: its request finishes first
    }
    if (rec_->requests != 0) {
        read_stop_.request_stop();
        return;
    }
    due_within(read_timer_, st_.options.header_read_timeout);
}

void Connection::cut() noexcept {
    closing_ = true;
    read_stop_.request_stop();
    if (handler_running_ || detached_handler_.valid()) {
        handler_stop_.request_stop();
    }
    if (send_error_ == 0) {
        send_error_ = -ECANCELED; // no further send starts; a partial one does not continue
    }
    if (send_inflight_) {
        io::detail::current_impl().cancel(&send_op_);
    }
}

runtime::Task<> serve_connection(ReactorState& st, ConnRecord* rec);
runtime::Task<> serve_connection(ReactorState& st, ConnRecord* rec) {
    Connection conn(st, *rec);
    co_await conn.run();
    if (conn.parked()) {
        co_return; // ~Connection parks the record
    }
    co_await conn.finish();
    co_await conn.join_detached();
}

} // namespace detail

runtime::Task<bool> Exchange::write(std::string_view data) {
    return static_cast<detail::Connection*>(connection_)->stream_write(*this, data);
}

runtime::Task<bool> Exchange::flush() { return static_cast<detail::Connection*>(connection_)->stream_flush(); }

void Exchange::add_trailer(FieldName name, std::string_view value) {
    trailers_.push_back(Response::Field{detail::keep_field_name(arena_, name), detail::copy_field_value(arena_, value)});
}

runtime::Task<io::Result<std::string_view>> Exchange::read_body() {
    return static_cast<detail::Connection*>(connection_)->stream_read(*this);
}

void Exchange::send_early_hints() { static_cast<detail::Connection*>(connection_)->early_hints(*this); }

void Exchange::respond_now() noexcept {
    if (connection_ != nullptr) {
        static_cast<detail::Connection*>(connection_)->respond_now(*this);
    } else {
        respond_now_ = true;
        response.set_close();
        response.seal();
    }
}

// -----------------------------------------------------------------------------------------
// HijackedConn

HijackedConn::HijackedConn(io::Socket& socket, std::string already_read) noexcept
    : socket_(&socket), prefix_(std::move(already_read)) {}

HijackedConn::HijackedConn(std::unique_ptr<io::Socket> socket, std::string already_read) noexcept
    : socket_(socket.get()), owned_(std::move(socket)), prefix_(std::move(already_read)) {}

HijackedConn::HijackedConn(HijackedConn&& other) noexcept
    : socket_(std::exchange(other.socket_, nullptr)), owned_(std::move(other.owned_))
    , prefix_(std::move(other.prefix_)), prefix_taken_(other.prefix_taken_), lease_(std::move(other.lease_)) {}

namespace {
runtime::Task<> close_abandoned(std::unique_ptr<io::Socket> socket) { co_await socket->close(); }
} // namespace

HijackedConn::~HijackedConn() {
    lease_.release();
    if (owned_ && owned_->is_open()) {
        // Owned (keep_hijacked_conns) and never closed: close it properly from a detached task
        // (an armed socket must not be destroyed).
        if (io::Reactor* r = io::Reactor::current()) {
            try {
                r->spawn(close_abandoned(std::move(owned_)));
            } catch (...) { // NOLINT(bugprone-empty-catch): out of memory; the Socket dtor closes
            }
        }
    }
}

runtime::Task<io::Result<std::string_view>> HijackedConn::recv() {
    lease_.release();
    if (!prefix_taken_) {
        prefix_taken_ = true;
        if (!prefix_.empty()) {
            co_return std::string_view(prefix_);
        }
    }
    auto r = co_await socket_->recv();
    if (!r) {
        co_return r.error();
    }
    lease_ = std::move(*r);
    co_return lease_.view();
}

runtime::Task<> HijackedConn::close() {
    lease_.release();
    if (socket_ != nullptr) {
        co_await socket_->close();
    }
}

// -----------------------------------------------------------------------------------------
// Server

Server::Server(ServerOptions options) : options_(std::move(options)) {
    options_.validate();
    per_ip_ = std::make_unique<detail::PerIpTable>();
}
Server::~Server() = default;

detail::ReactorState& Server::state_for_current_reactor() {
    io::Reactor* r = io::Reactor::current();
    if (r == nullptr) {
        throw std::logic_error("ringwork: Server used outside a reactor thread");
    }
    std::lock_guard lock(states_mutex_);
    for (auto& s : states_) {
        if (&s->reactor == r) {
            return *s;
        }
    }
    states_.push_back(std::make_unique<detail::ReactorState>(*this, *r));
    if (shutting_down()) {
        states_.back()->shutdown.request_stop();
    }
    return *states_.back();
}

runtime::Task<> Server::serve_conn(io::Socket socket) {
    detail::ReactorState& st = state_for_current_reactor();
    open_.fetch_add(1, std::memory_order_relaxed);
    detail::ConnRecord* rec = st.take_record();
    rec->socket = std::move(socket);
    rec->may_park = false; // this task ends with the connection
    co_await detail::serve_connection(st, rec);
}

namespace {

constexpr std::string_view kConcurrencyBody =
    "The connection cannot be served because Server.Concurrency limit exceeded";

constexpr std::string_view kPerIpBody = "The number of connections from your ip exceeds MaxConnsPerIP";

std::string peer_ip(int fd) {
    io::SocketAddress peer;
    peer.length = sizeof(peer.storage);
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer.storage), &peer.length) != 0) { // NOLINT
        return "?";
    }
    std::string text = peer.to_string();
    const auto colon = text.rfind(':'); // drop the port: "1.2.3.4:5" / "[::1]:5"
    return colon == std::string::npos ? text : text.substr(0, colon);
}

/// Answer a connection we cannot serve with a fast canned response and close it (no worker).
runtime::Task<> reject(detail::ReactorState* st, io::Socket socket, int status, std::string_view body, bool report) {
    if (report) {
        st->notify_state(socket.fd(), ConnState::new_connection);
    }
    ByteBuffer out(512);
    detail::write_simple(out, status, body, st->options, st->date, true);
    (void)co_await socket.send(out.view());
    if (report) {
        st->notify_state(socket.fd(), ConnState::closed);
    }
    co_await socket.close();
}

/// TCPKeepalive/TCPKeepalivePeriod on an accepted socket (once per connection).
void set_keepalive(const detail::ReactorState& st, int fd) {
    const int one = 1;
    bool ok = ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one) == 0;
    if (ok && st.options.tcp_keepalive_period.count() > 0) {
        const auto secs = std::chrono::ceil<std::chrono::seconds>(st.options.tcp_keepalive_period);
        const int period = static_cast<int>(std::max<std::chrono::seconds::rep>(secs.count(), 1));
        ok = ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &period, sizeof period) == 0 &&
             ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &period, sizeof period) == 0;
    }
    if (!ok) {
        st.log(fmt::format("cannot enable TCP keep-alive on an accepted connection: {}",
                           std::error_code(errno, std::system_category()).message()));
    }
}

/// reduce_memory_usage: give idle pooled memory back every `interval`, not only when the
/// reaper retires workers.
runtime::Task<> trim_loop(detail::ReactorState* st, milliseconds interval) {
    for (;;) {
        try {
            co_await io::sleep_for(interval);
        } catch (const runtime::OperationCancelled&) {
            break;
        }
        st->trim_out_pool(st->out_holders, false); // reduce_memory_usage: the instant's reserve only
        st->body_pool.trim();
        st->carry_pool.trim();
        io::detail::current_impl().spare().trim();
        runtime::FramePool::trim();
    }
}

/// Hand an accepted connection to a worker, or answer 429/503 when a limit is reached.
/// Returns true when accepting should pause (SleepWhenConcurrencyLimitsExceeded).
bool admit(detail::ReactorState* st, io::Socket accepted, bool tcp) {
    Server& server = st->server;
    const std::size_t limit = st->options.concurrency;
    detail::IpKey ip;
    if (st->options.max_conns_per_ip != 0 && tcp) {
        io::SocketAddress peer;
        peer.length = sizeof(peer.storage);
        if (::getpeername(accepted.fd(), reinterpret_cast<sockaddr*>(&peer.storage), &peer.length) == 0) { // NOLINT
            ip = detail::IpKey::of(peer);
        }
        if (ip.known() && !server.per_ip_->acquire(ip, st->options.max_conns_per_ip)) {
            ++st->stats.rejected_per_ip;
            const auto now = io::Clock::now();
            if (now - st->last_per_ip_log > std::chrono::minutes(1)) {
                st->last_per_ip_log = now;
                st->log(fmt::format("the number of connections from {} exceeds max_conns_per_ip={}",
                                    peer_ip(accepted.fd()), st->options.max_conns_per_ip));
            }
            st->reactor.spawn(reject(st, std::move(accepted), 429, kPerIpBody, false)
                                  .with_stop_token(runtime::StopToken(st->cut)));
            return false;
        }
    }
    if (st->options.tcp_keepalive && tcp) {
        set_keepalive(*st, accepted.fd());
    }
    // The global limit: one atomic add per accept, never per request.
    const bool over = server.open_.fetch_add(1, std::memory_order_relaxed) >= limit;
    if (!over) {
        detail::ConnRecord* rec = st->take_record();
        rec->socket = std::move(accepted);
        rec->ip = ip;
        if (st->workers.serve(rec)) {
            return false;
        }
        accepted = std::move(rec->socket);
        rec->ip = detail::IpKey{};
        st->give_record(rec);
    }
    if (ip.known()) {
        server.per_ip_->release(ip);
    }
    server.open_.fetch_sub(1, std::memory_order_relaxed);
    ++st->stats.rejected_concurrency;
    const auto now = io::Clock::now();
    if (now - st->last_limit_log > std::chrono::minutes(1)) {
        st->last_limit_log = now;
        st->log(fmt::format("the connection cannot be served because Server.Concurrency limit ({}) "
                            "exceeded; try increasing ServerOptions.concurrency",
                            limit));
    }
    st->reactor.spawn(reject(st, std::move(accepted), 503, kConcurrencyBody, true)
                          .with_stop_token(runtime::StopToken(st->cut)));
    return st->options.sleep_when_concurrency_limits_exceeded.count() > 0;
}

runtime::Task<> accept_loop(detail::ReactorState* st, io::Listener* listener, bool tcp) {
    // Once the shutdown began, accept_backlog() takes what is left (bounded), not this loop.
    while (!st->shutdown.stop_requested()) {
        auto accepted = co_await listener->accept();
        if (accepted) {
            if (admit(st, std::move(*accepted), tcp)) {
                try {
                    co_await io::sleep_for(st->options.sleep_when_concurrency_limits_exceeded);
                } catch (const runtime::OperationCancelled&) {
                    break;
                }
            }
            continue;
        }
        if (accepted.error() == std::errc::operation_canceled || st->shutdown.stop_requested() ||
            accepted.error() == std::errc::bad_file_descriptor) {
            break;
        }
        // EMFILE/ENFILE and similar: keep serving what we have, retry shortly.
        ++st->stats.accept_errors;
        const auto now = io::Clock::now();
        if (now - st->last_accept_error_log > std::chrono::minutes(1)) {
            st->last_accept_error_log = now;
            st->log(fmt::format("accept failed: {}; retrying", accepted.error().message()));
        }
        try {
            co_await io::sleep_for(milliseconds(100));
        } catch (const runtime::OperationCancelled&) {
            break;
        }
    }
}

/// Shutdown: end the multishot accept (waiting for its final completion), then serve what
/// it had accepted and what the kernel still queues (non-blocking accept4, at most a few
/// backlogs' worth: shutdown-time syscalls, not the ring).
runtime::Task<> accept_backlog(detail::ReactorState* st, io::Listener* listener, bool tcp) {
    co_await listener->disarm();
    while (auto queued = listener->try_accept()) {
        ++st->stats.backlog_accepted;
        (void)admit(st, std::move(*queued), tcp);
    }
    const int fd = listener->fd();
    if (fd < 0) {
        co_return;
    }
    // Another reactor may share this socket (a Unix listener): never block on an empty queue.
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
        co_return;
    }
    for (int i = 0; i < SOMAXCONN * 16; ++i) {
        const int c = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED) {
                continue;
            }
            break; // EAGAIN: the queue is empty (EMFILE and co: what remains is reset on close)
        }
        ++st->stats.backlog_accepted;
        (void)admit(st, io::Socket(c), tcp);
    }
}

struct WorkersGone {
    detail::ReactorState* st;
    bool await_ready() const noexcept { return st->workers.alive() == 0; }
    void await_suspend(std::coroutine_handle<> h) noexcept { st->workers.all_gone_waiter = h; }
    void await_resume() const noexcept {}
};

struct Drained {
    detail::ReactorState* st;
    bool await_ready() const noexcept { return st->active == 0; }
    void await_suspend(std::coroutine_handle<> h) noexcept { st->drained_waiter = h; }
    void await_resume() const noexcept {}
};

} // namespace

runtime::Task<> Server::serve(io::Listener& listener) { co_await serve(std::span<io::Listener>(&listener, 1)); }

runtime::Task<> Server::serve(std::span<io::Listener> listeners) {
    detail::ReactorState& st = state_for_current_reactor();
    // The reactor stopping (signal, Runtime::stop) starts a graceful shutdown of this share.
    auto begin = [this, s = &st]() noexcept {
        shutting_down_.store(true, std::memory_order_release); // a signal too: mw::health drains
        s->begin_shutdown();
    };
    runtime::StopCallback<decltype(begin)> on_stop(st.reactor.stop_token(), begin);
    {
        std::lock_guard lock(states_mutex_);
        st.finished = false;
    }
    st.serving = true;
    if (st.shutdown.stop_requested()) {
        st.begin_shutdown(); // shut down before serve() started: arm the grace period now
    }
    if (st.options.max_idle_worker_duration.count() > 0) {
        st.reactor.spawn(detail::run_reaper(&st, st.options.max_idle_worker_duration)
                             .with_stop_token(runtime::StopToken(st.shutdown)));
        if (st.options.reduce_memory_usage) {
            st.reactor.spawn(trim_loop(&st, st.options.max_idle_worker_duration)
                                 .with_stop_token(runtime::StopToken(st.shutdown)));
        }
    }
    if (listeners.size() == 1) {
        auto loop = accept_loop(&st, &listeners[0], !listeners[0].local_address().is_unix())
                        .with_stop_token(runtime::StopToken(st.shutdown));
        co_await std::move(loop);
    } else if (!listeners.empty()) {
        std::vector<runtime::Task<>> loops;
        loops.reserve(listeners.size());
        for (io::Listener& l : listeners) {
            loops.push_back(accept_loop(&st, &l, !l.local_address().is_unix())
                                .with_stop_token(runtime::StopToken(st.shutdown)));
        }
        auto all = runtime::when_all(std::move(loops));
        (void)co_await std::move(all);
    }
    for (io::Listener& l : listeners) {
        // What the kernel queued before the multishot accept ended was accepted on the
        // clients' behalf: serve it (first request only) rather than reset it.
        co_await accept_backlog(&st, &l, !l.local_address().is_unix());
        co_await l.close();
    }
    st.workers.stop(); // ready workers retire now, busy ones when their connection ends
    while (st.active != 0) {
        co_await Drained{&st};
    }
    while (st.workers.alive() != 0) {
        co_await WorkersGone{&st};
    }
    io::detail::current_impl().timers().remove(st.grace_timer);
    st.serving = false;
    std::lock_guard lock(states_mutex_); // shutdown() from another thread must not post to a
    st.finished = true;                  // reactor that may be destroyed once we return
}

namespace {

/// Close every descriptor of `fds` (listen_and_serve_fds owns them).
struct CloseAll {
    std::vector<int>& fds;
    ~CloseAll() {
        for (const int fd : fds) {
            if (fd >= 0) {
                ::close(fd);
            }
        }
    }
};

} // namespace

void Server::listen_and_serve(const io::SocketAddress& address, unsigned threads,
                              std::function<void(std::uint16_t)> on_ready) {
    if (!address.is_unix()) {
        run_reactors(address, {}, threads, on_ready);
        return;
    }
    // One socket for every reactor (SO_REUSEPORT does not apply to Unix sockets): bound here,
    // so a bad path fails before any thread starts.
    io::Listener bound = io::Listener::bind(address);
    const std::string path = address.path();
    struct stat made {};
    const bool file = !path.empty() && path.front() != '@' && ::stat(path.c_str(), &made) == 0;
    std::vector<int> fds{bound.release()};
    struct Unlink {
        const std::string& path;
        bool file;
        struct stat made;
        ~Unlink() {
            struct stat now {};
            // Only our own socket file: another server may have replaced it meanwhile.
            if (file && ::lstat(path.c_str(), &now) == 0 && now.st_ino == made.st_ino && now.st_dev == made.st_dev) {
                ::unlink(path.c_str());
            }
        }
    } unlink_at_end{path, file, made};
    listen_and_serve_fds(std::move(fds), threads, std::move(on_ready));
}

void Server::listen_and_serve_fds(std::vector<int> fds, unsigned threads,
                                  std::function<void(std::uint16_t)> on_ready) {
    CloseAll close_all{fds};
    if (fds.empty()) {
        throw std::invalid_argument("listen_and_serve_fds: no descriptors to serve");
    }
    for (const int fd : fds) {
        io::Listener checked = io::Listener::adopt(fd); // throws naming the fd
        (void)checked.release();
    }
    run_reactors(io::SocketAddress{}, fds, threads, on_ready);
}

std::vector<int> Server::systemd_listen_fds() {
    auto number = [](const char* name) -> long {
        const char* text = std::getenv(name);
        if (text == nullptr || *text == '\0') {
            throw std::runtime_error(fmt::format("{}: not set (the process was not started by systemd socket activation)",
                                                 name));
        }
        long v = 0;
        const std::string_view sv(text);
        const auto [end, ec] = std::from_chars(sv.data(), sv.data() + sv.size(), v);
        if (ec != std::errc{} || end != sv.data() + sv.size() || v <= 0) {
            throw std::runtime_error(fmt::format("{}: {:?} is not a positive number", name, sv));
        }
        return v;
    };
    const long pid = number("LISTEN_PID");
    if (pid != static_cast<long>(::getpid())) {
        throw std::runtime_error(fmt::format("LISTEN_PID: {} is not this process ({})", pid, ::getpid()));
    }
    const long count = number("LISTEN_FDS");
    constexpr int kFirst = 3; // SD_LISTEN_FDS_START
    if (count > 4096) {
        throw std::runtime_error(fmt::format("LISTEN_FDS: {} descriptors is implausible", count));
    }
    std::vector<int> fds;
    fds.reserve(static_cast<std::size_t>(count));
    for (int fd = kFirst; fd < kFirst + static_cast<int>(count); ++fd) {
        const int flags = ::fcntl(fd, F_GETFD);
        if (flags < 0) {
            throw std::runtime_error(fmt::format("LISTEN_FDS: fd {} is not open", fd));
        }
        ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
        fds.push_back(fd);
    }
    ::unsetenv("LISTEN_PID");
    ::unsetenv("LISTEN_FDS");
    ::unsetenv("LISTEN_FDNAMES");
    return fds;
}

void Server::run_reactors(const io::SocketAddress& address, const std::vector<int>& fds, unsigned threads,
                          std::function<void(std::uint16_t)>& on_ready) {
    io::RuntimeOptions runtime_options;
    runtime_options.threads = threads;
    runtime_options.reactor.buffer_size = options_.read_buffer_size;
    runtime_options.reactor.buffer_count = options_.buffer_count;
    runtime_options.reactor.sq_entries = options_.ring_entries;
    runtime_options.reactor.backend = options_.backend;
    runtime_options.reactor.cq_entries = std::max(runtime_options.reactor.cq_entries, options_.ring_entries);
    io::Runtime runtime(runtime_options);
    // TCP: every reactor's SO_REUSEPORT listener is bound here, before any of them starts, so a
    // busy port or a bad address fails listen_and_serve itself (it used to fail inside the
    // reactors, where the error was logged and the process went on serving nothing). Unless
    // share_port, the first bind also checks that no other socket holds the port.
    std::vector<io::Listener> tcp;
    std::uint16_t tcp_port = 0;
    if (fds.empty()) {
        io::SocketAddress where = address;
        tcp.reserve(runtime.size());
        for (unsigned i = 0; i < runtime.size(); ++i) {
            io::ListenOptions listen_options;
            listen_options.exclusive = i == 0 && !options_.share_port;
            try {
                tcp.push_back(io::Listener::bind(where, listen_options));
            } catch (const std::system_error& e) {
                if (e.code() == std::errc::address_in_use && listen_options.exclusive) {
                    throw std::system_error(e.code(), fmt::format("bind {}: another socket is bound to this port "
                                                                  "(ServerOptions::share_port lets this server join "
                                                                  "one that another process of this user listens on, "
                                                                  "e.g. for a restart)",
                                                                  where.to_string()));
                }
                throw;
            }
            if (i == 0) {
                tcp_port = tcp.front().local_address().port();
                where.set_port(tcp_port); // port 0: the others join the first's
            }
        }
    }
    std::atomic<std::uint16_t> port{tcp_port};
    std::atomic<unsigned> bound{0};
    {
        std::lock_guard lock(states_mutex_);
        runtime_ = &runtime;
    }
    struct Args {
        Server* server;
        const std::vector<int>* fds;
        std::vector<io::Listener>* tcp;
        std::atomic<std::uint16_t>* port;
        std::atomic<unsigned>* bound;
        unsigned threads;
        std::function<void(std::uint16_t)>* on_ready;
    };
    Args args{this, &fds, &tcp, &port, &bound, runtime.size(), &on_ready};
    try {
        runtime.run([&args](io::Reactor&, unsigned index) -> runtime::Task<> {
            return [](Args a, unsigned idx) -> runtime::Task<> {
                if (!a.fds->empty()) {
                    // Inherited or shared sockets: this reactor's own dup() of each (closing it
                    // leaves the others' open), with its own multishot accept.
                    std::vector<io::Listener> listeners;
                    listeners.reserve(a.fds->size());
                    for (const int fd : *a.fds) {
                        const int mine = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
                        if (mine < 0) {
                            throw std::system_error(errno, std::generic_category(), fmt::format("dup of fd {}", fd));
                        }
                        listeners.emplace_back(mine);
                    }
                    if (idx == 0) {
                        a.port->store(listeners.front().local_address().port());
                    }
                    if (a.bound->fetch_add(1) + 1 == a.threads && *a.on_ready) {
                        (*a.on_ready)(a.port->load());
                    }
                    co_await a.server->serve(std::span<io::Listener>(listeners));
                    co_return;
                }
                // This reactor's listener, bound above (each reactor takes only its own slot).
                io::Listener listener = std::move((*a.tcp)[idx]);
                if (a.bound->fetch_add(1) + 1 == a.threads && *a.on_ready) {
                    (*a.on_ready)(a.port->load());
                }
                co_await a.server->serve(listener);
            }(args, index);
        });
    } catch (...) {
        std::lock_guard lock(states_mutex_);
        runtime_ = nullptr;
        end_states_locked();
        throw;
    }
    std::lock_guard lock(states_mutex_);
    runtime_ = nullptr;
    end_states_locked();
}

std::int64_t Server::grace_ms() const noexcept {
    const std::int64_t g = grace_ms_.load(std::memory_order_acquire);
    if (g >= 0) {
        return g;
    }
    return options_.shutdown_timeout.count() > 0 ? options_.shutdown_timeout.count() : -1;
}

void Server::shutdown(milliseconds grace) noexcept {
    std::int64_t none = -1;
    // The first grace named wins (a running period is never lengthened).
    grace_ms_.compare_exchange_strong(none, std::max<std::int64_t>(grace.count(), 0), std::memory_order_acq_rel);
    shutdown();
}

void Server::shutdown() noexcept {
    shutting_down_.store(true, std::memory_order_release);
    std::lock_guard lock(states_mutex_);
    for (auto& s : states_) {
        if (s->finished) {
            continue; // served to its end; its reactor may already be destroyed
        }
        if (s->reactor.impl().on_owner_thread()) {
            s->begin_shutdown();
        } else if (!s->shutdown_work.queued.exchange(true, std::memory_order_acq_rel)) {
            s->reactor.post(&s->shutdown_work); // never twice while queued (an intrusive node)
        }
    }
    if (runtime_ != nullptr) {
        runtime_->stop();
    }
}

std::vector<std::vector<io::Clock::time_point>> Server::ready_workers() const {
    struct Ask : io::RemoteWork {
        Ask() : RemoteWork([](io::RemoteWork* w) noexcept {
            auto* self = static_cast<Ask*>(w);
            std::vector<io::Clock::time_point> out;
            for (const detail::Worker* worker : self->state->workers.ready()) {
                out.push_back(worker->last_use);
            }
            std::lock_guard lock(self->mutex);
            self->result = std::move(out);
            self->done = true;
            self->cv.notify_one();
        }) {}
        detail::ReactorState* state = nullptr;
        std::mutex mutex;
        std::condition_variable cv;
        bool done = false;
        std::vector<io::Clock::time_point> result;
    };
    std::vector<detail::ReactorState*> states;
    {
        std::lock_guard lock(states_mutex_);
        for (const auto& st : states_) {
            if (!st->finished) { // a finished reactor may be gone: it would never answer
                states.push_back(st.get());
            }
        }
    }
    std::vector<std::vector<io::Clock::time_point>> all;
    for (detail::ReactorState* st : states) {
        Ask ask;
        ask.state = st;
        st->reactor.post(&ask);
        std::unique_lock lock(ask.mutex);
        ask.cv.wait(lock, [&] { return ask.done; });
        all.push_back(std::move(ask.result));
    }
    return all;
}

ServerStats Server::stats() const {
    std::lock_guard lock(states_mutex_);
    return stats_locked();
}

void Server::end_states_locked() {
    ServerStats t = stats_locked();
    // What was live ended with the reactors.
    t.connections_open = 0;
    t.workers_alive = 0;
    t.workers_ready = 0;
    t.workers_busy = 0;
    t.out_buffers_held = 0;
    t.out_buffers_pooled = 0;
    t.carry_buffers_held = 0;
    t.carry_buffers_pooled = 0;
    t.connections_parked = 0;
    ended_ = t;
    states_.clear();
}

ServerStats Server::stats_locked() const {
    ServerStats total = ended_;
    for (const auto& s : states_) {
        const auto& x = s->stats;
        total.connections_accepted += x.connections_accepted;
        total.connections_open += x.connections_open;
        total.requests += x.requests;
        total.parse_errors += x.parse_errors;
        total.head_copies += x.head_copies;
        total.carry_copies += x.carry_copies;
        total.exchange_pool_misses += x.exchange_pool_misses;
        total.buffer_pool_misses += s->out_pool.stats().misses + s->body_pool.stats().misses + s->carry_pool.stats().misses;
        total.sends += x.sends;
        total.rejected_concurrency += x.rejected_concurrency;
        total.rejected_per_ip += x.rejected_per_ip;
        total.accept_errors += x.accept_errors;
        const auto w = s->workers.stats();
        total.workers_alive += w.alive;
        total.workers_ready += w.ready;
        total.workers_busy += w.busy;
        total.workers_created += w.created;
        total.workers_retired += w.retired;
        total.out_buffers_held += s->out_held;
        total.out_buffers_pooled += s->out_pool.stats().held;
        total.carry_buffers_held += s->carry_held;
        total.carry_buffers_pooled += s->carry_pool.stats().held;
        total.body_bytes_copied += x.body_bytes_copied;
        total.body_bytes_zero_copy += x.body_bytes_zero_copy;
        total.reset_watches += x.reset_watches;
        total.handlers_cancelled += x.handlers_cancelled;
        total.handlers_detached += x.handlers_detached;
        total.bodies_streamed += x.bodies_streamed;
        total.streamed_bodies_unread += x.streamed_bodies_unread;
        total.backlog_accepted += x.backlog_accepted;
        total.connections_parked += x.connections_parked;
        total.parks += x.parks;
        total.connections_cut += x.connections_cut;
    }
    return total;
}

} // namespace ringwork::http
