// A dashboard its users cannot stop (issue 15): bad requests answer 400/500 and the server goes on,
// text that is not UTF-8 is replaced on its way to JSON, and every resource a browser can make it
// hold (connections, queued messages, message and body sizes) is bounded.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "lab/dashboard/dashboard_server.h"
#include "lab/dashboard/test_client.h"

namespace chaoslab::dashboard {
namespace {

using namespace chaoslab::dashboard::testing;  // NOLINT: the bounded clients

const std::string kReplacement = "\xEF\xBF\xBD";  // U+FFFD

class HardeningTest : public ::testing::Test {
 protected:
  void SetUp() override { StartServer({}); }

  void StartServer(DashboardServer::Options o) {
    server_.reset();
    o.assets_dir = CHAOSLAB_DASHBOARD_ASSETS;
    o.run = {"run-h", "channel-291", "manual", "lab", 14400, 14940, 19620};
    o.run.gameday = true;
    o.gameday = true;
    o.technicians = {{"hq", 2}};
    o.site_of = {{"a", "hq"}, {"b", "hq"}};
    auto s = DashboardServer::Start(std::move(o));
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(*s);
    for (const char* h : {"a", "b"})
      server_->Publish({14500, 0, h, "ws", "state", "-> boot-loop", "boot-loop", 2});
  }

  int Post(const std::string& token, const std::string& body) {
    return static_cast<int>(
        Request(server_->port(), http::verb::post, "/api/action?token=" + token, body).result());
  }
  // The server still answers: the state page comes back as JSON.
  nlohmann::json State() {
    auto res = Request(server_->port(), http::verb::get, "/api/state?token=" + Trainee());
    EXPECT_EQ(res.result(), http::status::ok);
    return nlohmann::json::parse(res.body());
  }
  std::string Trainee() const { return server_->trainee_token(); }
  std::string Instructor() const { return server_->instructor_token(); }

