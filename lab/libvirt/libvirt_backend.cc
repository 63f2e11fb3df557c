#include "lab/libvirt/libvirt_backend.h"

#include <libvirt/libvirt-qemu.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "lab/backend/console_lines.h"
#include "lab/backend/guest_clock.h"
#include "lab/backend/guest_network.h"
#include "lab/backend/host_event_inbox.h"
#include "lab/backend/lab_priority.h"
#include "lab/backend/run_dir.h"
#include "lab/backend/windows_console.h"
#include "lab/common/identifier.h"
#include "lab/common/secret_file.h"
#include "lab/common/subprocess.h"
#include "lab/libvirt/domain_xml.h"
#include "lab/libvirt/libvirt_internal.h"
#include "lab/libvirt/libvirt_uri.h"
#include "lab/vm/qemu_accel.h"

namespace chaoslab::libvirt {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kDrainTimeout(2000);
constexpr milliseconds kConsoleConnectTimeout(5000);
constexpr milliseconds kReconnectEvery(1000);
constexpr const char* kPreUpdateSnapshot = "pre-update";

// libvirt prints every error to stderr unless told otherwise; the lab reports errors itself.
void QuietErrors(void*, virErrorPtr) {}

}  // namespace

// One event loop per process (libvirt allows one), on its own thread, started before the first
// connection is opened (libvirt requires that for events and keepalive).
void EnsureEventLoop() {
  static std::once_flag once;
  std::call_once(once, [] {
    virInitialize();
    virSetErrorFunc(nullptr, QuietErrors);
    virEventRegisterDefaultImpl();
    std::thread([] {
      while (true) {
        if (virEventRunDefaultImpl() < 0) std::this_thread::sleep_for(milliseconds(10));
      }
    }).detach();
  });
}

std::string LastError() {
  const char* msg = virGetLastErrorMessage();
  return msg ? msg : "unknown libvirt error";
}

std::shared_ptr<PendingOpen> PendingOpen::Start(const std::string& uri) {
  auto pending = std::make_shared<PendingOpen>();
  // Detached: it may outlive whoever started it (and the backend), holding only `pending`.
  std::thread([pending, uri] {
    virConnectPtr conn = virConnectOpen(uri.c_str());
    const std::string error = conn ? "" : LastError();  // libvirt's errors are per thread
    std::lock_guard<std::mutex> lock(pending->mu_);
    if (pending->abandoned_ && conn) {
      virConnectClose(conn);
      conn = nullptr;
    }
    pending->conn_ = conn;
    pending->error_ = error;
    pending->done_ = true;
    pending->cv_.notify_all();
  }).detach();
  return pending;
}

bool PendingOpen::Wait(milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return done_; });
}

virConnectPtr PendingOpen::Take() {
  std::lock_guard<std::mutex> lock(mu_);
  virConnectPtr conn = conn_;
  conn_ = nullptr;
  return conn;
}

