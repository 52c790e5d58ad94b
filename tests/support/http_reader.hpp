// SPDX-License-Identifier: MIT
// Reading HTTP/1.1 responses off a raw socket in tests (Content-Length framing).
#pragma once

#include <sys/socket.h>

#include <string>
#include <utility>

namespace test {

/// Reads responses framed by Content-Length one at a time (bounded by the socket timeout);
/// bytes of a following pipelined response are kept for the next call.
class ResponseReader {
public:
    explicit ResponseReader(int fd) : fd_(fd) {}
    /// One response; `head_only` for the answer to HEAD (no body whatever the length says).
    std::string next(bool head_only = false) {
        char buf[4096];
        for (;;) {
            const auto end = got_.find("\r\n\r\n");
            if (end != std::string::npos) {
                const auto cl = got_.find("Content-Length: ");
                const std::size_t len = cl != std::string::npos && cl < end ? std::stoul(got_.substr(cl + 16)) : 0;
                const std::size_t total = end + 4 + (head_only ? 0 : len);
                if (got_.size() >= total) {
                    std::string one = got_.substr(0, total);
                    got_.erase(0, total);
                    return one;
                }
            }
            const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0) {
                return std::exchange(got_, std::string());
            }
            got_.append(buf, static_cast<std::size_t>(n));
        }
    }

private:
    int fd_;
    std::string got_;
};

inline std::string read_response(int fd, bool head_only = false) { return ResponseReader(fd).next(head_only); }

inline std::string body_of(const std::string& response) {
    const auto end = response.find("\r\n\r\n");
    return end == std::string::npos ? std::string() : response.substr(end + 4);
}

} // namespace test
