// Runs the built csagent binary (--no-panic) against a temporary system disk folder.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>

#include "agents/sensor/agent.h"
#include "agents/sensor/channel_file.h"
#include "agents/sensor/test_http_server.h"

namespace chaoslab::content {
namespace {

namespace fs = std::filesystem;

struct AgentRun {
  int exit_code = -1;  // -1: killed by a signal or the test's deadline
  std::string output;
  bool Has(const std::string& text) const { return output.find(text) != std::string::npos; }
};

// Starts csagent with `args`, collects stdout+stderr, kills it after 20 s (a hang is a failure).
// on_terminal: stdout and stderr are a pseudo-terminal (as the guest's serial console is a tty)
// instead of a pipe; the terminal's CR before each LF is dropped from `output`.
AgentRun RunCsagent(std::vector<std::string> args, bool on_terminal = false) {
  int fds[2] = {-1, -1};  // [0]: the test reads, [1]: csagent writes
  if (on_terminal) {
    fds[0] = posix_openpt(O_RDWR | O_NOCTTY);
    if (fds[0] < 0 || grantpt(fds[0]) != 0 || unlockpt(fds[0]) != 0) return {};
    fds[1] = open(ptsname(fds[0]), O_RDWR | O_NOCTTY);
    if (fds[1] < 0) return {};
  } else if (pipe(fds) != 0) {
    return {};
  }
  args.insert(args.begin(), CSAGENT_PATH);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    dup2(fds[1], STDERR_FILENO);
    close(fds[0]);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(fds[1]);
  AgentRun run;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  char buf[4096];
  for (;;) {
    pollfd p{fds[0], POLLIN, 0};
    if (poll(&p, 1, 100) > 0) {
      const ssize_t n = read(fds[0], buf, sizeof buf);
      if (n <= 0) break;  // a pty master reads EIO once csagent (the last writer) has gone
      run.output.append(buf, static_cast<size_t>(n));
    }
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      run.output += "\n<test deadline: csagent killed>";
      break;
    }
  }
  close(fds[0]);
  if (on_terminal) std::erase(run.output, '\r');
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status)) run.exit_code = WEXITSTATUS(status);
  return run;
}

class CsagentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/csagent_test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    root_ = pattern;
    fs::create_directories(content_dir());
    fs::create_directories(root_ / "ProgramData/CrowdStrike");
  }
  void TearDown() override { fs::remove_all(root_); }

  fs::path content_dir() const { return root_ / "Windows/System32/drivers/CrowdStrike"; }
  fs::path ready_file() const { return root_ / "csagent.ready"; }
  void SetSensor(const std::string& version) {
    std::ofstream(root_ / "ProgramData/CrowdStrike/sensor.ini")
        << "[sensor]\r\nversion=" << version << "\r\n";
  }
  void AddContent(ChannelFileKind kind, uint32_t version) {
    const std::string bytes = MakeChannelFile(kind, version);
    std::ofstream(content_dir() / ChannelFileName(version), std::ios::binary) << bytes;
  }
  std::vector<std::string> Args(int heartbeats = 1) const {
    return {"--root",       root_.string(),
            "--host",       "test-host",
            "--ipc-ms",     "10",
            "--poll-ms",    "20",
            "--heartbeats", std::to_string(heartbeats),
            "--ready-file", ready_file().string(),
            "--no-panic"};
  }

  fs::path root_;
};

TEST_F(CsagentTest, GoodContentRunsAndBecomesReady) {
  SetSensor("7.11");
  AddContent(ChannelFileKind::kGood, 1);
  AgentRun run = RunCsagent(Args(2));
  EXPECT_EQ(run.exit_code, kAgentExitOk) << run.output;
  // The line ends with the host's /proc/uptime (seconds with two decimals), so the lab can read
  // guest time.
  EXPECT_TRUE(std::regex_search(
      run.output,
      std::regex("@@csagent loaded sensor=7\\.11 channel=291 version=1 uptime=[0-9]+\\.[0-9]+\n")))
      << run.output;
  EXPECT_TRUE(run.Has("@@csagent ipc-notification ms=")) << run.output;
  EXPECT_TRUE(run.Has("@@csagent heartbeat channel=291 version=1 cloud=unreachable\n"));
  EXPECT_FALSE(run.Has("@@bugcheck"));
  EXPECT_TRUE(fs::exists(ready_file()));
  // On winsim the boot manager says "@@winsim ready" when it sees the ready file; the sensor
  // itself must not, or the lab would read it twice.
  EXPECT_FALSE(run.Has("@@winsim ready")) << run.output;
}

