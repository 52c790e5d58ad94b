// SPDX-License-Identifier: MIT
// libFuzzer target: web::Router with random route tables and paths: lookups never crash, every
// result is consistent with the table, and generated tables agree with a brute-force matcher.
//
// Input: flags, a 32-bit seed (unused), then the payload.
// flags bit 0 clear (raw mode): lines "METHOD PATTERN" ("*" for add_any, no space: GET) up to
// the first empty line are registered (refusals caught), the lines after it are looked up as
// "METHOD PATH" (bit 1 set: in a move-constructed copy of the frozen router). Each result is
// checked against the table: the pattern with the parameters substituted gives the path back, the
// value belongs to the method, Allow and the trailing-slash redirect agree with the lookups they
// summarize. flags bit 0 set (model mode): the bytes pick routes from a small alphabet of segments
// (as tests/unit/web/router_test.cpp does) and probes, and every result must equal a naive
// matcher's; bit 1 set: the probes are raw lines as in raw mode instead.
#include <ringwork/web/router.hpp>

#include "fuzz_support.hpp"
#include "naive_router.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

namespace web = ringwork::web;
namespace fz = ringwork::fuzz;
using web::LookupStatus;

using test::naive::NaiveRouter;
using test::naive::Outcome;
using test::naive::ParamList;
using test::naive::status_name;

std::string show(const Outcome& o) {
    std::string out = std::string(status_name(o.status)) + " value=" + std::to_string(o.value) +
                      " pattern=" + fz::escape(o.pattern) + " allow=[" + o.allow + "] params={";
    for (const auto& [k, v] : o.params) {
        out += k + "=" + fz::escape(v) + ";";
    }
    return out + "}";
}

Outcome run(const web::Router<int>& router, std::string_view method, std::string_view path) {
    web::Params params;
    const web::LookupResult<int> r = router.lookup(method, path, params);
    Outcome o;
    o.status = r.status;
    if (r.found()) {
        o.value = *r.value;
        for (const web::Param& p : params) {
            o.params.emplace_back(p.key, p.value);
        }
    }
    o.allow = std::string(r.allow);
    o.pattern = std::string(r.pattern);
    return o;
}

/// "METHOD REST" -> (METHOD, REST); a line without a space is a GET of the whole line.
std::pair<std::string_view, std::string_view> split_line(std::string_view line) {
    const std::size_t sp = line.find(' ');
    if (sp == std::string_view::npos) {
        return {"GET", line};
    }
    return {line.substr(0, sp), line.substr(sp + 1)};
}

// --- raw mode: invariants of every lookup ------------------------------------------------------

struct Registered {
    std::string method; ///< empty for add_any
    std::string pattern;
};

/// Rebuilds the path from a pattern and the parameters a lookup found: it must give the
/// looked-up path back, with each wildcard's value where its name was.
void check_reconstruction(std::string_view pattern, const web::Params& params,
                          std::string_view path) {
    std::size_t next = 0;
    std::size_t pos = 0; // in path
    std::size_t i = 0;   // in pattern
    while (i < pattern.size()) {
        const char c = pattern[i];
        if ((c == ':' || c == '*') && i > 0 && pattern[i - 1] == '/') {
            std::size_t end = pattern.find('/', i);
            if (end == std::string_view::npos) {
                end = pattern.size();
            }
            FUZZ_CHECK(next < params.size());
            const web::Param& p = params[next++];
            FUZZ_CHECK(p.key == pattern.substr(i + 1, end - i - 1));
            FUZZ_CHECK(fz::within(p.value, path.data(), path.size()));
            FUZZ_CHECK(path.substr(pos, p.value.size()) == p.value);
            if (c == ':') {
                FUZZ_CHECK(!p.value.empty() && p.value.find('/') == std::string_view::npos);
            } else {
                FUZZ_CHECK(pos + p.value.size() == path.size()); // the rest of the path
            }
            FUZZ_CHECK(params.get(p.key) == p.value && params.contains(p.key));
            pos += p.value.size();
            i = end;
            continue;
        }
        FUZZ_CHECK_MSG(pos < path.size() && path[pos] == c,
                       "pattern " + fz::escape(pattern) + " path " + fz::escape(path));
        ++pos;
        ++i;
    }
    FUZZ_CHECK(next == params.size());
    FUZZ_CHECK_MSG(pos == path.size(),
                   "pattern " + fz::escape(pattern) + " path " + fz::escape(path));
}

/// Whether `method` (empty: add_any) is registered on exactly `pattern`.
bool registered(const std::vector<Registered>& table, std::string_view pattern,
                std::string_view method) {
    return std::any_of(table.begin(), table.end(), [&](const Registered& r) {
        return r.pattern == pattern && r.method == method;
    });
}

