// SPDX-License-Identifier: MIT
// ringwork-todo: a REST JSON API (list with paging, get, create, update, delete) with logger,
// recover, request id and CORS middleware, persisted to a JSON file that is replaced
// atomically on every change, so a restart loses nothing.
//
// Sharing state between reactor threads: the store belongs to one reactor (its "home", the
// first one that touches it). Handlers on other reactors hop there with `submit_to` and come
// back with the result; nothing is shared without that hop, so there is no lock and no data
// race. File writes run on the thread pool (`offload`) so the home reactor keeps serving.
#include <ringwork/ringwork.hpp>

#include "../common/cli.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>

namespace {

using ringwork::Context;
using ringwork::HttpError;
using ringwork::Task;

struct Todo {
    std::int64_t id = 0;
    std::string title;
    bool done = false;
};

nlohmann::json to_json(const Todo& t) { return {{"id", t.id}, {"title", t.title}, {"done", t.done}}; }

/// Write `text` to `path` atomically: a temporary file in the same directory, fsync, rename.
void write_atomically(const std::string& path, const std::string& text) {
    const std::string tmp = path + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        throw std::system_error(errno, std::generic_category(), "open " + tmp);
    }
    std::string_view rest = text;
    while (!rest.empty()) {
        const ssize_t n = ::write(fd, rest.data(), rest.size());
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            const int e = errno;
            ::close(fd);
            throw std::system_error(e, std::generic_category(), "write " + tmp);
        }
        rest.remove_prefix(static_cast<std::size_t>(n));
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
        throw std::system_error(errno, std::generic_category(), "fsync " + tmp);
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        throw std::system_error(errno, std::generic_category(), "rename to " + path);
    }
}

/// The todo list. Every member is touched on the home reactor only (see home()).
class Store {
public:
    explicit Store(std::string path) : path_(std::move(path)) { load(); }

    /// Run `fn` (returning a value or a Task) on the home reactor and give its result back on
    /// the caller's reactor.
    template <class F>
    auto on_home(F fn) -> decltype(ringwork::submit_to(std::declval<ringwork::Reactor&>(), std::move(fn))) {
        ringwork::Reactor* current = ringwork::Reactor::current();
        ringwork::Reactor* expected = nullptr;
        home_.compare_exchange_strong(expected, current, std::memory_order_acq_rel);
        return ringwork::submit_to(*home_.load(std::memory_order_acquire), std::move(fn));
    }

    // --- home reactor only ------------------------------------------------------------------
    [[nodiscard]] nlohmann::json list(std::size_t page, std::size_t per_page) const {
        nlohmann::json items = nlohmann::json::array();
        std::size_t index = 0;
        const std::size_t first = (page - 1) * per_page;
        for (const auto& [id, todo] : todos_) {
            if (index >= first && index < first + per_page) {
                items.push_back(to_json(todo));
            }
            ++index;
        }
        return {{"items", std::move(items)}, {"page", page}, {"per_page", per_page}, {"total", todos_.size()}};
    }
    [[nodiscard]] std::optional<Todo> get(std::int64_t id) const {
        const auto it = todos_.find(id);
        return it == todos_.end() ? std::nullopt : std::optional<Todo>(it->second);
    }
    Task<Todo> create(std::string title, bool done) {
        Todo t{next_id_++, std::move(title), done};
        todos_[t.id] = t;
        co_await persist();
        co_return t;
    }
    /// nullopt when absent.
    Task<std::optional<Todo>> update(std::int64_t id, std::optional<std::string> title, std::optional<bool> done) {
        const auto it = todos_.find(id);
        if (it == todos_.end()) {
            co_return std::nullopt;
        }
        if (title) {
            it->second.title = std::move(*title);
        }
        if (done) {
            it->second.done = *done;
        }
        const Todo copy = it->second;
        co_await persist();
        co_return copy;
    }
    Task<bool> remove(std::int64_t id) {
        if (todos_.erase(id) == 0) {
            co_return false;
        }
        co_await persist();
        co_return true;
    }

private:
    void load() {
        std::ifstream in(path_);
        if (!in) {
            return; // a new store
        }
        std::stringstream text;
        text << in.rdbuf();
        const nlohmann::json j = nlohmann::json::parse(text.str());
        next_id_ = j.at("next_id").get<std::int64_t>();
        for (const auto& item : j.at("todos")) {
            Todo t{item.at("id").get<std::int64_t>(), item.at("title").get<std::string>(), item.at("done").get<bool>()};
            todos_[t.id] = t;
        }
    }
    /// Writes the current state. Serialized by a mutex, and the snapshot is taken under it, so
    /// the file never goes back to an older state whatever order the writes finish in.
    Task<> persist() {
        auto guard = co_await write_lock_.lock();
        nlohmann::json j = {{"next_id", next_id_}, {"todos", nlohmann::json::array()}};
        for (const auto& [id, todo] : todos_) {
            j["todos"].push_back(to_json(todo));
        }
        std::string text = j.dump(2) + "\n";
        std::string path = path_;
        // g++ 12: a temporary with a destructor inside a co_await expression may be destroyed
        // twice (PR 100611), so every such argument is a named local first.
        auto job = [text = std::move(text), path = std::move(path)] { write_atomically(path, text); };
        co_await ringwork::offload(std::move(job));
    }

