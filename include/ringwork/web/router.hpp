// SPDX-License-Identifier: MIT
// Router<H>: a compressed radix tree (httprouter-style) mapping method + path to a value.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace ringwork::http {
// The parsed request method (defined in <ringwork/http/parser.hpp>): declared only, so the
// router does not pull in the HTTP layer's headers.
enum class Method : std::uint8_t;
} // namespace ringwork::http

namespace ringwork::web {

/// \brief The most parameters (`:name` and `*name` together) one route may declare.
inline constexpr std::size_t kMaxParams = 16;

namespace detail {
class RouteTree;
} // namespace detail

/// \brief One path parameter: its name (a view into the router) and its value (a view into the
/// looked-up path, not decoded any further).
struct Param {
    std::string_view key;
    std::string_view value;
};

/// \brief The parameters of one lookup, in pattern order, held inline (never allocates).
///
/// The caller owns it and may reuse it for every lookup (each lookup clears it first). Keys stay
/// valid while the router lives (moving the router keeps them valid); values point into the path
/// given to Router::lookup().
class Params {
public:
    /// \brief How many parameters fit: kMaxParams, which Router::add() enforces per route.
    static constexpr std::size_t kCapacity = kMaxParams;

    Params() noexcept {} // NOLINT(modernize-use-equals-default): leaves the slots unset
    Params(const Params& other) noexcept : size_(other.size_) {
        std::memcpy(slots_, other.slots_, size_ * sizeof(Param));
    }
    Params& operator=(const Params& other) noexcept {
        if (this != &other) {
            size_ = other.size_;
            std::memcpy(slots_, other.slots_, size_ * sizeof(Param));
        }
        return *this;
    }
    ~Params() = default;

    /// \brief The value of parameter `key`; an empty view when the route has no such parameter.
    [[nodiscard]] std::string_view get(std::string_view key) const noexcept {
        for (std::size_t i = 0; i < size_; ++i) {
            if (items()[i].key == key) {
                return items()[i].value;
            }
        }
        return {};
    }
    /// \brief Whether the matched route declares parameter `key` (its value may be empty only
    /// for a catch-all).
    [[nodiscard]] bool contains(std::string_view key) const noexcept {
        for (std::size_t i = 0; i < size_; ++i) {
            if (items()[i].key == key) {
                return true;
            }
        }
        return false;
    }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
    [[nodiscard]] const Param& operator[](std::size_t i) const noexcept { return items()[i]; }
    [[nodiscard]] const Param* begin() const noexcept { return items(); }
    [[nodiscard]] const Param* end() const noexcept { return items() + size_; }
    void clear() noexcept { size_ = 0; }
    /// \brief Re-point values viewing [from, from + len) at the same offsets of `to` (the
    /// request was copied out of its receive buffer).
    void rebase(const char* from, std::size_t len, const char* to) noexcept {
        for (std::size_t i = 0; i < size_; ++i) {
            std::string_view& v = items()[i].value;
            if (v.data() >= from && v.data() < from + len) {
                v = std::string_view(to + (v.data() - from), v.size());
            }
        }
    }

private:
    friend class detail::RouteTree;

    void push(std::string_view key, std::string_view value) noexcept {
        if (size_ < kCapacity) { // always true: add() rejects routes with more parameters
            ::new (static_cast<void*>(slots_ + size_ * sizeof(Param))) Param{key, value};
            ++size_;
        }
    }
    void truncate(std::size_t n) noexcept { size_ = n; }
    [[nodiscard]] Param* items() noexcept { return std::launder(reinterpret_cast<Param*>(slots_)); }
    [[nodiscard]] const Param* items() const noexcept {
        return std::launder(reinterpret_cast<const Param*>(slots_));
    }

