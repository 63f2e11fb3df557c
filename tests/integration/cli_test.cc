// The `chaoslab` command itself (lab/cli), run as a user would: `validate` on good and bad files,
// `image build` (cached by content hash), and bad inventories given to `gc` and `run`.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/integration/lab_harness.h"

namespace chaoslab::testing {
namespace {

namespace fs = std::filesystem;

std::string ReadText(const fs::path& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

class CliTest : public ::testing::Test {
 protected:
  // Writes `text` to `relative` under the harness's folder; returns the full path.
  std::string Write(const std::string& relative, const std::string& text) {
    const fs::path path = lab_.dir() / relative;
    fs::create_directories(path.parent_path());
    std::ofstream(path) << text;
    return path.string();
  }
  // Runs chaoslab and checks a clean failure: exit 2, `expected` on stderr, no abort.
  void ExpectBadInput(const std::vector<std::string>& args, const std::string& expected) {
    auto r = lab_.Run(args, std::chrono::seconds(120));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->exit_code, 2) << r->err;
    EXPECT_NE(r->err.find(expected), std::string::npos) << "stderr was: " << r->err;
    EXPECT_EQ(r->err.find("terminate called"), std::string::npos) << r->err;
  }
  LabHarness lab_;
};

TEST_F(CliTest, ValidateAcceptsEveryShippedPlaybook) {
  std::vector<std::string> args = {"validate"};
  for (const char* kind : {"scenarios", "setups", "runbooks"}) {
    for (const auto& entry : fs::directory_iterator(lab_.source_dir() + "/playbooks/" + kind)) {
      if (entry.path().extension() == ".yaml") args.push_back(entry.path().string());
    }
  }
  args.push_back(lab_.source_dir() + "/images/winsim/image.yaml");
  ASSERT_GE(args.size(), 20u);
  auto r = lab_.Run(args, std::chrono::seconds(120));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 0) << r->err;
  EXPECT_EQ(r->err, "");
  for (size_t i = 1; i < args.size(); ++i) {
    EXPECT_NE(r->out.find(args[i] + ": ok"), std::string::npos) << args[i] << "\n" << r->out;
  }
}

// Issue 15: a group named like a path is refused by `validate` at its name, as by `run`.
TEST_F(CliTest, ValidateRefusesBadFilesWithFileLineColumn) {
  const std::string good = lab_.source_dir() + "/playbooks/runbooks/reboot-15.yaml";
  const std::string pwn = Write("setups/pwn.yaml",
                                "name: pwn\nimage: winsim\nsites:\n  - {name: hq, technicians: 1}\n"
                                "groups:\n  - name: ../../../../x/pwn\n    role: workstation\n"
                                "    count: 1\n");
  const std::string typo = Write("runbooks/typo.yaml", "name: typo\nstpes:\n  - reboot: 3\n");
  auto r = lab_.Run({"validate", good, pwn, typo}, std::chrono::seconds(120));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 2) << r->err;
  EXPECT_NE(r->out.find(good + ": ok"), std::string::npos) << r->out;
  EXPECT_NE(r->err.find(pwn + ":6:11: "), std::string::npos) << r->err;
  EXPECT_NE(r->err.find("group name '../../../../x/pwn'"), std::string::npos) << r->err;
  EXPECT_NE(r->err.find(typo + ":2:1: unknown key 'stpes'"), std::string::npos) << r->err;
  EXPECT_EQ(r->err.find("terminate called"), std::string::npos) << r->err;
  // A missing file and a file of no known kind are bad input too.
  ExpectBadInput({"validate", (lab_.dir() / "absent.yaml").string()}, "absent.yaml");
  ExpectBadInput({"validate", Write("other/x.yaml", "colour: red\n")}, "cannot tell what kind");
}

// Issue 15: an inventory with a non-scalar key aborted the CLI (TypedBadConversion, exit 134),
// and a qemu+ext URI had libvirt run its command= as root.
TEST_F(CliTest, GcAndCompareRefuseABadInventory) {
  const std::string non_scalar =
      Write("inv/non-scalar.yaml",
            "hypervisors:\n  - {[x]: 1, name: hv1, uri: qemu:///system,\n"
            "     capacity: {guests: 1, memory_mib: 64}}\n");
  ExpectBadInput({"gc", "--inventory", non_scalar}, non_scalar + ":2:6: ");
  // `ext` runs the URI's command= as the lab's user (root): refused before anything connects.
  const std::string ext = Write("inv/ext.yaml",
                                "hypervisors:\n  - name: hv1\n"
                                "    uri: qemu+ext:///system?command=/bin/true\n"
                                "    capacity: {guests: 4, memory_mib: 2048}\n");
  ExpectBadInput({"gc", "--inventory", ext}, ext + ":3:10: ");
  // `compare` checks its inventory before it looks for the guest image (`run` after).
  ExpectBadInput({"compare", lab_.scenario("channel-291"), "--runbooks", "reboot-15", "--repeat",
                  "1", "--backend", "libvirt", "--inventory", ext},
                 ext + ":3:10: ");
  EXPECT_FALSE(fs::exists(lab_.runtime_root()) && !fs::is_empty(lab_.runtime_root()));
}

