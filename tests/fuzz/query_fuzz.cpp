// SPDX-License-Identifier: MIT
// libFuzzer target: percent-decoding, Request::path()/query(), urlencoded forms and cookies,
// each against a reference written from its documentation.
//
// Input: flags, a 32-bit seed, then up to six lines separated by '\n': a path, a query string
// (also parsed as an urlencoded body), a Cookie header, a cookie `name=value`, its Path and
// its Domain. The whole payload is percent-decoded too.
// flags bits 0-1: SameSite unset / lax / strict / none; bit 2: Secure; bit 3: HttpOnly;
// bit 4: Partitioned; bit 5: Max-Age (the seed as signed seconds); bit 6: Expires (the seed as
// seconds around 2001-09-09).
#include <ringwork/http/buffer.hpp>
#include <ringwork/http/parser.hpp>
#include <ringwork/http/request.hpp>
#include <ringwork/web/form.hpp>

#include "fuzz_support.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

namespace http = ringwork::http;
namespace web = ringwork::web;
namespace fz = ringwork::fuzz;

using Pairs = std::vector<std::pair<std::string, std::string>>;

void check_percent_decode(std::string_view in) {
    for (const bool plus : {false, true}) {
        const std::optional<std::string> ref = fz::reference_percent_decode(in, plus);
        fz::ExactCopy out(std::string(in.size(), '\0'));
        const http::DecodeResult r = http::percent_decode(in, out.data(), plus);
        FUZZ_CHECK(r.ok == ref.has_value());
        FUZZ_CHECK(r.size <= in.size());
        if (r.ok) {
            FUZZ_CHECK(std::string_view(out.data(), r.size) == *ref);
        } else {
            FUZZ_CHECK(r.size == 0);
        }
        fz::ExactCopy in_place(in); // out == in.data(): decoding in place
        const http::DecodeResult r2 = http::percent_decode(in_place.view(), in_place.data(), plus);
        FUZZ_CHECK(r2.ok == r.ok && r2.size == r.size);
        if (r.ok) {
            FUZZ_CHECK(std::string_view(in_place.data(), r2.size) == *ref);
        }
    }
}

/// Request::path() and the query helpers on a head holding `path` and `query`.
void check_request(std::string_view path, std::string_view query) {
    http::Arena arena(16); // small blocks: decoding overflows into extra blocks
    http::Request req;
    req.head_.path = path;
    req.head_.query = query;
    req.arena_ = &arena;
    const std::string_view decoded = req.path();
    if (path.find('%') == std::string_view::npos) {
        FUZZ_CHECK(decoded.data() == path.data() && decoded.size() == path.size());
        FUZZ_CHECK(req.path_valid());
    } else if (const auto ref = fz::reference_percent_decode(path, false)) {
        FUZZ_CHECK(req.path_valid() && decoded == *ref);
    } else {
        FUZZ_CHECK(!req.path_valid() && decoded.empty());
    }

    Pairs expected;
    for (const std::string_view pair : fz::split(query, '&')) {
        if (pair.empty()) {
            continue;
        }
        const std::size_t eq = pair.find('=');
        const auto decode = [](std::string_view raw) {
            if (raw.find_first_of("%+") == std::string_view::npos) {
                return std::string(raw);
            }
            // Request keeps a component with an invalid escape whole, as received.
            return fz::reference_percent_decode(raw, true).value_or(std::string(raw));
        };
        expected.emplace_back(decode(pair.substr(0, eq)), eq == std::string_view::npos
                                                              ? std::string()
                                                              : decode(pair.substr(eq + 1)));
    }
    Pairs got;
    req.for_each_query([&got](std::string_view n, std::string_view v) { got.emplace_back(n, v); });
    FUZZ_CHECK_MSG(got == expected, fz::escape(query));
    for (std::size_t i = 0; i < expected.size() && i < 4; ++i) {
        const std::string& name = expected[i].first;
        std::size_t first = 0;
        while (expected[first].first != name) {
            ++first;
        }
        const std::optional<std::string_view> v = req.query(name);
        FUZZ_CHECK(v && *v == expected[first].second);
    }
    FUZZ_CHECK(!req.query(std::string(query) + "\n")); // no decoded name holds a raw LF
}

