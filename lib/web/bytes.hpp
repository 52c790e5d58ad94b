// SPDX-License-Identifier: MIT
// same_bytes(): equality of two short byte ranges by word loads (the router's label compares).
#pragma once

#include "http/chars.hpp"

#include <cstddef>

namespace ringwork::web::detail {

using http::detail::load32;
using http::detail::load64;

/// Whether [a, a + n) and [b, b + n) hold the same bytes. Labels and segments are a few bytes,
/// where a libc memcmp call costs more than the comparison, and a byte loop more than word
/// loads: the tail is one more load overlapping the previous one (every load stays inside the
/// n bytes, so n == 0 reads nothing).
inline bool same_bytes(const char* a, const char* b, std::size_t n) noexcept {
    if (n >= 8) {
        for (std::size_t i = 0; i < n - 8; i += 8) {
            if (load64(a + i) != load64(b + i)) {
                return false;
            }
        }
        return load64(a + n - 8) == load64(b + n - 8);
    }
    if (n >= 4) {
        return load32(a) == load32(b) && load32(a + n - 4) == load32(b + n - 4);
    }
    if (n == 0) {
        return true;
    }
    // 1 to 3 bytes: positions 0, n / 2 and n - 1 cover them all.
    return a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1];
}

} // namespace ringwork::web::detail