std::string PendingOpen::error() {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

void PendingOpen::Abandon() {
  std::lock_guard<std::mutex> lock(mu_);
  abandoned_ = true;
  if (conn_) {  // it opened, but nobody will use it
    virConnectClose(conn_);
    conn_ = nullptr;
  }
}

Result<virConnectPtr> OpenWithin(const std::string& uri, milliseconds timeout) {
  std::shared_ptr<PendingOpen> pending = PendingOpen::Start(uri);
  if (!pending->Wait(timeout)) {
    pending->Abandon();
    return Status::Timeout(
        "did not answer within " +
        std::to_string(std::chrono::duration_cast<std::chrono::seconds>(timeout).count()) + " s");
  }
  virConnectPtr conn = pending->Take();
  if (!conn) return Status::FailedPrecondition(pending->error());
  return conn;
}

std::string MachineName() {
  char buf[256] = {};
  gethostname(buf, sizeof(buf) - 1);
  return buf;
}

namespace {

Status RunTool(const std::vector<std::string>& argv, const std::string& what) {
  auto r = RunProcess(argv, std::chrono::seconds(60));
  if (!r.ok()) return r.status().WithContext(what);
  if (r->exit_code != 0) {
    std::string msg = r->err.empty() ? r->out : r->err;
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    if (msg.find("\" lock") != std::string::npos) {
      return Status::FailedPrecondition(what + ": the disk is in use by another machine: " + msg);
    }
    return Status::IoError(what + ": " + argv[0] + " failed: " + msg);
  }
  return Status::Ok();
}

// "qcow2" when the file starts with qcow2's magic, "raw" otherwise (also when unreadable).
std::string DiskFormat(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  in.read(magic, sizeof(magic));
  return in && std::memcmp(magic, "QFI\xfb", 4) == 0 ? "qcow2" : "raw";
}

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

Result<std::string> MediaFormat(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    return Status::NotFound("recovery media '" + path + "' is not a file");
  }
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  in.read(magic, sizeof(magic));
  if (!in) return std::string("raw");
  return std::string(std::memcmp(magic, "QFI\xfb", 4) == 0 ? "qcow2" : "raw");
}

class LibvirtBackend;

// One hypervisor: its connection (replaced on reconnect) and callback ids.
struct Hypervisor {
  HypervisorConfig config;
  size_t index = 0;
  LibvirtBackend* backend = nullptr;
  std::mutex mu;
  virConnectPtr conn = nullptr;
  bool up = false;
  int qmp_callback = -1;
  int lifecycle_callback = -1;
  // The reconnect loop's open in flight (its thread only): a hung daemon may never answer it.
  std::shared_ptr<PendingOpen> reopening;

  // A new reference to the current connection, or null when the hypervisor is down.
  virConnectPtr Ref() {
    std::lock_guard<std::mutex> lock(mu);
    if (!up || !conn) return nullptr;
    virConnectRef(conn);
    return conn;
  }
};

struct ConnRef {
  virConnectPtr conn;
  ~ConnRef() {
    if (conn) virConnectClose(conn);
  }
};

// The administrator SAC's cmd channel logs on as: build.sh's admin-password.txt, first line.
sac::Credentials AdministratorOf(const WindowsGolden& golden) {
  sac::Credentials c;
  std::ifstream in(golden.admin_password);
  std::getline(in, c.password);
  while (!c.password.empty() && (c.password.back() == '\r' || c.password.back() == ' '))
    c.password.pop_back();
  return c;
}

class LibvirtHost : public Host {
 public:
  LibvirtHost(LibvirtBackend* backend, Hypervisor* hv, HostSpec spec, std::string dir,
              std::string name)
      : backend_(backend),
        hv_(hv),
        spec_(std::move(spec)),
        dir_(std::move(dir)),
        name_(std::move(name)) {
    files_.overlay = dir_ + "/overlay.qcow2";
    files_.console_socket = dir_ + "/console.sock";
    files_.serial_log = dir_ + "/serial.log";
    windows_ = backend_windows();
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
  ~LibvirtHost() override;

  const HostSpec& spec() const override { return spec_; }
  Status Start() override;
  Status Reset() override;
  Status Pause() override;
  Status Resume() override;
  Status PowerOff() override;
  Status SendConsole(std::string_view text) override;
  Status SetBoot(BootTarget target, const std::string& media) override;
  Status RevertDisk() override;
  Status ReimageDisk() override;
  DiskImage SystemDisk() const override { return DiskImage{files_.overlay, "qcow2", false}; }
  std::string ConsoleLogPath() const override { return files_.serial_log; }

  const std::string& name() const { return name_; }
  Hypervisor* hypervisor() const { return hv_; }
  const DomainFiles& files() const { return files_; }
  const std::string& dir() const { return dir_; }
  const std::string& nvram() const { return nvram_; }
  const std::string& tpm_socket() const { return tpm_socket_; }
  Status MakeDisk();
  // Windows: the swtpm of the current boot, if it runs (by its pid file; only that process).
  void StopSwtpm();

  // Event-loop thread.
  void OnQmp(const std::string& event, const char* details);
  void OnStopped(int detail);
  void OnHypervisorLost(const std::string& why);
  // The backend's worker thread: the cold restart after a reset.
  void Relaunch();

 private:
  // Requires mu_. Creates the domain paused, attaches the console reader. The vCPUs do not run.
  Status LaunchLocked(const std::string& what);
  Status DomainOp(const std::string& what, int (*op)(virDomainPtr));
  void ReadConsole(int fd);
  void ReadAgent(int fd);
  void ReaderEnded();
  // Windows: what the lab's hands on COM1 type and report (lines become console events).
  void Apply(const WindowsConsole::Output& out);
  void CloseConsole();
  // Waits (bounded) for the console reader to see EOF, so the end event is the host's last.
  void DrainConsole();
  Status SendTo(int fd, std::string_view text);
  bool backend_windows() const;
  std::unique_ptr<WindowsConsole> MakeWindowsConsole() const;
  // Windows: a fresh swtpm on this host's copy of the golden TPM state, for the next domain.
  Status StartSwtpm(const std::string& what);

  LibvirtBackend* backend_;
  Hypervisor* hv_;
  const HostSpec spec_;
  const std::string dir_;
  const std::string name_;
  DomainFiles files_;
  bool windows_ = false;
  std::string nvram_, tpm_dir_, tpm_socket_, swtpm_pid_;

  std::mutex mu_;
  std::condition_variable cv_;
  virDomainPtr dom_ = nullptr;
  bool running_ = false;  // powered on, including a relaunch under way
  bool lost_ = false;
  bool relaunching_ = false;  // between the reset's STOPPED and the new domain running
  bool paused_in_relaunch_ = false;
  bool power_off_requested_ = false;
  std::string console_in_relaunch_;
  std::string reboot_detail_;  // "guest"/"host": QEMU shut down for a reset (-no-reboot)
  int stale_stops_ = 0;        // STOPPED events of our own PowerOff, already reported
  std::atomic<bool> swallow_resume_{false};
  BootTarget boot_ = BootTarget::kDisk;
  DiskImage media_;
  int console_fd_ = -1;
  int agent_fd_ = -1;  // Windows: COM2, the agent's protocol lines
  // The readers' own state: they never take mu_, so an incarnation's start may join the previous
  // readers while holding mu_.
  std::mutex console_mu_;
  std::condition_variable console_cv_;
  int open_readers_ = 0;  // readers that have not seen EOF yet
  std::vector<int> reading_fds_;
  std::thread reader_, agent_reader_;
  std::mutex write_mu_;
  // Windows: the engine's boot targets and commands as keystrokes on EMS (lab/backend/
  // windows_console.h). Fed by the console reader, typed into by the engine thread.
  std::mutex wincon_mu_;
  std::unique_ptr<WindowsConsole> wincon_;
};

class LibvirtBackend : public Backend {
 public:
  LibvirtBackend(LibvirtOptions options, std::string run_dir, std::string accel)
      : options_(std::move(options)),
        run_dir_(std::move(run_dir)),
        accel_(std::move(accel)),
        placer_(&options_.inventory) {
    machine_ = MachineName();
    owner_start_ = ProcessStartTime(getpid());
    std::error_code ec;
    if (!options_.bios_rom.empty() && !fs::exists(options_.bios_rom, ec)) options_.bios_rom.clear();
    for (size_t i = 0; i < options_.inventory.hypervisors.size(); ++i) {
      auto hv = std::make_unique<Hypervisor>();
      hv->config = options_.inventory.hypervisors[i];
      hv->index = i;
      hv->backend = this;
      hvs_.push_back(std::move(hv));
    }
  }
  ~LibvirtBackend() override { Destroy(); }

  // From now on Destroy() removes the run folder: this backend made it.
  void OwnRunDir() { owns_run_dir_ = true; }

  Status Connect() {
    for (auto& hv : hvs_) RETURN_IF_ERROR(Open(hv.get()));
    reconnector_ = std::thread([this] { ReconnectLoop(); });
    return Status::Ok();
  }

  std::string_view name() const override { return "libvirt"; }
  std::string accelerator() const override { return accel_; }
  Result<Host*> CreateHost(const HostSpec& spec) override;
  Status PollEvents(milliseconds timeout, std::vector<HostEvent>* out) override {
    queue_.PopAll(timeout, out);
    return Status::Ok();
  }
  Status Destroy() override;

  HostEventInbox& queue() { return queue_; }
  HostPathShortfallNote& shortfall() { return shortfall_; }
  std::string HostPathShortfall() const override { return shortfall_.Get(); }
  const LibvirtOptions& options() const { return options_; }
  const std::string& accel() const { return accel_; }

  std::string Xml(const LibvirtHost& host, BootTarget boot, const DiskImage& media) const {
    DomainXmlInput in;
    in.name = host.name();
    in.spec = host.spec();
    in.files = host.files();
    in.owner = Owner(host);
    in.boot = boot;
    in.usb_media = media;
    in.accel = accel_;
    in.emulator = options_.emulator;
    in.bios_rom = options_.bios_rom;
    in.relay = options_.relay;
    in.tsc_khz = GuestTscKhz(GuestClockFor(accel_, in.spec), accel_);
    if (options_.windows) {
      in.windows = true;
      in.ovmf_code = options_.windows->ovmf_code();
      in.ovmf_vars_template = options_.windows->ovmf_vars_template();
      in.secure_boot = options_.windows->secure_boot;
      in.nvram = host.nvram();
      in.tpm_socket = host.tpm_socket();
      in.vcpus = options_.windows_vcpus;
      in.spec.memory_mib = std::max(in.spec.memory_mib, options_.windows_memory_mib);
    }
    return DomainXml(in);
  }
  Ownership Owner(const LibvirtHost& host) const {
    Ownership o;
    o.run_id = options_.run_id;
    o.host_id = host.spec().id;
    o.owner_machine = machine_;
    o.owner_pid = getpid();
    o.owner_start = owner_start_;
    o.files = {host.dir()};
    return o;
  }

  LibvirtHost* FindByDomain(virDomainPtr dom) {
    const char* n = virDomainGetName(dom);
    if (!n) return nullptr;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = by_name_.find(n);
    return it == by_name_.end() ? nullptr : it->second;
  }

  // Runs `task` on the backend's worker thread (relaunches: not on the event-loop thread, which
  // must keep delivering events while a domain starts).
  void Post(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> lock(work_mu_);
      work_.push_back(std::move(task));
    }
    work_cv_.notify_all();
  }

  void Notice(const std::string& text) {
    if (options_.notice) options_.notice(text);
  }

  // Event-loop thread: the connection of `hv` closed.
  void OnClosed(Hypervisor* hv, int reason);

 private:
  // Opens `hv` (waiting up to kOpenTimeout) and attaches the connection.
  Status Open(Hypervisor* hv);
  // Keepalive and event callbacks on a fresh connection of `hv`, which it then owns.
  Status Attach(Hypervisor* hv, virConnectPtr conn);
  void ReconnectLoop();
  Status ValidateSpec(const HostSpec& spec) const;
  std::vector<bool> Usable() {
    std::vector<bool> out;
    for (auto& hv : hvs_) {
      std::lock_guard<std::mutex> lock(hv->mu);
      out.push_back(hv->up);
    }
    return out;
  }

  LibvirtOptions options_;
  const std::string run_dir_;
  const std::string accel_;
  std::string machine_, owner_start_;
  HostEventInbox queue_;
  HostPathShortfallNote shortfall_;
  std::vector<std::unique_ptr<Hypervisor>> hvs_;

  std::mutex mu_;  // hosts_, by_name_, placer_
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::map<std::string, std::unique_ptr<LibvirtHost>> hosts_;
  std::map<std::string, LibvirtHost*> by_name_;
  Placer placer_;
  std::thread reconnector_;
  bool destroyed_ = false;
  bool owns_run_dir_ = false;

  std::mutex work_mu_;
  std::condition_variable work_cv_;
  std::deque<std::function<void()>> work_;
  bool work_stop_ = false;
  std::thread worker_ = std::thread([this] { WorkLoop(); });

  void WorkLoop() {
    std::unique_lock<std::mutex> lock(work_mu_);
    while (true) {
      work_cv_.wait(lock, [&] { return work_stop_ || !work_.empty(); });
      if (work_.empty()) return;
      auto task = std::move(work_.front());
      work_.pop_front();
      lock.unlock();
      task();
      lock.lock();
    }
  }
  void StopWorker() {
    {
      std::lock_guard<std::mutex> lock(work_mu_);
      work_stop_ = true;
    }
    work_cv_.notify_all();
    if (worker_.joinable()) worker_.join();
  }
};

// ---- callbacks (event-loop thread) ----

void QmpCallback(virConnectPtr, virDomainPtr dom, const char* event, long long, unsigned int,
                 const char* details, void* opaque) {
  auto* hv = static_cast<Hypervisor*>(opaque);
  if (LibvirtHost* host = hv->backend->FindByDomain(dom)) host->OnQmp(event ? event : "", details);
}

int LifecycleCallback(virConnectPtr, virDomainPtr dom, int event, int detail, void* opaque) {
  auto* hv = static_cast<Hypervisor*>(opaque);
  if (event != VIR_DOMAIN_EVENT_STOPPED) return 0;
  if (LibvirtHost* host = hv->backend->FindByDomain(dom)) host->OnStopped(detail);
  return 0;
}

void CloseCallback(virConnectPtr, int reason, void* opaque) {
  auto* hv = static_cast<Hypervisor*>(opaque);
  hv->backend->OnClosed(hv, reason);
}

// ---- host ----

LibvirtHost::~LibvirtHost() {
  CloseConsole();
  if (dom_) virDomainFree(dom_);
  if (windows_) StopSwtpm();
}

bool LibvirtHost::backend_windows() const { return backend_->options().windows.has_value(); }

std::unique_ptr<WindowsConsole> LibvirtHost::MakeWindowsConsole() const {
  return std::make_unique<WindowsConsole>(AdministratorOf(*backend_->options().windows));
}

Status LibvirtHost::MakeDisk() {
  const std::string qemu_img = backend_->options().qemu_img;
  std::error_code ec;
  fs::remove(files_.overlay, ec);
  // The winsim group disks are raw; the golden Windows disk is qcow2.
  RETURN_IF_ERROR(RunTool({qemu_img, "create", "-q", "-f", "qcow2", "-F",
                           DiskFormat(spec_.base_disk), "-b", spec_.base_disk, files_.overlay},
                          "host '" + spec_.id + "': create overlay disk"));
  RETURN_IF_ERROR(RunTool({qemu_img, "snapshot", "-c", kPreUpdateSnapshot, files_.overlay},
                          "host '" + spec_.id + "': snapshot the overlay disk"));
  if (!windows_) return Status::Ok();
  // The clone's firmware variables (boot entries, Secure Boot keys) and TPM (BitLocker's sealed
  // key) are the golden machine's, so that it boots and unlocks as that machine did.
  const WindowsGolden& golden = *backend_->options().windows;
  const std::string what = "host '" + spec_.id + "': copy the golden image's ";
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
  const std::string swtpm = backend_->options().swtpm;
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

// Connects to a unix socket QEMU binds, retrying until `deadline` (QEMU creates it as it starts).
int ConnectUnixSocket(const std::string& path, Clock::time_point deadline, std::string* err) {
  while (Clock::now() < deadline) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) return fd;
    *err = std::strerror(errno);
    close(fd);
    std::this_thread::sleep_for(milliseconds(20));
  }
  return -1;
}

