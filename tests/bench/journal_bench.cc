#include "tests/bench/journal_bench.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "lab/journal/journal.h"
#include "tests/bench/bench_util.h"

namespace chaoslab::bench {

Result<nlohmann::json> JournalSection(const std::string& work_dir, int events) {
  if (events < 1) return Status::InvalidArgument("journal: need at least one event");
  ASSIGN_OR_RETURN(ScratchDir dir, ScratchDir::Make(work_dir, "journal-bench-"));
  ASSIGN_OR_RETURN(std::unique_ptr<Journal> journal, Journal::Open(dir.path() + "/journal.db"));
  RunResult run;
  run.run_id = "bench-journal";
  run.scenario = "bench";
  run.runbook = "none";
  run.backend = "bench";
  run.status = "running";
  run.started_at = "2024-07-19T04:09:00Z";
  RETURN_IF_ERROR(journal->BeginRun(run));

  std::vector<double> micros;
  micros.reserve(events);
  for (int i = 0; i < events; ++i) {
    JournalEvent e;
    e.run_id = run.run_id;
    e.scenario_s = 14820 + i * 0.01;
    e.wall_us = i * 1000LL;
    e.host_id = "ws711-" + std::to_string(i % 16);
    e.kind = "console";
    e.detail = "@@csagent loaded sensor=7.11 channel=291 version=2 uptime=0.61";
    const auto t0 = std::chrono::steady_clock::now();
    Status s = journal->AppendEvent(e);
    const auto t1 = std::chrono::steady_clock::now();
    if (!s.ok()) return s.WithContext("journal: append event " + std::to_string(i));
    micros.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  journal.reset();  // close the file before its folder goes

  nlohmann::json out;
  ASSIGN_OR_RETURN(double p50, Percentile(micros, 50));
  ASSIGN_OR_RETURN(double p99, Percentile(micros, 99));
  out["journal_append_p50_us"] = p50;
  out["journal_append_p99_us"] = p99;
  out["journal_append_max_us"] = *std::max_element(micros.begin(), micros.end());
  out["journal_appends"] = events;
  return out;
}

}  // namespace chaoslab::bench
