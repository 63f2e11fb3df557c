#include "lab/backend/qmp_events.h"

#include <gtest/gtest.h>

namespace chaoslab {
namespace {

using nlohmann::json;

TEST(QmpEventsTest, EachEventBecomesItsHostEvent) {
  auto panicked = ReadQmpEvent("GUEST_PANICKED", json{{"action", "pause"}});
  EXPECT_EQ(panicked.event, HostEventKind::kPanicked);
  EXPECT_EQ(panicked.detail, R"({"action":"pause"})");
  EXPECT_EQ(ReadQmpEvent("RESET", json{{"guest", true}}).detail, "guest");
  EXPECT_EQ(ReadQmpEvent("RESET", json{{"guest", false}}).detail, "host");
  EXPECT_EQ(ReadQmpEvent("RESET", json()).detail, "host");
  EXPECT_EQ(ReadQmpEvent("STOP", json()).event, HostEventKind::kStopped);
  EXPECT_EQ(ReadQmpEvent("RESUME", json()).event, HostEventKind::kResumed);
  auto off = ReadQmpEvent("SHUTDOWN", json{{"guest", true}, {"reason", "guest-shutdown"}});
  EXPECT_EQ(off.event, HostEventKind::kShutdown);
  EXPECT_EQ(off.detail, "guest");
  EXPECT_EQ(off.reset_by, "");
  EXPECT_EQ(ReadQmpEvent("SHUTDOWN", json{{"reason", "host-qmp-quit"}}).detail, "host");
}

// Resets end QEMU (-action reboot=shutdown): the backend restarts it and reports kReset itself.
TEST(QmpEventsTest, AShutdownForAResetIsNoEventButSaysWhoReset) {
  auto guest = ReadQmpEvent("SHUTDOWN", json{{"guest", true}, {"reason", "guest-reset"}});
  EXPECT_FALSE(guest.event.has_value());
  EXPECT_EQ(guest.reset_by, "guest");
  auto host = ReadQmpEvent("SHUTDOWN", json{{"guest", false}, {"reason", "host-qmp-system-reset"}});
  EXPECT_FALSE(host.event.has_value());
  EXPECT_EQ(host.reset_by, "host");
}

TEST(QmpEventsTest, OtherEventsAndOddDataMeanNothing) {
  EXPECT_FALSE(ReadQmpEvent("BLOCK_IO_ERROR", json::object()).event.has_value());
  EXPECT_FALSE(ReadQmpEvent("", json()).event.has_value());
  EXPECT_EQ(ReadQmpEvent("RESET", json{{"guest", "yes"}}).detail, "host");  // not a boolean
  EXPECT_EQ(ReadQmpEvent("SHUTDOWN", json{{"reason", 7}}).event, HostEventKind::kShutdown);
  EXPECT_EQ(ReadQmpEvent("SHUTDOWN", json::array()).event, HostEventKind::kShutdown);
}

}  // namespace
}  // namespace chaoslab
