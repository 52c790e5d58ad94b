// SPDX-License-Identifier: MIT
// Awaitable kernel operations: one-shot I/O, Listener (multishot accept), Socket (multishot recv).
#pragma once

#include <ringwork/io/buffer.hpp>
#include <ringwork/io/error.hpp>
#include <ringwork/io/operation.hpp>
#include <ringwork/runtime/result.hpp>
#include <ringwork/runtime/stop_token.hpp>
#include <ringwork/runtime/task.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <array>
#include <coroutine>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ringwork::io {

using runtime::Result;

/// \brief An IPv4, IPv6 or Unix-domain (AF_UNIX) socket address.
struct SocketAddress {
    sockaddr_storage storage{};
    socklen_t length = 0;

    /// Parse "127.0.0.1:8080", "[::1]:8080", "0.0.0.0:0" or "unix:/run/x.sock" (also
    /// "unix:@name", an abstract socket); error on anything else.
    static Result<SocketAddress> parse(std::string_view text);
    static SocketAddress ipv4(std::uint32_t host_order_addr, std::uint16_t port);
    static SocketAddress loopback(std::uint16_t port) { return ipv4(0x7F000001U, port); }
    /// \brief A Unix-domain stream socket at `path` ("/run/x.sock"); a leading '@' names an
    /// abstract socket (Linux: no file). Throws std::invalid_argument starting with
    /// "SocketAddress::unix_path" for an empty path, a NUL byte, or more than 107 bytes.
    static SocketAddress unix_path(std::string_view path);
    [[nodiscard]] std::uint16_t port() const noexcept;
    /// Set the port of an IPv4/IPv6 address (a Unix-domain address is left as it is).
    void set_port(std::uint16_t port) noexcept;
    [[nodiscard]] int family() const noexcept { return storage.ss_family; }
    [[nodiscard]] bool is_unix() const noexcept { return storage.ss_family == AF_UNIX; }
    /// The path of a Unix-domain address ("@name" for an abstract one), else empty.
    [[nodiscard]] std::string path() const;
    /// "1.2.3.4:80", "[::1]:80", "unix:/run/x.sock".
    [[nodiscard]] std::string to_string() const;
    [[nodiscard]] const sockaddr* data() const noexcept {
        return reinterpret_cast<const sockaddr*>(&storage); // NOLINT: sockaddr API
    }
};

namespace detail {

/// \brief What a Socket shares with the one-shot operations started through it, so close()
/// can refuse new ones, stop partial sends from resubmitting, and wait for the rest.
struct SocketGuard {
    bool closing = false;
    std::uint32_t inflight = 0;
    std::coroutine_handle<> idle_waiter{}; ///< close() waiting for inflight == 0
};

/// \brief A one-shot kernel operation awaited by one coroutine.
///
/// The object lives in the awaiting coroutine's frame and is the submission's user_data. If the
/// awaiting coroutine's stop token fires, the operation is cancelled and the coroutine resumes
/// only at the operation's final completion (never earlier: the kernel still owns the memory).
/// send, sendmsg and write complete fully: partial writes are resubmitted without resuming.
class IoOp : public Operation {
public:
    enum class Kind : std::uint8_t { nop, recv, send, sendmsg, accept, connect, close, read, write, poll, shutdown };

    IoOp(const IoOp&) = delete;
    IoOp& operator=(const IoOp&) = delete;

    bool await_ready() const noexcept { return false; }
    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) noexcept {
        return start(h, runtime::detail::stop_token_of(h), runtime::detail::promise_base_of(h));
    }

protected:
    IoOp(Kind kind, int fd, SocketGuard* guard = nullptr) noexcept
        : Operation(&on_complete), kind_(kind), fd_(fd), guard_(guard) {}
    ~IoOp() = default;
    /// Negative errno or the operation's result (bytes done for the full-write kinds).
    [[nodiscard]] int raw_result() const noexcept { return res_; }
    /// Bytes transferred (for send, sendmsg and write: all of them, or an error).
    [[nodiscard]] Result<std::size_t> size_result() const noexcept {
        if (res_ < 0) {
            return make_error(res_);
        }
        return done_;
    }
    [[nodiscard]] Result<void> void_result() const noexcept {
        if (res_ < 0) {
            return make_error(res_);
        }
        return {};
    }

