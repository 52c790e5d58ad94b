// SPDX-License-Identifier: MIT
// Reactor: loop, timers, spawn, stop, cross-thread post, submit_to, offload, multi-thread Runtime.
#include <ringwork/io/reactor.hpp>
#include <ringwork/io/runtime.hpp>
#include <ringwork/io/socket.hpp>
#include <ringwork/io/timer.hpp>

#include "helpers.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using ringwork::io::Clock;
using ringwork::io::Reactor;
using ringwork::io::sleep_for;
using ringwork::runtime::Task;

namespace {

Task<> sleeper(std::chrono::milliseconds d, int id, std::vector<int>* order) {
    co_await sleep_for(d);
    order->push_back(id);
}

Task<> sleep_all(std::vector<int>* order) {
    ringwork::io::spawn(sleeper(30ms, 3, order));
    ringwork::io::spawn(sleeper(10ms, 1, order));
    ringwork::io::spawn(sleeper(20ms, 2, order));
    ringwork::io::spawn(sleeper(20ms, 22, order));
    ringwork::io::spawn(sleeper(0ms, 0, order));
    co_await sleep_for(60ms);
}

Task<bool> cancellable_sleep(std::chrono::seconds d) {
    try {
        co_await sleep_for(d);
    } catch (const ringwork::runtime::OperationCancelled&) {
        co_return true;
    }
    co_return false;
}

Task<> stopper(ringwork::runtime::StopSource* source, std::chrono::milliseconds after) {
    co_await sleep_for(after);
    source->request_stop();
}

Task<bool> sleep_then_cancel() {
    ringwork::runtime::StopSource source;
    ringwork::io::spawn(stopper(&source, 20ms));
    co_return co_await cancellable_sleep(30s).with_stop_token(ringwork::runtime::StopToken(source));
}

Task<> failing() {
    co_await sleep_for(1ms);
    throw std::runtime_error("detached failure");
}

Task<> forever_until_stopped(int* finished) {
    try {
        co_await sleep_for(1h);
    } catch (const ringwork::runtime::OperationCancelled&) {
        ++*finished;
    }
}

Task<int> nops(int n) {
    int ok = 0;
    for (int i = 0; i < n; ++i) {
        ok += (co_await ringwork::io::Nop()) ? 1 : 0;
    }
    co_return ok;
}

} // namespace

