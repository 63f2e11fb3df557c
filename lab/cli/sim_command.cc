#include "lab/cli/sim_command.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "lab/common/clock_text.h"
#include "lab/common/json_text.h"
#include "lab/config/config_loader.h"
#include "lab/report/html.h"
#include "lab/report/report.h"
#include "lab/sim/calibration.h"
#include "lab/sim/mix.h"
#include "lab/sim/sim.h"

namespace chaoslab {

double PeakRssMib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::strtod(line.c_str() + 6, nullptr) / 1024.0;
  return 0;
}

namespace {

namespace fs = std::filesystem;

// The world's recovery curve: share of hosts healthy for good at kCurveTimes after release.
void PrintCurve(const RunResult& run, std::ostream& out) {
  const std::vector<double> share = CurveAt(run, kCurveTimes);
  out << "  Recovery curve (share of hosts healthy for good, after release):\n   ";
  for (double t : kCurveTimes) out << fmt::format(" {:>7}", AfterReleaseText(t));
  out << "\n   ";
  for (double s : share) {
    out << (std::isnan(s) ? fmt::format(" {:>7}", "–") : fmt::format(" {:>6.2f}%", s * 100));
  }
  out << "\n\n";
}

}  // namespace

std::string NewSimRunId() {
  std::random_device rd;
  return fmt::format("{:08x}", rd());
}

std::string AfterReleaseText(double s) {
  if (s < 2 * 86400) return fmt::format("+{:g} h", s / 3600);
  return fmt::format("+{:g} d", s / 86400);
}

std::vector<double> CurveAt(const RunResult& run, const std::vector<double>& times_s) {
  std::vector<double> share = sim::HealthyShareAt(run, times_s);
  // After a deadline the hosts still down might have come up later: unknown.
  const double known_until = run.status == "finished" ? std::numeric_limits<double>::infinity()
                                                      : run.scenario_end_s - run.release_s + 1;
  for (size_t i = 0; i < times_s.size(); ++i) {
    if (times_s[i] > known_until) share[i] = std::numeric_limits<double>::quiet_NaN();
  }
  return share;
}

Result<RunResult> SimulateOnce(const config::ScenarioConfig& sc, const std::string& run_id,
                               const std::string& comparison_id, int repetition,
                               const SimCliOptions& options,
                               const std::function<void(const std::string&)>& progress) {
  const std::string cal_path = options.calibration.empty()
                                   ? sim::DefaultCalibrationPath(sc)
                                   : fs::absolute(options.calibration).lexically_normal().string();
  ASSIGN_OR_RETURN(sim::Calibration cal, sim::LoadCalibration(cal_path, sc.image));
  RETURN_IF_ERROR(sim::CheckCalibrationFits(cal, sc));
  std::optional<sim::Mix> mix;
  if (!sc.mix_file.empty()) {
    ASSIGN_OR_RETURN(mix, sim::LoadMix(sc.mix_file, sc));
    if (options.world_hosts > 0) sim::PlanOrganisations(&*mix, options.world_hosts);
  }
  sim::SimOptions so;
  so.scenario = &sc;
  so.calibration = &cal;
  so.mix = mix ? &*mix : nullptr;
  so.run_id = run_id;
  so.comparison_id = comparison_id;
  so.repetition = repetition;
  so.threads = options.threads;
  so.host_rows_limit = options.host_rows;
  so.progress = progress;
  if (progress) progress("sim: calibration " + cal.file + " (" + cal.generated_at + ")");
  ASSIGN_OR_RETURN(RunResult result, sim::RunSim(so, options.stats));
  nlohmann::json inputs = ScenarioInputs(sc, "sim");
  inputs["calibration"] = cal.file;
  inputs["mix"] = sc.mix_file;
  inputs["host_rows_limit"] = options.host_rows;
  if (options.world_hosts > 0 && mix) inputs["world_hosts"] = options.world_hosts;
  result.inputs = JsonText(inputs);
  return result;
}

