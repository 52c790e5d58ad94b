// SPDX-License-Identifier: MIT
// Character-class tables (RFC 9110/9112/3986) and SIMD scans shared by the HTTP parser and decoder.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace ringwork::http::detail {

/// Unaligned native-order loads (memcpy: no aliasing or alignment assumptions).
inline std::uint32_t load32(const char* p) noexcept {
    std::uint32_t v = 0;
    std::memcpy(&v, p, sizeof v);
    return v;
}
inline std::uint64_t load64(const char* p) noexcept {
    std::uint64_t v = 0;
    std::memcpy(&v, p, sizeof v);
    return v;
}

/// \brief A 256-entry lookup table indexed by byte value.
using CharTable = std::array<std::uint8_t, 256>;

constexpr bool is_alpha(unsigned c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
constexpr bool is_digit(unsigned c) noexcept {
    return c >= '0' && c <= '9';
}

/// tchar (RFC 9110 5.6.2): "!#$%&'*+-.^_`|~", DIGIT, ALPHA.
constexpr bool is_tchar(unsigned c) noexcept {
    return is_alpha(c) || is_digit(c) ||
           std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

/// field-vchar / SP / HTAB (RFC 9110 5.5): VCHAR, obs-text (0x80-0xFF), SP, HTAB.
constexpr bool is_field_char(unsigned c) noexcept {
    return c == '\t' || (c >= 0x20 && c != 0x7F);
}

/// unreserved / sub-delims (RFC 3986 2.2-2.3): the bytes of a reg-name besides pct-encoded.
constexpr bool is_host_char(unsigned c) noexcept {
    return is_alpha(c) || is_digit(c) ||
           std::string_view("-._~!$&'()*+,;=").find(static_cast<char>(c)) != std::string_view::npos;
}

template <typename Pred>
constexpr CharTable make_table(Pred pred) noexcept {
    CharTable t{};
    for (unsigned c = 0; c < 256; ++c) {
        t[c] = pred(c) ? 1 : 0;
    }
    return t;
}

inline constexpr CharTable kTchar = make_table(is_tchar);
inline constexpr CharTable kFieldChar = make_table(is_field_char);
inline constexpr CharTable kHostChar = make_table(is_host_char);

/// Hex digit value, or 0xFF for a non-hex byte.
inline constexpr CharTable kHexValue = [] {
    CharTable t{};
    for (unsigned c = 0; c < 256; ++c) {
        t[c] = 0xFF;
        if (c >= '0' && c <= '9') {
            t[c] = static_cast<std::uint8_t>(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            t[c] = static_cast<std::uint8_t>(c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            t[c] = static_cast<std::uint8_t>(c - 'A' + 10);
        }
    }
    return t;
}();

constexpr unsigned char byte_at(const char* p) noexcept {
    return static_cast<unsigned char>(*p);
}

constexpr bool is_ows(char c) noexcept {
    return c == ' ' || c == '\t';
}

constexpr char ascii_lower(char c) noexcept {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

/// ASCII case-insensitive equality of two strings (header values, media types, codings).
constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (ascii_lower(a[i]) != ascii_lower(b[i])) {
            return false;
        }
    }
    return true;
}

constexpr bool istarts_with(std::string_view s, std::string_view prefix) noexcept {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

/// ASCII case-insensitive equality of `s` with `lower` (lower case letters, '-' and digits).
/// OR-ing 0x20 folds letters; no byte outside a token can fold onto those.
constexpr bool iequals(const char* s, std::size_t n, const char* lower,
                       std::size_t lower_n) noexcept {
    if (n != lower_n) {
        return false;
    }
    for (std::size_t i = 0; i < n; ++i) {
        if ((byte_at(s + i) | 0x20U) != byte_at(lower + i)) {
            return false;
        }
    }
    return true;
}

/// First CR or LF in [p, end), or end.
inline const char* find_cr_or_lf(const char* p, const char* end) noexcept {
#if defined(__SSE2__)
    const __m128i cr = _mm_set1_epi8('\r');
    const __m128i lf = _mm_set1_epi8('\n');
    while (end - p >= 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i_u*>(p));
        const int mask =
            _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf)));
        if (mask != 0) {
            return p + __builtin_ctz(static_cast<unsigned>(mask));
        }
        p += 16;
    }
#endif
    while (p != end && *p != '\r' && *p != '\n') {
        ++p;
    }
    return p;
}

/// First byte in [p, end) that may not appear in a field value (a CTL other than HTAB, or DEL),
/// or end. Field values end at their CR, which is such a byte.
inline const char* find_field_stop(const char* p, const char* end) noexcept {
#if defined(__SSE2__)
    const __m128i k1f = _mm_set1_epi8(0x1F);
    const __m128i tab = _mm_set1_epi8('\t');
    const __m128i del = _mm_set1_epi8(0x7F);
    while (end - p >= 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i_u*>(p));
        const __m128i ctl = _mm_cmpeq_epi8(_mm_min_epu8(v, k1f), v); // unsigned v <= 0x1F
        const __m128i bad =
            _mm_or_si128(_mm_andnot_si128(_mm_cmpeq_epi8(v, tab), ctl), _mm_cmpeq_epi8(v, del));
        const int mask = _mm_movemask_epi8(bad);
        if (mask != 0) {
            return p + __builtin_ctz(static_cast<unsigned>(mask));
        }
        p += 16;
    }
#endif
    while (p != end && kFieldChar[byte_at(p)] != 0) {
        ++p;
    }
    return p;
}

/// Request-target bytes that need no attention: visible ASCII but '?' (splits path and query)
/// and '#' (a fragment is never sent). SP ends the target; CTL, DEL and obs-text are errors.
constexpr bool is_target_plain(unsigned c) noexcept {
    return c > 0x20 && c < 0x7F && c != '?' && c != '#';
}
inline constexpr CharTable kTargetPlain = make_table(is_target_plain);

/// First byte in [p, end) that is not is_target_plain(), or end.
inline const char* find_target_stop(const char* p, const char* end) noexcept {
#if defined(__SSE2__)
    const __m128i k20 = _mm_set1_epi8(0x20);
    const __m128i k7f = _mm_set1_epi8(0x7F);
    const __m128i qmark = _mm_set1_epi8('?');
    const __m128i hash = _mm_set1_epi8('#');
    while (end - p >= 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i_u*>(p));
        // Signed compares: obs-text (0x80-0xFF) is negative, so not above 0x20.
        const __m128i visible = _mm_and_si128(_mm_cmpgt_epi8(v, k20), _mm_cmplt_epi8(v, k7f));
        const __m128i plain = _mm_andnot_si128(
            _mm_or_si128(_mm_cmpeq_epi8(v, qmark), _mm_cmpeq_epi8(v, hash)), visible);
        const auto mask = static_cast<unsigned>(_mm_movemask_epi8(plain)) ^ 0xFFFFU;
        if (mask != 0) {
            return p + __builtin_ctz(mask);
        }
        p += 16;
    }
#endif
    while (p != end && kTargetPlain[byte_at(p)] != 0) {
        ++p;
    }
    return p;
}

} // namespace ringwork::http::detail
