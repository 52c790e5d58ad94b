// SPDX-License-Identifier: MIT
// Response head serialization: status line, default headers, framing; the Date cache.
#include "http/serializer.hpp"

#include <charconv>

namespace ringwork::http::detail {

void DateCache::refresh(std::time_t sec) noexcept {
    second_ = sec;
    std::tm tm{};
    ::gmtime_r(&sec, &tm);
    std::strftime(text_, sizeof text_, "%a, %d %b %Y %H:%M:%S GMT", &tm);
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
    const std::string_view reason = reason_phrase(status);
    // Size the write once: fixed parts plus every field.
    std::size_t need = 64 + reason.size() + options.name.size() + 40 + 64;
    bool has_type = false;
    bool has_server = false;
    for (const Response::Field& f : r.fields()) {
        need += f.name.size() + f.value.size() + 4;
    }
    char* const start = out.prepare(need);
    char* p = start;
    put(p, "HTTP/1.1 ");
    put_number(p, static_cast<std::uint64_t>(status));
    *p++ = ' ';
    put(p, reason);
    put(p, "\r\n");
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
    if (!options.no_default_server_header && !has_server && !options.name.empty()) {
        put(p, "Server: ");
        put(p, options.name);
        put(p, "\r\n");
    }
    if (!options.no_default_date) {
        put(p, "Date: ");
        put(p, date.get());
        put(p, "\r\n");
    }
    const bool bodyless = bodyless_status(status);
    if (!has_type && !options.no_default_content_type && !bodyless) {
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
                  DateCache& date, bool close) {
    Response r;
    r.set_status(status);
    write_head(out, r, body.size(), HeadPlan{false, close, false}, options, date);
    out.append(body);
}

} // namespace ringwork::http::detail
