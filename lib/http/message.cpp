// SPDX-License-Identifier: MIT
// Request and Response members, reason phrases, case-insensitive comparison.
#include <ringwork/http/request.hpp>
#include <ringwork/http/response.hpp>

#include "http/chars.hpp"
#include "http/fields.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

#include <sys/socket.h>

namespace ringwork::http {

namespace detail {

void throw_bad_field_name(std::string_view name, std::string_view what) {
    std::string shown;
    for (const char c : name.substr(0, 64)) {
        const auto b = static_cast<unsigned char>(c);
        if (b >= 0x20 && b < 0x7F && c != '\\' && c != '"') {
            shown += c;
        } else {
            constexpr std::string_view kHex = "0123456789abcdef";
            shown += "\\x";
            shown += kHex[b >> 4];
            shown += kHex[b & 15];
        }
    }
    throw std::invalid_argument(std::string(what) + " \"" + shown + (name.size() > 64 ? "...\"" : "\"") +
                                " is not a token (RFC 9110 5.6.2)");
}

void header_name_literal_is_not_a_token() noexcept {} // never called: a consteval FieldName fails to compile
void header_name_array_is_not_a_string_literal() noexcept {} // nor this

} // namespace detail

FieldName::FieldName(std::string_view name) : name_(name) { detail::check_field_name(name, "header name"); }

bool iequals(std::string_view a, std::string_view b) noexcept { return detail::iequals(a, b); }

std::string_view Request::path() {
    if (!path_decoded_) {
        path_decoded_ = true;
        const std::string_view raw = head_.path;
        if (raw.find('%') == std::string_view::npos) {
            decoded_path_ = raw;
        } else {
            char* out = arena_->allocate(raw.size());
            const DecodeResult r = percent_decode(raw, out, false);
            path_valid_ = r.ok;
            decoded_path_ = r.ok ? std::string_view(out, r.size) : std::string_view{};
        }
    }
    return decoded_path_;
}

const io::SocketAddress& Request::remote_address() {
    if (!remote_known_) {
        remote_known_ = true;
        if (peer_cache_ != nullptr && peer_cache_->family() != AF_UNSPEC) {
            remote_ = *peer_cache_; // looked up by an earlier request of this connection
            return remote_;
        }
        remote_ = io::SocketAddress{};
        remote_.length = sizeof(remote_.storage);
        if (::getpeername(peer_fd_, reinterpret_cast<sockaddr*>(&remote_.storage), &remote_.length) != 0) { // NOLINT
            remote_ = io::SocketAddress{};
        }
        if (peer_cache_ != nullptr) {
            *peer_cache_ = remote_; // one getpeername per connection, not per request
        }
    }
    return remote_;
}

std::optional<std::string_view> Request::query(std::string_view name) {
    std::optional<std::string_view> found;
    for_each_query([&](std::string_view n, std::string_view v) {
        if (!found && n == name) {
            found = v;
        }
    });
    return found;
}

std::string_view Request::header(std::string_view name) const noexcept {
    for (const Header& h : head_.headers) {
        if (iequals(h.name, name)) {
            return h.value;
        }
    }
    return {};
}

bool Request::has_header(std::string_view name) const noexcept {
    return std::any_of(head_.headers.begin(), head_.headers.end(),
                       [&](const Header& h) { return iequals(h.name, name); });
}

void Response::set_header(FieldName name, std::string_view value) {
    if (sealed_) {
        return;
    }
    remove_header(name); // returns at once on a response without headers
    add_header(name, value);
}

void Response::add_header(FieldName name, std::string_view value) {
    if (sealed_) {
        return;
    }
    fields_.push_back(Field{detail::keep_field_name(*arena_, name), detail::copy_field_value(*arena_, value)});
}

void Response::remove_header(std::string_view name) noexcept {
    if (sealed_ || fields_.empty()) {
        return;
    }
    std::erase_if(fields_, [&](const Field& f) { return iequals(f.name, name); });
}

std::string_view Response::header(std::string_view name) const noexcept {
    for (const Field& f : fields_) {
        if (iequals(f.name, name)) {
            return f.value;
        }
    }
    return {};
}

ByteBuffer& Response::body_buffer() {
    if (sealed_) {
        // Writers formatting straight into the body (JSON) get a buffer nobody sends.
        sealed_scratch_.clear();
        return sealed_scratch_;
    }
    if (static_body_) {
        static_body_ = false;
        static_ = {};
    }
    if (body_.capacity() == 0) {
        body_ = bodies_->take();
    }
    return body_;
}

void Response::set_body(std::string_view data) {
    if (sealed_) {
        return;
    }
    ByteBuffer& b = body_buffer();
    b.clear();
    b.append(data);
}

void Response::append_body(std::string_view data) {
    if (sealed_) {
        return;
    }
    body_buffer().append(data);
}

void Response::set_body_static(std::string_view data) noexcept {
    if (sealed_) {
        return;
    }
    body_.clear();
    static_body_ = true;
    static_ = data;
}

std::string_view Response::body() const noexcept { return static_body_ ? static_ : body_.view(); }

void Response::reset() noexcept {
    status_ = 200;
    close_ = false;
    sealed_ = false;
    sealed_scratch_ = ByteBuffer();
    static_body_ = false;
    static_ = {};
    fields_.clear();
    if (body_.capacity() != 0) {
        bodies_->give(std::move(body_));
        body_ = ByteBuffer();
    }
}

std::string_view reason_phrase(int status) noexcept {
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 305: return "Use Proxy";
    case 306: return "Unused";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 418: return "I'm a teapot";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 506: return "Variant Also Negotiates";
    case 507: return "Insufficient Storage";
    case 508: return "Loop Detected";
    case 510: return "Not Extended";
    case 511: return "Network Authentication Required";
    default: return "Unknown";
    }
}

} // namespace ringwork::http
