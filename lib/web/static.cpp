// SPDX-License-Identifier: MIT
// send_file and the static_files middleware: metadata off the reactor, data through io_uring.
#include <ringwork/web/static.hpp>

#include <ringwork/io/runtime.hpp>
#include <ringwork/io/socket.hpp>
#include <ringwork/web/app.hpp>
#include <ringwork/web/compress.hpp>
#include <ringwork/web/form.hpp>

#include "http/chars.hpp"

#include <fmt/format.h>

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <span>
#include <system_error>
#include <utility>
#include <vector>

namespace ringwork::web {

namespace detail {

/// The root directory of a static_files middleware, shared by its copies (and reactors).
struct StaticRoot {
    int fd = -1;          ///< O_PATH | O_DIRECTORY descriptor of the root
    std::string real;     ///< realpath of the root (openat2 fallback check)
    StaticOptions options;
    StaticRoot() = default;
    StaticRoot(const StaticRoot&) = delete;
    StaticRoot& operator=(const StaticRoot&) = delete;
    ~StaticRoot() {
        if (fd >= 0) {
            ::close(fd);
        }
    }
};

} // namespace detail

namespace {

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

/// An owned file descriptor (closed with close(2): closing a regular file is cheap).
class UniqueFd {
public:
    UniqueFd() noexcept = default;
    explicit UniqueFd(int fd) noexcept : fd_(fd) {}
    UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = std::exchange(other.fd_, -1);
        }
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd() { reset(); }
    [[nodiscard]] int get() const noexcept { return fd_; }
    [[nodiscard]] bool valid() const noexcept { return fd_ >= 0; }
    void reset() noexcept {
        if (fd_ >= 0) {
            ::close(fd_);
            fd_ = -1;
        }
    }

private:
    int fd_ = -1;
};

using http::detail::ascii_lower;
using http::detail::iequals;
using web::detail::trim_ows;

// ---------------------------------------------------------------------------------------------
// MIME types
// ---------------------------------------------------------------------------------------------

struct MimeEntry {
    std::string_view ext;
    std::string_view type;
};

// Sorted by extension (binary search); lower-case.
constexpr std::array kMimeTypes{
    MimeEntry{"7z", "application/x-7z-compressed"},
    MimeEntry{"aac", "audio/aac"},
    MimeEntry{"apng", "image/apng"},
    MimeEntry{"avif", "image/avif"},
    MimeEntry{"bin", "application/octet-stream"},
    MimeEntry{"bmp", "image/bmp"},
    MimeEntry{"br", "application/x-brotli"},
    MimeEntry{"bz2", "application/x-bzip2"},
    MimeEntry{"cjs", "text/javascript; charset=utf-8"},
    MimeEntry{"css", "text/css; charset=utf-8"},
    MimeEntry{"csv", "text/csv; charset=utf-8"},
    MimeEntry{"eot", "application/vnd.ms-fontobject"},
    MimeEntry{"epub", "application/epub+zip"},
    MimeEntry{"flac", "audio/flac"},
    MimeEntry{"gif", "image/gif"},
    MimeEntry{"gz", "application/gzip"},
    MimeEntry{"htm", "text/html; charset=utf-8"},
    MimeEntry{"html", "text/html; charset=utf-8"},
    MimeEntry{"ico", "image/x-icon"},
    MimeEntry{"ics", "text/calendar; charset=utf-8"},
    MimeEntry{"jpeg", "image/jpeg"},
    MimeEntry{"jpg", "image/jpeg"},
    MimeEntry{"js", "text/javascript; charset=utf-8"},
    MimeEntry{"json", "application/json"},
    MimeEntry{"jsonld", "application/ld+json"},
    MimeEntry{"m4a", "audio/mp4"},
    MimeEntry{"manifest", "text/cache-manifest; charset=utf-8"},
    MimeEntry{"map", "application/json"},
    MimeEntry{"md", "text/markdown; charset=utf-8"},
    MimeEntry{"mjs", "text/javascript; charset=utf-8"},
    MimeEntry{"mp3", "audio/mpeg"},
    MimeEntry{"mp4", "video/mp4"},
    MimeEntry{"mpeg", "video/mpeg"},
    MimeEntry{"oga", "audio/ogg"},
    MimeEntry{"ogg", "audio/ogg"},
    MimeEntry{"ogv", "video/ogg"},
    MimeEntry{"otf", "font/otf"},
    MimeEntry{"pdf", "application/pdf"},
    MimeEntry{"png", "image/png"},
    MimeEntry{"rss", "application/rss+xml"},
    MimeEntry{"svg", "image/svg+xml"},
    MimeEntry{"tar", "application/x-tar"},
    MimeEntry{"tif", "image/tiff"},
    MimeEntry{"tiff", "image/tiff"},
    MimeEntry{"toml", "application/toml"},
    MimeEntry{"ttf", "font/ttf"},
    MimeEntry{"txt", "text/plain; charset=utf-8"},
    MimeEntry{"wasm", "application/wasm"},
    MimeEntry{"wav", "audio/wav"},
    MimeEntry{"weba", "audio/webm"},
    MimeEntry{"webm", "video/webm"},
    MimeEntry{"webmanifest", "application/manifest+json"},
    MimeEntry{"webp", "image/webp"},
    MimeEntry{"woff", "font/woff"},
    MimeEntry{"woff2", "font/woff2"},
    MimeEntry{"xhtml", "application/xhtml+xml"},
    MimeEntry{"xml", "application/xml"},
    MimeEntry{"yaml", "application/yaml"},
    MimeEntry{"yml", "application/yaml"},
    MimeEntry{"zip", "application/zip"},
    MimeEntry{"zst", "application/zstd"},
};

constexpr bool mime_table_sorted() {
    for (std::size_t i = 1; i < kMimeTypes.size(); ++i) {
        if (!(kMimeTypes[i - 1].ext < kMimeTypes[i].ext)) {
            return false;
        }
    }
    return true;
}
static_assert(mime_table_sorted(), "kMimeTypes must be sorted by extension");

constexpr std::string_view kOctetStream = "application/octet-stream";

// ---------------------------------------------------------------------------------------------
// HTTP dates
// ---------------------------------------------------------------------------------------------

constexpr std::array<std::string_view, 7> kDays{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::array<std::string_view, 12> kMonths{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/// IMF-fixdate into `out` (exactly 29 bytes).
void format_date_into(std::time_t t, std::array<char, 29>& out) noexcept {
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    const auto two = [](char* p, int v) {
        p[0] = static_cast<char>('0' + (v / 10) % 10);
        p[1] = static_cast<char>('0' + v % 10);
    };
    char* p = out.data();
    const std::string_view day = kDays[static_cast<std::size_t>(tm.tm_wday) % 7];
    std::memcpy(p, day.data(), 3);
    p[3] = ',';
    p[4] = ' ';
    two(p + 5, tm.tm_mday);
    p[7] = ' ';
    const std::string_view mon = kMonths[static_cast<std::size_t>(tm.tm_mon) % 12];
    std::memcpy(p + 8, mon.data(), 3);
    p[11] = ' ';
    const int year = tm.tm_year + 1900;
    two(p + 12, year / 100);
    two(p + 14, year % 100);
    p[16] = ' ';
    two(p + 17, tm.tm_hour);
    p[19] = ':';
    two(p + 20, tm.tm_min);
    p[22] = ':';
    two(p + 23, tm.tm_sec);
    std::memcpy(p + 25, " GMT", 4);
}

bool parse_digits(std::string_view s, int& out) noexcept {
    if (s.empty()) {
        return false;
    }
    int v = 0;
    for (char ch : s) {
        if (ch < '0' || ch > '9') {
            return false;
        }
        v = v * 10 + (ch - '0');
    }
    out = v;
    return true;
}

int month_index(std::string_view m) noexcept {
    for (std::size_t i = 0; i < kMonths.size(); ++i) {
        if (kMonths[i] == m) {
            return static_cast<int>(i);
        }
    }
    return -1;
}

/// "HH:MM:SS"
bool parse_clock(std::string_view s, std::tm& tm) noexcept {
    return s.size() == 8 && s[2] == ':' && s[5] == ':' && parse_digits(s.substr(0, 2), tm.tm_hour) &&
           parse_digits(s.substr(3, 2), tm.tm_min) && parse_digits(s.substr(6, 2), tm.tm_sec) &&
           tm.tm_hour < 24 && tm.tm_min < 60 && tm.tm_sec <= 60;
}

// ---------------------------------------------------------------------------------------------
// Validators
// ---------------------------------------------------------------------------------------------

/// W/"<size hex>-<mtime ns hex>" into `out`; returns the view.
std::string_view weak_etag(const struct stat& st, std::array<char, 48>& out) noexcept {
    const auto mtime_ns = static_cast<std::uint64_t>(st.st_mtim.tv_sec) * 1'000'000'000ULL +
                          static_cast<std::uint64_t>(st.st_mtim.tv_nsec);
    const auto r = fmt::format_to_n(out.data(), out.size(), "W/\"{:x}-{:x}\"",
                                    static_cast<std::uint64_t>(st.st_size), mtime_ns);
    return {out.data(), r.size};
}

// ---------------------------------------------------------------------------------------------
// Opening files without leaving the root
// ---------------------------------------------------------------------------------------------

std::atomic<bool> g_openat2_unavailable{false};
std::atomic<bool> g_force_fallback{false};

/// openat2(dirfd, rel, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) where `dir_real` is the
/// realpath of `dirfd`; -1 with errno. ENOSYS (and EPERM from a seccomp filter that does not
/// know the call) switch to the fallback for good.
int open_beneath(int dirfd, const char* rel, int flags, const std::string& dir_real) {
    if (!g_openat2_unavailable.load(std::memory_order_relaxed) &&
        !g_force_fallback.load(std::memory_order_relaxed)) {
        open_how how{};
        how.flags = static_cast<std::uint64_t>(flags);
        how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
        const long fd = ::syscall(SYS_openat2, dirfd, rel, &how, sizeof how);
        if (fd >= 0) {
            return static_cast<int>(fd);
        }
        if (errno != ENOSYS && errno != EPERM) {
            return -1;
        }
        g_openat2_unavailable.store(true, std::memory_order_relaxed);
    }
    // Fallback: `rel` has no ".." segment (the caller checked), so only symlinks can lead
    // out. Resolve the path, require it under the root, then make sure the descriptor we
    // opened is that very file (a rename in between cannot swap in an outside file).
    const std::string full = dir_real + "/" + rel;
    char resolved[PATH_MAX];
    if (::realpath(full.c_str(), resolved) == nullptr) {
        return -1;
    }
    const std::string_view r(resolved);
    if (r != dir_real && !(r.size() > dir_real.size() && r.substr(0, dir_real.size()) == dir_real &&
                           (r[dir_real.size()] == '/' || dir_real == "/"))) {
        errno = EXDEV;
        return -1;
    }
    const int fd = ::open(resolved, flags | O_NOFOLLOW);
    if (fd < 0) {
        return -1;
    }
    struct stat by_fd {};
    struct stat by_path {};
    if (::fstat(fd, &by_fd) != 0 || ::stat(resolved, &by_path) != 0 || by_fd.st_dev != by_path.st_dev ||
        by_fd.st_ino != by_path.st_ino) {
        ::close(fd);
        errno = EXDEV;
        return -1;
    }
    return fd;
}

constexpr int kOpenFlags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;

enum class Found : std::uint8_t { file, redirect, listing, missing, forbidden, error };

struct DirEntry {
    std::string name;
    bool dir = false;
    std::uint64_t size = 0;
    std::time_t mtime = 0;
};

/// What the blocking part of a lookup found (built on a pool thread, used on the reactor).
struct Lookup {
    Found found = Found::missing;
    UniqueFd fd;
    struct stat st {};
    int error = 0;
    bool index = false;            ///< the directory's index file was opened
    std::vector<DirEntry> entries; ///< Found::listing
};

/// A regular file is ready for io_uring reads once O_NONBLOCK is gone (io_uring answers
/// -EAGAIN for a non-blocking file instead of reading it in its worker). The flag was only
/// there so that opening a FIFO or a device never blocks.
bool finish_regular(Lookup& l) noexcept {
    const int flags = ::fcntl(l.fd.get(), F_GETFL);
    if (flags < 0 || ::fcntl(l.fd.get(), F_SETFL, flags & ~O_NONBLOCK) != 0) {
        l.found = Found::error;
        l.error = errno;
        l.fd.reset();
        return false;
    }
    l.found = Found::file;
    return true;
}

Found classify_errno(int err) noexcept {
    switch (err) {
    case ENOENT:
    case ENOTDIR:
    case EXDEV: // a symlink (or "..") leading out of the root
    case ELOOP:
    case ENAMETOOLONG:
        return Found::missing;
    case EACCES:
    case EPERM:
        return Found::forbidden;
    default:
        return Found::error;
    }
}

/// Open `path` (relative to the cwd or absolute) as send_file does. Blocking.
Lookup open_plain(const std::string& path) noexcept {
    Lookup l;
    l.fd = UniqueFd(::open(path.c_str(), kOpenFlags));
    if (!l.fd.valid()) {
        l.error = errno;
        l.found = classify_errno(l.error);
        return l;
    }
    if (::fstat(l.fd.get(), &l.st) != 0) {
        l.error = errno;
        l.found = Found::error;
        l.fd.reset();
        return l;
    }
    if (!S_ISREG(l.st.st_mode)) {
        l.found = Found::forbidden;
        l.fd.reset();
        return l;
    }
    finish_regular(l);
    return l;
}

/// The entries of the directory `dirfd`, which is `rel` under the root. A symlink is listed
/// with what it leads to, and only when serving it would resolve it (open_beneath): one
/// leading out of the root is missing when fetched, so it is not shown either.
std::vector<DirEntry> read_directory(const detail::StaticRoot& root, const std::string& rel, int dirfd) {
    const bool dotfiles = root.options.dotfiles;
    std::vector<DirEntry> out;
    const int dup = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dup < 0) {
        return out;
    }
    DIR* dir = ::fdopendir(dup);
    if (dir == nullptr) {
        ::close(dup);
        return out;
    }
    while (const dirent* e = ::readdir(dir)) { // NOLINT(concurrency-mt-unsafe): own DIR*
        const std::string_view name(e->d_name);
        if (name == "." || name == ".." || (!dotfiles && name.front() == '.')) {
            continue;
        }
        struct stat st {};
        if (::fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            continue; // raced removal
        }
        if (S_ISLNK(st.st_mode)) {
            const std::string entry_rel = rel.empty() ? std::string(name) : rel + "/" + std::string(name);
            const UniqueFd target(open_beneath(root.fd, entry_rel.c_str(), O_PATH | O_CLOEXEC, root.real));
            if (!target.valid() || ::fstat(target.get(), &st) != 0) {
                continue; // leads out of the root, dangles or loops
            }
        }
        if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
            continue;
        }
        out.push_back(DirEntry{std::string(name), S_ISDIR(st.st_mode), static_cast<std::uint64_t>(st.st_size),
                               st.st_mtim.tv_sec});
    }
    ::closedir(dir);
    std::sort(out.begin(), out.end(), [](const DirEntry& a, const DirEntry& b) {
        return a.dir != b.dir ? a.dir : a.name < b.name;
    });
    return out;
}

/// Resolve `rel` (normalized: no "..", no leading '/') under the root. Blocking.
Lookup open_under_root(const detail::StaticRoot& root, const std::string& rel, bool trailing_slash) {
    Lookup l;
    const char* target = rel.empty() ? "." : rel.c_str();
    l.fd = UniqueFd(open_beneath(root.fd, target, kOpenFlags, root.real));
    if (!l.fd.valid()) {
        l.error = errno;
        l.found = classify_errno(l.error);
        return l;
    }
    if (::fstat(l.fd.get(), &l.st) != 0) {
        l.error = errno;
        l.found = Found::error;
        l.fd.reset();
        return l;
    }
    if (S_ISREG(l.st.st_mode)) {
        if (trailing_slash) {
            l.found = Found::missing; // "file.txt/" is not a file
            l.fd.reset();
            return l;
        }
        finish_regular(l);
        return l;
    }
    if (!S_ISDIR(l.st.st_mode)) {
        l.found = Found::forbidden;
        l.fd.reset();
        return l;
    }
    if (!trailing_slash) {
        l.found = Found::redirect;
        l.fd.reset();
        return l;
    }
    const StaticOptions& o = root.options;
    if (!o.index.empty()) {
        // Relative to the root (not the directory), like any other file of the tree.
        const std::string index_rel = rel.empty() ? o.index : rel + "/" + o.index;
        UniqueFd index(open_beneath(root.fd, index_rel.c_str(), kOpenFlags, root.real));
        struct stat st {};
        if (index.valid() && ::fstat(index.get(), &st) == 0 && S_ISREG(st.st_mode)) {
            l.fd = std::move(index);
            l.st = st;
            l.index = true;
            finish_regular(l);
            return l;
        }
    }
    if (o.listing) {
        l.entries = read_directory(root, rel, l.fd.get());
        l.found = Found::listing;
        l.fd.reset();
        return l;
    }
    l.found = Found::missing;
    l.fd.reset();
    return l;
}

// ---------------------------------------------------------------------------------------------
// Sending an open file
// ---------------------------------------------------------------------------------------------

[[noreturn]] void throw_read_error(std::error_code ec) {
    throw std::system_error(ec, "ringwork: reading a static file");
}

/// Read exactly `len` bytes at `offset` into `out` with io_uring; returns the bytes read
/// (fewer when the file shrank meanwhile).
runtime::Task<std::size_t> read_fully(int fd, char* out, std::size_t len, std::uint64_t offset) {
    std::size_t got = 0;
    while (got < len) {
        io::ReadAt op(fd, std::span<char>(out + got, len - got), offset + got);
        const auto r = co_await op;
        if (!r) {
            throw_read_error(r.error());
        }
        if (*r == 0) {
            break;
        }
        got += *r;
    }
    co_return got;
}

enum class Precondition : std::uint8_t { pass, not_modified, failed };

Precondition evaluate_conditions(Context& c, const struct stat& st, std::string_view etag,
                                 const FileOptions& o) {
    const std::time_t mtime = st.st_mtim.tv_sec;
    // RFC 9110 §13.2.2: If-Match, else If-Unmodified-Since; then If-None-Match, else
    // If-Modified-Since (GET/HEAD only, which is all we serve).
    const std::string_view if_match = c.header("If-Match");
    if (!if_match.empty()) {
        if (!o.etag || !etag_list_matches(if_match, etag, false)) {
            return Precondition::failed;
        }
    } else if (o.last_modified) {
        const std::string_view ius = c.header("If-Unmodified-Since");
        if (!ius.empty()) {
            if (const auto date = parse_http_date(ius); date && mtime > *date) {
                return Precondition::failed;
            }
        }
    }
    const std::string_view if_none_match = c.header("If-None-Match");
    if (!if_none_match.empty()) {
        if (o.etag && etag_list_matches(if_none_match, etag, true)) {
            return Precondition::not_modified;
        }
        return Precondition::pass;
    }
    if (o.last_modified) {
        const std::string_view ims = c.header("If-Modified-Since");
        if (!ims.empty()) {
            if (const auto date = parse_http_date(ims); date && mtime <= *date) {
                return Precondition::not_modified;
            }
        }
    }
    return Precondition::pass;
}

/// If-Range: a date equal to Last-Modified, or a strong tag equal to ours (ours is weak, so
/// never), lets the range apply.
bool if_range_allows(std::string_view if_range, const struct stat& st, std::string_view etag) noexcept {
    if_range = trim_ows(if_range);
    if (if_range.empty()) {
        return true;
    }
    if (if_range.front() == '"' || if_range.starts_with("W/")) {
        return etag_list_matches(if_range, etag, false) && !if_range.starts_with("W/");
    }
    const auto date = parse_http_date(if_range);
    return date && *date == st.st_mtim.tv_sec;
}

/// The mtime as Last-Modified may state it: RFC 9110 §8.8.2.1 forbids a Last-Modified later
/// than the message's Date (a file touched into the future) and says to use the Date instead.
/// Read from the clock the server's Date line comes from (CLOCK_REALTIME_COARSE, see
/// http::detail::DateCache), which formats it after the handler: never an earlier second.
timespec last_modified_time(timespec mtime) noexcept {
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME_COARSE, &now);
    return mtime.tv_sec > now.tv_sec ? timespec{now.tv_sec, 0} : mtime;
}