Status LibvirtHost::LaunchLocked(const std::string& what) {
  ConnRef c{hv_->Ref()};
  if (!c.conn)
    return Status::Unavailable(what + ": hypervisor " + hv_->config.name + " is not connected");
  std::error_code ec;
  fs::remove(files_.console_socket, ec);
  if (!files_.agent_socket.empty()) fs::remove(files_.agent_socket, ec);
  if (windows_) RETURN_IF_ERROR(StartSwtpm(what));
  const std::string xml = backend_->Xml(*this, boot_, media_);
  // After a reset, libvirt reports the old domain STOPPED a moment before it drops the transient
  // domain from its list; a create in between is refused with "already exists". Retry briefly.
  virDomainPtr dom = nullptr;
  for (int attempt = 0;; ++attempt) {
    dom = virDomainCreateXML(c.conn, xml.c_str(),
                             VIR_DOMAIN_START_PAUSED | VIR_DOMAIN_START_AUTODESTROY);
    if (dom) break;
    const std::string msg = LastError();
    if (attempt >= 50 || msg.find("already exists") == std::string::npos) {
      if (windows_) StopSwtpm();
      return Status::Unavailable(what + ": " + msg);
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
  // The consoles first, while the vCPUs wait: no line is missed.
  const auto deadline = Clock::now() + kConsoleConnectTimeout;
  std::string err;
  const std::string* failed = &files_.console_socket;
  int fd = ConnectUnixSocket(files_.console_socket, deadline, &err);
  int agent_fd = -1;
  if (fd >= 0 && !files_.agent_socket.empty()) {
    agent_fd = ConnectUnixSocket(files_.agent_socket, deadline, &err);
    failed = &files_.agent_socket;
  }
  if (fd < 0 || (!files_.agent_socket.empty() && agent_fd < 0)) {
    if (fd >= 0) close(fd);
    ++stale_stops_;
    virDomainDestroy(dom);
    virDomainFree(dom);
    if (windows_) StopSwtpm();
    return Status::Unavailable(what + ": cannot connect to the console " + *failed + ": " + err);
  }
  // Its QEMU's main loop in real time, as the QEMU backend's (on a local hypervisor; a remote
  // one's QEMU is not ours to find). The domain is paused: its vCPU thread exists and stays
  // ordinary.
  if (GuestClockFor(backend_->accel(), spec_) == GuestClock::kInstructions) {
    auto qemu_pid = LocalQemuOfDomain(name_);
    Status raised =
        qemu_pid.ok() ? SetRealtime(*qemu_pid, kLabRealtimePriority, false) : qemu_pid.status();
    if (!raised.ok()) backend_->shortfall().Note(spec_.id, raised);
  }
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
      out = wincon_->OnBoot(boot_);
    }
    Apply(out);
  }
  reader_ = std::thread([this, fd] { ReadConsole(fd); });
  if (agent_fd >= 0) agent_reader_ = std::thread([this, agent_fd] { ReadAgent(agent_fd); });
  return Status::Ok();
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
  backend_->queue().Push(
      spec_.id, HostEventKind::kStarted,
      "domain=" + name_ + " hypervisor=" + hv_->config.name + " accel=" + backend_->accel());
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
    backend_->queue().Push(spec_.id, HostEventKind::kShutdown, "killed");
    return;
  }
  Status s = LaunchLocked("restart host " + spec_.id + " after a reset");
  if (!s.ok()) {
    running_ = false;
    done();
    backend_->queue().Push(spec_.id, HostEventKind::kLost, s.message());
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
    backend_->queue().Push(spec_.id, HostEventKind::kStopped);
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
  backend_->queue().Push(spec_.id, HostEventKind::kShutdown, "host");
  return Status::Ok();
}

