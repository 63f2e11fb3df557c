// Runbooks (steps, conditions, needs, durations, priorities), the setup facts they depend on,
// whether a runbook fits a setup, and the shipped playbooks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "lab/config/config_loader.h"
#include "lab/config/config_test_util.h"

namespace chaoslab::config {
namespace {

namespace fs = std::filesystem;
using testing::ConfigLoaderTest;
using testing::ExpectError;
using testing::kSetup;
using testing::SourceDir;

// --- Names --------------------------------------------------------------------------------------

TEST(RunbookNamesTest, NewEnumsRoundTrip) {
  EXPECT_EQ(AllStepKinds().size(), 8u);
  for (StepKind v : AllStepKinds()) EXPECT_EQ(ParseStepKind(StepKindName(v)), v);
  for (BootTarget v : AllBootTargets()) EXPECT_EQ(ParseBootTarget(BootTargetName(v)), v);
  for (Resource v : AllResources()) EXPECT_EQ(ParseResource(ResourceName(v)), v);
  EXPECT_EQ(StepKindName(StepKind::kUnlockBitlocker), "unlock-bitlocker");
  EXPECT_EQ(StepKindName(StepKind::kRevertSnapshot), "revert-snapshot");
  EXPECT_EQ(BootTargetName(BootTarget::kWinRE), "winre");
  EXPECT_EQ(ResourceName(Resource::kKeyEscrow), "key-escrow");
  EXPECT_FALSE(ParseResource("Technician").has_value());
  EXPECT_FALSE(ParseStepKind("attach-rescue-disk").has_value());
}

// --- Distributions ------------------------------------------------------------------------------

Distribution Make(Distribution::Kind kind, Seconds a, Seconds b = 0, Seconds c = 0) {
  Distribution d;
  d.kind = kind;
  d.a = a;
  d.b = b;
  d.c = c;
  return d;
}

constexpr double kZ90 = 1.2815515655446004;

TEST(DistributionTest, InverseCdfs) {
  using K = Distribution::Kind;
  const Distribution constant = Make(K::kConstant, 300);
  EXPECT_EQ(constant.SampleUnit(0, 0), 300);
  EXPECT_EQ(constant.SampleUnit(0.99, 0.5), 300);

  const Distribution uniform = Make(K::kUniform, 60, 180);
  EXPECT_DOUBLE_EQ(uniform.SampleUnit(0, 0), 60);
  EXPECT_DOUBLE_EQ(uniform.SampleUnit(0.25, 0), 90);
  EXPECT_DOUBLE_EQ(uniform.SampleUnit(0.5, 0.9), 120);

  // min 60, mode 120, max 300: the CDF at the mode is (120 - 60) / (300 - 60) = 0.25.
  const Distribution tri = Make(K::kTriangular, 60, 120, 300);
  EXPECT_DOUBLE_EQ(tri.SampleUnit(0, 0), 60);
  EXPECT_DOUBLE_EQ(tri.SampleUnit(0.25, 0), 120);
  EXPECT_NEAR(tri.SampleUnit(1 - 1e-12, 0), 300, 1e-3);
  // Half way: 300 - sqrt(0.5 * 240 * 180).
  EXPECT_NEAR(tri.SampleUnit(0.5, 0), 300 - std::sqrt(0.5 * 240 * 180), 1e-9);

  // Box-Muller: u2 = 0.25 gives z = 0 (the median); u2 = 0 and u1 = 1 - exp(-z^2/2) give z.
  const Distribution ln = Make(K::kLognormal, 600, 1800);
  EXPECT_NEAR(ln.SampleUnit(0.7, 0.25), 600, 1e-9);
  EXPECT_NEAR(ln.SampleUnit(1 - std::exp(-kZ90 * kZ90 / 2), 0), 1800, 1e-6);
  EXPECT_NEAR(ln.SampleUnit(1 - std::exp(-kZ90 * kZ90 / 2), 0.5), 200, 1e-6);  // 600 / 3
  // A lognormal whose p90 equals its median is that constant.
  EXPECT_DOUBLE_EQ(Make(K::kLognormal, 600, 600).SampleUnit(0.9, 0.1), 600);
}

TEST(DistributionTest, MeansAndNames) {
  using K = Distribution::Kind;
  EXPECT_EQ(Make(K::kConstant, 300).Mean(), 300);
  EXPECT_EQ(Make(K::kUniform, 60, 180).Mean(), 120);
  EXPECT_EQ(Make(K::kTriangular, 60, 120, 300).Mean(), 160);
  const double sigma = std::log(3.0) / kZ90;
  EXPECT_NEAR(Make(K::kLognormal, 600, 1800).Mean(), 600 * std::exp(sigma * sigma / 2), 1e-9);

  EXPECT_EQ(Make(K::kConstant, 300).ToString(), "5m");
  EXPECT_EQ(Make(K::kConstant, 90).ToString(), "90s");
  EXPECT_EQ(Make(K::kConstant, 0).ToString(), "0s");
  EXPECT_EQ(Make(K::kUniform, 60, 180).ToString(), "uniform(1m, 3m)");
  EXPECT_EQ(Make(K::kTriangular, 60, 120, 7200).ToString(), "triangular(1m, 2m, 2h)");
  EXPECT_EQ(Make(K::kLognormal, 600, 1800).ToString(), "lognormal(median 10m, p90 30m)");
  EXPECT_EQ(FormatDuration(5400), "90m");
  EXPECT_EQ(FormatDuration(0.5), "0.5s");
}

TEST(DistributionTest, SamplingIsRepeatableAndHasTheRightMoments) {
  using K = Distribution::Kind;
  const Distribution uniform = Make(K::kUniform, 60, 180);
  // The same seed gives the same values, and they are the documented transform of the engine.
  std::mt19937_64 a(291), b(291), raw(291);
  for (int i = 0; i < 100; ++i) {
    const Seconds x = uniform.Sample(a);
    EXPECT_EQ(x, uniform.Sample(b));
    const double u1 = static_cast<double>(raw() >> 11) * 0x1.0p-53;
    raw();  // the second uniform, unused by uniform
    EXPECT_DOUBLE_EQ(x, 60 + u1 * 120);
  }

  constexpr int kSamples = 200000;
  for (const Distribution& d : {uniform, Make(K::kTriangular, 60, 120, 300),
                                Make(K::kLognormal, 600, 1800), Make(K::kConstant, 42)}) {
    std::mt19937_64 rng(7);
    std::vector<double> xs;
    double sum = 0;
    for (int i = 0; i < kSamples; ++i) {
      xs.push_back(d.Sample(rng));
      sum += xs.back();
      ASSERT_GE(xs.back(), 0);
    }
    EXPECT_NEAR(sum / kSamples, d.Mean(), d.Mean() * 0.01) << d.ToString();
    if (d.kind == K::kLognormal) {
      std::sort(xs.begin(), xs.end());
      EXPECT_NEAR(xs[kSamples / 2], 600, 600 * 0.02);
      EXPECT_NEAR(xs[kSamples * 9 / 10], 1800, 1800 * 0.02);
    }
  }
}

// --- Runbook forms ------------------------------------------------------------------------------

TEST_F(ConfigLoaderTest, EveryStepFormLoads) {
  const std::string path = Write("rb.yaml", R"(name: forms
steps:
  - restart
  - boot: safe-mode
  - delete: "X-*.sys"
  - reboot: 4
  - reboot:
  - boot: {into: usb, needs: [technician]}
  - unlock-bitlocker:
      when: {bitlocker: true, role: [workstation, server], console: none, cloud: false, group: ws, site: [hq]}
      takes: {lognormal: {median: 10m, p90: 30m}}
  - boot:
      into: pxe
      needs: remote-console
      takes: {uniform: [1m, 3m]}
  - rescue-disk: {takes: {triangular: [1m, 2m, 4m]}, when: {role: cloud-vm}}
  - revert-snapshot
  - reimage: {takes: 20m}
parallelism: 5
priorities:
  - {first: key-escrow, then: others}
  - first: domain-controller
    then: [server, kiosk]
)");
  Result<RunbookConfig> r = LoadRunbook(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->steps.size(), 11u);
  const std::vector<StepConfig>& s = r->steps;

  EXPECT_EQ(s[0].kind, StepKind::kRestart);
  EXPECT_TRUE(s[0].needs.empty());
  EXPECT_EQ(s[0].takes.Mean(), 0);
  EXPECT_EQ(s[0].where.line, 3);
  EXPECT_EQ(s[0].where.column, 5);

  EXPECT_EQ(s[1].kind, StepKind::kBoot);
  EXPECT_EQ(s[1].into, BootTarget::kSafeMode);
  EXPECT_EQ(s[2].kind, StepKind::kDelete);
  EXPECT_EQ(s[2].pattern, "X-*.sys");
  EXPECT_EQ(s[3].times, 4);
  EXPECT_EQ(s[4].kind, StepKind::kReboot);
  EXPECT_EQ(s[4].times, 1);

  // boot: usb always needs a stick; the written needs come first.
  EXPECT_EQ(s[5].into, BootTarget::kUsb);
  EXPECT_EQ(s[5].needs, (std::vector<Resource>{Resource::kTechnician, Resource::kUsbStick}));

  // unlock-bitlocker always needs the key escrow.
  EXPECT_EQ(s[6].kind, StepKind::kUnlockBitlocker);
  EXPECT_EQ(s[6].needs, std::vector<Resource>{Resource::kKeyEscrow});
  EXPECT_EQ(s[6].when.bitlocker, true);
  EXPECT_EQ(s[6].when.roles, (std::vector<Role>{Role::kWorkstation, Role::kServer}));
  EXPECT_EQ(s[6].when.oob_console, false);
  EXPECT_EQ(s[6].when.cloud, false);
  EXPECT_EQ(s[6].when.groups, std::vector<std::string>{"ws"});
  EXPECT_EQ(s[6].when.sites, std::vector<std::string>{"hq"});
  EXPECT_EQ(s[6].when.where.line, 10);
  EXPECT_EQ(s[6].when.where.column, 13);
  EXPECT_EQ(s[6].takes.kind, Distribution::Kind::kLognormal);
  EXPECT_EQ(s[6].takes.a, 600);
  EXPECT_EQ(s[6].takes.b, 1800);

  EXPECT_EQ(s[7].into, BootTarget::kPxe);
  EXPECT_EQ(s[7].needs, (std::vector<Resource>{Resource::kRemoteConsole, Resource::kPxeServer}));
  EXPECT_EQ(s[7].takes.kind, Distribution::Kind::kUniform);
  EXPECT_EQ(s[7].takes.b, 180);

  EXPECT_EQ(s[8].kind, StepKind::kRescueDisk);
  EXPECT_EQ(s[8].takes.kind, Distribution::Kind::kTriangular);
  EXPECT_EQ(s[8].takes.c, 240);
  EXPECT_EQ(s[8].when.roles, std::vector<Role>{Role::kCloudVm});
  EXPECT_EQ(s[9].kind, StepKind::kRevertSnapshot);
  EXPECT_EQ(s[10].kind, StepKind::kReimage);
  EXPECT_EQ(s[10].takes.kind, Distribution::Kind::kConstant);
  EXPECT_EQ(s[10].takes.a, 1200);
  // A step without `when` has its conditions located at the step.
  EXPECT_EQ(s[10].when.where.line, 18);

  EXPECT_EQ(r->parallelism, 5);
  ASSERT_EQ(r->priorities.size(), 2u);
  EXPECT_EQ(r->priorities[0].first, "key-escrow");
  EXPECT_EQ(r->priorities[0].then, std::vector<std::string>{"others"});
  EXPECT_EQ(r->priorities[1].then, (std::vector<std::string>{"server", "kiosk"}));
  EXPECT_EQ(r->priorities[1].where.line, 22);
  EXPECT_EQ(r->priorities[1].where.column, 5);
}

// --- Runbook mistakes ---------------------------------------------------------------------------

// Loads a runbook made of "name: r\nsteps:\n" and `steps` (so the first step is on line 3).
class RunbookErrorTest : public ConfigLoaderTest {
 protected:
  Status LoadSteps(const std::string& steps, std::string* path) {
    *path = Write("bad.yaml", "name: r\nsteps:\n" + steps);
    return LoadRunbook(*path).status();
  }
};

TEST_F(RunbookErrorTest, UnknownResource) {
  std::string p;
  ExpectError(LoadSteps("  - boot: {into: safe-mode, needs: [technician, keyboard]}\n", &p),
              p + ":3:49",
              {"unknown resource 'keyboard'",
               "allowed: technician, remote-console, usb-stick, key-escrow, pxe-server"});
  ExpectError(LoadSteps("  - restart: {needs: [technician, technician]}\n", &p), p + ":3:35",
              {"needs: 'technician' is listed twice"});
}

TEST_F(RunbookErrorTest, UnknownKeyInAStep) {
  std::string p;
  ExpectError(
      LoadSteps("  - delete: {pattern: \"a*.sys\", times: 2}\n", &p), p + ":3:33",
      {"unknown key 'times' in the delete step", "allowed keys: pattern, when, needs, takes"});
}

TEST_F(RunbookErrorTest, ConditionsOnUnknownFacts) {
  std::string p;
  ExpectError(LoadSteps("  - restart:\n      when: {os: windows}\n", &p), p + ":4:14",
              {"when: unknown host fact 'os'",
               "a step can depend on: bitlocker, role, console, cloud, group, site"});
  ExpectError(LoadSteps("  - restart:\n      when: {role: laptop}\n", &p), p + ":4:20",
              {"unknown role 'laptop'"});
  ExpectError(LoadSteps("  - restart:\n      when: {console: ssh}\n", &p), p + ":4:23",
              {"console: expected oob", "or none, got 'ssh'"});
  ExpectError(LoadSteps("  - restart:\n      when: {group: []}\n", &p), p + ":4:21",
              {"when group: expected a name or a non-empty list of names"});
}

TEST_F(RunbookErrorTest, BadBootTargetPatternAndShortForm) {
  std::string p;
  ExpectError(LoadSteps("  - boot: floppy\n", &p), p + ":3:11",
              {"unknown boot target 'floppy'", "allowed: safe-mode, winre, usb, pxe"});
  // Typed at the guest's console: nothing that could become a path, an option or a command.
  ExpectError(LoadSteps("  - delete: \"../x; rm -rf\"\n", &p), p + ":3:13",
              {"delete pattern '../x; rm -rf'", "C-00000291*.sys"});
  ExpectError(LoadSteps("  - delete: \"-rf\"\n", &p), p + ":3:13", {"not starting with '-'"});
  ExpectError(LoadSteps("  - restart: now\n", &p), p + ":3:14",
              {"the restart step: expected nothing or a map with keys when, needs, takes"});
  ExpectError(LoadSteps("  - [reboot]\n", &p), p + ":3:5",
              {"step 1: expected a step kind", "'- restart'"});
}

TEST_F(RunbookErrorTest, BadDistributions) {
  std::string p;
  auto takes = [](const std::string& value) {
    return "  - restart:\n      takes: " + value + "\n";
  };
  ExpectError(LoadSteps(takes("{uniform: [20m, 5m]}"), &p), p + ":4:24",
              {"takes: uniform [20m, 5m]: expected [min, max] with min <= max"});
  ExpectError(LoadSteps(takes("{triangular: [1m, 5m, 2m]}"), &p), p + ":4:27",
              {"expected [min, mode, max] with min <= mode <= max"});
  ExpectError(LoadSteps(takes("{lognormal: {median: 10m, p90: 5m}}"), &p), p + ":4:45",
              {"p90 (5m) must not be shorter than the median (10m)"});
  ExpectError(LoadSteps(takes("{lognormal: {median: 0s, p90: 5m}}"), &p), p + ":4:35",
              {"median must be longer than zero"});
  ExpectError(LoadSteps(takes("{normal: [1m, 2m]}"), &p), p + ":4:15",
              {"unknown key 'normal' in takes (a distribution)",
               "allowed keys: uniform, triangular, lognormal"});
  ExpectError(LoadSteps(takes("[1m, 2m]"), &p), p + ":4:14",
              {"takes: expected a duration ('5m') or a distribution", "got a list"});
  ExpectError(LoadSteps(takes("{uniform: [1m]}"), &p), p + ":4:24",
              {"expected a list of 2 durations, got a list of 1"});
  ExpectError(LoadSteps(takes("soon"), &p), p + ":4:14", {"takes: expected a duration"});
}

TEST_F(RunbookErrorTest, PriorityMistakes) {
  std::string p = Write("bad.yaml", R"(name: r
steps: [restart]
priorities:
  - {first: server, then: [workstation]}
  - {first: workstation, then: [kiosk]}
  - {first: kiosk, then: server}
)");
  // The cycle is named, and located at the rule written last.
  ExpectError(
      LoadRunbook(p).status(), p + ":6:5",
      {"priorities form a cycle: 'server' before 'workstation' (rule at " + p +
       ":4:5) before 'kiosk' (rule at " + p + ":5:5) before 'server' (rule at " + p + ":6:5)"});

  p = Write("bad.yaml",
            "name: r\nsteps: [restart]\npriorities:\n  - {first: others, then: [kiosk]}\n");
  ExpectError(LoadRunbook(p).status(), p + ":4:13", {"'others' may only appear in then"});

  p = Write("bad.yaml",
            "name: r\nsteps: [restart]\npriorities:\n  - {first: kiosk, then: [server, kiosk]}\n");
  ExpectError(LoadRunbook(p).status(), p + ":4:35", {"'kiosk' cannot come after itself"});

  p = Write("bad.yaml", "name: r\nsteps: [restart]\npriorities:\n  - {first: kiosk}\n");
  ExpectError(LoadRunbook(p).status(), p + ":4:5",
              {"missing required key 'then' in a priority rule"});

  p = Write("bad.yaml", "name: r\nsteps: [restart]\nparallelism: -1\n");
  ExpectError(LoadRunbook(p).status(), p + ":3:14", {"parallelism must be at least 0, got -1"});
}

// --- Setup facts --------------------------------------------------------------------------------

TEST_F(ConfigLoaderTest, SetupFactsLoad) {
  const std::string path = Write("setup.yaml", R"(name: facts
image: winsim
sites:
  - name: hq
    technicians: 3
    shifts: ["08:00-16:00", "22:00-06:00"]
    travel: {triangular: [1m, 2m, 10m]}
    usb_sticks: 4
  - name: cloud
groups:
  - name: dc
    role: domain-controller
    count: 2
    console: oob
  - name: ws
    role: workstation
    count: 10
    bitlocker: true
  - name: vms
    role: cloud-vm
    count: 5
    site: cloud
  - name: not-cloud
    role: cloud-vm
    count: 1
    cloud: false
key_escrow:
  hosted_on: dc
  lookup: 2m
pxe: true
snapshots: {taken_at: "01:30"}
services:
  - name: logon
    needs: [{group: dc, at_least: 2}, {group: ws}]
)");
  Result<SetupConfig> s = LoadSetup(path);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  const SiteConfig& hq = s->sites[0];
  ASSERT_EQ(hq.shifts.size(), 2u);
  EXPECT_EQ(hq.shifts[0].start, 8 * 3600);
  EXPECT_EQ(hq.shifts[0].end, 16 * 3600);
  EXPECT_EQ(hq.shifts[1].start, 22 * 3600);  // over midnight: the end is before the start
  EXPECT_EQ(hq.shifts[1].end, 6 * 3600);
  EXPECT_EQ(hq.shifts[1].where.line, 6);
  EXPECT_EQ(hq.shifts[1].where.column, 29);
  EXPECT_EQ(hq.travel.kind, Distribution::Kind::kTriangular);
  EXPECT_EQ(hq.usb_sticks, 4);
  const SiteConfig& cloud = s->sites[1];
  EXPECT_TRUE(cloud.shifts.empty());  // around the clock
  EXPECT_EQ(cloud.travel.Mean(), 0);
  EXPECT_EQ(cloud.usb_sticks, 0);
  EXPECT_EQ(cloud.technicians, 1);

  EXPECT_TRUE(s->groups[0].oob_console);
  EXPECT_FALSE(s->groups[0].bitlocker);
  EXPECT_TRUE(s->groups[1].bitlocker);
  EXPECT_FALSE(s->groups[1].oob_console);
  EXPECT_FALSE(s->groups[1].cloud);
  EXPECT_TRUE(s->groups[2].cloud);  // the default for role cloud-vm
  EXPECT_FALSE(s->groups[3].cloud);

  EXPECT_EQ(s->key_escrow.hosted_on, "dc");
  EXPECT_EQ(s->key_escrow.lookup.a, 120);
  EXPECT_TRUE(s->pxe);
  EXPECT_TRUE(s->snapshots.enabled);
  EXPECT_EQ(s->snapshots.taken_at, 3600 + 1800);
  ASSERT_EQ(s->services.size(), 1u);
  EXPECT_EQ(s->services[0].name, "logon");
  ASSERT_EQ(s->services[0].needs.size(), 2u);
  EXPECT_EQ(s->services[0].needs[0].at_least, 2);
  EXPECT_EQ(s->services[0].needs[1].group, "ws");
  EXPECT_EQ(s->services[0].needs[1].at_least, 1);
}

TEST_F(ConfigLoaderTest, SetupFactDefaults) {
  Result<SetupConfig> s = LoadSetup(Path("playbooks/setups/small.yaml"));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(s->key_escrow.hosted_on.empty());  // external
  EXPECT_EQ(s->key_escrow.lookup.Mean(), 0);
  EXPECT_FALSE(s->pxe);
  EXPECT_FALSE(s->snapshots.enabled);
  EXPECT_TRUE(s->services.empty());

  // `snapshots:` alone turns them on, taken at midnight.
  s = LoadSetup(
      Write("s.yaml", std::string(kSetup) + "snapshots:\nkey_escrow: {hosted_on: external}\n"));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(s->snapshots.enabled);
  EXPECT_EQ(s->snapshots.taken_at, 0);
  EXPECT_TRUE(s->key_escrow.hosted_on.empty());
}

TEST_F(ConfigLoaderTest, SetupFactMistakes) {
  // kSetup has 10 lines; what is appended starts on line 11.
  const std::string base = kSetup;
  std::string p =
      Write("bad.yaml",
            base + "services:\n  - name: web\n    needs: [{group: web-servers, at_least: 2}]\n");
  ExpectError(LoadSetup(p).status(), p + ":13:21",
              {"service 'web' needs unknown group 'web-servers'", "groups of this setup: ws"});

  p = Write("bad.yaml", base + "services:\n  - name: web\n    needs: [{group: ws, at_least: 3}]\n");
  ExpectError(LoadSetup(p).status(), p + ":13:35",
              {"service 'web' needs at least 3 hosts of group 'ws', which has 2"});

  p = Write("bad.yaml", base + "services:\n  - name: web\n    needs: []\n");
  ExpectError(LoadSetup(p).status(), p + ":13:12", {"needs: expected at least one entry"});

  p = Write(
      "bad.yaml",
      base +
          "services:\n  - {name: a, needs: [{group: ws}]}\n  - {name: a, needs: [{group: ws}]}\n");
  ExpectError(LoadSetup(p).status(), p + ":13:5",
              {"duplicate service name 'a'", "first defined at " + p + ":12:5"});

  p = Write("bad.yaml", base + "key_escrow: {hosted_on: dcs}\n");
  ExpectError(LoadSetup(p).status(), p + ":11:25",
              {"key_escrow hosted_on names unknown group 'dcs'",
               "expected external or a group of this setup: ws"});

  p = Write("bad.yaml", base + "    console: serial\n");
  ExpectError(LoadSetup(p).status(), p + ":11:14", {"console: expected oob", "got 'serial'"});

  p = Write("bad.yaml", base + "snapshots: {at: \"00:00\"}\n");
  ExpectError(LoadSetup(p).status(), p + ":11:13",
              {"unknown key 'at' in snapshots", "allowed keys: taken_at"});

  p = Write("bad.yaml", base + "pxe: yes-please\n");
  ExpectError(LoadSetup(p).status(), p + ":11:6", {"pxe: expected true or false"});

  // Site keys: shifts (line 6), sticks.
  auto with_site_line = [&](const std::string& line) {
    std::string text = base;
    text.insert(text.find("groups:"), line + "\n");
    return Write("bad.yaml", text);
  };
  p = with_site_line("    shifts: [\"08:00-16\"]");
  ExpectError(LoadSetup(p).status(), p + ":6:14",
              {"shift '08:00-16'", "expected a time of day \"HH:MM\""});
  p = with_site_line("    shifts: [\"08:00\"]");
  ExpectError(LoadSetup(p).status(), p + ":6:14",
              {"shift: expected \"HH:MM-HH:MM\" such as \"08:00-16:00\"", "got '08:00'"});
  p = with_site_line("    shifts: [\"08:00-08:00\"]");
  ExpectError(LoadSetup(p).status(), p + ":6:14", {"starts when it ends", "around the clock"});
  p = with_site_line("    shifts: []");
  ExpectError(LoadSetup(p).status(), p + ":6:13", {"shifts: expected at least one shift"});
  p = with_site_line("    usb_sticks: -1");
  ExpectError(LoadSetup(p).status(), p + ":6:17", {"usb_sticks must be at least 0, got -1"});
  p = with_site_line("    travel: {uniform: [5m, 1m]}");
  ExpectError(LoadSetup(p).status(), p + ":6:23", {"travel: uniform [5m, 1m]"});
}

// --- A runbook on a setup -----------------------------------------------------------------------

// Two sites: hq with technicians and no sticks, depot with sticks and nobody; a domain controller
// that hosts the key escrow; no console, no PXE, no snapshots.
constexpr char kFitSetup[] = R"(name: fit
image: winsim
sites:
  - {name: hq, technicians: 2}
  - {name: depot, technicians: 0, usb_sticks: 3}
groups:
  - {name: dc, role: domain-controller, count: 1, site: hq}
  - {name: ws, role: workstation, count: 4, site: hq, bitlocker: true}
  - {name: depot-ws, role: workstation, count: 2, site: depot}
key_escrow: {hosted_on: dc}
)";

class FitTest : public ConfigLoaderTest {
 protected:
  void SetUp() override {
    ConfigLoaderTest::SetUp();
    Write("playbooks/setups/small.yaml", kFitSetup);
  }
  // Writes the scenario's runbook and loads the scenario; the runbook's path goes to `path`.
  Status LoadWith(const std::string& runbook, std::string* path) {
    *path = Write("playbooks/runbooks/reboot-3.yaml", runbook);
    return LoadScenario(Path("playbooks/scenarios/s.yaml"), Images()).status();
  }
};

TEST_F(FitTest, StepsWhoseNeedsNoHostCanMeet) {
  std::string p;
  ExpectError(LoadWith("name: r\nsteps:\n  - restart\n  - boot: pxe\n", &p), p + ":4:5",
              {"step 2 (boot pxe) needs pxe-server, which no host it applies to can get in setup "
               "'fit' (" +
                   Path("playbooks/setups/small.yaml") + ")",
               "no network boot (pxe: true is not set)"});
  ExpectError(LoadWith("name: r\nsteps:\n  - restart: {needs: [remote-console]}\n", &p), p + ":3:5",
              {"step 1 (restart) needs remote-console",
               "none of its groups (dc, ws, depot-ws) has console: oob"});
  ExpectError(LoadWith("name: r\nsteps:\n  - revert-snapshot\n", &p), p + ":3:5",
              {"step 1 (revert-snapshot) needs snapshots, but setup 'fit'", "takes none"});
  // Only the depot has sticks, and nobody works there.
  ExpectError(
      LoadWith("name: r\nsteps:\n  - boot: {into: usb, when: {site: hq}}\n", &p), p + ":3:5",
      {"step 1 (boot usb) needs usb-stick", "no usb_sticks at the sites of its hosts (hq)"});
  ExpectError(LoadWith("name: r\nsteps:\n  - boot: {into: usb, needs: [technician]}\n", &p),
              p + ":3:5", {"needs technician, usb-stick together", "no host it applies to"});
  ExpectError(
      LoadWith("name: r\nsteps:\n  - restart: {needs: [technician], when: {group: depot-ws}}\n",
               &p),
      p + ":3:5", {"needs technician", "no technicians at the sites of its hosts (depot)"});

  // Fine: sticks where the step applies without a technician; a step that applies to no host;
  // the key escrow (it comes back once its hosts are fixed).
  EXPECT_TRUE(LoadWith("name: r\nsteps:\n  - boot: {into: usb, when: {site: depot}}\n", &p).ok());
  EXPECT_TRUE(
      LoadWith("name: r\nsteps:\n  - boot: {into: pxe, when: {cloud: true}}\n  - restart\n", &p)
          .ok());
  EXPECT_TRUE(
      LoadWith(
          "name: r\nsteps:\n  - unlock-bitlocker: {needs: [technician], when: {bitlocker: true}}\n",
          &p)
          .ok());

  // A runbook none of whose steps applies to any host does nothing: an error, not an empty run.
  ExpectError(
      LoadWith("name: r\nsteps:\n  - restart: {when: {cloud: true}}\n", &p), p + ":1:1",
      {"runbook 'r' does nothing on setup 'fit'", "match none of its groups (dc, ws, depot-ws)"});
}

TEST_F(FitTest, ConditionsOnUnknownGroupsAndSites) {
  std::string p;
  ExpectError(LoadWith("name: r\nsteps:\n  - restart: {when: {group: dcs}}\n", &p), p + ":3:21",
              {"step 1 (restart): when names unknown group 'dcs'", "groups of setup 'fit'",
               "dc, ws, depot-ws"});
  ExpectError(
      LoadWith("name: r\nsteps:\n  - restart\n  - reboot: {when: {site: [hq, branch]}}\n", &p),
      p + ":4:20", {"step 2 (reboot): when names unknown site 'branch'", "hq, depot"});
}

TEST_F(FitTest, PrioritiesOnTheSetupsGroups) {
  std::string p;
  ExpectError(
      LoadWith("name: r\nsteps: [restart]\npriorities:\n  - {first: dcs, then: [others]}\n", &p),
      p + ":4:5",
      {"priority rule names unknown selector 'dcs'", "a group of setup 'fit'",
       "key-escrow, or others"});

  // Selectors that differ as written but meet in the setup's groups: key-escrow is dc.
  ExpectError(LoadWith(R"(name: r
steps: [restart]
priorities:
  - {first: key-escrow, then: [workstation]}
  - {first: ws, then: [dc]}
)",
                       &p),
              p + ":5:5",
              {"priorities form a cycle: group 'dc' before group 'ws' (rule at " + p +
               ":4:5) before group 'dc' (rule at " + p + ":5:5)"});

