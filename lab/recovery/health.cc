// The model's health of groups: which hosts are up, the key escrow they host, the services that
// need them, and the services' outages as results report them.
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
  for (size_t s = 0; s < service_needs_.size(); ++s) {
    bool service_up = true;
    for (const auto& [g, at_least] : service_needs_[s])
      if (group_up_[static_cast<size_t>(g)] < at_least) service_up = false;
    auto& outages = outages_[s];
    const bool down_now = !outages.empty() && outages.back().second == kInf;
    if (!service_up && !down_now) {
      outages.push_back({at, kInf});
      driver_->ServiceChanged(s, false, at);
    } else if (service_up && down_now) {
      outages.back().second = at;
      driver_->ServiceChanged(s, true, at);
    }
  }
  RequestWake(at);
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

std::vector<ServiceResult> Model::ServiceFigures(double release, double now) const {
  const double end = std::max(now, release);
  std::vector<ServiceResult> figures;
  for (size_t s = 0; s < outages_.size(); ++s) {
    const auto& outages = outages_[s];
    ServiceResult r;
    r.name = setup_.services[s].name;
    for (const auto& [down, up] : outages) {
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
    figures.push_back(r);
  }
  return figures;
}

}  // namespace chaoslab::recovery
