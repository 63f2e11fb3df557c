#include "lab/dashboard/dashboard_server.h"

#include <boost/asio/post.hpp>
#include <exception>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <utility>

#include "lab/common/json_text.h"
#include "lab/dashboard/dashboard_internal.h"

namespace chaoslab::dashboard {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kCookie = "chaoslab_token";

std::optional<std::string_view> QueryParam(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    size_t eq = pair.find('=');
    if (pair.substr(0, eq) == key) {
      return eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    }
  }
  return std::nullopt;
}

std::optional<std::string_view> CookieValue(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    size_t semi = header.find(';');
    std::string_view pair = header.substr(0, semi);
    header = semi == std::string_view::npos ? std::string_view() : header.substr(semi + 1);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    size_t eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) return pair.substr(eq + 1);
  }
  return std::nullopt;
}

// Compares in time independent of where the first difference is.
bool SameSecret(std::string_view a, std::string_view b) {
  if (a.size() != b.size() || a.empty()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

// What a role may ask for through POST /api/action.
bool TraineeAction(std::string_view kind) {
  return kind == "boot" || kind == "reimage" || kind == "eta-answer";
}
bool InstructorAction(std::string_view kind) {
  return kind == "start" || kind == "pause" || kind == "resume" || kind == "end" ||
         kind == "escrow-down" || kind == "escrow-up" || kind == "second-update" ||
         kind == "shift-end" || kind == "shift-start" || kind == "eta-ask";
}

// A string field of an action: "" when absent or null, nullopt when it holds anything else.
std::optional<std::string> StringField(const nlohmann::json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return std::string();
  if (!it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

std::string_view ContentType(std::string_view name) {
  if (name.ends_with(".html")) return "text/html; charset=utf-8";
  if (name.ends_with(".js")) return "text/javascript; charset=utf-8";
  if (name.ends_with(".css")) return "text/css; charset=utf-8";
  return "application/octet-stream";
}

// A complete answer to `req`.
http::response<http::string_body> Reply(const http::request<http::string_body>& req,
                                        http::status status, std::string body,
                                        std::string_view type) {
  http::response<http::string_body> res{status, req.version()};
  res.keep_alive(req.keep_alive());
  res.set(http::field::server, "chaoslab-dashboard");
  res.set(http::field::cache_control, "no-store");
  res.set(http::field::content_type, std::string(type));
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

}  // namespace

Result<std::string> NewToken() {
  try {
    std::random_device rd;  // /dev/urandom on Linux
    std::string out;
    for (int i = 0; i < 4; ++i) {
      char buf[9];
      std::snprintf(buf, sizeof buf, "%08x", static_cast<unsigned>(rd()));
      out += buf;
    }
    return out;
  } catch (const std::exception& e) {
    return Status::IoError(std::string("no random source for the dashboard token: ") + e.what());
  }
}

Role DashboardServer::Impl::RoleOf(const http::request<http::string_body>& req,
                                   bool* from_query) const {
  std::string_view target = ToStd(req.target());
  size_t q = target.find('?');
  std::optional<std::string_view> token;
  if (q != std::string_view::npos) token = QueryParam(target.substr(q + 1), "token");
  *from_query = token.has_value();
  if (!token) {
    auto it = req.find(http::field::cookie);
    if (it != req.end()) token = CookieValue(ToStd(it->value()), kCookie);
  }
  if (!token) return Role::kNone;
  if (SameSecret(*token, instructor)) return Role::kInstructor;
  if (SameSecret(*token, trainee)) return Role::kTrainee;
  return Role::kNone;
}

bool DashboardServer::Impl::HostAllowed(const http::request<http::string_body>& req) const {
  std::string_view host = ToStd(req[http::field::host]);
  const std::string p = ":" + std::to_string(port);
  return host == "127.0.0.1" + p || host == "localhost" + p;
}

bool DashboardServer::Impl::OriginAllowed(const http::request<http::string_body>& req) const {
  auto it = req.find(http::field::origin);
  if (it == req.end()) return true;  // not a browser page (a test client, curl)
  std::string_view origin = ToStd(it->value());
  const std::string p = ":" + std::to_string(port);
  return origin == "http://127.0.0.1" + p || origin == "http://localhost" + p;
}

std::optional<WsTarget> DashboardServer::Impl::UpgradeFor(
    const http::request<http::string_body>& req) const {
  std::string_view target = ToStd(req.target());
  std::string_view path = target.substr(0, target.find('?'));
  constexpr std::string_view kConsole = "/console/";
  const bool console = path.starts_with(kConsole);
  if (!websocket::is_upgrade(req) || (path != "/ws" && !console)) return std::nullopt;
  bool from_query = false;
  WsTarget to{std::string(console ? path.substr(kConsole.size()) : ""), RoleOf(req, &from_query)};
  std::string busy;
  if (!HostAllowed(req) || !OriginAllowed(req) || to.role == Role::kNone ||
      (console && !view.HasHost(to.console_host)) ||
      (console && !ConsoleAllowed(to.console_host, &busy))) {
    return std::nullopt;
  }
  return to;
}

http::response<http::string_body> DashboardServer::Impl::Handle(
    const http::request<http::string_body>& req) {
  try {
    return Route(req);
  } catch (const std::exception& e) {
    // A bug or an allocation failure in one handler: that request fails, the server goes on.
    http::response<http::string_body> res = Reply(
        req, http::status::internal_server_error,
        JsonText({{"error", std::string("internal error: ") + e.what()}}), "application/json");
    res.keep_alive(false);
    return res;
  }
}

http::response<http::string_body> DashboardServer::Impl::Route(
    const http::request<http::string_body>& req) {
  http::response<http::string_body> res;
  res.version(req.version());
  res.keep_alive(req.keep_alive());
  res.set(http::field::server, "chaoslab-dashboard");
  res.set(http::field::cache_control, "no-store");
  auto finish = [&](http::status status, std::string body, std::string_view type) {
    res.result(status);
    res.set(http::field::content_type, std::string(type));
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
  };
  if (!HostAllowed(req)) return finish(http::status::forbidden, "bad Host\n", "text/plain");
  bool from_query = false;
  Role role = RoleOf(req, &from_query);
  if (role == Role::kNone) {
    return finish(http::status::unauthorized, "a valid token is needed (?token=...)\n",
                  "text/plain");
  }
  std::string_view target = ToStd(req.target());
  std::string path(target.substr(0, target.find('?')));
  if (req.method() == http::verb::post && path == "/api/action") {
    http::response<http::string_body> r = HandleAction(req, role);
    r.version(req.version());
    r.keep_alive(req.keep_alive());
    r.set(http::field::cache_control, "no-store");
    r.prepare_payload();
    return r;
  }
  if (req.method() != http::verb::get) {
    return finish(http::status::method_not_allowed, "GET only\n", "text/plain");
  }
  if (path == "/") path = "/index.html";

  if (path == "/api/state") {
    return finish(http::status::ok, JsonText(SnapshotFor(role)), "application/json");
  }
  if (path.starts_with("/api/instructor")) {
    if (role != Role::kInstructor) {
      return finish(http::status::forbidden, "instructor only\n", "text/plain");
    }
    nlohmann::json kinds = nlohmann::json::array();
    if (gameday) {
      kinds = {"start",     "pause",         "resume",    "end",         "escrow-down",
               "escrow-up", "second-update", "shift-end", "shift-start", "eta-ask"};
    }
    return finish(http::status::ok, JsonText({{"role", "instructor"}, {"actions", kinds}}),
                  "application/json");
  }
  if (path == "/api/debrief") {
    if (debrief.is_null()) return finish(http::status::not_found, "no debrief yet\n", "text/plain");
    return finish(http::status::ok, JsonText(debrief), "application/json");
  }
  if (path == "/api/escrow/key" && gameday) return EscrowPage(req, role);
  // A file of the page only by a path from the root ("/app.js"), not by any other first character.
  auto asset = path.starts_with('/') ? assets.find(path.substr(1)) : assets.end();
  if (asset == assets.end()) return finish(http::status::not_found, "not found\n", "text/plain");
  if (from_query) {
    // The page's own requests (script, style, WebSocket) then carry the token as a cookie that
    // other sites cannot send or read.
    const std::string& token = role == Role::kInstructor ? instructor : trainee;
    res.set(http::field::set_cookie,
            std::string(kCookie) + "=" + token + "; Path=/; HttpOnly; SameSite=Strict");
  }
  const std::string p = std::to_string(port);
  res.set("Content-Security-Policy",
          "default-src 'self'; connect-src 'self' ws://127.0.0.1:" + p + " ws://localhost:" + p +
              "; img-src 'self' data:; style-src 'self' 'unsafe-inline'");
  res.set("X-Content-Type-Options", "nosniff");
  res.set("Referrer-Policy", "no-referrer");
  return finish(http::status::ok, asset->second, ContentType(path));
}

// The lab's key-escrow page: a host's BitLocker recovery password, as a help desk reads it out of
// Active Directory. Every lookup is an action in the journal.
http::response<http::string_body> DashboardServer::Impl::EscrowPage(
    const http::request<http::string_body>& req, Role role) {
  auto finish = [&](http::status status, std::string body, std::string_view type) {
    return Reply(req, status, std::move(body), type);
  };
  std::string_view target = ToStd(req.target());
  size_t q = target.find('?');
  std::string host(q == std::string_view::npos
                       ? std::string_view()
                       : QueryParam(target.substr(q + 1), "host").value_or(""));
  if (!view.HasHost(host)) {
    return finish(http::status::not_found, R"({"error":"no such host"})", "application/json");
  }
  Result<std::string> key = Status::Unavailable("the exercise is not running");
  {
    std::lock_guard lock(escrow_mu);
    if (escrow) key = escrow(host);
  }
  if (key.ok()) {
    Push({RoleName(role), "key-fetch", host, "", ""});
    return finish(http::status::ok, JsonText({{"host", host}, {"password", *key}}),
                  "application/json");
  }
  Push({RoleName(role), "key-fetch-failed", host, key.status().message(), ""});
  const bool unknown = key.status().code() == ErrorCode::kNotFound;
  return finish(
      unknown ? http::status::not_found : http::status::service_unavailable,
      JsonText({{"host", host},
                {"error",
                 unknown ? "the escrow has no recovery password for " + host + " (not encrypted?)"
                         : "the key escrow is down: " + key.status().message()}}),
      "application/json");
}

nlohmann::json DashboardServer::Impl::SnapshotFor(Role role) const {
  nlohmann::json snap = view.Snapshot();
  snap["role"] = RoleName(role);
  if (gameday) {
    snap["technicians"] = Technicians();
    snap["eta"] = eta;
    snap["debrief"] = debrief;
  }
  return snap;
}

nlohmann::json DashboardServer::Impl::Technicians() const {
  std::map<std::string, std::set<std::string>> busy;  // site → hosts with a console open
  for (const auto& s : sockets) {
    if (s->console_host().empty()) continue;
    auto it = site_of.find(s->console_host());
    if (it != site_of.end()) busy[it->second].insert(s->console_host());
  }
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [site, count] : technicians) {
    const int on_shift = std::max(0, count - (shift_ended.count(site) ? shift_ended.at(site) : 0));
    const int working = static_cast<int>(busy[site].size());
    nlohmann::json hosts = busy[site];
    out[site] = {{"on_shift", on_shift},
                 {"busy", working},
                 {"free", std::max(0, on_shift - working)},
                 {"hosts", hosts}};
  }
  return out;
}

bool DashboardServer::Impl::ConsoleAllowed(const std::string& host, std::string* why) const {
  if (!gameday) return true;
  auto site = site_of.find(host);
  if (site == site_of.end()) return true;
  nlohmann::json t = Technicians();
  if (!t.contains(site->second)) return true;
  const auto& s = t[site->second];
  // A technician already at this host can open another window on it.
  for (const auto& h : s["hosts"])
    if (h == host) return true;
  if (s["free"].get<int>() > 0) return true;
  *why = "every technician of site " + site->second + " is busy or off shift";
  return false;
}

http::response<http::string_body> DashboardServer::Impl::HandleAction(
    const http::request<http::string_body>& req, Role role) {
  http::response<http::string_body> res;
  res.set(http::field::content_type, "application/json");
  auto answer = [&](http::status status, nlohmann::json body) {
    res.result(status);
    res.body() = JsonText(body);
    return res;
  };
  if (!gameday) return answer(http::status::conflict, {{"error", "only in chaoslab gameday"}});
  // Another site cannot make a browser send this: JSON needs a CORS preflight, and the Origin of
  // a same-site page is ours.
  if (!OriginAllowed(req) ||
      ToStd(req[http::field::content_type]).find("application/json") == std::string_view::npos) {
    return answer(http::status::forbidden, {{"error", "same-origin JSON only"}});
  }
  auto body = nlohmann::json::parse(req.body(), nullptr, false);
  if (!body.is_object() || !body.contains("kind") || !body["kind"].is_string()) {
    return answer(http::status::bad_request, {{"error", "expected {\"kind\": ...}"}});
  }
  const std::string kind = body["kind"];
  std::optional<std::string> host_field = StringField(body, "host");
  std::optional<std::string> detail_field = StringField(body, "detail");
  if (!host_field || !detail_field) {
    return answer(http::status::bad_request, {{"error", "\"host\" and \"detail\" are strings"}});
  }
  const std::string host = std::move(*host_field);
  // Bounded, and never cut inside a character (it is shown and journaled as text).
  std::string detail(Utf8Prefix(*detail_field, 500));
  if (InstructorAction(kind)) {
    if (role != Role::kInstructor) {
      return answer(http::status::forbidden, {{"error", "instructor only"}});
    }
  } else if (!TraineeAction(kind)) {
    return answer(http::status::bad_request, {{"error", "unknown action '" + kind + "'"}});
  }
  if ((kind == "boot" || kind == "reimage") && !view.HasHost(host)) {
    return answer(http::status::not_found, {{"error", "no such host"}});
  }
  if (kind == "shift-end" || kind == "shift-start") {
    std::string site = detail;
    if (site.empty() && !technicians.empty()) site = technicians.begin()->first;
    if (!technicians.count(site))
      return answer(http::status::not_found, {{"error", "no such site"}});
    if (kind == "shift-end" && shift_ended[site] < technicians[site]) shift_ended[site]++;
    if (kind == "shift-start" && shift_ended[site] > 0) shift_ended[site]--;
    detail = site;
    Broadcast({{"type", "technicians"}, {"technicians", Technicians()}});
  }
  if (kind == "eta-ask") {
    eta = {{"question", detail.empty() ? "When will we be back?" : detail},
           {"answers", nlohmann::json::array()}};
    Broadcast({{"type", "eta"}, {"eta", eta}});
  }
  if (kind == "eta-answer") {
    if (eta.is_null()) return answer(http::status::conflict, {{"error", "nobody asked"}});
    eta["answers"].push_back({{"role", RoleName(role)}, {"answer", detail}});
    Broadcast({{"type", "eta"}, {"eta", eta}});
  }
  Push({RoleName(role), kind, host, detail, ""});
  return answer(http::status::ok, {{"ok", true}, {"kind", kind}});
}

void DashboardServer::Impl::Broadcast(const nlohmann::json& msg) {
  std::shared_ptr<const std::string> text;  // written only when a feed is open
  for (const auto& s : sockets) {
    if (!s->console_host().empty()) continue;
    if (!text) text = std::make_shared<const std::string>(JsonText(msg));
    s->Send(text);
  }
}

void DashboardServer::Impl::SendConsoleLine(const std::string& host, const nlohmann::json& msg) {
  std::shared_ptr<const std::string> text;
  for (const auto& s : sockets) {
    if (s->console_host() != host) continue;
    if (!text) text = std::make_shared<const std::string>(JsonText(msg));
    s->Send(text);
  }
}

DashboardServer::DashboardServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DashboardServer::~DashboardServer() { Stop(); }

namespace {

// What Start and Unstarted share: the options' checks, the state and the page's files.
Result<std::unique_ptr<DashboardServer::Impl>> MakeImpl(const DashboardServer::Options& options) {
  if (options.port < 0 || options.port > 65535) {
    return Status::InvalidArgument("dashboard port out of range: " + std::to_string(options.port));
  }
  auto impl = std::make_unique<DashboardServer::Impl>(options.run);
  impl->gameday = options.gameday;
  impl->technicians = options.technicians;
  impl->site_of = options.site_of;
  impl->max_connections = options.max_connections;
  impl->max_queued_bytes = options.max_queued_bytes;
  for (const char* name : {"index.html", "app.js", "app.css"}) {
    fs::path file = fs::path(options.assets_dir) / name;
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      return Status::FailedPrecondition("dashboard asset " + file.string() +
                                        " is missing: build the `dashboard_web` target");
    }
    std::ostringstream bytes;
    bytes << in.rdbuf();
    impl->assets[name] = bytes.str();
  }
  return impl;
}

}  // namespace

Result<std::unique_ptr<DashboardServer>> DashboardServer::Unstarted(Options options,
                                                                    std::string trainee_token,
                                                                    std::string instructor_token) {
  ASSIGN_OR_RETURN(std::unique_ptr<Impl> impl, MakeImpl(options));
  impl->unstarted = true;
  impl->port = options.port;
  impl->trainee = std::move(trainee_token);
  impl->instructor = std::move(instructor_token);
  return std::unique_ptr<DashboardServer>(new DashboardServer(std::move(impl)));
}

Result<std::unique_ptr<DashboardServer>> DashboardServer::Start(Options options) {
  ASSIGN_OR_RETURN(std::unique_ptr<Impl> impl, MakeImpl(options));
  ASSIGN_OR_RETURN(impl->trainee, NewToken());
  ASSIGN_OR_RETURN(impl->instructor, NewToken());
  try {
    tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"),
                           static_cast<unsigned short>(options.port));
    impl->acceptor = std::make_unique<tcp::acceptor>(*impl->io);
    impl->acceptor->open(endpoint.protocol());
    impl->acceptor->set_option(asio::socket_base::reuse_address(true));
    impl->acceptor->bind(endpoint);
    impl->acceptor->listen(asio::socket_base::max_listen_connections);
    impl->port = impl->acceptor->local_endpoint().port();
  } catch (const std::exception& e) {
    return Status::IoError(std::string("dashboard: cannot listen on 127.0.0.1:") +
                           std::to_string(options.port) + ": " + e.what());
  }
  Impl* raw = impl.get();
  raw->accept_timer = std::make_unique<asio::steady_timer>(*raw->io);
  raw->Accept();
  raw->thread = std::thread([raw] {
    // A handler that throws (allocation failure) loses what it was doing; the server goes on.
    for (;;) {
      try {
        raw->io->run();
        return;  // stopped
      } catch (const std::exception&) {
      }
    }
  });
  return std::unique_ptr<DashboardServer>(new DashboardServer(std::move(impl)));
}

int DashboardServer::port() const { return impl_->port; }
int DashboardServer::accept_errors() const { return impl_->accept_errors.load(); }
const std::string& DashboardServer::trainee_token() const { return impl_->trainee; }
const std::string& DashboardServer::instructor_token() const { return impl_->instructor; }

std::string DashboardServer::Url(bool instructor) const {
  return "http://127.0.0.1:" + std::to_string(impl_->port) +
         "/?token=" + (instructor ? impl_->instructor : impl_->trainee);
}

void DashboardServer::Publish(const LiveEvent& event) {
  Impl* impl = impl_.get();
  asio::post(*impl->io, [impl, event] {
    nlohmann::json msg = impl->view.Apply(event);
    if (event.kind == "tty") {
      impl->SendConsoleLine(event.host_id, msg);
    } else {
      impl->Broadcast(msg);
    }
  });
}

std::vector<std::pair<std::string, std::string>> DashboardServer::TakeConsoleInput() {
  std::vector<std::pair<std::string, std::string>> lines;
  for (auto& a : TakeActions())
    if (a.kind == "console") lines.emplace_back(a.host, std::move(a.detail));
  return lines;
}

std::vector<OperatorAction> DashboardServer::TakeActions() {
  std::lock_guard lock(impl_->input_mu);
  return std::exchange(impl_->actions, {});
}

void DashboardServer::SetKeyEscrow(std::function<Result<std::string>(const std::string&)> lookup) {
  std::lock_guard lock(impl_->escrow_mu);
  impl_->escrow = std::move(lookup);
}

void DashboardServer::SetRunInfo(RunInfo run) {
  Impl* impl = impl_.get();
  asio::post(*impl->io, [impl, run = std::move(run)]() mutable {
    impl->view.SetRun(std::move(run));
    for (const auto& ws : impl->sockets) {
      if (ws->console_host().empty())
        ws->Send(std::make_shared<const std::string>(JsonText(impl->SnapshotFor(ws->role()))));
    }
  });
}

void DashboardServer::SetDebrief(nlohmann::json debrief) {
  Impl* impl = impl_.get();
  asio::post(*impl->io, [impl, debrief = std::move(debrief)]() mutable {
    impl->debrief = std::move(debrief);
    impl->Broadcast({{"type", "debrief"}, {"debrief", impl->debrief}});
  });
}

void DashboardServer::End(const std::string& status) {
  Impl* impl = impl_.get();
  asio::post(*impl->io, [impl, status] { impl->Broadcast(impl->view.End(status)); });
}

void DashboardServer::Stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  Impl* impl = impl_.get();
  impl->io->stop();
  if (impl->thread.joinable()) impl->thread.join();
  // Pending handlers (and the sessions they keep alive) go with the io_context; the acceptor first
  // because it refers to it.
  impl->acceptor.reset();
  impl->accept_timer.reset();
  impl->sockets.clear();
  impl->io.reset();
}

}  // namespace chaoslab::dashboard
