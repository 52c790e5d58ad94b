// SPDX-License-Identifier: MIT
// Context: request accessors, response helpers, per-request values.
#include <ringwork/io/timer.hpp>
#include <ringwork/runtime/stop_token.hpp>
#include <ringwork/web/app.hpp>
#include <ringwork/web/context.hpp>
#include <ringwork/web/form.hpp>

#include "http/chars.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <string>

namespace ringwork::web {

Context::~Context() {
    for (std::size_t i = local_count_; i-- > 0;) {
        locals_[i].destroy(locals_[i].value);
    }
}

void Context::put_local(std::string_view key, void* value, const void* type, void (*destroy)(void*) noexcept) {
    for (std::size_t i = 0; i < local_count_; ++i) {
        if (locals_[i].named(key)) {
            locals_[i].destroy(locals_[i].value);
            locals_[i].value = value;
            locals_[i].type = type;
            locals_[i].destroy = destroy;
            return;
        }
    }
    if (local_count_ == kMaxLocals) {
        destroy(value);
        throw std::length_error("ringwork: Context holds at most 8 locals");
    }
    const std::string_view stored = x_->arena_.copy(key);
    locals_[local_count_++] = Local{stored.data(), stored.size(), value, type, destroy};
}

void* Context::find_local(std::string_view key, const void* type) const noexcept {
    for (std::size_t i = 0; i < local_count_; ++i) {
        if (locals_[i].named(key)) {
            return locals_[i].type == type ? locals_[i].value : nullptr;
        }
    }
    return nullptr;
}

namespace {

bool is_json_type(std::string_view type) noexcept {
    const auto semi = type.find(';');
    std::string_view media = type.substr(0, semi);
    while (!media.empty() && (media.back() == ' ' || media.back() == '\t')) {
        media.remove_suffix(1);
    }
    if (http::iequals(media, "application/json")) {
        return true;
    }
    return media.size() > 5 && http::iequals(media.substr(media.size() - 5), "+json");
}

using web::detail::trim_ows;

/// The next element of a `separator`-separated list (',' between Accept elements, ';' between
/// parameters); a separator inside a quoted-string is data. `list` keeps what follows.
std::string_view next_list_item(std::string_view& list, char separator) noexcept {
    bool quoted = false;
    for (std::size_t i = 0; i < list.size(); ++i) {
        const char ch = list[i];
        if (quoted) {
            if (ch == '\\') {
                ++i; // quoted-pair
            } else if (ch == '"') {
                quoted = false;
            }
        } else if (ch == '"') {
            quoted = true;
        } else if (ch == separator) {
            const std::string_view item = list.substr(0, i);
            list.remove_prefix(i + 1);
            return item;
        }
    }
    const std::string_view item = list;
    list = {};
    return item;
}

bool is_token(std::string_view s) noexcept {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char ch) {
        return http::detail::is_tchar(static_cast<unsigned char>(ch));
    });
}

std::string_view unquoted(std::string_view s) noexcept {
    return s.size() >= 2 && s.front() == '"' && s.back() == '"' ? s.substr(1, s.size() - 2) : s;
}

/// A qvalue (RFC 9110 §12.4.2: "0" [ "." 0*3DIGIT ] / "1" [ "." 0*3("0") ]) in thousandths;
/// -1 when malformed ("1.5", "0.0001", " 0", "").
int parse_qvalue(std::string_view s) noexcept {
    if (s.empty() || s.size() > 5 || (s[0] != '0' && s[0] != '1') || (s.size() > 1 && s[1] != '.')) {
        return -1;
    }
    int q = (s[0] - '0') * 1000;
    int scale = 100;
    for (std::size_t i = 2; i < s.size(); ++i, scale /= 10) {
        if (!http::detail::is_digit(static_cast<unsigned char>(s[i]))) {
            return -1;
        }
        q += (s[i] - '0') * scale;
    }
    return q > 1000 ? -1 : q;
}

/// Whether the parameters `params` (`a=1; b="2"`) hold `name` with `value` (both compared
/// case-insensitively, quotes ignored).
bool has_param(std::string_view params, std::string_view name, std::string_view value) noexcept {
    while (!params.empty()) {
        const std::string_view param = trim_ows(next_list_item(params, ';'));
        const auto eq = param.find('=');
        if (eq != std::string_view::npos && http::iequals(param.substr(0, eq), name) &&
            http::iequals(unquoted(param.substr(eq + 1)), unquoted(value))) {
            return true;
        }
    }
    return false;
}

