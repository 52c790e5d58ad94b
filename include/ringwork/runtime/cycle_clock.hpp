// SPDX-License-Identifier: MIT
// CycleClock: a cheap monotonic tick counter for timing work on the request path.
#pragma once

#include <chrono>
#include <cstdint>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define RINGWORK_CYCLE_CLOCK_TSC 1
#else
#define RINGWORK_CYCLE_CLOCK_TSC 0
#endif

namespace ringwork::runtime {

/// \brief Ticks for measuring durations where a clock read per event would show in the profile.
///
/// On x86-64 with an invariant TSC (constant rate, running in every power state: cpuid
/// 0x80000007 EDX bit 8) a tick is one TSC count, read with `rdtsc` (about 11 ns on the
/// project's KVM guest, where `steady_clock::now()` costs about 30 ns through kvm-clock).
/// Elsewhere a tick is one nanosecond of `std::chrono::steady_clock`. Ticks are comparable
/// across threads of one process on such machines (the kernel keeps the TSCs synchronized or
/// does not call them invariant); convert a difference with nanoseconds().
class CycleClock {
public:
    /// The current tick.
    [[nodiscard]] static std::uint64_t now() noexcept {
#if RINGWORK_CYCLE_CLOCK_TSC
        if (tsc()) {
            return __rdtsc();
        }
#endif
        return static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    }
    /// Nanoseconds per tick. The TSC's rate is measured against steady_clock the first time
    /// (five 2 ms spans, once per process: construct what uses it at startup); 1 without a TSC.
    [[nodiscard]] static double ns_per_tick() noexcept;
    /// `ticks` as nanoseconds.
    [[nodiscard]] static std::uint64_t nanoseconds(std::uint64_t ticks) noexcept {
        return static_cast<std::uint64_t>(static_cast<double>(ticks) * ns_per_tick());
    }
    /// Whether ticks are TSC counts (else steady_clock nanoseconds).
    [[nodiscard]] static bool tsc() noexcept {
        static const bool invariant = detect_invariant_tsc();
        return invariant;
    }

private:
    static bool detect_invariant_tsc() noexcept;
};

} // namespace ringwork::runtime
