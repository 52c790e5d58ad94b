// SPDX-License-Identifier: MIT
// The Router's radix tree: pattern parsing, conflict checks, freezing into flat arrays, lookup.
#include <ringwork/http/parser.hpp>
#include <ringwork/web/router.hpp>

#include "web/bytes.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>

namespace ringwork::web::detail {

namespace {

enum class TokenKind : std::uint8_t { literal, param, catch_all };

/// One piece of a pattern: literal bytes (may span segments) or a wildcard's name.
struct Token {
    TokenKind kind;
    std::string_view text;
};

[[noreturn]] void throw_invalid(std::string_view pattern, std::string_view why) {
    throw std::invalid_argument(
        fmt::format("ringwork::web::Router: invalid route \"{}\": {}", pattern, why));
}

[[noreturn]] void throw_conflict(std::string_view added, std::string_view existing,
                                 std::string_view why) {
    throw std::invalid_argument(fmt::format(
        "ringwork::web::Router: \"{}\" conflicts with \"{}\": {}", added, existing, why));
}

bool is_tchar(char c) noexcept {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        return true;
    }
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_name_char(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

void check_method(std::string_view method) {
    if (method.empty() || !std::all_of(method.begin(), method.end(), is_tchar)) {
        throw std::invalid_argument(
            fmt::format("ringwork::web::Router: invalid method token \"{}\"", method));
    }
}

/// Splits `pattern` into literal and wildcard tokens, validating names and positions.
std::vector<Token> parse_pattern(std::string_view pattern) {
    if (pattern.empty() || pattern.front() != '/') {
        throw_invalid(pattern, "a pattern must start with '/'");
    }
    std::vector<Token> tokens;
    std::vector<std::string_view> names;
    std::size_t literal_begin = 0;
    std::size_t i = 1;
    while (i < pattern.size()) {
        const char c = pattern[i];
        if ((c != ':' && c != '*') || pattern[i - 1] != '/') {
            ++i;
            continue;
        }
        tokens.push_back({TokenKind::literal, pattern.substr(literal_begin, i - literal_begin)});
        std::size_t end = pattern.find('/', i);
        if (end == std::string_view::npos) {
            end = pattern.size();
        }
        const std::string_view name = pattern.substr(i + 1, end - i - 1);
        if (name.empty()) {
            throw_invalid(pattern, "a parameter needs a name");
        }
        if (!std::all_of(name.begin(), name.end(), is_name_char)) {
            throw_invalid(pattern, fmt::format("parameter name \"{}\" is not [A-Za-z0-9_]+", name));
        }
        if (c == '*' && end != pattern.size()) {
            throw_invalid(pattern, fmt::format("catch-all \"*{}\" must be the last segment", name));
        }
        if (std::find(names.begin(), names.end(), name) != names.end()) {
            throw_invalid(pattern, fmt::format("parameter name \"{}\" is used twice", name));
        }
        names.push_back(name);
        if (names.size() > kMaxParams) {
            throw_invalid(pattern, fmt::format("more than {} parameters", kMaxParams));
        }
        tokens.push_back({c == ':' ? TokenKind::param : TokenKind::catch_all, name});
        i = end;
        literal_begin = end;
    }
    if (literal_begin < pattern.size()) {
        tokens.push_back({TokenKind::literal, pattern.substr(literal_begin)});
    }
    return tokens;
}

/// Where a method goes in an Allow list; custom methods sort by name between TRACE and OPTIONS.
int allow_rank(std::string_view method) noexcept {
    constexpr std::array<std::string_view, 8> kOrder = {"GET",   "HEAD",   "POST",    "PUT",
                                                        "PATCH", "DELETE", "CONNECT", "TRACE"};
    for (std::size_t i = 0; i < kOrder.size(); ++i) {
        if (kOrder[i] == method) {
            return static_cast<int>(i);
        }
    }
    return method == "OPTIONS" ? 100 : 50;
}

bool is_standard(std::string_view method) noexcept {
    return allow_rank(method) != 50;
}

/// The path as given.
struct PlainPath {
    std::string_view s;

    [[nodiscard]] std::size_t size() const noexcept { return s.size(); }
    [[nodiscard]] char at(std::size_t i) const noexcept { return s[i]; }
    /// Whether `label` occurs at `pos` (label is non-empty and pos < size()).
    [[nodiscard]] bool has_at(std::size_t pos, std::string_view label) const noexcept {
        return s.size() - pos >= label.size() &&
               same_bytes(s.data() + pos, label.data(), label.size());
    }
    /// The end of the segment starting at `pos`.
    [[nodiscard]] std::size_t segment_end(std::size_t pos) const noexcept {
        while (pos < s.size() && s[pos] != '/') {
            ++pos;
        }
        return pos;
    }
    [[nodiscard]] std::string_view slice(std::size_t begin, std::size_t end) const noexcept {
        return {s.data() + begin, end - begin};
    }
};

/// The path with a '/' appended, without copying it (for the trailing-slash check).
struct SlashedPath {
    std::string_view s;

    [[nodiscard]] std::size_t size() const noexcept { return s.size() + 1; }
    [[nodiscard]] char at(std::size_t i) const noexcept { return i < s.size() ? s[i] : '/'; }
    [[nodiscard]] bool has_at(std::size_t pos, std::string_view label) const noexcept {
        if (size() - pos < label.size()) {
            return false;
        }
        const std::size_t real = std::min(label.size(), s.size() - pos);
        if (!same_bytes(s.data() + pos, label.data(), real)) {
            return false;
        }
        return real == label.size() || label.back() == '/';
    }
    [[nodiscard]] std::size_t segment_end(std::size_t pos) const noexcept {
        if (pos >= s.size()) {
            return s.size();
        }
        return PlainPath{s}.segment_end(pos);
    }
    [[nodiscard]] std::string_view slice(std::size_t begin, std::size_t end) const noexcept {
        begin = std::min(begin, s.size());
        end = std::min(end, s.size());
        return {s.data() + begin, end - begin};
    }
};

/// Discards parameters (allowed_methods and the trailing-slash check need none).
struct NullSink {
    [[nodiscard]] static std::size_t size() noexcept { return 0; }
    static void push(std::string_view /*key*/, std::string_view /*value*/) noexcept {}
    static void truncate(std::size_t /*n*/) noexcept {}
};

} // namespace

/// The mutable tree of the build phase (freed by freeze()).
struct RouteTree::Builder {
    struct Node {
        std::string label; ///< static: edge label; wildcard: parameter name
        std::vector<std::uint32_t> children;
        std::uint32_t param = kNone;
        std::uint32_t catch_all = kNone;
        std::uint32_t leaf = kNone;
        std::string owner; ///< wildcard: the pattern that introduced it (for conflict messages)
    };
    struct Entry {
        std::uint32_t column; ///< 0: any; i + 1: methods[i]
        std::uint32_t value;
    };
    struct Leaf {
        std::string pattern;
        std::vector<Entry> entries;
    };

