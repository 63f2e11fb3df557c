// `chaoslab gc` through the real binary, without guests: it removes only what the lab made (a run
// folder carrying the marker of a run whose orchestrator is gone), and refuses a runtime root it
// cannot trust (a symlink, another user's folder, a folder others can write such as /tmp).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/integration/lab_harness.h"

namespace chaoslab::testing {
namespace {

namespace fs = std::filesystem;

class GcCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = lab_.runtime_root();
    fs::create_directories(root_);
    fs::permissions(root_, fs::perms::owner_all, fs::perm_options::replace);
  }
  // A folder the lab did not make, two hours old, with a file in it.
  std::string MakePrecious(const std::string& root) {
    const std::string precious = root + "/precious";
    fs::create_directories(precious);
    std::ofstream(precious + "/keep.txt") << "not the lab's\n";
    fs::last_write_time(precious, fs::file_time_type::clock::now() - std::chrono::hours(2));
    return precious;
  }
  Result<ProcessOutput> Gc(const std::string& runtime_dir) {
    setenv("CHAOSLAB_RUNTIME_DIR", runtime_dir.c_str(), 1);
    auto r = lab_.Run({"gc"}, std::chrono::seconds(60));
    setenv("CHAOSLAB_RUNTIME_DIR", root_.c_str(), 1);
    return r;
  }

  LabHarness lab_;
  std::string root_;
};

// Issue 15, case 1: `gc: precious: removed (orchestrator pid 0 is gone)`.
TEST_F(GcCommandTest, FolderTheLabDidNotMakeSurvives) {
  const std::string precious = MakePrecious(root_);
  auto gc = Gc(root_);
  ASSERT_TRUE(gc.ok());
  EXPECT_EQ(gc->exit_code, 0) << gc->out << gc->err;
  EXPECT_TRUE(fs::exists(precious + "/keep.txt")) << gc->out;
  EXPECT_EQ(gc->out.find("precious: removed"), std::string::npos) << gc->out;
}

TEST_F(GcCommandTest, SymlinkedRootIsRefused) {
  const std::string precious = MakePrecious(root_);
  const std::string link = (lab_.dir() / "link").string();
  fs::create_directory_symlink(root_, link);
  auto gc = Gc(link);
  ASSERT_TRUE(gc.ok());
  EXPECT_NE(gc->exit_code, 0) << gc->out;
  EXPECT_NE(gc->err.find(link), std::string::npos) << gc->err;
  EXPECT_NE(gc->err.find("symlink"), std::string::npos) << gc->err;
  EXPECT_TRUE(fs::exists(precious + "/keep.txt")) << gc->out;
}

// CHAOSLAB_RUNTIME_DIR pointing at a shared folder such as /tmp (mode 1777).
TEST_F(GcCommandTest, SharedRootIsRefused) {
  const std::string shared = (lab_.dir() / "shared-tmp").string();
  fs::create_directories(shared);
  ASSERT_EQ(chmod(shared.c_str(), 01777), 0);
  const std::string precious = MakePrecious(shared);
  auto gc = Gc(shared);
  ASSERT_TRUE(gc.ok());
  EXPECT_NE(gc->exit_code, 0) << gc->out;
  EXPECT_NE(gc->err.find(shared), std::string::npos) << gc->err;
  EXPECT_NE(gc->err.find("writable"), std::string::npos) << gc->err;
  EXPECT_TRUE(fs::exists(precious + "/keep.txt")) << gc->out;
}

TEST_F(GcCommandTest, RootOfAnotherUserIsRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to give a folder to another user";
  const std::string precious = MakePrecious(root_);
  ASSERT_EQ(chown(root_.c_str(), 65534, 65534), 0);  // nobody
  auto gc = Gc(root_);
  ASSERT_TRUE(gc.ok());
  EXPECT_NE(gc->exit_code, 0) << gc->out;
  EXPECT_NE(gc->err.find(root_), std::string::npos) << gc->err;
  EXPECT_NE(gc->err.find("owned by uid 65534"), std::string::npos) << gc->err;
  EXPECT_TRUE(fs::exists(precious + "/keep.txt")) << gc->out;
}

}  // namespace
}  // namespace chaoslab::testing
