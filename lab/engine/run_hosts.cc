// Run: what the machines report (QMP events, console lines) and how a host ends (Fail, Lose).
#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <string>

#include "lab/engine/guest_signal.h"
#include "lab/engine/run.h"

namespace chaoslab::engine_internal {

namespace {

// A console line from its "@@" on, as the journal keeps it.
std::string FromSigil(const std::string& line) {
  const size_t at = line.find("@@");
  return at == std::string::npos ? line : line.substr(at);
}

}  // namespace

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
  if (from_rescue) {
    // The rescue VM speaks the same protocol; only its console and command lines matter.
    if (R(h).InMachinePart()) OnRescueConsole(h, *sig, line);
    return;
  }
  const std::string text = FromSigil(line);
  switch (sig->kind) {
    case K::kReady:
      if (h.phase == Phase::kBooting) OnReady(h, Stamp(h.phase_start + h.timing.boot));
      break;
    case K::kBugcheck:
      h.stop_code = sig->Str("name");
      Note(h.cursor, h.plan.spec.id, "bugcheck", text);
      break;
    case K::kLoaded:
    case K::kFetched:
    case K::kQuarantined:
    case K::kHeartbeat:
    case K::kRejected:
      OnSensorLine(h, *sig, text);
      break;
    case K::kPhase:
    case K::kCommand:
      OnConsoleLine(h, *sig, text);
      break;
    case K::kRepair:
    case K::kBootFailed:
      OnBootLine(h, *sig, text);
      break;
    case K::kIpcOk:
      break;
  }
}

// What the sensor says about content: loaded from disk, fetched, still alive, rejected.
void Run::OnSensorLine(HostRun& h, const GuestSignal& s, const std::string& text) {
  using K = GuestSignal::Kind;
  const uint32_t fault_version = o_.fault.version;
  switch (s.kind) {
    case K::kLoaded:
      if (s.Int("version") == fault_version && !h.exposed) {
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
      if (h.phase == Phase::kBooting && s.Int("ms") > 0)
        h.race_fetch_ms.push_back(static_cast<int>(s.Int("ms")));
      h.cursor = std::max(h.cursor, at);
      if (h.phase == Phase::kRunning) h.fetched_at = h.cursor;
      h.fetched_version = std::max<long long>(h.fetched_version, s.Int("version"));
      Note(h.cursor, h.plan.spec.id, "fetched", text);
      if (s.Int("version") == fault_version && !h.exposed) {
        h.exposed = true;
        Progress(h.cursor, fmt::format("{:<14} fetched the faulty channel file (version {})",
                                       h.plan.spec.id, fault_version));
      }
      break;
    }
    case K::kQuarantined: {
      // At boot the sensor hears the cloud while its driver loads; the guest's ms= says when.
      const double at = Stamp(h.phase != Phase::kRunning ? h.phase_start + h.timing.driver_load
                                                         : std::max(h.cursor, now_));
      h.cursor = std::max(h.cursor, at);
      Note(h.cursor, h.plan.spec.id, "quarantined", text);
      Progress(h.cursor, fmt::format("{:<14} quarantined the faulty channel file (version {}, "
                                     "{} ms after the sensor started)",
                                     h.plan.spec.id, s.Int("version"), s.Int("ms")));
      break;
    }
    case K::kHeartbeat: {
      // A heartbeat comes after the IPC notification that interprets newly fetched content, so
      // one after the fetch means the host took the content and survived. (Sensors that reject the
      // content, like 7.10, report the version they still run, not the one they fetched.)
      long long seen = std::max<long long>(s.Int("version"), h.fetched_version);
      if (h.phase == Phase::kRunning && h.awaiting) {
        if (seen >= h.await_version) {
          h.awaiting = false;
        } else if (s.Str("cloud") == "unreachable") {
          // The poll failed (a lossy link): the host tries again at its next poll, so it still
          // awaits the content, one poll interval later in scenario time.
          h.await_since += h.timing.content_fetch;
        }
      }
      break;
    }
    case K::kRejected:
      Note(h.cursor, h.plan.spec.id, "rejected", text);
      if (s.Int("version") == fault_version && !h.rejected_fault) {
        h.rejected_fault = true;
        Progress(h.cursor, fmt::format("{:<14} rejected the faulty channel file ({})",
                                       h.plan.spec.id, s.Str("reason")));
      }
      if (s.Int("version") == fault_version) h.exposed = true;
      break;
    default:
      break;
  }
}

