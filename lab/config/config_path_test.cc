// SetByPath / GetByPath (config_path.h): every settable path, the value parsers behind them, and
// every way a path, a name or a value can be wrong, including changes the loaders would refuse.
#include "lab/config/config_path.h"

#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <string>
#include <vector>

#include "lab/config/config_loader.h"
#include "lab/config/config_test_util.h"

namespace chaoslab::config {
namespace {

using testing::ConfigLoaderTest;
using testing::SourceDir;

// Two sites, a BitLocker group, the escrow on a domain controller, a service, PXE; a runbook that
// boots from USB (so the sticks matter), unlocks and restarts.
constexpr char kPathSetup[] = R"(name: small
image: winsim
sites:
  - {name: hq, technicians: 2, usb_sticks: 2, travel: 2m}
  - {name: branch, technicians: 1, usb_sticks: 1}
groups:
  - {name: dc, role: domain-controller, count: 1, site: hq}
  - {name: ws, role: workstation, count: 4, site: hq, bitlocker: true, network: wifi}
  - {name: shop, role: kiosk, count: 2, site: branch}
key_escrow: {hosted_on: dc, lookup: {uniform: [1m, 3m]}}
pxe: true
services:
  - name: tills
    needs: [{group: shop, at_least: 2}, {group: dc}]
    backlog: {grows: 2, works_off: 0.5, inputs: [logons]}
  - name: logons
    needs: [{group: dc}]
)";

constexpr char kPathRunbook[] = R"(name: usb
steps:
  - reboot: {times: 3}
  - boot: {into: usb, needs: [technician], takes: {triangular: [2m, 3m, 8m]}}
  - unlock-bitlocker: {when: {bitlocker: true}, needs: [key-escrow, technician], takes: 2m}
  - delete: "C-00000291*.sys"
  - restart: {needs: [technician], takes: {uniform: [30s, 2m]}}
)";

// Whether `path` is an instance of `pattern`: "setup.sites[hq].technicians" of
// "setup.sites[<site>].technicians".
bool Matches(const std::string& pattern, const std::string& path) {
  std::string re;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '<') {
      i = pattern.find('>', i);
      re += "[^\\]]+";
    } else if (std::string(".[]").find(pattern[i]) != std::string::npos) {
      re += std::string("\\") + pattern[i];
    } else {
      re += pattern[i];
    }
  }
  return std::regex_match(path, std::regex(re));
}

class ConfigPathTest : public ConfigLoaderTest {
 protected:
  void SetUp() override {
    ConfigLoaderTest::SetUp();
    Write("playbooks/setups/small.yaml", kPathSetup);
    Write("playbooks/runbooks/reboot-3.yaml", kPathRunbook);
    Result<ScenarioConfig> sc = LoadScenario(Path("playbooks/scenarios/s.yaml"), Images());
    ASSERT_TRUE(sc.ok()) << sc.status().ToString();
    sc_ = std::move(*sc);
  }
  // Sets `path` to `value` on a copy of the loaded scenario, expects success, returns the copy.
  ScenarioConfig Set(const std::string& path, const std::string& value) {
    ScenarioConfig copy = sc_;
    Status s = SetByPath(&copy, path, value);
    EXPECT_TRUE(s.ok()) << path << "=" << value << ": " << s.ToString();
    return copy;
  }
  // Expects SetByPath to fail with InvalidArgument, the message starting with the path and
  // containing every word.
  void ExpectSetError(const std::string& path, const std::string& value,
                      std::initializer_list<std::string> words) {
    ScenarioConfig copy = sc_;
    Status s = SetByPath(&copy, path, value);
    ASSERT_FALSE(s.ok()) << path << "=" << value << " was accepted";
    EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument) << s.ToString();
    EXPECT_EQ(s.message().rfind(path, 0), 0u) << "should start with the path: " << s.message();
    for (const std::string& w : words) {
      EXPECT_NE(s.message().find(w), std::string::npos)
          << "'" << w << "' missing in " << s.message();
    }
  }
  ScenarioConfig sc_;
};

