// One model of a fleet's recovery, shared by the VM lab (lab/engine) and the simulator (lab/sim).
//
// It holds what is the same whoever performs the machines: the host lifecycle (crashes, boot
// loops, recovered), the runbook (steps one after the other: wait for what a step needs, the human
// part, the machine part, outcome, next step or the end), the organisation's resources
// (technicians per site with shifts and travel, USB sticks, consoles, the key escrow, PXE,
// parallelism, priorities), health of groups and services, and the figures results report.
//
// It knows nothing of QEMU, threads or wall clocks: it advances in scenario time on what its
// driver tells it and asks the driver (`MachineDriver`) for the machine part of each step. The VM
// lab's driver performs it on a real guest; the simulator's draws its outcome from the
// calibration. Its own follow-ups (`Signal`) go onto the driver's agenda, which hands them back
// through `Handle` in scenario-time order.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "lab/config/config.h"
#include "lab/recovery/host_state.h"
#include "lab/recovery/wait_queue.h"
#include "lab/report/results.h"

namespace chaoslab::recovery {

inline constexpr double kInf = std::numeric_limits<double>::infinity();
// Scenario seconds a recovery-console command takes to run once typed (del, manage-bde...).
inline constexpr double kConsoleCommand = 10.0;
// Scenario seconds the PXE repair image needs after it booted (download, unlock, delete).
inline constexpr double kPxeRepair = 120.0;
// Scenario seconds from a content file reaching the sensor to the IPC notification that reads it.
inline constexpr double kIpcAfterLoad = 1.0;

// A service (config::ServiceConfig): down while its hosts' needs are not met; catching up while
// they are but it works off a backlog (or piles one up because an input is not up); up otherwise.
// A service without a backlog is only ever down or up. Outages are whatever is not up.
enum class ServiceState : uint8_t { kDown, kCatchingUp, kUp };
const char* ServiceStateName(ServiceState s);  // "down", "catching-up", "up"

// What a host's runbook waits for. The names are what reports print.
enum class Wait : uint8_t {
  kTurn,  // its place in the queue (every step joins it)
  kSlot,  // a free slot under the runbook's parallelism
  kTechnician,
  kTechnicianOffShift,
  kRemoteConsole,
  kUsbStick,
  kKeyEscrow,
  kPxeServer,
  kHypervisorScript,  // the organisation's hypervisor repair script is being written
  kHypervisor,        // a free hypervisor repair slot (repairs_at_once)
  kTool,              // the step's tool is not published yet (config::ToolConfig)
};
inline constexpr int kWaitKinds = 11;
const char* WaitName(Wait w);

// Where a host's runbook is: wait for what the step needs (kAcquire), the human part (kHuman, a
// modelled duration), then the machine part (kMachine) whose outcome the driver reports.
enum class Stage : uint8_t { kNone, kAcquire, kHuman, kMachine, kFinished };
enum class Outcome : uint8_t { kPending, kOk, kFailed, kHealthy };

// How a host came back: 0 not yet, 1 by itself, 2 + StepKind by that step, kByTrainee by a
// person's own action at a game day (the boot menu).
inline constexpr uint8_t kByTrainee = 255;
std::string RecoveredByName(uint8_t code);

// What the model knows of a host (per group in the simulator, per host in the lab).
struct Profile {
  int site = -1;   // index into setup.sites; -1: none (nobody can come)
  int group = -1;  // index into setup.groups (health, services, the escrow); -1: none
  int rank = 0;    // priority: lower goes first
  bool bitlocker = false;
  bool oob_console = false;
  bool watched = false;  // the escrow or a service depends on its group: health via the agenda
  std::vector<const config::StepConfig*> steps;  // the runbook's steps that apply to it
  // The same for each runbook it may escalate to (RunbookConfig::escalations, in order).
  std::vector<std::vector<const config::StepConfig*>> fallback_steps;
};

// What a step needs (the resources it lists; a person: a technician or a remote console).
// (Inline: the simulator asks for every step of millions of hosts.)
inline bool Needs(const config::StepConfig& step, config::Resource r) {
  for (config::Resource need : step.needs)
    if (need == r) return true;
  return false;
}
inline bool NeedsPerson(const config::StepConfig& step) {
  return Needs(step, config::Resource::kTechnician) ||
         Needs(step, config::Resource::kRemoteConsole);
}
// Whether a site's shifts have its technicians at work at scenario time `t`, and when its next
// shift starts. Shifts are local times of the site (`utc_offset`) on their days; `weekday0` is the
// weekday of scenario day 0 (0 Monday, config::ScenarioDate::Weekday).
bool OnShift(const config::SiteConfig& site, double t, int weekday0);
double NextShiftStart(const config::SiteConfig& site, double t, int weekday0);
// The human part of a step: its own time, travel for a technician's new visit, finding the key.
template <typename Rng>
double HumanPart(const config::StepConfig& step, const config::SiteConfig* site, bool new_visit,
                 bool bitlocker, const config::KeyEscrowConfig& escrow, Rng& rng) {
  double human = step.takes.Sample(rng);
  if (new_visit && site && Needs(step, config::Resource::kTechnician))
    human += site->travel.Sample(rng);
  // The hypervisor's script fetches the key itself: nobody looks it up.
  if (Needs(step, config::Resource::kKeyEscrow) && bitlocker &&
      step.kind != config::StepKind::kHypervisorRepair)
    human += escrow.lookup.Sample(rng);
  return human;
}

// The steps of `runbook` whose conditions a host meets.
std::vector<const config::StepConfig*> StepsFor(const config::RunbookConfig& runbook,
                                                const config::GroupConfig& traits);
// Profile::steps and Profile::fallback_steps of a host with `traits` under `runbook` (both
// drivers build their profiles with it).
void AssignSteps(const config::RunbookConfig& runbook, const config::GroupConfig& traits,
                 Profile* profile);

// Per host: its lifecycle and where its runbook is (compact: the simulator keeps millions).
struct HostRecord {
  double wait_since = 0, queued_at = 0, technician_since = 0, technician_s = 0;
  double first_crash = -1, recovered_at = -1;
  float waited[kWaitKinds] = {};  // seconds per Wait (float: compact for millions of hosts)
  uint32_t token = 0;             // a Continue signal counts only while it matches
  uint16_t profile = 0;
  int16_t crashes = 0, since_healthy = 0, reboots = 0, step_reboots = 0;
  HostState state = HostState::kProvisioning;
  Stage stage = Stage::kNone;
  Outcome outcome = Outcome::kPending;
  Wait waiting_for = Wait::kTurn;
  uint8_t step = 0, sub = 0;
  uint8_t recovered_by = 0;  // RecoveredByName
  uint8_t last_step = 0;     // 0 none, 1 + StepKind of the latest machine part begun
  uint8_t level = 0;  // whose steps it runs: 0 its runbook, n the n-th escalation (on_failure)
  bool runbook_active = false, admitted = false, holds_technician = false, holds_usb = false;
  // One byte for these (a host record stays within 128 bytes: the simulator keeps millions).
  bool holds_hypervisor : 1 = false;  // a hypervisor repair slot, until its disk is back
  bool holds_session : 1 = false;     // a remote console session: a share of a technician
  bool waiting : 1 = false, boot_loop : 1 = false, up : 1 = false;
  // Why its latest step failed, and why it ended failed or lost: indices into the model's texts
  // (Model::Text), which are few, so a host carries two bytes each instead of two strings.
  uint16_t last_failure = 0, failed_why = 0;

