#include "tests/integration/libvirt_hypervisors.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "lab/common/subprocess.h"

namespace chaoslab::testing {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {
std::string Script() {
  const char* s = std::getenv("CHAOSLAB_SOURCE_DIR");
  return std::string(s ? s : ".") + "/tests/integration/libvirtd-instance.sh";
}
bool Exited(pid_t pid) {
  int status = 0;
  return waitpid(pid, &status, WNOHANG) == pid;
}
}  // namespace

std::string Hypervisors::Unavailable() {
  if (geteuid() != 0) return "needs root (libvirtd instances in private mount namespaces)";
  for (const char* tool : {"/usr/sbin/libvirtd", "/usr/bin/unshare", "/usr/bin/virsh"}) {
    if (access(tool, X_OK) != 0) return std::string(tool) + " not installed";
  }
  return "";
}

Hypervisors::Hypervisors(const fs::path& dir, int count) : dir_(dir), pids_(count, -1) {
  for (int i = 0; i < count; ++i) {
    if (!StartOne(i)) return;
  }
}

bool Hypervisors::StartOne(int i) {
  const fs::path d = dir_ / name(i);
  fs::create_directories(d);
  fs::remove(d / "sock" / "libvirt-sock");
  pid_t pid = fork();
  if (pid == 0) {
    int log = open((d / "daemon.out").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    dup2(log, 1);
    dup2(log, 2);
    int null = open("/dev/null", O_RDONLY);
    dup2(null, 0);
    setpgid(0, 0);
    std::string script = Script(), arg = d.string();
    execl("/bin/sh", "sh", script.c_str(), arg.c_str(), nullptr);
    _exit(127);
  }
  pids_[i] = pid;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (Exited(pid)) {
      pids_[i] = -1;
      error_ = name(i) + ": libvirtd exited at start; see " + (d / "daemon.out").string();
      return false;
    }
    if (fs::exists(d / "sock" / "libvirt-sock") && !Virsh(i, {"version"}).empty()) return true;
    std::this_thread::sleep_for(100ms);
  }
  error_ = name(i) + ": libvirtd did not answer within 30 s";
  return false;
}

Hypervisors::~Hypervisors() {
  for (int i = 0; i < static_cast<int>(pids_.size()); ++i) Continue(i);  // a test cut short
  for (int i = 0; i < static_cast<int>(pids_.size()); ++i) {
    if (pids_[i] < 0 && !Restart(i)) continue;  // killed: back once, to stop its QEMUs
    for (const auto& dom : Domains(i)) {
      Virsh(i, {"destroy", dom});
      Virsh(i, {"undefine", dom});
    }
    kill(pids_[i], SIGTERM);
    bool gone = false;
    for (int t = 0; t < 100 && !gone; ++t) {
      gone = Exited(pids_[i]);
      if (!gone) std::this_thread::sleep_for(100ms);
    }
    if (!gone) {
      kill(pids_[i], SIGKILL);
      waitpid(pids_[i], nullptr, 0);
    }
  }
}

std::string Hypervisors::uri(int i) const {
  return "qemu:///system?socket=" + (dir_ / name(i) / "sock" / "libvirt-sock").string();
}

std::string Hypervisors::WriteInventory(int guests, int memory_mib) const {
  std::ostringstream y;
  y << "hypervisors:\n";
  for (size_t i = 0; i < pids_.size(); ++i) {
    y << "  - name: " << name(i) << "\n    uri: " << uri(i) << "\n    capacity: {guests: " << guests
      << ", memory_mib: " << memory_mib << "}\n    labels: {site: site" << i + 1 << "}\n";
  }
  const std::string path = (dir_ / "inventory.yaml").string();
  std::ofstream(path) << y.str();
  return path;
}

void Hypervisors::Kill(int i) {
  if (pids_[i] < 0) return;
  kill(pids_[i], SIGKILL);
  waitpid(pids_[i], nullptr, 0);
  pids_[i] = -1;
}

bool Hypervisors::Stop(int i) { return pids_[i] >= 0 && kill(pids_[i], SIGSTOP) == 0; }

bool Hypervisors::Continue(int i) { return pids_[i] >= 0 && kill(pids_[i], SIGCONT) == 0; }

bool Hypervisors::Restart(int i) {
  if (pids_[i] >= 0) return true;
  return StartOne(i);
}

std::string Hypervisors::Virsh(int i, const std::vector<std::string>& args) const {
  std::vector<std::string> argv{"virsh", "-q", "-c", uri(i)};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = RunProcess(argv, std::chrono::seconds(30));
  if (!r.ok() || r->exit_code != 0) return "";
  return r->out.empty() ? " " : r->out;
}

std::vector<std::string> Hypervisors::Domains(int i) const {
  std::istringstream in(Virsh(i, {"list", "--all", "--name"}));
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line != " ") out.push_back(line);
  }
  return out;
}

}  // namespace chaoslab::testing
