// The journal: one SQLite file holding every run, its hosts, services and events, and the
// comparisons runs belong to, written as the run goes so a killed run can still be reported.
// Schema in journal.cc (versioned; older files are migrated in place when opened, a newer schema
// is refused).
//
// Not thread-safe: one Journal per thread. Several processes (runs, reports) may share one file;
// each write waits up to kJournalLockWait for the others' locks.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lab/common/status.h"
#include "lab/report/compare.h"
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

// One thing a person did during a game day (`chaoslab gameday`): a line typed at a host's console,
// a boot-menu choice, a key fetched from the escrow page, an instructor's inject, an answer to an
// ETA question. Kept apart from `events` (what the lab and the machines did) so a debrief can list
// people's actions on their own.
struct JournalAction {
  std::string run_id;
  long long seq = 0;      // order within the run (assigned by the journal when 0)
  double scenario_s = 0;  // scenario clock when the engine took it
  long long wall_us = 0;  // microseconds since the run started
  std::string role;       // "trainee" or "instructor"
  std::string host_id;    // empty when the action is not about one host
  std::string kind;       // e.g. "console", "boot", "key-fetch", "pause", "inject", "eta-answer"
  std::string detail;     // the typed line, the boot target, the inject, the answer
  std::string keys;       // console: the raw keystrokes of the line (edits included), else empty
};

struct RunSummaryRow {
  std::string run_id, scenario, runbook, backend, status, started_at;
  int hosts = 0;
  double wall_s = 0;
  std::string setup;
  std::string comparison_id;  // empty for a plain `chaoslab run`
  int repetition = 0;
};

struct ComparisonSummaryRow {
  std::string id, scenario;
  std::string
      status;  // "running", "finished", "interrupted" (killed), or what FinishComparison set
  std::string started_at;
  int runs = 0;           // runs begun
  int finished_runs = 0;  // runs that count as repetitions
  int cells = 0;          // distinct (runbook, setup) pairs
};

// How long a write waits for a lock another connection holds before it fails with Unavailable.
inline constexpr std::chrono::milliseconds kJournalLockWait{120'000};

class Journal {
 public:
  // Opens (creating if needed) the journal file. Parent folders are created.
  static Result<std::unique_ptr<Journal>> Open(const std::string& path);
  virtual ~Journal() = default;

  // Records a run as "running" with its hosts, setup, release_s, comparison_id, repetition and
  // inputs.
  // A run of a comparison needs BeginComparison first (FailedPrecondition otherwise).
  virtual Status BeginRun(const RunResult& run) = 0;
  virtual Status AppendEvent(const JournalEvent& event) = 0;
  // A person's action in a game day (schema version 6).
  virtual Status AppendAction(const JournalAction& action) = 0;
  virtual Result<std::vector<JournalAction>> LoadActions(const std::string& run_id) = 0;
  // Writes the current per-host results (upsert); called whenever a host's figures change.
  virtual Status SaveHost(const std::string& run_id, const HostResult& host) = 0;
  // Replaces the run's service results (also done by FinishRun).
  virtual Status SaveServices(const std::string& run_id,
                              const std::vector<ServiceResult>& services) = 0;
  // Final status and figures of the run: status, wall and scenario end, release_s, hosts and
  // services, in one transaction.
  virtual Status FinishRun(const RunResult& run) = 0;

  // A comparison groups the runs of one `chaoslab compare`. Each run is written as usual
  // (BeginRun … FinishRun with comparison_id set) as soon as it finishes, so a killed compare
  // keeps its finished repetitions. FailedPrecondition when the id exists.
  virtual Status BeginComparison(const std::string& id, const std::string& scenario,
                                 const std::string& config_json) = 0;
  // Marks it "finished" (or another status). A comparison never finished whose process is gone
  // is reported "interrupted".
  virtual Status FinishComparison(const std::string& id, const std::string& status) = 0;
  // Newest first.
  virtual Result<std::vector<ComparisonSummaryRow>> ListComparisons() = 0;
  // The comparison and all its runs in the order they began (unfinished ones included; the
  // comparison statistics leave them out). `id` may be a unique prefix, or "last".
  virtual Result<Comparison> LoadComparison(const std::string& id) = 0;

  virtual Result<std::vector<RunSummaryRow>> ListRuns() = 0;
  // Rebuilds a run's result from the file (also for runs that were killed: status "interrupted").
  // `run_id` may be a unique prefix, or "last".
  virtual Result<RunResult> LoadRun(const std::string& run_id) = 0;
  virtual Result<std::vector<JournalEvent>> LoadEvents(const std::string& run_id) = 0;
};

}  // namespace chaoslab
