// Runbook tests: recovery paths, shared technicians, the key escrow on crashed domain controllers,
// services and data loss, over the FakeBackend with a guest model that speaks the recovery-console
// protocol of docs/GUEST-PROTOCOL.md (the real guests are exercised by tests/integration).
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "lab/backend/fake_backend.h"
#include "lab/engine/engine.h"
#include "lab/engine/engine_fakes.h"

namespace chaoslab {
namespace {

using namespace std::chrono_literals;

struct Machine {
  std::string sensor = "7.11";
  bool bitlocker = false;
  std::string password;
  // Disk: the newest channel-291 file on it (0 = deleted, 2 = the faulty one).
  int disk_version = 1;
  bool unlocked = false;  // in a recovery environment
  bool booting = true;
  bool at_console = false;
  BootTarget mode = BootTarget::kDisk;
  std::string rescue_target;  // for rescue VMs: the host whose disk is attached
  int ring = 0;               // rollout ring: offered the faulty version once it is released
  bool silent_crash = false;  // real Windows under TCG: a bugcheck shows only as a guest reset
  size_t console_seen = 0;
  WallClock::time_point next{};  // when it takes its next step (the clock's time)
};

// A fleet of modelled winsim guests on the engine's fake clock: each running machine takes a step
// every 3 ms of that clock, at the engine's polls (FakeBackend::SetTicker), so a run takes no real
// time and comes out the same on any machine. All state is under one mutex: the engine thread's
// reactions and ticks change it; the test reads it.
class Model {
 public:
  Model(FakeBackend* backend, FakeClock* clock, std::map<std::string, Machine> machines)
      : backend_(backend), clock_(clock), m_(std::move(machines)) {
    backend_->SetReaction([this](FakeHost& h, FakeOp op) { React(h, op); });
    backend_->SetTicker([this] { Tick(); });
  }
  void Publish(int version) { server_ = version; }
  void ReleaseRing(int ring) {
    std::lock_guard<std::mutex> lock(mu_);
    released_.insert(ring);
  }
  const testing::FakeEscrow* escrow = nullptr;  // its PXE repair image asks it too
  int DiskVersion(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu_);
    return m_.at(id).disk_version;
  }

 private:
  void Emit(const std::string& id, HostEventKind kind, std::string detail = {}) {
    backend_->Emit(id, kind, std::move(detail));
  }
  void Boot(Machine& g, BootTarget mode) {
    g.booting = true;
    g.at_console = false;
    g.unlocked = false;
    g.mode = mode;
    g.next = clock_->Now() + 3ms;
  }
  // The machine whose disk `g` works on (itself, or the rescue VM's attached disk).
  Machine& Disk(Machine& g) { return g.rescue_target.empty() ? g : m_.at(g.rescue_target); }

  void React(FakeHost& h, FakeOp op) {
    std::lock_guard<std::mutex> lock(mu_);
    const std::string& id = h.spec().id;
    if (!m_.count(id)) {
      if (id.size() > 7 && id.substr(id.size() - 7) == "-rescue") {
        Machine r;
        r.rescue_target = id.substr(0, id.size() - 7);
        m_[id] = r;
      } else {
        return;
      }
    }
    Machine& g = m_.at(id);
    switch (op) {
      case FakeOp::kStart:
      case FakeOp::kReset:
        Boot(g, h.boot());
        break;
      case FakeOp::kRevertDisk:
      case FakeOp::kReimageDisk:
        g.disk_version = 1;
        break;
      case FakeOp::kSendConsole: {
        std::string typed = h.console_input().substr(g.console_seen);
        g.console_seen = h.console_input().size();
        Machine& disk = Disk(g);
        if (typed.rfind("manage-bde -unlock C: -RecoveryPassword ", 0) == 0) {
          std::string pw = typed.substr(40);
          pw.erase(pw.find('\n'));
          g.unlocked = pw == disk.password;
          Emit(id, HostEventKind::kConsoleLine,
               g.unlocked ? "@@winsim cmd=unlock rc=0"
                          : "@@winsim cmd=unlock rc=1 reason=bad-password");
        } else if (typed.rfind("del ", 0) == 0) {
          if (disk.bitlocker && !g.unlocked) {
            Emit(id, HostEventKind::kConsoleLine, "@@winsim cmd=del rc=1 reason=locked");
          } else {
            int n = disk.disk_version == 2 ? 1 : 0;
            if (n) disk.disk_version = 0;
            Emit(id, HostEventKind::kConsoleLine,
                 "@@winsim cmd=del rc=0 deleted=" + std::to_string(n));
          }
        } else if (typed == "restart\n") {
          Emit(id, HostEventKind::kConsoleLine, "@@winsim cmd=restart rc=0");
          Emit(id, HostEventKind::kReset, "guest");
          Boot(g, h.boot());
        }
        break;
      }
      default:
        break;
    }
  }

