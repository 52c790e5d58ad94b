// SPDX-License-Identifier: MIT
// Cookies (RFC 6265), urlencoded forms and multipart/form-data (RFC 7578 / RFC 2046) for handlers.
#pragma once

#include <ringwork/http/buffer.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ringwork::web {

// ---------------------------------------------------------------------------------------------
// Cookies
// ---------------------------------------------------------------------------------------------

/// \brief The SameSite attribute of a Set-Cookie (`unset` writes no attribute).
enum class SameSite : std::uint8_t { unset, lax, strict, none };

/// \brief One cookie to send with Set-Cookie (see format_set_cookie()).
///
/// The views are borrowed for the duration of the format_set_cookie() call only.
struct Cookie {
    std::string_view name{};   ///< an RFC 7230 token
    std::string_view value{};  ///< cookie-octets only (percent-encode anything else first)
    std::string_view path{};   ///< empty: no Path attribute
    std::string_view domain{}; ///< empty: no Domain attribute (a host-only cookie)
    /// Max-Age; zero or negative writes `Max-Age=0`, which deletes the cookie now.
    std::optional<std::chrono::seconds> max_age{};
    /// Expires, written as an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT").
    std::optional<std::chrono::system_clock::time_point> expires{};
    bool secure = false;
    bool http_only = false;
    bool partitioned = false;             ///< CHIPS; forces Secure like SameSite=None
    SameSite same_site = SameSite::unset; ///< `none` forces Secure (browsers require it)
};

namespace detail {
[[nodiscard]] constexpr bool is_ows(char c) noexcept {
    return c == ' ' || c == '\t';
}
[[nodiscard]] constexpr std::string_view trim_ows(std::string_view s) noexcept {
    while (!s.empty() && is_ows(s.front())) {
        s.remove_prefix(1);
    }
    while (!s.empty() && is_ows(s.back())) {
        s.remove_suffix(1);
    }
    return s;
}
} // namespace detail

/// \brief Calls `f(name, value)` for every cookie of a Cookie request header ("a=1; b=2"), in
/// order. Tolerant: spaces and tabs around names and values are skipped, empty pairs (`;;`) are
/// skipped, a value is everything after the first `=` (so it may contain `=`), and one pair of
/// double quotes around a value is removed. A pair without `=` or with an empty name is a
/// nameless cookie (RFC 6265bis) and is skipped. Nothing is decoded.
///
/// The views point into `cookie_header`.
template <class F>
void for_each_cookie(std::string_view cookie_header, F&& f) {
    while (!cookie_header.empty()) {
        const std::size_t semi = cookie_header.find(';');
        const std::string_view pair = detail::trim_ows(cookie_header.substr(0, semi));
        cookie_header =
            semi == std::string_view::npos ? std::string_view{} : cookie_header.substr(semi + 1);
        const std::size_t eq = pair.find('=');
        if (eq == std::string_view::npos) {
            continue; // empty pair, or a nameless cookie
        }
        const std::string_view name = detail::trim_ows(pair.substr(0, eq));
        std::string_view value = detail::trim_ows(pair.substr(eq + 1));
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
            value = value.substr(1, value.size() - 2);
        }
        if (!name.empty()) {
            f(name, value);
        }
    }
}

/// \brief The value of the first cookie `name` (case-sensitive) in a Cookie request header;
/// nullopt when absent. Same tolerance as for_each_cookie(). The view points into the header.
[[nodiscard]] std::optional<std::string_view> find_cookie(std::string_view cookie_header,
                                                          std::string_view name) noexcept;

/// \brief The Set-Cookie header value for `cookie` (`name=value; Path=/; ...`), written into
/// `arena` (valid until the arena is reset).
///
/// Throws std::invalid_argument naming the problem when the name is not an RFC 7230 token, the
/// value has a byte outside cookie-octet (RFC 6265 §4.1.1; a value wholly wrapped in double
/// quotes is allowed), the path or domain contains `;`, a control character or a non-ASCII
/// byte, or a `__Secure-` / `__Host-` prefixed name lacks what browsers require for it.
[[nodiscard]] std::string_view format_set_cookie(http::Arena& arena, const Cookie& cookie);

// ---------------------------------------------------------------------------------------------
// application/x-www-form-urlencoded
// ---------------------------------------------------------------------------------------------

