// KeyEscrow::LoadFromFile: the golden Windows image's recovery-password.txt into the escrow.
#include "lab/content_server/key_escrow.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace chaoslab {
namespace {

namespace fs = std::filesystem;

// Each group a multiple of 11 below 720896, as BitLocker makes them.
const char kValid[] = "111111-222222-333333-444444-555555-666666-700007-123453";

class KeyEscrowFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = fs::temp_directory_path() / ("escrow-" + std::to_string(getpid()) + ".txt");
  }
  void TearDown() override { fs::remove(path_); }
  void Write(const std::string& text) { std::ofstream(path_, std::ios::binary) << text; }
  fs::path path_;
  KeyEscrow escrow_;
};

TEST_F(KeyEscrowFileTest, ClonesOfOneGoldenImageShareItsPassword) {
  Write(std::string(kValid) + "\r\n");  // as Windows' escrow POST may end it
  ASSERT_TRUE(escrow_.LoadFromFile("win-01", path_.string()).ok());
  ASSERT_TRUE(escrow_.LoadFromFile("win-02", path_.string()).ok());
  EXPECT_EQ(*escrow_.Lookup("win-01"), kValid);
  EXPECT_EQ(*escrow_.Lookup("win-02"), kValid);
  EXPECT_EQ(escrow_.Lookup("win-03").status().code(), ErrorCode::kNotFound);
}

TEST_F(KeyEscrowFileTest, WhatIsNotAPasswordIsRefusedWithoutQuotingIt) {
  for (const std::string bad :
       {"", "111111-222222-333333-444444-555555-666666-700007",     // 7 groups
        "111111-222222-333333-444444-555555-666666-700007-123456",  // 123456 % 11 != 0
        "111111-222222-333333-444444-555555-666666-777777-123453",  // 777777 >= 720896
        "111111 222222 333333 444444 555555 666666 700007 123453"}) {
    Write(bad);
    Status s = escrow_.LoadFromFile("win-01", path_.string());
    EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find(path_.string()), std::string::npos);
    if (!bad.empty()) {
      EXPECT_EQ(s.message().find(bad.substr(0, 13)), std::string::npos);
    }
  }
  EXPECT_EQ(escrow_.Lookup("win-01").status().code(), ErrorCode::kNotFound);
  fs::remove(path_);
  Status s = escrow_.LoadFromFile("win-01", path_.string());
  EXPECT_EQ(s.code(), ErrorCode::kNotFound);
  EXPECT_NE(s.message().find(path_.string()), std::string::npos);
}

}  // namespace
}  // namespace chaoslab
