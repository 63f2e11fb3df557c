// The journal: one SQLite file holding every run, its hosts and its events, written as the run goes
// so a killed run can still be reported. Schema in journal.cc (versioned; a newer schema is
// refused).
//
// Not thread-safe: one Journal per thread.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lab/common/status.h"
#include "lab/report/results.h"

namespace chaoslab {

struct JournalEvent {
  std::string run_id;
  long long seq = 0;      // order within the run (assigned by the journal when 0)
  double scenario_s = 0;  // scenario clock
  long long wall_us = 0;  // microseconds since the run started
  std::string host_id;    // empty for fleet-wide events
  std::string kind;       // e.g. "state", "crash", "console", "release", "revert", "step"
  std::string detail;
};

struct RunSummaryRow {
  std::string run_id, scenario, runbook, backend, status, started_at;
  int hosts = 0;
  double wall_s = 0;
};

class Journal {
 public:
  // Opens (creating if needed) the journal file. Parent folders are created.
  static Result<std::unique_ptr<Journal>> Open(const std::string& path);
  virtual ~Journal() = default;

  virtual Status BeginRun(const RunResult& run, const std::string& config_json) = 0;
  virtual Status AppendEvent(const JournalEvent& event) = 0;
  // Writes the current per-host results (upsert); called whenever a host's figures change.
  virtual Status SaveHost(const std::string& run_id, const HostResult& host) = 0;
  // Final status and figures of the run.
  virtual Status FinishRun(const RunResult& run) = 0;

  virtual Result<std::vector<RunSummaryRow>> ListRuns() = 0;
  // Rebuilds a run's result from the file (also for runs that were killed: status "interrupted").
  // `run_id` may be a unique prefix, or "last".
  virtual Result<RunResult> LoadRun(const std::string& run_id) = 0;
  virtual Result<std::vector<JournalEvent>> LoadEvents(const std::string& run_id) = 0;
};

}  // namespace chaoslab
