// SPDX-License-Identifier: MIT
// Unit tests for ChunkedDecoder: framing, extensions, trailers, limits, and every way to split a
// body.
#include <ringwork/http/error.hpp>
#include <ringwork/http/parser.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <doctest/doctest.h>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace http = ringwork::http;
using http::ChunkedDecoder;
using http::Error;
using namespace std::string_literals;

namespace {

/// What decoding produced: the body, the error (none when done), the bytes left unconsumed.
struct Decoded {
    std::string body;
    Error error = Error::none;
    bool done = false;
    std::size_t leftover = 0;
    std::size_t trailer_bytes = 0;

    bool operator==(const Decoded&) const = default;
};

std::string show(const Decoded& d) {
    return "body=" + d.body + " error=" + std::string(http::describe(d.error)) +
           " done=" + std::to_string(d.done) + " leftover=" + std::to_string(d.leftover) +
           " trailer_bytes=" + std::to_string(d.trailer_bytes);
}

/// Feeds `pieces` in order, as a connection would: each piece appended to what was left
/// unconsumed, copied into an exact-size heap buffer (ASan sees any over-read). Checks that
/// every step makes progress and yields at most one data view inside its input.
Decoded decode(const std::vector<std::string_view>& pieces, std::size_t max_trailer = 8192) {
    ChunkedDecoder dec(max_trailer);
    Decoded out;
    std::string pending;
    for (const std::string_view piece : pieces) {
        pending += piece;
        while (!pending.empty() && !dec.done()) {
            const auto buf = std::make_unique<char[]>(pending.size());
            std::memcpy(buf.get(), pending.data(), pending.size());
            const std::string_view in(buf.get(), pending.size());
            const ChunkedDecoder::Step step = dec.feed(in);
            if (step.error != Error::none) {
                CHECK(step.consumed == 0);
                CHECK(dec.failed());
                out.error = step.error;
                out.body += "<partial>";
                return out;
            }
            REQUIRE(step.consumed > 0); // progress whenever there are bytes and it is not done
            REQUIRE(step.consumed <= in.size());
            if (!step.data.empty()) {
                CHECK(step.data.data() >= in.data());
                CHECK(step.data.data() + step.data.size() <= in.data() + step.consumed);
                out.body += step.data;
            }
            CHECK(dec.body_bytes() == out.body.size());
            pending.erase(0, step.consumed);
        }
    }
    out.done = dec.done();
    out.leftover = pending.size();
    out.trailer_bytes = dec.trailer_bytes();
    if (dec.done()) {
        CHECK(dec.body_bytes() == out.body.size());
        const ChunkedDecoder::Step after = dec.feed("more");
        CHECK(after.consumed == 0);
        CHECK(after.error == Error::none);
    }
    return out;
}

Decoded decode_whole(std::string_view wire, std::size_t max_trailer = 8192) {
    return decode({wire}, max_trailer);
}

/// Decodes `wire` whole, split at every point, byte by byte and in random pieces: all equal.
Decoded decode_all_ways(std::string_view wire, std::size_t max_trailer = 8192) {
    INFO("wire: " << std::string(wire));
    const Decoded whole = decode_whole(wire, max_trailer);
    for (std::size_t k = 0; k <= wire.size(); ++k) {
        INFO("split at " << k);
        const Decoded d = decode({wire.substr(0, k), wire.substr(k)}, max_trailer);
        CHECK(show(d) == show(whole));
    }
    std::vector<std::string_view> bytes;
    for (std::size_t i = 0; i < wire.size(); ++i) {
        bytes.push_back(wire.substr(i, 1));
    }
    CHECK(show(decode(bytes, max_trailer)) == show(whole));
    std::mt19937 rng(12345);
    for (int round = 0; round < 50; ++round) {
        std::vector<std::string_view> pieces;
        std::size_t at = 0;
        while (at < wire.size()) {
            const std::size_t n = std::min<std::size_t>(wire.size() - at, rng() % 7 + 1);
            pieces.push_back(wire.substr(at, n));
            at += n;
        }
        CHECK(show(decode(pieces, max_trailer)) == show(whole));
    }
    return whole;
}

Error error_of(std::string_view wire, std::size_t max_trailer = 8192) {
    const Decoded d = decode_all_ways(wire, max_trailer);
    INFO(show(d));
    CHECK_FALSE(d.done);
    return d.error;
}

std::string body_of(std::string_view wire) {
    const Decoded d = decode_all_ways(wire);
    INFO(show(d));
    CHECK(d.done);
    CHECK(d.error == Error::none);
    return d.body;
}

} // namespace

