// SPDX-License-Identifier: MIT
// Cookies, urlencoded forms and the multipart/form-data parser behind web::MultipartForm.
#include <ringwork/web/error.hpp>
#include <ringwork/web/form.hpp>

#include "http/chars.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <iterator>
#include <stdexcept>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

namespace ringwork::web {
namespace {

[[nodiscard]] constexpr unsigned char byte(char c) noexcept {
    return static_cast<unsigned char>(c);
}

/// RFC 7230 tchar.
[[nodiscard]] constexpr bool is_tchar(char c) noexcept {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        return true;
    }
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

[[nodiscard]] constexpr bool is_token(std::string_view s) noexcept {
    if (s.empty()) {
        return false;
    }
    for (const char c : s) {
        if (!is_tchar(c)) {
            return false;
        }
    }
    return true;
}

/// RFC 6265 cookie-octet: %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E.
[[nodiscard]] constexpr bool is_cookie_octet(char c) noexcept {
    const unsigned b = byte(c);
    return b >= 0x21 && b <= 0x7E && c != '"' && c != ',' && c != ';' && c != '\\';
}

[[nodiscard]] constexpr bool is_ctl(char c) noexcept {
    return byte(c) < 0x20 || byte(c) == 0x7F;
}

using http::detail::iequals;

[[nodiscard]] constexpr int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/// The byte a valid, non-NUL `%XX` at `s[i]` stands for; -1 when there is none.
[[nodiscard]] int escape_at(std::string_view s, std::size_t i) noexcept {
    if (s[i] != '%' || s.size() - i < 3) {
        return -1;
    }
    const int hi = hex_value(s[i + 1]);
    const int lo = hex_value(s[i + 2]);
    if (hi < 0 || lo < 0 || (hi | lo) == 0) {
        return -1;
    }
    return hi << 4 | lo;
}

/// Calls `out(char)` for every byte of the decoded form component `raw`.
template <class Out>
void decode_form(std::string_view raw, Out&& out) {
    for (std::size_t i = 0; i < raw.size();) {
        const int e = escape_at(raw, i);
        if (e >= 0) {
            out(static_cast<char>(e));
            i += 3;
        } else {
            out(raw[i] == '+' ? ' ' : raw[i]);
            ++i;
        }
    }
}

[[noreturn]] void invalid(const std::string& what) {
    throw std::invalid_argument("Set-Cookie: " + what);
}

void check_attribute(std::string_view attr, std::string_view value) {
    for (const char c : value) {
        if (c == ';' || is_ctl(c) || byte(c) >= 0x80) {
            invalid(
                fmt::format("{} contains a ';', a control character or a non-ASCII byte", attr));
        }
    }
}

} // namespace

// --- cookies ---------------------------------------------------------------------------------

std::optional<std::string_view> find_cookie(std::string_view cookie_header,
                                            std::string_view name) noexcept {
    std::optional<std::string_view> found;
    for_each_cookie(cookie_header, [&](std::string_view n, std::string_view v) noexcept {
        if (!found && n == name) {
            found = v;
        }
    });
    return found;
}

std::string_view format_set_cookie(http::Arena& arena, const Cookie& cookie) {
    if (!is_token(cookie.name)) {
        invalid(fmt::format("cookie name '{}' is not a token", cookie.name));
    }
    std::string_view inner = cookie.value;
    if (inner.size() >= 2 && inner.front() == '"' && inner.back() == '"') {
        inner = inner.substr(1, inner.size() - 2);
    }
    for (const char c : inner) {
        if (!is_cookie_octet(c)) {
            invalid(fmt::format("the value of cookie '{}' has byte 0x{:02x}, outside cookie-octet "
                                "(percent-encode it)",
                                cookie.name, byte(c)));
        }
    }
    check_attribute("Path", cookie.path);
    check_attribute("Domain", cookie.domain);
    const bool secure = cookie.secure || cookie.same_site == SameSite::none || cookie.partitioned;
    // Browsers drop prefixed cookies that break these rules; tell the developer instead.
    if (cookie.name.starts_with("__Secure-") && !secure) {
        invalid(fmt::format("cookie '{}' needs Secure (__Secure- prefix)", cookie.name));
    }
    if (cookie.name.starts_with("__Host-") &&
        (!secure || cookie.path != "/" || !cookie.domain.empty())) {
        invalid(fmt::format("cookie '{}' needs Secure, Path=/ and no Domain (__Host- prefix)",
                            cookie.name));
    }

    fmt::memory_buffer out;
    fmt::format_to(std::back_inserter(out), "{}={}", cookie.name, cookie.value);
    if (!cookie.path.empty()) {
        fmt::format_to(std::back_inserter(out), "; Path={}", cookie.path);
    }
    if (!cookie.domain.empty()) {
        fmt::format_to(std::back_inserter(out), "; Domain={}", cookie.domain);
    }
    if (cookie.expires) {
        const auto secs =
            std::chrono::floor<std::chrono::seconds>(cookie.expires->time_since_epoch()).count();
        const auto t = static_cast<std::time_t>(secs);
        std::tm tm{};
        if (::gmtime_r(&t, &tm) == nullptr || tm.tm_year + 1900 < 1601 ||
            tm.tm_year + 1900 > 9999) {
            invalid("Expires is outside the years 1601 to 9999");
        }
        static constexpr std::array<std::string_view, 7> kDays{"Sun", "Mon", "Tue", "Wed",
                                                               "Thu", "Fri", "Sat"};
        static constexpr std::array<std::string_view, 12> kMonths{
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
        fmt::format_to(std::back_inserter(out),
                       "; Expires={}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
                       kDays.at(static_cast<std::size_t>(tm.tm_wday)), tm.tm_mday,
                       kMonths.at(static_cast<std::size_t>(tm.tm_mon)), tm.tm_year + 1900,
                       tm.tm_hour, tm.tm_min, tm.tm_sec);
    }
    if (cookie.max_age) {
        const auto n = cookie.max_age->count();
        fmt::format_to(std::back_inserter(out), "; Max-Age={}", n > 0 ? n : 0);
    }
    if (secure) {
        fmt::format_to(std::back_inserter(out), "; Secure");
    }
    if (cookie.http_only) {
        fmt::format_to(std::back_inserter(out), "; HttpOnly");
    }
    switch (cookie.same_site) {
    case SameSite::unset:
        break;
    case SameSite::lax:
        fmt::format_to(std::back_inserter(out), "; SameSite=Lax");
        break;
    case SameSite::strict:
        fmt::format_to(std::back_inserter(out), "; SameSite=Strict");
        break;
    case SameSite::none:
        fmt::format_to(std::back_inserter(out), "; SameSite=None");
        break;
    }
    if (cookie.partitioned) {
        fmt::format_to(std::back_inserter(out), "; Partitioned");
    }
    return arena.copy({out.data(), out.size()});
}

// --- urlencoded ------------------------------------------------------------------------------

std::string_view decode_form_component(std::string_view raw, http::Arena& arena) {
    if (raw.find_first_of("%+") == std::string_view::npos) {
        return raw;
    }
    char* const begin = arena.allocate(raw.size()); // decoding never grows
    char* o = begin;
    decode_form(raw, [&o](char c) noexcept { *o++ = c; });
    return {begin, static_cast<std::size_t>(o - begin)};
}

bool form_component_equals(std::string_view raw, std::string_view name) noexcept {
    std::size_t i = 0;
    bool equal = true;
    decode_form(raw, [&](char c) noexcept {
        equal = equal && i < name.size() && name[i] == c;
        ++i;
    });
    return equal && i == name.size();
}

std::optional<std::string_view> find_form_value(std::string_view body, std::string_view name,
                                                http::Arena& arena) {
    while (!body.empty()) {
        const std::size_t amp = body.find('&');
        const std::string_view pair = body.substr(0, amp);
        body = amp == std::string_view::npos ? std::string_view{} : body.substr(amp + 1);
        if (pair.empty()) {
            continue;
        }
        const std::size_t eq = pair.find('=');
        if (form_component_equals(pair.substr(0, eq), name)) {
            return eq == std::string_view::npos ? std::string_view{}
                                                : decode_form_component(pair.substr(eq + 1), arena);
        }
    }
    return std::nullopt;
}

// --- multipart: errors and Content-Type ------------------------------------------------------

std::string_view describe(MultipartError e) noexcept {
    switch (e) {
    case MultipartError::none:
        return "no error";
    case MultipartError::not_multipart:
        return "multipart: the Content-Type is not multipart/form-data";
    case MultipartError::missing_boundary:
        return "multipart: the Content-Type has no boundary parameter";
    case MultipartError::invalid_boundary:
        return "multipart: invalid boundary (1 to 70 of 0-9 A-Z a-z '()+_,-./:=? or space, not "
               "ending in a "
               "space)";
    case MultipartError::bare_lf:
        return "multipart: a delimiter or part header line ends with a bare LF (CRLF is required)";
    case MultipartError::bare_cr:
        return "multipart: a CR not followed by LF in a delimiter or part header line";
    case MultipartError::malformed_delimiter:
        return "multipart: a boundary delimiter is followed by something other than '--' or CRLF";
    case MultipartError::header_too_large:
        return "multipart: a part's headers are too large";
    case MultipartError::malformed_header:
        return "multipart: malformed part header line";
    case MultipartError::duplicate_header:
        return "multipart: Content-Disposition or Content-Type repeated in a part";
    case MultipartError::missing_disposition:
        return "multipart: a part has no Content-Disposition header";
    case MultipartError::invalid_disposition:
        return "multipart: invalid Content-Disposition (form-data with valid, unrepeated "
               "parameters expected)";
    case MultipartError::missing_name:
        return "multipart: a part's Content-Disposition has no name parameter";
    case MultipartError::too_many_parts:
        return "multipart: too many parts";
    case MultipartError::truncated:
        return "multipart: the body ends before the closing boundary delimiter";
    }
    return "multipart: unknown error";
}

int http_status(MultipartError e) noexcept {
    switch (e) {
    case MultipartError::none:
        return 0;
    case MultipartError::header_too_large:
    case MultipartError::too_many_parts:
        return 413;
    default:
        return 400;
    }
}

namespace {

/// Parses `; name=value` parameters (value a token or a quoted-string with quoted-pairs) of a
/// header value whose leading type was removed, calling `on(name, unescaped)`; false when
/// malformed or `on` returns false. A trailing ';' is tolerated.
template <class F>
bool parse_params(std::string_view s, std::string& scratch, F&& on) {
    std::size_t i = 0;
    auto skip_ows = [&] {
        while (i < s.size() && detail::is_ows(s[i])) {
            ++i;
        }
    };
    for (;;) {
        skip_ows();
        if (i == s.size()) {
            return true;
        }
        if (s[i] != ';') {
            return false;
        }
        ++i;
        skip_ows();
        if (i == s.size()) {
            return true; // trailing ';'
        }
        const std::size_t name_begin = i;
        while (i < s.size() && is_tchar(s[i])) {
            ++i;
        }
        const std::string_view name = s.substr(name_begin, i - name_begin);
        skip_ows();
        if (name.empty() || i == s.size() || s[i] != '=') {
            return false;
        }
        ++i;
        skip_ows();
        scratch.clear();
        if (i < s.size() && s[i] == '"') {
            ++i;
            for (;;) {
                if (i == s.size()) {
                    return false; // unterminated quoted-string
                }
                const char c = s[i++];
                if (c == '"') {
                    break;
                }
                if (c == '\\') {
                    if (i == s.size()) {
                        return false;
                    }
                    scratch.push_back(s[i++]);
                } else {
                    scratch.push_back(c);
                }
            }
        } else {
            const std::size_t value_begin = i;
            while (i < s.size() && is_tchar(s[i])) {
                ++i;
            }
            if (i == value_begin) {
                return false;
            }
            scratch.assign(s.substr(value_begin, i - value_begin));
        }
        if (!on(name, std::string_view(scratch))) {
            return false;
        }
    }
}

/// RFC 2046 bchars (space excluded: it may not be last, handled separately).
[[nodiscard]] constexpr bool is_bchar_nospace(char c) noexcept {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        return true;
    }
    return std::string_view("'()+_,-./:=?").find(c) != std::string_view::npos;
}

[[nodiscard]] bool valid_boundary(std::string_view b) noexcept {
    if (b.empty() || b.size() > 70 || b.back() == ' ') {
        return false;
    }
    for (const char c : b) {
        if (c != ' ' && !is_bchar_nospace(c)) {
            return false;
        }
    }
    return true;
}

/// Decodes an RFC 5987 ext-value (`UTF-8'lang'%e2%82%ac.txt`); false when invalid.
[[nodiscard]] bool decode_ext_value(std::string_view v, std::string& out) {
    const std::size_t q1 = v.find('\'');
    const std::size_t q2 = q1 == std::string_view::npos ? q1 : v.find('\'', q1 + 1);
    if (q2 == std::string_view::npos) {
        return false;
    }
    const std::string_view charset = v.substr(0, q1);
    const bool latin1 = iequals(charset, "ISO-8859-1");
    if (!latin1 && !iequals(charset, "UTF-8")) {
        return false;
    }
    out.clear();
    const std::string_view value = v.substr(q2 + 1);
    for (std::size_t i = 0; i < value.size();) {
        unsigned b = 0;
        if (value[i] == '%') {
            const int e = escape_at(value, i);
            if (e < 0) {
                return false;
            }
            b = static_cast<unsigned>(e);
            i += 3;
        } else {
            b = byte(value[i]);
            ++i;
        }
        if (b < 0x20 || b == 0x7F) {
            return false; // no control characters in a file name
        }
        if (latin1 && b >= 0x80) {
            out.push_back(static_cast<char>(0xC0 | (b >> 6)));
            out.push_back(static_cast<char>(0x80 | (b & 0x3F)));
        } else {
            out.push_back(static_cast<char>(b));
        }
    }
    return true;
}

/// The last path component of a client file name; "." and ".." become empty.
void to_base_name(std::string& name) {
    const std::size_t slash = name.find_last_of("/\\");
    if (slash != std::string::npos) {
        name.erase(0, slash + 1);
    }
    if (name == "." || name == "..") {
        name.clear();
    }
}

} // namespace

MultipartError parse_multipart_boundary(std::string_view content_type, std::string& boundary) {
    const std::size_t semi = content_type.find(';');
    if (!iequals(detail::trim_ows(content_type.substr(0, semi)), "multipart/form-data")) {
        return MultipartError::not_multipart;
    }
    boundary.clear();
    bool seen = false;
    std::string scratch;
    const std::string_view params =
        semi == std::string_view::npos ? std::string_view{} : content_type.substr(semi);
    const bool ok =
        parse_params(params, scratch, [&](std::string_view name, std::string_view value) {
            if (!iequals(name, "boundary")) {
                return true;
            }
            if (seen) {
                return false; // two boundaries: ambiguous
            }
            seen = true;
            boundary.assign(value);
            return true;
        });
    if (!ok) {
        return MultipartError::invalid_boundary; // malformed parameters, or two boundaries
    }
    if (!seen) {
        return MultipartError::missing_boundary;
    }
    return valid_boundary(boundary) ? MultipartError::none : MultipartError::invalid_boundary;
}

// --- multipart: the incremental parser -------------------------------------------------------

MultipartParser::MultipartParser(std::string_view boundary, MultipartHandler& handler,
                                 const MultipartLimits& limits)
    : delimiter_(std::string("\r\n--").append(boundary))
    , handler_(&handler)
    , max_parts_(limits.max_parts)
    , max_header_bytes_(limits.max_header_bytes) {
    if (!valid_boundary(boundary)) {
        error_ = MultipartError::invalid_boundary;
    }
}

MultipartError MultipartParser::fail(MultipartError e) noexcept {
    error_ = e;
    return e;
}

MultipartError MultipartParser::feed(std::string_view bytes) {
    const char* p = bytes.data();
    const char* const end = p + bytes.size();
    while (p != end && error_ == MultipartError::none) {
        switch (state_) {
        case State::preamble:
        case State::body:
            p = scan(p, end);
            break;
        case State::after_boundary:
            switch (*p++) {
            case '-':
                state_ = State::close_dash;
                break;
            case ' ':
            case '\t':
                state_ = State::padding;
                break;
            case '\r':
                state_ = State::boundary_lf;
                break;
            case '\n':
                return fail(MultipartError::bare_lf);
            default:
                return fail(MultipartError::malformed_delimiter);
            }
            break;
        case State::padding:
            switch (*p++) {
            case ' ':
            case '\t':
                break;
            case '\r':
                state_ = State::boundary_lf;
                break;
            case '\n':
                return fail(MultipartError::bare_lf);
            default:
                return fail(MultipartError::malformed_delimiter);
            }
            break;
        case State::boundary_lf:
            if (*p++ != '\n') {
                return fail(MultipartError::bare_cr);
            }
            if (++parts_ > max_parts_) {
                return fail(MultipartError::too_many_parts);
            }
            header_block_.clear();
            state_ = State::headers;
            break;
        case State::close_dash:
            if (*p++ != '-') {
                return fail(MultipartError::malformed_delimiter);
            }
            state_ = State::epilogue;
            break;
        case State::headers:
            p = step_headers(p, end);
            break;
        case State::epilogue:
            p = end;
            break;
        }
    }
    return error_;
}

MultipartError MultipartParser::finish() noexcept {
    if (error_ == MultipartError::none && state_ != State::epilogue) {
        error_ = MultipartError::truncated;
    }
    return error_;
}

void MultipartParser::found_delimiter() {
    match_ = 0;
    const bool in_body = state_ == State::body;
    state_ = State::after_boundary;
    if (in_body) {
        handler_->on_part_end();
    }
}

// Looks for delimiter_ in [p, end). delimiter_ holds its only CR at index 0 (bchars have none),
// so after a mismatch the held prefix cannot contain the start of another match: it is content,
// and the mismatching byte is looked at again. No KMP table needed.
const char* MultipartParser::scan(const char* p, const char* end) {
    const bool body = state_ == State::body;
    while (match_ != 0 && p != end) { // a match carried over from earlier input
        if (*p == delimiter_[match_]) {
            ++p;
            if (++match_ == delimiter_.size()) {
                found_delimiter();
                return p;
            }
        } else {
            if (body) {
                handler_->on_part_data(std::string_view(delimiter_).substr(0, match_));
            }
            match_ = 0;
        }
    }
    const char* content = p;
    while (p != end) {
        const auto* cr =
            static_cast<const char*>(std::memchr(p, '\r', static_cast<std::size_t>(end - p)));
        if (cr == nullptr) {
            p = end;
            break;
        }
        const std::size_t n = std::min(static_cast<std::size_t>(end - cr), delimiter_.size());
        if (std::memcmp(cr, delimiter_.data(), n) == 0) {
            if (body && cr != content) {
                handler_->on_part_data({content, static_cast<std::size_t>(cr - content)});
            }
            if (n == delimiter_.size()) {
                found_delimiter();
                return cr + n;
            }
            match_ = n; // a prefix at the end of the input: decided by the next bytes
            return end;
        }
        p = cr + 1;
    }
    if (body && p != content) {
        handler_->on_part_data({content, static_cast<std::size_t>(p - content)});
    }
    return end;
}

const char* MultipartParser::step_headers(const char* p, const char* end) {
    while (p != end) {
        const char c = *p++;
        const bool after_cr = !header_block_.empty() && header_block_.back() == '\r';
        if (c == '\n' && !after_cr) {
            fail(MultipartError::bare_lf);
            return end;
        }
        if (after_cr && c != '\n') {
            fail(MultipartError::bare_cr);
            return end;
        }
        header_block_.push_back(c);
        if (header_block_.size() > max_header_bytes_) {
            fail(MultipartError::header_too_large);
            return end;
        }
        if (c == '\n' && (header_block_.size() == 2 || header_block_.ends_with("\r\n\r\n"))) {
            if (parse_headers() != MultipartError::none) {
                return end;
            }
            state_ = State::body;
            match_ = 0;
            return p;
        }
    }
    return end;
}

MultipartError MultipartParser::parse_headers() {
    std::string_view block(header_block_);
    block.remove_suffix(2); // the empty line
    std::string_view disposition;
    std::string_view content_type;
    bool have_disposition = false;
    bool have_type = false;
    while (!block.empty()) {
        const std::size_t eol = block.find("\r\n");
        const std::string_view line = block.substr(0, eol);
        block = block.substr(eol + 2);
        if (line.empty() || detail::is_ows(line.front())) {
            return fail(MultipartError::malformed_header); // obs-fold
        }
        const std::size_t colon = line.find(':');
        if (colon == std::string_view::npos || !is_token(line.substr(0, colon))) {
            return fail(MultipartError::malformed_header);
        }
        const std::string_view name = line.substr(0, colon);
        const std::string_view value = detail::trim_ows(line.substr(colon + 1));
        for (const char c : value) {
            if (is_ctl(c) && c != '\t') {
                return fail(MultipartError::malformed_header);
            }
        }
        if (iequals(name, "Content-Disposition")) {
            if (have_disposition) {
                return fail(MultipartError::duplicate_header);
            }
            have_disposition = true;
            disposition = value;
        } else if (iequals(name, "Content-Type")) {
            if (have_type) {
                return fail(MultipartError::duplicate_header);
            }
            have_type = true;
            content_type = value;
        }
    }
    if (!have_disposition) {
        return fail(MultipartError::missing_disposition);
    }
    std::size_t type_end = 0;
    while (type_end < disposition.size() && is_tchar(disposition[type_end])) {
        ++type_end;
    }
    if (!iequals(disposition.substr(0, type_end), "form-data")) {
        return fail(MultipartError::invalid_disposition);
    }
    bool have_name = false;
    bool have_filename = false;
    bool have_ext = false;
    std::string ext_name;
    std::string scratch;
    const bool ok = parse_params(disposition.substr(type_end), scratch,
                                 [&](std::string_view key, std::string_view v) {
                                     bool* seen = nullptr;
                                     std::string* target = nullptr;
                                     if (iequals(key, "name")) {
                                         seen = &have_name;
                                         target = &name_;
                                     } else if (iequals(key, "filename")) {
                                         seen = &have_filename;
                                         target = &filename_;
                                     } else if (iequals(key, "filename*")) {
                                         seen = &have_ext;
                                         target = &ext_name;
                                     } else {
                                         return true; // unknown parameters are ignored
                                     }
                                     if (*seen) {
                                         return false; // repeated: ambiguous
                                     }
                                     *seen = true;
                                     target->assign(v);
                                     return true;
                                 });
    if (!ok) {
        return fail(MultipartError::invalid_disposition);
    }
    if (!have_name) {
        return fail(MultipartError::missing_name);
    }
    if (!have_filename) {
        filename_.clear();
    }
    if (have_ext && decode_ext_value(ext_name, scratch)) {
        filename_ = scratch;
    }
    to_base_name(filename_);
    handler_->on_part_begin(PartHeaders{name_, filename_, have_filename || have_ext, content_type});
    return error_;
}

// --- MultipartForm ---------------------------------------------------------------------------

namespace {

[[noreturn]] void throw_errno(const std::string& what) {
    throw std::system_error(errno, std::generic_category(), what);
}

void write_all(int fd, std::string_view bytes, const std::string& path) {
    while (!bytes.empty()) {
        const ssize_t n = ::write(fd, bytes.data(), bytes.size());
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw_errno("multipart: writing " + path);
        }
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
}

/// Builds a MultipartForm's vectors from parser events, spilling big files to temporary files.
class FormBuilder final : public MultipartHandler {
public:
    FormBuilder(std::vector<FormFile>& files,
                std::vector<std::pair<std::string, std::string>>& fields,
                const MultipartLimits& limits)
        : files_(files)
        , fields_(fields)
        , limits_(limits) {}
    FormBuilder(const FormBuilder&) = delete;
    FormBuilder& operator=(const FormBuilder&) = delete;
    FormBuilder(FormBuilder&&) = delete;
    FormBuilder& operator=(FormBuilder&&) = delete;
    ~FormBuilder() override { close_file(); }

