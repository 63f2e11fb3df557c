#include "lab/sim/sim.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include "lab/common/clock_text.h"
#include "lab/config/config_loader.h"
#include "lab/engine/host_state.h"
#include "lab/sim/event_heap.h"
#include "lab/sim/event_queue.h"

namespace chaoslab::sim {
namespace {

using config::Resource;
using config::StepKind;
constexpr double kInf = std::numeric_limits<double>::infinity();
// The engine's constants for what a guest's console costs (lab/engine/run.h): a typed
// recovery-console command, the PXE repair image's own work, content → IPC notification.
constexpr double kConsoleCommand = 10.0;
constexpr double kPxeRepair = 120.0;
constexpr double kIpcAfterLoad = 1.0;

// --- Random streams -----------------------------------------------------------------------------

inline uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
// SplitMix64: 8 bytes of state per host, a full-period 64-bit stream.
struct HostRng {
  uint64_t* state;
  uint64_t operator()() {
    *state += 0x9E3779B97F4A7C15ULL;
    return Mix64(*state);
  }
};
inline double Unit(uint64_t* state) {
  HostRng r{state};
  return static_cast<double>(r() >> 11) * 0x1.0p-53;
}

// --- What the engine does, per host --------------------------------------------------------------

enum Phase : uint8_t { kBooting, kRunning, kCrashDump, kParked, kConsole, kCommand, kOff, kDone };
enum Stage : uint8_t { kNone, kAcquire, kHuman, kMachine, kFinished };
enum Outcome : uint8_t { kPending, kOk, kFailed, kHealthy };
enum Boot : uint8_t { kNormal, kSafe, kWinRE, kUsb, kPxe, kRescue };
enum Cmd : uint8_t { kNoCmd, kUnlock, kDel, kRescueUnlock, kRescueDel };
// What a host waits for; the names are the engine's.
enum Wait : uint8_t {
  kTurn,
  kSlot,
  kTech,
  kTechOffShift,
  kRemote,
  kUsbStick,
  kEscrow,
  kPxeServer,
  kWaitKinds
};
constexpr const char* kWaitNames[kWaitKinds] = {"its turn",       "a free slot (parallelism)",
                                                "technician",     "technician (off shift)",
                                                "remote-console", "usb-stick",
                                                "key-escrow",     "pxe-server"};

struct Host {
  double phase_start = 0, crash_at = 0, parked_at = 0;
  double first_crash = -1, recovered_at = -1;
  double wait_since = 0, queued_at = 0, tech_since = 0, technician_s = 0, data_lost_s = 0;
  float waited[kWaitKinds] = {};
  uint64_t rng = 0;
  uint32_t token = 0, mtoken = 0;
  uint16_t group = 0;
  int16_t crashes = 0, since_healthy = 0, reboots = 0, step_reboots = 0, keys = 0;
  HostState state = HostState::kProvisioning;
  Phase phase = kBooting;
  Stage stage = kNone;
  Outcome outcome = kPending;
  Boot boot = kNormal;
  Cmd cmd = kNoCmd;
  uint8_t step = 0, sub = 0, ring = 0, waiting_for = kTurn;
  uint8_t recovered_by = 0;  // 0 none, 1 itself, 2 + StepKind
  uint8_t last_step = 0;     // 0 none, 1 + StepKind
  uint8_t data_lost = 0;     // 0 none, 1 since-snapshot, 2 all
  bool exposed = false, disk_bad = false, runbook_active = false, admitted = false;
  bool holds_tech = false, holds_usb = false, waiting = false, boot_loop = false, up = false;
  bool locked = false, at_console = false, image_repaired = false, counted_crash = false;
  std::string last_failure, failed_why;
};

struct GroupPlan {
  const config::GroupConfig* g = nullptr;
  int site = 0;
  int out = 0;  // index into the run's output groups
  config::PhaseTiming timing;
  bool online = true, pinned = false, crashes_on_fault = false;
  bool watched = false;  // hosts the key escrow or a service depends on (health goes on the agenda)
  double race_p = 0;
  int rank = 0;
  std::vector<const config::StepConfig*> steps;
};

// One organisation: a setup (scaled), a runbook, and its place in the world.
struct OrgPlan {
  const config::SetupConfig* setup = nullptr;
  const config::RunbookConfig* runbook = nullptr;
  const std::vector<GroupPlan>* groups = nullptr;
  int64_t hosts = 0;
  int archetype = 0;
  int64_t number = 0;  // within its archetype
  uint64_t seed = 0;
  std::string prefix;  // host id prefix ("" for a single organisation)
};

struct Ev {
  enum Kind : uint8_t {
    kRelease,
    kRevert,
    kDeadline,
    kContinue,
    kHealthUp,
    kHealthDown,
    kWake,
    kActivate,
    kShift,
    kBootCheck,
    kReady,
    kRunCrash,
    kReset,
    kConsoleUp,
    kPxeDone,
    kCommandDone,
  };
  uint32_t host = 0;
  uint32_t token = 0;
  Kind kind = kWake;
};
static_assert(sizeof(Ev) == 12);

struct WaitKey {
  int rank;
  double queued_at;
  uint32_t host;
  bool operator<(const WaitKey& o) const {
    if (rank != o.rank) return rank < o.rank;
    if (queued_at != o.queued_at) return queued_at < o.queued_at;
    return host < o.host;
  }
};

// --- Output: per-host rows, or aggregated rows ---------------------------------------------------

struct OutGroup {
  std::string name, site, role, network;
  bool bitlocker = false;
};

struct RowKey {
  uint32_t group;
  uint16_t crashes, reboots, fc_bin, ra_bin, failed;
  uint8_t state, waited_for, recovered_by, data_lost, keys, ring, flags;  // flags: exposed,
                                                                          // boot_loop, recovered,
                                                                          // has fc, has ra
  bool operator==(const RowKey& o) const { return std::memcmp(this, &o, sizeof(RowKey)) == 0; }
};
static_assert(sizeof(RowKey) == 24);
struct RowKeyHash {
  size_t operator()(const RowKey& k) const {
    uint64_t w[3];
    std::memcpy(w, &k, sizeof(w));
    return Mix64(w[0] ^ Mix64(w[1] ^ Mix64(w[2])));
  }
};
struct RowAcc {
  int64_t weight = 0;
  int64_t first_crash_ms = 0, recovered_at_ms = 0, ttr_ms = 0, technician_ms = 0, waited_ms = 0,
          data_lost_ms = 0;
};

int64_t Ms(double s) { return std::llround(s * 1000.0); }
uint16_t TimeBin(double t) {
  if (t <= 0) return 0;
  return static_cast<uint16_t>(1 + std::floor(std::log1p(t / 60.0) / std::log(1.05)));
}

// Per worker thread: rows so far and the failure texts its keys index.
struct Aggregator {
  std::unordered_map<RowKey, RowAcc, RowKeyHash> rows;
  std::vector<std::string> failed_texts{""};
  std::unordered_map<std::string, uint16_t> failed_index{{"", 0}};
  uint16_t Failed(const std::string& why) {
    auto it = failed_index.find(why);
    if (it != failed_index.end()) return it->second;
    if (failed_texts.size() >= 65535) return 0;
    uint16_t i = static_cast<uint16_t>(failed_texts.size());
    failed_texts.push_back(why);
    failed_index.emplace(why, i);
    return i;
  }
};

struct ServiceOut {
  double downtime_s = 0;
  std::optional<double> down_at_s, up_again_s;
  bool up_at_end = true;
};

struct OrgOut {
  std::vector<HostResult> hosts;  // per-host mode
  std::vector<ServiceOut> services;
  double end_s = 0;
  std::string ending;
  uint64_t events = 0;
};

// --- One organisation's simulation
// ----------------------------------------------------------------

class OrgSim {
 public:
  OrgSim(const config::ScenarioConfig& sc, const Calibration& cal, const OrgPlan& plan,
         const std::vector<OutGroup>& out_groups, const std::vector<std::string>& ring_names)
      : sc_(sc), cal_(cal), plan_(plan), out_groups_(out_groups), ring_names_(ring_names) {}

  void Run(bool per_host, Aggregator* agg, OrgOut* out);

