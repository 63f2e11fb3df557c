// One machine of the QEMU backend (qemu_backend.h says what it does and promises): the engine's
// calls, the relaunch of QEMU after a reset, its disks. Internal to lab/vm.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "lab/backend/backend.h"
#include "lab/backend/host_event_inbox.h"
#include "lab/backend/lab_priority.h"
#include "lab/backend/vm_disks.h"
#include "lab/vm/qemu_backend.h"
#include "lab/vm/qemu_incarnation.h"
#include "lab/vm/qemu_process.h"

namespace chaoslab::vm {

using Clock = std::chrono::steady_clock;

// How long QEMU gets to start answering QMP, to quit politely, and to die after SIGKILL.
inline constexpr std::chrono::milliseconds kStartTimeout(15000);
inline constexpr std::chrono::milliseconds kQuitGrace(3000);
inline constexpr std::chrono::milliseconds kKillWait(5000);

// What the hosts of one QEMU backend share, fixed when the backend is made; the pointers are the
// backend's and outlive its hosts.
struct QemuRun {
  std::string run_id;
  std::string qemu;
  std::string qemu_img;
  std::string relay;
  std::string accel;
  HostEventInbox* queue = nullptr;
  HostPathShortfallNote* shortfall = nullptr;
  Launcher* launcher = nullptr;
};

// One machine. The engine thread calls the Host methods; when the guest (or Reset()) resets the
// machine, QEMU exits (-action reboot=shutdown) and the old incarnation's watcher thread relaunches
// QEMU for the same host ("cold reboot": a fresh TCG translation cache boots ~0.5 s faster than a
// warm reset). `mu_` guards the incarnation swap; commands that arrive during a relaunch are
// remembered and applied to the new incarnation (Pause: it is not started; SendConsole: typed once
// the console is connected; Reset: nothing to do, the machine is resetting already).
class QemuHost : public Host {
 public:
  QemuHost(const QemuRun* run, HostSpec spec, HostPaths paths)
      : run_(run), spec_(std::move(spec)), paths_(std::move(paths)) {}
  ~QemuHost() override {
    BeginPowerOff();
    FinishPowerOff(Clock::now() + kQuitGrace);
  }

  const HostSpec& spec() const override { return spec_; }
  Status Start() override;
  Status Reset() override { return Command("system_reset", "reset"); }
  Status Pause() override { return Command("stop", "pause"); }
  Status Resume() override { return Command("cont", "resume"); }
  Status PowerOff() override {
    BeginPowerOff();
    return FinishPowerOff(Clock::now() + kQuitGrace);
  }
  Status SendConsole(std::string_view text) override;
  Status SetBoot(BootTarget target, const std::string& media) override;
  Status RevertDisk() override;
  Status ReimageDisk() override;
  DiskImage SystemDisk() const override { return DiskImage{paths_.overlay, "qcow2", false}; }
  std::string ConsoleLogPath() const override { return paths_.serial_log; }

  // PowerOff in two halves, so Destroy() can ask every host to quit before waiting for any.
  void BeginPowerOff();
  Status FinishPowerOff(Clock::time_point grace_deadline);

 private:
  // Requires mu_. A relaunch in progress counts as running.
  bool RunningLocked() const {
    return relaunching_ ||
           (inc_ && (!inc_->Exited() || inc_->reboot_pending || inc_->reset_requested));
  }
  // Spawns QEMU (-S) booting `boot`, connects QMP and the console and starts the readers; the
  // vCPUs do not run yet. Writes qemu.pid. On failure nothing is left running.
  Result<std::unique_ptr<Incarnation>> Launch(const BootChoice& boot);
  // Launch(): connects to QEMU's QMP socket while QEMU starts. Error: QEMU exited or never
  // answered.
  Status ConnectQmp(Incarnation* inc);
  // Launch(): QEMU's main loop in real time, when the guest's clock needs it (best effort).
  void RaiseMainLoop(pid_t pid);
  // RevertDisk/ReimageDisk: requires mu_; refuses unless the host is powered off.
  Status RequirePoweredOffLocked(const std::string& what) const;
  // On the old incarnation's watcher thread, after QEMU exited for a reset.
  void Relaunch(const std::string& detail);
  // Relaunch(), in order: report the reset; launch with the boot choice of the moment (requires
  // mu_, held by `lock` on return); end a relaunch that must not run (power-off, failure); run the
  // new incarnation as the engine asked meanwhile (paused, typed into).
  void BeginRelaunch(const std::string& detail);
  Result<std::unique_ptr<Incarnation>> LaunchCurrentChoice(std::unique_lock<std::mutex>& lock);
  void EndRelaunchThatCannotRunLocked(Result<std::unique_ptr<Incarnation>> launched,
                                      const std::string& detail);
  void RunRelaunchedLocked();
  Status Command(const std::string& command, const std::string& what);
  Status SendConsoleTo(Incarnation* inc, std::string_view text);
  // Joins and frees incarnations replaced by a relaunch. Not from their own watcher thread.
  void ReapRetired();
  // Ends an incarnation that was launched but never ran (its vCPUs never started), silently.
  void Discard(std::unique_ptr<Incarnation> inc);

  const QemuRun* run_;
  const HostSpec spec_;
  const HostPaths paths_;

  std::mutex mu_;
  std::condition_variable cv_;  // relaunching_ became false
  std::unique_ptr<Incarnation> inc_;
  std::vector<std::unique_ptr<Incarnation>> retired_;
  bool relaunching_ = false;
  bool paused_in_relaunch_ = false;   // Pause() arrived during the relaunch
  bool power_off_requested_ = false;  // since the last Start()
  std::string console_in_relaunch_;   // SendConsole() text typed during the relaunch
  BootChoice boot_;                   // what the next launch boots (SetBoot)
};

}  // namespace chaoslab::vm
