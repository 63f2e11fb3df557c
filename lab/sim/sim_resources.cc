// An organisation's shared resources (technicians on shift, sticks, escrow, services), waiting.
#include <algorithm>
#include <cmath>

#include "lab/sim/sim_internal.h"

namespace chaoslab::sim::internal {

bool Needs(const config::StepConfig& step, Resource r) {
  return std::find(step.needs.begin(), step.needs.end(), r) != step.needs.end();
}
bool NeedsPerson(const config::StepConfig& step) {
  return Needs(step, Resource::kTechnician) || Needs(step, Resource::kRemoteConsole);
}
bool OnShift(const config::SiteConfig& site, double t) {
  if (site.shifts.empty()) return true;
  const double tod = std::fmod(t, 86400.0);
  for (const auto& s : site.shifts) {
    bool in = s.start <= s.end ? (tod >= s.start && tod < s.end) : (tod >= s.start || tod < s.end);
    if (in) return true;
  }
  return false;
}
double NextShiftStart(const config::SiteConfig& site, double t) {
  double best = kInf;
  const double day = std::floor(t / 86400.0) * 86400.0;
  for (const auto& s : site.shifts) {
    for (int d = 0; d <= 1; ++d) {
      double at = day + d * 86400.0 + s.start;
      if (at > t) best = std::min(best, at);
    }
  }
  return best;
}

// The engine's TryAcquire, in its order of checks.
int OrgSim::TryAcquire(Host& h, const config::StepConfig& step, double at) {
  const int s = G(h).site;
  const config::SiteConfig& site = Site(h);
  if (!h.admitted && runbook().parallelism > 0 && remediating_ >= runbook().parallelism)
    return kSlot;
  const bool want_person = NeedsPerson(step) && !h.holds_tech;
  if (want_person) {
    if (tech_busy_[s] >= site.technicians) return kTech;
    if (!OnShift(site, at)) {
      double next = NextShiftStart(site, at);
      if (next < kInf && shift_wake_at_[s] != next) {
        shift_wake_at_[s] = next;
        q_.Push(next, Ev{static_cast<uint32_t>(s), 0, Ev::kShift});
      }
      return kTechOffShift;
    }
  }
  if (Needs(step, Resource::kRemoteConsole) && !G(h).g->oob_console) return kRemote;
  const bool want_usb = Needs(step, Resource::kUsbStick) && !h.holds_usb;
  if (want_usb && usb_used_[s] >= site.usb_sticks) return kUsbStick;
  if (Needs(step, Resource::kKeyEscrow) && G(h).g->bitlocker && !escrow_up_) return kEscrow;
  if (Needs(step, Resource::kPxeServer) && !setup().pxe) return kPxeServer;
  if (!h.admitted) {
    h.admitted = true;
    remediating_++;
  }
  if (want_person) {
    tech_busy_[s]++;
    h.holds_tech = true;
    h.tech_since = at;
  }
  if (want_usb) {
    usb_used_[s]++;
    h.holds_usb = true;
  }
  return -1;
}

// Whether acquiring `step` takes something other hosts may want (a slot, a technician, a stick):
// only then does the order among hosts asking at the same time matter, and the host joins the
// queue. A host that already holds what the step needs, or needs nothing, acquires at once, which
// the engine's queue would also grant it.
bool OrgSim::TakesShared(const Host& h, const config::StepConfig& step) const {
  if (!h.admitted && runbook().parallelism > 0) return true;
  if (NeedsPerson(step) && !h.holds_tech) return true;
  if (Needs(step, Resource::kUsbStick) && !h.holds_usb) return true;
  if (Needs(step, Resource::kRemoteConsole) && !G(h).g->oob_console) return true;
  if (Needs(step, Resource::kKeyEscrow) && G(h).g->bitlocker && !escrow_up_) return true;
  if (Needs(step, Resource::kPxeServer) && !setup().pxe) return true;
  return false;
}

void OrgSim::Block(Host& h, int why) {
  const WaitKey key{G(h).rank, h.queued_at, Index(h)};
  const int s = G(h).site;
  switch (why) {
    case kTurn:
      turn_q_.insert(key);
      return;
    case kSlot:
      slot_q_.insert(key);
      return;
    case kTech:
    case kTechOffShift:
      tech_q_[s].insert(key);
      return;
    case kUsbStick:
      usb_q_[s].insert(key);
      return;
    case kEscrow:
      escrow_q_.insert(key);
      return;
    default:
      stalled_.push_back(Index(h));
      return;
  }
}

// Gives waiting hosts what they wait for in priority order (rank, queue time, index), as the
// engine's Wake does; only queues whose resource is free now are visited, so a host is tried
// again only when what stopped it may have changed.
void OrgSim::Wake(double at) {
  const size_t sites = setup().sites.size();
  while (true) {
    std::set<WaitKey>* best = nullptr;
    auto consider = [&](std::set<WaitKey>& q, bool open) {
      if (!open || q.empty()) return;
      if (!best || *q.begin() < *best->begin()) best = &q;
    };
    consider(turn_q_, true);
    consider(slot_q_, runbook().parallelism == 0 || remediating_ < runbook().parallelism);
    consider(escrow_q_, escrow_up_);
    for (size_t s = 0; s < sites; ++s) {
      const auto& site = setup().sites[s];
      consider(tech_q_[s], tech_busy_[s] < site.technicians && OnShift(site, at));
      consider(usb_q_[s], usb_used_[s] < site.usb_sticks);
    }
    if (!best) break;
    const uint32_t i = best->begin()->host;
    best->erase(best->begin());
    Advance(hosts_[i], at);
  }
  // Hosts waiting for a site that is off shift are woken when its next shift starts.
  for (size_t s = 0; s < sites; ++s) {
    const auto& site = setup().sites[s];
    if (tech_q_[s].empty() || OnShift(site, at)) continue;
    const double next = NextShiftStart(site, at);
    if (next < kInf && shift_wake_at_[s] != next) {
      shift_wake_at_[s] = next;
      q_.Push(next, Ev{static_cast<uint32_t>(s), 0, Ev::kShift});
    }
  }
}

void OrgSim::ReleaseTechnician(Host& h, double at) {
  if (!h.holds_tech) return;
  h.holds_tech = false;
  h.technician_s += std::max(0.0, at - h.tech_since);
  tech_busy_[G(h).site]--;
  RequestWake(at);
}

void OrgSim::ReleaseAll(Host& h, double at) {
  ReleaseTechnician(h, at);
  if (h.holds_usb) {
    h.holds_usb = false;
    usb_used_[G(h).site]--;
  }
  if (h.admitted) {
    h.admitted = false;
    remediating_--;
  }
  if (h.waiting) {
    h.waited[h.waiting_for] += static_cast<float>(std::max(0.0, at - h.wait_since));
    h.waiting = false;
    // Leave whatever queue it was in (it is finished or failed).
    const WaitKey key{G(h).rank, h.queued_at, Index(h)};
    turn_q_.erase(key);
    slot_q_.erase(key);
    escrow_q_.erase(key);
    tech_q_[G(h).site].erase(key);
    usb_q_[G(h).site].erase(key);
  }
  RequestWake(at);
}

void OrgSim::SetUp(Host& h, bool up, double at) {
  if (h.up == up) return;
  h.up = up;
  group_up_[h.group] += up ? 1 : -1;
  const bool escrow = escrow_group_ < 0 || group_up_[escrow_group_] > 0;
  escrow_up_ = escrow;
  for (size_t i = 0; i < service_needs_.size(); ++i) {
    bool svc_up = true;
    for (const auto& [g, at_least] : service_needs_[i])
      if (group_up_[g] < at_least) svc_up = false;
    auto& outages = outages_[i];
    const bool down_now = !outages.empty() && outages.back().second == kInf;
    if (!svc_up && !down_now) {
      outages.push_back({at, kInf});
    } else if (svc_up && down_now) {
      outages.back().second = at;
    }
  }
  RequestWake(at);
}

}  // namespace chaoslab::sim::internal
