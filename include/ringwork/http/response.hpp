// SPDX-License-Identifier: MIT
// Response: status, headers and body a handler builds; serialized by the connection.
#pragma once

#include <ringwork/http/buffer.hpp>

#include <cstdint>
#include <string_view>
#include <vector>

namespace ringwork::http {

/// \brief Reason phrase of a status code ("Unknown" for codes without one).
std::string_view reason_phrase(int status) noexcept;

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

    /// Replace every header `name` (case-insensitive) with one `name: value`.
    void set_header(std::string_view name, std::string_view value);
    /// Add `name: value` even if the name is present (Set-Cookie).
    void add_header(std::string_view name, std::string_view value);
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
