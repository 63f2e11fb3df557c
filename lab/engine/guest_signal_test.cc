#include "lab/engine/guest_signal.h"

#include <gtest/gtest.h>

namespace chaoslab {
namespace {

TEST(GuestSignalTest, ParsesProtocolLines) {
  auto s = ParseGuestSignal("@@csagent fetched channel=291 version=2");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->kind, GuestSignal::Kind::kFetched);
  EXPECT_EQ(s->Int("version"), 2);
  EXPECT_EQ(s->Int("missing", 7), 7);

  s = ParseGuestSignal("@@csagent quarantined channel=291 version=2 ms=61");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->kind, GuestSignal::Kind::kQuarantined);
  EXPECT_EQ(s->Int("ms"), 61);

  s = ParseGuestSignal(
      "@@bugcheck code=0x00000050 name=PAGE_FAULT_IN_NONPAGED_AREA module=csagent.sys");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->kind, GuestSignal::Kind::kBugcheck);
  EXPECT_EQ(s->Str("name"), "PAGE_FAULT_IN_NONPAGED_AREA");

  s = ParseGuestSignal("@@winsim ready");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->kind, GuestSignal::Kind::kReady);
  EXPECT_EQ(ParseGuestSignal("@@csagent heartbeat channel=291 version=3 cloud=ok")->Str("cloud"),
            "ok");
}

TEST(GuestSignalTest, FindsMarkerBehindKernelChatter) {
  auto s = ParseGuestSignal("[    1.234] virtio_net: x@@winsim phase=drivers");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->kind, GuestSignal::Kind::kPhase);
  EXPECT_EQ(s->Str("phase"), "drivers");
}

TEST(GuestSignalTest, IgnoresProseAndUnknownMarkers) {
  EXPECT_FALSE(ParseGuestSignal(":( Your device ran into a problem and needs to restart."));
  EXPECT_FALSE(ParseGuestSignal("@@other thing=1"));
  EXPECT_FALSE(ParseGuestSignal("@@csagent dance"));
  EXPECT_FALSE(ParseGuestSignal(""));
}

// lab_fuzz_guest_signal's oracle (every field is a key=value word): a word starting with '=' became
// a field with an empty key. It is no field (and no verb); the rest of the line still counts.
TEST(GuestSignalTest, AWordWithoutAKeyIsNoField) {
  auto s = ParseGuestSignal("@@csagent =x fetched =7 channel=291 version=2");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->kind, GuestSignal::Kind::kFetched);
  EXPECT_EQ(s->fields.count(""), 0u);
  EXPECT_EQ(s->fields.size(), 2u);
  EXPECT_EQ(s->Int("version"), 2);
}

}  // namespace
}  // namespace chaoslab