/// Answer with the open regular file `fd` (stat `st`), typed after `name_for_type`.
/// `o` and the string behind `name_for_type` must outlive the task (the caller awaits it).
runtime::Task<> serve_open_file(Context& c, UniqueFd fd, struct stat st, std::string_view name_for_type,
                                const FileOptions& o) {
    std::array<char, 48> etag_storage{};
    const std::string_view etag = o.etag ? weak_etag(st, etag_storage) : std::string_view{};
    // From here on st_mtim is the Last-Modified time, which the date preconditions and
    // If-Range compare with; the weak ETag above keeps the true mtime.
    st.st_mtim = last_modified_time(st.st_mtim);
    std::array<char, 29> date{};
    format_date_into(st.st_mtim.tv_sec, date);
    const std::string_view last_modified(date.data(), date.size());
    http::Response& res = c.response();

    const auto common_validators = [&] {
        if (o.etag) {
            res.set_header("ETag", etag);
        }
        if (o.last_modified) {
            res.set_header("Last-Modified", last_modified);
        }
        if (!o.cache_control.empty()) {
            res.set_header("Cache-Control", o.cache_control);
        }
    };

    const auto size = static_cast<std::uint64_t>(st.st_size);
    const std::string_view content_type = o.content_type.empty() ? mime_type(name_for_type) : o.content_type;
    // Whether a compress() around us gzips this file's 200 for clients that accept gzip: then
    // its 304 and 206 carry the same Vary, and a gzip client's range is of the gzip form.
    const Compress* const compress = Compress::around(c);
    const bool compressible = compress != nullptr && size <= o.small_file_limit &&
                              compress->would_compress(content_type, size, o.cache_control);

    switch (evaluate_conditions(c, st, etag, o)) {
    case Precondition::failed:
        c.app().answer_error(c, 412, "Precondition Failed");
        co_return;
    case Precondition::not_modified:
        res.set_status(304);
        res.set_body({});
        common_validators();
        if (compressible) {
            Compress::vary(res);
        }
        co_return;
    case Precondition::pass:
        break;
    }

    std::uint64_t first = 0;
    std::uint64_t length = size;
    bool partial = false;
    // Whole file when compress will gzip it for this client: its range is of the gzip form.
    const bool gzipped_whole = compressible && accepts_gzip(c.header("Accept-Encoding"));
    if (o.ranges && c.method() == http::Method::get && !gzipped_whole) {
        const std::string_view range = c.header("Range");
        if (!range.empty() && if_range_allows(c.header("If-Range"), st, etag)) {
            const RangeSpec spec = parse_range(range, size);
            if (spec.kind == RangeSpec::Kind::unsatisfiable) {
                c.app().answer_error(c, 416, "Range Not Satisfiable");
                res.set_header("Content-Range", fmt::format("bytes */{}", size));
                res.set_header("Accept-Ranges", "bytes");
                co_return;
            }
            if (spec.kind == RangeSpec::Kind::single) {
                partial = true;
                first = spec.first;
                length = spec.length;
            }
        }
    }

    res.set_status(partial ? 206 : 200);
    res.set_header("Content-Type", content_type);
    common_validators();
    if (o.ranges) {
        res.set_header("Accept-Ranges", "bytes");
    }
    if (partial) {
        res.set_header("Content-Range", fmt::format("bytes {}-{}/{}", first, first + length - 1, size));
        if (compressible) {
            Compress::vary(res); // as the 200 would (RFC 9110 §15.3.7)
        }
    }

    const bool head = c.method() == http::Method::head;
    if (length <= o.small_file_limit) {
        // One read into the pooled body buffer (also for HEAD: the serializer then sends the
        // true Content-Length and no body, and middleware such as compress sees what GET sees).
        http::ByteBuffer& body = res.body_buffer();
        body.clear();
        char* out = body.prepare(static_cast<std::size_t>(length));
        const std::size_t got = co_await read_fully(fd.get(), out, static_cast<std::size_t>(length), first);
        body.commit(got);
        if (got != length && partial) {
            // The file shrank under us: the Content-Range we promised is wrong now.
            res.set_header("Content-Range", fmt::format("bytes {}-{}/{}", first, first + got - 1, first + got));
        }
        co_return;
    }

    // Large payload: stream it with a declared length (identity framing on the wire).
    res.set_header("Content-Length", fmt::format("{}", length));
    if (head) {
        auto head_only = c.write({});
        co_await std::move(head_only);
        co_return;
    }
    const std::size_t chunk = std::max<std::size_t>(o.chunk_size, 4096);
    auto buffer = std::make_unique<char[]>(static_cast<std::size_t>(std::min<std::uint64_t>(chunk, length)));
    std::uint64_t done = 0;
    while (done < length) {
        const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, length - done));
        io::ReadAt op(fd.get(), std::span<char>(buffer.get(), want), first + done);
        const auto r = co_await op;
        if (!r || *r == 0) {
            if (done == 0 && !c.exchange().streaming()) {
                throw_read_error(r ? std::make_error_code(std::errc::io_error) : r.error());
            }
            // Head already sent: the declared length cannot be met; end the connection.
            res.set_close(true);
            co_return;
        }
        done += *r;
        auto write = c.write(std::string_view(buffer.get(), *r));
        if (!co_await std::move(write)) {
            co_return; // client gone
        }
    }
}

