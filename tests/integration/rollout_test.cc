// Staged rollout on real guests (issue 5): a health gate confines the crash to the canary ring, and
// the fixed sensor (bounds check + validator fix) rejects the file on every exposed host.
#include <gtest/gtest.h>

#include "tests/integration/lab_harness.h"

namespace chaoslab::testing {
namespace {

using nlohmann::json;

TEST(RolloutOnRealGuests, HealthGateConfinesTheCrashToTheCanaryRing) {
  LabHarness lab;
  ASSERT_TRUE(lab.ImageBuilt()) << "guest image not built: run `make image`";
  auto r = lab.Run({"run", lab.scenario("staged-rollout"), "--json"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->exit_code, 0) << r->err;
  EXPECT_NE(r->err.find("rollout halted before ring early"), std::string::npos) << r->err;
  json run = json::parse(r->out);
  int canary = 0;
  for (const auto& h : run["hosts"]) {
    if (h["ring"] == "canary") {
      canary++;
      EXPECT_TRUE(h["exposed"].get<bool>()) << h.dump();
      EXPECT_GE(h["crashes"].get<int>(), 1) << h.dump();
    } else {
      EXPECT_FALSE(h["exposed"].get<bool>()) << h.dump();
      EXPECT_EQ(h["crashes"], 0) << h.dump();
    }
  }
  EXPECT_EQ(canary, 1);
}

TEST(RolloutOnRealGuests, FixedSensorRejectsTheFileEverywhere) {
  LabHarness lab;
  ASSERT_TRUE(lab.ImageBuilt());
  auto r =
      lab.Run({"run", lab.scenario("staged-rollout"), "--setup", "rollout-lab-fixed", "--json"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->exit_code, 0) << r->err;
  json run = json::parse(r->out);
  EXPECT_EQ(run["fleet"]["crashed"], 0) << run.dump(2);
  EXPECT_EQ(run["fleet"]["exposed"], 7) << run.dump(2);  // every host but the pinned one
  // Each exposed sensor logged the rejection (its console line, reported once per host).
  size_t rejected = 0;
  const std::string line = "rejected the faulty channel file";
  for (size_t at = r->err.find(line); at != std::string::npos; at = r->err.find(line, at + 1))
    rejected++;
  EXPECT_EQ(rejected, 7u) << r->err;
}

}  // namespace
}  // namespace chaoslab::testing