  std::unique_ptr<DashboardServer> server_;
};

// Issue 15, case 3: {"kind":"boot","host":1} ended the io thread; every later request timed out.
TEST_F(HardeningTest, AFieldOfTheWrongTypeIsABadRequestAndTheServerGoesOn) {
  EXPECT_EQ(Post(Trainee(), R"({"kind":"boot","host":1})"), 400);
  EXPECT_EQ(Post(Trainee(), R"({"kind":"boot","host":"a","detail":["safe-mode"]})"), 400);
  EXPECT_EQ(Post(Instructor(), R"({"kind":"eta-ask","detail":{"q":1}})"), 400);
  EXPECT_EQ(Post(Trainee(), R"({"kind":7})"), 400);
  EXPECT_EQ(Post(Trainee(), "[1,2"), 400);
  EXPECT_EQ(State()["type"], "snapshot");
  EXPECT_EQ(Post(Trainee(), R"({"kind":"boot","host":"a","detail":"safe-mode"})"), 200);
  EXPECT_EQ(server_->TakeActions().size(), 1u);
}

// A detail is cut at 500 bytes; cut inside a character it made every later dump throw.
TEST_F(HardeningTest, ADetailCutInsideACharacterStaysValidText) {
  const std::string e = "\xc3\xa9";  // é
  std::string question(499, 'q');
  for (int i = 0; i < 10; ++i) question += e;
  EXPECT_EQ(Post(Instructor(), nlohmann::json{{"kind", "eta-ask"}, {"detail", question}}.dump()),
            200);
  EXPECT_EQ(Post(Trainee(), nlohmann::json{{"kind", "eta-answer"}, {"detail", question}}.dump()),
            200);
  nlohmann::json state = State();
  const std::string asked = state["eta"]["question"];
  EXPECT_EQ(asked, std::string(499, 'q'));  // the whole é did not fit
  EXPECT_EQ(state["eta"]["answers"][0]["answer"], asked);
}

// Guest console bytes (and event details) that are not UTF-8 reach browsers with U+FFFD.
TEST_F(HardeningTest, BytesThatAreNotUtf8AreReplacedOnTheirWayToBrowsers) {
  WsClient feed, console;
  ASSERT_EQ(feed.Open(server_->port(), "/ws?token=" + Trainee()), "");
  EXPECT_EQ(feed.Read()["type"], "snapshot");
  ASSERT_EQ(console.Open(server_->port(), "/console/a?token=" + Trainee()), "");
  EXPECT_EQ(console.Read()["type"], "tty-backlog");
  feed.Read();  // the technicians, now that one sits at host a

  server_->Publish({14600, 1, "a", "ws", "tty", "*** STOP \xff\xfe", "boot-loop", 2});
  EXPECT_EQ(console.Read()["line"], "*** STOP " + kReplacement + kReplacement);
  server_->Publish({14600, 2, "a", "ws", "bugcheck", "stop code \xc3", "boot-loop", 2});
  EXPECT_EQ(feed.Read()["event"]["detail"], "stop code " + kReplacement);
  EXPECT_EQ(State()["events"].back()["detail"], "stop code " + kReplacement);

  WsClient late;  // the backlog a console opened later gets
  ASSERT_EQ(late.Open(server_->port(), "/console/a?token=" + Trainee()), "");
  EXPECT_EQ(late.Read()["lines"][0], "*** STOP " + kReplacement + kReplacement);
}

// Whatever a handler throws is the request's failure (500), not the server's.
TEST_F(HardeningTest, AHandlerThatThrowsAnswers500AndTheServerGoesOn) {
  server_->SetKeyEscrow(
      [](const std::string&) -> Result<std::string> { throw std::runtime_error("boom"); });
  auto res = Request(server_->port(), http::verb::get, "/api/escrow/key?host=a&token=" + Trainee());
  EXPECT_EQ(res.result(), http::status::internal_server_error);
  EXPECT_EQ(State()["type"], "snapshot");
  server_->SetKeyEscrow(nullptr);
}

// Connections past the cap get a 503 and are closed, without waiting for a request; once a
// connection closes there is room again.
TEST_F(HardeningTest, ConnectionsPastTheCapAreAnswered503) {
  DashboardServer::Options o;
  o.max_connections = 3;
  StartServer(std::move(o));
  WsClient feed, console;
  ASSERT_EQ(feed.Open(server_->port(), "/ws?token=" + Trainee()), "");
  EXPECT_EQ(feed.Read()["type"], "snapshot");
  ASSERT_EQ(console.Open(server_->port(), "/console/a?token=" + Trainee()), "");
  EXPECT_EQ(console.Read()["type"], "tty-backlog");
  HttpClient page(server_->port());  // a keep-alive connection, held open
  http::request<http::string_body> get(http::verb::get, "/api/state?token=" + Trainee(), 11);
  EXPECT_EQ(page.Exchange(get).result(), http::status::ok);

  HttpClient extra(server_->port());
  EXPECT_NE(extra.ReadAll().find("HTTP/1.1 503"), std::string::npos);

  console.Abandon();
  bool served = false;  // wait (bounded) until the server noticed the console went away
  for (int i = 0; i < 200 && !served; ++i) {
    try {
      served = HttpClient(server_->port()).Exchange(get).result() == http::status::ok;
    } catch (const std::exception&) {
      // answered 503 and closed before our request was read
    }
    if (!served) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(served) << "no room after a connection closed (200 tries, 20 ms apart)";
  EXPECT_EQ(page.Exchange(get).result(), http::status::ok);  // the held one still works
}

// A browser that stops reading is disconnected once its queue passes the limit (the page then
// reconnects and gets a fresh snapshot); it never makes the server buffer without end.
TEST_F(HardeningTest, ABrowserThatStopsReadingIsDisconnected) {
  DashboardServer::Options o;
  o.max_queued_bytes = 256 << 10;
  StartServer(std::move(o));
  WsClient slow;
  ASSERT_EQ(slow.Open(server_->port(), "/ws?token=" + Trainee()), "");
  EXPECT_EQ(slow.Read()["type"], "snapshot");
  // 32 MB of events: more than the kernel's socket buffers hold, so most of it would queue.
  const std::string detail(8192, 'x');
  for (int i = 0; i < 4000; ++i) {
    server_->Publish({14600.0 + i, i, "", "", "note", detail, "", 0});
  }
  server_->End("finished");
  EXPECT_TRUE(slow.ReadUntilClosed([](const std::string& text) {
    return text.find(R"("type":"end")") != std::string::npos;
  })) << "the slow browser got every event: nothing bounded its queue";
  WsClient other;  // the server goes on
  ASSERT_EQ(other.Open(server_->port(), "/ws?token=" + Trainee()), "");
  EXPECT_EQ(other.Read()["run"]["status"], "finished");
}

// A WebSocket message over the limit closes that socket; nothing of it reaches the engine.
TEST_F(HardeningTest, AWebSocketMessageOverTheLimitClosesTheSocket) {
  WsClient console;
  ASSERT_EQ(console.Open(server_->port(), "/console/a?token=" + Trainee()), "");
  EXPECT_EQ(console.Read()["type"], "tty-backlog");
  try {
    console.Write(std::string(1 << 20, 'x'));
  } catch (const beast::system_error&) {
    // the server may close before the whole message is written
  }
  EXPECT_TRUE(console.ReadUntilClosed([](const std::string&) { return false; }));
  EXPECT_TRUE(server_->TakeActions().empty());
  EXPECT_EQ(State()["type"], "snapshot");
}

// A request that announces a body over the limit is refused (413) before any of it is read.
TEST_F(HardeningTest, ABodyOverTheLimitIsRefused) {
  HttpClient client(server_->port());
  client.WriteRaw("POST /api/action?token=" + Instructor() +
                  " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(server_->port()) +
                  "\r\nContent-Type: application/json\r\nContent-Length: 200000\r\n\r\n");
  EXPECT_EQ(client.ReadResponse().result(), http::status::payload_too_large);
  EXPECT_EQ(State()["type"], "snapshot");
}

// Out of file descriptors (EMFILE) the accept loop waits before trying again instead of spinning
// on the io thread; once descriptors are free, the connection that waited is served.
TEST_F(HardeningTest, AcceptErrorsBackOffInsteadOfSpinning) {
  http::request<http::string_body> get(http::verb::get, "/api/state?token=" + Trainee(), 11);
  HttpClient held(server_->port());  // opened first: its io_context needs descriptors too
  ASSERT_EQ(held.Exchange(get).result(), http::status::ok);
  const int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(devnull, 0);
  rlimit old{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
  rlimit low = old;
  low.rlim_cur = std::min<rlim_t>(old.rlim_cur, 512);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  std::vector<int> filler;
  for (int fd; (fd = ::dup(devnull)) >= 0;) filler.push_back(fd);
  ASSERT_FALSE(filler.empty());
  ::close(filler.back());  // one left: for the client's socket, none for the server's accept
  filler.pop_back();
  const int waiting = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(server_->port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool connected =
      waiting >= 0 && ::connect(waiting, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  int first = 0;  // wait (bounded) for the server to fail an accept
  for (int i = 0; i < 500 && connected && (first = server_->accept_errors()) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // While accepts fail the io thread still serves. A loop that tries again at once fails an
  // accept between any two requests (about 2 per round trip here); one that backs off (50 ms,
  // doubling up to 1 s) fails a handful during all 200, however long they take.
  int served = 0;
  for (int i = 0; i < 200; ++i) served += held.Exchange(get).result() == http::status::ok;
  const int during = server_->accept_errors() - first;
  for (int fd : filler) ::close(fd);
  ::close(devnull);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
  ASSERT_TRUE(connected) << "connect: " << std::strerror(errno);
  EXPECT_GT(first, 0) << "the server never failed an accept (5 s)";
  EXPECT_EQ(served, 200);
  EXPECT_LE(during, 40) << "accept errors during 200 requests: the accept loop spins";

  const std::string request = "GET /api/state?token=" + Trainee() +
                              " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(server_->port()) +
                              "\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(::write(waiting, request.data(), request.size()), static_cast<ssize_t>(request.size()));
  pollfd p{waiting, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 10'000), 1) << "no answer in 10 s on the connection that waited";
  char head[16] = {};
  EXPECT_GT(::read(waiting, head, sizeof head - 1), 0);
  EXPECT_EQ(std::string(head).substr(0, 12), "HTTP/1.1 200");
  ::close(waiting);
}

}  // namespace
}  // namespace chaoslab::dashboard
