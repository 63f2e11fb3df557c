// Engine tests over the scripted FakeBackend, with a small guest model in a thread standing in for
// winsim (the real guests are exercised by tests/integration).
#include "lab/engine/engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "lab/backend/fake_backend.h"
#include "lab/engine/engine_fakes.h"

namespace chaoslab {
namespace {

using namespace std::chrono_literals;

// Behaves like the winsim guest as far as the engine can tell: boots, fetches content, crashes on
// the faulty version with sensor 7.11, loops, and after the revert wins the boot race on its
// `win_on_boot`-th boot (0 = never).
struct GuestModel {
  std::string id;
  std::string sensor;
  bool online = true;
  int win_on_boot = 0;
  // State of the simulated machine.
  int disk_version = 1;
  bool booting = true;
  int boots_after_revert = 0;
  WallClock::time_point next = WallClock::now();
};

class Guests {
 public:
  Guests(FakeBackend* backend, std::vector<GuestModel> guests)
      : backend_(backend), guests_(std::move(guests)) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~Guests() {
    stop_ = true;
    thread_.join();
  }
  void Publish(int version) { server_version_ = version; }
  // A boot only makes progress once its machine has run for `settle` (longer than the engine needs
  // to pause it), and the most machines seen booting past that point at once is recorded.
  void SetBootSettle(std::chrono::milliseconds settle) { settle_ = settle; }
  int max_booting_seen() const { return max_booting_seen_; }

 private:
  void Emit(const GuestModel& g, HostEventKind kind, std::string detail = {}) {
    backend_->Emit(g.id, kind, std::move(detail));
  }
  void Crash(GuestModel& g) {
    Emit(g, HostEventKind::kConsoleLine,
         "@@bugcheck code=0x00000050 name=PAGE_FAULT_IN_NONPAGED_AREA module=csagent.sys");
    Emit(g, HostEventKind::kPanicked);
    Emit(g, HostEventKind::kReset, "guest");
    g.booting = true;
    g.next = WallClock::now() + 20ms;  // a real boot takes far longer than the engine's Pause()
  }
  void Loop() {
    std::map<std::string, WallClock::time_point> running_since;
    while (!stop_) {
      if (settle_ > 0ms) {
        int booting = 0;
        for (auto& g : guests_) {
          FakeHost* h = backend_->host(g.id);
          bool runs = h && h->power() == FakeHost::Power::kRunning && g.booting;
          if (!runs) {
            running_since.erase(g.id);
            continue;
          }
          auto [it, fresh] = running_since.try_emplace(g.id, WallClock::now());
          booting += WallClock::now() - it->second >= settle_;
        }
        max_booting_seen_ = std::max<int>(max_booting_seen_, booting);
      }
      for (auto& g : guests_) {
        FakeHost* h = backend_->host(g.id);
        if (!h || h->power() != FakeHost::Power::kRunning || WallClock::now() < g.next) continue;
        if (g.booting && settle_ > 0ms &&
            (!running_since.count(g.id) || WallClock::now() - running_since[g.id] < settle_))
          continue;
        int server = server_version_;
        bool bad = g.disk_version == 2 && g.sensor == "7.11";
        if (g.booting) {
          if (server == 3) ++g.boots_after_revert;
          if (g.online && server > g.disk_version && server == 3 && g.win_on_boot > 0 &&
              g.boots_after_revert >= g.win_on_boot) {
            g.disk_version = 3;
            Emit(g, HostEventKind::kConsoleLine, "@@csagent fetched channel=291 version=3");
            bad = false;
          }
          if (bad) {
            Crash(g);
            continue;
          }
          Emit(g, HostEventKind::kConsoleLine, "@@winsim ready");
          g.booting = false;
        } else if (g.online && server > g.disk_version) {
          g.disk_version = server;
          Emit(g, HostEventKind::kConsoleLine,
               "@@csagent fetched channel=291 version=" + std::to_string(server));
          if (g.disk_version == 2 && g.sensor == "7.11") {
            Crash(g);
            continue;
          }
        }
        // Like csagent: 7.10 has no IPC template type, so it runs no channel-291 content at all.
        int running_version = g.sensor == "7.10" ? 0 : g.disk_version;
        Emit(g, HostEventKind::kConsoleLine,
             "@@csagent heartbeat channel=291 version=" + std::to_string(running_version) +
                 (g.online ? " cloud=ok" : " cloud=unreachable"));
        g.next = WallClock::now() + 5ms;
      }
      std::this_thread::sleep_for(1ms);
    }
  }

