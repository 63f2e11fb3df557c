// Issue 18: a mix's `regions:` spread each archetype's organisations over time zones. The loader's
// errors (file:line:column), the stratified assignment, and the point of it: an office-hours
// organisation in the Americas starts its recovery later in UTC than the same one in Europe.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "lab/backend/guest_clock.h"
#include "lab/config/config_loader.h"
#include "lab/sim/calibration.h"
#include "lab/sim/mix.h"
#include "lab/sim/sim.h"

namespace chaoslab::sim {
namespace {

namespace fs = std::filesystem;

std::string Source() {
  const char* s = std::getenv("CHAOSLAB_SOURCE_DIR");
  return s ? s : ".";
}

class RegionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("chaoslab-sim-region-" + std::to_string(getpid()));
    fs::create_directories(dir_);
    auto sc = config::LoadScenario(Source() + "/playbooks/scenarios/global-2024.yaml",
                                   Source() + "/images");
    ASSERT_TRUE(sc.ok()) << sc.status().ToString();
    scenario_ = *sc;
    // The cloud remediation needs a calibration's remediation race; these tests are about shifts.
    scenario_.vendor_remediation = {};
    scenario_.runbook =
        *config::LoadRunbook(Source() + "/playbooks/runbooks/safe-mode-delete.yaml");
    // One office of 10 wired desktops, one technician 09:00-18:00 local, every day.
    setup_ = Write("office.yaml",
                   "name: office\nimage: winsim\nsites:\n"
                   "  - {name: office, technicians: 1, shifts: [\"09:00-18:00\"], travel: 1m}\n"
                   "groups:\n  - {name: desktops, role: workstation, count: 10, network: wired}\n");
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }
  std::string MixWithRegions(const std::string& regions, int64_t hosts = 20) {
    return "name: m\nhosts: " + std::to_string(hosts) + "\nregions:\n" + regions +
           "archetypes:\n  - {name: office, setup: " + setup_ + ", share: 1, size: 10}\n";
  }
  static void ExpectError(const Status& s, const std::string& where, const std::string& words) {
    ASSERT_FALSE(s.ok()) << "expected an error at " << where;
    EXPECT_NE(s.message().find(where + ": "), std::string::npos) << s.message();
    EXPECT_NE(s.message().find(words), std::string::npos) << s.message();
  }

  fs::path dir_;
  std::string setup_;
  config::ScenarioConfig scenario_;
};

TEST_F(RegionTest, RegionsLoadWithTheirOffsets) {
  const std::string path = Write("ok.yaml", MixWithRegions("  - {name: americas, share: 0.7, "
                                                           "timezone: \"-04:00\"}\n"
                                                           "  - {name: europe, share: 0.3, "
                                                           "timezone: \"+02:00\"}\n"));
  auto mix = LoadMix(path, scenario_);
  ASSERT_TRUE(mix.ok()) << mix.status().ToString();
  ASSERT_EQ(mix->regions.size(), 2u);
  EXPECT_EQ(mix->regions[0].name, "americas");
  EXPECT_DOUBLE_EQ(mix->regions[0].share, 0.7);
  EXPECT_DOUBLE_EQ(mix->regions[0].utc_offset, -4 * 3600.0);
  EXPECT_DOUBLE_EQ(mix->regions[1].utc_offset, 2 * 3600.0);
}

TEST_F(RegionTest, BadRegionsAreErrorsWithFileLineColumn) {
  std::string path = Write("r1.yaml", MixWithRegions("  - {name: a, share: 0.5, timezone: UTC}\n"
                                                     "  - {name: b, share: 0.4, timezone: UTC}\n"));
  ExpectError(LoadMix(path, scenario_).status(), path + ":4:3", "region shares add up to 0.9");
  path = Write("r2.yaml", MixWithRegions("  - {name: a, share: 1, timezone: \"+2\"}\n"));
  ExpectError(LoadMix(path, scenario_).status(), path + ":4:35", "timezone: expected a UTC offset");
  path = Write("r3.yaml", MixWithRegions("  - {name: a, share: 0.5, timezone: UTC}\n"
                                         "  - {name: a, share: 0.5, timezone: UTC}\n"));
  ExpectError(LoadMix(path, scenario_).status(), path + ":5:12", "region 'a' is listed twice");
  path = Write("r4.yaml",
               "name: m\nhosts: 20\nregions: []\narchetypes:\n"
               "  - {name: office, setup: " +
                   setup_ + ", share: 1, size: 10}\n");
  ExpectError(LoadMix(path, scenario_).status(), path + ":3:10", "at least one region");
  path = Write("r5.yaml", MixWithRegions("  - {name: a, share: 1, timezone: UTC, tz: UTC}\n"));
  ExpectError(LoadMix(path, scenario_).status(), path + ":4:40", "unknown key 'tz'");
  path = Write("r6.yaml", MixWithRegions("  - {name: a, share: 0, timezone: UTC}\n"));
  ExpectError(LoadMix(path, scenario_).status(), path + ":4:22", "fraction in (0, 1]");
}

