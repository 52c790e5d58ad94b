// SPDX-License-Identifier: MIT
// Integration test: ringwork-todo as a child process: the REST API, validation errors,
// middleware headers, and data that survives a restart.
#include "app_process.hpp"
#include "helpers.hpp"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace {

struct Reply {
    int status = 0;
    std::string head;
    std::string body;
};

Reply call(std::uint16_t port, const std::string& method, const std::string& target, const std::string& body = {},
           const std::string& extra = {}) {
    const int fd = test::connect_blocking(port);
    std::string request = method + " " + target + " HTTP/1.1\r\nHost: todo.test\r\nConnection: close\r\n" + extra;
    if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
        request += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    }
    request += "\r\n" + body;
    REQUIRE(test::write_all(fd, request));
    const std::string got = test::read_to_eof(fd);
    ::close(fd);
    Reply r;
    const auto end = got.find("\r\n\r\n");
    REQUIRE(end != std::string::npos);
    r.head = got.substr(0, end + 2);
    r.body = got.substr(end + 4);
    r.status = std::stoi(got.substr(9, 3));
    return r;
}

} // namespace

TEST_SUITE("integration todo") {
    TEST_CASE("ringwork-todo: CRUD, paging, validation, middleware, and a restart loses nothing") {
        char dir_template[] = "/tmp/ringwork-todo-XXXXXX";
        REQUIRE(::mkdtemp(dir_template) != nullptr);
        const std::string dir = dir_template;
        const std::string data = dir + "/todos.json";
        {
            test::AppProcess app(test::app_path("RINGWORK_TODO"), "ringwork-todo", {"--threads", "2", "--data", data});
            for (int i = 1; i <= 5; ++i) {
                const Reply r = call(app.port(), "POST", "/todos", R"({"title":"task )" + std::to_string(i) + R"("})");
                REQUIRE(r.status == 201);
                CHECK(r.head.find("\r\nLocation: /todos/" + std::to_string(i) + "\r\n") != std::string::npos);
                CHECK(nlohmann::json::parse(r.body)["id"] == i);
            }
            Reply r = call(app.port(), "GET", "/todos?page=2&per_page=2");
            REQUIRE(r.status == 200);
            auto page = nlohmann::json::parse(r.body);
            CHECK(page["total"] == 5);
            REQUIRE(page["items"].size() == 2);
            CHECK(page["items"][0]["title"] == "task 3");
            CHECK(r.head.find("\r\nX-Request-ID: ") != std::string::npos);

            r = call(app.port(), "POST", "/todos", R"({"title":"","done":"yes","color":1})");
            CHECK(r.status == 422);
            const auto errors = nlohmann::json::parse(r.body)["fields"];
            CHECK(errors["title"] == "must not be blank");
            CHECK(errors["done"] == "must be true or false");
            CHECK(errors.contains("color"));
            CHECK(call(app.port(), "POST", "/todos", "{not json").status == 400);
            CHECK(call(app.port(), "GET", "/todos?per_page=0").status == 400);

            r = call(app.port(), "PATCH", "/todos/2", R"({"done":true})");
            CHECK(r.status == 200);
            CHECK(nlohmann::json::parse(r.body)["done"] == true);
            r = call(app.port(), "PUT", "/todos/3", R"({"title":"renamed"})");
            CHECK(r.status == 200);
            CHECK(nlohmann::json::parse(r.body)["title"] == "renamed");
            CHECK(call(app.port(), "PUT", "/todos/3", R"({"done":false})").status == 422); // PUT needs a title
            // PUT replaces the whole todo: a left-out `done` is false again; PATCH keeps it.
            r = call(app.port(), "PATCH", "/todos/4", R"({"done":true})");
            CHECK(nlohmann::json::parse(r.body)["done"] == true);
            r = call(app.port(), "PATCH", "/todos/4", R"({"title":"patched"})");
            CHECK(nlohmann::json::parse(r.body)["done"] == true);
            r = call(app.port(), "PUT", "/todos/4", R"({"title":"replaced"})");
            CHECK(r.status == 200);
            CHECK(nlohmann::json::parse(r.body)["title"] == "replaced");
            CHECK(nlohmann::json::parse(r.body)["done"] == false);
            CHECK(nlohmann::json::parse(call(app.port(), "GET", "/todos/4").body)["done"] == false);
            r = call(app.port(), "PUT", "/todos/4", R"({"title":"replaced","done":true})");
            CHECK(nlohmann::json::parse(r.body)["done"] == true);
            r = call(app.port(), "PUT", "/todos/4", R"({"title":"replaced"})");
            CHECK(nlohmann::json::parse(r.body)["done"] == false);
            CHECK(call(app.port(), "DELETE", "/todos/1").status == 204);
            CHECK(call(app.port(), "DELETE", "/todos/1").status == 404);
            CHECK(call(app.port(), "GET", "/todos/1").status == 404);
            CHECK(call(app.port(), "GET", "/todos/abc").status == 404);
            // The router's 404 and 405 are JSON like the handlers' errors; the 405 keeps Allow.
            struct Miss {
                std::string method;
                std::string target;
                int status;
            };
            for (const Miss& miss : {Miss{"GET", "/nothing/here", 404}, Miss{"GET", "/todos/1/extra", 404},
                                     Miss{"DELETE", "/todos", 405}, Miss{"POST", "/todos/2", 405}}) {
                CAPTURE(miss.method);
                CAPTURE(miss.target);
                r = call(app.port(), miss.method, miss.target, miss.method == "POST" ? "{}" : "");
                CHECK(r.status == miss.status);
                CHECK(r.head.find("\r\nContent-Type: application/json") != std::string::npos);
                const auto error = nlohmann::json::parse(r.body);
                CHECK(error["status"] == miss.status);
                CHECK(error["error"].is_string());
            }
            CHECK(call(app.port(), "DELETE", "/todos").head.find("\r\nAllow: GET, HEAD, POST, OPTIONS\r\n") !=
                  std::string::npos);
            CHECK(nlohmann::json::parse(call(app.port(), "GET", "/todos/9999").body)["status"] == 404);

            // CORS preflight answered by the middleware.
            r = call(app.port(), "OPTIONS", "/todos", {},
                     "Origin: https://app.example\r\nAccess-Control-Request-Method: POST\r\n");
            CHECK(r.status == 204);
            CHECK(r.head.find("\r\nAccess-Control-Allow-Origin: ") != std::string::npos);
            CHECK(app.stop() == 0);
        }
        {
            // The same data after a restart.
            test::AppProcess app(test::app_path("RINGWORK_TODO"), "ringwork-todo", {"--data", data});
            const Reply r = call(app.port(), "GET", "/todos?per_page=100");
            REQUIRE(r.status == 200);
            const auto all = nlohmann::json::parse(r.body);
            CHECK(all["total"] == 4);
            CHECK(all["items"][0]["id"] == 2);
            CHECK(all["items"][0]["done"] == true);
            CHECK(all["items"][1]["title"] == "renamed");
            CHECK(all["items"][2]["title"] == "replaced");
            CHECK(all["items"][2]["done"] == false);
            const Reply created = call(app.port(), "POST", "/todos", R"({"title":"after restart"})");
            CHECK(nlohmann::json::parse(created.body)["id"] == 6); // ids never reused
            CHECK(app.stop() == 0);
        }
        std::filesystem::remove_all(dir);
    }
}
