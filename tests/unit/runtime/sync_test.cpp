// SPDX-License-Identifier: MIT
// Unit tests for the reactor-local Mutex and Channel: exclusion, FIFO, backpressure, close, cancel.
#include <ringwork/io/error.hpp>
#include <ringwork/io/reactor.hpp>
#include <ringwork/io/timer.hpp>
#include <ringwork/runtime/scheduler.hpp>
#include <ringwork/runtime/stop_token.hpp>
#include <ringwork/runtime/sync.hpp>
#include <ringwork/runtime/task.hpp>
#include <ringwork/runtime/when.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
namespace io = ringwork::io;
namespace rt = ringwork::runtime;
using rt::Channel;
using rt::Mutex;
using rt::Task;

namespace {

using Clock = std::chrono::steady_clock;

bool fast_enough(Clock::time_point start) { return Clock::now() - start < 5s; }

Task<> yield_n(int n) {
    for (int i = 0; i < n; ++i) {
        co_await rt::yield();
    }
}

Task<> request_stop_after(int yields, rt::StopSource* source) {
    for (int i = 0; i < yields; ++i) {
        co_await rt::yield();
    }
    source->request_stop();
}

// ---------------------------------------------------------------------------------------------
// Mutex

struct Exclusion {
    int shared = 0;          // incremented non-atomically across a suspension
    int inside = 0;          // coroutines inside the critical section now
    int max_inside = 0;
};

Task<> exclusive_worker(Mutex* mutex, Exclusion* state, int id) {
    for (int round = 0; round < 3; ++round) {
        co_await rt::yield();
        Mutex::Guard guard = co_await mutex->lock();
        ++state->inside;
        state->max_inside = std::max(state->max_inside, state->inside);
        const int seen = state->shared;
        if ((id + round) % 3 == 0) {
            co_await io::sleep_for(1ms);
        } else {
            co_await rt::yield();
        }
        state->shared = seen + 1;
        --state->inside;
    }
}

Task<Exclusion> exclusion_scenario() {
    Mutex mutex;
    Exclusion state;
    std::vector<Task<>> workers;
    for (int id = 0; id < 100; ++id) {
        workers.push_back(exclusive_worker(&mutex, &state, id));
    }
    auto all = rt::when_all(std::move(workers));
    co_await std::move(all);
    CHECK_FALSE(mutex.locked());
    co_return state;
}

} // namespace

TEST_CASE("Mutex: mutual exclusion across 100 coroutines that sleep while holding it") {
    const auto start = Clock::now();
    const Exclusion state = io::sync_wait(exclusion_scenario());
    CHECK(state.shared == 300);
    CHECK(state.max_inside == 1);
    CHECK(state.inside == 0);
    CHECK(fast_enough(start));
}

namespace {

Task<> fifo_waiter(Mutex* mutex, std::vector<int>* order, int id) {
    Mutex::Guard guard = co_await mutex->lock();
    order->push_back(id);
    co_await rt::yield(); // hold it across a suspension
}

struct FifoOutcome {
    std::vector<int> order;
    bool empty_right_after_unlock = false;
    bool try_lock_failed_after_unlock = false;
    bool still_locked_after_unlock = false;
};

Task<> fifo_holder(Mutex* mutex, FifoOutcome* out) {
    Mutex::Guard guard = mutex->try_lock();
    REQUIRE(guard.owns_lock());
    co_await yield_n(3); // let every waiter queue up
    guard.unlock();
    // Handed to the first waiter, which has not run yet (resumed via the ready queue).
    out->empty_right_after_unlock = out->order.empty();
    out->still_locked_after_unlock = mutex->locked();
    Mutex::Guard barging = mutex->try_lock();
    out->try_lock_failed_after_unlock = !barging.owns_lock();
}

Task<FifoOutcome> fifo_scenario() {
    Mutex mutex;
    FifoOutcome out;
    auto all = rt::when_all(fifo_holder(&mutex, &out), fifo_waiter(&mutex, &out.order, 0),
                            fifo_waiter(&mutex, &out.order, 1), fifo_waiter(&mutex, &out.order, 2),
                            fifo_waiter(&mutex, &out.order, 3), fifo_waiter(&mutex, &out.order, 4));
    co_await std::move(all);
    co_return out;
}

} // namespace