Status LibvirtHost::SendTo(int fd, std::string_view text) {
  std::lock_guard<std::mutex> lock(write_mu_);
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = send(fd, text.data() + off, text.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      return Status::Unavailable("console of host " + spec_.id + ": " + std::strerror(errno));
    off += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status LibvirtHost::SendConsole(std::string_view text) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!running_ || lost_ || console_fd_ < 0) {
    return Status::FailedPrecondition("console of host " + spec_.id + ": not running");
  }
  if (relaunching_ || !reboot_detail_.empty()) {
    console_in_relaunch_.append(text);
    return Status::Ok();
  }
  if (wincon_) {
    WindowsConsole::Output out;
    {
      std::lock_guard<std::mutex> wincon_lock(wincon_mu_);
      out = wincon_->Type(text);
    }
    Apply(out);
    return Status::Ok();
  }
  return SendTo(console_fd_, text);
}

void LibvirtHost::Apply(const WindowsConsole::Output& out) {
  // Requires mu_ (console_fd_). A console that is gone shows as the domain's end, reported by its
  // own events.
  if (!out.send.empty() && console_fd_ >= 0) (void)SendTo(console_fd_, out.send);
  for (const std::string& line : out.lines) {
    backend_->queue().Push(spec_.id, HostEventKind::kConsoleLine, line);
  }
}

