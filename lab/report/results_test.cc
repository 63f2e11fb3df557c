#include "lab/report/results.h"

#include <gtest/gtest.h>

namespace chaoslab {
namespace {

HostResult Host(std::string id, std::string group, std::string state, bool exposed, int crashes,
                bool boot_loop, bool recovered, std::optional<double> recover_s = std::nullopt) {
  HostResult h;
  h.id = std::move(id);
  h.group = std::move(group);
  h.final_state = std::move(state);
  h.exposed = exposed;
  h.crashes = crashes;
  h.boot_loop = boot_loop;
  h.recovered = recovered;
  h.time_to_recover_s = recover_s;
  return h;
}

TEST(SummarizeTest, GroupsInOrderFirstSeenWithRatesAndMttr) {
  RunResult run;
  run.hosts = {
      Host("ws-1", "workstations", "healthy", true, 2, true, true, 600),
      Host("dc-1", "servers", "failed", true, 1, false, false),
      Host("ws-2", "workstations", "healthy", true, 1, false, true, 300),
      Host("ws-3", "workstations", "healthy", false, 0, false, false),
      Host("dc-2", "servers", "lost", true, 3, true, false),
      // Recovered but no time recorded: counted as recovered, left out of MTTR.
      Host("ws-4", "workstations", "healthy", true, 1, false, true),
  };
  run.groups.push_back(GroupResult{.name = "stale"});  // replaced, not appended to
  Summarize(&run);

  ASSERT_EQ(run.groups.size(), 2u);
  const GroupResult& ws = run.groups[0];
  EXPECT_EQ(ws.name, "workstations");
  EXPECT_EQ(ws.hosts, 4);
  EXPECT_EQ(ws.exposed, 3);
  EXPECT_EQ(ws.crashed, 3);
  EXPECT_EQ(ws.boot_looped, 1);
  EXPECT_EQ(ws.recovered, 3);
  EXPECT_DOUBLE_EQ(ws.crash_rate, 1.0);
  EXPECT_DOUBLE_EQ(ws.boot_loop_rate, 1.0 / 3);
  ASSERT_TRUE(ws.mttr_s.has_value());
  EXPECT_DOUBLE_EQ(*ws.mttr_s, 450);

  const GroupResult& dc = run.groups[1];
  EXPECT_EQ(dc.name, "servers");
  EXPECT_EQ(dc.failed, 1);
  EXPECT_EQ(dc.lost, 1);
  EXPECT_EQ(dc.recovered, 0);
  EXPECT_DOUBLE_EQ(dc.boot_loop_rate, 0.5);
  EXPECT_FALSE(dc.mttr_s.has_value());

  EXPECT_EQ(run.fleet.name, "fleet");
  EXPECT_EQ(run.fleet.hosts, 6);
  EXPECT_EQ(run.fleet.exposed, 5);
  EXPECT_EQ(run.fleet.crashed, 5);
  EXPECT_DOUBLE_EQ(run.fleet.crash_rate, 1.0);
  EXPECT_DOUBLE_EQ(run.fleet.boot_loop_rate, 0.4);
  EXPECT_EQ(run.fleet.failed, 1);
  EXPECT_EQ(run.fleet.lost, 1);
  EXPECT_DOUBLE_EQ(*run.fleet.mttr_s, 450);
}

TEST(SummarizeTest, NothingExposedGivesZeroRates) {
  RunResult run;
  run.hosts = {Host("a", "g", "healthy", false, 0, false, false)};
  Summarize(&run);
  EXPECT_EQ(run.fleet.crash_rate, 0);
  EXPECT_EQ(run.fleet.boot_loop_rate, 0);
  EXPECT_FALSE(run.fleet.mttr_s.has_value());

  RunResult empty;
  Summarize(&empty);
  EXPECT_TRUE(empty.groups.empty());
  EXPECT_EQ(empty.fleet.hosts, 0);
  EXPECT_EQ(empty.fleet.crash_rate, 0);
}

}  // namespace
}  // namespace chaoslab
