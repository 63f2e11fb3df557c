#include "agents/sensor/channel_file.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>

namespace chaoslab::content {
namespace {

constexpr std::string_view kMagic = "CSCF";
constexpr size_t kInstanceMinSize = 6;   // id + criterion count
constexpr size_t kCriterionMinSize = 5;  // field + kind + value length
constexpr uint8_t kKindWildcard = 0;
constexpr uint8_t kKindValue = 1;

void PutU8(std::string& out, uint8_t v) { out.push_back(static_cast<char>(v)); }
void PutU16(std::string& out, uint16_t v) {
  PutU8(out, v & 0xff);
  PutU8(out, v >> 8);
}
void PutU32(std::string& out, uint32_t v) {
  PutU16(out, v & 0xffff);
  PutU16(out, v >> 16);
}

// Bounds-checked little-endian reader over [begin, end) of a byte string.
class Reader {
 public:
  Reader(std::string_view bytes, size_t pos, size_t end) : bytes_(bytes), pos_(pos), end_(end) {}

  size_t pos() const { return pos_; }
  size_t left() const { return end_ - pos_; }

  Status Need(size_t n, std::string_view what) const {
    if (left() >= n) return Status::Ok();
    return Status::Corruption("channel file truncated: " + std::string(what) + " at byte " +
                              std::to_string(pos_) + " needs " + std::to_string(n) +
                              " bytes, only " + std::to_string(left()) + " left");
  }
  uint8_t U8() { return static_cast<uint8_t>(bytes_[pos_++]); }
  uint16_t U16() {
    uint16_t lo = U8();
    return static_cast<uint16_t>(lo | (U8() << 8));
  }
  uint32_t U32() {
    uint32_t lo = U16();
    return lo | (static_cast<uint32_t>(U16()) << 16);
  }
  std::string Bytes(size_t n) {
    std::string out(bytes_.substr(pos_, n));
    pos_ += n;
    return out;
  }

