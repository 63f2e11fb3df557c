#include "lab/report/compare.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "lab/report/report.h"
#include "lab/report/text_table.h"

namespace chaoslab {
namespace {

using report_internal::TextTable;

// How a figure is shown: its unit decides scaling in the table (CSV and JSON keep base units).
enum class Kind {
  kRate,      // fraction, shown in %
  kDuration,  // seconds, shown in min or h (chosen per column)
  kHours,     // seconds, always shown in h (technician-hours, data lost)
  kCount,     // hosts, keys
};

using Extract = std::optional<double> (*)(const RunResult&);

struct MetricDef {
  const char* key;    // CSV/JSON name
  const char* label;  // table header (unit appended)
  Kind kind;
  MetricSummary CellSummary::*field;
  Extract extract;     // the figure of one summarized run; nullopt when it has none
  const char* absent;  // shown when no repetition has the figure
};

std::optional<double> Rate(int part, int whole) {
  return whole > 0 ? std::optional<double>(double(part) / whole) : std::nullopt;
}

// Every figure of a cell, in table order. The tables below pick from this list by key.
const std::vector<MetricDef>& Metrics() {
  static const std::vector<MetricDef> metrics = {
      {"exposed_rate", "exposed", Kind::kRate, &CellSummary::exposed_rate,
       [](const RunResult& r) { return Rate(r.fleet.exposed, r.fleet.hosts); }, "–"},
      {"crash_rate", "crashed", Kind::kRate, &CellSummary::crash_rate,
       [](const RunResult& r) { return Rate(r.fleet.crashed, r.fleet.exposed); }, "–"},
      {"boot_loop_rate", "boot-loop", Kind::kRate, &CellSummary::boot_loop_rate,
       [](const RunResult& r) { return Rate(r.fleet.boot_looped, r.fleet.exposed); }, "–"},
      {"recovered", "recovered", Kind::kCount, &CellSummary::recovered,
       [](const RunResult& r) { return std::optional<double>(r.fleet.recovered); }, "–"},
      {"failed", "failed", Kind::kCount, &CellSummary::failed,
       [](const RunResult& r) { return std::optional<double>(r.fleet.failed); }, "–"},
      {"data_lost_hosts", "data-loss hosts", Kind::kCount, &CellSummary::data_lost_hosts,
       [](const RunResult& r) { return std::optional<double>(r.fleet.data_lost_hosts); }, "–"},
      {"data_lost_s", "data lost", Kind::kHours, &CellSummary::data_lost_s,
       [](const RunResult& r) { return std::optional<double>(r.fleet.data_lost_s); }, "–"},
      {"mttr_s", "MTTR", Kind::kDuration, &CellSummary::mttr_s,
       [](const RunResult& r) { return r.fleet.mttr_s; }, "–"},
      {"p50_s", "p50", Kind::kDuration, &CellSummary::p50_s,
       [](const RunResult& r) { return r.fleet.recovery.p50_s; }, "–"},
      {"p90_s", "p90", Kind::kDuration, &CellSummary::p90_s,
       [](const RunResult& r) { return r.fleet.recovery.p90_s; }, "–"},
      {"p99_s", "p99", Kind::kDuration, &CellSummary::p99_s,
       [](const RunResult& r) { return r.fleet.recovery.p99_s; }, "–"},
      {"healthy_90_s", "90 % up", Kind::kDuration, &CellSummary::healthy_90_s,
       [](const RunResult& r) { return r.fleet.recovery.healthy_90_s; }, "never"},
      {"healthy_99_s", "99 % up", Kind::kDuration, &CellSummary::healthy_99_s,
       [](const RunResult& r) { return r.fleet.recovery.healthy_99_s; }, "never"},
      {"technician_s", "technician", Kind::kHours, &CellSummary::technician_s,
       [](const RunResult& r) { return std::optional<double>(r.fleet.technician_s); }, "–"},
      {"keys_fetched", "keys", Kind::kCount, &CellSummary::keys_fetched,
       [](const RunResult& r) { return std::optional<double>(r.fleet.keys_fetched); }, "–"},
  };
  return metrics;
}

const MetricDef& Metric(const std::string& key) {
  for (const MetricDef& m : Metrics()) {
    if (key == m.key) return m;
  }
  std::abort();  // the tables below only name keys of Metrics()
}

MetricSummary SummarizeMetric(const std::vector<std::optional<double>>& per_repetition) {
  MetricSummary summary;
  std::vector<double> present;
  for (const auto& v : per_repetition) {
    if (v) {
      present.push_back(*v);
    } else {
      ++summary.missing;
    }
  }
  summary.value = MeanInterval(present);
  return summary;
}

// --- formatting ---------------------------------------------------------------------------------

// Scale and unit of a column.
struct Unit {
  double scale = 1;
  std::string name;
};

Unit ColumnUnit(Kind kind, const std::vector<const MetricSummary*>& column) {
  switch (kind) {
    case Kind::kRate:
      return {0.01, "%"};
    case Kind::kHours:
      return {3600, "h"};
    case Kind::kCount:
      return {1, ""};
    case Kind::kDuration:
      break;
  }
  // Hours only when every value is long: "0.2 h" would hide the difference between 10 and 15
  // minutes, while "150.0 min" next to "15.0 min" still reads fine.
  bool any = false, all_long = true;
  for (const MetricSummary* m : column) {
    if (!m->value) continue;
    any = true;
    all_long &= std::fabs(m->value->mean) >= 2 * 3600;
  }
  return any && all_long ? Unit{3600, "h"} : Unit{60, "min"};
}

std::string FormatMetric(const MetricSummary& m, Kind kind, const Unit& unit, const char* absent) {
  return FormatSummary(m, unit.scale, kind == Kind::kCount, absent);
}

std::string Repetitions(const CellSummary& cell) {
  std::string text = std::to_string(cell.run_ids.size());
  if (cell.unfinished > 0) text += fmt::format(" (+{} unfinished)", cell.unfinished);
  return text;
}

FormattedTable MetricTable(const std::string& title, const std::vector<CellSummary>& cells,
                           const std::vector<std::string>& keys) {
  FormattedTable table{title, {"runbook", "setup", "runs"}, {false, false, true}, {}};
  std::vector<Unit> units;
  for (const std::string& key : keys) {
    const MetricDef& m = Metric(key);
    std::vector<const MetricSummary*> column;
    for (const CellSummary& cell : cells) column.push_back(&(cell.*m.field));
    units.push_back(ColumnUnit(m.kind, column));
    table.header.push_back(
        units.back().name.empty() ? m.label : std::string(m.label) + " " + units.back().name);
    table.numeric.push_back(true);
  }
  for (const CellSummary& cell : cells) {
    std::vector<std::string> row = {cell.runbook, cell.setup.empty() ? "–" : cell.setup,
                                    Repetitions(cell)};
    for (size_t i = 0; i < keys.size(); ++i) {
      const MetricDef& m = Metric(keys[i]);
      row.push_back(FormatMetric(cell.*m.field, m.kind, units[i], m.absent));
    }
    table.rows.push_back(std::move(row));
  }
  return table;
}

FormattedTable ServiceTable(const std::vector<CellSummary>& cells) {
  FormattedTable table{"Service downtime", {"runbook", "setup", "runs"}, {false, false, true}, {}};
  if (cells.empty()) return table;
  const size_t services = cells.front().service_downtime_s.size();
  std::vector<Unit> units;
  for (size_t i = 0; i < services; ++i) {
    std::vector<const MetricSummary*> column;
    for (const CellSummary& cell : cells) column.push_back(&cell.service_downtime_s[i].second);
    units.push_back(ColumnUnit(Kind::kDuration, column));
    table.header.push_back(cells.front().service_downtime_s[i].first + " " + units.back().name);
    table.numeric.push_back(true);
  }
  for (const CellSummary& cell : cells) {
    std::vector<std::string> row = {cell.runbook, cell.setup.empty() ? "–" : cell.setup,
                                    Repetitions(cell)};
    for (size_t i = 0; i < services; ++i) {
      row.push_back(
          FormatMetric(cell.service_downtime_s[i].second, Kind::kDuration, units[i], "–"));
    }
    table.rows.push_back(std::move(row));
  }
  return table;
}

// --- CSV and JSON -------------------------------------------------------------------------------

std::string CsvField(const std::string& text) {
  if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

void CsvMetricHeader(const std::string& key, std::vector<std::string>* header) {
  for (const char* part : {"_mean", "_low", "_high", "_n", "_missing"})
    header->push_back(key + part);
}

void CsvMetric(const MetricSummary& m, std::vector<std::string>* row) {
  if (m.value) {
    row->push_back(fmt::format("{}", m.value->mean));
    row->push_back(fmt::format("{}", m.value->low));
    row->push_back(fmt::format("{}", m.value->high));
    row->push_back(std::to_string(m.value->n));
  } else {
    row->insert(row->end(), {"", "", "", "0"});
  }
  row->push_back(std::to_string(m.missing));
}

void WriteCsvLine(const std::vector<std::string>& fields, std::ostream& out) {
  for (size_t i = 0; i < fields.size(); ++i) out << (i ? "," : "") << CsvField(fields[i]);
  out << "\r\n";  // RFC 4180
}

nlohmann::json MetricJson(const MetricSummary& m) {
  if (!m.value) {
    return {
        {"mean", nullptr}, {"low", nullptr}, {"high", nullptr}, {"n", 0}, {"missing", m.missing}};
  }
  return {{"mean", m.value->mean},
          {"low", m.value->low},
          {"high", m.value->high},
          {"n", m.value->n},
          {"missing", m.missing}};
}

}  // namespace

bool CountsAsRepetition(const RunResult& run) {
  return run.status.empty() || run.status == "finished";
}

std::vector<std::string> ServiceNames(const std::vector<RunResult>& runs) {
  std::vector<std::string> names;
  for (const RunResult& run : runs) {
    for (const ServiceResult& s : run.services) {
      if (std::find(names.begin(), names.end(), s.name) == names.end()) names.push_back(s.name);
    }
  }
  return names;
}

CellSummary SummarizeCell(const std::vector<RunResult>& runs,
                          const std::vector<std::string>& services) {
  CellSummary cell;
  if (!runs.empty()) {
    cell.runbook = runs.front().runbook;
    cell.setup = runs.front().setup;
  }
  std::vector<RunResult> counted;
  for (const RunResult& run : runs) {
    if (!CountsAsRepetition(run)) {
      ++cell.unfinished;
      continue;
    }
    cell.run_ids.push_back(run.run_id);
    counted.push_back(run);
    Summarize(&counted.back());
  }
  for (const MetricDef& m : Metrics()) {
    std::vector<std::optional<double>> values;
    for (const RunResult& run : counted) values.push_back(m.extract(run));
    cell.*m.field = SummarizeMetric(values);
  }
  for (const std::string& name : services) {
    std::vector<std::optional<double>> values;
    for (const RunResult& run : counted) {
      auto it = std::find_if(run.services.begin(), run.services.end(),
                             [&](const ServiceResult& s) { return s.name == name; });
      values.push_back(it == run.services.end() ? std::nullopt
                                                : std::optional<double>(it->downtime_s));
    }
    cell.service_downtime_s.emplace_back(name, SummarizeMetric(values));
  }
  return cell;
}

std::vector<CellSummary> SummarizeComparison(const Comparison& comparison) {
  // Cells in first-seen order, each with its runs.
  std::vector<std::vector<RunResult>> grouped;
  for (const RunResult& run : comparison.runs) {
    size_t i = 0;
    while (i < grouped.size() &&
           (grouped[i].front().runbook != run.runbook || grouped[i].front().setup != run.setup))
      ++i;
    if (i == grouped.size()) grouped.emplace_back();
    grouped[i].push_back(run);
  }
  const std::vector<std::string> services = ServiceNames(comparison.runs);
  std::vector<CellSummary> cells;
  for (const auto& runs : grouped) cells.push_back(SummarizeCell(runs, services));
  return cells;
}

const std::vector<CellMetricInfo>& CellMetrics() {
  static const std::vector<CellMetricInfo> infos = [] {
    std::vector<CellMetricInfo> out;
    for (const MetricDef& m : Metrics()) {
      const MetricUnit unit = m.kind == Kind::kRate    ? MetricUnit::kFraction
                              : m.kind == Kind::kCount ? MetricUnit::kCount
                                                       : MetricUnit::kSeconds;
      out.push_back({m.key, m.label, unit});
    }
    return out;
  }();
  return infos;
}

const MetricSummary* CellMetric(const CellSummary& cell, const std::string& key) {
  for (const MetricDef& m : Metrics()) {
    if (key == m.key) return &(cell.*m.field);
  }
  return nullptr;
}

std::string FormatSummary(const MetricSummary& m, double scale, bool count, const char* absent) {
  if (!m.value) return absent;
  const Interval& v = *m.value;
  const double mean = v.mean / scale, half = (v.high - v.mean) / scale;
  const int decimals = count && v.mean == std::round(v.mean) && half == 0 ? 0 : 1;
  std::string text = fmt::format("{:.{}f}", mean, decimals);
  if (v.n > 1) text += fmt::format(" ±{:.{}f}", half, decimals);
  if (m.missing > 0) text += fmt::format(" ({}/{})", v.n, v.n + m.missing);
  return text;
}

std::vector<FormattedTable> FormatComparison(const Comparison& comparison) {
  const std::vector<CellSummary> cells = SummarizeComparison(comparison);
  std::vector<FormattedTable> tables;
  tables.push_back(MetricTable("Outcome (hosts per run)", cells,
                               {"exposed_rate", "crash_rate", "boot_loop_rate", "recovered",
                                "failed", "data_lost_hosts", "data_lost_s"}));
  tables.push_back(MetricTable("Recovery (time to recover; time after release until up)", cells,
                               {"mttr_s", "p50_s", "p90_s", "p99_s", "healthy_90_s", "healthy_99_s",
                                "technician_s", "keys_fetched"}));
  if (!cells.empty() && !cells.front().service_downtime_s.empty()) {
    tables.push_back(ServiceTable(cells));
  }
  return tables;
}

std::string ComparisonLegend() {
  return "±: 95 % confidence interval of the mean over repetitions (Student's t); none with one "
         "repetition. (k/n): the figure exists in k of n repetitions (e.g. 90 % up was never "
         "reached in the others); never / –: in none. \"90 % up\": time after release until 90 % "
         "of the fleet is healthy for good.";
}

void PrintComparison(const Comparison& comparison, std::ostream& out) {
  const std::vector<CellSummary> cells = SummarizeComparison(comparison);
  int runs = 0, unfinished = 0;
  for (const CellSummary& cell : cells) {
    runs += static_cast<int>(cell.run_ids.size());
    unfinished += cell.unfinished;
  }
  out << fmt::format("Comparison {}  scenario {}\n", comparison.id.empty() ? "–" : comparison.id,
                     comparison.scenario.empty() ? "–" : comparison.scenario);
  out << fmt::format("  {} cells, {} finished runs", cells.size(), runs);
  if (unfinished > 0) out << fmt::format(" ({} unfinished, not counted)", unfinished);
  out << "\n\n";
  for (const FormattedTable& table : FormatComparison(comparison)) {
    out << "  " << table.title << ":\n";
    TextTable text(table.header, table.numeric);
    for (const auto& row : table.rows) text.AddRow(row);
    text.Print(out);
    out << '\n';
  }
  out << "  " << ComparisonLegend() << '\n';
  // The reboot race over each cell's finished repetitions (cells whose hosts rebooted).
  for (const CellSummary& cell : cells) {
    std::vector<const RunResult*> runs;
    for (const RunResult& r : comparison.runs) {
      if (std::find(cell.run_ids.begin(), cell.run_ids.end(), r.run_id) != cell.run_ids.end())
        runs.push_back(&r);
    }
    if (runs.empty() || RebootRace(runs).empty()) continue;
    out << fmt::format("\n  runbook {}  setup {}\n", cell.runbook, cell.setup);
    PrintRebootRace(runs, out);
  }
}

void WriteComparisonCsv(const Comparison& comparison, std::ostream& out) {
  const std::vector<CellSummary> cells = SummarizeComparison(comparison);
  std::vector<std::string> header = {"comparison_id", "scenario",    "runbook",
                                     "setup",         "repetitions", "unfinished"};
  for (const MetricDef& m : Metrics()) CsvMetricHeader(m.key, &header);
  const std::vector<std::string> services = ServiceNames(comparison.runs);
  for (const std::string& name : services) {
    CsvMetricHeader("service_" + name + "_downtime_s", &header);
  }
  WriteCsvLine(header, out);
  for (const CellSummary& cell : cells) {
    std::vector<std::string> row = {comparison.id,
                                    comparison.scenario,
                                    cell.runbook,
                                    cell.setup,
                                    std::to_string(cell.run_ids.size()),
                                    std::to_string(cell.unfinished)};
    for (const MetricDef& m : Metrics()) CsvMetric(cell.*m.field, &row);
    for (const auto& [name, summary] : cell.service_downtime_s) CsvMetric(summary, &row);
    WriteCsvLine(row, out);
  }
}

nlohmann::json ComparisonToJson(const Comparison& comparison) {
  nlohmann::json cells = nlohmann::json::array();
  for (const CellSummary& cell : SummarizeComparison(comparison)) {
    nlohmann::json metrics = nlohmann::json::object();
    for (const MetricDef& m : Metrics()) metrics[m.key] = MetricJson(cell.*m.field);
    nlohmann::json services = nlohmann::json::object();
    for (const auto& [name, summary] : cell.service_downtime_s)
      services[name] = MetricJson(summary);
    cells.push_back({{"runbook", cell.runbook},
                     {"setup", cell.setup},
                     {"repetitions", cell.run_ids.size()},
                     {"unfinished", cell.unfinished},
                     {"runs", cell.run_ids},
                     {"metrics", std::move(metrics)},
                     {"service_downtime_s", std::move(services)}});
  }
  return {{"id", comparison.id}, {"scenario", comparison.scenario}, {"cells", std::move(cells)}};
}

}  // namespace chaoslab