TEST_CASE("Mutex: FIFO hand-off through the ready queue, no barging") {
    const FifoOutcome out = io::sync_wait(fifo_scenario());
    CHECK(out.order == std::vector<int>{0, 1, 2, 3, 4});
    CHECK(out.empty_right_after_unlock);
    CHECK(out.still_locked_after_unlock);
    CHECK(out.try_lock_failed_after_unlock);
}

TEST_CASE("Mutex: try_lock and Guard semantics") {
    Mutex mutex;
    CHECK_FALSE(mutex.locked());
    {
        Mutex::Guard first = mutex.try_lock();
        CHECK(first.owns_lock());
        CHECK(static_cast<bool>(first));
        CHECK(first.mutex() == &mutex);
        CHECK(mutex.locked());

        Mutex::Guard second = mutex.try_lock();
        CHECK_FALSE(second.owns_lock());
        CHECK(second.mutex() == nullptr);

        Mutex::Guard moved = std::move(first);
        CHECK_FALSE(first.owns_lock()); // NOLINT(bugprone-use-after-move): checking the moved-from state
        CHECK(moved.owns_lock());
        CHECK(mutex.locked());

        second = std::move(moved); // second owned nothing: still locked, now through `second`
        CHECK(mutex.locked());
        CHECK(second.owns_lock());
    }
    CHECK_FALSE(mutex.locked());

    Mutex::Guard again = mutex.try_lock();
    CHECK(again.owns_lock());
    again.unlock();
    CHECK_FALSE(again.owns_lock());
    CHECK_FALSE(mutex.locked());
    again.unlock(); // no-op
    CHECK_FALSE(mutex.locked());
}

namespace {

struct CancelOutcome {
    std::vector<int> order;
    bool cancelled = false;
    bool stopped_token_on_free_mutex_locked = false;
    bool stopped_token_on_held_mutex_threw = false;
};

Task<> cancellable_waiter(Mutex* mutex, CancelOutcome* out, int id) {
    try {
        Mutex::Guard guard = co_await mutex->lock();
        out->order.push_back(id);
    } catch (const rt::OperationCancelled&) {
        out->cancelled = true;
    }
}

Task<> cancel_holder(Mutex* mutex, rt::StopSource* source) {
    Mutex::Guard guard = co_await mutex->lock();
    co_await yield_n(2);                                    // waiters 1, 2, 3 queue up
    source->request_stop();                                 // waiter 2 leaves the queue
    co_await yield_n(3);
}

Task<> lock_with_stopped_token(Mutex* mutex, bool* locked) {
    Mutex::Guard guard = co_await mutex->lock();
    *locked = guard.owns_lock();
}

Task<> lock_held_with_stopped_token(Mutex* mutex, bool* threw) {
    try {
        Mutex::Guard guard = co_await mutex->lock();
    } catch (const rt::OperationCancelled&) {
        *threw = true;
    }
}

Task<CancelOutcome> cancel_scenario() {
    Mutex mutex;
    CancelOutcome out;
    rt::StopSource source;
    Task<> cancelled = cancellable_waiter(&mutex, &out, 2).with_stop_token(rt::StopToken(source));
    auto all = rt::when_all(cancel_holder(&mutex, &source), cancellable_waiter(&mutex, &out, 1),
                            std::move(cancelled), cancellable_waiter(&mutex, &out, 3));
    co_await std::move(all);

    rt::StopSource stopped;
    stopped.request_stop();
    // Free mutex: a lock that does not wait ignores the token.
    Task<> free_lock = lock_with_stopped_token(&mutex, &out.stopped_token_on_free_mutex_locked)
                           .with_stop_token(rt::StopToken(stopped));
    co_await std::move(free_lock);
    // Held mutex: the stopped token makes the lock throw instead of waiting.
    Mutex::Guard held = mutex.try_lock();
    Task<> held_lock = lock_held_with_stopped_token(&mutex, &out.stopped_token_on_held_mutex_threw)
                           .with_stop_token(rt::StopToken(stopped));
    co_await std::move(held_lock);
    co_return out;
}

} // namespace

TEST_CASE("Mutex: a waiter whose stop token fires leaves the queue with OperationCancelled") {
    const CancelOutcome out = io::sync_wait(cancel_scenario());
    CHECK(out.cancelled);
    CHECK(out.order == std::vector<int>{1, 3});
    CHECK(out.stopped_token_on_free_mutex_locked);
    CHECK(out.stopped_token_on_held_mutex_threw);
}