    std::vector<Node> nodes = std::vector<Node>(1); // [0] is the root (empty label)
    std::vector<Leaf> leaves;
    std::vector<std::string> methods;

    [[nodiscard]] std::uint32_t find_child(std::uint32_t node, char first) const noexcept {
        for (const std::uint32_t c : nodes[node].children) {
            if (nodes[c].label.front() == first) {
                return c;
            }
        }
        return kNone;
    }

    [[nodiscard]] std::uint32_t column_of(std::string_view method) const noexcept {
        for (std::size_t i = 0; i < methods.size(); ++i) {
            if (methods[i] == method) {
                return static_cast<std::uint32_t>(i + 1);
            }
        }
        return kNone;
    }

    std::uint32_t intern(std::string_view method) {
        const std::uint32_t column = column_of(method);
        if (column != kNone) {
            return column;
        }
        methods.emplace_back(method);
        return static_cast<std::uint32_t>(methods.size());
    }

    /// Throws when adding `tokens` would conflict with a registered route; changes nothing.
    void check(const std::vector<Token>& tokens, std::string_view pattern, bool any,
               std::string_view method) const {
        std::uint32_t cur = 0;
        for (const Token& token : tokens) {
            if (token.kind == TokenKind::literal) {
                std::string_view rest = token.text;
                while (!rest.empty()) {
                    const std::uint32_t child = find_child(cur, rest.front());
                    if (child == kNone || !rest.starts_with(nodes[child].label)) {
                        return; // the rest of the route would be new nodes
                    }
                    rest.remove_prefix(nodes[child].label.size());
                    cur = child;
                }
                continue;
            }
            const bool param = token.kind == TokenKind::param;
            const std::uint32_t wild = param ? nodes[cur].param : nodes[cur].catch_all;
            if (wild == kNone) {
                return;
            }
            if (nodes[wild].label != token.text) {
                throw_conflict(pattern, nodes[wild].owner,
                               param ? "different parameter names at the same position"
                                     : "different catch-all names at the same position");
            }
            cur = wild;
        }
        if (nodes[cur].leaf == kNone) {
            return;
        }
        const std::uint32_t column = any ? 0 : column_of(method);
        for (const Entry& entry : leaves[nodes[cur].leaf].entries) {
            if (entry.column == column) {
                const std::string shown = any ? std::string("(any)") : std::string(method);
                throw std::invalid_argument(
                    fmt::format("ringwork::web::Router: {} \"{}\" conflicts with {} \"{}\": "
                                "duplicate route",
                                shown, pattern, shown, leaves[nodes[cur].leaf].pattern));
            }
        }
    }

