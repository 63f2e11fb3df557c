// The host lifecycle, one state machine shared by every backend (DESIGN.md, "Host lifecycle").
//
//   provisioning → booting → healthy → crashed → booting → … → boot-loop → remediating
//                                                              → recovered | failed | lost
// A host is in boot-loop after 2 crashes without reaching healthy in between. "lost" means its VM
// or hypervisor vanished. Illegal transitions are refused, so a bug in the engine shows up as an
// error instead of a wrong figure. The recovery model (recovery.h, Model::Move) is
// the one place that moves a host.
#pragma once

#include <string_view>

namespace chaoslab {

enum class HostState {
  kProvisioning,
  kBooting,
  kHealthy,
  kCrashed,
  kBootLoop,
  kRemediating,
  kRecovered,
  kFailed,
  kLost,
};

std::string_view HostStateName(HostState state);
bool IsLegalTransition(HostState from, HostState to);
// Final for this run: nothing the engine does changes it (except losing the VM).
bool IsTerminal(HostState state);

}  // namespace chaoslab
