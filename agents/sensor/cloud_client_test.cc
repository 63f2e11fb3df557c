#include "agents/sensor/cloud_client.h"

#include <gtest/gtest.h>

#include "agents/sensor/channel_file.h"
#include "agents/sensor/test_http_server.h"

namespace chaoslab::content {
namespace {

using std::chrono::milliseconds;

TEST(EndpointTest, ParsesIpv4LiteralsOnly) {
  auto ep = ParseEndpoint("10.0.2.100:80");
  ASSERT_TRUE(ep.ok());
  EXPECT_EQ(ep->ip, "10.0.2.100");
  EXPECT_EQ(ep->port, 80);
  for (const char* bad : {"", "10.0.2.100", "content.lab:80", "10.0.2.100:0", "10.0.2.100:65536",
                          "10.0.2.100:8x", "[::1]:80", "10.0.2:80"}) {
    EXPECT_FALSE(ParseEndpoint(bad).ok()) << bad;
  }
}

TEST(ManifestTest, ParsesLinesAndRejectsUnsafeNames) {
  auto m = ParseManifest("291 3 C-00000291-00000000-00000003.sys\r\n\n290 1 " +
                         ChannelFileName(1, 290) + "\n");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_EQ(m->size(), 2u);
  EXPECT_EQ((*m)[0].content_version, 3u);
  EXPECT_EQ((*m)[1].channel, 290u);
  EXPECT_TRUE(ParseManifest("").value().empty());
  auto bad = ParseManifest("\n291 3 ../../etc/passwd\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("manifest line 2"), std::string::npos);
  EXPECT_FALSE(ParseManifest("291 x C-00000291-00000000-00000003.sys").ok());
  EXPECT_FALSE(ParseManifest("291 3").ok());
  EXPECT_FALSE(ParseManifest("291 4 C-00000291-00000000-00000003.sys").ok());
}

TEST(HttpGetTest, FetchesFromLoopbackServer) {
  testing::TestHttpServer server;
  const std::string content = MakeChannelFile(ChannelFileKind::kGood, 3);
  server.Set("/v1/content/x?host=h1", {200, content, ""});
  const Endpoint ep = ParseEndpoint(server.endpoint()).value();
  auto r = HttpGet(ep, "/v1/content/x?host=h1", milliseconds(2000));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, content);
  auto missing = HttpGet(ep, "/v1/content/y", milliseconds(2000));
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(server.requests().size(), 2u);
}

TEST(HttpGetTest, RejectsMalformedAndCutResponses) {
  testing::TestHttpServer server;
  server.Set("/garbage", {0, "", "hello there"});
  server.Set("/cut", {0, "", "HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\nabc"});
  const Endpoint ep = ParseEndpoint(server.endpoint()).value();
  EXPECT_EQ(HttpGet(ep, "/garbage", milliseconds(2000)).status().code(), ErrorCode::kCorruption);
  EXPECT_EQ(HttpGet(ep, "/cut", milliseconds(2000)).status().code(), ErrorCode::kCorruption);
}

TEST(HttpGetTest, ClosedPortIsUnavailableAndSilentPeerTimesOut) {
  uint16_t port = 0;
  {
    testing::TestHttpServer server;  // find a free port, then close it
    port = server.port();
  }
  auto refused = HttpGet({"127.0.0.1", port}, "/", milliseconds(1000));
  EXPECT_EQ(refused.status().code(), ErrorCode::kUnavailable) << refused.status().ToString();

  // A listener that never accepts or answers: the deadline must end the call.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  listen(fd, 1);
  const auto start = std::chrono::steady_clock::now();
  auto silent = HttpGet({"127.0.0.1", ntohs(addr.sin_port)}, "/", milliseconds(300));
  EXPECT_EQ(silent.status().code(), ErrorCode::kTimeout) << silent.status().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  close(fd);
}

TEST(HostIdTest, Validates) {
  EXPECT_TRUE(IsValidHostId("ws-0001_a"));
  EXPECT_FALSE(IsValidHostId(""));
  EXPECT_FALSE(IsValidHostId("a b"));
  EXPECT_FALSE(IsValidHostId("a&b=c"));
}

}  // namespace
}  // namespace chaoslab::content
