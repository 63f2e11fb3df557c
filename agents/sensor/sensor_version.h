// Sensor versions as data plus two small strategies: how content is validated and how the
// interpreter fetches an input. This is the only place where the versions differ.
//
//   7.10        knows no IPC template type: IPC content is ignored (rejected, logged), unaffected.
//   7.11        validator checks criteria against the 21 DECLARED fields, and the interpreter
//   trusts
//               the field number: a value on field 21 reads past the 20 supplied inputs (the bug).
//   7.11-fixed  validator checks against the 20 SUPPLIED inputs, and the interpreter bounds-checks.
//
// All objects are immutable singletons: thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "agents/sensor/channel_file.h"
#include "agents/sensor/template_types.h"
#include "lab/common/status.h"

namespace chaoslab::content {

// Why a sensor refuses content: a dash-separated word for the console line and a sentence.
struct Rejection {
  std::string reason;  // e.g. "criterion-on-unsupplied-field"
  std::string detail;
};

// One input the sensor hands to the content interpreter.
struct InputValue {
  const char* data = nullptr;
  size_t size = 0;
  std::string_view view() const { return {data, size}; }
};

// Strategy: decides whether a decoded file's instances fit the sensor.
class ContentValidator {
 public:
  virtual ~ContentValidator() = default;
  virtual std::optional<Rejection> Validate(const ChannelFile& file, const TemplateType& type,
                                            uint16_t supplied_inputs) const = 0;
};

// Strategy: how the interpreter gets input `field` (1-based) out of `inputs[0..supplied)`.
class InputFetch {
 public:
  virtual ~InputFetch() = default;
  // nullptr when the fetch notices the input is not supplied. An unchecked fetch never does.
  virtual const InputValue* Fetch(const InputValue* inputs, size_t supplied,
                                  uint32_t field) const = 0;
};

struct SensorVersion {
  std::string_view name;                     // as in sensor.ini: "7.11"
  std::span<const uint16_t> template_types;  // template type ids this build understands
  uint16_t ipc_inputs_supplied;              // inputs passed to the interpreter
  const ContentValidator* validator;
  const InputFetch* fetch;

  bool Supports(uint16_t template_type) const;
};

// nullptr for an unknown version name.
const SensorVersion* FindSensorVersion(std::string_view name);
std::span<const SensorVersion> AllSensorVersions();

// The full acceptance check of a decoded channel-291 file: channel, template type, validator.
// nullopt means accepted.
std::optional<Rejection> CheckContent(const SensorVersion& sensor, const ChannelFile& file);

}  // namespace chaoslab::content
