// SPDX-License-Identifier: MIT
// Unit tests for io_uring being unavailable (a seccomp filter denies io_uring_setup in a child
// process) and for invalid reactor configuration (environment and ReactorOptions).
#include <ringwork/http/server.hpp>
#include <ringwork/io/reactor.hpp>
#include <ringwork/io/runtime.hpp>
#include <ringwork/runtime/task.hpp>

#include "helpers.hpp"

#include <arpa/inet.h>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <doctest/doctest.h>
#include <exception>
#include <fcntl.h>
#include <functional>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <optional>
#include <poll.h>
#include <signal.h>
#include <stdexcept>
#include <string>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace {

using ringwork::io::IoUringUnavailable;
using ringwork::io::Reactor;
using ringwork::io::ReactorOptions;

#if defined(__x86_64__)
constexpr bool kHaveSeccompFilter = true;
constexpr std::uint32_t kAuditArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr bool kHaveSeccompFilter = true;
constexpr std::uint32_t kAuditArch = AUDIT_ARCH_AARCH64;
#else
constexpr bool kHaveSeccompFilter = false;
constexpr std::uint32_t kAuditArch = 0;
#endif

// Child exit codes (anything else is a crash, a signal or a timeout).
constexpr int kChildCaught = 0;       // caught exactly IoUringUnavailable
constexpr int kChildFilterFailed = 2; // could not install the seccomp filter
constexpr int kChildNoException = 3;  // the reactor came up despite the filter
constexpr int kChildOtherException = 4;

constexpr auto kChildDeadline = std::chrono::seconds(20);

// linux/filter.h's BPF_STMT/BPF_JUMP use C casts; these build the same instructions.
constexpr sock_filter bpf_stmt(std::uint16_t code, std::uint32_t k) noexcept {
    return sock_filter{code, 0, 0, k};
}
constexpr sock_filter bpf_jump(std::uint16_t code, std::uint32_t k, std::uint8_t jt,
                               std::uint8_t jf) noexcept {
    return sock_filter{code, jt, jf, k};
}

/// Install a classic-BPF seccomp filter that makes io_uring_setup fail with `err` and allows
/// every other system call. Returns false (errno set) if the kernel refused the filter.
bool deny_io_uring_setup(int err) {
    constexpr auto ld_w_abs = static_cast<std::uint16_t>(BPF_LD | BPF_W | BPF_ABS);
    constexpr auto jeq_k = static_cast<std::uint16_t>(BPF_JMP | BPF_JEQ | BPF_K);
    constexpr auto ret_k = static_cast<std::uint16_t>(BPF_RET | BPF_K);
    const std::uint32_t deny =
        SECCOMP_RET_ERRNO | (static_cast<std::uint32_t>(err) & SECCOMP_RET_DATA);
    const auto nr = static_cast<std::uint32_t>(__NR_io_uring_setup);
#if defined(__x86_64__)
    // The x32 ABI reaches the same system call with bit 30 set and the same audit arch.
    const std::uint32_t nr_alias = nr | 0x40000000U; // __X32_SYSCALL_BIT
#else
    const std::uint32_t nr_alias = nr;
#endif
    sock_filter filter[] = {
        // Foreign syscall conventions are allowed untouched: only the native nr is known.
        bpf_stmt(ld_w_abs, offsetof(seccomp_data, arch)),
        bpf_jump(jeq_k, kAuditArch, 1, 0),
        bpf_stmt(ret_k, SECCOMP_RET_ALLOW),
        bpf_stmt(ld_w_abs, offsetof(seccomp_data, nr)),
        bpf_jump(jeq_k, nr, 1, 0),
        bpf_jump(jeq_k, nr_alias, 0, 1),
        bpf_stmt(ret_k, deny),
        bpf_stmt(ret_k, SECCOMP_RET_ALLOW),
    };
    sock_fprog program{};
    program.len = static_cast<unsigned short>(sizeof filter / sizeof filter[0]);
    program.filter = filter;
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1UL, 0UL, 0UL, 0UL) != 0) {
        return false;
    }
    return ::prctl(PR_SET_SECCOMP, static_cast<unsigned long>(SECCOMP_MODE_FILTER), &program, 0UL,
                   0UL) == 0;
}

