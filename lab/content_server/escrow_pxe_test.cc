// The key escrow and the PXE plan routes of the content server (docs/GUEST-PROTOCOL.md).
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "lab/content_server/content_server.h"
#include "lab/content_server/host_credential.h"
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

// A GET on a connection that the relay of the host holding `credential` opened.
HttpResponse GetAs(int port, const std::string& credential, const std::string& target) {
  return ParseHttpResponse(
      RawExchange(port, RelayIdentifyRequest(credential) + "GET " + target + " HTTP/1.0\r\n\r\n"));
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
  const std::string credential = escrow.IssueCredential("ws-01");
  server->AttachEscrow(&escrow);
  HttpResponse r = GetAs(server->port(), credential, "/v1/escrow/key?host=ws-01");
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
  const std::string ws01 = escrow.IssueCredential("ws-01");
  const std::string ws02 = escrow.IssueCredential("ws-02");
  server->AttachEscrow(&escrow);
  EXPECT_EQ(GetAs(server->port(), ws02, "/v1/escrow/key?host=ws-02").status, 404);
  EXPECT_EQ(GetAs(server->port(), ws01, "/v1/escrow/key").status, 400);
  EXPECT_EQ(GetAs(server->port(), ws01, "/v1/escrow/key?host=bad/id").status, 400);
  escrow.SetAvailable(false);
  HttpResponse down = GetAs(server->port(), ws01, "/v1/escrow/key?host=ws-01");
  EXPECT_EQ(down.status, 503);
  EXPECT_EQ(down.body.find(kPassword), std::string::npos);
  escrow.SetAvailable(true);
  EXPECT_EQ(GetAs(server->port(), ws01, "/v1/escrow/key?host=ws-01").status, 200);
  EXPECT_EQ(escrow.lookups(), 1);
  // Only GET.
  HttpResponse post = ParseHttpResponse(RawExchange(
      server->port(), "POST /v1/escrow/key?host=ws-01 HTTP/1.0\r\nContent-Length: 0\r\n\r\n"));
  EXPECT_EQ(post.status, 405);
  server->AttachEscrow(nullptr);
  EXPECT_EQ(GetAs(server->port(), ws01, "/v1/escrow/key?host=ws-01").status, 503);
}

// A real escrow releases a key only to a principal allowed to have it: a guest that asks for
// another host's key gets 403, and so does anyone on loopback without a host's credential.
TEST(ContentServerEscrowTest, AHostGetsOnlyItsOwnKey) {
  auto server = StartServer();
  KeyEscrow escrow;
  escrow.Store("ws-01", kPassword);
  escrow.Store("ws-02", "654321-234567-345678-456789-567890-678901-789012-890123");
  const std::string ws01 = escrow.IssueCredential("ws-01");
  server->AttachEscrow(&escrow);
  HttpResponse other = GetAs(server->port(), ws01, "/v1/escrow/key?host=ws-02");
  EXPECT_EQ(other.status, 403);
  EXPECT_EQ(other.body.find("654321"), std::string::npos);
  EXPECT_NE(other.body.find("ws-01"), std::string::npos) << other.body;
  HttpResponse anonymous = Get(server->port(), "/v1/escrow/key?host=ws-01");
  EXPECT_EQ(anonymous.status, 403);
  EXPECT_EQ(anonymous.body.find(kPassword), std::string::npos);
  HttpResponse forged =
      GetAs(server->port(), "00112233445566778899aabbccddeeff", "/v1/escrow/key?host=ws-01");
  EXPECT_EQ(forged.status, 403);
  EXPECT_EQ(escrow.lookups(), 0);
  EXPECT_EQ(GetAs(server->port(), ws01, "/v1/escrow/key?host=ws-01").status, 200);
  // A credential issued anew replaces the old one.
  const std::string again = escrow.IssueCredential("ws-01");
  EXPECT_NE(again, ws01);
  EXPECT_EQ(GetAs(server->port(), ws01, "/v1/escrow/key?host=ws-01").status, 403);
  EXPECT_EQ(GetAs(server->port(), again, "/v1/escrow/key?host=ws-01").status, 200);
  server->AttachEscrow(nullptr);
}

// The relay's identify request counts only as a connection's first: a guest that sends one of its
// own (after the relay's) cannot switch to another host.
TEST(ContentServerEscrowTest, OnlyTheFirstRequestOfAConnectionIdentifiesIt) {
  auto server = StartServer();
  KeyEscrow escrow;
  escrow.Store("ws-02", kPassword);
  const std::string ws01 = escrow.IssueCredential("ws-01");
  const std::string ws02 = escrow.IssueCredential("ws-02");
  server->AttachEscrow(&escrow);
  HttpResponse r = ParseHttpResponse(
      RawExchange(server->port(), RelayIdentifyRequest(ws01) + RelayIdentifyRequest(ws02) +
                                      "GET /v1/escrow/key?host=ws-02 HTTP/1.0\r\n\r\n"));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body.find(kPassword), std::string::npos);
  // Manifests and content need no credential.
  EXPECT_EQ(Get(server->port(), "/v1/manifest?host=ws-01").status, 200);
  server->AttachEscrow(nullptr);
}

TEST(ContentServerEscrowTest, ObserverSeesEscrowRequests) {
  auto server = StartServer();
  KeyEscrow escrow;
  escrow.Store("ws-01", kPassword);
  const std::string credential = escrow.IssueCredential("ws-01");
  server->AttachEscrow(&escrow);
  std::mutex mu;
  std::vector<ContentServer::Request> seen;
  server->SetObserver([&](const ContentServer::Request& r) {
    std::lock_guard<std::mutex> lock(mu);
    seen.push_back(r);
  });
  GetAs(server->port(), credential, "/v1/escrow/key?host=ws-01");
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
