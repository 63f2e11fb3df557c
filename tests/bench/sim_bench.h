// The "sim" section of chaoslab-bench: the fleet simulator (lab/sim) at world scale.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "lab/common/status.h"

namespace chaoslab::bench {

// Runs `chaoslab run playbooks/scenarios/global-2024.yaml` (8.5 million hosts) as a child process
// and at 10^4, 10^5, 10^6 hosts (the same mix, `hosts:` scaled), measuring each child's wall time
// and peak RSS (wait4); and the simulator's event heap on a synthetic event mix on one core.
// Figures: sim_global_2024_wall_s, sim_global_2024_peak_rss_mib, sim_global_2024_events,
// engine_events_per_s, sim_scaling (a list of {hosts, wall_s, sim_wall_s, peak_rss_mib, events}).
// With CHAOSLAB_BENCH_BASELINE naming another chaoslab binary (`make bench BENCH_BASELINE=REV`
// builds one), also sim_global_2024_side_by_side: global-2024 by both, alternately, three times
// each (medians of wall, user time and peak RSS; same_results: both printed the same results).
Result<nlohmann::json> SimSection(const std::string& source_dir, const std::string& bin_dir,
                                  const std::string& work_dir);

}  // namespace chaoslab::bench