/// Blocking work on the offload pool (or inline).
template <class F>
runtime::Task<Lookup> run_lookup(bool offload, F fn) {
    if (!offload) {
        co_return fn();
    }
    auto task = io::offload(std::move(fn));
    co_return co_await std::move(task);
}

// ---------------------------------------------------------------------------------------------
// Static tree
// ---------------------------------------------------------------------------------------------

enum class PathCheck : std::uint8_t { ok, forbidden, missing };

/// Normalize the decoded relative path: drop empty and "." segments, refuse "..", '\\' and
/// NUL, hide dot files unless allowed. `out` gets the segments joined with '/'.
PathCheck normalize(std::string_view path, bool dotfiles, std::string& out) {
    out.clear();
    while (!path.empty()) {
        const auto slash = path.find('/');
        const std::string_view seg = path.substr(0, slash);
        path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash + 1);
        if (seg.empty() || seg == ".") {
            continue;
        }
        if (seg == ".." || seg.find('\\') != std::string_view::npos || seg.find('\0') != std::string_view::npos) {
            return PathCheck::forbidden;
        }
        if (!dotfiles && seg.front() == '.') {
            return PathCheck::missing;
        }
        if (!out.empty()) {
            out.push_back('/');
        }
        out.append(seg);
    }
    return PathCheck::ok;
}

