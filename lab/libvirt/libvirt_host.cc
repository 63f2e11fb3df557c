#include "lab/libvirt/libvirt_host.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <thread>

#include "lab/backend/console_socket.h"
#include "lab/backend/guest_clock.h"
#include "lab/common/subprocess.h"

namespace chaoslab::libvirt {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kConsoleConnectTimeout(5000);

}  // namespace

Status RunTool(const std::vector<std::string>& argv, const std::string& what) {
  auto r = RunProcess(argv, std::chrono::seconds(60));
  if (!r.ok()) return r.status().WithContext(what);
  if (r->exit_code != 0) {
    std::string msg = r->err.empty() ? r->out : r->err;
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    if (IsDiskLockConflict(msg)) return DiskInUse(what, msg);
    return Status::IoError(what + ": " + argv[0] + " failed: " + msg);
  }
  return Status::Ok();
}

LibvirtHost::LibvirtHost(const LibvirtRun* run, Hypervisor* hv, HostSpec spec, std::string dir,
                         std::string name)
    : run_(run), hv_(hv), spec_(std::move(spec)), dir_(std::move(dir)), name_(std::move(name)) {
  files_.overlay = dir_ + "/overlay.qcow2";
  files_.console_socket = dir_ + "/console.sock";
  files_.serial_log = dir_ + "/serial.log";
  windows_ = run_->options->windows.has_value();
  if (!windows_ && !spec_.tpm_secret.empty()) files_.tpm_secret = dir_ + "/tpm.secret";
  if (windows_) {
    nvram_ = dir_ + "/OVMF_VARS.fd";
    tpm_dir_ = dir_ + "/tpm";
    tpm_socket_ = dir_ + "/swtpm.sock";
    swtpm_pid_ = dir_ + "/swtpm.pid";
    files_.agent_socket = dir_ + "/agent.sock";
    files_.agent_log = dir_ + "/agent.log";
    wincon_ = MakeWindowsConsole();
  }
}

LibvirtHost::~LibvirtHost() {
  CloseConsole();
  if (dom_) virDomainFree(dom_);
  if (windows_) StopSwtpm();
}

Status LibvirtHost::MakeDisk() {
  const std::string qemu_img = run_->options->qemu_img;
  std::error_code ec;
  fs::remove(files_.overlay, ec);
  // The winsim group disks are raw; the golden Windows disk is qcow2.
  Result<std::string> base_format = DiskImageFormat(spec_.base_disk);
  std::vector<std::string> create =
      OverlayCreateArgs(spec_.base_disk, base_format.ok() ? *base_format : "raw", files_.overlay);
  create.insert(create.begin(), qemu_img);
  RETURN_IF_ERROR(RunTool(create, "host '" + spec_.id + "': create overlay disk"));
  std::vector<std::string> snapshot = SnapshotTakeArgs(files_.overlay);
  snapshot.insert(snapshot.begin(), qemu_img);
  RETURN_IF_ERROR(RunTool(snapshot, "host '" + spec_.id + "': snapshot the overlay disk"));
  if (!windows_) return Status::Ok();
  return CopyGoldenState();
}

Status LibvirtHost::LaunchLocked(const std::string& what) {
  ASSIGN_OR_RETURN(virDomainPtr dom, CreateDomainLocked(what));
  int fd = -1, agent_fd = -1;
  RETURN_IF_ERROR(ConnectConsolesLocked(dom, what, &fd, &agent_fd));
  RaiseMainLoop();
  StartReadersLocked(dom, fd, agent_fd);
  return Status::Ok();
}