  bool InMachinePart() const { return stage == Stage::kMachine && outcome == Outcome::kPending; }
};

// A follow-up the model puts on its driver's agenda.
struct Signal {
  // kBacklog: a service's backlog is worked off (if `token` is still its plan's). kTool: a tool
  // is published now; hosts waiting for it queue again.
  enum Kind : uint8_t {
    kContinue,
    kWake,
    kShift,
    kActivate,
    kHealthUp,
    kHealthDown,
    kBacklog,
    kTool
  };
  Kind kind = kWake;
  uint32_t host = 0;  // kShift: the site; kBacklog: the service
  uint32_t token = 0;
};

// What the model needs from whoever runs the machines.
class MachineDriver {
 public:
  virtual ~MachineDriver() = default;
  // Puts `s` on the agenda; the driver calls Model::Handle(at, s) in scenario-time order.
  virtual void Schedule(double at, const Signal& s) = 0;
  // The human part of `step` on `host`, drawn from the driver's stream for that host.
  virtual double HumanSeconds(uint32_t host, const config::StepConfig& step, bool new_visit) = 0;
  // The machine part of the host's current step begins; its outcome comes back through
  // Settle/SettleNow/Proceed or the lifecycle calls (Healthy, Crashed).
  virtual void StartMachine(uint32_t host, const config::StepConfig& step, double at) = 0;
  // The next action of a multi-action machine part (after Proceed).
  virtual void ContinueMachine(uint32_t host, const config::StepConfig& step, double at) = 0;
  // The host is finished (failed or lost): its machine stops for inspection.
  virtual void StopMachine(uint32_t host) = 0;
  // How long people take to decide to escalate `host` (an on_failure `after`), drawn from the
  // driver's stream for that host.
  virtual double DecisionSeconds(uint32_t host, const config::Distribution& after) = 0;

