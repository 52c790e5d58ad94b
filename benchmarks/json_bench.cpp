// SPDX-License-Identifier: MIT
// JSON response bodies: web::Json + web::write_json against nlohmann::json + dump() (ns per
// body and heap allocations per body, one thread). Every pair is checked for identical output.
#include <ringwork/web/json.hpp>

#include "micro_bench.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace web = ringwork::web;
using ringwork::http::ByteBuffer;

namespace {

using bench::do_not_optimize;
using bench::Timing;

/// `op` once per operation: 1,024 of warm-up, then timed in batches of 64.
template <class Op>
Timing measure(Op op, std::chrono::milliseconds budget) {
    return bench::measure(
        [&] {
            for (int i = 0; i < 64; ++i) {
                op();
            }
        },
        64, budget, 16);
}

void report(const char* name, std::size_t bytes, const Timing& t) {
    std::printf("%-52s %6zu B  %9.1f ns (best %9.1f)  %6.2f allocs\n", name, bytes, t.median,
                t.best, t.allocations);
}

/// Output of write_json and dump() must agree before anything is timed.
template <class BasicJson>
std::string check_same(const BasicJson& value, const char* what) {
    ByteBuffer out;
    web::write_json(out, value);
    const auto dumped = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (out.view() != std::string_view(dumped.data(), dumped.size())) {
        std::fprintf(stderr, "json_bench: write_json and dump() differ for %s\n", what);
        std::exit(1);
    }
    return std::string(out.view());
}

/// A TechEmpower "queries" body: [{"id":..,"randomNumber":..}, ...].
template <class BasicJson>
BasicJson worlds(std::size_t n) {
    BasicJson array = BasicJson::array();
    for (std::size_t i = 0; i < n; ++i) {
        array.push_back(
            {{"id", 1 + (i * 7919) % 10000}, {"randomNumber", 1 + (i * 104729) % 10000}});
    }
    return array;
}

/// Objects with text fields: ASCII, a few escapes, some UTF-8.
template <class BasicJson>
BasicJson articles(std::size_t n) {
    BasicJson array = BasicJson::array();
    for (std::size_t i = 0; i < n; ++i) {
        std::string title = "Coroutines on io_uring, part ";
        title += std::to_string(i);
        array.push_back(
            {{"id", i},
             {"title", title},
             {"body",
              "Line one of a reasonably long paragraph of body text.\nLine two with a \"quote\" "
              "and a tab\there; caf\xC3\xA9 cr\xC3\xA8me br\xC3\xBBl\xC3\xA9"
              "e \xE2\x82\xAC 12."},
             {"tags", {"c++", "io_uring", "http"}},
             {"published", i % 2 == 0}});
    }
    return array;
}

template <class BasicJson>
BasicJson doubles(std::size_t n) {
    std::mt19937_64 rng(42);
    std::uniform_real_distribution<double> dist(-1e6, 1e6);
    BasicJson array = BasicJson::array();
    for (std::size_t i = 0; i < n; ++i) {
        array.push_back(dist(rng));
    }
    return array;
}

/// Serializing a prebuilt value: write_json into a reused buffer vs dump() + copy into it.
template <class Make>
void compare_serialize(const char* name, Make make) {
    const auto pooled = make.template operator()<web::Json>();
    const auto plain = make.template operator()<nlohmann::json>();
    const std::size_t bytes = check_same(pooled, name).size();
    check_same(plain, name);
    ByteBuffer out(bytes + 64);
    const auto budget = std::chrono::milliseconds(400);
    std::string label = name;
    label += ": Json, write_json";
    report(label.c_str(), bytes,
           measure(
               [&] {
                   out.clear();
                   web::write_json(out, pooled);
                   do_not_optimize(out);
               },
               budget));
    label = name;
    label += ": nlohmann::json, write_json";
    report(label.c_str(), bytes,
           measure(
               [&] {
                   out.clear();
                   web::write_json(out, plain);
                   do_not_optimize(out);
               },
               budget));
    label = name;
    label += ": nlohmann::json, dump() + append";
    report(label.c_str(), bytes,
           measure(
               [&] {
                   out.clear();
                   const std::string text =
                       plain.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
                   out.append(text);
                   do_not_optimize(out);
               },
               budget));
}

} // namespace

int main() {
#ifdef TEST_NO_HEAP_COUNTER
    std::printf("(built with ASan: allocation counts unavailable, timings meaningless)\n");
#endif
    std::printf("%-52s %8s  %9s\n", "case", "body", "per body");
    ByteBuffer out(4096);
    const auto budget = std::chrono::milliseconds(400);

    // The TechEmpower "json" test: build {"message":"Hello, World!"} and serialize it.
    check_same(web::Json{{"message", "Hello, World!"}}, "hello");
    report("hello, build + serialize: Json + write_json", 27,
           measure(
               [&] {
                   out.clear();
                   const web::Json j{{"message", "Hello, World!"}};
                   web::write_json(out, j);
                   do_not_optimize(out);
               },
               budget));
    report("hello, build + serialize: nlohmann::json + write_json", 27,
           measure(
               [&] {
                   out.clear();
                   const nlohmann::json j{{"message", "Hello, World!"}};
                   web::write_json(out, j);
                   do_not_optimize(out);
               },
               budget));
    report("hello, build + serialize: nlohmann::json + dump()", 27,
           measure(
               [&] {
                   out.clear();
                   const nlohmann::json j{{"message", "Hello, World!"}};
                   const std::string text = j.dump();
                   out.append(text);
                   do_not_optimize(out);
               },
               budget));

    // Building a bigger value (20 worlds) and serializing it.
    report("20 worlds, build + serialize: Json + write_json", 0,
           measure(
               [&] {
                   out.clear();
                   const auto j = worlds<web::Json>(20);
                   web::write_json(out, j);
                   do_not_optimize(out);
               },
               budget));
    report("20 worlds, build + serialize: nlohmann::json + dump()", 0,
           measure(
               [&] {
                   out.clear();
                   const auto j = worlds<nlohmann::json>(20);
                   const std::string text = j.dump();
                   out.append(text);
                   do_not_optimize(out);
               },
               budget));

    // Serializing prebuilt values.
    compare_serialize("20 worlds", []<class J>() { return worlds<J>(20); });
    compare_serialize("50 articles", []<class J>() { return articles<J>(50); });
    compare_serialize("1000 doubles", []<class J>() { return doubles<J>(1000); });
    return 0;
}
