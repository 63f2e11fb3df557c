#include "lab/report/sweep.h"

#include <fmt/format.h>

#include "lab/report/text_table.h"

namespace chaoslab {
namespace {

using report_internal::TextTable;

nlohmann::json FigureJson(const MetricSummary& m, double scale) {
  if (!m.value) {
    return {
        {"mean", nullptr}, {"low", nullptr}, {"high", nullptr}, {"n", 0}, {"missing", m.missing}};
  }
  return {{"mean", m.value->mean / scale},
          {"low", m.value->low / scale},
          {"high", m.value->high / scale},
          {"n", m.value->n},
          {"missing", m.missing}};
}

}  // namespace

Result<SweepFigure> ParseSweepFigure(const std::string& name) {
  SweepFigure f;
  f.name = name;
  const std::string downtime = "downtime:";
  if (name.rfind(downtime, 0) == 0 && name.size() > downtime.size()) {
    f.service = name.substr(downtime.size());
    f.label = f.service + " downtime";
    f.unit = "h";
    f.scale = 3600;
    return f;
  }
  for (const CellMetricInfo& m : CellMetrics()) {
    f.metric = m.key;
    f.label = m.label;
    if (m.unit == MetricUnit::kFraction && name == m.key) {
      f.unit = "%";
      f.scale = 0.01;
      return f;
    }
    if (m.unit == MetricUnit::kCount && name == m.key) {
      f.count = true;
      return f;
    }
    if (m.unit != MetricUnit::kSeconds) continue;
    const std::string base = m.key.substr(0, m.key.size() - 2);  // "mttr" of "mttr_s"
    for (const auto& [suffix, scale] :
         std::vector<std::pair<std::string, double>>{{"s", 1}, {"min", 60}, {"h", 3600}}) {
      if (name == base + "_" + suffix) {
        f.unit = suffix;
        f.scale = scale;
        return f;
      }
    }
  }
  return Status::InvalidArgument("unknown figure '" + name + "'; figures: " + SweepFigureNames());
}

std::string SweepFigureNames() {
  std::string out = std::string(kDefaultSweepFigure) + " (default)";
  for (const CellMetricInfo& m : CellMetrics()) {
    std::string name = m.key;
    if (m.unit == MetricUnit::kSeconds) {
      name = m.key.substr(0, m.key.size() - 2) + "_h";
      if (name == kDefaultSweepFigure) continue;
      name += "|_min|_s";
    }
    out += ", " + name;
  }
  return out + ", downtime:<service>";
}

std::vector<SweepRow> SummarizeSweep(const Sweep& sweep) {
  std::vector<RunResult> all;
  for (const SweepCell& cell : sweep.cells)
    all.insert(all.end(), cell.runs.begin(), cell.runs.end());
  const std::vector<std::string> services = ServiceNames(all);
  std::vector<SweepRow> rows;
  for (const SweepCell& cell : sweep.cells) {
    SweepRow row{cell.values, SummarizeCell(cell.runs, services), {}};
    if (!sweep.figure.service.empty()) {
      for (const auto& [name, m] : row.summary.service_downtime_s) {
        if (name == sweep.figure.service) row.figure = m;
      }
    } else if (const MetricSummary* m = CellMetric(row.summary, sweep.figure.metric)) {
      row.figure = *m;
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

FormattedTable FormatSweep(const Sweep& sweep) {
  const SweepFigure& f = sweep.figure;
  FormattedTable table{"Sweep", sweep.paths, std::vector<bool>(sweep.paths.size(), false), {}};
  table.header.push_back("runs");
  table.header.push_back(f.unit.empty() ? f.label : f.label + " " + f.unit);
  table.numeric.insert(table.numeric.end(), {true, true});
  // As in the comparison tables: a share of the fleet healthy that was never reached.
  const char* absent = f.metric.rfind("healthy_", 0) == 0 ? "never" : "–";
  for (const SweepRow& row : SummarizeSweep(sweep)) {
    std::vector<std::string> cells = row.values;
    std::string runs = std::to_string(row.summary.run_ids.size());
    if (row.summary.unfinished > 0)
      runs += fmt::format(" (+{} unfinished)", row.summary.unfinished);
    cells.push_back(runs);
    cells.push_back(FormatSummary(row.figure, f.scale, f.count, absent));
    table.rows.push_back(std::move(cells));
  }
  return table;
}

void PrintSweep(const Sweep& sweep, std::ostream& out) {
  out << fmt::format("Sweep {}  scenario {}  figure {} ({})\n\n", sweep.id.empty() ? "–" : sweep.id,
                     sweep.scenario.empty() ? "–" : sweep.scenario, sweep.figure.name,
                     sweep.figure.label);
  const FormattedTable table = FormatSweep(sweep);
  TextTable text(table.header, table.numeric);
  for (const auto& row : table.rows) text.AddRow(row);
  text.Print(out);
  out << "\n  " << ComparisonLegend() << '\n';
}

nlohmann::json SweepToJson(const Sweep& sweep) {
  const SweepFigure& f = sweep.figure;
  nlohmann::json figure = {{"name", f.name}, {"label", f.label}, {"unit", f.unit}};
  if (!f.service.empty()) {
    figure["service"] = f.service;
  } else {
    figure["metric"] = f.metric;
  }
  nlohmann::json cells = nlohmann::json::array();
  const std::vector<SweepRow> rows = SummarizeSweep(sweep);
  for (size_t i = 0; i < rows.size(); ++i) {
    nlohmann::json values = nlohmann::json::object();
    for (size_t p = 0; p < sweep.paths.size() && p < rows[i].values.size(); ++p)
      values[sweep.paths[p]] = rows[i].values[p];
    nlohmann::json seeds = nlohmann::json::array();
    for (const RunResult& run : sweep.cells[i].runs) {
      if (CountsAsRepetition(run)) seeds.push_back(run.seed);
    }
    cells.push_back({{"values", std::move(values)},
                     {"repetitions", rows[i].summary.run_ids.size()},
                     {"unfinished", rows[i].summary.unfinished},
                     {"runs", rows[i].summary.run_ids},
                     {"seeds", std::move(seeds)},
                     {"figure", FigureJson(rows[i].figure, f.scale)}});
  }
  return {{"id", sweep.id},
          {"scenario", sweep.scenario},
          {"paths", sweep.paths},
          {"figure", std::move(figure)},
          {"cells", std::move(cells)}};
}

}  // namespace chaoslab
