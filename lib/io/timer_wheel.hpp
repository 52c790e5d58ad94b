// SPDX-License-Identifier: MIT
// Hierarchical hashed timing wheel: every per-reactor deadline, O(1) add/remove, no allocation.
#pragma once

#include <ringwork/io/timer_node.hpp>

#include <array>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <optional>

namespace ringwork::io {

/// \brief Hierarchical hashed timing wheel: 6 levels x 64 slots of intrusive FIFO lists.
///
/// Level L slot s holds timers whose deadline shares every 6-bit digit above L with now() and
/// has digit s > now()'s digit at L; the slot's range therefore begins at a single tick, where
/// its timers are re-inserted ("cascaded") one level down or fired. One 64-bit occupancy bitmap
/// per level makes next_event() a handful of countr_zero calls. Deadlines more than 2^36 ticks
/// ahead (beyond the current top-level block) park in top-level slot 0, which cascades at each
/// 2^36 boundary. Deadlines <= now() at add() go to an "expired" list.
///
/// Every operation is noexcept and allocation-free: the wheel is a fixed array of list heads
/// and the nodes carry their own links. Not thread-safe (one wheel per reactor thread).
///
/// Ordering guarantees of advance():
/// - timers fire in deadline order, FIFO among equal deadlines (a timer's slot depends only on
///   its deadline and now(), so equal deadlines always share a list, in add order);
/// - timers that were already due when added (deadline <= now()) fire first, at the next
///   advance(), in add order (their deadlines are not sorted among themselves);
/// - a callback that adds a timer with deadline <= now() (now() being the firing tick) defers it
///   to the *next* advance() call, so a timer re-arming itself "now" cannot livelock the loop
///   (next_event() then returns now()); a callback that adds one with now() < deadline <= the
///   advance target gets it fired within the same advance(), at its tick.
class TimerWheel {
public:
    static constexpr unsigned kSlotBits = 6;
    static constexpr unsigned kSlots = 1U << kSlotBits;  ///< 64 slots per level.
    static constexpr unsigned kLevels = 6;
    /// Ticks covered by the levels (2^36); further deadlines are parked and re-cascaded.
    static constexpr std::uint64_t kSpan = std::uint64_t{1} << (kSlotBits * kLevels);

    explicit TimerWheel(std::uint64_t now_tick = 0) noexcept;
    TimerWheel(const TimerWheel&) = delete;
    TimerWheel& operator=(const TimerWheel&) = delete;
    TimerWheel(TimerWheel&&) = delete;
    TimerWheel& operator=(TimerWheel&&) = delete;
    /// Unlinks (does not fire) the remaining nodes.
    ~TimerWheel();

    /// Arm `node` to fire at `deadline_tick`; a deadline <= now() fires at the next advance().
    /// Precondition: node not linked (assert). node.fire_ must be set.
    void add(TimerNode& node, std::uint64_t deadline_tick) noexcept;
    /// Disarm; no-op if not linked. O(1).
    void remove(TimerNode& node) noexcept;
    /// Move time to `now_tick` (never backwards: smaller values are ignored) and fire every timer
    /// with deadline <= now_tick, in deadline order. During a callback now() is the timer's tick
    /// (or the old now() for timers that were already due). Callbacks may add and remove timers,
    /// including other due ones and themselves. Not reentrant. Returns the number fired.
    std::size_t advance(std::uint64_t now_tick) noexcept;
    /// Earliest tick at which advance() has work to do: now() if timers are already due, else
    /// <= the earliest deadline (possibly an earlier cascade point). nullopt when empty.
    /// At most kLevels bitmap tests and one countr_zero.
    [[nodiscard]] std::optional<std::uint64_t> next_event() const noexcept;
    /// Armed timers, including due ones not fired yet.
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
    [[nodiscard]] std::uint64_t now() const noexcept { return now_; }

private:
    struct List {
        TimerNode* head_ = nullptr;
        TimerNode* tail_ = nullptr;
    };

    static constexpr std::uint16_t kWheelLists = kLevels * kSlots;
    /// Due at add time (or added "now" by a callback): fired by the next advance().
    static constexpr std::uint16_t kExpiredList = kWheelLists;
    /// Due in the advance() step being run.
    static constexpr std::uint16_t kFiringList = kWheelLists + 1;
    static constexpr std::size_t kListCount = kWheelLists + 2;

    void link(TimerNode& node, std::uint16_t list) noexcept;
    void unlink(TimerNode& node) noexcept;
    void place(TimerNode& node) noexcept;
    void move_all(std::uint16_t from, std::uint16_t to) noexcept;
    void cascade(unsigned level, unsigned slot) noexcept;
    void collect_due() noexcept;
    std::size_t fire_pending() noexcept;
    [[nodiscard]] std::optional<std::uint64_t> next_wheel_event() const noexcept;

    std::array<List, kListCount> lists_{};
    std::array<std::uint64_t, kLevels> occupied_{};
    std::uint64_t now_;
    std::size_t size_ = 0;
    bool advancing_ = false;
};

}  // namespace ringwork::io
