#include "agents/sensor/cloud_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "agents/sensor/channel_file.h"

namespace chaoslab::content {
namespace {

using Clock = std::chrono::steady_clock;

// Closes the socket on every path.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// Waits for `events` on fd until the deadline. Timeout when it passes.
Status WaitFor(int fd, short events, Clock::time_point deadline, std::string_view what) {
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return Status::Timeout(std::string(what) + ": deadline passed");
    pollfd p{fd, events, 0};
    const int n = poll(&p, 1, static_cast<int>(left));
    if (n > 0) return Status::Ok();
    if (n < 0 && errno != EINTR) return Status::FromErrno(what, errno);
  }
}

bool ParseU32(std::string_view text, uint32_t* out) {
  if (text.empty() || text.size() > 10) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

Result<Endpoint> ParseEndpoint(std::string_view text) {
  const size_t colon = text.rfind(':');
  uint32_t port = 0;
  in_addr addr{};
  Endpoint ep;
  if (colon != std::string_view::npos) ep.ip = std::string(text.substr(0, colon));
  if (colon == std::string_view::npos || !ParseU32(text.substr(colon + 1), &port) || port == 0 ||
      port > 65535 || inet_pton(AF_INET, ep.ip.c_str(), &addr) != 1) {
    return Status::InvalidArgument("'" + std::string(text) +
                                   "' is not an IPv4 endpoint like 10.0.2.100:80");
  }
  ep.port = static_cast<uint16_t>(port);
  return ep;
}

Result<HttpResponse> HttpGet(const Endpoint& server, std::string_view target,
                             std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  const std::string where = "GET http://" + server.ToString() + std::string(target);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(server.port);
  if (inet_pton(AF_INET, server.ip.c_str(), &addr.sin_addr) != 1) {
    return Status::InvalidArgument(where + ": not an IPv4 address");
  }
  Fd sock(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (sock.get() < 0) return Status::FromErrno(where + ": socket", errno);
  if (connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno != EINPROGRESS) return Status::Unavailable(where + ": connect: " + strerror(errno));
    RETURN_IF_ERROR(WaitFor(sock.get(), POLLOUT, deadline, where + ": connect"));
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(sock.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return Status::Unavailable(where + ": connect: " + strerror(err));
  }
  const std::string request = "GET " + std::string(target) +
                              " HTTP/1.0\r\nHost: " + server.ToString() +
                              "\r\nUser-Agent: csagent\r\n\r\n";
  for (size_t sent = 0; sent < request.size();) {
    RETURN_IF_ERROR(WaitFor(sock.get(), POLLOUT, deadline, where + ": send"));
    const ssize_t n = send(sock.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return Status::Unavailable(where + ": send: " + strerror(errno));
    }
    if (n > 0) sent += static_cast<size_t>(n);
  }
  std::string raw;
  char buf[16384];
  for (;;) {
    RETURN_IF_ERROR(WaitFor(sock.get(), POLLIN, deadline, where + ": read"));
    const ssize_t n = recv(sock.get(), buf, sizeof buf, 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return Status::Unavailable(where + ": read: " + strerror(errno));
    }
    raw.append(buf, static_cast<size_t>(n));
    if (raw.size() > kMaxHttpResponseBytes) {
      return Status::Corruption(where + ": response larger than " +
                                std::to_string(kMaxHttpResponseBytes) + " bytes");
    }
  }
  // Status line "HTTP/1.x NNN reason", headers, blank line, body.
  size_t header_end = raw.find("\r\n\r\n");
  size_t body_at = header_end + 4;
  if (header_end == std::string::npos) {
    header_end = raw.find("\n\n");
    body_at = header_end + 2;
  }
  uint32_t code = 0;
  if (header_end == std::string::npos || !raw.starts_with("HTTP/1.") || raw.size() < 12 ||
      raw[8] != ' ' || !ParseU32(std::string_view(raw).substr(9, 3), &code)) {
    return Status::Corruption(where + ": malformed HTTP response (" + std::to_string(raw.size()) +
                              " bytes)");
  }
  HttpResponse response{static_cast<int>(code), raw.substr(body_at)};
  // A Content-Length that the body does not reach means the connection was cut.
  std::string headers = raw.substr(0, header_end);
  for (char& c : headers) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  const size_t cl = headers.find("\ncontent-length:");
  if (cl != std::string::npos) {
    size_t at = cl + 16;
    while (at < headers.size() && headers[at] == ' ') ++at;
    const size_t stop = headers.find_first_of("\r\n", at);
    uint32_t length = 0;
    if (!ParseU32(std::string_view(headers).substr(at, stop - at), &length)) {
      return Status::Corruption(where + ": bad Content-Length header");
    }
    if (response.body.size() != length) {
      return Status::Corruption(where + ": body has " + std::to_string(response.body.size()) +
                                " bytes, Content-Length says " + std::to_string(length));
    }
  }
  return response;
}

Result<std::vector<ManifestEntry>> ParseManifest(std::string_view body) {
  std::vector<ManifestEntry> entries;
  int line_number = 0;
  while (!body.empty()) {
    ++line_number;
    const size_t eol = body.find('\n');
    std::string_view line = body.substr(0, eol);
    body = eol == std::string_view::npos ? std::string_view() : body.substr(eol + 1);
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    auto bad = [&](std::string_view why) {
      return Status::Corruption("manifest line " + std::to_string(line_number) + ": " +
                                std::string(why) + ": '" + std::string(line.substr(0, 120)) + "'");
    };
    const size_t s1 = line.find(' ');
    const size_t s2 = s1 == std::string_view::npos ? s1 : line.find(' ', s1 + 1);
    if (s2 == std::string_view::npos || line.find(' ', s2 + 1) != std::string_view::npos) {
      return bad("expected '<channel> <version> <file-name>'");
    }
    ManifestEntry e;
    if (!ParseU32(line.substr(0, s1), &e.channel) ||
        !ParseU32(line.substr(s1 + 1, s2 - s1 - 1), &e.content_version)) {
      return bad("channel and version must be numbers");
    }
    e.file_name = std::string(line.substr(s2 + 1));
    if (e.file_name != ChannelFileName(e.content_version, e.channel)) {
      return bad("file name does not match channel and version");
    }
    entries.push_back(std::move(e));
  }
  return entries;
}

bool IsValidHostId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
  }
  return true;
}

}  // namespace chaoslab::content