Status LibvirtHost::SetBoot(BootTarget target, const std::string& media) {
  const std::string what =
      "set boot of host " + spec_.id + " to " + std::string(BootTargetWord(target));
  DiskImage next;
  if (target == BootTarget::kUsb) {
    if (media.empty()) return Status::InvalidArgument(what + ": usb needs a media image");
    next.path = fs::absolute(media).string();
    auto format = MediaFormat(next.path);
    if (!format.ok()) return format.status().WithContext(what);
    next.format = *format;
    next.read_only = true;
  } else if (!media.empty()) {
    return Status::InvalidArgument(what + ": only usb takes a media image");
  }
  std::lock_guard<std::mutex> lock(mu_);
  boot_ = target;  // used by the next Start() or the restart after a reset
  media_ = next;
  return Status::Ok();
}

Status LibvirtHost::RevertDisk() {
  const std::string what = "revert disk of host " + spec_.id;
  std::lock_guard<std::mutex> lock(mu_);
  if (running_)
    return Status::FailedPrecondition(what + ": the host is powered on (PowerOff first)");
  return RunTool(
      {backend_->options().qemu_img, "snapshot", "-a", kPreUpdateSnapshot, files_.overlay}, what);
}

Status LibvirtHost::ReimageDisk() {
  const std::string what = "reimage disk of host " + spec_.id;
  std::lock_guard<std::mutex> lock(mu_);
  if (running_)
    return Status::FailedPrecondition(what + ": the host is powered on (PowerOff first)");
  return MakeDisk().WithContext(what);
}

void LibvirtHost::ReadConsole(int fd) {
  const LineSink push = [this](std::string line) {
    backend_->queue().Push(spec_.id, HostEventKind::kConsoleLine, std::move(line));
  };
  if (!wincon_) {
    ReadConsoleLines(fd, push);
  } else {
    // EMS: SAC's prompts and the boot screens do not end in a newline, so the lab's hands read
    // the bytes as they come; the lines still go to the engine (and the journal) as for winsim.
    ConsoleLineSplitter lines;
    ReadConsoleChunks(fd, [&](std::string_view bytes) {
      lines.Feed(bytes, push);
      WindowsConsole::Output out;
      {
        std::lock_guard<std::mutex> wincon_lock(wincon_mu_);
        out = wincon_->Feed(bytes);
      }
      if (!out.send.empty()) (void)SendTo(fd, out.send);
      for (const std::string& line : out.lines) push(line);
    });
    lines.Flush(push);
  }
  ReaderEnded();
}

void LibvirtHost::ReadAgent(int fd) {
  ReadConsoleLines(fd, [this](std::string line) {
    backend_->queue().Push(spec_.id, HostEventKind::kConsoleLine, std::move(line));
  });
  ReaderEnded();
}

void LibvirtHost::ReaderEnded() {
  {
    std::lock_guard<std::mutex> lock(console_mu_);
    --open_readers_;
  }
  console_cv_.notify_all();
}

void LibvirtHost::DrainConsole() {
  std::unique_lock<std::mutex> lock(console_mu_);
  if (!console_cv_.wait_for(lock, kDrainTimeout, [&] { return open_readers_ <= 0; })) {
    // The readers end; the fds are closed by their owner.
    for (int fd : reading_fds_)
      if (fd >= 0) shutdown(fd, SHUT_RDWR);
  }
}

void LibvirtHost::CloseConsole() {
  std::thread reader, agent_reader;
  int fds[2];
  {
    std::lock_guard<std::mutex> lock(mu_);
    fds[0] = console_fd_;
    fds[1] = agent_fd_;
    reader.swap(reader_);
    agent_reader.swap(agent_reader_);
    console_fd_ = agent_fd_ = -1;
  }
  for (int fd : fds)
    if (fd >= 0) shutdown(fd, SHUT_RDWR);
  if (reader.joinable()) reader.join();
  if (agent_reader.joinable()) agent_reader.join();
  for (int fd : fds)
    if (fd >= 0) close(fd);
}

