// SPDX-License-Identifier: MIT
// File reads/writes through the ring and the fd-readiness awaitable (PollFd).
#include <ringwork/io/reactor.hpp>
#include <ringwork/io/socket.hpp>
#include <ringwork/io/timer.hpp>

#include <doctest/doctest.h>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

using namespace std::chrono_literals;
using ringwork::io::Reactor;
using ringwork::runtime::Task;

TEST_SUITE("file_poll") {
    TEST_CASE("WriteAt and ReadAt move whole buffers to and from a file") {
        char path[] = "/tmp/ringwork-file-XXXXXX";
        const int fd = ::mkstemp(path);
        REQUIRE(fd >= 0);
        ::unlink(path);
        Reactor reactor;
        std::string data(1 << 20, '\0');
        for (std::size_t i = 0; i < data.size(); ++i) {
            data[i] = static_cast<char>(i * 31 % 251);
        }
        auto back = reactor.run_until_complete([](int f, const std::string* d) -> Task<std::string> {
            auto w = co_await ringwork::io::WriteAt(f, std::span<const char>(*d), 4096);
            REQUIRE(w);
            CHECK(*w == d->size());
            std::string out(d->size(), '\0');
            std::size_t got = 0;
            while (got < out.size()) {
                auto r = co_await ringwork::io::ReadAt(f, std::span<char>(out.data() + got, out.size() - got),
                                                       4096 + got);
                REQUIRE(r);
                if (*r == 0) {
                    break;
                }
                got += *r;
            }
            out.resize(got);
            co_return out;
        }(fd, &data));
        CHECK(back == data);
        ::close(fd);
    }

    TEST_CASE("ReadAt on a bad descriptor reports EBADF") {
        Reactor reactor;
        auto ec = reactor.run_until_complete([]() -> Task<std::error_code> {
            char buf[4];
            auto r = co_await ringwork::io::ReadAt(-1, std::span<char>(buf), 0);
            co_return r.error();
        }());
        CHECK(ec == std::errc::bad_file_descriptor);
    }

    TEST_CASE("PollFd resumes when a descriptor becomes readable") {
        int p[2];
        REQUIRE(::pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
        Reactor reactor;
        auto events = reactor.run_until_complete([](int rd, int wr) -> Task<unsigned> {
            ringwork::io::spawn([](int w) -> Task<> {
                co_await ringwork::io::sleep_for(10ms);
                const char c = 'x';
                CHECK(::write(w, &c, 1) == 1);
            }(wr));
            auto r = co_await ringwork::io::PollFd(rd, POLLIN);
            REQUIRE(r);
            co_return *r;
        }(p[0], p[1]));
        CHECK((events & POLLIN) != 0);
        ::close(p[0]);
        ::close(p[1]);
    }

    TEST_CASE("a pending PollFd is cancelled by its stop token") {
        int p[2];
        REQUIRE(::pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
        Reactor reactor;
        auto ec = reactor.run_until_complete([](int rd) -> Task<std::error_code> {
            ringwork::runtime::StopSource source;
            ringwork::io::spawn([](ringwork::runtime::StopSource* s) -> Task<> {
                co_await ringwork::io::sleep_for(10ms);
                s->request_stop();
            }(&source));
            auto waiter = [](int fd) -> Task<std::error_code> {
                auto r = co_await ringwork::io::PollFd(fd, POLLIN);
                co_return r.error();
            };
            co_return co_await waiter(rd).with_stop_token(ringwork::runtime::StopToken(source));
        }(p[0]));
        CHECK(ec == std::errc::operation_canceled);
        ::close(p[0]);
        ::close(p[1]);
    }
}
