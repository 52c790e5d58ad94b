// SPDX-License-Identifier: MIT
// Prometheus metrics: per-thread request counters and histograms, and the scrape that sums them
// with the server's, the rings' and the process's figures (text exposition format 0.0.4).
#include <ringwork/runtime/counter.hpp>
#include <ringwork/io/reactor.hpp>
#include <ringwork/runtime/cycle_clock.hpp>
#include <ringwork/web/app.hpp>
#include <ringwork/web/error.hpp>
#include <ringwork/web/metrics.hpp>

#include "http/server_metrics.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <dirent.h>
#include <exception>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <sys/resource.h>
#include <unistd.h>
#include <vector>

namespace ringwork::web::mw {

namespace detail {

namespace {


constexpr std::size_t kMethods = 10; // http::Method's enumerators, `other` last
constexpr std::array<std::string_view, kMethods> kMethodLabels = {
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "OTHER"};
static_assert(static_cast<std::size_t>(http::Method::other) + 1 == kMethods);
constexpr std::size_t kClasses = 5;
constexpr std::array<std::string_view, kClasses> kClassLabels = {"1xx", "2xx", "3xx", "4xx", "5xx"};

constexpr std::string_view kUnmatched = "(unmatched)";
constexpr std::string_view kOther = "(other)";
constexpr std::uint32_t kNoSlot = 0xFFFFFFFF;

/// Ids of MetricsState objects and of threads: unique for the process's lifetime, so a
/// thread's cache never mistakes a new object (or thread) for a dead one at the same address.
std::atomic<std::uint64_t> g_next_id{1};

std::size_t status_class(int status) noexcept {
    return static_cast<std::size_t>(std::clamp(status / 100, 1, 5) - 1);
}

/// The whole of a small /proc file (empty when it cannot be read).
std::string read_proc(const char* path) {
    std::string text;
    std::FILE* f = std::fopen(path, "re");
    if (f == nullptr) {
        return text;
    }
    char buf[4096];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) {
        text.append(buf, n);
    }
    std::fclose(f);
    return text;
}

} // namespace

/// One thread's counters; that thread is the only writer, a scrape reads them from anywhere.
class Shard {
public:
    Shard(std::uint64_t thread, std::size_t slots, const std::vector<std::uint64_t>& bounds, bool per_route)
        : thread_(thread)
        , bounds_(bounds)
        , per_route_(per_route)
        , per_slot_(bounds.size() + 1)
        , capacity_(static_cast<std::uint32_t>(slots))
        , names_(std::make_unique<std::string[]>(slots))
        , keys_(std::make_unique<const char*[]>(slots))
        , buckets_(std::make_unique<runtime::Counter[]>(slots * per_slot_))
        , sums_ticks_(std::make_unique<runtime::Counter[]>(slots)) {
        std::size_t n = 1;
        while (n < slots * 2) {
            n *= 2;
        }
        mask_ = n - 1;
        index_ = std::make_unique<std::uint32_t[]>(n); // 0: empty, else slot + 1
        if (!per_route_) {
            publish({}, nullptr); // the one unlabelled histogram
        }
    }

    [[nodiscard]] std::uint64_t thread() const noexcept { return thread_; }

    Shard(const Shard&) = delete;
    Shard& operator=(const Shard&) = delete;

    /// A request that lasted `ticks`.
    void record(http::Method method, int status, std::string_view route, std::uint64_t ticks) {
        count(method, status);
        // Not the address cache: a middleware's Metrics may outlive the App whose patterns it
        // saw, and a new pattern may take a dead one's address (slot_for confirms the text).
        add_duration(per_route_ ? slot_for(route) : 0, ticks);
    }
    /// A request that began at tick `start` and ends with this loop pass: counted now, its
    /// duration read once for every request of the pass just before the reactor submits their
    /// responses (one rdtsc per batch instead of one per request). Reactor thread only.
    void record_at_pass_end(http::Method method, int status, std::string_view route, std::uint64_t start) {
        count(method, status);
        const std::uint32_t slot = route_slot(route);
        if (flush_work_.queued_ && npending_ != 0) {
            // The requests of one pass share their start (the reactor's wake-up) and mostly
            // their route: one entry counts them all, one bucket search at the flush.
            Pending& last = pending_[npending_ - 1];
            if (last.start == start && last.slot == slot && last.count != UINT32_MAX) {
                ++last.count;
                return;
            }
        } else if (npending_ != 0) {
            flush(); // left by a reactor destroyed before its next pass (shutdown): late, kept
        }
        if (npending_ == pending_.size()) {
            flush();
        }
        pending_[npending_++] = Pending{start, slot, 1};
        if (!flush_work_.queued_) {
            if (io::Reactor* r = io::Reactor::current()) {
                r->defer(&flush_work_);
            } else {
                flush(); // not on a reactor (cannot happen through App::observe)
            }
        }
    }

