// What appeared during the incident: a runbook's `tools:` with their publication moments (a step
// cannot use a tool before it exists) and a scenario's `vendor_remediation:`.
#include <gtest/gtest.h>

#include <string>

#include "lab/config/config_loader.h"
#include "lab/config/config_test_util.h"

namespace chaoslab::config {
namespace {

using testing::ConfigLoaderTest;
using testing::ExpectError;

constexpr char kUsbRunbook[] = R"(name: usb
tools:
  usb-recovery: {available: "2024-07-20T12:30Z"}
steps:
  - boot: {into: safe-mode, tool: usb-recovery, needs: [technician], takes: 5m}
  - restart
)";

TEST_F(ConfigLoaderTest, AStepsToolGetsItsPublicationMoment) {
  Result<RunbookConfig> rb = LoadRunbook(Write("playbooks/runbooks/usb.yaml", kUsbRunbook));
  ASSERT_TRUE(rb.ok()) << rb.status().ToString();
  ASSERT_EQ(rb->tools.size(), 1u);
  EXPECT_EQ(rb->tools[0].name, "usb-recovery");
  EXPECT_EQ(rb->tools[0].available.ToString(), "2024-07-20T12:30Z");
  ASSERT_TRUE(rb->steps[0].tool_available.has_value());
  EXPECT_EQ(rb->steps[0].tool, "usb-recovery");
  EXPECT_FALSE(rb->steps[1].tool_available.has_value());
  // In scenario seconds of 2024-07-19: a day and 12:30 later.
  ScenarioDate day0;
  EXPECT_DOUBLE_EQ(day0.SecondsOf(*rb->steps[0].tool_available), 86400 + 12 * 3600 + 30 * 60);
  // And a scenario with it loads.
  Write("playbooks/scenarios/u.yaml",
        "name: u\nsetup: ../setups/small.yaml\nrunbook: ../runbooks/usb.yaml\n");
  Result<ScenarioConfig> sc = LoadScenario(Path("playbooks/scenarios/u.yaml"), Images());
  EXPECT_TRUE(sc.ok()) << sc.status().ToString();
}

TEST_F(ConfigLoaderTest, AToolPublishedBeforeTheReleaseIsAnErrorAtItsDate) {
  Write("playbooks/runbooks/early.yaml", R"(name: early
tools:
  usb-recovery: {available: "2024-07-19T04:08Z"}
steps:
  - boot: {into: safe-mode, tool: usb-recovery}
  - restart
)");
  Write("playbooks/scenarios/e.yaml",
        "name: e\nsetup: ../setups/small.yaml\nrunbook: ../runbooks/early.yaml\n");
  ExpectError(LoadScenario(Path("playbooks/scenarios/e.yaml"), Images()).status(),
              "runbooks/early.yaml:3:29", {"usb-recovery", "before the scenario's release"});
  // A later scenario date makes it earlier still; an earlier one puts the tool after the release.
  Write("playbooks/scenarios/d.yaml",
        "name: d\nsetup: ../setups/small.yaml\nrunbook: ../runbooks/early.yaml\n"
        "date: 2024-07-18\n");
  EXPECT_TRUE(LoadScenario(Path("playbooks/scenarios/d.yaml"), Images()).ok());
}

TEST_F(ConfigLoaderTest, ToolErrorsNameFileLineColumn) {
  const std::string rb = "playbooks/runbooks/rb.yaml";
  Write(rb, "name: rb\nsteps:\n  - boot: {into: usb, tool: stick}\n");
  ExpectError(LoadRunbook(Path(rb)).status(), "runbooks/rb.yaml:3:5", {"tool 'stick'", "none"});
  Write(rb, "name: rb\ntools: {t: {available: \"2024-07-20 12:00\"}}\nsteps: [restart]\n");
  ExpectError(LoadRunbook(Path(rb)).status(), "runbooks/rb.yaml:2:24", {"YYYY-MM-DDTHH:MMZ"});
  Write(rb, "name: rb\ntools: {t: {available: \"2024-02-30T12:00Z\"}}\nsteps: [restart]\n");
  ExpectError(LoadRunbook(Path(rb)).status(), "runbooks/rb.yaml:2:24", {"calendar date"});
  Write(rb, "name: rb\ntools: {t: {available: \"2024-07-20T25:00Z\"}}\nsteps: [restart]\n");
  ExpectError(LoadRunbook(Path(rb)).status(), "runbooks/rb.yaml:2:24", {"time of day"});
  Write(rb, "name: rb\ntools: {t: {availble: \"2024-07-20T12:00Z\"}}\nsteps: [restart]\n");
  ExpectError(LoadRunbook(Path(rb)).status(), "runbooks/rb.yaml:2:13", {"availble"});
  Write(rb, "name: rb\ntools: {t: {available: \"2024-07-20T12:00Z\"}, t: {}}\nsteps: [restart]\n");
  EXPECT_FALSE(LoadRunbook(Path(rb)).ok()) << "a tool named twice";
  Write(rb, "name: rb\ntools: []\nsteps: [restart]\n");
  ExpectError(LoadRunbook(Path(rb)).status(), "runbooks/rb.yaml:2:8", {"tools"});
}

TEST_F(ConfigLoaderTest, VendorRemediationReadsATimeOrAMomentNeverBeforeTheRevert) {
  const std::string s = "playbooks/scenarios/v.yaml";
  const std::string head =
      "name: v\nsetup: ../setups/small.yaml\nrunbook: ../runbooks/reboot-3.yaml\n";
  Write(s, head + "vendor_remediation: {available: \"06:00\", opted_in: 0.25}\n");
  Result<ScenarioConfig> sc = LoadScenario(Path(s), Images());
  ASSERT_TRUE(sc.ok()) << sc.status().ToString();
  EXPECT_TRUE(sc->vendor_remediation.enabled);
  EXPECT_DOUBLE_EQ(sc->vendor_remediation.available, 6 * 3600);
  EXPECT_DOUBLE_EQ(sc->vendor_remediation.opted_in, 0.25);

  Write(s, head + "vendor_remediation: {available: \"2024-07-22T12:00Z\"}\n");
  sc = LoadScenario(Path(s), Images());
  ASSERT_TRUE(sc.ok()) << sc.status().ToString();
  EXPECT_DOUBLE_EQ(sc->vendor_remediation.available, 3 * 86400 + 12 * 3600);
  EXPECT_DOUBLE_EQ(sc->vendor_remediation.opted_in, 1.0);

  Write(s, head + "vendor_remediation: {available: \"05:00\"}\n");
  ExpectError(LoadScenario(Path(s), Images()).status(), "scenarios/v.yaml:4:33",
              {"before the revert"});
  Write(s, head + "vendor_remediation: {available: \"06:00\", opted_in: 1.5}\n");
  ExpectError(LoadScenario(Path(s), Images()).status(), "scenarios/v.yaml:4:52", {"[0, 1]"});
  Write(s, head + "vendor_remediation: {from: \"06:00\"}\n");
  ExpectError(LoadScenario(Path(s), Images()).status(), "scenarios/v.yaml:4:22", {"from"});
  Write(s, head + "vendor_remediation: {available: \"06:00\", opted_in: [ws]}\n");
  sc = LoadScenario(Path(s), Images());
  ASSERT_TRUE(sc.ok()) << sc.status().ToString();
  EXPECT_EQ(sc->vendor_remediation.opted_in_groups, std::vector<std::string>{"ws"});
  Write(s, head + "vendor_remediation: {available: \"06:00\", opted_in: [ws, servers]}\n");
  ExpectError(LoadScenario(Path(s), Images()).status(), "scenarios/v.yaml:4:52",
              {"unknown group 'servers'"});
  Result<ScenarioConfig> without = LoadScenario(Path("playbooks/scenarios/s.yaml"), Images());
  ASSERT_TRUE(without.ok());
  EXPECT_FALSE(without->vendor_remediation.enabled);
}

}  // namespace
}  // namespace chaoslab::config
