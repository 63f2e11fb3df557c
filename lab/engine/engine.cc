#include "lab/engine/engine.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <ctime>
#include <deque>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <thread>

#include "lab/common/clock_text.h"
#include "lab/engine/event_queue.h"
#include "lab/engine/guest_signal.h"
#include "lab/engine/host_state.h"

namespace chaoslab {

std::string ClockText(double seconds_since_midnight) {
  long s = std::lround(seconds_since_midnight);
  long days = s / 86400;
  s %= 86400;
  std::string hms = fmt::format("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
  return days ? fmt::format("d+{} {}", days, hms) : hms;
}

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
// Scenario seconds from a content file reaching the sensor to the IPC notification that reads it.
constexpr double kIpcAfterLoad = 1.0;

// Events QEMU reports over QMP (the others are the backend's own: started, lost, console).
bool IsQmpEvent(HostEventKind kind) {
  return kind == HostEventKind::kPanicked || kind == HostEventKind::kReset ||
         kind == HostEventKind::kStopped || kind == HostEventKind::kResumed ||
         kind == HostEventKind::kShutdown;
}

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

bool Matches(const config::Conditions& c, const HostPlan& p) {
  if (c.bitlocker && *c.bitlocker != p.bitlocker) return false;
  if (c.oob_console && *c.oob_console != p.oob_console) return false;
  if (c.cloud && *c.cloud != p.cloud) return false;
  if (!c.roles.empty() && std::find(c.roles.begin(), c.roles.end(), p.role) == c.roles.end())
    return false;
  if (!c.groups.empty() &&
      std::find(c.groups.begin(), c.groups.end(), p.spec.group) == c.groups.end())
    return false;
  if (!c.sites.empty() && std::find(c.sites.begin(), c.sites.end(), p.site) == c.sites.end())
    return false;
  return true;
}

bool Needs(const config::StepConfig& step, config::Resource r) {
  return std::find(step.needs.begin(), step.needs.end(), r) != step.needs.end();
}

bool NeedsPerson(const config::StepConfig& step) {
  return Needs(step, config::Resource::kTechnician) ||
         Needs(step, config::Resource::kRemoteConsole);
}

bool OnShift(const config::SiteConfig& site, double t) {
  if (site.shifts.empty()) return true;
  double tod = std::fmod(t, 86400.0);
  for (const auto& s : site.shifts) {
    bool in = s.start <= s.end ? (tod >= s.start && tod < s.end) : (tod >= s.start || tod < s.end);
    if (in) return true;
  }
  return false;
}

// The next time after `t` when one of the site's shifts starts.
double NextShiftStart(const config::SiteConfig& site, double t) {
  double best = kInf;
  double day = std::floor(t / 86400.0) * 86400.0;
  for (const auto& s : site.shifts) {
    for (int d = 0; d <= 1; ++d) {
      double at = day + d * 86400.0 + s.start;
      if (at > t) best = std::min(best, at);
    }
  }
  return best;
}

class Run {
 public:
  explicit Run(const EngineOptions& o) : o_(o), sc_(*o.scenario) {}

  Result<RunResult> Execute();

 private:
  // Scenario time before which host `h` can no longer report anything.
  double LowerBound(const HostRun& h) const;
  double Horizon() const;
  void Receive(const HostEvent& e);
  void OnConsole(HostRun& h, const std::string& line, bool from_rescue);
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

double Run::LowerBound(const HostRun& h) const {
  switch (h.phase) {
    case Phase::kBooting:
      return std::max(h.cursor, h.phase_start + std::min(h.timing.driver_load, h.timing.boot));
    case Phase::kCrashDump:
      return h.crash_at + h.timing.crash_dump;
    case Phase::kRunning:
      return h.awaiting ? std::max(h.cursor, h.await_since) : kInf;
    case Phase::kCommand:
      return h.command_at + kConsoleCommand;
    case Phase::kParked:
    case Phase::kConsole:
    case Phase::kOff:
    case Phase::kDone:
      return kInf;
  }
  return kInf;
}

void Run::EnforceGate() {
  if (o_.max_booting <= 0) return;
  int used = 0;
  for (auto& h : hosts_) {
    // Only the host's own machine is gated (a rescue VM boots on the host's account, ungated).
    const bool booting = h.phase == Phase::kBooting && !h.rescue_running;
    if (!booting) {
      h.boot_slot = false;
      if (h.gated) {
        // It got past its boot before the pause took hold (a slow QEMU start), or the engine moved
        // it on. A machine that should run must not stay paused; the queue skips it.
        h.gated = false;
        const bool should_run = h.phase == Phase::kRunning || h.phase == Phase::kCrashDump ||
                                h.phase == Phase::kConsole || h.phase == Phase::kCommand;
        if (should_run) {
          h.last_heard = WallClock::now();
          Status s = h.vm->Resume();
          if (!s.ok()) Lose(h, h.cursor, "could not resume after the boot gate: " + s.ToString());
        }
      }
    }
    used += h.boot_slot;
  }
  for (auto& h : hosts_) {
    if (h.phase != Phase::kBooting || h.rescue_running || h.boot_slot || h.gated) continue;
    if (used < o_.max_booting) {
      h.boot_slot = true;
      used++;
    } else if (h.vm->Pause().ok()) {
      h.gated = true;
      gate_queue_.push_back(h.index);
    }
  }
  while (used < o_.max_booting && !gate_queue_.empty()) {
    HostRun& h = hosts_[gate_queue_.front()];
    gate_queue_.pop_front();
    if (!h.gated) continue;
    h.gated = false;
    h.last_heard = WallClock::now();
    Status s = h.vm->Resume();
    if (!s.ok()) {
      Lose(h, h.cursor, "could not resume after the boot gate: " + s.ToString());
      continue;
    }
    h.boot_slot = true;
    used++;
  }
}

double Run::Horizon() const {
  double bound = kInf;
  for (const auto& h : hosts_) bound = std::min(bound, LowerBound(h));
  return bound;
}

void Run::Note(double at, const std::string& host, const std::string& kind,
               const std::string& detail) {
  const int64_t wall_us =
      std::chrono::duration_cast<std::chrono::microseconds>(WallClock::now() - wall_start_).count();
  if (o_.observer) {
    LiveEvent live{at, wall_us, host, {}, kind, detail, {}, 0};
    if (auto it = by_id_.find(host); it != by_id_.end()) {
      const HostRun& h = hosts_[it->second];
      live.group = h.plan.spec.group;
      live.state = std::string(HostStateName(h.machine.state()));
      live.crashes = h.crashes;
    }
    o_.observer(live);
  }
  if (!o_.journal) return;
  JournalEvent ev;
  ev.run_id = o_.run_id;
  ev.scenario_s = at;
  ev.wall_us = wall_us;
  ev.host_id = host;
  ev.kind = kind;
  ev.detail = detail;
  Journaled(at, o_.journal->AppendEvent(ev));
}

void Run::Progress(double at, const std::string& text) {
  if (o_.progress) o_.progress(ClockText(at) + "  " + text);
}

void Run::Journaled(double at, const Status& s) {
  if (s.ok()) return;
  Progress(at, "journal: " + s.ToString());
  if (journal_error_.empty()) journal_error_ = s.ToString();
}

void Run::Move(HostRun& h, HostState to, double at, const std::string& why) {
  HostState from = h.machine.state();
  if (from == to) return;
  Status s = h.machine.MoveTo(to);
  if (!s.ok()) {
    Progress(at, h.plan.spec.id + ": " + s.message());
    return;
  }
  std::string detail = fmt::format("{} -> {}{}{}", HostStateName(from), HostStateName(to),
                                   why.empty() ? "" : ": ", why);
  Note(at, h.plan.spec.id, "state", detail);
  Progress(at, fmt::format("{:<14} {}", h.plan.spec.id, detail));
  if (o_.journal) Journaled(at, o_.journal->SaveHost(o_.run_id, Figures(h)));
}

HostResult Run::Figures(const HostRun& h) const {
  HostResult r;
  r.id = h.plan.spec.id;
  r.group = h.plan.spec.group;
  r.final_state = std::string(HostStateName(h.machine.state()));
  r.exposed = h.exposed;
  r.crashes = h.crashes;
  r.boot_loop = h.boot_loop;
  r.recovered = h.recovered_at.has_value();
  r.reboots = h.reboots;
  const double release = sc_.rollout.release;
  if (h.first_crash_at) r.first_crash_s = *h.first_crash_at - release;
  if (h.first_crash_at && h.recovered_at) r.time_to_recover_s = *h.recovered_at - *h.first_crash_at;
  r.stop_code = h.stop_code;
  r.site = h.plan.site;
  r.role = std::string(config::RoleName(h.plan.role));
  r.bitlocker = h.plan.bitlocker;
  if (h.recovered_at) r.recovered_at_s = *h.recovered_at - release;
  r.recovered_by = h.recovered_by;
  r.technician_s = h.technician_s;
  if (h.holds_technician) r.technician_s += std::max(0.0, now_ - h.technician_since);
  double longest = 0;
  for (const auto& [what, s] : h.waited) {
    r.waited_s += s;
    if (s > longest) {
      longest = s;
      r.waited_for = what;
    }
  }
  if (h.waiting) {
    double open = std::max(0.0, now_ - h.wait_since);
    r.waited_s += open;
    if (open + (h.waited.count(h.waiting_for) ? h.waited.at(h.waiting_for) : 0) >= longest)
      r.waited_for = h.waiting_for;
  }
  r.keys_fetched = h.keys_fetched;
  r.data_lost = h.data_lost;
  r.data_lost_s = h.data_lost_s;
  r.failed_why = h.failed_why;
  if (sc_.rollout.policy == config::RolloutPolicy::kRings &&
      h.plan.ring < static_cast<int>(sc_.rollout.rings.size()))
    r.ring = sc_.rollout.rings[h.plan.ring].name;
  if (h.plan.pinned) r.ring = "pinned";
  r.network = h.plan.network;
  r.race_fetch_ms = h.race_fetch_ms;
  if (r.failed_why.empty() && h.waiting && !IsTerminal(h.machine.state()))
    r.failed_why = "waiting for " + h.waiting_for;
  return r;
}

void Run::Receive(const HostEvent& e) {
  bool from_rescue = false;
  auto it = by_id_.find(e.host_id);
  if (it == by_id_.end()) {
    it = by_rescue_id_.find(e.host_id);
    if (it == by_rescue_id_.end()) return;
    from_rescue = true;
  }
  HostRun& h = hosts_[it->second];
  h.last_heard = e.wall;
  if (from_rescue) {
    if (e.kind == HostEventKind::kConsoleLine) OnConsole(h, e.detail, true);
    if (e.kind == HostEventKind::kShutdown || e.kind == HostEventKind::kLost)
      OnShutdown(h, e.detail, true);
    return;
  }
  switch (e.kind) {
    case HostEventKind::kConsoleLine:
      OnConsole(h, e.detail, false);
      break;
    case HostEventKind::kPanicked:
      OnPanicked(h);
      break;
    case HostEventKind::kReset:
      if (h.plan.reset_is_crash && e.detail == "guest") {
        // A Windows bugcheck the hypervisor did not report (AutoReboot): the reset is the crash.
        if (h.expect_guest_reset)
          h.expect_guest_reset = false;
        else if (h.phase == Phase::kBooting || h.phase == Phase::kRunning)
          OnPanicked(h);
      }
      OnReset(h);
      break;
    case HostEventKind::kLost:
      if (h.phase != Phase::kDone) Lose(h, h.cursor, e.detail);
      break;
    case HostEventKind::kShutdown:
      OnShutdown(h, e.detail, false);
      break;
    case HostEventKind::kStarted:
    case HostEventKind::kStopped:
    case HostEventKind::kResumed:
      break;
  }
}

void Run::OnShutdown(HostRun& h, const std::string& detail, bool from_rescue) {
  if (from_rescue) return;  // the engine powers rescue VMs off itself and has accounted for it
  if (h.ignore_shutdowns > 0) {
    h.ignore_shutdowns--;
    return;
  }
  if (h.phase != Phase::kDone) Lose(h, h.cursor, "guest shut down: " + detail);
}

void Run::OnConsole(HostRun& h, const std::string& line, bool from_rescue) {
  std::optional<GuestSignal> sig = ParseGuestSignal(line);
  if (!sig) return;
  using K = GuestSignal::Kind;
  const uint32_t fault_version = o_.fault.version;
  const bool in_machine = h.stage == Stage::kMachine && h.outcome.kind == Outcome::Kind::kPending;
  if (from_rescue) {
    // The rescue VM speaks the same protocol; only its console and command lines matter.
    if (!in_machine) return;
    if (sig->kind == K::kPhase && sig->Str("phase") == "console" && h.phase == Phase::kBooting) {
      h.console_env = sig->Str("env");
      h.console_bitlocker = sig->Str("bitlocker");
      h.cursor = std::max(h.cursor, Stamp(h.phase_start + rescue_boot_));
      h.phase = Phase::kConsole;
      Note(h.cursor, h.plan.spec.id, "rescue-console", line.substr(line.find("@@")));
      Proceed(h, h.cursor);
    } else if (sig->kind == K::kCommand && h.phase == Phase::kCommand &&
               sig->Str("cmd") == h.expect_cmd) {
      h.cursor = std::max(h.cursor, Stamp(h.command_at + kConsoleCommand));
      h.phase = Phase::kConsole;
      h.expect_cmd.clear();
      Note(h.cursor, h.plan.spec.id, "rescue-command", line.substr(line.find("@@")));
      if (sig->Int("rc") == 0)
        Proceed(h, h.cursor);
      else
        Settle(h, h.cursor, Outcome::Kind::kFailed,
               "rescue console: " + line.substr(line.find("@@")));
    } else if (sig->kind == K::kBootFailed) {
      Settle(h, h.cursor, Outcome::Kind::kFailed, "rescue VM: " + line.substr(line.find("@@")));
    }
    return;
  }
  switch (sig->kind) {
    case K::kReady:
      if (h.phase == Phase::kBooting) OnReady(h, Stamp(h.phase_start + h.timing.boot));
      break;
    case K::kBugcheck:
      h.stop_code = sig->Str("name");
      Note(h.cursor, h.plan.spec.id, "bugcheck", line.substr(line.find("@@")));
      break;
    case K::kLoaded:
      if (sig->Int("version") == fault_version && !h.exposed) {
        h.exposed = true;
        Note(h.cursor, h.plan.spec.id, "exposed", "loaded the faulty content from disk");
      }
      break;
    case K::kFetched: {
      // While running, a fetch nobody awaited (content published while the engine thought the
      // host would not hear of it yet) counts now: never before what the fleet has seen.
      double at = Stamp(h.phase != Phase::kRunning ? h.phase_start + h.timing.driver_load
                        : h.awaiting               ? h.await_since + FetchDelay(h)
                                                   : std::max(h.cursor, now_));
      if (h.phase == Phase::kBooting && sig->Int("ms") > 0)
        h.race_fetch_ms.push_back(static_cast<int>(sig->Int("ms")));
      h.cursor = std::max(h.cursor, at);
      if (h.phase == Phase::kRunning) h.fetched_at = h.cursor;
      h.fetched_version = std::max<long long>(h.fetched_version, sig->Int("version"));
      Note(h.cursor, h.plan.spec.id, "fetched", line.substr(line.find("@@")));
      if (sig->Int("version") == fault_version && !h.exposed) {
        h.exposed = true;
        Progress(h.cursor, fmt::format("{:<14} fetched the faulty channel file (version {})",
                                       h.plan.spec.id, fault_version));
      }
      break;
    }
    case K::kHeartbeat: {
      // A heartbeat comes after the IPC notification that interprets newly fetched content, so
      // one after the fetch means the host took the content and survived. (Sensors that reject the
      // content, like 7.10, report the version they still run, not the one they fetched.)
      long long seen = std::max<long long>(sig->Int("version"), h.fetched_version);
      if (h.phase == Phase::kRunning && h.awaiting) {
        if (seen >= h.await_version) {
          h.awaiting = false;
        } else if (sig->Str("cloud") == "unreachable") {
          // The poll failed (a lossy link): the host tries again at its next poll, so it still
          // awaits the content, one poll interval later in scenario time.
          h.await_since += h.timing.content_fetch;
        }
      }
      break;
    }
    case K::kRejected:
      Note(h.cursor, h.plan.spec.id, "rejected", line.substr(line.find("@@")));
      if (sig->Int("version") == fault_version && !h.rejected_fault) {
        h.rejected_fault = true;
        Progress(h.cursor, fmt::format("{:<14} rejected the faulty channel file ({})",
                                       h.plan.spec.id, sig->Str("reason")));
      }
      if (sig->Int("version") == fault_version) h.exposed = true;
      break;
    case K::kPhase:
      if (sig->Str("phase") == "bootmgr" && sig->Str("mode") == "pxe") {
        // Network boot is a one-time boot choice: the repair reboots into Windows.
        (void)h.vm->SetBoot(BootTarget::kDisk);
      }
      if (sig->Str("phase") == "console" && h.phase == Phase::kBooting) {
        h.console_env = sig->Str("env");
        h.console_bitlocker = sig->Str("bitlocker");
        h.cursor = std::max(h.cursor, Stamp(h.phase_start + h.timing.boot));
        h.phase = Phase::kConsole;
        Note(h.cursor, h.plan.spec.id, "console", line.substr(line.find("@@")));
        if (in_machine) {
          const auto& step = *h.steps[h.step];
          bool expected =
              step.kind == config::StepKind::kBoot && step.into != config::BootTarget::kPxe;
          Settle(h, h.cursor, expected ? Outcome::Kind::kOk : Outcome::Kind::kFailed,
                 expected ? "" : "stopped at a recovery console (" + h.console_env + ")");
        }
      }
      break;
    case K::kCommand:
      if (h.phase == Phase::kCommand && sig->Str("cmd") == h.expect_cmd) {
        h.cursor = std::max(h.cursor, Stamp(h.command_at + kConsoleCommand));
        h.phase = Phase::kConsole;
        h.expect_cmd.clear();
        Note(h.cursor, h.plan.spec.id, "command", line.substr(line.find("@@")));
        if (sig->Str("cmd") == "unlock" && sig->Int("rc") == 0) h.console_bitlocker = "unlocked";
        bool ok = sig->Int("rc") == 0;
        if (in_machine)
          Settle(h, h.cursor, ok ? Outcome::Kind::kOk : Outcome::Kind::kFailed,
                 ok ? "" : line.substr(line.find("@@")));
      } else if (o_.manual && h.expect_cmd.empty()) {
        // Someone typed it: journal what the console answered (the debrief reads mistakes here).
        h.cursor = std::max(h.cursor, Stamp(h.cursor));
        Note(h.cursor, h.plan.spec.id, "command", line.substr(line.find("@@")));
        if (sig->Str("cmd") == "unlock" && sig->Int("rc") == 0) h.console_bitlocker = "unlocked";
      }
      break;
    case K::kRepair:
      if (h.phase == Phase::kBooting) {
        h.cursor = std::max(h.cursor, Stamp(h.phase_start + h.timing.boot + kPxeRepair));
        Note(h.cursor, h.plan.spec.id, "repair", line.substr(line.find("@@")));
        bool ok = sig->Str("result") == "ok";
        h.image_repaired = ok;
        // The image fetched the recovery password from the escrow itself.
        if (ok && h.plan.bitlocker) h.keys_fetched++;
        if (ok) {
          // The repair image reboots into Windows by itself.
          h.phase_start = h.cursor;
        } else {
          h.phase = Phase::kConsole;
        }
        if (in_machine)
          Settle(h, h.cursor, ok ? Outcome::Kind::kOk : Outcome::Kind::kFailed,
                 ok ? "" : "PXE repair failed: " + sig->Str("reason"));
      }
      break;
    case K::kBootFailed:
      if (h.phase == Phase::kBooting) {
        h.cursor = std::max(h.cursor, Stamp(h.phase_start + h.timing.boot));
        h.phase = Phase::kConsole;
        if (in_machine)
          Settle(h, h.cursor, Outcome::Kind::kFailed, "boot failed: " + sig->Str("reason"));
      }
      break;
    case K::kIpcOk:
      break;
  }
}

void Run::OnReady(HostRun& h, double at) {
  h.cursor = std::max(h.cursor, at);
  h.phase = Phase::kRunning;
  h.awaiting = false;
  h.fetched_at.reset();
  h.crashes_since_healthy = 0;
  agenda_.Push(h.cursor, {AgendaItem::Kind::kHealth, h.index, 0, true});
  if (h.crashes > 0) {
    if (!h.recovered_at) h.recovered_at = h.cursor;
    if (h.recovered_by.empty()) {
      h.recovered_by = h.stage == Stage::kMachine && h.step < h.steps.size()
                           ? std::string(config::StepKindName(h.steps[h.step]->kind))
                       : !h.last_step.empty() ? h.last_step
                                              : "itself";
    }
    Move(h, HostState::kRecovered, h.cursor,
         fmt::format("healthy again after {} crash(es), {} reboot(s)", h.crashes, h.reboots));
    if (h.stage == Stage::kMachine && h.outcome.kind == Outcome::Kind::kPending)
      Settle(h, h.cursor, Outcome::Kind::kHealthy);
    else if (h.runbook_active && h.stage != Stage::kFinished) {
      // Came back while the runbook waited or worked on something else: nothing left to do.
      h.token++;
      Continue(h, h.cursor);
      h.outcome.kind = Outcome::Kind::kHealthy;
      h.stage = Stage::kMachine;
    }
  } else {
    Move(h, HostState::kHealthy, h.cursor);
  }
  // Content published while it was booting: it will hear about it at its next poll.
  if (h.plan.online && !h.plan.pinned && (reverted_ || SeesFault(h))) {
    uint32_t newest = reverted_ ? o_.revert.version : o_.fault.version;
    h.awaiting = true;
    h.await_since = h.cursor;
    h.await_version = newest;
  }
}

void Run::OnPanicked(HostRun& h) {
  if (h.phase == Phase::kDone || h.phase == Phase::kCrashDump || h.phase == Phase::kOff) return;
  double at;
  if (h.phase == Phase::kRunning) {
    at = (h.fetched_at ? *h.fetched_at
                       : (h.awaiting ? h.await_since + FetchDelay(h) : std::max(h.cursor, now_))) +
         kIpcAfterLoad;
  } else {
    at = h.phase_start + h.timing.driver_load;
  }
  bool was_running = h.phase == Phase::kRunning;
  at = Stamp(at);
  h.cursor = std::max(h.cursor, at);
  h.crash_at = h.cursor;
  h.phase = Phase::kCrashDump;
  h.awaiting = false;
  h.crashes++;
  h.crashes_since_healthy++;
  if (!h.first_crash_at) h.first_crash_at = h.crash_at;
  if (was_running || h.up) agenda_.Push(h.crash_at, {AgendaItem::Kind::kHealth, h.index, 0, false});
  std::string why = h.stop_code.empty() ? "guest panicked" : h.stop_code;
  Note(h.crash_at, h.plan.spec.id, "crash", why);

  HostState state = h.machine.state();
  if (state == HostState::kRemediating) {
    if (h.stage == Stage::kMachine && h.outcome.kind == Outcome::Kind::kPending) {
      const auto& step = *h.steps[h.step];
      if (step.kind == config::StepKind::kReboot && h.step_reboots < step.times) {
        Progress(h.crash_at, fmt::format("{:<14} crashed again (reboot {} of {})", h.plan.spec.id,
                                         h.step_reboots, step.times));
      } else if (step.kind == config::StepKind::kReboot) {
        Settle(h, h.crash_at, Outcome::Kind::kFailed,
               fmt::format("still crashing after {} reboot(s)", h.step_reboots));
      } else {
        Settle(h, h.crash_at, Outcome::Kind::kFailed, "crashed again (" + why + ")");
      }
    }
  } else if (h.crashes_since_healthy >= 2) {
    h.boot_loop = true;
    Move(h, HostState::kBootLoop, h.crash_at, why);
    if (o_.stats) {
      o_.stats->all_boot_loop_wall_s =
          std::chrono::duration<double>(WallClock::now() - wall_start_).count();
    }
  } else {
    Move(h, HostState::kCrashed, h.crash_at, why);
  }
  if (!o_.manual && !h.runbook_active && runbook().starts == config::RunbookStart::kAtDetection) {
    agenda_.Push(h.crash_at, {AgendaItem::Kind::kRetry, h.index, 1, false});
  }
}

void Run::OnReset(HostRun& h) {
  if (o_.manual && (h.phase == Phase::kConsole || h.phase == Phase::kCommand)) {
    // Someone typed `restart` at a recovery console: the machine boots again.
    h.phase = Phase::kBooting;
    h.phase_start = h.cursor = std::max(h.cursor, Stamp(h.cursor));
    h.expect_cmd.clear();
    h.console_env.clear();
    h.console_bitlocker.clear();
    return;
  }
  if (h.phase != Phase::kCrashDump) return;  // resets the engine asked for are accounted already
  double at = Stamp(h.crash_at + h.timing.crash_dump);
  h.phase_start = at;
  h.cursor = std::max(h.cursor, at);
  bool keep_running = h.stage == Stage::kMachine && h.outcome.kind == Outcome::Kind::kPending &&
                      h.steps[h.step]->kind == config::StepKind::kReboot;
  // A game day's boot-looping hosts keep looping: nobody parks a real one.
  bool park = o_.manual ? false : h.runbook_active ? !keep_running : h.crashes_since_healthy >= 2;
  if (park) {
    // Boot-loop and nobody acts on it yet (or the runbook moves on): park the machine.
    Status s = h.vm->Pause();
    if (s.ok()) {
      h.phase = Phase::kParked;
      h.parked_at = at;
      Note(at, h.plan.spec.id, "parked", "boot-loop; paused until a runbook acts on it");
      return;
    }
    Progress(at, h.plan.spec.id + ": could not park: " + s.ToString());
  }
  h.phase = Phase::kBooting;
  if (h.machine.state() == HostState::kCrashed) Move(h, HostState::kBooting, at);
  if (keep_running) {
    h.reboots++;
    h.step_reboots++;
  }
}

// Runbook activation: the host joins the runbook at `at`; its first step starts through the agenda.
void Run::ActivateRunbook(HostRun& h, double at) {
  if (h.runbook_active) return;
  h.runbook_active = true;
  HostState s = h.machine.state();
  if (s != HostState::kCrashed && s != HostState::kBootLoop && s != HostState::kBooting) return;
  if (h.crashes == 0) return;
  Move(h, HostState::kRemediating, at, "runbook " + runbook().name);
  h.steps.clear();
  for (const auto& step : runbook().steps)
    if (Matches(step.when, h.plan)) h.steps.push_back(&step);
  if (h.steps.empty()) {
    Fail(h, at, "no step of runbook " + runbook().name + " applies to this host");
    return;
  }
  h.step = 0;
  h.stage = Stage::kNone;
  h.token++;
  Continue(h, at);
}

void Run::Settle(HostRun& h, double at, Outcome::Kind kind, std::string why) {
  h.outcome.kind = kind;
  h.outcome.why = std::move(why);
  h.token++;
  Continue(h, at);
}

bool Run::EscrowUp() const { return escrow_up_; }

std::string Run::TryAcquire(HostRun& h, const config::StepConfig& step, double at) {
  using R = config::Resource;
  const config::SiteConfig* site = Site(h);
  const std::string site_name = site ? site->name : "";
  if (!h.admitted && runbook().parallelism > 0 && remediating_ >= runbook().parallelism)
    return "a free slot (parallelism)";
  bool want_person = NeedsPerson(step) && !h.holds_technician;
  if (want_person) {
    if (!site) return "technician";
    if (technicians_busy_[site_name] >= site->technicians) return "technician";
    if (!OnShift(*site, at)) {
      double next = NextShiftStart(*site, at);
      if (next < kInf) agenda_.Push(next, {AgendaItem::Kind::kRetry, h.index, 0, false});
      return "technician (off shift)";
    }
  }
  if (Needs(step, R::kRemoteConsole) && !h.plan.oob_console) return "remote-console";
  bool want_usb = Needs(step, R::kUsbStick) && !h.holds_usb;
  if (want_usb && (!site || usb_in_use_[site_name] >= site->usb_sticks)) return "usb-stick";
  // Only encrypted hosts need a key (config.h: the need is skipped for the others).
  if (Needs(step, R::kKeyEscrow) && h.plan.bitlocker && !EscrowUp()) return "key-escrow";
  if (Needs(step, R::kPxeServer) && !sc_.setup.pxe) return "pxe-server";
  // Everything is there: take it.
  if (!h.admitted) {
    h.admitted = true;
    remediating_++;
  }
  if (want_person) {
    technicians_busy_[site_name]++;
    h.holds_technician = true;
    h.technician_since = at;
  }
  if (want_usb) {
    usb_in_use_[site_name]++;
    h.holds_usb = true;
  }
  return {};
}

void Run::ReleaseTechnician(HostRun& h, double at) {
  if (!h.holds_technician) return;
  h.holds_technician = false;
  h.technician_s += std::max(0.0, at - h.technician_since);
  const config::SiteConfig* site = Site(h);
  if (site) technicians_busy_[site->name]--;
  agenda_.Push(at, {AgendaItem::Kind::kRetry, h.index, 0, false});
}

void Run::ReleaseAll(HostRun& h, double at) {
  ReleaseTechnician(h, at);
  const config::SiteConfig* site = Site(h);
  if (h.holds_usb) {
    h.holds_usb = false;
    if (site) usb_in_use_[site->name]--;
  }
  if (h.admitted) {
    h.admitted = false;
    remediating_--;
  }
  if (h.waiting) {
    h.waited[h.waiting_for] += std::max(0.0, at - h.wait_since);
    h.waiting = false;
  }
  agenda_.Push(at, {AgendaItem::Kind::kRetry, h.index, 0, false});
}

// Gives waiting hosts what they wait for, in priority order: (rank, waiting since, asset order).
void Run::Wake(double at) {
  std::vector<HostRun*> waiting;
  for (auto& h : hosts_)
    if (h.waiting && h.stage == Stage::kAcquire) waiting.push_back(&h);
  std::sort(waiting.begin(), waiting.end(), [](const HostRun* a, const HostRun* b) {
    if (a->rank != b->rank) return a->rank < b->rank;
    if (a->queued_at != b->queued_at) return a->queued_at < b->queued_at;
    return a->index < b->index;
  });
  for (HostRun* h : waiting) Advance(*h, at);
}

void Run::Advance(HostRun& h, double at) {
  now_ = std::max(now_, at);
  if (h.phase == Phase::kDone || h.stage == Stage::kFinished) return;
  while (true) {
    if (h.stage == Stage::kMachine) {
      if (h.outcome.kind == Outcome::Kind::kPending) {
        ContinueMachine(h, *h.steps[h.step], at);
        return;
      }
      if (h.outcome.kind == Outcome::Kind::kHealthy) {
        FinishRunbook(h, at);
        return;
      }
      if (h.outcome.kind == Outcome::Kind::kFailed) {
        h.last_failure = h.outcome.why;
        Note(at, h.plan.spec.id, "step-failed",
             fmt::format("{}: {}", config::StepKindName(h.steps[h.step]->kind), h.outcome.why));
      }
      h.step++;
      h.stage = Stage::kNone;
    }
    if (h.step >= h.steps.size()) {
      ReleaseAll(h, at);
      h.stage = Stage::kFinished;
      Fail(h, at,
           h.last_failure.empty() ? "runbook ended without recovery"
                                  : "runbook ended without recovery: " + h.last_failure);
      return;
    }
    const config::StepConfig& step = *h.steps[h.step];
    if (h.stage == Stage::kNone) {
      // A technician stays with the host until its runbook ends (to see it boot healthy), as
      // people do: releasing them between steps would let another host take them mid-repair.
      // Join the queue; Wake hands out resources in priority order once every host that asks at
      // this same time has joined.
      h.stage = Stage::kAcquire;
      h.waiting = true;
      h.waiting_for = "its turn";
      h.wait_since = h.queued_at = at;
      agenda_.Push(at, {AgendaItem::Kind::kRetry, h.index, 0, false});
      return;
    }
    if (h.stage == Stage::kAcquire) {
      bool new_visit = NeedsPerson(step) && !h.holds_technician;
      std::string missing = TryAcquire(h, step, at);
      if (!missing.empty()) {
        if (h.waiting_for != missing) {
          if (at > h.wait_since) h.waited[h.waiting_for] += at - h.wait_since;
          h.waiting_for = missing;
          h.wait_since = at;
          Note(at, h.plan.spec.id, "waiting",
               fmt::format("{} waits for {}", config::StepKindName(step.kind), missing));
        }
        return;
      }
      if (at > h.wait_since) h.waited[h.waiting_for] += at - h.wait_since;
      h.waiting = false;
      double human = step.takes.Sample(h.rng);
      const config::SiteConfig* site = Site(h);
      if (new_visit && site && Needs(step, config::Resource::kTechnician))
        human += site->travel.Sample(h.rng);
      if (Needs(step, config::Resource::kKeyEscrow) && h.plan.bitlocker)
        human += sc_.setup.key_escrow.lookup.Sample(h.rng);
      h.stage = Stage::kHuman;
      h.token++;
      Continue(h, at + human);
      return;
    }
    if (h.stage == Stage::kHuman) {
      h.stage = Stage::kMachine;
      h.outcome = Outcome{};
      h.sub = 0;
      StartMachine(h, step, at);  // its outcome comes back through the agenda
      return;
    }
    return;
  }
}

std::string StepLabel(const config::StepConfig& step) {
  std::string label(config::StepKindName(step.kind));
  if (step.kind == config::StepKind::kBoot)
    label += ":" + std::string(config::BootTargetName(step.into));
  return label;
}

BootTarget ToBootTarget(config::BootTarget t) {
  switch (t) {
    case config::BootTarget::kSafeMode:
      return BootTarget::kSafeMode;
    case config::BootTarget::kWinRE:
      return BootTarget::kWinRE;
    case config::BootTarget::kUsb:
      return BootTarget::kUsb;
    case config::BootTarget::kPxe:
      return BootTarget::kPxe;
  }
  return BootTarget::kSafeMode;
}

void Run::TypeCommand(HostRun& h, const std::string& cmd, const std::string& text, double at,
                      bool on_rescue) {
  Host* target = on_rescue ? h.rescue : h.vm;
  Status s = target ? target->SendConsole(text) : Status::FailedPrecondition("no machine");
  if (!s.ok()) {
    // A rescue VM that is gone fails the step; the host itself is still there.
    if (on_rescue || !LostIfGone(h, s, at, "console"))
      Settle(h, at, Outcome::Kind::kFailed, "console: " + s.ToString());
    return;
  }
  h.expect_cmd = cmd;
  h.phase = Phase::kCommand;
  h.command_at = at;
  h.last_heard = WallClock::now();
}

void Run::BootInto(HostRun& h, BootTarget target, double at) {
  const std::string media = target == BootTarget::kUsb ? o_.usb_media : std::string();
  Status s = h.vm->SetBoot(target, media);
  if (s.ok()) {
    bool was_parked = h.phase == Phase::kParked || h.gated;
    h.gated = false;
    h.boot_slot = false;  // a new boot: the gate admits it again
    s = h.phase == Phase::kOff ? h.vm->Start() : h.vm->Reset();
    // A reset relaunches the machine; a parked one must also run again.
    if (s.ok() && was_parked) s = h.vm->Resume();
  }
  if (!s.ok()) {
    if (!LostIfGone(h, s, at, "could not boot"))
      Settle(h, at, Outcome::Kind::kFailed, "could not boot: " + s.ToString());
    return;
  }
  h.phase = Phase::kBooting;
  h.phase_start = at;
  h.cursor = std::max(h.cursor, at);
  h.console_env.clear();
  h.console_bitlocker.clear();
  h.image_repaired = false;
  h.expect_guest_reset = false;
  h.last_heard = WallClock::now();
}

void Run::StartMachine(HostRun& h, const config::StepConfig& step, double at) {
  using SK = config::StepKind;
  h.cursor = std::max(h.cursor, at);
  Note(at, h.plan.spec.id, "step", StepLabel(step));
  h.last_step = std::string(config::StepKindName(step.kind));
  Progress(at, fmt::format("{:<14} {}", h.plan.spec.id, StepLabel(step)));
  const auto at_console = [&] {
    if (h.phase == Phase::kConsole) return true;
    Settle(h, at, Outcome::Kind::kFailed, "not at a recovery console");
    return false;
  };
  switch (step.kind) {
    case SK::kReboot:
      h.step_reboots = 0;
      if (h.phase == Phase::kParked) {
        Status s = h.vm->Resume();
        if (!s.ok()) {
          Lose(h, at, "could not resume: " + s.ToString());
          return;
        }
        h.phase = Phase::kBooting;
        h.phase_start = std::max(at, h.parked_at);
        h.reboots++;
        h.step_reboots++;
        h.last_heard = WallClock::now();
      } else if (h.phase == Phase::kRunning) {
        Settle(h, at, Outcome::Kind::kHealthy);
      } else if (h.phase == Phase::kConsole || h.phase == Phase::kOff) {
        BootInto(h, BootTarget::kDisk, at);
        h.reboots++;
        h.step_reboots++;
      }
      // Booting or in a crash dump: it reboots by itself; OnReset counts it.
      return;
    case SK::kBoot:
      if (step.into == config::BootTarget::kUsb && o_.usb_media.empty()) {
        Settle(h, at, Outcome::Kind::kFailed, "no USB recovery media image");
        return;
      }
      BootInto(h, ToBootTarget(step.into), at);
      return;
    case SK::kUnlockBitlocker: {
      if (h.image_repaired) {
        Settle(h, at, Outcome::Kind::kOk);  // the repair image did it
        return;
      }
      if (!at_console()) return;
      if (h.console_bitlocker != "locked") {
        Settle(h, at, Outcome::Kind::kOk);  // nothing to unlock
        return;
      }
      if (!o_.fetch_key) {
        Settle(h, at, Outcome::Kind::kFailed, "no key escrow in this lab");
        return;
      }
      Result<std::string> key = o_.fetch_key(h.plan.spec.id);
      if (!key.ok()) {
        Settle(h, at, Outcome::Kind::kFailed, "key escrow: " + key.status().ToString());
        return;
      }
      h.keys_fetched++;
      Note(at, h.plan.spec.id, "key-fetched", "recovery password from the key escrow");
      TypeCommand(h, "unlock", "manage-bde -unlock C: -RecoveryPassword " + *key + "\n", at, false);
      return;
    }
    case SK::kDelete:
      if (h.image_repaired) {
        Settle(h, at, Outcome::Kind::kOk);  // the repair image did it
        return;
      }
      if (!at_console()) return;
      TypeCommand(h, "del",
                  "del 'C:\\Windows\\System32\\drivers\\CrowdStrike\\" + step.pattern + "'\n", at,
                  false);
      return;
    case SK::kRestart:
      if (h.phase == Phase::kRunning) {
        Settle(h, at, Outcome::Kind::kHealthy);
      } else if (h.phase == Phase::kConsole) {
        Status s = h.vm->SetBoot(BootTarget::kDisk);
        if (s.ok()) s = h.vm->SendConsole("restart\n");
        if (!s.ok()) {
          if (!LostIfGone(h, s, at, "restart"))
            Settle(h, at, Outcome::Kind::kFailed, "restart: " + s.ToString());
          return;
        }
        h.expect_guest_reset = true;
        // The guest resets itself; that reset is accounted here, not when QEMU reports it.
        h.phase = Phase::kBooting;
        h.phase_start = at + kConsoleCommand;
        h.last_heard = WallClock::now();
      } else if (h.phase == Phase::kParked || h.phase == Phase::kOff) {
        BootInto(h, BootTarget::kDisk, at);
      }
      // Booting already (e.g. after a PXE repair): wait for healthy or a crash.
      return;
    case SK::kRescueDisk:
    case SK::kRevertSnapshot:
    case SK::kReimage:
      ContinueMachine(h, step, at);
      return;
  }
}

// The later actions of a step, one per agenda visit (rescue-disk has several).
void Run::ContinueMachine(HostRun& h, const config::StepConfig& step, double at) {
  using SK = config::StepKind;
  const auto power_off = [&](Host* vm) -> bool {
    Status s = vm->PowerOff();
    if (!s.ok()) {
      Settle(h, at, Outcome::Kind::kFailed, "power off: " + s.ToString());
      return false;
    }
    return true;
  };
  const auto start_normal = [&]() {
    Status s = h.vm->SetBoot(BootTarget::kDisk);
    if (s.ok()) s = h.vm->Start();
    if (!s.ok()) {
      Settle(h, at, Outcome::Kind::kFailed, "start: " + s.ToString());
      return;
    }
    h.phase = Phase::kBooting;
    h.phase_start = at;
    h.cursor = std::max(h.cursor, at);
    h.last_heard = WallClock::now();
  };
  const auto turn_off = [&]() -> bool {
    if (h.phase == Phase::kOff) return true;
    if (!power_off(h.vm)) return false;
    h.ignore_shutdowns++;
    h.phase = Phase::kOff;
    return true;
  };

  if (step.kind == SK::kRevertSnapshot || step.kind == SK::kReimage) {
    if (step.kind == SK::kRevertSnapshot && !sc_.setup.snapshots.enabled) {
      Settle(h, at, Outcome::Kind::kFailed, "the setup keeps no snapshots");
      return;
    }
    if (!turn_off()) return;
    Status s = step.kind == SK::kRevertSnapshot ? h.vm->RevertDisk() : h.vm->ReimageDisk();
    if (!s.ok()) {
      Settle(h, at, Outcome::Kind::kFailed, s.ToString());
      return;
    }
    if (step.kind == SK::kReimage) {
      h.data_lost = "all";
      h.data_lost_s = 0;
    } else {
      double snapshot = sc_.setup.snapshots.taken_at;
      while (snapshot > sc_.rollout.release) snapshot -= 86400;
      h.data_lost = "since-snapshot";
      h.data_lost_s = std::max(0.0, h.first_crash_at.value_or(at) - snapshot);
    }
    Note(at, h.plan.spec.id, "data-lost",
         h.data_lost == "all" ? "all local data (reimaged)"
                              : fmt::format("{:.0f} s of work since the snapshot", h.data_lost_s));
    start_normal();
    return;
  }

  // rescue-disk: 0 power off and boot the rescue VM, 1 unlock if needed, 2 delete, 3 back home.
  switch (h.sub) {
    case 0: {
      if (!turn_off()) return;
      if (!h.rescue) {
        HostSpec spec = o_.rescue_template;
        if (spec.kernel.empty() || spec.base_disk.empty()) {
          Settle(h, at, Outcome::Kind::kFailed, "no rescue VM image in this lab");
          return;
        }
        spec.id = h.plan.spec.id + "-rescue";
        spec.group = "rescue";
        spec.kernel_args.push_back("winsim.host=" + spec.id);
        spec.network.online = false;
        spec.extra_disks = {h.vm->SystemDisk()};
        Result<Host*> vm = o_.backend->CreateHost(spec);
        if (!vm.ok()) {
          Settle(h, at, Outcome::Kind::kFailed, "rescue VM: " + vm.status().ToString());
          return;
        }
        h.rescue = *vm;
        by_rescue_id_[spec.id] = h.index;
      }
      Status s = h.rescue->SetBoot(BootTarget::kRescue);
      if (s.ok()) s = h.rescue->Start();
      if (!s.ok()) {
        Settle(h, at, Outcome::Kind::kFailed, "rescue VM: " + s.ToString());
        return;
      }
      h.rescue_running = true;
      h.phase = Phase::kBooting;  // the rescue VM's boot, reported on the host's account
      h.phase_start = at;
      h.console_env.clear();
      h.console_bitlocker.clear();
      h.last_heard = WallClock::now();
      return;  // the rescue console line proceeds to 1
    }
    case 1:
      if (h.console_bitlocker == "locked") {
        Result<std::string> key =
            o_.fetch_key ? o_.fetch_key(h.plan.spec.id)
                         : Result<std::string>(Status::Unavailable("no key escrow in this lab"));
        if (!key.ok()) {
          Settle(h, at, Outcome::Kind::kFailed, "key escrow: " + key.status().ToString());
          return;
        }
        h.keys_fetched++;
        Note(at, h.plan.spec.id, "key-fetched", "recovery password from the key escrow");
        TypeCommand(h, "unlock", "manage-bde -unlock C: -RecoveryPassword " + *key + "\n", at,
                    true);
        return;
      }
      h.sub = 2;
      [[fallthrough]];
    case 2:
      TypeCommand(h, "del",
                  "del 'C:\\Windows\\System32\\drivers\\CrowdStrike\\" + step.pattern + "'\n", at,
                  true);
      return;
    case 3:
      if (h.rescue_running) {
        if (!power_off(h.rescue)) return;
        h.rescue_running = false;
      }
      h.phase = Phase::kOff;
      start_normal();
      return;
    default:
      return;
  }
}

void Run::FinishRunbook(HostRun& h, double at) {
  h.stage = Stage::kFinished;
  ReleaseAll(h, at);
}

void Run::SetUp(HostRun& h, bool up, double at) {
  if (h.up == up) return;
  h.up = up;
  group_up_[h.plan.spec.group] += up ? 1 : -1;
  UpdateEscrow(at);
  for (size_t i = 0; i < sc_.setup.services.size(); ++i) {
    const auto& svc = sc_.setup.services[i];
    bool svc_up = true;
    for (const auto& need : svc.needs)
      if (group_up_[need.group] < need.at_least) svc_up = false;
    auto& outages = outages_[i];
    bool down_now = !outages.empty() && outages.back().second == kInf;
    // A game day shows services from the start (the dashboard lists them up or down).
    const bool shown = at >= sc_.rollout.release || o_.realtime;
    if (!svc_up && !down_now) {
      outages.push_back({at, kInf});
      if (shown) Note(at, "", "service-down", svc.name);
    } else if (svc_up && down_now) {
      outages.back().second = at;
      if (shown) {
        Note(at, "", "service-up", svc.name);
        Progress(at, "service " + svc.name + " up");
      }
    }
  }
  agenda_.Push(at, {AgendaItem::Kind::kRetry, h.index, 0, false});
}

void Run::UpdateEscrow(double at) {
  const std::string& hosted_on = sc_.setup.key_escrow.hosted_on;
  bool escrow = !escrow_forced_down_ && (hosted_on.empty() || group_up_[hosted_on] > 0);
  if (escrow != escrow_up_) {
    escrow_up_ = escrow;
    if (o_.set_escrow_available) o_.set_escrow_available(escrow);
    Note(at, "", "key-escrow", escrow ? "up" : "down");
    Progress(at, std::string("key escrow ") + (escrow ? "up" : "down"));
  }
}

void Run::ServiceFigures(RunResult* result) const {
  const double release = sc_.rollout.release;
  const double end = std::max(now_, release);
  for (size_t i = 0; i < sc_.setup.services.size(); ++i) {
    ServiceResult r;
    r.name = sc_.setup.services[i].name;
    for (const auto& [down, up] : outages_[i]) {
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
    result->services.push_back(r);
  }
}

void Run::Fail(HostRun& h, double at, const std::string& why) {
  if (h.phase != Phase::kDone && h.phase != Phase::kOff)
    (void)h.vm->Pause();  // keep the machine for inspection, stop its CPU
  if (h.rescue_running) {
    (void)h.rescue->PowerOff();
    h.rescue_running = false;
  }
  h.phase = Phase::kDone;
  h.awaiting = false;
  h.failed_why = why;
  h.stage = Stage::kFinished;
  ReleaseAll(h, at);
  Move(h, HostState::kFailed, at, why);
}

void Run::Lose(HostRun& h, double at, const std::string& why) {
  h.phase = Phase::kDone;
  h.awaiting = false;
  h.failed_why = why;
  h.stage = Stage::kFinished;
  ReleaseAll(h, at);
  Move(h, HostState::kLost, at, why);
}

bool Run::LostIfGone(HostRun& h, const Status& s, double at, const std::string& what) {
  if (s.code() != ErrorCode::kUnavailable) return false;
  Lose(h, at, what + ": " + s.ToString());
  return true;
}

void Run::ProcessAgenda(double at, const AgendaItem& item) {
  now_ = std::max(now_, at);
  switch (item.kind) {
    case AgendaItem::Kind::kRelease:
      ReleaseRing(at, static_cast<int>(item.host));
      return;
    case AgendaItem::Kind::kRevert:
    case AgendaItem::Kind::kDeadline:
      ProcessFleetEvent(at, item.kind);
      return;
    case AgendaItem::Kind::kContinue: {
      HostRun& h = hosts_[item.host];
      if (item.token == h.token) Advance(h, at);
      return;
    }
    case AgendaItem::Kind::kHealth:
      SetUp(hosts_[item.host], item.up, at);
      return;
    case AgendaItem::Kind::kRetry:
      if (item.token == 1) {
        ActivateRunbook(hosts_[item.host], at);  // at-detection
      } else {
        Wake(at);
      }
      return;
  }
}

// The faulty version goes out to one more ring, unless the health gate halts the rollout: the
// crash rate of the hosts in the rings released so far is above the gate's limit.
void Run::ReleaseRing(double at, int ring) {
  if (reverted_) return;  // withdrawn: rings not reached yet never get it
  const auto& rings = sc_.rollout.rings;
  const bool staged = sc_.rollout.policy == config::RolloutPolicy::kRings && !rings.empty();
  const std::string ring_name = staged ? rings[ring].name : "all";
  if (rollout_halted_) return;
  if (staged && ring > 0 && sc_.rollout.gate.enabled) {
    int hosts = 0, crashed = 0;
    for (const auto& h : hosts_) {
      if (h.plan.pinned || h.plan.ring >= ring) continue;
      hosts++;
      crashed += h.crashes > 0;
    }
    double rate = hosts ? static_cast<double>(crashed) / hosts : 0;
    if (rate > sc_.rollout.gate.max_crash_rate) {
      rollout_halted_ = true;
      std::string why = fmt::format(
          "rollout halted before ring {}: crash rate {:.0f} % ({} of {} hosts) > {:.0f} %",
          ring_name, rate * 100, crashed, hosts, sc_.rollout.gate.max_crash_rate * 100);
      Note(at, "", "rollout-halted", why);
      Progress(at, why);
      return;
    }
  }
  if (!released_) {
    Status s = o_.publish ? o_.publish(o_.fault) : Status::Ok();
    Note(at, "", "release",
         fmt::format("channel {} version {} {}", o_.fault.channel, o_.fault.version,
                     o_.fault.file_name));
    Progress(at, fmt::format("release: channel {} version {} published ({})", o_.fault.channel,
                             o_.fault.version, s.ok() ? o_.fault.file_name : s.ToString()));
    released_ = true;
  }
  if (ring < static_cast<int>(ring_released_.size())) ring_released_[ring] = true;
  if (o_.release_ring) o_.release_ring(ring);
  if (staged) {
    Note(at, "", "ring", "ring " + ring_name + " gets the new content");
    Progress(at, "ring " + ring_name + " gets the new content");
  }
  for (auto& h : hosts_) {
    if (h.phase == Phase::kRunning && h.plan.online && SeesFault(h) && h.plan.ring == ring) {
      h.awaiting = true;
      h.await_since = at;
      h.await_version = o_.fault.version;
      h.fetched_at.reset();
    }
  }
}

void Run::ProcessFleetEvent(double at, AgendaItem::Kind e) {
  switch (e) {
    case AgendaItem::Kind::kRevert: {
      const ContentVersion& c = o_.revert;
      Status s = o_.publish ? o_.publish(c) : Status::Ok();
      if (o_.withdraw_fault) o_.withdraw_fault();
      Note(at, "", "revert",
           fmt::format("channel {} version {} {}", c.channel, c.version, c.file_name));
      Progress(at, fmt::format("revert: channel {} version {} published ({})", c.channel, c.version,
                               s.ok() ? c.file_name : s.ToString()));
      reverted_ = true;
      for (auto& h : hosts_) {
        // Pinned hosts hold at N-1: the revert is nothing new for them.
        if (h.phase == Phase::kRunning && h.plan.online && !h.plan.pinned) {
          h.awaiting = true;
          h.await_since = at;
          h.await_version = c.version;
          h.fetched_at.reset();
        }
      }
      if (!o_.manual && runbook().starts == config::RunbookStart::kAfterRevert) {
        for (auto& h : hosts_)
          if (h.crashes > 0 && !h.runbook_active) ActivateRunbook(h, at);
      }
      return;
    }
    default:
      return;
  }
}

// --- Game day -----------------------------------------------------------------------------------

bool IsRestartLine(std::string line) {
  std::transform(line.begin(), line.end(), line.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.pop_back();
  while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.erase(0, 1);
  return line == "restart" || line == "reboot" || line == "wpeutil reboot";
}

bool Run::Settled() const {
  for (const auto& h : hosts_) {
    const HostState s = h.machine.state();
    if (IsTerminal(s)) continue;
    if ((s == HostState::kHealthy || s == HostState::kRecovered) && h.phase == Phase::kRunning &&
        !h.awaiting)
      continue;
    return false;
  }
  return true;
}

void Run::TakeActions(std::string* ending) {
  if (!o_.operator_actions) return;
  for (const OperatorAction& a : o_.operator_actions()) ApplyAction(a, ending);
}

void Run::Record(const OperatorAction& a, double at) {
  const int64_t wall_us =
      std::chrono::duration_cast<std::chrono::microseconds>(WallClock::now() - wall_start_).count();
  if (o_.journal) {
    JournalAction j;
    j.run_id = o_.run_id;
    j.scenario_s = at;
    j.wall_us = wall_us;
    j.role = a.role;
    j.host_id = a.host;
    j.kind = a.kind;
    j.detail = a.detail;
    j.keys = a.keys;
    Journaled(at, o_.journal->AppendAction(j));
  }
  // Console lines reach the live view as "console-input" events (Note); the rest as "action".
  if (o_.observer && a.kind != "console") {
    LiveEvent live{at, wall_us,  a.host,
                   {}, "action", a.role + " " + a.kind + (a.detail.empty() ? "" : ": " + a.detail),
                   {}, 0};
    if (auto it = by_id_.find(a.host); it != by_id_.end()) {
      const HostRun& h = hosts_[it->second];
      live.group = h.plan.spec.group;
      live.state = std::string(HostStateName(h.machine.state()));
      live.crashes = h.crashes;
    }
    o_.observer(live);
  }
}

void Run::ApplyAction(const OperatorAction& a, std::string* ending) {
  const double at = o_.realtime ? std::max(now_, RealNow()) : now_;
  HostRun* h = nullptr;
  if (auto it = by_id_.find(a.host); it != by_id_.end()) h = &hosts_[it->second];
  Record(a, at);
  if (paused_ && h && (a.kind == "boot" || a.kind == "reimage")) {
    // A paused exercise stays paused: no machine is started behind the instructor's back.
    Note(at, a.host, "action-refused", a.kind + ": the exercise is paused");
    return;
  }
  if (a.kind == "console" && h) {
    std::string line = a.detail;
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    Note(std::max(h->cursor, at), a.host, "console-input", line);
    // A boot-menu choice holds for one boot, as F8 does: leaving the console boots Windows.
    if (o_.manual && IsRestartLine(line)) (void)h->vm->SetBoot(BootTarget::kDisk);
    Status s = h->vm->SendConsole(line + "\n");
    if (!s.ok()) Note(std::max(h->cursor, at), a.host, "console-input-failed", s.ToString());
  } else if (a.kind == "boot" && h) {
    ManualBoot(*h, a.detail, at);
  } else if (a.kind == "reimage" && h) {
    ManualReimage(*h, at);
  } else if (a.kind == "key-fetch" && h) {
    h->keys_fetched++;
    Note(at, a.host, "key-fetched", "recovery password read on the key-escrow page");
  } else if (a.kind == "pause") {
    PauseFleet(at);
  } else if (a.kind == "resume") {
    ResumeFleet(at);
  } else if (a.kind == "end") {
    if (paused_) ResumeFleet(at);
    Note(at, "", "ended", "the instructor ended the exercise");
    *ending = "finished";
  } else if (a.kind == "escrow-down" || a.kind == "escrow-up") {
    escrow_forced_down_ = a.kind == "escrow-down";
    Note(at, "", "inject", escrow_forced_down_ ? "the key escrow fails" : "the key escrow is back");
    UpdateEscrow(at);
  } else if (a.kind == "second-update") {
    SecondUpdate(at);
  }
}

void Run::ManualBoot(HostRun& h, const std::string& target, double at) {
  BootTarget t;
  if (target == "safe-mode") {
    t = BootTarget::kSafeMode;
  } else if (target == "winre") {
    t = BootTarget::kWinRE;
  } else if (target == "normal") {
    t = BootTarget::kDisk;
  } else {
    Note(at, h.plan.spec.id, "boot-failed", "unknown boot choice '" + target + "'");
    return;
  }
  if (h.phase == Phase::kDone) return;
  const bool was_paused = h.phase == Phase::kParked || h.gated;
  Status s = h.vm->SetBoot(t);
  if (s.ok()) s = h.phase == Phase::kOff ? h.vm->Start() : h.vm->Reset();
  if (s.ok() && was_paused) s = h.vm->Resume();
  if (!s.ok()) {
    Note(at, h.plan.spec.id, "boot-failed", s.ToString());
    return;
  }
  h.expect_cmd.clear();
  h.console_env.clear();
  h.console_bitlocker.clear();
  Note(at, h.plan.spec.id, "boot-menu", target);
  BootedByTrainee(h, at, "trainee", "boot menu: " + target);
}

// A trainee's action (boot menu, reimage) restarted the machine: it boots again, and a host that
// was down is now being remediated by hand.
void Run::BootedByTrainee(HostRun& h, double at, const std::string& step, const std::string& why) {
  h.gated = false;
  h.boot_slot = false;
  h.phase = Phase::kBooting;
  h.phase_start = at;
  h.cursor = std::max(h.cursor, at);
  h.awaiting = false;
  h.last_heard = WallClock::now();
  h.last_step = step;
  const HostState st = h.machine.state();
  if (h.crashes > 0 &&
      (st == HostState::kCrashed || st == HostState::kBootLoop || st == HostState::kBooting))
    Move(h, HostState::kRemediating, at, why);
}

void Run::ManualReimage(HostRun& h, double at) {
  if (h.phase == Phase::kDone) return;
  Status s = Status::Ok();
  if (h.phase != Phase::kOff) {
    s = h.vm->PowerOff();
    if (s.ok()) h.ignore_shutdowns++;
  }
  if (s.ok()) s = h.vm->ReimageDisk();
  if (s.ok()) s = h.vm->SetBoot(BootTarget::kDisk);
  if (s.ok()) s = h.vm->Start();
  if (!s.ok()) {
    h.phase = Phase::kOff;
    Note(at, h.plan.spec.id, "reimage-failed", s.ToString());
    return;
  }
  h.data_lost = "all";
  Note(at, h.plan.spec.id, "data-lost", "all local data (reimaged)");
  BootedByTrainee(h, at, "reimage", "reimage");
}

void Run::PauseFleet(double at) {
  if (paused_ || !o_.realtime) return;
  paused_hosts_.clear();
  for (auto& h : hosts_) {
    const bool running = h.phase == Phase::kBooting || h.phase == Phase::kRunning ||
                         h.phase == Phase::kCrashDump || h.phase == Phase::kConsole ||
                         h.phase == Phase::kCommand;
    if (running && !h.gated && h.vm->Pause().ok()) paused_hosts_.push_back(h.index);
  }
  pause_started_ = WallClock::now();
  paused_ = true;
  Note(at, "", "paused", fmt::format("{} machine(s) paused", paused_hosts_.size()));
  Progress(at, "paused by the instructor");
}

void Run::ResumeFleet(double at) {
  if (!paused_) return;
  const auto wall = WallClock::now();
  paused_total_ += wall - pause_started_;
  paused_ = false;
  for (size_t i : paused_hosts_) (void)hosts_[i].vm->Resume();
  paused_hosts_.clear();
  for (auto& h : hosts_) h.last_heard = wall;  // the watchdog does not count the pause
  Note(at, "", "resumed", "");
  Progress(at, "resumed");
}

void Run::SecondUpdate(double at) {
  const ContentVersion& c = o_.second_fault;
  if (c.version == 0 || second_released_) {
    Note(at, "", "inject", "second bad update: not available in this lab");
    return;
  }
  Status s = o_.publish ? o_.publish(c) : Status::Ok();
  second_released_ = true;
  Note(at, "", "release",
       fmt::format("second bad update: channel {} version {} {}{}", c.channel, c.version,
                   c.file_name, s.ok() ? "" : " (" + s.ToString() + ")"));
  Progress(at,
           fmt::format("inject: second bad update, channel {} version {}", c.channel, c.version));
  for (auto& h : hosts_) {
    if (h.phase == Phase::kRunning && h.plan.online && !h.plan.pinned) {
      h.awaiting = true;
      h.await_since = at;
      h.await_version = c.version;
      h.fetched_at.reset();
    }
  }
}

Result<RunResult> Run::Execute() {
  wall_start_ = WallClock::now();
  RunResult result;
  result.run_id = o_.run_id;
  result.method = o_.method;
  result.inputs = o_.inputs;
  result.comparison_id = o_.comparison_id;
  result.repetition = o_.repetition;
  result.scenario = sc_.name;
  result.runbook = runbook().name;
  result.setup = sc_.setup.name;
  result.backend = std::string(o_.backend->name());
  result.seed = sc_.seed;
  result.status = "running";
  result.started_at = IsoNowUtc();
  result.release_s = sc_.rollout.release;

  auto cloud = sc_.image.timing.find(config::Role::kCloudVm);
  if (cloud != sc_.image.timing.end()) rescue_boot_ = cloud->second.boot;
  outages_.resize(sc_.setup.services.size());
  hosts_.reserve(o_.hosts.size());
  for (size_t i = 0; i < o_.hosts.size(); ++i) {
    HostRun h;
    h.plan = o_.hosts[i];
    h.index = i;
    auto timing = sc_.image.timing.find(h.plan.role);
    if (timing != sc_.image.timing.end()) h.timing = timing->second;
    auto rank = o_.priority.find(h.plan.spec.group);
    if (rank != o_.priority.end()) h.rank = rank->second;
    // Per-host stream: the same seed gives the same draws whatever order events arrive in.
    h.rng.seed(sc_.seed * 0x9E3779B97F4A7C15ULL + i);
    hosts_.push_back(std::move(h));
    by_id_[hosts_.back().plan.spec.id] = i;
  }
  for (auto& h : hosts_) {
    Result<Host*> vm = o_.backend->CreateHost(h.plan.spec);
    if (!vm.ok()) return vm.status().WithContext("creating host " + h.plan.spec.id);
    h.vm = *vm;
  }
  if (o_.journal) {
    RETURN_IF_ERROR(o_.journal->BeginRun(result));
    for (auto& h : hosts_) Journaled(now_, o_.journal->SaveHost(o_.run_id, Figures(h)));
  }
  // Nothing is up before the fleet boots: an escrow on fleet hosts waits for them too.
  escrow_up_ = sc_.setup.key_escrow.hosted_on.empty();
  if (o_.set_escrow_available) o_.set_escrow_available(escrow_up_);
  for (size_t i = 0; i < sc_.setup.services.size(); ++i) outages_[i].push_back({-kInf, kInf});

  now_ = sc_.rollout.start;
  deadline_ = sc_.rollout.start + sc_.stop.max_scenario;
  if (sc_.rollout.policy == config::RolloutPolicy::kRings && !sc_.rollout.rings.empty()) {
    ring_released_.assign(sc_.rollout.rings.size(), false);
    for (size_t r = 0; r < sc_.rollout.rings.size(); ++r)
      agenda_.Push(sc_.rollout.release + sc_.rollout.rings[r].after,
                   {AgendaItem::Kind::kRelease, r});
  } else {
    ring_released_.assign(1, false);
    agenda_.Push(sc_.rollout.release, {AgendaItem::Kind::kRelease, 0});
  }
  agenda_.Push(sc_.rollout.revert, {AgendaItem::Kind::kRevert});
  agenda_.Push(deadline_, {AgendaItem::Kind::kDeadline});

  std::string ending;
  if (o_.realtime && o_.wait_for_start && o_.operator_actions) {
    Progress(now_, "waiting for the instructor to start the exercise");
    bool started = false;
    while (!started && ending.empty()) {
      if (o_.cancel && o_.cancel->load()) {
        ending = "interrupted";
        break;
      }
      for (const OperatorAction& a : o_.operator_actions()) {
        Record(a, now_);
        if (a.kind == "start") started = true;
        if (a.kind == "end") ending = "finished";
      }
      if (!started) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    wall_start_ = WallClock::now();  // the scenario clock starts now
  }
  if (o_.realtime) {
    Note(now_, "", "started", ClockText(now_));
    Note(now_, "", "key-escrow", escrow_up_ ? "up" : "down");
  }
  Progress(now_, fmt::format("powering on {} hosts", hosts_.size()));
  for (auto& h : hosts_) {
    if (!ending.empty()) break;
    h.phase_start = h.cursor = sc_.rollout.start;
    h.last_heard = WallClock::now();
    Status s = h.vm->Start();
    if (!s.ok()) {
      if (!LostIfGone(h, s, now_, "could not start"))
        Fail(h, now_, "could not start: " + s.ToString());
      continue;
    }
    Move(h, HostState::kBooting, now_);
  }
  EnforceGate();

  std::vector<HostEvent> events;
  // In real time the clock decides what is due; paused, nothing is.
  const auto due = [&] { return o_.realtime ? (paused_ ? -kInf : RealNow()) : Horizon(); };
  while (ending.empty()) {
    if (o_.realtime && !paused_) now_ = std::max(now_, RealNow());
    // Process everything on the agenda that no machine can still precede.
    double horizon = due();
    while (!agenda_.empty() && agenda_.next_time() <= horizon) {
      if (horizon == kInf && agenda_.next_time() >= deadline_) {
        // Quiet until the deadline: settled, unless work was still planned past it.
        bool more = agenda_.size() > 1;
        ending = more ? "deadline" : "finished";
        // Hosts waiting for something that will never come (a deadlock, e.g. every technician
        // waiting for a key escrow nobody fixes) wait until the deadline: that is what they cost.
        bool stalled = false;
        for (const auto& h : hosts_) stalled |= h.waiting && !IsTerminal(h.machine.state());
        if (more || stalled) now_ = std::max(now_, deadline_);
        break;
      }
      auto entry = agenda_.Pop();
      if (entry.payload.kind == AgendaItem::Kind::kDeadline) {
        ending = "deadline";
        now_ = std::max(now_, entry.time);
        break;
      }
      ProcessAgenda(entry.time, entry.payload);
      horizon = due();
    }
    if (!ending.empty()) break;
    if (o_.realtime && !paused_ && reverted_ && Settled()) {
      ending = "finished";
      break;
    }

    if (o_.cancel && o_.cancel->load()) {
      ending = "interrupted";
      break;
    }
    auto wall = WallClock::now();
    if (wall - wall_start_ > std::chrono::duration<double>(sc_.stop.max_wall)) {
      ending = "timeout";
      Progress(now_, "wall-time limit reached; stopping");
      break;
    }
    for (auto& h : hosts_) {
      if (paused_) break;
      if (LowerBound(h) < kInf && !h.gated && wall - h.last_heard > o_.watchdog) {
        Fail(h, h.cursor, fmt::format("no sign of life for {} s (wall)", o_.watchdog.count()));
      }
    }

    events.clear();
    Status s = o_.backend->PollEvents(std::chrono::milliseconds(200), &events);
    if (!s.ok()) return s.WithContext("waiting for host events");
    for (const auto& e : events) {
      if (o_.observer && e.kind == HostEventKind::kConsoleLine && by_id_.count(e.host_id)) {
        const HostRun& h = hosts_[by_id_[e.host_id]];
        o_.observer({h.cursor, 0, e.host_id, h.plan.spec.group, "tty", e.detail,
                     std::string(HostStateName(h.machine.state())), h.crashes});
      }
      if (e.kind != HostEventKind::kConsoleLine) {
        auto it = by_id_.find(e.host_id);
        double at = it == by_id_.end() ? now_ : hosts_[it->second].cursor;
        Note(at, e.host_id, "qmp",
             std::string(HostEventKindName(e.kind)) + (e.detail.empty() ? "" : " " + e.detail));
        if (o_.stats && IsQmpEvent(e.kind)) {
          o_.stats->event_to_journal_ms.push_back(
              std::chrono::duration<double, std::milli>(WallClock::now() - e.wall).count());
        }
      }
      Receive(e);
    }
    if (o_.console_input) {
      // A person at the host's console: journaled first, so every keystroke is on record even when
      // the machine is off or paused and the text goes nowhere.
      for (auto& [host, text] : o_.console_input()) {
        auto it = by_id_.find(host);
        if (it == by_id_.end()) continue;
        HostRun& h = hosts_[it->second];
        std::string shown = text;
        while (!shown.empty() && (shown.back() == '\n' || shown.back() == '\r')) shown.pop_back();
        Note(std::max(h.cursor, now_), host, "console-input", shown);
        Status s = h.vm->SendConsole(text);
        if (!s.ok()) Note(std::max(h.cursor, now_), host, "console-input-failed", s.ToString());
      }
    }
    TakeActions(&ending);
    if (!paused_) EnforceGate();
  }

  for (auto& h : hosts_) {
    now_ = std::max(now_, h.cursor);
    if (h.rescue_running) {
      (void)h.rescue->PowerOff();
      h.rescue_running = false;
    }
  }
  for (const auto& h : hosts_) result.hosts.push_back(Figures(h));
  ServiceFigures(&result);
  result.status = ending;
  result.scenario_end_s = now_;
  result.wall_s = std::chrono::duration<double>(WallClock::now() - wall_start_).count();
  Summarize(&result);
  // FinishRun writes every host again: a failure here still leaves the results to print.
  if (o_.journal) Journaled(now_, o_.journal->FinishRun(result));
  result.journal_error = journal_error_;
  int stalled = 0;
  for (const auto& h : hosts_) stalled += h.waiting && !IsTerminal(h.machine.state());
  Progress(now_, fmt::format("run {} ({:.1f} s wall){}", ending, result.wall_s,
                             stalled ? fmt::format("; {} host(s) stalled", stalled) : ""));
  return result;
}

}  // namespace

Result<RunResult> RunScenario(const EngineOptions& options) {
  if (!options.scenario || !options.backend) {
    return Status::InvalidArgument("RunScenario needs a scenario and a backend");
  }
  if (options.hosts.empty()) return Status::InvalidArgument("the fleet has no hosts");
  Run run(options);
  return run.Execute();
}

}  // namespace chaoslab
