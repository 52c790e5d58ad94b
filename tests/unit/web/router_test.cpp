// SPDX-License-Identifier: MIT
// Unit tests for web::Router: matching, priorities, conflicts, 405/Allow, HEAD, trailing slashes,
// a GitHub-like API table, a naive-matcher fuzz comparison and allocation-free lookups.
#include <ringwork/http/parser.hpp>
#include <ringwork/web/router.hpp>

#include "github_routes.hpp"
#include "web/bytes.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <doctest/doctest.h>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "alloc_counter.hpp"
#include "naive_router.hpp"

namespace web = ringwork::web;
using web::LookupStatus;
using web::Params;
using web::Router;

namespace {

using test::naive::NaiveRouter;
using test::naive::Outcome;
using test::naive::ParamList;
using test::naive::status_name;

ParamList to_list(const Params& params) {
    ParamList out;
    for (const web::Param& p : params) {
        out.emplace_back(std::string(p.key), std::string(p.value));
    }
    return out;
}

/// Appends every part to one string (g++ 12 at -O3 warns falsely about `"literal" + string`
/// with -Wrestrict, GCC PR105651, so this file never writes that).
template <class... Parts>
std::string cat(const Parts&... parts) {
    std::string out;
    ((out += parts), ...);
    return out;
}

std::string show(const Outcome& o) {
    std::string out = cat(status_name(o.status), " value=", std::to_string(o.value),
                          " pattern=", o.pattern, " allow=[", o.allow, "] params={");
    for (const auto& [k, v] : o.params) {
        out += cat(k, "=", v, ";");
    }
    return cat(out, "}");
}

Outcome run(const Router<int>& router, std::string_view method, std::string_view path) {
    Params params;
    const web::LookupResult<int> r = router.lookup(method, path, params);
    Outcome o;
    o.status = r.status;
    if (r.found()) {
        o.value = *r.value;
        o.params = to_list(params);
    }
    o.allow = std::string(r.allow);
    o.pattern = std::string(r.pattern);
    return o;
}

/// The value found for method + path, or -1 (any other status).
int value_of(const Router<int>& router, std::string_view method, std::string_view path) {
    const Outcome o = run(router, method, path);
    return o.status == LookupStatus::found ? o.value : -1;
}

LookupStatus status_of(const Router<int>& router, std::string_view method, std::string_view path) {
    return run(router, method, path).status;
}

/// The message of the std::invalid_argument `f` throws; empty when it throws nothing.
template <class F>
std::string invalid_argument_message(F&& f) {
    try {
        f();
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return {};
}

bool contains(std::string_view haystack, std::string_view needle) {
    return haystack.find(needle) != std::string_view::npos;
}

using github_routes::kGitHub;
using github_routes::Route;

/// A concrete path for `pattern`: `:name` becomes "v<seed>_<name>", `*name` "f<seed>/x/<name>".
std::string concrete_path(std::string_view pattern, std::size_t seed, ParamList& params) {
    std::string path;
    std::size_t i = 0;
    while (i < pattern.size()) {
        const char c = pattern[i];
        if ((c == ':' || c == '*') && i > 0 && pattern[i - 1] == '/') {
            std::size_t end = pattern.find('/', i);
            if (end == std::string_view::npos) {
                end = pattern.size();
            }
            const std::string name(pattern.substr(i + 1, end - i - 1));
            const std::string value = c == ':' ? cat("v", std::to_string(seed), "_", name)
                                               : cat("f", std::to_string(seed), "/x/", name);
            params.emplace_back(name, value);
            path += value;
            i = end;
            continue;
        }
        path += c;
        ++i;
    }
    return path;
}

// --- the naive model: tests/support/naive_router.hpp ---------------------------------------

Router<int> github_router() {
    Router<int> router;
    for (std::size_t i = 0; i < kGitHub.size(); ++i) {
        router.add(kGitHub[i].method, kGitHub[i].pattern, static_cast<int>(i));
    }
    router.freeze();
    return router;
}

} // namespace

// --- matching -----------------------------------------------------------------------------

TEST_CASE("static routes match exactly") {
    Router<int> r;
    r.add("GET", "/", 0);
    r.add("GET", "/users", 1);
    r.add("GET", "/users/new", 2);
    r.add("GET", "/about/team", 3);
    r.add("GET", "/about/teams", 4);
    r.freeze();
    CHECK(r.size() == 5);
    CHECK(r.max_params() == 0);
    CHECK(value_of(r, "GET", "/") == 0);
    CHECK(value_of(r, "GET", "/users") == 1);
    CHECK(value_of(r, "GET", "/users/new") == 2);
    CHECK(value_of(r, "GET", "/about/team") == 3);
    CHECK(value_of(r, "GET", "/about/teams") == 4);
    for (const std::string_view miss :
         {"/use", "/usersx", "/users/ne", "/users/newx", "/about", "/about/tea", "/about/teamsx",
          "/About/team", "/x", "/users//new"}) {
        CAPTURE(miss);
        CHECK(status_of(r, "GET", miss) == LookupStatus::not_found);
    }
    // "//" minus its trailing slash is "/", which exists.
    CHECK(status_of(r, "GET", "//") == LookupStatus::redirect_trailing_slash);
    // Not a path at all.
    CHECK(status_of(r, "GET", "") == LookupStatus::not_found);
    CHECK(status_of(r, "GET", "users") == LookupStatus::not_found);
    CHECK(status_of(r, "GET", "*") == LookupStatus::not_found);
}

TEST_CASE("named parameters match one non-empty segment") {
    Router<int> r;
    r.add("GET", "/users/:id", 1);
    r.add("GET", "/users/:id/posts/:post", 2);
    r.add("GET", "/:lang/docs", 3);
    r.freeze();
    CHECK(r.max_params() == 2);

    Outcome o = run(r, "GET", "/users/42");
    CHECK(o.value == 1);
    CHECK(o.params == ParamList{{"id", "42"}});
    CHECK(o.pattern == "/users/:id");

    o = run(r, "GET", "/users/a.b-c~d%20e/posts/x:y");
    CHECK(o.value == 2);
    CHECK(o.params == ParamList{{"id", "a.b-c~d%20e"}, {"post", "x:y"}});

    o = run(r, "GET", "/en/docs");
    CHECK(o.value == 3);
    CHECK(o.params == ParamList{{"lang", "en"}});

    CHECK(status_of(r, "GET", "/users//posts/1") == LookupStatus::not_found);
    CHECK(status_of(r, "GET", "/users/1/posts/") == LookupStatus::not_found);
    CHECK(status_of(r, "GET", "/users/1/posts/2/3") == LookupStatus::not_found);
    CHECK(status_of(r, "GET", "/users/1/comments/2") == LookupStatus::not_found);
    CHECK(status_of(r, "GET", "//docs") == LookupStatus::not_found);
}

TEST_CASE("a catch-all matches the rest of the path, possibly empty") {
    Router<int> r;
    r.add("GET", "/files/*path", 1);
    r.add("GET", "/repos/:owner/contents/*path", 2);
    r.freeze();

    Outcome o = run(r, "GET", "/files/a/b/c.txt");
    CHECK(o.value == 1);
    CHECK(o.params == ParamList{{"path", "a/b/c.txt"}});
    o = run(r, "GET", "/files/");
    CHECK(o.value == 1);
    CHECK(o.params == ParamList{{"path", ""}});
    o = run(r, "GET", "/files//x/");
    CHECK(o.params == ParamList{{"path", "/x/"}});
    o = run(r, "GET", "/repos/me/contents/src/main.cpp");
    CHECK(o.value == 2);
    CHECK(o.params == ParamList{{"owner", "me"}, {"path", "src/main.cpp"}});

    // "/files" itself is not matched: the slash before the catch-all is part of the route.
    CHECK(status_of(r, "GET", "/files") == LookupStatus::redirect_trailing_slash);
    CHECK(status_of(r, "GET", "/filesx") == LookupStatus::not_found);

    Router<int> root;
    root.add("GET", "/*all", 7);
    root.freeze();
    CHECK(run(root, "GET", "/").params == ParamList{{"all", ""}});
    CHECK(run(root, "GET", "/a/b/").params == ParamList{{"all", "a/b/"}});
}

TEST_CASE("static beats parameter beats catch-all, with backtracking") {
    Router<int> r;
    r.add("GET", "/users/new", 1);
    r.add("GET", "/users/new/edit", 2);
    r.add("GET", "/users/:id", 3);
    r.add("GET", "/users/:id/posts", 4);
    r.add("GET", "/users/*rest", 5);
    r.add("GET", "/search/new", 6);
    r.add("GET", "/search/neat", 7);
    r.add("GET", "/search/:q", 8);
    r.add("GET", "/static/favicon.ico", 9);
    r.add("GET", "/static/*file", 10);
    r.freeze();

    CHECK(value_of(r, "GET", "/users/new") == 1);
    CHECK(value_of(r, "GET", "/users/new/edit") == 2);
    CHECK(value_of(r, "GET", "/users/newbie") == 3);
    CHECK(value_of(r, "GET", "/users/ne") == 3);
    // The static branch dead-ends: the parameter takes "new".
    Outcome o = run(r, "GET", "/users/new/posts");
    CHECK(o.value == 4);
    CHECK(o.params == ParamList{{"id", "new"}});
    // Neither static nor parameter fits: the catch-all does.
    o = run(r, "GET", "/users/new/edit/more");
    CHECK(o.value == 5);
    CHECK(o.params == ParamList{{"rest", "new/edit/more"}});
    o = run(r, "GET", "/users/1/2/3");
    CHECK(o.value == 5);
    CHECK(o.params == ParamList{{"rest", "1/2/3"}});
    o = run(r, "GET", "/users/");
    CHECK(o.value == 5); // a parameter needs a non-empty segment, a catch-all does not
    CHECK(o.params == ParamList{{"rest", ""}});
    // Edges split inside a segment ("ne" + "w"/"at") fall back to the parameter too.
    CHECK(value_of(r, "GET", "/search/new") == 6);
    CHECK(value_of(r, "GET", "/search/neat") == 7);
    CHECK(value_of(r, "GET", "/search/nexus") == 8);
    CHECK(value_of(r, "GET", "/search/ne") == 8);
    CHECK(value_of(r, "GET", "/search/n") == 8);
    CHECK(value_of(r, "GET", "/static/favicon.ico") == 9);
    CHECK(run(r, "GET", "/static/favicon.icon").params == ParamList{{"file", "favicon.icon"}});
    CHECK(run(r, "GET", "/static/favicon.ico/x").params == ParamList{{"file", "favicon.ico/x"}});
}

TEST_CASE("':' and '*' inside a segment are literal") {
    Router<int> r;
    r.add("POST", "/v1/things:batchGet", 1);
    r.add("GET", "/v1/things/:name", 2);
    r.add("GET", "/glob/a*b", 3);
    r.freeze();
    CHECK(value_of(r, "POST", "/v1/things:batchGet") == 1);
    CHECK(status_of(r, "POST", "/v1/things:other") == LookupStatus::not_found);
    CHECK(run(r, "GET", "/v1/things/x:y").params == ParamList{{"name", "x:y"}});
    CHECK(value_of(r, "GET", "/glob/a*b") == 3);
    CHECK(status_of(r, "GET", "/glob/ab") == LookupStatus::not_found);
}

// --- methods ------------------------------------------------------------------------------

TEST_CASE("405 with the Allow list of the matched route") {
    Router<int> r;
    r.add("GET", "/users", 1);
    r.add("POST", "/users", 2);
    r.add("GET", "/users/:id", 3);
    r.add("PUT", "/users/:id", 4);
    r.add("DELETE", "/users/:id", 5);
    r.add("PATCH", "/users/:id", 6);
    r.add("POST", "/login", 7);
    r.add("PURGE", "/cache/*key", 8);
    r.add("BREW", "/cache/*key", 9);
    r.add("OPTIONS", "/cors", 10);
    r.add("GET", "/cors", 11);
    r.freeze();

    Outcome o = run(r, "DELETE", "/users");
    CHECK(o.status == LookupStatus::method_not_allowed);
    CHECK(o.allow == "GET, HEAD, POST, OPTIONS");
    CHECK(o.pattern == "/users");
    CHECK(o.value == -1);

    CHECK(run(r, "POST", "/users/9").allow == "GET, HEAD, PUT, PATCH, DELETE, OPTIONS");
    CHECK(run(r, "GET", "/users/9").allow == "GET, HEAD, PUT, PATCH, DELETE, OPTIONS");
    CHECK(run(r, "GET", "/login").allow == "POST, OPTIONS");
    CHECK(run(r, "GET", "/cache/a/b").allow == "BREW, PURGE, OPTIONS");
    CHECK(value_of(r, "PURGE", "/cache/a/b") == 8);
    CHECK(run(r, "POST", "/cors").allow == "GET, HEAD, OPTIONS");

    // OPTIONS is answered by the caller from the 405 unless a route registers it.
    o = run(r, "OPTIONS", "/users/9");
    CHECK(o.status == LookupStatus::method_not_allowed);
    CHECK(o.allow == "GET, HEAD, PUT, PATCH, DELETE, OPTIONS");
    CHECK(value_of(r, "OPTIONS", "/cors") == 10);

    // Methods are case-sensitive; a method no route registers is simply not allowed.
    CHECK(status_of(r, "get", "/users") == LookupStatus::method_not_allowed);
    CHECK(status_of(r, "FOO", "/users") == LookupStatus::method_not_allowed);

    CHECK(r.allowed_methods("/users") == "GET, HEAD, POST, OPTIONS");
    CHECK(r.allowed_methods("/users/1") == "GET, HEAD, PUT, PATCH, DELETE, OPTIONS");
    CHECK(r.allowed_methods("/nope").empty());
    CHECK(r.allowed_methods("").empty());
}

TEST_CASE("GET answers HEAD unless HEAD is registered; any catches the rest") {
    Router<int> r;
    r.add("GET", "/a", 1);
    r.add("GET", "/b", 2);
    r.add("HEAD", "/b", 3);
    r.add("HEAD", "/c", 4);
    r.add_any("/d", 5);
    r.add("GET", "/d", 6);
    r.add_any("/e", 7);
    r.add("PURGE", "/f", 8);
    r.freeze();

    CHECK(value_of(r, "HEAD", "/a") == 1);
    CHECK(value_of(r, "HEAD", "/b") == 3);
    CHECK(value_of(r, "GET", "/b") == 2);
    CHECK(value_of(r, "HEAD", "/c") == 4);
    CHECK(status_of(r, "GET", "/c") == LookupStatus::method_not_allowed);
    CHECK(run(r, "GET", "/c").allow == "HEAD, OPTIONS");

    CHECK(value_of(r, "GET", "/d") == 6);
    CHECK(value_of(r, "HEAD", "/d") == 6); // GET is more specific than any
    CHECK(value_of(r, "POST", "/d") == 5);
    CHECK(value_of(r, "OPTIONS", "/d") == 5);
    CHECK(value_of(r, "NEVER-SEEN", "/d") == 5);
    CHECK(value_of(r, "GET", "/e") == 7);
    CHECK(value_of(r, "HEAD", "/e") == 7);
    CHECK(value_of(r, "PURGE", "/e") == 7);
    CHECK(r.allowed_methods("/e") == "GET, HEAD, POST, PUT, PATCH, DELETE, PURGE, OPTIONS");
}

TEST_CASE("a more specific route shadows a less specific one for every method") {
    Router<int> r;
    r.add("GET", "/users/me", 1);
    r.add("GET", "/users/:id", 2);
    r.add("DELETE", "/users/:id", 3);
    r.freeze();
    CHECK(value_of(r, "DELETE", "/users/7") == 3);
    const Outcome o = run(r, "DELETE", "/users/me");
    CHECK(o.status == LookupStatus::method_not_allowed);
    CHECK(o.allow == "GET, HEAD, OPTIONS");
    CHECK(r.allowed_methods("/users/me") == o.allow); // OPTIONS agrees with the 405
}

// --- trailing slashes ---------------------------------------------------------------------

TEST_CASE("trailing-slash redirect flag, both ways") {
    Router<int> r;
    r.add("GET", "/users", 1);
    r.add("GET", "/teams/", 2);
    r.add("GET", "/both", 3);
    r.add("GET", "/both/", 4);
    r.add("GET", "/orgs/:org/", 5);
    r.add("POST", "/posts", 6);
    r.add("GET", "/", 7);
    r.freeze();

    CHECK(status_of(r, "GET", "/users/") == LookupStatus::redirect_trailing_slash);
    CHECK(status_of(r, "GET", "/teams") == LookupStatus::redirect_trailing_slash);
    CHECK(status_of(r, "HEAD", "/teams") == LookupStatus::redirect_trailing_slash);
    CHECK(value_of(r, "GET", "/both") == 3);
    CHECK(value_of(r, "GET", "/both/") == 4);
    CHECK(status_of(r, "GET", "/orgs/acme") == LookupStatus::redirect_trailing_slash);
    CHECK(value_of(r, "GET", "/orgs/acme/") == 5);
    CHECK(status_of(r, "POST", "/posts/") == LookupStatus::redirect_trailing_slash);
    // Only when the twin accepts the method, and only one slash.
    CHECK(status_of(r, "GET", "/posts/") == LookupStatus::not_found);
    CHECK(status_of(r, "POST", "/users/") == LookupStatus::not_found);
    CHECK(status_of(r, "GET", "/users//") == LookupStatus::not_found);
    CHECK(status_of(r, "GET", "/user") == LookupStatus::not_found);
    // A found path never reports the flag.
    CHECK(status_of(r, "GET", "/") == LookupStatus::found);

    Router<int> root;
    root.add("GET", "/x", 1);
    root.freeze();
    CHECK(status_of(root, "GET", "/") == LookupStatus::not_found);
}

// --- conflicts and invalid routes ---------------------------------------------------------

TEST_CASE("conflicts name both routes") {
    SUBCASE("different parameter names at the same position") {
        Router<int> r;
        r.add("GET", "/users/:id", 1);
        const std::string msg = invalid_argument_message([&] { r.add("GET", "/users/:name", 2); });
        CHECK(contains(msg, "\"/users/:name\" conflicts with \"/users/:id\""));
        CHECK(contains(msg, "parameter names"));
    }
    SUBCASE("deeper, and across methods (one tree serves every method)") {
        Router<int> r;
        r.add("GET", "/repos/:owner/:repo/issues", 1);
        const std::string msg =
            invalid_argument_message([&] { r.add("DELETE", "/repos/:owner/:name", 2); });
        CHECK(contains(msg, "\"/repos/:owner/:name\""));
        CHECK(contains(msg, "\"/repos/:owner/:repo/issues\""));
        const std::string first =
            invalid_argument_message([&] { r.add("POST", "/repos/:user/x", 3); });
        CHECK(contains(first, "\"/repos/:user/x\" conflicts with \"/repos/:owner/:repo/issues\""));
    }
    SUBCASE("different catch-all names at the same position") {
        Router<int> r;
        r.add("GET", "/files/*path", 1);
        const std::string msg = invalid_argument_message([&] { r.add("PUT", "/files/*rest", 2); });
        CHECK(contains(msg, "\"/files/*rest\" conflicts with \"/files/*path\""));
        CHECK(contains(msg, "catch-all"));
    }
    SUBCASE("duplicate method and pattern") {
        Router<int> r;
        r.add("GET", "/users/:id", 1);
        r.add("POST", "/users/:id", 2);
        const std::string msg = invalid_argument_message([&] { r.add("GET", "/users/:id", 3); });
        CHECK(contains(msg, "GET \"/users/:id\" conflicts with GET \"/users/:id\""));
        CHECK(contains(msg, "duplicate"));
        r.add_any("/users/:id", 4);
        CHECK(contains(invalid_argument_message([&] { r.add_any("/users/:id", 5); }), "duplicate"));
    }
    SUBCASE("allowed: static, parameter and catch-all siblings; same names elsewhere") {
        Router<int> r;
        r.add("GET", "/a/:x", 1);
        r.add("GET", "/a/b", 2);
        r.add("GET", "/a/*rest", 3);
        r.add("GET", "/b/:y", 4);    // other position
        r.add("GET", "/a/:x/:y", 5); // same name at the same position
        r.add("POST", "/a/:x", 6);
        r.add("GET", "/a/b/", 7);
        CHECK_NOTHROW(r.freeze());
    }
    SUBCASE("a refused route leaves the router unchanged") {
        Router<std::string> r;
        r.add("GET", "/users/:id/posts", "posts");
        CHECK_THROWS_AS(r.add("GET", "/users/:id/posts/:pid/x/:id", "dup name"),
                        std::invalid_argument);
        CHECK_THROWS_AS(r.add("GET", "/users/:uid/comments", "x"), std::invalid_argument);
        CHECK_THROWS_AS(r.add("GET", "/users/:id/posts", "again"), std::invalid_argument);
        // Nothing of the refused routes was kept: no node for ":uid" remains to conflict with.
        r.add("GET", "/users/:id/comments", "comments");
        r.freeze();
        CHECK(r.size() == 2);
        Params p;
        const auto res = r.lookup("GET", "/users/3/comments", p);
        REQUIRE(res.found());
        CHECK(*res.value == "comments");
        CHECK(r.lookup("GET", "/users/3/posts", p).value ==
              r.lookup("GET", "/users/4/posts", p).value);
        CHECK(*r.lookup("GET", "/users/3/posts", p).value == "posts");
    }
}

TEST_CASE("invalid routes and methods are refused") {
    Router<int> r;
    const auto refused = [&](std::string_view pattern, std::string_view why) {
        const std::string msg = invalid_argument_message([&] { r.add("GET", pattern, 0); });
        CAPTURE(pattern);
        CAPTURE(msg);
        CHECK(contains(msg, cat("\"", pattern, "\"")));
        CHECK(contains(msg, why));
    };
    refused("", "must start with '/'");
    refused("users", "must start with '/'");
    refused("/users/:", "needs a name");
    refused("/users/:/x", "needs a name");
    refused("/files/*", "needs a name");
    refused("/files/*path/edit", "catch-all \"*path\" must be the last segment");
    refused("/users/:id.json", "not [A-Za-z0-9_]+");
    refused("/a/:x/b/:x", "used twice");
    refused("/a/:x/*x", "used twice");

    std::string sixteen;
    for (int i = 0; i < 16; ++i) {
        sixteen += cat("/:p", std::to_string(i));
    }
    CHECK_NOTHROW(r.add("GET", sixteen, 16));
    refused(cat(sixteen, "/:p16"), "more than 16 parameters");

    CHECK(contains(invalid_argument_message([&] { r.add("", "/x", 0); }), "method"));
    CHECK(contains(invalid_argument_message([&] { r.add("GE T", "/x", 0); }), "\"GE T\""));
    CHECK(contains(invalid_argument_message([&] { r.add("GET\r\n", "/x", 0); }), "method"));
    CHECK_NOTHROW(r.add("M-SEARCH", "/x", 1));

    r.freeze();
    CHECK(r.max_params() == 16);
    CHECK_THROWS_AS(r.add("GET", "/late", 2), std::logic_error);
    CHECK_THROWS_AS(r.add_any("/late", 2), std::logic_error);
    r.freeze(); // idempotent

    Params p;
    std::string path;
    for (int i = 0; i < 16; ++i) {
        path += cat("/", std::to_string(i));
    }
    REQUIRE(r.lookup("GET", path, p).found());
    CHECK(p.size() == Params::kCapacity);
    CHECK(p.get("p15") == "15");
}

// --- build, freeze, params ------------------------------------------------------------------

TEST_CASE("lookups before freeze find nothing") {
    Router<int> r;
    r.add("GET", "/", 1);
    CHECK(!r.frozen());
    CHECK(status_of(r, "GET", "/") == LookupStatus::not_found);
    CHECK(r.allowed_methods("/").empty());
    CHECK(r.node_count() == 0);
    r.freeze();
    CHECK(r.frozen());
    CHECK(value_of(r, "GET", "/") == 1);

    Router<int> empty;
    empty.freeze();
    CHECK(status_of(empty, "GET", "/") == LookupStatus::not_found);
}

TEST_CASE("Params: get, contains, iteration; keys outlive moves of the router") {
    auto built = std::make_unique<Router<std::string>>();
    built->add("GET", "/orgs/:org/teams/:team/*rest", "teams");
    built->freeze();
    Router<std::string> r = std::move(*built);

    Params p;
    p.clear();
    const std::string path = "/orgs/acme/teams/core/a/b";
    const auto res = r.lookup("GET", path, p);
    REQUIRE(res.found());
    CHECK(*res.value == "teams");
    built.reset();
    Router<std::string> moved = std::move(r);

    REQUIRE(p.size() == 3);
    CHECK(!p.empty());
    CHECK(p.get("org") == "acme");
    CHECK(p.get("team") == "core");
    CHECK(p.get("rest") == "a/b");
    CHECK(p.get("nope").empty());
    CHECK(p.contains("rest"));
    CHECK(!p.contains("nope"));
    CHECK(p[0].key == "org");
    CHECK(p[2].value == "a/b");
    CHECK(p[1].value.data() == path.data() + 17); // a view into the path, not a copy
    std::vector<std::string> keys;
    for (const web::Param& param : p) {
        keys.emplace_back(param.key);
    }
    CHECK(keys == std::vector<std::string>{"org", "team", "rest"});
    CHECK(moved.lookup("GET", path, p).found());
    // NOLINTNEXTLINE(bugprone-use-after-move): a moved-from router is valid and finds nothing.
    CHECK(r.lookup("GET", path, p).status == LookupStatus::not_found);
    CHECK(r.allowed_methods(path).empty());
    r.freeze();
    CHECK_THROWS_AS(r.add("GET", "/", "x"), std::logic_error);

    // Each lookup starts from empty params.
    CHECK(moved.lookup("GET", "/nope", p).status == LookupStatus::not_found);
    CHECK(p.empty());
}

// --- the GitHub API -----------------------------------------------------------------------

TEST_CASE("GitHub API: every route with concrete values") {
    const Router<int> router = github_router();
    CHECK(router.size() == kGitHub.size());
    MESSAGE("GitHub table: " << kGitHub.size() << " routes, " << router.node_count()
                             << " nodes, max " << router.max_params() << " params");

    std::map<std::string_view, std::map<std::string_view, int>> by_pattern;
    for (std::size_t i = 0; i < kGitHub.size(); ++i) {
        by_pattern[kGitHub[i].pattern][kGitHub[i].method] = static_cast<int>(i);
    }
    for (std::size_t i = 0; i < kGitHub.size(); ++i) {
        const Route& route = kGitHub[i];
        ParamList expected;
        const std::string path = concrete_path(route.pattern, i, expected);
        CAPTURE(route.method);
        CAPTURE(route.pattern);
        CAPTURE(path);
        Outcome o = run(router, route.method, path);
        CHECK(o.status == LookupStatus::found);
        CHECK(o.value == static_cast<int>(i));
        CHECK(o.params == expected);
        CHECK(o.pattern == route.pattern);

        const std::map<std::string_view, int>& methods = by_pattern[route.pattern];
        std::string allow;
        for (const std::string_view m :
             {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}) {
            const bool listed =
                methods.contains(m) || m == "OPTIONS" || (m == "HEAD" && methods.contains("GET"));
            if (listed) {
                allow += cat(allow.empty() ? "" : ", ", m);
            }
        }
        CHECK(o.allow == allow);
        CHECK(router.allowed_methods(path) == allow);

        o = run(router, "HEAD", path);
        if (methods.contains("GET")) {
            CHECK(o.value == methods.at("GET"));
        } else {
            CHECK(o.status == LookupStatus::method_not_allowed);
        }
        for (const std::string_view m : {"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}) {
            o = run(router, m, path);
            if (methods.contains(m)) {
                CHECK(o.value == methods.at(m));
            } else {
                CHECK(o.status == LookupStatus::method_not_allowed);
                CHECK(o.allow == allow);
            }
        }
    }
    CHECK(status_of(router, "GET", "/user/") == LookupStatus::redirect_trailing_slash);
    CHECK(status_of(router, "GET", "/repos/a/b/git/refs/") == LookupStatus::found); // catch-all
    CHECK(status_of(router, "GET", "/repos/a/b/issues/") == LookupStatus::redirect_trailing_slash);
    CHECK(status_of(router, "GET", "/repos/a/b/c/d/e") == LookupStatus::not_found);
    CHECK(status_of(router, "GET", "/legacy/user/search") == LookupStatus::not_found);
    CHECK(run(router, "GET", "/repos/a/b/tarball/main").params ==
          ParamList{{"owner", "a"}, {"repo", "b"}, {"archive_format", "tarball"}, {"ref", "main"}});
    CHECK(run(router, "GET", "/repos/a/b/issues/comments").pattern ==
          "/repos/:owner/:repo/issues/comments");
    CHECK(run(router, "GET", "/repos/a/b/issues/comment").pattern ==
          "/repos/:owner/:repo/issues/:number");
}

TEST_CASE("registration order (and so child priority) does not change results") {
    const Router<int> reference = github_router();
    std::vector<std::pair<std::string, std::string>> probes; // (method, path)
    for (std::size_t i = 0; i < kGitHub.size(); ++i) {
        ParamList unused;
        const std::string path = concrete_path(kGitHub[i].pattern, i, unused);
        for (const std::string_view m : {"GET", "HEAD", "POST", "DELETE"}) {
            probes.emplace_back(m, path);
            probes.emplace_back(m, path + "/");
            probes.emplace_back(m, path.substr(0, path.size() - 1));
        }
    }
    std::mt19937 rng(20240601U);
    for (int round = 0; round < 4; ++round) {
        std::vector<std::size_t> order(kGitHub.size());
        for (std::size_t i = 0; i < order.size(); ++i) {
            order[i] = i;
        }
        if (round == 0) {
            std::reverse(order.begin(), order.end());
        } else {
            std::shuffle(order.begin(), order.end(), rng);
        }
        Router<int> r;
        for (const std::size_t i : order) {
            r.add(kGitHub[i].method, kGitHub[i].pattern, static_cast<int>(i));
        }
        r.freeze();
        CHECK(r.node_count() == reference.node_count());
        for (const auto& [method, path] : probes) {
            const Outcome expected = run(reference, method, path);
            const Outcome got = run(r, method, path);
            if (!(got == expected)) {
                FAIL_CHECK(method << " " << path << ": " << show(got) << " != " << show(expected));
            }
        }
    }
}

// --- fuzz against the naive matcher ---------------------------------------------------------

TEST_CASE("random routes and paths agree with a naive matcher") {
    std::mt19937 rng(0xC0FFEEU);
    const auto pick = [&rng](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
    constexpr std::array<std::string_view, 6> kStatic = {"a", "b", "ab", "abc", "ba", "a:b"};
    constexpr std::array<std::string_view, 8> kPathSegments = {"a",  "b",   "ab", "abc",
                                                               "ba", "a:b", "zz", "abcd"};
    constexpr std::array<std::string_view, 6> kMethods = {"GET",    "POST", "PUT",
                                                          "DELETE", "HEAD", "PURGE"};
    constexpr std::array<std::string_view, 9> kProbeMethods = {
        "GET", "POST", "PUT", "DELETE", "HEAD", "PURGE", "OPTIONS", "PATCH", "BREW"};

    std::size_t accepted_total = 0;
    std::size_t refused_total = 0;
    std::size_t found_total = 0;
    for (int round = 0; round < 40; ++round) {
        Router<int> router;
        NaiveRouter naive;
        for (int i = 0; i < 60; ++i) {
            std::string pattern;
            const std::size_t depth = 1 + pick(4);
            for (std::size_t d = 0; d < depth; ++d) {
                pattern += '/';
                const std::size_t kind = pick(10);
                const std::string suffix = std::to_string(d);
                if (kind < 6) {
                    pattern += kStatic[pick(kStatic.size())];
                } else if (kind < 9) {
                    pattern += (pick(3) == 0 ? ":y" : ":x") + suffix;
                } else {
                    pattern += (pick(3) == 0 ? "*s" : "*r") + suffix;
                    break;
                }
            }
            if (pick(5) == 0 && pattern.find('*') == std::string::npos) {
                pattern += '/';
            }
            const bool any = pick(8) == 0;
            const std::string method(kMethods[pick(kMethods.size())]);
            const bool expect_ok =
                naive.add(any ? std::nullopt : std::optional(method), pattern, i);
            const std::string msg = invalid_argument_message([&] {
                if (any) {
                    router.add_any(pattern, i);
                } else {
                    router.add(method, pattern, i);
                }
            });
            CAPTURE(pattern);
            CAPTURE(msg);
            CHECK(msg.empty() == expect_ok);
            (expect_ok ? accepted_total : refused_total) += 1;
        }
        router.freeze();

        for (int probe = 0; probe < 400; ++probe) {
            std::string path;
            const std::size_t depth = pick(6);
            for (std::size_t d = 0; d < depth; ++d) {
                path += '/';
                if (pick(12) != 0) {
                    path += kPathSegments[pick(kPathSegments.size())];
                }
            }
            if (path.empty() || pick(4) == 0) {
                path += '/';
            }
            const std::string_view method = kProbeMethods[pick(kProbeMethods.size())];
            const Outcome expected = naive.lookup(method, path);
            const Outcome got = run(router, method, path);
            found_total += expected.status == LookupStatus::found ? 1 : 0;
            if (!(got == expected)) {
                FAIL_CHECK("round " << round << ": " << method << " " << path << ": got "
                                    << show(got) << ", naive " << show(expected));
            }
        }
    }
    MESSAGE("fuzz: " << accepted_total << " routes accepted, " << refused_total << " refused, "
                     << found_total << " of 16000 probes found");
    CHECK(refused_total > 0);
    CHECK(found_total > 1000);
}

// --- lookup by parsed method ----------------------------------------------------------------

namespace {

/// Looks `method` + `path` up through both overloads and checks they agree in every field.
void check_method_overload(const Router<int>& router, std::string_view method,
                           std::string_view path) {
    CAPTURE(method);
    CAPTURE(path);
    Params by_text;
    Params by_enum;
    const web::LookupResult<int> a = router.lookup(method, path, by_text);
    const web::LookupResult<int> b =
        router.lookup(ringwork::http::method_from(method), method, path, by_enum);
    CHECK(a.status == b.status);
    CHECK(a.value == b.value);
    CHECK(a.sibling == b.sibling);
    CHECK(a.allow == b.allow);
    CHECK(a.pattern == b.pattern);
    CHECK(to_list(by_text) == to_list(by_enum));
}

constexpr std::array<std::string_view, 13> kOverloadMethods = {
    "GET",   "HEAD",  "POST",  "PUT", "DELETE", "CONNECT", "OPTIONS",
    "TRACE", "PATCH", "PURGE", "FOO", "get",    "GETX"};

} // namespace

TEST_CASE("lookup by parsed Method agrees with lookup by text, for every method") {
    Router<int> r;
    int next = 0;
    for (const std::string_view m :
         {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}) {
        r.add(m, "/all", next++);
    }
    r.add("GET", "/g", next++);      // HEAD falls back to it
    r.add("POST", "/p/:id", next++); // 405 for the rest
    r.add_any("/any", next++);       // explicit methods elsewhere, any here
    r.add("PURGE", "/c", next++);    // a custom method (Method::other)
    r.add("PURGE", "/any", next++);  // custom beats any
    r.add("GET", "/dir/", next++);   // trailing-slash redirect from /dir
    r.add("DELETE", "/files/*rest", next++);
    r.freeze();
    for (const std::string_view m : kOverloadMethods) {
        for (const std::string_view path : {"/all", "/g", "/p/1", "/any", "/c", "/dir", "/dir/",
                                            "/files/a/b", "/files", "/nope", "/g/", ""}) {
            check_method_overload(r, m, path);
        }
    }
    Params params;
    CHECK(*r.lookup(ringwork::http::Method::patch, "PATCH", "/all", params).value == 8);
    CHECK(*r.lookup(ringwork::http::Method::head, "HEAD", "/g", params).value == 9);
    CHECK(*r.lookup(ringwork::http::Method::other, "PURGE", "/c", params).value == 12);
    CHECK(*r.lookup(ringwork::http::Method::other, "PURGE", "/any", params).value == 13);
    CHECK(*r.lookup(ringwork::http::Method::other, "FOO", "/any", params).value == 11);
    CHECK(r.lookup(ringwork::http::Method::other, "FOO", "/g", params).status ==
          LookupStatus::method_not_allowed);
}

TEST_CASE("lookup by parsed Method: only some methods registered, before freeze, moved from") {
    Router<int> r;
    r.add("POST", "/only-post", 1); // GET and HEAD have no column at all
    r.add("PURGE", "/x", 2);
    for (const std::string_view m : kOverloadMethods) {
        check_method_overload(r, m, "/only-post"); // not frozen: not found
    }
    r.freeze();
    for (const std::string_view m : kOverloadMethods) {
        for (const std::string_view path : {"/only-post", "/x", "/only-post/", "/y"}) {
            check_method_overload(r, m, path);
        }
    }
    const Router<int> moved = std::move(r);
    for (const std::string_view m : kOverloadMethods) {
        check_method_overload(moved, m, "/x");
        check_method_overload(r, m, "/x"); // NOLINT(bugprone-use-after-move): finds nothing
    }

    const Router<int> github = github_router();
    for (std::size_t i = 0; i < kGitHub.size(); ++i) {
        ParamList unused;
        const std::string path = concrete_path(kGitHub[i].pattern, i, unused);
        for (const std::string_view m : kOverloadMethods) {
            check_method_overload(github, m, path);
        }
    }
}

// --- label comparison ------------------------------------------------------------------------

TEST_CASE("same_bytes: every length to 20, a difference at every position, no read past n") {
    // Each range sits at the very end of its own allocation, at every alignment, so ASan
    // reports a load past n bytes.
    for (std::size_t n = 0; n <= 20; ++n) {
        for (std::size_t off = 0; off < 8; ++off) {
            const auto a_buf = std::make_unique<char[]>(off + n);
            const auto b_buf = std::make_unique<char[]>(off + n);
            char* const a = a_buf.get() + off;
            char* const b = b_buf.get() + off;
            for (std::size_t i = 0; i < n; ++i) {
                a[i] = b[i] = static_cast<char>('a' + (i * 7 + off) % 26);
            }
            CHECK(web::detail::same_bytes(a, b, n));
            for (std::size_t i = 0; i < n; ++i) {
                for (const unsigned flip : {0x01U, 0x80U, 0xFFU}) {
                    b[i] = static_cast<char>(static_cast<unsigned char>(a[i]) ^ flip);
                    CAPTURE(n);
                    CAPTURE(i);
                    CHECK_FALSE(web::detail::same_bytes(a, b, n));
                    CHECK_FALSE(web::detail::same_bytes(b, a, n));
                    b[i] = a[i];
                }
            }
        }
    }
}

// --- allocation and sharing ------------------------------------------------------------------

TEST_CASE("lookup never allocates") {
#ifdef TEST_NO_HEAP_COUNTER
    MESSAGE("skipped under ASan/TSan (the sanitizer owns operator new)");
#else
    const Router<int> router = github_router();
    std::vector<std::pair<std::string_view, std::string>> requests;
    for (std::size_t i = 0; i < kGitHub.size(); ++i) {
        ParamList unused;
        const std::string path = concrete_path(kGitHub[i].pattern, i, unused);
        requests.emplace_back(kGitHub[i].method, path);
        requests.emplace_back("OPTIONS", path);      // 405
        requests.emplace_back("GET", path + "/x/y"); // 404 with backtracking
        requests.emplace_back("GET", path + "/");    // trailing-slash check
    }
    Params params;
    std::size_t checksum = 0;
    const std::size_t sanity = test::g_heap_allocations.load();
    CHECK(*std::make_unique<int>(1) == 1);
    REQUIRE(test::g_heap_allocations.load() > sanity); // the counter sees this TU's allocations
    const std::size_t before = test::g_heap_allocations.load();
    for (std::size_t i = 0; i < 100'000; ++i) {
        const auto& [method, path] = requests[i % requests.size()];
        const web::LookupResult<int> r = router.lookup(method, path, params);
        checksum += static_cast<std::size_t>(r.status) + params.size() + r.allow.size() +
                    router.allowed_methods(path).size();
    }
    const std::size_t after = test::g_heap_allocations.load();
    CHECK(after - before == 0);
    CHECK(checksum > 0);
#endif
}

TEST_CASE("a frozen router is shared read-only by threads") {
    const Router<int> router = github_router();
    std::vector<std::string> paths;
    std::vector<int> expected;
    for (std::size_t i = 0; i < kGitHub.size(); ++i) {
        if (kGitHub[i].method == "GET") {
            ParamList unused;
            paths.push_back(concrete_path(kGitHub[i].pattern, i, unused));
            expected.push_back(static_cast<int>(i));
        }
    }
    std::atomic<std::size_t> mismatches{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            Params params;
            for (std::size_t n = 0; n < 20'000; ++n) {
                const std::size_t i = (n * 7 + static_cast<std::size_t>(t)) % paths.size();
                const web::LookupResult<int> r = router.lookup("GET", paths[i], params);
                if (!r.found() || *r.value != expected[i]) {
                    mismatches.fetch_add(1);
                }
            }
        });
    }
    for (std::thread& th : threads) {
        th.join();
    }
    CHECK(mismatches.load() == 0);
}
