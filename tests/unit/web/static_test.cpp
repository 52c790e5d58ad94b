// SPDX-License-Identifier: MIT
// Unit tests for web::send_file and mw::static_files through the in-process TestClient: MIME
// types, validators, conditional GETs, ranges, HEAD, large files, index, listing, fallthrough
// and every traversal attempt we know of.
#include <ringwork/web/app.hpp>
#include <ringwork/web/static.hpp>
#include <ringwork/web/testing.hpp>

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace web = ringwork::web;
namespace fs = std::filesystem;
using ringwork::runtime::Task;
using web::testing::TestClient;
using web::testing::TestResponse;

namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

/// 2020-01-02 03:04:05 UTC: every test file gets this mtime, so validators are predictable.
constexpr std::time_t kMtime = 1577934245;
constexpr std::string_view kMtimeText = "Thu, 02 Jan 2020 03:04:05 GMT";

/// A temporary directory with `root/` (served) and `outside/` (must never be reachable).
class TempTree {
public:
    TempTree() {
        std::string tmpl = (fs::temp_directory_path() / "ringwork-static-XXXXXX").string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        base_ = tmpl;
        fs::create_directories(base_ / "root");
        fs::create_directories(base_ / "outside");
        write("outside/secret.txt", "TOP-SECRET");
    }
    ~TempTree() {
        std::error_code ec;
        fs::remove_all(base_, ec);
    }
    TempTree(const TempTree&) = delete;
    TempTree& operator=(const TempTree&) = delete;

    /// Write `content` to base/rel (directories created) with mtime kMtime.
    void write(const std::string& rel, std::string_view content) const {
        const fs::path p = base_ / rel;
        fs::create_directories(p.parent_path());
        {
            std::ofstream out(p, std::ios::binary | std::ios::trunc);
            out.write(content.data(), static_cast<std::streamsize>(content.size()));
        }
        touch(rel);
    }
    void touch(const std::string& rel) const {
        const timespec times[2] = {{kMtime, 0}, {kMtime, 0}};
        REQUIRE(::utimensat(AT_FDCWD, (base_ / rel).c_str(), times, AT_SYMLINK_NOFOLLOW) == 0);
    }
    void mkdir(const std::string& rel) const { fs::create_directories(base_ / rel); }
    void symlink(const std::string& target, const std::string& rel) const {
        fs::create_symlink(target, base_ / rel);
    }
    [[nodiscard]] std::string path(const std::string& rel) const { return (base_ / rel).string(); }
    [[nodiscard]] std::string root() const { return path("root"); }
    [[nodiscard]] const fs::path& base() const noexcept { return base_; }

private:
    fs::path base_;
};

/// A route handler that sends one file (no capturing coroutine lambda: a plain object that
/// returns send_file's task).
struct SendFile {
    std::string path;
    web::FileOptions options;
    Task<> operator()(web::Context& c) const { return web::send_file(c, path, options); }
};

std::string random_bytes(std::size_t n, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::string s(n, '\0');
    for (char& ch : s) {
        ch = static_cast<char>(rng() & 0xFFU);
    }
    return s;
}

/// The weak ETag send_file gives a file of `size` bytes modified at `mtime` (whole seconds).
std::string fmt_etag(std::uint64_t size, std::time_t mtime) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "W/\"%llx-%llx\"", static_cast<unsigned long long>(size),
                  static_cast<unsigned long long>(mtime) * 1000000000ULL);
    return buf;
}

std::string digits(std::size_t n) {
    std::string s;
    for (std::size_t i = 0; i < n; ++i) {
        s.push_back(static_cast<char>('0' + i % 10));
    }
    return s;
}

/// Runs a test body with openat2 and again with the realpath fallback older kernels get.
struct ResolverMode {
    explicit ResolverMode(bool fallback) noexcept { web::detail::use_openat2_fallback(fallback); }
    ~ResolverMode() { web::detail::use_openat2_fallback(false); }
    ResolverMode(const ResolverMode&) = delete;
    ResolverMode& operator=(const ResolverMode&) = delete;
};

/// Traversal answers: refused (403), not found (404) or rejected by the parser (400).
bool refused(const TestResponse& r) { return r.status == 400 || r.status == 403 || r.status == 404; }

} // namespace

