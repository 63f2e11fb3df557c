// How the QEMU backend runs processes: QEMU itself (from one long-lived thread, dying with the
// orchestrator) and short tools such as qemu-img (with a deadline, output to a log). Internal to
// lab/vm.
#pragma once

#include <sys/prctl.h>
#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <optional>
#include <string>
#include <vector>

#include "lab/backend/task_thread.h"
#include "lab/common/child_fds.h"
#include "lab/common/status.h"

namespace chaoslab::vm {

// `name` on PATH, or a path to an executable: its absolute path. NotFound "<name> not found (what):
// run `make setup`".
Result<std::string> FindProgram(const std::string& name, const std::string& what);

// The end of a log file (for error messages): at most `max_bytes`, trailing newlines removed.
std::string ReadFileTail(const std::string& path, size_t max_bytes = 600);

// Writes `text` to `path` (0644, replaced). The error names the cause (a full disk, say: a lost
// host's reason is all its report has).
Status WriteTextFile(const std::string& path, const std::string& text);

// "exited with status N", "killed by signal N (name)".
std::string DescribeWaitStatus(int status);

// Waits for our child `pid` to end and reaps it. Returns its wait status, or nullopt at the
// deadline (the child is then still ours to kill and reap). Polls: Boost 1.74's child::wait_for can
// sleep for the whole timeout even when the child has already ended.
std::optional<int> WaitChildFor(pid_t pid, std::chrono::milliseconds timeout);

// SIGKILL and reap our child `pid`.
void KillAndReap(pid_t pid);

// In the forked child, before exec: die with the orchestrator, inherit no stray descriptors.
struct ChildSetup {
  pid_t parent;
  template <typename Executor>
  void operator()(Executor&) const {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // the parent died before prctl took effect
    // Its own process group: Ctrl-C at the terminal must reach only the orchestrator, which then
    // stops the run in order and reports; the guests must not die first.
    setpgid(0, 0);
    CloseInheritedFdsOnExec();
  }
};

// Starts processes from one long-lived thread. PR_SET_PDEATHSIG fires when the *thread* that forked
// the child ends, so forking from whatever thread calls Start() could kill guests early.
// Thread-safe.
class Launcher {
 public:
  // Starts `program` with `args`, stdin from /dev/null, stdout+stderr to `log_path`. Returns its
  // pid; the caller reaps it.
  Result<pid_t> Spawn(const std::string& program, const std::vector<std::string>& args,
                      const std::string& log_path);

 private:
  TaskThread thread_;
};

// Runs a short tool to completion (qemu-img) with a deadline; output goes to `log_path`. IoError
// with the end of that log if it fails, Timeout (killed) past the deadline.
Status RunTool(const std::string& program, const std::vector<std::string>& args,
               const std::string& log_path, std::chrono::milliseconds timeout);

}  // namespace chaoslab::vm
