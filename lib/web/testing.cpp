// SPDX-License-Identifier: MIT
// TestClient: an App served over an in-process socket pair on a private reactor thread.
#include <ringwork/io/reactor.hpp>
#include <ringwork/web/testing.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <future>
#include <stdexcept>
#include <system_error>

#if defined(__SANITIZE_THREAD__)
#define RINGWORK_TESTING_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RINGWORK_TESTING_TSAN 1
#endif
#endif
#ifdef RINGWORK_TESTING_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace ringwork::web::testing {

namespace {

bool iequal(std::string_view a, std::string_view b) noexcept { return http::iequals(a, b); }

/// Hands a freshly created server-side socket to the reactor thread.
struct StartConnection : io::RemoteWork {
    StartConnection(http::Server* server, int fd) noexcept : RemoteWork(&run), server_(server), fd_(fd) {}
    static void run(io::RemoteWork* self) noexcept {
        auto* work = static_cast<StartConnection*>(self);
        try {
            io::spawn(work->server_->serve_conn(io::Socket(work->fd_)));
        } catch (...) {
            ::close(work->fd_);
        }
        work->started.set_value();
        delete work; // NOLINT(cppcoreguidelines-owning-memory): posted by ensure_connected()
    }
    http::Server* server_;
    int fd_;
    std::promise<void> started;
};

} // namespace

std::string_view TestResponse::header(std::string_view name) const noexcept {
    for (const auto& [k, v] : headers) {
        if (iequal(k, name)) {
            return v;
        }
    }
    return {};
}

bool TestResponse::has_header(std::string_view name) const noexcept {
    for (const auto& [k, v] : headers) {
        if (iequal(k, name)) {
            return true;
        }
    }
    return false;
}

nlohmann::json TestResponse::json() const { return nlohmann::json::parse(body); }

struct TestClient::Conn {
    io::Reactor* reactor = nullptr;
    std::thread thread;
    int fd = -1;
    // ThreadSanitizer only. What the test thread did before sending a request happens before
    // the handler runs, and the handler's effects happen before the client has read the
    // response; but both edges run through the kernel: the reactor receives and sends with
    // io_uring, which TSan does not intercept, so it never pairs those with the client's
    // send() / recv(). send() releases `to_server`, which the handler wrapper acquires before
    // the app's handler; the wrapper releases `to_client` when the handler has finished (the
    // response is sent after that) and read_one() acquires it once a complete response is in.
    char to_server = 0;
    char to_client = 0;
};

TestClient::TestClient(App& app, std::chrono::milliseconds timeout)
    : timeout_(timeout), server_(std::make_unique<http::Server>(app.options().server)),
      conn_(std::make_unique<Conn>()) {
#ifdef RINGWORK_TESTING_TSAN
    app.freeze(); // what install() does, with the handler wrapped for TSan (see Conn)
    server_->set_handler([a = &app, c = conn_.get()](http::Exchange& x) -> runtime::Task<> {
        __tsan_acquire(&c->to_server);
        co_await a->handle(x);
        __tsan_release(&c->to_client); // before the server sends the (buffered) response
    });
#else
    app.install(*server_);
#endif
    std::promise<io::Reactor*> ready;
    auto reactor_future = ready.get_future();
    io::ReactorOptions ro;
    ro.buffer_size = app.options().server.read_buffer_size;
    ro.buffer_count = std::min(app.options().server.buffer_count, 256U);
    ro.sq_entries = 256;
    ro.cq_entries = 1024;
    conn_->thread = std::thread([ro, &ready] {
        try {
            io::Reactor reactor(ro);
            ready.set_value(&reactor);
            reactor.run();
        } catch (...) {
            try {
                ready.set_exception(std::current_exception());
            } catch (...) { // NOLINT(bugprone-empty-catch): the value was already set
            }
        }
    });
    try {
        conn_->reactor = reactor_future.get();
    } catch (...) {
        conn_->thread.join();
        throw;
    }
}

TestClient::~TestClient() {
    close();
    if (conn_->reactor != nullptr) {
        conn_->reactor->stop();
    }
    if (conn_->thread.joinable()) {
        conn_->thread.join();
    }
}

void TestClient::close() {
    if (conn_->fd >= 0) {
        ::close(conn_->fd);
        conn_->fd = -1;
    }
    pending_.clear();
}

