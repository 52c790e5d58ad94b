// SPDX-License-Identifier: MIT
// Integration test: ringwork-static serving a temporary folder, as a child process over TCP.
#include "app_process.hpp"
#include "helpers.hpp"

#include <doctest/doctest.h>

#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace {

struct Reply {
    int status = 0;
    std::string head;
    std::string body;
    [[nodiscard]] std::string header(const std::string& name) const {
        const auto at = head.find("\r\n" + name + ": ");
        if (at == std::string::npos) {
            return {};
        }
        const auto start = at + name.size() + 4;
        return head.substr(start, head.find("\r\n", start) - start);
    }
};

Reply get(std::uint16_t port, const std::string& target, const std::string& extra = {}) {
    const int fd = test::connect_blocking(port);
    REQUIRE(test::write_all(fd, "GET " + target + " HTTP/1.1\r\nHost: s\r\nConnection: close\r\n" + extra + "\r\n"));
    const std::string got = test::read_to_eof(fd);
    ::close(fd);
    const auto end = got.find("\r\n\r\n");
    REQUIRE(end != std::string::npos);
    return Reply{std::stoi(got.substr(9, 3)), got.substr(0, end + 2), got.substr(end + 4)};
}

std::string gunzip(const std::string& in) {
    z_stream z{};
    REQUIRE(inflateInit2(&z, 15 + 16) == Z_OK);
    std::string out(1 << 20, '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data())); // NOLINT: zlib API
    z.avail_in = static_cast<uInt>(in.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data()); // NOLINT: zlib API
    z.avail_out = static_cast<uInt>(out.size());
    const int rc = inflate(&z, Z_FINISH);
    inflateEnd(&z);
    REQUIRE(rc == Z_STREAM_END);
    out.resize(z.total_out);
    return out;
}

} // namespace

TEST_SUITE("integration static") {
    TEST_CASE("ringwork-static: index, gzip, ranges, conditional GET, listing, no traversal") {
        char dir_template[] = "/tmp/ringwork-static-XXXXXX";
        REQUIRE(::mkdtemp(dir_template) != nullptr);
        const std::filesystem::path root = dir_template;
        std::filesystem::create_directories(root / "docs");
        std::ofstream(root / "index.html") << "<h1>home</h1>\n";
        std::string text;
        for (int i = 0; i < 500; ++i) {
            text += "line " + std::to_string(i) + " of a compressible text file\n";
        }
        std::ofstream(root / "notes.txt") << text;
        std::ofstream(root / "docs" / "a b.txt") << "spaced\n";
        test::AppProcess app(test::app_path("RINGWORK_STATIC"), "ringwork-static", {"--root", root.string(), "--listing"});

        Reply r = get(app.port(), "/");
        CHECK(r.status == 200);
        CHECK(r.body == "<h1>home</h1>\n");
        CHECK(r.header("Content-Type") == "text/html; charset=utf-8");

        r = get(app.port(), "/notes.txt", "Accept-Encoding: gzip\r\n");
        CHECK(r.status == 200);
        CHECK(r.header("Content-Encoding") == "gzip");
        CHECK(r.body.size() < text.size() / 2);
        CHECK(gunzip(r.body) == text);
        CHECK(get(app.port(), "/notes.txt").body == text); // no Accept-Encoding: identity

        r = get(app.port(), "/notes.txt", "Range: bytes=5-9\r\n");
        CHECK(r.status == 206);
        CHECK(r.body == text.substr(5, 5));
        CHECK(r.header("Content-Range") == "bytes 5-9/" + std::to_string(text.size()));

        const std::string etag = get(app.port(), "/notes.txt").header("ETag");
        REQUIRE_FALSE(etag.empty());
        r = get(app.port(), "/notes.txt", "If-None-Match: " + etag + "\r\n");
        CHECK(r.status == 304);
        CHECK(r.body.empty());

        r = get(app.port(), "/docs/");
        CHECK(r.status == 200);
        CHECK(r.body.find("a%20b.txt") != std::string::npos);
        CHECK(get(app.port(), "/docs/a%20b.txt").body == "spaced\n");
        CHECK(get(app.port(), "/docs").status == 301);

        CHECK(get(app.port(), "/../../etc/passwd").status == 403);
        CHECK(get(app.port(), "/docs/%2e%2e/%2e%2e/etc/passwd").status == 403);
        CHECK(get(app.port(), "/missing.txt").status == 404);
        CHECK(app.stop() == 0);
        std::filesystem::remove_all(root);
    }
}