  FakeBackend* backend_;
  std::vector<GuestModel> guests_;
  std::atomic<int> server_version_{1};
  std::atomic<bool> stop_{false};
  std::chrono::milliseconds settle_{0};
  std::atomic<int> max_booting_seen_{0};
  std::thread thread_;
};

config::ScenarioConfig DemoScenario(uint64_t seed) {
  config::ScenarioConfig sc;
  sc.name = "engine-test";
  sc.seed = seed;
  sc.image.timing[config::Role::kWorkstation] = config::PhaseTiming{45, 20, 15, 60};
  sc.runbook.name = "reboot-3";
  sc.runbook.starts = config::RunbookStart::kAfterRevert;
  sc.runbook.steps.push_back({config::StepKind::kReboot, 3, {}});
  sc.stop.max_wall = 60;
  return sc;
}

HostPlan Plan(const std::string& id, const std::string& group, bool online) {
  HostPlan p;
  p.spec.id = id;
  p.spec.group = group;
  p.online = online;
  return p;
}

std::map<std::string, HostResult> RunDemo(uint64_t seed, RunResult* whole = nullptr,
                                          int max_booting = 0, int* max_booting_seen = nullptr,
                                          std::vector<LiveEvent>* live = nullptr) {
  config::ScenarioConfig sc = DemoScenario(seed);
  FakeBackend backend(/*auto_events=*/false);
  Guests guests(&backend, {{"lucky", "7.11", true, 2},
                           {"unlucky", "7.11", true, 0},
                           {"control-710", "7.10", true, 0},
                           {"offline", "7.11", false, 0}});
  if (max_booting_seen) guests.SetBootSettle(30ms);
  EngineOptions o;
  o.max_booting = max_booting;
  o.scenario = &sc;
  o.run_id = "test";
  o.backend = &backend;
  o.hosts = {Plan("lucky", "ws-711", true), Plan("unlucky", "ws-711", true),
             Plan("control-710", "ws-710", true), Plan("offline", "ws-offline", false)};
  o.fault = {291, 2, "C-00000291-00000000-00000002.sys", "bad"};
  o.revert = {291, 3, "C-00000291-00000000-00000003.sys", "good"};
  testing::FakeContent content;
  content.on_publish = [&](int version) { guests.Publish(version); };
  o.content = &content;
  testing::RecordingView view;
  if (live) o.live = &view;
  Result<RunResult> r = RunScenario(o);
  if (live) *live = view.events();
  if (max_booting_seen) *max_booting_seen = guests.max_booting_seen();
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  std::map<std::string, HostResult> by_id;
  if (!r.ok()) return by_id;
  for (const auto& h : r->hosts) by_id[h.id] = h;
  if (whole) *whole = *r;
  return by_id;
}

TEST(EngineTest, BootLoopThenRecoveryAfterRevert) {
  RunResult run;
  auto hosts = RunDemo(291, &run);
  ASSERT_EQ(hosts.size(), 4u);
  EXPECT_EQ(run.status, "finished");

  const HostResult& lucky = hosts["lucky"];
  EXPECT_TRUE(lucky.exposed);
  EXPECT_TRUE(lucky.boot_loop);
  EXPECT_GE(lucky.crashes, 3);  // 2 before parking, 1 on the first reboot after the revert
  EXPECT_TRUE(lucky.recovered);
  EXPECT_EQ(lucky.final_state, "recovered");
  EXPECT_EQ(lucky.reboots, 2);
  EXPECT_EQ(lucky.stop_code, "PAGE_FAULT_IN_NONPAGED_AREA");
  ASSERT_TRUE(lucky.first_crash_s.has_value());
  // Fetched within the modelled fetch window (0.05–1 × 60 s) plus 1 s to the IPC notification.
  EXPECT_GE(*lucky.first_crash_s, 0.05 * 60 + 1);
  EXPECT_LE(*lucky.first_crash_s, 60 + 1);
  // Recovery: revert (05:27) + crash at driver load (20) + dump (15) + a full boot (45).
  ASSERT_TRUE(lucky.time_to_recover_s.has_value());
  EXPECT_DOUBLE_EQ(*lucky.time_to_recover_s + *lucky.first_crash_s, 78 * 60 + 20 + 15 + 45);

  const HostResult& unlucky = hosts["unlucky"];
  EXPECT_TRUE(unlucky.boot_loop);
  EXPECT_FALSE(unlucky.recovered);
  EXPECT_EQ(unlucky.final_state, "failed");
  EXPECT_EQ(unlucky.reboots, 3);

  const HostResult& c710 = hosts["control-710"];
  EXPECT_TRUE(c710.exposed);
  EXPECT_EQ(c710.crashes, 0);
  EXPECT_EQ(c710.final_state, "healthy");

  const HostResult& off = hosts["offline"];
  EXPECT_FALSE(off.exposed);
  EXPECT_EQ(off.crashes, 0);
  EXPECT_EQ(off.final_state, "healthy");

  ASSERT_EQ(run.groups.size(), 3u);
  EXPECT_EQ(run.groups[0].name, "ws-711");
  EXPECT_DOUBLE_EQ(run.groups[0].crash_rate, 1.0);
  EXPECT_DOUBLE_EQ(run.groups[0].boot_loop_rate, 1.0);
  EXPECT_DOUBLE_EQ(run.groups[1].crash_rate, 0.0);
  EXPECT_DOUBLE_EQ(run.groups[2].crash_rate, 0.0);
}

// The vendor's cloud remediation reaches the content server at its scenario time, for the online
// hosts that opted in (the draw of recovery::RemediationOptedIn), naming the faulty version.
TEST(EngineTest, RemediationQuarantinesTheFaultForOptedInOnlineHostsAtItsTime) {
  for (double share : {1.0, 0.0}) {
    config::ScenarioConfig sc = DemoScenario(291);
    sc.vendor_remediation = {.enabled = true, .available = 6 * 3600.0, .opted_in = share};
    FakeBackend backend(/*auto_events=*/false);
    Guests guests(&backend, {{"unlucky", "7.11", true, 0}, {"offline", "7.11", false, 0}});
    EngineOptions o;
    o.scenario = &sc;
    o.run_id = "test";
    o.backend = &backend;
    o.hosts = {Plan("unlucky", "ws-711", true), Plan("offline", "ws-offline", false)};
    o.fault = {291, 2, "C-00000291-00000000-00000002.sys", "bad"};
    o.revert = {291, 3, "C-00000291-00000000-00000003.sys", "good"};
    testing::FakeContent content;
    content.on_publish = [&](int version) { guests.Publish(version); };
    o.content = &content;
    Result<RunResult> r = RunScenario(o);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(content.quarantined.size(), 1u) << "once, at its time";
    EXPECT_EQ(content.quarantined[0].first, 2);
    EXPECT_EQ(content.quarantined[0].second,
              share > 0 ? std::vector<std::string>{"unlucky"} : std::vector<std::string>{});
  }
}

// The live view (the dashboard) sees every state change as it is journaled, with the host's group,
// its state after the change and its crash count so far.
TEST(EngineTest, ObserverSeesStateChangesWithCrashCounts) {
  std::vector<LiveEvent> live;
  RunResult run;
  auto hosts = RunDemo(291, &run, 0, nullptr, &live);
  std::vector<std::string> lucky_states;
  bool release_seen = false;
  for (const auto& e : live) {
    if (e.kind == "release") {
      release_seen = true;
      EXPECT_TRUE(e.host_id.empty());
    }
    if (e.host_id != "lucky" || e.kind != "state") continue;
    EXPECT_EQ(e.group, "ws-711");
    lucky_states.push_back(e.state);
    if (e.state == "boot-loop") {
      EXPECT_EQ(e.crashes, 2);
    }
  }
  EXPECT_TRUE(release_seen);
  ASSERT_FALSE(lucky_states.empty());
  EXPECT_EQ(lucky_states.front(), "booting");
  EXPECT_NE(std::find(lucky_states.begin(), lucky_states.end(), "boot-loop"), lucky_states.end());
  EXPECT_EQ(lucky_states.back(), hosts["lucky"].final_state);
}

// The boot gate is lab capacity: with one machine booting at a time the fleet goes through the
// same scenario (same outcomes, same scenario times), only slower in wall time.
TEST(EngineTest, BootGateKeepsOneMachineBootingAndChangesNoResult) {
  RunResult free_run, gated_run;
  int seen_free = 0, seen_gated = 0;
  auto free = RunDemo(7, &free_run, 0, &seen_free);
  auto gated = RunDemo(7, &gated_run, 1, &seen_gated);
  EXPECT_GE(seen_free, 2);  // without the gate the machines boot together
  EXPECT_EQ(seen_gated, 1);
  ASSERT_EQ(free.size(), gated.size());
  for (const auto& [id, h] : free) {
    SCOPED_TRACE(id);
    EXPECT_EQ(gated[id].final_state, h.final_state);
    EXPECT_EQ(gated[id].crashes, h.crashes);
    EXPECT_EQ(gated[id].reboots, h.reboots);
    EXPECT_EQ(gated[id].first_crash_s, h.first_crash_s);
    EXPECT_EQ(gated[id].time_to_recover_s, h.time_to_recover_s);
  }
}

TEST(EngineTest, SameSeedSameScenarioTimes) {
  auto a = RunDemo(7);
  auto b = RunDemo(7);
  auto c = RunDemo(8);
  ASSERT_EQ(a.size(), 4u);
  for (const auto& [id, h] : a) {
    EXPECT_EQ(h.first_crash_s, b[id].first_crash_s) << id;
    EXPECT_EQ(h.time_to_recover_s, b[id].time_to_recover_s) << id;
    EXPECT_EQ(h.crashes, b[id].crashes) << id;
  }
  EXPECT_NE(a["lucky"].first_crash_s, c["lucky"].first_crash_s);
}

TEST(EngineTest, LostMachineIsCountedNotAwaited) {
  config::ScenarioConfig sc = DemoScenario(1);
  FakeBackend backend(false);
  EngineOptions o;
  o.scenario = &sc;
  o.run_id = "lost";
  o.backend = &backend;
  o.hosts = {Plan("gone", "g", true)};
  backend.SetReaction([&](FakeHost& h, FakeOp op) {
    if (op == FakeOp::kStart) backend.Emit(h.spec().id, HostEventKind::kLost, "qemu exited");
  });
  Result<RunResult> r = RunScenario(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->hosts[0].final_state, "lost");
  EXPECT_EQ(r->fleet.lost, 1);
}

// A libvirtd stopped past the lab's keepalive while the fleet was still powering on (a variant of
// the fault soak, tests/soak): the libvirt backend declared that hypervisor's hosts lost, and the
// Start of one of them, refused with Unavailable ("the host is lost"), made it `failed` ("could
// not start") instead of `lost` like its neighbours. The backend says the machine is not there.
TEST(EngineTest, AStartRefusedBecauseTheMachineIsGoneIsLost) {
  config::ScenarioConfig sc = DemoScenario(1);
  FakeBackend backend(false);
  EngineOptions o;
  o.scenario = &sc;
  o.run_id = "gone-at-start";
  o.backend = &backend;
  o.hosts = {Plan("gone", "g", true), Plan("bad", "g", true)};
  backend.FailNext("gone", FakeOp::kStart,
                   Status::Unavailable("start host gone on hv2: the host is lost"));
  backend.FailNext("bad", FakeOp::kStart, Status::InvalidArgument("start host bad: bad spec"));
  Result<RunResult> r = RunScenario(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::map<std::string, HostResult> hosts;
  for (const auto& h : r->hosts) hosts[h.id] = h;
  EXPECT_EQ(hosts["gone"].final_state, "lost");
  EXPECT_NE(hosts["gone"].failed_why.find("the host is lost"), std::string::npos)
      << hosts["gone"].failed_why;
  EXPECT_EQ(hosts["bad"].final_state, "failed") << "not the machine's absence: a failure";
  EXPECT_EQ(r->fleet.lost, 1);
}

// The engine reads wall time from its clock: a host that never reports fails after the
// watchdog's 150 s of that clock, which a fake clock passes without anyone waiting.
TEST(EngineTest, WatchdogRunsOnTheInjectedClock) {
  config::ScenarioConfig sc = DemoScenario(1);
  FakeClock clock;
  const auto start = clock.Now();
  FakeBackend backend(/*auto_events=*/false, &clock);  // the host never says anything
  EngineOptions o;
  o.scenario = &sc;
  o.run_id = "silent";
  o.backend = &backend;
  o.clock = &clock;
  o.hosts = {Plan("silent", "g", true)};
  sc.stop.max_wall = 3600;
  Result<RunResult> r = RunScenario(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->hosts[0].final_state, "failed");
  EXPECT_EQ(r->hosts[0].failed_why, "no sign of life for 150 s (wall)");
  EXPECT_GE(clock.Now() - start, std::chrono::seconds(150));
  EXPECT_GE(r->wall_s, 150.0);
}

TEST(EngineTest, CancelStopsTheRun) {
  config::ScenarioConfig sc = DemoScenario(1);
  FakeBackend backend(false);  // hosts never report: the run would wait for the watchdog
  std::atomic<bool> cancel{true};
  EngineOptions o;
  o.scenario = &sc;
  o.run_id = "cancel";
  o.backend = &backend;
  o.cancel = &cancel;
  o.hosts = {Plan("h", "g", true)};
  Result<RunResult> r = RunScenario(o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, "interrupted");
}

// A game day (realtime, manual runbook, operator actions) on a scripted host: the clock runs with
// the wall and stops while paused; the host boot-loops unparked; a person's boot choice, typed
// lines and restart recover it; everything they did reaches the live view.
TEST(EngineTest, GamedayRunsInRealTimeAndPeopleRemediate) {
  config::ScenarioConfig sc = DemoScenario(8);
  sc.rollout.start = 100;
  sc.rollout.release = 101;
  sc.rollout.revert = 102;
  sc.stop.max_scenario = 120;
  FakeBackend backend(/*auto_events=*/false);
  std::mutex mu;
  std::vector<OperatorAction> queue;
  std::vector<LiveEvent> live;
  auto push = [&](OperatorAction a) {
    std::lock_guard lock(mu);
    queue.push_back(std::move(a));
  };
  auto seen = [&](const std::string& kind, const std::string& detail = {}) -> const LiveEvent* {
    std::lock_guard lock(mu);
    for (const auto& e : live)
      if (e.kind == kind && e.detail.find(detail) != std::string::npos) return &e;
    return nullptr;
  };
  auto wait = [&](const std::function<bool()>& ok) {
    for (int i = 0; i < 1000 && !ok(); ++i) std::this_thread::sleep_for(10ms);
    return ok();
  };
  EngineOptions o;
  o.scenario = &sc;
  o.run_id = "gameday";
  o.backend = &backend;
  o.hosts = {Plan("h", "ws-711", true)};
  o.fault = {291, 2, "C-00000291-00000000-00000002.sys", "bad"};
  o.revert = {291, 3, "C-00000291-00000000-00000003.sys", "good"};
  o.realtime = o.manual = o.wait_for_start = true;
  // The dashboard's part: the live feed in, the people's actions out.
  struct View final : LiveView {
    std::mutex* mu;
    std::vector<LiveEvent>* live;
    std::vector<OperatorAction>* queue;
    void Event(const LiveEvent& e) override {
      std::lock_guard lock(*mu);
      live->push_back(e);
    }
    std::vector<OperatorAction> TakeActions() override {
      std::lock_guard lock(*mu);
      return std::exchange(*queue, {});
    }
  } view;
  view.mu = &mu;
  view.live = &live;
  view.queue = &queue;
  o.live = &view;
  auto called = [&](FakeOp op) {
    FakeHost* h = backend.host("h");
    if (!h) return 0;
    auto calls = h->calls();
    return static_cast<int>(std::count(calls.begin(), calls.end(), op));
  };
  std::thread script([&] {
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(called(FakeOp::kStart), 0);  // nothing before the instructor starts
    push({"instructor", "start", "", "", ""});
    ASSERT_TRUE(wait([&] { return called(FakeOp::kStart) == 1; }));
    backend.Emit("h", HostEventKind::kConsoleLine, "@@winsim ready");
    push({"instructor", "pause", "", "", ""});
    ASSERT_TRUE(wait([&] { return called(FakeOp::kPause) == 1; }));
    std::this_thread::sleep_for(1500ms);
    EXPECT_EQ(seen("release"), nullptr);  // the clock stood still
    push({"instructor", "resume", "", "", ""});
    ASSERT_TRUE(wait([&] { return seen("release") != nullptr; }));
    for (int crash = 0; crash < 2; ++crash) {
      backend.Emit(
          "h", HostEventKind::kConsoleLine,
          "@@bugcheck code=0x00000050 name=PAGE_FAULT_IN_NONPAGED_AREA module=csagent.sys");
      backend.Emit("h", HostEventKind::kPanicked);
      backend.Emit("h", HostEventKind::kReset, "guest");
    }
    ASSERT_TRUE(wait([&] { return seen("state", "boot-loop") != nullptr; }));
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(called(FakeOp::kPause), 1);  // boot-looping, not parked
    push({"trainee", "boot", "h", "safe-mode", ""});
    ASSERT_TRUE(wait([&] { return backend.host("h")->boot() == BootTarget::kSafeMode; }));
    backend.Emit("h", HostEventKind::kReset, "host");
    backend.Emit("h", HostEventKind::kConsoleLine, "@@winsim phase=console env=safe bitlocker=off");
    push({"trainee", "console", "h", "del C-00000291*.sys", "del C-00000291*.sys"});
    ASSERT_TRUE(
        wait([&] { return backend.host("h")->console_input().find("del") != std::string::npos; }));
    backend.Emit("h", HostEventKind::kConsoleLine, "@@winsim cmd=del rc=0 deleted=1");
    ASSERT_TRUE(wait([&] { return seen("revert") != nullptr; }));
    push({"trainee", "console", "h", "restart", "restart"});
    ASSERT_TRUE(wait([&] { return backend.host("h")->boot() == BootTarget::kDisk; }));
    backend.Emit("h", HostEventKind::kConsoleLine, "@@winsim cmd=restart rc=0");
    backend.Emit("h", HostEventKind::kReset, "guest");
    backend.Emit("h", HostEventKind::kConsoleLine, "@@winsim ready");
    ASSERT_TRUE(wait([&] { return seen("state", "-> recovered") != nullptr; }));
    push({"instructor", "end", "", "", ""});
  });
  Result<RunResult> r = RunScenario(o);
  script.join();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, "finished");
  ASSERT_EQ(r->hosts.size(), 1u);
  EXPECT_EQ(r->hosts[0].final_state, "recovered");
  EXPECT_EQ(r->hosts[0].recovered_by, "trainee");
  EXPECT_TRUE(r->hosts[0].boot_loop);
  const LiveEvent* started = seen("started");
  const LiveEvent* release = seen("release");
  ASSERT_TRUE(started && release);
  // 1 scenario second after the start, though the pause held the wall 1.5 s: the release came only
  // after the instructor resumed (an order, not a wall-clock figure, so load cannot change it).
  EXPECT_NEAR(release->scenario_s, 101, 0.3);
  {
    std::lock_guard lock(mu);
    auto index_of = [&](const std::string& kind, const std::string& detail) {
      for (size_t i = 0; i < live.size(); ++i)
        if (live[i].kind == kind && live[i].detail.find(detail) != std::string::npos) return i;
      return live.size();
    };
    const size_t resumed = index_of("action", "instructor resume");
    ASSERT_LT(resumed, live.size()) << "no 'instructor resume' action in the live feed";
    EXPECT_GT(index_of("release", ""), resumed);
  }
  EXPECT_NE(seen("state", "remediating"), nullptr);
  EXPECT_NE(seen("boot-menu", "safe-mode"), nullptr);
  EXPECT_NE(seen("command", "cmd=del rc=0"), nullptr);
  EXPECT_NE(seen("console-input", "restart"), nullptr);
  EXPECT_NE(seen("action", "instructor pause"), nullptr);
  EXPECT_NE(seen("ended"), nullptr);
}

}  // namespace
}  // namespace chaoslab
