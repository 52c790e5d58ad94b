// SPDX-License-Identifier: MIT
// Unit tests for with_timeout: both outcomes, void and values, exceptions, cancelled kernel ops.
#include <ringwork/io/error.hpp>
#include <ringwork/io/reactor.hpp>
#include <ringwork/io/socket.hpp>
#include <ringwork/io/timeout.hpp>
#include <ringwork/io/timer.hpp>
#include <ringwork/runtime/result.hpp>
#include <ringwork/runtime/scheduler.hpp>
#include <ringwork/runtime/stop_token.hpp>
#include <ringwork/runtime/task.hpp>
#include <ringwork/runtime/when.hpp>

#include <doctest/doctest.h>

#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

using namespace std::chrono_literals;
namespace io = ringwork::io;
namespace rt = ringwork::runtime;
using rt::Result;
using rt::Task;

namespace {

using Clock = std::chrono::steady_clock;

bool fast_enough(Clock::time_point start) { return Clock::now() - start < 5s; }

/// Sets a flag when the frame holding it is destroyed (proves a coroutine body finished).
struct SetOnExit {
    bool* flag;
    explicit SetOnExit(bool* f) noexcept : flag(f) {}
    SetOnExit(const SetOnExit&) = delete;
    SetOnExit& operator=(const SetOnExit&) = delete;
    ~SetOnExit() { *flag = true; }
};

struct Probe {
    bool finished = false;   // the task's frame ran to its end (local destroyed)
    bool cancelled = false;  // its sleep threw OperationCancelled
};

Task<int> value_after_yields(int value, int yields) {
    for (int i = 0; i < yields; ++i) {
        co_await rt::yield();
    }
    co_return value;
}

Task<int> sleep_then_value(Clock::duration d, int value, Probe* probe) {
    SetOnExit on_exit(&probe->finished);
    try {
        co_await io::sleep_for(d);
    } catch (const rt::OperationCancelled&) {
        probe->cancelled = true;
        throw;
    }
    co_return value;
}

Task<> sleep_void(Clock::duration d, Probe* probe) {
    SetOnExit on_exit(&probe->finished);
    try {
        co_await io::sleep_for(d);
    } catch (const rt::OperationCancelled&) {
        probe->cancelled = true;
        throw;
    }
}

Task<std::string> throw_after_yield() {
    co_await rt::yield();
    throw std::runtime_error("task failed");
}

/// Takes a snapshot of the probe right when with_timeout returns (before anything else runs).
template <class T>
Task<std::pair<Result<T>, Probe>> timed(Task<T> task, Clock::duration limit, const Probe* probe) {
    auto limited = io::with_timeout(std::move(task), limit);
    Result<T> result = co_await std::move(limited);
    co_return std::pair<Result<T>, Probe>{std::move(result), *probe};
}

} // namespace

TEST_CASE("with_timeout: the task finishes first") {
    const auto start = Clock::now();
    Result<int> quick = io::sync_wait(io::with_timeout(value_after_yields(42, 3), 10s));
    static_assert(std::is_same_v<decltype(quick), Result<int>>);
    REQUIRE(quick.has_value());
    CHECK(*quick == 42);

    Probe probe;
    auto [slept, seen] = io::sync_wait(timed(sleep_then_value(1ms, 7, &probe), 10s, &probe));
    REQUIRE(slept.has_value());
    CHECK(*slept == 7);
    CHECK(seen.finished);
    CHECK_FALSE(seen.cancelled);
    CHECK(fast_enough(start)); // the 10 s timer was cancelled, not waited for
}

TEST_CASE("with_timeout: the timer fires first; the task is cancelled and has finished") {
    const auto start = Clock::now();
    Probe probe;
    auto [result, seen] = io::sync_wait(timed(sleep_then_value(10s, 1, &probe), 20ms, &probe));
    CHECK_FALSE(result.has_value());
    CHECK(result.error() == std::errc::timed_out);
    CHECK(seen.cancelled);
    CHECK(seen.finished);
    CHECK_THROWS_AS(result.value(), std::system_error);
    CHECK(Clock::now() - start >= 20ms); // a timer never fires early
    CHECK(fast_enough(start));
}

TEST_CASE("with_timeout: void tasks, both outcomes") {
    const auto start = Clock::now();
    Probe quick_probe;
    auto [quick, quick_seen] = io::sync_wait(timed(sleep_void(1ms, &quick_probe), 10s, &quick_probe));
    static_assert(std::is_same_v<decltype(quick), Result<void>>);
    CHECK(quick.has_value());
    CHECK(quick_seen.finished);

    Probe slow_probe;
    auto [slow, slow_seen] = io::sync_wait(timed(sleep_void(10s, &slow_probe), 10ms, &slow_probe));
    CHECK(slow.error() == std::errc::timed_out);
    CHECK(slow_seen.cancelled);
    CHECK(slow_seen.finished);
    CHECK(fast_enough(start));
}

