// SPDX-License-Identifier: MIT
// ByteBuffer (growable bytes from a per-reactor pool) and Arena (per-request bump allocator).
#pragma once

#include <ringwork/runtime/counter.hpp>

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

namespace ringwork::http {

/// \brief Growable byte buffer whose storage is reused through a BufferPool.
/// Reactor thread only. Growing past the capacity allocates (counted by the pool's stats).
class ByteBuffer {
public:
    ByteBuffer() noexcept = default;
    explicit ByteBuffer(std::size_t capacity) : data_(std::make_unique<char[]>(capacity)), capacity_(capacity) {}
    // A moved-from buffer is empty with no capacity (the defaults would keep the capacity
    // with null storage, which a pool would then hand out).
    ByteBuffer(ByteBuffer&& other) noexcept
        : data_(std::move(other.data_)), size_(std::exchange(other.size_, 0)),
          capacity_(std::exchange(other.capacity_, 0)), grows_(std::exchange(other.grows_, 0)) {}
    ByteBuffer& operator=(ByteBuffer&& other) noexcept {
        data_ = std::move(other.data_);
        size_ = std::exchange(other.size_, 0);
        capacity_ = std::exchange(other.capacity_, 0);
        grows_ = std::exchange(other.grows_, 0);
        return *this;
    }
    ByteBuffer(const ByteBuffer&) = delete;
    ByteBuffer& operator=(const ByteBuffer&) = delete;

    [[nodiscard]] char* data() noexcept { return data_.get(); }
    [[nodiscard]] const char* data() const noexcept { return data_.get(); }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
    [[nodiscard]] std::string_view view() const noexcept { return {data_.get(), size_}; }
    void clear() noexcept { size_ = 0; }
    void resize(std::size_t n) {
        reserve(n);
        size_ = n;
    }
    void reserve(std::size_t n) {
        if (n > capacity_) {
            grow(n);
        }
    }
    /// Room for `n` more bytes at the end; commit them with commit().
    char* prepare(std::size_t n) {
        reserve(size_ + n);
        return data_.get() + size_;
    }
    void commit(std::size_t n) noexcept {
        assert(size_ + n <= capacity_);
        size_ += n;
    }
    void append(std::string_view s) {
        if (s.empty()) {
            return; // memcpy from a null view is undefined
        }
        std::memcpy(prepare(s.size()), s.data(), s.size());
        size_ += s.size();
    }
    void append(char c) {
        *prepare(1) = c;
        ++size_;
    }
    /// Drop the first `n` bytes (moves the rest to the front).
    void consume_front(std::size_t n) noexcept {
        assert(n <= size_);
        std::memmove(data_.get(), data_.get() + n, size_ - n);
        size_ -= n;
    }
    /// Number of times this buffer had to reallocate (for the allocation counters).
    [[nodiscard]] std::uint32_t grows() const noexcept { return grows_; }

