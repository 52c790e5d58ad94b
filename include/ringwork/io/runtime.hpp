// SPDX-License-Identifier: MIT
// Runtime: N reactor threads (one ring each), signals, and hopping work between threads.
#pragma once

#include <ringwork/io/reactor.hpp>
#include <ringwork/runtime/task.hpp>
#include <ringwork/runtime/thread_pool.hpp>

#include <atomic>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <type_traits>
#include <vector>

namespace ringwork::io {

/// \brief Options of a multi-reactor Runtime.
struct RuntimeOptions {
    unsigned threads = 0;        ///< reactor threads; 0 = one per online CPU
    bool pin_threads = false;    ///< pin reactor i to CPU i (mod CPU count)
    bool handle_signals = true;  ///< SIGINT/SIGTERM start a graceful stop of every reactor
    ReactorOptions reactor{};
};

/// \brief Runs one Reactor per thread, share-nothing, until stop() or a signal.
class Runtime {
public:
    /// The code each reactor thread runs; it is spawned detached on that thread's reactor.
    using ThreadMain = std::function<runtime::Task<>(Reactor& reactor, unsigned index)>;

    explicit Runtime(RuntimeOptions options = {});
    ~Runtime();
    Runtime(const Runtime&) = delete;
    Runtime& operator=(const Runtime&) = delete;

    /// \brief Start the reactor threads, spawn `main` on each, and block until all of them
    /// stopped (stop(), a signal, or a start-up failure, which is rethrown here).
    void run(ThreadMain main);
    /// \brief Gracefully stop every reactor. Thread-safe, also from a reactor thread.
    void stop() noexcept;
    [[nodiscard]] unsigned size() const noexcept { return threads_; }
    /// \brief Reactor `i`; valid while run() runs (after it has started them all).
    [[nodiscard]] Reactor& reactor(unsigned i) const noexcept { return *reactors_[i]; }
    /// \brief True once every reactor is up (polled by tests that drive run() on a thread).
    [[nodiscard]] bool started() const noexcept { return started_.load(std::memory_order_acquire); }

private:
    void thread_main(unsigned index, const ThreadMain& main);

    RuntimeOptions options_;
    unsigned threads_;
    std::vector<Reactor*> reactors_;
    std::atomic<unsigned> ready_count_{0};
    std::atomic<unsigned> finished_count_{0};
    std::atomic<bool> started_{false};
    std::atomic<bool> stop_requested_{false};
    int done_fd_ = -1;
    std::mutex error_mutex_;
    std::exception_ptr error_;
};

namespace detail {

/// Awaitable that moves the awaiting coroutine to `target`'s thread.
struct HopTo : RemoteWork {
    explicit HopTo(Reactor& target) noexcept : RemoteWork(&run), target_(&target) {}
    bool await_ready() const noexcept { return Reactor::current() == target_; }
    void await_suspend(std::coroutine_handle<> h) noexcept {
        h_ = h;
        target_->post(this);
    }
    void await_resume() const noexcept {}

private:
    static void run(RemoteWork* self) noexcept {
        auto* hop = static_cast<HopTo*>(self);
        runtime::schedule(hop->h_);
    }
    Reactor* target_;
    std::coroutine_handle<> h_{};
};

/// Awaitable that moves the awaiting coroutine to a pool thread.
struct HopToPool : runtime::PoolWork {
    explicit HopToPool(runtime::ThreadPool& pool) noexcept : PoolWork(&run), pool_(&pool) {}
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) noexcept {
        h_ = h;
        pool_->post(this);
    }
    void await_resume() const noexcept {}

private:
    static void run(PoolWork* self) noexcept { static_cast<HopToPool*>(self)->h_.resume(); }
    runtime::ThreadPool* pool_;
    std::coroutine_handle<> h_{};
};

template <class T>
struct IsTask : std::false_type {};
template <class T>
struct IsTask<runtime::Task<T>> : std::true_type {};

template <class F>
struct CallResult {
    using Raw = std::invoke_result_t<F&>;
    using type = typename std::conditional_t<IsTask<Raw>::value, Raw, runtime::Task<Raw>>::value_type;
};

template <class T>
using Stored = std::conditional_t<std::is_void_v<T>, char, T>;

} // namespace detail

/// \brief Run `fn` on `target`'s thread and resume the caller on its own thread with the
/// result (or exception). `fn` may return a value or a Task (awaited there, observing
/// `target`'s stop token). This is how reactors share state without data races.
/// Captures of `fn` must be safe to use on the target thread.
template <class F>
auto submit_to(Reactor& target, F fn) -> runtime::Task<typename detail::CallResult<F>::type> {
    using T = typename detail::CallResult<F>::type;
    Reactor* origin = Reactor::current();
    std::optional<detail::Stored<T>> value;
    std::exception_ptr error;
    co_await detail::HopTo(target);
    try {
        if constexpr (detail::IsTask<std::invoke_result_t<F&>>::value) {
            auto task = fn();
            if constexpr (std::is_void_v<T>) {
                co_await std::move(task).with_stop_token(target.stop_token());
                value.emplace('\0');
            } else {
                value.emplace(co_await std::move(task).with_stop_token(target.stop_token()));
            }
        } else if constexpr (std::is_void_v<T>) {
            fn();
            value.emplace('\0');
        } else {
            value.emplace(fn());
        }
    } catch (...) {
        error = std::current_exception();
    }
    co_await detail::HopTo(*origin);
    if (error) {
        std::rethrow_exception(error);
    }
    if constexpr (!std::is_void_v<T>) {
        co_return std::move(*value);
    }
}

/// \brief Run blocking or CPU-heavy `fn` on a pool thread and resume the caller on its
/// reactor with the result (or exception). The reactor keeps serving meanwhile.
template <class F>
auto offload(F fn, runtime::ThreadPool& pool = runtime::ThreadPool::shared())
    -> runtime::Task<std::invoke_result_t<F&>> {
    using T = std::invoke_result_t<F&>;
    Reactor* origin = Reactor::current();
    std::optional<detail::Stored<T>> value;
    std::exception_ptr error;
    co_await detail::HopToPool(pool);
    try {
        if constexpr (std::is_void_v<T>) {
            fn();
            value.emplace('\0');
        } else {
            value.emplace(fn());
        }
    } catch (...) {
        error = std::current_exception();
    }
    co_await detail::HopTo(*origin);
    if (error) {
        std::rethrow_exception(error);
    }
    if constexpr (!std::is_void_v<T>) {
        co_return std::move(*value);
    }
}

} // namespace ringwork::io
