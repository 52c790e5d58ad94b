// SPDX-License-Identifier: MIT
// Unit tests for the hierarchical timing wheel: ordering, cascading, callbacks, randomized model.
#include "io/timer_wheel.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <type_traits>
#include <utility>
#include <vector>

using ringwork::io::TimerNode;
using ringwork::io::TimerWheel;

namespace {

struct Fired {
    int id;
    std::uint64_t tick;  // wheel.now() inside the callback

    bool operator==(const Fired&) const = default;
};

/// A test timer: logs (id, now) when fired, optionally removes a victim and/or re-arms itself.
struct Probe : TimerNode {
    int id = 0;
    TimerWheel* wheel = nullptr;
    std::vector<Fired>* log = nullptr;
    Probe* victim = nullptr;         // removed (if armed) when this one fires
    std::uint64_t period = 0;        // > 0: re-armed at now() + period ...
    int repeats = 0;                 // ... this many more times
    Probe* spawn = nullptr;          // added at now() + spawn_delay when this one fires
    std::uint64_t spawn_delay = 0;

    Probe() noexcept { fire_ = &on_fire; }

    void setup(int probe_id, TimerWheel& w, std::vector<Fired>& l) noexcept {
        id = probe_id;
        wheel = &w;
        log = &l;
    }

    static void on_fire(TimerNode* node) noexcept {
        auto* self = static_cast<Probe*>(node);
        self->log->push_back({self->id, self->wheel->now()});
        if (self->victim != nullptr) {
            self->wheel->remove(*self->victim);
        }
        if (self->spawn != nullptr && !self->spawn->linked()) {
            self->wheel->add(*self->spawn, self->wheel->now() + self->spawn_delay);
        }
        if (self->period > 0 && self->repeats > 0) {
            --self->repeats;
            self->wheel->add(*self, self->wheel->now() + self->period);
        }
    }
};

std::vector<int> ids_of(const std::vector<Fired>& log) {
    std::vector<int> ids;
    ids.reserve(log.size());
    for (const Fired& f : log) {
        ids.push_back(f.id);
    }
    return ids;
}

}  // namespace

// Zero allocation is by construction: the wheel is a fixed std::array of list heads plus six
// bitmaps, nodes carry their own links, and no member function can allocate (all noexcept, no
// allocator-aware members). These asserts pin the footprint down.
static_assert(sizeof(TimerNode) <= 40);
static_assert(std::is_nothrow_default_constructible_v<TimerNode>);
static_assert(sizeof(TimerWheel) < 8 * 1024, "fixed-size wheel, no dynamic storage");

TEST_CASE("TimerWheel: empty wheel") {
    TimerWheel wheel{42};
    CHECK(wheel.now() == 42);
    CHECK(wheel.size() == 0);
    CHECK(wheel.empty());
    CHECK_FALSE(wheel.next_event().has_value());
    CHECK(wheel.advance(1000) == 0);
    CHECK(wheel.now() == 1000);
    CHECK(wheel.advance(5) == 0);  // never backwards
    CHECK(wheel.now() == 1000);
}

TEST_CASE("TimerWheel: fires in deadline order, each at its own tick") {
    std::vector<Fired> log;
    std::vector<Probe> probes(12);
    TimerWheel wheel{0};
    const std::uint64_t deadlines[] = {500, 3, 64, 63, 65, 4096, 4095, 1, 100000, 262144, 7, 999};
    for (int i = 0; i < 12; ++i) {
        probes[static_cast<std::size_t>(i)].setup(i, wheel, log);
        wheel.add(probes[static_cast<std::size_t>(i)], deadlines[i]);
    }
    CHECK(wheel.size() == 12);
    CHECK(wheel.advance(300000) == 12);
    CHECK(wheel.size() == 0);
    CHECK(wheel.now() == 300000);
    REQUIRE(log.size() == 12);
    std::vector<std::uint64_t> sorted(std::begin(deadlines), std::end(deadlines));
    std::sort(sorted.begin(), sorted.end());
    for (std::size_t i = 0; i < log.size(); ++i) {
        CHECK(log[i].tick == sorted[i]);
        CHECK(deadlines[log[i].id] == log[i].tick);
    }
    for (const Probe& p : probes) {
        CHECK_FALSE(p.linked());
    }
}

