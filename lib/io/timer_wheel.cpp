// SPDX-License-Identifier: MIT
// Hierarchical hashed timing wheel: placement, cascading and event-skipping advance().
#include "io/timer_wheel.hpp"

#include <algorithm>
#include <bit>

// Notation: digit(t, L) = bits [6L, 6L+6) of tick t; base(t, L) = t with the bits below 6(L+1)
// cleared (the start of t's level-L block of 64 slots).
//
// Invariant (I), holding whenever no advance() step is half-done:
//   every node in level L slot s (other than the top-level overflow slot) has
//     base(deadline, L) == base(now, L)  and  digit(deadline, L) == s > digit(now, L),
//   i.e. L is the highest 6-bit digit in which deadline and now differ. The slot's range then
//   begins at the single tick start(L, s) = base(now, L) + s * 64^L, with now < start <= deadline.
//   Level-5 slot 0 is never a regular slot (that would need 0 > digit(now, 5)); it holds the
//   "overflow" nodes, deadline >= base(now, 5) + 2^36 =: start(5, 0), parked until that tick.
//
// Starts order across levels: a level-(L-1) start is < base(now, L-1) + 64^L = base(now, L) +
// (digit(now, L) + 1) * 64^L <= any level-L start; overflow starts after all of them. So the
// nearest event is the first occupied slot of the lowest non-empty level (next_wheel_event()).
//
// Why (I) survives a jump of now to T, where T <= E := the minimum start over occupied slots:
//   - a slot with start S > T: now and S lie in the same level-L block (S = base(now, L) +
//     s * 64^L with s < 64), and now <= T < S, so T is in that block too: base(T, L) ==
//     base(now, L) == base(deadline, L) and digit(T, L) < s. (I) holds relative to T unchanged.
//     For the overflow slot, T < base(now, 5) + 2^36 keeps T in now's top block, so the parked
//     deadlines are still beyond it.
//   - a slot with start S == T (only possible when T == E): digit(T, L) == s, so (I) would break;
//     these are exactly the slots advance() empties at T: T is a multiple of 64^L and the slot is
//     digit(T, L) at level L (the overflow slot when L == 5 and digit(T, 5) == 0). Their nodes
//     are re-inserted relative to T: deadline == T goes to the firing list, else to the level of
//     the highest digit where deadline and T differ -- a slot that starts strictly after T, so
//     a cascade never feeds a slot being emptied at the same tick and levels can be processed in
//     any order. Level-0 slots start at their own tick, so the level-0 slot at T holds exactly
//     the nodes due at T.
// Since every occupied slot starts at or after E, no timer is skipped by a jump to any T <= E;
// advance() alternates "jump to E and process it" with firing, and finally jumps to the target
// (which is < E). Each processed event empties a non-empty slot and each cascade moves a node down
// at least one level (or from overflow into the levels), so a jump of any length costs
// O(events + nodes * levels), not O(ticks).
//
// FIFO: a node's slot depends only on (deadline, now), so nodes with equal deadlines always sit in
// the same list; lists are appended at the tail and cascaded in order, so add order is kept.

