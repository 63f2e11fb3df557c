// The HTML report as text: structure, self-containment and escaping. That the script really draws
// the charts is checked in a browser by html_browser_test.
#include "lab/report/html.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "lab/report/test_runs.h"

namespace chaoslab {
namespace {

using testing_runs::ComparisonRuns;
using testing_runs::MakeRun;
using testing_runs::Times;

int Count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

TEST(RenderHtmlReportTest, ChartsTablesAndData) {
  auto html = RenderHtmlReport(ComparisonRuns(), "Runbooks compared");
  ASSERT_TRUE(html.ok()) << html.status().ToString();
  const std::string& doc = *html;
  for (const char* expected :
       {"<!DOCTYPE html>", "<title>Runbooks compared</title>", "id=\"recovery-chart\"",
        "id=\"ttr-chart\"", "id=\"service-chart\"", "id=\"comparison\"", "id=\"runs-table\"",
        "id=\"report-data\"", "data-charts=\"pending\"", "15.0 ±12.4", "5.0 (1/2)",
        "comparison c-test", "\"label\":\"reboot-15\"", "\"label\":\"safe-mode-delete\""}) {
    EXPECT_NE(doc.find(expected), std::string::npos) << expected;
  }
  EXPECT_EQ(Count(doc, "<table class=\"comparison\">"), 3);
  // Runs table: one row per run, including the interrupted one.
  EXPECT_EQ(Count(doc, "<td>safe-mode-delete-hospital-"), 3);
  EXPECT_NE(doc.find("<td>interrupted</td>"), std::string::npos);
}

TEST(RenderHtmlReportTest, SelfContained) {
  auto html = RenderHtmlReport(ComparisonRuns(), "t");
  ASSERT_TRUE(html.ok());
  // Nothing that would load another file or reach a network.
  for (const char* forbidden : {" src=", "href=", "<link", "@import", "url(", "<iframe", "fetch(",
                                "XMLHttpRequest", "https://"}) {
    EXPECT_EQ(html->find(forbidden), std::string::npos) << forbidden;
  }
  EXPECT_NE(html->find("Content-Security-Policy\" content=\"default-src 'none'"),
            std::string::npos);
}

TEST(RenderHtmlReportTest, NamesCannotBreakOutOfTheirElements) {
  RunResult run = MakeRun("<b>runbook</b>", "x&y", 0, Times(2, 60));
  run.hosts[0].id = "</script><script>alert(1)</script>";
  run.run_id = "r\"1";
  auto html = RenderHtmlReport({run}, "<i>title</i>");
  ASSERT_TRUE(html.ok());
  EXPECT_EQ(html->find("<b>runbook"), std::string::npos);
  EXPECT_EQ(html->find("<i>title"), std::string::npos);
  EXPECT_NE(html->find("&lt;i&gt;title&lt;/i&gt;"), std::string::npos);
  EXPECT_NE(html->find("\\u003cb\\u003erunbook\\u003c/b\\u003e"), std::string::npos);  // in JSON
  EXPECT_EQ(Count(*html, "<script"), 2);  // the data and the drawing script, nothing injected
  EXPECT_EQ(Count(*html, "</script>"), 2);
}

TEST(RenderHtmlReportTest, OneRunAndNoRuns) {
  auto one = RenderHtmlReport({MakeRun("reboot-15", "", 0, Times(3, 600, 1))}, "one");
  ASSERT_TRUE(one.ok());
  EXPECT_NE(one->find("\"label\":\"reboot-15\""), std::string::npos);
  EXPECT_NE(one->find("\"services\":[]"), std::string::npos);
  // The fourth host never recovered: its outage has no end.
  EXPECT_NE(one->find("[0.0,null]"), std::string::npos);

  auto none = RenderHtmlReport({}, "none");
  EXPECT_EQ(none.status().code(), ErrorCode::kInvalidArgument);
}

TEST(WriteHtmlReportTest, WritesTheFileOrSaysWhy) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("html_test_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "report.html").string();
  ASSERT_TRUE(WriteHtmlReport(ComparisonRuns(), "t", path).ok());
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), *RenderHtmlReport(ComparisonRuns(), "t"));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir),
                          std::filesystem::directory_iterator()),
            1);  // no temporary file left behind

  Status bad = WriteHtmlReport(ComparisonRuns(), "t", (dir / "missing" / "r.html").string());
  EXPECT_EQ(bad.code(), ErrorCode::kIoError);
  EXPECT_NE(bad.message().find("missing"), std::string::npos);
  EXPECT_EQ(WriteHtmlReport({}, "t", path).code(), ErrorCode::kInvalidArgument);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace chaoslab
