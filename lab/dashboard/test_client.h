// Test clients for the dashboard on 127.0.0.1: HTTP and WebSocket, every wait bounded (kWait) and
// named, so a server that stopped answering fails the test with what it waited for instead of
// hanging it.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

namespace chaoslab::dashboard::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

constexpr auto kWait = std::chrono::seconds(10);

// Starts one operation with `start(handler)`, runs `io` until it completes or kWait passed; on
// timeout `cancel()` stops it (its handler still runs, so nothing dangles) and this throws naming
// `what`. Returns the operation's error code.
template <class Start, class Cancel>
beast::error_code RunBounded(asio::io_context& io, const std::string& what, Start start,
                             Cancel cancel) {
  bool done = false;
  beast::error_code ec;
  start([&](beast::error_code e, auto&&...) {
    ec = e;
    done = true;
  });
  io.restart();
  io.run_for(kWait);
  if (done) return ec;
  cancel();
  io.restart();
  io.run_for(std::chrono::seconds(2));
  throw std::runtime_error("gave up after 10 s waiting for " + what);
}

// One HTTP/1.1 connection (keep-alive) to the dashboard.
class HttpClient {
 public:
  explicit HttpClient(int port) : port_(port) {
    beast::error_code ec = RunBounded(
        io_, "a connection to 127.0.0.1:" + std::to_string(port),
        [&](auto h) {
          stream_.async_connect(
              tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)),
              h);
        },
        [&] { stream_.cancel(); });
    if (ec) throw beast::system_error(ec);
  }

  // Sends `req` (Host set to ours unless given) and reads the response; throws on timeout or
  // when the server closed the connection instead of answering.
  http::response<http::string_body> Exchange(http::request<http::string_body> req) {
    if (req[http::field::host].empty()) {
      req.set(http::field::host, "127.0.0.1:" + std::to_string(port_));
    }
    req.prepare_payload();
    const std::string what =
        "the answer to " + std::string(req.method_string()) + " " + std::string(req.target());
    stream_.expires_after(kWait);
    beast::error_code ec = RunBounded(
        io_, what, [&](auto h) { http::async_write(stream_, req, h); }, [&] { stream_.cancel(); });
    if (ec) throw beast::system_error(ec, "sending " + what);
    http::response<http::string_body> res;
    stream_.expires_after(kWait);
    ec = RunBounded(
        io_, what, [&](auto h) { http::async_read(stream_, buf_, res, h); },
        [&] { stream_.cancel(); });
    if (ec) throw beast::system_error(ec, "reading " + what);
    return res;
  }

  // Writes `bytes` as they are (a request the client library would not make).
  void WriteRaw(const std::string& bytes) {
    stream_.expires_after(kWait);
    beast::error_code ec = RunBounded(
        io_, "writing a raw request",
        [&](auto h) { asio::async_write(stream_, asio::buffer(bytes), h); },
        [&] { stream_.cancel(); });
    if (ec) throw beast::system_error(ec, "writing a raw request");
  }
  http::response<http::string_body> ReadResponse() {
    http::response<http::string_body> res;
    stream_.expires_after(kWait);
    beast::error_code ec = RunBounded(
        io_, "a response", [&](auto h) { http::async_read(stream_, buf_, res, h); },
        [&] { stream_.cancel(); });
    if (ec) throw beast::system_error(ec, "reading a response");
    return res;
  }
  // Everything the server sends until it closes the connection (bounded).
  std::string ReadAll() {
    std::string all;
    stream_.expires_after(kWait);
    beast::error_code ec = RunBounded(
        io_, "the server to answer and close the connection",
        [&](auto h) { asio::async_read(stream_, asio::dynamic_buffer(all), h); },
        [&] { stream_.cancel(); });
    if (ec != asio::error::eof && ec != asio::error::connection_reset) {
      throw beast::system_error(ec, "reading until the server closes");
    }
    return all;
  }

 private:
  int port_;
  asio::io_context io_;
  beast::tcp_stream stream_{io_};
  beast::flat_buffer buf_;
};

// GET or POST on a fresh connection.
inline http::response<http::string_body> Request(int port, http::verb verb,
                                                 const std::string& target,
                                                 const std::string& body = {},
                                                 const std::string& origin = {}) {
  http::request<http::string_body> req(verb, target, 11);
  if (!origin.empty()) req.set(http::field::origin, origin);
  if (!body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = body;
  }
  return HttpClient(port).Exchange(std::move(req));
}

// One WebSocket (the feed or a console).
class WsClient {
 public:
  // Opens `target`; returns the handshake error (empty when it was accepted).
  std::string Open(int port, const std::string& target, const std::string& origin = {}) {
    auto& tcp_layer = beast::get_lowest_layer(ws_);
    beast::error_code ec = RunBounded(
        io_, "a connection to 127.0.0.1:" + std::to_string(port),
        [&](auto h) {
          tcp_layer.async_connect(
              tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)),
              h);
        },
        [&] { tcp_layer.cancel(); });
    if (ec) return ec.message();
    ws_.set_option(websocket::stream_base::decorator([origin](websocket::request_type& req) {
      if (!origin.empty()) req.set(http::field::origin, origin);
    }));
    tcp_layer.expires_after(kWait);
    ec = RunBounded(
        io_, "the WebSocket handshake on " + target,
        [&](auto h) { ws_.async_handshake("127.0.0.1:" + std::to_string(port), target, h); },
        [&] { tcp_layer.cancel(); });
    tcp_layer.expires_never();
    return ec ? ec.message() : "";
  }

  void Write(const std::string& text) {
    ws_.text(true);
    beast::get_lowest_layer(ws_).expires_after(kWait);
    beast::error_code ec = RunBounded(
        io_, "a WebSocket write", [&](auto h) { ws_.async_write(asio::buffer(text), h); },
        [&] { beast::get_lowest_layer(ws_).cancel(); });
    beast::get_lowest_layer(ws_).expires_never();
    if (ec) throw beast::system_error(ec, "WebSocket write");
  }

  // The next message as text; throws on timeout, or with the error when the socket closed.
  std::string ReadText() {
    beast::flat_buffer buf;
    beast::get_lowest_layer(ws_).expires_after(kWait);
    beast::error_code ec = RunBounded(
        io_, "a WebSocket message", [&](auto h) { ws_.async_read(buf, h); },
        [&] { beast::get_lowest_layer(ws_).cancel(); });
    beast::get_lowest_layer(ws_).expires_never();
    if (ec) throw beast::system_error(ec, "WebSocket read");
    return beast::buffers_to_string(buf.data());
  }
  nlohmann::json Read() { return nlohmann::json::parse(ReadText()); }

  // Reads until the server ends the socket (true) or sends a message `stop` accepts (false).
  template <class Stop>
  bool ReadUntilClosed(Stop stop) {
    for (;;) {
      std::string text;
      try {
        text = ReadText();
      } catch (const beast::system_error&) {
        return true;  // closed (timeouts throw std::runtime_error and pass through)
      }
      if (stop(text)) return false;
    }
  }

  // Stops reading without a close handshake (a browser tab that froze or went away).
  void Abandon() { beast::get_lowest_layer(ws_).socket().close(); }

 private:
  asio::io_context io_;
  websocket::stream<beast::tcp_stream> ws_{io_};
};

}  // namespace chaoslab::dashboard::testing
