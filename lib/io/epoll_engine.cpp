// SPDX-License-Identifier: MIT
// EpollEngine: io_uring submissions run with non-blocking syscalls and epoll readiness.
#include "io/epoll_engine.hpp"

#include "io/reactor_impl.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <system_error>
#include <thread>

namespace ringwork::io::detail {
namespace {

constexpr std::size_t kParkedChunk = 256;
constexpr int kMaxEvents = 256;
// The *NORM/*BAND bits only matter to a poll_add that asks for them by those names.
constexpr std::uint32_t kWatchEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLRDNORM |
                                       EPOLLRDBAND | EPOLLWRNORM | EPOLLWRBAND | EPOLLET;
constexpr std::uint32_t kReadReady = EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR | EPOLLPRI;
constexpr std::uint32_t kWriteReady = EPOLLOUT | EPOLLHUP | EPOLLERR;

bool is_read_side(std::uint8_t opcode) noexcept {
    return opcode == IORING_OP_RECV || opcode == IORING_OP_ACCEPT || opcode == IORING_OP_READ;
}

bool would_block(int err) noexcept { return err == EAGAIN || err == EWOULDBLOCK; }

bool set_nonblocking(int fd) noexcept {
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0) {
        return false;
    }
    return (flags & O_NONBLOCK) != 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

std::size_t index_slot(std::uint64_t data, std::size_t mask) noexcept {
    std::uint64_t h = data ^ (data >> 29);
    h *= 0x9E3779B97F4A7C15ULL;
    return static_cast<std::size_t>(h >> 32) & mask;
}

} // namespace

EpollEngine::FileJob::FileJob(EpollEngine* e) noexcept
    : runtime::PoolWork(&EpollEngine::job_run), RemoteWork(&EpollEngine::job_done), engine(e) {}

EpollEngine::EpollEngine(ReactorImpl& reactor, unsigned sq_entries)
    : reactor_(reactor), sq_(sq_entries) {
    epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) {
        throw std::system_error(errno, std::generic_category(), "ringwork: epoll_create1 for the epoll backend");
    }
    cq_.reserve(sq_entries);
    fds_.resize(1024);
    index_.resize(1024);
}

EpollEngine::~EpollEngine() {
    // File jobs still on the thread pool post back to the reactor: wait for them (a job is
    // a single read or write, so this is short). Operations still parked are abandoned, as the
    // kernel abandons a torn-down ring's.
    while (jobs_running_.load(std::memory_order_acquire) != 0) {
        std::this_thread::yield();
    }
    ::close(epfd_);
}

EpollEngine::FdState& EpollEngine::state(int fd) noexcept {
    const auto i = static_cast<std::size_t>(fd);
    if (i >= fds_.size()) [[unlikely]] {
        fds_.resize(std::max(i + 1, fds_.size() * 2)); // grows with the descriptor numbers only
    }
    return fds_[i];
}

void EpollEngine::own(int fd) noexcept {
    if (fd < 0) {
        return;
    }
    FdState& st = state(fd);
    if (st.owned) {
        return;
    }
    if (st.head == nullptr) {
        // Whatever was known about this descriptor number belonged to an earlier descriptor
        // (a raw fd closed behind the engine's back): start afresh. watch() copes with a
        // registration the kernel still holds (EEXIST: MOD).
        st = FdState{};
    }
    st.owned = true;
    int type = 0;
    socklen_t len = sizeof type;
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) {
        // Only a stream socket's short read proves its queue empty (see attempt()): for
        // anything else peer_closed, which turns that inference off, is set for good.
        st.peer_closed = true;
    }
}

void EpollEngine::forget(int fd) noexcept {
    if (fd < 0 || static_cast<std::size_t>(fd) >= fds_.size()) {
        return;
    }
    FdState& st = fds_[static_cast<std::size_t>(fd)];
    while (st.head != nullptr) {
        cancel_parked(st.head, st);
    }
    if (st.registered) {
        ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
    }
    st = FdState{};
}

unsigned EpollEngine::submit() noexcept {
    // Running a submission never prepares another (completions are dispatched by the
    // reactor later), so the queue is stable while it is walked.
    const unsigned n = sq_count_;
    for (unsigned i = 0; i < n; ++i) {
        run(sq_[i]);
    }
    sq_count_ = 0;
    return n;
}

