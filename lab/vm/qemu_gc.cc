// `chaoslab gc` for the QEMU backend: run folders of dead orchestrators, and their QEMUs.
// What counts as the lab's is lab/backend/run_dir.h; this file only applies it.
#include <signal.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "lab/backend/run_dir.h"
#include "lab/vm/qemu_backend.h"

namespace chaoslab::vm {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kKillWait(5000);

// Reads "<pid> ..." (qemu.pid). Returns 0 if unreadable.
pid_t ReadPidFile(const fs::path& path) {
  std::ifstream in(path);
  long pid = 0;
  if (!(in >> pid) || pid <= 0) return 0;
  return static_cast<pid_t>(pid);
}

bool ProcessExists(pid_t pid) { return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM); }

std::string ReadCmdline(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

bool WaitGone(pid_t pid, milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    // A zombie still "exists" for kill(0); its /proc status says Z. Either way it no longer runs.
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) return true;
    size_t paren = line.rfind(')');
    if (paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'Z') {
      return true;
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  return false;
}

// Kills the QEMUs of a dead run (qemu.pid naming a live process tagged `chaoslab:<run_id>:`).
// False if one survived SIGKILL.
bool KillRunQemus(const fs::path& run, const std::string& run_id, std::ostream& log) {
  const std::string tag = "chaoslab:" + run_id + ":";
  bool all_dead = true;
  std::error_code ec;
  for (const auto& host : fs::directory_iterator(run, ec)) {
    if (host.is_symlink(ec) || !host.is_directory(ec)) continue;
    pid_t pid = ReadPidFile(host.path() / "qemu.pid");
    if (pid == 0 || !ProcessExists(pid)) continue;
    const std::string where = run_id + "/" + host.path().filename().string();
    if (ReadCmdline(pid).find(tag) == std::string::npos) {
      log << "gc: " << where << ": pid " << pid << " is not tagged " << tag
          << " (pid reused?), not touched\n";
      continue;
    }
    log << "gc: " << where << ": killing QEMU pid " << pid << "\n";
    kill(pid, SIGKILL);
    if (!WaitGone(pid, kKillWait)) {
      all_dead = false;
      log << "gc: pid " << pid << " survived SIGKILL\n";
    }
  }
  return all_dead;
}

}  // namespace

Status CollectGarbage(const std::string& runtime_root, std::ostream& log) {
  Status trusted = CheckRuntimeRoot(runtime_root);
  if (trusted.code() == ErrorCode::kNotFound) {
    log << "gc: " << runtime_root << " does not exist: nothing to collect\n";
    return Status::Ok();
  }
  if (!trusted.ok()) return trusted.WithContext("gc");
  std::error_code ec;
  fs::directory_iterator runs(runtime_root, ec);
  if (ec) return Status::IoError("gc: cannot list " + runtime_root + ": " + ec.message());
  Status first_error;
  int kept = 0, removed = 0;
  for (const auto& run : runs) {
    if (run.is_symlink(ec) || !run.is_directory(ec)) continue;
    const std::string run_id = run.path().filename().string();
    Result<RunOwner> owner = ReadOwnedDir(run.path().string(), run_id);
    if (!owner.ok()) {
      // Not provably the lab's (or a run being created this instant): never touched.
      log << "gc: " << run_id << ": not a lab run folder (" << owner.status().message()
          << "), left alone\n";
      ++kept;
      continue;
    }
    if (!OrchestratorGone(*owner)) {
      log << "gc: " << run_id << ": orchestrator pid " << owner->pid << " is alive, left alone\n";
      ++kept;
      continue;
    }
    if (!KillRunQemus(run.path(), run_id, log)) {
      if (first_error.ok()) {
        first_error = Status::Internal("gc: some QEMU of run " + run_id + " would not die");
      }
      continue;
    }
    // remove_all removes symlinks inside the folder, never what they point to.
    fs::remove_all(run.path(), ec);
    if (ec) {
      log << "gc: cannot remove " << run.path().string() << ": " << ec.message() << "\n";
      if (first_error.ok()) first_error = Status::IoError("gc: remove " + run.path().string());
      continue;
    }
    log << "gc: " << run_id << ": removed (orchestrator pid " << owner->pid << " is gone)\n";
    ++removed;
  }
  log << "gc: " << removed << " run folder(s) removed, " << kept << " left alone\n";
  return first_error;
}

}  // namespace chaoslab::vm
