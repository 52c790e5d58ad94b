// SPDX-License-Identifier: MIT
// Reactor: ring setup with fallbacks, the loop (submit, reap, timers, ready queue), wakeups.
#include "io/reactor_impl.hpp"

#include <fmt/format.h>

#include <sys/eventfd.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <system_error>
#include <utility>

namespace ringwork::io {
namespace detail {
namespace {

constinit thread_local Reactor* tl_current = nullptr;
constinit thread_local char tl_thread_marker = 0;

/// Kernel version as major*100+minor (e.g. 601 for 6.1); 0 when unknown.
int kernel_version() noexcept {
    utsname u{};
    if (::uname(&u) != 0) {
        return 0;
    }
    int major = 0;
    int minor = 0;
    if (std::sscanf(u.release, "%d.%d", &major, &minor) != 2) { // NOLINT(cert-err34-c)
        return 0;
    }
    return major * 100 + minor;
}

bool env_has(const char* var, std::string_view word) {
    const char* v = std::getenv(var); // NOLINT(concurrency-mt-unsafe): read at start-up
    if (v == nullptr) {
        return false;
    }
    std::string_view s(v);
    while (!s.empty()) {
        const auto comma = s.find(',');
        if (s.substr(0, comma) == word) {
            return true;
        }
        if (comma == std::string_view::npos) {
            break;
        }
        s.remove_prefix(comma + 1);
    }
    return false;
}

void apply_environment(ReactorOptions& o) {
    if (const char* v = std::getenv("RINGWORK_BACKEND")) { // NOLINT(concurrency-mt-unsafe)
        const std::string_view s(v);
        if (s == "io_uring") {
            o.backend = Backend::io_uring;
        } else if (s == "epoll") {
            o.backend = Backend::epoll;
        } else if (s == "auto" || s == "automatic" || s.empty()) {
            o.backend = Backend::automatic;
        } else {
            throw std::invalid_argument(
                fmt::format("RINGWORK_BACKEND={}: expected auto, io_uring or epoll", s));
        }
    }
    if (const char* v = std::getenv("RINGWORK_IO_URING_SETUP")) { // NOLINT(concurrency-mt-unsafe)
        const std::string_view s(v);
        if (s == "defer") {
            o.setup = SetupMode::defer_taskrun;
        } else if (s == "coop") {
            o.setup = SetupMode::coop_taskrun;
        } else if (s == "plain") {
            o.setup = SetupMode::plain;
        } else if (s == "auto" || s.empty()) {
            o.setup = SetupMode::automatic;
        } else {
            throw std::invalid_argument(fmt::format(
                "RINGWORK_IO_URING_SETUP={}: expected auto, defer, coop or plain", s));
        }
    }
    if (env_has("RINGWORK_IO_URING_DISABLE", "multishot_accept")) {
        o.multishot_accept = false;
    }
    if (env_has("RINGWORK_IO_URING_DISABLE", "multishot_recv")) {
        o.multishot_recv = false;
    }
    if (env_has("RINGWORK_IO_URING_DISABLE", "buffer_ring")) {
        o.buffer_ring = false;
    }
}

void validate(const ReactorOptions& o) {
    auto pow2 = [](unsigned v) { return v != 0 && (v & (v - 1)) == 0; };
    if (!pow2(o.sq_entries) || o.sq_entries > 32768) {
        throw std::invalid_argument(
            fmt::format("ReactorOptions.sq_entries={}: must be a power of two in [1, 32768]", o.sq_entries));
    }
    if (o.cq_entries < o.sq_entries || o.cq_entries > 1048576) {
        throw std::invalid_argument(fmt::format(
            "ReactorOptions.cq_entries={}: must be in [sq_entries, 1048576]", o.cq_entries));
    }
    if (o.buffer_ring && (!pow2(o.buffer_count) || o.buffer_count > 32768)) {
        throw std::invalid_argument(fmt::format(
            "ReactorOptions.buffer_count={}: must be a power of two in [1, 32768]", o.buffer_count));
    }
    if (o.buffer_size < 64 || o.buffer_size > (1U << 20)) {
        throw std::invalid_argument(
            fmt::format("ReactorOptions.buffer_size={}: must be in [64, 1 MiB]", o.buffer_size));
    }
}

[[noreturn]] void throw_unavailable(int err) {
    std::string why;
    switch (err) {
    case ENOSYS:
        why = "the kernel has no io_uring or a seccomp profile answers ENOSYS (Docker's default "
              "profile blocks io_uring_setup). Fix: run on Linux 6.1 or newer with io_uring "
              "enabled, or allow io_uring_setup, io_uring_enter and io_uring_register in the "
              "seccomp profile (docker run --security-opt seccomp=<profile>)";
        break;
    case EPERM:
    case EACCES:
        why = "io_uring_setup was denied: kernel.io_uring_disabled is set or a seccomp/LSM policy "
              "forbids io_uring. Fix: sysctl -w kernel.io_uring_disabled=0 (or 1 and put the user "
              "in kernel.io_uring_group), or allow io_uring_setup, io_uring_enter and "
              "io_uring_register in the seccomp profile";
        break;
    case ENOMEM:
        why = "the kernel could not allocate the rings (RLIMIT_MEMLOCK too low on kernels before "
              "5.12). Fix: raise ulimit -l or use smaller ReactorOptions.sq_entries/cq_entries";
        break;
    default:
        why = "unexpected error from io_uring_setup";
        break;
    }
    throw IoUringUnavailable(err, fmt::format("ringwork: io_uring is unavailable ({}): {}",
                                              std::strerror(err), why)); // NOLINT(concurrency-mt-unsafe)
}

} // namespace

ReactorImpl::ReactorImpl(Reactor& owner, ReactorOptions options)
    : owner_(owner), timers_(to_tick_floor(Clock::now())), spare_(options.buffer_size)
    , thread_id_(&tl_thread_marker)
    , prev_current_(tl_current), prev_impl_(tl_impl), prev_ready_(runtime::detail::tl_scheduler.ready) {
    if (options.apply_environment) {
        apply_environment(options);
    }
    validate(options);
    // Writes to a reset socket must fail with EPIPE, not kill the process.
    std::signal(SIGPIPE, SIG_IGN); // NOLINT(cert-err33-c)
    setup_backend(options);
    wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd_ < 0) {
        const int err = errno;
        if (!epoll_) {
            io_uring_queue_exit(&ring_);
        }
        throw std::system_error(err, std::generic_category(), "eventfd for the reactor wakeup");
    }
    own_fd(wake_fd_);
    refresh_now();
    arm_wakeup();
    tl_current = &owner_;
    tl_impl = this;
    runtime::detail::tl_scheduler.ready = &ready_;
}

ReactorImpl::~ReactorImpl() {
    // Deferred work still queued is not run (its owners may be half torn down) but unlinked,
    // so an owner that outlives this reactor (a metrics shard of the thread) can queue its
    // work on the next one.
    while (Deferred* d = deferred_head_) {
        deferred_head_ = d->next_;
        d->next_ = nullptr;
        d->queued_ = false;
    }
    deferred_tail_ = nullptr;
    // Owners close their operations before the reactor goes; what remains (the wakeup read,
    // forgotten operations) is cancelled by the kernel when the ring is torn down.
    buffer_ring_.reset();
    if (epoll_) {
        epoll_.reset(); // waits for file jobs still on the thread pool (they post to us)
    } else {
        io_uring_queue_exit(&ring_);
    }
    {
        std::lock_guard lock(remote_mutex_); // a post() still writing its wake-up finishes first
        ::close(wake_fd_);
        wake_fd_ = -1;
    }
    tl_current = prev_current_;
    tl_impl = prev_impl_;
    runtime::detail::tl_scheduler.ready = prev_ready_;
}

void ReactorImpl::setup_backend(const ReactorOptions& o) {
    if (o.backend != Backend::epoll) {
        try {
            setup_ring(o);
            probe_features(o);
            features_.backend = Backend::io_uring;
            return;
        } catch (const IoUringUnavailable& e) {
            if (o.backend == Backend::io_uring) {
                throw;
            }
            features_ = ReactorFeatures{};
            features_.fallback_reason = e.what();
            // One line per process, not per reactor thread.
            static std::atomic<bool> logged{false};
            if (!logged.exchange(true)) {
                fmt::print(stderr, "ringwork: using the epoll backend: {}\n", e.what());
            }
        }
    }
    epoll_ = std::make_unique<EpollEngine>(*this, o.sq_entries);
    epoll_reaped_.reserve(o.sq_entries);
    features_.backend = Backend::epoll;
    features_.setup = SetupMode::plain;
    features_.sq_entries = o.sq_entries;
    features_.cq_entries = 0;
    // Multishot operations and provided buffers are io_uring's: Socket and Listener take their
    // one-shot paths (recv into a spare buffer, accept re-armed per connection).
    features_.multishot_accept = false;
    features_.multishot_recv = false;
    features_.buffer_ring = false;
    features_.msg_ring = false;
}

void ReactorImpl::setup_ring(const ReactorOptions& o) {
    struct Attempt {
        SetupMode mode;
        unsigned flags;
    };
    const Attempt all[] = {
        {SetupMode::defer_taskrun,
         IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG},
        {SetupMode::coop_taskrun, IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG},
        {SetupMode::plain, 0},
    };
    int last = 0;
    for (const Attempt& a : all) {
        if (o.setup != SetupMode::automatic && a.mode != o.setup) {
            continue;
        }
        io_uring_params p{};
        p.flags = a.flags | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP | IORING_SETUP_SUBMIT_ALL;
        p.cq_entries = o.cq_entries;
        last = io_uring_queue_init_params(o.sq_entries, &ring_, &p);
        if (last == -EINVAL && (p.flags & IORING_SETUP_SUBMIT_ALL) != 0) {
            p = io_uring_params{};
            p.flags = a.flags | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
            p.cq_entries = o.cq_entries;
            last = io_uring_queue_init_params(o.sq_entries, &ring_, &p);
        }
        if (last == 0) {
            features_.setup = a.mode;
            features_.ext_arg = (p.features & IORING_FEAT_EXT_ARG) != 0;
            features_.sq_entries = p.sq_entries;
            features_.cq_entries = p.cq_entries;
            return;
        }
        if (last != -EINVAL) {
            break; // not a flag problem: no point trying weaker setups
        }
    }
    if (last == -EINVAL && o.setup != SetupMode::automatic) {
        throw std::system_error(EINVAL, std::generic_category(),
                                "ringwork: the kernel does not support the forced io_uring setup mode");
    }
    throw_unavailable(-last);
}

void ReactorImpl::probe_features(const ReactorOptions& o) {
    io_uring_probe* probe = io_uring_get_probe_ring(&ring_);
    std::string missing;
    const std::pair<int, const char*> required[] = {
        {IORING_OP_ACCEPT, "ACCEPT"}, {IORING_OP_RECV, "RECV"},          {IORING_OP_SEND, "SEND"},
        {IORING_OP_SENDMSG, "SENDMSG"}, {IORING_OP_READ, "READ"},        {IORING_OP_WRITE, "WRITE"},
        {IORING_OP_POLL_ADD, "POLL_ADD"}, {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"},
        {IORING_OP_CONNECT, "CONNECT"}, {IORING_OP_CLOSE, "CLOSE"},      {IORING_OP_SHUTDOWN, "SHUTDOWN"},
    };
    if (probe != nullptr) {
        for (auto [op, name] : required) {
            if (!io_uring_opcode_supported(probe, op)) {
                missing += missing.empty() ? "" : ", ";
                missing += name;
            }
        }
        features_.msg_ring = io_uring_opcode_supported(probe, IORING_OP_MSG_RING) != 0;
        io_uring_free_probe(probe);
    }
    if (!missing.empty() || !features_.ext_arg) {
        io_uring_queue_exit(&ring_);
        throw IoUringUnavailable(
            ENOSYS, fmt::format("ringwork: this kernel's io_uring lacks what ringwork needs ({}{}); "
                                "Linux 5.19 or newer is required, 6.1 or newer recommended",
                                missing.empty() ? "" : "opcodes " + missing,
                                features_.ext_arg ? "" : " IORING_FEAT_EXT_ARG"));
    }
    const int kv = kernel_version();
    features_.multishot_accept = o.multishot_accept && kv >= 519;
    features_.multishot_recv = o.multishot_recv && kv >= 600;
    if (o.buffer_ring) {
        try {
            buffer_ring_.emplace(&ring_, o.buffer_count, o.buffer_size, std::uint16_t{0});
            features_.buffer_ring = true;
        } catch (const std::system_error&) {
            features_.buffer_ring = false; // recv falls back to spare buffers
        }
    }
    if (!features_.buffer_ring) {
        features_.multishot_recv = false; // multishot recv needs provided buffers
    }
}

io_uring_sqe* ReactorImpl::sqe_slow() noexcept {
    // SQ full: submit what is prepared to make room (does not wait).
    ++stats_.sq_full_flushes;
    if (epoll_) {
        stats_.sqes_submitted += epoll_->submit(); // completions wait for the next reap
        return epoll_->get_sqe();
    }
    for (;;) {
        const int n = io_uring_submit(&ring_);
        if (n > 0) {
            stats_.sqes_submitted += static_cast<std::uint64_t>(n);
        }
        if (io_uring_sqe* s = io_uring_get_sqe(&ring_)) {
            return s;
        }
        // The kernel could not take any (-EBUSY: CQ overflow backlog). Reap to make room;
        // reap() is re-entrant.
        reap();
    }
}

void ReactorImpl::arm_wakeup() noexcept {
    io_uring_sqe* s = sqe_for(&wake_op_);
    io_uring_prep_read(s, wake_fd_, &wake_op_.value, sizeof(wake_op_.value), 0);
    wake_armed_ = true;
}

void ReactorImpl::on_wakeup(Operation* op, int /*res*/, std::uint32_t /*flags*/) noexcept {
    ReactorImpl* self = static_cast<WakeOp*>(op)->reactor;
    self->wake_armed_ = false;
    self->drain_remote();
    self->arm_wakeup();
}

void ReactorImpl::drain_remote() noexcept {
    RemoteWork* list = nullptr;
    {
        std::lock_guard lock(remote_mutex_);
        list = remote_head_;
        remote_head_ = remote_tail_ = nullptr;
        wake_pending_ = false;
    }
    while (list != nullptr) {
        RemoteWork* next = list->next_;
        list->next_ = nullptr;
        ++stats_.remote_posts;
        list->run_(list);
        list = next;
    }
}

void ReactorImpl::post(RemoteWork* work) noexcept {
    // The wake-up is written under the lock: once the lock is released the reactor may run
    // the work, finish and be destroyed, and its eventfd with it (~ReactorImpl takes the lock
    // before closing it). Cross-thread posts are rare; the syscall under the lock is cheap.
    std::lock_guard lock(remote_mutex_);
    work->next_ = nullptr;
    if (remote_tail_ != nullptr) {
        remote_tail_->next_ = work;
    } else {
        remote_head_ = work;
    }
    remote_tail_ = work;
    if (!std::exchange(wake_pending_, true)) {
        const std::uint64_t one = 1;
        [[maybe_unused]] const auto n = ::write(wake_fd_, &one, sizeof(one));
    }
}

bool ReactorImpl::on_owner_thread() const noexcept { return thread_id_ == &tl_thread_marker; }

void ReactorImpl::stop() noexcept {
    if (on_owner_thread()) {
        stop_.request_stop();
        return;
    }
    if (stop_posted_.exchange(true)) {
        return;
    }
    post(&stop_work_);
}

void ReactorImpl::reap_epoll() noexcept {
    // Dispatching may produce completions (a file job posted back, a resubmitted partial
    // send runs at the next submit): loop until the engine's queue stays empty.
    while (epoll_->has_completions()) {
        epoll_->take(epoll_reaped_);
        stats_.completions += epoll_reaped_.size();
        for (const EngineCompletion& c : epoll_reaped_) {
            auto* op = reinterpret_cast<Operation*>(c.data); // NOLINT: user_data is an Operation*
            op->complete_(op, c.res, c.flags);
        }
    }
    epoll_reaped_.clear();
}

void ReactorImpl::reap() noexcept {
    if (epoll_) {
        reap_epoll();
        return;
    }
    // Copy a batch of CQEs out, release their slots with one store, then dispatch. Dispatching
    // after the release keeps this re-entrant: a completion that needs an SQE when the SQ is
    // full may flush and reap again (sqe_slow) without corrupting this loop.
    constexpr unsigned kBatch = 64;
    struct Completion {
        std::uint64_t data;
        int res;
        std::uint32_t flags;
    };
    for (;;) {
        Completion batch[kBatch];
        unsigned n = 0;
        unsigned head = 0;
        io_uring_cqe* cqe = nullptr;
        io_uring_for_each_cqe(&ring_, head, cqe) {
            batch[n++] = Completion{io_uring_cqe_get_data64(cqe), cqe->res, cqe->flags};
            if (n == kBatch) {
                break;
            }
        }
        if (n == 0) {
            return;
        }
        io_uring_cq_advance(&ring_, n);
        stats_.completions += n;
        for (unsigned i = 0; i < n; ++i) {
            if (batch[i].data != kIgnoredUserData) {
                auto* op = reinterpret_cast<Operation*>(batch[i].data); // NOLINT: user_data is an Operation*
                op->complete_(op, batch[i].res, batch[i].flags);
            }
        }
        if (n < kBatch) {
            return;
        }
    }
}

void ReactorImpl::run_ready() noexcept {
    // Run what is ready now; what those coroutines make ready runs after the next submit,
    // so a chain of yields cannot starve I/O.
    std::size_t n = ready_.size();
    stats_.resumed += n;
    while (n-- != 0) {
        std::coroutine_handle<> h = ready_.pop();
        runtime::detail::tl_scheduler.transfers = 0;
        h.resume();
    }
}

void ReactorImpl::run_deferred() noexcept {
    // Work deferred while running deferred work runs in this same pass.
    while (Deferred* d = deferred_head_) {
        deferred_head_ = d->next_;
        if (deferred_head_ == nullptr) {
            deferred_tail_ = nullptr;
        }
        d->next_ = nullptr;
        d->queued_ = false;
        d->run_(d);
    }
}

void ReactorImpl::cancel_deferred(Deferred* work) noexcept {
    if (!work->queued_) {
        return;
    }
    Deferred* prev = nullptr;
    for (Deferred* d = deferred_head_; d != nullptr; prev = d, d = d->next_) {
        if (d == work) {
            (prev != nullptr ? prev->next_ : deferred_head_) = d->next_;
            if (deferred_tail_ == d) {
                deferred_tail_ = prev;
            }
            break;
        }
    }
    work->next_ = nullptr;
    work->queued_ = false;
}

void ReactorImpl::run_once(bool wait) {
    ++stats_.loop_iterations;
    run_deferred();
    if (buffer_ring_) {
        buffer_ring_->flush();
    }
    const bool block = wait && ready_.empty();
    if (epoll_) {
        run_once_epoll(block);
        return;
    }
    int rc = 0;
    const unsigned queued = io_uring_sq_ready(&ring_);
    if (block) {
        __kernel_timespec ts{};
        __kernel_timespec* tsp = nullptr;
        if (auto next = timers_.next_event()) {
            const std::int64_t now_ns = Clock::now().time_since_epoch().count();
            const std::int64_t due_ns = static_cast<std::int64_t>(*next) * kTickNs;
            const std::int64_t delta = due_ns > now_ns ? due_ns - now_ns : 0;
            ts.tv_sec = delta / 1'000'000'000;
            ts.tv_nsec = delta % 1'000'000'000;
            tsp = &ts;
        }
        io_uring_cqe* cqe = nullptr;
        rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, tsp, nullptr);
        ++stats_.submit_calls;
    } else if (queued != 0 || io_uring_cq_ready(&ring_) == 0) {
        // Submit and pick up deferred completions without waiting.
        rc = io_uring_submit_and_get_events(&ring_);
        ++stats_.submit_calls;
    }
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
        fmt::print(stderr, "ringwork: io_uring_enter failed: {}\n", std::strerror(-rc)); // NOLINT
    }
    if (rc >= 0 || rc == -ETIME) {
        stats_.sqes_submitted += queued - io_uring_sq_ready(&ring_);
    }
    if ((IO_URING_READ_ONCE(*ring_.sq.kflags) & IORING_SQ_CQ_OVERFLOW) != 0) {
        ++stats_.cq_overflows;
    }
    refresh_now(); // before the completions: what they start sees the time of this wake-up
    reap();
    stats_.timers_fired += timers_.advance(now_tick());
    run_ready();
}

