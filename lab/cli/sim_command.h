// `chaoslab run|compare --backend sim` and `chaoslab calibrate`: the simulator (lab/sim) behind
// the same command line, journal and reports as a VM run.
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

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
  // > 0: a mix's world planned at this many hosts, every archetype in proportion to its share
  // (an uncertainty draw, uncertainty_command.h); 0: as the mix says.
  int64_t world_hosts = 0;
};

// The times after release at which a world's recovery curve is reported: +6 h, +24 h, +3 d, +6 d,
// +10 d, +30 d.
inline const std::vector<double> kCurveTimes = {6 * 3600.0,  86400.0,      3 * 86400.0,
                                                6 * 86400.0, 10 * 86400.0, 30 * 86400.0};

// This process's peak resident set (VmHWM, of its own memory since exec), in MiB; 0 if unknown.
// What a parent's wait4 reports also counts the parent's own peak before the exec (Linux keeps a
// process's high-water mark across execve), so the simulator says its own (--stats-json).
double PeakRssMib();

// A new run id for a simulated run.
std::string NewSimRunId();

// "+6 h", "+24 h", "+3 d": a time after release.
std::string AfterReleaseText(double s);

// The share of hosts healthy for good at each of `times_s` after release (sim::HealthyShareAt);
// NaN after the end of a run that stopped at its deadline (what came later is not known).
std::vector<double> CurveAt(const RunResult& run, const std::vector<double>& times_s);

// One simulated run of `sc` (its mix if it has one), not journalled.
Result<RunResult> SimulateOnce(const config::ScenarioConfig& sc, const std::string& run_id,
                               const std::string& comparison_id, int repetition,
                               const SimCliOptions& options,
                               const std::function<void(const std::string&)>& progress);

// What `run`'s command line says of the simulator: calibration, threads, host rows.
SimCliOptions SimOptionsOf(const RunRequest& request);

// The exit code of a simulated run that failed: 2 when its input was bad (nothing ran), else 1.
int SimFailureExitCode(const Status& status);

// Records a simulated run in the journal: an error if it cannot begin it; a failure to finish it
// goes to result->journal_error (the figures are still good).
Status JournalSimRun(Journal* journal, RunResult* result);

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
