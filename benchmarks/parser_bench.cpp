// SPDX-License-Identifier: MIT
// Request-head parsing throughput: ringwork's RequestParser against Debian's http-parser (Node's
// old parser).
#include <ringwork/http/parser.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <http_parser.h>
#include <string>
#include <string_view>
#include <vector>

namespace http = ringwork::http;

namespace {

/// Keeps the compiler from proving `value` unused (the classic empty-asm barrier).
template <typename T>
inline void do_not_optimize(const T& value) {
    asm volatile("" : : "r,m"(value) : "memory");
}

constexpr std::string_view kBrowserGet =
    "GET /articles/2024/ringwork-io-uring?utm_source=feed HTTP/1.1\r\n"
    "Host: www.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Referer: https://www.example.com/articles/\r\n"
    "Cookie: session=8f14e45fceea167a; theme=dark\r\n"
    "Connection: keep-alive\r\n"
    "Upgrade-Insecure-Requests: 1\r\n"
    "Sec-Fetch-Dest: document\r\n"
    "Sec-Fetch-Mode: navigate\r\n"
    "Sec-Fetch-Site: same-origin\r\n"
    "\r\n";

constexpr std::string_view kMinimalGet = "GET /plaintext HTTP/1.1\r\nHost: localhost\r\n\r\n";

constexpr std::size_t kMaxHeaders = 64;

// --- ringwork ---------------------------------------------------------------------------------

struct Ours {
    http::RequestParser parser;
    http::RequestHead head;
    std::array<http::Header, kMaxHeaders> storage{};

    std::size_t run(std::vector<char>& buf) {
        parser.reset();
        const http::ParseResult r = parser.parse({buf.data(), buf.size()}, head, storage);
        do_not_optimize(head);
        if (!r.complete()) {
            std::fprintf(stderr, "ringwork: parse failed: %s\n",
                         std::string(http::describe(r.error)).c_str());
            std::exit(1);
        }
        return head.headers.size();
    }
};

// --- http-parser: header views collected into an array, like ours -----------------------------

struct TheirsState {
    std::array<http::Header, kMaxHeaders> headers{};
    std::size_t count = 0;
    std::string_view url;
    bool in_value = false;
    bool complete = false;
};

TheirsState& state_of(http_parser* p) {
    return *static_cast<TheirsState*>(p->data);
}

int on_url(http_parser* p, const char* at, std::size_t len) {
    state_of(p).url = {at, len};
    return 0;
}

int on_header_field(http_parser* p, const char* at, std::size_t len) {
    TheirsState& s = state_of(p);
    if (s.in_value || s.count == 0) { // a new field (else: the name continues in a later piece)
        if (s.count == kMaxHeaders) {
            return 1;
        }
        s.headers[s.count++] = http::Header{{at, len}, {}};
        s.in_value = false;
    } else {
        auto& name = s.headers[s.count - 1].name;
        name = {name.data(), name.size() + len};
    }
    return 0;
}

int on_header_value(http_parser* p, const char* at, std::size_t len) {
    TheirsState& s = state_of(p);
    auto& value = s.headers[s.count - 1].value;
    value =
        s.in_value ? std::string_view(value.data(), value.size() + len) : std::string_view(at, len);
    s.in_value = true;
    return 0;
}

int on_message_complete(http_parser* p) {
    state_of(p).complete = true;
    return 0;
}

struct Theirs {
    http_parser parser{};
    http_parser_settings settings{};
    TheirsState state;

    Theirs() {
        http_parser_settings_init(&settings);
        settings.on_url = on_url;
        settings.on_header_field = on_header_field;
        settings.on_header_value = on_header_value;
        settings.on_message_complete = on_message_complete;
    }

    std::size_t run(std::vector<char>& buf) {
        http_parser_init(&parser, HTTP_REQUEST);
        parser.data = &state;
        state.count = 0;
        state.in_value = false;
        state.complete = false;
        const std::size_t n = http_parser_execute(&parser, &settings, buf.data(), buf.size());
        do_not_optimize(state);
        if (n != buf.size() || HTTP_PARSER_ERRNO(&parser) != HPE_OK || !state.complete) {
            std::fprintf(stderr, "http-parser: failed: %s\n",
                         http_errno_name(HTTP_PARSER_ERRNO(&parser)));
            std::exit(1);
        }
        return state.count;
    }
};

struct Measurement {
    double ns_per_request = 0;
    double mb_per_s = 0;
    double requests_per_s = 0;
};

/// Runs `parser` on `input` for about `seconds` (batches of `batch`), best of `trials`.
template <typename Parser>
Measurement measure(Parser& parser, std::string_view input, double seconds, int trials) {
    std::vector<char> buf(input.begin(), input.end());
    constexpr std::size_t batch = 10000;
    for (std::size_t i = 0; i < batch; ++i) { // warm up caches and branch predictors
        parser.run(buf);
    }
    Measurement best;
    for (int t = 0; t < trials; ++t) {
        using Clock = std::chrono::steady_clock;
        const auto start = Clock::now();
        std::size_t iterations = 0;
        double elapsed = 0;
        do {
            for (std::size_t i = 0; i < batch; ++i) {
                parser.run(buf);
            }
            iterations += batch;
            elapsed = std::chrono::duration<double>(Clock::now() - start).count();
        } while (elapsed < seconds / trials);
        Measurement m;
        m.ns_per_request = elapsed * 1e9 / static_cast<double>(iterations);
        m.requests_per_s = static_cast<double>(iterations) / elapsed;
        m.mb_per_s = m.requests_per_s * static_cast<double>(input.size()) / 1e6;
        if (t == 0 || m.ns_per_request < best.ns_per_request) {
            best = m;
        }
    }
    return best;
}

void print_row(const char* parser, const Measurement& m) {
    std::printf("  %-12s %9.1f ns/req %10.1f MB/s %12.0f req/s\n", parser, m.ns_per_request,
                m.mb_per_s, m.requests_per_s);
}

} // namespace

int main(int argc, char** argv) {
    const double seconds = argc > 1 ? std::atof(argv[1]) : 1.0; // per parser and input
    constexpr int trials = 3;
    struct Input {
        const char* name;
        std::string_view bytes;
    };
    const Input inputs[] = {{"browser GET", kBrowserGet}, {"minimal GET", kMinimalGet}};
    std::printf("parser_bench: http-parser %lu.%lu.%lu, %.2f s per parser and input, best of %d\n",
                (http_parser_version() >> 16) & 255, (http_parser_version() >> 8) & 255,
                http_parser_version() & 255, seconds, trials);
    for (const Input& in : inputs) {
        Ours ours;
        Theirs theirs;
        std::vector<char> check(in.bytes.begin(), in.bytes.end());
        const std::size_t ours_fields = ours.run(check);
        const std::size_t their_fields = theirs.run(check);
        if (ours_fields != their_fields) {
            std::fprintf(stderr, "header counts differ: %zu vs %zu\n", ours_fields, their_fields);
            return 1;
        }
        std::printf("%s (%zu bytes, %zu header fields)\n", in.name, in.bytes.size(), ours_fields);
        const Measurement a = measure(ours, in.bytes, seconds, trials);
        const Measurement b = measure(theirs, in.bytes, seconds, trials);
        print_row("ringwork", a);
        print_row("http-parser", b);
        std::printf("  ratio        %9.2fx faster\n", b.ns_per_request / a.ns_per_request);
    }
    return 0;
}