// --say-ready (what csagent.exe sets on Windows, where no boot manager says it): the ready line
// right after the first IPC notification, once; never when the content faults first.
TEST_F(CsagentTest, SayReadyPrintsTheReadyLineOnceWhenReady) {
  SetSensor("7.11");
  AddContent(ChannelFileKind::kGood, 1);
  std::vector<std::string> args = Args(2);
  args.push_back("--say-ready");
  AgentRun run = RunCsagent(args);
  EXPECT_EQ(run.exit_code, kAgentExitOk) << run.output;
  EXPECT_TRUE(
      std::regex_search(run.output, std::regex("@@csagent ipc-notification ms=[0-9]+\n"
                                               "@@winsim ready os=linux\n"
                                               "@@csagent heartbeat channel=291 version=1 ")))
      << run.output;
  EXPECT_EQ(run.output.find("@@winsim ready"), run.output.rfind("@@winsim ready"));
  EXPECT_TRUE(fs::exists(ready_file()));

  AddContent(ChannelFileKind::kChannel291, 2);
  fs::remove(ready_file());
  run = RunCsagent(args);
  EXPECT_EQ(run.exit_code, kAgentExitBugcheck) << run.output;
  EXPECT_FALSE(run.Has("@@winsim ready")) << run.output;
}

TEST_F(CsagentTest, Channel291ContentBugchecksSensor711) {
  SetSensor("7.11");
  AddContent(ChannelFileKind::kGood, 1);
  AddContent(ChannelFileKind::kChannel291, 2);
  AgentRun run = RunCsagent(Args());
  EXPECT_EQ(run.exit_code, kAgentExitBugcheck) << run.output;
  EXPECT_TRUE(run.Has("@@csagent loaded sensor=7.11 channel=291 version=2 uptime=")) << run.output;
  EXPECT_TRUE(run.Has(":( Your device ran into a problem and needs to restart"));
  EXPECT_TRUE(run.Has("Stop code: PAGE_FAULT_IN_NONPAGED_AREA"));
  EXPECT_TRUE(run.Has("What failed: csagent.sys"));
  EXPECT_TRUE(
      run.Has("@@bugcheck code=0x00000050 name=PAGE_FAULT_IN_NONPAGED_AREA module=csagent.sys\n"));
  EXPECT_FALSE(run.Has("@@csagent ipc-notification"));
  EXPECT_FALSE(fs::exists(ready_file()));
}

// In the guest the console is a terminal (the serial port). The bugcheck waits until the terminal
// has sent its text (tcdrain) before the kernel panic: a panic that starts while the line is still
// queued garbled it ("PAGE_FAULT_IIN_NONPAGED_AREA"). On a terminal the text must arrive whole
// and the sensor must still exit promptly.
TEST_F(CsagentTest, BugcheckOnATerminalArrivesWholeAndExits) {
  SetSensor("7.11");
  AddContent(ChannelFileKind::kChannel291, 2);
  // A sensor stuck in tcdrain is killed at RunCsagent's 20 s deadline and has no exit code.
  AgentRun run = RunCsagent(Args(), /*on_terminal=*/true);
  EXPECT_EQ(run.exit_code, kAgentExitBugcheck) << run.output;
  EXPECT_TRUE(run.Has("\nStop code: PAGE_FAULT_IN_NONPAGED_AREA\nWhat failed: csagent.sys\n"))
      << run.output;
  EXPECT_TRUE(std::regex_search(
      run.output, std::regex("\nFaulting address: 0x[0-9a-f]{16}\n"
                             "@@bugcheck code=0x00000050 name=PAGE_FAULT_IN_NONPAGED_AREA "
                             "module=csagent.sys\n$")))
      << run.output;
}

TEST_F(CsagentTest, FixedSensorRejects291AndKeepsTheOlderContent) {
  SetSensor("7.11-fixed");
  AddContent(ChannelFileKind::kGood, 1);
  AddContent(ChannelFileKind::kChannel291, 2);
  AgentRun run = RunCsagent(Args());
  EXPECT_EQ(run.exit_code, kAgentExitOk) << run.output;
  EXPECT_TRUE(
      run.Has("@@csagent rejected sensor=7.11-fixed channel=291 version=2 "
              "reason=criterion-on-unsupplied-field\n"))
      << run.output;
  EXPECT_TRUE(run.Has("@@csagent ipc-notification ms="));
  EXPECT_TRUE(run.Has("@@csagent heartbeat channel=291 version=1 cloud=unreachable\n"));
}

