// Issue 15: the simulator's own files (calibration, mix) are strict like the playbooks: a key that
// is not a plain word, a key given twice, or a name that breaks the identifier rule is an error
// with file:line:column, never an exception or a silently empty name. Issue 17: they are read by
// the playbooks' own reader (lab/config/yaml_file.h), so values of the wrong type say what was
// expected, and a second YAML document is refused, as in a playbook.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "lab/config/config_loader.h"
#include "lab/sim/calibration.h"
#include "lab/sim/mix.h"

namespace chaoslab::sim {
namespace {

namespace fs = std::filesystem;

std::string Source() {
  const char* s = std::getenv("CHAOSLAB_SOURCE_DIR");
  return s ? s : ".";
}

class SimYamlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("chaoslab-sim-yaml-" + std::to_string(getpid()));
    fs::create_directories(dir_);
    auto sc = config::LoadScenario(Source() + "/playbooks/scenarios/global-2024.yaml",
                                   Source() + "/images");
    ASSERT_TRUE(sc.ok()) << sc.status().ToString();
    scenario_ = *sc;
    scenario_.runbook = *config::LoadRunbook(Source() + "/playbooks/runbooks/reboot-15.yaml");
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }
  std::string CalibrationHead() {
    return "image: winsim\nimage_hash: \"" + *RecipeHash(scenario_.image) +
           "\"\nmethod: {guest_clock: icount-shift0, host_path: realtime, race_window_ms: 450}\n";
  }
  std::string Archetype(const std::string& name) {
    return "  - {name: " + name + ", setup: " + Source() +
           "/playbooks/setups/small-office.yaml, share: 1, size: 50}\n";
  }
  static void ExpectError(const Status& s, const std::string& where, const std::string& words) {
    ASSERT_FALSE(s.ok()) << "expected an error at " << where;
    EXPECT_NE(s.message().find(where + ": "), std::string::npos) << s.message();
    EXPECT_NE(s.message().find(words), std::string::npos) << s.message();
  }

  fs::path dir_;
  config::ScenarioConfig scenario_;
};

TEST_F(SimYamlTest, CalibrationKeysAreStrict) {
  std::string path = Write("c1.yaml", CalibrationHead() +
                                          "race:\n  wired: {boots: 2, wins: 1}\n"
                                          "figures:\n  [a]: {mean: 1, samples: 1}\n");
  ExpectError(LoadCalibration(path, scenario_.image).status(), path + ":7:3", "keys");
  path = Write("c2.yaml", CalibrationHead() +
                              "race:\n  wired: {boots: 2, wins: 1}\n"
                              "  wired: {boots: 4, wins: 1}\n");
  ExpectError(LoadCalibration(path, scenario_.image).status(), path + ":6:3", "duplicate");
  path = Write("c3.yaml", CalibrationHead() + "race:\n  {x: y}: {boots: 2, wins: 1}\n");
  ExpectError(LoadCalibration(path, scenario_.image).status(), path + ":5:3", "keys");
  path = Write("c4.yaml", CalibrationHead() +
                              "race:\n  wired: {boots: 2, wins: 1}\n"
                              "steps:\n  [reboot]: {ok: 1, attempts: 1}\n");
  ExpectError(LoadCalibration(path, scenario_.image).status(), path + ":7:3", "keys");
  path = Write("c5.yaml", CalibrationHead() + "race:\n  wired: {boots: 2, wins: 1}\n");
  ASSERT_TRUE(LoadCalibration(path, scenario_.image).ok());
  path = Write("c6.yaml", "image: winsim\nimage_hash: \"" + *RecipeHash(scenario_.image) +
                              "\"\nmethod: {guest_clock: icount-shift0, window: 450}\n"
                              "race:\n  wired: {boots: 2, wins: 1}\n");
  ExpectError(LoadCalibration(path, scenario_.image).status(), path + ":3:38", "keys");
}

TEST_F(SimYamlTest, CalibrationValuesSayWhatWasExpected) {
  std::string path = Write("v1.yaml", CalibrationHead() +
                                          "race:\n  wired: {boots: 2, wins: 1}\n"
                                          "figures:\n  boot_wall_s: {mean: fast, samples: 1}\n");
  ExpectError(LoadCalibration(path, scenario_.image).status(), path + ":7:23",
              "boot_wall_s mean: expected a number, got 'fast'");
  path = Write("v2.yaml", CalibrationHead() + "race:\n  wired: {boots: [2], wins: 1}\n");
  ExpectError(LoadCalibration(path, scenario_.image).status(), path + ":5:18",
              "race wired boots: expected an integer, got a list");
  path = Write("v3.yaml", CalibrationHead() + "race:\n  wired: {boots: 2, wins: 1}\n---\nx: 1\n");
  ExpectError(LoadCalibration(path, scenario_.image).status(), path + ":7:1",
              "only one YAML document");
}

TEST_F(SimYamlTest, MixKeysAndNamesAreStrict) {
  std::string path =
      Write("m1.yaml", "name: m\nhosts: 100\nhosts: 200\narchetypes:\n" + Archetype("a"));
  ExpectError(LoadMix(path, scenario_).status(), path + ":3:1", "duplicate");
  path = Write("m2.yaml", "name: m\n[hosts]: 100\narchetypes:\n" + Archetype("a"));
  ExpectError(LoadMix(path, scenario_).status(), path + ":2:1", "keys");
  path = Write("m3.yaml", "name: m\nhosts: 100\narchetypes:\n" + Archetype("../a"));
  ExpectError(LoadMix(path, scenario_).status(), path + ":4:12", "archetype name");
  path = Write("m4.yaml", "name: ../m\nhosts: 100\narchetypes:\n" + Archetype("a"));
  ExpectError(LoadMix(path, scenario_).status(), path + ":1:7", "mix name");
  path = Write("m5.yaml", "name: m\nhosts: many\narchetypes:\n" + Archetype("a"));
  ExpectError(LoadMix(path, scenario_).status(), path + ":2:8",
              "hosts: expected an integer, got 'many'");
}

}  // namespace
}  // namespace chaoslab::sim