void append_html_escaped(http::ByteBuffer& b, std::string_view s) {
    for (char ch : s) {
        switch (ch) {
        case '&':
            b.append("&amp;");
            break;
        case '<':
            b.append("&lt;");
            break;
        case '>':
            b.append("&gt;");
            break;
        case '"':
            b.append("&quot;");
            break;
        case '\'':
            b.append("&#39;");
            break;
        default:
            b.append(ch);
        }
    }
}

void append_percent_encoded(http::ByteBuffer& b, std::string_view s) {
    constexpr std::string_view kHex = "0123456789ABCDEF";
    for (char ch : s) {
        const auto u = static_cast<unsigned char>(ch);
        const bool plain = (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') ||
                           u == '-' || u == '.' || u == '_' || u == '~';
        if (plain) {
            b.append(ch);
        } else {
            b.append('%');
            b.append(kHex[u >> 4U]);
            b.append(kHex[u & 15U]);
        }
    }
}

void write_listing(Context& c, std::string_view shown_path, const std::vector<DirEntry>& entries) {
    http::Response& res = c.response();
    res.set_status(200);
    res.set_header("Content-Type", "text/html; charset=utf-8");
    http::ByteBuffer& b = res.body_buffer();
    b.clear();
    b.append("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of ");
    append_html_escaped(b, shown_path);
    b.append("</title></head>\n<body><h1>Index of ");
    append_html_escaped(b, shown_path);
    b.append("</h1>\n<table>\n<tr><th>Name</th><th>Size</th><th>Last modified</th></tr>\n");
    b.append("<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n");
    std::array<char, 29> date{};
    for (const DirEntry& e : entries) {
        b.append("<tr><td><a href=\"./");
        append_percent_encoded(b, e.name);
        if (e.dir) {
            b.append('/');
        }
        b.append("\">");
        append_html_escaped(b, e.name);
        if (e.dir) {
            b.append('/');
        }
        b.append("</a></td><td>");
        if (!e.dir) {
            fmt::format_to(b.back_inserter(), "{}", e.size);
        }
        b.append("</td><td>");
        format_date_into(e.mtime, date);
        b.append(std::string_view(date.data(), date.size()));
        b.append("</td></tr>\n");
    }
    b.append("</table></body></html>\n");
}

/// 301 to the request path plus '/', keeping the query.
void redirect_to_directory(Context& c) {
    std::string_view raw = c.exchange().request.raw_path();
    // Never build a scheme-relative "//host" location out of a path that starts with slashes.
    while (raw.size() > 1 && raw[0] == '/' && raw[1] == '/') {
        raw.remove_prefix(1);
    }
    std::string location(raw);
    location.push_back('/');
    const std::string_view query = c.query_string();
    if (!query.empty()) {
        location.push_back('?');
        location.append(query);
    }
    c.redirect(location, 301);
}

enum class Served : std::uint8_t { yes, missing };

/// Serve `rel` (normalized) under the root; `Served::missing` leaves the response untouched.
runtime::Task<Served> serve_static(Context& c, const detail::StaticRoot& root, const FileOptions& fo,
                                   std::string rel, bool trailing_slash) {
    const detail::StaticRoot* rp = &root;
    auto work = [rp, rel, trailing_slash]() { return open_under_root(*rp, rel, trailing_slash); };
    auto task = run_lookup(fo.offload_open, std::move(work));
    Lookup l = co_await std::move(task);
    switch (l.found) {
    case Found::file: {
        const std::string_view name = l.index ? std::string_view(root.options.index) : std::string_view(rel);
        auto serve = serve_open_file(c, std::move(l.fd), l.st, name, fo);
        co_await std::move(serve);
        co_return Served::yes;
    }
    case Found::redirect:
        redirect_to_directory(c);
        co_return Served::yes;
    case Found::listing:
        write_listing(c, c.path(), l.entries);
        co_return Served::yes;
    case Found::forbidden:
        c.app().answer_error(c, 403, "Forbidden");
        co_return Served::yes;
    case Found::error:
        throw std::system_error(l.error, std::system_category(), "ringwork: opening a static file");
    case Found::missing:
        break;
    }
    co_return Served::missing;
}

} // namespace

