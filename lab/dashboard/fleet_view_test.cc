#include "lab/dashboard/fleet_view.h"

#include <gtest/gtest.h>

namespace chaoslab::dashboard {
namespace {

LiveEvent State(double t, const std::string& host, const std::string& state, int crashes = 0) {
  return {t, 0, host, "ws-711", "state", "-> " + state, state, crashes};
}

TEST(FleetViewTest, TracksHostsAndTheRecoveryCurve) {
  FleetView view({"r1", "channel-291", "reboot-15", "demo-lab", 14400, 14940, 19620});
  view.Apply(State(14400, "a", "booting"));
  view.Apply(State(14400, "b", "booting"));
  view.Apply(State(14445, "a", "healthy"));
  auto m = view.Apply(State(14445, "b", "healthy"));
  ASSERT_TRUE(m.contains("curve"));
  EXPECT_EQ(m["curve"], nlohmann::json::array({14445.0, 2, 0}));
  view.Apply({14960, 0, "a", "ws-711", "crash", "PAGE_FAULT_IN_NONPAGED_AREA", "healthy", 1});
  view.Apply(State(14960, "a", "crashed", 1));
  view.Apply(State(14975, "a", "booting", 1));
  m = view.Apply(State(15000, "a", "boot-loop", 2));
  EXPECT_EQ(m["host"]["state"], "boot-loop");
  EXPECT_EQ(m["host"]["crashes"], 2);
  EXPECT_TRUE(m["host"]["boot_looped"].get<bool>());
  view.Apply(State(19700, "a", "recovered", 3));

  const auto& a = view.hosts().at("a");
  EXPECT_EQ(a.state, "recovered");
  EXPECT_TRUE(a.boot_looped);  // remembered after it recovered
  // up/down: 0/0 while booting, 2/0 once up, 1/1 from the crash (booting again after a crash
  // still counts as down), 2/0 after the recovery.
  const auto& curve = view.curve();
  ASSERT_EQ(curve.size(), 4u);
  EXPECT_EQ(curve[0].up + curve[0].down, 0);
  EXPECT_EQ(curve[1].up, 2);
  EXPECT_EQ(curve[2].up, 1);
  EXPECT_EQ(curve[2].down, 1);
  EXPECT_DOUBLE_EQ(curve[2].scenario_s, 14960);
  EXPECT_EQ(curve[3].up, 2);
  EXPECT_DOUBLE_EQ(curve[3].scenario_s, 19700);

  auto snap = view.Snapshot();
  EXPECT_EQ(snap["type"], "snapshot");
  EXPECT_EQ(snap["run"]["scenario"], "channel-291");
  EXPECT_EQ(snap["hosts"].size(), 2u);
  EXPECT_EQ(snap["events"].size(), 9u);
  EXPECT_EQ(snap["curve"].size(), 4u);
  EXPECT_DOUBLE_EQ(snap["now"].get<double>(), 19700);
  view.End("finished");
  EXPECT_EQ(view.Snapshot()["run"]["status"], "finished");
}

TEST(FleetViewTest, FleetEventsGoToTheTimelineOnlyAndItIsBounded) {
  FleetView view({}, 3);
  for (int i = 0; i < 5; ++i) {
    auto m = view.Apply({100.0 + i, 0, "", "", "release", "v2", "", 0});
    EXPECT_FALSE(m.contains("host"));
    EXPECT_FALSE(m.contains("curve"));
  }
  auto snap = view.Snapshot();
  ASSERT_EQ(snap["events"].size(), 3u);
  EXPECT_DOUBLE_EQ(snap["events"][0]["t"].get<double>(), 102);  // the oldest ones went
  EXPECT_TRUE(snap["hosts"].empty());
}

}  // namespace
}  // namespace chaoslab::dashboard
