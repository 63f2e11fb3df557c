#include "lab/common/secret_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace chaoslab {
namespace {

namespace fs = std::filesystem;

class SecretFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("secret_file_test_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(SecretFileTest, OwnerOnlyWithExactContent) {
  const mode_t old = umask(0);  // even a permissive umask gives 0600
  Status s = WriteSecretFile((dir_ / "tpm.secret").string(), "00c0ffee");
  umask(old);
  ASSERT_TRUE(s.ok()) << s.ToString();
  struct stat st {};
  ASSERT_EQ(stat((dir_ / "tpm.secret").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  std::ifstream in(dir_ / "tpm.secret");
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), "00c0ffee");
}

TEST_F(SecretFileTest, RefusesAnExistingFileOrSymlink) {
  fs::path target = dir_ / "readable-by-all";
  std::ofstream(target) << "";
  fs::create_symlink(target, dir_ / "link");
  EXPECT_FALSE(WriteSecretFile((dir_ / "link").string(), "00").ok());
  EXPECT_FALSE(WriteSecretFile(target.string(), "00").ok());
  EXPECT_EQ(fs::file_size(target), 0u) << "nothing written through the symlink";
}

}  // namespace
}  // namespace chaoslab
