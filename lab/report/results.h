// What a run measured: per host, per group, for the fleet. Times are scenario seconds.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace chaoslab {

struct HostResult {
  // Hosts this row stands for: 1 for every host of a VM run; the simulator (lab/sim) folds hosts
  // with the same figures into one row (times are then the row's means) once a fleet is too big
  // for a row per host. Counts, sums and percentiles weigh each row by it.
  long long weight = 1;
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
  // Issue 4: runbooks and setups.
  std::string site;
  std::string role;  // config::RoleName spelling
  bool bitlocker = false;
  std::optional<double> recovered_at_s;  // scenario seconds after release when healthy again
  std::string recovered_by;              // step that brought it back: "reboot", "restart", ...
  int escalations = 0;  // runbooks it moved on to after its own ended without recovery (on_failure)
  double technician_s = 0;  // human time spent on this host (travel + steps)
  double waited_s = 0;      // time the runbook waited for resources on this host
  std::string waited_for;   // the resource it waited for longest ("key-escrow"...)
  int keys_fetched = 0;     // recovery passwords fetched from the escrow for it
  std::string data_lost;    // "" (none), "since-snapshot" or "all"
  double data_lost_s = 0;   // since-snapshot: snapshot → crash; all: host lost everything local
  std::string failed_why;   // for failed/stalled hosts: what stopped the runbook
  // Issue 5: content delivery.
  std::string ring;     // rollout ring the host is in ("" for all-at-once)
  std::string network;  // network profile of its group: wired, wifi, vpn, offline
  // The boot race, measured in the guest: real ms from the sensor starting to newer content having
  // been fetched, for each boot whose fetch completed while booting (won or lost).
  std::vector<int> race_fetch_ms;
};

// A business service defined over host groups (config::ServiceConfig).
struct ServiceResult {
  std::string name;
  double downtime_s = 0;             // scenario seconds down between release and the run's end
  std::optional<double> down_at_s;   // first outage, seconds after release
  std::optional<double> up_again_s;  // back up for good, seconds after release
  bool up_at_end = true;
  // Of downtime_s, the part its hosts were up but it worked off a backlog (or piled one up while
  // an input was not up): ServiceConfig::backlog.
  double catching_up_s = 0;
};

// Time-to-recover statistics of one group or the fleet (recovered hosts only).
struct RecoveryStats {
  std::optional<double> p50_s, p90_s, p99_s;
  // Seconds after release until this share of the hosts is healthy for good (hosts that never
  // crashed count as healthy throughout). Empty when it never got there.
  std::optional<double> healthy_50_s, healthy_90_s, healthy_99_s;
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
  RecoveryStats recovery;
  double technician_s = 0;
  int keys_fetched = 0;
  int data_lost_hosts = 0;  // hosts that lost data (snapshot revert or reimage)
  int escalated = 0;        // hosts whose runbook escalated at least once (on_failure)
  double data_lost_s = 0;   // sum of data_lost_s
};

struct RunResult {
  std::string run_id;
  std::string comparison_id;  // set when the run is one cell repetition of `chaoslab compare`
  std::string scenario;
  std::string runbook;
  std::string setup;
  std::string backend;
  unsigned long long seed = 0;
  std::string status;         // "running", "finished", "interrupted", "failed"
  std::string started_at;     // wall clock, ISO 8601 UTC
  double wall_s = 0;          // wall seconds the run took
  double scenario_end_s = 0;  // scenario clock when the run ended (seconds since midnight)
  GroupResult fleet;
  std::vector<GroupResult> groups;
  std::vector<HostResult> hosts;
  std::vector<ServiceResult> services;
  double release_s = 0;  // scenario time of the release (seconds since midnight)
  int repetition = 0;    // 0-based, within its comparison cell
  // How the run measured, in one or two sentences for reports (lab settings that shape real-time
  // figures: the race window, boots at once, network profiles, the machine's load).
  std::string method;
  // What the run was made of, as a JSON object's text: the files it was read from, the image, the
  // backend and the lab's settings (journal runs.config_json). "{}" when not known.
  std::string inputs = "{}";
  // The first journal write of the run that failed (empty when all succeeded): the figures here
  // are complete, the journal's copy is not. Not stored in the journal.
  std::string journal_error;
};

// When a host was out of service, in scenario seconds after release: from its first crash until it
// was healthy again (`until_s`; empty = not healthy again by the end of the run). Hosts that never
// crashed have no outage, unless the run ended with them failed or lost (then: down from release,
// for good). A recovered host without a recorded recovery time counts as back at its first crash.
// Summarize (time until X % healthy) and the HTML recovery curve both use this one definition.
struct Outage {
  double from_s = 0;
  std::optional<double> until_s;
};
std::optional<Outage> HostOutage(const HostResult& host);

// Recomputes group and fleet figures from hosts (groups listed in the order first seen), including
// RecoveryStats. Services are filled by the engine and left alone.
void Summarize(RunResult* run);

}  // namespace chaoslab
