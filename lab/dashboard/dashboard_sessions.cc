// The dashboard's connections: the accept loop with its cap and back-off, HTTP sessions and
// WebSockets, and what each may make the server hold (see dashboard_internal.h).
#include <algorithm>
#include <boost/asio/write.hpp>
#include <sstream>
#include <utility>

#include "lab/common/json_text.h"
#include "lab/dashboard/dashboard_internal.h"

namespace chaoslab::dashboard {

void NewRequestParser(std::optional<http::request_parser<http::string_body>>* parser) {
  parser->emplace();
  (*parser)->body_limit(kMaxRequestBody);
}

std::optional<http::response<http::string_body>> ReadFailureAnswer(beast::error_code ec) {
  http::status status;
  if (ec == http::error::body_limit) {
    status = http::status::payload_too_large;
  } else if (ec == http::error::header_limit) {
    status = http::status::request_header_fields_too_large;
  } else {
    return std::nullopt;
  }
  http::response<http::string_body> res{status, 11};
  res.set(http::field::server, "chaoslab-dashboard");
  res.set(http::field::content_type, "text/plain");
  res.body() =
      "request too large (the body may be at most " + std::to_string(kMaxRequestBody) + " bytes)\n";
  res.keep_alive(false);
  res.prepare_payload();
  return res;
}

// Beast has checked that a text message is UTF-8 and at most kMaxWsMessage bytes.
std::optional<OperatorAction> ConsoleInput(const std::string& console_host, Role role, bool text,
                                           std::string_view message) {
  if (console_host.empty() || !text || message.size() > kMaxTypedLine) return std::nullopt;
  OperatorAction a{RoleName(role), "console", console_host, std::string(message), ""};
  if (!message.empty() && message.front() == '{') {
    auto j = nlohmann::json::parse(message, nullptr, false);
    if (j.is_object() && j.contains("line") && j["line"].is_string()) {
      a.detail = j["line"].get<std::string>();
      if (j.contains("keys") && j["keys"].is_string()) a.keys = j["keys"].get<std::string>();
    }
  }
  return a;
}

WsSession::WsSession(tcp::socket socket, ConnectionSlot slot, DashboardServer::Impl* server,
                     std::string console_host, Role role)
    : ws_(std::move(socket)),
      slot_(std::move(slot)),
      server_(server),
      console_host_(std::move(console_host)),
      role_(role) {}

void WsSession::Run(http::request<http::string_body> req) {
  req_ = std::move(req);  // kept until the handshake completes
  ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
  ws_.read_message_max(kMaxWsMessage);  // larger: closed with 1009 (message too big)
  ws_.async_accept(req_, [self = shared_from_this()](beast::error_code ec) {
    if (ec) return self->Drop();
    self->OnOpen();
  });
}

void WsSession::OnOpen() {
  open_ = true;
  nlohmann::json first = console_host_.empty() ? server_->SnapshotFor(role_)
                                               : server_->view.ConsoleBacklog(console_host_);
  Send(std::make_shared<const std::string>(JsonText(first)));
  // A console held by a technician: everybody sees who is busy.
  if (!console_host_.empty() && server_->gameday) {
    server_->Broadcast({{"type", "technicians"}, {"technicians", server_->Technicians()}});
  }
  Read();
}

void WsSession::Send(std::shared_ptr<const std::string> text) {
  if (!open_ || closing_) return;
  // What waits behind the message being written is bounded; the first message (a snapshot) may
  // be larger on its own.
  if (!queue_.empty() &&
      queued_bytes_ - queue_.front()->size() + text->size() > server_->max_queued_bytes) {
    // Not Drop() here: we may be inside Broadcast's loop over the sockets. Closing the socket
    // ends the pending read and write, whose handlers drop this session.
    closing_ = true;
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
    return;
  }
  queued_bytes_ += text->size();
  queue_.push_back(std::move(text));
  if (queue_.size() == 1) Write();
}

void WsSession::Write() {
  ws_.text(true);
  ws_.async_write(asio::buffer(*queue_.front()),
                  [self = shared_from_this()](beast::error_code ec, size_t) {
                    if (ec) return self->Drop();
                    self->queued_bytes_ -= self->queue_.front()->size();
                    self->queue_.pop_front();
                    if (!self->queue_.empty()) self->Write();
                  });
}

void WsSession::Read() {
  ws_.async_read(in_, [self = shared_from_this()](beast::error_code ec, size_t) {
    if (ec) return self->Drop();
    self->OnInput();
    self->in_.consume(self->in_.size());
    self->Read();
  });
}

void WsSession::OnInput() {
  std::optional<OperatorAction> action =
      ConsoleInput(console_host_, role_, ws_.got_text(), beast::buffers_to_string(in_.data()));
  if (action) server_->Push(std::move(*action));
}

void WsSession::Drop() {
  if (server_->sockets.erase(shared_from_this()) && !console_host_.empty() && server_->gameday) {
    server_->Broadcast({{"type", "technicians"}, {"technicians", server_->Technicians()}});
  }
}

void HttpSession::Read() {
  req_ = {};
  NewRequestParser(&parser_);
  stream_.expires_after(kIdleHttp);
  http::async_read(
      stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
        if (ec) {
          std::optional<http::response<http::string_body>> refusal = ReadFailureAnswer(ec);
          if (refusal) self->Answer(std::move(*refusal));
          return;  // otherwise closed, timed out or malformed: drop
        }
        self->req_ = self->parser_->release();
        self->OnRequest();
      });
}

