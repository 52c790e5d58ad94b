// SPDX-License-Identifier: MIT
// Sockets over loopback: accept, multishot recv into the buffer ring, send, partial writes,
// resets, a 4-buffer ring shared by 64 clients, close with operations in flight, 5,000 accepts.
#include <ringwork/io/reactor.hpp>
#include <ringwork/io/socket.hpp>
#include <ringwork/io/timer.hpp>

#include "helpers.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <numeric>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using ringwork::io::Listener;
using ringwork::io::Reactor;
using ringwork::io::ReactorOptions;
using ringwork::io::Socket;
using ringwork::io::SocketAddress;
using ringwork::runtime::Task;

namespace {

Listener listen_any() { return Listener::bind(SocketAddress::loopback(0)); }

/// Echo every byte back until EOF; returns the bytes echoed.
Task<std::size_t> echo(Socket s) {
    std::size_t total = 0;
    for (;;) {
        auto lease = co_await s.recv();
        if (!lease || lease->empty()) {
            break;
        }
        const std::string copy(lease->view());
        lease->release();
        total += copy.size();
        if (!co_await s.send(copy)) {
            break;
        }
    }
    co_await s.close();
    co_return total;
}

Task<> echo_server(Listener* l, int connections, std::size_t* total) {
    for (int i = 0; i < connections; ++i) {
        auto s = co_await l->accept();
        REQUIRE(s);
        ringwork::io::spawn([](Socket sock, std::size_t* t) -> Task<> { *t += co_await echo(std::move(sock)); }(
            std::move(*s), total));
    }
}

} // namespace

