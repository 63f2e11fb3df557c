// Inside the dashboard server (not for other modules): the state its io thread owns, and the two
// kinds of connection. dashboard_server.cc answers requests; dashboard_sessions.cc holds the
// sockets, the accept loop and the limits on what one browser can make the server hold.
#pragma once

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "lab/dashboard/dashboard_server.h"

namespace chaoslab::dashboard {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace websocket = boost::beast::websocket;
using tcp = asio::ip::tcp;

// Limits that are not options (docs/GAMEDAY.md, "Limits").
inline constexpr size_t kMaxRequestBody = 64 << 10;  // POST /api/action is a few hundred bytes
inline constexpr size_t kMaxWsMessage = 16 << 10;    // a typed console line is at most 4096
inline constexpr size_t kMaxTypedLine = 4096;        // a longer console message is ignored
inline constexpr auto kIdleHttp = std::chrono::seconds(30);
inline constexpr auto kAcceptBackoffMin = std::chrono::milliseconds(50);
inline constexpr auto kAcceptBackoffMax = std::chrono::seconds(1);

enum class Role { kNone, kTrainee, kInstructor };
inline std::string RoleName(Role role) {
  return role == Role::kInstructor ? "instructor" : "trainee";
}
inline std::string_view ToStd(beast::string_view s) { return {s.data(), s.size()}; }

// The parser a connection reads one request with: the body at most kMaxRequestBody, the header at
// most Beast's default (8 KiB).
void NewRequestParser(std::optional<http::request_parser<http::string_body>>* parser);
// What a connection answers when reading a request failed with `ec`: 413 for a body over the
// limit, 431 for a header over it (both close the connection); nothing for anything else (closed,
// timed out or malformed: the connection is dropped).
std::optional<http::response<http::string_body>> ReadFailureAnswer(beast::error_code ec);

// Where an authorized WebSocket upgrade goes: the dashboard feed (no host) or a host's console.
struct WsTarget {
  std::string console_host;
  Role role = Role::kNone;
};

// What a browser's WebSocket message becomes (WsSession::OnInput, DashboardServer::
// AnswerWebSocketMessage): on a console, a text message of at most kMaxTypedLine bytes is a typed
// line, or (the page) {"line": ..., "keys": the raw keystrokes that made it}; anything else, and
// anything on the feed, is ignored (nullopt). Never throws on content.
std::optional<OperatorAction> ConsoleInput(const std::string& console_host, Role role, bool text,
                                           std::string_view message);

class WsSession;

// What the io thread owns. Every member is touched only on the io thread once Start() returned,
// except the tokens and port (immutable) and `io` itself (post is thread-safe).
struct DashboardServer::Impl {
  std::unique_ptr<asio::io_context> io = std::make_unique<asio::io_context>(1);
  std::unique_ptr<tcp::acceptor> acceptor;
  std::unique_ptr<asio::steady_timer> accept_timer;  // the back-off after an accept error
  std::chrono::milliseconds accept_backoff{0};
  std::thread thread;
  int port = 0;
  std::string trainee, instructor;
  std::map<std::string, std::string> assets;  // file name → bytes, read once at start
  FleetView view;
  std::set<std::shared_ptr<WsSession>> sockets;
  int connections = 0;  // HTTP and WebSocket connections open now
  int max_connections = 256;
  size_t max_queued_bytes = 16 << 20;
  bool stopped = false;
  bool unstarted = false;  // made by Unstarted: no socket, no io thread (AnswerBytes)
  std::atomic<int> accept_errors{0};
  // What people did, on its way to the engine (shared with the engine's thread).
  std::mutex input_mu;
  std::vector<OperatorAction> actions;
  // The key escrow's lookup while the run goes (set from the engine's thread).
  std::mutex escrow_mu;
  std::function<Result<std::string>(const std::string&)> escrow;
  // Game day (io thread only).
  bool gameday = false;
  std::map<std::string, int> technicians;      // site → on shift at the start
  std::map<std::string, int> shift_ended;      // site → technicians whose shift ended
  std::map<std::string, std::string> site_of;  // host → site
  nlohmann::json eta = nullptr;                // {"question", "answers": [...]}
  nlohmann::json debrief = nullptr;

  explicit Impl(RunInfo run) : view(std::move(run)) {}

