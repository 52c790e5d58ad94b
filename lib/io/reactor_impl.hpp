// SPDX-License-Identifier: MIT
// ReactorImpl: the io_uring, buffer ring, timer wheel, ready queue and remote queue of a reactor.
#pragma once

#include <ringwork/io/reactor.hpp>
#include <ringwork/runtime/cycle_clock.hpp>
#include <ringwork/runtime/counter.hpp>

#include "io/buffer_ring.hpp"
#include "io/epoll_engine.hpp"
#include "io/timer_wheel.hpp"

#include <liburing.h>

#include <atomic>
#include <cassert>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

namespace ringwork::io::detail {

/// user_data of submissions whose completion nobody awaits (cancel requests, close-on-exit).
inline constexpr std::uint64_t kIgnoredUserData = 0;

/// Milliseconds per timer-wheel tick.
inline constexpr std::int64_t kTickNs = 1'000'000;

class ReactorImpl {
public:
    ReactorImpl(Reactor& owner, ReactorOptions options);
    ~ReactorImpl();
    ReactorImpl(const ReactorImpl&) = delete;
    ReactorImpl& operator=(const ReactorImpl&) = delete;

    /// A submission slot; flushes the SQ when it is full (never blocks, never fails). Under
    /// the epoll backend the slot is in the engine's user-space queue and means the same.
    io_uring_sqe* sqe() noexcept {
        io_uring_sqe* s = epoll_ ? epoll_->get_sqe() : io_uring_get_sqe(&ring_);
        if (s == nullptr) [[unlikely]] {
            s = sqe_slow();
        }
        return s;
    }
    /// Prepare an SQE aimed at `op` (user_data = op).
    io_uring_sqe* sqe_for(Operation* op) noexcept {
        io_uring_sqe* s = sqe();
        io_uring_sqe_set_data(s, op);
        return s;
    }
    /// Ask the kernel to cancel the operation whose user_data is `op` (two-CQE protocol:
    /// the target still completes, with -ECANCELED or its normal result).
    void cancel(Operation* op) noexcept {
        io_uring_sqe* s = sqe();
        io_uring_prep_cancel64(s, reinterpret_cast<std::uint64_t>(op), 0); // NOLINT
        io_uring_sqe_set_data64(s, kIgnoredUserData);
    }
    /// Cancel every operation on `fd`.
    void cancel_fd(int fd) noexcept {
        io_uring_sqe* s = sqe();
        io_uring_prep_cancel_fd(s, fd, IORING_ASYNC_CANCEL_ALL);
        io_uring_sqe_set_data64(s, kIgnoredUserData);
    }

    /// The epoll backend runs the submissions (no ring).
    [[nodiscard]] bool epoll_backend() const noexcept { return epoll_ != nullptr; }
    /// A Socket or Listener owns `fd` from now on (the epoll backend keeps it registered).
    void own_fd(int fd) noexcept {
        if (epoll_) {
            epoll_->own(fd);
        }
    }
    /// `fd` is about to be closed or released outside the ring (epoll: drop what is known).
    void forget_fd(int fd) noexcept {
        if (epoll_) {
            epoll_->forget(fd);
        }
    }
    void schedule(std::coroutine_handle<> h) { ready_.push(h); }
    /// The time of the last wake-up (refreshed each time the loop returns from the kernel,
    /// before completions are dispatched): free to read, exact to one pass of the loop.
    [[nodiscard]] Clock::time_point now() const noexcept { return now_; }
    /// runtime::CycleClock's tick at that same wake-up.
    [[nodiscard]] std::uint64_t wake_ticks() const noexcept { return wake_ticks_; }
    [[nodiscard]] std::uint64_t now_tick() const noexcept { return to_tick_floor(now_); }
    static std::uint64_t to_tick_floor(Clock::time_point t) noexcept {
        return static_cast<std::uint64_t>(t.time_since_epoch().count() / kTickNs);
    }
    /// First tick at or after `t` (a timer never fires before its time point).
    static std::uint64_t to_tick_ceil(Clock::time_point t) noexcept {
        const auto ns = t.time_since_epoch().count();
        return static_cast<std::uint64_t>((ns + kTickNs - 1) / kTickNs);
    }
    TimerWheel& timers() noexcept { return timers_; }
    BufferRing* buffer_ring() noexcept { return buffer_ring_ ? &*buffer_ring_ : nullptr; }
    SparePool& spare() noexcept { return spare_; }
    io_uring* ring() noexcept { return &ring_; }
    /// Live counters: written on this reactor's thread only, readable from any thread.
    BasicReactorStats<runtime::Counter>& stats() noexcept { return stats_; }
    [[nodiscard]] const BasicReactorStats<runtime::Counter>& stats() const noexcept { return stats_; }
    const ReactorFeatures& features() const noexcept { return features_; }
    runtime::StopSource& stop_source() noexcept { return stop_; }
    Reactor& owner() noexcept { return owner_; }

