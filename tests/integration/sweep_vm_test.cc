// `chaoslab sweep --backend qemu`: a two-value sweep on one real guest. The sensor version is what
// decides whether the channel file crashes a machine (7.10 has no IPC template type), and the
// guest must show it: crash rate 0 with 7.10, 1 with 7.11, each cell a real run in the journal.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/integration/lab_harness.h"

namespace chaoslab::testing {
namespace {

using nlohmann::json;

// One wired workstation, one technician: the smallest fleet the scenario can run.
constexpr char kTinySetup[] = R"(name: tiny
description: One workstation for a real-guest sweep.
image: winsim
sites:
  - {name: hq, technicians: 1}
groups:
  - {name: ws, role: workstation, count: 1, site: hq, sensor: "7.11", network: wired}
)";

TEST(SweepOnRealGuests, SensorVersionDecidesTheCrash) {
  LabHarness lab;
  ASSERT_TRUE(lab.ImageBuilt()) << "guest image not built: run `make image`";
  const std::string setup = (lab.dir() / "tiny.yaml").string();
  std::ofstream(setup) << kTinySetup;
  const auto start = std::chrono::steady_clock::now();
  // Each run is bounded by --max-wall; the whole sweep by the harness's timeout.
  auto r = lab.Run({"sweep", lab.scenario("channel-291"), "--setup", setup, "--backend", "qemu",
                    "--set", "setup.groups[ws].sensor=7.10,7.11", "--figure", "crash_rate",
                    "--max-wall", "100", "--json"},
                   std::chrono::seconds(240));
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->exit_code, 0) << r->err;
  json j = json::parse(r->out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r->out << r->err;
  ASSERT_EQ(j["cells"].size(), 2u) << j.dump(2);
  EXPECT_EQ(j["cells"][0]["values"]["setup.groups[ws].sensor"], "7.10");
  EXPECT_EQ(j["cells"][1]["values"]["setup.groups[ws].sensor"], "7.11");
  for (const json& cell : j["cells"]) ASSERT_EQ(cell["repetitions"], 1) << cell.dump();
  EXPECT_DOUBLE_EQ(j["cells"][0]["figure"]["mean"].get<double>(), 0.0) << j.dump(2);
  EXPECT_DOUBLE_EQ(j["cells"][1]["figure"]["mean"].get<double>(), 100.0) << j.dump(2);  // %
  // Both cells ran on real guests, each with the version it set.
  for (const json& cell : j["cells"]) {
    const std::string run_id = cell["runs"][0];
    auto report = lab.Run({"report", run_id, "--json"});
    ASSERT_TRUE(report.ok());
    json run = json::parse(report->out, nullptr, false);
    ASSERT_FALSE(run.is_discarded()) << report->out << report->err;
    EXPECT_EQ(run["inputs"]["backend"], "qemu") << run["inputs"].dump();
    EXPECT_EQ(run["inputs"]["overrides"][0][1], cell["values"]["setup.groups[ws].sensor"]);
  }
  EXPECT_TRUE(LabHarness::LabQemus("").empty());  // nothing left running
  std::cerr << "real-guest sweep: " << wall << " s wall\n";
}

}  // namespace
}  // namespace chaoslab::testing