    // --- for a scrape (any thread) ----------------------------------------------------------
    [[nodiscard]] std::uint64_t requests(std::size_t method, std::size_t cls) const noexcept {
        return requests_[method * kClasses + cls].load();
    }
    /// Slots whose name and counters may be read (published with release by the writer).
    [[nodiscard]] std::uint32_t published() const noexcept {
        return published_.load(std::memory_order_acquire);
    }
    [[nodiscard]] const std::string& name(std::uint32_t slot) const noexcept {
        return names_[slot];
    }
    [[nodiscard]] std::uint64_t bucket(std::uint32_t slot, std::size_t i) const noexcept {
        return buckets_[slot * per_slot_ + i].load();
    }
    [[nodiscard]] std::uint64_t sum_ticks(std::uint32_t slot) const noexcept {
        return sums_ticks_[slot].load();
    }

private:
    /// The slot of `route`, 0 without per_route, for the App's observer: the previous
    /// request's, remembered by the pattern's address (the App owns its patterns for as long
    /// as it can call: no text compare).
    std::uint32_t route_slot(std::string_view route) {
        if (!per_route_) {
            return 0;
        }
        if (route.data() != last_route_ || route.empty()) {
            last_slot_ = slot_for(route);
            last_route_ = route.empty() ? nullptr : route.data();
        }
        return last_slot_;
    }
    /// The slot of `route`: found by the address of the pattern (the router's, stable while
    /// the App lives) and confirmed by its text; interned on first sight (one string copy).
    [[gnu::noinline]] std::uint32_t slot_for(std::string_view route) { // the observer: on a route change only
        if (route.empty()) {
            route = kUnmatched;
        }
        const auto key = reinterpret_cast<std::uintptr_t>(route.data()); // NOLINT: a hash key only
        std::size_t h = (key * 0x9E3779B97F4A7C15ULL) >> 20U;
        for (;; ++h) {
            const std::uint32_t v = index_[h & mask_];
            if (v == 0) {
                break;
            }
            if (keys_[v - 1] == route.data() && names_[v - 1] == route) {
                return v - 1;
            }
        }
        // Unknown: intern it, or count it under "(other)" once the table is full (the last
        // slot is reserved for that).
        if (used_ + 1 >= capacity_) {
            if (overflow_ == kNoSlot) {
                overflow_ = publish(kOther, nullptr);
            }
            return overflow_;
        }
        const std::uint32_t slot = publish(route, route.data());
        index_[h & mask_] = slot + 1;
        return slot;
    }
    std::uint32_t publish(std::string_view name, const char* key) {
        const std::uint32_t slot = used_++;
        names_[slot].assign(name);
        keys_[slot] = key;
        published_.store(used_, std::memory_order_release);
        return slot;
    }

    void count(http::Method method, int status) noexcept {
        const auto m = std::min(static_cast<std::size_t>(method), kMethods - 1);
        ++requests_[m * kClasses + status_class(status)];
    }
    /// `n` requests of `ticks` each.
    void add_duration(std::uint32_t slot, std::uint64_t ticks, std::uint32_t n = 1) noexcept {
        // `le` buckets: the first bound >= the value, else +Inf (the last).
        const auto bucket = static_cast<std::size_t>(
            std::lower_bound(bounds_.begin(), bounds_.end(), ticks) - bounds_.begin());
        buckets_[slot * per_slot_ + bucket] += n;
        sums_ticks_[slot] += ticks * n;
    }
    [[gnu::noinline]] void flush() noexcept { // once per pass: off the per-request path
        const std::uint64_t now = runtime::CycleClock::now();
        for (std::size_t i = 0; i < npending_; ++i) {
            const Pending& p = pending_[i];
            add_duration(p.slot, now > p.start ? now - p.start : 0, p.count);
        }
        npending_ = 0;
    }

