// SPDX-License-Identifier: MIT
// http::Error descriptions and its std::error_category ("ringwork.http").
#include <ringwork/http/error.hpp>

#include <string>

namespace ringwork::http {

std::string_view describe(Error e) noexcept {
    switch (e) {
    case Error::none:
        return "no error";
    case Error::bad_request_line:
        return "malformed request line";
    case Error::bad_version:
        return "malformed HTTP version";
    case Error::version_not_supported:
        return "HTTP version not supported";
    case Error::bad_header:
        return "malformed header field";
    case Error::whitespace_before_colon:
        return "whitespace between header field name and colon";
    case Error::obs_fold:
        return "obsolete line folding in header section";
    case Error::bare_lf:
        return "bare LF where CRLF is required";
    case Error::bare_cr:
        return "bare CR not followed by LF";
    case Error::missing_host:
        return "HTTP/1.1 request without Host";
    case Error::duplicate_host:
        return "more than one Host header";
    case Error::bad_host:
        return "invalid Host";
    case Error::bad_content_length:
        return "invalid Content-Length";
    case Error::content_length_with_transfer_encoding:
        return "both Content-Length and Transfer-Encoding";
    case Error::chunked_not_last:
        return "Transfer-Encoding whose final coding is not chunked, or with chunked twice";
    case Error::unknown_transfer_coding:
        return "unsupported transfer coding";
    case Error::bad_chunk:
        return "malformed chunk";
    case Error::chunk_extensions_too_long:
        return "chunk extensions over 4096 bytes in all";
    case Error::bad_trailer:
        return "malformed trailer section";
    case Error::uri_too_long:
        return "request line too long";
    case Error::headers_too_large:
        return "header section too large";
    case Error::too_many_headers:
        return "too many header fields";
    case Error::trailers_too_large:
        return "trailer section too large";
    case Error::body_too_large:
        return "request body too large";
    }
    return "unknown HTTP error";
}

namespace {

class ErrorCategory final : public std::error_category {
public:
    const char* name() const noexcept override { return "ringwork.http"; }
    std::string message(int ev) const override {
        if (ev < 0 || ev > 255) {
            return "unknown HTTP error";
        }
        return std::string(describe(static_cast<Error>(ev)));
    }
};

} // namespace

const std::error_category& error_category() noexcept {
    static const ErrorCategory category;
    return category;
}

} // namespace ringwork::http
