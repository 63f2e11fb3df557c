#include "lab/common/subprocess.h"

#include <gtest/gtest.h>

namespace chaoslab {
namespace {

TEST(SubprocessTest, CapturesOutputAndExitCode) {
  auto r = RunProcess({"sh", "-c", "echo out; echo err >&2; exit 3"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "err\n");
}

TEST(SubprocessTest, ArgumentsAreNotParsedByAShell) {
  auto r = RunProcess({"echo", "a; rm -rf /nonexistent", "$HOME"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out, "a; rm -rf /nonexistent $HOME\n");
}

TEST(SubprocessTest, MissingProgramIsNotFound) {
  auto r = RunProcess({"/nonexistent/program"});
  EXPECT_EQ(r.status().code(), ErrorCode::kNotFound);
}

TEST(SubprocessTest, TimeoutKillsTheChild) {
  auto r = RunProcess({"sleep", "30"}, std::chrono::seconds(1));
  EXPECT_EQ(r.status().code(), ErrorCode::kTimeout);
}

}  // namespace
}  // namespace chaoslab