    Kind kind_;
    int fd_;
    int res_ = 0;
    int arg_ = 0;               ///< msg flags, poll mask or shutdown how
    void* addr_ = nullptr;      ///< buffer, iovec array or sockaddr
    std::uint64_t len_ = 0;     ///< bytes, iovec count or sockaddr length
    std::uint64_t offset_ = 0;  ///< file offset
    std::size_t done_ = 0;      ///< bytes transferred (written so far for the full-write kinds)

private:
    bool start(std::coroutine_handle<> h, runtime::StopToken token, runtime::detail::PromiseBase* promise) noexcept;
    void submit() noexcept;
    bool advance_partial(int res) noexcept;
    static void on_complete(Operation* self, int res, std::uint32_t flags) noexcept;
    static void on_stop(void* self) noexcept;

    std::coroutine_handle<> waiter_{};
    runtime::detail::PromiseBase* promise_ = nullptr;
    runtime::StopRegistration stop_;
    bool cancel_requested_ = false;
    SocketGuard* guard_ = nullptr; ///< set when started through a Socket
};

} // namespace detail

/// \brief Receive up to `buffer.size()` bytes into the caller's memory; 0 means end of stream.
class [[nodiscard]] RecvSome : public detail::IoOp {
public:
    RecvSome(int fd, std::span<char> buffer, int flags = 0, detail::SocketGuard* guard = nullptr) noexcept
        : IoOp(Kind::recv, fd, guard) {
        addr_ = buffer.data();
        len_ = buffer.size();
        arg_ = flags;
    }
    Result<std::size_t> await_resume() const noexcept { return size_result(); }
};

/// \brief Send all of `data` (MSG_NOSIGNAL; partial sends continue in the kernel loop).
class [[nodiscard]] SendAll : public detail::IoOp {
public:
    SendAll(int fd, std::span<const char> data, int flags = 0, detail::SocketGuard* guard = nullptr) noexcept
        : IoOp(Kind::send, fd, guard) {
        addr_ = const_cast<char*>(data.data()); // NOLINT: never written through
        len_ = data.size();
        arg_ = flags | MSG_NOSIGNAL;
    }
    Result<std::size_t> await_resume() const noexcept { return size_result(); }
};

/// \brief Send every byte of an iovec array with sendmsg (MSG_NOSIGNAL). The array is
/// consumed: entries are advanced in place on partial sends, so it must stay alive and unshared.
class [[nodiscard]] SendMsgAll : public detail::IoOp {
public:
    SendMsgAll(int fd, std::span<iovec> iov, int flags = 0, detail::SocketGuard* guard = nullptr) noexcept
        : IoOp(Kind::sendmsg, fd, guard) {
        msg_.msg_iov = iov.data();
        msg_.msg_iovlen = iov.size();
        addr_ = &msg_;
        arg_ = flags | MSG_NOSIGNAL;
    }
    SendMsgAll(const SendMsgAll&) = delete;
    SendMsgAll& operator=(const SendMsgAll&) = delete;
    Result<std::size_t> await_resume() const noexcept { return size_result(); }

private:
    msghdr msg_{};
};

/// \brief Accept one connection (one-shot); yields the new fd.
class [[nodiscard]] AcceptOnce : public detail::IoOp {
public:
    explicit AcceptOnce(int listen_fd) noexcept : IoOp(Kind::accept, listen_fd) {}
    Result<int> await_resume() const noexcept {
        if (res_ < 0) {
            return make_error(res_);
        }
        return res_;
    }
};

/// \brief Connect a socket to `address` (which must outlive the await).
class [[nodiscard]] Connect : public detail::IoOp {
public:
    Connect(int fd, const SocketAddress& address) noexcept : IoOp(Kind::connect, fd) {
        addr_ = const_cast<sockaddr*>(address.data()); // NOLINT: never written through
        len_ = address.length;
    }
    Result<void> await_resume() const noexcept { return void_result(); }
};

/// \brief Close a descriptor through the ring.
class [[nodiscard]] CloseFd : public detail::IoOp {
public:
    explicit CloseFd(int fd) noexcept : IoOp(Kind::close, fd) {}
    Result<void> await_resume() const noexcept { return void_result(); }
};