/// \brief Decodes one urlencoded component: `+` is a space and `%XX` a byte. An invalid escape
/// (`%G1`, a truncated `%4`) and `%00` are kept as they are (WHATWG keeps invalid escapes; NUL
/// is refused like http::percent_decode does). Returns `raw` itself when nothing needs decoding,
/// else a view into `arena` (valid until the arena is reset).
[[nodiscard]] std::string_view decode_form_component(std::string_view raw, http::Arena& arena);

/// \brief Whether the urlencoded component `raw` decodes to `name`, without allocating.
[[nodiscard]] bool form_component_equals(std::string_view raw, std::string_view name) noexcept;

/// \brief Calls `f(name, value)` for every `name=value` pair of an urlencoded body, in order,
/// both decoded with decode_form_component(). Pairs are separated by `&`; empty pairs are
/// skipped and a pair without `=` has an empty value. Views point into `body` or `arena`.
template <class F>
void for_each_form_value(std::string_view body, http::Arena& arena, F&& f) {
    while (!body.empty()) {
        const std::size_t amp = body.find('&');
        const std::string_view pair = body.substr(0, amp);
        body = amp == std::string_view::npos ? std::string_view{} : body.substr(amp + 1);
        if (pair.empty()) {
            continue;
        }
        const std::size_t eq = pair.find('=');
        const std::string_view name = decode_form_component(pair.substr(0, eq), arena);
        const std::string_view value = eq == std::string_view::npos
                                           ? std::string_view{}
                                           : decode_form_component(pair.substr(eq + 1), arena);
        f(name, value);
    }
}

/// \brief The first value of field `name` in an urlencoded body, decoded (see
/// for_each_form_value()); nullopt when absent. Names are compared after decoding. The view
/// points into `body` or `arena`.
[[nodiscard]] std::optional<std::string_view>
find_form_value(std::string_view body, std::string_view name, http::Arena& arena);

// ---------------------------------------------------------------------------------------------
// multipart/form-data
// ---------------------------------------------------------------------------------------------

/// \brief Bounds for parsing a multipart/form-data body.
struct MultipartLimits {
    /// More parts than this is 413.
    std::size_t max_parts = 1000;
    /// A file part larger than this goes to a temporary file; a non-file field larger than this
    /// is 413 (fields are always held in memory).
    std::size_t memory_limit = 1U << 20;
    /// The header block of one part (CRLFs included) longer than this is 413.
    std::size_t max_header_bytes = 8192;
    /// Where temporary files are created (mkstemp, mode 0600); empty means "/tmp".
    std::string temp_dir = "/tmp";
    /// A body longer than this is 413 (0: unlimited). Matters for streamed bodies
    /// (MultipartStream), which no server body limit bounds.
    std::size_t max_body_bytes = 0;
};

/// \brief Why a multipart body (or its Content-Type) was refused.
enum class MultipartError : std::uint8_t {
    none,                ///< no error
    not_multipart,       ///< the Content-Type is not multipart/form-data (400)
    missing_boundary,    ///< the Content-Type has no boundary parameter (400)
    invalid_boundary,    ///< boundary empty, over 70 chars, a non-bchar or a trailing space (400)
    bare_lf,             ///< a delimiter or header line ends with LF alone; CRLF is required (400)
    bare_cr,             ///< a CR not followed by LF in a delimiter or header line (400)
    malformed_delimiter, ///< `--boundary` followed by something other than `--` or CRLF (400)
    header_too_large,    ///< one part's header block exceeds max_header_bytes (413)
    malformed_header,    ///< a part header line is not `name: value`, folded, or has CTLs (400)
    duplicate_header,    ///< Content-Disposition or Content-Type given twice in a part (400)
    missing_disposition, ///< a part without Content-Disposition (400)
    invalid_disposition, ///< not `form-data`, bad or repeated parameters (400)
    missing_name,        ///< Content-Disposition without a name parameter (400)
    too_many_parts,      ///< more than max_parts parts (413)
    truncated,           ///< the input ended before the closing `--boundary--` (400)
};

/// \brief A short English description of `e` (for HttpError messages and logs).
[[nodiscard]] std::string_view describe(MultipartError e) noexcept;
/// \brief The HTTP status for `e`: 413 for the limits, 400 otherwise (0 for `none`).
[[nodiscard]] int http_status(MultipartError e) noexcept;

/// \brief Extracts the boundary of a `multipart/form-data; boundary=...` Content-Type (quoted or
/// not) into `boundary` and validates it (RFC 2046: 1 to 70 bchars, not ending in a space).
[[nodiscard]] MultipartError parse_multipart_boundary(std::string_view content_type,
                                                      std::string& boundary);