TEST_F(CsagentTest, Sensor710IgnoresIpcContent) {
  SetSensor("7.10");
  AddContent(ChannelFileKind::kChannel291, 2);
  AgentRun run = RunCsagent(Args());
  EXPECT_EQ(run.exit_code, kAgentExitOk) << run.output;
  EXPECT_TRUE(
      run.Has("@@csagent rejected sensor=7.10 channel=291 version=2 "
              "reason=template-type-not-supported\n"))
      << run.output;
  EXPECT_TRUE(run.Has("@@csagent heartbeat channel=291 version=0 cloud=unreachable\n"));
}

TEST_F(CsagentTest, CorruptFilesAreRejectedNotFatal) {
  SetSensor("7.11");
  AddContent(ChannelFileKind::kZeroed, 3);
  AddContent(ChannelFileKind::kTruncated, 4);
  AddContent(ChannelFileKind::kBadMagic, 5);
  std::ofstream(content_dir() / ChannelFileName(6)) << MakeChannelFile(ChannelFileKind::kGood, 7);
  std::ofstream(content_dir() / "notes.txt") << "not content";
  AgentRun run = RunCsagent(Args());
  EXPECT_EQ(run.exit_code, kAgentExitOk) << run.output;
  for (int v : {3, 4, 5}) {
    EXPECT_TRUE(run.Has("@@csagent rejected sensor=7.11 channel=291 version=" + std::to_string(v) +
                        " reason=corrupt-file\n"))
        << run.output;
  }
  EXPECT_TRUE(run.Has("version=6 reason=version-mismatch\n")) << run.output;
  EXPECT_TRUE(run.Has("@@csagent heartbeat channel=291 version=0"));
}

TEST_F(CsagentTest, MissingOrBadSensorIniIsAConfigError) {
  AgentRun run = RunCsagent(Args());
  EXPECT_EQ(run.exit_code, kAgentExitConfig) << run.output;
  EXPECT_TRUE(
      run.Has("@@csagent rejected sensor=unknown channel=291 version=0 "
              "reason=sensor-ini-unreadable\n"))
      << run.output;
  SetSensor("9.99");
  run = RunCsagent(Args());
  EXPECT_EQ(run.exit_code, kAgentExitConfig) << run.output;
  EXPECT_TRUE(run.Has("reason=sensor-ini-invalid\n")) << run.output;
}

TEST_F(CsagentTest, BadCommandLineIsAUsageError) {
  EXPECT_EQ(RunCsagent({}).exit_code, kAgentExitUsage);
  EXPECT_EQ(RunCsagent({"--root", "/x", "--cloud", "example.com:80"}).exit_code, kAgentExitUsage);
  EXPECT_EQ(RunCsagent({"--root", "/x", "--poll-ms", "0"}).exit_code, kAgentExitUsage);
  EXPECT_EQ(RunCsagent({"--root", "/x", "--bogus"}).exit_code, kAgentExitUsage);
}

// The boot race won: the reverted content arrives before the first IPC notification.
TEST_F(CsagentTest, NewerCloudContentArrivingFirstWinsTheRace) {
  SetSensor("7.11");
  AddContent(ChannelFileKind::kChannel291, 2);
  testing::TestHttpServer cloud;
  cloud.Set("/v1/manifest?host=test-host", {200, "291 3 " + ChannelFileName(3) + "\n", ""});
  const std::string good = MakeChannelFile(ChannelFileKind::kGood, 3);
  cloud.Set("/v1/content/" + ChannelFileName(3) + "?host=test-host", {200, good, ""});
  std::vector<std::string> args = Args();
  args.insert(args.end(), {"--cloud", cloud.endpoint(), "--ipc-ms=1500"});
  AgentRun run = RunCsagent(args);
  EXPECT_EQ(run.exit_code, kAgentExitOk) << run.output;
  EXPECT_TRUE(run.Has("@@csagent fetched channel=291 version=3 ms=")) << run.output;
  EXPECT_TRUE(run.Has("@@csagent loaded sensor=7.11 channel=291 version=3 uptime="));
  EXPECT_TRUE(run.Has("@@csagent ipc-notification ms="));
  EXPECT_TRUE(run.Has("@@csagent heartbeat channel=291 version=3 cloud=ok\n"));
  EXPECT_FALSE(fs::exists(content_dir() / ChannelFileName(2)));  // older version deleted
  std::ifstream in(content_dir() / ChannelFileName(3), std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), good);
}

