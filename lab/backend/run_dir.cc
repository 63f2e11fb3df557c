#include "lab/backend/run_dir.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

namespace chaoslab {
namespace fs = std::filesystem;

namespace {

// Markers are one short line; anything longer is not ours.
constexpr size_t kMaxMarkerBytes = 512;

std::string OctalMode(mode_t mode) {
  std::ostringstream out;
  out << "0" << std::oct << (mode & 07777);
  return out.str();
}

// Why the directory `st` describes cannot be trusted as ours, or "" if it can.
std::string WhyNotOurs(const struct stat& st, uid_t owner_uid) {
  if (S_ISLNK(st.st_mode)) return "is a symlink";
  if (!S_ISDIR(st.st_mode)) return "is not a directory";
  if (st.st_uid != owner_uid) {
    return "is owned by uid " + std::to_string(st.st_uid) + ", not by uid " +
           std::to_string(owner_uid);
  }
  if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    return "is writable by " + std::string((st.st_mode & S_IWOTH) ? "others" : "its group") +
           " (mode " + OctalMode(st.st_mode) + ")";
  }
  return "";
}

Result<RunOwner> ParseMarker(const std::string& text, const std::string& where) {
  std::istringstream in(text);
  std::string k_run, k_pid, k_start, extra;
  RunOwner o;
  long pid = 0;
  in >> k_run >> o.run_id >> k_pid >> pid >> k_start;
  if (!in || k_run != "run" || k_pid != "pid" || k_start != "start" || pid <= 0) {
    return Status::FailedPrecondition(where + ": not a chaoslab marker");
  }
  in >> o.start;  // may be empty
  if (in >> extra) return Status::FailedPrecondition(where + ": not a chaoslab marker");
  o.pid = static_cast<pid_t>(pid);
  return o;
}

}  // namespace

RunOwner ThisProcessOwns(const std::string& run_id) {
  return {run_id, getpid(), ProcessStartTime(getpid())};
}

