// SPDX-License-Identifier: MIT
// Kernel operations: one-shot IoOp, Listener (multishot accept), Socket (multishot recv).
#include <ringwork/io/socket.hpp>

#include "io/reactor_impl.hpp"

#include <fmt/format.h>

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstring>
#include <stdexcept>

namespace ringwork::io {

// ---------------------------------------------------------------------------------------------
// SocketAddress

SocketAddress SocketAddress::unix_path(std::string_view path) {
    SocketAddress a;
    auto* un = reinterpret_cast<sockaddr_un*>(&a.storage); // NOLINT: sockaddr API
    if (path.empty() || path == "@") {
        throw std::invalid_argument("SocketAddress::unix_path: the path is empty");
    }
    if (path.find('\0') != std::string_view::npos) {
        throw std::invalid_argument("SocketAddress::unix_path: the path contains a NUL byte");
    }
    if (path.size() >= sizeof(un->sun_path)) {
        throw std::invalid_argument(fmt::format("SocketAddress::unix_path: {:?} is longer than {} bytes", path,
                                                sizeof(un->sun_path) - 1));
    }
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, path.data(), path.size());
    if (path.front() == '@') {
        un->sun_path[0] = '\0'; // abstract namespace: the length, not a NUL, ends the name
        a.length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
    } else {
        a.length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
    }
    return a;
}

std::string SocketAddress::path() const {
    if (storage.ss_family != AF_UNIX || length <= offsetof(sockaddr_un, sun_path)) {
        return {};
    }
    const auto* un = reinterpret_cast<const sockaddr_un*>(&storage); // NOLINT: sockaddr API
    const std::size_t n = length - offsetof(sockaddr_un, sun_path);
    if (un->sun_path[0] == '\0') {
        std::string name(1, '@'); // built in place: "@" + std::string trips GCC 12's -Wrestrict at -O3
        name.append(un->sun_path + 1, n - 1);
        return name;
    }
    return std::string(un->sun_path, ::strnlen(un->sun_path, n));
}

Result<SocketAddress> SocketAddress::parse(std::string_view text) {
    const auto invalid = std::make_error_code(std::errc::invalid_argument);
    if (text.starts_with("unix:")) {
        try {
            return unix_path(text.substr(5));
        } catch (const std::invalid_argument&) {
            return invalid;
        }
    }
    std::string_view host;
    std::string_view port_text;
    if (!text.empty() && text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
            return invalid;
        }
        host = text.substr(1, close - 1);
        port_text = text.substr(close + 2);
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos) {
            return invalid;
        }
        host = text.substr(0, colon);
        port_text = text.substr(colon + 1);
    }
    unsigned port = 0;
    const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc{} || end != port_text.data() + port_text.size() || port > 65535 || port_text.empty()) {
        return invalid;
    }
    const std::string host_z(host);
    SocketAddress a;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&a.storage);  // NOLINT: sockaddr API
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.storage); // NOLINT: sockaddr API
    if (::inet_pton(AF_INET, host_z.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(static_cast<std::uint16_t>(port));
        a.length = sizeof(sockaddr_in);
        return a;
    }
    a.storage = {};
    if (::inet_pton(AF_INET6, host_z.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(static_cast<std::uint16_t>(port));
        a.length = sizeof(sockaddr_in6);
        return a;
    }
    return invalid;
}

SocketAddress SocketAddress::ipv4(std::uint32_t host_order_addr, std::uint16_t port) {
    SocketAddress a;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&a.storage); // NOLINT: sockaddr API
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    v4->sin_addr.s_addr = htonl(host_order_addr);
    a.length = sizeof(sockaddr_in);
    return a;
}

std::uint16_t SocketAddress::port() const noexcept {
    if (storage.ss_family == AF_INET) {
        return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port); // NOLINT
    }
    if (storage.ss_family == AF_INET6) {
        return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port); // NOLINT
    }
    return 0;
}

