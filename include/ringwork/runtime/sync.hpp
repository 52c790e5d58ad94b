// SPDX-License-Identifier: MIT
// Reactor-local coroutine synchronization: a FIFO Mutex and a bounded MPMC Channel<T>.
#pragma once

#include <ringwork/io/error.hpp>
#include <ringwork/runtime/scheduler.hpp>
#include <ringwork/runtime/stop_token.hpp>
#include <ringwork/runtime/task.hpp>

#include <cassert>
#include <coroutine>
#include <cstddef>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace ringwork::runtime {

namespace detail {

class WaitQueue;

/// \brief An intrusive waiter: lives in the awaiter (so in the suspended coroutine's frame).
///
/// While queued it watches the awaiting coroutine's stop token; if the token fires, the node
/// leaves its queue, is marked cancelled and its coroutine is queued on the ready queue.
class WaitNode {
public:
    WaitNode() noexcept = default;
    WaitNode(const WaitNode&) = delete;
    WaitNode& operator=(const WaitNode&) = delete;

protected:
    /// Leaves the queue if the frame is destroyed while waiting (the stop watch detaches itself).
    ~WaitNode();

    /// \brief Queue the node at the back of `queue` and watch `token`. Returns false (nothing
    /// queued, cancelled_ set) if stop was already requested: the caller must not suspend.
    bool wait_on(WaitQueue& queue, std::coroutine_handle<> waiter, StopToken token) noexcept;

    bool cancelled_ = false; ///< the stop token fired while waiting

private:
    friend class WaitQueue;
    static void on_stop(void* self) noexcept;

    WaitNode* prev_ = nullptr;
    WaitNode* next_ = nullptr;
    WaitQueue* queue_ = nullptr; ///< non-null while queued
    std::coroutine_handle<> waiter_{};
    StopRegistration stop_;
};

/// \brief FIFO of WaitNodes (doubly linked, so a cancelled waiter leaves in O(1)).
class WaitQueue {
public:
    WaitQueue() noexcept = default;
    WaitQueue(const WaitQueue&) = delete;
    WaitQueue& operator=(const WaitQueue&) = delete;
    ~WaitQueue() { assert(head_ == nullptr && "destroyed while coroutines wait on it"); }

    [[nodiscard]] bool empty() const noexcept { return head_ == nullptr; }

    /// \brief Dequeue the first waiter and stop watching its token; wake() it afterwards.
    /// Precondition: !empty().
    WaitNode* pop_front() noexcept {
        WaitNode* node = head_;
        remove(*node);
        node->stop_.disarm();
        return node;
    }

    /// \brief Queue a dequeued waiter's coroutine on the reactor's ready queue (never inline).
    static void wake(WaitNode& node) noexcept {
        assert(tl_scheduler.ready != nullptr && "sync primitives need a running reactor");
        schedule(node.waiter_);
    }

private:
    friend class WaitNode;
    void push_back(WaitNode& node) noexcept {
        node.queue_ = this;
        node.prev_ = tail_;
        node.next_ = nullptr;
        if (tail_ != nullptr) {
            tail_->next_ = &node;
        } else {
            head_ = &node;
        }
        tail_ = &node;
    }
    void remove(WaitNode& node) noexcept {
        if (node.prev_ != nullptr) {
            node.prev_->next_ = node.next_;
        } else {
            head_ = node.next_;
        }
        if (node.next_ != nullptr) {
            node.next_->prev_ = node.prev_;
        } else {
            tail_ = node.prev_;
        }
        node.prev_ = node.next_ = nullptr;
        node.queue_ = nullptr;
    }

    WaitNode* head_ = nullptr;
    WaitNode* tail_ = nullptr;
};

inline WaitNode::~WaitNode() {
    if (queue_ != nullptr) {
        queue_->remove(*this);
    }
}

inline bool WaitNode::wait_on(WaitQueue& queue, std::coroutine_handle<> waiter, StopToken token) noexcept {
    if (token.stop_requested()) {
        cancelled_ = true;
        return false;
    }
    waiter_ = waiter;
    queue.push_back(*this);
    stop_.arm(token, &on_stop, this); // cannot fire now: stop was not requested
    return true;
}

inline void WaitNode::on_stop(void* self) noexcept {
    auto* node = static_cast<WaitNode*>(self);
    if (node->queue_ != nullptr) {
        node->queue_->remove(*node);
        node->cancelled_ = true;
        WaitQueue::wake(*node);
    }
}

} // namespace detail

