#include "lab/config/config_loader.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "lab/config/config_test_util.h"

namespace chaoslab::config {
namespace {

namespace fs = std::filesystem;
using testing::ConfigLoaderTest;
using testing::ExpectError;
using testing::kImage;
using testing::kRunbook;
using testing::kScenario;
using testing::kSetup;
using testing::SourceDir;

// --- The shipped playbooks ----------------------------------------------------------------------

TEST_F(ConfigLoaderTest, ShippedChannel291ScenarioLoads) {
  const std::string path = SourceDir() + "/playbooks/scenarios/channel-291.yaml";
  Result<ScenarioConfig> s = LoadScenario(path, Images());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->name, "channel-291");
  EXPECT_EQ(s->fault.kind, FaultKind::kChannel291);
  EXPECT_EQ(s->rollout.policy, RolloutPolicy::kAllAtOnce);
  EXPECT_EQ(s->rollout.start, 4 * 3600);
  EXPECT_EQ(s->rollout.release, 4 * 3600 + 9 * 60);
  EXPECT_EQ(s->rollout.revert, 5 * 3600 + 27 * 60);
  EXPECT_EQ(s->backend, BackendKind::kQemu);
  EXPECT_EQ(s->seed, 291u);
  EXPECT_EQ(s->stop.max_scenario, 12 * 3600);
  EXPECT_EQ(s->stop.max_wall, 15 * 60);

  EXPECT_EQ(s->setup.name, "demo-lab");
  EXPECT_EQ(s->setup.image, "winsim");
  EXPECT_EQ(TotalHosts(s->setup), 6);
  ASSERT_EQ(s->setup.sites.size(), 1u);
  EXPECT_EQ(s->setup.sites[0].name, "hq");
  EXPECT_EQ(s->setup.sites[0].technicians, 2);
  ASSERT_EQ(s->setup.groups.size(), 4u);
  EXPECT_EQ(s->setup.groups[0].name, "ws-711");
  EXPECT_EQ(s->setup.groups[0].count, 3);
  EXPECT_EQ(s->setup.groups[1].role, Role::kServer);
  EXPECT_EQ(s->setup.groups[2].sensor_version, "7.10");
  EXPECT_EQ(s->setup.groups[3].network, Network::kOffline);
  EXPECT_FALSE(s->setup.groups[3].online_in_window);
  EXPECT_TRUE(s->setup.groups[0].online_in_window);

  EXPECT_EQ(s->runbook.name, "reboot-15");
  EXPECT_EQ(s->runbook.starts, RunbookStart::kAfterRevert);
  ASSERT_EQ(s->runbook.steps.size(), 1u);
  EXPECT_EQ(s->runbook.steps[0].kind, StepKind::kReboot);
  EXPECT_EQ(s->runbook.steps[0].times, 15);

  EXPECT_EQ(s->image.name, "winsim");
  EXPECT_EQ(s->image.timing.at(Role::kServer).boot, 120);
  EXPECT_TRUE(fs::path(s->setup.file).is_absolute());
}

TEST_F(ConfigLoaderTest, ShippedScenarioLoadsWithTheRealImageRecipe) {
  const std::string images = SourceDir() + "/images";
  if (!fs::exists(images + "/winsim/image.yaml")) GTEST_SKIP() << "images/winsim not written yet";
  Result<ScenarioConfig> s =
      LoadScenario(SourceDir() + "/playbooks/scenarios/channel-291.yaml", images);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->image.timing.size(), AllRoles().size());
}

TEST_F(ConfigLoaderTest, ValidateFileDetectsEachShippedKind) {
  const std::string playbooks = SourceDir() + "/playbooks/";
  std::string summary;
  Status st = ValidateFile(playbooks + "scenarios/channel-291.yaml", Images(), &summary);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_NE(summary.find("scenario 'channel-291'"), std::string::npos) << summary;
  EXPECT_NE(summary.find("6 hosts"), std::string::npos) << summary;

  st = ValidateFile(playbooks + "setups/demo-lab.yaml", Images(), &summary);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_NE(summary.find("setup 'demo-lab': 6 hosts in 4 groups"), std::string::npos) << summary;

  st = ValidateFile(playbooks + "runbooks/reboot-15.yaml", Images(), &summary);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_NE(summary.find("runbook 'reboot-15'"), std::string::npos) << summary;

  st = ValidateFile(Path("images/winsim/image.yaml"), Images(), &summary);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_NE(summary.find("image 'winsim'"), std::string::npos) << summary;
}

