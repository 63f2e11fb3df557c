// The model's shared resources: technicians on shift, USB sticks, consoles, the key escrow, PXE,
// parallelism; who waits for them and in which order they are handed out.
#include <algorithm>
#include <cmath>

#include "lab/recovery/recovery.h"

namespace chaoslab::recovery {

using config::Resource;

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

// The order of checks decides what a host is said to wait for when several things are missing.
std::optional<Wait> Model::TryAcquire(uint32_t i, const config::StepConfig& step, double at) {
  HostRecord& h = hosts_[i];
  const Profile& p = profile(i);
  const config::SiteConfig* site = Site(i);
  const size_t s = static_cast<size_t>(std::max(p.site, 0));
  if (!h.admitted && runbook_.parallelism > 0 && remediating_ >= runbook_.parallelism)
    return Wait::kSlot;
  const bool want_person = NeedsPerson(step) && !h.holds_technician;
  if (want_person) {
    if (!site || technicians_busy_[s] >= site->technicians) return Wait::kTechnician;
    if (!OnShift(*site, at)) {
      ScheduleShift(p.site, NextShiftStart(*site, at));
      return Wait::kTechnicianOffShift;
    }
  }
  if (Needs(step, Resource::kRemoteConsole) && !p.oob_console) return Wait::kRemoteConsole;
  const bool want_usb = Needs(step, Resource::kUsbStick) && !h.holds_usb;
  if (want_usb && (!site || usb_in_use_[s] >= site->usb_sticks)) return Wait::kUsbStick;
  // Only encrypted hosts need a key (config.h: the need is skipped for the others).
  if (Needs(step, Resource::kKeyEscrow) && p.bitlocker && !escrow_up_) return Wait::kKeyEscrow;
  if (Needs(step, Resource::kPxeServer) && !setup_.pxe) return Wait::kPxeServer;
  // Everything is there: take it.
  if (!h.admitted) {
    h.admitted = true;
    remediating_++;
  }
  if (want_person) {
    technicians_busy_[s]++;
    h.holds_technician = true;
    h.technician_since = at;
  }
  if (want_usb) {
    usb_in_use_[s]++;
    h.holds_usb = true;
  }
  return std::nullopt;
}

// Whether acquiring `step` takes something other hosts may want (a slot, a technician, a stick):
// only then does the order among hosts asking at the same time matter, and the host joins the
// queue. A host that already holds what the step needs, or needs nothing, acquires at once.
bool Model::TakesShared(uint32_t i, const config::StepConfig& step) const {
  const HostRecord& h = hosts_[i];
  const Profile& p = profile(i);
  if (!h.admitted && runbook_.parallelism > 0) return true;
  if (NeedsPerson(step) && !h.holds_technician) return true;
  if (Needs(step, Resource::kUsbStick) && !h.holds_usb) return true;
  if (Needs(step, Resource::kRemoteConsole) && !p.oob_console) return true;
  if (Needs(step, Resource::kKeyEscrow) && p.bitlocker && !escrow_up_) return true;
  if (Needs(step, Resource::kPxeServer) && !setup_.pxe) return true;
  return false;
}

void Model::Block(uint32_t i, Wait why) {
  const WaitKey key = Key(i);
  const size_t s = static_cast<size_t>(std::max(profile(i).site, 0));
  const bool has_site = profile(i).site >= 0;
  switch (why) {
    case Wait::kTurn:
      turn_q_.insert(key);
      return;
    case Wait::kSlot:
      slot_q_.insert(key);
      return;
    case Wait::kTechnician:
    case Wait::kTechnicianOffShift:
      if (has_site) technician_q_[s].insert(key);
      return;
    case Wait::kUsbStick:
      if (has_site) usb_q_[s].insert(key);
      return;
    case Wait::kKeyEscrow:
      escrow_q_.insert(key);
      return;
    case Wait::kRemoteConsole:
    case Wait::kPxeServer:
      return;  // never comes during a run: it waits until the deadline
  }
}

void Model::RequestWake(double at) {
  if (wake_pending_ && wake_at_ == at) return;
  wake_pending_ = true;
  wake_at_ = at;
  driver_->Schedule(at, Signal{Signal::kWake, 0, 0});
}

void Model::ScheduleShift(int site, double at) {
  if (site < 0 || at == kInf) return;
  double& pending = shift_wake_at_[static_cast<size_t>(site)];
  if (pending == at) return;
  pending = at;
  driver_->Schedule(at, Signal{Signal::kShift, static_cast<uint32_t>(site), 0});
}

// Gives waiting hosts what they wait for in priority order (rank, queue time, index); only queues
// whose resource is free now are visited, so a host is tried again only when what stopped it may
// have changed.
void Model::Wake(double at) {
  const size_t sites = setup_.sites.size();
  while (true) {
    std::set<WaitKey>* best = nullptr;
    auto consider = [&](std::set<WaitKey>& q, bool open) {
      if (!open || q.empty()) return;
      if (!best || *q.begin() < *best->begin()) best = &q;
    };
    consider(turn_q_, true);
    consider(slot_q_, runbook_.parallelism == 0 || remediating_ < runbook_.parallelism);
    consider(escrow_q_, escrow_up_);
    for (size_t s = 0; s < sites; ++s) {
      const auto& site = setup_.sites[s];
      consider(technician_q_[s], technicians_busy_[s] < site.technicians && OnShift(site, at));
      consider(usb_q_[s], usb_in_use_[s] < site.usb_sticks);
    }
    if (!best) break;
    const uint32_t i = best->begin()->host;
    best->erase(best->begin());
    Advance(i, at);
  }
  // Hosts waiting for a site that is off shift are woken when its next shift starts.
  for (size_t s = 0; s < sites; ++s) {
    const auto& site = setup_.sites[s];
    if (technician_q_[s].empty() || OnShift(site, at)) continue;
    ScheduleShift(static_cast<int>(s), NextShiftStart(site, at));
  }
}

void Model::ReleaseTechnician(uint32_t i, double at) {
  HostRecord& h = hosts_[i];
  if (!h.holds_technician) return;
  h.holds_technician = false;
  h.technician_s += std::max(0.0, at - h.technician_since);
  if (profile(i).site >= 0) technicians_busy_[static_cast<size_t>(profile(i).site)]--;
  RequestWake(at);
}

void Model::ReleaseAll(uint32_t i, double at) {
  HostRecord& h = hosts_[i];
  ReleaseTechnician(i, at);
  const int site = profile(i).site;
  if (h.holds_usb) {
    h.holds_usb = false;
    if (site >= 0) usb_in_use_[static_cast<size_t>(site)]--;
  }
  if (h.admitted) {
    h.admitted = false;
    remediating_--;
  }
  if (h.waiting) {
    h.waited[static_cast<int>(h.waiting_for)] += static_cast<float>(std::max(0.0, at - h.wait_since));
    h.waiting = false;
    // Leave whatever queue it was in (it is finished or failed).
    const WaitKey key = Key(i);
    turn_q_.erase(key);
    slot_q_.erase(key);
    escrow_q_.erase(key);
    if (site >= 0) {
      technician_q_[static_cast<size_t>(site)].erase(key);
      usb_q_[static_cast<size_t>(site)].erase(key);
    }
  }
  RequestWake(at);
}

}  // namespace chaoslab::recovery
