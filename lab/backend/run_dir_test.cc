// The ownership rule for what the lab creates on disk, on temporary folders.
#include "lab/backend/run_dir.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace chaoslab {
namespace {

namespace fs = std::filesystem;

class RunDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/chaoslab-rundir-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    root_ = dir_ + "/rt";
    ASSERT_EQ(mkdir(root_.c_str(), 0700), 0);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  static pid_t DeadPid() {
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    waitpid(pid, nullptr, 0);
    return pid;
  }

  std::string dir_, root_;
};

TEST_F(RunDirTest, TrustsOnlyARealPrivateFolderOfOurs) {
  EXPECT_TRUE(CheckRuntimeRoot(root_).ok());
  ASSERT_EQ(chmod(root_.c_str(), 0755), 0);
  EXPECT_TRUE(CheckRuntimeRoot(root_).ok()) << "readable by others is fine";

  EXPECT_EQ(CheckRuntimeRoot(dir_ + "/missing").code(), ErrorCode::kNotFound);

  for (mode_t mode : {0775, 0757, 01777}) {
    ASSERT_EQ(chmod(root_.c_str(), mode), 0);
    Status s = CheckRuntimeRoot(root_);
    EXPECT_EQ(s.code(), ErrorCode::kFailedPrecondition) << std::oct << mode;
    EXPECT_NE(s.message().find(root_ + " is writable by"), std::string::npos) << s.ToString();
  }
  ASSERT_EQ(chmod(root_.c_str(), 0700), 0);

  Status foreign = CheckRuntimeRoot(root_, geteuid() + 1);
  EXPECT_EQ(foreign.code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(foreign.message().find("is owned by uid " + std::to_string(geteuid())),
            std::string::npos)
      << foreign.ToString();

  const std::string link = dir_ + "/link";
  fs::create_directory_symlink(root_, link);
  Status s = CheckRuntimeRoot(link);
  EXPECT_EQ(s.code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(s.message().find(link + " is a symlink"), std::string::npos) << s.ToString();
  for (const std::string& spelled : {link + "/", link + "//", link + "/.", root_ + "/../rt"}) {
    EXPECT_EQ(CheckRuntimeRoot(spelled).code(), ErrorCode::kFailedPrecondition) << spelled;
  }

  std::ofstream(dir_ + "/file") << "x";
  EXPECT_EQ(CheckRuntimeRoot(dir_ + "/file").code(), ErrorCode::kFailedPrecondition);
}

TEST_F(RunDirTest, PrepareCreatesAPrivateRootWhateverTheUmask) {
  const mode_t old = umask(0);
  auto made = PrepareRuntimeRoot(dir_ + "/a/b/root");
  umask(old);
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  EXPECT_EQ(*made, dir_ + "/a/b/root");
  struct stat st {};
  ASSERT_EQ(lstat(made->c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  EXPECT_TRUE(PrepareRuntimeRoot(*made).ok()) << "an existing good root is fine";

  fs::create_directory_symlink(*made, dir_ + "/link");
  EXPECT_EQ(PrepareRuntimeRoot(dir_ + "/link").status().code(), ErrorCode::kFailedPrecondition);
}

TEST_F(RunDirTest, MarkerNamesTheRunAndItsOrchestrator) {
  const RunOwner me = ThisProcessOwns("r1");
  EXPECT_EQ(me.pid, getpid());
  EXPECT_FALSE(me.start.empty());
  ASSERT_TRUE(MakeOwnedDir(root_ + "/r1", me).ok());
  struct stat st {};
  ASSERT_EQ(lstat((root_ + "/r1/" + kOwnerMarker).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto back = ReadOwnedDir(root_ + "/r1", "r1");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, me);
  EXPECT_FALSE(OrchestratorGone(*back));

  EXPECT_EQ(MakeOwnedDir(root_ + "/r1", me).code(), ErrorCode::kFailedPrecondition);
  // A marker copied into another run's folder does not make it that run's.
  EXPECT_EQ(ReadOwnedDir(root_ + "/r1", "r2").status().code(), ErrorCode::kFailedPrecondition);
}

TEST_F(RunDirTest, FoldersWithoutAGoodMarkerAreNotOurs) {
  fs::create_directories(root_ + "/precious");
  EXPECT_EQ(ReadOwnedDir(root_ + "/precious", "precious").status().code(), ErrorCode::kNotFound);

  fs::create_directories(root_ + "/garbled");
  std::ofstream(root_ + "/garbled/" + kOwnerMarker) << "hello world\n";
  EXPECT_EQ(ReadOwnedDir(root_ + "/garbled", "garbled").status().code(),
            ErrorCode::kFailedPrecondition);

  // A marker that is a symlink (to a good marker elsewhere) is refused, not followed.
  ASSERT_TRUE(MakeOwnedDir(root_ + "/real", ThisProcessOwns("linked")).ok());
  fs::create_directories(root_ + "/linked");
  fs::create_symlink(root_ + "/real/" + kOwnerMarker, root_ + "/linked/" + kOwnerMarker);
  Status s = ReadOwnedDir(root_ + "/linked", "linked").status();
  EXPECT_EQ(s.code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("symlink"), std::string::npos) << s.ToString();

  // A run folder that is a symlink to a good one.
  fs::create_directory_symlink(root_ + "/real", root_ + "/alias");
  EXPECT_EQ(ReadOwnedDir(root_ + "/alias", "linked").status().code(),
            ErrorCode::kFailedPrecondition);

  if (geteuid() == 0) {  // a marker of another user
    ASSERT_TRUE(MakeOwnedDir(root_ + "/theirs", ThisProcessOwns("theirs")).ok());
    ASSERT_EQ(lchown((root_ + "/theirs/" + kOwnerMarker).c_str(), 65534, 65534), 0);
    EXPECT_EQ(ReadOwnedDir(root_ + "/theirs", "theirs").status().code(),
              ErrorCode::kFailedPrecondition);
  }
}

TEST_F(RunDirTest, OrchestratorGoneWhenThePidIsFreeOrReused) {
  EXPECT_TRUE(OrchestratorGone({"r", DeadPid(), ""}));
  EXPECT_TRUE(OrchestratorGone({"r", getpid(), "1"})) << "our pid, another start: reused";
  EXPECT_FALSE(OrchestratorGone({"r", getpid(), ""}));
  EXPECT_FALSE(OrchestratorGone(ThisProcessOwns("r")));
}

TEST_F(RunDirTest, InsideRunDirRefusesEverythingThatCanLeadOut) {
  ASSERT_TRUE(MakeOwnedDir(root_ + "/old", ThisProcessOwns("old")).ok());
  ASSERT_TRUE(MakeOwnedDir(root_ + "/old/h1", ThisProcessOwns("old")).ok());
  fs::create_directories(dir_ + "/outside");
  fs::create_directory_symlink(dir_ + "/outside", root_ + "/old/h1/link");
  std::ofstream(root_ + "/old/h1/overlay.qcow2") << "x";

  EXPECT_TRUE(CheckInsideRunDir(root_, "old", root_ + "/old/h1/overlay.qcow2").ok());
  EXPECT_TRUE(CheckInsideRunDir(root_, "old", root_ + "/old/h1/tpm").ok()) << "may not exist";
  EXPECT_TRUE(CheckInsideRunDir(root_, "old", root_ + "/old/h1/link").ok()) << "the link itself";
  for (const std::string& bad :
       {dir_ + "/outside/x", root_ + "/old/h1/link/x", root_ + "/old/h1/../../../outside/x",
        root_ + "/old/./h1/overlay.qcow2", root_ + "/other/h1/overlay.qcow2", root_ + "/old", root_,
        std::string("old/h1/overlay.qcow2"), root_ + "/old2/h1"}) {
    EXPECT_EQ(CheckInsideRunDir(root_, "old", bad).code(), ErrorCode::kFailedPrecondition) << bad;
  }
}

}  // namespace
}  // namespace chaoslab