    void run_once(bool wait);
    void defer(Deferred* work) noexcept {
        if (!work->queued_) {
            work->queued_ = true;
            work->next_ = nullptr;
            if (deferred_tail_ != nullptr) {
                deferred_tail_->next_ = work;
            } else {
                deferred_head_ = work;
            }
            deferred_tail_ = work;
        }
    }
    void cancel_deferred(Deferred* work) noexcept;
    void drive_until(const bool& done);
    void run();
    void stop() noexcept;
    void post(RemoteWork* work) noexcept;
    void spawn(runtime::Task<> task);
    [[nodiscard]] std::size_t detached() const noexcept { return detached_; }
    void detached_started() noexcept { ++detached_; }
    void detached_finished(bool failed) noexcept;
    [[nodiscard]] bool on_owner_thread() const noexcept;

private:
    io_uring_sqe* sqe_slow() noexcept;
    void setup_backend(const ReactorOptions& options);
    void setup_ring(const ReactorOptions& options);
    void probe_features(const ReactorOptions& options);
    void arm_wakeup() noexcept;
    static void on_wakeup(Operation* op, int res, std::uint32_t flags) noexcept;
    void drain_remote() noexcept;
    void reap() noexcept;
    void reap_epoll() noexcept;
    void run_once_epoll(bool block) noexcept;
    void run_ready() noexcept;

    Reactor& owner_;
    io_uring ring_{};
    std::unique_ptr<EpollEngine> epoll_;         ///< set under the epoll backend (ring_ unused)
    std::vector<EngineCompletion> epoll_reaped_; ///< completions being dispatched (epoll)
    ReactorFeatures features_;
    BasicReactorStats<runtime::Counter> stats_;
    runtime::ReadyQueue ready_;
    TimerWheel timers_;
    std::optional<BufferRing> buffer_ring_;
    SparePool spare_;
    runtime::StopSource stop_;
    Clock::time_point now_;
    std::uint64_t wake_ticks_ = 0;
    void refresh_now() noexcept {
        now_ = Clock::now();
        wake_ticks_ = runtime::CycleClock::now();
    }
    std::size_t detached_ = 0;
    Deferred* deferred_head_ = nullptr;
    Deferred* deferred_tail_ = nullptr;
    void run_deferred() noexcept;

    // Cross-thread wake: an eventfd read armed in the ring.
    struct WakeOp : Operation {
        explicit WakeOp(ReactorImpl* r) noexcept : Operation(&on_wakeup), reactor(r) {}
        ReactorImpl* reactor;
        std::uint64_t value = 0;
    } wake_op_{this};
    int wake_fd_ = -1;
    bool wake_armed_ = false;
    std::mutex remote_mutex_;
    RemoteWork* remote_head_ = nullptr;
    RemoteWork* remote_tail_ = nullptr;
    bool wake_pending_ = false; // guarded by remote_mutex_
    std::atomic<bool> stop_posted_{false};
    struct StopWork : RemoteWork {
        explicit StopWork(ReactorImpl* r) noexcept
            : RemoteWork([](RemoteWork* w) noexcept {
                static_cast<StopWork*>(w)->reactor->stop_.request_stop();
            }), reactor(r) {}
        ReactorImpl* reactor;
    } stop_work_{this};
    const void* thread_id_;

    // Previous thread-local state, restored on destruction (reactors can nest in tests).
    Reactor* prev_current_;
    ReactorImpl* prev_impl_;
    runtime::ReadyQueue* prev_ready_;
};

/// The running reactor's implementation on this thread (set by its constructor).
inline constinit thread_local ReactorImpl* tl_impl = nullptr;

/// The calling thread's reactor implementation (asserts there is one). Inline: every I/O
/// awaiter calls it.
inline ReactorImpl& current_impl() noexcept {
    assert(tl_impl != nullptr && "no reactor runs on this thread");
    return *tl_impl;
}

} // namespace ringwork::io::detail
