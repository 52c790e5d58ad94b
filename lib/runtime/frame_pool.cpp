// SPDX-License-Identifier: MIT
// FramePool implementation: thread-local free lists with ASan poisoning of free blocks.
#include <ringwork/runtime/frame_pool.hpp>

#include "ringwork_config.h"

#include <array>
#include <new>

#if defined(__SANITIZE_ADDRESS__)
#define RINGWORK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RINGWORK_ASAN 1
#endif
#endif

#ifdef RINGWORK_ASAN
#include <sanitizer/asan_interface.h>
#define RINGWORK_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define RINGWORK_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define RINGWORK_POISON(p, n) ((void)(p), (void)(n))
#define RINGWORK_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace ringwork::runtime {
namespace {

constexpr std::size_t kClasses = FramePool::kMaxPooledSize / FramePool::kGranularity;

struct FreeBlock {
    FreeBlock* next;
};

struct Pool {
    std::array<FreeBlock*, kClasses> heads{};
    FramePoolStats stats{};

    Pool() = default;
    Pool(const Pool&) = delete;
    Pool& operator=(const Pool&) = delete;
    ~Pool();
    std::size_t release_all() noexcept;
};

// Set once the thread's pool is destroyed: frames freed later (by other thread_local
// destructors) go straight to the heap. A plain bool stays valid after `tl_pool` is gone.
thread_local bool tl_pool_dead = false;
thread_local Pool tl_pool;

constexpr std::size_t class_of(std::size_t size) noexcept {
    return (size + FramePool::kGranularity - 1) / FramePool::kGranularity - 1;
}
constexpr std::size_t class_size(std::size_t cls) noexcept {
    return (cls + 1) * FramePool::kGranularity;
}

std::size_t Pool::release_all() noexcept {
    std::size_t freed = 0;
    for (std::size_t cls = 0; cls < kClasses; ++cls) {
        FreeBlock* block = heads[cls];
        while (block != nullptr) {
            RINGWORK_UNPOISON(block, class_size(cls));
            FreeBlock* next = block->next;
            ::operator delete(block, class_size(cls));
            freed += class_size(cls);
            block = next;
        }
        heads[cls] = nullptr;
    }
    stats.bytes_held = 0;
    stats.blocks_held = 0;
    return freed;
}

Pool::~Pool() {
    release_all();
    tl_pool_dead = true;
}

} // namespace

void* FramePool::allocate(std::size_t size) {
    size = size == 0 ? 1 : size; // class_of(0) would wrap around
#if RINGWORK_FRAME_POOL
    if (size <= kMaxPooledSize && tl_pool_dead) {
        // The pool is gone (thread exit): allocate the class size, which deallocate() frees.
        return ::operator new(class_size(class_of(size)));
    }
    if (size <= kMaxPooledSize && !tl_pool_dead) {
        Pool& pool = tl_pool;
        const std::size_t cls = class_of(size);
        const std::size_t bytes = class_size(cls);
        pool.stats.bytes_in_use += bytes;
        if (FreeBlock* block = pool.heads[cls]; block != nullptr) {
            RINGWORK_UNPOISON(block, bytes);
            pool.heads[cls] = block->next;
            ++pool.stats.hits;
            --pool.stats.blocks_held;
            pool.stats.bytes_held -= bytes;
            return block;
        }
        ++pool.stats.misses;
        return ::operator new(bytes);
    }
    if (!tl_pool_dead) {
        ++tl_pool.stats.misses;
        ++tl_pool.stats.oversize;
    }
#endif
    return ::operator new(size);
}

void FramePool::deallocate(void* block, std::size_t size) noexcept {
    size = size == 0 ? 1 : size;
#if RINGWORK_FRAME_POOL
    if (!tl_pool_dead) {
        Pool& pool = tl_pool;
        ++pool.stats.frees;
        if (size <= kMaxPooledSize) {
            const std::size_t cls = class_of(size);
            const std::size_t bytes = class_size(cls);
            // A block freed on another thread than its allocator still counts as in use there;
            // clamp so the counter never wraps on this thread.
            pool.stats.bytes_in_use -= pool.stats.bytes_in_use >= bytes ? bytes : pool.stats.bytes_in_use;
            auto* free_block = static_cast<FreeBlock*>(block);
            free_block->next = pool.heads[cls];
            pool.heads[cls] = free_block;
            ++pool.stats.blocks_held;
            pool.stats.bytes_held += bytes;
            RINGWORK_POISON(block, bytes);
            return;
        }
    } else if (size <= kMaxPooledSize) {
        ::operator delete(block, class_size(class_of(size)));
        return;
    }
#endif
    ::operator delete(block, size);
}

FramePoolStats FramePool::stats() noexcept {
    return tl_pool_dead ? FramePoolStats{} : tl_pool.stats;
}

std::size_t FramePool::trim() noexcept {
    return tl_pool_dead ? 0 : tl_pool.release_all();
}

} // namespace ringwork::runtime
