// SPDX-License-Identifier: MIT
// Task<T>: the lazy, move-only coroutine type every ringwork API returns.
#pragma once

#include <ringwork/runtime/frame_pool.hpp>
#include <ringwork/runtime/scheduler.hpp>
#include <ringwork/runtime/stop_token.hpp>

#include <cassert>
#include <concepts>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>

namespace ringwork::runtime {

/// \brief Thrown when a Task that holds no coroutine is awaited (moved-from or default).
class BrokenPromise : public std::logic_error {
public:
    BrokenPromise() : std::logic_error("ringwork: awaited an empty Task") {}
};

namespace detail {

/// \brief State shared by every ringwork promise: pooled frames, the ambient stop token and
/// the count of kernel operations the coroutine is suspended on.
class PromiseBase {
public:
    [[nodiscard]] static void* operator new(std::size_t size) { return FramePool::allocate(size); }
    static void operator delete(void* frame, std::size_t size) noexcept {
        FramePool::deallocate(frame, size);
    }

    [[nodiscard]] StopToken stop_token() const noexcept { return token_; }
    void set_stop_token(StopToken token) noexcept { token_ = token; }

    /// Called by I/O awaiters around a kernel operation; a frame must never be destroyed
    /// while the count is non-zero (the kernel would write into freed memory).
    void op_started() noexcept { ++pending_ops_; }
    void op_finished() noexcept { --pending_ops_; }
    [[nodiscard]] std::uint32_t pending_ops() const noexcept { return pending_ops_; }

    std::coroutine_handle<> continuation_{};

private:
    StopToken token_{};
    std::uint32_t pending_ops_ = 0;
};

/// \brief Read the ambient stop token of an awaiting coroutine (empty for foreign promises).
template <class Promise>
StopToken stop_token_of(std::coroutine_handle<Promise> h) noexcept {
    if constexpr (std::derived_from<Promise, PromiseBase>) {
        return h.promise().stop_token();
    } else {
        return {};
    }
}

/// \brief The PromiseBase of an awaiting coroutine, or null for foreign promises.
template <class Promise>
PromiseBase* promise_base_of(std::coroutine_handle<Promise> h) noexcept {
    if constexpr (std::derived_from<Promise, PromiseBase>) {
        return &h.promise();
    } else {
        return nullptr;
    }
}

/// Final awaiter: hand control to the awaiting coroutine (bounded symmetric transfer).
struct FinalAwaiter {
    bool await_ready() const noexcept { return false; }
    template <class Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) const noexcept {
        std::coroutine_handle<> next = h.promise().continuation_;
        return next ? transfer_to(next) : std::noop_coroutine();
    }
    void await_resume() const noexcept {}
};

template <class T>
class TaskPromise;

} // namespace detail

/// \brief A lazy coroutine producing a T (or void, or a reference).
///
/// Nothing runs until the task is awaited; the awaiting coroutine is resumed by symmetric
/// transfer when it finishes; an exception escapes to the awaiter. Move-only; the destructor
/// destroys the frame, which must not be suspended on a kernel operation (asserted).
/// The awaiting coroutine's stop token is inherited unless one was set with with_stop_token().
template <class T = void>
class [[nodiscard]] Task {
public:
    using promise_type = detail::TaskPromise<T>;
    using value_type = T;
    using Handle = std::coroutine_handle<promise_type>;

    Task() noexcept = default;
    explicit Task(Handle h) noexcept : h_(h) {}
    Task(Task&& other) noexcept : h_(std::exchange(other.h_, {})) {}
    Task& operator=(Task&& other) noexcept {
        if (this != &other) {
            destroy();
            h_ = std::exchange(other.h_, {});
        }
        return *this;
    }
    Task(const Task&) = delete;
    Task& operator=(const Task&) = delete;
    ~Task() { destroy(); }