TEST_CASE("TimerWheel: equal deadlines fire FIFO, even when added at different times") {
    std::vector<Fired> log;
    std::vector<Probe> probes(10);
    TimerWheel wheel{10};
    for (int i = 0; i < 10; ++i) {
        probes[static_cast<std::size_t>(i)].setup(i, wheel, log);
    }
    // 4096 = 64^2 is a level-2 cascade boundary. A node's slot depends only on (deadline, now),
    // so probes added at different now()s share a list and keep their add order across cascades.
    wheel.add(probes[0], 4096);
    wheel.add(probes[1], 4096);
    wheel.add(probes[2], 5000);  // a later deadline in the same level-2 slot, in between
    wheel.add(probes[8], 4100);  // cascades from level 2 into level-0 slot 4 at 4096
    CHECK(wheel.advance(4000) == 0);
    wheel.add(probes[3], 4096);
    wheel.add(probes[4], 4096);
    CHECK(wheel.advance(4090) == 0);
    wheel.add(probes[5], 4096);
    wheel.add(probes[6], 4095);
    wheel.add(probes[7], 4096);
    CHECK(wheel.advance(4096) == 7);
    CHECK(ids_of(log) == std::vector<int>{6, 0, 1, 3, 4, 5, 7});
    wheel.add(probes[9], 4100);  // added after the cascade: queued behind probes[8]
    CHECK(wheel.advance(4100) == 2);
    CHECK(ids_of(log) == std::vector<int>{6, 0, 1, 3, 4, 5, 7, 8, 9});
    CHECK(wheel.advance(5000) == 1);
    CHECK(log.back() == Fired{2, 5000});
}

TEST_CASE("TimerWheel: remove before due prevents firing; remove is O(1) and idempotent") {
    std::vector<Fired> log;
    std::vector<Probe> probes(4);
    TimerWheel wheel{0};
    for (int i = 0; i < 4; ++i) {
        probes[static_cast<std::size_t>(i)].setup(i, wheel, log);
    }
    wheel.add(probes[0], 10);
    wheel.add(probes[1], 10);
    wheel.add(probes[2], 10);
    wheel.add(probes[3], 1 << 20);
    CHECK(probes[1].linked());
    wheel.remove(probes[1]);
    CHECK_FALSE(probes[1].linked());
    wheel.remove(probes[1]);  // no-op
    wheel.remove(probes[3]);
    CHECK(wheel.size() == 2);
    CHECK(wheel.advance(1 << 21) == 2);
    CHECK(ids_of(log) == std::vector<int>{0, 2});
    // Removing the head, middle and tail of one slot keeps the list consistent.
    log.clear();
    const std::uint64_t t = wheel.now() + 5;
    for (Probe& p : probes) {
        wheel.add(p, t);
    }
    wheel.remove(probes[0]);
    wheel.remove(probes[3]);
    wheel.remove(probes[1]);
    CHECK(wheel.advance(t) == 1);
    CHECK(ids_of(log) == std::vector<int>{2});
    CHECK(wheel.empty());
    CHECK_FALSE(wheel.next_event().has_value());
}

TEST_CASE("TimerWheel: a callback removes another due timer") {
    std::vector<Fired> log;
    std::vector<Probe> probes(4);
    TimerWheel wheel{0};
    for (int i = 0; i < 4; ++i) {
        probes[static_cast<std::size_t>(i)].setup(i, wheel, log);
    }
    SUBCASE("same tick") {
        probes[0].victim = &probes[1];
        wheel.add(probes[0], 10);
        wheel.add(probes[1], 10);
        wheel.add(probes[2], 10);
        CHECK(wheel.advance(10) == 2);
        CHECK(ids_of(log) == std::vector<int>{0, 2});
    }
    SUBCASE("later tick within the same advance") {
        probes[0].victim = &probes[1];
        wheel.add(probes[0], 10);
        wheel.add(probes[1], 20);
        wheel.add(probes[2], 30);
        CHECK(wheel.advance(100) == 2);
        CHECK(ids_of(log) == std::vector<int>{0, 2});
    }
    SUBCASE("both already due before the advance (expired list)") {
        wheel.add(probes[3], 50);
        wheel.advance(40);
        probes[0].victim = &probes[1];
        wheel.add(probes[0], 40);  // <= now: waits in the expired list
        wheel.add(probes[1], 30);  // also expired, added after probes[0]: fires after it
        CHECK(wheel.advance(60) == 2);
        CHECK(log == std::vector<Fired>{{0, 40}, {3, 50}});
    }
    CHECK(wheel.empty());
}