// -------------------------------------------------------------------------------------------------
// Public functions
// -------------------------------------------------------------------------------------------------

void detail::use_openat2_fallback(bool on) noexcept { g_force_fallback.store(on, std::memory_order_relaxed); }

std::string_view mime_type(std::string_view path) noexcept {
    const auto slash = path.rfind('/');
    const std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
    const auto dot = name.rfind('.');
    if (dot == std::string_view::npos || dot + 1 == name.size()) {
        return kOctetStream;
    }
    const std::string_view ext = name.substr(dot + 1);
    if (ext.size() > 16) {
        return kOctetStream;
    }
    std::array<char, 16> buf{};
    for (std::size_t i = 0; i < ext.size(); ++i) {
        buf[i] = ascii_lower(ext[i]);
    }
    const std::string_view key(buf.data(), ext.size());
    const auto* it = std::lower_bound(kMimeTypes.begin(), kMimeTypes.end(), key,
                                      [](const MimeEntry& e, std::string_view k) { return e.ext < k; });
    if (it != kMimeTypes.end() && it->ext == key) {
        return it->type;
    }
    return kOctetStream;
}

std::string format_http_date(std::time_t t) {
    std::array<char, 29> out{};
    format_date_into(t, out);
    return {out.data(), out.size()};
}

