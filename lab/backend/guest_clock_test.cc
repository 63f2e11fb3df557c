#include "lab/backend/guest_clock.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

namespace chaoslab {
namespace {

HostSpec Winsim() {
  HostSpec spec;
  spec.id = "ws-01";
  spec.kernel = "/images/vmlinux";
  spec.kernel_args = {"winsim.host=ws-01", "winsim.link=20000:2000:0:0:0:0"};
  return spec;
}

TEST(GuestClockTest, InstructionsOnlyForADirectlyBootedKernelUnderTcg) {
  EXPECT_EQ(GuestClockFor("tcg", Winsim()), GuestClock::kInstructions);
  EXPECT_EQ(GuestClockFor("kvm", Winsim()), GuestClock::kWall);
  HostSpec uefi = Winsim();
  uefi.kernel.clear();  // a Windows guest boots its own loader
  EXPECT_EQ(GuestClockFor("tcg", uefi), GuestClock::kWall);
}

TEST(GuestClockTest, IcountWithSleepAndNoAlignment) {
  EXPECT_EQ(GuestClockArgs(GuestClock::kInstructions),
            (std::vector<std::string>{"-icount", "shift=0,sleep=on,align=off"}));
  EXPECT_TRUE(GuestClockArgs(GuestClock::kWall).empty());
  EXPECT_EQ(GuestClockName(GuestClock::kInstructions), "icount-shift0");
  EXPECT_EQ(GuestClockName(GuestClock::kWall), "wall");
}

// Under icount QEMU's TSC counts guest nanoseconds: telling the guest the host's frequency would
// make its clock run slow by that factor.
TEST(GuestClockTest, TscIsOneGigahertzUnderInstructionCounting) {
  EXPECT_EQ(GuestTscKhz(GuestClock::kInstructions, "tcg"), 1'000'000);
  EXPECT_EQ(GuestTscKhz(GuestClock::kWall, "kvm"), 0);
  EXPECT_EQ(GuestTscKhz(GuestClock::kWall, "tcg"), HostTscKhz());
}

TEST(GuestClockTest, KernelCmdlineCarriesTheSpecsWordsAndTheBootTarget) {
  const std::string line = KernelCmdline(Winsim(), BootTarget::kSafeMode, 1'000'000);
  EXPECT_NE(line.find(" tsc_early_khz=1000000 "), std::string::npos) << line;
  EXPECT_NE(line.find(" winsim.host=ws-01 winsim.link=20000:2000:0:0:0:0 winsim.boot=safe"),
            std::string::npos)
      << line;
  EXPECT_EQ(KernelCmdline(Winsim(), BootTarget::kDisk, 0).find("tsc_early_khz"), std::string::npos);
}

TEST(HostTscKhzTest, PlausibleAndStableWhenTheHostHasAnInvariantTsc) {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string text((std::istreambuf_iterator<char>(cpuinfo)), {});
  const int khz = HostTscKhz();
  if (text.find(" constant_tsc") == std::string::npos ||
      text.find(" nonstop_tsc") == std::string::npos) {
    EXPECT_EQ(khz, 0);
    return;
  }
  EXPECT_GT(khz, 100'000);
  EXPECT_LT(khz, 20'000'000);
  EXPECT_EQ(HostTscKhz(), khz) << "measured once per process";
}

}  // namespace
}  // namespace chaoslab