// ---------------------------------------------------------------------------------------------
// Channel

namespace {

Task<> produce_range(Channel<int>* ch, int first, int count, int* sent = nullptr) {
    for (int i = first; i < first + count; ++i) {
        const bool ok = co_await ch->send(i);
        REQUIRE(ok);
        if (sent != nullptr) {
            ++*sent;
        }
    }
}

Task<std::vector<int>> drain(Channel<int>* ch) {
    std::vector<int> out;
    while (true) {
        std::optional<int> v = co_await ch->receive();
        if (!v) {
            break;
        }
        out.push_back(*v);
    }
    co_return out;
}

Task<> produce_then_close(Channel<int>* ch, int count) {
    Task<> produce = produce_range(ch, 0, count);
    co_await std::move(produce);
    ch->close();
}

Task<std::vector<int>> ordering_scenario(std::size_t capacity) {
    Channel<int> ch(capacity);
    auto all = rt::when_all(produce_then_close(&ch, 100), drain(&ch));
    auto results = co_await std::move(all);
    co_return std::move(std::get<1>(results));
}

} // namespace

TEST_CASE("Channel: values arrive in send order; nullopt after close and drain") {
    std::vector<int> expected(100);
    for (int i = 0; i < 100; ++i) {
        expected[static_cast<std::size_t>(i)] = i;
    }
    CHECK(io::sync_wait(ordering_scenario(1)) == expected);
    CHECK(io::sync_wait(ordering_scenario(4)) == expected);
    CHECK(io::sync_wait(ordering_scenario(1000)) == expected);
    CHECK(io::sync_wait(ordering_scenario(0)) == expected); // rendezvous
}

namespace {

struct Backpressure {
    int sent_while_blocked = -1;
    std::size_t size_while_blocked = 99;
    int sent_after_one_receive = -1;
    std::vector<int> received;
};

Task<> backpressure_observer(Channel<int>* ch, const int* sent, Backpressure* out) {
    co_await yield_n(10); // plenty of time for the producer to fill the channel
    out->sent_while_blocked = *sent;
    out->size_while_blocked = ch->size();
    std::optional<int> first = co_await ch->receive();
    out->received.push_back(first.value_or(-1));
    co_await yield_n(3);
    out->sent_after_one_receive = *sent;
    while (out->received.size() < 5) {
        std::optional<int> v = co_await ch->receive();
        out->received.push_back(v.value_or(-1));
    }
}

Task<Backpressure> backpressure_scenario() {
    Channel<int> ch(2);
    int sent = 0;
    Backpressure out;
    auto all = rt::when_all(produce_range(&ch, 10, 5, &sent), backpressure_observer(&ch, &sent, &out));
    co_await std::move(all);
    co_return out;
}

} // namespace

TEST_CASE("Channel: a producer is suspended while the channel is full") {
    const Backpressure out = io::sync_wait(backpressure_scenario());
    CHECK(out.sent_while_blocked == 2);
    CHECK(out.size_while_blocked == 2);
    CHECK(out.sent_after_one_receive == 3);
    CHECK(out.received == std::vector<int>{10, 11, 12, 13, 14});
}

namespace {

struct CloseOutcome {
    std::vector<std::optional<int>> received;
    bool blocked_send_result = true;
    bool send_after_close = true;
    bool try_send_after_close = true;
    bool waiting_receiver_got_nullopt = false;
};

Task<> blocked_sender(Channel<int>* ch, bool* result) {
    *result = co_await ch->send(3); // the channel holds 1 and 2: waits, then close() fails it
}

Task<> closer(Channel<int>* ch) {
    co_await yield_n(2);
    ch->close();
    ch->close(); // idempotent
}

Task<> waiting_receiver(Channel<int>* ch, bool* got_nullopt) {
    std::optional<int> v = co_await ch->receive();
    *got_nullopt = !v.has_value();
}

Task<CloseOutcome> close_scenario() {
    CloseOutcome out;
    Channel<int> ch(2);
    REQUIRE(ch.try_send(1));
    REQUIRE(ch.try_send(2));
    auto first = rt::when_all(blocked_sender(&ch, &out.blocked_send_result), closer(&ch));
    co_await std::move(first);
    CHECK(ch.closed());
    CHECK(ch.size() == 2);
    out.send_after_close = co_await ch.send(4);
    out.try_send_after_close = ch.try_send(5);
    for (int i = 0; i < 3; ++i) {
        out.received.push_back(co_await ch.receive());
    }

    Channel<int> empty(4);
    auto second = rt::when_all(waiting_receiver(&empty, &out.waiting_receiver_got_nullopt), closer(&empty));
    co_await std::move(second);
    co_return out;
}

} // namespace

