// The model's shared resources: technicians on shift (local shifts on their days, and crisis
// staffing: extended hours, people called in, outside help), USB sticks, consoles, the key escrow,
// PXE, the hypervisor's repair script and slots, parallelism; who waits for them and in which
// order they are handed out.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "lab/recovery/recovery.h"

namespace chaoslab::recovery {

using config::Resource;

namespace {

constexpr double kDay = 86400.0;

// Scenario time `t` at a site `offset` seconds from UTC: the local day (0 = scenario day 0) and
// the local time of day.
struct LocalTime {
  int64_t day;
  double tod;
};
LocalTime Local(double t, double offset) {
  const double local = t + offset;
  // As fmod(local, kDay) would give, without its cost (this is on the simulator's hot path):
  // day * kDay is exact and local - day * kDay is exact where it is in [0, kDay).
  double day = std::floor(local / kDay);
  double tod = local - day * kDay;
  if (tod < 0) {
    day -= 1;
    tod += kDay;
  } else if (tod >= kDay) {
    day += 1;
    tod -= kDay;
  }
  return {static_cast<int64_t>(day), tod};
}

bool WorksOn(const config::Shift& s, int64_t day, int weekday0) {
  const int64_t weekday = ((day + weekday0) % 7 + 7) % 7;
  return (s.days >> weekday) & 1u;
}

// SplitMix64: a site's own stream for its staffing draws.
struct SplitMix {
  uint64_t state;
  uint64_t operator()() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
};

}  // namespace

bool OnShift(const config::SiteConfig& site, double t, int weekday0) {
  if (site.shifts.empty()) return true;
  const LocalTime lt = Local(t, site.utc_offset);
  for (const auto& s : site.shifts) {
    // An overnight shift belongs to the day it starts: after midnight it is the day before's.
    const bool in = s.start <= s.end
                        ? (lt.tod >= s.start && lt.tod < s.end && WorksOn(s, lt.day, weekday0))
                        : ((lt.tod >= s.start && WorksOn(s, lt.day, weekday0)) ||
                           (lt.tod < s.end && WorksOn(s, lt.day - 1, weekday0)));
    if (in) return true;
  }
  return false;
}

double NextShiftStart(const config::SiteConfig& site, double t, int weekday0) {
  double best = kInf;
  const double local = t + site.utc_offset;
  const int64_t day = static_cast<int64_t>(std::floor(local / kDay));
  for (const auto& s : site.shifts) {
    // Every shift works on some day of the week: one starts within the next 8 days.
    for (int64_t d = 0; d <= 7; ++d) {
      if (!WorksOn(s, day + d, weekday0)) continue;
      const double at = static_cast<double>(day + d) * kDay + s.start - site.utc_offset;
      if (at > t) best = std::min(best, at);
    }
  }
  return best;
}

// Each site's crisis staffing, drawn once from its own stream (seed, site), in a fixed order.
void Model::DrawStaffing(uint64_t seed) {
  staffing_.assign(setup_.sites.size(), {});
  duty_memo_.assign(setup_.sites.size(), {});
  if (setup_.hypervisor.enabled) {
    // The organisation's one repair script, on a stream of its own.
    SplitMix rng{seed ^ 0x4879706572766973ULL};
    rng();
    script_delay_ = setup_.hypervisor.script_ready.Sample(rng);
  }
  for (size_t s = 0; s < setup_.sites.size(); ++s) {
    const config::CrisisStaffing& c = setup_.sites[s].crisis;
    SiteStaffing& st = staffing_[s];
    if (c.known_at) st.known_at = *c.known_at;
    if (!c.any()) continue;
    SplitMix rng{seed ^ (0x5eed57aff0000000ULL + s)};
    rng();
    const auto people = [&](const config::Distribution& d) {
      return static_cast<int>(std::max<int64_t>(0, std::llround(d.Sample(rng))));
    };
    if (c.extended_hours) st.extended_after = c.extended_hours->Sample(rng);
    if (c.call_in) {
      st.call_in_after = c.call_in->after.Sample(rng);
      st.call_in = people(c.call_in->technicians);
    }
    if (c.outside_help) {
      st.outside_after = c.outside_help->after.Sample(rng);
      st.outside = people(c.outside_help->technicians);
    }
  }
}

// The site knows from its `from` time or, without one, its first crash (the earliest reported:
// the VM lab may hear a later crash first). Its changes go on the agenda, so waiting hosts are
// woken when its technicians start working around the clock or more of them arrive.
void Model::SiteKnows(int site, double at) {
  if (site < 0) return;
  const size_t s = static_cast<size_t>(site);
  const config::CrisisStaffing& c = setup_.sites[s].crisis;
  if (!c.any()) return;
  SiteStaffing& st = staffing_[s];
  if (!c.known_at && at < st.known_at) {
    st.known_at = at;
    st.scheduled = false;
    duty_memo_[s] = {};
  }
  if (st.scheduled) return;
  st.scheduled = true;
  for (double after : {st.extended_after, st.call_in_after, st.outside_after}) {
    if (after == kInf) continue;
    // A change before this crash (a `from` time long past) has happened: nobody of the site
    // waited for it yet, but its wake-up must not go back in time.
    const double when = std::max(at, st.known_at + after);
    driver_->Schedule(when, Signal{Signal::kShift, static_cast<uint32_t>(site), 0});
  }
}

const Model::DutyMemo& Model::Duty(size_t s, double t) const {
  DutyMemo& m = duty_memo_[s];
  if (m.at == t) return m;
  const SiteStaffing& st = staffing_[s];
  int n = setup_.sites[s].technicians;
  if (t >= st.known_at + st.call_in_after) n += st.call_in;
  if (t >= st.known_at + st.outside_after) n += st.outside;
  m.at = t;
  m.technicians = n;
  m.on_duty =
      t >= st.known_at + st.extended_after || OnShift(setup_.sites[s], t, options_.weekday0);
  m.next_shift = std::numeric_limits<double>::quiet_NaN();
  return m;
}

double Model::NextShift(size_t s, double t) const {
  const DutyMemo& m = Duty(s, t);
  if (std::isnan(m.next_shift))
    duty_memo_[s].next_shift = NextShiftStart(setup_.sites[s], t, options_.weekday0);
  return m.next_shift;
}

int Model::Technicians(int site, double t) const {
  return Duty(static_cast<size_t>(site), t).technicians;
}

bool Model::OnDuty(int site, double t) const { return Duty(static_cast<size_t>(site), t).on_duty; }

// The order of checks decides what a host is said to wait for when several things are missing.
std::optional<Wait> Model::TryAcquire(uint32_t i, const config::StepConfig& step, double at) {
  HostRecord& h = hosts_[i];
  const Profile& p = profile(i);
  const config::SiteConfig* site = Site(i);
  const size_t s = static_cast<size_t>(std::max(p.site, 0));
  // Nobody takes anything for a step whose tool does not exist yet.
  if (ToolReadyAt(step) > at) return Wait::kTool;
  const bool want_hypervisor = Needs(step, Resource::kHypervisor) && !h.holds_hypervisor;
  if (want_hypervisor) ScriptRequested(at);
  if (!h.admitted && runbook_.parallelism > 0 && remediating_ >= runbook_.parallelism)
    return Wait::kSlot;
  // A technician in person, or a console session (which may join a console technician's).
  const bool want_session = WantsSession(i, step);
  const bool want_person = Needs(step, Resource::kTechnician) && !h.holds_technician;
  const bool joins = want_session && site && JoinsConsoleTechnician(s);
  // A host going from its console to itself in person brings its console technician if that
  // one has no other session.
  const int brings = want_person && h.holds_session && site &&
                     sessions_[s] - 1 <= (console_techs_[s] - 1) * site->consoles_per_technician;
  if (want_person || want_session) {
    if (!site || (!joins && technicians_busy_[s] - brings >= Technicians(p.site, at)))
      return Wait::kTechnician;
    if (!OnDuty(p.site, at)) {
      ScheduleShift(p.site, NextShift(s, at));
      return Wait::kTechnicianOffShift;
    }
  }
  if (Needs(step, Resource::kRemoteConsole) && !p.oob_console) return Wait::kRemoteConsole;
  if (want_session && SessionsCapped(s)) return Wait::kRemoteConsole;
  const bool want_usb = Needs(step, Resource::kUsbStick) && !h.holds_usb;
  if (want_usb && (!site || usb_in_use_[s] >= site->usb_sticks)) return Wait::kUsbStick;
  // Only encrypted hosts need a key (config.h: the need is skipped for the others).
  if (Needs(step, Resource::kKeyEscrow) && p.bitlocker && !escrow_up_) return Wait::kKeyEscrow;
  if (Needs(step, Resource::kPxeServer) && !setup_.pxe) return Wait::kPxeServer;
  if (want_hypervisor && at < script_ready_at_) return Wait::kHypervisorScript;
  if (want_hypervisor && !HypervisorFree()) return Wait::kHypervisor;
  // Everything is there: take it.
  if (!h.admitted) {
    h.admitted = true;
    remediating_++;
  }
  if (want_person) {
    ReleaseSession(i, at);  // from the console to the host itself: one technician, in person
    technicians_busy_[s]++;
    h.holds_technician = true;
    h.technician_since = at;
  }
  if (want_session) {
    if (!joins) {
      technicians_busy_[s]++;
      console_techs_[s]++;
    }
    sessions_[s]++;
    h.holds_session = true;
    h.technician_since = at;
  }
  if (want_usb) {
    usb_in_use_[s]++;
    h.holds_usb = true;
  }
  if (want_hypervisor) {
    hypervisor_busy_++;
    h.holds_hypervisor = true;
  }
  return std::nullopt;
}

// Hosts that waited for the script now wait for a slot (the figures tell the two apart).
void Model::ScriptReady(double at) {
  script_ready_noted_ = true;
  hypervisor_q_.ForEach([&](const WaitKey& key) {
    HostRecord& h = hosts_[key.host];
    if (!h.waiting || h.waiting_for != Wait::kHypervisorScript) return;
    h.waited[static_cast<int>(Wait::kHypervisorScript)] +=
        static_cast<float>(std::max(0.0, at - h.wait_since));
    h.waiting_for = Wait::kHypervisor;
    h.wait_since = at;
    driver_->WaitsFor(key.host, CurrentStep(key.host), Wait::kHypervisor, at);
  });
}

// The admins start on the script when the first host asks for it; hosts that wait for it are
// woken when it is ready.
void Model::ScriptRequested(double at) {
  if (script_ready_at_ != kInf) return;
  script_ready_at_ = at + script_delay_;
  if (script_delay_ > 0) driver_->Schedule(script_ready_at_, Signal{Signal::kWake, 0, 0});
}

// Whether acquiring `step` takes something other hosts may want (a slot, a technician, a stick):
// only then does the order among hosts asking at the same time matter, and the host joins the
// queue. A host that already holds what the step needs, or needs nothing, acquires at once.
bool Model::TakesShared(uint32_t i, const config::StepConfig& step, double at) const {
  const HostRecord& h = hosts_[i];
  const Profile& p = profile(i);
  if (ToolReadyAt(step) > at) return true;
  if (!h.admitted && runbook_.parallelism > 0) return true;
  if (Needs(step, Resource::kTechnician) && !h.holds_technician) return true;
  if (WantsSession(i, step)) return true;
  if (Needs(step, Resource::kUsbStick) && !h.holds_usb) return true;
  if (Needs(step, Resource::kRemoteConsole) && !p.oob_console) return true;
  if (Needs(step, Resource::kKeyEscrow) && p.bitlocker && !escrow_up_) return true;
  if (Needs(step, Resource::kPxeServer) && !setup_.pxe) return true;
  if (Needs(step, Resource::kHypervisor) && !h.holds_hypervisor) return true;
  return false;
}

void Model::Block(uint32_t i, Wait why, const config::StepConfig& step) {
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
      if (has_site) (WantsSession(i, CurrentStep(i)) ? console_q_ : technician_q_)[s].insert(key);
      return;
    case Wait::kUsbStick:
      if (has_site) usb_q_[s].insert(key);
      return;
    case Wait::kKeyEscrow:
      escrow_q_.insert(key);
      return;
    case Wait::kHypervisorScript:
    case Wait::kHypervisor:
      hypervisor_q_.insert(key);
      return;
    case Wait::kTool: {
      // One signal at the moment it is published, for every host that waits for it then.
      const double ready = ToolReadyAt(step);
      WaitQueue& q = tool_q_[ready];
      if (q.empty()) driver_->Schedule(ready, Signal{Signal::kTool, 0, 0});
      q.insert(key);
      return;
    }
    case Wait::kRemoteConsole:
      // A host with a console waits for a session; one without never gets one.
      if (has_site && profile(i).oob_console) console_q_[s].insert(key);
      return;
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
  if (!script_ready_noted_ && at >= script_ready_at_) ScriptReady(at);
  while (true) {
    WaitQueue* best = nullptr;
    auto consider = [&](WaitQueue& q, bool open) {
      if (!open || q.empty()) return;
      if (!best || q.front() < best->front()) best = &q;
    };
    consider(turn_q_, true);
    consider(slot_q_, runbook_.parallelism == 0 || remediating_ < runbook_.parallelism);
    consider(escrow_q_, escrow_up_);
    consider(hypervisor_q_, at >= script_ready_at_ && HypervisorFree());
    for (auto& [ready, q] : tool_q_) {
      if (ready > at) break;
      consider(q, true);
    }
    for (size_t s = 0; s < sites; ++s) {
      const int site = static_cast<int>(s);
      consider(technician_q_[s], technicians_busy_[s] < Technicians(site, at) && OnDuty(site, at));
      consider(usb_q_[s], usb_in_use_[s] < setup_.sites[s].usb_sticks);
      consider(console_q_[s], SessionOpen(site, at));
    }
    if (!best) break;
    const uint32_t i = best->front().host;
    best->pop_front();
    Advance(i, at);
  }
  while (!tool_q_.empty() && tool_q_.begin()->first <= at && tool_q_.begin()->second.empty())
    tool_q_.erase(tool_q_.begin());
  // Hosts waiting for a site that is off shift are woken when its next shift starts.
  // (More technicians arriving, or extended hours, wake them through SiteKnows' signals.)
  for (size_t s = 0; s < sites; ++s) {
    const int site = static_cast<int>(s);
    if ((technician_q_[s].empty() && console_q_[s].empty()) || OnDuty(site, at)) continue;
    ScheduleShift(site, NextShift(s, at));
  }
}

void Model::ReleaseSession(uint32_t i, double at) {
  HostRecord& h = hosts_[i];
  if (!h.holds_session) return;
  h.holds_session = false;
  const size_t s = static_cast<size_t>(profile(i).site);
  const int per = setup_.sites[s].consoles_per_technician;
  h.technician_s += std::max(0.0, at - h.technician_since) / per;
  // A console technician is free once the open sessions fit the others.
  if (--sessions_[s] <= (console_techs_[s] - 1) * per) {
    console_techs_[s]--;
    technicians_busy_[s]--;
  }
  RequestWake(at);
}

void Model::ReleaseTechnician(uint32_t i, double at) {
  HostRecord& h = hosts_[i];
  ReleaseSession(i, at);
  if (!h.holds_technician) return;
  h.holds_technician = false;
  h.technician_s += std::max(0.0, at - h.technician_since);
  if (profile(i).site >= 0) technicians_busy_[static_cast<size_t>(profile(i).site)]--;
  RequestWake(at);
}

void Model::ReleaseHypervisor(uint32_t i, double at) {
  HostRecord& h = hosts_[i];
  if (!h.holds_hypervisor) return;
  h.holds_hypervisor = false;
  hypervisor_busy_--;
  RequestWake(at);
}

void Model::ReleaseAll(uint32_t i, double at) {
  HostRecord& h = hosts_[i];
  ReleaseTechnician(i, at);
  ReleaseHypervisor(i, at);
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
    h.waited[static_cast<int>(h.waiting_for)] +=
        static_cast<float>(std::max(0.0, at - h.wait_since));
    h.waiting = false;
    // Leave whatever queue it was in (it is finished or failed).
    const WaitKey key = Key(i);
    turn_q_.erase(key);
    slot_q_.erase(key);
    escrow_q_.erase(key);
    hypervisor_q_.erase(key);
    for (auto& [ready, q] : tool_q_) q.erase(key);
    if (site >= 0) {
      technician_q_[static_cast<size_t>(site)].erase(key);
      console_q_[static_cast<size_t>(site)].erase(key);
      usb_q_[static_cast<size_t>(site)].erase(key);
    }
  }
  RequestWake(at);
}

}  // namespace chaoslab::recovery
