// What `chaoslab run SCENARIO --uncertainty N` reports (docs/UNCERTAINTY.md): each figure of the
// nominal run (every ranged assumption at its written value) with the median and 5-95 % band of
// N runs whose assumptions were drawn from their ranges, and which assumptions move the figures
// most. Pure arithmetic and formatting; the runs are made by lab/cli (uncertainty_command.cc).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "lab/common/status.h"
#include "lab/report/compare.h"

namespace chaoslab {

// Percentile (stats.h) of the values that are not NaN (a figure a draw did not reach).
std::optional<double> QuantileOf(std::vector<double> values, double q);

struct Band {
  double p5 = 0, median = 0, p95 = 0;
};
// 5 %, 50 % and 95 % quantiles of the values that are not NaN; nullopt when none are.
std::optional<Band> BandOf(const std::vector<double>& values);

// One figure: its value in the nominal run and in each draw (NaN: not known in that draw).
struct UncertainFigure {
  std::string name;  // "+24 h", "crew-scheduling"
  std::string unit;  // "share" (0..1) or "seconds"
  double nominal = 0;
  std::vector<double> draws;
};

// A ranged assumption as the report shows it (config::Assumption, in text).
struct AssumedInput {
  std::string id;    // "setups/hospital.yaml:8:18"
  std::string name;  // "technicians"
  std::string nominal, low, high;
};

// One assumption's pull on every figure (curve figures first, then services): the median of the
// figure among the draws whose value of the assumption lies in the lowest third of its range, and
// among those in the highest third. Derived from the N draws (no extra runs).
struct SensitivityRow {
  size_t assumption = 0;
  std::vector<std::optional<double>> low_third, high_third;
  // The sort key: the largest |high - low| of the healthy share at +24 h or +6 d (share points);
  // without a curve, of a service's downtime relative to its nominal value.
  double swing = 0;
};

struct UncertaintyReport {
  std::string scenario, run_id;  // run_id: the journalled nominal run
  uint64_t seed = 0;
  std::string method;                     // how draws were made and run, one paragraph of text
  std::vector<UncertainFigure> curve;     // healthy share at fixed times after release
  std::vector<double> curve_times_s;      // those times
  std::vector<UncertainFigure> services;  // downtime of each service
  std::vector<AssumedInput> assumptions;
  // [draw][assumption]: where in its range (0..1) each assumption was in each draw.
  std::vector<std::vector<double>> quantiles;
  // The band plot: healthy share over time, nominal and per draw, at plot_times_s.
  std::vector<double> plot_times_s;
  std::vector<double> plot_nominal;
  std::vector<std::vector<double>> plot_draws;  // [draw][time]
};

// One row per assumption, the largest swing first.
std::vector<SensitivityRow> Sensitivity(const UncertaintyReport& report);

// The tables of the text and the page: the curve and the services with their bands, the
// sensitivity (the figures shown: healthy share at +24 h and +6 d, each service's downtime).
std::vector<FormattedTable> FormatUncertainty(const UncertaintyReport& report);

// Text: the curve and the services with their bands, then the sensitivity table.
void PrintUncertainty(const UncertaintyReport& report, std::ostream& out);

// The documented JSON shape (docs/UNCERTAINTY.md).
nlohmann::json UncertaintyJson(const UncertaintyReport& report);

// A self-contained page: the band plot (median line, shaded 5-95 % band, the nominal run), the
// tables of the text output.
Result<std::string> RenderUncertaintyHtml(const UncertaintyReport& report,
                                          const std::string& title);
Status WriteUncertaintyHtml(const UncertaintyReport& report, const std::string& title,
                            const std::string& path);

}  // namespace chaoslab
