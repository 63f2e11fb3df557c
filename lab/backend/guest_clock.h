// The guest's time base, and the kernel command line both VM backends give a winsim guest.
//
// Under TCG without instruction counting, guest time is the lab machine's wall time: a busy
// machine runs fewer guest instructions per second, so the sensor's start and its fetch take
// longer in guest time and the boot race measures the machine's load (issue 16). With
// `-icount shift=0,sleep=on,align=off` every guest instruction is 1 ns of guest time (a 1 GIPS
// machine, the order of a real PC's, whatever the host's speed or load); an idle guest's clock
// runs with the wall clock (sleep=on), so timers and the network profile's delays (netem in the
// guest, agents/sensor/link_shaper.h) take their time in guest time. docs/TIME-BASE.md has the
// figures, and why not shift=6 (a 15.6 MIPS machine whose own CPU work outlasts the race).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "lab/backend/backend.h"

namespace chaoslab {

enum class GuestClock {
  kWall,          // KVM, or an image the lab does not boot by kernel (Windows under UEFI)
  kInstructions,  // TCG with a fixed instruction count per guest nanosecond
};

// log2 of guest nanoseconds per instruction under kInstructions.
inline constexpr int kIcountShift = 0;

// kInstructions for a directly booted kernel (a winsim guest) under TCG; kWall otherwise.
GuestClock GuestClockFor(std::string_view accel, const HostSpec& spec);

// QEMU's arguments for `clock` ({"-icount", "shift=6,sleep=on,align=off"}, or none).
std::vector<std::string> GuestClockArgs(GuestClock clock);

// How reports and calibrations name it: "wall" or "icount-shift6".
std::string GuestClockName(GuestClock clock);

// The TSC frequency the guest kernel is told (`tsc_early_khz=`, skips its calibration): under
// instruction counting QEMU's TSC counts guest nanoseconds (1 GHz); under TCG otherwise the
// host's TSC (HostTscKhz); under KVM nothing (the kernel asks the hypervisor).
int GuestTscKhz(GuestClock clock, std::string_view accel);

// The host's invariant TSC frequency in kHz (measured once against CLOCK_MONOTONIC_RAW), or 0
// when the CPU has no invariant TSC or is not x86-64.
int HostTscKhz();

// The kernel command line of a directly booted guest: the lab's boot-time savers, tsc_early_khz
// when `tsc_khz` > 0, the spec's words and `winsim.boot=` (docs/GUEST-PROTOCOL.md).
std::string KernelCmdline(const HostSpec& spec, BootTarget boot, int tsc_khz);

}  // namespace chaoslab
