#include "agents/bde/dm_crypt.h"

#include <gtest/gtest.h>
#include <linux/dm-ioctl.h>

#include <cstring>

namespace chaoslab::bde {
namespace {

CryptTarget Sample(const std::vector<uint8_t>& key) {
  CryptTarget t;
  t.name = "winsim-c";
  t.backing_major = 254;
  t.backing_minor = 16;
  t.offset_sectors = 2048;
  t.sectors = 67584;
  t.cipher = "aes-xts-plain64";
  t.key = key;
  return t;
}

TEST(DmCryptTest, TableParamsAreWhatDmCryptExpects) {
  std::vector<uint8_t> key(64);
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(i);
  std::string params = CryptTableParams(Sample(key));
  EXPECT_EQ(params,
            "aes-xts-plain64 "
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
            "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
            " 0 254:16 2048");
}

TEST(DmCryptTest, TableLoadBufferHasOneCryptTarget) {
  std::vector<uint8_t> key(64, 0xab);
  CryptTarget t = Sample(key);
  std::vector<uint8_t> buf = BuildTableLoad(t);
  ASSERT_GE(buf.size(), sizeof(dm_ioctl) + sizeof(dm_target_spec));
  EXPECT_EQ(buf.size() % 8, 0u);
  dm_ioctl io;
  std::memcpy(&io, buf.data(), sizeof io);
  EXPECT_EQ(io.version[0], 4u);
  EXPECT_EQ(io.data_size, buf.size());
  EXPECT_EQ(io.data_start, sizeof(dm_ioctl));
  EXPECT_EQ(io.target_count, 1u);
  EXPECT_TRUE(io.flags & DM_SECURE_DATA_FLAG);
  EXPECT_STREQ(io.name, "winsim-c");
  dm_target_spec spec;
  std::memcpy(&spec, buf.data() + io.data_start, sizeof spec);
  EXPECT_EQ(spec.sector_start, 0u);
  EXPECT_EQ(spec.length, 67584u);
  EXPECT_STREQ(spec.target_type, "crypt");
  const char* params = reinterpret_cast<const char*>(buf.data() + io.data_start + sizeof spec);
  EXPECT_EQ(std::string(params), CryptTableParams(t));
  EXPECT_LE(io.data_start + sizeof spec + std::strlen(params) + 1, buf.size());
}

TEST(DmCryptTest, RefusesBadNamesBeforeTouchingTheKernel) {
  std::vector<uint8_t> key(64);
  CryptTarget t = Sample(key);
  for (const char* bad : {"", "a/b", "../x", "name with space"}) {
    t.name = bad;
    auto r = ActivateCryptMapping(t, "/nonexistent");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument) << bad;
  }
  t.name = "ok-name";
  auto r = ActivateCryptMapping(t, "/nonexistent");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kIoError);
  EXPECT_NE(r.status().message().find("/nonexistent/mapper/control"), std::string::npos);
}

}  // namespace
}  // namespace chaoslab::bde