    // fmt::format_to support: output iterator that appends.
    struct Inserter {
        using iterator_category = std::output_iterator_tag;
        using value_type = void;
        using difference_type = std::ptrdiff_t;
        using pointer = void;
        using reference = void;
        ByteBuffer* b;
        Inserter& operator=(char c) {
            b->append(c);
            return *this;
        }
        Inserter& operator*() noexcept { return *this; }
        Inserter& operator++() noexcept { return *this; }
        Inserter operator++(int) noexcept { return *this; }
    };
    Inserter back_inserter() noexcept { return Inserter{this}; }

private:
    void grow(std::size_t n) {
        std::size_t cap = capacity_ == 0 ? 256 : capacity_;
        while (cap < n) {
            cap *= 2;
        }
        auto bigger = std::make_unique<char[]>(cap);
        if (size_ != 0) {
            std::memcpy(bigger.get(), data_.get(), size_);
        }
        data_ = std::move(bigger);
        capacity_ = cap;
        ++grows_;
    }
    std::unique_ptr<char[]> data_;
    std::size_t size_ = 0;
    std::size_t capacity_ = 0;
    std::uint32_t grows_ = 0;
};

/// \brief Per-reactor free list of ByteBuffers of a default capacity.
class BufferPool {
public:
    /// Written by the owning reactor, readable from any thread (runtime::Counter).
    struct Stats {
        runtime::Counter hits;
        runtime::Counter misses; ///< a new buffer had to be allocated
        runtime::Counter held;   ///< buffers idle in the pool
        runtime::Counter bytes_held;
    };
    explicit BufferPool(std::size_t capacity) : capacity_(capacity) {}
    ByteBuffer take() {
        if (!free_.empty()) {
            ByteBuffer b = std::move(free_.back());
            free_.pop_back();
            low_ = std::min(low_, free_.size());
            ++stats_.hits;
            --stats_.held;
            stats_.bytes_held -= b.capacity();
            b.clear();
            return b;
        }
        low_ = 0;
        ++stats_.misses;
        return ByteBuffer(capacity_);
    }
    /// Return a buffer; oversized ones (grown for one big message) are freed, not kept.
    /// Whether the pool kept it (an empty buffer, or one grown past 16 times the pool's size,
    /// goes back to the allocator).
    bool give(ByteBuffer&& b) {
        if (b.capacity() == 0 || b.capacity() > capacity_ * 16) {
            b = ByteBuffer();
            return false;
        }
        stats_.bytes_held += b.capacity();
        ++stats_.held;
        free_.push_back(std::move(b));
        return true;
    }
    /// Free the idle buffers that grew past the pool's capacity (for a large batch of
    /// responses, a long request head...). Called on every worker-reaper tick: a pool keeps
    /// what its traffic needs by the tick, not the largest size each buffer ever reached (a
    /// ratchet that made RSS creep under a steady mixed load: docs/reliability.md, Soak).
    void trim_grown() noexcept {
        std::size_t kept = 0;
        for (std::size_t i = 0; i < free_.size(); ++i) {
            if (free_[i].capacity() > capacity_) {
                stats_.bytes_held -= free_[i].capacity();
                --stats_.held;
                free_[i] = ByteBuffer();
            } else {
                if (kept != i) {
                    free_[kept] = std::move(free_[i]);
                }
                ++kept;
            }
        }
        free_.resize(kept);
    }
    /// Free every idle buffer but `keep` of the pool's own size (grown ones go first).
    void trim(std::size_t keep = 0) noexcept {
        trim_grown();
        while (free_.size() > keep) {
            stats_.bytes_held -= free_.back().capacity();
            --stats_.held;
            free_.pop_back();
        }
        if (free_.empty()) {
            free_.shrink_to_fit();
        }
    }
    /// Have at least `idle` buffers idle, allocating the difference now (counted as misses), and
    /// room on the free list for `out` more that are taken: their give() will not allocate.
    void ensure_idle(std::size_t idle, std::size_t out) {
        const std::size_t slots = std::max(idle, free_.size()) + out;
        if (slots > free_.capacity()) {
            free_.reserve(std::max(slots, 2 * free_.capacity())); // geometric, as push_back grows
        }
        while (free_.size() < idle) {
            ++stats_.misses;
            stats_.bytes_held += capacity_;
            ++stats_.held;
            free_.emplace_back(capacity_);
        }
    }
    /// Buffers idle in the pool.
    [[nodiscard]] std::size_t idle() const noexcept { return free_.size(); }
    /// How many of the idle buffers were taken since the last call (the idle count's low-water
    /// mark): what the traffic of that interval used at once beyond the buffers out now. A new
    /// interval begins. trim(take_used()) gives back what the interval did not use.
    std::size_t take_used() noexcept {
        const std::size_t idle = free_.size();
        return idle - std::min(std::exchange(low_, idle), idle);
    }
    [[nodiscard]] const Stats& stats() const noexcept { return stats_; }
    [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

private:
    std::size_t capacity_;
    std::vector<ByteBuffer> free_;
    std::size_t low_ = 0; ///< the fewest idle buffers since take_used()
    Stats stats_;
};

/// \brief Bump allocator for one request's copied bytes (header values, a rebased head).
/// reset() keeps the first block; overflow blocks are freed.
class Arena {
public:
    explicit Arena(std::size_t block = 4096) : block_size_(block) {}
    char* allocate(std::size_t n) {
        if (used_ + n > current_size()) {
            return allocate_slow(n);
        }
        char* p = current_data() + used_;
        used_ += n;
        return p;
    }
    std::string_view copy(std::string_view s) {
        if (s.empty()) {
            return {};
        }
        char* p = allocate(s.size());
        std::memcpy(p, s.data(), s.size());
        return {p, s.size()};
    }
    void reset() noexcept {
        overflow_.clear();
        used_ = 0;
    }
    [[nodiscard]] std::uint64_t overflow_allocations() const noexcept { return overflow_count_; }

private:
    char* current_data() noexcept {
        if (!overflow_.empty()) {
            return overflow_.back().data.get();
        }
        if (!first_) {
            first_ = std::make_unique<char[]>(block_size_);
        }
        return first_.get();
    }
    [[nodiscard]] std::size_t current_size() const noexcept {
        return overflow_.empty() ? (first_ ? block_size_ : 0) : overflow_.back().size;
    }
    char* allocate_slow(std::size_t n) {
        if (!first_) {
            // The first block is made at the first allocation, whatever its size: made later,
            // behind an overflow block, it would never be current and the overflow block's
            // bytes would be handed out twice.
            first_ = std::make_unique<char[]>(block_size_);
            if (n <= block_size_) {
                used_ = n;
                return first_.get();
            }
        }
        const std::size_t size = n > block_size_ ? n : block_size_;
        overflow_.push_back(Block{std::make_unique<char[]>(size), size});
        ++overflow_count_;
        used_ = n;
        return overflow_.back().data.get();
    }
    struct Block {
        std::unique_ptr<char[]> data;
        std::size_t size;
    };
    std::size_t block_size_;
    std::unique_ptr<char[]> first_;
    std::vector<Block> overflow_;
    std::size_t used_ = 0;
    std::uint64_t overflow_count_ = 0;
};

} // namespace ringwork::http
