// The sweep report (sweep.h): figure names, the figure per cell with its interval, the table, the
// JSON and the page (its markup here; lab/report/html_browser_test.cc draws it in a browser).
#include "lab/report/sweep.h"

#include <gtest/gtest.h>

#include <sstream>

#include "lab/report/test_runs.h"

namespace chaoslab {
namespace {

using testing_runs::MakeRun;
using testing_runs::Service;
using testing_runs::Times;

// technicians 1 → hosts back at 2 h and 4 h (two repetitions); 2 → 1 h and 1 h; 3 → one run
// interrupted, one with 2 of 4 hosts never back (90 % never reached).
Sweep TechnicianSweep(const std::string& figure = kDefaultSweepFigure) {
  Sweep sweep;
  sweep.id = "s-test";
  sweep.scenario = "bitlocker-escrow";
  sweep.paths = {"setup.sites[lab].technicians"};
  sweep.figure = *ParseSweepFigure(figure);
  auto run = [](int rep, std::vector<std::optional<double>> at, double crew) {
    RunResult r = MakeRun("safe-mode-delete", "lab-bitlocker", rep, at, {Service("crew", crew)});
    r.seed = 291 + rep;
    return r;
  };
  sweep.cells.push_back({{"1"}, {run(0, Times(4, 7200), 3600), run(1, Times(4, 14400), 7200)}});
  sweep.cells.push_back({{"2"}, {run(0, Times(4, 3600), 1800), run(1, Times(4, 3600), 1800)}});
  RunResult killed = run(0, Times(4, 600), 60);
  killed.status = "interrupted";
  sweep.cells.push_back({{"3"}, {killed, run(1, Times(2, 600, 2), 60)}});
  return sweep;
}

TEST(SweepFigure, Names) {
  SweepFigure f = *ParseSweepFigure("healthy_90_h");
  EXPECT_EQ(f.metric, "healthy_90_s");
  EXPECT_EQ(f.unit, "h");
  EXPECT_EQ(f.scale, 3600);
  EXPECT_EQ(ParseSweepFigure("mttr_min")->scale, 60);
  EXPECT_EQ(ParseSweepFigure("mttr_s")->scale, 1);
  EXPECT_EQ(ParseSweepFigure("technician_h")->metric, "technician_s");
  EXPECT_EQ(ParseSweepFigure("crash_rate")->unit, "%");
  EXPECT_TRUE(ParseSweepFigure("recovered")->count);
  SweepFigure crew = *ParseSweepFigure("downtime:crew");
  EXPECT_EQ(crew.service, "crew");
  EXPECT_EQ(crew.unit, "h");
  for (const char* bad : {"", "healthy_90", "mttr_days", "crash_rate_h", "downtime:", "nope"}) {
    Result<SweepFigure> r = ParseSweepFigure(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("unknown figure '" + std::string(bad) + "'"),
              std::string::npos);
    EXPECT_NE(r.status().message().find("healthy_90_h (default)"), std::string::npos);
    EXPECT_NE(r.status().message().find("downtime:<service>"), std::string::npos);
  }
}

TEST(SweepReport, FigurePerCellWithIntervals) {
  const std::vector<SweepRow> rows = SummarizeSweep(TechnicianSweep());
  ASSERT_EQ(rows.size(), 3u);
  ASSERT_TRUE(rows[0].figure.value);
  EXPECT_DOUBLE_EQ(rows[0].figure.value->mean, 3 * 3600);  // 2 h and 4 h
  EXPECT_EQ(rows[0].figure.value->n, 2);
  EXPECT_LT(rows[0].figure.value->low, rows[0].figure.value->mean);
  EXPECT_DOUBLE_EQ(rows[1].figure.value->mean, 3600);
  EXPECT_DOUBLE_EQ(rows[1].figure.value->high, 3600);  // no spread
  EXPECT_FALSE(rows[2].figure.value);                  // the one finished run never got to 90 %
  EXPECT_EQ(rows[2].summary.unfinished, 1);
  EXPECT_EQ(rows[2].figure.missing, 1);

  std::ostringstream out;
  PrintSweep(TechnicianSweep(), out);
  const std::string text = out.str();
  EXPECT_NE(text.find("Sweep s-test  scenario bitlocker-escrow  figure healthy_90_h (90 % up)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("setup.sites[lab].technicians"), std::string::npos) << text;
  EXPECT_NE(text.find("90 % up h"), std::string::npos) << text;
  EXPECT_NE(text.find("3.0 ±"), std::string::npos) << text;
  EXPECT_NE(text.find("1 (+1 unfinished)"), std::string::npos) << text;
  EXPECT_NE(text.find("never"), std::string::npos) << text;
}

TEST(SweepReport, ServiceDowntimeFigure) {
  const std::vector<SweepRow> rows = SummarizeSweep(TechnicianSweep("downtime:crew"));
  ASSERT_TRUE(rows[0].figure.value);
  EXPECT_DOUBLE_EQ(rows[0].figure.value->mean, 5400);
  EXPECT_DOUBLE_EQ(rows[2].figure.value->mean, 60);
  // A service no run has: no value anywhere, shown as "–".
  const std::vector<SweepRow> none = SummarizeSweep(TechnicianSweep("downtime:email"));
  for (const SweepRow& row : none) EXPECT_FALSE(row.figure.value);
}

TEST(SweepReport, Json) {
  const nlohmann::json j = SweepToJson(TechnicianSweep());
  EXPECT_EQ(j["id"], "s-test");
  EXPECT_EQ(j["paths"], nlohmann::json::array({"setup.sites[lab].technicians"}));
  EXPECT_EQ(j["figure"]["name"], "healthy_90_h");
  EXPECT_EQ(j["figure"]["metric"], "healthy_90_s");
  EXPECT_EQ(j["figure"]["unit"], "h");
  ASSERT_EQ(j["cells"].size(), 3u);
  const nlohmann::json& first = j["cells"][0];
  EXPECT_EQ(first["values"]["setup.sites[lab].technicians"], "1");
  EXPECT_EQ(first["repetitions"], 2);
  EXPECT_EQ(first["seeds"], nlohmann::json::array({291, 292}));
  EXPECT_DOUBLE_EQ(first["figure"]["mean"].get<double>(), 3.0);  // hours
  EXPECT_LT(first["figure"]["low"].get<double>(), 3.0);
  EXPECT_EQ(first["figure"]["n"], 2);
  EXPECT_TRUE(j["cells"][2]["figure"]["mean"].is_null());
  EXPECT_EQ(j["cells"][2]["unfinished"], 1);
  EXPECT_EQ(j["cells"][2]["figure"]["missing"], 1);
}

TEST(SweepReport, PageIsSelfContained) {
  Sweep sweep = TechnicianSweep();
  sweep.paths[0] = "setup.sites[</script><b>].technicians";  // names reach the page escaped
  Result<std::string> page = RenderSweepHtml(sweep, "sweep <test>");
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_EQ(page->rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(page->find("default-src 'none'"), std::string::npos);
  EXPECT_NE(page->find("<svg id=\"sweep-chart\""), std::string::npos);
  EXPECT_NE(page->find("<table id=\"sweep-table\">"), std::string::npos);
  EXPECT_NE(page->find("<title>sweep &lt;test&gt;</title>"), std::string::npos);
  EXPECT_EQ(page->find("</script><b>"), std::string::npos);
  EXPECT_EQ(page->find("http://"), page->find("http://www.w3.org/2000/svg"));  // SVG's namespace
  EXPECT_EQ(page->find("https://"), std::string::npos);
  EXPECT_FALSE(RenderSweepHtml(Sweep{}, "empty").ok());
}

}  // namespace
}  // namespace chaoslab