void ReactorImpl::run_once_epoll(bool block) noexcept {
    const unsigned queued = epoll_->queued();
    if (queued != 0) {
        stats_.sqes_submitted += epoll_->submit();
    }
    int rc = 0;
    if (block && !epoll_->has_completions()) {
        int timeout_ms = -1;
        if (auto next = timers_.next_event()) {
            const std::int64_t now_ns = Clock::now().time_since_epoch().count();
            const std::int64_t due_ns = static_cast<std::int64_t>(*next) * kTickNs;
            const std::int64_t delta = due_ns > now_ns ? due_ns - now_ns : 0;
            const std::int64_t ms = (delta + 999'999) / 1'000'000; // never early
            timeout_ms = static_cast<int>(std::min<std::int64_t>(ms, 24LL * 3600 * 1000)); // woken daily at most
        }
        rc = epoll_->wait(timeout_ms);
        ++stats_.submit_calls;
    } else if (queued != 0 || !epoll_->has_completions()) {
        rc = epoll_->wait(0); // pick up readiness without waiting
        ++stats_.submit_calls;
    }
    if (rc < 0 && errno != EINTR) {
        fmt::print(stderr, "ringwork: epoll_wait failed: {}\n", std::strerror(errno)); // NOLINT
    }
    refresh_now();
    reap_epoll();
    stats_.timers_fired += timers_.advance(now_tick());
    run_ready();
}

void ReactorImpl::drive_until(const bool& done) {
    while (!done) {
        run_once(true);
    }
}

void ReactorImpl::run() {
    while (!(stop_.stop_requested() && detached_ == 0)) {
        run_once(true);
    }
    // Let the last completions of cancelled work land.
    run_once(false);
}

namespace {

/// Root of a detached task: owns itself, reports to the reactor when it ends.
struct Detached {
    struct promise_type : runtime::detail::PromiseBase {
        Detached get_return_object() noexcept { return {}; }
        std::suspend_never initial_suspend() const noexcept { return {}; }
        std::suspend_never final_suspend() const noexcept { return {}; }
        void return_void() const noexcept {}
        void unhandled_exception() const noexcept { std::terminate(); } // body catches all
    };
};

Detached run_detached(runtime::Task<> task, ReactorImpl* reactor) {
    bool failed = false;
    try {
        co_await std::move(task);
    } catch (const std::exception& e) {
        failed = true;
        fmt::print(stderr, "ringwork: detached task failed: {}\n", e.what());
    } catch (...) {
        failed = true;
        fmt::print(stderr, "ringwork: detached task failed with a non-standard exception\n");
    }
    reactor->detached_finished(failed);
}

} // namespace

void ReactorImpl::spawn(runtime::Task<> task) {
    ++detached_;
    ++stats_.detached_spawned;
    if (!task.handle().promise().stop_token().stop_possible()) {
        task = std::move(task).with_stop_token(runtime::StopToken(stop_));
    }
    run_detached(std::move(task), this);
}

void ReactorImpl::detached_finished(bool failed) noexcept {
    --detached_;
    if (failed) {
        ++stats_.detached_failed;
    }
}


void drive_root(Reactor& reactor, std::coroutine_handle<> root, const bool& done) {
    reactor.impl().schedule(root);
    reactor.impl().drive_until(done);
}

} // namespace detail

