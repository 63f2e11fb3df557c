#include "lab/cli/sim_command.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
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
namespace {

// This process's peak resident set (VmHWM, of its own memory since exec), in MiB; 0 if unknown.
// What a parent's wait4 reports also counts the parent's own peak before the exec (Linux keeps a
// process's high-water mark across execve), so the simulator says its own.
double PeakRssMib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::strtod(line.c_str() + 6, nullptr) / 1024.0;
  return 0;
}

namespace fs = std::filesystem;

std::string NewSimRunId() {
  std::random_device rd;
  return fmt::format("{:08x}", rd());
}

std::string DayText(double s) {
  if (s < 3600) return fmt::format("{:.0f} min", s / 60);
  if (s < 2 * 86400) return fmt::format("{:.1f} h", s / 3600);
  return fmt::format("{:.1f} d", s / 86400);
}

// The world's recovery curve: share of hosts healthy for good, hours and days after release.
void PrintCurve(const RunResult& run, std::ostream& out) {
  std::vector<double> times = {3600,       6 * 3600,   12 * 3600,  86400,
                               2 * 86400,  3 * 86400,  5 * 86400,  7 * 86400,
                               10 * 86400, 14 * 86400, 21 * 86400, 28 * 86400};
  const double end = run.scenario_end_s - run.release_s;
  while (!times.empty() && times.back() > end + 1) times.pop_back();
  if (times.empty()) return;
  std::vector<double> share = sim::HealthyShareAt(run, times);
  out << "  Recovery curve (share of hosts healthy for good, after release):\n   ";
  for (size_t i = 0; i < times.size(); ++i) out << fmt::format(" {:>8}", "+" + DayText(times[i]));
  out << "\n   ";
  for (double s : share) out << fmt::format(" {:>7.2f}%", s * 100);
  out << "\n\n";
}

}  // namespace

Result<RunResult> RunSimOnce(const config::ScenarioConfig& sc, const std::string& run_id,
                             const std::string& comparison_id, int repetition, Journal* journal,
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
  result.inputs = JsonText(inputs);
  if (journal) {
    RunResult begun = result;
    begun.hosts.clear();
    begun.status = "running";
    RETURN_IF_ERROR(journal->BeginRun(begun));
    // The figures are already here: a journal that cannot take them fails the command, not them.
    if (Status s = journal->FinishRun(result); !s.ok()) result.journal_error = s.ToString();
  }
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
  SimCliOptions options;
  options.calibration = request.calibration;
  options.threads = request.sim_threads;
  if (request.host_rows > 0) options.host_rows = request.host_rows;
  sim::SimStats stats;
  options.stats = &stats;
  Result<RunResult> result =
      RunSimOnce(sc, NewSimRunId(), "", 0, journal->get(), options, progress);
  if (!result.ok()) {
    const ErrorCode c = result.status().code();
    return fail(result.status(), c == ErrorCode::kInvalidArgument ||
                                         c == ErrorCode::kFailedPrecondition ||
                                         c == ErrorCode::kNotFound
                                     ? 2
                                     : 1);
  }
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

}  // namespace

