// SPDX-License-Identifier: MIT
// Unit tests for when_all / when_any: results, exceptions, cancellation, stop tokens, allocation.
#include <ringwork/io/error.hpp>
#include <ringwork/io/reactor.hpp>
#include <ringwork/io/timer.hpp>
#include <ringwork/runtime/frame_pool.hpp>
#include <ringwork/runtime/scheduler.hpp>
#include <ringwork/runtime/stop_token.hpp>
#include <ringwork/runtime/task.hpp>
#include <ringwork/runtime/when.hpp>

#include "ringwork_config.h"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "alloc_counter.hpp"

using namespace std::chrono_literals;
namespace io = ringwork::io;
namespace rt = ringwork::runtime;
using rt::Task;

namespace {

using Clock = std::chrono::steady_clock;

/// Reads the stop token of the awaiting coroutine without suspending.
struct CurrentStopToken {
    rt::StopToken token{};
    bool await_ready() const noexcept { return false; }
    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) noexcept {
        token = rt::detail::stop_token_of(h);
        return false;
    }
    rt::StopToken await_resume() const noexcept { return token; }
};

/// Sets a flag when the frame holding it is destroyed (proves a coroutine body finished).
struct SetOnExit {
    bool* flag;
    explicit SetOnExit(bool* f) noexcept : flag(f) {}
    SetOnExit(const SetOnExit&) = delete;
    SetOnExit& operator=(const SetOnExit&) = delete;
    ~SetOnExit() { *flag = true; }
};

Task<int> immediate(int value) { co_return value; }

Task<int> value_after(int value, int yields, int* finished = nullptr) {
    for (int i = 0; i < yields; ++i) {
        co_await rt::yield();
    }
    if (finished != nullptr) {
        ++*finished;
    }
    co_return value;
}

Task<std::string> string_after_yield(std::string s) {
    co_await rt::yield();
    co_return s;
}

Task<> void_after(int yields, int* counter) {
    for (int i = 0; i < yields; ++i) {
        co_await rt::yield();
    }
    ++*counter;
}

Task<int> throw_after(int yields, const char* what, int* finished = nullptr) {
    for (int i = 0; i < yields; ++i) {
        co_await rt::yield();
    }
    if (finished != nullptr) {
        ++*finished;
    }
    if (what != nullptr) {
        throw std::runtime_error(what);
    }
    co_return 0;
}

Task<int&> reference_to(int* p) {
    co_await rt::yield();
    co_return *p;
}

/// Sleeps `d`; records whether it was cancelled and that its frame finished.
Task<int> sleeper(Clock::duration d, bool* cancelled, bool* finished) {
    SetOnExit on_exit(finished);
    try {
        co_await io::sleep_for(d);
    } catch (const rt::OperationCancelled&) {
        *cancelled = true;
        throw;
    }
    co_return 1;
}

Task<bool> wait_for_flag(const bool* flag) {
    for (int i = 0; i < 1000 && !*flag; ++i) {
        co_await rt::yield();
    }
    co_return *flag;
}

Task<> set_flag_after_yield(bool* flag) {
    co_await rt::yield();
    *flag = true;
}

Task<> request_stop_after_yield(rt::StopSource* source) {
    co_await rt::yield();
    source->request_stop();
}

Task<rt::StopToken> token_probe() {
    rt::StopToken token = co_await CurrentStopToken{};
    co_return token;
}

/// Yields until its stop token fires (never allocates), then returns `value`.
Task<int> poll_until_stopped(int value) {
    const rt::StopToken token = co_await CurrentStopToken{};
    while (!token.stop_requested()) {
        co_await rt::yield();
    }
    co_return value;
}

bool fast_enough(Clock::time_point start) { return Clock::now() - start < 5s; }

} // namespace

TEST_CASE("when_all: values of mixed types, in argument order") {
    auto result = io::sync_wait(rt::when_all(value_after(1, 3), string_after_yield("two"), immediate(3)));
    static_assert(std::is_same_v<decltype(result), std::tuple<int, std::string, int>>);
    CHECK(std::get<0>(result) == 1);
    CHECK(std::get<1>(result) == "two");
    CHECK(std::get<2>(result) == 3);
}

TEST_CASE("when_all: void children yield std::monostate") {
    int counter = 0;
    auto result = io::sync_wait(rt::when_all(void_after(2, &counter), value_after(5, 1), void_after(0, &counter)));
    static_assert(std::is_same_v<decltype(result), std::tuple<std::monostate, int, std::monostate>>);
    CHECK(counter == 2);
    CHECK(std::get<1>(result) == 5);
}

