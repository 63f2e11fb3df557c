#include "lab/report/compare.h"

#include <gtest/gtest.h>

#include <cmath>
#include <sstream>

#include "lab/report/test_runs.h"

namespace chaoslab {
namespace {

using testing_runs::ComparisonRuns;
using testing_runs::MakeRun;
using testing_runs::Times;

Comparison Sample() { return Comparison{"c-test", "channel-291", ComparisonRuns()}; }

// t(0.975, 2) and t(0.975, 1): the 95 % multipliers for three and two repetitions.
constexpr double kT2 = 4.30265273;
constexpr double kT1 = 12.7062047;

TEST(SummarizeComparisonTest, CellsRepetitionsAndIntervals) {
  const std::vector<CellSummary> cells = SummarizeComparison(Sample());
  ASSERT_EQ(cells.size(), 3u);
  EXPECT_EQ(cells[0].runbook, "reboot-15");
  EXPECT_EQ(cells[1].runbook, "safe-mode-delete");
  EXPECT_EQ(cells[2].runbook, "reimage");
  EXPECT_EQ(cells[0].setup, "hospital");
  EXPECT_EQ(cells[0].run_ids,
            (std::vector<std::string>{"reboot-15-hospital-0", "reboot-15-hospital-1",
                                      "reboot-15-hospital-2"}));
  EXPECT_EQ(cells[1].run_ids.size(), 2u);  // the interrupted third run is not a repetition
  EXPECT_EQ(cells[1].unfinished, 1);

  // reboot-15 MTTR: 600, 900, 1200 s → 900 ± t(2) · 300 / √3.
  const Interval& mttr = *cells[0].mttr_s.value;
  EXPECT_EQ(mttr.n, 3);
  EXPECT_DOUBLE_EQ(mttr.mean, 900);
  EXPECT_NEAR(mttr.high - mttr.mean, kT2 * 300 / std::sqrt(3.0), 1e-4);
  EXPECT_EQ(cells[0].mttr_s.missing, 0);
  EXPECT_DOUBLE_EQ(cells[0].p90_s.value->mean, 900);
  EXPECT_DOUBLE_EQ(cells[0].healthy_99_s.value->mean, 900);

  // safe-mode-delete: 90 % up at 300 s in the first run, never in the second (8 of 10).
  EXPECT_EQ(cells[1].healthy_90_s.value->n, 1);
  EXPECT_DOUBLE_EQ(cells[1].healthy_90_s.value->mean, 300);
  EXPECT_EQ(cells[1].healthy_90_s.missing, 1);
  EXPECT_FALSE(cells[1].healthy_99_s.value.has_value());  // not averaged as 0
  EXPECT_EQ(cells[1].healthy_99_s.missing, 2);
  EXPECT_DOUBLE_EQ(cells[1].failed.value->mean, 1.5);
  EXPECT_NEAR(cells[1].failed.value->low, 1.5 - kT1 * 0.5, 1e-5);
  EXPECT_DOUBLE_EQ(cells[1].recovered.value->mean, 8.5);
  EXPECT_DOUBLE_EQ(cells[1].crash_rate.value->mean, 1.0);
  EXPECT_DOUBLE_EQ(cells[1].boot_loop_rate.value->mean, 0.15);  // 1/10 and 2/10

  // reimage: one repetition, so no spread.
  const Interval& data = *cells[2].data_lost_s.value;
  EXPECT_EQ(data.n, 1);
  EXPECT_DOUBLE_EQ(data.mean, 4 * 3 * 3600);
  EXPECT_EQ(data.low, data.high);
  EXPECT_DOUBLE_EQ(cells[2].data_lost_hosts.value->mean, 4);
  EXPECT_DOUBLE_EQ(cells[2].technician_s.value->mean, 7200);

  // Services: same order for every cell; a service a cell's runs lack is missing, not 0.
  ASSERT_EQ(cells[0].service_downtime_s.size(), 2u);
  EXPECT_EQ(cells[0].service_downtime_s[0].first, "email");
  EXPECT_EQ(cells[0].service_downtime_s[1].first, "crew-scheduling");
  EXPECT_DOUBLE_EQ(cells[0].service_downtime_s[0].second.value->mean, 7200);
  EXPECT_FALSE(cells[0].service_downtime_s[1].second.value.has_value());
  EXPECT_EQ(cells[0].service_downtime_s[1].second.missing, 3);
  EXPECT_DOUBLE_EQ(cells[1].service_downtime_s[1].second.value->mean, 5400);
}

TEST(SummarizeComparisonTest, CellsAreRunbookAndSetupPairs) {
  Comparison c{"c",
               "s",
               {MakeRun("a", "x", 0, Times(2, 60)), MakeRun("a", "y", 0, Times(2, 120)),
                MakeRun("b", "x", 0, Times(2, 60)), MakeRun("a", "x", 1, Times(2, 180))}};
  const std::vector<CellSummary> cells = SummarizeComparison(c);
  ASSERT_EQ(cells.size(), 3u);
  EXPECT_EQ(cells[0].runbook + "/" + cells[0].setup, "a/x");
  EXPECT_EQ(cells[1].runbook + "/" + cells[1].setup, "a/y");
  EXPECT_EQ(cells[2].runbook + "/" + cells[2].setup, "b/x");
  EXPECT_EQ(cells[0].run_ids.size(), 2u);
  EXPECT_DOUBLE_EQ(cells[0].mttr_s.value->mean, 120);
  EXPECT_TRUE(SummarizeComparison(Comparison{}).empty());
}

TEST(FormatComparisonTest, ReadableCells) {
  const std::vector<FormattedTable> tables = FormatComparison(Sample());
  ASSERT_EQ(tables.size(), 3u);
  const FormattedTable& outcome = tables[0];
  EXPECT_EQ(outcome.header, (std::vector<std::string>{"runbook", "setup", "runs", "exposed %",
                                                      "crashed %", "boot-loop %", "recovered",
                                                      "failed", "data-loss hosts", "data lost h"}));
  ASSERT_EQ(outcome.rows.size(), 3u);
  EXPECT_EQ(outcome.rows[0],
            (std::vector<std::string>{"reboot-15", "hospital", "3", "100.0 ±0.0", "100.0 ±0.0",
                                      "0.0 ±0.0", "10 ±0", "0 ±0", "0 ±0", "0.0 ±0.0"}));
  EXPECT_EQ(outcome.rows[1][2], "2 (+1 unfinished)");
  EXPECT_EQ(outcome.rows[1][6], "8.5 ±6.4");
  EXPECT_EQ(outcome.rows[1][7], "1.5 ±6.4");
  EXPECT_EQ(outcome.rows[2][6], "4");
  EXPECT_EQ(outcome.rows[2][9], "12.0");

  const FormattedTable& recovery = tables[1];
  EXPECT_EQ(recovery.header, (std::vector<std::string>{
                                 "runbook", "setup", "runs", "MTTR min", "p50 min", "p90 min",
                                 "p99 min", "90 % up min", "99 % up min", "technician h", "keys"}));
  EXPECT_EQ(recovery.rows[0][3], "15.0 ±12.4");
  EXPECT_EQ(recovery.rows[1][3], "5.0 ±0.0");
  EXPECT_EQ(recovery.rows[1][7], "5.0 (1/2)");  // 90 % reached in one of the two repetitions
  EXPECT_EQ(recovery.rows[1][8], "never");
  EXPECT_EQ(recovery.rows[2][3], "120.0");
  EXPECT_EQ(recovery.rows[2][9], "2.0");

  const FormattedTable& services = tables[2];
  EXPECT_EQ(services.header, (std::vector<std::string>{"runbook", "setup", "runs", "email min",
                                                       "crew-scheduling min"}));
  EXPECT_EQ(services.rows[0][3], "120.0 ±149.0");
  EXPECT_EQ(services.rows[0][4], "–");
  EXPECT_EQ(services.rows[1][4], "90.0 ±381.2");
  EXPECT_EQ(services.rows[2][3], "150.0");
}

TEST(FormatComparisonTest, LongTimesInHoursAndNoServiceTableWithoutServices) {
  Comparison c{
      "c",
      "s",
      {MakeRun("a", "x", 0, Times(2, 3 * 3600)), MakeRun("a", "x", 1, Times(2, 5 * 3600))}};
  const std::vector<FormattedTable> tables = FormatComparison(c);
  ASSERT_EQ(tables.size(), 2u);
  EXPECT_EQ(tables[1].header[3], "MTTR h");
  EXPECT_EQ(tables[1].rows[0][3], "4.0 ±12.7");
}

TEST(PrintComparisonTest, TablesAndLegend) {
  std::ostringstream out;
  PrintComparison(Sample(), out);
  const std::string text = out.str();
  for (const char* expected :
       {"Comparison c-test  scenario channel-291", "3 cells, 6 finished runs (1 unfinished",
        "Outcome", "Recovery", "Service downtime", "reboot-15", "safe-mode-delete", "reimage",
        "15.0 ±12.4", "5.0 (1/2)", "never", "95 % confidence interval"}) {
    EXPECT_NE(text.find(expected), std::string::npos) << expected << "\n" << text;
  }
  // Columns line up: every row of a table is as wide as its header or narrower.
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) EXPECT_LT(line.size(), 400u) << line;
}

std::vector<std::string> Split(const std::string& line, char sep) {
  std::vector<std::string> fields;
  std::string field;
  for (char c : line) {
    if (c == sep) {
      fields.push_back(field);
      field.clear();
    } else if (c != '\r') {
      field += c;
    }
  }
  fields.push_back(field);
  return fields;
}

TEST(WriteComparisonCsvTest, HeaderAndBaseUnits) {
  std::ostringstream out;
  WriteComparisonCsv(Sample(), out);
  std::istringstream in(out.str());
  std::vector<std::vector<std::string>> rows;
  for (std::string line; std::getline(in, line);) rows.push_back(Split(line, ','));
  ASSERT_EQ(rows.size(), 4u);  // header + 3 cells
  const std::vector<std::string>& header = rows[0];
  auto column = [&](const std::string& name) -> size_t {
    auto it = std::find(header.begin(), header.end(), name);
    EXPECT_NE(it, header.end()) << name;
    return static_cast<size_t>(it - header.begin());
  };
  for (const auto& row : rows) EXPECT_EQ(row.size(), header.size());
  EXPECT_EQ(rows[1][column("runbook")], "reboot-15");
  EXPECT_EQ(rows[1][column("setup")], "hospital");
  EXPECT_EQ(rows[1][column("repetitions")], "3");
  EXPECT_EQ(rows[2][column("unfinished")], "1");
  EXPECT_EQ(rows[1][column("mttr_s_mean")], "900");
  EXPECT_NEAR(std::stod(rows[1][column("mttr_s_high")]), 900 + kT2 * 300 / std::sqrt(3.0), 1e-4);
  EXPECT_EQ(rows[1][column("mttr_s_n")], "3");
  EXPECT_EQ(rows[2][column("healthy_90_s_mean")], "300");
  EXPECT_EQ(rows[2][column("healthy_90_s_n")], "1");
  EXPECT_EQ(rows[2][column("healthy_90_s_missing")], "1");
  EXPECT_EQ(rows[2][column("healthy_99_s_mean")], "");  // missing is empty, not 0
  EXPECT_EQ(rows[2][column("healthy_99_s_missing")], "2");
  EXPECT_EQ(rows[1][column("crash_rate_mean")], "1");
  EXPECT_EQ(rows[3][column("service_email_downtime_s_mean")], "9000");
  EXPECT_EQ(rows[1][column("service_crew-scheduling_downtime_s_mean")], "");
}

TEST(WriteComparisonCsvTest, QuotesFieldsThatNeedIt) {
  Comparison c{"c", "s", {MakeRun("fix, then \"reboot\"", "x", 0, Times(1, 60))}};
  std::ostringstream out;
  WriteComparisonCsv(c, out);
  EXPECT_NE(out.str().find(",\"fix, then \"\"reboot\"\"\",x,"), std::string::npos) << out.str();
}

TEST(ComparisonToJsonTest, MetricsWithIntervals) {
  const nlohmann::json j = ComparisonToJson(Sample());
  EXPECT_EQ(j["id"], "c-test");
  EXPECT_EQ(j["scenario"], "channel-291");
  ASSERT_EQ(j["cells"].size(), 3u);
  const auto& reboot = j["cells"][0];
  EXPECT_EQ(reboot["runbook"], "reboot-15");
  EXPECT_EQ(reboot["setup"], "hospital");
  EXPECT_EQ(reboot["repetitions"], 3);
  EXPECT_EQ(reboot["runs"].size(), 3u);
  EXPECT_DOUBLE_EQ(reboot["metrics"]["mttr_s"]["mean"].get<double>(), 900);
  EXPECT_EQ(reboot["metrics"]["mttr_s"]["n"], 3);
  EXPECT_LT(reboot["metrics"]["mttr_s"]["low"].get<double>(), 900);
  for (const char* key :
       {"exposed_rate", "crash_rate", "boot_loop_rate", "mttr_s", "p50_s", "p90_s", "p99_s",
        "healthy_90_s", "healthy_99_s", "technician_s", "keys_fetched", "recovered", "failed",
        "data_lost_hosts", "data_lost_s"}) {
    EXPECT_TRUE(reboot["metrics"].contains(key)) << key;
  }
  EXPECT_DOUBLE_EQ(reboot["service_downtime_s"]["email"]["mean"].get<double>(), 7200);
  EXPECT_TRUE(reboot["service_downtime_s"]["crew-scheduling"]["mean"].is_null());
  const auto& safe = j["cells"][1];
  EXPECT_EQ(safe["unfinished"], 1);
  EXPECT_TRUE(safe["metrics"]["healthy_99_s"]["mean"].is_null());
  EXPECT_EQ(safe["metrics"]["healthy_99_s"]["missing"], 2);
  EXPECT_EQ(safe["metrics"]["healthy_90_s"]["missing"], 1);
}

}  // namespace
}  // namespace chaoslab
