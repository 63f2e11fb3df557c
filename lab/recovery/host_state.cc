#include "lab/recovery/host_state.h"

#include <string>

namespace chaoslab {

std::string_view HostStateName(HostState state) {
  switch (state) {
    case HostState::kProvisioning:
      return "provisioning";
    case HostState::kBooting:
      return "booting";
    case HostState::kHealthy:
      return "healthy";
    case HostState::kCrashed:
      return "crashed";
    case HostState::kBootLoop:
      return "boot-loop";
    case HostState::kRemediating:
      return "remediating";
    case HostState::kRecovered:
      return "recovered";
    case HostState::kFailed:
      return "failed";
    case HostState::kLost:
      return "lost";
  }
  return "unknown";
}

bool IsLegalTransition(HostState from, HostState to) {
  using S = HostState;
  if (to == S::kLost) return from != S::kLost;  // a VM can vanish in any state
  switch (from) {
    case S::kProvisioning:
      return to == S::kBooting || to == S::kFailed;
    case S::kBooting:
      return to == S::kHealthy || to == S::kCrashed || to == S::kBootLoop || to == S::kRecovered ||
             to == S::kRemediating || to == S::kFailed;
    case S::kHealthy:
      return to == S::kCrashed;
    case S::kCrashed:
      return to == S::kBooting || to == S::kBootLoop || to == S::kRemediating || to == S::kFailed;
    case S::kBootLoop:
      return to == S::kRemediating || to == S::kRecovered || to == S::kFailed;
    case S::kRemediating:
      return to == S::kRecovered || to == S::kFailed;
    case S::kRecovered:
      return to == S::kCrashed;
    case S::kFailed:
    case S::kLost:
      return false;
  }
  return false;
}

bool IsTerminal(HostState state) {
  return state == HostState::kFailed || state == HostState::kLost;
}

}  // namespace chaoslab
