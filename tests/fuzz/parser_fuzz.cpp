// SPDX-License-Identifier: MIT
// libFuzzer target: http::RequestParser over whole and split feeds of up to four pipelined
// requests, their bodies (chunked ones through ChunkedDecoder, split too) and the decoded path
// and query of each parsed head.
//
// Input: flags, a 32-bit split seed (see fuzz_support.hpp), then the bytes of the connection.
// flags bit 0: keep header names as received (normalize_header_names = false);
// bits 1-2: limits default / small / tiny / zero; bits 3-4: header array of 64 / 8 / 1 / 0;
// bit 5: rewind once during the split feed (a shorter buffer than before);
// bit 6: chunked trailer limit 16 bytes instead of 8192.
#include <ringwork/http/buffer.hpp>
#include <ringwork/http/error.hpp>
#include <ringwork/http/parser.hpp>
#include <ringwork/http/request.hpp>

#include "chunked_check.hpp"
#include "fuzz_support.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace {

namespace http = ringwork::http;
namespace fz = ringwork::fuzz;
using Status = http::ParseResult::Status;

struct Config {
    http::ParserLimits limits;
    std::size_t storage = 64;
    bool rewind = false;
    std::size_t max_trailer = 8192;
};

Config config_of(std::uint8_t flags) {
    Config c;
    c.limits.normalize_header_names = (flags & 1U) == 0;
    switch ((flags >> 1) & 3U) {
    case 1:
        c.limits.max_request_line = 40;
        c.limits.max_header_bytes = 120;
        c.limits.max_headers = 4;
        break;
    case 2:
        c.limits.max_request_line = 16;
        c.limits.max_header_bytes = 2;
        c.limits.max_headers = 1;
        break;
    case 3:
        c.limits.max_request_line = 0;
        c.limits.max_header_bytes = 0;
        c.limits.max_headers = 0;
        break;
    default:
        break;
    }
    static constexpr std::array<std::size_t, 4> kStorage = {64, 8, 1, 0};
    c.storage = kStorage[(flags >> 3) & 3U];
    c.rewind = (flags & 0x20U) != 0;
    c.max_trailer = (flags & 0x40U) != 0 ? 16 : 8192;
    return c;
}

bool is_tchar(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        const auto x = static_cast<unsigned char>(a[i]);
        const auto y = static_cast<unsigned char>(b[i]);
        const auto lx = x >= 'A' && x <= 'Z' ? x + 0x20 : x;
        const auto ly = y >= 'A' && y <= 'Z' ? y + 0x20 : y;
        if (lx != ly) {
            return false;
        }
    }
    return true;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

/// Everything a parse produced, with views as offsets (the buffer moves between feeds).
std::string outcome(const http::ParseResult& r, const http::RequestHead& h, const char* base) {
    switch (r.status) {
    case Status::incomplete:
        FUZZ_CHECK(r.error == http::Error::none);
        return "incomplete";
    case Status::error:
        FUZZ_CHECK(r.error != http::Error::none);
        return "error " + std::string(http::describe(r.error));
    case Status::complete:
        break;
    }
    FUZZ_CHECK(r.error == http::Error::none);
    std::string s = "complete method=" + std::to_string(static_cast<int>(h.method));
    for (const std::string_view v : {h.method_text, h.target, h.path, h.query, h.host}) {
        s += ' ';
        s += fz::offset_of(v, base);
        s += '=';
        s += fz::escape(v);
    }
    s += " minor=" + std::to_string(h.version_minor) + " ka=" + std::to_string(h.keep_alive) +
         " expect=" + std::to_string(h.expect_continue) + " upgrade=" + std::to_string(h.upgrade) +
         " close_after=" + std::to_string(h.close_after) +
         " body=" + std::to_string(static_cast<int>(h.body)) +
         " cl=" + std::to_string(h.content_length) + " head_size=" + std::to_string(h.head_size);
    for (const http::Header& f : h.headers) {
        s += " [" + fz::offset_of(f.name, base) + "=" + fz::escape(f.name) + ": " +
             fz::offset_of(f.value, base) + "=" + fz::escape(f.value) + "]";
    }
    return s;
}