TEST_F(ConfigPathTest, EverySettablePathSetsItsFieldAndReadsBack) {
  struct Case {
    std::string path, value, shown;
  };
  const std::vector<Case> cases = {
      {"seed", "7", "7"},
      {"race_window_ms", "900", "900"},
      {"stop.max_scenario", "36h", "36h"},
      {"rollout.policy", "all-at-once", "all-at-once"},
      {"rollout.start", "03:00", "03:00"},
      {"rollout.release", "04:30", "04:30"},
      {"rollout.revert", "06:00", "06:00"},
      {"runbook.parallelism", "3", "3"},
      {"runbook.steps[1].takes", "uniform(5m, 20m)", "uniform(5m, 20m)"},
      {"runbook.steps[0].times", "15", "15"},
      {"setup.pxe", "false", "false"},
      {"setup.hypervisor.repairs_at_once", "6", "6"},
      {"setup.hypervisor.script_ready", "{uniform: [1h, 4h]}", "uniform(1h, 4h)"},
      {"setup.key_escrow.hosted_on", "external", "external"},
      {"setup.key_escrow.lookup", "{triangular: [1m, 2m, 5m]}", "triangular(1m, 2m, 5m)"},
      {"setup.sites[hq].technicians", "5", "5"},
      {"setup.sites[branch].usb_sticks", "4", "4"},
      {"setup.sites[hq].remote_consoles.per_technician", "4", "4"},
      {"setup.sites[hq].remote_consoles.sessions", "10", "10"},
      {"setup.sites[hq].travel", "lognormal(10m, 30m)", "lognormal(median 10m, p90 30m)"},
      {"setup.groups[ws].count", "40", "40"},
      {"setup.groups[shop].bitlocker", "true", "true"},
      {"setup.groups[dc].oob_console", "oob", "true"},
      {"setup.groups[ws].network", "offline", "offline"},
      {"setup.groups[shop].sensor", "7.11-fixed", "7.11-fixed"},
      {"setup.services[tills].backlog.grows", "3.5", "3.5"},
      {"setup.services[tills].backlog.works_off", "0.25", "0.25"},
      {"setup.services[tills].backlog.cap", "2d", "48h"},
  };
  std::set<std::string> covered;
  for (const Case& c : cases) {
    ScenarioConfig changed = Set(c.path, c.value);
    Result<std::string> got = GetByPath(changed, c.path);
    ASSERT_TRUE(got.ok()) << c.path << ": " << got.status().ToString();
    EXPECT_EQ(*got, c.shown) << c.path;
    // The value printed is one SetByPath reads back to the same thing.
    ScenarioConfig again = sc_;
    ASSERT_TRUE(SetByPath(&again, c.path, *got).ok()) << c.path << "=" << *got;
    EXPECT_EQ(*GetByPath(again, c.path), c.shown) << c.path;
    for (const PathInfo& info : SettablePaths()) {
      if (Matches(info.pattern, c.path)) covered.insert(info.pattern);
    }
  }
  for (const PathInfo& info : SettablePaths()) {
    EXPECT_TRUE(covered.count(info.pattern)) << "no case for " << info.pattern;
    EXPECT_FALSE(info.takes.empty()) << info.pattern;
  }
}

