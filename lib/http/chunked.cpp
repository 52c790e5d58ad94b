// SPDX-License-Identifier: MIT
// ChunkedDecoder: a resumable byte-level state machine over the chunked transfer coding (RFC
// 9112 7.1).
#include <ringwork/http/parser.hpp>

#include "http/chars.hpp"

#include <algorithm>

namespace ringwork::http {

namespace {

using detail::byte_at;
using detail::is_ows;
using detail::kFieldChar;
using detail::kHexValue;
using detail::kTchar;

constexpr std::size_t kMaxSizeDigits = 16;
constexpr std::uint64_t kMaxChunkSize = std::uint64_t{1} << 63;

} // namespace

void ChunkedDecoder::reset() noexcept {
    state_ = State::size;
    error_ = Error::none;
    remaining_ = 0;
    total_ = 0;
    size_digits_ = 0;
    ext_bytes_ = 0;
    trailer_bytes_ = 0;
}

ChunkedDecoder::Step ChunkedDecoder::feed(std::string_view in) noexcept {
    const char* const begin = in.data();
    const char* const end = begin + in.size();
    const char* p = begin;
    const auto fail = [&](Error e) noexcept {
        state_ = State::failed;
        error_ = e;
        return Step{0, {}, e};
    };
    const auto consumed = [&] { return static_cast<std::size_t>(p - begin); };

    while (p != end) {
        const char c = *p;
        switch (state_) {
        case State::size: {
            const unsigned d = kHexValue[byte_at(p)];
            if (d <= 0xF) {
                if (size_digits_ == kMaxSizeDigits) {
                    return fail(Error::bad_chunk);
                }
                ++size_digits_;
                remaining_ = remaining_ << 4 | d;
                if (remaining_ > kMaxChunkSize || remaining_ > ~std::uint64_t{0} - total_) {
                    return fail(Error::bad_chunk);
                }
                ++p;
                break;
            }
            if (size_digits_ == 0) {
                return fail(Error::bad_chunk);
            }
            if (c == '\r') {
                state_ = State::size_lf;
            } else if (is_ows(c)) {
                state_ = State::size_ws;
            } else if (c == ';') {
                state_ = State::size_ext;
            } else {
                return fail(
                    Error::bad_chunk); // bare LF, or a byte that is neither digit nor extension
            }
            if (c != '\r' && ++ext_bytes_ > kMaxExtensionBytes) {
                return fail(Error::chunk_extensions_too_long);
            }
            ++p;
            break;
        }
        case State::size_ws:
            if (c == ';') {
                state_ = State::size_ext;
            } else if (!is_ows(c)) {
                return fail(Error::bad_chunk); // BWS may only precede ';'
            }
            if (++ext_bytes_ > kMaxExtensionBytes) {
                return fail(Error::chunk_extensions_too_long);
            }
            ++p;
            break;
        case State::size_ext:
            if (c == '\r') {
                state_ = State::size_lf;
            } else if (kFieldChar[byte_at(p)] == 0) {
                return fail(Error::bad_chunk);
            } else if (++ext_bytes_ > kMaxExtensionBytes) {
                return fail(Error::chunk_extensions_too_long);
            }
            ++p;
            break;
        case State::size_lf:
            if (c != '\n') {
                return fail(Error::bad_chunk);
            }
            ++p;
            size_digits_ = 0;
            if (remaining_ == 0) {
                state_ = State::trailer_line_start;
                break;
            }
            state_ = State::data;
            [[fallthrough]];
        case State::data: {
            const auto avail = static_cast<std::uint64_t>(end - p);
            if (avail == 0) {
                return {consumed(), {}, Error::none};
            }
            const auto n = static_cast<std::size_t>(std::min(remaining_, avail));
            const std::string_view data(p, n);
            p += n;
            remaining_ -= n;
            total_ += n;
            if (remaining_ == 0) {
                state_ = State::data_cr;
            }
            return {consumed(), data, Error::none}; // at most one data piece per call
        }
        case State::data_cr:
            if (c != '\r') {
                return fail(Error::bad_chunk);
            }
            state_ = State::data_lf;
            ++p;
            break;
        case State::data_lf:
            if (c != '\n') {
                return fail(Error::bad_chunk);
            }
            state_ = State::size;
            ++p;
            break;
        case State::trailer_line_start:
            if (c == '\r') {
                state_ = State::final_lf;
                ++p;
                break;
            }
            if (kTchar[byte_at(p)] == 0) {
                return fail(Error::bad_trailer); // bare LF, obs-fold, empty name
            }
            state_ = State::trailer_name;
            [[fallthrough]];
        case State::trailer_name:
            if (c == ':') {
                state_ = State::trailer_value;
            } else if (kTchar[byte_at(p)] == 0) {
                return fail(Error::bad_trailer); // whitespace before ':', no ':' at all
            }
            if (++trailer_bytes_ > max_trailer_) {
                return fail(Error::trailers_too_large);
            }
            ++p;
            break;
        case State::trailer_value:
            if (c == '\r') {
                state_ = State::trailer_lf;
            } else if (kFieldChar[byte_at(p)] == 0) {
                return fail(Error::bad_trailer);
            }
            if (++trailer_bytes_ > max_trailer_) {
                return fail(Error::trailers_too_large);
            }
            ++p;
            break;
        case State::trailer_lf:
            if (c != '\n') {
                return fail(Error::bad_trailer);
            }
            if (++trailer_bytes_ > max_trailer_) {
                return fail(Error::trailers_too_large);
            }
            state_ = State::trailer_line_start;
            ++p;
            break;
        case State::final_lf:
            if (c != '\n') {
                return fail(Error::bad_trailer);
            }
            state_ = State::done;
            ++p;
            return {consumed(), {}, Error::none};
        case State::done:
            return {consumed(), {}, Error::none};
        case State::failed:
            return {0, {}, error_};
        }
    }
    if (state_ == State::failed) {
        return {0, {}, error_};
    }
    return {consumed(), {}, Error::none};
}

} // namespace ringwork::http