    // Raw slots, [0, size_) constructed: a Params lives in every request's Context, where
    // zeroing 16 slots cost more than the route lookup that fills them.
    static_assert(std::is_trivially_copyable_v<Param> && std::is_trivially_destructible_v<Param>);
    alignas(Param) unsigned char slots_[kCapacity * sizeof(Param)];
    std::size_t size_ = 0;
};

/// \brief What a lookup found.
enum class LookupStatus : std::uint8_t {
    /// A route matches the path and accepts the method (`value` is set).
    found,
    /// A route matches the path but not the method: answer 405 with `allow` as the Allow header
    /// (or, for OPTIONS, answer 204 with it).
    method_not_allowed,
    /// No route matches the path.
    not_found,
    /// No route matches, but the path with its trailing slash removed (when it ends in '/') or
    /// added (when it does not) would be found for this method: the caller redirects (301 for
    /// GET/HEAD, 308 otherwise) to the path it builds itself.
    redirect_trailing_slash,
};

namespace detail {

/// \brief What the untyped tree found: the status, the value index and the matched route.
struct RawLookup {
    LookupStatus status = LookupStatus::not_found;
    std::uint32_t value = 0;
    std::uint32_t sibling = UINT32_MAX; ///< see LookupResult::sibling; UINT32_MAX = none
    std::string_view allow;
    std::string_view pattern;
};

/// \brief The method-agnostic tree behind Router<H>: values are indices into the router's
/// value vector. See Router for the semantics.
class RouteTree {
public:
    RouteTree();
    ~RouteTree();
    RouteTree(RouteTree&&) noexcept;
    RouteTree& operator=(RouteTree&&) noexcept;
    RouteTree(const RouteTree&) = delete;
    RouteTree& operator=(const RouteTree&) = delete;

    /// \brief Registers `pattern` for `method` (`any` true: for every method) with `value`.
    /// Throws std::invalid_argument (bad pattern or method, conflict, duplicate; the tree is
    /// then unchanged) or std::logic_error (after freeze()).
    void add(bool any, std::string_view method, std::string_view pattern, std::uint32_t value);
    /// \brief Flattens the tree into the lookup arrays; add() is refused afterwards.
    void freeze();
    [[nodiscard]] bool frozen() const noexcept { return frozen_; }
    /// \brief Looks up `method` + `path`; see Router::lookup().
    RawLookup lookup(std::string_view method, std::string_view path, Params& params) const noexcept;
    /// \brief The same, with the parsed method: a standard one costs a table load instead of a
    /// search of the method names (`other` searches them for `method_text`).
    RawLookup lookup(http::Method method, std::string_view method_text, std::string_view path,
                     Params& params) const noexcept;
    /// \brief The Allow list of the route matching `path`; empty when none does.
    [[nodiscard]] std::string_view allowed_methods(std::string_view path) const noexcept;
    [[nodiscard]] std::size_t route_count() const noexcept { return route_count_; }
    [[nodiscard]] std::size_t max_params() const noexcept { return max_params_; }
    [[nodiscard]] std::size_t node_count() const noexcept { return nodes_.size(); }

private:
    static constexpr std::uint32_t kNone = 0xffff'ffffU;
    /// http::Method's enumerators before `other`: the standard methods.
    static constexpr std::size_t kStandardMethods = 9;

    /// One frozen node. Static children are contiguous from `first_child`, in priority order,
    /// with their first bytes in `indices` (text_[indices_off, +child_count)).
    struct Node {
        std::uint32_t label_off = 0; ///< static: the edge label; wildcard: the parameter name
        std::uint32_t label_len = 0;
        std::uint32_t indices_off = 0;
        std::uint32_t first_child = 0;
        std::uint32_t child_count = 0;
        std::uint32_t param = kNone;     ///< the `:name` child
        std::uint32_t catch_all = kNone; ///< the `*name` child
        std::uint32_t leaf = kNone;      ///< index into leaves_ when a route ends here
    };
    /// One route end: its pattern and Allow list (both in text_).
    struct Leaf {
        std::uint32_t pattern_off = 0;
        std::uint32_t pattern_len = 0;
        std::uint32_t allow_off = 0;
        std::uint32_t allow_len = 0;
    };
    struct MethodName {
        std::uint32_t off = 0;
        std::uint32_t len = 0;
    };
    struct Builder;

