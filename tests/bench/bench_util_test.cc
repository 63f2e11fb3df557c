#include "tests/bench/bench_util.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace chaoslab::bench {
namespace {

namespace fs = std::filesystem;

TEST(MedianTest, OddEvenAndEmpty) {
  EXPECT_DOUBLE_EQ(*Median({3, 1, 2}), 2);
  EXPECT_DOUBLE_EQ(*Median({4, 1, 3, 2}), 2.5);
  EXPECT_DOUBLE_EQ(*Median({7}), 7);
  EXPECT_EQ(Median({}).status().code(), ErrorCode::kInvalidArgument);
}

TEST(PercentileTest, NearestRank) {
  std::vector<double> v;
  for (int i = 1; i <= 100; ++i) v.push_back(101 - i);  // unsorted on purpose
  EXPECT_DOUBLE_EQ(*Percentile(v, 50), 50);
  EXPECT_DOUBLE_EQ(*Percentile(v, 99), 99);
  EXPECT_DOUBLE_EQ(*Percentile(v, 100), 100);
  EXPECT_DOUBLE_EQ(*Percentile({5}, 99), 5);
  EXPECT_EQ(Percentile({}, 50).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(Percentile({1}, 0).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(Percentile({1}, 101).status().code(), ErrorCode::kInvalidArgument);
}

TEST(UptimeFieldTest, ReadsTheProtocolWord) {
  EXPECT_DOUBLE_EQ(*UptimeField("@@csagent loaded sensor=7.11 channel=291 version=1 uptime=0.61"),
                   0.61);
  EXPECT_DOUBLE_EQ(*UptimeField("@@winsim phase=network state=up uptime=12.5 extra=1"), 12.5);
  EXPECT_DOUBLE_EQ(*UptimeField("@@winsim phase=kernel xuptime=9 uptime=3"), 3);
  EXPECT_FALSE(UptimeField("@@csagent loaded sensor=7.11 channel=291 version=1"));
  EXPECT_FALSE(UptimeField("@@winsim phase=kernel uptime="));
  EXPECT_FALSE(UptimeField("@@winsim phase=kernel uptime=abc"));
  EXPECT_FALSE(UptimeField("@@winsim phase=kernel uptime=-1"));
  EXPECT_FALSE(UptimeField("@@winsim phase=kernel xuptime=9"));
}

TEST(BootTableTest, ComparesKernelsWithTargets) {
  nlohmann::json r = {{"boot_to_sensor_guest_s_custom", 0.45},
                      {"boot_to_sensor_guest_s_debian", 3.9},
                      {"crash_cycle_wall_s_custom", 1.7},
                      {"kernel_build_cached_s", 0.04}};
  const std::string t = BootTable(r);
  EXPECT_NE(t.find("| boot to sensor loaded, guest uptime | 3.90 s | 0.45 s | ≤ 0.5 s | yes |"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("| crash cycle (panic to panic), wall | — | 1.70 s | ≤ 1.5 s | no |"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("| 16 guests × 3 crash cycles, wall | — | — | ≤ 40 s | — |"), std::string::npos)
      << t;
  EXPECT_NE(t.find("not measured"), std::string::npos) << t;
  EXPECT_NE(t.find("| kernel build when cached | — (Debian package) | 0.04 s | 0 s |"),
            std::string::npos)
      << t;
  r["kernel_build_scratch_s"] = 480.0;
  EXPECT_NE(BootTable(r).find("8.0 min (480 s) | ≤ 12 min | yes"), std::string::npos)
      << BootTable(r);
}

TEST(ScratchDirTest, RemovesItselfWithItsContents) {
  std::string path;
  {
    auto dir =
        ScratchDir::Make(fs::temp_directory_path().string() + "/bench_util_test", "scratch-");
    ASSERT_TRUE(dir.ok()) << dir.status().ToString();
    path = dir->path();
    ASSERT_TRUE(fs::is_directory(path));
    fs::create_directories(path + "/a/b");
    std::ofstream(path + "/a/b/file") << "x";
  }
  EXPECT_FALSE(fs::exists(path));
  fs::remove_all(fs::temp_directory_path() / "bench_util_test");
}

TEST(ScratchDirTest, UnusableParentIsAClearError) {
  auto dir = ScratchDir::Make("/proc/version/not-a-folder", "x-");
  ASSERT_FALSE(dir.ok());
  EXPECT_NE(dir.status().message().find("/proc/version/not-a-folder"), std::string::npos)
      << dir.status().ToString();
}

// Reference values: Wilson 95 % for 8/90 is 4.57 %-16.58 % (Newcombe 1998, method 3 formula).
TEST(WilsonIntervalTest, KnownValuesAndEdges) {
  Proportion p = WilsonInterval(8, 90);
  EXPECT_NEAR(p.value, 0.0889, 1e-4);
  EXPECT_NEAR(p.low, 0.0457, 5e-4);
  EXPECT_NEAR(p.high, 0.1658, 5e-4);
  Proportion none = WilsonInterval(0, 60);
  EXPECT_NEAR(none.low, 0.0, 1e-12);
  EXPECT_NEAR(none.high, 0.0602, 5e-4);
  Proportion all = WilsonInterval(60, 60);
  EXPECT_NEAR(all.high, 1.0, 1e-12);
  EXPECT_NEAR(all.low, 0.9398, 5e-4);
  EXPECT_EQ(WilsonInterval(0, 0).trials, 0);
}

TEST(ProportionDifferenceTest, ContainsZeroForEqualProportionsAndIsSigned) {
  Difference same = ProportionDifference(WilsonInterval(10, 100), WilsonInterval(10, 100));
  EXPECT_DOUBLE_EQ(same.value, 0);
  EXPECT_LT(same.low, 0);
  EXPECT_GT(same.high, 0);
  Difference lower = ProportionDifference(WilsonInterval(15, 34), WilsonInterval(16, 16));
  EXPECT_LT(lower.value, -0.5);
  EXPECT_LT(lower.high, 0) << "44 % vs 100 %: clearly lower";
}

TEST(RaceTallyTest, AttemptsAreRebootsAndAWinIsARecoveryByReboot) {
  const nlohmann::json run = nlohmann::json::parse(R"({"hosts": [
    {"network": "wired", "reboots": 1, "recovered_by": "reboot"},
    {"network": "wired", "reboots": 2, "recovered_by": "reboot"},
    {"network": "wifi", "reboots": 15, "recovered_by": null},
    {"network": "wifi", "reboots": 0, "recovered_by": null},
    {"network": "vpn", "reboots": 3, "recovered_by": "safe-mode"}]})");
  auto tally = RaceTally(run);
  ASSERT_TRUE(tally.ok()) << tally.status().ToString();
  EXPECT_EQ(tally->at("wired").successes, 2);
  EXPECT_EQ(tally->at("wired").trials, 3);
  EXPECT_EQ(tally->at("wifi").successes, 0);
  EXPECT_EQ(tally->at("wifi").trials, 15);
  EXPECT_EQ(tally->at("vpn").successes, 0);
  EXPECT_FALSE(RaceTally(nlohmann::json::object()).ok());
}

}  // namespace
}  // namespace chaoslab::bench
