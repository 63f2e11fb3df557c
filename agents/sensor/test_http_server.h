// Test-only: a tiny HTTP/1.0 server on 127.0.0.1 with canned responses per request target.
// Thread-safe: Set/requests may be called while the server thread runs.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace chaoslab::content::testing {

class TestHttpServer {
 public:
  struct Reply {
    int status = 200;
    std::string body;
    std::string raw;  // when set, sent verbatim instead of a well-formed response
  };

  TestHttpServer() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    listen(fd_, 16);
    thread_ = std::thread([this] { Serve(); });
  }
  ~TestHttpServer() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }

  uint16_t port() const { return port_; }
  std::string endpoint() const { return "127.0.0.1:" + std::to_string(port_); }
  void Set(const std::string& target, Reply reply) {
    std::lock_guard lock(mu_);
    replies_[target] = std::move(reply);
  }
  std::vector<std::string> requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      const int client = accept(fd_, nullptr, nullptr);
      if (client < 0) continue;
      std::string request;
      char buf[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        const ssize_t n = read(client, buf, sizeof buf);
        if (n <= 0) break;
        request.append(buf, static_cast<size_t>(n));
      }
      const size_t sp1 = request.find(' ');
      const size_t sp2 = request.find(' ', sp1 + 1);
      const std::string target =
          sp2 == std::string::npos ? "" : request.substr(sp1 + 1, sp2 - sp1 - 1);
      Reply reply{404, "not found\n", ""};
      {
        std::lock_guard lock(mu_);
        requests_.push_back(target);
        if (auto it = replies_.find(target); it != replies_.end()) reply = it->second;
      }
      std::string out = reply.raw;
      if (out.empty()) {
        out = "HTTP/1.0 " + std::to_string(reply.status) +
              " X\r\nContent-Type: text/plain\r\nContent-Length: " +
              std::to_string(reply.body.size()) + "\r\n\r\n" + reply.body;
      }
      for (size_t sent = 0; sent < out.size();) {
        const ssize_t n = send(client, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) break;
        sent += static_cast<size_t>(n);
      }
      close(client);
    }
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::map<std::string, Reply> replies_;
  std::vector<std::string> requests_;
  std::thread thread_;
};

}  // namespace chaoslab::content::testing
