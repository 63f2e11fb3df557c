// Run: the runbook interpreter, a host's steps one after the other (Advance, StartMachine).
#include <fmt/format.h>

#include <algorithm>
#include <string>

#include "lab/engine/run.h"

namespace chaoslab::engine_internal {

namespace {

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

}  // namespace

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

}  // namespace chaoslab::engine_internal