int CalibrateCommand(const LabPaths& paths, const CalibrateRequest& request,
                     const std::atomic<bool>* cancel, std::ostream& out, std::ostream& err) {
  auto fail = [&](const Status& s, int code) {
    err << "chaoslab: " << s.message() << "\n";
    return code;
  };
  const std::string scenario_path = request.scenario.empty()
                                        ? paths.source_dir + "/playbooks/scenarios/reboot-race.yaml"
                                        : request.scenario;
  Result<config::ScenarioConfig> sc = config::LoadScenario(scenario_path, paths.images_dir);
  if (!sc.ok()) return fail(sc.status(), 2);
  Result<std::string> hash = sim::RecipeHash(sc->image);
  if (!hash.ok()) return fail(hash.status(), 2);
  const std::string out_path =
      request.out.empty() ? paths.source_dir + "/playbooks/calibration/" + sc->image.name + ".yaml"
                          : request.out;

  sim::Calibration cal;
  cal.image = sc->image.name;
  cal.image_hash = *hash;
  cal.generated_at = IsoNowUtc();
  cal.method.race_window_ms = sc->RaceWindowMs();
  double load[1] = {-1};
  (void)getloadavg(load, 1);
  cal.method.load_average = load[0];
  std::map<config::Network, sim::RaceFigures> race;
  Moments detection, cycle_wall, recovery;
  std::map<config::StepKind, sim::StepFigures> steps;
  const auto wall_start = std::chrono::steady_clock::now();
  int64_t guests = 0;
  Result<std::unique_ptr<Journal>> journal = Journal::Open(paths.journal);
  if (!journal.ok()) return fail(journal.status(), 2);
  for (int i = 0; i < request.samples; ++i) {
    if (cancel && cancel->load()) return 130;
    RunRequest run;
    run.scenario_path = scenario_path;
    run.json = true;
    run.quiet = request.quiet;
    run.seed = 291 + static_cast<uint64_t>(i);
    std::ostringstream json;
    if (!request.quiet)
      err << fmt::format("calibrate: VM run {} of {} ({})\n", i + 1, request.samples,
                         scenario_path);
    int rc = RunCommand(paths, run, cancel, json, err);
    if (rc != 0) return rc;
    nlohmann::json r;
    try {
      r = nlohmann::json::parse(json.str());
    } catch (const std::exception& e) {
      return fail(Status::Internal(std::string("reading the run's JSON: ") + e.what()), 1);
    }
    const std::string run_id = r.value("run_id", "");
    // Every run of a calibration on one guest clock (the journal's inputs say which it was).
    const std::string clock = r.contains("inputs") && r["inputs"].is_object()
                                  ? r["inputs"].value("guest_clock", std::string("wall"))
                                  : std::string("wall");
    if (!cal.method.guest_clock.empty() && cal.method.guest_clock != clock) {
      return fail(Status::FailedPrecondition("calibration runs on two guest clocks (" +
                                             cal.method.guest_clock + ", " + clock + ")"),
                  1);
    }
    cal.method.guest_clock = clock;
    // "realtime" only if every run's host side ran in real time (inputs.lab_priority).
    const std::string priority = r.contains("inputs") && r["inputs"].is_object()
                                     ? r["inputs"].value("lab_priority", std::string("ordinary"))
                                     : std::string("ordinary");
    const std::string host_path = priority == "realtime" ? "realtime" : "ordinary";
    if (cal.method.host_path.empty() || host_path == "ordinary") cal.method.host_path = host_path;
    for (const auto& h : r["hosts"]) {
      guests++;
      auto net = config::ParseNetwork(h.value("network", std::string("wired")));
      if (!net) continue;
      if (h["first_crash_s"].is_number()) detection.Add(h["first_crash_s"].get<double>());
      const int reboots = h.value("reboots", 0);
      if (reboots <= 0) continue;
      sim::RaceFigures& f = race[*net];
      f.hosts++;
      f.boots += reboots;
      const bool won = h.value("recovered", false) && h["recovered_by"].is_string() &&
                       h["recovered_by"].get<std::string>() == "reboot";
      if (won) {
        f.wins++;
        if (f.recovered_after.size() <= static_cast<size_t>(reboots))
          f.recovered_after.resize(static_cast<size_t>(reboots) + 1, 0);
        f.recovered_after[static_cast<size_t>(reboots)]++;
        if (h["time_to_recover_s"].is_number()) recovery.Add(h["time_to_recover_s"].get<double>());
      } else {
        f.never++;
      }
    }
    // Wall time of one crash cycle of a real guest: its first crash to its second.
    auto events = (*journal)->LoadEvents(run_id);
    if (!events.ok()) return fail(events.status(), 1);
    std::map<std::string, std::vector<long long>> crashes;
    std::vector<sim::StepEvent> step_events;
    for (const auto& e : *events) {
      if (e.kind == "crash") crashes[e.host_id].push_back(e.wall_us);
      if (e.kind == "step" || e.kind == "step-failed" || e.kind == "console" || e.kind == "command")
        step_events.push_back({e.host_id, e.kind, e.detail});
    }
    for (const auto& [host, at] : crashes)
      if (at.size() >= 2) cycle_wall.Add((at[1] - at[0]) / 1e6);
    // What the runbook's machine parts did on the real guests (the simulator draws the same).
    sim::AddStepOutcomes(step_events, &steps);
  }
  for (auto& [net, f] : race) {
    if (f.recovered_after.empty()) f.recovered_after.push_back(0);
    if (f.boots == 0) continue;
    cal.race[net] = f;
  }
  if (cal.race.empty()) {
    return fail(Status::FailedPrecondition("the VM runs showed no reboots after the revert: "
                                           "nothing to calibrate the boot race on"),
                1);
  }
  if (detection.n) cal.figures["crash_detection_s"] = detection.Figure();
  if (cycle_wall.n) cal.figures["crash_cycle_wall_s"] = cycle_wall.Figure();
  if (recovery.n) cal.figures["reboot_recovery_s"] = recovery.Figure();
  for (const auto& [kind, f] : steps)
    if (f.attempts > 0) cal.steps[kind] = f;
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  cal.generated_by = fmt::format("chaoslab calibrate --samples {}", request.samples);
  std::string provenance = fmt::format(
      "Calibration of the simulator (lab/sim), written by `chaoslab calibrate`: {} run(s) of\n"
      "{} on real QEMU guests ({} guest observations, {:.0f} s wall), image {} (recipe hash\n"
      "below). race: per network profile, the boots after the revert of hosts whose disk held the\n"
      "bad file and how many the reverted file won (the simulator draws each boot with\n"
      "p = wins / boots); recovered_after[k] = hosts back on their k-th such boot. figures: mean,\n"
      "sd and samples of what the runs measured. steps: per step kind, how often its machine part\n"
      "succeeded on the guests (boot to a console, typed unlock, del on an unlocked volume), when\n"
      "the runbook had such steps. Regenerate after changing images/{}.",
      request.samples, fs::path(scenario_path).filename().string(), guests, wall, cal.image,
      cal.image);
  fs::create_directories(fs::path(out_path).parent_path());
  Status s = sim::SaveCalibration(cal, provenance, out_path);
  if (!s.ok()) return fail(s, 1);
  for (const auto& [net, f] : cal.race) {
    out << fmt::format("{:<6} {} hosts, {} boots, {} wins: p(win) = {:.3f}\n",
                       config::NetworkName(net), f.hosts, f.boots, f.wins, f.WinProbability());
  }
  for (const auto& [kind, f] : cal.steps) {
    out << fmt::format("step {:<16} {} of {} succeeded\n", config::StepKindName(kind), f.ok,
                       f.attempts);
  }
  out << "calibration: " << out_path << "\n";
  return 0;
}

}  // namespace chaoslab