    /// Follows or creates the static path `text` below `cur`, splitting edges as needed.
    std::uint32_t insert_static(std::uint32_t cur, std::string_view text) {
        while (!text.empty()) {
            std::uint32_t child = find_child(cur, text.front());
            if (child == kNone) {
                Node fresh;
                fresh.label = std::string(text);
                nodes.push_back(std::move(fresh));
                const auto created = static_cast<std::uint32_t>(nodes.size() - 1);
                nodes[cur].children.push_back(created);
                return created;
            }
            const std::string& label = nodes[child].label;
            const std::size_t limit = std::min(label.size(), text.size());
            std::size_t common = 0;
            while (common < limit && label[common] == text[common]) {
                ++common;
            }
            if (common < label.size()) {
                // Split: a new node takes the common prefix and adopts the old child.
                Node split;
                split.label = label.substr(0, common);
                split.children.push_back(child);
                nodes[child].label.erase(0, common);
                nodes.push_back(std::move(split));
                const auto created = static_cast<std::uint32_t>(nodes.size() - 1);
                std::replace(nodes[cur].children.begin(), nodes[cur].children.end(), child,
                             created);
                child = created;
            }
            cur = child;
            text.remove_prefix(common);
        }
        return cur;
    }

    std::uint32_t insert_wildcard(std::uint32_t cur, const Token& token, std::string_view pattern) {
        const bool param = token.kind == TokenKind::param;
        std::uint32_t wild = param ? nodes[cur].param : nodes[cur].catch_all;
        if (wild == kNone) {
            Node fresh;
            fresh.label = std::string(token.text);
            fresh.owner = std::string(pattern);
            nodes.push_back(std::move(fresh));
            wild = static_cast<std::uint32_t>(nodes.size() - 1);
            (param ? nodes[cur].param : nodes[cur].catch_all) = wild;
        }
        return wild;
    }

    /// Per node, the routes (method registrations) at or below it: the children's priority.
    void count_routes(std::vector<std::uint32_t>& counts) const {
        counts.assign(nodes.size(), 0);
        // Splits give parents larger indices than their children: walk in explicit post-order.
        std::vector<std::pair<std::uint32_t, bool>> stack{{0, false}};
        while (!stack.empty()) {
            const auto [node, expanded] = stack.back();
            stack.pop_back();
            const Node& n = nodes[node];
            if (!expanded) {
                stack.emplace_back(node, true);
                for (const std::uint32_t c : n.children) {
                    stack.emplace_back(c, false);
                }
                for (const std::uint32_t w : {n.param, n.catch_all}) {
                    if (w != kNone) {
                        stack.emplace_back(w, false);
                    }
                }
                continue;
            }
            std::uint32_t total =
                n.leaf != kNone ? static_cast<std::uint32_t>(leaves[n.leaf].entries.size()) : 0;
            for (const std::uint32_t c : n.children) {
                total += counts[c];
            }
            for (const std::uint32_t w : {n.param, n.catch_all}) {
                if (w != kNone) {
                    total += counts[w];
                }
            }
            counts[node] = total;
        }
    }

