// SPDX-License-Identifier: MIT
// when_all / when_any: run tasks concurrently on the current reactor and join them (structured).
#pragma once

#include <ringwork/runtime/scheduler.hpp>
#include <ringwork/runtime/stop_token.hpp>
#include <ringwork/runtime/task.hpp>

#include <cassert>
#include <concepts>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace ringwork::runtime {

/// \brief What when_all / when_any yield for a `Task<T>`: T itself, or std::monostate for void.
template <class T>
using when_value_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

namespace detail {

class WhenGroup;

/// \brief Promise state shared by every child runner of a when_all / when_any group.
///
/// Derives from PromiseBase: runner frames come from the frame pool, and the runner's stop
/// token is what the child task inherits when the runner awaits it.
class WhenChildPromiseBase : public PromiseBase {
public:
    /// Reports the finished child to its group; resumes the parent after the last one.
    struct FinalAwaiter {
        bool await_ready() const noexcept { return false; }
        template <class Promise>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) const noexcept;
        void await_resume() const noexcept {}
    };

    std::suspend_always initial_suspend() const noexcept { return {}; }
    FinalAwaiter final_suspend() const noexcept { return {}; }
    void unhandled_exception() noexcept { error_ = std::current_exception(); }

    WhenGroup* group_ = nullptr;             ///< the group that owns this runner's frame
    WhenChildPromiseBase* next_ = nullptr;   ///< intrusive list of the group, argument order
    std::coroutine_handle<> self_{};         ///< this runner (to start and destroy it)
    std::exception_ptr error_{};             ///< what the child threw, if anything
    std::size_t index_ = 0;                  ///< position among the group's children
};

template <class R>
class WhenChildPromise;

/// \brief Return object of a child runner: owns the frame until a WhenGroup adopts it.
template <class R>
class [[nodiscard]] WhenChild {
public:
    using promise_type = WhenChildPromise<R>;
    using Handle = std::coroutine_handle<promise_type>;

    explicit WhenChild(Handle h) noexcept : h_(h) {}
    WhenChild(WhenChild&& other) noexcept : h_(std::exchange(other.h_, {})) {}
    WhenChild& operator=(WhenChild&&) = delete;
    WhenChild(const WhenChild&) = delete;
    WhenChild& operator=(const WhenChild&) = delete;
    ~WhenChild() {
        if (h_) {
            h_.destroy();
        }
    }
    Handle release() noexcept { return std::exchange(h_, {}); }

private:
    Handle h_;
};

/// \brief Runner promise holding the child's value until the parent collects it.
template <class R>
class WhenChildPromise final : public WhenChildPromiseBase {
public:
    WhenChild<R> get_return_object() noexcept {
        return WhenChild<R>{std::coroutine_handle<WhenChildPromise>::from_promise(*this)};
    }
    template <class U>
        requires std::convertible_to<U&&, R>
    void return_value(U&& value) noexcept(std::is_nothrow_constructible_v<R, U&&>) {
        value_.emplace(std::forward<U>(value));
    }
    /// Precondition: the child returned normally.
    R take() { return std::move(*value_); }

private:
    std::optional<R> value_;
};

/// \brief Runner promise for a child returning a reference (when_all only).
template <class R>
class WhenChildPromise<R&> final : public WhenChildPromiseBase {
public:
    WhenChild<R&> get_return_object() noexcept {
        return WhenChild<R&>{std::coroutine_handle<WhenChildPromise>::from_promise(*this)};
    }
    void return_value(R& value) noexcept { value_ = &value; }
    R& take() noexcept { return *value_; }

private:
    R* value_ = nullptr;
};

/// \brief The runner coroutine: awaits one child task (which inherits the runner's stop token).
template <class T>
WhenChild<when_value_t<T>> when_child(Task<T> task) {
    if constexpr (std::is_void_v<T>) {
        co_await std::move(task);
        co_return std::monostate{};
    } else {
        co_return co_await std::move(task);
    }
}

/// \brief Join state of one when_all / when_any call; lives in the parent's frame.
///
/// Owns the runner frames (intrusive list in argument order) and destroys them with itself.
/// `remaining_` counts unfinished children plus one for the start loop, so children that
/// finish while being started can never resume the parent early.
class WhenGroup {
public:
    WhenGroup() noexcept = default;
    /// \param cancel requested when the first child finishes; children not started by then
    /// are never started (when_any).
    explicit WhenGroup(StopSource* cancel) noexcept : cancel_(cancel) {}
    WhenGroup(const WhenGroup&) = delete;
    WhenGroup& operator=(const WhenGroup&) = delete;
    ~WhenGroup() {
        WhenChildPromiseBase* p = head_;
        while (p != nullptr) {
            WhenChildPromiseBase* next = p->next_;
            p->self_.destroy();
            p = next;
        }
    }

