// SPDX-License-Identifier: MIT
// Unit tests for web/form.hpp: Cookie header parsing, Set-Cookie formatting, urlencoded bodies,
// multipart/form-data framing and limits, temporary files, and split-invariant incremental parsing.
#include <ringwork/http/buffer.hpp>
#include <ringwork/web/error.hpp>
#include <ringwork/web/form.hpp>

#include <fmt/format.h>

#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <doctest/doctest.h>
#include <filesystem>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>
#include <utility>
#include <vector>

namespace web = ringwork::web;
namespace http = ringwork::http;
using namespace std::string_view_literals;
using web::MultipartError;

namespace {

// --- helpers ---------------------------------------------------------------------------------

/// The status and message of the HttpError thrown by `f`; status 0 when nothing was thrown.
template <class F>
std::pair<int, std::string> http_error_of(F&& f) {
    try {
        f();
    } catch (const web::HttpError& e) {
        return {e.status(), e.what()};
    }
    return {0, ""};
}

/// The std::invalid_argument message thrown by `f`; empty when nothing was thrown.
template <class F>
std::string invalid_argument_of(F&& f) {
    try {
        f();
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "";
}

constexpr std::string_view kType = "multipart/form-data; boundary=XyZ";

/// One part with a Content-Disposition for `name` (and `filename` when given).
std::string part(std::string_view name, std::string_view content,
                 std::string_view extra_params = "", std::string_view extra_headers = "") {
    return fmt::format("--XyZ\r\nContent-Disposition: form-data; name=\"{}\"{}\r\n{}\r\n{}\r\n",
                       name, extra_params, extra_headers, content);
}

std::string close() {
    return "--XyZ--\r\n";
}

/// A fresh directory under /tmp, removed (with what is left inside) by the destructor.
class TempDir {
public:
    TempDir() {
        std::string tmpl = "/tmp/ringwork-form-test-XXXXXX";
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path_ = tmpl;
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    TempDir(TempDir&&) = delete;
    TempDir& operator=(TempDir&&) = delete;
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    [[nodiscard]] const std::string& path() const noexcept { return path_; }
    [[nodiscard]] std::size_t entries() const {
        std::size_t n = 0;
        for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(path_)) {
            ++n;
        }
        return n;
    }

private:
    std::string path_;
};

/// Records parser events as text; consecutive data pieces are merged so that every split of the
/// input must produce exactly the same record.
struct Recorder final : web::MultipartHandler {
    std::vector<std::string> events;
    bool empty_piece = false;

    void on_part_begin(const web::PartHeaders& h) override {
        events.push_back(fmt::format("begin name=[{}] filename=[{}] has_filename={} type=[{}]",
                                     h.name, h.filename, h.has_filename, h.content_type));
    }
    void on_part_data(std::string_view bytes) override {
        empty_piece = empty_piece || bytes.empty();
        if (events.empty() || !events.back().starts_with("data:")) {
            events.emplace_back("data:");
        }
        events.back().append(bytes);
    }
    void on_part_end() override { events.emplace_back("end"); }
};

struct Outcome {
    std::vector<std::string> events;
    MultipartError error = MultipartError::none;
    bool done = false;
    bool empty_piece = false;
    bool operator==(const Outcome&) const = default;
};

/// Parses `body` fed in the pieces given by `cuts` (ascending offsets).
Outcome parse_split(std::string_view body, const std::vector<std::size_t>& cuts,
                    const web::MultipartLimits& limits = {}) {
    Recorder rec;
    web::MultipartParser parser("XyZ", rec, limits);
    std::size_t from = 0;
    for (const std::size_t cut : cuts) {
        (void)parser.feed(body.substr(from, cut - from));
        from = cut;
    }
    (void)parser.feed(body.substr(from));
    Outcome out;
    out.error = parser.finish();
    out.done = parser.done();
    out.events = std::move(rec.events);
    out.empty_piece = rec.empty_piece;
    return out;
}

Outcome parse_whole(std::string_view body, const web::MultipartLimits& limits = {}) {
    return parse_split(body, {}, limits);
}

std::string file_content(const std::string& path) {
    const web::FormFile f{
        .field = "", .filename = "", .content_type = "", .size = 0, .data = "", .temp_path = path};
    return f.read();
}

bool exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

} // namespace

// detail::trim_ows (also the web layer's trim of header values): OWS is SP and HTAB only.
static_assert(ringwork::web::detail::trim_ows(std::string_view(" \t gzip;q=1 \t")) == std::string_view("gzip;q=1"));
static_assert(ringwork::web::detail::trim_ows(std::string_view("\r\nx\n")) == std::string_view("\r\nx\n")); // CR/LF are not OWS
static_assert(ringwork::web::detail::trim_ows(std::string_view(" \t ")).empty());

// =============================================================================================
TEST_SUITE("cookies") {

    TEST_CASE("find_cookie finds each cookie of a simple header") {
        constexpr std::string_view h = "a=1; b=2; session=abc";
        CHECK(web::find_cookie(h, "a") == "1"sv);
        CHECK(web::find_cookie(h, "b") == "2"sv);
        CHECK(web::find_cookie(h, "session") == "abc"sv);
        CHECK_FALSE(web::find_cookie(h, "c").has_value());
        CHECK_FALSE(web::find_cookie(h, "sess").has_value());
        CHECK_FALSE(web::find_cookie("", "a").has_value());
    }

    TEST_CASE("find_cookie tolerates spaces, empty pairs, '=' in values and quotes") {
        constexpr std::string_view h =
            " ;; a = 1 ;\tb=x=y==;c=\"quoted\"; d= ;flag; =nameless; e=\"; f=\"\"";
        CHECK(web::find_cookie(h, "a") == "1"sv);
        CHECK(web::find_cookie(h, "b") == "x=y=="sv);
        CHECK(web::find_cookie(h, "c") == "quoted"sv);
        const auto d = web::find_cookie(h, "d");
        REQUIRE(d.has_value());
        CHECK(d->empty());
        CHECK_FALSE(web::find_cookie(h, "flag").has_value()); // a nameless cookie, RFC 6265bis
        CHECK_FALSE(web::find_cookie(h, "").has_value());
        CHECK(web::find_cookie(h, "e") == "\""sv); // a lone quote is not a quoted value
        CHECK(web::find_cookie(h, "f") == ""sv);
    }

    TEST_CASE("find_cookie: names are case-sensitive and the first occurrence wins") {
        CHECK_FALSE(web::find_cookie("A=1", "a").has_value());
        CHECK(web::find_cookie("a=first; a=second", "a") == "first"sv);
    }

    TEST_CASE("for_each_cookie visits every named pair in order, views into the header") {
        const std::string h = "x=1;  y = 2 ;;z=\"3\"; novalue; =v";
        std::vector<std::pair<std::string_view, std::string_view>> seen;
        web::for_each_cookie(
            h, [&](std::string_view n, std::string_view v) { seen.emplace_back(n, v); });
        REQUIRE(seen.size() == 3);
        CHECK(seen[0] == std::pair{"x"sv, "1"sv});
        CHECK(seen[1] == std::pair{"y"sv, "2"sv});
        CHECK(seen[2] == std::pair{"z"sv, "3"sv});
        for (const auto& [n, v] : seen) {
            CHECK(n.data() >= h.data());
            CHECK(v.data() + v.size() <= h.data() + h.size());
        }
    }

    TEST_CASE("format_set_cookie writes name=value and each attribute") {
        http::Arena arena;
        CHECK(web::format_set_cookie(arena, {.name = "id", .value = "a3fWa"}) == "id=a3fWa");
        CHECK(web::format_set_cookie(arena, {.name = "empty", .value = ""}) == "empty=");
        const web::Cookie full{.name = "sid",
                               .value = "31d4d96e407aad42",
                               .path = "/app",
                               .domain = "example.com",
                               .max_age = std::chrono::seconds(3600),
                               .secure = true,
                               .http_only = true,
                               .same_site = web::SameSite::strict};
        CHECK(
            web::format_set_cookie(arena, full) ==
            "sid=31d4d96e407aad42; Path=/app; Domain=example.com; Max-Age=3600; Secure; HttpOnly; "
            "SameSite=Strict");
        CHECK(web::format_set_cookie(
                  arena, {.name = "l", .value = "1", .same_site = web::SameSite::lax}) ==
              "l=1; SameSite=Lax");
        CHECK(web::format_set_cookie(arena, {.name = "q", .value = "\"quoted\""}) ==
              "q=\"quoted\"");
    }

    TEST_CASE("format_set_cookie writes Expires as an IMF-fixdate") {
        http::Arena arena;
        const auto t = std::chrono::system_clock::time_point(std::chrono::seconds(784111777));
        CHECK(web::format_set_cookie(arena, {.name = "a", .value = "b", .expires = t}) ==
              "a=b; Expires=Sun, 06 Nov 1994 08:49:37 GMT");
        const auto epoch = std::chrono::system_clock::time_point{};
        CHECK(web::format_set_cookie(arena, {.name = "a", .value = "", .expires = epoch}) ==
              "a=; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
        // Sub-second parts are dropped, not rounded.
        const auto frac = t + std::chrono::milliseconds(999);
        CHECK(web::format_set_cookie(arena, {.name = "a", .value = "b", .expires = frac})
                  .ends_with("08:49:37 GMT"));
    }

    TEST_CASE("format_set_cookie: Max-Age zero or negative deletes now") {
        http::Arena arena;
        CHECK(web::format_set_cookie(
                  arena, {.name = "a", .value = "", .max_age = std::chrono::seconds(0)}) ==
              "a=; Max-Age=0");
        CHECK(web::format_set_cookie(
                  arena, {.name = "a", .value = "", .max_age = std::chrono::seconds(-5)}) ==
              "a=; Max-Age=0");
        CHECK(web::format_set_cookie(
                  arena, {.name = "a", .value = "", .max_age = std::chrono::seconds(1)}) ==
              "a=; Max-Age=1");
    }

    TEST_CASE("format_set_cookie: SameSite=None and Partitioned force Secure") {
        http::Arena arena;
        CHECK(web::format_set_cookie(
                  arena, {.name = "a", .value = "1", .same_site = web::SameSite::none}) ==
              "a=1; Secure; SameSite=None");
        CHECK(web::format_set_cookie(arena, {.name = "a", .value = "1", .partitioned = true}) ==
              "a=1; Secure; Partitioned");
        CHECK(web::format_set_cookie(arena, {.name = "a",
                                             .value = "1",
                                             .secure = true,
                                             .partitioned = true,
                                             .same_site = web::SameSite::none}) ==
              "a=1; Secure; SameSite=None; Partitioned");
    }

    TEST_CASE("format_set_cookie rejects names that are not tokens") {
        http::Arena arena;
        for (const std::string_view bad : {""sv, "a b"sv, "a=b"sv, "a;b"sv, "a,b"sv, "\"a\""sv,
                                           "caf\xc3\xa9"sv, "a\tb"sv, "a(b)"sv}) {
            CAPTURE(bad);
            const std::string msg =
                invalid_argument_of([&] { (void)web::format_set_cookie(arena, {.name = bad}); });
            CHECK(msg.find("name") != std::string::npos);
        }
        CHECK(invalid_argument_of([&] {
                  (void)web::format_set_cookie(arena, {.name = "a!#$%&'*+-.^_`|~9Z"});
              }).empty());
    }

    TEST_CASE("format_set_cookie rejects values outside cookie-octet") {
        http::Arena arena;
        for (const std::string_view bad :
             {"a b"sv, "a\"b"sv, "a,b"sv, "a;b"sv, "a\\b"sv, "\x7f"sv, "\x01"sv, "\xc3\xa9"sv,
              "\"unbalanced"sv, "\"in\"side\""sv}) {
            CAPTURE(bad);
            const std::string msg = invalid_argument_of(
                [&] { (void)web::format_set_cookie(arena, {.name = "n", .value = bad}); });
            CHECK(msg.find("value") != std::string::npos);
        }
        CHECK(invalid_argument_of([&] {
                  (void)web::format_set_cookie(
                      arena, {.name = "n", .value = "!#$%&'()*+-./09:<=>?@AZ[]^_`az{|}~"});
              }).empty());
    }

    TEST_CASE("format_set_cookie rejects a path or domain with ';', CTLs or non-ASCII") {
        http::Arena arena;
        for (const std::string_view bad :
             {"/a;b"sv, "/a\nb"sv, "/\x7f"sv, "/\xc3\xa9"sv, "/a\rSet-Cookie: x"sv}) {
            CAPTURE(bad);
            CHECK(invalid_argument_of([&] {
                      (void)web::format_set_cookie(arena, {.name = "n", .value = "v", .path = bad});
                  }).find("Path") != std::string::npos);
            CHECK(invalid_argument_of([&] {
                      (void)web::format_set_cookie(arena,
                                                   {.name = "n", .value = "v", .domain = bad});
                  }).find("Domain") != std::string::npos);
        }
        CHECK(web::format_set_cookie(arena, {.name = "n", .value = "v", .path = "/a b,c"}) ==
              "n=v; Path=/a b,c");
    }

    TEST_CASE("format_set_cookie enforces the __Secure- and __Host- prefixes") {
        http::Arena arena;
        CHECK_FALSE(invalid_argument_of([&] {
                        (void)web::format_set_cookie(arena, {.name = "__Secure-a"});
                    }).empty());
        CHECK(web::format_set_cookie(arena, {.name = "__Secure-a", .value = "1", .secure = true}) ==
              "__Secure-a=1; Secure");
        CHECK_FALSE(invalid_argument_of([&] {
                        (void)web::format_set_cookie(arena, {.name = "__Host-a",
                                                             .path = "/",
                                                             .domain = "example.com",
                                                             .secure = true});
                    }).empty());
        CHECK_FALSE(invalid_argument_of([&] {
                        (void)web::format_set_cookie(
                            arena, {.name = "__Host-a", .path = "/x", .secure = true});
                    }).empty());
        CHECK_FALSE(invalid_argument_of([&] {
                        (void)web::format_set_cookie(arena, {.name = "__Host-a", .path = "/"});
                    }).empty());
        CHECK(web::format_set_cookie(
                  arena, {.name = "__Host-a", .value = "1", .path = "/", .secure = true}) ==
              "__Host-a=1; Path=/; Secure");
    }

} // TEST_SUITE cookies

// =============================================================================================
TEST_SUITE("urlencoded") {

    TEST_CASE("for_each_form_value decodes names and values in order") {
        http::Arena arena;
        const std::string body =
            "a=1&b=hello+world&c=%41%42%43&&d&e=&f=x=y&%6e%61me=caf%C3%A9&k+1=v";
        std::vector<std::pair<std::string, std::string>> seen;
        web::for_each_form_value(body, arena, [&](std::string_view n, std::string_view v) {
            seen.emplace_back(std::string(n), std::string(v));
        });
        const std::vector<std::pair<std::string, std::string>> expected{
            {"a", "1"},   {"b", "hello world"},    {"c", "ABC"}, {"d", ""}, {"e", ""},
            {"f", "x=y"}, {"name", "caf\xc3\xa9"}, {"k 1", "v"}};
        CHECK(seen == expected);
    }

    TEST_CASE("invalid escapes and %00 are kept raw, valid ones around them decoded") {
        http::Arena arena;
        CHECK(web::decode_form_component("%G1", arena) == "%G1");
        CHECK(web::decode_form_component("%4", arena) == "%4");
        CHECK(web::decode_form_component("100%", arena) == "100%");
        CHECK(web::decode_form_component("%00", arena) == "%00");
        CHECK(web::decode_form_component("%41%zz+%42", arena) == "A%zz B");
        CHECK(web::decode_form_component("%%41", arena) == "%A");
        CHECK(web::decode_form_component("%2B%2b", arena) == "++");
        CHECK(web::find_form_value("x=%G1%41", "x", arena) == "%G1A"sv);
    }

    TEST_CASE("decode_form_component returns the raw view when nothing needs decoding") {
        http::Arena arena;
        const std::string raw = "plain-value_123";
        const std::string_view out = web::decode_form_component(raw, arena);
        CHECK(out == raw);
        CHECK(out.data() == raw.data());
        const std::string enc = "a+b";
        CHECK(web::decode_form_component(enc, arena).data() != enc.data());
    }

    TEST_CASE("find_form_value: decoded name match, first value, nullopt when absent") {
        http::Arena arena;
        const std::string body = "first+name=Jo+Ann&%61=1&a=2&flag&empty=";
        CHECK(web::find_form_value(body, "first name", arena) == "Jo Ann"sv);
        CHECK(web::find_form_value(body, "a", arena) ==
              "1"sv); // "%61" decodes to "a" and comes first
        const auto flag = web::find_form_value(body, "flag", arena);
        REQUIRE(flag.has_value());
        CHECK(flag->empty());
        CHECK(web::find_form_value(body, "empty", arena) == ""sv);
        CHECK_FALSE(web::find_form_value(body, "first+name", arena).has_value());
        CHECK_FALSE(web::find_form_value(body, "missing", arena).has_value());
        CHECK_FALSE(web::find_form_value("", "a", arena).has_value());
        CHECK_FALSE(web::find_form_value("ab=1", "a", arena).has_value());
        CHECK_FALSE(web::find_form_value("a=1", "ab", arena).has_value());
    }

    TEST_CASE("form_component_equals compares the decoded form without allocating") {
        CHECK(web::form_component_equals("a%20b", "a b"));
        CHECK(web::form_component_equals("a+b", "a b"));
        CHECK(web::form_component_equals("%zz", "%zz"));
        CHECK(web::form_component_equals("", ""));
        CHECK_FALSE(web::form_component_equals("a%20b", "a%20b"));
        CHECK_FALSE(web::form_component_equals("abc", "ab"));
        CHECK_FALSE(web::form_component_equals("ab", "abc"));
    }

} // TEST_SUITE urlencoded

// =============================================================================================
TEST_SUITE("multipart boundary") {

    TEST_CASE("parse_multipart_boundary accepts quoted and unquoted boundaries") {
        std::string b;
        CHECK(web::parse_multipart_boundary("multipart/form-data; boundary=abc123", b) ==
              MultipartError::none);
        CHECK(b == "abc123");
        CHECK(
            web::parse_multipart_boundary("Multipart/Form-Data;charset=utf-8; BOUNDARY=\"a b:c?\"",
                                          b) == MultipartError::none);
        CHECK(b == "a b:c?");
        CHECK(web::parse_multipart_boundary("multipart/form-data; boundary=\"q\\-x\"", b) ==
              MultipartError::none);
        CHECK(b == "q-x");
        CHECK(web::parse_multipart_boundary(
                  "multipart/form-data ; boundary=----WebKitFormBoundary7MA4YWxk", b) ==
              MultipartError::none);
        CHECK(b == "----WebKitFormBoundary7MA4YWxk");
        const std::string seventy(70, 'x');
        CHECK(web::parse_multipart_boundary("multipart/form-data; boundary=" + seventy, b) ==
              MultipartError::none);
        CHECK(b == seventy);
    }

    TEST_CASE("parse_multipart_boundary rejections") {
        std::string b;
        CHECK(web::parse_multipart_boundary("application/json", b) ==
              MultipartError::not_multipart);
        CHECK(web::parse_multipart_boundary("multipart/mixed; boundary=x", b) ==
              MultipartError::not_multipart);
        CHECK(web::parse_multipart_boundary("", b) == MultipartError::not_multipart);
        CHECK(web::parse_multipart_boundary("multipart/form-data", b) ==
              MultipartError::missing_boundary);
        CHECK(web::parse_multipart_boundary("multipart/form-data; charset=utf-8", b) ==
              MultipartError::missing_boundary);
        CHECK(web::parse_multipart_boundary("multipart/form-data; boundary=\"\"", b) ==
              MultipartError::invalid_boundary);
        CHECK(web::parse_multipart_boundary("multipart/form-data; boundary=" + std::string(71, 'x'),
                                            b) == MultipartError::invalid_boundary);
        CHECK(web::parse_multipart_boundary("multipart/form-data; boundary=a@b", b) ==
              MultipartError::invalid_boundary);
        CHECK(web::parse_multipart_boundary("multipart/form-data; boundary=\"ab \"", b) ==
              MultipartError::invalid_boundary);
        CHECK(web::parse_multipart_boundary("multipart/form-data; boundary=\"a\\\"b\"", b) ==
              MultipartError::invalid_boundary);
        CHECK(web::parse_multipart_boundary("multipart/form-data; boundary=\"unterminated", b) ==
              MultipartError::invalid_boundary);
        CHECK(web::parse_multipart_boundary("multipart/form-data; boundary=a; boundary=b", b) ==
              MultipartError::invalid_boundary);
    }

    TEST_CASE("every MultipartError has a description and a status") {
        CHECK(web::http_status(MultipartError::none) == 0);
        CHECK(web::http_status(MultipartError::too_many_parts) == 413);
        CHECK(web::http_status(MultipartError::header_too_large) == 413);
        for (auto e = MultipartError::not_multipart; e <= MultipartError::truncated;
             e = static_cast<MultipartError>(static_cast<int>(e) + 1)) {
            CAPTURE(static_cast<int>(e));
            CHECK(web::describe(e).starts_with("multipart: "));
            const int s = web::http_status(e);
            CHECK((s == 400 || s == 413));
        }
    }

} // TEST_SUITE multipart boundary

// =============================================================================================
TEST_SUITE("multipart form") {

    TEST_CASE("fields and files in order; preamble and epilogue ignored") {
        const std::string body = "This is the preamble.\r\nIt is ignored.\r\n" +
                                 part("title", "Hello") + part("tag", "a") +
                                 part("upload", "file\r\ncontent\r\n", "; filename=\"a.txt\"",
                                      "Content-Type: text/markdown\r\n") +
                                 part("tag", "b") + part("empty", "") +
                                 "--XyZ--\r\nepilogue --XyZ\r\n junk";
        const web::MultipartForm form(body, kType, {});
        CHECK(form.value("title") == "Hello"sv);
        CHECK(form.value("tag") == "a"sv);
        CHECK(form.values("tag") == std::vector<std::string_view>{"a", "b"});
        CHECK(form.value("empty") == ""sv);
        CHECK_FALSE(form.value("upload").has_value()); // a file, not a field
        CHECK_FALSE(form.value("missing").has_value());
        CHECK(form.values("missing").empty());
        const std::vector<std::pair<std::string, std::string>> fields{
            {"title", "Hello"}, {"tag", "a"}, {"tag", "b"}, {"empty", ""}};
        CHECK(form.fields() == fields);
        REQUIRE(form.files().size() == 1);
        const web::FormFile* f = form.file("upload");
        REQUIRE(f != nullptr);
        CHECK(f == &form.files()[0]);
        CHECK(f->field == "upload");
        CHECK(f->filename == "a.txt");
        CHECK(f->content_type == "text/markdown");
        CHECK(f->size == 15);
        CHECK(f->in_memory());
        CHECK(f->data == "file\r\ncontent\r\n");
        CHECK(f->read() == "file\r\ncontent\r\n");
        CHECK(form.file("title") == nullptr);
    }

    TEST_CASE("a body with only the closing delimiter is an empty form") {
        const web::MultipartForm form("--XyZ--", kType, {});
        CHECK(form.fields().empty());
        CHECK(form.files().empty());
        const web::MultipartForm with_preamble("preamble\r\n--XyZ--\r\n", kType, {});
        CHECK(with_preamble.fields().empty());
    }

    TEST_CASE("a default-constructed form is empty") {
        const web::MultipartForm form;
        CHECK(form.files().empty());
        CHECK(form.fields().empty());
        CHECK_FALSE(form.value("a").has_value());
        CHECK(form.file("a") == nullptr);
    }

    TEST_CASE("Content-Disposition parameters: quoting, escapes, tokens, filename*") {
        const std::string body =
            "--XyZ\r\ncontent-disposition: Form-Data; name=plain\r\n\r\nv1\r\n"
            "--XyZ\r\nContent-Disposition: form-data; name=\"with \\\"quotes\\\"\"; "
            "x-extra=1\r\n\r\nv2\r\n"
            "--XyZ\r\nContent-Disposition: form-data; name=\"semi;colon\";\r\n\r\nv3\r\n"
            "--XyZ\r\nContent-Disposition: form-data;name=\"f1\";filename=\"say "
            "\\\"hi\\\".txt\"\r\n\r\nA\r\n"
            "--XyZ\r\nContent-Disposition: form-data; name=\"f2\"; filename=\"fallback.txt\"; "
            "filename*=UTF-8''%e2%82%ac%20rates.txt\r\n\r\nB\r\n"
            "--XyZ\r\nContent-Disposition: form-data; name=\"f3\"; "
            "filename*=iso-8859-1'en'%A3.txt\r\n\r\nC\r\n"
            "--XyZ\r\nContent-Disposition: form-data; name=\"f4\"; filename=\"kept.txt\"; "
            "filename*=UTF-8''bad%zz\r\n\r\nD\r\n"
            "--XyZ\r\nContent-Disposition: form-data; name = \"f5\" ; filename = "
            "\"caf\xc3\xa9.txt\"\r\n\r\nE\r\n"
            "--XyZ--";
        const web::MultipartForm form(body, kType, {});
        CHECK(form.value("plain") == "v1"sv);
        CHECK(form.value("with \"quotes\"") == "v2"sv);
        CHECK(form.value("semi;colon") == "v3"sv);
        REQUIRE(form.files().size() == 5);
        CHECK(form.file("f1")->filename == "say \"hi\".txt");
        CHECK(form.file("f2")->filename == "\xe2\x82\xac rates.txt");
        CHECK(form.file("f3")->filename == "\xc2\xa3.txt");
        CHECK(form.file("f4")->filename == "kept.txt");
        CHECK(form.file("f5")->filename == "caf\xc3\xa9.txt");
        CHECK(form.file("f5")->read() == "E");
    }

    TEST_CASE("file names are reduced to their base name; an empty file name is still a file") {
        const std::string body = part("a", "1", "; filename=\"../../etc/passwd\"") +
                                 part("b", "2", "; filename=\"C:\\\\dir\\\\x.png\"") +
                                 part("c", "3", "; filename=\"..\"") +
                                 part("d", "", "; filename=\"\"") +
                                 part("e", "5", "; filename*=UTF-8''..%2F..%2Fsecret") +
                                 part("f", "6", "; filename=\"dir/\"") + close();
        const web::MultipartForm form(body, kType, {});
        REQUIRE(form.files().size() == 6);
        CHECK(form.file("a")->filename == "passwd");
        CHECK(form.file("b")->filename == "x.png");
        CHECK(form.file("c")->filename == "");
        CHECK(form.file("d")->filename == "");
        CHECK(form.file("d")->size == 0);
        CHECK(form.file("e")->filename == "secret");
        CHECK(form.file("f")->filename == "");
        CHECK(form.fields().empty());
    }

    TEST_CASE(
        "part headers: Content-Type default, unknown headers ignored, padding after delimiters") {
        const std::string body =
            "--XyZ \t\r\nX-Unknown: whatever\r\nContent-Disposition: form-data; name=\"f\"; "
            "filename=\"x.bin\"\r\nContent-Transfer-Encoding: binary\r\n\r\nbin\r\n"
            "--XyZ\r\nContent-Disposition: form-data; name=\"g\"; filename=\"y\"\r\n"
            "CONTENT-TYPE:   image/png  \r\n\r\npng\r\n--XyZ--  ";
        const web::MultipartForm form(body, kType, {});
        CHECK(form.file("f")->content_type == "text/plain");
        CHECK(form.file("f")->data == "bin");
        CHECK(form.file("g")->content_type == "image/png");
    }

    TEST_CASE("binary content with CR, LF and near-delimiters is kept exactly") {
        std::string content;
        for (int i = 0; i < 256; ++i) {
            content.push_back(static_cast<char>(i));
        }
        content += "\r\n--XyX\r\n--Xy\r\r\n-\n--XyZ\r\n\r--XyZ\r";
        const std::string body = part("bin", content, "; filename=\"b\"") + close();
        const web::MultipartForm form(body, kType, {});
        REQUIRE(form.file("bin") != nullptr);
        CHECK(form.file("bin")->data == content);
        CHECK(form.file("bin")->size == content.size());
    }

    TEST_CASE("framing rejections are 400 with a message naming the problem") {
        struct Case {
            std::string name;
            std::string body;
            std::string_view message;
        };
        const std::string cd = "Content-Disposition: form-data; name=\"a\"";
        const std::vector<Case> cases{
            {"bare LF after the first delimiter", "--XyZ\n" + cd + "\r\n\r\nv\r\n--XyZ--",
             "bare LF"},
            {"bare LF body throughout", "--XyZ\n" + cd + "\n\nv\n--XyZ--\n", "bare LF"},
            {"bare LF in a header line", "--XyZ\r\n" + cd + "\n\r\nv\r\n--XyZ--", "bare LF"},
            {"bare LF after padding", "--XyZ  \n" + cd + "\r\n\r\nv\r\n--XyZ--", "bare LF"},
            {"bare CR after the delimiter", "--XyZ\rx" + cd + "\r\n\r\nv\r\n--XyZ--",
             "CR not followed"},
            {"bare CR in a header line", "--XyZ\r\n" + cd + "\rX: y\r\n\r\nv\r\n--XyZ--",
             "CR not followed"},
            {"boundary followed by other bytes",
             "--XyZ\r\n" + cd + "\r\n\r\nv\r\n--XyZabc\r\n--XyZ--", "followed by something other"},
            {"boundary prefix in the preamble", "--XyZ0\r\n", "followed by something other"},
            {"single dash close", "--XyZ\r\n" + cd + "\r\n\r\nv\r\n--XyZ-x",
             "followed by something other"},
            {"padding then junk", "--XyZ  x\r\n", "followed by something other"},
            {"empty body", "", "ends before the closing"},
            {"no delimiter at all", "just some text", "ends before the closing"},
            {"LF-only delimiter in preamble is not a delimiter", "pre\n--XyZ--\n",
             "ends before the closing"},
            {"ends in the headers", "--XyZ\r\n" + cd + "\r\n", "ends before the closing"},
            {"ends in the content", "--XyZ\r\n" + cd + "\r\n\r\nvalue", "ends before the closing"},
            {"ends after a delimiter", "--XyZ\r\n" + cd + "\r\n\r\nv\r\n--XyZ",
             "ends before the closing"},
            {"ends after a dash", "--XyZ\r\n" + cd + "\r\n\r\nv\r\n--XyZ-",
             "ends before the closing"},
            {"ends after the delimiter's CRLF", "--XyZ\r\n" + cd + "\r\n\r\nv\r\n--XyZ\r\n",
             "ends before the closing"},
            {"no headers at all", "--XyZ\r\n\r\nv\r\n--XyZ--", "no Content-Disposition"},
            {"only other headers", "--XyZ\r\nContent-Type: text/plain\r\n\r\nv\r\n--XyZ--",
             "no Content-Disposition"},
            {"not form-data",
             "--XyZ\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nv\r\n--XyZ--",
             "invalid Content-Disposition"},
            {"no name",
             "--XyZ\r\nContent-Disposition: form-data; filename=\"a\"\r\n\r\nv\r\n--XyZ--",
             "no name"},
            {"repeated name",
             "--XyZ\r\nContent-Disposition: form-data; name=a; name=b\r\n\r\nv\r\n--XyZ--",
             "invalid Content-Disposition"},
            {"repeated filename",
             "--XyZ\r\nContent-Disposition: form-data; name=a; filename=x; "
             "filename=y\r\n\r\nv\r\n--XyZ--",
             "invalid Content-Disposition"},
            {"unterminated quote",
             "--XyZ\r\nContent-Disposition: form-data; name=\"a\r\n\r\nv\r\n--XyZ--",
             "invalid Content-Disposition"},
            {"junk after a quoted value",
             "--XyZ\r\nContent-Disposition: form-data; name=\"a\"b\r\n\r\nv\r\n--XyZ--",
             "invalid Content-Disposition"},
            {"missing value", "--XyZ\r\nContent-Disposition: form-data; name=\r\n\r\nv\r\n--XyZ--",
             "invalid Content-Disposition"},
            {"non-token value",
             "--XyZ\r\nContent-Disposition: form-data; name=a/b\r\n\r\nv\r\n--XyZ--",
             "invalid Content-Disposition"},
            {"duplicate Content-Disposition",
             "--XyZ\r\n" + cd + "\r\n" + cd + "\r\n\r\nv\r\n--XyZ--", "repeated"},
            {"duplicate Content-Type",
             "--XyZ\r\n" + cd + "\r\nContent-Type: a/b\r\ncontent-type: a/b\r\n\r\nv\r\n--XyZ--",
             "repeated"},
            {"obs-fold", "--XyZ\r\n" + cd + "\r\n ; filename=x\r\n\r\nv\r\n--XyZ--",
             "malformed part header"},
            {"header without colon", "--XyZ\r\n" + cd + "\r\nNoColon\r\n\r\nv\r\n--XyZ--",
             "malformed part header"},
            {"space before colon",
             "--XyZ\r\nContent-Disposition : form-data; name=a\r\n\r\nv\r\n--XyZ--",
             "malformed part header"},
            {"control byte in a header",
             "--XyZ\r\n" + cd +
                 "\r\nX-A: a\x01"
                 "b\r\n\r\nv\r\n--XyZ--",
             "malformed part header"},
        };
        for (const Case& c : cases) {
            CAPTURE(c.name);
            const auto [status, message] =
                http_error_of([&] { const web::MultipartForm f(c.body, kType, {}); });
            CHECK(status == 400);
            CHECK(message.find(c.message) != std::string::npos);
        }
    }

    TEST_CASE("Content-Type rejections are 400") {
        const std::string body = part("a", "1") + close();
        for (const std::string_view ct :
             {"application/x-www-form-urlencoded"sv, "multipart/form-data"sv,
              "multipart/form-data; boundary=\"\""sv, "multipart/form-data; boundary=a@b"sv,
              "text/plain; boundary=XyZ"sv}) {
            CAPTURE(ct);
            const auto [status, message] =
                http_error_of([&] { const web::MultipartForm f(body, ct, {}); });
            CHECK(status == 400);
            CHECK(message.starts_with("multipart: "));
        }
        // The same body parses under the right Content-Type, with a quoted boundary too.
        CHECK(web::MultipartForm(body, "multipart/form-data; boundary=\"XyZ\"", {}).value("a") ==
              "1"sv);
    }

    TEST_CASE("max_parts: exactly the limit parses, one more is 413") {
        web::MultipartLimits limits;
        limits.max_parts = 3;
        const std::string three = part("a", "1") + part("b", "2") + part("c", "3") + close();
        CHECK(web::MultipartForm(three, kType, limits).fields().size() == 3);
        const std::string four =
            part("a", "1") + part("b", "2") + part("c", "3") + part("d", "4") + close();
        const auto [status, message] =
            http_error_of([&] { const web::MultipartForm f(four, kType, limits); });
        CHECK(status == 413);
        CHECK(message.find("too many parts") != std::string::npos);
    }

    TEST_CASE("max_header_bytes: exactly the limit parses, one more byte is 413") {
        const std::string headers = "Content-Disposition: form-data; name=\"a\"\r\n\r\n";
        web::MultipartLimits limits;
        limits.max_header_bytes = headers.size();
        const std::string body = "--XyZ\r\n" + headers + "v\r\n--XyZ--";
        CHECK(web::MultipartForm(body, kType, limits).value("a") == "v"sv);
        limits.max_header_bytes = headers.size() - 1;
        const auto [status, message] =
            http_error_of([&] { const web::MultipartForm f(body, kType, limits); });
        CHECK(status == 413);
        CHECK(message.find("headers are too large") != std::string::npos);
        // A header block that never ends is cut off at the limit too, not buffered without bound.
        const std::string endless = "--XyZ\r\nX-Long: " + std::string(100000, 'a');
        CHECK(http_error_of([&] { const web::MultipartForm f(endless, kType, {}); }).first == 413);
    }

    TEST_CASE("a field larger than memory_limit is 413; at the limit it is kept") {
        web::MultipartLimits limits;
        limits.memory_limit = 8;
        CHECK(web::MultipartForm(part("a", "12345678") + close(), kType, limits).value("a") ==
              "12345678"sv);
        const auto [status, message] = http_error_of(
            [&] { const web::MultipartForm f(part("a", "123456789") + close(), kType, limits); });
        CHECK(status == 413);
        CHECK(message.find("'a'") != std::string::npos);
    }

} // TEST_SUITE multipart form

// =============================================================================================
TEST_SUITE("multipart temp files") {

    TEST_CASE("a file above memory_limit goes to a 0600 temp file removed with the form") {
        TempDir dir;
        web::MultipartLimits limits;
        limits.memory_limit = 16;
        limits.temp_dir = dir.path();
        const std::string big(17, 'x');
        const std::string small(16, 'y');
        const std::string body = part("big", big, "; filename=\"../../evil.sh\"") +
                                 part("small", small, "; filename=\"s.txt\"") + close();
        std::string path;
        {
            const web::MultipartForm form(body, kType, limits);
            const web::FormFile* f = form.file("big");
            REQUIRE(f != nullptr);
            CHECK_FALSE(f->in_memory());
            CHECK(f->data.empty());
            CHECK(f->size == big.size());
            CHECK(f->filename == "evil.sh");
            path = f->temp_path;
            CHECK(std::filesystem::path(path).parent_path() == dir.path());
            CHECK(path.find("evil") == std::string::npos); // never named after client input
            struct stat st {};
            REQUIRE(::stat(path.c_str(), &st) == 0);
            CHECK((st.st_mode & 0777) == 0600);
            CHECK(static_cast<std::size_t>(st.st_size) == big.size());
            CHECK(f->read() == big);
            CHECK(file_content(path) == big);
            // Exactly at the limit stays in memory.
            CHECK(form.file("small")->in_memory());
            CHECK(form.file("small")->read() == small);
            CHECK(dir.entries() == 1);
        }
        CHECK_FALSE(exists(path));
        CHECK(dir.entries() == 0);
    }

    TEST_CASE("several big files get distinct temp files, content streamed across pieces") {
        TempDir dir;
        web::MultipartLimits limits;
        limits.memory_limit = 10;
        limits.temp_dir = dir.path();
        std::string c1;
        for (int i = 0; i < 5000; ++i) {
            c1 += fmt::format("line {}\r\n--XyY-ish\r\n--Xy\r\n",
                              i); // near-delimiters force many pieces
        }
        const std::string c2(100000, '\0');
        const std::string body =
            part("f", c1, "; filename=\"a\"") + part("f", c2, "; filename=\"a\"") + close();
        const web::MultipartForm form(body, kType, limits);
        REQUIRE(form.files().size() == 2);
        CHECK(form.files()[0].temp_path != form.files()[1].temp_path);
        CHECK(form.files()[0].read() == c1);
        CHECK(form.files()[1].read() == c2);
        CHECK(form.file("f") == &form.files()[0]);
        CHECK(dir.entries() == 2);
    }

    TEST_CASE("moving a form moves ownership of its temp files") {
        TempDir dir;
        web::MultipartLimits limits;
        limits.memory_limit = 1;
        limits.temp_dir = dir.path();
        std::string p1;
        std::string p2;
        {
            web::MultipartForm a(part("f", "abc", "; filename=\"x\"") + close(), kType, limits);
            p1 = a.files().at(0).temp_path;
            web::MultipartForm b(std::move(a));
            CHECK(a.files()
                      .empty()); // NOLINT(bugprone-use-after-move): checking the moved-from state
            CHECK(exists(p1));
            CHECK(b.file("f")->read() == "abc");

            web::MultipartForm c(part("g", "def", "; filename=\"y\"") + close(), kType, limits);
            p2 = c.files().at(0).temp_path;
            CHECK(exists(p2));
            c = std::move(b); // c's own file goes, b's file now belongs to c
            CHECK_FALSE(exists(p2));
            CHECK(exists(p1));
            CHECK(c.file("f")->read() == "abc");
            CHECK(c.file("g") == nullptr);
        }
        CHECK_FALSE(exists(p1));
        CHECK(dir.entries() == 0);
    }

    TEST_CASE("a renamed temp file survives the form") {
        TempDir dir;
        web::MultipartLimits limits;
        limits.memory_limit = 1;
        limits.temp_dir = dir.path();
        const std::string kept = dir.path() + "/kept";
        {
            const web::MultipartForm form(part("f", "keep me", "; filename=\"x\"") + close(), kType,
                                          limits);
            REQUIRE(::rename(form.file("f")->temp_path.c_str(), kept.c_str()) == 0);
        }
        CHECK(file_content(kept) == "keep me");
    }

    TEST_CASE("temp files are removed when parsing fails after creating them") {
        TempDir dir;
        web::MultipartLimits limits;
        limits.memory_limit = 4;
        limits.temp_dir = dir.path();
        limits.max_parts = 2;
        const std::string good = part("f", "0123456789", "; filename=\"x\"");
        // Truncated after a spilled file.
        CHECK(http_error_of([&] {
                  const web::MultipartForm f(good + "--XyZ\r\n", kType, limits);
              }).first == 400);
        CHECK(dir.entries() == 0);
        // Truncated inside a spilled file (the file descriptor is still open).
        const std::string g = part("g", "abcdefghij", "; filename=\"y\"");
        const std::string cut = good + g.substr(0, g.size() - 5); // ends after "abcdefg"
        CHECK(http_error_of([&] { const web::MultipartForm f(cut, kType, limits); }).first == 400);
        CHECK(dir.entries() == 0);
        // Too many parts after a spilled file.
        CHECK(http_error_of([&] {
                  const web::MultipartForm f(good + good + good + close(), kType, limits);
              }).first == 413);
        CHECK(dir.entries() == 0);
        // A field over the limit after a spilled file.
        CHECK(http_error_of([&] {
                  const web::MultipartForm f(good + part("v", "0123456789") + close(), kType,
                                             limits);
              }).first == 413);
        CHECK(dir.entries() == 0);
    }

    TEST_CASE("an unusable temp_dir is a std::system_error, not a client error") {
        web::MultipartLimits limits;
        limits.memory_limit = 1;
        limits.temp_dir = "/nonexistent/ringwork-form-test";
        const std::string body = part("f", "abc", "; filename=\"x\"") + close();
        CHECK_THROWS_AS(web::MultipartForm(body, kType, limits), std::system_error);
        limits.memory_limit = 3; // in memory: the directory is never touched
        CHECK(web::MultipartForm(body, kType, limits).file("f")->read() == "abc");
    }

    TEST_CASE("FormFile::read of a missing temp file throws std::system_error") {
        const web::FormFile f{.field = "f",
                              .filename = "",
                              .content_type = "",
                              .size = 3,
                              .data = "",
                              .temp_path = "/nonexistent/ringwork-form-test"};
        CHECK_FALSE(f.in_memory());
        CHECK_THROWS_AS((void)f.read(), std::system_error);
    }

} // TEST_SUITE multipart temp files

// =============================================================================================
TEST_SUITE("multipart parser") {

    TEST_CASE("events: begin with headers, data, end; the closing delimiter sets done") {
        const std::string body =
            "pre\r\n" + part("a", "1") +
            part("f", "x\r\ny", "; filename=\"dir/n.txt\"", "Content-Type: text/csv\r\n") + close();
        const Outcome o = parse_whole(body);
        CHECK(o.error == MultipartError::none);
        CHECK(o.done);
        const std::vector<std::string> expected{
            "begin name=[a] filename=[] has_filename=false type=[]",
            "data:1",
            "end",
            "begin name=[f] filename=[n.txt] has_filename=true type=[text/csv]",
            "data:x\r\ny",
            "end"};
        CHECK(o.events == expected);
    }

    TEST_CASE("an empty part has no data event") {
        const Outcome o = parse_whole(part("a", "") + close());
        CHECK(o.error == MultipartError::none);
        CHECK(o.events == std::vector<std::string>{
                              "begin name=[a] filename=[] has_filename=false type=[]", "end"});
    }

    TEST_CASE("errors are sticky; input after the closing delimiter is ignored") {
        Recorder rec;
        web::MultipartParser p("XyZ", rec);
        CHECK(p.feed("--XyZ\n") == MultipartError::bare_lf);
        CHECK(p.feed(part("a", "1")) == MultipartError::bare_lf);
        CHECK(p.finish() == MultipartError::bare_lf);
        CHECK(p.error() == MultipartError::bare_lf);
        CHECK(rec.events.empty());

        Recorder rec2;
        web::MultipartParser q("XyZ", rec2);
        CHECK(q.feed(part("a", "1") + close()) == MultipartError::none);
        CHECK(q.done());
        CHECK(q.feed(part("b", "2") + "\n\r garbage --XyZ\n") == MultipartError::none);
        CHECK(q.finish() == MultipartError::none);
        CHECK(q.parts() == 1);
        CHECK(rec2.events.size() == 3);
    }

    TEST_CASE("finish before the closing delimiter reports truncated") {
        Recorder rec;
        web::MultipartParser p("XyZ", rec);
        CHECK(p.feed(part("a", "1")) == MultipartError::none);
        CHECK_FALSE(p.done());
        CHECK(p.parts() == 1);
        CHECK(p.finish() == MultipartError::truncated);
    }

    TEST_CASE("an invalid boundary makes the parser fail without events") {
        for (const std::string_view b : {""sv, "a@b"sv, "trailing "sv}) {
            CAPTURE(b);
            Recorder rec;
            web::MultipartParser p(b, rec);
            CHECK(p.error() == MultipartError::invalid_boundary);
            CHECK(p.feed("--a@b\r\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n--a@b--") ==
                  MultipartError::invalid_boundary);
            CHECK(rec.events.empty());
        }
        Recorder rec;
        const web::MultipartParser ok(std::string(70, 'b'), rec);
        CHECK(ok.error() == MultipartError::none);
        const web::MultipartParser too_long(std::string(71, 'b'), rec);
        CHECK(too_long.error() == MultipartError::invalid_boundary);
    }

    TEST_CASE("identical results for every split of the input") {
        std::string binary;
        for (int i = 0; i < 300; ++i) {
            binary.push_back(static_cast<char>((i * 37) & 0xFF));
        }
        const std::string cd = "Content-Disposition: form-data; name=\"a\"";
        std::vector<std::string> bodies{
            "preamble\r\n--XyZ0\r\n\r\n" + part("a", "1") +
                part("b", "x\r\n--XyZ-\r\n--Xy\r\r\n\r\n--") +
                part("f", binary + "\r", "; filename=\"q\\\".bin\"", "Content-Type: a/b\r\n") +
                close() + "epi\r\n",
            part("r", "\r\r\r\n\r\n-\r\n--\r\n--X\r\n--Xy\n--XyZ\r") +
                close(), // ends inside a delimiter-like run
            part("tail", "\r\n--Xy\r") + "--XyZ--",
            "--XyZ \t \r\n" + cd + "\r\n\r\n\r\n--XyZ--",
            "\r\n--XyZ\r\n" + cd + "\r\n\r\nv\r\n--XyZ--",
            "--XyZ\r\n" + cd + "\r\n\r\nv\r\n--XyZ\n",  // bare LF
            "--XyZ\r\n" + cd + "\r\n\r\nv\r\n--XyZ\rX", // bare CR
            "--XyZ\r\n" + cd + "\r\n\r\nv\r\n--XyZz",   // malformed delimiter
            "--XyZ\r\n" + cd + "\r\n\r\nv\r\n--XyZ",    // truncated
            "--XyZ\r\n" + cd + "\rA\r\n\r\nv\r\n--XyZ--",
            "--XyZ\r\nContent-Disposition: form-data\r\n\r\n--XyZ--",
            part("a", "1") + part("b", "2") + part("c", "3") + close(), // too many parts (limit 2)
            "--XyZ\r\n" + cd + "\r\nX: " + std::string(300, 'h') +
                "\r\n\r\n--XyZ--", // headers too large
        };
        web::MultipartLimits limits;
        limits.max_parts = 2;
        limits.max_header_bytes = 256;
        std::mt19937 rng(20240601); // fixed seed: reproducible
        for (std::size_t i = 0; i < bodies.size(); ++i) {
            CAPTURE(i);
            const std::string& body = bodies[i];
            const Outcome whole = parse_whole(body, limits);
            CHECK_FALSE(whole.empty_piece);
            // Every single split point.
            for (std::size_t cut = 0; cut <= body.size(); ++cut) {
                const Outcome split = parse_split(body, {cut}, limits);
                if (!(split == whole)) {
                    CAPTURE(cut);
                    CHECK(split == whole);
                    break;
                }
            }
            // Byte by byte.
            std::vector<std::size_t> every;
            for (std::size_t cut = 1; cut < body.size(); ++cut) {
                every.push_back(cut);
            }
            const Outcome bytewise = parse_split(body, every, limits);
            CHECK(bytewise == whole);
            // Random splits.
            for (int round = 0; round < 200; ++round) {
                std::vector<std::size_t> cuts;
                std::uniform_int_distribution<std::size_t> step(0, 12);
                for (std::size_t at = step(rng); at < body.size(); at += step(rng)) {
                    cuts.push_back(at);
                }
                const Outcome split = parse_split(body, cuts, limits);
                if (!(split == whole)) {
                    CAPTURE(round);
                    CHECK(split == whole);
                    break;
                }
            }
        }
        // The expected verdicts, so a parser that fails everything the same way cannot pass.
        CHECK(parse_whole(bodies[0], limits).error ==
              MultipartError::malformed_delimiter); // "--XyZ0" in preamble
        CHECK(parse_whole(bodies[1], limits).error == MultipartError::none);
        CHECK(parse_whole(bodies[1], limits).events.at(1) ==
              "data:\r\r\r\n\r\n-\r\n--\r\n--X\r\n--Xy\n--XyZ\r");
        CHECK(parse_whole(bodies[2], limits).events.at(1) == "data:\r\n--Xy\r");
        CHECK(parse_whole(bodies[3], limits).events.size() == 2);
        CHECK(parse_whole(bodies[4], limits).error == MultipartError::none);
        CHECK(parse_whole(bodies[5], limits).error == MultipartError::bare_lf);
        CHECK(parse_whole(bodies[6], limits).error == MultipartError::bare_cr);
        CHECK(parse_whole(bodies[7], limits).error == MultipartError::malformed_delimiter);
        CHECK(parse_whole(bodies[8], limits).error == MultipartError::truncated);
        CHECK(parse_whole(bodies[9], limits).error == MultipartError::bare_cr);
        CHECK(parse_whole(bodies[10], limits).error == MultipartError::missing_name);
        CHECK(parse_whole(bodies[11], limits).error == MultipartError::too_many_parts);
        CHECK(parse_whole(bodies[12], limits).error == MultipartError::header_too_large);
    }

    TEST_CASE("random-split parsing of a valid body carries the whole content of every part") {
        std::mt19937 rng(7);
        std::uniform_int_distribution<int> any_byte(0, 255);
        std::uniform_int_distribution<int> pick(0, 9);
        std::string content;
        for (int i = 0; i < 4000; ++i) {
            // Bias towards the delimiter's own bytes.
            const int k = pick(rng);
            content += k < 2 ? "\r\n"sv : k < 4 ? "--"sv : k < 5 ? "XyZ"sv : ""sv;
            content.push_back(static_cast<char>(any_byte(rng)));
        }
        // Remove any real delimiter the generator made by chance.
        for (std::size_t at = content.find("\r\n--XyZ"); at != std::string::npos;
             at = content.find("\r\n--XyZ")) {
            content.erase(at, 1);
        }
        const std::string body = part("f", content, "; filename=\"r\"") + close();
        for (int round = 0; round < 50; ++round) {
            std::vector<std::size_t> cuts;
            std::uniform_int_distribution<std::size_t> step(1, 64);
            for (std::size_t at = step(rng); at < body.size(); at += step(rng)) {
                cuts.push_back(at);
            }
            const Outcome o = parse_split(body, cuts);
            REQUIRE(o.error == MultipartError::none);
            REQUIRE(o.events.size() == 3);
            CHECK(o.events[1] == "data:" + content);
        }
    }

} // TEST_SUITE multipart parser
