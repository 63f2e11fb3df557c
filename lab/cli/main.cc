// The chaoslab command line. Exit codes: 0 success, 1 failure, 2 bad input, 130 interrupted.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include "agents/sensor/channel_tool.h"
#include "lab/backend/run_dir.h"
#include "lab/cli/gameday_command.h"
#include "lab/cli/lab_paths.h"
#include "lab/cli/run_command.h"
#include "lab/cli/sim_command.h"
#include "lab/cli/sweep_command.h"
#include "lab/common/json_text.h"
#include "lab/config/config_loader.h"
#include "lab/config/config_path.h"
#include "lab/journal/journal.h"
#include "lab/libvirt/inventory.h"
#include "lab/libvirt/libvirt_backend.h"
#include "lab/report/compare.h"
#include "lab/report/html.h"
#include "lab/report/report.h"
#include "lab/report/sweep.h"
#include "lab/vm/qemu_backend.h"

namespace {

using namespace chaoslab;

std::atomic<bool> g_cancel{false};

void OnSignal(int) { g_cancel = true; }

void InstallSignalHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

int Fail(const chaoslab::Status& s, int code) {
  std::cerr << "chaoslab: " << s.message() << "\n";
  return code;
}

// The options of `compare` and `sweep` that say how often and where their cells run.
void AddCellRunOptions(CLI::App* cmd, chaoslab::CellRunRequest* r, const std::string& max_vms) {
  cmd->add_option("--repeat", r->repeat, "repetitions per cell (default: scenario's)")
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--seed", r->seed, "seed of the first repetition");
  cmd->add_option("--max-wall", r->max_wall_s, "wall-time limit per run, seconds");
  cmd->add_option("--max-vms", r->max_vms, max_vms);
  cmd->add_option("--max-booting", r->max_booting,
                  "guests booting at once (default: the machine's cores, 0: all)")
      ->check(CLI::Range(0, 100000));
  cmd->add_flag("--quiet,-q", r->quiet, "no progress lines");
  cmd->add_option("--backend", r->backend,
                  "qemu (real guests), libvirt (real guests on the hypervisors of --inventory) "
                  "or sim (the simulator); default: the scenario's");
  cmd->add_option("--inventory", r->inventory, "libvirt: hypervisor inventory YAML");
  cmd->add_option("--calibration", r->calibration, "sim: calibration file");
}

// The command line: every subcommand's options and what they were given.
struct Cli {
  LabPaths paths = LabPaths::Discover();
  CLI::App app{"chaoslab: replay the Channel File 291 outage on a real VM fleet"};
  RunRequest run;
  CompareRequest cmp;
  SweepRequest sweep;
  CalibrateRequest cal;
  GamedayRequest gd;
  std::string report_id, report_html, report_csv;
  bool report_json = false;
  std::vector<std::string> validate_files;
  std::string gc_inventory;
  std::string image_name = "winsim";
  CLI::App *run_cmd = nullptr, *compare_cmd = nullptr, *sweep_cmd = nullptr,
           *calibrate_cmd = nullptr, *gameday_cmd = nullptr, *runs_cmd = nullptr,
           *report_cmd = nullptr, *validate_cmd = nullptr, *gc_cmd = nullptr, *image_cmd = nullptr,
           *image_build = nullptr;
};

void AddRunCommand(Cli* c) {
  CLI::App& app = c->app;
  RunRequest& run = c->run;
  auto* run_cmd = c->run_cmd =
      app.add_subcommand("run", "run a scenario on real guests and print the results");
  run_cmd->add_option("scenario", run.scenario_path, "scenario YAML")->required();
  run_cmd->add_flag("--json", run.json, "print one JSON object instead of the table");
  run_cmd->add_flag("--quiet,-q", run.quiet, "no progress lines");
  run_cmd->add_option("--seed", run.seed, "seed for the modelled parts (overrides the scenario)");
  run_cmd->add_option("--max-wall", run.max_wall_s, "wall-time limit in seconds");
  run_cmd->add_option("--stats-json", run.stats_json,
                      "write the lab's own figures (for make bench)");
  run_cmd->add_option("--runbook", run.runbook, "runbook name or YAML (instead of the scenario's)");
  run_cmd->add_option("--setup", run.setup, "setup name or YAML (instead of the scenario's)");
  run_cmd->add_option("--max-vms", run.max_vms, "scale a bigger setup down to about N VMs");
  run_cmd
      ->add_option("--max-booting", run.max_booting,
                   "guests booting at once (lab capacity; default: the machine's cores, 0: all)")
      ->check(CLI::Range(0, 100000));
  run_cmd->add_option("--html", run.html, "also write a self-contained HTML report");
  // The simulator (lab/sim): modelled hosts calibrated on real guests, millions of them.
  // libvirt (lab/libvirt): real guests as libvirt domains on the hypervisors of --inventory.
  run_cmd->add_option("--backend", run.backend,
                      "qemu (real guests), libvirt (real guests on the hypervisors of --inventory) "
                      "or sim (the simulator)");
  run_cmd->add_option("--inventory", run.inventory, "libvirt: hypervisor inventory YAML");
  run_cmd->add_option("--calibration", run.calibration, "sim: calibration file");
  run_cmd->add_option("--threads", run.sim_threads, "sim: worker threads (default: all cores)");
  run_cmd->add_option("--host-rows", run.host_rows,
                      "sim: one result row per host up to this many hosts (default 20000)");
  run_cmd->add_option(
      "--uncertainty", run.uncertainty,
      "sim: N runs with the playbooks' ranged assumptions drawn; the recovery "
      "curve and service downtimes with their 5-95 % band, and a sensitivity table");
  run_cmd->add_option("--draw-hosts", run.draw_hosts,
                      "sim, --uncertainty: plan a mix's world at this many hosts in each draw "
                      "(default 2000000; 0: as written)");
  run_cmd->add_flag("--dashboard", run.dashboard,
                    "serve the live game-day dashboard on 127.0.0.1 (prints its URL and tokens)");
  run_cmd
      ->add_option("--dashboard-port", run.dashboard_port,
                   "the dashboard's port (default: a random free one)")
      ->check(CLI::Range(0, 65535));
  run_cmd->add_flag("--dashboard-hold", run.dashboard_hold,
                    "after the run, keep serving the dashboard until Ctrl-C");
}

void AddCompareCommand(Cli* c) {
  CLI::App& app = c->app;
  CompareRequest& cmp = c->cmp;
  auto* compare_cmd = c->compare_cmd = app.add_subcommand(
      "compare", "run runbooks x setups repeatedly on real guests; table with 95% intervals");
  compare_cmd->add_option("scenario", cmp.scenario_path, "scenario YAML")->required();
  compare_cmd->add_option("--runbooks", cmp.runbooks, "runbook names or YAML files")
      ->delimiter(',');
  compare_cmd->add_option("--setups", cmp.setups, "setup names or YAML files")->delimiter(',');
  compare_cmd->add_flag("--json", cmp.json, "print JSON instead of the table");
  compare_cmd->add_option("--csv", cmp.csv, "also write the table as CSV");
  compare_cmd->add_option("--html", cmp.html, "also write a self-contained HTML report");
  AddCellRunOptions(compare_cmd, &cmp.cells, "scale bigger setups down to about N VMs");
}

void AddSweepCommand(Cli* c) {
  CLI::App& app = c->app;
  SweepRequest& sweep = c->sweep;
  std::string settable;
  for (const config::PathInfo& p : config::SettablePaths())
    settable += "\n    " + p.pattern + "  (" + p.takes + ")";
  auto* sweep_cmd = c->sweep_cmd = app.add_subcommand(
      "sweep",
      "what if? the scenario once per combination of --set values, N repetitions each; a table "
      "(and plot) of one figure against the values with 95% intervals");
  sweep_cmd->add_option("scenario", sweep.scenario_path, "scenario YAML")->required();
  sweep_cmd
      ->add_option("--set", sweep.sets,
                   "PATH=v1,v2,... (repeatable; the grid of all lists is run). Paths:" + settable +
                       "\n  distributions: 5m, uniform(5m, 20m), triangular(3m, 5m, 20m), "
                       "lognormal(10m, 30m)")
      ->required()
      ->allow_extra_args(false);  // one PATH=values a --set, so the scenario is not taken for one
  sweep_cmd->add_option("--figure", sweep.figure,
                        "what to show against the values: " + SweepFigureNames());
  sweep_cmd->add_option("--runbook", sweep.runbook,
                        "runbook name or YAML (instead of the scenario's)");
  sweep_cmd->add_option("--setup", sweep.setup, "setup name or YAML (instead of the scenario's)");
  sweep_cmd->add_flag("--json", sweep.json, "print JSON instead of the table");
  sweep_cmd->add_option("--html", sweep.html,
                        "also write a self-contained HTML page with the plot");
  AddCellRunOptions(sweep_cmd, &sweep.cells,
                    "scale a bigger setup down to about N VMs (before --set)");
}

void AddCalibrateCommand(Cli* c) {
  CLI::App& app = c->app;
  CalibrateRequest& cal = c->cal;
  auto* calibrate_cmd = c->calibrate_cmd = app.add_subcommand(
      "calibrate", "measure real guests (the reboot race) and write the simulator's calibration");
  calibrate_cmd->add_option("--samples", cal.samples, "VM runs of the race scenario")
      ->check(CLI::Range(1, 100));
  calibrate_cmd->add_option("--out", cal.out, "calibration file to write");
  calibrate_cmd->add_option("--scenario", cal.scenario,
                            "scenario to measure (default reboot-race)");
  calibrate_cmd->add_option("--remediation-scenario", cal.remediation_scenario,
                            "the same race under the vendor's cloud remediation (default "
                            "reboot-race-remediation; none with --scenario)");
  calibrate_cmd->add_flag("--quiet,-q", cal.quiet, "no progress lines");
}

void AddGamedayCommand(Cli* c) {
  CLI::App& app = c->app;
  GamedayRequest& gd = c->gd;
  auto* gameday_cmd = c->gameday_cmd = app.add_subcommand(
      "gameday",
      "a training exercise: the scenario in real time on real guests, trainees fix hosts through "
      "the dashboard's consoles (prints the trainee and instructor URLs)");
  gameday_cmd->add_option("scenario", gd.scenario_path, "scenario YAML")->required();
  gameday_cmd->add_option("--setup", gd.setup, "setup name or YAML (instead of the scenario's)");
  gameday_cmd->add_option("--runbook", gd.runbook, "the trainees' checklist (runbook name or YAML)")
      ->capture_default_str();
  gameday_cmd->add_option("--port", gd.port, "dashboard port (default: a random free one)")
      ->check(CLI::Range(0, 65535));
  gameday_cmd->add_option("--max-vms", gd.max_vms, "scale a bigger setup down to about N VMs");
  gameday_cmd
      ->add_option("--max-booting", gd.max_booting,
                   "guests booting at once (lab capacity; default: the machine's cores, 0: all)")
      ->check(CLI::Range(0, 100000));
  gameday_cmd->add_option("--lead", gd.lead_s, "seconds from the start to the release")
      ->capture_default_str();
  gameday_cmd->add_option("--revert-after", gd.revert_after_s,
                          "seconds from the release to the vendor's revert (default: the "
                          "scenario's)");
  gameday_cmd->add_option("--baseline", gd.baseline, "automated runbook the debrief compares with")
      ->capture_default_str();
  gameday_cmd->add_option("--calibration", gd.calibration, "the baseline simulator's calibration");
  gameday_cmd->add_flag("--start-now", gd.start_now, "start without waiting for the instructor");
  gameday_cmd->add_flag("--no-hold{false}", gd.hold,
                        "exit after the debrief instead of serving it");
  gameday_cmd->add_flag("--json", gd.json, "print the run's results as JSON");
  gameday_cmd->add_flag("--quiet,-q", gd.quiet, "no progress lines");
}

void AddJournalCommands(Cli* c) {
  CLI::App& app = c->app;
  std::string& report_id = c->report_id;
  bool& report_json = c->report_json;
  std::string& report_html = c->report_html;
  std::string& report_csv = c->report_csv;
  c->runs_cmd = app.add_subcommand("runs", "list the runs in the journal");
  auto* report_cmd = c->report_cmd = app.add_subcommand(
      "report", "print a run's (or a comparison's) results again from the journal");
  report_cmd
      ->add_option("run", report_id, "run or comparison id, a unique prefix of one, or 'last'")
      ->required();
  report_cmd->add_flag("--json", report_json, "print JSON");
  report_cmd->add_option("--html", report_html, "write a self-contained HTML report to FILE");
  report_cmd->add_option("--csv", report_csv, "comparisons: write the table as CSV to FILE");
}

void AddHousekeepingCommands(Cli* c) {
  CLI::App& app = c->app;
  std::vector<std::string>& validate_files = c->validate_files;
  std::string& gc_inventory = c->gc_inventory;
  std::string& image_name = c->image_name;
  auto* validate_cmd = c->validate_cmd =
      app.add_subcommand("validate", "check playbook files without running them");
  validate_cmd->add_option("files", validate_files, "scenario, setup or runbook YAML")->required();

  auto* gc_cmd = c->gc_cmd =
      app.add_subcommand("gc", "remove VMs and files left behind by killed runs");
  if (const char* env = std::getenv("CHAOSLAB_INVENTORY")) gc_inventory = env;
  gc_cmd->add_option("--inventory", gc_inventory,
                     "also clean the lab's libvirt domains on these hypervisors (default: "
                     "$CHAOSLAB_INVENTORY)");

  auto* image_cmd = c->image_cmd = app.add_subcommand("image", "guest images");
  image_cmd->require_subcommand(1);
  auto* image_build = c->image_build =
      image_cmd->add_subcommand("build", "build a guest image (cached by hash)");
  image_build->add_option("name", image_name, "image name")->capture_default_str();
  app.add_subcommand("channel", "make and inspect channel files (see `chaoslab channel --help`)");
}

// `chaoslab validate FILE...`: 2 if any is bad.
int ValidateCommand(const Cli& c) {
  const LabPaths& paths = c.paths;
  const auto& validate_files = c.validate_files;
  int bad = 0;
  for (const auto& f : validate_files) {
    std::string summary;
    Status s = config::ValidateFile(f, paths.images_dir, &summary);
    if (s.ok()) {
      std::cout << f << ": ok" << (summary.empty() ? "" : ": " + summary) << "\n";
    } else {
      std::cerr << s.message() << "\n";
      ++bad;
    }
  }
  return bad ? 2 : 0;
}

// `chaoslab gc`: what killed runs left behind.
int GcCommand(const Cli& c) {
  const LabPaths& paths = c.paths;
  const std::string& gc_inventory = c.gc_inventory;
  // Nothing is removed below a runtime root the lab cannot trust (lab/backend/run_dir.h).
  if (Status root = CheckRuntimeRoot(paths.runtime_root);
      !root.ok() && root.code() != ErrorCode::kNotFound) {
    return Fail(root.WithContext("gc"), 2);
  }
  Status lv;
  if (!gc_inventory.empty()) {
    // Domains first: they use files in the run folders that the QEMU gc then removes.
    Result<libvirt::Inventory> inv = libvirt::LoadInventory(gc_inventory);
    if (!inv.ok()) return Fail(inv.status(), 2);
    lv = libvirt::CollectLibvirtGarbage(*inv, paths.runtime_root, std::cout);
  }
  Status s = vm::CollectGarbage(paths.runtime_root, std::cout);
  if (s.ok()) s = lv;
  return s.ok() ? 0 : Fail(s, 1);
}

int ImageBuildCommand(const Cli& c) {
  const LabPaths& paths = c.paths;
  const std::string& image_name = c.image_name;
  Result<GuestImage> img = BuildImage(paths, image_name, std::cerr);
  if (!img.ok()) {
    const bool bad_input = img.status().code() == ErrorCode::kInvalidArgument ||
                           img.status().code() == ErrorCode::kNotFound;
    return Fail(img.status(), bad_input ? 2 : 1);
  }
  std::cout << img->dir << "\n";
  return 0;
}

int RunsCommand(Journal& journal) {
  auto rows = journal.ListRuns();
  if (!rows.ok()) return Fail(rows.status(), 1);
  std::printf("%-10s %-20s %-22s %-12s %-11s %6s %9s\n", "RUN", "STARTED", "SCENARIO", "RUNBOOK",
              "STATUS", "HOSTS", "WALL");
  for (const auto& r : *rows) {
    std::printf("%-10s %-20s %-22s %-12s %-11s %6d %8.1fs\n", r.run_id.c_str(),
                r.started_at.c_str(), r.scenario.c_str(), r.runbook.c_str(), r.status.c_str(),
                r.hosts, r.wall_s);
  }
  return 0;
}

// `chaoslab report ID`: a comparison's id first (they are few), then a run's.
int ReportCommand(const Cli& c, Journal& journal) {
  const std::string& report_id = c.report_id;
  const bool report_json = c.report_json;
  const std::string& report_html = c.report_html;
  const std::string& report_csv = c.report_csv;
  // A comparison id first (they are few), then a run id.
  auto comparison = journal.LoadComparison(report_id);
  if (comparison.ok()) {
    if (report_json) {
      std::cout << JsonText(ComparisonToJson(*comparison), 2) << "\n";
    } else {
      PrintComparison(*comparison, std::cout);
    }
    if (!report_csv.empty()) {
      std::ofstream f(report_csv);
      WriteComparisonCsv(*comparison, f);
      if (!f) return Fail(Status::IoError("cannot write " + report_csv), 1);
    }
    if (!report_html.empty()) {
      Status s =
          WriteHtmlReport(comparison->runs, "chaoslab comparison " + comparison->id, report_html);
      if (!s.ok()) return Fail(s, 1);
    }
    return 0;
  }
  auto result = journal.LoadRun(report_id);
  if (!result.ok()) return Fail(result.status(), 2);
  if (report_json) {
    std::cout << ToJsonText(*result) << "\n";
  } else {
    PrintTable(*result, std::cout);
  }
  if (!report_html.empty()) {
    Status s = WriteHtmlReport({*result}, "chaoslab run " + result->run_id, report_html);
    if (!s.ok()) return Fail(s, 1);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // `chaoslab channel ...` hands its arguments to the channel-file tool unchanged.
  if (argc >= 2 && std::string(argv[1]) == "channel")
    return content::ChannelToolMain(argc - 1, argv + 1);

  Cli c;
  c.app.require_subcommand(1);
  c.app.add_option("--journal", c.paths.journal, "journal file (SQLite)")->capture_default_str();
  AddRunCommand(&c);
  AddCompareCommand(&c);
  AddSweepCommand(&c);
  AddCalibrateCommand(&c);
  AddGamedayCommand(&c);
  AddJournalCommands(&c);
  AddHousekeepingCommands(&c);
  try {
    c.app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return c.app.exit(e) == 0 ? 0 : 2;
  }
  InstallSignalHandlers();

  const LabPaths& paths = c.paths;
  if (*c.run_cmd) return RunCommand(paths, c.run, &g_cancel, std::cout, std::cerr);
  if (*c.compare_cmd) return CompareCommand(paths, c.cmp, &g_cancel, std::cout, std::cerr);
  if (*c.sweep_cmd) return SweepCommand(paths, c.sweep, &g_cancel, std::cout, std::cerr);
  if (*c.calibrate_cmd) return CalibrateCommand(paths, c.cal, &g_cancel, std::cout, std::cerr);
  if (*c.gameday_cmd) return GamedayCommand(paths, c.gd, &g_cancel, std::cout, std::cerr);
  if (*c.validate_cmd) return ValidateCommand(c);
  if (*c.gc_cmd) return GcCommand(c);
  if (*c.image_build) return ImageBuildCommand(c);

  Result<std::unique_ptr<Journal>> journal = Journal::Open(paths.journal);
  if (!journal.ok()) return Fail(journal.status(), 2);
  if (*c.runs_cmd) return RunsCommand(**journal);
  if (*c.report_cmd) return ReportCommand(c, **journal);
  return 0;
}
