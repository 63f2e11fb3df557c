// The host lifecycle, one state machine shared by every backend (DESIGN.md, "Host lifecycle").
//
//   provisioning → booting → healthy → crashed → booting → … → boot-loop → remediating
//                                                              → recovered | failed | lost
// A host is in boot-loop after 2 crashes without reaching healthy in between. "lost" means its VM
// or hypervisor vanished. Illegal transitions are refused, so a bug in the engine shows up as an
// error instead of a wrong figure.
#pragma once

#include <functional>
#include <string_view>

#include "lab/common/status.h"

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

// Not thread-safe. The listener is called after every change.
class HostStateMachine {
 public:
  using Listener = std::function<void(HostState from, HostState to)>;
  explicit HostStateMachine(Listener listener = nullptr) : listener_(std::move(listener)) {}

  HostState state() const { return state_; }
  // Same state → no-op. Illegal → FailedPrecondition naming both states.
  Status MoveTo(HostState next);

 private:
  HostState state_ = HostState::kProvisioning;
  Listener listener_;
};

}  // namespace chaoslab
