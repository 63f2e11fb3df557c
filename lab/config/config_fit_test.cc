// Whether a runbook fits a setup (needs, conditions, priorities), Recombine and FindPlaybook, and
// the shipped playbooks (each validates; the shipped runbooks on the shipped setups).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "lab/config/config_loader.h"
#include "lab/config/config_test_util.h"

namespace chaoslab::config {
namespace {

namespace fs = std::filesystem;
using testing::ConfigLoaderTest;
using testing::ExpectError;
using testing::SourceDir;

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
                                "winpe-usb", "reimage", "hypervisor-repair"}) {
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
