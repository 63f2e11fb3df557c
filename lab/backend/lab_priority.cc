#include "lab/backend/lab_priority.h"

#include <sched.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
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

bool IsQemuOfDomain(std::string_view comm, const std::vector<std::string>& argv,
                    std::string_view domain) {
  if (comm.rfind("qemu-system", 0) != 0 && comm.rfind("qemu-kvm", 0) != 0) return false;
  const std::string want = "guest=" + std::string(domain);
  for (size_t i = 0; i + 1 < argv.size(); ++i) {
    if (argv[i] != "-name") continue;
    const std::string& v = argv[i + 1];
    if (v == want || v.rfind(want + ",", 0) == 0) return true;
  }
  return false;
}

Result<pid_t> LocalQemuOfDomain(const std::string& domain) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    char* end = nullptr;
    const long pid = std::strtol(name.c_str(), &end, 10);
    if (end == name.c_str() || *end != '\0' || pid <= 0) continue;
    std::ifstream comm_file(entry.path() / "comm");
    std::string comm;
    if (!std::getline(comm_file, comm)) continue;
    if (comm.rfind("qemu", 0) != 0) continue;
    std::ifstream cmdline(entry.path() / "cmdline", std::ios::binary);
    std::vector<std::string> argv;
    for (std::string arg; std::getline(cmdline, arg, '\0');) argv.push_back(arg);
    if (IsQemuOfDomain(comm, argv, domain)) return static_cast<pid_t>(pid);
  }
  return Status::NotFound("no local QEMU runs domain " + domain);
}

}  // namespace chaoslab
