// `chaoslab run SCENARIO --uncertainty N` through the real binary: the bands and the sensitivity in
// the JSON, the text and the page (drawn in a browser), the nominal run in the journal with the
// report, a mix's world, and bad input (exit 2, file:line:column).
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "tests/integration/lab_harness.h"

namespace chaoslab::testing {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

class UncertaintyTest : public ::testing::Test {
 protected:
  json RunJson(const std::vector<std::string>& args) {
    auto r = lab_.Run(args, std::chrono::seconds(300));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return json();
    EXPECT_EQ(r->exit_code, 0) << r->err;
    json j = json::parse(r->out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r->out << r->err;
    return j;
  }
  // The band of a figure is ordered, and the nominal value is a number.
  static void ExpectOrderedBand(const json& figure) {
    ASSERT_TRUE(figure["median"].is_number()) << figure.dump();
    EXPECT_LE(figure["p5"].get<double>(), figure["median"].get<double>()) << figure.dump();
    EXPECT_LE(figure["median"].get<double>(), figure["p95"].get<double>()) << figure.dump();
    EXPECT_TRUE(figure["nominal"].is_number()) << figure.dump();
  }
  std::string Write(const std::string& name, const std::string& text) {
    const fs::path p = lab_.dir() / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p.string();
  }
  LabHarness lab_;
};

// Delta's size, 8 draws: the curve at the six times and crew scheduling's downtime with ordered
// bands, a sensitivity row for every ranged assumption, the page drawn, the report journalled.
TEST_F(UncertaintyTest, AirlineHubBandsSensitivityPageAndJournal) {
  const std::string html = (lab_.dir() / "uncertainty.html").string();
  json j = RunJson({"run", lab_.scenario("airline-hub-37k"), "--uncertainty", "8", "--json", "-q",
                    "--html", html});
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["draws"], 8);
  EXPECT_EQ(j["seed"], 291);
  ASSERT_EQ(j["curve"].size(), 6u) << j.dump(2);
  const std::vector<std::string> times = {"+6 h", "+24 h", "+3 d", "+6 d", "+10 d", "+30 d"};
  for (size_t i = 0; i < times.size(); ++i) {
    EXPECT_EQ(j["curve"][i]["name"], times[i]);
    ExpectOrderedBand(j["curve"][i]);
    EXPECT_EQ(j["curve"][i]["draws"].size(), 8u);
  }
  // The share of healthy hosts never falls over time, in the nominal run and in the median.
  for (size_t i = 1; i < times.size(); ++i) {
    EXPECT_GE(j["curve"][i]["nominal"].get<double>(), j["curve"][i - 1]["nominal"].get<double>());
  }
  json crew;
  for (const json& s : j["services"])
    if (s["name"] == "crew-scheduling") crew = s;
  ASSERT_TRUE(crew.is_object()) << j["services"].dump(2);
  ExpectOrderedBand(crew);
  EXPECT_GT(crew["p95"].get<double>(), crew["p5"].get<double>()) << "the draws differ";

  // Every ranged assumption of the setup and the runbook, each with a sensitivity row.
  std::set<std::string> assumed, rows;
  for (const json& a : j["assumptions"]) {
    assumed.insert(a["id"].get<std::string>());
    EXPECT_TRUE(a["low"].is_string() && a["high"].is_string() && a["nominal"].is_string());
  }
  EXPECT_TRUE(assumed.count("setups/airline-hub-37k.yaml:27:18")) << j["assumptions"].dump(2);
  bool runbook_assumption = false;
  for (const std::string& id : assumed) runbook_assumption |= id.find("runbooks/") == 0;
  EXPECT_TRUE(runbook_assumption);
  for (const json& row : j["sensitivity"]) {
    rows.insert(row["id"].get<std::string>());
    EXPECT_EQ(row["figures"].size(), j["curve"].size() + j["services"].size());
  }
  EXPECT_EQ(rows, assumed);
  ASSERT_EQ(j["quantiles"].size(), 8u);
  // Latin hypercube: each assumption's 8 draws fall in 8 different eighths of its range.
  for (size_t a = 0; a < assumed.size(); ++a) {
    std::set<int> slices;
    for (const json& draw : j["quantiles"])
      slices.insert(static_cast<int>(draw[a].get<double>() * 8));
    EXPECT_EQ(slices.size(), 8u) << "assumption " << a;
  }
  // More field technicians: the check-in kiosks are up sooner (median of the top vs low third).
  for (const json& row : j["sensitivity"]) {
    if (row["id"] != "setups/airline-hub-37k.yaml:27:18") continue;
    for (const json& f : row["figures"]) {
      if (f["figure"] == "check-in") {
        EXPECT_LT(f["high_third"].get<double>(), f["low_third"].get<double>()) << row.dump(2);
      }
    }
  }

