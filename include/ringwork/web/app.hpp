// SPDX-License-Identifier: MIT
// App: routes, route groups and middleware over the router, wired to an http::Server.
#pragma once

#include <ringwork/http/server.hpp>
#include <ringwork/web/context.hpp>
#include <ringwork/web/router.hpp>

#include <concepts>
#include <exception>
#include <tuple>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace ringwork::web {

/// \brief A callable usable as a route handler: `Task<>(Context&)` or `void(Context&)`.
template <class F>
concept HandlerFn = std::is_invocable_v<F&, Context&> &&
                    (std::is_void_v<std::invoke_result_t<F&, Context&>> ||
                     std::same_as<std::invoke_result_t<F&, Context&>, runtime::Task<>>);

/// \brief A callable usable as middleware: `Task<>(Context&, Next)`.
template <class F>
concept MiddlewareFn = std::is_invocable_r_v<runtime::Task<>, F&, Context&, Next>;

/// \brief App configuration (the Server's options plus the web layer's own).
struct AppOptions {
    http::ServerOptions server;
    /// A path that misses only by a trailing slash is redirected (301 for GET and HEAD, 308
    /// otherwise, so the method and body are kept); off, or when the raw path cannot be
    /// rewritten safely (the slash is an encoded %2F, or the target would start with "//" or
    /// "/\\"): the not-found handler answers.
    bool redirect_trailing_slash = true;
    /// OPTIONS on a routed path answers 204 with Allow unless a route registers OPTIONS.
    bool auto_options = true;
    /// Peers (IP addresses or CIDR ranges, e.g. "10.0.0.0/8", "::1") whose X-Forwarded-For /
    /// X-Real-IP headers Context::ip() believes. Empty: the headers are ignored.
    std::vector<std::string> trusted_proxies;
    /// multipart/form-data limits: a file part larger than this goes to a temporary file.
    std::size_t multipart_memory_limit = 1U << 20;
    std::size_t multipart_max_parts = 1000;
    /// A multipart body larger than this is 413. Bodies the server gathers are bounded by
    /// ServerOptions::max_request_body_size first; this bounds streamed ones (read_multipart()).
    std::size_t multipart_max_body_size = 64U << 20;
    /// Where file parts over multipart_memory_limit go. Another directory than the default is
    /// checked when the App is built (std::invalid_argument unless it is a writable directory).
    std::string multipart_temp_dir = "/tmp";
};

class App;

/// \brief Where routes are added: the App itself or a group with a prefix and its own
/// middleware. `get(pattern, mw..., handler)`: zero or more middleware then one handler.
class Routes {
public:
    template <class... Fs>
    Routes& get(std::string_view pattern, Fs&&... fs) {
        return route("GET", pattern, std::forward<Fs>(fs)...);
    }
    template <class... Fs>
    Routes& post(std::string_view pattern, Fs&&... fs) {
        return route("POST", pattern, std::forward<Fs>(fs)...);
    }
    template <class... Fs>
    Routes& put(std::string_view pattern, Fs&&... fs) {
        return route("PUT", pattern, std::forward<Fs>(fs)...);
    }
    template <class... Fs>
    Routes& patch(std::string_view pattern, Fs&&... fs) {
        return route("PATCH", pattern, std::forward<Fs>(fs)...);
    }
    template <class... Fs>
    Routes& del(std::string_view pattern, Fs&&... fs) {
        return route("DELETE", pattern, std::forward<Fs>(fs)...);
    }
    template <class... Fs>
    Routes& head(std::string_view pattern, Fs&&... fs) {
        return route("HEAD", pattern, std::forward<Fs>(fs)...);
    }
    template <class... Fs>
    Routes& options(std::string_view pattern, Fs&&... fs) {
        return route("OPTIONS", pattern, std::forward<Fs>(fs)...);
    }
    /// Every method (an explicit method on the same pattern wins).
    template <class... Fs>
    Routes& any(std::string_view pattern, Fs&&... fs) {
        return route({}, pattern, std::forward<Fs>(fs)...);
    }
    /// Any method token (e.g. "PURGE"); an empty method means any().
    template <class... Fs>
    Routes& route(std::string_view method, std::string_view pattern, Fs&&... fs);