std::optional<std::time_t> parse_http_date(std::string_view s) noexcept {
    s = trim_ows(s);
    std::tm tm{};
    const auto comma = s.find(',');
    if (comma != std::string_view::npos) {
        std::string_view rest = s.substr(comma + 1);
        if (rest.empty() || rest.front() != ' ') {
            return std::nullopt;
        }
        rest.remove_prefix(1);
        int year = 0;
        if (rest.size() == 24 && rest[2] == ' ' && rest[6] == ' ' && rest[11] == ' ' && rest[20] == ' ') {
            // IMF-fixdate: "06 Nov 1994 08:49:37 GMT"
            if (!parse_digits(rest.substr(0, 2), tm.tm_mday) || !parse_digits(rest.substr(7, 4), year) ||
                !parse_clock(rest.substr(12, 8), tm) || rest.substr(21) != "GMT") {
                return std::nullopt;
            }
            tm.tm_mon = month_index(rest.substr(3, 3));
        } else if (rest.size() == 22 && rest[2] == '-' && rest[6] == '-' && rest[9] == ' ' && rest[18] == ' ') {
            // RFC 850: "06-Nov-94 08:49:37 GMT"; two-digit years within 50 years of now
            // (RFC 9110 §5.6.7) simplified to the 1970-2069 window.
            if (!parse_digits(rest.substr(0, 2), tm.tm_mday) || !parse_digits(rest.substr(7, 2), year) ||
                !parse_clock(rest.substr(10, 8), tm) || rest.substr(19) != "GMT") {
                return std::nullopt;
            }
            year += year < 70 ? 2000 : 1900;
            tm.tm_mon = month_index(rest.substr(3, 3));
        } else {
            return std::nullopt;
        }
        tm.tm_year = year - 1900;
    } else {
        // asctime: "Sun Nov  6 08:49:37 1994"
        if (s.size() != 24 || s[3] != ' ' || s[7] != ' ' || s[10] != ' ' || s[19] != ' ') {
            return std::nullopt;
        }
        tm.tm_mon = month_index(s.substr(4, 3));
        std::string_view day = s.substr(8, 2);
        if (day.front() == ' ') {
            day.remove_prefix(1);
        }
        int year = 0;
        if (!parse_digits(day, tm.tm_mday) || !parse_clock(s.substr(11, 8), tm) ||
            !parse_digits(s.substr(20, 4), year)) {
            return std::nullopt;
        }
        tm.tm_year = year - 1900;
    }
    if (tm.tm_mon < 0 || tm.tm_mday < 1 || tm.tm_mday > 31) {
        return std::nullopt;
    }
    return ::timegm(&tm);
}

