// Internal to lab/sim: one organisation's simulation (hosts, events, OrgSim), what sim*.cc share.
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "lab/config/config.h"
#include "lab/engine/host_state.h"
#include "lab/report/results.h"
#include "lab/sim/calibration.h"
#include "lab/sim/event_queue.h"

namespace chaoslab::sim::internal {

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
  // Run's parts (sim_org.cc, sim_results.cc).
  void SetUpResources();
  size_t PlaceHosts();
  void Dispatch(const CalendarQueue<Ev>::Entry& e, std::string* ending);
  void ServiceFigures(OrgOut* out) const;

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

// What a step needs, and when a site's technicians are on shift (sim_resources.cc).
bool Needs(const config::StepConfig& step, Resource r);
bool NeedsPerson(const config::StepConfig& step);
bool OnShift(const config::SiteConfig& site, double t);
double NextShiftStart(const config::SiteConfig& site, double t);

// --- The world, planned by PlanWorld (sim.cc) ----------------------------------------------------

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

// The result of all organisations (sim_results.cc): the workers' aggregated rows merged (integer
// sums, so independent of the thread count), and the services of the organisations merged.
void AggregatedRows(const World& w, const std::vector<Aggregator>& aggs,
                    std::vector<HostResult>* hosts);
std::vector<ServiceResult> MergeServices(const World& w, const std::vector<OrgOut>& outs);

}  // namespace chaoslab::sim::internal
