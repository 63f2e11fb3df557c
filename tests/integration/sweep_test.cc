// `chaoslab sweep` on the simulator, run as a user would: what-if properties of the shipped
// scenarios (more technicians never make recovery slower), the JSON, the HTML page drawn in a
// browser, the runs in the journal with what was set, and bad input (exit 2, the argument named).
// The same command on real guests: sweep_vm_test.cc.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/integration/lab_harness.h"

namespace chaoslab::testing {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

class SweepTest : public ::testing::Test {
 protected:
  // Runs `chaoslab sweep SCENARIO --backend sim --json ARGS...` and returns its JSON.
  json SweepJson(const std::string& scenario, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"sweep", lab_.scenario(scenario), "--backend", "sim", "--json",
                                     "-q"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = lab_.Run(argv, std::chrono::seconds(300));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return json();
    EXPECT_EQ(r->exit_code, 0) << r->err;
    json j = json::parse(r->out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r->out << r->err;
    return j;
  }
  // Runs chaoslab and checks a clean failure: exit 2, every word on stderr, no abort.
  void ExpectBadInput(const std::vector<std::string>& args, const std::vector<std::string>& words) {
    auto r = lab_.Run(args, std::chrono::seconds(120));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->exit_code, 2) << r->err;
    for (const std::string& w : words) {
      EXPECT_NE(r->err.find(w), std::string::npos) << "'" << w << "' not in: " << r->err;
    }
    EXPECT_EQ(r->err.find("terminate called"), std::string::npos) << r->err;
    EXPECT_EQ(r->out, "");
  }
  static double Mean(const json& cell) { return cell["figure"]["mean"].get<double>(); }
  LabHarness lab_;
};

// bitlocker-escrow has one technician for eight hosts; with more, 90 % of the fleet is healthy
// sooner (or at least not later). The seeds are the same in every cell (compare's rule).
TEST_F(SweepTest, MoreTechniciansNeverSlowTheEscrowScenario) {
  json j = SweepJson("bitlocker-escrow",
                     {"--set", "setup.sites[lab].technicians=1,2,4", "--repeat", "3"});
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["figure"]["name"], "healthy_90_h");
  EXPECT_EQ(j["figure"]["unit"], "h");
  ASSERT_EQ(j["cells"].size(), 3u) << j.dump(2);
  for (const json& cell : j["cells"]) {
    EXPECT_EQ(cell["repetitions"], 3) << cell.dump();
    EXPECT_EQ(cell["seeds"], json::array({291, 292, 293})) << cell.dump();
    ASSERT_FALSE(cell["figure"]["mean"].is_null()) << cell.dump();
    EXPECT_LE(cell["figure"]["low"].get<double>(), Mean(cell));
    EXPECT_GE(cell["figure"]["high"].get<double>(), Mean(cell));
  }
  EXPECT_LE(Mean(j["cells"][1]), Mean(j["cells"][0])) << j.dump(2);
  EXPECT_LE(Mean(j["cells"][2]), Mean(j["cells"][1])) << j.dump(2);
  EXPECT_LT(Mean(j["cells"][2]), Mean(j["cells"][0])) << j.dump(2);  // and it matters
}

// Delta's size: crew scheduling (15 of 20 crew-app servers in the data centre) is down for less
// time with more data-centre technicians, and the terminals' 90 % comes sooner with more field
// technicians; two parameters at once make the grid of both lists.
TEST_F(SweepTest, AirlineHubGridOfTwoParameters) {
  json crew =
      SweepJson("airline-hub-37k", {"--set", "setup.sites[data-center].technicians=2,20",
                                    "--figure", "downtime:crew-scheduling", "--repeat", "2"});
  ASSERT_TRUE(crew.is_object());
  EXPECT_EQ(crew["figure"]["service"], "crew-scheduling");
  ASSERT_EQ(crew["cells"].size(), 2u);
  EXPECT_LT(Mean(crew["cells"][1]), Mean(crew["cells"][0])) << crew.dump(2);

  json grid = SweepJson("airline-hub-37k",
                        {"--set", "setup.sites[terminals].technicians=100,400", "--set",
                         "setup.key_escrow.hosted_on=dc,external", "--figure", "mttr_h"});
  ASSERT_TRUE(grid.is_object());
  EXPECT_EQ(grid["paths"],
            json::array({"setup.sites[terminals].technicians", "setup.key_escrow.hosted_on"}));
  ASSERT_EQ(grid["cells"].size(), 4u);
  const std::vector<std::pair<std::string, std::string>> order = {
      {"100", "dc"}, {"100", "external"}, {"400", "dc"}, {"400", "external"}};
  for (size_t i = 0; i < order.size(); ++i) {
    const json& v = grid["cells"][i]["values"];
    EXPECT_EQ(v["setup.sites[terminals].technicians"], order[i].first) << v.dump();
    EXPECT_EQ(v["setup.key_escrow.hosted_on"], order[i].second) << v.dump();
    EXPECT_EQ(grid["cells"][i]["repetitions"], 1);  // the scenario's repetitions
  }
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_LT(Mean(grid["cells"][i + 2]), Mean(grid["cells"][i])) << grid.dump(2);
  }
}

