// SPDX-License-Identifier: MIT
// test::raw_exchange: one request and its whole Content-Length-framed response over a kept-alive
// socket, with stack buffers only (allocation-counting tests must not allocate themselves).
#pragma once

#include "helpers.hpp"

#include <sys/socket.h>

#include <charconv>
#include <cstddef>
#include <string_view>

namespace test {

/// The response's status, or -1 on a broken or over-long (> 8 KiB) response.
inline int raw_exchange(int fd, std::string_view request) {
    if (!write_all(fd, request)) {
        return -1;
    }
    char buf[8192];
    std::size_t have = 0;
    std::size_t head_end = 0;
    std::size_t length = 0;
    for (;;) {
        if (have == sizeof(buf)) {
            return -1;
        }
        const ssize_t n = ::recv(fd, buf + have, sizeof(buf) - have, 0);
        if (n <= 0) {
            return -1;
        }
        have += static_cast<std::size_t>(n);
        const std::string_view text(buf, have);
        if (head_end == 0) {
            const auto end = text.find("\r\n\r\n");
            if (end == std::string_view::npos) {
                continue;
            }
            head_end = end + 4;
            const auto cl = text.find("Content-Length: ");
            if (cl == std::string_view::npos || cl > end) {
                return -1;
            }
            std::from_chars(buf + cl + 16, buf + end, length);
        }
        if (have >= head_end + length) {
            int status = 0;
            std::from_chars(buf + 9, buf + 12, status);
            return have == head_end + length ? status : -1;
        }
    }
}

} // namespace test
