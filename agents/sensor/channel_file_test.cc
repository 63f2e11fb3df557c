#include "agents/sensor/channel_file.h"

#include <gtest/gtest.h>

#include <random>

namespace chaoslab::content {
namespace {

// Rewrites the CRC so that a hand-damaged body reaches the structural checks.
std::string WithFixedCrc(std::string bytes) {
  const uint32_t crc = Crc32(bytes.substr(kChannelHeaderSize), Crc32(bytes.substr(0, 24)));
  for (int i = 0; i < 4; ++i) bytes[24 + i] = static_cast<char>((crc >> (8 * i)) & 0xff);
  return bytes;
}

void ExpectCorruptAtByte(std::string_view bytes, std::string_view fragment = "") {
  auto decoded = DecodeChannelFile(bytes);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), ErrorCode::kCorruption) << decoded.status().ToString();
  EXPECT_NE(decoded.status().message().find("at byte "), std::string::npos)
      << decoded.status().ToString();
  EXPECT_NE(decoded.status().message().find(fragment), std::string::npos)
      << decoded.status().ToString();
}

TEST(ChannelFileTest, RoundTripsGoodAnd291Content) {
  for (bool with_21 : {false, true}) {
    const ChannelFile original = MakeChannelContent(with_21, 42);
    auto bytes = EncodeChannelFile(original);
    ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
    auto decoded = DecodeChannelFile(*bytes);
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    EXPECT_EQ(*decoded, original);
    EXPECT_EQ(EncodeChannelFile(*decoded).value(), *bytes);
  }
}

TEST(ChannelFileTest, RoundTripsEmptyAndUnusualValues) {
  ChannelFile file;
  file.channel = 290;
  file.template_type = 0x7777;
  file.content_version = 99999999;
  EXPECT_EQ(DecodeChannelFile(EncodeChannelFile(file).value()).value(), file);
  file.instances.push_back({7, {Criterion::Match(3, std::string("a\0b*", 4)), Criterion::Any(9)}});
  file.instances.push_back({8, {}});
  EXPECT_EQ(DecodeChannelFile(EncodeChannelFile(file).value()).value(), file);
}

TEST(ChannelFileTest, HeaderLayoutIsLittleEndian) {
  const std::string bytes = MakeChannelFile(ChannelFileKind::kGood, 0x01020304);
  EXPECT_EQ(bytes.substr(0, 4), "CSCF");
  EXPECT_EQ(bytes.substr(4, 2), std::string("\x01\x00", 2));           // format 1
  EXPECT_EQ(bytes.substr(6, 2), std::string("\x01\x01", 2));           // type 0x0101
  EXPECT_EQ(bytes.substr(8, 4), std::string("\x23\x01\x00\x00", 4));   // channel 291
  EXPECT_EQ(bytes.substr(12, 4), std::string("\x04\x03\x02\x01", 4));  // version
  EXPECT_EQ(bytes.substr(16, 4), std::string("\x03\x00\x00\x00", 4));  // 3 instances
  const uint32_t body = static_cast<uint32_t>(bytes.size() - kChannelHeaderSize);
  EXPECT_EQ(static_cast<uint8_t>(bytes[20]), body & 0xff);
}

TEST(ChannelFileTest, GoodFileHasWildcardOnField21And291FileHasAValue) {
  const ChannelFile good = DecodeChannelFile(MakeChannelFile(ChannelFileKind::kGood, 1)).value();
  const ChannelFile bad =
      DecodeChannelFile(MakeChannelFile(ChannelFileKind::kChannel291, 2)).value();
  auto value_on_21 = [](const ChannelFile& f) {
    int n = 0;
    for (const auto& instance : f.instances) {
      for (const auto& c : instance.criteria) n += c.field == 21 && !c.wildcard;
    }
    return n;
  };
  EXPECT_EQ(good.template_type, kIpcTemplateTypeId);
  EXPECT_EQ(value_on_21(good), 0);
  EXPECT_EQ(value_on_21(bad), 1);
  EXPECT_EQ(bad.instances.size(), good.instances.size() + 1);
}

TEST(ChannelFileTest, MalformedKindsAreCorruption) {
  ExpectCorruptAtByte(MakeChannelFile(ChannelFileKind::kTruncated, 3), "body length");
  ExpectCorruptAtByte(MakeChannelFile(ChannelFileKind::kZeroed, 3), "bad magic at byte 0");
  ExpectCorruptAtByte(MakeChannelFile(ChannelFileKind::kBadMagic, 3), "bad magic at byte 0");
  EXPECT_EQ(MakeChannelFile(ChannelFileKind::kZeroed, 3).size(),
            MakeChannelFile(ChannelFileKind::kGood, 3).size());
  EXPECT_EQ(MakeChannelFile(ChannelFileKind::kZeroed, 3).find_first_not_of('\0'),
            std::string::npos);
}

TEST(ChannelFileTest, EveryTruncationIsCorruption) {
  const std::string good = MakeChannelFile(ChannelFileKind::kChannel291, 5);
  for (size_t n = 0; n < good.size(); ++n) {
    SCOPED_TRACE(n);
    ExpectCorruptAtByte(std::string_view(good).substr(0, n));
  }
}

