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

std::string_view BootTargetWord(BootTarget target) {
  switch (target) {
    case BootTarget::kDisk:
      return "normal";
    case BootTarget::kSafeMode:
      return "safe";
    case BootTarget::kWinRE:
      return "winre";
    case BootTarget::kUsb:
      return "usb";
    case BootTarget::kPxe:
      return "pxe";
    case BootTarget::kRescue:
      return "rescue";
  }
  return "normal";
}

}  // namespace chaoslab
