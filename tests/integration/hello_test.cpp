// SPDX-License-Identifier: MIT
// Integration test: ringwork-hello (the quick-start app) as a child process over raw TCP.
#include "app_process.hpp"
#include "helpers.hpp"

#include <doctest/doctest.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <string>
#include <sys/wait.h>

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

/// Output (stdout and stderr) and exit status of a shell command.
std::pair<std::string, int> run_shell(const std::string& command) {
    std::string out;
    FILE* p = ::popen((command + " 2>&1").c_str(), "r");
    REQUIRE(p != nullptr);
    std::array<char, 4096> buf{};
    std::size_t n = 0;
    while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) {
        out.append(buf.data(), n);
    }
    const int status = ::pclose(p);
    return {out, WIFEXITED(status) ? WEXITSTATUS(status) : -1};
}

} // namespace

TEST_SUITE("integration hello") {
    TEST_CASE("the sample apps' flags take --flag value and --flag=value; errors name the flag (exit 2)") {
        // --threads=2 is parsed, or the app exits 2 with "unknown option" before listening.
        test::AppProcess app(test::app_path("RINGWORK_HELLO"), "ringwork-hello", {"--threads=2", "--host=127.0.0.1"});
        CHECK(body_of(fetch(app.port(), "/")) == "Hello, World!\n");
        CHECK(app.stop() == 0);
        const std::string exe = test::app_path("RINGWORK_HELLO");
        for (const auto& bad : std::initializer_list<std::pair<std::string_view, std::string_view>>{
                 {"--threads=x", "--threads expects a number"},
                 {"--port=", "--port expects a number"},
                 {"--share-port=1", "--share-port takes no value"},
                 {"--bogus=1", "unknown option --bogus"},
                 {"--port", "--port needs a value"}}) {
            CAPTURE(bad.first);
            const auto [out, rc] = run_shell("timeout 10 '" + exe + "' " + std::string(bad.first));
            CHECK(rc == 2);
            CHECK(out.find(bad.second) != std::string::npos);
        }
    }


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
