// SPDX-License-Identifier: MIT
// Context: cookies, forms, multipart and files (the parts built on form.hpp and static.hpp).
#include <ringwork/web/app.hpp>
#include <ringwork/web/context.hpp>
#include <ringwork/web/error.hpp>
#include <ringwork/web/form.hpp>
#include <ringwork/web/static.hpp>
#include <ringwork/io/error.hpp>

#include <fmt/format.h>

#include <stdexcept>

namespace ringwork::web {

std::optional<std::string_view> Context::cookie(std::string_view name) const noexcept {
    for (const http::Header& h : x_->request.headers()) {
        if (http::iequals(h.name, "Cookie")) {
            if (auto v = find_cookie(h.value, name)) {
                return v;
            }
        }
    }
    return std::nullopt;
}

Context& Context::set_cookie(const Cookie& cookie) {
    x_->response.add_header("Set-Cookie", format_set_cookie(x_->arena_, cookie));
    return *this;
}

std::optional<std::string_view> Context::form_value(std::string_view name) {
    const std::string_view type = x_->request.header("Content-Type");
    // OWS may precede the ';' of the parameters (RFC 9110 §5.6.6): "...-urlencoded ;charset=utf-8".
    const std::string_view media = detail::trim_ows(type.substr(0, type.find(';')));
    if (!http::iequals(media, "application/x-www-form-urlencoded")) {
        return std::nullopt;
    }
    return find_form_value(x_->request.body(), name, x_->arena_);
}

namespace {

MultipartLimits multipart_limits(const AppOptions& o) {
    MultipartLimits limits;
    limits.max_parts = o.multipart_max_parts;
    limits.memory_limit = o.multipart_memory_limit;
    limits.temp_dir = o.multipart_temp_dir;
    limits.max_body_bytes = o.multipart_max_body_size;
    return limits;
}

constexpr std::string_view kMultipartKey = "ringwork.multipart";

} // namespace

const MultipartForm& Context::multipart() {
    if (auto* form = local<MultipartForm>(kMultipartKey)) {
        return *form;
    }
    if (body_streamed()) {
        throw std::logic_error("Context::multipart(): the body is streamed; use co_await read_multipart()");
    }
    return emplace_local<MultipartForm>(kMultipartKey, x_->request.body(), x_->request.header("Content-Type"),
                                        multipart_limits(app_->options()));
}

runtime::Task<std::string_view> Context::read_body() {
    auto piece = co_await x_->read_body();
    if (piece) {
        co_return *piece;
    }
    const std::error_code ec = piece.error();
    if (ec == std::errc::operation_canceled) {
        throw runtime::OperationCancelled();
    }
    if (ec == std::errc::timed_out) {
        throw HttpError(408, "the request body did not arrive in time");
    }
    if (ec == std::errc::bad_message) {
        throw HttpError(400, "malformed chunked request body");
    }
    throw HttpError(400, fmt::format("the request body could not be read: {}", ec.message()));
}

runtime::Task<const MultipartForm&> Context::read_multipart() {
    if (!body_streamed()) {
        co_return multipart();
    }
    if (auto* form = local<MultipartForm>(kMultipartKey)) {
        co_return *form;
    }
    MultipartStream stream(x_->request.header("Content-Type"), multipart_limits(app_->options()));
    for (;;) {
        auto next = read_body(); // named (GCC PR 100611)
        const std::string_view piece = co_await next;
        if (piece.empty()) {
            break;
        }
        stream.feed(piece);
    }
    co_return emplace_local<MultipartForm>(kMultipartKey, stream.finish());
}

runtime::Task<> Context::file(std::string path) { return send_file(*this, std::move(path)); }

} // namespace ringwork::web
