// SPDX-License-Identifier: MIT
// The per-thread ready queue and the bounded symmetric transfer that every awaitable uses.
#pragma once

#include <cassert>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace ringwork::runtime {

/// \brief FIFO of coroutines ready to run. Owned by a reactor; thread-affine, no locks.
///
/// A ring buffer that doubles when full, so steady state never allocates.
class ReadyQueue {
public:
    ReadyQueue() : slots_(std::make_unique<std::coroutine_handle<>[]>(kInitial)), mask_(kInitial - 1) {}

    void push(std::coroutine_handle<> h) {
        if (tail_ - head_ == mask_ + 1) {
            grow();
        }
        slots_[tail_++ & mask_] = h;
    }
    /// Precondition: !empty().
    std::coroutine_handle<> pop() noexcept { return slots_[head_++ & mask_]; }
    [[nodiscard]] bool empty() const noexcept { return head_ == tail_; }
    [[nodiscard]] std::size_t size() const noexcept { return tail_ - head_; }

private:
    static constexpr std::size_t kInitial = 256;
    void grow() {
        const std::size_t n = mask_ + 1;
        auto bigger = std::make_unique<std::coroutine_handle<>[]>(n * 2);
        for (std::size_t i = 0; i < n; ++i) {
            bigger[i] = slots_[(head_ + i) & mask_];
        }
        slots_ = std::move(bigger);
        head_ = 0;
        tail_ = n;
        mask_ = n * 2 - 1;
    }
    std::unique_ptr<std::coroutine_handle<>[]> slots_;
    std::size_t head_ = 0;
    std::size_t tail_ = 0;
    std::size_t mask_;
};

namespace detail {

/// Transfers allowed between two resumptions from the ready queue before one is bounced.
inline constexpr std::uint32_t kMaxInlineTransfers = 256;

struct ThreadScheduler {
    ReadyQueue* ready = nullptr;   ///< the running reactor's queue, or null outside a reactor
    std::uint32_t transfers = 0;   ///< symmetric transfers since the last resume from `ready`
};

inline constinit thread_local ThreadScheduler tl_scheduler{};

/// \brief The handle an `await_suspend` should return to run `next`.
///
/// NOTE: GCC at -O0 and g++ 12 under ASan do not turn symmetric transfer into a tail call, so
/// each transfer nests a stack frame. Counting transfers since the reactor last resumed a
/// coroutine and bouncing every kMaxInlineTransfers-th one through the ready queue bounds the
/// stack in every build (cppcoro's task.hpp discusses the same hazard).
inline std::coroutine_handle<> transfer_to(std::coroutine_handle<> next) noexcept {
    ThreadScheduler& s = tl_scheduler;
    if (++s.transfers < kMaxInlineTransfers || s.ready == nullptr) [[likely]] {
        return next;
    }
    s.transfers = 0;
    s.ready->push(next); // may allocate only when the queue doubles
    return std::noop_coroutine();
}

} // namespace detail

/// \brief Queue `h` to run on the calling thread's reactor. Reactor thread only.
inline void schedule(std::coroutine_handle<> h) {
    assert(detail::tl_scheduler.ready != nullptr && "schedule() outside a reactor thread");
    detail::tl_scheduler.ready->push(h);
}

/// \brief Awaitable that requeues the current coroutine behind everything already ready.
struct [[nodiscard]] Yield {
    bool await_ready() const noexcept { return detail::tl_scheduler.ready == nullptr; }
    void await_suspend(std::coroutine_handle<> h) const { schedule(h); }
    void await_resume() const noexcept {}
};
inline Yield yield() noexcept { return {}; }

} // namespace ringwork::runtime