TEST(ChannelFileTest, TruncationsWithConsistentLengthsHitRecordChecks) {
  // Cut the body but fix up the header, so the record reader must notice on its own.
  const std::string good = MakeChannelFile(ChannelFileKind::kGood, 5);
  std::mt19937 rng(291);
  for (int round = 0; round < 200; ++round) {
    std::string cut = good.substr(0, kChannelHeaderSize + 1 + rng() % (good.size() - 29));
    const uint32_t body = static_cast<uint32_t>(cut.size() - kChannelHeaderSize);
    for (int i = 0; i < 4; ++i) cut[20 + i] = static_cast<char>((body >> (8 * i)) & 0xff);
    SCOPED_TRACE(cut.size());
    ExpectCorruptAtByte(WithFixedCrc(cut));
  }
}

TEST(ChannelFileTest, RandomMutationsNeverCrashTheDecoder) {
  const std::string good = MakeChannelFile(ChannelFileKind::kChannel291, 5);
  std::mt19937 rng(19072024);
  for (int round = 0; round < 2000; ++round) {
    std::string bytes = good;
    for (int flips = 1 + rng() % 4; flips > 0; --flips) {
      bytes[rng() % bytes.size()] = static_cast<char>(rng());
    }
    if (round % 2) bytes = WithFixedCrc(bytes);
    auto decoded = DecodeChannelFile(bytes);
    if (!decoded.ok()) {
      EXPECT_EQ(decoded.status().code(), ErrorCode::kCorruption);
    }
  }
}

TEST(ChannelFileTest, StructuralErrorsNameTheByte) {
  const std::string good = MakeChannelFile(ChannelFileKind::kGood, 5);
  std::string bytes = good;
  bytes[4] = 2;  // format version
  ExpectCorruptAtByte(bytes, "unsupported format version 2 at byte 4");

  bytes = good;
  bytes[26] ^= 1;  // CRC
  ExpectCorruptAtByte(bytes, "CRC");

  // First criterion of the first instance starts at 28 + 6: field(2) kind(1) length(2).
  bytes = good;
  bytes[34 + 2] = 9;
  ExpectCorruptAtByte(WithFixedCrc(bytes), "unknown criterion kind 9 at byte 36");

  bytes = good;
  bytes[34] = 0;
  bytes[35] = 0;
  ExpectCorruptAtByte(WithFixedCrc(bytes), "field 0");

  // The second criterion is a wildcard: give it a length.
  const size_t second = 34 + 5 + static_cast<uint8_t>(good[37]);
  bytes = good;
  ASSERT_EQ(bytes[second + 2], 0);
  bytes[second + 3] = 1;
  ExpectCorruptAtByte(WithFixedCrc(bytes), "wildcard criterion with value length 1");

  // One instance fewer than the body holds: trailing bytes.
  bytes = good;
  bytes[16] = 2;
  ExpectCorruptAtByte(WithFixedCrc(bytes), "trailing bytes");

  // One instance more than the body holds.
  bytes = good;
  bytes[16] = 4;
  ExpectCorruptAtByte(WithFixedCrc(bytes), "truncated: instance record");

  // A huge instance count must not allocate accordingly.
  bytes = good;
  bytes[19] = '\x7f';
  ExpectCorruptAtByte(WithFixedCrc(bytes));
}

TEST(ChannelFileTest, EncodeRejectsWhatDoesNotFit) {
  ChannelFile file;
  file.instances.push_back({1, {Criterion::Match(0, "x")}});
  EXPECT_EQ(EncodeChannelFile(file).status().code(), ErrorCode::kInvalidArgument);
  file.instances[0].criteria = {Criterion::Match(1, std::string(70000, 'x'))};
  EXPECT_EQ(EncodeChannelFile(file).status().code(), ErrorCode::kInvalidArgument);
  file.instances[0].criteria = {Criterion{1, true, "x"}};
  EXPECT_EQ(EncodeChannelFile(file).status().code(), ErrorCode::kInvalidArgument);
}

TEST(ChannelFileTest, FileNames) {
  EXPECT_EQ(ChannelFileName(42), "C-00000291-00000000-00000042.sys");
  auto id = ParseChannelFileName("C-00000291-00000000-00000042.sys");
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id->channel, 291u);
  EXPECT_EQ(id->content_version, 42u);
  EXPECT_EQ(ParseChannelFileName(ChannelFileName(7, 290)).value().channel, 290u);
  for (const char* bad : {"", "C-00000291-00000000-0000004a.sys", "C-00000291-00000000-000042.sys",
                          "C-00000291-00000001-00000042.sys", "C-00000291-00000000-00000042.SYS",
                          "../00291-00000000-00000042.sys", "C-+0000291-00000000-00000042.sys",
                          "C-00000291-00000000-00000042.sys.tmp"}) {
    EXPECT_FALSE(ParseChannelFileName(bad).ok()) << bad;
  }
}

TEST(ChannelFileTest, KindNames) {
  for (auto kind :
       {ChannelFileKind::kGood, ChannelFileKind::kChannel291, ChannelFileKind::kTruncated,
        ChannelFileKind::kZeroed, ChannelFileKind::kBadMagic}) {
    EXPECT_EQ(ParseChannelFileKind(ChannelFileKindName(kind)).value(), kind);
  }
  EXPECT_FALSE(ParseChannelFileKind("evil").ok());
}

}  // namespace
}  // namespace chaoslab::content
