// The catalogue of template types that channel files may carry.
//
// A template type is the schema of a detection: the ordered input fields that a template instance
// puts criteria on. The catalogue is what the content authors (the cloud) know; each sensor version
// separately declares which types it understands and how many inputs it really supplies
// (see sensor_version.h). Immutable data: thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace chaoslab::content {

// Named-pipe (inter-process communication) detection, introduced with sensor 7.11 in Feb 2024.
inline constexpr uint16_t kIpcTemplateTypeId = 0x0101;
// What the IPC template type declares, and what every sensor build actually passes to the
// interpreter: the mismatch at the heart of the Channel File 291 outage.
inline constexpr uint16_t kIpcDeclaredFields = 21;
inline constexpr uint16_t kIpcSuppliedInputs = 20;

struct TemplateType {
  uint16_t id = 0;
  std::string_view name;
  std::span<const std::string_view> fields;  // fields[i] names field i + 1

  uint16_t declared_fields() const { return static_cast<uint16_t>(fields.size()); }
  // The name of 1-based field `field`, or "undeclared" outside 1..declared_fields().
  std::string_view FieldName(uint32_t field) const;
};

// nullptr when `id` is not in the catalogue.
const TemplateType* FindTemplateType(uint16_t id);

}  // namespace chaoslab::content