    template <class Path, class Sink>
    std::uint32_t match(std::uint32_t index, const Path& path, std::size_t pos,
                        Sink& sink) const noexcept;
    [[nodiscard]] std::uint32_t column_of(std::string_view method) const noexcept;
    RawLookup lookup_column(std::uint32_t column, std::string_view path,
                            Params& params) const noexcept;
    /// The value the path with/without its trailing slash finds for `column` (kNone: none).
    [[nodiscard]] std::uint32_t slash_twin(std::uint32_t column, std::string_view path) const noexcept;
    [[nodiscard]] std::string_view text(std::uint32_t off, std::uint32_t len) const noexcept {
        return {text_.data() + off, len};
    }

    std::unique_ptr<Builder> builder_;
    std::vector<Node> nodes_;
    std::vector<Leaf> leaves_;
    std::vector<MethodName> methods_;        ///< column i + 1 is methods_[i]; column 0 is `any`
    /// column_of() of each standard method, indexed by http::Method (set by freeze()).
    std::array<std::uint32_t, kStandardMethods> method_columns_{};
    std::vector<std::uint32_t> leaf_values_; ///< [leaf * columns_ + column], kNone: not allowed
    std::vector<char> text_;                 ///< labels, names, indices, patterns, Allow lists
    std::uint32_t columns_ = 1;
    std::size_t route_count_ = 0;
    std::size_t max_params_ = 0;
    bool frozen_ = false;
};

} // namespace detail

/// \brief The result of Router<H>::lookup().
template <class H>
struct LookupResult {
    LookupStatus status = LookupStatus::not_found;
    /// The matched value (found only); points into the router.
    const H* value = nullptr;
    /// The matched route's Allow header value, e.g. "GET, HEAD, OPTIONS" (found and
    /// method_not_allowed; empty otherwise).
    std::string_view allow;
    /// The matched route's pattern as registered, e.g. "/users/:id" (found and
    /// method_not_allowed; empty otherwise). Handy as a low-cardinality metrics label.
    std::string_view pattern;
    /// method_not_allowed: the first registered route of the matched path (another method's);
    /// redirect_trailing_slash: the route the redirect leads to. Null otherwise. Lets the
    /// caller answer those with the middleware of the routes they belong to.
    const H* sibling = nullptr;

    [[nodiscard]] bool found() const noexcept { return status == LookupStatus::found; }
};

/// \brief HTTP router: method + path to a value of type H, as a compressed radix tree that is
/// built once, frozen into flat arrays, then shared read-only by every thread.
///
/// Patterns start with '/' and are made of segments separated by '/':
/// - a static segment matches itself byte for byte (':' and '*' are literal inside a segment);
/// - `:name` matches one non-empty segment (up to the next '/'), e.g. `/users/:id`;
/// - `*name`, only as the last segment, matches the rest of the path including '/', possibly
///   empty: `/files/*path` matches `/files/` (path = "") and `/files/a/b` (path = "a/b") but not
///   `/files` (that lookup reports redirect_trailing_slash).
/// Names are `[A-Za-z0-9_]+` and unique within a route; a route has at most kMaxParams of them.
///
/// One tree serves every method, and a path resolves to a route before the method is looked
/// at. Static, `:param` and `*catch-all` siblings may coexist; at each position a static
/// segment beats a parameter, which beats a catch-all, and the lookup backtracks when a more
/// specific branch dead-ends (`/users/new` and `/users/:id/posts` both work for
/// `/users/new/posts`). Because the method comes second, a more specific route shadows a
/// less specific one for all methods: with `GET /users/new` and `DELETE /users/:id`,
/// `DELETE /users/new` is 405 (Allow: GET, HEAD, OPTIONS), consistently with OPTIONS.
///
/// Registration throws std::invalid_argument naming both routes when two routes declare
/// different parameter (or catch-all) names at the same position (even for different methods,
/// since they share the tree), and for a duplicate method + pattern.
///
/// Methods are case-sensitive tokens. add_any() registers a route for every method; an explicit
/// method wins over it. A GET route also answers HEAD unless HEAD is registered explicitly. The
/// Allow list of a route is its methods in the order GET, HEAD, POST, PUT, PATCH, DELETE,
/// CONNECT, TRACE, custom methods (byte order), then OPTIONS, which is always listed (the
/// caller answers OPTIONS itself unless a route registers it); an add_any() route lists GET,
/// HEAD, POST, PUT, PATCH, DELETE and every custom method registered anywhere.
///
/// Paths are matched as given (the caller passes the percent-decoded path, without the query).
/// Lookups never allocate and never throw, and visit each tree node at most once whatever the
/// path (backtracking included); after freeze() the router is immutable and lookup() may run
/// concurrently from any number of threads. A moved-from router finds nothing.
template <class H>
class Router {
public:
    Router() = default;

