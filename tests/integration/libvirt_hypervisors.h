// Real libvirtd instances for tests, each acting as one hypervisor (libvirtd-instance.sh: a private
// mount namespace and socket folder per instance). The fixture starts them, can kill and restart
// one, writes an inventory naming them, and on destruction destroys whatever domains are left on
// them and stops the daemons it started (by pid, never by name).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace chaoslab::testing {

// Polls `pred` every 200 ms until it holds or `timeout` passes; its last answer.
inline bool Eventually(const std::function<bool()>& pred, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return pred();
}

class Hypervisors {
 public:
  // Why the tests cannot run here (not root, libvirtd or unshare missing), or "" if they can.
  static std::string Unavailable();

  // Starts `count` instances under `dir` (hv1, hv2, ...); check ok() afterwards.
  Hypervisors(const std::filesystem::path& dir, int count);
  ~Hypervisors();
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  std::string uri(int i) const;  // 0-based
  std::string name(int i) const { return "hv" + std::to_string(i + 1); }
  // Writes an inventory with every instance (capacity `guests` each, labels site=siteN) and returns
  // its path.
  std::string WriteInventory(int guests, int memory_mib = 4096) const;

  void Kill(int i);     // SIGKILL the daemon (its QEMUs keep running, as with a real crash)
  bool Restart(int i);  // start it again on the same state (it reattaches to its QEMUs)
  // SIGSTOP / SIGCONT the daemon: a hang, not a crash (its QEMUs and connections stay). False
  // when instance i is not running. The destructor continues a stopped daemon first.
  bool Stop(int i);
  bool Continue(int i);
  pid_t pid(int i) const { return pids_[i]; }  // -1 when not running

  // virsh against instance i; returns stdout (empty on failure).
  std::string Virsh(int i, const std::vector<std::string>& args) const;
  // Names of all domains (active and inactive) on instance i.
  std::vector<std::string> Domains(int i) const;

 private:
  bool StartOne(int i);
  std::filesystem::path dir_;
  std::vector<pid_t> pids_;
  std::string error_;
};

}  // namespace chaoslab::testing
