// SPDX-License-Identifier: MIT
// BufferLease: RAII ownership of a received buffer (provided-ring buffer or spare buffer).
#pragma once

#include <cstdint>
#include <string_view>
#include <utility>

namespace ringwork::io {

namespace detail {
/// Where a leased buffer goes back to (the reactor's buffer ring or its spare pool).
struct BufferOwner {
    using Release = void (*)(BufferOwner* self, char* base, std::uint16_t id) noexcept;
    explicit BufferOwner(Release release) noexcept : release_(release) {}
    Release release_;
};
} // namespace detail

/// \brief Bytes received from a socket, lent by the reactor until release() or destruction.
///
/// Zero-copy: the bytes live in the reactor's provided buffer ring (or, on the fallback path,
/// in a spare buffer). Views into data() are valid until the lease is released. Release
/// promptly: the ring has a fixed number of buffers shared by every connection of the reactor.
/// Reactor thread only. An empty lease returned by a recv means end of stream.
class BufferLease {
public:
    BufferLease() noexcept = default;
    BufferLease(detail::BufferOwner* owner, char* base, std::uint32_t size, std::uint16_t id) noexcept
        : owner_(owner), base_(base), size_(size), id_(id) {}
    BufferLease(BufferLease&& o) noexcept
        : owner_(std::exchange(o.owner_, nullptr)), base_(std::exchange(o.base_, nullptr))
        , size_(std::exchange(o.size_, 0)), offset_(std::exchange(o.offset_, 0)), id_(o.id_) {}
    BufferLease& operator=(BufferLease&& o) noexcept {
        if (this != &o) {
            release();
            owner_ = std::exchange(o.owner_, nullptr);
            base_ = std::exchange(o.base_, nullptr);
            size_ = std::exchange(o.size_, 0);
            offset_ = std::exchange(o.offset_, 0);
            id_ = o.id_;
        }
        return *this;
    }
    BufferLease(const BufferLease&) = delete;
    BufferLease& operator=(const BufferLease&) = delete;
    ~BufferLease() { release(); }

    /// Unconsumed bytes.
    [[nodiscard]] std::string_view view() const noexcept {
        return {base_ + offset_, size_ - offset_};
    }
    [[nodiscard]] char* data() const noexcept { return base_ + offset_; }
    [[nodiscard]] std::size_t size() const noexcept { return size_ - offset_; }
    [[nodiscard]] bool empty() const noexcept { return size_ == offset_; }
    /// Drop `n` bytes from the front (a parser that consumed them).
    void consume(std::size_t n) noexcept { offset_ += static_cast<std::uint32_t>(n < size() ? n : size()); }
    /// Give the buffer back now.
    void release() noexcept {
        if (owner_ != nullptr) {
            owner_->release_(owner_, base_, id_);
            owner_ = nullptr;
        }
        base_ = nullptr;
        size_ = offset_ = 0;
    }
    [[nodiscard]] bool holds_buffer() const noexcept { return owner_ != nullptr; }

private:
    detail::BufferOwner* owner_ = nullptr;
    char* base_ = nullptr;
    std::uint32_t size_ = 0;
    std::uint32_t offset_ = 0;
    std::uint16_t id_ = 0;
};

} // namespace ringwork::io
