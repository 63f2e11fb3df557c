// The game-day dashboard server: HTTP and WebSocket on loopback (Boost.Beast), one io thread.
//
// It serves the page built from lab/dashboard/web (static files from `assets_dir`) and pushes the
// fleet as the engine journals it: a snapshot when a browser connects, then one JSON message per
// event. Access needs a token: the trainee token or the separate instructor token, given once as
// `?token=` (the page then holds it in an HttpOnly, SameSite=Strict cookie). Without one every
// path answers 401; a trainee asking for an instructor path gets 403. Requests whose Host is not
// the loopback address (DNS rebinding) and WebSockets opened from another origin are refused too.
//
// Game day (`Options::gameday`, `chaoslab gameday`): people act through POST /api/action (JSON,
// same origin only): trainees choose a host's boot (safe mode, WinRE, normal), reimage it and
// answer the ETA question; only the instructor starts, pauses, resumes and ends the exercise and
// injects trouble (403 for a trainee). GET /api/escrow/key?host= is the lab's key-escrow page
// (BitLocker recovery passwords; 503 while the escrow is down). A console may be opened only
// while a technician of the host's site is free (the setup's count, less the shifts that ended).
// Everything people do becomes an OperatorAction for the engine, which carries it out and
// journals it.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lab/common/status.h"
#include "lab/dashboard/fleet_view.h"
#include "lab/engine/engine.h"

namespace chaoslab::dashboard {

class DashboardServer {
 public:
  struct Options {
    int port = 0;            // 0 = an ephemeral port
    std::string assets_dir;  // index.html, app.js, app.css (the npm build's output)
    RunInfo run;
    bool gameday = false;
    std::map<std::string, int> technicians;      // site → technicians (game day)
    std::map<std::string, std::string> site_of;  // host → site (game day)
    // Limits (docs/GAMEDAY.md). Connections open at once, HTTP and WebSocket: one more is answered
    // 503 and closed. Bytes waiting to be sent to one WebSocket: a browser that falls that far
    // behind is disconnected (the page reconnects and starts again from a snapshot).
    int max_connections = 256;
    size_t max_queued_bytes = size_t{16} << 20;
  };

  // Binds 127.0.0.1:port and starts the io thread. FailedPrecondition when the assets are missing
  // (the web build did not run), IoError when the port cannot be bound.
  static Result<std::unique_ptr<DashboardServer>> Start(Options options);

  // A server that does not listen (no socket, no io thread) and takes the given tokens instead of
  // random ones, for tests and lab/fuzz: AnswerBytes and AnswerWebSocketMessage drive the parser,
  // limits, upgrade decision and handlers of a connection, on the calling thread. What Publish,
  // SetRunInfo, SetDebrief and End hand over is applied at the next AnswerBytes. Fails like Start
  // on a bad port or missing assets. Not thread-safe.
  static Result<std::unique_ptr<DashboardServer>> Unstarted(Options options,
                                                            std::string trainee_token,
                                                            std::string instructor_token);

  // One request AnswerBytes read.
  struct Exchange {
    size_t begin = 0, end = 0;  // its bytes in the input, [begin, end): what the parser read
                                // (none, for a header refused as too large before it ended)
    std::string role;           // what its token made it: "trainee", "instructor", or "" (none)
    std::string response;       // the response as written; empty when it opened a WebSocket
    std::string websocket;      // the WebSocket it opened: "/ws" or "/console/<host>"; else ""
  };
  // Answers `bytes` as a connection that sent them would be answered, in order (an unstarted
  // server only: a started one answers nothing here). Stops where the connection stops being
  // answered HTTP: after a response that closes it, at an incomplete request (it would wait, then
  // time out), at bytes that do not parse (dropped without an answer), and at a request that
  // opens a WebSocket (frames would follow; Beast checks the handshake itself).
  std::vector<Exchange> AnswerBytes(std::string_view bytes);
  // One message a browser sent on the WebSocket `opened` opened (text or binary), handled as that
  // session handles it: on a console, a typed line for TakeActions. Unstarted server only.
  void AnswerWebSocketMessage(const Exchange& opened, bool text, std::string_view message);
  ~DashboardServer();  // Stop()
  DashboardServer(const DashboardServer&) = delete;
  DashboardServer& operator=(const DashboardServer&) = delete;

  int port() const;
  // Accept errors so far (out of file descriptors, ...); thread-safe. For tests and the soak.
  int accept_errors() const;
  const std::string& trainee_token() const;
  const std::string& instructor_token() const;
  // http://127.0.0.1:<port>/?token=<the role's token>
  std::string Url(bool instructor) const;

  // Both thread-safe (called on the engine's thread); they copy and hand over to the io thread.
  void Publish(const LiveEvent& event);
  void End(const std::string& status);

  // What people typed at the consoles since the last call, as (host id, text); thread-safe. The
  // engine polls it (LiveView::TakeConsoleInput) and journals every entry. Not in a game day.
  std::vector<std::pair<std::string, std::string>> TakeConsoleInput();
  // Game day: everything people did since the last call (console lines included); thread-safe.
  // The engine polls it (LiveView::TakeActions).
  std::vector<OperatorAction> TakeActions();

  // Thread-safe setters for a game day. The key escrow's lookup (the real one, which counts and
  // fails while the escrow is down); nullptr once the run is over. The server may call the lookup
  // until SetKeyEscrow(nullptr) has returned, so it must keep alive what it uses (run_command.cc:
  // it shares ownership of the escrow).
  void SetKeyEscrow(std::function<Result<std::string>(const std::string& host)> lookup);
  void SetRunInfo(RunInfo run);
  // The debrief, pushed to every browser ({"type":"debrief",...}) and served at /api/debrief.
  void SetDebrief(nlohmann::json debrief);

  // Closes every connection and joins the io thread. Idempotent.
  void Stop();

  struct Impl;

 private:
  explicit DashboardServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A fresh random token (128 bits from the system's random source, hex).
Result<std::string> NewToken();

// The dashboard as the engine's live view: events to its browsers; from people, console lines on
// a --dashboard run, operator actions (console lines included) at a game day.
class DashboardLiveView final : public LiveView {
 public:
  DashboardLiveView(DashboardServer* server, bool game_day)
      : server_(server), game_day_(game_day) {}
  void Event(const LiveEvent& e) override { server_->Publish(e); }
  std::vector<std::pair<std::string, std::string>> TakeConsoleInput() override {
    if (game_day_) return {};
    return server_->TakeConsoleInput();
  }
  std::vector<OperatorAction> TakeActions() override {
    if (!game_day_) return {};
    return server_->TakeActions();
  }

 private:
  DashboardServer* server_;
  bool game_day_;
};

}  // namespace chaoslab::dashboard
