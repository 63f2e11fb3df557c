// RunScenario and the run's main loop: the two clocks, the agenda, the rollout, the boot gate.
#include "lab/engine/engine.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "lab/common/clock_text.h"
#include "lab/engine/run.h"
#include "lab/recovery/remediation.h"

namespace chaoslab {

std::string ClockText(double seconds_since_midnight) {
  long s = std::lround(seconds_since_midnight);
  long days = s / 86400;
  s %= 86400;
  std::string hms = fmt::format("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
  return days ? fmt::format("d+{} {}", days, hms) : hms;
}

namespace engine_internal {

namespace {

// Events QEMU reports over QMP (the others are the backend's own: started, lost, console).
bool IsQmpEvent(HostEventKind kind) {
  return kind == HostEventKind::kPanicked || kind == HostEventKind::kReset ||
         kind == HostEventKind::kStopped || kind == HostEventKind::kResumed ||
         kind == HostEventKind::kShutdown;
}

}  // namespace

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
          h.last_heard = Now();
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
    h.last_heard = Now();
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

void Run::ProcessAgenda(double at, const AgendaItem& item) {
  now_ = std::max(now_, at);
  switch (item.kind) {
    case AgendaItem::Kind::kRelease:
      ReleaseRing(at, static_cast<int>(item.ring));
      return;
    case AgendaItem::Kind::kRevert:
      Revert(at);
      return;
    case AgendaItem::Kind::kRemediation:
      StartRemediation(at);
      return;
    case AgendaItem::Kind::kDeadline:
      return;
    case AgendaItem::Kind::kModel:
      model_.Handle(at, item.signal);
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
      crashed += R(h).crashes > 0;
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
    Status s = o_.content ? o_.content->Publish(o_.fault) : Status::Ok();
    Note(at, "", "release",
         fmt::format("channel {} version {} {}", o_.fault.channel, o_.fault.version,
                     o_.fault.file_name));
    Progress(at, fmt::format("release: channel {} version {} published ({})", o_.fault.channel,
                             o_.fault.version, s.ok() ? o_.fault.file_name : s.ToString()));
    released_ = true;
  }
  if (ring < static_cast<int>(ring_released_.size())) ring_released_[ring] = true;
  if (o_.content) o_.content->ReleaseRing(ring);
  if (staged) {
    Note(at, "", "ring", "ring " + ring_name + " gets the new content");
    Progress(at, "ring " + ring_name + " gets the new content");
  }
  AwaitContent(o_.fault.version, at,
               [&](const HostRun& h) { return SeesFault(h) && h.plan.ring == ring; });
}

void Run::AwaitContent(uint32_t version, double at,
                       const std::function<bool(const HostRun&)>& offered) {
  for (auto& h : hosts_) {
    if (h.phase != Phase::kRunning || !h.plan.online || !offered(h)) continue;
    h.awaiting = true;
    h.await_since = at;
    h.await_version = version;
    h.fetched_at.reset();
  }
}

void Run::Revert(double at) {
  const ContentVersion& c = o_.revert;
  Status s = o_.content ? o_.content->Publish(c) : Status::Ok();
  if (o_.content) o_.content->WithdrawFault();
  Note(at, "", "revert",
       fmt::format("channel {} version {} {}", c.channel, c.version, c.file_name));
  Progress(at, fmt::format("revert: channel {} version {} published ({})", c.channel, c.version,
                           s.ok() ? c.file_name : s.ToString()));
  reverted_ = true;
  // Pinned hosts hold at N-1: the revert is nothing new for them.
  AwaitContent(c.version, at, [](const HostRun& h) { return !h.plan.pinned; });
  model_.ActivateCrashed(at);
}

void Run::StartRemediation(double at) {
  std::vector<std::string> hosts;
  for (const auto& h : hosts_) {
    if (h.plan.online &&
        recovery::RemediationOptedIn(sc_.vendor_remediation, sc_.seed, h.index, h.plan.spec.group))
      hosts.push_back(h.plan.spec.id);
  }
  const Status s = o_.content ? o_.content->Quarantine(o_.fault, hosts) : Status::Ok();
  Note(at, "", "remediation",
       fmt::format("cloud quarantine of {} for {} opted-in host(s){}", o_.fault.file_name,
                   hosts.size(), s.ok() ? "" : ": " + s.ToString()));
  Progress(at, fmt::format("vendor remediation: {} of {} hosts opted in ({})", hosts.size(),
                           hosts_.size(), s.ok() ? o_.fault.file_name : s.ToString()));
}

Result<RunResult> Run::Execute() {
  wall_start_ = Now();
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
  RETURN_IF_ERROR(Prepare(result));

  std::string ending;
  if (o_.realtime && o_.wait_for_start && o_.live) WaitForStart(&ending);
  if (o_.realtime) {
    Note(now_, "", "started", ClockText(now_));
    Note(now_, "", "key-escrow", model_.escrow_up() ? "up" : "down");
  }
  PowerOn(ending);
  EnforceGate();

  std::vector<HostEvent> events;
  while (ending.empty()) {
    if (o_.realtime && !paused_) now_ = std::max(now_, RealNow());
    ProcessDue(&ending);
    if (!ending.empty()) break;
    if (o_.realtime && !paused_ && reverted_ && Settled()) {
      ending = "finished";
      break;
    }

    if (o_.cancel && o_.cancel->load()) {
      ending = "interrupted";
      break;
    }
    auto wall = Now();
    if (wall - wall_start_ > std::chrono::duration<double>(sc_.stop.max_wall)) {
      ending = "timeout";
      Progress(now_, "wall-time limit reached; stopping");
      break;
    }
    Watchdog(wall);
    RETURN_IF_ERROR(PollHosts(&events));
    ForwardConsoleInput();
    TakeActions(&ending);
    if (!paused_) EnforceGate();
  }
  return Finish(std::move(result), ending);
}

Status Run::Prepare(const RunResult& result) {
  auto cloud = sc_.image.timing.find(config::Role::kCloudVm);
  if (cloud != sc_.image.timing.end()) rescue_boot_ = cloud->second.boot;
  hosts_.reserve(o_.hosts.size());
  profiles_.reserve(o_.hosts.size());
  model_.Reserve(o_.hosts.size());
  for (size_t i = 0; i < o_.hosts.size(); ++i) {
    HostRun h;
    h.plan = o_.hosts[i];
    h.index = static_cast<uint32_t>(i);
    auto timing = sc_.image.timing.find(h.plan.role);
    if (timing != sc_.image.timing.end()) h.timing = timing->second;
    profiles_.push_back(ProfileOf(h.plan));
    model_.AddHost(static_cast<uint16_t>(i));
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
  if (o_.escrow) o_.escrow->SetAvailable(model_.escrow_up());

  now_ = sc_.rollout.start;
  deadline_ = sc_.rollout.start + sc_.stop.max_scenario;
  if (sc_.rollout.policy == config::RolloutPolicy::kRings && !sc_.rollout.rings.empty()) {
    ring_released_.assign(sc_.rollout.rings.size(), false);
    for (size_t r = 0; r < sc_.rollout.rings.size(); ++r)
      agenda_.Push(sc_.rollout.release + sc_.rollout.rings[r].after,
                   {AgendaItem::Kind::kRelease, r, {}});
  } else {
    ring_released_.assign(1, false);
    agenda_.Push(sc_.rollout.release, {AgendaItem::Kind::kRelease, 0, {}});
  }
  agenda_.Push(sc_.rollout.revert, {AgendaItem::Kind::kRevert, 0, {}});
  if (sc_.vendor_remediation.enabled)
    agenda_.Push(sc_.vendor_remediation.available, {AgendaItem::Kind::kRemediation, 0, {}});
  agenda_.Push(deadline_, {AgendaItem::Kind::kDeadline, 0, {}});
  return Status::Ok();
}

void Run::WaitForStart(std::string* ending) {
  Progress(now_, "waiting for the instructor to start the exercise");
  bool started = false;
  while (!started && ending->empty()) {
    if (o_.cancel && o_.cancel->load()) {
      *ending = "interrupted";
      break;
    }
    for (const OperatorAction& a : o_.live->TakeActions()) {
      Record(a, now_);
      if (a.kind == "start") started = true;
      if (a.kind == "end") *ending = "finished";
    }
    if (!started) clock_->SleepFor(std::chrono::milliseconds(100));
  }
  wall_start_ = Now();  // the scenario clock starts now
}

void Run::PowerOn(const std::string& ending) {
  Progress(now_, fmt::format("powering on {} hosts", hosts_.size()));
  for (auto& h : hosts_) {
    if (!ending.empty()) break;
    h.phase_start = h.cursor = sc_.rollout.start;
    h.last_heard = Now();
    Status s = h.vm->Start();
    if (!s.ok()) {
      if (!LostIfGone(h, s, now_, "could not start"))
        Fail(h, now_, "could not start: " + s.ToString());
      continue;
    }
    Move(h, HostState::kBooting, now_);
  }
}

// In real time the clock decides what is due; paused, nothing is.
double Run::Due() const { return o_.realtime ? (paused_ ? -kInf : RealNow()) : Horizon(); }

void Run::ProcessDue(std::string* ending) {
  // Process everything on the agenda that no machine can still precede.
  double horizon = Due();
  while (!agenda_.empty() && agenda_.next_time() <= horizon) {
    if (horizon == kInf && agenda_.next_time() >= deadline_) {
      // Quiet until the deadline: settled, unless work was still planned past it.
      bool more = agenda_.size() > 1;
      *ending = more ? "deadline" : "finished";
      // Hosts waiting for something that will never come (a deadlock, e.g. every technician
      // waiting for a key escrow nobody fixes) wait until the deadline: that is what they cost.
      if (more || model_.AnyStalled()) now_ = std::max(now_, deadline_);
      break;
    }
    auto entry = agenda_.Pop();
    if (entry.payload.kind == AgendaItem::Kind::kDeadline) {
      *ending = "deadline";
      now_ = std::max(now_, entry.time);
      break;
    }
    ProcessAgenda(entry.time, entry.payload);
    horizon = Due();
  }
}

void Run::Watchdog(WallClock::time_point wall) {
  for (auto& h : hosts_) {
    if (paused_) break;
    if (LowerBound(h) < kInf && !h.gated && wall - h.last_heard > o_.watchdog) {
      Fail(h, h.cursor, fmt::format("no sign of life for {} s (wall)", o_.watchdog.count()));
    }
  }
}

Status Run::PollHosts(std::vector<HostEvent>* events) {
  events->clear();
  Status s = o_.backend->PollEvents(std::chrono::milliseconds(200), events);
  if (!s.ok()) return s.WithContext("waiting for host events");
  for (const auto& e : *events) {
    if (o_.live && e.kind == HostEventKind::kConsoleLine && by_id_.count(e.host_id)) {
      const HostRun& h = hosts_[by_id_[e.host_id]];
      o_.live->Event({h.cursor, 0, e.host_id, h.plan.spec.group, "tty", e.detail,
                      std::string(HostStateName(StateOf(h))), R(h).crashes});
    }
    if (e.kind != HostEventKind::kConsoleLine) {
      auto it = by_id_.find(e.host_id);
      double at = it == by_id_.end() ? now_ : hosts_[it->second].cursor;
      Note(at, e.host_id, "qmp",
           std::string(HostEventKindName(e.kind)) + (e.detail.empty() ? "" : " " + e.detail));
      if (o_.stats && IsQmpEvent(e.kind)) {
        o_.stats->event_to_journal_ms.push_back(
            std::chrono::duration<double, std::milli>(Now() - e.wall).count());
      }
    }
    Receive(e);
  }
  return Status::Ok();
}

void Run::ForwardConsoleInput() {
  if (!o_.live) return;
  // A person at the host's console: journaled first, so every keystroke is on record even when
  // the machine is off or paused and the text goes nowhere.
  for (auto& [host, text] : o_.live->TakeConsoleInput()) {
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

RunResult Run::Finish(RunResult result, const std::string& ending) {
  for (auto& h : hosts_) {
    now_ = std::max(now_, h.cursor);
    if (h.rescue_running) {
      (void)h.rescue->PowerOff();
      h.rescue_running = false;
    }
  }
  for (const auto& h : hosts_) result.hosts.push_back(Figures(h));
  result.services = model_.ServiceFigures(sc_.rollout.release, now_);
  result.status = ending;
  result.scenario_end_s = now_;
  result.wall_s = std::chrono::duration<double>(Now() - wall_start_).count();
  Summarize(&result);
  // FinishRun writes every host again: a failure here still leaves the results to print.
  if (o_.journal) Journaled(now_, o_.journal->FinishRun(result));
  result.journal_error = journal_error_;
  const int stalled = model_.Stalled();
  Progress(now_, fmt::format("run {} ({:.1f} s wall){}", ending, result.wall_s,
                             stalled ? fmt::format("; {} host(s) stalled", stalled) : ""));
  return result;
}

}  // namespace engine_internal

Result<RunResult> RunScenario(const EngineOptions& options) {
  if (!options.scenario || !options.backend) {
    return Status::InvalidArgument("RunScenario needs a scenario and a backend");
  }
  if (options.hosts.empty()) return Status::InvalidArgument("the fleet has no hosts");
  engine_internal::Run run(options);
  return run.Execute();
}

}  // namespace chaoslab