    /// \brief Take ownership of a not yet started runner; returns its promise.
    template <class R>
    WhenChildPromise<R>* adopt(WhenChild<R> child) noexcept {
        auto h = child.release();
        WhenChildPromise<R>& p = h.promise();
        p.group_ = this;
        p.self_ = h;
        p.index_ = count_++;
        if (tail_ == nullptr) {
            head_ = &p;
        } else {
            tail_->next_ = &p;
        }
        tail_ = &p;
        return &p;
    }

    /// \brief Start every child with `token`; false if all already finished (do not suspend).
    bool start(std::coroutine_handle<> parent, StopToken token) noexcept {
        parent_ = parent;
        remaining_ = count_ + 1;
        for (WhenChildPromiseBase* p = head_; p != nullptr;) {
            WhenChildPromiseBase* next = p->next_;
            if (cancel_ != nullptr && first_finished_ != nullptr) {
                --remaining_; // when_any already decided: never start this one
            } else {
                p->set_stop_token(token);
                p->self_.resume();
            }
            p = next;
        }
        return --remaining_ != 0;
    }

    /// \brief Called from a runner's final suspend; the handle to transfer to.
    std::coroutine_handle<> child_finished(WhenChildPromiseBase& p) noexcept {
        if (first_finished_ == nullptr) {
            first_finished_ = &p;
            if (cancel_ != nullptr) {
                cancel_->request_stop();
            }
        }
        if (p.error_ && first_error_ == nullptr) {
            first_error_ = &p;
        }
        if (--remaining_ == 0) {
            return transfer_to(parent_);
        }
        return std::noop_coroutine();
    }

    /// \brief Rethrow the exception of the first child (by completion order) that failed.
    void rethrow_first_error() const {
        if (first_error_ != nullptr) {
            std::rethrow_exception(first_error_->error_);
        }
    }

    [[nodiscard]] std::size_t size() const noexcept { return count_; }
    [[nodiscard]] WhenChildPromiseBase* first_child() const noexcept { return head_; }
    [[nodiscard]] WhenChildPromiseBase* first_finished() const noexcept { return first_finished_; }

private:
    StopSource* cancel_ = nullptr;
    WhenChildPromiseBase* head_ = nullptr;
    WhenChildPromiseBase* tail_ = nullptr;
    WhenChildPromiseBase* first_finished_ = nullptr;
    WhenChildPromiseBase* first_error_ = nullptr;
    std::coroutine_handle<> parent_{};
    std::size_t count_ = 0;
    std::size_t remaining_ = 0;
};

template <class Promise>
std::coroutine_handle<> WhenChildPromiseBase::FinalAwaiter::await_suspend(
    std::coroutine_handle<Promise> h) const noexcept {
    WhenChildPromiseBase& p = h.promise();
    return p.group_->child_finished(p);
}

/// \brief Starts a when_all group with the awaiting coroutine's stop token.
struct [[nodiscard]] WhenAllStart {
    WhenGroup* group;
    bool await_ready() const noexcept { return group->size() == 0; }
    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> parent) const noexcept {
        return group->start(parent, stop_token_of(parent));
    }
    void await_resume() const noexcept {}
};

/// \brief Starts a when_any group: children observe `cancel`, which the parent's token
/// (forwarded through `forward`) and the first finished child both trigger.
struct [[nodiscard]] WhenAnyStart {
    WhenGroup* group;
    StopSource* cancel;
    StopRegistration* forward;
    bool await_ready() const noexcept { return false; }
    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> parent) const noexcept {
        forward->arm(stop_token_of(parent), &forward_stop, cancel);
        return group->start(parent, StopToken(*cancel));
    }
    void await_resume() const noexcept {}

    static void forward_stop(void* source) noexcept { static_cast<StopSource*>(source)->request_stop(); }
};

template <class... R>
std::tuple<R...> collect_all(const std::tuple<WhenChildPromise<R>*...>& children) {
    return std::apply([](WhenChildPromise<R>*... p) { return std::tuple<R...>(p->take()...); },
                      children);
}