    /// Requests that began at `start` (the same wake-up) on route slot `slot`.
    struct Pending {
        std::uint64_t start;
        std::uint32_t slot;
        std::uint32_t count;
    };
    /// The reactor runs it before its next submit. A Shard lives as long as its MetricsState,
    /// which the App's observer keeps until the App is destroyed, after serving; a reactor
    /// destroyed with it queued unlinks it (~ReactorImpl), so the thread's next reactor
    /// queues it again.
    struct FlushWork : io::Deferred {
        explicit FlushWork(Shard* s) noexcept : Deferred(&run), shard(s) {}
        static void run(io::Deferred* d) noexcept { static_cast<FlushWork*>(d)->shard->flush(); }
        Shard* shard;
    };

    std::uint64_t thread_;
    const std::vector<std::uint64_t>& bounds_; ///< the state's, in ticks
    std::array<Pending, 64> pending_{};
    std::size_t npending_ = 0;
    const char* last_route_ = nullptr; ///< route_slot's one-entry cache
    std::uint32_t last_slot_ = 0;
    FlushWork flush_work_{this};
    bool per_route_;
    std::size_t per_slot_; ///< buckets per slot: the bounds, then +Inf
    std::uint32_t capacity_;
    std::uint32_t used_ = 0;
    std::uint32_t overflow_ = kNoSlot;
    std::size_t mask_ = 0;
    std::array<runtime::Counter, kMethods * kClasses> requests_{};
    std::unique_ptr<std::string[]> names_;        ///< written once before publication
    std::unique_ptr<const char*[]> keys_;         ///< the writer's only
    std::unique_ptr<std::uint32_t[]> index_;      ///< the writer's only (open addressing)
    std::unique_ptr<runtime::Counter[]> buckets_; ///< per slot, not cumulative
    std::unique_ptr<runtime::Counter[]> sums_ticks_; ///< runtime::CycleClock ticks
    std::atomic<std::uint32_t> published_{0};
};

namespace {

/// The shards this thread writes, by MetricsState id (usually one entry).
struct ThreadShards {
    std::uint64_t thread = 0;
    struct Entry {
        std::uint64_t state;
        Shard* shard;
    };
    std::vector<Entry> entries;
};
thread_local ThreadShards tl_shards;

} // namespace

class MetricsState {
public:
    MetricsState(http::Server* server, MetricsOptions options)
        : id_(g_next_id.fetch_add(1, std::memory_order_relaxed))
        , server_(server)
        , options_(std::move(options)) {
        double previous = 0;
        for (const double b : options_.buckets) {
            if (!std::isfinite(b) || b <= previous) {
                throw std::invalid_argument(
                    "ringwork: MetricsOptions::buckets must be finite, > 0 and "
                    "strictly ascending");
            }
            previous = b;
            bounds_ticks_.push_back(static_cast<std::uint64_t>(std::llround(b * 1e9 / ns_per_tick_)));
        }
        if (options_.max_routes == 0 || options_.max_routes > 65536) {
            throw std::invalid_argument(
                "ringwork: MetricsOptions::max_routes must be in [1, 65536]");
        }
    }

    /// One request of `ticks` runtime::CycleClock ticks.
    void record(http::Method method, int status, std::string_view route, std::uint64_t ticks) {
        local_shard().record(method, status, route, ticks);
    }
    /// One request that began at tick `start` and ends with this loop pass (Shard).
    void record_at_pass_end(http::Method method, int status, std::string_view route, std::uint64_t start) {
        local_shard().record_at_pass_end(method, status, route, start);
    }

    void render(std::string& out) const;

private:
    Shard& local_shard() {
        for (const auto& e : tl_shards.entries) {
            if (e.state == id_) {
                return *e.shard;
            }
        }
        return add_shard();
    }
    /// A thread's first request (or a cache that forgot this state): once per thread.
    Shard& add_shard() {
        ThreadShards& tl = tl_shards;
        if (tl.thread == 0) {
            tl.thread = g_next_id.fetch_add(1, std::memory_order_relaxed);
        }
        Shard* shard = nullptr;
        {
            std::lock_guard lock(mutex_);
            for (const auto& s : shards_) {
                if (s->thread() == tl.thread) {
                    shard = s.get();
                }
            }
            if (shard == nullptr) {
                // +1: the "(other)" slot beyond max_routes.
                const std::size_t slots = options_.per_route ? options_.max_routes + 1 : 1;
                shards_.push_back(std::make_unique<Shard>(tl.thread, slots, bounds_ticks_, options_.per_route));
                shard = shards_.back().get();
            }
        }
        if (tl.entries.size() >= 16) {
            tl.entries.clear(); // mostly entries of dead states; live ones come back here
        }
        tl.entries.push_back({id_, shard});
        return *shard;
    }

