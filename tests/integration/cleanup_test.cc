// Whatever happens to the orchestrator — Ctrl-C, SIGTERM, SIGKILL — no QEMU and no overlay stays
// behind (after `chaoslab gc` for SIGKILL), and a QEMU the lab did not start is never touched.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/integration/lab_harness.h"

namespace chaoslab::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

bool WaitUntilNoQemu(const std::string& run_id, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (LabHarness::LabQemus(run_id).empty()) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

// Whether our child `pid` still runs. kill(pid, 0) cannot tell: a child that died stays a zombie
// until it is reaped, and kill(0) succeeds on a zombie. waitpid(WNOHANG) reaps a dead child (so the
// pid must not be signalled afterwards) and answers 0 only for one that still runs.
bool ChildRunning(pid_t pid) {
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  return r == 0;
}

// A QEMU that is not the lab's, started by the test and stopped (by pid) whatever the test's end.
class Bystander {
 public:
  Bystander() : pid_(fork()) {
    if (pid_ == 0) {
      execlp("qemu-system-x86_64", "qemu-system-x86_64", "-M", "none", "-display", "none", "-name",
             "bystander", nullptr);
      _exit(127);
    }
  }
  ~Bystander() {
    if (pid_ > 0 && ChildRunning(pid_)) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_;
};

// The check below must be able to fail: a killed child is a zombie that kill(pid, 0) still finds.
TEST(BystanderCheck, SeesAKilledChildThatIsAZombie) {
  pid_t child = fork();
  if (child == 0) {
    pause();
    _exit(0);
  }
  ASSERT_GT(child, 0);
  EXPECT_TRUE(ChildRunning(child));
  ASSERT_EQ(kill(child, SIGKILL), 0);
  // Wait (bounded) until it is a zombie, without reaping it: state Z in /proc/PID/stat.
  auto zombie = [&] {
    std::ifstream stat("/proc/" + std::to_string(child) + "/stat");
    std::string line;
    std::getline(stat, line);
    size_t paren = line.rfind(')');
    return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'Z';
  };
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!zombie() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(zombie()) << "the killed child did not become a zombie within 10 s";
  EXPECT_EQ(kill(child, 0), 0) << "the zombie is still found by kill(0): the old check passed";
  EXPECT_FALSE(ChildRunning(child)) << "a killed child must not count as running";
}

class CleanupTest : public ::testing::TestWithParam<int> {};

TEST_P(CleanupTest, SignalMidRunLeavesNothingBehind) {
  const int sig = GetParam();
  LabHarness lab;
  ASSERT_TRUE(lab.ImageBuilt()) << "guest image not built: run `make image`";

  // A QEMU that is not the lab's: it must survive everything below, gc included.
  Bystander bystander;
  ASSERT_GT(bystander.pid(), 0);

  pid_t pid = lab.Start({"run", lab.scenario("channel-291")});
  ASSERT_TRUE(lab.WaitForStderr(pid, "healthy", 240s)) << lab.StderrOf(pid);
  std::string run_id = LabHarness::RunIdFrom(lab.StderrOf(pid));
  ASSERT_FALSE(run_id.empty()) << lab.StderrOf(pid);
  EXPECT_FALSE(LabHarness::LabQemus(run_id).empty());
  const fs::path run_dir = fs::path(lab.runtime_root()) / run_id;
  EXPECT_TRUE(fs::exists(run_dir));

  ASSERT_EQ(kill(pid, sig), 0);
  int code = lab.Wait(pid, 60s);
  if (sig == SIGKILL) {
    EXPECT_EQ(code, 128 + SIGKILL);
    // The guests die with their orchestrator (PR_SET_PDEATHSIG); gc removes the files.
    EXPECT_TRUE(WaitUntilNoQemu(run_id, 15s));
    auto gc = lab.Run({"gc"});
    ASSERT_TRUE(gc.ok());
    EXPECT_EQ(gc->exit_code, 0) << gc->err;
    // The killed run is still in the journal, reported as interrupted.
    auto report = lab.Run({"report", run_id, "--json"});
    ASSERT_TRUE(report.ok());
    EXPECT_EQ(report->exit_code, 0) << report->err;
    EXPECT_NE(report->out.find("\"interrupted\""), std::string::npos) << report->out;
  } else {
    // Ctrl-C / SIGTERM: the run stops, prints what it measured, and cleans up by itself.
    EXPECT_EQ(code, 130) << lab.StderrOf(pid);
    EXPECT_NE(lab.StdoutOf(pid).find("ws-711-01"), std::string::npos) << lab.StdoutOf(pid);
    EXPECT_TRUE(WaitUntilNoQemu(run_id, 5s));
  }
  EXPECT_FALSE(fs::exists(run_dir)) << run_dir;

  // The bystander is untouched (and still running, not a zombie).
  EXPECT_TRUE(ChildRunning(bystander.pid())) << "a QEMU the lab did not start was killed";
}

INSTANTIATE_TEST_SUITE_P(Signals, CleanupTest, ::testing::Values(SIGKILL, SIGTERM, SIGINT),
                         [](const auto& info) { return std::string(sigabbrev_np(info.param)); });

}  // namespace
}  // namespace chaoslab::testing