    void on_part_begin(const PartHeaders& h) override {
        in_file_ = h.has_filename;
        if (in_file_) {
            FormFile f;
            f.field.assign(h.name);
            f.filename.assign(h.filename);
            f.content_type.assign(h.content_type.empty() ? std::string_view("text/plain")
                                                         : h.content_type);
            files_.push_back(std::move(f));
        } else {
            fields_.emplace_back(std::string(h.name), std::string());
        }
    }

    void on_part_data(std::string_view bytes) override {
        if (!in_file_) {
            std::string& value = fields_.back().second;
            if (bytes.size() > limits_.memory_limit - value.size()) {
                throw HttpError(413, fmt::format("multipart: field '{}' is larger than {} bytes",
                                                 fields_.back().first, limits_.memory_limit));
            }
            value.append(bytes);
            return;
        }
        FormFile& f = files_.back();
        if (fd_ < 0 && bytes.size() > limits_.memory_limit - f.size) {
            spill(f);
        }
        f.size += bytes.size();
        if (fd_ >= 0) {
            write_all(fd_, bytes, f.temp_path);
        } else {
            f.data.append(bytes);
        }
    }

    void on_part_end() override {
        if (in_file_ && fd_ >= 0) {
            const int fd = std::exchange(fd_, -1);
            if (::close(fd) != 0 && errno != EINTR) {
                throw_errno("multipart: closing " + files_.back().temp_path);
            }
        }
    }

private:
    // The file outgrew memory_limit: move it to a temporary file named by mkstemp only.
    void spill(FormFile& f) {
        const std::string dir = limits_.temp_dir.empty() ? std::string("/tmp") : limits_.temp_dir;
        std::string path = dir + "/ringwork-upload-XXXXXX";
        fd_ = ::mkostemp(path.data(), O_CLOEXEC); // mode 0600
        if (fd_ < 0) {
            throw_errno("multipart: creating a temporary file in " + dir);
        }
        f.temp_path =
            std::move(path); // from now on ~MultipartForm (or the ctor's catch) unlinks it
        write_all(fd_, f.data, f.temp_path);
        std::string().swap(f.data);
    }
    void close_file() noexcept {
        if (fd_ >= 0) {
            ::close(std::exchange(fd_, -1));
        }
    }