    std::string path_;
    std::map<std::int64_t, Todo> todos_;
    std::int64_t next_id_ = 1;
    ringwork::Mutex write_lock_;
    std::atomic<ringwork::Reactor*> home_{nullptr};
};

std::int64_t id_of(Context& c) {
    const std::string_view text = c.param("id");
    std::int64_t id = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
    if (ec != std::errc{} || end != text.data() + text.size() || id <= 0) {
        throw HttpError(404, "no todo with id " + std::string(text));
    }
    return id;
}

std::size_t positive(Context& c, std::string_view name, std::size_t fallback, std::size_t max) {
    const auto text = c.query(name);
    if (!text) {
        return fallback;
    }
    std::size_t v = 0;
    const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
    if (ec != std::errc{} || end != text->data() + text->size() || v == 0 || v > max) {
        throw HttpError(400, fmt::format("{} must be a number from 1 to {}", name, max));
    }
    return v;
}

/// Validates a create/update body (`partial`: fields may be missing, PATCH; otherwise, for
/// POST and PUT, `title` is required and `done` may be left out: false). On invalid input it
/// answers 422 with every problem by field and returns nullopt.
struct Input {
    std::optional<std::string> title;
    std::optional<bool> done;
};

std::optional<Input> validate(Context& c, bool partial) {
    const nlohmann::json body = c.json_body();
    nlohmann::json errors = nlohmann::json::object();
    Input in;
    if (!body.is_object()) {
        throw HttpError(422, "the body must be a JSON object");
    }
    if (const auto it = body.find("title"); it != body.end()) {
        if (!it->is_string()) {
            errors["title"] = "must be a string";
        } else {
            std::string title = it->get<std::string>();
            const auto first = title.find_first_not_of(" \t");
            if (first == std::string::npos) {
                errors["title"] = "must not be blank";
            } else if (title.size() > 200) {
                errors["title"] = "must be at most 200 characters";
            } else {
                in.title = std::move(title);
            }
        }
    } else if (!partial) {
        errors["title"] = "is required";
    }
    if (const auto it = body.find("done"); it != body.end()) {
        if (!it->is_boolean()) {
            errors["done"] = "must be true or false";
        } else {
            in.done = it->get<bool>();
        }
    }
    for (const auto& [key, value] : body.items()) {
        if (key != "title" && key != "done" && key != "id") {
            errors[key] = "is not a field of a todo";
        }
    }
    if (!errors.empty()) {
        c.status(422).json(nlohmann::json{{"error", "validation failed"}, {"status", 422}, {"fields", errors}});
        return std::nullopt;
    }
    return in;
}

