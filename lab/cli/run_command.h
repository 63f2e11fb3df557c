// `chaoslab run`: everything between a scenario file and a results table — load and check the
// playbooks, find the built guest image, start the content server, prepare the disks, start the
// fleet, run the engine, report, and clean up whatever happens.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "lab/cli/guest_image.h"
#include "lab/cli/lab_paths.h"
#include "lab/common/status.h"
#include "lab/config/config.h"
#include "lab/report/compare.h"

namespace chaoslab {

struct EngineOptions;

struct RunRequest {
  std::string scenario_path;
  bool json = false;
  bool quiet = false;
  std::optional<uint64_t> seed;
  std::optional<double> max_wall_s;
  std::string stats_json;  // when set: the lab's own figures (latency, CPU) for `make bench`
  std::string runbook;     // name (playbooks/runbooks/<name>.yaml) or path; empty = the scenario's
  std::string setup;       // likewise for the setup
  int max_vms = 0;         // > 0: scale a bigger setup down to about this many VMs
  int max_booting = -1;    // guests booting at once (lab capacity); -1: the machine's cores, 0: all
  std::string html;        // write the HTML report here too
  // --backend sim (lab/sim): the simulator instead of VMs; its calibration file, threads and
  // the fleet size up to which results have one row per host.
  std::string backend;
  std::string calibration;
  int sim_threads = 0;
  int64_t host_rows = 0;
  // The game-day dashboard (lab/dashboard): serve it on 127.0.0.1 while the run goes.
  bool dashboard = false;
  int dashboard_port = 0;       // 0: a random free port
  bool dashboard_hold = false;  // keep serving the final state after the run until Ctrl-C
  std::string inventory;        // --backend libvirt: the hypervisor inventory (YAML)
  // --uncertainty N (uncertainty_command.h): N runs on the simulator with the playbooks' ranged
  // assumptions drawn; each draw plans a mix's world at `draw_hosts` hosts (0: as written).
  int uncertainty = 0;
  int64_t draw_hosts = 2'000'000;
  // `chaoslab gameday` (gameday_command.cc) builds on a run: it changes the loaded scenario (an
  // error stops before anything starts), and wires the engine just before it starts.
  std::function<Status(config::ScenarioConfig*)> adjust_scenario;
  std::function<void(EngineOptions*)> wire_engine;
};

// Exit codes: 0 finished, 1 the run failed, 2 bad input (nothing started), 130 interrupted.
int RunCommand(const LabPaths& paths, const RunRequest& request, const std::atomic<bool>* cancel,
               std::ostream& out, std::ostream& err);

// What compare and sweep share on the command line: how often, how long and where their cells run.
struct CellRunRequest {
  int repeat = 0;                    // 0: the scenario's `repetitions`
  std::optional<uint64_t> seed;      // of the first repetition
  std::optional<double> max_wall_s;  // per run
  int max_vms = 0;                   // scale bigger setups down (LoadForRun)
  int max_booting = -1;              // as in RunRequest
  bool quiet = false;
  std::string backend;    // "qemu" (default), "libvirt" or "sim" (every cell on the simulator)
  std::string inventory;  // libvirt: the hypervisor inventory YAML
  std::string calibration;
};

// `chaoslab compare SCENARIO --runbooks a,b,c [--setups x,y] --repeat N`: every (runbook, setup)
// cell N times on real guests (seed, seed+1, ... for the repetitions, the same in every cell), one
// comparison in the journal, a table with 95 % confidence intervals.
struct CompareRequest {
  std::string scenario_path;
  std::vector<std::string> runbooks;  // empty: the scenario's
  std::vector<std::string> setups;    // empty: the scenario's
  bool json = false;
  std::string csv;   // write the CSV here
  std::string html;  // write the HTML report here
  CellRunRequest cells;
};
int CompareCommand(const LabPaths& paths, const CompareRequest& request,
                   const std::atomic<bool>* cancel, std::ostream& out, std::ostream& err);

// The scenario loaded for a cell of compare or sweep (LoadForRun: `setup`, `runbook`, --max-vms),
// with --max-wall, --seed and --backend of `request` applied.
Result<config::ScenarioConfig> LoadForCells(const LabPaths& paths, const std::string& scenario_path,
                                            const std::string& setup, const std::string& runbook,
                                            const CellRunRequest& request);

// Runs every cell (a checked scenario) `request.repeat` times (0: the first cell's repetitions),
// repetition by repetition, with seeds seed, seed + 1, ... (the same in every cell), as one
// comparison in the journal: on the simulator when the cells' backend is sim, else on real guests
// (checked for every cell before the first starts). A non-zero return is the exit code of an error
// already printed on `err`; 0: `out` has the runs (maybe interrupted, or with a journal that
// failed).
struct CellRunOptions {
  CellRunRequest request;
  nlohmann::json config;  // the comparison's settings as journaled (repeat, backend added)
  std::string noun = "comparison";                   // progress: "<noun> <id>: N cell(s) ..."
  std::function<std::string(size_t cell)> describe;  // progress: a cell's label
};
struct CellRuns {
  Comparison comparison;            // id, scenario, runs in the order they ran
  std::vector<size_t> cell_of_run;  // the cell of each run
  bool interrupted = false;
  int journal_failed = 0;  // the exit code when a journal write failed, else 0
};
int RunCells(const LabPaths& paths, const CellRunOptions& options,
             const std::vector<config::ScenarioConfig>& cells, const std::atomic<bool>* cancel,
             std::ostream& err, CellRuns* out);

// A setup scaled down to about `max_vms` hosts: every group keeps at least one host, counts,
// technicians, USB sticks and service needs shrink by the same factor. Unchanged when it fits.
config::SetupConfig ScaleSetup(const config::SetupConfig& setup, int max_vms);

// What every backend records of a run's inputs (RunResult::inputs): the files the scenario, setup
// and runbook were read from, the seed and the backend; each backend adds its own settings.
nlohmann::json ScenarioInputs(const config::ScenarioConfig& sc, const std::string& backend);

}  // namespace chaoslab