namespace ringwork::io {

namespace {

constexpr std::uint64_t kSlotMask = TimerWheel::kSlots - 1;

constexpr unsigned digit(std::uint64_t tick, unsigned level) noexcept {
    return static_cast<unsigned>((tick >> (level * TimerWheel::kSlotBits)) & kSlotMask);
}

/// Start of `tick`'s level-`level` block (bits below 6 * (level + 1) cleared).
constexpr std::uint64_t block_base(std::uint64_t tick, unsigned level) noexcept {
    const unsigned shift = (level + 1) * TimerWheel::kSlotBits;
    return tick & ~((std::uint64_t{1} << shift) - 1);
}

constexpr std::uint64_t slot_start(std::uint64_t now, unsigned level, unsigned slot) noexcept {
    return block_base(now, level) + (std::uint64_t{slot} << (level * TimerWheel::kSlotBits));
}

constexpr std::uint16_t list_index(unsigned level, unsigned slot) noexcept {
    return static_cast<std::uint16_t>(level * TimerWheel::kSlots + slot);
}

constexpr std::uint64_t bit(unsigned slot) noexcept { return std::uint64_t{1} << slot; }

constexpr unsigned kTopLevel = TimerWheel::kLevels - 1;

}  // namespace

TimerWheel::TimerWheel(std::uint64_t now_tick) noexcept : now_(now_tick) {}

TimerWheel::~TimerWheel() {
    assert(!advancing_);
    for (List& list : lists_) {
        TimerNode* node = list.head_;
        while (node != nullptr) {
            TimerNode* next = node->next_;
            node->prev_ = nullptr;
            node->next_ = nullptr;
            node->list_ = TimerNode::kUnlinked;
            node = next;
        }
        list = List{};
    }
}

void TimerWheel::link(TimerNode& node, std::uint16_t list) noexcept {
    List& target = lists_[list];
    node.list_ = list;
    node.next_ = nullptr;
    node.prev_ = target.tail_;
    if (target.tail_ != nullptr) {
        target.tail_->next_ = &node;
    } else {
        target.head_ = &node;
    }
    target.tail_ = &node;
    if (list < kWheelLists) {
        occupied_[list / kSlots] |= bit(list % kSlots);
    }
}

void TimerWheel::unlink(TimerNode& node) noexcept {
    List& source = lists_[node.list_];
    if (node.prev_ != nullptr) {
        node.prev_->next_ = node.next_;
    } else {
        source.head_ = node.next_;
    }
    if (node.next_ != nullptr) {
        node.next_->prev_ = node.prev_;
    } else {
        source.tail_ = node.prev_;
    }
    if (source.head_ == nullptr && node.list_ < kWheelLists) {
        occupied_[node.list_ / kSlots] &= ~bit(node.list_ % kSlots);
    }
    node.prev_ = nullptr;
    node.next_ = nullptr;
    node.list_ = TimerNode::kUnlinked;
}

// Precondition: node unlinked, deadline_ > now_.
void TimerWheel::place(TimerNode& node) noexcept {
    const std::uint64_t deadline = node.deadline_;
    assert(deadline > now_);
    const auto highest_bit = static_cast<unsigned>(std::bit_width(deadline ^ now_)) - 1;
    const unsigned level = highest_bit / kSlotBits;
    if (level >= kLevels) {
        link(node, list_index(kTopLevel, 0));  // overflow: parked until the next 2^36 boundary
    } else {
        link(node, list_index(level, digit(deadline, level)));
    }
}

void TimerWheel::move_all(std::uint16_t from, std::uint16_t to) noexcept {
    List& source = lists_[from];
    if (source.head_ == nullptr) {
        return;
    }
    for (TimerNode* node = source.head_; node != nullptr; node = node->next_) {
        node->list_ = to;
    }
    List& target = lists_[to];
    if (target.tail_ != nullptr) {
        target.tail_->next_ = source.head_;
        source.head_->prev_ = target.tail_;
    } else {
        target.head_ = source.head_;
    }
    target.tail_ = source.tail_;
    source = List{};
    if (from < kWheelLists) {
        occupied_[from / kSlots] &= ~bit(from % kSlots);
    }
}

void TimerWheel::add(TimerNode& node, std::uint64_t deadline_tick) noexcept {
    assert(!node.linked());
    assert(node.fire_ != nullptr);
    node.deadline_ = deadline_tick;
    ++size_;
    if (deadline_tick <= now_) {
        link(node, kExpiredList);
    } else {
        place(node);
    }
}

void TimerWheel::remove(TimerNode& node) noexcept {
    if (!node.linked()) {
        return;
    }
    unlink(node);
    --size_;
}

// Re-inserts the nodes of level `level` slot `slot`, whose range begins at now_.
void TimerWheel::cascade(unsigned level, unsigned slot) noexcept {
    if ((occupied_[level] & bit(slot)) == 0) {
        return;
    }
    const std::uint16_t index = list_index(level, slot);
    TimerNode* node = lists_[index].head_;
    lists_[index] = List{};
    occupied_[level] &= ~bit(slot);
    while (node != nullptr) {
        TimerNode* next = node->next_;
        assert(node->deadline_ >= now_);
        node->prev_ = nullptr;
        node->next_ = nullptr;
        node->list_ = TimerNode::kUnlinked;
        if (node->deadline_ == now_) {
            link(*node, kFiringList);
        } else {
            place(*node);
        }
        node = next;
    }
}

// now_ has just jumped to an event tick: empty every slot whose range begins at now_.
void TimerWheel::collect_due() noexcept {
    // Slots of level L begin at multiples of 64^L, so only levels up to now_'s alignment qualify.
    const unsigned aligned = static_cast<unsigned>(std::countr_zero(now_)) / kSlotBits;
    for (unsigned level = std::min(aligned, kTopLevel); level >= 1; --level) {
        cascade(level, digit(now_, level));
    }
    move_all(list_index(0, digit(now_, 0)), kFiringList);
}

std::size_t TimerWheel::fire_pending() noexcept {
    std::size_t fired = 0;
    while (TimerNode* node = lists_[kFiringList].head_) {
        unlink(*node);
        --size_;
        ++fired;
        node->fire_(node);  // may destroy the node's owner: do not touch `node` afterwards
    }
    return fired;
}

std::optional<std::uint64_t> TimerWheel::next_wheel_event() const noexcept {
    for (unsigned level = 0; level < kTopLevel; ++level) {
        if (occupied_[level] != 0) {
            const auto slot = static_cast<unsigned>(std::countr_zero(occupied_[level]));
            assert(slot > digit(now_, level));
            return slot_start(now_, level, slot);
        }
    }
    const std::uint64_t regular = occupied_[kTopLevel] & ~bit(0);
    if (regular != 0) {
        const auto slot = static_cast<unsigned>(std::countr_zero(regular));
        assert(slot > digit(now_, kTopLevel));
        return slot_start(now_, kTopLevel, slot);
    }
    if ((occupied_[kTopLevel] & bit(0)) != 0) {
        return block_base(now_, kTopLevel) + kSpan;  // overflow nodes exist, so this fits
    }
    return std::nullopt;
}

std::optional<std::uint64_t> TimerWheel::next_event() const noexcept {
    if (lists_[kExpiredList].head_ != nullptr || lists_[kFiringList].head_ != nullptr) {
        return now_;
    }
    return next_wheel_event();
}

std::size_t TimerWheel::advance(std::uint64_t now_tick) noexcept {
    assert(!advancing_ && "TimerWheel::advance is not reentrant");
    advancing_ = true;
    const std::uint64_t target = std::max(now_tick, now_);

    // Timers that were already due when added, in add order. Ones a callback adds "now" land in
    // the (now empty) expired list and wait for the next call.
    move_all(kExpiredList, kFiringList);
    std::size_t fired = fire_pending();

    // Jump from event to event (never tick by tick); callbacks may change the next event.
    for (auto event = next_wheel_event(); event && *event <= target; event = next_wheel_event()) {
        now_ = *event;
        collect_due();
        fired += fire_pending();
    }
    now_ = target;  // < every remaining slot start, so invariant (I) holds (see the top comment)
    advancing_ = false;
    return fired;
}

}  // namespace ringwork::io
