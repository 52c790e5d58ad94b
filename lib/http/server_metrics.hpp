// SPDX-License-Identifier: MIT
// ServerMetricsAccess: each reactor's share of a Server's figures, read from any thread (scrapes).
#pragma once

#include <ringwork/http/server.hpp>
#include <ringwork/io/reactor.hpp>

#include <cstdint>
#include <vector>

namespace ringwork::http {

/// \brief One buffer pool of one reactor.
struct BufferPoolFigures {
    std::uint64_t hits = 0;       ///< takes served from the pool
    std::uint64_t misses = 0;     ///< takes that allocated a new buffer
    std::uint64_t idle = 0;       ///< buffers idle in the pool
    std::uint64_t idle_bytes = 0; ///< their bytes
};

/// \brief One reactor's share of a Server's figures.
struct ReactorFigures {
    ServerStats server;      ///< this reactor's share of Server::stats()
    BufferPoolFigures out;   ///< response head / copied body buffers
    BufferPoolFigures body;  ///< response body buffers
    BufferPoolFigures carry; ///< buffers of requests spanning receive buffers
    io::ReactorStats ring;   ///< the reactor's io_uring counters (io::Reactor::counters())
    unsigned sq_entries = 0; ///< submission queue size the ring got
    unsigned cq_entries = 0; ///< completion queue size the ring got (0 under epoll)
    io::Backend backend = io::Backend::io_uring; ///< what runs the reactor's I/O
};

/// \brief Reads what Server keeps per reactor (a friend of Server: the state list is private).
struct ServerMetricsAccess {
    /// \brief Every reactor that has served (in the order they started), under the server's
    /// state lock; race-free from any thread (every field read is a runtime::Counter or set
    /// before the reactor joined the list). Each value is exact; together they are not one
    /// consistent snapshot. The reactors must be alive: true while the server serves
    /// (listen_and_serve() drops them before its reactors end).
    [[nodiscard]] static std::vector<ReactorFigures> reactors(const Server& server);
};

} // namespace ringwork::http
