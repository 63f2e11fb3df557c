#include "lab/content_server/content_server.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "lab/content_server/test_socket.h"

namespace chaoslab {
namespace {

using namespace std::chrono_literals;
using testing::ConnectLoopback;
using testing::HttpResponse;
using testing::ParseHttpResponse;
using testing::RawExchange;
using testing::ReadUntil;
using testing::ReadUntilClosed;
using testing::SendAll;

const char kV1[] = "C-00000291-00000000-00000001.sys";
const char kV2[] = "C-00000291-00000000-00000002.sys";

std::unique_ptr<ContentServer> StartServer(ContentServer::Options options = {}) {
  auto server = ContentServer::Start(std::move(options));
  EXPECT_TRUE(server.ok()) << server.status().ToString();
  return std::move(server).value();
}

HttpResponse Get(int port, const std::string& target) {
  return ParseHttpResponse(RawExchange(port, "GET " + target + " HTTP/1.0\r\n\r\n"));
}

TEST(ContentServerTest, StartsOnAnEphemeralLoopbackPort) {
  auto server = StartServer();
  EXPECT_GT(server->port(), 0);
  EXPECT_NE(server->port(), 80);
}

// The process's socket descriptors, each with whether it is close-on-exec.
std::map<int, bool> Sockets() {
  std::map<int, bool> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    std::string target = std::filesystem::read_symlink(e.path(), ec).string();
    if (ec || target.rfind("socket:", 0) != 0) continue;
    int fd = std::stoi(e.path().filename().string());
    int flags = fcntl(fd, F_GETFD);
    if (flags >= 0) out[fd] = (flags & FD_CLOEXEC) != 0;
  }
  return out;
}

// A tool or QEMU the lab starts must not inherit the server's sockets (issue 15). Before: Asio
// opened the listening and accepted sockets without close-on-exec.
// The lab raises the io thread's priority (lab_priority.h): it must name a thread of this process.
TEST(ContentServerTest, NamesItsIoThread) {
  auto server = ContentServer::Start({});
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  const pid_t tid = (*server)->io_thread_id();
  ASSERT_GT(tid, 0);
  EXPECT_NE(tid, getpid()) << "the io thread is not the main thread";
  EXPECT_TRUE(std::filesystem::exists("/proc/self/task/" + std::to_string(tid)));
  auto unstarted = ContentServer::Unstarted({});
  ASSERT_TRUE(unstarted.ok());
  EXPECT_EQ((*unstarted)->io_thread_id(), 0);
}

TEST(ContentServerTest, ItsSocketsAreCloseOnExec) {
  std::map<int, bool> before = Sockets();
  auto server = StartServer();
  int client = ConnectLoopback(server->port());  // the test's own: not the server's
  ASSERT_GE(client, 0);
  SendAll(client, "GET /v1/manifest HTTP/1.1\r\n");  // half a request keeps the session open
  std::map<int, bool> now;
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while ((now = Sockets()).size() < before.size() + 3 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  EXPECT_GE(now.size(), before.size() + 3) << "waited 10 s for the listener, client and session";
  for (const auto& [fd, cloexec] : now) {
    if (before.count(fd) || fd == client) continue;
    EXPECT_TRUE(cloexec) << "server socket descriptor " << fd << " is inherited by children";
  }
  close(client);
}

TEST(ContentServerTest, RefusesNonLoopbackOrBadBindAddresses) {
  for (const char* bind : {"0.0.0.0", "8.8.8.8", "::", "not-an-address", ""}) {
    ContentServer::Options options;
    options.bind = bind;
    auto server = ContentServer::Start(options);
    ASSERT_FALSE(server.ok()) << bind;
    EXPECT_EQ(server.status().code(), ErrorCode::kInvalidArgument) << bind;
  }
  ContentServer::Options options;
  options.port = 70000;
  EXPECT_EQ(ContentServer::Start(options).status().code(), ErrorCode::kInvalidArgument);
}

TEST(ContentServerTest, ReportsAPortInUse) {
  auto first = StartServer();
  ContentServer::Options options;
  options.port = first->port();
  auto second = ContentServer::Start(options);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), ErrorCode::kIoError);
  EXPECT_NE(second.status().message().find(std::to_string(first->port())), std::string::npos);
}

