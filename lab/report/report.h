// Printing a run's results: a readable table for people, one JSON object for programs.
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "lab/report/results.h"

namespace chaoslab {

// The results table: fleet and per-group figures, then one row per host.
void PrintTable(const RunResult& run, std::ostream& out);

// The reboot race per network profile, over one run or the repetitions of a comparison cell: hosts
// that needed reboots, boot attempts, how many reboots each recovered host needed, and the race's
// fetch times measured in the guests. Profiles in the order first seen.
// Rows weigh by HostResult::weight (a simulated run's row may stand for many hosts).
struct RaceFigures {
  std::string network;
  long long hosts = 0;
  long long attempts = 0;  // reboots made (boot attempts after the revert)
  // (reboots, hosts): how many hosts came back by rebooting after that many reboots, by reboots
  std::vector<std::pair<int, long long>> recovered_after;
  long long never = 0;        // hosts that did not come back by rebooting
  std::vector<int> fetch_ms;  // the guests' ms= of every boot whose fetch finished
  long long recovered() const {
    long long n = 0;
    for (const auto& [reboots, hosts_n] : recovered_after) n += hosts_n;
    return n;
  }
};
std::vector<RaceFigures> RebootRace(const std::vector<const RunResult*>& runs);
// Prints RebootRace as a table (nothing when no host rebooted), with the first run's `method`.
void PrintRebootRace(const std::vector<const RunResult*>& runs, std::ostream& out);
// {"run_id", "scenario", ..., "fleet": {...}, "groups": [{name, hosts, exposed, crash_rate,
//  boot_loop_rate, recovered, ...}], "hosts": [{id, group, crashes, first_crash_s, boot_loop,
//  recovered, time_to_recover_s, ...}]}
nlohmann::json ToJson(const RunResult& run);
// ToJson as the text `--json` prints (indent 2). Guest-supplied text (a stop code) that is not
// valid UTF-8 comes out with U+FFFD instead of stopping the output.
std::string ToJsonText(const RunResult& run);

}  // namespace chaoslab
