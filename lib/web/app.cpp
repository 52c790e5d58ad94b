// SPDX-License-Identifier: MIT
// App: route registration, chain building at freeze, dispatch and the error boundary.
#include <ringwork/web/app.hpp>

#include <ringwork/runtime/stop_token.hpp>

#include "http/chars.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <exception>
#include <stdexcept>

namespace ringwork::web {

namespace {

void default_not_found(Context& c) {
    c.status(404);
    c.text("Not Found");
}

void default_method_not_allowed(Context& c) {
    c.status(405);
    c.text("Method Not Allowed");
}

void auto_options(Context& c) { c.status(204); }

/// Whether the trailing-slash redirect can rewrite the raw path `raw` (whose decoded form
/// `decoded` the router matched but for its last '/'). Not when that slash is percent-encoded
/// in the raw path (%2F: no safe rewrite), nor when the target would start with "//" or "/\\"
/// (browsers read it as another host: an open redirect). Those requests get the not-found
/// handler instead, like any other path no route matches.
bool slash_redirect_possible(std::string_view raw, std::string_view decoded) noexcept {
    const bool add = decoded.empty() || decoded.back() != '/';
    if (raw.empty() || (!add && raw.back() != '/')) {
        return false;
    }
    const std::string_view kept = add ? raw : raw.substr(0, raw.size() - 1);
    if (kept.empty() || kept.front() != '/') {
        return false;
    }
    // The target's second character: the kept path's, or the added slash after a lone "/".
    const char second = kept.size() > 1 ? kept[1] : (add ? '/' : '\0');
    return second != '/' && second != '\\';
}

/// The trailing-slash redirect: the raw path with its last '/' added or removed (as the
/// router decided on the decoded path), query kept. find_chain() checked
/// slash_redirect_possible() before choosing this handler.
void redirect_slash(Context& c) {
    const http::Request& req = c.request();
    const std::string_view raw = req.raw_path();
    const std::string_view decoded = c.path();
    http::Arena& arena = *c.request().arena_;
    const std::string_view query = req.query_string();
    const bool add = decoded.empty() || decoded.back() != '/';
    const std::size_t keep = add ? raw.size() : raw.size() - 1;
    const std::size_t path_len = add ? raw.size() + 1 : raw.size() - 1;
    const std::size_t total = path_len + (query.empty() ? 0 : query.size() + 1);
    char* out = arena.allocate(total == 0 ? 1 : total);
    std::memcpy(out, raw.data(), keep);
    std::size_t n = keep;
    if (add) {
        out[n++] = '/';
    }
    if (!query.empty()) {
        out[n++] = '?';
        std::memcpy(out + n, query.data(), query.size());
        n += query.size();
    }
    const bool safe = c.method() == http::Method::get || c.method() == http::Method::head;
    c.redirect(std::string_view(out, n), safe ? 301 : 308);
}

std::string join_prefix(std::string_view a, std::string_view b) {
    std::string out(a);
    while (!out.empty() && out.back() == '/') {
        out.pop_back();
    }
    if (!b.empty() && b.front() != '/') {
        out += '/';
    }
    out += b;
    return out;
}

bool parse_ip(const std::string& text, io::SocketAddress& out) {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&out.storage);  // NOLINT: sockaddr API
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.storage); // NOLINT: sockaddr API
    if (::inet_pton(AF_INET, text.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        out.length = sizeof(sockaddr_in);
        return true;
    }
    if (::inet_pton(AF_INET6, text.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        out.length = sizeof(sockaddr_in6);
        return true;
    }
    return false;
}

/// The address bytes of an IPv4/IPv6 address (IPv4-mapped IPv6 reduced to IPv4).
std::string_view address_bytes(const io::SocketAddress& a, int& family) noexcept {
    if (a.family() == AF_INET) {
        family = AF_INET;
        const auto* v4 = reinterpret_cast<const sockaddr_in*>(&a.storage); // NOLINT: sockaddr API
        return {reinterpret_cast<const char*>(&v4->sin_addr), 4};          // NOLINT: bytes
    }
    if (a.family() == AF_INET6) {
        const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&a.storage); // NOLINT: sockaddr API
        const auto* bytes = reinterpret_cast<const char*>(&v6->sin6_addr);   // NOLINT: bytes
        if (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) {
            family = AF_INET;
            return {bytes + 12, 4};
        }
        family = AF_INET6;
        return {bytes, 16};
    }
    family = AF_UNSPEC;
    return {};
}

} // namespace