/// The invariants of a complete head: views inside the head, limits kept, the framing that
/// the header fields imply (no request smuggling through ambiguous framing).
void check_head(const http::RequestHead& h, const char* base, std::size_t size, const Config& cfg,
                std::span<const http::Header> storage) {
    FUZZ_CHECK(h.head_size >= 4 && h.head_size <= size);
    const std::string_view head(base, h.head_size);
    FUZZ_CHECK(head.ends_with("\r\n\r\n"));
    for (const std::string_view v : {h.method_text, h.target, h.path, h.query, h.host}) {
        FUZZ_CHECK(fz::within(v, base, h.head_size));
    }
    FUZZ_CHECK(!h.method_text.empty() && !h.target.empty());
    FUZZ_CHECK(std::all_of(h.method_text.begin(), h.method_text.end(), is_tchar));
    FUZZ_CHECK(h.method == http::method_from(h.method_text));
    FUZZ_CHECK(h.version_minor <= 1);
    FUZZ_CHECK(h.method == http::Method::connect || !h.path.empty());
    FUZZ_CHECK(h.path.empty() || h.path == "*" || h.path.front() == '/');
    FUZZ_CHECK(h.query.empty() || h.query.data()[-1] == '?');
    FUZZ_CHECK(h.target.find_first_of(" \r\n#") == std::string_view::npos);

    FUZZ_CHECK(h.headers.size() <= storage.size());
    FUZZ_CHECK(h.headers.size() <= cfg.limits.max_headers);
    FUZZ_CHECK(h.headers.empty() || h.headers.data() == storage.data());
    std::size_t hosts = 0;
    std::size_t lengths = 0;
    std::size_t encodings = 0;
    std::string_view last_coding; // the final coding of the last Transfer-Encoding field
    for (const http::Header& f : h.headers) {
        FUZZ_CHECK(fz::within(f.name, base, h.head_size));
        FUZZ_CHECK(fz::within(f.value, base, h.head_size));
        FUZZ_CHECK(!f.name.empty() && std::all_of(f.name.begin(), f.name.end(), is_tchar));
        if (cfg.limits.normalize_header_names) {
            std::string normalized(f.name);
            http::normalize_header_name(normalized.data(), normalized.size());
            FUZZ_CHECK_MSG(normalized == f.name, fz::escape(f.name));
        }
        FUZZ_CHECK(f.value.empty() || (f.value.front() != ' ' && f.value.front() != '\t' &&
                                       f.value.back() != ' ' && f.value.back() != '\t'));
        for (const char c : f.value) {
            const auto b = static_cast<unsigned char>(c);
            FUZZ_CHECK_MSG(b == '\t' || (b >= 0x20 && b != 0x7F), fz::escape(f.value));
        }
        hosts += iequals(f.name, "host") ? 1 : 0;
        if (iequals(f.name, "content-length")) {
            ++lengths;
            for (const std::string_view elem : fz::split(f.value, ',')) { // every one agrees
                const std::string_view digits = trim(elem);
                std::uint64_t n = 0;
                const auto [end, ec] =
                    std::from_chars(digits.data(), digits.data() + digits.size(), n);
                FUZZ_CHECK_MSG(ec == std::errc() && end == digits.data() + digits.size() &&
                                   !digits.empty() && n == h.content_length,
                               fz::escape(f.value));
            }
        }
        if (iequals(f.name, "transfer-encoding")) {
            ++encodings;
            for (const std::string_view elem : fz::split(f.value, ',')) {
                last_coding = trim(elem).empty() ? last_coding : trim(elem);
            }
        }
    }
    FUZZ_CHECK_MSG(encodings == 0 || iequals(last_coding, "chunked"), fz::escape(last_coding));
    FUZZ_CHECK(hosts <= 1);
    FUZZ_CHECK(h.version_minor == 0 || hosts == 1);
    if (encodings != 0) {
        FUZZ_CHECK(lengths == 0); // both: a smuggling vector, refused
        FUZZ_CHECK(h.body == http::BodyKind::chunked);
    } else if (lengths != 0) {
        FUZZ_CHECK(h.body == http::BodyKind::content_length);
    } else {
        FUZZ_CHECK(h.body == http::BodyKind::none);
    }
    FUZZ_CHECK(h.body == http::BodyKind::content_length || h.content_length == 0);
    FUZZ_CHECK(!h.close_after ||
               (!h.keep_alive && h.body == http::BodyKind::chunked && h.version_minor == 0));
}

/// Parses `req` whole (checking the head and that a repeated call gives the same result).
struct WholeParse {
    http::ParseResult result;
    http::RequestHead head;
    std::string outcome;
};

WholeParse parse_whole(fz::ExactCopy& buf, const Config& cfg, std::vector<http::Header>& storage) {
    http::RequestParser parser(cfg.limits);
    WholeParse w;
    w.result = parser.parse(buf.span(), w.head, storage);
    w.outcome = outcome(w.result, w.head, buf.data());
    if (w.result.complete()) {
        check_head(w.head, buf.data(), buf.size(), cfg, storage);
    }
    http::RequestHead again;
    std::vector<http::Header> storage2(storage.size());
    const http::ParseResult r2 = parser.parse(buf.span(), again, storage2);
    FUZZ_CHECK_MSG(outcome(r2, again, buf.data()) == w.outcome, w.outcome);
    return w;
}

