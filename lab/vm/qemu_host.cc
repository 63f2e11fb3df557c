#include "lab/vm/qemu_host.h"

#include <sys/socket.h>

#include <algorithm>
#include <filesystem>
#include <thread>

#include "lab/backend/console_socket.h"
#include "lab/backend/guest_clock.h"

namespace chaoslab::vm {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

// qemu-img on a host's overlay. QEMU's image locks make qemu-img fail when another QEMU (a rescue
// VM) has the disk open: that is a precondition, not an I/O fault.
Status DiskTool(const std::string& qemu_img, const std::vector<std::string>& args,
                const std::string& log_path, const std::string& what) {
  Status s = RunTool(qemu_img, args, log_path, milliseconds(30000));
  if (s.ok()) return s;
  if (IsDiskLockConflict(s.message())) return DiskInUse(what, s.message());
  return s.WithContext(what);
}

}  // namespace

Result<std::unique_ptr<Incarnation>> QemuHost::Launch(const BootChoice& boot) {
  std::error_code ignored;
  fs::remove(paths_.qmp_socket, ignored);
  fs::remove(paths_.console_socket, ignored);

  auto owned = std::make_unique<Incarnation>();
  Incarnation* inc = owned.get();
  inc->host_id = spec_.id;
  inc->queue = run_->queue;
  inc->qemu_log = paths_.qemu_log;
  inc->on_reboot = [this](const std::string& detail) { Relaunch(detail); };
  // Ends a failed launch: nothing of it may keep running.
  auto fail = [&](Status why) -> Status {
    inc->expected_exit = true;
    inc->Kill("start failed");
    inc->WaitExited(kKillWait);
    inc->Join();
    return why;
  };
  std::vector<std::string> args =
      QemuArgs(run_->run_id, spec_, paths_, run_->accel, run_->relay, boot);
  auto pid = run_->launcher->Spawn(run_->qemu, args, paths_.qemu_log);
  if (!pid.ok()) return pid.status();
  inc->pid = *pid;
  inc->watcher = std::thread([inc] { inc->Watch(); });
  if (Status s = WriteTextFile(paths_.pid_file, std::to_string(*pid) + "\n"); !s.ok()) {
    return fail(s);
  }

  if (Status connected = ConnectQmp(inc); !connected.ok()) return fail(connected);
  RaiseMainLoop(*pid);
  auto console = ConnectUnixSocket(paths_.console_socket);
  if (!console.ok()) return fail(console.status());
  inc->console_fd = *console;
  {
    std::lock_guard<std::mutex> lock(inc->mu);
    inc->console_open = true;
  }
  inc->console_reader = std::thread([inc] { inc->ReadConsole(); });
  {
    std::lock_guard<std::mutex> lock(inc->mu);
    if (inc->exited) return fail(Status::Unavailable("QEMU exited during start"));
    inc->started = true;
  }
  return owned;
}

Status QemuHost::ConnectQmp(Incarnation* inc) {
  {
    std::lock_guard<std::mutex> lock(inc->mu);
    inc->qmp_open = true;
  }
  qmp::Callbacks callbacks{[inc](const qmp::Event& e) { inc->OnQmpEvent(e); },
                           [inc](const Status& s) { inc->OnQmpClosed(s); }};
  const auto deadline = Clock::now() + kStartTimeout;
  Status last = Status::Timeout("QMP socket did not answer");
  // While the socket refuses connections, retry in short slices so that a QEMU that dies at once
  // (bad flag) is noticed at once. Once connected, a slow answer (a loaded host, many guests
  // starting together) gets longer slices: a client that gives up mid-handshake leaves QEMU's reply
  // to its qmp_capabilities queued for the next connection ("expected a greeting"), so that error
  // is retried as well.
  milliseconds slice(250);
  while (Clock::now() < deadline && !inc->Exited()) {
    auto client = qmp::Connect(paths_.qmp_socket, callbacks, slice);
    if (client.ok()) {
      inc->qmp = std::move(*client);
      break;
    }
    last = client.status();
    if (last.code() == ErrorCode::kInvalidArgument) break;
    if (last.code() != ErrorCode::kUnavailable) {
      slice = std::min(slice * 4, milliseconds(4000));
      std::this_thread::sleep_for(milliseconds(20));
    }
  }
  if (!inc->qmp) {
    {
      std::lock_guard<std::mutex> lock(inc->mu);
      inc->qmp_open = false;
    }
    inc->cv.notify_all();
    if (inc->WaitExited(milliseconds(200))) {
      return Status::Unavailable("QEMU exited at start: " + ReadFileTail(paths_.qemu_log));
    }
    return last;
  }
  return Status::Ok();
}