const char* to_string(Backend backend) noexcept {
    switch (backend) {
    case Backend::io_uring:
        return "io_uring";
    case Backend::epoll:
        return "epoll";
    default:
        return "automatic";
    }
}

std::string ReactorFeatures::describe() const {
    if (backend == Backend::epoll) {
        return fmt::format("backend=epoll sq={}", sq_entries);
    }
    const char* mode = setup == SetupMode::defer_taskrun  ? "defer_taskrun"
                       : setup == SetupMode::coop_taskrun ? "coop_taskrun"
                                                          : "plain";
    return fmt::format("backend=io_uring setup={} sq={} cq={} multishot_accept={} multishot_recv={} buffer_ring={} "
                       "msg_ring={}",
                       mode, sq_entries, cq_entries, multishot_accept, multishot_recv, buffer_ring,
                       msg_ring);
}

Reactor::Reactor(ReactorOptions options)
    : impl_(std::make_unique<detail::ReactorImpl>(*this, options)) {}
Reactor::~Reactor() = default;

Reactor* Reactor::current() noexcept { return detail::tl_current; }
void Reactor::run() { impl_->run(); }
void Reactor::stop() noexcept { impl_->stop(); }
runtime::StopToken Reactor::stop_token() noexcept { return runtime::StopToken(impl_->stop_source()); }
bool Reactor::stopping() const noexcept { return impl_->stop_source().stop_requested(); }
void Reactor::post(RemoteWork* work) noexcept { impl_->post(work); }
void Reactor::spawn(runtime::Task<> task) { impl_->spawn(std::move(task)); }
Clock::time_point Reactor::now() const noexcept { return impl_->now(); }
const ReactorFeatures& Reactor::features() const noexcept { return impl_->features(); }
namespace {

/// The live counters as plain numbers (relaxed loads: race-free from any thread).
ReactorStats snapshot(const BasicReactorStats<runtime::Counter>& c) noexcept {
    ReactorStats s;
    s.loop_iterations = c.loop_iterations;
    s.submit_calls = c.submit_calls;
    s.sqes_submitted = c.sqes_submitted;
    s.completions = c.completions;
    s.cq_overflows = c.cq_overflows;
    s.sq_full_flushes = c.sq_full_flushes;
    s.resumed = c.resumed;
    s.timers_fired = c.timers_fired;
    s.buffer_ring_exhausted = c.buffer_ring_exhausted;
    s.multishot_rearms = c.multishot_rearms;
    s.buffers_leased = c.buffers_leased;
    s.spare_buffer_allocs = c.spare_buffer_allocs;
    s.remote_posts = c.remote_posts;
    s.detached_spawned = c.detached_spawned;
    s.detached_failed = c.detached_failed;
    return s;
}

} // namespace

ReactorStats Reactor::stats() const noexcept {
    ReactorStats s = snapshot(std::as_const(*impl_).stats());
    s.spare_buffer_allocs = impl_->spare().allocations();
    return s;
}
ReactorStats Reactor::counters() const noexcept { return snapshot(std::as_const(*impl_).stats()); }
std::size_t Reactor::detached_count() const noexcept { return impl_->detached(); }
void Reactor::run_once(bool wait) { impl_->run_once(wait); }
void Reactor::defer(Deferred* work) noexcept { impl_->defer(work); }
void Reactor::cancel_deferred(Deferred* work) noexcept { impl_->cancel_deferred(work); }

void spawn(runtime::Task<> task) { detail::current_impl().spawn(std::move(task)); }

} // namespace ringwork::io