TEST_CASE("TimerWheel: periodic timer re-adding itself fires at every period") {
    std::vector<Fired> log;
    Probe periodic;
    TimerWheel wheel{0};
    periodic.setup(1, wheel, log);
    periodic.period = 7;
    periodic.repeats = 1000;
    wheel.add(periodic, 7);
    CHECK(wheel.advance(100) == 14);  // 7, 14, ..., 98 in one call
    REQUIRE(log.size() == 14);
    for (std::size_t i = 0; i < log.size(); ++i) {
        CHECK(log[i].tick == 7 * (i + 1));
    }
    CHECK(periodic.linked());
    REQUIRE(wheel.next_event().has_value());
    CHECK(*wheel.next_event() <= 105);
    CHECK(wheel.advance(104) == 0);
    CHECK(wheel.advance(105) == 1);

    // Period 1 across level boundaries (63 -> 64 -> ..., 4095 -> 4096).
    wheel.remove(periodic);
    log.clear();
    wheel.advance(4000);
    periodic.period = 1;
    periodic.repeats = 1000000;
    wheel.add(periodic, 4001);
    CHECK(wheel.advance(4200) == 200);
    REQUIRE(log.size() == 200);
    for (std::size_t i = 0; i < log.size(); ++i) {
        CHECK(log[i].tick == 4001 + i);
    }
    wheel.remove(periodic);
}

// Documented behaviour: a timer a callback adds with deadline <= now() fires at the *next*
// advance() (so "re-arm now" cannot livelock); deadline > now() fires in the same advance() if
// the target reaches it.
TEST_CASE("TimerWheel: timers added from a callback: due now -> next advance, later -> same") {
    std::vector<Fired> log;
    std::vector<Probe> probes(3);
    TimerWheel wheel{0};
    for (int i = 0; i < 3; ++i) {
        probes[static_cast<std::size_t>(i)].setup(i, wheel, log);
    }
    SUBCASE("due now") {
        probes[0].spawn = &probes[1];
        probes[0].spawn_delay = 0;
        wheel.add(probes[0], 10);
        wheel.add(probes[2], 50);
        CHECK(wheel.advance(100) == 2);
        CHECK(log == std::vector<Fired>{{0, 10}, {2, 50}});
        CHECK(probes[1].linked());
        CHECK(wheel.size() == 1);
        CHECK(wheel.next_event() == std::optional<std::uint64_t>{100});
        CHECK(wheel.advance(100) == 1);
        CHECK(log.back() == Fired{1, 100});
    }
    SUBCASE("self re-arm at now() does not livelock") {
        wheel.add(probes[0], 10);
        // probes[1] re-adds itself with deadline == now() from its own callback, every time.
        probes[1].spawn = &probes[1];
        probes[1].spawn_delay = 0;
        wheel.add(probes[1], 10);
        CHECK(wheel.advance(10) == 2);
        CHECK(wheel.advance(10) == 1);
        CHECK(wheel.advance(11) == 1);
        CHECK(log.size() == 4);
        probes[1].spawn = nullptr;
        CHECK(wheel.advance(11) == 1);
        CHECK(wheel.empty());
    }
    SUBCASE("due later, within the same advance") {
        probes[0].spawn = &probes[1];
        probes[0].spawn_delay = 1;
        wheel.add(probes[0], 10);
        wheel.add(probes[2], 11);  // added earlier than probes[1], same deadline 11
        CHECK(wheel.advance(100) == 3);
        CHECK(log == std::vector<Fired>{{0, 10}, {2, 11}, {1, 11}});
    }
    SUBCASE("due later, beyond the target") {
        probes[0].spawn = &probes[1];
        probes[0].spawn_delay = 1000;
        wheel.add(probes[0], 10);
        CHECK(wheel.advance(100) == 1);
        CHECK(wheel.advance(1009) == 0);
        CHECK(wheel.advance(1010) == 1);
        CHECK(log.back() == Fired{1, 1010});
    }
    wheel.remove(probes[1]);
}

TEST_CASE("TimerWheel: deadline <= now at add fires at the next advance, before later ones") {
    std::vector<Fired> log;
    std::vector<Probe> probes(3);
    TimerWheel wheel{1000};
    for (int i = 0; i < 3; ++i) {
        probes[static_cast<std::size_t>(i)].setup(i, wheel, log);
    }
    wheel.add(probes[0], 1001);
    wheel.add(probes[1], 1000);
    wheel.add(probes[2], 3);
    CHECK(wheel.next_event() == std::optional<std::uint64_t>{1000});
    CHECK(wheel.advance(999) == 2);  // backwards target: ignored, but due timers run
    CHECK(wheel.now() == 1000);
    CHECK(log == std::vector<Fired>{{1, 1000}, {2, 1000}});
    CHECK(wheel.advance(1001) == 1);
}

