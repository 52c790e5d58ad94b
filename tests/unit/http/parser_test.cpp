// SPDX-License-Identifier: MIT
// Unit tests for RequestParser (every split point gives the same result), http::Error and the
// helpers.
#include <ringwork/http/error.hpp>
#include <ringwork/http/parser.hpp>
#include <ringwork/http/response.hpp>

#include "http/chars.hpp"

#include <cstddef>
#include <cstring>
#include <doctest/doctest.h>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace http = ringwork::http;
using http::BodyKind;
using http::Error;
using http::Method;
using Status = http::ParseResult::Status;
using namespace std::string_literals;

namespace {

/// Limits and header array size for one test.
struct Config {
    http::ParserLimits limits{};
    std::size_t storage = 64;
};

std::string escape(std::string_view s) {
    std::string out;
    for (const char c : s) {
        if (c == '\r') {
            out += "\\r";
        } else if (c == '\n') {
            out += "\\n";
        } else if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7F) {
            static constexpr char kHex[] = "0123456789abcdef";
            out += "\\x";
            out += kHex[static_cast<unsigned char>(c) >> 4];
            out += kHex[static_cast<unsigned char>(c) & 0xF];
        } else {
            out += c;
        }
    }
    return out;
}

/// Everything a complete parse produced, as text (so two parses compare with one CHECK).
std::string dump(const http::RequestHead& h) {
    std::string s;
    s += "method=" + std::to_string(static_cast<int>(h.method)) +
         " text=" + std::string(h.method_text);
    s += " target=" + std::string(h.target) + " path=" + std::string(h.path) +
         " query=" + std::string(h.query);
    s += " host=" + std::string(h.host) + " minor=" + std::to_string(h.version_minor);
    s += " ka=" + std::to_string(h.keep_alive) + " expect=" + std::to_string(h.expect_continue);
    s += " upgrade=" + std::to_string(h.upgrade) + " close_after=" + std::to_string(h.close_after);
    s += " body=" + std::to_string(static_cast<int>(h.body)) +
         " cl=" + std::to_string(h.content_length);
    s += " head_size=" + std::to_string(h.head_size);
    for (const auto& f : h.headers) {
        s += " [" + std::string(f.name) + ": " + escape(f.value) + "]";
    }
    return s;
}

/// Feeds a parser exact-size heap copies of the bytes (so ASan sees any read past the span,
/// and the buffer moves between calls, as a connection's may).
struct Feeder {
    explicit Feeder(const Config& cfg = {})
        : parser(cfg.limits)
        , storage(cfg.storage) {}

    http::ParseResult feed(std::string_view bytes) {
        buf = std::make_unique<char[]>(bytes.size());
        if (!bytes.empty()) {
            std::memcpy(buf.get(), bytes.data(), bytes.size());
        }
        size = bytes.size();
        result = parser.parse({buf.get(), size}, head, storage);
        return result;
    }

    std::string outcome() const {
        switch (result.status) {
        case Status::incomplete:
            return "incomplete";
        case Status::error:
            return "error " + std::string(http::describe(result.error));
        case Status::complete:
            return "complete " + dump(head);
        }
        return "?";
    }

    std::string_view buffer() const { return {buf.get(), size}; }

    http::RequestParser parser;
    std::unique_ptr<char[]> buf;
    std::size_t size = 0;
    std::vector<http::Header> storage;
    http::RequestHead head;
    http::ParseResult result;
};

/// Parses `req` whole, then for every k the prefix [0, k) followed by the whole buffer, then
/// growing the buffer one byte per call; every way must give the whole-buffer result, and a
/// prefix may only be incomplete or already that same error. Returns the whole-buffer parse.
Feeder parse_all_ways(std::string_view req, const Config& cfg = {}) {
    INFO("request: " << escape(req));
    Feeder whole(cfg);
    whole.feed(req);
    const std::string expected = whole.outcome();

    for (std::size_t k = 0; k < req.size(); ++k) {
        INFO("split at " << k);
        Feeder f(cfg);
        f.feed(req.substr(0, k));
        if (f.result.failed() || f.result.complete()) {
            CHECK(f.outcome() == expected); // an error as early as its bytes are there
        }
        f.feed(req);
        CHECK(f.outcome() == expected);
    }

    Feeder g(cfg);
    bool settled = false;
    for (std::size_t k = 0; k <= req.size(); ++k) {
        g.feed(req.substr(0, k));
        if (!g.result.incomplete()) {
            INFO("byte by byte, settled at " << k);
            CHECK(g.outcome() == expected);
            settled = true;
            break;
        }
    }
    if (!settled) {
        CHECK(expected == "incomplete");
    }
    return whole;
}

/// The error of a request that must fail (checked every way).
Error error_of(std::string_view req, const Config& cfg = {}) {
    const Feeder f = parse_all_ways(req, cfg);
    INFO("request: " << escape(req) << " -> " << f.outcome());
    CHECK(f.result.failed());
    return f.result.error;
}

/// A request that must parse (checked every way).
Feeder ok(std::string_view req, const Config& cfg = {}) {
    Feeder f = parse_all_ways(req, cfg);
    INFO("request: " << escape(req) << " -> " << f.outcome());
    CHECK(f.result.complete());
    return f;
}

/// "GET / HTTP/1.1" plus `fields` (each with its CRLF) plus the final CRLF.
std::string get_with(std::string_view fields) {
    return "GET / HTTP/1.1\r\n" + std::string(fields) + "\r\n";
}
std::string get_host_with(std::string_view fields) {
    return get_with("Host: h\r\n" + std::string(fields));
}

std::string_view field(const http::RequestHead& h, std::string_view name) {
    for (const auto& f : h.headers) {
        if (f.name == name) {
            return f.value;
        }
    }
    return "<absent>";
}

constexpr std::string_view kCurl = "GET /index.html HTTP/1.1\r\n"
                                   "Host: example.com\r\n"
                                   "User-Agent: curl/7.88.1\r\n"
                                   "Accept: */*\r\n"
                                   "\r\n";

constexpr std::string_view kWrk = "GET /plaintext HTTP/1.1\r\nHost: localhost:8080\r\n\r\n";

constexpr std::string_view kChrome =
    "GET /docs/index.html?lang=en&x=1 HTTP/1.1\r\n"
    "Host: www.example.com\r\n"
    "Connection: keep-alive\r\n"
    "sec-ch-ua: \"Chromium\";v=\"122\", \"Not(A:Brand\";v=\"24\", \"Google Chrome\";v=\"122\"\r\n"
    "sec-ch-ua-mobile: ?0\r\n"
    "sec-ch-ua-platform: \"Linux\"\r\n"
    "Upgrade-Insecure-Requests: 1\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/122.0.0.0 Safari/537.36\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7\r\n"
    "Sec-Fetch-Site: same-origin\r\n"
    "Sec-Fetch-Mode: navigate\r\n"
    "Sec-Fetch-User: ?1\r\n"
    "Sec-Fetch-Dest: document\r\n"
    "Referer: https://www.example.com/docs/\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Accept-Language: en-US,en;q=0.9,de;q=0.8\r\n"
    "Cookie: session=8f14e45fceea167a5a36dedd4bea2543; theme=dark; "
    "_ga=GA1.2.1234567890.1700000000\r\n"
    "\r\n";