void check_lookup(const web::Router<int>& router, const std::vector<Registered>& table,
                  std::string_view method, std::string_view path) {
    web::Params params;
    const web::LookupResult<int> r = router.lookup(method, path, params);
    FUZZ_CHECK(params.size() <= web::kMaxParams);
    FUZZ_CHECK(run(router, method, path) == run(router, method, path)); // deterministic
    const std::string_view allowed = router.allowed_methods(path);
    switch (r.status) {
    case LookupStatus::found: {
        FUZZ_CHECK(r.value != nullptr && r.sibling == nullptr);
        FUZZ_CHECK(*r.value >= 0 && static_cast<std::size_t>(*r.value) < table.size());
        const Registered& reg = table[static_cast<std::size_t>(*r.value)];
        FUZZ_CHECK(r.pattern == reg.pattern);
        FUZZ_CHECK_MSG(reg.method.empty() || reg.method == method ||
                           (method == "HEAD" && reg.method == "GET"),
                       std::string(method) + " found a " + reg.method + " route");
        // An explicit method wins over add_any(), and HEAD over GET's fallback.
        FUZZ_CHECK(reg.method == method || !registered(table, reg.pattern, method));
        FUZZ_CHECK(!reg.method.empty() || method != "HEAD" ||
                   !registered(table, reg.pattern, "GET"));
        FUZZ_CHECK(r.allow == allowed && r.allow.find("OPTIONS") != std::string_view::npos);
        check_reconstruction(r.pattern, params, path);
        break;
    }
    case LookupStatus::method_not_allowed:
        FUZZ_CHECK(r.value == nullptr && r.sibling != nullptr);
        FUZZ_CHECK(!r.pattern.empty() && r.allow == allowed);
        FUZZ_CHECK(r.allow.find("OPTIONS") != std::string_view::npos);
        FUZZ_CHECK(table[static_cast<std::size_t>(*r.sibling)].pattern == r.pattern);
        FUZZ_CHECK(!registered(table, r.pattern, method) && !registered(table, r.pattern, ""));
        FUZZ_CHECK(method != "HEAD" || !registered(table, r.pattern, "GET"));
        break;
    case LookupStatus::not_found:
    case LookupStatus::redirect_trailing_slash: {
        FUZZ_CHECK(r.value == nullptr && r.allow.empty() && r.pattern.empty());
        FUZZ_CHECK(allowed.empty());
        // The redirect is offered exactly when the path with/without its trailing slash is
        // found for this method, and it leads to that route.
        std::string twin(path);
        if (!twin.empty() && twin.back() == '/') {
            twin.pop_back();
        } else {
            twin += '/';
        }
        const bool valid = !path.empty() && path.front() == '/' && path != "/";
        web::Params twin_params;
        const web::LookupResult<int> t = router.lookup(method, twin, twin_params);
        if (r.status == LookupStatus::redirect_trailing_slash) {
            FUZZ_CHECK(valid && t.found() && r.sibling != nullptr && t.value == r.sibling);
        } else {
            FUZZ_CHECK_MSG(!valid || !t.found(), std::string(method) + " " + fz::escape(path) +
                                                     " not found, " + fz::escape(twin) + " found");
            FUZZ_CHECK(r.sibling == nullptr);
        }
        break;
    }
    }
}

void raw_mode(std::string_view payload, bool move) {
    const std::vector<std::string_view> lines = fz::split(payload, '\n');
    web::Router<int> router;
    std::vector<Registered> table; // accepted routes; route i has value i
    std::size_t i = 0;
    for (; i < lines.size() && !lines[i].empty(); ++i) {
        const auto [method, pattern] = split_line(lines[i]);
        const int value = static_cast<int>(table.size());
        try {
            if (method == "*") {
                router.add_any(pattern, value);
                table.push_back({"", std::string(pattern)});
            } else {
                router.add(method, pattern, value);
                table.push_back({std::string(method), std::string(pattern)});
            }
        } catch (const std::invalid_argument&) {
            continue; // documented refusal: the router is unchanged
        }
    }
    FUZZ_CHECK(router.size() == table.size());
    {
        web::Params params;
        FUZZ_CHECK(router.lookup("GET", "/", params).status == LookupStatus::not_found);
    }
    router.freeze();
    FUZZ_CHECK(router.frozen());
    bool refused = false;
    try {
        router.add("GET", "/late", -1);
    } catch (const std::logic_error&) {
        refused = true;
    }
    FUZZ_CHECK(refused);
    router.freeze(); // again: nothing changes
    web::Router<int> moved;
    if (move) { // parameter keys stay valid in the moved-to router; the moved-from finds nothing
        moved = std::move(router);
    }
    const web::Router<int>& live = move ? moved : router;
    for (++i; i < lines.size(); ++i) {
        const auto [method, path] = split_line(lines[i]);
        check_lookup(live, table, method, path);
        if (move) {
            web::Params params;
            // NOLINTNEXTLINE(bugprone-use-after-move): a moved-from router is documented to find
            // nothing
            FUZZ_CHECK(router.lookup(method, path, params).status == LookupStatus::not_found);
        }
    }
}