  void Crash(const std::string& id, Machine& g) {
    if (!g.silent_crash) {
      Emit(id, HostEventKind::kConsoleLine,
           "@@bugcheck code=0x00000050 name=PAGE_FAULT_IN_NONPAGED_AREA module=csagent.sys");
      Emit(id, HostEventKind::kPanicked);
    }
    Emit(id, HostEventKind::kReset, "guest");
    Boot(g, g.mode);
  }

  void Step(const std::string& id, Machine& g) {
    int server = server_;
    // What this host is offered: the faulty version 2 only once its ring got it.
    if (server == 2 && !released_.count(g.ring)) server = 1;
    bool bad = g.disk_version == 2 && g.sensor == "7.11";
    if (g.booting) {
      g.booting = false;
      switch (g.mode) {
        case BootTarget::kDisk:
          if (bad) return Crash(id, g);
          Emit(id, HostEventKind::kConsoleLine, "@@winsim ready");
          return;
        case BootTarget::kPxe: {
          Emit(id, HostEventKind::kConsoleLine, "@@winsim phase=bootmgr mode=pxe");
          if (g.bitlocker && !escrow->up()) {
            Emit(id, HostEventKind::kConsoleLine,
                 "@@winsim repair result=failed reason=escrow-unavailable");
            g.at_console = true;
            return;
          }
          int n = g.disk_version == 2 ? 1 : 0;
          g.disk_version = n ? 0 : g.disk_version;
          Emit(id, HostEventKind::kConsoleLine,
               "@@winsim repair result=ok deleted=" + std::to_string(n));
          Emit(id, HostEventKind::kReset, "guest");
          Boot(g, BootTarget::kDisk);
          return;
        }
        default: {
          Machine& disk = Disk(g);
          std::string env = g.mode == BootTarget::kSafeMode ? "safe"
                            : g.mode == BootTarget::kUsb    ? "usb"
                            : g.mode == BootTarget::kRescue ? "rescue"
                                                            : "winre";
          Emit(id, HostEventKind::kConsoleLine,
               "@@winsim phase=console env=" + env +
                   " bitlocker=" + (disk.bitlocker ? "locked" : "off"));
          g.at_console = true;
          return;
        }
      }
    }
    if (g.mode == BootTarget::kDisk && !g.at_console && server > g.disk_version &&
        g.disk_version != 0) {
      g.disk_version = server;
      Emit(id, HostEventKind::kConsoleLine,
           "@@csagent fetched channel=291 version=" + std::to_string(server));
      if (g.disk_version == 2 && g.sensor == "7.11") return Crash(id, g);
    }
    if (g.mode == BootTarget::kDisk && !g.at_console) {
      Emit(id, HostEventKind::kConsoleLine,
           "@@csagent heartbeat channel=291 version=" + std::to_string(std::max(server, 1)) +
               " cloud=ok");
    }
  }

  void Tick() {
    std::lock_guard<std::mutex> lock(mu_);
    const auto now = clock_->Now();
    for (auto& [id, g] : m_) {
      FakeHost* h = backend_->host(id);
      if (!h || h->power() != FakeHost::Power::kRunning || now < g.next) continue;
      Step(id, g);
      g.next = now + 3ms;
    }
  }

