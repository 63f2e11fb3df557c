// Channel files: the sensor's content updates, written by the lab and read by the guest sensor.
//
// Binary layout, all integers little-endian:
//
//   offset  size  field
//   0       4     magic "CSCF" (43 53 43 46)
//   4       2     format version, currently 1
//   6       2     template type id (see template_types.h)
//   8       4     channel number (291)
//   12      4     content version
//   16      4     instance count
//   20      4     body length: bytes of instance records after this 28-byte header
//   24      4     CRC-32 (IEEE 802.3) of bytes [0, 24) followed by the body
//   28      ...   body: `instance count` instance records, back to back:
//                   4  instance id
//                   2  criterion count
//                   then per criterion:
//                     2  field number (1-based input of the template type)
//                     1  kind: 0 = wildcard, 1 = value (a glob; '*' matches any run)
//                     2  value length (must be 0 for a wildcard)
//                     n  value bytes
//
// The body must be consumed exactly and the file must end right after it. Decoding checks every
// length before reading, so any input yields a ChannelFile or Corruption("... at byte N ...").
// Free functions over plain values: thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "agents/sensor/template_types.h"
#include "lab/common/status.h"

namespace chaoslab::content {

inline constexpr uint32_t kChannel291 = 291;
inline constexpr uint16_t kChannelFormatVersion = 1;
inline constexpr size_t kChannelHeaderSize = 28;

// One criterion of a template instance: a wildcard (the input is not even read) or a value.
struct Criterion {
  uint16_t field = 0;  // 1-based input number
  bool wildcard = true;
  std::string value;  // empty for wildcards

  static Criterion Any(uint16_t field) { return {field, true, {}}; }
  static Criterion Match(uint16_t field, std::string glob) {
    return {field, false, std::move(glob)};
  }
  bool operator==(const Criterion&) const = default;
};

struct TemplateInstance {
  uint32_t id = 0;
  std::vector<Criterion> criteria;
  bool operator==(const TemplateInstance&) const = default;
};

struct ChannelFile {
  uint16_t format_version = kChannelFormatVersion;
  uint16_t template_type = kIpcTemplateTypeId;
  uint32_t channel = kChannel291;
  uint32_t content_version = 0;
  std::vector<TemplateInstance> instances;
  bool operator==(const ChannelFile&) const = default;
};

// Fails with InvalidArgument when a field does not fit its encoding (e.g. a value over 64 KiB).
Result<std::string> EncodeChannelFile(const ChannelFile& file);
Result<ChannelFile> DecodeChannelFile(std::string_view bytes);
uint32_t Crc32(std::string_view bytes, uint32_t crc = 0);

// "C-00000291-00000000-00000042.sys" for version 42.
std::string ChannelFileName(uint32_t content_version, uint32_t channel = kChannel291);
struct ChannelFileId {
  uint32_t channel = 0;
  uint32_t content_version = 0;
};
// Accepts exactly the form ChannelFileName produces (no directories); InvalidArgument otherwise.
Result<ChannelFileId> ParseChannelFileName(std::string_view name);

// The channel files the lab can publish.
enum class ChannelFileKind {
  kGood,        // IPC instances, field 21 wildcard (like the April 2024 instances): harmless
  kChannel291,  // the good instances plus one with a value on field 21: the 19 July 2024 file
  kTruncated,   // a good file cut short
  kZeroed,      // all zero bytes, the size of a good file
  kBadMagic,    // a good file whose magic is wrong
};
std::string_view ChannelFileKindName(ChannelFileKind kind);  // "good", "channel-291", ...
Result<ChannelFileKind> ParseChannelFileKind(std::string_view name);
// The decoded form of the good instances (kGood) or of the 291 file (kChannel291).
ChannelFile MakeChannelContent(bool with_field_21_value, uint32_t content_version);
// The bytes of a channel file of `kind`.
std::string MakeChannelFile(ChannelFileKind kind, uint32_t content_version);

}  // namespace chaoslab::content
