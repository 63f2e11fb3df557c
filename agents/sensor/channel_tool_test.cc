#include "agents/sensor/channel_tool.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>

namespace chaoslab::content {
namespace {

struct ToolRun {
  int code;
  std::string out;
  std::string err;
};

ToolRun Tool(std::vector<std::string> args) {
  args.insert(args.begin(), "chaoslab-channel");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  std::ostringstream out, err;
  const int code = ChannelToolMain(static_cast<int>(argv.size()), argv.data(), out, err);
  return {code, out.str(), err.str()};
}

class ChannelToolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/channel_tool_test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  std::filesystem::path dir_;
};

TEST_F(ChannelToolTest, MakeAndInspect291) {
  const std::string file = Path("C-00000291-00000000-00000002.sys");
  ToolRun made = Tool({"make", "channel-291", "--version", "2", "-o", file});
  ASSERT_EQ(made.code, 0) << made.err;
  ToolRun seen = Tool({"inspect", file});
  ASSERT_EQ(seen.code, 0) << seen.err;
  EXPECT_NE(seen.out.find("content version: 2"), std::string::npos) << seen.out;
  EXPECT_NE(seen.out.find("field 21 (connection_origin) = \"*\""), std::string::npos) << seen.out;
  EXPECT_NE(seen.out.find("sensor 7.10: rejected (template-type-not-supported"), std::string::npos);
  EXPECT_NE(seen.out.find("sensor 7.11: accepted; FAULTS"), std::string::npos) << seen.out;
  EXPECT_NE(seen.out.find("sensor 7.11-fixed: rejected (criterion-on-unsupplied-field"),
            std::string::npos);
}

TEST_F(ChannelToolTest, InspectGoodRunsOnEveryIpcSensor) {
  const std::string file = Path("good.sys");
  ASSERT_EQ(Tool({"make", "good", "-o", file}).code, 0);
  ToolRun seen = Tool({"inspect", file});
  ASSERT_EQ(seen.code, 0);
  EXPECT_NE(seen.out.find("sensor 7.11: accepted; runs: 3 instances"), std::string::npos)
      << seen.out;
  EXPECT_NE(seen.out.find("sensor 7.11-fixed: accepted; runs"), std::string::npos);
}

TEST_F(ChannelToolTest, InspectCorruptFileFails) {
  const std::string file = Path("zero.sys");
  ASSERT_EQ(Tool({"make", "zeroed", "-o", file}).code, 0);
  ToolRun seen = Tool({"inspect", file});
  EXPECT_EQ(seen.code, 1);
  EXPECT_NE(seen.out.find("bad magic at byte 0"), std::string::npos) << seen.out;
  EXPECT_EQ(Tool({"inspect", Path("missing.sys")}).code, 1);
}

TEST_F(ChannelToolTest, BadCommandLines) {
  EXPECT_EQ(Tool({}).code, 2);
  EXPECT_EQ(Tool({"make", "evil", "-o", Path("x")}).code, 2);
  EXPECT_EQ(Tool({"make", "good"}).code, 2);
  EXPECT_EQ(Tool({"make", "good", "--version", "abc", "-o", Path("x")}).code, 2);
  EXPECT_EQ(Tool({"make", "good", "-o"}).code, 2);
  EXPECT_EQ(Tool({"inspect"}).code, 2);
  EXPECT_EQ(Tool({"make", "good", "-o", Path("no/such/dir/x")}).code, 1);
}

}  // namespace
}  // namespace chaoslab::content
