// SPDX-License-Identifier: MIT
// Unit tests for mw::compress (gzip negotiation, skips, header fix-ups, zlib round-trips) and
// mw::etag (body hashes, If-None-Match, 304) through the in-process TestClient.
#include <ringwork/web/app.hpp>
#include <ringwork/web/compress.hpp>
#include <ringwork/web/static.hpp>
#include <ringwork/web/testing.hpp>

#include <doctest/doctest.h>

#define ZLIB_CONST
#include <zlib.h>

#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
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

/// Inflate a gzip member with zlib (the reference decoder); throws on a corrupt stream.
std::string gunzip(std::string_view in) {
    z_stream zs{};
    if (inflateInit2(&zs, 15 + 16) != Z_OK) {
        throw std::runtime_error("inflateInit2");
    }
    zs.next_in = reinterpret_cast<const Bytef*>(in.data()); // NOLINT: zlib's byte type
    zs.avail_in = static_cast<uInt>(in.size());
    std::string out;
    std::array<char, 16384> buf{};
    int rc = Z_OK;
    while (rc == Z_OK) {
        zs.next_out = reinterpret_cast<Bytef*>(buf.data()); // NOLINT: zlib's byte type
        zs.avail_out = static_cast<uInt>(buf.size());
        rc = inflate(&zs, Z_NO_FLUSH);
        out.append(buf.data(), buf.size() - zs.avail_out);
    }
    const bool whole = rc == Z_STREAM_END && zs.avail_in == 0;
    inflateEnd(&zs);
    if (!whole) {
        throw std::runtime_error("corrupt gzip stream");
    }
    return out;
}

std::string text_of(std::size_t n) {
    static constexpr std::string_view kWords = "the quick brown fox jumps over the lazy dog; ";
    std::string s;
    while (s.size() < n) {
        s.append(kWords);
    }
    s.resize(n);
    return s;
}

std::string random_bytes(std::size_t n, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::string s(n, '\0');
    for (char& ch : s) {
        ch = static_cast<char>(rng() & 0xFFU);
    }
    return s;
}

/// A synchronous handler answering a fixed body with a type and extra headers.
struct Fixed {
    std::string body;
    std::string type = "text/plain; charset=utf-8";
    std::vector<std::pair<std::string, std::string>> headers{};
    int status = 200;
    void operator()(web::Context& c) const {
        c.status(status);
        c.set_header("Content-Type", type);
        for (const auto& [name, value] : headers) {
            c.set_header(name, value);
        }
        c.response().set_body(body);
    }
};

/// A streaming handler: two chunks through Context::write.
Task<> streamed(web::Context& c) {
    c.set_header("Content-Type", "text/plain");
    const std::string chunk = text_of(4000);
    auto first = c.write(chunk);
    co_await std::move(first);
    auto second = c.write(chunk);
    co_await std::move(second);
}

const web::testing::TestResponse& expect_gzip(const TestResponse& r, std::string_view original) {
    CHECK(r.status == 200);
    CHECK(r.header("Content-Encoding") == "gzip");
    CHECK(r.header("Vary") == "Accept-Encoding");
    CHECK(r.header("Content-Length") == std::to_string(r.body.size()));
    CHECK(r.body.size() < original.size());
    CHECK(gunzip(r.body) == original);
    return r;
}

using Headers = std::vector<std::pair<std::string, std::string>>;
const Headers kGzip = {{"Accept-Encoding", "gzip, deflate, br"}};

} // namespace

