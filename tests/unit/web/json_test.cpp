// SPDX-License-Identifier: MIT
// Unit tests for web::Json and web::write_json: the pool-allocated value is a full nlohmann value,
// write_json is byte-identical to dump(replace) on hand-picked and random values, values cross
// threads, and building + writing a small response allocates nothing after warm-up.
#include <ringwork/web/json.hpp>

#include "alloc_counter.hpp"

#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <doctest/doctest.h>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

namespace web = ringwork::web;
using ringwork::http::ByteBuffer;
using ringwork::runtime::FramePool;
using web::Json;
using web::JsonString;

namespace {

constexpr auto kReplace = nlohmann::json::error_handler_t::replace;

/// What nlohmann's own serializer prints for `value` (compact, invalid UTF-8 replaced).
template <class BasicJson>
std::string dumped(const BasicJson& value) {
    const auto text = value.dump(-1, ' ', false, kReplace);
    return {text.data(), text.size()};
}

/// What write_json appends for `value` to an empty buffer.
template <class BasicJson>
std::string written(const BasicJson& value) {
    ByteBuffer out;
    web::write_json(out, value);
    return std::string(out.view());
}

/// write_json into a buffer that already holds a prefix: the prefix stays, the text follows.
template <class BasicJson>
std::string written_after_prefix(const BasicJson& value) {
    ByteBuffer out;
    out.append(std::string_view("prefix:"));
    web::write_json(out, value);
    const std::string_view all = out.view();
    REQUIRE(all.substr(0, 7) == "prefix:");
    return std::string(all.substr(7));
}

/// Checks write_json against dump() for one value given as both Json and nlohmann::json.
void check_same(const Json& value) {
    const std::string expected = dumped(value);
    CHECK(written(value) == expected);
    CHECK(written_after_prefix(value) == expected);
}

std::string str(const JsonString& s) {
    return {s.data(), s.size()};
}

/// Appends every part to one string (g++ 12 at -O3 warns falsely about `"literal" + string`
/// with -Wrestrict, GCC PR105651, so this file never writes that).
template <class... Parts>
std::string cat(const Parts&... parts) {
    std::string out;
    ((out += parts), ...);
    return out;
}

// --- random values ---------------------------------------------------------------------------

/// Fragments that stress the UTF-8 repair: valid characters of every length, truncations,
/// overlongs, surrogates, out-of-range code points, stray continuation bytes and escapes.
// clang-format off
constexpr std::array<std::string_view, 40> kFragments = {
    "a", "\"", "\\", "/", "\b", "\f", "\n", "\r", "\t", std::string_view("\0", 1), "\x01", "\x1f", "\x7f",
    "\xC3\xA9",         // é
    "\xE2\x82\xAC",     // €
    "\xF0\x9D\x84\x9E", // 𝄞
    "\xEF\xBF\xBD",     // U+FFFD itself
    "\xEF\xBB\xBF",     // BOM
    "\xC2\x80", "\xDF\xBF", "\xE0\xA0\x80", "\xED\x9F\xBF", "\xEE\x80\x80", "\xF0\x90\x80\x80",
    "\xF4\x8F\xBF\xBF", // U+10FFFF
    "\xC0\xAF",         // overlong '/'
    "\xC1\xBF", "\xE0\x80\xAF", "\xE0\x9F\xBF", "\xED\xA0\x80", // surrogate
    "\xF0\x8F\xBF\xBF", "\xF4\x90\x80\x80", "\xF5\x80\x80\x80", "\xFF", "\xFE", "\x80", "\xBF",
    "\xE2\x82",         // truncated €
    "\xF0\x9D\x84",     // truncated 𝄞
    "\xC3",             // truncated é
};
// clang-format on

template <class BasicJson>
class Generator {
public:
    explicit Generator(std::uint64_t seed, bool clean)
        : rng_(seed)
        , clean_(clean) {}

    BasicJson value(int depth) {
        const int kind = pick(0, depth > 0 ? 11 : 8);
        switch (kind) {
        case 0:
            return nullptr;
        case 1:
            return pick(0, 1) == 1;
        case 2:
            return integer();
        case 3:
            return unsigned_integer();
        case 4:
        case 5:
            return real();
        case 6:
        case 7:
        case 8: {
            const std::string s = string();
            return std::string_view(s);
        }
        case 9:
            if (pick(0, 7) == 0) {
                return clean_ ? BasicJson::array()
                              : BasicJson::binary({1, 2, 255}, pick(0, 1) == 0 ? 7 : 200);
            }
            [[fallthrough]];
        case 10: {
            BasicJson array = BasicJson::array();
            const int n = pick(0, 6);
            for (int i = 0; i < n; ++i) {
                array.push_back(value(depth - 1));
            }
            return array;
        }
        default: {
            BasicJson object = BasicJson::object();
            const int n = pick(0, 6);
            for (int i = 0; i < n; ++i) {
                const std::string key = string();
                object[std::string_view(key)] = value(depth - 1);
            }
            return object;
        }
        }
    }

