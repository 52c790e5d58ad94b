// SPDX-License-Identifier: MIT
// The sample apps' command line: --help, --host, --port, --threads and app-specific flags,
// with errors that name the flag (exit 2) and the "NAME listening on URL" readiness line.
#pragma once

#include <fmt/format.h>

#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace apps {

/// `--flag=value`: `arg` becomes `--flag` and `*value` `value`; false (nothing changed) for an
/// argument without '=' or not starting with "--".
inline bool split_inline_value(std::string_view& arg, std::string_view* value) noexcept {
    const auto eq = arg.find('=');
    if (eq == std::string_view::npos || !arg.starts_with("--")) {
        return false;
    }
    *value = arg.substr(eq + 1);
    arg = arg.substr(0, eq);
    return true;
}

class Cli {
public:
    /// `name` prints in messages ("ringwork-hello"), `footer` after the flag list.
    Cli(std::string name, std::string footer = {}) : name_(std::move(name)), footer_(std::move(footer)) {}

    /// A flag taking a text value.
    Cli& text(std::string flag, std::string* target, std::string help) {
        // Appended rather than `" " + ...`, on which g++ 12 -O3 warns -Wrestrict (a false
        // positive, GCC PR 105329). value_name() strips the value name off `help` first.
        std::string value(1, ' ');
        value += value_name(help);
        add(std::move(flag), std::move(value), std::move(help), true,
            [target](std::string_view v) { *target = std::string(v); });
        return *this;
    }
    /// A flag taking a decimal number in [0, max].
    template <class T>
    Cli& number(std::string flag, T* target, unsigned long max, std::string help) {
        const std::string f = flag;
        add(std::move(flag), " N", std::move(help), true, [this, target, max, f](std::string_view v) {
            unsigned long n = 0;
            const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
            if (v.empty() || ec != std::errc{} || end != v.data() + v.size() || n > max) {
                fail(fmt::format("{} expects a number from 0 to {}, got '{}'", f, max, v));
            }
            *target = static_cast<T>(n);
        });
        return *this;
    }
    /// A flag without a value that sets `*target = value`.
    Cli& toggle(std::string flag, bool* target, bool value, std::string help) {
        add(std::move(flag), "", std::move(help), false, [target, value](std::string_view) { *target = value; });
        return *this;
    }
    /// The usual flags: --host, --port (0 picks a free port), --threads (0: one per CPU) and,
    /// with `share_port`, --share-port (ServerOptions::share_port: join a port that another
    /// process of this user listens on, for a restart without a refused connection).
    Cli& listen(std::string* host, std::uint16_t* port, unsigned* threads, bool* share_port = nullptr) {
        text("--host", host, fmt::format("ADDR address to listen on (default {})", *host));
        number("--port", port, 65535, fmt::format("port (default {}; 0 picks a free one)", *port));
        number("--threads", threads, 1024,
               fmt::format("reactor threads (default {}; 0 = one per CPU)", *threads));
        if (share_port != nullptr) {
            toggle("--share-port", share_port, true, "join a port another process of this user listens on (restarts)");
        }
        return *this;
    }

    /// `--flag value` or `--flag=value` (as ringwork-echo takes them).
    void parse(int argc, char** argv) {
        for (int i = 1; i < argc; ++i) {
            std::string_view arg = argv[i]; // NOLINT: argv
            if (arg == "--help" || arg == "-h") {
                usage(stdout);
                std::exit(0); // NOLINT(concurrency-mt-unsafe)
            }
            std::string_view inline_value;
            const bool has_inline = split_inline_value(arg, &inline_value);
            const Flag* flag = nullptr;
            for (const Flag& f : flags_) {
                flag = f.name == arg ? &f : flag;
            }
            if (flag == nullptr) {
                usage(stderr);
                fail(fmt::format("unknown option {}", arg));
            }
            if (!flag->takes_value) {
                if (has_inline) {
                    fail(fmt::format("{} takes no value", arg));
                }
                flag->apply({});
            } else if (has_inline) {
                flag->apply(inline_value);
            } else if (i + 1 >= argc) {
                fail(fmt::format("{} needs a value", arg));
            } else {
                flag->apply(argv[++i]); // NOLINT: argv
            }
        }
    }

    [[noreturn]] void fail(std::string_view message) const {
        fmt::print(stderr, "{}: {}\n", name_, message);
        std::exit(2); // NOLINT(concurrency-mt-unsafe)
    }

private:
    struct Flag {
        std::string name;
        std::string value;
        std::string help;
        bool takes_value;
        std::function<void(std::string_view)> apply;
    };
    static std::string value_name(std::string& help) {
        // "ADDR address to ..." -> value name ADDR (upper-case first word), help without it.
        const auto space = help.find(' ');
        const std::string first = help.substr(0, space);
        if (!first.empty() && first.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") == std::string::npos) {
            help = space == std::string::npos ? std::string() : help.substr(space + 1);
            return first;
        }
        return "VALUE";
    }
    void add(std::string name, std::string value, std::string help, bool takes_value,
             std::function<void(std::string_view)> apply) {
        flags_.push_back(Flag{std::move(name), std::move(value), std::move(help), takes_value, std::move(apply)});
    }
    void usage(std::FILE* out) const {
        fmt::print(out, "usage: {} [options]\n", name_);
        for (const Flag& f : flags_) {
            fmt::print(out, "  {:<18} {}\n", f.name + f.value, f.help);
        }
        if (!footer_.empty()) {
            fmt::print(out, "{}\n", footer_);
        }
    }

    std::string name_;
    std::string footer_;
    std::vector<Flag> flags_;
};

/// "HOST:PORT", with brackets for an IPv6 host.
inline std::string listen_address(const std::string& host, std::uint16_t port) {
    return host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, port) : fmt::format("{}:{}", host, port);
}

/// The readiness line the integration tests and scripts wait for.
inline void print_listening(std::string_view name, const std::string& host, std::uint16_t port) {
    const bool v6 = host.find(':') != std::string::npos;
    fmt::print("{} listening on http://{}{}{}:{}/\n", name, v6 ? "[" : "", host, v6 ? "]" : "", port);
    std::fflush(stdout);
}

} // namespace apps
