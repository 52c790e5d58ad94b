// SPDX-License-Identifier: MIT
// WorkerPool and reaper implementation.
#include "http/worker_pool.hpp"

#include "http/reactor_state.hpp"
#include "io/reactor_impl.hpp"

#include <ringwork/io/timer.hpp>
#include <ringwork/runtime/frame_pool.hpp>

#include <algorithm>
#include <memory>

namespace ringwork::http::detail {

runtime::Task<> serve_connection(ReactorState& st, ConnRecord* rec);

namespace {

struct Park {
    WorkerPool* pool;
    Worker* w;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) noexcept { pool->park(w, h); }
    void await_resume() const noexcept {}
};

/// The worker: serves the connection it was created for, then parks on the ready stack and
/// serves whatever it is handed, until retired. Its own frame holds only this loop; the
/// connection state lives in serve_connection's frame, freed when the connection ends.
runtime::Task<> worker_loop(ReactorState* st, WorkerPool* pool, ConnRecord* first, bool from_queue) {
    if (from_queue) {
        co_await runtime::yield(); // started from a completion callback: serve from the ready queue
    }
    Worker w;
    ConnRecord* rec = first;
    for (;;) {
        co_await serve_connection(*st, rec);
        if (pool->stopped()) {
            break;
        }
        co_await Park{pool, &w};
        if (w.retire) {
            break;
        }
        rec = std::exchange(w.next, nullptr);
    }
    pool->worker_ended();
}

} // namespace

bool WorkerPool::serve(ConnRecord* rec) { return hand_over(rec, false); }

bool WorkerPool::hand_over(ConnRecord* rec, bool from_queue) {
    if (!ready_.empty()) {
        Worker* w = ready_.back(); // FILO: the most recently used worker
        ready_.pop_back();
        ready_count_ = ready_.size();
        w->next = rec;
        io::detail::current_impl().schedule(std::exchange(w->parked, nullptr));
        return true;
    }
    if (alive_ >= max_workers_ || stopped_) {
        return false;
    }
    start_worker(rec, from_queue);
    return true;
}

void WorkerPool::resume(ConnRecord* rec) {
    // Called from Socket::on_recv (a completion being dispatched): a ready worker is scheduled,
    // a new one first yields, so the request never runs inside the completion callback.
    if (!hand_over(rec, true)) {
        start_worker(rec, true); // stopped (shutdown) or every worker busy: the connection was admitted
    }
}

void WorkerPool::start_worker(ConnRecord* rec, bool from_queue) {
    ++alive_;
    ++created_;
    // The stack never holds more than alive_ workers: room for all of them, so a park (a
    // connection's end, or a parked connection's idle worker) never allocates.
    if (ready_.capacity() < alive_) {
        ready_.reserve(std::max<std::size_t>(2 * alive_, 16));
    }
    // The connection's I/O observes the server's cut (end of a shutdown's grace period), not
    // the reactor's stop: a stopping runtime lets in-flight requests finish.
    st_.reactor.spawn(worker_loop(&st_, this, rec, from_queue).with_stop_token(runtime::StopToken(st_.cut)));
}

void WorkerPool::park(Worker* w, std::coroutine_handle<> h) noexcept {
    w->parked = h;
    w->last_use = io::Clock::now();
    ready_.push_back(w); // NOLINT: capacity reserved in start_worker(): a park never allocates
    ready_count_ = ready_.size();
}

std::size_t WorkerPool::retire_idle(io::Clock::time_point cutoff) {
    // The stack is sorted by last use, oldest at the bottom: the first worker used at or after
    // the cutoff splits it.
    const auto split = std::partition_point(ready_.begin(), ready_.end(),
                                            [cutoff](const Worker* w) { return w->last_use < cutoff; });
    const auto n = static_cast<std::size_t>(split - ready_.begin());
    for (auto it = ready_.begin(); it != split; ++it) { // oldest first
        (*it)->retire = true;
        io::detail::current_impl().schedule(std::exchange((*it)->parked, nullptr));
    }
    ready_.erase(ready_.begin(), split);
    ready_count_ = ready_.size();
    retired_ += n;
    return n;
}

void WorkerPool::stop() {
    stopped_ = true;
    retired_ += ready_.size();
    for (Worker* w : ready_) {
        w->retire = true;
        io::detail::current_impl().schedule(std::exchange(w->parked, nullptr));
    }
    ready_.clear();
    ready_count_ = 0;
}

void WorkerPool::worker_ended() noexcept {
    --alive_;
    if (alive_ == 0 && all_gone_waiter) {
        io::detail::current_impl().schedule(std::exchange(all_gone_waiter, nullptr));
    }
}

WorkerPool::Stats WorkerPool::stats() const noexcept {
    Stats s;
    s.alive = alive_;
    s.ready = ready_count_;
    s.busy = s.alive >= s.ready ? s.alive - s.ready : 0; // two loads: may be a moment apart
    s.created = created_;
    s.retired = retired_;
    return s;
}

runtime::Task<> run_reaper(ReactorState* st, std::chrono::milliseconds interval) {
    // A retirement's trim keeps the buffers its interval used at once (a steady load's: it
    // would allocate them again at once): the next tick trims again with the next interval's
    // (none once the load that retired its workers is gone), or that memory would stay until
    // another worker retires.
    bool trim_again = false;
    for (;;) {
        try {
            co_await io::sleep_for(interval);
        } catch (const runtime::OperationCancelled&) {
            break;
        }
        const std::size_t retired = st->workers.retire_idle(io::Clock::now() - interval);
        if (retired != 0) {
            // Let the retired workers finish (they are queued), then give memory back.
            co_await runtime::yield();
            runtime::FramePool::trim();
            st->trim_records();
            io::detail::current_impl().spare().trim();
        }
        // What this interval used at once, read after the yield: a buffer given back while
        // the reaper yielded would otherwise be counted out at the read and freed by the trim.
        const std::size_t out_peak = st->take_out_holders_peak();
        const std::size_t body_used = st->body_pool.take_used();
        const std::size_t carry_used = st->carry_pool.take_used();
        // Pooled buffers that grew since the last tick go back to the allocator (at most one
        // re-grow per buffer and tick under a steady load, instead of a ratchet).
        st->out_pool.trim_grown();
        st->restore_out_reserve(); // the busy connections' reserve, if a freed one was part of it
        st->body_pool.trim_grown();
        st->carry_pool.trim_grown();
        if (retired != 0 || trim_again) {
            st->trim_out_pool(out_peak, true);
            // Body buffers (request bodies gathered across receive buffers, handlers'
            // set_body) and carry buffers: the idle ones the interval took are kept.
            st->body_pool.trim(body_used);
            st->carry_pool.trim(carry_used);
            trim_again = out_peak > st->out_holders || body_used != 0 || carry_used != 0;
        }
    }
}

} // namespace ringwork::http::detail
