// Comparing runbooks and setups: the runs of `chaoslab compare`, grouped into cells (one per
// (runbook, setup) pair) whose repetitions give each figure as a mean with a 95 % confidence
// interval. Printed as a table, written as CSV or JSON, and used by the HTML report.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "lab/report/results.h"
#include "lab/report/stats.h"

namespace chaoslab {

struct Comparison {
  std::string id;
  std::string scenario;
  std::vector<RunResult> runs;  // every repetition of every cell, in the order they ran
};

// One figure of one cell over its repetitions.
struct MetricSummary {
  std::optional<Interval> value;  // over the repetitions that have the figure; nullopt: none has
  int missing = 0;  // repetitions without it (never reached 90 % healthy, nothing recovered, ...)
};

// The figures of one (runbook, setup) cell. Rates are fractions, times seconds.
struct CellSummary {
  std::string runbook, setup;
  std::vector<std::string> run_ids;  // the repetitions counted: finished runs, in order
  int unfinished = 0;                // runs of the cell left out (interrupted, failed, running)
  MetricSummary exposed_rate, crash_rate, boot_loop_rate;
  MetricSummary mttr_s, p50_s, p90_s, p99_s;  // time to recover, recovered hosts only
  MetricSummary healthy_90_s, healthy_99_s;   // after release, until 90 / 99 % healthy for good
  MetricSummary technician_s, keys_fetched;
  MetricSummary recovered, failed;             // hosts
  MetricSummary data_lost_hosts, data_lost_s;  // data_lost_s: summed over hosts
  std::vector<std::pair<std::string, MetricSummary>> service_downtime_s;  // every service of the
                                                                          // comparison, same order
};

// The figures of one cell from its runs (any order; those that do not count are `unfinished`),
// with the downtime of each of `services`, in that order. runbook and setup are the first run's.
// What SummarizeComparison does per cell; `chaoslab sweep` calls it on cells it groups itself.
CellSummary SummarizeCell(const std::vector<RunResult>& runs,
                          const std::vector<std::string>& services);
// Every service name in `runs`, in the order first seen.
std::vector<std::string> ServiceNames(const std::vector<RunResult>& runs);

// The figures a cell has, in table order: their CSV/JSON key ("healthy_90_s"), table label ("90 %
// up") and base unit.
enum class MetricUnit { kFraction, kSeconds, kCount };
struct CellMetricInfo {
  std::string key, label;
  MetricUnit unit;
};
const std::vector<CellMetricInfo>& CellMetrics();
// The figure `key` of `cell` (a key of CellMetrics()), or nullptr when there is no such figure.
const MetricSummary* CellMetric(const CellSummary& cell, const std::string& key);
// A figure as the tables show it: "12.3 ±1.4" (the mean and half the interval, divided by
// `scale`), "12.3" with one repetition, "... (2/3)" when it exists in 2 of 3, `absent` in none.
// `count`: a whole mean without spread shows without decimals.
std::string FormatSummary(const MetricSummary& m, double scale, bool count, const char* absent);

// Whether a run counts as a repetition: finished (or, for runs built by hand, no status). A run
// that was interrupted or failed would drag means toward whatever it reached when it stopped.
bool CountsAsRepetition(const RunResult& run);

// The cells in the order first seen. Group figures are recomputed from each run's hosts
// (Summarize), so runs may come straight from the journal or be made by hand.
std::vector<CellSummary> SummarizeComparison(const Comparison& comparison);

// The comparison as formatted tables (what PrintComparison prints; the HTML report shows the same).
struct FormattedTable {
  std::string title;
  std::vector<std::string> header;
  std::vector<bool> numeric;  // per column: right-aligned
  std::vector<std::vector<std::string>> rows;
};
std::vector<FormattedTable> FormatComparison(const Comparison& comparison);
// How to read the tables ("±: 95 % confidence interval ...").
std::string ComparisonLegend();

// Readable tables, one row per cell, values as "12.3 ±1.4" in %, min, h or counts.
void PrintComparison(const Comparison& comparison, std::ostream& out);
// One header line, then one line per cell; per figure <key>_mean, _low, _high, _n, _missing in
// base units (fractions, seconds, counts); service downtimes as service_<name>_downtime_s_*.
// Missing values are empty fields.
void WriteComparisonCsv(const Comparison& comparison, std::ostream& out);
// {"id", "scenario", "cells": [{"runbook", "setup", "repetitions", "unfinished", "runs": [ids],
//  "metrics": {"mttr_s": {"mean", "low", "high", "n", "missing"}, ...},
//  "service_downtime_s": {"<service>": {...}}}]}
nlohmann::json ComparisonToJson(const Comparison& comparison);

}  // namespace chaoslab
