// The recovery model on a scripted driver: no machines, no clock, only scenario time.
#include "lab/recovery/recovery.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "lab/recovery/scripted_driver.h"

namespace chaoslab::recovery {
namespace {

TEST(RecoveryModelTest, TwoCrashesWithoutHealthyInBetweenAreABootLoop) {
  World w;
  w.runbook.steps.push_back(Step(config::StepKind::kReboot, 60));
  w.profiles = {w.Default()};
  ScriptedDriver d;
  Model m(w.setup, w.runbook, w.profiles, &d, {true, true});
  const uint32_t h = m.AddHost(0);
  m.Move(h, HostState::kBooting, 0);
  m.Crashed(h, 10, false, "X");
  EXPECT_EQ(m.host(h).state, HostState::kCrashed);
  EXPECT_FALSE(m.ShouldPark(h)) << "one crash: it boots again";
  m.Rebooting(h, 25);
  EXPECT_EQ(m.host(h).state, HostState::kBooting);
  m.Crashed(h, 40, false, "X");
  EXPECT_EQ(m.host(h).state, HostState::kBootLoop);
  EXPECT_TRUE(m.host(h).boot_loop);
  EXPECT_TRUE(m.ShouldPark(h)) << "a boot loop nobody acts on is parked";
  EXPECT_EQ(m.host(h).first_crash, 10);
}

TEST(RecoveryModelTest, OneTechnicianServesHostsInPriorityOrderWithTravel) {
  World w;
  w.runbook.steps.push_back(Step(config::StepKind::kDelete, 300, {config::Resource::kTechnician}));
  Profile low = w.Default(), high = w.Default();
  low.rank = 2;
  high.rank = 1;
  w.profiles = {low, high};
  ScriptedDriver d;
  d.travel = 100;
  Model m(w.setup, w.runbook, w.profiles, &d, {true, true});
  const uint32_t a = m.AddHost(0), b = m.AddHost(1);
  CrashTwice(&m, a, 0);
  CrashTwice(&m, b, 0);
  d.RunUntil(&m, 30);  // both activate at detection of their first crash, at 10
  ASSERT_EQ(m.host(a).state, HostState::kRemediating);
  ASSERT_EQ(m.host(b).state, HostState::kRemediating);
  d.RunUntil(&m, 1000);
  // The higher priority (lower rank) host gets the technician: 300 s of work + 100 s of travel.
  ASSERT_EQ(d.started.size(), 1u);
  EXPECT_EQ(d.started[0].host, b);
  EXPECT_DOUBLE_EQ(d.started[0].at, 410);
  EXPECT_EQ(d.waits[a], std::vector<Wait>{Wait::kTechnician});
  // The step fails; the runbook has nothing more: the host fails and frees the technician.
  m.SettleNow(b, 500, Outcome::kFailed, "del rc=1");
  EXPECT_EQ(m.host(b).state, HostState::kFailed);
  EXPECT_EQ(m.FailedWhy(b), "runbook ended without recovery: del rc=1");
  EXPECT_EQ(d.stopped, std::vector<uint32_t>{b});
  d.RunUntil(&m, 2000);
  ASSERT_EQ(d.started.size(), 2u);
  EXPECT_EQ(d.started[1].host, a);
  EXPECT_DOUBLE_EQ(d.started[1].at, 900);
  const WaitFigures wa = m.Waits(a, 900);
  EXPECT_DOUBLE_EQ(wa.waited_s, 490);  // from 10 until the technician came free at 500
  EXPECT_EQ(WaitName(static_cast<Wait>(wa.longest)), std::string("technician"));
  EXPECT_DOUBLE_EQ(m.Waits(b, 900).technician_s, 490);
}

TEST(RecoveryModelTest, OffShiftTechniciansWakeTheQueueWhenTheirShiftStarts) {
  World w;
  w.setup.sites[0].shifts.push_back({8 * 3600.0, 17 * 3600.0});
  w.runbook.steps.push_back(Step(config::StepKind::kReboot, 60, {config::Resource::kTechnician}));
  w.profiles = {w.Default()};
  ScriptedDriver d;
  Model m(w.setup, w.runbook, w.profiles, &d, {true, true});
  const uint32_t h = m.AddHost(0);
  CrashTwice(&m, h, 4 * 3600.0);  // a boot loop at 04:00:30
  d.RunUntil(&m, 7 * 3600.0);
  EXPECT_EQ(m.host(h).waiting_for, Wait::kTechnicianOffShift);
  EXPECT_TRUE(d.started.empty());
  d.RunUntil(&m, 9 * 3600.0);
  ASSERT_EQ(d.started.size(), 1u);
  EXPECT_DOUBLE_EQ(d.started[0].at, 8 * 3600.0 + 60);
}

// Issue 18: a step cannot use a tool before it is published. Hosts reaching it earlier wait for
// it (explicitly: one signal at the moment it appears, no polling), take nothing meanwhile, and
// the wait shows in their figures; a host reaching it later does not wait.
TEST(RecoveryModelTest, AStepWaitsForItsToolAndTakesNothingMeanwhile) {
  World w;
  config::StepConfig usb = Step(config::StepKind::kBoot, 120, {config::Resource::kTechnician});
  usb.tool = "usb-recovery";
  config::ScenarioDate day0;  // 2024-07-19
  usb.tool_available = config::UtcInstant{(day0.DaysSinceEpoch() + 1) * 86400 + 12 * 3600, {}};
  w.runbook.steps.push_back(usb);
  w.profiles = {w.Default()};
  ScriptedDriver d;
  Model m(w.setup, w.runbook, w.profiles, &d, {.automatic = true, .ordered_events = true});
  const uint32_t a = m.AddHost(0), b = m.AddHost(0);
  CrashTwice(&m, a, 4 * 3600.0);
  CrashTwice(&m, b, 4 * 3600.0 + 5);
  const double published = 86400 + 12 * 3600.0;  // 2024-07-20 12:00 UTC
  d.RunUntil(&m, published - 1);
  EXPECT_TRUE(d.started.empty());
  EXPECT_EQ(m.host(a).waiting_for, Wait::kTool);
  EXPECT_FALSE(m.host(a).holds_technician) << "nobody is held for a tool that does not exist";
  EXPECT_EQ(d.waits[a], std::vector<Wait>{Wait::kTool});
  int tool_signals = 0;
  for (const auto& [key, s] : d.agenda) tool_signals += s.kind == Signal::kTool;
  EXPECT_EQ(tool_signals, 1) << "one signal at the publication, for both hosts";
  ASSERT_EQ(d.agenda.begin()->first.first, published);
  d.RunUntil(&m, published + 1000);
  // One technician: a first (earlier in the queue), then b, each 120 s of work.
  ASSERT_EQ(d.started.size(), 1u);
  EXPECT_EQ(d.started[0].host, a);
  EXPECT_DOUBLE_EQ(d.started[0].at, published + 120);
  const WaitFigures wa = m.Waits(a, published + 120);
  EXPECT_DOUBLE_EQ(wa.waited_s, published - (4 * 3600.0 + 10));
  EXPECT_EQ(WaitName(static_cast<Wait>(wa.longest)), std::string("tool (not yet published)"));
  // A host that reaches the step after the publication goes straight on.
  m.SettleNow(a, published + 200, Outcome::kHealthy);
  d.RunUntil(&m, published + 2000);
  ASSERT_EQ(d.started.size(), 2u);
  EXPECT_EQ(d.started[1].host, b);
  EXPECT_DOUBLE_EQ(d.started[1].at, published + 200 + 120);
}

TEST(RecoveryModelTest, ServicesAndTheEscrowFollowTheirGroupsHealth) {
  World w;
  w.setup.key_escrow.hosted_on = "ws";
  config::ServiceConfig svc;
  svc.name = "booking";
  svc.needs.push_back({"ws", 2});
  w.setup.services.push_back(svc);
  w.runbook.steps.push_back(Step(config::StepKind::kReboot, 60));
  Profile p = w.Default();
  p.watched = true;
  w.profiles = {p};
  ScriptedDriver d;
  Model m(w.setup, w.runbook, w.profiles, &d, {true, true});
  const uint32_t a = m.AddHost(0), b = m.AddHost(0);
  EXPECT_FALSE(m.escrow_up()) << "an escrow on fleet hosts waits for them to boot";
  m.Move(a, HostState::kBooting, 0);
  m.Move(b, HostState::kBooting, 0);
  m.Healthy(a, 40);
  m.Healthy(b, 50);
  d.RunUntil(&m, 100);
  EXPECT_TRUE(m.escrow_up());
  m.Crashed(a, 3700, true, "X");
  d.RunUntil(&m, 4000);
  m.Healthy(a, 7300);
  d.RunUntil(&m, 8000);
  ASSERT_EQ(d.services.size(), 3u);  // up at 50, down at 3700, up at 7300
  const auto figures = m.ServiceFigures(3600, 8000);
  ASSERT_EQ(figures.size(), 1u);
  EXPECT_EQ(figures[0].name, "booking");
  EXPECT_DOUBLE_EQ(figures[0].downtime_s, 3600);
  EXPECT_DOUBLE_EQ(*figures[0].down_at_s, 100);
  EXPECT_DOUBLE_EQ(*figures[0].up_again_s, 3700);
  EXPECT_TRUE(figures[0].up_at_end);
  m.ForceEscrowDown(true, 8000);
  EXPECT_FALSE(m.escrow_up());
  EXPECT_EQ(d.escrow.back(), std::make_pair(false, 8000.0));
}

TEST(RecoveryModelTest, AHostThatRecoversByItselfEndsItsRunbookAndFreesWhatItHeld) {
  World w;
  w.runbook.steps.push_back(Step(config::StepKind::kReboot, 60, {config::Resource::kTechnician}));
  w.profiles = {w.Default()};
  ScriptedDriver d;
  Model m(w.setup, w.runbook, w.profiles, &d, {true, false});
  const uint32_t h = m.AddHost(0);
  CrashTwice(&m, h, 0);
  d.RunUntil(&m, 200);
  ASSERT_EQ(d.started.size(), 1u);
  m.CountReboot(h);
  m.Healthy(h, 300);
  EXPECT_EQ(m.host(h).state, HostState::kRecovered);
  EXPECT_EQ(RecoveredByName(m.host(h).recovered_by), "reboot");
  d.RunUntil(&m, 400);
  EXPECT_EQ(m.host(h).stage, Stage::kFinished);
  EXPECT_FALSE(m.host(h).holds_technician);
  HostResult r;
  m.FillResult(h, 0, 400, &r);
  EXPECT_EQ(r.final_state, "recovered");
  EXPECT_EQ(r.reboots, 1);
  EXPECT_DOUBLE_EQ(*r.time_to_recover_s, 290);
  EXPECT_DOUBLE_EQ(r.technician_s, 290);  // from its activation at 10 until healthy
}

constexpr double kHour = 3600, kDay = 86400;

config::Distribution Const(double v) {
  config::Distribution d;
  d.a = v;
  return d;
}

// One site of one technician (the test sets its shifts, zone and crisis staffing first) and a
// one-step runbook that needs them.
class StaffingTest : public ::testing::Test {
 protected:
  Model& Start(config::StepKind kind, double takes, ModelOptions options = {true, true}) {
    w.runbook.steps.push_back(Step(kind, takes, {config::Resource::kTechnician}));
    w.profiles = {w.Default()};
    model = std::make_unique<Model>(w.setup, w.runbook, w.profiles, &d, options);
    return *model;
  }
  World w;
  ScriptedDriver d;
  std::unique_ptr<Model> model;
};

TEST_F(StaffingTest, ASiteWestOfUtcWorksItsLocalShift) {
  w.setup.sites[0].utc_offset = -4 * kHour;  // New York in July (EDT)
  w.setup.sites[0].shifts.push_back({8 * kHour, 17 * kHour});
  Model& m = Start(config::StepKind::kReboot, 60);
  const uint32_t h = m.AddHost(0);
  CrashTwice(&m, h, 4 * kHour + 9 * 60);  // 04:09 UTC is 00:09 in New York
  d.RunUntil(&m, 11 * kHour);
  EXPECT_EQ(m.host(h).waiting_for, Wait::kTechnicianOffShift);
  EXPECT_TRUE(d.started.empty()) << "08:00 UTC is 04:00 in New York";
  d.RunUntil(&m, 13 * kHour);
  ASSERT_EQ(d.started.size(), 1u);
  EXPECT_DOUBLE_EQ(d.started[0].at, 12 * kHour + 60) << "its local 08:00 is 12:00 UTC";
}

TEST(RecoveryStaffingTest, ShiftDaysFollowTheScenarioDate) {
  config::SiteConfig site;
  config::Shift office{8 * kHour, 17 * kHour};
  office.days = 0x1f;  // mon-fri
  site.shifts.push_back(office);
  const int friday = 4, saturday = 5;
  EXPECT_TRUE(OnShift(site, 10 * kHour, friday));
  EXPECT_FALSE(OnShift(site, 10 * kHour, saturday));
  EXPECT_FALSE(OnShift(site, kDay + 10 * kHour, friday)) << "day 1 is a Saturday";
  EXPECT_TRUE(OnShift(site, 3 * kDay + 10 * kHour, friday)) << "day 3 is a Monday";
  EXPECT_DOUBLE_EQ(NextShiftStart(site, 20 * kHour, friday), 3 * kDay + 8 * kHour);
  // East of UTC, Monday 08:00 in Singapore (+08:00) is Monday 00:00 UTC.
  site.utc_offset = 8 * kHour;
  EXPECT_DOUBLE_EQ(NextShiftStart(site, 20 * kHour, friday), 3 * kDay);
  // An overnight shift belongs to the day it starts: Friday's night runs into Saturday.
  config::SiteConfig night;
  config::Shift friday_night{22 * kHour, 6 * kHour};
  friday_night.days = 1u << 4;
  night.shifts.push_back(friday_night);
  EXPECT_TRUE(OnShift(night, 23 * kHour, friday));
  EXPECT_TRUE(OnShift(night, kDay + 2 * kHour, friday));
  EXPECT_FALSE(OnShift(night, 2 * kHour, friday)) << "Friday 02:00 is Thursday's night";
  EXPECT_FALSE(OnShift(night, kDay + 23 * kHour, friday));
}

TEST_F(StaffingTest, ASaturdayIsOffForAMonFriShift) {
  config::Shift office{8 * kHour, 17 * kHour};
  office.days = 0x1f;  // mon-fri
  w.setup.sites[0].shifts.push_back(office);
  Model& m = Start(config::StepKind::kReboot, 60,
                   {.automatic = true, .ordered_events = true, .weekday0 = 4});
  const uint32_t h = m.AddHost(0);
  CrashTwice(&m, h, 20 * kHour);  // Friday 20:00, after the shift
  d.RunUntil(&m, 2 * kDay + 23 * kHour);
  EXPECT_TRUE(d.started.empty()) << "nobody on Saturday or Sunday";
  EXPECT_EQ(m.host(h).waiting_for, Wait::kTechnicianOffShift);
  d.RunUntil(&m, 4 * kDay);
  ASSERT_EQ(d.started.size(), 1u);
  EXPECT_DOUBLE_EQ(d.started[0].at, 3 * kDay + 8 * kHour + 60) << "Monday 08:00";
}

TEST_F(StaffingTest, ACallInRaisesCapacityAndWakesTheQueue) {
  config::StaffArrival call_in;
  call_in.after = Const(3 * kHour);
  call_in.technicians = Const(2);
  w.setup.sites[0].crisis.call_in = call_in;
  Model& m = Start(config::StepKind::kDelete, 10 * kHour);
  const uint32_t a = m.AddHost(0), b = m.AddHost(0), c = m.AddHost(0);
  for (uint32_t h : {a, b, c}) CrashTwice(&m, h, 4 * kHour);
  const double known = 4 * kHour + 10;  // the site's first crash
  EXPECT_DOUBLE_EQ(m.staffing(0).known_at, known);
  EXPECT_EQ(m.Technicians(0, known + 3 * kHour - 1), 1);
  EXPECT_EQ(m.Technicians(0, known + 3 * kHour), 3);
  d.RunUntil(&m, known + kHour);
  EXPECT_EQ(d.waits[b], std::vector<Wait>{Wait::kTechnician});
  EXPECT_EQ(d.waits[c], std::vector<Wait>{Wait::kTechnician});
  d.RunUntil(&m, 2 * kDay);
  ASSERT_EQ(d.started.size(), 3u);
  EXPECT_EQ(d.started[0].host, a);
  EXPECT_DOUBLE_EQ(d.started[0].at, known + 10 * kHour);
  // The two called in arrive 3 h after the site knew, and take the waiting hosts at once.
  EXPECT_EQ(d.started[1].host, b);
  EXPECT_EQ(d.started[2].host, c);
  EXPECT_DOUBLE_EQ(d.started[1].at, known + 3 * kHour + 10 * kHour);
  EXPECT_DOUBLE_EQ(d.started[2].at, known + 3 * kHour + 10 * kHour);
}

TEST_F(StaffingTest, ExtendedHoursWakeHostsWaitingOffShift) {
  w.setup.sites[0].shifts.push_back({8 * kHour, 17 * kHour});
  w.setup.sites[0].crisis.extended_hours = Const(kHour);
  Model& m = Start(config::StepKind::kReboot, 60);
  const uint32_t h = m.AddHost(0);
  CrashTwice(&m, h, 4 * kHour);
  EXPECT_FALSE(m.OnDuty(0, 5 * kHour + 9));
  EXPECT_TRUE(m.OnDuty(0, 5 * kHour + 10));
  EXPECT_TRUE(m.OnDuty(0, kDay + 3 * kHour)) << "around the clock from then on";
  d.RunUntil(&m, 6 * kHour);
  ASSERT_EQ(d.started.size(), 1u);
  EXPECT_DOUBLE_EQ(d.started[0].at, 5 * kHour + 10 + 60);
}

TEST(RecoveryStaffingTest, StaffingIsDrawnOncePerSiteFromTheSeed) {
  World w;
  config::StaffArrival help;
  help.after.kind = config::Distribution::Kind::kUniform;
  help.after.a = kDay;
  help.after.b = 3 * kDay;
  help.technicians.kind = config::Distribution::Kind::kUniform;
  help.technicians.a = 2;
  help.technicians.b = 10;
  w.setup.sites[0].crisis.outside_help = help;
  w.setup.sites[0].crisis.known_at = 6 * kHour;  // `from: "06:00"`
  w.profiles = {w.Default()};
  ScriptedDriver d;
  std::vector<std::pair<double, int>> draws;
  for (uint64_t seed : {1, 1, 2, 3, 4}) {
    Model m(w.setup, w.runbook, w.profiles, &d,
            {.automatic = true, .ordered_events = true, .weekday0 = 4, .seed = seed});
    const SiteStaffing& st = m.staffing(0);
    EXPECT_DOUBLE_EQ(st.known_at, 6 * kHour);
    EXPECT_GE(st.outside_after, kDay);
    EXPECT_LE(st.outside_after, 3 * kDay);
    EXPECT_GE(st.outside, 2);
    EXPECT_LE(st.outside, 10);
    EXPECT_EQ(m.Technicians(0, 6 * kHour + st.outside_after), 1 + st.outside);
    EXPECT_EQ(m.Technicians(0, 6 * kHour + st.outside_after - 1), 1);
    draws.push_back({st.outside_after, st.outside});
  }
  EXPECT_EQ(draws[0], draws[1]) << "the same seed draws the same";
  EXPECT_TRUE(draws[2] != draws[1] || draws[3] != draws[1] || draws[4] != draws[1]);
  EXPECT_TRUE(d.agenda.empty()) << "nothing is scheduled before the site's first crash";
}

// on_failure: reboot twice; when that does not help, people decide after an hour to go to safe
// mode (a runbook with a step for BitLocker hosts only in between, passed over for this host).
struct EscalationWorld : World {
  EscalationWorld() {
    config::StepConfig reboot = Step(config::StepKind::kReboot, 0);
    reboot.times = 2;
    runbook.steps.push_back(reboot);
    config::Escalation usb;
    usb.runbook.name = "usb-bitlocker-only";
    usb.runbook.steps.push_back(Step(config::StepKind::kBoot, 60, {config::Resource::kTechnician}));
    usb.runbook.steps.back().when.bitlocker = true;
    usb.after.a = 600;
    config::Escalation safe;
    safe.runbook.name = "safe-mode";
    safe.runbook.steps.push_back(
        Step(config::StepKind::kBoot, 120, {config::Resource::kTechnician}));
    safe.runbook.steps.push_back(
        Step(config::StepKind::kRestart, 0, {config::Resource::kTechnician}));
    safe.after.a = 3600;
    runbook.escalations = {usb, safe};
    Profile p = Default();
    AssignSteps(runbook, setup.groups[0], &p);
    profiles = {p};
  }
};

// Reboots the host through the reboot step: two attempts, each crashing again.
void RebootsFail(Model* m, uint32_t h, double at) {
  m->Rebooting(h, at);
  m->Crashed(h, at + 10, false, "X");
  m->Rebooting(h, at + 20);
  m->Crashed(h, at + 30, false, "X");
}

TEST(RecoveryModelTest, ARunbookThatEndsWithoutRecoveryEscalatesAfterTheDecisionDelay) {
  EscalationWorld w;
  ASSERT_EQ(w.profiles[0].fallback_steps.size(), 2u);
  EXPECT_TRUE(w.profiles[0].fallback_steps[0].empty()) << "no BitLocker: the USB step is skipped";
  ScriptedDriver d;
  Model m(w.setup, w.runbook, w.profiles, &d, {true, true});
  const uint32_t h = m.AddHost(0);
  CrashTwice(&m, h, 0);
  d.RunUntil(&m, 30);
  ASSERT_EQ(d.started.size(), 1u);  // the reboot step, at activation (10)
  RebootsFail(&m, h, 40);
  d.RunUntil(&m, 100);
  // Not failed: it escalates, passing over the runbook with no step for it, to safe mode.
  EXPECT_EQ(m.host(h).state, HostState::kRemediating);
  EXPECT_TRUE(d.stopped.empty());
  ASSERT_EQ(d.escalated.size(), 1u);
  EXPECT_EQ(d.escalated[0].runbook, "safe-mode");
  EXPECT_DOUBLE_EQ(d.escalated[0].at, 70);
  EXPECT_DOUBLE_EQ(d.escalated[0].starts_at, 70 + 3600);
  EXPECT_EQ(m.host(h).level, 2);
  EXPECT_EQ(&m.RunbookOf(h), &w.runbook.escalations[1].runbook);
  EXPECT_TRUE(m.ShouldPark(h)) << "it loops parked while people decide";
  d.RunUntil(&m, 3600);
  EXPECT_EQ(d.started.size(), 1u) << "nothing before the decision";
  d.RunUntil(&m, 10000);
  // At 3670 the technician comes (no travel), boots safe mode for 120 s.
  ASSERT_EQ(d.started.size(), 2u);
  EXPECT_EQ(d.started[1].kind, config::StepKind::kBoot);
  EXPECT_DOUBLE_EQ(d.started[1].at, 3670 + 120);
  m.SettleNow(h, 3850, Outcome::kOk);
  d.RunUntil(&m, 3850);
  ASSERT_EQ(d.started.size(), 3u);
  EXPECT_EQ(d.started[2].kind, config::StepKind::kRestart);
  m.Healthy(h, 3900);
  EXPECT_EQ(m.host(h).state, HostState::kRecovered);
  HostResult r;
  m.FillResult(h, 0, 4000, &r);
  EXPECT_EQ(r.recovered_by, "restart");
  EXPECT_EQ(r.escalations, 2);
  EXPECT_EQ(r.reboots, 2);
  EXPECT_DOUBLE_EQ(r.technician_s, 3900 - 3670);
}

TEST(RecoveryModelTest, AHostFailsWhenItsLastFallbackEndsWithoutRecovery) {
  EscalationWorld w;
  ScriptedDriver d;
  Model m(w.setup, w.runbook, w.profiles, &d, {true, true});
  const uint32_t h = m.AddHost(0);
  CrashTwice(&m, h, 0);
  d.RunUntil(&m, 30);
  RebootsFail(&m, h, 40);
  d.RunUntil(&m, 10000);
  m.SettleNow(h, 3850, Outcome::kFailed, "no safe mode");
  d.RunUntil(&m, 3850);
  EXPECT_EQ(m.host(h).state, HostState::kRemediating) << "its restart step is still to come";
  m.SettleNow(h, 3900, Outcome::kFailed, "crashed again (X)");
  EXPECT_EQ(m.host(h).state, HostState::kFailed);
  EXPECT_EQ(m.FailedWhy(h), "runbook safe-mode ended without recovery: crashed again (X)");
  EXPECT_EQ(d.stopped, std::vector<uint32_t>{h});
  EXPECT_FALSE(m.host(h).holds_technician);
  EXPECT_EQ(d.escalated.size(), 1u);
}

// --- Repair at the hypervisor ----------------------------------------------------------------

// A fleet of virtual servers at a site with no technician at all, repaired by the hypervisor's
// script: `repairs_at_once` slots, a script written once.
struct HypervisorWorld : World {
  explicit HypervisorWorld(int repairs_at_once, double script_ready) {
    setup.sites[0].technicians = 0;
    setup.hypervisor.enabled = true;
    setup.hypervisor.repairs_at_once = repairs_at_once;
    setup.hypervisor.script_ready.a = script_ready;
    runbook.steps.push_back(Step(config::StepKind::kHypervisorRepair, 0,
                                 {config::Resource::kHypervisor, config::Resource::kKeyEscrow}));
  }
};

TEST(RecoveryHypervisorTest, TheScriptIsWrittenOnceThenRepairsAtOnceDisksAtATime) {
  HypervisorWorld w(2, 600);
  w.profiles = {w.Default()};
  ScriptedDriver d;
  Model m(w.setup, w.runbook, w.profiles, &d, {true, true});
  std::vector<uint32_t> hosts;
  for (int k = 0; k < 5; ++k) hosts.push_back(m.AddHost(0));
  for (uint32_t h : hosts) CrashTwice(&m, h, 0);
  d.RunUntil(&m, 600);
  EXPECT_TRUE(d.started.empty()) << "the script is not ready before 10 + 600";
  EXPECT_EQ(m.host(hosts[0]).waiting_for, Wait::kHypervisorScript);
  EXPECT_DOUBLE_EQ(m.ScriptReadyAt(), 610);
  d.RunUntil(&m, 700);
  // Two slots: the first two hosts (queue order) start at once when the script is ready.
  ASSERT_EQ(d.started.size(), 2u);
  EXPECT_EQ(d.started[0].host, hosts[0]);
  EXPECT_EQ(d.started[1].host, hosts[1]);
  EXPECT_DOUBLE_EQ(d.started[0].at, 610);
  EXPECT_EQ(d.started[0].kind, config::StepKind::kHypervisorRepair);
  EXPECT_EQ(m.host(hosts[2]).waiting_for, Wait::kHypervisor);
  // The first disk is back on its host at 910: its slot goes to the next host while it boots;
  // the script is not written again.
  m.DiskRepaired(hosts[0], 910);
  d.RunUntil(&m, 910);
  ASSERT_EQ(d.started.size(), 3u);
  EXPECT_EQ(d.started[2].host, hosts[2]);
  EXPECT_DOUBLE_EQ(d.started[2].at, 910);
  m.Healthy(hosts[0], 960);
  EXPECT_EQ(m.host(hosts[0]).state, HostState::kRecovered);
  EXPECT_EQ(RecoveredByName(m.host(hosts[0]).recovered_by), "hypervisor-repair");
  // A failed repair frees its slot at the step's end even without DiskRepaired.
  m.SettleNow(hosts[1], 1000, Outcome::kFailed, "rescue VM: gone");
  EXPECT_EQ(m.host(hosts[1]).state, HostState::kFailed);
  d.RunUntil(&m, 1000);
  ASSERT_EQ(d.started.size(), 4u);
  EXPECT_EQ(d.started[3].host, hosts[3]);
  // No technician was there, and none was used: every host's technician time is zero.
  for (uint32_t h : hosts) EXPECT_DOUBLE_EQ(m.Waits(h, 1000).technician_s, 0);
  const WaitFigures last = m.Waits(hosts[4], 1000);
  EXPECT_DOUBLE_EQ(last.waited_s, 990);  // from 10: 600 for the script, 390 for a slot
  EXPECT_EQ(WaitName(static_cast<Wait>(last.longest)), std::string("hypervisor script"));
}

TEST(RecoveryHypervisorTest, EncryptedVirtualDisksWaitForTheEscrowAndNobodyLooksTheKeyUp) {
  HypervisorWorld w(4, 0);
  w.setup.key_escrow.lookup.a = 120;
  Profile encrypted = w.Default(), plain = w.Default();
  encrypted.bitlocker = true;
  w.profiles = {encrypted, plain};
  ScriptedDriver d;
  Model m(w.setup, w.runbook, w.profiles, &d, {true, true});
  const uint32_t a = m.AddHost(0), b = m.AddHost(1);
  m.ForceEscrowDown(true, 0);
  CrashTwice(&m, a, 0);
  CrashTwice(&m, b, 0);
  d.RunUntil(&m, 100);
  ASSERT_EQ(d.started.size(), 1u) << "the unencrypted disk needs no key";
  EXPECT_EQ(d.started[0].host, b);
  EXPECT_EQ(m.host(a).waiting_for, Wait::kKeyEscrow);
  m.ForceEscrowDown(false, 500);
  d.RunUntil(&m, 600);
  ASSERT_EQ(d.started.size(), 2u);
  EXPECT_EQ(d.started[1].host, a);
  EXPECT_DOUBLE_EQ(d.started[1].at, 500);
  // The script fetches the key: no person's lookup time, unlike a person's step.
  std::mt19937_64 rng(1);
  const config::StepConfig& step = w.runbook.steps[0];
  EXPECT_DOUBLE_EQ(HumanPart(step, &w.setup.sites[0], true, true, w.setup.key_escrow, rng), 0);
  config::StepConfig by_hand = Step(config::StepKind::kRescueDisk, 0, step.needs);
  EXPECT_DOUBLE_EQ(HumanPart(by_hand, &w.setup.sites[0], true, true, w.setup.key_escrow, rng), 120);
}

TEST(RecoveryHypervisorTest, WithoutAHypervisorInTheSetupTheStepWaitsForever) {
  HypervisorWorld w(1, 0);
  w.setup.hypervisor.enabled = false;
  w.profiles = {w.Default()};
  ScriptedDriver d;
  Model m(w.setup, w.runbook, w.profiles, &d, {true, true});
  const uint32_t h = m.AddHost(0);
  CrashTwice(&m, h, 0);
  d.RunUntil(&m, 1e6);
  EXPECT_TRUE(d.started.empty());
  EXPECT_EQ(m.host(h).waiting_for, Wait::kHypervisor);
  EXPECT_TRUE(m.AnyStalled());
}

// --- Out-of-band consoles as a resource --------------------------------------------------------

// Hosts with out-of-band consoles at a site whose technicians work `per_technician` consoles at
// once, at most `sessions` at once (0: no limit); one remote-console step of 300 s each.
struct ConsoleWorld : World {
  ConsoleWorld(int technicians, int per_technician, int sessions) {
    setup.sites[0].technicians = technicians;
    setup.sites[0].consoles_per_technician = per_technician;
    setup.sites[0].console_sessions = sessions;
    runbook.steps.push_back(Step(config::StepKind::kBoot, 300, {config::Resource::kRemoteConsole}));
    Profile p = Default();
    p.oob_console = true;
    profiles = {p};
  }
};

TEST(RecoveryConsoleTest, OneTechnicianWorksSeveralConsolesAtOnce) {
  ConsoleWorld w(1, 3, 0);
  ScriptedDriver d;
  Model m(w.setup, w.runbook, w.profiles, &d, {true, true});
  std::vector<uint32_t> hosts;
  for (int k = 0; k < 4; ++k) hosts.push_back(m.AddHost(0));
  for (uint32_t h : hosts) CrashTwice(&m, h, 0);
  d.RunUntil(&m, 1000);
  // Three consoles side by side, no travel; the fourth waits for a session.
  ASSERT_EQ(d.started.size(), 3u);
  for (const auto& c : d.started) EXPECT_DOUBLE_EQ(c.at, 310);
  EXPECT_EQ(m.host(hosts[3]).waiting_for, Wait::kTechnician);
  m.Healthy(hosts[0], 400);
  d.RunUntil(&m, 2000);
  ASSERT_EQ(d.started.size(), 4u);
  EXPECT_EQ(d.started[3].host, hosts[3]);
  EXPECT_DOUBLE_EQ(d.started[3].at, 700);
  // A third of a technician each: 390 s at the console is 130 s of the technician's time.
  EXPECT_DOUBLE_EQ(m.Waits(hosts[0], 2000).technician_s, 130);
  // When every session is over, the technician is free for work in person again.
  for (uint32_t h : {hosts[1], hosts[2], hosts[3]}) m.Healthy(h, 2000);
  d.RunUntil(&m, 2000);
  EXPECT_FALSE(m.AnyStalled());
}

// Regression: a host that holds a console session asked for a technician in person at its next
// console step (pxe-repair's restart), and waited for one while its own session held the site's.
TEST(RecoveryConsoleTest, ALaterConsoleStepKeepsItsSession) {
  ConsoleWorld w(1, 2, 0);
  w.runbook.steps.push_back(
      Step(config::StepKind::kRestart, 60, {config::Resource::kRemoteConsole}));
  w.profiles = {w.Default()};
  w.profiles[0].oob_console = true;
  ScriptedDriver d;
  Model m(w.setup, w.runbook, w.profiles, &d, {true, true});
  const uint32_t a = m.AddHost(0), b = m.AddHost(0);
  CrashTwice(&m, a, 0);
  CrashTwice(&m, b, 0);
  d.RunUntil(&m, 1000);
  ASSERT_EQ(d.started.size(), 2u);
  m.SettleNow(a, 320, Outcome::kOk);
  d.RunUntil(&m, 1000);
  ASSERT_EQ(d.started.size(), 3u);
  EXPECT_EQ(d.started[2].kind, config::StepKind::kRestart);
  EXPECT_DOUBLE_EQ(d.started[2].at, 380) << "no wait: it keeps its console session";
  EXPECT_TRUE(d.waits[a].empty());
}

TEST(RecoveryConsoleTest, TheSiteSessionLimitHoldsBackConsolesWhilePeopleAreFree) {
  ConsoleWorld w(3, 1, 2);
  ScriptedDriver d;
  Model m(w.setup, w.runbook, w.profiles, &d, {true, true});
  std::vector<uint32_t> hosts;
  for (int k = 0; k < 3; ++k) hosts.push_back(m.AddHost(0));
  for (uint32_t h : hosts) CrashTwice(&m, h, 0);
  d.RunUntil(&m, 1000);
  ASSERT_EQ(d.started.size(), 2u) << "two sessions, though three technicians";
  EXPECT_EQ(m.host(hosts[2]).waiting_for, Wait::kRemoteConsole);
  m.SettleNow(hosts[1], 500, Outcome::kFailed, "boot failed");
  d.RunUntil(&m, 1000);
  ASSERT_EQ(d.started.size(), 3u);
  EXPECT_EQ(d.started[2].host, hosts[2]);
  EXPECT_DOUBLE_EQ(d.started[2].at, 800);
  // One console per technician (the default): a whole technician's time, as in person.
  EXPECT_DOUBLE_EQ(m.Waits(hosts[0], 1000).technician_s, 990);
}

TEST(RecoveryConsoleTest, FromTheConsoleToTheHostInPersonTheTechnicianComesAlong) {
  ConsoleWorld w(1, 2, 0);
  w.runbook.steps.push_back(Step(config::StepKind::kDelete, 100, {config::Resource::kTechnician}));
  w.profiles = {w.Default()};
  w.profiles[0].oob_console = true;
  ScriptedDriver d;
  d.travel = 50;  // the scripted driver adds it to every new visit
  Model m(w.setup, w.runbook, w.profiles, &d, {true, true});
  const uint32_t h = m.AddHost(0);
  CrashTwice(&m, h, 0);
  d.RunUntil(&m, 1000);
  ASSERT_EQ(d.started.size(), 1u);
  EXPECT_DOUBLE_EQ(d.started[0].at, 10 + 300 + 50);
  m.SettleNow(h, 370, Outcome::kOk);
  d.RunUntil(&m, 2000);
  // Its only technician leaves the console for the host (a new visit); no deadlock.
  ASSERT_EQ(d.started.size(), 2u);
  EXPECT_EQ(d.started[1].kind, config::StepKind::kDelete);
  EXPECT_DOUBLE_EQ(d.started[1].at, 370 + 100 + 50);
}

}  // namespace
}  // namespace chaoslab::recovery
