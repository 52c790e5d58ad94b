// SPDX-License-Identifier: MIT
// Context: request accessors, response helpers, per-request values.
#include <ringwork/web/app.hpp>
#include <ringwork/web/context.hpp>
#include <ringwork/web/form.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

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
        // "[json.exception.parse_error.101] parse error at line 1, ...": the tag is nlohmann's
        // internal id, not something the client can act on.
        std::string_view what(e.what());
        if (what.starts_with("[json.exception.")) {
            if (const auto close = what.find("] "); close != std::string_view::npos) {
                what.remove_prefix(close + 2);
            }
        }
        error = what;
    }
    throw HttpError(400, "invalid JSON body: " + error);
}

bool Context::accepts(std::string_view type) const noexcept {
    std::string_view accept = x_->request.header("Accept");
    if (accept.empty()) {
        return true;
    }
    const auto slash = type.find('/');
    const std::string_view major = type.substr(0, slash);
    while (!accept.empty()) {
        const auto comma = accept.find(',');
        std::string_view item = trim_ows(accept.substr(0, comma));
        accept = comma == std::string_view::npos ? std::string_view{} : accept.substr(comma + 1);
        const auto semi = item.find(';');
        const std::string_view media = trim_ows(item.substr(0, semi));
        if (semi != std::string_view::npos) {
            const std::string_view params = item.substr(semi);
            if (params.find("q=0") != std::string_view::npos && params.find("q=0.") == std::string_view::npos) {
                continue; // q=0: explicitly refused
            }
        }
        if (media == "*/*" || http::iequals(media, type)) {
            return true;
        }
        if (media.size() == major.size() + 2 && http::iequals(media.substr(0, major.size()), major) &&
            media.substr(major.size()) == "/*") {
            return true;
        }
    }
    return false;
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

runtime::Task<bool> Context::sse(SseEvent event) {
    if (!x_->streaming()) {
        x_->response.set_header("Content-Type", "text/event-stream");
        x_->response.set_header("Cache-Control", "no-cache");
    }
    std::string text;
    if (!event.id.empty()) {
        text.append("id: ").append(event.id).append("\n");
    }
    if (!event.event.empty()) {
        text.append("event: ").append(event.event).append("\n");
    }
    if (event.retry_ms != 0) {
        text.append("retry: ").append(std::to_string(event.retry_ms)).append("\n");
    }
    std::string_view data = event.data;
    do {
        const auto nl = data.find('\n');
        text.append("data: ").append(data.substr(0, nl)).append("\n");
        data = nl == std::string_view::npos ? std::string_view{} : data.substr(nl + 1);
    } while (!data.empty());
    text.append("\n");
    // `text` lives in this frame across the write (the arena would grow with every event).
    const bool ok = co_await x_->write(text);
    if (!ok) {
        co_return false;
    }
    co_return co_await x_->flush();
}

} // namespace ringwork::web
