// SPDX-License-Identifier: MIT
// ringwork-hello: the quick-start server. Until the HTTP engine lands it answers every request
// that ends in CRLFCRLF with a fixed "Hello, World!" over keep-alive, straight on the runtime.
#include <ringwork/ringwork.hpp>

#include <fmt/format.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace {

using namespace std::literals;

constexpr std::string_view kResponse = "HTTP/1.1 200 OK\r\n"
                                       "Server: ringwork\r\n"
                                       "Content-Type: text/plain; charset=utf-8\r\n"
                                       "Content-Length: 14\r\n"
                                       "\r\n"
                                       "Hello, World!\n";

struct Options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 8080;
    unsigned threads = 1;
};

void usage() {
    fmt::print("usage: ringwork-hello [--host ADDR] [--port N] [--threads N]\n"
               "  --host ADDR    address to listen on (default 127.0.0.1)\n"
               "  --port N       port (default 8080)\n"
               "  --threads N    reactor threads (default 1; 0 = one per CPU)\n");
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i]; // NOLINT
        auto value = [&]() -> std::string_view {
            if (i + 1 >= argc) {
                fmt::print(stderr, "ringwork-hello: {} needs a value\n", arg);
                std::exit(2); // NOLINT(concurrency-mt-unsafe)
            }
            return argv[++i]; // NOLINT
        };
        if (arg == "--help" || arg == "-h") {
            usage();
            std::exit(0); // NOLINT(concurrency-mt-unsafe)
        } else if (arg == "--host") {
            o.host = value();
        } else if (arg == "--port") {
            o.port = static_cast<std::uint16_t>(std::stoul(std::string(value())));
        } else if (arg == "--threads") {
            o.threads = static_cast<unsigned>(std::stoul(std::string(value())));
        } else {
            fmt::print(stderr, "ringwork-hello: unknown option {}\n", arg);
            usage();
            std::exit(2); // NOLINT(concurrency-mt-unsafe)
        }
    }
    return o;
}

/// Count request ends ("\r\n\r\n") across buffer boundaries; `state` is how much of the
/// terminator the previous bytes matched.
std::size_t count_request_ends(std::string_view bytes, unsigned& state) {
    std::size_t n = 0;
    for (const char c : bytes) {
        if (c == '\r') {
            state = (state == 2) ? 3 : 1;
        } else if (c == '\n' && (state == 1 || state == 3)) {
            if (state == 3) {
                ++n;
                state = 0;
            } else {
                state = 2;
            }
        } else {
            state = 0;
        }
    }
    return n;
}

ringwork::Task<> serve(ringwork::io::Socket socket) {
    unsigned state = 0;
    for (;;) {
        auto lease = co_await socket.recv();
        if (!lease || lease->empty()) {
            break;
        }
        std::size_t owed = count_request_ends(lease->view(), state);
        lease->release();
        while (owed > 0) {
            if (auto sent = co_await socket.send(kResponse); !sent) {
                owed = 0;
                break;
            }
            --owed;
        }
    }
    co_await socket.close();
}

ringwork::Task<> accept_loop(ringwork::io::SocketAddress address, bool announce) {
    auto listener = ringwork::io::Listener::bind(address);
    if (announce) {
        fmt::print("ringwork-hello listening on http://{}/\n", listener.local_address().to_string());
        std::fflush(stdout);
    }
    const ringwork::StopToken stop = ringwork::Reactor::current()->stop_token();
    while (!stop.stop_requested()) {
        auto socket = co_await listener.accept();
        if (socket) {
            ringwork::spawn(serve(std::move(*socket)));
        }
    }
    co_await listener.close();
}

} // namespace

int main(int argc, char** argv) {
    const Options options = parse(argc, argv);
    const bool v6 = options.host.find(':') != std::string::npos;
    auto address = ringwork::io::SocketAddress::parse(
        v6 ? fmt::format("[{}]:{}", options.host, options.port) : fmt::format("{}:{}", options.host, options.port));
    if (!address) {
        fmt::print(stderr, "ringwork-hello: invalid --host {}\n", options.host);
        return 2;
    }
    try {
        ringwork::Runtime runtime(ringwork::io::RuntimeOptions{.threads = options.threads});
        const ringwork::io::SocketAddress where = *address;
        runtime.run([where](ringwork::Reactor&, unsigned index) { return accept_loop(where, index == 0); });
    } catch (const std::exception& e) {
        fmt::print(stderr, "ringwork-hello: {}\n", e.what());
        return 1;
    }
    return 0;
}
