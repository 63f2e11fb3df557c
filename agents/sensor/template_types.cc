#include "agents/sensor/template_types.h"

#include <array>

namespace chaoslab::content {
namespace {

constexpr std::array<std::string_view, kIpcDeclaredFields> kIpcFields = {
    "pipe_name",           "server_image",     "client_image",     "server_pid",
    "client_pid",          "access_mask",      "open_mode",        "pipe_mode",
    "max_instances",       "server_user",      "client_user",      "server_session",
    "client_session",      "server_integrity", "client_integrity", "server_command_line",
    "client_command_line", "parent_image",     "host_name",        "remote_flag",
    "connection_origin",  // declared, never supplied by the sensor
};

constexpr std::array<TemplateType, 1> kCatalogue = {
    TemplateType{kIpcTemplateTypeId, "InterProcessCommunication", kIpcFields},
};

}  // namespace

std::string_view TemplateType::FieldName(uint32_t field) const {
  if (field == 0 || field > fields.size()) return "undeclared";
  return fields[field - 1];
}

const TemplateType* FindTemplateType(uint16_t id) {
  for (const TemplateType& type : kCatalogue) {
    if (type.id == id) return &type;
  }
  return nullptr;
}

}  // namespace chaoslab::content