namespace {

/// Advance in jumps of `jump` up to `deadline - margin`, then tick by tick past `deadline`:
/// nothing may fire early, and the far timer must fire exactly at `deadline`.
void check_far_deadline(std::uint64_t start, std::uint64_t deadline, std::uint64_t jump) {
    std::vector<Fired> log;
    Probe far;
    Probe near;  // a short timer keeps lower levels busy during the ride
    TimerWheel wheel{start};
    far.setup(1, wheel, log);
    near.setup(2, wheel, log);
    wheel.add(far, deadline);
    const std::uint64_t margin = 200;
    std::size_t steps = 0;
    auto step_to = [&](std::uint64_t tick) {
        wheel.advance(tick);
        REQUIRE(wheel.now() == tick);
        REQUIRE(far.linked());
        const auto next = wheel.next_event();
        REQUIRE(next.has_value());
        REQUIRE(*next > wheel.now());
        REQUIRE(*next <= deadline);
    };
    while (wheel.now() + jump < deadline - margin) {
        step_to(wheel.now() + jump);
        if (++steps % 7 == 0 && !near.linked()) {
            wheel.add(near, wheel.now() + 3);
        }
    }
    wheel.remove(near);
    step_to(deadline - margin);
    log.clear();
    while (wheel.now() < deadline + 5) {
        const std::uint64_t tick = wheel.now() + 1;
        const std::size_t fired = wheel.advance(tick);
        REQUIRE(fired == (tick == deadline ? 1U : 0U));
    }
    REQUIRE(log == std::vector<Fired>{{1, deadline}});
}

}  // namespace

TEST_CASE("TimerWheel: far deadlines fire exactly at their tick") {
    const std::uint64_t offsets[] = {0, 123456789, (std::uint64_t{1} << 36) - 17};
    for (const std::uint64_t start : offsets) {
        for (const unsigned exponent : {20U, 30U, 36U, 40U}) {
            const std::uint64_t deadline = start + (std::uint64_t{1} << exponent);
            CAPTURE(start);
            CAPTURE(exponent);
            // Big jumps (odd sizes, so they never align with slot boundaries) then small steps.
            check_far_deadline(start, deadline, (std::uint64_t{1} << (exponent - 6)) + 12345);
            check_far_deadline(start, deadline, (deadline - start) / 3 + 1);
            // A single jump to just before, then just onto, the deadline.
            std::vector<Fired> log;
            Probe far;
            TimerWheel wheel{start};
            far.setup(1, wheel, log);
            wheel.add(far, deadline);
            CHECK(wheel.advance(deadline - 1) == 0);
            CHECK(far.linked());
            CHECK(wheel.advance(deadline) == 1);
            CHECK(log == std::vector<Fired>{{1, deadline}});
            // And one jump far past it still fires it at (now() ==) its own tick.
            log.clear();
            wheel.add(far, wheel.now() + (std::uint64_t{1} << exponent) + 1);
            const std::uint64_t expected = far.deadline_;
            CHECK(wheel.advance(expected * 4) == 1);
            CHECK(log == std::vector<Fired>{{1, expected}});
        }
    }
}

TEST_CASE("TimerWheel: next_event is <= the earliest deadline and reaches every deadline") {
    std::vector<Fired> log;
    std::vector<Probe> probes(64);
    TimerWheel wheel{777};
    std::multimap<std::uint64_t, int> pending;
    std::mt19937_64 rng{12345};
    for (int i = 0; i < 64; ++i) {
        Probe& p = probes[static_cast<std::size_t>(i)];
        p.setup(i, wheel, log);
        const unsigned magnitude = static_cast<unsigned>(rng() % 43);
        const std::uint64_t deadline =
            wheel.now() + 1 + (rng() & ((std::uint64_t{1} << magnitude) - 1));
        wheel.add(p, deadline);
        pending.emplace(deadline, i);
    }
    std::size_t iterations = 0;
    while (const auto next = wheel.next_event()) {
        REQUIRE(*next > wheel.now());
        REQUIRE(*next <= pending.begin()->first);
        const std::size_t before = log.size();
        const std::size_t fired = wheel.advance(*next);
        REQUIRE(wheel.now() == *next);
        REQUIRE(fired == log.size() - before);
        for (std::size_t i = before; i < log.size(); ++i) {
            REQUIRE(log[i].tick == pending.begin()->first);
            REQUIRE(log[i].tick == *next);
            REQUIRE(log[i].id == pending.begin()->second);
            pending.erase(pending.begin());
        }
        ++iterations;
        REQUIRE(iterations < 64 * 64);  // each event processes a slot: bounded, not per tick
    }
    CHECK(pending.empty());
    CHECK(log.size() == 64);
    CHECK(wheel.empty());
}

