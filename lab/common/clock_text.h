// Wall-clock time as text, one spelling for every record the lab writes.
#pragma once

#include <string>

namespace chaoslab {

// Now, as ISO 8601 UTC: "2026-11-27T09:36:10Z" (RunResult::started_at, journal rows).
std::string IsoNowUtc();

}  // namespace chaoslab
