#include "lab/backend/qmp_events.h"

namespace chaoslab {
namespace {

bool Flag(const nlohmann::json& data, const char* key) {
  return data.is_object() && data.contains(key) && data[key].is_boolean() && data[key].get<bool>();
}

std::string ShutdownReason(const nlohmann::json& data) {
  if (!data.is_object() || !data.contains("reason") || !data["reason"].is_string()) return "";
  return data["reason"].get<std::string>();
}

}  // namespace

QmpEventMeaning ReadQmpEvent(std::string_view name, const nlohmann::json& data) {
  QmpEventMeaning m;
  const std::string by = Flag(data, "guest") ? "guest" : "host";
  if (name == "GUEST_PANICKED") {
    m.event = HostEventKind::kPanicked;
    m.detail = data.dump();
  } else if (name == "RESET") {
    m.event = HostEventKind::kReset;
    m.detail = by;
  } else if (name == "STOP") {
    m.event = HostEventKind::kStopped;
  } else if (name == "RESUME") {
    m.event = HostEventKind::kResumed;
  } else if (name == "SHUTDOWN") {
    const std::string reason = ShutdownReason(data);
    if (reason == "guest-reset") {
      m.reset_by = "guest";
    } else if (reason == "host-qmp-system-reset") {
      m.reset_by = "host";
    } else {
      m.event = HostEventKind::kShutdown;
      m.detail = by;
    }
  }
  return m;
}

}  // namespace chaoslab
