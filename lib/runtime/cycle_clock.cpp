// SPDX-License-Identifier: MIT
#include <ringwork/runtime/cycle_clock.hpp>

#if RINGWORK_CYCLE_CLOCK_TSC
#include <cpuid.h>
#endif

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

double CycleClock::ns_per_tick() noexcept {
    static const double rate = [] {
        if (!tsc()) {
            return 1.0;
        }
        // Both clocks read back to back at each end of a 2 ms spin: the error is a few tens of
        // ns over 2 ms (< 0.01 %).
        using std::chrono::steady_clock;
        const auto t0 = steady_clock::now();
        const std::uint64_t c0 = now();
        auto t1 = t0;
        std::uint64_t c1 = c0;
        while (t1 - t0 < std::chrono::milliseconds(2)) {
            c1 = now();
            t1 = steady_clock::now();
        }
        const double ns = std::chrono::duration<double, std::nano>(t1 - t0).count();
        return c1 > c0 ? ns / static_cast<double>(c1 - c0) : 1.0;
    }();
    return rate;
}

} // namespace ringwork::runtime
