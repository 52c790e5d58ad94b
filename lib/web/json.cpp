// SPDX-License-Identifier: MIT
// The non-template half of the JSON writer: strings (escaping and UTF-8 repair as nlohmann's
// replace mode), integers and doubles (nlohmann's own grisu2), appended to a ByteBuffer.
#include <ringwork/web/json.hpp>

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>

namespace ringwork::web::detail {
namespace {

// 0: copied as is (printable ASCII except '"' and '\\'); 1: needs an escape; 2: UTF-8 lead or
// stray byte (validated by utf8_prefix).
constexpr std::array<std::uint8_t, 256> kClass = [] {
    std::array<std::uint8_t, 256> table{};
    for (std::size_t c = 0; c < 0x20; ++c) {
        table[c] = 1;
    }
    table['"'] = 1;
    table['\\'] = 1;
    for (std::size_t c = 0x80; c < 0x100; ++c) {
        table[c] = 2;
    }
    return table;
}();

constexpr char kHex[] = "0123456789abcdef";

/// Bytes of the well-formed UTF-8 prefix starting at `p` (the same acceptance as nlohmann's
/// Hoehrmann decoder, i.e. Unicode's table 3-7): the full sequence length when it is complete and
/// valid, otherwise how many leading bytes were still acceptable (0 for a byte that cannot start
/// a sequence). `*valid` says which case it is.
std::size_t utf8_prefix(const unsigned char* p, const unsigned char* end, bool* valid) noexcept {
    const unsigned char lead = *p;
    std::size_t length = 0;
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
        length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        length = 3;
        lo = lead == 0xE0 ? 0xA0 : 0x80; // no overlongs
        hi = lead == 0xED ? 0x9F : 0xBF; // no surrogates
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        length = 4;
        lo = lead == 0xF0 ? 0x90 : 0x80; // no overlongs
        hi = lead == 0xF4 ? 0x8F : 0xBF; // nothing above U+10FFFF
    } else {
        *valid = false; // 80..C1 and F5..FF never start a sequence
        return 0;
    }
    for (std::size_t i = 1; i < length; ++i) {
        if (p + i == end || p[i] < lo || p[i] > hi) {
            *valid = false;
            return i;
        }
        lo = 0x80;
        hi = 0xBF;
    }
    *valid = true;
    return length;
}

/// Whether any of the 8 bytes in `word` needs a look (< 0x20, '"', '\\' or >= 0x80). Never
/// misses one (a borrow can also flag a clean byte above a flagged one: harmless, the byte loop
/// then looks at it).
constexpr bool word_needs_look(std::uint64_t word) noexcept {
    constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
    constexpr std::uint64_t kHigh = 0x8080808080808080ULL;
    const std::uint64_t below_space = (word - kOnes * 0x20) & ~word;
    const std::uint64_t quote = word ^ (kOnes * '"');
    const std::uint64_t backslash = word ^ (kOnes * '\\');
    const std::uint64_t has_quote = (quote - kOnes) & ~quote;
    const std::uint64_t has_backslash = (backslash - kOnes) & ~backslash;
    return ((below_space | has_quote | has_backslash | word) & kHigh) != 0;
}

void append_escape(http::ByteBuffer& out, unsigned char c) {
    char* dst = out.prepare(6);
    dst[0] = '\\';
    switch (c) {
    case '"':
        dst[1] = '"';
        break;
    case '\\':
        dst[1] = '\\';
        break;
    case '\b':
        dst[1] = 'b';
        break;
    case '\f':
        dst[1] = 'f';
        break;
    case '\n':
        dst[1] = 'n';
        break;
    case '\r':
        dst[1] = 'r';
        break;
    case '\t':
        dst[1] = 't';
        break;
    default: // other control characters: \u00xx with lowercase hex, like nlohmann's "\\u%04x"
        dst[1] = 'u';
        dst[2] = '0';
        dst[3] = '0';
        dst[4] = kHex[c >> 4U];
        dst[5] = kHex[c & 0xFU];
        out.commit(6);
        return;
    }
    out.commit(2);
}

} // namespace

