// `chaoslab run|compare --backend sim` and `chaoslab calibrate`: the simulator (lab/sim) behind
// the same command line, journal and reports as a VM run.
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <ostream>
#include <string>

#include "lab/cli/lab_paths.h"
#include "lab/cli/run_command.h"
#include "lab/common/status.h"
#include "lab/config/config.h"
#include "lab/journal/journal.h"
#include "lab/report/results.h"
#include "lab/sim/sim.h"

namespace chaoslab {

// Simulator settings from the command line.
struct SimCliOptions {
  std::string calibration;         // calibration file; empty: the scenario's or the default
  int threads = 0;                 // 0: one per hardware thread
  int64_t host_rows = 20000;       // up to this many hosts, one result row per host
  sim::SimStats* stats = nullptr;  // optional: events, hosts, wall
};

// One simulated run of `sc` (its mix if it has one), journaled like a VM run.
Result<RunResult> RunSimOnce(const config::ScenarioConfig& sc, const std::string& run_id,
                             const std::string& comparison_id, int repetition, Journal* journal,
                             const SimCliOptions& options,
                             const std::function<void(const std::string&)>& progress);

// `chaoslab run SCENARIO --backend sim`, after the scenario was loaded (and --seed applied).
int SimRunCommand(const LabPaths& paths, const RunRequest& request, config::ScenarioConfig sc,
                  std::ostream& out, std::ostream& err);

// `chaoslab calibrate`: runs the reboot-race scenario on real guests `samples` times (seeds
// 291, 292, ...) and writes what they showed as a calibration file.
struct CalibrateRequest {
  int samples = 1;
  std::string out;       // default: playbooks/calibration/<image>.yaml
  std::string scenario;  // default: playbooks/scenarios/reboot-race.yaml
  // The same race under the vendor's cloud remediation (calibration `remediation:`); default:
  // playbooks/scenarios/reboot-race-remediation.yaml, but none when `scenario` is given.
  std::string remediation_scenario;
  bool quiet = false;
};
int CalibrateCommand(const LabPaths& paths, const CalibrateRequest& request,
                     const std::atomic<bool>* cancel, std::ostream& out, std::ostream& err);

}  // namespace chaoslab
