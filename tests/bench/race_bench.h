// The "race" section of chaoslab-bench (issue 16): tests/bench/race/race-bench.yaml (the reboot
// race) run through the real `chaoslab run` once per network profile (60 wired, 20 Wi-Fi and 4 VPN
// guests: 60+ boot attempts each), all of it twice: on the machine as it is, and beside two
// CPU-burning processes the section starts and stops itself. Per profile it prints wins per boot
// with 95 % Wilson intervals and the loaded-minus-idle difference (Newcombe interval). Figures:
//   race_<net>_<idle|loaded>_{win_per_boot,low,high,attempts}, race_<net>_diff_pp{,_low,_high},
//   race_<idle|loaded>_wall_s, race_<idle|loaded>_loadavg_1m, race_burners.
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

#include "lab/common/status.h"

namespace chaoslab::bench {

struct RaceBenchOptions {
  std::string source_dir;  // repository root
  std::string bin_dir;     // chaoslab
  std::string work_dir;    // journal and runtime folder of the two runs
  int burners = 2;
};

// Fills `out` with what it measured; the first error otherwise (no burner outlives the call).
Status RaceSection(const RaceBenchOptions& options, std::ostream& log, nlohmann::json* out);

}  // namespace chaoslab::bench