TEST_CASE("when_all: references stay references") {
    int x = 41;
    auto result = io::sync_wait(rt::when_all(reference_to(&x), immediate(1)));
    static_assert(std::is_same_v<decltype(result), std::tuple<int&, int>>);
    CHECK(&std::get<0>(result) == &x);
    std::get<0>(result) += 1;
    CHECK(x == 42);
}

TEST_CASE("when_all: zero tasks and only synchronous tasks") {
    auto none = io::sync_wait(rt::when_all());
    static_assert(std::is_same_v<decltype(none), std::tuple<>>);
    auto sync = io::sync_wait(rt::when_all(immediate(1), immediate(2), immediate(3)));
    CHECK(sync == std::tuple{1, 2, 3});
}

TEST_CASE("when_all: children run concurrently") {
    // Sequential execution would make wait_for_flag give up (false) before the setter runs.
    bool flag = false;
    auto result = io::sync_wait(rt::when_all(wait_for_flag(&flag), set_flag_after_yield(&flag)));
    CHECK(std::get<0>(result));
}

namespace {

struct ExceptionOutcome {
    std::string what;
    int finished_at_catch = -1;
};

Task<ExceptionOutcome> first_exception_scenario(int* finished) {
    ExceptionOutcome out;
    // Index 0 throws late, index 1 throws early, index 2 finishes normally last.
    auto all = rt::when_all(throw_after(3, "late", finished), throw_after(1, "early", finished),
                            value_after(7, 10, finished));
    try {
        co_await std::move(all);
    } catch (const std::runtime_error& e) {
        out.what = e.what();
        out.finished_at_catch = *finished;
    }
    co_return out;
}

} // namespace

TEST_CASE("when_all: the first exception by completion order is rethrown after all finished") {
    int finished = 0;
    const ExceptionOutcome out = io::sync_wait(first_exception_scenario(&finished));
    CHECK(out.what == "early");
    CHECK(out.finished_at_catch == 3);
}

TEST_CASE("when_all: a synchronous throw is the first completion") {
    int finished = 0;
    CHECK_THROWS_WITH(io::sync_wait(rt::when_all(throw_after(1, "async", &finished), value_after(1, 2, &finished),
                                                 throw_after(0, "sync", &finished))),
                      "sync");
    CHECK(finished == 3);
}

TEST_CASE("when_all: 10,000 tasks in a vector") {
    constexpr int kCount = 10'000;
    std::vector<Task<int>> tasks;
    tasks.reserve(kCount);
    for (int i = 0; i < kCount; ++i) {
        tasks.push_back(value_after(i, i % 3));
    }
    const std::vector<int> results = io::sync_wait(rt::when_all(std::move(tasks)));
    REQUIRE(results.size() == kCount);
    bool in_order = true;
    for (int i = 0; i < kCount; ++i) {
        in_order = in_order && results[static_cast<std::size_t>(i)] == i;
    }
    CHECK(in_order);
}

TEST_CASE("when_all(vector): void tasks, empty vector, exceptions") {
    int counter = 0;
    std::vector<Task<>> voids;
    for (int i = 0; i < 100; ++i) {
        voids.push_back(void_after(i % 4, &counter));
    }
    const std::vector<std::monostate> done = io::sync_wait(rt::when_all(std::move(voids)));
    CHECK(done.size() == 100);
    CHECK(counter == 100);

    CHECK(io::sync_wait(rt::when_all(std::vector<Task<int>>{})).empty());

    int finished = 0;
    std::vector<Task<int>> failing;
    failing.push_back(throw_after(5, "second", &finished));
    failing.push_back(value_after(1, 8, &finished));
    failing.push_back(throw_after(2, "first", &finished));
    CHECK_THROWS_WITH(io::sync_wait(rt::when_all(std::move(failing))), "first");
    CHECK(finished == 3);
}

TEST_CASE("when_all: an empty task fails its child with BrokenPromise") {
    CHECK_THROWS_AS(io::sync_wait(rt::when_all(immediate(1), Task<int>{})), rt::BrokenPromise);
}

namespace {

Task<std::tuple<rt::StopToken, rt::StopToken>> probe_tokens_in_when_all() {
    auto all = rt::when_all(token_probe(), token_probe());
    auto tokens = co_await std::move(all);
    co_return tokens;
}

struct CancelledAll {
    bool threw_cancelled = false;
    bool a_cancelled = false;
    bool b_cancelled = false;
    bool a_finished = false;
    bool b_finished = false;
};

Task<> sleep_both_in_when_all(CancelledAll* out) {
    auto all = rt::when_all(sleeper(10s, &out->a_cancelled, &out->a_finished),
                            sleeper(10s, &out->b_cancelled, &out->b_finished));
    try {
        co_await std::move(all);
    } catch (const rt::OperationCancelled&) {
        out->threw_cancelled = true;
    }
}

Task<CancelledAll> cancel_when_all_scenario(rt::StopSource* source) {
    CancelledAll out;
    Task<> sleeping = sleep_both_in_when_all(&out).with_stop_token(rt::StopToken(*source));
    auto all = rt::when_all(std::move(sleeping), request_stop_after_yield(source));
    co_await std::move(all);
    co_return out;
}

} // namespace