TEST_F(ConfigPathTest, SettersChangeTheRightPlace) {
  EXPECT_EQ(Set("setup.sites[branch].technicians", "7").setup.sites[1].technicians, 7);
  EXPECT_EQ(Set("setup.sites[branch].technicians", "7").setup.sites[0].technicians, 2);
  EXPECT_EQ(Set("seed", "18446744073709551615").seed, 18446744073709551615ull);
  EXPECT_EQ(Set("rollout.revert", "05:00").rollout.revert, 5 * 3600);
  EXPECT_EQ(Set("setup.key_escrow.hosted_on", "external").setup.key_escrow.hosted_on, "");
  EXPECT_EQ(Set("setup.key_escrow.hosted_on", "ws").setup.key_escrow.hosted_on, "ws");
  const Distribution travel =
      Set("setup.sites[hq].travel", "uniform(5m, 20m)").setup.sites[0].travel;
  EXPECT_EQ(travel.kind, Distribution::Kind::kUniform);
  EXPECT_EQ(travel.a, 300);
  EXPECT_EQ(travel.b, 1200);
  EXPECT_EQ(Set("setup.sites[hq].travel", "90s").setup.sites[0].travel.a, 90);
  EXPECT_EQ(
      Set("setup.key_escrow.lookup", "lognormal(median 1m, p90 4m)").setup.key_escrow.lookup.b,
      240);
  // network: offline takes the group off the net in the window, as the loader's default does.
  ScenarioConfig offline = Set("setup.groups[ws].network", "offline");
  EXPECT_FALSE(offline.setup.groups[1].online_in_window);
  EXPECT_TRUE(Set("setup.groups[shop].network", "vpn").setup.groups[2].online_in_window);
  EXPECT_FALSE(Set("setup.groups[dc].oob_console", "none").setup.groups[0].oob_console);
  EXPECT_TRUE(Set("setup.groups[dc].oob_console", "true").setup.groups[0].oob_console);
  // Spaces around a value are the shell's, not the value's.
  EXPECT_EQ(Set("runbook.parallelism", " 4 ").runbook.parallelism, 4);
  EXPECT_EQ(
      Set("setup.services[tills].backlog.works_off", "1").setup.services[0].backlog->works_off, 1);
  EXPECT_EQ(Set("setup.services[tills].backlog.cap", "36h").setup.services[0].backlog->cap,
            36 * 3600);
  EXPECT_EQ(Set("setup.services[tills].backlog.cap", "none").setup.services[0].backlog->cap, 0);
  EXPECT_EQ(*GetByPath(sc_, "setup.services[tills].backlog.cap"), "none");
}

TEST_F(ConfigPathTest, PathsThatNameNoParameter) {
  for (const char* path :
       {"", "setup", "setup.sites", "setup.site[hq].technicians", "setup.sites[hq].technician",
        "setup.sites.hq.technicians", "runbook.steps[0]", "seed.x", "setup.groups[ws].role"}) {
    ExpectSetError(path, "1",
                   {"names no parameter", "settable: seed", "setup.sites[<site>].technicians"});
    EXPECT_FALSE(GetByPath(sc_, path).ok()) << path;
  }
  ExpectSetError("setup.sites[].technicians", "1", {"expected a name or index between [ and ]"});
  ExpectSetError("setup.sites[hq.technicians", "1", {"expected a name or index between [ and ]"});
}

TEST_F(ConfigPathTest, NamesAndIndexesTheScenarioDoesNotHave) {
  ExpectSetError("setup.sites[depot].technicians", "1",
                 {"no site 'depot'", "its sites: hq, branch"});
  ExpectSetError("setup.groups[servers].count", "1",
                 {"no group 'servers'", "its groups: dc, ws, shop"});
  ExpectSetError("runbook.steps[5].takes", "1m", {"no step 5", "0 to 4"});
  ExpectSetError("runbook.steps[x].takes", "1m", {"no step x"});
  ExpectSetError("runbook.steps[-1].takes", "1m", {"no step -1"});
  ExpectSetError("runbook.steps[1].times", "2", {"step 1 is a boot step", "reboot steps"});
  ExpectSetError("setup.key_escrow.hosted_on", "nobody", {"no group 'nobody'", "external"});
  ExpectSetError("setup.services[email].backlog.grows", "1",
                 {"no service 'email'", "its services: tills, logons"});
  ExpectSetError("setup.services[logons].backlog.grows", "1",
                 {"service 'logons'", "has no backlog"});
  Result<std::string> got = GetByPath(sc_, "setup.groups[nope].count");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().message().rfind("setup.groups[nope].count: no group 'nope'", 0), 0u)
      << got.status().message();
}

