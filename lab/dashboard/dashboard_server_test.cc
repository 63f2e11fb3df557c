// The dashboard server on a real loopback socket: tokens, roles, the Host and Origin checks, and
// the live push over a WebSocket.
#include "lab/dashboard/dashboard_server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <nlohmann/json.hpp>
#include <thread>

#include "lab/dashboard/test_client.h"

namespace chaoslab::dashboard {
namespace {

using namespace chaoslab::dashboard::testing;  // NOLINT: the bounded clients

class DashboardServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s =
        DashboardServer::Start({0,
                                CHAOSLAB_DASHBOARD_ASSETS,
                                {"run-1", "channel-291", "reboot-15", "demo-lab", 0, 540, 5220}});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(*s);
    host_ = "127.0.0.1:" + std::to_string(server_->port());
  }

  http::response<http::string_body> Get(const std::string& target, const std::string& cookie = {},
                                        const std::string& host = {}) {
    http::request<http::string_body> req(http::verb::get, target, 11);
    req.set(http::field::host, host.empty() ? host_ : host);
    if (!cookie.empty()) req.set(http::field::cookie, cookie);
    return HttpClient(server_->port()).Exchange(std::move(req));
  }

  std::unique_ptr<DashboardServer> server_;
  std::string host_;
};

TEST_F(DashboardServerTest, TokensAreRandomAndDistinct) {
  EXPECT_EQ(server_->trainee_token().size(), 32u);
  EXPECT_NE(server_->trainee_token(), server_->instructor_token());
  auto other = DashboardServer::Start({0, CHAOSLAB_DASHBOARD_ASSETS, {}});
  ASSERT_TRUE(other.ok());
  EXPECT_NE((*other)->trainee_token(), server_->trainee_token());
  EXPECT_NE((*other)->port(), server_->port());
  EXPECT_EQ(server_->Url(false), "http://" + host_ + "/?token=" + server_->trainee_token());
}

TEST_F(DashboardServerTest, WithoutAValidTokenEverythingIsRefused) {
  for (const char* path : {"/", "/app.js", "/api/state", "/api/instructor", "/nope"}) {
    EXPECT_EQ(Get(path).result(), http::status::unauthorized) << path;
  }
  EXPECT_EQ(Get("/?token=0123").result(), http::status::unauthorized);
  EXPECT_EQ(Get("/?token=").result(), http::status::unauthorized);
  EXPECT_EQ(Get("/", "chaoslab_token=" + std::string(32, 'a')).result(),
            http::status::unauthorized);
}

TEST_F(DashboardServerTest, TheTokenOpensThePageAndBecomesACookie) {
  auto res = Get("/?token=" + server_->trainee_token());
  ASSERT_EQ(res.result(), http::status::ok);
  EXPECT_NE(res.body().find("<script src=\"app.js\">"), std::string::npos);
  std::string cookie(res[http::field::set_cookie]);
  EXPECT_NE(cookie.find("chaoslab_token=" + server_->trainee_token()), std::string::npos);
  EXPECT_NE(cookie.find("HttpOnly"), std::string::npos);
  EXPECT_NE(cookie.find("SameSite=Strict"), std::string::npos);
  EXPECT_NE(std::string(res["Content-Security-Policy"]).find("default-src 'self'"),
            std::string::npos);
  // The page's own requests carry the cookie.
  auto js = Get("/app.js", "chaoslab_token=" + server_->trainee_token());
  EXPECT_EQ(js.result(), http::status::ok);
  EXPECT_GT(js.body().size(), 1000u);  // the esbuild bundle (uPlot inside)
  EXPECT_EQ(std::string(js[http::field::content_type]).substr(0, 15), "text/javascript");
  EXPECT_EQ(Get("/../CMakeLists.txt", "chaoslab_token=" + server_->trainee_token()).result(),
            http::status::not_found);
}

