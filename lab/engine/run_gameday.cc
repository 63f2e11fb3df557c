// Run: game day: operator actions (console, boot menu, reimage, injects), pause and resume.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <string>

#include "lab/engine/run.h"

namespace chaoslab::engine_internal {

namespace {

bool IsRestartLine(std::string line) {
  std::transform(line.begin(), line.end(), line.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.pop_back();
  while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.erase(0, 1);
  return line == "restart" || line == "reboot" || line == "wpeutil reboot";
}

}  // namespace

bool Run::Settled() const {
  for (const auto& h : hosts_) {
    const HostState s = StateOf(h);
    if (IsTerminal(s)) continue;
    if ((s == HostState::kHealthy || s == HostState::kRecovered) && h.phase == Phase::kRunning &&
        !h.awaiting)
      continue;
    return false;
  }
  return true;
}

void Run::TakeActions(std::string* ending) {
  if (!o_.live) return;
  for (const OperatorAction& a : o_.live->TakeActions()) ApplyAction(a, ending);
}

void Run::Record(const OperatorAction& a, double at) {
  const int64_t wall_us =
      std::chrono::duration_cast<std::chrono::microseconds>(Now() - wall_start_).count();
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
  if (o_.live && a.kind != "console") {
    LiveEvent live{at, wall_us,  a.host,
                   {}, "action", a.role + " " + a.kind + (a.detail.empty() ? "" : ": " + a.detail),
                   {}, 0};
    if (auto it = by_id_.find(a.host); it != by_id_.end()) {
      const HostRun& h = hosts_[it->second];
      live.group = h.plan.spec.group;
      live.state = std::string(HostStateName(StateOf(h)));
      live.crashes = R(h).crashes;
    }
    o_.live->Event(live);
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
    const bool down = a.kind == "escrow-down";
    Note(at, "", "inject", down ? "the key escrow fails" : "the key escrow is back");
    model_.ForceEscrowDown(down, at);
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
  BootedByTrainee(h, at, recovery::kByTrainee - 1, "boot menu: " + target);
}

// A trainee's action (boot menu, reimage) restarted the machine: it boots again, and a host that
// was down is now being remediated by hand.
void Run::BootedByTrainee(HostRun& h, double at, uint8_t step, const std::string& why) {
  h.gated = false;
  h.boot_slot = false;
  h.phase = Phase::kBooting;
  h.phase_start = at;
  h.cursor = std::max(h.cursor, at);
  h.awaiting = false;
  h.last_heard = Now();
  model_.RestartedByHand(h.index, at, step, why);
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
  BootedByTrainee(h, at, 1 + static_cast<uint8_t>(config::StepKind::kReimage), "reimage");
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
  pause_started_ = Now();
  paused_ = true;
  Note(at, "", "paused", fmt::format("{} machine(s) paused", paused_hosts_.size()));
  Progress(at, "paused by the instructor");
}

void Run::ResumeFleet(double at) {
  if (!paused_) return;
  const auto wall = Now();
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
  Status s = o_.content ? o_.content->Publish(c) : Status::Ok();
  second_released_ = true;
  Note(at, "", "release",
       fmt::format("second bad update: channel {} version {} {}{}", c.channel, c.version,
                   c.file_name, s.ok() ? "" : " (" + s.ToString() + ")"));
  Progress(at,
           fmt::format("inject: second bad update, channel {} version {}", c.channel, c.version));
  AwaitContent(c.version, at, [](const HostRun& h) { return !h.plan.pinned; });
}

}  // namespace chaoslab::engine_internal
