// Raw loopback socket helpers for the content server and relay tests (test-only code).
#pragma once

#include <chrono>
#include <map>
#include <string>

namespace chaoslab::testing {

// A connected TCP socket to 127.0.0.1:port, or -1.
int ConnectLoopback(int port);
// Writes all of `data`; false on error.
bool SendAll(int fd, const std::string& data);
// Reads until the peer closes or `timeout` passes; `closed` tells which.
std::string ReadUntilClosed(int fd, std::chrono::milliseconds timeout, bool* closed = nullptr);
// Reads until at least `size` bytes arrived (or closed/timeout); returns everything read.
std::string ReadAtLeast(int fd, size_t size, std::chrono::milliseconds timeout);
// Reads until `text` has been seen (or closed/timeout); returns everything read.
std::string ReadUntil(int fd, const std::string& text, std::chrono::milliseconds timeout);

struct HttpResponse {
  int status = 0;                              // 0 if the response could not be parsed
  std::string version;                         // "HTTP/1.1"
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};
// Parses one complete response (with Content-Length) from the front of `raw`.
HttpResponse ParseHttpResponse(const std::string& raw);

// Sends `raw_request` on a fresh connection and returns the whole reply (until the server closes).
std::string RawExchange(int port, const std::string& raw_request,
                        std::chrono::milliseconds timeout = std::chrono::seconds(5));

// A listening socket on 127.0.0.1 with an ephemeral port.
class TestListener {
 public:
  TestListener();
  ~TestListener();
  int port() const { return port_; }
  // Accepts one connection within `timeout`; -1 on timeout.
  int Accept(std::chrono::milliseconds timeout);

 private:
  int fd_ = -1;
  int port_ = 0;
};

}  // namespace chaoslab::testing
