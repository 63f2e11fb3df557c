// Printing a run's results: a readable table for people, one JSON object for programs.
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>

#include "lab/report/results.h"

namespace chaoslab {

// The results table: fleet and per-group figures, then one row per host.
void PrintTable(const RunResult& run, std::ostream& out);
// {"run_id", "scenario", ..., "fleet": {...}, "groups": [{name, hosts, exposed, crash_rate,
//  boot_loop_rate, recovered, ...}], "hosts": [{id, group, crashes, first_crash_s, boot_loop,
//  recovered, time_to_recover_s, ...}]}
nlohmann::json ToJson(const RunResult& run);

}  // namespace chaoslab
