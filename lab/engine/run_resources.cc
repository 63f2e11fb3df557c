// Run: shared resources: technicians on shift, USB sticks, consoles, the key escrow, services.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "lab/engine/run.h"

namespace chaoslab::engine_internal {

namespace {

bool OnShift(const config::SiteConfig& site, double t) {
  if (site.shifts.empty()) return true;
  double tod = std::fmod(t, 86400.0);
  for (const auto& s : site.shifts) {
    bool in = s.start <= s.end ? (tod >= s.start && tod < s.end) : (tod >= s.start || tod < s.end);
    if (in) return true;
  }
  return false;
}

// The next time after `t` when one of the site's shifts starts.
double NextShiftStart(const config::SiteConfig& site, double t) {
  double best = kInf;
  double day = std::floor(t / 86400.0) * 86400.0;
  for (const auto& s : site.shifts) {
    for (int d = 0; d <= 1; ++d) {
      double at = day + d * 86400.0 + s.start;
      if (at > t) best = std::min(best, at);
    }
  }
  return best;
}

}  // namespace

bool Needs(const config::StepConfig& step, config::Resource r) {
  return std::find(step.needs.begin(), step.needs.end(), r) != step.needs.end();
}

bool NeedsPerson(const config::StepConfig& step) {
  return Needs(step, config::Resource::kTechnician) ||
         Needs(step, config::Resource::kRemoteConsole);
}

bool Run::EscrowUp() const { return escrow_up_; }

std::string Run::TryAcquire(HostRun& h, const config::StepConfig& step, double at) {
  using R = config::Resource;
  const config::SiteConfig* site = Site(h);
  const std::string site_name = site ? site->name : "";
  if (!h.admitted && runbook().parallelism > 0 && remediating_ >= runbook().parallelism)
    return "a free slot (parallelism)";
  bool want_person = NeedsPerson(step) && !h.holds_technician;
  if (want_person) {
    if (!site) return "technician";
    if (technicians_busy_[site_name] >= site->technicians) return "technician";
    if (!OnShift(*site, at)) {
      double next = NextShiftStart(*site, at);
      if (next < kInf) agenda_.Push(next, {AgendaItem::Kind::kRetry, h.index, 0, false});
      return "technician (off shift)";
    }
  }
  if (Needs(step, R::kRemoteConsole) && !h.plan.oob_console) return "remote-console";
  bool want_usb = Needs(step, R::kUsbStick) && !h.holds_usb;
  if (want_usb && (!site || usb_in_use_[site_name] >= site->usb_sticks)) return "usb-stick";
  // Only encrypted hosts need a key (config.h: the need is skipped for the others).
  if (Needs(step, R::kKeyEscrow) && h.plan.bitlocker && !EscrowUp()) return "key-escrow";
  if (Needs(step, R::kPxeServer) && !sc_.setup.pxe) return "pxe-server";
  // Everything is there: take it.
  if (!h.admitted) {
    h.admitted = true;
    remediating_++;
  }
  if (want_person) {
    technicians_busy_[site_name]++;
    h.holds_technician = true;
    h.technician_since = at;
  }
  if (want_usb) {
    usb_in_use_[site_name]++;
    h.holds_usb = true;
  }
  return {};
}

void Run::ReleaseTechnician(HostRun& h, double at) {
  if (!h.holds_technician) return;
  h.holds_technician = false;
  h.technician_s += std::max(0.0, at - h.technician_since);
  const config::SiteConfig* site = Site(h);
  if (site) technicians_busy_[site->name]--;
  agenda_.Push(at, {AgendaItem::Kind::kRetry, h.index, 0, false});
}

void Run::ReleaseAll(HostRun& h, double at) {
  ReleaseTechnician(h, at);
  const config::SiteConfig* site = Site(h);
  if (h.holds_usb) {
    h.holds_usb = false;
    if (site) usb_in_use_[site->name]--;
  }
  if (h.admitted) {
    h.admitted = false;
    remediating_--;
  }
  if (h.waiting) {
    h.waited[h.waiting_for] += std::max(0.0, at - h.wait_since);
    h.waiting = false;
  }
  agenda_.Push(at, {AgendaItem::Kind::kRetry, h.index, 0, false});
}

// Gives waiting hosts what they wait for, in priority order: (rank, waiting since, asset order).
void Run::Wake(double at) {
  std::vector<HostRun*> waiting;
  for (auto& h : hosts_)
    if (h.waiting && h.stage == Stage::kAcquire) waiting.push_back(&h);
  std::sort(waiting.begin(), waiting.end(), [](const HostRun* a, const HostRun* b) {
    if (a->rank != b->rank) return a->rank < b->rank;
    if (a->queued_at != b->queued_at) return a->queued_at < b->queued_at;
    return a->index < b->index;
  });
  for (HostRun* h : waiting) Advance(*h, at);
}

void Run::SetUp(HostRun& h, bool up, double at) {
  if (h.up == up) return;
  h.up = up;
  group_up_[h.plan.spec.group] += up ? 1 : -1;
  UpdateEscrow(at);
  for (size_t i = 0; i < sc_.setup.services.size(); ++i) {
    const auto& svc = sc_.setup.services[i];
    bool svc_up = true;
    for (const auto& need : svc.needs)
      if (group_up_[need.group] < need.at_least) svc_up = false;
    auto& outages = outages_[i];
    bool down_now = !outages.empty() && outages.back().second == kInf;
    // A game day shows services from the start (the dashboard lists them up or down).
    const bool shown = at >= sc_.rollout.release || o_.realtime;
    if (!svc_up && !down_now) {
      outages.push_back({at, kInf});
      if (shown) Note(at, "", "service-down", svc.name);
    } else if (svc_up && down_now) {
      outages.back().second = at;
      if (shown) {
        Note(at, "", "service-up", svc.name);
        Progress(at, "service " + svc.name + " up");
      }
    }
  }
  agenda_.Push(at, {AgendaItem::Kind::kRetry, h.index, 0, false});
}

void Run::UpdateEscrow(double at) {
  const std::string& hosted_on = sc_.setup.key_escrow.hosted_on;
  bool escrow = !escrow_forced_down_ && (hosted_on.empty() || group_up_[hosted_on] > 0);
  if (escrow != escrow_up_) {
    escrow_up_ = escrow;
    if (o_.set_escrow_available) o_.set_escrow_available(escrow);
    Note(at, "", "key-escrow", escrow ? "up" : "down");
    Progress(at, std::string("key escrow ") + (escrow ? "up" : "down"));
  }
}

}  // namespace chaoslab::engine_internal