    /// Middleware for every route of this group (and its subgroups), whenever they were added.
    template <class M>
        requires MiddlewareFn<std::decay_t<M>>
    Routes& use(M&& middleware);

    /// A subgroup: routes added to it get `prefix` prepended and run this group's middleware,
    /// then the subgroup's (`mws`, then its own use()).
    template <class... Ms>
    Routes group(std::string_view prefix, Ms&&... mws);

protected:
    Routes(App* app, std::size_t group) noexcept : app_(app), group_(group) {}
    friend class App;
    App* app_;
    std::size_t group_;
};

/// \brief The web application: routes and middleware, served by an http::Server.
///
/// \code
/// ringwork::web::App app;
/// app.use(ringwork::web::mw::logger());
/// app.get("/users/:id", [](ringwork::web::Context& c) { c.json({{"id", c.param("id")}}); });
/// app.listen("127.0.0.1:8080");
/// \endcode
///
/// Routes and middleware are registered before serving; the first request (or listen(), or a
/// TestClient) freezes the app, after which it is read-only and shared by every reactor.
/// Global middleware (use()) wraps every route, the not-found, method-not-allowed, automatic
/// OPTIONS and trailing-slash answers too (so CORS and logging see them). Exceptions are
/// answered by an outermost error boundary: HttpError with its status and a JSON body, any
/// other exception with a 500 (logged through the server's logger).
class App : public Routes {
public:
    explicit App(AppOptions options = {});
    ~App();
    App(const App&) = delete;
    App& operator=(const App&) = delete;

    /// The handler for paths no route matches (default: 404 text "Not Found").
    template <class H>
        requires HandlerFn<std::decay_t<H>>
    App& not_found(H&& handler) {
        not_found_ = make_handler(std::forward<H>(handler));
        return *this;
    }
    /// The handler for a routed path with another method (default: 405 with the Allow header
    /// already set and text "Method Not Allowed").
    template <class H>
        requires HandlerFn<std::decay_t<H>>
    App& method_not_allowed(H&& handler) {
        method_not_allowed_ = make_handler(std::forward<H>(handler));
        return *this;
    }
    /// How the error boundary answers: `f(c, status, message)` (default: JSON
    /// `{"error": message, "status": status}`). The response is reset before the call.
    App& on_error(std::function<void(Context&, int status, std::string_view message)> f) {
        on_error_ = std::move(f);
        return *this;
    }

    /// \brief Call `f(const Context&)` once for every request the app dispatches, after the
    /// whole chain and the error boundary, so `c.status()` is final (an exception counts as
    /// what the boundary answered). On the reactor thread; no coroutine frame and no
    /// allocation per call: the cheap way to count and time every request (mw::Metrics does).
    /// `c.exchange().start_ticks()` is when the server began reading the request. `f` must
    /// not throw (it is noexcept in spirit: an exception terminates). Before the app freezes.
    template <class F>
        requires std::is_invocable_v<F&, const Context&>
    App& observe(F&& f) {
        check_not_frozen();
        using D = std::decay_t<F>;
        auto owner = std::make_shared<D>(std::forward<F>(f));
        observers_.push_back(Observer{owner.get(), [](void* self, const Context& c) noexcept {
                                          (*static_cast<D*>(self))(c);
                                      }});
        owned_.push_back(std::move(owner));
        return *this;
    }

    /// \brief Serve on `address` ("127.0.0.1:8080", ":8080" for every IPv4 interface,
    /// "localhost:8080" for 127.0.0.1, "[::1]:8080"; other host names are not resolved) with
    /// `threads` reactors (0: one per CPU) until shutdown() or SIGINT/SIGTERM. `on_ready(port)`
    /// runs once listening (port 0 picks a free port). A malformed address throws
    /// std::invalid_argument saying what is wrong; a port another socket is bound to throws
    /// std::system_error (EADDRINUSE) before any thread starts (see ServerOptions::share_port).
    void listen(std::string_view address, unsigned threads = 0, std::function<void(std::uint16_t)> on_ready = {});
    /// \brief listen(":port").
    void listen(std::uint16_t port, unsigned threads = 0) { listen(":" + std::to_string(port), threads); }
    /// \brief Graceful shutdown of listen() (thread-safe).
    void shutdown() noexcept { server_.shutdown(); }
    /// \brief Graceful shutdown that cuts what is still in flight after `grace`
    /// (Server::shutdown(grace)).
    void shutdown(std::chrono::milliseconds grace) noexcept { server_.shutdown(grace); }

