#include "lab/backend/guest_clock.h"

#if defined(__x86_64__)
#include <x86intrin.h>
#endif
#include <time.h>

#include <chrono>
#include <fstream>
#include <thread>

namespace chaoslab {

GuestClock GuestClockFor(std::string_view accel, const HostSpec& spec) {
  return accel == "tcg" && !spec.kernel.empty() ? GuestClock::kInstructions : GuestClock::kWall;
}

std::vector<std::string> GuestClockArgs(GuestClock clock) {
  if (clock == GuestClock::kWall) return {};
  // align=off: guest time may run ahead of the wall clock (it must not wait for the host).
  return {"-icount", "shift=" + std::to_string(kIcountShift) + ",sleep=on,align=off"};
}

std::string GuestClockName(GuestClock clock) {
  return clock == GuestClock::kWall ? "wall" : "icount-shift" + std::to_string(kIcountShift);
}

int GuestTscKhz(GuestClock clock, std::string_view accel) {
  if (clock == GuestClock::kInstructions) return 1'000'000;
  return accel == "tcg" ? HostTscKhz() : 0;
}

int HostTscKhz() {
#if defined(__x86_64__)
  static const int khz = [] {
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string line;
    while (std::getline(cpuinfo, line) && !line.starts_with("flags")) {
    }
    const std::string flags = " " + line + " ";
    if (flags.find(" constant_tsc ") == std::string::npos ||
        flags.find(" nonstop_tsc ") == std::string::npos) {
      return 0;
    }
    // A TSC read between two clock reads, twice, 20 ms apart: the error is ~1 µs in 20 ms.
    auto sample = [](uint64_t* tsc) {
      timespec before{}, after{};
      clock_gettime(CLOCK_MONOTONIC_RAW, &before);
      *tsc = __rdtsc();
      clock_gettime(CLOCK_MONOTONIC_RAW, &after);
      return (before.tv_sec + after.tv_sec) * 500'000'000.0 +
             (before.tv_nsec + after.tv_nsec) / 2.0;
    };
    uint64_t tsc0 = 0, tsc1 = 0;
    const double ns0 = sample(&tsc0);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const double ns1 = sample(&tsc1);
    const double value = static_cast<double>(tsc1 - tsc0) / (ns1 - ns0) * 1e6;
    return value > 1e5 && value < 2e7 ? static_cast<int>(value + 0.5) : 0;  // 0.1 to 20 GHz
  }();
  return khz;
#else
  return 0;
#endif
}

std::string KernelCmdline(const HostSpec& spec, BootTarget boot, int tsc_khz) {
  // Boot-time savers measured in images/winsim/README.md (TCG has no use for CPU mitigations).
  std::string append =
      "console=ttyS0 quiet panic=-1 mitigations=off tsc=reliable no_timer_check cryptomgr.notests";
  if (tsc_khz > 0) append += " tsc_early_khz=" + std::to_string(tsc_khz);
  for (const auto& word : spec.kernel_args) append += " " + word;
  append += " winsim.boot=" + std::string(BootTargetWord(boot));
  return append;
}

}  // namespace chaoslab
