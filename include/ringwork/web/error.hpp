// SPDX-License-Identifier: MIT
// HttpError: an exception that becomes an HTTP error response.
#pragma once

#include <stdexcept>
#include <string>

namespace ringwork::web {

/// \brief Throw it from a handler or middleware (or a helper they call) to answer `status`
/// with a JSON body `{"error": message, "status": status}` (the App's error boundary writes
/// it; App::on_error customizes it). Anything else that escapes the chain becomes
/// a logged 500.
class HttpError : public std::runtime_error {
public:
    HttpError(int status, const std::string& message) : std::runtime_error(message), status_(status) {}
    [[nodiscard]] int status() const noexcept { return status_; }

private:
    int status_;
};

} // namespace ringwork::web