  FakeBackend* backend_;
  FakeClock* clock_;
  std::mutex mu_;
  std::map<std::string, Machine> m_;
  std::set<int> released_;
  std::atomic<int> server_{1};
};

config::StepConfig Step(config::StepKind kind, std::vector<config::Resource> needs = {},
                        double takes = 0) {
  config::StepConfig s;
  s.kind = kind;
  s.needs = std::move(needs);
  s.takes.a = takes;
  return s;
}

config::StepConfig BootStep(config::BootTarget into, std::vector<config::Resource> needs) {
  config::StepConfig s = Step(config::StepKind::kBoot, std::move(needs), 120);
  s.into = into;
  return s;
}

// "Safe mode, unlock if BitLocker, delete, restart", each hands-on step needing a technician.
config::RunbookConfig SafeModeDelete() {
  using R = config::Resource;
  config::RunbookConfig rb;
  rb.name = "safe-mode-delete";
  rb.starts = config::RunbookStart::kAfterRevert;
  rb.steps.push_back(BootStep(config::BootTarget::kSafeMode, {R::kTechnician}));
  config::StepConfig unlock =
      Step(config::StepKind::kUnlockBitlocker, {R::kTechnician, R::kKeyEscrow}, 180);
  unlock.when.bitlocker = true;
  rb.steps.push_back(unlock);
  rb.steps.push_back(Step(config::StepKind::kDelete, {R::kTechnician}, 60));
  rb.steps.push_back(Step(config::StepKind::kRestart, {R::kTechnician}, 10));
  return rb;
}

struct Fleet {
  config::ScenarioConfig sc;
  std::vector<HostPlan> plans;
  std::map<std::string, Machine> machines;

  Fleet() {
    sc.name = "runbook-test";
    sc.seed = 291;
    for (auto role : config::AllRoles())
      sc.image.timing[role] = config::PhaseTiming{45, 20, 15, 60};
    sc.stop.max_wall = 60;
    sc.setup.name = "test-office";
    config::SiteConfig site;
    site.name = "hq";
    site.technicians = 1;
    sc.setup.sites.push_back(site);
  }
  void Add(const std::string& id, const std::string& group, config::Role role, bool bitlocker) {
    HostPlan p;
    p.spec.id = id;
    p.spec.group = group;
    p.role = role;
    p.site = "hq";
    p.bitlocker = bitlocker;
    plans.push_back(p);
    Machine m;
    m.bitlocker = bitlocker;
    m.password = "111111-222222-" + id;
    machines[id] = m;
  }
};

Result<RunResult> RunFleet(Fleet& f, std::map<std::string, int>* keys = nullptr,
                           std::map<std::string, int> priority = {}) {
  FakeClock clock;  // the guest model answers at once: no real time passes
  FakeBackend backend(/*auto_events=*/false, &clock);
  Model model(&backend, &clock, f.machines);
  EngineOptions o;
  o.scenario = &f.sc;
  o.run_id = "runbook-test";
  o.backend = &backend;
  o.clock = &clock;
  o.hosts = f.plans;
  o.fault = {291, 2, "C-00000291-00000000-00000002.sys", "bad"};
  o.revert = {291, 3, "C-00000291-00000000-00000003.sys", "good"};
  testing::FakeContent content;
  content.on_publish = [&](int version) { model.Publish(version); };
  content.on_release = [&](int ring) { model.ReleaseRing(ring); };
  o.content = &content;
  std::map<std::string, std::string> passwords;
  for (const auto& [id, m] : f.machines) passwords[id] = m.password;
  auto escrow = std::make_shared<testing::FakeEscrow>(passwords);
  model.escrow = escrow.get();
  o.escrow = escrow;
  o.rescue_template.kernel = "/fake/vmlinux";
  o.rescue_template.base_disk = "/fake/winpe.img";
  o.usb_media = "/fake/winpe.img";
  o.priority = std::move(priority);
  Result<RunResult> r = RunScenario(o);
  if (keys) *keys = escrow->fetched();
  return r;
}

std::map<std::string, HostResult> ById(const RunResult& r) {
  std::map<std::string, HostResult> out;
  for (const auto& h : r.hosts) out[h.id] = h;
  return out;
}

TEST(EngineRunbookTest, SafeModeDeleteRecoversEveryHostWithOneTechnician) {
  Fleet f;
  f.sc.runbook = SafeModeDelete();
  for (int i = 1; i <= 3; ++i)
    f.Add("ws-0" + std::to_string(i), "ws", config::Role::kWorkstation, false);
  Result<RunResult> r = RunFleet(f);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, "finished");
  std::vector<double> done;
  for (const auto& h : r->hosts) {
    EXPECT_TRUE(h.boot_loop) << h.id;
    EXPECT_TRUE(h.recovered) << h.id << " " << h.failed_why;
    EXPECT_EQ(h.recovered_by, "restart") << h.id;
    // boot 120 + safe boot 45 + delete 60 + command 10 + restart 10 + command 10 + boot 45.
    EXPECT_DOUBLE_EQ(h.technician_s, 120 + 45 + 60 + 10 + 10 + 10 + 45) << h.id;
    ASSERT_TRUE(h.recovered_at_s.has_value());
    done.push_back(*h.recovered_at_s);
  }
  // One technician: the hosts are fixed one after the other, in asset order.
  EXPECT_LT(done[0], done[1]);
  EXPECT_LT(done[1], done[2]);
  EXPECT_DOUBLE_EQ(done[1] - done[0], 300);
  EXPECT_GT(r->hosts[2].waited_s, 0);
  EXPECT_EQ(r->hosts[2].waited_for, "technician");
}