TEST_F(DashboardServerTest, TraineesCannotReachInstructorPaths) {
  EXPECT_EQ(Get("/api/instructor?token=" + server_->trainee_token()).result(),
            http::status::forbidden);
  auto res = Get("/api/instructor?token=" + server_->instructor_token());
  EXPECT_EQ(res.result(), http::status::ok);
  EXPECT_EQ(nlohmann::json::parse(res.body())["role"], "instructor");
  EXPECT_EQ(
      nlohmann::json::parse(Get("/api/state?token=" + server_->trainee_token()).body())["role"],
      "trainee");
}

TEST_F(DashboardServerTest, AForeignHostHeaderIsRefused) {
  // DNS rebinding: a page of evil.example resolving to 127.0.0.1 sends its own Host.
  EXPECT_EQ(Get("/?token=" + server_->trainee_token(), {}, "evil.example").result(),
            http::status::forbidden);
}

TEST_F(DashboardServerTest, TheWebSocketPushesASnapshotThenEveryEvent) {
  server_->Publish(
      {0, 10, "ws-711-01", "ws-711", "state", "provisioning -> booting", "booting", 0});
  WsClient ws;
  ASSERT_EQ(ws.Open(server_->port(), "/ws?token=" + server_->trainee_token(), "http://" + host_),
            "");
  auto snap = ws.Read();
  EXPECT_EQ(snap["type"], "snapshot");
  EXPECT_EQ(snap["run"]["run_id"], "run-1");
  ASSERT_EQ(snap["hosts"].size(), 1u);
  EXPECT_EQ(snap["hosts"][0]["state"], "booting");

  server_->Publish(
      {600, 20, "ws-711-01", "ws-711", "state", "crashed -> boot-loop", "boot-loop", 2});
  auto ev = ws.Read();
  EXPECT_EQ(ev["type"], "event");
  EXPECT_EQ(ev["event"]["kind"], "state");
  EXPECT_EQ(ev["host"]["state"], "boot-loop");
  EXPECT_EQ(ev["host"]["crashes"], 2);
  EXPECT_DOUBLE_EQ(ev["now"].get<double>(), 600);
  server_->End("finished");
  EXPECT_EQ(ws.Read()["status"], "finished");
}

