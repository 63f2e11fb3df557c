// Runbook fallbacks (`on_failure:`): the syntax, the chain flattened into
// RunbookConfig::escalations, cycles and depth, and a fallback checked on a setup and an image like
// the runbook it follows.
#include <gtest/gtest.h>

#include <string>

#include "lab/config/config_loader.h"
#include "lab/config/config_test_util.h"

namespace chaoslab::config {
namespace {

using testing::ConfigLoaderTest;
using testing::ExpectError;

constexpr char kSafeMode[] = R"(name: safe
steps:
  - boot: {into: safe-mode, needs: [technician], takes: 5m}
  - restart
)";

TEST_F(ConfigLoaderTest, OnFailureChainsAreFlattenedInOrder) {
  Write("playbooks/runbooks/reimage.yaml", "name: reimage\nsteps: [reimage]\n");
  Write("playbooks/runbooks/safe.yaml",
        std::string(kSafeMode) + "on_failure: {runbook: reimage.yaml, after: 1d}\n");
  const std::string path = Write("playbooks/runbooks/reboot.yaml", R"(name: reboot
steps:
  - reboot: 2
on_failure:
  runbook: safe.yaml
  after: {uniform: [1h, 4h]}
)");
  Result<RunbookConfig> rb = LoadRunbook(path);
  ASSERT_TRUE(rb.ok()) << rb.status().ToString();
  ASSERT_EQ(rb->escalations.size(), 2u);
  EXPECT_EQ(rb->escalations[0].runbook.name, "safe");
  EXPECT_EQ(rb->escalations[0].runbook.steps.size(), 2u);
  EXPECT_EQ(rb->escalations[0].after.kind, Distribution::Kind::kUniform);
  EXPECT_DOUBLE_EQ(rb->escalations[0].after.a, 3600);
  EXPECT_DOUBLE_EQ(rb->escalations[0].after.b, 4 * 3600);
  EXPECT_EQ(rb->escalations[0].where.line, 5);
  EXPECT_TRUE(rb->escalations[0].runbook.escalations.empty()) << "the chain is in the first";
  EXPECT_EQ(rb->escalations[1].runbook.name, "reimage");
  EXPECT_DOUBLE_EQ(rb->escalations[1].after.a, 86400);
  // A scenario with it loads, and what a step of the fallback needs is checked too.
  Write("playbooks/scenarios/e.yaml",
        "name: e\nsetup: ../setups/small.yaml\nrunbook: ../runbooks/reboot.yaml\n");
  Result<ScenarioConfig> sc = LoadScenario(Path("playbooks/scenarios/e.yaml"), Images());
  ASSERT_TRUE(sc.ok()) << sc.status().ToString();
  EXPECT_EQ(sc->runbook.escalations.size(), 2u);
}

TEST_F(ConfigLoaderTest, OnFailureErrorsNameFileLineColumn) {
  const std::string rb = "playbooks/runbooks/rb.yaml";
  // A cycle, through another file.
  Write("playbooks/runbooks/other.yaml",
        "name: other\nsteps: [restart]\non_failure: {runbook: rb.yaml, after: 1h}\n");
  Write(rb, "name: rb\nsteps: [reboot]\non_failure: {runbook: other.yaml, after: 1h}\n");
  ExpectError(LoadRunbook(Path(rb)).status(), "runbooks/other.yaml:3:23", {"cycle", "rb.yaml"});
  // Itself.
  Write(rb, "name: rb\nsteps: [reboot]\non_failure: {runbook: rb.yaml, after: 1h}\n");
  ExpectError(LoadRunbook(Path(rb)).status(), "runbooks/rb.yaml:3:23", {"cycle"});
  // Missing after, unknown key, a bad distribution, a missing file.
  Write(rb, "name: rb\nsteps: [reboot]\non_failure: {runbook: other.yaml}\n");
  ExpectError(LoadRunbook(Path(rb)).status(), "runbooks/rb.yaml:3:13", {"after"});
  Write(rb, "name: rb\nsteps: [reboot]\non_failure: {runbook: x.yaml, after: 1h, when: now}\n");
  ExpectError(LoadRunbook(Path(rb)).status(), "runbooks/rb.yaml:3:42",
              {"when", "allowed keys: runbook, after"});
  Write(rb,
        "name: rb\nsteps: [reboot]\non_failure: {runbook: x.yaml, after: {uniform: [2h, 1h]}}\n");
  ExpectError(LoadRunbook(Path(rb)).status(), "runbooks/rb.yaml:3:48",
              {"on_failure after", "min <= max"});
  Write(rb, "name: rb\nsteps: [reboot]\non_failure: {runbook: nope.yaml, after: 1h}\n");
  ExpectError(LoadRunbook(Path(rb)).status(), "runbooks/rb.yaml:3:23", {"nope.yaml"});
}

TEST_F(ConfigLoaderTest, OnFailureChainsDeeperThanTheLimitAreRefused) {
  // r0 -> r1 -> ... : kMaxEscalations fallbacks load, one more does not.
  auto chain = [&](int fallbacks) {
    for (int i = 0; i <= fallbacks; ++i) {
      std::string text = "name: r" + std::to_string(i) + "\nsteps: [reboot]\n";
      if (i < fallbacks)
        text += "on_failure: {runbook: r" + std::to_string(i + 1) + ".yaml, after: 1h}\n";
      Write("playbooks/runbooks/r" + std::to_string(i) + ".yaml", text);
    }
    return LoadRunbook(Path("playbooks/runbooks/r0.yaml"));
  };
  Result<RunbookConfig> ok = chain(kMaxEscalations);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->escalations.size(), static_cast<size_t>(kMaxEscalations));
  ExpectError(chain(kMaxEscalations + 1).status(),
              "runbooks/r" + std::to_string(kMaxEscalations) + ".yaml:3:23",
              {"more than " + std::to_string(kMaxEscalations)});
}

TEST_F(ConfigLoaderTest, AFallbackMustFitTheSetupAndImageLikeTheRunbook) {
  Write("playbooks/runbooks/usb.yaml", "name: usb\nsteps:\n  - boot: usb\n  - restart\n");
  Write("playbooks/runbooks/reboot-usb.yaml",
        "name: reboot-usb\nsteps: [reboot]\non_failure: {runbook: usb.yaml, after: 2h}\n");
  Write("playbooks/scenarios/u.yaml",
        "name: u\nsetup: ../setups/small.yaml\nrunbook: ../runbooks/reboot-usb.yaml\n");
  // The small setup keeps no USB sticks: the error is at the fallback's step and says whose.
  ExpectError(LoadScenario(Path("playbooks/scenarios/u.yaml"), Images()).status(),
              "runbooks/usb.yaml:3:5",
              {"usb-stick", "on_failure fallback", "reboot-usb.yaml:3:13"});
  // An image without the USB path: refused at the same step.
  Result<SetupConfig> setup = LoadSetup(Path("playbooks/setups/small.yaml"));
  Result<RunbookConfig> rb = LoadRunbook(Path("playbooks/runbooks/reboot-usb.yaml"));
  Result<ImageConfig> image = LoadImage(Images(), "winsim");
  ASSERT_TRUE(setup.ok() && rb.ok() && image.ok());
  image->recovery = {RecoveryPath::kSafeMode};
  ExpectError(CheckRunbookFitsImage(*rb, *setup, *image), "runbooks/usb.yaml:3:5",
              {"usb", "on_failure fallback"});
}

}  // namespace
}  // namespace chaoslab::config