// Issue 17: a scenario's race_window_ms override under `--backend sim`. The simulator draws the
// race from figures real guests showed with one window (the calibration's `method:`), so it cannot
// apply another: it refuses, naming the scenario's file and the calibration's. The same scenario at
// the calibrated window runs.
TEST_F(CliTest, SimRefusesARaceWindowItsCalibrationDidNotMeasure) {
  const std::string playbooks = lab_.source_dir() + "/playbooks";
  auto scenario = [&](const std::string& name, int window_ms) {
    return Write("scenarios/" + name + ".yaml",
                 "name: " + name + "\nsetup: " + playbooks + "/setups/race-lab.yaml\nrunbook: " +
                     playbooks + "/runbooks/reboot-15.yaml\ncalibration: " + playbooks +
                     "/calibration/winsim.yaml\nrace_window_ms: " + std::to_string(window_ms) +
                     "\nstop: {max_scenario: 2h}\n");
  };
  const std::string harder = scenario("harder-race", 300);
  auto r = lab_.Run({"run", harder, "--backend", "sim", "--quiet"}, std::chrono::seconds(120));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 2) << r->err;
  EXPECT_NE(r->err.find(playbooks + "/calibration/winsim.yaml:"), std::string::npos) << r->err;
  EXPECT_NE(r->err.find("race_window_ms 450"), std::string::npos) << r->err;
  EXPECT_NE(r->err.find(harder + ":"), std::string::npos) << r->err;  // where the override is
  EXPECT_NE(r->err.find("race_window_ms 300"), std::string::npos) << r->err;

  auto same = lab_.Run({"run", scenario("calibrated-race", 450), "--backend", "sim", "--quiet"},
                       std::chrono::seconds(120));
  ASSERT_TRUE(same.ok()) << same.status().ToString();
  EXPECT_EQ(same->exit_code, 0) << same->err;
}

// `image build` is cached by content hash: the second build of the same inputs reports the cached
// image. A copy of images/winsim on Debian's kernel and a private cache keep the test to seconds
// and away from the shared cache (`make image` builds the custom kernel).
TEST_F(CliTest, ImageBuildTwiceReportsTheCachedImage) {
  const fs::path images = lab_.dir() / "images";
  fs::create_directories(images);
  fs::copy(lab_.source_dir() + "/images/winsim", images / "winsim", fs::copy_options::recursive);
  std::string recipe = ReadText(images / "winsim" / "image.yaml");
  const size_t at = recipe.find("kernel: custom");
  ASSERT_NE(at, std::string::npos);
  recipe.replace(at, 14, "kernel: debian");
  std::ofstream(images / "winsim" / "image.yaml") << recipe;
  setenv("CHAOSLAB_IMAGES_DIR", images.c_str(), 1);
  setenv("CHAOSLAB_CACHE_DIR", (lab_.dir() / "cache").c_str(), 1);

  auto first = lab_.Run({"image", "build", "winsim"}, std::chrono::seconds(600));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_EQ(first->exit_code, 0) << first->err;
  auto second = lab_.Run({"image", "build", "winsim"}, std::chrono::seconds(300));
  unsetenv("CHAOSLAB_IMAGES_DIR");
  unsetenv("CHAOSLAB_CACHE_DIR");
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  ASSERT_EQ(second->exit_code, 0) << second->err;

  const std::string dir = first->out.substr(0, first->out.find('\n'));
  EXPECT_EQ(second->out, first->out);
  EXPECT_EQ(fs::path(dir).parent_path(), lab_.dir() / "cache" / "images") << dir;
  for (const char* file : {"vmlinux", "initramfs.cpio", "manifest.json"}) {
    EXPECT_TRUE(fs::is_regular_file(fs::path(dir) / file)) << dir << "/" << file;
  }
  EXPECT_EQ(first->err.find("is cached:"), std::string::npos) << first->err;
  EXPECT_NE(second->err.find("guest image winsim is cached: " + dir), std::string::npos)
      << second->err;
  // A name that is not one plain folder name never reaches a path.
  ExpectBadInput({"image", "build", "../winsim"}, "image name '../winsim'");
}

}  // namespace
}  // namespace chaoslab::testing