SimCliOptions SimOptionsOf(const RunRequest& request) {
  SimCliOptions options;
  options.calibration = request.calibration;
  options.threads = request.sim_threads;
  if (request.host_rows > 0) options.host_rows = request.host_rows;
  return options;
}

int SimFailureExitCode(const Status& status) {
  const ErrorCode c = status.code();
  return c == ErrorCode::kInvalidArgument || c == ErrorCode::kFailedPrecondition ||
                 c == ErrorCode::kNotFound
             ? 2
             : 1;
}

Status JournalSimRun(Journal* journal, RunResult* result) {
  RunResult begun = *result;
  begun.hosts.clear();
  begun.status = "running";
  RETURN_IF_ERROR(journal->BeginRun(begun));
  // The figures are already here: a journal that cannot take them fails the command, not them.
  if (Status s = journal->FinishRun(*result); !s.ok()) result->journal_error = s.ToString();
  return Status::Ok();
}

Result<RunResult> RunSimOnce(const config::ScenarioConfig& sc, const std::string& run_id,
                             const std::string& comparison_id, int repetition, Journal* journal,
                             const SimCliOptions& options,
                             const std::function<void(const std::string&)>& progress) {
  ASSIGN_OR_RETURN(RunResult result,
                   SimulateOnce(sc, run_id, comparison_id, repetition, options, progress));
  if (journal) RETURN_IF_ERROR(JournalSimRun(journal, &result));
  return result;
}

int SimRunCommand(const LabPaths& paths, const RunRequest& request, config::ScenarioConfig sc,
                  std::ostream& out, std::ostream& err) {
  auto fail = [&](const Status& s, int code) {
    err << "chaoslab: " << s.message() << "\n";
    return code;
  };
  Result<std::unique_ptr<Journal>> journal = Journal::Open(paths.journal);
  if (!journal.ok()) return fail(journal.status(), 2);
  std::function<void(const std::string&)> progress;
  if (!request.quiet) {
    progress = [&err](const std::string& line) { err << line << std::endl; };
    err << "journal: " << paths.journal << "\n";
  }
  SimCliOptions options = SimOptionsOf(request);
  sim::SimStats stats;
  options.stats = &stats;
  Result<RunResult> result =
      RunSimOnce(sc, NewSimRunId(), "", 0, journal->get(), options, progress);
  if (!result.ok()) return fail(result.status(), SimFailureExitCode(result.status()));
  if (request.json) {
    out << ToJsonText(*result) << "\n";
  } else {
    PrintTable(*result, out);
    out << "\n";
    PrintCurve(*result, out);
  }
  if (!request.html.empty()) {
    Status s = WriteHtmlReport({*result}, "chaoslab run " + result->run_id, request.html);
    if (!s.ok()) return fail(s, 1);
    if (!request.quiet) err << "HTML report: " << request.html << "\n";
  }
  // Last, so the peak memory it records includes printing the results.
  if (!request.stats_json.empty()) {
    nlohmann::json j = {{"sim_wall_s", stats.wall_s},
                        {"sim_events", stats.events},
                        {"sim_events_per_s", stats.events / std::max(stats.wall_s, 1e-9)},
                        {"sim_hosts", stats.hosts},
                        {"sim_organisations", stats.organisations},
                        {"sim_result_rows", result->hosts.size()}};
    if (const double hwm = PeakRssMib(); hwm > 0) j["peak_rss_mib"] = hwm;
    std::ofstream(request.stats_json) << j.dump(2) << "\n";
  }
  if (!result->journal_error.empty()) {
    err << "chaoslab: run " << result->run_id
        << ": the journal is incomplete (results above are): " << result->journal_error << "\n";
    return 1;
  }
  return 0;
}