void write_json_string(http::ByteBuffer& out, std::string_view s) {
    // Most strings need no escape at all: one reservation covers quotes and text.
    out.reserve(out.size() + s.size() + 2);
    out.append('"');
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const auto* const end = p + s.size();
    const unsigned char* run = p; // start of the bytes not yet copied (all clean)
    while (p != end) {
        // Skip clean 8-byte words quickly, then classify byte by byte.
        while (end - p >= 8) {
            std::uint64_t word = 0;
            std::memcpy(&word, p, sizeof word);
            if (word_needs_look(word)) {
                break;
            }
            p += 8;
        }
        if (p == end) {
            break;
        }
        const std::uint8_t cls = kClass[*p];
        if (cls == 0) {
            ++p;
            continue;
        }
        if (cls == 2) {
            bool valid = false;
            const std::size_t n = utf8_prefix(p, end, &valid);
            if (valid) {
                p += n; // well-formed multi-byte character: copied as is with the run
                continue;
            }
            // nlohmann's replace mode: one U+FFFD for the invalid lead byte or for the still
            // acceptable prefix; the byte that broke the sequence is looked at again.
            out.append(std::string_view(reinterpret_cast<const char*>(run),
                                        static_cast<std::size_t>(p - run)));
            out.append(std::string_view("\xEF\xBF\xBD"));
            p += n == 0 ? 1 : n;
            run = p;
            continue;
        }
        out.append(std::string_view(reinterpret_cast<const char*>(run),
                                    static_cast<std::size_t>(p - run)));
        append_escape(out, *p);
        ++p;
        run = p;
    }
    out.append(
        std::string_view(reinterpret_cast<const char*>(run), static_cast<std::size_t>(end - run)));
    out.append('"');
}

void write_json_double(http::ByteBuffer& out, double value) {
    if (!std::isfinite(value)) {
        out.append(std::string_view("null")); // as nlohmann's serializer
        return;
    }
    // The very function nlohmann's serializer calls, with a buffer of the same size (64).
    std::array<char, 64> buffer{};
    const char* last =
        nlohmann::detail::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
    out.append(std::string_view(buffer.data(), static_cast<std::size_t>(last - buffer.data())));
}

void write_json_int(http::ByteBuffer& out, std::int64_t value) {
    constexpr std::size_t kMax = 20; // "-9223372036854775808"
    char* dst = out.prepare(kMax);
    const auto result = std::to_chars(dst, dst + kMax, value);
    out.commit(static_cast<std::size_t>(result.ptr - dst));
}

void write_json_uint(http::ByteBuffer& out, std::uint64_t value) {
    constexpr std::size_t kMax = 20; // "18446744073709551615"
    char* dst = out.prepare(kMax);
    const auto result = std::to_chars(dst, dst + kMax, value);
    out.commit(static_cast<std::size_t>(result.ptr - dst));
}

void throw_json_too_deep() {
    throw std::length_error("ringwork: write_json: a value is nested deeper than " + std::to_string(kMaxJsonDepth) +
                            " levels (web::kMaxJsonDepth)");
}

} // namespace ringwork::web::detail

namespace ringwork::web {

bool json_nesting_within(std::string_view text, std::size_t limit) noexcept {
    std::size_t depth = 0;
    const char* p = text.data();
    const char* const end = p + text.size();
    while (p != end) {
        switch (*p++) {
        case '"':
            // Skip the string: its brackets are data. An escape hides the byte after it.
            while (p != end) {
                const char ch = *p++;
                if (ch == '"') {
                    break;
                }
                if (ch == '\\' && p != end) {
                    ++p;
                }
            }
            break;
        case '[':
        case '{':
            if (++depth > limit) {
                return false;
            }
            break;
        case ']':
        case '}':
            depth -= depth != 0 ? 1 : 0;
            break;
        default:
            break;
        }
    }
    return true;
}

} // namespace ringwork::web