/// \brief Read up to `buffer.size()` bytes at `offset` (files; -1 for the current position).
class [[nodiscard]] ReadAt : public detail::IoOp {
public:
    ReadAt(int fd, std::span<char> buffer, std::uint64_t offset) noexcept : IoOp(Kind::read, fd) {
        addr_ = buffer.data();
        len_ = buffer.size();
        offset_ = offset;
    }
    Result<std::size_t> await_resume() const noexcept { return size_result(); }
};

/// \brief Write all of `data` at `offset` (files; partial writes continue).
class [[nodiscard]] WriteAt : public detail::IoOp {
public:
    WriteAt(int fd, std::span<const char> data, std::uint64_t offset) noexcept : IoOp(Kind::write, fd) {
        addr_ = const_cast<char*>(data.data()); // NOLINT: never written through
        len_ = data.size();
        offset_ = offset;
    }
    Result<std::size_t> await_resume() const noexcept { return size_result(); }
};

/// \brief Wait until `fd` is ready for `events` (POLLIN, POLLOUT, ...): the hook for
/// readiness-based libraries (libpq, curl multi). Yields the returned events.
class [[nodiscard]] PollFd : public detail::IoOp {
public:
    PollFd(int fd, unsigned events) noexcept : IoOp(Kind::poll, fd) { arg_ = static_cast<int>(events); }
    Result<unsigned> await_resume() const noexcept {
        if (res_ < 0) {
            return make_error(res_);
        }
        return static_cast<unsigned>(res_);
    }
};

/// \brief shutdown(2) through the ring (SHUT_WR for a lingering close).
class [[nodiscard]] ShutdownFd : public detail::IoOp {
public:
    ShutdownFd(int fd, int how, detail::SocketGuard* guard = nullptr) noexcept : IoOp(Kind::shutdown, fd, guard) {
        arg_ = how;
    }
    Result<void> await_resume() const noexcept { return void_result(); }
};

/// \brief A no-op round trip through the kernel (tests, benchmarks).
class [[nodiscard]] Nop : public detail::IoOp {
public:
    Nop() noexcept : IoOp(Kind::nop, -1) {}
    Result<void> await_resume() const noexcept { return void_result(); }
};

class Socket;

/// \brief Listening-socket options.
struct ListenOptions {
    int backlog = 4096;
    bool reuse_address = true;
    bool reuse_port = true;   ///< one listener per reactor on the same port (TCP only)
    bool no_delay = true;     ///< TCP_NODELAY on the listener: accepted sockets inherit it (TCP only)
    /// Unix path sockets: a socket file left behind by a dead server (connect() refused) is
    /// removed before binding. A file that is not a socket, or a socket a live server
    /// accepts on, is never removed: bind fails instead.
    bool remove_stale_unix_socket = true;
    /// TCP: before binding, check with a plain bind (no SO_REUSEPORT, nothing listening) that
    /// no other socket holds the port, so a second server on a busy port fails with
    /// EADDRINUSE instead of silently sharing its connections (SO_REUSEPORT). Only for the
    /// first of several listeners on one port: the others would find it.
    bool exclusive = false;
};

/// \brief A listening TCP socket with a multishot accept (one-shot re-armed as fallback).
///
/// Reactor thread only. Accepted descriptors queue up while nobody awaits accept(). Close it
/// with `co_await listener.close()` (cancels the accept and waits for its last completion)
/// before destroying it.
class Listener {
public:
    /// Create, bind and listen; throws std::system_error naming the address on failure.
    static Listener bind(const SocketAddress& address, ListenOptions options = {});
    /// \brief Take over an open descriptor (inherited from systemd or a supervisor), after
    /// checking that it is a listening stream socket: std::invalid_argument naming the fd
    /// otherwise (the descriptor is then left open).
    static Listener adopt(int fd);
    Listener() = default;
    explicit Listener(int fd) noexcept : fd_(fd) {}
    Listener(Listener&& other) noexcept;
    Listener& operator=(Listener&& other) noexcept;
    Listener(const Listener&) = delete;
    Listener& operator=(const Listener&) = delete;
    ~Listener();

    [[nodiscard]] int fd() const noexcept { return fd_; }
    [[nodiscard]] SocketAddress local_address() const;
    /// \brief Give up the descriptor without closing it (nothing may be armed).
    int release() noexcept;