namespace {

struct Moments {
  double sum = 0, sum2 = 0;
  int64_t n = 0;
  void Add(double v) {
    sum += v;
    sum2 += v * v;
    n++;
  }
  sim::Figure Figure() const {
    sim::Figure f;
    f.samples = n;
    if (n == 0) return f;
    f.mean = sum / static_cast<double>(n);
    f.sd = n > 1 ? std::sqrt(std::max(0.0, (sum2 - sum * f.mean) / static_cast<double>(n - 1))) : 0;
    return f;
  }
};

// What the VM runs of one calibration scenario showed, added up over its runs.
struct CalibrationRuns {
  sim::Method method;  // guest_clock and host_path, as the runs' inputs say
  std::map<config::Network, sim::RaceFigures> race;
  Moments detection, cycle_wall, recovery;
  std::map<config::StepKind, sim::StepFigures> steps;
  int64_t guests = 0;
};

// The boots after the revert of one run's hosts (their reboot step's attempts): a win is a host
// its reboot step brought back.
void AddRaceObservations(const nlohmann::json& hosts, CalibrationRuns* acc) {
  for (const auto& h : hosts) {
    acc->guests++;
    auto net = config::ParseNetwork(h.value("network", std::string("wired")));
    if (!net) continue;
    if (h["first_crash_s"].is_number()) acc->detection.Add(h["first_crash_s"].get<double>());
    const int reboots = h.value("reboots", 0);
    if (reboots <= 0) continue;
    sim::RaceFigures& f = acc->race[*net];
    f.hosts++;
    f.boots += reboots;
    const bool won = h.value("recovered", false) && h["recovered_by"].is_string() &&
                     h["recovered_by"].get<std::string>() == "reboot";
    if (won) {
      f.wins++;
      if (f.recovered_after.size() <= static_cast<size_t>(reboots))
        f.recovered_after.resize(static_cast<size_t>(reboots) + 1, 0);
      f.recovered_after[static_cast<size_t>(reboots)]++;
      if (h["time_to_recover_s"].is_number())
        acc->recovery.Add(h["time_to_recover_s"].get<double>());
    } else {
      f.never++;
    }
  }
}

// Runs `scenario_path` `samples` times on real guests (seeds 291, 292, ...) and adds up what they
// showed. Returns the exit code of a run that failed, else 0.
int MeasureRuns(const LabPaths& paths, const std::string& scenario_path, int samples, bool quiet,
                const std::atomic<bool>* cancel, Journal* journal, CalibrationRuns* acc,
                std::ostream& err) {
  for (int i = 0; i < samples; ++i) {
    if (cancel && cancel->load()) return 130;
    RunRequest run;
    run.scenario_path = scenario_path;
    run.json = true;
    run.quiet = quiet;
    run.seed = 291 + static_cast<uint64_t>(i);
    std::ostringstream json;
    if (!quiet)
      err << fmt::format("calibrate: VM run {} of {} ({})\n", i + 1, samples, scenario_path);
    int rc = RunCommand(paths, run, cancel, json, err);
    if (rc != 0) return rc;
    nlohmann::json r;
    try {
      r = nlohmann::json::parse(json.str());
    } catch (const std::exception& e) {
      err << "chaoslab: reading the run's JSON: " << e.what() << "\n";
      return 1;
    }
    const std::string run_id = r.value("run_id", "");
    // Every run of a calibration on one guest clock (the journal's inputs say which it was).
    const bool has_inputs = r.contains("inputs") && r["inputs"].is_object();
    const std::string clock =
        has_inputs ? r["inputs"].value("guest_clock", std::string("wall")) : std::string("wall");
    if (!acc->method.guest_clock.empty() && acc->method.guest_clock != clock) {
      err << "chaoslab: calibration runs on two guest clocks (" << acc->method.guest_clock << ", "
          << clock << ")\n";
      return 1;
    }
    acc->method.guest_clock = clock;
    // "realtime" only if every run's host side ran in real time (inputs.lab_priority).
    const std::string priority = has_inputs
                                     ? r["inputs"].value("lab_priority", std::string("ordinary"))
                                     : std::string("ordinary");
    const std::string host_path = priority == "realtime" ? "realtime" : "ordinary";
    if (acc->method.host_path.empty() || host_path == "ordinary") acc->method.host_path = host_path;
    AddRaceObservations(r["hosts"], acc);
    // Wall time of one crash cycle of a real guest: its first crash to its second.
    auto events = journal->LoadEvents(run_id);
    if (!events.ok()) {
      err << "chaoslab: " << events.status().message() << "\n";
      return 1;
    }
    std::map<std::string, std::vector<long long>> crashes;
    std::vector<sim::StepEvent> step_events;
    for (const auto& e : *events) {
      if (e.kind == "crash") crashes[e.host_id].push_back(e.wall_us);
      if (e.kind == "step" || e.kind == "step-failed" || e.kind == "console" || e.kind == "command")
        step_events.push_back({e.host_id, e.kind, e.detail});
    }
    for (const auto& [host, at] : crashes)
      if (at.size() >= 2) acc->cycle_wall.Add((at[1] - at[0]) / 1e6);
    // What the runbook's machine parts did on the real guests (the simulator draws the same).
    sim::AddStepOutcomes(step_events, &acc->steps);
  }
  return 0;
}

// The race figures worth keeping: every profile with boots after the revert.
std::map<config::Network, sim::RaceFigures> Races(std::map<config::Network, sim::RaceFigures> in) {
  std::map<config::Network, sim::RaceFigures> out;
  for (auto& [net, f] : in) {
    if (f.recovered_after.empty()) f.recovered_after.push_back(0);
    if (f.boots > 0) out[net] = f;
  }
  return out;
}

}  // namespace

