// Services that work off a backlog (config::ServiceBacklog) in the recovery model, on a scripted
// driver: the backlog grows while the service or an input is not up, shrinks at its rate once all
// are, and the service is up only when it is gone. Times are scenario seconds; rates hours of
// work per hour, so seconds of work per second.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "lab/recovery/recovery.h"
#include "lab/recovery/scripted_driver.h"

namespace chaoslab::recovery {
namespace {

using S = ServiceState;

// Groups "crew" and "kiosk" (two hosts each, profiles 0 and 1, both watched) and services on them.
struct BacklogWorld : World {
  BacklogWorld() {
    setup.groups[0].name = "crew";
    setup.groups[0].count = 2;
    config::GroupConfig kiosk = setup.groups[0];
    kiosk.name = "kiosk";
    setup.groups.push_back(kiosk);
  }
  // A service needing one host of `group`, with a backlog if `grows` > 0.
  void AddService(const std::string& name, const std::string& group, double grows = 0,
                  double works_off = 0, std::vector<std::string> inputs = {}, double cap = 0) {
    config::ServiceConfig svc;
    svc.name = name;
    svc.needs.push_back({group, 1});
    if (grows > 0) {
      svc.backlog.emplace();
      svc.backlog->grows = grows;
      svc.backlog->works_off = works_off;
      svc.backlog->cap = cap;
      svc.backlog->inputs = std::move(inputs);
    }
    setup.services.push_back(svc);
  }
  void MakeProfiles() {
    Profile crew = Default(), kiosk = Default();
    kiosk.group = 1;
    crew.watched = kiosk.watched = true;
    profiles = {crew, kiosk};
  }
};

// The lab boots every host at 0; it is healthy at 50.
uint32_t BootedHost(Model* m, uint16_t profile) {
  const uint32_t h = m->AddHost(profile);
  m->Move(h, HostState::kBooting, 0);
  m->Healthy(h, 50);
  return h;
}

// Runbooks stay off (automatic = false): the tests move hosts themselves.
ModelOptions Manual() { return {.automatic = false, .ordered_events = true}; }

std::vector<std::pair<S, double>> Changes(const ScriptedDriver& d, size_t service) {
  std::vector<std::pair<S, double>> out;
  for (const auto& c : d.services)
    if (c.service == service) out.push_back({c.state, c.at});
  return out;
}

// A host down from `from` until healthy again at `to` (through the agenda: both signals wait).
void Outage(Model* m, uint32_t host, double from, double to) {
  m->Crashed(host, from, true, "X");
  m->Healthy(host, to);
}

// crew-scheduling on the "crew" group with a backlog of its own outages, its model, and `hosts`
// crew hosts booted.
struct CrewScheduling {
  BacklogWorld w;
  ScriptedDriver d;
  std::unique_ptr<Model> m;
  std::vector<uint32_t> hosts;
  CrewScheduling(double grows, double works_off, double cap = 0, int host_count = 1) {
    w.AddService("crew-scheduling", "crew", grows, works_off, {}, cap);
    w.MakeProfiles();
    m = std::make_unique<Model>(w.setup, w.runbook, w.profiles, &d, Manual());
    for (int i = 0; i < host_count; ++i) hosts.push_back(BootedHost(m.get(), 0));
  }
};

TEST(ServiceBacklogTest, GrowsWhileDownAndWorksOffAtItsRate) {
  CrewScheduling c(/*grows=*/2, /*works_off=*/0.5);
  Model& m = *c.m;
  ScriptedDriver& d = c.d;
  d.RunUntil(&m, 100);
  EXPECT_EQ(m.service_state(0), S::kUp) << "the lab's start piles up no work";
  Outage(&m, c.hosts[0], 3600, 7200);
  d.RunUntil(&m, 7300);
  // Down an hour at 2 h of work per hour: 2 h of backlog, worked off at 0.5: 4 h more.
  EXPECT_EQ(m.service_state(0), S::kCatchingUp);
  EXPECT_DOUBLE_EQ(m.Backlog(0, 7300), 7200 - 0.5 * 100);
  d.RunUntil(&m, 1e6);
  EXPECT_EQ(m.service_state(0), S::kUp);
  EXPECT_EQ(
      Changes(d, 0),
      (std::vector<std::pair<S, double>>{
          {S::kUp, 50}, {S::kDown, 3600}, {S::kCatchingUp, 7200}, {S::kUp, 7200 + 4 * 3600.0}}));
  EXPECT_EQ(d.backlog_plans, 1) << "one signal, at the predicted end";
  const auto figures = m.ServiceFigures(3000, 30000);
  EXPECT_DOUBLE_EQ(figures[0].downtime_s, 5 * 3600.0);
  EXPECT_DOUBLE_EQ(figures[0].catching_up_s, 4 * 3600.0);
  EXPECT_DOUBLE_EQ(*figures[0].down_at_s, 600);
  EXPECT_DOUBLE_EQ(*figures[0].up_again_s, 7200 + 4 * 3600.0 - 3000);
  EXPECT_TRUE(figures[0].up_at_end);
}

TEST(ServiceBacklogTest, GrowsWhileAnInputIsDownThoughItsOwnHostsAreUp) {
  BacklogWorld w;
  w.AddService("crew-scheduling", "crew", 1, 1, {"check-in"});
  w.AddService("check-in", "kiosk");  // no backlog: up as soon as its kiosks are
  w.MakeProfiles();
  ScriptedDriver d;
  Model m(w.setup, w.runbook, w.profiles, &d, Manual());
  BootedHost(&m, 0);
  const uint32_t kiosk = BootedHost(&m, 1);
  d.RunUntil(&m, 100);
  EXPECT_EQ(m.service_state(0), S::kUp);
  Outage(&m, kiosk, 3600, 5400);
  d.RunUntil(&m, 5400);
  EXPECT_EQ(m.service_state(1), S::kUp);
  EXPECT_EQ(m.service_state(0), S::kCatchingUp) << "its input was down for half an hour";
  EXPECT_DOUBLE_EQ(m.Backlog(0, 5400), 1800);
  d.RunUntil(&m, 1e6);
  EXPECT_EQ(Changes(d, 0), (std::vector<std::pair<S, double>>{
                               {S::kUp, 50}, {S::kCatchingUp, 3600}, {S::kUp, 7200}}));
  EXPECT_EQ(Changes(d, 1),
            (std::vector<std::pair<S, double>>{{S::kUp, 50}, {S::kDown, 3600}, {S::kUp, 5400}}));
  const auto figures = m.ServiceFigures(100, 10000);
  EXPECT_DOUBLE_EQ(figures[0].downtime_s, 3600);
  EXPECT_DOUBLE_EQ(figures[0].catching_up_s, 3600);
  EXPECT_DOUBLE_EQ(figures[1].downtime_s, 1800);
  EXPECT_DOUBLE_EQ(figures[1].catching_up_s, 0);
}

TEST(ServiceBacklogTest, AnInputCatchingUpIsNotUpForTheServicesAfterIt) {
  BacklogWorld w;
  w.AddService("crew-scheduling", "crew", 1, 1, {"ops"});
  w.AddService("ops", "kiosk", 1, 2);
  w.MakeProfiles();
  ScriptedDriver d;
  Model m(w.setup, w.runbook, w.profiles, &d, Manual());
  BootedHost(&m, 0);
  const uint32_t kiosk = BootedHost(&m, 1);
  Outage(&m, kiosk, 3600, 5400);
  d.RunUntil(&m, 1e6);
  // ops: down 30 min, 30 min of work worked off at 2: up at 5400 + 900. crew-scheduling piles up
  // work until then (2700 s) and works it off at 1.
  EXPECT_EQ(Changes(d, 1).back(), std::make_pair(S::kUp, 6300.0));
  EXPECT_EQ(Changes(d, 0), (std::vector<std::pair<S, double>>{
                               {S::kUp, 50}, {S::kCatchingUp, 3600}, {S::kUp, 9000}}));
}

TEST(ServiceBacklogTest, ASecondOutageDuringCatchUpReplansItsEnd) {
  CrewScheduling c(1, 1);
  Model& m = *c.m;
  ScriptedDriver& d = c.d;
  Outage(&m, c.hosts[0], 3600, 5400);  // 1800 s of work: up at 7200, had nothing else happened
  d.RunUntil(&m, 5400);
  // 1200 s left at 6000, growing again, 1800 s at 6600: up at 8400.
  Outage(&m, c.hosts[0], 6000, 6600);
  d.RunUntil(&m, 7300);
  EXPECT_EQ(m.service_state(0), S::kCatchingUp) << "the first plan's signal no longer counts";
  EXPECT_DOUBLE_EQ(m.Backlog(0, 7300), 1100);
  d.RunUntil(&m, 1e6);
  EXPECT_EQ(Changes(d, 0), (std::vector<std::pair<S, double>>{{S::kUp, 50},
                                                              {S::kDown, 3600},
                                                              {S::kCatchingUp, 5400},
                                                              {S::kDown, 6000},
                                                              {S::kCatchingUp, 6600},
                                                              {S::kUp, 8400}}));
  const auto figures = m.ServiceFigures(100, 9000);
  EXPECT_DOUBLE_EQ(figures[0].downtime_s, 8400 - 3600);
  EXPECT_DOUBLE_EQ(figures[0].catching_up_s, 600 + 1800);
}

TEST(ServiceBacklogTest, HostsThatChangeNothingForItCostNoNewPlan) {
  CrewScheduling c(1, 1, 0, /*host_count=*/2);
  Model& m = *c.m;
  ScriptedDriver& d = c.d;
  Outage(&m, c.hosts[0], 3600, 5400);
  m.Crashed(c.hosts[1], 3600, true, "X");
  d.RunUntil(&m, 5400);
  EXPECT_EQ(d.backlog_plans, 1);
  m.Healthy(c.hosts[1], 6000);  // one host of the two was enough: the rate stays, so does the plan
  d.RunUntil(&m, 1e6);
  EXPECT_EQ(d.backlog_plans, 1);
  EXPECT_EQ(Changes(d, 0).back(), std::make_pair(S::kUp, 7200.0));
}

TEST(ServiceBacklogTest, ACapStopsTheGrowthButNotTheCatchUp) {
  CrewScheduling c(2, 1, /*cap=*/3600);
  Model& m = *c.m;
  ScriptedDriver& d = c.d;
  Outage(&m, c.hosts[0], 3600, 3600 + 5 * 3600.0);  // 10 h of work without the cap; 1 h with it
  d.RunUntil(&m, 4000);
  EXPECT_DOUBLE_EQ(m.Backlog(0, 4000), 800) << "below the cap it grows at its rate";
  d.RunUntil(&m, 1e6);
  EXPECT_EQ(Changes(d, 0).back(), std::make_pair(S::kUp, 3600 + 6 * 3600.0));
}

TEST(ServiceBacklogTest, ARunThatEndsWhileCatchingUpCountsItUntilTheEnd) {
  CrewScheduling c(3, 1);
  Outage(c.m.get(), c.hosts[0], 3600, 7200);  // 3 h of work: up at 18000
  c.d.RunUntil(c.m.get(), 10000);
  const auto figures = c.m->ServiceFigures(3600, 10000);
  EXPECT_DOUBLE_EQ(figures[0].downtime_s, 6400);
  EXPECT_DOUBLE_EQ(figures[0].catching_up_s, 2800);
  EXPECT_FALSE(figures[0].up_at_end);
  EXPECT_FALSE(figures[0].up_again_s.has_value());
}

TEST(ServiceBacklogTest, WithoutABacklogAServiceIsOnlyDownOrUp) {
  BacklogWorld w;
  w.AddService("check-in", "kiosk");
  w.MakeProfiles();
  ScriptedDriver d;
  Model m(w.setup, w.runbook, w.profiles, &d, Manual());
  const uint32_t kiosk = BootedHost(&m, 1);
  Outage(&m, kiosk, 3600, 5400);
  d.RunUntil(&m, 1e6);
  EXPECT_EQ(Changes(d, 0),
            (std::vector<std::pair<S, double>>{{S::kUp, 50}, {S::kDown, 3600}, {S::kUp, 5400}}));
  EXPECT_EQ(d.backlog_plans, 0);
  const auto figures = m.ServiceFigures(100, 9000);
  EXPECT_DOUBLE_EQ(figures[0].downtime_s, 1800);
  EXPECT_DOUBLE_EQ(figures[0].catching_up_s, 0);
}

}  // namespace
}  // namespace chaoslab::recovery
