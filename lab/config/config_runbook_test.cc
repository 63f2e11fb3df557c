// Runbooks (steps, conditions, needs, durations, priorities) and the setup facts they depend on.
// Whether a runbook fits a setup, and the shipped playbooks: config_fit_test.cc.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "lab/config/config_loader.h"
#include "lab/config/config_test_util.h"

namespace chaoslab::config {
namespace {

using testing::ConfigLoaderTest;
using testing::ExpectError;
using testing::kSetup;
using testing::SourceDir;

// --- Names --------------------------------------------------------------------------------------

TEST(RunbookNamesTest, NewEnumsRoundTrip) {
  EXPECT_EQ(AllStepKinds().size(), 9u);
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
               "a step can depend on: bitlocker, role, console, cloud, virtual, group, site"});
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

}  // namespace
}  // namespace chaoslab::config