App::App(AppOptions options) : Routes(this, 0), options_(std::move(options)), server_(options_.server) {
    groups_.push_back(Group{0, std::string(), {}});
    not_found_ = make_handler(&default_not_found);
    method_not_allowed_ = make_handler(&default_method_not_allowed);
    for (const std::string& proxy : options_.trusted_proxies) {
        Proxy p{};
        const auto slash = proxy.find('/');
        const std::string ip = proxy.substr(0, slash);
        if (!parse_ip(ip, p.network)) {
            throw std::invalid_argument(fmt::format("AppOptions.trusted_proxies: '{}' is not an IP address or CIDR range", proxy));
        }
        int family = 0;
        const unsigned max_bits = static_cast<unsigned>(address_bytes(p.network, family).size() * 8);
        p.prefix_bits = max_bits;
        if (slash != std::string::npos) {
            const std::string bits = proxy.substr(slash + 1);
            char* end = nullptr;
            const unsigned long v = std::strtoul(bits.c_str(), &end, 10);
            if (bits.empty() || *end != '\0' || v > max_bits) {
                throw std::invalid_argument(fmt::format("AppOptions.trusted_proxies: bad prefix length in '{}'", proxy));
            }
            p.prefix_bits = static_cast<unsigned>(v);
        }
        proxies_.push_back(p);
    }
    if (options_.multipart_max_parts == 0) {
        throw std::invalid_argument("AppOptions.multipart_max_parts must be at least 1");
    }
    // A directory you chose is checked now rather than at the first upload (a 500 then, for
    // every file). The default /tmp is not: an app without uploads must still start where
    // there is none (a scratch image, a read-only root).
    if (options_.multipart_temp_dir != "/tmp") {
        const char* const dir = options_.multipart_temp_dir.c_str();
        struct stat st {};
        std::string why;
        if (::stat(dir, &st) != 0) {
            why = std::strerror(errno);
        } else if (!S_ISDIR(st.st_mode)) {
            why = "not a directory";
        } else if (::access(dir, W_OK | X_OK) != 0) {
            why = std::strerror(errno);
        }
        if (!why.empty()) {
            throw std::invalid_argument(fmt::format("AppOptions.multipart_temp_dir: '{}' is not a writable directory ({})",
                                                    options_.multipart_temp_dir, why));
        }
    }
}

App::~App() = default;

void App::check_not_frozen() const {
    if (frozen_) {
        throw std::logic_error("ringwork: routes and middleware must be added before the app serves (it is frozen)");
    }
}

std::size_t App::add_group(std::size_t parent, std::string_view prefix, std::vector<detail::Step> mws) {
    check_not_frozen();
    if (!prefix.empty() && prefix.front() != '/') {
        throw std::invalid_argument(fmt::format("ringwork: group prefix '{}' must start with '/'", prefix));
    }
    groups_.push_back(Group{parent, join_prefix(groups_[parent].prefix, prefix), std::move(mws)});
    return groups_.size() - 1;
}

void App::add_group_middleware(std::size_t group, detail::Step step) {
    check_not_frozen();
    groups_[group].middleware.push_back(step);
}

void App::add_route(std::string_view method, std::string_view pattern, std::size_t group,
                    std::vector<detail::Step> steps) {
    check_not_frozen();
    std::string full = group == 0 ? std::string(pattern) : join_prefix(groups_[group].prefix, pattern);
    if (full.empty()) {
        full = "/";
    }
    // Register now so conflicts are reported at the call that causes them.
    const auto index = static_cast<std::uint32_t>(defs_.size());
    if (method.empty()) {
        router_.add_any(full, index);
    } else {
        router_.add(method, full, index);
    }
    defs_.push_back(RouteDef{std::string(method), std::move(full), group, std::move(steps)});
}

std::vector<detail::Step> App::group_middleware(std::size_t group) const {
    std::vector<std::size_t> path;
    for (std::size_t g = group;; g = groups_[g].parent) {
        path.push_back(g);
        if (g == 0) {
            break;
        }
    }
    std::vector<detail::Step> steps;
    for (auto it = path.rbegin(); it != path.rend(); ++it) {
        const auto& mws = groups_[*it].middleware;
        steps.insert(steps.end(), mws.begin(), mws.end());
    }
    return steps;
}

