#include "lab/engine/engine.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <limits>
#include <map>
#include <optional>
#include <random>

#include "lab/engine/event_queue.h"
#include "lab/engine/guest_signal.h"
#include "lab/engine/host_state.h"

namespace chaoslab {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
// Scenario seconds from a content file reaching the sensor to the IPC notification that reads it.
constexpr double kIpcAfterLoad = 1.0;

// What the machine is doing right now (finer than HostState, which is what reports show).
enum class Phase {
  kBooting,    // powered on or reset; ends in "ready" or a crash
  kRunning,    // healthy and running; may be waiting to hear about newly published content
  kCrashDump,  // crashed, until its reset
  kParked,     // vCPUs paused by the engine (boot-loop nobody acts on yet)
  kDone,       // nothing more will happen (failed, lost)
};

enum class FleetEvent { kRelease, kRevert, kDeadline };

// Events QEMU reports over QMP (the others are the backend's own: started, lost, console).
bool IsQmpEvent(HostEventKind kind) {
  return kind == HostEventKind::kPanicked || kind == HostEventKind::kReset ||
         kind == HostEventKind::kStopped || kind == HostEventKind::kResumed ||
         kind == HostEventKind::kShutdown;
}

std::string ClockText(double seconds_since_midnight) {
  long s = std::lround(seconds_since_midnight);
  long days = s / 86400;
  s %= 86400;
  std::string hms = fmt::format("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
  return days ? fmt::format("d+{} {}", days, hms) : hms;
}

std::string IsoNowUtc() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

struct HostRun {
  HostPlan plan;
  Host* vm = nullptr;
  config::PhaseTiming timing;
  HostStateMachine machine;
  std::mt19937_64 rng;

  Phase phase = Phase::kBooting;
  double phase_start = 0;  // scenario time the current boot began
  double crash_at = 0;     // scenario time of the latest crash
  double cursor = 0;       // scenario time of the latest stamped signal
  double parked_at = 0;
  // Waiting to hear whether the host took newly published content (or could not reach the cloud).
  bool awaiting = false;
  double await_since = 0;
  uint32_t await_version = 0;
  std::optional<double> fetched_at;  // stamp of the latest fetch while running
  long long fetched_version = 0;     // newest content version the sensor downloaded
  bool runbook_active = false;
  WallClock::time_point last_heard;

  // Figures.
  bool exposed = false;
  int crashes = 0;
  int crashes_since_healthy = 0;
  bool boot_loop = false;
  int reboots = 0;
  std::optional<double> first_crash_at;
  std::optional<double> recovered_at;
  std::string stop_code;
};

class Run {
 public:
  explicit Run(const EngineOptions& o) : o_(o), sc_(*o.scenario) {}

  Result<RunResult> Execute();

 private:
  // Scenario time before which host `h` can no longer report anything.
  double LowerBound(const HostRun& h) const;
  double Horizon() const;
  void Receive(const HostEvent& e);
  void OnConsole(HostRun& h, const std::string& line);
  void OnPanicked(HostRun& h);
  void OnReset(HostRun& h);
  void OnReady(HostRun& h, double at);
  void ProcessFleetEvent(double at, FleetEvent e);
  void ActivateRunbook(HostRun& h, double at);
  void Fail(HostRun& h, double at, const std::string& why);
  void Lose(HostRun& h, double at, const std::string& why);
  void Move(HostRun& h, HostState to, double at, const std::string& why = {});
  void Note(double at, const std::string& host, const std::string& kind, const std::string& detail);
  void Progress(double at, const std::string& text);
  HostResult Figures(const HostRun& h) const;
  double FetchDelay(HostRun& h) {
    std::uniform_real_distribution<double> d(0.05, 1.0);
    return d(h.rng) * h.timing.content_fetch;
  }
  const config::RunbookConfig& runbook() const { return sc_.runbook; }
  int RebootBudget() const {
    int n = 0;
    for (const auto& s : runbook().steps)
      if (s.kind == config::StepKind::kReboot) n += s.times;
    return n;
  }

  const EngineOptions& o_;
  const config::ScenarioConfig& sc_;
  std::vector<HostRun> hosts_;
  std::map<std::string, size_t> by_id_;
  EventQueue<FleetEvent> fleet_events_;
  double now_ = 0;  // scenario clock: time of the latest processed fleet event or signal
  WallClock::time_point wall_start_;
  bool released_ = false, reverted_ = false;
};

double Run::LowerBound(const HostRun& h) const {
  switch (h.phase) {
    case Phase::kBooting:
      return std::max(h.cursor, h.phase_start + std::min(h.timing.driver_load, h.timing.boot));
    case Phase::kCrashDump:
      return h.crash_at + h.timing.crash_dump;
    case Phase::kRunning:
      return h.awaiting ? std::max(h.cursor, h.await_since) : kInf;
    case Phase::kParked:
    case Phase::kDone:
      return kInf;
  }
  return kInf;
}

double Run::Horizon() const {
  double bound = kInf;
  for (const auto& h : hosts_) bound = std::min(bound, LowerBound(h));
  return bound;
}

void Run::Note(double at, const std::string& host, const std::string& kind,
               const std::string& detail) {
  if (!o_.journal) return;
  JournalEvent ev;
  ev.run_id = o_.run_id;
  ev.scenario_s = at;
  ev.wall_us =
      std::chrono::duration_cast<std::chrono::microseconds>(WallClock::now() - wall_start_).count();
  ev.host_id = host;
  ev.kind = kind;
  ev.detail = detail;
  Status s = o_.journal->AppendEvent(ev);
  if (!s.ok()) Progress(at, "journal: " + s.ToString());
}

void Run::Progress(double at, const std::string& text) {
  if (o_.progress) o_.progress(ClockText(at) + "  " + text);
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
  if (o_.journal) (void)o_.journal->SaveHost(o_.run_id, Figures(h));
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
  if (h.first_crash_at) r.first_crash_s = *h.first_crash_at - sc_.rollout.release;
  if (h.first_crash_at && h.recovered_at) r.time_to_recover_s = *h.recovered_at - *h.first_crash_at;
  r.stop_code = h.stop_code;
  return r;
}

void Run::Receive(const HostEvent& e) {
  auto it = by_id_.find(e.host_id);
  if (it == by_id_.end()) return;
  HostRun& h = hosts_[it->second];
  h.last_heard = e.wall;
  switch (e.kind) {
    case HostEventKind::kConsoleLine:
      OnConsole(h, e.detail);
      break;
    case HostEventKind::kPanicked:
      OnPanicked(h);
      break;
    case HostEventKind::kReset:
      OnReset(h);
      break;
    case HostEventKind::kLost:
      Lose(h, h.cursor, e.detail);
      break;
    case HostEventKind::kShutdown:
      if (h.phase != Phase::kDone) Lose(h, h.cursor, "guest shut down: " + e.detail);
      break;
    case HostEventKind::kStarted:
    case HostEventKind::kStopped:
    case HostEventKind::kResumed:
      break;
  }
}

void Run::OnConsole(HostRun& h, const std::string& line) {
  std::optional<GuestSignal> sig = ParseGuestSignal(line);
  if (!sig) return;
  using K = GuestSignal::Kind;
  const uint32_t fault_version = o_.fault.version;
  switch (sig->kind) {
    case K::kReady:
      if (h.phase == Phase::kBooting) OnReady(h, h.phase_start + h.timing.boot);
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
      double at = h.phase == Phase::kRunning && h.awaiting ? h.await_since + FetchDelay(h)
                                                           : h.phase_start + h.timing.driver_load;
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
      if (h.phase == Phase::kRunning && h.awaiting &&
          (seen >= h.await_version || sig->Str("cloud") == "unreachable")) {
        h.awaiting = false;
      }
      break;
    }
    case K::kRejected:
      Note(h.cursor, h.plan.spec.id, "rejected", line.substr(line.find("@@")));
      if (sig->Int("version") == fault_version) h.exposed = true;
      break;
    case K::kPhase:
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
  if (h.crashes > 0) {
    if (!h.recovered_at) h.recovered_at = h.cursor;
    Move(h, HostState::kRecovered, h.cursor,
         fmt::format("healthy again after {} crash(es), {} reboot(s)", h.crashes, h.reboots));
  } else {
    Move(h, HostState::kHealthy, h.cursor);
  }
  // Content published while it was booting: it will hear about it at its next poll.
  if (released_ && h.plan.online) {
    uint32_t newest = reverted_ ? o_.revert.version : o_.fault.version;
    h.awaiting = true;
    h.await_since = h.cursor;
    h.await_version = newest;
  }
}

void Run::OnPanicked(HostRun& h) {
  if (h.phase == Phase::kDone || h.phase == Phase::kCrashDump) return;
  double at;
  if (h.phase == Phase::kRunning) {
    at = (h.fetched_at ? *h.fetched_at : (h.awaiting ? h.await_since + FetchDelay(h) : h.cursor)) +
         kIpcAfterLoad;
  } else {
    at = h.phase_start + h.timing.driver_load;
  }
  h.cursor = std::max(h.cursor, at);
  h.crash_at = h.cursor;
  h.phase = Phase::kCrashDump;
  h.awaiting = false;
  h.crashes++;
  h.crashes_since_healthy++;
  if (!h.first_crash_at) h.first_crash_at = h.crash_at;
  std::string why = h.stop_code.empty() ? "guest panicked" : h.stop_code;
  Note(h.crash_at, h.plan.spec.id, "crash", why);

  HostState state = h.machine.state();
  if (state == HostState::kRemediating) {
    if (h.reboots >= RebootBudget()) {
      Fail(h, h.crash_at, fmt::format("still crashing after {} reboot(s)", h.reboots));
      return;
    }
    Progress(h.crash_at, fmt::format("{:<14} crashed again (reboot {} of {})", h.plan.spec.id,
                                     h.reboots, RebootBudget()));
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
  if (!h.runbook_active && runbook().starts == config::RunbookStart::kAtDetection) {
    ActivateRunbook(h, h.crash_at);
  }
}

void Run::OnReset(HostRun& h) {
  if (h.phase != Phase::kCrashDump) return;  // resets the engine asked for are accounted already
  double at = h.crash_at + h.timing.crash_dump;
  h.phase_start = at;
  h.cursor = std::max(h.cursor, at);
  if (!h.runbook_active && h.crashes_since_healthy >= 2) {
    // Boot-loop and nobody acts on it yet: park the machine until something changes.
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
  if (h.machine.state() == HostState::kRemediating) h.reboots++;
}

void Run::ActivateRunbook(HostRun& h, double at) {
  h.runbook_active = true;
  HostState s = h.machine.state();
  if (s != HostState::kCrashed && s != HostState::kBootLoop && s != HostState::kBooting) return;
  if (h.crashes == 0) return;
  Move(h, HostState::kRemediating, at, "runbook " + runbook().name);
  if (RebootBudget() == 0) {
    Fail(h, at, "the runbook has no step that applies");
    return;
  }
  if (h.phase == Phase::kParked) {
    Status st = h.vm->Resume();
    if (!st.ok()) {
      Lose(h, at, "could not resume: " + st.ToString());
      return;
    }
    h.phase = Phase::kBooting;
    h.phase_start = std::max(at, h.parked_at);
    h.cursor = std::max(h.cursor, h.phase_start);
    h.reboots++;
    h.last_heard = WallClock::now();
  }
}

void Run::Fail(HostRun& h, double at, const std::string& why) {
  if (h.phase != Phase::kDone)
    (void)h.vm->Pause();  // keep the machine for inspection, stop its CPU
  h.phase = Phase::kDone;
  h.awaiting = false;
  Move(h, HostState::kFailed, at, why);
}

void Run::Lose(HostRun& h, double at, const std::string& why) {
  h.phase = Phase::kDone;
  h.awaiting = false;
  Move(h, HostState::kLost, at, why);
}

void Run::ProcessFleetEvent(double at, FleetEvent e) {
  now_ = std::max(now_, at);
  switch (e) {
    case FleetEvent::kRelease:
    case FleetEvent::kRevert: {
      const ContentVersion& c = e == FleetEvent::kRelease ? o_.fault : o_.revert;
      const char* what = e == FleetEvent::kRelease ? "release" : "revert";
      Status s = o_.publish ? o_.publish(c) : Status::Ok();
      Note(at, "", what,
           fmt::format("channel {} version {} {}", c.channel, c.version, c.file_name));
      Progress(at, fmt::format("{}: channel {} version {} published ({})", what, c.channel,
                               c.version, s.ok() ? c.file_name : s.ToString()));
      (e == FleetEvent::kRelease ? released_ : reverted_) = true;
      for (auto& h : hosts_) {
        if (h.phase == Phase::kRunning && h.plan.online) {
          h.awaiting = true;
          h.await_since = at;
          h.await_version = c.version;
          h.fetched_at.reset();
        }
      }
      if (e == FleetEvent::kRevert && runbook().starts == config::RunbookStart::kAfterRevert) {
        for (auto& h : hosts_)
          if (h.crashes > 0 && !h.runbook_active) ActivateRunbook(h, at);
      }
      break;
    }
    case FleetEvent::kDeadline:
      break;
  }
}

Result<RunResult> Run::Execute() {
  wall_start_ = WallClock::now();
  RunResult result;
  result.run_id = o_.run_id;
  result.scenario = sc_.name;
  result.runbook = runbook().name;
  result.backend = std::string(o_.backend->name());
  result.seed = sc_.seed;
  result.status = "running";
  result.started_at = IsoNowUtc();

  hosts_.reserve(o_.hosts.size());
  for (size_t i = 0; i < o_.hosts.size(); ++i) {
    HostRun h;
    h.plan = o_.hosts[i];
    auto timing = sc_.image.timing.find(h.plan.role);
    if (timing != sc_.image.timing.end()) h.timing = timing->second;
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
    RETURN_IF_ERROR(o_.journal->BeginRun(result, "{}"));
    for (auto& h : hosts_) (void)o_.journal->SaveHost(o_.run_id, Figures(h));
  }

  now_ = sc_.rollout.start;
  fleet_events_.Push(sc_.rollout.release, FleetEvent::kRelease);
  fleet_events_.Push(sc_.rollout.revert, FleetEvent::kRevert);
  fleet_events_.Push(sc_.rollout.start + sc_.stop.max_scenario, FleetEvent::kDeadline);

  Progress(now_, fmt::format("powering on {} hosts", hosts_.size()));
  for (auto& h : hosts_) {
    h.phase_start = h.cursor = sc_.rollout.start;
    h.last_heard = WallClock::now();
    Status s = h.vm->Start();
    if (!s.ok()) {
      Fail(h, now_, "could not start: " + s.ToString());
      continue;
    }
    Move(h, HostState::kBooting, now_);
  }

  std::string ending = "finished";
  std::vector<HostEvent> events;
  while (true) {
    // Process every fleet event no machine can still precede.
    double horizon = Horizon();
    bool deadline = false;
    while (!fleet_events_.empty() && fleet_events_.next_time() <= horizon) {
      auto entry = fleet_events_.Pop();
      if (entry.payload == FleetEvent::kDeadline) {
        if (horizon == kInf) break;  // settled before the deadline: nothing more can happen
        deadline = true;
        now_ = std::max(now_, entry.time);
        break;
      }
      ProcessFleetEvent(entry.time, entry.payload);
      horizon = Horizon();
    }
    if (deadline) {
      ending = "deadline";
      break;
    }
    // Settled: nothing in flight and only the deadline left.
    if (Horizon() == kInf && fleet_events_.size() <= 1) break;

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
      if (LowerBound(h) < kInf && wall - h.last_heard > o_.watchdog) {
        Fail(h, h.cursor, fmt::format("no sign of life for {} s (wall)", o_.watchdog.count()));
      }
    }

    events.clear();
    Status s = o_.backend->PollEvents(std::chrono::milliseconds(200), &events);
    if (!s.ok()) return s.WithContext("waiting for host events");
    for (const auto& e : events) {
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
  }

  for (const auto& h : hosts_) {
    now_ = std::max(now_, h.cursor);
    result.hosts.push_back(Figures(h));
  }
  result.status = ending;
  result.scenario_end_s = now_;
  result.wall_s = std::chrono::duration<double>(WallClock::now() - wall_start_).count();
  Summarize(&result);
  if (o_.journal) {
    for (const auto& hr : result.hosts) (void)o_.journal->SaveHost(o_.run_id, hr);
    RETURN_IF_ERROR(o_.journal->FinishRun(result));
  }
  Progress(now_, fmt::format("run {} ({:.1f} s wall)", ending, result.wall_s));
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
