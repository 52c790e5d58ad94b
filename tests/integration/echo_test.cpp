// SPDX-License-Identifier: MIT
// Integration tests: the ringwork-echo app as a child process, driven over raw TCP, curl and Python's http.client.
#include "app_process.hpp"
#include "helpers.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>


namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

using test::ms_left;

/// The ringwork-echo executable (meson passes its path in RINGWORK_ECHO).
std::string echo_path() { return test::app_path("RINGWORK_ECHO"); }

/// ringwork-echo as a child process.
class EchoProcess : public test::AppProcess {
public:
    explicit EchoProcess(std::vector<std::string> extra = {})
        : AppProcess(echo_path(), "ringwork-echo", std::move(extra)) {}
};

bool iequal(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) {
            return false;
        }
    }
    return true;
}

/// One parsed response.
struct HttpResponse {
    std::string status_line;
    int status = 0;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;

    [[nodiscard]] std::optional<std::string> header(std::string_view name) const {
        for (const auto& [n, v] : headers) {
            if (iequal(n, name)) {
                return v;
            }
        }
        return std::nullopt;
    }
    [[nodiscard]] std::size_t header_count(std::string_view name) const {
        std::size_t n = 0;
        for (const auto& h : headers) {
            n += iequal(h.first, name) ? 1 : 0;
        }
        return n;
    }
    [[nodiscard]] json body_json() const { return json::parse(body); }
};

/// A raw TCP client to 127.0.0.1 that reads Content-Length framed responses; every wait bounded.
class Client {
public:
    explicit Client(std::uint16_t port) : fd_(test::connect_blocking(port, 10000)) {}
    ~Client() { close(); }
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    void close() {
        if (fd_ >= 0) {
            ::close(fd_);
            fd_ = -1;
        }
    }
    [[nodiscard]] int fd() const noexcept { return fd_; }
    bool send(std::string_view data) { return test::write_all(fd_, data); }

    /// Read one response (HEAD and 1xx/204/304 carry no body). nullopt on EOF, error or timeout.
    std::optional<HttpResponse> read_response(bool head_request = false, std::chrono::milliseconds limit = 10s) {
        const auto deadline = Clock::now() + limit;
        std::size_t end = 0;
        while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
            if (fill(deadline) <= 0) {
                return std::nullopt;
            }
        }
        HttpResponse r;
        const std::string head = buf_.substr(0, end + 2);
        buf_.erase(0, end + 4);
        std::size_t line_end = head.find("\r\n");
        r.status_line = head.substr(0, line_end);
        if (!r.status_line.starts_with("HTTP/1.1 ") || r.status_line.size() < 12) {
            FAIL_CHECK("malformed status line: '" << r.status_line << "'");
            return std::nullopt;
        }
        r.status = std::stoi(r.status_line.substr(9, 3));
        std::size_t pos = line_end + 2;
        while (pos < head.size()) {
            line_end = head.find("\r\n", pos);
            const std::string line = head.substr(pos, line_end - pos);
            pos = line_end + 2;
            const auto colon = line.find(':');
            if (colon == std::string::npos) {
                FAIL_CHECK("malformed header line: '" << line << "'");
                return std::nullopt;
            }
            std::string value = line.substr(colon + 1);
            while (!value.empty() && value.front() == ' ') {
                value.erase(0, 1);
            }
            r.headers.emplace_back(line.substr(0, colon), value);
        }
        const bool bodyless = head_request || (r.status >= 100 && r.status < 200) || r.status == 204 || r.status == 304;
        if (!bodyless) {
            const auto cl = r.header("Content-Length");
            if (!cl) {
                FAIL_CHECK("response without Content-Length: " << r.status_line);
                return std::nullopt;
            }
            const std::size_t n = std::stoul(*cl);
            while (buf_.size() < n) {
                if (fill(deadline) <= 0) {
                    return std::nullopt;
                }
            }
            r.body = buf_.substr(0, n);
            buf_.erase(0, n);
        }
        return r;
    }

    /// Read until the server closes (FIN or RST) within `limit`: the bytes that came before it,
    /// or nullopt when the connection was still open at the deadline.
    std::optional<std::string> read_to_eof(std::chrono::milliseconds limit = 5s) {
        const auto deadline = Clock::now() + limit;
        for (;;) {
            const int r = fill(deadline);
            if (r == 0 || r == -2) {
                return std::exchange(buf_, {});
            }
            if (r < 0) {
                return std::nullopt;
            }
        }
    }

    /// True when no byte arrives (and the connection stays open) for `quiet`.
    bool silent_for(std::chrono::milliseconds quiet) {
        if (!buf_.empty()) {
            return false;
        }
        pollfd p{fd_, POLLIN, 0};
        return ::poll(&p, 1, static_cast<int>(quiet.count())) == 0;
    }

    /// Bytes received but not yet consumed by a read.
    [[nodiscard]] const std::string& buffered() const noexcept { return buf_; }

private:
    /// Receive more: > 0 bytes appended, 0 EOF, -1 timeout, -2 reset or error.
    int fill(Clock::time_point deadline) {
        pollfd p{fd_, POLLIN, 0};
        const int n = ::poll(&p, 1, ms_left(deadline));
        if (n == 0) {
            return -1;
        }
        char buf[65536];
        const ssize_t r = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
        if (r > 0) {
            buf_.append(buf, static_cast<std::size_t>(r));
            return static_cast<int>(r);
        }
        if (r == 0) {
            return 0;
        }
        return errno == EAGAIN ? -1 : -2;
    }

    int fd_ = -1;
    std::string buf_;
};