// The vendor's cloud remediation: the manifest's quarantine reaches the sensor before the first IPC
// notification; the faulty cached file is moved aside and the host boots healthy, even though
// the cloud has no newer content for it.
TEST_F(CsagentTest, QuarantineArrivingFirstMovesTheFaultyFileAsideAndTheHostSurvives) {
  SetSensor("7.11");
  AddContent(ChannelFileKind::kChannel291, 2);
  testing::TestHttpServer cloud;
  cloud.Set("/v1/manifest?host=test-host",
            {200, "quarantine 291 " + ChannelFileName(2) + "\n", ""});
  std::vector<std::string> args = Args();
  args.insert(args.end(), {"--cloud", cloud.endpoint(), "--ipc-ms=1500"});
  AgentRun run = RunCsagent(args);
  EXPECT_EQ(run.exit_code, kAgentExitOk) << run.output;
  EXPECT_TRUE(run.Has("@@csagent quarantined channel=291 version=2 ms=")) << run.output;
  EXPECT_FALSE(run.Has("@@bugcheck")) << run.output;
  EXPECT_TRUE(run.Has("@@csagent heartbeat channel=291 version=0 cloud=ok\n")) << run.output;
  EXPECT_FALSE(fs::exists(content_dir() / ChannelFileName(2)));
  EXPECT_TRUE(fs::exists(content_dir() / (ChannelFileName(2) + ".quarantined")));
  // The next boot finds nothing to load, and the cloud's repeated instruction changes nothing.
  AgentRun again = RunCsagent(args);
  EXPECT_EQ(again.exit_code, kAgentExitOk) << again.output;
  EXPECT_FALSE(again.Has("@@csagent loaded")) << again.output;
  EXPECT_FALSE(again.Has("@@csagent quarantined")) << again.output;
}

// A quarantine that names anything but a channel file of its channel is refused with the whole
// manifest: nothing outside the content folder is touched, and the faulty file still crashes.
TEST_F(CsagentTest, AQuarantineNamingAPathIsIgnored) {
  SetSensor("7.11");
  AddContent(ChannelFileKind::kChannel291, 2);
  std::ofstream(root_ / "victim.txt") << "keep";
  testing::TestHttpServer cloud;
  cloud.Set("/v1/manifest?host=test-host", {200, "quarantine 291 ../../../victim.txt\n", ""});
  std::vector<std::string> args = Args();
  args.insert(args.end(), {"--cloud", cloud.endpoint(), "--ipc-ms=1500"});
  AgentRun run = RunCsagent(args);
  EXPECT_EQ(run.exit_code, kAgentExitBugcheck) << run.output;
  EXPECT_TRUE(run.Has("ignoring manifest")) << run.output;
  EXPECT_TRUE(fs::exists(root_ / "victim.txt"));
  EXPECT_FALSE(fs::exists(root_ / "victim.txt.quarantined"));
  EXPECT_TRUE(fs::exists(content_dir() / ChannelFileName(2)));
}

// 04:09: a running 7.11 host receives the 291 file from the cloud and crashes.
TEST_F(CsagentTest, Channel291FromTheCloudCrashesARunningHost) {
  SetSensor("7.11");
  AddContent(ChannelFileKind::kGood, 1);
  testing::TestHttpServer cloud;
  cloud.Set("/v1/manifest?host=test-host", {200, "291 2 " + ChannelFileName(2) + "\n", ""});
  cloud.Set("/v1/content/" + ChannelFileName(2) + "?host=test-host",
            {200, MakeChannelFile(ChannelFileKind::kChannel291, 2), ""});
  std::vector<std::string> args = Args(5);
  args.insert(args.end(), {"--cloud", cloud.endpoint()});
  AgentRun run = RunCsagent(args);
  EXPECT_EQ(run.exit_code, kAgentExitBugcheck) << run.output;
  EXPECT_TRUE(run.Has("@@csagent fetched channel=291 version=2 ms=")) << run.output;
  EXPECT_TRUE(run.Has("@@bugcheck code=0x00000050"));
  EXPECT_TRUE(fs::exists(content_dir() / ChannelFileName(2)));  // it will be there next boot
}

TEST_F(CsagentTest, UnreachableCloudIsReportedNotFatal) {
  SetSensor("7.11");
  AddContent(ChannelFileKind::kGood, 1);
  uint16_t port = 0;
  {
    testing::TestHttpServer closed;
    port = closed.port();
  }
  std::vector<std::string> args = Args();
  args.insert(args.end(), {"--cloud", "127.0.0.1:" + std::to_string(port)});
  AgentRun run = RunCsagent(args);
  EXPECT_EQ(run.exit_code, kAgentExitOk) << run.output;
  EXPECT_TRUE(run.Has("@@csagent heartbeat channel=291 version=1 cloud=unreachable\n"));
}

}  // namespace
}  // namespace chaoslab::content
