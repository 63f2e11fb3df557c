#include "tests/soak/dashboard_abuse.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <cerrno>
#include <functional>
#include <nlohmann/json.hpp>

namespace chaoslab::soak {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
constexpr auto kWait = 10s;  // for an answer, or for the server to close

int Connect(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval tv{static_cast<time_t>(kWait.count()), 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Writes what it can; a server that refuses (and closes) mid-way is an answer, not an error.
void SendAll(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

// Reads until `enough` says so, the peer closes, or `wait` passes. Returns what was read; `eof`
// says whether the peer closed (or reset) the connection.
std::string ReadSome(int fd, std::chrono::milliseconds wait, bool* eof,
                     const std::function<bool(const std::string&)>& enough, size_t keep = 65536) {
  std::string got;
  *eof = false;
  const auto deadline = Clock::now() + wait;
  char buf[16384];
  while (!enough(got)) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left <= 0ms) break;
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *eof = true;
      break;
    }
    // Not the whole feed of a WebSocket: its head (the status line) is enough.
    if (got.size() < keep) got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

Outcome StatusOf(const std::string& head, bool eof) {
  if (head.starts_with("HTTP/1.") && head.size() >= 12) return head.substr(9, 3);
  return eof ? "closed" : "no-answer";
}

// Sends `request` on a fresh connection and says how the server took it.
Outcome Exchange(int port, const std::string& request, std::string* body = nullptr) {
  const int fd = Connect(port);
  if (fd < 0) return "refused";
  SendAll(fd, request);
  bool eof = false;
  const std::string got = ReadSome(
      fd, kWait, &eof,
      [&](const std::string& s) {
        if (!body) return s.find("\r\n") != std::string::npos;
        // The whole answer: headers, then Content-Length bytes.
        const size_t end = s.find("\r\n\r\n");
        if (end == std::string::npos) return false;
        const size_t cl = s.find("Content-Length: ");
        if (cl == std::string::npos || cl > end) return false;
        return s.size() >= end + 4 + std::stoul(s.substr(cl + 16));
      },
      body ? SIZE_MAX : 65536);
  ::close(fd);
  if (body) {
    const size_t end = got.find("\r\n\r\n");
    *body = end == std::string::npos ? "" : got.substr(end + 4);
  }
  return StatusOf(got, eof);
}

std::string Random(std::mt19937_64& rng, size_t n) {
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

// A client frame: FIN + opcode byte as given, masked (unless told not to) with a zero-free key.
std::string Frame(uint8_t first, const std::string& payload, bool masked = true,
                  uint64_t announced = UINT64_MAX) {
  const uint64_t len = announced == UINT64_MAX ? payload.size() : announced;
  std::string f(1, static_cast<char>(first));
  const uint8_t mask_bit = masked ? 0x80 : 0;
  if (len < 126) {
    f += static_cast<char>(mask_bit | len);
  } else if (len < 65536) {
    f += static_cast<char>(mask_bit | 126);
    f += static_cast<char>(len >> 8);
    f += static_cast<char>(len & 0xff);
  } else {
    f += static_cast<char>(mask_bit | 127);
    for (int i = 7; i >= 0; --i) f += static_cast<char>((len >> (8 * i)) & 0xff);
  }
  const char key[4] = {0x12, 0x34, 0x56, 0x78};
  if (masked) f.append(key, 4);
  for (size_t i = 0; i < payload.size(); ++i)
    f += masked ? static_cast<char>(payload[i] ^ key[i % 4]) : payload[i];
  return f;
}

}  // namespace

DashboardAbuser::DashboardAbuser(int port, std::string token, std::vector<std::string> hosts)
    : port_(port), token_(std::move(token)), hosts_(std::move(hosts)) {}

DashboardAbuser::~DashboardAbuser() {
  for (const auto& h : half_open_) ::close(h.fd);
}

const std::vector<std::string>& DashboardAbuser::Kinds() {
  static const std::vector<std::string> kinds = {
      "bad-json",         "wrong-types",        "cut-utf8-body",  "cut-utf8-target",
      "huge-body",        "huge-header",        "garbage-bytes",  "bad-request-line",
      "no-token",         "foreign-host",       "half-open",      "ws-unmasked",
      "ws-bad-utf8",      "ws-reserved-opcode", "ws-huge-length", "ws-fragmented-ping",
      "ws-reserved-bits", "ws-bad-close",       "ws-no-token"};
  return kinds;
}

std::string DashboardAbuser::Target(const std::string& path) const {
  return path + (path.find('?') == std::string::npos ? "?" : "&") + "token=" + token_;
}

Outcome DashboardAbuser::Send(const std::string& kind, std::mt19937_64& rng) {
  const std::string host = "Host: 127.0.0.1:" + std::to_string(port_) + "\r\n";
  auto post = [&](const std::string& body, const std::string& extra = "") {
    return "POST " + Target("/api/action") + " HTTP/1.1\r\n" + host +
           "Content-Type: application/json\r\nConnection: close\r\n" + extra +
           "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  };
  if (kind == "bad-json") {
    static const char* bodies[] = {R"({"kind": "boot", )", "[1,2", "{\"kind\":}", "nul", "{{{{"};
    return Exchange(port_, post(bodies[rng() % 5]));
  }
  if (kind == "wrong-types") {
    static const char* bodies[] = {R"({"kind":"boot","host":1})", R"({"kind":7})",
                                   R"({"kind":"boot","host":"a","detail":["safe-mode"]})",
                                   R"({"kind":null,"host":{"x":[]}})", R"([{"kind":"end"}])"};
    return Exchange(port_, post(bodies[rng() % 5]));
  }
  if (kind == "cut-utf8-body") {
    return Exchange(port_, post("{\"kind\":\"eta-ask\",\"detail\":\"caf\xc3\"}"));
  }
  if (kind == "cut-utf8-target") {
    const std::string path = rng() % 2 ? "/console/ws-\xe2\x82" : "/api/state?x=\xc3";
    return Exchange(port_,
                    "GET " + Target(path) + " HTTP/1.1\r\n" + host + "Connection: close\r\n\r\n");
  }
  if (kind == "huge-body") {
    // Announces 10 MB and starts sending: refused (413) before it is read, or cut off.
    const int fd = Connect(port_);
    if (fd < 0) return "refused";
    SendAll(fd, "POST " + Target("/api/action") + " HTTP/1.1\r\n" + host +
                    "Content-Type: application/json\r\nContent-Length: 10000000\r\n\r\n");
    SendAll(fd, std::string(256 << 10, 'x'));
    bool eof = false;
    const std::string got = ReadSome(
        fd, kWait, &eof, [](const std::string& s) { return s.find("\r\n") != std::string::npos; });
    ::close(fd);
    return StatusOf(got, eof);
  }
  if (kind == "huge-header") {
    return Exchange(port_, "GET " + Target("/api/state") + " HTTP/1.1\r\n" + host +
                               "X-Padding: " + std::string(1 << 20, 'p') + "\r\n\r\n");
  }
  if (kind == "garbage-bytes") {
    return Exchange(port_, Random(rng, 1 + rng() % 4096));
  }
  if (kind == "bad-request-line") {
    static const char* lines[] = {"BREW /api/state HTTP/1.1\r\n", "GET /api/state HTTP/9.9\r\n",
                                  "GET\r\n", "GET /api/state HTTP/1.1 extra\r\n", "\r\n\r\n\r\n"};
    return Exchange(port_, std::string(lines[rng() % 5]) + host + "\r\n");
  }
  if (kind == "no-token") {
    return Exchange(port_, "GET /api/state HTTP/1.1\r\n" + host + "Connection: close\r\n\r\n");
  }
  if (kind == "foreign-host") {
    return Exchange(port_, "GET " + Target("/api/state") +
                               " HTTP/1.1\r\nHost: evil.example:80\r\nConnection: close\r\n\r\n");
  }
  if (kind == "half-open") {
    // A request that never ends, left open: the server must go on serving the others (and close
    // it once idle). Reaped by ReapHalfOpen.
    const int fd = Connect(port_);
    if (fd < 0) return "refused";
    SendAll(fd, "GET " + Target("/api/state") + " HTTP/1.1\r\n" + host + "X-Slow: ");
    half_open_.push_back({fd, Clock::now()});
    return "held";
  }
  if (kind.starts_with("ws-")) return BadWebSocket(kind, rng);
  return "unknown-kind";
}

Outcome DashboardAbuser::BadWebSocket(const std::string& kind, std::mt19937_64& rng) {
  // The feed or a host's console: both must refuse what is not WebSocket.
  std::string path = "/ws";
  if (!hosts_.empty() && rng() % 2) path = "/console/" + hosts_[rng() % hosts_.size()];
  const std::string upgrade =
      "GET " + (kind == "ws-no-token" ? path : Target(path)) +
      " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port_) +
      "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  const int fd = Connect(port_);
  if (fd < 0) return "refused";
  SendAll(fd, upgrade);
  bool eof = false;
  const std::string head = ReadSome(fd, kWait, &eof, [](const std::string& s) {
    return s.find("\r\n\r\n") != std::string::npos;
  });
  const Outcome answer = StatusOf(head, eof);
  if (answer != "101") {
    ::close(fd);
    return answer;  // ws-no-token: 401
  }
  std::string frame;
  if (kind == "ws-unmasked") frame = Frame(0x81, "dir C:\\", false);
  if (kind == "ws-bad-utf8") frame = Frame(0x81, "caf\xc3\x28");
  if (kind == "ws-reserved-opcode") frame = Frame(0x83, "x");
  if (kind == "ws-huge-length") frame = Frame(0x82, "", true, uint64_t{1} << 40);
  if (kind == "ws-fragmented-ping") frame = Frame(0x09, "ping");
  if (kind == "ws-reserved-bits") frame = Frame(0xC1, "x");
  if (kind == "ws-bad-close") frame = Frame(0x88, "\x03");  // a close code cut to one byte
  SendAll(fd, frame);
  // The server must close it (after its close frame); what it pushed meanwhile is skipped.
  ReadSome(fd, kWait, &eof, [](const std::string&) { return false; });
  ::close(fd);
  return eof ? "closed" : "no-answer";
}

Outcome DashboardAbuser::Probe() {
  std::string body;
  const Outcome got = Exchange(port_,
                               "GET " + Target("/api/state") + " HTTP/1.1\r\nHost: 127.0.0.1:" +
                                   std::to_string(port_) + "\r\nConnection: close\r\n\r\n",
                               &body);
  if (got != "200") return got;
  auto j = nlohmann::json::parse(body, nullptr, false);
  return j.is_object() && j.value("type", "") == "snapshot" ? "200" : "200-not-json";
}

std::vector<Outcome> DashboardAbuser::ReapHalfOpen(std::chrono::seconds older_than) {
  std::vector<Outcome> out;
  const auto now = Clock::now();
  std::erase_if(half_open_, [&](const HalfOpen& h) {
    if (now - h.opened < older_than) return false;
    bool eof = false;
    ReadSome(h.fd, 0ms, &eof, [](const std::string&) { return false; });
    if (!eof) {  // poll said nothing yet: look once more without waiting
      pollfd p{h.fd, POLLIN, 0};
      char c;
      eof = ::poll(&p, 1, 0) == 1 && ::recv(h.fd, &c, 1, MSG_DONTWAIT) <= 0;
    }
    out.push_back(eof ? "closed-by-server" : "still-open");
    ::close(h.fd);
    return true;
  });
  return out;
}

// ---- the feed ----

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;

FeedWatcher::FeedWatcher(int port, std::string token)
    : port_(port), token_(std::move(token)), thread_([this] { Loop(); }) {}

FeedWatcher::~FeedWatcher() { Stop(); }

void FeedWatcher::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

std::set<PushedEvent> FeedWatcher::Events() const {
  std::lock_guard<std::mutex> lock(mu_);
  return events_;
}
std::map<std::string, Clock::time_point> FeedWatcher::LostSeen() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lost_seen_;
}
int FeedWatcher::messages() const {
  std::lock_guard<std::mutex> lock(mu_);
  return messages_;
}
int FeedWatcher::connects() const {
  std::lock_guard<std::mutex> lock(mu_);
  return connects_;
}
std::string FeedWatcher::last_error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_error_;
}

void FeedWatcher::Loop() {
  auto stopped = [this] {
    std::lock_guard<std::mutex> lock(mu_);
    return stop_;
  };
  auto fail = [this](const std::string& what, const beast::error_code& ec) {
    std::lock_guard<std::mutex> lock(mu_);
    last_error_ = what + ": " + ec.message();
  };
  while (!stopped()) {
    asio::io_context io;
    websocket::stream<beast::tcp_stream> ws(io);
    // Runs `io` until the operation started last has finished or the watcher is stopped.
    auto run = [&](bool& done) {
      while (!done && !stopped()) {
        io.restart();
        io.run_for(200ms);
      }
      if (!done) {
        beast::get_lowest_layer(ws).cancel();
        io.restart();
        io.run_for(2s);
      }
      return done;
    };
    beast::error_code ec;
    bool done = false;
    beast::get_lowest_layer(ws).expires_after(kWait);
    beast::get_lowest_layer(ws).async_connect(
        asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"),
                                static_cast<unsigned short>(port_)),
        [&](beast::error_code e) {
          ec = e;
          done = true;
        });
    if (!run(done)) break;
    if (!ec) {
      done = false;
      ws.async_handshake("127.0.0.1:" + std::to_string(port_), "/ws?token=" + token_,
                         [&](beast::error_code e) {
                           ec = e;
                           done = true;
                         });
      if (!run(done)) break;
    }
    if (ec) {
      fail("connecting the feed", ec);
      std::this_thread::sleep_for(500ms);
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      connects_++;
    }
    beast::get_lowest_layer(ws).expires_never();  // the feed may be quiet for a while
    ws.read_message_max(64 << 20);
    while (!stopped()) {
      beast::flat_buffer buf;
      done = false;
      ws.async_read(buf, [&](beast::error_code e, size_t) {
        ec = e;
        done = true;
      });
      if (!run(done)) break;
      if (ec) {
        fail("reading the feed", ec);
        break;
      }
      auto msg = nlohmann::json::parse(beast::buffers_to_string(buf.data()), nullptr, false);
      std::vector<nlohmann::json> events;
      if (msg.is_object() && msg.value("type", "") == "event" && msg.contains("event"))
        events.push_back(msg["event"]);
      if (msg.is_object() && msg.value("type", "") == "snapshot" && msg.contains("events") &&
          msg["events"].is_array()) {
        for (const auto& e : msg["events"]) events.push_back(e);
      }
      std::lock_guard<std::mutex> lock(mu_);
      messages_++;
      for (const auto& e : events) {
        if (!e.is_object()) continue;
        auto str = [&](const char* k) {
          return e.contains(k) && e[k].is_string() ? e[k].get<std::string>() : std::string();
        };
        const int64_t wall =
            e.contains("wall_us") && e["wall_us"].is_number() ? e["wall_us"].get<int64_t>() : -1;
        events_.insert({wall, str("host"), str("kind"), str("detail")});
        if (msg["type"] == "event" && str("kind") == "state" &&
            str("detail").find(" -> lost") != std::string::npos) {
          lost_seen_.emplace(str("host"), Clock::now());
        }
      }
    }
    if (!stopped()) std::this_thread::sleep_for(500ms);
  }
}

}  // namespace chaoslab::soak
