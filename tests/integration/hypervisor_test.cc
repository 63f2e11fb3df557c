// Repair at the hypervisor on real guests (issue 18): five virtual servers in a boot loop, their
// disks repaired by the hypervisor's script (the lab is the hypervisor: a rescue VM with the
// server's disk attached) two at a time once the script is ready, the encrypted one with its key
// from the escrow; no technician touches any of them. The queue shows in the waits. And
// out-of-band consoles as a resource: one technician works two consoles at once.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "tests/integration/lab_harness.h"

namespace chaoslab::testing {
namespace {

using nlohmann::json;

TEST(HypervisorRepairOnRealGuests, TheScriptRepairsFiveVirtualServersTwoAtATime) {
  LabHarness lab;
  ASSERT_TRUE(lab.ImageBuilt()) << "guest image not built: run `make image`";
  const auto started = std::chrono::steady_clock::now();
  auto r = lab.Run({"run", lab.scenario("hypervisor-repair"), "--json"}, std::chrono::seconds(300));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->exit_code, 0) << r->err;
  std::cerr << "hypervisor-repair run: "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()
            << " s wall\n";
  json run = json::parse(r->out);
  ASSERT_EQ(run["status"], "finished") << r->err;
  EXPECT_TRUE(LabHarness::LabQemus(run.value("run_id", "?")).empty()) << "no QEMU left behind";
  ASSERT_EQ(run["hosts"].size(), 5u);
  std::vector<double> waited;
  for (const auto& h : run["hosts"]) {
    SCOPED_TRACE(h.dump());
    EXPECT_TRUE(h["boot_loop"].get<bool>());
    ASSERT_TRUE(h["recovered"].get<bool>());
    EXPECT_EQ(h["recovered_by"], "hypervisor-repair");
    EXPECT_EQ(h["technician_s"].get<double>(), 0) << "the script needs no person";
    const bool encrypted = h["id"].get<std::string>().rfind("vsrv-bde", 0) == 0;
    EXPECT_EQ(h["keys_fetched"], encrypted ? 1 : 0);
    // The runbook starts at the revert (78 min after the release); the script takes 30 min.
    EXPECT_GE(h["recovered_at_s"].get<double>(), (78 + 30) * 60.0);
    waited.push_back(h["waited_s"].get<double>());
  }
  // Two slots: two hosts waited for the script only; two more for a slot until the first disks
  // were back; the fifth for the next slot after that.
  std::sort(waited.begin(), waited.end());
  EXPECT_NEAR(waited[0], 30 * 60.0, 1.0);
  EXPECT_NEAR(waited[1], 30 * 60.0, 1.0);
  EXPECT_GT(waited[2], waited[1] + 10);
  EXPECT_GT(waited[4], waited[3] + 10);
  auto text = lab.Run({"report", run["run_id"]});
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->out.find("hypervisor-repair"), std::string::npos) << text->out;
}

// Four servers with out-of-band consoles, one technician who works two consoles at once
// (`remote_consoles: {per_technician: 2}`), the PXE repair from the console: two hosts are worked
// at once, the other two wait for a session; each session is half the technician's time.
TEST(RemoteConsolesOnRealGuests, OneTechnicianWorksTwoConsolesAtOnce) {
  LabHarness lab;
  ASSERT_TRUE(lab.ImageBuilt()) << "guest image not built: run `make image`";
  const std::string playbooks =
      std::filesystem::absolute(lab.source_dir() + "/playbooks").lexically_normal().string();
  const std::string setup = (lab.dir() / "console-room.yaml").string();
  std::ofstream(setup) << "name: console-room\nimage: winsim\nsites:\n"
                          "  - {name: dc, technicians: 1, remote_consoles: {per_technician: 2}}\n"
                          "groups:\n  - {name: srv, role: server, count: 4, console: oob}\n"
                          "pxe: true\n";
  const std::string scenario = (lab.dir() / "consoles.yaml").string();
  std::ofstream(scenario) << "name: consoles\nsetup: " << setup << "\nrunbook: " << playbooks
                          << "/runbooks/pxe-repair.yaml\nfault: {kind: channel-291}\n"
                             "rollout: {policy: all-at-once, start: \"04:00\", release: "
                             "\"04:09\", revert: \"05:27\"}\nseed: 18\n"
                             "stop: {max_scenario: 8h, max_wall: 6m}\n";
  const auto started = std::chrono::steady_clock::now();
  auto r = lab.Run({"run", scenario, "--json"}, std::chrono::seconds(420));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->exit_code, 0) << r->err;
  std::cerr << "remote consoles run: "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()
            << " s wall\n";
  json run = json::parse(r->out);
  ASSERT_EQ(run["status"], "finished") << r->err;
  EXPECT_TRUE(LabHarness::LabQemus(run.value("run_id", "?")).empty()) << "no QEMU left behind";
  ASSERT_EQ(run["hosts"].size(), 4u);
  std::vector<std::pair<double, double>> waited_technician;
  for (const auto& h : run["hosts"]) {
    SCOPED_TRACE(h.dump());
    ASSERT_TRUE(h["recovered"].get<bool>());
    // The PXE image repairs and boots Windows itself, during the delete or restart step.
    const std::string by = h["recovered_by"].get<std::string>();
    EXPECT_TRUE(by == "delete" || by == "restart") << by;
    EXPECT_EQ(h["waited_for"].is_null(), h["waited_s"].get<double>() == 0);
    waited_technician.push_back({h["waited_s"].get<double>(), h["technician_s"].get<double>()});
  }
  std::sort(waited_technician.begin(), waited_technician.end());
  const auto& [first_waited, first_technician] = waited_technician[0];
  EXPECT_EQ(first_waited, 0) << "a session at once";
  EXPECT_EQ(waited_technician[1].first, 0) << "two consoles from the start";
  const double third_waited = waited_technician[2].first;
  EXPECT_GT(third_waited, first_waited + 60) << "the third waits for a session";
  // The first session ended when the third began; it cost half the technician's time.
  EXPECT_NEAR(first_technician, (third_waited - first_waited) / 2, 2.0);
}

}  // namespace
}  // namespace chaoslab::testing
