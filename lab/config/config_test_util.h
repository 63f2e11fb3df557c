// Test helpers shared by the config tests: a scratch folder laid out like a repository, and a
// check that an error names the right file:line:column.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>

#include "lab/common/status.h"

namespace chaoslab::config::testing {

inline constexpr char kImage[] = R"(name: winsim
kind: winsim
description: test image
timing:
  workstation: {boot: 45s, driver_load: 20s, crash_dump: 15s, content_fetch: 60s}
  server: {boot: 2m, driver_load: 40s, crash_dump: 30s, content_fetch: 1m}
)";

inline constexpr char kSetup[] = R"(name: small
image: winsim
sites:
  - name: hq
    technicians: 2
groups:
  - name: ws
    role: workstation
    count: 2
    sensor: "7.11"
)";

inline constexpr char kRunbook[] = R"(name: reboot-3
starts: after-revert
steps:
  - reboot: {times: 3}
)";

inline constexpr char kScenario[] = R"(name: s
setup: ../setups/small.yaml
runbook: ../runbooks/reboot-3.yaml
)";

// A scratch folder laid out like a repository: playbooks/{scenarios,setups,runbooks} and images/.
class ConfigLoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "chaoslab-config-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    Write("images/winsim/image.yaml", kImage);
    Write("playbooks/setups/small.yaml", kSetup);
    Write("playbooks/runbooks/reboot-3.yaml", kRunbook);
    Write("playbooks/scenarios/s.yaml", kScenario);
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  // Writes `text` to `relative` under the scratch folder and returns its full path.
  std::string Write(const std::string& relative, const std::string& text) {
    std::filesystem::path path = root_ / relative;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << text;
    return path.string();
  }
  std::string Path(const std::string& relative) const { return (root_ / relative).string(); }
  std::string Images() const { return Path("images"); }

  std::filesystem::path root_;
};

// The error names `where` ("file:line:column" after the scratch folder) and contains every word.
inline void ExpectError(const Status& status, const std::string& where,
                        std::initializer_list<std::string> words) {
  ASSERT_FALSE(status.ok()) << "expected an error at " << where;
  EXPECT_NE(status.message().find(where + ": "), std::string::npos)
      << "location " << where << " missing in: " << status.message();
  for (const std::string& word : words) {
    EXPECT_NE(status.message().find(word), std::string::npos)
        << "'" << word << "' missing in: " << status.message();
  }
}

inline std::string SourceDir() {
  const char* dir = std::getenv("CHAOSLAB_SOURCE_DIR");
  return dir != nullptr ? dir : ".";
}

}  // namespace chaoslab::config::testing
