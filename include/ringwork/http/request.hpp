// SPDX-License-Identifier: MIT
// Request: the parsed head (views into the receive buffer or the arena), body and peer.
#pragma once

#include <ringwork/http/buffer.hpp>
#include <ringwork/http/parser.hpp>
#include <ringwork/io/socket.hpp>

#include <optional>
#include <string_view>

namespace ringwork::http {

/// \brief Case-insensitive ASCII comparison (header names, tokens).
bool iequals(std::string_view a, std::string_view b) noexcept;

/// \brief One HTTP request as the handler sees it.
///
/// Lifetime: the views are valid until the handler's Task completes, also across `co_await`s
/// (the connection keeps the receive buffer they point into while the handler is suspended).
/// At its first suspension the connection also copies the head and body into the request's
/// arena and re-points the stored views: a handler detached by respond_now() re-reads them
/// there after the connection has gone. Reactor thread only.
class Request {
public:
    [[nodiscard]] Method method() const noexcept { return head_.method; }
    [[nodiscard]] std::string_view method_text() const noexcept { return head_.method_text; }
    /// The request-target as received (origin-form path plus query, or absolute-form).
    [[nodiscard]] std::string_view raw_target() const noexcept { return head_.target; }
    /// The path as received (not percent-decoded).
    [[nodiscard]] std::string_view raw_path() const noexcept { return head_.path; }
    /// The percent-decoded path (decoded on first use into the arena). An invalid escape or %00
    /// leaves it empty and sets path_valid() to false.
    std::string_view path();
    [[nodiscard]] bool path_valid() const noexcept { return path_valid_; }
    /// The query string after '?', not decoded.
    [[nodiscard]] std::string_view query_string() const noexcept { return head_.query; }
    /// First value of query argument `name`, decoded (+ as space); nullopt when absent.
    std::optional<std::string_view> query(std::string_view name);
    /// Every (name, value) of the query string, decoded, in order. Invalid escapes are kept raw.
    template <class F>
    void for_each_query(F&& f);
    [[nodiscard]] std::string_view host() const noexcept { return head_.host; }
    [[nodiscard]] int version_minor() const noexcept { return head_.version_minor; }
    [[nodiscard]] bool keep_alive() const noexcept { return head_.keep_alive; }
    [[nodiscard]] std::span<const Header> headers() const noexcept { return head_.headers; }
    /// First header named `name` (case-insensitive); empty view when absent.
    [[nodiscard]] std::string_view header(std::string_view name) const noexcept;
    [[nodiscard]] bool has_header(std::string_view name) const noexcept;
    /// The whole body (de-chunked); empty when there is none or it is streamed.
    [[nodiscard]] std::string_view body() const noexcept { return body_; }
    /// The body was not read before the handler ran: read it with Exchange::read_body()
    /// (ServerOptions::stream_request_body). head().content_length is its declared length
    /// unless head().body is BodyKind::chunked.
    [[nodiscard]] bool body_streamed() const noexcept { return body_streamed_; }
    /// The peer's address (looked up on first use: one getpeername per connection that asks).
    const io::SocketAddress& remote_address();
    [[nodiscard]] const RequestHead& head() const noexcept { return head_; }
    /// Bytes of this request kept in the arena (for tests: 0 when nothing was copied).
    [[nodiscard]] Arena& arena() noexcept { return *arena_; }

    // --- for the connection (not for handlers) -------------------------------------------
    RequestHead head_;
    std::string_view body_;
    int peer_fd_ = -1;
    io::SocketAddress* peer_cache_ = nullptr; ///< the connection's looked-up peer (family 0: not yet)
    io::SocketAddress remote_{};
    bool remote_known_ = false;
    Arena* arena_ = nullptr;
    std::string_view decoded_path_;
    bool path_decoded_ = false;
    bool path_valid_ = true;
    bool body_streamed_ = false;
    void reset() noexcept {
        body_streamed_ = false;
        head_ = RequestHead{};
        body_ = {};
        decoded_path_ = {};
        path_decoded_ = false;
        path_valid_ = true;
        remote_known_ = false;
    }
};

template <class F>
void Request::for_each_query(F&& f) {
    std::string_view q = head_.query;
    while (!q.empty()) {
        const auto amp = q.find('&');
        const std::string_view pair = q.substr(0, amp);
        q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
        if (pair.empty()) {
            continue;
        }
        const auto eq = pair.find('=');
        const std::string_view raw_name = pair.substr(0, eq);
        const std::string_view raw_value = eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
        auto decode = [this](std::string_view raw) {
            if (raw.find_first_of("%+") == std::string_view::npos) {
                return raw;
            }
            char* out = arena_->allocate(raw.size());
            const DecodeResult r = percent_decode(raw, out, true);
            return r.ok ? std::string_view(out, r.size) : raw;
        };
        f(decode(raw_name), decode(raw_value));
    }
}

} // namespace ringwork::http