TEST_SUITE("socket") {
    TEST_CASE("SocketAddress parses and prints IPv4 and IPv6") {
        auto a = SocketAddress::parse("127.0.0.1:8080");
        REQUIRE(a);
        CHECK(a->port() == 8080);
        CHECK(a->to_string() == "127.0.0.1:8080");
        auto b = SocketAddress::parse("[::1]:443");
        REQUIRE(b);
        CHECK(b->to_string() == "[::1]:443");
        CHECK_FALSE(SocketAddress::parse("localhost"));
        CHECK_FALSE(SocketAddress::parse("1.2.3.4:99999"));
        CHECK_FALSE(SocketAddress::parse("1.2.3.4:"));
    }

    TEST_CASE("echo over loopback with coroutine clients on the same reactor") {
        Reactor reactor;
        auto listener = listen_any();
        const auto where = listener.local_address();
        std::size_t echoed = 0;
        reactor.spawn(echo_server(&listener, 3, &echoed));
        auto client = [](SocketAddress addr, int id) -> Task<bool> {
            auto s = co_await Socket::connect(addr);
            REQUIRE(s);
            bool ok = true;
            for (int i = 0; i < 50; ++i) {
                const std::string msg = "client " + std::to_string(id) + " message " + std::to_string(i) + "\n";
                ok = ok && (co_await s->send(msg)).has_value();
                std::string got;
                while (ok && got.size() < msg.size()) {
                    auto lease = co_await s->recv();
                    ok = lease && !lease->empty();
                    if (ok) {
                        got += lease->view();
                    }
                }
                ok = ok && got == msg;
            }
            co_await s->close();
            co_return ok;
        };
        const bool all = reactor.run_until_complete([](decltype(client) c, SocketAddress a) -> Task<bool> {
            auto t1 = c(a, 1);
            auto t2 = c(a, 2);
            auto t3 = c(a, 3);
            const bool r1 = co_await std::move(t1);
            const bool r2 = co_await std::move(t2);
            const bool r3 = co_await std::move(t3);
            co_return r1 && r2 && r3;
        }(client, where));
        CHECK(all);
        reactor.run_until_complete([](Listener* l) -> Task<> {
            for (int i = 0; i < 100; ++i) {
                co_await ringwork::io::sleep_for(1ms); // let the echo tasks see EOF
            }
            co_await l->close();
        }(&listener));
        CHECK(echoed > 0);
        CHECK(reactor.detached_count() == 0);
    }

    TEST_CASE("a large send completes fully across partial writes to a slow reader") {
        Reactor reactor;
        auto listener = listen_any();
        const auto port = listener.local_address().port();
        const std::size_t size = 32U << 20; // far beyond the socket buffers
        std::string payload(size, '\0');
        for (std::size_t i = 0; i < size; ++i) {
            payload[i] = static_cast<char>('a' + i % 26);
        }
        std::atomic<std::size_t> received{0};
        std::atomic<bool> intact{true};
        std::thread reader([&] {
            const int fd = test::connect_blocking(port);
            std::vector<char> buf(1 << 16);
            std::size_t got = 0;
            while (got < size) {
                if (got < size / 4) {
                    std::this_thread::sleep_for(50us); // slow at first: forces partial sends
                }
                const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
                if (n <= 0) {
                    break;
                }
                for (ssize_t i = 0; i < n; ++i) {
                    if (buf[static_cast<std::size_t>(i)] != static_cast<char>('a' + (got + static_cast<std::size_t>(i)) % 26)) {
                        intact = false;
                    }
                }
                got += static_cast<std::size_t>(n);
            }
            received = got;
            ::close(fd);
        });
        auto sent = reactor.run_until_complete([](Listener* l, const std::string* p) -> Task<std::size_t> {
            auto s = co_await l->accept();
            REQUIRE(s);
            auto r = co_await s->send(std::string_view(*p));
            co_await s->close();
            co_return r.value_or(0);
        }(&listener, &payload));
        reader.join();
        CHECK(sent == size);
        CHECK(received.load() == size);
        CHECK(intact.load());
        reactor.run_until_complete(listener.close());
    }

    TEST_CASE("sendmsg sends every iovec in order") {
        Reactor reactor;
        auto listener = listen_any();
        const auto port = listener.local_address().port();
        std::string got;
        std::thread reader([&] {
            const int fd = test::connect_blocking(port);
            got = test::read_exactly(fd, 3 * 100000);
            ::close(fd);
        });
        const std::string a(100000, 'a');
        const std::string b(100000, 'b');
        const std::string c(100000, 'c');
        auto r = reactor.run_until_complete([](Listener* l, const std::string* x, const std::string* y,
                                               const std::string* z) -> Task<std::size_t> {
            auto s = co_await l->accept();
            REQUIRE(s);
            iovec iov[3] = {{const_cast<char*>(x->data()), x->size()}, // NOLINT
                            {const_cast<char*>(y->data()), y->size()}, // NOLINT
                            {const_cast<char*>(z->data()), z->size()}}; // NOLINT
            auto res = co_await s->send(std::span<iovec>(iov));
            co_await s->close();
            co_return res.value_or(0);
        }(&listener, &a, &b, &c));
        reader.join();
        CHECK(r == 300000);
        CHECK(got == a + b + c);
        reactor.run_until_complete(listener.close());
    }

    TEST_CASE("a peer reset mid-send gives an error, not SIGPIPE") {
        Reactor reactor;
        auto listener = listen_any();
        const auto port = listener.local_address().port();
        std::atomic<bool> connected{false};
        std::thread peer([&] {
            const int fd = test::connect_blocking(port);
            connected = true;
            char buf[1024];
            (void)::recv(fd, buf, sizeof buf, 0); // take a little, then reset
            test::reset_close(fd);
        });
        auto result = reactor.run_until_complete([](Listener* l) -> Task<std::error_code> {
            auto s = co_await l->accept();
            REQUIRE(s);
            const std::string big(64U << 20, 'x');
            std::error_code ec;
            for (int i = 0; i < 10 && !ec; ++i) {
                auto r = co_await s->send(big);
                ec = r.error();
            }
            co_await s->close();
            co_return ec;
        }(&listener));
        peer.join();
        CHECK(result);
        CHECK((result == std::errc::connection_reset || result == std::errc::broken_pipe));
        reactor.run_until_complete(listener.close());
    }

    TEST_CASE("a 4-buffer ring shared by 64 clients delivers every byte") {
        ReactorOptions options;
        options.buffer_count = 4;
        options.buffer_size = 256;
        Reactor reactor(options);
        auto listener = listen_any();
        const auto port = listener.local_address().port();
        std::size_t echoed = 0;
        reactor.spawn(echo_server(&listener, 64, &echoed));
        std::atomic<int> good{0};
        std::thread load([&] {
            std::vector<std::thread> clients;
            for (int c = 0; c < 64; ++c) {
                clients.emplace_back([&, c] {
                    const int fd = test::connect_blocking(port);
                    bool ok = true;
                    for (int i = 0; i < 20 && ok; ++i) {
                        const std::string msg(100 + (c * 7 + i) % 900, static_cast<char>('A' + c % 26));
                        ok = test::write_all(fd, msg) && test::read_exactly(fd, msg.size()) == msg;
                    }
                    ::close(fd);
                    if (ok) {
                        good.fetch_add(1);
                    }
                });
            }
            for (auto& t : clients) {
                t.join();
            }
        });
        reactor.run_until_complete([](std::atomic<int>* g, Listener* l) -> Task<> {
            for (int i = 0; i < 30000 && g->load() < 64; ++i) {
                co_await ringwork::io::sleep_for(1ms);
            }
            for (int i = 0; i < 50; ++i) {
                co_await ringwork::io::sleep_for(1ms);
            }
            co_await l->close();
        }(&good, &listener));
        load.join();
        CHECK(good.load() == 64);
        const auto stats = reactor.stats();
        MESSAGE("ENOBUFS " << stats.buffer_ring_exhausted << ", spare allocations " << stats.spare_buffer_allocs
                           << ", leased " << stats.buffers_leased);
        CHECK(reactor.detached_count() == 0);
    }

    TEST_CASE("epoll backend: a parked receive takes no buffer until its socket is readable") {
        // Each armed receive of the epoll backend used to own a spare buffer (4 KiB) from the
        // moment it was armed: every idle keep-alive connection held one. The engine now takes
        // it from the spare pool when the socket is readable, so 32 parked receives allocate
        // exactly one buffer (the first probe's: a new descriptor counts as readable until a
        // recv says EAGAIN, and the buffer goes back to the pool then); bytes, an end of stream
        // and a reset on three sockets need at most one more (ASan's leak check sees a buffer
        // lost on any of those paths).
        ReactorOptions o;
        o.backend = ringwork::io::Backend::epoll;
        o.apply_environment = false;
        Reactor reactor(o);
        auto listener = listen_any();
        const auto port = listener.local_address().port();
        constexpr int kConns = 32;
        std::vector<int> clients;
        for (int i = 0; i < kConns; ++i) {
            clients.push_back(test::connect_blocking(port));
        }
        struct Hook : Socket::ReadyHook {
            int fired = 0;
        };
        struct Seen {
            std::uint64_t parked = 0; // spare allocations with every receive parked
            std::uint64_t after = 0;  // after a byte, an end of stream and a reset arrived
            int fired = 0;
            std::size_t bytes = 0;
            bool eof = false;   // socket 3: its client shut down its side
            bool reset = false; // socket 5: its client closed with SO_LINGER 0
        };
        const std::uint64_t before = reactor.stats().spare_buffer_allocs;
        const Seen seen = reactor.run_until_complete(
            [](Listener* l, Reactor* r, std::vector<int>* cl) -> Task<Seen> {
                Seen out;
                std::vector<Socket> socks;
                for (int i = 0; i < kConns; ++i) {
                    auto s = co_await l->accept();
                    REQUIRE(s);
                    socks.push_back(std::move(*s));
                }
                std::vector<Hook> hooks(kConns);
                for (int i = 0; i < kConns; ++i) {
                    hooks[i].fire = [](Socket::ReadyHook* h) noexcept { ++static_cast<Hook*>(h)->fired; };
                    CHECK(socks[i].notify_when_ready(&hooks[i]));
                }
                // The receives are submitted at the next pass and parked by the engine.
                for (int k = 0; k < 5; ++k) {
                    co_await ringwork::io::sleep_for(1ms);
                }
                out.parked = r->stats().spare_buffer_allocs;
                CHECK(::send((*cl)[7], "x", 1, MSG_NOSIGNAL) == 1);
                CHECK(::shutdown((*cl)[3], SHUT_WR) == 0);
                const linger abort{1, 0};
                CHECK(::setsockopt((*cl)[5], SOL_SOCKET, SO_LINGER, &abort, sizeof abort) == 0);
                ::close(std::exchange((*cl)[5], -1));
                const auto deadline = std::chrono::steady_clock::now() + 20s;
                while ((hooks[7].fired == 0 || hooks[3].fired == 0 || hooks[5].fired == 0) &&
                       std::chrono::steady_clock::now() < deadline) {
                    co_await ringwork::io::sleep_for(1ms);
                }
                for (const Hook& h : hooks) {
                    out.fired += h.fired;
                }
                {
                    auto lease = co_await socks[7].recv();
                    if (lease) {
                        out.bytes = lease->size();
                    }
                }
                {
                    auto end = co_await socks[3].recv();
                    out.eof = end.has_value() && end->empty();
                }
                {
                    auto err = co_await socks[5].recv();
                    out.reset = !err.has_value() || err->empty(); // ECONNRESET, or an end
                }
                out.after = r->stats().spare_buffer_allocs;
                for (int i = 0; i < kConns; ++i) {
                    socks[i].cancel_notify();
                    co_await socks[i].close();
                }
                co_return out;
            }(&listener, &reactor, &clients));
        for (const int fd : clients) {
            if (fd >= 0) {
                ::close(fd);
            }
        }
        CHECK(seen.fired == 3);
        CHECK(seen.bytes == 1);
        CHECK(seen.eof);
        CHECK(seen.reset);
        CHECK(seen.parked - before == 1);
        // Socket 7's byte holds its buffer until it is read (after all three arrived), so a
        // probe of socket 3 or 5 that comes after it takes a second one, given back at once.
        CHECK(seen.after - before <= 2);
    }

    TEST_CASE("closing a socket with operations in flight resumes every waiter") {
        Reactor reactor;
        auto listener = listen_any();
        const auto port = listener.local_address().port();
        const int client = test::connect_blocking(port);
        auto outcome = reactor.run_until_complete([](Listener* l) -> Task<std::pair<bool, bool>> {
            auto s = co_await l->accept();
            REQUIRE(s);
            bool recv_ended = false;
            bool send_ended = false;
            // One coroutine waits in recv (nothing will arrive), another in a send that cannot
            // finish (the peer never reads), then the socket is closed under them.
            ringwork::io::spawn([](Socket* sock, bool* done) -> Task<> {
                auto r = co_await sock->recv();
                *done = !r || r->empty();
            }(&*s, &recv_ended));
            // Through the socket (guarded): a raw SendAll on the bare fd would resubmit its
            // rest after a partial completion that raced with the cancel, and hang.
            ringwork::io::spawn([](Socket* sock, bool* done) -> Task<> {
                const std::string big(64U << 20, 'y');
                auto r = co_await sock->send(big);
                *done = !r.has_value();
            }(&*s, &send_ended));
            co_await ringwork::io::sleep_for(20ms);
            co_await s->close();
            // Bounded generously (a loaded 2-core CI machine), ends as soon as both resumed.
            const auto deadline = std::chrono::steady_clock::now() + 20s;
            while (!(recv_ended && send_ended) && std::chrono::steady_clock::now() < deadline) {
                co_await ringwork::io::sleep_for(1ms);
            }
            co_return std::pair{recv_ended, send_ended};
        }(&listener));
        ::close(client);
        CHECK(outcome.first);
        CHECK(outcome.second);
        CHECK(reactor.detached_count() == 0);
        reactor.run_until_complete(listener.close());
    }

    TEST_CASE("a send in flight when its socket closes never reaches a later connection on the same fd") {
        Reactor reactor;
        auto listener = listen_any();
        // An unrelated service whose peer counts every byte it is sent.
        auto other = listen_any();
        const auto other_port = other.local_address().port();
        std::atomic<long> foreign{0};
        std::thread counter([&] {
            const int c = ::accept(other.fd(), nullptr, nullptr);
            timeval tv{1, 0};
            ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            char buf[65536];
            for (;;) {
                const ssize_t n = ::recv(c, buf, sizeof buf, 0);
                if (n <= 0) {
                    break;
                }
                foreign += n;
            }
            ::close(c);
        });
        const int quiet_peer = test::connect_blocking(listener.local_address().port()); // never reads
        bool send_failed = false;
        reactor.run_until_complete([](Listener* l, std::uint16_t port2, bool* failed) -> Task<> {
            auto s = co_await l->accept();
            REQUIRE(s);
            Socket sock = std::move(*s);
            ringwork::io::spawn([](Socket* so, bool* f) -> Task<> {
                const std::string big(16U << 20, 'A');
                auto res = co_await so->send(big); // partial writes: the peer does not read
                *f = !res.has_value();
            }(&sock, failed));
            co_await ringwork::io::sleep_for(20ms);
            co_await sock.close(); // waits for the send's final completion
            const int fresh = test::connect_blocking(port2); // likely reuses the descriptor number
            co_await ringwork::io::sleep_for(100ms);
            ::close(fresh);
        }(&listener, other_port, &send_failed));
        counter.join();
        ::close(quiet_peer);
        CHECK(send_failed);
        CHECK(foreign.load() == 0);
        reactor.run_until_complete(listener.close());
        reactor.run_until_complete(other.close());
    }

    TEST_CASE("recv() called while close() runs does not re-arm the socket") {
        Reactor reactor;
        auto listener = listen_any();
        const int peer = test::connect_blocking(listener.local_address().port());
        int reads = 0;
        reactor.run_until_complete([](Listener* l, int* n) -> Task<> {
            auto s = co_await l->accept();
            REQUIRE(s);
            Socket sock = std::move(*s);
            // A reader that keeps asking for bytes, even after its recv fails.
            ringwork::io::spawn([](Socket* so, int* count) -> Task<> {
                for (int i = 0; i < 5; ++i) {
                    auto r = co_await so->recv();
                    ++*count;
                    (void)r;
                }
            }(&sock, n));
            co_await ringwork::io::sleep_for(10ms);
            co_await sock.close(); // must end with nothing armed (~Socket asserts it)
            co_await ringwork::io::sleep_for(10ms);
        }(&listener, &reads));
        ::close(peer);
        CHECK(reads == 5);
        CHECK(reactor.detached_count() == 0);
        reactor.run_until_complete(listener.close());
    }

    TEST_CASE("a stop token cancels a pending one-shot recv at its final completion") {
        Reactor reactor;
        auto listener = listen_any();
        const int client = test::connect_blocking(listener.local_address().port());
        auto ec = reactor.run_until_complete([](Listener* l) -> Task<std::error_code> {
            auto s = co_await l->accept();
            REQUIRE(s);
            ringwork::runtime::StopSource source;
            ringwork::io::spawn([](ringwork::runtime::StopSource* src) -> Task<> {
                co_await ringwork::io::sleep_for(10ms);
                src->request_stop();
            }(&source));
            char buf[16];
            auto wait = [](int fd, char* b) -> Task<std::error_code> {
                auto r = co_await ringwork::io::RecvSome(fd, std::span<char>(b, 16));
                co_return r.error();
            };
            auto t = wait(s->fd(), buf).with_stop_token(ringwork::runtime::StopToken(source));
            auto e = co_await std::move(t);
            co_await s->close();
            co_return e;
        }(&listener));
        ::close(client);
        CHECK(ec == std::errc::operation_canceled);
        reactor.run_until_complete(listener.close());
    }

    TEST_CASE("multishot accept takes 5,000 connections") {
        REQUIRE(test::raise_fd_limit(20000) >= 12000);
        Reactor reactor;
        auto listener = Listener::bind(SocketAddress::loopback(0), {.backlog = 8192});
        const auto port = listener.local_address().port();
        constexpr int kConnections = 5000;
        std::vector<int> fds;
        std::thread connector([&] {
            for (int i = 0; i < kConnections; ++i) {
                fds.push_back(test::connect_blocking(port));
            }
        });
        const int accepted = reactor.run_until_complete([](Listener* l, int n) -> Task<int> {
            std::vector<Socket> sockets;
            sockets.reserve(static_cast<std::size_t>(n));
            while (static_cast<int>(sockets.size()) < n) {
                auto s = co_await l->accept();
                if (!s) {
                    break;
                }
                sockets.push_back(std::move(*s));
            }
            const int count = static_cast<int>(sockets.size());
            for (auto& s : sockets) {
                co_await s.close();
            }
            co_return count;
        }(&listener, kConnections));
        connector.join();
        for (int fd : fds) {
            ::close(fd);
        }
        CHECK(accepted == kConnections);
        MESSAGE("accept mode: " << reactor.features().describe());
        reactor.run_until_complete(listener.close());
    }

    TEST_CASE("destroying a task suspended on a kernel operation is caught by an assertion") {
#ifdef NDEBUG
        MESSAGE("skipped: assertions are compiled out in this build");
#else
        const int status = test::run_in_child([] {
            ::signal(SIGABRT, SIG_DFL);
            Reactor reactor;
            auto listener = listen_any();
            const int client = test::connect_blocking(listener.local_address().port());
            (void)client;
            reactor.run_until_complete([](Listener* l) -> Task<> {
                auto s = co_await l->accept();
                char buf[8];
                auto t = [](int fd, char* b) -> Task<> {
                    (void)co_await ringwork::io::RecvSome(fd, std::span<char>(b, 8));
                }(s->fd(), buf);
                struct Start {
                    Task<>* t;
                    bool await_ready() const noexcept { return false; }
                    std::coroutine_handle<> await_suspend(std::coroutine_handle<> h) noexcept {
                        t->handle().promise().continuation_ = h;
                        return t->handle();
                    }
                    void await_resume() const noexcept {}
                };
                // Start the child by hand, then destroy it while it waits on the kernel.
                ringwork::io::spawn([](Task<>* child) -> Task<> {
                    co_await ringwork::io::sleep_for(5ms);
                    *child = Task<>{}; // destroys the suspended frame: must assert
                }(&t));
                co_await Start{&t};
            }(&listener));
            return 0;
        });
        CHECK(WIFSIGNALED(status));
        CHECK(WTERMSIG(status) == SIGABRT);
#endif
    }
}
