#include "agents/sensor/fuzz/seeds.h"

#include "agents/sensor/channel_file.h"
#include "agents/sensor/content_interpreter.h"

namespace chaoslab::content::fuzz {
namespace {

void PutU16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v & 0xff));
  out.push_back(static_cast<char>(v >> 8));
}
void PutU32(std::string& out, uint32_t v) {
  PutU16(out, v & 0xffff);
  PutU16(out, v >> 16);
}
void SetU32(std::string& bytes, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) bytes[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

std::string WithFixedCrc(std::string bytes) {
  SetU32(bytes, 24, Crc32(bytes.substr(kChannelHeaderSize), Crc32(bytes.substr(0, 24))));
  return bytes;
}

// The built-in content always fits the format, and so does every file made here.
std::string Encode(const ChannelFile& file) { return EncodeChannelFile(file).value(); }

ChannelFile WithInstances(std::vector<TemplateInstance> instances) {
  ChannelFile file;
  file.content_version = 7;
  file.instances = std::move(instances);
  return file;
}

// A channel-291 IPC file around a hand-written body, with a consistent length and CRC, for the
// malformed records that EncodeChannelFile refuses to write.
std::string RawFile(uint32_t instance_count, const std::string& body) {
  std::string out = "CSCF";
  PutU16(out, kChannelFormatVersion);
  PutU16(out, kIpcTemplateTypeId);
  PutU32(out, kChannel291);
  PutU32(out, 7);
  PutU32(out, instance_count);
  PutU32(out, static_cast<uint32_t>(body.size()));
  PutU32(out, 0);
  return WithFixedCrc(out + body);
}

// An instance record header followed by one criterion record.
std::string OneCriterion(uint16_t field, uint8_t kind, uint16_t length, std::string_view value) {
  std::string body;
  PutU32(body, 1);  // instance id
  PutU16(body, 1);  // criterion count
  PutU16(body, field);
  body.push_back(static_cast<char>(kind));
  PutU16(body, length);
  body += value;
  return body;
}

}  // namespace

std::vector<Seed> MakeSeeds() {
  std::vector<Seed> seeds;
  auto add = [&](std::string name, std::string bytes) {
    seeds.push_back({std::move(name), std::move(bytes)});
  };
  // What the lab publishes (chaoslab-channel make KIND).
  add("good", MakeChannelFile(ChannelFileKind::kGood, 1));
  add("channel-291", MakeChannelFile(ChannelFileKind::kChannel291, 2));
  add("truncated", MakeChannelFile(ChannelFileKind::kTruncated, 2));
  add("zeroed", MakeChannelFile(ChannelFileKind::kZeroed, 2));
  add("bad-magic", MakeChannelFile(ChannelFileKind::kBadMagic, 2));

  // Well-formed files at the validators' edges.
  add("empty", Encode(WithInstances({})));
  add("no-criteria", Encode(WithInstances({{5, {}}})));
  add("wildcard-21",
      Encode(WithInstances({{6, {Criterion::Match(1, "\\\\.\\pipe\\*"), Criterion::Any(21)}}})));
  add("value-20", Encode(WithInstances({{7, {Criterion::Match(20, "0")}}})));
  add("value-21", Encode(WithInstances({{8, {Criterion::Match(21, "x")}}})));
  add("wildcard-22", Encode(WithInstances({{9, {Criterion::Any(22)}}})));
  add("value-65535", Encode(WithInstances({{10, {Criterion::Match(65535, "*")}}})));
  ChannelFile other_channel = MakeChannelContent(false, 1);
  other_channel.channel = 290;
  add("channel-290", Encode(other_channel));
  ChannelFile unknown_type = MakeChannelContent(true, 1);
  unknown_type.template_type = 0x9999;
  add("unknown-type", Encode(unknown_type));

  // Globs for the interpreter: every supplied input matched by its own text, then odd patterns.
  TemplateInstance exact{11, {}};
  const IpcNotification sample = IpcNotification::Sample().value();
  for (uint16_t field = 1; field <= sample.size(); ++field) {
    exact.criteria.push_back(
        Criterion::Match(field, std::string(sample.inputs()[field - 1].view())));
  }
  add("matches-sample", Encode(WithInstances({exact})));
  add("globs",
      Encode(WithInstances({
          {12, {Criterion::Match(1, "*"), Criterion::Match(2, "")}},
          {13, {Criterion::Match(1, "**\\pipe\\spool*"), Criterion::Match(2, "C:\\*\\*.exe")}},
          {14, {Criterion::Match(3, "*a*b*c*"), Criterion::Match(4, "24*2")}},
          {15, {Criterion::Match(10, std::string(40, '*') + "SYSTEM")}},
          {16, {Criterion::Match(19, "WS-000?"), Criterion::Match(19, "ws-0001")}},
          {17, {Criterion::Match(20, "0**"), Criterion::Match(12, "**0***")}},  // trailing stars
      })));

  // Damaged files: each reaches one of the decoder's checks.
  std::string bad_crc = MakeChannelFile(ChannelFileKind::kGood, 1);
  bad_crc[24] = static_cast<char>(bad_crc[24] ^ 0x01);
  add("bad-crc", bad_crc);
  std::string bad_length = MakeChannelFile(ChannelFileKind::kGood, 1);
  bad_length[20] = static_cast<char>(bad_length[20] + 1);
  add("bad-length", bad_length);
  std::string trailing = MakeChannelFile(ChannelFileKind::kGood, 1) + '\0';
  SetU32(trailing, 20, static_cast<uint32_t>(trailing.size() - kChannelHeaderSize));
  add("trailing-byte", WithFixedCrc(trailing));
  std::string format_2 = MakeChannelFile(ChannelFileKind::kGood, 1);
  format_2[4] = 2;
  add("format-2", WithFixedCrc(format_2));
  add("field-0", RawFile(1, OneCriterion(0, 1, 1, "x")));
  add("unknown-kind", RawFile(1, OneCriterion(1, 2, 0, "")));
  add("wildcard-with-value", RawFile(1, OneCriterion(21, 0, 1, "x")));
  add("value-overrun", RawFile(1, OneCriterion(1, 1, 100, "x")));
  add("instances-overrun", RawFile(5, OneCriterion(1, 1, 1, "x")));
  add("instance-count-max", RawFile(UINT32_MAX, OneCriterion(1, 1, 1, "x")));
  std::string criteria_overrun = OneCriterion(1, 1, 1, "x");
  criteria_overrun[4] = static_cast<char>(0xff);
  criteria_overrun[5] = static_cast<char>(0xff);
  add("criteria-overrun", RawFile(1, criteria_overrun));

  // The file-name parser reads the same inputs.
  add("file-name", ChannelFileName(42));
  return seeds;
}

}  // namespace chaoslab::content::fuzz
