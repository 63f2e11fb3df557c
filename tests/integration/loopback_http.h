// One HTTP/1.1 request to a lab service on 127.0.0.1, for the tests that drive the dashboard.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <string>

namespace chaoslab::testing {

struct HttpReply {
  boost::beast::http::status status;
  std::string body;
};

inline HttpReply LoopbackRequest(int port, boost::beast::http::verb verb, const std::string& target,
                                 const std::string& json_body = "") {
  namespace asio = boost::asio;
  namespace beast = boost::beast;
  namespace http = beast::http;
  asio::io_context io;
  beast::tcp_stream stream(io);
  stream.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  http::request<http::string_body> req(verb, target, 11);
  req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
  if (!json_body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = json_body;
    req.prepare_payload();
  }
  http::write(stream, req);
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(stream, buf, res);
  return {res.result(), res.body()};
}

}  // namespace chaoslab::testing