Result<virDomainPtr> LibvirtHost::CreateDomainLocked(const std::string& what) {
  ConnRef c{hv_->Ref()};
  if (!c.conn)
    return Status::Unavailable(what + ": hypervisor " + hv_->config.name + " is not connected");
  std::error_code ec;
  fs::remove(files_.console_socket, ec);
  if (!files_.agent_socket.empty()) fs::remove(files_.agent_socket, ec);
  if (windows_) RETURN_IF_ERROR(StartSwtpm(what));
  const std::string xml = DomainXmlLocked();
  // After a reset, libvirt reports the old domain STOPPED a moment before it drops the transient
  // domain from its list; a create in between is refused with "already exists". Retry briefly.
  for (int attempt = 0;; ++attempt) {
    virDomainPtr dom = virDomainCreateXML(c.conn, xml.c_str(),
                                          VIR_DOMAIN_START_PAUSED | VIR_DOMAIN_START_AUTODESTROY);
    if (dom) return dom;
    const std::string msg = LastError();
    if (attempt >= 50 || msg.find("already exists") == std::string::npos) {
      if (windows_) StopSwtpm();
      return Status::Unavailable(what + ": " + msg);
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
}

Status LibvirtHost::ConnectConsolesLocked(virDomainPtr dom, const std::string& what, int* fd,
                                          int* agent_fd) {
  // The consoles first, while the vCPUs wait: no line is missed.
  const auto deadline = Clock::now() + kConsoleConnectTimeout;
  Result<int> console = ConnectUnixSocketBy(files_.console_socket, deadline);
  Result<int> agent(-1);
  if (console.ok() && !files_.agent_socket.empty()) {
    agent = ConnectUnixSocketBy(files_.agent_socket, deadline);
  }
  if (!console.ok() || !agent.ok()) {
    if (console.ok()) close(*console);
    ++stale_stops_;
    virDomainDestroy(dom);
    virDomainFree(dom);
    if (windows_) StopSwtpm();
    const Status& why = console.ok() ? agent.status() : console.status();
    return Status::Unavailable(what + ": cannot connect to the console: " + why.message());
  }
  *fd = *console;
  *agent_fd = *agent;
  return Status::Ok();
}

void LibvirtHost::RaiseMainLoop() {
  // Its QEMU's main loop in real time, as the QEMU backend's (on a local hypervisor; a remote
  // one's QEMU is not ours to find). The domain is paused: its vCPU thread exists and stays
  // ordinary.
  if (GuestClockFor(run_->accel, spec_) == GuestClock::kInstructions) {
    auto qemu_pid = LocalQemuOfDomain(name_);
    Status raised =
        qemu_pid.ok() ? SetRealtime(*qemu_pid, kLabRealtimePriority, false) : qemu_pid.status();
    if (!raised.ok()) run_->shortfall->Note(spec_.id, raised);
  }
}

void LibvirtHost::StartReadersLocked(virDomainPtr dom, int fd, int agent_fd) {
  if (dom_) virDomainFree(dom_);
  dom_ = dom;
  // The previous incarnation's readers have seen EOF.
  if (reader_.joinable()) reader_.join();
  if (agent_reader_.joinable()) agent_reader_.join();
  if (console_fd_ >= 0) close(console_fd_);
  if (agent_fd_ >= 0) close(agent_fd_);
  console_fd_ = fd;
  agent_fd_ = agent_fd;
  {
    std::lock_guard<std::mutex> console_lock(console_mu_);
    open_readers_ = agent_fd >= 0 ? 2 : 1;
    reading_fds_ = {fd, agent_fd};
  }
  reboot_detail_.clear();
  if (wincon_) {
    // A new boot: commands of the last one that never ran are answered now.
    WindowsConsole::Output out;
    {
      std::lock_guard<std::mutex> wincon_lock(wincon_mu_);
      out = wincon_->OnBoot(boot_.target);
    }
    Apply(out);
  }
  reader_ = std::thread([this, fd] { ReadConsole(fd); });
  if (agent_fd >= 0) agent_reader_ = std::thread([this, agent_fd] { ReadAgent(agent_fd); });
}

std::string LibvirtHost::DomainXmlLocked() const {
  const LibvirtOptions& options = *run_->options;
  DomainXmlInput in;
  in.name = name_;
  in.spec = spec_;
  in.files = files_;
  in.owner.run_id = options.run_id;
  in.owner.host_id = spec_.id;
  in.owner.owner_machine = run_->machine;
  in.owner.owner_pid = getpid();
  in.owner.owner_start = run_->owner_start;
  in.owner.files = {dir_};
  in.boot = boot_.target;
  in.usb_media = boot_.media;
  in.accel = run_->accel;
  in.emulator = options.emulator;
  in.bios_rom = options.bios_rom;
  in.relay = options.relay;
  in.tsc_khz = GuestTscKhz(GuestClockFor(run_->accel, in.spec), run_->accel);
  if (options.windows) {
    in.windows = true;
    in.ovmf_code = options.windows->ovmf_code();
    in.ovmf_vars_template = options.windows->ovmf_vars_template();
    in.secure_boot = options.windows->secure_boot;
    in.nvram = nvram_;
    in.tpm_socket = tpm_socket_;
    in.vcpus = options.windows_vcpus;
    in.spec.memory_mib = std::max(in.spec.memory_mib, options.windows_memory_mib);
  }
  return DomainXml(in);
}

Status LibvirtHost::Start() {
  const std::string what = "start host " + spec_.id + " on " + hv_->config.name;
  std::unique_lock<std::mutex> lock(mu_);
  if (lost_) return Status::Unavailable(what + ": the host is lost");
  if (running_) return Status::FailedPrecondition(what + ": already running");
  RETURN_IF_ERROR(LaunchLocked(what));
  running_ = true;
  power_off_requested_ = false;
  paused_in_relaunch_ = false;
  console_in_relaunch_.clear();
  run_->queue->Push(
      spec_.id, HostEventKind::kStarted,
      "domain=" + name_ + " hypervisor=" + hv_->config.name + " accel=" + run_->accel);
  swallow_resume_ = true;
  if (virDomainResume(dom_) < 0) {
    swallow_resume_ = false;
    const std::string msg = LastError();
    virDomainDestroy(dom_);  // its STOPPED event reports the end (kLost)
    return Status::Unavailable(what + ": could not start the vCPUs: " + msg);
  }
  return Status::Ok();
}

void LibvirtHost::Relaunch() {
  std::unique_lock<std::mutex> lock(mu_);
  auto done = [&] {
    relaunching_ = false;
    cv_.notify_all();
  };
  if (lost_) return done();
  if (power_off_requested_) {
    running_ = false;
    done();
    run_->queue->Push(spec_.id, HostEventKind::kShutdown, "killed");
    return;
  }
  Status s = LaunchLocked("restart host " + spec_.id + " after a reset");
  if (!s.ok()) {
    running_ = false;
    done();
    run_->queue->Push(spec_.id, HostEventKind::kLost, s.message());
    return;
  }
  if (!console_in_relaunch_.empty()) {
    if (wincon_) {
      WindowsConsole::Output out;
      {
        std::lock_guard<std::mutex> wincon_lock(wincon_mu_);
        out = wincon_->Type(console_in_relaunch_);
      }
      Apply(out);
    } else {
      (void)SendTo(console_fd_, console_in_relaunch_);
    }
    console_in_relaunch_.clear();
  }
  if (paused_in_relaunch_) {
    // Stopped as asked; Resume() resumes it (and its RESUME is reported as kResumed).
    paused_in_relaunch_ = false;
    run_->queue->Push(spec_.id, HostEventKind::kStopped);
    return done();
  }
  swallow_resume_ = true;
  if (virDomainResume(dom_) < 0) {
    swallow_resume_ = false;
    virDomainDestroy(dom_);  // reported as kLost by its STOPPED event
  }
  done();
}

Status LibvirtHost::DomainOp(const std::string& what, int (*op)(virDomainPtr)) {
  if (lost_) return Status::Unavailable(what + " host " + spec_.id + ": the host is lost");
  if (!running_ || !dom_) {
    return Status::FailedPrecondition(what + " host " + spec_.id + ": not running");
  }
  if (op(dom_) < 0) return Status::Unavailable(what + " host " + spec_.id + ": " + LastError());
  return Status::Ok();
}

Status LibvirtHost::Reset() {
  std::lock_guard<std::mutex> lock(mu_);
  if (running_ && (relaunching_ || !reboot_detail_.empty())) return Status::Ok();  // resetting
  // Known as a reset from now on, not only once QEMU's SHUTDOWN arrives: a Pause/Resume that
  // follows at once belongs to the restarted domain.
  Status s = DomainOp("reset", [](virDomainPtr d) { return virDomainReset(d, 0); });
  if (s.ok()) reboot_detail_ = "host";
  return s;
}

Status LibvirtHost::Pause() {
  std::lock_guard<std::mutex> lock(mu_);
  if (running_ && (relaunching_ || !reboot_detail_.empty())) {
    paused_in_relaunch_ = true;
    return Status::Ok();
  }
  // Idempotent, as QEMU's "stop" is (libvirt would refuse some states).
  return DomainOp("pause", [](virDomainPtr d) {
    int state = 0;
    if (virDomainGetState(d, &state, nullptr, 0) == 0 && state == VIR_DOMAIN_PAUSED) return 0;
    return virDomainSuspend(d);
  });
}

Status LibvirtHost::Resume() {
  std::lock_guard<std::mutex> lock(mu_);
  if (running_ && (relaunching_ || !reboot_detail_.empty())) {
    paused_in_relaunch_ = false;
    return Status::Ok();
  }
  paused_in_relaunch_ = false;
  // Idempotent, as QEMU's "cont" is: libvirt refuses to resume a running domain.
  return DomainOp("resume", [](virDomainPtr d) {
    int state = 0;
    if (virDomainGetState(d, &state, nullptr, 0) == 0 && state == VIR_DOMAIN_RUNNING) return 0;
    return virDomainResume(d);
  });
}

Status LibvirtHost::PowerOff() {
  std::unique_lock<std::mutex> lock(mu_);
  power_off_requested_ = true;
  // A relaunch sees power_off_requested_ and ends by itself (kShutdown "killed").
  // A reset under way (QEMU exiting, or the new domain starting) ends by itself.
  cv_.wait_for(lock, std::chrono::seconds(30),
               [&] { return lost_ || (!relaunching_ && reboot_detail_.empty()); });
  if (!running_ || !dom_ || lost_) return Status::Ok();
  if (virDomainDestroy(dom_) < 0) {
    if (virDomainIsActive(dom_) == 1) {
      return Status::Unavailable("power off host " + spec_.id + ": " + LastError());
    }
    return Status::Ok();  // gone this instant (guest power-off): its STOPPED event reports it
  }
  running_ = false;
  ++stale_stops_;
  if (windows_) StopSwtpm();
  lock.unlock();
  DrainConsole();
  run_->queue->Push(spec_.id, HostEventKind::kShutdown, "host");
  return Status::Ok();
}

Status LibvirtHost::SetBoot(BootTarget target, const std::string& media) {
  ASSIGN_OR_RETURN(BootChoice next, ChooseBoot(spec_.id, target, media));
  std::lock_guard<std::mutex> lock(mu_);
  boot_ = std::move(next);  // used by the next Start() or the restart after a reset
  return Status::Ok();
}

Status LibvirtHost::RevertDisk() {
  const std::string what = "revert disk of host " + spec_.id;
  std::lock_guard<std::mutex> lock(mu_);
  if (running_)
    return Status::FailedPrecondition(what + ": the host is powered on (PowerOff first)");
  std::vector<std::string> argv = SnapshotApplyArgs(files_.overlay);
  argv.insert(argv.begin(), run_->options->qemu_img);
  return RunTool(argv, what);
}

Status LibvirtHost::ReimageDisk() {
  const std::string what = "reimage disk of host " + spec_.id;
  std::lock_guard<std::mutex> lock(mu_);
  if (running_)
    return Status::FailedPrecondition(what + ": the host is powered on (PowerOff first)");
  return MakeDisk().WithContext(what);
}

}  // namespace chaoslab::libvirt
