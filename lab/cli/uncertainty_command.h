// `chaoslab run SCENARIO --uncertainty N` (docs/UNCERTAINTY.md): the scenario on the simulator
// once with every ranged assumption of its playbooks as written (the nominal run, journalled like
// any run), then N times with the assumptions drawn from their ranges (a Latin hypercube:
// uniform within each range, every range cut into N equal slices each used once). Reports the
// recovery curve and the service downtimes with their median and 5-95 % band, and which
// assumptions move them most (lab/report/uncertainty.h).
#pragma once

#include <atomic>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "lab/cli/lab_paths.h"
#include "lab/cli/run_command.h"
#include "lab/config/assumptions.h"

namespace chaoslab {

// [draw][assumption]: where in its range (0..1) each assumption is in each of `draws` draws. A
// Latin hypercube: each assumption's range in `draws` equal slices, each slice drawn once, in an
// order and at a point within it from a stream seeded by (seed, assumption id), so one
// assumption's draws do not change when another is added.
std::vector<std::vector<double>> LatinHypercube(const std::vector<config::Assumption>& assumptions,
                                                int draws, uint64_t seed);

// Exit codes as RunCommand: 0 done, 1 a run or the journal failed, 2 bad input, 130 `cancel` was
// set (checked between draws; nothing is journalled then).
int UncertaintyCommand(const LabPaths& paths, const RunRequest& request,
                       const std::atomic<bool>* cancel, std::ostream& out, std::ostream& err);

}  // namespace chaoslab