void write_all(int fd, const std::string& text) {
    std::size_t done = 0;
    while (done < text.size()) {
        const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return;
        }
        done += static_cast<std::size_t>(n);
    }
}

struct ChildOutcome {
    bool timed_out = false;
    int status = 0;   ///< raw waitpid status
    std::string text; ///< what the child wrote: "<errno>:<what()>"

    [[nodiscard]] bool exited_with(int code) const {
        return !timed_out && WIFEXITED(status) && WEXITSTATUS(status) == code;
    }
    [[nodiscard]] std::string describe() const {
        if (timed_out) {
            return "child timed out and was killed";
        }
        if (WIFSIGNALED(status)) {
            return "child killed by signal " + std::to_string(WTERMSIG(status));
        }
        return "child exit status " + std::to_string(WEXITSTATUS(status)) + ", wrote: " + text;
    }
    /// The errno the child reported (-1 when absent).
    [[nodiscard]] int reported_errno() const {
        const auto colon = text.find(':');
        if (colon == std::string::npos || colon == 0) {
            return -1;
        }
        return std::atoi(text.substr(0, colon).c_str());
    }
    [[nodiscard]] std::string message() const {
        const auto colon = text.find(':');
        return colon == std::string::npos ? text : text.substr(colon + 1);
    }
};

/// Fork; in the child install the filter for `err` and run `body`, which constructs whatever
/// must fail. The child reports "<errno>:<what()>" through a pipe and its verdict in its exit
/// status. The parent collects both within kChildDeadline and kills a child that overstays.
ChildOutcome run_denied(int err, const std::function<void()>& body) {
    int fds[2] = {-1, -1};
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    std::fflush(nullptr); // nothing buffered may be written twice
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::close(fds[0]);
        int code = kChildOtherException;
        if (!deny_io_uring_setup(err)) {
            write_all(fds[1],
                      std::to_string(errno) + ":seccomp filter refused: " + std::strerror(errno));
            ::_exit(kChildFilterFailed);
        }
        try {
            body();
            write_all(fds[1], "0:no exception");
            code = kChildNoException;
        } catch (const IoUringUnavailable& e) {
            write_all(fds[1], std::to_string(e.code().value()) + ":" + e.what());
            code = kChildCaught;
        } catch (const std::exception& e) {
            write_all(fds[1], "0:other exception: " + std::string(e.what()));
            code = kChildOtherException;
        } catch (...) {
            write_all(fds[1], "0:non-standard exception");
            code = kChildOtherException;
        }
        ::close(fds[1]);
        ::_exit(code); // skip atexit handlers and doctest's state in the copy of the parent
    }
    ::close(fds[1]);

    ChildOutcome out;
    const auto deadline = std::chrono::steady_clock::now() + kChildDeadline;
    bool eof = false;
    bool reaped = false;
    while (!(eof && reaped)) {
        if (std::chrono::steady_clock::now() >= deadline) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &out.status, 0);
            out.timed_out = true;
            break;
        }
        if (!eof) {
            pollfd p{fds[0], POLLIN, 0};
            if (::poll(&p, 1, 50) > 0) {
                char buf[512];
                const ssize_t n = ::read(fds[0], buf, sizeof buf);
                if (n > 0) {
                    out.text.append(buf, static_cast<std::size_t>(n));
                } else if (n == 0 || errno != EINTR) {
                    eof = true;
                }
            }
        } else {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        if (!reaped) {
            const pid_t r = ::waitpid(pid, &out.status, WNOHANG);
            reaped = (r == pid) || (r < 0 && errno != EINTR);
        }
    }
    ::close(fds[0]);
    return out;
}