TEST(ContentServerTest, ManifestIsEmptyBeforeAnythingIsPublished) {
  auto server = StartServer();
  HttpResponse r = Get(server->port(), "/v1/manifest?host=ws-01");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.version, "HTTP/1.0");
  EXPECT_EQ(r.headers["content-type"], "text/plain");
  EXPECT_EQ(r.headers["content-length"], "0");
  EXPECT_EQ(r.body, "");
}

TEST(ContentServerTest, ManifestShowsTheNewestVersionOfEachChannel) {
  auto server = StartServer();
  ASSERT_TRUE(server->Publish(291, 1, kV1, "one").ok());
  EXPECT_EQ(Get(server->port(), "/v1/manifest?host=ws-01").body,
            std::string("291 1 ") + kV1 + "\n");

  ASSERT_TRUE(server->Publish(291, 2, kV2, "two").ok());
  ASSERT_TRUE(server->Publish(7, 5, "C-00000007-00000000-00000005.sys", "seven").ok());
  HttpResponse r = Get(server->port(), "/v1/manifest?host=ws-01");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, std::string("7 5 C-00000007-00000000-00000005.sys\n291 2 ") + kV2 + "\n");
  EXPECT_EQ(server->ManifestFor("ws-01"), r.body);
  // The host parameter is optional.
  EXPECT_EQ(Get(server->port(), "/v1/manifest").body, r.body);
}

