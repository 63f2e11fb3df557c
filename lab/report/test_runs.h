// Hand-made runs for the report tests (compare, HTML, browser): small fleets whose figures are
// easy to work out by hand.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "lab/report/results.h"

namespace chaoslab::testing_runs {

// One run of `runbook` in `setup`: one host per entry of `recovered_at` (seconds after release;
// nullopt = never recovered, ends failed), every host exposed and crashing at release + 0.
inline RunResult MakeRun(const std::string& runbook, const std::string& setup, int repetition,
                         const std::vector<std::optional<double>>& recovered_at,
                         std::vector<ServiceResult> services = {}) {
  RunResult run;
  run.run_id = runbook + "-" + setup + "-" + std::to_string(repetition);
  run.comparison_id = "c-test";
  run.scenario = "channel-291";
  run.runbook = runbook;
  run.setup = setup;
  run.backend = "sim";
  run.status = "finished";
  run.repetition = repetition;
  run.release_s = 4 * 3600 + 9 * 60;
  run.scenario_end_s = run.release_s + 4 * 3600;
  for (size_t i = 0; i < recovered_at.size(); ++i) {
    HostResult h;
    h.id = "ws-" + std::to_string(i + 1);
    h.group = i % 2 ? "servers" : "workstations";
    h.exposed = true;
    h.crashes = 1;
    h.first_crash_s = 0;
    if (recovered_at[i]) {
      h.final_state = "healthy";
      h.recovered = true;
      h.recovered_at_s = *recovered_at[i];
      h.time_to_recover_s = *recovered_at[i];
    } else {
      h.final_state = "failed";
      h.boot_loop = true;
      h.crashes = 2;
    }
    run.hosts.push_back(h);
  }
  run.services = std::move(services);
  Summarize(&run);
  return run;
}

inline std::vector<std::optional<double>> Times(int hosts, double at, int never = 0) {
  std::vector<std::optional<double>> times(hosts, at);
  for (int i = 0; i < never; ++i) times.push_back(std::nullopt);
  return times;
}

inline ServiceResult Service(const std::string& name, double downtime_s) {
  ServiceResult s;
  s.name = name;
  s.downtime_s = downtime_s;
  s.down_at_s = 0;
  s.up_again_s = downtime_s;
  return s;
}

// Three runbooks (reboot-15 ×3, safe-mode-delete ×2 plus one interrupted, reimage ×1) with an
// "email" service everywhere and "crew-scheduling" only in the safe-mode-delete runs.
//   reboot-15:        all 10 hosts back at 600 / 900 / 1200 s; email down 1 / 2 / 3 h
//   safe-mode-delete: 9 of 10 back at 300 s, then 8 of 10; email 0.5 h; crew 1 h and 2 h
//   reimage:          4 hosts back at 7200 s, data lost on each; email 2.5 h
inline std::vector<RunResult> ComparisonRuns() {
  std::vector<RunResult> runs;
  runs.push_back(MakeRun("reboot-15", "hospital", 0, Times(10, 600), {Service("email", 3600)}));
  runs.push_back(MakeRun("safe-mode-delete", "hospital", 0, Times(9, 300, 1),
                         {Service("email", 1800), Service("crew-scheduling", 3600)}));
  runs.push_back(MakeRun("reboot-15", "hospital", 1, Times(10, 900), {Service("email", 7200)}));
  runs.push_back(MakeRun("safe-mode-delete", "hospital", 1, Times(8, 300, 2),
                         {Service("email", 1800), Service("crew-scheduling", 7200)}));
  runs.push_back(MakeRun("reboot-15", "hospital", 2, Times(10, 1200), {Service("email", 10800)}));
  RunResult killed = MakeRun("safe-mode-delete", "hospital", 2, Times(3, 100, 7));
  killed.status = "interrupted";
  runs.push_back(killed);
  RunResult reimage = MakeRun("reimage", "hospital", 0, Times(4, 7200), {Service("email", 9000)});
  for (HostResult& h : reimage.hosts) {
    h.data_lost = "all";
    h.data_lost_s = 3 * 3600;
    h.technician_s = 1800;
  }
  Summarize(&reimage);
  runs.push_back(reimage);
  return runs;
}

}  // namespace chaoslab::testing_runs