void QemuHost::RaiseMainLoop(pid_t pid) {
  // QEMU's main loop (slirp, and the relays it spawns later) in real time (lab_priority.h); its
  // vCPU thread exists by now (QMP answers after machine init) and stays ordinary. Best effort:
  // the run's method says whether the lab may (run_command.cc).
  if (GuestClockFor(run_->accel, spec_) == GuestClock::kInstructions) {
    if (Status s = SetRealtime(pid, kLabRealtimePriority, /*reset_on_fork=*/false); !s.ok()) {
      run_->shortfall->Note(spec_.id, s);
    }
  }
}

Status QemuHost::Start() {
  const std::string what = "start host " + spec_.id;
  std::unique_lock<std::mutex> lock(mu_);
  if (RunningLocked()) return Status::FailedPrecondition(what + ": already running");
  const BootChoice boot = boot_;
  lock.unlock();
  ReapRetired();
  if (inc_) {
    inc_->Join();
    inc_.reset();
  }
  auto launched = Launch(boot);
  if (!launched.ok()) return launched.status().WithContext(what);
  lock.lock();
  inc_ = std::move(*launched);
  power_off_requested_ = false;
  Incarnation* inc = inc_.get();
  // QEMU was started with -S: readers are in place before the first instruction runs, so no
  // console line or event is missed. kStarted goes first; the RESUME of this "cont" is not news.
  run_->queue->Push(spec_.id, HostEventKind::kStarted,
                    "pid=" + std::to_string(inc->pid) + " accel=" + run_->accel);
  inc->swallow_resume = true;
  auto cont = inc->qmp->Execute("cont");
  if (!cont.ok()) {
    inc->swallow_resume = false;
    inc->Kill("could not start the vCPUs: " + cont.status().message());
    return cont.status().WithContext(what);
  }
  return Status::Ok();
}

void QemuHost::Relaunch(const std::string& detail) {
  BeginRelaunch(detail);
  std::unique_lock<std::mutex> lock(mu_, std::defer_lock);
  Result<std::unique_ptr<Incarnation>> launched = LaunchCurrentChoice(lock);
  relaunching_ = false;
  cv_.notify_all();
  if (power_off_requested_ || !launched.ok() || !inc_) {
    EndRelaunchThatCannotRunLocked(std::move(launched), detail);
    return;
  }
  retired_.push_back(std::move(inc_));
  inc_ = std::move(*launched);
  RunRelaunchedLocked();
}

void QemuHost::BeginRelaunch(const std::string& detail) {
  std::vector<std::unique_ptr<Incarnation>> done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    relaunching_ = true;
    paused_in_relaunch_ = false;
    console_in_relaunch_.clear();
    // Earlier incarnations' watchers have finished their relaunch by now: safe to join here.
    done.swap(retired_);
    // The engine sees what it saw with warm resets: one kReset, then the new boot's console.
    run_->queue->Push(spec_.id, HostEventKind::kReset, detail);
  }
  for (auto& old : done) old->Join();
}

Result<std::unique_ptr<Incarnation>> QemuHost::LaunchCurrentChoice(
    std::unique_lock<std::mutex>& lock) {
  lock.lock();
  Result<std::unique_ptr<Incarnation>> launched = Status::Cancelled("powered off");
  // Returns holding mu_, so that no SetBoot slips in between the last check and the end
  // of the relaunch (a Reset() then would still be absorbed as "resetting already").
  while (!power_off_requested_) {
    const BootChoice boot = boot_;  // SetBoot before the reset applies to this boot
    lock.unlock();
    launched = Launch(boot);
    lock.lock();
    if (!launched.ok() || power_off_requested_ || boot_ == boot) break;
    // SetBoot (and the engine's Reset, absorbed by this relaunch) came while this QEMU was being
    // started: it has not run an instruction yet (-S), so start over with the new choice rather
    // than boot the old one. A technician's "boot into safe mode" landed in a normal boot here.
    lock.unlock();
    Discard(std::move(*launched));
    launched = Status::Cancelled("powered off");
    lock.lock();
  }
  return launched;
}