void TestClient::ensure_connected() {
    if (conn_->fd >= 0) {
        return;
    }
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
        throw std::system_error(errno, std::generic_category(), "TestClient: socketpair");
    }
    auto* work = new StartConnection(server_.get(), fds[1]); // NOLINT(cppcoreguidelines-owning-memory)
    auto started = work->started.get_future();
    conn_->reactor->post(work); // deletes itself on the reactor thread
    if (started.wait_for(timeout_) != std::future_status::ready) {
        ::close(fds[0]);
        throw std::runtime_error("TestClient: the reactor thread did not start the connection");
    }
    conn_->fd = fds[0];
    pending_.clear();
}

void TestClient::send(std::string_view bytes) {
    if (conn_->fd >= 0 && pending_.empty()) {
        // The server may have closed the connection after the last response without saying so
        // (a cut stream, a timeout): notice it and reconnect instead of failing the next read.
        pollfd p{conn_->fd, POLLIN | POLLRDHUP, 0};
        if (::poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLRDHUP | POLLERR)) != 0) {
            char c = 0;
            if (::recv(conn_->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) <= 0) {
                close();
            }
        }
    }
    ensure_connected();
#ifdef RINGWORK_TESTING_TSAN
    __tsan_release(&conn_->to_server); // acquired by the handler wrapper (see Conn)
#endif
    while (!bytes.empty()) {
        const ssize_t n = ::send(conn_->fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw std::system_error(errno, std::generic_category(), "TestClient: send");
        }
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
}

TestResponse TestClient::raw(std::string_view bytes, bool head_only) {
    send(bytes);
    return read_one(head_only, nullptr, nullptr);
}

TestResponse TestClient::read_response(bool head_only) { return read_one(head_only, nullptr, nullptr); }

TestResponse TestClient::request(const TestRequest& request) {
    std::string text = request.method + " " + request.target + " HTTP/1.1\r\n";
    bool has_host = false;
    bool has_length = false;
    for (const auto& [name, value] : request.headers) {
        has_host = has_host || iequal(name, "Host");
        has_length = has_length || iequal(name, "Content-Length") || iequal(name, "Transfer-Encoding");
    }
    if (!has_host) {
        text += "Host: test\r\n";
    }
    for (const auto& [name, value] : request.headers) {
        text += name + ": " + value + "\r\n";
    }
    if (!has_length && (!request.body.empty() || request.method == "POST" || request.method == "PUT" ||
                        request.method == "PATCH")) {
        text += "Content-Length: " + std::to_string(request.body.size()) + "\r\n";
    }
    text += "\r\n";
    text += request.body;
    send(text);
    return read_one(request.method == "HEAD", nullptr, nullptr);
}

TestResponse TestClient::get(std::string target, std::vector<std::pair<std::string, std::string>> headers) {
    return request(TestRequest{"GET", std::move(target), std::move(headers), {}});
}

TestResponse TestClient::head(std::string target, std::vector<std::pair<std::string, std::string>> headers) {
    return request(TestRequest{"HEAD", std::move(target), std::move(headers), {}});
}

TestResponse TestClient::del(std::string target, std::vector<std::pair<std::string, std::string>> headers) {
    return request(TestRequest{"DELETE", std::move(target), std::move(headers), {}});
}

namespace {

TestRequest with_body(std::string method, std::string target, std::string body, std::string type,
                      std::vector<std::pair<std::string, std::string>> headers) {
    if (!type.empty()) {
        headers.emplace_back("Content-Type", std::move(type));
    }
    return TestRequest{std::move(method), std::move(target), std::move(headers), std::move(body)};
}

} // namespace

TestResponse TestClient::post(std::string target, std::string body, std::string content_type,
                              std::vector<std::pair<std::string, std::string>> headers) {
    return request(with_body("POST", std::move(target), std::move(body), std::move(content_type), std::move(headers)));
}

TestResponse TestClient::put(std::string target, std::string body, std::string content_type,
                             std::vector<std::pair<std::string, std::string>> headers) {
    return request(with_body("PUT", std::move(target), std::move(body), std::move(content_type), std::move(headers)));
}

TestResponse TestClient::patch(std::string target, std::string body, std::string content_type,
                               std::vector<std::pair<std::string, std::string>> headers) {
    return request(with_body("PATCH", std::move(target), std::move(body), std::move(content_type), std::move(headers)));
}

