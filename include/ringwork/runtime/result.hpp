// SPDX-License-Identifier: MIT
// Result<T>: a value or a std::error_code (the C++20 stand-in for std::expected).
#pragma once

#include <cassert>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

namespace ringwork::runtime {

/// \brief A value of type T or an error code; used on the hot path instead of exceptions.
///
/// `Result<void>` carries only the error. Accessing the value of an errored result throws
/// `std::system_error` (a bug in the caller, but a loud one).
template <class T>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::in_place_index<0>, std::move(value)) {} // NOLINT(google-explicit-constructor)
    Result(std::error_code ec) : v_(std::in_place_index<1>, ec) {     // NOLINT(google-explicit-constructor)
        assert(ec);
    }

    [[nodiscard]] bool has_value() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return has_value(); }
    [[nodiscard]] std::error_code error() const noexcept {
        return has_value() ? std::error_code{} : std::get<1>(v_);
    }
    T& value() & {
        check();
        return std::get<0>(v_);
    }
    const T& value() const& {
        check();
        return std::get<0>(v_);
    }
    T&& value() && {
        check();
        return std::get<0>(std::move(v_));
    }
    T& operator*() & noexcept { return std::get<0>(v_); }
    const T& operator*() const& noexcept { return std::get<0>(v_); }
    T* operator->() noexcept { return &std::get<0>(v_); }
    const T* operator->() const noexcept { return &std::get<0>(v_); }
    template <class U>
    T value_or(U&& fallback) const& {
        return has_value() ? std::get<0>(v_) : static_cast<T>(std::forward<U>(fallback));
    }

private:
    void check() const {
        if (!has_value()) {
            throw std::system_error(std::get<1>(v_));
        }
    }
    std::variant<T, std::error_code> v_;
};

/// \brief Success or an error code.
template <>
class [[nodiscard]] Result<void> {
public:
    Result() noexcept = default;
    Result(std::error_code ec) noexcept : ec_(ec) {} // NOLINT(google-explicit-constructor)
    [[nodiscard]] bool has_value() const noexcept { return !ec_; }
    explicit operator bool() const noexcept { return has_value(); }
    [[nodiscard]] std::error_code error() const noexcept { return ec_; }
    void value() const {
        if (ec_) {
            throw std::system_error(ec_);
        }
    }

private:
    std::error_code ec_;
};

} // namespace ringwork::runtime
