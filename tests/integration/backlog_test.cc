// Services that work off a backlog on real guests (issue 18): two guests serve a service whose
// work piles up while both are in their boot loop; once a technician brings one back it catches
// up at its rate, and only then is it up. The VM driver reports it through the one recovery model:
// the figures, the progress lines, and the journal read back.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "tests/integration/lab_harness.h"

namespace chaoslab::testing {
namespace {

using nlohmann::json;

TEST(BacklogOnRealGuests, AServiceCatchesUpOnItsBacklogAfterItsHostsRecover) {
  LabHarness lab;
  ASSERT_TRUE(lab.ImageBuilt()) << "guest image not built: run `make image`";
  const std::string playbooks =
      std::filesystem::absolute(lab.source_dir() + "/playbooks").lexically_normal().string();
  const std::string setup = (lab.dir() / "orders-pair.yaml").string();
  // Work piles up at 2 h per hour down and is worked off at 1: catching up takes twice the outage.
  std::ofstream(setup) << "name: orders-pair\nimage: winsim\n"
                          "sites:\n  - {name: hq, technicians: 1, travel: 2m}\n"
                          "groups:\n"
                          "  - {name: app, role: workstation, count: 2, sensor: \"7.11\"}\n"
                          "services:\n"
                          "  - name: orders\n"
                          "    needs: [{group: app, at_least: 1}]\n"
                          "    backlog: {grows: 2, works_off: 1}\n";
  const std::string scenario = (lab.dir() / "backlog.yaml").string();
  std::ofstream(scenario) << "name: backlog\nsetup: " << setup << "\nrunbook: " << playbooks
                          << "/runbooks/safe-mode-delete.yaml\nfault: {kind: channel-291}\n"
                             "rollout: {policy: all-at-once, start: \"04:00\", release: \"04:09\", "
                             "revert: \"05:27\"}\nseed: 18\n"
                             "stop: {max_scenario: 12h, max_wall: 4m}\n";
  const auto started = std::chrono::steady_clock::now();
  auto r = lab.Run({"run", scenario, "--json"}, std::chrono::seconds(300));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->exit_code, 0) << r->err;
  std::cerr << "backlog run: "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()
            << " s wall\n";
  json run = json::parse(r->out);
  ASSERT_EQ(run["status"], "finished") << r->err;
  EXPECT_TRUE(LabHarness::LabQemus(run.value("run_id", "?")).empty());
  double first_back = -1;
  for (const auto& h : run["hosts"]) {
    ASSERT_TRUE(h["recovered"].get<bool>()) << h.dump();
    const double at = h["recovered_at_s"].get<double>();
    if (first_back < 0 || at < first_back) first_back = at;
  }
  ASSERT_EQ(run["services"].size(), 1u);
  const json& orders = run["services"][0];
  SCOPED_TRACE(orders.dump());
  std::cerr << "orders: " << orders.dump() << "\n";
  EXPECT_TRUE(orders["up_at_end"].get<bool>());
  const double downtime = orders["downtime_s"].get<double>();
  const double catching_up = orders["catching_up_s"].get<double>();
  const double down = downtime - catching_up;  // its hosts were down
  // Down from the second guest's crash until the first is back (after the 05:27 revert).
  EXPECT_GT(down, 60 * 60.0);
  EXPECT_NEAR(orders["down_at_s"].get<double>() + down, first_back, 1.0);
  // Scenario time, piecewise linear: catching up lasts exactly grows / works_off x the outage.
  EXPECT_NEAR(catching_up, 2 * down, 1.0);
  EXPECT_NEAR(orders["up_again_s"].get<double>(), orders["down_at_s"].get<double>() + downtime,
              1.0);
  EXPECT_NE(r->err.find("service orders catching-up"), std::string::npos) << r->err;
  EXPECT_NE(r->err.find("service orders up"), std::string::npos) << r->err;
  // The journal keeps it: the run read back, as JSON and as people read it.
  auto again = lab.Run({"report", run["run_id"], "--json"});
  ASSERT_TRUE(again.ok());
  json loaded = json::parse(again->out);
  EXPECT_DOUBLE_EQ(loaded["services"][0]["catching_up_s"].get<double>(), catching_up);
  auto text = lab.Run({"report", run["run_id"]});
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->out.find("catching up"), std::string::npos) << text->out;
}

}  // namespace
}  // namespace chaoslab::testing
