// SPDX-License-Identifier: MIT
// ReactorState: one reactor's share of a Server (pools, date cache, live connections).
#pragma once

#include <ringwork/http/server.hpp>

#include "http/serializer.hpp"
#include "http/worker_pool.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

namespace ringwork::http::detail {

class Connection;

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
    BasicServerStats<runtime::Counter> stats; ///< this reactor's share; read by Server::stats() from any thread
    runtime::Counter out_held;    ///< output buffers taken from out_pool by live connections
    runtime::Counter carry_held;  ///< carry buffers taken from carry_pool by live connections
    runtime::StopSource shutdown;  ///< fires when the server shuts down (this reactor's view)
    std::size_t active = 0;        ///< connections being served on this reactor
    Connection* connections = nullptr; ///< intrusive list of live connections
    std::coroutine_handle<> drained_waiter{}; ///< serve() waiting for active == 0

    Exchange* take_exchange();
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
    } shutdown_work{this};
    void begin_shutdown() noexcept;

private:
    std::vector<std::unique_ptr<Exchange>> free_exchanges_;
};

} // namespace ringwork::http::detail