void App::freeze() {
    if (frozen_) {
        return;
    }
    router_.freeze();
    chains_.clear();
    chains_.reserve(defs_.size());
    for (const RouteDef& def : defs_) {
        Chain chain{group_middleware(def.group), def.pattern};
        chain.steps.insert(chain.steps.end(), def.steps.begin(), def.steps.end());
        chains_.push_back(std::move(chain));
    }
    special_.clear();
    special_.reserve(groups_.size());
    not_found_prefixes_.clear();
    for (std::size_t g = 0; g < groups_.size(); ++g) {
        const std::vector<detail::Step> mws = group_middleware(g);
        auto special = [&](detail::Step last) {
            Chain chain{mws, {}};
            chain.steps.push_back(last);
            return chain;
        };
        special_.push_back(Special{special(not_found_), special(method_not_allowed_),
                                   special(make_handler(&auto_options)), special(make_handler(&redirect_slash))});
        if (g != 0 && mws.size() != special_[0].not_found.steps.size() - 1) {
            std::string prefix = groups_[g].prefix;
            while (!prefix.empty() && prefix.back() == '/') {
                prefix.pop_back();
            }
            if (!prefix.empty()) { // a group without a prefix claims no unrouted path
                not_found_prefixes_.emplace_back(std::move(prefix), g);
            }
        }
    }
    std::stable_sort(not_found_prefixes_.begin(), not_found_prefixes_.end(),
                     [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
    frozen_ = true;
}

std::size_t App::group_of_path(std::string_view path) const noexcept {
    for (const auto& [prefix, group] : not_found_prefixes_) {
        if (path.starts_with(prefix) && (path.size() == prefix.size() || path[prefix.size()] == '/')) {
            return group;
        }
    }
    return 0;
}

void App::install(http::Server& server) {
    freeze();
    server.set_handler([this](http::Exchange& x) { return dispatch(x); });
}

namespace {

/// Why `text` (already refused by SocketAddress::parse) is not a listen address.
std::string listen_address_problem(std::string_view text) {
    if (text.find("://") != std::string_view::npos) {
        return "write host:port without a scheme, e.g. '127.0.0.1:8080'";
    }
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos || (text.starts_with('[') && text.ends_with(']'))) {
        return fmt::format("no port: write host:port, e.g. '0.0.0.0:{0}' (all interfaces) or '127.0.0.1:{0}'", text);
    }
    const std::string_view port = text.substr(colon + 1);
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || ec != std::errc{} || end != port.data() + port.size() || value > 65535) {
        return fmt::format("the port '{}' is not a number in [0, 65535]", port);
    }
    std::string_view host = text.substr(0, colon);
    if (host.starts_with('[') && host.ends_with(']')) {
        host = host.substr(1, host.size() - 2);
    } else if (host.find(':') != std::string_view::npos) {
        return fmt::format("an IPv6 address goes in brackets: '[{}]:{}'", host, port);
    }
    return fmt::format("'{}' is not an IP address (host names other than localhost are not resolved)", host);
}

} // namespace

void App::listen(std::string_view address, unsigned threads, std::function<void(std::uint16_t)> on_ready) {
    std::string text(address);
    if (!text.empty() && text.front() == ':') {
        text = "0.0.0.0" + text;
    } else if (text.size() > 10 && http::detail::iequals(std::string_view(text).substr(0, 10), "localhost:")) {
        text = "127.0.0.1" + text.substr(9); // the habit from other frameworks; IPv4 loopback
    }
    auto parsed = io::SocketAddress::parse(text);
    if (!parsed) {
        throw std::invalid_argument(
            fmt::format("ringwork: listen address '{}': {}", address, listen_address_problem(address)));
    }
    install(server_);
    server_.listen_and_serve(*parsed, threads, std::move(on_ready));
}

bool App::trusted_proxy(const io::SocketAddress& peer) const noexcept {
    int family = 0;
    const std::string_view bytes = address_bytes(peer, family);
    for (const Proxy& p : proxies_) {
        int pf = 0;
        const std::string_view net = address_bytes(p.network, pf);
        if (pf != family || net.size() != bytes.size()) {
            continue;
        }
        const unsigned full = p.prefix_bits / 8;
        const unsigned rest = p.prefix_bits % 8;
        if (std::memcmp(net.data(), bytes.data(), full) != 0) {
            continue;
        }
        if (rest != 0) {
            const auto mask = static_cast<unsigned char>(0xFFU << (8 - rest));
            if ((static_cast<unsigned char>(net[full]) & mask) != (static_cast<unsigned char>(bytes[full]) & mask)) {
                continue;
            }
        }
        return true;
    }
    return false;
}

void App::answer_error(Context& c, int status, std::string_view message) {
    http::Response& r = c.response();
    if (r.sealed()) {
        return; // the timeout middleware already answered; nothing may replace it
    }
    const bool close = r.close();
    r.reset();
    r.set_close(close);
    if (on_error_) {
        on_error_(c, status, message);
        return;
    }
    c.status(status);
    Json body{{"error", message}, {"status", status}};
    c.json(body);
}

runtime::Task<> App::handle(http::Exchange& x) {
    runtime::Task<> rest = dispatch(x);
    if (rest.valid()) {
        co_await rest;
    }
}