    /// The Allow header value of `leaf`.
    [[nodiscard]] std::string allow_list(const Leaf& leaf) const {
        std::vector<std::string_view> list;
        bool any = false;
        for (const Entry& entry : leaf.entries) {
            if (entry.column == 0) {
                any = true;
            } else {
                list.emplace_back(methods[entry.column - 1]);
            }
        }
        if (std::find(list.begin(), list.end(), "GET") != list.end()) {
            list.emplace_back("HEAD");
        }
        if (any) {
            for (const std::string_view m : {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}) {
                list.push_back(m);
            }
            for (const std::string& m : methods) {
                if (!is_standard(m)) {
                    list.emplace_back(m);
                }
            }
        }
        list.emplace_back("OPTIONS");
        std::sort(list.begin(), list.end(), [](std::string_view a, std::string_view b) {
            const int ra = allow_rank(a);
            const int rb = allow_rank(b);
            return ra != rb ? ra < rb : a < b;
        });
        list.erase(std::unique(list.begin(), list.end()), list.end());
        std::string out;
        for (const std::string_view m : list) {
            if (!out.empty()) {
                out += ", ";
            }
            out += m;
        }
        return out;
    }
};

RouteTree::RouteTree()
    : builder_(std::make_unique<Builder>()) {
}
RouteTree::~RouteTree() = default;
RouteTree::RouteTree(RouteTree&&) noexcept = default;
RouteTree& RouteTree::operator=(RouteTree&&) noexcept = default;

void RouteTree::add(bool any, std::string_view method, std::string_view pattern,
                    std::uint32_t value) {
    if (frozen_ || !builder_) {
        throw std::logic_error(
            "ringwork::web::Router: add() after freeze() (or on a moved-from router)");
    }
    if (!any) {
        check_method(method);
    }
    const std::vector<Token> tokens = parse_pattern(pattern);
    Builder& b = *builder_;
    b.check(tokens, pattern, any, method);

    std::uint32_t cur = 0;
    std::size_t params = 0;
    for (const Token& token : tokens) {
        if (token.kind == TokenKind::literal) {
            cur = b.insert_static(cur, token.text);
        } else {
            cur = b.insert_wildcard(cur, token, pattern);
            ++params;
        }
    }
    if (b.nodes[cur].leaf == kNone) {
        b.leaves.push_back(Builder::Leaf{std::string(pattern), {}});
        b.nodes[cur].leaf = static_cast<std::uint32_t>(b.leaves.size() - 1);
    }
    const std::uint32_t column = any ? 0 : b.intern(method);
    b.leaves[b.nodes[cur].leaf].entries.push_back({column, value});
    ++route_count_;
    max_params_ = std::max(max_params_, params);
}

void RouteTree::freeze() {
    if (frozen_ || !builder_) { // frozen already, or moved from
        return;
    }
    Builder& b = *builder_;
    if (b.column_of("GET") != kNone) {
        b.intern("HEAD"); // HEAD gets a column to fall back to GET through
    }

    std::string buf;
    const auto append = [&buf](std::string_view s) {
        const auto off = static_cast<std::uint32_t>(buf.size());
        buf += s;
        return off;
    };

    methods_.clear();
    for (const std::string& m : b.methods) {
        methods_.push_back({append(m), static_cast<std::uint32_t>(m.size())});
    }
    columns_ = static_cast<std::uint32_t>(b.methods.size() + 1);
    // The standard methods' columns, by the enum the parser gives (column 0 when unregistered).
    static_assert(static_cast<std::size_t>(http::Method::other) == kStandardMethods);
    for (const std::string_view m :
         {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}) {
        const std::uint32_t column = b.column_of(m);
        method_columns_[static_cast<std::size_t>(http::method_from(m))] =
            column == kNone ? 0 : column;
    }

    // Leaves: pattern, deduplicated Allow list, and one value per column.
    const std::uint32_t get_column = b.column_of("GET");
    const std::uint32_t head_column = b.column_of("HEAD");
    std::map<std::string, std::pair<std::uint32_t, std::uint32_t>, std::less<>> allow_lists;
    leaves_.clear();
    leaf_values_.assign(b.leaves.size() * columns_, kNone);
    for (std::size_t l = 0; l < b.leaves.size(); ++l) {
        const Builder::Leaf& leaf = b.leaves[l];
        Leaf out;
        out.pattern_off = append(leaf.pattern);
        out.pattern_len = static_cast<std::uint32_t>(leaf.pattern.size());
        std::string allow = b.allow_list(leaf);
        auto it = allow_lists.find(allow);
        if (it == allow_lists.end()) {
            const std::pair<std::uint32_t, std::uint32_t> span{
                append(allow), static_cast<std::uint32_t>(allow.size())};
            it = allow_lists.emplace(std::move(allow), span).first;
        }
        out.allow_off = it->second.first;
        out.allow_len = it->second.second;
        leaves_.push_back(out);

        std::uint32_t* row = leaf_values_.data() + l * columns_;
        for (const Builder::Entry& entry : leaf.entries) {
            row[entry.column] = entry.value;
        }
        if (head_column != kNone && get_column != kNone && row[head_column] == kNone) {
            row[head_column] = row[get_column];
        }
        for (std::uint32_t c = 1; c < columns_; ++c) {
            if (row[c] == kNone) {
                row[c] = row[0];
            }
        }
    }

    // Nodes, breadth first so each node's static children are contiguous, in priority order.
    std::vector<std::uint32_t> counts;
    b.count_routes(counts);
    nodes_.assign(1, Node{});
    std::vector<std::pair<std::uint32_t, std::uint32_t>> queue{{0, 0}}; // (builder, frozen)
    for (std::size_t head = 0; head < queue.size(); ++head) {
        const auto [from, to] = queue[head];
        const Builder::Node& bn = b.nodes[from];
        Node node;
        node.label_off = append(bn.label);
        node.label_len = static_cast<std::uint32_t>(bn.label.size());
        std::vector<std::uint32_t> children = bn.children;
        std::sort(children.begin(), children.end(), [&](std::uint32_t x, std::uint32_t y) {
            return counts[x] != counts[y] ? counts[x] > counts[y]
                                          : b.nodes[x].label < b.nodes[y].label;
        });
        node.indices_off = static_cast<std::uint32_t>(buf.size());
        for (const std::uint32_t c : children) {
            buf += b.nodes[c].label.front();
        }
        node.first_child = static_cast<std::uint32_t>(nodes_.size());
        node.child_count = static_cast<std::uint32_t>(children.size());
        nodes_.resize(nodes_.size() + children.size());
        for (std::size_t i = 0; i < children.size(); ++i) {
            queue.emplace_back(children[i], node.first_child + static_cast<std::uint32_t>(i));
        }
        for (const bool param : {true, false}) {
            const std::uint32_t wild = param ? bn.param : bn.catch_all;
            if (wild != kNone) {
                const auto index = static_cast<std::uint32_t>(nodes_.size());
                nodes_.emplace_back();
                queue.emplace_back(wild, index);
                (param ? node.param : node.catch_all) = index;
            }
        }
        node.leaf = bn.leaf;
        nodes_[to] = node;
    }

    if (buf.size() > std::numeric_limits<std::uint32_t>::max()) {
        throw std::length_error("ringwork::web::Router: route table too large");
    }
    text_.assign(buf.begin(), buf.end());
    builder_.reset();
    frozen_ = true;
}

template <class Path, class Sink>
std::uint32_t RouteTree::match(std::uint32_t index, const Path& path, std::size_t pos,
                               Sink& sink) const noexcept {
    const Node* const nodes = nodes_.data();
    const char* const chars = text_.data();
    for (;;) {
        const Node& n = nodes[index];
        if (pos == path.size()) {
            if (n.leaf != kNone) {
                return n.leaf;
            }
            if (n.catch_all != kNone) { // a catch-all also matches nothing
                const Node& rest = nodes[n.catch_all];
                sink.push(text(rest.label_off, rest.label_len), path.slice(pos, pos));
                return rest.leaf;
            }
            return kNone;
        }
        const bool wild = n.param != kNone || n.catch_all != kNone;
        const std::size_t mark = sink.size();
        bool descended = false;
        const char first = path.at(pos);
        const char* const indices = chars + n.indices_off;
        for (std::uint32_t i = 0; i < n.child_count; ++i) {
            if (indices[i] != first) {
                continue;
            }
            const std::uint32_t child = n.first_child + i;
            const Node& c = nodes[child];
            if (path.has_at(pos, {chars + c.label_off, c.label_len})) {
                if (!wild) { // nothing to come back to: continue in place
                    index = child;
                    pos += c.label_len;
                    descended = true;
                } else {
                    const std::uint32_t leaf = match(child, path, pos + c.label_len, sink);
                    if (leaf != kNone) {
                        return leaf;
                    }
                    sink.truncate(mark);
                }
            }
            break; // first bytes are unique among siblings
        }
        if (descended) {
            continue;
        }
        if (n.param != kNone) {
            const std::size_t end = path.segment_end(pos);
            if (end != pos) {
                const Node& p = nodes[n.param];
                sink.push(text(p.label_off, p.label_len), path.slice(pos, end));
                if (n.catch_all == kNone) {
                    index = n.param;
                    pos = end;
                    continue;
                }
                const std::uint32_t leaf = match(n.param, path, end, sink);
                if (leaf != kNone) {
                    return leaf;
                }
                sink.truncate(mark);
            }
        }
        if (n.catch_all != kNone) {
            const Node& rest = nodes[n.catch_all];
            sink.push(text(rest.label_off, rest.label_len), path.slice(pos, path.size()));
            return rest.leaf;
        }
        return kNone;
    }
}

std::uint32_t RouteTree::column_of(std::string_view method) const noexcept {
    const char* const chars = text_.data();
    for (std::size_t i = 0; i < methods_.size(); ++i) {
        const MethodName& m = methods_[i];
        if (m.len == method.size() && same_bytes(chars + m.off, method.data(), m.len)) {
            return static_cast<std::uint32_t>(i + 1);
        }
    }
    return 0; // not registered anywhere: only `any` routes take it
}

std::uint32_t RouteTree::slash_twin(std::uint32_t column, std::string_view path) const noexcept {
    NullSink sink;
    std::uint32_t leaf = kNone;
    if (path.back() == '/') {
        if (path.size() == 1) {
            return kNone;
        }
        leaf = match(0, PlainPath{path.substr(0, path.size() - 1)}, 0, sink);
    } else {
        leaf = match(0, SlashedPath{path}, 0, sink);
    }
    return leaf == kNone ? kNone : leaf_values_[leaf * columns_ + column];
}

RawLookup RouteTree::lookup(std::string_view method, std::string_view path,
                            Params& params) const noexcept {
    return lookup_column(column_of(method), path, params);
}

RawLookup RouteTree::lookup(http::Method method, std::string_view method_text,
                            std::string_view path, Params& params) const noexcept {
    const auto slot = static_cast<std::size_t>(method);
    return lookup_column(slot < kStandardMethods ? method_columns_[slot] : column_of(method_text),
                         path, params);
}

RawLookup RouteTree::lookup_column(std::uint32_t column, std::string_view path,
                                   Params& params) const noexcept {
    params.clear();
    RawLookup result;
    if (nodes_.empty() || path.empty() || path.front() != '/') { // not frozen, or moved from
        return result;
    }
    const std::uint32_t leaf = match(0, PlainPath{path}, 0, params);
    if (leaf == kNone) {
        params.clear();
        const std::uint32_t twin = slash_twin(column, path);
        if (twin != kNone) {
            result.status = LookupStatus::redirect_trailing_slash;
            result.sibling = twin;
        }
        return result;
    }
    const Leaf& l = leaves_[leaf];
    result.allow = text(l.allow_off, l.allow_len);
    result.pattern = text(l.pattern_off, l.pattern_len);
    const std::uint32_t value = leaf_values_[leaf * columns_ + column];
    if (value == kNone) {
        result.status = LookupStatus::method_not_allowed;
        const std::uint32_t* row = leaf_values_.data() + static_cast<std::size_t>(leaf) * columns_;
        for (std::uint32_t c = 0; c < columns_; ++c) {
            if (row[c] != kNone && (result.sibling == UINT32_MAX || row[c] < result.sibling)) {
                result.sibling = row[c]; // the first registered: the lowest index
            }
        }
    } else {
        result.status = LookupStatus::found;
        result.value = value;
    }
    return result;
}

std::string_view RouteTree::allowed_methods(std::string_view path) const noexcept {
    if (nodes_.empty() || path.empty() || path.front() != '/') {
        return {};
    }
    NullSink sink;
    const std::uint32_t leaf = match(0, PlainPath{path}, 0, sink);
    if (leaf == kNone) {
        return {};
    }
    return text(leaves_[leaf].allow_off, leaves_[leaf].allow_len);
}

} // namespace ringwork::web::detail