    std::string string() {
        std::string s;
        const int kind = pick(0, clean_ ? 2 : 4);
        const int n = pick(0, 1) == 0 ? pick(0, 12) : pick(13, 200);
        for (int i = 0; i < n; ++i) {
            switch (kind) {
            case 0: // printable ASCII, with the odd escape
                s += static_cast<char>(pick(0, 20) == 0 ? pick(0, 0x1f) : pick(0x20, 0x7e));
                break;
            case 1: // the fragments that parse back (valid UTF-8)
            case 2:
                append_code_point(s, code_point());
                break;
            case 3: // random bytes
                s += static_cast<char>(pick(0, 255));
                break;
            default: // tricky fragments, valid and invalid
                s += kFragments[static_cast<std::size_t>(
                    pick(0, static_cast<int>(kFragments.size()) - 1))];
                break;
            }
        }
        return s;
    }

private:
    int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
    static std::uint64_t exponent(int biased) { return static_cast<std::uint64_t>(biased) << 52U; }

    std::int64_t integer() {
        switch (pick(0, 3)) {
        case 0:
            return pick(-1000, 1000);
        case 1:
            return pick(0, 1) == 0 ? std::numeric_limits<std::int64_t>::min()
                                   : std::numeric_limits<std::int64_t>::max();
        default:
            return static_cast<std::int64_t>(rng_());
        }
    }

    std::uint64_t unsigned_integer() {
        return pick(0, 3) == 0 ? std::numeric_limits<std::uint64_t>::max() : rng_();
    }

