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
#include "lab/recovery/recovery.h"
#include "lab/recovery/remediation.h"
#include "lab/report/results.h"
#include "lab/sim/calibration.h"
#include "lab/sim/event_queue.h"

namespace chaoslab::sim::internal {

using config::Resource;
using config::StepKind;
using recovery::kConsoleCommand;
using recovery::kInf;
using recovery::kIpcAfterLoad;
using recovery::kPxeRepair;
using recovery::Outcome;

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

// --- The machine of a host, as drawn
// --------------------------------------------------------------- (Its lifecycle and runbook are
// the recovery model's: lab/recovery/recovery.h.)

enum Phase : uint8_t { kBooting, kRunning, kCrashDump, kParked, kConsole, kCommand, kOff, kDone };
enum Boot : uint8_t { kNormal, kSafe, kWinRE, kUsb, kPxe, kRescue };
enum Cmd : uint8_t { kNoCmd, kUnlock, kDel, kRescueUnlock, kRescueDel };

struct Host {
  double phase_start = 0, crash_at = 0, parked_at = 0, data_lost_s = 0;
  uint64_t rng = 0;
  uint32_t mtoken = 0;  // a machine event counts only while it matches
  uint16_t group = 0;
  int16_t keys = 0;
  Phase phase = kBooting;
  Boot boot = kNormal;
  Cmd cmd = kNoCmd;
  uint8_t ring = 0;
  uint8_t data_lost = 0;  // 0 none, 1 since-snapshot, 2 all
  bool exposed = false, disk_bad = false, locked = false, at_console = false;
  bool image_repaired = false, counted_crash = false;
  bool remediation_opted_in = false;  // recovery::RemediationOptedIn
};

// A group as the machines see it (its recovery profile is the model's, at the same index).
struct GroupPlan {
  const config::GroupConfig* g = nullptr;
  int out = 0;  // index into the run's output groups
  config::PhaseTiming timing;
  bool online = true, pinned = false, crashes_on_fault = false;
  double race_p = 0;
  double remediation_p = 0;  // a boot's win under the cloud's quarantine (calibration remediation:)
};

// One organisation: a setup (scaled), a runbook, and its place in the world.
struct OrgPlan {
  const config::SetupConfig* setup = nullptr;
  const config::RunbookConfig* runbook = nullptr;
  const std::vector<GroupPlan>* groups = nullptr;
  const std::vector<recovery::Profile>* profiles = nullptr;  // per group
  int64_t hosts = 0;
  int archetype = 0;
  int region = 0;      // Mix::regions (0 without regions)
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
    kBacklog,
    kBootCheck,
    kReady,
    kRunCrash,
    kReset,
    kConsoleUp,
    kPxeDone,
    kCommandDone,
    kTool,  // the model's kTool: a step's tool is published
  };
  uint32_t host = 0;
  uint32_t token = 0;
  Kind kind = kWake;
};
static_assert(sizeof(Ev) == 12);

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
  uint8_t escalations;                                                    // HostRecord::level
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

using ServiceOut = ServiceResult;  // the organisation's own names are not used

struct OrgOut {
  std::vector<HostResult> hosts;  // per-host mode
  std::vector<ServiceOut> services;
  double end_s = 0;
  std::string ending;
  uint64_t events = 0;
  int64_t healthy_24h = 0;  // hosts never down or healthy for good by release + 24 h
};

// --- One organisation's simulation
// ----------------------------------------------------------------

// The draw driver: the recovery model (lab/recovery) with machines whose every outcome is drawn
// from the calibration, on one calendar queue in scenario time.
class OrgSim final : public recovery::MachineDriver {
 public:
  OrgSim(const config::ScenarioConfig& sc, const Calibration& cal, const OrgPlan& plan,
         const std::vector<OutGroup>& out_groups, const std::vector<std::string>& ring_names)
      : sc_(sc),
        cal_(cal),
        plan_(plan),
        out_groups_(out_groups),
        ring_names_(ring_names),
        model_(*plan.setup, *plan.runbook, *plan.profiles, this,
               {.automatic = true,
                .ordered_events = true,
                .narrate = false,
                .weekday0 = sc.date.Weekday(),
                .day0 = sc.date,
                .seed = plan.seed}) {}