constexpr std::string_view kFirefox =
    "GET /search?q=io_uring+coroutines HTTP/1.1\r\n"
    "Host: search.example.org\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "DNT: 1\r\n"
    "Connection: keep-alive\r\n"
    "Upgrade-Insecure-Requests: 1\r\n"
    "Sec-Fetch-Dest: document\r\n"
    "Sec-Fetch-Mode: navigate\r\n"
    "Sec-Fetch-Site: none\r\n"
    "Sec-Fetch-User: ?1\r\n"
    "\r\n";

// The shared ASCII helpers (http/chars.hpp) that the web layer uses for header values: only
// letters fold.
namespace chars = ringwork::http::detail;
static_assert(chars::iequals(std::string_view("Content-TYPE"), std::string_view("content-type")));
static_assert(!chars::iequals(std::string_view("@"), std::string_view("`"))); // 0x40 vs 0x60: not letters
static_assert(!chars::iequals(std::string_view("[\\]"), std::string_view("{|}")));
static_assert(!chars::iequals(std::string_view("gzip"), std::string_view("gzip ")));
static_assert(chars::istarts_with(std::string_view("Image/PNG"), std::string_view("image/")));
static_assert(!chars::istarts_with(std::string_view("ima"), std::string_view("image/")));
static_assert(chars::ascii_lower('Z') == 'z' && chars::ascii_lower('[') == '[' && chars::ascii_lower('\xC0') == '\xC0');

} // namespace