  ExpectError(LoadWith("name: r\nsteps: [restart]\npriorities:\n  - {first: key-escrow, then: "
                       "[domain-controller]}\n",
                       &p),
              p + ":4:5", {"group 'dc' matches both first (key-escrow) and then"});

  // A role no group has and an escrow outside the fleet are fine: the runbook stays general.
  EXPECT_TRUE(LoadWith("name: r\nsteps: [restart]\npriorities:\n  - {first: cloud-vm, then: "
                       "[kiosk]}\n",
                       &p)
                  .ok());
}

TEST_F(ConfigLoaderTest, PriorityRanks) {
  const std::string setup_path = Write("setup.yaml", R"(name: ranks
image: winsim
sites: [{name: hq}]
groups:
  - {name: dc, role: domain-controller, count: 2}
  - {name: crew-app, role: server, count: 20}
  - {name: ws, role: workstation, count: 50}
  - {name: kiosks, role: kiosk, count: 10}
key_escrow: {hosted_on: dc}
)");
  Result<SetupConfig> setup = LoadSetup(setup_path);
  ASSERT_TRUE(setup.ok()) << setup.status().ToString();

  RunbookConfig runbook;
  Result<std::map<std::string, int>> ranks = PriorityRanks(runbook, *setup);
  ASSERT_TRUE(ranks.ok());
  EXPECT_EQ(*ranks,
            (std::map<std::string, int>{{"dc", 0}, {"crew-app", 0}, {"ws", 0}, {"kiosks", 0}}));

  runbook.priorities.push_back({"key-escrow", {"others"}, {}});
  runbook.priorities.push_back({"server", {"workstation"}, {}});
  ranks = PriorityRanks(runbook, *setup);
  ASSERT_TRUE(ranks.ok()) << ranks.status().ToString();
  EXPECT_EQ(*ranks,
            (std::map<std::string, int>{{"dc", 0}, {"crew-app", 1}, {"ws", 2}, {"kiosks", 1}}));

  // Escrow outside the fleet: "key-escrow" matches no group, so nothing is ahead of anything.
  setup->key_escrow.hosted_on.clear();
  runbook.priorities.resize(1);
  ranks = PriorityRanks(runbook, *setup);
  ASSERT_TRUE(ranks.ok());
  EXPECT_EQ(ranks->at("dc"), 0);
  EXPECT_EQ(ranks->at("ws"), 0);

  runbook.priorities = {{"kiosks", {"crew-app"}, {}}, {"crew-app", {"kiosk"}, {}}};
  EXPECT_FALSE(PriorityRanks(runbook, *setup).ok());
}