// What `calibrate` prints: each race's win probability per profile, the step rates.
void PrintCalibration(const sim::Calibration& cal, std::ostream& out) {
  for (const auto& [what, races] :
       {std::pair{"race", &cal.race}, {"remediation", &cal.remediation}}) {
    for (const auto& [net, f] : *races) {
      out << fmt::format("{:<11} {:<6} {} hosts, {} boots, {} wins: p(win) = {:.3f}\n", what,
                         config::NetworkName(net), f.hosts, f.boots, f.wins, f.WinProbability());
    }
  }
  for (const auto& [kind, f] : cal.steps) {
    out << fmt::format("step {:<16} {} of {} succeeded\n", config::StepKindName(kind), f.ok,
                       f.attempts);
  }
}

// The calibration file's leading comment: how it was measured.
std::string CalibrationProvenance(int samples, const std::string& scenario_path,
                                  const std::string& remediation_path, int64_t guests, double wall,
                                  const std::string& image) {
  return fmt::format(
      "Calibration of the simulator (lab/sim), written by `chaoslab calibrate`: {} run(s) each of\n"
      "{} and {} on real QEMU guests\n"
      "({} guest observations, {:.0f} s wall), image {} (recipe hash below). race: per network\n"
      "profile, the boots after the revert of hosts whose disk held the bad file and how many the\n"
      "reverted file won (the simulator draws each boot with p = wins / boots);\n"
      "recovered_after[k] = hosts back on their k-th such boot. remediation:\n"
      "the same under the vendor's cloud quarantine (from the revert, every host opted in).\n"
      "figures: mean, sd and samples of what the race runs measured. steps: per step kind, how\n"
      "often its machine part succeeded on the guests (boot to a console, typed unlock, del on an\n"
      "unlocked volume), when the runbook had such steps. Regenerate after changing images/{}\n"
      "or agents/sensor.",
      samples, fs::path(scenario_path).filename().string(),
      remediation_path.empty() ? "no remediation scenario"
                               : fs::path(remediation_path).filename().string(),
      guests, wall, image, image);
}