 private:
  const config::RunbookConfig& runbook() const { return *plan_.runbook; }
  const config::SetupConfig& setup() const { return *plan_.setup; }
  const GroupPlan& G(const Host& h) const { return (*plan_.groups)[h.group]; }
  const config::SiteConfig& Site(const Host& h) const { return setup().sites[G(h).site]; }
  uint32_t Index(const Host& h) const { return static_cast<uint32_t>(&h - hosts_.data()); }

  void Push(double at, Ev::Kind kind, const Host& h, uint32_t token) {
    q_.Push(at, Ev{Index(h), token, kind});
  }
  void Continue(Host& h, double at) { Push(at, Ev::kContinue, h, h.token); }
  void Settle(Host& h, double at, Outcome o, std::string why = {}) {
    h.outcome = o;
    if (o == kFailed) h.last_failure = std::move(why);
    h.token++;
    Continue(h, at);
  }
  // Settle as the last thing a machine event does: the runbook goes on within this event rather
  // than through one more agenda entry at the same scenario time (the engine's Continue); only
  // the order among same-time entries differs, never a time.
  void SettleNow(Host& h, double at, Outcome o, std::string why = {}) {
    h.outcome = o;
    if (o == kFailed) h.last_failure = std::move(why);
    h.token++;
    Advance(h, at);
  }
  void Proceed(Host& h, double at) {
    h.sub++;
    h.token++;
    Continue(h, at);
  }
  void RequestWake(double at) {
    if (wake_pending_ && wake_at_ == at) return;
    wake_pending_ = true;
    wake_at_ = at;
    q_.Push(at, Ev{0, 0, Ev::kWake});
  }
  bool SeesFault(const Host& h) const {
    return !reverted_ && !G(h).pinned && h.ring < ring_released_.size() && ring_released_[h.ring];
  }
  bool Succeeds(Host& h, StepKind kind) {
    double rate = cal_.StepRate(kind);
    return rate >= 1.0 || Unit(&h.rng) < rate;
  }
  double FetchDelay(Host& h) { return (0.05 + 0.95 * Unit(&h.rng)) * G(h).timing.content_fetch; }

  // A host's health reaches the agenda only if the key escrow or a service depends on its group;
  // for the others nothing shared changes, so it is recorded at once (fewer events).
  void Health(Host& h, bool up, double at) {
    if (G(h).watched) {
      Push(at, up ? Ev::kHealthUp : Ev::kHealthDown, h, 0);
    } else {
      h.up = up;
    }
  }
  void Move(Host& h, HostState to) {
    if (h.state == to || !IsLegalTransition(h.state, to)) return;
    h.state = to;
  }
  void NormalBoot(Host& h, double at);
  void BootInto(Host& h, Boot target, double at);
  void BootCheck(Host& h, double at);
  void OnReady(Host& h, double at);
  void OnCrash(Host& h, double at);
  void OnReset(Host& h, double at);
  void OnConsole(Host& h, double at);
  void OnPxeDone(Host& h, double at);
  void OnCommandDone(Host& h, double at);
  void ActivateRunbook(Host& h, double at);
  void Advance(Host& h, double at);
  int TryAcquire(Host& h, const config::StepConfig& step, double at);  // -1 granted, else Wait
  void Block(Host& h, int why);
  bool TakesShared(const Host& h, const config::StepConfig& step) const;
  void Wake(double at);
  void ReleaseTechnician(Host& h, double at);
  void ReleaseAll(Host& h, double at);
  void StartMachine(Host& h, const config::StepConfig& step, double at);
  void ContinueMachine(Host& h, const config::StepConfig& step, double at);
  void TypeCommand(Host& h, Cmd cmd, double at) {
    h.cmd = cmd;
    h.phase = kCommand;
    Push(at + kConsoleCommand, Ev::kCommandDone, h, h.mtoken);
  }
  void TurnOff(Host& h) {
    if (h.phase == kOff) return;
    h.mtoken++;
    h.phase = kOff;
  }
  void Fail(Host& h, double at, std::string why);
  void SetUp(Host& h, bool up, double at);
  void ReleaseRing(double at, int ring);
  void Revert(double at);
  void Figures(const Host& h, size_t index, bool per_host, Aggregator* agg, OrgOut* out) const;

  const config::ScenarioConfig& sc_;
  const Calibration& cal_;
  const OrgPlan& plan_;
  const std::vector<OutGroup>& out_groups_;
  const std::vector<std::string>& ring_names_;

  std::vector<Host> hosts_;
  CalendarQueue<Ev> q_;
  double now_ = 0;
  double rescue_boot_ = 60;
  bool reverted_ = false, halted_ = false;
  std::vector<bool> ring_released_;
  std::vector<double> ring_release_at_;
  std::vector<int64_t> ring_hosts_, ring_crashed_;
  bool wake_pending_ = false;
  double wake_at_ = -kInf;

  // Shared resources of the organisation.
  std::vector<int> tech_busy_, usb_used_;
  std::vector<double> shift_wake_at_;
  int remediating_ = 0;
  std::vector<int> group_up_;
  int escrow_group_ = -1;
  bool escrow_up_ = true;
  std::vector<std::vector<std::pair<double, double>>> outages_;
  std::vector<std::vector<std::pair<int, int>>> service_needs_;  // (group, at_least)