TEST_SUITE("reactor") {
    TEST_CASE("the reactor reports what the ring got") {
        Reactor reactor;
        const auto& f = reactor.features();
        MESSAGE(f.describe());
        if (test::epoll_backend()) {
            CHECK(f.backend == ringwork::io::Backend::epoll);
            CHECK_FALSE(f.multishot_accept);
            CHECK_FALSE(f.multishot_recv);
            CHECK_FALSE(f.buffer_ring);
        } else {
            CHECK(f.backend == ringwork::io::Backend::io_uring);
            CHECK(f.ext_arg);
        }
        CHECK(f.sq_entries >= 1);
        CHECK(Reactor::current() == &reactor);
    }

    TEST_CASE("kernel no-ops complete and are batched per loop pass") {
        Reactor reactor;
        CHECK(reactor.run_until_complete(nops(1000)) == 1000);
        CHECK(reactor.stats().completions >= 1000);
    }

    TEST_CASE("timers fire in deadline order and never early") {
        Reactor reactor;
        std::vector<int> order;
        const auto start = Clock::now();
        reactor.run_until_complete(sleep_all(&order));
        CHECK(Clock::now() - start >= 60ms);
        REQUIRE(order.size() == 5);
        CHECK(order == std::vector<int>{0, 1, 2, 22, 3});
    }

    TEST_CASE("a sleep ends early with OperationCancelled when its stop token fires") {
        Reactor reactor;
        const auto start = Clock::now();
        CHECK(reactor.run_until_complete(sleep_then_cancel()));
        CHECK(Clock::now() - start < 10s); // the 30 s sleep was cut short
    }

    TEST_CASE("stop() cancels detached work and run() returns when it has finished") {
        Reactor reactor;
        int finished = 0;
        for (int i = 0; i < 10; ++i) {
            reactor.spawn(forever_until_stopped(&finished));
        }
        CHECK(reactor.detached_count() == 10);
        std::thread stopper_thread([&] {
            std::this_thread::sleep_for(20ms);
            reactor.stop(); // from another thread
        });
        reactor.run();
        stopper_thread.join();
        CHECK(finished == 10);
        CHECK(reactor.detached_count() == 0);
        CHECK(reactor.stopping());
    }

    TEST_CASE("a detached task's exception is logged and counted; the reactor keeps going") {
        Reactor reactor;
        reactor.spawn(failing());
        reactor.run_until_complete([]() -> Task<> { co_await sleep_for(20ms); }());
        CHECK(reactor.stats().detached_failed == 1);
        CHECK(reactor.detached_count() == 0);
    }

    TEST_CASE("work posted from other threads runs on the reactor thread") {
        Reactor reactor;
        struct Work : ringwork::io::RemoteWork {
            Work() : RemoteWork([](RemoteWork* w) noexcept {
                auto* self = static_cast<Work*>(w);
                self->ran_on = std::this_thread::get_id();
                self->done = true;
            }) {}
            std::thread::id ran_on;
            bool done = false;
        };
        std::vector<Work> works(100);
        std::thread poster([&] {
            for (auto& w : works) {
                reactor.post(&w);
            }
        });
        poster.join();
        reactor.run_until_complete([](std::vector<Work>* ws) -> Task<> {
            for (int i = 0; i < 1000; ++i) {
                bool all = true;
                for (auto& w : *ws) {
                    all = all && w.done;
                }
                if (all) {
                    co_return;
                }
                co_await sleep_for(1ms);
            }
        }(&works));
        for (auto& w : works) {
            CHECK(w.done);
            CHECK(w.ran_on == std::this_thread::get_id());
        }
    }

    TEST_CASE("offload runs on a pool thread and resumes on the reactor thread") {
        Reactor reactor;
        const auto reactor_thread = std::this_thread::get_id();
        auto result = reactor.run_until_complete([](std::thread::id home) -> Task<std::pair<bool, bool>> {
            const auto worker = co_await ringwork::io::offload([] { return std::this_thread::get_id(); });
            const bool back_home = std::this_thread::get_id() == home;
            co_return std::pair{worker != home, back_home};
        }(reactor_thread));
        CHECK(result.first);
        CHECK(result.second);
        auto throws = []() -> Task<> { co_await ringwork::io::offload([] { throw std::logic_error("x"); }); };
        CHECK_THROWS_AS(reactor.run_until_complete(throws()), std::logic_error);
    }

    TEST_CASE("a 2-thread runtime runs a reactor per thread and submit_to hops between them") {
        ringwork::io::Runtime runtime(ringwork::io::RuntimeOptions{.threads = 2, .handle_signals = false});
        std::atomic<int> hops{0};
        std::atomic<bool> other_thread{false};
        runtime.run([&](Reactor& reactor, unsigned index) -> Task<> {
            if (index != 0) {
                return []() -> Task<> { co_return; }();
            }
            return [](ringwork::io::Runtime* rt, Reactor* self, std::atomic<int>* h,
                      std::atomic<bool>* other) -> Task<> {
                const auto here = std::this_thread::get_id();
                for (int i = 0; i < 100; ++i) {
                    const auto there = co_await ringwork::io::submit_to(rt->reactor(1), [] {
                        return std::this_thread::get_id();
                    });
                    if (there != here && std::this_thread::get_id() == here) {
                        h->fetch_add(1);
                    }
                }
                // A Task-returning function runs (and may suspend) on the target reactor.
                const int v = co_await ringwork::io::submit_to(rt->reactor(1), []() -> Task<int> {
                    co_await sleep_for(1ms);
                    co_return 7;
                });
                other->store(v == 7);
                (void)self;
                rt->stop();
            }(&runtime, &reactor, &hops, &other_thread);
        });
        CHECK(hops.load() == 100);
        CHECK(other_thread.load());
    }

    TEST_CASE("a 2-thread runtime serves load and stops cleanly") {
        ringwork::io::Runtime runtime(ringwork::io::RuntimeOptions{.threads = 2, .handle_signals = false});
        std::atomic<std::uint16_t> port{0};
        std::atomic<int> served{0};
        std::thread driver([&] {
            runtime.run([&](Reactor&, unsigned index) -> Task<> {
                return [](unsigned idx, std::atomic<std::uint16_t>* p, std::atomic<int>* count) -> Task<> {
                    // Both reactors share one port through SO_REUSEPORT.
                    while (idx != 0 && p->load() == 0) {
                        co_await sleep_for(1ms);
                    }
                    auto where = ringwork::io::SocketAddress::loopback(p->load());
                    auto listener = ringwork::io::Listener::bind(where);
                    if (idx == 0) {
                        p->store(listener.local_address().port());
                    }
                    for (;;) {
                        auto s = co_await listener.accept();
                        if (!s) {
                            break; // stop requested
                        }
                        ringwork::io::spawn([](ringwork::io::Socket sock, std::atomic<int>* c) -> Task<> {
                            for (;;) {
                                auto lease = co_await sock.recv();
                                if (!lease || lease->empty()) {
                                    break;
                                }
                                std::string echo(lease->view());
                                lease->release();
                                if (!co_await sock.send(echo)) {
                                    break;
                                }
                                c->fetch_add(1);
                            }
                            co_await sock.close();
                        }(std::move(*s), count));
                    }
                    co_await listener.close();
                }(index, &port, &served);
            });
        });
        REQUIRE(test::eventually([&] { return port.load() != 0 && runtime.started(); }));
        std::this_thread::sleep_for(20ms); // let reactor 1 bind too (not needed for correctness)
        std::vector<std::thread> clients;
        std::atomic<int> answered{0};
        for (int c = 0; c < 8; ++c) {
            clients.emplace_back([&] {
                const int fd = test::connect_blocking(port.load());
                for (int i = 0; i < 200; ++i) {
                    if (test::write_all(fd, "ping") && test::read_exactly(fd, 4) == "ping") {
                        answered.fetch_add(1);
                    }
                }
                ::close(fd);
            });
        }
        for (auto& t : clients) {
            t.join();
        }
        runtime.stop();
        driver.join();
        CHECK(answered.load() == 8 * 200);
        CHECK(served.load() == 8 * 200);
    }
}
