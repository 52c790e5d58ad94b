// SPDX-License-Identifier: MIT
// with_timeout: race a task against a reactor timer and cancel it when the time is up.
#pragma once

#include <ringwork/io/timer.hpp>
#include <ringwork/runtime/result.hpp>
#include <ringwork/runtime/task.hpp>
#include <ringwork/runtime/when.hpp>

#include <chrono>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

namespace ringwork::io {

namespace detail {

/// \brief The timer side of with_timeout: finishes normally when the time is up.
template <class Rep, class Period>
runtime::Task<> timeout_timer(std::chrono::duration<Rep, Period> timeout) {
    co_await sleep_for(timeout);
}

} // namespace detail

/// \brief Run `task` with a time limit.
///
/// Built on runtime::when_any(task, timer): the task starts first (when the returned task is
/// awaited), then a timer of `timeout` on the reactor's timer wheel (1 ms resolution).
/// - The task finishes first: its value (or success, for void) is returned and the timer is
///   cancelled. If the task threw, the exception is rethrown.
/// - The timer fires first: the task's stop token fires, so its pending operations are
///   cancelled (sleeps throw OperationCancelled, I/O yields errc::operation_canceled); the task
///   is awaited to completion (its frame has finished when this returns), whatever it returns
///   or throws is discarded, and the result is `std::errc::timed_out`.
/// - A task that completes without suspending wins even with a zero timeout.
/// - If the awaiting coroutine's stop token fires, both are cancelled and the first to finish
///   decides (typically OperationCancelled is thrown).
///
/// The task must observe the stop token it inherits: a task given its own token with
/// Task::with_stop_token() is not cancelled by the timeout, and with_timeout waits for it.
/// Reactor thread only.
template <class T, class Rep, class Period>
runtime::Task<runtime::Result<T>> with_timeout(runtime::Task<T> task,
                                               std::chrono::duration<Rep, Period> timeout) {
    static_assert(!std::is_reference_v<T>, "with_timeout does not support Task<T&>");
    // Named local: no temporary with a destructor inside the co_await (GCC PR 100611).
    auto race = runtime::when_any(std::move(task), detail::timeout_timer(timeout));
    auto outcome = co_await std::move(race);
    if (outcome.index() == 0) {
        if constexpr (std::is_void_v<T>) {
            co_return runtime::Result<void>{};
        } else {
            co_return runtime::Result<T>(std::move(std::get<0>(outcome)));
        }
    }
    co_return runtime::Result<T>(std::make_error_code(std::errc::timed_out));
}

} // namespace ringwork::io
