// Run: the record: notes and state changes to the journal and live view, host and service figures.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <string>

#include "lab/config/config_loader.h"
#include "lab/engine/run.h"

namespace chaoslab::engine_internal {

void Run::Note(double at, const std::string& host, const std::string& kind,
               const std::string& detail) {
  const int64_t wall_us =
      std::chrono::duration_cast<std::chrono::microseconds>(Now() - wall_start_).count();
  if (o_.live) {
    LiveEvent live{at, wall_us, host, {}, kind, detail, {}, 0};
    if (auto it = by_id_.find(host); it != by_id_.end()) {
      const HostRun& h = hosts_[it->second];
      live.group = h.plan.spec.group;
      live.state = std::string(HostStateName(StateOf(h)));
      live.crashes = R(h).crashes;
    }
    o_.live->Event(live);
  }
  if (!o_.journal) return;
  JournalEvent ev;
  ev.run_id = o_.run_id;
  ev.scenario_s = at;
  ev.wall_us = wall_us;
  ev.host_id = host;
  ev.kind = kind;
  ev.detail = detail;
  Journaled(at, o_.journal->AppendEvent(ev));
}

void Run::Progress(double at, const std::string& text) {
  if (o_.progress) o_.progress(ClockText(at) + "  " + text);
}

void Run::Journaled(double at, const Status& s) {
  if (s.ok()) return;
  Progress(at, "journal: " + s.ToString());
  if (journal_error_.empty()) journal_error_ = s.ToString();
}

void Run::Moved(uint32_t i, HostState from, HostState to, double at, const std::string& why) {
  const HostRun& h = hosts_[i];
  std::string detail = fmt::format("{} -> {}{}{}", HostStateName(from), HostStateName(to),
                                   why.empty() ? "" : ": ", why);
  Note(at, h.plan.spec.id, "state", detail);
  Progress(at, fmt::format("{:<14} {}", h.plan.spec.id, detail));
  if (to == HostState::kBootLoop && o_.stats) {
    o_.stats->all_boot_loop_wall_s = std::chrono::duration<double>(Now() - wall_start_).count();
  }
  if (o_.journal) Journaled(at, o_.journal->SaveHost(o_.run_id, Figures(h)));
}

void Run::Refused(uint32_t i, HostState from, HostState to, double at) {
  Progress(at, fmt::format("{}: illegal host transition {} → {}", hosts_[i].plan.spec.id,
                           HostStateName(from), HostStateName(to)));
}

void Run::WaitsFor(uint32_t i, const config::StepConfig& step, recovery::Wait w, double at) {
  Note(at, hosts_[i].plan.spec.id, "waiting",
       fmt::format("{} waits for {}", config::StepKindName(step.kind), recovery::WaitName(w)));
}

void Run::StepFailed(uint32_t i, const config::StepConfig& step, const std::string& why,
                     double at) {
  Note(at, hosts_[i].plan.spec.id, "step-failed",
       fmt::format("{}: {}", config::StepKindName(step.kind), why));
}

void Run::Escalated(uint32_t i, const config::RunbookConfig& next, double at, double starts_at) {
  const std::string what = fmt::format("to runbook {}, which starts in {}", next.name,
                                       config::FormatDuration(starts_at - at));
  Note(at, hosts_[i].plan.spec.id, "escalated", what);
}

void Run::EscrowChanged(bool up, double at) {
  if (o_.escrow) o_.escrow->SetAvailable(up);
  Note(at, "", "key-escrow", up ? "up" : "down");
  Progress(at, std::string("key escrow ") + (up ? "up" : "down"));
}

void Run::ServiceChanged(size_t service, recovery::ServiceState state, double at) {
  // A game day shows services from the start (the dashboard lists them up or down).
  if (at < sc_.rollout.release && !o_.realtime) return;
  const std::string& name = sc_.setup.services[service].name;
  const std::string state_name = recovery::ServiceStateName(state);
  Note(at, "", "service-" + state_name, name);
  if (state != recovery::ServiceState::kDown) Progress(at, "service " + name + " " + state_name);
}

HostResult Run::Figures(const HostRun& h) const {
  HostResult r;
  r.id = h.plan.spec.id;
  r.group = h.plan.spec.group;
  model_.FillResult(h.index, sc_.rollout.release, now_, &r);
  r.exposed = h.exposed;
  r.stop_code = h.stop_code;
  r.site = h.plan.site;
  r.role = std::string(config::RoleName(h.plan.role));
  r.bitlocker = h.plan.bitlocker;
  r.keys_fetched = h.keys_fetched;
  r.data_lost = h.data_lost;
  r.data_lost_s = h.data_lost_s;
  if (sc_.rollout.policy == config::RolloutPolicy::kRings &&
      h.plan.ring < static_cast<int>(sc_.rollout.rings.size()))
    r.ring = sc_.rollout.rings[h.plan.ring].name;
  if (h.plan.pinned) r.ring = "pinned";
  r.network = h.plan.network;
  r.race_fetch_ms = h.race_fetch_ms;
  return r;
}

}  // namespace chaoslab::engine_internal
