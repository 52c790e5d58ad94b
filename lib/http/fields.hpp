// SPDX-License-Identifier: MIT
// Response header and trailer fields a handler sets: the name is checked, the value made safe.
// On the hot path (every set_header): a table lookup per name byte, a word-wide scan of the value.
#pragma once

#include <ringwork/http/buffer.hpp>
#include <ringwork/http/response.hpp>

#include "http/chars.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace ringwork::http::detail {

inline constexpr CharTable kNotTchar = make_table([](unsigned c) { return !is_tchar(c); });

/// Whether `name` can be a field name: a token (RFC 9110 5.6.2), not empty.
[[nodiscard]] inline bool is_field_name(std::string_view name) noexcept {
    const char* p = name.data();
    const std::size_t n = name.size();
    unsigned bad = n == 0 ? 1U : 0U;
    std::size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        bad |= kNotTchar[static_cast<unsigned char>(p[i])] | kNotTchar[static_cast<unsigned char>(p[i + 1])] |
               kNotTchar[static_cast<unsigned char>(p[i + 2])] | kNotTchar[static_cast<unsigned char>(p[i + 3])];
    }
    for (; i < n; ++i) {
        bad |= kNotTchar[static_cast<unsigned char>(p[i])];
    }
    return bad == 0;
}

/// Throws std::invalid_argument: `what`, then `name` quoted and escaped, "is not a token".
[[noreturn, gnu::cold]] void throw_bad_field_name(std::string_view name, std::string_view what);

/// Throws (throw_bad_field_name) unless is_field_name(name): a CR, LF, colon or space in a
/// name would change the head's framing.
inline void check_field_name(std::string_view name, std::string_view what) {
    if (!is_field_name(name)) [[unlikely]] {
        throw_bad_field_name(name, what);
    }
}

/// Copies the `n` bytes at `src` to `dst` a word at a time (header names and values are
/// short: no call to memcpy) and says whether any is below 0x20 (a control character, HTAB
/// included): a word holds one iff (x - 0x20..20) & ~x & 0x80..80 != 0.
[[nodiscard]] inline bool copy_and_find_control(char* dst, const char* src, std::size_t n) noexcept {
    constexpr std::uint64_t k20 = 0x2020202020202020ULL;
    constexpr std::uint64_t k80 = 0x8080808080808080ULL;
    auto flags = [](std::uint64_t x) { return (x - k20) & ~x; };
    std::uint64_t acc = 0;
    if (n >= 8) {
        std::size_t i = 0;
        for (; i + 8 <= n; i += 8) {
            const std::uint64_t x = load64(src + i);
            std::memcpy(dst + i, &x, 8);
            acc |= flags(x);
        }
        if (i < n) { // the last 8 bytes, overlapping
            const std::uint64_t x = load64(src + n - 8);
            std::memcpy(dst + n - 8, &x, 8);
            acc |= flags(x);
        }
    } else if (n >= 4) { // two 4-byte words cover 4..7 bytes; the upper halves are SP
        const std::uint32_t x = load32(src);
        const std::uint32_t y = load32(src + n - 4);
        std::memcpy(dst, &x, 4);
        std::memcpy(dst + n - 4, &y, 4);
        acc = flags(std::uint64_t{x} | (k20 << 32)) | flags(std::uint64_t{y} | (k20 << 32));
    } else {
        for (std::size_t i = 0; i < n; ++i) {
            dst[i] = src[i];
            acc |= static_cast<unsigned char>(src[i]) < 0x20 ? k80 : 0;
        }
    }
    return (acc & k80) != 0;
}

/// A copy of `value` in `arena` with each CR, LF and NUL replaced by SP (RFC 9110 5.5: a
/// recipient must reject such a value or replace them with SP; Go's net/http and fasthttp
/// do the same when they write a header): a value taken from a request (a redirect to a
/// `next` query parameter, an echoed id) cannot end the field and add headers of its own, or
/// a whole second response. Other bytes, HTAB and obs-text included, are copied as they are.
[[nodiscard]] inline std::string_view copy_field_value(Arena& arena, std::string_view value) {
    if (value.empty()) {
        return {};
    }
    char* out = arena.allocate(value.size());
    if (copy_and_find_control(out, value.data(), value.size())) [[unlikely]] {
        for (std::size_t i = 0; i < value.size(); ++i) {
            if (out[i] == '\r' || out[i] == '\n' || out[i] == '\0') {
                out[i] = ' ';
            }
        }
    }
    return {out, value.size()};
}

/// The name a field keeps: a literal's own bytes (static storage, checked when compiled), a
/// copy in `arena` of any other (checked when its FieldName was made).
[[nodiscard]] inline std::string_view keep_field_name(Arena& arena, const FieldName& name) {
    if (name.literal()) {
        return name.view();
    }
    const std::string_view n = name.view();
    char* out = arena.allocate(n.size());
    (void)copy_and_find_control(out, n.data(), n.size());
    return {out, n.size()};
}

} // namespace ringwork::http::detail
