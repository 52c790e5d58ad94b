// SPDX-License-Identifier: MIT
// sleep_for / sleep_until: timers on the reactor's timer wheel (no kernel timeout per sleep).
#pragma once

#include <ringwork/io/error.hpp>
#include <ringwork/io/reactor.hpp>
#include <ringwork/io/timer_node.hpp>
#include <ringwork/runtime/stop_token.hpp>
#include <ringwork/runtime/task.hpp>

#include <chrono>
#include <coroutine>

namespace ringwork::io {

/// \brief Awaitable that resumes at (or just after, 1 ms resolution) a time point.
///
/// Lives in the awaiting frame as a wheel node: no allocation, no submission. When the awaiting
/// coroutine's stop token fires, the timer is removed and await_resume throws
/// runtime::OperationCancelled. Reactor thread only.
class [[nodiscard]] SleepAwaiter : private TimerNode {
public:
    explicit SleepAwaiter(Clock::time_point deadline) noexcept : when_(deadline) {}
    SleepAwaiter(const SleepAwaiter&) = delete;
    SleepAwaiter& operator=(const SleepAwaiter&) = delete;
    ~SleepAwaiter();

    bool await_ready() const noexcept { return when_ <= Clock::now(); }
    template <class Promise>
    void await_suspend(std::coroutine_handle<Promise> h) noexcept {
        suspend(h, runtime::detail::stop_token_of(h));
    }
    void await_resume() const {
        if (cancelled_) {
            throw runtime::OperationCancelled{};
        }
    }

private:
    void suspend(std::coroutine_handle<> h, runtime::StopToken token) noexcept;
    static void on_fire(TimerNode* node) noexcept;
    static void on_stop(void* self) noexcept;

    Clock::time_point when_;
    std::coroutine_handle<> waiter_{};
    runtime::StopRegistration stop_;
    bool cancelled_ = false;
};

/// \brief Suspend the calling coroutine for at least `duration`.
template <class Rep, class Period>
SleepAwaiter sleep_for(std::chrono::duration<Rep, Period> duration) noexcept {
    return SleepAwaiter(Clock::now() + std::chrono::ceil<Clock::duration>(duration));
}

/// \brief Suspend the calling coroutine until `deadline`.
inline SleepAwaiter sleep_until(Clock::time_point deadline) noexcept { return SleepAwaiter(deadline); }

} // namespace ringwork::io
