// SPDX-License-Identifier: MIT
// ThreadPool implementation: mutex + condition variable FIFO of intrusive work items.
#include <ringwork/runtime/thread_pool.hpp>

namespace ringwork::runtime {

ThreadPool::ThreadPool(std::size_t threads) {
    threads_.reserve(threads);
    for (std::size_t i = 0; i < threads; ++i) {
        threads_.emplace_back([this] { worker(); });
    }
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    cv_.notify_all();
    for (std::thread& t : threads_) {
        t.join();
    }
}

void ThreadPool::post(PoolWork* work) noexcept {
    {
        std::lock_guard lock(mutex_);
        work->next_ = nullptr;
        if (tail_ != nullptr) {
            tail_->next_ = work;
        } else {
            head_ = work;
        }
        tail_ = work;
    }
    cv_.notify_one();
}

void ThreadPool::worker() noexcept {
    for (;;) {
        PoolWork* work = nullptr;
        {
            std::unique_lock lock(mutex_);
            cv_.wait(lock, [this] { return head_ != nullptr || stopping_; });
            if (head_ == nullptr) {
                return;
            }
            work = head_;
            head_ = work->next_;
            if (head_ == nullptr) {
                tail_ = nullptr;
            }
        }
        work->run_(work);
    }
}

ThreadPool& ThreadPool::shared() {
    static ThreadPool pool(2);
    return pool;
}

} // namespace ringwork::runtime