// The table, the HTML page drawn in a browser, and the runs in the journal with what was set.
TEST_F(SweepTest, TableHtmlPageAndJournal) {
  const std::string html = (lab_.dir() / "sweep.html").string();
  auto r =
      lab_.Run({"sweep", lab_.scenario("bitlocker-escrow"), "--backend", "sim", "--set",
                "setup.sites[lab].travel=2m,uniform(10m, 30m)", "--repeat", "2", "--html", html},
               std::chrono::seconds(300));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->exit_code, 0) << r->err;
  EXPECT_NE(r->out.find("setup.sites[lab].travel"), std::string::npos) << r->out;
  EXPECT_NE(r->out.find("uniform(10m, 30m)"), std::string::npos) << r->out;
  EXPECT_NE(r->out.find("90 % up h"), std::string::npos) << r->out;
  EXPECT_NE(r->out.find("±"), std::string::npos) << r->out;
  EXPECT_NE(r->err.find("sweep "), std::string::npos) << r->err;
  EXPECT_NE(r->err.find("HTML report: " + html), std::string::npos) << r->err;

  ASSERT_TRUE(fs::exists(html));
  std::ifstream in(html);
  const std::string page((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(page.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(page.find("default-src 'none'"), std::string::npos);  // fetches nothing
  auto dom = lab_.DumpDom(html);
  ASSERT_TRUE(dom.ok()) << dom.status().ToString();
  EXPECT_NE(dom->out.find("data-charts=\"drawn\""), std::string::npos) << dom->err;
  size_t points = 0;
  for (size_t at = dom->out.find("class=\"sweep-point\""); at != std::string::npos;
       at = dom->out.find("class=\"sweep-point\"", at + 1))
    ++points;
  EXPECT_EQ(points, 2u);
  EXPECT_NE(dom->out.find("class=\"sweep-line\""), std::string::npos);

  // Four runs in the journal, each with the value its cell set.
  auto runs = lab_.Run({"runs"});
  ASSERT_TRUE(runs.ok());
  int lines = 0;
  for (size_t at = runs->out.find("bitlocker-escrow"); at != std::string::npos;
       at = runs->out.find("bitlocker-escrow", at + 1))
    ++lines;
  EXPECT_EQ(lines, 4) << runs->out;
  auto last = lab_.Run({"report", runs->out.substr(runs->out.find('\n') + 1, 8), "--json"});
  ASSERT_TRUE(last.ok());
  json run = json::parse(last->out, nullptr, false);
  ASSERT_FALSE(run.is_discarded()) << last->out << last->err;
  const json& overrides = run["inputs"]["overrides"];
  ASSERT_EQ(overrides.size(), 1u) << run["inputs"].dump();
  EXPECT_EQ(overrides[0][0], "setup.sites[lab].travel");
  EXPECT_TRUE(overrides[0][1] == "2m" || overrides[0][1] == "uniform(10m, 30m)") << overrides;
}

TEST_F(SweepTest, BadInputIsRefusedBeforeAnythingRuns) {
  const std::string s = lab_.scenario("bitlocker-escrow");
  ExpectBadInput({"sweep", s, "--backend", "sim"}, {"--set is required"});
  ExpectBadInput({"sweep", s, "--set", "setup.sites[lab].technicians"},
                 {"--set setup.sites[lab].technicians: expected PATH=v1,v2,..."});
  ExpectBadInput({"sweep", s, "--set", "setup.sites[lab].technicians=1,,2"}, {"an empty value"});
  ExpectBadInput({"sweep", s, "--set", "setup.sites[lab].technicians=1,1"}, {"listed twice"});
  ExpectBadInput({"sweep", s, "--set", "setup.sites[lab].travel=uniform(1m,2m"}, {"unbalanced"});
  ExpectBadInput({"sweep", s, "--set", "setup.site[lab].technicians=1,2"},
                 {"--set setup.site[lab].technicians=1", "names no parameter",
                  "setup.sites[<site>].technicians"});
  ExpectBadInput({"sweep", s, "--set", "setup.sites[hq].technicians=1,2"},
                 {"no site 'hq'", "its sites: lab"});
  ExpectBadInput({"sweep", s, "--set", "setup.groups[dc].count=1,two"},
                 {"--set setup.groups[dc].count=two", "expected an integer, got 'two'"});
  ExpectBadInput({"sweep", s, "--set", "setup.key_escrow.lookup=uniform(5m, 1m)"}, {"min <= max"});
  ExpectBadInput({"sweep", s, "--set", "runbook.parallelism=1", "--set", "runbook.parallelism=2"},
                 {"given twice"});
  ExpectBadInput({"sweep", s, "--set", "setup.sites[lab].technicians=1", "--figure", "speed"},
                 {"unknown figure 'speed'", "healthy_90_h (default)"});
  ExpectBadInput(
      {"sweep", s, "--set", "setup.sites[lab].technicians=1", "--figure", "downtime:email"},
      {"no service 'email'", "its services: intranet"});
  // A change the loaders would refuse: winpe-usb boots from sticks, and the lab would have none.
  ExpectBadInput(
      {"sweep", s, "--runbook", "winpe-usb", "--set", "setup.sites[lab].usb_sticks=2,0"},
      {"--set setup.sites[lab].usb_sticks=0", "makes the scenario inconsistent", "usb-stick"});
  // A grid too big to mean it: 40 x 40 cells.
  std::string many = "seed=";
  for (int i = 0; i < 40; ++i) many += (i ? "," : "") + std::to_string(i);
  ExpectBadInput(
      {"sweep", s, "--set", many, "--set", "setup.sites[lab].technicians=" + many.substr(5)},
      {"1600 cells", "at most 1000"});
  // Nothing of this reached the journal.
  auto runs = lab_.Run({"runs"});
  ASSERT_TRUE(runs.ok());
  EXPECT_EQ(runs->out.find("bitlocker-escrow"), std::string::npos) << runs->out;
}

}  // namespace
}  // namespace chaoslab::testing
