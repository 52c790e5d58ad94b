// SPDX-License-Identifier: MIT
// FramePool: per-thread size-class free lists that hold coroutine frames.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ringwork::runtime {

/// \brief Counters of the calling thread's frame pool (all monotonic except the two `*_held`).
struct FramePoolStats {
    std::uint64_t hits = 0;        ///< allocations served from a free list
    std::uint64_t misses = 0;      ///< allocations that went to the heap (cold class or oversize)
    std::uint64_t oversize = 0;    ///< of the misses: frames above kMaxPooledSize (never pooled)
    std::uint64_t frees = 0;       ///< deallocations (pooled or not)
    std::uint64_t bytes_held = 0;  ///< bytes sitting on free lists now (reusable, not in use)
    std::uint64_t blocks_held = 0; ///< blocks sitting on free lists now
    std::uint64_t bytes_in_use = 0;///< pooled-class bytes handed out and not yet returned
};

/// \brief Coroutine frame allocator used by every ringwork promise type.
///
/// Thread affinity: each thread has its own pool; no locks. A frame freed on another thread than
/// the one that allocated it simply joins the freeing thread's pool (memory migrates, nothing
/// breaks). Free blocks are poisoned under AddressSanitizer, so a completion that writes into a
/// recycled frame is reported. Built with `-Dframe_pool=disabled`, every call goes to the heap.
class FramePool {
public:
    /// Frames up to this size are pooled in 64-byte size classes; larger ones use the heap.
    static constexpr std::size_t kMaxPooledSize = 4096;
    static constexpr std::size_t kGranularity = 64;

    [[nodiscard]] static void* allocate(std::size_t size);
    static void deallocate(void* block, std::size_t size) noexcept;
    /// \brief The calling thread's counters.
    [[nodiscard]] static FramePoolStats stats() noexcept;
    /// \brief Give every free block of the calling thread back to the heap; returns bytes freed.
    static std::size_t trim() noexcept;
};

} // namespace ringwork::runtime