TEST_F(ConfigPathTest, ValuesOfTheWrongTypeOrRange) {
  ExpectSetError("setup.sites[hq].technicians", "two", {"expected an integer, got 'two'"});
  ExpectSetError("setup.sites[hq].technicians", "-1", {"must be at least 0"});
  ExpectSetError("setup.sites[hq].usb_sticks", "1.5", {"expected an integer"});
  ExpectSetError("setup.groups[ws].count", "0", {"count must be at least 1"});
  ExpectSetError("setup.groups[ws].bitlocker", "maybe", {"expected true or false"});
  ExpectSetError("setup.groups[ws].oob_console", "ilo", {"expected true, false, oob or none"});
  ExpectSetError("setup.groups[ws].network", "fiber", {"unknown network 'fiber'", "wired"});
  ExpectSetError("setup.groups[ws].sensor", "8.0", {"unknown sensor version '8.0'", "7.11-fixed"});
  ExpectSetError("setup.pxe", "yes please", {"expected true or false"});
  ExpectSetError("rollout.policy", "canary", {"unknown rollout policy 'canary'", "all-at-once"});
  ExpectSetError("rollout.revert", "25:00", {"revert"});
  ExpectSetError("runbook.parallelism", "", {"expected an integer"});
  ExpectSetError("seed", "-1", {"expected a non-negative integer"});
  ExpectSetError("race_window_ms", "0", {"must be at least 1"});
  ExpectSetError("stop.max_scenario", "0s", {"must be longer than zero"});
  ExpectSetError("stop.max_scenario", "soon", {"expected a duration"});
  ExpectSetError("setup.sites[hq].travel", "uniform(20m, 5m)", {"min <= max"});
  ExpectSetError("setup.sites[hq].travel", "uniform(5m)", {"expected a list of 2 durations"});
  ExpectSetError("setup.sites[hq].travel", "gamma(1m, 2m)", {"unknown key 'gamma'", "uniform"});
  ExpectSetError("setup.sites[hq].travel", "lognormal(30m, 10m)", {"must not be shorter"});
  ExpectSetError("setup.sites[hq].travel", "{uniform: [5m, ", {"setup.sites[hq].travel"});
  ExpectSetError("setup.key_escrow.lookup", "5 minutes", {"expected a duration"});
  ExpectSetError("runbook.steps[1].takes", "triangular(1m, 5m, 2m)", {"min <= mode <= max"});
  ExpectSetError("runbook.steps[0].times", "0", {"must be at least 1"});
  ExpectSetError("setup.services[tills].backlog.grows", "0", {"grows", "more than 0"});
  ExpectSetError("setup.services[tills].backlog.works_off", "fast", {"works_off"});
  ExpectSetError("setup.services[tills].backlog.cap", "0s", {"must be longer than zero"});
}

TEST_F(ConfigPathTest, ChangesTheLoadersWouldRefuseAreRefused) {
  // The service needs 2 shop hosts.
  ExpectSetError("setup.groups[shop].count", "1",
                 {"makes the scenario inconsistent",
                  "service 'tills' needs at least 2 hosts of "
                  "group 'shop', which has 1"});
  // boot: usb needs sticks, and no site would have any.
  ScenarioConfig no_sticks = Set("setup.sites[hq].usb_sticks", "0");
  Status s = SetByPath(&no_sticks, "setup.sites[branch].usb_sticks", "0");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("makes the scenario inconsistent"), std::string::npos);
  EXPECT_NE(s.message().find("usb-stick"), std::string::npos) << s.message();
  ExpectSetError("rollout.release", "06:00", {"expected start <= release <= revert"});
  ExpectSetError("rollout.start", "05:00", {"expected start <= release <= revert"});
  ExpectSetError("rollout.policy", "rings", {"policy: rings needs the scenario's `rings` list"});
  // A later revert would leave the cloud's quarantine before it (issue 18).
  sc_.vendor_remediation = {.enabled = true, .available = 6 * 3600.0};
  ExpectSetError("rollout.revert", "07:00", {"vendor_remediation available is before the revert"});
}

// Issue 18: a tool published before a release moved later is refused, at the tool's date.
TEST_F(ConfigPathTest, ATimeThatPutsAToolBeforeTheReleaseIsRefused) {
  StepConfig step = sc_.runbook.steps.front();
  step.tool = "usb-recovery";
  step.tool_available = UtcInstant{sc_.date.DaysSinceEpoch() * 86400 + 5 * 3600, {}};
  sc_.runbook.tools.push_back({"usb-recovery", *step.tool_available, {}});
  sc_.runbook.steps.push_back(step);
  Set("rollout.release", "04:30");
  ExpectSetError("rollout.release", "05:10",
                 {"tool 'usb-recovery'", "before the scenario's release"});
}

