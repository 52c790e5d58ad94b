// SPDX-License-Identifier: MIT
// Response-body middleware: gzip compression negotiated from Accept-Encoding, and strong
// ETags hashed from the body with If-None-Match answered by 304.
#pragma once

#include <ringwork/runtime/task.hpp>
#include <ringwork/web/context.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ringwork::web {

/// \brief Options of mw::compress().
struct CompressOptions {
    /// zlib level: 1 (fast) .. 9 (small), or -1 for zlib's default (6).
    int level = 6;
    /// Bodies shorter than this are sent as they are (gzip's overhead eats the gain).
    std::size_t min_size = 1024;
    /// Bodies longer than this are sent as they are: compression runs on the reactor thread
    /// and would stall every other connection of it for too long.
    std::size_t max_size = 8U << 20;
    /// Extra Content-Types (type/subtype, without parameters; a trailing `/*` matches a whole
    /// top-level type) never compressed, beside the built-in already-compressed ones.
    std::vector<std::string> skip_types{};
};

/// \brief Options of mw::etag().
struct EtagOptions {
    /// Send `W/"..."` instead of a strong tag (for bodies that are only semantically stable).
    bool weak = false;
};

/// \brief The compress middleware object (see mw::compress).
class Compress {
public:
    explicit Compress(CompressOptions options);
    runtime::Task<> operator()(Context& c, Next next) const;

    /// \brief Whether a buffered 200 of `size` bytes, `content_type` and `cache_control` would
    /// be gzipped for a client that accepts gzip.
    [[nodiscard]] bool would_compress(std::string_view content_type, std::uint64_t size,
                                      std::string_view cache_control) const noexcept;
    /// \brief The compress middleware around this request, else nullptr. Handlers that answer
    /// 304 or 206 themselves (send_file, mw::etag) ask it: when would_compress() says the 200
    /// is gzipped for some clients, their answer carries `Vary: Accept-Encoding` too (RFC 9110
    /// §15.4.5, §15.3.7), and send_file answers a gzip client's Range with the whole file (a
    /// range of the identity bytes is not one of the representation the client selected).
    [[nodiscard]] static const Compress* around(const Context& c) noexcept { return c.compress_; }
    /// \brief Add `Accept-Encoding` to the response's Vary (merged with what is there).
    static void vary(http::Response& res);

private:
    [[nodiscard]] bool eligible(std::string_view content_type, std::string_view cache_control) const noexcept;
    CompressOptions options_;
};

/// \brief The etag middleware object (see mw::etag).
class Etag {
public:
    explicit Etag(EtagOptions options) noexcept : options_(options) {}
    runtime::Task<> operator()(Context& c, Next next) const;

private:
    EtagOptions options_;
};

/// \brief Whether a response of `content_type` is worth compressing: false for types that
/// are compressed already (images but SVG, audio, video, fonts but the uncompressed
/// TTF/OTF/EOT... as listed in the implementation, zip, gzip, brotli, zstd, 7z, woff/woff2,
/// application/octet-stream, PDF). An empty type (the server's text/plain default) is
/// compressible.
[[nodiscard]] bool compressible_type(std::string_view content_type) noexcept;

/// \brief Whether an Accept-Encoding value lets us answer with gzip: q(gzip) (or x-gzip, or
/// `*` when gzip is not listed) must be above 0 and not below an explicitly listed
/// q(identity). An element with a malformed weight (`gzip;q =0`, `q=2`) is ignored. A missing
/// header accepts no coding (RFC 9110 §12.5.3 allows any, but clients that send none rarely
/// expect one).
[[nodiscard]] bool accepts_gzip(std::string_view accept_encoding) noexcept;

/// \brief gzip `data` at `level` with this thread's reused z_stream (appends to `out`).
/// Throws std::runtime_error when zlib fails (out of memory).
void gzip_compress(std::string_view data, int level, std::string& out);

/// \brief The 64-bit hash behind mw::etag(): fast (8 bytes per step) and deterministic
/// across runs and platforms of the same endianness; not cryptographic.
[[nodiscard]] std::uint64_t body_hash(std::string_view data) noexcept;

namespace mw {

/// \brief gzip the response body when the client accepts it.
///
/// After the inner chain returns, a 200 (or any 2xx/4xx/5xx with a body but 206) response
/// whose body is at least `min_size` and at most `max_size` bytes, has no Content-Encoding,
/// no `Cache-Control: no-transform` and a compressible_type(), gets `Vary: Accept-Encoding`
/// (merged with a Vary already set); when accepts_gzip() says so and the result is smaller,
/// the body is replaced by its gzip form with `Content-Encoding: gzip`, a handler-set
/// Content-Length and `Accept-Ranges` are removed (the server writes the real length; ranges
/// of the gzip form are not served) and a strong ETag is made weak (`"x"` becomes `W/"x"`:
/// still equal under the weak comparison If-None-Match uses, so 304s keep working, and no
/// longer claims byte equality with the identity form).
///
/// Streamed responses (Context::write()) are sent as they are: their head is on the wire
/// before the middleware runs again. Neither are 206, 304 or 204 responses, but a 304 to a
/// gzip client whose If-None-Match holds the weak form of the response's strong ETag names
/// that weak tag (what the client holds). send_file/static_files and mw::etag learn through
/// Compress::around() what the 200 would be: their 304s and 206s then carry the same `Vary`,
/// and send_file answers a gzip client's Range for a file it would gzip with the whole file.
///
/// Put it outside mw::etag() (`app.use(mw::compress()); app.use(mw::etag());`) so that the
/// ETag is computed on, and 304s are decided from, the identity body, before any
/// compression work. The z_stream is per thread and reused (deflateReset).
[[nodiscard]] Compress compress(CompressOptions options = {});

/// \brief Strong ETags for buffered responses.
///
/// After the inner chain returns, a GET or HEAD answered 200 with a non-empty, buffered body
/// and no ETag gets `ETag: "<length hex>-<body_hash hex>"`. Then, if If-None-Match matches
/// the response's ETag (this one or the handler's; a list, `*`, weak comparison), the answer
/// becomes 304 with the ETag (and the other validators and Cache-Control/Vary the handler
/// set) and no body. The body has been built by then: this saves bandwidth, not work.
[[nodiscard]] Etag etag(EtagOptions options = {});

} // namespace mw
} // namespace ringwork::web
