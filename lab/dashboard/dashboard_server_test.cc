// The dashboard server on a real loopback socket: tokens, roles, the Host and Origin checks, and
// the live push over a WebSocket.
#include "lab/dashboard/dashboard_server.h"

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <nlohmann/json.hpp>
#include <thread>

namespace chaoslab::dashboard {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

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
    asio::io_context io;
    beast::tcp_stream stream(io);
    stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->port()));
    http::request<http::string_body> req(http::verb::get, target, 11);
    req.set(http::field::host, host.empty() ? host_ : host);
    if (!cookie.empty()) req.set(http::field::cookie, cookie);
    http::write(stream, req);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(stream, buf, res);
    return res;
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

class WsClient {
 public:
  // Opens /ws; returns the handshake error (empty when it was accepted).
  std::string Open(int port, const std::string& target, const std::string& origin = {}) {
    beast::get_lowest_layer(ws_).connect(
        tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
    ws_.set_option(websocket::stream_base::decorator([origin](websocket::request_type& req) {
      if (!origin.empty()) req.set(http::field::origin, origin);
    }));
    beast::get_lowest_layer(ws_).expires_after(std::chrono::seconds(10));
    beast::error_code ec;
    ws_.handshake("127.0.0.1:" + std::to_string(port), target, ec);
    return ec ? ec.message() : "";
  }
  void Write(const std::string& text) {
    ws_.text(true);
    ws_.write(asio::buffer(text));
  }
  nlohmann::json Read() {
    beast::flat_buffer buf;
    ws_.read(buf);
    return nlohmann::json::parse(beast::buffers_to_string(buf.data()));
  }

 private:
  asio::io_context io_;
  websocket::stream<beast::tcp_stream> ws_{io_};
};

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

}  // namespace
}  // namespace chaoslab::dashboard
