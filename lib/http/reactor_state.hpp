// SPDX-License-Identifier: MIT
// ReactorState: one reactor's share of a Server (pools, date cache, live connections).
#pragma once

#include <ringwork/http/server.hpp>

#include "http/per_ip.hpp"
#include "http/serializer.hpp"
#include "http/worker_pool.hpp"

#include <ringwork/io/timer_node.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <new>
#include <string_view>
#include <vector>

namespace ringwork::http::detail {

class Connection;
class ReactorState;

/// \brief The part of a connection that lives as long as the connection: its socket (an armed
/// receive cannot move, so the socket never does), client address and request count. A
/// worker's Connection borrows it while serving; an idle keep-alive connection parks in it
/// alone (ServerOptions::idle_park_delay): no worker, frame or buffer, only this record and
/// the receive the kernel keeps armed. Pooled per reactor.
struct ConnRecord : io::Socket::ReadyHook {
    io::Socket socket;
    IpKey ip;
    std::uint64_t requests = 0; ///< requests served on the connection so far
    ReactorState* st = nullptr;
    ConnRecord* next = nullptr; ///< ReactorState::parked list
    ConnRecord* prev = nullptr;
    struct IdleTimer : io::TimerNode {
        ConnRecord* rec = nullptr;
    } idle_timer;               ///< the rest of the idle limit while parked
    bool may_park = true;       ///< false for Server::serve_conn (its task ends with the connection)
    bool opened = false;        ///< counted open (a Connection served it before)
    bool parked = false;
};

class ReactorState {
public:
    ReactorState(Server& server, io::Reactor& reactor);
    ReactorState(const ReactorState&) = delete;
    ReactorState& operator=(const ReactorState&) = delete;

    Server& server;
    io::Reactor& reactor;
    const ServerOptions& options;
    BufferPool out_pool;
    BufferPool body_pool;
    BufferPool carry_pool;
    DateCache date;
    WorkerPool workers;
    std::chrono::steady_clock::time_point last_limit_log{};
    std::chrono::steady_clock::time_point last_per_ip_log{};
    std::chrono::steady_clock::time_point last_accept_error_log{}; ///< EMFILE and co: its own minute
    BasicServerStats<runtime::Counter> stats; ///< this reactor's share; read by Server::stats() from any thread
    runtime::Counter out_held;    ///< output buffers taken from out_pool by live connections
    /// Live connections holding one output buffer or two (pending_ and sending_: a connection
    /// fills one while the other is in the kernel).
    std::size_t out_holders = 0;
    /// The most holders at once since the reaper's last tick: what its trim keeps a reserve for.
    std::size_t out_holders_peak = 0;
    /// Idle output buffers the pool must keep so that every holder can take its second one
    /// without allocating: 2 x out_holders - out_held.
    [[nodiscard]] std::size_t out_reserve() const noexcept { return out_reserve_for(out_holders); }
    /// A connection is about to take its first output buffer: its second is put in the pool
    /// now, so a later peak of sends in flight (every busy connection with two buffers at once)
    /// finds them all there. A pool grown on demand allocated at each new peak instead, at
    /// random moments long after warm-up (one allocation in 20,000 pipelined requests, issue 7).
    /// When the pool must grow for a new peak of holders it grows by a margin more
    /// (out_margin_for), so a load that wanders around its peak does not allocate at each
    /// new maximum. The caller counts the holder (++out_holders) once its buffer is taken, so
    /// a failed allocation changes nothing.
    void reserve_for_new_out_holder() {
        const std::size_t holders = out_holders + 1;
        out_holders_peak = std::max(out_holders_peak, holders);
        const std::size_t need = out_reserve_for(holders);
        if (out_pool.idle() < need) {
            out_pool.ensure_idle(need + out_margin_for(holders), out_held);
        }
    }
    /// After a trim, or a buffer the pool did not keep (grown past 16 times its size): give
    /// the holders their reserve back. A failed allocation only means a later pool miss.
    void restore_out_reserve() noexcept {
        try {
            out_pool.ensure_idle(out_reserve(), out_held);
        } catch (const std::bad_alloc&) {
        }
    }
    /// Free the idle output buffers but the reserve of `holders` busy connections, and with
    /// `margin` the growth's margin. The reaper passes the peak of its last interval, not the
    /// holders of this instant: a keep-alive connection between two requests holds no buffer,
    /// so the instant's count undercounts a steady load, and trimming to it made the load's
    /// next request allocate again. trim_loop (reduce_memory_usage) passes the instant's
    /// holders and no margin: memory over CPU.
    void trim_out_pool(std::size_t holders, bool margin) noexcept {
        holders = std::max(holders, out_holders);
        out_pool.trim(out_reserve_for(holders) + (margin ? out_margin_for(holders) : 0));
        restore_out_reserve(); // grown buffers dropped by the trim may have been part of it
    }
    /// The peak of holders since the last call (at least the holders now), and a new interval.
    std::size_t take_out_holders_peak() noexcept {
        const std::size_t peak = std::max(out_holders_peak, out_holders);
        out_holders_peak = out_holders;
        return peak;
    }
    runtime::Counter carry_held;  ///< carry buffers taken from carry_pool by live connections
    runtime::StopSource shutdown;  ///< fires when the server shuts down (this reactor's view)
    /// Fires when a shutdown's grace period ends: every connection's I/O ends at once (the
    /// workers and reject() run on this token, never on the reactor's own stop, so a stopping
    /// runtime does not cut the requests a graceful shutdown lets finish).
    runtime::StopSource cut;
    struct GraceTimer : io::TimerNode {
        ReactorState* st = nullptr;
    } grace_timer; ///< armed by begin_shutdown() while serve() runs; fires cut_connections()
    bool grace_armed = false; ///< a grace period is running (or has ended) on this reactor
    bool serving = false;     ///< serve() runs on this reactor (it disarms grace_timer at its end)
    /// serve() returned: the reactor may be gone, so no other thread posts to it any more
    /// (guarded by the Server's states mutex).
    bool finished = false;
    std::size_t active = 0;        ///< connections being served on this reactor
    Connection* connections = nullptr; ///< intrusive list of live connections
    std::coroutine_handle<> drained_waiter{}; ///< serve() waiting for active == 0

