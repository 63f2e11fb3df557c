#include "lab/journal/journal.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>

namespace chaoslab {
namespace {

namespace fs = std::filesystem;

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("journal_test_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    path_ = (dir_ / "sub" / "journal.db").string();  // parent folders are created by Open
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<Journal> OpenJournal() {
    auto journal = Journal::Open(path_);
    EXPECT_TRUE(journal.ok()) << journal.status().ToString();
    return journal.ok() ? std::move(journal).value() : nullptr;
  }

  // Runs SQL on the file directly, as another tool (or a tamperer) would.
  void RawSql(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
  }

  static RunResult MakeRun(std::string id, std::string started_at) {
    RunResult run;
    run.run_id = std::move(id);
    run.scenario = "channel-291";
    run.runbook = "safe-mode-delete";
    run.backend = "sim";
    run.seed = 18446744073709551615ull;  // the largest seed must survive SQLite's signed integers
    run.started_at = std::move(started_at);
    HostResult ws;
    ws.id = "ws-01";
    ws.group = "workstations";
    ws.final_state = "booting";
    HostResult dc;
    dc.id = "dc-01";
    dc.group = "servers";
    dc.final_state = "booting";
    run.hosts = {ws, dc};
    return run;
  }

  fs::path dir_;
  std::string path_;
};

TEST_F(JournalTest, RoundTrip) {
  auto journal = OpenJournal();
  ASSERT_TRUE(journal);
  RunResult run = MakeRun("r-1", "2024-07-19T04:09:00Z");
  run.inputs = R"({"hosts":2})";
  ASSERT_TRUE(journal->BeginRun(run).ok());
  EXPECT_EQ(journal->BeginRun(run).code(), ErrorCode::kFailedPrecondition);

  ASSERT_TRUE(journal->AppendEvent({"r-1", 0, 100.5, 10, "", "release", "C-00000291"}).ok());
  ASSERT_TRUE(journal->AppendEvent({"r-1", 0, 170, 2500, "ws-01", "crash", "PAGE_FAULT"}).ok());
  ASSERT_TRUE(journal->AppendEvent({"r-1", 10, 180, 2600, "ws-01", "state", "boot-loop"}).ok());
  ASSERT_TRUE(journal->AppendEvent({"r-1", 0, 190, 2700, "dc-01", "state", "healthy"}).ok());
  EXPECT_FALSE(journal->AppendEvent({"r-1", 10, 0, 0, "", "dup", ""}).ok());  // seq taken
  EXPECT_FALSE(journal->AppendEvent({"nope", 0, 0, 0, "", "x", ""}).ok());    // unknown run

  run.hosts[0].final_state = "healthy";
  run.hosts[0].exposed = true;
  run.hosts[0].crashes = 2;
  run.hosts[0].boot_loop = true;
  run.hosts[0].recovered = true;
  run.hosts[0].reboots = 4;
  run.hosts[0].first_crash_s = 69.5;
  run.hosts[0].time_to_recover_s = 600;
  run.hosts[0].stop_code = "PAGE_FAULT_IN_NONPAGED_AREA";
  ASSERT_TRUE(journal->SaveHost("r-1", run.hosts[0]).ok());
  run.hosts[1].final_state = "failed";
  run.status = "finished";
  run.wall_s = 12.5;
  run.scenario_end_s = 23230;
  ASSERT_TRUE(journal->FinishRun(run).ok());
  EXPECT_EQ(journal->FinishRun(MakeRun("r-404", "")).code(), ErrorCode::kNotFound);
  journal.reset();

  journal = OpenJournal();  // a fresh connection reads what the first one wrote
  ASSERT_TRUE(journal);
  auto loaded = journal->LoadRun("r-1");
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->status, "finished");
  EXPECT_EQ(loaded->scenario, "channel-291");
  EXPECT_EQ(loaded->runbook, "safe-mode-delete");
  EXPECT_EQ(loaded->backend, "sim");
  EXPECT_EQ(loaded->seed, 18446744073709551615ull);
  EXPECT_EQ(loaded->started_at, "2024-07-19T04:09:00Z");
  EXPECT_EQ(loaded->inputs, R"({"hosts":2})");  // as BeginRun was given it
  EXPECT_DOUBLE_EQ(loaded->wall_s, 12.5);
  EXPECT_DOUBLE_EQ(loaded->scenario_end_s, 23230);
  ASSERT_EQ(loaded->hosts.size(), 2u);
  const HostResult& ws = loaded->hosts[0];  // order of first save is kept
  EXPECT_EQ(ws.id, "ws-01");
  EXPECT_EQ(ws.group, "workstations");
  EXPECT_EQ(ws.final_state, "healthy");
  EXPECT_TRUE(ws.exposed);
  EXPECT_EQ(ws.crashes, 2);
  EXPECT_TRUE(ws.boot_loop);
  EXPECT_TRUE(ws.recovered);
  EXPECT_EQ(ws.reboots, 4);
  EXPECT_EQ(ws.first_crash_s, 69.5);
  EXPECT_EQ(ws.time_to_recover_s, 600);
  EXPECT_EQ(ws.stop_code, "PAGE_FAULT_IN_NONPAGED_AREA");
  EXPECT_FALSE(loaded->hosts[1].first_crash_s.has_value());
  EXPECT_EQ(loaded->hosts[1].final_state, "failed");
  // Group figures are recomputed from the hosts.
  ASSERT_EQ(loaded->groups.size(), 2u);
  EXPECT_EQ(loaded->groups[0].name, "workstations");
  EXPECT_EQ(loaded->fleet.failed, 1);
  EXPECT_EQ(loaded->fleet.mttr_s, 600);