// --- Good input -------------------------------------------------------------------------------

TEST_F(ConfigLoaderTest, ScratchScenarioLoadsWithDefaults) {
  Result<ScenarioConfig> s = LoadScenario(Path("playbooks/scenarios/s.yaml"), Images());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->fault.kind, FaultKind::kChannel291);
  EXPECT_EQ(s->rollout.release, 4 * 3600 + 9 * 60);
  EXPECT_EQ(s->repetitions, 1);
  EXPECT_EQ(s->setup.groups[0].site, "hq");  // defaults to the first site
  EXPECT_EQ(s->runbook.steps[0].times, 3);
  // Roles the image does not list keep the PhaseTiming defaults.
  EXPECT_EQ(s->image.timing.at(Role::kKiosk).boot, PhaseTiming{}.boot);
}

TEST_F(ConfigLoaderTest, UnquotedSensorVersionKeepsItsText) {
  // YAML would read 7.10 as the float 7.1; the loader reads the scalar's text.
  std::string path =
      Write("s.yaml", std::string(kSetup).replace(std::string(kSetup).find("\"7.11\""), 6, "7.10"));
  Result<SetupConfig> setup = LoadSetup(path);
  ASSERT_TRUE(setup.ok()) << setup.status().ToString();
  EXPECT_EQ(setup->groups[0].sensor_version, "7.10");
}

TEST(ParseTest, Durations) {
  EXPECT_EQ(*ParseDuration("45s"), 45);
  EXPECT_EQ(*ParseDuration("5m"), 300);
  EXPECT_EQ(*ParseDuration("1.5h"), 5400);
  EXPECT_EQ(*ParseDuration("2d"), 172800);
  EXPECT_EQ(*ParseDuration("90"), 90);
  EXPECT_EQ(*ParseDuration("2.5"), 2.5);
  for (const char* bad : {"", "abc", "-5m", "5 m", "5x", "m", "1e3", "inf", "nan", "+5s", "5mm"}) {
    Result<Seconds> r = ParseDuration(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("expected a duration"), std::string::npos);
  }
}

TEST(ParseTest, TimesOfDay) {
  EXPECT_EQ(*ParseTimeOfDay("04:09"), 4 * 3600 + 9 * 60);
  EXPECT_EQ(*ParseTimeOfDay("04:09:30"), 4 * 3600 + 9 * 60 + 30);
  EXPECT_EQ(*ParseTimeOfDay("4:09"), 4 * 3600 + 9 * 60);
  EXPECT_EQ(*ParseTimeOfDay("23:59:59"), 86399);
  for (const char* bad : {"", "4", "04:9", "04:09:", "24:00", "04:60", "04:09:60", "a:bc",
                          "04:09:30:00", "-1:00", "004:00"}) {
    EXPECT_FALSE(ParseTimeOfDay(bad).ok()) << bad;
  }
  EXPECT_EQ(FormatTimeOfDay(4 * 3600 + 9 * 60), "04:09");
  EXPECT_EQ(FormatTimeOfDay(4 * 3600 + 9 * 60 + 30), "04:09:30");
}

TEST(NamesTest, EveryEnumValueRoundTrips) {
  for (Role v : AllRoles()) EXPECT_EQ(ParseRole(RoleName(v)), v);
  for (Network v : AllNetworks()) EXPECT_EQ(ParseNetwork(NetworkName(v)), v);
  for (FaultKind v : AllFaultKinds()) EXPECT_EQ(ParseFaultKind(FaultKindName(v)), v);
  for (RunbookStart v : AllRunbookStarts()) EXPECT_EQ(ParseRunbookStart(RunbookStartName(v)), v);
  EXPECT_EQ(RoleName(Role::kDomainController), "domain-controller");
  EXPECT_EQ(FaultKindName(FaultKind::kChannel291), "channel-291");
  EXPECT_FALSE(ParseRole("Workstation").has_value());
}

// --- Bad input: one test per kind of mistake --------------------------------------------------

