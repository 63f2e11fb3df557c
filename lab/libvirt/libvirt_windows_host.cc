// What a Windows host of the libvirt backend has more than a winsim one: the administrator SAC
// logs on as, a clone's own UEFI variables and TPM state, and an swtpm per boot.
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "lab/libvirt/libvirt_host.h"

namespace chaoslab::libvirt {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

// Whether `pid` is a live swtpm serving `socket` (a pid file may outlive its process, and the pid
// be reused: only that exact process is ever signalled).
bool IsSwtpmOf(pid_t pid, const std::string& socket) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::string cmd((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  // argv[0] must be swtpm: QEMU's command line names the same socket.
  const std::string argv0 = cmd.substr(0, cmd.find('\0'));
  if (fs::path(argv0).filename() != "swtpm" || cmd.find(socket) == std::string::npos) return false;
  std::ifstream st("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  std::getline(st, stat);
  size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z';
}

// The administrator SAC's cmd channel logs on as: build.sh's admin-password.txt, first line.
sac::Credentials AdministratorOf(const WindowsGolden& golden) {
  sac::Credentials c;
  std::ifstream in(golden.admin_password);
  std::getline(in, c.password);
  while (!c.password.empty() && (c.password.back() == '\r' || c.password.back() == ' '))
    c.password.pop_back();
  return c;
}

}  // namespace

std::unique_ptr<WindowsConsole> LibvirtHost::MakeWindowsConsole() const {
  return std::make_unique<WindowsConsole>(AdministratorOf(*run_->options->windows));
}

Status LibvirtHost::CopyGoldenState() {
  // The clone's firmware variables (boot entries, Secure Boot keys) and TPM (BitLocker's sealed
  // key) are the golden machine's, so that it boots and unlocks as that machine did.
  const WindowsGolden& golden = *run_->options->windows;
  const std::string what = "host '" + spec_.id + "': copy the golden image's ";
  std::error_code ec;
  fs::copy_file(golden.ovmf_vars, nvram_, fs::copy_options::overwrite_existing, ec);
  if (ec) return Status::IoError(what + "UEFI variables " + golden.ovmf_vars + ": " + ec.message());
  fs::remove_all(tpm_dir_, ec);
  fs::copy(golden.tpm_state, tpm_dir_, fs::copy_options::recursive, ec);
  if (ec) return Status::IoError(what + "TPM state " + golden.tpm_state + ": " + ec.message());
  fs::permissions(tpm_dir_, fs::perms::owner_all, fs::perm_options::replace, ec);
  return Status::Ok();
}

void LibvirtHost::StopSwtpm() {
  pid_t pid = 0;
  {
    std::ifstream in(swtpm_pid_);
    in >> pid;
  }
  if (pid > 0 && IsSwtpmOf(pid, tpm_socket_)) {
    kill(pid, SIGTERM);
    for (int i = 0; i < 50 && IsSwtpmOf(pid, tpm_socket_); ++i) {
      std::this_thread::sleep_for(milliseconds(20));
    }
    if (IsSwtpmOf(pid, tpm_socket_)) kill(pid, SIGKILL);
    for (int i = 0; i < 50 && IsSwtpmOf(pid, tpm_socket_); ++i) {
      std::this_thread::sleep_for(milliseconds(20));
    }
  }
  std::error_code ec;
  fs::remove(swtpm_pid_, ec);
  fs::remove(tpm_socket_, ec);
}

Status LibvirtHost::StartSwtpm(const std::string& what) {
  // One swtpm per boot: QEMU shuts its TPM down when it exits (every reset ends the domain), and
  // --terminate ends swtpm when that connection closes. The previous one must be gone first: it
  // holds the state folder's lock.
  StopSwtpm();
  const std::string swtpm = run_->options->swtpm;
  RETURN_IF_ERROR(RunTool({swtpm, "socket", "--tpm2", "--tpmstate", "dir=" + tpm_dir_, "--ctrl",
                           "type=unixio,path=" + tpm_socket_, "--terminate", "--daemon", "--pid",
                           "file=" + swtpm_pid_, "--log", "file=" + dir_ + "/swtpm.log"},
                          what + ": start swtpm"));
  std::error_code ec;
  for (int i = 0; i < 250 && !fs::exists(tpm_socket_, ec); ++i) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  if (!fs::exists(tpm_socket_, ec)) {
    StopSwtpm();
    return Status::Unavailable(what + ": swtpm did not create " + tpm_socket_ + " (see " + dir_ +
                               "/swtpm.log)");
  }
  return Status::Ok();
}

}  // namespace chaoslab::libvirt
