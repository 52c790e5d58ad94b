// SPDX-License-Identifier: MIT
// libFuzzer target: multipart/form-data parsing: parse_multipart_boundary, MultipartParser fed
// whole and in random splits (same events, same error), and MultipartForm / MultipartStream
// agreeing with the parser's events, temporary files included.
//
// Input: flags, a 32-bit split seed (see fuzz_support.hpp), then a first line and the body.
// The first line is a Content-Type (`multipart/form-data; boundary=X`); when it does not parse,
// the line itself is tried as the boundary (so a seed can start with just `X\n`).
// flags bit 0: max_parts 2 (else 1000); bit 1: max_header_bytes 40 (else 8192); bit 2:
// memory_limit 8 bytes (files spill to temporary files, fields over 8 bytes are 413); bit 3:
// max_body_bytes 64.
#include <ringwork/web/error.hpp>
#include <ringwork/web/form.hpp>

#include "fuzz_support.hpp"

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <dirent.h>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <unistd.h>
#include <vector>

namespace {

namespace web = ringwork::web;
namespace fz = ringwork::fuzz;
using web::MultipartError;

/// A private directory for the temporary files of spilled uploads, removed at exit.
class TempDir {
public:
    TempDir() {
        std::string templ = "/tmp/ringwork-multipart-fuzz-XXXXXX";
        if (::mkdtemp(templ.data()) == nullptr) {
            throw std::system_error(errno, std::generic_category(), "mkdtemp");
        }
        path_ = templ;
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir() { ::rmdir(path_.c_str()); }
    [[nodiscard]] const std::string& path() const noexcept { return path_; }
    /// Whether no file is left in it.
    [[nodiscard]] bool empty() const {
        DIR* d = ::opendir(path_.c_str());
        FUZZ_CHECK(d != nullptr);
        std::size_t entries = 0;
        while (const dirent* e = ::readdir(d)) {
            const std::string_view name(static_cast<const char*>(e->d_name));
            entries += name == "." || name == ".." ? 0 : 1;
        }
        ::closedir(d);
        return entries == 0;
    }

private:
    std::string path_;
};

TempDir& temp_dir() {
    static TempDir dir;
    return dir;
}

/// Records the parser's events as text, merging adjacent data (how content is cut depends
/// on the split), and checks their order.
class Recorder final : public web::MultipartHandler {
public:
    void on_part_begin(const web::PartHeaders& h) override {
        FUZZ_CHECK(!in_part_);
        FUZZ_CHECK(h.has_filename || h.filename.empty());
        FUZZ_CHECK(h.filename != "." && h.filename != "..");
        FUZZ_CHECK(h.filename.find_first_of("/\\") == std::string_view::npos);
        in_part_ = true;
        ++begins_;
        parts_.push_back({std::string(h.name),
                          std::string(h.filename),
                          h.has_filename,
                          std::string(h.content_type),
                          {},
                          false});
    }
    void on_part_data(std::string_view bytes) override {
        FUZZ_CHECK(in_part_);
        FUZZ_CHECK(!bytes.empty());
        parts_.back().data += bytes;
    }
    void on_part_end() override {
        FUZZ_CHECK(in_part_);
        in_part_ = false;
        parts_.back().ended = true;
    }

    struct Part {
        std::string name;
        std::string filename;
        bool has_filename = false;
        std::string content_type;
        std::string data;
        bool ended = false;
    };
    [[nodiscard]] const std::vector<Part>& parts() const noexcept { return parts_; }
    [[nodiscard]] std::size_t begins() const noexcept { return begins_; }

