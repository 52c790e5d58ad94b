// SPDX-License-Identifier: MIT
// Incremental, zero-copy HTTP/1.1 request-head parser and chunked-body decoder (no I/O, no allocation).
#pragma once

#include <ringwork/http/error.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace ringwork::http {

/// \brief Request methods with a fast path; any other token is `other` (see method_text).
enum class Method : std::uint8_t { get, head, post, put, delete_, connect, options, trace, patch, other };

/// \brief One header field: views into the receive buffer.
struct Header {
    std::string_view name;
    std::string_view value; ///< leading and trailing SP/HTAB stripped
};

/// \brief How the request body is framed.
enum class BodyKind : std::uint8_t { none, content_length, chunked };

/// \brief The parsed request head. Every view points into the buffer given to parse():
/// valid until that buffer is released or rewritten (the connection rebases them if it must).
struct RequestHead {
    Method method = Method::get;
    std::string_view method_text;   ///< the method token as received
    std::string_view target;        ///< the request-target as received
    /// origin-form path, not decoded; from absolute-form the path part ("/" when empty: a view
    /// of the last '/' of "://", so it too points into the buffer); "*" for asterisk-form;
    /// empty for authority-form (CONNECT).
    std::string_view path;
    std::string_view query;         ///< after '?', without it; empty when none
    std::string_view host;          ///< Host header, or the authority of an absolute-form target (which overrides Host)
    std::uint8_t version_minor = 1; ///< 0 or 1 (HTTP/1.2+ is handled as 1.1)
    /// From the version and the Connection tokens ("close", "keep-alive"); false when close_after.
    bool keep_alive = true;
    bool expect_continue = false;   ///< "Expect: 100-continue", any case (the connection decides)
    bool upgrade = false;           ///< Connection: upgrade + Upgrade header present
    /// The connection must close after this request (Transfer-Encoding in HTTP/1.0).
    bool close_after = false;
    BodyKind body = BodyKind::none;
    std::uint64_t content_length = 0; ///< when body == content_length (may be 0)
    std::span<Header> headers;      ///< in received order, names normalized unless disabled
    std::size_t head_size = 0;      ///< bytes of the head including the final CRLFCRLF (and skipped empty lines)
};

/// \brief Parser limits; each has its own status (they are not the receive buffer's size).
struct ParserLimits {
    std::size_t max_request_line = 8192;  ///< request line without its CRLF longer than this -> 414
    /// Header section (after the request line; every CRLF, the final empty line's too) -> 431.
    std::size_t max_header_bytes = 16384;
    std::size_t max_headers = 100;        ///< header fields (also bounded by the caller's array) -> 431
    bool normalize_header_names = true;   ///< "cONTENT-lenGTH" -> "Content-Length" (in place)
};

/// \brief Outcome of one parse() call.
struct ParseResult {
    enum class Status : std::uint8_t { complete, incomplete, error };
    Status status = Status::incomplete;
    Error error = Error::none;
    [[nodiscard]] bool complete() const noexcept { return status == Status::complete; }
    [[nodiscard]] bool incomplete() const noexcept { return status == Status::incomplete; }
    [[nodiscard]] bool failed() const noexcept { return status == Status::error; }
};

/// \brief Incremental request-head parser (picohttpparser's shape, stricter).
///
/// Call parse() with all bytes received so far for the current request (the same prefix plus
/// more each time). It scans only the new bytes for the end of the head, so feeding a request
/// one byte at a time costs O(n) overall, and it gives the same result for every split.
/// Header views are written into the caller's array, whose size is also a limit.
/// Name normalization writes into the buffer (it must be writable).
///
/// Errors come as early as they are detectable. The scan for the end of the head rejects a bare
/// LF or CR, an over-long request line, an over-large header section and one field too many
/// as soon as the offending byte arrives; the request line is parsed as soon as its CRLF
/// arrives; the header fields are parsed once, when the head is complete. Because every check
/// runs in byte order, whatever the split the same error (or head) results.
/// Up to kMaxLeadingEmptyLines empty lines (CRLF) before the request line are skipped (they
/// count in head_size); one more is bad_request_line.
/// Transfer-Encoding "chunked, chunked" (chunked applied twice) is chunked_not_last.
/// The buffer may move between calls (views are rebuilt from offsets), but its bytes may not
/// change; a buffer shorter than what was already scanned starts the scan over.
/// After complete or error the parser keeps its state: calling again returns the same result
/// until reset().
class RequestParser {
public:
    static constexpr std::size_t kMaxLeadingEmptyLines = 8;

    explicit RequestParser(ParserLimits limits = {}) noexcept : limits_(limits) {}