TEST_CASE("Channel: close wakes senders (false) and receivers (nullopt); buffered values drain") {
    const CloseOutcome out = io::sync_wait(close_scenario());
    CHECK_FALSE(out.blocked_send_result);
    CHECK_FALSE(out.send_after_close);
    CHECK_FALSE(out.try_send_after_close);
    REQUIRE(out.received.size() == 3);
    CHECK(out.received[0] == std::optional<int>{1});
    CHECK(out.received[1] == std::optional<int>{2});
    CHECK_FALSE(out.received[2].has_value());
    CHECK(out.waiting_receiver_got_nullopt);
}

namespace {

struct Totals {
    std::int64_t sum = 0;
    int count = 0;
};

Task<> consume_sum(Channel<int>* ch, Totals* totals, int* per_consumer) {
    while (true) {
        std::optional<int> v = co_await ch->receive();
        if (!v) {
            break;
        }
        totals->sum += *v;
        ++totals->count;
        ++*per_consumer;
        if (*v % 7 == 0) {
            co_await rt::yield();
        }
    }
}

Task<> producer(Channel<int>* ch, int id, int count) {
    for (int i = 0; i < count; ++i) {
        const int value = id * count + i;
        const bool ok = co_await ch->send(value);
        REQUIRE(ok);
        if (i % 5 == id % 5) {
            co_await rt::yield();
        }
    }
}

Task<> all_producers_then_close(Channel<int>* ch, int producers, int count) {
    std::vector<Task<>> tasks;
    for (int id = 0; id < producers; ++id) {
        tasks.push_back(producer(ch, id, count));
    }
    auto all = rt::when_all(std::move(tasks));
    co_await std::move(all);
    ch->close();
}

Task<Totals> many_scenario(std::vector<int>* per_consumer) {
    Channel<int> ch(8);
    Totals totals;
    std::vector<Task<>> tasks;
    tasks.push_back(all_producers_then_close(&ch, 10, 1000));
    for (std::size_t c = 0; c < per_consumer->size(); ++c) {
        tasks.push_back(consume_sum(&ch, &totals, &(*per_consumer)[c]));
    }
    auto all = rt::when_all(std::move(tasks));
    co_await std::move(all);
    co_return totals;
}

} // namespace

TEST_CASE("Channel: many producers and consumers") {
    std::vector<int> per_consumer(5, 0);
    const Totals totals = io::sync_wait(many_scenario(&per_consumer));
    constexpr std::int64_t n = 10 * 1000;
    CHECK(totals.count == n);
    CHECK(totals.sum == n * (n - 1) / 2);
    int consumers_used = 0;
    for (int c : per_consumer) {
        consumers_used += c > 0 ? 1 : 0;
    }
    CHECK(consumers_used > 1);
}

TEST_CASE("Channel: try_send / try_receive, move-only values, buffered values destroyed") {
    Channel<std::unique_ptr<int>> ch(1);
    CHECK(ch.capacity() == 1);
    CHECK(ch.empty());
    auto a = std::make_unique<int>(1);
    auto b = std::make_unique<int>(2);
    CHECK(ch.try_send(std::move(a)));
    CHECK(a == nullptr); // NOLINT(bugprone-use-after-move): moved into the channel
    CHECK_FALSE(ch.try_send(std::move(b)));
    REQUIRE(b != nullptr); // NOLINT(bugprone-use-after-move): a failed try_send leaves it alone
    CHECK(*b == 2);
    CHECK(ch.size() == 1);
    std::optional<std::unique_ptr<int>> got = ch.try_receive();
    REQUIRE(got.has_value());
    CHECK(**got == 1);
    CHECK_FALSE(ch.try_receive().has_value());

    auto tracked = std::make_shared<int>(5);
    {
        Channel<std::shared_ptr<int>> holder(3);
        CHECK(holder.try_send(tracked));
        CHECK(holder.try_send(tracked));
        CHECK(tracked.use_count() == 3);
    }
    CHECK(tracked.use_count() == 1);

    Channel<int> rendezvous(0);
    CHECK_FALSE(rendezvous.try_send(1)); // nobody receives
    CHECK_FALSE(rendezvous.try_receive().has_value());
}

