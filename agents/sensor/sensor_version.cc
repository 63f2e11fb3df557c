#include "agents/sensor/sensor_version.h"

#include <array>
#include <cstdio>

namespace chaoslab::content {
namespace {

std::string Describe(const TemplateInstance& instance, const Criterion& c,
                     const TemplateType& type) {
  return "instance " + std::to_string(instance.id) + " has a " +
         (c.wildcard ? "wildcard" : "value") + " criterion on field " + std::to_string(c.field) +
         " (" + std::string(type.FieldName(c.field)) + ")";
}

// Accepts criteria on any field in 1..limit; `reason` names the failure.
std::optional<Rejection> CheckFields(const ChannelFile& file, const TemplateType& type,
                                     uint16_t limit, bool wildcards_exempt, std::string_view reason,
                                     std::string_view why) {
  for (const TemplateInstance& instance : file.instances) {
    for (const Criterion& c : instance.criteria) {
      if (c.field > type.declared_fields()) {
        return Rejection{"field-not-declared",
                         Describe(instance, c, type) + " but " + std::string(type.name) +
                             " declares " + std::to_string(type.declared_fields()) + " fields"};
      }
      if (c.field > limit && !(wildcards_exempt && c.wildcard)) {
        return Rejection{std::string(reason),
                         Describe(instance, c, type) + std::string(why) + std::to_string(limit)};
      }
    }
  }
  return std::nullopt;
}

// 7.11: trusts the template type's declared field count. Field 21 passes.
class DeclaredFieldsValidator final : public ContentValidator {
 public:
  std::optional<Rejection> Validate(const ChannelFile& file, const TemplateType& type,
                                    uint16_t) const override {
    return CheckFields(file, type, type.declared_fields(), false, "field-not-declared", "");
  }
};

// 7.11-fixed: a value criterion must be on an input the sensor really supplies. A wildcard on an
// unsupplied field is harmless (it is never read), so the April 2024 files stay valid.
class SuppliedInputsValidator final : public ContentValidator {
 public:
  std::optional<Rejection> Validate(const ChannelFile& file, const TemplateType& type,
                                    uint16_t supplied_inputs) const override {
    return CheckFields(file, type, supplied_inputs, true, "criterion-on-unsupplied-field",
                       " but the sensor supplies only inputs 1..");
  }
};

// 7.11: indexes the input array with the field number. Reading input 21 of 20 is out of bounds.
class UncheckedFetch final : public InputFetch {
 public:
  const InputValue* Fetch(const InputValue* inputs, size_t, uint32_t field) const override {
    return &inputs[field - 1];
  }
};

class BoundsCheckedFetch final : public InputFetch {
 public:
  const InputValue* Fetch(const InputValue* inputs, size_t supplied,
                          uint32_t field) const override {
    if (field == 0 || field > supplied) return nullptr;
    return &inputs[field - 1];
  }
};

const DeclaredFieldsValidator kDeclaredFieldsValidator;
const SuppliedInputsValidator kSuppliedInputsValidator;
const UncheckedFetch kUncheckedFetch;
const BoundsCheckedFetch kBoundsCheckedFetch;

constexpr std::array<uint16_t, 0> kNoTemplateTypes = {};
constexpr std::array<uint16_t, 1> kIpcTemplateTypes = {kIpcTemplateTypeId};

const std::array<SensorVersion, 3> kVersions = {
    SensorVersion{"7.10", kNoTemplateTypes, kIpcSuppliedInputs, &kDeclaredFieldsValidator,
                  &kUncheckedFetch},
    SensorVersion{"7.11", kIpcTemplateTypes, kIpcSuppliedInputs, &kDeclaredFieldsValidator,
                  &kUncheckedFetch},
    SensorVersion{"7.11-fixed", kIpcTemplateTypes, kIpcSuppliedInputs, &kSuppliedInputsValidator,
                  &kBoundsCheckedFetch},
};

}  // namespace

bool SensorVersion::Supports(uint16_t template_type) const {
  for (uint16_t id : template_types) {
    if (id == template_type) return true;
  }
  return false;
}

const SensorVersion* FindSensorVersion(std::string_view name) {
  for (const SensorVersion& v : kVersions) {
    if (v.name == name) return &v;
  }
  return nullptr;
}

std::span<const SensorVersion> AllSensorVersions() { return kVersions; }

std::optional<Rejection> CheckContent(const SensorVersion& sensor, const ChannelFile& file) {
  if (file.channel != kChannel291) {
    return Rejection{"wrong-channel",
                     "the file is for channel " + std::to_string(file.channel) + ", not 291"};
  }
  const TemplateType* type = FindTemplateType(file.template_type);
  if (type == nullptr || !sensor.Supports(file.template_type)) {
    char id[8];
    std::snprintf(id, sizeof id, "0x%04x", file.template_type);
    return Rejection{"template-type-not-supported",
                     "sensor " + std::string(sensor.name) + " has no template type " + id +
                         (type ? " (" + std::string(type->name) + "); content ignored" : "")};
  }
  return sensor.validator->Validate(file, *type, sensor.ipc_inputs_supplied);
}

}  // namespace chaoslab::content