ringwork::runtime::Task<> never_called(Reactor& /*reactor*/, unsigned /*index*/) {
    co_return;
}

/// io_uring forced (the epoll variants of the suite set RINGWORK_BACKEND=epoll: ignored here).
ReactorOptions io_uring_only() {
    ReactorOptions o;
    o.backend = ringwork::io::Backend::io_uring;
    o.apply_environment = false;
    return o;
}

void construct_reactor() {
    Reactor reactor(io_uring_only());
}

void run_runtime_with_two_threads() {
    ringwork::io::Runtime runtime(ringwork::io::RuntimeOptions{.threads = 2, .reactor = io_uring_only()});
    runtime.run(&never_called);
}

[[noreturn]] void child_fail(const std::string& what) { throw std::runtime_error(what); }

/// Point stderr at a temporary file; return its descriptor (read it back with read_back()).
int capture_stderr() {
    char path[] = "/tmp/ringwork-stderr-XXXXXX";
    const int fd = ::mkstemp(path);
    if (fd < 0) {
        child_fail("mkstemp");
    }
    ::unlink(path);
    std::fflush(stderr);
    ::dup2(fd, STDERR_FILENO);
    return fd;
}

std::string read_back(int fd) {
    std::fflush(stderr);
    std::string text;
    char buf[4096];
    ssize_t n = 0;
    off_t off = 0;
    while ((n = ::pread(fd, buf, sizeof buf, off)) > 0) {
        text.append(buf, static_cast<std::size_t>(n));
        off += n;
    }
    return text;
}

std::size_t count_of(const std::string& haystack, const std::string& needle) {
    std::size_t n = 0;
    for (auto at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) {
        ++n;
    }
    return n;
}

