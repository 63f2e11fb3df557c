// Services with a backlog (ServiceConfig::backlog): the YAML and its errors, each at its
// file:line:column.
#include <gtest/gtest.h>

#include <string>

#include "lab/config/config_loader.h"
#include "lab/config/config_test_util.h"

namespace chaoslab::config {
namespace {

using testing::ConfigLoaderTest;
using testing::ExpectError;
using testing::kSetup;

// kSetup (10 lines) and `services` from line 11.
class BacklogConfigTest : public ConfigLoaderTest {
 protected:
  Result<SetupConfig> Load(const std::string& services) {
    return LoadSetup(
        Write("playbooks/setups/small.yaml", std::string(kSetup) + "services:\n" + services));
  }
  // crew-scheduling (line 12) with a backlog whose lines start at line 15, then check-in (its
  // name on line `15 + lines of backlog`).
  Result<SetupConfig> LoadCrew(const std::string& backlog) {
    return Load("  - name: crew-scheduling\n    needs: [{group: ws}]\n    backlog:\n" + backlog +
                "  - name: check-in\n    needs: [{group: ws}]\n");
  }
};

TEST_F(BacklogConfigTest, ReadsRatesAndInputsNamedLater) {
  auto setup = LoadCrew("      grows: 1.5\n      works_off: 0.25\n      inputs: [check-in]\n");
  ASSERT_TRUE(setup.ok()) << setup.status().ToString();
  ASSERT_EQ(setup->services.size(), 2u);
  ASSERT_TRUE(setup->services[0].backlog.has_value());
  const ServiceBacklog& b = *setup->services[0].backlog;
  EXPECT_DOUBLE_EQ(b.grows, 1.5);
  EXPECT_DOUBLE_EQ(b.works_off, 0.25);
  EXPECT_EQ(b.inputs, std::vector<std::string>{"check-in"});
  EXPECT_EQ(b.inputs_where[0].line, 17);
  EXPECT_FALSE(setup->services[1].backlog.has_value()) << "no backlog: up with its hosts";
  EXPECT_EQ(b.cap, 0) << "no cap: it grows for as long as the outage lasts";
  // Inputs are optional: a backlog of its own outages only; a cap is a duration of work.
  auto own = LoadCrew("      grows: 1\n      works_off: 2\n      cap: 2d\n");
  ASSERT_TRUE(own.ok()) << own.status().ToString();
  EXPECT_TRUE(own->services[0].backlog->inputs.empty());
  EXPECT_EQ(own->services[0].backlog->cap, 2 * 86400.0);
}

TEST_F(BacklogConfigTest, RejectsUnknownKeysMissingAndOutOfRangeRates) {
  ExpectError(LoadCrew("      grows: 1\n      works_off: 1\n      limit: 3h\n").status(),
              "setups/small.yaml:17:7", {"unknown key 'limit'", "grows", "works_off", "cap"});
  ExpectError(LoadCrew("      grows: 1\n      works_off: 1\n      cap: 0s\n").status(),
              "setups/small.yaml:17:12", {"cap"});
  ExpectError(LoadCrew("      grows: 1\n").status(), "setups/small.yaml:15:7",
              {"missing required key 'works_off'"});
  ExpectError(LoadCrew("      grows: 0\n      works_off: 1\n").status(), "setups/small.yaml:15:14",
              {"grows", "more than 0"});
  ExpectError(LoadCrew("      grows: 1\n      works_off: -2\n").status(), "setups/small.yaml:16:18",
              {"works_off", "more than 0"});
  ExpectError(LoadCrew("      grows: fast\n      works_off: 1\n").status(),
              "setups/small.yaml:15:14", {"grows"});
  ExpectError(LoadCrew("      grows: 1\n      works_off: 1\n      inputs: check-in\n").status(),
              "setups/small.yaml:17:15", {"inputs", "list of service names"});
}

TEST_F(BacklogConfigTest, RejectsUnknownOwnAndRepeatedInputs) {
  ExpectError(
      LoadCrew("      grows: 1\n      works_off: 1\n      inputs: [check-in, boarding]\n").status(),
      "setups/small.yaml:17:26", {"unknown input 'boarding'", "crew-scheduling, check-in"});
  ExpectError(
      LoadCrew("      grows: 1\n      works_off: 1\n      inputs: [crew-scheduling]\n").status(),
      "setups/small.yaml:17:16", {"'crew-scheduling' cannot be its own input"});
  ExpectError(
      LoadCrew("      grows: 1\n      works_off: 1\n      inputs: [check-in, check-in]\n").status(),
      "setups/small.yaml:17:26", {"input 'check-in' twice", "small.yaml:17:16"});
}

TEST_F(BacklogConfigTest, RejectsACycleOfInputsAtTheInputWrittenLast) {
  auto setup = Load(
      "  - name: crew-scheduling\n"                                         // 12
      "    needs: [{group: ws}]\n"                                          // 13
      "    backlog: {grows: 1, works_off: 1, inputs: [ops]}\n"              // 14
      "  - name: ops\n"                                                     // 15
      "    needs: [{group: ws}]\n"                                          // 16
      "    backlog: {grows: 1, works_off: 1, inputs: [crew-scheduling]}\n"  // 17
  );
  ExpectError(setup.status(), "setups/small.yaml:17:48",
              {"service inputs form a cycle", "'crew-scheduling' takes input from 'ops'",
               "takes input from 'crew-scheduling'", "small.yaml:14:48"});
}

}  // namespace
}  // namespace chaoslab::config