  // The page: the band drawn, the tables.
  ASSERT_TRUE(fs::exists(html));
  auto dom = lab_.DumpDom(html);
  ASSERT_TRUE(dom.ok()) << dom.status().ToString();
  EXPECT_NE(dom->out.find("data-charts=\"drawn\""), std::string::npos) << dom->err;
  EXPECT_NE(dom->out.find("class=\"band\""), std::string::npos);
  EXPECT_NE(dom->out.find("class=\"band-median\""), std::string::npos);
  EXPECT_NE(dom->out.find("class=\"band-nominal\""), std::string::npos);
  EXPECT_NE(dom->out.find("id=\"uncertainty-table-2\""), std::string::npos) << "sensitivity";
  EXPECT_NE(dom->out.find("crew-scheduling"), std::string::npos);

  // The nominal run is in the journal, with the report in its inputs.
  auto report = lab_.Run({"report", j["run_id"].get<std::string>(), "--json"});
  ASSERT_TRUE(report.ok());
  ASSERT_EQ(report->exit_code, 0) << report->err;
  json run = json::parse(report->out, nullptr, false);
  ASSERT_FALSE(run.is_discarded()) << report->out;
  EXPECT_EQ(run["inputs"]["uncertainty"]["draws"], 8) << run["inputs"].dump();
  EXPECT_EQ(run["inputs"]["uncertainty"]["sensitivity"].size(), assumed.size());
  auto text_report = lab_.Run({"report", j["run_id"].get<std::string>()});
  ASSERT_TRUE(text_report.ok());
  EXPECT_EQ(text_report->exit_code, 0) << text_report->err;
}

TEST_F(UncertaintyTest, TextShowsTheBandsAndTheSensitivityTable) {
  auto r = lab_.Run({"run", lab_.scenario("airline-hub-37k"), "--uncertainty", "8", "-q"},
                    std::chrono::seconds(300));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->exit_code, 0) << r->err;
  for (const std::string word :
       {"8 draws of", "Latin hypercube", "nominal  median     5 %    95 %", "+30 d",
        "crew-scheduling", "Sensitivity", "setups/airline-hub-37k.yaml:27:18", "50 – 200 (100)",
        "crew-scheduling down"}) {
    EXPECT_NE(r->out.find(word), std::string::npos) << "'" << word << "' not in:\n" << r->out;
  }
}

// A plain simulated run (no --uncertainty) prints its curve at the same six times.
TEST_F(UncertaintyTest, PlainSimRunPrintsTheCurveAtTheSixTimes) {
  auto r = lab_.Run({"run", lab_.scenario("airline-hub-37k"), "-q"}, std::chrono::seconds(300));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->exit_code, 0) << r->err;
  const size_t at = r->out.find("Recovery curve (share of hosts healthy for good, after release):");
  ASSERT_NE(at, std::string::npos) << r->out;
  EXPECT_NE(r->out.find("   +6 h   +24 h    +3 d    +6 d   +10 d   +30 d\n", at), std::string::npos)
      << r->out.substr(at);
  EXPECT_NE(r->out.find("100.00%", at), std::string::npos) << r->out.substr(at);
}

// Ctrl-C between draws: exit 130 soon, nothing journalled.
TEST_F(UncertaintyTest, InterruptStopsBetweenDraws) {
  const pid_t pid =
      lab_.Start({"run", lab_.scenario("airline-hub-37k"), "--uncertainty", "1000", "--json"});
  ASSERT_TRUE(
      lab_.WaitForStderr(pid, "uncertainty: 10 of 1000 draws done", std::chrono::seconds(120)))
      << lab_.StderrOf(pid);
  ASSERT_EQ(kill(pid, SIGINT), 0);
  EXPECT_EQ(lab_.Wait(pid, std::chrono::seconds(60)), 130) << lab_.StderrOf(pid);
  EXPECT_NE(lab_.StderrOf(pid).find("interrupted"), std::string::npos) << lab_.StderrOf(pid);
  EXPECT_EQ(lab_.StdoutOf(pid), "");
  auto runs = lab_.Run({"runs"});
  ASSERT_TRUE(runs.ok());
  EXPECT_EQ(runs->out.find("airline-hub-37k"), std::string::npos) << runs->out;
}

// The world: the mix's shares and sizes are assumptions too; each draw plans a smaller world.
TEST_F(UncertaintyTest, GlobalMixDrawsASmallerWorldWithTheMixAssumptions) {
  json j = RunJson({"run", lab_.scenario("global-2024"), "--uncertainty", "3", "--draw-hosts",
                    "100000", "--json", "-q"});
  ASSERT_TRUE(j.is_object());
  bool share = false;
  for (const json& a : j["assumptions"]) {
    share |= a["id"].get<std::string>().rfind("mixes/world-2024.yaml:", 0) == 0 &&
             a["name"].get<std::string>().find("share") != std::string::npos;
  }
  EXPECT_TRUE(share) << j["assumptions"].dump(2);
  bool region = false;  // the regions' shares are ranged too (issue 18)
  for (const json& a : j["assumptions"]) {
    region |= a["name"].get<std::string>().find("regions[") != std::string::npos;
  }
  EXPECT_TRUE(region) << j["assumptions"].dump(2);
  EXPECT_NE(j["method"].get<std::string>().find("at 100000 hosts"), std::string::npos);
  for (const json& f : j["curve"]) ExpectOrderedBand(f);
  EXPECT_EQ(j["curve"][5]["name"], "+30 d");
}