TEST(ContentServerTest, PublishRejectsBadInputWithClearErrors) {
  auto server = StartServer();
  ASSERT_TRUE(server->Publish(291, 5, kV1, "x").ok());
  Status older = server->Publish(291, 4, kV2, "x");
  EXPECT_EQ(older.code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(older.message().find("not newer"), std::string::npos) << older.message();
  EXPECT_EQ(server->Publish(291, 5, kV2, "x").code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(server->Publish(291, 6, kV1, "x").code(), ErrorCode::kInvalidArgument);  // name taken
  EXPECT_EQ(server->Publish(0, 1, "a.sys", "x").code(), ErrorCode::kInvalidArgument);
  for (const char* name : {"", "../etc/passwd", "a/b", ".hidden", "a b", "a%2fb"}) {
    EXPECT_EQ(server->Publish(9, 1, name, "x").code(), ErrorCode::kInvalidArgument) << name;
  }
  EXPECT_EQ(server->ManifestFor("h"), std::string("291 5 ") + kV1 + "\n");
}

TEST(ContentServerTest, ServesContentBytesExactlyIncludingOlderVersions) {
  auto server = StartServer();
  std::string bytes;
  for (int i = 0; i < 200000; ++i) bytes.push_back(static_cast<char>((i * 7919) & 0xff));
  bytes[10] = '\0';
  ASSERT_TRUE(server->Publish(291, 1, kV1, "old").ok());
  ASSERT_TRUE(server->Publish(291, 2, kV2, bytes).ok());

  HttpResponse r = Get(server->port(), std::string("/v1/content/") + kV2 + "?host=ws-01");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["content-type"], "application/octet-stream");
  EXPECT_EQ(r.body.size(), bytes.size());
  EXPECT_TRUE(r.body == bytes);
  // Hosts pinned to an older version must still be able to download it.
  EXPECT_EQ(Get(server->port(), std::string("/v1/content/") + kV1).body, "old");
}

TEST(ContentServerTest, AnswersUnknownThings404And405) {
  auto server = StartServer();
  ASSERT_TRUE(server->Publish(291, 1, kV1, "one").ok());
  int port = server->port();
  EXPECT_EQ(Get(port, "/v1/content/C-00000291-00000000-00000009.sys?host=a").status, 404);
  EXPECT_EQ(Get(port, "/v1/content/").status, 404);
  EXPECT_EQ(Get(port, "/v1/content/../../etc/passwd").status, 404);
  EXPECT_EQ(Get(port, "/v1/content/sub/dir.sys").status, 404);
  EXPECT_EQ(Get(port, "/").status, 404);
  EXPECT_EQ(Get(port, "/v1/manifest/extra").status, 404);
  EXPECT_EQ(Get(port, "/v2/manifest").status, 404);

  HttpResponse post = ParseHttpResponse(
      RawExchange(port, "POST /v1/manifest HTTP/1.0\r\nContent-Length: 0\r\n\r\n"));
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(post.headers["allow"], "GET");
  EXPECT_EQ(ParseHttpResponse(
                RawExchange(port, "DELETE /v1/content/" + std::string(kV1) + " HTTP/1.0\r\n\r\n"))
                .status,
            405);
  EXPECT_EQ(Get(port, "/v1/content/" + std::string(kV1)).body, "one");  // still there
}

TEST(ContentServerTest, RejectsBadHostIds) {
  auto server = StartServer();
  EXPECT_EQ(Get(server->port(), "/v1/manifest?host=").status, 400);
  EXPECT_EQ(Get(server->port(), "/v1/manifest?host=a%20b").status, 400);
  EXPECT_EQ(Get(server->port(), "/v1/manifest?host=" + std::string(200, 'a')).status, 400);
  EXPECT_EQ(Get(server->port(), "/v1/manifest?x=1&host=ws_01-a&y").status, 200);
}

TEST(ContentServerTest, MalformedRequestsGet400AndTheServerCarriesOn) {
  auto server = StartServer();
  ASSERT_TRUE(server->Publish(291, 1, kV1, "one").ok());
  const std::vector<std::string> junk = {
      "GARBAGE\r\n\r\n",
      "GET\r\n\r\n",
      "GET /v1/manifest\r\n\r\n",
      "GET /v1/manifest HTTP/9.9\r\n\r\n",
      "GET /v1/manifest HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
      "GET /v1/manifest HTTP/1.1\r\nno colon here\r\n\r\n",
      std::string("\x00\xff\x01\x02\r\n\r\n", 8),
      "GET /v1/manifest HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789",
  };
  for (const std::string& request : junk) {
    bool closed = false;
    int fd = ConnectLoopback(server->port());
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(SendAll(fd, request));
    std::string reply = ReadUntilClosed(fd, 3s, &closed);
    close(fd);
    EXPECT_TRUE(closed) << "server kept the connection after: " << request;
    HttpResponse r = ParseHttpResponse(reply);
    EXPECT_TRUE(r.status == 400 || r.status == 413) << "reply to " << request << ": " << reply;
  }
  EXPECT_EQ(Get(server->port(), "/v1/manifest").body, std::string("291 1 ") + kV1 + "\n");
}

TEST(ContentServerTest, ClosesASilentConnectionAfterTheTimeout) {
  ContentServer::Options options;
  options.request_timeout = 300ms;
  auto server = StartServer(options);
  int fd = ConnectLoopback(server->port());
  ASSERT_GE(fd, 0);
  bool closed = false;
  std::string reply = ReadUntilClosed(fd, 5s, &closed);
  close(fd);
  EXPECT_TRUE(closed) << "the server kept a silent connection open (waited 5 s)";
  EXPECT_EQ(reply, "");

  // A client that starts a request and stalls is closed too.
  fd = ConnectLoopback(server->port());
  ASSERT_TRUE(SendAll(fd, "GET /v1/manifest HTTP/1.1\r\nHost: x\r\n"));
  ReadUntilClosed(fd, 5s, &closed);
  close(fd);
  EXPECT_TRUE(closed);
}

TEST(ContentServerTest, RefusesOversizedHeaders) {
  auto server = StartServer();
  std::string request =
      "GET /v1/manifest HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(64 * 1024, 'a') + "\r\n\r\n";
  int fd = ConnectLoopback(server->port());
  ASSERT_GE(fd, 0);
  SendAll(fd, request);  // may fail part-way once the server closes
  bool closed = false;
  std::string reply = ReadUntilClosed(fd, 3s, &closed);
  close(fd);
  EXPECT_TRUE(closed);
  EXPECT_EQ(ParseHttpResponse(reply).status, 431) << reply.substr(0, 200);

  std::string long_target =
      "GET /v1/manifest?host=" + std::string(20000, 'a') + " HTTP/1.0\r\n\r\n";
  EXPECT_EQ(ParseHttpResponse(RawExchange(server->port(), long_target)).status, 431);
  EXPECT_EQ(Get(server->port(), "/v1/manifest").status, 200);
}

TEST(ContentServerTest, KeepsHttp11ConnectionsAliveAndClosesHttp10Ones) {
  auto server = StartServer();
  ASSERT_TRUE(server->Publish(291, 1, kV1, "one").ok());
  int fd = ConnectLoopback(server->port());
  ASSERT_GE(fd, 0);
  // Two pipelined requests on one connection, then one that asks to close.
  ASSERT_TRUE(SendAll(fd,
                      "GET /v1/manifest?host=a HTTP/1.1\r\nHost: x\r\n\r\n"
                      "GET /v1/content/" +
                          std::string(kV1) +
                          "?host=a HTTP/1.1\r\nHost: x\r\n\r\n"
                          "GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  bool closed = false;
  std::string all = ReadUntilClosed(fd, 3s, &closed);
  close(fd);
  EXPECT_TRUE(closed);
  HttpResponse first = ParseHttpResponse(all);
  EXPECT_EQ(first.status, 200);
  EXPECT_EQ(first.version, "HTTP/1.1");
  size_t second_at = all.find("HTTP/1.1", 1);
  ASSERT_NE(second_at, std::string::npos);
  HttpResponse second = ParseHttpResponse(all.substr(second_at));
  EXPECT_EQ(second.status, 200);
  EXPECT_EQ(second.body, "one");
  size_t third_at = all.find("HTTP/1.1", second_at + 1);
  ASSERT_NE(third_at, std::string::npos);
  EXPECT_EQ(ParseHttpResponse(all.substr(third_at)).status, 404);

  // HTTP/1.0 without keep-alive: the server closes after one answer.
  fd = ConnectLoopback(server->port());
  ASSERT_TRUE(SendAll(fd, "GET /v1/manifest HTTP/1.0\r\n\r\n"));
  std::string reply = ReadUntilClosed(fd, 3s, &closed);
  close(fd);
  EXPECT_TRUE(closed);
  EXPECT_EQ(ParseHttpResponse(reply).status, 200);
}

TEST(ContentServerTest, ServesConcurrentClients) {
  auto server = StartServer();
  std::string bytes(50000, 'z');
  ASSERT_TRUE(server->Publish(291, 1, kV1, bytes).ok());
  std::atomic<int> good{0};
  std::vector<std::thread> clients;
  // Some silent clients hold connections open meanwhile; they must not block anyone.
  std::vector<int> silent;
  for (int i = 0; i < 4; ++i) silent.push_back(ConnectLoopback(server->port()));
  for (int t = 0; t < 16; ++t) {
    clients.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        std::string host = "h" + std::to_string(t);
        HttpResponse m = Get(server->port(), "/v1/manifest?host=" + host);
        HttpResponse c = Get(server->port(), "/v1/content/" + std::string(kV1) + "?host=" + host);
        if (m.status == 200 && m.body == std::string("291 1 ") + kV1 + "\n" && c.status == 200 &&
            c.body == bytes) {
          ++good;
        }
      }
    });
  }
  for (auto& c : clients) c.join();
  for (int fd : silent) close(fd);
  EXPECT_EQ(good.load(), 160);
}

