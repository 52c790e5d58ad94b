// SPDX-License-Identifier: MIT
// Integration tests: the ringwork-echo app as a child process, driven over raw TCP, curl and Python's http.client:
// the server behaviours of every ServerOptions flag, then each httpbin-style route.
#include "app_process.hpp"
#include "helpers.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <zlib.h>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
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
    /// Every value of header `name`, in order (Set-Cookie).
    [[nodiscard]] std::vector<std::string> header_values(std::string_view name) const {
        std::vector<std::string> out;
        for (const auto& [n, v] : headers) {
            if (iequal(n, name)) {
                out.push_back(v);
            }
        }
        return out;
    }
    [[nodiscard]] json body_json() const { return json::parse(body); }

    /// The data of each chunk of a chunked body (`body` holds them joined).
    std::vector<std::string> chunks;
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

    /// Read one response (HEAD and 1xx/204/304 carry no body; others are framed by
    /// Content-Length or chunked). nullopt on EOF, error or timeout.
    std::optional<HttpResponse> read_response(bool head_request = false, std::chrono::milliseconds limit = 10s) {
        const auto deadline = Clock::now() + limit;
        auto r = read_head(deadline);
        if (!r) {
            return std::nullopt;
        }
        const bool bodyless = head_request || (r->status >= 100 && r->status < 200) || r->status == 204 || r->status == 304;
        if (bodyless) {
            return r;
        }
        if (r->header("Transfer-Encoding") == "chunked") {
            for (;;) {
                auto chunk = read_chunk(deadline);
                if (!chunk) {
                    return std::nullopt;
                }
                if (chunk->empty()) {
                    return r;
                }
                r->body += *chunk;
                r->chunks.push_back(std::move(*chunk));
            }
        }
        const auto cl = r->header("Content-Length");
        if (!cl) {
            FAIL_CHECK("response without Content-Length or chunked framing: " << r->status_line);
            return std::nullopt;
        }
        const std::size_t n = std::stoul(*cl);
        if (!fill_to(n, deadline)) {
            return std::nullopt;
        }
        r->body = buf_.substr(0, n);
        buf_.erase(0, n);
        return r;
    }

    /// Read a status line and the header fields (not the body). nullopt on EOF, error or timeout.
    std::optional<HttpResponse> read_head(Clock::time_point deadline) {
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
        return r;
    }

    /// The next chunk of a chunked body: its data, an empty string for the last chunk (its
    /// trailer section consumed), nullopt on malformed framing, EOF, error or timeout.
    std::optional<std::string> read_chunk(Clock::time_point deadline) {
        const auto size_line = read_line(deadline);
        if (!size_line) {
            return std::nullopt;
        }
        const std::string digits = size_line->substr(0, size_line->find(';'));
        std::size_t size = 0;
        const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), size, 16);
        if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size()) {
            FAIL_CHECK("malformed chunk size line: '" << *size_line << "'");
            return std::nullopt;
        }
        if (size == 0) {
            for (;;) { // trailer fields up to the empty line
                const auto trailer = read_line(deadline);
                if (!trailer) {
                    return std::nullopt;
                }
                if (trailer->empty()) {
                    return std::string();
                }
            }
        }
        if (!fill_to(size + 2, deadline)) {
            return std::nullopt;
        }
        if (buf_.compare(size, 2, "\r\n") != 0) {
            FAIL_CHECK("chunk data not followed by CRLF");
            return std::nullopt;
        }
        std::string data = buf_.substr(0, size);
        buf_.erase(0, size + 2);
        return data;
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
    /// One CRLF-terminated line, without the CRLF.
    std::optional<std::string> read_line(Clock::time_point deadline) {
        std::size_t end = 0;
        while ((end = buf_.find("\r\n")) == std::string::npos) {
            if (fill(deadline) <= 0) {
                return std::nullopt;
            }
        }
        std::string line = buf_.substr(0, end);
        buf_.erase(0, end + 2);
        return line;
    }

    /// Receive until at least `n` bytes are buffered.
    bool fill_to(std::size_t n, Clock::time_point deadline) {
        while (buf_.size() < n) {
            if (fill(deadline) <= 0) {
                return false;
            }
        }
        return true;
    }

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

