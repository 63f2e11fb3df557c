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
  ASSERT_TRUE(journal->BeginRun(run, R"({"hosts":2})").ok());
  EXPECT_EQ(journal->BeginRun(run, "{}").code(), ErrorCode::kFailedPrecondition);

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
    ASSERT_TRUE(journal->BeginRun(MakeRun("r-killed", "2024-07-19T04:09:00Z"), "{}").ok());
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
  ASSERT_TRUE(journal->BeginRun(MakeRun("r-20240719-aaaa", "2024-07-19T04:00:00Z"), "{}").ok());
  ASSERT_TRUE(journal->BeginRun(MakeRun("r-20240719-aabb", "2024-07-19T05:00:00Z"), "{}").ok());
  ASSERT_TRUE(journal->BeginRun(MakeRun("r-20240719-b", "2024-07-19T03:00:00Z"), "{}").ok());
  ASSERT_TRUE(journal->BeginRun(MakeRun("r-20240719-bc", "2024-07-19T02:00:00Z"), "{}").ok());

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

  ASSERT_TRUE(journal->BeginRun(MakeRun("r-b", "2024-07-19T05:00:00Z"), "{}").ok());
  ASSERT_TRUE(journal->BeginRun(MakeRun("r-a", "2024-07-19T06:00:00Z"), "{}").ok());
  ASSERT_TRUE(journal->BeginRun(MakeRun("r-c", "2024-07-19T04:00:00Z"), "{}").ok());
  ASSERT_TRUE(
      journal->BeginRun(MakeRun("r-d", "2024-07-19T06:00:00Z"), "{}").ok());  // tie: later wins
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
  ASSERT_TRUE(journal->BeginRun(MakeRun("r-many", "2024-07-19T04:09:00Z"), "{}").ok());
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

}  // namespace
}  // namespace chaoslab
