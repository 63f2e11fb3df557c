// The libvirt backend's parts, shared by its files (libvirt_backend.cc: the backend and its
// hypervisors; libvirt_host.cc: a host's lifecycle and disks; libvirt_host_events.cc: its consoles
// and events; libvirt_windows_host.cc: what a Windows host has more). Internal, not an API.
#pragma once

#include <libvirt/libvirt.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "lab/backend/backend.h"
#include "lab/backend/host_event_inbox.h"
#include "lab/backend/lab_priority.h"
#include "lab/backend/task_thread.h"
#include "lab/backend/vm_disks.h"
#include "lab/backend/windows_console.h"
#include "lab/libvirt/domain_xml.h"
#include "lab/libvirt/inventory.h"
#include "lab/libvirt/libvirt_backend.h"
#include "lab/libvirt/libvirt_internal.h"

namespace chaoslab::libvirt {

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

// What the hosts of one libvirt backend share, fixed when the backend is made; the pointers are
// the backend's and outlive its hosts.
struct LibvirtRun {
  const LibvirtOptions* options = nullptr;
  std::string accel;
  std::string machine;      // this machine and process's start: the orchestrator in ownership
  std::string owner_start;  // metadata (domain_xml.h)
  HostEventInbox* queue = nullptr;
  HostPathShortfallNote* shortfall = nullptr;
  TaskThread* worker = nullptr;  // restarts after a reset (not on libvirt's event-loop thread)
};

// qemu-img or swtpm run to completion; `what` prefixes the error. A disk another machine holds is
// FailedPrecondition (vm_disks.h).
Status RunTool(const std::vector<std::string>& argv, const std::string& what);

class LibvirtHost : public Host {
 public:
  LibvirtHost(const LibvirtRun* run, Hypervisor* hv, HostSpec spec, std::string dir,
              std::string name);
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
  // The overlay with its pre-update snapshot (again: ReimageDisk), and for Windows the golden
  // image's NVRAM and TPM state.
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
  // LaunchLocked's steps: the domain, created paused (and its swtpm first, for Windows); its
  // consoles, connected while it waits (destroyed again if they cannot be); its QEMU's main loop
  // in real time; the readers of the new incarnation.
  Result<virDomainPtr> CreateDomainLocked(const std::string& what);
  Status ConnectConsolesLocked(virDomainPtr dom, const std::string& what, int* fd, int* agent_fd);
  void RaiseMainLoop();
  void StartReadersLocked(virDomainPtr dom, int fd, int agent_fd);
  // The domain XML of the next boot, with this run's ownership metadata.
  std::string DomainXmlLocked() const;
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
  std::unique_ptr<WindowsConsole> MakeWindowsConsole() const;
  // Windows: copies of the golden image's UEFI variables and TPM state for this clone.
  Status CopyGoldenState();
  // Windows: a fresh swtpm on this host's copy of the golden TPM state, for the next domain.
  Status StartSwtpm(const std::string& what);

  const LibvirtRun* run_;
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
  BootChoice boot_;  // used by the next Start() or the restart after a reset
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

}  // namespace chaoslab::libvirt
