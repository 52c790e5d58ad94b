// SPDX-License-Identifier: MIT
// TimerNode: the intrusive timer embedded in awaiters and connections (public for embedding).
#pragma once

#include <cassert>
#include <cstdint>

namespace ringwork::io {

class TimerWheel;

/// \brief Intrusive timer: lives inside its owner (an awaiter or a connection); never allocated
/// by the wheel.
///
/// The owner sets `fire_` and hands the node to TimerWheel::add(). The usual way to get back from
/// the node to the owner inside `fire_` is to derive from TimerNode and `static_cast`. The node
/// must outlive its membership in the wheel: remove() it (or let it fire) before destroying it;
/// the destructor asserts that it is not linked.
///
/// Copying a node copies `deadline_` and `fire_` only; the copy is never linked, and copying from
/// or onto a linked node is a bug (asserted).
struct TimerNode {
    TimerNode* prev_ = nullptr;
    TimerNode* next_ = nullptr;
    /// Absolute tick (1 tick = 1 ms in the reactor); set by TimerWheel::add().
    std::uint64_t deadline_ = 0;
    /// Called when due, after the node is unlinked (it may re-add it or destroy its owner).
    void (*fire_)(TimerNode*) noexcept = nullptr;

    TimerNode() noexcept = default;
    TimerNode(const TimerNode& other) noexcept : deadline_(other.deadline_), fire_(other.fire_) {
        assert(!other.linked());
    }
    TimerNode& operator=(const TimerNode& other) noexcept {
        assert(!linked() && !other.linked());
        deadline_ = other.deadline_;
        fire_ = other.fire_;
        return *this;
    }
    ~TimerNode() { assert(!linked()); }

    /// True while armed in a wheel (including "due, waiting for the next advance()").
    [[nodiscard]] bool linked() const noexcept { return list_ != kUnlinked; }

private:
    friend class TimerWheel;
    static constexpr std::uint16_t kUnlinked = 0xFFFF;
    /// Which of the wheel's lists holds the node (level * 64 + slot, or a special list).
    std::uint16_t list_ = kUnlinked;
};

static_assert(sizeof(TimerNode) <= 40, "TimerNode is embedded in every connection and awaiter");

} // namespace ringwork::io
