#include "lab/backend/backend.h"

namespace chaoslab {

std::string_view HostEventKindName(HostEventKind kind) {
  switch (kind) {
    case HostEventKind::kStarted:
      return "started";
    case HostEventKind::kConsoleLine:
      return "console";
    case HostEventKind::kPanicked:
      return "panicked";
    case HostEventKind::kReset:
      return "reset";
    case HostEventKind::kStopped:
      return "stopped";
    case HostEventKind::kResumed:
      return "resumed";
    case HostEventKind::kShutdown:
      return "shutdown";
    case HostEventKind::kLost:
      return "lost";
  }
  return "unknown";
}

}  // namespace chaoslab