/// \brief An asynchronous mutual-exclusion lock for coroutines of one reactor.
///
/// Reactor-local: not thread-safe (no atomics); lock, unlock and every waiter must run on the
/// thread of the reactor that drives them. Fair: waiters are served in FIFO order and unlock()
/// hands the mutex directly to the first waiter (it stays locked, so nobody can barge in),
/// whose coroutine is resumed later through the ready queue, never inline. Waiters are
/// intrusive nodes in the awaiters: waiting never allocates.
///
/// Cancellation: a coroutine waiting in lock() whose stop token fires leaves the queue and
/// `co_await m.lock()` throws OperationCancelled. A lock that succeeds without waiting ignores
/// the token.
///
/// \code
/// Mutex::Guard guard = co_await mutex.lock();
/// // ... critical section, may co_await ...
/// \endcode
class Mutex {
public:
    /// \brief Move-only ownership of a locked Mutex (like std::unique_lock); unlocks on destruction.
    class [[nodiscard]] Guard {
    public:
        /// \brief A guard that owns nothing.
        Guard() noexcept = default;
        Guard(Guard&& other) noexcept : mutex_(std::exchange(other.mutex_, nullptr)) {}
        Guard& operator=(Guard&& other) noexcept {
            if (this != &other) {
                unlock();
                mutex_ = std::exchange(other.mutex_, nullptr);
            }
            return *this;
        }
        Guard(const Guard&) = delete;
        Guard& operator=(const Guard&) = delete;
        ~Guard() { unlock(); }

        /// \brief True if this guard holds the mutex.
        [[nodiscard]] bool owns_lock() const noexcept { return mutex_ != nullptr; }
        explicit operator bool() const noexcept { return owns_lock(); }
        /// \brief The mutex held, or null.
        [[nodiscard]] Mutex* mutex() const noexcept { return mutex_; }
        /// \brief Unlock early (no-op if nothing is held).
        void unlock() noexcept {
            if (mutex_ != nullptr) {
                std::exchange(mutex_, nullptr)->unlock();
            }
        }

    private:
        friend class Mutex;
        explicit Guard(Mutex& mutex) noexcept : mutex_(&mutex) {}
        Mutex* mutex_ = nullptr;
    };

    /// \brief Awaiter of lock(); yields a Guard. Lives in the awaiting frame as the wait node.
    class [[nodiscard]] LockAwaiter : private detail::WaitNode {
    public:
        explicit LockAwaiter(Mutex& mutex) noexcept : mutex_(mutex) {}
        LockAwaiter(const LockAwaiter&) = delete;
        LockAwaiter& operator=(const LockAwaiter&) = delete;
        ~LockAwaiter() = default;

        bool await_ready() noexcept {
            if (!mutex_.locked_) {
                mutex_.locked_ = true;
                return true;
            }
            return false;
        }
        template <class Promise>
        bool await_suspend(std::coroutine_handle<Promise> h) noexcept {
            return wait_on(mutex_.waiters_, h, detail::stop_token_of(h));
        }
        /// \throws OperationCancelled if the stop token fired while waiting.
        Guard await_resume() {
            if (cancelled_) {
                throw OperationCancelled{};
            }
            return Guard(mutex_);
        }

    private:
        Mutex& mutex_;
    };

    Mutex() noexcept = default;
    Mutex(const Mutex&) = delete;
    Mutex& operator=(const Mutex&) = delete;
    ~Mutex() { assert(!locked_ && "Mutex destroyed while locked"); }

    /// \brief `co_await m.lock()` waits (FIFO) until the mutex is handed over; yields a Guard.
    [[nodiscard]] LockAwaiter lock() noexcept { return LockAwaiter(*this); }

    /// \brief Lock if free, without waiting; an empty Guard if it is held (or handed over).
    [[nodiscard]] Guard try_lock() noexcept {
        if (locked_) {
            return Guard{};
        }
        locked_ = true;
        return Guard(*this);
    }

    /// \brief Release the mutex: hand it to the first waiter (queued to run), or free it.
    /// Prefer Guard, which calls this. Precondition: locked by the caller.
    void unlock() noexcept {
        assert(locked_ && "unlock of an unlocked Mutex");
        if (waiters_.empty()) {
            locked_ = false;
            return;
        }
        detail::WaitQueue::wake(*waiters_.pop_front()); // ownership passes, stays locked
    }

