// SPDX-License-Identifier: MIT
// Request bodies in the web layer: multipart forms through the full stack (TestClient), and
// streamed bodies (ServerOptions::stream_request_body) read with Context::read_body() and
// Context::read_multipart(), file parts written to disk as they arrive.
#include <ringwork/web/app.hpp>
#include <ringwork/web/form.hpp>
#include <ringwork/web/testing.hpp>

#include "helpers.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <doctest/doctest.h>
#include <filesystem>
#include <string>
#include <sys/stat.h>

using ringwork::runtime::Task;
using ringwork::web::App;
using ringwork::web::AppOptions;
using ringwork::web::Context;
using ringwork::web::testing::TestClient;
using ringwork::web::testing::TestRequest;

namespace {

std::string pattern(std::size_t n, unsigned seed) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) {
        s[i] = static_cast<char>((i * 131 + seed + i / 977) & 0xff); // every byte value, CR/LF included
    }
    return s;
}

std::string multipart_body(std::string_view boundary, std::string_view field, std::string_view file) {
    std::string b;
    b += fmt::format("--{}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n{}\r\n", boundary, field);
    b += fmt::format("--{}\r\nContent-Disposition: form-data; name=\"upload\"; filename=\"../../etc/data.bin\"\r\n"
                     "Content-Type: application/octet-stream\r\n\r\n",
                     boundary);
    b += file;
    b += fmt::format("\r\n--{}--\r\n", boundary);
    return b;
}

TestRequest upload_request(const std::string& body, std::string_view boundary, bool chunked) {
    TestRequest r;
    r.method = "POST";
    r.target = "/upload";
    r.headers.emplace_back("Content-Type", fmt::format("multipart/form-data; boundary={}", boundary));
    if (chunked) {
        r.headers.emplace_back("Transfer-Encoding", "chunked");
        std::string wire;
        for (std::size_t off = 0; off < body.size(); off += 4000) {
            const std::string_view piece = std::string_view(body).substr(off, 4000);
            wire += fmt::format("{:x}\r\n", piece.size());
            wire += piece;
            wire += "\r\n";
        }
        wire += "0\r\n\r\n";
        r.body = std::move(wire);
    } else {
        r.body = body;
    }
    return r;
}

/// Answers what it saw of the form; remembers the temporary file's path.
struct UploadHandler {
    std::string* temp_path;
    Task<> operator()(Context& c) const {
        const bool streamed = c.body_streamed();
        const auto& form = co_await c.read_multipart();
        const ringwork::web::FormFile* f = form.file("upload");
        REQUIRE(f != nullptr);
        *temp_path = f->temp_path;
        const std::string content = f->read();
        struct stat st {};
        const bool on_disk = !f->in_memory() && ::stat(f->temp_path.c_str(), &st) == 0;
        c.json({{"streamed", streamed},
                {"title", std::string(form.value("title").value_or("?"))},
                {"filename", f->filename},
                {"size", f->size},
                {"on_disk", on_disk},
                {"disk_size", on_disk ? static_cast<std::size_t>(st.st_size) : 0},
                {"content_hash", std::hash<std::string>{}(content)}});
    }
};

AppOptions streaming_options() {
    AppOptions o;
    o.server.stream_request_body = true;
    o.server.max_request_body_size = 4096; // far below the upload: only streaming lets it in
    o.multipart_memory_limit = 8192;
    o.multipart_temp_dir = std::filesystem::temp_directory_path().string();
    return o;
}

} // namespace

