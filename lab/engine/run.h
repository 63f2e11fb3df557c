// Internal to lab/engine (not an API): class Run, one scenario run, and its per-host HostRun.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "lab/engine/engine.h"
#include "lab/engine/event_queue.h"
#include "lab/engine/guest_signal.h"
#include "lab/engine/host_state.h"

namespace chaoslab::engine_internal {

constexpr double kInf = std::numeric_limits<double>::infinity();
// Scenario seconds from a content file reaching the sensor to the IPC notification that reads it.
constexpr double kIpcAfterLoad = 1.0;

// Scenario seconds a recovery-console command takes to run once typed (del, manage-bde...).
constexpr double kConsoleCommand = 10.0;
// Scenario seconds the PXE repair image needs after it booted (download, unlock, delete).
constexpr double kPxeRepair = 120.0;

// What the machine is doing right now (finer than HostState, which is what reports show).
enum class Phase {
  kBooting,    // powered on or reset; ends in "ready", a crash, or a recovery console
  kRunning,    // healthy and running; may be waiting to hear about newly published content
  kCrashDump,  // crashed, until its reset
  kParked,     // vCPUs paused by the engine (boot-loop nobody acts on yet)
  kConsole,    // at a recovery console, waiting for someone to type
  kCommand,    // a console command was typed; its result line is due
  kOff,        // powered off by a runbook step
  kDone,       // nothing more will happen (failed, lost)
};

// Where a host's runbook is. Steps run one after the other: wait for what the step needs
// (kAcquire), the human part (kHuman, a modelled duration), then the machine part (kMachine) whose
// outcome the real guest decides.
enum class Stage { kNone, kAcquire, kHuman, kMachine, kFinished };

struct Outcome {
  enum class Kind { kPending, kOk, kFailed, kHealthy };
  Kind kind = Kind::kPending;
  std::string why;
};

// The ordered agenda: fleet events and everything that touches shared state (resources, services,
// the key escrow) are processed in (scenario time, sequence) order once no machine can precede
// them.
struct AgendaItem {
  enum class Kind { kRelease, kRevert, kDeadline, kContinue, kHealth, kRetry };
  Kind kind;
  size_t host = 0;
  uint64_t token = 0;  // kContinue: ignored unless it matches the host's current token
  bool up = false;     // kHealth
};

struct HostRun {
  HostPlan plan;
  Host* vm = nullptr;
  config::PhaseTiming timing;
  HostStateMachine machine;
  std::mt19937_64 rng;
  size_t index = 0;
  int rank = 0;

  Phase phase = Phase::kBooting;
  double phase_start = 0;  // scenario time the current boot began
  double crash_at = 0;     // scenario time of the latest crash
  double cursor = 0;       // scenario time of the latest stamped signal
  double parked_at = 0;
  double command_at = 0;
  // Waiting to hear whether the host took newly published content (or could not reach the cloud).
  bool awaiting = false;
  double await_since = 0;
  uint32_t await_version = 0;
  std::optional<double> fetched_at;  // stamp of the latest fetch while running
  long long fetched_version = 0;     // newest content version the sensor downloaded
  bool runbook_active = false;
  WallClock::time_point last_heard;
  // The boot gate (EngineOptions::max_booting): holds one of the slots while its own machine boots,
  // or is paused by the gate until one frees up.
  bool boot_slot = false;
  bool gated = false;
  int ignore_shutdowns = 0;  // kShutdown events of power-offs the engine asked for

  // Runbook progress.
  std::vector<const config::StepConfig*> steps;  // the runbook's steps that apply to this host
  size_t step = 0;
  Stage stage = Stage::kNone;
  int sub = 0;  // position inside a multi-action machine part
  Outcome outcome;
  uint64_t token = 0;
  double wait_since = 0;  // since when it waits for `waiting_for`
  double queued_at = 0;   // since when the current step waits at all (the queue's order)
  std::string waiting_for;
  bool waiting = false;  // in the resource wait list
  bool admitted = false;
  bool holds_technician = false;
  double technician_since = 0;
  bool holds_usb = false;
  int step_reboots = 0;
  std::string console_env, console_bitlocker;  // from the latest "phase=console" line
  std::string expect_cmd;                      // console command whose result line is due
  Host* rescue = nullptr;                      // the rescue VM of a rescue-disk step
  bool rescue_running = false;
  std::string last_failure;
  std::string last_step;        // kind of the latest step whose machine part started
  bool image_repaired = false;  // a PXE repair image unlocked and deleted by itself this boot
  bool up = false;  // healthy as the agenda has applied it (for services and the key escrow)