// Real Windows under TCG: no panic event, a bugcheck is only the guest's own reset. With
// reset_is_crash the engine counts those resets as crashes, but not the reset of the `restart`
// typed at the console.
TEST(EngineRunbookTest, WindowsResetsWithoutPanicEventsAreCrashesButRestartIsNot) {
  for (bool reset_is_crash : {true, false}) {
    Fleet f;
    f.sc.runbook = SafeModeDelete();
    f.Add("win-01", "win", config::Role::kWorkstation, false);
    f.plans[0].reset_is_crash = reset_is_crash;
    f.machines["win-01"].silent_crash = true;
    f.sc.stop.max_wall = 5;
    Result<RunResult> r = RunFleet(f);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    const HostResult& h = r->hosts[0];
    if (reset_is_crash) {
      EXPECT_TRUE(h.boot_loop);
      EXPECT_EQ(h.crashes, 2);  // the two before the runbook parked it; not the restart
      EXPECT_TRUE(h.recovered) << h.failed_why;
      EXPECT_EQ(h.recovered_by, "restart");
    } else {
      // Without it the crashes go unseen: the lab never learns the host is down.
      EXPECT_EQ(h.crashes, 0);
      EXPECT_FALSE(h.boot_loop);
    }
  }
}

Fleet EscrowFleet() {
  Fleet f;
  f.sc.runbook = SafeModeDelete();
  f.sc.setup.key_escrow.hosted_on = "dc";
  for (int i = 1; i <= 2; ++i)
    f.Add("bl-0" + std::to_string(i), "ws-bitlocker", config::Role::kWorkstation, true);
  f.Add("dc-01", "dc", config::Role::kDomainController, false);  // last in the asset list
  config::ServiceConfig login;
  login.name = "login";
  login.needs.push_back({"dc", 1, {}});
  f.sc.setup.services.push_back(login);
  return f;
}

TEST(EngineRunbookTest, EscrowOnACrashedControllerStallsBitLockerHostsWithoutPriority) {
  Fleet f = EscrowFleet();
  std::map<std::string, int> keys;
  Result<RunResult> r = RunFleet(f, &keys);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto hosts = ById(*r);
  // The one technician sits at the first BitLocker host waiting for a key nobody can give.
  EXPECT_FALSE(hosts["bl-01"].recovered);
  EXPECT_EQ(hosts["bl-01"].waited_for, "key-escrow");
  EXPECT_EQ(hosts["bl-01"].failed_why, "waiting for key-escrow");
  EXPECT_FALSE(hosts["bl-02"].recovered);
  EXPECT_FALSE(hosts["dc-01"].recovered);
  EXPECT_TRUE(keys.empty());
  ASSERT_EQ(r->services.size(), 1u);
  EXPECT_FALSE(r->services[0].up_at_end);
}

