// SPDX-License-Identifier: MIT
// Context: cookies, forms, multipart and files (the parts built on form.hpp and static.hpp).
#include <ringwork/web/app.hpp>
#include <ringwork/web/context.hpp>
#include <ringwork/web/form.hpp>
#include <ringwork/web/static.hpp>

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
    const std::string_view media = type.substr(0, type.find(';'));
    if (!http::iequals(media, "application/x-www-form-urlencoded")) {
        return std::nullopt;
    }
    return find_form_value(x_->request.body(), name, x_->arena_);
}

const MultipartForm& Context::multipart() {
    if (auto* form = local<MultipartForm>("ringwork.multipart")) {
        return *form;
    }
    const AppOptions& o = app_->options();
    MultipartLimits limits;
    limits.max_parts = o.multipart_max_parts;
    limits.memory_limit = o.multipart_memory_limit;
    limits.temp_dir = o.multipart_temp_dir;
    return emplace_local<MultipartForm>("ringwork.multipart", x_->request.body(),
                                        x_->request.header("Content-Type"), limits);
}

runtime::Task<> Context::file(std::string path) { return send_file(*this, std::move(path)); }

} // namespace ringwork::web