    /// \brief The server listen() uses (options, stats).
    [[nodiscard]] http::Server& server() noexcept { return server_; }
    [[nodiscard]] const AppOptions& options() const noexcept { return options_; }
    /// \brief Install this app as the handler of another server (the in-process test client
    /// does this); freezes the app. The app must outlive the server's serving.
    void install(http::Server& server);
    /// \brief Build the router and the chains (done automatically; registering afterwards
    /// throws std::logic_error).
    void freeze();
    [[nodiscard]] bool frozen() const noexcept { return frozen_; }
    /// \brief Serve one exchange (a Task that runs to the response).
    runtime::Task<> handle(http::Exchange& x);
    /// \brief Serve one exchange as the server's handler does: a bare synchronous route
    /// (one `void(Context&)` handler, no middleware) and the automatic answers without
    /// middleware run at once and return an empty Task (the server's handler contract: the
    /// exchange is answered); anything else returns the Task that runs the chain.
    runtime::Task<> dispatch(http::Exchange& x);

    // --- for Routes ----------------------------------------------------------------------
    template <class F>
    detail::Step make_handler(F&& f) {
        using D = std::decay_t<F>;
        auto owner = std::make_shared<D>(std::forward<F>(f));
        detail::Step step;
        step.self = owner.get();
        if constexpr (std::is_void_v<std::invoke_result_t<D&, Context&>>) {
            step.sync = [](const void* self, Context& c) { (*static_cast<D*>(const_cast<void*>(self)))(c); };
        } else {
            step.async = [](const void* self, Context& c, const detail::Step*, const detail::Step*) -> runtime::Task<> {
                return (*static_cast<D*>(const_cast<void*>(self)))(c);
            };
        }
        owned_.push_back(std::move(owner));
        return step;
    }
    template <class F>
    detail::Step make_middleware(F&& f) {
        using D = std::decay_t<F>;
        auto owner = std::make_shared<D>(std::forward<F>(f));
        detail::Step step;
        step.self = owner.get();
        step.async = [](const void* self, Context& c, const detail::Step* next,
                        const detail::Step* end) -> runtime::Task<> {
            return (*static_cast<D*>(const_cast<void*>(self)))(c, Next(c, next, end));
        };
        owned_.push_back(std::move(owner));
        return step;
    }
    std::size_t add_group(std::size_t parent, std::string_view prefix, std::vector<detail::Step> mws);
    void add_group_middleware(std::size_t group, detail::Step step);
    void add_route(std::string_view method, std::string_view pattern, std::size_t group,
                   std::vector<detail::Step> steps);
    /// Answer `status` through on_error (used by the boundary and built-in middleware).
    void answer_error(Context& c, int status, std::string_view message);
    /// Whether `peer`'s address (its port aside) is in AppOptions::trusted_proxies.
    [[nodiscard]] bool trusted_proxy(const io::SocketAddress& peer) const noexcept;

private:
    struct Group {
        std::size_t parent;
        std::string prefix; // full prefix
        std::vector<detail::Step> middleware;
    };
    struct RouteDef {
        std::string method; // empty: any
        std::string pattern;
        std::size_t group;
        std::vector<detail::Step> steps; // inline middleware then the handler
    };
    struct Chain {
        std::vector<detail::Step> steps;
        std::string pattern;
    };
    struct Proxy {
        io::SocketAddress network;
        unsigned prefix_bits;
    };
    void check_not_frozen() const;
    void handle_error(Context& c, const std::exception_ptr& error);
    /// handle_error(), telling the observers when it rethrows.
    void finish_error(Context& c, const std::exception_ptr& error);
    [[nodiscard]] std::vector<detail::Step> group_middleware(std::size_t group) const;
    /// The lookup: the chain to run (route params and pattern set in `c`), or nullptr when
    /// the request was answered already (a 400).
    const Chain* find_chain(Context& c);
    /// A chain that may suspend, in its own frame (the lookup's parameters copied into it).
    runtime::Task<> run_chain(http::Exchange& x, const Chain& chain, Params params, std::string_view route);