    class [[nodiscard]] AcceptAwaiter {
    public:
        explicit AcceptAwaiter(Listener& l) noexcept : listener_(&l) {}
        bool await_ready() const noexcept;
        template <class Promise>
        void await_suspend(std::coroutine_handle<Promise> h) {
            suspend(h, runtime::detail::stop_token_of(h));
        }
        Result<Socket> await_resume();

    private:
        void suspend(std::coroutine_handle<> h, runtime::StopToken token);
        static void on_stop(void* self) noexcept;
        Listener* listener_;
        runtime::StopRegistration stop_;
    };
    /// \brief The next accepted connection (errors such as EMFILE are returned, not thrown).
    AcceptAwaiter accept() noexcept { return AcceptAwaiter(*this); }
    /// \brief Cancel the armed accept and wait for its final completion, keeping the
    /// descriptor open and the connections it accepted meanwhile queued (try_accept() takes
    /// them; a later accept() re-arms). Graceful shutdown: nothing accepted is dropped.
    runtime::Task<> disarm();
    /// \brief A connection already accepted and queued, without waiting; nullopt when the
    /// queue holds none (queued errors are skipped).
    std::optional<Socket> try_accept() noexcept;
    /// \brief Stop accepting: cancel the armed accept and wait for its final completion, then
    /// close the descriptor. Connections still queued are closed.
    runtime::Task<> close();
    /// \brief Accepted connections waiting in the queue.
    [[nodiscard]] std::size_t queued() const noexcept { return queue_.size(); }

private:
    struct AcceptOp : Operation {
        explicit AcceptOp(Listener* l) noexcept : Operation(&on_complete), listener(l) {}
        Listener* listener;
    };
    static void on_complete(Operation* op, int res, std::uint32_t flags) noexcept;
    void arm() noexcept;
    void wake() noexcept;

    int fd_ = -1;
    AcceptOp op_{this};
    bool armed_ = false;
    bool armed_once_ = false;
    bool multishot_ = false;
    bool closing_ = false;
    std::vector<int> queue_;  ///< accepted fds or -errno, FIFO (head_ marks the front)
    std::size_t head_ = 0;
    std::coroutine_handle<> waiter_{};
    std::coroutine_handle<> close_waiter_{};
};

/// \brief A connected TCP (or Unix) stream socket.
///
/// recv() uses a multishot recv with buffers picked from the reactor's provided buffer ring:
/// zero-copy, and an idle socket holds no buffer. When the ring runs dry (-ENOBUFS) the next
/// receive falls back to a one-shot recv into a spare buffer instead of re-arming in a loop.
/// On the epoll backend (no ring) each receive is one-shot and its spare buffer is taken only
/// when the socket is readable, so an idle socket holds no buffer there either.
/// At most kMaxQueued completed buffers wait per socket: beyond that the multishot recv is
/// paused (cancelled) until the owner consumes, so one client cannot drain the ring.
/// Reactor thread only; not movable while an operation is armed.
class Socket {
public:
    static constexpr std::size_t kMaxQueued = 2;

    Socket() noexcept = default;
    explicit Socket(int fd) noexcept : fd_(fd) {}
    Socket(Socket&& other) noexcept;
    Socket& operator=(Socket&& other) noexcept;
    Socket(const Socket&) = delete;
    Socket& operator=(const Socket&) = delete;
    /// Closes the descriptor synchronously if close() was not awaited (asserts nothing is armed).
    ~Socket();

    /// \brief Open a TCP socket and connect it to `address`.
    static runtime::Task<Result<Socket>> connect(SocketAddress address);

    [[nodiscard]] int fd() const noexcept { return fd_; }
    [[nodiscard]] bool is_open() const noexcept { return fd_ >= 0; }

    class [[nodiscard]] RecvAwaiter {
    public:
        explicit RecvAwaiter(Socket& s) noexcept : socket_(&s) {}
        RecvAwaiter(Socket& s, runtime::StopToken token) noexcept : socket_(&s), token_(token), explicit_(true) {}
        bool await_ready() const noexcept;
        template <class Promise>
        void await_suspend(std::coroutine_handle<Promise> h) {
            suspend(h, explicit_ ? token_ : runtime::detail::stop_token_of(h));
        }
        /// A lease of received bytes; an empty lease means end of stream.
        Result<BufferLease> await_resume();