void EpollEngine::run(const io_uring_sqe& sqe) noexcept {
    const std::uint64_t data = sqe.user_data;
    switch (sqe.opcode) {
    case IORING_OP_NOP:
        complete(data, 0);
        return;
    case IORING_OP_ASYNC_CANCEL:
        run_cancel(sqe);
        return;
    case IORING_OP_CLOSE:
        run_close(sqe);
        return;
    case IORING_OP_SHUTDOWN:
        complete(data, ::shutdown(sqe.fd, static_cast<int>(sqe.len)) == 0 ? 0 : -errno);
        return;
    case IORING_OP_RECV:
    case IORING_OP_SEND:
    case IORING_OP_SENDMSG:
    case IORING_OP_ACCEPT:
    case IORING_OP_CONNECT:
    case IORING_OP_READ:
    case IORING_OP_WRITE:
    case IORING_OP_POLL_ADD:
        break;
    default:
        complete(data, -EINVAL); // not used by ringwork; the reactor reports no such feature
        return;
    }
    // Multishot and provided buffers are never advertised by this backend (ReactorFeatures);
    // the one buffer group it knows is the spare pool's (kSpareBufferGroup).
    const bool spare_recv = sqe.opcode == IORING_OP_RECV && (sqe.flags & IOSQE_BUFFER_SELECT) != 0 &&
                            sqe.buf_group == kSpareBufferGroup && (sqe.ioprio & IORING_RECV_MULTISHOT) == 0;
    if (((sqe.flags & IOSQE_BUFFER_SELECT) != 0 && !spare_recv) ||
        (sqe.opcode == IORING_OP_ACCEPT && (sqe.ioprio & IORING_ACCEPT_MULTISHOT) != 0) ||
        (sqe.opcode == IORING_OP_RECV && (sqe.ioprio & IORING_RECV_MULTISHOT) != 0)) {
        complete(data, -EINVAL);
        return;
    }
    if (sqe.fd < 0) {
        complete(data, -EBADF);
        return;
    }
    Parked p;
    p.data = data;
    p.addr = reinterpret_cast<void*>(static_cast<std::uintptr_t>(sqe.addr)); // NOLINT: SQE address field
    p.off = sqe.off;
    p.len = spare_recv ? reactor_.spare().buffer_size() : sqe.len;
    p.fd = sqe.fd;
    p.opcode = sqe.opcode;
    p.spare = spare_recv;
    switch (sqe.opcode) {
    case IORING_OP_ACCEPT:
        p.arg = sqe.accept_flags;
        break;
    case IORING_OP_POLL_ADD:
        p.arg = sqe.poll32_events;
        break;
    default:
        p.arg = sqe.msg_flags;
        break;
    }
    FdState& st = state(p.fd);
    if (p.opcode == IORING_OP_READ || p.opcode == IORING_OP_WRITE) {
        if (st.kind == 0 || !st.owned) { // a raw descriptor may have changed since: look again
            struct stat sb {};
            if (::fstat(p.fd, &sb) != 0) {
                complete(data, -errno);
                return;
            }
            st.kind = (S_ISREG(sb.st_mode) || S_ISBLK(sb.st_mode)) ? 1 : 2;
            st.nonblocking = st.kind == 2 && (::fcntl(p.fd, F_GETFL) & O_NONBLOCK) != 0;
        }
        if (st.kind == 1) {
            run_file(p);
            unwatch_if_unused(p.fd, st);
            return;
        }
        if (p.opcode == IORING_OP_WRITE && !st.nonblocking) {
            // A blocking pipe or tty: write() after POLLOUT still blocks until every byte is
            // taken (a slow log reader). The pool does it; the offset means nothing here.
            Parked q = p;
            q.off = static_cast<std::uint64_t>(-1);
            run_file(q);
            unwatch_if_unused(p.fd, st);
            return;
        }
    }
    int res = 0;
    if (attempt(p, st, res) == Outcome::done) {
        complete(data, res);
        unwatch_if_unused(p.fd, st);
        return;
    }
    park(p, st);
}