    AppOptions options_;
    http::Server server_;
    std::vector<std::shared_ptr<void>> owned_;
    std::vector<Group> groups_;
    std::vector<RouteDef> defs_;
    Router<std::uint32_t> router_;
    std::vector<Chain> chains_;
    /// The automatic answers, per group: that group's middleware (and its parents') then the
    /// not-found / 405 / OPTIONS / trailing-slash handler. [0] is the app's (global only).
    struct Special {
        Chain not_found;
        Chain method_not_allowed;
        Chain options;
        Chain redirect;
    };
    std::vector<Special> special_;
    /// Groups that add middleware, longest prefix first: a 404 under one of them runs it.
    std::vector<std::pair<std::string, std::size_t>> not_found_prefixes_;
    [[nodiscard]] std::size_t group_of_path(std::string_view path) const noexcept;
    detail::Step not_found_;
    detail::Step method_not_allowed_;
    std::function<void(Context&, int, std::string_view)> on_error_;
    struct Observer {
        void* self;
        void (*fn)(void* self, const Context& c) noexcept;
    };
    std::vector<Observer> observers_;
    void notify(const Context& c) const noexcept {
        for (const Observer& o : observers_) {
            o.fn(o.self, c);
        }
    }
    std::vector<Proxy> proxies_;
    bool frozen_ = false;
};

namespace detail {
template <class Tuple, std::size_t... I>
constexpr bool valid_route_callables(std::index_sequence<I...> /*unused*/) {
    constexpr std::size_t n = sizeof...(I);
    return ((I + 1 == n ? (HandlerFn<std::decay_t<std::tuple_element_t<I, Tuple>>> ||
                           MiddlewareFn<std::decay_t<std::tuple_element_t<I, Tuple>>>)
                        : MiddlewareFn<std::decay_t<std::tuple_element_t<I, Tuple>>>) &&
            ...);
}
} // namespace detail

template <class... Fs>
Routes& Routes::route(std::string_view method, std::string_view pattern, Fs&&... fs) {
    static_assert(sizeof...(Fs) >= 1, "a route needs a handler");
    static_assert(detail::valid_route_callables<std::tuple<Fs...>>(std::index_sequence_for<Fs...>{}),
                  "route(pattern, middleware..., handler): middleware are Task<>(Context&, Next), the handler is "
                  "Task<>(Context&) or void(Context&)");
    std::vector<detail::Step> steps;
    steps.reserve(sizeof...(Fs));
    auto add_one = [&](auto&& f) {
        using D = std::decay_t<decltype(f)>;
        if constexpr (MiddlewareFn<D>) {
            steps.push_back(app_->make_middleware(std::forward<decltype(f)>(f)));
        } else {
            steps.push_back(app_->make_handler(std::forward<decltype(f)>(f)));
        }
    };
    (add_one(std::forward<Fs>(fs)), ...);
    app_->add_route(method, pattern, group_, std::move(steps));
    return *this;
}

template <class M>
    requires MiddlewareFn<std::decay_t<M>>
Routes& Routes::use(M&& middleware) {
    app_->add_group_middleware(group_, app_->make_middleware(std::forward<M>(middleware)));
    return *this;
}

template <class... Ms>
Routes Routes::group(std::string_view prefix, Ms&&... mws) {
    static_assert((MiddlewareFn<std::decay_t<Ms>> && ...), "group() takes a prefix and middleware");
    std::vector<detail::Step> steps;
    (steps.push_back(app_->make_middleware(std::forward<Ms>(mws))), ...);
    return Routes(app_, app_->add_group(group_, prefix, std::move(steps)));
}

} // namespace ringwork::web
