// What a run measured: per host, per group, for the fleet. Times are scenario seconds.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace chaoslab {

struct HostResult {
  std::string id;
  std::string group;
  std::string final_state;  // host lifecycle state name at the end of the run
  bool exposed = false;     // received the faulty content
  int crashes = 0;          // bugchecks observed on the real machine (QMP GUEST_PANICKED)
  bool boot_loop = false;   // reached boot-loop (2 crashes without healthy in between)
  bool recovered = false;   // healthy again after crashing
  int reboots = 0;          // reboots the runbook made
  std::optional<double> first_crash_s;      // scenario seconds after release
  std::optional<double> time_to_recover_s;  // first crash → healthy again
  std::string
      stop_code;  // last bugcheck name seen on the console, e.g. PAGE_FAULT_IN_NONPAGED_AREA
};

struct GroupResult {
  std::string name;  // group name, or "fleet"
  int hosts = 0;
  int exposed = 0;
  int crashed = 0;
  int boot_looped = 0;
  int recovered = 0;
  int failed = 0;
  int lost = 0;
  double crash_rate = 0;         // crashed / exposed (0 when nothing was exposed)
  double boot_loop_rate = 0;     // boot_looped / exposed
  std::optional<double> mttr_s;  // mean time to recover of recovered hosts
};

struct RunResult {
  std::string run_id;
  std::string scenario;
  std::string runbook;
  std::string backend;
  unsigned long long seed = 0;
  std::string status;         // "running", "finished", "interrupted", "failed"
  std::string started_at;     // wall clock, ISO 8601 UTC
  double wall_s = 0;          // wall seconds the run took
  double scenario_end_s = 0;  // scenario clock when the run ended (seconds since midnight)
  GroupResult fleet;
  std::vector<GroupResult> groups;
  std::vector<HostResult> hosts;
};

// Recomputes group and fleet figures from hosts (groups listed in the order first seen).
void Summarize(RunResult* run);

}  // namespace chaoslab
