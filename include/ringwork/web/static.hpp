// SPDX-License-Identifier: MIT
// Static files: send_file (MIME type, validators, conditional GET, single ranges, HEAD) and the
// static_files middleware (a directory tree served without escape from its root).
#pragma once

#include <ringwork/runtime/task.hpp>
#include <ringwork/web/context.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace ringwork::web {

/// \brief How send_file() answers. The defaults suit most sites. Every member has a default
/// initializer, so designated initializers (`{.cache_control = "no-cache"}`) are warning-free.
struct FileOptions {
    /// Cache-Control value sent with the file and its 304s (empty: no header).
    std::string cache_control{};
    /// Content-Type to send instead of the one mime_type() derives from the name.
    std::string content_type{};
    /// Send a weak ETag `W/"<size>-<mtime ns>"` (hex) and honour If-None-Match with it.
    bool etag = true;
    /// Send Last-Modified and honour If-Modified-Since / If-Unmodified-Since. An mtime in the
    /// future is sent (and compared) as the response's Date (RFC 9110 §8.8.2.1).
    bool last_modified = true;
    /// Send `Accept-Ranges: bytes` and answer single-range requests with 206.
    bool ranges = true;
    /// Payloads up to this size are read into the pooled body buffer (one io_uring read,
    /// Content-Length from the buffer); larger ones are streamed in `chunk_size` pieces.
    std::size_t small_file_limit = 64 * 1024;
    /// Read size when streaming a large payload.
    std::size_t chunk_size = 64 * 1024;
    /// Run open()/fstat() (and, for static_files, the directory index and listing) on the
    /// shared offload pool so a cold dentry or inode lookup never stalls the reactor; the
    /// data itself is always read with io_uring. Set false when the tree is known to be in
    /// the page cache (tmpfs, warm caches): saves two thread hops per request.
    bool offload_open = true;
};

/// \brief Send the regular file at `path` (absolute, or relative to the working directory).
///
/// Sets Content-Type (FileOptions::content_type or mime_type(path)), Last-Modified
/// (IMF-fixdate), a weak ETag from size and mtime, Accept-Ranges and Cache-Control, and
/// evaluates the preconditions in RFC 9110 order: If-Match / If-Unmodified-Since (412),
/// If-None-Match, else If-Modified-Since (304). For GET, one `Range: bytes=a-b | a- | -n`
/// answers 206 with Content-Range (when an If-Range date equals Last-Modified or there is no
/// If-Range; our ETag is weak, so an If-Range entity tag never matches and the whole file is
/// sent), an unsatisfiable one 416 with `Content-Range: bytes */size`; a syntactically
/// invalid Range or several ranges are ignored and the whole file is sent (200: no
/// multipart/byteranges). HEAD answers the same head without the body.
///
/// A missing file answers 404 and anything that is not a regular file 403, both through
/// App::answer_error(). Read errors throw std::system_error (the App answers 500) before the
/// head is sent; after it (streaming) the connection is closed instead.
///
/// `c` must outlive the task (await it from the handler). Reactor thread only.
runtime::Task<> send_file(Context& c, std::string path, FileOptions options = {});

/// \brief The MIME type for a file name's extension (case-insensitive), text types with
/// `; charset=utf-8`; `application/octet-stream` for an unknown or missing extension. The
/// view is static.
[[nodiscard]] std::string_view mime_type(std::string_view path) noexcept;

/// \brief Format `t` as an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT").
[[nodiscard]] std::string format_http_date(std::time_t t);
/// \brief Parse an HTTP-date in any of the three formats RFC 9110 §5.6.7 requires recipients
/// to accept (IMF-fixdate, RFC 850, asctime); nullopt when malformed.
[[nodiscard]] std::optional<std::time_t> parse_http_date(std::string_view text) noexcept;

/// \brief Whether the entity-tag list `header` (If-None-Match / If-Match syntax: `*` or a
/// comma-separated list of `"x"` / `W/"x"`) matches `etag`. `weak`: weak comparison (opaque
/// tags equal, W/ ignored: If-None-Match); else strong (both must be strong: If-Match).
[[nodiscard]] bool etag_list_matches(std::string_view header, std::string_view etag, bool weak) noexcept;

