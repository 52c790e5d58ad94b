// SPDX-License-Identifier: MIT
// AppProcess: a sample app started as a child process for integration tests (bounded waits).
#pragma once

#include <doctest/doctest.h>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

extern char** environ; // NOLINT: POSIX

namespace test {

using namespace std::chrono_literals;

/// Milliseconds left until `deadline` (0 when past), for poll().
inline int ms_left(std::chrono::steady_clock::time_point deadline) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    return left > 0 ? static_cast<int>(left) : 0;
}

/// The path of an app executable that meson passes in environment variable `var`.
inline std::string app_path(const char* var) {
    const char* p = std::getenv(var); // NOLINT(concurrency-mt-unsafe)
    REQUIRE_MESSAGE(p != nullptr, var << " is not set (run through meson test)");
    return p;
}

/// \brief A sample app running as a child on 127.0.0.1 and a free port; SIGKILLed if a test
/// leaves without stop(). Not copyable (it owns the child). The app must print
/// "<name> listening on http://127.0.0.1:PORT/" on stdout when ready.
class AppProcess {
public:
    AppProcess(const std::string& path, std::string_view name, std::vector<std::string> extra = {}) {
        std::vector<std::string> args = {path, "--host", "127.0.0.1", "--port", "0"};
        args.insert(args.end(), extra.begin(), extra.end());
        std::vector<char*> argv;
        for (std::string& a : args) {
            argv.push_back(a.data());
        }
        argv.push_back(nullptr);
        int fds[2] = {-1, -1};
        REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
        child_.out = fds[0];
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
        posix_spawnattr_t attr;
        posix_spawnattr_init(&attr);
        sigset_t none;
        sigemptyset(&none);
        sigset_t defaults;
        sigemptyset(&defaults);
        sigaddset(&defaults, SIGTERM);
        sigaddset(&defaults, SIGINT);
        sigaddset(&defaults, SIGPIPE);
        posix_spawnattr_setsigmask(&attr, &none);
        posix_spawnattr_setsigdefault(&attr, &defaults);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        const int rc = ::posix_spawn(&child_.pid, args[0].c_str(), &actions, &attr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        posix_spawnattr_destroy(&attr);
        ::close(fds[1]);
        REQUIRE_MESSAGE(rc == 0, "posix_spawn " << args[0] << ": " << std::strerror(rc));
        // Wait (bounded) for "<name> listening on http://127.0.0.1:PORT/\n".
        const auto deadline = std::chrono::steady_clock::now() + 15s;
        std::string line;
        while (line.find('\n') == std::string::npos) {
            pollfd p{child_.out, POLLIN, 0};
            const int n = ::poll(&p, 1, ms_left(deadline));
            REQUIRE_MESSAGE(n > 0, name << " did not report readiness in time; got '" << line << "'");
            char buf[256];
            const ssize_t r = ::read(child_.out, buf, sizeof buf);
            REQUIRE_MESSAGE(r > 0, name << " exited before it was ready; got '" << line << "'");
            line.append(buf, static_cast<std::size_t>(r));
        }
        line.resize(line.find('\n'));
        ready_line_ = line;
        const std::string prefix = std::string(name) + " listening on http://127.0.0.1:";
        REQUIRE_MESSAGE(line.starts_with(prefix), line);
        REQUIRE_MESSAGE(line.ends_with("/"), line);
        const std::string digits = line.substr(prefix.size(), line.size() - prefix.size() - 1);
        const unsigned long port = std::stoul(digits);
        REQUIRE(port > 0);
        REQUIRE(port < 65536);
        port_ = static_cast<std::uint16_t>(port);
    }

    [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
    [[nodiscard]] const std::string& ready_line() const noexcept { return ready_line_; }
    [[nodiscard]] std::string url(std::string_view path) const {
        return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
    }

    /// SIGTERM, then wait up to `limit`: the exit code, 128 + signal when killed by one, -1 when
    /// it had to be SIGKILLed.
    int stop(std::chrono::milliseconds limit = 10s) {
        REQUIRE(child_.pid > 0);
        ::kill(child_.pid, SIGTERM);
        const auto deadline = std::chrono::steady_clock::now() + limit;
        int status = 0;
        pid_t r = 0;
        while ((r = ::waitpid(child_.pid, &status, WNOHANG)) == 0) {
            if (std::chrono::steady_clock::now() > deadline) {
                ::kill(child_.pid, SIGKILL);
                ::waitpid(child_.pid, &status, 0);
                child_.pid = -1;
                return -1;
            }
            std::this_thread::sleep_for(2ms);
        }
        child_.pid = -1;
        REQUIRE(r > 0);
        if (WIFEXITED(status)) {
            return WEXITSTATUS(status);
        }
        return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
    }

private:
    /// The child and its stdout pipe: a member, so a REQUIRE failing in the constructor body
    /// still kills the child (a throwing constructor runs no destructor of its own).
    struct Child {
        pid_t pid = -1;
        int out = -1;
        Child() = default;
        Child(const Child&) = delete;
        Child& operator=(const Child&) = delete;
        ~Child() {
            if (pid > 0) {
                ::kill(pid, SIGKILL);
                int status = 0;
                ::waitpid(pid, &status, 0);
            }
            if (out >= 0) {
                ::close(out);
            }
        }
    };
    Child child_;
    std::uint16_t port_ = 0;
    std::string ready_line_;
};


} // namespace test
