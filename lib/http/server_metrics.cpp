// SPDX-License-Identifier: MIT
// ServerMetricsAccess: each reactor's share of a Server's figures, read from any thread (scrapes).
#include "http/server_metrics.hpp"

#include "http/reactor_state.hpp"

#include <mutex>

namespace ringwork::http {

namespace {

BufferPoolFigures pool_figures(const BufferPool& pool) noexcept {
    const BufferPool::Stats& s = pool.stats();
    return {s.hits.load(), s.misses.load(), s.held.load(), s.bytes_held.load()};
}

/// This reactor's share, field for field as Server::stats() sums it.
ServerStats share_of(const detail::ReactorState& s) noexcept {
    const auto& x = s.stats;
    ServerStats t;
    t.connections_accepted = x.connections_accepted;
    t.connections_open = x.connections_open;
    t.requests = x.requests;
    t.parse_errors = x.parse_errors;
    t.head_copies = x.head_copies;
    t.carry_copies = x.carry_copies;
    t.exchange_pool_misses = x.exchange_pool_misses;
    t.buffer_pool_misses =
        s.out_pool.stats().misses + s.body_pool.stats().misses + s.carry_pool.stats().misses;
    t.sends = x.sends;
    t.rejected_concurrency = x.rejected_concurrency;
    t.rejected_per_ip = x.rejected_per_ip;
    t.accept_errors = x.accept_errors;
    const auto w = s.workers.stats();
    t.workers_alive = w.alive;
    t.workers_ready = w.ready;
    t.workers_busy = w.busy;
    t.workers_created = w.created;
    t.workers_retired = w.retired;
    t.out_buffers_held = s.out_held;
    t.out_buffers_pooled = s.out_pool.stats().held;
    t.carry_buffers_held = s.carry_held;
    t.carry_buffers_pooled = s.carry_pool.stats().held;
    t.body_bytes_copied = x.body_bytes_copied;
    t.body_bytes_zero_copy = x.body_bytes_zero_copy;
    t.reset_watches = x.reset_watches;
    t.handlers_cancelled = x.handlers_cancelled;
    t.handlers_detached = x.handlers_detached;
    t.bodies_streamed = x.bodies_streamed;
    t.streamed_bodies_unread = x.streamed_bodies_unread;
    t.backlog_accepted = x.backlog_accepted;
    t.connections_cut = x.connections_cut;
    t.connections_parked = x.connections_parked;
    t.parks = x.parks;
    return t;
}

} // namespace

std::vector<ReactorFigures> ServerMetricsAccess::reactors(const Server& server) {
    std::vector<ReactorFigures> out;
    std::lock_guard lock(server.states_mutex_);
    out.reserve(server.states_.size());
    for (const auto& st : server.states_) {
        ReactorFigures& f = out.emplace_back();
        f.server = share_of(*st);
        f.out = pool_figures(st->out_pool);
        f.body = pool_figures(st->body_pool);
        f.carry = pool_figures(st->carry_pool);
        f.ring = st->reactor.counters();
        f.sq_entries = st->reactor.features().sq_entries;
        f.cq_entries = st->reactor.features().cq_entries;
        f.backend = st->reactor.features().backend;
    }
    return out;
}

} // namespace ringwork::http