TEST_CASE("TimerWheel: destructor unlinks without firing") {
    std::vector<Fired> log;
    std::vector<Probe> probes(3);
    {
        TimerWheel wheel{0};
        for (int i = 0; i < 3; ++i) {
            probes[static_cast<std::size_t>(i)].setup(i, wheel, log);
        }
        wheel.add(probes[0], 0);                        // expired list
        wheel.add(probes[1], 100);                      // level 1
        wheel.add(probes[2], std::uint64_t{1} << 50);   // overflow
        CHECK(wheel.size() == 3);
    }
    for (const Probe& p : probes) {
        CHECK_FALSE(p.linked());
    }
    CHECK(log.empty());
}

TEST_CASE("TimerWheel: 100k add/remove cycles on one node, zero allocation by construction") {
    std::vector<Fired> log;
    Probe probe;
    TimerWheel wheel{5};
    probe.setup(1, wheel, log);
    std::mt19937_64 rng{7};
    for (int i = 0; i < 100000; ++i) {
        const unsigned magnitude = static_cast<unsigned>(rng() % 45);
        wheel.add(probe, wheel.now() + (rng() & ((std::uint64_t{1} << magnitude) - 1)));
        REQUIRE(wheel.size() == 1);
        REQUIRE(wheel.next_event().has_value());
        wheel.remove(probe);
        REQUIRE_FALSE(probe.linked());
        REQUIRE(wheel.size() == 0);
        REQUIRE_FALSE(wheel.next_event().has_value());
    }
    CHECK(wheel.advance(std::uint64_t{1} << 50) == 0);
    CHECK(log.empty());
}

