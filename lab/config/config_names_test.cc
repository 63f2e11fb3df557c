// Issue 15: names become paths, domain names and command-line arguments, so every name a playbook
// declares follows one rule (lab/common/identifier.h), checked with file:line:column before
// anything is written. And no YAML shape (a non-scalar key, a list where a word is expected)
// escapes as an exception.
#include <gtest/gtest.h>

#include <string>

#include "lab/config/config_loader.h"
#include "lab/config/config_test_util.h"

namespace chaoslab::config {
namespace {

using testing::ConfigLoaderTest;
using testing::ExpectError;
using testing::kImage;
using testing::kRunbook;
using testing::kScenario;
using testing::kSetup;

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

class ConfigNamesTest : public ConfigLoaderTest {
 protected:
  Status SetupWith(const std::string& text) {
    return LoadSetup(Write("playbooks/setups/small.yaml", text)).status();
  }
  Status RunbookWith(const std::string& text) {
    return LoadRunbook(Write("playbooks/runbooks/reboot-3.yaml", text)).status();
  }
  Status ScenarioWith(const std::string& text) {
    return LoadScenario(Write("playbooks/scenarios/s.yaml", text), Images()).status();
  }
};

TEST_F(ConfigNamesTest, GroupNamedLikeAPathIsRefusedAtItsName) {
  Status s = SetupWith(Replace(kSetup, "name: ws\n", "name: ../../../../x/pwn\n"));
  ExpectError(s, Path("playbooks/setups/small.yaml") + ":7:11",
              {"group name '../../../../x/pwn' starts with '.'"});
  // Through the scenario too (what `chaoslab run` loads).
  Status sc = ScenarioWith(kScenario);
  ExpectError(sc, Path("playbooks/setups/small.yaml") + ":7:11", {"group name"});
}

TEST_F(ConfigNamesTest, EveryNameInASetupFollowsTheRule) {
  ExpectError(SetupWith(Replace(kSetup, "name: small", "name: ../small")),
              Path("playbooks/setups/small.yaml") + ":1:7", {"setup name"});
  ExpectError(SetupWith(Replace(kSetup, "name: hq", "name: -hq")),
              Path("playbooks/setups/small.yaml") + ":4:11", {"site name"});
  ExpectError(SetupWith(Replace(kSetup, "name: ws\n", "name: \"ws;reboot\"\n")),
              Path("playbooks/setups/small.yaml") + ":7:11", {"group name"});
  ExpectError(
      SetupWith(std::string(kSetup) + "services:\n  - name: a/b\n    needs: [{group: ws}]\n"),
      Path("playbooks/setups/small.yaml") + ":12:11", {"service name"});
}

TEST_F(ConfigNamesTest, GroupWhoseHostNamesWouldBeTooLong) {
  // Host names are "<group>-NN": a group of 62 characters leaves no room for "-02".
  const std::string long_name(62, 'g');
  ExpectError(SetupWith(Replace(kSetup, "name: ws\n", "name: " + long_name + "\n")),
              Path("playbooks/setups/small.yaml") + ":7:11", {"host name", long_name + "-02"});
  EXPECT_TRUE(
      SetupWith(Replace(kSetup, "name: ws\n", "name: " + std::string(61, 'g') + "\n")).ok());
}

TEST_F(ConfigNamesTest, RunbookAndScenarioNames) {
  ExpectError(RunbookWith(Replace(kRunbook, "name: reboot-3", "name: ../reboot")),
              Path("playbooks/runbooks/reboot-3.yaml") + ":1:7", {"runbook name"});
  ExpectError(ScenarioWith(Replace(kScenario, "name: s", "name: s/../../t")),
              Path("playbooks/scenarios/s.yaml") + ":1:7", {"scenario name"});
}

TEST_F(ConfigNamesTest, SelectorsInARunbookFollowTheRule) {
  const std::string rb =
      "name: r\nsteps:\n  - reboot:\n      times: 2\n      when: {group: ../x}\n";
  ExpectError(RunbookWith(rb), Path("playbooks/runbooks/reboot-3.yaml") + ":5:21", {"../x"});
}

TEST_F(ConfigNamesTest, RolloutRingNames) {
  const std::string sc = std::string(kScenario) +
                         "rollout:\n  policy: rings\n  rings:\n"
                         "    - {name: c/1, percent: 100%, after: 0s}\n";
  ExpectError(ScenarioWith(sc), Path("playbooks/scenarios/s.yaml") + ":7:14", {"c/1"});
}

TEST_F(ConfigNamesTest, ImageNamesAndTheSetupsImage) {
  ExpectError(SetupWith(Replace(kSetup, "image: winsim", "image: ../winsim")),
              Path("playbooks/setups/small.yaml") + ":2:8", {"image"});
  Status s = LoadImage(Images(), "../images/winsim").status();
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument) << s.ToString();
  // The recipe's own name is checked against its folder, which the rule already constrains.
  EXPECT_TRUE(LoadImage(Images(), "winsim").ok());
}

// A non-scalar key or value is an error with file:line:column in every playbook kind, never an
// exception.
TEST_F(ConfigNamesTest, NonScalarKeysAndValues) {
  ExpectError(SetupWith(Replace(kSetup, "name: small", "{[x]: 1}: small")),
              Path("playbooks/setups/small.yaml") + ":1:1", {"keys"});
  ExpectError(SetupWith(Replace(kSetup, "name: ws\n", "name: [ws]\n")),
              Path("playbooks/setups/small.yaml") + ":7:11", {"group name"});
  ExpectError(RunbookWith(Replace(kRunbook, "name: reboot-3", "[name]: reboot-3")),
              Path("playbooks/runbooks/reboot-3.yaml") + ":1:1", {"keys"});
  ExpectError(ScenarioWith(Replace(kScenario, "name: s", "? {a: b}\n: s")),
              Path("playbooks/scenarios/s.yaml") + ":1:3", {"keys"});
  ExpectError(ScenarioWith(Replace(kScenario, "name: s", "name: {a: b}")),
              Path("playbooks/scenarios/s.yaml") + ":1:7", {"name"});
  Write("images/winsim/image.yaml", Replace(kImage, "kind: winsim", "kind: [winsim]"));
  ExpectError(LoadImage(Images(), "winsim").status(), Path("images/winsim/image.yaml") + ":2:7",
              {"kind"});
}

}  // namespace
}  // namespace chaoslab::config