    void render_requests(std::string& out) const;
    void render_server(std::string& out) const;
    void render_process(std::string& out) const;

    std::uint64_t id_;
    http::Server* server_;
    MetricsOptions options_;
    double ns_per_tick_ = runtime::CycleClock::ns_per_tick(); ///< calibrated here, at startup
    std::vector<std::uint64_t> bounds_ticks_;
    mutable std::mutex mutex_; ///< guards shards_ (the list, not the counters)
    std::vector<std::unique_ptr<Shard>> shards_;
};

namespace {

// --- exposition text ------------------------------------------------------------------------

void family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
    fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

/// A label value with `\`, `"` and newlines escaped.
void append_label_value(std::string& out, std::string_view v) {
    for (const char ch : v) {
        switch (ch) {
        case '\\':
            out += "\\\\";
            break;
        case '"':
            out += "\\\"";
            break;
        case '\n':
            out += "\\n";
            break;
        default:
            out += ch;
        }
    }
}

template <class V>
void sample(std::string& out, std::string_view name, std::string_view labels, V value) {
    if (labels.empty()) {
        fmt::format_to(std::back_inserter(out), "{} {}\n", name, value);
    } else {
        fmt::format_to(std::back_inserter(out), "{}{{{}}} {}\n", name, labels, value);
    }
}

/// A family with one unlabelled sample.
void single(std::string& out, std::string_view name, std::string_view type, std::string_view help,
            std::uint64_t value) {
    family(out, name, type, help);
    sample(out, name, {}, value);
}

/// A family with one sample per reactor (`reactor="0"`, ...).
template <class F>
void per_reactor(std::string& out, const std::vector<http::ReactorFigures>& rs,
                 std::string_view name, std::string_view type, std::string_view help, F get) {
    family(out, name, type, help);
    for (std::size_t i = 0; i < rs.size(); ++i) {
        fmt::format_to(std::back_inserter(out), "{}{{reactor=\"{}\"}} {}\n", name, i, get(rs[i]));
    }
}

} // namespace

void MetricsState::render(std::string& out) const {
    render_requests(out);
    if (server_ != nullptr) {
        render_server(out);
    }
    if (options_.process) {
        render_process(out);
    }
}

void MetricsState::render_requests(std::string& out) const {
    struct Histogram {
        std::vector<std::uint64_t> buckets;
        std::uint64_t sum_ticks = 0;
    };
    std::array<std::uint64_t, kMethods * kClasses> requests{};
    std::map<std::string, Histogram, std::less<>> routes;
    const std::size_t per_slot = bounds_ticks_.size() + 1;
    {
        std::lock_guard lock(mutex_);
        for (const auto& shard : shards_) {
            for (std::size_t m = 0; m < kMethods; ++m) {
                for (std::size_t k = 0; k < kClasses; ++k) {
                    requests[m * kClasses + k] += shard->requests(m, k);
                }
            }
            const std::uint32_t n = shard->published();
            for (std::uint32_t slot = 0; slot < n; ++slot) {
                auto it = routes.find(shard->name(slot));
                if (it == routes.end()) {
                    it = routes
                             .emplace(shard->name(slot),
                                      Histogram{std::vector<std::uint64_t>(per_slot), 0})
                             .first;
                }
                for (std::size_t i = 0; i < per_slot; ++i) {
                    it->second.buckets[i] += shard->bucket(slot, i);
                }
                it->second.sum_ticks += shard->sum_ticks(slot);
            }
        }
    }
    family(out, "ringwork_requests_total", "counter",
           "HTTP requests answered, by method and status class (metrics middleware).");
    std::string labels;
    for (std::size_t m = 0; m < kMethods; ++m) {
        for (std::size_t k = 0; k < kClasses; ++k) {
            if (const std::uint64_t v = requests[m * kClasses + k]; v != 0) {
                labels = fmt::format("method=\"{}\",status_class=\"{}\"", kMethodLabels[m],
                                     kClassLabels[k]);
                sample(out, "ringwork_requests_total", labels, v);
            }
        }
    }
    family(out, "ringwork_request_duration_seconds", "histogram",
           "Time from the metrics middleware's call to its return (the chain inside it).");
    if (!options_.per_route && routes.empty()) {
        routes.emplace("",
                       Histogram{std::vector<std::uint64_t>(per_slot), 0}); // always the one series
    }
    for (const auto& [route, h] : routes) {
        std::string prefix;
        if (options_.per_route) {
            prefix = "route=\"";
            append_label_value(prefix, route);
            prefix += "\",";
        }
        std::uint64_t cumulative = 0;
        for (std::size_t i = 0; i < per_slot; ++i) {
            cumulative += h.buckets[i];
            if (i + 1 < per_slot) {
                labels = fmt::format("{}le=\"{}\"", prefix, options_.buckets[i]);
            } else {
                labels = prefix + "le=\"+Inf\"";
            }
            sample(out, "ringwork_request_duration_seconds_bucket", labels, cumulative);
        }
        if (!prefix.empty()) {
            prefix.pop_back(); // the trailing comma
        }
        // _count is the +Inf bucket, both from the same loads: always consistent.
        sample(out, "ringwork_request_duration_seconds_sum", prefix,
               static_cast<double>(h.sum_ticks) * ns_per_tick_ / 1e9);
        sample(out, "ringwork_request_duration_seconds_count", prefix, cumulative);
    }
}

void MetricsState::render_server(std::string& out) const {
    const std::vector<http::ReactorFigures> rs = http::ServerMetricsAccess::reactors(*server_);
    http::ServerStats t;
    std::array<http::BufferPoolFigures, 3> pools{};
    for (const auto& r : rs) {
        const http::ServerStats& s = r.server;
        t.connections_accepted += s.connections_accepted;
        t.connections_open += s.connections_open;
        t.requests += s.requests;
        t.parse_errors += s.parse_errors;
        t.head_copies += s.head_copies;
        t.carry_copies += s.carry_copies;
        t.exchange_pool_misses += s.exchange_pool_misses;
        t.rejected_concurrency += s.rejected_concurrency;
        t.rejected_per_ip += s.rejected_per_ip;
        t.accept_errors += s.accept_errors;
        t.workers_ready += s.workers_ready;
        t.workers_busy += s.workers_busy;
        t.workers_created += s.workers_created;
        t.workers_retired += s.workers_retired;
        t.out_buffers_held += s.out_buffers_held;
        t.carry_buffers_held += s.carry_buffers_held;
        t.body_bytes_copied += s.body_bytes_copied;
        t.body_bytes_zero_copy += s.body_bytes_zero_copy;
        t.handlers_cancelled += s.handlers_cancelled;
        t.handlers_detached += s.handlers_detached;
        t.connections_cut += s.connections_cut;
        t.connections_parked += s.connections_parked;
        t.parks += s.parks;
        const std::array<const http::BufferPoolFigures*, 3> mine = {&r.out, &r.body, &r.carry};
        for (std::size_t i = 0; i < 3; ++i) {
            pools[i].hits += mine[i]->hits;
            pools[i].misses += mine[i]->misses;
            pools[i].idle += mine[i]->idle;
            pools[i].idle_bytes += mine[i]->idle_bytes;
        }
    }
    auto it = std::back_inserter(out);

    single(out, "ringwork_connections_open", "gauge", "Connections open now.", t.connections_open);
    single(out, "ringwork_connections_parked", "gauge",
           "Idle keep-alive connections parked without a worker (idle_park_delay).",
           t.connections_parked);
    single(out, "ringwork_connection_parks_total", "counter",
           "Times an idle keep-alive connection gave its worker back.", t.parks);
    single(out, "ringwork_connections_accepted_total", "counter", "Connections accepted.",
           t.connections_accepted);
    family(out, "ringwork_connections_rejected_total", "counter",
           "Connections refused: 503 at the concurrency limit, 429 at max_conns_per_ip, or accept "
           "failures (EMFILE, ENFILE, ENOMEM...).");
    sample(out, "ringwork_connections_rejected_total", "reason=\"concurrency\"",
           t.rejected_concurrency);
    sample(out, "ringwork_connections_rejected_total", "reason=\"per_ip\"", t.rejected_per_ip);
    sample(out, "ringwork_connections_rejected_total", "reason=\"emfile\"", t.accept_errors);
    per_reactor(out, rs, "ringwork_reactor_connections_accepted_total", "counter",
                "Connections accepted per reactor (how the kernel spreads them over SO_REUSEPORT "
                "listeners).",
                [](const http::ReactorFigures& r) { return r.server.connections_accepted; });
    single(out, "ringwork_server_requests_total", "counter",
           "Requests the server parsed and handed to the handler (all of them, not only the "
           "middleware's).",
           t.requests);
    single(out, "ringwork_parse_errors_total", "counter",
           "Requests refused as malformed or over a limit.", t.parse_errors);
    family(out, "ringwork_workers", "gauge",
           "Worker coroutines: ready (parked) or busy (serving a connection).");
    sample(out, "ringwork_workers", "state=\"ready\"", t.workers_ready);
    sample(out, "ringwork_workers", "state=\"busy\"", t.workers_busy);
    single(out, "ringwork_workers_created_total", "counter", "Workers created.", t.workers_created);
    single(out, "ringwork_workers_retired_total", "counter",
           "Workers retired by the reaper after idling.", t.workers_retired);

    constexpr std::array<std::string_view, 3> kPools = {"out", "body", "carry"};
    family(out, "ringwork_buffer_pool_hits_total", "counter", "Buffers taken from a pool.");
    for (std::size_t i = 0; i < 3; ++i) {
        fmt::format_to(it, "ringwork_buffer_pool_hits_total{{pool=\"{}\"}} {}\n", kPools[i],
                       pools[i].hits);
    }
    family(out, "ringwork_buffer_pool_misses_total", "counter", "Buffers a pool had to allocate.");
    for (std::size_t i = 0; i < 3; ++i) {
        fmt::format_to(it, "ringwork_buffer_pool_misses_total{{pool=\"{}\"}} {}\n", kPools[i],
                       pools[i].misses);
    }
    family(out, "ringwork_buffer_pool_idle_buffers", "gauge", "Buffers idle in a pool.");
    for (std::size_t i = 0; i < 3; ++i) {
        fmt::format_to(it, "ringwork_buffer_pool_idle_buffers{{pool=\"{}\"}} {}\n", kPools[i],
                       pools[i].idle);
    }
    family(out, "ringwork_buffer_pool_idle_bytes", "gauge", "Bytes of the buffers idle in a pool.");
    for (std::size_t i = 0; i < 3; ++i) {
        fmt::format_to(it, "ringwork_buffer_pool_idle_bytes{{pool=\"{}\"}} {}\n", kPools[i],
                       pools[i].idle_bytes);
    }
    family(out, "ringwork_buffers_in_use", "gauge", "Pooled buffers held by live connections.");
    sample(out, "ringwork_buffers_in_use", "pool=\"out\"", t.out_buffers_held);
    sample(out, "ringwork_buffers_in_use", "pool=\"carry\"", t.carry_buffers_held);
    single(out, "ringwork_exchange_pool_misses_total", "counter",
           "Request states the pool had to allocate.", t.exchange_pool_misses);
    family(out, "ringwork_request_copies_total", "counter",
           "Request heads copied: head (the handler suspended), carry (a request spanned receive "
           "buffers).");
    sample(out, "ringwork_request_copies_total", "kind=\"head\"", t.head_copies);
    sample(out, "ringwork_request_copies_total", "kind=\"carry\"", t.carry_copies);
    family(out, "ringwork_response_body_bytes_total", "counter",
           "Response body bytes: copied into output buffers, or sent from the handler's memory.");
    sample(out, "ringwork_response_body_bytes_total", "mode=\"copied\"", t.body_bytes_copied);
    sample(out, "ringwork_response_body_bytes_total", "mode=\"zero_copy\"", t.body_bytes_zero_copy);
    single(out, "ringwork_handlers_cancelled_total", "counter",
           "Handlers whose stop token fired on a client reset.", t.handlers_cancelled);
    single(out, "ringwork_handlers_detached_total", "counter",
           "Handlers still running after a deadline answered for them (timeout middleware).",
           t.handlers_detached);
    single(out, "ringwork_connections_cut_total", "counter",
           "Connections still in flight when a shutdown's grace period ended.", t.connections_cut);

    single(out, "ringwork_reactors", "gauge", "Reactors (io_uring event loops) serving.",
           rs.size());
    using R = const http::ReactorFigures&;
    per_reactor(out, rs, "ringwork_io_uring_submissions_total", "counter",
                "SQEs submitted to the kernel.", [](R r) { return r.ring.sqes_submitted; });
    per_reactor(out, rs, "ringwork_io_uring_enter_calls_total", "counter",
                "io_uring_enter calls of the loop (submit and wait).",
                [](R r) { return r.ring.submit_calls; });
    per_reactor(out, rs, "ringwork_io_uring_completions_total", "counter", "CQEs reaped.",
                [](R r) { return r.ring.completions; });
    per_reactor(out, rs, "ringwork_io_uring_cq_overflows_total", "counter",
                "Loop passes that found the CQ overflow flag set (completions waited in the "
                "kernel's backlog).",
                [](R r) { return r.ring.cq_overflows; });
    per_reactor(out, rs, "ringwork_io_uring_sq_full_total", "counter",
                "Times the SQ was full and was submitted early to make room.",
                [](R r) { return r.ring.sq_full_flushes; });
    per_reactor(out, rs, "ringwork_io_uring_buffer_ring_exhausted_total", "counter",
                "Receives ended by -ENOBUFS: the provided buffer ring ran dry.",
                [](R r) { return r.ring.buffer_ring_exhausted; });
    per_reactor(
        out, rs, "ringwork_io_uring_multishot_rearms_total", "counter",
        "Multishot operations armed: each multishot receive (a connection's first included) and "
        "each multishot accept armed again after the kernel ended it.",
        [](R r) { return r.ring.multishot_rearms; });
    per_reactor(out, rs, "ringwork_io_uring_buffers_leased_total", "counter",
                "Provided receive buffers handed to connections.",
                [](R r) { return r.ring.buffers_leased; });
    per_reactor(out, rs, "ringwork_reactor_loop_iterations_total", "counter", "Event loop passes.",
                [](R r) { return r.ring.loop_iterations; });
    family(out, "ringwork_reactor_backend", "gauge",
           "The I/O backend each reactor runs (1 for the one in the label): io_uring, or epoll "
           "where io_uring is unavailable or RINGWORK_BACKEND=epoll. Under epoll the "
           "ringwork_io_uring_* counters count the same operations run by the epoll engine; "
           "enter calls are epoll_wait calls.");
    for (std::size_t i = 0; i < rs.size(); ++i) {
        fmt::format_to(it, "ringwork_reactor_backend{{reactor=\"{}\",backend=\"{}\"}} 1\n", i,
                       io::to_string(rs[i].backend));
    }
    family(out, "ringwork_io_uring_entries", "gauge",
           "Ring sizes obtained: submission and completion queue entries (cq is 0 under epoll).");
    for (std::size_t i = 0; i < rs.size(); ++i) {
        fmt::format_to(it, "ringwork_io_uring_entries{{reactor=\"{}\",queue=\"sq\"}} {}\n", i,
                       rs[i].sq_entries);
        fmt::format_to(it, "ringwork_io_uring_entries{{reactor=\"{}\",queue=\"cq\"}} {}\n", i,
                       rs[i].cq_entries);
    }
}

void MetricsState::render_process(std::string& out) const {
    const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    // statm: size and resident, in pages (the first two numbers).
    const std::string statm = read_proc("/proc/self/statm");
    if (!statm.empty()) {
        char* end = nullptr;
        const std::uint64_t vm_pages = std::strtoull(statm.c_str(), &end, 10);
        const std::uint64_t rss_pages = std::strtoull(end, nullptr, 10);
        single(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
               rss_pages * page);
        single(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
               vm_pages * page);
    }
    if (DIR* d = ::opendir("/proc/self/fd")) {
        std::uint64_t fds = 0;
        const int own = ::dirfd(d);
        while (const dirent* e = ::readdir(d)) { // NOLINT(concurrency-mt-unsafe): own DIR
            if (e->d_name[0] != '.' && std::atoi(e->d_name) != own) { // NOLINT: digits only
                ++fds;
            }
        }
        ::closedir(d);
        single(out, "process_open_fds", "gauge", "Open file descriptors.", fds);
    }
    rlimit nofile{};
    if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
        single(out, "process_max_fds", "gauge",
               "Maximum number of open file descriptors (RLIMIT_NOFILE).",
               static_cast<std::uint64_t>(nofile.rlim_cur));
    }
    rusage usage{};
    if (::getrusage(RUSAGE_SELF, &usage) == 0) {
        const double cpu =
            static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
            static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
        family(out, "process_cpu_seconds_total", "counter",
               "User and system CPU time spent in seconds.");
        sample(out, "process_cpu_seconds_total", {}, cpu);
    }
    // Start time: field 22 of /proc/self/stat (clock ticks after boot) plus the boot time.
    const std::string stat = read_proc("/proc/self/stat");
    const std::string proc_stat = read_proc("/proc/stat");
    const auto paren = stat.rfind(')');
    const auto btime_at = proc_stat.find("\nbtime ");
    if (paren != std::string::npos && btime_at != std::string::npos) {
        // After "pid (comm)": field 3 is the state; starttime is field 22, 19 fields later.
        std::string_view rest(stat);
        rest.remove_prefix(paren + 2);
        for (int field = 3; field < 22 && !rest.empty(); ++field) {
            const auto space = rest.find(' ');
            rest.remove_prefix(space == std::string_view::npos ? rest.size() : space + 1);
        }
        const std::uint64_t ticks =
            std::strtoull(rest.data(), nullptr, 10); // stat is NUL-terminated
        const std::uint64_t boot = std::strtoull(proc_stat.c_str() + btime_at + 7, nullptr, 10);
        const auto hz = static_cast<double>(::sysconf(_SC_CLK_TCK));
        if (!rest.empty() && boot != 0 && hz > 0) {
            family(out, "process_start_time_seconds", "gauge",
                   "Start time of the process since the Unix epoch in seconds.");
            sample(out, "process_start_time_seconds", {},
                   static_cast<double>(boot) + static_cast<double>(ticks) / hz);
        }
    }
}

} // namespace detail