// Randomized differential test against a std::multimap model. The model fires due entries in
// (deadline, insertion) order -- multimap keeps equal keys in insertion order -- after first
// firing the entries that were already due at the previous now(), in add order. Probes' callbacks
// (remove a victim, re-arm periodically) are mirrored by the model, so the expected log is exact.
TEST_CASE("TimerWheel: randomized against a multimap model") {
    constexpr int kProbes = 1000;
    constexpr int kOperations = 100000;
    using Model = std::multimap<std::uint64_t, int>;

    std::vector<Fired> log;
    log.reserve(1 << 16);
    std::vector<Probe> probes(kProbes);
    TimerWheel wheel{1000};
    std::mt19937_64 rng{0x5eedULL};

    Model model;
    std::vector<std::optional<Model::iterator>> armed(kProbes);
    std::vector<std::uint64_t> add_seq(kProbes, 0);
    std::vector<int> repeats_left(kProbes, 0);
    std::vector<std::uint64_t> fire_count(kProbes, 0);
    std::uint64_t seq = 0;
    std::uint64_t total_fired = 0;

    for (int i = 0; i < kProbes; ++i) {
        Probe& p = probes[static_cast<std::size_t>(i)];
        p.setup(i, wheel, log);
        if (rng() % 10 == 0) {
            const auto magnitude = static_cast<unsigned>(rng() % 20);  // one rng() per statement:
            p.period = 1 + (rng() & ((std::uint64_t{1} << magnitude) - 1));  // fixed sequence
        }
        if (rng() % 10 == 0) {
            int victim = static_cast<int>(rng() % kProbes);
            if (victim == i) {
                victim = (victim + 1) % kProbes;
            }
            p.victim = &probes[static_cast<std::size_t>(victim)];
        }
    }

    auto model_add = [&](int id, std::uint64_t deadline) {
        armed[static_cast<std::size_t>(id)] = model.emplace(deadline, id);
        add_seq[static_cast<std::size_t>(id)] = ++seq;
    };
    auto model_remove = [&](int id) {
        auto& slot = armed[static_cast<std::size_t>(id)];
        if (slot) {
            model.erase(*slot);
            slot.reset();
        }
    };
    // Mirrors Probe::on_fire for a probe that was just taken out of the model.
    auto model_fire = [&](int id, std::uint64_t tick, std::vector<Fired>& expected) {
        const Probe& p = probes[static_cast<std::size_t>(id)];
        expected.push_back({id, tick});
        if (p.victim != nullptr) {
            model_remove(p.victim->id);
        }
        auto& left = repeats_left[static_cast<std::size_t>(id)];
        if (p.period > 0 && left > 0) {
            --left;
            model_add(id, tick + p.period);
        }
    };
    auto random_delta = [&](unsigned max_magnitude) {
        const unsigned magnitude = static_cast<unsigned>(rng() % (max_magnitude + 1));
        return rng() & ((std::uint64_t{1} << magnitude) - 1);
    };

    std::vector<Fired> expected;
    for (int op = 0; op < kOperations; ++op) {
        const unsigned kind = static_cast<unsigned>(rng() % 100);
        const int id = static_cast<int>(rng() % kProbes);
        Probe& p = probes[static_cast<std::size_t>(id)];
        if (kind < 45) {  // add (or re-add)
            if (p.linked()) {
                wheel.remove(p);
                model_remove(id);
            }
            std::uint64_t deadline = 0;
            if (rng() % 30 == 0) {
                deadline = wheel.now() - std::min<std::uint64_t>(wheel.now(), rng() % 1000);
            } else {
                deadline = wheel.now() + random_delta(42);
            }
            const int repeats = static_cast<int>(rng() % 4);
            p.repeats = repeats;
            repeats_left[static_cast<std::size_t>(id)] = repeats;
            wheel.add(p, deadline);
            model_add(id, deadline);
        } else if (kind < 65) {  // remove (maybe not armed)
            wheel.remove(p);
            model_remove(id);
        } else {  // advance
            const unsigned shape = static_cast<unsigned>(rng() % 100);
            std::uint64_t target = wheel.now();
            if (shape < 2) {
                target = wheel.now() - std::min<std::uint64_t>(wheel.now(), rng() % 100);
            } else if (shape < 50) {
                target += rng() % 64;
            } else if (shape < 80) {
                target += random_delta(16);
            } else if (shape < 96) {
                target += random_delta(36);
            } else {
                target += random_delta(42);
            }
            const std::uint64_t old_now = wheel.now();
            const std::uint64_t model_target = std::max(target, old_now);

            // Model: overdue-at-add entries first (add order), then by (deadline, insertion).
            expected.clear();
            std::vector<std::pair<std::uint64_t, int>> overdue;
            for (auto it = model.begin(); it != model.end() && it->first <= old_now; ++it) {
                overdue.emplace_back(add_seq[static_cast<std::size_t>(it->second)], it->second);
            }
            std::sort(overdue.begin(), overdue.end());
            for (const auto& [s, oid] : overdue) {
                const auto index = static_cast<std::size_t>(oid);
                if (armed[index] && add_seq[index] == s) {
                    model_remove(oid);
                    model_fire(oid, old_now, expected);
                }
            }
            while (!model.empty() && model.begin()->first <= model_target) {
                const auto [deadline, fid] = *model.begin();
                REQUIRE(deadline > old_now);
                model_remove(fid);
                model_fire(fid, deadline, expected);
            }

            log.clear();
            const std::size_t fired = wheel.advance(target);
            REQUIRE(fired == expected.size());
            REQUIRE(log == expected);
            REQUIRE(wheel.now() == model_target);
            for (const Fired& f : log) {
                ++fire_count[static_cast<std::size_t>(f.id)];
            }
            total_fired += fired;
        }

        REQUIRE(wheel.size() == model.size());
        const auto next = wheel.next_event();
        if (model.empty()) {
            REQUIRE_FALSE(next.has_value());
        } else {
            REQUIRE(next.has_value());
            const std::uint64_t earliest = model.begin()->first;
            if (earliest <= wheel.now()) {
                REQUIRE(*next == wheel.now());
            } else {
                REQUIRE(*next > wheel.now());
                REQUIRE(*next <= earliest);
            }
        }
        if (op % 997 == 0) {
            for (int i = 0; i < kProbes; ++i) {
                REQUIRE(probes[static_cast<std::size_t>(i)].linked() ==
                        armed[static_cast<std::size_t>(i)].has_value());
            }
        }
    }
    // Drain everything: every armed timer fires exactly once more (periodic ones per repeat).
    std::size_t drain_steps = 0;
    while (const auto next = wheel.next_event()) {
        total_fired += wheel.advance(*next);
        REQUIRE(++drain_steps < 1000000);
    }
    CHECK(wheel.empty());
    CHECK(total_fired > 10000);  // the mix really exercised firing
    MESSAGE("fired " << total_fired << " timers, now = " << wheel.now());
}