/// How one Accept element applies to a media type: `specificity` -1 when it does not (or is
/// malformed), else 0 for */*, 1 for type/*, 2 for type/subtype, plus one per parameter.
struct RangeMatch {
    int specificity = -1;
    int q = 0;
};

/// The element `element` (`media-range *( OWS ";" OWS parameter ) [ weight ]`) against the
/// media type `major`/`minor` with parameters `type_params`. A range with parameters applies
/// only to a type that has them all (RFC 9110 §12.5.1: `text/plain;format=flowed` says nothing
/// about plain `text/plain`). An element with a malformed range, parameter or weight
/// (`q=2`, `q =0`) is ignored, as if absent.
RangeMatch match_media_range(std::string_view element, std::string_view major, std::string_view minor,
                             std::string_view type_params) noexcept {
    const std::string_view range = trim_ows(next_list_item(element, ';'));
    const auto slash = range.find('/');
    if (slash == std::string_view::npos) {
        return {};
    }
    const std::string_view r_major = range.substr(0, slash);
    const std::string_view r_minor = range.substr(slash + 1);
    if (!is_token(r_major) || !is_token(r_minor) || (r_major == "*" && r_minor != "*")) {
        return {};
    }
    int specificity = r_major == "*" ? 0 : (r_minor == "*" ? 1 : 2);
    bool applies =
        (r_major == "*" || http::iequals(r_major, major)) && (r_minor == "*" || http::iequals(r_minor, minor));
    int q = 1000;
    while (!element.empty()) {
        const std::string_view param = trim_ows(next_list_item(element, ';'));
        if (param.empty()) {
            continue; // "text/html;;q=0.5": an empty parameter is allowed (RFC 9110 §5.6.6)
        }
        const auto eq = param.find('=');
        if (eq == std::string_view::npos || !is_token(param.substr(0, eq)) || eq + 1 == param.size()) {
            return {}; // "q", "q =0", "level=": malformed
        }
        const std::string_view name = param.substr(0, eq);
        if (http::iequals(name, "q")) {
            q = parse_qvalue(param.substr(eq + 1));
            if (q < 0) {
                return {};
            }
            break; // what follows the weight is an extension, not a media type parameter
        }
        ++specificity;
        applies = applies && has_param(type_params, name, param.substr(eq + 1));
    }
    return applies ? RangeMatch{specificity, q} : RangeMatch{};
}

/// An IPv4 or IPv6 address in text form (IPv6 optionally in brackets), parsed without
/// allocating; false for anything else.
bool parse_ip_text(std::string_view text, io::SocketAddress& out) noexcept {
    if (text.size() > 2 && text.front() == '[' && text.back() == ']') {
        text = text.substr(1, text.size() - 2);
    }
    char buf[INET6_ADDRSTRLEN + 1];
    if (text.empty() || text.size() >= sizeof(buf)) {
        return false;
    }
    std::memcpy(buf, text.data(), text.size());
    buf[text.size()] = '\0';
    out = io::SocketAddress{};
    auto* v4 = reinterpret_cast<sockaddr_in*>(&out.storage);  // NOLINT: sockaddr API
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.storage); // NOLINT: sockaddr API
    if (::inet_pton(AF_INET, buf, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        out.length = sizeof(sockaddr_in);
        return true;
    }
    if (::inet_pton(AF_INET6, buf, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        out.length = sizeof(sockaddr_in6);
        return true;
    }
    return false;
}

} // namespace

void detail::throw_bad_number(std::string_view what, std::string_view name, std::string_view text,
                              std::string_view kind, bool out_of_range) {
    std::string message(what);
    message += " '";
    message += name;
    message += "' must be ";
    message += kind;
    if (out_of_range) {
        message += " in range";
    }
    message += ", got \"";
    // Quoted as received, cut short: it goes back to the client.
    for (const char ch : text.substr(0, 64)) {
        message += (static_cast<unsigned char>(ch) < 0x20 || ch == '"' || ch == '\\') ? '?' : ch;
    }
    message += text.size() > 64 ? "...\"" : "\"";
    throw HttpError(400, message);
}

namespace {

/// nlohmann's message without its "[json.exception.type_error.302] " tag: the tag is the
/// library's internal id, not something the client can act on.
std::string_view without_json_tag(std::string_view what) noexcept {
    if (what.starts_with("[json.exception.")) {
        if (const auto close = what.find("] "); close != std::string_view::npos) {
            what.remove_prefix(close + 2);
        }
    }
    return what;
}

} // namespace