/// "GET path HTTP/1.1" with Host and `extra` header lines (each ending in CRLF).
std::string get(std::string_view path, std::string_view extra = {}) {
    return "GET " + std::string(path) + " HTTP/1.1\r\nHost: echo.test\r\n" + std::string(extra) + "\r\n";
}

std::string post(std::string_view path, std::string_view body, std::string_view extra = {}) {
    return "POST " + std::string(path) + " HTTP/1.1\r\nHost: echo.test\r\n" + std::string(extra) +
           "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
}

/// Run a shell command (bounded by coreutils timeout), returning its stdout and exit status.
std::pair<std::string, int> run_shell(const std::string& command) {
    FILE* f = ::popen(command.c_str(), "r");
    REQUIRE(f != nullptr);
    std::string out;
    char buf[4096];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
        out.append(buf, n);
    }
    const int status = ::pclose(f);
    return {out, WIFEXITED(status) ? WEXITSTATUS(status) : -1};
}

std::size_t count_of(std::string_view hay, std::string_view needle) {
    std::size_t n = 0;
    for (auto p = hay.find(needle); p != std::string_view::npos; p = hay.find(needle, p + needle.size())) {
        ++n;
    }
    return n;
}

/// A rejection: the status, then the server closes the connection without another byte.
void expect_rejected(std::uint16_t port, std::string_view name, std::string_view request, int status) {
    INFO("case: " << name);
    Client c(port);
    REQUIRE(c.send(request));
    const auto r = c.read_response();
    REQUIRE_MESSAGE(r.has_value(), "no response");
    CHECK(r->status == status);
    CHECK(r->header("Connection") == "close");
    const auto rest = c.read_to_eof();
    CHECK_MESSAGE(rest.has_value(), "connection still open 5 s after the rejection");
    if (rest) {
        CHECK_MESSAGE(rest->empty(), "bytes after the rejection: " << *rest);
    }
}

} // namespace

TEST_CASE("echo: the JSON echo of a request (issue example)") {
    EchoProcess echo;
    {
        Client c(echo.port());
        REQUIRE(c.send("POST /anything/a%20b?x=1&x=2 HTTP/1.1\r\nhOST: echo.test\r\nx-custom-HEADER: v 1\r\n"
                       "content-length: 3\r\n\r\nabc"));
        const auto r = c.read_response();
        REQUIRE(r.has_value());
        CHECK(r->status == 200);
        CHECK(r->header("Content-Type") == "application/json");
        const json j = r->body_json();
        CHECK(j["method"] == "POST");
        CHECK(j["path"] == "/anything/a b");
        CHECK(j["raw_path"] == "/anything/a%20b?x=1&x=2");
        CHECK(j["query"] == json::parse(R"({"x":["1","2"]})"));
        CHECK(j["headers"] == json::parse(R"([["Host","echo.test"],["X-Custom-Header","v 1"],["Content-Length","3"]])"));
        CHECK(j["body"] == "abc");
        CHECK(j["body_length"] == 3);
        // Key order as in the issue.
        CHECK(r->body.starts_with(R"({"method":"POST","path":"/anything/a b","raw_path":)"));

        // Exact /anything, decoded query, an empty value, no body.
        REQUIRE(c.send(get("/anything?q=a+b%21&empty=&flag")));
        const auto g = c.read_response();
        REQUIRE(g.has_value());
        CHECK(g->status == 200);
        const json k = g->body_json();
        CHECK(k["path"] == "/anything");
        CHECK(k["query"] == json::parse(R"({"q":["a b!"],"empty":[""],"flag":[""]})"));
        CHECK(k["body"] == "");
        CHECK(k["body_length"] == 0);
    }
    CHECK(echo.stop() == 0);
}

TEST_CASE("echo: other paths are 404, an invalid escape is 400, and the connection stays usable") {
    EchoProcess echo;
    {
        Client c(echo.port());
        for (const std::string_view path : {"/", "/anythingelse", "/nothing/anything", "/Anything"}) {
            INFO("path: " << path);
            REQUIRE(c.send(get(path)));
            const auto r = c.read_response();
            REQUIRE(r.has_value());
            CHECK(r->status == 404);
            CHECK(r->header("Content-Type").value_or("").starts_with("text/plain"));
            CHECK(!r->body.empty());
            CHECK(r->body.size() < 100);
        }
        for (const std::string_view path : {"/anything/%zz", "/anything/%4", "/anything/%00", "/anything%2"}) {
            INFO("path: " << path);
            REQUIRE(c.send(get(path)));
            const auto r = c.read_response();
            REQUIRE(r.has_value());
            CHECK(r->status == 400);
        }
        // An escaped slash decodes into the routed path.
        REQUIRE(c.send(get("/anything%2Fx")));
        const auto r = c.read_response();
        REQUIRE(r.has_value());
        CHECK(r->status == 200);
        CHECK(r->body_json()["path"] == "/anything/x");
    }
    CHECK(echo.stop() == 0);
}

TEST_CASE("echo: 100 pipelined requests in one write are answered in order on one connection") {
    EchoProcess echo;
    {
        Client c(echo.port());
        std::string batch;
        for (int i = 0; i < 100; ++i) {
            batch += get("/anything/" + std::to_string(i));
        }
        REQUIRE(c.send(batch));
        for (int i = 0; i < 100; ++i) {
            INFO("response " << i);
            const auto r = c.read_response();
            REQUIRE(r.has_value());
            CHECK(r->status == 200);
            CHECK(r->body_json()["path"] == "/anything/" + std::to_string(i));
        }
        CHECK(c.silent_for(100ms));
    }
    CHECK(echo.stop() == 0);
}

