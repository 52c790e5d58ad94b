// SPDX-License-Identifier: MIT
// Prometheus metrics: a recording middleware and a scrape handler (text exposition format 0.0.4).
#pragma once

#include <ringwork/http/server.hpp>
#include <ringwork/runtime/task.hpp>
#include <ringwork/web/context.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace ringwork::web {
class App;
} // namespace ringwork::web

namespace ringwork::web::mw {

/// \brief Metrics configuration.
struct MetricsOptions {
    /// Upper bounds (`le`, seconds, strictly ascending, finite, > 0) of the request-duration
    /// histogram; `+Inf` is implicit. Fixed for the object's lifetime.
    std::vector<double> buckets = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                   0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
    /// Label the histogram with the route pattern (`route="/users/:id"`, never the raw path;
    /// `(unmatched)` for requests no route matched). Off: one histogram without labels.
    bool per_route = true;
    /// Distinct route labels kept per reactor thread (a memory bound: each costs one histogram
    /// per thread); requests of routes beyond it are counted under `route="(other)"`.
    std::size_t max_routes = 256;
    /// Export process_* figures from /proc/self (RSS, open descriptors, CPU time...).
    bool process = true;
};

namespace detail {
class MetricsState;
} // namespace detail

/// \brief The recording middleware (see Metrics::middleware()).
class MetricsMiddleware {
public:
    explicit MetricsMiddleware(std::shared_ptr<detail::MetricsState> state) noexcept
        : state_(std::move(state)) {}
    runtime::Task<> operator()(Context& c, Next next) const;

private:
    std::shared_ptr<detail::MetricsState> state_;
};

/// \brief The scrape handler (see Metrics::handler()).
class MetricsHandler {
public:
    explicit MetricsHandler(std::shared_ptr<detail::MetricsState> state) noexcept
        : state_(std::move(state)) {}
    void operator()(Context& c) const;

private:
    std::shared_ptr<detail::MetricsState> state_;
};

/// \brief Prometheus metrics for an App: request counts and durations, served with the
/// server's, the io_uring rings' and the process's figures in the text exposition format
/// 0.0.4 (docs/observability.md lists every metric).
/// \code
/// ringwork::web::App app;
/// ringwork::web::mw::Metrics metrics(app);   // counts every request the app dispatches
/// app.get("/metrics", metrics.handler());
/// \endcode
///
/// Built from an App, it registers an App::observe() callback: each request is counted once
/// the chain and the error boundary are done (the status is final: an exception counts as
/// what the App answered), timed from when the server began reading it (the reactor's
/// wake-up that delivered its first bytes) to the end of the loop pass that answered it (when
/// the reactor hands the pass's responses to the kernel: one `rdtsc` per pass, see
/// runtime::CycleClock). Cost per request: a route-slot lookup, the bucket search and relaxed
/// stores into counters of the reactor thread it runs on (one writer each: no lock, no
/// read-modify-write atomic, no heap allocation once a thread has seen a route); no coroutine
/// frame. A scrape sums the
/// threads' counters under a mutex that only a thread's first request also takes, and the
/// server's per-reactor counters under its state lock: race-free from any thread, each value
/// exact, the whole not one atomic snapshot.
///
/// Built from a Server or from nothing, nothing is counted until middleware() is placed in a
/// chain (a group, a route: it times what is inside it).
///
/// The handler (and the middleware) share the object's state (copies are cheap and share it
/// too); the App (or Server) passed in must outlive every scrape. Each thread that records
/// gets its own table per Metrics object, allocated at its first request: about 200 bytes per
/// MetricsOptions::max_routes slot with the default 16 buckets (50 KiB). Constructing the
/// first Metrics of a process measures the TSC's rate (about 10 ms: five 2 ms spans).
class Metrics {
public:
    /// Counts every request `app` dispatches (App::observe()) and exports `app.server()`'s
    /// figures (what App::listen() serves). Construct it while registering routes.
    /// \throws std::invalid_argument for invalid options; std::logic_error once the app is
    /// frozen (serving, or a TestClient attached).
    explicit Metrics(App& app, MetricsOptions options = {});
    /// Same with the figures of `server` (a Server you run yourself, a TestClient's).
    explicit Metrics(http::Server& server, MetricsOptions options = {});
    /// Requests and process figures only, no server.
    explicit Metrics(MetricsOptions options = {});

    /// \brief A recording middleware, for a Metrics not built from an App (one built from an
    /// App counts every request already: this throws std::logic_error rather than count twice).
    /// It times what is inside it; exceptions count as what the App answers them with
    /// (HttpError's status, else 500). Costs a coroutine frame per request more than the
    /// App's observer.
    [[nodiscard]] MetricsMiddleware middleware() const;
    /// \brief The handler answering a scrape: 200, `text/plain; version=0.0.4; charset=utf-8`,
    /// `Cache-Control: no-store`. Mount it where you like; it may sit behind auth middleware.
    [[nodiscard]] MetricsHandler handler() const { return MetricsHandler(state_); }
    /// \brief Append the exposition text to `out` (any thread).
    void render(std::string& out) const;
    /// \brief The exposition text (any thread).
    [[nodiscard]] std::string text() const;

private:
    std::shared_ptr<detail::MetricsState> state_;
    bool app_attached_ = false; ///< built from an App: its observer records
};

} // namespace ringwork::web::mw
