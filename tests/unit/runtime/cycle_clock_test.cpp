// SPDX-License-Identifier: MIT
// CycleClock: monotonic ticks, converted to nanoseconds against steady_clock.
#include <ringwork/runtime/cycle_clock.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

using ringwork::runtime::CycleClock;
using namespace std::chrono_literals;

TEST_SUITE("runtime.cycle_clock") {
    TEST_CASE("ticks never go back and a measured sleep converts to at least its length") {
        MESSAGE("ticks are " << std::string(CycleClock::tsc() ? "TSC counts" : "steady_clock ns") << ", "
                             << CycleClock::ns_per_tick() << " ns each");
        CHECK(CycleClock::ns_per_tick() > 0);
        if (!CycleClock::tsc()) {
            CHECK(CycleClock::ns_per_tick() == 1.0);
        }
        std::uint64_t last = CycleClock::now();
        for (int i = 0; i < 100000; ++i) {
            const std::uint64_t t = CycleClock::now();
            REQUIRE(t >= last);
            last = t;
        }
        // sleep_for never returns early; the bound above is only against a wild rate.
        const auto s0 = std::chrono::steady_clock::now();
        const std::uint64_t c0 = CycleClock::now();
        std::this_thread::sleep_for(50ms);
        const std::uint64_t c1 = CycleClock::now();
        const auto s1 = std::chrono::steady_clock::now();
        const auto measured = CycleClock::nanoseconds(c1 - c0);
        const auto truth = static_cast<std::uint64_t>(std::chrono::nanoseconds(s1 - s0).count());
        CHECK(measured >= 49'000'000U); // 50 ms, less a 2 % calibration margin
        CHECK(measured <= truth + truth / 50 + 1'000'000U);
    }
}
