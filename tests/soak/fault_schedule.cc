#include "tests/soak/fault_schedule.h"

#include <fmt/format.h>

#include <algorithm>
#include <random>

namespace chaoslab::soak {
namespace {

using std::chrono::milliseconds;

// Holds, in ms: a full disk and a held lock long enough for guests and the engine to run into
// them; a short libvirtd stop well inside the keepalive (2 s x 5 unanswered), a long one well past.
struct HoldRange {
  int64_t min_ms, max_ms;
};
HoldRange HoldOf(FaultKind kind, bool past_keepalive) {
  switch (kind) {
    case FaultKind::kKillQemu:
      return {0, 0};
    case FaultKind::kStopLibvirtd:
      return past_keepalive ? HoldRange{20'000, 30'000} : HoldRange{2'000, 6'000};
    case FaultKind::kFillDisk:
      return {5'000, 20'000};
    case FaultKind::kLockJournal:
      return {10'000, 60'000};  // the journal waits up to 120 s (kJournalLockWait)
  }
  return {0, 0};
}

}  // namespace

std::string_view FaultName(FaultKind kind) {
  switch (kind) {
    case FaultKind::kKillQemu:
      return "kill-qemu";
    case FaultKind::kStopLibvirtd:
      return "stop-libvirtd";
    case FaultKind::kFillDisk:
      return "fill-disk";
    case FaultKind::kLockJournal:
      return "lock-journal";
  }
  return "?";
}

std::vector<Fault> MakeSchedule(const ScheduleOptions& o) {
  std::vector<Fault> faults;
  const milliseconds start = o.warmup, end = o.length - o.tail;
  if (end <= start) return faults;
  std::vector<Fault> spread, last;
  auto add = [](std::vector<Fault>& to, int n, FaultKind kind, bool past = false) {
    for (int i = 0; i < n; ++i) {
      Fault f;
      f.kind = kind;
      f.past_keepalive = past;
      to.push_back(f);
    }
  };
  add(spread, o.kills, FaultKind::kKillQemu);
  add(spread, o.fills, FaultKind::kFillDisk);
  add(spread, o.locks, FaultKind::kLockJournal);
  if (o.libvirt) {
    add(spread, o.short_stops, FaultKind::kStopLibvirtd);
    add(last, o.long_stops, FaultKind::kStopLibvirtd, true);
    for (int i = 0; i < o.hangs; ++i) {
      Fault f;
      f.kind = FaultKind::kStopLibvirtd;
      f.past_keepalive = f.until_end = true;
      last.push_back(f);
    }
  }
  std::mt19937_64 rng(o.seed);
  std::shuffle(spread.begin(), spread.end(), rng);
  faults = spread;
  faults.insert(faults.end(), last.begin(), last.end());
  if (faults.empty()) return faults;
  const milliseconds slot = (end - start) / static_cast<int64_t>(faults.size());
  for (size_t i = 0; i < faults.size(); ++i) {
    Fault& f = faults[i];
    const milliseconds slot_start = start + slot * static_cast<int64_t>(i);
    f.at = slot_start + milliseconds(std::uniform_int_distribution<int64_t>(
                            0, std::max<int64_t>(0, slot.count() / 2))(rng));
    const HoldRange range = HoldOf(f.kind, f.past_keepalive);
    // What is left of the slot, less a breath before the next fault.
    const int64_t room = (slot_start + slot - f.at).count() - 2'000;
    const int64_t max_hold = std::max<int64_t>(range.min_ms, std::min(range.max_ms, room));
    f.hold = milliseconds(std::uniform_int_distribution<int64_t>(range.min_ms, max_hold)(rng));
    f.pick = static_cast<uint32_t>(rng());
    f.target = o.hypervisors > 0 ? static_cast<int>(rng() % o.hypervisors) : 0;
    if (f.until_end) {
      f.hold = milliseconds(0);  // until chaoslab has exited
      // The hypervisor a long stop already cost its hosts: the rest of the fleet keeps looping.
      for (const Fault& earlier : faults)
        if (earlier.past_keepalive && !earlier.until_end) f.target = earlier.target;
    }
  }
  return faults;
}

std::string Describe(const Fault& f) {
  const double hold = f.hold.count() / 1000.0;
  switch (f.kind) {
    case FaultKind::kKillQemu:
      return "kill-qemu";
    case FaultKind::kStopLibvirtd:
      if (f.until_end)
        return fmt::format("stop-libvirtd hv{} until the run has ended", f.target + 1);
      return fmt::format("stop-libvirtd hv{} for {:.1f} s ({} the keepalive)", f.target + 1, hold,
                         f.past_keepalive ? "past" : "within");
    case FaultKind::kFillDisk:
      return fmt::format("fill-disk for {:.1f} s", hold);
    case FaultKind::kLockJournal:
      return fmt::format("lock-journal for {:.1f} s", hold);
  }
  return "?";
}

ScheduleOptions DefaultOptions(bool libvirt, std::chrono::seconds length, uint64_t seed) {
  ScheduleOptions o;
  o.seed = seed;
  o.length = length;
  o.libvirt = libvirt;
  if (libvirt) {
    o.kills = 2;
    o.fills = 2;
    o.locks = 2;
    o.short_stops = 3;
    o.long_stops = 1;
    o.hangs = 1;
  }
  return o;
}

}  // namespace chaoslab::soak
