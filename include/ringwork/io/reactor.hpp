// SPDX-License-Identifier: MIT
// Reactor: one io_uring event loop per thread that runs coroutines, timers and I/O.
#pragma once

#include <ringwork/io/operation.hpp>
#include <ringwork/runtime/counter.hpp>
#include <ringwork/runtime/scheduler.hpp>
#include <ringwork/runtime/stop_token.hpp>
#include <ringwork/runtime/task.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <system_error>

namespace ringwork::io {

using Clock = std::chrono::steady_clock;

/// \brief How the ring is set up; `automatic` takes the best the kernel offers.
enum class SetupMode : std::uint8_t {
    automatic,     ///< defer_taskrun, else coop_taskrun, else plain
    defer_taskrun, ///< IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN (kernel 6.1+)
    coop_taskrun,  ///< IORING_SETUP_COOP_TASKRUN | TASKRUN_FLAG (5.19+)
    plain,         ///< no setup flags (any io_uring kernel)
};

/// \brief Which kernel interface runs a reactor's I/O.
enum class Backend : std::uint8_t {
    automatic, ///< io_uring when it can be set up, else epoll (one log line says why)
    io_uring,  ///< io_uring or a start-up error (IoUringUnavailable)
    epoll,     ///< epoll readiness and non-blocking syscalls: runs where io_uring is blocked
};
/// \brief "automatic", "io_uring" or "epoll".
[[nodiscard]] const char* to_string(Backend backend) noexcept;

/// \brief Reactor construction options. `RINGWORK_IO_URING_SETUP=defer|coop|plain` and
/// `RINGWORK_IO_URING_DISABLE=multishot_accept,multishot_recv,buffer_ring` override them, so
/// tests can force each fallback path on a new kernel; `RINGWORK_BACKEND=io_uring|epoll|auto`
/// overrides `backend`.
struct ReactorOptions {
    Backend backend = Backend::automatic;
    unsigned sq_entries = 1024;   ///< submission queue size (power of two)
    unsigned cq_entries = 16384;  ///< completion queue size: size it for the connection count
    SetupMode setup = SetupMode::automatic;
    bool multishot_accept = true; ///< else one-shot accept re-armed per connection
    bool multishot_recv = true;   ///< else one-shot recv (with buffer select when available)
    bool buffer_ring = true;      ///< else each recv goes into a buffer of its own (spare pool)
    unsigned buffer_count = 1024; ///< provided buffers in the ring (power of two, <= 32768)
    unsigned buffer_size = 4096;  ///< bytes per provided buffer
    bool apply_environment = true;///< honour the RINGWORK_IO_URING_* variables
};

/// \brief What the ring actually got (logged once, queried by tests).
struct ReactorFeatures {
    Backend backend = Backend::io_uring; ///< io_uring or epoll (never automatic)
    std::string fallback_reason;         ///< why automatic chose epoll (empty otherwise)
    SetupMode setup = SetupMode::plain;  ///< the setup mode obtained (io_uring)
    bool ext_arg = false;               ///< timed waits without a timeout SQE (5.11+)
    bool multishot_accept = false;
    bool multishot_recv = false;
    bool buffer_ring = false;
    bool msg_ring = false;
    unsigned sq_entries = 0;
    unsigned cq_entries = 0;
    [[nodiscard]] std::string describe() const;
};

/// \brief Counters of one reactor with fields of type T: std::uint64_t in a snapshot
/// (ReactorStats), runtime::Counter in the live reactor (written by its thread only, so
/// Reactor::counters() may read them from any thread without a race).
template <class T>
struct BasicReactorStats {
    T loop_iterations{};
    T submit_calls{};          ///< io_uring_enter calls made by the loop
    T sqes_submitted{};
    T completions{};           ///< CQEs reaped
    T cq_overflows{};          ///< times the kernel reported CQ overflow
    T sq_full_flushes{};       ///< SQ was full: submitted early to make room
    T resumed{};               ///< coroutines resumed from the ready queue
    T timers_fired{};
    T buffer_ring_exhausted{}; ///< multishot recv ended with -ENOBUFS
    T multishot_rearms{};
    T buffers_leased{};        ///< provided buffers handed out
    T spare_buffer_allocs{};   ///< heap allocations of fallback recv buffers (see Reactor::counters())
    T remote_posts{};          ///< cross-thread work items run
    T detached_spawned{};
    T detached_failed{};       ///< detached tasks that ended with an exception
};
/// \brief A snapshot of one reactor's counters (Reactor::stats(), Reactor::counters()).
using ReactorStats = BasicReactorStats<std::uint64_t>;

/// \brief Thrown when io_uring is forced (Backend::io_uring) and cannot be set up (ENOSYS,
/// EPERM under seccomp or kernel.io_uring_disabled, missing opcodes); what() names the cause
/// and the fix. With Backend::automatic the reactor falls back to epoll instead.
class IoUringUnavailable : public std::system_error {
public:
    IoUringUnavailable(int err, const std::string& what)
        : std::system_error(err, std::generic_category(), what) {}
};

namespace detail {
class ReactorImpl;
}

/// \brief One event loop (io_uring, or epoll where io_uring is blocked: see Backend); create
/// it on the thread that runs it.
///
/// Thread affinity: everything except stop() and post() is reactor-thread only. A loop pass
/// submits every prepared SQE with one io_uring_enter (waiting for at least one completion or
/// the nearest timer), reaps completions in bulk, queues the coroutines they wake, advances
/// the timer wheel and runs the ready queue.
class Reactor {
public:
    explicit Reactor(ReactorOptions options = {});
    ~Reactor();
    Reactor(const Reactor&) = delete;
    Reactor& operator=(const Reactor&) = delete;