  // What happened, for a journal or a progress line (the simulator records nothing).
  virtual void Moved(uint32_t, HostState, HostState, double, const std::string&) {}
  virtual void Refused(uint32_t, HostState, HostState, double) {}
  virtual void WaitsFor(uint32_t, const config::StepConfig&, Wait, double) {}
  virtual void StepFailed(uint32_t, const config::StepConfig&, const std::string&, double) {}
  // Its runbook ended without recovery: `next` starts for it at `starts_at` (an on_failure).
  virtual void Escalated(uint32_t, const config::RunbookConfig& /*next*/, double /*at*/,
                         double /*starts_at*/) {}
  virtual void EscrowChanged(bool, double) {}
  virtual void ServiceChanged(size_t, ServiceState, double) {}
};

struct ModelOptions {
  // Runbooks start on their own (at detection, after the revert). A game day: people start them.
  bool automatic = true;
  // The driver's events arrive in scenario-time order, so a machine event may continue the
  // runbook at once (the simulator). The VM lab hears guests ahead of the agenda: everything that
  // touches shared state goes through the agenda.
  bool ordered_events = false;
  // The driver records why each state change happened (MachineDriver::Moved). Without it the
  // model builds no such text: millions of simulated hosts would each pay for it.
  bool narrate = true;
  // The weekday of scenario day 0 (0 Monday): shifts with days depend on it. 4: a Friday, as
  // 2024-07-19 (config::ScenarioDate's default).
  int weekday0 = 4;
  // Scenario day 0: a step's tool (published at a UTC moment) becomes usable at
  // day0.SecondsOf(its available).
  config::ScenarioDate day0;
  // Seeds the draws of each site's crisis staffing (delays and sizes), once per site.
  uint64_t seed = 0;
};

// A site's crisis staffing as drawn (config::CrisisStaffing): absolute delays after the site knows
// of the incident, whole people.
struct SiteStaffing {
  double known_at = kInf;  // when the site knows: its `from`, else its first crash
  double extended_after = kInf, call_in_after = kInf, outside_after = kInf;
  int call_in = 0, outside = 0;
  bool scheduled = false;  // the wake-ups at its changes are on the agenda
};

// Where a host's time went, at `now`.
struct WaitFigures {
  double technician_s = 0, waited_s = 0;
  int longest = -1;  // Wait with the most time, -1 none
  std::string failed_why;
};

class Model {
 public:
  // `profiles` outlives the model (the simulator shares one set among an archetype's
  // organisations). Profile::group indexes `groups` (the setup's groups, by default), by which
  // the key escrow and the services name the hosts they need.
  Model(const config::SetupConfig& setup, const config::RunbookConfig& runbook,
        const std::vector<Profile>& profiles, MachineDriver* driver, ModelOptions options = {},
        std::vector<std::string> groups = {});

