// SPDX-License-Identifier: MIT
// Response head serialization and the per-thread cached Server and Date lines.
#pragma once

#include <ringwork/http/buffer.hpp>
#include <ringwork/http/response.hpp>
#include <ringwork/http/server.hpp>

#include <ctime>
#include <string>
#include <string_view>

namespace ringwork::http::detail {

/// \brief The default header lines "Server: <name>\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n",
/// the date formatted at most once per second per thread: a head copies them in one piece
/// (the Server line alone or the Date line alone are its prefix and suffix).
class DateCache {
public:
    /// `server_name` empty: no Server line.
    explicit DateCache(std::string_view server_name = {});
    /// Both lines.
    std::string_view server_and_date() noexcept {
        tick();
        return text_;
    }
    /// The Date line alone.
    std::string_view date_line() noexcept {
        tick();
        return std::string_view(text_).substr(server_len_);
    }
    /// The Server line alone (empty without a name).
    [[nodiscard]] std::string_view server_line() const noexcept {
        return std::string_view(text_).substr(0, server_len_);
    }

private:
    static constexpr std::size_t kDateSize = 29; ///< IMF-fixdate
    void tick() noexcept {
        timespec ts{};
        ::clock_gettime(CLOCK_REALTIME_COARSE, &ts); // vDSO: no syscall
        if (ts.tv_sec != second_) {
            refresh(ts.tv_sec);
        }
    }
    void refresh(std::time_t sec) noexcept;
    std::time_t second_ = -1;
    std::size_t server_len_ = 0; ///< "Server: <name>\r\n", or 0
    std::string text_;
};

/// \brief What the connection decided about the response framing.
struct HeadPlan {
    bool head_request = false; ///< HEAD: headers with the GET length, no body
    bool close = false;        ///< send Connection: close
    bool keep_alive_10 = false;///< HTTP/1.0 keep-alive: send Connection: keep-alive
    bool chunked = false;      ///< streamed: Transfer-Encoding: chunked instead of a length
    bool close_delimited = false; ///< streamed to HTTP/1.0: no length, the close ends the body
    bool keep_connection_header = false; ///< hijack (101 Upgrade): the handler's Connection header goes out
};

/// \brief True when a response with `status` never has a body (1xx, 204, 304).
constexpr bool bodyless_status(int status) noexcept {
    return (status >= 100 && status < 200) || status == 204 || status == 304;
}

/// \brief Append the status line and header section of `r` (body length `body_size`).
void write_head(ByteBuffer& out, const Response& r, std::size_t body_size, const HeadPlan& plan,
                const ServerOptions& options, DateCache& date);

/// \brief Append a complete plain-text response (errors, 503s) with Connection: close. For a
/// HEAD request (`head_request`) the head declares the body's length and the body stays out
/// (RFC 9110 §9.3.2).
void write_simple(ByteBuffer& out, int status, std::string_view body, const ServerOptions& options,
                  DateCache& date, bool close = true, bool head_request = false);

} // namespace ringwork::http::detail
