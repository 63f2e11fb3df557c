#include "lab/backend/lab_priority.h"

#include <sched.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

namespace chaoslab {

Status SetRealtime(pid_t tid, int priority, bool reset_on_fork) {
  sched_param param{};
  param.sched_priority = priority;
  const int policy = SCHED_RR | (reset_on_fork ? SCHED_RESET_ON_FORK : 0);
  if (sched_setscheduler(tid, policy, &param) == 0) return Status::Ok();
  const int err = errno;
  const std::string why = "sched_setscheduler(SCHED_RR " + std::to_string(priority) +
                          ") on thread " + std::to_string(tid) + ": " + std::strerror(err);
  if (err == ESRCH) return Status::NotFound(why);
  return (err == EPERM || err == EACCES) ? Status::FailedPrecondition(why) : Status::IoError(why);
}

Result<std::string> SchedulingOf(pid_t tid) {
  const int policy = sched_getscheduler(tid);
  if (policy < 0) {
    return Status::NotFound("scheduling policy of thread " + std::to_string(tid) + ": " +
                            std::strerror(errno));
  }
  const int base = policy & ~SCHED_RESET_ON_FORK;
  return std::string(base == SCHED_RR || base == SCHED_FIFO ? "realtime" : "ordinary");
}

int OrdinaryThreadsBesidesMain(pid_t pid) {
  int ordinary = 0;
  std::error_code ec;
  for (const auto& task :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    char* end = nullptr;
    const std::string name = task.path().filename().string();
    const long tid = std::strtol(name.c_str(), &end, 10);
    if (end == name.c_str() || *end != '\0' || tid == pid) continue;
    auto policy = SchedulingOf(static_cast<pid_t>(tid));
    if (policy.ok() && *policy == "ordinary") ++ordinary;
  }
  return ordinary;
}

Result<pid_t> UnixPeerPid(int fd) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return Status::IoError(std::string("SO_PEERCRED: ") + std::strerror(errno));
  }
  if (cred.pid <= 0) return Status::NotFound("the socket's peer has no process id here");
  return cred.pid;
}

}  // namespace chaoslab
