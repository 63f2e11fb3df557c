// The game-day dashboard: any bytes a browser (or anything else on the machine) could send down
// one connection, answered without a socket by DashboardServer::AnswerBytes; when they open a
// WebSocket, the rest of the input is that socket's messages, one per line.
#include <unistd.h>

#include <boost/beast/http.hpp>
#include <exception>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "lab/common/json_text.h"
#include "lab/dashboard/dashboard_server.h"
#include "lab/fuzz/lab_fuzz.h"

namespace chaoslab::fuzz {
namespace {

namespace fs = std::filesystem;
namespace http = boost::beast::http;
using dashboard::DashboardServer;
using Exchange = DashboardServer::Exchange;

// Fixed tokens, so that the seeds and the dictionary can present them.
constexpr std::string_view kTrainee = "7ea1ee007ea1ee007ea1ee007ea1ee00";
constexpr std::string_view kInstructor = "1257c7001257c7001257c7001257c700";
constexpr int kPort = 8377;  // Host: 127.0.0.1:8377 (the server listens nowhere)
constexpr std::string_view kKey = "111111-222222-333333-444444-555555-666666-777777-888888";
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

const std::set<int> kStatuses = {200, 400, 401, 403, 404, 405, 409, 413, 431, 503};
const std::set<std::string_view> kTraineeKinds = {"boot", "reimage", "eta-answer"};
const std::set<std::string_view> kInstructorKinds = {
    "start",     "pause",         "resume",    "end",         "escrow-down",
    "escrow-up", "second-update", "shift-end", "shift-start", "eta-ask"};
const std::set<std::string_view> kPages = {"/",        "/index.html", "/app.js",
                                           "/app.css", "/api/state",  "/api/debrief"};

// The page's three files, written once (the fuzz build has no npm build of the real page).
struct Assets {
  fs::path dir;
  Assets() {
    std::error_code ec;
    fs::path tmp = fs::exists("/dev/shm", ec) ? fs::path("/dev/shm") : fs::temp_directory_path();
    dir = tmp / ("chaoslab-fuzz-dashboard-" + std::to_string(getpid()));
    fs::remove_all(dir, ec);
    fs::create_directories(dir);
    for (const auto& [name, text] :
         {std::pair{"index.html", "<!doctype html><script src=\"app.js\"></script> caf\xc3\xa9\n"},
          std::pair{"app.js", "console.log('chaoslab');\n"},
          std::pair{"app.css", "body { margin: 0 }\n"}}) {
      std::ofstream(dir / name, std::ios::binary) << text;
    }
  }
  ~Assets() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

const Assets& TheAssets() {
  static Assets assets;
  return assets;
}

// A fresh game-day server for every input, so that an input's outcome depends on it alone: three
// hosts on two sites, a guest's bytes that are not UTF-8 in the timeline, a debrief, and a key
// escrow holding host a's recovery password (down for one input in seven, by size).
std::unique_ptr<DashboardServer> MakeServer(bool escrow_up) {
  DashboardServer::Options o;
  o.port = kPort;
  o.assets_dir = TheAssets().dir.string();
  o.run = {"run-fuzz", "channel-291", "manual", "lab", 14400, 14940, 19620};
  o.run.gameday = true;
  o.run.services = {"ad", "exchange"};
  o.run.checklist = {"boot safe mode", "del C-00000291*.sys", "restart"};
  o.gameday = true;
  o.technicians = {{"hq", 1}, {"branch", 2}};
  o.site_of = {{"a", "hq"}, {"b", "hq"}, {"c", "branch"}};
  auto made =
      DashboardServer::Unstarted(std::move(o), std::string(kTrainee), std::string(kInstructor));
  if (!made.ok()) Fail("dashboard fixture", made.status().ToString());
  std::unique_ptr<DashboardServer> server = std::move(*made);
  for (const char* host : {"a", "b", "c"}) {
    server->Publish({14500, 0, host, "ws", "state", "-> boot-loop", "boot-loop", 2});
  }
  server->Publish({14600, 1, "a", "ws", "bugcheck", "stop code \xc3", "boot-loop", 2});
  server->Publish({14600, 2, "a", "ws", "tty", "*** STOP \xff\xfe", "boot-loop", 2});
  server->SetDebrief({{"summary", "the runbook took \xe2\x80 too long"}});
  server->SetKeyEscrow([escrow_up](const std::string& host) -> Result<std::string> {
    if (!escrow_up) return Status::Unavailable("the escrow servers are down");
    if (host == "a") return std::string(kKey);
    return Status::NotFound("no recovery password for " + host);
  });
  return server;
}

// Well-formed UTF-8: shortest forms, no surrogates, nothing past U+10FFFF.
bool ValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n;
    uint32_t cp, min;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      n = 1, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2, cp = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3, cp = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (s.size() - i <= n) return false;
    for (size_t k = 1; k <= n; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += n + 1;
  }
  return true;
}

bool Contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

std::string_view PathOf(std::string_view target) { return target.substr(0, target.find('?')); }

// A query parameter of `target`, as the server reads it (raw, no percent-decoding).
std::string_view Query(std::string_view target, std::string_view key) {
  size_t q = target.find('?');
  if (q == std::string_view::npos) return {};
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    std::string_view pair = query.substr(0, query.find('&'));
    query.remove_prefix(std::min(query.size(), pair.size() + 1));
    if (pair.starts_with(key) && pair.size() > key.size() && pair[key.size()] == '=') {
      return pair.substr(key.size() + 1);
    }
    if (pair == key) return {};
  }
  return {};
}

// What one exchange's request was, parsed again from its bytes (the server read exactly these).
struct SentRequest {
  http::verb method = http::verb::unknown;
  std::string target, body;
};

SentRequest Reparse(std::string_view request) {
  http::request_parser<http::string_body> parser;
  parser.eager(true);
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  boost::beast::error_code ec;
  size_t used = parser.put(boost::asio::buffer(request.data(), request.size()), ec);
  if (ec || !parser.is_done() || used != request.size()) {
    Fail("dashboard", "the exchange's bytes are not one request: " + ec.message());
  }
  const auto& req = parser.get();
  return {req.method(), std::string(req.target()), req.body()};
}

// What one input's 200s were: each is an action the engine must have got.
struct Mutations {
  int64_t actions = 0;      // POST /api/action
  int64_t key_fetches = 0;  // GET /api/escrow/key
};

// What a 200 may be, and to whom.
void CheckOk(const SentRequest& sent, const Exchange& ex, std::string_view body, bool escrow_up,
             Mutations& done) {
  const std::string_view path = PathOf(sent.target);
  if (sent.method == http::verb::post && path == "/api/action") {
    // A mutation: the engine gets it. The response names the kind the request's JSON asked for.
    auto answer = nlohmann::json::parse(body, nullptr, false);
    auto asked = nlohmann::json::parse(sent.body, nullptr, false);
    if (!answer.is_object() || answer.value("ok", false) != true ||
        !answer.value("kind", nlohmann::json()).is_string()) {
      Fail("dashboard", "a 200 action without {\"ok\":true,\"kind\":...}");
    }
    const std::string kind = answer["kind"];
    if (!asked.is_object() || asked.value("kind", nlohmann::json()) != kind) {
      Fail("dashboard", "200 for kind '" + kind + "' the request did not ask for");
    }
    if (kInstructorKinds.contains(kind)) {
      if (ex.role != "instructor")
        Fail("dashboard", "instructor action '" + kind + "' for " + ex.role);
    } else if (!kTraineeKinds.contains(kind)) {
      Fail("dashboard", "200 for unknown action '" + kind + "'");
    }
    ++done.actions;
    return;
  }
  if (sent.method != http::verb::get) Fail("dashboard", "200 for a request that is not GET");
  if (path == "/api/escrow/key") {
    if (!escrow_up || Query(sent.target, "host") != "a" ||
        !Contains(body, "\"password\":\"" + std::string(kKey) + "\"")) {
      Fail("dashboard", "the escrow page answered 200 for " + sent.target);
    }
    ++done.key_fetches;
    return;
  }
  if (path.starts_with("/api/instructor")) {
    if (ex.role != "instructor") Fail("dashboard", "instructor page for " + ex.role);
    return;
  }
  if (!kPages.contains(path)) Fail("dashboard", "200 for path " + std::string(path));
  // What the fixture published with bytes that are not UTF-8 arrives replaced, not dropped.
  if ((path == "/api/state" || path == "/api/debrief") && !Contains(body, kReplacement)) {
    Fail("dashboard", std::string(path) + " lost the replaced text");
  }
}

// One exchange: its response parsed back from the wire, against the request it answered.
void CheckExchange(std::string_view bytes, const Exchange& ex, bool last, bool escrow_up,
                   Mutations& done, Stats& stats) {
  std::string_view request = bytes.substr(ex.begin, ex.end - ex.begin);
  if (ex.role == "instructor" ? !Contains(request, kInstructor)
      : ex.role == "trainee"  ? !Contains(request, kTrainee)
                              : !ex.role.empty()) {
    Fail("dashboard", "role '" + ex.role + "' without its token in the request");
  }
  ++stats["role_" + (ex.role.empty() ? std::string("none") : ex.role)];
  if (!ex.websocket.empty()) {
    if (!ex.response.empty() || !last) Fail("dashboard", "a WebSocket upgrade with more after it");
    if (ex.role.empty()) Fail("dashboard", "a WebSocket opened without a token");
    SentRequest sent = Reparse(request);
    if (PathOf(sent.target) != ex.websocket ||
        (ex.websocket != "/ws" && ex.websocket != "/console/a" && ex.websocket != "/console/b" &&
         ex.websocket != "/console/c")) {
      Fail("dashboard", "WebSocket " + ex.websocket + " opened by " + sent.target);
    }
    ++stats[ex.websocket == "/ws" ? "websocket_feed" : "websocket_console"];
    return;
  }
  http::response_parser<http::string_body> parser;
  parser.eager(true);
  boost::beast::error_code ec;
  size_t used = parser.put(boost::asio::buffer(ex.response.data(), ex.response.size()), ec);
  if (ec || !parser.is_done() || used != ex.response.size()) {
    Fail("dashboard", "the response is not exactly one HTTP response: " + ec.message());
  }
  const auto& res = parser.get();
  const int status = static_cast<int>(res.result_int());
  ++stats["status_" + std::to_string(status)];
  if (!kStatuses.contains(status)) Fail("dashboard", "unexpected status " + std::to_string(status));
  // Only a request refused as too large may have been refused before a byte of it was read.
  if (request.empty() && status != 413 && status != 431) Fail("dashboard", "an answer to no bytes");
  if (res.need_eof() && !last) Fail("dashboard", "answered more after closing the connection");
  if (ex.role.empty() && status != 401 && status != 403 && status != 413 && status != 431) {
    Fail("dashboard", "status " + std::to_string(status) + " without a token");
  }
  const auto type = res[http::field::content_type];
  if (Contains(std::string_view(type.data(), type.size()), "json")) {
    if (!ValidUtf8(res.body())) Fail("dashboard", "a JSON body that is not UTF-8");
    if (nlohmann::json::parse(res.body(), nullptr, false).is_discarded()) {
      Fail("dashboard", "a JSON body that does not parse");
    }
  }
  if (status == 413 || status == 431) {
    if (!res.need_eof()) Fail("dashboard", "a refused request left the connection open");
    return;
  }
  SentRequest sent = Reparse(request);
  if (status == 200) CheckOk(sent, ex, res.body(), escrow_up, done);
}

// The rest of the input as messages on the WebSocket `opened`: one per line.
void CheckMessages(DashboardServer& server, const Exchange& opened, std::string_view rest,
                   Stats& stats) {
  constexpr std::string_view kConsole = "/console/";
  const bool console = opened.websocket.starts_with(kConsole);
  const std::string host = console ? opened.websocket.substr(kConsole.size()) : "";
  bool binary_tried = false;
  while (!rest.empty()) {
    std::string_view message = rest.substr(0, rest.find('\n'));
    rest.remove_prefix(std::min(rest.size(), message.size() + 1));
    ++stats["ws_messages"];
    if (!binary_tried) {  // a binary message is never a typed line
      binary_tried = true;
      server.AnswerWebSocketMessage(opened, false, message);
      if (!server.TakeActions().empty()) Fail("dashboard", "a binary message became an action");
    }
    server.AnswerWebSocketMessage(opened, true, message);
    std::vector<OperatorAction> actions = server.TakeActions();
    const size_t expected = console && message.size() <= 4096 ? 1 : 0;
    if (actions.size() != expected) Fail("dashboard", "a message made the wrong number of actions");
    if (expected == 0) continue;
    const OperatorAction& a = actions[0];
    if (a.kind != "console" || a.host != host || a.role != opened.role) {
      Fail("dashboard", "console action " + a.kind + " on '" + a.host + "' for " + a.role);
    }
    auto j = nlohmann::json::parse(message, nullptr, false);
    const bool page = !message.empty() && message.front() == '{' && j.is_object() &&
                      j.contains("line") && j["line"].is_string();
    if (a.detail != (page ? j["line"].get<std::string>() : std::string(message))) {
      Fail("dashboard", "the typed line is not what the message said");
    }
    // Beast lets only UTF-8 text through; what it lets through stays UTF-8 on its way.
    if (ValidUtf8(message) && (!ValidUtf8(a.detail) || !ValidUtf8(a.keys))) {
      Fail("dashboard", "a UTF-8 message became a line that is not");
    }
    if (nlohmann::json::parse(JsonText({{"detail", a.detail}, {"keys", a.keys}}), nullptr, false)
            .is_discarded()) {
      Fail("dashboard", "a typed line does not survive JSON");
    }
    ++stats["console_actions"];
  }
}

}  // namespace

