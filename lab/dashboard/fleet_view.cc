#include "lab/dashboard/fleet_view.h"

#include <algorithm>

namespace chaoslab::dashboard {
namespace {

using nlohmann::json;

json HostJson(const HostView& h) {
  return {{"id", h.id},
          {"group", h.group},
          {"state", h.state},
          {"crashes", h.crashes},
          {"boot_looped", h.boot_looped}};
}

json EventJson(const LiveEvent& e) {
  return {{"t", e.scenario_s}, {"wall_us", e.wall_us}, {"host", e.host_id},
          {"kind", e.kind},    {"detail", e.detail},   {"state", e.state}};
}

json CurveJson(const CurvePoint& p) { return json::array({p.scenario_s, p.up, p.down}); }

}  // namespace

bool IsUpState(const std::string& state) { return state == "healthy" || state == "recovered"; }

json FleetView::Apply(const LiveEvent& e) {
  if (e.kind == "tty") {
    auto& lines = consoles_[e.host_id];
    lines.push_back(e.detail);
    while (lines.size() > 300) lines.pop_front();
    return {{"type", "tty"}, {"host", e.host_id}, {"line", e.detail}};
  }
  now_s_ = std::max(now_s_, e.scenario_s);
  // A service catching up on a backlog is not up yet (recovery::ServiceState).
  if (e.kind == "service-up" || e.kind == "service-down" || e.kind == "service-catching-up")
    services_[e.detail] = e.kind == "service-up";
  if (e.kind == "key-escrow") escrow_ = e.detail;
  if (e.kind == "key-fetched") keys_fetched_++;
  if (e.kind == "started" || e.kind == "resumed") phase_ = "running";
  if (e.kind == "paused") phase_ = "paused";
  json msg = {{"type", "event"}, {"event", EventJson(e)}, {"now", now_s_}, {"fleet", Fleet()}};
  timeline_.push_back(msg["event"]);
  while (timeline_.size() > max_timeline_) timeline_.pop_front();
  if (e.host_id.empty() || e.state.empty()) return msg;

  HostView& h = hosts_[e.host_id];
  const bool was_up = !h.state.empty() && IsUpState(h.state);
  const bool known = !h.state.empty();
  h.id = e.host_id;
  h.group = e.group;
  h.state = e.state;
  h.crashes = e.crashes;
  h.boot_looped |= e.state == "boot-loop";
  msg["host"] = HostJson(h);
  // A curve point whenever the number of hosts up or down changes (and for every host's first
  // appearance, so the curve starts with the fleet's size).
  if (!known || was_up != IsUpState(h.state) || e.kind == "state") {
    CurvePoint p{now_s_, 0, 0};
    for (const auto& [id, v] : hosts_) {
      if (IsUpState(v.state)) {
        p.up++;
      } else if (v.state != "provisioning" && v.state != "booting") {
        p.down++;
      } else if (v.crashes > 0) {
        p.down++;  // booting again after a crash: still an outage
      }
    }
    if (curve_.empty() || curve_.back().up != p.up || curve_.back().down != p.down) {
      if (!curve_.empty() && curve_.back().scenario_s == p.scenario_s) {
        curve_.back() = p;
      } else {
        curve_.push_back(p);
      }
      msg["curve"] = CurveJson(p);
    }
  }
  return msg;
}

void FleetView::SetRun(RunInfo run) {
  run_ = std::move(run);
  for (const auto& name : run_.services) services_.emplace(name, false);
  if (run_.gameday && phase_.empty()) phase_ = "waiting";
}

json FleetView::Fleet() const {
  return {{"services", services_},
          {"escrow", escrow_},
          {"keys_fetched", keys_fetched_},
          {"phase", status_ == "running" ? phase_ : status_}};
}

json FleetView::Snapshot() const {
  json hosts = json::array();
  for (const auto& [id, h] : hosts_) hosts.push_back(HostJson(h));
  json curve = json::array();
  for (const auto& p : curve_) curve.push_back(CurveJson(p));
  return {{"type", "snapshot"},
          {"run",
           {{"run_id", run_.run_id},
            {"scenario", run_.scenario},
            {"runbook", run_.runbook},
            {"setup", run_.setup},
            {"start", run_.start_s},
            {"release", run_.release_s},
            {"revert", run_.revert_s},
            {"status", status_},
            {"gameday", run_.gameday},
            {"checklist", run_.checklist}}},
          {"fleet", Fleet()},
          {"now", now_s_},
          {"hosts", hosts},
          {"events", json(timeline_)},
          {"curve", curve}};
}

json FleetView::ConsoleBacklog(const std::string& host) const {
  json lines = json::array();
  if (auto it = consoles_.find(host); it != consoles_.end()) lines = json(it->second);
  return {{"type", "tty-backlog"}, {"host", host}, {"lines", lines}};
}

json FleetView::End(const std::string& status) {
  status_ = status;
  return {{"type", "end"}, {"status", status}, {"now", now_s_}};
}

}  // namespace chaoslab::dashboard