void LibvirtHost::OnQmp(const std::string& event, const char* details) {
  nlohmann::json data = nlohmann::json::object();
  if (details && *details) data = nlohmann::json::parse(details, nullptr, false);
  auto flag = [&](const char* key) {
    return data.is_object() && data.contains(key) && data[key].is_boolean() &&
           data[key].get<bool>();
  };
  {
    std::lock_guard<std::mutex> lock(mu_);
    // During a relaunch these are the new domain's (the old one's all came before its STOPPED).
    if (lost_ || !running_) return;
    if (event == "SHUTDOWN") {
      const std::string reason =
          data.is_object() && data.contains("reason") && data["reason"].is_string()
              ? data["reason"].get<std::string>()
              : "";
      // -no-reboot: a reset ends QEMU; the STOPPED that follows starts the relaunch.
      if (reason == "guest-reset") reboot_detail_ = "guest";
      if (reason == "host-qmp-system-reset") reboot_detail_ = "host";
      return;  // otherwise the lifecycle STOPPED that follows is the authoritative end
    }
  }
  if (event == "GUEST_PANICKED") {
    backend_->queue().Push(spec_.id, HostEventKind::kPanicked, data.dump());
  } else if (event == "RESET") {
    // Only with warm resets (not configured); kept so that the engine still hears of one.
    backend_->queue().Push(spec_.id, HostEventKind::kReset, flag("guest") ? "guest" : "host");
  } else if (event == "STOP") {
    backend_->queue().Push(spec_.id, HostEventKind::kStopped);
  } else if (event == "RESUME") {
    if (swallow_resume_.exchange(false)) return;
    backend_->queue().Push(spec_.id, HostEventKind::kResumed);
  }
}

void LibvirtHost::OnStopped(int detail) {
  std::string reboot;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stale_stops_ > 0) {
      --stale_stops_;
      return;
    }
    if (lost_ || !running_ || relaunching_) return;
    reboot = reboot_detail_;
    if (!reboot.empty()) {
      relaunching_ = true;
      reboot_detail_.clear();
    } else {
      running_ = false;
    }
  }
  // --terminate ends it with QEMU's connection; this makes sure before the host may start again.
  if (windows_ && reboot.empty()) StopSwtpm();
  DrainConsole();
  if (!reboot.empty()) {
    // The engine sees what a warm reset would show: one kReset, then the new boot's console.
    backend_->queue().Push(spec_.id, HostEventKind::kReset, reboot);
    backend_->Post([this] { Relaunch(); });
    return;
  }
  switch (detail) {
    case VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN:
      backend_->queue().Push(spec_.id, HostEventKind::kShutdown, "guest");
      break;
    case VIR_DOMAIN_EVENT_STOPPED_DESTROYED:
      backend_->queue().Push(spec_.id, HostEventKind::kLost,
                             "domain " + name_ + " was destroyed outside the lab");
      break;
    default:
      backend_->queue().Push(spec_.id, HostEventKind::kLost,
                             "domain " + name_ + " stopped (libvirt detail " +
                                 std::to_string(detail) + "): QEMU crashed or failed");
  }
}

void LibvirtHost::OnHypervisorLost(const std::string& why) {
  int fds[2];
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (lost_) return;
    lost_ = true;
    running_ = false;
    fds[0] = console_fd_;
    fds[1] = agent_fd_;
  }
  cv_.notify_all();
  // QEMU may well still run there, unobserved: stop listening to it.
  for (int fd : fds)
    if (fd >= 0) shutdown(fd, SHUT_RDWR);
  backend_->queue().Push(spec_.id, HostEventKind::kLost, why);
}

// ---- backend ----

Status LibvirtBackend::Open(Hypervisor* hv) {
  Result<virConnectPtr> conn = OpenWithin(hv->config.uri, kOpenTimeout);
  if (!conn.ok()) {
    return Status::FailedPrecondition("hypervisor " + hv->config.name + " (" + hv->config.uri +
                                      "): cannot connect: " + conn.status().message());
  }
  return Attach(hv, *conn);
}

Status LibvirtBackend::Attach(Hypervisor* hv, virConnectPtr conn) {
  // A remote hypervisor that stops answering is noticed within ~10 s; a closed socket at once.
  virConnectSetKeepAlive(conn, 2, 5);
  int qmp =
      virConnectDomainQemuMonitorEventRegister(conn, nullptr, nullptr, QmpCallback, hv, nullptr, 0);
  int life =
      virConnectDomainEventRegisterAny(conn, nullptr, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                       VIR_DOMAIN_EVENT_CALLBACK(LifecycleCallback), hv, nullptr);
  if (qmp < 0 || life < 0 ||
      virConnectRegisterCloseCallback(conn, CloseCallback, hv, nullptr) < 0) {
    std::string msg = LastError();
    virConnectClose(conn);
    return Status::FailedPrecondition("hypervisor " + hv->config.name + " (" + hv->config.uri +
                                      "): cannot subscribe to events: " + msg);
  }
  std::lock_guard<std::mutex> lock(hv->mu);
  hv->conn = conn;
  hv->up = true;
  hv->qmp_callback = qmp;
  hv->lifecycle_callback = life;
  return Status::Ok();
}

void LibvirtBackend::OnClosed(Hypervisor* hv, int reason) {
  {
    std::lock_guard<std::mutex> lock(hv->mu);
    if (!hv->up) return;
    hv->up = false;  // the reconnect thread closes the old connection and opens a new one
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
  }
  static const char* kReasons[] = {"error", "end of file", "keepalive timeout", "client closed"};
  const std::string why = "hypervisor " + hv->config.name + " (" + hv->config.uri +
                          ") went away: " + (reason >= 0 && reason < 4 ? kReasons[reason] : "?");
  std::vector<LibvirtHost*> on_it;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, host] : hosts_) {
      if (host->hypervisor() == hv) on_it.push_back(host.get());
    }
  }
  // Not here: libvirt calls this while it is closing the connection, and fails the calls still
  // waiting on it (an engine call holding a host's lock, say) only once this returns. Taking a
  // host's lock here would wait for that call forever.
  Post([this, why, on_it] {
    Notice(why + "; its hosts are lost");
    for (LibvirtHost* host : on_it) host->OnHypervisorLost(why);
  });
}

