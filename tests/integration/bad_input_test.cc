// Bad input gets a clear error naming what and where, a non-zero exit, and nothing started.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "tests/integration/lab_harness.h"

namespace chaoslab::testing {
namespace {

namespace fs = std::filesystem;

class BadInputTest : public ::testing::Test {
 protected:
  // Writes `text` as a scenario next to copies of the shipped setup and runbook.
  std::string Scenario(const std::string& text) {
    fs::create_directories(lab_.dir() / "scenarios");
    fs::copy(lab_.source_dir() + "/playbooks/setups", lab_.dir() / "setups",
             fs::copy_options::recursive | fs::copy_options::skip_existing);
    fs::copy(lab_.source_dir() + "/playbooks/runbooks", lab_.dir() / "runbooks",
             fs::copy_options::recursive | fs::copy_options::skip_existing);
    std::string path = (lab_.dir() / "scenarios" / "s.yaml").string();
    std::ofstream(path) << text;
    return path;
  }
  // Runs `chaoslab run FILE` and checks it failed cleanly with `expected` in its message.
  void ExpectRejected(const std::string& file, const std::string& expected) {
    auto r = lab_.Run({"run", file});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->exit_code, 2) << r->err;
    EXPECT_NE(r->err.find(expected), std::string::npos) << "stderr was: " << r->err;
    EXPECT_EQ(r->err.find("terminate called"), std::string::npos) << r->err;
    // Nothing started: no run folder, no QEMU.
    EXPECT_FALSE(fs::exists(lab_.runtime_root()) && !fs::is_empty(lab_.runtime_root()));
  }
  const std::string kGood =
      "name: t\nsetup: ../setups/demo-lab.yaml\nrunbook: ../runbooks/reboot-15.yaml\n";
  LabHarness lab_;
};

TEST_F(BadInputTest, MalformedYamlNamesLineAndColumn) {
  ExpectRejected(Scenario(kGood + "fault: {kind: channel-291\n"), "s.yaml:");
}

TEST_F(BadInputTest, UnknownKey) {
  ExpectRejected(Scenario(kGood + "falut:\n  kind: channel-291\n"), "s.yaml:4:1");
}

TEST_F(BadInputTest, WrongType) {
  auto path = Scenario(kGood + "repetitions: many\n");
  ExpectRejected(path, "s.yaml:4:14");
}

TEST_F(BadInputTest, MissingSetupFile) {
  ExpectRejected(
      Scenario("name: t\nsetup: ../setups/nope.yaml\nrunbook: ../runbooks/reboot-15.yaml\n"),
      "nope.yaml");
}

TEST_F(BadInputTest, MissingScenarioFile) {
  ExpectRejected((lab_.dir() / "absent.yaml").string(), "absent.yaml");
}

TEST_F(BadInputTest, MissingQemu) {
  setenv("CHAOSLAB_QEMU", "/nonexistent/qemu-system-x86_64", 1);
  ExpectRejected(lab_.scenario("channel-291"), "qemu");
  unsetenv("CHAOSLAB_QEMU");
}

TEST_F(BadInputTest, GuestImageNotBuilt) {
  setenv("CHAOSLAB_CACHE_DIR", (lab_.dir() / "empty-cache").c_str(), 1);
  ExpectRejected(lab_.scenario("channel-291"), "make image");
  unsetenv("CHAOSLAB_CACHE_DIR");
}

TEST_F(BadInputTest, UnreadableChannelFile) {
  std::string garbage = (lab_.dir() / "C-00000291-00000000-00000009.sys").string();
  std::ofstream(garbage) << "this is not a channel file";
  auto r = lab_.Run({"channel", "inspect", garbage});
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->exit_code, 0);
  EXPECT_NE((r->out + r->err).find("C-00000291-00000000-00000009.sys"), std::string::npos)
      << r->out << r->err;
  auto missing = lab_.Run({"channel", "inspect", (lab_.dir() / "nope.sys").string()});
  ASSERT_TRUE(missing.ok());
  EXPECT_NE(missing->exit_code, 0);
}