TEST_CASE("when_all: children inherit the awaiting coroutine's stop token") {
    rt::StopSource source;
    auto tokens = io::sync_wait(probe_tokens_in_when_all().with_stop_token(rt::StopToken(source)));
    CHECK(std::get<0>(tokens) == rt::StopToken(source));
    CHECK(std::get<1>(tokens) == rt::StopToken(source));

    const auto start = Clock::now();
    rt::StopSource stopper;
    const CancelledAll out = io::sync_wait(cancel_when_all_scenario(&stopper));
    CHECK(out.threw_cancelled);
    CHECK(out.a_cancelled);
    CHECK(out.b_cancelled);
    CHECK(out.a_finished);
    CHECK(out.b_finished);
    CHECK(fast_enough(start));
}

TEST_CASE("when_any: the winner's index and value; duplicate types") {
    int finished = 0;
    auto result = io::sync_wait(rt::when_any(value_after(1, 6, &finished), value_after(2, 1, &finished),
                                             value_after(3, 3, &finished)));
    static_assert(std::is_same_v<decltype(result), std::variant<int, int, int>>);
    CHECK(result.index() == 1);
    CHECK(std::get<1>(result) == 2);
    CHECK(finished == 3); // structured: the losers finished before the parent resumed
}

TEST_CASE("when_any: mixed and void types") {
    int counter = 0;
    auto result = io::sync_wait(rt::when_any(string_after_yield("slow"), void_after(0, &counter)));
    static_assert(std::is_same_v<decltype(result), std::variant<std::string, std::monostate>>);
    CHECK(result.index() == 1);
    CHECK(counter == 1);
}

namespace {

struct LoserOutcome {
    std::size_t index = 99;
    int value = 0;
    bool cancelled = false;
    bool finished_at_resume = false;
};

Task<LoserOutcome> sleeping_loser_scenario() {
    LoserOutcome out;
    bool finished = false;
    auto any = rt::when_any(sleeper(10s, &out.cancelled, &finished), value_after(7, 2));
    auto result = co_await std::move(any);
    out.index = result.index();
    out.value = result.index() == 1 ? std::get<1>(result) : -1;
    out.finished_at_resume = finished;
    co_return out;
}

} // namespace

TEST_CASE("when_any: a sleeping loser is cancelled and finishes before the parent resumes") {
    const auto start = Clock::now();
    const LoserOutcome out = io::sync_wait(sleeping_loser_scenario());
    CHECK(out.index == 1);
    CHECK(out.value == 7);
    CHECK(out.cancelled);
    CHECK(out.finished_at_resume);
    CHECK(fast_enough(start));
}

TEST_CASE("when_any: the winner's exception propagates, the sleeping loser is cancelled") {
    const auto start = Clock::now();
    bool cancelled = false;
    bool finished = false;
    CHECK_THROWS_WITH(io::sync_wait(rt::when_any(sleeper(10s, &cancelled, &finished), throw_after(1, "boom"))),
                      "boom");
    CHECK(cancelled);
    CHECK(finished);
    CHECK(fast_enough(start));
}

namespace {

Task<int> throws_logic_error_when_cancelled() {
    bool cancelled = false;
    try {
        co_await io::sleep_for(10s);
    } catch (const rt::OperationCancelled&) {
        cancelled = true;
    }
    if (cancelled) {
        throw std::logic_error("loser");
    }
    co_return 0;
}

} // namespace

TEST_CASE("when_any: losers' exceptions are swallowed") {
    const auto start = Clock::now();
    auto result = io::sync_wait(rt::when_any(throws_logic_error_when_cancelled(), value_after(5, 1),
                                             throws_logic_error_when_cancelled()));
    CHECK(result.index() == 1);
    CHECK(std::get<1>(result) == 5);
    CHECK(fast_enough(start));
}