TEST_SUITE("web uploads") {
    TEST_CASE("form_value() reads an urlencoded body whatever the OWS and case around its media type") {
        App app;
        app.post("/form", [](Context& c) { c.text(std::string(c.form_value("name").value_or("(none)"))); });
        app.post("/multi", [](Context& c) { c.text(std::string(c.multipart().value("title").value_or("(none)"))); });
        TestClient client(app);
        for (const std::string type :
             {"application/x-www-form-urlencoded", "application/x-www-form-urlencoded;charset=utf-8",
              "application/x-www-form-urlencoded ;charset=utf-8",
              "Application/X-WWW-Form-Urlencoded\t; charset=utf-8"}) {
            CAPTURE(type);
            const auto r = client.post("/form", "name=J%C3%B6+Ann&x=1", type);
            CHECK(r.status == 200);
            CHECK(r.body == "J\xC3\xB6 Ann");
        }
        for (const std::string type :
             {"text/plain", "application/x-www-form-urlencoded-x", "multipart/form-data; boundary=b"}) {
            CAPTURE(type);
            CHECK(client.post("/form", "name=x", type).body == "(none)");
        }
        // The multipart path trims the media type the same way.
        const std::string body = multipart_body("b0und", "small", "file");
        for (const std::string type :
             {"multipart/form-data ; boundary=b0und", "Multipart/Form-Data\t;boundary=b0und"}) {
            CAPTURE(type);
            const auto r = client.post("/multi", body, type);
            CHECK(r.status == 200);
            CHECK(r.body == "small");
        }
    }

    TEST_CASE("a gathered multipart body: multipart() and read_multipart() agree") {
        std::string temp;
        App app;
        app.post("/upload", UploadHandler{&temp});
        app.post("/sync", [](Context& c) { c.text(std::string(c.multipart().value("title").value_or("?"))); });
        TestClient client(app);
        const std::string file = pattern(3000, 1);
        const std::string body = multipart_body("b0und", "small", file);
        auto r = client.request(upload_request(body, "b0und", false));
        REQUIRE(r.status == 200);
        const auto j = r.json();
        CHECK(j["streamed"] == false);
        CHECK(j["title"] == "small");
        CHECK(j["filename"] == "data.bin");
        CHECK(j["size"] == file.size());
        CHECK(j["on_disk"] == false);
        CHECK(j["content_hash"] == std::hash<std::string>{}(file));
        TestRequest sync = upload_request(body, "b0und", false);
        sync.target = "/sync";
        CHECK(client.request(sync).body == "small");
    }

    TEST_CASE("a streamed multipart upload far over max_request_body_size is parsed as it arrives, "
              "the file written to disk piece by piece and removed after the request") {
        for (const bool chunked : {false, true}) {
            CAPTURE(chunked);
            std::string temp;
            App app(streaming_options());
            app.post("/upload", UploadHandler{&temp});
            TestClient client(app);
            const std::string file = pattern(600 * 1024, chunked ? 7 : 3);
            const std::string body = multipart_body("XyZzY-42", "big one", file);
            const auto r = client.request(upload_request(body, "XyZzY-42", chunked));
            REQUIRE(r.status == 200);
            const auto j = r.json();
            CHECK(j["streamed"] == true);
            CHECK(j["title"] == "big one");
            CHECK(j["size"] == file.size());
            CHECK(j["on_disk"] == true);
            CHECK(j["disk_size"] == file.size());
            CHECK(j["content_hash"] == std::hash<std::string>{}(file));
            CHECK_FALSE(r.closed); // read to its end: the connection stays
            REQUIRE_FALSE(temp.empty());
            CHECK(test::eventually([&] { return !std::filesystem::exists(temp); }));
            CHECK(client.server().stats().bodies_streamed == 1);
        }
    }

    TEST_CASE("a streamed multipart body over multipart_max_body_size is 413; a truncated one is 400") {
        AppOptions o = streaming_options();
        o.multipart_max_body_size = 100 * 1024;
        std::string temp;
        App app(o);
        app.post("/upload", UploadHandler{&temp});
        TestClient client(app);
        const std::string big = multipart_body("bb", "x", pattern(300 * 1024, 5));
        auto r = client.request(upload_request(big, "bb", false));
        CHECK(r.status == 413);
        CHECK(r.closed); // the rest of the body was not read
        std::string cut = multipart_body("bb", "x", pattern(10 * 1024, 5));
        cut.resize(cut.size() - 8); // no closing delimiter
        r = client.request(upload_request(cut, "bb", true));
        CHECK(r.status == 400);
        CHECK(r.json()["error"] == "multipart: the body ends before the closing boundary delimiter");
    }

    TEST_CASE("read_body() yields a streamed chunked body; multipart() on it is a logic error") {
        App app(streaming_options());
        app.post("/echo", [](Context& c) -> Task<> {
            std::string all;
            for (;;) {
                auto next = c.read_body();
                const std::string_view piece = co_await next;
                if (piece.empty()) {
                    break;
                }
                all.append(piece);
            }
            c.text(fmt::format("{} {}", all.size(), std::hash<std::string>{}(all)));
        });
        app.post("/wrong", [](Context& c) { (void)c.multipart(); });
        TestClient client(app);
        const std::string body = pattern(50000, 9);
        TestRequest req = upload_request(body, "unused", true);
        req.target = "/echo";
        auto r = client.request(req);
        CHECK(r.status == 200);
        CHECK(r.body == fmt::format("{} {}", body.size(), std::hash<std::string>{}(body)));
        req.target = "/wrong";
        r = client.request(req);
        CHECK(r.status == 500);
    }
}
