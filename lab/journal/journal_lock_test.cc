// The journal shared with other processes: a lock held by someone else (a report, a sqlite3 shell,
// a second run) for longer than a few seconds must not cost a run its rows (issue 15).
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <thread>

#include "lab/journal/journal.h"

namespace chaoslab {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class JournalLockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("journal_lock_test_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    path_ = (dir_ / "journal.db").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<Journal> OpenJournal() {
    auto journal = Journal::Open(path_);
    EXPECT_TRUE(journal.ok()) << journal.status().ToString();
    return journal.ok() ? std::move(journal).value() : nullptr;
  }

  static RunResult MakeRun(const std::string& id, int hosts) {
    RunResult run;
    run.run_id = id;
    run.scenario = "channel-291";
    run.runbook = "reboot-3";
    run.backend = "sim";
    run.started_at = "2024-07-19T04:09:00Z";
    for (int i = 0; i < hosts; ++i) {
      HostResult h;
      h.id = "ws-" + std::to_string(i);
      h.group = "workstations";
      h.final_state = "booting";
      run.hosts.push_back(h);
    }
    return run;
  }

  fs::path dir_;
  std::string path_;
};

// Another connection (as another process would) holds the write lock with BEGIN EXCLUSIVE for
// `hold`, then lets go. Started only once the lock is taken.
class LockHolder {
 public:
  LockHolder(const std::string& path, std::chrono::milliseconds hold) {
    std::promise<bool> locked;
    std::future<bool> is_locked = locked.get_future();
    thread_ = std::thread([path, hold, &locked] {
      sqlite3* db = nullptr;
      bool ok = sqlite3_open(path.c_str(), &db) == SQLITE_OK &&
                sqlite3_busy_timeout(db, 30000) == SQLITE_OK &&  // writers hold it briefly
                sqlite3_exec(db, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) == SQLITE_OK;
      locked.set_value(ok);
      if (ok) std::this_thread::sleep_for(hold);
      sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
      sqlite3_close(db);
    });
    locked_ = is_locked.wait_for(30s) == std::future_status::ready && is_locked.get();
  }
  ~LockHolder() { thread_.join(); }
  bool locked() const { return locked_; }

 private:
  std::thread thread_;
  bool locked_ = false;
};

// Before: SQLite gave up after 5 s, FinishRun failed and the run stayed "running" (later shown as
// "interrupted").
TEST_F(JournalLockTest, RunEndsWhileAnotherProcessHoldsTheLockLongerThanFiveSeconds) {
  auto journal = OpenJournal();
  ASSERT_TRUE(journal);
  RunResult run = MakeRun("r-locked", 2);
  ASSERT_TRUE(journal->BeginRun(run).ok());
  {
    LockHolder holder(path_, 7s);
    ASSERT_TRUE(holder.locked()) << "the other connection could not lock the journal";
    Status event = journal->AppendEvent({"r-locked", 0, 300, 1, "ws-0", "crash", "PAGE_FAULT"});
    EXPECT_TRUE(event.ok()) << event.ToString();
    run.status = "finished";
    run.hosts[0].final_state = "recovered";
    Status finished = journal->FinishRun(run);
    EXPECT_TRUE(finished.ok()) << finished.ToString();
  }
  Result<RunResult> loaded = journal->LoadRun("r-locked");
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->status, "finished");
  ASSERT_EQ(loaded->hosts.size(), 2u);
  EXPECT_EQ(loaded->hosts[0].final_state, "recovered");
  Result<std::vector<JournalEvent>> events = journal->LoadEvents("r-locked");
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->size(), 1u);
}

// Two runs write one journal at once (their own connections, as two `chaoslab run`s would) while
// a third connection holds the lock for longer than 5 s: both finish with every row.
TEST_F(JournalLockTest, TwoWritersAtOnceKeepEveryRow) {
  constexpr int kEvents = 300;
  ASSERT_TRUE(OpenJournal());  // the schema exists before the writers race
  auto writer = [this](const std::string& id) -> Status {
    Result<std::unique_ptr<Journal>> opened = Journal::Open(path_);
    if (!opened.ok()) return opened.status();
    Journal& j = **opened;
    RunResult run = MakeRun(id, 4);
    RETURN_IF_ERROR(j.BeginRun(run));
    for (int i = 0; i < kEvents; ++i) {
      RETURN_IF_ERROR(
          j.AppendEvent({id, 0, double(i), i, "ws-1", "state", "e" + std::to_string(i)}));
      HostResult h = run.hosts[static_cast<size_t>(i % 4)];
      h.crashes = i;
      RETURN_IF_ERROR(j.SaveHost(id, h));
    }
    run.status = "finished";
    return j.FinishRun(run);
  };
  std::future<Status> a = std::async(std::launch::async, writer, "r-a");
  std::future<Status> b = std::async(std::launch::async, writer, "r-b");
  {
    LockHolder holder(path_, 6s);
    ASSERT_TRUE(holder.locked()) << "the third connection could not lock the journal";
  }
  ASSERT_EQ(a.wait_for(120s), std::future_status::ready) << "writer r-a did not finish";
  ASSERT_EQ(b.wait_for(120s), std::future_status::ready) << "writer r-b did not finish";
  Status sa = a.get(), sb = b.get();
  EXPECT_TRUE(sa.ok()) << sa.ToString();
  EXPECT_TRUE(sb.ok()) << sb.ToString();
  auto journal = OpenJournal();
  ASSERT_TRUE(journal);
  for (const char* id : {"r-a", "r-b"}) {
    Result<RunResult> run = journal->LoadRun(id);
    ASSERT_TRUE(run.ok()) << id << ": " << run.status().ToString();
    EXPECT_EQ(run->status, "finished") << id;
    EXPECT_EQ(run->hosts.size(), 4u) << id;
    Result<std::vector<JournalEvent>> events = journal->LoadEvents(id);
    ASSERT_TRUE(events.ok());
    EXPECT_EQ(events->size(), static_cast<size_t>(kEvents)) << id;
  }
}

}  // namespace
}  // namespace chaoslab
