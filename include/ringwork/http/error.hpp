// SPDX-License-Identifier: MIT
// http::Error: every way a request can be rejected, mapped to its status code.
#pragma once

#include <cstdint>
#include <string_view>
#include <system_error>

namespace ringwork::http {

/// \brief Why the parser (or the connection's limits) rejected a request.
///
/// Each enumerator says when it happens; status_of() gives the response status. Parsing
/// failures are values, never exceptions. Plugs into std::error_code (Beast's pattern).
enum class Error : std::uint8_t {
    none = 0,
    bad_request_line,        ///< request line malformed (method not a token, bad target, ...) -> 400
    bad_version,             ///< "HTTP/x.y" malformed -> 400
    version_not_supported,   ///< major version other than 1 -> 505
    bad_header,              ///< header line malformed (no colon, bad name, bad value char) -> 400
    whitespace_before_colon, ///< "Name : value" (RFC 9112 5.1) -> 400
    obs_fold,                ///< a header line starting with SP/HTAB (obsolete folding) -> 400
    bare_lf,                 ///< LF without CR where CRLF is required -> 400
    bare_cr,                 ///< CR not followed by LF -> 400
    missing_host,            ///< HTTP/1.1 request without Host -> 400
    duplicate_host,          ///< more than one Host header -> 400
    bad_host,                ///< Host value invalid (userinfo, spaces, bad port) -> 400
    bad_content_length,      ///< Content-Length not all digits, overflowing, or duplicates disagree -> 400
    content_length_with_transfer_encoding, ///< both present: a smuggling vector -> 400 and close
    chunked_not_last,        ///< Transfer-Encoding: final coding not chunked, or chunked twice -> 400
    unknown_transfer_coding, ///< a transfer coding we do not implement -> 501
    bad_chunk,               ///< chunk size line or chunk terminator malformed, size overflow -> 400
    chunk_extensions_too_long, ///< chunk extensions over ChunkedDecoder::kMaxExtensionBytes in all -> 400
    bad_trailer,             ///< trailer section malformed -> 400
    uri_too_long,            ///< request line over ParserLimits::max_request_line -> 414
    headers_too_large,       ///< header section over ParserLimits::max_header_bytes -> 431
    too_many_headers,        ///< more than ParserLimits::max_headers fields -> 431
    trailers_too_large,      ///< trailer section over its limit -> 431
    body_too_large,          ///< body over MaxRequestBodySize -> 413
};

/// \brief The HTTP status a rejection is answered with.
constexpr int status_of(Error e) noexcept {
    switch (e) {
    case Error::none:
        return 200;
    case Error::version_not_supported:
        return 505;
    case Error::unknown_transfer_coding:
        return 501;
    case Error::uri_too_long:
        return 414;
    case Error::headers_too_large:
    case Error::too_many_headers:
    case Error::trailers_too_large:
        return 431;
    case Error::body_too_large:
        return 413;
    default:
        return 400;
    }
}

/// \brief A short English description (also the error_code message).
std::string_view describe(Error e) noexcept;

/// \brief The std::error_category of http::Error codes; its name() is "ringwork.http".
const std::error_category& error_category() noexcept;
inline std::error_code make_error_code(Error e) noexcept { return {static_cast<int>(e), error_category()}; }

} // namespace ringwork::http

template <>
struct std::is_error_code_enum<ringwork::http::Error> : std::true_type {};