  // Hosts, in the driver's index order.
  void Reserve(size_t hosts) { hosts_.reserve(hosts); }
  uint32_t AddHost(uint16_t profile);
  HostRecord& host(uint32_t i) { return hosts_[i]; }
  const HostRecord& host(uint32_t i) const { return hosts_[i]; }
  const Profile& profile(uint32_t i) const { return (*profiles_)[hosts_[i].profile]; }
  size_t size() const { return hosts_.size(); }
  const config::RunbookConfig& runbook() const { return runbook_; }
  const config::SetupConfig& setup() const { return setup_; }
  // The steps of the runbook the host runs now (its own, or the one it escalated to).
  const std::vector<const config::StepConfig*>& Steps(uint32_t i) const {
    const uint8_t level = hosts_[i].level;
    return level == 0 ? profile(i).steps : profile(i).fallback_steps[level - 1u];
  }
  // The runbook the host runs now.
  const config::RunbookConfig& RunbookOf(uint32_t i) const {
    const uint8_t level = hosts_[i].level;
    return level == 0 ? runbook_ : runbook_.escalations[level - 1u].runbook;
  }
  // The step whose machine part is under way or was last begun.
  const config::StepConfig& CurrentStep(uint32_t i) const { return *Steps(i)[hosts_[i].step]; }

  // A site's technicians at scenario time `t`: how many there are (its own, plus those called in
  // and outside help once they arrived), and whether they are at work (on shift, or extended
  // hours). Both only grow during an incident, apart from the shifts.
  int Technicians(int site, double t) const;
  bool OnDuty(int site, double t) const;
  const SiteStaffing& staffing(int site) const { return staffing_[static_cast<size_t>(site)]; }

  // A text a host record refers to (HostRecord::last_failure, failed_why); 0 is "".
  const std::string& Text(uint16_t id) const { return texts_[id]; }
  const std::string& FailedWhy(uint32_t i) const { return texts_[hosts_[i].failed_why]; }

  // Index of a health group by name (-1: none).
  int GroupIndex(const std::string& name) const;

  // A signal from the agenda, at its time.
  void Handle(double at, const Signal& s);

  // --- Lifecycle: what the machine did (its driver tells) ------------------------------------
  void Move(uint32_t i, HostState to, double at, const std::string& why = {});
  // It crashed (`was_running`: from healthy rather than while booting).
  void Crashed(uint32_t i, double at, bool was_running, std::string_view why);
  // It reached healthy: recovered if it had crashed.
  void Healthy(uint32_t i, double at);
  // Its crash dump ended: whether it should be parked (a boot loop nobody acts on yet, or the
  // runbook moves on) rather than boot again.
  bool ShouldPark(uint32_t i) const;
  // It boots again after its crash dump (a reboot step's attempt counts).
  void Rebooting(uint32_t i, double at);
  // A reboot a runbook step asked for (counted in the figures).
  void CountReboot(uint32_t i) {
    hosts_[i].reboots++;
    hosts_[i].step_reboots++;
  }
  // A person restarted the machine by hand (game day: boot menu, reimage): a host that was down
  // is now being remediated. `step`: 1 + StepKind, or kByTrainee - 1 for the boot menu.
  void RestartedByHand(uint32_t i, double at, uint8_t step, const std::string& why);
  // Finished for good: failed (by the runbook or the lab), or lost (its machine is gone).
  void Fail(uint32_t i, double at, const std::string& why, HostState end = HostState::kFailed);

  // --- The runbook -------------------------------------------------------------------------------
  void Activate(uint32_t i, double at);
  // Every crashed host that has not started its runbook (the revert, when runbooks start then).
  void ActivateCrashed(double at);
  // The machine part ended: through the agenda, or (ordered events) at once.
  void Settle(uint32_t i, double at, Outcome o, std::string why = {});
  void SettleNow(uint32_t i, double at, Outcome o, std::string why = {});
  // The machine part's next action, through the agenda.
  void Proceed(uint32_t i, double at);
  // A hypervisor-repair's disk is repaired and back on its host: its repair slot is free for the
  // next disk while the host boots (the slot is freed at the step's end at the latest).
  void DiskRepaired(uint32_t i, double at) { ReleaseHypervisor(i, at); }
  // When the organisation's hypervisor repair script is ready (kInf: nobody asked for it yet).
  double ScriptReadyAt() const { return script_ready_at_; }

