// SPDX-License-Identifier: MIT
// Integration test: ringwork-hello (the quick-start app) as a child process over raw TCP.
#include "app_process.hpp"
#include "helpers.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <string>

namespace {

/// One request on a fresh connection; returns the whole response (the request asks to close).
std::string fetch(std::uint16_t port, const std::string& path) {
    const int fd = test::connect_blocking(port);
    REQUIRE(test::write_all(fd, "GET " + path + " HTTP/1.1\r\nHost: hello.test\r\nConnection: close\r\n\r\n"));
    std::string got = test::read_to_eof(fd);
    ::close(fd);
    return got;
}

std::string body_of(const std::string& response) {
    const auto end = response.find("\r\n\r\n");
    return end == std::string::npos ? std::string{} : response.substr(end + 4);
}

} // namespace

TEST_SUITE("integration hello") {
    TEST_CASE("ringwork-hello answers its routes and stops gracefully on SIGTERM") {
        test::AppProcess app(test::app_path("RINGWORK_HELLO"), "ringwork-hello");
        const std::string root = fetch(app.port(), "/");
        CHECK(root.starts_with("HTTP/1.1 200 OK\r\n"));
        CHECK(body_of(root) == "Hello, World!\n");
        CHECK(body_of(fetch(app.port(), "/hello/ringwork")) == "Hello, ringwork!\n");
        const std::string json = fetch(app.port(), "/json");
        CHECK(json.find("Content-Type: application/json") != std::string::npos);
        CHECK(body_of(json) == R"({"message":"Hello, World!"})");
        CHECK(body_of(fetch(app.port(), "/users/7")) == R"({"id":"7","name":"user 7"})");
        CHECK(fetch(app.port(), "/json/").starts_with("HTTP/1.1 301 Moved Permanently\r\n"));
        // The timer is awaited, not slept on: the response comes after at least the delay.
        const auto start = std::chrono::steady_clock::now();
        CHECK(body_of(fetch(app.port(), "/delay?ms=50")) == "waited 50 ms\n");
        CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(50));
        CHECK(fetch(app.port(), "/nope").starts_with("HTTP/1.1 404 Not Found\r\n"));
        CHECK(app.stop() == 0);
    }
}