/// The /bytes generator (splitmix64, each output as 8 little-endian bytes), as the app documents it.
std::string splitmix_bytes(std::uint64_t seed, std::size_t n) {
    std::string out(n, '\0');
    std::uint64_t state = seed;
    for (std::size_t i = 0; i < n; i += 8) {
        std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30U)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27U)) * 0x94d049bb133111ebULL;
        z ^= z >> 31U;
        for (std::size_t k = i; k < i + 8 && k < n; ++k, z >>= 8U) {
            out[k] = static_cast<char>(z & 0xFFU);
        }
    }
    return out;
}

std::string base64(std::string_view in) {
    static constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    for (; i + 3 <= in.size(); i += 3) {
        const auto v = (static_cast<std::uint32_t>(static_cast<unsigned char>(in[i])) << 16U) |
                       (static_cast<std::uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8U) |
                       static_cast<unsigned char>(in[i + 2]);
        for (const unsigned shift : {18U, 12U, 6U, 0U}) {
            out += kAlphabet[(v >> shift) & 63U];
        }
    }
    if (i + 1 == in.size()) {
        const auto v = static_cast<std::uint32_t>(static_cast<unsigned char>(in[i])) << 16U;
        out += kAlphabet[(v >> 18U) & 63U];
        out += kAlphabet[(v >> 12U) & 63U];
        out += "==";
    } else if (i + 2 == in.size()) {
        const auto v = (static_cast<std::uint32_t>(static_cast<unsigned char>(in[i])) << 16U) |
                       (static_cast<std::uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8U);
        out += kAlphabet[(v >> 18U) & 63U];
        out += kAlphabet[(v >> 12U) & 63U];
        out += kAlphabet[(v >> 6U) & 63U];
        out += '=';
    }
    return out;
}

/// Inflate a gzip stream (zlib); nullopt when it is not valid gzip.
std::optional<std::string> gunzip(std::string_view data) {
    z_stream zs{};
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
        return std::nullopt;
    }
    std::string out;
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data())); // NOLINT: zlib's API
    zs.avail_in = static_cast<uInt>(data.size());
    int rc = Z_OK;
    while (rc == Z_OK) {
        char buf[4096];
        zs.next_out = reinterpret_cast<Bytef*>(buf); // NOLINT: zlib's API
        zs.avail_out = sizeof buf;
        rc = inflate(&zs, Z_NO_FLUSH);
        out.append(buf, sizeof buf - zs.avail_out);
    }
    const bool complete = rc == Z_STREAM_END && zs.avail_in == 0;
    inflateEnd(&zs);
    return complete ? std::optional<std::string>(out) : std::nullopt;
}

