// SPDX-License-Identifier: MIT
// Shared by the micro-benchmarks (json_bench, task_bench): timing by slices with a median, and
// the heap-allocation count of tests/support/alloc_counter.hpp. Include from the benchmark's
// only translation unit (the counter replaces the global operator new).
#pragma once

#include "alloc_counter.hpp"

#include <ringwork/runtime/frame_pool.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace bench {

/// Keeps the compiler from proving `value` unused.
template <typename T>
inline void do_not_optimize(const T& value) {
    asm volatile("" : : "r"(&value) : "memory");
}

using Clock = std::chrono::steady_clock;

struct Timing {
    double median = 0; ///< ns per operation, median of the slices
    double best = 0;
    double allocations = -1; ///< global operator new calls per operation (-1: not counted)
    double pool_misses = 0;  ///< this thread's frame-pool allocations that went to the heap, per operation
};

inline std::size_t heap_allocations() {
#ifdef TEST_NO_HEAP_COUNTER
    return 0;
#else
    return test::g_heap_allocations.load(std::memory_order_relaxed);
#endif
}

/// Runs `batch` (which performs `per_batch` operations) `warmup` times, then for about `budget`
/// in 20 ms slices; the median slice resists noise.
template <class Batch>
Timing measure(Batch batch, std::size_t per_batch, std::chrono::milliseconds budget, int warmup) {
    for (int i = 0; i < warmup; ++i) {
        batch();
    }
    constexpr std::chrono::milliseconds kSlice{20};
    const std::size_t slices = std::max<std::size_t>(1, static_cast<std::size_t>(budget / kSlice));
    std::vector<double> per_slice;
    per_slice.reserve(slices);
    std::size_t total_ops = 0;
    [[maybe_unused]] const std::size_t heap_before = heap_allocations(); // unused under ASan
    const std::uint64_t misses_before = ringwork::runtime::FramePool::stats().misses;
    for (std::size_t slice = 0; slice < slices; ++slice) {
        std::size_t ops = 0;
        const Clock::time_point start = Clock::now();
        Clock::time_point now = start;
        while (now - start < kSlice) {
            batch();
            ops += per_batch;
            now = Clock::now();
        }
        per_slice.push_back(std::chrono::duration<double, std::nano>(now - start).count() /
                            static_cast<double>(ops));
        total_ops += ops;
    }
    Timing t;
#ifndef TEST_NO_HEAP_COUNTER
    t.allocations = static_cast<double>(heap_allocations() - heap_before) / static_cast<double>(total_ops);
#endif
    t.pool_misses = static_cast<double>(ringwork::runtime::FramePool::stats().misses - misses_before) /
                    static_cast<double>(total_ops);
    std::sort(per_slice.begin(), per_slice.end());
    t.median = per_slice[per_slice.size() / 2];
    t.best = per_slice.front();
    return t;
}

} // namespace bench
