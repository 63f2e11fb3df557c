// Repair at the hypervisor: `virtual:` groups, the setup's `hypervisor:`, the hypervisor-repair
// step and how it fits a setup; a site's `remote_consoles`; the YAML and its errors.
#include <gtest/gtest.h>

#include <string>

#include "lab/config/config_loader.h"
#include "lab/config/config_test_util.h"

namespace chaoslab::config {
namespace {

using testing::ConfigLoaderTest;
using testing::ExpectError;

// Virtual servers and physical workstations; `extra` goes after the groups (line 10 on).
std::string VirtualSetup(const std::string& extra, const std::string& server = "virtual: true") {
  return "name: small\nimage: winsim\nsites:\n  - {name: hq, technicians: 0}\n"
         "groups:\n"
         "  - {name: srv, role: server, count: 4, " +
         server +
         "}\n"
         "  - {name: ws, role: workstation, count: 2}\n"
         "  - {name: db, role: server, count: 1, virtual: true, bitlocker: true}\n"
         "key_escrow: {lookup: 2m}\n" +
         extra;
}

TEST_F(ConfigLoaderTest, VirtualGroupsAndTheHypervisorLoad) {
  const std::string path =
      Write("setup.yaml",
            VirtualSetup("hypervisor: {repairs_at_once: 3, script_ready: {uniform: [1h, 3h]}}\n"));
  Result<SetupConfig> s = LoadSetup(path);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(s->groups[0].on_hypervisor);
  EXPECT_FALSE(s->groups[1].on_hypervisor);
  EXPECT_TRUE(s->hypervisor.enabled);
  EXPECT_EQ(s->hypervisor.repairs_at_once, 3);
  EXPECT_EQ(s->hypervisor.script_ready.ToString(), "uniform(1h, 3h)");
  // Defaults: one repair at a time, the script at once.
  const std::string plain = Write("plain.yaml", VirtualSetup("hypervisor: {}\n"));
  Result<SetupConfig> d = LoadSetup(plain);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->hypervisor.repairs_at_once, 1);
  EXPECT_EQ(d->hypervisor.script_ready.Mean(), 0);
  // Without the key there is no hypervisor to repair from.
  const std::string none = Write("none.yaml", VirtualSetup(""));
  EXPECT_FALSE(LoadSetup(none)->hypervisor.enabled);
  // The repair slots grow with the organisation (a mix scales setups), at least one.
  SetupConfig big = ScaleSetupTo(*s, 70);
  EXPECT_EQ(big.hypervisor.repairs_at_once, 30);
  EXPECT_EQ(ScaleSetupTo(*s, 1).hypervisor.repairs_at_once, 1);
}

TEST_F(ConfigLoaderTest, HypervisorAndVirtualErrorsNameTheirPlace) {
  std::string path = Write("a.yaml", VirtualSetup("hypervisor: {repairs_at_once: 0}\n"));
  ExpectError(LoadSetup(path).status(), path + ":10:31", {"repairs_at_once", "at least 1"});
  path = Write("b.yaml", VirtualSetup("hypervisor: {scripts: 2}\n"));
  ExpectError(LoadSetup(path).status(), path + ":10:14", {"scripts", "repairs_at_once"});
  path = Write("c.yaml", VirtualSetup("hypervisor: {script_ready: soon}\n"));
  ExpectError(LoadSetup(path).status(), path + ":10:28", {"script_ready"});
  path = Write("d.yaml", VirtualSetup("", "virtual: maybe"));
  ExpectError(LoadSetup(path).status(), path + ":6:50", {"virtual"});
  // A cloud VM runs on its provider's hypervisor, not the organisation's.
  path = Write("e.yaml",
               "name: small\nimage: winsim\nsites: [{name: hq}]\ngroups:\n"
               "  - {name: vm, role: cloud-vm, count: 1, virtual: true}\n");
  ExpectError(LoadSetup(path).status(), path + ":5:51", {"cloud VM", "own hypervisors"});
}

TEST_F(ConfigLoaderTest, TheHypervisorRepairStepNeedsTheHypervisorAndNoPerson) {
  std::string path = Write("r.yaml",
                           "name: r\nsteps:\n  - hypervisor-repair\n"
                           "  - hypervisor-repair: {takes: 1m, when: {bitlocker: true}}\n"
                           "  - boot: {when: {virtual: false}, needs: [technician]}\n");
  Result<RunbookConfig> r = LoadRunbook(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const StepConfig& step = r->steps[0];
  EXPECT_EQ(step.kind, StepKind::kHypervisorRepair);
  EXPECT_EQ(step.needs, (std::vector<Resource>{Resource::kHypervisor, Resource::kKeyEscrow}));
  ASSERT_TRUE(step.when.on_hypervisor.has_value()) << "virtual hosts only, implied";
  EXPECT_TRUE(*step.when.on_hypervisor);
  EXPECT_TRUE(*r->steps[1].when.bitlocker);
  EXPECT_TRUE(*r->steps[1].when.on_hypervisor);
  EXPECT_FALSE(*r->steps[2].when.on_hypervisor);
  EXPECT_EQ(ParseStepKind("hypervisor-repair"), StepKind::kHypervisorRepair);
  EXPECT_EQ(StepRecoveryPath(StepKind::kHypervisorRepair, BootTarget::kSafeMode),
            RecoveryPath::kRescueDisk);

  path = Write("a.yaml", "name: r\nsteps:\n  - hypervisor-repair: {needs: [technician]}\n");
  ExpectError(LoadRunbook(path).status(), path + ":3:32",
              {"hypervisor-repair", "without technician", "hypervisor and key-escrow"});
  path = Write("b.yaml", "name: r\nsteps:\n  - hypervisor-repair: {when: {virtual: false}}\n");
  ExpectError(LoadRunbook(path).status(), path + ":3:31", {"virtual hosts only"});
  path = Write("c.yaml", "name: r\nsteps:\n  - reboot: {needs: [hypervisor]}\n");
  ExpectError(LoadRunbook(path).status(), path + ":3:21", {"hypervisor-repair steps only"});
  path = Write("d.yaml", "name: r\nsteps:\n  - reboot: {when: {virtual: yes please}}\n");
  ExpectError(LoadRunbook(path).status(), path + ":3:30", {"when virtual"});
}

TEST_F(ConfigLoaderTest, AHypervisorRepairStepNeedsAHypervisorInTheSetup) {
  Write("playbooks/setups/small.yaml", VirtualSetup(""));
  std::string runbook = Write("playbooks/runbooks/reboot-3.yaml",
                              "name: r\nsteps:\n  - reboot\n  - hypervisor-repair\n");
  ExpectError(LoadScenario(Path("playbooks/scenarios/s.yaml"), Images()).status(), runbook + ":4:5",
              {"step 2 (hypervisor-repair) needs hypervisor", "no hypervisor: {repairs_at_once"});
  Write("playbooks/setups/small.yaml", VirtualSetup("hypervisor: {repairs_at_once: 2}\n"));
  Result<ScenarioConfig> sc = LoadScenario(Path("playbooks/scenarios/s.yaml"), Images());
  ASSERT_TRUE(sc.ok()) << sc.status().ToString();
  // No virtual host: the step applies to nobody (the reboot still does), so it fits.
  Write("playbooks/setups/small.yaml",
        "name: small\nimage: winsim\nsites: [{name: hq}]\ngroups:\n"
        "  - {name: ws, role: workstation, count: 2}\n");
  EXPECT_TRUE(LoadScenario(Path("playbooks/scenarios/s.yaml"), Images()).ok());
  // A runbook of hypervisor steps alone on a fleet with no virtual host does nothing at all.
  Write("playbooks/runbooks/reboot-3.yaml", "name: r\nsteps:\n  - hypervisor-repair\n");
  ExpectError(LoadScenario(Path("playbooks/scenarios/s.yaml"), Images()).status(), runbook + ":1:1",
              {"does nothing", "match none of its groups (ws)"});
}

TEST_F(ConfigLoaderTest, RemoteConsolesOfASite) {
  const std::string site = "name: small\nimage: winsim\nsites:\n  - name: dc\n    technicians: 4\n";
  const std::string groups = "groups:\n  - {name: srv, role: server, count: 8, console: oob}\n";
  std::string path =
      Write("a.yaml", site + "    remote_consoles: {per_technician: 4, sessions: 6}\n" + groups);
  Result<SetupConfig> s = LoadSetup(path);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->sites[0].consoles_per_technician, 4);
  EXPECT_EQ(s->sites[0].console_sessions, 6);
  EXPECT_EQ(ScaleSetupTo(*s, 16).sites[0].console_sessions, 12);
  EXPECT_EQ(ScaleSetupTo(*s, 16).sites[0].consoles_per_technician, 4) << "a person's, not scaled";
  // Not written: one console per technician and no limit, as before.
  path = Write("b.yaml", site + groups);
  s = LoadSetup(path);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->sites[0].consoles_per_technician, 1);
  EXPECT_EQ(s->sites[0].console_sessions, 0);
  path = Write("c.yaml", site + "    remote_consoles: {per_technician: 0}\n" + groups);
  ExpectError(LoadSetup(path).status(), path + ":6:39", {"per_technician", "at least 1"});
  path = Write("d.yaml", site + "    remote_consoles: {tabs: 3}\n" + groups);
  ExpectError(LoadSetup(path).status(), path + ":6:23", {"tabs", "per_technician, sessions"});
}

}  // namespace
}  // namespace chaoslab::config
