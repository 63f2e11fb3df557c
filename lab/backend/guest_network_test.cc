#include "lab/backend/guest_network.h"

#include <gtest/gtest.h>

namespace chaoslab {
namespace {

NetworkLink Link() {
  NetworkLink link;
  link.content_port = 8080;
  return link;
}

TEST(GuestNetworkTest, OneGuestfwdToTheRelayWithTheLinksFigures) {
  NetworkLink link = Link();
  link.delay_ms = 120;
  link.jitter_ms = 30;
  link.loss_percent = 3;
  auto netdev = GuestfwdNetdev("/opt/lab/chaoslab-relay", link);
  ASSERT_TRUE(netdev.ok()) << netdev.status().ToString();
  EXPECT_EQ(*netdev,
            "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:80-cmd:/opt/lab/chaoslab-relay --port "
            "8080 --loss-percent 3 --delay-ms 120 --jitter-ms 30");
}

TEST(GuestNetworkTest, TheCredentialFileIsPassedByPathNeverByValue) {
  NetworkLink link = Link();
  link.credential_file = "/run/lab/r1/credentials/ws-01";
  auto netdev = GuestfwdNetdev("/bin/relay", link);
  ASSERT_TRUE(netdev.ok()) << netdev.status().ToString();
  EXPECT_EQ(*netdev,
            "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:80-cmd:/bin/relay --port 8080 "
            "--credential-file /run/lab/r1/credentials/ws-01");
}

// libslirp splits the cmd: on spaces and QEMU the option on commas: a word that holds either
// would become other arguments of the relay.
TEST(GuestNetworkTest, PathsThatWouldSplitIntoOtherWordsAreRefused) {
  NetworkLink link = Link();
  EXPECT_EQ(GuestfwdNetdev("/bin/relay --host 10.0.0.1", link).status().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(GuestfwdNetdev("/bin/re,lay", link).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(GuestfwdNetdev("", link).status().code(), ErrorCode::kInvalidArgument);
  link.credential_file = "/tmp/x --port 1";
  auto bad = GuestfwdNetdev("/bin/relay", link);
  EXPECT_EQ(bad.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("credential file"), std::string::npos);
}

TEST(GuestNetworkTest, FiguresOutOfRangeAreRefusedWithWhatIsWrong) {
  NetworkLink link = Link();
  link.content_port = 70000;
  EXPECT_NE(CheckNetworkLink(link).message().find("content_port 70000"), std::string::npos);
  link = Link();
  link.loss_percent = 101;
  EXPECT_NE(CheckNetworkLink(link).message().find("loss 101"), std::string::npos);
  link = Link();
  link.jitter_ms = -1;
  EXPECT_EQ(CheckNetworkLink(link).code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(CheckNetworkLink(Link()).ok());
}

TEST(GuestNetworkTest, CommasInOptionValuesAreDoubled) {
  EXPECT_EQ(QemuOptEscape("a,b,,c"), "a,,b,,,,c");
  EXPECT_EQ(QemuOptEscape("plain"), "plain");
}

}  // namespace
}  // namespace chaoslab
