// The "journal" section of chaoslab-bench: how long one Journal::AppendEvent takes (the engine
// appends one per guest event while a run goes).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "lab/common/status.h"

namespace chaoslab::bench {

// Appends `events` console-like events to a new journal in a temporary folder under `work_dir`
// (removed afterwards) and returns journal_append_p50_us, journal_append_p99_us,
// journal_append_max_us and journal_appends.
Result<nlohmann::json> JournalSection(const std::string& work_dir, int events);

}  // namespace chaoslab::bench
