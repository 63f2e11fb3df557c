// Run: the record: notes and state changes to the journal and live view, host and service figures.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <string>

#include "lab/engine/run.h"

namespace chaoslab::engine_internal {

void Run::Note(double at, const std::string& host, const std::string& kind,
               const std::string& detail) {
  const int64_t wall_us =
      std::chrono::duration_cast<std::chrono::microseconds>(WallClock::now() - wall_start_).count();
  if (o_.observer) {
    LiveEvent live{at, wall_us, host, {}, kind, detail, {}, 0};
    if (auto it = by_id_.find(host); it != by_id_.end()) {
      const HostRun& h = hosts_[it->second];
      live.group = h.plan.spec.group;
      live.state = std::string(HostStateName(h.machine.state()));
      live.crashes = h.crashes;
    }
    o_.observer(live);
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

void Run::Move(HostRun& h, HostState to, double at, const std::string& why) {
  HostState from = h.machine.state();
  if (from == to) return;
  Status s = h.machine.MoveTo(to);
  if (!s.ok()) {
    Progress(at, h.plan.spec.id + ": " + s.message());
    return;
  }
  std::string detail = fmt::format("{} -> {}{}{}", HostStateName(from), HostStateName(to),
                                   why.empty() ? "" : ": ", why);
  Note(at, h.plan.spec.id, "state", detail);
  Progress(at, fmt::format("{:<14} {}", h.plan.spec.id, detail));
  if (o_.journal) Journaled(at, o_.journal->SaveHost(o_.run_id, Figures(h)));
}

HostResult Run::Figures(const HostRun& h) const {
  HostResult r;
  r.id = h.plan.spec.id;
  r.group = h.plan.spec.group;
  r.final_state = std::string(HostStateName(h.machine.state()));
  r.exposed = h.exposed;
  r.crashes = h.crashes;
  r.boot_loop = h.boot_loop;
  r.recovered = h.recovered_at.has_value();
  r.reboots = h.reboots;
  const double release = sc_.rollout.release;
  if (h.first_crash_at) r.first_crash_s = *h.first_crash_at - release;
  if (h.first_crash_at && h.recovered_at) r.time_to_recover_s = *h.recovered_at - *h.first_crash_at;
  r.stop_code = h.stop_code;
  r.site = h.plan.site;
  r.role = std::string(config::RoleName(h.plan.role));
  r.bitlocker = h.plan.bitlocker;
  if (h.recovered_at) r.recovered_at_s = *h.recovered_at - release;
  r.recovered_by = h.recovered_by;
  r.technician_s = h.technician_s;
  if (h.holds_technician) r.technician_s += std::max(0.0, now_ - h.technician_since);
  double longest = 0;
  for (const auto& [what, s] : h.waited) {
    r.waited_s += s;
    if (s > longest) {
      longest = s;
      r.waited_for = what;
    }
  }
  if (h.waiting) {
    double open = std::max(0.0, now_ - h.wait_since);
    r.waited_s += open;
    if (open + (h.waited.count(h.waiting_for) ? h.waited.at(h.waiting_for) : 0) >= longest)
      r.waited_for = h.waiting_for;
  }
  r.keys_fetched = h.keys_fetched;
  r.data_lost = h.data_lost;
  r.data_lost_s = h.data_lost_s;
  r.failed_why = h.failed_why;
  if (sc_.rollout.policy == config::RolloutPolicy::kRings &&
      h.plan.ring < static_cast<int>(sc_.rollout.rings.size()))
    r.ring = sc_.rollout.rings[h.plan.ring].name;
  if (h.plan.pinned) r.ring = "pinned";
  r.network = h.plan.network;
  r.race_fetch_ms = h.race_fetch_ms;
  if (r.failed_why.empty() && h.waiting && !IsTerminal(h.machine.state()))
    r.failed_why = "waiting for " + h.waiting_for;
  return r;
}

void Run::ServiceFigures(RunResult* result) const {
  const double release = sc_.rollout.release;
  const double end = std::max(now_, release);
  for (size_t i = 0; i < sc_.setup.services.size(); ++i) {
    ServiceResult r;
    r.name = sc_.setup.services[i].name;
    for (const auto& [down, up] : outages_[i]) {
      double from = std::max(down, release), to = std::min(up, end);
      if (to <= from && up != kInf) continue;
      r.downtime_s += std::max(0.0, to - from);
      if (!r.down_at_s) r.down_at_s = from - release;
      if (up == kInf) {
        r.up_at_end = false;
        r.up_again_s.reset();
      } else {
        r.up_again_s = up - release;
      }
    }
    result->services.push_back(r);
  }
}

}  // namespace chaoslab::engine_internal