void LibvirtBackend::ReconnectLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    stop_cv_.wait_for(lock, kReconnectEvery, [&] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    for (auto& hv : hvs_) {
      virConnectPtr old = nullptr;
      {
        std::lock_guard<std::mutex> hl(hv->mu);
        if (hv->up) continue;
        old = hv->conn;
        hv->conn = nullptr;
      }
      if (old) {
        virConnectDomainQemuMonitorEventDeregister(old, hv->qmp_callback);
        virConnectDomainEventDeregisterAny(old, hv->lifecycle_callback);
        virConnectUnregisterCloseCallback(old, CloseCallback);
        virConnectClose(old);
      }
      // A daemon that hangs never answers an open: it runs on a thread of its own, looked at
      // once a round, so that neither this loop nor Destroy() ever waits for it.
      if (!hv->reopening) hv->reopening = PendingOpen::Start(hv->config.uri);
      if (!hv->reopening->Wait(milliseconds(0))) continue;
      virConnectPtr conn = hv->reopening->Take();
      hv->reopening.reset();
      if (!conn || !Attach(hv.get(), conn).ok()) continue;
      // Back: the run's domains there belong to lost hosts; nothing may keep running.
      int destroyed = 0;
      ConnRef c{hv->Ref()};
      virDomainPtr* doms = nullptr;
      int n = c.conn ? virConnectListAllDomains(c.conn, &doms, 0) : 0;
      for (int i = 0; i < n; ++i) {
        char* meta = virDomainGetMetadata(doms[i], VIR_DOMAIN_METADATA_ELEMENT, kMetadataUri,
                                          VIR_DOMAIN_AFFECT_LIVE);
        if (meta) {
          auto owner = ParseOwnershipXml(meta);
          if (owner.ok() && owner->run_id == options_.run_id) {
            if (virDomainDestroy(doms[i]) == 0) ++destroyed;
          }
          free(meta);
        }
        virDomainFree(doms[i]);
      }
      free(doms);
      Notice("hypervisor " + hv->config.name + " (" + hv->config.uri + ") reconnected; " +
             std::to_string(destroyed) + " domain(s) of lost hosts destroyed");
    }
    lock.lock();
  }
  for (auto& hv : hvs_) {
    if (hv->reopening) hv->reopening->Abandon();
    hv->reopening.reset();
  }
}

Status LibvirtBackend::ValidateSpec(const HostSpec& spec) const {
  const std::string where = "host '" + spec.id + "'";
  RETURN_IF_ERROR(CheckIdentifier("host name", spec.id));  // it names files and the domain
  for (const auto& [file, what] :
       {std::pair{spec.kernel, "kernel"}, std::pair{spec.initrd, "initrd"},
        std::pair{spec.base_disk, "base disk"}}) {
    if (options_.windows && std::string_view(what) != "base disk") continue;  // UEFI boots the disk
    std::error_code ec;
    if (file.empty() || !fs::is_regular_file(file, ec)) {
      return Status::NotFound(where + ": " + what + " '" + file + "' is not a file");
    }
  }
  if (spec.memory_mib < 32 || spec.memory_mib > 65536) {
    return Status::InvalidArgument(where + ": memory_mib outside 32..65536");
  }
  for (const auto& word : spec.kernel_args) {
    bool bad = word.empty();
    for (unsigned char c : word) bad |= c < 0x20 || c == 0x7f || c == ' ';
    if (bad) return Status::InvalidArgument(where + ": bad kernel argument '" + word + "'");
  }
  if (spec.extra_disks.size() > 8)
    return Status::InvalidArgument(where + ": at most 8 extra disks");
  for (const auto& disk : spec.extra_disks) {
    std::error_code ec;
    if (!fs::is_regular_file(disk.path, ec)) {
      return Status::NotFound(where + ": extra disk '" + disk.path + "' is not a file");
    }
    if (disk.format != "raw" && disk.format != "qcow2") {
      return Status::InvalidArgument(where + ": extra disk format '" + disk.format + "'");
    }
  }
  if (spec.tpm_secret.size() > 128 ||
      spec.tpm_secret.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
    return Status::InvalidArgument(where + ": tpm_secret must be at most 128 hex digits");
  }
  if (spec.network.online) {
    if (options_.relay.empty()) {
      return Status::FailedPrecondition(where + " is online but the backend has no content relay");
    }
    RETURN_IF_ERROR(GuestfwdNetdev(options_.relay, spec.network).status().WithContext(where));
  }
  return Status::Ok();
}

Result<Host*> LibvirtBackend::CreateHost(const HostSpec& spec) {
  if (destroyed_) return Status::FailedPrecondition("libvirt backend: CreateHost after Destroy");
  RETURN_IF_ERROR(ValidateSpec(spec));
  HostSpec absolute = spec;
  absolute.base_disk = fs::absolute(spec.base_disk).string();
  if (!spec.kernel.empty()) absolute.kernel = fs::absolute(spec.kernel).string();
  if (!spec.initrd.empty()) absolute.initrd = fs::absolute(spec.initrd).string();
  // Placement counts what the domain gets (a Windows domain has at least 2 GiB).
  if (options_.windows) {
    absolute.memory_mib = std::max(absolute.memory_mib, options_.windows_memory_mib);
  }
  for (auto& disk : absolute.extra_disks) disk.path = fs::absolute(disk.path).string();
  const std::string dir = run_dir_ + "/" + spec.id;
  if (dir.size() + 13 > sizeof(sockaddr_un{}.sun_path) - 1) {
    return Status::InvalidArgument("console socket path under " + dir + " is too long");
  }
  std::vector<bool> usable = Usable();
  std::lock_guard<std::mutex> lock(mu_);
  if (hosts_.count(spec.id))
    return Status::InvalidArgument("host '" + spec.id + "' exists already");
  // A rescue VM borrows another host's disk: put it where that disk's machine is.
  Result<size_t> placed = Status::NotFound("");
  for (const auto& disk : absolute.extra_disks) {
    for (auto& [id, other] : hosts_) {
      if (other->SystemDisk().path != disk.path) continue;
      std::vector<bool> only(hvs_.size(), false);
      only[other->hypervisor()->index] = usable[other->hypervisor()->index];
      placed = placer_.Place({spec.id, spec.group, absolute.memory_mib}, only);
    }
  }
  if (!placed.ok()) placed = placer_.Place({spec.id, spec.group, absolute.memory_mib}, usable);
  if (!placed.ok()) return placed.status();
  Hypervisor* hv = hvs_[*placed].get();
  if (Status made = MakeOwnedDir(dir, ThisProcessOwns(options_.run_id)); !made.ok()) {
    placer_.Release(*placed, absolute.memory_mib);
    return made.WithContext("create host folder");
  }
  const int memory_mib = absolute.memory_mib;
  auto host = std::make_unique<LibvirtHost>(this, hv, std::move(absolute), dir,
                                            DomainName(options_.run_id, spec.id));
  Status made = host->MakeDisk();
  if (made.ok() && !host->files().tpm_secret.empty())
    made = WriteSecretFile(host->files().tpm_secret, host->spec().tpm_secret);
  if (!made.ok()) {
    placer_.Release(*placed, memory_mib);
    return made;
  }
  LibvirtHost* raw = host.get();
  by_name_[raw->name()] = raw;
  Notice("placed " + spec.id + " on hypervisor " + hv->config.name);
  hosts_.emplace(spec.id, std::move(host));
  return static_cast<Host*>(raw);
}