  // --- Health of groups: services and the key escrow --------------------------------------------
  // A host's health changed: through the agenda if something depends on its group.
  void HealthChanged(uint32_t i, bool up, double at);
  void ForceEscrowDown(bool down, double at);  // an injected escrow outage
  bool escrow_up() const { return escrow_up_; }
  ServiceState service_state(size_t s) const { return services_[s].state; }
  // A service's backlog at `at` (not before its latest change), in seconds of its normal work.
  double Backlog(size_t s, double at) const { return BacklogAt(services_[s], at); }
  // Each service's outages after the release, as results report them.
  std::vector<ServiceResult> ServiceFigures(double release, double now) const;

  // --- Figures -----------------------------------------------------------------------------------
  WaitFigures Waits(uint32_t i, double now) const;
  // The lifecycle's part of a host's result row.
  void FillResult(uint32_t i, double release, double now, HostResult* r) const;
  // Someone waits for what never comes (a deadlock): the run ends at its deadline.
  bool AnyStalled() const;
  int Stalled() const;

 private:
  const config::SiteConfig* Site(uint32_t i) const {
    const int s = profile(i).site;
    return s >= 0 ? &setup_.sites[static_cast<size_t>(s)] : nullptr;
  }
  WaitKey Key(uint32_t i) const { return {profile(i).rank, hosts_[i].queued_at, i}; }
  // The machine part of a reboot step is under way: its resets are the step's attempts.
  bool InRebootStep(uint32_t i) const {
    return hosts_[i].InMachinePart() && CurrentStep(i).kind == config::StepKind::kReboot;
  }
  void Continue(uint32_t i, double at) {
    driver_->Schedule(at, Signal{Signal::kContinue, i, hosts_[i].token});
  }
  void Advance(uint32_t i, double at);
  // The host's runbook ended without recovery: the next on_failure runbook with steps for it
  // starts after its decision delay (false: there is none).
  bool Escalate(uint32_t i, double at);
  void Decide(uint32_t i, Outcome o, std::string why);  // the machine part's outcome
  uint16_t Intern(const std::string& text);
  // Takes what the step needs and starts its human part, or waits in the queue of what is missing.
  void Acquire(uint32_t i, const config::StepConfig& step, double at);
  // Empty when everything `step` needs is taken, else what is missing (resources.cc).
  std::optional<Wait> TryAcquire(uint32_t i, const config::StepConfig& step, double at);
  bool TakesShared(uint32_t i, const config::StepConfig& step, double at) const;
  // Scenario time the step's tool is published (-inf: it uses none).
  double ToolReadyAt(const config::StepConfig& step) const {
    return step.tool_available ? options_.day0.SecondsOf(*step.tool_available) : -kInf;
  }
  void Block(uint32_t i, Wait why, const config::StepConfig& step);
  void RequestWake(double at);
  void Wake(double at);
  void ScheduleShift(int site, double at);
  void DrawStaffing(uint64_t seed);
  // A host of the site crashed at `at`: the site knows of the incident (crisis staffing).
  void SiteKnows(int site, double at);
  void ReleaseTechnician(uint32_t i, double at);
  void ReleaseSession(uint32_t i, double at);
  // Remote consoles (a site's `remote_consoles`): a host whose step needs a console and no
  // technician in person takes a session, joining a console technician with a free session or
  // bringing one more technician into console work.
  bool WantsSession(uint32_t i, const config::StepConfig& step) const {
    return !Needs(step, config::Resource::kTechnician) &&
           Needs(step, config::Resource::kRemoteConsole) && !hosts_[i].holds_technician &&
           !hosts_[i].holds_session;
  }
  bool JoinsConsoleTechnician(size_t s) const {
    return sessions_[s] < console_techs_[s] * setup_.sites[s].consoles_per_technician;
  }
  bool SessionsCapped(size_t s) const {
    return setup_.sites[s].console_sessions > 0 && sessions_[s] >= setup_.sites[s].console_sessions;
  }
  // Whether a host that wants a session could start one now (queue visits, Wake).
  bool SessionOpen(int site, double at) const {
    const size_t s = static_cast<size_t>(site);
    return !SessionsCapped(s) &&
           (JoinsConsoleTechnician(s) || technicians_busy_[s] < Technicians(site, at)) &&
           OnDuty(site, at);
  }
  void ReleaseHypervisor(uint32_t i, double at);
  bool HypervisorFree() const {
    return setup_.hypervisor.enabled && hypervisor_busy_ < setup_.hypervisor.repairs_at_once;
  }
  void ReleaseAll(uint32_t i, double at);
  // The first host that asks for the hypervisor: the admins start writing the script now.
  void ScriptRequested(double at);
  void ScriptReady(double at);
  void SetUp(uint32_t i, bool up, double at);
  // Services (health.cc): each one's state after its hosts or inputs changed.
  void UpdateServices(double at);
  bool UpdateService(size_t s, double at);  // whether its state changed
  void UpdateEscrow(double at);

