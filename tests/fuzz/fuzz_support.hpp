// SPDX-License-Identifier: MIT
// Shared helpers of the libFuzzer targets: the input header, split plans, exact-size copies,
// checks that abort (so libFuzzer saves the input) and reference decoders.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ringwork::fuzz {

/// \brief Reports a broken invariant and aborts: libFuzzer turns the abort into a crash report
/// and saves the input as crash-<sha1>.
[[noreturn]] inline void check_failed(const char* expr, const char* file, int line,
                                      const std::string& detail) {
    std::fprintf(stderr, "%s:%d: FUZZ_CHECK(%s) failed%s%s\n", file, line, expr,
                 detail.empty() ? "" : ": ", detail.c_str());
    std::fflush(stderr);
    std::abort();
}

// NOTE: macros, not functions, so the report names the condition and the line that broke.
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            ::ringwork::fuzz::check_failed(#cond, __FILE__, __LINE__, {});                         \
        }                                                                                          \
    } while (false)
#define FUZZ_CHECK_MSG(cond, detail)                                                               \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            ::ringwork::fuzz::check_failed(#cond, __FILE__, __LINE__, (detail));                   \
        }                                                                                          \
    } while (false)

/// \brief Bytes every input starts with: one byte of flags (what each target configures with
/// them is in its header comment), then a little-endian 32-bit seed for the split plan.
inline constexpr std::size_t kHeaderSize = 5;

/// \brief A fuzz input split into its header and its payload (a view of the input).
struct Input {
    std::uint8_t flags = 0;
    std::uint32_t seed = 0;
    std::string_view payload;
};

/// \brief Reads the header; nullopt when the input is shorter than it.
inline std::optional<Input> read_input(const std::uint8_t* data, std::size_t size) noexcept {
    if (size < kHeaderSize) {
        return std::nullopt;
    }
    Input in;
    in.flags = data[0];
    in.seed = static_cast<std::uint32_t>(data[1]) | static_cast<std::uint32_t>(data[2]) << 8 |
              static_cast<std::uint32_t>(data[3]) << 16 | static_cast<std::uint32_t>(data[4]) << 24;
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): libFuzzer hands out bytes
    in.payload = {reinterpret_cast<const char*>(data) + kHeaderSize, size - kHeaderSize};
    return in;
}

/// \brief splitmix64: a tiny deterministic generator, so an input always means the same run.
class Rng {
public:
    explicit Rng(std::uint64_t seed) noexcept
        : state_(seed) {}
    std::uint64_t next() noexcept {
        std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
    }
    /// A value in [0, n) (0 when n is 0).
    std::size_t below(std::size_t n) noexcept {
        return n == 0 ? 0 : static_cast<std::size_t>(next() % n);
    }

private:
    std::uint64_t state_;
};

/// \brief How `n` bytes arrive: the end offset of each piece, increasing, the last one `n`.
///
/// The low two bits of `seed` pick the shape: 0 all at once; 1 one byte at a time (random
/// pieces past kMaxBytewise bytes, to bound the quadratic cost of re-feeding prefixes); 2 up to
/// 64 random pieces; 3 two pieces cut where the rest of the seed says.
inline std::vector<std::size_t> split_plan(std::size_t n, std::uint32_t seed) {
    constexpr std::size_t kMaxBytewise = 512;
    constexpr std::size_t kMaxCuts = 63;
    std::vector<std::size_t> ends;
    const unsigned shape = seed & 3U;
    if (n == 0 || shape == 0) {
        ends.push_back(n);
        return ends;
    }
    if (shape == 1 && n <= kMaxBytewise) {
        for (std::size_t i = 1; i <= n; ++i) {
            ends.push_back(i);
        }
        return ends;
    }
    if (shape == 3) {
        const std::size_t cut = (seed >> 2) % n; // 0: an empty first piece
        ends.push_back(cut);
        ends.push_back(n);
        return ends;
    }
    Rng rng(seed ^ (static_cast<std::uint64_t>(n) << 32));
    const std::size_t cuts = 1 + rng.below(std::min(n, kMaxCuts));
    for (std::size_t i = 0; i < cuts; ++i) {
        ends.push_back(rng.below(n)); // may repeat: an empty piece, which must be harmless
    }
    std::sort(ends.begin(), ends.end());
    ends.push_back(n);
    return ends;
}