  auto events = journal->LoadEvents("r-1");
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  ASSERT_EQ(events->size(), 4u);
  EXPECT_EQ((*events)[0].seq, 1);
  EXPECT_EQ((*events)[0].kind, "release");
  EXPECT_EQ((*events)[0].detail, "C-00000291");
  EXPECT_DOUBLE_EQ((*events)[0].scenario_s, 100.5);
  EXPECT_EQ((*events)[1].seq, 2);
  EXPECT_EQ((*events)[1].host_id, "ws-01");
  EXPECT_EQ((*events)[1].wall_us, 2500);
  EXPECT_EQ((*events)[2].seq, 10);
  EXPECT_EQ((*events)[3].seq, 11);  // continues after the highest seq
  EXPECT_EQ((*events)[3].run_id, "r-1");
}

TEST_F(JournalTest, KilledRunIsReportedInterrupted) {
  {
    auto journal = OpenJournal();
    ASSERT_TRUE(journal);
    ASSERT_TRUE(journal->BeginRun(MakeRun("r-killed", "2024-07-19T04:09:00Z")).ok());
    ASSERT_TRUE(
        journal->AppendEvent({"r-killed", 0, 14400 + 90, 3'500'000, "ws-01", "crash", ""}).ok());
    HostResult ws = MakeRun("", "").hosts[0];
    ws.crashes = 1;
    ws.first_crash_s = 90;
    ASSERT_TRUE(journal->SaveHost("r-killed", ws).ok());
    // While this process lives, the run is still running.
    auto live = journal->LoadRun("r-killed");
    ASSERT_TRUE(live.ok());
    EXPECT_EQ(live->status, "running");
  }  // destroyed without FinishRun, like a killed orchestrator

  // A pid above the kernel's pid_max limit (2^22) can never exist.
  RawSql("UPDATE runs SET pid = 99999999 WHERE id = 'r-killed'");
  auto journal = OpenJournal();
  ASSERT_TRUE(journal);
  auto run = journal->LoadRun("r-killed");
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  EXPECT_EQ(run->status, "interrupted");
  EXPECT_DOUBLE_EQ(run->wall_s, 3.5);  // from the last event
  EXPECT_DOUBLE_EQ(run->scenario_end_s, 14490);
  ASSERT_EQ(run->hosts.size(), 2u);
  EXPECT_EQ(run->hosts[0].crashes, 1);
  EXPECT_EQ(run->fleet.crashed, 1);
  auto list = journal->ListRuns();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].status, "interrupted");

  // The same pid with a different start time is a reused pid, not the orchestrator.
  RawSql("UPDATE runs SET pid = " + std::to_string(getpid()) +
         ", pid_start = 1 WHERE id = 'r-killed'");
  EXPECT_EQ(journal->LoadRun("r-killed")->status, "interrupted");
}