TEST_F(ConfigLoaderTest, YamlSyntaxErrorHasItsLocation) {
  std::string path = Write("bad.yaml", "name: x\ngroups: [a, b\n");
  ExpectError(LoadSetup(path).status(), path + ":3:1", {"YAML syntax error"});
}

TEST_F(ConfigLoaderTest, UnknownKeyListsTheAllowedKeys) {
  std::string path = Write("bad.yaml", std::string(kSetup) + "    colour: blue\n");
  ExpectError(LoadSetup(path).status(), path + ":11:5",
              {"unknown key 'colour' in a group",
               "allowed keys: name, role, count, site, sensor, network, online_in_window, "
               "bitlocker, console, cloud"});
}

TEST_F(ConfigLoaderTest, DuplicateKeyIsAnError) {
  std::string path = Write("bad.yaml", std::string(kSetup) + "    count: 4\n");
  ExpectError(LoadSetup(path).status(), path + ":11:5", {"duplicate key 'count'", path + ":9:5"});
}

TEST_F(ConfigLoaderTest, WrongTypeSaysWhatWasExpected) {
  std::string text = kSetup;
  text.replace(text.find("count: 2"), 8, "count: abc");
  std::string path = Write("bad.yaml", text);
  ExpectError(LoadSetup(path).status(), path + ":9:12",
              {"count", "expected an integer, got 'abc'"});

  path = Write("bad2.yaml", "name: [x]\nsteps: [reboot]\n");
  ExpectError(LoadRunbook(path).status(), path + ":1:7",
              {"runbook name: expected a string, got a list"});
}

TEST_F(ConfigLoaderTest, CountBelowOneIsOutOfRange) {
  std::string text = kSetup;
  text.replace(text.find("count: 2"), 8, "count: 0");
  std::string path = Write("bad.yaml", text);
  ExpectError(LoadSetup(path).status(), path + ":9:12", {"count must be at least 1, got 0"});
}

TEST_F(ConfigLoaderTest, NegativeTechniciansAreOutOfRange) {
  std::string text = kSetup;
  text.replace(text.find("technicians: 2"), 14, "technicians: -1");
  std::string path = Write("bad.yaml", text);
  ExpectError(LoadSetup(path).status(), path + ":5:18", {"technicians must be at least 0, got -1"});
}

TEST_F(ConfigLoaderTest, HugeNumberIsOutOfRange) {
  std::string text = kSetup;
  text.replace(text.find("count: 2"), 8, "count: 99999999999999999999999");
  std::string path = Write("bad.yaml", text);
  ExpectError(LoadSetup(path).status(), path + ":9:12", {"out of range"});
}

TEST_F(ConfigLoaderTest, UnknownEnumValueListsTheAllowedOnes) {
  std::string text = kSetup;
  text.replace(text.find("workstation"), 11, "laptop");
  std::string path = Write("bad.yaml", text);
  ExpectError(LoadSetup(path).status(), path + ":8:11",
              {"unknown role 'laptop'",
               "allowed: workstation, server, domain-controller, kiosk, "
               "cloud-vm"});

  path = Write("bad2.yaml", "name: r\nstarts: whenever\nsteps: [reboot: {}]\n");
  ExpectError(LoadRunbook(path).status(), path + ":2:9",
              {"unknown starts 'whenever'", "allowed: at-detection, after-revert"});

  path =
      Write("playbooks/scenarios/bad.yaml", std::string(kScenario) + "fault: {kind: bluescreen}\n");
  ExpectError(
      LoadScenario(path, Images()).status(), path + ":4:15",
      {"unknown fault kind 'bluescreen'", "channel-291, truncated, zeroed, bad-magic, good"});
}

TEST_F(ConfigLoaderTest, UnknownSensorVersionListsTheAllowedOnes) {
  std::string text = kSetup;
  text.replace(text.find("\"7.11\""), 6, "7.1");
  std::string path = Write("bad.yaml", text);
  ExpectError(LoadSetup(path).status(), path + ":10:13",
              {"unknown sensor version '7.1'", "allowed: 7.10, 7.11, 7.11-fixed", "\"7.10\""});
}