/// One request on a fresh connection, its response (REQUIREd to arrive).
HttpResponse fetch(std::uint16_t port, const std::string& request, bool head_request = false) {
    Client c(port);
    REQUIRE(c.send(request));
    auto r = c.read_response(head_request);
    REQUIRE_MESSAGE(r.has_value(), "no response to: " << request);
    return std::move(*r);
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
        expect_rejected(port, "TE gzip", "POST /anything HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400);
        expect_rejected(port, "TE gzip, chunked",
                        "POST /anything HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501);
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

// --- the httpbin-style routes ---------------------------------------------------------------

TEST_CASE("echo: /get, /post, /put, /patch and /delete echo their one method") {
    EchoProcess echo;
    {
        Client c(echo.port());
        REQUIRE(c.send(get("/get?a=1")));
        const auto g = c.read_response();
        REQUIRE(g.has_value());
        CHECK(g->status == 200);
        CHECK(g->header("Content-Type") == "application/json");
        CHECK(g->body_json()["method"] == "GET");
        CHECK(g->body_json()["path"] == "/get");
        CHECK(g->body_json()["query"] == json::parse(R"({"a":["1"]})"));
        for (const std::string_view method : {"POST", "PUT", "PATCH", "DELETE"}) {
            INFO("method: " << method);
            std::string path = "/" + std::string(method);
            for (char& ch : path) {
                ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
            }
            REQUIRE(c.send(std::string(method) + " " + path + " HTTP/1.1\r\nHost: echo.test\r\nContent-Length: 4\r\n\r\nbody"));
            const auto r = c.read_response();
            REQUIRE(r.has_value());
            CHECK(r->status == 200);
            const json j = r->body_json();
            CHECK(j["method"] == method);
            CHECK(j["path"] == path);
            CHECK(j["body"] == "body");
        }
        // Another method on these paths: 405 with Allow, and the connection goes on.
        REQUIRE(c.send(post("/get", "x")));
        const auto no = c.read_response();
        REQUIRE(no.has_value());
        CHECK(no->status == 405);
        CHECK(no->header("Allow").value_or("").starts_with("GET, HEAD"));
        REQUIRE(c.send(get("/post")));
        const auto no2 = c.read_response();
        REQUIRE(no2.has_value());
        CHECK(no2->status == 405);
        CHECK(no2->header("Allow").value_or("").starts_with("POST"));
        REQUIRE(c.send(get("/anything/still-open")));
        const auto next = c.read_response();
        REQUIRE(next.has_value());
        CHECK(next->status == 200);
    }
    CHECK(echo.stop() == 0);
}

TEST_CASE("echo: /status/:code answers that status; anything but 200 to 599 is 400") {
    EchoProcess echo;
    {
        Client c(echo.port());
        for (const int code : {200, 201, 202, 204, 299, 304, 400, 404, 418, 429, 500, 503, 599}) {
            INFO("code " << code);
            REQUIRE(c.send(get("/status/" + std::to_string(code))));
            const auto r = c.read_response();
            REQUIRE(r.has_value());
            CHECK(r->status == code);
            CHECK(r->status_line.starts_with("HTTP/1.1 " + std::to_string(code) + " "));
            CHECK(r->body.empty());
        }
        {
            // Any method; a redirect status points at /redirect/1, a 401 challenges.
            REQUIRE(c.send(post("/status/302", "ignored")));
            const auto r = c.read_response();
            REQUIRE(r.has_value());
            CHECK(r->status == 302);
            CHECK(r->header("Location") == "/redirect/1");
            REQUIRE(c.send("PUT /status/401 HTTP/1.1\r\nHost: echo.test\r\nContent-Length: 0\r\n\r\n"));
            const auto u = c.read_response();
            REQUIRE(u.has_value());
            CHECK(u->status == 401);
            CHECK(u->header("WWW-Authenticate") == R"(Basic realm="Fake Realm")");
        }
        for (const std::string_view code : {"abc", "99", "100", "101", "199", "600", "1000", "-200", "+200", "2000000000000000000000", "20x", "%20200"}) {
            INFO("code '" << code << "'");
            REQUIRE(c.send(get("/status/" + std::string(code))));
            const auto r = c.read_response();
            REQUIRE(r.has_value());
            CHECK(r->status == 400);
            CHECK(r->header("Content-Type") == "application/json");
            const json j = r->body_json();
            CHECK(j["status"] == 400);
            CHECK(j["error"] == "the status code must be an integer from 200 to 599");
        }
        // A percent-encoded code is decoded first, like every route parameter.
        REQUIRE(c.send(get("/status/%32%30%31")));
        const auto d = c.read_response();
        REQUIRE(d.has_value());
        CHECK(d->status == 201);
        // HEAD too.
        REQUIRE(c.send("HEAD /status/404 HTTP/1.1\r\nHost: echo.test\r\n\r\n"));
        const auto h = c.read_response(true);
        REQUIRE(h.has_value());
        CHECK(h->status == 404);
        // /status alone is not a route.
        REQUIRE(c.send(get("/status")));
        const auto missing = c.read_response();
        REQUIRE(missing.has_value());
        CHECK(missing->status == 404);
    }
    CHECK(echo.stop() == 0);
}

TEST_CASE("echo: /delay/:ms waits on a timer and the reactor serves others meanwhile") {
    EchoProcess echo({"--threads", "1"});
    {
        Client slow(echo.port());
        const auto start = Clock::now();
        REQUIRE(slow.send(get("/delay/3000?k=v")));
        // The only reactor answers another connection at once: a blocked thread could not
        // answer before the delay is over.
        const HttpResponse fast = fetch(echo.port(), get("/anything/meanwhile"));
        const auto fast_done = Clock::now();
        CHECK(fast.status == 200);
        CHECK(fast.body_json()["path"] == "/anything/meanwhile");
        CHECK_MESSAGE(fast_done - start < 3000ms, "a request during /delay/3000 waited for it");
        CHECK(slow.silent_for(0ms)); // and the delayed answer has not come yet
        const auto r = slow.read_response(false, 15s);
        REQUIRE(r.has_value());
        CHECK(Clock::now() - start >= 3000ms);
        CHECK(r->status == 200);
        const json j = r->body_json();
        CHECK(j["method"] == "GET");
        CHECK(j["path"] == "/delay/3000");
        CHECK(j["query"] == json::parse(R"({"k":["v"]})"));
    }
    {
        // Any method, the body echoed; 0 is no wait.
        const HttpResponse r = fetch(echo.port(), post("/delay/0", "payload"));
        CHECK(r.status == 200);
        CHECK(r.body_json()["method"] == "POST");
        CHECK(r.body_json()["body"] == "payload");
        CHECK(fetch(echo.port(), get("/delay/10")).status == 200);
    }
    {
        // The cap: 10 s.
        Client c(echo.port());
        for (const std::string_view ms : {"10001", "99999999999", "abc", "-1", "1.5", "1e3"}) {
            INFO("ms '" << ms << "'");
            REQUIRE(c.send(get("/delay/" + std::string(ms))));
            const auto r = c.read_response(false, 5s); // at once, no waiting
            REQUIRE(r.has_value());
            CHECK(r->status == 400);
            CHECK(r->body_json()["error"] == "the delay (ms) must be an integer from 0 to 10000");
        }
    }
    {
        // A client that resets during the delay: the server goes on and stops cleanly.
        const int fd = test::connect_blocking(echo.port());
        REQUIRE(test::write_all(fd, get("/delay/8000")));
        std::this_thread::sleep_for(100ms); // (not needed for correctness: lets the handler start)
        test::reset_close(fd);
        CHECK(fetch(echo.port(), get("/anything/after-reset")).status == 200);
    }
    const auto stop_start = Clock::now();
    CHECK(echo.stop(15s) == 0);
    CHECK_MESSAGE(Clock::now() - stop_start < 7s, "the reset client's /delay/8000 held the shutdown up");
}

TEST_CASE("echo: /headers is an object of the request headers") {
    EchoProcess echo;
    {
        const HttpResponse r =
            fetch(echo.port(), get("/headers", "x-custom: one\r\nX-Dup: a\r\nAccept: */*\r\nX-Dup: b\r\n"));
        CHECK(r.status == 200);
        CHECK(r.header("Content-Type") == "application/json");
        CHECK(r.body == R"({"headers":{"Host":"echo.test","X-Custom":"one","X-Dup":"a, b","Accept":"*/*"}})");
        // Not for POST.
        CHECK(fetch(echo.port(), post("/headers", "x")).status == 405);
    }
    CHECK(echo.stop() == 0);
}

TEST_CASE("echo: /ip is the client address; X-Forwarded-For only from a --trusted-proxy") {
    SUBCASE("no trusted proxy: the header is ignored") {
        EchoProcess echo;
        const HttpResponse r = fetch(echo.port(), get("/ip", "X-Forwarded-For: 203.0.113.9\r\n"));
        CHECK(r.status == 200);
        CHECK(r.body == R"({"origin":"127.0.0.1"})");
        CHECK(echo.stop() == 0);
    }
    SUBCASE("--trusted-proxy 127.0.0.0/8") {
        EchoProcess echo({"--trusted-proxy", "127.0.0.0/8"});
        CHECK(fetch(echo.port(), get("/ip", "X-Forwarded-For: 198.51.100.1, 203.0.113.9\r\n")).body ==
              R"({"origin":"203.0.113.9"})");
        CHECK(fetch(echo.port(), get("/ip")).body == R"({"origin":"127.0.0.1"})");
        CHECK(echo.stop() == 0);
    }
    SUBCASE("an invalid --trusted-proxy exits 2 naming the flag") {
        const auto [out, rc] = run_shell("timeout 10 '" + echo_path() + "' --port 0 --trusted-proxy 'not-an-ip' 2>&1");
        CHECK(rc == 2);
        CHECK(out.find("--trusted-proxy") != std::string::npos);
    }
}

TEST_CASE("echo: /bytes/:n streams n pseudo-random bytes, reproducible with ?seed=") {
    EchoProcess echo;
    {
        Client c(echo.port());
        const std::size_t n = (1U << 20) + 13; // several 64 KiB pieces and a partial 8-byte word
        REQUIRE(c.send(get("/bytes/" + std::to_string(n) + "?seed=42")));
        const auto r = c.read_response(false, 30s);
        REQUIRE(r.has_value());
        CHECK(r->status == 200);
        CHECK(r->header("Content-Type") == "application/octet-stream");
        CHECK(r->header("Content-Length") == std::to_string(n));
        CHECK(!r->header("Transfer-Encoding").has_value());
        REQUIRE(r->body.size() == n);
        CHECK(r->body == splitmix_bytes(42, n));
        // Same seed, same bytes; a prefix of the same stream for a shorter n.
        REQUIRE(c.send(get("/bytes/20?seed=42")));
        const auto again = c.read_response();
        REQUIRE(again.has_value());
        CHECK(again->body == r->body.substr(0, 20));
        REQUIRE(c.send(get("/bytes/16?seed=18446744073709551615")));
        const auto max_seed = c.read_response();
        REQUIRE(max_seed.has_value());
        CHECK(max_seed->body == splitmix_bytes(18446744073709551615ULL, 16));
        // Without a seed: random, so two answers differ.
        REQUIRE(c.send(get("/bytes/64") + get("/bytes/64")));
        const auto a = c.read_response();
        const auto b = c.read_response();
        REQUIRE(a.has_value());
        REQUIRE(b.has_value());
        CHECK(a->body.size() == 64);
        CHECK(b->body.size() == 64);
        CHECK(a->body != b->body);
        // Zero bytes.
        REQUIRE(c.send(get("/bytes/0")));
        const auto zero = c.read_response();
        REQUIRE(zero.has_value());
        CHECK(zero->status == 200);
        CHECK(zero->header("Content-Length") == "0");
        CHECK(zero->body.empty());
        // HEAD at the cap: the length, no body (and nothing generated).
        REQUIRE(c.send("HEAD /bytes/104857600 HTTP/1.1\r\nHost: echo.test\r\n\r\n"));
        const auto head = c.read_response(true);
        REQUIRE(head.has_value());
        CHECK(head->status == 200);
        CHECK(head->header("Content-Length") == "104857600");
        CHECK(c.silent_for(100ms)); // no body bytes follow
        // Over the cap and malformed values: 400.
        for (const std::string_view target : {"/bytes/104857601", "/bytes/abc", "/bytes/-1", "/bytes/10?seed=x",
                                              "/bytes/10?seed=18446744073709551616", "/bytes/10?seed="}) {
            INFO("target " << target);
            REQUIRE(c.send(get(target)));
            const auto bad = c.read_response();
            REQUIRE(bad.has_value());
            CHECK(bad->status == 400);
            CHECK(bad->header("Content-Type") == "application/json");
        }
        // The connection is still in step.
        REQUIRE(c.send(get("/anything/after-bytes")));
        const auto next = c.read_response();
        REQUIRE(next.has_value());
        CHECK(next->body_json()["path"] == "/anything/after-bytes");
    }
    CHECK(echo.stop() == 0);
}

TEST_CASE("echo: /stream/:n sends n chunks, one JSON line each") {
    EchoProcess echo;
    {
        Client c(echo.port());
        REQUIRE(c.send(get("/stream/5?q=1")));
        const auto r = c.read_response();
        REQUIRE(r.has_value());
        CHECK(r->status == 200);
        CHECK(r->header("Transfer-Encoding") == "chunked");
        CHECK(!r->header("Content-Length").has_value());
        CHECK(r->header("Content-Type") == "application/json");
        REQUIRE(r->chunks.size() == 5);
        for (std::size_t i = 0; i < r->chunks.size(); ++i) {
            INFO("chunk " << i);
            const std::string& line = r->chunks[i];
            REQUIRE(line.ends_with("\n"));
            CHECK(line.find('\n') == line.size() - 1); // one line per chunk
            CHECK(line.starts_with(R"({"id":)" + std::to_string(i) + R"(,"method":"GET","path":"/stream/5",)"));
            const json j = json::parse(line);
            CHECK(j["id"] == i);
            CHECK(j["query"] == json::parse(R"({"q":["1"]})"));
        }
        // The connection goes on after the last chunk.
        REQUIRE(c.send(get("/stream/1")));
        const auto one = c.read_response();
        REQUIRE(one.has_value());
        CHECK(one->chunks.size() == 1);
        REQUIRE(c.send(get("/stream/101") + get("/stream/x")));
        for (int i = 0; i < 2; ++i) {
            const auto bad = c.read_response();
            REQUIRE(bad.has_value());
            CHECK(bad->status == 400);
            CHECK(bad->body_json()["error"] == "the line count must be an integer from 0 to 100");
        }
        REQUIRE(c.send(get("/stream/100")));
        const auto hundred = c.read_response();
        REQUIRE(hundred.has_value());
        CHECK(hundred->chunks.size() == 100);
    }
    CHECK(echo.stop() == 0);
}

TEST_CASE("echo: /gzip is a gzip-encoded JSON echo") {
    EchoProcess echo;
    {
        Client c(echo.port());
        REQUIRE(c.send(get("/gzip", "Accept-Encoding: gzip\r\n")));
        const auto r = c.read_response();
        REQUIRE(r.has_value());
        CHECK(r->status == 200);
        CHECK(r->header("Content-Encoding") == "gzip");
        CHECK(r->header("Content-Type") == "application/json");
        REQUIRE(r->body.size() > 18);
        CHECK(static_cast<unsigned char>(r->body[0]) == 0x1f); // the gzip magic
        CHECK(static_cast<unsigned char>(r->body[1]) == 0x8b);
        const auto plain = gunzip(r->body);
        REQUIRE_MESSAGE(plain.has_value(), "the body is not a complete gzip stream");
        const json j = json::parse(*plain);
        CHECK(j["gzipped"] == true);
        CHECK(j["method"] == "GET");
        CHECK(j["path"] == "/gzip");
        CHECK(j["headers"] == json::parse(R"([["Host","echo.test"],["Accept-Encoding","gzip"]])"));
        // httpbin's /gzip is gzip whatever the client accepts.
        REQUIRE(c.send(get("/gzip")));
        const auto plain_client = c.read_response();
        REQUIRE(plain_client.has_value());
        CHECK(plain_client->header("Content-Encoding") == "gzip");
        const auto text = gunzip(plain_client->body);
        REQUIRE(text.has_value());
        CHECK(json::parse(*text)["gzipped"] == true);
    }
    CHECK(echo.stop() == 0);
}

TEST_CASE("echo: /redirect/:n is a chain of 302s ending at /get") {
    EchoProcess echo;
    {
        Client c(echo.port());
        std::string target = "/redirect/3";
        std::vector<std::string> seen;
        int hops = 0;
        for (; hops < 10; ++hops) {
            REQUIRE(c.send(get(target)));
            const auto r = c.read_response();
            REQUIRE(r.has_value());
            if (r->status != 302) {
                CHECK(r->status == 200);
                CHECK(r->body_json()["path"] == "/get");
                break;
            }
            REQUIRE(r->header("Location").has_value());
            target = *r->header("Location");
            seen.push_back(target);
        }
        CHECK(hops == 3);
        CHECK(seen == std::vector<std::string>{"/redirect/2", "/redirect/1", "/get"});
        for (const std::string_view bad : {"/redirect/0", "/redirect/101", "/redirect/x"}) {
            INFO("target " << bad);
            REQUIRE(c.send(get(bad)));
            const auto r = c.read_response();
            REQUIRE(r.has_value());
            CHECK(r->status == 400);
        }
    }
    if (run_shell("command -v curl >/dev/null 2>&1").second == 0) {
        const auto [out, rc] = run_shell("timeout 30 curl -sL --noproxy '*' --max-time 20 -o /dev/null "
                                         "-w '%{http_code} %{num_redirects} %{url_effective}' '" +
                                         echo.url("/redirect/5") + "'");
        CHECK(rc == 0);
        CHECK(out == "200 5 " + echo.url("/get"));
    }
    CHECK(echo.stop() == 0);
}

TEST_CASE("echo: /cookies, /cookies/set and /cookies/delete") {
    EchoProcess echo;
    {
        Client c(echo.port());
        REQUIRE(c.send(get("/cookies")));
        const auto none = c.read_response();
        REQUIRE(none.has_value());
        CHECK(none->status == 200);
        CHECK(none->body == R"({"cookies":{}})");

        REQUIRE(c.send(get("/cookies", "Cookie: a=1; b=\"two\"\r\nCookie: c=3; a=ignored\r\n")));
        const auto jar = c.read_response();
        REQUIRE(jar.has_value());
        CHECK(jar->body == R"({"cookies":{"a":"1","b":"two","c":"3"}})");

        REQUIRE(c.send(get("/cookies/set?session=abc123&theme=dark")));
        const auto set = c.read_response();
        REQUIRE(set.has_value());
        CHECK(set->status == 302);
        CHECK(set->header("Location") == "/cookies");
        CHECK(set->header_values("Set-Cookie") == std::vector<std::string>{"session=abc123; Path=/", "theme=dark; Path=/"});

        REQUIRE(c.send(get("/cookies/delete?session")));
        const auto del = c.read_response();
        REQUIRE(del.has_value());
        CHECK(del->status == 302);
        CHECK(del->header("Location") == "/cookies");
        CHECK(del->header_values("Set-Cookie") ==
              std::vector<std::string>{"session=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0"});

        // A name that is not a token, a value outside cookie-octet: 400, no cookie set.
        for (const std::string_view target : {"/cookies/set?bad%20name=1", "/cookies/set?ok=1&x=a%3Bb", "/cookies/delete?a%2Cb"}) {
            INFO("target " << target);
            REQUIRE(c.send(get(target)));
            const auto bad = c.read_response();
            REQUIRE(bad.has_value());
            CHECK(bad->status == 400);
            CHECK(bad->header_count("Set-Cookie") == 0);
        }
    }
    if (run_shell("command -v curl >/dev/null 2>&1").second == 0) {
        // A client with a cookie jar: set, follow to /cookies, which sees them.
        const auto [out, rc] = run_shell("timeout 30 curl -sL --noproxy '*' --max-time 20 -c /dev/null '" +
                                         echo.url("/cookies/set?k1=v1&k2=v2") + "'");
        CHECK(rc == 0);
        CHECK(json::parse(out) == json::parse(R"({"cookies":{"k1":"v1","k2":"v2"}})")); // curl picks the order
    }
    CHECK(echo.stop() == 0);
}

TEST_CASE("echo: /basic-auth/:user/:pass") {
    EchoProcess echo;
    {
        Client c(echo.port());
        const auto ask = [&c](const std::string& authorization) {
            const std::string extra = authorization.empty() ? std::string() : "Authorization: " + authorization + "\r\n";
            REQUIRE(c.send(get("/basic-auth/ada/s3cr%3At", extra)));
            auto r = c.read_response();
            REQUIRE(r.has_value());
            return std::move(*r);
        };
        const HttpResponse ok = ask("Basic " + base64("ada:s3cr:t"));
        CHECK(ok.status == 200);
        CHECK(ok.body == R"({"authenticated":true,"user":"ada"})");
        CHECK(ask("basic   " + base64("ada:s3cr:t")).status == 200); // scheme is case-insensitive
        const std::vector<std::string> wrongs = {
            "", "Basic " + base64("ada:s3cr:T"), "Basic " + base64("ada:s3cr:t "), "Basic " + base64("ada:s3cr"),
            "Basic " + base64("bob:s3cr:t"), "Basic " + base64(""), "Bearer " + base64("ada:s3cr:t"),
            "Basic not*base64", "Basic " + base64("ada:s3cr:t") + "x", "Basic"};
        for (const std::string& wrong : wrongs) {
            INFO("Authorization: '" << wrong << "'");
            const HttpResponse r = ask(wrong);
            CHECK(r.status == 401);
            CHECK(r.header("WWW-Authenticate") == R"(Basic realm="Fake Realm", charset="UTF-8")");
            CHECK(r.body == R"({"authenticated":false})");
        }
        // The connection is still usable after the 401s.
        CHECK(ask("Basic " + base64("ada:s3cr:t")).status == 200);
    }
    CHECK(echo.stop() == 0);
}

TEST_CASE("echo: /sse sends count events interval_ms apart, then ends") {
    EchoProcess echo;
    {
        Client c(echo.port());
        const auto start = Clock::now();
        REQUIRE(c.send(get("/sse?count=3&interval_ms=150")));
        const auto r = c.read_response(false, 10s);
        REQUIRE(r.has_value());
        CHECK(Clock::now() - start >= 300ms); // two pauses
        CHECK(r->status == 200);
        CHECK(r->header("Content-Type") == "text/event-stream");
        CHECK(r->header("Cache-Control") == "no-cache");
        CHECK(r->header("Transfer-Encoding") == "chunked");
        CHECK(r->chunks == std::vector<std::string>{"id: 1\ndata: {\"count\":1}\n\n", "id: 2\ndata: {\"count\":2}\n\n",
                                                    "id: 3\ndata: {\"count\":3}\n\n"});
        // Defaults are 10 events a second apart; bounds are checked.
        for (const std::string_view target : {"/sse?count=0", "/sse?count=1001", "/sse?count=x", "/sse?interval_ms=10001",
                                              "/sse?count=2&interval_ms=-5"}) {
            INFO("target " << target);
            REQUIRE(c.send(get(target)));
            const auto bad = c.read_response();
            REQUIRE(bad.has_value());
            CHECK(bad->status == 400);
        }
        REQUIRE(c.send(get("/sse?count=1&interval_ms=10000")));
        const auto single = c.read_response(false, 5s); // no pause after the last event
        REQUIRE(single.has_value());
        CHECK(single->chunks == std::vector<std::string>{"id: 1\ndata: {\"count\":1}\n\n"});
    }
    CHECK(echo.stop() == 0);
}

TEST_CASE("echo: SIGTERM ends a running /sse stream and the server exits") {
    EchoProcess echo;
    Client c(echo.port());
    REQUIRE(c.send(get("/sse?count=1000&interval_ms=1000")));
    const auto deadline = Clock::now() + 10s;
    const auto head = c.read_head(deadline);
    REQUIRE(head.has_value());
    CHECK(head->status == 200);
    const auto first = c.read_chunk(deadline);
    REQUIRE(first.has_value());
    CHECK(*first == "id: 1\ndata: {\"count\":1}\n\n");
    const auto start = Clock::now();
    CHECK(echo.stop(10s) == 0);
    CHECK(Clock::now() - start < 5s);
    // What was sent before the stop: maybe another event, then the last chunk and the close.
    std::size_t events = 1;
    for (;;) {
        const auto chunk = c.read_chunk(Clock::now() + 5s);
        REQUIRE_MESSAGE(chunk.has_value(), "the stream did not end with its last chunk");
        if (chunk->empty()) {
            break;
        }
        ++events;
        CHECK(chunk->starts_with("id: " + std::to_string(events) + "\n"));
    }
    CHECK(events < 1000);
    const auto rest = c.read_to_eof(5s);
    REQUIRE(rest.has_value());
    CHECK(rest->empty());
}

TEST_CASE("echo: --help lists the routes; unknown paths are still 404") {
    const auto [out, rc] = run_shell("timeout 10 '" + echo_path() + "' --help");
    CHECK(rc == 0);
    for (const std::string_view route :
         {"/anything", "/get", "/status/:code", "/delay/:ms", "/headers", "/ip", "/bytes/:n", "/stream/:n", "/gzip",
          "/redirect/:n", "/cookies", "/cookies/set", "/cookies/delete", "/basic-auth/:user/:pass", "/sse",
          "--trusted-proxy"}) {
        INFO("route: " << route);
        CHECK(out.find(route) != std::string::npos);
    }
    EchoProcess echo;
    for (const std::string_view path : {"/", "/getx", "/status", "/bytes", "/headers/x", "/cookies/other"}) {
        INFO("path: " << path);
        const HttpResponse r = fetch(echo.port(), get(path));
        CHECK(r.status == 404);
        CHECK(r.body == "Not Found: try /anything (ringwork-echo --help lists the routes)\n");
    }
    CHECK(echo.stop() == 0);
}
