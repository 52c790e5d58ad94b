// SPDX-License-Identifier: MIT
// In-process test client: drive an App through the whole HTTP stack without opening a port.
#pragma once

#include <ringwork/http/server.hpp>
#include <ringwork/web/app.hpp>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace ringwork::web::testing {

/// \brief A response as the test client received it.
struct TestResponse {
    int status = 0;
    std::string reason;
    /// Header fields in received order (names as sent).
    std::vector<std::pair<std::string, std::string>> headers;
    /// The body, de-chunked.
    std::string body;
    /// Trailer fields of a chunked body.
    std::vector<std::pair<std::string, std::string>> trailers;
    bool chunked = false;
    /// The server closed the connection after this response.
    bool closed = false;

    /// First header `name` (case-insensitive); empty when absent.
    [[nodiscard]] std::string_view header(std::string_view name) const noexcept;
    [[nodiscard]] bool has_header(std::string_view name) const noexcept;
    /// The body parsed as JSON (throws nlohmann::json::parse_error).
    [[nodiscard]] nlohmann::json json() const;
};

/// \brief A request to send: method, target ("/path?query"), headers, body. Host and
/// Content-Length are added unless given.
struct TestRequest {
    std::string method = "GET";
    std::string target = "/";
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
};

/// \brief Talks HTTP/1.1 to an App over an in-process socket pair: the server side runs the
/// real http::Server connection engine (parser, limits, keep-alive, streaming) on a reactor
/// thread owned by the client, exactly as for a TCP connection, but no port is opened.
///
/// \code
/// ringwork::web::testing::TestClient client(app);
/// auto r = client.get("/users/7");
/// CHECK(r.status == 200);
/// CHECK(r.json()["id"] == "7");
/// \endcode
///
/// One kept-alive connection, reopened automatically after the server closed it. Every call
/// waits at most `timeout` (default 10 s) and throws std::runtime_error when no complete
/// response arrived by then. The app's ServerOptions apply (timeouts, limits). Not
/// thread-safe: one client per test thread.
class TestClient {
public:
    explicit TestClient(App& app, std::chrono::milliseconds timeout = std::chrono::seconds(10));
    ~TestClient();
    TestClient(const TestClient&) = delete;
    TestClient& operator=(const TestClient&) = delete;

    TestResponse request(const TestRequest& request);
    TestResponse get(std::string target, std::vector<std::pair<std::string, std::string>> headers = {});
    TestResponse head(std::string target, std::vector<std::pair<std::string, std::string>> headers = {});
    TestResponse del(std::string target, std::vector<std::pair<std::string, std::string>> headers = {});
    TestResponse post(std::string target, std::string body, std::string content_type = "application/json",
                      std::vector<std::pair<std::string, std::string>> headers = {});
    TestResponse put(std::string target, std::string body, std::string content_type = "application/json",
                     std::vector<std::pair<std::string, std::string>> headers = {});
    TestResponse patch(std::string target, std::string body, std::string content_type = "application/json",
                       std::vector<std::pair<std::string, std::string>> headers = {});
    /// Send raw bytes as they are, then read one response (for malformed input). `head_only`:
    /// the response has no body whatever its headers say (the request was HEAD).
    TestResponse raw(std::string_view bytes, bool head_only = false);
    /// Send raw bytes without reading anything.
    void send(std::string_view bytes);
    /// Read the next response from the connection (after send()).
    TestResponse read_response(bool head_only = false);
    /// Read a streamed (chunked) response chunk by chunk: `f(chunk)` for each, in order.
    /// Returns the response with the head (and trailers) filled; `body` holds every chunk.
    template <class F>
    TestResponse stream(const TestRequest& request, F&& on_chunk);
    /// Close the client side of the connection (the server sees EOF); the next call reconnects.
    void close();
    /// The server this client drives (a private one configured from the app's options).
    [[nodiscard]] http::Server& server() noexcept { return *server_; }

private:
    struct Conn;
    void ensure_connected();
    TestResponse read_one(bool head_only, void (*on_chunk)(void*, std::string_view), void* ctx);

    std::chrono::milliseconds timeout_;
    std::unique_ptr<http::Server> server_;
    std::unique_ptr<Conn> conn_;
    std::string pending_; // bytes read past the previous response
};

template <class F>
TestResponse TestClient::stream(const TestRequest& request, F&& on_chunk) {
    std::string text = request.method + " " + request.target + " HTTP/1.1\r\nHost: test\r\n";
    for (const auto& [name, value] : request.headers) {
        text += name + ": " + value + "\r\n";
    }
    if (!request.body.empty()) {
        text += "Content-Length: " + std::to_string(request.body.size()) + "\r\n";
    }
    text += "\r\n" + request.body;
    send(text);
    auto thunk = [](void* ctx, std::string_view chunk) { (*static_cast<std::remove_reference_t<F>*>(ctx))(chunk); };
    return read_one(request.method == "HEAD", thunk, &on_chunk);
}

} // namespace ringwork::web::testing
