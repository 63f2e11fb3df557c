// What a QMP event of a guest's QEMU means to the lab. Both VM backends hear the same QEMU events
// (the QEMU backend on its own QMP socket, the libvirt backend through libvirt-qemu) and report
// them as the same host events; this is that one reading.
//
// Thread-safety: a plain function.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "lab/backend/backend.h"

namespace chaoslab {

struct QmpEventMeaning {
  // The host event to report, with its detail: GUEST_PANICKED → kPanicked (the event's data JSON),
  // RESET → kReset ("guest" or "host"), STOP → kStopped, RESUME → kResumed, SHUTDOWN (other than
  // for a reset) → kShutdown ("guest" or "host"). Empty for anything else.
  std::optional<HostEventKind> event;
  std::string detail;
  // QEMU runs with resets turned into shutdowns (-action reboot=shutdown, -no-reboot), so a reset
  // arrives as SHUTDOWN "guest-reset" or "host-qmp-system-reset": then "guest" or "host", and no
  // event (the backend restarts the machine and reports kReset itself).
  std::string reset_by;
};

// `data` is the event's "data" member (null or anything else when it has none).
QmpEventMeaning ReadQmpEvent(std::string_view name, const nlohmann::json& data);

}  // namespace chaoslab
