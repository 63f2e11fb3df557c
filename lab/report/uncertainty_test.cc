// The uncertainty report's arithmetic: bands, the sensitivity derived from the draws, and the
// shapes of its text, JSON and page.
#include "lab/report/uncertainty.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <sstream>

namespace chaoslab {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

TEST(UncertaintyBandTest, QuantilesOfTheDrawsLeaveOutWhatADrawDidNotReach) {
  std::optional<Band> b = BandOf({4, 1, kNaN, 3, 2, 5});
  ASSERT_TRUE(b.has_value());
  EXPECT_DOUBLE_EQ(b->median, 3);
  EXPECT_DOUBLE_EQ(b->p5, 1.2);   // 1 + 0.05 * 4 * (2 - 1)
  EXPECT_DOUBLE_EQ(b->p95, 4.8);  // 4 + 0.8 * (5 - 4)
  EXPECT_FALSE(BandOf({kNaN, kNaN}).has_value());
  EXPECT_FALSE(BandOf({}).has_value());
  EXPECT_DOUBLE_EQ(*QuantileOf({7}, 0.95), 7);
}

// Nine draws on a Latin hypercube of two assumptions: "technicians" sets the +24 h figure
// (more technicians, more healthy hosts), "travel" moves nothing.
UncertaintyReport TwoAssumptions() {
  UncertaintyReport r;
  r.scenario = "s";
  r.seed = 291;
  r.method = "test";
  r.assumptions = {{"setups/a.yaml:5:18", "technicians", "4", "2", "9"},
                   {"setups/a.yaml:6:12", "travel", "3m", "1m", "10m"}};
  const double u_techs[] = {0.05, 0.15, 0.25, 0.4, 0.5, 0.6, 0.75, 0.85, 0.95};
  const double u_travel[] = {0.5, 0.95, 0.05, 0.85, 0.15, 0.75, 0.25, 0.6, 0.4};
  UncertainFigure day{"+24 h", "share", 0.5, {}};
  UncertainFigure svc{"crew-scheduling", "seconds", 7200, {}};
  for (int d = 0; d < 9; ++d) {
    r.quantiles.push_back({u_techs[d], u_travel[d]});
    day.draws.push_back(0.3 + 0.4 * u_techs[d]);
    svc.draws.push_back(9000 - 4000 * u_techs[d]);
  }
  r.curve = {day};
  r.curve_times_s = {86400};
  r.services = {svc};
  r.plot_times_s = {0, 86400};
  r.plot_nominal = {0, 0.5};
  for (int d = 0; d < 9; ++d) r.plot_draws.push_back({0, day.draws[static_cast<size_t>(d)]});
  return r;
}

TEST(UncertaintySensitivityTest, TheAssumptionThatMovesAFigureComesFirstWithItsDirection) {
  const UncertaintyReport r = TwoAssumptions();
  std::vector<SensitivityRow> rows = Sensitivity(r);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].assumption, 0u) << "technicians";
  ASSERT_EQ(rows[0].low_third.size(), 2u);  // +24 h, then the service
  // Lowest third: u 0.05, 0.15, 0.25 → median u 0.15 → 0.36; highest: 0.75, 0.85, 0.95 → 0.64.
  EXPECT_NEAR(*rows[0].low_third[0], 0.36, 1e-12);
  EXPECT_NEAR(*rows[0].high_third[0], 0.64, 1e-12);
  EXPECT_NEAR(*rows[0].low_third[1], 9000 - 4000 * 0.15, 1e-9);
  EXPECT_NEAR(*rows[0].high_third[1], 9000 - 4000 * 0.85, 1e-9);
  // Travel's thirds mix low and high technicians: a smaller swing.
  EXPECT_LT(rows[1].swing, rows[0].swing);
  EXPECT_NEAR(rows[0].swing, 0.64 - 0.36, 1e-12);
}

TEST(UncertaintyOutputTest, TextJsonAndPageCarryTheBandsAndTheSensitivity) {
  const UncertaintyReport r = TwoAssumptions();
  std::ostringstream text;
  PrintUncertainty(r, text);
  EXPECT_NE(text.str().find("9 draws of 2 ranged assumption(s), seed 291"), std::string::npos)
      << text.str();
  EXPECT_NE(text.str().find("+24 h"), std::string::npos);
  EXPECT_NE(text.str().find("crew-scheduling down"), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("setups/a.yaml:5:18"), std::string::npos);
  EXPECT_NE(text.str().find("36.0% → 64.0%"), std::string::npos) << text.str();

  const nlohmann::json j = UncertaintyJson(r);
  EXPECT_EQ(j["draws"], 9);
  const auto& day = j["curve"][0];
  EXPECT_EQ(day["after_s"], 86400);
  EXPECT_LE(day["p5"].get<double>(), day["median"].get<double>());
  EXPECT_LE(day["median"].get<double>(), day["p95"].get<double>());
  EXPECT_EQ(j["sensitivity"].size(), 2u);
  EXPECT_EQ(j["sensitivity"][0]["id"], "setups/a.yaml:5:18");
  EXPECT_EQ(j["sensitivity"][0]["figures"][1]["figure"], "crew-scheduling");
  EXPECT_EQ(j["band"].size(), 2u);
  EXPECT_TRUE(j["band"][0]["nominal"].is_number());

  Result<std::string> page = RenderUncertaintyHtml(r, "u");
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_NE(page->find("id=\"band-chart\""), std::string::npos);
  EXPECT_NE(page->find("id=\"uncertainty-table-2\""), std::string::npos) << "the sensitivity table";
  EXPECT_NE(page->find("drawBand"), std::string::npos);
}

TEST(UncertaintyOutputTest, APageNeedsACurve) {
  UncertaintyReport r;
  EXPECT_FALSE(RenderUncertaintyHtml(r, "u").ok());
}

}  // namespace
}  // namespace chaoslab
