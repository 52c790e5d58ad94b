// SPDX-License-Identifier: MIT
// HttpError: an exception that becomes an HTTP error response.
#pragma once

#include <exception>
#include <stdexcept>
#include <string>

namespace ringwork::web {

/// \brief Throw it from a handler or middleware (or a helper they call) to answer `status`
/// with a JSON body `{"error": message, "status": status}` (the App's error boundary writes
/// it; App::on_error customizes it). Anything else that escapes the chain becomes
/// a logged 500, but runtime::OperationCancelled (see error_status()).
class HttpError : public std::runtime_error {
public:
    HttpError(int status, const std::string& message) : std::runtime_error(message), status_(status) {}
    [[nodiscard]] int status() const noexcept { return status_; }

private:
    int status_;
};

/// \brief The status the App (and mw::recover) answers for an exception escaping the chain:
/// an HttpError's own; 503 for runtime::OperationCancelled (a co_await of a request the
/// client left, the timeout middleware gave up on, or a grace period cut: expected, logged
/// only with ServerOptions::log_all_errors); 500 for anything else. Access logs and metrics
/// record the same.
[[nodiscard]] int error_status(const std::exception_ptr& error) noexcept;

} // namespace ringwork::web