void QemuHost::EndRelaunchThatCannotRunLocked(Result<std::unique_ptr<Incarnation>> launched,
                                              const std::string& detail) {
  if (power_off_requested_) {
    // PowerOff/Destroy came during the relaunch: end like a power-off, leave nothing running.
    if (inc_) inc_->reboot_pending = inc_->reset_requested = false;
    if (launched.ok()) {
      (*launched)->expected_exit = true;  // its watcher reports kShutdown "killed"
      (*launched)->Kill("powered off during a reboot");
      if (inc_) retired_.push_back(std::move(inc_));
      inc_ = std::move(*launched);
    } else {
      run_->queue->Push(spec_.id, HostEventKind::kShutdown, "killed");
    }
    return;
  }
  if (inc_) inc_->reboot_pending = inc_->reset_requested = false;  // down: Start() may start it
  if (launched.ok()) {  // cannot happen (inc_ only goes away on power-off), but leave nothing
    (*launched)->expected_exit = true;
    (*launched)->Kill("host went away during a reboot");
    retired_.push_back(std::move(*launched));
    return;
  }
  run_->queue->Push(
      spec_.id, HostEventKind::kLost,
      "QEMU could not be restarted after a " + detail + " reset: " + launched.status().message());
}

void QemuHost::RunRelaunchedLocked() {
  Incarnation* inc = inc_.get();
  if (!console_in_relaunch_.empty()) {
    (void)SendConsoleTo(inc, console_in_relaunch_);
    console_in_relaunch_.clear();
  }
  if (paused_in_relaunch_) {
    // Stopped as asked; Resume() will "cont" it (and its RESUME is reported as kResumed).
    run_->queue->Push(spec_.id, HostEventKind::kStopped);
    return;
  }
  inc->swallow_resume = true;
  auto cont = inc->qmp->Execute("cont", nullptr, milliseconds(5000));
  if (!cont.ok()) {
    inc->swallow_resume = false;
    inc->Kill("could not start the vCPUs after a reset: " + cont.status().message());
  }
}

void QemuHost::Discard(std::unique_ptr<Incarnation> inc) {
  {
    std::lock_guard<std::mutex> lock(inc->mu);
    inc->started = false;  // its watcher reports nothing: the engine never saw this QEMU
  }
  inc->expected_exit = true;
  inc->Kill("superseded by a new boot choice before it ran");
  inc->WaitExited(kKillWait);
  inc->Join();
}

void QemuHost::ReapRetired() {
  std::vector<std::unique_ptr<Incarnation>> done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    done.swap(retired_);
  }
  for (auto& old : done) old->Join();
}

Status QemuHost::Command(const std::string& command, const std::string& what) {
  // Held across the QMP round trip so that a relaunch cannot swap the incarnation (or "cont" it)
  // in between. QMP replies are read on the incarnation's own thread, which never takes mu_.
  std::lock_guard<std::mutex> lock(mu_);
  if (!RunningLocked()) {
    return Status::FailedPrecondition(what + " host " + spec_.id + ": not running");
  }
  if (relaunching_ || inc_->reboot_pending || inc_->reset_requested) {
    // QEMU is being restarted for a reset; apply the command to the next incarnation.
    if (command == "stop") paused_in_relaunch_ = true;
    if (command == "cont") paused_in_relaunch_ = false;
    return Status::Ok();  // "system_reset": the machine is resetting already
  }
  if (!inc_->qmp) {
    return Status::FailedPrecondition(what + " host " + spec_.id + ": not running");
  }
  if (command == "system_reset") inc_->reset_requested = true;
  auto r = inc_->qmp->Execute(command, nullptr, milliseconds(5000));
  if (!r.ok()) {
    // QEMU exits for the reset (-action reboot=shutdown) and may close QMP before replying.
    if (command == "system_reset" && r.status().code() == ErrorCode::kUnavailable) {
      return Status::Ok();
    }
    return r.status().WithContext(what + " host " + spec_.id);
  }
  return Status::Ok();
}

Status QemuHost::SendConsole(std::string_view text) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!RunningLocked()) {
    return Status::FailedPrecondition("console of host " + spec_.id + ": not running");
  }
  if (relaunching_ || inc_->reboot_pending || inc_->reset_requested) {
    console_in_relaunch_.append(text);
    return Status::Ok();
  }
  return SendConsoleTo(inc_.get(), text);
}