template <std::size_t I, class Variant, class Children>
Variant take_winner(std::size_t index, const Children& children) {
    if constexpr (I + 1 < std::tuple_size_v<Children>) {
        if (index != I) {
            return take_winner<I + 1, Variant>(index, children);
        }
    }
    return Variant(std::in_place_index<I>, std::get<I>(children)->take());
}

} // namespace detail

/// \brief Run every task concurrently and return all their results, in argument order.
///
/// The tasks are started in argument order when the returned task is awaited, each by a small
/// runner coroutine (a pooled frame) that gives it the awaiting coroutine's stop token (unless
/// the task already has one, see Task::with_stop_token). The awaiting coroutine resumes when
/// every task has finished. If any task threw, the exception of the first one to finish by
/// throwing is rethrown, after all of them finished; the other results are discarded.
/// A task that completes without suspending is simply done before the next one starts.
/// Apart from the frames (frame pool), nothing is allocated. Reactor thread only.
///
/// \return a tuple of the results; `std::monostate` stands for `void`, references stay references.
template <class... Ts>
Task<std::tuple<when_value_t<Ts>...>> when_all(Task<Ts>... tasks) {
    detail::WhenGroup group;
    const std::tuple<detail::WhenChildPromise<when_value_t<Ts>>*...> children{
        group.adopt(detail::when_child(std::move(tasks)))...};
    co_await detail::WhenAllStart{&group};
    group.rethrow_first_error();
    co_return detail::collect_all(children);
}

/// \brief Run every task of `tasks` concurrently; the results keep the order of `tasks`.
///
/// Same semantics as the variadic overload. Besides the pooled frames, only the returned
/// vector is allocated (once, after every task finished).
template <class T>
Task<std::vector<when_value_t<T>>> when_all(std::vector<Task<T>> tasks) {
    static_assert(!std::is_reference_v<T>, "when_all(std::vector<Task<T&>>) is not supported");
    using R = when_value_t<T>;
    detail::WhenGroup group;
    for (Task<T>& task : tasks) {
        group.adopt(detail::when_child(std::move(task)));
    }
    co_await detail::WhenAllStart{&group};
    group.rethrow_first_error();
    std::vector<R> results;
    results.reserve(group.size());
    for (detail::WhenChildPromiseBase* p = group.first_child(); p != nullptr; p = p->next_) {
        results.push_back(static_cast<detail::WhenChildPromise<R>*>(p)->take());
    }
    co_return results;
}

/// \brief Race the tasks: the first one to finish wins, the others are cancelled.
///
/// The tasks observe a StopSource owned by this call (unless they carry a token of their
/// own, see Task::with_stop_token); it is requested as soon as one task finishes, and also
/// when the awaiting coroutine's own stop token fires (forwarded with a stop registration).
/// The awaiting coroutine resumes only after *every* started task has finished, so nothing
/// outlives the call: a loser that ignores cancellation delays the result.
///
/// Synchronous completion: tasks are started one after another in argument order; if a task
/// finishes before the next one is started (it completed without suspending), the remaining
/// tasks are never started: their coroutines are destroyed without running.
///
/// The winner's exception propagates; the losers' results and exceptions (usually
/// OperationCancelled) are discarded. If the awaiting coroutine is cancelled, every task is
/// cancelled and the first to finish still decides the outcome (typically OperationCancelled).
/// Apart from the frames (frame pool), nothing is allocated. Reactor thread only.
///
/// \return a variant whose `index()` is the winner's position (duplicate types are fine).
template <class... Ts>
Task<std::variant<when_value_t<Ts>...>> when_any(Task<Ts>... tasks) {
    static_assert(sizeof...(Ts) > 0, "when_any needs at least one task");
    static_assert((!std::is_reference_v<Ts> && ...), "when_any does not support Task<T&>");
    using Variant = std::variant<when_value_t<Ts>...>;
    // Destroyed in reverse: runner frames, then the forwarding registration, then the source.
    StopSource cancel;
    StopRegistration forward;
    detail::WhenGroup group(&cancel);
    const std::tuple<detail::WhenChildPromise<when_value_t<Ts>>*...> children{
        group.adopt(detail::when_child(std::move(tasks)))...};
    co_await detail::WhenAnyStart{&group, &cancel, &forward};
    forward.disarm();
    const detail::WhenChildPromiseBase* winner = group.first_finished();
    assert(winner != nullptr);
    if (winner->error_) {
        std::rethrow_exception(winner->error_);
    }
    co_return detail::take_winner<0, Variant>(winner->index_, children);
}

} // namespace ringwork::runtime
