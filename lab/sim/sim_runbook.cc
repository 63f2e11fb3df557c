// The draw driver's part of the runbook: the machine part of each step, and the model's agenda.
#include <algorithm>
#include <string>

#include "lab/sim/sim_internal.h"

namespace chaoslab::sim::internal {

void OrgSim::Schedule(double at, const recovery::Signal& s) {
  using S = recovery::Signal;
  Ev::Kind kind = Ev::kWake;
  switch (s.kind) {
    case S::kContinue:
      kind = Ev::kContinue;
      break;
    case S::kWake:
      kind = Ev::kWake;
      break;
    case S::kShift:
      kind = Ev::kShift;
      break;
    case S::kActivate:
      kind = Ev::kActivate;
      break;
    case S::kHealthUp:
      kind = Ev::kHealthUp;
      break;
    case S::kHealthDown:
      kind = Ev::kHealthDown;
      break;
    case S::kBacklog:
      kind = Ev::kBacklog;
      break;
    case S::kTool:
      kind = Ev::kTool;
      break;
  }
  q_.Push(at, Ev{s.host, s.token, kind});
}

double OrgSim::HumanSeconds(uint32_t i, const config::StepConfig& step, bool new_visit) {
  Host& h = hosts_[i];
  const recovery::Profile& p = model_.profile(i);
  HostRng rng{&h.rng};
  return recovery::HumanPart(step,
                             p.site >= 0 ? &setup().sites[static_cast<size_t>(p.site)] : nullptr,
                             new_visit, p.bitlocker, setup().key_escrow, rng);
}

double OrgSim::DecisionSeconds(uint32_t i, const config::Distribution& after) {
  HostRng rng{&hosts_[i].rng};
  return after.Sample(rng);
}

// The machine is paused for inspection: nothing more from it.
void OrgSim::StopMachine(uint32_t i) {
  Host& h = hosts_[i];
  h.mtoken++;
  h.phase = kDone;
}

void OrgSim::StartMachine(uint32_t i, const config::StepConfig& step, double at) {
  Host& h = hosts_[i];
  switch (step.kind) {
    case StepKind::kReboot:
      if (h.phase == kParked) {
        model_.CountReboot(i);
        NormalBoot(h, std::max(at, h.parked_at));
      } else if (h.phase == kRunning) {
        Settle(h, at, Outcome::kHealthy);
      } else if (h.phase == kConsole || h.phase == kOff) {
        BootInto(h, kNormal, at);
        model_.CountReboot(i);
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
      if (h.image_repaired) return Settle(h, at, Outcome::kOk);
      if (h.phase != kConsole) return Settle(h, at, Outcome::kFailed, "not at a recovery console");
      if (!h.locked) return Settle(h, at, Outcome::kOk);
      if (!model_.escrow_up()) return Settle(h, at, Outcome::kFailed, "key escrow: unavailable");
      h.keys++;
      if (!Succeeds(h, StepKind::kUnlockBitlocker)) {
        return Settle(h, at + kConsoleCommand, Outcome::kFailed, "unlock rc=1");
      }
      TypeCommand(h, kUnlock, at);
      return;
    case StepKind::kDelete:
      if (h.image_repaired) return Settle(h, at, Outcome::kOk);
      if (h.phase != kConsole) return Settle(h, at, Outcome::kFailed, "not at a recovery console");
      TypeCommand(h, kDel, at);
      return;
    case StepKind::kRestart:
      if (h.phase == kRunning) {
        Settle(h, at, Outcome::kHealthy);
      } else if (h.phase == kConsole) {
        h.at_console = false;
        NormalBoot(h, at + kConsoleCommand);
      } else if (h.phase == kParked || h.phase == kOff) {
        BootInto(h, kNormal, at);
      }
      return;
    case StepKind::kRescueDisk:
    case StepKind::kHypervisorRepair:  // the same repair from a helper VM, by a script
    case StepKind::kRevertSnapshot:
    case StepKind::kReimage:
      ContinueMachine(i, step, at);
      return;
  }
}

void OrgSim::ContinueMachine(uint32_t i, const config::StepConfig& step, double at) {
  Host& h = hosts_[i];
  recovery::HostRecord& r = model_.host(i);
  if (step.kind == StepKind::kRevertSnapshot || step.kind == StepKind::kReimage) {
    if (step.kind == StepKind::kRevertSnapshot && !setup().snapshots.enabled) {
      return Settle(h, at, Outcome::kFailed, "the setup keeps no snapshots");
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
      h.data_lost_s = std::max(0.0, (r.first_crash >= 0 ? r.first_crash : at) - snapshot);
    }
    BootInto(h, kNormal, at);
    return;
  }
  // Other steps finish by their events.
  if (step.kind != StepKind::kRescueDisk && step.kind != StepKind::kHypervisorRepair) return;
  // rescue-disk and hypervisor-repair: 0 power off and boot the rescue VM, 1 unlock if needed,
  // 2 delete, 3 back home.
  switch (r.sub) {
    case 0:
      TurnOff(h);
      BootInto(h, kRescue, at);
      return;
    case 1:
      if (h.locked) {
        if (!model_.escrow_up()) return Settle(h, at, Outcome::kFailed, "key escrow: unavailable");
        h.keys++;
        TypeCommand(h, kRescueUnlock, at);
        return;
      }
      r.sub = 2;  // nothing to unlock
      [[fallthrough]];
    case 2:
      TypeCommand(h, kRescueDel, at);
      return;
    case 3:
      model_.DiskRepaired(i, at);
      h.phase = kOff;
      BootInto(h, kNormal, at);
      return;
    default:
      return;
  }
}

}  // namespace chaoslab::sim::internal
