#include "lab/cli/gameday_command.h"

#include <fmt/format.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "agents/sensor/channel_file.h"
#include "lab/cli/run_command.h"
#include "lab/cli/sim_command.h"
#include "lab/config/config_loader.h"
#include "lab/dashboard/dashboard_server.h"
#include "lab/dashboard/debrief.h"
#include "lab/engine/engine.h"
#include "lab/journal/journal.h"

namespace chaoslab {
namespace {

// The "second bad update" inject: the same malformed file as a newer version (after the revert's).
constexpr uint32_t kSecondFaultVersion = 4;

std::string StepLine(const config::StepConfig& step) {
  std::string line(config::StepKindName(step.kind));
  if (step.kind == config::StepKind::kBoot)
    line += " " + std::string(config::BootTargetName(step.into));
  if (step.kind == config::StepKind::kDelete) line += " " + step.pattern;
  if (step.when.bitlocker) line += *step.when.bitlocker ? " (BitLocker hosts)" : " (unencrypted)";
  return line;
}

// The automated runbook on the simulator, same scenario, setup and seed: the debrief's yardstick.
dashboard::Baseline SimulatedBaseline(const config::ScenarioConfig& played,
                                      const GamedayRequest& request) {
  dashboard::Baseline b;
  Result<std::string> path = config::FindPlaybook(played, "runbooks", request.baseline);
  Result<config::RunbookConfig> runbook =
      path.ok() ? config::LoadRunbook(*path) : Result<config::RunbookConfig>(path.status());
  if (!runbook.ok()) {
    b.how = "no baseline: " + runbook.status().message();
    return b;
  }
  Result<config::ScenarioConfig> sc = config::Recombine(played, nullptr, &*runbook);
  if (!sc.ok()) {
    b.how = "no baseline: " + sc.status().message();
    return b;
  }
  SimCliOptions options;
  options.calibration = request.calibration;
  options.threads = 1;
  Result<RunResult> r = RunSimOnce(*sc, "gameday-baseline", "", 0, nullptr, options, nullptr);
  if (!r.ok()) {
    b.how = "no baseline: the simulator failed: " + r.status().message();
    return b;
  }
  b.run = std::move(*r);
  b.available = true;
  b.how = fmt::format(
      "Modelled, not played: runbook {} on the simulator (--backend sim) with the {} "
      "calibration, same scenario, setup, release, revert and seed as this game day. Its human "
      "steps take the runbook's modelled durations.",
      runbook->name, request.calibration.empty() ? "checked-in" : request.calibration);
  return b;
}

}  // namespace

int GamedayCommand(const LabPaths& paths, const GamedayRequest& request,
                   const std::atomic<bool>* cancel, std::ostream& out, std::ostream& err) {
  std::unique_ptr<dashboard::DashboardServer> board;
  std::unique_ptr<LiveView> view;  // the engine's view of the board, while the run lasts
  config::ScenarioConfig played;   // the scenario as adjusted (for the baseline)
  dashboard::RunInfo info;
  std::string run_id;
  Status board_error;

  RunRequest run;
  run.scenario_path = request.scenario_path;
  run.setup = request.setup;
  run.runbook = request.runbook;
  run.max_vms = request.max_vms;
  run.max_booting = request.max_booting;
  run.quiet = request.quiet;
  run.json = request.json;
  run.backend = "qemu";
  run.adjust_scenario = [&](config::ScenarioConfig* sc) -> Status {
    if (request.lead_s < 0) return Status::InvalidArgument("--lead must not be negative");
    // Real time from a little before the release: nobody waits for 04:00-04:09 to pass.
    sc->rollout.start = std::max(0.0, sc->rollout.release - request.lead_s);
    if (request.revert_after_s) {
      if (*request.revert_after_s <= 0)
        return Status::InvalidArgument("--revert-after must be positive");
      sc->rollout.revert = sc->rollout.release + *request.revert_after_s;
    }
    // The exercise ends when the instructor ends it, the fleet is back, or the scenario's
    // deadline: wall time runs 1:1, so the wall limit is the deadline (plus pauses' slack).
    sc->stop.max_wall = sc->stop.max_scenario + 4 * 3600;
    played = *sc;

    info.scenario = sc->name;
    info.runbook = sc->runbook.name;
    info.setup = sc->setup.name;
    info.start_s = sc->rollout.start;
    info.release_s = sc->rollout.release;
    info.revert_s = sc->rollout.revert;
    info.gameday = true;
    for (const auto& svc : sc->setup.services) info.services.push_back(svc.name);
    for (const auto& step : sc->runbook.steps) info.checklist.push_back(StepLine(step));
    dashboard::DashboardServer::Options options;
    options.port = request.port;
    options.assets_dir = paths.dashboard_assets;
    options.run = info;
    options.gameday = true;
    for (const auto& site : sc->setup.sites) options.technicians[site.name] = site.technicians;
    for (const auto& g : sc->setup.groups) {
      std::string site =
          g.site.empty() && !sc->setup.sites.empty() ? sc->setup.sites.front().name : g.site;
      for (int i = 1; i <= g.count; ++i) options.site_of[config::HostName(g.name, i)] = site;
    }
    Result<std::unique_ptr<dashboard::DashboardServer>> started =
        dashboard::DashboardServer::Start(std::move(options));
    if (!started.ok()) return started.status();
    board = std::move(*started);
    // Printed even with --quiet: the URLs are what a game day is for.
    err << "gameday: " << board->Url(false) << " (trainee)\n"
        << "gameday: " << board->Url(true) << " (instructor)\n"
        << (request.start_now ? "gameday: starting now"
                              : "gameday: waiting for the instructor to press Start")
        << std::endl;
    return Status::Ok();
  };
  run.wire_engine = [&](EngineOptions* eo) {
    dashboard::DashboardServer* b = board.get();
    run_id = eo->run_id;
    info.run_id = eo->run_id;
    b->SetRunInfo(info);
    eo->realtime = true;
    eo->manual = true;
    eo->wait_for_start = !request.start_now;
    view = std::make_unique<dashboard::DashboardLiveView>(b, true);
    eo->live = view.get();
    // Shares the escrow: it lives as long as the page needs it.
    b->SetKeyEscrow([escrow = eo->escrow](const std::string& host) -> Result<std::string> {
      if (!escrow) return Status::Unavailable("no key escrow in this lab");
      return escrow->FetchKey(host);
    });
    eo->second_fault = eo->fault;
    eo->second_fault.version = kSecondFaultVersion;
    eo->second_fault.file_name = content::ChannelFileName(kSecondFaultVersion);
    eo->second_fault.bytes =
        content::MakeChannelFile(content::ChannelFileKind::kChannel291, kSecondFaultVersion);
  };

  const int code = RunCommand(paths, run, cancel, out, err);
  if (!board) return code;       // stopped before the exercise began
  board->SetKeyEscrow(nullptr);  // the run is over: the escrow page answers 503 again
  if (run_id.empty() || code == 2) {
    board->End("failed");
    return code;
  }
  board->End(code == 0 ? "finished" : code == 130 ? "interrupted" : "failed");

  // The debrief, from the journal: what the team did, against the automated runbook.
  Result<std::unique_ptr<Journal>> journal = Journal::Open(paths.journal);
  if (!journal.ok()) {
    err << "chaoslab: debrief: " << journal.status().message() << "\n";
    return code == 0 ? 1 : code;
  }
  Result<RunResult> team = (*journal)->LoadRun(run_id);
  Result<std::vector<JournalEvent>> events = (*journal)->LoadEvents(run_id);
  Result<std::vector<JournalAction>> actions = (*journal)->LoadActions(run_id);
  if (!team.ok() || !events.ok() || !actions.ok()) {
    err << "chaoslab: debrief: cannot read run " << run_id << " back from the journal\n";
    return code == 0 ? 1 : code;
  }
  if (!request.quiet) err << "gameday: debrief: simulating runbook " << request.baseline << "\n";
  dashboard::Baseline baseline = SimulatedBaseline(played, request);
  nlohmann::json debrief =
      dashboard::MakeDebrief(*team, *events, *actions, baseline, played.rollout.revert);
  board->SetDebrief(debrief);
  err << fmt::format(
             "gameday: debrief: {} of {} crashed host(s) recovered by the team, {} "
             "mistake(s), {} key(s) fetched",
             team->fleet.recovered, team->fleet.crashed, debrief["mistakes"].size(),
             debrief["keys_fetched"].get<int>())
      << std::endl;
  if (request.hold && code != 130) {
    err << "gameday: the exercise is over; the debrief is at " << board->Url(true)
        << " until Ctrl-C" << std::endl;
    while (!(cancel && cancel->load())) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return code;
}

}  // namespace chaoslab