void SocketAddress::set_port(std::uint16_t port) noexcept {
    if (storage.ss_family == AF_INET) {
        reinterpret_cast<sockaddr_in*>(&storage)->sin_port = htons(port); // NOLINT
    } else if (storage.ss_family == AF_INET6) {
        reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port = htons(port); // NOLINT
    }
}

std::string SocketAddress::to_string() const {
    char buf[INET6_ADDRSTRLEN] = {};
    if (storage.ss_family == AF_INET) {
        ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage)->sin_addr, buf, sizeof buf); // NOLINT
        return fmt::format("{}:{}", buf, port());
    }
    if (storage.ss_family == AF_INET6) {
        ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_addr, buf, sizeof buf); // NOLINT
        return fmt::format("[{}]:{}", buf, port());
    }
    if (storage.ss_family == AF_UNIX) {
        const std::string p = path();
        return p.empty() ? std::string("unix:(unnamed)") : "unix:" + p;
    }
    return "(unknown address)";
}

// ---------------------------------------------------------------------------------------------
// IoOp

namespace detail {

bool IoOp::start(std::coroutine_handle<> h, runtime::StopToken token,
                 runtime::detail::PromiseBase* promise) noexcept {
    // A close is never cancelled: skipping it would leak the descriptor (a listener would
    // keep taking connections into its backlog, a peer would never see the end of the
    // stream). Cleanup must run after a stop too, e.g. a connection closed during shutdown by
    // a task that carries the reactor's (stopped) token.
    const bool cancellable = kind_ != Kind::close;
    if (cancellable && (token.stop_requested() || (guard_ != nullptr && guard_->closing))) {
        res_ = -ECANCELED;
        return false; // resume at once, nothing submitted
    }
    if (guard_ != nullptr) {
        ++guard_->inflight;
    }
    waiter_ = h;
    promise_ = promise;
    if (promise_ != nullptr) {
        promise_->op_started();
    }
    submit();
    if (cancellable) {
        stop_.arm(token, &on_stop, this);
    }
    return true;
}

void IoOp::submit() noexcept {
    ReactorImpl& r = current_impl();
    if (guard_ != nullptr && kind_ != Kind::close) {
        r.own_fd(fd_); // a Socket's descriptor: the epoll backend keeps it registered
    }
    io_uring_sqe* s = r.sqe_for(this);
    auto* bytes = static_cast<char*>(addr_);
    switch (kind_) {
    case Kind::nop:
        io_uring_prep_nop(s);
        break;
    case Kind::recv:
        io_uring_prep_recv(s, fd_, addr_, len_, arg_);
        break;
    case Kind::send:
        io_uring_prep_send(s, fd_, bytes + done_, len_ - done_, arg_);
        break;
    case Kind::sendmsg:
        io_uring_prep_sendmsg(s, fd_, static_cast<msghdr*>(addr_), static_cast<unsigned>(arg_));
        break;
    case Kind::accept:
        io_uring_prep_accept(s, fd_, nullptr, nullptr, SOCK_CLOEXEC);
        break;
    case Kind::connect:
        io_uring_prep_connect(s, fd_, static_cast<sockaddr*>(addr_), static_cast<socklen_t>(len_));
        break;
    case Kind::close:
        io_uring_prep_close(s, fd_);
        break;
    case Kind::read:
        io_uring_prep_read(s, fd_, addr_, static_cast<unsigned>(len_), offset_);
        break;
    case Kind::write:
        io_uring_prep_write(s, fd_, bytes + done_, static_cast<unsigned>(len_ - done_),
                            offset_ == static_cast<std::uint64_t>(-1) ? offset_ : offset_ + done_);
        break;
    case Kind::poll:
        io_uring_prep_poll_add(s, fd_, static_cast<unsigned>(arg_));
        break;
    case Kind::shutdown:
        io_uring_prep_shutdown(s, fd_, arg_);
        break;
    }
}

/// For the full-write kinds: account `res` bytes; true when more remain to be sent.
bool IoOp::advance_partial(int res) noexcept {
    done_ += static_cast<std::size_t>(res);
    if (kind_ == Kind::send || kind_ == Kind::write) {
        return done_ < len_;
    }
    // sendmsg: advance the iovec array in place.
    auto* msg = static_cast<msghdr*>(addr_);
    auto left = static_cast<std::size_t>(res);
    while (msg->msg_iovlen > 0 && left >= msg->msg_iov->iov_len) {
        left -= msg->msg_iov->iov_len;
        ++msg->msg_iov;
        --msg->msg_iovlen;
    }
    if (msg->msg_iovlen > 0) {
        msg->msg_iov->iov_base = static_cast<char*>(msg->msg_iov->iov_base) + left;
        msg->msg_iov->iov_len -= left;
    }
    return msg->msg_iovlen > 0;
}

void IoOp::on_complete(Operation* self, int res, std::uint32_t /*flags*/) noexcept {
    auto* op = static_cast<IoOp*>(self);
    const bool full_write = op->kind_ == Kind::send || op->kind_ == Kind::sendmsg || op->kind_ == Kind::write;
    if (full_write) {
        if (res > 0) {
            const bool more = op->advance_partial(res);
            // Never resubmit once the socket is closing: its descriptor number may be reused.
            if (more && !op->cancel_requested_ && (op->guard_ == nullptr || !op->guard_->closing)) {
                op->submit(); // partial write: continue without resuming the coroutine
                return;
            }
            res = more ? -ECANCELED : 0;
        } else if (res == 0) {
            const bool all = op->kind_ == Kind::sendmsg ? static_cast<msghdr*>(op->addr_)->msg_iovlen == 0
                                                        : op->done_ >= op->len_;
            res = all ? 0 : -EIO; // the peer or file took nothing more
        }
    } else if (res >= 0) {
        op->done_ = static_cast<std::size_t>(res);
    }
    op->res_ = res;
    op->stop_.disarm();
    if (op->promise_ != nullptr) {
        op->promise_->op_finished();
    }
    current_impl().schedule(op->waiter_);
    if (SocketGuard* g = op->guard_; g != nullptr && --g->inflight == 0 && g->idle_waiter) {
        current_impl().schedule(std::exchange(g->idle_waiter, nullptr));
    }
}

void IoOp::on_stop(void* self) noexcept {
    auto* op = static_cast<IoOp*>(self);
    if (!op->cancel_requested_) {
        op->cancel_requested_ = true;
        current_impl().cancel(op);
    }
}

} // namespace detail

