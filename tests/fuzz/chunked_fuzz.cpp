// SPDX-License-Identifier: MIT
// libFuzzer target: http::ChunkedDecoder fed whole and in random splits, against a reference.
//
// Input: flags, a 32-bit split seed (see fuzz_support.hpp), then the chunked body.
// flags bits 0-1: trailer limit 8192 / 64 / 1 / 0 bytes; bit 2: decode with a decoder that
// was used before (reset() must forget everything).
#include <ringwork/http/error.hpp>
#include <ringwork/http/parser.hpp>

#include "chunked_check.hpp"
#include "fuzz_support.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

namespace http = ringwork::http;
namespace fz = ringwork::fuzz;

enum class RefStatus : std::uint8_t { done, incomplete, error };

/// What the reference made of a body: the same grammar as ChunkedDecoder's documentation,
/// written as one straight pass over the whole input.
struct RefResult {
    RefStatus status = RefStatus::incomplete;
    std::string body;
    std::size_t consumed = 0;
};

bool is_tchar(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_field_char(char c) {
    const auto b = static_cast<unsigned char>(c);
    return b == '\t' || (b >= 0x20 && b != 0x7F);
}

bool is_ows(char c) {
    return c == ' ' || c == '\t';
}

RefResult reference_decode(std::string_view s, std::size_t max_trailer) {
    constexpr std::size_t kMaxDigits = 16;
    constexpr std::uint64_t kMaxChunk = std::uint64_t{1} << 63;
    RefResult r;
    std::size_t i = 0;
    std::size_t ext = 0;
    const auto error = [&r] {
        r.status = RefStatus::error;
        return r;
    };
    const auto incomplete = [&r] {
        r.status = RefStatus::incomplete;
        return r;
    };
    for (;;) {
        std::uint64_t size = 0;
        std::size_t digits = 0;
        for (; i < s.size() && fz::hex_digit(s[i]) >= 0; ++i) {
            if (digits == kMaxDigits) {
                return error();
            }
            size = size << 4 | static_cast<std::uint64_t>(fz::hex_digit(s[i]));
            if (size > kMaxChunk) {
                return error();
            }
            ++digits;
        }
        if (i == s.size()) {
            return incomplete();
        }
        if (digits == 0) {
            return error();
        }
        // [BWS] ';' extension bytes up to CR; each of these bytes counts against the limit.
        if (s[i] != '\r') {
            bool in_ext = false;
            for (;;) {
                const char c = s[i];
                if (in_ext) {
                    if (c == '\r') {
                        break;
                    }
                    if (!is_field_char(c)) {
                        return error();
                    }
                } else if (c == ';') {
                    in_ext = true;
                } else if (!is_ows(c)) {
                    return error(); // CR after BWS too: BWS may only precede ';'
                }
                if (++ext > http::ChunkedDecoder::kMaxExtensionBytes) {
                    return error();
                }
                if (++i == s.size()) {
                    return incomplete();
                }
            }
        }
        if (++i == s.size()) { // the CR
            return incomplete();
        }
        if (s[i++] != '\n') {
            return error();
        }
        if (size == 0) {
            break;
        }
        const std::size_t avail = s.size() - i;
        if (avail < size) {
            r.body += s.substr(i);
            return incomplete();
        }
        const auto n = static_cast<std::size_t>(size);
        r.body += s.substr(i, n);
        i += n;
        for (const char want : {'\r', '\n'}) {
            if (i == s.size()) {
                return incomplete();
            }
            if (s[i++] != want) {
                return error();
            }
        }
    }
    // Trailer section: `token ":" field-chars CRLF`*, then CRLF.
    std::size_t trailer = 0;
    for (;;) {
        if (i == s.size()) {
            return incomplete();
        }
        if (s[i] == '\r') {
            if (++i == s.size()) {
                return incomplete();
            }
            if (s[i++] != '\n') {
                return error();
            }
            r.status = RefStatus::done;
            r.consumed = i;
            return r;
        }
        if (!is_tchar(s[i])) {
            return error();
        }
        for (;; ++i) { // name, then ':'
            if (i == s.size()) {
                return incomplete();
            }
            if (s[i] != ':' && !is_tchar(s[i])) {
                return error();
            }
            if (++trailer > max_trailer) {
                return error();
            }
            if (s[i] == ':') {
                ++i;
                break;
            }
        }
        for (;; ++i) { // value, then CR
            if (i == s.size()) {
                return incomplete();
            }
            if (s[i] != '\r' && !is_field_char(s[i])) {
                return error();
            }
            if (++trailer > max_trailer) {
                return error();
            }
            if (s[i] == '\r') {
                ++i;
                break;
            }
        }
        if (i == s.size()) {
            return incomplete();
        }
        if (s[i++] != '\n' || ++trailer > max_trailer) {
            return error();
        }
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto input = fz::read_input(data, size);
    if (!input) {
        return 0;
    }
    static constexpr std::array<std::size_t, 4> kTrailerLimits = {8192, 64, 1, 0};
    const std::size_t max_trailer = kTrailerLimits[input->flags & 3U];
    const std::string_view body = input->payload;

    const fz::Decoded whole = fz::decode_chunked(body, max_trailer, {body.size()});
    const fz::Decoded split =
        fz::decode_chunked(body, max_trailer, fz::split_plan(body.size(), input->seed));
    FUZZ_CHECK_MSG(whole == split, "whole: " + fz::show(whole) + "\nsplit: " + fz::show(split));

    if ((input->flags & 4U) != 0) {
        http::ChunkedDecoder used(max_trailer);
        const std::string_view tail = body.substr(body.size() / 2);
        (void)fz::decode_chunked(tail, max_trailer, {tail.size()}, &used);
        const fz::Decoded again = fz::decode_chunked(body, max_trailer, {body.size()}, &used);
        FUZZ_CHECK_MSG(again == whole, "after reset: " + fz::show(again));
    }

    const RefResult ref = reference_decode(body, max_trailer);
    const std::string expected = ref.status == RefStatus::error
                                     ? "error"
                                     : (ref.status == RefStatus::done ? "done" : "incomplete");
    const std::string got =
        whole.error != http::Error::none ? "error" : (whole.done ? "done" : "incomplete");
    FUZZ_CHECK_MSG(got == expected, "decoder: " + fz::show(whole) + "\nreference: " + expected +
                                        " body=" + fz::escape(ref.body, 64));
    if (ref.status != RefStatus::error) {
        FUZZ_CHECK_MSG(whole.body == ref.body, "decoder: " + fz::show(whole));
    }
    if (ref.status == RefStatus::done) {
        FUZZ_CHECK_MSG(whole.consumed == ref.consumed, "decoder: " + fz::show(whole) +
                                                           " reference consumed " +
                                                           std::to_string(ref.consumed));
    }
    return 0;
}