runtime::Task<> App::dispatch(http::Exchange& x) {
    // The lookup and a bare synchronous route run here, on the stack: no coroutine frame.
    Context c(*this, x);
    c.stop_ = x.stop_token();
    const Chain* chain = find_chain(c);
    if (chain == nullptr) {
        notify(c);
        return {};
    }
    const detail::Step* first = chain->steps.data();
    if (chain->steps.size() == 1 && first->sync != nullptr) {
        try {
            first->sync(first->self, c);
        } catch (...) {
            finish_error(c, std::current_exception());
        }
        notify(c);
        return {};
    }
    return run_chain(x, *chain, c.params_, c.route_);
}

const App::Chain* App::find_chain(Context& c) {
    http::Exchange& x = c.exchange();
    const std::string_view path = x.request.path();
    if (!x.request.path_valid()) {
        answer_error(c, 400, "invalid percent-encoding in the path");
        return nullptr;
    }
    const LookupResult<std::uint32_t> r =
        router_.lookup(x.request.method(), x.request.method_text(), path, c.params_);
    // Automatic answers run the middleware of the group the path belongs to.
    const std::size_t group = r.sibling != nullptr ? defs_[*r.sibling].group : 0;
    const Chain* chain = nullptr;
    switch (r.status) {
    case LookupStatus::found:
        chain = &chains_[*r.value];
        break;
    case LookupStatus::method_not_allowed:
        x.response.set_header("Allow", r.allow);
        chain = (options_.auto_options && x.request.method() == http::Method::options)
                    ? &special_[group].options
                    : &special_[group].method_not_allowed;
        break;
    case LookupStatus::redirect_trailing_slash:
        chain = options_.redirect_trailing_slash && slash_redirect_possible(x.request.raw_path(), path)
                    ? &special_[group].redirect
                    : &special_[group_of_path(path)].not_found;
        break;
    case LookupStatus::not_found:
        chain = &special_[group_of_path(path)].not_found;
        break;
    }
    c.route_ = r.pattern;
    return chain;
}

runtime::Task<> App::run_chain(http::Exchange& x, const Chain& chain, Params params, std::string_view route) {
    Context c(*this, x);
    c.params_ = params;
    c.route_ = route;
    c.stop_ = co_await runtime::current_stop_token();
    // Route parameters view the path: they move with it when the connection copies the
    // request out of the receive buffer (the handler suspended).
    x.on_rebase([](void* self, const char* from, std::size_t len, char* to) noexcept {
        static_cast<Params*>(self)->rebase(from, len, to);
    }, &c.params_);
    std::exception_ptr error;
    try {
        auto rest = Next(c, chain.steps.data(), chain.steps.data() + chain.steps.size())(); // named (GCC PR 100611)
        co_await rest;
    } catch (...) {
        error = std::current_exception();
    }
    if (error) {
        finish_error(c, error);
    }
    notify(c);
}

int error_status(const std::exception_ptr& error) noexcept {
    try {
        std::rethrow_exception(error);
    } catch (const HttpError& e) {
        return e.status();
    } catch (const runtime::OperationCancelled&) {
        return 503;
    } catch (...) {
        return 500;
    }
}

void App::finish_error(Context& c, const std::exception_ptr& error) {
    try {
        handle_error(c, error);
    } catch (...) { // a streamed response's failure goes back to the server (which closes)
        notify(c);
        throw;
    }
}

void App::handle_error(Context& c, const std::exception_ptr& error) {
    int status = 500;
    std::string message = "Internal Server Error";
    bool log = true;
    std::string what;
    try {
        std::rethrow_exception(error);
    } catch (const HttpError& e) {
        status = e.status();
        message = e.what();
        log = false;
    } catch (const runtime::OperationCancelled& e) {
        // The request was abandoned (client gone, timeout middleware, a shutdown's grace cut)
        // and a co_await said so: expected, logged only with log_all_errors as the server's
        // own resets and timeouts are. A 503 goes out if the connection still takes one.
        status = 503;
        message = "request cancelled";
        log = options_.server.log_all_errors;
        what = e.what();
    } catch (const std::exception& e) {
        what = e.what();
    } catch (...) {
        what = "unknown exception";
    }
    if (c.exchange().streaming()) {
        // The head is out: no error response can follow. Let the server close the connection.
        std::rethrow_exception(error);
    }
    if (log) {
        const std::string line = fmt::format("handler failed on {} {}: {}", c.method_text(),
                                             c.route().empty() ? std::string_view("(no route)") : c.route(), what);
        if (options_.server.logger) {
            try {
                options_.server.logger(line);
            } catch (...) { // NOLINT(bugprone-empty-catch): a failing logger must not fail the answer
            }
        } else {
            std::fprintf(stderr, "ringwork: %s\n", line.c_str());
        }
    }
    answer_error(c, status, message);
}

} // namespace ringwork::web