/// Feeds growing prefixes of `req` (fresh exact-size copies: the buffer moves) ending at `ends`;
/// every result must be incomplete or already the whole-buffer result.
void parse_split(std::string_view req, const Config& cfg, const std::vector<std::size_t>& ends,
                 std::uint32_t seed, const std::string& expected) {
    http::RequestParser parser(cfg.limits);
    std::vector<http::Header> storage(cfg.storage);
    http::RequestHead head;
    bool settled = false;
    bool rewound = !cfg.rewind;
    fz::Rng rng(seed);
    for (const std::size_t end : ends) {
        fz::ExactCopy buf(req.substr(0, end));
        const http::ParseResult r = parser.parse(buf.span(), head, storage);
        const std::string got = outcome(r, head, buf.data());
        if (!r.incomplete() || settled) {
            FUZZ_CHECK_MSG(got == expected, "after " + std::to_string(end) + " bytes: " + got +
                                                "\nwhole: " + expected);
            settled = true;
        } else if (!rewound && end > 1 && rng.below(4) == 0) {
            rewound = true; // a shorter buffer starts the scan over; still incomplete
            fz::ExactCopy shorter(req.substr(0, rng.below(end)));
            const http::ParseResult rs = parser.parse(shorter.span(), head, storage);
            FUZZ_CHECK_MSG(rs.incomplete(), outcome(rs, head, shorter.data()));
        }
    }
    if (!settled) {
        FUZZ_CHECK_MSG(expected == "incomplete", expected);
    }
}

/// The decoded path and query of a parsed head, against the reference decoders.
void check_request(const http::RequestHead& head) {
    http::Arena arena(64);
    http::Request req;
    req.head_ = head;
    req.arena_ = &arena;
    const std::string_view path = req.path();
    const auto ref = fz::reference_percent_decode(head.path, false);
    if (head.path.find('%') == std::string_view::npos) {
        FUZZ_CHECK(path == head.path && req.path_valid());
    } else if (ref) {
        FUZZ_CHECK(req.path_valid() && path == *ref);
    } else {
        FUZZ_CHECK(!req.path_valid() && path.empty());
    }
    FUZZ_CHECK(req.path().data() == path.data()); // decoded once

    std::vector<std::pair<std::string, std::string>> expected;
    for (const std::string_view pair : fz::split(head.query, '&')) {
        if (pair.empty()) {
            continue;
        }
        const std::size_t eq = pair.find('=');
        const auto decode = [](std::string_view raw) {
            // A component with an invalid escape is kept whole, as received.
            return std::string(
                raw.find_first_of("%+") == std::string_view::npos
                    ? std::string(raw)
                    : fz::reference_percent_decode(raw, true).value_or(std::string(raw)));
        };
        expected.emplace_back(decode(pair.substr(0, eq)), eq == std::string_view::npos
                                                              ? std::string()
                                                              : decode(pair.substr(eq + 1)));
    }
    std::vector<std::pair<std::string, std::string>> got;
    req.for_each_query(
        [&got](std::string_view name, std::string_view value) { got.emplace_back(name, value); });
    FUZZ_CHECK_MSG(got == expected, fz::escape(head.query));
    if (!expected.empty()) {
        const std::optional<std::string_view> first = req.query(expected.front().first);
        FUZZ_CHECK(first && *first == expected.front().second);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto input = fz::read_input(data, size);
    if (!input) {
        return 0;
    }
    const Config cfg = config_of(input->flags);
    std::string_view rest = input->payload;
    std::uint32_t seed = input->seed;
    for (int request = 0; request < 4 && !rest.empty(); ++request) {
        fz::ExactCopy buf(rest);
        std::vector<http::Header> storage(cfg.storage);
        const WholeParse whole = parse_whole(buf, cfg, storage);
        parse_split(rest, cfg, fz::split_plan(rest.size(), seed), seed, whole.outcome);
        if (!whole.result.complete()) {
            return 0;
        }
        check_request(whole.head);

        std::string_view body = rest.substr(whole.head.head_size);
        std::size_t body_size = 0;
        if (whole.head.body == http::BodyKind::content_length) {
            if (whole.head.content_length > body.size()) {
                return 0;
            }
            body_size = static_cast<std::size_t>(whole.head.content_length);
        } else if (whole.head.body == http::BodyKind::chunked) {
            const fz::Decoded all = fz::decode_chunked(body, cfg.max_trailer, {body.size()});
            const fz::Decoded pieces =
                fz::decode_chunked(body, cfg.max_trailer, fz::split_plan(body.size(), seed >> 3));
            FUZZ_CHECK_MSG(all == pieces,
                           "whole: " + fz::show(all) + "\nsplit: " + fz::show(pieces));
            if (!all.done) {
                return 0;
            }
            body_size = all.consumed;
        }
        if (!whole.head.keep_alive) {
            return 0; // the connection closes: nothing after this request is read
        }
        rest = rest.substr(whole.head.head_size + body_size);
        seed = seed * 2654435761U + 1;
    }
    return 0;
}