TEST_F(JournalTest, PrefixAndLastLookup) {
  auto journal = OpenJournal();
  ASSERT_TRUE(journal);
  ASSERT_TRUE(journal->BeginRun(MakeRun("r-20240719-aaaa", "2024-07-19T04:00:00Z")).ok());
  ASSERT_TRUE(journal->BeginRun(MakeRun("r-20240719-aabb", "2024-07-19T05:00:00Z")).ok());
  ASSERT_TRUE(journal->BeginRun(MakeRun("r-20240719-b", "2024-07-19T03:00:00Z")).ok());
  ASSERT_TRUE(journal->BeginRun(MakeRun("r-20240719-bc", "2024-07-19T02:00:00Z")).ok());

  EXPECT_EQ(journal->LoadRun("r-20240719-aaa")->run_id, "r-20240719-aaaa");
  EXPECT_EQ(journal->LoadRun("last")->run_id, "r-20240719-aabb");
  // An exact id wins even though it is also a prefix of another id.
  EXPECT_EQ(journal->LoadRun("r-20240719-b")->run_id, "r-20240719-b");
  EXPECT_TRUE(journal->LoadEvents("r-20240719-bc").ok());

  auto ambiguous = journal->LoadRun("r-20240719-a");
  ASSERT_FALSE(ambiguous.ok());
  EXPECT_EQ(ambiguous.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(ambiguous.status().message().find("ambiguous"), std::string::npos);
  EXPECT_NE(ambiguous.status().message().find("r-20240719-aaaa"), std::string::npos);
  EXPECT_NE(ambiguous.status().message().find("r-20240719-aabb"), std::string::npos);

  auto unknown = journal->LoadRun("x%");  // LIKE wildcards are not special
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(unknown.status().message(), "no run 'x%' in " + path_);
  EXPECT_EQ(journal->LoadRun("").status().code(), ErrorCode::kInvalidArgument);
}

TEST_F(JournalTest, ListRunsNewestFirst) {
  auto journal = OpenJournal();
  ASSERT_TRUE(journal);
  auto empty = journal->ListRuns();
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  EXPECT_EQ(journal->LoadRun("last").status().code(), ErrorCode::kNotFound);

  ASSERT_TRUE(journal->BeginRun(MakeRun("r-b", "2024-07-19T05:00:00Z")).ok());
  ASSERT_TRUE(journal->BeginRun(MakeRun("r-a", "2024-07-19T06:00:00Z")).ok());
  ASSERT_TRUE(journal->BeginRun(MakeRun("r-c", "2024-07-19T04:00:00Z")).ok());
  ASSERT_TRUE(journal->BeginRun(MakeRun("r-d", "2024-07-19T06:00:00Z")).ok());  // tie: later wins
  RunResult finished = MakeRun("r-c", "2024-07-19T04:00:00Z");
  finished.status = "failed";
  finished.wall_s = 7;
  ASSERT_TRUE(journal->FinishRun(finished).ok());

  auto runs = journal->ListRuns();
  ASSERT_TRUE(runs.ok()) << runs.status().ToString();
  ASSERT_EQ(runs->size(), 4u);
  EXPECT_EQ((*runs)[0].run_id, "r-d");
  EXPECT_EQ((*runs)[1].run_id, "r-a");
  EXPECT_EQ((*runs)[2].run_id, "r-b");
  EXPECT_EQ((*runs)[3].run_id, "r-c");
  EXPECT_EQ((*runs)[3].status, "failed");
  EXPECT_EQ((*runs)[3].wall_s, 7);
  EXPECT_EQ((*runs)[3].hosts, 2);
  EXPECT_EQ((*runs)[3].scenario, "channel-291");
  EXPECT_EQ((*runs)[0].status, "running");  // this process is alive
}

TEST_F(JournalTest, CorruptFileIsCorruptionError) {
  fs::create_directories(fs::path(path_).parent_path());
  {
    std::ofstream junk(path_, std::ios::binary);
    for (int i = 0; i < 512; ++i) junk << "this is not a database ";
  }
  auto journal = Journal::Open(path_);
  ASSERT_FALSE(journal.ok());
  EXPECT_EQ(journal.status().code(), ErrorCode::kCorruption) << journal.status().ToString();
  EXPECT_NE(journal.status().message().find(path_), std::string::npos);
}

TEST_F(JournalTest, ForeignDatabaseAndNewerSchemaAreRefused) {
  fs::create_directories(fs::path(path_).parent_path());
  RawSql("CREATE TABLE photos (id INTEGER)");
  auto foreign = Journal::Open(path_);
  ASSERT_FALSE(foreign.ok());
  EXPECT_EQ(foreign.status().code(), ErrorCode::kCorruption);
  EXPECT_NE(foreign.status().message().find("not a chaoslab journal"), std::string::npos);

  fs::remove(path_);
  ASSERT_TRUE(OpenJournal());
  RawSql("UPDATE schema_version SET version = 99");
  auto newer = Journal::Open(path_);
  ASSERT_FALSE(newer.ok());
  EXPECT_EQ(newer.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(newer.status().message().find("schema version 99"), std::string::npos);
  EXPECT_NE(newer.status().message().find(path_), std::string::npos);
}

TEST_F(JournalTest, DirectoryPathIsAnErrorNotACrash) {
  fs::create_directories(path_);
  auto journal = Journal::Open(path_);
  ASSERT_FALSE(journal.ok());
  EXPECT_NE(journal.status().message().find(path_), std::string::npos);
}

// Many events in a row keep their order and their sequence numbers (the latency of this path is
// measured by `make bench`, not asserted here: timing depends on the machine).
TEST_F(JournalTest, ManyEventsKeepTheirOrder) {
  auto journal = OpenJournal();
  ASSERT_TRUE(journal);
  ASSERT_TRUE(journal->BeginRun(MakeRun("r-many", "2024-07-19T04:09:00Z")).ok());
  for (int i = 0; i < 2000; ++i) {
    ASSERT_TRUE(journal
                    ->AppendEvent({"r-many", 0, double(i), i, "ws-01", "console",
                                   "line " + std::to_string(i)})
                    .ok());
  }
  auto events = journal->LoadEvents("r-many");
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 2000u);
  for (int i = 0; i < 2000; ++i) {
    EXPECT_EQ((*events)[i].detail, "line " + std::to_string(i));
    if (i > 0) {
      EXPECT_GT((*events)[i].seq, (*events)[i - 1].seq);
    }
  }
}

// A run with every issue-4 field set, in comparison `comparison_id`.
RunResult RunbookRun(const std::string& id, const std::string& comparison_id, int repetition) {
  RunResult run;
  run.run_id = id;
  run.comparison_id = comparison_id;
  run.repetition = repetition;
  run.scenario = "channel-291";
  run.runbook = "safe-mode-delete";
  run.setup = "airline-hub";
  run.backend = "vm";
  run.started_at = "2024-07-19T04:09:00Z";
  run.release_s = 4 * 3600 + 9 * 60;
  HostResult dc;
  dc.id = "dc-01";
  dc.group = "domain-controllers";
  dc.site = "hub";
  dc.role = "domain-controller";
  dc.bitlocker = true;
  dc.final_state = "healthy";
  dc.exposed = true;
  dc.crashes = 2;
  dc.boot_loop = true;
  dc.recovered = true;
  dc.first_crash_s = 75;
  dc.time_to_recover_s = 1800;
  dc.recovered_at_s = 1875;
  dc.recovered_by = "safe-mode-delete";
  dc.technician_s = 1260.5;
  dc.waited_s = 300;
  dc.waited_for = "technician";
  dc.keys_fetched = 1;
  HostResult kiosk;
  kiosk.id = "kiosk-001";
  kiosk.group = "kiosks";
  kiosk.site = "terminal-2";
  kiosk.role = "kiosk";
  kiosk.final_state = "failed";
  kiosk.exposed = true;
  kiosk.crashes = 3;
  kiosk.boot_loop = true;
  kiosk.first_crash_s = 80;
  kiosk.waited_s = 7200;
  kiosk.waited_for = "key-escrow";
  kiosk.data_lost = "since-snapshot";
  kiosk.data_lost_s = 5400;
  kiosk.failed_why = "recovery password unavailable: key escrow down";
  kiosk.ring = "broad";
  kiosk.network = "wifi";
  run.hosts = {dc, kiosk};
  run.services = {{"crew-scheduling", 5400, 75, 5475, true, 1800},
                  {"check-in", 9000, 80, {}, false}};
  return run;
}

TEST_F(JournalTest, RunbookFieldsAndServicesRoundTrip) {
  auto journal = OpenJournal();
  ASSERT_TRUE(journal);
  ASSERT_TRUE(journal->BeginComparison("c-1", "channel-291", R"({"repeat":2})").ok());
  RunResult run = RunbookRun("r-1", "c-1", 1);
  ASSERT_TRUE(journal->BeginRun(run).ok());
  // Services saved on their own while running, then replaced by FinishRun's.
  ASSERT_TRUE(journal->SaveServices("r-1", {{"stale", 1, {}, {}, true}}).ok());
  EXPECT_EQ(journal->LoadRun("r-1")->services.size(), 1u);
  EXPECT_FALSE(journal->SaveServices("r-404", {{"x", 1, {}, {}, true}}).ok());
  run.status = "finished";
  run.release_s += 1;  // FinishRun records the release time too
  ASSERT_TRUE(journal->FinishRun(run).ok());
  journal.reset();

  journal = OpenJournal();
  ASSERT_TRUE(journal);
  auto loaded = journal->LoadRun("r-1");
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->setup, "airline-hub");
  EXPECT_EQ(loaded->comparison_id, "c-1");
  EXPECT_EQ(loaded->repetition, 1);
  EXPECT_DOUBLE_EQ(loaded->release_s, 4 * 3600 + 9 * 60 + 1);
  ASSERT_EQ(loaded->hosts.size(), 2u);
  const HostResult& dc = loaded->hosts[0];
  EXPECT_EQ(dc.site, "hub");
  EXPECT_EQ(dc.role, "domain-controller");
  EXPECT_TRUE(dc.bitlocker);
  EXPECT_EQ(dc.recovered_at_s, 1875);
  EXPECT_EQ(dc.recovered_by, "safe-mode-delete");
  EXPECT_DOUBLE_EQ(dc.technician_s, 1260.5);
  EXPECT_DOUBLE_EQ(dc.waited_s, 300);
  EXPECT_EQ(dc.waited_for, "technician");
  EXPECT_EQ(dc.keys_fetched, 1);
  EXPECT_EQ(dc.data_lost, "");
  const HostResult& kiosk = loaded->hosts[1];
  EXPECT_FALSE(kiosk.bitlocker);
  EXPECT_FALSE(kiosk.recovered_at_s.has_value());
  EXPECT_EQ(kiosk.waited_for, "key-escrow");
  EXPECT_EQ(kiosk.data_lost, "since-snapshot");
  EXPECT_DOUBLE_EQ(kiosk.data_lost_s, 5400);
  EXPECT_EQ(kiosk.failed_why, "recovery password unavailable: key escrow down");
  EXPECT_EQ(kiosk.ring, "broad");
  EXPECT_EQ(kiosk.network, "wifi");
  ASSERT_EQ(loaded->services.size(), 2u);
  EXPECT_EQ(loaded->services[0].name, "crew-scheduling");
  EXPECT_DOUBLE_EQ(loaded->services[0].downtime_s, 5400);
  EXPECT_EQ(loaded->services[0].down_at_s, 75);
  EXPECT_EQ(loaded->services[0].up_again_s, 5475);
  EXPECT_TRUE(loaded->services[0].up_at_end);
  EXPECT_DOUBLE_EQ(loaded->services[0].catching_up_s, 1800);
  EXPECT_EQ(loaded->services[1].name, "check-in");
  EXPECT_FALSE(loaded->services[1].up_again_s.has_value());
  EXPECT_FALSE(loaded->services[1].up_at_end);
  // Group figures, recomputed from the stored hosts.
  EXPECT_EQ(loaded->fleet.keys_fetched, 1);
  EXPECT_EQ(loaded->fleet.data_lost_hosts, 1);
  EXPECT_EQ(loaded->fleet.recovery.healthy_50_s, 1875);
  EXPECT_FALSE(loaded->fleet.recovery.healthy_90_s.has_value());

  auto rows = journal->ListRuns();
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ((*rows)[0].setup, "airline-hub");
  EXPECT_EQ((*rows)[0].comparison_id, "c-1");
  EXPECT_EQ((*rows)[0].repetition, 1);
}