namespace {

Task<std::vector<std::string>> strings_scenario() {
    Channel<std::string> ch(2);
    std::vector<std::string> out;
    for (int round = 0; round < 3; ++round) {
        std::string long_value(100, static_cast<char>('a' + round));
        const bool ok = co_await ch.send(std::move(long_value));
        CHECK(ok);
        const std::string copy = "short" + std::to_string(round);
        const bool ok_copy = co_await ch.send(copy);
        CHECK(ok_copy);
        for (int i = 0; i < 2; ++i) {
            std::optional<std::string> v = co_await ch.receive();
            out.push_back(v.value_or("?"));
        }
    }
    co_return out;
}

} // namespace

TEST_CASE("Channel<std::string>: moved and copied values") {
    const std::vector<std::string> out = io::sync_wait(strings_scenario());
    REQUIRE(out.size() == 6);
    CHECK(out[0] == std::string(100, 'a'));
    CHECK(out[1] == "short0");
    CHECK(out[4] == std::string(100, 'c'));
    CHECK(out[5] == "short2");
}

namespace {

struct ChannelCancel {
    bool receiver_cancelled = false;
    bool sender_cancelled = false;
    bool stopped_receive_threw = false;
    std::vector<int> received;
};

Task<> cancellable_receiver(Channel<int>* ch, bool* cancelled) {
    try {
        std::optional<int> v = co_await ch->receive();
        CHECK(false); // never delivered: the token fires first
        (void)v;
    } catch (const rt::OperationCancelled&) {
        *cancelled = true;
    }
}

Task<> cancellable_sender(Channel<int>* ch, bool* cancelled) {
    try {
        const bool ok = co_await ch->send(99);
        CHECK(false); // the channel stays full until the token fires
        (void)ok;
    } catch (const rt::OperationCancelled&) {
        *cancelled = true;
    }
}

Task<ChannelCancel> channel_cancel_scenario() {
    ChannelCancel out;
    {
        Channel<int> ch(1);
        rt::StopSource source;
        Task<> receiver = cancellable_receiver(&ch, &out.receiver_cancelled).with_stop_token(rt::StopToken(source));
        auto all = rt::when_all(std::move(receiver), request_stop_after(2, &source));
        co_await std::move(all);
        // The cancelled receiver left the queue: the next value stays in the buffer.
        CHECK(ch.try_send(1));
        CHECK(ch.size() == 1);
        out.received.push_back(ch.try_receive().value_or(-1));
    }
    {
        Channel<int> ch(1);
        CHECK(ch.try_send(7));
        rt::StopSource source;
        Task<> sender = cancellable_sender(&ch, &out.sender_cancelled).with_stop_token(rt::StopToken(source));
        auto all = rt::when_all(std::move(sender), request_stop_after(2, &source));
        co_await std::move(all);
        // The cancelled sender's value was dropped: only 7 is there, and there is room again.
        out.received.push_back(ch.try_receive().value_or(-1));
        CHECK_FALSE(ch.try_receive().has_value());
        CHECK(ch.try_send(8));
        out.received.push_back(ch.try_receive().value_or(-1));
    }
    {
        Channel<int> ch(1);
        rt::StopSource stopped;
        stopped.request_stop();
        Task<> receiver =
            cancellable_receiver(&ch, &out.stopped_receive_threw).with_stop_token(rt::StopToken(stopped));
        co_await std::move(receiver);
    }
    co_return out;
}

} // namespace

TEST_CASE("Channel: waiting senders and receivers are cancelled by their stop token") {
    const auto start = Clock::now();
    const ChannelCancel out = io::sync_wait(channel_cancel_scenario());
    CHECK(out.receiver_cancelled);
    CHECK(out.sender_cancelled);
    CHECK(out.stopped_receive_threw);
    CHECK(out.received == std::vector<int>{1, 7, 8});
    CHECK(fast_enough(start));
}
