// SPDX-License-Identifier: MIT
// Task<T>: laziness, values, references, exceptions, lifetimes, deep chains, stop tokens.
#include <ringwork/io/reactor.hpp>
#include <ringwork/runtime/task.hpp>

#include "helpers.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <stdexcept>
#include <string>

using ringwork::io::sync_wait;
using ringwork::runtime::Task;

namespace {

Task<int> forty_two() { co_return 42; }
Task<> nothing() { co_return; }
Task<int> add_one(Task<int> inner) { co_return 1 + co_await std::move(inner); }
Task<std::unique_ptr<int>> move_only() { co_return std::make_unique<int>(7); }
Task<int&> ref_to(int* x) { co_return *x; }
Task<int> thrower() {
    throw std::runtime_error("boom");
    co_return 0; // NOLINT: unreachable, makes this a coroutine
}
Task<test::Counted> counted(int v) { co_return test::Counted(v); }

Task<int> sync_loop(int n) {
    int sum = 0;
    for (int i = 0; i < n; ++i) {
        sum += co_await forty_two() - 41;
    }
    co_return sum;
}

Task<int> nested(int depth) {
    if (depth == 0) {
        co_return 0;
    }
    co_return 1 + co_await nested(depth - 1);
}

Task<bool> token_seen_by_child() {
    co_return co_await [](int) -> Task<bool> { co_return true; }(0);
}


struct TokenProbe {
    bool await_ready() const noexcept { return false; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
        seen = ringwork::runtime::detail::stop_token_of(h);
        return false;
    }
    void await_resume() const noexcept {}
    ringwork::runtime::StopToken seen;
};

Task<ringwork::runtime::StopToken> read_token() {
    TokenProbe probe;
    co_await probe;
    co_return probe.seen;
}
Task<ringwork::runtime::StopToken> read_token_via_child() { co_return co_await read_token(); }

} // namespace

TEST_SUITE("task") {
    TEST_CASE("a task produces its value, void and move-only results") {
        CHECK(sync_wait(forty_two()) == 42);
        sync_wait(nothing());
        CHECK(*sync_wait(move_only()) == 7);
        CHECK(sync_wait(add_one(add_one(forty_two()))) == 44);
    }

    TEST_CASE("a task is lazy: nothing runs until it is awaited") {
        int runs = 0;
        auto t = [](int* r) -> Task<> {
            ++*r;
            co_return;
        }(&runs);
        CHECK(runs == 0);
        CHECK_FALSE(t.done());
        sync_wait(std::move(t));
        CHECK(runs == 1);
    }

    TEST_CASE("Task<T&> returns a reference to the same object") {
        int x = 5;
        int& r = sync_wait(ref_to(&x));
        CHECK(&r == &x);
    }

    TEST_CASE("an exception propagates to the awaiter") {
        CHECK_THROWS_WITH_AS(sync_wait(thrower()), "boom", std::runtime_error);
        auto wraps = []() -> Task<int> {
            try {
                co_return co_await thrower();
            } catch (const std::runtime_error&) {
                co_return -1;
            }
        };
        CHECK(sync_wait(wraps()) == -1);
    }

    TEST_CASE("awaiting an empty task throws BrokenPromise") {
        auto t = forty_two();
        auto moved = std::move(t);
        CHECK_FALSE(t.valid()); // NOLINT(bugprone-use-after-move): testing the moved-from state
        auto await_empty = [](Task<int>* e) -> Task<int> { co_return co_await std::move(*e); };
        CHECK_THROWS_AS(sync_wait(await_empty(&t)), ringwork::runtime::BrokenPromise);
        CHECK(sync_wait(std::move(moved)) == 42);
    }

    TEST_CASE("results and frames are destroyed exactly once") {
        test::Counted::alive = 0;
        {
            auto c = sync_wait(counted(3));
            CHECK(c.value == 3);
            CHECK(test::Counted::alive == 1);
        }
        CHECK(test::Counted::alive == 0);
        {
            auto never_awaited = counted(4); // frame destroyed without running
        }
        CHECK(test::Counted::alive == 0);
    }

    TEST_CASE("a million synchronously completing awaits in a loop do not overflow the stack") {
        CHECK(sync_wait(sync_loop(1'000'000)) == 1'000'000);
    }

    TEST_CASE("a chain of a million nested awaits does not overflow the stack") {
        CHECK(sync_wait(nested(1'000'000)) == 1'000'000);
    }

    TEST_CASE("an awaited task inherits the awaiting coroutine's stop token") {
        ringwork::runtime::StopSource source;
        auto t = read_token_via_child().with_stop_token(ringwork::runtime::StopToken(source));
        const auto seen = sync_wait(std::move(t));
        CHECK(seen.source() == &source);
        CHECK(sync_wait(token_seen_by_child()));
        // Without one set, a root task sees the reactor's token (sync_wait runs under a root
        // without a token: it stays empty).
        CHECK_FALSE(sync_wait(read_token()).stop_possible());
    }
}
