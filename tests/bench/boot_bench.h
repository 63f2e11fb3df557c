// The "boot" section of chaoslab-bench: real winsim guests under the lab's QEMU backend, for the
// stock Debian kernel and the purpose-built one (images/kernel), one guest at a time except for
// the 16-guest fleet figure. Figures per kernel K (medians; seconds):
//   boot_to_sensor_guest_s_K   guest /proc/uptime on `@@csagent loaded` (healthy content)
//   boot_to_sensor_wall_s_K    Host::Start() to that console line
//   boot_to_bootmgr_guest_s_K  guest uptime on `@@winsim phase=bootmgr` (kernel + init start)
//   crash_cycle_wall_s_K       kPanicked to the next kPanicked of one boot-looping guest
//   first_crash_wall_s_K       Host::Start() to the first kPanicked of that guest
//   fleet16_3cycles_wall_s_K   16 boot-looping guests started together until each panicked 3 times
// and kernel_build_cached_s (kernel_build_scratch_s only when asked: ~8 min of both cores).
//
// Not thread-safe; runs its guests from the calling thread. Every QEMU and temporary file is gone
// when BootSection returns, whatever happened.
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "lab/common/status.h"

namespace chaoslab::bench {

struct BootBenchOptions {
  std::string source_dir;  // repository root (images/…)
  std::string bin_dir;     // csagent and chaoslab-channel
  std::string work_dir;    // parent of the kernel scratch-build folder (needs ~2 GB then)
  std::vector<std::string> kernels = {"custom", "debian"};
  int boots = 5;         // healthy boots per kernel
  int crash_cycles = 5;  // panic-to-panic intervals per kernel
  bool kernel_scratch = false;
};

// Fills `out` with every figure it could measure and returns the first error (the other kernel
// and the other figures are still measured after one fails).
Status BootSection(const BootBenchOptions& options, std::ostream& log, nlohmann::json* out);

// Set from a signal handler: the section stops waiting for guests and cleans up.
void RequestStop();
bool StopRequested();

}  // namespace chaoslab::bench
