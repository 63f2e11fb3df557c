// The HTTP client against a loopback server (Linux only: the server is POSIX). The protocol's
// parsers are tested in cloud_client_unit_test.cc, which also runs on Windows.
#include "agents/sensor/cloud_client.h"

#include <gtest/gtest.h>

#include "agents/sensor/channel_file.h"
#include "agents/sensor/test_http_server.h"

namespace chaoslab::content {
namespace {

using std::chrono::milliseconds;

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
  auto silent = HttpGet({"127.0.0.1", ntohs(addr.sin_port)}, "/", milliseconds(300));
  EXPECT_EQ(silent.status().code(), ErrorCode::kTimeout) << silent.status().ToString();
  close(fd);
}

}  // namespace
}  // namespace chaoslab::content