    /// \brief Registers `value` for `method` + `pattern`. Throws std::invalid_argument for an
    /// invalid pattern or method token, a conflict or a duplicate (the router is then
    /// unchanged), std::logic_error after freeze().
    void add(std::string_view method, std::string_view pattern, H value) {
        values_.push_back(std::move(value));
        try {
            tree_.add(false, method, pattern, static_cast<std::uint32_t>(values_.size() - 1));
        } catch (...) {
            values_.pop_back();
            throw;
        }
    }
    /// \brief Registers `value` for every method on `pattern` (explicit methods win).
    void add_any(std::string_view pattern, H value) {
        values_.push_back(std::move(value));
        try {
            tree_.add(true, {}, pattern, static_cast<std::uint32_t>(values_.size() - 1));
        } catch (...) {
            values_.pop_back();
            throw;
        }
    }
    /// \brief Builds the flat lookup arrays. Required before lookup(); add() throws afterwards.
    void freeze() { tree_.freeze(); }
    [[nodiscard]] bool frozen() const noexcept { return tree_.frozen(); }

    /// \brief Finds the route for `method` + `path` and fills `params` (cleared first). Before
    /// freeze() everything is not_found.
    [[nodiscard]] LookupResult<H> lookup(std::string_view method, std::string_view path,
                                         Params& params) const noexcept {
        return to_result(tree_.lookup(method, path, params));
    }
    /// \brief The same, with the method as the HTTP parser gave it: `method` must be
    /// http::method_from(method_text) (Request::method() and Request::method_text()). Cheaper
    /// for the standard methods, which skip comparing method names.
    [[nodiscard]] LookupResult<H> lookup(http::Method method, std::string_view method_text,
                                         std::string_view path, Params& params) const noexcept {
        return to_result(tree_.lookup(method, method_text, path, params));
    }
    /// \brief The Allow header value of the route matching `path` (what OPTIONS answers), e.g.
    /// "GET, HEAD, POST, OPTIONS"; empty when no route matches.
    [[nodiscard]] std::string_view allowed_methods(std::string_view path) const noexcept {
        return tree_.allowed_methods(path);
    }
    /// \brief How many method + pattern registrations were made.
    [[nodiscard]] std::size_t size() const noexcept { return tree_.route_count(); }
    /// \brief The most parameters any route declares.
    [[nodiscard]] std::size_t max_params() const noexcept { return tree_.max_params(); }
    /// \brief Nodes of the frozen tree (0 before freeze()).
    [[nodiscard]] std::size_t node_count() const noexcept { return tree_.node_count(); }

private:
    [[nodiscard]] LookupResult<H> to_result(const detail::RawLookup& raw) const noexcept {
        LookupResult<H> result;
        result.status = raw.status;
        result.allow = raw.allow;
        result.pattern = raw.pattern;
        if (raw.status == LookupStatus::found) {
            result.value = &values_[raw.value];
        }
        if (raw.sibling != UINT32_MAX) {
            result.sibling = &values_[raw.sibling];
        }
        return result;
    }

    detail::RouteTree tree_;
    std::vector<H> values_;
};

} // namespace ringwork::web