/// \brief The headers of one part, as handed to MultipartHandler::on_part_begin(). The views
/// are valid during that call only.
struct PartHeaders {
    std::string_view name{}; ///< the `name` parameter, unquoted
    /// The file name, reduced to its last path component (after the last `/` or `\`; `.` and
    /// `..` become empty). `filename*` (RFC 5987, UTF-8 or ISO-8859-1) wins over `filename`
    /// when it decodes cleanly, otherwise it is ignored.
    std::string_view filename{};
    bool has_filename = false;       ///< a `filename` or `filename*` parameter was present
    std::string_view content_type{}; ///< the part's Content-Type, trimmed; empty when absent
};

/// \brief Receives the events of a MultipartParser. Exceptions thrown by a callback propagate
/// out of MultipartParser::feed(); the parser must not be fed again after that.
class MultipartHandler {
public:
    virtual ~MultipartHandler() = default;
    MultipartHandler() = default;
    MultipartHandler(const MultipartHandler&) = default;
    MultipartHandler& operator=(const MultipartHandler&) = default;
    MultipartHandler(MultipartHandler&&) = default;
    MultipartHandler& operator=(MultipartHandler&&) = default;

    /// A part starts (its header block was complete and valid).
    virtual void on_part_begin(const PartHeaders& headers) = 0;
    /// Some bytes of the current part's content (never empty; the view is valid during the
    /// call only). How content is cut into pieces depends on how the input was split.
    virtual void on_part_data(std::string_view bytes) = 0;
    /// The current part's content is complete (its delimiter was seen).
    virtual void on_part_end() = 0;
};

/// \brief Incremental multipart/form-data parser: feed() the body in pieces of any size, and the
/// handler sees the same parts, the same content bytes and the same error for every split.
///
/// Strict framing (RFC 2046 §5.1.1, RFC 7578):
/// - the preamble before the first delimiter and the epilogue after `--boundary--` are ignored;
/// - a delimiter is `CRLF--boundary` (or `--boundary` at the very start), followed by optional
///   spaces/tabs and CRLF, or by `--` for the closing one; a bare LF or CR there is an error,
///   and `--boundary` followed by anything else is an error (the boundary must not occur in
///   content). Inside part content, bytes are opaque: `LF--boundary` is content;
/// - part header lines end with CRLF, are `name: value`, not folded, at most max_header_bytes
///   per part; Content-Disposition (`form-data`, `name` required) is mandatory, Content-Type
///   optional, other headers (Content-Transfer-Encoding included) are ignored;
/// - nested multipart/mixed parts are not expanded.
///
/// Errors are reported as values (error(), feed(), finish()), never thrown. Not thread-safe.
class MultipartParser {
public:
    /// `boundary` as returned by parse_multipart_boundary() (an invalid one makes every feed()
    /// report invalid_boundary). `handler` must outlive the parser. Only `max_parts` and
    /// `max_header_bytes` of `limits` are used.
    MultipartParser(std::string_view boundary, MultipartHandler& handler,
                    const MultipartLimits& limits = {});

    /// Parses the next bytes of the body. Returns the error state (none while all is well).
    /// Input after the closing delimiter is ignored.
    MultipartError feed(std::string_view bytes);
    /// Signals the end of the body: `truncated` unless the closing delimiter was seen.
    MultipartError finish() noexcept;

    [[nodiscard]] MultipartError error() const noexcept { return error_; }
    /// True once the closing delimiter has been seen.
    [[nodiscard]] bool done() const noexcept { return state_ == State::epilogue; }
    /// Parts begun so far.
    [[nodiscard]] std::size_t parts() const noexcept { return parts_; }

private:
    enum class State : std::uint8_t {
        preamble,       // looking for the first delimiter, discarding bytes
        after_boundary, // just after "--boundary": "--", padding or CRLF
        padding,        // transport padding (spaces/tabs) before CRLF
        boundary_lf,    // CR seen after the delimiter, LF expected
        close_dash,     // first '-' of the closing "--" seen
        headers,        // accumulating a part's header block
        body,           // part content, looking for the next delimiter
        epilogue,       // after the closing delimiter: everything ignored
    };
    const char* scan(const char* p, const char* end);
    const char* step_headers(const char* p, const char* end);
    MultipartError fail(MultipartError e) noexcept;
    MultipartError parse_headers();
    void found_delimiter();