    private:
        void suspend(std::coroutine_handle<> h, runtime::StopToken token);
        static void on_stop(void* self) noexcept;
        Socket* socket_;
        runtime::StopToken token_{};
        bool explicit_ = false;
        runtime::StopRegistration stop_;
    };
    /// \brief Receive the next bytes as a leased buffer (see the class comment).
    RecvAwaiter recv() noexcept { return RecvAwaiter(*this); }
    /// \brief Same, observing `token` instead of the awaiting coroutine's (per-wait deadlines).
    RecvAwaiter recv(runtime::StopToken token) noexcept { return RecvAwaiter(*this, token); }
    /// \brief Receive into the caller's memory (one-shot).
    RecvSome recv_into(std::span<char> buffer) noexcept { return RecvSome(fd_, buffer, 0, &guard_); }
    SendAll send(std::string_view data) noexcept { return SendAll(fd_, std::span<const char>(data), 0, &guard_); }
    SendMsgAll send(std::span<iovec> iov) noexcept { return SendMsgAll(fd_, iov, 0, &guard_); }
    ShutdownFd shutdown(int how = SHUT_WR) noexcept { return ShutdownFd(fd_, how, &guard_); }
    /// \brief Cancel every operation on the socket, wait for their final completions, drop
    /// queued buffers and close the descriptor through the ring.
    runtime::Task<> close();
    /// \brief Give up the descriptor without closing it (nothing may be armed).
    int release() noexcept;


    /// \brief Receive completions waiting to be consumed.
    [[nodiscard]] std::size_t queued() const noexcept { return count_; }

    /// \brief A callback for a socket nobody awaits: an idle connection parked without a
    /// coroutine (see ReadyHook). The object must outlive the registration.
    struct ReadyHook {
        void (*fire)(ReadyHook* self) noexcept = nullptr;
    };
    /// \brief Without a coroutine in recv(): call `hook->fire` once, from the reactor, when
    /// the next completion is queued (bytes, end of stream or an error); the receive is armed
    /// if it is not. Returns false (and registers nothing) when one is queued already.
    bool notify_when_ready(ReadyHook* hook) noexcept;
    /// \brief Drop the registration of notify_when_ready() (no call after this).
    void cancel_notify() noexcept { hook_ = nullptr; }

private:
    struct Slot {
        char* base;         ///< kind 1: the spare buffer
        std::uint32_t len;  ///< bytes received (kinds 0 and 1); errno (kind 3)
        std::uint16_t id;   ///< kind 0: the ring buffer's id
        std::uint8_t kind;  ///< 0: ring buffer, 1: spare buffer, 2: end of stream, 3: error
    };
    static_assert(sizeof(Slot) == 16, "four slots live in every socket (every parked connection)");
    struct RecvOp : Operation {
        explicit RecvOp(Socket* s) noexcept : Operation(&on_recv), socket(s) {}
        Socket* socket;
    };
    static void on_recv(Operation* op, int res, std::uint32_t flags) noexcept;
    void arm_recv() noexcept;
    void push(const Slot& slot) noexcept;
    Slot pop() noexcept;
    void wake() noexcept;
    void drop_queued() noexcept;

    int fd_ = -1;
    RecvOp op_{this};
    bool armed_ = false;        ///< a recv (multishot or one-shot) is in the kernel
    bool multishot_ = false;    ///< the armed recv is multishot
    bool paused_ = false;       ///< a cancel of the multishot recv was sent (queue full)
    bool no_buffers_ = false;   ///< the ring ran dry: next arm uses a spare buffer
    bool closing_ = false;
    std::uint8_t head_ = 0;
    std::uint8_t count_ = 0;
    char* spare_ = nullptr;     ///< spare buffer owned by an armed one-shot recv
    std::coroutine_handle<> waiter_{};
    std::coroutine_handle<> close_waiter_{};
    ReadyHook* hook_ = nullptr; ///< notify_when_ready(): called instead of a waiter
    std::array<Slot, 4> slots_{};
    std::vector<Slot> overflow_; ///< completions beyond the ring above (rare: before a pause lands)
    detail::SocketGuard guard_;  ///< one-shot operations started through this socket
};

} // namespace ringwork::io