  // Hosts waiting for resources, by what they wait for (ordered by rank, queue time, index).
  std::set<WaitKey> turn_q_, slot_q_, escrow_q_;
  std::vector<std::set<WaitKey>> tech_q_, usb_q_;
  std::vector<uint32_t> stalled_;  // wait for what never comes (no console, no PXE)
};

void OrgSim::NormalBoot(Host& h, double at) {
  h.mtoken++;
  h.phase = kBooting;
  h.boot = kNormal;
  h.phase_start = at;
  const auto& t = G(h).timing;
  // The driver-load moment matters only when the disk holds the bad file or the cloud may offer
  // it by then; otherwise the boot ends healthy and one event suffices.
  bool check = h.disk_bad;
  if (!check && !reverted_ && G(h).online && !G(h).pinned && !halted_) {
    double release = ring_release_at_[h.ring];
    check = release <= at + t.driver_load;
  }
  if (check) {
    Push(at + t.driver_load, Ev::kBootCheck, h, h.mtoken);
  } else {
    Push(at + t.boot, Ev::kReady, h, h.mtoken);
  }
}

void OrgSim::BootInto(Host& h, Boot target, double at) {
  h.locked = false;
  h.at_console = false;
  h.image_repaired = false;
  if (target == kNormal) {
    NormalBoot(h, at);
    return;
  }
  h.mtoken++;
  h.phase = kBooting;
  h.boot = target;
  h.phase_start = at;
  if (target == kPxe) {
    Push(at + G(h).timing.boot + kPxeRepair, Ev::kPxeDone, h, h.mtoken);
  } else if (target == kRescue) {
    Push(at + rescue_boot_, Ev::kConsoleUp, h, h.mtoken);
  } else {
    Push(at + G(h).timing.boot, Ev::kConsoleUp, h, h.mtoken);
  }
}

// Boot-start drivers load: the sensor reads its cached content and fetches the newest; a bad file
// is read at the first IPC notification unless the reverted one arrived first (the race).
void OrgSim::BootCheck(Host& h, double at) {
  const GroupPlan& g = G(h);
  enum { kNothing, kFault, kGood } offered = kNothing;
  if (g.online) {
    if (SeesFault(h)) {
      offered = kFault;
    } else if (reverted_ && !g.pinned) {
      offered = kGood;
    }
  }
  bool crash = false;
  if (h.disk_bad) {
    h.exposed = true;  // loaded the faulty content from disk
    if (g.crashes_on_fault) {
      if (offered == kGood && Unit(&h.rng) < g.race_p) {
        h.disk_bad = false;  // the reverted file won the race
      } else {
        crash = true;
      }
    }
  } else if (offered == kFault) {
    h.exposed = true;
    h.disk_bad = true;
    crash = g.crashes_on_fault;
  }
  if (crash) {
    OnCrash(h, at);
  } else {
    Push(h.phase_start + g.timing.boot, Ev::kReady, h, h.mtoken);
  }
}

void OrgSim::OnReady(Host& h, double at) {
  h.phase = kRunning;
  h.since_healthy = 0;
  Health(h, true, at);
  // Content published while it booted: it hears of it at its next poll.
  if (G(h).online && SeesFault(h)) {
    h.exposed = true;
    if (G(h).crashes_on_fault) {
      Push(at + FetchDelay(h) + kIpcAfterLoad, Ev::kRunCrash, h, h.mtoken);
    } else {
      h.disk_bad = true;
    }
  }
  if (h.crashes > 0) {
    if (h.recovered_at < 0) h.recovered_at = at;
    if (h.recovered_by == 0) {
      h.recovered_by = h.stage == kMachine && h.step < G(h).steps.size()
                           ? 2 + static_cast<uint8_t>(G(h).steps[h.step]->kind)
                       : h.last_step ? 1 + h.last_step
                                     : 1;
    }
    Move(h, HostState::kRecovered);
    if (h.stage == kMachine && h.outcome == kPending) {
      SettleNow(h, at, kHealthy);
    } else if (h.runbook_active && h.stage != kFinished) {
      h.token++;
      Continue(h, at);
      h.outcome = kHealthy;
      h.stage = kMachine;
    }
  } else {
    Move(h, HostState::kHealthy);
  }
}

void OrgSim::OnCrash(Host& h, double at) {
  const bool was_running = h.phase == kRunning;
  h.crash_at = at;
  h.phase = kCrashDump;
  h.crashes++;
  h.since_healthy++;
  if (h.first_crash < 0) h.first_crash = at;
  if (!h.counted_crash) {
    h.counted_crash = true;
    if (h.ring < ring_crashed_.size()) ring_crashed_[h.ring]++;
  }
  if (was_running || h.up) Health(h, false, at);
  if (h.state == HostState::kRemediating) {
    if (h.stage == kMachine && h.outcome == kPending) {
      const auto& step = *G(h).steps[h.step];
      if (step.kind == StepKind::kReboot && h.step_reboots < step.times) {
        // crashed again; the runbook reboots it (counted at its reset)
      } else if (step.kind == StepKind::kReboot) {
        Settle(h, at, kFailed, fmt::format("still crashing after {} reboot(s)", h.step_reboots));
      } else {
        Settle(h, at, kFailed, "crashed again (PAGE_FAULT_IN_NONPAGED_AREA)");
      }
    }
  } else if (h.since_healthy >= 2) {
    h.boot_loop = true;
    Move(h, HostState::kBootLoop);
  } else {
    Move(h, HostState::kCrashed);
  }
  if (!h.runbook_active && runbook().starts == config::RunbookStart::kAtDetection) {
    Push(at, Ev::kActivate, h, 0);
  }
  Push(at + G(h).timing.crash_dump, Ev::kReset, h, h.mtoken);
}

void OrgSim::OnReset(Host& h, double at) {
  h.phase_start = at;
  const bool keep_running =
      h.stage == kMachine && h.outcome == kPending && G(h).steps[h.step]->kind == StepKind::kReboot;
  const bool park = h.runbook_active ? !keep_running : h.since_healthy >= 2;
  if (park) {
    h.phase = kParked;
    h.parked_at = at;
    return;
  }
  if (h.state == HostState::kCrashed) Move(h, HostState::kBooting);
  if (keep_running) {
    h.reboots++;
    h.step_reboots++;
  }
  NormalBoot(h, at);
}

void OrgSim::OnConsole(Host& h, double at) {
  const bool in_machine = h.stage == kMachine && h.outcome == kPending;
  h.phase = kConsole;
  h.at_console = true;
  // Every recovery environment changes the boot configuration, so the TPM keeps the volume key:
  // an encrypted volume asks for its recovery password.
  h.locked = G(h).g->bitlocker;
  if (h.boot == kRescue) {
    if (in_machine) Proceed(h, at);
    return;
  }
  if (in_machine) {
    const auto& step = *G(h).steps[h.step];
    const bool expected = step.kind == StepKind::kBoot && step.into != config::BootTarget::kPxe;
    if (expected && Succeeds(h, StepKind::kBoot)) {
      SettleNow(h, at, kOk);
    } else {
      SettleNow(h, at, kFailed, expected ? "boot failed" : "stopped at a recovery console");
    }
  }
}

void OrgSim::OnPxeDone(Host& h, double at) {
  const bool in_machine = h.stage == kMachine && h.outcome == kPending;
  // The repair image fetches the recovery password from the escrow itself.
  const bool ok = !G(h).g->bitlocker || escrow_up_;
  if (ok) {
    h.disk_bad = false;
    if (G(h).g->bitlocker) h.keys++;
    NormalBoot(h, at);  // it reboots into Windows by itself
    h.image_repaired = true;
    if (in_machine) Settle(h, at, kOk);
  } else {
    h.phase = kConsole;
    h.at_console = true;
    h.locked = true;
    if (in_machine) Settle(h, at, kFailed, "PXE repair failed: key escrow unavailable");
  }
}

void OrgSim::OnCommandDone(Host& h, double at) {
  const bool in_machine = h.stage == kMachine && h.outcome == kPending;
  h.phase = kConsole;
  const Cmd cmd = h.cmd;
  h.cmd = kNoCmd;
  switch (cmd) {
    case kUnlock:
      h.locked = false;
      if (in_machine) SettleNow(h, at, kOk);
      return;
    case kDel:
      if (h.locked || !Succeeds(h, StepKind::kDelete)) {
        if (in_machine) SettleNow(h, at, kFailed, "del rc=1");
        return;
      }
      h.disk_bad = false;
      if (in_machine) SettleNow(h, at, kOk);
      return;
    case kRescueUnlock:
      h.locked = false;
      if (in_machine) Proceed(h, at);
      return;
    case kRescueDel:
      h.disk_bad = false;
      if (in_machine) Proceed(h, at);
      return;
    case kNoCmd:
      return;
  }
}

void OrgSim::ActivateRunbook(Host& h, double at) {
  if (h.runbook_active) return;
  h.runbook_active = true;
  const HostState s = h.state;
  if (s != HostState::kCrashed && s != HostState::kBootLoop && s != HostState::kBooting) return;
  if (h.crashes == 0) return;
  Move(h, HostState::kRemediating);
  if (G(h).steps.empty()) {
    Fail(h, at, "no step of runbook " + runbook().name + " applies to this host");
    return;
  }
  h.step = 0;
  h.stage = kNone;
  h.token++;
  Continue(h, at);
}

bool Needs(const config::StepConfig& step, Resource r) {
  return std::find(step.needs.begin(), step.needs.end(), r) != step.needs.end();
}
bool NeedsPerson(const config::StepConfig& step) {
  return Needs(step, Resource::kTechnician) || Needs(step, Resource::kRemoteConsole);
}
bool OnShift(const config::SiteConfig& site, double t) {
  if (site.shifts.empty()) return true;
  const double tod = std::fmod(t, 86400.0);
  for (const auto& s : site.shifts) {
    bool in = s.start <= s.end ? (tod >= s.start && tod < s.end) : (tod >= s.start || tod < s.end);
    if (in) return true;
  }
  return false;
}
double NextShiftStart(const config::SiteConfig& site, double t) {
  double best = kInf;
  const double day = std::floor(t / 86400.0) * 86400.0;
  for (const auto& s : site.shifts) {
    for (int d = 0; d <= 1; ++d) {
      double at = day + d * 86400.0 + s.start;
      if (at > t) best = std::min(best, at);
    }
  }
  return best;
}

// The engine's TryAcquire, in its order of checks.
int OrgSim::TryAcquire(Host& h, const config::StepConfig& step, double at) {
  const int s = G(h).site;
  const config::SiteConfig& site = Site(h);
  if (!h.admitted && runbook().parallelism > 0 && remediating_ >= runbook().parallelism)
    return kSlot;
  const bool want_person = NeedsPerson(step) && !h.holds_tech;
  if (want_person) {
    if (tech_busy_[s] >= site.technicians) return kTech;
    if (!OnShift(site, at)) {
      double next = NextShiftStart(site, at);
      if (next < kInf && shift_wake_at_[s] != next) {
        shift_wake_at_[s] = next;
        q_.Push(next, Ev{static_cast<uint32_t>(s), 0, Ev::kShift});
      }
      return kTechOffShift;
    }
  }
  if (Needs(step, Resource::kRemoteConsole) && !G(h).g->oob_console) return kRemote;
  const bool want_usb = Needs(step, Resource::kUsbStick) && !h.holds_usb;
  if (want_usb && usb_used_[s] >= site.usb_sticks) return kUsbStick;
  if (Needs(step, Resource::kKeyEscrow) && G(h).g->bitlocker && !escrow_up_) return kEscrow;
  if (Needs(step, Resource::kPxeServer) && !setup().pxe) return kPxeServer;
  if (!h.admitted) {
    h.admitted = true;
    remediating_++;
  }
  if (want_person) {
    tech_busy_[s]++;
    h.holds_tech = true;
    h.tech_since = at;
  }
  if (want_usb) {
    usb_used_[s]++;
    h.holds_usb = true;
  }
  return -1;
}

// Whether acquiring `step` takes something other hosts may want (a slot, a technician, a stick):
// only then does the order among hosts asking at the same time matter, and the host joins the
// queue. A host that already holds what the step needs, or needs nothing, acquires at once, which
// the engine's queue would also grant it.
bool OrgSim::TakesShared(const Host& h, const config::StepConfig& step) const {
  if (!h.admitted && runbook().parallelism > 0) return true;
  if (NeedsPerson(step) && !h.holds_tech) return true;
  if (Needs(step, Resource::kUsbStick) && !h.holds_usb) return true;
  if (Needs(step, Resource::kRemoteConsole) && !G(h).g->oob_console) return true;
  if (Needs(step, Resource::kKeyEscrow) && G(h).g->bitlocker && !escrow_up_) return true;
  if (Needs(step, Resource::kPxeServer) && !setup().pxe) return true;
  return false;
}

void OrgSim::Block(Host& h, int why) {
  const WaitKey key{G(h).rank, h.queued_at, Index(h)};
  const int s = G(h).site;
  switch (why) {
    case kTurn:
      turn_q_.insert(key);
      return;
    case kSlot:
      slot_q_.insert(key);
      return;
    case kTech:
    case kTechOffShift:
      tech_q_[s].insert(key);
      return;
    case kUsbStick:
      usb_q_[s].insert(key);
      return;
    case kEscrow:
      escrow_q_.insert(key);
      return;
    default:
      stalled_.push_back(Index(h));
      return;
  }
}

// Gives waiting hosts what they wait for in priority order (rank, queue time, index), as the
// engine's Wake does; only queues whose resource is free now are visited, so a host is tried
// again only when what stopped it may have changed.
void OrgSim::Wake(double at) {
  const size_t sites = setup().sites.size();
  while (true) {
    std::set<WaitKey>* best = nullptr;
    auto consider = [&](std::set<WaitKey>& q, bool open) {
      if (!open || q.empty()) return;
      if (!best || *q.begin() < *best->begin()) best = &q;
    };
    consider(turn_q_, true);
    consider(slot_q_, runbook().parallelism == 0 || remediating_ < runbook().parallelism);
    consider(escrow_q_, escrow_up_);
    for (size_t s = 0; s < sites; ++s) {
      const auto& site = setup().sites[s];
      consider(tech_q_[s], tech_busy_[s] < site.technicians && OnShift(site, at));
      consider(usb_q_[s], usb_used_[s] < site.usb_sticks);
    }
    if (!best) break;
    const uint32_t i = best->begin()->host;
    best->erase(best->begin());
    Advance(hosts_[i], at);
  }
  // Hosts waiting for a site that is off shift are woken when its next shift starts.
  for (size_t s = 0; s < sites; ++s) {
    const auto& site = setup().sites[s];
    if (tech_q_[s].empty() || OnShift(site, at)) continue;
    const double next = NextShiftStart(site, at);
    if (next < kInf && shift_wake_at_[s] != next) {
      shift_wake_at_[s] = next;
      q_.Push(next, Ev{static_cast<uint32_t>(s), 0, Ev::kShift});
    }
  }
}

void OrgSim::ReleaseTechnician(Host& h, double at) {
  if (!h.holds_tech) return;
  h.holds_tech = false;
  h.technician_s += std::max(0.0, at - h.tech_since);
  tech_busy_[G(h).site]--;
  RequestWake(at);
}

void OrgSim::ReleaseAll(Host& h, double at) {
  ReleaseTechnician(h, at);
  if (h.holds_usb) {
    h.holds_usb = false;
    usb_used_[G(h).site]--;
  }
  if (h.admitted) {
    h.admitted = false;
    remediating_--;
  }
  if (h.waiting) {
    h.waited[h.waiting_for] += static_cast<float>(std::max(0.0, at - h.wait_since));
    h.waiting = false;
    // Leave whatever queue it was in (it is finished or failed).
    const WaitKey key{G(h).rank, h.queued_at, Index(h)};
    turn_q_.erase(key);
    slot_q_.erase(key);
    escrow_q_.erase(key);
    tech_q_[G(h).site].erase(key);
    usb_q_[G(h).site].erase(key);
  }
  RequestWake(at);
}

void OrgSim::Advance(Host& h, double at) {
  now_ = std::max(now_, at);
  if (h.phase == kDone || h.stage == kFinished) return;
  const auto& steps = G(h).steps;
  while (true) {
    if (h.stage == kMachine) {
      if (h.outcome == kPending) {
        ContinueMachine(h, *steps[h.step], at);
        return;
      }
      if (h.outcome == kHealthy) {
        h.stage = kFinished;
        ReleaseAll(h, at);
        return;
      }
      h.step++;
      h.stage = kNone;
    }
    if (h.step >= steps.size()) {
      ReleaseAll(h, at);
      h.stage = kFinished;
      Fail(h, at,
           h.last_failure.empty() ? "runbook ended without recovery"
                                  : "runbook ended without recovery: " + h.last_failure);
      return;
    }
    const config::StepConfig& step = *steps[h.step];
    if (h.stage == kNone) {
      h.stage = kAcquire;
      h.waiting = true;
      h.waiting_for = kTurn;
      h.wait_since = h.queued_at = at;
      if (!TakesShared(h, step)) continue;  // nothing to queue for: acquire now
      Block(h, kTurn);
      RequestWake(at);
      return;
    }
    if (h.stage == kAcquire) {
      const bool new_visit = NeedsPerson(step) && !h.holds_tech;
      const int missing = TryAcquire(h, step, at);
      if (missing >= 0) {
        if (h.waiting_for != missing) {
          if (at > h.wait_since) h.waited[h.waiting_for] += static_cast<float>(at - h.wait_since);
          h.waiting_for = static_cast<uint8_t>(missing);
          h.wait_since = at;
        }
        Block(h, missing);
        return;
      }
      if (at > h.wait_since) h.waited[h.waiting_for] += static_cast<float>(at - h.wait_since);
      h.waiting = false;
      HostRng rng{&h.rng};
      double human = step.takes.Sample(rng);
      if (new_visit && Needs(step, Resource::kTechnician)) human += Site(h).travel.Sample(rng);
      if (Needs(step, Resource::kKeyEscrow) && G(h).g->bitlocker)
        human += setup().key_escrow.lookup.Sample(rng);
      h.stage = kHuman;
      h.token++;
      Continue(h, at + human);
      return;
    }
    if (h.stage == kHuman) {
      h.stage = kMachine;
      h.outcome = kPending;
      h.sub = 0;
      StartMachine(h, step, at);
      return;
    }
    return;
  }
}

void OrgSim::StartMachine(Host& h, const config::StepConfig& step, double at) {
  h.last_step = 1 + static_cast<uint8_t>(step.kind);
  switch (step.kind) {
    case StepKind::kReboot:
      h.step_reboots = 0;
      if (h.phase == kParked) {
        h.reboots++;
        h.step_reboots++;
        NormalBoot(h, std::max(at, h.parked_at));
      } else if (h.phase == kRunning) {
        Settle(h, at, kHealthy);
      } else if (h.phase == kConsole || h.phase == kOff) {
        BootInto(h, kNormal, at);
        h.reboots++;
        h.step_reboots++;
      }
      return;
    case StepKind::kBoot: {
      Boot target = kSafe;
      switch (step.into) {
        case config::BootTarget::kSafeMode:
          target = kSafe;
          break;
        case config::BootTarget::kWinRE:
          target = kWinRE;
          break;
        case config::BootTarget::kUsb:
          target = kUsb;
          break;
        case config::BootTarget::kPxe:
          target = kPxe;
          break;
      }
      BootInto(h, target, at);
      return;
    }
    case StepKind::kUnlockBitlocker:
      if (h.image_repaired) return Settle(h, at, kOk);
      if (h.phase != kConsole) return Settle(h, at, kFailed, "not at a recovery console");
      if (!h.locked) return Settle(h, at, kOk);
      if (!escrow_up_) return Settle(h, at, kFailed, "key escrow: unavailable");
      h.keys++;
      if (!Succeeds(h, StepKind::kUnlockBitlocker)) {
        return Settle(h, at + kConsoleCommand, kFailed, "unlock rc=1");
      }
      TypeCommand(h, kUnlock, at);
      return;
    case StepKind::kDelete:
      if (h.image_repaired) return Settle(h, at, kOk);
      if (h.phase != kConsole) return Settle(h, at, kFailed, "not at a recovery console");
      TypeCommand(h, kDel, at);
      return;
    case StepKind::kRestart:
      if (h.phase == kRunning) {
        Settle(h, at, kHealthy);
      } else if (h.phase == kConsole) {
        h.at_console = false;
        NormalBoot(h, at + kConsoleCommand);
      } else if (h.phase == kParked || h.phase == kOff) {
        BootInto(h, kNormal, at);
      }
      return;
    case StepKind::kRescueDisk:
    case StepKind::kRevertSnapshot:
    case StepKind::kReimage:
      ContinueMachine(h, step, at);
      return;
  }
}

void OrgSim::ContinueMachine(Host& h, const config::StepConfig& step, double at) {
  if (step.kind == StepKind::kRevertSnapshot || step.kind == StepKind::kReimage) {
    if (step.kind == StepKind::kRevertSnapshot && !setup().snapshots.enabled) {
      return Settle(h, at, kFailed, "the setup keeps no snapshots");
    }
    TurnOff(h);
    h.disk_bad = false;
    if (step.kind == StepKind::kReimage) {
      h.data_lost = 2;
      h.data_lost_s = 0;
    } else {
      double snapshot = setup().snapshots.taken_at;
      while (snapshot > sc_.rollout.release) snapshot -= 86400;
      h.data_lost = 1;
      h.data_lost_s = std::max(0.0, (h.first_crash >= 0 ? h.first_crash : at) - snapshot);
    }
    BootInto(h, kNormal, at);
    return;
  }
  if (step.kind != StepKind::kRescueDisk) return;  // other steps finish by their events
  // rescue-disk: 0 power off and boot the rescue VM, 1 unlock if needed, 2 delete, 3 back home.
  switch (h.sub) {
    case 0:
      TurnOff(h);
      BootInto(h, kRescue, at);
      return;
    case 1:
      if (h.locked) {
        if (!escrow_up_) return Settle(h, at, kFailed, "key escrow: unavailable");
        h.keys++;
        TypeCommand(h, kRescueUnlock, at);
        return;
      }
      h.sub = 2;
      [[fallthrough]];
    case 2:
      TypeCommand(h, kRescueDel, at);
      return;
    case 3:
      h.phase = kOff;
      BootInto(h, kNormal, at);
      return;
    default:
      return;
  }
}

void OrgSim::Fail(Host& h, double at, std::string why) {
  h.mtoken++;  // the machine is paused for inspection: nothing more from it
  h.phase = kDone;
  h.failed_why = std::move(why);
  h.stage = kFinished;
  ReleaseAll(h, at);
  Move(h, HostState::kFailed);
}

void OrgSim::SetUp(Host& h, bool up, double at) {
  if (h.up == up) return;
  h.up = up;
  group_up_[h.group] += up ? 1 : -1;
  const bool escrow = escrow_group_ < 0 || group_up_[escrow_group_] > 0;
  escrow_up_ = escrow;
  for (size_t i = 0; i < service_needs_.size(); ++i) {
    bool svc_up = true;
    for (const auto& [g, at_least] : service_needs_[i])
      if (group_up_[g] < at_least) svc_up = false;
    auto& outages = outages_[i];
    const bool down_now = !outages.empty() && outages.back().second == kInf;
    if (!svc_up && !down_now) {
      outages.push_back({at, kInf});
    } else if (svc_up && down_now) {
      outages.back().second = at;
    }
  }
  RequestWake(at);
}

void OrgSim::ReleaseRing(double at, int ring) {
  if (reverted_ || halted_) return;
  const auto& rings = sc_.rollout.rings;
  const bool staged = sc_.rollout.policy == config::RolloutPolicy::kRings && !rings.empty();
  if (staged && ring > 0 && sc_.rollout.gate.enabled) {
    int64_t n = 0, crashed = 0;
    for (int r = 0; r < ring; ++r) {
      n += ring_hosts_[r];
      crashed += ring_crashed_[r];
    }
    const double rate = n ? static_cast<double>(crashed) / static_cast<double>(n) : 0;
    if (rate > sc_.rollout.gate.max_crash_rate) {
      halted_ = true;
      return;
    }
  }
  ring_released_[ring] = true;
  for (auto& h : hosts_) {
    if (h.phase == kRunning && h.ring == ring && G(h).online && SeesFault(h)) {
      h.exposed = true;
      if (G(h).crashes_on_fault) {
        Push(at + FetchDelay(h) + kIpcAfterLoad, Ev::kRunCrash, h, h.mtoken);
      } else {
        h.disk_bad = true;
      }
    }
  }
}

void OrgSim::Revert(double at) {
  reverted_ = true;
  if (runbook().starts == config::RunbookStart::kAfterRevert) {
    for (auto& h : hosts_)
      if (h.crashes > 0 && !h.runbook_active) ActivateRunbook(h, at);
  }
}

void OrgSim::Run(bool per_host, Aggregator* agg, OrgOut* out) {
  const auto& s = setup();
  const size_t sites = s.sites.size();
  tech_busy_.assign(sites, 0);
  usb_used_.assign(sites, 0);
  shift_wake_at_.assign(sites, -1);
  tech_q_.resize(sites);
  usb_q_.resize(sites);
  group_up_.assign((*plan_.groups).size(), 0);
  for (size_t g = 0; g < s.groups.size(); ++g)
    if (!s.key_escrow.hosted_on.empty() && s.groups[g].name == s.key_escrow.hosted_on)
      escrow_group_ = static_cast<int>(g);
  escrow_up_ = escrow_group_ < 0;
  for (const auto& svc : s.services) {
    std::vector<std::pair<int, int>> needs;
    for (const auto& need : svc.needs)
      for (size_t g = 0; g < s.groups.size(); ++g)
        if (s.groups[g].name == need.group) needs.push_back({static_cast<int>(g), need.at_least});
    service_needs_.push_back(std::move(needs));
    outages_.push_back({{-kInf, kInf}});
  }
  auto cloud = sc_.image.timing.find(config::Role::kCloudVm);
  if (cloud != sc_.image.timing.end()) rescue_boot_ = cloud->second.boot;

  // Rings: a host's ring comes from its own stream (the engine shuffles the fleet; the shares
  // are the same). Pinned hosts are in no ring.
  const auto& rings = sc_.rollout.rings;
  const bool staged = sc_.rollout.policy == config::RolloutPolicy::kRings && !rings.empty();
  const size_t ring_count = staged ? rings.size() : 1;
  ring_released_.assign(ring_count, false);
  ring_hosts_.assign(ring_count, 0);
  ring_crashed_.assign(ring_count, 0);
  ring_release_at_.assign(ring_count, sc_.rollout.release);
  if (staged)
    for (size_t r = 0; r < ring_count; ++r)
      ring_release_at_[r] = sc_.rollout.release + rings[r].after;

  hosts_.resize(static_cast<size_t>(plan_.hosts));
  {
    size_t i = 0;
    for (size_t g = 0; g < (*plan_.groups).size(); ++g) {
      for (int k = 0; k < (*plan_.groups)[g].g->count; ++k, ++i) {
        Host& h = hosts_[i];
        h.group = static_cast<uint16_t>(g);
        h.rng = Mix64(plan_.seed ^ Mix64(i + 1));
        if ((*plan_.groups)[g].pinned) {
          h.ring = 255;
        } else if (staged) {
          const double u = Unit(&h.rng) * 100.0;
          double cumulative = 0;
          h.ring = static_cast<uint8_t>(ring_count - 1);
          for (size_t r = 0; r < ring_count; ++r) {
            cumulative += rings[r].percent;
            if (u < cumulative) {
              h.ring = static_cast<uint8_t>(r);
              break;
            }
          }
        }
        if (h.ring < ring_count) ring_hosts_[h.ring]++;
      }
    }
  }

  const double start = sc_.rollout.start;
  const double deadline = start + sc_.stop.max_scenario;
  now_ = start;
  for (size_t r = 0; r < ring_count; ++r)
    q_.Push(ring_release_at_[r], Ev{static_cast<uint32_t>(r), 0, Ev::kRelease});
  q_.Push(sc_.rollout.revert, Ev{0, 0, Ev::kRevert});
  q_.Push(deadline, Ev{0, 0, Ev::kDeadline});
  for (auto& h : hosts_) {
    Move(h, HostState::kBooting);
    NormalBoot(h, start);
  }

  std::string ending;
  uint64_t events = 0;
  while (ending.empty()) {
    if (q_.next_time() >= deadline) {
      // Quiet until the deadline: settled, unless work was still planned past it; hosts waiting
      // for what never comes wait until the deadline (what they cost), as in the engine.
      const bool more = q_.size() > 1;
      ending = more ? "deadline" : "finished";
      bool stalled = false;
      for (const auto& h : hosts_) stalled |= h.waiting && !IsTerminal(h.state);
      if (more || stalled) now_ = std::max(now_, deadline);
      break;
    }
    auto e = q_.Pop();
    ++events;
    const double at = e.time;
    now_ = std::max(now_, at);
    Host* h = e.payload.kind >= Ev::kContinue && e.payload.kind != Ev::kWake &&
                      e.payload.kind != Ev::kShift
                  ? &hosts_[e.payload.host]
                  : nullptr;
    switch (e.payload.kind) {
      case Ev::kRelease:
        ReleaseRing(at, static_cast<int>(e.payload.host));
        break;
      case Ev::kRevert:
        Revert(at);
        break;
      case Ev::kDeadline:
        ending = "deadline";
        break;
      case Ev::kContinue:
        if (e.payload.token == h->token) Advance(*h, at);
        break;
      case Ev::kHealthUp:
        SetUp(*h, true, at);
        break;
      case Ev::kHealthDown:
        SetUp(*h, false, at);
        break;
      case Ev::kWake:
        wake_pending_ = false;
        Wake(at);
        break;
      case Ev::kShift:
        if (shift_wake_at_[e.payload.host] == at) shift_wake_at_[e.payload.host] = -1;
        Wake(at);
        break;
      case Ev::kActivate:
        ActivateRunbook(*h, at);
        break;
      case Ev::kBootCheck:
        if (e.payload.token == h->mtoken && h->phase == kBooting) BootCheck(*h, at);
        break;
      case Ev::kReady:
        if (e.payload.token == h->mtoken && h->phase == kBooting) OnReady(*h, at);
        break;
      case Ev::kRunCrash:
        if (e.payload.token == h->mtoken && h->phase == kRunning && SeesFault(*h)) {
          h->disk_bad = true;
          OnCrash(*h, at);
        }
        break;
      case Ev::kReset:
        if (e.payload.token == h->mtoken && h->phase == kCrashDump) OnReset(*h, at);
        break;
      case Ev::kConsoleUp:
        if (e.payload.token == h->mtoken && h->phase == kBooting) OnConsole(*h, at);
        break;
      case Ev::kPxeDone:
        if (e.payload.token == h->mtoken && h->phase == kBooting) OnPxeDone(*h, at);
        break;
      case Ev::kCommandDone:
        if (e.payload.token == h->mtoken && h->phase == kCommand) OnCommandDone(*h, at);
        break;
    }
  }
  out->events = events;
  out->ending = ending;
  out->end_s = now_;

  // Services, as the engine's ServiceFigures.
  const double release = sc_.rollout.release;
  const double end = std::max(now_, release);
  for (const auto& outages : outages_) {
    ServiceOut r;
    for (const auto& [down, up] : outages) {
      double from = std::max(down, release), to = std::min(up, end);
      if (to <= from && up != kInf) continue;
      r.downtime_s += std::max(0.0, to - from);
      if (!r.down_at_s) r.down_at_s = from - release;
      if (up == kInf) {
        r.up_at_end = false;
        r.up_again_s.reset();
      } else {
        r.up_again_s = up - release;
      }
    }
    out->services.push_back(r);
  }
  if (per_host) out->hosts.reserve(hosts_.size());
  std::vector<int> seen((*plan_.groups).size(), 0);
  for (size_t i = 0; i < hosts_.size(); ++i) Figures(hosts_[i], i, per_host, agg, out);
}

const char* DataLostName(uint8_t d) { return d == 1 ? "since-snapshot" : d == 2 ? "all" : ""; }
std::string RecoveredByName(uint8_t r) {
  if (r == 0) return "";
  if (r == 1) return "itself";
  return std::string(config::StepKindName(static_cast<StepKind>(r - 2)));
}

void OrgSim::Figures(const Host& h, size_t index, bool per_host, Aggregator* agg,
                     OrgOut* out) const {
  const double release = sc_.rollout.release;
  double technician_s = h.technician_s;
  if (h.holds_tech) technician_s += std::max(0.0, now_ - h.tech_since);
  double waited[kWaitKinds];
  for (int w = 0; w < kWaitKinds; ++w) waited[w] = h.waited[w];
  double waited_s = 0, longest = 0;
  int longest_kind = -1;
  for (int w = 0; w < kWaitKinds; ++w) {
    waited_s += waited[w];
    if (waited[w] > longest) longest = waited[w], longest_kind = w;
  }
  if (h.waiting) {
    const double open = std::max(0.0, now_ - h.wait_since);
    waited_s += open;
    if (open + waited[h.waiting_for] >= longest) longest_kind = h.waiting_for;
  }
  std::string failed_why = h.failed_why;
  if (failed_why.empty() && h.waiting && !IsTerminal(h.state))
    failed_why = std::string("waiting for ") + kWaitNames[h.waiting_for];
  const GroupPlan& g = (*plan_.groups)[h.group];
  const bool recovered = h.recovered_at >= 0;
  const bool has_ring = sc_.rollout.policy == config::RolloutPolicy::kRings && h.ring != 255 &&
                        h.ring < ring_names_.size();
  if (per_host) {
    const OutGroup& og = out_groups_[g.out];
    HostResult r;
    size_t within = index;
    for (size_t k = 0; k < h.group; ++k) within -= static_cast<size_t>((*plan_.groups)[k].g->count);
    r.id = fmt::format("{}{}-{:02}", plan_.prefix, g.g->name, within + 1);
    r.group = og.name;
    r.final_state = std::string(HostStateName(h.state));
    r.exposed = h.exposed;
    r.crashes = h.crashes;
    r.boot_loop = h.boot_loop;
    r.recovered = recovered;
    r.reboots = h.reboots;
    if (h.first_crash >= 0) r.first_crash_s = h.first_crash - release;
    if (h.first_crash >= 0 && recovered) r.time_to_recover_s = h.recovered_at - h.first_crash;
    if (h.crashes > 0) r.stop_code = "PAGE_FAULT_IN_NONPAGED_AREA";
    r.site = og.site;
    r.role = og.role;
    r.bitlocker = og.bitlocker;
    if (recovered) r.recovered_at_s = h.recovered_at - release;
    r.recovered_by = RecoveredByName(h.recovered_by);
    r.technician_s = technician_s;
    r.waited_s = waited_s;
    if (longest_kind >= 0) r.waited_for = kWaitNames[longest_kind];
    r.keys_fetched = h.keys;
    r.data_lost = DataLostName(h.data_lost);
    r.data_lost_s = h.data_lost_s;
    r.failed_why = failed_why;
    if (has_ring) r.ring = ring_names_[h.ring];
    if (g.pinned) r.ring = "pinned";
    r.network = og.network;
    out->hosts.push_back(std::move(r));
    return;
  }
  RowKey k{};
  k.group = static_cast<uint32_t>(g.out);
  k.crashes = static_cast<uint16_t>(h.crashes);
  k.reboots = static_cast<uint16_t>(h.reboots);
  k.fc_bin = h.first_crash >= 0 ? TimeBin(h.first_crash - release) : 0;
  k.ra_bin = recovered ? TimeBin(h.recovered_at - release) : 0;
  k.failed = agg->Failed(failed_why);
  k.state = static_cast<uint8_t>(h.state);
  k.waited_for = static_cast<uint8_t>(longest_kind + 1);
  k.recovered_by = h.recovered_by;
  k.data_lost = h.data_lost;
  k.keys = static_cast<uint8_t>(std::min<int>(h.keys, 255));
  k.ring = g.pinned ? 254 : has_ring ? h.ring : 255;
  k.flags = static_cast<uint8_t>((h.exposed ? 1 : 0) | (h.boot_loop ? 2 : 0) | (recovered ? 4 : 0) |
                                 (h.first_crash >= 0 ? 8 : 0));
  RowAcc& a = agg->rows[k];
  a.weight++;
  if (h.first_crash >= 0) a.first_crash_ms += Ms(h.first_crash - release);
  if (recovered) {
    a.recovered_at_ms += Ms(h.recovered_at - release);
    a.ttr_ms += Ms(h.recovered_at - h.first_crash);
  }
  a.technician_ms += Ms(technician_s);
  a.waited_ms += Ms(waited_s);
  a.data_lost_ms += Ms(h.data_lost_s);
}

// --- Planning the world --------------------------------------------------------------------------

struct World {
  std::vector<config::SetupConfig> setups;      // one per archetype (or the scenario's)
  std::vector<config::RunbookConfig> runbooks;  // likewise
  std::vector<std::string> archetype_names;     // "" for a single organisation
  std::vector<std::vector<GroupPlan>> groups;   // per archetype
  std::vector<OutGroup> out_groups;
  std::vector<OrgPlan> orgs;
  std::vector<std::string> ring_names;
  // Services: per archetype, the names; output index of the first.
  std::vector<size_t> service_base;
  std::vector<std::string> service_names;
  int64_t hosts = 0;
};

Result<std::vector<GroupPlan>> PlanGroups(const config::ScenarioConfig& sc, const Calibration& cal,
                                          const config::SetupConfig& setup,
                                          const config::RunbookConfig& runbook,
                                          const std::string& prefix, World* world) {
  ASSIGN_OR_RETURN(auto ranks, config::PriorityRanks(runbook, setup));
  std::vector<GroupPlan> out;
  for (const auto& g : setup.groups) {
    GroupPlan p;
    p.g = &g;
    for (size_t s = 0; s < setup.sites.size(); ++s)
      if (setup.sites[s].name == g.site) p.site = static_cast<int>(s);
    auto timing = sc.image.timing.find(g.role);
    if (timing != sc.image.timing.end()) p.timing = timing->second;
    p.online = g.online_in_window && g.network != config::Network::kOffline;
    for (const auto& pinned : sc.rollout.pinned) p.pinned |= pinned == g.name;
    p.crashes_on_fault =
        g.sensor_version == "7.11" && sc.fault.kind == config::FaultKind::kChannel291;
    if (p.online && p.crashes_on_fault) {
      auto race = cal.race.find(g.network);
      if (race == cal.race.end()) {
        return Status::FailedPrecondition(fmt::format(
            "calibration {} has no race figures for network profile '{}' (group {} of {}); run "
            "`chaoslab calibrate`",
            cal.file, config::NetworkName(g.network), g.name, setup.name));
      }
      p.race_p = race->second.WinProbability();
    }
    auto rank = ranks.find(g.name);
    if (rank != ranks.end()) p.rank = rank->second;
    p.watched = !setup.key_escrow.hosted_on.empty() && setup.key_escrow.hosted_on == g.name;
    for (const auto& svc : setup.services)
      for (const auto& need : svc.needs) p.watched |= need.group == g.name;
    for (const auto& step : runbook.steps)
      if (config::ConditionsMatch(step.when, g)) p.steps.push_back(&step);
    p.out = static_cast<int>(world->out_groups.size());
    world->out_groups.push_back(OutGroup{prefix + g.name, g.site,
                                         std::string(config::RoleName(g.role)),
                                         std::string(config::NetworkName(g.network)), g.bitlocker});
    out.push_back(p);
  }
  return out;
}

Result<World> PlanWorld(const SimOptions& o) {
  const config::ScenarioConfig& sc = *o.scenario;
  World w;
  for (const auto& r : sc.rollout.rings) w.ring_names.push_back(r.name);
  if (o.mix) {
    for (const auto& a : o.mix->archetypes) {
      w.setups.push_back(a.setup);
      w.runbooks.push_back(a.runbook);
      w.archetype_names.push_back(a.name);
    }
  } else {
    w.setups.push_back(sc.setup);
    w.runbooks.push_back(sc.runbook);
    w.archetype_names.push_back("");
  }
  for (size_t a = 0; a < w.setups.size(); ++a) {
    const std::string prefix = o.mix ? w.archetype_names[a] + "/" : "";
    ASSIGN_OR_RETURN(auto groups,
                     PlanGroups(sc, *o.calibration, w.setups[a], w.runbooks[a], prefix, &w));
    w.groups.push_back(std::move(groups));
    w.service_base.push_back(w.service_names.size());
    for (const auto& svc : w.setups[a].services) w.service_names.push_back(prefix + svc.name);
  }
  uint64_t org_index = 0;
  for (size_t a = 0; a < w.setups.size(); ++a) {
    const int64_t count = o.mix ? o.mix->archetypes[a].organisations : 1;
    const int64_t per_org = config::TotalHosts(w.setups[a]);
    for (int64_t n = 0; n < count; ++n, ++org_index) {
      OrgPlan p;
      p.setup = &w.setups[a];
      p.runbook = &w.runbooks[a];
      p.hosts = per_org;
      p.archetype = static_cast<int>(a);
      p.number = n;
      p.seed = Mix64(sc.seed * 0x9E3779B97F4A7C15ULL + org_index);
      p.prefix = o.mix ? fmt::format("{}.{}/", w.archetype_names[a], n + 1) : "";
      w.hosts += per_org;
      w.orgs.push_back(std::move(p));
    }
  }
  // Group plans are referenced from the orgs (stable now that w.groups is complete).
  for (auto& p : w.orgs) p.groups = &w.groups[static_cast<size_t>(p.archetype)];
  return w;
}

}  // namespace

Result<RunResult> RunSim(const SimOptions& o, SimStats* stats) {
  if (!o.scenario || !o.calibration) {
    return Status::InvalidArgument("RunSim needs a scenario and a calibration");
  }
  const auto wall_start = std::chrono::steady_clock::now();
  const config::ScenarioConfig& sc = *o.scenario;
  ASSIGN_OR_RETURN(World w, PlanWorld(o));
  if (w.hosts == 0) return Status::InvalidArgument("the fleet has no hosts");
  for (size_t a = 0; a < w.setups.size(); ++a) {
    for (const auto& g : w.setups[a].groups) {
      if (g.count > 0xffff * 64) {
        return Status::InvalidArgument("group " + g.name + " is too large for one organisation");
      }
    }
  }
  const bool per_host = w.hosts <= o.host_rows_limit;
  int threads = o.threads > 0 ? o.threads : static_cast<int>(std::thread::hardware_concurrency());
  threads = std::clamp<int>(threads, 1, static_cast<int>(std::min<size_t>(64, w.orgs.size())));
  if (o.progress) {
    o.progress(fmt::format("sim: {} hosts in {} organisation(s), {} thread(s), seed {}", w.hosts,
                           w.orgs.size(), threads, sc.seed));
  }

  // Big organisations first, so the threads finish together.
  std::vector<size_t> order(w.orgs.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return w.orgs[a].hosts > w.orgs[b].hosts; });
  std::vector<OrgOut> outs(w.orgs.size());
  std::vector<Aggregator> aggs(static_cast<size_t>(threads));
  std::atomic<size_t> next{0};
  auto worker = [&](int t) {
    while (true) {
      size_t k = next.fetch_add(1);
      if (k >= order.size()) return;
      const size_t i = order[k];
      OrgSim org(sc, *o.calibration, w.orgs[i], w.out_groups, w.ring_names);
      org.Run(per_host, &aggs[static_cast<size_t>(t)], &outs[i]);
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker, t);
  worker(0);
  for (auto& th : pool) th.join();

  RunResult result;
  result.run_id = o.run_id;
  result.comparison_id = o.comparison_id;
  result.repetition = o.repetition;
  result.scenario = sc.name;
  result.runbook = o.mix ? "mix" : sc.runbook.name;
  result.setup = o.mix ? o.mix->name : sc.setup.name;
  result.backend = "sim";
  result.seed = sc.seed;
  result.started_at = IsoNowUtc();
  result.release_s = sc.rollout.release;
  uint64_t events = 0;
  bool all_finished = true;
  for (const auto& out : outs) {
    events += out.events;
    result.scenario_end_s = std::max(result.scenario_end_s, out.end_s);
    all_finished &= out.ending == "finished";
  }
  result.status = all_finished ? "finished" : "deadline";

  if (per_host) {
    for (auto& out : outs)
      for (auto& h : out.hosts) result.hosts.push_back(std::move(h));
  } else {
    // Merge the workers' rows; integer sums make the result independent of the thread count.
    struct FinalKey {
      uint32_t group;
      uint8_t state;
      std::string failed;
      RowKey key;
      bool operator<(const FinalKey& o) const {
        if (group != o.group) return group < o.group;
        if (state != o.state) return state < o.state;
        if (failed != o.failed) return failed < o.failed;
        RowKey a = key, b = o.key;
        a.failed = b.failed = 0;
        return std::memcmp(&a, &b, sizeof(RowKey)) < 0;
      }
    };
    std::map<FinalKey, RowAcc> rows;
    for (const auto& agg : aggs) {
      for (const auto& [k, acc] : agg.rows) {
        FinalKey fk{k.group, k.state, agg.failed_texts[k.failed], k};
        fk.key.failed = 0;
        RowAcc& r = rows[fk];
        r.weight += acc.weight;
        r.first_crash_ms += acc.first_crash_ms;
        r.recovered_at_ms += acc.recovered_at_ms;
        r.ttr_ms += acc.ttr_ms;
        r.technician_ms += acc.technician_ms;
        r.waited_ms += acc.waited_ms;
        r.data_lost_ms += acc.data_lost_ms;
      }
    }
    std::vector<int> row_of_group(w.out_groups.size(), 0);
    for (const auto& [fk, acc] : rows) {
      const RowKey& k = fk.key;
      const OutGroup& og = w.out_groups[k.group];
      const double n = static_cast<double>(acc.weight);
      HostResult r;
      r.weight = acc.weight;
      r.id = fmt::format("{}#{}", og.name, ++row_of_group[k.group]);
      r.group = og.name;
      r.final_state = std::string(HostStateName(static_cast<HostState>(k.state)));
      r.exposed = k.flags & 1;
      r.boot_loop = k.flags & 2;
      r.recovered = k.flags & 4;
      r.crashes = k.crashes;
      r.reboots = k.reboots;
      if (k.flags & 8) r.first_crash_s = acc.first_crash_ms / 1000.0 / n;
      if (r.recovered) {
        r.recovered_at_s = acc.recovered_at_ms / 1000.0 / n;
        if (k.flags & 8) r.time_to_recover_s = acc.ttr_ms / 1000.0 / n;
      }
      if (k.crashes > 0) r.stop_code = "PAGE_FAULT_IN_NONPAGED_AREA";
      r.site = og.site;
      r.role = og.role;
      r.bitlocker = og.bitlocker;
      r.recovered_by = RecoveredByName(k.recovered_by);
      r.technician_s = acc.technician_ms / 1000.0 / n;
      r.waited_s = acc.waited_ms / 1000.0 / n;
      if (k.waited_for > 0) r.waited_for = kWaitNames[k.waited_for - 1];
      r.keys_fetched = k.keys;
      r.data_lost = DataLostName(k.data_lost);
      r.data_lost_s = acc.data_lost_ms / 1000.0 / n;
      r.failed_why = fk.failed;
      if (k.ring == 254) r.ring = "pinned";
      if (k.ring < w.ring_names.size()) r.ring = w.ring_names[k.ring];
      r.network = og.network;
      result.hosts.push_back(std::move(r));
    }
  }

  // Services: one organisation: as measured; a world: per archetype's service, the mean downtime
  // of its organisations, the first outage, the last return, up at the end only if all are.
  std::vector<ServiceResult> services(w.service_names.size());
  std::vector<int64_t> service_orgs(w.service_names.size(), 0);
  for (size_t s = 0; s < services.size(); ++s) services[s].name = w.service_names[s];
  for (size_t i = 0; i < outs.size(); ++i) {
    const size_t base = w.service_base[static_cast<size_t>(w.orgs[i].archetype)];
    for (size_t s = 0; s < outs[i].services.size(); ++s) {
      const ServiceOut& so = outs[i].services[s];
      ServiceResult& r = services[base + s];
      service_orgs[base + s]++;
      r.downtime_s += so.downtime_s;
      if (so.down_at_s)
        r.down_at_s = r.down_at_s ? std::min(*r.down_at_s, *so.down_at_s) : *so.down_at_s;
      if (so.up_again_s)
        r.up_again_s = r.up_again_s ? std::max(*r.up_again_s, *so.up_again_s) : *so.up_again_s;
      r.up_at_end = r.up_at_end && so.up_at_end;
    }
  }
  for (size_t s = 0; s < services.size(); ++s) {
    if (service_orgs[s] > 1) {
      services[s].downtime_s /= static_cast<double>(service_orgs[s]);
      services[s].name += fmt::format(" (mean of {} organisations)", service_orgs[s]);
    }
    if (!services[s].up_at_end) services[s].up_again_s.reset();
  }
  result.services = std::move(services);
  result.wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  Summarize(&result);
  if (stats) {
    stats->events = events;
    stats->hosts = w.hosts;
    stats->organisations = static_cast<int64_t>(w.orgs.size());
    stats->wall_s = result.wall_s;
  }
  if (o.progress) {
    o.progress(fmt::format("sim: {} events in {:.2f} s wall ({:.1f} M events/s), {} result rows",
                           events, result.wall_s, events / 1e6 / std::max(result.wall_s, 1e-9),
                           result.hosts.size()));
  }
  return result;
}

std::vector<double> HealthyShareAt(const RunResult& run, const std::vector<double>& times_s) {
  std::vector<std::pair<double, double>> from;  // healthy-from, weight
  double total = 0;
  for (const auto& h : run.hosts) {
    const double weight = static_cast<double>(h.weight);
    total += weight;
    std::optional<Outage> outage = HostOutage(h);
    double t = !outage ? 0 : outage->until_s.value_or(kInf);
    from.push_back({t, weight});
  }
  std::sort(from.begin(), from.end());
  std::vector<double> share;
  for (double t : times_s) {
    double healthy = 0;
    for (const auto& [f, wgt] : from) {
      if (f > t) break;
      healthy += wgt;
    }
    share.push_back(total > 0 ? healthy / total : 0);
  }
  return share;
}

namespace {

template <typename Queue>
double EventRate(uint64_t events, int live) {
  Queue q;
  uint64_t state = 291;
  for (int i = 0; i < live; ++i)
    q.Push(Unit(&state) * 3600.0, Ev{static_cast<uint32_t>(i), 0, Ev::kReady});
  // CPU time of this thread: "events per second on one core", also on a machine shared with
  // other work (wall time would count the time other processes had the core).
  timespec t0{}, t1{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
  uint64_t checksum = 0;
  for (uint64_t n = 0; n < events; ++n) {
    auto e = q.Pop();
    checksum += e.payload.host;
    // A mix of what a host schedules next: a boot (45 s), a crash dump (15 s), a human step
    // (minutes), a poll (seconds): exponential-ish spread around a minute.
    const double dt = 1.0 + 120.0 * Unit(&state) * Unit(&state);
    q.Push(e.time + dt, Ev{e.payload.host, e.payload.token + 1, Ev::kReady});
  }
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
  const double s = static_cast<double>(t1.tv_sec - t0.tv_sec) +
                   static_cast<double>(t1.tv_nsec - t0.tv_nsec) / 1e9;
  if (checksum == 42) std::fputs("", stderr);  // keeps the loop from being optimised away
  return static_cast<double>(events) / std::max(s, 1e-9);
}

}  // namespace

double SyntheticEventRate(uint64_t events, int live, bool heap) {
  return heap ? EventRate<EventHeap<Ev>>(events, live) : EventRate<CalendarQueue<Ev>>(events, live);
}

}  // namespace chaoslab::sim
