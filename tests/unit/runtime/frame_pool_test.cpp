// SPDX-License-Identifier: MIT
// FramePool: steady-state reuse (zero heap allocations), trim, poisoning of free blocks.
#include <ringwork/io/reactor.hpp>
#include <ringwork/runtime/frame_pool.hpp>
#include <ringwork/runtime/task.hpp>

#include <doctest/doctest.h>

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#ifdef TEST_ASAN
#include <sanitizer/asan_interface.h>
#endif

using ringwork::runtime::FramePool;
using ringwork::runtime::Task;

namespace {

Task<int> leaf(int x) { co_return x * 2; }
Task<int> middle(int x) { co_return co_await leaf(x) + 1; }

Task<long> many(int n) {
    long sum = 0;
    for (int i = 0; i < n; ++i) {
        sum += co_await middle(i);
    }
    co_return sum;
}

} // namespace

TEST_SUITE("frame_pool") {
    TEST_CASE("100k awaited tasks do zero heap allocations after warm-up") {
        ringwork::io::Reactor reactor;
        CHECK(reactor.run_until_complete(many(100)) > 0); // warm-up
        const auto before = FramePool::stats();
        const long sum = reactor.run_until_complete(many(100'000));
        const auto after = FramePool::stats();
        CHECK(sum == 100'000L * 99'999L + 100'000L);
        MESSAGE("hits " << after.hits - before.hits << ", misses " << after.misses - before.misses);
#if RINGWORK_TEST_FRAME_POOL_DISABLED
        CHECK(after.hits == before.hits); // -Dframe_pool=disabled: everything goes to the heap
#else
        // The loop's own frame and the root runner may be new classes; the 200k inner frames not.
        CHECK(after.misses - before.misses <= 2);
        CHECK(after.hits - before.hits >= 200'000);
#endif
    }

#if !RINGWORK_TEST_FRAME_POOL_DISABLED
    TEST_CASE("free blocks are reused by size class and trim() gives them back") {
        FramePool::trim();
        const auto s0 = FramePool::stats();
        void* a = FramePool::allocate(100); // class 128
        FramePool::deallocate(a, 100);
        const auto s1 = FramePool::stats();
        CHECK(s1.blocks_held == s0.blocks_held + 1);
        CHECK(s1.bytes_held == s0.bytes_held + 128);
        void* b = FramePool::allocate(120); // same class: same block
        CHECK(b == a);
        CHECK(FramePool::stats().hits == s1.hits + 1);
        FramePool::deallocate(b, 120);
        CHECK(FramePool::trim() >= 128);
        CHECK(FramePool::stats().bytes_held == 0);
        CHECK(FramePool::stats().blocks_held == 0);
    }

    TEST_CASE("a zero-byte request is served as the smallest class and comes back to it") {
        FramePool::trim();
        void* a = FramePool::allocate(0);
        REQUIRE(a != nullptr);
        FramePool::deallocate(a, 0);
        void* b = FramePool::allocate(1); // same class: the block just freed
#ifndef RINGWORK_TEST_FRAME_POOL_DISABLED
        CHECK(b == a);
#endif
        FramePool::deallocate(b, 1);
    }

    TEST_CASE("frames above the pooled size go to the heap and are counted") {
        const auto s0 = FramePool::stats();
        void* big = FramePool::allocate(FramePool::kMaxPooledSize + 1);
        FramePool::deallocate(big, FramePool::kMaxPooledSize + 1);
        const auto s1 = FramePool::stats();
        CHECK(s1.oversize == s0.oversize + 1);
        CHECK(s1.bytes_held == s0.bytes_held);
    }

#endif

#if defined(TEST_ASAN) && !RINGWORK_TEST_FRAME_POOL_DISABLED
    TEST_CASE("a free block is poisoned under AddressSanitizer") {
        void* p = FramePool::allocate(200);
        CHECK_FALSE(__asan_address_is_poisoned(p));
        FramePool::deallocate(p, 200);
        CHECK(__asan_address_is_poisoned(p));
        CHECK(__asan_address_is_poisoned(static_cast<char*>(p) + 100));
        FramePool::trim();
    }
#endif
}
