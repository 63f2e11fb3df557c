// Runbook fallbacks on real guests (issue 18): hosts behind a VPN, whose link comes up long after
// the boot race is decided (images/winsim/image.yaml, docs/TIME-BASE.md), never come back by
// rebooting; their runbook reboots them twice, then people escalate to safe mode, which recovers
// them. The figures say so, and the journal keeps it.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/integration/lab_harness.h"

namespace chaoslab::testing {
namespace {

using nlohmann::json;

TEST(EscalationOnRealGuests, VpnHostsThatNeverWinTheRaceEscalateToSafeModeAndRecover) {
  LabHarness lab;
  ASSERT_TRUE(lab.ImageBuilt()) << "guest image not built: run `make image`";
  const std::string playbooks =
      std::filesystem::absolute(lab.source_dir() + "/playbooks").lexically_normal().string();
  const std::string setup = (lab.dir() / "vpn-pair.yaml").string();
  std::ofstream(setup) << "name: vpn-pair\nimage: winsim\nsites:\n  - {name: hq, technicians: 1}\n"
                          "groups:\n"
                          "  - {name: vpn, role: workstation, count: 2, sensor: \"7.11\", "
                          "network: vpn}\n";
  const std::string runbook = (lab.dir() / "reboot-2.yaml").string();
  std::ofstream(runbook) << "name: reboot-2\nsteps:\n  - reboot: 2\n"
                            "on_failure: {runbook: "
                         << playbooks << "/runbooks/safe-mode-delete.yaml, after: 10m}\n";
  const std::string scenario = (lab.dir() / "escalate.yaml").string();
  std::ofstream(scenario) << "name: escalate\nsetup: " << setup << "\nrunbook: " << runbook
                          << "\nfault: {kind: channel-291}\n"
                             "rollout: {policy: all-at-once, start: \"04:00\", release: \"04:09\", "
                             "revert: \"05:27\"}\nseed: 18\n"
                             "stop: {max_scenario: 8h, max_wall: 8m}\n";
  const auto started = std::chrono::steady_clock::now();
  auto r = lab.Run({"run", scenario, "--json"}, std::chrono::seconds(540));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->exit_code, 0) << r->err;
  std::cerr << "escalation run: "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()
            << " s wall\n";
  json run = json::parse(r->out);
  ASSERT_EQ(run["status"], "finished") << r->err;
  EXPECT_TRUE(LabHarness::LabQemus(run.value("run_id", "?")).empty());
  ASSERT_EQ(run["hosts"].size(), 2u);
  for (const auto& h : run["hosts"]) {
    SCOPED_TRACE(h.dump());
    EXPECT_TRUE(h["boot_loop"].get<bool>());
    EXPECT_EQ(h["reboots"], 2);  // its own runbook, to its end
    EXPECT_EQ(h["escalations"], 1);
    EXPECT_TRUE(h["recovered"].get<bool>());
    EXPECT_EQ(h["recovered_by"], "restart");  // safe-mode-delete's last step
    EXPECT_GT(h["technician_s"].get<double>(), 0);
    // Not before the revert (78 min after the release), two reboots and the 10 min decision.
    EXPECT_GT(h["recovered_at_s"].get<double>(), 78 * 60.0 + 10 * 60.0);
  }
  EXPECT_EQ(run["fleet"]["escalated"], 2);
  EXPECT_EQ(run["fleet"]["failed"], 0);
  // The same run read back from the journal, as people read it.
  auto text = lab.Run({"report", run["run_id"]});
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->out.find("escalated (on_failure): 2 of 2 crashed hosts"), std::string::npos)
      << text->out;
  EXPECT_NE(text->out.find("escalated 1x"), std::string::npos) << text->out;
}

}  // namespace
}  // namespace chaoslab::testing