void CheckDashboard(std::string_view bytes, Stats& stats) {
  const bool escrow_up = bytes.size() % 7 != 0;
  std::unique_ptr<DashboardServer> server = MakeServer(escrow_up);
  std::vector<Exchange> answered;
  std::vector<OperatorAction> actions;
  try {
    answered = server->AnswerBytes(bytes);
    actions = server->TakeActions();
  } catch (const std::exception& e) {
    Fail("dashboard threw", e.what());
  }
  size_t at = 0;
  Mutations done;
  for (size_t i = 0; i < answered.size(); ++i) {
    const Exchange& ex = answered[i];
    if (ex.begin != at || ex.end < ex.begin || ex.end > bytes.size()) {
      Fail("dashboard", "exchanges do not follow each other through the input");
    }
    at = ex.end;
    if (ex.response.empty() == ex.websocket.empty()) {
      Fail("dashboard", "an exchange needs exactly one of a response and a WebSocket");
    }
    CheckExchange(bytes, ex, i + 1 == answered.size(), escrow_up, done, stats);
  }
  stats["exchanges"] += static_cast<int64_t>(answered.size());
  // What reached the engine: one action per 200 action and per key read, in the role's name.
  Mutations got;
  for (const OperatorAction& a : actions) {
    if (a.kind == "key-fetch") {
      ++got.key_fetches;
    } else if (a.kind != "key-fetch-failed") {
      ++got.actions;
    }
    if (kInstructorKinds.contains(a.kind) && a.role != "instructor") {
      Fail("dashboard", "the engine got instructor action " + a.kind + " from " + a.role);
    }
  }
  if (got.actions != done.actions || got.key_fetches != done.key_fetches) {
    Fail("dashboard", "the engine's actions differ from the 200s answered");
  }
  stats["actions"] += done.actions;
  stats["key_fetches"] += done.key_fetches;
  if (!answered.empty() && !answered.back().websocket.empty()) {
    try {
      CheckMessages(*server, answered.back(), bytes.substr(answered.back().end), stats);
    } catch (const std::exception& e) {
      Fail("dashboard WebSocket threw", e.what());
    }
  }
}

}  // namespace chaoslab::fuzz
