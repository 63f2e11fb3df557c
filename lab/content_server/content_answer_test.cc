// ContentServer::AnswerBytes: the routes without a socket, as lab/fuzz drives them.
#include <gtest/gtest.h>

#include "lab/content_server/content_server.h"

namespace chaoslab {
namespace {

std::unique_ptr<ContentServer> MakeServer() {
  auto server = ContentServer::Unstarted({});
  EXPECT_TRUE(server.ok()) << server.status().ToString();
  EXPECT_TRUE((*server)->Publish(291, 1, "C-00000291-00000000-00000001.sys", "bytes").ok());
  return std::move(*server);
}

TEST(ContentAnswerTest, AnswersKeepAliveRequestsInOrderAndStopsAtAnIncompleteOne) {
  auto server = MakeServer();
  std::vector<ContentServer::Request> seen;
  server->SetObserver([&](const ContentServer::Request& r) { seen.push_back(r); });
  std::string out = server->AnswerBytes(
      "GET /v1/manifest?host=h1 HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /v1/content/C-00000291-00000000-00000001.sys HTTP/1.1\r\n\r\n"
      "POST /v1/manifest HTTP/1.1\r\n\r\n"
      "GET /v1/pxe/boot HTTP/1.1\r\n");  // incomplete: no answer
  EXPECT_NE(out.find("291 1 C-00000291-00000000-00000001.sys\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\r\n\r\nbytes"), std::string::npos) << out;
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].status, 200);
  EXPECT_EQ(seen[0].host_id, "h1");
  EXPECT_EQ(seen[1].status, 200);
  EXPECT_EQ(seen[1].bytes, 5u);
  EXPECT_EQ(seen[2].status, 405);
}

// The vendor's cloud remediation: the quarantine line goes only to the hosts it was set for, in
// their manifest before the content lines; a request without a host, or with a malformed one,
// never gets it.
TEST(ContentAnswerTest, QuarantineReachesOnlyItsHostsFirstInTheirManifest) {
  auto server = MakeServer();
  ASSERT_TRUE(server->Publish(291, 2, "C-00000291-00000000-00000002.sys", "good").ok());
  const std::string bad = "C-00000291-00000000-00000001.sys";
  ASSERT_TRUE(server->Quarantine(291, bad, {"h1", "h2"}).ok());
  ASSERT_TRUE(server->Quarantine(291, bad, {"h1"}).ok());  // once per host
  const std::string line = "quarantine 291 " + bad + "\n";
  EXPECT_EQ(server->ManifestFor("h1"), line + "291 2 C-00000291-00000000-00000002.sys\n");
  EXPECT_EQ(server->ManifestFor("h3"), "291 2 C-00000291-00000000-00000002.sys\n");
  EXPECT_EQ(server->ManifestFor(""), "291 2 C-00000291-00000000-00000002.sys\n");
  std::string out = server->AnswerBytes("GET /v1/manifest?host=h2 HTTP/1.1\r\n\r\n");
  EXPECT_NE(out.find("\r\n\r\n" + line), std::string::npos) << out;
  for (const char* request :
       {"GET /v1/manifest HTTP/1.1\r\n\r\n", "GET /v1/manifest?host= HTTP/1.1\r\n\r\n",
        "GET /v1/manifest?hst=h1 HTTP/1.1\r\n\r\n",
        "GET /v1/manifest?host=h1/../h2 HTTP/1.1\r\n\r\n",
        "GET /v1/manifest?host=h%31 HTTP/1.1\r\n\r\n", "GET /v1/manifest?host=h1 HTP/1.1\r\n\r\n",
        "POST /v1/manifest?host=h1 HTTP/1.1\r\n\r\n"}) {
    const std::string answer = server->AnswerBytes(request);
    EXPECT_EQ(answer.find("quarantine"), std::string::npos) << request << " -> " << answer;
  }
  EXPECT_NE(server->AnswerBytes("GET /v1/manifest?host=h1/../h2 HTTP/1.1\r\n\r\n").find(" 400 "),
            std::string::npos);
  // Only files the cloud served, on their channel; only plain names and host ids.
  EXPECT_EQ(server->Quarantine(291, "C-00000291-00000000-00000009.sys", {"h1"}).code(),
            ErrorCode::kFailedPrecondition);
  EXPECT_EQ(server->Quarantine(290, bad, {"h1"}).code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(server->Quarantine(291, "../" + bad, {"h1"}).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(server->Quarantine(291, bad, {"h 1"}).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(server->ManifestFor("h 1").find("quarantine"), std::string::npos);
}

TEST(ContentAnswerTest, MalformedRequestGets400AndEndsTheConnection) {
  auto server = MakeServer();
  std::string out = server->AnswerBytes("BLAH\r\n\r\nGET /v1/manifest HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(out.starts_with("HTTP/1.1 400")) << out;
  EXPECT_EQ(out.find("HTTP/1.1 200"), std::string::npos) << out;
}

TEST(ContentAnswerTest, HeaderOverTheLimitGets431) {
  auto server = MakeServer();
  std::string out =
      server->AnswerBytes("GET /v1/manifest HTTP/1.1\r\nX: " + std::string(9000, 'a') + "\r\n\r\n");
  EXPECT_TRUE(out.starts_with("HTTP/1.1 431")) << out;
}

TEST(ContentAnswerTest, UnstartedRefusesBadOptions) {
  ContentServer::Options options;
  options.bind = "10.0.0.1";
  EXPECT_FALSE(ContentServer::Unstarted(options).ok());
}

}  // namespace
}  // namespace chaoslab
