// Ranged assumptions ({assume: X, range: [LOW, HIGH]}) in the strict reader: nominal values, draws,
// what a load records, and the errors (file:line:column).
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>

#include "lab/config/assumptions.h"
#include "lab/config/config_loader.h"
#include "lab/config/config_test_util.h"

namespace chaoslab::config {
namespace {

using testing::ConfigLoaderTest;
using testing::ExpectError;

// A setup with a ranged technician count (line 5), travel mode (line 6) and USB sticks (line 7).
constexpr char kRangedSetup[] = R"(name: small
image: winsim
sites:
  - name: hq
    technicians: {assume: 4, range: [2, 9]}
    travel: {triangular: [1m, {assume: 3m, range: [2m, 6m]}, 10m]}
    usb_sticks: {assume: 2, range: [0, 5]}
groups:
  - name: ws
    role: workstation
    count: 2
    sensor: "7.11"
)";

TEST(AssumptionValueTest, UniformOverTheRangeAndWholeNumbersForCounts) {
  Assumption share{"m.yaml:1:1", "share", {}, AssumptionKind::kNumber, 0.2, 0.1, 0.3};
  EXPECT_DOUBLE_EQ(ValueAt(share, 0), 0.1);
  EXPECT_DOUBLE_EQ(ValueAt(share, 0.5), 0.2);
  EXPECT_DOUBLE_EQ(ValueAt(share, 1), 0.3);
  Assumption count{"s.yaml:1:1", "technicians", {}, AssumptionKind::kInteger, 4, 2, 9};
  // Eight whole numbers, each an eighth of [0, 1].
  EXPECT_EQ(ValueAt(count, 0), 2);
  EXPECT_EQ(ValueAt(count, 0.124), 2);
  EXPECT_EQ(ValueAt(count, 0.126), 3);
  EXPECT_EQ(ValueAt(count, 0.999), 9);
  EXPECT_EQ(ValueAt(count, 1), 9);
  Assumption travel{"s.yaml:1:1", "travel", {}, AssumptionKind::kDuration, 180, 120, 360};
  EXPECT_EQ(FormatAssumed(travel, 360), "6m");
  EXPECT_EQ(FormatAssumed(count, 9), "9");
}

TEST_F(ConfigLoaderTest, RangedScalarsLoadAsTheirNominalValue) {
  const std::string path = Write("playbooks/setups/ranged.yaml", kRangedSetup);
  Result<SetupConfig> setup = LoadSetup(path);  // no scope: nominal values, nothing recorded
  ASSERT_TRUE(setup.ok()) << setup.status().ToString();
  EXPECT_EQ(setup->sites[0].technicians, 4);
  EXPECT_EQ(setup->sites[0].travel.b, 180);
  EXPECT_EQ(setup->sites[0].usb_sticks, 2);
}

TEST_F(ConfigLoaderTest, ALoadRecordsEveryRangedScalarOnceWithWhereItIs) {
  const std::string path = Write("playbooks/setups/ranged.yaml", kRangedSetup);
  Assumptions recorded;
  {
    AssumptionScope scope(&recorded);
    ASSERT_TRUE(LoadSetup(path).ok());
    ASSERT_TRUE(LoadSetup(path).ok());  // the same file again: the same assumptions
  }
  ASSERT_EQ(recorded.list().size(), 3u);
  const Assumption& techs = recorded.list()[0];
  EXPECT_EQ(techs.id, "setups/ranged.yaml:5:18");
  EXPECT_EQ(techs.name, "technicians");
  EXPECT_EQ(techs.kind, AssumptionKind::kInteger);
  EXPECT_EQ(techs.nominal, 4);
  EXPECT_EQ(techs.low, 2);
  EXPECT_EQ(techs.high, 9);
  EXPECT_EQ(techs.where.line, 5);
  const Assumption& travel = recorded.list()[1];
  EXPECT_EQ(travel.kind, AssumptionKind::kDuration);
  EXPECT_EQ(travel.low, 120);
  EXPECT_EQ(travel.high, 360);
  EXPECT_EQ(recorded.list()[2].name, "usb_sticks");
}

TEST_F(ConfigLoaderTest, ADrawGivesEachAssumptionItsValueAndCountsStayWhole) {
  const std::string path = Write("playbooks/setups/ranged.yaml", kRangedSetup);
  Assumptions draw(std::map<std::string, double>{{"setups/ranged.yaml:5:18", 0.99},
                                                 {"setups/ranged.yaml:6:31", 0.0}});
  AssumptionScope scope(&draw);
  Result<SetupConfig> setup = LoadSetup(path);
  ASSERT_TRUE(setup.ok()) << setup.status().ToString();
  EXPECT_EQ(setup->sites[0].technicians, 9);
  EXPECT_EQ(setup->sites[0].travel.b, 120) << "the mode at the low end of its range";
  EXPECT_EQ(setup->sites[0].usb_sticks, 2) << "not in the draw: nominal";
}

// Crisis staffing's people are read as a distribution (a count may vary); its ranged parts are
// still whole people, not seconds: the uncertainty report showed "11s - 36s".
TEST_F(ConfigLoaderTest, RangedPeopleInADistributionAreCounts) {
  const std::string path = Write("playbooks/setups/crisis.yaml",
                                 "name: crisis\nimage: winsim\nsites:\n"
                                 "  - name: hq\n"
                                 "    technicians: 2\n"
                                 "    crisis:\n"
                                 "      call_in: {after: {assume: 30m, range: [15m, 45m]},\n"
                                 "                technicians: {assume: 21, range: [11, 36]}}\n"
                                 "groups:\n  - {name: ws, role: workstation, count: 4}\n");
  Assumptions recorded;
  {
    AssumptionScope scope(&recorded);
    Result<SetupConfig> setup = LoadSetup(path);
    ASSERT_TRUE(setup.ok()) << setup.status().ToString();
  }
  ASSERT_EQ(recorded.list().size(), 2u);
  EXPECT_EQ(recorded.list()[0].kind, AssumptionKind::kDuration);  // the delay
  EXPECT_EQ(recorded.list()[1].kind, AssumptionKind::kInteger);   // the people
  EXPECT_EQ(FormatAssumed(recorded.list()[1], 21), "21");
  Assumptions draw(std::map<std::string, double>{{recorded.list()[1].id, 0.5}});
  AssumptionScope scope(&draw);
  Result<SetupConfig> drawn = LoadSetup(path);
  ASSERT_TRUE(drawn.ok()) << drawn.status().ToString();
  const double people = drawn->sites[0].crisis.call_in->technicians.a;
  EXPECT_EQ(people, std::floor(people)) << "a whole number of people";
}

TEST_F(ConfigLoaderTest, RangeWithLowAboveHighIsAnErrorAtTheRange) {
  const std::string path = Write("playbooks/setups/bad.yaml", R"(name: small
image: winsim
sites:
  - name: hq
    technicians: {assume: 4, range: [9, 2]}
groups:
  - {name: ws, role: workstation, count: 2}
)");
  ExpectError(LoadSetup(path).status(), "bad.yaml:5:37", {"technicians", "[9, 2]", "LOW <= HIGH"});
}

TEST_F(ConfigLoaderTest, NominalOutsideItsRangeIsAnErrorAtTheValue) {
  const std::string path = Write("playbooks/runbooks/bad.yaml", R"(name: rb
starts: after-revert
steps:
  - reboot: {times: {assume: 20, range: [1, 15]}}
)");
  ExpectError(LoadRunbook(path).status(), "bad.yaml:4:30", {"times", "20", "outside", "[1, 15]"});
}

TEST_F(ConfigLoaderTest, MalformedAssumptionsAreErrorsWithTheirPlace) {
  auto setup_with = [&](const std::string& technicians) {
    return Write("playbooks/setups/bad.yaml",
                 "name: small\nimage: winsim\nsites:\n  - name: hq\n"
                 "    technicians: " +
                     technicians +
                     "\ngroups:\n  - {name: ws, role: workstation, "
                     "count: 2}\n");
  };
  ExpectError(LoadSetup(setup_with("{assume: 4}")).status(), "bad.yaml:5:18",
              {"missing required key 'range'"});
  ExpectError(LoadSetup(setup_with("{assume: 4, range: [2]}")).status(), "bad.yaml:5:37",
              {"technicians range", "[LOW, HIGH]", "a list of 1"});
  ExpectError(LoadSetup(setup_with("{assume: 4, range: [2, 9], why: x}")).status(), "bad.yaml:5:45",
              {"why"});
  ExpectError(LoadSetup(setup_with("{assume: 4, range: [2, many]}")).status(), "bad.yaml:5:41",
              {"technicians", "integer", "many"});
  ExpectError(LoadSetup(setup_with("{assume: [4], range: [2, 9]}")).status(), "bad.yaml:5:27",
              {"plain value"});
  // The plain reader's own limits hold for the range too.
  ExpectError(LoadSetup(setup_with("{assume: 4, range: [-1, 9]}")).status(), "bad.yaml:5:38",
              {"technicians must be at least 0"});
}

TEST_F(ConfigLoaderTest, RangedDurationsAndPercentages) {
  const std::string path = Write("playbooks/runbooks/ranged.yaml", R"(name: rb
starts: after-revert
parallelism: {assume: 10, range: [5, 20]}
steps:
  - boot:
      into: safe-mode
      takes: {assume: 4m, range: [2m, 10m]}
)");
  Assumptions recorded;
  AssumptionScope scope(&recorded);
  Result<RunbookConfig> rb = LoadRunbook(path);
  ASSERT_TRUE(rb.ok()) << rb.status().ToString();
  EXPECT_EQ(rb->parallelism, 10);
  EXPECT_EQ(rb->steps[0].takes.a, 240);
  ASSERT_EQ(recorded.list().size(), 2u);
  const Assumption& takes =
      recorded.list()[0].name == "takes" ? recorded.list()[0] : recorded.list()[1];
  EXPECT_EQ(takes.kind, AssumptionKind::kDuration);
  EXPECT_EQ(takes.high, 600);
}

}  // namespace
}  // namespace chaoslab::config