EpollEngine::Outcome EpollEngine::attempt(Parked& p, FdState& st, int& res) noexcept {
    const bool owned = st.owned;
    // The caller's own MSG_DONTWAIT: answer -EAGAIN rather than wait, as io_uring does.
    const bool caller_dontwait = (p.opcode == IORING_OP_RECV || p.opcode == IORING_OP_SEND ||
                                  p.opcode == IORING_OP_SENDMSG) && (p.arg & MSG_DONTWAIT) != 0;
    for (;;) {
        ssize_t n = 0;
        switch (p.opcode) {
        case IORING_OP_RECV:
            if (owned && st.registered && !st.readable && !caller_dontwait) {
                return Outcome::would_block; // drained since the last event: no syscall
            }
            if (p.spare) {
                SparePool& pool = reactor_.spare();
                char* buffer = pool.take();
                n = ::recv(p.fd, buffer, p.len, static_cast<int>(p.arg) | MSG_DONTWAIT);
                if (n > 0) {
                    *static_cast<char**>(p.addr) = buffer;
                } else {
                    pool.give_back(buffer);
                }
            } else {
                n = ::recv(p.fd, p.addr, p.len, static_cast<int>(p.arg) | MSG_DONTWAIT);
            }
            if (n > 0 && owned && !st.peer_closed && (p.arg & (MSG_PEEK | MSG_OOB | MSG_WAITALL)) == 0 &&
                static_cast<std::uint32_t>(n) < p.len) {
                // A short read of a stream socket emptied its queue; bytes arriving later
                // raise a new edge. Not once the peer's FIN may be queued behind the bytes
                // read: its edge was already consumed, so the next recv must look.
                st.readable = false;
            }
            break;
        case IORING_OP_SEND:
            if (owned && st.registered && !st.writable && !caller_dontwait) {
                return Outcome::would_block;
            }
            n = ::send(p.fd, p.addr, p.len, static_cast<int>(p.arg) | MSG_DONTWAIT);
            if (n >= 0 && static_cast<std::uint32_t>(n) < p.len) {
                st.writable = false; // the send buffer is full
            }
            break;
        case IORING_OP_SENDMSG: {
            if (owned && st.registered && !st.writable && !caller_dontwait) {
                return Outcome::would_block;
            }
            const auto* msg = static_cast<const msghdr*>(p.addr);
            n = ::sendmsg(p.fd, msg, static_cast<int>(p.arg) | MSG_DONTWAIT);
            if (n >= 0) {
                std::size_t total = 0;
                for (std::size_t i = 0; i < msg->msg_iovlen; ++i) {
                    total += msg->msg_iov[i].iov_len;
                }
                if (static_cast<std::size_t>(n) < total) {
                    st.writable = false; // the send buffer is full
                }
            }
            break;
        }
        case IORING_OP_ACCEPT:
            if (!st.nonblocking) {
                // A readiness-checked accept on a blocking listener could still block (another
                // process or reactor may take the connection first).
                if (!set_nonblocking(p.fd)) {
                    res = -errno;
                    return Outcome::done;
                }
                st.nonblocking = true;
            }
            n = ::accept4(p.fd, static_cast<sockaddr*>(p.addr),
                          reinterpret_cast<socklen_t*>(static_cast<std::uintptr_t>(p.off)), // NOLINT
                          static_cast<int>(p.arg));
            break;
        case IORING_OP_CONNECT:
            if (!p.started) {
                if (!st.nonblocking) {
                    if (!set_nonblocking(p.fd)) {
                        res = -errno;
                        return Outcome::done;
                    }
                    st.nonblocking = true;
                }
                if (::connect(p.fd, static_cast<const sockaddr*>(p.addr), static_cast<socklen_t>(p.off)) == 0) {
                    res = 0;
                    return Outcome::done;
                }
                if (errno == EINPROGRESS) {
                    p.started = true;
                    st.writable = false;
                    return Outcome::would_block;
                }
                if (errno == EINTR) {
                    continue;
                }
                if (would_block(errno)) {
                    // AF_UNIX: the listener's backlog is full. No edge would announce room
                    // (an unconnected socket is always writable): answer as a non-blocking
                    // connect does and let the caller retry.
                    res = -EAGAIN;
                    return Outcome::done;
                }
                res = -errno;
                return Outcome::done;
            } else {
                if (!st.writable) {
                    return Outcome::would_block;
                }
                int err = 0;
                socklen_t len = sizeof err;
                if (::getsockopt(p.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
                    err = errno;
                }
                res = -err;
                return Outcome::done;
            }
        case IORING_OP_READ:
        case IORING_OP_WRITE: {
            // A pipe, eventfd, tty or socket: the offset means nothing, as for io_uring.
            const bool reading = p.opcode == IORING_OP_READ;
            if (!st.nonblocking) {
                pollfd pf{p.fd, static_cast<short>(reading ? POLLIN : POLLOUT), 0};
                if (::poll(&pf, 1, 0) == 0) {
                    (reading ? st.readable : st.writable) = false;
                    return Outcome::would_block;
                }
            }
            n = reading ? ::read(p.fd, p.addr, p.len) : ::write(p.fd, p.addr, p.len);
            break;
        }
        case IORING_OP_POLL_ADD: {
            pollfd pf{p.fd, static_cast<short>(p.arg), 0};
            const int r = ::poll(&pf, 1, 0);
            if (r > 0) {
                res = static_cast<unsigned short>(pf.revents);
                return Outcome::done;
            }
            if (r < 0 && errno != EINTR) {
                res = -errno;
                return Outcome::done;
            }
            return Outcome::would_block;
        }
        default:
            res = -EINVAL;
            return Outcome::done;
        }
        if (n >= 0) {
            res = static_cast<int>(n);
            return Outcome::done;
        }
        const int err = errno;
        if (err == EINTR) {
            continue;
        }
        if (would_block(err)) {
            if (caller_dontwait) {
                res = -EAGAIN; // the caller asked not to wait
                return Outcome::done;
            }
            (is_read_side(p.opcode) ? st.readable : st.writable) = false;
            return Outcome::would_block;
        }
        res = -err;
        return Outcome::done;
    }
}

void EpollEngine::park(const Parked& p, FdState& st) noexcept {
    // A raw descriptor is (re-)registered for each wait: its owner may have closed it, which
    // drops the kernel's registration behind the engine's back (EEXIST: MOD).
    if ((!st.registered || !st.owned) && !watch(p.fd, st)) {
        complete(p.data, -errno); // not pollable (and not a regular file): as poll(2) would fail
        unwatch_if_unused(p.fd, st);
        return;
    }
    Parked* q = alloc_parked();
    *q = p;
    q->next = nullptr;
    q->prev = st.tail;
    (st.tail != nullptr ? st.tail->next : st.head) = q;
    st.tail = q;
    ++parked_count_;
    if (q->data != 0) {
        index_put(q);
    }
}

void EpollEngine::unpark(Parked* p, FdState& st) noexcept {
    (p->prev != nullptr ? p->prev->next : st.head) = p->next;
    (p->next != nullptr ? p->next->prev : st.tail) = p->prev;
    if (p->data != 0) {
        index_erase(p->data);
    }
    --parked_count_;
    free_parked(p);
}

void EpollEngine::cancel_parked(Parked* p, FdState& st) noexcept {
    complete(p->data, -ECANCELED);
    unpark(p, st);
}

bool EpollEngine::watch(int fd, FdState& st) noexcept {
    epoll_event ev{};
    ev.events = kWatchEvents;
    ev.data.fd = fd;
    if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
        if (errno != EEXIST || ::epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) != 0) {
            return false;
        }
    }
    // Edge-triggered: the kernel reports the descriptor's current readiness once now, then
    // each change. Until that report arrives, what the last syscall said stands.
    st.registered = true;
    return true;
}

