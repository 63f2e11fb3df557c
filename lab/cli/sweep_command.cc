#include "lab/cli/sweep_command.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "lab/cli/run_command.h"
#include "lab/common/json_text.h"
#include "lab/config/config_path.h"
#include "lab/report/sweep.h"

namespace chaoslab {
namespace {

// At most this many cells: a grid of several long lists grows fast, and each cell is a run.
constexpr size_t kMaxCells = 1000;

std::string Trim(const std::string& text) {
  const size_t b = text.find_first_not_of(" \t");
  const size_t e = text.find_last_not_of(" \t");
  return b == std::string::npos ? "" : text.substr(b, e - b + 1);
}

// Every combination of the axes' values, the last axis varying fastest.
std::vector<std::vector<std::string>> Grid(const std::vector<SweepAxis>& axes) {
  std::vector<std::vector<std::string>> grid = {{}};
  for (const SweepAxis& axis : axes) {
    std::vector<std::vector<std::string>> next;
    for (const auto& partial : grid) {
      for (const std::string& v : axis.values) {
        next.push_back(partial);
        next.back().push_back(v);
      }
    }
    grid = std::move(next);
  }
  return grid;
}

// The figure, checked against the scenario: a service's downtime needs that service.
Result<SweepFigure> CheckFigure(const std::string& name, const config::ScenarioConfig& sc) {
  ASSIGN_OR_RETURN(SweepFigure figure, ParseSweepFigure(name.empty() ? kDefaultSweepFigure : name));
  if (figure.service.empty() || !sc.mix_file.empty()) return figure;
  std::vector<std::string> services;
  for (const config::ServiceConfig& s : sc.setup.services) {
    if (s.name == figure.service) return figure;
    services.push_back(s.name);
  }
  std::string known;
  for (const std::string& s : services) known += (known.empty() ? "" : ", ") + s;
  return Status::InvalidArgument("--figure " + name + ": setup '" + sc.setup.name +
                                 "' has no service '" + figure.service + "'" +
                                 (known.empty() ? " (it has none)" : "; its services: " + known));
}

// The cells of the sweep: the base scenario with each combination of values set, each checked.
Result<std::vector<config::ScenarioConfig>> MakeCells(
    const config::ScenarioConfig& base, const std::vector<SweepAxis>& axes,
    const std::vector<std::vector<std::string>>& grid) {
  std::vector<config::ScenarioConfig> cells;
  for (const auto& values : grid) {
    config::ScenarioConfig cell = base;
    for (size_t a = 0; a < axes.size(); ++a) {
      if (Status s = config::SetByPath(&cell, axes[a].path, values[a]); !s.ok()) {
        return s.WithContext("--set " + axes[a].path + "=" + values[a]);
      }
    }
    cells.push_back(std::move(cell));
  }
  return cells;
}

}  // namespace

Result<SweepAxis> ParseSweepSet(const std::string& argument) {
  const size_t eq = argument.find('=');
  if (eq == std::string::npos || Trim(argument.substr(0, eq)).empty()) {
    return Status::InvalidArgument("--set " + argument +
                                   ": expected PATH=v1,v2,... such as "
                                   "setup.sites[hq].technicians=1,2,4");
  }
  SweepAxis axis;
  axis.path = Trim(argument.substr(0, eq));
  int depth = 0;
  std::string current;
  auto push = [&]() -> Status {
    std::string v = Trim(current);
    current.clear();
    if (v.empty()) {
      return Status::InvalidArgument("--set " + argument + ": an empty value (two commas, or one " +
                                     "at the start or the end)");
    }
    if (std::find(axis.values.begin(), axis.values.end(), v) != axis.values.end()) {
      return Status::InvalidArgument("--set " + argument + ": the value " + v + " is listed twice");
    }
    axis.values.push_back(std::move(v));
    return Status::Ok();
  };
  for (char c : argument.substr(eq + 1)) {
    if (c == '(' || c == '[' || c == '{') ++depth;
    if (c == ')' || c == ']' || c == '}') --depth;
    if (c == ',' && depth == 0) {
      RETURN_IF_ERROR(push());
    } else {
      current += c;
    }
  }
  RETURN_IF_ERROR(push());
  if (depth != 0) {
    return Status::InvalidArgument("--set " + argument + ": unbalanced brackets or parentheses");
  }
  return axis;
}

namespace {

// Every --set, each path once.
Result<std::vector<SweepAxis>> ParseAxes(const std::vector<std::string>& sets) {
  std::vector<SweepAxis> axes;
  for (const std::string& arg : sets) {
    ASSIGN_OR_RETURN(SweepAxis axis, ParseSweepSet(arg));
    for (const SweepAxis& earlier : axes) {
      if (earlier.path == axis.path) {
        return Status::InvalidArgument("--set " + axis.path +
                                       " is given twice; list all its values in one --set");
      }
    }
    axes.push_back(std::move(axis));
  }
  if (axes.empty()) return Status::InvalidArgument("sweep needs at least one --set");
  return axes;
}

}  // namespace

int SweepCommand(const LabPaths& paths, const SweepRequest& request,
                 const std::atomic<bool>* cancel, std::ostream& out, std::ostream& err) {
  auto fail = [&](const Status& s, int code) {
    err << "chaoslab: " << s.message() << "\n";
    return code;
  };
  // Everything is parsed, set and checked before the first run starts.
  Result<std::vector<SweepAxis>> parsed = ParseAxes(request.sets);
  if (!parsed.ok()) return fail(parsed.status(), 2);
  const std::vector<SweepAxis>& axes = *parsed;
  const std::vector<std::vector<std::string>> grid = Grid(axes);
  if (grid.size() > kMaxCells) {
    return fail(Status::InvalidArgument(fmt::format(
                    "the sweep has {} cells (the product of the --set lists); at most {}",
                    grid.size(), kMaxCells)),
                2);
  }
  Result<config::ScenarioConfig> base =
      LoadForCells(paths, request.scenario_path, request.setup, request.runbook, request.cells);
  if (!base.ok()) return fail(base.status(), 2);
  Result<SweepFigure> figure = CheckFigure(request.figure, *base);
  if (!figure.ok()) return fail(figure.status(), 2);
  Result<std::vector<config::ScenarioConfig>> cells = MakeCells(*base, axes, grid);
  if (!cells.ok()) return fail(cells.status(), 2);

  Sweep sweep;
  sweep.scenario = base->name;
  sweep.figure = *figure;
  nlohmann::json values = nlohmann::json::object();
  for (const SweepAxis& axis : axes) {
    sweep.paths.push_back(axis.path);
    values[axis.path] = axis.values;
  }
  CellRunOptions options;
  options.request = request.cells;
  options.noun = "sweep";
  options.config = {{"sweep", {{"paths", sweep.paths}, {"values", values}}},
                    {"figure", sweep.figure.name},
                    {"runbooks", {base->runbook.name}},
                    {"setups", {base->setup.name}}};
  options.describe = [&](size_t c) {
    std::string label;
    for (size_t a = 0; a < axes.size(); ++a)
      label += (a ? " " : "") + axes[a].path + "=" + grid[c][a];
    return label;
  };
  CellRuns runs;
  if (int code = RunCells(paths, options, *cells, cancel, err, &runs); code != 0) return code;

  sweep.id = runs.comparison.id;
  for (const auto& values_of_cell : grid) sweep.cells.push_back({values_of_cell, {}});
  for (size_t r = 0; r < runs.comparison.runs.size(); ++r)
    sweep.cells[runs.cell_of_run[r]].runs.push_back(runs.comparison.runs[r]);
  if (request.json) {
    out << JsonText(SweepToJson(sweep), 2) << "\n";
  } else {
    PrintSweep(sweep, out);
  }
  if (!request.html.empty()) {
    Status s = WriteSweepHtml(sweep, "chaoslab sweep " + sweep.id + " (" + sweep.scenario + ")",
                              request.html);
    if (!s.ok()) return fail(s, 1);
    if (!request.cells.quiet) err << "HTML report: " << request.html << "\n";
  }
  if (runs.journal_failed) return runs.journal_failed;
  return runs.interrupted ? 130 : 0;
}

}  // namespace chaoslab