// ---------------------------------------------------------------------------------------------
// Listener

namespace {

/// A Unix socket file at `path` that nobody accepts on (its server died without unlinking it)
/// is removed. Anything else there is left alone: the caller's bind then fails with EADDRINUSE.
void remove_stale_unix_socket(const SocketAddress& address) {
    const std::string path = address.path();
    struct stat st {};
    if (path.empty() || path.front() == '@' || ::lstat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) {
        return;
    }
    const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0) {
        return;
    }
    const bool refused = ::connect(probe, address.data(), address.length) != 0 && errno == ECONNREFUSED;
    ::close(probe);
    if (refused) {
        ::unlink(path.c_str());
    }
}

} // namespace

namespace {

/// ListenOptions::exclusive: bind a plain socket (SO_REUSEADDR only, so TIME_WAIT leftovers do
/// not count; no SO_REUSEPORT and never listening, so no client can land in it) and close it.
/// Returns the port it got: the address's own, or the kernel's pick for port 0.
std::uint16_t probe_exclusive(const SocketAddress& address) {
    const int fd = ::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        throw std::system_error(errno, std::generic_category(), "socket()");
    }
    const int one = 1;
    (void)::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, address.data(), address.length) != 0) {
        const int err = errno;
        ::close(fd);
        std::string what = fmt::format("bind {}", address.to_string());
        if (err == EADDRINUSE) {
            what += " (another socket is bound to this port)";
        }
        throw std::system_error(err, std::generic_category(), what);
    }
    SocketAddress got;
    got.length = sizeof got.storage;
    const bool named = ::getsockname(fd, reinterpret_cast<sockaddr*>(&got.storage), &got.length) == 0; // NOLINT
    ::close(fd);
    return named ? got.port() : address.port();
}

} // namespace

