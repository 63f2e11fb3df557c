// The engine and a journal that fails: a write error is reported, never dropped, and never costs
// the run its figures (issue 15).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "lab/backend/fake_backend.h"
#include "lab/engine/engine.h"
#include "lab/journal/journal.h"

namespace chaoslab {
namespace {

namespace fs = std::filesystem;

// A real journal whose writes fail on demand (LevelDB's ErrorEnv, for the journal).
class FailingJournal : public Journal {
 public:
  explicit FailingJournal(std::unique_ptr<Journal> inner) : inner_(std::move(inner)) {}
  bool fail_save_host = false, fail_append_event = false, fail_finish = false;

  Status BeginRun(const RunResult& run) override { return inner_->BeginRun(run); }
  Status AppendEvent(const JournalEvent& e) override {
    return fail_append_event ? Busy("append event") : inner_->AppendEvent(e);
  }
  Status AppendAction(const JournalAction& a) override { return inner_->AppendAction(a); }
  Result<std::vector<JournalAction>> LoadActions(const std::string& id) override {
    return inner_->LoadActions(id);
  }
  Status SaveHost(const std::string& id, const HostResult& h) override {
    return fail_save_host ? Busy("save host") : inner_->SaveHost(id, h);
  }
  Status SaveServices(const std::string& id, const std::vector<ServiceResult>& s) override {
    return inner_->SaveServices(id, s);
  }
  Status FinishRun(const RunResult& run) override {
    return fail_finish ? Busy("finish run") : inner_->FinishRun(run);
  }
  Status BeginComparison(const std::string& id, const std::string& sc,
                         const std::string& cfg) override {
    return inner_->BeginComparison(id, sc, cfg);
  }
  Status FinishComparison(const std::string& id, const std::string& status) override {
    return inner_->FinishComparison(id, status);
  }
  Result<std::vector<ComparisonSummaryRow>> ListComparisons() override {
    return inner_->ListComparisons();
  }
  Result<Comparison> LoadComparison(const std::string& id) override {
    return inner_->LoadComparison(id);
  }
  Result<std::vector<RunSummaryRow>> ListRuns() override { return inner_->ListRuns(); }
  Result<RunResult> LoadRun(const std::string& id) override { return inner_->LoadRun(id); }
  Result<std::vector<JournalEvent>> LoadEvents(const std::string& id) override {
    return inner_->LoadEvents(id);
  }

 private:
  static Status Busy(const std::string& what) {
    return Status::Unavailable("journal: " + what + ": database is locked");
  }
  std::unique_ptr<Journal> inner_;
};

class EngineJournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("engine_journal_test_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    Result<std::unique_ptr<Journal>> opened = Journal::Open((dir_ / "journal.db").string());
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    journal_ = std::make_unique<FailingJournal>(std::move(opened).value());
  }
  void TearDown() override { fs::remove_all(dir_); }

  // One host that QEMU loses at power-on: the run ends at once with one figure to keep.
  Result<RunResult> RunOneLostHost(std::vector<std::string>* progress) {
    sc_.name = "journal-test";
    sc_.runbook.name = "none";
    sc_.stop.max_wall = 60;
    EngineOptions o;
    o.scenario = &sc_;
    o.run_id = "r-journal";
    o.backend = &backend_;
    o.journal = journal_.get();
    HostPlan p;
    p.spec.id = "gone";
    p.spec.group = "g";
    o.hosts = {p};
    o.progress = [progress](const std::string& line) { progress->push_back(line); };
    backend_.SetReaction([this](FakeHost& h, FakeOp op) {
      if (op == FakeOp::kStart) backend_.Emit(h.spec().id, HostEventKind::kLost, "qemu exited");
    });
    return RunScenario(o);
  }

  static bool Mentions(const std::vector<std::string>& lines, const std::string& text) {
    for (const auto& l : lines)
      if (l.find(text) != std::string::npos) return true;
    return false;
  }

  fs::path dir_;
  config::ScenarioConfig sc_;
  FakeBackend backend_{false};
  std::unique_ptr<FailingJournal> journal_;
};

// Before: FinishRun's error ended RunScenario with that error, and the figures were lost.
TEST_F(EngineJournalTest, FinishRunFailureKeepsTheFiguresAndSaysSo) {
  journal_->fail_finish = true;
  std::vector<std::string> progress;
  Result<RunResult> r = RunOneLostHost(&progress);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->hosts.size(), 1u);
  EXPECT_EQ(r->hosts[0].final_state, "lost");
  EXPECT_NE(r->journal_error.find("finish run"), std::string::npos) << r->journal_error;
  EXPECT_TRUE(Mentions(progress, "finish run"));
}

// Before: SaveHost's errors were dropped ((void)) and the run looked fully journaled.
TEST_F(EngineJournalTest, SaveHostFailureIsReportedNotDropped) {
  journal_->fail_save_host = true;
  std::vector<std::string> progress;
  Result<RunResult> r = RunOneLostHost(&progress);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_NE(r->journal_error.find("save host"), std::string::npos) << r->journal_error;
  EXPECT_TRUE(Mentions(progress, "save host"));
}

TEST_F(EngineJournalTest, EventFailureIsTheRunsJournalError) {
  journal_->fail_append_event = true;
  std::vector<std::string> progress;
  Result<RunResult> r = RunOneLostHost(&progress);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_NE(r->journal_error.find("append event"), std::string::npos) << r->journal_error;
}

TEST_F(EngineJournalTest, AHealthyJournalLeavesNoError) {
  std::vector<std::string> progress;
  Result<RunResult> r = RunOneLostHost(&progress);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->journal_error, "");
  Result<RunResult> stored = journal_->LoadRun("r-journal");
  ASSERT_TRUE(stored.ok()) << stored.status().ToString();
  EXPECT_EQ(stored->hosts.size(), 1u);
}

}  // namespace
}  // namespace chaoslab