    /// \brief True while held (or handed to a waiter that has not run yet).
    [[nodiscard]] bool locked() const noexcept { return locked_; }

private:
    bool locked_ = false;
    detail::WaitQueue waiters_;
};

/// \brief A bounded multi-producer multi-consumer FIFO channel between coroutines of one reactor.
///
/// Reactor-local: not thread-safe (no atomics); every sender and receiver runs on the thread
/// of the reactor that drives them. The buffer is a ring of `capacity` slots allocated once
/// by the constructor; waiters are intrusive nodes in the awaiters, so sending and receiving
/// never allocate. Capacity 0 makes a rendezvous channel: each send waits for a receiver.
///
/// - `co_await ch.send(v)` waits while the channel is full; yields false if the channel is
///   (or gets) closed, in which case the value is dropped.
/// - `co_await ch.receive()` waits while it is empty; yields std::nullopt once the channel is
///   closed and drained.
/// - Values are delivered in send order; a sender waiting on a full channel is admitted when a
///   receiver frees a slot, in FIFO order; receivers are served in FIFO order too.
/// - Woken coroutines resume later through the ready queue, never inline.
/// - Cancellation: a waiting sender or receiver whose stop token fires leaves the queue and its
///   co_await throws OperationCancelled (a cancelled sender's value is dropped). Operations that
///   complete without waiting ignore the token.
///
/// T must be nothrow move-constructible (values move between awaiters and the ring while
/// other coroutines are being woken).
template <class T>
class Channel {
    static_assert(std::is_object_v<T> && !std::is_const_v<T>, "Channel<T> needs a mutable object type");
    static_assert(std::is_nothrow_move_constructible_v<T>, "Channel<T> needs a nothrow move constructor");

public:
    /// \brief Awaiter of send(); holds the value while waiting. Yields true once delivered.
    class [[nodiscard]] SendAwaiter : private detail::WaitNode {
    public:
        SendAwaiter(Channel& channel, T&& value) noexcept : channel_(channel), value_(std::move(value)) {}
        SendAwaiter(Channel& channel, const T& value) : channel_(channel), value_(value) {}
        SendAwaiter(const SendAwaiter&) = delete;
        SendAwaiter& operator=(const SendAwaiter&) = delete;
        ~SendAwaiter() = default;

        bool await_ready() noexcept {
            if (channel_.closed_) {
                return true; // ok_ stays false
            }
            ok_ = channel_.offer(value_);
            return ok_;
        }
        template <class Promise>
        bool await_suspend(std::coroutine_handle<Promise> h) noexcept {
            return wait_on(channel_.senders_, h, detail::stop_token_of(h));
        }
        /// \throws OperationCancelled if the stop token fired while waiting.
        bool await_resume() const {
            if (cancelled_) {
                throw OperationCancelled{};
            }
            return ok_;
        }

    private:
        friend class Channel;
        Channel& channel_;
        T value_;
        bool ok_ = false;
    };

    /// \brief Awaiter of receive(); yields the next value, or nullopt once closed and drained.
    class [[nodiscard]] ReceiveAwaiter : private detail::WaitNode {
    public:
        explicit ReceiveAwaiter(Channel& channel) noexcept : channel_(channel) {}
        ReceiveAwaiter(const ReceiveAwaiter&) = delete;
        ReceiveAwaiter& operator=(const ReceiveAwaiter&) = delete;
        ~ReceiveAwaiter() = default;

        bool await_ready() noexcept {
            result_ = channel_.try_receive();
            return result_.has_value() || channel_.closed_;
        }
        template <class Promise>
        bool await_suspend(std::coroutine_handle<Promise> h) noexcept {
            return wait_on(channel_.receivers_, h, detail::stop_token_of(h));
        }
        /// \throws OperationCancelled if the stop token fired while waiting.
        std::optional<T> await_resume() {
            if (cancelled_) {
                throw OperationCancelled{};
            }
            return std::move(result_);
        }

    private:
        friend class Channel;
        Channel& channel_;
        std::optional<T> result_;
    };

