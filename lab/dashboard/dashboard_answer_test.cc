// DashboardServer::AnswerBytes and AnswerWebSocketMessage: a connection's requests and a console's
// messages without a socket, as lab/fuzz drives them.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "lab/dashboard/dashboard_server.h"

namespace chaoslab::dashboard {
namespace {

const std::string kTrainee = "7ea1ee007ea1ee007ea1ee007ea1ee00";
const std::string kInstructor = "1257c7001257c7001257c7001257c700";
const std::string kHost = "Host: 127.0.0.1:8377\r\n";

std::unique_ptr<DashboardServer> MakeServer() {
  DashboardServer::Options o;
  o.port = 8377;
  o.assets_dir = CHAOSLAB_DASHBOARD_ASSETS;
  o.run = {"run-a", "channel-291", "manual", "lab", 14400, 14940, 19620};
  o.run.gameday = true;
  o.gameday = true;
  o.technicians = {{"hq", 1}};
  o.site_of = {{"a", "hq"}};
  auto server = DashboardServer::Unstarted(std::move(o), kTrainee, kInstructor);
  EXPECT_TRUE(server.ok()) << server.status().ToString();
  (*server)->Publish({14500, 0, "a", "ws", "state", "-> boot-loop", "boot-loop", 2});
  return std::move(*server);
}

std::string Post(const std::string& token, const std::string& body) {
  return "POST /api/action?token=" + token + " HTTP/1.1\r\n" + kHost +
         "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body;
}

TEST(DashboardAnswerTest, AnswersKeepAliveRequestsInOrderAndStopsAtAnIncompleteOne) {
  auto server = MakeServer();
  const std::string first = "GET /api/state?token=" + kTrainee + " HTTP/1.1\r\n" + kHost + "\r\n";
  const std::string second = "GET /api/instructor HTTP/1.1\r\n" + kHost +
                             "Cookie: chaoslab_token=" + kTrainee + "\r\n\r\n";
  const std::string third = "GET /api/state HTTP/1.1\r\n" + kHost + "\r\n";
  auto answered = server->AnswerBytes(first + second + third + "GET /api/state HTTP/1.1\r\n");
  ASSERT_EQ(answered.size(), 3u);
  EXPECT_EQ(answered[0].begin, 0u);
  EXPECT_EQ(answered[0].end, first.size());
  EXPECT_EQ(answered[1].end, first.size() + second.size());
  EXPECT_EQ(answered[0].role, "trainee");
  EXPECT_TRUE(answered[0].response.starts_with("HTTP/1.1 200 OK\r\n"))
      << answered[0].response.substr(0, 80);
  // The host published before the call is in the snapshot.
  auto body =
      nlohmann::json::parse(answered[0].response.substr(answered[0].response.find("\r\n\r\n") + 4));
  EXPECT_EQ(body["role"], "trainee");
  EXPECT_EQ(body["hosts"].size(), 1u);
  EXPECT_TRUE(answered[1].response.starts_with("HTTP/1.1 403 "))
      << answered[1].response.substr(0, 80);
  EXPECT_EQ(answered[2].role, "");
  EXPECT_TRUE(answered[2].response.starts_with("HTTP/1.1 401 "))
      << answered[2].response.substr(0, 80);
}

TEST(DashboardAnswerTest, ActionsNeedTheirRoleAndReachTheEngine) {
  auto server = MakeServer();
  auto answered = server->AnswerBytes(Post(kTrainee, R"({"kind":"pause"})") +
                                      Post(kInstructor, R"({"kind":"pause"})") +
                                      Post(kTrainee, R"({"kind":"boot","host":"a"})"));
  ASSERT_EQ(answered.size(), 3u);
  EXPECT_TRUE(answered[0].response.starts_with("HTTP/1.1 403 "))
      << answered[0].response.substr(0, 80);
  EXPECT_TRUE(answered[1].response.starts_with("HTTP/1.1 200 "))
      << answered[1].response.substr(0, 80);
  EXPECT_TRUE(answered[2].response.starts_with("HTTP/1.1 200 "))
      << answered[2].response.substr(0, 80);
  auto actions = server->TakeActions();
  ASSERT_EQ(actions.size(), 2u);
  EXPECT_EQ(actions[0].role, "instructor");
  EXPECT_EQ(actions[0].kind, "pause");
  EXPECT_EQ(actions[1].role, "trainee");
  EXPECT_EQ(actions[1].host, "a");
}

// lab_fuzz_dashboard's oracle (a 200 only for the page's paths): the first character of the
// target was dropped unseen, so "GET 9index.html" or "GET xapp.js" served the page's files.
TEST(DashboardAnswerTest, OnlyAPathFromTheRootNamesAFile) {
  auto server = MakeServer();
  const std::string cookie = "Cookie: chaoslab_token=" + kTrainee + "\r\n\r\n";
  auto answered = server->AnswerBytes("GET 9index.html HTTP/1.1\r\n" + kHost + cookie +
                                      "GET xapp.js HTTP/1.1\r\n" + kHost + cookie +
                                      "GET /app.js HTTP/1.1\r\n" + kHost + cookie);
  ASSERT_EQ(answered.size(), 3u);
  EXPECT_TRUE(answered[0].response.starts_with("HTTP/1.1 404 "))
      << answered[0].response.substr(0, 80);
  EXPECT_TRUE(answered[1].response.starts_with("HTTP/1.1 404 "))
      << answered[1].response.substr(0, 80);
  EXPECT_TRUE(answered[2].response.starts_with("HTTP/1.1 200 "))
      << answered[2].response.substr(0, 80);
}

// lab_fuzz_test: a body cut short made AnswerBytes spin for ever (Beast's parser takes an empty
// buffer in the middle of a body without asking for more).
TEST(DashboardAnswerTest, ABodyCutShortWaitsForTheRest) {
  auto server = MakeServer();
  const std::string whole = Post(kTrainee, R"({"kind":"boot","host":"a"})");
  auto answered = server->AnswerBytes(whole + whole.substr(0, whole.size() - 5));
  ASSERT_EQ(answered.size(), 1u);
  EXPECT_TRUE(answered[0].response.starts_with("HTTP/1.1 200 "))
      << answered[0].response.substr(0, 80);
  EXPECT_EQ(server->TakeActions().size(), 1u);
}

TEST(DashboardAnswerTest, RequestsOverTheLimitsAreRefusedAndClose) {
  auto server = MakeServer();
  auto answered = server->AnswerBytes("POST /api/action HTTP/1.1\r\n" + kHost +
                                      "Content-Length: 99999999\r\n\r\nGET / HTTP/1.1\r\n\r\n");
  ASSERT_EQ(answered.size(), 1u);
  EXPECT_TRUE(answered[0].response.starts_with("HTTP/1.1 413 "))
      << answered[0].response.substr(0, 80);
  EXPECT_NE(answered[0].response.find("Connection: close"), std::string::npos);
  answered = server->AnswerBytes("GET / HTTP/1.1\r\nX: " + std::string(9000, 'x') + "\r\n\r\n");
  ASSERT_EQ(answered.size(), 1u);
  EXPECT_TRUE(answered[0].response.starts_with("HTTP/1.1 431 "))
      << answered[0].response.substr(0, 80);
  // Malformed: dropped without an answer.
  EXPECT_TRUE(server->AnswerBytes("BLAH\r\n\r\n").empty());
}

TEST(DashboardAnswerTest, AConsoleUpgradeOpensAWebSocketWhoseLinesBecomeActions) {
  auto server = MakeServer();
  const std::string upgrade =
      " HTTP/1.1\r\n" + kHost +
      "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
  // A host nobody knows: answered 404 as an ordinary request.
  auto answered = server->AnswerBytes("GET /console/zz?token=" + kTrainee + upgrade);
  ASSERT_EQ(answered.size(), 1u);
  EXPECT_TRUE(answered[0].response.starts_with("HTTP/1.1 404 "))
      << answered[0].response.substr(0, 80);

  answered = server->AnswerBytes("GET /console/a?token=" + kTrainee + upgrade + "frames");
  ASSERT_EQ(answered.size(), 1u);
  EXPECT_EQ(answered[0].websocket, "/console/a");
  EXPECT_EQ(answered[0].response, "");
  server->AnswerWebSocketMessage(answered[0], true, "dir C:");
  server->AnswerWebSocketMessage(answered[0], true, R"({"line":"del x","keys":"del x\r"})");
  server->AnswerWebSocketMessage(answered[0], false, "binary");
  server->AnswerWebSocketMessage(answered[0], true, std::string(4097, 'x'));
  auto actions = server->TakeActions();
  ASSERT_EQ(actions.size(), 2u);
  EXPECT_EQ(actions[0].kind, "console");
  EXPECT_EQ(actions[0].host, "a");
  EXPECT_EQ(actions[0].detail, "dir C:");
  EXPECT_EQ(actions[1].detail, "del x");
  EXPECT_EQ(actions[1].keys, "del x\r");

  answered = server->AnswerBytes("GET /ws?token=" + kInstructor + upgrade);
  ASSERT_EQ(answered.size(), 1u);
  EXPECT_EQ(answered[0].websocket, "/ws");
  EXPECT_EQ(answered[0].role, "instructor");
  server->AnswerWebSocketMessage(answered[0], true, "the feed takes no input");
  EXPECT_TRUE(server->TakeActions().empty());
}

TEST(DashboardAnswerTest, AStartedServerAnswersNothingWithoutASocket) {
  auto server = DashboardServer::Start({0, CHAOSLAB_DASHBOARD_ASSETS, {}});
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  EXPECT_TRUE((*server)->AnswerBytes("GET / HTTP/1.1\r\n\r\n").empty());
}

}  // namespace
}  // namespace chaoslab::dashboard