void EpollEngine::unwatch_if_unused(int fd, FdState& st) noexcept {
    if (st.owned || st.head != nullptr) {
        return;
    }
    // A descriptor nobody owns may be closed by its owner at any time: keep nothing about it.
    if (st.registered) {
        ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
    }
    st = FdState{};
}

void EpollEngine::progress(int fd, std::uint32_t events) noexcept {
    if (fd < 0 || static_cast<std::size_t>(fd) >= fds_.size()) {
        return;
    }
    FdState& st = fds_[static_cast<std::size_t>(fd)];
    if (!st.registered) {
        return; // an event for a descriptor forgotten since (closed, given away)
    }
    if ((events & kReadReady) != 0) {
        st.readable = true;
    }
    if ((events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR | EPOLLPRI)) != 0) {
        st.peer_closed = true; // an end of stream, or urgent data (a read stops at its mark)
    }
    if ((events & kWriteReady) != 0) {
        st.writable = true;
    }
    for (Parked* p = st.head; p != nullptr;) {
        Parked* next = p->next;
        int res = 0;
        Outcome o = Outcome::would_block;
        if (p->opcode == IORING_OP_POLL_ADD) {
            // The event carries the descriptor's whole readiness (EPOLL* and POLL* bits agree).
            const std::uint32_t rev = events & (p->arg | POLLERR | POLLHUP);
            if (rev != 0) {
                res = static_cast<int>(rev);
                o = Outcome::done;
            }
        } else if (is_read_side(p->opcode) ? st.readable : st.writable) {
            o = attempt(*p, st, res);
        }
        if (o == Outcome::done) {
            complete(p->data, res);
            unpark(p, st);
        }
        p = next;
    }
    unwatch_if_unused(fd, st);
}

