// SPDX-License-Identifier: MIT
// Feeds a chunked body to http::ChunkedDecoder in given pieces, checking every step's contract.
#pragma once

#include <ringwork/http/error.hpp>
#include <ringwork/http/parser.hpp>

#include "fuzz_support.hpp"

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace ringwork::fuzz {

/// \brief What decoding produced; equal for every split of the same bytes.
struct Decoded {
    std::string body;
    http::Error error = http::Error::none;
    bool done = false;
    /// Bytes of the input used (the rest belongs to the next request); 0 after an error.
    std::size_t consumed = 0;
    std::size_t trailer_bytes = 0;

    bool operator==(const Decoded&) const = default;
};

inline std::string show(const Decoded& d) {
    return "body=" + escape(d.body, 64) + " (" + std::to_string(d.body.size()) +
           " bytes) error=" + std::string(http::describe(d.error)) +
           " done=" + std::to_string(static_cast<int>(d.done)) +
           " consumed=" + std::to_string(d.consumed) +
           " trailer_bytes=" + std::to_string(d.trailer_bytes);
}

/// \brief Decodes `in` arriving in pieces ending at `ends` (see split_plan), as a connection
/// would: each step sees the unconsumed rest of what has arrived, in an exact-size heap copy.
/// Checks the contract of every step (progress, views inside the input, sticky errors and
/// done). When `reuse` is given it is reset() and used instead of a fresh decoder.
inline Decoded decode_chunked(std::string_view in, std::size_t max_trailer,
                              const std::vector<std::size_t>& ends,
                              http::ChunkedDecoder* reuse = nullptr) {
    http::ChunkedDecoder fresh(max_trailer);
    http::ChunkedDecoder& dec = reuse != nullptr ? *reuse : fresh;
    if (reuse != nullptr) {
        dec.reset();
    }
    Decoded out;
    std::size_t pos = 0; // consumed so far
    for (const std::size_t end : ends) {
        while (pos < end && !dec.done()) {
            ExactCopy piece(in.substr(pos, end - pos));
            const http::ChunkedDecoder::Step step = dec.feed(piece.view());
            if (step.error != http::Error::none) {
                FUZZ_CHECK(step.consumed == 0);
                FUZZ_CHECK(step.data.empty());
                FUZZ_CHECK(dec.failed());
                FUZZ_CHECK(!dec.done());
                const http::ChunkedDecoder::Step again = dec.feed(piece.view());
                FUZZ_CHECK(again.error == step.error && again.consumed == 0);
                out.error = step.error; // `consumed` stays 0: an error step consumes nothing
                out.trailer_bytes = dec.trailer_bytes();
                return out;
            }
            FUZZ_CHECK(!dec.failed());
            FUZZ_CHECK(step.consumed > 0); // progress whenever there are bytes and not done
            FUZZ_CHECK(step.consumed <= piece.size());
            FUZZ_CHECK(within(step.data, piece.data(), step.consumed));
            out.body += step.data;
            FUZZ_CHECK(dec.body_bytes() == out.body.size());
            pos += step.consumed;
        }
        if (!dec.done()) { // an empty read between pieces changes nothing
            const http::ChunkedDecoder::Step idle = dec.feed({});
            FUZZ_CHECK(idle.consumed == 0 && idle.data.empty() && idle.error == http::Error::none);
        }
    }
    out.done = dec.done();
    out.consumed = pos;
    out.trailer_bytes = dec.trailer_bytes();
    if (dec.done()) {
        const http::ChunkedDecoder::Step after = dec.feed("0\r\n\r\n");
        FUZZ_CHECK(after.consumed == 0 && after.data.empty() && after.error == http::Error::none);
        FUZZ_CHECK(dec.done());
    } else {
        FUZZ_CHECK(pos == in.size()); // not done: everything was consumed, waiting for more
    }
    return out;
}

} // namespace ringwork::fuzz