Listener Listener::bind(const SocketAddress& address, ListenOptions options) {
    const bool unix_socket = address.is_unix();
    if (unix_socket && options.remove_stale_unix_socket) {
        remove_stale_unix_socket(address);
    }
    if (!unix_socket && options.exclusive) {
        SocketAddress where = address;
        where.set_port(probe_exclusive(address));
        options.exclusive = false;
        return bind(where, options);
    }
    const int fd = ::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        throw std::system_error(errno, std::generic_category(), "socket()");
    }
    Listener listener(fd);
    const int one = 1;
    auto set = [&](int level, int name, bool on, const char* what) {
        if (on && ::setsockopt(fd, level, name, &one, sizeof one) != 0) {
            throw std::system_error(errno, std::generic_category(),
                                    fmt::format("setsockopt({}) on {}", what, address.to_string()));
        }
    };
    if (!unix_socket) {
        set(SOL_SOCKET, SO_REUSEADDR, options.reuse_address, "SO_REUSEADDR");
        set(SOL_SOCKET, SO_REUSEPORT, options.reuse_port, "SO_REUSEPORT");
        set(IPPROTO_TCP, TCP_NODELAY, options.no_delay, "TCP_NODELAY");
    }
    if (::bind(fd, address.data(), address.length) != 0) {
        const int err = errno;
        std::string what = fmt::format("bind {}", address.to_string());
        if (unix_socket && err == EADDRINUSE) {
            what += " (the path exists: a live server's socket, or not a socket at all; remove it or choose another)";
        }
        throw std::system_error(err, std::generic_category(), what);
    }
    if (::listen(fd, options.backlog) != 0) {
        throw std::system_error(errno, std::generic_category(), fmt::format("listen {}", address.to_string()));
    }
    return listener;
}

Listener Listener::adopt(int fd) {
    int type = 0;
    int listening = 0;
    socklen_t len = sizeof type;
    if (fd < 0 || ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) {
        throw std::invalid_argument(fmt::format("fd {} is not an open socket", fd));
    }
    len = sizeof listening;
    if (type != SOCK_STREAM || ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || listening == 0) {
        throw std::invalid_argument(fmt::format("fd {} is not a listening stream socket", fd));
    }
    return Listener(fd);
}

Listener::Listener(Listener&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {
    assert(!other.armed_ && other.waiter_ == nullptr && "moving a Listener with an armed accept");
    queue_ = std::move(other.queue_);
    head_ = std::exchange(other.head_, 0);
}

Listener& Listener::operator=(Listener&& other) noexcept {
    if (this != &other) {
        assert(!armed_ && !other.armed_);
        Listener tmp(std::move(other));
        std::swap(fd_, tmp.fd_);
        std::swap(queue_, tmp.queue_);
        std::swap(head_, tmp.head_);
    }
    return *this;
}

namespace {

/// `fd` leaves the reactor's hands without going through the ring (closed or given away).
void forget_descriptor(int fd) noexcept {
    if (fd >= 0 && detail::tl_impl != nullptr) {
        detail::tl_impl->forget_fd(fd);
    }
}

} // namespace

Listener::~Listener() {
    assert(!armed_ && "destroying a Listener with an armed accept: co_await close() first");
    for (std::size_t i = head_; i < queue_.size(); ++i) {
        if (queue_[i] >= 0) {
            ::close(queue_[i]);
        }
    }
    if (fd_ >= 0) {
        forget_descriptor(fd_);
        ::close(fd_);
    }
}

int Listener::release() noexcept {
    assert(!armed_ && "releasing a Listener with an armed accept");
    forget_descriptor(fd_);
    return std::exchange(fd_, -1);
}

SocketAddress Listener::local_address() const {
    SocketAddress a;
    a.length = sizeof(a.storage);
    if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&a.storage), &a.length) != 0) { // NOLINT
        throw std::system_error(errno, std::generic_category(), "getsockname");
    }
    return a;
}

