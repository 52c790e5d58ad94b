// SPDX-License-Identifier: MIT
// Router lookup throughput on a ~240-route GitHub-like API table (ns per lookup, one thread).
#include <ringwork/web/router.hpp>

#include "github_routes.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace web = ringwork::web;

namespace {

/// Keeps the compiler from proving `value` unused: the empty asm may read it through its address
/// (passing the object itself as "r,m" made g++ copy the 520-byte Params every time).
template <typename T>
inline void do_not_optimize(const T& value) {
    asm volatile("" : : "r"(&value) : "memory");
}

using github_routes::kGitHub;
using github_routes::Route;

/// A concrete path for `pattern`: parameters become short realistic values.
std::string concrete_path(std::string_view pattern, std::size_t seed) {
    std::string path;
    std::size_t i = 0;
    while (i < pattern.size()) {
        const char c = pattern[i];
        if ((c == ':' || c == '*') && i > 0 && pattern[i - 1] == '/') {
            std::size_t end = pattern.find('/', i);
            if (end == std::string_view::npos) {
                end = pattern.size();
            }
            if (c == ':') {
                path += 'v';
                path += std::to_string(seed % 97);
            } else {
                path += "src/lib/file.cpp";
            }
            i = end;
            continue;
        }
        path += c;
        ++i;
    }
    return path;
}

struct Request {
    std::string_view method;
    std::string path;
};

using Clock = std::chrono::steady_clock;

/// Nanoseconds per lookup: the median and the best of the timed slices.
struct Timing {
    double median = 0;
    double best = 0;
    std::size_t lookups = 0;
};

/// Looks up every request in turn, repeatedly, for about `budget` split into 50 ms slices (at
/// most `max_rounds` passes per slice, which bounds the run whatever the clock does). The median
/// slice resists noisy neighbours on shared machines. Exits when a request does not get
/// `expected`.
Timing time_lookups(const web::Router<int>& router, const std::vector<Request>& requests,
                    web::LookupStatus expected, std::chrono::milliseconds budget,
                    std::size_t max_rounds) {
    web::Params params;
    for (const Request& r : requests) { // warm up and verify
        if (router.lookup(r.method, r.path, params).status != expected) {
            std::fprintf(stderr, "router_bench: unexpected status for %.*s %s\n",
                         static_cast<int>(r.method.size()), r.method.data(), r.path.c_str());
            std::exit(1);
        }
    }
    constexpr std::chrono::milliseconds kSlice{50};
    const std::size_t slices = std::max<std::size_t>(1, static_cast<std::size_t>(budget / kSlice));
    std::vector<double> per_slice;
    Timing timing;
    for (std::size_t slice = 0; slice < slices; ++slice) {
        std::size_t lookups = 0;
        const Clock::time_point start = Clock::now();
        Clock::time_point now = start;
        for (std::size_t round = 0; round < max_rounds && now - start < kSlice; ++round) {
            for (const Request& r : requests) {
                const web::LookupResult<int> result = router.lookup(r.method, r.path, params);
                do_not_optimize(result);
                do_not_optimize(params);
            }
            lookups += requests.size();
            now = Clock::now();
        }
        per_slice.push_back(std::chrono::duration<double, std::nano>(now - start).count() /
                            static_cast<double>(lookups));
        timing.lookups += lookups;
    }
    std::sort(per_slice.begin(), per_slice.end());
    timing.median = per_slice[per_slice.size() / 2];
    timing.best = per_slice.front();
    return timing;
}

void report(const char* name, std::size_t count, const Timing& t) {
    std::printf("%-44s %4zu paths  %6.1f ns/lookup (best %5.1f)  %9zu lookups\n", name, count,
                t.median, t.best, t.lookups);
}

} // namespace

int main() {
    web::Router<int> router;
    for (std::size_t i = 0; i < kGitHub.size(); ++i) {
        router.add(kGitHub[i].method, kGitHub[i].pattern, static_cast<int>(i));
    }
    router.freeze();
    std::printf("router: %zu routes, %zu nodes, max %zu params\n", router.size(),
                router.node_count(), router.max_params());

    std::vector<Request> all;
    std::vector<Request> statics;
    std::vector<Request> deep;
    std::vector<Request> not_allowed;
    std::vector<Request> missing;
    for (std::size_t i = 0; i < kGitHub.size(); ++i) {
        const Route& route = kGitHub[i];
        std::string path = concrete_path(route.pattern, i);
        if (route.pattern.find_first_of(":*") == std::string_view::npos) {
            statics.push_back({route.method, path});
        }
        if (std::count(route.pattern.begin(), route.pattern.end(), '/') >= 5) {
            deep.push_back({route.method, path});
        }
        not_allowed.push_back({"BREW", path});
        std::string miss = path;
        miss += "/zz/zz";
        web::Params params;
        if (router.lookup(route.method, miss, params).status == web::LookupStatus::not_found) {
            missing.push_back({route.method, std::move(miss)}); // not under a catch-all
        }
        all.push_back({route.method, std::move(path)});
    }

    using std::chrono::milliseconds;
    const std::size_t cap = 100'000; // passes per slice: bounds the run even on a stalled clock
    report("mix of all routes (found)", all.size(),
           time_lookups(router, all, web::LookupStatus::found, milliseconds(1000), cap));
    report("static routes only (found)", statics.size(),
           time_lookups(router, statics, web::LookupStatus::found, milliseconds(250), cap));
    report("routes of 5+ segments (found)", deep.size(),
           time_lookups(router, deep, web::LookupStatus::found, milliseconds(250), cap));
    report("unknown method (405 + Allow)", not_allowed.size(),
           time_lookups(router, not_allowed, web::LookupStatus::method_not_allowed,
                        milliseconds(250), cap));
    report("extra segments (404 + trailing-slash check)", missing.size(),
           time_lookups(router, missing, web::LookupStatus::not_found, milliseconds(250), cap));
    return 0;
}