void HttpSession::OnRequest() {
  if (Upgrade()) return;
  Answer(server_->Handle(req_));
}

// An authorized WebSocket upgrade to the feed or a console: the connection becomes a WsSession.
bool HttpSession::Upgrade() {
  std::optional<WsTarget> to = server_->UpgradeFor(req_);
  if (!to) return false;  // Handle answers it (401, 403, 404)
  stream_.expires_never();
  auto ws = std::make_shared<WsSession>(stream_.release_socket(), std::move(slot_), server_,
                                        std::move(to->console_host), to->role);
  server_->sockets.insert(ws);
  ws->Run(std::move(req_));
  return true;
}

void HttpSession::Answer(http::response<http::string_body> response) {
  auto res = std::make_shared<http::response<http::string_body>>(std::move(response));
  http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code ec, size_t) {
    if (ec || res->need_eof()) {
      beast::error_code ignored;
      self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
      return;
    }
    self->Read();
  });
}

// What HttpSession does with the requests of one connection, from bytes instead of a socket: the
// same parser, limits, upgrade decision and handlers, one request after the other.
std::vector<DashboardServer::Exchange> DashboardServer::AnswerBytes(std::string_view bytes) {
  std::vector<Exchange> out;
  if (!impl_->unstarted || !impl_->io) return out;  // the io thread owns a started server's state
  // What Publish, SetRunInfo, SetDebrief and End handed over.
  impl_->io->restart();
  impl_->io->poll();
  std::optional<http::request_parser<http::string_body>> parser;
  size_t at = 0;
  while (true) {
    NewRequestParser(&parser);
    beast::error_code ec;
    size_t used = 0;
    // put() takes what it can from the front; loop as async_read does until done or an error.
    // Out of bytes before that, the request is incomplete: the connection would wait. (In the
    // middle of a body put() takes an empty buffer without asking for more.)
    while (!parser->is_done() && !ec) {
      if (at + used == bytes.size()) return out;
      size_t n = parser->put(asio::buffer(bytes.data() + at + used, bytes.size() - at - used), ec);
      used += n;
      if (ec == http::error::need_more) {
        if (n == 0) return out;  // the rest is not a whole header yet
        ec = {};
      }
    }
    Exchange exchange;
    exchange.begin = at;
    at += used;
    exchange.end = at;
    std::optional<http::response<http::string_body>> res;
    if (ec) {
      res = ReadFailureAnswer(ec);
      if (!res) return out;  // malformed: dropped without an answer
    } else {
      http::request<http::string_body> req = parser->release();
      bool from_query = false;
      Role role = impl_->RoleOf(req, &from_query);
      exchange.role = role == Role::kNone ? "" : RoleName(role);
      if (std::optional<WsTarget> to = impl_->UpgradeFor(req)) {
        exchange.websocket = to->console_host.empty() ? "/ws" : "/console/" + to->console_host;
        out.push_back(std::move(exchange));
        return out;  // WebSocket frames would follow
      }
      res = impl_->Handle(req);
    }
    std::ostringstream wire;
    wire << *res;
    exchange.response = wire.str();
    out.push_back(std::move(exchange));
    if (res->need_eof()) return out;
  }
}

void DashboardServer::AnswerWebSocketMessage(const Exchange& opened, bool text,
                                             std::string_view message) {
  if (!impl_->unstarted || opened.websocket.empty()) return;
  constexpr std::string_view kConsole = "/console/";
  std::string host;
  if (opened.websocket.starts_with(kConsole)) host = opened.websocket.substr(kConsole.size());
  Role role = opened.role == "instructor" ? Role::kInstructor : Role::kTrainee;
  std::optional<OperatorAction> action = ConsoleInput(host, role, text, message);
  if (action) impl_->Push(std::move(*action));
}

namespace {

// Past the connection cap: a short 503 and close, without reading the request. A fresh socket's
// send buffer takes these few bytes at once, so the write never waits.
void Refuse(tcp::socket socket) {
  static const std::string kAnswer = [] {
    const std::string body = "too many connections to the dashboard; try again\n";
    return "HTTP/1.1 503 Service Unavailable\r\nServer: chaoslab-dashboard\r\n"
           "Content-Type: text/plain\r\nConnection: close\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
  }();
  beast::error_code ignored;
  socket.non_blocking(true, ignored);
  socket.write_some(asio::buffer(kAnswer), ignored);
  socket.shutdown(tcp::socket::shutdown_send, ignored);
  socket.close(ignored);
}

}  // namespace

void DashboardServer::Impl::Accept() {
  acceptor->async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor->is_open()) return;
    if (ec) {  // out of descriptors or buffers: not a reason to spin
      accept_errors++;
      return AcceptLater();
    }
    accept_backoff = std::chrono::milliseconds(0);
    if (connections >= max_connections) {
      Refuse(std::move(socket));
    } else {
      std::make_shared<HttpSession>(std::move(socket), this)->Read();
    }
    Accept();
  });
}

void DashboardServer::Impl::AcceptLater() {
  accept_backoff = std::clamp(
      accept_backoff * 2, std::chrono::duration_cast<std::chrono::milliseconds>(kAcceptBackoffMin),
      std::chrono::duration_cast<std::chrono::milliseconds>(kAcceptBackoffMax));
  accept_timer->expires_after(accept_backoff);
  accept_timer->async_wait([this](beast::error_code ec) {
    if (!ec && acceptor->is_open()) Accept();
  });
}

}  // namespace chaoslab::dashboard