TEST_F(ConfigLoaderTest, MissingRequiredKeyPointsAtItsParentMap) {
  std::string text = kSetup;
  text.replace(text.find("    count: 2\n"), 13, "");
  std::string path = Write("bad.yaml", text);
  ExpectError(LoadSetup(path).status(), path + ":7:5", {"missing required key 'count' in a group"});

  path = Write("bad2.yaml", "name: r\n");
  ExpectError(LoadRunbook(path).status(), path + ":1:1",
              {"missing required key 'steps' in a runbook"});
}

TEST_F(ConfigLoaderTest, MissingNamedFileSaysHowItWasResolved) {
  std::string path =
      Write("playbooks/scenarios/bad.yaml",
            "name: s\nsetup: ../setups/x.yaml\nrunbook: ../runbooks/reboot-3.yaml\n");
  ExpectError(LoadScenario(path, Images()).status(), path + ":2:8",
              {"setup file '../setups/x.yaml' (resolved to " + Path("playbooks/setups/x.yaml") +
               ") does not exist"});
}

TEST_F(ConfigLoaderTest, MissingTopLevelFileIsNotFound) {
  Result<SetupConfig> r = LoadSetup(Path("nope.yaml"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(r.status().message().find("setup file '" + Path("nope.yaml") + "'"), std::string::npos)
      << r.status().message();
}

TEST_F(ConfigLoaderTest, MissingImageRecipePointsAtTheSetupsImageKey) {
  std::string text = kSetup;
  text.replace(text.find("image: winsim"), 13, "image: winxp");
  std::string setup = Write("playbooks/setups/small.yaml", text);
  ExpectError(LoadScenario(Path("playbooks/scenarios/s.yaml"), Images()).status(), setup + ":2:8",
              {"image 'winxp' recipe file", "does not exist"});
}

TEST_F(ConfigLoaderTest, DuplicateGroupNameIsAnError) {
  std::string path =
      Write("bad.yaml", std::string(kSetup) + "  - name: ws\n    role: server\n    count: 1\n");
  ExpectError(LoadSetup(path).status(), path + ":11:5",
              {"duplicate group name 'ws'", "first defined at " + path + ":7:5"});
}

TEST_F(ConfigLoaderTest, GroupNamingAnUnknownSiteIsAnError) {
  std::string path = Write("bad.yaml", std::string(kSetup) + "    site: branch\n");
  ExpectError(LoadSetup(path).status(), path + ":11:11",
              {"unknown site 'branch'", "sites of this setup: hq"});
}

TEST_F(ConfigLoaderTest, OfflineGroupCannotBeOnlineInWindow) {
  std::string path =
      Write("bad.yaml", std::string(kSetup) + "    network: offline\n    online_in_window: true\n");
  ExpectError(LoadSetup(path).status(), path + ":12:23", {"network: offline"});
}

TEST_F(ConfigLoaderTest, BooleanMustBeTrueOrFalse) {
  std::string path = Write("bad.yaml", std::string(kSetup) + "    online_in_window: maybe\n");
  ExpectError(LoadSetup(path).status(), path + ":11:23",
              {"online_in_window: expected true or false, got 'maybe'"});
}

TEST_F(ConfigLoaderTest, RevertBeforeReleaseIsAnError) {
  std::string path =
      Write("playbooks/scenarios/bad.yaml",
            std::string(kScenario) + "rollout:\n  release: \"05:00\"\n  revert: 04:30\n");
  ExpectError(LoadScenario(path, Images()).status(), path + ":6:11",
              {"revert (04:30) is before release (05:00)"});
}

TEST_F(ConfigLoaderTest, ReleaseBeforeStartIsAnError) {
  std::string path = Write("playbooks/scenarios/bad.yaml",
                           std::string(kScenario) + "rollout:\n  start: \"06:00\"\n");
  // release is not written: the error names the default and points at the rollout map.
  ExpectError(LoadScenario(path, Images()).status(), path + ":5:3",
              {"release (04:09, the default) is before start (06:00)"});
}

TEST_F(ConfigLoaderTest, BadTimeOfDayAndDuration) {
  std::string path = Write("playbooks/scenarios/bad.yaml",
                           std::string(kScenario) + "rollout: {start: \"25:00\"}\n");
  ExpectError(LoadScenario(path, Images()).status(), path + ":4:18", {"start", "hours run 00-23"});

  path =
      Write("playbooks/scenarios/bad.yaml", std::string(kScenario) + "stop:\n  max_wall: soon\n");
  ExpectError(LoadScenario(path, Images()).status(), path + ":5:13",
              {"max_wall: expected a duration such as '45s', '5m', '1.5h'", "got 'soon'"});

  path =
      Write("playbooks/scenarios/bad.yaml", std::string(kScenario) + "stop: {max_scenario: 0}\n");
  ExpectError(LoadScenario(path, Images()).status(), path + ":4:22",
              {"max_scenario must be longer than zero"});
}

TEST_F(ConfigLoaderTest, RepetitionsMustBePositive) {
  std::string path =
      Write("playbooks/scenarios/bad.yaml", std::string(kScenario) + "repetitions: 0\n");
  ExpectError(LoadScenario(path, Images()).status(), path + ":4:14",
              {"repetitions must be at least 1, got 0"});
}

TEST_F(ConfigLoaderTest, RunbookStepMistakes) {
  std::string path = Write("bad.yaml", "name: r\nsteps:\n  - reboot: {times: 0}\n");
  ExpectError(LoadRunbook(path).status(), path + ":3:21", {"times must be at least 1, got 0"});

  path = Write("bad.yaml", "name: r\nsteps:\n  - reboot: {}\n    delete: x\n");
  ExpectError(LoadRunbook(path).status(), path + ":3:5", {"exactly one key", "2 keys"});

  path = Write("bad.yaml", "name: r\nsteps:\n  - format-disk: {}\n");
  ExpectError(LoadRunbook(path).status(), path + ":3:5",
              {"unknown step kind 'format-disk'",
               "allowed: reboot, boot, unlock-bitlocker, delete, restart, rescue-disk, "
               "revert-snapshot, reimage"});

  path = Write("bad.yaml", "name: r\nsteps: []\n");
  ExpectError(LoadRunbook(path).status(), path + ":2:8", {"steps: expected at least one entry"});

  path = Write("bad.yaml", "name: r\nsteps:\n  - reboot: {count: 2}\n");
  ExpectError(LoadRunbook(path).status(), path + ":3:14",
              {"unknown key 'count' in the reboot step", "allowed keys: times"});
}

TEST_F(ConfigLoaderTest, ImageRecipeMistakes) {
  Write("images/winsim/image.yaml", std::string(kImage) + "packages: [busybox]\n");
  ExpectError(LoadImage(Images(), "winsim").status(), Path("images/winsim/image.yaml") + ":7:1",
              {"unknown key 'packages' in an image recipe",
               "allowed keys: name, kind, description, kernel, race_window_ms, networks, timing, "
               "recovery"});

  Write("images/winsim/image.yaml", "name: winsim\ntiming:\n  laptop: {boot: 1m}\n");
  ExpectError(LoadImage(Images(), "winsim").status(), Path("images/winsim/image.yaml") + ":3:3",
              {"unknown role 'laptop'"});

  Write("images/winsim/image.yaml",
        "name: winsim\ntiming:\n  kiosk: {boot: 10s, driver_load: 30s}\n");
  ExpectError(LoadImage(Images(), "winsim").status(), Path("images/winsim/image.yaml") + ":3:35",
              {"driver_load (30s) must not be longer than boot (10s)"});

  Write("images/winsim/image.yaml", "name: winsim\nkernel: linux-5\n");
  ExpectError(LoadImage(Images(), "winsim").status(), Path("images/winsim/image.yaml") + ":2:9",
              {"kernel: expected one of custom, debian, got 'linux-5'"});

  Write("images/winsim/image.yaml", "name: winsim\nrace_window_ms: 0\n");
  ExpectError(LoadImage(Images(), "winsim").status(), Path("images/winsim/image.yaml") + ":2:17",
              {"race_window_ms must be at least 1, got 0"});
  Write("images/winsim/image.yaml", "name: winsim\nrace_window_ms: 450ms\n");
  ExpectError(LoadImage(Images(), "winsim").status(), Path("images/winsim/image.yaml") + ":2:17",
              {"race_window_ms: expected an integer, got '450ms'"});
  Write("images/winsim/image.yaml", "name: winsim\nrace_window_ms: 700\n");
  Result<ImageConfig> image = LoadImage(Images(), "winsim");
  ASSERT_TRUE(image.ok()) << image.status().ToString();
  EXPECT_EQ(image->race_window_ms, 700);

  Write("images/winsim/image.yaml", "name: winxp\n");
  ExpectError(LoadImage(Images(), "winsim").status(), Path("images/winsim/image.yaml") + ":1:7",
              {"does not match its folder 'winsim'"});

  EXPECT_FALSE(LoadImage(Images(), "../etc").ok());
}

// The network profiles of the boot race (docs/TIME-BASE.md): every figure is required, so that a
// recipe says what it assumes; a link-up delay is a number or a range.
TEST_F(ConfigLoaderTest, NetworkProfiles) {
  const std::string wired =
      "{rtt_ms: 20, jitter_ms: 2, loss_percent: 0.5, bandwidth_mbit: 100, usable_after_ms: 0}";
  Write("images/winsim/image.yaml", "name: winsim\nnetworks:\n  wired: " + wired +
                                        "\n  wifi: {rtt_ms: 30, jitter_ms: 10, loss_percent: 1, "
                                        "bandwidth_mbit: 0, usable_after_ms: [50, 3000]}\n");
  Result<ImageConfig> image = LoadImage(Images(), "winsim");
  ASSERT_TRUE(image.ok()) << image.status().ToString();
  const NetworkProfile& w = image->networks.at(Network::kWired);
  EXPECT_EQ(w.rtt_ms, 20);
  EXPECT_EQ(w.jitter_ms, 2);
  EXPECT_DOUBLE_EQ(w.loss_percent, 0.5);
  EXPECT_EQ(w.bandwidth_mbit, 100);
  EXPECT_EQ(w.usable_after_min_ms, 0);
  EXPECT_EQ(w.usable_after_max_ms, 0);
  const NetworkProfile& f = image->networks.at(Network::kWifi);
  EXPECT_EQ(f.usable_after_min_ms, 50);
  EXPECT_EQ(f.usable_after_max_ms, 3000);
  EXPECT_EQ(image->networks.count(Network::kVpn), 0u);

  const std::string file = Path("images/winsim/image.yaml");
  Write("images/winsim/image.yaml",
        "name: winsim\nnetworks:\n  wired: {rtt_ms: 20, jitter_ms: 2, loss_percent: 0, "
        "bandwidth_mbit: 1}\n");
  ExpectError(LoadImage(Images(), "winsim").status(), file + ":3:10", {"usable_after_ms"});
  Write("images/winsim/image.yaml",
        "name: winsim\nnetworks:\n  wired: {rtt_ms: 2, jitter_ms: 20, loss_percent: 0, "
        "bandwidth_mbit: 1, usable_after_ms: 0}\n");
  ExpectError(LoadImage(Images(), "winsim").status(), file + ":3:33",
              {"jitter_ms must not exceed its rtt_ms (2)"});
  Write("images/winsim/image.yaml",
        "name: winsim\nnetworks:\n  wired: {rtt_ms: 2, jitter_ms: 0, loss_percent: 120, "
        "bandwidth_mbit: 1, usable_after_ms: 0}\n");
  ExpectError(LoadImage(Images(), "winsim").status(), file + ":3:50", {"loss_percent"});
  Write("images/winsim/image.yaml",
        "name: winsim\nnetworks:\n  wired: {rtt_ms: 2, jitter_ms: 0, loss_percent: 0, "
        "bandwidth_mbit: 1, usable_after_ms: [900, 100]}\n");
  ExpectError(LoadImage(Images(), "winsim").status(), file + ":3:89", {"minimum is above"});
  Write("images/winsim/image.yaml", "name: winsim\nnetworks:\n  offline: " + wired + "\n");
  ExpectError(LoadImage(Images(), "winsim").status(), file + ":3:3",
              {"offline hosts have no link"});
  Write("images/winsim/image.yaml", "name: winsim\nnetworks:\n  lte: " + wired + "\n");
  ExpectError(LoadImage(Images(), "winsim").status(), file + ":3:3", {"lte"});
}

TEST_F(ConfigLoaderTest, EmptyAndMultiDocumentFiles) {
  std::string path = Write("empty.yaml", "");
  Status st = LoadRunbook(path).status();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("expected a runbook (a map with keys name, description, starts, "
                              "steps, priorities, parallelism, on_failure, tools), got nothing"),
            std::string::npos)
      << st.message();

  path = Write("two.yaml", std::string(kRunbook) + "---\nname: again\n");
  ExpectError(LoadRunbook(path).status(), path + ":6:1", {"only one YAML document"});
}

TEST_F(ConfigLoaderTest, GarbageNeverThrows) {
  for (const std::string& text :
       {std::string("\t- x:\n\t\ty"), std::string("{{{{"), std::string("\xff\xfe\x00\x01", 4),
        std::string("&a [*a]"), std::string("name: *nope"), std::string(2000, '['),
        std::string("? [a, b]\n: c\n"), std::string("- 1\n- 2\n"), std::string("!!binary x")}) {
    std::string path = Write("garbage.yaml", text);
    EXPECT_FALSE(LoadSetup(path).ok()) << text;
    EXPECT_FALSE(LoadRunbook(path).ok()) << text;
    EXPECT_FALSE(ValidateFile(path, Images()).ok()) << text;
  }
}

TEST_F(ConfigLoaderTest, ValidateFileDetectsKindByKeysThenFolder) {
  std::string summary;
  // A runbook outside runbooks/: found by its keys.
  std::string path = Write("elsewhere/rb.yaml", kRunbook);
  ASSERT_TRUE(ValidateFile(path, Images(), &summary).ok());
  EXPECT_NE(summary.find("runbook 'reboot-3'"), std::string::npos) << summary;

  // Only unknown keys but in setups/: loaded as a setup, so the error lists the setup's keys.
  path = Write("playbooks/setups/odd.yaml", "colour: blue\n");
  ExpectError(ValidateFile(path, Images()), path + ":1:1",
              {"unknown key 'colour' in a setup", "allowed keys: name, description, image"});

  path = Write("elsewhere/odd.yaml", "colour: blue\n");
  Status st = ValidateFile(path, Images());
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("cannot tell what kind of playbook"), std::string::npos);
}

