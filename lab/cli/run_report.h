// Internal to lab/cli: what a run on real guests records of itself besides its results: its inputs
// for the journal, how its real-time figures were measured, the lab's own figures for `make
// bench`, and the message when its journal is incomplete.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <ostream>
#include <string>

#include "lab/cli/guest_image.h"
#include "lab/cli/run_backend.h"
#include "lab/config/config.h"
#include "lab/engine/engine.h"

namespace chaoslab::run_internal {

// What the journal keeps of a run's inputs (RunResult::inputs): the files it was read from, the
// image and the lab's settings, so that a run found later can be told apart and run again.
nlohmann::json RunInputs(const config::ScenarioConfig& sc, const GuestImage& image,
                         const BackendChoice& backend, int max_booting);

// How real-time figures of a run were measured, for reports (RunResult::method): the guest's
// clock, the race window, the fleet's network profiles, how many guests booted at once, how busy
// the machine was, and at what CPU priority the lab ran.
std::string MethodText(const config::ScenarioConfig& sc, int max_booting,
                       const std::string& guest_clock, const std::string& priority);

// The lab's own figures of a run (latency, CPU) as JSON at `path`, for `make bench`.
Status WriteStats(const std::string& path, const EngineStats& stats, const RunResult& run);

// After the results are printed: a run whose journal writes failed says so and fails (exit 1).
int JournalFailed(const RunResult& run, std::ostream& err);

}  // namespace chaoslab::run_internal