int EpollEngine::wait(int timeout_ms) noexcept {
    epoll_event events[kMaxEvents];
    const int n = ::epoll_wait(epfd_, events, kMaxEvents, timeout_ms);
    for (int i = 0; i < n; ++i) {
        progress(events[i].data.fd, events[i].events);
    }
    return n;
}

void EpollEngine::run_cancel(const io_uring_sqe& sqe) noexcept {
    const std::uint32_t flags = sqe.cancel_flags;
    if ((flags & IORING_ASYNC_CANCEL_FD) != 0) {
        const int fd = sqe.fd;
        int count = 0;
        if (fd >= 0 && static_cast<std::size_t>(fd) < fds_.size()) {
            FdState& st = fds_[static_cast<std::size_t>(fd)];
            while (st.head != nullptr) {
                cancel_parked(st.head, st);
                ++count;
                if ((flags & IORING_ASYNC_CANCEL_ALL) == 0) {
                    break;
                }
            }
            unwatch_if_unused(fd, st);
        }
        complete(sqe.user_data, count == 0 ? -ENOENT : ((flags & IORING_ASYNC_CANCEL_ALL) != 0 ? count : 0));
        return;
    }
    // By user_data. A file job already on the thread pool cannot be recalled: it completes
    // normally (io_uring answers -EALREADY for work it cannot stop either).
    Parked* p = index_find(sqe.addr);
    if (p == nullptr) {
        complete(sqe.user_data, -ENOENT);
        return;
    }
    const int fd = p->fd;
    FdState& st = fds_[static_cast<std::size_t>(fd)];
    cancel_parked(p, st);
    unwatch_if_unused(fd, st);
    complete(sqe.user_data, 0);
}

void EpollEngine::run_close(const io_uring_sqe& sqe) noexcept {
    forget(sqe.fd);
    complete(sqe.user_data, ::close(sqe.fd) == 0 ? 0 : -errno);
}

void EpollEngine::run_file(const Parked& p) noexcept {
    // Page-cache hits are served here; anything that would wait for the disk goes to a pool
    // thread so the reactor never blocks.
    iovec iov{p.addr, p.len};
    const auto off = static_cast<off_t>(p.off); // -1: the current position, as for io_uring
    const ssize_t n = p.opcode == IORING_OP_READ ? ::preadv2(p.fd, &iov, 1, off, RWF_NOWAIT)
                                                 : ::pwritev2(p.fd, &iov, 1, off, RWF_NOWAIT);
    if (n >= 0) {
        complete(p.data, static_cast<int>(n));
        return;
    }
    // EINVAL: RWF_NOWAIT refused by this file; the pool retries without it (and reports a
    // genuine EINVAL then).
    if (!would_block(errno) && errno != EOPNOTSUPP && errno != EINVAL) {
        complete(p.data, -errno);
        return;
    }
    FileJob* j = free_jobs_;
    if (j != nullptr) {
        free_jobs_ = j->next_free;
    } else {
        jobs_.push_back(std::make_unique<FileJob>(this)); // grows to the peak of concurrent jobs
        j = jobs_.back().get();
    }
    j->op = p;
    j->res = 0;
    jobs_running_.fetch_add(1, std::memory_order_relaxed);
    runtime::ThreadPool::shared().post(j);
}