void Listener::arm() noexcept {
    detail::ReactorImpl& r = detail::current_impl();
    r.own_fd(fd_);
    io_uring_sqe* s = r.sqe_for(&op_);
    multishot_ = r.features().multishot_accept;
    if (multishot_) {
        io_uring_prep_multishot_accept(s, fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (armed_once_) {
            ++r.stats().multishot_rearms;
        }
    } else {
        io_uring_prep_accept(s, fd_, nullptr, nullptr, SOCK_CLOEXEC);
    }
    armed_once_ = true;
    armed_ = true;
}

void Listener::wake() noexcept {
    if (waiter_) {
        detail::current_impl().schedule(std::exchange(waiter_, nullptr));
    }
}

void Listener::on_complete(Operation* op, int res, std::uint32_t flags) noexcept {
    Listener* self = static_cast<AcceptOp*>(op)->listener;
    if (!self->multishot_ || (flags & IORING_CQE_F_MORE) == 0) {
        self->armed_ = false;
    }
    if (res == -ECANCELED && self->closing_) {
        // the final completion of a cancelled accept: nothing to deliver
    } else if (self->closing_ && res >= 0) {
        ::close(res);
    } else {
        if (self->head_ == self->queue_.size()) {
            self->queue_.clear();
            self->head_ = 0;
        }
        self->queue_.push_back(res); // capacity kept across clears: steady state does not allocate
        self->wake();
    }
    if (!self->armed_ && self->close_waiter_) {
        detail::current_impl().schedule(std::exchange(self->close_waiter_, nullptr));
    }
}

bool Listener::AcceptAwaiter::await_ready() const noexcept {
    return listener_->head_ < listener_->queue_.size() || listener_->fd_ < 0;
}

void Listener::AcceptAwaiter::suspend(std::coroutine_handle<> h, runtime::StopToken token) {
    assert(listener_->waiter_ == nullptr && "only one coroutine may await accept()");
    listener_->waiter_ = h;
    if (!listener_->armed_ && !listener_->closing_) {
        listener_->arm();
    }
    stop_.arm(token, &on_stop, this);
}

void Listener::AcceptAwaiter::on_stop(void* self) noexcept {
    // The accept stays armed (the listener owns it); only this waiter gives up.
    static_cast<AcceptAwaiter*>(self)->listener_->wake();
}

Result<Socket> Listener::AcceptAwaiter::await_resume() {
    stop_.disarm();
    Listener& l = *listener_;
    if (l.head_ == l.queue_.size()) {
        return std::make_error_code(l.fd_ < 0 ? std::errc::bad_file_descriptor : std::errc::operation_canceled);
    }
    const int res = l.queue_[l.head_++];
    if (res < 0) {
        return make_error(res);
    }
    return Socket(res);
}

runtime::Task<> Listener::disarm() {
    if (!armed_) {
        co_return;
    }
    detail::current_impl().cancel(&op_);
    struct WaitDisarmed {
        Listener* l;
        bool await_ready() const noexcept { return !l->armed_; }
        void await_suspend(std::coroutine_handle<> h) noexcept { l->close_waiter_ = h; }
        void await_resume() const noexcept {}
    };
    co_await WaitDisarmed{this};
}

std::optional<Socket> Listener::try_accept() noexcept {
    while (head_ < queue_.size()) {
        const int res = queue_[head_++];
        if (res >= 0) {
            return Socket(res);
        }
    }
    return std::nullopt;
}

runtime::Task<> Listener::close() {
    if (fd_ < 0) {
        co_return;
    }
    closing_ = true;
    detail::ReactorImpl& r = detail::current_impl();
    if (armed_) {
        r.cancel(&op_);
        struct WaitDisarmed {
            Listener* l;
            bool await_ready() const noexcept { return !l->armed_; }
            void await_suspend(std::coroutine_handle<> h) noexcept { l->close_waiter_ = h; }
            void await_resume() const noexcept {}
        };
        co_await WaitDisarmed{this};
    }
    // Connections accepted but never handed out are closed; a waiter learns the listener is gone.
    for (std::size_t i = head_; i < queue_.size(); ++i) {
        if (queue_[i] >= 0) {
            ::close(queue_[i]);
        }
    }
    queue_.clear();
    head_ = 0;
    const int fd = std::exchange(fd_, -1);
    wake();
    (void)co_await CloseFd(fd);
    closing_ = false;
}

// ---------------------------------------------------------------------------------------------
// Socket

Socket::Socket(Socket&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {
    assert(!other.armed_ && other.waiter_ == nullptr && other.guard_.inflight == 0 &&
           "moving a Socket with an operation armed");
    head_ = std::exchange(other.head_, 0);
    count_ = std::exchange(other.count_, 0);
    slots_ = other.slots_;
    overflow_ = std::move(other.overflow_);
    no_buffers_ = other.no_buffers_;
}

Socket& Socket::operator=(Socket&& other) noexcept {
    if (this != &other) {
        Socket tmp(std::move(other));
        assert(!armed_);
        std::swap(fd_, tmp.fd_);
        std::swap(head_, tmp.head_);
        std::swap(count_, tmp.count_);
        std::swap(slots_, tmp.slots_);
        std::swap(overflow_, tmp.overflow_);
        std::swap(no_buffers_, tmp.no_buffers_);
    }
    return *this;
}

Socket::~Socket() {
    assert(!armed_ && "destroying a Socket with an armed recv: co_await close() first");
    if (count_ != 0) {
        drop_queued();
    }
    if (fd_ >= 0) {
        forget_descriptor(fd_);
        ::close(fd_);
    }
}

int Socket::release() noexcept {
    assert(!armed_);
    drop_queued();
    forget_descriptor(fd_);
    return std::exchange(fd_, -1);
}

runtime::Task<Result<Socket>> Socket::connect(SocketAddress address) {
    const int fd = ::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        co_return std::error_code(errno, std::system_category());
    }
    Socket s(fd);
    const int one = 1;
    if (address.family() != AF_UNIX) {
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    if (Result<void> r = co_await Connect(fd, address); !r) {
        co_return r.error();
    }
    co_return std::move(s);
}

void Socket::push(const Slot& slot) noexcept {
    if (count_ < slots_.size() && overflow_.empty()) {
        slots_[(head_ + count_) % slots_.size()] = slot;
        ++count_;
        return;
    }
    // More completions landed than a pause allows (they were in flight before the cancel).
    overflow_.push_back(slot); // NOLINT: rare path, documented allocation
}

Socket::Slot Socket::pop() noexcept {
    assert(count_ > 0);
    Slot s = slots_[head_];
    head_ = static_cast<std::uint8_t>((head_ + 1) % slots_.size());
    --count_;
    if (!overflow_.empty()) {
        slots_[(head_ + count_) % slots_.size()] = overflow_.front();
        ++count_;
        overflow_.erase(overflow_.begin());
    }
    return s;
}

void Socket::drop_queued() noexcept {
    detail::ReactorImpl* r = Reactor::current() != nullptr ? &detail::current_impl() : nullptr;
    while (count_ > 0) {
        Slot s = pop();
        if (r == nullptr) {
            continue;
        }
        if (s.kind == 0 && r->buffer_ring() != nullptr) {
            BufferLease drop = r->buffer_ring()->lease(s.id, 0);
        } else if (s.kind == 1) {
            r->spare().give_back(s.base);
        }
    }
}

void Socket::wake() noexcept {
    if (waiter_) {
        detail::current_impl().schedule(std::exchange(waiter_, nullptr));
    }
}

bool Socket::notify_when_ready(ReadyHook* hook) noexcept {
    assert(waiter_ == nullptr && "notify_when_ready() while a coroutine awaits recv()");
    if (count_ > 0 || fd_ < 0 || closing_) {
        return false;
    }
    hook_ = hook;
    if (!armed_) {
        arm_recv();
    }
    return true;
}

void Socket::arm_recv() noexcept {
    detail::ReactorImpl& r = detail::current_impl();
    r.own_fd(fd_);
    detail::BufferRing* ring = r.buffer_ring();
    io_uring_sqe* s = r.sqe_for(&op_);
    const bool use_ring = ring != nullptr && !no_buffers_ && ring->available() > 0;
    if (use_ring && r.features().multishot_recv) {
        io_uring_prep_recv_multishot(s, fd_, nullptr, 0, 0);
        s->flags |= IOSQE_BUFFER_SELECT;
        s->buf_group = ring->group();
        multishot_ = true;
        ++r.stats().multishot_rearms;
    } else if (use_ring) {
        io_uring_prep_recv(s, fd_, nullptr, 0, 0);
        s->flags |= IOSQE_BUFFER_SELECT;
        s->buf_group = ring->group();
        multishot_ = false;
    } else if (r.epoll_backend()) {
        // No ring (epoll): the engine takes a spare buffer only once the socket is readable
        // and stores it in spare_, so an idle connection's armed receive holds no buffer.
        io_uring_prep_recv(s, fd_, &spare_, 0, 0);
        s->flags |= IOSQE_BUFFER_SELECT;
        s->buf_group = detail::kSpareBufferGroup;
        multishot_ = false;
        no_buffers_ = false;
    } else {
        // No ring, or it ran dry: a one-shot recv into a spare buffer of its own.
        spare_ = r.spare().take();
        io_uring_prep_recv(s, fd_, spare_, r.spare().buffer_size(), 0);
        multishot_ = false;
        no_buffers_ = false; // try the ring again next time
    }
    armed_ = true;
    paused_ = false;
}

void Socket::on_recv(Operation* op, int res, std::uint32_t flags) noexcept {
    Socket* self = static_cast<RecvOp*>(op)->socket;
    detail::ReactorImpl& r = detail::current_impl();
    const bool more = self->multishot_ && (flags & IORING_CQE_F_MORE) != 0;
    if (!more) {
        self->armed_ = false;
    }
    char* spare = std::exchange(self->spare_, more ? self->spare_ : nullptr);
    if ((flags & IORING_CQE_F_BUFFER) != 0) {
        const auto id = static_cast<std::uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
        if (res > 0) {
            ++r.stats().buffers_leased;
            self->push(Slot{nullptr, static_cast<std::uint32_t>(res), id, 0});
        } else {
            BufferLease unused = r.buffer_ring()->lease(id, 0); // back to the ring at once
        }
    } else if (spare != nullptr) {
        if (res > 0) {
            self->push(Slot{spare, static_cast<std::uint32_t>(res), 0, 1});
        } else {
            r.spare().give_back(spare);
        }
    }
    if (res == 0) {
        self->push(Slot{nullptr, 0, 0, 2});
    } else if (res == -ENOBUFS) {
        ++r.stats().buffer_ring_exhausted;
        self->no_buffers_ = true; // next arm uses a spare buffer instead of spinning on the ring
    } else if (res == -ECANCELED && (self->paused_ || self->closing_)) {
        // our own pause or close: not an error for the reader
    } else if (res < 0) {
        self->push(Slot{nullptr, static_cast<std::uint32_t>(-res), 0, 3});
    }
    if (self->armed_ && self->multishot_ && !self->paused_ && self->count_ >= kMaxQueued) {
        self->paused_ = true; // the reader is behind: stop taking ring buffers for this socket
        r.cancel(&self->op_);
    }
    if (self->count_ > 0) {
        self->wake();
        if (self->hook_ != nullptr) {
            ReadyHook* hook = std::exchange(self->hook_, nullptr);
            hook->fire(hook); // may start a coroutine that consumes (not inline: scheduled)
        }
    } else if (!self->armed_ && (self->waiter_ || self->hook_ != nullptr) && !self->closing_) {
        self->arm_recv(); // ended without data (-ENOBUFS, paused): the waiter still wants bytes
    }
    if (!self->armed_ && self->close_waiter_) {
        r.schedule(std::exchange(self->close_waiter_, nullptr));
    }
}

bool Socket::RecvAwaiter::await_ready() const noexcept {
    return socket_->count_ > 0 || socket_->fd_ < 0 || socket_->closing_;
}

void Socket::RecvAwaiter::suspend(std::coroutine_handle<> h, runtime::StopToken token) {
    assert(socket_->waiter_ == nullptr && "only one coroutine may await recv()");
    socket_->waiter_ = h;
    if (!socket_->armed_) {
        socket_->arm_recv();
    }
    stop_.arm(token, &on_stop, this);
}

void Socket::RecvAwaiter::on_stop(void* self) noexcept {
    // The recv stays armed (the socket owns it); the waiter resumes with operation_canceled.
    static_cast<RecvAwaiter*>(self)->socket_->wake();
}

Result<BufferLease> Socket::RecvAwaiter::await_resume() {
    stop_.disarm();
    Socket& s = *socket_;
    if (s.count_ == 0) {
        return std::make_error_code(s.fd_ < 0 ? std::errc::bad_file_descriptor : std::errc::operation_canceled);
    }
    if (s.closing_) {
        return std::make_error_code(std::errc::operation_canceled); // close() owns what is queued
    }
    const Slot slot = s.pop();
    detail::ReactorImpl& r = detail::current_impl();
    switch (slot.kind) {
    case 0:
        return r.buffer_ring()->lease(slot.id, slot.len);
    case 1:
        return r.spare().lease(slot.base, slot.len);
    case 2:
        s.push(slot); // end of stream is sticky: every later recv sees it too
        return BufferLease{};
    default:
        return std::error_code(static_cast<int>(slot.len), std::system_category());
    }
}

runtime::Task<> Socket::close() {
    if (fd_ < 0) {
        co_return;
    }
    closing_ = true;
    guard_.closing = true;
    hook_ = nullptr;
    wake(); // a reader waiting for bytes learns the socket is closing
    detail::ReactorImpl& r = detail::current_impl();
    r.cancel_fd(fd_); // every operation on the descriptor, ours and other coroutines'
    if (armed_) {
        struct WaitDisarmed {
            Socket* s;
            bool await_ready() const noexcept { return !s->armed_; }
            void await_suspend(std::coroutine_handle<> h) noexcept { s->close_waiter_ = h; }
            void await_resume() const noexcept {}
        };
        co_await WaitDisarmed{this};
    }
    // One-shot operations started through this socket (a send another coroutine awaits) must
    // reach their final completion before the descriptor number can be reused.
    while (guard_.inflight != 0) {
        struct WaitIdle {
            detail::SocketGuard* g;
            bool await_ready() const noexcept { return g->inflight == 0; }
            void await_suspend(std::coroutine_handle<> h) noexcept { g->idle_waiter = h; }
            void await_resume() const noexcept {}
        };
        co_await WaitIdle{&guard_};
    }
    drop_queued();
    const int fd = std::exchange(fd_, -1);
    wake();
    (void)co_await CloseFd(fd);
    closing_ = false;
    guard_.closing = false;
}

} // namespace ringwork::io