TEST(ContentServerTest, ObserverSeesEveryRequestWithItsHostId) {
  auto server = StartServer();
  ASSERT_TRUE(server->Publish(291, 1, kV1, "one").ok());
  std::mutex mu;
  std::vector<ContentServer::Request> seen;
  server->SetObserver([&](const ContentServer::Request& r) {
    std::lock_guard<std::mutex> lock(mu);
    seen.push_back(r);
  });
  auto before = std::chrono::steady_clock::now();
  Get(server->port(), "/v1/manifest?host=ws711-01");
  Get(server->port(), "/v1/content/" + std::string(kV1) + "?host=dc-02");
  Get(server->port(), "/v1/content/missing.sys?host=kiosk_3");
  RawExchange(server->port(), "BOGUS\r\n\r\n");

  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_EQ(seen[0].host_id, "ws711-01");
  EXPECT_EQ(seen[0].method, "GET");
  EXPECT_EQ(seen[0].path, "/v1/manifest");
  EXPECT_EQ(seen[0].status, 200);
  EXPECT_EQ(seen[0].bytes, std::string("291 1 ").size() + sizeof(kV1));  // incl. newline
  EXPECT_GE(seen[0].at, before);
  EXPECT_EQ(seen[1].host_id, "dc-02");
  EXPECT_EQ(seen[1].path, "/v1/content/" + std::string(kV1));
  EXPECT_EQ(seen[1].status, 200);
  EXPECT_EQ(seen[1].bytes, 3u);
  EXPECT_EQ(seen[2].host_id, "kiosk_3");
  EXPECT_EQ(seen[2].status, 404);
  EXPECT_EQ(seen[3].host_id, "");
  EXPECT_EQ(seen[3].status, 400);
}

