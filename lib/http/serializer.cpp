// SPDX-License-Identifier: MIT
// Response head serialization: status line, default headers, framing; the Date cache.
#include "http/serializer.hpp"

#include <charconv>

namespace ringwork::http::detail {

DateCache::DateCache(std::string_view server_name) {
    if (!server_name.empty()) {
        text_.append("Server: ").append(server_name).append("\r\n");
    }
    server_len_ = text_.size();
    text_.append("Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n");
}

void DateCache::refresh(std::time_t sec) noexcept {
    second_ = sec;
    std::tm tm{};
    ::gmtime_r(&sec, &tm);
    char date[32];
    if (std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm) == kDateSize) {
        std::memcpy(text_.data() + server_len_ + 6, date, kDateSize); // after "Date: "
    }
}

namespace {

/// `name` is `canonical` in any case; handlers nearly always write the canonical spelling,
/// which a plain compare settles without the case-folding loop.
inline bool named(std::string_view name, std::string_view canonical) noexcept {
    return name == canonical || iequals(name, canonical);
}

inline void put(char*& p, std::string_view s) noexcept {
    std::memcpy(p, s.data(), s.size());
    p += s.size();
}

inline void put_number(char*& p, std::uint64_t v) noexcept {
    p = std::to_chars(p, p + 20, v).ptr;
}

} // namespace

void write_head(ByteBuffer& out, const Response& r, std::size_t body_size, const HeadPlan& plan,
                const ServerOptions& options, DateCache& date) {
    const int status = r.status();
    const std::string_view reason = status == 200 ? std::string_view("OK") : reason_phrase(status);
    const std::string_view defaults = date.server_and_date();
    // Size the write once: fixed parts plus every field.
    std::size_t need = 32 + reason.size() + defaults.size() + 64 + 64;
    bool has_type = false;
    bool has_server = false;
    for (const Response::Field& f : r.fields()) {
        need += f.name.size() + f.value.size() + 4;
    }
    char* const start = out.prepare(need);
    char* p = start;
    if (status == 200) {
        put(p, "HTTP/1.1 200 OK\r\n");
    } else {
        put(p, "HTTP/1.1 ");
        put_number(p, static_cast<std::uint64_t>(status));
        *p++ = ' ';
        put(p, reason);
        put(p, "\r\n");
    }
    for (const Response::Field& f : r.fields()) {
        // Framing headers are ours to write; a handler's copy would contradict the body. The
        // length picks the one name a field can be (no compare for most fields).
        switch (f.name.size()) {
        case 14: // Content-Length
        case 17: // Transfer-Encoding
            if (named(f.name, "Content-Length") || named(f.name, "Transfer-Encoding")) {
                continue;
            }
            break;
        case 10:
            if (!plan.keep_connection_header && named(f.name, "Connection")) {
                continue;
            }
            break;
        case 12:
            has_type = has_type || named(f.name, "Content-Type");
            break;
        case 6:
            has_server = has_server || named(f.name, "Server");
            break;
        default:
            break;
        }
        put(p, f.name);
        put(p, ": ");
        put(p, f.value);
        put(p, "\r\n");
    }
    // The cache holds the Server line unless no_default_server_header (see ReactorState).
    if (!options.no_default_date) {
        put(p, has_server ? date.date_line() : defaults);
    } else if (!has_server) {
        put(p, date.server_line());
    }
    const bool bodyless = bodyless_status(status);
    // The default type describes content: none for an empty body (a 205, a 417, a bare 200).
    const bool content = body_size != 0 || plan.chunked || plan.close_delimited;
    if (!has_type && !options.no_default_content_type && !bodyless && content) {
        put(p, "Content-Type: text/plain; charset=utf-8\r\n");
    }
    if (plan.chunked) {
        if (!bodyless) {
            put(p, "Transfer-Encoding: chunked\r\n");
        }
    } else if (!bodyless && !plan.close_delimited) {
        put(p, "Content-Length: ");
        put_number(p, body_size);
        put(p, "\r\n");
    }
    if (plan.close) {
        put(p, "Connection: close\r\n");
    } else if (plan.keep_alive_10) {
        put(p, "Connection: keep-alive\r\n");
    }
    put(p, "\r\n");
    out.commit(static_cast<std::size_t>(p - start));
}

void write_simple(ByteBuffer& out, int status, std::string_view body, const ServerOptions& options,
                  DateCache& date, bool close, bool head_request) {
    Response r;
    r.set_status(status);
    write_head(out, r, body.size(), HeadPlan{head_request, close, false}, options, date);
    if (!head_request) {
        out.append(body);
    }
}

} // namespace ringwork::http::detail