TEST(ConditionsTest, MatchGroups) {
  GroupConfig ws;
  ws.name = "ws";
  ws.role = Role::kWorkstation;
  ws.site = "hq";
  ws.bitlocker = true;
  Conditions any;
  EXPECT_TRUE(ConditionsMatch(any, ws));
  Conditions c;
  c.bitlocker = true;
  c.roles = {Role::kServer, Role::kWorkstation};
  c.sites = {"hq"};
  EXPECT_TRUE(ConditionsMatch(c, ws));
  c.oob_console = true;
  EXPECT_FALSE(ConditionsMatch(c, ws));
  c.oob_console = false;
  c.cloud = true;
  EXPECT_FALSE(ConditionsMatch(c, ws));
  c.cloud.reset();
  c.groups = {"servers"};
  EXPECT_FALSE(ConditionsMatch(c, ws));
  c.groups = {"servers", "ws"};
  EXPECT_TRUE(ConditionsMatch(c, ws));
  c.bitlocker = false;
  EXPECT_FALSE(ConditionsMatch(c, ws));
}

// --- Recombine and FindPlaybook -----------------------------------------------------------------

TEST_F(ConfigLoaderTest, RecombineReplacesAndChecks) {
  Result<ScenarioConfig> base = LoadScenario(Path("playbooks/scenarios/s.yaml"), Images());
  ASSERT_TRUE(base.ok()) << base.status().ToString();

  Result<RunbookConfig> smd = LoadRunbook(
      Write("playbooks/runbooks/smd.yaml",
            "name: smd\nsteps:\n  - boot: {into: safe-mode, needs: [technician]}\n  - delete\n"
            "  - restart\n"));
  ASSERT_TRUE(smd.ok()) << smd.status().ToString();
  Result<ScenarioConfig> r = Recombine(*base, nullptr, &*smd);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->runbook.name, "smd");
  EXPECT_EQ(r->setup.name, "small");
  EXPECT_EQ(r->name, "s");

  // A setup on another image: its recipe is read from the same images folder.
  Write("images/winsim2/image.yaml", "name: winsim2\ntiming:\n  workstation: {boot: 30s}\n");
  Result<SetupConfig> other = LoadSetup(Write("playbooks/setups/other.yaml",
                                              "name: other\nimage: winsim2\nsites: [{name: "
                                              "a}]\ngroups: [{name: g, role: kiosk, count: 7}]\n"));
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  r = Recombine(*base, &*other, &*smd);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->setup.name, "other");
  EXPECT_EQ(r->image.name, "winsim2");
  EXPECT_EQ(r->image.timing.at(Role::kWorkstation).boot, 30);

  // Checked as LoadScenario checks: a PXE step on a setup without PXE.
  const std::string pxe_path =
      Write("playbooks/runbooks/pxe.yaml", "name: pxe\nsteps:\n  - restart\n  - boot: pxe\n");
  Result<RunbookConfig> pxe = LoadRunbook(pxe_path);
  ASSERT_TRUE(pxe.ok());
  ExpectError(Recombine(*base, nullptr, &*pxe).status(), pxe_path + ":4:5",
              {"needs pxe-server", "setup 'small'"});

  // A setup whose image does not exist.
  other->image = "winxp";
  ExpectError(Recombine(*base, &*other, nullptr).status(),
              Path("playbooks/setups/other.yaml") + ":2:8", {"image 'winxp' recipe file"});
}

