// The content-server protocol's parsers: endpoints, manifests, host ids. No network, so the same
// file runs on Linux and, cross-compiled, under Wine (agents/sensor/windows).
#include <gtest/gtest.h>

#include "agents/sensor/channel_file.h"
#include "agents/sensor/cloud_client.h"

namespace chaoslab::content {
namespace {

TEST(EndpointTest, ParsesIpv4LiteralsOnly) {
  auto ep = ParseEndpoint("10.0.2.100:80");
  ASSERT_TRUE(ep.ok());
  EXPECT_EQ(ep->ip, "10.0.2.100");
  EXPECT_EQ(ep->port, 80);
  for (const char* bad : {"", "10.0.2.100", "content.lab:80", "10.0.2.100:0", "10.0.2.100:65536",
                          "10.0.2.100:8x", "[::1]:80", "10.0.2:80", "10.0.2.256:80", "10.0.02.1:80",
                          "10.0.2.1.5:80", "10..2.1:80", "10.0.2.:80"}) {
    EXPECT_FALSE(ParseEndpoint(bad).ok()) << bad;
  }
  for (const char* good : {"127.0.0.1:8080", "0.0.0.0:1", "255.255.255.255:65535"}) {
    EXPECT_TRUE(ParseEndpoint(good).ok()) << good;
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

// The vendor's cloud remediation: a quarantine names a canonical file of its channel and nothing
// else, so it cannot reach outside the sensor's content folder.
TEST(ManifestTest, QuarantineLinesNameOnlyChannelFilesOfTheirChannel) {
  auto m = ParseManifest("quarantine 291 " + ChannelFileName(1) + "\n291 2 " + ChannelFileName(2) +
                         "\n");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_EQ(m->size(), 2u);
  EXPECT_TRUE((*m)[0].quarantine);
  EXPECT_EQ((*m)[0].channel, 291u);
  EXPECT_EQ((*m)[0].content_version, 1u);
  EXPECT_EQ((*m)[0].file_name, ChannelFileName(1));
  EXPECT_FALSE((*m)[1].quarantine);
  for (const std::string& bad : std::vector<std::string>{
           "quarantine 291 ../../Windows/System32/ntoskrnl.exe",
           "quarantine 291 ../" + ChannelFileName(1),
           "quarantine 291 " + ChannelFileName(1) + "/../../x",
           "quarantine 291 " + ChannelFileName(1, 290), "quarantine x " + ChannelFileName(1),
           "quarantine 291", "quarantine 291 " + ChannelFileName(1) + " extra",
           "quarantine 291 C-00000291-00000000-0000000x.sys", "quarantine 291 /etc/passwd"}) {
    auto r = ParseManifest(bad + "\n");
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find("manifest line 1"), std::string::npos);
    }
  }
}

TEST(HostIdTest, Validates) {
  EXPECT_TRUE(IsValidHostId("ws-0001_a"));
  EXPECT_FALSE(IsValidHostId(""));
  EXPECT_FALSE(IsValidHostId("a b"));
  EXPECT_FALSE(IsValidHostId("a&b=c"));
}

}  // namespace
}  // namespace chaoslab::content