TEST_SUITE("web compress helpers") {

TEST_CASE("accepts_gzip follows q-values, *, identity and x-gzip") {
    CHECK(web::accepts_gzip("gzip"));
    CHECK(web::accepts_gzip("GZIP"));
    CHECK(web::accepts_gzip("deflate, gzip, br"));
    CHECK(web::accepts_gzip("x-gzip"));
    CHECK(web::accepts_gzip("*"));
    CHECK(web::accepts_gzip("br;q=1.0, gzip;q=0.8"));
    CHECK(web::accepts_gzip("gzip;q=1, identity;q=0.5"));
    CHECK(web::accepts_gzip("identity;q=0, *"));
    CHECK(web::accepts_gzip("gzip ; q=0.001"));
    CHECK(web::accepts_gzip("gzip;q=0.5, identity;q=0.5"));
    CHECK_FALSE(web::accepts_gzip(""));
    CHECK_FALSE(web::accepts_gzip("gzip;q=0"));
    CHECK_FALSE(web::accepts_gzip("gzip;q=0.000"));
    CHECK_FALSE(web::accepts_gzip("deflate, br"));
    CHECK_FALSE(web::accepts_gzip("identity"));
    CHECK_FALSE(web::accepts_gzip("*;q=0"));
    CHECK_FALSE(web::accepts_gzip("*, gzip;q=0"));
    CHECK_FALSE(web::accepts_gzip("gzip;q=0.5, identity"));
    CHECK_FALSE(web::accepts_gzip("gzip;q=abc"));
    CHECK_FALSE(web::accepts_gzip("gzip;q=1.5"));
    CHECK_FALSE(web::accepts_gzip("gzipx"));
}

TEST_CASE("accepts_gzip ignores an element whose weight is malformed") {
    // weight = OWS ";" OWS "q=" qvalue: no whitespace around '=', a value, and 0..1.
    for (const std::string bad : {"gzip;q =0", "gzip;q= 0", "gzip;q =1", "gzip;Q\t=1", "gzip;q", "gzip;q=",
                                  "gzip;q=2", "gzip;q=1.0001", "gzip;q=.5", "gzip;q =0;q=1"}) {
        CAPTURE(bad);
        CHECK_FALSE(web::accepts_gzip(bad));
        // Ignored, not refusing: another element still decides.
        CHECK(web::accepts_gzip(bad + ", *"));
        CHECK_FALSE(web::accepts_gzip(bad + ", *;q=0"));
    }
    // "*;q =0" is ignored too, so it does not refuse gzip.
    CHECK(web::accepts_gzip("gzip, *;q =0"));
    CHECK(web::accepts_gzip("*, identity;q =0"));
    // Well-formed weights, another parameter, and OWS around ';' still count.
    CHECK(web::accepts_gzip("gzip;Q=0.5"));
    CHECK(web::accepts_gzip("gzip\t;\tq=1"));
    CHECK(web::accepts_gzip("gzip;level=9;q=1"));
    CHECK(web::accepts_gzip("gzip;qq=0"));
    CHECK_FALSE(web::accepts_gzip("gzip ;q=0"));
}

TEST_CASE("compressible_type skips what is compressed already") {
    CHECK(web::compressible_type(""));
    CHECK(web::compressible_type("text/html; charset=utf-8"));
    CHECK(web::compressible_type("application/json"));
    CHECK(web::compressible_type("text/javascript; charset=utf-8"));
    CHECK(web::compressible_type("image/svg+xml"));
    CHECK(web::compressible_type("Image/SVG+XML"));
    CHECK(web::compressible_type("application/wasm"));
    CHECK_FALSE(web::compressible_type("image/png"));
    CHECK_FALSE(web::compressible_type("image/jpeg"));
    CHECK_FALSE(web::compressible_type("video/mp4"));
    CHECK_FALSE(web::compressible_type("audio/mpeg"));
    CHECK_FALSE(web::compressible_type("application/zip"));
    CHECK_FALSE(web::compressible_type("application/gzip"));
    CHECK_FALSE(web::compressible_type("font/woff2"));
    CHECK_FALSE(web::compressible_type("application/octet-stream"));
    CHECK_FALSE(web::compressible_type("Application/Octet-Stream ; x=y"));
}

TEST_CASE("gzip_compress round-trips at every level and reuses its stream") {
    const std::string text = text_of(50000);
    for (int level : {1, 6, 9, -1, 1}) {
        CAPTURE(level);
        std::string out = "prefix";
        web::gzip_compress(text, level, out);
        REQUIRE(out.starts_with("prefix"));
        const std::string_view gz = std::string_view(out).substr(6);
        CHECK(gz.size() < text.size() / 4);
        CHECK(static_cast<unsigned char>(gz[0]) == 0x1F); // gzip magic
        CHECK(static_cast<unsigned char>(gz[1]) == 0x8B);
        CHECK(gunzip(gz) == text);
    }
    std::string empty;
    web::gzip_compress("", 6, empty);
    CHECK(gunzip(empty).empty());
    const std::string noise = random_bytes(100000, 7);
    std::string packed;
    web::gzip_compress(noise, 6, packed);
    CHECK(gunzip(packed) == noise);
}

TEST_CASE("body_hash is deterministic and sensitive to every byte and the length") {
    const std::string a = text_of(1000);
    std::string b = a;
    b[999] = 'X';
    CHECK(web::body_hash(a) == web::body_hash(a));
    CHECK(web::body_hash(a) != web::body_hash(b));
    CHECK(web::body_hash("") != web::body_hash(std::string(1, '\0')));
    CHECK(web::body_hash("abcdefgh") != web::body_hash("abcdefg"));
    CHECK(web::body_hash("abcdefgh1") != web::body_hash("abcdefgh2"));
}

} // TEST_SUITE

