// Internal to lab/engine (not an API): class Run, one scenario run, and its per-host HostRun.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "lab/engine/engine.h"
#include "lab/engine/guest_signal.h"
#include "lab/recovery/event_heap.h"
#include "lab/recovery/recovery.h"

namespace chaoslab::engine_internal {

using recovery::kConsoleCommand;
using recovery::kInf;
using recovery::kIpcAfterLoad;
using recovery::kPxeRepair;
using recovery::Outcome;

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

// The ordered agenda: fleet events and everything that touches shared state (resources, services,
// the key escrow) are processed in (scenario time, sequence) order once no machine can precede
// them.
struct AgendaItem {
  enum class Kind { kRelease, kRevert, kRemediation, kDeadline, kModel };
  Kind kind;
  size_t ring = 0;          // kRelease
  recovery::Signal signal;  // kModel: the recovery model's own follow-up
};

// A host's machine as the VM driver sees it (its lifecycle and runbook are the model's).
struct HostRun {
  HostPlan plan;
  Host* vm = nullptr;
  config::PhaseTiming timing;
  std::mt19937_64 rng;
  uint32_t index = 0;

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
  WallClock::time_point last_heard;
  // The boot gate (EngineOptions::max_booting): holds one of the slots while its own machine boots,
  // or is paused by the gate until one frees up.
  bool boot_slot = false;
  bool gated = false;
  int ignore_shutdowns = 0;  // kShutdown events of power-offs the engine asked for

  std::string console_env, console_bitlocker;  // from the latest "phase=console" line
  std::string expect_cmd;                      // console command whose result line is due
  Host* rescue = nullptr;                      // the rescue VM of a rescue-disk step
  bool rescue_running = false;
  bool image_repaired = false;  // a PXE repair image unlocked and deleted by itself this boot

  // Figures of the machine (the lifecycle's are the model's).
  bool exposed = false;
  bool rejected_fault = false;      // its sensor refused the faulty content (fixed sensors)
  bool expect_guest_reset = false;  // the console's `restart` was typed: its reset is no crash
  std::string stop_code;
  std::vector<int> race_fetch_ms;  // boots where the sensor fetched newer content: its ms= figure
  int keys_fetched = 0;
  std::string data_lost;
  double data_lost_s = 0;
};

// The VM driver: the recovery model (lab/recovery) with real guests, on an agenda the guests'
// signals may not precede.
class Run final : public recovery::MachineDriver {
 public:
  explicit Run(const EngineOptions& o)
      : o_(o),
        sc_(*o.scenario),
        clock_(o.clock ? o.clock : &SystemClock()),
        model_(sc_.setup, sc_.runbook, profiles_, this,
               {.automatic = !o.manual,
                .ordered_events = false,
                .narrate = true,
                .weekday0 = sc_.date.Weekday(),
                .day0 = sc_.date,
                .seed = sc_.seed},
               HealthGroups(o)) {}

  Result<RunResult> Execute();

  // recovery::MachineDriver
  void Schedule(double at, const recovery::Signal& s) override {
    agenda_.Push(at, {AgendaItem::Kind::kModel, 0, s});
  }
  double HumanSeconds(uint32_t host, const config::StepConfig& step, bool new_visit) override;
  void StartMachine(uint32_t host, const config::StepConfig& step, double at) override;
  void ContinueMachine(uint32_t host, const config::StepConfig& step, double at) override;
  void StopMachine(uint32_t host) override;
  double DecisionSeconds(uint32_t host, const config::Distribution& after) override;
  void Moved(uint32_t host, HostState from, HostState to, double at,
             const std::string& why) override;
  void Refused(uint32_t host, HostState from, HostState to, double at) override;
  void WaitsFor(uint32_t host, const config::StepConfig& step, recovery::Wait w,
                double at) override;
  void StepFailed(uint32_t host, const config::StepConfig& step, const std::string& why,
                  double at) override;
  void Escalated(uint32_t host, const config::RunbookConfig& next, double at,
                 double starts_at) override;
  void EscrowChanged(bool up, double at) override;
  void ServiceChanged(size_t service, recovery::ServiceState state, double at) override;

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
  void OnSensorLine(HostRun& h, const GuestSignal& sig, const std::string& text);
  void OnConsoleLine(HostRun& h, const GuestSignal& sig, const std::string& text);
  void OnBootLine(HostRun& h, const GuestSignal& sig, const std::string& text);
  void OnRescueConsole(HostRun& h, const GuestSignal& sig, const std::string& line);
  void OnPanicked(HostRun& h);
  void OnReset(HostRun& h);
  void OnShutdown(HostRun& h, const std::string& detail, bool from_rescue);
  void OnReady(HostRun& h, double at);
  void ProcessAgenda(double at, const AgendaItem& item);
  void Revert(double at);
  // The vendor's cloud remediation becomes available: the opted-in online hosts' manifests carry
  // the quarantine from now on.
  void StartRemediation(double at);
  // Keeps at most max_booting machines booting at once (wall clock), pausing the rest in FIFO
  // order.
  void EnforceGate();

