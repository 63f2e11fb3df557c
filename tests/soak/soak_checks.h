// What the fault soak checks once a run has ended (tests/soak): the journal read back directly
// (SQLite's own integrity check, the run's events), and whether everything the lab acknowledged
// while it ran — state changes and crashes on its progress output, events pushed to the
// dashboard's feed — is among those events.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "lab/engine/engine.h"
#include "tests/soak/dashboard_abuse.h"

namespace chaoslab::soak {

using chaoslab::ClockText;  // the engine's, which wrote the progress lines being parsed

struct JournalRow {
  int64_t seq = 0;
  double scenario_s = 0;
  int64_t wall_us = 0;
  std::string host, kind, detail;
};

struct JournalView {
  std::string error;      // the file could not be read ("" when it could)
  std::string integrity;  // PRAGMA integrity_check: "ok", or what it found
  std::vector<JournalRow> events;
};

// Opens the journal read-only (waiting up to 120 s for a lock) and reads `run_id`'s events.
JournalView ReadJournal(const std::string& path, const std::string& run_id);

// One acknowledgement on the lab's progress output (stderr of `chaoslab run`):
//   "04:09:56  ws-711-02      healthy -> crashed: PAGE_FAULT..."  a state change (kind "state",
//       key: the detail's first line — a lost host's reason may go on over several lines)
//   "04:18:51  ws-711-03      crashed again (reboot 17 of 1000)"  a crash (kind "crash", key:
//       the scenario clock as printed)
struct ProgressAck {
  std::string host, kind, key, line;
};
std::vector<ProgressAck> ParseProgress(const std::string& progress,
                                       const std::set<std::string>& hosts);

// Acknowledgements with no journal event behind them (each event answers one acknowledgement).
std::vector<ProgressAck> UnjournaledProgress(const std::vector<ProgressAck>& acks,
                                             const std::vector<JournalRow>& events);
// Events pushed to the dashboard with no journal event of the same host, kind and wall time.
std::vector<PushedEvent> UnjournaledPushes(const std::set<PushedEvent>& pushed,
                                           const std::vector<JournalRow>& events);

}  // namespace chaoslab::soak
