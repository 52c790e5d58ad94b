// SPDX-License-Identifier: MIT
// RunningServer: an http::Server on a background thread (1 reactor) for a test's scope.
#pragma once

#include <ringwork/http/server.hpp>

#include "helpers.hpp"

#include <atomic>
#include <thread>

namespace test {

class RunningServer {
public:
    /// `handler` is any callable accepted by Server::set_handler.
    template <class Handler>
    RunningServer(ringwork::http::ServerOptions options, Handler handler) : server(std::move(options)) {
        server.set_handler(std::move(handler));
        thread_ = std::thread([this] {
            server.listen_and_serve(ringwork::io::SocketAddress::loopback(0), 1,
                                    [this](std::uint16_t p) { port.store(p); });
        });
        REQUIRE(eventually([this] { return port.load() != 0; }));
    }
    RunningServer(const RunningServer&) = delete;
    RunningServer& operator=(const RunningServer&) = delete;
    ~RunningServer() { stop(); }
    /// Graceful shutdown, waiting for listen_and_serve to return.
    void stop() {
        if (thread_.joinable()) {
            server.shutdown();
            thread_.join();
        }
    }
    ringwork::http::Server server;
    std::atomic<std::uint16_t> port{0};

private:
    std::thread thread_;
};

} // namespace test
