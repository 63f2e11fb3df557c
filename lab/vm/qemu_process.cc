#include "lab/vm/qemu_process.h"

#include <fcntl.h>
#include <sys/wait.h>

#include <boost/process.hpp>
#include <boost/process/extend.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

namespace chaoslab::vm {

namespace bp = boost::process;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

Result<std::string> FindProgram(const std::string& name, const std::string& what) {
  std::string found;
  if (name.find('/') != std::string::npos) {
    if (access(name.c_str(), X_OK) == 0) found = fs::absolute(name).string();
  } else {
    found = bp::search_path(name).string();
  }
  if (found.empty()) {
    return Status::NotFound(name + " not found" + (what.empty() ? "" : " (" + what + ")") +
                            ": run `make setup`");
  }
  return found;
}

std::string ReadFileTail(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.size() > max_bytes) text = "..." + text.substr(text.size() - max_bytes);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

Status WriteTextFile(const std::string& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno("cannot write " + path, errno);
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return Status::FromErrno("cannot write " + path, err);
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) return Status::FromErrno("cannot write " + path, errno);
  return Status::Ok();
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return std::string("killed by signal ") + std::to_string(WTERMSIG(status)) + " (" +
           strsignal(WTERMSIG(status)) + ")";
  }
  return "ended with wait status " + std::to_string(status);
}

std::optional<int> WaitChildFor(pid_t pid, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) return -1;
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(milliseconds(5));
  }
}

void KillAndReap(pid_t pid) {
  kill(pid, SIGKILL);
  while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

Result<pid_t> Launcher::Spawn(const std::string& program, const std::vector<std::string>& args,
                              const std::string& log_path) {
  return thread_.Run([&]() -> Result<pid_t> {
    try {
      bp::child child(program, bp::args(args), (bp::std_in < bp::null),
                      ((bp::std_out & bp::std_err) > log_path),
                      bp::extend::on_exec_setup = ChildSetup{getpid()});
      pid_t pid = child.id();
      child.detach();  // reaped by the host's watcher thread
      return pid;
    } catch (const std::exception& e) {
      return Status::IoError("cannot start " + program + ": " + e.what());
    }
  });
}

Status RunTool(const std::string& program, const std::vector<std::string>& args,
               const std::string& log_path, milliseconds timeout) {
  pid_t pid;
  try {
    bp::child child(
        program, bp::args(args), (bp::std_in < bp::null), ((bp::std_out & bp::std_err) > log_path),
        bp::extend::on_exec_setup = [](auto&) { CloseInheritedFdsOnExec(); });
    pid = child.id();
    child.detach();
  } catch (const std::exception& e) {
    return Status::IoError("cannot run " + program + ": " + e.what());
  }
  std::optional<int> status = WaitChildFor(pid, timeout);
  if (!status) {
    KillAndReap(pid);
    return Status::Timeout(program + " did not finish within " + std::to_string(timeout.count()) +
                           " ms");
  }
  if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
    return Status::IoError(program + " failed (" + DescribeWaitStatus(*status) +
                           "): " + ReadFileTail(log_path));
  }
  return Status::Ok();
}

}  // namespace chaoslab::vm