bool etag_list_matches(std::string_view header, std::string_view etag, bool weak) noexcept {
    if (etag.empty()) {
        return false;
    }
    const bool etag_weak = etag.starts_with("W/");
    const std::string_view opaque = etag_weak ? etag.substr(2) : etag;
    if (!weak && etag_weak) {
        return trim_ows(header) == "*";
    }
    while (!header.empty()) {
        const auto comma = header.find(',');
        std::string_view item = trim_ows(header.substr(0, comma));
        header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);
        if (item == "*") {
            return true;
        }
        const bool item_weak = item.starts_with("W/");
        if (item_weak) {
            if (!weak) {
                continue;
            }
            item.remove_prefix(2);
        }
        if (item == opaque) {
            return true;
        }
    }
    return false;
}

RangeSpec parse_range(std::string_view header, std::uint64_t size) noexcept {
    RangeSpec none;
    header = trim_ows(header);
    const auto eq = header.find('=');
    if (eq == std::string_view::npos || !iequals(trim_ows(header.substr(0, eq)), "bytes")) {
        return none;
    }
    const std::string_view set = trim_ows(header.substr(eq + 1));
    if (set.empty() || set.find(',') != std::string_view::npos) {
        return none; // several ranges: the whole representation (documented)
    }
    const auto dash = set.find('-');
    if (dash == std::string_view::npos) {
        return none;
    }
    const std::string_view a = trim_ows(set.substr(0, dash));
    const std::string_view b = trim_ows(set.substr(dash + 1));
    const auto number = [](std::string_view s, std::uint64_t& out, bool& overflow) {
        if (s.empty() || s.find_first_not_of("0123456789") != std::string_view::npos) {
            return false;
        }
        const auto r = std::from_chars(s.data(), s.data() + s.size(), out);
        overflow = r.ec == std::errc::result_out_of_range;
        if (overflow) {
            out = UINT64_MAX;
        }
        return true;
    };
    RangeSpec spec;
    bool overflow = false;
    if (a.empty()) {
        // Suffix: the last n bytes.
        std::uint64_t n = 0;
        if (!number(b, n, overflow)) {
            return none;
        }
        if (n == 0) {
            spec.kind = RangeSpec::Kind::unsatisfiable;
            return spec;
        }
        if (size == 0) {
            // Satisfiable (RFC 9110 §14.1.1: a non-zero suffix-length always is), but there is
            // no byte to put in a 206: the whole, empty representation.
            return none;
        }
        n = std::min(n, size);
        spec.kind = RangeSpec::Kind::single;
        spec.first = size - n;
        spec.length = n;
        return spec;
    }
    std::uint64_t first = 0;
    if (!number(a, first, overflow)) {
        return none;
    }
    std::uint64_t last = UINT64_MAX;
    if (!b.empty()) {
        bool last_overflow = false;
        if (!number(b, last, last_overflow) || (!overflow && last < first)) {
            return none; // "5-3" is invalid syntax: ignore the header
        }
    }
    if (overflow || first >= size) {
        spec.kind = RangeSpec::Kind::unsatisfiable;
        return spec;
    }
    last = std::min(last, size - 1);
    spec.kind = RangeSpec::Kind::single;
    spec.first = first;
    spec.length = last - first + 1;
    return spec;
}