    std::string delimiter_; // "\r\n--" + boundary
    MultipartHandler* handler_;
    std::size_t max_parts_;
    std::size_t max_header_bytes_;
    // Bytes of delimiter_ matched and not yet emitted as content. It starts at 2: the body
    // begins as if after a CRLF, so `--boundary` at offset 0 is a delimiter too.
    std::size_t match_ = 2;
    std::size_t parts_ = 0;
    std::string header_block_; // the current part's header bytes
    std::string name_;         // unescaped Content-Disposition parameters
    std::string filename_;
    State state_ = State::preamble;
    MultipartError error_ = MultipartError::none;
};

/// \brief One uploaded file of a MultipartForm.
struct FormFile {
    /// The form field name.
    std::string field{};
    /// The client's file name, reduced to its base name (see PartHeaders).
    std::string filename{};
    /// The part's Content-Type; "text/plain" when absent (RFC 7578 §4.4).
    std::string content_type{};
    /// Content bytes.
    std::size_t size = 0;
    /// The content when held in memory.
    std::string data{};
    /// Else the temporary file holding it (created with mkstemp in MultipartLimits::temp_dir,
    /// mode 0600, never named after client input), removed by ~MultipartForm. To keep it,
    /// rename() or link() it elsewhere first; the later unlink then fails silently.
    std::string temp_path{};

    [[nodiscard]] bool in_memory() const noexcept { return temp_path.empty(); }
    /// The whole content, from memory or the temporary file (throws std::system_error when the
    /// file cannot be read).
    [[nodiscard]] std::string read() const;
};

/// \brief A parsed multipart/form-data body: non-file fields and files, in body order.
///
/// Parts with a `filename` (or `filename*`) parameter are files, even with an empty file name
/// (a browser's empty file input); the others are fields. Movable, not copyable; views returned
/// by value()/values() are valid while the form lives and is not moved from or assigned to.
class MultipartForm {
public:
    MultipartForm() = default;
    /// Parses a whole multipart/form-data body. `content_type` is the request's Content-Type.
    /// Throws HttpError(400) for a non-multipart Content-Type, a missing or invalid boundary or a
    /// malformed body (truncated included), HttpError(413) beyond max_parts, max_header_bytes or
    /// a field over memory_limit, std::system_error when a temporary file cannot be created or
    /// written. Temporary files created before a throw are removed.
    MultipartForm(std::string_view body, std::string_view content_type,
                  const MultipartLimits& limits);
    MultipartForm(const MultipartForm&) = delete;
    MultipartForm& operator=(const MultipartForm&) = delete;
    MultipartForm(MultipartForm&& other) noexcept;
    MultipartForm& operator=(MultipartForm&& other) noexcept;
    /// Removes the temporary files.
    ~MultipartForm();

    /// The first non-file field `name`; nullopt when absent.
    [[nodiscard]] std::optional<std::string_view> value(std::string_view name) const noexcept;
    /// Every non-file field `name`, in order.
    [[nodiscard]] std::vector<std::string_view> values(std::string_view name) const;
    /// The first file of field `name`; nullptr when absent.
    [[nodiscard]] const FormFile* file(std::string_view name) const noexcept;
    [[nodiscard]] const std::vector<FormFile>& files() const noexcept { return files_; }
    /// Non-file fields as (name, value), in order.
    [[nodiscard]] const std::vector<std::pair<std::string, std::string>>& fields() const noexcept {
        return fields_;
    }

private:
    friend class MultipartStream;
    void remove_temp_files() noexcept;

    std::vector<FormFile> files_;
    std::vector<std::pair<std::string, std::string>> fields_;
};

/// \brief Builds a MultipartForm from a body that arrives in pieces (a streamed request body):
/// file parts over memory_limit are written to their temporary file as their bytes arrive, so
/// memory stays bounded whatever the upload size. Same errors as MultipartForm's constructor,
/// thrown by the call that meets them (the constructor for the Content-Type), plus 413 past
/// max_body_bytes. Temporary files are removed if the stream is dropped before finish().
class MultipartStream {
public:
    MultipartStream(std::string_view content_type, const MultipartLimits& limits);
    MultipartStream(const MultipartStream&) = delete;
    MultipartStream& operator=(const MultipartStream&) = delete;
    ~MultipartStream();
    /// The next bytes of the body.
    void feed(std::string_view bytes);
    /// The body ended: the form (throws HttpError(400) when it was truncated).
    MultipartForm finish();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace ringwork::web
