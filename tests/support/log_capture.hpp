// SPDX-License-Identifier: MIT
// LogCapture: a thread-safe capture of ServerOptions::logger lines for tests (keeps expected
// failures off stderr and lets a test count what the server logged).
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace test {

class LogCapture {
public:
    /// The logger to put in ServerOptions::logger (the capture must outlive the server).
    std::function<void(std::string_view)> sink() {
        return [this](std::string_view line) {
            std::lock_guard lock(mutex_);
            lines_.emplace_back(line);
        };
    }
    [[nodiscard]] std::vector<std::string> lines() const {
        std::lock_guard lock(mutex_);
        return lines_;
    }
    /// Lines containing `needle`.
    [[nodiscard]] std::size_t count(std::string_view needle) const {
        std::lock_guard lock(mutex_);
        return static_cast<std::size_t>(std::count_if(lines_.begin(), lines_.end(), [&](const std::string& l) {
            return l.find(needle) != std::string::npos;
        }));
    }
    [[nodiscard]] bool any(std::string_view needle) const { return count(needle) != 0; }
    /// Every line, each followed by a newline (for failure messages).
    [[nodiscard]] std::string all() const {
        std::lock_guard lock(mutex_);
        std::string out;
        for (const std::string& l : lines_) {
            out += l;
            out += '\n';
        }
        return out;
    }

private:
    mutable std::mutex mutex_;
    std::vector<std::string> lines_;
};

} // namespace test