// --- Image kinds and recovery paths (issue 9) ---------------------------------------------------

TEST(ImageKindNamesTest, RoundTrip) {
  for (ImageKind v : AllImageKinds()) EXPECT_EQ(ParseImageKind(ImageKindName(v)), v);
  for (RecoveryPath v : AllRecoveryPaths()) EXPECT_EQ(ParseRecoveryPath(RecoveryPathName(v)), v);
  EXPECT_EQ(ParseRecoveryPath("safe_mode"), std::nullopt);  // YAML values use hyphens
  EXPECT_EQ(StepRecoveryPath(StepKind::kBoot, BootTarget::kUsb), RecoveryPath::kUsb);
  EXPECT_EQ(StepRecoveryPath(StepKind::kUnlockBitlocker, {}), RecoveryPath::kBitlocker);
  EXPECT_EQ(StepRecoveryPath(StepKind::kRevertSnapshot, {}), RecoveryPath::kSnapshot);
  EXPECT_EQ(StepRecoveryPath(StepKind::kDelete, {}), std::nullopt);
}

TEST_F(ConfigLoaderTest, ImageKindDefaultsToWinsimWithEveryRecoveryPath) {
  Write("images/winsim/image.yaml", "name: winsim\n");
  Result<ImageConfig> image = LoadImage(Images(), "winsim");
  ASSERT_TRUE(image.ok()) << image.status().ToString();
  EXPECT_EQ(image->kind, ImageKind::kWinsim);
  EXPECT_EQ(image->recovery, AllRecoveryPaths());
}