TEST_F(JournalTest, ComparisonKeepsFinishedRepetitionsOfAKilledCompare) {
  {
    auto journal = OpenJournal();
    ASSERT_TRUE(journal);
    ASSERT_TRUE(journal->BeginComparison("c-20240719-aa", "channel-291", "{}").ok());
    EXPECT_EQ(journal->BeginComparison("c-20240719-aa", "x", "{}").code(),
              ErrorCode::kFailedPrecondition);
    EXPECT_EQ(journal->BeginRun(RunbookRun("r-x", "c-nope", 0)).code(),
              ErrorCode::kFailedPrecondition);
    // Two cells × two repetitions, each written as it finishes; the fifth run is under way
    // when the compare is killed.
    int n = 0;
    for (const char* runbook : {"reboot-15", "safe-mode-delete"}) {
      for (int rep = 0; rep < 2; ++rep) {
        RunResult run = RunbookRun("r-" + std::to_string(++n), "c-20240719-aa", rep);
        run.runbook = runbook;
        run.hosts[0].recovered_at_s = 600.0 * n;
        ASSERT_TRUE(journal->BeginRun(run).ok());
        run.status = "finished";
        ASSERT_TRUE(journal->FinishRun(run).ok());
      }
    }
    RunResult last = RunbookRun("r-5", "c-20240719-aa", 2);
    last.runbook = "safe-mode-delete";
    ASSERT_TRUE(journal->BeginRun(last).ok());

    auto rows = journal->ListComparisons();
    ASSERT_TRUE(rows.ok()) << rows.status().ToString();
    ASSERT_EQ(rows->size(), 1u);
    EXPECT_EQ((*rows)[0].status, "running");  // this process is alive
  }
  RawSql("UPDATE runs SET pid = 99999999; UPDATE comparisons SET pid = 99999999");

  auto journal = OpenJournal();
  ASSERT_TRUE(journal);
  auto rows = journal->ListComparisons();
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  const ComparisonSummaryRow& row = (*rows)[0];
  EXPECT_EQ(row.id, "c-20240719-aa");
  EXPECT_EQ(row.scenario, "channel-291");
  EXPECT_EQ(row.status, "interrupted");
  EXPECT_EQ(row.runs, 5);
  EXPECT_EQ(row.finished_runs, 4);
  EXPECT_EQ(row.cells, 2);
  EXPECT_EQ(row.started_at.size(), 20u) << row.started_at;  // 2024-07-19T04:09:00Z

  auto comparison = journal->LoadComparison("c-2024");  // a unique prefix
  ASSERT_TRUE(comparison.ok()) << comparison.status().ToString();
  EXPECT_EQ(comparison->id, "c-20240719-aa");
  EXPECT_EQ(comparison->scenario, "channel-291");
  ASSERT_EQ(comparison->runs.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(comparison->runs[i].run_id, "r-" + std::to_string(i + 1));
  EXPECT_EQ(comparison->runs[4].status, "interrupted");
  EXPECT_EQ(comparison->runs[3].services.size(), 2u);
  const std::vector<CellSummary> cells = SummarizeComparison(*comparison);
  ASSERT_EQ(cells.size(), 2u);
  EXPECT_EQ(cells[0].runbook, "reboot-15");
  EXPECT_EQ(cells[0].run_ids.size(), 2u);
  EXPECT_EQ(cells[1].run_ids.size(), 2u);
  EXPECT_EQ(cells[1].unfinished, 1);
  // 90 % healthy needs the failed kiosk too: never reached, so missing rather than 0.
  EXPECT_FALSE(cells[1].healthy_90_s.value.has_value());
  EXPECT_EQ(cells[1].healthy_90_s.missing, 2);

  ASSERT_TRUE(journal->FinishComparison("c-20240719-aa", "interrupted").ok());
  EXPECT_EQ((*journal->ListComparisons())[0].status, "interrupted");
  EXPECT_EQ(journal->FinishComparison("c-404", "finished").code(), ErrorCode::kNotFound);
}

TEST_F(JournalTest, ComparisonLookupAndFinish) {
  auto journal = OpenJournal();
  ASSERT_TRUE(journal);
  EXPECT_EQ(journal->LoadComparison("last").status().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(journal->ListComparisons()->empty());
  ASSERT_TRUE(journal->BeginComparison("c-aa1", "s1", "{}").ok());
  ASSERT_TRUE(journal->BeginComparison("c-aa2", "s2", "{}").ok());
  EXPECT_EQ(journal->BeginComparison("", "s", "{}").code(), ErrorCode::kInvalidArgument);

  EXPECT_EQ(journal->LoadComparison("last")->id, "c-aa2");  // same second: the later one
  EXPECT_EQ(journal->LoadComparison("c-aa1")->scenario, "s1");
  EXPECT_TRUE(journal->LoadComparison("c-aa1")->runs.empty());
  auto ambiguous = journal->LoadComparison("c-aa");
  EXPECT_EQ(ambiguous.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(ambiguous.status().message().find("comparison id 'c-aa' is ambiguous"),
            std::string::npos);
  auto unknown = journal->LoadComparison("c-b");
  EXPECT_EQ(unknown.status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(unknown.status().message(), "no comparison 'c-b' in " + path_);

  ASSERT_TRUE(journal->FinishComparison("c-aa1", "").ok());
  auto rows = journal->ListComparisons();
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].id, "c-aa2");
  EXPECT_EQ((*rows)[0].status, "running");
  EXPECT_EQ((*rows)[1].status, "finished");
  EXPECT_EQ((*rows)[1].runs, 0);
}

// The version-1 schema exactly as chaoslab wrote it before issue 4.
constexpr const char* kVersion1Schema = R"sql(
CREATE TABLE schema_version (version INTEGER NOT NULL);
INSERT INTO schema_version VALUES (1);
CREATE TABLE runs (
  id TEXT PRIMARY KEY,
  scenario TEXT NOT NULL, runbook TEXT NOT NULL, backend TEXT NOT NULL,
  seed INTEGER NOT NULL, status TEXT NOT NULL, started_at TEXT NOT NULL,
  wall_s REAL NOT NULL DEFAULT 0, scenario_end_s REAL NOT NULL DEFAULT 0,
  pid INTEGER NOT NULL, pid_start INTEGER NOT NULL, config_json TEXT NOT NULL,
  hosts INTEGER NOT NULL DEFAULT 0, exposed INTEGER NOT NULL DEFAULT 0,
  crashed INTEGER NOT NULL DEFAULT 0, recovered INTEGER NOT NULL DEFAULT 0);
CREATE INDEX runs_by_start ON runs (started_at);
CREATE TABLE hosts (
  run_id TEXT NOT NULL REFERENCES runs (id), id TEXT NOT NULL, ord INTEGER NOT NULL,
  group_name TEXT NOT NULL, final_state TEXT NOT NULL, exposed INTEGER NOT NULL,
  crashes INTEGER NOT NULL, boot_loop INTEGER NOT NULL, recovered INTEGER NOT NULL,
  reboots INTEGER NOT NULL, first_crash_s REAL, time_to_recover_s REAL, stop_code TEXT NOT NULL,
  PRIMARY KEY (run_id, id));
CREATE TABLE events (
  run_id TEXT NOT NULL REFERENCES runs (id), seq INTEGER NOT NULL,
  scenario_s REAL NOT NULL, wall_us INTEGER NOT NULL, host_id TEXT NOT NULL,
  kind TEXT NOT NULL, detail TEXT NOT NULL,
  PRIMARY KEY (run_id, seq)) WITHOUT ROWID;
CREATE INDEX events_by_host ON events (run_id, host_id, seq);
INSERT INTO runs VALUES ('r-old', 'channel-291', 'reboot-15', 'vm', 7, 'finished',
  '2024-07-01T10:00:00Z', 80.5, 23000, 1, 1, '{}', 2, 2, 2, 1);
INSERT INTO hosts VALUES ('r-old', 'ws-01', 1, 'workstations', 'healthy', 1, 3, 1, 1, 15, 70,
  900, 'PAGE_FAULT_IN_NONPAGED_AREA');
INSERT INTO hosts VALUES ('r-old', 'ws-02', 2, 'workstations', 'remediating', 1, 2, 1, 0, 15, 72,
  NULL, 'PAGE_FAULT_IN_NONPAGED_AREA');
INSERT INTO events VALUES ('r-old', 1, 14940, 0, '', 'release', 'C-00000291');
)sql";

long long SchemaVersion(const std::string& path) {
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_stmt* stmt = nullptr;
  sqlite3_prepare_v2(db, "SELECT MAX(version) FROM schema_version", -1, &stmt, nullptr);
  long long version = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : -1;
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return version;
}

TEST_F(JournalTest, Version1FileIsMigratedAndStillLoads) {
  fs::create_directories(fs::path(path_).parent_path());
  RawSql(kVersion1Schema);
  ASSERT_EQ(SchemaVersion(path_), 1);

  auto journal = OpenJournal();
  ASSERT_TRUE(journal);
  EXPECT_EQ(SchemaVersion(path_), 8);
  auto old = journal->LoadRun("r-old");
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  EXPECT_EQ(old->status, "finished");
  EXPECT_EQ(old->runbook, "reboot-15");
  EXPECT_EQ(old->seed, 7u);
  EXPECT_EQ(old->setup, "");
  EXPECT_EQ(old->comparison_id, "");
  EXPECT_EQ(old->release_s, 0);
  ASSERT_EQ(old->hosts.size(), 2u);
  EXPECT_EQ(old->hosts[0].time_to_recover_s, 900);
  EXPECT_EQ(old->hosts[0].stop_code, "PAGE_FAULT_IN_NONPAGED_AREA");
  EXPECT_FALSE(old->hosts[0].recovered_at_s.has_value());
  EXPECT_EQ(old->hosts[0].site, "");
  EXPECT_EQ(old->hosts[0].keys_fetched, 0);
  EXPECT_TRUE(old->services.empty());
  EXPECT_EQ(old->fleet.recovered, 1);
  EXPECT_EQ(old->fleet.recovery.healthy_50_s, 970);  // first crash 70 + 900 to recover
  ASSERT_EQ(journal->LoadEvents("r-old")->size(), 1u);

  // New runs go into the migrated file with every field.
  ASSERT_TRUE(journal->BeginComparison("c-1", "channel-291", "{}").ok());
  RunResult run = RunbookRun("r-new", "c-1", 0);
  run.method = "At most 2 guests booted at once.";
  run.hosts[0].race_fetch_ms = {257, 486, 1203};
  ASSERT_TRUE(journal->BeginRun(run).ok());
  ASSERT_TRUE(journal->FinishRun(run).ok());
  journal.reset();

  journal = OpenJournal();  // opening a migrated file again changes nothing
  ASSERT_TRUE(journal);
  EXPECT_EQ(SchemaVersion(path_), 8);
  auto loaded = journal->LoadRun("r-new");
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->hosts[0].recovered_at_s, 1875);
  EXPECT_EQ(loaded->method, "At most 2 guests booted at once.");
  EXPECT_EQ(loaded->hosts[0].race_fetch_ms, (std::vector<int>{257, 486, 1203}));
  EXPECT_TRUE(loaded->hosts[1].race_fetch_ms.empty());
  EXPECT_EQ(loaded->services.size(), 2u);
  EXPECT_EQ(journal->ListRuns()->size(), 2u);
  EXPECT_EQ(journal->LoadComparison("c-1")->runs.size(), 1u);
}