void EpollEngine::job_run(runtime::PoolWork* w) noexcept {
    auto* j = static_cast<FileJob*>(w);
    EpollEngine* engine = j->engine;
    iovec iov{j->op.addr, j->op.len};
    const auto off = static_cast<off_t>(j->op.off);
    ssize_t n = 0;
    do {
        n = j->op.opcode == IORING_OP_READ ? ::preadv2(j->op.fd, &iov, 1, off, 0)
                                           : ::pwritev2(j->op.fd, &iov, 1, off, 0);
    } while (n < 0 && errno == EINTR);
    j->res = n < 0 ? -errno : static_cast<int>(n);
    engine->reactor_.post(j); // the reactor may reuse j from here on
    engine->jobs_running_.fetch_sub(1, std::memory_order_release);
}

void EpollEngine::job_done(RemoteWork* w) noexcept {
    auto* j = static_cast<FileJob*>(w);
    EpollEngine* e = j->engine;
    e->complete(j->op.data, j->res);
    j->next_free = e->free_jobs_;
    e->free_jobs_ = j;
}

EpollEngine::Parked* EpollEngine::alloc_parked() noexcept {
    if (free_parked_ == nullptr) {
        // Grows to the peak of waiting operations (about one per connection), then reuses.
        parked_chunks_.push_back(std::make_unique<Parked[]>(kParkedChunk));
        Parked* chunk = parked_chunks_.back().get();
        for (std::size_t i = 0; i < kParkedChunk; ++i) {
            chunk[i].next = free_parked_;
            free_parked_ = &chunk[i];
        }
    }
    Parked* p = free_parked_;
    free_parked_ = p->next;
    return p;
}

void EpollEngine::free_parked(Parked* p) noexcept {
    p->next = free_parked_;
    free_parked_ = p;
}

void EpollEngine::index_put(Parked* p) noexcept {
    if ((parked_count_ + 1) * 2 > index_.size()) {
        std::vector<Parked*> old(index_.size() * 2, nullptr);
        old.swap(index_);
        const std::size_t mask = index_.size() - 1;
        for (Parked* q : old) {
            if (q != nullptr) {
                std::size_t i = index_slot(q->data, mask);
                while (index_[i] != nullptr) {
                    i = (i + 1) & mask;
                }
                index_[i] = q;
            }
        }
    }
    const std::size_t mask = index_.size() - 1;
    std::size_t i = index_slot(p->data, mask);
    while (index_[i] != nullptr) {
        i = (i + 1) & mask;
    }
    index_[i] = p;
}

EpollEngine::Parked* EpollEngine::index_find(std::uint64_t data) const noexcept {
    const std::size_t mask = index_.size() - 1;
    for (std::size_t i = index_slot(data, mask); index_[i] != nullptr; i = (i + 1) & mask) {
        if (index_[i]->data == data) {
            return index_[i];
        }
    }
    return nullptr;
}

void EpollEngine::index_erase(std::uint64_t data) noexcept {
    const std::size_t mask = index_.size() - 1;
    std::size_t i = index_slot(data, mask);
    while (index_[i] != nullptr && index_[i]->data != data) {
        i = (i + 1) & mask;
    }
    if (index_[i] == nullptr) {
        return;
    }
    // Backward-shift deletion: later entries of the probe run move up to keep lookups exact.
    std::size_t hole = i;
    for (std::size_t j = (i + 1) & mask; index_[j] != nullptr; j = (j + 1) & mask) {
        const std::size_t home = index_slot(index_[j]->data, mask);
        // Move index_[j] into the hole unless its home lies cyclically in (hole, j].
        const bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!stays) {
            index_[hole] = index_[j];
            hole = j;
        }
    }
    index_[hole] = nullptr;
}

} // namespace ringwork::io::detail
