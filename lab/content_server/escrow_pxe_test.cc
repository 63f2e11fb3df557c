// The key escrow and the PXE plan routes of the content server (docs/GUEST-PROTOCOL.md).
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "lab/content_server/content_server.h"
#include "lab/content_server/key_escrow.h"
#include "lab/content_server/test_socket.h"

namespace chaoslab {
namespace {

using testing::HttpResponse;
using testing::ParseHttpResponse;
using testing::RawExchange;

const char kPassword[] = "123456-234567-345678-456789-567890-678901-789012-890123";

std::unique_ptr<ContentServer> StartServer() {
  auto server = ContentServer::Start({});
  EXPECT_TRUE(server.ok()) << server.status().ToString();
  return std::move(server).value();
}

HttpResponse Get(int port, const std::string& target) {
  return ParseHttpResponse(RawExchange(port, "GET " + target + " HTTP/1.0\r\n\r\n"));
}

TEST(KeyEscrowTest, LooksUpStoredPasswordsAndCountsOnlySuccesses) {
  KeyEscrow escrow;
  EXPECT_TRUE(escrow.available());
  escrow.Store("ws-01", kPassword);
  auto key = escrow.Lookup("ws-01");
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ(*key, kPassword);
  EXPECT_EQ(escrow.Lookup("ws-99").status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(escrow.lookups(), 1);

  escrow.SetAvailable(false);
  EXPECT_FALSE(escrow.available());
  EXPECT_EQ(escrow.Lookup("ws-01").status().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(escrow.lookups(), 1);
  escrow.SetAvailable(true);
  escrow.Store("ws-01", "replaced");
  EXPECT_EQ(*escrow.Lookup("ws-01"), "replaced");
  EXPECT_EQ(escrow.lookups(), 2);
}

TEST(KeyEscrowTest, IsSafeToUseFromManyThreads) {
  KeyEscrow escrow;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        std::string host = "h" + std::to_string(t) + "-" + std::to_string(i);
        escrow.Store(host, "pw");
        if (escrow.Lookup(host).ok()) ++ok;
        if (i % 50 == 0) escrow.SetAvailable(true);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 800);
  EXPECT_EQ(escrow.lookups(), 800);
}

TEST(ContentServerEscrowTest, ServesTheHostsPassword) {
  auto server = StartServer();
  KeyEscrow escrow;
  escrow.Store("ws-01", kPassword);
  server->AttachEscrow(&escrow);
  HttpResponse r = Get(server->port(), "/v1/escrow/key?host=ws-01");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["content-type"], "text/plain");
  EXPECT_EQ(r.body, std::string(kPassword) + "\n");
  EXPECT_EQ(escrow.lookups(), 1);
  server->AttachEscrow(nullptr);
}

TEST(ContentServerEscrowTest, UnknownHostIs404DownIs503MissingHostIs400) {
  auto server = StartServer();
  // No escrow attached: nobody to ask.
  EXPECT_EQ(Get(server->port(), "/v1/escrow/key?host=ws-01").status, 503);
  KeyEscrow escrow;
  escrow.Store("ws-01", kPassword);
  server->AttachEscrow(&escrow);
  EXPECT_EQ(Get(server->port(), "/v1/escrow/key?host=ws-02").status, 404);
  EXPECT_EQ(Get(server->port(), "/v1/escrow/key").status, 400);
  EXPECT_EQ(Get(server->port(), "/v1/escrow/key?host=bad/id").status, 400);
  escrow.SetAvailable(false);
  HttpResponse down = Get(server->port(), "/v1/escrow/key?host=ws-01");
  EXPECT_EQ(down.status, 503);
  EXPECT_EQ(down.body.find(kPassword), std::string::npos);
  escrow.SetAvailable(true);
  EXPECT_EQ(Get(server->port(), "/v1/escrow/key?host=ws-01").status, 200);
  EXPECT_EQ(escrow.lookups(), 1);
  // Only GET.
  HttpResponse post = ParseHttpResponse(RawExchange(
      server->port(), "POST /v1/escrow/key?host=ws-01 HTTP/1.0\r\nContent-Length: 0\r\n\r\n"));
  EXPECT_EQ(post.status, 405);
  server->AttachEscrow(nullptr);
  EXPECT_EQ(Get(server->port(), "/v1/escrow/key?host=ws-01").status, 503);
}

TEST(ContentServerEscrowTest, ObserverSeesEscrowRequests) {
  auto server = StartServer();
  KeyEscrow escrow;
  escrow.Store("ws-01", kPassword);
  server->AttachEscrow(&escrow);
  std::mutex mu;
  std::vector<ContentServer::Request> seen;
  server->SetObserver([&](const ContentServer::Request& r) {
    std::lock_guard<std::mutex> lock(mu);
    seen.push_back(r);
  });
  Get(server->port(), "/v1/escrow/key?host=ws-01");
  server->Stop();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].path, "/v1/escrow/key");
  EXPECT_EQ(seen[0].host_id, "ws-01");
  EXPECT_EQ(seen[0].status, 200);
}

TEST(ContentServerPxeTest, ServesThePlanOnlyOnceSet) {
  auto server = StartServer();
  EXPECT_EQ(Get(server->port(), "/v1/pxe/boot?host=ws-01").status, 404);
  const std::string plan = "unlock escrow\ndelete C-00000291*.sys\n";
  server->SetPxePlan(plan);
  HttpResponse r = Get(server->port(), "/v1/pxe/boot?host=ws-01");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["content-type"], "text/plain");
  EXPECT_EQ(r.body, plan);
  // The host is optional here (a PXE ROM may not say who it is), but must be valid when given.
  EXPECT_EQ(Get(server->port(), "/v1/pxe/boot").status, 200);
  EXPECT_EQ(Get(server->port(), "/v1/pxe/boot?host=a%20b").status, 400);
  EXPECT_EQ(Get(server->port(), "/v1/pxe/bootx?host=ws-01").status, 404);
  server->SetPxePlan("");
  EXPECT_EQ(Get(server->port(), "/v1/pxe/boot?host=ws-01").status, 404);
}

}  // namespace
}  // namespace chaoslab
