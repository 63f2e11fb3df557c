// Run: the VM driver's part of the runbook: the machine part of each step on a real guest.
#include <fmt/format.h>

#include <algorithm>
#include <string>

#include "lab/engine/run.h"

namespace chaoslab::engine_internal {

namespace {

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

std::vector<std::string> Run::HealthGroups(const EngineOptions& o) {
  std::vector<std::string> names;
  for (const auto& g : o.scenario->setup.groups) names.push_back(g.name);
  for (const auto& h : o.hosts)
    if (std::find(names.begin(), names.end(), h.spec.group) == names.end())
      names.push_back(h.spec.group);
  return names;
}

recovery::Profile Run::ProfileOf(const HostPlan& plan) const {
  recovery::Profile p;
  const auto& sites = sc_.setup.sites;
  for (size_t s = 0; s < sites.size(); ++s)
    if (sites[s].name == plan.site) p.site = static_cast<int>(s);
  if (p.site < 0 && !sites.empty()) p.site = 0;
  p.group = model_.GroupIndex(plan.spec.group);
  auto rank = o_.priority.find(plan.spec.group);
  if (rank != o_.priority.end()) p.rank = rank->second;
  p.bitlocker = plan.bitlocker;
  p.oob_console = plan.oob_console;
  p.watched = true;  // guests report ahead of the agenda: every health change goes through it
  // The facts a step's conditions test, as the host's plan has them.
  config::GroupConfig traits;
  traits.name = plan.spec.group;
  traits.role = plan.role;
  traits.site = plan.site;
  traits.bitlocker = plan.bitlocker;
  traits.oob_console = plan.oob_console;
  traits.cloud = plan.cloud;
  traits.on_hypervisor = plan.on_hypervisor;
  recovery::AssignSteps(runbook(), traits, &p);
  return p;
}

double Run::HumanSeconds(uint32_t i, const config::StepConfig& step, bool new_visit) {
  HostRun& h = hosts_[i];
  const recovery::Profile& p = model_.profile(i);
  const config::SiteConfig* site =
      p.site >= 0 ? &sc_.setup.sites[static_cast<size_t>(p.site)] : nullptr;
  return recovery::HumanPart(step, site, new_visit, h.plan.bitlocker, sc_.setup.key_escrow, h.rng);
}

double Run::DecisionSeconds(uint32_t i, const config::Distribution& after) {
  return after.Sample(hosts_[i].rng);
}

// Failed or lost: the machine is kept for inspection with its CPU stopped.
void Run::StopMachine(uint32_t i) {
  HostRun& h = hosts_[i];
  if (h.phase != Phase::kDone && h.phase != Phase::kOff) (void)h.vm->Pause();
  if (h.rescue_running) {
    (void)h.rescue->PowerOff();
    h.rescue_running = false;
  }
  h.phase = Phase::kDone;
  h.awaiting = false;
}

void Run::TypeCommand(HostRun& h, const std::string& cmd, const std::string& text, double at,
                      bool on_rescue) {
  Host* target = on_rescue ? h.rescue : h.vm;
  Status s = target ? target->SendConsole(text) : Status::FailedPrecondition("no machine");
  if (!s.ok()) {
    // A rescue VM that is gone fails the step; the host itself is still there.
    if (on_rescue || !LostIfGone(h, s, at, "console"))
      Settle(h, at, Outcome::kFailed, "console: " + s.ToString());
    return;
  }
  h.expect_cmd = cmd;
  h.phase = Phase::kCommand;
  h.command_at = at;
  h.last_heard = Now();
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
      Settle(h, at, Outcome::kFailed, "could not boot: " + s.ToString());
    return;
  }
  h.phase = Phase::kBooting;
  h.phase_start = at;
  h.cursor = std::max(h.cursor, at);
  h.console_env.clear();
  h.console_bitlocker.clear();
  h.image_repaired = false;
  h.expect_guest_reset = false;
  h.last_heard = Now();
}

void Run::StartMachine(uint32_t i, const config::StepConfig& step, double at) {
  using SK = config::StepKind;
  HostRun& h = hosts_[i];
  h.cursor = std::max(h.cursor, at);
  Note(at, h.plan.spec.id, "step", StepLabel(step));
  Progress(at, fmt::format("{:<14} {}", h.plan.spec.id, StepLabel(step)));
  switch (step.kind) {
    case SK::kReboot:
      StartReboot(h, at);
      return;
    case SK::kBoot:
      if (step.into == config::BootTarget::kUsb && o_.usb_media.empty()) {
        Settle(h, at, Outcome::kFailed, "no USB recovery media image");
        return;
      }
      BootInto(h, ToBootTarget(step.into), at);
      return;
    case SK::kUnlockBitlocker:
    case SK::kDelete:
      if (h.image_repaired) {
        Settle(h, at, Outcome::kOk);  // the repair image did it
      } else if (h.phase != Phase::kConsole) {
        Settle(h, at, Outcome::kFailed, "not at a recovery console");
      } else if (step.kind == SK::kDelete) {
        TypeDelete(h, step, at, false);
      } else if (h.console_bitlocker != "locked") {
        Settle(h, at, Outcome::kOk);  // nothing to unlock
      } else {
        TypeUnlock(h, at, false);
      }
      return;
    case SK::kRestart:
      StartRestart(h, at);
      return;
    case SK::kRescueDisk:
    case SK::kHypervisorRepair:  // the same rescue VM: the lab is the organisation's hypervisor
    case SK::kRevertSnapshot:
    case SK::kReimage:
      ContinueMachine(i, step, at);
      return;
  }
}

void Run::StartReboot(HostRun& h, double at) {
  if (h.phase == Phase::kParked) {
    Status s = h.vm->Resume();
    if (!s.ok()) {
      Lose(h, at, "could not resume: " + s.ToString());
      return;
    }
    h.phase = Phase::kBooting;
    h.phase_start = std::max(at, h.parked_at);
    model_.CountReboot(h.index);
    h.last_heard = Now();
  } else if (h.phase == Phase::kRunning) {
    Settle(h, at, Outcome::kHealthy);
  } else if (h.phase == Phase::kConsole || h.phase == Phase::kOff) {
    BootInto(h, BootTarget::kDisk, at);
    model_.CountReboot(h.index);
  }
  // Booting or in a crash dump: it reboots by itself; OnReset counts it.
}

void Run::StartRestart(HostRun& h, double at) {
  if (h.phase == Phase::kRunning) {
    Settle(h, at, Outcome::kHealthy);
  } else if (h.phase == Phase::kConsole) {
    Status s = h.vm->SetBoot(BootTarget::kDisk);
    if (s.ok()) s = h.vm->SendConsole("restart\n");
    if (!s.ok()) {
      if (!LostIfGone(h, s, at, "restart"))
        Settle(h, at, Outcome::kFailed, "restart: " + s.ToString());
      return;
    }
    h.expect_guest_reset = true;
    // The guest resets itself; that reset is accounted here, not when QEMU reports it.
    h.phase = Phase::kBooting;
    h.phase_start = at + kConsoleCommand;
    h.last_heard = Now();
  } else if (h.phase == Phase::kParked || h.phase == Phase::kOff) {
    BootInto(h, BootTarget::kDisk, at);
  }
  // Booting already (e.g. after a PXE repair): wait for healthy or a crash.
}

// Fetches the host's recovery password from the escrow and types it (on the rescue VM's console
// when the disk is attached there).
void Run::TypeUnlock(HostRun& h, double at, bool on_rescue) {
  if (!o_.escrow) {
    Settle(h, at, Outcome::kFailed, "no key escrow in this lab");
    return;
  }
  Result<std::string> key = o_.escrow->FetchKey(h.plan.spec.id);
  if (!key.ok()) {
    Settle(h, at, Outcome::kFailed, "key escrow: " + key.status().ToString());
    return;
  }
  h.keys_fetched++;
  Note(at, h.plan.spec.id, "key-fetched", "recovery password from the key escrow");
  TypeCommand(h, "unlock", "manage-bde -unlock C: -RecoveryPassword " + *key + "\n", at, on_rescue);
}

void Run::TypeDelete(HostRun& h, const config::StepConfig& step, double at, bool on_rescue) {
  TypeCommand(h, "del", "del 'C:\\Windows\\System32\\drivers\\CrowdStrike\\" + step.pattern + "'\n",
              at, on_rescue);
}

// The later actions of a step, one per agenda visit (rescue-disk has several).
void Run::ContinueMachine(uint32_t i, const config::StepConfig& step, double at) {
  HostRun& h = hosts_[i];
  if (step.kind == config::StepKind::kRevertSnapshot || step.kind == config::StepKind::kReimage) {
    ReplaceDisk(h, step, at);
    return;
  }
  recovery::HostRecord& r = model_.host(i);
  // rescue-disk and hypervisor-repair: 0 power off and boot the rescue VM, 1 unlock if needed,
  // 2 delete, 3 back home.
  switch (r.sub) {
    case 0:
      if (TurnOff(h, at)) BootRescueVm(h, at);
      return;  // the rescue console line proceeds to 1
    case 1:
      if (h.console_bitlocker == "locked") {
        TypeUnlock(h, at, true);
        return;
      }
      r.sub = 2;  // nothing to unlock
      [[fallthrough]];
    case 2:
      TypeDelete(h, step, at, true);
      return;
    case 3:
      if (h.rescue_running) {
        if (!PowerOff(h, h.rescue, at)) return;
        h.rescue_running = false;
      }
      model_.DiskRepaired(i, at);
      h.phase = Phase::kOff;
      StartNormally(h, at);
      return;
    default:
      return;
  }
}

// revert-snapshot or reimage: power off, the disk action, start; what data it cost.
void Run::ReplaceDisk(HostRun& h, const config::StepConfig& step, double at) {
  const bool revert = step.kind == config::StepKind::kRevertSnapshot;
  if (revert && !sc_.setup.snapshots.enabled) {
    Settle(h, at, Outcome::kFailed, "the setup keeps no snapshots");
    return;
  }
  if (!TurnOff(h, at)) return;
  Status s = revert ? h.vm->RevertDisk() : h.vm->ReimageDisk();
  if (!s.ok()) {
    Settle(h, at, Outcome::kFailed, s.ToString());
    return;
  }
  if (!revert) {
    h.data_lost = "all";
    h.data_lost_s = 0;
  } else {
    double snapshot = sc_.setup.snapshots.taken_at;
    while (snapshot > sc_.rollout.release) snapshot -= 86400;
    const double first_crash = R(h).first_crash;
    h.data_lost = "since-snapshot";
    h.data_lost_s = std::max(0.0, (first_crash >= 0 ? first_crash : at) - snapshot);
  }
  Note(at, h.plan.spec.id, "data-lost",
       h.data_lost == "all" ? "all local data (reimaged)"
                            : fmt::format("{:.0f} s of work since the snapshot", h.data_lost_s));
  StartNormally(h, at);
}

// A rescue VM with the host's system disk attached, booted into its recovery console.
void Run::BootRescueVm(HostRun& h, double at) {
  if (!h.rescue) {
    HostSpec spec = o_.rescue_template;
    if (spec.kernel.empty() || spec.base_disk.empty()) {
      Settle(h, at, Outcome::kFailed, "no rescue VM image in this lab");
      return;
    }
    spec.id = h.plan.spec.id + "-rescue";
    spec.group = "rescue";
    spec.kernel_args.push_back("winsim.host=" + spec.id);
    spec.network.online = false;
    spec.extra_disks = {h.vm->SystemDisk()};
    Result<Host*> vm = o_.backend->CreateHost(spec);
    if (!vm.ok()) {
      Settle(h, at, Outcome::kFailed, "rescue VM: " + vm.status().ToString());
      return;
    }
    h.rescue = *vm;
    by_rescue_id_[spec.id] = h.index;
  }
  Status s = h.rescue->SetBoot(BootTarget::kRescue);
  if (s.ok()) s = h.rescue->Start();
  if (!s.ok()) {
    Settle(h, at, Outcome::kFailed, "rescue VM: " + s.ToString());
    return;
  }
  h.rescue_running = true;
  h.phase = Phase::kBooting;  // the rescue VM's boot, reported on the host's account
  h.phase_start = at;
  h.console_env.clear();
  h.console_bitlocker.clear();
  h.last_heard = Now();
}

bool Run::PowerOff(HostRun& h, Host* vm, double at) {
  Status s = vm->PowerOff();
  if (!s.ok()) {
    Settle(h, at, Outcome::kFailed, "power off: " + s.ToString());
    return false;
  }
  return true;
}

bool Run::TurnOff(HostRun& h, double at) {
  if (h.phase == Phase::kOff) return true;
  if (!PowerOff(h, h.vm, at)) return false;
  h.ignore_shutdowns++;
  h.phase = Phase::kOff;
  return true;
}

void Run::StartNormally(HostRun& h, double at) {
  Status s = h.vm->SetBoot(BootTarget::kDisk);
  if (s.ok()) s = h.vm->Start();
  if (!s.ok()) {
    Settle(h, at, Outcome::kFailed, "start: " + s.ToString());
    return;
  }
  h.phase = Phase::kBooting;
  h.phase_start = at;
  h.cursor = std::max(h.cursor, at);
  h.last_heard = Now();
}

}  // namespace chaoslab::engine_internal
