// Opens the HTML report in headless Chromium and checks that its inline script really drew the
// charts: the DOM Chromium dumps after loading must hold the SVG the script generated. Needs
// /usr/bin/chromium (installed by .ci/setup-debian); fails, never skips, without it. No network:
// the page is a local file that fetches nothing, and the browser runs with a private profile.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>

#include "lab/common/subprocess.h"
#include "lab/report/html.h"
#include "lab/report/sweep.h"
#include "lab/report/test_runs.h"

namespace chaoslab {
namespace {

namespace fs = std::filesystem;
using testing_runs::ComparisonRuns;
using testing_runs::MakeRun;
using testing_runs::Times;

using Attributes = std::map<std::string, std::string>;

// Every start tag `<name ...>` in `dom`, as its attributes.
std::vector<Attributes> Tags(const std::string& dom, const std::string& name) {
  std::vector<Attributes> tags;
  const std::regex tag("<" + name + "\\b([^>]*)>");
  const std::regex attribute("([A-Za-z_:][-A-Za-z0-9_:.]*)=\"([^\"]*)\"");
  for (auto it = std::sregex_iterator(dom.begin(), dom.end(), tag); it != std::sregex_iterator();
       ++it) {
    Attributes attributes;
    const std::string inside = (*it)[1];
    for (auto a = std::sregex_iterator(inside.begin(), inside.end(), attribute);
         a != std::sregex_iterator(); ++a) {
      attributes[(*a)[1]] = (*a)[2];
    }
    tags.push_back(std::move(attributes));
  }
  return tags;
}

std::vector<Attributes> WithClass(const std::vector<Attributes>& tags, const std::string& cls) {
  std::vector<Attributes> out;
  for (const Attributes& t : tags) {
    auto it = t.find("class");
    if (it != t.end() && it->second == cls) out.push_back(t);
  }
  return out;
}

class HtmlBrowserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("html_browser_test_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "profile");
    const char* env = std::getenv("CHAOSLAB_CHROMIUM");
    chromium_ = env && *env ? env : "/usr/bin/chromium";
    ASSERT_EQ(access(chromium_.c_str(), X_OK), 0)
        << chromium_ << " is missing: run .ci/setup-debian (it installs chromium)";
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Chromium with a private profile and nothing that phones home; `extra` selects the output.
  Result<ProcessOutput> Chromium(const std::vector<std::string>& extra, const std::string& page) {
    std::vector<std::string> argv = {chromium_,
                                     "--headless",
                                     "--no-sandbox",  // the tests may run as root (CI)
                                     "--disable-gpu",
                                     "--user-data-dir=" + (dir_ / "profile").string(),
                                     "--no-first-run",
                                     "--no-default-browser-check",
                                     "--disable-background-networking",
                                     "--disable-component-update",
                                     "--disable-sync",
                                     "--disable-extensions",
                                     "--hide-scrollbars"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back("file://" + page);
    return RunProcess(argv, std::chrono::seconds(120));
  }

  // Writes the report of `runs` and returns the DOM after the page's script ran.
  std::string RenderedDom(const std::vector<RunResult>& runs) {
    const std::string page = (dir_ / "report.html").string();
    Status written = WriteHtmlReport(runs, "browser test", page);
    EXPECT_TRUE(written.ok()) << written.ToString();
    auto out = Chromium({"--dump-dom"}, page);
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    if (!out.ok()) return "";
    EXPECT_EQ(out->exit_code, 0) << out->err;
    return out->out;
  }

  fs::path dir_;
  std::string chromium_;
};

TEST_F(HtmlBrowserTest, ComparisonChartsAreDrawn) {
  const std::string dom = RenderedDom(ComparisonRuns());
  ASSERT_FALSE(dom.empty());
  const std::vector<Attributes> body = Tags(dom, "body");
  ASSERT_EQ(body.size(), 1u);
  EXPECT_EQ(body[0].at("data-charts"), "drawn") << dom.substr(0, 4000);
  EXPECT_NE(dom.find("<p id=\"report-error\"></p>"), std::string::npos);

  // Recovery curve: one mean path per runbook, in order, each a real step line.
  const std::vector<Attributes> paths = Tags(dom, "path");
  const std::vector<Attributes> means = WithClass(paths, "curve-mean");
  ASSERT_EQ(means.size(), 3u);
  const std::vector<std::string> runbooks = {"reboot-15", "safe-mode-delete", "reimage"};
  for (size_t i = 0; i < means.size(); ++i) {
    EXPECT_EQ(means[i].at("data-cell"), runbooks[i]);
    const std::string& d = means[i].at("d");
    EXPECT_EQ(d.rfind("M", 0), 0u) << d;
    EXPECT_NE(d.find('V'), std::string::npos) << d;  // it steps: hosts came back
    EXPECT_EQ(d.find("NaN"), std::string::npos) << d;
  }
  EXPECT_NE(means[0].at("stroke"), means[1].at("stroke"));  // told apart by colour
  // Thin per-run lines for cells with several finished runs (3 + 2; the interrupted run and the
  // single reimage run have none).
  EXPECT_EQ(WithClass(paths, "curve-run").size(), 5u);

  // Time to recover: a box per runbook and a dot per recovered host (30 + 17 + 4).
  const std::vector<Attributes> groups = Tags(dom, "g");
  EXPECT_EQ(WithClass(groups, "ttr-box").size(), 3u);
  EXPECT_EQ(WithClass(Tags(dom, "circle"), "ttr-point").size(), 51u);

  // Service downtime: email in all three cells, crew-scheduling only in safe-mode-delete.
  const std::vector<Attributes> bars = WithClass(Tags(dom, "rect"), "service-bar");
  ASSERT_EQ(bars.size(), 4u);
  int email = 0;
  for (const Attributes& bar : bars) {
    email += bar.at("data-service") == "email";
    EXPECT_GT(std::stod(bar.at("width")), 1.0);
  }
  EXPECT_EQ(email, 3);
  EXPECT_EQ(WithClass(Tags(dom, "table"), "comparison").size(), 3u);
  EXPECT_EQ(Tags(dom, "span").size(), 9u);  // legend: item, swatch, label per cell
}

TEST_F(HtmlBrowserTest, SingleRunWithoutServices) {
  RunResult run = MakeRun("reboot-15", "", 0, Times(5, 900, 2));
  run.comparison_id.clear();
  const std::string dom = RenderedDom({run});
  ASSERT_FALSE(dom.empty());
  EXPECT_EQ(Tags(dom, "body")[0].at("data-charts"), "drawn");
  const std::vector<Attributes> paths = Tags(dom, "path");
  const std::vector<Attributes> means = WithClass(paths, "curve-mean");
  ASSERT_EQ(means.size(), 1u);
  EXPECT_EQ(means[0].at("data-cell"), "reboot-15");
  EXPECT_TRUE(WithClass(paths, "curve-run").empty());
  EXPECT_EQ(WithClass(Tags(dom, "circle"), "ttr-point").size(), 5u);
  EXPECT_TRUE(WithClass(Tags(dom, "rect"), "service-bar").empty());
  EXPECT_NE(dom.find("No business services in these runs."), std::string::npos);
}

// The sweep page: technicians 1, 2, 4 (placed by value) for two escrow places, two repetitions
// each; a line and three points a series, the 90 % time falling as technicians are added.
TEST_F(HtmlBrowserTest, SweepChartIsDrawn) {
  Sweep sweep;
  sweep.id = "s-browser";
  sweep.scenario = "bitlocker-escrow";
  sweep.paths = {"setup.sites[lab].technicians", "setup.key_escrow.hosted_on"};
  sweep.figure = *ParseSweepFigure("healthy_90_h");
  for (const char* escrow : {"dc", "external"}) {
    for (int technicians : {1, 2, 4}) {
      SweepCell cell{{std::to_string(technicians), escrow}, {}};
      for (int rep = 0; rep < 2; ++rep) {
        const double at = 3600.0 * 8 / technicians + rep * 600;
        cell.runs.push_back(MakeRun("safe-mode-delete", "lab-bitlocker", rep, Times(4, at)));
      }
      sweep.cells.push_back(std::move(cell));
    }
  }
  const std::string page = (dir_ / "sweep.html").string();
  ASSERT_TRUE(WriteSweepHtml(sweep, "sweep browser test", page).ok());
  auto out = Chromium({"--dump-dom"}, page);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  const std::string& dom = out->out;
  ASSERT_EQ(Tags(dom, "body").size(), 1u);
  EXPECT_EQ(Tags(dom, "body")[0].at("data-charts"), "drawn") << dom.substr(0, 4000);
  const std::vector<Attributes> lines = WithClass(Tags(dom, "path"), "sweep-line");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].at("data-series"), "setup.key_escrow.hosted_on=dc");
  EXPECT_NE(lines[0].at("stroke"), lines[1].at("stroke"));
  const std::vector<Attributes> points = WithClass(Tags(dom, "circle"), "sweep-point");
  ASSERT_EQ(points.size(), 6u);
  // By value: 1, 2 and 4 technicians at increasing x, the 90 % time (higher y = lower) falling.
  EXPECT_LT(std::stod(points[0].at("cx")), std::stod(points[1].at("cx")));
  EXPECT_NEAR(std::stod(points[2].at("cx")) - std::stod(points[1].at("cx")),
              2 * (std::stod(points[1].at("cx")) - std::stod(points[0].at("cx"))), 0.5);
  EXPECT_LT(std::stod(points[0].at("cy")), std::stod(points[2].at("cy")));
  EXPECT_NEAR(std::stod(points[0].at("data-mean")), 8 + 1.0 / 12, 1e-9);
  EXPECT_EQ(WithClass(Tags(dom, "line"), "sweep-ci").size(), 6u);
  EXPECT_EQ(Tags(dom, "table").size(), 1u);
}

TEST_F(HtmlBrowserTest, ScreenshotRenders) {
  const std::string page = (dir_ / "report.html").string();
  ASSERT_TRUE(WriteHtmlReport(ComparisonRuns(), "screenshot", page).ok());
  const std::string png = (dir_ / "report.png").string();
  auto out = Chromium({"--window-size=1100,1800", "--screenshot=" + png}, page);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->exit_code, 0) << out->err;
  std::ifstream in(png, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(bytes.size(), 8u);
  EXPECT_EQ(bytes.substr(1, 3), "PNG");
  EXPECT_GT(bytes.size(), 30000u);  // charts and tables, not a blank page (a blank one is ~10 KB)
}

}  // namespace
}  // namespace chaoslab