/// \brief The outcome of parsing a Range header against a representation of `size` bytes.
struct RangeSpec {
    enum class Kind : std::uint8_t {
        none,          ///< no usable range: send the whole representation (200)
        single,        ///< bytes [first, first + length): 206
        unsatisfiable, ///< 416 with Content-Range: bytes */size
    };
    Kind kind = Kind::none;
    std::uint64_t first = 0;
    std::uint64_t length = 0;
};
/// \brief Parse `Range: bytes=a-b | a- | -n` (one range; a list of several ranges, another
/// unit or invalid syntax give Kind::none, as RFC 9110 §14.2 allows). Unsatisfiable (RFC 9110
/// §14.1.1): a first-pos at or past `size`, or `-0`. On an empty representation `-n` (n > 0) is
/// satisfiable but selects no byte: Kind::none, the whole (empty) representation with 200.
[[nodiscard]] RangeSpec parse_range(std::string_view header, std::uint64_t size) noexcept;

/// \brief Options of the static_files middleware.
struct StaticOptions {
    /// Name of the route's catch-all parameter holding the relative path
    /// (`app.get("/assets/*path", mw::static_files("public", {.param = "path"}))`). Empty: the
    /// request path with `prefix` removed (for app.use() / group().use()).
    std::string param{};
    /// Removed from the request path when `param` is empty; requests outside it call next().
    std::string prefix = "/";
    /// Served for a directory (empty: none).
    std::string index = "index.html";
    /// Answer a directory without an index with an HTML listing (names escaped, hrefs
    /// percent-encoded; dot files hidden unless `dotfiles`; a symlink shown with its target's
    /// size and date, and only when it stays under the root, as fetching it would).
    bool listing = false;
    /// Serve names starting with '.' (any path segment); off: they are treated as missing.
    bool dotfiles = false;
    /// A missing file calls next() (so later middleware or routes may answer); off: 404. At
    /// the end of a chain (no next) a missing file is always 404.
    bool fallthrough = true;
    /// Cache-Control: `public, max-age=N` when set and file.cache_control is empty.
    std::optional<std::chrono::seconds> max_age{};
    /// Adds `, immutable` to the max_age Cache-Control (fingerprinted assets).
    bool immutable = false;
    /// How each file is sent (see send_file()).
    FileOptions file{};
};

namespace detail {
struct StaticRoot;
/// \brief Tests only: resolve paths with the realpath fallback instead of openat2
/// (process-wide; the fallback is what kernels before 5.6 get).
void use_openat2_fallback(bool on) noexcept;
} // namespace detail

/// \brief The static_files middleware object (see mw::static_files). Copies share the root.
class StaticFiles {
public:
    StaticFiles(std::string root, StaticOptions options);
    runtime::Task<> operator()(Context& c, Next next) const;

private:
    std::shared_ptr<const detail::StaticRoot> root_;
};

namespace mw {

/// \brief Serve the files under the directory `root` for GET and HEAD (other methods call
/// next(), or answer 405 with `Allow: GET, HEAD` when no next exists).
///
/// The relative path (see StaticOptions::param / prefix; already percent-decoded by the
/// server) is split on '/': empty and `.` segments are dropped, a `..` segment or a
/// backslash answers 403 (never next(): no later handler should see a traversal attempt), so
/// `%2e%2e/` and `..%2f` are refused too and an absolute catch-all value stays under
/// `root`. A NUL never reaches the middleware: the App answers `%00` in the path with 400
/// (invalid percent-encoding) before routing, the request parser a raw NUL byte with 400.
/// The file is then opened relative to the root directory with openat2 RESOLVE_BENEATH |
/// RESOLVE_NO_MAGICLINKS (Linux 5.6+): symlinks inside the tree work, one that leads outside
/// it is treated as missing. Where openat2 is unavailable, a realpath prefix check plus a
/// device/inode comparison with the opened descriptor does the same.
///
/// A directory requested without a trailing slash is redirected (301) to the slash form; with
/// it, `index` is served, else the listing (when enabled), else it is missing.
///
/// Throws std::system_error when `root` cannot be opened as a directory. The root
/// descriptor is kept open for the middleware's life (a renamed root keeps being served).
[[nodiscard]] StaticFiles static_files(std::string root, StaticOptions options = {});

} // namespace mw
} // namespace ringwork::web