TEST_F(RegionTest, OrganisationsAreStratifiedByIndex) {
  Mix mix;
  mix.regions = {Region{"americas", 0.7, 0, {}}, Region{"europe", 0.18, 0, {}},
                 Region{"asia-pacific", 0.12, 0, {}}};
  int counts[3] = {0, 0, 0};
  for (int64_t n = 0; n < 1000; ++n) counts[RegionOf(mix, n, 1000)]++;
  EXPECT_EQ(counts[0], 700);
  EXPECT_EQ(counts[1], 180);
  EXPECT_EQ(counts[2], 120);
  EXPECT_EQ(RegionOf(mix, 0, 1), 0);  // one organisation: the largest-first region's middle
  EXPECT_EQ(RegionOf(Mix{}, 5, 10), 0);
}

// 04:09 UTC is 00:09 in New York and 06:09 in Berlin: the same office starts at 09:00 local,
// 13:00 UTC in the Americas and 07:00 UTC in Europe.
TEST_F(RegionTest, OfficeHoursInTheAmericasStartLaterInUtcThanInEurope) {
  const std::string path = Write("world.yaml", MixWithRegions("  - {name: americas, share: 0.5, "
                                                              "timezone: \"-04:00\"}\n"
                                                              "  - {name: europe, share: 0.5, "
                                                              "timezone: \"+02:00\"}\n"));
  auto mix = LoadMix(path, scenario_);
  ASSERT_TRUE(mix.ok()) << mix.status().ToString();
  ASSERT_EQ(mix->archetypes[0].organisations, 2);
  Calibration cal;
  cal.image = scenario_.image.name;
  cal.image_hash = *RecipeHash(scenario_.image);
  cal.generated_at = "test";
  cal.method.guest_clock = GuestClockName(GuestClock::kInstructions);
  cal.method.host_path = "realtime";
  cal.method.race_window_ms = scenario_.image.race_window_ms;
  cal.race[config::Network::kWired] = RaceFigures{.boots = 10, .wins = 0};  // reboots never help
  SimOptions o;
  o.scenario = &scenario_;
  o.calibration = &cal;
  o.mix = &*mix;
  o.threads = 1;
  std::vector<std::string> lines;
  o.progress = [&](const std::string& line) { lines.push_back(line); };
  auto run = RunSim(o);
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  double first[2] = {1e18, 1e18};
  for (const auto& h : run->hosts) {
    ASSERT_TRUE(h.recovered_at_s.has_value()) << h.id;
    const int org = h.id.rfind("office.1/", 0) == 0 ? 0 : 1;
    first[org] = std::min(first[org], *h.recovered_at_s);
  }
  const double release = scenario_.rollout.release;
  EXPECT_GE(first[0] + release, 13 * 3600.0);  // Americas: not before 09:00 at UTC-4
  EXPECT_LT(first[0] + release, 14 * 3600.0);
  EXPECT_GE(first[1] + release, 7 * 3600.0);  // Europe: from 09:00 at UTC+2
  EXPECT_LT(first[1] + release, 8 * 3600.0);
  const auto has = [&](const std::string& words) {
    return std::any_of(lines.begin(), lines.end(),
                       [&](const std::string& l) { return l.find(words) != std::string::npos; });
  };
  EXPECT_TRUE(has("region americas: 10 hosts")) << ::testing::PrintToString(lines);
  EXPECT_TRUE(has("region europe: 10 hosts")) << ::testing::PrintToString(lines);
}

}  // namespace
}  // namespace chaoslab::sim
