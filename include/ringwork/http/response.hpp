// SPDX-License-Identifier: MIT
// Response: status, headers and body a handler builds; serialized by the connection.
#pragma once

#include <ringwork/http/buffer.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace ringwork::http {

/// \brief Reason phrase of a status code ("Unknown" for codes without one).
std::string_view reason_phrase(int status) noexcept;

namespace detail {
/// tchar (RFC 9110 5.6.2): "!#$%&'*+-.^_`|~", DIGIT, ALPHA.
constexpr bool is_token_char(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}
/// Called only when a string literal given as a header name is not a token: not constexpr,
/// so the FieldName that calls it does not compile (the compiler names this function).
void header_name_literal_is_not_a_token() noexcept;
/// The same for a constant char array that is not NUL-terminated (not a string literal).
void header_name_array_is_not_a_string_literal() noexcept;
} // namespace detail

/// \brief A header field name a response sends: a token (RFC 9110 5.6.2) such as
/// `Content-Type` or `X-Request-ID`. A CR, LF, colon or space in a name would change the
/// head's framing, so every name is checked once: a string literal when the program compiles
/// (`c.set_header("X Bad", v)` does not compile, naming
/// `header_name_literal_is_not_a_token`), any other string (std::string, std::string_view)
/// when the FieldName is made, throwing std::invalid_argument (in a handler: its 500). The
/// name is viewed, not copied: it must outlive the FieldName (a call's argument does); a
/// response copies a run-time name, and keeps a literal's own bytes. A char array filled at
/// run time (a `char buf[32]`) must be passed as `std::string_view(buf)`: arrays are taken
/// as literals.
class FieldName {
public:
    template <std::size_t N>
    consteval FieldName(const char (&literal)[N]) // NOLINT(google-explicit-constructor)
        : name_(literal, N - 1), literal_(true) {
        if (literal[N - 1] != '\0') {
            detail::header_name_array_is_not_a_string_literal();
        }
        bool token = N > 1;
        for (const char c : name_) {
            token = token && detail::is_token_char(c);
        }
        if (!token) {
            detail::header_name_literal_is_not_a_token();
        }
    }
    FieldName(std::string_view name); // NOLINT(google-explicit-constructor)
    FieldName(const std::string& name) : FieldName(std::string_view(name)) {} // NOLINT(google-explicit-constructor)
    /// Anything else a std::string_view can be made of (`const char*`, a string class with
    /// its conversion), checked at run time. Not arrays: a literal stays checked when compiled.
    template <class T>
        requires(std::is_convertible_v<const T&, std::string_view> && !std::is_array_v<T> &&
                 !std::is_base_of_v<FieldName, T>) // a copy from a derived class keeps literal()
    FieldName(const T& name) : FieldName(std::string_view(name)) {} // NOLINT(google-explicit-constructor)
    [[nodiscard]] constexpr std::string_view view() const noexcept { return name_; }
    constexpr operator std::string_view() const noexcept { return name_; } // NOLINT(google-explicit-constructor)
    /// Made from a string literal (or another constant array of static storage): the response
    /// keeps the view instead of a copy.
    [[nodiscard]] constexpr bool literal() const noexcept { return literal_; }

private:
    std::string_view name_;
    bool literal_ = false;
};

/// \brief What a handler answers. Header names and values are copied into the request arena,
/// so temporaries are fine; the body is copied into a pooled buffer unless set_body_static()
/// hands over memory that outlives the response (static data).
class Response {
public:
    /// Ignored once the response is sealed (see seal()).
    void set_status(int status) noexcept {
        if (!sealed_) {
            status_ = status;
        }
    }
    [[nodiscard]] int status() const noexcept { return status_; }

    /// Replace every header `name` (case-insensitive) with one `name: value`. Each CR, LF
    /// and NUL in `value` is sent as a space (RFC 9110 5.5): a value taken from a request
    /// cannot end its line and add fields, or a second response, of the client's choosing.
    void set_header(FieldName name, std::string_view value);
    /// Add `name: value` even if the name is present (Set-Cookie). `value` as set_header's.
    void add_header(FieldName name, std::string_view value);
    /// Remove every header `name`.
    void remove_header(std::string_view name) noexcept;
    [[nodiscard]] std::string_view header(std::string_view name) const noexcept;
    void set_content_type(std::string_view type) { set_header("Content-Type", type); }

    /// Replace the body with a copy of `data`.
    void set_body(std::string_view data);
    void append_body(std::string_view data);
    /// Zero-copy body: `data` must stay valid until the response has been sent.
    void set_body_static(std::string_view data) noexcept;
    [[nodiscard]] std::string_view body() const noexcept;
    /// The pooled body buffer, for writers that format straight into it (JSON).
    ByteBuffer& body_buffer();
    /// Ask the connection to close after this response. Once sealed, a close can still be
    /// requested but no longer withdrawn.
    void set_close(bool close = true) noexcept {
        if (!sealed_ || close) {
            close_ = close;
        }
    }
    [[nodiscard]] bool close() const noexcept { return close_; }

    /// \brief Freeze the response as it is now: later status, header and body changes (and a
    /// withdrawn set_close) are ignored; body_buffer() then hands out a scratch buffer whose
    /// contents are discarded. The timeout middleware seals its 503 so that a handler still
    /// running after the deadline cannot alter it. reset() (the connection, between requests
    /// and on its own error paths) unseals. Reactor thread only.
    void seal() noexcept { sealed_ = true; }
    [[nodiscard]] bool sealed() const noexcept { return sealed_; }

    struct Field {
        std::string_view name;
        std::string_view value;
    };
    [[nodiscard]] const std::vector<Field>& fields() const noexcept { return fields_; }

    // --- for the connection ------------------------------------------------------------------
    void attach(Arena* arena, BufferPool* bodies) noexcept {
        arena_ = arena;
        bodies_ = bodies;
    }
    void reset() noexcept;
    ByteBuffer take_body() noexcept { return std::move(body_); }
    [[nodiscard]] bool has_body_buffer() const noexcept { return body_.capacity() != 0; }

private:
    int status_ = 200;
    bool close_ = false;
    bool sealed_ = false;
    bool static_body_ = false;
    std::string_view static_;
    std::vector<Field> fields_;
    ByteBuffer body_;
    ByteBuffer sealed_scratch_; ///< what body_buffer() hands out once sealed (discarded)
    Arena* arena_ = nullptr;
    BufferPool* bodies_ = nullptr;
};

} // namespace ringwork::http