  void Run(bool per_host, Aggregator* agg, OrgOut* out);

  // recovery::MachineDriver
  void Schedule(double at, const recovery::Signal& s) override;
  double HumanSeconds(uint32_t host, const config::StepConfig& step, bool new_visit) override;
  void StartMachine(uint32_t host, const config::StepConfig& step, double at) override;
  void ContinueMachine(uint32_t host, const config::StepConfig& step, double at) override;
  void StopMachine(uint32_t host) override;
  double DecisionSeconds(uint32_t host, const config::Distribution& after) override;

 private:
  const config::RunbookConfig& runbook() const { return *plan_.runbook; }
  const config::SetupConfig& setup() const { return *plan_.setup; }
  const GroupPlan& G(const Host& h) const { return (*plan_.groups)[h.group]; }
  uint32_t Index(const Host& h) const { return static_cast<uint32_t>(&h - hosts_.data()); }
  recovery::HostRecord& R(const Host& h) { return model_.host(Index(h)); }
  const recovery::HostRecord& R(const Host& h) const { return model_.host(Index(h)); }

  void Push(double at, Ev::Kind kind, const Host& h, uint32_t token) {
    q_.Push(at, Ev{Index(h), token, kind});
  }
  void Settle(Host& h, double at, Outcome o, std::string why = {}) {
    model_.Settle(Index(h), at, o, std::move(why));
  }
  void SettleNow(Host& h, double at, Outcome o, std::string why = {}) {
    model_.SettleNow(Index(h), at, o, std::move(why));
  }
  bool SeesFault(const Host& h) const {
    return !reverted_ && !G(h).pinned && h.ring < ring_released_.size() && ring_released_[h.ring];
  }
  bool Succeeds(Host& h, StepKind kind) {
    double rate = cal_.StepRate(kind);
    return rate >= 1.0 || Unit(&h.rng) < rate;
  }
  double FetchDelay(Host& h) { return (0.05 + 0.95 * Unit(&h.rng)) * G(h).timing.content_fetch; }
  void NormalBoot(Host& h, double at);
  void BootInto(Host& h, Boot target, double at);
  void BootCheck(Host& h, double at);
  void OnReady(Host& h, double at);
  void OnCrash(Host& h, double at);
  void OnReset(Host& h, double at);
  void OnConsole(Host& h, double at);
  void OnPxeDone(Host& h, double at);
  void OnCommandDone(Host& h, double at);
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
  void ReleaseRing(double at, int ring);
  void Revert(double at);
  void Figures(const Host& h, size_t index, bool per_host, Aggregator* agg, OrgOut* out) const;
  // Run's parts (sim_org.cc, sim_results.cc).
  void SetUpResources();
  size_t PlaceHosts();
  void Dispatch(const CalendarQueue<Ev>::Entry& e, std::string* ending);

  const config::ScenarioConfig& sc_;
  const Calibration& cal_;
  const OrgPlan& plan_;
  const std::vector<OutGroup>& out_groups_;
  const std::vector<std::string>& ring_names_;

  recovery::Model model_;
  std::vector<Host> hosts_;
  CalendarQueue<Ev> q_;
  double now_ = 0;
  double rescue_boot_ = 60;
  bool reverted_ = false, halted_ = false;
  std::vector<bool> ring_released_;
  std::vector<double> ring_release_at_;
  std::vector<int64_t> ring_hosts_, ring_crashed_;
};

// --- The world, planned by PlanWorld (sim.cc) ----------------------------------------------------

struct World {
  std::vector<config::SetupConfig> setups;  // one per archetype (or the scenario's)
  // With regions: per archetype a, region r, at a * regions + r, the setup with every site in the
  // region's time zone (what its organisations run); its groups are setups[a]'s.
  std::vector<config::SetupConfig> regional_setups;
  std::vector<std::string> region_names;
  std::vector<config::RunbookConfig> runbooks;           // likewise
  std::vector<std::string> archetype_names;              // "" for a single organisation
  std::vector<std::vector<GroupPlan>> groups;            // per archetype
  std::vector<std::vector<recovery::Profile>> profiles;  // per archetype, per group
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