TEST(ContentServerTest, AThrowingObserverDoesNotBreakTheServer) {
  auto server = StartServer();
  server->SetObserver([](const ContentServer::Request&) { throw std::runtime_error("boom"); });
  EXPECT_EQ(Get(server->port(), "/v1/manifest").status, 200);
  server->SetObserver(nullptr);
  EXPECT_EQ(Get(server->port(), "/v1/manifest").status, 200);
}

// Pins hosts whose id starts with "pinned" to the oldest version (customer N-1 pinning).
class PinningPolicy : public ContentPolicy {
 public:
  const PublishedFile* Select(std::string_view host_id,
                              std::span<const PublishedFile> published) const override {
    return host_id.starts_with("pinned") ? &published.front() : &published.back();
  }
};

TEST(ContentServerTest, APolicyDecidesWhatEachHostSees) {
  auto server = StartServer();
  ASSERT_TRUE(server->Publish(291, 1, kV1, "one").ok());
  ASSERT_TRUE(server->Publish(291, 2, kV2, "two").ok());
  server->SetPolicy(std::make_shared<PinningPolicy>());
  EXPECT_EQ(Get(server->port(), "/v1/manifest?host=pinned-7").body,
            std::string("291 1 ") + kV1 + "\n");
  EXPECT_EQ(Get(server->port(), "/v1/manifest?host=ws-1").body, std::string("291 2 ") + kV2 + "\n");
  server->SetPolicy(nullptr);
  EXPECT_EQ(server->ManifestFor("pinned-7"), std::string("291 2 ") + kV2 + "\n");
}

TEST(ContentServerTest, LimitsConcurrentConnections) {
  ContentServer::Options options;
  options.max_connections = 2;
  options.request_timeout = 5s;
  auto server = StartServer(options);
  int a = ConnectLoopback(server->port());
  int b = ConnectLoopback(server->port());
  std::this_thread::sleep_for(100ms);  // let the server accept both
  int c = ConnectLoopback(server->port());
  bool closed = false;
  ReadUntilClosed(c, 2s, &closed);
  EXPECT_TRUE(closed) << "the third connection should be closed at once";
  close(a);
  close(b);
  close(c);
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(Get(server->port(), "/v1/manifest").status, 200);
}

TEST(ContentServerTest, StopClosesEverythingAndIsIdempotent) {
  auto server = StartServer();
  int port = server->port();
  int idle = ConnectLoopback(port);
  ASSERT_GE(idle, 0);
  std::this_thread::sleep_for(50ms);
  server->Stop();
  bool closed = false;
  ReadUntilClosed(idle, 2s, &closed);
  close(idle);
  EXPECT_TRUE(closed);
  EXPECT_LT(ConnectLoopback(port), 0);
  server->Stop();
  EXPECT_TRUE(server->Publish(291, 1, kV1, "still fine").ok());
}

TEST(ContentServerTest, NameValidators) {
  EXPECT_TRUE(IsValidHostId("ws711-01_A"));
  EXPECT_FALSE(IsValidHostId(""));
  EXPECT_FALSE(IsValidHostId("a.b"));
  EXPECT_TRUE(IsValidContentFileName(kV1));
  EXPECT_FALSE(IsValidContentFileName(".."));
  EXPECT_FALSE(IsValidContentFileName(std::string(256, 'a')));
}

}  // namespace
}  // namespace chaoslab