TEST_F(ConfigLoaderTest, ImageKindAndRecoveryMistakes) {
  const std::string file = Path("images/winsim/image.yaml");
  Write("images/winsim/image.yaml", "name: winsim\nkind: linux\n");
  ExpectError(LoadImage(Images(), "winsim").status(), file + ":2:7",
              {"unknown image kind 'linux'", "allowed: winsim, windows"});
  Write("images/winsim/image.yaml", "name: winsim\nrecovery: [safe-mode, floppy]\n");
  ExpectError(LoadImage(Images(), "winsim").status(), file + ":2:23",
              {"unknown recovery path 'floppy'",
               "allowed: safe-mode, winre, usb, pxe, bitlocker, rescue-disk, snapshot, reimage"});
  Write("images/winsim/image.yaml", "name: winsim\nrecovery: [winre, winre]\n");
  ExpectError(LoadImage(Images(), "winsim").status(), file + ":2:19",
              {"duplicate recovery path 'winre'", "first at"});
  Write("images/winsim/image.yaml", "name: winsim\nrecovery: []\n");
  ExpectError(LoadImage(Images(), "winsim").status(), file + ":2:11",
              {"recovery: expected at least one entry"});
  // A windows image must say what it supports.
  const std::string win = Write("images/win/image.yaml", "name: win\nkind: windows\n");
  ExpectError(LoadImage(Images(), "win").status(), win + ":1:1",
              {"kind windows must list the recovery paths it supports"});
}