    /// \brief The reactor running on the calling thread, or null.
    [[nodiscard]] static Reactor* current() noexcept;

    /// \brief Run `task` to completion on this reactor and return its result (tests, main).
    ///
    /// Detached tasks spawned meanwhile keep running only while the loop runs; run() or
    /// another run_until_complete() continues them.
    template <class T>
    T run_until_complete(runtime::Task<T> task);

    /// \brief Run the loop until stop() was called and every detached task has finished.
    void run();
    /// \brief Request a graceful stop: the reactor's stop token fires (every operation that
    /// observes it is cancelled) and run() returns once detached tasks are done. Thread-safe.
    void stop() noexcept;
    [[nodiscard]] runtime::StopToken stop_token() noexcept;
    [[nodiscard]] bool stopping() const noexcept;

    /// \brief Run `work` on this reactor's thread soon. Thread-safe, allocation-free.
    void post(RemoteWork* work) noexcept;

    /// \brief Run `work` once, just before the next submission (no-op if already queued).
    /// Reactor thread only; `work` must stay alive until it ran or cancel_deferred() was called.
    void defer(Deferred* work) noexcept;
    /// \brief Remove `work` from the deferred list if it is queued.
    void cancel_deferred(Deferred* work) noexcept;

    /// \brief Start `task` detached: the reactor owns it, run() waits for it, it observes the
    /// reactor's stop token. Exception policy: an escaping exception is logged to stderr and
    /// counted in stats().detached_failed; the reactor keeps running.
    void spawn(runtime::Task<> task);

    /// \brief Monotonic time cached at the start of this loop pass (no syscall).
    [[nodiscard]] Clock::time_point now() const noexcept;
    [[nodiscard]] const ReactorFeatures& features() const noexcept;
    /// \brief Every counter of this reactor. Reactor thread only (or after it stopped): the
    /// spare buffer pool's count is a plain integer of that thread.
    [[nodiscard]] ReactorStats stats() const noexcept;
    /// \brief The same counters read from any thread without a race (metrics scrapes), except
    /// spare_buffer_allocs, which reads 0. Each value is exact; together they are not one
    /// consistent snapshot. The reactor must stay alive during the call.
    [[nodiscard]] ReactorStats counters() const noexcept;
    [[nodiscard]] std::size_t detached_count() const noexcept;

    /// \brief Run one loop pass; `wait` allows blocking until work arrives. For drivers.
    void run_once(bool wait);

    detail::ReactorImpl& impl() noexcept { return *impl_; }

private:
    std::unique_ptr<detail::ReactorImpl> impl_;
};

/// \brief Start `task` detached on the calling thread's reactor (see Reactor::spawn).
void spawn(runtime::Task<> task);

namespace detail {

template <class T>
struct RootResult {
    // References are kept as pointers, void as a flag byte.
    using Stored = std::conditional_t<std::is_void_v<T>, char,
                                      std::conditional_t<std::is_reference_v<T>, std::remove_reference_t<T>*, T>>;
    std::optional<Stored> value;
    std::exception_ptr error;
    bool done = false;
};

template <class T>
runtime::Task<> run_root(runtime::Task<T> task, RootResult<T>* out) {
    try {
        if constexpr (std::is_void_v<T>) {
            co_await std::move(task);
            out->value.emplace('\0');
        } else if constexpr (std::is_reference_v<T>) {
            out->value.emplace(&(co_await std::move(task)));
        } else {
            out->value.emplace(co_await std::move(task));
        }
    } catch (...) {
        out->error = std::current_exception();
    }
    out->done = true;
}

void drive_root(Reactor& reactor, std::coroutine_handle<> root, const bool& done);

} // namespace detail

template <class T>
T Reactor::run_until_complete(runtime::Task<T> task) {
    detail::RootResult<T> result;
    runtime::Task<> root = detail::run_root(std::move(task), &result);
    detail::drive_root(*this, root.handle(), result.done);
    if (result.error) {
        std::rethrow_exception(result.error);
    }
    if constexpr (std::is_reference_v<T>) {
        return **result.value;
    } else if constexpr (!std::is_void_v<T>) {
        return std::move(*result.value);
    }
}

/// \brief Run `task` on the calling thread's reactor, creating a temporary one if none runs.
template <class T>
T sync_wait(runtime::Task<T> task) {
    if (Reactor* r = Reactor::current()) {
        return r->run_until_complete(std::move(task));
    }
    Reactor reactor;
    return reactor.run_until_complete(std::move(task));
}

} // namespace ringwork::io
