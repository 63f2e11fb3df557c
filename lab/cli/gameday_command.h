// `chaoslab gameday SCENARIO`: a training exercise on real guests. The scenario runs in real time
// (scenario clock = wall clock) from a little before the release, the dashboard serves the fleet,
// consoles, key-escrow page and instructor controls on loopback, and the runbook is the trainees'
// checklist, not the lab's automation: hosts crash and boot-loop by themselves, and people fix
// them by typing at their consoles. At the end the debrief compares the team with the best
// automated runbook on the same scenario (simulated with the checked-in calibration).
#pragma once

#include <atomic>
#include <optional>
#include <ostream>
#include <string>

#include "lab/cli/lab_paths.h"

namespace chaoslab {

struct GamedayRequest {
  std::string scenario_path;
  std::string setup;                          // name or YAML; empty = the scenario's
  std::string runbook = "manual";             // the trainees' checklist
  std::string baseline = "safe-mode-delete";  // the automated runbook the debrief compares with
  std::string calibration;                    // the simulator's; empty = the default
  int port = 0;                               // dashboard port; 0 = a random free one
  int max_vms = 0;
  int max_booting = -1;
  double lead_s = 90;                    // the exercise starts this long before the release
  std::optional<double> revert_after_s;  // the vendor's revert, after the release (default: the
                                         // scenario's)
  bool start_now = false;                // do not wait for the instructor's "start"
  bool hold = true;                      // keep serving the debrief until Ctrl-C
  bool quiet = false;
  bool json = false;
};

// Exit codes as `chaoslab run`: 0 finished, 1 failed, 2 bad input, 130 interrupted.
int GamedayCommand(const LabPaths& paths, const GamedayRequest& request,
                   const std::atomic<bool>* cancel, std::ostream& out, std::ostream& err);

}  // namespace chaoslab