TEST_F(ConfigLoaderTest, RunbookStepTheImageCannotDoIsRefusedAtTheStep) {
  Write("images/win/image.yaml",
        "name: win\nkind: windows\nrecovery: [safe-mode, bitlocker, snapshot]\n");
  Write("playbooks/setups/small.yaml",
        std::string(testing::kSetup)
            .replace(std::string(testing::kSetup).find("image: winsim"), 13, "image: win"));
  const std::string runbook = Write("playbooks/runbooks/reboot-3.yaml",
                                    "name: usb-fix\nsteps:\n  - boot: safe-mode\n"
                                    "  - delete: \"C-00000291*.sys\"\n  - restart\n"
                                    "  - boot: {into: usb, needs: [technician]}\n");
  Status st = LoadScenario(Path("playbooks/scenarios/s.yaml"), Images()).status();
  ExpectError(st, runbook + ":6:5",
              {"step 4 (boot usb) of runbook 'usb-fix'", "needs recovery path usb",
               "image 'win' (kind windows, " + Path("images/win/image.yaml") + ")",
               "it supports: safe-mode, bitlocker, snapshot"});
  // The image is checked before the setup (small has no USB sticks either): the image is the
  // harder limit.
  EXPECT_EQ(st.message().find("usb-stick"), std::string::npos) << st.message();

  // A step no host of the setup takes is never asked of the image.
  Write("playbooks/runbooks/reboot-3.yaml",
        "name: usb-fix\nsteps:\n  - boot: safe-mode\n  - restart\n"
        "  - boot: {into: usb, when: {role: kiosk}}\n");
  Result<ScenarioConfig> ok = LoadScenario(Path("playbooks/scenarios/s.yaml"), Images());
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->image.kind, ImageKind::kWindows);

  // Recombine (compare's cells) checks the same.
  RunbookConfig reimage = ok->runbook;
  reimage.steps.resize(1);
  reimage.steps[0].kind = StepKind::kReimage;
  reimage.steps[0].when = {};
  Status re = Recombine(*ok, nullptr, &reimage).status();
  ASSERT_FALSE(re.ok());
  EXPECT_NE(re.message().find("needs recovery path reimage"), std::string::npos) << re.message();
}

