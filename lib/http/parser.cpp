// SPDX-License-Identifier: MIT
// RequestParser: an incremental scan for the end of the head, then one strict parse of it.
#include <ringwork/http/parser.hpp>

#include "http/chars.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

namespace ringwork::http {

namespace {

using detail::byte_at;
using detail::CharTable;
using detail::iequals;
using detail::is_digit;
using detail::is_ows;
using detail::kHexValue;
using detail::kHostChar;
using detail::kTchar;
using detail::load32;

/// Where the scan for the end of the head stands (RequestParser::line_state_).
enum class Phase : std::uint32_t { start, request_line, headers, done };

inline constexpr CharTable kToLower = [] {
    CharTable t{};
    for (unsigned c = 0; c < 256; ++c) {
        t[c] = static_cast<std::uint8_t>(c >= 'A' && c <= 'Z' ? c + 0x20 : c);
    }
    return t;
}();

inline constexpr CharTable kToUpper = [] {
    CharTable t{};
    for (unsigned c = 0; c < 256; ++c) {
        t[c] = static_cast<std::uint8_t>(c >= 'a' && c <= 'z' ? c - 0x20 : c);
    }
    return t;
}();

constexpr std::size_t distance(const char* from, const char* to) noexcept {
    return static_cast<std::size_t>(to - from);
}

constexpr std::string_view view(const char* from, const char* to) noexcept {
    return {from, distance(from, to)};
}

/// Trims SP/HTAB from both ends of [b, e).
inline std::string_view trim_ows(const char* b, const char* e) noexcept {
    while (b != e && is_ows(*b)) {
        ++b;
    }
    while (e != b && is_ows(e[-1])) {
        --e;
    }
    return view(b, e);
}

/// Calls fn(element) for each comma-separated element of a list value, OWS trimmed (empty
/// elements included). Stops early when fn returns false; returns whether it ran to the end.
template <typename Fn>
bool for_each_element(std::string_view list, Fn&& fn) noexcept {
    const char* p = list.data();
    const char* const end = p + list.size();
    for (;;) {
        const auto* comma = static_cast<const char*>(std::memchr(p, ',', distance(p, end)));
        const char* elem_end = comma != nullptr ? comma : end;
        if (!fn(trim_ows(p, elem_end))) {
            return false;
        }
        if (comma == nullptr) {
            return true;
        }
        p = comma + 1;
    }
}

/// uri-host [":" port] (RFC 3986): IP-literal or reg-name (no userinfo, no whitespace), port
/// of at most 5 digits up to 65535. An empty port is allowed unless `require_port`.
bool valid_host(std::string_view host, bool require_port) noexcept {
    const char* p = host.data();
    const char* const e = p + host.size();
    if (p == e) {
        return false;
    }
    if (*p == '[') { // IP-literal: IPv6address / IPvFuture, checked loosely for their characters
        const char* const s = ++p;
        while (p != e && (kHostChar[byte_at(p)] != 0 || *p == ':')) {
            ++p;
        }
        if (p == s || p == e || *p != ']') {
            return false;
        }
        ++p;
    } else {
        const char* const s = p;
        for (;;) {
            // Four bytes per test while they are all host chars, then one at a time.
            while (e - p >= 4 && (kHostChar[byte_at(p)] & kHostChar[byte_at(p + 1)] &
                                  kHostChar[byte_at(p + 2)] & kHostChar[byte_at(p + 3)]) != 0) {
                p += 4;
            }
            while (p != e && kHostChar[byte_at(p)] != 0) {
                ++p;
            }
            if (p != e && *p == '%' && e - p >= 3 &&
                (kHexValue[byte_at(p + 1)] | kHexValue[byte_at(p + 2)]) <= 0xF) {
                p += 3;
                continue;
            }
            break;
        }
        if (p == s) {
            return false;
        }
    }
    if (p == e) {
        return !require_port;
    }
    if (*p != ':') {
        return false;
    }
    ++p;
    const std::size_t digits = distance(p, e);
    if (digits == 0) {
        return !require_port;
    }
    if (digits > 5) {
        return false;
    }
    unsigned port = 0;
    for (; p != e; ++p) {
        if (!is_digit(byte_at(p))) {
            return false;
        }
        port = port * 10 + (byte_at(p) - '0');
    }
    return port <= 65535;
}

/// Sets path/query/host of `out` from the request-target [t, end) ('?' first at `qmark`).
Error parse_target(Method method, const char* t, const char* end, const char* qmark,
                   RequestHead& out) noexcept {
    const std::string_view target = view(t, end);
    if (method == Method::connect) { // authority-form only (RFC 9112 3.2.3)
        return valid_host(target, true) && qmark == nullptr ? Error::none : Error::bad_request_line;
    }
    const char* const path_end = qmark != nullptr ? qmark : end;
    if (qmark != nullptr) {
        out.query = view(qmark + 1, end);
    }
    if (*t == '/') { // origin-form
        out.path = view(t, path_end);
        return Error::none;
    }
    if (target == "*") { // asterisk-form
        if (method != Method::options) {
            return Error::bad_request_line;
        }
        out.path = target;
        return Error::none;
    }
    // absolute-form: "http://" or "https://" (any case), a non-empty authority, then the path.
    std::size_t scheme = 0;
    if (target.size() >= 7 && iequals(t, 7, "http://", 7)) {
        scheme = 7;
    } else if (target.size() >= 8 && iequals(t, 8, "https://", 8)) {
        scheme = 8;
    } else {
        return Error::bad_request_line;
    }
    const char* const authority = t + scheme;
    const auto* slash =
        static_cast<const char*>(std::memchr(authority, '/', distance(authority, path_end)));
    const char* const authority_end = slash != nullptr ? slash : path_end;
    const std::string_view host = view(authority, authority_end);
    if (!valid_host(host, false)) {
        return Error::bad_request_line;
    }
    out.host = host;
    out.path = slash != nullptr ? view(slash, path_end)
                                : std::string_view(authority - 1, 1); // the '/' of "://"
    return Error::none;
}

/// "HTTP/" DIGIT "." DIGIT at [v, e): 1.0, 1.1, 1.x (as 1.1) accepted; other majors 505.
Error parse_version(const char* v, const char* e, RequestHead& out) noexcept {
    const std::size_t n = distance(v, e);
    if (n == 8) {
        if (std::memcmp(v, "HTTP/1.1", 8) == 0) {
            out.version_minor = 1;
            return Error::none;
        }
        if (std::memcmp(v, "HTTP/", 5) == 0 && is_digit(byte_at(v + 5)) && v[6] == '.' &&
            is_digit(byte_at(v + 7))) {
            if (v[5] != '1') {
                return Error::version_not_supported;
            }
            out.version_minor = v[7] == '0' ? 0 : 1;
            return Error::none;
        }
    }
    if (std::memchr(v, ' ', n) != nullptr) {
        return Error::bad_request_line; // more than three parts, or SP doubled
    }
    return Error::bad_version;
}

/// Parses the request line [b, e) (no CR or LF inside) into `out`, setting every field the
/// request line determines (field by field: a whole-struct reset compiles to a slow rep stos).
Error parse_request_line(const char* b, const char* e, RequestHead& out) noexcept {
    out.path = {};
    out.query = {};
    out.host = {};
    const char* p = b;
    const std::size_t line = distance(b, e);
    if (line >= 4 && load32(b) == load32("GET ")) { // the common methods skip the token scan
        p = b + 3;
        out.method = Method::get;
    } else if (line >= 5 && load32(b) == load32("POST") && b[4] == ' ') {
        p = b + 4;
        out.method = Method::post;
    } else {
        while (p != e && kTchar[byte_at(p)] != 0) {
            ++p;
        }
        if (p == b || p == e || *p != ' ') {
            return Error::bad_request_line;
        }
        out.method = method_from(view(b, p));
    }
    out.method_text = view(b, p);

    const char* const t = ++p;
    const char* qmark = nullptr;
    for (;;) {
        p = detail::find_target_stop(p, e);
        if (p == e || *p != '?') {
            break;
        }
        if (qmark == nullptr) {
            qmark = p;
        }
        ++p;
    }
    if (p == t || (p != e && *p != ' ')) {
        return Error::bad_request_line; // empty target (SP doubled), '#', CTL, DEL or obs-text
    }
    out.target = view(t, p);
    if (const Error err = parse_target(out.method, t, p, qmark, out); err != Error::none) {
        return err;
    }
    if (p == e) {
        return Error::version_not_supported; // "GET /": an HTTP/0.9 simple request
    }
    return parse_version(p + 1, e, out);
}

/// What the special header fields said, gathered over the whole section.
struct Semantics {
    std::uint64_t content_length = 0;
    std::size_t te_codings = 0;
    bool host_seen = false;
    bool content_length_seen = false;
    bool te_seen = false;
    bool te_last_chunked = false;
    bool te_chunked_not_last = false;
    bool te_unknown = false;
    bool conn_close = false;
    bool conn_keep_alive = false;
    bool conn_upgrade = false;
    bool upgrade_header = false;
};

Error on_content_length(std::string_view value, Semantics& s) noexcept {
    bool ok = true;
    for_each_element(value, [&](std::string_view elem) noexcept {
        if (elem.empty()) {
            ok = false;
            return false;
        }
        std::uint64_t n = 0;
        for (const char c : elem) {
            const unsigned d = static_cast<unsigned char>(c) - static_cast<unsigned>('0');
            if (d > 9 || n > (std::numeric_limits<std::uint64_t>::max() - d) / 10) {
                ok = false;
                return false;
            }
            n = n * 10 + d;
        }
        if (s.content_length_seen && n != s.content_length) {
            ok = false;
            return false;
        }
        s.content_length_seen = true;
        s.content_length = n;
        return true;
    });
    return ok ? Error::none : Error::bad_content_length;
}

Error on_transfer_encoding(std::string_view value, Semantics& s) noexcept {
    s.te_seen = true;
    bool ok = true;
    for_each_element(value, [&](std::string_view elem) noexcept {
        if (elem.empty()) {
            return true; // empty list elements are ignored (RFC 9110 5.6.1)
        }
        const char* p = elem.data();
        const char* const e = p + elem.size();
        while (p != e && kTchar[byte_at(p)] != 0) {
            ++p;
        }
        const std::string_view name = view(elem.data(), p);
        const bool chunked = iequals(name.data(), name.size(), "chunked", 7);
        if (p != e) { // only parameters may follow the coding name
            while (p != e && is_ows(*p)) {
                ++p;
            }
            if (name.empty() || p == e || *p != ';' || chunked) {
                ok = false; // not a coding, or chunked with parameters (it has none)
                return false;
            }
        }
        ++s.te_codings;
        if (s.te_last_chunked) {
            s.te_chunked_not_last = true;
        }
        s.te_last_chunked = chunked;
        s.te_unknown = s.te_unknown || !chunked;
        return true;
    });
    return ok ? Error::none : Error::bad_header;
}

void on_connection(std::string_view value, Semantics& s) noexcept {
    for_each_element(value, [&](std::string_view t) noexcept {
        if (iequals(t.data(), t.size(), "close", 5)) {
            s.conn_close = true;
        } else if (iequals(t.data(), t.size(), "keep-alive", 10)) {
            s.conn_keep_alive = true;
        } else if (iequals(t.data(), t.size(), "upgrade", 7)) {
            s.conn_upgrade = true;
        }
        return true;
    });
}

/// Interprets one field whose name might be special (dispatch on the length first).
inline Error on_field(const char* name, std::size_t name_len, std::string_view value, Semantics& s,
                      RequestHead& out, bool host_from_target) noexcept {
    switch (name_len) {
    case 4:
        if (iequals(name, name_len, "host", 4)) {
            if (s.host_seen) {
                return Error::duplicate_host;
            }
            s.host_seen = true;
            if (value.empty() ? out.version_minor != 0 : !valid_host(value, false)) {
                return Error::bad_host;
            }
            if (!host_from_target) {
                out.host = value;
            }
        }
        break;
    case 6:
        if (iequals(name, name_len, "expect", 6)) {
            // A list (#expectation): "100-continue, foo" expects 100-continue too.
            for_each_element(value, [&](std::string_view t) noexcept {
                if (iequals(t.data(), t.size(), "100-continue", 12)) {
                    out.expect_continue = true;
                }
                return true;
            });
        }
        break;
    case 7:
        if (iequals(name, name_len, "upgrade", 7) && !value.empty()) {
            s.upgrade_header = true;
        }
        break;
    case 10:
        if (iequals(name, name_len, "connection", 10)) {
            on_connection(value, s);
        }
        break;
    case 14:
        if (iequals(name, name_len, "content-length", 14)) {
            return on_content_length(value, s);
        }
        break;
    case 17:
        if (iequals(name, name_len, "transfer-encoding", 17)) {
            return on_transfer_encoding(value, s);
        }
        break;
    default:
        break;
    }
    return Error::none;
}

/// Scans a field name from `p` (normalizing it in place when asked); returns its end.
template <bool Normalize>
inline char* scan_name(char* p) noexcept {
    if constexpr (Normalize) {
        bool upper = true;
        for (;;) {
            const unsigned c = byte_at(p);
            if (kTchar[c] == 0) {
                return p;
            }
            *p = static_cast<char>(upper ? kToUpper[c] : kToLower[c]);
            upper = c == '-';
            ++p;
        }
    } else {
        while (kTchar[byte_at(p)] != 0) {
            ++p;
        }
        return p;
    }
}

/// Parses the header section [p, head_end) (the scan checked its CRLFs, size and line count)
/// and derives the body framing and connection flags. [head_end, buffer_end) is readable too:
/// the value scan may look that far (16 bytes at a time) but stops at its line's CR anyway.
template <bool Normalize>
Error parse_fields(char* p, char* const head_end, const char* const buffer_end,
                   std::span<Header> storage, RequestHead& out) noexcept {
    char* const section_end = head_end - 2; // the final empty line
    const bool host_from_target = !out.host.empty();
    out.expect_continue = false;
    out.close_after = false;
    out.body = BodyKind::none;
    out.content_length = 0;
    Semantics s;
    std::size_t count = 0;
    while (p != section_end) {
        if (is_ows(*p)) {
            return Error::obs_fold;
        }
        char* const name = p;
        p = scan_name<Normalize>(p); // every line ends with CR, which is no tchar
        if (*p != ':' || p == name) {
            if (p != name && is_ows(*p)) {
                while (is_ows(*p)) {
                    ++p;
                }
                if (*p == ':') {
                    return Error::whitespace_before_colon;
                }
            }
            return Error::bad_header;
        }
        const std::size_t name_len = distance(name, p);
        ++p;
        while (is_ows(*p)) {
            ++p;
        }
        const char* const value = p;
        p += distance(p, detail::find_field_stop(p, buffer_end));
        if (*p != '\r') {
            return Error::bad_header; // NUL or another CTL in the value
        }
        const char* value_end = p;
        while (value_end != value && is_ows(value_end[-1])) {
            --value_end;
        }
        if (count == storage.size()) {
            return Error::too_many_headers;
        }
        const std::string_view v = view(value, value_end);
        storage[count++] = Header{std::string_view(name, name_len), v};
        if (const Error err = on_field(name, name_len, v, s, out, host_from_target);
            err != Error::none) {
            return err;
        }
        p += 2;
    }
    out.headers = storage.first(count);

    if (!s.host_seen && out.version_minor == 1) {
        return Error::missing_host;
    }
    if (s.te_seen) {
        if (s.content_length_seen) {
            return Error::content_length_with_transfer_encoding;
        }
        if (s.te_codings == 0) {
            return Error::bad_header;
        }
        if (s.te_chunked_not_last || !s.te_last_chunked) {
            // RFC 9112 §6.3 (4): without chunked as the final coding the body's length is
            // unknowable: 400 and close (a MUST, ahead of §6.1's 501 for unknown codings).
            return Error::chunked_not_last;
        }
        if (s.te_unknown) {
            return Error::unknown_transfer_coding;
        }
        out.body = BodyKind::chunked;
        out.close_after = out.version_minor == 0; // RFC 9112 6.1: TE in HTTP/1.0 is suspect
    } else if (s.content_length_seen) {
        out.body = BodyKind::content_length;
        out.content_length = s.content_length;
    }
    out.keep_alive =
        !s.conn_close && !out.close_after && (out.version_minor == 1 || s.conn_keep_alive);
    out.upgrade = s.conn_upgrade && s.upgrade_header;
    return Error::none;
}

/// The scanner's state, copied out of and back into RequestParser's members.
struct ScanState {
    Phase phase;
    std::size_t pos;
    std::size_t line_start;
    std::size_t request_line_start;
    std::size_t headers_start;
    std::size_t lines;
};

/// Advances `st` over the new bytes [st.pos, avail): finds line ends, skips leading empty lines,
/// parses the request line once its CRLF is there and stops at the end of the head
/// (st.phase == done, st.pos == head size). Returns the first error in byte order.
inline Error scan_head(ScanState& st, const char* base, std::size_t avail,
                       const ParserLimits& limits, std::size_t max_fields, RequestHead& out,
                       bool& request_line_parsed) noexcept {
    if (st.phase == Phase::start) {
        for (;;) {
            if (st.pos == avail) {
                return Error::none;
            }
            const char c = base[st.pos];
            if (c == '\n') {
                return Error::bare_lf;
            }
            if (c != '\r') {
                if (kTchar[byte_at(base + st.pos)] == 0) {
                    // A method is a token: a TLS ClientHello (0x16) or other binary is refused
                    // now, not when a CRLF that may never come arrives (or the head times out).
                    return Error::bad_request_line;
                }
                break;
            }
            if (st.pos + 1 == avail) {
                return Error::none;
            }
            if (base[st.pos + 1] != '\n') {
                return Error::bare_cr;
            }
            if (st.lines == RequestParser::kMaxLeadingEmptyLines) {
                return Error::bad_request_line;
            }
            ++st.lines;
            st.pos += 2;
        }
        st.request_line_start = st.pos;
        st.line_start = st.pos;
        st.phase = Phase::request_line;
    }

    if (st.phase == Phase::request_line) {
        // The byte at request_line_start + max_request_line must be its CR, if it is there.
        const bool over = limits.max_request_line < avail - st.request_line_start;
        const std::size_t limit_end =
            over ? st.request_line_start + limits.max_request_line + 1 : avail;
        const char* const ev = detail::find_cr_or_lf(base + st.pos, base + limit_end);
        if (ev == base + limit_end) {
            if (over) {
                return Error::uri_too_long;
            }
            st.pos = avail;
            return Error::none;
        }
        const std::size_t e = distance(base, ev);
        if (*ev == '\n') {
            return Error::bare_lf;
        }
        if (e + 1 == avail) {
            st.pos = e; // CR last: look again when its LF may be there
            return Error::none;
        }
        if (base[e + 1] != '\n') {
            return Error::bare_cr;
        }
        if (const Error err = parse_request_line(base + st.request_line_start, ev, out);
            err != Error::none) {
            return err;
        }
        request_line_parsed = true;
        st.headers_start = st.line_start = st.pos = e + 2;
        st.lines = 0;
        st.phase = Phase::headers;
    }

    // Header section: bytes [headers_start, headers_start + max_header_bytes) at most.
    const std::size_t max_bytes = limits.max_header_bytes;
    const bool over = max_bytes < avail - st.headers_start;
    const std::size_t limit_end = over ? st.headers_start + max_bytes : avail;
    for (;;) {
        if (st.pos == st.line_start) { // a new line: the end of the head, or one more field
            if (st.pos == limit_end) {
                return over ? Error::headers_too_large : Error::none;
            }
            const char c = base[st.pos];
            if (c == '\r') {
                if (st.pos + 1 == avail) {
                    return Error::none;
                }
                if (base[st.pos + 1] != '\n') {
                    return Error::bare_cr;
                }
                if (st.pos + 1 - st.headers_start >= max_bytes) {
                    return Error::headers_too_large;
                }
                st.pos += 2;
                st.phase = Phase::done;
                return Error::none;
            }
            if (c == '\n') {
                return Error::bare_lf;
            }
            if (st.lines >= max_fields) {
                return Error::too_many_headers;
            }
            ++st.lines;
            ++st.pos;
        }
        const char* const ev = detail::find_cr_or_lf(base + st.pos, base + limit_end);
        if (ev == base + limit_end) {
            if (over) {
                return Error::headers_too_large;
            }
            st.pos = avail;
            return Error::none;
        }
        const std::size_t e = distance(base, ev);
        if (*ev == '\n') {
            return Error::bare_lf;
        }
        if (e + 1 == avail) {
            st.pos = e;
            return Error::none;
        }
        if (base[e + 1] != '\n') {
            return Error::bare_cr;
        }
        if (e + 1 - st.headers_start >= max_bytes) {
            return Error::headers_too_large;
        }
        st.pos = st.line_start = e + 2;
    }
}

constexpr ParseResult failure(Error e) noexcept {
    return {ParseResult::Status::error, e};
}

} // namespace

ParseResult RequestParser::parse(std::span<char> buffer, RequestHead& out,
                                 std::span<Header> header_storage) noexcept {
    if (buffer.size() < scanned_) {
        reset(); // not the bytes scanned so far: start over
    }
    ScanState st{static_cast<Phase>(line_state_),
                 scanned_,
                 line_start_,
                 request_line_start_,
                 headers_start_,
                 lines_};
    char* const base = buffer.data();
    bool request_line_parsed = false;
    if (st.phase != Phase::done) {
        const std::size_t max_fields = std::min(limits_.max_headers, header_storage.size());
        const Error err =
            scan_head(st, base, buffer.size(), limits_, max_fields, out, request_line_parsed);
        if (err != Error::none) {
            return failure(err); // state not committed: the same bytes give the same error again
        }
        if (st.phase != Phase::done) {
            scanned_ = st.pos;
            line_start_ = st.line_start;
            request_line_start_ = st.request_line_start;
            headers_start_ = st.headers_start;
            lines_ = st.lines;
            line_state_ = static_cast<std::uint32_t>(st.phase);
            return {ParseResult::Status::incomplete, Error::none};
        }
    }
    // The head is [0, st.pos): parse it once.
    if (!request_line_parsed) {
        const Error err =
            parse_request_line(base + st.request_line_start, base + st.headers_start - 2, out);
        if (err != Error::none) {
            return failure(err);
        }
    }
    const Error err = limits_.normalize_header_names
                          ? parse_fields<true>(base + st.headers_start, base + st.pos,
                                               base + buffer.size(), header_storage, out)
                          : parse_fields<false>(base + st.headers_start, base + st.pos,
                                                base + buffer.size(), header_storage, out);
    if (err != Error::none) {
        return failure(err);
    }
    out.head_size = st.pos;
    scanned_ = st.pos;
    line_start_ = st.line_start;
    request_line_start_ = st.request_line_start;
    headers_start_ = st.headers_start;
    lines_ = st.lines;
    line_state_ = static_cast<std::uint32_t>(Phase::done);
    return {ParseResult::Status::complete, Error::none};
}

Method method_from(std::string_view token) noexcept {
    switch (token.size()) {
    case 3:
        if (token == "GET") {
            return Method::get;
        }
        if (token == "PUT") {
            return Method::put;
        }
        break;
    case 4:
        if (token == "POST") {
            return Method::post;
        }
        if (token == "HEAD") {
            return Method::head;
        }
        break;
    case 5:
        if (token == "PATCH") {
            return Method::patch;
        }
        if (token == "TRACE") {
            return Method::trace;
        }
        break;
    case 6:
        if (token == "DELETE") {
            return Method::delete_;
        }
        break;
    case 7:
        if (token == "OPTIONS") {
            return Method::options;
        }
        if (token == "CONNECT") {
            return Method::connect;
        }
        break;
    default:
        break;
    }
    return Method::other;
}

void normalize_header_name(char* name, std::size_t size) noexcept {
    bool upper = true;
    for (std::size_t i = 0; i < size; ++i) {
        const unsigned c = byte_at(name + i);
        name[i] = static_cast<char>(upper ? kToUpper[c] : kToLower[c]);
        upper = c == '-';
    }
}

DecodeResult percent_decode(std::string_view in, char* out, bool plus_as_space) noexcept {
    const char* p = in.data();
    const char* const end = p + in.size();
    char* o = out;
    while (p != end) {
        const char c = *p;
        if (c == '%') {
            if (end - p < 3) {
                return {0, false};
            }
            const unsigned hi = kHexValue[byte_at(p + 1)];
            const unsigned lo = kHexValue[byte_at(p + 2)];
            if ((hi | lo) > 0xF || (hi | lo) == 0) {
                return {0, false}; // not hex, or %00
            }
            *o++ = static_cast<char>(hi << 4 | lo);
            p += 3;
        } else {
            *o++ = plus_as_space && c == '+' ? ' ' : c;
            ++p;
        }
    }
    return {distance(out, o), true};
}

} // namespace ringwork::http
