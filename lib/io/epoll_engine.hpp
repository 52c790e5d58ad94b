// SPDX-License-Identifier: MIT
// EpollEngine: the reactor's portable backend. It runs the same submissions the io_uring
// backend hands to the kernel (io_uring_sqe records, prepared by the same code) with
// non-blocking syscalls and edge-triggered epoll readiness, and produces the same completions.
#pragma once

#include <ringwork/io/operation.hpp>
#include <ringwork/runtime/thread_pool.hpp>

#include <liburing.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace ringwork::io::detail {

class ReactorImpl;

/// \brief A completion as the reactor dispatches it (user_data, result, flags).
struct EngineCompletion {
    std::uint64_t data;
    int res;
    std::uint32_t flags;
};

/// \brief Runs io_uring submissions on epoll (see docs/architecture.md, "Backends").
///
/// Submissions are queued in a user-space array by the same `io_uring_prep_*` calls the
/// io_uring backend uses; submit() runs each one at once with a non-blocking syscall. One that
/// would block is parked on its descriptor until epoll reports the descriptor ready, then
/// retried. Results go to a completion queue the reactor reaps like a CQ ring: an operation
/// never completes inside the call that prepared it.
///
/// Descriptors owned by a Socket or Listener (own()) stay registered edge-triggered for their
/// whole life, with the readiness learnt from the last syscall and the last event, so a recv
/// on a socket known to be drained parks without a syscall. Other descriptors (a raw fd given
/// to PollFd or ReadAt) are registered while an operation waits on them and removed after,
/// because their owner may close them behind the reactor's back.
///
/// Regular files never block in epoll's sense: reads and writes first try RWF_NOWAIT (served
/// from the page cache) and otherwise run on the shared thread pool, completing through the
/// reactor's remote queue. Reactor thread only, except the thread pool's jobs.
/// A recv submitted with IOSQE_BUFFER_SELECT and this buffer group gets its buffer from the
/// reactor's spare pool only once the socket is readable: the engine receives into it and
/// stores its address at the SQE's `addr` (a `char**`) before completing with the byte count.
/// EAGAIN, an end of stream or an error hands it back at once and stores nothing; a parked
/// or cancelled recv holds none.
/// So an armed receive of an idle connection holds no buffer (Socket::arm_recv).
inline constexpr std::uint16_t kSpareBufferGroup = 0xFFFF;

class EpollEngine {
public:
    EpollEngine(ReactorImpl& reactor, unsigned sq_entries);
    ~EpollEngine();
    EpollEngine(const EpollEngine&) = delete;
    EpollEngine& operator=(const EpollEngine&) = delete;

    /// A submission slot, or null when the queue is full (then submit() and ask again).
    io_uring_sqe* get_sqe() noexcept {
        if (sq_count_ == sq_.size()) [[unlikely]] {
            return nullptr;
        }
        return &sq_[sq_count_++];
    }
    [[nodiscard]] unsigned queued() const noexcept { return sq_count_; }
    /// Run every queued submission. Returns how many ran.
    unsigned submit() noexcept;
    /// Wait up to `timeout_ms` (-1: no limit, 0: just look) for readiness and retry the
    /// operations parked on the descriptors that became ready. Returns epoll_wait's result.
    int wait(int timeout_ms) noexcept;
    [[nodiscard]] bool has_completions() const noexcept { return !cq_.empty(); }
    /// Move the pending completions into `out` (cleared first); capacity is kept both ways.
    void take(std::vector<EngineCompletion>& out) noexcept {
        out.clear();
        out.swap(cq_);
    }

    /// The descriptor belongs to a Socket or Listener: keep it registered until forget().
    void own(int fd) noexcept;
    /// The descriptor is about to be closed or given away outside the engine: drop its state
    /// (operations still parked on it complete with -ECANCELED).
    void forget(int fd) noexcept;

private:
    /// A submission waiting for its descriptor (a copy of what the SQE said).
    struct Parked {
        std::uint64_t data = 0;
        void* addr = nullptr;
        std::uint64_t off = 0;
        std::uint32_t len = 0;
        std::uint32_t arg = 0;   ///< msg flags, poll mask or accept flags
        int fd = -1;
        std::uint8_t opcode = 0;
        bool started = false;    ///< a connect is in progress
        bool spare = false;      ///< a recv into a spare buffer taken once readable (addr: char**)
        Parked* next = nullptr;  ///< in the descriptor's list (FIFO)
        Parked* prev = nullptr;
    };
    /// What the engine knows about one descriptor (indexed by fd).
    struct FdState {
        Parked* head = nullptr;
        Parked* tail = nullptr;
        bool registered = false; ///< in the epoll set
        bool owned = false;      ///< a Socket/Listener: registered for life
        bool readable = true;    ///< might be readable (false: drained since the last event)
        bool writable = true;
        bool peer_closed = false;///< an event said RDHUP/HUP/ERR: an end of stream may be queued
        std::int8_t kind = 0;    ///< 0 unknown, 1 regular file or block device, 2 pollable
        bool nonblocking = false;///< O_NONBLOCK is set (checked or set by the engine)
    };
    /// A regular-file read or write handed to the thread pool.
    struct FileJob : runtime::PoolWork, RemoteWork {
        explicit FileJob(EpollEngine* e) noexcept;
        EpollEngine* engine;
        Parked op;
        int res = 0;
        FileJob* next_free = nullptr;
    };

    enum class Outcome : std::uint8_t { done, would_block };

    void run(const io_uring_sqe& sqe) noexcept;
    void run_cancel(const io_uring_sqe& sqe) noexcept;
    void run_close(const io_uring_sqe& sqe) noexcept;
    void run_file(const Parked& p) noexcept;
    /// Try the syscall of `p`; on `done`, `res` holds the result.
    Outcome attempt(Parked& p, FdState& st, int& res) noexcept;
    void park(const Parked& p, FdState& st) noexcept;
    void unpark(Parked* p, FdState& st) noexcept;
    void progress(int fd, std::uint32_t events) noexcept;
    bool watch(int fd, FdState& st) noexcept;
    void unwatch_if_unused(int fd, FdState& st) noexcept;
    void cancel_parked(Parked* p, FdState& st) noexcept;
    FdState& state(int fd) noexcept;
    Parked* alloc_parked() noexcept;
    void free_parked(Parked* p) noexcept;
    void complete(std::uint64_t data, int res) noexcept {
        if (data != 0) { // 0: nobody awaits it (cancel requests)
            cq_.push_back(EngineCompletion{data, res, 0});
        }
    }
    static void job_run(runtime::PoolWork* w) noexcept;
    static void job_done(RemoteWork* w) noexcept;

    // Index of parked operations by user_data (for cancel): open addressing, linear probing.
    void index_put(Parked* p) noexcept;
    Parked* index_find(std::uint64_t data) const noexcept;
    void index_erase(std::uint64_t data) noexcept;

    ReactorImpl& reactor_;
    int epfd_ = -1;
    std::vector<io_uring_sqe> sq_;
    unsigned sq_count_ = 0;
    std::vector<EngineCompletion> cq_;
    std::vector<FdState> fds_;
    std::vector<std::unique_ptr<Parked[]>> parked_chunks_;
    Parked* free_parked_ = nullptr;
    std::size_t parked_count_ = 0;
    std::vector<Parked*> index_; ///< size is a power of two; null = empty slot
    std::vector<std::unique_ptr<FileJob>> jobs_;
    FileJob* free_jobs_ = nullptr;
    std::atomic<std::size_t> jobs_running_{0};
};

} // namespace ringwork::io::detail
