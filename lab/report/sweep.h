// A sweep (`chaoslab sweep`): one scenario run once per combination of parameter values ("what if
// we had two more technicians?"), each combination a cell repeated N times like a comparison's, and
// one figure of the cells against the values: a table with 95 % intervals, JSON, and an HTML page
// with a plot (one self-contained file, like html.h's). Pure functions over results; thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "lab/common/status.h"
#include "lab/report/compare.h"
#include "lab/report/results.h"

namespace chaoslab {

// The figure a sweep shows, by name:
//   a comparison figure's key (CellMetrics(): crash_rate, recovered, keys_fetched, ...); rates are
//   shown in %; a time's key ends in _s (mttr_s, healthy_90_s, technician_s) and may end in _min
//   or _h instead to show it in minutes or hours (healthy_90_h, the default, mttr_h);
//   downtime:<service>, that service's downtime in hours.
struct SweepFigure {
  std::string name;     // as asked ("healthy_90_h")
  std::string metric;   // key of CellMetrics() ("healthy_90_s"); empty for a service
  std::string service;  // downtime:<service>; empty otherwise
  std::string label;    // "90 % up", "crew-scheduling downtime"
  std::string unit;     // "h", "min", "s", "%" or "" (counts)
  double scale = 1;     // shown value = value in base units / scale
  bool count = false;
};
inline constexpr char kDefaultSweepFigure[] = "healthy_90_h";
// InvalidArgument naming the figure and listing the names there are.
Result<SweepFigure> ParseSweepFigure(const std::string& name);
// "healthy_90_h (default), ..., downtime:<service>" for help texts.
std::string SweepFigureNames();

struct SweepCell {
  std::vector<std::string> values;  // one per Sweep::paths, as given
  std::vector<RunResult> runs;      // its repetitions in order (seeds S, S+1, ...)
};

struct Sweep {
  std::string id;  // the comparison id the runs are journaled under
  std::string scenario;
  std::vector<std::string> paths;  // config paths (config_path.h), in the order given
  SweepFigure figure;
  std::vector<SweepCell> cells;  // every combination; the last path varies fastest
};

// One cell summarized: all of compare's figures, and the one asked for.
struct SweepRow {
  std::vector<std::string> values;
  CellSummary summary;
  MetricSummary figure;  // in base units; no value when no repetition has it
};
std::vector<SweepRow> SummarizeSweep(const Sweep& sweep);

// The table of the figure against the values (what PrintSweep prints and the page shows).
FormattedTable FormatSweep(const Sweep& sweep);
void PrintSweep(const Sweep& sweep, std::ostream& out);

// {"id", "scenario", "paths": [...], "figure": {"name", "label", "unit", "metric" | "service"},
//  "cells": [{"values": {"<path>": "<value>", ...}, "repetitions", "unfinished", "runs": [ids],
//  "seeds": [...], "figure": {"mean", "low", "high", "n", "missing"}}]}; figure values in the
// figure's unit (hours for healthy_90_h), null when no repetition has it.
nlohmann::json SweepToJson(const Sweep& sweep);

// The HTML page (sweep_html.cc): the figure plotted against the first path's values, one line for
// each combination of the other paths' values, 95 % intervals as whiskers, and the table. For
// tests: <body data-charts="drawn"> once drawn; svg#sweep-chart path.sweep-line (data-series)
// and circle.sweep-point (data-x, data-series, data-mean); table#sweep-table.
// InvalidArgument when the sweep has no cells.
Result<std::string> RenderSweepHtml(const Sweep& sweep, const std::string& title);
Status WriteSweepHtml(const Sweep& sweep, const std::string& title, const std::string& path);

}  // namespace chaoslab
