// The model's host lifecycle and runbook interpreter: a host's steps one after the other.
#include "lab/recovery/recovery.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

namespace chaoslab::recovery {

namespace {

constexpr const char* kWaitNames[kWaitKinds] = {"its turn",
                                                "a free slot (parallelism)",
                                                "technician",
                                                "technician (off shift)",
                                                "remote-console",
                                                "usb-stick",
                                                "key-escrow",
                                                "pxe-server",
                                                "hypervisor script",
                                                "hypervisor repair slot",
                                                "tool (not yet published)"};

}  // namespace

const char* WaitName(Wait w) { return kWaitNames[static_cast<int>(w)]; }

std::string RecoveredByName(uint8_t code) {
  if (code == 0) return "";
  if (code == 1) return "itself";
  if (code == kByTrainee) return "trainee";
  return std::string(config::StepKindName(static_cast<config::StepKind>(code - 2)));
}

std::vector<const config::StepConfig*> StepsFor(const config::RunbookConfig& runbook,
                                                const config::GroupConfig& traits) {
  std::vector<const config::StepConfig*> steps;
  for (const auto& step : runbook.steps)
    if (config::ConditionsMatch(step.when, traits)) steps.push_back(&step);
  return steps;
}

void AssignSteps(const config::RunbookConfig& runbook, const config::GroupConfig& traits,
                 Profile* profile) {
  profile->steps = StepsFor(runbook, traits);
  profile->fallback_steps.clear();
  for (const auto& e : runbook.escalations)
    profile->fallback_steps.push_back(StepsFor(e.runbook, traits));
}

Model::Model(const config::SetupConfig& setup, const config::RunbookConfig& runbook,
             const std::vector<Profile>& profiles, MachineDriver* driver, ModelOptions options,
             std::vector<std::string> groups)
    : setup_(setup),
      runbook_(runbook),
      profiles_(&profiles),
      driver_(driver),
      options_(options),
      groups_(std::move(groups)) {
  if (groups_.empty())
    for (const auto& g : setup.groups) groups_.push_back(g.name);
  const size_t sites = setup.sites.size();
  technicians_busy_.assign(sites, 0);
  usb_in_use_.assign(sites, 0);
  sessions_.assign(sites, 0);
  console_techs_.assign(sites, 0);
  shift_wake_at_.assign(sites, -1);
  DrawStaffing(options.seed);
  technician_q_.resize(sites);
  usb_q_.resize(sites);
  console_q_.resize(sites);
  group_up_.assign(groups_.size(), 0);
  for (size_t g = 0; g < groups_.size(); ++g)
    if (!setup.key_escrow.hosted_on.empty() && groups_[g] == setup.key_escrow.hosted_on)
      escrow_group_ = static_cast<int>(g);
  // Nothing is up before the fleet boots: an escrow on fleet hosts waits for them too.
  escrow_up_ = escrow_group_ < 0;
  for (const auto& svc : setup.services) {
    ServiceRecord r;
    for (const auto& need : svc.needs)
      for (size_t g = 0; g < groups_.size(); ++g)
        if (groups_[g] == need.group) r.needs.push_back({static_cast<int>(g), need.at_least});
    if (svc.backlog && svc.backlog->grows > 0 && svc.backlog->works_off > 0) {
      r.grows = svc.backlog->grows;  // hours of work per hour = seconds per second
      r.works_off = svc.backlog->works_off;
      if (svc.backlog->cap > 0) r.cap = svc.backlog->cap;
      for (const auto& input : svc.backlog->inputs)
        for (size_t t = 0; t < setup.services.size(); ++t)
          if (setup.services[t].name == input) r.inputs.push_back(t);
    }
    services_.push_back(std::move(r));
  }
  // Each service after its inputs: by the longest chain of inputs ahead of it (the loader refuses
  // cycles; with one, the passes below end and the order is merely arbitrary).
  std::vector<size_t> depth(services_.size(), 0);
  for (size_t pass = 0; pass < services_.size(); ++pass)
    for (size_t s = 0; s < services_.size(); ++s)
      for (size_t input : services_[s].inputs) depth[s] = std::max(depth[s], depth[input] + 1);
  for (size_t s = 0; s < services_.size(); ++s) service_order_.push_back(s);
  std::stable_sort(service_order_.begin(), service_order_.end(),
                   [&](size_t a, size_t b) { return depth[a] < depth[b]; });
}

// Failure texts repeat (a handful of reasons per run); past 65,535 distinct ones a new text is
// kept as the last slot's, which only a run of that many different failures could reach.
uint16_t Model::Intern(const std::string& text) {
  auto it = text_ids_.find(text);
  if (it != text_ids_.end()) return it->second;
  if (texts_.size() >= 65535) {
    texts_.back() = text;
    return static_cast<uint16_t>(texts_.size() - 1);
  }
  const auto id = static_cast<uint16_t>(texts_.size());
  texts_.push_back(text);
  text_ids_.emplace(text, id);
  return id;
}

int Model::GroupIndex(const std::string& name) const {
  for (size_t g = 0; g < groups_.size(); ++g)
    if (groups_[g] == name) return static_cast<int>(g);
  return -1;
}

uint32_t Model::AddHost(uint16_t profile) {
  hosts_.emplace_back();
  hosts_.back().profile = profile;
  return static_cast<uint32_t>(hosts_.size() - 1);
}

void Model::Handle(double at, const Signal& s) {
  switch (s.kind) {
    case Signal::kContinue:
      if (s.token == hosts_[s.host].token) Advance(s.host, at);
      return;
    case Signal::kWake:
      wake_pending_ = false;
      Wake(at);
      return;
    case Signal::kShift:
      if (shift_wake_at_[s.host] == at) shift_wake_at_[s.host] = -1;
      Wake(at);
      return;
    case Signal::kTool:
      Wake(at);
      return;
    case Signal::kActivate:
      Activate(s.host, at);
      return;
    case Signal::kHealthUp:
    case Signal::kHealthDown:
      SetUp(s.host, s.kind == Signal::kHealthUp, at);
      return;
    case Signal::kBacklog: {
      ServiceRecord& r = services_[s.host];
      if (s.token != r.token) return;
      r.amount = 0;  // exactly, whatever rounding the predicted end had
      r.since = at;
      r.rate = 0;
      UpdateServices(at);
      return;
    }
  }
}

// --- Lifecycle ----------------------------------------------------------------------------------

void Model::Move(uint32_t i, HostState to, double at, const std::string& why) {
  HostRecord& h = hosts_[i];
  const HostState from = h.state;
  if (from == to) return;
  if (!IsLegalTransition(from, to)) {
    driver_->Refused(i, from, to, at);
    return;
  }
  h.state = to;
  driver_->Moved(i, from, to, at, why);
}

void Model::Crashed(uint32_t i, double at, bool was_running, std::string_view why) {
  HostRecord& h = hosts_[i];
  h.crashes++;
  h.since_healthy++;
  if (h.first_crash < 0) h.first_crash = at;
  SiteKnows(profile(i).site, at);
  if (was_running || h.up) HealthChanged(i, false, at);
  if (h.state == HostState::kRemediating) {
    if (h.InMachinePart()) {
      const auto& step = CurrentStep(i);
      if (step.kind == config::StepKind::kReboot && h.step_reboots < step.times) {
        // crashed again; the runbook reboots it (counted at its reset)
      } else if (step.kind == config::StepKind::kReboot) {
        Settle(i, at, Outcome::kFailed,
               fmt::format("still crashing after {} reboot(s)", h.step_reboots));
      } else {
        Settle(i, at, Outcome::kFailed, "crashed again (" + std::string(why) + ")");
      }
    }
  } else if (h.since_healthy >= 2) {
    h.boot_loop = true;
    Move(i, HostState::kBootLoop, at, options_.narrate ? std::string(why) : std::string());
  } else {
    Move(i, HostState::kCrashed, at, options_.narrate ? std::string(why) : std::string());
  }
  if (options_.automatic && !h.runbook_active &&
      runbook_.starts == config::RunbookStart::kAtDetection)
    driver_->Schedule(at, Signal{Signal::kActivate, i, 0});
}

void Model::Healthy(uint32_t i, double at) {
  HostRecord& h = hosts_[i];
  h.since_healthy = 0;
  HealthChanged(i, true, at);
  if (h.crashes == 0) {
    Move(i, HostState::kHealthy, at);
    return;
  }
  if (h.recovered_at < 0) h.recovered_at = at;
  if (h.recovered_by == 0) {
    h.recovered_by = h.stage == Stage::kMachine && h.step < Steps(i).size()
                         ? static_cast<uint8_t>(2 + static_cast<int>(CurrentStep(i).kind))
                     : h.last_step ? static_cast<uint8_t>(1 + h.last_step)
                                   : 1;
  }
  Move(i, HostState::kRecovered, at,
       options_.narrate
           ? fmt::format("healthy again after {} crash(es), {} reboot(s)", h.crashes, h.reboots)
           : std::string());
  if (h.InMachinePart()) {
    if (options_.ordered_events) {
      SettleNow(i, at, Outcome::kHealthy);
    } else {
      Settle(i, at, Outcome::kHealthy);
    }
  } else if (h.runbook_active && h.stage != Stage::kFinished) {
    // Came back while the runbook waited or worked on something else: nothing left to do.
    h.token++;
    Continue(i, at);
    h.outcome = Outcome::kHealthy;
    h.stage = Stage::kMachine;
  }
}

bool Model::ShouldPark(uint32_t i) const {
  const HostRecord& h = hosts_[i];
  // People at a game day decide themselves: nothing is parked for them.
  if (!options_.automatic) return false;
  if (h.runbook_active) return !InRebootStep(i);
  return h.since_healthy >= 2;
}

void Model::Rebooting(uint32_t i, double at) {
  if (hosts_[i].state == HostState::kCrashed) Move(i, HostState::kBooting, at);
  if (InRebootStep(i)) CountReboot(i);
}

void Model::RestartedByHand(uint32_t i, double at, uint8_t step, const std::string& why) {
  HostRecord& h = hosts_[i];
  h.last_step = step;
  const HostState s = h.state;
  if (h.crashes > 0 &&
      (s == HostState::kCrashed || s == HostState::kBootLoop || s == HostState::kBooting))
    Move(i, HostState::kRemediating, at, why);
}

void Model::Fail(uint32_t i, double at, const std::string& why, HostState end) {
  HostRecord& h = hosts_[i];
  driver_->StopMachine(i);
  h.failed_why = Intern(why);
  h.stage = Stage::kFinished;
  ReleaseAll(i, at);
  Move(i, end, at, why);
}

// --- The runbook
// ----------------------------------------------------------------------------------

void Model::Activate(uint32_t i, double at) {
  HostRecord& h = hosts_[i];
  if (h.runbook_active) return;
  h.runbook_active = true;
  const HostState s = h.state;
  if (s != HostState::kCrashed && s != HostState::kBootLoop && s != HostState::kBooting) return;
  if (h.crashes == 0) return;
  Move(i, HostState::kRemediating, at, options_.narrate ? "runbook " + runbook_.name : "");
  if (profile(i).steps.empty()) {
    if (!Escalate(i, at))
      Fail(i, at, "no step of runbook " + runbook_.name + " applies to this host");
    return;
  }
  h.step = 0;
  h.stage = Stage::kNone;
  h.token++;
  Continue(i, at);
}

void Model::ActivateCrashed(double at) {
  if (!options_.automatic || runbook_.starts != config::RunbookStart::kAfterRevert) return;
  for (uint32_t i = 0; i < hosts_.size(); ++i)
    if (hosts_[i].crashes > 0 && !hosts_[i].runbook_active) Activate(i, at);
}

void Model::Decide(uint32_t i, Outcome o, std::string why) {
  HostRecord& h = hosts_[i];
  h.outcome = o;
  if (o == Outcome::kFailed) h.last_failure = Intern(why);
  h.token++;  // a Continue of the machine part's earlier actions no longer counts
}

void Model::Settle(uint32_t i, double at, Outcome o, std::string why) {
  Decide(i, o, std::move(why));
  Continue(i, at);
}

// Settle as the last thing a machine event does: the runbook goes on within this event rather
// than through one more agenda entry at the same scenario time; only the order among same-time
// entries differs, never a time.
void Model::SettleNow(uint32_t i, double at, Outcome o, std::string why) {
  Decide(i, o, std::move(why));
  Advance(i, at);
}

void Model::Proceed(uint32_t i, double at) {
  HostRecord& h = hosts_[i];
  h.sub++;
  h.token++;
  Continue(i, at);
}

void Model::Advance(uint32_t i, double at) {
  HostRecord& h = hosts_[i];
  if (h.stage == Stage::kFinished || IsTerminal(h.state)) return;
  const auto& steps = Steps(i);
  while (true) {
    if (h.stage == Stage::kMachine) {
      if (h.outcome == Outcome::kPending) {
        driver_->ContinueMachine(i, *steps[h.step], at);
        return;
      }
      ReleaseHypervisor(i, at);  // the slot serves one step's disk
      if (h.outcome == Outcome::kHealthy) {
        h.stage = Stage::kFinished;
        ReleaseAll(i, at);
        return;
      }
      if (h.outcome == Outcome::kFailed)
        driver_->StepFailed(i, *steps[h.step], Text(h.last_failure), at);
      h.step++;
      h.stage = Stage::kNone;
    }
    if (h.step >= steps.size()) {
      if (Escalate(i, at)) return;
      ReleaseAll(i, at);
      h.stage = Stage::kFinished;
      const std::string which = h.level == 0 ? "runbook" : "runbook " + RunbookOf(i).name;
      Fail(i, at,
           h.last_failure == 0 ? which + " ended without recovery"
                               : which + " ended without recovery: " + Text(h.last_failure));
      return;
    }
    const config::StepConfig& step = *steps[h.step];
    if (h.stage == Stage::kNone) {
      // A technician stays with the host until its runbook ends (to see it boot healthy), as
      // people do: releasing them between steps would let another host take them mid-repair.
      // Join the queue; Wake hands out resources in priority order once every host that asks at
      // this same time has joined.
      h.stage = Stage::kAcquire;
      h.waiting = true;
      h.waiting_for = Wait::kTurn;
      h.wait_since = h.queued_at = at;
      if (!TakesShared(i, step, at)) continue;  // nothing to queue for: acquire now
      Block(i, Wait::kTurn, step);
      RequestWake(at);
      return;
    }
    if (h.stage == Stage::kAcquire) {
      Acquire(i, step, at);
      return;
    }
    if (h.stage == Stage::kHuman) {
      h.stage = Stage::kMachine;
      h.outcome = Outcome::kPending;
      h.sub = 0;
      h.step_reboots = 0;
      h.last_step = static_cast<uint8_t>(1 + static_cast<int>(step.kind));
      driver_->StartMachine(i, step, at);  // its outcome comes back through Settle
      return;
    }
    return;
  }
}

// People give up on the runbook and, after deciding to, start the next one (on_failure): what the
// host holds is released as at any runbook's end, and it queues anew for the next one's first
// step. Fallbacks with no step for this host are passed over.
bool Model::Escalate(uint32_t i, double at) {
  HostRecord& h = hosts_[i];
  const auto& escalations = runbook_.escalations;
  size_t next = h.level;  // escalations[level] is the runbook after the current one
  while (next < escalations.size() && profile(i).fallback_steps[next].empty()) next++;
  if (next >= escalations.size()) return false;
  ReleaseAll(i, at);
  h.level = static_cast<uint8_t>(next + 1);
  h.step = 0;
  h.stage = Stage::kNone;
  h.last_failure = 0;
  h.token++;
  const double starts = at + driver_->DecisionSeconds(i, escalations[next].after);
  driver_->Escalated(i, escalations[next].runbook, at, starts);
  Continue(i, starts);
  return true;
}

// Takes what the step needs or joins the queue of what is missing; once taken, the human part
// (the step's own time, travel for a new visit, finding the key) goes on the agenda.
void Model::Acquire(uint32_t i, const config::StepConfig& step, double at) {
  HostRecord& h = hosts_[i];
  // From a console to the host in person is a new visit.
  const bool new_visit = NeedsPerson(step) && !h.holds_technician &&
                         (!h.holds_session || Needs(step, config::Resource::kTechnician));
  const std::optional<Wait> missing = TryAcquire(i, step, at);
  if (missing) {
    if (h.waiting_for != *missing) {
      if (at > h.wait_since)
        h.waited[static_cast<int>(h.waiting_for)] += static_cast<float>(at - h.wait_since);
      h.waiting_for = *missing;
      h.wait_since = at;
      driver_->WaitsFor(i, step, *missing, at);
    }
    Block(i, *missing, step);
    return;
  }
  if (at > h.wait_since)
    h.waited[static_cast<int>(h.waiting_for)] += static_cast<float>(at - h.wait_since);
  h.waiting = false;
  const double human = driver_->HumanSeconds(i, step, new_visit);
  h.stage = Stage::kHuman;
  h.token++;
  Continue(i, at + human);
}

// --- Figures
// ----------------------------------------------------------------------------------------

WaitFigures Model::Waits(uint32_t i, double now) const {
  const HostRecord& h = hosts_[i];
  WaitFigures f;
  f.technician_s = h.technician_s;
  if (h.holds_technician) f.technician_s += std::max(0.0, now - h.technician_since);
  if (h.holds_session)
    f.technician_s += std::max(0.0, now - h.technician_since) / Site(i)->consoles_per_technician;
  double longest = 0;
  for (int w = 0; w < kWaitKinds; ++w) {
    const double waited = h.waited[w];
    f.waited_s += waited;
    if (waited > longest) longest = waited, f.longest = w;
  }
  if (h.waiting) {
    const double open = std::max(0.0, now - h.wait_since);
    f.waited_s += open;
    const int w = static_cast<int>(h.waiting_for);
    if (open + h.waited[w] >= longest) f.longest = w;
  }
  f.failed_why = Text(h.failed_why);
  if (f.failed_why.empty() && h.waiting && !IsTerminal(h.state))
    f.failed_why = std::string("waiting for ") + WaitName(h.waiting_for);
  return f;
}

void Model::FillResult(uint32_t i, double release, double now, HostResult* r) const {
  const HostRecord& h = hosts_[i];
  const bool recovered = h.recovered_at >= 0;
  r->final_state = std::string(HostStateName(h.state));
  r->crashes = h.crashes;
  r->boot_loop = h.boot_loop;
  r->recovered = recovered;
  r->reboots = h.reboots;
  if (h.first_crash >= 0) r->first_crash_s = h.first_crash - release;
  if (h.first_crash >= 0 && recovered) r->time_to_recover_s = h.recovered_at - h.first_crash;
  if (recovered) r->recovered_at_s = h.recovered_at - release;
  r->recovered_by = RecoveredByName(h.recovered_by);
  r->escalations = h.level;
  const WaitFigures w = Waits(i, now);
  r->technician_s = w.technician_s;
  r->waited_s = w.waited_s;
  if (w.longest >= 0) r->waited_for = WaitName(static_cast<Wait>(w.longest));
  r->failed_why = w.failed_why;
}

bool Model::AnyStalled() const { return Stalled() > 0; }

int Model::Stalled() const {
  int n = 0;
  for (const auto& h : hosts_) n += h.waiting && !IsTerminal(h.state);
  return n;
}

}  // namespace chaoslab::recovery