TEST_F(ConfigPathTest, RolloutPolicyOnAScenarioWithRings) {
  Result<ScenarioConfig> staged = LoadScenario(
      SourceDir() + "/playbooks/scenarios/staged-rollout.yaml", SourceDir() + "/images");
  ASSERT_TRUE(staged.ok()) << staged.status().ToString();
  ASSERT_FALSE(staged->rollout.rings.empty());
  ScenarioConfig once = *staged;
  ASSERT_TRUE(SetByPath(&once, "rollout.policy", "all-at-once").ok());
  EXPECT_TRUE(once.rollout.rings.empty());
  EXPECT_FALSE(once.rollout.gate.enabled);
  ScenarioConfig rings = *staged;
  ASSERT_TRUE(SetByPath(&rings, "rollout.policy", "rings").ok());
  EXPECT_EQ(rings.rollout.rings.size(), staged->rollout.rings.size());
}

TEST_F(ConfigPathTest, AMixHasNoSetupToSet) {
  Result<ScenarioConfig> world =
      LoadScenario(SourceDir() + "/playbooks/scenarios/global-2024.yaml", SourceDir() + "/images");
  ASSERT_TRUE(world.ok()) << world.status().ToString();
  ScenarioConfig copy = *world;
  Status s = SetByPath(&copy, "setup.sites[hq].technicians", "3");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("mix of organisations"), std::string::npos) << s.message();
  EXPECT_TRUE(SetByPath(&copy, "seed", "5").ok());
  EXPECT_EQ(copy.seed, 5u);
}

// Every shipped scenario (and its setup) reads back and takes its own values unchanged: the
// setter accepts what the loaders accepted.
TEST(ConfigPathShipped, EveryParameterOfTheShippedScenariosRoundTrips) {
  for (const char* name : {"bitlocker-escrow", "airline-hub-37k", "channel-291"}) {
    Result<ScenarioConfig> sc = LoadScenario(SourceDir() + "/playbooks/scenarios/" + name + ".yaml",
                                             SourceDir() + "/images");
    ASSERT_TRUE(sc.ok()) << sc.status().ToString();
    int checked = 0;
    for (const PathInfo& info : SettablePaths()) {
      std::vector<std::string> paths;
      if (info.pattern.find("<site>") != std::string::npos) {
        for (const SiteConfig& s : sc->setup.sites) {
          std::string p = info.pattern;
          paths.push_back(p.replace(p.find("<site>"), 6, s.name));
        }
      } else if (info.pattern.find("<group>") != std::string::npos) {
        for (const GroupConfig& g : sc->setup.groups) {
          std::string p = info.pattern;
          paths.push_back(p.replace(p.find("<group>"), 7, g.name));
        }
      } else if (info.pattern.find("<service>") != std::string::npos) {
        for (const ServiceConfig& s : sc->setup.services) {
          if (!s.backlog) continue;  // only a backlog has rates
          std::string p = info.pattern;
          paths.push_back(p.replace(p.find("<service>"), 9, s.name));
        }
      } else if (info.pattern.find("<i>") != std::string::npos) {
        std::string p = info.pattern;
        paths.push_back(p.replace(p.find("<i>"), 3, "0"));
      } else {
        paths.push_back(info.pattern);
      }
      for (const std::string& path : paths) {
        Result<std::string> value = GetByPath(*sc, path);
        if (!value.ok()) {
          // Only a reboot step has `times`.
          EXPECT_NE(value.status().message().find("reboot steps"), std::string::npos)
              << value.status().ToString();
          continue;
        }
        ScenarioConfig copy = *sc;
        Status s = SetByPath(&copy, path, *value);
        EXPECT_TRUE(s.ok()) << name << " " << path << "=" << *value << ": " << s.ToString();
        EXPECT_EQ(*GetByPath(copy, path), *value) << name << " " << path;
        ++checked;
      }
    }
    EXPECT_GT(checked, 15) << name;
  }
}

}  // namespace
}  // namespace chaoslab::config