// Issue 18: a mix's regions through the binary: a line per region after the run, and a bad region
// refused with its place (exit 2).
TEST_F(UncertaintyTest, MixRegionsReportedPerRegionAndCheckedWithTheirPlace) {
  const std::string office = lab_.source_dir() + "/playbooks/setups/small-office.yaml";
  const std::string archetypes = "archetypes:\n  - {name: office, setup: " + office +
                                 ", runbook: " + lab_.source_dir() +
                                 "/playbooks/runbooks/safe-mode-delete.yaml, share: 1, size: 50}\n";
  Write("playbooks/mixes/two.yaml",
        "name: two\nhosts: 1000\nregions:\n"
        "  - {name: americas, share: 0.5, timezone: \"-05:00\"}\n"
        "  - {name: europe, share: 0.5, timezone: \"+02:00\"}\n" +
            archetypes);
  const std::string scenario = Write(
      "playbooks/scenarios/two.yaml",
      "name: two\nmix: ../mixes/two.yaml\nfault: {kind: channel-291}\nbackend: sim\n"
      "rollout: {policy: all-at-once, start: \"04:00\", release: \"04:09\", revert: \"05:27\"}\n"
      "stop: {max_scenario: 10d}\ncalibration: " +
          lab_.source_dir() + "/playbooks/calibration/winsim.yaml\n");
  auto r = lab_.Run({"run", scenario}, std::chrono::seconds(120));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 0) << r->err;
  EXPECT_NE(r->err.find("sim: region americas: 500 hosts"), std::string::npos) << r->err;
  EXPECT_NE(r->err.find("sim: region europe: 500 hosts"), std::string::npos) << r->err;

  const std::string bad = Write("playbooks/mixes/two.yaml",
                                "name: two\nhosts: 1000\nregions:\n"
                                "  - {name: americas, share: 0.5, timezone: America/New_York}\n"
                                "  - {name: europe, share: 0.4, timezone: \"+02:00\"}\n" +
                                    archetypes);
  r = lab_.Run({"run", scenario}, std::chrono::seconds(60));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 2) << r->err;
  EXPECT_NE(r->err.find(bad + ":4:44: timezone: expected a UTC offset"), std::string::npos)
      << r->err;
}

TEST_F(UncertaintyTest, BadInputIsRefusedWithItsPlace) {
  const std::string setup = Write("playbooks/setups/bad.yaml", R"(name: bad
image: winsim
sites:
  - name: hq
    technicians: {assume: 4, range: [9, 2]}
groups:
  - {name: ws, role: workstation, count: 20, sensor: "7.11"}
)");
  const std::string scenario =
      Write("playbooks/scenarios/bad.yaml",
            "name: bad\nsetup: ../setups/bad.yaml\nrunbook: " + lab_.source_dir() +
                "/playbooks/runbooks/safe-mode-delete.yaml\nbackend: sim\n");
  auto r = lab_.Run({"run", scenario, "--uncertainty", "4"}, std::chrono::seconds(120));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 2) << r->err;
  EXPECT_NE(r->err.find("bad.yaml:5:37: technicians: range [9, 2]: expected [LOW, HIGH] with LOW "
                        "<= HIGH"),
            std::string::npos)
      << r->err;
  EXPECT_EQ(r->out, "");

  auto qemu =
      lab_.Run({"run", lab_.scenario("airline-hub-37k"), "--uncertainty", "4", "--backend", "qemu"},
               std::chrono::seconds(60));
  ASSERT_TRUE(qemu.ok());
  EXPECT_EQ(qemu->exit_code, 2);
  EXPECT_NE(
      qemu->err.find("--uncertainty draws its runs on the simulator; not with --backend qemu"),
      std::string::npos)
      << qemu->err;
  auto zero = lab_.Run({"run", lab_.scenario("airline-hub-37k"), "--uncertainty", "-1"},
                       std::chrono::seconds(60));
  ASSERT_TRUE(zero.ok());
  EXPECT_EQ(zero->exit_code, 2) << zero->err;
  // Nothing of this reached the journal.
  auto runs = lab_.Run({"runs"});
  ASSERT_TRUE(runs.ok());
  EXPECT_EQ(runs->out.find("airline-hub-37k"), std::string::npos) << runs->out;
}

}  // namespace
}  // namespace chaoslab::testing
