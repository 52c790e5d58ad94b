// SPDX-License-Identifier: MIT
// mw::compress (gzip through a per-thread zlib stream) and mw::etag (body hash, 304).
#include <ringwork/web/compress.hpp>
#include <ringwork/web/form.hpp>

#include <ringwork/web/static.hpp>

#include "http/chars.hpp"

#define ZLIB_CONST
#include <zlib.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>

namespace ringwork::web {

namespace {

using http::detail::ascii_lower;
using http::detail::iequals;
using http::detail::istarts_with;
using web::detail::trim_ows;

/// The media type without parameters ("text/html; charset=utf-8" -> "text/html").
std::string_view media_type(std::string_view content_type) noexcept {
    return trim_ows(content_type.substr(0, content_type.find(';')));
}

/// Whether the comma-separated header value contains `token` (case-insensitive).
bool list_contains(std::string_view list, std::string_view token) noexcept {
    while (!list.empty()) {
        const auto comma = list.find(',');
        if (iequals(trim_ows(list.substr(0, comma)), token)) {
            return true;
        }
        list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    }
    return false;
}

/// What parse_weight() answers for a parameter that is not a weight.
constexpr int kNotWeight = -2;

/// One parameter of an Accept-Encoding element (`param`, trimmed), as a weight: the qvalue
/// ("0", "0.5", "1.000") of `q=<qvalue>` in thousandths; -1 for a malformed weight, which
/// makes the element ignored: weight = OWS ";" OWS "q=" qvalue (RFC 9110 §12.4.2) has no
/// whitespace around '=' ("q =0", "q= 0"), and "q" alone or "q=2" are no weight either;
/// kNotWeight for any other parameter.
int parse_weight(std::string_view param) noexcept {
    if (param.empty() || ascii_lower(param[0]) != 'q' || !trim_ows(param.substr(1, param.find('=') - 1)).empty()) {
        return kNotWeight; // the name is not "q"
    }
    if (param.size() < 3 || param[1] != '=') {
        return -1;
    }
    const std::string_view s = param.substr(2);
    if (s[0] != '0' && s[0] != '1') {
        return -1;
    }
    int whole = s[0] - '0';
    int frac = 0;
    if (s.size() > 1) {
        if (s[1] != '.' || s.size() > 5) {
            return -1;
        }
        int scale = 100;
        for (std::size_t i = 2; i < s.size(); ++i) {
            if (s[i] < '0' || s[i] > '9') {
                return -1;
            }
            frac += (s[i] - '0') * scale;
            scale /= 10;
        }
    }
    const int q = whole * 1000 + frac;
    return q > 1000 ? -1 : q;
}

/// One thread's deflate stream, reused across responses (deflateReset) instead of paying
/// deflateInit2's allocations (~256 KiB of window and hash tables) per response.
struct Deflater {
    z_stream zs{};
    bool ready = false;
    int level = Z_DEFAULT_COMPRESSION;
    Deflater() = default;
    Deflater(const Deflater&) = delete;
    Deflater& operator=(const Deflater&) = delete;
    ~Deflater() {
        if (ready) {
            deflateEnd(&zs);
        }
    }
};

Deflater& thread_deflater(int level) {
    thread_local Deflater d;
    if (!d.ready) {
        // windowBits 15 + 16: a gzip wrapper instead of zlib's.
        if (deflateInit2(&d.zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
            throw std::runtime_error("ringwork: deflateInit2 failed");
        }
        d.ready = true;
        d.level = level;
        return d;
    }
    if (deflateReset(&d.zs) != Z_OK) {
        throw std::runtime_error("ringwork: deflateReset failed");
    }
    if (d.level != level) {
        // Right after a reset no input is pending, so this only switches the parameters.
        if (deflateParams(&d.zs, level, Z_DEFAULT_STRATEGY) != Z_OK) {
            throw std::runtime_error("ringwork: deflateParams failed");
        }
        d.level = level;
    }
    return d;
}

constexpr std::array<std::string_view, 22> kIncompressible{
    "application/octet-stream",
    "application/zip",
    "application/gzip",
    "application/x-gzip",
    "application/x-brotli",
    "application/zstd",
    "application/x-7z-compressed",
    "application/x-bzip2",
    "application/x-xz",
    "application/x-rar-compressed",
    "application/vnd.rar",
    "application/epub+zip",
    "application/java-archive",
    "application/pdf",
    "application/x-shockwave-flash",
    "font/woff",
    "font/woff2",
    "application/font-woff",
    "application/font-woff2",
    "multipart/byteranges",
    "text/event-stream",
    "application/vnd.ms-cab-compressed",
};

/// Give memory back after an unusually large body instead of keeping it per thread.
constexpr std::size_t kScratchKeep = 1U << 20;

void add_vary_accept_encoding(http::Response& res) {
    const std::string_view vary = res.header("Vary");
    if (vary.empty()) {
        res.set_header("Vary", "Accept-Encoding");
        return;
    }
    if (list_contains(vary, "*") || list_contains(vary, "Accept-Encoding")) {
        return;
    }
    std::string merged(vary);
    merged.append(", Accept-Encoding");
    res.set_header("Vary", merged);
}

using http::detail::load64;

constexpr std::uint64_t rotl(std::uint64_t x, unsigned r) noexcept { return (x << r) | (x >> (64U - r)); }

} // namespace

bool compressible_type(std::string_view content_type) noexcept {
    const std::string_view type = media_type(content_type);
    if (type.empty()) {
        return true;
    }
    if (istarts_with(type, "image/")) {
        return iequals(type, "image/svg+xml");
    }
    if (istarts_with(type, "video/") || istarts_with(type, "audio/")) {
        return false;
    }
    return std::none_of(kIncompressible.begin(), kIncompressible.end(),
                        [&](std::string_view t) { return iequals(type, t); });
}

bool accepts_gzip(std::string_view header) noexcept {
    int q_gzip = -1;
    int q_star = -1;
    int q_identity = -1;
    while (!header.empty()) {
        const auto comma = header.find(',');
        std::string_view item = header.substr(0, comma);
        header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);
        const auto semi = item.find(';');
        const std::string_view coding = trim_ows(item.substr(0, semi));
        int q = 1000;
        if (semi != std::string_view::npos) {
            std::string_view params = item.substr(semi + 1);
            while (!params.empty()) {
                const auto next = params.find(';');
                const std::string_view param = trim_ows(params.substr(0, next));
                params = next == std::string_view::npos ? std::string_view{} : params.substr(next + 1);
                if (const int weight = parse_weight(param); weight != kNotWeight && q >= 0) {
                    q = weight;
                }
            }
        }
        if (q < 0 || coding.empty()) {
            continue; // malformed element: ignored
        }
        if (iequals(coding, "gzip") || iequals(coding, "x-gzip")) {
            q_gzip = std::max(q_gzip, q);
        } else if (coding == "*") {
            q_star = std::max(q_star, q);
        } else if (iequals(coding, "identity")) {
            q_identity = std::max(q_identity, q);
        }
    }
    const int gzip = q_gzip >= 0 ? q_gzip : (q_star >= 0 ? q_star : 0);
    if (gzip <= 0) {
        return false;
    }
    return q_identity < 0 || q_identity <= gzip;
}

void gzip_compress(std::string_view data, int level, std::string& out) {
    Deflater& d = thread_deflater(level);
    z_stream& zs = d.zs;
    const std::size_t start = out.size();
    const auto bound = static_cast<std::size_t>(deflateBound(&zs, static_cast<uLong>(data.size())));
    out.resize(start + bound);
    zs.next_in = reinterpret_cast<const Bytef*>(data.data()); // NOLINT: zlib's byte type
    zs.next_out = reinterpret_cast<Bytef*>(out.data() + start); // NOLINT: zlib's byte type
    std::size_t in_left = data.size();
    std::size_t out_left = bound;
    int rc = Z_OK;
    // avail_in / avail_out are 32-bit: feed in slices (max_size keeps us far below anyway).
    do {
        const auto in_now = static_cast<uInt>(std::min<std::size_t>(in_left, UINT_MAX));
        const auto out_now = static_cast<uInt>(std::min<std::size_t>(out_left, UINT_MAX));
        zs.avail_in = in_now;
        zs.avail_out = out_now;
        rc = deflate(&zs, in_left == in_now ? Z_FINISH : Z_NO_FLUSH);
        in_left -= in_now - zs.avail_in;
        out_left -= out_now - zs.avail_out;
    } while (rc == Z_OK && (in_left != 0 || out_left != 0));
    if (rc != Z_STREAM_END) {
        out.resize(start);
        throw std::runtime_error("ringwork: deflate failed");
    }
    out.resize(start + bound - out_left);
}

std::uint64_t body_hash(std::string_view data) noexcept {
    // xxHash64-style rounds on one lane: 8 bytes per multiply, then a murmur3 finalizer.
    constexpr std::uint64_t k1 = 0x9E3779B185EBCA87ULL;
    constexpr std::uint64_t k2 = 0xC2B2AE3D27D4EB4FULL;
    constexpr std::uint64_t k3 = 0x165667B19E3779F9ULL;
    std::uint64_t h = k3 ^ (static_cast<std::uint64_t>(data.size()) * k1);
    const char* p = data.data();
    std::size_t n = data.size();
    while (n >= 8) {
        std::uint64_t w = load64(p);
        w *= k2;
        w = rotl(w, 31);
        w *= k1;
        h ^= w;
        h = rotl(h, 27) * k1 + 0x85EBCA77C2B2AE63ULL;
        p += 8;
        n -= 8;
    }
    while (n > 0) {
        h ^= static_cast<std::uint64_t>(static_cast<unsigned char>(*p)) * k3;
        h = rotl(h, 11) * k1;
        ++p;
        --n;
    }
    h ^= h >> 33U;
    h *= 0xFF51AFD7ED558CCDULL;
    h ^= h >> 33U;
    h *= 0xC4CEB9FE1A85EC53ULL;
    h ^= h >> 33U;
    return h;
}

Compress::Compress(CompressOptions options) : options_(std::move(options)) {
    if (options_.level != Z_DEFAULT_COMPRESSION && (options_.level < 1 || options_.level > 9)) {
        throw std::invalid_argument("ringwork: CompressOptions::level must be -1 or 1..9");
    }
}

bool Compress::eligible(std::string_view content_type, std::string_view cache_control) const noexcept {
    if (list_contains(cache_control, "no-transform") || !compressible_type(content_type)) {
        return false;
    }
    const std::string_view media = media_type(content_type);
    for (const std::string& skip : options_.skip_types) {
        const std::string_view s(skip);
        if (iequals(media, s) || (s.ends_with("/*") && istarts_with(media, s.substr(0, s.size() - 1)))) {
            return false;
        }
    }
    return true;
}

bool Compress::would_compress(std::string_view content_type, std::uint64_t size,
                              std::string_view cache_control) const noexcept {
    return size >= options_.min_size && size <= options_.max_size && size != 0 && eligible(content_type, cache_control);
}

void Compress::vary(http::Response& res) { add_vary_accept_encoding(res); }

runtime::Task<> Compress::operator()(Context& c, Next next) const {
    // Handlers that answer 304/206 themselves learn from around() what the 200 would be.
    c.compress_ = this;
    auto rest = next();
    co_await rest;

    if (c.exchange().streaming()) {
        co_return; // the head is on the wire already
    }
    http::Response& res = c.response();
    const int status = res.status();
    if (status == 304 || status == 206) {
        // Nothing to compress. Their Vary comes from whoever made them (send_file, mw::etag:
        // they know the size and type of the 200 that would have been sent).
        const std::string_view etag = res.header("ETag");
        if (status == 304 && !etag.empty() && !etag.starts_with("W/") && accepts_gzip(c.header("Accept-Encoding"))) {
            // The client proved it holds our gzip form, whose tag is the weak one: the 304
            // names what it stands for.
            std::string weak("W/");
            weak.append(etag);
            if (c.header("If-None-Match").find(weak) != std::string_view::npos) {
                res.set_header("ETag", weak);
            }
        }
        co_return;
    }
    if (status < 200 || status == 204) {
        co_return;
    }
    const std::string_view body = res.body();
    if (body.size() < options_.min_size || body.size() > options_.max_size || body.empty()) {
        co_return;
    }
    if (!res.header("Content-Encoding").empty() || !eligible(res.header("Content-Type"), res.header("Cache-Control"))) {
        co_return;
    }
    add_vary_accept_encoding(res);
    if (!accepts_gzip(c.header("Accept-Encoding"))) {
        co_return;
    }

    thread_local std::string scratch;
    scratch.clear();
    gzip_compress(body, options_.level, scratch);
    if (scratch.size() < body.size()) {
        res.set_body(scratch);
        res.set_header("Content-Encoding", "gzip");
        res.remove_header("Content-Length");
        res.remove_header("Accept-Ranges"); // ranges of the gzip form are not served
        const std::string_view etag = res.header("ETag");
        if (!etag.empty() && !etag.starts_with("W/")) {
            std::string weak("W/");
            weak.append(etag);
            res.set_header("ETag", weak);
        }
    }
    if (scratch.capacity() > kScratchKeep) {
        std::string().swap(scratch);
    }
}

runtime::Task<> Etag::operator()(Context& c, Next next) const {
    auto rest = next();
    co_await rest;

    const http::Method method = c.method();
    if (c.exchange().streaming() || (method != http::Method::get && method != http::Method::head)) {
        co_return;
    }
    http::Response& res = c.response();
    if (res.status() != 200) {
        co_return;
    }
    std::string_view etag = res.header("ETag");
    if (etag.empty()) {
        const std::string_view body = res.body();
        if (body.empty()) {
            co_return;
        }
        std::array<char, 48> buf{};
        const auto r = fmt::format_to_n(buf.data(), buf.size(), "{}\"{:x}-{:016x}\"", options_.weak ? "W/" : "",
                                        body.size(), body_hash(body));
        res.set_header("ETag", std::string_view(buf.data(), r.size));
        etag = res.header("ETag");
    }
    const std::string_view inm = c.header("If-None-Match");
    if (!inm.empty() && etag_list_matches(inm, etag, true)) {
        // The 304 carries the Vary a compress() around us puts on this 200 (RFC 9110 §15.4.5).
        if (const Compress* compress = Compress::around(c);
            compress != nullptr && res.header("Content-Encoding").empty() &&
            compress->would_compress(res.header("Content-Type"), res.body().size(), res.header("Cache-Control"))) {
            add_vary_accept_encoding(res);
        }
        res.set_status(304);
        res.set_body({});
        res.remove_header("Content-Length");
    }
}

Compress mw::compress(CompressOptions options) { return Compress(std::move(options)); }

Etag mw::etag(EtagOptions options) { return Etag(options); }

} // namespace ringwork::web