  // Figures.
  bool exposed = false;
  bool rejected_fault = false;  // its sensor refused the faulty content (fixed sensors)
  int crashes = 0;
  int crashes_since_healthy = 0;
  bool expect_guest_reset = false;  // the console's `restart` was typed: its reset is no crash
  bool boot_loop = false;
  int reboots = 0;
  std::optional<double> first_crash_at;
  std::optional<double> recovered_at;
  std::string recovered_by;
  std::string stop_code;
  std::vector<int> race_fetch_ms;  // boots where the sensor fetched newer content: its ms= figure
  double technician_s = 0;
  std::map<std::string, double> waited;  // resource → scenario seconds waited for it
  int keys_fetched = 0;
  std::string data_lost;
  double data_lost_s = 0;
  std::string failed_why;
};

bool Needs(const config::StepConfig& step, config::Resource r);
bool NeedsPerson(const config::StepConfig& step);

class Run {
 public:
  explicit Run(const EngineOptions& o) : o_(o), sc_(*o.scenario) {}

  Result<RunResult> Execute();

 private:
  // Execute's parts. Before the first boot: the hosts, the journal's run, the escrow, the agenda.
  Status Prepare(const RunResult& result);
  // Game day: waits for the instructor's "start" (or "end", or a cancel).
  void WaitForStart(std::string* ending);
  void PowerOn(const std::string& ending);
  // Scenario time up to which the agenda is due.
  double Due() const;
  // Processes the agenda up to Due(); sets `ending` at the deadline.
  void ProcessDue(std::string* ending);
  // Fails the hosts that should report something and have not for EngineOptions::watchdog.
  void Watchdog(WallClock::time_point wall);
  // The backend's events of one poll: to the live view, the journal, then Receive.
  Status PollHosts(std::vector<HostEvent>* events);
  // Lines typed at a host's console (EngineOptions::console_input).
  void ForwardConsoleInput();
  // After the loop: rescue VMs off, the figures, the journal's FinishRun.
  RunResult Finish(RunResult result, const std::string& ending);

  // Scenario time before which host `h` can no longer report anything.
  double LowerBound(const HostRun& h) const;
  double Horizon() const;
  void Receive(const HostEvent& e);
  void OnConsole(HostRun& h, const std::string& line, bool from_rescue);
  void OnRescueConsole(HostRun& h, const GuestSignal& sig, const std::string& line);
  void OnPanicked(HostRun& h);
  void OnReset(HostRun& h);
  void OnShutdown(HostRun& h, const std::string& detail, bool from_rescue);
  void OnReady(HostRun& h, double at);
  void ProcessAgenda(double at, const AgendaItem& item);
  void ProcessFleetEvent(double at, AgendaItem::Kind e);
  void ActivateRunbook(HostRun& h, double at);
  // Keeps at most max_booting machines booting at once (wall clock), pausing the rest in FIFO
  // order.
  void EnforceGate();

  // Game day (EngineOptions::realtime, manual, operator_actions).
  // The scenario clock read from the wall clock (frozen while paused).
  double RealNow() const {
    const auto wall = paused_ ? pause_started_ : WallClock::now();
    return sc_.rollout.start +
           std::chrono::duration<double>(wall - wall_start_ - paused_total_).count();
  }
  // When a machine's signal counts: modelled from the timing profile, or in real time, now.
  double Stamp(double modelled) const { return o_.realtime ? RealNow() : modelled; }
  // Carries out and journals what people did; false once the exercise should end.
  void TakeActions(std::string* ending);
  void ApplyAction(const OperatorAction& a, std::string* ending);
  void Record(const OperatorAction& a, double at);
  void ManualBoot(HostRun& h, const std::string& target, double at);
  void ManualReimage(HostRun& h, double at);
  void BootedByTrainee(HostRun& h, double at, const std::string& step, const std::string& why);
  void PauseFleet(double at);
  void ResumeFleet(double at);
  void SecondUpdate(double at);
  // Realtime: every host is done (recovered, failed, lost) or healthy and not expecting content.
  bool Settled() const;
  void UpdateEscrow(double at);