TEST_CASE("echo: a request written one byte at a time gets the same response") {
    EchoProcess echo;
    {
        const std::string request = post("/anything/split?a=1", "0123456789", "X-Split: yes\r\n");
        Client whole(echo.port());
        REQUIRE(whole.send(request));
        const auto expected = whole.read_response();
        REQUIRE(expected.has_value());
        REQUIRE(expected->status == 200);

        Client c(echo.port());
        for (const char ch : request) {
            REQUIRE(c.send(std::string_view(&ch, 1)));
            std::this_thread::sleep_for(1ms);
        }
        const auto r = c.read_response();
        REQUIRE(r.has_value());
        CHECK(r->status == 200);
        CHECK(r->body == expected->body);
        CHECK(r->body_json()["body"] == "0123456789");
        // And the connection goes on.
        REQUIRE(c.send(get("/anything/next")));
        const auto next = c.read_response();
        REQUIRE(next.has_value());
        CHECK(next->body_json()["path"] == "/anything/next");
    }
    CHECK(echo.stop() == 0);
}

TEST_CASE("echo: request bodies, Content-Length and chunked") {
    EchoProcess echo;
    {
        Client c(echo.port());
        SUBCASE("Content-Length") {
            REQUIRE(c.send(post("/anything/cl", "hello world")));
            const auto r = c.read_response();
            REQUIRE(r.has_value());
            CHECK(r->status == 200);
            const json j = r->body_json();
            CHECK(j["body"] == "hello world");
            CHECK(j["body_length"] == 11);
        }
        SUBCASE("chunked with extensions and trailers") {
            REQUIRE(c.send("POST /anything/chunked HTTP/1.1\r\nHost: echo.test\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "5;ext=1\r\nhello\r\n"
                           "1 ; flag\r\n \r\n"
                           "A;a=b;c\r\n0123456789\r\n"
                           "0\r\nX-Trailer: one\r\nX-Other: two\r\n\r\n"));
            const auto r = c.read_response();
            REQUIRE(r.has_value());
            CHECK(r->status == 200);
            const json j = r->body_json();
            CHECK(j["body"] == "hello 0123456789");
            CHECK(j["body_length"] == 16);
            // The next request on the connection starts right after the trailers.
            REQUIRE(c.send(get("/anything/after")));
            const auto next = c.read_response();
            REQUIRE(next.has_value());
            CHECK(next->body_json()["path"] == "/anything/after");
        }
        SUBCASE("chunked, each chunk in its own write") {
            REQUIRE(c.send("POST /anything/chunked HTTP/1.1\r\nHost: echo.test\r\nTransfer-Encoding: chunked\r\n\r\n"));
            for (const std::string_view part : {"3\r\nabc\r\n", "4\r\ndefg\r\n", "0\r\n", "\r\n"}) {
                std::this_thread::sleep_for(5ms);
                REQUIRE(c.send(part));
            }
            const auto r = c.read_response();
            REQUIRE(r.has_value());
            CHECK(r->body_json()["body"] == "abcdefg");
        }
        SUBCASE("1 MiB Content-Length body in 64 KiB writes") {
            std::string body(1U << 20, '\0');
            for (std::size_t i = 0; i < body.size(); ++i) {
                body[i] = static_cast<char>('a' + i % 26);
            }
            REQUIRE(c.send("POST /anything/big HTTP/1.1\r\nHost: echo.test\r\nContent-Length: 1048576\r\n\r\n"));
            for (std::size_t off = 0; off < body.size(); off += 65536) {
                REQUIRE(c.send(std::string_view(body).substr(off, 65536)));
                std::this_thread::sleep_for(1ms);
            }
            const auto r = c.read_response(false, 30s);
            REQUIRE(r.has_value());
            CHECK(r->status == 200);
            const json j = r->body_json();
            CHECK(j["body_length"] == body.size());
            CHECK(j["body"] == body);
        }
        SUBCASE("1 MiB chunked body in 64 KiB chunks, one write each") {
            std::string body(1U << 20, '\0');
            for (std::size_t i = 0; i < body.size(); ++i) {
                body[i] = static_cast<char>('A' + i % 23);
            }
            REQUIRE(c.send("POST /anything/big HTTP/1.1\r\nHost: echo.test\r\nTransfer-Encoding: chunked\r\n\r\n"));
            for (std::size_t off = 0; off < body.size(); off += 65536) {
                REQUIRE(c.send("10000\r\n" + body.substr(off, 65536) + "\r\n"));
                std::this_thread::sleep_for(1ms);
            }
            REQUIRE(c.send("0\r\n\r\n"));
            const auto r = c.read_response(false, 30s);
            REQUIRE(r.has_value());
            CHECK(r->status == 200);
            const json j = r->body_json();
            CHECK(j["body_length"] == body.size());
            CHECK(j["body"] == body);
        }
    }
    CHECK(echo.stop() == 0);
}

