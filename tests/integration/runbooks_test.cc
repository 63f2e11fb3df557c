// Recovery runbooks on real guests (issue 4's "done means"): safe mode + BitLocker + the key escrow
// on a domain controller that crashes too, with and without fixing it first; snapshot revert and
// reimage; and `compare` over three runbooks with confidence intervals and an HTML report.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "tests/integration/lab_harness.h"

namespace chaoslab::testing {
namespace {

using nlohmann::json;

std::map<std::string, json> HostsById(const json& run) {
  std::map<std::string, json> out;
  for (const auto& h : run["hosts"]) out[h["id"]] = h;
  return out;
}

bool Crashing711(const json& h) {
  std::string g = h["group"];
  return g != "ws-710" && g != "ws-offline";
}

json RunJson(LabHarness& lab, const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"run", lab.scenario("bitlocker-escrow"), "--json"};
  args.insert(args.end(), extra.begin(), extra.end());
  auto r = lab.Run(args);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (!r.ok()) return json();
  EXPECT_EQ(r->exit_code, 0) << r->err;
  json run = json::parse(r->out, nullptr, false);
  EXPECT_FALSE(run.is_discarded()) << r->out << r->err;
  EXPECT_TRUE(LabHarness::LabQemus(run.value("run_id", "?")).empty());
  return run;
}

TEST(RunbooksOnRealGuests, SafeModeDeleteFixesTheEscrowHostFirstAndRecoversEveryHost) {
  LabHarness lab;
  ASSERT_TRUE(lab.ImageBuilt()) << "guest image not built: run `make image`";
  json run = RunJson(lab, {"--runbook", "safe-mode-delete"});
  ASSERT_TRUE(run.is_object());
  ASSERT_GE(run["hosts"].size(), 8u);
  auto hosts = HostsById(run);
  double dc_back = -1;
  for (const auto& [id, h] : hosts) {
    if (!Crashing711(h)) {
      EXPECT_EQ(h["crashes"], 0) << h.dump();
      continue;
    }
    EXPECT_TRUE(h["boot_loop"].get<bool>()) << h.dump();
    EXPECT_TRUE(h["recovered"].get<bool>()) << h.dump();
    EXPECT_EQ(h["recovered_by"], "restart") << h.dump();
    EXPECT_GT(h["technician_s"].get<double>(), 0) << h.dump();
    if (h["bitlocker"].get<bool>()) {
      EXPECT_EQ(h["keys_fetched"], 1) << h.dump();
    } else {
      EXPECT_EQ(h["keys_fetched"], 0) << h.dump();
    }
    if (h["group"] == "dc") dc_back = h["recovered_at_s"].get<double>();
  }
  ASSERT_GT(dc_back, 0);
  for (const auto& [id, h] : hosts) {
    if (h["group"] == "ws-bitlocker") {
      EXPECT_GT(h["recovered_at_s"].get<double>(), dc_back) << id;
    }
  }
  ASSERT_EQ(run["services"].size(), 1u);
  EXPECT_TRUE(run["services"][0]["up_at_end"].get<bool>());
  EXPECT_GT(run["services"][0]["downtime_s"].get<double>(), 0);
}

TEST(RunbooksOnRealGuests, WithoutPriorityBitLockerHostsStallOnTheCrashedEscrow) {
  LabHarness lab;
  ASSERT_TRUE(lab.ImageBuilt());
  json run = RunJson(lab, {"--runbook", "safe-mode-delete-no-priority"});
  ASSERT_TRUE(run.is_object());
  auto hosts = HostsById(run);
  int stalled = 0;
  for (const auto& [id, h] : hosts) {
    if (h["group"] != "ws-bitlocker") continue;
    EXPECT_FALSE(h["recovered"].get<bool>()) << h.dump();
    EXPECT_EQ(h["keys_fetched"], 0) << h.dump();
    stalled += h["failed_why"] == "waiting for key-escrow";
  }
  // The technician sits at the first BitLocker host, waiting for a key nobody can give.
  EXPECT_GE(stalled, 1) << run.dump(2);
  // The same run, as people read it.
  auto table = lab.Run({"report", run["run_id"]});
  ASSERT_TRUE(table.ok());
  EXPECT_NE(table->out.find("key-escrow"), std::string::npos) << table->out;
}

TEST(RunbooksOnRealGuests, SnapshotRevertAndReimageRecoverAndReportDataLost) {
  LabHarness lab;
  ASSERT_TRUE(lab.ImageBuilt());
  for (const char* runbook : {"snapshot-revert", "reimage"}) {
    json run = RunJson(lab, {"--runbook", runbook});
    ASSERT_TRUE(run.is_object()) << runbook;
    for (const auto& h : run["hosts"]) {
      if (!Crashing711(h)) continue;
      EXPECT_TRUE(h["recovered"].get<bool>()) << runbook << " " << h.dump();
      EXPECT_EQ(h["data_lost"], std::string(runbook) == "reimage" ? "all" : "since-snapshot")
          << h.dump();
      if (std::string(runbook) == "snapshot-revert") {
        // From the nightly snapshot (00:00) to the crash after the 04:09 release.
        EXPECT_GT(h["data_lost_s"].get<double>(), 4 * 3600.0) << h.dump();
      }
    }
  }
}

TEST(RunbooksOnRealGuests, CompareThreeRunbooksWithIntervalsAndAnHtmlReport) {
  LabHarness lab;
  ASSERT_TRUE(lab.ImageBuilt());
  std::string html = (lab.dir() / "compare.html").string();
  std::string csv = (lab.dir() / "compare.csv").string();
  auto r = lab.Run({"compare", lab.scenario("channel-291"), "--runbooks",
                    "reboot-15,safe-mode-delete,reimage", "--repeat", "2", "--html", html, "--csv",
                    csv});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->exit_code, 0) << r->err;
  for (const char* rb : {"reboot-15", "safe-mode-delete", "reimage"})
    EXPECT_NE(r->out.find(rb), std::string::npos) << r->out;
  EXPECT_NE(r->out.find("±"), std::string::npos) << r->out;  // intervals
  std::ifstream c(csv);
  std::string header;
  std::getline(c, header);
  EXPECT_NE(header.find("mttr_s_low"), std::string::npos) << header;
  int lines = 0;
  for (std::string line; std::getline(c, line);) lines++;
  EXPECT_EQ(lines, 3);
  ASSERT_TRUE(std::filesystem::exists(html));
  // The report of these real runs opens in a browser and its charts are drawn (one curve a
  // runbook).
  auto dom = lab.DumpDom(html);
  ASSERT_TRUE(dom.ok()) << dom.status().ToString();
  EXPECT_NE(dom->out.find("data-charts=\"drawn\""), std::string::npos) << dom->err;
  size_t curves = 0;
  const std::string drawn_curve = "<path class=\"curve-mean\"";
  for (size_t at = dom->out.find(drawn_curve); at != std::string::npos;
       at = dom->out.find(drawn_curve, at + 1))
    curves++;
  EXPECT_EQ(curves, 3u);
  // The comparison is in the journal: `report` prints it again.
  auto again = lab.Run({"report", "last", "--json"});
  ASSERT_TRUE(again.ok());
  json cmp = json::parse(again->out, nullptr, false);
  ASSERT_FALSE(cmp.is_discarded()) << again->out << again->err;
  ASSERT_EQ(cmp["cells"].size(), 3u) << cmp.dump(2);
  for (const auto& cell : cmp["cells"]) EXPECT_EQ(cell["repetitions"], 2) << cell.dump();
}

}  // namespace
}  // namespace chaoslab::testing
