// SPDX-License-Identifier: MIT
// Mapping of negative errno results (io_uring CQEs) to std::error_code, and the cancel error.
#pragma once

#include <system_error>

namespace ringwork::io {

/// \brief `-errno` as a std::error_code in the system category (liburing's convention).
inline std::error_code make_error(int negative_errno) noexcept {
    return {-negative_errno, std::system_category()};
}

/// \brief True for the errors a peer causes by going away (not worth logging by default).
inline bool is_disconnect(std::error_code ec) noexcept {
    if (ec.category() != std::system_category()) {
        return false;
    }
    switch (static_cast<std::errc>(ec.value())) {
    case std::errc::broken_pipe:
    case std::errc::connection_reset:
    case std::errc::connection_aborted:
    case std::errc::not_connected:
    case std::errc::timed_out:
        return true;
    default:
        return false;
    }
}

} // namespace ringwork::io

namespace ringwork::runtime {

/// \brief Thrown out of awaitables without an error channel (sleep_for) when the awaiting
/// coroutine's stop token fires. I/O awaitables return errc::operation_canceled instead.
class OperationCancelled : public std::system_error {
public:
    OperationCancelled() : std::system_error(std::make_error_code(std::errc::operation_canceled)) {}
};

} // namespace ringwork::runtime