TEST_CASE("echo: every rejection gets its status and then a closed connection") {
    SUBCASE("parser rejections (default options)") {
        EchoProcess echo;
        const std::uint16_t port = echo.port();
        expect_rejected(port, "missing Host", "GET /anything HTTP/1.1\r\n\r\n", 400);
        expect_rejected(port, "duplicate Host", "GET /anything HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
        expect_rejected(port, "space before colon", "GET /anything HTTP/1.1\r\nHost: a\r\nX-Bad : v\r\n\r\n", 400);
        expect_rejected(port, "obs-fold", "GET /anything HTTP/1.1\r\nHost: a\r\nX-Long: a\r\n b\r\n\r\n", 400);
        expect_rejected(port, "CL and TE",
                        "POST /anything HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "0\r\n\r\n",
                        400);
        expect_rejected(port, "differing Content-Lengths",
                        "POST /anything HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400);
        expect_rejected(port, "TE gzip", "POST /anything HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501);
        expect_rejected(port, "TE chunked, gzip",
                        "POST /anything HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400);
        expect_rejected(port, "bare LF", "GET /anything HTTP/1.1\nHost: a\n\n", 400);
        expect_rejected(port, "bare LF in a header", "GET /anything HTTP/1.1\r\nHost: a\nX: y\r\n\r\n", 400);
        expect_rejected(port, "HTTP/2.0", "GET /anything HTTP/2.0\r\nHost: a\r\n\r\n", 505);
        expect_rejected(port, "bad chunk size",
                        "POST /anything HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400);
        CHECK(echo.stop() == 0);
    }
    SUBCASE("URI too long: --max-request-line 100") {
        EchoProcess echo({"--max-request-line", "100"});
        Client ok(echo.port());
        REQUIRE(ok.send(get("/anything/" + std::string(60, 'a'))));
        const auto r = ok.read_response();
        REQUIRE(r.has_value());
        CHECK(r->status == 200);
        ok.close();
        expect_rejected(echo.port(), "414", get("/anything/" + std::string(200, 'a')), 414);
        CHECK(echo.stop() == 0);
    }
    SUBCASE("headers too large: --max-header-bytes 1024") {
        EchoProcess echo({"--max-header-bytes", "1024"});
        expect_rejected(echo.port(), "431", get("/anything", "X-Big: " + std::string(2000, 'b') + "\r\n"), 431);
        CHECK(echo.stop() == 0);
    }
    SUBCASE("too many headers: --max-headers 5") {
        EchoProcess echo({"--max-headers", "5"});
        Client ok(echo.port());
        REQUIRE(ok.send(get("/anything", "A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n"))); // 5 with Host
        const auto r = ok.read_response();
        REQUIRE(r.has_value());
        CHECK(r->status == 200);
        ok.close();
        expect_rejected(echo.port(), "431", get("/anything", "A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n"), 431);
        CHECK(echo.stop() == 0);
    }
    SUBCASE("body too large: --max-body-size 1000") {
        EchoProcess echo({"--max-body-size", "1000"});
        {
            Client ok(echo.port());
            REQUIRE(ok.send(post("/anything", std::string(1000, 'x'))));
            const auto r = ok.read_response();
            REQUIRE(r.has_value());
            CHECK(r->status == 200);
        }
        // Content-Length over the limit: the 413 comes without the client sending the body.
        expect_rejected(echo.port(), "Content-Length 1001, no body sent",
                        "POST /anything HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n", 413);
        // Chunked: the limit is crossed by the second chunk.
        expect_rejected(echo.port(), "chunked body crossing the limit",
                        "POST /anything HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "258\r\n" + std::string(600, 'x') + "\r\n258\r\n" + std::string(600, 'y') + "\r\n0\r\n\r\n",
                        413);
        CHECK(echo.stop() == 0);
    }
    SUBCASE("--get-only: POST is 405") {
        EchoProcess echo({"--get-only"});
        Client ok(echo.port());
        REQUIRE(ok.send(get("/anything")));
        const auto r = ok.read_response();
        REQUIRE(r.has_value());
        CHECK(r->status == 200);
        ok.close();
        Client c(echo.port());
        REQUIRE(c.send(post("/anything", "hello")));
        const auto no = c.read_response();
        REQUIRE(no.has_value());
        CHECK(no->status == 405);
        CHECK(no->header("Allow") == "GET");
        CHECK(no->header("Connection") == "close");
        const auto rest = c.read_to_eof();
        CHECK(rest.has_value());
        c.close();
        CHECK(echo.stop() == 0);
    }
}

TEST_CASE("echo: a request pipelined after a rejected one is never answered") {
    EchoProcess echo;
    {
        Client c(echo.port());
        REQUIRE(c.send(get("/anything/first") + "GET /anything HTTP/1.1\r\n\r\n" + get("/anything/third")));
        const auto first = c.read_response();
        REQUIRE(first.has_value());
        CHECK(first->status == 200);
        CHECK(first->body_json()["path"] == "/anything/first");
        const auto bad = c.read_response();
        REQUIRE(bad.has_value());
        CHECK(bad->status == 400);
        const auto rest = c.read_to_eof();
        REQUIRE_MESSAGE(rest.has_value(), "connection still open after the rejection");
        CHECK_MESSAGE(rest->empty(), "a request after the rejection was answered: " << *rest);
    }
    {
        // Smuggling shape: CL+TE, then what a TE-honouring front end would see as a second request.
        Client c(echo.port());
        REQUIRE(c.send("POST /anything HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "0\r\n\r\n" +
                       get("/anything/smuggled")));
        const auto bad = c.read_response();
        REQUIRE(bad.has_value());
        CHECK(bad->status == 400);
        const auto rest = c.read_to_eof();
        REQUIRE(rest.has_value());
        CHECK(rest->empty());
    }
    CHECK(echo.stop() == 0);
}

TEST_CASE("echo: HEAD has GET's headers and no body") {
    EchoProcess echo;
    {
        Client c(echo.port());
        REQUIRE(c.send(get("/anything/h?x=1")));
        const auto g = c.read_response();
        REQUIRE(g.has_value());
        REQUIRE(g->status == 200);
        REQUIRE(c.send("HEAD /anything/h?x=1 HTTP/1.1\r\nHost: echo.test\r\n\r\n"));
        const auto h = c.read_response(true);
        REQUIRE(h.has_value());
        CHECK(h->status == 200);
        CHECK(h->header("Content-Type") == g->header("Content-Type"));
        // The echo reflects the method, so HEAD's body is GET's with "GET" -> "HEAD".
        auto expected = nlohmann::ordered_json::parse(g->body);
        expected["method"] = "HEAD";
        const std::string expected_body = expected.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
        REQUIRE(h->header("Content-Length").has_value());
        CHECK(std::stoul(*h->header("Content-Length")) == expected_body.size());
        CHECK(std::stoul(*h->header("Content-Length")) == std::stoul(*g->header("Content-Length")) + 1);
        // No body bytes followed the HEAD response: the next response starts right away.
        REQUIRE(c.send(get("/anything/after-head")));
        const auto next = c.read_response();
        REQUIRE(next.has_value());
        CHECK(next->status == 200);
        CHECK(next->body_json()["path"] == "/anything/after-head");
    }
    CHECK(echo.stop() == 0);
}

TEST_CASE("echo: Expect: 100-continue") {
    EchoProcess echo;
    SUBCASE("HTTP/1.1: 100 Continue before the body, then the final response") {
        Client c(echo.port());
        REQUIRE(c.send("POST /anything/cont HTTP/1.1\r\nHost: echo.test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
        const auto interim = c.read_response(false, 5s);
        REQUIRE_MESSAGE(interim.has_value(), "no 100 Continue before the body was sent");
        CHECK(interim->status_line == "HTTP/1.1 100 Continue");
        CHECK(interim->status == 100);
        REQUIRE(c.send("hello"));
        const auto r = c.read_response();
        REQUIRE(r.has_value());
        CHECK(r->status == 200);
        CHECK(r->body_json()["body"] == "hello");
    }
    SUBCASE("HTTP/1.1 chunked: 100 Continue too") {
        Client c(echo.port());
        REQUIRE(c.send("POST /anything/cont HTTP/1.1\r\nHost: echo.test\r\nTransfer-Encoding: chunked\r\n"
                       "Expect: 100-Continue\r\n\r\n"));
        const auto interim = c.read_response(false, 5s);
        REQUIRE(interim.has_value());
        CHECK(interim->status == 100);
        REQUIRE(c.send("2\r\nhi\r\n0\r\n\r\n"));
        const auto r = c.read_response();
        REQUIRE(r.has_value());
        CHECK(r->status == 200);
        CHECK(r->body_json()["body"] == "hi");
    }
    SUBCASE("HTTP/1.0: no 100") {
        Client c(echo.port());
        REQUIRE(c.send("POST /anything/cont HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
        CHECK_MESSAGE(c.silent_for(300ms), "the server answered an HTTP/1.0 Expect before the body");
        REQUIRE(c.send("hello"));
        const auto r = c.read_response();
        REQUIRE(r.has_value());
        CHECK(r->status == 200);
        CHECK(r->body_json()["body"] == "hello");
    }
    CHECK(echo.stop() == 0);
}

TEST_CASE("echo: keep-alive and connection close") {
    SUBCASE("defaults") {
        EchoProcess echo;
        {
            INFO("HTTP/1.0 without keep-alive closes");
            Client c(echo.port());
            REQUIRE(c.send("GET /anything HTTP/1.0\r\n\r\n"));
            const auto r = c.read_response();
            REQUIRE(r.has_value());
            CHECK(r->status == 200);
            CHECK(r->header("Connection") == "close");
            const auto rest = c.read_to_eof();
            REQUIRE(rest.has_value());
            CHECK(rest->empty());
        }
        {
            INFO("HTTP/1.0 with Connection: keep-alive stays open");
            Client c(echo.port());
            for (int i = 0; i < 3; ++i) {
                REQUIRE(c.send("GET /anything/ka10 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
                const auto r = c.read_response();
                REQUIRE(r.has_value());
                CHECK(r->status == 200);
                CHECK(r->header("Connection") == "keep-alive");
            }
            CHECK(c.silent_for(100ms));
        }
        {
            INFO("HTTP/1.1 Connection: close closes");
            Client c(echo.port());
            REQUIRE(c.send(get("/anything", "Connection: close\r\n")));
            const auto r = c.read_response();
            REQUIRE(r.has_value());
            CHECK(r->status == 200);
            CHECK(r->header("Connection") == "close");
            const auto rest = c.read_to_eof();
            REQUIRE(rest.has_value());
            CHECK(rest->empty());
        }
        {
            INFO("HTTP/1.1 stays open by default");
            Client c(echo.port());
            REQUIRE(c.send(get("/anything")));
            const auto r = c.read_response();
            REQUIRE(r.has_value());
            CHECK(!r->header("Connection").has_value());
            CHECK(c.silent_for(200ms));
        }
        CHECK(echo.stop() == 0);
    }
    SUBCASE("--max-requests-per-conn 3") {
        EchoProcess echo({"--max-requests-per-conn", "3"});
        {
            Client c(echo.port());
            for (int i = 1; i <= 3; ++i) {
                INFO("request " << i);
                REQUIRE(c.send(get("/anything/" + std::to_string(i))));
                const auto r = c.read_response();
                REQUIRE(r.has_value());
                CHECK(r->status == 200);
                CHECK(r->header("Connection").has_value() == (i == 3));
                if (i == 3) {
                    CHECK(r->header("Connection") == "close");
                }
            }
            const auto rest = c.read_to_eof();
            REQUIRE(rest.has_value());
            CHECK(rest->empty());
        }
        {
            INFO("four pipelined: three answered, then the close");
            Client c(echo.port());
            REQUIRE(c.send(get("/anything/1") + get("/anything/2") + get("/anything/3") + get("/anything/4")));
            for (int i = 1; i <= 3; ++i) {
                const auto r = c.read_response();
                REQUIRE(r.has_value());
                CHECK(r->body_json()["path"] == "/anything/" + std::to_string(i));
            }
            const auto rest = c.read_to_eof();
            REQUIRE(rest.has_value());
            CHECK_MESSAGE(rest->empty(), "a fourth response: " << *rest);
        }
        CHECK(echo.stop() == 0);
    }
    SUBCASE("--disable-keepalive") {
        EchoProcess echo({"--disable-keepalive"});
        {
            Client c(echo.port());
            REQUIRE(c.send(get("/anything") + get("/anything/second")));
            const auto r = c.read_response();
            REQUIRE(r.has_value());
            CHECK(r->status == 200);
            CHECK(r->header("Connection") == "close");
            const auto rest = c.read_to_eof();
            REQUIRE(rest.has_value());
            CHECK(rest->empty());
        }
        CHECK(echo.stop() == 0);
    }
}

TEST_CASE("echo: timeouts") {
    SUBCASE("--idle-timeout-ms 300 closes an idle keep-alive connection") {
        EchoProcess echo({"--idle-timeout-ms", "300"});
        {
            Client c(echo.port());
            REQUIRE(c.send(get("/anything")));
            const auto r = c.read_response();
            REQUIRE(r.has_value());
            CHECK(r->status == 200);
            const auto start = Clock::now();
            const auto rest = c.read_to_eof(5s);
            REQUIRE_MESSAGE(rest.has_value(), "idle connection still open after 5 s");
            CHECK(rest->empty());
            CHECK(Clock::now() - start >= 200ms);
        }
        {
            INFO("a connection that never sends a byte");
            Client c(echo.port());
            const auto rest = c.read_to_eof(5s);
            REQUIRE(rest.has_value());
            CHECK(rest->empty());
        }
        CHECK(echo.stop() == 0);
    }
    SUBCASE("--header-read-timeout-ms 300: half a head gets 408 and a close") {
        EchoProcess echo({"--header-read-timeout-ms", "300"});
        {
            Client c(echo.port());
            REQUIRE(c.send("GET /anything HTTP/1.1\r\nHost: echo.test\r\n"));
            const auto r = c.read_response(false, 5s);
            REQUIRE_MESSAGE(r.has_value(), "no 408 within 5 s");
            CHECK(r->status == 408);
            const auto rest = c.read_to_eof(5s);
            REQUIRE(rest.has_value());
            CHECK(rest->empty());
        }
        CHECK(echo.stop() == 0);
    }
    SUBCASE("--header-read-timeout-ms 300 bounds the whole head, not each read (slowloris)") {
        // ServerOptions::header_read_timeout: "head must arrive within (slowloris defence)".
        EchoProcess echo({"--header-read-timeout-ms", "300"});
        {
            Client c(echo.port());
            const std::string head = get("/anything/drip", "X-Drip: " + std::string(40, 'd') + "\r\n");
            const auto start = Clock::now();
            for (const char ch : head) {
                if (!c.send(std::string_view(&ch, 1)) || !c.silent_for(50ms)) {
                    break; // the server answered (or closed) before the head was complete
                }
            }
            const auto r = c.read_response(false, 5s);
            REQUIRE(r.has_value());
            CHECK_MESSAGE(r->status == 408, "a head dripped over " << head.size() * 50 << " ms was served");
            CHECK(Clock::now() - start < 2s);
        }
        CHECK(echo.stop() == 0);
    }
    SUBCASE("--read-timeout-ms 300: a stalled body closes the connection") {
        EchoProcess echo({"--read-timeout-ms", "300"});
        {
            Client c(echo.port());
            REQUIRE(c.send("POST /anything HTTP/1.1\r\nHost: echo.test\r\nContent-Length: 10\r\n\r\nabc"));
            const auto rest = c.read_to_eof(5s);
            REQUIRE_MESSAGE(rest.has_value(), "connection with a stalled body still open after 5 s");
            // Either a 408 or nothing, never a 200.
            CHECK(rest->find("200 OK") == std::string::npos);
        }
        CHECK(echo.stop() == 0);
    }
}

TEST_CASE("echo: Date and Server headers") {
    SUBCASE("defaults") {
        EchoProcess echo;
        {
            Client c(echo.port());
            REQUIRE(c.send(get("/anything")));
            const auto r = c.read_response();
            REQUIRE(r.has_value());
            CHECK(r->header("Server") == "ringwork");
            REQUIRE(r->header("Date").has_value());
            const std::string date = *r->header("Date");
            CHECK(date.size() == 29); // "Sun, 06 Nov 1994 08:49:37 GMT"
            CHECK(date.ends_with(" GMT"));
            CHECK(r->header_count("Date") == 1);
            CHECK(r->header_count("Server") == 1);
        }
        CHECK(echo.stop() == 0);
    }
    SUBCASE("--name and --no-date") {
        EchoProcess echo({"--name", "EchoTest/1.0", "--no-date"});
        {
            Client c(echo.port());
            REQUIRE(c.send(get("/anything")));
            const auto r = c.read_response();
            REQUIRE(r.has_value());
            CHECK(r->header("Server") == "EchoTest/1.0");
            CHECK(!r->header("Date").has_value());
            // Rejections too.
            REQUIRE(c.send("GET /anything HTTP/1.1\r\n\r\n"));
            const auto bad = c.read_response();
            REQUIRE(bad.has_value());
            CHECK(bad->status == 400);
            CHECK(bad->header("Server") == "EchoTest/1.0");
            CHECK(!bad->header("Date").has_value());
        }
        CHECK(echo.stop() == 0);
    }
    SUBCASE("--no-server-header") {
        EchoProcess echo({"--no-server-header"});
        {
            Client c(echo.port());
            REQUIRE(c.send(get("/anything")));
            const auto r = c.read_response();
            REQUIRE(r.has_value());
            CHECK(!r->header("Server").has_value());
            CHECK(r->header("Date").has_value());
        }
        CHECK(echo.stop() == 0);
    }
}

TEST_CASE("echo: --disable-header-normalizing keeps header names as received") {
    EchoProcess echo({"--disable-header-normalizing"});
    {
        Client c(echo.port());
        REQUIRE(c.send("GET /anything HTTP/1.1\r\nhOST: echo.test\r\nx-lower-case: 1\r\n\r\n"));
        const auto r = c.read_response();
        REQUIRE(r.has_value());
        CHECK(r->status == 200);
        CHECK(r->body_json()["headers"] == json::parse(R"([["hOST","echo.test"],["x-lower-case","1"]])"));
    }
    CHECK(echo.stop() == 0);
}

TEST_CASE("echo: non-UTF-8 bytes still give valid JSON") {
    EchoProcess echo;
    {
        Client c(echo.port());
        const std::string body = "ok\xff\xfe\x80 \xc3"; // invalid sequences and a truncated one
        REQUIRE(c.send(post("/anything/%FF%C3?q=%FE&%80=v", body, "X-Bytes: a\xe9z\r\n")));
        const auto r = c.read_response();
        REQUIRE(r.has_value());
        CHECK(r->status == 200);
        json j;
        REQUIRE_NOTHROW(j = json::parse(r->body)); // nlohmann rejects invalid UTF-8
        CHECK(j["body_length"] == body.size());
        const std::string echoed = j["body"];
        CHECK(echoed.starts_with("ok\xef\xbf\xbd")); // U+FFFD replaces the bad bytes
        CHECK(j["path"].get<std::string>().starts_with("/anything/"));
        CHECK(j["raw_path"] == "/anything/%FF%C3?q=%FE&%80=v");
        CHECK(j["query"].size() == 2);
        CHECK(j["headers"][1][0] == "X-Bytes");
    }
    CHECK(echo.stop() == 0);
}

TEST_CASE("echo: curl re-uses one kept-alive connection for several URLs") {
    if (run_shell("command -v curl >/dev/null 2>&1").second != 0) {
        MESSAGE("curl not installed: skipped");
        return;
    }
    EchoProcess echo;
    const std::string cmd = "timeout 30 curl -sv --noproxy '*' --max-time 20 '" + echo.url("/anything/c1") + "' '" +
                            echo.url("/anything/c2?k=v") + "' '" + echo.url("/anything/c3") + "' 2>&1";
    const auto result = run_shell(cmd);
    const std::string& out = result.first;
    const int rc = result.second;
    INFO("curl output:\n" << out);
    CHECK(rc == 0);
    CHECK(out.find(R"("path":"/anything/c1")") != std::string::npos);
    CHECK(out.find(R"("path":"/anything/c2","raw_path":"/anything/c2?k=v","query":{"k":["v"]})") != std::string::npos);
    CHECK(out.find(R"("path":"/anything/c3")") != std::string::npos);
    CHECK(count_of(out, "Re-using existing connection") == 2);
    CHECK(count_of(out, "Connected to") == 1);
    CHECK(echo.stop() == 0);
}

TEST_CASE("echo: Python http.client, several requests on one connection") {
    if (run_shell("command -v python3 >/dev/null 2>&1").second != 0) {
        MESSAGE("python3 not installed: skipped");
        return;
    }
    EchoProcess echo;
    const std::string script =
        "import http.client, json\n"
        "c = http.client.HTTPConnection('127.0.0.1', " + std::to_string(echo.port()) + ", timeout=10)\n"
        "ports = set()\n"
        "for i in range(4):\n"
        "    c.request('POST', '/anything/py%d?n=%d' % (i, i), body=b'x' * i, headers={'X-I': str(i)})\n"
        "    ports.add(c.sock.getsockname()[1])\n"
        "    r = c.getresponse()\n"
        "    d = json.loads(r.read())\n"
        "    print(r.status, d['method'], d['path'], d['query']['n'][0], d['body_length'], dict(d['headers'])['X-I'])\n"
        "c.request('HEAD', '/anything/head')\n"
        "r = c.getresponse()\n"
        "print(r.status, len(r.read()), r.getheader('Content-Type'))\n"
        "ports.add(c.sock.getsockname()[1])\n"
        "print('connections', len(ports))\n";
    const auto result = run_shell("timeout 30 python3 - 2>&1 <<'PYEOF'\n" + script + "PYEOF\n");
    const std::string& out = result.first; // not a structured binding: clang 14 cannot capture those (INFO)
    const int rc = result.second;
    INFO("python output:\n" << out);
    CHECK(rc == 0);
    CHECK(out == "200 POST /anything/py0 0 0 0\n"
                 "200 POST /anything/py1 1 1 1\n"
                 "200 POST /anything/py2 2 2 2\n"
                 "200 POST /anything/py3 3 3 3\n"
                 "200 0 application/json\n"
                 "connections 1\n");
    CHECK(echo.stop() == 0);
}

TEST_CASE("echo: --concurrency 1: a second connection gets 503 and a close") {
    EchoProcess echo({"--concurrency", "1"});
    {
        Client first(echo.port());
        REQUIRE(first.send(get("/anything/first")));
        const auto r = first.read_response();
        REQUIRE(r.has_value());
        CHECK(r->status == 200);
        Client second(echo.port());
        const auto busy = second.read_response();
        REQUIRE_MESSAGE(busy.has_value(), "no 503 for a connection over the limit");
        CHECK(busy->status == 503);
        CHECK(busy->header("Connection") == "close");
        const auto rest = second.read_to_eof();
        REQUIRE(rest.has_value());
        CHECK(rest->empty());
        // The first connection is still served.
        REQUIRE(first.send(get("/anything/again")));
        const auto again = first.read_response();
        REQUIRE(again.has_value());
        CHECK(again->body_json()["path"] == "/anything/again");
        second.close();
        first.close();
        // Once it is gone, a new connection is served.
        CHECK(test::eventually([&] {
            Client third(echo.port());
            return third.send(get("/anything/third")) && third.read_response().value_or(HttpResponse{}).status == 200;
        }, 5000ms));
    }
    CHECK(echo.stop() == 0);
}

TEST_CASE("echo: SIGTERM with an idle keep-alive connection stops gracefully") {
    EchoProcess echo({"--threads", "2"});
    Client c(echo.port());
    REQUIRE(c.send(get("/anything")));
    const auto r = c.read_response();
    REQUIRE(r.has_value());
    CHECK(r->status == 200);
    const auto start = Clock::now();
    CHECK(echo.stop(5s) == 0);
    CHECK(Clock::now() - start < 5s);
    const auto rest = c.read_to_eof(1s);
    REQUIRE(rest.has_value());
    CHECK(rest->empty());
}

TEST_CASE("echo: command line") {
    const std::string exe = echo_path();
    SUBCASE("--help lists every flag with its default") {
        const auto [out, rc] = run_shell("timeout 10 '" + exe + "' --help");
        CHECK(rc == 0);
        for (const std::string_view flag :
             {"--host", "--port", "--threads", "--max-body-size", "--max-request-line", "--max-header-bytes",
              "--max-headers", "--read-timeout-ms", "--header-read-timeout-ms", "--idle-timeout-ms",
              "--write-timeout-ms", "--disable-keepalive", "--max-requests-per-conn", "--get-only", "--name",
              "--no-server-header", "--no-date", "--disable-header-normalizing", "--concurrency",
              "--max-idle-worker-duration-ms", "--sleep-when-concurrency-limits-exceeded-ms", "--write-buffer-size",
              "--linger-timeout-ms", "--no-default-content-type", "--close-on-shutdown", "--unix", "--systemd",
              "--help"}) {
            INFO("flag: " << flag);
            CHECK(out.find(flag) != std::string::npos);
        }
        CHECK(out.find("default 8080") != std::string::npos);
        CHECK(out.find("default 4194304") != std::string::npos);
    }
    SUBCASE("invalid values exit 2 naming the flag") {
        for (const std::pair<std::string_view, std::string_view> bad :
             {std::pair{"--port", "abc"}, std::pair{"--port", "70000"}, std::pair{"--threads", "-1"},
              std::pair{"--max-headers", "0"}, std::pair{"--max-request-line", "3"},
              std::pair{"--max-body-size", "1k"}, std::pair{"--idle-timeout-ms", "soon"},
              std::pair{"--max-requests-per-conn", ""}, std::pair{"--host", "not an address"},
              std::pair{"--concurrency", "0"}, std::pair{"--write-buffer-size", "10"}, std::pair{"--unix", ""}}) {
            INFO("flag: " << bad.first << " '" << bad.second << "'");
            const auto [out, rc] = run_shell("timeout 10 '" + exe + "' " + std::string(bad.first) + " '" +
                                             std::string(bad.second) + "' 2>&1");
            CHECK(rc == 2);
            CHECK(out.find(bad.first) != std::string::npos);
        }
        const auto [missing, rc1] = run_shell("timeout 10 '" + exe + "' --port 2>&1");
        CHECK(rc1 == 2);
        CHECK(missing.find("--port") != std::string::npos);
        const auto [unknown, rc2] = run_shell("timeout 10 '" + exe + "' --bogus 2>&1");
        CHECK(rc2 == 2);
        CHECK(unknown.find("--bogus") != std::string::npos);
    }
}

TEST_CASE("echo: --unix serves over a Unix socket and removes the file on SIGTERM") {
    if (run_shell("command -v curl >/dev/null 2>&1").second != 0) {
        MESSAGE("curl not installed: skipped");
        return;
    }
    const std::string exe = echo_path();
    const std::string path = "/tmp/ringwork-echo-it-" + std::to_string(::getpid()) + ".sock";
    ::unlink(path.c_str());
    // Bounded throughout: the socket must appear within 5 s, curl has 5 s, the whole run 20 s.
    const std::string script =
        "timeout 20 sh -c '\"$0\" --unix \"$1\" >/dev/null & pid=$!; i=0; "
        "while [ ! -S \"$1\" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; "
        "curl -s --max-time 5 --unix-socket \"$1\" http://x/anything/unix; rc=$?; "
        "kill -TERM $pid; wait $pid; ex=$?; echo; echo rc=$rc exit=$ex' '" + exe + "' '" + path + "'";
    const auto [out, rc] = run_shell(script);
    CHECK(rc == 0);
    CHECK(out.find(R"("path":"/anything/unix")") != std::string::npos);
    CHECK(out.find("rc=0 exit=0") != std::string::npos);
    CHECK(::access(path.c_str(), F_OK) != 0); // the socket file is gone after the graceful stop
    ::unlink(path.c_str());
}