    ConnRecord* parked = nullptr; ///< idle connections without a worker (intrusive list)
    std::size_t parked_count = 0;

    /// A record for a new connection (pooled; allocates when the pool is empty).
    ConnRecord* take_record();
    /// Back to the pool once the connection is closed (socket closed or moved out).
    void give_record(ConnRecord* rec) noexcept;
    /// Free the pooled records (reaper, after workers retired).
    void trim_records() noexcept;
    /// A Connection leaves `rec` idle: wait for its next bytes without a worker, closing it
    /// after `idle_left` (0 = no limit). Bytes, end of stream or an error resume it on a worker.
    void park(ConnRecord* rec, milliseconds idle_left) noexcept;
    /// Close a parked connection (idle limit, shutdown, cut): it leaves the list at once, its
    /// socket closes in a coroutine, and the connection's accounting ends there.
    void close_parked(ConnRecord* rec) noexcept;
    /// The accounting of a connection that ends (open counts, per-IP table, drain waiter).
    void connection_closed(const IpKey& ip) noexcept;

    Exchange* take_exchange();
    Exchange* take_exchange_slot(); ///< take_exchange() without the start time
    void give_exchange(Exchange* x) noexcept;

    /// One line to ServerOptions::logger (default: stderr). Never throws.
    void log(std::string_view message) const noexcept;
    /// ServerOptions::conn_state, if set (a throwing callback is logged, not propagated).
    void notify_state(int fd, ConnState state) const noexcept {
        if (options.conn_state) {
            notify_state_slow(fd, state);
        }
    }
    void notify_state_slow(int fd, ConnState state) const noexcept;

    struct ShutdownWork : io::RemoteWork {
        explicit ShutdownWork(ReactorState* s) noexcept;
        ReactorState* state;
        std::atomic<bool> queued{false}; ///< posted and not yet run: never post a node twice
    } shutdown_work{this};
    /// Stop accepting, close idle connections; arm the grace timer when the server has one.
    void begin_shutdown() noexcept;
    /// End of the grace period: cancel every connection's I/O and its handler's waits.
    void cut_connections() noexcept;

    ~ReactorState();

private:
    [[nodiscard]] std::size_t out_reserve_for(std::size_t holders) const noexcept {
        const std::size_t held = out_held;
        return 2 * holders > held ? 2 * holders - held : 0;
    }
    /// What a growth adds beyond the need, and the reaper's trim keeps: a pair for a quarter
    /// more holders, at least 8 pairs of buffers up to 4 KiB (64 KiB at the default
    /// write_buffer_size; fewer pairs of bigger buffers, at least one), none for no holder. An
    /// eighth, and none below 8 holders, let every new peak of a small load allocate: 16
    /// keep-alive connections first all busy at once after 100,000 requests allocated 7 times.
    [[nodiscard]] std::size_t out_margin_for(std::size_t holders) const noexcept {
        if (holders == 0) {
            return 0;
        }
        const std::size_t floor = std::clamp<std::size_t>((32 * 1024) / out_pool.capacity(), 1, 8);
        return 2 * std::max(holders / 4, floor);
    }
    void unlink_parked(ConnRecord* rec) noexcept;
    std::vector<std::unique_ptr<Exchange>> free_exchanges_;
    std::vector<ConnRecord*> free_records_;
    std::size_t records_made_ = 0; ///< records alive (free or in use): the free list's bound
};

} // namespace ringwork::http::detail
