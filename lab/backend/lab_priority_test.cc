#include "lab/backend/lab_priority.h"

#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

namespace chaoslab {
namespace {

pid_t Tid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

std::string Policy(pid_t tid) {
  auto p = SchedulingOf(tid);
  return p.ok() ? *p : "gone";
}

// Runs `body` in a child process (so this test's own scheduling is left alone) and returns its
// exit code.
template <typename F>
int InChild(F body) {
  const pid_t child = fork();
  if (child == 0) _exit(body());
  int status = 0;
  if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

std::string PolicyOfNewThread() {
  std::string policy;
  std::thread t([&] { policy = Policy(Tid()); });
  t.join();
  return policy;
}

std::string PolicyOfNewProcess() {
  return InChild([] { return Policy(getpid()) == "realtime" ? 1 : 0; }) == 1 ? "realtime"
                                                                             : "ordinary";
}

// QEMU's main loop: real-time, and what it spawns later (the relays) inherits it.
TEST(LabPriority, RealtimeInheritedWithoutReset) {
  if (geteuid() != 0) {  // make test runs as root; elsewhere the refusal is what there is to see
    EXPECT_EQ(SetRealtime(0, kLabRealtimePriority, true).code(), ErrorCode::kFailedPrecondition);
    return;
  }
  EXPECT_EQ(InChild([] {
              if (!SetRealtime(0, kLabRealtimePriority, false).ok()) return 10;
              if (Policy(Tid()) != "realtime") return 11;
              if (PolicyOfNewProcess() != "realtime") return 12;
              if (PolicyOfNewThread() != "realtime") return 13;
              return 0;
            }),
            0);
}

// The content server's io thread: real-time itself, but what the lab starts afterwards (QEMU and
// its vCPU threads) is ordinary.
TEST(LabPriority, ResetOnForkKeepsChildrenOrdinary) {
  if (geteuid() != 0) {  // make test runs as root; elsewhere the refusal is what there is to see
    EXPECT_EQ(SetRealtime(0, kLabRealtimePriority, true).code(), ErrorCode::kFailedPrecondition);
    return;
  }
  EXPECT_EQ(InChild([] {
              if (!SetRealtime(0, kLabRealtimePriority, true).ok()) return 10;
              if (Policy(Tid()) != "realtime") return 11;
              if (PolicyOfNewProcess() != "ordinary") return 12;
              if (PolicyOfNewThread() != "ordinary") return 13;
              return 0;
            }),
            0);
}

TEST(LabPriority, WithoutPrivilegeSaysSo) {
  // Drop the privilege in a child (as root) or use the caller's lack of it.
  EXPECT_EQ(InChild([] {
              if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) return 20;
              const Status s = SetRealtime(0, kLabRealtimePriority, true);
              if (s.code() != ErrorCode::kFailedPrecondition) return 21;
              if (s.message().find("SCHED_RR") == std::string::npos) return 22;
              return Policy(Tid()) == "ordinary" ? 0 : 23;
            }),
            0);
}

TEST(LabPriority, GoneThreadIsNotFound) {
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) _exit(0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_EQ(SetRealtime(child, kLabRealtimePriority, true).code(), ErrorCode::kNotFound);
  EXPECT_EQ(SchedulingOf(child).status().code(), ErrorCode::kNotFound);
}

TEST(LabPriority, CountsOrdinaryThreadsBesidesMain) {
  std::atomic<bool> stop{false};
  std::thread worker([&] {
    while (!stop) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  EXPECT_GE(OrdinaryThreadsBesidesMain(getpid()), 1);
  stop = true;
  worker.join();
  const pid_t gone = fork();
  ASSERT_GE(gone, 0);
  if (gone == 0) _exit(0);
  int status = 0;
  ASSERT_EQ(waitpid(gone, &status, 0), gone);
  EXPECT_EQ(OrdinaryThreadsBesidesMain(gone), 0);
}

// libvirt's QEMU is found by its -name (its console socket's peer is the daemon, which created
// the socket and handed QEMU the descriptor: renicing that peer raised libvirtd instead).
TEST(LabPriority, QemuOfDomainByItsName) {
  const std::vector<std::string> argv = {"/usr/bin/qemu-system-x86_64", "-name",
                                         "guest=chaoslab-r1-ws-01,debug-threads=on", "-S"};
  EXPECT_TRUE(IsQemuOfDomain("qemu-system-x86", argv, "chaoslab-r1-ws-01"));
  EXPECT_FALSE(IsQemuOfDomain("qemu-system-x86", argv, "chaoslab-r1-ws-0"));
  EXPECT_FALSE(IsQemuOfDomain("qemu-system-x86", argv, "chaoslab-r1-ws-01,debug"));
  EXPECT_FALSE(IsQemuOfDomain("libvirtd", argv, "chaoslab-r1-ws-01"));
  EXPECT_TRUE(IsQemuOfDomain("qemu-kvm", {"qemu-kvm", "-name", "guest=d"}, "d"));
  EXPECT_FALSE(IsQemuOfDomain("qemu-system-x86", {"qemu", "guest=d"}, "d"));
  EXPECT_FALSE(IsQemuOfDomain("qemu-system-x86", {"qemu", "-name"}, "d"));
  EXPECT_EQ(LocalQemuOfDomain("chaoslab-no-such-domain-here").status().code(),
            ErrorCode::kNotFound);
}

// A run reports the first host whose QEMU main loop stayed ordinary (run_command.cc).
TEST(LabPriority, ShortfallKeepsTheFirstReason) {
  HostPathShortfallNote note;
  EXPECT_EQ(note.Get(), "");
  note.Note("ws-01", Status::FailedPrecondition("sched_setscheduler: Operation not permitted"));
  note.Note("ws-02", Status::NotFound("no local QEMU runs domain x"));
  EXPECT_EQ(note.Get(), "ws-01: sched_setscheduler: Operation not permitted");
}

}  // namespace
}  // namespace chaoslab
