// The vendor's automated cloud remediation on real guests (issue 18,
// playbooks/scenarios/cloud-remediation.yaml): the content server answers the opted-in hosts'
// boot-time manifest with the quarantine of the faulty file; their sensors move it aside before
// the first IPC notification and they come back on their first reboot after it. The opted-out
// hosts, on the same link, lose the content race every time and end failed. And a runbook step
// that waits for its tool (Microsoft's USB recovery tool) on real guests.
#include <gtest/gtest.h>

#include <regex>

#include "tests/integration/lab_harness.h"

namespace chaoslab::testing {
namespace {

using nlohmann::json;

TEST(RemediationOnRealGuests, OptedInHostsQuarantineTheFileAndRecoverTheOthersKeepLooping) {
  LabHarness lab;
  ASSERT_TRUE(lab.ImageBuilt()) << "guest image not built: run `make image`";
  const auto started = std::chrono::steady_clock::now();
  auto r = lab.Run({"run", lab.scenario("cloud-remediation"), "--json"}, std::chrono::seconds(300));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->exit_code, 0) << r->err;
  std::cerr << "remediation run: "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()
            << " s wall\n";
  json run = json::parse(r->out);
  ASSERT_EQ(run["status"], "finished") << r->err;
  EXPECT_TRUE(LabHarness::LabQemus(run.value("run_id", "?")).empty());
  EXPECT_NE(r->err.find("vendor remediation: 2 of 4 hosts opted in"), std::string::npos) << r->err;
  ASSERT_EQ(run["hosts"].size(), 4u);
  for (const auto& h : run["hosts"]) {
    SCOPED_TRACE(h.dump());
    const std::string id = h["id"];
    EXPECT_TRUE(h["boot_loop"].get<bool>());
    // What the guest's own sensor said on its console, as the lab reported it.
    const bool quarantined =
        std::regex_search(r->err, std::regex(id + " +quarantined the faulty channel file"));
    if (h["group"] == "opted-in") {
      EXPECT_TRUE(h["recovered"].get<bool>());
      EXPECT_EQ(h["recovered_by"], "reboot");
      EXPECT_EQ(h["reboots"], 1);  // the first boot after the remediation hears it
      EXPECT_TRUE(quarantined);
    } else {
      EXPECT_FALSE(h["recovered"].get<bool>());
      EXPECT_EQ(h["state"], "failed");
      EXPECT_EQ(h["reboots"], 15);  // every reboot lost the content race
    }
  }
  // Only the opted-in hosts' sensors quarantined anything.
  size_t lines = 0;
  for (size_t at = r->err.find("quarantined the faulty channel file"); at != std::string::npos;
       at = r->err.find("quarantined the faulty channel file", at + 1)) {
    const size_t bol = r->err.rfind('\n', at) + 1;
    const std::string line = r->err.substr(bol, at - bol);
    EXPECT_NE(line.find("opted-in-0"), std::string::npos) << line;
    lines++;
  }
  EXPECT_EQ(lines, 2u) << r->err;
}

// Tools that appear during the incident, on real guests: winpe-usb boots Microsoft's USB recovery
// tool, published 2024-07-20T12:00Z (playbooks/runbooks/winpe-usb.yaml). Every crashed host waits
// for it, holding nothing, and the stick repairs it only afterwards.
TEST(ToolsOnRealGuests, WinpeUsbWaitsForTheUsbToolThenRepairs) {
  LabHarness lab;
  ASSERT_TRUE(lab.ImageBuilt()) << "guest image not built: run `make image`";
  auto r = lab.Run({"run", lab.scenario("bitlocker-escrow"), "--runbook", "winpe-usb", "--json"},
                   std::chrono::seconds(300));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->exit_code, 0) << r->err;
  json run = json::parse(r->out);
  ASSERT_EQ(run["status"], "finished") << r->err;
  EXPECT_TRUE(LabHarness::LabQemus(run.value("run_id", "?")).empty());
  // 2024-07-20 12:00 UTC, in seconds after the release (2024-07-19 04:09 UTC).
  const double published = 86400 + 12 * 3600.0 - (4 * 3600 + 9 * 60);
  int crashed = 0;
  for (const auto& h : run["hosts"]) {
    if (h["crashes"].get<int>() == 0) continue;
    SCOPED_TRACE(h.dump());
    crashed++;
    EXPECT_TRUE(h["recovered"].get<bool>());
    EXPECT_GT(h["recovered_at_s"].get<double>(), published);
    EXPECT_EQ(h["waited_for"], "tool (not yet published)");
  }
  EXPECT_GE(crashed, 5);
}

}  // namespace
}  // namespace chaoslab::testing