    std::vector<FormFile>& files_;
    std::vector<std::pair<std::string, std::string>>& fields_;
    const MultipartLimits& limits_;
    int fd_ = -1;
    bool in_file_ = false;
};

} // namespace

std::string FormFile::read() const {
    if (in_memory()) {
        return data;
    }
    const int fd = ::open(temp_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        throw_errno("multipart: opening " + temp_path);
    }
    std::string out;
    out.resize(size);
    std::size_t got = 0;
    for (;;) {
        if (got == out.size()) {
            out.resize(out.size() + 4096); // the file may have grown since
        }
        const ssize_t n = ::read(fd, out.data() + got, out.size() - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            const int err = errno;
            ::close(fd);
            throw std::system_error(err, std::generic_category(),
                                    "multipart: reading " + temp_path);
        }
        if (n == 0) {
            break;
        }
        got += static_cast<std::size_t>(n);
    }
    ::close(fd);
    out.resize(got);
    return out;
}

MultipartForm::MultipartForm(std::string_view body, std::string_view content_type,
                             const MultipartLimits& limits) {
    MultipartStream stream(content_type, limits);
    stream.feed(body);
    *this = stream.finish();
}

struct MultipartStream::Impl {
    Impl(std::string_view boundary, const MultipartLimits& l)
        : limits(l), builder(form.files_, form.fields_, limits), parser(boundary, builder, limits) {}
    MultipartLimits limits;
    MultipartForm form;     // filled as parts arrive; owns the temporary files
    FormBuilder builder;    // refers to form
    MultipartParser parser; // refers to builder
    std::size_t bytes = 0;
    bool broken = false;    // a feed threw: the parser must not be fed again
};

MultipartStream::MultipartStream(std::string_view content_type, const MultipartLimits& limits) {
    std::string boundary;
    if (const MultipartError e = parse_multipart_boundary(content_type, boundary);
        e != MultipartError::none) {
        throw HttpError(http_status(e), std::string(describe(e)));
    }
    impl_ = std::make_unique<Impl>(boundary, limits);
}

MultipartStream::~MultipartStream() = default; // ~MultipartForm removes the temporary files

void MultipartStream::feed(std::string_view bytes) {
    Impl& s = *impl_;
    if (s.broken) {
        throw std::logic_error("MultipartStream::feed after an error");
    }
    s.broken = true;
    if (s.limits.max_body_bytes != 0 && bytes.size() > s.limits.max_body_bytes - s.bytes) {
        throw HttpError(413, fmt::format("multipart: the body is larger than {} bytes", s.limits.max_body_bytes));
    }
    s.bytes += bytes.size();
    if (const MultipartError e = s.parser.feed(bytes); e != MultipartError::none) {
        throw HttpError(http_status(e), std::string(describe(e)));
    }
    s.broken = false;
}

MultipartForm MultipartStream::finish() {
    Impl& s = *impl_;
    if (s.broken) {
        throw std::logic_error("MultipartStream::finish after an error");
    }
    if (const MultipartError e = s.parser.finish(); e != MultipartError::none) {
        throw HttpError(http_status(e), std::string(describe(e)));
    }
    return std::move(s.form);
}

MultipartForm::MultipartForm(MultipartForm&& other) noexcept
    : files_(std::exchange(other.files_, {}))
    , fields_(std::exchange(other.fields_, {})) {
}

MultipartForm& MultipartForm::operator=(MultipartForm&& other) noexcept {
    if (this != &other) {
        remove_temp_files();
        files_ = std::exchange(other.files_, {});
        fields_ = std::exchange(other.fields_, {});
    }
    return *this;
}

MultipartForm::~MultipartForm() {
    remove_temp_files();
}

void MultipartForm::remove_temp_files() noexcept {
    for (FormFile& f : files_) {
        if (!f.temp_path.empty()) {
            ::unlink(f.temp_path.c_str()); // ENOENT when the handler moved it away: fine
        }
    }
}

std::optional<std::string_view> MultipartForm::value(std::string_view name) const noexcept {
    for (const auto& [k, v] : fields_) {
        if (k == name) {
            return std::string_view(v);
        }
    }
    return std::nullopt;
}

std::vector<std::string_view> MultipartForm::values(std::string_view name) const {
    std::vector<std::string_view> out;
    for (const auto& [k, v] : fields_) {
        if (k == name) {
            out.emplace_back(v);
        }
    }
    return out;
}

const FormFile* MultipartForm::file(std::string_view name) const noexcept {
    for (const FormFile& f : files_) {
        if (f.field == name) {
            return &f;
        }
    }
    return nullptr;
}

} // namespace ringwork::web
