// The fault soak's schedule (`make soak`, tests/soak/soak_test.cc): which fault happens when, drawn
// from a seed so that a soak that found something can be run again the same way. Pure: no clock,
// no process; soak_test.cc carries the faults out.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace chaoslab::soak {

enum class FaultKind {
  kKillQemu,      // SIGKILL one QEMU of the run (a random one, `pick` chooses)
  kStopLibvirtd,  // SIGSTOP one libvirtd (`target`) for `hold`, then SIGCONT (libvirt only)
  kFillDisk,      // fill the run folder's file system to ENOSPC, keep it full for `hold`, free it
  kLockJournal,   // another process holds the journal's SQLite lock (BEGIN EXCLUSIVE) for `hold`
};
std::string_view FaultName(FaultKind kind);  // "kill-qemu", "stop-libvirtd", ...

struct Fault {
  std::chrono::milliseconds at{0};  // since the soak's fleet was started
  FaultKind kind = FaultKind::kKillQemu;
  std::chrono::milliseconds hold{0};  // how long a stop, a full disk or a lock lasts
  int target = 0;                     // stop-libvirtd: which hypervisor (0-based)
  uint32_t pick = 0;                  // kill-qemu: which of the run's QEMUs (pick % how many)
  // stop-libvirtd: held longer than the lab's libvirt keepalive (2 s x 5): the lab must count the
  // connection gone and that hypervisor's hosts `lost`. Shorter stops must cost nothing.
  bool past_keepalive = false;
  // stop-libvirtd: held until chaoslab has exited (then continued): the run must end by itself
  // with a hypervisor that hangs, and `gc --inventory` clean up there once it answers again.
  bool until_end = false;
};

struct ScheduleOptions {
  uint64_t seed = 15;
  std::chrono::seconds length{780};  // the whole soak of one backend
  std::chrono::seconds warmup{60};   // no fault before the fleet boot-loops
  std::chrono::seconds tail{60};     // no fault starts in the last `tail`
  bool libvirt = false;
  int hypervisors = 2;
  int kills = 2;  // few: a killed host is lost for good, and the fleet must keep looping
  int fills = 3;
  int locks = 3;
  int short_stops = 0;  // libvirt only
  int long_stops = 0;   // libvirt only; placed after the others
  int hangs = 0;        // libvirt only: stops until the end, last, on the long stops' hypervisor
};

// One fault per slot: [warmup, length - tail) cut into equal slots, the kinds shuffled over them
// (the long libvirtd stops, then the hangs, last, so the hosts they lose are lost late), each
// fault at a random point of the first half of its slot and held for at most the rest of it, so
// faults never overlap (a hang lasts past the end). Sorted by `at`. Empty when there is no room
// (length <= warmup + tail).
std::vector<Fault> MakeSchedule(const ScheduleOptions& options);

// One line for the soak's log: "kill-qemu", "stop-libvirtd hv2 for 4.0 s", ...
std::string Describe(const Fault& fault);

// The soak's default options for one backend of a soak of `length`.
ScheduleOptions DefaultOptions(bool libvirt, std::chrono::seconds length, uint64_t seed);

}  // namespace chaoslab::soak
