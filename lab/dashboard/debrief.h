// The game day's debrief: what the team did against the best automated runbook on the same
// scenario. Pure (data in, JSON out), so it is tested without a run.
//
// Curves are "hosts down" over scenario seconds since the release: a host counts from its first
// crash until it is healthy again (HostResult::first_crash_s / recovered_at_s). Mistakes come from
// the journal: wrong recovery passwords (the console's `cmd=unlock rc=1 reason=bad-password`),
// `restart` typed before a successful `del` since the last boot-menu choice, a reimage (all local
// data gone where deleting one file would have done), and a restart typed while the faulty
// content was still out (before the revert the host fetches it again).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lab/journal/journal.h"
#include "lab/report/results.h"

namespace chaoslab::dashboard {

struct Baseline {
  RunResult run;    // the automated runbook's run (simulated or from the journal)
  std::string how;  // said on the page: where the baseline comes from
  bool available = false;
};

// [[t, down], ...] from t = 0 (the release), one point per change.
nlohmann::json DownCurve(const RunResult& run);

nlohmann::json MakeDebrief(const RunResult& team, const std::vector<JournalEvent>& events,
                           const std::vector<JournalAction>& actions, const Baseline& baseline,
                           double revert_s);

}  // namespace chaoslab::dashboard