Status QemuHost::SendConsoleTo(Incarnation* inc, std::string_view text) {
  if (inc->console_fd < 0) {
    return Status::FailedPrecondition("console of host " + spec_.id + ": not running");
  }
  std::lock_guard<std::mutex> lock(inc->console_write_mu);
  return SendAll(inc->console_fd, text, "console of host " + spec_.id);
}

Status QemuHost::SetBoot(BootTarget target, const std::string& media) {
  ASSIGN_OR_RETURN(BootChoice next, ChooseBoot(spec_.id, target, media));
  std::lock_guard<std::mutex> lock(mu_);
  boot_ = std::move(next);
  return Status::Ok();
}

Status QemuHost::RequirePoweredOffLocked(const std::string& what) const {
  // A relaunch (reset under way) counts as running: the disk is about to be opened again.
  if (RunningLocked()) {
    return Status::FailedPrecondition(what + ": the host is powered on (PowerOff first)");
  }
  return Status::Ok();
}

Status QemuHost::RevertDisk() {
  const std::string what = "revert disk of host " + spec_.id;
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(RequirePoweredOffLocked(what));
  return DiskTool(run_->qemu_img, SnapshotApplyArgs(paths_.overlay), paths_.dir + "/qemu-img.log",
                  what);
}

Status QemuHost::ReimageDisk() {
  const std::string what = "reimage disk of host " + spec_.id;
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(RequirePoweredOffLocked(what));
  // In place rather than via a new file and rename: qemu-img create takes the image's lock, so a
  // disk a rescue VM still has open is refused instead of swapped under it.
  RETURN_IF_ERROR(DiskTool(run_->qemu_img,
                           OverlayCreateArgs(spec_.base_disk, "raw", paths_.overlay),
                           paths_.dir + "/qemu-img.log", what));
  return DiskTool(run_->qemu_img, SnapshotTakeArgs(paths_.overlay), paths_.dir + "/qemu-img.log",
                  what + ": snapshot");
}

void QemuHost::BeginPowerOff() {
  std::lock_guard<std::mutex> lock(mu_);
  power_off_requested_ = true;  // a relaunch in progress stops and leaves nothing running
  if (relaunching_ || !inc_ || inc_->Exited()) return;
  inc_->expected_exit = true;
  // "quit" answers before QEMU exits; errors (QMP already gone) leave the kill to FinishPowerOff.
  if (inc_->qmp) (void)inc_->qmp->Execute("quit", nullptr, milliseconds(1000));
}

Status QemuHost::FinishPowerOff(Clock::time_point grace_deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  // A relaunch sees power_off_requested_ and ends on its own; wait for it (Launch has deadlines).
  cv_.wait_for(lock, kStartTimeout + kKillWait, [&] { return !relaunching_; });
  if (relaunching_) {
    return Status::Internal("host " + spec_.id + ": a QEMU relaunch did not end");
  }
  if (inc_ && !inc_->Exited() && !inc_->expected_exit) {
    // Started by a relaunch after BeginPowerOff: it is being killed already, but make sure.
    inc_->expected_exit = true;
    inc_->Kill("powered off");
  }
  std::unique_ptr<Incarnation> inc = std::move(inc_);
  lock.unlock();
  ReapRetired();
  if (!inc) return Status::Ok();
  Status result;
  auto left = std::chrono::duration_cast<milliseconds>(grace_deadline - Clock::now());
  if (!inc->WaitExited(std::max(left, milliseconds(0)))) {
    inc->Kill("did not quit");
    if (!inc->WaitExited(kKillWait)) {
      // Only possible if the process is stuck in the kernel; never hang on it.
      result = Status::Internal("host " + spec_.id + ": QEMU pid " + std::to_string(inc->pid) +
                                " survived SIGKILL");
      inc->watcher.detach();
      inc.release();  // leaked on purpose: its threads still reference it
      return result;
    }
  }
  // A reboot that was under way when we asked to quit: its watcher hands over to Relaunch(),
  // which sees power_off_requested_. Wait for that before joining.
  inc->Join();
  ReapRetired();
  inc.reset();
  return result;
}

}  // namespace chaoslab::vm
