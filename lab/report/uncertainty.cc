// The uncertainty report's arithmetic (bands, sensitivity), text and JSON (uncertainty.h).
#include "lab/report/uncertainty.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "lab/report/stats.h"
#include "lab/report/text_table.h"

namespace chaoslab {
namespace {

using report_internal::TextTable;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The figures of a report in one list: the curve's, then the services'.
std::vector<const UncertainFigure*> AllFigures(const UncertaintyReport& r) {
  std::vector<const UncertainFigure*> out;
  for (const auto& f : r.curve) out.push_back(&f);
  for (const auto& f : r.services) out.push_back(&f);
  return out;
}

std::string ValueText(const UncertainFigure& f, std::optional<double> v) {
  if (!v || std::isnan(*v)) return "–";
  if (f.unit == "share") return fmt::format("{:.1f}%", *v * 100);
  if (*v < 3600) return fmt::format("{:.0f} min", *v / 60);
  if (*v < 2 * 86400) return fmt::format("{:.1f} h", *v / 3600);
  return fmt::format("{:.1f} d", *v / 86400);
}

// The figures the sensitivity table shows: the healthy share at +24 h and +6 d (else the first
// and last of the curve), and each service's downtime.
std::vector<size_t> ShownFigures(const UncertaintyReport& r) {
  std::vector<size_t> shown;
  for (size_t i = 0; i < r.curve.size(); ++i)
    if (r.curve[i].name == "+24 h" || r.curve[i].name == "+6 d") shown.push_back(i);
  if (shown.empty() && !r.curve.empty()) {
    shown.push_back(0);
    if (r.curve.size() > 1) shown.push_back(r.curve.size() - 1);
  }
  for (size_t s = 0; s < r.services.size(); ++s) shown.push_back(r.curve.size() + s);
  return shown;
}

nlohmann::json Number(std::optional<double> v) {
  return v && !std::isnan(*v) ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

nlohmann::json FigureJson(const UncertainFigure& f) {
  std::optional<Band> band = BandOf(f.draws);
  nlohmann::json draws = nlohmann::json::array();
  for (double v : f.draws) draws.push_back(Number(v));
  return {{"name", f.name},
          {"unit", f.unit},
          {"nominal", Number(f.nominal)},
          {"median", band ? nlohmann::json(band->median) : nlohmann::json(nullptr)},
          {"p5", band ? nlohmann::json(band->p5) : nlohmann::json(nullptr)},
          {"p95", band ? nlohmann::json(band->p95) : nlohmann::json(nullptr)},
          {"draws", std::move(draws)}};
}

FormattedTable FigureTable(const std::string& title, const std::vector<UncertainFigure>& figures) {
  FormattedTable t{
      title, {"", "nominal", "median", "5 %", "95 %"}, {false, true, true, true, true}, {}};
  for (const auto& f : figures) {
    std::optional<Band> b = BandOf(f.draws);
    t.rows.push_back({f.name, ValueText(f, f.nominal), ValueText(f, b ? b->median : kNaN),
                      ValueText(f, b ? b->p5 : kNaN), ValueText(f, b ? b->p95 : kNaN)});
  }
  return t;
}

FormattedTable SensitivityTable(const UncertaintyReport& r) {
  const std::vector<const UncertainFigure*> figures = AllFigures(r);
  const std::vector<size_t> shown = ShownFigures(r);
  FormattedTable t;
  t.title =
      "Sensitivity: each figure's median over the draws with the assumption in the lowest third "
      "of its range → in the highest third (from the same draws; the largest change of a healthy "
      "share first)";
  t.header = {"assumption", "where", "range (nominal)"};
  for (size_t f : shown) {
    t.header.push_back(figures[f]->unit == "share" ? "healthy " + figures[f]->name
                                                   : figures[f]->name + " down");
  }
  t.numeric.assign(t.header.size(), true);
  t.numeric[0] = t.numeric[1] = t.numeric[2] = false;
  for (const SensitivityRow& row : Sensitivity(r)) {
    const AssumedInput& a = r.assumptions[row.assumption];
    std::vector<std::string> cells = {a.name, a.id,
                                      a.low + " – " + a.high + " (" + a.nominal + ")"};
    for (size_t f : shown) {
      cells.push_back(ValueText(*figures[f], row.low_third[f]) + " → " +
                      ValueText(*figures[f], row.high_third[f]));
    }
    t.rows.push_back(std::move(cells));
  }
  return t;
}

}  // namespace

std::optional<double> QuantileOf(std::vector<double> values, double q) {
  values.erase(std::remove_if(values.begin(), values.end(), [](double v) { return std::isnan(v); }),
               values.end());
  return Percentile(std::move(values), q);
}

std::optional<Band> BandOf(const std::vector<double>& values) {
  std::optional<double> p5 = QuantileOf(values, 0.05);
  if (!p5) return std::nullopt;
  return Band{*p5, *QuantileOf(values, 0.5), *QuantileOf(values, 0.95)};
}

std::vector<SensitivityRow> Sensitivity(const UncertaintyReport& r) {
  const std::vector<const UncertainFigure*> figures = AllFigures(r);
  const std::vector<size_t> shown = ShownFigures(r);
  std::vector<SensitivityRow> rows;
  for (size_t a = 0; a < r.assumptions.size(); ++a) {
    SensitivityRow row;
    row.assumption = a;
    for (const UncertainFigure* f : figures) {
      std::vector<double> low, high;
      for (size_t d = 0; d < r.quantiles.size() && d < f->draws.size(); ++d) {
        const double u = r.quantiles[d][a];
        if (u < 1.0 / 3) low.push_back(f->draws[d]);
        if (u >= 2.0 / 3) high.push_back(f->draws[d]);
      }
      row.low_third.push_back(QuantileOf(low, 0.5));
      row.high_third.push_back(QuantileOf(high, 0.5));
    }
    // The sort key: the largest change of a shown healthy share (+24 h, +6 d), in share points;
    // without a curve, of a service's downtime relative to its nominal value.
    for (size_t f : shown) {
      const std::optional<double> lo = row.low_third[f], hi = row.high_third[f];
      if (!lo || !hi || (f >= r.curve.size() && !r.curve.empty())) continue;
      const double scale =
          figures[f]->unit == "share" ? 1.0 : std::max(std::abs(figures[f]->nominal), 60.0);
      row.swing = std::max(row.swing, std::abs(*hi - *lo) / scale);
    }
    rows.push_back(std::move(row));
  }
  std::stable_sort(rows.begin(), rows.end(), [](const SensitivityRow& x, const SensitivityRow& y) {
    return x.swing > y.swing;
  });
  return rows;
}

std::vector<FormattedTable> FormatUncertainty(const UncertaintyReport& r) {
  std::vector<FormattedTable> tables = {
      FigureTable("Recovery curve (share of hosts healthy for good, after release)", r.curve)};
  if (!r.services.empty()) {
    tables.push_back(FigureTable("Service downtime (release to the run's end)", r.services));
  }
  if (!r.assumptions.empty()) tables.push_back(SensitivityTable(r));
  return tables;
}

void PrintUncertainty(const UncertaintyReport& r, std::ostream& out) {
  out << fmt::format("Uncertainty of {}: {} draws of {} ranged assumption(s), seed {}\n",
                     r.scenario, r.quantiles.size(), r.assumptions.size(), r.seed);
  out << "  " << r.method << "\n";
  if (!r.run_id.empty()) out << "  nominal run (every assumption as written): " << r.run_id << "\n";
  for (const FormattedTable& table : FormatUncertainty(r)) {
    out << "\n  " << table.title << ":\n";
    TextTable t(table.header, table.numeric);
    for (const auto& row : table.rows) t.AddRow(row);
    t.Print(out);
  }
  if (r.assumptions.empty()) {
    out << "\n  The scenario's playbooks have no ranged assumption: every draw is the nominal "
           "run.\n";
  }
}

nlohmann::json UncertaintyJson(const UncertaintyReport& r) {
  nlohmann::json curve = nlohmann::json::array(), services = nlohmann::json::array();
  for (size_t i = 0; i < r.curve.size(); ++i) {
    nlohmann::json f = FigureJson(r.curve[i]);
    if (i < r.curve_times_s.size()) f["after_s"] = r.curve_times_s[i];
    curve.push_back(std::move(f));
  }
  for (const auto& f : r.services) services.push_back(FigureJson(f));
  nlohmann::json assumptions = nlohmann::json::array();
  for (const auto& a : r.assumptions) {
    assumptions.push_back(
        {{"id", a.id}, {"name", a.name}, {"nominal", a.nominal}, {"low", a.low}, {"high", a.high}});
  }
  const std::vector<const UncertainFigure*> figures = AllFigures(r);
  nlohmann::json sensitivity = nlohmann::json::array();
  for (const SensitivityRow& row : Sensitivity(r)) {
    nlohmann::json per = nlohmann::json::array();
    for (size_t f = 0; f < figures.size(); ++f) {
      per.push_back({{"figure", figures[f]->name},
                     {"unit", figures[f]->unit},
                     {"low_third", Number(row.low_third[f])},
                     {"high_third", Number(row.high_third[f])}});
    }
    sensitivity.push_back({{"id", r.assumptions[row.assumption].id},
                           {"name", r.assumptions[row.assumption].name},
                           {"swing", row.swing},
                           {"figures", std::move(per)}});
  }
  nlohmann::json band = nlohmann::json::array();
  for (size_t t = 0; t < r.plot_times_s.size(); ++t) {
    std::vector<double> at;
    for (const auto& d : r.plot_draws) at.push_back(t < d.size() ? d[t] : kNaN);
    std::optional<Band> b = BandOf(at);
    band.push_back({{"after_s", r.plot_times_s[t]},
                    {"nominal", Number(t < r.plot_nominal.size() ? r.plot_nominal[t] : kNaN)},
                    {"median", Number(b ? b->median : kNaN)},
                    {"p5", Number(b ? b->p5 : kNaN)},
                    {"p95", Number(b ? b->p95 : kNaN)}});
  }
  return {{"scenario", r.scenario},
          {"run_id", r.run_id},
          {"seed", r.seed},
          {"draws", r.quantiles.size()},
          {"method", r.method},
          {"assumptions", std::move(assumptions)},
          {"quantiles", r.quantiles},
          {"curve", std::move(curve)},
          {"services", std::move(services)},
          {"sensitivity", std::move(sensitivity)},
          {"band", std::move(band)}};
}

}  // namespace chaoslab
