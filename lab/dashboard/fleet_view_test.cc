#include "lab/dashboard/fleet_view.h"

#include <gtest/gtest.h>

#include "lab/dashboard/debrief.h"

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

TEST(FleetViewTest, GamedayFleetStateFollowsTheEvents) {
  RunInfo run{"r1", "channel-291", "manual", "lab", 14400, 14940, 19620};
  run.gameday = true;
  run.services = {"check-in"};
  FleetView view(run);
  auto snap = view.Snapshot();
  EXPECT_EQ(snap["fleet"]["phase"], "waiting");
  EXPECT_EQ(snap["fleet"]["services"]["check-in"], false);
  view.Apply({14400, 0, "", "", "started", "04:00:00", "", 0});
  view.Apply({14400, 0, "", "", "key-escrow", "up", "", 0});
  auto m = view.Apply({14450, 0, "", "", "service-up", "check-in", "", 0});
  EXPECT_EQ(m["fleet"]["services"]["check-in"], true);
  EXPECT_EQ(m["fleet"]["phase"], "running");
  view.Apply({15000, 0, "a", "ws", "key-fetched", "escrow page", "remediating", 2});
  m = view.Apply({15010, 0, "", "", "paused", "", "", 0});
  EXPECT_EQ(m["fleet"]["phase"], "paused");
  EXPECT_EQ(m["fleet"]["keys_fetched"], 1);
  EXPECT_EQ(m["fleet"]["escrow"], "up");
  view.Apply({15010, 0, "", "", "key-escrow", "down", "", 0});
  EXPECT_EQ(view.Fleet()["escrow"], "down");
  // A service working off its backlog is not up yet.
  view.Apply({15020, 0, "", "", "service-catching-up", "check-in", "", 0});
  EXPECT_EQ(view.Fleet()["services"]["check-in"], false);
  EXPECT_EQ(view.End("finished")["status"], "finished");
  EXPECT_EQ(view.Fleet()["phase"], "finished");
}

TEST(DebriefTest, CurvesTimesAndMistakes) {
  RunResult team;
  team.run_id = "r1";
  team.release_s = 14940;
  team.scenario_end_s = 15400;
  HostResult a, b;
  a.id = "a";
  a.first_crash_s = 10;
  a.recovered_at_s = 300;
  a.time_to_recover_s = 290;
  a.bitlocker = true;
  b.id = "b";
  b.first_crash_s = 12;
  team.hosts = {a, b};
  team.fleet.crashed = 2;
  team.fleet.recovered = 1;
  EXPECT_EQ(DownCurve(team), nlohmann::json::parse("[[0.0,0],[10.0,1],[12.0,2],[300.0,1]]"));
  std::vector<JournalEvent> events = {
      {"r1", 1, 15000, 0, "a", "boot-menu", "safe-mode"},
      {"r1", 2, 15050, 0, "a", "command", "@@winsim cmd=unlock rc=1 reason=bad-password"},
      {"r1", 3, 15060, 0, "a", "console-input", "restart"},  // before the delete
      {"r1", 4, 15070, 0, "a", "boot-menu", "safe-mode"},
      {"r1", 5, 15100, 0, "a", "command", "@@winsim cmd=del rc=0 deleted=1"},
      {"r1", 6, 15200, 0, "a", "console-input", "restart"},  // fine: after the revert (15100)
      {"r1", 7, 15050, 0, "b", "boot-menu", "safe-mode"},
      {"r1", 8, 15060, 0, "b", "command", "@@winsim cmd=del rc=0 deleted=1"},
      {"r1", 9, 15070, 0, "b", "console-input", "restart"},  // before the revert
  };
  std::vector<JournalAction> actions = {
      {"r1", 1, 15040, 0, "trainee", "a", "key-fetch", "", ""},
      {"r1", 2, 15300, 0, "trainee", "b", "reimage", "", ""},
      {"r1", 3, 15310, 0, "instructor", "", "eta-ask", "when?", ""},
  };
  Baseline base;
  base.available = true;
  base.how = "simulated";
  base.run = team;
  base.run.runbook = "safe-mode-delete";
  auto d = MakeDebrief(team, events, actions, base, 15100);
  std::vector<std::string> kinds;
  for (const auto& m : d["mistakes"]) kinds.push_back(m["kind"]);
  EXPECT_EQ(kinds, (std::vector<std::string>{"wrong-password", "restart-before-delete",
                                             "restart-before-revert", "reimage"}));
  EXPECT_EQ(d["keys_fetched"], 1);
  EXPECT_EQ(d["hosts"].size(), 2u);
  EXPECT_EQ(d["hosts"][0]["first_action_s"], 15000 - 14940);
  EXPECT_EQ(d["hosts"][0]["hands_on_s"], 300 - 60);
  EXPECT_EQ(d["baseline"]["runbook"], "safe-mode-delete");
  EXPECT_EQ(d["baseline"]["curve"], d["team"]["curve"]);
  EXPECT_EQ(d["eta"].size(), 1u);
  EXPECT_EQ(d["team"]["end_s"], 460);
}

}  // namespace
}  // namespace chaoslab::dashboard