    double real() {
        const std::uint64_t bits = rng_();
        double d = 0;
        switch (pick(0, 9)) {
        case 0: // any bit pattern (NaN and infinities included, unless clean)
            d = std::bit_cast<double>(bits);
            break;
        case 1: // subnormal
            d = std::bit_cast<double>(bits & 0x800F'FFFF'FFFF'FFFFULL);
            break;
        case 2: // huge
            d = std::bit_cast<double>((bits & 0x800F'FFFF'FFFF'FFFFULL) |
                                      exponent(0x7FE - pick(0, 40)));
            break;
        case 3: // tiny normal
            d = std::bit_cast<double>((bits & 0x800F'FFFF'FFFF'FFFFULL) |
                                      exponent(1 + pick(0, 40)));
            break;
        case 4: // short decimals
            d = pick(-100000, 100000) / 100.0;
            break;
        case 5: // integers held as doubles
            d = static_cast<double>(pick(-1000000, 1000000)) * std::pow(10.0, pick(0, 25));
            break;
        case 6: {
            constexpr std::array<double, 12> kSpecial = {0.0,
                                                         -0.0,
                                                         1.0,
                                                         -1.0,
                                                         0.1,
                                                         1e21,
                                                         1e-7,
                                                         5e-324,
                                                         2.2250738585072014e-308,
                                                         std::numeric_limits<double>::max(),
                                                         std::numeric_limits<double>::epsilon(),
                                                         std::numeric_limits<double>::quiet_NaN()};
            d = kSpecial[static_cast<std::size_t>(pick(0, 11))];
            break;
        }
        default: // ordinary magnitudes
            d = std::bit_cast<double>((bits & 0x800F'FFFF'FFFF'FFFFULL) |
                                      exponent(1023 - 30 + pick(0, 60)));
            break;
        }
        if (clean_ && !std::isfinite(d)) {
            d = 0.5;
        }
        return d;
    }

    std::uint32_t code_point() {
        switch (pick(0, 3)) {
        case 0:
            return static_cast<std::uint32_t>(pick(0x20, 0x7e));
        case 1:
            return static_cast<std::uint32_t>(pick(0x80, 0x7ff));
        case 2: {
            const auto cp = static_cast<std::uint32_t>(pick(0x800, 0xffff));
            return cp >= 0xd800 && cp <= 0xdfff ? 0xfffd : cp;
        }
        default:
            return static_cast<std::uint32_t>(pick(0x10000, 0x10ffff));
        }
    }

    static void append_code_point(std::string& s, std::uint32_t cp) {
        if (cp < 0x80) {
            s += static_cast<char>(cp);
        } else if (cp < 0x800) {
            s += static_cast<char>(0xC0 | (cp >> 6));
            s += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            s += static_cast<char>(0xE0 | (cp >> 12));
            s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            s += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            s += static_cast<char>(0xF0 | (cp >> 18));
            s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            s += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }

    std::mt19937_64 rng_;
    bool clean_;
};

/// Control character `c` as nlohmann escapes it.
std::string expected_escape(unsigned char c) {
    switch (c) {
    case '\b':
        return "\\b";
    case '\f':
        return "\\f";
    case '\n':
        return "\\n";
    case '\r':
        return "\\r";
    case '\t':
        return "\\t";
    default: {
        constexpr std::string_view kHex = "0123456789abcdef";
        std::string out = "\\u00";
        out += kHex[c >> 4U];
        out += kHex[c & 0xFU];
        return out;
    }
    }
}

/// Built once, destroyed at exit after this thread's frame pool: exercises the dead-pool path.
const Json& static_value() {
    static const Json value{{"static", "a value that lives until exit, past the pool"},
                            {"n", {1, 2, 3}}};
    return value;
}

} // namespace

TEST_SUITE("web_json") {

    // --- Json is a full nlohmann value -----------------------------------------------------------

    TEST_CASE("Json is built from initializer lists, std::string and std::string_view") {
        const Json j{
            {"message", "Hello, World!"}, {"n", 3}, {"a", {1, 2, 3}}, {"o", {{"k", nullptr}}}};
        REQUIRE(j.is_object());
        CHECK(j.size() == 4);
        CHECK(j["message"] == "Hello, World!");
        CHECK(j["n"].get<int>() == 3);
        CHECK(j["a"].is_array());
        CHECK(j["a"][2] == 3);
        CHECK(j["o"]["k"].is_null());
        CHECK(str(j.dump()) == R"({"a":[1,2,3],"message":"Hello, World!","n":3,"o":{"k":null}})");

        const std::string s = "a std::string longer than the inline buffer";
        const std::string_view sv = "a view";
        const Json from_string = s;
        const Json from_view = sv;
        const Json from_literal = "literal";
        const Json from_js = JsonString("pooled");
        CHECK(from_string.is_string());
        CHECK(from_string == s);
        CHECK(from_view == sv);
        CHECK(from_view == "a view");
        CHECK(from_literal.get<std::string>() == "literal");
        CHECK(from_js.get_ref<const JsonString&>() == "pooled");

        Json built;
        built[s] = sv;
        built[sv] = s;
        built["n"]["m"] = 2.5;
        built[std::string("k")] = {true, false, nullptr};
        CHECK(
            str(built.dump()) ==
            R"({"a std::string longer than the inline buffer":"a view","a view":"a std::string longer than the inline buffer","k":[true,false,null],"n":{"m":2.5}})");

        // containers of std types in and out
        const std::map<std::string, int> m{{"one", 1}, {"two", 2}};
        const Json from_map = m;
        CHECK(from_map["two"] == 2);
        CHECK((from_map.get<std::map<std::string, int>>() == m));
        const std::vector<std::string> v{"x", "y"};
        const Json from_vector = v;
        CHECK(from_vector.get<std::vector<std::string>>() == v);
    }

    TEST_CASE("Json keys work as std::string, std::string_view and literals") {
        Json j{{"alpha", 1}, {"beta", 2}};
        const std::string alpha = "alpha";
        const std::string_view beta = "beta";
        CHECK(j.contains(alpha));
        CHECK(j.contains(beta));
        CHECK(j.contains("alpha"));
        CHECK_FALSE(j.contains(std::string("gamma")));
        CHECK(j.count(alpha) == 1);
        CHECK(j.find(beta) != j.end());
        CHECK(j.find(beta).value() == 2);
        CHECK(j.at(alpha) == 1);
        CHECK(j.value(alpha, 0) == 1);
        CHECK(j.value(std::string("gamma"), 7) == 7);
        CHECK(str(j.value("gamma", "default")) ==
              "default"); // value() with a literal gives JsonString
        CHECK(Json{{"s", "t"}}.value("s", std::string("x")) == "t");
        CHECK(j.erase(alpha) == 1);
        CHECK(j.erase(beta) == 1);
        CHECK(j.empty());

        // mixed string comparisons (the ADL operators in json.hpp)
        const JsonString pooled = "same";
        CHECK(pooled == std::string("same"));
        CHECK(std::string("same") == pooled);
        CHECK(pooled != std::string("other"));
        CHECK(pooled < std::string("tame"));
        CHECK(std::string("rame") < pooled);
    }

    TEST_CASE("Json values convert out to std types") {
        const Json j = Json::parse(R"({"s":"text","i":-5,"u":5,"d":0.25,"b":true,"a":["p","q"]})");
        CHECK(j["s"].get<std::string>() == "text");
        CHECK(j["s"].get<std::string_view>() == "text");
        std::string out;
        j["s"].get_to(out);
        CHECK(out == "text");
        const std::string implicit = j["s"];
        CHECK(implicit == "text");
        CHECK(j["i"].get<int>() == -5);
        CHECK(j["u"].get<unsigned>() == 5U);
        CHECK(j["d"].get<double>() == 0.25);
        CHECK(j["b"].get<bool>());
        CHECK(j["a"].get<std::vector<std::string>>() == std::vector<std::string>{"p", "q"});
        CHECK(j.at(Json::json_pointer("/a/1")) == "q");
    }

    TEST_CASE("Json parses, iterates, compares and dumps") {
        const std::string_view text =
            R"({"z":[1,-2,3.5,"x",null,true,{}],"a":{"nested":[[]]},"u":"\u00e9\ud834\udd1e"})";
        const Json j = Json::parse(text);
        const Json from_string = Json::parse(std::string(text));
        const Json from_iterators = Json::parse(text.begin(), text.end());
        CHECK(j == from_string);
        CHECK(j == from_iterators);
        CHECK(j["u"] == "\xC3\xA9\xF0\x9D\x84\x9E");

        std::vector<std::string> keys;
        for (const auto& [key, value] : j.items()) {
            keys.emplace_back(key);
            CHECK_FALSE(value.is_null());
        }
        CHECK(keys == std::vector<std::string>{"a", "u", "z"}); // std::map: sorted
        int numbers = 0;
        for (const Json& element : j["z"]) {
            numbers += element.is_number() ? 1 : 0;
        }
        CHECK(numbers == 3);

        Json other = j;
        CHECK(other == j);
        other["z"][0] = 2;
        CHECK(other != j);
        CHECK(j < other);
        CHECK(Json(1) < Json(2));
        CHECK(Json("a") < Json("b"));
        CHECK(Json(1) == Json(1.0));

        CHECK(str(j.dump()) == R"({"a":{"nested":[[]]},"u":"é𝄞","z":[1,-2,3.5,"x",null,true,{}]})");
        CHECK(str(j.dump(-1, ' ', true)) ==
              R"({"a":{"nested":[[]]},"u":"\u00e9\ud834\udd1e","z":[1,-2,3.5,"x",null,true,{}]})");
        CHECK(str(Json::parse("[1,2]").dump(2)) == "[\n  1,\n  2\n]");

        const Json bad = Json::parse("{oops", nullptr, false);
        CHECK(bad.is_discarded());
        CHECK_THROWS_AS(std::ignore = Json::parse("[1,"), Json::parse_error);
    }

    TEST_CASE("Json::parse round trip through write_json") {
        const std::string_view text =
            R"({"array":[1,2,[3,[4,[]]],{}],"empty":"","escapes":"\"\\\/\b\f\n\r\t\u0001\u001f","float":-1.5e-300,)"
            R"("int":-9223372036854775808,"max":18446744073709551615,"obj":{"k":{"k":{"k":null}}},"utf8":"\u20ac"})";
        const Json parsed = Json::parse(text);
        const std::string out = written(parsed);
        CHECK(out == dumped(parsed));
        CHECK(Json::parse(out) == parsed);
        CHECK(
            out ==
            R"({"array":[1,2,[3,[4,[]]],{}],"empty":"","escapes":"\"\\/\b\f\n\r\t\u0001\u001f","float":-1.5e-300,)"
            R"("int":-9223372036854775808,"max":18446744073709551615,"obj":{"k":{"k":{"k":null}}},"utf8":"€"})");
    }

    TEST_CASE("Json copies and moves keep their contents") {
        Json original{{"key", "a string longer than fifteen bytes"}, {"list", {1, 2, 3}}};
        Json copy = original;
        CHECK(copy == original);
        copy["list"].push_back(4);
        CHECK(original["list"].size() == 3);
        CHECK(copy["list"].size() == 4);

        Json moved = std::move(copy);
        CHECK(moved["list"].size() == 4);
        CHECK(copy.is_null()); // NOLINT(bugprone-use-after-move): nlohmann leaves null behind

        Json assigned;
        assigned = original;
        CHECK(assigned == original);
        assigned = std::move(moved);
        CHECK(assigned["list"].size() == 4);
        swap(assigned, original);
        CHECK(original["list"].size() == 4);
        CHECK(assigned["list"].size() == 3);
        CHECK(written(original) == dumped(original));
    }

    TEST_CASE("Json values outlive the thread that built them") {
        Json made;
        std::thread([&made] {
            Json local{{"k", "a string long enough for a pooled block"}, {"a", {1, 2, 3}}};
            local["nested"] = {{"x", std::string(300, 'x')}, {"big", Json::array()}};
            for (int i = 0; i < 500; ++i) {
                local["nested"]["big"].push_back(i); // grows past FramePool's 4 KiB classes
            }
            made = std::move(local);
        }).join();
        // The builder thread and its pool are gone; the value lives on and is freed here.
        CHECK(made["k"] == "a string long enough for a pooled block");
        CHECK(made["nested"]["big"].size() == 500);
        CHECK(written(made) == dumped(made));
        made["added"] = "on the main thread";

        // And the other way round: built here, copied into threads, destroyed there.
        std::array<std::string, 2> seen;
        std::array<std::thread, 2> threads;
        for (std::size_t t = 0; t < threads.size(); ++t) {
            threads[t] = std::thread([copy = made, &slot = seen[t]]() mutable {
                Json sink = std::move(copy);
                sink["thread"] = "worker";
                slot = written(sink);
            });
        }
        for (auto& thread : threads) {
            thread.join();
        }
        Json expected = made;
        expected["thread"] = "worker";
        CHECK(seen[0] == dumped(expected));
        CHECK(seen[1] == dumped(expected));

        CHECK(written(static_value()) ==
              R"({"n":[1,2,3],"static":"a value that lives until exit, past the pool"})");
    }

    // --- write_json == dump(replace)
    // ---------------------------------------------------------------

    TEST_CASE("write_json: null, booleans and integers") {
        CHECK(written(Json()) == "null");
        CHECK(written(Json(nullptr)) == "null");
        CHECK(written(Json(true)) == "true");
        CHECK(written(Json(false)) == "false");
        const std::array<std::int64_t, 8> ints = {0,
                                                  1,
                                                  -1,
                                                  9,
                                                  -10,
                                                  1234567890,
                                                  std::numeric_limits<std::int64_t>::min(),
                                                  std::numeric_limits<std::int64_t>::max()};
        for (const std::int64_t i : ints) {
            CAPTURE(i);
            check_same(Json(i));
            CHECK(written(Json(i)) == std::to_string(i));
        }
        const std::array<std::uint64_t, 4> uints = {0, 10, std::uint64_t{1} << 63U,
                                                    std::numeric_limits<std::uint64_t>::max()};
        for (const std::uint64_t u : uints) {
            CAPTURE(u);
            check_same(Json(u));
            CHECK(written(Json(u)) == std::to_string(u));
        }
        CHECK(written(Json(std::numeric_limits<std::int64_t>::min())) == "-9223372036854775808");
        CHECK(written(Json(std::numeric_limits<std::uint64_t>::max())) == "18446744073709551615");
    }

    TEST_CASE("write_json: doubles as nlohmann prints them") {
        const std::array<std::pair<double, std::string_view>, 14> known = {{
            {0.0, "0.0"},
            {-0.0, "-0.0"},
            {1.0, "1.0"},
            {-2.5, "-2.5"},
            {0.1, "0.1"},
            {1e21, "1e+21"},
            {1e-7, "1e-07"},
            {123456789012345680.0, "1.2345678901234568e+17"},
            {5e-324, "5e-324"},
            {std::numeric_limits<double>::max(), "1.7976931348623157e+308"},
            {std::numeric_limits<double>::min(), "2.2250738585072014e-308"},
            {std::numeric_limits<double>::quiet_NaN(), "null"},
            {std::numeric_limits<double>::infinity(), "null"},
            {-std::numeric_limits<double>::infinity(), "null"},
        }};
        for (const auto& pair : known) {
            CAPTURE(pair.second);
            check_same(Json(pair.first));
            CHECK(written(Json(pair.first)) == pair.second);
        }
        // A sweep over powers and their neighbours, subnormals included.
        for (int e = -324; e <= 308; ++e) {
            const double d = std::pow(10.0, e);
            check_same(Json(d));
            check_same(Json(std::nextafter(d, 0.0)));
            check_same(Json(-std::nextafter(d, 1e308)));
        }
    }

    TEST_CASE("write_json: every escape and every control character") {
        for (unsigned c = 0; c < 0x20; ++c) {
            const std::string s(1, static_cast<char>(c));
            CAPTURE(c);
            check_same(Json(s));
            CHECK(written(Json(s)) ==
                  cat("\"", expected_escape(static_cast<unsigned char>(c)), "\""));
        }
        CHECK(written(Json("\"")) == R"("\"")");
        CHECK(written(Json("\\")) == R"("\\")");
        CHECK(written(Json("/")) == R"("/")");      // not escaped
        CHECK(written(Json("\x7f")) == "\"\x7f\""); // DEL is not escaped either
        CHECK(written(Json(std::string_view("a\0b", 3))) == R"("a\u0000b")");
        CHECK(written(Json("\x1f\x0b")) == R"("\u001f\u000b")");
        const std::string all_ascii = [] {
            std::string s;
            for (int c = 0; c < 0x80; ++c) {
                s += static_cast<char>(c);
            }
            return s + s; // long enough for the 8-byte fast path, escapes at every offset
        }();
        check_same(Json(all_ascii));
        check_same(Json(cat(std::string(1000, 'x'), "\"", std::string(7, 'y'), "\\")));
    }

    TEST_CASE("write_json: valid UTF-8 is kept, invalid UTF-8 is replaced like nlohmann") {
        const std::string_view r = "\xEF\xBF\xBD"; // U+FFFD
        // clang-format off
    const std::array<std::pair<std::string_view, std::string>, 17> cases = {{
        {"\xC3\xA9", "\xC3\xA9"},
        {"\xE2\x82\xAC", "\xE2\x82\xAC"},
        {"\xF0\x9D\x84\x9E", "\xF0\x9D\x84\x9E"},
        {"\xF4\x8F\xBF\xBF", "\xF4\x8F\xBF\xBF"},
        {"\x80", cat(r)},                       // stray continuation byte
        {"\xFF", cat(r)},                       // never valid
        {"\xC0\xAF", cat(r, r)},                // overlong: C0 starts nothing
        {"\xE0\x80\xAF", cat(r, r, r)},         // overlong after a valid lead
        {"\xED\xA0\x80", cat(r, r, r)},         // surrogate
        {"\xF4\x90\x80\x80", cat(r, r, r, r)}, // above U+10FFFF
        {"\xE2\x82", cat(r)},                   // truncated at the end: one U+FFFD
        {"\xF0\x9D\x84", cat(r)},
        {"\xE2\x82x", cat(r, "x")},             // broken sequence, the next byte is kept
        {"\xE2\x82\"", cat(r, "\\\"")},        // ... and escaped
        {"\xE2\x82\xE2\x82\xAC", cat(r, "\xE2\x82\xAC")},
        {"a\xC3", cat("a", r)},
        {"\xF0\x9D\x84\x9E\xF0", cat("\xF0\x9D\x84\x9E", r)},
    }};
        // clang-format on
        for (const auto& pair : cases) {
            CAPTURE(pair.first);
            const Json j = pair.first;
            check_same(j);
            CHECK(written(j) == cat("\"", pair.second, "\""));
            const nlohmann::json n = pair.first; // the std::string flavour agrees too
            CHECK(written(n) == dumped(n));
        }
        // Invalid keys are repaired as well.
        Json object;
        object[std::string_view("k\xFF")] = "v\xC3";
        CHECK(written(object) == cat("{\"k", r, "\":\"v", r, "\"}"));
        check_same(object);
    }

    TEST_CASE("write_json: arrays, objects, empty ones, binary and other basic_json types") {
        check_same(Json::array());
        check_same(Json::object());
        CHECK(written(Json::array()) == "[]");
        CHECK(written(Json::object()) == "{}");
        CHECK(written(Json{Json::array(), Json::object(), {1, {2, {3, Json::array()}}}}) ==
              "[[],{},[1,[2,[3,[]]]]]");
        const Json nested{{"a", {{"b", {{"c", {1, "two", 3.0, nullptr, false}}}}}},
                          {"e", Json::object()}};
        check_same(nested);
        CHECK(written(nested) == R"({"a":{"b":{"c":[1,"two",3.0,null,false]}},"e":{}})");

        const Json bin = Json::binary({1, 2, 255}, 42);
        check_same(bin);
        CHECK(written(bin) == R"({"bytes":[1,2,255],"subtype":42})");
        CHECK(written(Json::binary({})) == R"({"bytes":[],"subtype":null})");
        check_same(Json::binary({}));

        nlohmann::ordered_json ordered;
        ordered["zebra"] = 1;
        ordered["apple"] = {{"y", 2}, {"x", 3}};
        CHECK(written(ordered) == R"({"zebra":1,"apple":{"y":2,"x":3}})");
        CHECK(written(ordered) == dumped(ordered));

        const nlohmann::json plain = nlohmann::json::parse(R"({"b":[1.5,"s"],"a":null})");
        CHECK(written(plain) == dumped(plain));

        using FloatJson = nlohmann::basic_json<std::map, std::vector, std::string, bool,
                                               std::int64_t, std::uint64_t, float>;
        const FloatJson f = {0.1F, 1e30F, -3.0F};
        CHECK(written(f) == dumped(f));
        CHECK(written(f) == "[0.1,1e+30,-3.0]");
    }

    TEST_CASE("write_json writes a discarded value as null (dump() writes <discarded>)") {
        const Json discarded = Json::parse("{", nullptr, false);
        REQUIRE(discarded.is_discarded());
        CHECK(written(discarded) == "null");
        CHECK(dumped(discarded) == "<discarded>");
    }

    TEST_CASE("json_nesting_within counts brackets outside strings only") {
        CHECK(web::json_nesting_within("", 0));
        CHECK(web::json_nesting_within("1", 0));
        CHECK_FALSE(web::json_nesting_within("[]", 0));
        CHECK(web::json_nesting_within("[]", 1));
        CHECK(web::json_nesting_within("[[],{},[1]]", 2));
        CHECK_FALSE(web::json_nesting_within("[[],{\"a\":[]}]", 2));
        CHECK(web::json_nesting_within("[[],{\"a\":[]}]", 3));
        // Brackets inside strings, also after escaped quotes and backslashes, are data.
        CHECK(web::json_nesting_within(R"(["[[[[", "\"[[[", "\\", "{{"])", 1));
        CHECK_FALSE(web::json_nesting_within(R"(["\\", [[]]])", 2));
        // Unbalanced input neither underflows nor counts closers as openers.
        CHECK(web::json_nesting_within("]]]]][", 1));
        CHECK(web::json_nesting_within("\"unterminated [[[", 0));
        const std::string deep = std::string(web::kMaxJsonDepth, '[') + std::string(web::kMaxJsonDepth, ']');
        CHECK(web::json_nesting_within(deep, web::kMaxJsonDepth));
        CHECK_FALSE(web::json_nesting_within("[" + deep + "]", web::kMaxJsonDepth));
    }

    TEST_CASE("write_json writes kMaxJsonDepth levels and refuses one more instead of exhausting the stack") {
        Json value = Json::array();
        for (std::size_t i = 1; i < web::kMaxJsonDepth; ++i) {
            Json outer = Json::array();
            outer.push_back(std::move(value));
            value = std::move(outer);
        }
        const std::string text = std::string(web::kMaxJsonDepth, '[') + std::string(web::kMaxJsonDepth, ']');
        CHECK(written(value) == text);
        Json deeper = Json::object();
        deeper["k"] = std::move(value);
        ByteBuffer out;
        CHECK_THROWS_AS(web::write_json(out, deeper), std::length_error);
        // Far past the limit the writer still stops at the limit (one recursion per level
        // overflowed ASan's stack near 32,000 levels).
        const auto parsed = Json::parse(std::string(100000, '[') + std::string(100000, ']'));
        CHECK_THROWS_AS(web::write_json(out, parsed), std::length_error);
    }

    TEST_CASE("write_json equals dump() on thousands of random values") {
        constexpr int kValues = 4000;
        Generator<Json> pooled(20240601, false);
        Generator<nlohmann::json> plain(20240601, false);
        ByteBuffer shared; // one buffer for all: write_json appends, never rewrites
        std::string concatenated;
        std::size_t bytes = 0;
        std::size_t replaced = 0;
        for (int i = 0; i < kValues; ++i) {
            const Json j = pooled.value(i % 5);
            const nlohmann::json n = plain.value(i % 5);
            const std::string expected = dumped(j);
            CAPTURE(i);
            REQUIRE(dumped(n) == expected); // same generator, same value in both flavours
            CHECK(written(j) == expected);
            CHECK(written(n) == expected);
            web::write_json(shared, j);
            concatenated += expected;
            bytes += expected.size();
            replaced += expected.find("\xEF\xBF\xBD") != std::string::npos ? 1 : 0;
        }
        CHECK(shared.view() == concatenated);
        MESSAGE(kValues << " random values, " << bytes << " bytes, " << replaced << " with U+FFFD");
        CHECK(replaced > 100); // the generator does produce invalid UTF-8
        CHECK(bytes > 100'000);
    }

    TEST_CASE("random valid values round-trip through write_json and Json::parse") {
        Generator<Json> clean(7, true);
        for (int i = 0; i < 1500; ++i) {
            const Json j = clean.value(i % 5);
            const std::string out = written(j);
            CAPTURE(out);
            CHECK(out == dumped(j));
            CHECK(Json::parse(out) == j);
        }
    }

    TEST_CASE("random strings, one at a time, equal dump()") {
        Generator<Json> gen(99, false);
        std::size_t total = 0;
        for (int i = 0; i < 20000; ++i) {
            const std::string s = gen.string();
            const Json j = std::string_view(s);
            const std::string expected = dumped(j);
            CAPTURE(s);
            CHECK(written(j) == expected);
            total += s.size();
        }
        CHECK(total > 500'000);
    }

    // --- the allocator and zero heap allocation
    // ----------------------------------------------------

    TEST_CASE(
        "PoolAllocator serves from the frame pool, zero-sized and oversized requests included") {
        web::PoolAllocator<int> ints;
        const web::PoolAllocator<char> chars(ints);
        CHECK(ints == chars);
        int* none = ints.allocate(0);
        CHECK(none != nullptr);
        ints.deallocate(none, 0);
        int* many = ints.allocate(5000); // above the largest class: heap
        many[4999] = 7;
        CHECK(many[4999] == 7);
        ints.deallocate(many, 5000);
        CHECK_THROWS_AS(
            static_cast<void>(ints.allocate(std::numeric_limits<std::size_t>::max() / 2)),
            std::bad_array_new_length);
#if !RINGWORK_TEST_FRAME_POOL_DISABLED
        int* a = ints.allocate(10);
        ints.deallocate(a, 10);
        const auto before = FramePool::stats();
        int* b = ints.allocate(10);
        const auto after = FramePool::stats();
        CHECK(b == a); // the same block, straight off the free list
        CHECK(after.hits == before.hits + 1);
        ints.deallocate(b, 10);
#endif
    }

    TEST_CASE("building and writing a small Json allocates nothing after warm-up") {
#if RINGWORK_TEST_FRAME_POOL_DISABLED
        MESSAGE("skipped: -Dframe_pool=disabled sends every pool allocation to the heap");
        const auto before = FramePool::stats();
        CHECK(written(Json{{"message", "Hello, World!"}}) == R"({"message":"Hello, World!"})");
        CHECK(FramePool::stats().hits == before.hits); // and indeed the pool is bypassed
#else
        ByteBuffer out(4096);
        const std::uint32_t grows = out.grows();
        std::size_t total = 0;
        const auto hello = [&] {
            out.clear();
            const Json j{{"message", "Hello, World!"}};
            web::write_json(out, j);
            total += out.size();
        };
        const auto richer = [&] {
            out.clear();
            Json j{{"id", 42},
                   {"name", "a name longer than the inline string buffer"},
                   {"tags", {"x", "y", "z"}},
                   {"score", 0.5},
                   {"nested", {{"ok", true}, {"none", nullptr}}}};
            j["extra"] = std::string_view("added after construction, also long");
            web::write_json(out, j);
            total += out.size();
        };
        for (int i = 0; i < 16; ++i) { // warm-up: fills the pool's size classes
            hello();
            richer();
        }
        const auto pool_before = FramePool::stats();
#ifndef TEST_NO_HEAP_COUNTER
        const std::size_t heap_before = test::g_heap_allocations.load();
#endif
        for (int i = 0; i < 10'000; ++i) {
            hello();
        }
        for (int i = 0; i < 1'000; ++i) {
            richer();
        }
#ifndef TEST_NO_HEAP_COUNTER
        const std::size_t heap_after = test::g_heap_allocations.load();
        CHECK(heap_after - heap_before == 0);
#endif
        const auto pool_after = FramePool::stats();
        CHECK(pool_after.misses == pool_before.misses);      // works under ASan as well
        CHECK(pool_after.hits - pool_before.hits >= 10'000); // the pool did serve the values
        CHECK(out.grows() == grows);
        hello();
        CHECK(out.view() == R"({"message":"Hello, World!"})");
        CHECK(total > 0);
#endif
    }

    TEST_CASE(
        "nlohmann::json with std::allocator allocates for the same value (the counter works)") {
        { // In every configuration: Json draws from the frame pool, nlohmann::json never does.
            const auto before = FramePool::stats();
            const nlohmann::json n{{"message", "Hello, World!"}};
            const auto middle = FramePool::stats();
            const Json j{{"message", "Hello, World!"}};
            const auto after = FramePool::stats();
            CHECK(middle.hits + middle.misses == before.hits + before.misses);
#if RINGWORK_TEST_FRAME_POOL_DISABLED
            CHECK(after.hits + after.misses == middle.hits + middle.misses); // pool bypassed
#else
            CHECK(after.hits + after.misses > middle.hits + middle.misses);
#endif
            CHECK(written(n) == written(j));
        }
#ifdef TEST_NO_HEAP_COUNTER
        MESSAGE("heap counting skipped under ASan/TSan (the sanitizer owns operator new)");
#else
        ByteBuffer out(4096);
        for (int i = 0; i < 4; ++i) { // same warm-up as above
            out.clear();
            const nlohmann::json j{{"message", "Hello, World!"}};
            web::write_json(out, j);
        }
        const std::size_t before = test::g_heap_allocations.load();
        {
            const nlohmann::json j{{"message", "Hello, World!"}};
            out.clear();
            web::write_json(out, j);
        }
        const std::size_t built = test::g_heap_allocations.load() - before;
        std::size_t dumped_too = 0;
        {
            const std::size_t start = test::g_heap_allocations.load();
            const nlohmann::json j{{"message", "Hello, World!"}};
            const std::string text = j.dump();
            dumped_too = test::g_heap_allocations.load() - start;
            CHECK(text == out.view());
        }
        MESSAGE("nlohmann::json {\"message\": ...}: " << built << " allocations to build, "
                                                      << dumped_too << " to build and dump()");
        CHECK(built > 0);
        CHECK(dumped_too > built);
#endif
    }

    TEST_CASE("write_json into a buffer with room does not grow it; a small one grows as needed") {
        const Json j{{"list", Json::array()}};
        Json big = j;
        for (int i = 0; i < 200; ++i) {
            big["list"].push_back(cat("item number ", std::to_string(i)));
        }
        const std::string expected = dumped(big);
        ByteBuffer roomy(expected.size() + 16);
        web::write_json(roomy, big);
        CHECK(roomy.grows() == 0);
        CHECK(roomy.view() == expected);
        ByteBuffer tiny(8);
        web::write_json(tiny, big);
        CHECK(tiny.grows() > 0);
        CHECK(tiny.view() == expected);
    }

} // TEST_SUITE
