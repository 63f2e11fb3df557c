// The model's health of groups: which hosts are up, the key escrow they host, the services that
// need them (down, catching up on a backlog, up), and the services' outages as results report them.
#include <algorithm>

#include "lab/recovery/recovery.h"

namespace chaoslab::recovery {

// Health changes reach the agenda only if the key escrow or a service depends on the host's
// group; for the others nothing shared changes, so it is recorded at once (fewer events).
void Model::HealthChanged(uint32_t i, bool up, double at) {
  if (profile(i).watched) {
    driver_->Schedule(at, Signal{up ? Signal::kHealthUp : Signal::kHealthDown, i, 0});
  } else {
    hosts_[i].up = up;
  }
}

void Model::SetUp(uint32_t i, bool up, double at) {
  HostRecord& h = hosts_[i];
  if (h.up == up) return;
  h.up = up;
  const int group = profile(i).group;
  if (group >= 0) group_up_[static_cast<size_t>(group)] += up ? 1 : -1;
  UpdateEscrow(at);
  for (ServiceRecord& r : services_) {
    r.needs_met = true;
    for (const auto& [g, at_least] : r.needs)
      if (group_up_[static_cast<size_t>(g)] < at_least) r.needs_met = false;
  }
  UpdateServices(at);
  RequestWake(at);
}

// Inputs first, so each service sees its inputs' new states and changes once at most.
void Model::UpdateServices(double at) {
  for (size_t s : service_order_) UpdateService(s, at);
}

bool Model::UpdateService(size_t s, double at) {
  ServiceRecord& r = services_[s];
  bool inputs_up = true;
  for (size_t input : r.inputs)
    inputs_up = inputs_up && services_[input].state == ServiceState::kUp;
  const bool working = r.needs_met && inputs_up;
  if (r.grows > 0 && r.started) {
    // The backlog is piecewise linear: bring it to now, then plan its end if it shrinks. A plan
    // changes only with its rate, so a host that changes nothing for it costs no signal.
    r.amount = BacklogAt(r, at);
    r.since = at;
    const double rate = !working ? r.grows : r.amount > 0 ? -r.works_off : 0;
    if (rate != r.rate) {
      r.rate = rate;
      ++r.token;
      if (rate < 0)
        driver_->Schedule(at + r.amount / r.works_off,
                          Signal{Signal::kBacklog, static_cast<uint32_t>(s), r.token});
    }
  }
  if (working) r.started = true;
  // Before it was ever up (the lab's start) it has nothing to catch up on: down until it works.
  const ServiceState next = !r.needs_met || !r.started         ? ServiceState::kDown
                            : working && BacklogAt(r, at) <= 0 ? ServiceState::kUp
                                                               : ServiceState::kCatchingUp;
  if (next == r.state) return false;
  if (r.state == ServiceState::kUp) r.outages.push_back({at, kInf});
  if (next == ServiceState::kUp) r.outages.back().second = at;
  if (r.state == ServiceState::kCatchingUp) r.catching_up.back().second = at;
  if (next == ServiceState::kCatchingUp) r.catching_up.push_back({at, kInf});
  r.state = next;
  driver_->ServiceChanged(s, next, at);
  return true;
}

void Model::ForceEscrowDown(bool down, double at) {
  escrow_forced_down_ = down;
  UpdateEscrow(at);
  RequestWake(at);
}

void Model::UpdateEscrow(double at) {
  const bool up = !escrow_forced_down_ &&
                  (escrow_group_ < 0 || group_up_[static_cast<size_t>(escrow_group_)] > 0);
  if (up == escrow_up_) return;
  escrow_up_ = up;
  driver_->EscrowChanged(up, at);
}

namespace {

// Seconds of `intervals` within [release, end].
double Within(const std::vector<std::pair<double, double>>& intervals, double release, double end) {
  double total = 0;
  for (const auto& [from, to] : intervals)
    total += std::max(0.0, std::min(to, end) - std::max(from, release));
  return total;
}

}  // namespace

std::vector<ServiceResult> Model::ServiceFigures(double release, double now) const {
  const double end = std::max(now, release);
  std::vector<ServiceResult> figures;
  for (size_t s = 0; s < services_.size(); ++s) {
    const ServiceRecord& service = services_[s];
    ServiceResult r;
    r.name = setup_.services[s].name;
    for (const auto& [down, up] : service.outages) {
      const double from = std::max(down, release), to = std::min(up, end);
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
    r.catching_up_s = Within(service.catching_up, release, end);
    figures.push_back(r);
  }
  return figures;
}

const char* ServiceStateName(ServiceState s) {
  switch (s) {
    case ServiceState::kDown:
      return "down";
    case ServiceState::kCatchingUp:
      return "catching-up";
    case ServiceState::kUp:
      return "up";
  }
  return "?";
}

}  // namespace chaoslab::recovery