  const config::SetupConfig& setup_;
  const config::RunbookConfig& runbook_;
  const std::vector<Profile>* profiles_;
  MachineDriver* driver_;
  ModelOptions options_;
  std::vector<HostRecord> hosts_;
  std::vector<std::string> texts_{""};
  std::unordered_map<std::string, uint16_t> text_ids_{{"", 0}};

  // Resources, as of the latest signal.
  // technicians_busy_ counts those working consoles too (console_techs_ of them, sessions_ open).
  std::vector<int> technicians_busy_, usb_in_use_, sessions_, console_techs_;
  std::vector<double> shift_wake_at_;
  std::vector<SiteStaffing> staffing_;
  // A site's technicians and duty at the latest time asked: Wake asks for every site at each
  // host it serves, all at one time. Cleared when the site's staffing changes (SiteKnows).
  struct DutyMemo {
    double at = std::numeric_limits<double>::quiet_NaN();
    int technicians = 0;
    bool on_duty = false;
    double next_shift = std::numeric_limits<double>::quiet_NaN();  // NextShiftStart, once asked
  };
  mutable std::vector<DutyMemo> duty_memo_;
  const DutyMemo& Duty(size_t site, double at) const;
  double NextShift(size_t site, double at) const;
  int remediating_ = 0;
  int hypervisor_busy_ = 0;
  double script_delay_ = 0;        // drawn once (DrawStaffing's stream)
  double script_ready_at_ = kInf;  // set when the first host asks for the hypervisor
  bool script_ready_noted_ = false;
  bool wake_pending_ = false;
  double wake_at_ = -kInf;
  // Hosts waiting, by what they wait for, in priority order (rank, queue time, index).
  WaitQueue turn_q_, slot_q_, escrow_q_, hypervisor_q_;
  std::vector<WaitQueue> technician_q_, usb_q_, console_q_;
  // Hosts waiting for a tool, by the time it is published (one kTool signal each time).
  std::map<double, WaitQueue> tool_q_;

  // Health.
  std::vector<int> group_up_;
  std::vector<std::string> groups_;
  int escrow_group_ = -1;
  bool escrow_up_ = true, escrow_forced_down_ = false;
  using Intervals = std::vector<std::pair<double, double>>;  // [from, to), to = inf: still
  struct ServiceRecord {
    std::vector<std::pair<int, int>> needs;  // (group, at least)
    std::vector<size_t> inputs;              // the services its backlog takes work from
    double grows = 0, works_off = 0;         // per second; 0: no backlog
    double cap = kInf;                       // the most it piles up, seconds of work
    ServiceState state = ServiceState::kDown;
    bool needs_met = false;
    bool started = false;  // up once: before, the lab was starting, and no work piled up
    // Its backlog, piecewise linear: `amount` seconds of normal work at `since`, changing by
    // `rate` per second from then (+grows piling up to `cap`, -works_off working off, 0).
    double amount = 0, since = 0, rate = 0;
    uint32_t token = 0;                // the kBacklog signal of its current plan
    Intervals outages{{-kInf, kInf}};  // not up (down until its hosts are up)
    Intervals catching_up;
  };
  static double BacklogAt(const ServiceRecord& r, double at) {
    return std::clamp(r.amount + r.rate * (at - r.since), 0.0, r.cap);
  }
  std::vector<ServiceRecord> services_;
  std::vector<size_t> service_order_;  // each service after its inputs
};

}  // namespace chaoslab::recovery
