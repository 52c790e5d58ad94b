// SPDX-License-Identifier: MIT
// ThreadPool: a few threads for blocking or CPU-heavy work handed off by offload().
#pragma once

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>
#include <vector>

namespace ringwork::runtime {

/// \brief Intrusive work item for a ThreadPool (lives in the submitting coroutine's frame).
struct PoolWork {
    using Run = void (*)(PoolWork* self) noexcept;
    explicit PoolWork(Run run) noexcept : run_(run) {}
    Run run_;
    PoolWork* next_ = nullptr;
};

/// \brief Fixed-size pool of threads running PoolWork items in FIFO order. Thread-safe.
///
/// Not on the request path: a mutex and a condition variable are fine here.
class ThreadPool {
public:
    explicit ThreadPool(std::size_t threads);
    ~ThreadPool(); ///< finishes queued work, then joins
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    void post(PoolWork* work) noexcept;
    [[nodiscard]] std::size_t size() const noexcept { return threads_.size(); }

    /// \brief The process-wide pool used by offload() (2 threads, started on first use).
    static ThreadPool& shared();

private:
    void worker() noexcept;
    std::mutex mutex_;
    std::condition_variable cv_;
    PoolWork* head_ = nullptr;
    PoolWork* tail_ = nullptr;
    bool stopping_ = false;
    std::vector<std::thread> threads_;
};

} // namespace ringwork::runtime