TEST(EngineRunbookTest, FixingTheControllerFirstRecoversBitLockerHosts) {
  Fleet f = EscrowFleet();
  std::map<std::string, int> keys;
  Result<RunResult> r = RunFleet(f, &keys, {{"dc", 0}, {"ws-bitlocker", 1}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto hosts = ById(*r);
  for (const auto& [id, h] : hosts) EXPECT_TRUE(h.recovered) << id << ": " << h.failed_why;
  EXPECT_EQ(hosts["bl-01"].keys_fetched, 1);
  EXPECT_EQ(hosts["bl-02"].keys_fetched, 1);
  EXPECT_EQ(hosts["dc-01"].keys_fetched, 0);
  EXPECT_EQ(keys.size(), 2u);
  EXPECT_LT(*hosts["dc-01"].recovered_at_s, *hosts["bl-01"].recovered_at_s);
  ASSERT_EQ(r->services.size(), 1u);
  EXPECT_TRUE(r->services[0].up_at_end);
  EXPECT_GT(r->services[0].downtime_s, 0);
  EXPECT_DOUBLE_EQ(*r->services[0].up_again_s, *hosts["dc-01"].recovered_at_s);
}

TEST(EngineRunbookTest, SnapshotRevertAndReimageReportDataLost) {
  for (auto kind : {config::StepKind::kRevertSnapshot, config::StepKind::kReimage}) {
    Fleet f;
    f.sc.setup.snapshots.enabled = true;
    f.sc.setup.snapshots.taken_at = 0;  // midnight
    f.sc.runbook.name = "disk";
    f.sc.runbook.steps.push_back(Step(kind, {}, 600));
    f.Add("cloud-01", "cloud", config::Role::kCloudVm, false);
    Result<RunResult> r = RunFleet(f);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    const HostResult& h = r->hosts[0];
    EXPECT_TRUE(h.recovered) << h.failed_why;
    if (kind == config::StepKind::kReimage) {
      EXPECT_EQ(h.data_lost, "all");
    } else {
      EXPECT_EQ(h.data_lost, "since-snapshot");
      // From midnight to the first crash (after the 04:09 release).
      EXPECT_DOUBLE_EQ(h.data_lost_s, f.sc.rollout.release + *h.first_crash_s);
    }
  }
}

TEST(EngineRunbookTest, RescueDiskRepairsAnEncryptedCloudVm) {
  Fleet f;
  f.sc.runbook.name = "cloud-rescue-disk";
  f.sc.runbook.steps.push_back(
      Step(config::StepKind::kRescueDisk, {config::Resource::kKeyEscrow}, 300));
  f.Add("vm-01", "cloud", config::Role::kCloudVm, true);
  std::map<std::string, int> keys;
  Result<RunResult> r = RunFleet(f, &keys);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const HostResult& h = r->hosts[0];
  EXPECT_TRUE(h.recovered) << h.failed_why;
  EXPECT_EQ(h.recovered_by, "rescue-disk");
  EXPECT_EQ(h.keys_fetched, 1);
  EXPECT_EQ(h.technician_s, 0);
}

// The hypervisor's script repairs virtual servers one at a time (repairs_at_once: 1) once it is
// written (10 min): the same rescue VM as rescue-disk, no technician; a physical host is skipped.
TEST(EngineRunbookTest, HypervisorRepairQueuesVirtualServersForItsSlots) {
  Fleet f;
  f.sc.setup.hypervisor.enabled = true;
  f.sc.setup.hypervisor.repairs_at_once = 1;
  f.sc.setup.hypervisor.script_ready.a = 600;
  f.sc.runbook.name = "hypervisor-repair";
  config::StepConfig step = Step(config::StepKind::kHypervisorRepair,
                                 {config::Resource::kHypervisor, config::Resource::kKeyEscrow});
  step.when.on_hypervisor = true;
  f.sc.runbook.steps.push_back(step);
  f.Add("vsrv-01", "vsrv", config::Role::kServer, false);
  f.Add("vsrv-02", "vsrv", config::Role::kServer, true);
  f.Add("vsrv-03", "vsrv", config::Role::kServer, false);
  f.Add("srv-01", "srv", config::Role::kServer, false);
  for (int k = 0; k < 3; ++k) f.plans[static_cast<size_t>(k)].on_hypervisor = true;
  std::map<std::string, int> keys;
  Result<RunResult> r = RunFleet(f, &keys);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::vector<double> waited;
  for (const HostResult& h : r->hosts) {
    SCOPED_TRACE(h.id);
    if (h.id == "srv-01") {
      EXPECT_FALSE(h.recovered);
      EXPECT_NE(h.failed_why.find("no step of runbook hypervisor-repair applies"),
                std::string::npos)
          << h.failed_why;
      continue;
    }
    EXPECT_TRUE(h.recovered) << h.failed_why;
    EXPECT_EQ(h.recovered_by, "hypervisor-repair");
    EXPECT_EQ(h.technician_s, 0);
    EXPECT_EQ(h.keys_fetched, h.id == "vsrv-02" ? 1 : 0);
    waited.push_back(h.waited_s);
  }
  ASSERT_EQ(waited.size(), 3u);
  EXPECT_DOUBLE_EQ(waited[0], 600);
  EXPECT_GT(waited[1], waited[0]) << "the second waits for the first disk";
  EXPECT_GT(waited[2], waited[1]);
}

TEST(EngineRunbookTest, PxeRepairNeedsNoTechnicianAtTheDesk) {
  Fleet f;
  f.sc.setup.pxe = true;
  f.sc.runbook.name = "pxe-repair";
  f.sc.runbook.steps.push_back(BootStep(config::BootTarget::kPxe, {config::Resource::kPxeServer}));
  f.sc.runbook.steps.push_back(Step(config::StepKind::kRestart));
  f.Add("ws-01", "ws", config::Role::kWorkstation, false);
  f.Add("ws-02", "ws", config::Role::kWorkstation, false);
  Result<RunResult> r = RunFleet(f);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  for (const auto& h : r->hosts) {
    EXPECT_TRUE(h.recovered) << h.id << ": " << h.failed_why;
    EXPECT_EQ(h.technician_s, 0);
  }
  // No shared person: both recover at the same scenario time.
  EXPECT_EQ(r->hosts[0].recovered_at_s, r->hosts[1].recovered_at_s);
}

TEST(EngineRunbookTest, TechniciansWorkOnlyOnShift) {
  Fleet f;
  f.sc.runbook = SafeModeDelete();
  f.sc.setup.sites[0].shifts.push_back({8 * 3600.0, 16 * 3600.0, {}});
  f.Add("ws-01", "ws", config::Role::kWorkstation, false);
  Result<RunResult> r = RunFleet(f);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const HostResult& h = r->hosts[0];
  EXPECT_TRUE(h.recovered) << h.failed_why;
  // The revert is at 05:27; the first technician arrives at 08:00.
  EXPECT_GE(*h.recovered_at_s + f.sc.rollout.release, 8 * 3600.0 + 120 + 45);
}

// Sites in time zones on the VM driver: the same model as the simulator's (lab/recovery).
TEST(EngineRunbookTest, SitesWorkTheirLocalShiftsAmericasAfterEurope) {
  Fleet f;
  f.sc.runbook = SafeModeDelete();
  f.sc.setup.sites[0].name = "europe";
  f.sc.setup.sites[0].utc_offset = 2 * 3600.0;  // Berlin in July (CEST)
  config::SiteConfig americas = f.sc.setup.sites[0];
  americas.name = "americas";
  americas.utc_offset = -4 * 3600.0;  // New York in July (EDT)
  f.sc.setup.sites.push_back(americas);
  for (auto& site : f.sc.setup.sites) site.shifts.push_back({8 * 3600.0, 17 * 3600.0, {}});
  f.Add("ws-01", "ws", config::Role::kWorkstation, false);
  f.Add("ws-02", "ws", config::Role::kWorkstation, false);
  f.plans[0].site = "europe";
  f.plans[1].site = "americas";
  Result<RunResult> r = RunFleet(f);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const double release = f.sc.rollout.release;
  // Work after the technician arrives: boot 120 + safe boot 45 + delete 60 + 10 + restart 10 +
  // 10 + boot 45 (SafeModeDelete on this fleet's timing).
  const double work = 120 + 45 + 60 + 10 + 10 + 10 + 45;
  ASSERT_TRUE(r->hosts[0].recovered) << r->hosts[0].failed_why;
  ASSERT_TRUE(r->hosts[1].recovered) << r->hosts[1].failed_why;
  // 08:00 in Berlin is 06:00 UTC; 08:00 in New York is 12:00 UTC.
  EXPECT_DOUBLE_EQ(*r->hosts[0].recovered_at_s + release, 6 * 3600.0 + work);
  EXPECT_DOUBLE_EQ(*r->hosts[1].recovered_at_s + release, 12 * 3600.0 + work);
  EXPECT_EQ(r->hosts[1].waited_for, "technician (off shift)");
}

TEST(EngineRunbookTest, CalledInTechniciansTakeWaitingHosts) {
  Fleet f;
  f.sc.runbook = SafeModeDelete();
  config::StaffArrival call_in;
  call_in.after.a = 3 * 3600.0;  // three hours after the site's first crash
  call_in.technicians.a = 1;
  f.sc.setup.sites[0].crisis.call_in = call_in;
  f.sc.runbook.steps[0].takes.a = 8 * 3600.0;  // a long first step: the one technician is busy
  f.Add("ws-01", "ws", config::Role::kWorkstation, false);
  f.Add("ws-02", "ws", config::Role::kWorkstation, false);
  Result<RunResult> r = RunFleet(f);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(r->hosts[0].recovered && r->hosts[1].recovered);
  const double first_crash = *r->hosts[0].first_crash_s;
  const double gap = *r->hosts[1].recovered_at_s - *r->hosts[0].recovered_at_s;
  // The second host does not wait for the first one's 8 h: it starts when the call-in arrives,
  // 3 h after the first crash, while the revert (when runbooks start) was ~1 h after it.
  EXPECT_GT(gap, 1.5 * 3600.0);
  EXPECT_LT(gap, 2.5 * 3600.0);
  EXPECT_GE(*r->hosts[1].recovered_at_s, first_crash + 3 * 3600.0 + 8 * 3600.0);
  EXPECT_EQ(r->hosts[1].waited_for, "technician");
}

TEST(EngineRunbookTest, SameSeedSameRecoveryTimes) {
  auto run = [] {
    Fleet f = EscrowFleet();
    f.sc.runbook.steps[0].takes.kind = config::Distribution::Kind::kUniform;
    f.sc.runbook.steps[0].takes.a = 60;
    f.sc.runbook.steps[0].takes.b = 600;
    Result<RunResult> r = RunFleet(f, nullptr, {{"dc", 0}, {"ws-bitlocker", 1}});
    EXPECT_TRUE(r.ok());
    std::vector<std::optional<double>> out;
    for (const auto& h : r->hosts) out.push_back(h.recovered_at_s);
    return out;
  };
  auto a = run();
  EXPECT_EQ(a, run());
  for (const auto& t : a) EXPECT_TRUE(t.has_value());
}

TEST(EngineRunbookTest, ParallelismLimitsHostsUnderRepairAtOnce) {
  Fleet f;
  f.sc.runbook = SafeModeDelete();
  for (auto& step : f.sc.runbook.steps) step.needs.clear();  // nobody needed: only the limit
  f.sc.runbook.parallelism = 1;
  for (int i = 1; i <= 3; ++i)
    f.Add("ws-0" + std::to_string(i), "ws", config::Role::kWorkstation, false);
  Result<RunResult> r = RunFleet(f);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::vector<double> done;
  for (const auto& h : r->hosts) {
    ASSERT_TRUE(h.recovered) << h.id << ": " << h.failed_why;
    done.push_back(*h.recovered_at_s);
  }
  // One host at a time: boot 120 + safe boot 45 + delete 60 + 10 + restart 10 + 10 + boot 45.
  EXPECT_DOUBLE_EQ(done[1] - done[0], 300);
  EXPECT_DOUBLE_EQ(done[2] - done[1], 300);
  EXPECT_EQ(r->hosts[2].waited_for, "a free slot (parallelism)");

  f.sc.runbook.parallelism = 0;  // unlimited: all at once
  r = RunFleet(f);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->hosts[0].recovered_at_s, r->hosts[2].recovered_at_s);
}

TEST(EngineRunbookTest, UsbSticksAreSharedPerSite) {
  using R = config::Resource;
  Fleet f;
  f.sc.setup.sites[0].technicians = 2;
  f.sc.setup.sites[0].usb_sticks = 1;
  f.sc.runbook.name = "winpe-usb";
  f.sc.runbook.steps.push_back(BootStep(config::BootTarget::kUsb, {R::kTechnician, R::kUsbStick}));
  f.sc.runbook.steps.push_back(Step(config::StepKind::kDelete, {R::kTechnician}, 60));
  f.sc.runbook.steps.push_back(Step(config::StepKind::kRestart, {R::kTechnician}, 10));
  f.Add("ws-01", "ws", config::Role::kWorkstation, false);
  f.Add("ws-02", "ws", config::Role::kWorkstation, false);
  Result<RunResult> r = RunFleet(f);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  for (const auto& h : r->hosts) EXPECT_TRUE(h.recovered) << h.id << ": " << h.failed_why;
  // Two technicians but one stick: the second host waits for the stick, not for a person.
  EXPECT_EQ(r->hosts[1].waited_for, "usb-stick");
  EXPECT_GT(*r->hosts[1].recovered_at_s, *r->hosts[0].recovered_at_s);
}

TEST(EngineRunbookTest, HealthGateConfinesTheCrashToTheCanaryRing) {
  for (bool gate : {true, false}) {
    Fleet f;
    f.sc.runbook.name = "none";
    f.sc.runbook.steps.push_back(Step(config::StepKind::kReboot));
    f.sc.rollout.policy = config::RolloutPolicy::kRings;
    f.sc.rollout.rings = {{"canary", 25, 0, {}}, {"early", 25, 1800, {}}, {"broad", 50, 3600, {}}};
    f.sc.rollout.gate.enabled = gate;
    f.sc.rollout.gate.max_crash_rate = 0.05;
    f.sc.rollout.revert = f.sc.rollout.release + 4 * 3600;  // after every ring
    for (int i = 1; i <= 4; ++i)
      f.Add("ws-0" + std::to_string(i), "ws", config::Role::kWorkstation, false);
    for (int i = 0; i < 4; ++i) {
      int ring = i == 0 ? 0 : i == 1 ? 1 : 2;
      f.plans[i].ring = ring;
      f.machines[f.plans[i].spec.id].ring = ring;
    }
    Result<RunResult> r = RunFleet(f);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    auto hosts = ById(*r);
    EXPECT_EQ(hosts["ws-01"].ring, "canary");
    EXPECT_TRUE(hosts["ws-01"].exposed);
    EXPECT_GT(hosts["ws-01"].crashes, 0);
    for (const char* id : {"ws-02", "ws-03", "ws-04"}) {
      if (gate) {
        EXPECT_FALSE(hosts[id].exposed) << id;  // halted before the early ring
        EXPECT_EQ(hosts[id].crashes, 0) << id;
      } else {
        EXPECT_GT(hosts[id].crashes, 0) << id;
      }
    }
  }
}

TEST(EngineRunbookTest, PinnedHostsNeverTakeTheFaultyVersion) {
  Fleet f;
  f.sc.runbook.name = "none";
  f.sc.runbook.steps.push_back(Step(config::StepKind::kReboot));
  f.Add("ws-01", "ws", config::Role::kWorkstation, false);
  f.Add("pinned-01", "pinned", config::Role::kWorkstation, false);
  f.plans[1].pinned = true;
  f.machines["pinned-01"].ring = 99;  // the model never offers it version 2
  Result<RunResult> r = RunFleet(f);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, "finished");
  auto hosts = ById(*r);
  EXPECT_GT(hosts["ws-01"].crashes, 0);
  EXPECT_EQ(hosts["pinned-01"].crashes, 0);
  EXPECT_EQ(hosts["pinned-01"].ring, "pinned");
  EXPECT_EQ(hosts["pinned-01"].final_state, "healthy");
}

}  // namespace
}  // namespace chaoslab
