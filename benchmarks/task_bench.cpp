// SPDX-License-Identifier: MIT
// The runtime's own costs, one thread: a co_await of a child Task (pooled frame, start,
// symmetric transfer back, destroy), the frame pool against the heap for one block, a chain of
// nested awaits, and a yield through the reactor's ready queue. ns per operation, heap
// allocations (global operator new) and frame-pool misses per operation.
#include <ringwork/io/reactor.hpp>
#include <ringwork/runtime/frame_pool.hpp>
#include <ringwork/runtime/scheduler.hpp>
#include <ringwork/runtime/task.hpp>

#include "micro_bench.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <vector>

using ringwork::io::sync_wait;
using ringwork::runtime::FramePool;
using ringwork::runtime::Task;

namespace {

using bench::do_not_optimize;
using bench::Timing;

template <class Batch>
Timing measure(Batch batch, std::size_t per_batch, std::chrono::milliseconds budget) {
    return bench::measure(batch, per_batch, budget, 20);
}

void report(const char* name, const Timing& t) {
    std::printf("%-58s %8.2f ns (best %8.2f)  %6.3f allocs  %6.3f pool misses\n", name, t.median, t.best,
                t.allocations, t.pool_misses);
}

[[gnu::noinline]] Task<int> leaf(int v) { co_return v + 1; }

Task<long> await_leaves(int n) {
    long sum = 0;
    for (int i = 0; i < n; ++i) {
        sum += co_await leaf(i);
    }
    co_return sum;
}

Task<int> chain(int depth) {
    if (depth == 0) {
        co_return 1;
    }
    co_return 1 + co_await chain(depth - 1);
}

Task<long> await_chains(int n, int depth) {
    long sum = 0;
    for (int i = 0; i < n; ++i) {
        sum += co_await chain(depth);
    }
    co_return sum;
}

Task<int> yields(int n) {
    for (int i = 0; i < n; ++i) {
        co_await ringwork::runtime::yield();
    }
    co_return n;
}

} // namespace

int main(int argc, char** argv) {
    const std::chrono::milliseconds budget{argc > 1 ? std::atoi(argv[1]) : 1000};
    std::printf("ringwork runtime micro-benchmarks (one thread; %lld ms per line)\n",
                static_cast<long long>(budget.count()));
    ringwork::io::Reactor reactor;
    constexpr int kBatch = 10000;

    // Each line's batch runs inside one root coroutine on a reactor: the root's own frame and the
    // reactor's pass are amortised over kBatch operations.
    report("co_await of a child Task<int> (pooled frame)", measure([&] {
        const long s = reactor.run_until_complete(await_leaves(kBatch));
        do_not_optimize(s);
    }, kBatch, budget));

    report("co_await of a chain of 5 nested Tasks (per Task)", measure([&] {
        const long s = reactor.run_until_complete(await_chains(kBatch / 5, 4));
        do_not_optimize(s);
    }, kBatch, budget)); // 2,000 chains x 5 frames

    report("runtime::yield() through the ready queue", measure([&] {
        const int s = reactor.run_until_complete(yields(kBatch));
        do_not_optimize(s);
    }, kBatch, budget));

    // The allocator alone: a frame-sized block from the pool and from the heap.
    for (const std::size_t size : {std::size_t{128}, std::size_t{1024}}) {
        char name[96];
        std::snprintf(name, sizeof name, "FramePool::allocate + deallocate, %zu B", size);
        report(name, measure([&] {
            for (int i = 0; i < kBatch; ++i) {
                void* p = FramePool::allocate(size);
                do_not_optimize(p);
                FramePool::deallocate(p, size);
            }
        }, kBatch, budget));
        std::snprintf(name, sizeof name, "::operator new + delete (glibc malloc), %zu B", size);
        report(name, measure([&] {
            for (int i = 0; i < kBatch; ++i) {
                void* p = ::operator new(size);
                do_not_optimize(p);
                ::operator delete(p, size);
            }
        }, kBatch, budget));
    }
    return 0;
}
