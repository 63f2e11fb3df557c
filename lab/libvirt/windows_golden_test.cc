#include "lab/libvirt/windows_golden.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace chaoslab::libvirt {
namespace {

namespace fs = std::filesystem;

class WindowsGoldenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("golden-test-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Write(const std::string& name, const std::string& bytes) {
    std::ofstream(dir_ / name, std::ios::binary) << bytes;
  }
  // Everything build.sh leaves, with a qcow2 header that is only the magic.
  void MakeComplete() {
    Write("windows.qcow2", std::string("QFI\xfb", 4) + std::string(60, '\0'));
    Write("OVMF_VARS.fd", std::string(4096, '\0'));
    fs::create_directories(dir_ / "tpm");
    Write("tpm/tpm2-00.permall", "state");
    Write("recovery-password.txt", "111111-222222-333333-444444-555555-666666-777777-888888\n");
    Write("admin-password.txt", "s3cret\n");
  }
  std::string Error() {
    auto g = FindWindowsGolden(dir_.string());
    EXPECT_FALSE(g.ok());
    if (g.ok()) return "";
    EXPECT_EQ(g.status().code(), ErrorCode::kFailedPrecondition);
    return g.status().message();
  }
  fs::path dir_;
};

TEST_F(WindowsGoldenTest, CompleteFolderIsFoundWithItsFirmware) {
  if (!fs::exists("/usr/share/OVMF/OVMF_CODE_4M.ms.fd")) GTEST_SKIP() << "no ovmf package";
  MakeComplete();
  auto g = FindWindowsGolden(dir_.string() + "/");
  ASSERT_TRUE(g.ok()) << g.status().message();
  EXPECT_EQ(g->disk, (dir_ / "windows.qcow2").string());
  EXPECT_EQ(g->tpm_state, (dir_ / "tpm").string());
  EXPECT_TRUE(g->secure_boot);
  EXPECT_EQ(g->ovmf_code(), "/usr/share/OVMF/OVMF_CODE_4M.ms.fd");
  Write("image.json", R"({"kind": "windows", "secure_boot": 0})");
  g = FindWindowsGolden(dir_.string());
  ASSERT_TRUE(g.ok()) << g.status().message();
  EXPECT_FALSE(g->secure_boot);
  EXPECT_EQ(g->ovmf_vars_template(), "/usr/share/OVMF/OVMF_VARS_4M.fd");
}

TEST_F(WindowsGoldenTest, EachMissingPartIsNamedWithTheBuildCommand) {
  MakeComplete();
  for (const std::string part :
       {"windows.qcow2", "OVMF_VARS.fd", "tpm", "recovery-password.txt", "admin-password.txt"}) {
    fs::rename(dir_ / part, dir_ / (part + ".away"));
    std::string err = Error();
    EXPECT_NE(err.find((dir_ / part).string() + " is missing"), std::string::npos) << err;
    EXPECT_NE(err.find("images/windows/build.sh --iso YOUR.iso --out " + dir_.string()),
              std::string::npos)
        << err;
    fs::rename(dir_ / (part + ".away"), dir_ / part);
  }
  // An empty TPM folder is no TPM state (swtpm_setup never ran).
  fs::remove_all(dir_ / "tpm");
  fs::create_directories(dir_ / "tpm");
  EXPECT_NE(Error().find("its TPM state"), std::string::npos);
}

TEST_F(WindowsGoldenTest, RawDiskAndAbsentFolderAreRefused) {
  MakeComplete();
  Write("windows.qcow2", std::string(512, '\0'));
  EXPECT_NE(Error().find("is not a qcow2 image"), std::string::npos);
  fs::remove_all(dir_);
  EXPECT_NE(Error().find("the folder " + dir_.string() + " is missing"), std::string::npos);
}

TEST_F(WindowsGoldenTest, DefaultFolderFollowsTheCacheVariable) {
  unsetenv("CHAOSLAB_WINDOWS_DIR");
  setenv("CHAOSLAB_CACHE_DIR", "/x/cache", 1);
  EXPECT_EQ(DefaultWindowsGoldenDir(), "/x/cache/windows");
  unsetenv("CHAOSLAB_CACHE_DIR");
  EXPECT_TRUE(DefaultWindowsGoldenDir().ends_with("/.cache/chaoslab/windows"));
  setenv("CHAOSLAB_WINDOWS_DIR", "/elsewhere/gold", 1);
  EXPECT_EQ(DefaultWindowsGoldenDir(), "/elsewhere/gold");
  unsetenv("CHAOSLAB_WINDOWS_DIR");
}

}  // namespace
}  // namespace chaoslab::libvirt