    /// \brief A channel buffering up to `capacity` values (0: rendezvous). Allocates the ring.
    explicit Channel(std::size_t capacity)
        : slots_(capacity != 0 ? std::allocator<T>{}.allocate(capacity) : nullptr), capacity_(capacity) {}
    Channel(const Channel&) = delete;
    Channel& operator=(const Channel&) = delete;
    ~Channel() {
        while (size_ != 0) {
            (void)pop_front();
        }
        if (slots_ != nullptr) {
            std::allocator<T>{}.deallocate(slots_, capacity_);
        }
    }

    /// \brief `co_await ch.send(std::move(v))`: wait for room; false if closed (value dropped).
    [[nodiscard]] SendAwaiter send(T&& value) noexcept { return SendAwaiter(*this, std::move(value)); }
    /// \brief Copying overload of send().
    [[nodiscard]] SendAwaiter send(const T& value) { return SendAwaiter(*this, value); }

    /// \brief `co_await ch.receive()`: the next value; nullopt once closed and drained.
    [[nodiscard]] ReceiveAwaiter receive() noexcept { return ReceiveAwaiter(*this); }

    /// \brief Send without waiting. False if closed or full; then `value` is left untouched.
    [[nodiscard]] bool try_send(T&& value) noexcept { return !closed_ && offer(value); }
    /// \brief Copying overload of try_send().
    [[nodiscard]] bool try_send(const T& value) {
        T copy(value);
        return try_send(std::move(copy));
    }

    /// \brief Receive without waiting; nullopt if nothing is available right now.
    [[nodiscard]] std::optional<T> try_receive() noexcept {
        if (size_ != 0) {
            std::optional<T> out(pop_front());
            if (!senders_.empty()) { // a slot was freed: admit the first waiting sender
                SendAwaiter& s = sender(senders_.pop_front());
                push_back(std::move(s.value_));
                s.ok_ = true;
                detail::WaitQueue::wake(s);
            }
            return out;
        }
        if (!senders_.empty()) { // rendezvous: take the value straight from the sender
            SendAwaiter& s = sender(senders_.pop_front());
            std::optional<T> out(std::move(s.value_));
            s.ok_ = true;
            detail::WaitQueue::wake(s);
            return out;
        }
        return std::nullopt;
    }

    /// \brief Close the channel: later sends fail, buffered values can still be received, and
    /// every waiting sender (yields false) and receiver (yields nullopt) is woken. Idempotent.
    void close() noexcept {
        closed_ = true;
        while (!receivers_.empty()) {
            detail::WaitQueue::wake(*receivers_.pop_front());
        }
        while (!senders_.empty()) {
            detail::WaitQueue::wake(*senders_.pop_front()); // ok_ stays false
        }
    }

    /// \brief Values buffered now (waiting senders not included).
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
    [[nodiscard]] bool closed() const noexcept { return closed_; }

private:
    static SendAwaiter& sender(detail::WaitNode* node) noexcept { return static_cast<SendAwaiter&>(*node); }
    static ReceiveAwaiter& receiver(detail::WaitNode* node) noexcept {
        return static_cast<ReceiveAwaiter&>(*node);
    }

    /// Deliver `value` to a waiting receiver or into the ring; moves from it only on success.
    /// Precondition: !closed_. Invariant: receivers wait only while the ring is empty.
    bool offer(T& value) noexcept {
        if (!receivers_.empty()) {
            ReceiveAwaiter& r = receiver(receivers_.pop_front());
            r.result_.emplace(std::move(value));
            detail::WaitQueue::wake(r);
            return true;
        }
        if (size_ < capacity_) {
            push_back(std::move(value));
            return true;
        }
        return false;
    }

    void push_back(T&& value) noexcept {
        std::size_t tail = head_ + size_;
        if (tail >= capacity_) {
            tail -= capacity_;
        }
        std::construct_at(slots_ + tail, std::move(value));
        ++size_;
    }
    T pop_front() noexcept {
        T* slot = slots_ + head_;
        T value(std::move(*slot));
        std::destroy_at(slot);
        if (++head_ == capacity_) {
            head_ = 0;
        }
        --size_;
        return value;
    }

    T* slots_;
    std::size_t capacity_;
    std::size_t head_ = 0;
    std::size_t size_ = 0;
    bool closed_ = false;
    detail::WaitQueue senders_;
    detail::WaitQueue receivers_;
};

} // namespace ringwork::runtime