/// One GET over a fresh TCP connection to 127.0.0.1:`port`, read to EOF (Connection: close),
/// every step bounded by a 5 s socket timeout.
std::string get_once(std::uint16_t port, const std::string& path) {
    const int fd = test::try_connect(port, std::chrono::seconds(5));
    if (fd < 0) {
        child_fail("connect: " + std::string(std::strerror(errno)));
    }
    write_all(fd, "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    std::string reply;
    char buf[4096];
    ssize_t n = 0;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) {
        reply.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return reply;
}

/// In the child (io_uring denied): an http::Server with two reactors under `backend` serves
/// two requests on 127.0.0.1; stderr must hold exactly one line naming the fallback.
void serve_without_io_uring(ringwork::io::Backend backend) {
    ::unsetenv("RINGWORK_BACKEND"); // NOLINT(concurrency-mt-unsafe): the option decides (forked child)
    const int err_fd = capture_stderr();
    ringwork::http::ServerOptions o;
    o.backend = backend;
    ringwork::http::Server server(o);
    server.set_handler([](ringwork::http::Exchange& x) -> ringwork::runtime::Task<> {
        const auto* r = ringwork::io::Reactor::current();
        x.response.set_body(std::string("served by ") +
                              ringwork::io::to_string(r != nullptr ? r->features().backend
                                                                   : ringwork::io::Backend::automatic));
        co_return;
    });
    std::atomic<std::uint16_t> port{0};
    std::string failure;
    std::thread t([&] {
        try {
            server.listen_and_serve(ringwork::io::SocketAddress::loopback(0), 2,
                                    [&](std::uint16_t p) { port.store(p); });
        } catch (const std::exception& e) {
            failure = e.what();
            port.store(1); // wake the waiter
        }
    });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (port.load() == 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    std::string a;
    std::string b;
    if (failure.empty() && port.load() > 1) {
        a = get_once(port.load(), "/a");
        b = get_once(port.load(), "/b");
    }
    server.shutdown();
    t.join();
    if (!failure.empty()) {
        child_fail("listen_and_serve threw: " + failure);
    }
    const std::string log = read_back(err_fd);
    for (const std::string* reply : {&a, &b}) {
        if (reply->rfind("HTTP/1.1 200 OK\r\n", 0) != 0 || !reply->ends_with("served by epoll")) {
            child_fail("unexpected reply: " + *reply);
        }
    }
    const std::size_t lines = count_of(log, "using the epoll backend");
    const bool automatic = backend == ringwork::io::Backend::automatic;
    if (lines != (automatic ? 1U : 0U)) {
        child_fail("expected " + std::to_string(automatic ? 1 : 0) + " fallback line(s), stderr:\n" + log);
    }
    if (automatic && log.find("seccomp") == std::string::npos) {
        child_fail("the fallback line does not say why: " + log);
    }
}

bool contains(const std::string& haystack, const char* needle) {
    return haystack.find(needle) != std::string::npos;
}

/// Sets an environment variable for one scope and restores the previous value.
class ScopedEnv {
public:
    ScopedEnv(const char* name, const char* value)
        : name_(name) {
        if (const char* old = std::getenv(name)) { // NOLINT(concurrency-mt-unsafe)
            old_ = old;
        }
        ::setenv(name, value, 1); // NOLINT(concurrency-mt-unsafe)
    }
    ~ScopedEnv() {
        if (old_) {
            ::setenv(name_, old_->c_str(), 1); // NOLINT(concurrency-mt-unsafe)
        } else {
            ::unsetenv(name_); // NOLINT(concurrency-mt-unsafe)
        }
    }
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;

private:
    const char* name_;
    std::optional<std::string> old_;
};

/// The std::invalid_argument message of constructing a reactor with `options`.
std::string invalid_argument_of(const ReactorOptions& options) {
    try {
        Reactor reactor(options);
    } catch (const std::invalid_argument& e) {
        return e.what();
    } catch (const std::exception& e) {
        FAIL("expected std::invalid_argument, got: " << e.what());
    }
    FAIL("expected std::invalid_argument, the reactor was constructed");
    return {};
}

} // namespace

TEST_CASE("Reactor throws IoUringUnavailable when seccomp answers EPERM to io_uring_setup") {
    if (!kHaveSeccompFilter) {
        MESSAGE("skipped: no seccomp filter for this architecture");
        return;
    }
    const ChildOutcome out = run_denied(EPERM, construct_reactor);
    INFO(out.describe());
    REQUIRE(out.exited_with(kChildCaught));
    CHECK(out.reported_errno() == EPERM);
    const std::string msg = out.message();
    CHECK(contains(msg, "kernel.io_uring_disabled"));
    CHECK(contains(msg, "seccomp"));
    CHECK(contains(msg, "Fix:"));
}

TEST_CASE("Reactor throws IoUringUnavailable when seccomp answers ENOSYS to io_uring_setup") {
    if (!kHaveSeccompFilter) {
        MESSAGE("skipped: no seccomp filter for this architecture");
        return;
    }
    const ChildOutcome out = run_denied(ENOSYS, construct_reactor);
    INFO(out.describe());
    REQUIRE(out.exited_with(kChildCaught));
    CHECK(out.reported_errno() == ENOSYS);
    const std::string msg = out.message();
    CHECK(contains(msg, "seccomp"));
    CHECK(contains(msg, "Docker"));
    CHECK(contains(msg, "kernel"));
    CHECK(contains(msg, "Fix:"));
}

TEST_CASE("Runtime with two threads rethrows IoUringUnavailable from run() without hanging") {
    if (!kHaveSeccompFilter) {
        MESSAGE("skipped: no seccomp filter for this architecture");
        return;
    }
    for (const int err : {EPERM, ENOSYS}) {
        CAPTURE(err);
        const ChildOutcome out = run_denied(err, run_runtime_with_two_threads);
        INFO(out.describe());
        REQUIRE(out.exited_with(kChildCaught));
        CHECK(out.reported_errno() == err);
        CHECK(contains(out.message(), "seccomp"));
    }
}

TEST_CASE("Without io_uring an automatic Server falls back to epoll, says why once, and serves") {
    if (!kHaveSeccompFilter) {
        MESSAGE("skipped: no seccomp filter for this architecture");
        return;
    }
    for (const int err : {EPERM, ENOSYS}) {
        CAPTURE(err);
        const ChildOutcome out = run_denied(err, [] { serve_without_io_uring(ringwork::io::Backend::automatic); });
        INFO(out.describe());
        CHECK(out.exited_with(kChildNoException));
    }
}

TEST_CASE("Without io_uring a Server forced to epoll serves and logs no fallback line") {
    if (!kHaveSeccompFilter) {
        MESSAGE("skipped: no seccomp filter for this architecture");
        return;
    }
    const ChildOutcome out = run_denied(EPERM, [] { serve_without_io_uring(ringwork::io::Backend::epoll); });
    INFO(out.describe());
    CHECK(out.exited_with(kChildNoException));
}

TEST_CASE("A Server forced to io_uring where it is denied fails at start with the cause") {
    if (!kHaveSeccompFilter) {
        MESSAGE("skipped: no seccomp filter for this architecture");
        return;
    }
    const ChildOutcome out = run_denied(EPERM, [] {
        ::unsetenv("RINGWORK_BACKEND"); // NOLINT(concurrency-mt-unsafe): the option decides (forked child)
        ringwork::http::ServerOptions o;
        o.backend = ringwork::io::Backend::io_uring;
        ringwork::http::Server server(o);
        server.set_handler([](ringwork::http::Exchange&) -> ringwork::runtime::Task<> { co_return; });
        server.listen_and_serve(ringwork::io::SocketAddress::loopback(0), 1);
    });
    INFO(out.describe());
    REQUIRE(out.exited_with(kChildCaught));
    CHECK(out.reported_errno() == EPERM);
    CHECK(contains(out.message(), "seccomp"));
}

TEST_CASE("A Reactor forced to epoll needs no io_uring and names its backend") {
    ReactorOptions o;
    o.backend = ringwork::io::Backend::epoll;
    o.apply_environment = false;
    Reactor reactor(o);
    CHECK(reactor.features().backend == ringwork::io::Backend::epoll);
    CHECK(reactor.features().fallback_reason.empty());
    CHECK(contains(reactor.features().describe(), "backend=epoll"));
    CHECK_FALSE(reactor.features().buffer_ring);
}

TEST_CASE("An invalid RINGWORK_BACKEND value throws std::invalid_argument naming it") {
    const ScopedEnv env("RINGWORK_BACKEND", "kqueue");
    const std::string msg = invalid_argument_of(ReactorOptions{});
    CHECK(contains(msg, "RINGWORK_BACKEND"));
    CHECK(contains(msg, "kqueue"));
}

TEST_CASE("An invalid RINGWORK_IO_URING_SETUP value throws std::invalid_argument naming it") {
    const ScopedEnv env("RINGWORK_IO_URING_SETUP", "bogus");
    const std::string msg = invalid_argument_of(ReactorOptions{});
    CHECK(contains(msg, "RINGWORK_IO_URING_SETUP"));
    CHECK(contains(msg, "bogus"));
}

TEST_CASE("Invalid ReactorOptions throw std::invalid_argument naming the field") {
    ReactorOptions o;
    o.apply_environment = false;

    SUBCASE("sq_entries not a power of two, with an invalid buffer_count too") {
        o.sq_entries = 3;
        o.buffer_count = 1000;
        CHECK(contains(invalid_argument_of(o), "sq_entries"));
    }
    SUBCASE("sq_entries not a power of two") {
        o.sq_entries = 3;
        const std::string msg = invalid_argument_of(o);
        CHECK(contains(msg, "sq_entries"));
        CHECK(contains(msg, "3"));
    }
    SUBCASE("buffer_count not a power of two") {
        o.buffer_count = 1000;
        const std::string msg = invalid_argument_of(o);
        CHECK(contains(msg, "buffer_count"));
        CHECK(contains(msg, "1000"));
    }
}