  // Game day (EngineOptions::realtime, manual, operator_actions).
  // The scenario clock read from the wall clock (frozen while paused).
  double RealNow() const {
    const auto wall = paused_ ? pause_started_ : Now();
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
  // `step`: the model's code of the latest step (recovery::RestartedByHand).
  void BootedByTrainee(HostRun& h, double at, uint8_t step, const std::string& why);
  void PauseFleet(double at);
  void ResumeFleet(double at);
  void SecondUpdate(double at);
  // Realtime: every host is done (recovered, failed, lost) or healthy and not expecting content.
  bool Settled() const;

  // The model's view of a host.
  recovery::HostRecord& R(const HostRun& h) { return model_.host(h.index); }
  const recovery::HostRecord& R(const HostRun& h) const { return model_.host(h.index); }
  HostState StateOf(const HostRun& h) const { return model_.host(h.index).state; }
  void Settle(HostRun& h, double at, Outcome o, std::string why = {}) {
    model_.Settle(h.index, at, o, std::move(why));
  }
  void Proceed(HostRun& h, double at) { model_.Proceed(h.index, at); }
  // The groups whose health the model follows: the setup's, and any other a host stands in.
  static std::vector<std::string> HealthGroups(const EngineOptions& o);
  // The host's recovery profile, from its plan.
  recovery::Profile ProfileOf(const HostPlan& plan) const;
  void TypeCommand(HostRun& h, const std::string& cmd, const std::string& text, double at,
                   bool on_rescue);
  void BootInto(HostRun& h, BootTarget target, double at);
  // The machine parts of steps (run_steps.cc).
  void StartReboot(HostRun& h, double at);
  void StartRestart(HostRun& h, double at);
  void TypeUnlock(HostRun& h, double at, bool on_rescue);
  void TypeDelete(HostRun& h, const config::StepConfig& step, double at, bool on_rescue);
  void ReplaceDisk(HostRun& h, const config::StepConfig& step, double at);
  void BootRescueVm(HostRun& h, double at);
  bool PowerOff(HostRun& h, Host* vm, double at);  // false: the step failed
  bool TurnOff(HostRun& h, double at);             // the host's own machine, if not off
  void StartNormally(HostRun& h, double at);
  // Whether the faulty version is (still) offered to this host.
  bool SeesFault(const HostRun& h) const {
    return !reverted_ && !h.plan.pinned && h.plan.ring < static_cast<int>(ring_released_.size()) &&
           ring_released_[h.plan.ring];
  }
  void ReleaseRing(double at, int ring);
  // Running online hosts that `offered` says get `version` now will hear of it at their next poll.
  void AwaitContent(uint32_t version, double at,
                    const std::function<bool(const HostRun&)>& offered);

  void Fail(HostRun& h, double at, const std::string& why) { model_.Fail(h.index, at, why); }
  void Lose(HostRun& h, double at, const std::string& why) {
    model_.Fail(h.index, at, why, HostState::kLost);
  }
  // A Host call refused with Unavailable means the machine is not there (its QEMU exited, its
  // hypervisor went away: backend.h): the host is lost, not failed. True when `s` said so.
  bool LostIfGone(HostRun& h, const Status& s, double at, const std::string& what);
  void Move(HostRun& h, HostState to, double at, const std::string& why = {}) {
    model_.Move(h.index, to, at, why);
  }
  void Note(double at, const std::string& host, const std::string& kind, const std::string& detail);
  void Progress(double at, const std::string& text);
  // A journal write that failed: said at once, the first kept for RunResult::journal_error.
  void Journaled(double at, const Status& s);
  HostResult Figures(const HostRun& h) const;
  double FetchDelay(HostRun& h) {
    std::uniform_real_distribution<double> d(0.05, 1.0);
    return d(h.rng) * h.timing.content_fetch;
  }
  const config::RunbookConfig& runbook() const { return sc_.runbook; }

  WallClock::time_point Now() const { return clock_->Now(); }

  const EngineOptions& o_;
  const config::ScenarioConfig& sc_;
  Clock* clock_;
  std::vector<recovery::Profile> profiles_;  // one per host
  recovery::Model model_;
  std::vector<HostRun> hosts_;
  std::map<std::string, size_t> by_id_;
  std::map<std::string, size_t> by_rescue_id_;
  EventHeap<AgendaItem> agenda_;
  double now_ = 0;  // scenario clock: time of the latest processed agenda item or signal
  WallClock::time_point wall_start_;
  bool released_ = false, reverted_ = false;
  std::vector<bool> ring_released_;  // per ring: the faulty version is visible to it
  std::deque<size_t> gate_queue_;    // hosts paused by the boot gate, oldest first
  bool rollout_halted_ = false;
  double rescue_boot_ = 60;  // scenario seconds a rescue VM takes to boot (cloud-vm timing)
  double deadline_ = kInf;

  // Game day: pause (EngineOptions::realtime).
  bool paused_ = false;
  std::string journal_error_;  // the first journal write that failed
  WallClock::time_point pause_started_;
  WallClock::duration paused_total_{};
  std::vector<size_t> paused_hosts_;  // machines the pause stopped (to resume exactly those)
  bool second_released_ = false;
};

}  // namespace chaoslab::engine_internal