    [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(h_); }
    [[nodiscard]] bool done() const noexcept { return !h_ || h_.done(); }
    /// \brief Set the stop token this task (and what it awaits) observes.
    Task&& with_stop_token(StopToken token) && noexcept {
        if (h_) {
            h_.promise().set_stop_token(token);
        }
        return std::move(*this);
    }
    /// \brief Give up ownership of the coroutine (root runners take it over).
    Handle release() noexcept { return std::exchange(h_, {}); }
    [[nodiscard]] Handle handle() const noexcept { return h_; }

    struct Awaiter {
        Handle h;
        bool await_ready() const {
            if (!h) {
                throw BrokenPromise{};
            }
            return h.done();
        }
        template <class Promise>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> awaiting) noexcept {
            promise_type& p = h.promise();
            p.continuation_ = awaiting;
            if (!p.stop_token().stop_possible()) {
                p.set_stop_token(detail::stop_token_of(awaiting));
            }
            return detail::transfer_to(h);
        }
        decltype(auto) await_resume() { return h.promise().result(); }
    };
    Awaiter operator co_await() && noexcept { return Awaiter{h_}; }
    Awaiter operator co_await() & noexcept { return Awaiter{h_}; }

private:
    void destroy() noexcept {
        if (h_) {
            assert(h_.promise().pending_ops() == 0 &&
                   "Task destroyed while suspended on a kernel operation: cancel it and await it");
            h_.destroy();
            h_ = {};
        }
    }
    Handle h_{};
};

namespace detail {

template <class T>
class TaskPromise final : public PromiseBase {
public:
    Task<T> get_return_object() noexcept {
        return Task<T>{std::coroutine_handle<TaskPromise>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() const noexcept { return {}; }
    FinalAwaiter final_suspend() const noexcept { return {}; }
    void unhandled_exception() noexcept { result_.template emplace<2>(std::current_exception()); }

    template <class U>
        requires std::convertible_to<U&&, T>
    void return_value(U&& value) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
        result_.template emplace<1>(std::forward<U>(value));
    }

    T result() {
        if (result_.index() == 2) {
            std::rethrow_exception(std::get<2>(result_));
        }
        return std::move(std::get<1>(result_));
    }

private:
    std::variant<std::monostate, T, std::exception_ptr> result_;
};

template <class T>
class TaskPromise<T&> final : public PromiseBase {
public:
    Task<T&> get_return_object() noexcept {
        return Task<T&>{std::coroutine_handle<TaskPromise>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() const noexcept { return {}; }
    FinalAwaiter final_suspend() const noexcept { return {}; }
    void unhandled_exception() noexcept { error_ = std::current_exception(); }
    void return_value(T& value) noexcept { value_ = &value; }
    T& result() {
        if (error_) {
            std::rethrow_exception(error_);
        }
        return *value_;
    }

private:
    T* value_ = nullptr;
    std::exception_ptr error_;
};

template <>
class TaskPromise<void> final : public PromiseBase {
public:
    Task<void> get_return_object() noexcept {
        return Task<void>{std::coroutine_handle<TaskPromise>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() const noexcept { return {}; }
    FinalAwaiter final_suspend() const noexcept { return {}; }
    void unhandled_exception() noexcept { error_ = std::current_exception(); }
    void return_void() const noexcept {}
    void result() const {
        if (error_) {
            std::rethrow_exception(error_);
        }
    }

private:
    std::exception_ptr error_;
};

} // namespace detail

/// \brief `co_await current_stop_token()`: the awaiting coroutine's ambient stop token
/// (what its pending operations observe), read without suspending.
struct CurrentStopToken {
    StopToken token;
    bool await_ready() const noexcept { return false; }
    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) noexcept {
        token = detail::stop_token_of(h);
        return false; // resume at once
    }
    StopToken await_resume() const noexcept { return token; }
};
inline CurrentStopToken current_stop_token() noexcept { return {}; }

/// \brief The result type of awaiting `A`.
template <class A>
using await_result_t = decltype(std::declval<A>().operator co_await().await_resume());

} // namespace ringwork::runtime