int CalibrateCommand(const LabPaths& paths, const CalibrateRequest& request,
                     const std::atomic<bool>* cancel, std::ostream& out, std::ostream& err) {
  auto fail = [&](const Status& s, int code) {
    err << "chaoslab: " << s.message() << "\n";
    return code;
  };
  const std::string scenario_path = request.scenario.empty()
                                        ? paths.source_dir + "/playbooks/scenarios/reboot-race.yaml"
                                        : request.scenario;
  // With a scenario of one's own, the remediation's race only when asked for.
  const std::string remediation_path =
      !request.remediation_scenario.empty() ? request.remediation_scenario
      : request.scenario.empty()
          ? paths.source_dir + "/playbooks/scenarios/reboot-race-remediation.yaml"
          : std::string();
  Result<config::ScenarioConfig> sc = config::LoadScenario(scenario_path, paths.images_dir);
  if (!sc.ok()) return fail(sc.status(), 2);
  // The remediation's race is measured the same way, on the same image, at the same window.
  Result<config::ScenarioConfig> rsc =
      remediation_path.empty() ? *sc : config::LoadScenario(remediation_path, paths.images_dir);
  if (!rsc.ok()) return fail(rsc.status(), 2);
  if (!remediation_path.empty() &&
      (!rsc->vendor_remediation.enabled || rsc->image.name != sc->image.name ||
       rsc->RaceWindowMs() != sc->RaceWindowMs())) {
    return fail(Status::InvalidArgument(fmt::format(
                    "{}: the remediation scenario must have vendor_remediation, image {} and a "
                    "race window of {} ms, as {}",
                    remediation_path, sc->image.name, sc->RaceWindowMs(), scenario_path)),
                2);
  }
  Result<std::string> hash = sim::RecipeHash(sc->image);
  if (!hash.ok()) return fail(hash.status(), 2);
  const std::string out_path =
      request.out.empty() ? paths.source_dir + "/playbooks/calibration/" + sc->image.name + ".yaml"
                          : request.out;

  sim::Calibration cal;
  cal.image = sc->image.name;
  cal.image_hash = *hash;
  cal.generated_at = IsoNowUtc();
  double load[1] = {-1};
  (void)getloadavg(load, 1);
  const auto wall_start = std::chrono::steady_clock::now();
  Result<std::unique_ptr<Journal>> journal = Journal::Open(paths.journal);
  if (!journal.ok()) return fail(journal.status(), 2);
  CalibrationRuns race, remediation;
  int rc = MeasureRuns(paths, scenario_path, request.samples, request.quiet, cancel, journal->get(),
                       &race, err);
  if (rc == 0 && !remediation_path.empty()) {
    rc = MeasureRuns(paths, remediation_path, request.samples, request.quiet, cancel,
                     journal->get(), &remediation, err);
  }
  if (rc != 0) return rc;
  if (!remediation_path.empty() && race.method.guest_clock != remediation.method.guest_clock) {
    return fail(Status::FailedPrecondition("calibration runs on two guest clocks"), 1);
  }
  cal.method = race.method;
  if (remediation.method.host_path == "ordinary") cal.method.host_path = "ordinary";
  cal.method.race_window_ms = sc->RaceWindowMs();
  cal.method.load_average = load[0];
  cal.race = Races(race.race);
  cal.remediation = Races(remediation.race);
  if (cal.race.empty()) {
    return fail(Status::FailedPrecondition("the VM runs showed no reboots after the revert: "
                                           "nothing to calibrate the boot race on"),
                1);
  }
  if (race.detection.n) cal.figures["crash_detection_s"] = race.detection.Figure();
  if (race.cycle_wall.n) cal.figures["crash_cycle_wall_s"] = race.cycle_wall.Figure();
  if (race.recovery.n) cal.figures["reboot_recovery_s"] = race.recovery.Figure();
  for (const auto& [kind, f] : race.steps)
    if (f.attempts > 0) cal.steps[kind] = f;
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  cal.generated_by = fmt::format("chaoslab calibrate --samples {}", request.samples);
  const std::string provenance =
      CalibrationProvenance(request.samples, scenario_path, remediation_path,
                            race.guests + remediation.guests, wall, cal.image);
  fs::create_directories(fs::path(out_path).parent_path());
  Status s = sim::SaveCalibration(cal, provenance, out_path);
  if (!s.ok()) return fail(s, 1);
  PrintCalibration(cal, out);
  out << "calibration: " << out_path << "\n";
  return 0;
}

}  // namespace chaoslab