 private:
  std::string_view bytes_;
  size_t pos_;
  size_t end_;
};

Status CorruptAt(size_t at, std::string what) {
  return Status::Corruption("channel file " + what + " at byte " + std::to_string(at));
}

Result<Criterion> DecodeCriterion(Reader& in) {
  RETURN_IF_ERROR(in.Need(kCriterionMinSize, "criterion"));
  Criterion c;
  const size_t field_at = in.pos();
  c.field = in.U16();
  if (c.field == 0) return CorruptAt(field_at, "has criterion on field 0 (fields are 1-based)");
  const size_t kind_at = in.pos();
  const uint8_t kind = in.U8();
  if (kind != kKindWildcard && kind != kKindValue) {
    return CorruptAt(kind_at, "has unknown criterion kind " + std::to_string(kind));
  }
  c.wildcard = kind == kKindWildcard;
  const size_t length_at = in.pos();
  const uint16_t length = in.U16();
  if (c.wildcard && length != 0) {
    return CorruptAt(length_at,
                     "has wildcard criterion with value length " + std::to_string(length));
  }
  RETURN_IF_ERROR(in.Need(length, "criterion value"));
  c.value = in.Bytes(length);
  return c;
}

Result<TemplateInstance> DecodeInstance(Reader& in) {
  RETURN_IF_ERROR(in.Need(kInstanceMinSize, "instance record"));
  TemplateInstance instance;
  instance.id = in.U32();
  const uint16_t count = in.U16();
  instance.criteria.reserve(std::min<size_t>(count, in.left() / kCriterionMinSize));
  for (uint16_t i = 0; i < count; ++i) {
    ASSIGN_OR_RETURN(Criterion c, DecodeCriterion(in));
    instance.criteria.push_back(std::move(c));
  }
  return instance;
}

// The good IPC instances: well-known offensive-tooling pipe names on field 1, everything else a
// wildcard, including field 21 (the April 2024 instances looked like this and never read it).
constexpr std::array<std::string_view, 3> kPipeGlobs = {
    "\\\\.\\pipe\\postex_*", "\\\\.\\pipe\\msagent_*", "\\\\.\\pipe\\MSSE-*-server"};

TemplateInstance IpcInstance(uint32_t id, std::string_view pipe_glob, bool value_on_21) {
  TemplateInstance instance{id, {}};
  instance.criteria.push_back(Criterion::Match(1, std::string(pipe_glob)));
  for (uint16_t field = 2; field <= kIpcDeclaredFields; ++field) {
    instance.criteria.push_back(Criterion::Any(field));
  }
  if (value_on_21) instance.criteria.back() = Criterion::Match(kIpcDeclaredFields, "*");
  return instance;
}

}  // namespace

uint32_t Crc32(std::string_view bytes, uint32_t crc) {
  crc = ~crc;
  for (char ch : bytes) {
    crc ^= static_cast<uint8_t>(ch);
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

Result<std::string> EncodeChannelFile(const ChannelFile& file) {
  std::string body;
  for (const TemplateInstance& instance : file.instances) {
    if (instance.criteria.size() > UINT16_MAX) {
      return Status::InvalidArgument("instance " + std::to_string(instance.id) + " has " +
                                     std::to_string(instance.criteria.size()) +
                                     " criteria; at most 65535 fit");
    }
    PutU32(body, instance.id);
    PutU16(body, static_cast<uint16_t>(instance.criteria.size()));
    for (const Criterion& c : instance.criteria) {
      if (c.field == 0) {
        return Status::InvalidArgument("instance " + std::to_string(instance.id) +
                                       " has a criterion on field 0; fields are 1-based");
      }
      if (c.wildcard && !c.value.empty()) {
        return Status::InvalidArgument("instance " + std::to_string(instance.id) +
                                       ": a wildcard criterion cannot carry a value");
      }
      if (c.value.size() > UINT16_MAX) {
        return Status::InvalidArgument("instance " + std::to_string(instance.id) +
                                       ": criterion value longer than 65535 bytes");
      }
      PutU16(body, c.field);
      PutU8(body, c.wildcard ? kKindWildcard : kKindValue);
      PutU16(body, static_cast<uint16_t>(c.value.size()));
      body += c.value;
    }
  }
  if (body.size() > UINT32_MAX - kChannelHeaderSize || file.instances.size() > UINT32_MAX) {
    return Status::InvalidArgument("channel file body too large");
  }
  std::string out(kMagic);
  PutU16(out, file.format_version);
  PutU16(out, file.template_type);
  PutU32(out, file.channel);
  PutU32(out, file.content_version);
  PutU32(out, static_cast<uint32_t>(file.instances.size()));
  PutU32(out, static_cast<uint32_t>(body.size()));
  const uint32_t crc = Crc32(body, Crc32(out));
  PutU32(out, crc);
  return out + body;
}

Result<ChannelFile> DecodeChannelFile(std::string_view bytes) {
  Reader header(bytes, 0, bytes.size());
  RETURN_IF_ERROR(header.Need(kChannelHeaderSize, "header"));
  if (bytes.substr(0, kMagic.size()) != kMagic) return CorruptAt(0, "has bad magic");
  header.Bytes(kMagic.size());
  ChannelFile file;
  file.format_version = header.U16();
  if (file.format_version != kChannelFormatVersion) {
    return CorruptAt(4, "has unsupported format version " + std::to_string(file.format_version));
  }
  file.template_type = header.U16();
  file.channel = header.U32();
  file.content_version = header.U32();
  const uint32_t instance_count = header.U32();
  const uint32_t body_length = header.U32();
  const uint32_t stored_crc = header.U32();
  if (body_length != bytes.size() - kChannelHeaderSize) {
    return CorruptAt(20, "declares body length " + std::to_string(body_length) + " but has " +
                             std::to_string(bytes.size() - kChannelHeaderSize) +
                             " bytes after the header");
  }
  Reader body(bytes, kChannelHeaderSize, bytes.size());
  file.instances.reserve(std::min<size_t>(instance_count, body_length / kInstanceMinSize));
  for (uint32_t i = 0; i < instance_count; ++i) {
    ASSIGN_OR_RETURN(TemplateInstance instance, DecodeInstance(body));
    file.instances.push_back(std::move(instance));
  }
  if (body.left() != 0) {
    return CorruptAt(body.pos(), "has " + std::to_string(body.left()) +
                                     " trailing bytes after the last instance");
  }
  const uint32_t crc = Crc32(bytes.substr(kChannelHeaderSize), Crc32(bytes.substr(0, 24)));
  if (crc != stored_crc) {
    char text[80];
    std::snprintf(text, sizeof text, "has CRC 0x%08x but its bytes hash to 0x%08x", stored_crc,
                  crc);
    return CorruptAt(24, text);
  }
  return file;
}

std::string ChannelFileName(uint32_t content_version, uint32_t channel) {
  char name[40];
  std::snprintf(name, sizeof name, "C-%08u-00000000-%08u.sys", channel, content_version);
  return name;
}

Result<ChannelFileId> ParseChannelFileName(std::string_view name) {
  auto bad = [&] {
    return Status::InvalidArgument("'" + std::string(name) +
                                   "' is not a channel file name C-<channel:8>-00000000-"
                                   "<version:8>.sys");
  };
  // C-CCCCCCCC-00000000-VVVVVVVV.sys
  if (name.size() != 32 || !name.starts_with("C-") || name.substr(10, 10) != "-00000000-" ||
      !name.ends_with(".sys")) {
    return bad();
  }
  auto number = [](std::string_view digits, uint32_t* out) {
    if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return false;
    }
    return std::from_chars(digits.data(), digits.data() + digits.size(), *out).ec == std::errc();
  };
  ChannelFileId id;
  if (!number(name.substr(2, 8), &id.channel) || !number(name.substr(20, 8), &id.content_version)) {
    return bad();
  }
  return id;
}

std::string_view ChannelFileKindName(ChannelFileKind kind) {
  switch (kind) {
    case ChannelFileKind::kGood:
      return "good";
    case ChannelFileKind::kChannel291:
      return "channel-291";
    case ChannelFileKind::kTruncated:
      return "truncated";
    case ChannelFileKind::kZeroed:
      return "zeroed";
    case ChannelFileKind::kBadMagic:
      return "bad-magic";
  }
  return "unknown";
}

Result<ChannelFileKind> ParseChannelFileKind(std::string_view name) {
  for (auto kind :
       {ChannelFileKind::kGood, ChannelFileKind::kChannel291, ChannelFileKind::kTruncated,
        ChannelFileKind::kZeroed, ChannelFileKind::kBadMagic}) {
    if (ChannelFileKindName(kind) == name) return kind;
  }
  return Status::InvalidArgument("unknown channel file kind '" + std::string(name) +
                                 "' (expected good, channel-291, truncated, zeroed, bad-magic)");
}

ChannelFile MakeChannelContent(bool with_field_21_value, uint32_t content_version) {
  ChannelFile file;
  file.content_version = content_version;
  uint32_t id = 1001;
  for (std::string_view glob : kPipeGlobs) file.instances.push_back(IpcInstance(id++, glob, false));
  if (with_field_21_value) {
    file.instances.push_back(IpcInstance(id, "\\\\.\\pipe\\*", true));
  }
  return file;
}

std::string MakeChannelFile(ChannelFileKind kind, uint32_t content_version) {
  const bool is_291 = kind == ChannelFileKind::kChannel291;
  // The built-in content always fits the format.
  std::string bytes = EncodeChannelFile(MakeChannelContent(is_291, content_version)).value();
  switch (kind) {
    case ChannelFileKind::kGood:
    case ChannelFileKind::kChannel291:
      break;
    case ChannelFileKind::kTruncated:
      bytes.resize(bytes.size() / 2);
      break;
    case ChannelFileKind::kZeroed:
      bytes.assign(bytes.size(), '\0');
      break;
    case ChannelFileKind::kBadMagic:
      bytes.replace(0, 4, "XSCF");
      break;
  }
  return bytes;
}

}  // namespace chaoslab::content
