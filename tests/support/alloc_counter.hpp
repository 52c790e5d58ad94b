// SPDX-License-Identifier: MIT
// Counting global operator new for tests that prove a path allocates nothing (not under ASan or
// TSan). Include from exactly one translation unit of a test program (replacements may not be
// inline).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>

// ASan and TSan own operator new (a replacement clashes with their runtime; under TSan the test
// does not even link): there the counter is compiled out and TEST_NO_HEAP_COUNTER is defined, and
// the allocation checks say they were skipped (MESSAGE) instead of running.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TEST_NO_HEAP_COUNTER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TEST_NO_HEAP_COUNTER 1
#endif
#endif

#ifndef TEST_NO_HEAP_COUNTER
namespace test {
/// Every global operator new of this program, counted (not under a sanitizer: see above).
inline std::atomic<std::size_t> g_heap_allocations{0};
} // namespace test

// noinline: once inlined, g++ pairs the free() with the caller's new (-Wmismatched-new-delete).
[[gnu::noinline]] void* operator new(std::size_t size) {
    test::g_heap_allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(size != 0 ? size : 1)) {
        return p;
    }
    throw std::bad_alloc{};
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#endif