void Context::unprocessable_json(const std::exception& e) {
    throw HttpError(422, "invalid JSON body: " + std::string(without_json_tag(e.what())));
}

nlohmann::json Context::json_body() const {
    const std::string_view type = x_->request.header("Content-Type");
    if (!type.empty() && !is_json_type(type)) {
        throw HttpError(415, "expected a JSON body (Content-Type: application/json)");
    }
    const std::string_view text = x_->request.body();
    if (!json_nesting_within(text, kMaxJsonDepth)) {
        // nlohmann parses any depth, but dump(), write_json() and most user code recurse once
        // per level: a body of a million '[' would overflow the reactor thread's stack.
        throw HttpError(400, "invalid JSON body: nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    }
    std::string error;
    try {
        return nlohmann::json::parse(text.begin(), text.end());
    } catch (const nlohmann::json::exception& e) {
        error = without_json_tag(e.what()); // "parse error at line 1, ..."
    }
    throw HttpError(400, "invalid JSON body: " + error);
}

bool Context::accepts(std::string_view type) const noexcept {
    std::string_view params = type;
    const std::string_view media = trim_ows(next_list_item(params, ';'));
    const auto slash = media.find('/');
    const std::string_view major = media.substr(0, slash);
    const std::string_view minor = slash == std::string_view::npos ? std::string_view{} : media.substr(slash + 1);
    bool present = false;
    int best = -1; // specificity of the most specific range that applies so far
    int best_q = 0;
    // Every Accept line: a second one continues the list (RFC 9110 §5.3).
    for (const http::Header& h : x_->request.headers()) {
        if (!http::iequals(h.name, "Accept") || trim_ows(h.value).empty()) {
            continue;
        }
        present = true;
        std::string_view list = h.value;
        while (!list.empty()) {
            const RangeMatch m = match_media_range(next_list_item(list, ','), major, minor, params);
            if (m.specificity > best) {
                best = m.specificity;
                best_q = m.q;
            } else if (m.specificity == best) {
                best_q = std::max(best_q, m.q);
            }
        }
    }
    return !present || (best >= 0 && best_q > 0);
}

std::string_view Context::ip() {
    if (!ip_.empty()) {
        return ip_;
    }
    const io::SocketAddress& peer = x_->request.remote_address();
    if (peer.family() != AF_INET && peer.family() != AF_INET6) {
        ip_ = "local";
        return ip_;
    }
    // The address as text straight from inet_ntop (no port to cut off, no std::string).
    char text[INET6_ADDRSTRLEN] = {};
    const void* bytes = peer.family() == AF_INET
                            ? static_cast<const void*>(&reinterpret_cast<const sockaddr_in*>(&peer.storage)->sin_addr) // NOLINT
                            : static_cast<const void*>(&reinterpret_cast<const sockaddr_in6*>(&peer.storage)->sin6_addr); // NOLINT
    if (::inet_ntop(peer.family(), bytes, text, sizeof(text)) == nullptr) {
        ip_ = "unknown";
        return ip_;
    }
    std::string_view chosen = x_->arena_.copy(text);
    if (app_->trusted_proxy(peer)) {
        // Every X-Forwarded-For line (a proxy may add its own line instead of appending), read
        // from the last entry backwards: each is the address the next hop saw. The first one
        // that is not a trusted proxy is the client; anything unparsable ends the walk there.
        const auto headers = x_->request.headers();
        std::string_view found;
        bool done = false;
        for (std::size_t h = headers.size(); h-- > 0 && !done;) {
            if (!http::iequals(headers[h].name, "X-Forwarded-For")) {
                continue;
            }
            std::string_view xff = headers[h].value;
            while (!xff.empty() && !done) {
                const auto comma = xff.rfind(',');
                const std::string_view item = trim_ows(comma == std::string_view::npos ? xff : xff.substr(comma + 1));
                xff = comma == std::string_view::npos ? std::string_view{} : xff.substr(0, comma);
                if (item.empty()) {
                    continue;
                }
                io::SocketAddress a;
                if (!parse_ip_text(item, a)) {
                    done = true;
                    break;
                }
                found = item;
                done = !app_->trusted_proxy(a);
            }
        }
        if (found.empty()) {
            const std::string_view real = trim_ows(x_->request.header("X-Real-IP"));
            io::SocketAddress a;
            if (parse_ip_text(real, a)) {
                found = real;
            }
        }
        if (!found.empty()) {
            chosen = found;
        }
    }
    ip_ = chosen;
    return ip_;
}

void Context::begin_json() {
    http::Response& r = x_->response;
    r.set_header("Content-Type", "application/json");
    r.body_buffer().clear();
}

void Context::text(std::string_view body) {
    x_->response.set_header("Content-Type", "text/plain; charset=utf-8");
    x_->response.set_body(body);
}

void Context::html(std::string_view body) {
    x_->response.set_header("Content-Type", "text/html; charset=utf-8");
    x_->response.set_body(body);
}

void Context::json(const Json& value) {
    begin_json();
    write_json(x_->response.body_buffer(), value);
}

void Context::json_text(std::string_view serialized) {
    x_->response.set_header("Content-Type", "application/json");
    x_->response.set_body(serialized);
}

void Context::redirect(std::string_view location, int code) {
    x_->response.set_status(code);
    x_->response.set_header("Location", location);
    x_->response.set_header("Content-Type", "text/html; charset=utf-8");
    http::ByteBuffer& body = x_->response.body_buffer();
    body.clear();
    body.append("<a href=\"");
    for (const char ch : location) {
        switch (ch) {
        case '"': body.append("&quot;"); break;
        case '<': body.append("&lt;"); break;
        case '>': body.append("&gt;"); break;
        case '&': body.append("&amp;"); break;
        default: body.append(ch);
        }
    }
    body.append("\">");
    body.append(http::reason_phrase(code));
    body.append("</a>.\n");
}

namespace {

runtime::Task<> pause(std::chrono::milliseconds duration) {
    auto timer = io::sleep_for(duration); // named: no awaiter temporary inside co_await
    co_await timer;
}

/// An SSE field value on one line: CR and LF (each would end the field) become spaces.
void append_sse_line(std::string& text, std::string_view value) {
    const std::size_t at = text.size();
    text.append(value);
    for (std::size_t i = at; i < text.size(); ++i) {
        if (text[i] == '\r' || text[i] == '\n') {
            text[i] = ' ';
        }
    }
}

} // namespace

runtime::Task<bool> Context::sleep_for(std::chrono::milliseconds duration) {
    const runtime::StopToken shutdown = x_->shutdown_token();
    if (shutdown.stop_requested()) {
        co_return false;
    }
    // The pause ends at whichever comes first: its time, the shutdown, the request's own stop.
    const runtime::StopToken request = co_await runtime::current_stop_token();
    runtime::StopSource either;
    auto stop_pause = [&either]() noexcept { either.request_stop(); };
    const runtime::StopCallback<decltype(stop_pause)> on_shutdown(shutdown, stop_pause);
    const runtime::StopCallback<decltype(stop_pause)> on_request(request, stop_pause);
    try {
        auto nap = pause(duration).with_stop_token(runtime::StopToken(either)); // named (GCC PR 100611)
        co_await nap;
    } catch (const runtime::OperationCancelled&) {
        if (!shutdown.stop_requested()) {
            throw; // the request's own cancellation
        }
        co_return false;
    }
    co_return true;
}

runtime::Task<bool> Context::sse(SseEvent event) {
    if (!x_->streaming()) {
        x_->response.set_header("Content-Type", "text/event-stream");
        x_->response.set_header("Cache-Control", "no-cache");
    }
    if (x_->shutdown_token().stop_requested()) {
        // A stream not begun yet ends empty but typed: an EventSource fails for good on
        // another Content-Type, and reconnects after an empty event stream.
        co_return false;
    }
    std::string text;
    if (!event.id.empty()) {
        text.append("id: ");
        append_sse_line(text, event.id);
        text.append("\n");
    }
    if (!event.event.empty()) {
        text.append("event: ");
        append_sse_line(text, event.event);
        text.append("\n");
    }
    if (event.retry_ms != 0) {
        text.append("retry: ").append(std::to_string(event.retry_ms)).append("\n");
    }
    // One `data:` field per line; a line ends with LF, CR or CRLF (as an EventSource reads it).
    std::string_view data = event.data;
    for (;;) {
        const auto end = data.find_first_of("\r\n");
        text.append("data: ").append(data.substr(0, end)).append("\n");
        if (end == std::string_view::npos) {
            break;
        }
        const std::size_t next = data.compare(end, 2, "\r\n") == 0 ? end + 2 : end + 1;
        data = data.substr(next);
        if (data.empty()) {
            break;
        }
    }
    text.append("\n");
    // `text` lives in this frame across the write (the arena would grow with every event).
    const bool ok = co_await x_->write(text);
    if (!ok) {
        co_return false;
    }
    co_return co_await x_->flush();
}

} // namespace ringwork::web