/// \brief A heap copy of exactly the given bytes, so ASan reports any access past them.
class ExactCopy {
public:
    explicit ExactCopy(std::string_view bytes)
        : data_(std::make_unique<char[]>(bytes.size()))
        , size_(bytes.size()) {
        if (size_ != 0) {
            std::memcpy(data_.get(), bytes.data(), size_);
        }
    }
    [[nodiscard]] char* data() noexcept { return data_.get(); }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] std::span<char> span() noexcept { return {data_.get(), size_}; }
    [[nodiscard]] std::string_view view() const noexcept { return {data_.get(), size_}; }

private:
    std::unique_ptr<char[]> data_;
    std::size_t size_;
};

/// \brief Whether `v` is empty or lies within [base, base + size).
inline bool within(std::string_view v, const char* base, std::size_t size) noexcept {
    if (v.empty()) {
        return true;
    }
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): comparing unrelated pointers
    const auto p = reinterpret_cast<std::uintptr_t>(v.data());
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast)
    const auto b = reinterpret_cast<std::uintptr_t>(base);
    return p >= b && p - b <= size && v.size() <= size - (p - b);
}

/// \brief Offset of a view inside [base, ...) as text ("-" for an empty view, whose data
/// pointer is unspecified), for outcome strings that must not depend on where the buffer is.
inline std::string offset_of(std::string_view v, const char* base) {
    if (v.empty()) {
        return "-";
    }
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast)
    const auto p = reinterpret_cast<std::uintptr_t>(v.data());
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast)
    const auto b = reinterpret_cast<std::uintptr_t>(base);
    return std::to_string(p - b) + "+" + std::to_string(v.size());
}

/// \brief Printable form of arbitrary bytes for check messages.
inline std::string escape(std::string_view s, std::size_t max = 200) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < s.size() && i < max; ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c == '\\') {
            out += "\\\\";
        } else if (c >= 0x20 && c < 0x7F) {
            out += static_cast<char>(c);
        } else {
            out += "\\x";
            out += kHex[c >> 4];
            out += kHex[c & 0xF];
        }
    }
    if (s.size() > max) {
        out += "...";
    }
    return out;
}

/// \brief Hex digit value, or -1.
constexpr int hex_digit(char c) noexcept {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/// \brief The byte of a valid, non-NUL escape `%XX` at s[i]; -1 when there is none.
inline int escape_at(std::string_view s, std::size_t i) noexcept {
    if (s[i] != '%' || s.size() - i < 3) {
        return -1;
    }
    const int hi = hex_digit(s[i + 1]);
    const int lo = hex_digit(s[i + 2]);
    if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
        return -1;
    }
    return hi << 4 | lo;
}

/// \brief Reference for http::percent_decode: nullopt for an invalid escape or %00.
inline std::optional<std::string> reference_percent_decode(std::string_view in, bool plus) {
    std::string out;
    for (std::size_t i = 0; i < in.size();) {
        if (in[i] == '%') {
            const int e = escape_at(in, i);
            if (e < 0) {
                return std::nullopt;
            }
            out += static_cast<char>(e);
            i += 3;
        } else {
            out += plus && in[i] == '+' ? ' ' : in[i];
            ++i;
        }
    }
    return out;
}

/// \brief Reference for a form / query component: '+' is a space, valid non-NUL escapes are
/// decoded and anything else (invalid escapes, %00) is kept as it is.
inline std::string reference_form_decode(std::string_view in) {
    std::string out;
    for (std::size_t i = 0; i < in.size();) {
        const int e = escape_at(in, i);
        if (e >= 0) {
            out += static_cast<char>(e);
            i += 3;
        } else {
            out += in[i] == '+' ? ' ' : in[i];
            ++i;
        }
    }
    return out;
}

/// \brief Splits `s` at every `sep` (empty pieces kept).
inline std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> out;
    for (;;) {
        const std::size_t at = s.find(sep);
        out.push_back(s.substr(0, at));
        if (at == std::string_view::npos) {
            return out;
        }
        s.remove_prefix(at + 1);
    }
}

} // namespace ringwork::fuzz
