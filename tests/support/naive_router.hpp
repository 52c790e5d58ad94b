// SPDX-License-Identifier: MIT
// NaiveRouter: the router's reference model for tests and the router fuzz target — every route
// kept as plain data and matched by brute force, segment by segment, with the Router's rules
// (static > parameter > catch-all, left first; HEAD falls back to GET; the Allow list order;
// the trailing-slash twin). Deliberately simple and slow: it must be obviously right.
#pragma once

#include <ringwork/web/router.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace test::naive {

using ringwork::web::LookupStatus;
using ParamList = std::vector<std::pair<std::string, std::string>>;

inline std::string_view status_name(LookupStatus s) {
    switch (s) {
    case LookupStatus::found:
        return "found";
    case LookupStatus::method_not_allowed:
        return "method_not_allowed";
    case LookupStatus::not_found:
        return "not_found";
    case LookupStatus::redirect_trailing_slash:
        return "redirect_trailing_slash";
    }
    return "?";
}

/// What one lookup returned, as plain values (easy to compare and print).
struct Outcome {
    LookupStatus status = LookupStatus::not_found;
    int value = -1;
    ParamList params;
    std::string allow;
    std::string pattern;

    bool operator==(const Outcome&) const = default;
};

/// Position of a method in an Allow list: the known ones in their order, then the others,
/// OPTIONS last.
inline int allow_rank(std::string_view m) {
    static constexpr std::array<std::string_view, 8> kOrder = {
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "TRACE"};
    const auto* it = std::find(kOrder.begin(), kOrder.end(), m);
    if (it != kOrder.end()) {
        return static_cast<int>(it - kOrder.begin());
    }
    return m == "OPTIONS" ? 100 : 50;
}

/// The segments of "/a/b/" (after the leading slash): {"a", "b", ""}.
inline std::vector<std::string> split_segments(std::string_view path) {
    std::vector<std::string> out;
    std::size_t begin = 1;
    for (;;) {
        const std::size_t slash = path.find('/', begin);
        if (slash == std::string_view::npos) {
            out.emplace_back(path.substr(begin));
            return out;
        }
        out.emplace_back(path.substr(begin, slash - begin));
        begin = slash + 1;
    }
}

/// Every route kept as plain data and matched by brute force, segment by segment.
class NaiveRouter {
public:
    /// Mirrors Router::add: false when the router must refuse the route.
    bool add(const std::optional<std::string>& method, const std::string& pattern, int value) {
        const std::vector<std::string> segs = split_segments(pattern);
        for (Entry& e : entries_) {
            const std::size_t n = std::min(segs.size(), e.segs.size());
            bool same_prefix = true;
            for (std::size_t k = 0; k < n && same_prefix; ++k) {
                const char a = segs[k].empty() ? '\0' : segs[k][0];
                const char b = e.segs[k].empty() ? '\0' : e.segs[k][0];
                const bool wild_a = a == ':' || a == '*';
                const bool wild_b = b == ':' || b == '*';
                if (wild_a && a == b) {
                    if (segs[k] != e.segs[k]) {
                        return false; // different names at the same position
                    }
                } else if (wild_a || wild_b || segs[k] != e.segs[k]) {
                    same_prefix = false;
                }
            }
            if (same_prefix && segs.size() == e.segs.size()) {
                if (method) {
                    if (e.methods.contains(*method)) {
                        return false;
                    }
                    e.methods[*method] = value;
                } else {
                    if (e.any) {
                        return false;
                    }
                    e.any = value;
                }
                register_method(method);
                return true;
            }
        }
        Entry e;
        e.pattern = pattern;
        e.segs = segs;
        if (method) {
            e.methods[*method] = value;
        } else {
            e.any = value;
        }
        entries_.push_back(std::move(e));
        register_method(method);
        return true;
    }