TEST_SUITE("http.parser") {

    TEST_CASE("minimal GET") {
        const Feeder f = ok("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
        const auto& h = f.head;
        CHECK(h.method == Method::get);
        CHECK(h.method_text == "GET");
        CHECK(h.target == "/");
        CHECK(h.path == "/");
        CHECK(h.query.empty());
        CHECK(h.host == "localhost");
        CHECK(h.version_minor == 1);
        CHECK(h.keep_alive);
        CHECK_FALSE(h.expect_continue);
        CHECK_FALSE(h.upgrade);
        CHECK_FALSE(h.close_after);
        CHECK(h.body == BodyKind::none);
        CHECK(h.head_size == 35);
        REQUIRE(h.headers.size() == 1);
        CHECK(h.headers[0].name == "Host");
        CHECK(h.headers[0].value == "localhost");
    }

    TEST_CASE("every view points into the caller's buffer") {
        const Feeder f = ok(kChrome);
        const std::string_view buf = f.buffer();
        const auto inside = [&](std::string_view v) {
            return v.empty() ||
                   (v.data() >= buf.data() && v.data() + v.size() <= buf.data() + buf.size());
        };
        const auto& h = f.head;
        CHECK(inside(h.method_text));
        CHECK(inside(h.target));
        CHECK(inside(h.path));
        CHECK(inside(h.query));
        CHECK(inside(h.host));
        for (const auto& hf : h.headers) {
            CHECK(inside(hf.name));
            CHECK(inside(hf.value));
        }
        CHECK(h.headers.data() == f.storage.data());
    }

    TEST_CASE(
        "realistic requests: curl, wrk, Chrome, Firefox, ab, a form POST, a WebSocket upgrade") {
        SUBCASE("curl") {
            const Feeder f = ok(kCurl);
            CHECK(f.head.path == "/index.html");
            CHECK(f.head.host == "example.com");
            CHECK(f.head.headers.size() == 3);
            CHECK(field(f.head, "User-Agent") == "curl/7.88.1");
            CHECK(f.head.head_size == kCurl.size());
        }
        SUBCASE("wrk") {
            const Feeder f = ok(kWrk);
            CHECK(f.head.path == "/plaintext");
            CHECK(f.head.host == "localhost:8080");
        }
        SUBCASE("Chrome") {
            const Feeder f = ok(kChrome);
            const auto& h = f.head;
            CHECK(h.path == "/docs/index.html");
            CHECK(h.query == "lang=en&x=1");
            CHECK(h.host == "www.example.com");
            CHECK(h.headers.size() == 16);
            CHECK(h.keep_alive);
            CHECK(field(h, "Sec-Ch-Ua") ==
                  "\"Chromium\";v=\"122\", \"Not(A:Brand\";v=\"24\", \"Google Chrome\";v=\"122\"");
            CHECK(field(h, "Sec-Ch-Ua-Mobile") == "?0");
            CHECK(field(h, "Accept-Encoding") == "gzip, deflate, br");
            CHECK(field(h, "Cookie").substr(0, 8) == "session=");
            CHECK(h.head_size == kChrome.size());
        }
        SUBCASE("Firefox") {
            const Feeder f = ok(kFirefox);
            CHECK(f.head.query == "q=io_uring+coroutines");
            CHECK(f.head.headers.size() == 12);
            CHECK(field(f.head, "Dnt") == "1");
        }
        SUBCASE("ApacheBench, HTTP/1.0") {
            const Feeder f = ok("GET /bench HTTP/1.0\r\nHost: localhost\r\nUser-Agent: "
                                "ApacheBench/2.3\r\nAccept: */*\r\n\r\n");
            CHECK(f.head.version_minor == 0);
            CHECK_FALSE(f.head.keep_alive);
        }
        SUBCASE("form POST with a body after the head") {
            const std::string head =
                "POST /login HTTP/1.1\r\nHost: example.com\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 27\r\n\r\n";
            const Feeder f = ok(head + "user=alice&password=secret1");
            CHECK(f.head.method == Method::post);
            CHECK(f.head.body == BodyKind::content_length);
            CHECK(f.head.content_length == 27);
            CHECK(f.head.head_size == head.size());
        }
        SUBCASE("chunked upload") {
            const std::string head = "PUT /upload/file.bin HTTP/1.1\r\nHost: files.example.com\r\n"
                                     "Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n";
            const Feeder f = ok(head + "5\r\nhello\r\n0\r\n\r\n");
            CHECK(f.head.method == Method::put);
            CHECK(f.head.body == BodyKind::chunked);
            CHECK(f.head.expect_continue);
            CHECK(f.head.head_size == head.size());
        }
        SUBCASE("WebSocket upgrade") {
            const Feeder f =
                ok("GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Origin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n");
            CHECK(f.head.upgrade);
            CHECK(f.head.keep_alive);
            CHECK(field(f.head, "Sec-Websocket-Key") == "dGhlIHNhbXBsZSBub25jZQ==");
        }
    }

    TEST_CASE("empty lines before the request line are skipped and counted in head_size") {
        const Feeder f = ok("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
        CHECK(f.head.head_size == 4 + 27);
        CHECK(f.head.method_text == "GET");

        std::string many;
        for (std::size_t i = 0; i < http::RequestParser::kMaxLeadingEmptyLines; ++i) {
            many += "\r\n";
        }
        ok(many + "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        CHECK(error_of(many + "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n") == Error::bad_request_line);
        CHECK(error_of("\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n") == Error::bare_lf);
        CHECK(error_of("\r\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n") == Error::bare_cr);
    }

    TEST_CASE("methods") {
        CHECK(ok("DELETE /x HTTP/1.1\r\nHost: a\r\n\r\n").head.method == Method::delete_);
        CHECK(ok("PATCH /x HTTP/1.1\r\nHost: a\r\n\r\n").head.method == Method::patch);
        const Feeder f = ok("PROPFIND /x HTTP/1.1\r\nHost: a\r\n\r\n");
        CHECK(f.head.method == Method::other);
        CHECK(f.head.method_text == "PROPFIND");
        CHECK(ok("get /x HTTP/1.1\r\nHost: a\r\n\r\n").head.method ==
              Method::other); // methods are case-sensitive
        CHECK(error_of("G@T / HTTP/1.1\r\nHost: a\r\n\r\n") == Error::bad_request_line);
        CHECK(error_of("G\x80T / HTTP/1.1\r\nHost: a\r\n\r\n") == Error::bad_request_line);
        CHECK(error_of(" GET / HTTP/1.1\r\nHost: a\r\n\r\n") == Error::bad_request_line);
        CHECK(error_of("GET\r\nHost: a\r\n\r\n") == Error::bad_request_line);
        CHECK(error_of("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n") == Error::bad_request_line);
    }

    TEST_CASE("methods: the GET and POST fast path gives what the token scan gives") {
        const Feeder get = ok("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        CHECK(get.head.method == Method::get);
        CHECK(get.head.method_text == "GET");
        CHECK(get.head.method_text.data() == get.buffer().data());
        const Feeder post = ok("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
        CHECK(post.head.method == Method::post);
        CHECK(post.head.method_text == "POST");
        for (const std::string_view m : {"GETS", "GE", "POSTS", "POS", "GET!", "POST.", "PGET"}) {
            const Feeder f = ok(std::string(m) + " / HTTP/1.1\r\nHost: a\r\n\r\n");
            CHECK(f.head.method == Method::other);
            CHECK(f.head.method_text == m);
        }
        CHECK(error_of("POST  / HTTP/1.1\r\nHost: a\r\n\r\n") == Error::bad_request_line);
        CHECK(error_of("POST\t/ HTTP/1.1\r\nHost: a\r\n\r\n") == Error::bad_request_line);
        CHECK(error_of("POST\r\nHost: a\r\n\r\n") == Error::bad_request_line);
        CHECK(error_of("POST \r\nHost: a\r\n\r\n") == Error::bad_request_line);
        CHECK(error_of("GET \r\nHost: a\r\n\r\n") == Error::bad_request_line);
        CHECK(error_of("GET\r\n\r\n") == Error::bad_request_line);
        CHECK(error_of("POS\r\n\r\n") == Error::bad_request_line);
        CHECK(error_of("GET /\r\n\r\n") == Error::version_not_supported);
        CHECK(error_of("POST /\r\n\r\n") == Error::version_not_supported);
    }

    TEST_CASE("method_from: exact, case-sensitive") {
        CHECK(http::method_from("GET") == Method::get);
        CHECK(http::method_from("HEAD") == Method::head);
        CHECK(http::method_from("POST") == Method::post);
        CHECK(http::method_from("PUT") == Method::put);
        CHECK(http::method_from("DELETE") == Method::delete_);
        CHECK(http::method_from("CONNECT") == Method::connect);
        CHECK(http::method_from("OPTIONS") == Method::options);
        CHECK(http::method_from("TRACE") == Method::trace);
        CHECK(http::method_from("PATCH") == Method::patch);
        CHECK(http::method_from("get") == Method::other);
        CHECK(http::method_from("GETS") == Method::other);
        CHECK(http::method_from("PUR") == Method::other);
        CHECK(http::method_from("") == Method::other);
        CHECK(http::method_from("PROPFIND") == Method::other);
    }

    TEST_CASE("request line: exactly one SP between the parts") {
        CHECK(error_of("GET  / HTTP/1.1\r\nHost: a\r\n\r\n") == Error::bad_request_line);
        CHECK(error_of("GET /  HTTP/1.1\r\nHost: a\r\n\r\n") == Error::bad_request_line);
        CHECK(error_of("GET / HTTP/1.1 \r\nHost: a\r\n\r\n") == Error::bad_request_line);
        CHECK(error_of("GET / HTTP/1.1 x\r\nHost: a\r\n\r\n") == Error::bad_request_line);
        CHECK(error_of("GET \r\nHost: a\r\n\r\n") == Error::bad_request_line);
    }

    TEST_CASE("versions") {
        CHECK(ok("GET / HTTP/1.0\r\n\r\n").head.version_minor == 0);
        CHECK(ok("GET / HTTP/1.1\r\nHost: a\r\n\r\n").head.version_minor == 1);
        CHECK(ok("GET / HTTP/1.2\r\nHost: a\r\n\r\n").head.version_minor == 1);
        CHECK(ok("GET / HTTP/1.9\r\nHost: a\r\n\r\n").head.version_minor == 1);
        CHECK(error_of("GET / HTTP/2.0\r\nHost: a\r\n\r\n") == Error::version_not_supported);
        CHECK(error_of("GET / HTTP/0.9\r\nHost: a\r\n\r\n") == Error::version_not_supported);
        CHECK(error_of("GET / HTTP/9.1\r\n\r\n") == Error::version_not_supported);
        CHECK(error_of("GET /\r\n\r\n") == Error::version_not_supported); // HTTP/0.9 simple request
        CHECK(error_of("GET / HTTP/1.10\r\nHost: a\r\n\r\n") == Error::bad_version);
        CHECK(error_of("GET / HTTP/11.1\r\nHost: a\r\n\r\n") == Error::bad_version);
        CHECK(error_of("GET / HTTP/1\r\nHost: a\r\n\r\n") == Error::bad_version);
        CHECK(error_of("GET / HTTP/2\r\nHost: a\r\n\r\n") == Error::bad_version);
        CHECK(error_of("GET / http/1.1\r\nHost: a\r\n\r\n") == Error::bad_version);
        CHECK(error_of("GET / HTTP/1,1\r\nHost: a\r\n\r\n") == Error::bad_version);
        CHECK(error_of("GET / HTTP/a.b\r\nHost: a\r\n\r\n") == Error::bad_version);
        CHECK(error_of("GET / HTTPS/1.1\r\nHost: a\r\n\r\n") == Error::bad_version);
        CHECK(error_of("GET / HTTP/1.1\x01\r\nHost: a\r\n\r\n") == Error::bad_version);
    }

    TEST_CASE("request line errors come as soon as its CRLF is there") {
        Feeder f;
        CHECK(f.feed("GET / HTTP/2.0\r").incomplete());
        CHECK(f.feed("GET / HTTP/2.0\r\n").error == Error::version_not_supported);
        Feeder g;
        CHECK(g.feed("GET /\r\n").error == Error::version_not_supported); // no waiting for headers
        Feeder h;
        CHECK(h.feed("GET /#x HTTP/1.1\r\n").error == Error::bad_request_line);
    }

    TEST_CASE("origin-form: path and query split at the first '?'") {
        const Feeder f = ok("GET /a/b%20c?x=1&y=?2 HTTP/1.1\r\nHost: a\r\n\r\n");
        CHECK(f.head.path == "/a/b%20c");
        CHECK(f.head.query == "x=1&y=?2");
        const Feeder g = ok("GET /p? HTTP/1.1\r\nHost: a\r\n\r\n");
        CHECK(g.head.path == "/p");
        CHECK(g.head.query.empty());
        CHECK(ok("GET //double HTTP/1.1\r\nHost: a\r\n\r\n").head.path == "//double");
    }

    TEST_CASE("request-target characters") {
        CHECK(error_of("GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n") == Error::bad_request_line);
        CHECK(error_of("GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n") == Error::bad_request_line);
        CHECK(error_of("GET /a\x7F HTTP/1.1\r\nHost: a\r\n\r\n") == Error::bad_request_line);
        CHECK(error_of("GET /caf\xC3\xA9 HTTP/1.1\r\nHost: a\r\n\r\n") == Error::bad_request_line);
        CHECK(error_of("GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n") == Error::bad_request_line);
        CHECK(error_of("GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n"s) == Error::bad_request_line);
        CHECK(error_of("GET index.html HTTP/1.1\r\nHost: a\r\n\r\n") == Error::bad_request_line);
        const std::string visible = "/!$&'()*+,;=:@-._~%41\"<>[]^`{|}\\AZaz09";
        CHECK(ok("GET " + visible + " HTTP/1.1\r\nHost: a\r\n\r\n").head.path == visible);
    }

    TEST_CASE("request-target scan: every stop byte at every position, across 16-byte blocks") {
        // The scan itself, against the table, with each range at the end of its allocation.
        std::size_t mismatches = 0;
        for (std::size_t n = 0; n <= 40; ++n) {
            for (std::size_t pos = 0; pos <= n; ++pos) { // pos == n: nothing to stop at
                for (unsigned c = 0; c < 256; ++c) {
                    const auto buf = std::make_unique<char[]>(n);
                    std::memset(buf.get(), 'a', n);
                    std::size_t expected = n;
                    if (pos < n) {
                        buf[pos] = static_cast<char>(c);
                        expected = http::detail::kTargetPlain[c] != 0 ? n : pos;
                    }
                    const char* got = http::detail::find_target_stop(buf.get(), buf.get() + n);
                    if (got != buf.get() + expected) {
                        ++mismatches;
                    }
                    if (pos == n) {
                        break;
                    }
                }
            }
        }
        CHECK(mismatches == 0);
        CHECK(http::detail::kTargetPlain['a'] == 1);
        CHECK(http::detail::kTargetPlain['~'] == 1);
        CHECK(http::detail::kTargetPlain['!'] == 1);
        CHECK(http::detail::kTargetPlain[' '] == 0);
        CHECK(http::detail::kTargetPlain['?'] == 0);
        CHECK(http::detail::kTargetPlain['#'] == 0);
        CHECK(http::detail::kTargetPlain[0x7F] == 0);
        CHECK(http::detail::kTargetPlain[0x80] == 0);

        // Whole requests: a target of up to 40 bytes with one byte of each class at each
        // position after the leading '/'.
        for (std::size_t len = 2; len <= 40; ++len) {
            for (std::size_t pos = 1; pos < len; ++pos) {
                std::string target(len, 'x');
                target[0] = '/';
                for (const char bad :
                     {'\0', '\x01', '\t', '\x1F', '\x7F', '\x80', '\xFF', '#', ' '}) {
                    target[pos] = bad;
                    Feeder f;
                    f.feed("GET " + target + " HTTP/1.1\r\nHost: a\r\n\r\n");
                    INFO("target: " << escape(target));
                    CHECK(f.result.error == Error::bad_request_line);
                }
                target[pos] = '?';
                Feeder q;
                q.feed("GET " + target + " HTTP/1.1\r\nHost: a\r\n\r\n");
                INFO("target: " << escape(target));
                REQUIRE(q.result.complete());
                CHECK(q.head.path == std::string_view(target).substr(0, pos));
                CHECK(q.head.query == std::string_view(target).substr(pos + 1));
                CHECK(q.head.target == target);
            }
        }
        // A few through every split point too.
        CHECK(error_of("GET /0123456789abcdefghij#x HTTP/1.1\r\nHost: a\r\n\r\n") ==
              Error::bad_request_line);
        CHECK(error_of("GET /0123456789abcdefghijklmnopqrstuvwxyz\x7F HTTP/1.1\r\n\r\n") ==
              Error::bad_request_line);
        CHECK(ok("GET /0123456789abcde?fghijklmnopqrstuvwxyz?x HTTP/1.1\r\nHost: a\r\n\r\n")
                  .head.query == "fghijklmnopqrstuvwxyz?x");
    }

    TEST_CASE("absolute-form: its authority overrides Host") {
        const Feeder f =
            ok("GET http://Example.COM:8080/p/q?x=1 HTTP/1.1\r\nHost: other.example\r\n\r\n");
        CHECK(f.head.target == "http://Example.COM:8080/p/q?x=1");
        CHECK(f.head.host == "Example.COM:8080");
        CHECK(f.head.path == "/p/q");
        CHECK(f.head.query == "x=1");
        CHECK(field(f.head, "Host") == "other.example");

        const Feeder g = ok("GET HTTPS://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n");
        CHECK(g.head.host == "example.com");
        CHECK(g.head.path == "/");
        CHECK(g.head.path.data() >= g.buffer().data()); // the '/' of "://", inside the buffer
        CHECK(g.head.path.data() < g.buffer().data() + g.buffer().size());

        const Feeder h = ok("GET hTtP://example.com?q HTTP/1.1\r\nHost: example.com\r\n\r\n");
        CHECK(h.head.path == "/");
        CHECK(h.head.query == "q");

        const Feeder v6 = ok("GET http://[::1]:80/ HTTP/1.1\r\nHost: x\r\n\r\n");
        CHECK(v6.head.host == "[::1]:80");

        // Host is still required in HTTP/1.1 and still validated.
        CHECK(error_of("GET http://example.com/ HTTP/1.1\r\n\r\n") == Error::missing_host);
        CHECK(error_of("GET http://example.com/ HTTP/1.1\r\nHost: a b\r\n\r\n") == Error::bad_host);
        CHECK(ok("GET http://example.com/ HTTP/1.0\r\n\r\n").head.host == "example.com");

        CHECK(error_of("GET ftp://example.com/ HTTP/1.1\r\nHost: a\r\n\r\n") ==
              Error::bad_request_line);
        CHECK(error_of("GET http:/example.com/ HTTP/1.1\r\nHost: a\r\n\r\n") ==
              Error::bad_request_line);
        CHECK(error_of("GET http:///p HTTP/1.1\r\nHost: a\r\n\r\n") == Error::bad_request_line);
        CHECK(error_of("GET http:// HTTP/1.1\r\nHost: a\r\n\r\n") == Error::bad_request_line);
        CHECK(error_of("GET http://user@example.com/ HTTP/1.1\r\nHost: a\r\n\r\n") ==
              Error::bad_request_line);
        CHECK(error_of("GET http://example.com:80x/ HTTP/1.1\r\nHost: a\r\n\r\n") ==
              Error::bad_request_line);
    }

    TEST_CASE("asterisk-form only with OPTIONS, authority-form only with CONNECT") {
        const Feeder f = ok("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
        CHECK(f.head.method == Method::options);
        CHECK(f.head.path == "*");
        CHECK(error_of("GET * HTTP/1.1\r\nHost: a\r\n\r\n") == Error::bad_request_line);
        CHECK(error_of("OPTIONS *?x HTTP/1.1\r\nHost: a\r\n\r\n") == Error::bad_request_line);
        CHECK(ok("OPTIONS /x HTTP/1.1\r\nHost: a\r\n\r\n").head.path == "/x");

        const Feeder c =
            ok("CONNECT server.example.com:443 HTTP/1.1\r\nHost: server.example.com:443\r\n\r\n");
        CHECK(c.head.method == Method::connect);
        CHECK(c.head.target == "server.example.com:443");
        CHECK(c.head.path.empty());
        CHECK(c.head.host == "server.example.com:443");
        CHECK(ok("CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: a\r\n\r\n").head.target ==
              "[2001:db8::1]:443");
        CHECK(error_of("CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n") == Error::bad_request_line);
        CHECK(error_of("CONNECT example.com HTTP/1.1\r\nHost: a\r\n\r\n") ==
              Error::bad_request_line);
        CHECK(error_of("CONNECT example.com: HTTP/1.1\r\nHost: a\r\n\r\n") ==
              Error::bad_request_line);
        CHECK(error_of("CONNECT http://example.com:80/ HTTP/1.1\r\nHost: a\r\n\r\n") ==
              Error::bad_request_line);
        CHECK(error_of("GET example.com:80 HTTP/1.1\r\nHost: a\r\n\r\n") ==
              Error::bad_request_line);
    }

    TEST_CASE("header fields: OWS trimmed, allowed value bytes") {
        const Feeder f = ok(get_host_with(
            "A:  value with  spaces \t \r\nB:\r\nC: \t\r\nD:x\r\nE: obs\x80\xFFtext\r\n"
            "F: tab\there\r\nG: !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~\r\n"));
        CHECK(field(f.head, "A") == "value with  spaces");
        CHECK(field(f.head, "B").empty());
        CHECK(field(f.head, "C").empty());
        CHECK(field(f.head, "D") == "x");
        CHECK(field(f.head, "E") == "obs\x80\xFFtext");
        CHECK(field(f.head, "F") == "tab\there");
        CHECK(field(f.head, "G") == "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~");
        CHECK(f.head.headers.size() == 8);
    }

    TEST_CASE("header field errors") {
        CHECK(error_of(get_host_with("Name : value\r\n")) == Error::whitespace_before_colon);
        CHECK(error_of(get_host_with("Name\t: value\r\n")) == Error::whitespace_before_colon);
        CHECK(error_of(get_host_with("Name value\r\n")) == Error::bad_header);
        CHECK(error_of(get_host_with("NoColon\r\n")) == Error::bad_header);
        CHECK(error_of(get_host_with(": empty name\r\n")) == Error::bad_header);
        CHECK(error_of(get_host_with("Bad[Name]: x\r\n")) == Error::bad_header);
        CHECK(error_of(get_host_with("N\xC3\xA4me: x\r\n")) == Error::bad_header);
        CHECK(error_of(get_host_with("A: x\r\n folded\r\n")) == Error::obs_fold);
        CHECK(error_of(get_host_with("A: x\r\n\tfolded\r\n")) == Error::obs_fold);
        CHECK(error_of("GET / HTTP/1.1\r\n Host: a\r\n\r\n") == Error::obs_fold);
        CHECK(error_of(get_host_with("A: nul\0here\r\n"s)) == Error::bad_header);
        CHECK(error_of(get_host_with("A: ctl\x01here\r\n")) == Error::bad_header);
        CHECK(error_of(get_host_with("A: esc\x1Bhere\r\n")) == Error::bad_header);
        CHECK(error_of(get_host_with("A: del\x7Fhere\r\n")) == Error::bad_header);
        CHECK(error_of(
                  get_host_with("A: a long value before the control byte\x02 and after it\r\n")) ==
              Error::bad_header);
    }

    TEST_CASE("bare LF and bare CR, wherever they are, as soon as they are seen") {
        CHECK(error_of("GET / HTTP/1.1\nHost: a\r\n\r\n") == Error::bare_lf);
        CHECK(error_of("GET / HTTP/1.1\r\nHost: a\n\r\n") == Error::bare_lf);
        CHECK(error_of("GET / HTTP/1.1\r\nHost: a\r\n\n") == Error::bare_lf);
        CHECK(error_of("GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n\nZ") == Error::bare_lf);
        CHECK(error_of("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n") == Error::bare_lf);
        CHECK(error_of("GET / HTTP/1.1\rHost: a\r\n\r\n") == Error::bare_cr);
        CHECK(error_of("GET /a\rb HTTP/1.1\r\nHost: a\r\n\r\n") == Error::bare_cr);
        CHECK(error_of("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n") == Error::bare_cr);
        CHECK(error_of("GET / HTTP/1.1\r\nHost: a\r\n\r\r\n") == Error::bare_cr);
        CHECK(error_of("GET / HTTP/1.1\r\nHost: a\r\r\n\r\n") == Error::bare_cr);

        // Before the end of the head (or even of the line) arrives.
        Feeder f;
        CHECK(f.feed("GET / HTTP/1.1\r\nHost: a\nmore").error == Error::bare_lf);
        Feeder g;
        CHECK(g.feed("GET /\r").incomplete());
        CHECK(g.feed("GET /\rx").error == Error::bare_cr);
        // The scan finds framing errors in later lines before field errors in earlier ones,
        // whatever the split (so the whole buffer and the byte-by-byte feed agree).
        CHECK(error_of(get_host_with("Bad Name: x\r\nY: z\rw\r\n")) == Error::bare_cr);
    }

    TEST_CASE("request line limit: uri_too_long, also before its LF arrives") {
        Config cfg;
        cfg.limits.max_request_line = 32;
        const std::string at_limit = "GET /" + std::string(18, 'a') + " HTTP/1.1"; // 32 bytes
        REQUIRE(at_limit.size() == 32);
        ok(at_limit + "\r\nHost: a\r\n\r\n", cfg);
        const std::string over = "GET /" + std::string(19, 'a') + " HTTP/1.1";
        CHECK(error_of(over + "\r\nHost: a\r\n\r\n", cfg) == Error::uri_too_long);
        // Leading empty lines do not count.
        ok("\r\n\r\n" + at_limit + "\r\nHost: a\r\n\r\n", cfg);

        Feeder f(cfg);
        CHECK(f.feed("GET /" + std::string(27, 'a')).incomplete()); // 32 bytes, no CR yet
        CHECK(f.feed("GET /" + std::string(28, 'a')).error == Error::uri_too_long);
        Feeder g(cfg);
        CHECK(g.feed(at_limit + "\r").incomplete());
        Feeder endless;
        std::string junk = "GET /";
        junk.append(10000, 'x');
        CHECK(endless.feed(junk).error == Error::uri_too_long);
    }

    TEST_CASE("header section limit: headers_too_large, also before the end arrives") {
        Config cfg;
        cfg.limits.max_header_bytes = 40;
        // Section = "Host: a\r\n" (9) + "X: " + value + "\r\n" + "\r\n" = 16 + value.
        ok(get_with("Host: a\r\nX: " + std::string(24, 'v') + "\r\n"), cfg);
        CHECK(error_of(get_with("Host: a\r\nX: " + std::string(25, 'v') + "\r\n"), cfg) ==
              Error::headers_too_large);
        CHECK(error_of(get_with("Host: a\r\nX: " + std::string(23, 'v') + "\r\nY: z\r\n"), cfg) ==
              Error::headers_too_large);

        Feeder f(cfg);
        CHECK(f.feed("GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(28, 'v'))
                  .incomplete()); // 40 section bytes
        CHECK(f.feed("GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(29, 'v')).error ==
              Error::headers_too_large);
        Feeder endless;
        std::string junk = "GET / HTTP/1.1\r\nHost: a\r\nX-Filler: ";
        junk.append(20000, 'x');
        CHECK(endless.feed(junk).error == Error::headers_too_large);
    }

    TEST_CASE("header count limit: max_headers and the caller's array") {
        std::string fields = "Host: a\r\n";
        for (int i = 0; i < 9; ++i) {
            fields += "X" + std::to_string(i) + ": v\r\n";
        }
        Config cfg;
        cfg.limits.max_headers = 10;
        CHECK(ok(get_with(fields), cfg).head.headers.size() == 10);
        CHECK(error_of(get_with(fields + "Y: 1\r\n"), cfg) == Error::too_many_headers);

        Config small;
        small.storage = 4;
        CHECK(error_of(get_with(fields), small) == Error::too_many_headers);
        small.storage = 10;
        CHECK(ok(get_with(fields), small).head.headers.size() == 10);
        small.storage = 0;
        CHECK(error_of(get_with("Host: a\r\n"), small) == Error::too_many_headers);

        Feeder f(cfg); // the eleventh field's first byte is enough
        CHECK(f.feed("GET / HTTP/1.1\r\n" + fields).incomplete());
        CHECK(f.feed("GET / HTTP/1.1\r\n" + fields + "Y").error == Error::too_many_headers);
    }

    TEST_CASE("header names are normalized in place unless disabled") {
        const Feeder f = ok(
            get_with("hOST: a\r\ncONTENT-lenGTH: 0\r\nx-forwarded-FOR: 1.2.3.4\r\nsec-ch-ua: x\r\n"
                     "-lead: 1\r\nA--b: 2\r\nwww-authenticate_x: 3\r\n"));
        const auto& h = f.head.headers;
        REQUIRE(h.size() == 7);
        CHECK(h[0].name == "Host");
        CHECK(h[1].name == "Content-Length");
        CHECK(h[2].name == "X-Forwarded-For");
        CHECK(h[3].name == "Sec-Ch-Ua");
        CHECK(h[4].name == "-Lead");
        CHECK(h[5].name == "A--B");
        CHECK(h[6].name == "Www-Authenticate_x");
        CHECK(f.buffer().find("Content-Length: 0") !=
              std::string_view::npos); // rewritten in the buffer
        CHECK(f.head.body == BodyKind::content_length);

        Config raw;
        raw.limits.normalize_header_names = false;
        const Feeder g = ok(get_with("hOST: a\r\ncONTENT-lenGTH: 3\r\n"), raw);
        CHECK(g.head.headers[0].name == "hOST");
        CHECK(g.head.headers[1].name == "cONTENT-lenGTH");
        CHECK(g.head.host == "a"); // special fields are recognized in any case
        CHECK(g.head.content_length == 3);

        std::string name = "cONTENT-lenGTH";
        http::normalize_header_name(name.data(), name.size());
        CHECK(name == "Content-Length");
        name = "x-A1-b2c";
        http::normalize_header_name(name.data(), name.size());
        CHECK(name == "X-A1-B2c");
        http::normalize_header_name(name.data(), 0);
    }

    TEST_CASE("Host") {
        CHECK(error_of("GET / HTTP/1.1\r\n\r\n") == Error::missing_host);
        CHECK(error_of("GET / HTTP/1.1\r\nHostname: a\r\n\r\n") == Error::missing_host);
        CHECK(ok("GET / HTTP/1.0\r\n\r\n").head.host.empty());
        CHECK(error_of(get_with("Host: a\r\nHost: a\r\n")) == Error::duplicate_host);
        CHECK(error_of(get_with("Host: a\r\nhost: b\r\n")) == Error::duplicate_host);
        CHECK(error_of("GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n") == Error::duplicate_host);
        for (const char* bad : {"user@example.com", "a b", "a\tb", "example.com:8o",
                                "example.com:99999", "example.com:123456", ":80", "[::1", "[]",
                                "[::1]x", "a/b", "a?b", "%zz.com", "a:1:2", "\"quoted\""}) {
            INFO(bad);
            CHECK(error_of(get_with("Host: "s + bad + "\r\n")) == Error::bad_host);
        }
        CHECK(error_of(get_with("Host:\r\n")) == Error::bad_host);
        CHECK(error_of(get_with("Host:   \r\n")) == Error::bad_host);
        CHECK(
            ok("GET / HTTP/1.0\r\nHost: \r\n\r\n").head.host.empty()); // empty Host allowed in 1.0
        for (const char* good :
             {"example.com", "example.com:8080", "EXAMPLE.com:0", "127.0.0.1:65535", "[::1]",
              "[2001:db8::7]:443", "xn--bcher-kva.example", "a_b~c!$&'()*+,;=", "%41.com",
              "example.com:"}) {
            INFO(good);
            CHECK(ok(get_with("Host: "s + good + "\r\n")).head.host == good);
        }
        CHECK(ok(get_with("Host:  \texample.com \t\r\n")).head.host == "example.com");
    }

    TEST_CASE("Host: a bad byte or a pct-encoding at every position of a reg-name") {
        for (std::size_t len = 1; len <= 13; ++len) {
            for (std::size_t pos = 0; pos < len; ++pos) {
                for (const char bad : {'@', '/', '?', '"', '<', '[', '^', '%', '\x80', '\xFF'}) {
                    std::string host(len, 'h');
                    host[pos] = bad;
                    INFO("Host: " << escape(host));
                    Feeder f;
                    f.feed(get_with("Host: " + host + "\r\n"));
                    CHECK(f.result.error == Error::bad_host);
                }
                std::string encoded(len, 'h');
                encoded.insert(pos, "%4a");
                INFO("Host: " << encoded);
                Feeder f;
                f.feed(get_with("Host: " + encoded + "\r\n"));
                REQUIRE(f.result.complete());
                CHECK(f.head.host == encoded);
                Feeder g;
                g.feed(get_with("Host: " + encoded + ":8080\r\n"));
                CHECK(g.head.host == encoded + ":8080");
                encoded[pos + 2] = 'g'; // "%4g": not hex
                Feeder h;
                h.feed(get_with("Host: " + encoded + "\r\n"));
                CHECK(h.result.error == Error::bad_host);
            }
        }
    }

    TEST_CASE("Content-Length") {
        const Feeder f = ok(get_host_with("Content-Length: 42\r\n"));
        CHECK(f.head.body == BodyKind::content_length);
        CHECK(f.head.content_length == 42);
        CHECK(ok(get_host_with("Content-Length: 0\r\n")).head.content_length == 0);
        CHECK(ok(get_host_with("Content-Length: 007\r\n")).head.content_length == 7);
        CHECK(ok(get_host_with("Content-Length: 5, 5\r\n")).head.content_length == 5);
        CHECK(ok(get_host_with("Content-Length: 5\r\nContent-Length: 5\r\n")).head.content_length ==
              5);
        CHECK(ok(get_host_with("Content-Length: 18446744073709551615\r\n")).head.content_length ==
              18446744073709551615ULL);
        for (const char* bad :
             {"", "+5", "-5", "5 5", "0x5", "5a", "5, 6", "5,", ",5", "5,,5", "1.0", "\xD9\xA5",
              "18446744073709551616", "99999999999999999999"}) {
            INFO(bad);
            CHECK(error_of(get_host_with("Content-Length: "s + bad + "\r\n")) ==
                  Error::bad_content_length);
        }
        CHECK(error_of(get_host_with("Content-Length: 5\r\nContent-Length: 6\r\n")) ==
              Error::bad_content_length);
        CHECK(error_of(get_host_with("Content-Length: 5\r\ncontent-length: 5, 7\r\n")) ==
              Error::bad_content_length);
    }

    TEST_CASE("Transfer-Encoding") {
        const Feeder f = ok(get_host_with("Transfer-Encoding: chunked\r\n"));
        CHECK(f.head.body == BodyKind::chunked);
        CHECK_FALSE(f.head.close_after);
        CHECK(ok(get_host_with("Transfer-Encoding: CHUNKED\r\n")).head.body == BodyKind::chunked);
        CHECK(ok(get_host_with("Transfer-Encoding: , chunked ,\r\n")).head.body ==
              BodyKind::chunked);

        CHECK(error_of(get_host_with("Transfer-Encoding: gzip, chunked\r\n")) ==
              Error::unknown_transfer_coding);
        // Without chunked as the final coding the length is unknowable: 400 (RFC 9112 §6.3 (4),
        // a MUST), not 501, even for codings we do not know.
        CHECK(error_of(get_host_with("Transfer-Encoding: gzip\r\n")) == Error::chunked_not_last);
        CHECK(error_of(get_host_with("Transfer-Encoding: identity\r\n")) == Error::chunked_not_last);
        CHECK(error_of(get_host_with("Transfer-Encoding: x-custom\r\n")) == Error::chunked_not_last);
        CHECK(error_of(get_host_with("Transfer-Encoding: chunked, x-custom\r\n")) == Error::chunked_not_last);
        CHECK(error_of(get_host_with("Transfer-Encoding: gzip;level=1, chunked\r\n")) ==
              Error::unknown_transfer_coding);
        CHECK(error_of(
                  get_host_with("Transfer-Encoding: deflate\r\nTransfer-Encoding: chunked\r\n")) ==
              Error::unknown_transfer_coding);

        CHECK(error_of(get_host_with("Transfer-Encoding: chunked, gzip\r\n")) ==
              Error::chunked_not_last);
        CHECK(
            error_of(get_host_with("Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n")) ==
            Error::chunked_not_last);
        CHECK(error_of(get_host_with("Transfer-Encoding: chunked, chunked\r\n")) ==
              Error::chunked_not_last);
        CHECK(error_of(
                  get_host_with("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n")) ==
              Error::chunked_not_last);
        CHECK(error_of(get_host_with("Transfer-Encoding: chunked, identity\r\n")) ==
              Error::chunked_not_last);

        CHECK(error_of(get_host_with("Transfer-Encoding:\r\n")) == Error::bad_header);
        CHECK(error_of(get_host_with("Transfer-Encoding: ,\r\n")) == Error::bad_header);
        CHECK(error_of(get_host_with("Transfer-Encoding: chunked;x=1\r\n")) == Error::bad_header);
        CHECK(error_of(get_host_with("Transfer-Encoding: chu nked\r\n")) == Error::bad_header);
        CHECK(error_of(get_host_with("Transfer-Encoding: \"chunked\"\r\n")) == Error::bad_header);

        CHECK(error_of(get_host_with("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n")) ==
              Error::content_length_with_transfer_encoding);
        CHECK(error_of(get_host_with("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n")) ==
              Error::content_length_with_transfer_encoding);
        CHECK(error_of(get_host_with("Content-Length: 5\r\nTransfer-Encoding: gzip\r\n")) ==
              Error::content_length_with_transfer_encoding);

        const Feeder old =
            ok("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n");
        CHECK(old.head.body == BodyKind::chunked);
        CHECK(old.head.close_after);
        CHECK_FALSE(old.head.keep_alive);
    }

    TEST_CASE("Connection, keep-alive and upgrade") {
        CHECK(ok(get_host_with("")).head.keep_alive);
        CHECK_FALSE(ok(get_host_with("Connection: close\r\n")).head.keep_alive);
        CHECK_FALSE(ok(get_host_with("Connection: CLOSE\r\n")).head.keep_alive);
        CHECK_FALSE(ok(get_host_with("Connection: foo, Close\r\n")).head.keep_alive);
        CHECK_FALSE(
            ok(get_host_with("Connection: keep-alive\r\nConnection: close\r\n")).head.keep_alive);
        CHECK(ok(get_host_with("Connection: closed\r\n")).head.keep_alive);
        CHECK(ok(get_host_with("Connection: keep-alive\r\n")).head.keep_alive);

        CHECK_FALSE(ok("GET / HTTP/1.0\r\n\r\n").head.keep_alive);
        CHECK(ok("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").head.keep_alive);
        CHECK(ok("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").head.keep_alive);
        CHECK(ok("GET / HTTP/1.0\r\nConnection: TE, keep-alive\r\n\r\n").head.keep_alive);
        CHECK_FALSE(ok("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n").head.keep_alive);
        CHECK_FALSE(ok("GET / HTTP/1.0\r\nConnection: keepalive\r\n\r\n").head.keep_alive);
        CHECK_FALSE(ok("GET / HTTP/1.0\r\nKeep-Alive: timeout=5\r\n\r\n").head.keep_alive);
        CHECK(ok("GET / HTTP/1.2\r\nHost: a\r\n\r\n").head.keep_alive); // 1.x is 1.1

        CHECK(
            ok(get_host_with("Connection: keep-alive, Upgrade\r\nUpgrade: h2c\r\n")).head.upgrade);
        CHECK(ok(get_host_with("Upgrade: websocket\r\nConnection: upgrade\r\n")).head.upgrade);
        CHECK_FALSE(ok(get_host_with("Connection: upgrade\r\n")).head.upgrade);
        CHECK_FALSE(ok(get_host_with("Upgrade: websocket\r\n")).head.upgrade);
        CHECK_FALSE(ok(get_host_with("Upgrade:\r\nConnection: upgrade\r\n")).head.upgrade);
    }

    TEST_CASE("a first byte that cannot start a method is refused without waiting for a CRLF") {
        Feeder tls(Config{});
        tls.feed(std::string_view("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11)); // a ClientHello
        CHECK(tls.result.failed());
        CHECK(tls.result.error == Error::bad_request_line);
        Feeder after_empty_lines(Config{});
        after_empty_lines.feed("\r\n\r\n{\"json\": 1");
        CHECK(after_empty_lines.result.error == Error::bad_request_line);
        Feeder method(Config{});
        method.feed("GE");
        CHECK(method.result.incomplete());
        Feeder lines(Config{});
        lines.feed("\r\n");
        CHECK(lines.result.incomplete());
    }

    TEST_CASE("every status of RFC 9110's registry has its reason phrase") {
        for (const int status : {100, 101, 200, 201, 202, 203, 204, 205, 206, 300, 301, 302, 303, 304, 305, 306,
                                 307, 308, 400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413,
                                 414, 415, 416, 417, 421, 422, 426, 500, 501, 502, 503, 504, 505}) {
            INFO("status " << status);
            CHECK(http::reason_phrase(status) != "Unknown");
        }
        CHECK(http::reason_phrase(407) == "Proxy Authentication Required");
        CHECK(http::reason_phrase(511) == "Network Authentication Required");
        CHECK(http::reason_phrase(599) == "Unknown");
    }

    TEST_CASE("Expect: 100-continue") {
        CHECK(ok(get_host_with("Expect: 100-continue\r\n")).head.expect_continue);
        CHECK(ok(get_host_with("expect: 100-Continue \r\n")).head.expect_continue);
        CHECK_FALSE(ok(get_host_with("Expect: 200-ok\r\n")).head.expect_continue);
        CHECK_FALSE(ok(get_host_with("Expect: 100-continue-ish\r\n")).head.expect_continue);
        // A list of expectations (#expectation) holds 100-continue wherever it stands.
        CHECK(ok(get_host_with("Expect: foo, 100-continue\r\n")).head.expect_continue);
        CHECK(ok(get_host_with("Expect: 100-continue, foo\r\n")).head.expect_continue);
        CHECK(ok(get_host_with("Expect: foo\r\nExpect: 100-continue\r\n")).head.expect_continue);
        CHECK_FALSE(ok(get_host_with("Expect: foo, bar\r\n")).head.expect_continue);
        CHECK(ok("POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n")
                  .head.expect_continue); // the connection decides
    }

    TEST_CASE("pipelined requests: head_size covers the first only") {
        const std::string first = "GET /one HTTP/1.1\r\nHost: a\r\n\r\n";
        const std::string second = "POST /two HTTP/1.1\r\nHost: b\r\nContent-Length: 0\r\n\r\n";
        std::string both = first + second;
        const Feeder f = ok(both);
        CHECK(f.head.head_size == first.size());
        CHECK(f.head.path == "/one");

        http::RequestParser parser;
        std::vector<http::Header> storage(16);
        http::RequestHead head;
        REQUIRE(parser.parse({both.data(), both.size()}, head, storage).complete());
        REQUIRE(head.head_size == first.size());
        parser.reset();
        const std::span<char> rest = std::span<char>(both).subspan(head.head_size);
        REQUIRE(parser.parse(rest, head, storage).complete());
        CHECK(head.path == "/two");
        CHECK(head.method == Method::post);
        CHECK(head.head_size == second.size());
        CHECK(head.host == "b");
    }

    TEST_CASE("the result stays until reset(); a shorter buffer starts over") {
        std::string req = "GET /x HTTP/1.1\r\nHost: a\r\n\r\n";
        http::RequestParser parser;
        std::vector<http::Header> storage(8);
        http::RequestHead head;
        REQUIRE(parser.parse(req, head, storage).complete());
        http::RequestHead again;
        REQUIRE(parser.parse(req, again, storage).complete());
        CHECK(dump(again) == dump(head));

        std::string bad = "GET / HTTP/1.1\r\nHost: a\r\nX : y\r\n\r\n";
        http::RequestParser p2;
        CHECK(p2.parse(bad, head, storage).error == Error::whitespace_before_colon);
        CHECK(p2.parse(bad, head, storage).error == Error::whitespace_before_colon);
        p2.reset();
        CHECK(p2.parse(req, head, storage).complete());

        http::RequestParser p3;
        CHECK(p3.parse(std::span<char>(req).first(20), head, storage).incomplete());
        std::string other = "GET /y HTTP/1.1\r\nHost: b\r\n\r\n";
        CHECK(p3.parse(std::span<char>(other).first(5), head, storage)
                  .incomplete()); // shorter: start over
        REQUIRE(p3.parse(other, head, storage).complete());
        CHECK(head.path == "/y");
    }

    TEST_CASE("bytes after the head (a pipelined request) change nothing") {
        // The value scan may read past the head, 16 bytes at a time, up to the buffer's end.
        std::string junk;
        for (unsigned c = 0; c < 256; c += 7) {
            junk += static_cast<char>(c);
        }
        for (const std::string_view req :
             {kCurl, kWrk, kChrome, kFirefox,
              std::string_view("GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n"),
              std::string_view("GET / HTTP/1.1\r\nHost: a\r\nX: 0123456789abcdef\x7F\r\n\r\n"),
              std::string_view("GET / HTTP/1.1\r\nHost: a\r\nX: v \t\r\nY:\r\n\r\n"),
              std::string_view("GET / HTTP/1.1\r\nHost: \r\n\r\n")}) {
            for (const std::string_view tail : {std::string_view(junk), std::string_view(kWrk),
                                                std::string_view("\r\n\r\n\r\n\r\n\r\n\r\n")}) {
                Feeder alone;
                alone.feed(req);
                Feeder followed;
                followed.feed(std::string(req) + std::string(tail));
                INFO("request: " << escape(req));
                CHECK(followed.outcome() == alone.outcome());
            }
        }
    }

    TEST_CASE("byte-by-byte feeding of every realistic request") {
        for (const std::string_view req : {kCurl, kWrk, kChrome, kFirefox}) {
            ok(req);
        }
    }

    TEST_CASE("percent_decode") {
        const auto decode = [](std::string_view in, bool plus = false) {
            std::string out(in.size(), '\0');
            const http::DecodeResult r = http::percent_decode(in, out.data(), plus);
            out.resize(r.size);
            return r.ok ? out : "<error>";
        };
        CHECK(decode("") == "");
        CHECK(decode("/plain/path") == "/plain/path");
        CHECK(decode("%41%42%43") == "ABC");
        CHECK(decode("a%2fb%2Fc") == "a/b/c");
        CHECK(decode("%7e%7E") == "~~");
        CHECK(decode("caf%C3%A9") == "caf\xC3\xA9");
        CHECK(decode("%ff") == "\xFF");
        CHECK(decode("a+b") == "a+b");
        CHECK(decode("a+b%2B", true) == "a b+");
        CHECK(decode("%G1") == "<error>");
        CHECK(decode("%1G") == "<error>");
        CHECK(decode("%4") == "<error>");
        CHECK(decode("abc%") == "<error>");
        CHECK(decode("%00") == "<error>");
        CHECK(decode("%%41") == "<error>");

        std::string in_place = "/a%20b%2Bc+d";
        const http::DecodeResult r = http::percent_decode(in_place, in_place.data(), true);
        REQUIRE(r.ok);
        CHECK(std::string_view(in_place.data(), r.size) == "/a b+c d");
    }

    TEST_CASE("http::Error: status_of, describe, error_code") {
        struct Expect {
            Error e;
            int status;
        };
        const Expect all[] = {
            {Error::none, 200},
            {Error::bad_request_line, 400},
            {Error::bad_version, 400},
            {Error::version_not_supported, 505},
            {Error::bad_header, 400},
            {Error::whitespace_before_colon, 400},
            {Error::obs_fold, 400},
            {Error::bare_lf, 400},
            {Error::bare_cr, 400},
            {Error::missing_host, 400},
            {Error::duplicate_host, 400},
            {Error::bad_host, 400},
            {Error::bad_content_length, 400},
            {Error::content_length_with_transfer_encoding, 400},
            {Error::chunked_not_last, 400},
            {Error::unknown_transfer_coding, 501},
            {Error::bad_chunk, 400},
            {Error::chunk_extensions_too_long, 400},
            {Error::bad_trailer, 400},
            {Error::uri_too_long, 414},
            {Error::headers_too_large, 431},
            {Error::too_many_headers, 431},
            {Error::trailers_too_large, 431},
            {Error::body_too_large, 413},
        };
        static_assert(static_cast<int>(Error::body_too_large) + 1 == sizeof(all) / sizeof(all[0]));
        static_assert(http::status_of(Error::uri_too_long) == 414);
        std::set<std::string_view> descriptions;
        for (const auto& x : all) {
            INFO(static_cast<int>(x.e));
            CHECK(http::status_of(x.e) == x.status);
            CHECK_FALSE(http::describe(x.e).empty());
            descriptions.insert(http::describe(x.e));
            const std::error_code ec = x.e; // is_error_code_enum
            CHECK(ec.value() == static_cast<int>(x.e));
            CHECK(std::string_view(ec.category().name()) == "ringwork.http");
            CHECK(ec.message() == http::describe(x.e));
            CHECK(static_cast<bool>(ec) == (x.e != Error::none));
        }
        CHECK(descriptions.size() == sizeof(all) / sizeof(all[0]));
        CHECK(&http::make_error_code(Error::bad_chunk).category() == &http::error_category());
        CHECK_FALSE(http::error_category().message(1000).empty());
    }

} // TEST_SUITE