runtime::Task<> send_file(Context& c, std::string path, FileOptions options) {
    auto work = [path]() { return open_plain(path); };
    auto task = run_lookup(options.offload_open, std::move(work));
    Lookup l = co_await std::move(task);
    switch (l.found) {
    case Found::file: {
        auto serve = serve_open_file(c, std::move(l.fd), l.st, path, options);
        co_await std::move(serve);
        co_return;
    }
    case Found::missing:
    case Found::redirect:
    case Found::listing:
        c.app().answer_error(c, 404, "Not Found");
        co_return;
    case Found::forbidden:
        c.app().answer_error(c, 403, "Forbidden");
        co_return;
    case Found::error:
        break;
    }
    throw std::system_error(l.error, std::system_category(), "ringwork: opening " + path);
}

StaticFiles::StaticFiles(std::string root, StaticOptions options) {
    auto state = std::make_shared<detail::StaticRoot>();
    state->fd = ::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (state->fd < 0) {
        throw std::system_error(errno, std::system_category(), "ringwork: static_files root " + root);
    }
    char resolved[PATH_MAX];
    if (::realpath(root.c_str(), resolved) == nullptr) {
        throw std::system_error(errno, std::system_category(), "ringwork: static_files root " + root);
    }
    state->real = resolved;
    if (options.prefix.empty()) {
        options.prefix = "/";
    }
    if (options.file.cache_control.empty() && options.max_age) {
        options.file.cache_control = fmt::format("public, max-age={}{}", options.max_age->count(),
                                                 options.immutable ? ", immutable" : "");
    }
    state->options = std::move(options);
    root_ = std::move(state);
}

runtime::Task<> StaticFiles::operator()(Context& c, Next next) const {
    const detail::StaticRoot& root = *root_;
    const StaticOptions& o = root.options;
    const http::Method method = c.method();
    if (method != http::Method::get && method != http::Method::head) {
        if (!next.empty()) {
            auto rest = next();
            co_await rest;
            co_return;
        }
        c.app().answer_error(c, 405, "Method Not Allowed");
        c.set_header("Allow", "GET, HEAD");
        co_return;
    }

    // The relative path (already percent-decoded by the server).
    std::string_view rel_view;
    if (!o.param.empty()) {
        if (!c.params().contains(o.param)) {
            auto rest = next();
            co_await rest;
            co_return;
        }
        rel_view = c.param(o.param);
    } else {
        const std::string_view path = c.path();
        std::string_view prefix = o.prefix;
        if (prefix.size() > 1 && prefix.back() == '/') {
            prefix.remove_suffix(1);
        }
        if (prefix == "/") {
            rel_view = path;
        } else if (path.starts_with(prefix) && (path.size() == prefix.size() || path[prefix.size()] == '/')) {
            rel_view = path.substr(prefix.size());
        } else {
            auto rest = next();
            co_await rest;
            co_return;
        }
    }
    // "/static" (the prefix itself) has no trailing slash; an empty catch-all ("/static/") has.
    const bool trailing_slash = rel_view.empty() ? !o.param.empty() : rel_view.back() == '/';
    std::string rel;
    const PathCheck check = normalize(rel_view, o.dotfiles, rel);
    if (check == PathCheck::forbidden) {
        c.app().answer_error(c, 403, "Forbidden");
        co_return;
    }
    if (check == PathCheck::ok) {
        auto serve = serve_static(c, root, o.file, std::move(rel), trailing_slash);
        if (co_await std::move(serve) == Served::yes) {
            co_return;
        }
    }
    if (o.fallthrough && !next.empty()) {
        auto rest = next();
        co_await rest;
        co_return;
    }
    c.app().answer_error(c, 404, "Not Found");
}

namespace mw {

StaticFiles static_files(std::string root, StaticOptions options) {
    return StaticFiles(std::move(root), std::move(options));
}

} // namespace mw
} // namespace ringwork::web
