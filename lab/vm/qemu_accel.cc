#include "lab/vm/qemu_accel.h"

#include <sys/wait.h>
#include <unistd.h>

#include <boost/process.hpp>
#include <boost/process/extend.hpp>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>

#include "lab/backend/guest_network.h"
#include "lab/vm/qemu_process.h"

namespace chaoslab::vm {
namespace {

namespace bp = boost::process;
namespace fs = std::filesystem;

constexpr std::chrono::milliseconds kProbeTimeout(2500);

// A boot sector that writes 0x10 to isa-debug-exit (QEMU exits with status 0x21) and halts.
constexpr unsigned char kProbeBootCode[] = {0xB0, 0x10, 0xE6, 0xF4, 0xF4, 0xEB, 0xFD};
constexpr int kProbeExitCode = (0x10 << 1) | 1;

bool KvmReallyWorks(const std::string& qemu) {
  if (access("/dev/kvm", R_OK | W_OK) != 0) return false;
  char tmpl[] = "/tmp/chaoslab-kvmprobe-XXXXXX";
  if (!mkdtemp(tmpl)) return false;
  const std::string dir = tmpl;
  const std::string disk = dir + "/boot.img";
  bool works = false;
  {
    std::string sector(512, '\0');
    std::memcpy(sector.data(), kProbeBootCode, sizeof(kProbeBootCode));
    sector[510] = '\x55';
    sector[511] = '\xAA';
    std::ofstream(disk, std::ios::binary) << sector;
  }
  try {
    bp::child child(
        qemu,
        bp::args({"-accel", "kvm", "-M", "pc", "-nodefaults", "-no-user-config", "-display", "none",
                  "-drive", "file=" + QemuOptEscape(disk) + ",format=raw,if=ide", "-device",
                  "isa-debug-exit,iobase=0xf4,iosize=0x04"}),
        (bp::std_in < bp::null), (bp::std_out > bp::null), (bp::std_err > bp::null),
        bp::extend::on_exec_setup = ChildSetup{getpid()});
    pid_t pid = child.id();
    child.detach();
    std::optional<int> status = WaitChildFor(pid, kProbeTimeout);
    if (status) {
      works = WIFEXITED(*status) && WEXITSTATUS(*status) == kProbeExitCode;
    } else {
      KillAndReap(pid);  // hung: the nested-virtualisation failure mode
    }
  } catch (const std::exception&) {
    works = false;
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  return works;
}

}  // namespace

Result<std::string> ResolveAccel(const std::string& qemu, const std::string& accel) {
  if (accel == "kvm" || accel == "tcg") return accel;
  if (accel != "auto") {
    return Status::InvalidArgument("accel '" + accel + "' is not one of auto, kvm, tcg");
  }
  static std::mutex mu;
  static std::map<std::string, std::string> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(qemu);
  if (it != cache.end()) return it->second;
  std::string chosen = KvmReallyWorks(qemu) ? "kvm" : "tcg";
  cache[qemu] = chosen;
  return chosen;
}

}  // namespace chaoslab::vm