TEST_F(ConfigLoaderTest, ShippedImagesDeclareTheirKinds) {
  const std::string images = SourceDir() + "/images";
  Result<ImageConfig> winsim = LoadImage(images, "winsim");
  ASSERT_TRUE(winsim.ok()) << winsim.status().ToString();
  EXPECT_EQ(winsim->kind, ImageKind::kWinsim);
  EXPECT_EQ(winsim->recovery, AllRecoveryPaths());
  Result<ImageConfig> windows = LoadImage(images, "windows");
  ASSERT_TRUE(windows.ok()) << windows.status().ToString();
  EXPECT_EQ(windows->kind, ImageKind::kWindows);
  EXPECT_TRUE(ImageSupports(*windows, RecoveryPath::kSafeMode));
  EXPECT_TRUE(ImageSupports(*windows, RecoveryPath::kBitlocker));
  // The lab's USB stick and PXE image are winsim media, and its rescue VM reads no NTFS.
  EXPECT_FALSE(ImageSupports(*windows, RecoveryPath::kUsb));
  EXPECT_FALSE(ImageSupports(*windows, RecoveryPath::kPxe));
  EXPECT_FALSE(ImageSupports(*windows, RecoveryPath::kRescueDisk));
}

}  // namespace
}  // namespace chaoslab::config