TestResponse TestClient::read_one(bool head_only, void (*on_chunk)(void*, std::string_view), void* ctx) {
    if (conn_->fd < 0) {
        throw std::runtime_error("TestClient: not connected (send a request first)");
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    bool eof = false;
    // Read more bytes into pending_; false at EOF. Throws at the deadline.
    auto fill = [&]() -> bool {
        if (eof) {
            return false;
        }
        for (;;) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) {
                throw std::runtime_error("TestClient: timed out waiting for the response");
            }
            pollfd p{conn_->fd, POLLIN, 0};
            const int r = ::poll(&p, 1, static_cast<int>(left.count()));
            if (r < 0 && errno == EINTR) {
                continue;
            }
            if (r <= 0) {
                continue;
            }
            char buf[16384];
            const ssize_t n = ::recv(conn_->fd, buf, sizeof(buf), 0);
            if (n < 0) {
                if (errno == EINTR || errno == EAGAIN) {
                    continue;
                }
                if (errno == ECONNRESET) {
                    eof = true;
                    return false;
                }
                throw std::system_error(errno, std::generic_category(), "TestClient: recv");
            }
            if (n == 0) {
                eof = true;
                return false;
            }
            pending_.append(buf, static_cast<std::size_t>(n));
            return true;
        }
    };
    auto need = [&](std::size_t bytes) {
        while (pending_.size() < bytes) {
            if (!fill()) {
                throw std::runtime_error("TestClient: the connection closed before a complete response");
            }
        }
    };
    auto take_line = [&]() -> std::string {
        std::size_t pos = 0;
        for (;;) {
            const auto nl = pending_.find("\r\n", pos);
            if (nl != std::string::npos) {
                std::string line = pending_.substr(0, nl);
                pending_.erase(0, nl + 2);
                return line;
            }
            pos = pending_.empty() ? 0 : pending_.size() - 1;
            if (!fill()) {
                throw std::runtime_error("TestClient: the connection closed before a complete response");
            }
        }
    };
    auto parse_fields = [&](std::vector<std::pair<std::string, std::string>>& out) {
        for (;;) {
            std::string line = take_line();
            if (line.empty()) {
                return;
            }
            const auto colon = line.find(':');
            if (colon == std::string::npos) {
                throw std::runtime_error("TestClient: malformed header line: " + line);
            }
            std::string value = line.substr(colon + 1);
            const auto first = value.find_first_not_of(" \t");
            const auto last = value.find_last_not_of(" \t");
            value = first == std::string::npos ? std::string() : value.substr(first, last - first + 1);
            out.emplace_back(line.substr(0, colon), std::move(value));
        }
    };

    TestResponse res;
    for (;;) {
        const std::string status_line = take_line();
        // HTTP/1.1 200 OK
        if (status_line.size() < 12 || status_line.compare(0, 5, "HTTP/") != 0) {
            throw std::runtime_error("TestClient: malformed status line: " + status_line);
        }
        int status = 0;
        std::from_chars(status_line.data() + 9, status_line.data() + 12, status);
        res = TestResponse{};
        res.status = status;
        res.reason = status_line.size() > 13 ? status_line.substr(13) : std::string();
        parse_fields(res.headers);
        if (status >= 100 && status < 200 && status != 101) {
            continue; // interim response (100 Continue, 103 Early Hints)
        }
        break;
    }
    const bool no_body = head_only || res.status == 204 || res.status == 304 || res.status == 101;
    const std::string_view te = res.header("Transfer-Encoding");
    const std::string_view cl = res.header("Content-Length");
    if (no_body) {
        // nothing
    } else if (!te.empty()) {
        res.chunked = true;
        for (;;) {
            const std::string size_line = take_line();
            std::size_t size = 0;
            const auto [end, ec] = std::from_chars(size_line.data(), size_line.data() + size_line.size(), size, 16);
            if (ec != std::errc{}) {
                throw std::runtime_error("TestClient: bad chunk size line: " + size_line);
            }
            (void)end;
            if (size == 0) {
                parse_fields(res.trailers);
                break;
            }
            need(size + 2);
            const std::string_view chunk(pending_.data(), size);
            if (on_chunk != nullptr) {
                on_chunk(ctx, chunk);
            }
            res.body.append(chunk);
            pending_.erase(0, size + 2);
        }
    } else if (!cl.empty()) {
        std::size_t length = 0;
        std::from_chars(cl.data(), cl.data() + cl.size(), length);
        need(length);
        res.body = pending_.substr(0, length);
        pending_.erase(0, length);
    } else {
        while (fill()) {
        }
        res.body = std::move(pending_);
        pending_.clear();
        res.closed = true;
    }
    const std::string_view connection = res.header("Connection");
    if (res.closed || iequal(connection, "close")) {
        res.closed = true;
        close();
    }
#ifdef RINGWORK_TESTING_TSAN
    __tsan_acquire(&conn_->to_client); // pairs with the release after the handler (see Conn)
#endif
    return res;
}

} // namespace ringwork::web::testing
