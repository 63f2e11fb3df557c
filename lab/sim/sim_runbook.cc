// The runbook on one host: activation, acquiring, human and machine parts of its steps, failure.
#include <algorithm>
#include <string>

#include "lab/sim/sim_internal.h"

namespace chaoslab::sim::internal {

void OrgSim::ActivateRunbook(Host& h, double at) {
  if (h.runbook_active) return;
  h.runbook_active = true;
  const HostState s = h.state;
  if (s != HostState::kCrashed && s != HostState::kBootLoop && s != HostState::kBooting) return;
  if (h.crashes == 0) return;
  Move(h, HostState::kRemediating);
  if (G(h).steps.empty()) {
    Fail(h, at, "no step of runbook " + runbook().name + " applies to this host");
    return;
  }
  h.step = 0;
  h.stage = kNone;
  h.token++;
  Continue(h, at);
}

void OrgSim::Advance(Host& h, double at) {
  now_ = std::max(now_, at);
  if (h.phase == kDone || h.stage == kFinished) return;
  const auto& steps = G(h).steps;
  while (true) {
    if (h.stage == kMachine) {
      if (h.outcome == kPending) {
        ContinueMachine(h, *steps[h.step], at);
        return;
      }
      if (h.outcome == kHealthy) {
        h.stage = kFinished;
        ReleaseAll(h, at);
        return;
      }
      h.step++;
      h.stage = kNone;
    }
    if (h.step >= steps.size()) {
      ReleaseAll(h, at);
      h.stage = kFinished;
      Fail(h, at,
           h.last_failure.empty() ? "runbook ended without recovery"
                                  : "runbook ended without recovery: " + h.last_failure);
      return;
    }
    const config::StepConfig& step = *steps[h.step];
    if (h.stage == kNone) {
      h.stage = kAcquire;
      h.waiting = true;
      h.waiting_for = kTurn;
      h.wait_since = h.queued_at = at;
      if (!TakesShared(h, step)) continue;  // nothing to queue for: acquire now
      Block(h, kTurn);
      RequestWake(at);
      return;
    }
    if (h.stage == kAcquire) {
      const bool new_visit = NeedsPerson(step) && !h.holds_tech;
      const int missing = TryAcquire(h, step, at);
      if (missing >= 0) {
        if (h.waiting_for != missing) {
          if (at > h.wait_since) h.waited[h.waiting_for] += static_cast<float>(at - h.wait_since);
          h.waiting_for = static_cast<uint8_t>(missing);
          h.wait_since = at;
        }
        Block(h, missing);
        return;
      }
      if (at > h.wait_since) h.waited[h.waiting_for] += static_cast<float>(at - h.wait_since);
      h.waiting = false;
      HostRng rng{&h.rng};
      double human = step.takes.Sample(rng);
      if (new_visit && Needs(step, Resource::kTechnician)) human += Site(h).travel.Sample(rng);
      if (Needs(step, Resource::kKeyEscrow) && G(h).g->bitlocker)
        human += setup().key_escrow.lookup.Sample(rng);
      h.stage = kHuman;
      h.token++;
      Continue(h, at + human);
      return;
    }
    if (h.stage == kHuman) {
      h.stage = kMachine;
      h.outcome = kPending;
      h.sub = 0;
      StartMachine(h, step, at);
      return;
    }
    return;
  }
}

void OrgSim::StartMachine(Host& h, const config::StepConfig& step, double at) {
  h.last_step = 1 + static_cast<uint8_t>(step.kind);
  switch (step.kind) {
    case StepKind::kReboot:
      h.step_reboots = 0;
      if (h.phase == kParked) {
        h.reboots++;
        h.step_reboots++;
        NormalBoot(h, std::max(at, h.parked_at));
      } else if (h.phase == kRunning) {
        Settle(h, at, kHealthy);
      } else if (h.phase == kConsole || h.phase == kOff) {
        BootInto(h, kNormal, at);
        h.reboots++;
        h.step_reboots++;
      }
      return;
    case StepKind::kBoot: {
      Boot target = kSafe;
      switch (step.into) {
        case config::BootTarget::kSafeMode:
          target = kSafe;
          break;
        case config::BootTarget::kWinRE:
          target = kWinRE;
          break;
        case config::BootTarget::kUsb:
          target = kUsb;
          break;
        case config::BootTarget::kPxe:
          target = kPxe;
          break;
      }
      BootInto(h, target, at);
      return;
    }
    case StepKind::kUnlockBitlocker:
      if (h.image_repaired) return Settle(h, at, kOk);
      if (h.phase != kConsole) return Settle(h, at, kFailed, "not at a recovery console");
      if (!h.locked) return Settle(h, at, kOk);
      if (!escrow_up_) return Settle(h, at, kFailed, "key escrow: unavailable");
      h.keys++;
      if (!Succeeds(h, StepKind::kUnlockBitlocker)) {
        return Settle(h, at + kConsoleCommand, kFailed, "unlock rc=1");
      }
      TypeCommand(h, kUnlock, at);
      return;
    case StepKind::kDelete:
      if (h.image_repaired) return Settle(h, at, kOk);
      if (h.phase != kConsole) return Settle(h, at, kFailed, "not at a recovery console");
      TypeCommand(h, kDel, at);
      return;
    case StepKind::kRestart:
      if (h.phase == kRunning) {
        Settle(h, at, kHealthy);
      } else if (h.phase == kConsole) {
        h.at_console = false;
        NormalBoot(h, at + kConsoleCommand);
      } else if (h.phase == kParked || h.phase == kOff) {
        BootInto(h, kNormal, at);
      }
      return;
    case StepKind::kRescueDisk:
    case StepKind::kRevertSnapshot:
    case StepKind::kReimage:
      ContinueMachine(h, step, at);
      return;
  }
}

void OrgSim::ContinueMachine(Host& h, const config::StepConfig& step, double at) {
  if (step.kind == StepKind::kRevertSnapshot || step.kind == StepKind::kReimage) {
    if (step.kind == StepKind::kRevertSnapshot && !setup().snapshots.enabled) {
      return Settle(h, at, kFailed, "the setup keeps no snapshots");
    }
    TurnOff(h);
    h.disk_bad = false;
    if (step.kind == StepKind::kReimage) {
      h.data_lost = 2;
      h.data_lost_s = 0;
    } else {
      double snapshot = setup().snapshots.taken_at;
      while (snapshot > sc_.rollout.release) snapshot -= 86400;
      h.data_lost = 1;
      h.data_lost_s = std::max(0.0, (h.first_crash >= 0 ? h.first_crash : at) - snapshot);
    }
    BootInto(h, kNormal, at);
    return;
  }
  if (step.kind != StepKind::kRescueDisk) return;  // other steps finish by their events
  // rescue-disk: 0 power off and boot the rescue VM, 1 unlock if needed, 2 delete, 3 back home.
  switch (h.sub) {
    case 0:
      TurnOff(h);
      BootInto(h, kRescue, at);
      return;
    case 1:
      if (h.locked) {
        if (!escrow_up_) return Settle(h, at, kFailed, "key escrow: unavailable");
        h.keys++;
        TypeCommand(h, kRescueUnlock, at);
        return;
      }
      h.sub = 2;
      [[fallthrough]];
    case 2:
      TypeCommand(h, kRescueDel, at);
      return;
    case 3:
      h.phase = kOff;
      BootInto(h, kNormal, at);
      return;
    default:
      return;
  }
}

void OrgSim::Fail(Host& h, double at, std::string why) {
  h.mtoken++;  // the machine is paused for inspection: nothing more from it
  h.phase = kDone;
  h.failed_why = std::move(why);
  h.stage = kFinished;
  ReleaseAll(h, at);
  Move(h, HostState::kFailed);
}

}  // namespace chaoslab::sim::internal