TEST_CASE("with_timeout: an exception of the task is rethrown") {
    const auto start = Clock::now();
    CHECK_THROWS_WITH_AS((void)io::sync_wait(io::with_timeout(throw_after_yield(), 10s)), "task failed",
                         std::runtime_error);
    CHECK(fast_enough(start));
}

TEST_CASE("with_timeout: a synchronous task wins even with a zero timeout") {
    Result<int> r = io::sync_wait(io::with_timeout(value_after_yields(5, 0), 0ms));
    REQUIRE(r.has_value());
    CHECK(*r == 5);
    Result<int> late = io::sync_wait(io::with_timeout(value_after_yields(6, 1), 0ms));
    CHECK(late.error() == std::errc::timed_out);
}

namespace {

Task<int> swallow_cancellation(Probe* probe) {
    SetOnExit on_exit(&probe->finished);
    try {
        co_await io::sleep_for(10s);
    } catch (const rt::OperationCancelled&) {
        probe->cancelled = true;
    }
    co_return 123; // ignores the cancellation: the value is discarded
}

} // namespace

TEST_CASE("with_timeout: a task that swallows the cancellation still times out") {
    const auto start = Clock::now();
    Probe probe;
    auto [result, seen] = io::sync_wait(timed(swallow_cancellation(&probe), 10ms, &probe));
    CHECK(result.error() == std::errc::timed_out);
    CHECK(seen.cancelled);
    CHECK(seen.finished);
    CHECK(fast_enough(start));
}

namespace {

struct PipeFds {
    int read = -1;
    int write = -1;
    PipeFds() {
        int fds[2] = {-1, -1};
        REQUIRE(::pipe(fds) == 0);
        read = fds[0];
        write = fds[1];
    }
    PipeFds(const PipeFds&) = delete;
    PipeFds& operator=(const PipeFds&) = delete;
    ~PipeFds() {
        ::close(read);
        ::close(write);
    }
};

struct PollProbe {
    bool finished = false;
    std::error_code error;
};

/// Waits in the kernel (io_uring poll) for data that never comes.
Task<unsigned> poll_forever(int fd, PollProbe* probe) {
    SetOnExit on_exit(&probe->finished);
    Result<unsigned> r = co_await io::PollFd(fd, POLLIN);
    probe->error = r.error();
    co_return r.value_or(0U);
}

Task<std::pair<Result<unsigned>, PollProbe>> timed_poll(int fd, PollProbe* probe) {
    auto limited = io::with_timeout(poll_forever(fd, probe), 20ms);
    Result<unsigned> result = co_await std::move(limited);
    co_return std::pair<Result<unsigned>, PollProbe>{result, *probe};
}

} // namespace

TEST_CASE("with_timeout: a pending kernel operation is cancelled and completes first") {
    const auto start = Clock::now();
    PipeFds pipe;
    PollProbe probe;
    auto [result, seen] = io::sync_wait(timed_poll(pipe.read, &probe));
    CHECK(result.error() == std::errc::timed_out);
    CHECK(seen.finished);
    CHECK(seen.error == std::errc::operation_canceled);
    CHECK(fast_enough(start));

    // The reactor is still healthy: with data in the pipe the same poll wins.
    PollProbe ready_probe;
    REQUIRE(::write(pipe.write, "x", 1) == 1);
    Result<unsigned> ready = io::sync_wait(io::with_timeout(poll_forever(pipe.read, &ready_probe), 10s));
    REQUIRE(ready.has_value());
    CHECK((*ready & POLLIN) != 0U);
    CHECK(fast_enough(start));
}

namespace {

Task<> stop_after_yield(rt::StopSource* source) {
    co_await rt::yield();
    source->request_stop();
}

Task<bool> outer_cancelled(Probe* probe) {
    bool threw = false;
    auto limited = io::with_timeout(sleep_then_value(10s, 1, probe), 10s);
    try {
        Result<int> r = co_await std::move(limited);
        (void)r;
    } catch (const rt::OperationCancelled&) {
        threw = true;
    }
    co_return threw;
}

Task<std::pair<bool, Probe>> outer_cancel_scenario(rt::StopSource* source, Probe* probe) {
    Task<bool> limited = outer_cancelled(probe).with_stop_token(rt::StopToken(*source));
    auto all = rt::when_all(std::move(limited), stop_after_yield(source));
    auto results = co_await std::move(all);
    co_return std::pair<bool, Probe>{std::get<0>(results), *probe};
}

} // namespace

TEST_CASE("with_timeout: cancelling the awaiting coroutine cancels task and timer") {
    const auto start = Clock::now();
    rt::StopSource source;
    Probe probe;
    auto [threw, seen] = io::sync_wait(outer_cancel_scenario(&source, &probe));
    CHECK(threw);
    CHECK(seen.cancelled);
    CHECK(seen.finished);
    CHECK(fast_enough(start));
}
