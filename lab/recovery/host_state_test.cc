#include "lab/recovery/host_state.h"

#include <gtest/gtest.h>

#include <vector>

namespace chaoslab {
namespace {

TEST(HostStateTest, BootLoopPathIsLegal) {
  HostState at = HostState::kProvisioning;
  for (HostState s :
       {HostState::kBooting, HostState::kHealthy, HostState::kCrashed, HostState::kBooting,
        HostState::kBootLoop, HostState::kRemediating, HostState::kRecovered}) {
    EXPECT_TRUE(IsLegalTransition(at, s)) << HostStateName(at) << " > " << HostStateName(s);
    at = s;
  }
  EXPECT_EQ(HostStateName(HostState::kBootLoop), "boot-loop");
}

TEST(HostStateTest, IllegalTransitionsAreRefused) {
  EXPECT_FALSE(IsLegalTransition(HostState::kProvisioning, HostState::kRecovered));
  EXPECT_FALSE(IsLegalTransition(HostState::kHealthy, HostState::kRecovered));
  EXPECT_FALSE(IsLegalTransition(HostState::kRemediating, HostState::kBooting));
  EXPECT_FALSE(IsLegalTransition(HostState::kFailed, HostState::kBooting));
  // A VM can vanish in any state but once: lost is final.
  for (HostState s :
       {HostState::kProvisioning, HostState::kHealthy, HostState::kRemediating, HostState::kFailed})
    EXPECT_TRUE(IsLegalTransition(s, HostState::kLost)) << HostStateName(s);
  EXPECT_FALSE(IsLegalTransition(HostState::kLost, HostState::kLost));
  EXPECT_FALSE(IsLegalTransition(HostState::kLost, HostState::kBooting));
}

TEST(HostStateTest, OnlyFailedAndLostAreTerminal) {
  std::vector<HostState> terminal;
  for (HostState s : {HostState::kProvisioning, HostState::kBooting, HostState::kHealthy,
                      HostState::kCrashed, HostState::kBootLoop, HostState::kRemediating,
                      HostState::kRecovered, HostState::kFailed, HostState::kLost})
    if (IsTerminal(s)) terminal.push_back(s);
  EXPECT_EQ(terminal, (std::vector<HostState>{HostState::kFailed, HostState::kLost}));
}

}  // namespace
}  // namespace chaoslab