// Issue 4: runbooks and setups are checked against each other before anything starts.
TEST_F(BadInputTest, RunbookWithAnUnknownResource) {
  Scenario(kGood);
  std::ofstream(lab_.dir() / "runbooks" / "bad.yaml")
      << "name: bad\nsteps:\n  - boot:\n      into: safe-mode\n      needs: [wizard]\n";
  auto r = lab_.Run({"run", (lab_.dir() / "scenarios" / "s.yaml").string(), "--runbook", "bad"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 2) << r->err;
  EXPECT_NE(r->err.find("bad.yaml:5:"), std::string::npos) << r->err;
  EXPECT_NE(r->err.find("wizard"), std::string::npos) << r->err;
}

TEST_F(BadInputTest, CyclicPriorities) {
  Scenario(kGood);
  std::ofstream(lab_.dir() / "runbooks" / "cycle.yaml")
      << "name: cycle\npriorities:\n  - {first: server, then: [workstation]}\n"
         "  - {first: workstation, then: [server]}\nsteps:\n  - reboot: 3\n";
  auto r = lab_.Run({"run", (lab_.dir() / "scenarios" / "s.yaml").string(), "--runbook", "cycle"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 2) << r->err;
  EXPECT_NE(r->err.find("cycle.yaml:4:"), std::string::npos) << r->err;
  EXPECT_NE(r->err.find("cycl"), std::string::npos) << r->err;
}

TEST_F(BadInputTest, StepWhoseNeedsTheSetupCannotMeet) {
  // demo-lab has no USB sticks.
  auto r = lab_.Run({"run", Scenario(kGood), "--runbook", "winpe-usb"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 2) << r->err;
  EXPECT_NE(r->err.find("winpe-usb.yaml:"), std::string::npos) << r->err;
  EXPECT_NE(r->err.find("usb-stick"), std::string::npos) << r->err;
}

TEST_F(BadInputTest, ServiceOverAnUnknownGroup) {
  Scenario(kGood);
  std::string setup = (lab_.dir() / "setups" / "demo-lab.yaml").string();
  std::ofstream(setup, std::ios::app) << "services:\n  - name: mail\n    needs:\n"
                                         "      - {group: exchange, at_least: 1}\n";
  auto r = lab_.Run({"run", (lab_.dir() / "scenarios" / "s.yaml").string()});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 2) << r->err;
  EXPECT_NE(r->err.find("demo-lab.yaml:"), std::string::npos) << r->err;
  EXPECT_NE(r->err.find("exchange"), std::string::npos) << r->err;
}

// Issue 18: backlog inputs that wait for each other are refused before anything runs, at the
// input written last.
TEST_F(BadInputTest, ServiceBacklogInputsInACycle) {
  Scenario(kGood);
  std::string setup = (lab_.dir() / "setups" / "demo-lab.yaml").string();
  std::ifstream in(setup);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const int first_line = static_cast<int>(std::count(text.begin(), text.end(), '\n')) + 1;
  std::ofstream(setup, std::ios::app)
      << "services:\n"
         "  - name: orders\n    needs: [{group: ws-711}]\n"
         "    backlog: {grows: 1, works_off: 1, inputs: [billing]}\n"
         "  - name: billing\n    needs: [{group: ws-711}]\n"
         "    backlog: {grows: 1, works_off: 1, inputs: [orders]}\n";
  auto r = lab_.Run({"run", (lab_.dir() / "scenarios" / "s.yaml").string()});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 2) << r->err;
  const std::string where = "demo-lab.yaml:" + std::to_string(first_line + 6) + ":48";
  EXPECT_NE(r->err.find(where), std::string::npos) << where << "\n" << r->err;
  EXPECT_NE(r->err.find("service inputs form a cycle"), std::string::npos) << r->err;
  EXPECT_TRUE(LabHarness::LabQemus("").empty());
}

// Issue 9: a runbook step the setup's image cannot do (images/windows has no WinPE stick) is
// refused at the step, naming the image and what it supports.
TEST_F(BadInputTest, RunbookStepTheImageCannotDo) {
  Scenario(kGood);
  std::ifstream in(lab_.dir() / "setups" / "demo-lab.yaml");
  std::string setup((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  setup.replace(setup.find("image: winsim"), 13, "image: windows");
  std::ofstream(lab_.dir() / "setups" / "demo-lab.yaml") << setup;
  auto r =
      lab_.Run({"run", (lab_.dir() / "scenarios" / "s.yaml").string(), "--runbook", "winpe-usb"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 2) << r->err;
  // winpe-usb.yaml's first step, `- boot:` on line 13.
  EXPECT_NE(r->err.find("winpe-usb.yaml:13:5"), std::string::npos) << r->err;
  EXPECT_NE(r->err.find("step 1 (boot usb)"), std::string::npos) << r->err;
  EXPECT_NE(r->err.find("image 'windows'"), std::string::npos) << r->err;
  EXPECT_NE(r->err.find("it supports: safe-mode, winre, bitlocker, snapshot, reimage"),
            std::string::npos)
      << r->err;
}

// Issue 9: an image of kind windows whose golden image was never built (no Windows ISO here) is
// refused before anything starts, naming the missing path and the command that builds it.
TEST_F(BadInputTest, WindowsGoldenImageNotBuilt) {
  Scenario(kGood);
  std::ifstream in(lab_.dir() / "setups" / "demo-lab.yaml");
  std::string setup((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  setup.replace(setup.find("image: winsim"), 13, "image: windows");
  std::ofstream(lab_.dir() / "setups" / "demo-lab.yaml") << setup;
  const fs::path cache = lab_.dir() / "empty-cache";
  setenv("CHAOSLAB_CACHE_DIR", cache.c_str(), 1);
  unsetenv("CHAOSLAB_WINDOWS_DIR");
  ExpectRejected((lab_.dir() / "scenarios" / "s.yaml").string(),
                 "the golden Windows image is not built: the folder " +
                     (cache / "windows").string() + " is missing");
  ExpectRejected((lab_.dir() / "scenarios" / "s.yaml").string(),
                 "`images/windows/build.sh --iso YOUR.iso`");
  unsetenv("CHAOSLAB_CACHE_DIR");
}

// Issue 15: a group named like a path made the run write its 34 MB system disk outside the run
// folder (here it would land in the test's folder, x/pwn.img), then stop without file:line:column.
TEST_F(BadInputTest, GroupNamedLikeAPathIsRefusedBeforeAnythingIsWritten) {
  Scenario(kGood);
  const fs::path setup = lab_.dir() / "setups" / "demo-lab.yaml";
  std::ifstream in(setup);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  text.replace(text.find("name: ws-711"), 12, "name: ../../../x/pwn");
  std::ofstream(setup) << text;
  ExpectRejected((lab_.dir() / "scenarios" / "s.yaml").string(),
                 setup.string() + ":10:11: group name '../../../x/pwn'");
  EXPECT_FALSE(fs::exists(lab_.dir() / "x")) << "a disk was written outside the run folder";
}

// `compare` checks its backend as `run` does, for every cell, before the first VM starts.
TEST_F(BadInputTest, CompareWithAnUnknownBackendOrNoInventory) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--backend", "nope"}, "backend 'nope' is not one of qemu, libvirt, sim"},
      {{"--backend", "libvirt"}, "--backend libvirt needs --inventory FILE"},
      {{"--backend", "libvirt", "--inventory", (lab_.dir() / "absent.yaml").string()},
       "absent.yaml"},
  };
  for (const auto& [extra, expected] : cases) {
    std::vector<std::string> args = {"compare",    lab_.scenario("channel-291"),
                                     "--runbooks", "reboot-15,reimage",
                                     "--repeat",   "1"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = lab_.Run(args);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->exit_code, 2) << r->err;
    EXPECT_NE(r->err.find(expected), std::string::npos) << "stderr was: " << r->err;
    EXPECT_FALSE(fs::exists(lab_.runtime_root()) && !fs::is_empty(lab_.runtime_root()));
  }
}

}  // namespace
}  // namespace chaoslab::testing