Status CheckRuntimeRoot(const std::string& root, uid_t owner_uid) {
  for (const auto& part : fs::path(root)) {
    if (part == "..") {
      return Status::FailedPrecondition("runtime root " + root +
                                        " has a '..' component: name the folder itself");
    }
  }
  // lstat follows a symlink named with a trailing "/" or "/.": look at the name itself.
  std::string name = fs::path(root).lexically_normal().string();
  while (name.size() > 1 && name.back() == '/') name.pop_back();
  struct stat st {};
  if (lstat(name.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::NotFound("runtime root " + root + " does not exist");
    return Status::FromErrno("runtime root " + root, errno);
  }
  if (std::string why = WhyNotOurs(st, owner_uid); !why.empty()) {
    return Status::FailedPrecondition(
        "runtime root " + root + " " + why +
        ": refusing to use it (the lab only trusts a real directory owned by you that nobody "
        "else can write; set CHAOSLAB_RUNTIME_DIR to one, e.g. a new folder with mode 0700)");
  }
  return Status::Ok();
}

Status CheckRuntimeRoot(const std::string& root) { return CheckRuntimeRoot(root, geteuid()); }

Result<std::string> PrepareRuntimeRoot(const std::string& root) {
  if (root.empty()) return Status::InvalidArgument("runtime root: empty path");
  std::error_code ec;
  std::string abs = fs::absolute(root, ec).lexically_normal().string();
  if (ec) return Status::IoError("runtime root " + root + ": " + ec.message());
  while (abs.size() > 1 && abs.back() == '/') abs.pop_back();
  const fs::path parent = fs::path(abs).parent_path();
  fs::create_directories(parent, ec);
  if (ec) return Status::IoError("create " + parent.string() + ": " + ec.message());
  if (mkdir(abs.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::FromErrno("create runtime root " + abs, errno);
  }
  RETURN_IF_ERROR(CheckRuntimeRoot(abs));
  return abs;
}

Status MakeOwnedDir(const std::string& dir, const RunOwner& owner) {
  if (mkdir(dir.c_str(), 0700) != 0) {
    if (errno == EEXIST) return Status::FailedPrecondition(dir + " exists already");
    return Status::FromErrno("create folder " + dir, errno);
  }
  chmod(dir.c_str(), 0700);  // whatever the umask
  const std::string path = dir + "/" + kOwnerMarker;
  const std::string text =
      "run " + owner.run_id + " pid " + std::to_string(owner.pid) + " start " + owner.start + "\n";
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  bool ok = fd >= 0 && write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  const int err = errno;
  if (fd >= 0 && close(fd) != 0) ok = false;
  if (!ok) {
    std::error_code ec;
    fs::remove_all(dir, ec);
    return Status::FromErrno("write marker " + path, err);
  }
  return Status::Ok();
}

Result<RunOwner> ReadOwnedDir(const std::string& dir, const std::string& expected_run_id) {
  struct stat st {};
  if (lstat(dir.c_str(), &st) != 0) return Status::FromErrno(dir, errno);
  if (S_ISLNK(st.st_mode)) return Status::FailedPrecondition(dir + " is a symlink");
  if (!S_ISDIR(st.st_mode)) return Status::FailedPrecondition(dir + " is not a directory");
  if (st.st_uid != geteuid()) {
    return Status::FailedPrecondition(dir + " is owned by uid " + std::to_string(st.st_uid));
  }
  const std::string path = dir + "/" + kOwnerMarker;
  int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound(dir + " has no " + kOwnerMarker);
    if (errno == ELOOP) return Status::FailedPrecondition(path + " is a symlink");
    return Status::FromErrno(path, errno);
  }
  std::string text(kMaxMarkerBytes + 1, '\0');
  struct stat mst {};
  ssize_t n = -1;
  std::string why;
  if (fstat(fd, &mst) != 0 || !S_ISREG(mst.st_mode)) {
    why = "is not a regular file";
  } else if (mst.st_uid != geteuid()) {
    why = "is owned by uid " + std::to_string(mst.st_uid);
  } else {
    n = read(fd, text.data(), text.size());
    if (n < 0 || static_cast<size_t>(n) > kMaxMarkerBytes) why = "cannot be read or is too long";
  }
  close(fd);
  if (!why.empty()) return Status::FailedPrecondition(path + " " + why);
  text.resize(static_cast<size_t>(n));
  ASSIGN_OR_RETURN(RunOwner owner, ParseMarker(text, path));
  if (owner.run_id != expected_run_id) {
    return Status::FailedPrecondition(path + " names run '" + owner.run_id + "', not '" +
                                      expected_run_id + "'");
  }
  return owner;
}

bool OrchestratorGone(const RunOwner& owner) {
  if (owner.pid <= 0) return true;
  if (kill(owner.pid, 0) != 0 && errno != EPERM) return true;
  if (owner.start.empty()) return false;  // no start time recorded: trust the pid
  const std::string now = ProcessStartTime(owner.pid);
  return !now.empty() && now != owner.start;  // another start time: the pid was reused
}

Status CheckInsideRunDir(const std::string& root, const std::string& run_id,
                         const std::string& path) {
  const fs::path run = fs::path(root) / run_id;
  const fs::path p(path);
  if (!p.is_absolute()) return Status::FailedPrecondition(path + " is not an absolute path");
  for (const auto& part : p) {
    if (part == "." || part == "..") {
      return Status::FailedPrecondition(path + " has a '" + part.string() + "' component");
    }
  }
  const fs::path rel = p.lexically_relative(run);
  if (rel.empty() || *rel.begin() == ".." || rel == ".") {
    return Status::FailedPrecondition(path + " is not inside run folder " + run.string());
  }
  // No symlink from the run folder down to the path's parent: nothing can lead out of it.
  fs::path at = run;
  struct stat st {};
  for (auto it = rel.begin(); it != rel.end(); ++it) {
    if (lstat(at.c_str(), &st) != 0) return Status::FromErrno(at.string(), errno);
    if (S_ISLNK(st.st_mode) || !S_ISDIR(st.st_mode)) {
      return Status::FailedPrecondition(path + ": " + at.string() + " is a symlink or no folder");
    }
    at /= *it;
  }
  return Status::Ok();
}

std::string DefaultRuntimeRoot() { return "/tmp/chaoslab-" + std::to_string(getuid()); }

std::string ProcessStartTime(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return "";
  size_t paren = stat.rfind(')');  // the command name may contain spaces and parentheses
  if (paren == std::string::npos || paren + 2 > stat.size()) return "";
  std::istringstream fields(stat.substr(paren + 2));
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i) {
    if (i == 22) return field;
  }
  return "";
}

}  // namespace chaoslab