TEST_SUITE("web compress middleware") {

TEST_CASE("a text body is gzipped for a gzip client and inflates back to the original") {
    const std::string body = text_of(20000);
    web::App app;
    app.use(web::mw::compress());
    app.get("/t", Fixed{body});
    app.get("/json", Fixed{text_of(5000), "application/json"});
    TestClient client(app);

    expect_gzip(client.get("/t", kGzip), body);
    expect_gzip(client.get("/json", {{"Accept-Encoding", "gzip"}}), text_of(5000));
    // Again on the same connection (the per-thread stream was reset, not rebuilt).
    expect_gzip(client.get("/t", kGzip), body);

    // No Accept-Encoding: identity, but the response still varies on it.
    const TestResponse plain = client.get("/t");
    CHECK(plain.body == body);
    CHECK_FALSE(plain.has_header("Content-Encoding"));
    CHECK(plain.header("Vary") == "Accept-Encoding");
}

TEST_CASE("q-values decide: gzip;q=0 and a preferred identity get identity") {
    const std::string body = text_of(5000);
    web::App app;
    app.use(web::mw::compress());
    app.get("/t", Fixed{body});
    TestClient client(app);
    for (const char* refused : {"gzip;q=0", "br", "identity", "*;q=0", "gzip;q=0.2, identity;q=0.9"}) {
        CAPTURE(refused);
        const TestResponse r = client.get("/t", {{"Accept-Encoding", refused}});
        CHECK(r.body == body);
        CHECK_FALSE(r.has_header("Content-Encoding"));
    }
    for (const char* accepted : {"*", "br;q=1, gzip;q=0.5", "identity;q=0, gzip", "x-gzip"}) {
        CAPTURE(accepted);
        expect_gzip(client.get("/t", {{"Accept-Encoding", accepted}}), body);
    }
}

TEST_CASE("skipped: small bodies, compressed types, encoded, no-transform, non-200-ish, streamed") {
    web::App app;
    app.use(web::mw::compress());
    app.get("/small", Fixed{text_of(1023)});
    app.get("/edge", Fixed{text_of(1024)});
    app.get("/png", Fixed{text_of(5000), "image/png"});
    app.get("/mp4", Fixed{text_of(5000), "video/mp4"});
    app.get("/zip", Fixed{text_of(5000), "application/zip"});
    app.get("/woff2", Fixed{text_of(5000), "font/woff2"});
    app.get("/bin", Fixed{text_of(5000), "application/octet-stream"});
    app.get("/svg", Fixed{text_of(5000), "image/svg+xml"});
    app.get("/br", Fixed{text_of(5000), "text/plain", {{"Content-Encoding", "br"}}});
    app.get("/nt", Fixed{text_of(5000), "text/plain", {{"Cache-Control", "public, no-transform"}}});
    app.get("/206", Fixed{text_of(5000), "text/plain", {{"Content-Range", "bytes 0-4999/9999"}}, 206});
    app.get("/404", Fixed{text_of(5000), "text/html", {}, 404});
    app.get("/noise", Fixed{random_bytes(5000, 3)});
    app.get("/stream", streamed);
    TestClient client(app);

    const auto identity = [&](const std::string& target) {
        CAPTURE(target);
        const TestResponse r = client.get(target, kGzip);
        CHECK(r.header("Content-Encoding") != "gzip");
        return r;
    };
    CHECK_FALSE(identity("/small").has_header("Vary"));
    expect_gzip(client.get("/edge", kGzip), text_of(1024));
    for (const char* t : {"/png", "/mp4", "/zip", "/woff2", "/bin"}) {
        const TestResponse r = identity(t);
        CHECK(r.body == text_of(5000));
        CHECK_FALSE(r.has_header("Vary"));
    }
    expect_gzip(client.get("/svg", kGzip), text_of(5000));
    CHECK(identity("/br").header("Content-Encoding") == "br");
    CHECK(identity("/nt").body == text_of(5000));
    CHECK(identity("/206").status == 206);
    // An error page is compressed like any other body.
    const TestResponse e404 = client.get("/404", kGzip);
    CHECK(e404.status == 404);
    CHECK(gunzip(e404.body) == text_of(5000));
    // Incompressible: sent as it is (gzip would be larger), but it varies.
    const TestResponse noise = identity("/noise");
    CHECK(noise.body == random_bytes(5000, 3));
    CHECK(noise.header("Vary") == "Accept-Encoding");
    const TestResponse s = identity("/stream");
    CHECK(s.body == text_of(4000) + text_of(4000));
}

TEST_CASE("options: min_size, max_size, skip_types, level") {
    web::App app;
    app.use(web::mw::compress({.level = 1, .min_size = 10, .max_size = 3000,
                               .skip_types = {"text/csv", "application/*"}}));
    app.get("/tiny", Fixed{text_of(200)});
    app.get("/big", Fixed{text_of(3001)});
    app.get("/csv", Fixed{text_of(2000), "text/csv; charset=utf-8"});
    app.get("/json", Fixed{text_of(2000), "application/json"});
    TestClient client(app);
    expect_gzip(client.get("/tiny", kGzip), text_of(200));
    CHECK_FALSE(client.get("/big", kGzip).has_header("Content-Encoding"));
    CHECK_FALSE(client.get("/csv", kGzip).has_header("Content-Encoding"));
    CHECK_FALSE(client.get("/json", kGzip).has_header("Content-Encoding"));
    CHECK_THROWS_AS((void)web::mw::compress({.level = 10}), std::invalid_argument);
    CHECK_THROWS_AS((void)web::mw::compress({.level = 0}), std::invalid_argument);
}

TEST_CASE("header fix-ups: Vary merged, strong ETag weakened, handler Content-Length dropped") {
    const std::string body = text_of(8000);
    web::App app;
    app.use(web::mw::compress());
    app.get("/vary", Fixed{body, "text/plain", {{"Vary", "Origin"}}});
    app.get("/vary-star", Fixed{body, "text/plain", {{"Vary", "*"}}});
    app.get("/vary-has", Fixed{body, "text/plain", {{"Vary", "accept-encoding, Origin"}}});
    app.get("/strong", Fixed{body, "text/plain", {{"ETag", "\"abc\""}}});
    app.get("/weak", Fixed{body, "text/plain", {{"ETag", "W/\"abc\""}}});
    app.get("/cl", Fixed{body, "text/plain", {{"Content-Length", "8000"}}});
    TestClient client(app);

    const TestResponse v = client.get("/vary", kGzip);
    CHECK(v.header("Vary") == "Origin, Accept-Encoding");
    CHECK(gunzip(v.body) == body);
    CHECK(client.get("/vary-star", kGzip).header("Vary") == "*");
    CHECK(client.get("/vary-has", kGzip).header("Vary") == "accept-encoding, Origin");
    CHECK(client.get("/strong", kGzip).header("ETag") == "W/\"abc\"");
    CHECK(client.get("/strong").header("ETag") == "\"abc\"");
    CHECK(client.get("/weak", kGzip).header("ETag") == "W/\"abc\"");
    expect_gzip(client.get("/cl", kGzip), body);
}

TEST_CASE("HEAD gets the same encoding and length as GET") {
    const std::string body = text_of(8000);
    web::App app;
    app.use(web::mw::compress());
    app.get("/t", Fixed{body});
    TestClient client(app);
    const TestResponse get = client.get("/t", kGzip);
    const TestResponse head = client.head("/t", kGzip);
    CHECK(head.status == 200);
    CHECK(head.body.empty());
    CHECK(head.header("Content-Encoding") == "gzip");
    CHECK(head.header("Content-Length") == get.header("Content-Length"));
}

TEST_CASE("static files are compressed; a 304 or 206 carries the 200's Vary; a range of a gzipped file is the whole") {
    std::string tmpl = (fs::temp_directory_path() / "ringwork-compress-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    const fs::path dir = tmpl;
    const std::string css = text_of(30000);
    {
        std::ofstream(dir / "site.css", std::ios::binary) << css;
        std::ofstream(dir / "logo.png", std::ios::binary) << css;
        std::ofstream(dir / "tiny.css", std::ios::binary) << "a { color: red }";
    }
    {
        web::App app;
        app.use(web::mw::compress());
        app.use(web::mw::static_files(dir.string()));
        TestClient client(app);

        const TestResponse r = client.get("/site.css", kGzip);
        expect_gzip(r, css);
        CHECK(r.header("Content-Type") == "text/css; charset=utf-8");
        CHECK_FALSE(r.has_header("Accept-Ranges")); // no ranges of the gzip form
        const std::string etag(r.header("ETag"));
        CHECK(etag.starts_with("W/"));
        // 304: no body, but Vary as the 200 (RFC 9110 15.4.5: a cache keys on it).
        const TestResponse nm = client.get("/site.css", {{"Accept-Encoding", "gzip"}, {"If-None-Match", etag}});
        CHECK(nm.status == 304);
        CHECK(nm.body.empty());
        CHECK(nm.header("Vary") == "Accept-Encoding");
        CHECK(nm.header("ETag") == etag);
        // A gzip client's range is of the gzip form, which we do not cut: the whole, gzipped
        // (resuming with identity bytes spliced onto gzip ones corrupted the download).
        const std::string last_modified(r.header("Last-Modified"));
        for (const auto& extra : {std::pair<std::string, std::string>{"X-None", ""},
                                  std::pair<std::string, std::string>{"If-Range", last_modified}}) {
            std::vector<std::pair<std::string, std::string>> h = {{"Accept-Encoding", "gzip"}, {"Range", "bytes=300-"}};
            if (!extra.second.empty()) {
                h.push_back(extra);
            }
            const TestResponse whole = client.get("/site.css", h);
            CHECK(whole.status == 200);
            expect_gzip(whole, css);
            CHECK_FALSE(whole.has_header("Content-Range"));
        }
        // Without gzip the range is served, and carries the 200's Vary too (RFC 9110 15.3.7).
        const TestResponse part = client.get("/site.css", {{"Range", "bytes=0-9"}});
        CHECK(part.status == 206);
        CHECK(part.body == css.substr(0, 10));
        CHECK_FALSE(part.has_header("Content-Encoding"));
        CHECK(part.header("Vary") == "Accept-Encoding");
        // A type compress never gzips keeps its ranges for a gzip client, and no Vary on its
        // 200, 206 or 304 (its 200 has none).
        const TestResponse png = client.get("/logo.png", {{"Accept-Encoding", "gzip"}, {"Range", "bytes=0-9"}});
        CHECK(png.status == 206);
        CHECK_FALSE(png.has_header("Vary"));
        const TestResponse png_full = client.get("/logo.png", kGzip);
        CHECK_FALSE(png_full.has_header("Content-Encoding"));
        CHECK_FALSE(png_full.has_header("Vary"));
        const TestResponse png_nm =
            client.get("/logo.png", {{"Accept-Encoding", "gzip"}, {"If-None-Match", std::string(png_full.header("ETag"))}});
        CHECK(png_nm.status == 304);
        CHECK_FALSE(png_nm.has_header("Vary"));
        // Nor does a file below min_size.
        const TestResponse tiny = client.get("/tiny.css", kGzip);
        CHECK_FALSE(tiny.has_header("Vary"));
        const TestResponse tiny_nm =
            client.get("/tiny.css", {{"Accept-Encoding", "gzip"}, {"If-None-Match", std::string(tiny.header("ETag"))}});
        CHECK(tiny_nm.status == 304);
        CHECK_FALSE(tiny_nm.has_header("Vary"));
    }
    {
        // Without the compress middleware ranges work for a gzip client as before.
        web::App app;
        app.use(web::mw::static_files(dir.string()));
        TestClient client(app);
        const TestResponse part = client.get("/site.css", {{"Accept-Encoding", "gzip"}, {"Range", "bytes=0-9"}});
        CHECK(part.status == 206);
        CHECK(part.body == css.substr(0, 10));
    }
    std::error_code ec;
    fs::remove_all(dir, ec);
}

} // TEST_SUITE

TEST_SUITE("web etag middleware") {

TEST_CASE("a strong ETag from the body; If-None-Match answers 304") {
    web::App app;
    app.use(web::mw::etag());
    app.get("/a", Fixed{"alpha"});
    app.get("/b", Fixed{"beta"});
    TestClient client(app);

    const TestResponse a = client.get("/a");
    CHECK(a.status == 200);
    const std::string etag(a.header("ETag"));
    CHECK(etag.starts_with("\"5-"));
    CHECK(etag.size() == 1 + 2 + 16 + 1); // quote, "5-", 16 hex digits, quote
    CHECK(client.get("/a").header("ETag") == etag);
    CHECK(client.get("/b").header("ETag") != etag);

    const TestResponse nm = client.get("/a", {{"If-None-Match", etag}});
    CHECK(nm.status == 304);
    CHECK(nm.body.empty());
    CHECK(nm.header("ETag") == etag);
    CHECK_FALSE(nm.has_header("Content-Length"));
    CHECK(client.get("/a", {{"If-None-Match", "W/" + etag}}).status == 304);
    CHECK(client.get("/a", {{"If-None-Match", "\"x\", " + etag + ", \"y\""}}).status == 304);
    CHECK(client.get("/a", {{"If-None-Match", "*"}}).status == 304);
    CHECK(client.head("/a", {{"If-None-Match", etag}}).status == 304);
    const TestResponse other = client.get("/a", {{"If-None-Match", "\"nope\""}});
    CHECK(other.status == 200);
    CHECK(other.body == "alpha");
}

TEST_CASE("no ETag for other methods, other statuses, empty or streamed bodies") {
    web::App app;
    app.use(web::mw::etag());
    app.post("/p", Fixed{"posted"});
    app.get("/404", Fixed{"missing", "text/plain", {}, 404});
    app.get("/empty", Fixed{""});
    app.get("/stream", streamed);
    TestClient client(app);
    CHECK_FALSE(client.post("/p", "{}").has_header("ETag"));
    CHECK_FALSE(client.get("/404").has_header("ETag"));
    CHECK_FALSE(client.get("/empty").has_header("ETag"));
    CHECK_FALSE(client.get("/stream").has_header("ETag"));
    CHECK(client.get("/404", {{"If-None-Match", "*"}}).status == 404);
}

TEST_CASE("a handler's own ETag is kept and used; weak option") {
    web::App app;
    app.use(web::mw::etag());
    app.get("/own", Fixed{"body", "text/plain", {{"ETag", "\"v7\""}}});
    TestClient client(app);
    CHECK(client.get("/own").header("ETag") == "\"v7\"");
    CHECK(client.get("/own", {{"If-None-Match", "\"v7\""}}).status == 304);

    web::App weak_app;
    weak_app.use(web::mw::etag({.weak = true}));
    weak_app.get("/a", Fixed{"alpha"});
    TestClient weak_client(weak_app);
    const std::string etag(weak_client.get("/a").header("ETag"));
    CHECK(etag.starts_with("W/\"5-"));
    CHECK(weak_client.get("/a", {{"If-None-Match", etag}}).status == 304);
}

TEST_CASE("compress outside etag: the tag of the identity body, weakened when gzipped, still matches") {
    const std::string body = text_of(10000);
    web::App app;
    app.use(web::mw::compress());
    app.use(web::mw::etag());
    app.get("/t", Fixed{body});
    TestClient client(app);
    const TestResponse identity = client.get("/t");
    const std::string strong(identity.header("ETag"));
    CHECK(strong.starts_with("\""));
    const TestResponse gz = client.get("/t", kGzip);
    expect_gzip(gz, body);
    CHECK(gz.header("ETag") == "W/" + strong);
    const TestResponse nm = client.get("/t", {{"Accept-Encoding", "gzip"}, {"If-None-Match", std::string(gz.header("ETag"))}});
    CHECK(nm.status == 304);
    CHECK(nm.body.empty());
    // The 304 names the form the client holds (the weak gzip tag), and carries Vary.
    CHECK(nm.header("ETag") == "W/" + strong);
    CHECK(nm.header("Vary") == "Accept-Encoding");
    // A client holding the identity form gets the strong tag back.
    const TestResponse nm_identity = client.get("/t", {{"If-None-Match", strong}});
    CHECK(nm_identity.status == 304);
    CHECK(nm_identity.header("ETag") == strong);
    CHECK(nm_identity.header("Vary") == "Accept-Encoding"); // the 200 varies for every client
}

TEST_CASE("etag inside compress: a body compress never gzips gets a 304 without Vary") {
    web::App app;
    app.use(web::mw::compress());
    app.use(web::mw::etag());
    app.get("/small", Fixed{"short"});
    TestClient client(app);
    const TestResponse r = client.get("/small", kGzip);
    CHECK_FALSE(r.has_header("Vary"));
    const TestResponse nm = client.get("/small", {{"Accept-Encoding", "gzip"}, {"If-None-Match", std::string(r.header("ETag"))}});
    CHECK(nm.status == 304);
    CHECK_FALSE(nm.has_header("Vary"));
}

} // TEST_SUITE