    [[nodiscard]] Outcome lookup(std::string_view method, std::string_view path) const {
        Outcome o;
        if (path.empty() || path[0] != '/') {
            return o;
        }
        ParamList params;
        const Entry* e = best(path, params);
        if (e == nullptr) {
            std::string twin(path);
            if (twin.back() == '/') {
                twin.pop_back();
            } else {
                twin += '/';
            }
            ParamList ignored;
            const Entry* t = twin.empty() ? nullptr : best(twin, ignored);
            if (t != nullptr && resolve(*t, method)) {
                o.status = LookupStatus::redirect_trailing_slash;
            }
            return o;
        }
        o.pattern = e->pattern;
        o.allow = allow(*e);
        if (const std::optional<int> v = resolve(*e, method)) {
            o.status = LookupStatus::found;
            o.value = *v;
            o.params = params;
        } else {
            o.status = LookupStatus::method_not_allowed;
        }
        return o;
    }

private:
    struct Entry {
        std::string pattern;
        std::vector<std::string> segs;
        std::map<std::string, int, std::less<>> methods;
        std::optional<int> any;
    };

    void register_method(const std::optional<std::string>& method) {
        if (method) {
            known_methods_.insert(*method);
        }
    }

    /// Segment kinds (2 static, 1 parameter, 0 catch-all) when `segs` matches, else nullopt.
    static std::optional<std::vector<int>>
    match(const Entry& e, const std::vector<std::string>& segs, ParamList& params) {
        std::vector<int> kinds;
        for (std::size_t k = 0; k < e.segs.size(); ++k) {
            const std::string& p = e.segs[k];
            if (k >= segs.size()) {
                return std::nullopt;
            }
            if (!p.empty() && p[0] == '*') {
                std::string rest = segs[k];
                for (std::size_t j = k + 1; j < segs.size(); ++j) {
                    rest += "/";
                    rest += segs[j];
                }
                params.emplace_back(p.substr(1), rest);
                kinds.push_back(0);
                return kinds;
            }
            if (!p.empty() && p[0] == ':') {
                if (segs[k].empty()) {
                    return std::nullopt;
                }
                params.emplace_back(p.substr(1), segs[k]);
                kinds.push_back(1);
            } else if (p != segs[k]) {
                return std::nullopt;
            } else {
                kinds.push_back(2);
            }
        }
        if (segs.size() != e.segs.size()) {
            return std::nullopt;
        }
        return kinds;
    }

    /// The most specific route matching `path` (static > parameter > catch-all, left first).
    const Entry* best(std::string_view path, ParamList& params) const {
        const std::vector<std::string> segs = split_segments(path);
        const Entry* winner = nullptr;
        std::vector<int> winner_kinds;
        for (const Entry& e : entries_) {
            ParamList p;
            const std::optional<std::vector<int>> kinds = match(e, segs, p);
            if (kinds && (winner == nullptr || *kinds > winner_kinds)) {
                winner = &e;
                winner_kinds = *kinds;
                params = p;
            }
        }
        return winner;
    }

    static std::optional<int> resolve(const Entry& e, std::string_view method) {
        if (const auto it = e.methods.find(method); it != e.methods.end()) {
            return it->second;
        }
        if (method == "HEAD") {
            if (const auto it = e.methods.find("GET"); it != e.methods.end()) {
                return it->second;
            }
        }
        return e.any;
    }

    [[nodiscard]] std::string allow(const Entry& e) const {
        std::set<std::string> set;
        for (const auto& [m, v] : e.methods) {
            set.insert(m);
        }
        if (set.contains("GET")) {
            set.insert("HEAD");
        }
        if (e.any) {
            set.insert({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"});
            for (const std::string& m : known_methods_) {
                if (allow_rank(m) == 50) {
                    set.insert(m);
                }
            }
        }
        set.insert("OPTIONS");
        std::vector<std::string> list(set.begin(), set.end());
        std::stable_sort(list.begin(), list.end(), [](const std::string& a, const std::string& b) {
            return allow_rank(a) < allow_rank(b);
        });
        std::string out;
        for (const std::string& m : list) {
            out += out.empty() ? "" : ", ";
            out += m;
        }
        return out;
    }

    std::vector<Entry> entries_;
    std::set<std::string> known_methods_;
};

} // namespace test::naive
