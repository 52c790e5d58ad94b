// SPDX-License-Identifier: MIT
// Counter: a statistic written by one thread and read by any.
#pragma once

#include <atomic>
#include <cstdint>

namespace ringwork::runtime {

/// \brief A statistic with a single writer (the reactor thread that owns it) and any number of
/// readers (stats(), a metrics scrape). The writer updates it with a relaxed load and a relaxed
/// store: no read-modify-write, no lock, on x86 the same instructions as a plain integer.
/// Readers load it relaxed: race-free (TSan-clean), each value exact, several counters read
/// together not a consistent snapshot. Two writers would lose updates: never share one.
class Counter {
public:
    constexpr Counter() noexcept = default;
    Counter(const Counter&) = delete;
    Counter& operator=(const Counter&) = delete;

    Counter& operator++() noexcept { return *this += 1; }
    Counter& operator--() noexcept { return *this -= 1; }
    Counter& operator+=(std::uint64_t n) noexcept {
        v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
        return *this;
    }
    Counter& operator-=(std::uint64_t n) noexcept {
        v_.store(v_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
        return *this;
    }
    Counter& operator=(std::uint64_t n) noexcept {
        v_.store(n, std::memory_order_relaxed);
        return *this;
    }
    [[nodiscard]] std::uint64_t load() const noexcept { return v_.load(std::memory_order_relaxed); }
    operator std::uint64_t() const noexcept { return load(); } // NOLINT(google-explicit-constructor)

private:
    std::atomic<std::uint64_t> v_{0};
};

} // namespace ringwork::runtime