    [[nodiscard]] std::string log() const {
        std::string out;
        for (const Part& p : parts_) {
            out += "part name=" + fz::escape(p.name) + " filename=" + fz::escape(p.filename) +
                   " has_filename=" + std::to_string(static_cast<int>(p.has_filename)) +
                   " type=" + fz::escape(p.content_type) + " data=" + fz::escape(p.data, 80) +
                   " (" + std::to_string(p.data.size()) +
                   " bytes) ended=" + std::to_string(static_cast<int>(p.ended)) + "\n";
        }
        return out;
    }

private:
    std::vector<Part> parts_;
    std::size_t begins_ = 0;
    bool in_part_ = false;
};

struct ParseRun {
    std::string log;
    MultipartError error = MultipartError::none;
    std::size_t parts = 0;
    bool done = false;
    std::vector<Recorder::Part> events;
};

/// Feeds `body` in the pieces ending at `ends`, then finish().
ParseRun parse(std::string_view boundary, std::string_view body, const web::MultipartLimits& limits,
               const std::vector<std::size_t>& ends) {
    Recorder rec;
    web::MultipartParser parser(boundary, rec, limits);
    const bool invalid = parser.error() == MultipartError::invalid_boundary;
    std::size_t pos = 0;
    MultipartError e = parser.error();
    for (const std::size_t end : ends) {
        fz::ExactCopy piece(body.substr(pos, end - pos));
        const bool was_done = parser.done();
        const std::size_t before = rec.parts().size();
        e = parser.feed(piece.view());
        FUZZ_CHECK(e == parser.error());
        if (was_done) {
            FUZZ_CHECK(e == MultipartError::none && rec.parts().size() == before);
        }
        pos = end;
        if (e != MultipartError::none) {
            const std::string log = rec.log();
            FUZZ_CHECK(parser.feed("\r\n--x\r\n") == e); // sticky, and no more events
            FUZZ_CHECK(rec.log() == log);
            break;
        }
    }
    if (invalid) {
        FUZZ_CHECK(e == MultipartError::invalid_boundary && rec.parts().empty());
    }
    ParseRun run;
    run.done = parser.done();
    run.error = parser.finish();
    FUZZ_CHECK(run.error == (e != MultipartError::none
                                 ? e
                                 : (run.done ? MultipartError::none : MultipartError::truncated)));
    FUZZ_CHECK(!run.done || run.error == MultipartError::none);
    run.parts = parser.parts();
    FUZZ_CHECK(rec.begins() <= run.parts && run.parts <= rec.begins() + 1);
    FUZZ_CHECK(run.parts <= limits.max_parts + 1); // the one refused counts
    run.log = rec.log();
    run.events = rec.parts();
    return run;
}

/// A form as text; throws what MultipartForm/MultipartStream throw.
std::string dump(const web::MultipartForm& form) {
    std::string out;
    for (const auto& [name, value] : form.fields()) {
        out += "field " + fz::escape(name) + "=" + fz::escape(value, 80) + "\n";
        const std::vector<std::string_view> all = form.values(name);
        FUZZ_CHECK(!all.empty() && form.value(name) == all.front());
    }
    FUZZ_CHECK(!form.value("\n") && form.values("\n").empty() && form.file("\n") == nullptr);
    for (const web::FormFile& f : form.files()) {
        const std::string content = f.read();
        FUZZ_CHECK(content.size() == f.size);
        FUZZ_CHECK(f.in_memory() == f.temp_path.empty());
        FUZZ_CHECK(f.in_memory() || f.temp_path.starts_with(temp_dir().path() + "/"));
        out += "file " + fz::escape(f.field) + " filename=" + fz::escape(f.filename) +
               " type=" + fz::escape(f.content_type) + " content=" + fz::escape(content, 80) +
               " (" + std::to_string(f.size) + " bytes)\n";
        FUZZ_CHECK(form.file(f.field) != nullptr);
    }
    return out;
}

template <class F>
std::string outcome_of(F&& f) {
    try {
        return f();
    } catch (const web::HttpError& e) {
        FUZZ_CHECK(e.status() == 400 || e.status() == 413);
        return "HttpError " + std::to_string(e.status()) + ": " + e.what();
    } catch (const std::system_error& e) {
        return std::string("system_error: ") + e.what(); // temporary file trouble: documented
    }
}

/// What MultipartForm must hold (or throw) given the parser's run, with generous limits.
std::string expected_form(const ParseRun& run) {
    if (run.error != MultipartError::none) {
        return "HttpError " + std::to_string(web::http_status(run.error)) + ": " +
               std::string(web::describe(run.error));
    }
    std::string fields;
    std::string files;
    for (const Recorder::Part& p : run.events) {
        if (p.has_filename) {
            files += "file " + fz::escape(p.name) + " filename=" + fz::escape(p.filename) +
                     " type=" + fz::escape(p.content_type.empty() ? "text/plain" : p.content_type) +
                     " content=" + fz::escape(p.data, 80) + " (" + std::to_string(p.data.size()) +
                     " bytes)\n";
        } else {
            fields += "field " + fz::escape(p.name) + "=" + fz::escape(p.data, 80) + "\n";
        }
    }
    return fields + files;
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
    (void)temp_dir();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto input = fz::read_input(data, size);
    if (!input) {
        return 0;
    }
    const std::string_view payload = input->payload;
    const std::size_t eol = payload.find('\n');
    const std::string_view first = payload.substr(0, eol);
    const std::string_view body =
        eol == std::string_view::npos ? std::string_view{} : payload.substr(eol + 1);

    std::string boundary;
    const MultipartError ct_error = web::parse_multipart_boundary(first, boundary);
    FUZZ_CHECK(!web::describe(ct_error).empty());
    if (ct_error == MultipartError::none) {
        FUZZ_CHECK(!boundary.empty() && boundary.size() <= 70 && boundary.back() != ' ');
        FUZZ_CHECK(web::http_status(ct_error) == 0);
    } else {
        FUZZ_CHECK(ct_error == MultipartError::not_multipart ||
                   ct_error == MultipartError::missing_boundary ||
                   ct_error == MultipartError::invalid_boundary);
        FUZZ_CHECK(web::http_status(ct_error) == 400);
        boundary.assign(first);
    }

    web::MultipartLimits limits;
    limits.max_parts = (input->flags & 1U) != 0 ? 2 : 1000;
    limits.max_header_bytes = (input->flags & 2U) != 0 ? 40 : 8192;
    const ParseRun whole = parse(boundary, body, limits, {body.size()});
    const ParseRun split = parse(boundary, body, limits, fz::split_plan(body.size(), input->seed));
    FUZZ_CHECK_MSG(whole.log == split.log && whole.error == split.error &&
                       whole.parts == split.parts && whole.done == split.done,
                   "whole: " + std::string(web::describe(whole.error)) + "\n" + whole.log +
                       "split: " + std::string(web::describe(split.error)) + "\n" + split.log);
    if (ct_error != MultipartError::none) { // MultipartForm refuses the Content-Type itself
        const std::string formed = outcome_of(
            [&] { return dump(web::MultipartForm(body, first, web::MultipartLimits{})); });
        FUZZ_CHECK_MSG(formed == "HttpError 400: " + std::string(web::describe(ct_error)), formed);
        return 0;
    }

    const bool spill = (input->flags & 4U) != 0;
    const bool body_limit = (input->flags & 8U) != 0;
    limits.temp_dir = temp_dir().path();
    if (spill) {
        limits.memory_limit = 8;
    }
    if (body_limit) {
        limits.max_body_bytes = 64;
    }
    const std::string formed =
        outcome_of([&] { return dump(web::MultipartForm(body, first, limits)); });
    const std::string streamed = outcome_of([&] {
        web::MultipartStream stream(first, limits);
        std::size_t pos = 0;
        for (const std::size_t end : fz::split_plan(body.size(), input->seed)) {
            stream.feed(body.substr(pos, end - pos));
            pos = end;
        }
        return dump(stream.finish());
    });
    FUZZ_CHECK(temp_dir().empty()); // every temporary file removed, after errors too
    if (body_limit && body.size() > limits.max_body_bytes) {
        FUZZ_CHECK_MSG(formed.starts_with("HttpError 413"), formed);
        FUZZ_CHECK_MSG(streamed.starts_with("HttpError "),
                       streamed); // a parse error may come first
        return 0;
    }
    FUZZ_CHECK_MSG(formed == streamed, "form:\n" + formed + "stream:\n" + streamed);
    if (!spill) {
        const std::string expected = expected_form(whole);
        FUZZ_CHECK_MSG(formed == expected, "form:\n" + formed + "parser:\n" + expected);
    }
    return 0;
}