  nlohmann::json SnapshotFor(Role role) const;
  nlohmann::json Technicians() const;
  bool ConsoleAllowed(const std::string& host, std::string* why) const;
  http::response<http::string_body> HandleAction(const http::request<http::string_body>& req,
                                                 Role role);
  void Push(OperatorAction a) {
    std::lock_guard lock(input_mu);
    actions.push_back(std::move(a));
  }

  Role RoleOf(const http::request<http::string_body>& req, bool* from_query) const;
  // The WebSocket `req` may open, or nullopt when it is not an authorized upgrade to /ws or an
  // existing host's /console/<host> (bad Host or Origin, no token, every technician busy): then
  // Handle answers it (401, 403, 404).
  std::optional<WsTarget> UpgradeFor(const http::request<http::string_body>& req) const;
  bool HostAllowed(const http::request<http::string_body>& req) const;
  bool OriginAllowed(const http::request<http::string_body>& req) const;
  // Never throws: a handler's failure is a 500 for that request (the server goes on).
  http::response<http::string_body> Handle(const http::request<http::string_body>& req);
  http::response<http::string_body> Route(const http::request<http::string_body>& req);
  http::response<http::string_body> EscrowPage(const http::request<http::string_body>& req,
                                               Role role);
  void Broadcast(const nlohmann::json& msg);
  void SendConsoleLine(const std::string& host, const nlohmann::json& msg);
  // The accept loop (dashboard_sessions.cc): past max_connections a connection gets a 503; an
  // accept error (EMFILE, ENFILE, ENOBUFS) waits accept_backoff, doubling up to 1 s, instead of
  // trying again at once.
  void Accept();
  void AcceptLater();
};

// One open connection counted against Impl::max_connections, for as long as it lives; an HTTP
// session hands it to the WebSocket it becomes.
class ConnectionSlot {
 public:
  explicit ConnectionSlot(DashboardServer::Impl* server) : server_(server) {
    ++server_->connections;
  }
  ConnectionSlot(ConnectionSlot&& other) noexcept
      : server_(std::exchange(other.server_, nullptr)) {}
  ConnectionSlot& operator=(ConnectionSlot&&) = delete;
  ~ConnectionSlot() {
    if (server_) --server_->connections;
  }

 private:
  DashboardServer::Impl* server_;
};

// One browser's WebSocket: messages go out one at a time from a queue (Beast allows one write in
// flight); reads take console input and notice the close. A browser whose queue passes
// Impl::max_queued_bytes is disconnected (dropping messages would leave its page wrong without
// saying so; the page reconnects and gets a fresh snapshot).
class WsSession : public std::enable_shared_from_this<WsSession> {
 public:
  // `console_host` empty: the dashboard feed; else that host's serial console.
  WsSession(tcp::socket socket, ConnectionSlot slot, DashboardServer::Impl* server,
            std::string console_host, Role role);

  const std::string& console_host() const { return console_host_; }
  Role role() const { return role_; }

  void Run(http::request<http::string_body> req);
  // Before the handshake is done nothing may be written (Beast would frame it as a client, masked);
  // the snapshot or backlog sent when it completes already holds whatever is dropped here.
  void Send(std::shared_ptr<const std::string> text);

 private:
  void OnOpen();
  void Write();
  void Read();
  void OnInput();
  void Drop();

  websocket::stream<beast::tcp_stream> ws_;
  ConnectionSlot slot_;
  DashboardServer::Impl* server_;
  std::string console_host_;
  Role role_;
  http::request<http::string_body> req_;
  std::deque<std::shared_ptr<const std::string>> queue_;
  size_t queued_bytes_ = 0;  // the bytes in queue_, the one being written included
  bool open_ = false;        // the handshake completed
  bool closing_ = false;     // disconnected for falling behind
  beast::flat_buffer in_;
};

// One HTTP connection; hands itself over to a WsSession on an authorized upgrade to /ws.
class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket socket, DashboardServer::Impl* server)
      : stream_(std::move(socket)), slot_(server), server_(server) {}
  void Read();

 private:
  void OnRequest();
  bool Upgrade();
  void Answer(http::response<http::string_body> res);

  beast::tcp_stream stream_;
  ConnectionSlot slot_;
  DashboardServer::Impl* server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::request<http::string_body> req_;
};

}  // namespace chaoslab::dashboard