// Version 6 (issue 8) adds the actions table; a version-5 file gains it in place and keeps its
// runs.
TEST_F(JournalTest, Version5FileGainsTheActionsTable) {
  {
    auto journal = OpenJournal();
    ASSERT_TRUE(journal);
    RunResult run = RunbookRun("r-5", "", 0);
    ASSERT_TRUE(journal->BeginRun(run).ok());
    ASSERT_TRUE(journal->FinishRun(run).ok());
  }
  // What a version-5 chaoslab wrote: no actions table, version 5.
  RawSql("DROP TABLE actions; UPDATE schema_version SET version = 5;");
  ASSERT_EQ(SchemaVersion(path_), 5);

  auto journal = OpenJournal();
  ASSERT_TRUE(journal);
  EXPECT_EQ(SchemaVersion(path_), 8);
  EXPECT_TRUE(journal->LoadRun("r-5").ok());
  EXPECT_TRUE(journal->LoadActions("r-5")->empty());
  JournalAction typed{"r-5",
                      0,
                      15000,
                      1234,
                      "trainee",
                      "ws-01",
                      "console",
                      "del 'C:\\Windows\\System32\\drivers\\CrowdStrike\\C-00000291*.sys'",
                      "del 'C:\\x\x7f\x7fWindows"};
  ASSERT_TRUE(journal->AppendAction(typed).ok());
  ASSERT_TRUE(
      journal
          ->AppendAction({"r-5", 0, 15100, 2000, "instructor", "", "inject", "key-escrow-down", ""})
          .ok());
  auto actions = journal->LoadActions("r-5");
  ASSERT_TRUE(actions.ok()) << actions.status().ToString();
  ASSERT_EQ(actions->size(), 2u);
  EXPECT_EQ((*actions)[0].seq, 1);
  EXPECT_EQ((*actions)[0].role, "trainee");
  EXPECT_EQ((*actions)[0].detail, typed.detail);
  EXPECT_EQ((*actions)[0].keys, typed.keys);
  EXPECT_EQ((*actions)[1].seq, 2);
  EXPECT_EQ((*actions)[1].kind, "inject");
  EXPECT_EQ((*actions)[1].host_id, "");
  journal.reset();
  journal = OpenJournal();  // opening it again changes nothing
  EXPECT_EQ(SchemaVersion(path_), 8);
  EXPECT_EQ(journal->LoadActions("r-5")->size(), 2u);
}

