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

TEST(SummarizeTest, RecoveryStatsTechnicianKeysAndDataLost) {
  RunResult run;
  HostResult never = Host("a", "g", "healthy", true, 0, false, false);
  HostResult b = Host("b", "g", "healthy", true, 1, false, true, 600);
  b.first_crash_s = 100;
  b.recovered_at_s = 700;
  b.technician_s = 1500;
  b.keys_fetched = 1;
  HostResult c = Host("c", "g", "healthy", true, 2, true, true, 1200);
  c.first_crash_s = 200;
  c.recovered_at_s = 1400;
  c.technician_s = 600;
  c.keys_fetched = 2;
  c.data_lost = "since-snapshot";
  c.data_lost_s = 3600;
  HostResult d = Host("d", "g", "failed", true, 3, true, false);
  d.first_crash_s = 50;
  d.data_lost = "all";
  d.data_lost_s = 7200;
  // An older journal: recovered, time to recover known, recovered_at_s not recorded.
  HostResult e = Host("e", "g", "healthy", true, 1, false, true, 100);
  e.first_crash_s = 300;
  run.hosts = {never, b, c, d, e};
  Summarize(&run);

  const RecoveryStats& r = run.fleet.recovery;
  // Time to recover of recovered hosts: {100, 600, 1200}.
  EXPECT_DOUBLE_EQ(*r.p50_s, 600);
  EXPECT_DOUBLE_EQ(*r.p90_s, 1080);
  EXPECT_DOUBLE_EQ(*r.p99_s, 1188);
  // Healthy for good from: a 0, e 400, b 700, c 1400, d never. 50 % = 3 of 5 hosts.
  EXPECT_DOUBLE_EQ(*r.healthy_50_s, 700);
  EXPECT_FALSE(r.healthy_90_s.has_value());  // needs all 5; d never came back
  EXPECT_FALSE(r.healthy_99_s.has_value());
  EXPECT_DOUBLE_EQ(run.fleet.technician_s, 2100);
  EXPECT_EQ(run.fleet.keys_fetched, 3);
  EXPECT_EQ(run.fleet.data_lost_hosts, 2);
  EXPECT_DOUBLE_EQ(run.fleet.data_lost_s, 10800);
  ASSERT_EQ(run.groups.size(), 1u);
  EXPECT_DOUBLE_EQ(*run.groups[0].recovery.healthy_50_s, 700);
  EXPECT_EQ(run.groups[0].keys_fetched, 3);
}

TEST(SummarizeTest, ShareHealthyCountsWholeHosts) {
  // Ten hosts back at 10, 20, ..., 100 s: 90 % is the 9th host (not rounded up to the 10th).
  RunResult run;
  for (int i = 1; i <= 10; ++i) {
    HostResult h = Host("h" + std::to_string(i), i <= 5 ? "x" : "y", "healthy", true, 1, false,
                        true, i * 10.0 - 5);
    h.first_crash_s = 5;
    h.recovered_at_s = i * 10.0;
    run.hosts.push_back(h);
  }
  Summarize(&run);
  EXPECT_DOUBLE_EQ(*run.fleet.recovery.healthy_50_s, 50);
  EXPECT_DOUBLE_EQ(*run.fleet.recovery.healthy_90_s, 90);
  EXPECT_DOUBLE_EQ(*run.fleet.recovery.healthy_99_s, 100);
  // Per group: y holds 60..100; 90 % of 5 hosts = 5 hosts.
  EXPECT_DOUBLE_EQ(*run.groups[1].recovery.healthy_50_s, 80);
  EXPECT_DOUBLE_EQ(*run.groups[1].recovery.healthy_90_s, 100);
  EXPECT_DOUBLE_EQ(*run.fleet.recovery.p50_s, 50);

  RunResult quiet;  // nothing crashed: healthy throughout, no time-to-recover figures
  quiet.hosts = {Host("a", "g", "healthy", false, 0, false, false)};
  Summarize(&quiet);
  EXPECT_DOUBLE_EQ(*quiet.fleet.recovery.healthy_99_s, 0);
  EXPECT_FALSE(quiet.fleet.recovery.p50_s.has_value());
}

TEST(HostOutageTest, Rules) {
  EXPECT_FALSE(HostOutage(Host("a", "g", "healthy", false, 0, false, false)).has_value());
  auto lost = HostOutage(Host("b", "g", "lost", true, 0, false, false));
  ASSERT_TRUE(lost.has_value());
  EXPECT_EQ(lost->from_s, 0);
  EXPECT_FALSE(lost->until_s.has_value());

  HostResult stalled = Host("c", "g", "remediating", true, 2, true, false);
  stalled.first_crash_s = 70;
  auto o = HostOutage(stalled);
  EXPECT_EQ(o->from_s, 70);
  EXPECT_FALSE(o->until_s.has_value());

  HostResult back = Host("d", "g", "healthy", true, 1, false, true, 500);
  back.first_crash_s = 70;
  back.recovered_at_s = 900;  // recorded time wins over first crash + time to recover
  EXPECT_EQ(*HostOutage(back)->until_s, 900);
  back.recovered_at_s.reset();
  EXPECT_EQ(*HostOutage(back)->until_s, 570);
  back.time_to_recover_s.reset();
  EXPECT_EQ(*HostOutage(back)->until_s, 70);
}

}  // namespace
}  // namespace chaoslab