TEST_F(ConfigLoaderTest, FindPlaybook) {
  Result<ScenarioConfig> base = LoadScenario(Path("playbooks/scenarios/s.yaml"), Images());
  ASSERT_TRUE(base.ok()) << base.status().ToString();

  Result<std::string> found = FindPlaybook(*base, "runbooks", "reboot-3");
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(*found, Path("playbooks/runbooks/reboot-3.yaml"));
  found = FindPlaybook(*base, "setups", "small");
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(*found, Path("playbooks/setups/small.yaml"));

  // A path is taken as it is.
  const std::string elsewhere = Write("elsewhere/rb.yaml", testing::kRunbook);
  found = FindPlaybook(*base, "runbooks", elsewhere);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(*found, elsewhere);

  Write("playbooks/runbooks/reimage.yaml", "name: reimage\nsteps: [reimage]\n");
  found = FindPlaybook(*base, "runbooks", "reboot-15");
  ASSERT_FALSE(found.ok());
  EXPECT_EQ(found.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(found.status().message().find("no runbook named 'reboot-15': looked for " +
                                          Path("playbooks/runbooks/reboot-15.yaml") +
                                          "; runbooks there: reboot-3, reimage"),
            std::string::npos)
      << found.status().message();

  found = FindPlaybook(*base, "runbooks", Path("nope.yaml"));
  ASSERT_FALSE(found.ok());
  EXPECT_EQ(found.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(found.status().message().find("does not exist"), std::string::npos);

  EXPECT_EQ(FindPlaybook(*base, "runbooks", "a b").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(FindPlaybook(*base, "runbooks", "").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(FindPlaybook(*base, "scenarios", "s").status().code(), ErrorCode::kInvalidArgument);
}

// --- The shipped playbooks ----------------------------------------------------------------------

std::string ImagesForShipped(const std::string& fallback) {
  const std::string images = SourceDir() + "/images";
  return fs::exists(images + "/winsim/image.yaml") ? images : fallback;
}

std::vector<std::string> ShippedFiles(const std::string& kind) {
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(SourceDir() + "/playbooks/" + kind)) {
    if (entry.path().extension() == ".yaml") files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

TEST_F(ConfigLoaderTest, EveryShippedPlaybookValidates) {
  int count = 0;
  for (const auto& entry : fs::recursive_directory_iterator(SourceDir() + "/playbooks")) {
    if (entry.path().extension() != ".yaml" && entry.path().extension() != ".yml") continue;
    // The simulator's own files (mixes, calibration) are checked by lab/sim's tests, libvirt
    // inventories by lab/libvirt's.
    const std::string folder = entry.path().parent_path().filename().string();
    if (folder == "mixes" || folder == "calibration" || folder == "inventory") continue;
    std::string summary;
    Status st = ValidateFile(entry.path().string(), ImagesForShipped(Images()), &summary);
    EXPECT_TRUE(st.ok()) << entry.path() << ": " << st.ToString();
    EXPECT_FALSE(summary.empty());
    ++count;
  }
  EXPECT_GE(count, 16);  // at least 2 scenarios, 6 setups and 8 runbooks
  for (const char* runbook :
       {"reboot-15", "safe-mode-delete", "safe-mode-delete-no-priority", "winpe-usb", "pxe-repair",
        "cloud-rescue-disk", "snapshot-revert", "reimage"}) {
    EXPECT_TRUE(fs::exists(SourceDir() + "/playbooks/runbooks/" + runbook + ".yaml")) << runbook;
  }
  for (const char* setup :
       {"demo-lab", "small-office", "hospital", "airline-hub", "cloud-first", "lab-bitlocker"}) {
    EXPECT_TRUE(fs::exists(SourceDir() + "/playbooks/setups/" + setup + ".yaml")) << setup;
  }
}

TEST_F(ConfigLoaderTest, EveryShippedRunbookRunsOnTheRealVmSetup) {
  Result<SetupConfig> lab = LoadSetup(SourceDir() + "/playbooks/setups/lab-bitlocker.yaml");
  ASSERT_TRUE(lab.ok()) << lab.status().ToString();
  for (const std::string& path : ShippedFiles("runbooks")) {
    Result<RunbookConfig> runbook = LoadRunbook(path);
    ASSERT_TRUE(runbook.ok()) << runbook.status().ToString();
    Status fits = CheckRunbookFitsSetup(*runbook, *lab);
    EXPECT_TRUE(fits.ok()) << path << ": " << fits.ToString();
  }
}

TEST_F(ConfigLoaderTest, ShippedRunbooksOnShippedSetups) {
  auto fits = [](const std::string& runbook, const std::string& setup) {
    Result<RunbookConfig> r = LoadRunbook(SourceDir() + "/playbooks/runbooks/" + runbook + ".yaml");
    Result<SetupConfig> s = LoadSetup(SourceDir() + "/playbooks/setups/" + setup + ".yaml");
    if (!r.ok()) return r.status();
    if (!s.ok()) return s.status();
    return CheckRunbookFitsSetup(*r, *s);
  };
  for (const std::string& path : ShippedFiles("setups")) {
    const std::string setup = fs::path(path).stem().string();
    for (const char* runbook : {"reboot-15", "safe-mode-delete", "safe-mode-delete-no-priority",
                                "winpe-usb", "reimage"}) {
      if (std::string(runbook) == "winpe-usb") {
        // Setups without recovery sticks (demo-lab, the rollout and race labs) cannot run it.
        Result<SetupConfig> s = LoadSetup(path);
        ASSERT_TRUE(s.ok()) << s.status().ToString();
        int sticks = 0;
        for (const auto& site : s->sites) sticks += site.usb_sticks;
        if (sticks == 0) continue;
      }
      Status st = fits(runbook, setup);
      EXPECT_TRUE(st.ok()) << runbook << " on " << setup << ": " << st.ToString();
    }
  }
  Status no_sticks = fits("winpe-usb", "demo-lab");
  EXPECT_NE(no_sticks.message().find("needs usb-stick"), std::string::npos) << no_sticks.ToString();
  // The ones that need what some setups lack.
  // pxe-repair serves hosts with an out-of-band console only; the small office has none.
  Status st = fits("pxe-repair", "small-office");
  EXPECT_NE(st.message().find("runbook 'pxe-repair' does nothing on setup 'small-office'"),
            std::string::npos)
      << st.ToString();
  st = fits("cloud-rescue-disk", "hospital");
  EXPECT_NE(st.message().find("does nothing"), std::string::npos) << st.ToString();
  EXPECT_TRUE(fits("cloud-rescue-disk", "cloud-first").ok());
  st = fits("snapshot-revert", "hospital");
  EXPECT_NE(st.message().find("needs snapshots"), std::string::npos) << st.ToString();
  EXPECT_TRUE(fits("pxe-repair", "airline-hub").ok());
  EXPECT_TRUE(fits("snapshot-revert", "cloud-first").ok());

  // Airline hub: the escrow's domain controllers first, everything else after.
  Result<RunbookConfig> smd =
      LoadRunbook(SourceDir() + "/playbooks/runbooks/safe-mode-delete.yaml");
  Result<SetupConfig> hub = LoadSetup(SourceDir() + "/playbooks/setups/airline-hub.yaml");
  ASSERT_TRUE(smd.ok() && hub.ok());
  Result<std::map<std::string, int>> ranks = PriorityRanks(*smd, *hub);
  ASSERT_TRUE(ranks.ok()) << ranks.status().ToString();
  for (const auto& [group, rank] : *ranks) EXPECT_EQ(rank, group == "dc" ? 0 : 1) << group;
  Result<RunbookConfig> plain =
      LoadRunbook(SourceDir() + "/playbooks/runbooks/safe-mode-delete-no-priority.yaml");
  ASSERT_TRUE(plain.ok());
  EXPECT_TRUE(plain->priorities.empty());
  ASSERT_EQ(plain->steps.size(), smd->steps.size());
  ranks = PriorityRanks(*plain, *hub);
  ASSERT_TRUE(ranks.ok());
  for (const auto& [group, rank] : *ranks) EXPECT_EQ(rank, 0) << group;
}

TEST_F(ConfigLoaderTest, ShippedBitlockerEscrowScenario) {
  Result<ScenarioConfig> s = LoadScenario(
      SourceDir() + "/playbooks/scenarios/bitlocker-escrow.yaml", ImagesForShipped(Images()));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(TotalHosts(s->setup), 8);
  EXPECT_EQ(s->setup.key_escrow.hosted_on, "dc");
  const GroupConfig* dc = nullptr;
  int bitlocker_711 = 0;
  for (const GroupConfig& g : s->setup.groups) {
    if (g.name == "dc") dc = &g;
    if (g.bitlocker && g.sensor_version == "7.11" && g.online_in_window) bitlocker_711 += g.count;
  }
  ASSERT_NE(dc, nullptr);
  EXPECT_EQ(dc->role, Role::kDomainController);
  EXPECT_EQ(dc->sensor_version, "7.11");  // it crashes too
  EXPECT_FALSE(dc->bitlocker);
  EXPECT_GE(bitlocker_711, 2);
  ASSERT_FALSE(s->setup.services.empty());
  EXPECT_EQ(s->runbook.name, "safe-mode-delete");
  ASSERT_FALSE(s->runbook.priorities.empty());
  EXPECT_EQ(s->runbook.priorities[0].first, "key-escrow");
}

TEST_F(ConfigLoaderTest, ValidateSummariesNameTheNewFacts) {
  const std::string playbooks = SourceDir() + "/playbooks/";
  std::string summary;
  ASSERT_TRUE(ValidateFile(playbooks + "setups/lab-bitlocker.yaml", Images(), &summary).ok());
  for (const char* part :
       {"setup 'lab-bitlocker': 8 hosts in 6 groups", "1 technician(s), 2 USB stick(s)",
        "4 BitLocker", "2 out-of-band console host(s)",
        "key escrow on group 'dc' (lookup uniform(1m, 3m))", "PXE yes", "snapshots at 00:00",
        "services: intranet"}) {
    EXPECT_NE(summary.find(part), std::string::npos) << part << " missing in: " << summary;
  }
  ASSERT_TRUE(ValidateFile(playbooks + "runbooks/safe-mode-delete.yaml", Images(), &summary).ok());
  for (const char* part :
       {"runbook 'safe-mode-delete': starts after-revert, 4 step(s): boot safe-mode [technician]",
        "unlock-bitlocker [key-escrow, technician] takes triangular(1m, 3m, 8m) when bitlocker",
        "delete C-00000291*.sys", "priorities: key-escrow before others",
        "parallelism: unlimited"}) {
    EXPECT_NE(summary.find(part), std::string::npos) << part << " missing in: " << summary;
  }
  // A runbook found by its priorities alone, outside runbooks/.
  const std::string path =
      Write("elsewhere/p.yaml", "priorities: [{first: a, then: b}]\nname: x\nsteps: [restart]\n");
  ASSERT_TRUE(ValidateFile(path, Images(), &summary).ok());
  EXPECT_NE(summary.find("runbook 'x'"), std::string::npos) << summary;
}

}  // namespace
}  // namespace chaoslab::config