// Events published while a browser's handshake is still going on must not reach its socket before
// the handshake is done (Beast would send them as a client would, masked); the snapshot taken when
// the handshake completes already holds them.
TEST_F(DashboardServerTest, EventsDuringTheHandshakeNeverCorruptTheFeed) {
  std::atomic<bool> stop = false;
  std::thread publisher([&] {
    for (int seq = 0; !stop; ++seq) {
      server_->Publish({static_cast<double>(seq), seq, "ws-711-01", "ws-711", "state",
                        "booting -> booting", "booting", 0});
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  });
  int opened = 0;
  for (int i = 0; i < 150; ++i) {
    WsClient ws;
    const std::string handshake =
        ws.Open(server_->port(), "/ws?token=" + server_->trainee_token(), "http://" + host_);
    EXPECT_EQ(handshake, "") << "connection " << i;
    if (!handshake.empty()) break;
    try {
      EXPECT_EQ(ws.Read()["type"], "snapshot") << "connection " << i;
      EXPECT_EQ(ws.Read()["type"], "event") << "connection " << i;
      ++opened;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "connection " << i << ": " << e.what();
      break;
    }
  }
  stop = true;
  publisher.join();
  EXPECT_EQ(opened, 150);
}

TEST_F(DashboardServerTest, TheWebSocketNeedsATokenAndOurOrigin) {
  WsClient none;
  EXPECT_NE(none.Open(server_->port(), "/ws"), "");
  WsClient wrong;
  EXPECT_NE(wrong.Open(server_->port(), "/ws?token=" + std::string(32, '0')), "");
  WsClient foreign;  // cross-site WebSocket hijacking: another site's page with the cookie
  EXPECT_NE(
      foreign.Open(server_->port(), "/ws?token=" + server_->trainee_token(), "http://evil.example"),
      "");
}

TEST_F(DashboardServerTest, AConsoleShowsTheHostsSerialLinesAndPassesTypedText) {
  server_->Publish({0, 1, "ws-711-01", "ws-711", "state", "provisioning -> booting", "booting", 0});
  server_->Publish({0, 2, "ws-711-01", "ws-711", "tty", "*** STOP: 0x00000050", "booting", 1});
  WsClient feed;
  ASSERT_EQ(feed.Open(server_->port(), "/ws?token=" + server_->trainee_token()), "");
  EXPECT_EQ(feed.Read()["type"], "snapshot");
  WsClient console;
  ASSERT_EQ(console.Open(server_->port(), "/console/ws-711-01?token=" + server_->trainee_token()),
            "");
  auto backlog = console.Read();
  EXPECT_EQ(backlog["type"], "tty-backlog");
  EXPECT_EQ(backlog["lines"], nlohmann::json::array({"*** STOP: 0x00000050"}));
  server_->Publish({0, 3, "ws-711-01", "ws-711", "tty", "Recovery console", "remediating", 2});
  auto line = console.Read();
  EXPECT_EQ(line["type"], "tty");
  EXPECT_EQ(line["line"], "Recovery console");
  console.Write("del C-00000291*.sys\n");
  std::vector<std::pair<std::string, std::string>> typed;
  for (int i = 0; i < 100 && typed.empty(); ++i) {
    typed = server_->TakeConsoleInput();
    if (typed.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(typed.size(), 1u);
  EXPECT_EQ(typed[0].first, "ws-711-01");
  EXPECT_EQ(typed[0].second, "del C-00000291*.sys\n");
  // The fleet feed gets no console lines: its next message is the next journaled event.
  server_->Publish({1, 4, "", "", "revert", "v3", "", 0});
  EXPECT_EQ(feed.Read()["event"]["kind"], "revert");
  // Unknown hosts have no console; a console needs the token like everything else.
  WsClient unknown, anonymous;
  EXPECT_NE(unknown.Open(server_->port(), "/console/nope?token=" + server_->trainee_token()), "");
  EXPECT_NE(anonymous.Open(server_->port(), "/console/ws-711-01"), "");
}

TEST(DashboardServerStartTest, MissingAssetsSayWhatToBuild) {
  auto s = DashboardServer::Start({0, "/nonexistent", {}});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("dashboard_web"), std::string::npos);
}

// A game day: actions by role, the key-escrow page, technicians as console capacity.
class GamedayServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DashboardServer::Options o;
    o.assets_dir = CHAOSLAB_DASHBOARD_ASSETS;
    o.run = {"run-g", "channel-291", "manual", "lab", 14400, 14940, 19620};
    o.run.gameday = true;
    o.run.services = {"check-in"};
    o.gameday = true;
    o.technicians = {{"hq", 1}};
    o.site_of = {{"a", "hq"}, {"b", "hq"}};
    auto s = DashboardServer::Start(std::move(o));
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(*s);
    for (const char* h : {"a", "b"})
      server_->Publish({14500, 0, h, "ws", "state", "-> boot-loop", "boot-loop", 2});
  }

  http::response<http::string_body> Send(http::verb verb, const std::string& target,
                                         const std::string& body = {},
                                         const std::string& origin = {}) {
    return Request(server_->port(), verb, target, body, origin);
  }
  std::string T() const { return "?token=" + server_->trainee_token(); }
  std::string I() const { return "?token=" + server_->instructor_token(); }

  std::unique_ptr<DashboardServer> server_;
};

