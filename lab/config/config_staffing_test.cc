// Sites in time zones, shifts on weekdays, crisis staffing and the scenario's date: the YAML and
// its errors.
#include <gtest/gtest.h>

#include <string>

#include "lab/config/config_loader.h"
#include "lab/config/config_test_util.h"

namespace chaoslab::config {
namespace {

using testing::ConfigLoaderTest;
using testing::ExpectError;

// A setup whose one site is written by the test (`site` starts at "  - name: hq" on line 4).
std::string SetupWithSite(const std::string& site) {
  return "name: small\nimage: winsim\nsites:\n" + site +
         "groups:\n  - name: ws\n    role: workstation\n    count: 2\n";
}

TEST(ScenarioDateTest, WeekdaysOfKnownDates) {
  EXPECT_EQ(ScenarioDate{}.Weekday(), 4) << "2024-07-19 was a Friday";
  EXPECT_EQ(ScenarioDate{}.ToString(), "2024-07-19");
  EXPECT_EQ((ScenarioDate{2024, 7, 20, {}}.Weekday()), 5);  // Saturday
  EXPECT_EQ((ScenarioDate{1970, 1, 1, {}}.Weekday()), 3);   // Thursday
  EXPECT_EQ((ScenarioDate{2000, 2, 29, {}}.Weekday()), 1);  // Tuesday, a leap day
  EXPECT_EQ((ScenarioDate{2024, 3, 1, {}}.Weekday()), 4);   // Friday, after a leap day
  EXPECT_EQ(WeekdayName(0), "mon");
  EXPECT_EQ(ParseWeekday("sun"), 6);
  EXPECT_FALSE(ParseWeekday("Sunday").has_value());
}

TEST_F(ConfigLoaderTest, SiteTimezoneDaysAndCrisisStaffingLoad) {
  const std::string path = Write("setup.yaml", SetupWithSite(R"(  - name: hq
    technicians: 2
    timezone: "-04:00"
    shifts:
      - {hours: "08:00-17:00", days: mon-fri}
      - {hours: "22:00-06:00", days: [fri-sun, wed]}
      - "10:00-12:00"
    crisis:
      from: "05:00"
      extended_hours: {after: 2h}
      call_in: {after: 3h, technicians: 4}
      outside_help: {after: {uniform: [1d, 3d]}, technicians: {triangular: [2, 5, 10]}}
  - name: branch
    timezone: UTC
    crisis: {call_in: {after: 0, technicians: 0}}
)"));
  Result<SetupConfig> setup = LoadSetup(path);
  ASSERT_TRUE(setup.ok()) << setup.status().ToString();
  const SiteConfig& hq = setup->sites[0];
  EXPECT_EQ(hq.utc_offset, -4 * 3600.0);
  ASSERT_EQ(hq.shifts.size(), 3u);
  EXPECT_EQ(hq.shifts[0].days, 0x1f) << "mon..fri";
  EXPECT_EQ(hq.shifts[1].days, 0x70 | 0x04) << "fri, sat, sun and wed";
  EXPECT_EQ(hq.shifts[2].days, kEveryDay);
  EXPECT_EQ(hq.shifts[0].start, 8 * 3600.0);
  ASSERT_TRUE(hq.crisis.known_at.has_value());
  EXPECT_EQ(*hq.crisis.known_at, 5 * 3600.0);
  ASSERT_TRUE(hq.crisis.extended_hours.has_value());
  EXPECT_EQ(hq.crisis.extended_hours->a, 2 * 3600.0);
  ASSERT_TRUE(hq.crisis.call_in.has_value());
  EXPECT_EQ(hq.crisis.call_in->after.a, 3 * 3600.0);
  EXPECT_EQ(hq.crisis.call_in->technicians.a, 4);
  ASSERT_TRUE(hq.crisis.outside_help.has_value());
  EXPECT_EQ(hq.crisis.outside_help->after.kind, Distribution::Kind::kUniform);
  EXPECT_EQ(hq.crisis.outside_help->technicians.kind, Distribution::Kind::kTriangular);
  EXPECT_EQ(hq.crisis.outside_help->technicians.c, 10);
  const SiteConfig& branch = setup->sites[1];
  EXPECT_EQ(branch.utc_offset, 0);
  EXPECT_FALSE(branch.crisis.known_at.has_value()) << "default: from its first crash";
  EXPECT_TRUE(branch.crisis.any());

  // Scaled to 10x the hosts, the people who come scale too.
  const SetupConfig big = ScaleSetupTo(*setup, 20);
  EXPECT_EQ(big.sites[0].crisis.call_in->technicians.a, 40);
  EXPECT_EQ(big.sites[0].crisis.outside_help->technicians.c, 100);
}

TEST_F(ConfigLoaderTest, SitesWithoutTheNewKeysKeepTheirDefaults) {
  Result<SetupConfig> setup = LoadSetup(Path("playbooks/setups/small.yaml"));
  ASSERT_TRUE(setup.ok()) << setup.status().ToString();
  EXPECT_EQ(setup->sites[0].utc_offset, 0);
  EXPECT_FALSE(setup->sites[0].crisis.any());
  Result<ScenarioConfig> sc = LoadScenario(Path("playbooks/scenarios/s.yaml"), Images());
  ASSERT_TRUE(sc.ok()) << sc.status().ToString();
  EXPECT_EQ(sc->date.ToString(), "2024-07-19");
}

TEST_F(ConfigLoaderTest, BadTimezoneIsAnErrorAtItsValue) {
  for (const char* bad : {"\"+2\"", "Europe/Berlin", "\"+15:00\"", "\"-04:60\"", "[1]"}) {
    const std::string path =
        Write("bad.yaml", SetupWithSite(std::string("  - name: hq\n    timezone: ") + bad + "\n"));
    ExpectError(LoadSetup(path).status(), path + ":5:15", {"timezone: expected a UTC offset"});
  }
}

TEST_F(ConfigLoaderTest, UnknownDayIsAnErrorAtItsValue) {
  std::string path = Write("bad.yaml", SetupWithSite(R"(  - name: hq
    shifts:
      - {hours: "08:00-17:00", days: mon-fry}
)"));
  ExpectError(LoadSetup(path).status(), path + ":6:38",
              {"unknown day 'fry' in days 'mon-fry'", "allowed: mon, tue"});
  path = Write("bad.yaml", SetupWithSite(R"(  - name: hq
    shifts:
      - {hours: "08:00-17:00", days: [mon, funday]}
)"));
  ExpectError(LoadSetup(path).status(), path + ":6:44", {"unknown day 'funday'"});
  path = Write("bad.yaml", SetupWithSite(R"(  - name: hq
    shifts:
      - {days: mon}
)"));
  ExpectError(LoadSetup(path).status(), path + ":6:9", {"missing required key 'hours'"});
}

TEST_F(ConfigLoaderTest, NegativeStaffingSizesAndDelaysAreErrors) {
  std::string path = Write("bad.yaml", SetupWithSite(R"(  - name: hq
    crisis:
      call_in: {after: -1h, technicians: 2}
)"));
  ExpectError(LoadSetup(path).status(), path + ":6:24",
              {"crisis call_in after: a delay cannot be negative, got '-1h'"});
  path = Write("bad.yaml", SetupWithSite(R"(  - name: hq
    crisis:
      outside_help: {after: 1d, technicians: {uniform: [-3, 5]}}
)"));
  ExpectError(LoadSetup(path).status(), path + ":6:57",
              {"crisis outside_help technicians: expected a whole number of people", "'-3'"});
  path = Write("bad.yaml", SetupWithSite(R"(  - name: hq
    crisis:
      call_in: {after: 1h, technicians: 5m}
)"));
  ExpectError(LoadSetup(path).status(), path + ":6:41", {"whole number of people", "'5m'"});
  path = Write("bad.yaml", SetupWithSite(R"(  - name: hq
    crisis:
      extended_hours: {after: {uniform: [2h, -1h]}}
)"));
  ExpectError(LoadSetup(path).status(), path + ":6:46", {"a delay cannot be negative"});
  path = Write("bad.yaml", SetupWithSite("  - name: hq\n    crisis: {from: first-crash}\n"));
  ExpectError(LoadSetup(path).status(), path + ":5:13", {"expected at least one of"});
}

TEST_F(ConfigLoaderTest, StaffingChangeBeforeTheScenarioStartsIsAnError) {
  const std::string setup = Write("playbooks/setups/small.yaml", SetupWithSite(R"(  - name: hq
    crisis:
      from: "03:00"
      call_in: {after: 1h, technicians: 2}
)"));
  const std::string path = Write("playbooks/scenarios/s.yaml", std::string(testing::kScenario));
  ExpectError(LoadScenario(path, Images()).status(), setup + ":6:13",
              {"site 'hq': crisis staffing from 03:00 is before the scenario starts",
               "rollout start 04:00"});
  // From the start on, it is fine.
  Write("playbooks/scenarios/s.yaml",
        std::string(testing::kScenario) + "rollout: {start: \"03:00\"}\n");
  EXPECT_TRUE(LoadScenario(path, Images()).ok());
}

TEST_F(ConfigLoaderTest, ScenarioDateIsReadAndChecked) {
  std::string path =
      Write("playbooks/scenarios/d.yaml", std::string(testing::kScenario) + "date: 2024-07-20\n");
  Result<ScenarioConfig> sc = LoadScenario(path, Images());
  ASSERT_TRUE(sc.ok()) << sc.status().ToString();
  EXPECT_EQ(sc->date.Weekday(), 5);
  for (const char* bad : {"2024-02-30", "19-07-2024", "2023-02-29", "tomorrow"}) {
    path = Write("playbooks/scenarios/d.yaml",
                 std::string(testing::kScenario) + "date: " + bad + "\n");
    ExpectError(LoadScenario(path, Images()).status(), path + ":4:7", {"date"});
  }
}

}  // namespace
}  // namespace chaoslab::config