Status LibvirtBackend::Destroy() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (destroyed_) return Status::Ok();
    destroyed_ = true;
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (reconnector_.joinable()) reconnector_.join();
  Status first;
  std::vector<LibvirtHost*> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, host] : hosts_) all.push_back(host.get());
  }
  for (LibvirtHost* host : all) {
    Status s = host->PowerOff();
    if (!s.ok() && first.ok()) first = s;
  }
  StopWorker();  // after the power-offs: pending relaunches have ended (as powered off)
  // Lost hosts on a hypervisor that is back: their domains carry this run's id.
  for (auto& hv : hvs_) {
    ConnRef c{hv->Ref()};
    if (!c.conn) continue;
    virDomainPtr* doms = nullptr;
    int n = virConnectListAllDomains(c.conn, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
    for (int i = 0; i < n; ++i) {
      char* meta = virDomainGetMetadata(doms[i], VIR_DOMAIN_METADATA_ELEMENT, kMetadataUri,
                                        VIR_DOMAIN_AFFECT_LIVE);
      if (meta) {
        auto owner = ParseOwnershipXml(meta);
        if (owner.ok() && owner->run_id == options_.run_id) virDomainDestroy(doms[i]);
        free(meta);
      }
      virDomainFree(doms[i]);
    }
    free(doms);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    by_name_.clear();
  }
  // Hosts go before the connections: their domain handles reference them.
  std::map<std::string, std::unique_ptr<LibvirtHost>> hosts;
  {
    std::lock_guard<std::mutex> lock(mu_);
    hosts.swap(hosts_);
  }
  hosts.clear();
  for (auto& hv : hvs_) {
    virConnectPtr conn;
    {
      std::lock_guard<std::mutex> lock(hv->mu);
      conn = hv->conn;
      hv->conn = nullptr;
      hv->up = false;
    }
    if (!conn) continue;
    virConnectDomainQemuMonitorEventDeregister(conn, hv->qmp_callback);
    virConnectDomainEventDeregisterAny(conn, hv->lifecycle_callback);
    virConnectUnregisterCloseCallback(conn, CloseCallback);
    virConnectClose(conn);
  }
  std::error_code ec;
  if (owns_run_dir_) fs::remove_all(run_dir_, ec);
  if (ec && first.ok())
    first = Status::IoError("remove run folder " + run_dir_ + ": " + ec.message());
  return first;
}

}  // namespace

std::string DomainName(const std::string& run_id, const std::string& host_id) {
  return "chaoslab-" + run_id + "-" + host_id;
}

Status CheckReachable(const Inventory& inventory) {
  RETURN_IF_ERROR(CheckInventoryUris(inventory));
  EnsureEventLoop();
  for (const auto& hv : inventory.hypervisors) {
    Result<virConnectPtr> conn = OpenWithin(hv.uri, kOpenTimeout);
    if (!conn.ok()) {
      return Status::FailedPrecondition("inventory " + inventory.path + ": hypervisor " + hv.name +
                                        " (" + hv.uri +
                                        ") is unreachable: " + conn.status().message());
    }
    virConnectClose(*conn);
  }
  return Status::Ok();
}

Result<std::unique_ptr<Backend>> MakeLibvirtBackend(LibvirtOptions options) {
  EnsureEventLoop();
  RETURN_IF_ERROR(CheckIdentifier("run id", options.run_id));
  RETURN_IF_ERROR(CheckInventoryUris(options.inventory));
  if (options.inventory.hypervisors.empty()) {
    return Status::InvalidArgument("libvirt backend: the inventory lists no hypervisor");
  }
  ASSIGN_OR_RETURN(std::string accel, vm::ResolveAccel(options.emulator, options.accel));
  if (options.runtime_root.empty()) options.runtime_root = DefaultRuntimeRoot();
  ASSIGN_OR_RETURN(std::string root, PrepareRuntimeRoot(options.runtime_root));
  const std::string run_dir = root + "/" + options.run_id;
  auto backend = std::make_unique<LibvirtBackend>(options, run_dir, accel);
  // Connect before creating anything: an unreachable hypervisor is bad input.
  if (Status s = backend->Connect(); !s.ok()) {
    (void)backend->Destroy();
    return s;
  }
  if (Status made = MakeOwnedDir(run_dir, ThisProcessOwns(options.run_id)); !made.ok()) {
    (void)backend->Destroy();  // the folder is not ours: Destroy leaves it
    return made.WithContext("run folder");
  }
  backend->OwnRunDir();
  return std::unique_ptr<Backend>(std::move(backend));
}

}  // namespace chaoslab::libvirt
