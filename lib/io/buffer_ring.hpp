// SPDX-License-Identifier: MIT
// Provided-buffer ring (liburing 2.3: mmap + register by hand) and the spare-buffer pool.
#pragma once

#include <ringwork/io/buffer.hpp>

#include <liburing.h>

#include <cstdint>
#include <vector>

namespace ringwork::io::detail {

/// \brief One buffer group registered with the ring; buffers go back when their lease ends.
///
/// Returns are batched: recycle() writes the ring entry and flush() publishes them all with one
/// tail store just before the loop submits. We avoid io_uring_buf_ring_cq_advance (2.3): it ties
/// the buffer count to the CQE count, and our leases outlive their CQEs.
class BufferRing final : public BufferOwner {
public:
    /// Throws std::system_error when registration fails (the caller falls back).
    BufferRing(io_uring* ring, unsigned count, unsigned size, std::uint16_t group);
    ~BufferRing();
    BufferRing(const BufferRing&) = delete;
    BufferRing& operator=(const BufferRing&) = delete;

    [[nodiscard]] std::uint16_t group() const noexcept { return group_; }
    [[nodiscard]] unsigned buffer_size() const noexcept { return size_; }
    [[nodiscard]] unsigned count() const noexcept { return count_; }
    /// Buffers the kernel can still pick (published or about to be).
    [[nodiscard]] unsigned available() const noexcept { return count_ - leased_; }
    [[nodiscard]] unsigned leased() const noexcept { return leased_; }

    /// A completion picked buffer `id` holding `len` bytes: lend it out.
    BufferLease lease(std::uint16_t id, std::uint32_t len) noexcept;
    /// Publish recycled buffers to the kernel (one store of the tail).
    void flush() noexcept {
        if (pending_ != 0) {
            io_uring_buf_ring_advance(ring_, static_cast<int>(pending_));
            pending_ = 0;
        }
    }

private:
    static void release(BufferOwner* self, char* base, std::uint16_t id) noexcept;
    void recycle(std::uint16_t id) noexcept;

    io_uring* uring_;
    io_uring_buf_ring* ring_ = nullptr;
    char* memory_ = nullptr;
    std::size_t ring_bytes_ = 0;
    unsigned count_;
    unsigned size_;
    unsigned mask_;
    unsigned pending_ = 0;
    unsigned leased_ = 0;
    std::uint16_t group_;
};

/// \brief Heap buffers for recvs that cannot use the ring (no buffer ring, or -ENOBUFS).
class SparePool final : public BufferOwner {
public:
    explicit SparePool(unsigned size) noexcept : BufferOwner(&release), size_(size) {}
    ~SparePool();
    SparePool(const SparePool&) = delete;
    SparePool& operator=(const SparePool&) = delete;

    [[nodiscard]] unsigned buffer_size() const noexcept { return size_; }
    /// A buffer to receive into (taken from the free list, else allocated: counted).
    char* take();
    /// Give back a buffer that never got leased (the recv failed).
    void give_back(char* buffer) noexcept;
    BufferLease lease(char* buffer, std::uint32_t len) noexcept { return BufferLease(this, buffer, len, 0); }
    [[nodiscard]] std::uint64_t allocations() const noexcept { return allocations_; }
    [[nodiscard]] std::size_t idle() const noexcept { return free_.size(); }
    /// Free idle buffers (keeps none).
    void trim() noexcept;

private:
    static void release(BufferOwner* self, char* base, std::uint16_t id) noexcept;
    unsigned size_;
    std::vector<char*> free_;
    std::uint64_t allocations_ = 0;
};

} // namespace ringwork::io::detail