// --- the public objects -----------------------------------------------------------------------

Metrics::Metrics(App& app, MetricsOptions options)
    : Metrics(app.server(), std::move(options)) {
    // Every request the app dispatches, timed from when the server began reading it: one
    // rdtsc and a few relaxed stores per request, no coroutine frame (docs/observability.md).
    app.observe([state = state_](const Context& c) {
        state->record_at_pass_end(c.method(), c.status(), c.route(), c.exchange().start_ticks());
    });
    app_attached_ = true;
}

Metrics::Metrics(http::Server& server, MetricsOptions options)
    : state_(std::make_shared<detail::MetricsState>(&server, std::move(options))) {
}

Metrics::Metrics(MetricsOptions options)
    : state_(std::make_shared<detail::MetricsState>(nullptr, std::move(options))) {
}

MetricsMiddleware Metrics::middleware() const {
    if (app_attached_) {
        throw std::logic_error("ringwork: Metrics built from an App counts every request already; "
                               "middleware() is for a Metrics built from a Server or from nothing");
    }
    return MetricsMiddleware(state_);
}

void Metrics::render(std::string& out) const {
    state_->render(out);
}

std::string Metrics::text() const {
    std::string out;
    state_->render(out);
    return out;
}

runtime::Task<> MetricsMiddleware::operator()(Context& c, Next next) const {
    const std::uint64_t start = runtime::CycleClock::now();
    std::exception_ptr error;
    try {
        auto rest = next(); // named (GCC PR 100611)
        co_await rest;
    } catch (...) {
        error = std::current_exception();
    }
    const int status = error ? error_status(error) : c.status(); // what the App will answer
    state_->record(c.method(), status, c.route(), runtime::CycleClock::now() - start);
    if (error) {
        std::rethrow_exception(error);
    }
}

void MetricsHandler::operator()(Context& c) const {
    std::string text;
    text.reserve(16384);
    state_->render(text);
    c.status(200);
    c.set_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    c.set_header("Cache-Control", "no-store");
    c.response().set_body(text);
}

} // namespace ringwork::web::mw