// Version 8 (issue 18) adds services.catching_up_s; a version-7 file gains it in place, its
// services load with none, and new runs keep theirs.
TEST_F(JournalTest, Version7FileGainsServicesCatchingUp) {
  {
    auto journal = OpenJournal();
    ASSERT_TRUE(journal);
    RunResult run = RunbookRun("r-7", "", 0);
    ASSERT_TRUE(journal->BeginRun(run).ok());
    ASSERT_TRUE(journal->FinishRun(run).ok());
  }
  // What a version-7 chaoslab wrote: services without catching_up_s, version 7.
  RawSql("ALTER TABLE services DROP COLUMN catching_up_s; UPDATE schema_version SET version = 7;");
  ASSERT_EQ(SchemaVersion(path_), 7);

  auto journal = OpenJournal();
  ASSERT_TRUE(journal);
  EXPECT_EQ(SchemaVersion(path_), 8);
  auto old = journal->LoadRun("r-7");
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  ASSERT_EQ(old->services.size(), 2u);
  EXPECT_DOUBLE_EQ(old->services[0].downtime_s, 5400);
  EXPECT_DOUBLE_EQ(old->services[0].catching_up_s, 0);

  RunResult run = RunbookRun("r-8", "", 0);
  ASSERT_TRUE(journal->BeginRun(run).ok());
  ASSERT_TRUE(journal->FinishRun(run).ok());
  EXPECT_DOUBLE_EQ(journal->LoadRun("r-8")->services[0].catching_up_s, 1800);
}

}  // namespace
}  // namespace chaoslab
