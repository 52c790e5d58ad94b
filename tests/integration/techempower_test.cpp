// SPDX-License-Identifier: MIT
// Integration test: ringwork-techempower per the TechEmpower rules, as a child process over TCP.
#include "app_process.hpp"
#include "helpers.hpp"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace {

struct Reply {
    std::string head;
    std::string body;
};

/// Reads `count` Content-Length framed responses from `fd`.
std::vector<Reply> read_replies(int fd, int count) {
    std::vector<Reply> out;
    std::string buf;
    while (static_cast<int>(out.size()) < count) {
        const auto end = buf.find("\r\n\r\n");
        if (end != std::string::npos) {
            const std::string head = buf.substr(0, end + 2);
            const auto cl = head.find("Content-Length: ");
            REQUIRE(cl != std::string::npos);
            const std::size_t length = std::stoul(head.substr(cl + 16));
            if (buf.size() >= end + 4 + length) {
                out.push_back(Reply{head, buf.substr(end + 4, length)});
                buf.erase(0, end + 4 + length);
                continue;
            }
        }
        char chunk[16384];
        const ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
        REQUIRE_MESSAGE(n > 0, "connection ended after " << out.size() << " responses");
        buf.append(chunk, static_cast<std::size_t>(n));
    }
    return out;
}

} // namespace

TEST_SUITE("integration techempower") {
    TEST_CASE("plaintext and json follow the TechEmpower rules, pipelined or not") {
        test::AppProcess app(test::app_path("RINGWORK_TECHEMPOWER"), "ringwork-techempower", {"--threads", "2"});
        const int fd = test::connect_blocking(app.port());
        REQUIRE(test::write_all(fd, "GET /plaintext HTTP/1.1\r\nHost: tfb\r\n\r\nGET /json HTTP/1.1\r\nHost: tfb\r\n\r\n"));
        auto replies = read_replies(fd, 2);
        const Reply& plain = replies[0];
        CHECK(plain.head.starts_with("HTTP/1.1 200 OK\r\n"));
        CHECK(plain.head.find("\r\nServer: ringwork\r\n") != std::string::npos);
        CHECK(plain.head.find("\r\nDate: ") != std::string::npos);
        CHECK(plain.head.find("\r\nContent-Type: text/plain\r\n") != std::string::npos);
        CHECK(plain.body == "Hello, World!");
        const Reply& json = replies[1];
        CHECK(json.head.find("\r\nContent-Type: application/json\r\n") != std::string::npos);
        CHECK(json.head.find("\r\nServer: ringwork\r\n") != std::string::npos);
        CHECK(json.head.find("\r\nDate: ") != std::string::npos);
        CHECK(json.body == R"({"message":"Hello, World!"})");
        CHECK(nlohmann::json::parse(json.body)["message"] == "Hello, World!");

        // 16 pipelined requests in one write: 16 answers, in order, on the same connection.
        std::string batch;
        for (int i = 0; i < 16; ++i) {
            batch += i % 2 == 0 ? "GET /plaintext HTTP/1.1\r\nHost: tfb\r\n\r\n" : "GET /json HTTP/1.1\r\nHost: tfb\r\n\r\n";
        }
        REQUIRE(test::write_all(fd, batch));
        replies = read_replies(fd, 16);
        for (int i = 0; i < 16; ++i) {
            CAPTURE(i);
            CHECK(replies[static_cast<std::size_t>(i)].body ==
                  (i % 2 == 0 ? std::string("Hello, World!") : std::string(R"({"message":"Hello, World!"})")));
        }
        REQUIRE(test::write_all(fd, "GET /other HTTP/1.1\r\nHost: tfb\r\n\r\n"));
        CHECK(read_replies(fd, 1)[0].head.starts_with("HTTP/1.1 404 "));
        ::close(fd);
        CHECK(app.stop() == 0);
    }
}