TEST_SUITE("web static helpers") {

TEST_CASE("mime_type maps the common extensions and defaults to octet-stream") {
    CHECK(web::mime_type("index.html") == "text/html; charset=utf-8");
    CHECK(web::mime_type("a/b/style.css") == "text/css; charset=utf-8");
    CHECK(web::mime_type("app.js") == "text/javascript; charset=utf-8");
    CHECK(web::mime_type("mod.mjs") == "text/javascript; charset=utf-8");
    CHECK(web::mime_type("data.json") == "application/json");
    CHECK(web::mime_type("logo.svg") == "image/svg+xml");
    CHECK(web::mime_type("x.png") == "image/png");
    CHECK(web::mime_type("x.jpg") == "image/jpeg");
    CHECK(web::mime_type("x.jpeg") == "image/jpeg");
    CHECK(web::mime_type("x.gif") == "image/gif");
    CHECK(web::mime_type("x.webp") == "image/webp");
    CHECK(web::mime_type("favicon.ico") == "image/x-icon");
    CHECK(web::mime_type("notes.txt") == "text/plain; charset=utf-8");
    CHECK(web::mime_type("m.wasm") == "application/wasm");
    CHECK(web::mime_type("doc.pdf") == "application/pdf");
    CHECK(web::mime_type("f.woff2") == "font/woff2");
    CHECK(web::mime_type("feed.xml") == "application/xml");
    CHECK(web::mime_type("movie.mp4") == "video/mp4");
    CHECK(web::mime_type("PAGE.HTML") == "text/html; charset=utf-8");
    CHECK(web::mime_type("archive.unknownext") == "application/octet-stream");
    CHECK(web::mime_type("Makefile") == "application/octet-stream");
    CHECK(web::mime_type("dir.d/noext") == "application/octet-stream");
    CHECK(web::mime_type("trailingdot.") == "application/octet-stream");
}

TEST_CASE("HTTP dates: IMF-fixdate out, all three formats in") {
    CHECK(web::format_http_date(784111777) == "Sun, 06 Nov 1994 08:49:37 GMT");
    CHECK(web::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT") == std::optional<std::time_t>(784111777));
    CHECK(web::parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT") == std::optional<std::time_t>(784111777));
    CHECK(web::parse_http_date("Sun Nov  6 08:49:37 1994") == std::optional<std::time_t>(784111777));
    CHECK(web::parse_http_date(std::string(kMtimeText)) == std::optional<std::time_t>(kMtime));
    CHECK(web::parse_http_date(web::format_http_date(kMtime)) == std::optional<std::time_t>(kMtime));
    CHECK_FALSE(web::parse_http_date("").has_value());
    CHECK_FALSE(web::parse_http_date("yesterday").has_value());
    CHECK_FALSE(web::parse_http_date("Sun, 06 Nox 1994 08:49:37 GMT").has_value());
    CHECK_FALSE(web::parse_http_date("Sun, 06 Nov 1994 08:49:37 UTC").has_value());
    CHECK_FALSE(web::parse_http_date("Sun, 06 Nov 1994 25:49:37 GMT").has_value());
}

TEST_CASE("parse_range: first, last, suffix, open, clamped, unsatisfiable, ignored") {
    using K = web::RangeSpec::Kind;
    const auto r = [](std::string_view h, std::uint64_t size) { return web::parse_range(h, size); };
    CHECK(r("bytes=0-4", 10).kind == K::single);
    CHECK(r("bytes=0-4", 10).first == 0);
    CHECK(r("bytes=0-4", 10).length == 5);
    CHECK(r("bytes=9-9", 10).length == 1);
    CHECK(r("bytes=5-", 10).first == 5);
    CHECK(r("bytes=5-", 10).length == 5);
    CHECK(r("bytes=-3", 10).first == 7);
    CHECK(r("bytes=-3", 10).length == 3);
    CHECK(r("bytes=-30", 10).first == 0);
    CHECK(r("bytes=-30", 10).length == 10);
    CHECK(r("bytes=2-999", 10).length == 8);
    CHECK(r("Bytes = 1-2", 10).kind == K::single);
    CHECK(r("bytes=2-99999999999999999999999", 10).length == 8);
    CHECK(r("bytes=10-", 10).kind == K::unsatisfiable);
    CHECK(r("bytes=10-20", 10).kind == K::unsatisfiable);
    CHECK(r("bytes=-0", 10).kind == K::unsatisfiable);
    CHECK(r("bytes=0-0", 0).kind == K::unsatisfiable);
    CHECK(r("bytes=0-", 0).kind == K::unsatisfiable);
    CHECK(r("bytes=-0", 0).kind == K::unsatisfiable);
    CHECK(r("bytes=-5", 0).kind == K::none); // satisfiable, but no byte to send: 200
    CHECK(r("bytes=-1", 0).kind == K::none);
    CHECK(r("bytes=99999999999999999999999-", 10).kind == K::unsatisfiable);
    CHECK(r("bytes=5-3", 10).kind == K::none);
    CHECK(r("bytes=0-1,4-5", 10).kind == K::none);
    CHECK(r("items=0-1", 10).kind == K::none);
    CHECK(r("bytes=a-b", 10).kind == K::none);
    CHECK(r("bytes=-", 10).kind == K::none);
    CHECK(r("bytes=+1-2", 10).kind == K::none);
    CHECK(r("bytes", 10).kind == K::none);
}

TEST_CASE("etag_list_matches: lists, *, weak and strong comparison") {
    CHECK(web::etag_list_matches("\"a\"", "\"a\"", true));
    CHECK(web::etag_list_matches("\"x\", W/\"a\"", "\"a\"", true));
    CHECK(web::etag_list_matches("\"a\"", "W/\"a\"", true));
    CHECK(web::etag_list_matches("*", "W/\"a\"", true));
    CHECK_FALSE(web::etag_list_matches("\"b\"", "\"a\"", true));
    CHECK_FALSE(web::etag_list_matches("\"a\"", "", true));
    CHECK(web::etag_list_matches("\"a\"", "\"a\"", false));
    CHECK_FALSE(web::etag_list_matches("W/\"a\"", "\"a\"", false));
    CHECK_FALSE(web::etag_list_matches("\"a\"", "W/\"a\"", false));
    CHECK(web::etag_list_matches(" * ", "W/\"a\"", false));
}

} // TEST_SUITE

TEST_SUITE("web send_file") {

TEST_CASE("GET sends the bytes, type and validators; HEAD the same head without a body") {
    TempTree t;
    t.write("root/hello.txt", "hello, world\n");
    web::App app;
    app.get("/f", SendFile{t.path("root/hello.txt"), {}});
    TestClient client(app);

    const TestResponse r = client.get("/f");
    CHECK(r.status == 200);
    CHECK(r.body == "hello, world\n");
    CHECK(r.header("Content-Type") == "text/plain; charset=utf-8");
    CHECK(r.header("Content-Length") == "13");
    CHECK(r.header("Last-Modified") == kMtimeText);
    CHECK(r.header("Accept-Ranges") == "bytes");
    const std::string etag(r.header("ETag"));
    CHECK(etag.starts_with("W/\"d-"));
    CHECK_FALSE(r.has_header("Cache-Control"));

    const TestResponse h = client.head("/f");
    CHECK(h.status == 200);
    CHECK(h.body.empty());
    CHECK(h.header("Content-Length") == "13");
    CHECK(h.header("ETag") == etag);
    CHECK(h.header("Content-Type") == "text/plain; charset=utf-8");

    // The connection is still in sync after the HEAD.
    CHECK(client.get("/f").body == "hello, world\n");
}

TEST_CASE("Context::file() is send_file with the default options") {
    TempTree t;
    t.write("root/page.html", "<p>page</p>");
    web::App app;
    // A plain (non-coroutine) lambda returning the task: nothing is captured.
    app.get("/file", [](web::Context& c) { return c.file(std::string(c.query_or("p", ""))); });
    TestClient client(app);
    const TestResponse r = client.get("/file?p=" + t.path("root/page.html"));
    CHECK(r.status == 200);
    CHECK(r.body == "<p>page</p>");
    CHECK(r.header("Content-Type") == "text/html; charset=utf-8");
    CHECK(client.get("/file?p=" + t.path("root/none.html")).status == 404);
}

TEST_CASE("the ETag changes with the content's size and mtime") {
    TempTree t;
    t.write("root/a.txt", "one");
    web::App app;
    app.get("/f", SendFile{t.path("root/a.txt"), {}});
    TestClient client(app);
    const std::string first(client.get("/f").header("ETag"));
    t.write("root/a.txt", "two"); // same size, same (forced) mtime...
    const timespec times[2] = {{kMtime, 0}, {kMtime + 1, 0}};
    REQUIRE(::utimensat(AT_FDCWD, t.path("root/a.txt").c_str(), times, 0) == 0); // ...until now
    const TestResponse r = client.get("/f");
    CHECK(r.body == "two");
    CHECK(r.header("ETag") != first);
}

TEST_CASE("missing files answer 404, directories and FIFOs 403 (without blocking)") {
    TempTree t;
    t.mkdir("root/dir");
    REQUIRE(::mkfifo(t.path("root/fifo").c_str(), 0600) == 0);
    web::App app;
    app.get("/missing", SendFile{t.path("root/nope.txt"), {}});
    app.get("/dir", SendFile{t.path("root/dir"), {}});
    app.get("/fifo", SendFile{t.path("root/fifo"), {}});
    app.get("/fifo-inline", SendFile{t.path("root/fifo"), {.offload_open = false}});
    TestClient client(app);
    CHECK(client.get("/missing").status == 404);
    CHECK(client.get("/dir").status == 403);
    CHECK(client.get("/fifo").status == 403);
    CHECK(client.get("/fifo-inline").status == 403);
}

TEST_CASE("options: Cache-Control, a forced Content-Type, no validators, inline open") {
    TempTree t;
    t.write("root/data.bin", "abc");
    web::App app;
    app.get("/cc", SendFile{t.path("root/data.bin"), {.cache_control = "public, max-age=60"}});
    app.get("/type", SendFile{t.path("root/data.bin"), {.content_type = "text/csv"}});
    app.get("/bare", SendFile{t.path("root/data.bin"), {.etag = false, .last_modified = false, .ranges = false}});
    app.get("/inline", SendFile{t.path("root/data.bin"), {.offload_open = false}});
    TestClient client(app);

    CHECK(client.get("/cc").header("Cache-Control") == "public, max-age=60");
    CHECK(client.get("/type").header("Content-Type") == "text/csv");
    const TestResponse bare = client.get("/bare", {{"Range", "bytes=0-0"}, {"If-None-Match", "*"}});
    CHECK(bare.status == 200);
    CHECK(bare.body == "abc");
    CHECK_FALSE(bare.has_header("ETag"));
    CHECK_FALSE(bare.has_header("Last-Modified"));
    CHECK_FALSE(bare.has_header("Accept-Ranges"));
    const TestResponse in = client.get("/inline");
    CHECK(in.status == 200);
    CHECK(in.header("Content-Type") == "application/octet-stream");
    CHECK(in.body == "abc");
}

TEST_CASE("conditional GET: If-None-Match and If-Modified-Since answer 304") {
    TempTree t;
    t.write("root/page.html", "<p>hi</p>");
    web::App app;
    app.get("/p", SendFile{t.path("root/page.html"), {.cache_control = "no-cache"}});
    TestClient client(app);
    const std::string etag(client.get("/p").header("ETag"));
    REQUIRE_FALSE(etag.empty());

    SUBCASE("the ETag itself") {
        const TestResponse r = client.get("/p", {{"If-None-Match", etag}});
        CHECK(r.status == 304);
        CHECK(r.body.empty());
        CHECK(r.header("ETag") == etag);
        CHECK(r.header("Cache-Control") == "no-cache");
        CHECK(r.header("Last-Modified") == kMtimeText);
        CHECK_FALSE(r.has_header("Content-Length"));
    }
    SUBCASE("in a list, and its strong form (weak comparison)") {
        CHECK(client.get("/p", {{"If-None-Match", "\"zzz\", " + etag}}).status == 304);
        CHECK(client.get("/p", {{"If-None-Match", etag.substr(2)}}).status == 304);
        CHECK(client.get("/p", {{"If-None-Match", "*"}}).status == 304);
    }
    SUBCASE("HEAD is conditional too") {
        CHECK(client.head("/p", {{"If-None-Match", etag}}).status == 304);
    }
    SUBCASE("another tag: 200") {
        const TestResponse r = client.get("/p", {{"If-None-Match", "W/\"other\""}});
        CHECK(r.status == 200);
        CHECK(r.body == "<p>hi</p>");
    }
    SUBCASE("If-Modified-Since at or after Last-Modified: 304; before: 200") {
        CHECK(client.get("/p", {{"If-Modified-Since", std::string(kMtimeText)}}).status == 304);
        CHECK(client.get("/p", {{"If-Modified-Since", web::format_http_date(kMtime + 3600)}}).status == 304);
        CHECK(client.get("/p", {{"If-Modified-Since", web::format_http_date(kMtime - 1)}}).status == 200);
        CHECK(client.get("/p", {{"If-Modified-Since", "garbage"}}).status == 200);
    }
    SUBCASE("If-None-Match wins over If-Modified-Since") {
        const TestResponse r =
            client.get("/p", {{"If-None-Match", "\"nope\""}, {"If-Modified-Since", std::string(kMtimeText)}});
        CHECK(r.status == 200);
    }
    SUBCASE("If-Match and If-Unmodified-Since failures: 412") {
        CHECK(client.get("/p", {{"If-Match", "\"nope\""}}).status == 412);
        CHECK(client.get("/p", {{"If-Match", etag}}).status == 412); // weak tags never match strongly
        CHECK(client.get("/p", {{"If-Match", "*"}}).status == 200);
        CHECK(client.get("/p", {{"If-Unmodified-Since", web::format_http_date(kMtime - 10)}}).status == 412);
        CHECK(client.get("/p", {{"If-Unmodified-Since", std::string(kMtimeText)}}).status == 200);
    }
}

TEST_CASE("an mtime in the future: Last-Modified is the response's Date, the ETag keeps the mtime") {
    TempTree t;
    t.write("root/future.txt", "later");
    const std::time_t future = std::time(nullptr) + 10L * 365 * 24 * 3600;
    const timespec times[2] = {{future, 0}, {future, 0}};
    REQUIRE(::utimensat(AT_FDCWD, t.path("root/future.txt").c_str(), times, 0) == 0);
    web::App app;
    app.get("/f", SendFile{t.path("root/future.txt"), {}});
    TestClient client(app);

    const TestResponse r = client.get("/f");
    CHECK(r.status == 200);
    const auto last_modified = web::parse_http_date(r.header("Last-Modified"));
    const auto date = web::parse_http_date(r.header("Date"));
    REQUIRE(last_modified.has_value());
    REQUIRE(date.has_value());
    CHECK(*last_modified <= *date); // RFC 9110 §8.8.2.1
    CHECK(*last_modified >= *date - 5);
    // The weak ETag is still size-mtime, with the true (future) mtime.
    CHECK(r.header("ETag") == fmt_etag(5, future));

    // The date preconditions compare with the Last-Modified the client was given: a date at
    // or after it is "not modified since", and the file is "unmodified since" it.
    // Each answer's own Last-Modified decides (a second may tick between the requests, and
    // then the clamped Last-Modified is later than now_text).
    const std::string now_text(r.header("Date"));
    const auto since = web::parse_http_date(now_text);
    const TestResponse ims = client.get("/f", {{"If-Modified-Since", now_text}});
    const auto ims_lm = web::parse_http_date(ims.header("Last-Modified"));
    REQUIRE(ims_lm.has_value());
    CHECK(*ims_lm < future);
    CHECK(ims.status == (*ims_lm <= *since ? 304 : 200));
    const TestResponse ius = client.get("/f", {{"If-Unmodified-Since", now_text}});
    const auto ius_lm = web::parse_http_date(ius.header("Last-Modified"));
    CHECK(ius.status == (ius_lm.has_value() && *ius_lm <= *since ? 200 : 412));
    CHECK(client.get("/f", {{"If-Unmodified-Since", web::format_http_date(kMtime)}}).status == 412);
    CHECK(client.get("/f", {{"If-Modified-Since", web::format_http_date(kMtime)}}).status == 200);
    // An If-Range with the file's future mtime is not the Last-Modified we sent: the whole file.
    const TestResponse whole = client.get("/f", {{"Range", "bytes=0-1"}, {"If-Range", web::format_http_date(future)}});
    CHECK(whole.status == 200);
    CHECK(whole.body == "later");
}

TEST_CASE("ranges: first, last, suffix, open-ended, beyond the end, invalid, several") {
    TempTree t;
    const std::string content = digits(100);
    t.write("root/d.txt", content);
    web::App app;
    app.get("/d", SendFile{t.path("root/d.txt"), {}});
    TestClient client(app);

    SUBCASE("first bytes") {
        const TestResponse r = client.get("/d", {{"Range", "bytes=0-4"}});
        CHECK(r.status == 206);
        CHECK(r.body == "01234");
        CHECK(r.header("Content-Range") == "bytes 0-4/100");
        CHECK(r.header("Content-Length") == "5");
        CHECK(r.header("Content-Type") == "text/plain; charset=utf-8");
    }
    SUBCASE("last byte, open-ended and suffix") {
        CHECK(client.get("/d", {{"Range", "bytes=99-99"}}).body == "9");
        const TestResponse open = client.get("/d", {{"Range", "bytes=95-"}});
        CHECK(open.status == 206);
        CHECK(open.body == "56789");
        CHECK(open.header("Content-Range") == "bytes 95-99/100");
        const TestResponse suffix = client.get("/d", {{"Range", "bytes=-3"}});
        CHECK(suffix.status == 206);
        CHECK(suffix.body == "789");
        CHECK(suffix.header("Content-Range") == "bytes 97-99/100");
    }
    SUBCASE("an end beyond the size is clamped") {
        const TestResponse r = client.get("/d", {{"Range", "bytes=90-1000"}});
        CHECK(r.status == 206);
        CHECK(r.body == content.substr(90));
        CHECK(r.header("Content-Range") == "bytes 90-99/100");
    }
    SUBCASE("a start at or beyond the size: 416 with bytes */size") {
        const TestResponse r = client.get("/d", {{"Range", "bytes=100-"}});
        CHECK(r.status == 416);
        CHECK(r.header("Content-Range") == "bytes */100");
        CHECK(client.get("/d", {{"Range", "bytes=-0"}}).status == 416);
    }
    SUBCASE("invalid or several ranges: the whole file") {
        for (const char* h : {"bytes=5-3", "bytes=x-y", "pages=1-2", "bytes=0-1,5-6"}) {
            CAPTURE(h);
            const TestResponse r = client.get("/d", {{"Range", h}});
            CHECK(r.status == 200);
            CHECK(r.body == content);
            CHECK_FALSE(r.has_header("Content-Range"));
        }
    }
    SUBCASE("HEAD ignores Range") {
        const TestResponse r = client.head("/d", {{"Range", "bytes=0-4"}});
        CHECK(r.status == 200);
        CHECK(r.header("Content-Length") == "100");
    }
    SUBCASE("If-Range: the Last-Modified date applies the range, another date or our weak tag do not") {
        const std::string etag(client.get("/d").header("ETag"));
        const TestResponse same = client.get("/d", {{"Range", "bytes=0-1"}, {"If-Range", std::string(kMtimeText)}});
        CHECK(same.status == 206);
        CHECK(same.body == "01");
        const TestResponse old =
            client.get("/d", {{"Range", "bytes=0-1"}, {"If-Range", web::format_http_date(kMtime - 60)}});
        CHECK(old.status == 200);
        CHECK(old.body == content);
        CHECK(client.get("/d", {{"Range", "bytes=0-1"}, {"If-Range", etag}}).status == 200);
        CHECK(client.get("/d", {{"Range", "bytes=0-1"}, {"If-Range", etag.substr(2)}}).status == 200);
    }
    SUBCASE("a conditional 304 wins over Range") {
        CHECK(client.get("/d", {{"Range", "bytes=0-1"}, {"If-None-Match", "*"}}).status == 304);
    }
}

TEST_CASE("an empty file: 200 with no body; a suffix range 200 too, any other range 416") {
    TempTree t;
    t.write("root/empty.txt", "");
    web::App app;
    app.get("/e", SendFile{t.path("root/empty.txt"), {}});
    TestClient client(app);
    const TestResponse r = client.get("/e");
    CHECK(r.status == 200);
    CHECK(r.body.empty());
    CHECK(r.header("Content-Length") == "0");
    const TestResponse first = client.get("/e", {{"Range", "bytes=0-"}});
    CHECK(first.status == 416);
    CHECK(first.header("Content-Range") == "bytes */0");
    CHECK(client.get("/e", {{"Range", "bytes=0-0"}}).status == 416);
    CHECK(client.get("/e", {{"Range", "bytes=-0"}}).status == 416);
    // RFC 9110 §14.1.1: a non-zero suffix-length is satisfiable even on a zero-length
    // representation; no byte range can be sent, so the whole (empty) one is.
    const TestResponse suffix = client.get("/e", {{"Range", "bytes=-5"}});
    CHECK(suffix.status == 200);
    CHECK(suffix.body.empty());
    CHECK(suffix.header("Content-Length") == "0");
    CHECK_FALSE(suffix.has_header("Content-Range"));
}

TEST_CASE("a 1 MiB file arrives byte-exact, streamed with its Content-Length; ranges and HEAD too") {
    TempTree t;
    const std::string content = random_bytes(1U << 20, 12345);
    t.write("root/big.bin", content);
    web::App app;
    app.get("/big", SendFile{t.path("root/big.bin"), {}});
    app.get("/big-small-chunks", SendFile{t.path("root/big.bin"), {.chunk_size = 10000}});
    TestClient client(app);

    const TestResponse r = client.get("/big");
    CHECK(r.status == 200);
    CHECK(r.body.size() == content.size());
    CHECK(r.body == content);
    CHECK(r.header("Content-Type") == "application/octet-stream");
    CHECK(r.header("Content-Length") == "1048576");
    CHECK_FALSE(r.chunked);

    const TestResponse odd = client.get("/big-small-chunks");
    CHECK(odd.body == content);

    const TestResponse part = client.get("/big", {{"Range", "bytes=100000-899999"}});
    CHECK(part.status == 206);
    CHECK(part.header("Content-Range") == "bytes 100000-899999/1048576");
    CHECK(part.header("Content-Length") == "800000");
    CHECK(part.body == content.substr(100000, 800000));

    const TestResponse tail = client.get("/big", {{"Range", "bytes=-70000"}});
    CHECK(tail.status == 206);
    CHECK(tail.body == content.substr(content.size() - 70000));

    const TestResponse head = client.head("/big");
    CHECK(head.status == 200);
    CHECK(head.body.empty());
    CHECK(head.header("Content-Length") == "1048576");

    // Still in sync afterwards.
    CHECK(client.get("/big", {{"Range", "bytes=0-2"}}).body == content.substr(0, 3));
}

} // TEST_SUITE

TEST_SUITE("web static_files") {

TEST_CASE("serves files under the root with their types, index.html for directories") {
    TempTree t;
    t.write("root/index.html", "<h1>home</h1>");
    t.write("root/app.js", "console.log(1)");
    t.write("root/css/site.css", "body{}");
    t.write("root/docs/index.html", "<h1>docs</h1>");
    t.write("root/img/logo.svg", "<svg/>");
    t.write("root/file with space.txt", "spaced");
    web::App app;
    app.use(web::mw::static_files(t.root()));
    TestClient client(app);

    const TestResponse home = client.get("/");
    CHECK(home.status == 200);
    CHECK(home.body == "<h1>home</h1>");
    CHECK(home.header("Content-Type") == "text/html; charset=utf-8");
    CHECK(client.get("/index.html").body == "<h1>home</h1>");
    CHECK(client.get("/app.js").header("Content-Type") == "text/javascript; charset=utf-8");
    CHECK(client.get("/css/site.css").body == "body{}");
    CHECK(client.get("/img/logo.svg").header("Content-Type") == "image/svg+xml");
    CHECK(client.get("/docs/").body == "<h1>docs</h1>");
    CHECK(client.get("/file%20with%20space.txt").body == "spaced");
    CHECK(client.get("/./css//site.css").body == "body{}");
    CHECK(client.head("/app.js").header("Content-Length") == "14");
}

TEST_CASE("a directory without its trailing slash is redirected, query kept") {
    TempTree t;
    t.write("root/docs/index.html", "docs");
    web::App app;
    app.use(web::mw::static_files(t.root()));
    TestClient client(app);
    const TestResponse r = client.get("/docs");
    CHECK(r.status == 301);
    CHECK(r.header("Location") == "/docs/");
    CHECK(client.get("/docs?lang=en").header("Location") == "/docs/?lang=en");
    // Never a scheme-relative location from a path starting with slashes.
    CHECK(client.get("//docs").header("Location") == "/docs/");
    // A file with a trailing slash is not that file.
    t.write("root/a.txt", "a");
    CHECK(client.get("/a.txt/").status == 404);
}

TEST_CASE("a missing file falls through to the next handler, or answers 404") {
    TempTree t;
    t.write("root/a.txt", "a");
    SUBCASE("fallthrough (default)") {
        web::App app;
        app.use(web::mw::static_files(t.root()));
        app.get("/api/ping", [](web::Context& c) { c.text("pong"); });
        TestClient client(app);
        CHECK(client.get("/a.txt").body == "a");
        CHECK(client.get("/api/ping").body == "pong");
        CHECK(client.get("/nothing").status == 404);
        // Other methods pass through untouched.
        CHECK(client.post("/a.txt", "{}").status != 200);
    }
    SUBCASE("no fallthrough: 404 inside the prefix, next() outside it") {
        web::App app;
        app.use(web::mw::static_files(t.root(), {.prefix = "/static", .fallthrough = false}));
        app.get("/static/dynamic", [](web::Context& c) { c.text("dynamic"); });
        app.get("/other", [](web::Context& c) { c.text("other"); });
        TestClient client(app);
        CHECK(client.get("/static/a.txt").body == "a");
        CHECK(client.get("/static/dynamic").status == 404);
        CHECK(client.get("/other").body == "other");
    }
}

TEST_CASE("prefix mode and catch-all parameter mode") {
    TempTree t;
    t.write("root/a.txt", "a");
    t.write("root/sub/index.html", "sub");
    web::App app;
    app.use(web::mw::static_files(t.root(), {.prefix = "/static/"}));
    app.get("/assets/*path", web::mw::static_files(t.root(), {.param = "path"}));
    app.any("/files/*path", web::mw::static_files(t.root(), {.param = "path"}));
    TestClient client(app);

    CHECK(client.get("/static/a.txt").body == "a");
    CHECK(client.get("/static").header("Location") == "/static/");
    CHECK(client.get("/staticx/a.txt").status == 404); // not under the prefix
    CHECK(client.get("/static/sub/").body == "sub");
    CHECK(client.get("/assets/a.txt").body == "a");
    CHECK(client.get("/assets/sub").header("Location") == "/assets/sub/");
    CHECK(client.get("/assets/missing.txt").status == 404); // end of chain: no next
    const TestResponse post = client.post("/files/a.txt", "{}");
    CHECK(post.status == 405);
    CHECK(post.header("Allow") == "GET, HEAD");
}

TEST_CASE("no escape from the root: dot segments, encodings, backslashes, NUL, absolute paths") {
    bool fallback = false;
    SUBCASE("openat2 RESOLVE_BENEATH") { fallback = false; }
    SUBCASE("realpath fallback") { fallback = true; }
    const ResolverMode mode(fallback);
    TempTree t;
    t.write("root/a.txt", "a");
    t.write("root/sub/b.txt", "b");
    web::App app;
    app.use(web::mw::static_files(t.root(), {.prefix = "/s"}));
    app.get("/c/*path", web::mw::static_files(t.root(), {.param = "path"}));
    TestClient client(app);

    const std::string abs_secret = t.path("outside/secret.txt");
    const std::vector<std::string> attempts = {
        "/s/../outside/secret.txt",
        "/s/sub/../../outside/secret.txt",
        "/s/%2e%2e/outside/secret.txt",
        "/s/%2E%2E/outside/secret.txt",
        "/s/..%2foutside%2fsecret.txt",
        "/s/sub%2f..%2f..%2foutside%2fsecret.txt",
        "/s/..%5coutside%5csecret.txt",
        "/s/sub\\..\\..\\outside\\secret.txt",
        "/s/a.txt%00.png",
        "/s/%252e%252e/outside/secret.txt",
        "/s/" + abs_secret,
        "/s//" + abs_secret,
        "/c/../outside/secret.txt",
        "/c/%2e%2e/outside/secret.txt",
        "/c/..%2f..%2f..%2fetc%2fpasswd",
        "/c/" + abs_secret,
        "/c//" + abs_secret,
        "/c//etc/passwd",
        "/s/../../../../../../etc/passwd",
        "/../etc/passwd",
    };
    for (const std::string& target : attempts) {
        CAPTURE(target);
        const TestResponse r = client.get(target);
        CHECK(refused(r));
        CHECK(r.body.find("TOP-SECRET") == std::string::npos);
        CHECK(r.body.find("root:") == std::string::npos);
    }
    // The decoded ".." is refused outright (403), not merely not found.
    CHECK(client.get("/s/%2e%2e/outside/secret.txt").status == 403);
    CHECK(client.get("/c/..%2fa.txt").status == 403);
    CHECK(client.get("/s/sub%5cb.txt").status == 403);
    // Legitimate paths keep working on the same connection.
    CHECK(client.get("/s/sub/b.txt").body == "b");
    CHECK(client.get("/c/sub/b.txt").body == "b");
    // A NUL never reaches the middleware: %00 is a 400 before routing, a raw NUL the parser's 400.
    CHECK(client.get("/s/a.txt%00.png").status == 400);
    CHECK(client.get("/c/a.txt%00").status == 400);
    constexpr std::string_view raw_nul("GET /s/a.txt\0.png HTTP/1.1\r\nHost: t\r\n\r\n", 39);
    CHECK(client.raw(raw_nul).status == 400);
}

TEST_CASE("symlinks: inside the root they work, leading outside they are missing") {
    bool fallback = false;
    SUBCASE("openat2 RESOLVE_BENEATH") { fallback = false; }
    SUBCASE("realpath fallback") { fallback = true; }
    const ResolverMode mode(fallback);
    TempTree t;
    t.write("root/a.txt", "a");
    t.mkdir("root/real");
    t.write("root/real/r.txt", "r");
    t.symlink("a.txt", "root/alias.txt");
    t.symlink("real", "root/dirlink");
    t.symlink("../outside/secret.txt", "root/escape.txt");
    t.symlink(t.path("outside/secret.txt"), "root/escape-abs.txt");
    t.symlink("../outside", "root/escape-dir");
    t.symlink("/etc", "root/etc");
    t.mkdir("root/site");
    t.symlink("../a.txt", "root/site/index.html"); // an index that is a symlink within the tree
    t.symlink("../outside/secret.txt", "root/real/index.html");
    web::App app;
    app.use(web::mw::static_files(t.root()));
    TestClient client(app);

    CHECK(client.get("/alias.txt").body == "a");
    CHECK(client.get("/dirlink/r.txt").body == "r");
    CHECK(client.get("/site/").body == "a");
    CHECK(client.get("/real/").status == 404);    // its index leads outside
    CHECK(client.get("/dirlink/").status == 404); // the same index through a symlinked directory
    for (const char* target : {"/escape.txt", "/escape-abs.txt", "/escape-dir/secret.txt", "/etc/passwd",
                               "/escape-dir/"}) {
        CAPTURE(target);
        const TestResponse r = client.get(target);
        CHECK(r.status == 404);
        CHECK(r.body.find("TOP-SECRET") == std::string::npos);
    }
}

TEST_CASE("dot files are hidden unless enabled") {
    TempTree t;
    t.write("root/.env", "SECRET=1");
    t.write("root/.well-known/x.txt", "x");
    SUBCASE("hidden") {
        web::App app;
        app.use(web::mw::static_files(t.root()));
        TestClient client(app);
        CHECK(client.get("/.env").status == 404);
        CHECK(client.get("/.well-known/x.txt").status == 404);
    }
    SUBCASE("served") {
        web::App app;
        app.use(web::mw::static_files(t.root(), {.dotfiles = true}));
        TestClient client(app);
        CHECK(client.get("/.env").body == "SECRET=1");
        CHECK(client.get("/.well-known/x.txt").body == "x");
    }
}

TEST_CASE("directory listing: escaped names, encoded links, dot files hidden, index preferred") {
    TempTree t;
    t.write("root/list/<b>&amp.txt", "x");
    t.write("root/list/a b.txt", "yy");
    t.write("root/list/\"q'.txt", "z");
    t.write("root/list/.hidden", "h");
    t.mkdir("root/list/subdir");
    t.write("root/withindex/index.html", "idx");
    t.mkdir("root/empty");
    SUBCASE("enabled") {
        web::App app;
        app.use(web::mw::static_files(t.root(), {.listing = true}));
        TestClient client(app);
        const TestResponse r = client.get("/list/");
        CHECK(r.status == 200);
        CHECK(r.header("Content-Type") == "text/html; charset=utf-8");
        CHECK(r.body.find("&lt;b&gt;&amp;amp.txt") != std::string::npos);
        CHECK(r.body.find("<b>") == std::string::npos);
        CHECK(r.body.find("href=\"./%3Cb%3E%26amp.txt\"") != std::string::npos);
        CHECK(r.body.find("href=\"./a%20b.txt\"") != std::string::npos);
        CHECK(r.body.find("&quot;q&#39;.txt") != std::string::npos);
        CHECK(r.body.find("href=\"./subdir/\"") != std::string::npos);
        CHECK(r.body.find(".hidden") == std::string::npos);
        CHECK(r.body.find("Index of /list/") != std::string::npos);
        // Directories are listed first.
        CHECK(r.body.find("subdir") < r.body.find("a%20b.txt"));
        CHECK(client.get("/withindex/").body == "idx");
        CHECK(client.get("/empty/").status == 200);
    }
    SUBCASE("disabled: a directory without index is missing") {
        web::App app;
        app.use(web::mw::static_files(t.root()));
        TestClient client(app);
        CHECK(client.get("/list/").status == 404);
        CHECK(client.get("/withindex/").body == "idx");
    }
}

TEST_CASE("directory listing: symlinks out of the root are not listed, those inside are") {
    bool fallback = false;
    SUBCASE("openat2 RESOLVE_BENEATH") { fallback = false; }
    SUBCASE("realpath fallback") { fallback = true; }
    const ResolverMode mode(fallback);
    TempTree t;
    t.write("root/top.txt", "top");
    t.write("root/real/r.txt", "r");
    t.write("root/list/plain.txt", "plain");
    t.symlink("plain.txt", "root/list/alias.txt");
    t.symlink("../top.txt", "root/list/up.txt");
    t.symlink("../real", "root/list/dirlink");
    t.symlink("../../outside/secret.txt", "root/list/escape.txt");
    t.symlink(t.path("outside/secret.txt"), "root/list/escape-abs.txt");
    t.symlink("../../outside", "root/list/escape-dir");
    t.symlink("nowhere.txt", "root/list/dangling.txt");
    web::App app;
    app.use(web::mw::static_files(t.root(), {.listing = true}));
    TestClient client(app);

    const TestResponse r = client.get("/list/");
    REQUIRE(r.status == 200);
    CHECK(r.body.find("href=\"./plain.txt\"") != std::string::npos);
    CHECK(r.body.find("href=\"./alias.txt\"") != std::string::npos);
    CHECK(r.body.find("href=\"./up.txt\"") != std::string::npos);
    CHECK(r.body.find("href=\"./dirlink/\"") != std::string::npos);
    CHECK(r.body.find("escape") == std::string::npos);
    CHECK(r.body.find("dangling") == std::string::npos);
    // What is listed can be fetched; what is not listed cannot.
    CHECK(client.get("/list/alias.txt").body == "plain");
    CHECK(client.get("/list/up.txt").body == "top");
    CHECK(client.get("/list/dirlink/r.txt").body == "r");
    CHECK(client.get("/list/escape.txt").status == 404);
    CHECK(client.get("/list/escape-abs.txt").status == 404);
    CHECK(client.get("/list/escape-dir/").status == 404);
}

TEST_CASE("max_age sets Cache-Control; conditional and range requests work through the middleware") {
    TempTree t;
    t.write("root/app.css", digits(50));
    t.write("root/v1/app.css", "v1");
    web::App app;
    app.use(web::mw::static_files(t.root(), {.prefix = "/v1", .max_age = std::chrono::hours(24 * 365),
                                             .immutable = true}));
    app.use(web::mw::static_files(t.root(), {.max_age = std::chrono::seconds(60)}));
    TestClient client(app);

    CHECK(client.get("/v1/app.css").header("Cache-Control") == "public, max-age=31536000, immutable");
    const TestResponse r = client.get("/app.css");
    CHECK(r.header("Cache-Control") == "public, max-age=60");
    const TestResponse not_modified = client.get("/app.css", {{"If-None-Match", std::string(r.header("ETag"))}});
    CHECK(not_modified.status == 304);
    CHECK(not_modified.header("Cache-Control") == "public, max-age=60");
    const TestResponse part = client.get("/app.css", {{"Range", "bytes=10-12"}});
    CHECK(part.status == 206);
    CHECK(part.body == "012");
}

TEST_CASE("non-regular files under the root are refused with 403") {
    TempTree t;
    REQUIRE(::mkfifo(t.path("root/pipe").c_str(), 0600) == 0);
    web::App app;
    app.use(web::mw::static_files(t.root()));
    TestClient client(app);
    CHECK(client.get("/pipe").status == 403);
}

TEST_CASE("a root that is not a directory throws at construction") {
    TempTree t;
    t.write("root/file.txt", "x");
    CHECK_THROWS_AS((void)web::mw::static_files(t.path("missing-dir")), std::system_error);
    CHECK_THROWS_AS((void)web::mw::static_files(t.path("root/file.txt")), std::system_error);
}

} // TEST_SUITE
