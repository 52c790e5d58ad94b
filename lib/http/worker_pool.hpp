// SPDX-License-Identifier: MIT
// WorkerPool: fasthttp's workerPool on coroutines (FILO ready stack, Concurrency, reaper).
#pragma once

#include <ringwork/io/reactor.hpp>
#include <ringwork/io/socket.hpp>
#include <ringwork/runtime/counter.hpp>
#include <ringwork/runtime/task.hpp>

#include "http/per_ip.hpp"

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <vector>

namespace ringwork::http::detail {

class ReactorState;
struct ConnRecord;

/// \brief A parked coroutine that serves one connection at a time (for its whole life).
struct Worker {
    std::coroutine_handle<> parked{};   ///< set while waiting on the ready stack
    ConnRecord* next = nullptr;          ///< the connection handed over by the pool
    io::Clock::time_point last_use{};    ///< when it was released (ready stack order)
    bool retire = false;
};

/// \brief One reactor's workers. Ready workers form a stack ordered by last use: the most
/// recently released worker serves the next connection (FILO: its frame is warm in cache),
/// and the oldest sit at the bottom, where the reaper finds the ones idle too long by binary
/// search and retires them, oldest first. Reactor thread only.
class WorkerPool {
public:
    struct Stats {
        std::uint64_t alive = 0;
        std::uint64_t ready = 0;
        std::uint64_t busy = 0;
        std::uint64_t created = 0;
        std::uint64_t retired = 0;
    };

    WorkerPool(ReactorState& st, std::size_t max_workers) noexcept : st_(st), max_workers_(max_workers) {}
    WorkerPool(const WorkerPool&) = delete;
    WorkerPool& operator=(const WorkerPool&) = delete;

    /// \brief Hand a new connection to a worker: the top of the ready stack, else a new one if
    /// fewer than the limit exist. Returns false (nothing taken) when the limit is reached or
    /// the pool is stopped.
    bool serve(ConnRecord* rec);
    /// \brief Hand a parked connection (admitted earlier, so within Concurrency) back to a
    /// worker, even once the pool is stopped: its client's bytes are served like a busy
    /// connection's (the worker ends after it when stopped).
    void resume(ConnRecord* rec);
    /// \brief Retire every ready worker whose last use is before `cutoff` (binary search on
    /// the stack, oldest first); returns how many. The reaper calls it.
    std::size_t retire_idle(io::Clock::time_point cutoff);
    /// \brief Stop: retire every ready worker now; busy ones retire when they finish.
    void stop();
    [[nodiscard]] Stats stats() const noexcept;
    /// The ready stack, bottom (oldest) first: for tests.
    [[nodiscard]] const std::vector<Worker*>& ready() const noexcept { return ready_; }
    [[nodiscard]] bool stopped() const noexcept { return stopped_; }
    /// Resumes when the last worker has ended (after stop()).
    [[nodiscard]] std::size_t alive() const noexcept { return alive_.load(); }
    std::coroutine_handle<> all_gone_waiter{};

    // For the worker coroutine.
    void park(Worker* w, std::coroutine_handle<> h) noexcept;
    void worker_ended() noexcept;

private:
    bool hand_over(ConnRecord* rec, bool from_queue);
    void start_worker(ConnRecord* rec, bool from_queue);
    ReactorState& st_;
    std::size_t max_workers_;
    std::vector<Worker*> ready_;
    // Counters: written here, read by Server::stats() from any thread.
    runtime::Counter alive_;
    runtime::Counter ready_count_; ///< ready_.size()
    runtime::Counter created_;
    runtime::Counter retired_;
    bool stopped_ = false;
};

/// \brief The reaper: wakes every `interval`, retires workers idle longer than it, and trims
/// the frame and buffer pools so the memory returns to the system. Ends when the token fires.
runtime::Task<> run_reaper(ReactorState* st, std::chrono::milliseconds interval);

} // namespace ringwork::http::detail