TEST_SUITE("http.chunked") {

    TEST_CASE("simple bodies") {
        CHECK(body_of("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n") == "hello world");
        CHECK(body_of("0\r\n\r\n").empty());
        CHECK(body_of("1\r\nx\r\n0\r\n\r\n") == "x");
        CHECK(body_of("A\r\n0123456789\r\n0\r\n\r\n") == "0123456789");
        CHECK(body_of("a\r\n0123456789\r\n0\r\n\r\n") == "0123456789");
        CHECK(body_of("000003\r\nabc\r\n000\r\n\r\n") == "abc");
        CHECK(body_of("4\r\n\r\n\0\xFF\r\n0\r\n\r\n"s) == "\r\n\0\xFF"s); // data is opaque
    }

    TEST_CASE("a large chunk arrives in several data pieces") {
        const std::string data(100000, 'z');
        const std::string wire = "186a0\r\n" + data + "\r\n0\r\n\r\n";
        const Decoded d = decode_whole(wire);
        CHECK(d.done);
        CHECK(d.body == data);

        ChunkedDecoder dec;
        const ChunkedDecoder::Step s1 = dec.feed(std::string_view(wire).substr(0, 1007));
        CHECK(s1.consumed == 1007);
        CHECK(s1.data.size() == 1000);
        const ChunkedDecoder::Step s2 = dec.feed(std::string_view(wire).substr(1007, 500));
        CHECK(s2.consumed == 500);
        CHECK(s2.data.size() == 500);
        CHECK(dec.body_bytes() == 1500);
    }

    TEST_CASE("one data piece per call") {
        ChunkedDecoder dec;
        const std::string_view wire = "2\r\nab\r\n2\r\ncd\r\n0\r\n\r\nNEXT";
        const ChunkedDecoder::Step s1 = dec.feed(wire);
        CHECK(s1.data == "ab");
        CHECK(s1.consumed == 5);
        const ChunkedDecoder::Step s2 = dec.feed(wire.substr(s1.consumed));
        CHECK(s2.data == "cd");
        CHECK(s2.consumed == 7);
        const ChunkedDecoder::Step s3 = dec.feed(wire.substr(12));
        CHECK(s3.data.empty());
        CHECK(s3.consumed == 7);
        CHECK(dec.done());
        CHECK(wire.substr(19) == "NEXT"); // the next request is left alone
        CHECK(dec.feed("NEXT").consumed == 0);
        CHECK(dec.feed("").consumed == 0);
    }

    TEST_CASE("bytes after the body stay unconsumed (pipelining)") {
        const Decoded d = decode_all_ways("3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n");
        CHECK(d.done);
        CHECK(d.body == "abc");
        CHECK(d.leftover == 16);
    }

    TEST_CASE("extensions are skipped") {
        CHECK(body_of("5;name=value\r\nhello\r\n0;last\r\n\r\n") == "hello");
        CHECK(body_of("5 ;a=1;b=\"quoted; value\"\r\nhello\r\n0\t;x\r\n\r\n") == "hello");
        CHECK(body_of("5;\xFFobs\r\nhello\r\n0\r\n\r\n") == "hello");
        CHECK(error_of("5 \r\nhello\r\n0\r\n\r\n") == Error::bad_chunk); // BWS only before ';'
        CHECK(error_of("5 x\r\nhello\r\n0\r\n\r\n") == Error::bad_chunk);
        CHECK(error_of("5;a\x01\r\nhello\r\n0\r\n\r\n") == Error::bad_chunk);
        CHECK(error_of("5;a\nhello\r\n0\r\n\r\n") == Error::bad_chunk);

        const std::string at_limit(ChunkedDecoder::kMaxExtensionBytes - 1, 'e'); // plus the ';'
        CHECK(decode_whole("1;" + at_limit + "\r\nx\r\n0\r\n\r\n").done);
        CHECK(decode_whole("1;" + at_limit + "e\r\nx\r\n0\r\n\r\n").error == Error::chunk_extensions_too_long);
        // The limit is over the whole body, not per chunk (as Node's: extensions carry nothing
        // a server uses, and a body of 1-byte chunks could otherwise make us skip gigabytes).
        const std::string half(ChunkedDecoder::kMaxExtensionBytes / 2, 'e');
        CHECK(decode_whole("1;" + half + "\r\nx\r\n1;" + half + "\r\ny\r\n0\r\n\r\n").error ==
              Error::chunk_extensions_too_long);
        // An endless extension fails without waiting for its CR.
        ChunkedDecoder dec;
        const std::string endless = "1;" + std::string(10000, 'e');
        CHECK(dec.feed(endless).error == Error::chunk_extensions_too_long);
        CHECK(ringwork::http::status_of(Error::chunk_extensions_too_long) == 400);
        CHECK(std::string_view(ringwork::http::describe(Error::chunk_extensions_too_long)).find("4096") !=
              std::string_view::npos);
    }

    TEST_CASE("chunk size errors: bad_chunk") {
        CHECK(error_of("\r\nhello\r\n0\r\n\r\n") == Error::bad_chunk);   // no digits
        CHECK(error_of(";x\r\nhello\r\n0\r\n\r\n") == Error::bad_chunk); // extension without size
        CHECK(error_of("g\r\n") == Error::bad_chunk);
        CHECK(error_of("-1\r\n") == Error::bad_chunk);
        CHECK(error_of("+1\r\nx\r\n0\r\n\r\n") == Error::bad_chunk);
        CHECK(error_of("0x5\r\nhello\r\n0\r\n\r\n") == Error::bad_chunk);
        CHECK(error_of(" 5\r\nhello\r\n0\r\n\r\n") == Error::bad_chunk);
        CHECK(error_of("5\nhello\r\n0\r\n\r\n") == Error::bad_chunk); // bare LF
        CHECK(error_of("5\rhello\r\n0\r\n\r\n") == Error::bad_chunk); // bare CR
        CHECK(error_of("5\r\nhello\n0\r\n\r\n") == Error::bad_chunk); // LF without CR after data
        CHECK(error_of("5\r\nhelloX\r\n0\r\n\r\n") ==
              Error::bad_chunk); // data longer than its size
        CHECK(error_of("5\r\nhello\rX0\r\n\r\n") == Error::bad_chunk);
        CHECK(error_of("5\r\nhello0\r\n\r\n") == Error::bad_chunk); // no CRLF after data
        CHECK(error_of("0\n\r\n") == Error::bad_chunk);
        CHECK(error_of("12345678901234567\r\n") == Error::bad_chunk); // 17 hex digits
        CHECK(error_of("00000000000000001\r\nx\r\n0\r\n\r\n") ==
              Error::bad_chunk);                                     // 17 digits, zeros too
        CHECK(error_of("8000000000000001\r\n") == Error::bad_chunk); // > 2^63
        CHECK(error_of("ffffffffffffffff\r\n") == Error::bad_chunk);
        // 2^63 itself is a valid size (the decoder just waits for the data).
        ChunkedDecoder dec;
        const ChunkedDecoder::Step s = dec.feed("8000000000000000\r\nabc");
        CHECK(s.error == Error::none);
        CHECK(s.data == "abc");
        CHECK_FALSE(dec.done());
    }

    TEST_CASE("trailers") {
        const Decoded d =
            decode_all_ways("5\r\nhello\r\n0\r\nExpires: never\r\nX-Checksum: abc def\r\n\r\n");
        CHECK(d.done);
        CHECK(d.body == "hello");
        CHECK(d.trailer_bytes == 16 + 21);
        CHECK(body_of("0\r\nX:\r\n\r\n").empty());
        CHECK(body_of("0\r\nX: obs\x80text\t\r\n\r\n").empty());

        CHECK(error_of("0\r\nNo colon\r\n\r\n") == Error::bad_trailer);
        CHECK(error_of("0\r\nNoColon\r\n\r\n") == Error::bad_trailer);
        CHECK(error_of("0\r\nName : v\r\n\r\n") == Error::bad_trailer);
        CHECK(error_of("0\r\n: v\r\n\r\n") == Error::bad_trailer);
        CHECK(error_of("0\r\nA: b\r\n folded\r\n\r\n") == Error::bad_trailer);
        CHECK(error_of("0\r\nA: b\x01\r\n\r\n") == Error::bad_trailer);
        CHECK(error_of("0\r\nA: b\nB: c\r\n\r\n") == Error::bad_trailer);
        CHECK(error_of("0\r\nA: b\r\n\n") == Error::bad_trailer);
        CHECK(error_of("0\r\n\n") == Error::bad_trailer);
        CHECK(error_of("0\r\n\rX") == Error::bad_trailer);
        CHECK(error_of("0\r\nA: b\rX\r\n\r\n") == Error::bad_trailer);

        // Field bytes (with their CRLFs) count; the final empty line does not.
        CHECK(decode_all_ways("0\r\nA: 12345\r\n\r\n", 10).done);
        CHECK(error_of("0\r\nA: 123456\r\n\r\n", 10) == Error::trailers_too_large);
        CHECK(decode_all_ways("0\r\n\r\n", 0).done);
        CHECK(error_of("0\r\nA: b\r\n\r\n", 0) == Error::trailers_too_large);
        ChunkedDecoder endless(100);
        CHECK(endless.feed("0\r\nX: " + std::string(1000, 'v')).error == Error::trailers_too_large);
    }

    TEST_CASE("every way of splitting a small body gives the same result") {
        // Every composition of a 16-byte body: 2^15 ways to cut it.
        const std::string_view wire = "3;xy\r\nabc\r\n0\r\n\r\n";
        REQUIRE(wire.size() == 16);
        const Decoded whole = decode_whole(wire);
        REQUIRE(whole.done);
        REQUIRE(whole.body == "abc");
        for (std::uint32_t cuts = 0; cuts < (1U << (wire.size() - 1)); ++cuts) {
            std::vector<std::string_view> pieces;
            std::size_t start = 0;
            for (std::size_t i = 1; i < wire.size(); ++i) {
                if ((cuts >> (i - 1)) & 1U) {
                    pieces.push_back(wire.substr(start, i - start));
                    start = i;
                }
            }
            pieces.push_back(wire.substr(start));
            const Decoded d = decode(pieces);
            if (!(d == whole)) {
                FAIL("cuts " << cuts << ": " << show(d));
            }
        }
    }

    TEST_CASE("realistic bodies split every way") {
        std::string wire;
        std::string expected;
        for (int i = 1; i <= 40; i += 7) {
            const std::string data(static_cast<std::size_t>(i), static_cast<char>('a' + i % 26));
            char size[8];
            std::snprintf(size, sizeof size, "%x", i);
            wire += size;
            wire += i % 2 == 0 ? ";ext=1\r\n" : "\r\n";
            wire += data + "\r\n";
            expected += data;
        }
        wire += "0\r\nServer-Timing: db;dur=53\r\n\r\n";
        CHECK(body_of(wire) == expected);
    }

    TEST_CASE("failed decoder stays failed until reset") {
        ChunkedDecoder dec;
        CHECK(dec.feed("z").error == Error::bad_chunk);
        CHECK(dec.failed());
        const ChunkedDecoder::Step again = dec.feed("5\r\nhello\r\n");
        CHECK(again.error == Error::bad_chunk);
        CHECK(again.consumed == 0);
        CHECK(dec.feed("").error == Error::bad_chunk);
        dec.reset();
        CHECK_FALSE(dec.failed());
        const ChunkedDecoder::Step ok = dec.feed("5\r\nhello\r\n");
        CHECK(ok.error == Error::none);
        CHECK(ok.data == "hello");
        CHECK(dec.feed("\r\n0\r\n\r\n").error ==
              Error::none); // "\r\n" of the data, then the last chunk
        CHECK(dec.done());
        CHECK(dec.body_bytes() == 5);
        dec.reset();
        CHECK(dec.body_bytes() == 0);
        CHECK_FALSE(dec.done());
    }

    TEST_CASE("chunk errors map to 400 and 431") {
        CHECK(http::status_of(Error::bad_chunk) == 400);
        CHECK(http::status_of(Error::bad_trailer) == 400);
        CHECK(http::status_of(Error::trailers_too_large) == 431);
    }

} // TEST_SUITE