namespace {

struct ForwardOutcome {
    bool threw_cancelled = false;
    bool a_cancelled = false;
    bool b_cancelled = false;
    bool a_finished = false;
    bool b_finished = false;
};

Task<> race_two_sleepers(ForwardOutcome* out) {
    auto any = rt::when_any(sleeper(10s, &out->a_cancelled, &out->a_finished),
                            sleeper(10s, &out->b_cancelled, &out->b_finished));
    try {
        co_await std::move(any);
    } catch (const rt::OperationCancelled&) {
        out->threw_cancelled = true;
    }
}

Task<ForwardOutcome> forward_scenario(rt::StopSource* source) {
    ForwardOutcome out;
    Task<> race = race_two_sleepers(&out).with_stop_token(rt::StopToken(*source));
    auto all = rt::when_all(std::move(race), request_stop_after_yield(source));
    co_await std::move(all);
    co_return out;
}

Task<ForwardOutcome> already_stopped_scenario(rt::StopSource* source) {
    ForwardOutcome out;
    Task<> race = race_two_sleepers(&out).with_stop_token(rt::StopToken(*source));
    co_await std::move(race);
    co_return out;
}

Task<std::tuple<bool, bool, bool>> when_any_child_token_scenario(rt::StopSource* parent) {
    // Children get when_any's own source, not the parent's token; a stop of the parent
    // reaches them through the forwarding registration.
    auto any = rt::when_any(token_probe(), poll_until_stopped(0));
    auto result = co_await std::move(any);
    const rt::StopToken child = std::get<0>(result);
    co_return std::tuple{child.stop_possible(), child == rt::StopToken(*parent), parent->stop_requested()};
}

} // namespace

TEST_CASE("when_any: the parent's stop token is forwarded to the children") {
    const auto start = Clock::now();
    rt::StopSource source;
    const ForwardOutcome out = io::sync_wait(forward_scenario(&source));
    CHECK(out.threw_cancelled);
    CHECK(out.a_cancelled);
    CHECK(out.b_cancelled);
    CHECK(out.a_finished);
    CHECK(out.b_finished);
    CHECK(fast_enough(start));

    rt::StopSource stopped;
    stopped.request_stop();
    const ForwardOutcome early = io::sync_wait(already_stopped_scenario(&stopped));
    CHECK(early.threw_cancelled);
    CHECK(early.a_cancelled);
    CHECK(early.b_cancelled);
    CHECK(fast_enough(start));

    rt::StopSource parent;
    const auto [possible, same, parent_stopped] =
        io::sync_wait(when_any_child_token_scenario(&parent).with_stop_token(rt::StopToken(parent)));
    CHECK(possible);
    CHECK_FALSE(same);
    CHECK_FALSE(parent_stopped);
}

namespace {

Task<int> records_start_then_sleeps(bool* started) {
    *started = true;
    co_await io::sleep_for(10s);
    co_return -1;
}

} // namespace

TEST_CASE("when_any: synchronous children") {
    const auto start = Clock::now();

    // A child that completes while being started wins; later children are never started.
    bool started = false;
    auto first = io::sync_wait(rt::when_any(immediate(7), records_start_then_sleeps(&started)));
    CHECK(first.index() == 0);
    CHECK(std::get<0>(first) == 7);
    CHECK_FALSE(started);

    // Earlier children that already suspended are cancelled at once.
    bool cancelled = false;
    bool finished = false;
    auto second = io::sync_wait(rt::when_any(sleeper(10s, &cancelled, &finished), immediate(9), immediate(10)));
    CHECK(second.index() == 1);
    CHECK(std::get<1>(second) == 9);
    CHECK(cancelled);
    CHECK(finished);

    // A synchronous throw wins too.
    CHECK_THROWS_WITH(io::sync_wait(rt::when_any(throw_after(0, "now"), immediate(1))), "now");
    CHECK(fast_enough(start));
}

#if RINGWORK_FRAME_POOL && !defined(TEST_NO_HEAP_COUNTER)
namespace {

Task<int> no_allocation_scenario() {
    auto all = rt::when_all(value_after(1, 2), immediate(2), value_after(3, 1));
    auto values = co_await std::move(all);
    auto any = rt::when_any(poll_until_stopped(-1), value_after(4, 3), poll_until_stopped(-2));
    auto winner = co_await std::move(any);
    co_return std::get<0>(values) + std::get<1>(values) + std::get<2>(values) + std::get<1>(winner);
}

} // namespace
#endif

TEST_CASE("when_all / when_any allocate nothing beyond pooled frames") {
#if RINGWORK_FRAME_POOL && !defined(TEST_NO_HEAP_COUNTER)
    io::Reactor reactor;
    CHECK(reactor.run_until_complete(no_allocation_scenario()) == 10); // warms the frame pool
    const rt::FramePoolStats before_pool = rt::FramePool::stats();
    const std::size_t before = test::g_heap_allocations.load();
    const int value = reactor.run_until_complete(no_allocation_scenario());
    const std::size_t allocations = test::g_heap_allocations.load() - before;
    const rt::FramePoolStats after_pool = rt::FramePool::stats();
    CHECK(value == 10);
    CHECK(allocations == 0);
    CHECK(after_pool.misses == before_pool.misses);
    CHECK(after_pool.hits > before_pool.hits);
#else
    MESSAGE("frame pool disabled or sanitizer build: allocation count not checked");
#endif
}