// The recovery console: reached (after a boot into it), and the result of a typed command.
void Run::OnConsoleLine(HostRun& h, const GuestSignal& s, const std::string& text) {
  using K = GuestSignal::Kind;
  const bool in_machine = R(h).InMachinePart();
  switch (s.kind) {
    case K::kPhase:
      if (s.Str("phase") == "bootmgr" && s.Str("mode") == "pxe") {
        // Network boot is a one-time boot choice: the repair reboots into Windows.
        (void)h.vm->SetBoot(BootTarget::kDisk);
      }
      if (s.Str("phase") == "console" && h.phase == Phase::kBooting) {
        h.console_env = s.Str("env");
        h.console_bitlocker = s.Str("bitlocker");
        h.cursor = std::max(h.cursor, Stamp(h.phase_start + h.timing.boot));
        h.phase = Phase::kConsole;
        Note(h.cursor, h.plan.spec.id, "console", text);
        if (in_machine) {
          const auto& step = model_.CurrentStep(h.index);
          bool expected =
              step.kind == config::StepKind::kBoot && step.into != config::BootTarget::kPxe;
          Settle(h, h.cursor, expected ? Outcome::kOk : Outcome::kFailed,
                 expected ? "" : "stopped at a recovery console (" + h.console_env + ")");
        }
      }
      break;
    case K::kCommand:
      if (h.phase == Phase::kCommand && s.Str("cmd") == h.expect_cmd) {
        h.cursor = std::max(h.cursor, Stamp(h.command_at + kConsoleCommand));
        h.phase = Phase::kConsole;
        h.expect_cmd.clear();
        Note(h.cursor, h.plan.spec.id, "command", text);
        if (s.Str("cmd") == "unlock" && s.Int("rc") == 0) h.console_bitlocker = "unlocked";
        bool ok = s.Int("rc") == 0;
        if (in_machine) Settle(h, h.cursor, ok ? Outcome::kOk : Outcome::kFailed, ok ? "" : text);
      } else if (o_.manual && h.expect_cmd.empty()) {
        // Someone typed it: journal what the console answered (the debrief reads mistakes here).
        h.cursor = std::max(h.cursor, Stamp(h.cursor));
        Note(h.cursor, h.plan.spec.id, "command", text);
        if (s.Str("cmd") == "unlock" && s.Int("rc") == 0) h.console_bitlocker = "unlocked";
      }
      break;
    default:
      break;
  }
}

// A boot that ended elsewhere than Windows or a console: the PXE repair image's result, a failure.
void Run::OnBootLine(HostRun& h, const GuestSignal& s, const std::string& text) {
  using K = GuestSignal::Kind;
  const bool in_machine = R(h).InMachinePart();
  switch (s.kind) {
    case K::kRepair:
      if (h.phase == Phase::kBooting) {
        h.cursor = std::max(h.cursor, Stamp(h.phase_start + h.timing.boot + kPxeRepair));
        Note(h.cursor, h.plan.spec.id, "repair", text);
        bool ok = s.Str("result") == "ok";
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
          Settle(h, h.cursor, ok ? Outcome::kOk : Outcome::kFailed,
                 ok ? "" : "PXE repair failed: " + s.Str("reason"));
      }
      break;
    case K::kBootFailed:
      if (h.phase == Phase::kBooting) {
        h.cursor = std::max(h.cursor, Stamp(h.phase_start + h.timing.boot));
        h.phase = Phase::kConsole;
        if (in_machine) Settle(h, h.cursor, Outcome::kFailed, "boot failed: " + s.Str("reason"));
      }
      break;
    default:
      break;
  }
}

// A line from the rescue VM of a rescue-disk step whose machine part is under way.
void Run::OnRescueConsole(HostRun& h, const GuestSignal& sig, const std::string& line) {
  using K = GuestSignal::Kind;
  if (sig.kind == K::kPhase && sig.Str("phase") == "console" && h.phase == Phase::kBooting) {
    h.console_env = sig.Str("env");
    h.console_bitlocker = sig.Str("bitlocker");
    h.cursor = std::max(h.cursor, Stamp(h.phase_start + rescue_boot_));
    h.phase = Phase::kConsole;
    Note(h.cursor, h.plan.spec.id, "rescue-console", line.substr(line.find("@@")));
    Proceed(h, h.cursor);
  } else if (sig.kind == K::kCommand && h.phase == Phase::kCommand &&
             sig.Str("cmd") == h.expect_cmd) {
    h.cursor = std::max(h.cursor, Stamp(h.command_at + kConsoleCommand));
    h.phase = Phase::kConsole;
    h.expect_cmd.clear();
    Note(h.cursor, h.plan.spec.id, "rescue-command", line.substr(line.find("@@")));
    if (sig.Int("rc") == 0)
      Proceed(h, h.cursor);
    else
      Settle(h, h.cursor, Outcome::kFailed, "rescue console: " + line.substr(line.find("@@")));
  } else if (sig.kind == K::kBootFailed) {
    Settle(h, h.cursor, Outcome::kFailed, "rescue VM: " + line.substr(line.find("@@")));
  }
}

void Run::OnReady(HostRun& h, double at) {
  h.cursor = std::max(h.cursor, at);
  h.phase = Phase::kRunning;
  h.awaiting = false;
  h.fetched_at.reset();
  model_.Healthy(h.index, h.cursor);
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
  std::string why = h.stop_code.empty() ? "guest panicked" : h.stop_code;
  Note(h.crash_at, h.plan.spec.id, "crash", why);
  const recovery::HostRecord& r = R(h);
  if (r.state == HostState::kRemediating && r.InMachinePart()) {
    const auto& step = model_.CurrentStep(h.index);
    if (step.kind == config::StepKind::kReboot && r.step_reboots < step.times) {
      Progress(h.crash_at, fmt::format("{:<14} crashed again (reboot {} of {})", h.plan.spec.id,
                                       r.step_reboots, step.times));
    }
  }
  model_.Crashed(h.index, h.crash_at, was_running, why);
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
  if (model_.ShouldPark(h.index)) {
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
  model_.Rebooting(h.index, at);
}

bool Run::LostIfGone(HostRun& h, const Status& s, double at, const std::string& what) {
  if (s.code() != ErrorCode::kUnavailable) return false;
  Lose(h, at, what + ": " + s.ToString());
  return true;
}

}  // namespace chaoslab::engine_internal