  // Runbook machinery.
  void Continue(HostRun& h, double at) {
    agenda_.Push(at, {AgendaItem::Kind::kContinue, h.index, h.token});
  }
  void Settle(HostRun& h, double at, Outcome::Kind kind, std::string why = {});
  // A multi-action step moves to its next action at `at`.
  void Proceed(HostRun& h, double at) {
    h.sub++;
    h.token++;
    Continue(h, at);
  }
  void Advance(HostRun& h, double at);
  // Tries to take what the current step needs; empty when granted, else what is missing.
  std::string TryAcquire(HostRun& h, const config::StepConfig& step, double at);
  void ReleaseTechnician(HostRun& h, double at);
  void ReleaseAll(HostRun& h, double at);
  void Wake(double at);
  void StartMachine(HostRun& h, const config::StepConfig& step, double at);
  void ContinueMachine(HostRun& h, const config::StepConfig& step, double at);
  void TypeCommand(HostRun& h, const std::string& cmd, const std::string& text, double at,
                   bool on_rescue);
  void BootInto(HostRun& h, BootTarget target, double at);
  void PowerCycle(HostRun& h, double at);  // power off, then the step's disk action, then start
  void FinishRunbook(HostRun& h, double at);
  bool EscrowUp() const;
  // Whether the faulty version is (still) offered to this host.
  bool SeesFault(const HostRun& h) const {
    return !reverted_ && !h.plan.pinned && h.plan.ring < static_cast<int>(ring_released_.size()) &&
           ring_released_[h.plan.ring];
  }
  void ReleaseRing(double at, int ring);
  void SetUp(HostRun& h, bool up, double at);

  void Fail(HostRun& h, double at, const std::string& why);
  void Lose(HostRun& h, double at, const std::string& why);
  // A Host call refused with Unavailable means the machine is not there (its QEMU exited, its
  // hypervisor went away: backend.h): the host is lost, not failed. True when `s` said so.
  bool LostIfGone(HostRun& h, const Status& s, double at, const std::string& what);
  void Move(HostRun& h, HostState to, double at, const std::string& why = {});
  void Note(double at, const std::string& host, const std::string& kind, const std::string& detail);
  void Progress(double at, const std::string& text);
  // A journal write that failed: said at once, the first kept for RunResult::journal_error.
  void Journaled(double at, const Status& s);
  HostResult Figures(const HostRun& h) const;
  void ServiceFigures(RunResult* result) const;
  double FetchDelay(HostRun& h) {
    std::uniform_real_distribution<double> d(0.05, 1.0);
    return d(h.rng) * h.timing.content_fetch;
  }
  const config::RunbookConfig& runbook() const { return sc_.runbook; }
  const config::SiteConfig* Site(const HostRun& h) const {
    for (const auto& s : sc_.setup.sites)
      if (s.name == h.plan.site) return &s;
    return sc_.setup.sites.empty() ? nullptr : &sc_.setup.sites.front();
  }

  const EngineOptions& o_;
  const config::ScenarioConfig& sc_;
  std::vector<HostRun> hosts_;
  std::map<std::string, size_t> by_id_;
  std::map<std::string, size_t> by_rescue_id_;
  EventQueue<AgendaItem> agenda_;
  double now_ = 0;  // scenario clock: time of the latest processed agenda item or signal
  WallClock::time_point wall_start_;
  bool released_ = false, reverted_ = false;
  std::vector<bool> ring_released_;  // per ring: the faulty version is visible to it
  std::deque<size_t> gate_queue_;    // hosts paused by the boot gate, oldest first
  bool rollout_halted_ = false;
  double rescue_boot_ = 60;  // scenario seconds a rescue VM takes to boot (cloud-vm timing)
  double deadline_ = kInf;

  // Shared resources, as of now_ (changed only while processing the agenda).
  std::map<std::string, int> technicians_busy_;  // site → technicians at work on a host
  std::map<std::string, int> usb_in_use_;        // site → sticks plugged into a host
  int remediating_ = 0;                          // hosts admitted (for `parallelism`)
  std::map<std::string, int> group_up_;          // group → hosts up
  bool escrow_up_ = true;
  bool escrow_forced_down_ = false;  // the "escrow-down" inject
  // Game day: pause (EngineOptions::realtime).
  bool paused_ = false;
  std::string journal_error_;  // the first journal write that failed
  WallClock::time_point pause_started_;
  WallClock::duration paused_total_{};
  std::vector<size_t> paused_hosts_;  // machines the pause stopped (to resume exactly those)
  bool second_released_ = false;
  // Service outages: per service, [down, up) intervals in scenario time (up = inf while down).
  std::vector<std::vector<std::pair<double, double>>> outages_;
};

}  // namespace chaoslab::engine_internal
