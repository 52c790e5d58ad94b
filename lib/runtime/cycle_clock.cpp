// SPDX-License-Identifier: MIT
#include <ringwork/runtime/cycle_clock.hpp>

#if RINGWORK_CYCLE_CLOCK_TSC
#include <cpuid.h>
#endif

#include <algorithm>
#include <array>
#include <cstddef>

namespace ringwork::runtime {

bool CycleClock::detect_invariant_tsc() noexcept {
#if RINGWORK_CYCLE_CLOCK_TSC
    unsigned eax = 0;
    unsigned ebx = 0;
    unsigned ecx = 0;
    unsigned edx = 0;
    if (static_cast<unsigned>(__get_cpuid_max(0x80000000U, nullptr)) < 0x80000007U) {
        return false;
    }
    __cpuid(0x80000007U, eax, ebx, ecx, edx);
    return (edx & (1U << 8U)) != 0; // invariant TSC
#else
    return false;
#endif
}

namespace {

/// One (steady_clock ns, tick) pair read together: the tick between two clock reads, the pair
/// kept only when those two are close (the thread was not preempted in between).
struct Pair {
    double ns;
    std::uint64_t tick;
    bool tight;
};

Pair read_pair() noexcept {
    using std::chrono::steady_clock;
    const auto a = steady_clock::now();
    const std::uint64_t tick = CycleClock::now();
    const auto b = steady_clock::now();
    const double ns = std::chrono::duration<double, std::nano>((a + (b - a) / 2).time_since_epoch()).count();
    return Pair{ns, tick, b - a < std::chrono::microseconds(20)};
}

} // namespace

double CycleClock::ns_per_tick() noexcept {
    static const double rate = [] {
        if (!tsc()) {
            return 1.0;
        }
        // Five 2 ms spans between tight pairs (preemption inside a span does not matter: both
        // clocks run on); the median rate, so one disturbed span cannot skew it. Preemption
        // between the reads of a pair is caught by its bracket and the pair read again.
        std::array<double, 5> rates{};
        std::size_t n = 0;
        for (int attempt = 0; attempt < 50 && n < rates.size(); ++attempt) {
            const Pair p0 = read_pair();
            Pair p1 = p0;
            while (p1.ns - p0.ns < 2e6) {
                p1 = read_pair();
            }
            if (p0.tight && p1.tight && p1.tick > p0.tick) {
                rates[n++] = (p1.ns - p0.ns) / static_cast<double>(p1.tick - p0.tick);
            }
        }
        if (n == 0) {
            return 1.0 / 3.0; // never seen: a 3 GHz guess beats a division by zero
        }
        std::sort(rates.begin(), rates.begin() + static_cast<std::ptrdiff_t>(n));
        return rates[n / 2];
    }();
    return rate;
}

} // namespace ringwork::runtime