// --- model mode: the naive matcher of tests/support/naive_router.hpp -----------------------

/// Hands out the payload's bytes one at a time (zeros once it is used up).
class Bytes {
public:
    explicit Bytes(std::string_view s) noexcept
        : s_(s) {}
    [[nodiscard]] bool empty() const noexcept { return s_.empty(); }
    std::size_t next(std::size_t n) noexcept {
        if (s_.empty()) {
            return 0;
        }
        const auto b = static_cast<unsigned char>(s_.front());
        s_.remove_prefix(1);
        return b % n;
    }
    [[nodiscard]] std::string_view rest() const noexcept { return s_; }

private:
    std::string_view s_;
};

void model_mode(std::string_view payload, bool raw_probes) {
    static constexpr std::array<std::string_view, 6> kStatic = {"a", "b", "ab", "abc", "ba", "a:b"};
    static constexpr std::array<std::string_view, 8> kPathSegments = {"a",  "b",   "ab", "abc",
                                                                      "ba", "a:b", "zz", "abcd"};
    static constexpr std::array<std::string_view, 6> kMethods = {"GET",    "POST", "PUT",
                                                                 "DELETE", "HEAD", "PURGE"};
    static constexpr std::array<std::string_view, 9> kProbeMethods = {
        "GET", "POST", "PUT", "DELETE", "HEAD", "PURGE", "OPTIONS", "PATCH", "BREW"};

    Bytes in(payload);
    web::Router<int> router;
    NaiveRouter naive;
    const std::size_t routes = 1 + in.next(48);
    for (std::size_t i = 0; i < routes && !in.empty(); ++i) {
        std::string pattern;
        const std::size_t depth = 1 + in.next(4);
        for (std::size_t d = 0; d < depth; ++d) {
            pattern += '/';
            const std::size_t kind = in.next(10);
            const std::string suffix = std::to_string(d);
            if (kind < 6) {
                pattern += kStatic[in.next(kStatic.size())];
            } else if (kind < 9) {
                pattern += (in.next(3) == 0 ? ":y" : ":x") + suffix;
            } else {
                pattern += (in.next(3) == 0 ? "*s" : "*r") + suffix;
                break;
            }
        }
        if (in.next(5) == 0 && pattern.find('*') == std::string::npos) {
            pattern += '/';
        }
        const bool any = in.next(8) == 0;
        const std::string method(kMethods[in.next(kMethods.size())]);
        const int value = static_cast<int>(i);
        const bool expect_ok =
            naive.add(any ? std::nullopt : std::optional(method), pattern, value);
        std::string refusal;
        try {
            if (any) {
                router.add_any(pattern, value);
            } else {
                router.add(method, pattern, value);
            }
        } catch (const std::invalid_argument& e) {
            refusal = e.what();
        }
        FUZZ_CHECK_MSG(refusal.empty() == expect_ok,
                       (any ? std::string("(any) ") : method + " ") + pattern + ": " +
                           (expect_ok ? "refused: " + refusal : std::string("accepted")));
    }
    router.freeze();

    std::vector<std::pair<std::string, std::string>> probes;
    if (raw_probes) {
        for (const std::string_view line : fz::split(in.rest(), '\n')) {
            const auto [method, path] = split_line(line);
            probes.emplace_back(method, path);
        }
    } else {
        while (!in.empty()) {
            std::string path;
            const std::size_t depth = in.next(6);
            for (std::size_t d = 0; d < depth; ++d) {
                path += '/';
                if (const std::size_t s = in.next(13); s != 0) {
                    path += kPathSegments[(s - 1) % kPathSegments.size()];
                }
            }
            if (path.empty() || in.next(4) == 0) {
                path += '/';
            }
            probes.emplace_back(kProbeMethods[in.next(kProbeMethods.size())], path);
        }
    }
    for (const auto& [method, path] : probes) {
        const Outcome expected = naive.lookup(method, path);
        const Outcome got = run(router, method, path);
        FUZZ_CHECK_MSG(got == expected, method + " " + fz::escape(path) + ": got " + show(got) +
                                            ", naive " + show(expected));
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto input = fz::read_input(data, size);
    if (!input) {
        return 0;
    }
    if ((input->flags & 1U) == 0) {
        raw_mode(input->payload, (input->flags & 2U) != 0);
    } else {
        model_mode(input->payload, (input->flags & 2U) != 0);
    }
    return 0;
}