/// The urlencoded helpers on `body`.
void check_form(std::string_view body) {
    http::Arena arena(16);
    Pairs expected;
    for (const std::string_view pair : fz::split(body, '&')) {
        if (pair.empty()) {
            continue;
        }
        const std::size_t eq = pair.find('=');
        const std::string_view raw_name = pair.substr(0, eq);
        const std::string name = fz::reference_form_decode(raw_name);
        expected.emplace_back(name, eq == std::string_view::npos
                                        ? std::string()
                                        : fz::reference_form_decode(pair.substr(eq + 1)));
        FUZZ_CHECK(web::form_component_equals(raw_name, name));
        FUZZ_CHECK(!web::form_component_equals(raw_name, name + "x"));
        const std::string_view decoded = web::decode_form_component(raw_name, arena);
        FUZZ_CHECK(decoded == name);
        if (raw_name.find_first_of("%+") == std::string_view::npos) {
            FUZZ_CHECK(decoded.data() == raw_name.data()); // nothing to decode: the raw view
        }
        // Where the strict decoder succeeds, both agree.
        if (const auto strict = fz::reference_percent_decode(raw_name, true)) {
            FUZZ_CHECK(*strict == name);
        }
    }
    Pairs got;
    web::for_each_form_value(
        body, arena, [&got](std::string_view n, std::string_view v) { got.emplace_back(n, v); });
    FUZZ_CHECK_MSG(got == expected, fz::escape(body));
    for (std::size_t i = 0; i < expected.size() && i < 4; ++i) {
        std::size_t first = 0;
        while (expected[first].first != expected[i].first) {
            ++first;
        }
        const std::optional<std::string_view> v =
            web::find_form_value(body, expected[i].first, arena);
        FUZZ_CHECK(v && *v == expected[first].second);
    }
    // Decoding never grows a component, so no name is longer than the body.
    FUZZ_CHECK(!web::find_form_value(body, std::string(body.size() + 1, 'n'), arena));
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

/// for_each_cookie() and find_cookie() on a Cookie header.
void check_cookies(std::string_view header) {
    std::vector<std::pair<std::string_view, std::string_view>> expected;
    for (const std::string_view raw : fz::split(header, ';')) {
        const std::string_view pair = trim(raw);
        const std::size_t eq = pair.find('=');
        if (eq == std::string_view::npos) {
            continue;
        }
        const std::string_view name = trim(pair.substr(0, eq));
        std::string_view value = trim(pair.substr(eq + 1));
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
            value = value.substr(1, value.size() - 2);
        }
        if (!name.empty()) {
            expected.emplace_back(name, value);
        }
    }
    std::vector<std::pair<std::string_view, std::string_view>> got;
    web::for_each_cookie(header, [&](std::string_view n, std::string_view v) {
        FUZZ_CHECK(fz::within(n, header.data(), header.size()));
        FUZZ_CHECK(fz::within(v, header.data(), header.size()));
        got.emplace_back(n, v);
    });
    FUZZ_CHECK_MSG(got == expected, fz::escape(header));
    for (std::size_t i = 0; i < expected.size() && i < 4; ++i) {
        std::size_t first = 0;
        while (expected[first].first != expected[i].first) {
            ++first;
        }
        const std::optional<std::string_view> v = web::find_cookie(header, expected[i].first);
        FUZZ_CHECK(v && *v == expected[first].second);
    }
    FUZZ_CHECK(!web::find_cookie(header, std::string(header.size() + 1, 'n')));
}

/// format_set_cookie() either refuses the cookie (std::invalid_argument) or writes a header
/// that for_each_cookie() reads back and that keeps the prefix rules.
void check_set_cookie(std::string_view pair, std::string_view path, std::string_view domain,
                      std::uint8_t flags, std::uint32_t seed) {
    const std::size_t eq = pair.find('=');
    web::Cookie c;
    c.name = pair.substr(0, eq);
    c.value = eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
    c.path = path;
    c.domain = domain;
    c.same_site = static_cast<web::SameSite>(flags & 3U);
    c.secure = (flags & 4U) != 0;
    c.http_only = (flags & 8U) != 0;
    c.partitioned = (flags & 16U) != 0;
    if ((flags & 32U) != 0) {
        c.max_age = std::chrono::seconds(static_cast<std::int32_t>(seed));
    }
    if ((flags & 64U) != 0) {
        constexpr std::int64_t kBase = 1'000'000'000; // 2001-09-09
        c.expires = std::chrono::system_clock::time_point(
            std::chrono::seconds(kBase + static_cast<std::int32_t>(seed)));
    }
    http::Arena arena(32);
    std::string_view out;
    try {
        out = web::format_set_cookie(arena, c);
    } catch (const std::invalid_argument&) {
        return; // documented refusal
    }
    const bool secure = c.secure || c.same_site == web::SameSite::none || c.partitioned;
    FUZZ_CHECK(!c.name.empty());
    FUZZ_CHECK(out.starts_with(std::string(c.name) + "=" + std::string(c.value)));
    FUZZ_CHECK(secure == (out.find("; Secure") != std::string_view::npos));
    FUZZ_CHECK(!c.name.starts_with("__Secure-") || secure);
    FUZZ_CHECK(!c.name.starts_with("__Host-") || (secure && c.path == "/" && c.domain.empty()));
    // The pair reads back as itself (the value without its optional quotes).
    std::string_view value = c.value;
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
        value = value.substr(1, value.size() - 2);
    }
    const std::string first_pair(out.substr(0, out.find(';')));
    std::size_t n = 0;
    web::for_each_cookie(first_pair, [&](std::string_view name, std::string_view v) {
        FUZZ_CHECK(n++ == 0 && name == c.name && v == value);
    });
    FUZZ_CHECK(n == 1);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto input = fz::read_input(data, size);
    if (!input) {
        return 0;
    }
    check_percent_decode(input->payload);
    std::vector<std::string_view> lines = fz::split(input->payload, '\n');
    lines.resize(6);
    check_request(lines[0], lines[1]);
    check_form(lines[1]);
    check_cookies(lines[2]);
    check_set_cookie(lines[3], lines[4], lines[5], input->flags, input->seed);
    return 0;
}
