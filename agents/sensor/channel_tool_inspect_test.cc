// InspectBytes: inspect without a file, as lab/fuzz drives it.
#include <gtest/gtest.h>

#include <sstream>

#include "agents/sensor/channel_tool.h"

namespace chaoslab::content {
namespace {

std::string NotRun(const SensorVersion&, const ChannelFile&) { return "not run"; }

// Regression (lab/fuzz oracle): criterion values were printed raw, so a channel file could send
// escape sequences to the terminal of whoever inspected it.
TEST(ChannelToolInspectTest, ValuesFromTheFileArePrintedEscaped) {
  ChannelFile file;
  file.content_version = 3;
  file.instances.push_back({1, {Criterion::Match(1, "a\x1b]0;owned\x07\"\\\xff")}});
  std::ostringstream out;
  EXPECT_EQ(InspectBytes("x.sys", EncodeChannelFile(file).value(), out, NotRun), 0);
  const std::string text = out.str();
  EXPECT_NE(text.find(R"("a\x1b]0;owned\x07\"\\\xff")"), std::string::npos) << text;
  for (char c : text) EXPECT_TRUE(c == '\n' || (c >= 0x20 && c < 0x7f)) << int(c);
}

TEST(ChannelToolInspectTest, UndecodableBytesExitWith1) {
  std::ostringstream out;
  EXPECT_EQ(InspectBytes("C-00000291-00000000-00000002.sys", "CSCF\x01", out, NotRun), 1);
  EXPECT_NE(out.str().find("name: channel 291, version 2"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("decode: "), std::string::npos) << out.str();
}

}  // namespace
}  // namespace chaoslab::content
