// The winsim guest's PID 1 fast path: the normal boot of an unencrypted system disk, done by the
// csagent binary itself (installed as /init) instead of the busybox shell script
// (images/winsim/init, installed as /lib/winsim/init).
//
// Why: under QEMU TCG every piece of code a guest runs for the first time is translated first,
// and each boot starts cold. The shell path (busybox ash, a `mount` process, the sensor's exec and
// C library start-up) cost ~6,800 translated blocks, about 70 ms of guest time per boot, before
// the sensor had loaded its content. This path does the same with system calls and starts the
// sensor with fork() alone (same binary, no exec).
//
// It prints exactly the console lines of the script's normal boot (docs/GUEST-PROTOCOL.md). Every
// other case (winsim.boot other than normal, a cmdline word the script would complain about, the
// stock kernel with modules, no /dev/vda, a BitLocker disk, a volume that does not mount, a BCD
// boot mode other than normal) goes to the script before anything is printed: the boot manager
// leaves /proc, /sys, /dev and /run mounted and the console open, and the script keeps them.
#pragma once

#include <string>
#include <string_view>

#include "agents/sensor/agent.h"
#include "lab/common/status.h"

namespace chaoslab::content {

// The winsim.* words of the kernel command line (the last of a repeated word wins), checked with
// the script's rules. InvalidArgument when the script would print a complaint about one of them.
struct BootWords {
  std::string host = "unknown";
  std::string cloud;  // "" = offline
  std::string poll_ms = "500";
  std::string ipc_ms = "200";
  std::string boot = "normal";
  std::string tpm;
  std::string link;  // "" = unshaped; else link_shaper.h's word
};
Result<BootWords> ParseBootWords(std::string_view cmdline);

// The value of the last `bootmode=` line of a BCD file with carriage returns and spaces removed
// (as the script does); `fallback` when there is none.
std::string BcdBootMode(std::string_view bcd, std::string_view fallback);

// csagent's arguments for these words (what the script passes).
std::vector<std::string> SensorArgs(const BootWords& words, const std::string& root);

// Runs as PID 1: never returns. `sensor_main` runs the sensor in a forked child (its return value
// is the child's exit status).
[[noreturn]] void RunBootManager(int (*sensor_main)(const std::vector<std::string>& args));

}  // namespace chaoslab::content