    /// \brief Parse `buffer` (the request's bytes so far). On complete, `out` is filled and
    /// `out.head_size` bytes belong to the head; the body (if any) follows. On incomplete or
    /// error, `out` holds unspecified values.
    ParseResult parse(std::span<char> buffer, RequestHead& out, std::span<Header> header_storage) noexcept;
    /// \brief Forget the scan state (next request).
    void reset() noexcept {
        scanned_ = 0;
        line_start_ = 0;
        request_line_start_ = 0;
        headers_start_ = 0;
        line_state_ = 0;
        lines_ = 0;
    }
    [[nodiscard]] const ParserLimits& limits() const noexcept { return limits_; }

private:
    ParserLimits limits_;
    std::size_t scanned_ = 0;            ///< bytes scanned for the end of the head (its size once complete)
    std::size_t line_start_ = 0;         ///< offset of the line being scanned
    std::size_t request_line_start_ = 0; ///< offset of the request line (after skipped empty lines)
    std::size_t headers_start_ = 0;      ///< offset of the header section (after the request line)
    std::size_t lines_ = 0;              ///< empty lines skipped, then header field lines seen
    std::uint32_t line_state_ = 0;       ///< scanner phase carried across calls
};

/// \brief Resumable chunked-body decoder: yields views of chunk data without copying.
///
/// feed() consumes bytes from `in` and returns at most one piece of body data at a time (a
/// view into `in`). Call it again with the unconsumed rest (or more bytes) until done().
/// While not done and without error, a non-empty `in` always yields consumed > 0. Bytes after
/// the final CRLF are never consumed (they belong to the next request).
/// Chunk sizes: 1 to 16 hex digits, at most 2^63. Extensions (`;name[=value]`, optionally after
/// SP/HTAB) are skipped, at most kMaxExtensionBytes over the whole body (-> bad_chunk).
/// Trailer fields are checked to be `token ":" value` (-> bad_trailer otherwise, a bare LF or
/// obs-fold among them too), counted (their bytes with their CRLFs, not the final empty
/// line) against max_trailer_bytes (-> trailers_too_large), and otherwise dropped.
/// After an error every feed() returns that error with consumed == 0 until reset().
class ChunkedDecoder {
public:
    static constexpr std::size_t kMaxExtensionBytes = 4096;

    struct Step {
        std::size_t consumed = 0;  ///< bytes of `in` used by this step
        std::string_view data;     ///< body bytes produced (may be empty)
        Error error = Error::none; ///< set on malformed input
    };
    explicit ChunkedDecoder(std::size_t max_trailer_bytes = 8192) noexcept : max_trailer_(max_trailer_bytes) {}
    Step feed(std::string_view in) noexcept;
    [[nodiscard]] bool done() const noexcept { return state_ == State::done; }
    [[nodiscard]] bool failed() const noexcept { return state_ == State::failed; }
    /// \brief Body bytes produced so far (chunk data only).
    [[nodiscard]] std::uint64_t body_bytes() const noexcept { return total_; }
    /// \brief Bytes of trailer fields seen so far (with their CRLFs).
    [[nodiscard]] std::size_t trailer_bytes() const noexcept { return trailer_bytes_; }
    void reset() noexcept;

private:
    enum class State : std::uint8_t {
        size,               ///< hex digits of the chunk size
        size_ws,            ///< BWS after the size, before ';'
        size_ext,           ///< inside chunk extensions, up to CR
        size_lf,            ///< CR of the size line seen
        data,               ///< remaining_ bytes of chunk data
        data_cr,            ///< CR after the data
        data_lf,            ///< LF after the data
        trailer_line_start, ///< start of a trailer field or of the final empty line
        trailer_name,       ///< inside a trailer field name
        trailer_value,      ///< inside a trailer field value
        trailer_lf,         ///< CR of a trailer field seen
        final_lf,           ///< CR of the final empty line seen
        done,
        failed,
    };
    State state_ = State::size;
    Error error_ = Error::none;
    std::uint64_t remaining_ = 0;
    std::uint64_t total_ = 0;
    std::size_t size_digits_ = 0;
    std::size_t ext_bytes_ = 0;
    std::size_t trailer_bytes_ = 0;
    std::size_t max_trailer_;
};

/// \brief Percent-decode `in` into `out` (at least in.size() bytes; `out == in.data()` decodes
/// in place). Returns the decoded length, or ok == false (size 0) for an invalid escape
/// (`%G1`, a truncated `%4`) or %00. `plus_as_space` for query components.
struct DecodeResult {
    std::size_t size = 0;
    bool ok = true;
};
DecodeResult percent_decode(std::string_view in, char* out, bool plus_as_space = false) noexcept;

/// \brief Normalize a header name in place, fasthttp-style: first letter and letters after '-'
/// upper case, others lower case.
void normalize_header_name(char* name, std::size_t size) noexcept;

/// \brief Method enum from its token (`other` for unknown tokens).
Method method_from(std::string_view token) noexcept;

} // namespace ringwork::http