TEST_F(GamedayServerTest, ActionsFollowTheRoles) {
  EXPECT_EQ(Send(http::verb::post, "/api/action", R"({"kind":"start"})").result(),
            http::status::unauthorized);
  for (const char* kind : {"start", "pause", "resume", "end", "escrow-down", "second-update",
                           "shift-end", "eta-ask"}) {
    EXPECT_EQ(
        Send(http::verb::post, "/api/action" + T(), nlohmann::json{{"kind", kind}}.dump()).result(),
        http::status::forbidden)
        << kind;
  }
  EXPECT_TRUE(server_->TakeActions().empty());
  EXPECT_EQ(Send(http::verb::post, "/api/action" + I(), R"({"kind":"start"})").result(),
            http::status::ok);
  EXPECT_EQ(Send(http::verb::post, "/api/action" + T(),
                 R"({"kind":"boot","host":"a","detail":"safe-mode"})")
                .result(),
            http::status::ok);
  EXPECT_EQ(Send(http::verb::post, "/api/action" + T(), R"({"kind":"boot","host":"zz"})").result(),
            http::status::not_found);
  EXPECT_EQ(Send(http::verb::post, "/api/action" + T(), R"({"kind":"format-c"})").result(),
            http::status::bad_request);
  // Another site's page cannot post (its Origin is not ours).
  EXPECT_EQ(Send(http::verb::post, "/api/action" + I(), R"({"kind":"end"})", "http://evil.example")
                .result(),
            http::status::forbidden);
  auto actions = server_->TakeActions();
  ASSERT_EQ(actions.size(), 2u);
  EXPECT_EQ(actions[0].role, "instructor");
  EXPECT_EQ(actions[0].kind, "start");
  EXPECT_EQ(actions[1].role, "trainee");
  EXPECT_EQ(actions[1].kind, "boot");
  EXPECT_EQ(actions[1].host, "a");
  EXPECT_EQ(actions[1].detail, "safe-mode");
}

TEST_F(GamedayServerTest, TheKeyEscrowPageReadsTheEscrowAndJournalsEveryLookup) {
  EXPECT_EQ(Send(http::verb::get, "/api/escrow/key" + T() + "&host=a").result(),
            http::status::service_unavailable);  // no run yet
  bool up = true;
  server_->SetKeyEscrow([&up](const std::string& host) -> Result<std::string> {
    if (!up) return Status::Unavailable("escrow down");
    if (host != "a") return Status::NotFound("no key");
    return std::string("111111-222222");
  });
  auto ok = Send(http::verb::get, "/api/escrow/key" + T() + "&host=a");
  ASSERT_EQ(ok.result(), http::status::ok);
  EXPECT_EQ(nlohmann::json::parse(ok.body())["password"], "111111-222222");
  EXPECT_EQ(Send(http::verb::get, "/api/escrow/key" + T() + "&host=b").result(),
            http::status::not_found);
  up = false;
  EXPECT_EQ(Send(http::verb::get, "/api/escrow/key" + T() + "&host=a").result(),
            http::status::service_unavailable);
  EXPECT_EQ(Send(http::verb::get, "/api/escrow/key?host=a").result(), http::status::unauthorized);
  auto actions = server_->TakeActions();
  ASSERT_EQ(actions.size(), 4u);
  EXPECT_EQ(actions[0].kind, "key-fetch-failed");
  EXPECT_EQ(actions[1].kind, "key-fetch");
  EXPECT_EQ(actions[1].host, "a");
  EXPECT_EQ(actions[3].kind, "key-fetch-failed");
  server_->SetKeyEscrow(nullptr);
}

TEST_F(GamedayServerTest, AConsoleNeedsAFreeTechnicianAndSendsKeystrokes) {
  WsClient a, b;
  ASSERT_EQ(a.Open(server_->port(), "/console/a" + T()), "");
  a.Read();  // the backlog
  // hq's one technician is at host a: nobody can take host b.
  EXPECT_NE(b.Open(server_->port(), "/console/b" + T()), "");
  a.Write(R"({"line":"dir C:\\","keys":"dix\u007fr C:\\"})");
  std::vector<OperatorAction> actions;
  for (int i = 0; i < 50 && actions.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    actions = server_->TakeActions();
  }
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0].kind, "console");
  EXPECT_EQ(actions[0].role, "trainee");
  EXPECT_EQ(actions[0].host, "a");
  EXPECT_EQ(actions[0].detail, "dir C:\\");
  EXPECT_EQ(actions[0].keys, "dix\x7fr C:\\");
}

}  // namespace
}  // namespace chaoslab::dashboard
