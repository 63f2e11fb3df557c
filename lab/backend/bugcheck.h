// Windows stop codes from the hypervisor's crash report.
//
// A Windows guest that sees the Hyper-V crash enlightenment (libvirt <panic model='hyperv'/>, QEMU
// -cpu ...,hv-crash) writes its bugcheck to the crash MSRs P0..P4 before it writes the dump: P0 the
// stop code, P1..P4 its four parameters. QEMU reports them in GUEST_PANICKED as
//   {"action": "pause", "info": {"type": "hyper-v", "arg1": 80, "arg2": ..., ..., "arg5": ...}}
// (arg1 = P0 ...), and libvirt writes the same numbers to the domain's log as
//   panic hyper-v: arg1='0x50', arg2='0xffffd00000000000', arg3='0x0', arg4='0xfffff8012345678',
//   arg5='0x0'
// This file turns either into a stop code name with its parameters, and into the `@@bugcheck` line
// the engine already reads from winsim guests (docs/GUEST-PROTOCOL.md), so that one path journals
// the stop code of both kinds of guest.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace chaoslab {

struct Bugcheck {
  uint64_t code = 0;                 // the stop code (P0, QEMU's arg1)
  std::array<uint64_t, 4> params{};  // bugcheck parameters 1..4 (P1..P4, QEMU's arg2..arg5)
  std::string name;  // e.g. "PAGE_FAULT_IN_NONPAGED_AREA"; BUGCHECK_0x... if unknown
};

// The symbolic name Microsoft's bug check reference gives `code`, or "" if this table lacks it.
// Holds the three stop codes of July 2024 (FACTS.md) and the common ones a driver fault gives.
std::string_view StopCodeName(uint64_t code);

// Decodes a GUEST_PANICKED event: its data object (what the backends put in kPanicked's detail) or
// the whole QMP event with "data". nullopt when it carries no Hyper-V information (pvpanic from a
// winsim guest has none) or is not JSON.
std::optional<Bugcheck> DecodeGuestPanicked(std::string_view event_json);

// Decodes libvirt's log form ("hyper-v: arg1='0x50', arg2=..."), e.g. a line of
// /var/log/libvirt/qemu/<domain>.log. nullopt if the text holds no hyper-v panic.
std::optional<Bugcheck> DecodeLibvirtPanicLog(std::string_view text);

// "@@bugcheck code=0x00000050 name=PAGE_FAULT_IN_NONPAGED_AREA p1=0x... p2=0x... p3=0x... p4=0x...
// via=hyperv": the guest-protocol line for this bugcheck (code with at least 8 hex digits, as
// winsim prints it).
std::string BugcheckSignalLine(const Bugcheck& bugcheck);

}  // namespace chaoslab
