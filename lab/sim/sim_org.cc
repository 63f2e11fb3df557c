// One organisation's event loop, the rollout's events (release, revert) and the host machine's.
#include <fmt/format.h>

#include <algorithm>
#include <string>

#include "lab/sim/sim_internal.h"

namespace chaoslab::sim::internal {

void OrgSim::NormalBoot(Host& h, double at) {
  h.mtoken++;
  h.phase = kBooting;
  h.boot = kNormal;
  h.phase_start = at;
  const auto& t = G(h).timing;
  // The driver-load moment matters only when the disk holds the bad file or the cloud may offer
  // it by then; otherwise the boot ends healthy and one event suffices.
  bool check = h.disk_bad;
  if (!check && !reverted_ && G(h).online && !G(h).pinned && !halted_) {
    double release = ring_release_at_[h.ring];
    check = release <= at + t.driver_load;
  }
  if (check) {
    Push(at + t.driver_load, Ev::kBootCheck, h, h.mtoken);
  } else {
    Push(at + t.boot, Ev::kReady, h, h.mtoken);
  }
}

void OrgSim::BootInto(Host& h, Boot target, double at) {
  h.locked = false;
  h.at_console = false;
  h.image_repaired = false;
  if (target == kNormal) {
    NormalBoot(h, at);
    return;
  }
  h.mtoken++;
  h.phase = kBooting;
  h.boot = target;
  h.phase_start = at;
  if (target == kPxe) {
    Push(at + G(h).timing.boot + kPxeRepair, Ev::kPxeDone, h, h.mtoken);
  } else if (target == kRescue) {
    Push(at + rescue_boot_, Ev::kConsoleUp, h, h.mtoken);
  } else {
    Push(at + G(h).timing.boot, Ev::kConsoleUp, h, h.mtoken);
  }
}

// Boot-start drivers load: the sensor reads its cached content and fetches the newest; a bad file
// is read at the first IPC notification unless the reverted one arrived first (the race).
void OrgSim::BootCheck(Host& h, double at) {
  const GroupPlan& g = G(h);
  enum { kNothing, kFault, kGood } offered = kNothing;
  if (g.online) {
    if (SeesFault(h)) {
      offered = kFault;
    } else if (reverted_ && !g.pinned) {
      offered = kGood;
    }
  }
  // The vendor's cloud remediation: the quarantine comes with the manifest, its own race.
  const bool quarantine =
      g.online && recovery::RemediationOffered(sc_.vendor_remediation, h.remediation_opted_in, at);
  bool crash = false;
  if (h.disk_bad) {
    h.exposed = true;  // loaded the faulty content from disk
    if (g.crashes_on_fault) {
      if (quarantine ? Unit(&h.rng) < g.remediation_p
                     : offered == kGood && Unit(&h.rng) < g.race_p) {
        h.disk_bad = false;  // the quarantine or the reverted file won the race
      } else {
        crash = true;
      }
    }
  } else if (offered == kFault) {
    h.exposed = true;
    h.disk_bad = true;
    crash = g.crashes_on_fault;
  }
  if (crash) {
    OnCrash(h, at);
  } else {
    Push(h.phase_start + g.timing.boot, Ev::kReady, h, h.mtoken);
  }
}

void OrgSim::OnReady(Host& h, double at) {
  h.phase = kRunning;
  // Content published while it booted: it hears of it at its next poll (drawn before the
  // runbook's next human part, which the model may draw at once).
  if (G(h).online && SeesFault(h)) {
    h.exposed = true;
    if (G(h).crashes_on_fault) {
      Push(at + FetchDelay(h) + kIpcAfterLoad, Ev::kRunCrash, h, h.mtoken);
    } else {
      h.disk_bad = true;
    }
  }
  model_.Healthy(Index(h), at);
}

void OrgSim::OnCrash(Host& h, double at) {
  const bool was_running = h.phase == kRunning;
  h.crash_at = at;
  h.phase = kCrashDump;
  if (!h.counted_crash) {
    h.counted_crash = true;
    if (h.ring < ring_crashed_.size()) ring_crashed_[h.ring]++;
  }
  model_.Crashed(Index(h), at, was_running, "PAGE_FAULT_IN_NONPAGED_AREA");
  Push(at + G(h).timing.crash_dump, Ev::kReset, h, h.mtoken);
}

void OrgSim::OnReset(Host& h, double at) {
  h.phase_start = at;
  if (model_.ShouldPark(Index(h))) {
    h.phase = kParked;
    h.parked_at = at;
    return;
  }
  model_.Rebooting(Index(h), at);
  NormalBoot(h, at);
}

void OrgSim::OnConsole(Host& h, double at) {
  const uint32_t i = Index(h);
  const bool in_machine = R(h).InMachinePart();
  h.phase = kConsole;
  h.at_console = true;
  // Every recovery environment changes the boot configuration, so the TPM keeps the volume key:
  // an encrypted volume asks for its recovery password.
  h.locked = G(h).g->bitlocker;
  if (h.boot == kRescue) {
    if (in_machine) model_.Proceed(i, at);
    return;
  }
  if (in_machine) {
    const auto& step = model_.CurrentStep(i);
    const bool expected = step.kind == StepKind::kBoot && step.into != config::BootTarget::kPxe;
    if (expected && Succeeds(h, StepKind::kBoot)) {
      SettleNow(h, at, Outcome::kOk);
    } else {
      SettleNow(h, at, Outcome::kFailed,
                expected ? "boot failed" : "stopped at a recovery console");
    }
  }
}

void OrgSim::OnPxeDone(Host& h, double at) {
  const bool in_machine = R(h).InMachinePart();
  // The repair image fetches the recovery password from the escrow itself.
  const bool ok = !G(h).g->bitlocker || model_.escrow_up();
  if (ok) {
    h.disk_bad = false;
    if (G(h).g->bitlocker) h.keys++;
    NormalBoot(h, at);  // it reboots into Windows by itself
    h.image_repaired = true;
    if (in_machine) Settle(h, at, Outcome::kOk);
  } else {
    h.phase = kConsole;
    h.at_console = true;
    h.locked = true;
    if (in_machine) Settle(h, at, Outcome::kFailed, "PXE repair failed: key escrow unavailable");
  }
}

void OrgSim::OnCommandDone(Host& h, double at) {
  const uint32_t i = Index(h);
  const bool in_machine = R(h).InMachinePart();
  h.phase = kConsole;
  const Cmd cmd = h.cmd;
  h.cmd = kNoCmd;
  switch (cmd) {
    case kUnlock:
      h.locked = false;
      if (in_machine) SettleNow(h, at, Outcome::kOk);
      return;
    case kDel:
      if (h.locked || !Succeeds(h, StepKind::kDelete)) {
        if (in_machine) SettleNow(h, at, Outcome::kFailed, "del rc=1");
        return;
      }
      h.disk_bad = false;
      if (in_machine) SettleNow(h, at, Outcome::kOk);
      return;
    case kRescueUnlock:
      h.locked = false;
      if (in_machine) model_.Proceed(i, at);
      return;
    case kRescueDel:
      h.disk_bad = false;
      if (in_machine) model_.Proceed(i, at);
      return;
    case kNoCmd:
      return;
  }
}

void OrgSim::ReleaseRing(double at, int ring) {
  if (reverted_ || halted_) return;
  const auto& rings = sc_.rollout.rings;
  const bool staged = sc_.rollout.policy == config::RolloutPolicy::kRings && !rings.empty();
  if (staged && ring > 0 && sc_.rollout.gate.enabled) {
    int64_t n = 0, crashed = 0;
    for (int r = 0; r < ring; ++r) {
      n += ring_hosts_[r];
      crashed += ring_crashed_[r];
    }
    const double rate = n ? static_cast<double>(crashed) / static_cast<double>(n) : 0;
    if (rate > sc_.rollout.gate.max_crash_rate) {
      halted_ = true;
      return;
    }
  }
  ring_released_[ring] = true;
  for (auto& h : hosts_) {
    if (h.phase == kRunning && h.ring == ring && G(h).online && SeesFault(h)) {
      h.exposed = true;
      if (G(h).crashes_on_fault) {
        Push(at + FetchDelay(h) + kIpcAfterLoad, Ev::kRunCrash, h, h.mtoken);
      } else {
        h.disk_bad = true;
      }
    }
  }
}

void OrgSim::Revert(double at) {
  reverted_ = true;
  model_.ActivateCrashed(at);
}

void OrgSim::Run(bool per_host, Aggregator* agg, OrgOut* out) {
  SetUpResources();
  const size_t ring_count = PlaceHosts();

  const double start = sc_.rollout.start;
  const double deadline = start + sc_.stop.max_scenario;
  now_ = start;
  for (size_t r = 0; r < ring_count; ++r)
    q_.Push(ring_release_at_[r], Ev{static_cast<uint32_t>(r), 0, Ev::kRelease});
  q_.Push(sc_.rollout.revert, Ev{0, 0, Ev::kRevert});
  q_.Push(deadline, Ev{0, 0, Ev::kDeadline});
  for (auto& h : hosts_) {
    model_.Move(Index(h), HostState::kBooting, start);
    NormalBoot(h, start);
  }

  std::string ending;
  uint64_t events = 0;
  while (ending.empty()) {
    if (q_.next_time() >= deadline) {
      // Quiet until the deadline: settled, unless work was still planned past it; hosts waiting
      // for what never comes wait until the deadline (what they cost), as in the engine.
      const bool more = q_.size() > 1;
      ending = more ? "deadline" : "finished";
      if (more || model_.AnyStalled()) now_ = std::max(now_, deadline);
      break;
    }
    auto e = q_.Pop();
    ++events;
    Dispatch(e, &ending);
  }
  out->events = events;
  out->ending = ending;
  out->end_s = now_;

  out->services = model_.ServiceFigures(sc_.rollout.release, now_);
  if (per_host) out->hosts.reserve(hosts_.size());
  for (size_t i = 0; i < hosts_.size(); ++i) Figures(hosts_[i], i, per_host, agg, out);
}

// What the machines need before the first event (the resources are the model's).
void OrgSim::SetUpResources() {
  auto cloud = sc_.image.timing.find(config::Role::kCloudVm);
  if (cloud != sc_.image.timing.end()) rescue_boot_ = cloud->second.boot;
}

// Puts every host in its group and ring; returns the number of rings.
size_t OrgSim::PlaceHosts() {
  // Rings: a host's ring comes from its own stream (the engine shuffles the fleet; the shares
  // are the same). Pinned hosts are in no ring.
  const auto& rings = sc_.rollout.rings;
  const bool staged = sc_.rollout.policy == config::RolloutPolicy::kRings && !rings.empty();
  const size_t ring_count = staged ? rings.size() : 1;
  ring_released_.assign(ring_count, false);
  ring_hosts_.assign(ring_count, 0);
  ring_crashed_.assign(ring_count, 0);
  ring_release_at_.assign(ring_count, sc_.rollout.release);
  if (staged)
    for (size_t r = 0; r < ring_count; ++r)
      ring_release_at_[r] = sc_.rollout.release + rings[r].after;

  hosts_.resize(static_cast<size_t>(plan_.hosts));
  model_.Reserve(hosts_.size());
  {
    size_t i = 0;
    for (size_t g = 0; g < (*plan_.groups).size(); ++g) {
      for (int k = 0; k < (*plan_.groups)[g].g->count; ++k, ++i) {
        Host& h = hosts_[i];
        h.group = static_cast<uint16_t>(g);
        model_.AddHost(static_cast<uint16_t>(g));
        h.rng = Mix64(plan_.seed ^ Mix64(i + 1));
        h.remediation_opted_in = recovery::RemediationOptedIn(sc_.vendor_remediation, plan_.seed, i,
                                                              (*plan_.groups)[g].g->name);
        if ((*plan_.groups)[g].pinned) {
          h.ring = 255;
        } else if (staged) {
          const double u = Unit(&h.rng) * 100.0;
          double cumulative = 0;
          h.ring = static_cast<uint8_t>(ring_count - 1);
          for (size_t r = 0; r < ring_count; ++r) {
            cumulative += rings[r].percent;
            if (u < cumulative) {
              h.ring = static_cast<uint8_t>(r);
              break;
            }
          }
        }
        if (h.ring < ring_count) ring_hosts_[h.ring]++;
      }
    }
  }
  return ring_count;
}

// One event of the agenda: what it is for, if it is still current (tokens).
void OrgSim::Dispatch(const CalendarQueue<Ev>::Entry& e, std::string* ending) {
  const double at = e.time;
  now_ = std::max(now_, at);
  const Ev::Kind k = e.payload.kind;
  // Events of a host (the others name a site, a service or nothing).
  Host* h =
      k >= Ev::kContinue && k != Ev::kWake && k != Ev::kShift && k != Ev::kBacklog && k != Ev::kTool
          ? &hosts_[e.payload.host]
          : nullptr;
  switch (e.payload.kind) {
    case Ev::kRelease:
      ReleaseRing(at, static_cast<int>(e.payload.host));
      break;
    case Ev::kRevert:
      Revert(at);
      break;
    case Ev::kDeadline:
      *ending = "deadline";
      break;
    case Ev::kContinue:
      model_.Handle(at, {recovery::Signal::kContinue, e.payload.host, e.payload.token});
      break;
    case Ev::kHealthUp:
      model_.Handle(at, {recovery::Signal::kHealthUp, e.payload.host, 0});
      break;
    case Ev::kHealthDown:
      model_.Handle(at, {recovery::Signal::kHealthDown, e.payload.host, 0});
      break;
    case Ev::kWake:
      model_.Handle(at, {recovery::Signal::kWake, 0, 0});
      break;
    case Ev::kTool:
      model_.Handle(at, {recovery::Signal::kTool, 0, 0});
      break;
    case Ev::kShift:
      model_.Handle(at, {recovery::Signal::kShift, e.payload.host, 0});
      break;
    case Ev::kActivate:
      model_.Handle(at, {recovery::Signal::kActivate, e.payload.host, 0});
      break;
    case Ev::kBacklog:
      model_.Handle(at, {recovery::Signal::kBacklog, e.payload.host, e.payload.token});
      break;
    case Ev::kBootCheck:
      if (e.payload.token == h->mtoken && h->phase == kBooting) BootCheck(*h, at);
      break;
    case Ev::kReady:
      if (e.payload.token == h->mtoken && h->phase == kBooting) OnReady(*h, at);
      break;
    case Ev::kRunCrash:
      if (e.payload.token == h->mtoken && h->phase == kRunning && SeesFault(*h)) {
        h->disk_bad = true;
        OnCrash(*h, at);
      }
      break;
    case Ev::kReset:
      if (e.payload.token == h->mtoken && h->phase == kCrashDump) OnReset(*h, at);
      break;
    case Ev::kConsoleUp:
      if (e.payload.token == h->mtoken && h->phase == kBooting) OnConsole(*h, at);
      break;
    case Ev::kPxeDone:
      if (e.payload.token == h->mtoken && h->phase == kBooting) OnPxeDone(*h, at);
      break;
    case Ev::kCommandDone:
      if (e.payload.token == h->mtoken && h->phase == kCommand) OnCommandDone(*h, at);
      break;
  }
}

}  // namespace chaoslab::sim::internal
