// `chaoslab sweep SCENARIO --set PATH=v1,v2,... [--set ...]`: "what if we had two more
// technicians / the keys in Entra / a canary ring?". The scenario once per combination of the
// values (config_path.h sets them and checks the scenario again), each cell repeated like a
// comparison's (compare's runner, RunCells: seeds S, S+1, ...; one comparison in the journal; the
// simulator or real guests), and one figure against the values (lab/report/sweep.h).
#pragma once

#include <atomic>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "lab/cli/lab_paths.h"
#include "lab/cli/run_command.h"
#include "lab/common/status.h"

namespace chaoslab {

struct SweepRequest {
  std::string scenario_path;
  std::vector<std::string> sets;  // each "PATH=v1,v2,..." as given to --set
  std::string figure;             // empty: kDefaultSweepFigure
  bool json = false;
  std::string html;
  std::string runbook, setup;  // instead of the scenario's, as in `run`
  CellRunRequest cells;  // --repeat, --seed, --backend...: as `compare`; --max-vms before --set
};

// One --set argument: the path, and its values split at the commas outside brackets and
// parentheses (so "setup.sites[hq].travel=uniform(1m, 5m),10m" has two values).
struct SweepAxis {
  std::string path;
  std::vector<std::string> values;
};
Result<SweepAxis> ParseSweepSet(const std::string& argument);

// Exit codes as `compare`: 0, 1 a run failed, 2 bad input (nothing started), 130 interrupted.
int SweepCommand(const LabPaths& paths, const SweepRequest& request,
                 const std::atomic<bool>* cancel, std::ostream& out, std::ostream& err);

}  // namespace chaoslab
