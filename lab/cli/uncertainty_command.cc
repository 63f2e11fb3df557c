#include "lab/cli/uncertainty_command.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <fstream>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <thread>

#include "lab/cli/sim_command.h"
#include "lab/common/json_text.h"
#include "lab/journal/journal.h"
#include "lab/report/uncertainty.h"

namespace chaoslab {
namespace {

// FNV-1a: a hash of an assumption's id that is the same on every machine and build.
uint64_t StableHash(const std::string& text) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

// The band plot's times after release: every 30 min for a day, every 3 h to a week, every 12 h
// to 30 days.
std::vector<double> PlotTimes() {
  std::vector<double> t;
  for (double s = 0; s <= 86400; s += 1800) t.push_back(s);
  for (double s = 86400 + 3 * 3600; s <= 7 * 86400; s += 3 * 3600) t.push_back(s);
  for (double s = 7 * 86400 + 12 * 3600; s <= 30 * 86400; s += 12 * 3600) t.push_back(s);
  return t;
}

// What the report keeps of one run.
struct RunFigures {
  std::vector<double> curve, plot;
  std::vector<double> downtime_s;  // per service, in the run's order
  double end_after_release_s = 0;
};

RunFigures FiguresOf(const RunResult& run, const std::vector<double>& plot_times) {
  RunFigures f;
  f.curve = CurveAt(run, kCurveTimes);
  f.plot = CurveAt(run, plot_times);
  for (const ServiceResult& s : run.services) f.downtime_s.push_back(s.downtime_s);
  f.end_after_release_s = run.scenario_end_s - run.release_s;
  return f;
}

// The scenario as `run` loads it (its --setup, --runbook, --max-vms, --seed, --max-wall), with
// the ranged assumptions of its playbooks resolved through `assumptions`.
Result<config::ScenarioConfig> LoadScenario(const LabPaths& paths, const RunRequest& request,
                                            config::Assumptions* assumptions) {
  config::AssumptionScope scope(assumptions);
  CellRunRequest cells;
  cells.seed = request.seed;
  cells.max_wall_s = request.max_wall_s;
  cells.max_vms = request.max_vms;
  cells.backend = request.backend;
  return LoadForCells(paths, request.scenario_path, request.setup, request.runbook, cells);
}

// Runs draw d for every d of `quantiles` on `workers` threads; each draw's playbooks are loaded
// (and its mix and calibration read) on the thread that runs it, with its own assumptions.
Status RunDraws(const LabPaths& paths, const RunRequest& request,
                const std::vector<config::Assumption>& assumptions,
                const std::vector<std::vector<double>>& quantiles, const SimCliOptions& options,
                int workers, const std::atomic<bool>* cancel, const std::vector<double>& plot_times,
                const std::function<void(const std::string&)>& progress,
                std::vector<RunFigures>* out) {
  out->assign(quantiles.size(), {});
  std::atomic<size_t> next{0}, done{0};
  std::mutex mu;
  Status failed;
  auto worker = [&] {
    while (true) {
      if (cancel != nullptr && cancel->load()) return;
      const size_t d = next.fetch_add(1);
      if (d >= quantiles.size()) return;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (!failed.ok()) return;
      }
      std::map<std::string, double> draw;
      for (size_t a = 0; a < assumptions.size(); ++a) draw[assumptions[a].id] = quantiles[d][a];
      config::Assumptions drawn(std::move(draw));
      Result<RunResult> run = [&]() -> Result<RunResult> {
        ASSIGN_OR_RETURN(config::ScenarioConfig sc, LoadScenario(paths, request, &drawn));
        config::AssumptionScope scope(&drawn);  // the mix and calibration SimulateOnce reads
        return SimulateOnce(sc, fmt::format("draw-{}", d + 1), "", static_cast<int>(d + 1), options,
                            nullptr);
      }();
      std::lock_guard<std::mutex> lock(mu);
      if (!run.ok()) {
        if (failed.ok()) failed = run.status().WithContext(fmt::format("draw {}", d + 1));
        return;
      }
      (*out)[d] = FiguresOf(*run, plot_times);
      const size_t n = ++done;
      if (progress && (n % 10 == 0 || n == quantiles.size())) {
        progress(fmt::format("uncertainty: {} of {} draws done", n, quantiles.size()));
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < workers; ++t) pool.emplace_back(worker);
  worker();
  for (auto& th : pool) th.join();
  return failed;
}

AssumedInput ShownAssumption(const config::Assumption& a) {
  return {a.id, a.name, config::FormatAssumed(a, a.nominal), config::FormatAssumed(a, a.low),
          config::FormatAssumed(a, a.high)};
}

// The report of the nominal run and the draws.
UncertaintyReport BuildReport(const RunResult& nominal_run, const RunFigures& nominal,
                              const std::vector<config::Assumption>& assumptions,
                              const std::vector<std::vector<double>>& quantiles,
                              const std::vector<RunFigures>& draws,
                              const std::vector<double>& plot_times, std::string method) {
  UncertaintyReport r;
  r.scenario = nominal_run.scenario;
  r.run_id = nominal_run.run_id;
  r.seed = nominal_run.seed;
  r.method = std::move(method);
  r.curve_times_s = kCurveTimes;
  for (size_t i = 0; i < kCurveTimes.size(); ++i) {
    UncertainFigure f{AfterReleaseText(kCurveTimes[i]), "share", nominal.curve[i], {}};
    for (const RunFigures& d : draws) f.draws.push_back(d.curve[i]);
    r.curve.push_back(std::move(f));
  }
  for (size_t s = 0; s < nominal_run.services.size(); ++s) {
    UncertainFigure f{nominal_run.services[s].name, "seconds", nominal.downtime_s[s], {}};
    for (const RunFigures& d : draws) {
      f.draws.push_back(s < d.downtime_s.size() ? d.downtime_s[s]
                                                : std::numeric_limits<double>::quiet_NaN());
    }
    r.services.push_back(std::move(f));
  }
  for (const auto& a : assumptions) r.assumptions.push_back(ShownAssumption(a));
  r.quantiles = quantiles;
  // The plot ends where the latest run ended (the curve is flat after it), at least at a day.
  double end = std::max(86400.0, nominal.end_after_release_s);
  for (const RunFigures& d : draws) end = std::max(end, d.end_after_release_s);
  size_t n = 0;
  while (n < plot_times.size() && plot_times[n] <= end + 1) ++n;
  r.plot_times_s.assign(plot_times.begin(), plot_times.begin() + static_cast<long>(n));
  r.plot_nominal.assign(nominal.plot.begin(), nominal.plot.begin() + static_cast<long>(n));
  for (const RunFigures& d : draws) {
    r.plot_draws.emplace_back(d.plot.begin(), d.plot.begin() + static_cast<long>(n));
  }
  return r;
}

}  // namespace

std::vector<std::vector<double>> LatinHypercube(const std::vector<config::Assumption>& assumptions,
                                                int draws, uint64_t seed) {
  const size_t n = static_cast<size_t>(std::max(draws, 0));
  std::vector<std::vector<double>> u(n, std::vector<double>(assumptions.size(), 0.5));
  for (size_t a = 0; a < assumptions.size(); ++a) {
    std::mt19937_64 rng(seed ^ StableHash(assumptions[a].id));
    std::vector<size_t> slice(n);
    for (size_t i = 0; i < n; ++i) slice[i] = i;
    for (size_t i = n; i > 1; --i) std::swap(slice[i - 1], slice[rng() % i]);  // Fisher-Yates
    for (size_t d = 0; d < n; ++d) {
      const double within = static_cast<double>(rng() >> 11) * 0x1.0p-53;
      u[d][a] = (static_cast<double>(slice[d]) + within) / static_cast<double>(n);
    }
  }
  return u;
}

int UncertaintyCommand(const LabPaths& paths, const RunRequest& request,
                       const std::atomic<bool>* cancel, std::ostream& out, std::ostream& err) {
  auto fail = [&](const Status& s, int code) {
    err << "chaoslab: " << s.message() << "\n";
    return code;
  };
  if (request.uncertainty < 1 || request.uncertainty > 10000) {
    return fail(Status::InvalidArgument("--uncertainty: expected 1 to 10000 draws"), 2);
  }
  if (!request.backend.empty() && request.backend != "sim") {
    return fail(Status::InvalidArgument("--uncertainty draws its runs on the simulator; not with "
                                        "--backend " +
                                        request.backend + " (use --backend sim)"),
                2);
  }
  if (request.dashboard || request.dashboard_hold) {
    return fail(Status::InvalidArgument("--dashboard shows real guests; not with --uncertainty"),
                2);
  }
  if (request.draw_hosts < 0) return fail(Status::InvalidArgument("--draw-hosts must be >= 0"), 2);
  std::function<void(const std::string&)> progress;
  if (!request.quiet) progress = [&err](const std::string& line) { err << line << std::endl; };

  // 1. The nominal run: every assumption as written; its load records the assumptions.
  config::Assumptions nominal_assumptions;
  Result<config::ScenarioConfig> sc = LoadScenario(paths, request, &nominal_assumptions);
  if (!sc.ok()) return fail(sc.status(), 2);
  if (sc->backend != config::BackendKind::kSim) {
    return fail(Status::InvalidArgument("scenario " + sc->name +
                                        " runs on real guests; --uncertainty draws its runs on "
                                        "the simulator: add --backend sim"),
                2);
  }
  Result<std::unique_ptr<Journal>> journal = Journal::Open(paths.journal);
  if (!journal.ok()) return fail(journal.status(), 2);
  if (progress) err << "journal: " << paths.journal << "\n";
  SimCliOptions options = SimOptionsOf(request);
  sim::SimStats nominal_stats;
  options.stats = &nominal_stats;
  Result<RunResult> nominal_run = [&] {
    config::AssumptionScope scope(&nominal_assumptions);  // the mix and calibration it reads
    return SimulateOnce(*sc, NewSimRunId(), "", 0, options, progress);
  }();
  if (!nominal_run.ok())
    return fail(nominal_run.status(), SimFailureExitCode(nominal_run.status()));
  const std::vector<config::Assumption> assumptions = nominal_assumptions.list();

  // 2. The draws. A mix's organisations are independent: one draw at a time on all threads. A
  // single organisation runs on one thread: then draws run side by side, one a thread.
  const std::vector<std::vector<double>> quantiles =
      LatinHypercube(assumptions, request.uncertainty, sc->seed);
  const bool mix = !sc->mix_file.empty();
  const int cores = request.sim_threads > 0
                        ? request.sim_threads
                        : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  SimCliOptions draw_options = options;
  draw_options.stats = nullptr;
  draw_options.threads = mix ? cores : 1;
  const bool scaled = mix && request.draw_hosts > 0 && request.draw_hosts < nominal_stats.hosts;
  if (scaled) draw_options.world_hosts = request.draw_hosts;
  const int workers = mix ? 1 : std::min(cores, request.uncertainty);
  if (progress) {
    progress(fmt::format("uncertainty: {} draws of {} ranged assumption(s) on {} thread(s)",
                         request.uncertainty, assumptions.size(), cores));
  }
  const std::vector<double> plot_times = PlotTimes();
  std::vector<RunFigures> draws;
  if (Status s = RunDraws(paths, request, assumptions, quantiles, draw_options, workers, cancel,
                          plot_times, progress, &draws);
      !s.ok()) {
    return fail(s, SimFailureExitCode(s));
  }
  if (cancel != nullptr && cancel->load()) {
    err << "chaoslab: interrupted: the draws are not complete; nothing was journalled\n";
    return 130;
  }

  // 3. The report, journalled with the nominal run (its inputs), printed, written.
  std::string method = fmt::format(
      "Each draw: every ranged assumption uniform within its range (a Latin hypercube of {} "
      "draws: each range in {} equal slices, each slice once), the scenario's seed {} in every "
      "run.",
      request.uncertainty, request.uncertainty, sc->seed);
  if (scaled) {
    method += fmt::format(
        " Each draw simulates the mix's world at {} hosts (every archetype's organisations in "
        "proportion to its share; --draw-hosts), the nominal run at {}.",
        request.draw_hosts, nominal_stats.hosts);
  }
  const RunFigures nominal = FiguresOf(*nominal_run, plot_times);
  const UncertaintyReport report =
      BuildReport(*nominal_run, nominal, assumptions, quantiles, draws, plot_times, method);
  nlohmann::json inputs = nlohmann::json::parse(nominal_run->inputs, nullptr, false);
  if (inputs.is_discarded() || !inputs.is_object()) inputs = nlohmann::json::object();
  nlohmann::json summary = UncertaintyJson(report);
  summary.erase("band");  // the plot's points: the page has them
  inputs["uncertainty"] = std::move(summary);
  nominal_run->inputs = JsonText(inputs);
  if (Status s = JournalSimRun(journal->get(), &*nominal_run); !s.ok()) return fail(s, 1);
  if (!request.stats_json.empty()) {
    nlohmann::json j = {{"uncertainty_draws", request.uncertainty},
                        {"assumptions", assumptions.size()},
                        {"sim_hosts", nominal_stats.hosts},
                        {"draw_hosts", scaled ? request.draw_hosts : nominal_stats.hosts}};
    if (const double hwm = PeakRssMib(); hwm > 0) j["peak_rss_mib"] = hwm;
    std::ofstream(request.stats_json) << j.dump(2) << "\n";
  }
  if (request.json) {
    out << JsonText(UncertaintyJson(report)) << "\n";
  } else {
    PrintUncertainty(report, out);
  }
  if (!request.html.empty()) {
    Status s = WriteUncertaintyHtml(
        report,
        "chaoslab run " + report.scenario + " --uncertainty " + std::to_string(request.uncertainty),
        request.html);
    if (!s.ok()) return fail(s, 1);
    if (!request.quiet) err << "HTML report: " << request.html << "\n";
  }
  if (!nominal_run->journal_error.empty()) {
    err << "chaoslab: run " << nominal_run->run_id
        << ": the journal is incomplete (results above are): " << nominal_run->journal_error
        << "\n";
    return 1;
  }
  return 0;
}

}  // namespace chaoslab
