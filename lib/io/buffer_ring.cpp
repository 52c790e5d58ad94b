// SPDX-License-Identifier: MIT
// Provided-buffer ring and spare pool: the second of the two places allowed raw allocation.
#include "io/buffer_ring.hpp"

#include <sys/mman.h>

#include <cassert>
#include <cerrno>
#include <new>
#include <system_error>

namespace ringwork::io::detail {

BufferRing::BufferRing(io_uring* ring, unsigned count, unsigned size, std::uint16_t group)
    : BufferOwner(&release), uring_(ring), count_(count), size_(size), mask_(count - 1), group_(group) {
    if (count == 0 || (count & (count - 1)) != 0 || count > 32768) {
        throw std::system_error(EINVAL, std::generic_category(),
                                "ReactorOptions.buffer_count must be a power of two <= 32768");
    }
    ring_bytes_ = sizeof(io_uring_buf) * count;
    void* mapped = ::mmap(nullptr, ring_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mapped == MAP_FAILED) {
        throw std::system_error(errno, std::generic_category(), "mmap of the buffer ring");
    }
    ring_ = static_cast<io_uring_buf_ring*>(mapped);
    io_uring_buf_ring_init(ring_);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uint64_t>(ring_); // NOLINT: the ABI wants an address
    reg.ring_entries = count;
    reg.bgid = group;
    if (int rc = io_uring_register_buf_ring(uring_, &reg, 0); rc < 0) {
        ::munmap(ring_, ring_bytes_);
        throw std::system_error(-rc, std::generic_category(), "io_uring_register_buf_ring");
    }
    memory_ = static_cast<char*>(::operator new(std::size_t{count} * size, std::align_val_t{64}));
    for (unsigned id = 0; id < count; ++id) {
        io_uring_buf_ring_add(ring_, memory_ + std::size_t{id} * size, size, static_cast<unsigned short>(id),
                              static_cast<int>(mask_), static_cast<int>(id));
    }
    io_uring_buf_ring_advance(ring_, static_cast<int>(count));
}

BufferRing::~BufferRing() {
    io_uring_unregister_buf_ring(uring_, group_);
    ::munmap(ring_, ring_bytes_);
    ::operator delete(memory_, std::align_val_t{64});
}

BufferLease BufferRing::lease(std::uint16_t id, std::uint32_t len) noexcept {
    ++leased_;
    return BufferLease(this, memory_ + std::size_t{id} * size_, len, id);
}

void BufferRing::recycle(std::uint16_t id) noexcept {
    assert(leased_ > 0);
    --leased_;
    io_uring_buf_ring_add(ring_, memory_ + std::size_t{id} * size_, size_, id, static_cast<int>(mask_),
                          static_cast<int>(pending_));
    ++pending_;
}

void BufferRing::release(BufferOwner* self, char* /*base*/, std::uint16_t id) noexcept {
    static_cast<BufferRing*>(self)->recycle(id);
}

SparePool::~SparePool() { trim(); }

char* SparePool::take() {
    if (!free_.empty()) {
        char* b = free_.back();
        free_.pop_back();
        return b;
    }
    ++allocations_;
    // Every buffer ever made may come back at once: keep room so give_back never allocates.
    free_.reserve(static_cast<std::size_t>(allocations_));
    return static_cast<char*>(::operator new(size_));
}

void SparePool::give_back(char* buffer) noexcept {
    free_.push_back(buffer); // capacity reserved in take(): no allocation
}

void SparePool::release(BufferOwner* self, char* base, std::uint16_t /*id*/) noexcept {
    static_cast<SparePool*>(self)->give_back(base);
}

void SparePool::trim() noexcept {
    for (char* b : free_) {
        ::operator delete(b, size_);
    }
    free_.clear();
}

} // namespace ringwork::io::detail