void routes(ringwork::App& app, Store& store) {
    app.use(ringwork::mw::logger());
    app.use(ringwork::mw::request_id());
    app.use(ringwork::mw::cors());
    app.use(ringwork::mw::recover());
    app.get("/healthz", ringwork::mw::health());
    // The router's own answers in the JSON shape of the handlers' errors (the error boundary's
    // {"error", "status"}), not the default text; the 405 keeps the Allow header the router set.
    app.not_found([](Context& c) { c.status(404).json({{"error", "not found"}, {"status", 404}}); });
    app.method_not_allowed([](Context& c) { c.status(405).json({{"error", "method not allowed"}, {"status", 405}}); });

    auto api = app.group("/todos");
    api.get("", [&store](Context& c) -> Task<> {
        const std::size_t page = positive(c, "page", 1, 1000000);
        const std::size_t per_page = positive(c, "per_page", 20, 100);
        auto job = [&store, page, per_page] { return store.list(page, per_page); };
        const nlohmann::json result = co_await store.on_home(std::move(job));
        c.json(result);
    });
    api.get("/:id", [&store](Context& c) -> Task<> {
        const std::int64_t id = id_of(c);
        auto job = [&store, id] { return store.get(id); };
        const std::optional<Todo> todo = co_await store.on_home(std::move(job));
        if (!todo) {
            throw HttpError(404, fmt::format("no todo with id {}", id));
        }
        c.json(to_json(*todo));
    });
    api.post("", [&store](Context& c) -> Task<> {
        std::optional<Input> in = validate(c, false);
        if (!in) {
            co_return; // answered 422
        }
        auto job = [&store, title = std::move(*in->title), done = in->done.value_or(false)]() mutable {
            return store.create(std::move(title), done);
        };
        const Todo todo = co_await store.on_home(std::move(job));
        c.status(201).set_header("Location", fmt::format("/todos/{}", todo.id));
        c.json(to_json(todo));
    });
    auto update = [&store](Context& c) -> Task<> {
        const std::int64_t id = id_of(c);
        const bool patch = c.method() == ringwork::http::Method::patch;
        std::optional<Input> in = validate(c, patch);
        if (!in) {
            co_return; // answered 422
        }
        if (!patch && !in->done) {
            // PUT replaces the whole todo (RFC 9110 §9.3.4): a left-out `done` is the default,
            // as on POST, not the old value. PATCH keeps what it does not name.
            in->done = false;
        }
        auto job = [&store, id, in = std::move(*in)]() mutable { return store.update(id, std::move(in.title), in.done); };
        const std::optional<Todo> todo = co_await store.on_home(std::move(job));
        if (!todo) {
            throw HttpError(404, fmt::format("no todo with id {}", id));
        }
        c.json(to_json(*todo));
    };
    api.put("/:id", update);
    api.patch("/:id", update);
    api.del("/:id", [&store](Context& c) -> Task<> {
        const std::int64_t id = id_of(c);
        auto job = [&store, id] { return store.remove(id); };
        const bool removed = co_await store.on_home(std::move(job));
        if (!removed) {
            throw HttpError(404, fmt::format("no todo with id {}", id));
        }
        c.status(204);
    });
}

struct Options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 8080;
    unsigned threads = 0;
    std::string data = "todo.json";
    bool share_port = false;
};

Options parse(int argc, char** argv) {
    Options o;
    apps::Cli("ringwork-todo", "routes: GET/POST /todos, GET/PUT/PATCH/DELETE /todos/:id, GET /healthz")
        .text("--data", &o.data, "FILE where the todos are kept (default ./todo.json)")
        .listen(&o.host, &o.port, &o.threads, &o.share_port)
        .parse(argc, argv);
    return o;
}

} // namespace

int main(int argc, char** argv) {
    const Options options = parse(argc, argv);
    try {
        Store store(options.data);
        ringwork::AppOptions app_options;
        app_options.server.share_port = options.share_port;
        ringwork::App app(std::move(app_options));
        routes(app, store);
        app.listen(apps::listen_address(options.host, options.port), options.threads,
                   [&](std::uint16_t bound) { apps::print_listening("ringwork-todo", options.host, bound); });
        ringwork::mw::flush_access_log();
    } catch (const std::exception& e) {
        fmt::print(stderr, "ringwork-todo: {}\n", e.what());
        return 1;
    }
    return 0;
}
