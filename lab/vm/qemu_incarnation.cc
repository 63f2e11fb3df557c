#include "lab/vm/qemu_incarnation.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lab/backend/console_lines.h"
#include "lab/backend/qmp_events.h"
#include "lab/vm/qemu_process.h"

namespace chaoslab::vm {

using std::chrono::milliseconds;

bool Incarnation::Exited() {
  std::lock_guard<std::mutex> lock(mu);
  return exited;
}

void Incarnation::Kill(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu);
  if (exited || pid <= 0) return;
  if (lost_reason.empty()) lost_reason = reason;
  kill(pid, SIGKILL);
}

bool Incarnation::WaitExited(milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu);
  return cv.wait_for(lock, timeout, [&] { return exited; });
}

void Incarnation::OnQmpEvent(const qmp::Event& e) {
  const QmpEventMeaning meaning = ReadQmpEvent(e.name, e.data);
  if (!meaning.reset_by.empty()) {
    {
      std::lock_guard<std::mutex> lock(reboot_mu);
      reboot_detail = meaning.reset_by;
    }
    reboot_pending = true;
    return;
  }
  if (!meaning.event) return;
  if (*meaning.event == HostEventKind::kResumed && swallow_resume.exchange(false)) return;
  if (*meaning.event == HostEventKind::kShutdown) saw_shutdown = true;
  queue->Push(host_id, *meaning.event, meaning.detail);
}

void Incarnation::OnQmpClosed(const Status& why) {
  {
    std::lock_guard<std::mutex> lock(mu);
    qmp_open = false;
  }
  cv.notify_all();
  // Without QMP we cannot drive the machine: it is lost, and we do not leave it running. Usually
  // the socket closed because QEMU is exiting; give it a moment so kLost names the real cause.
  if (!why.ok() && !expected_exit && !saw_shutdown && !reboot_pending && !reset_requested &&
      !WaitExited(milliseconds(500))) {
    Kill("the lab killed QEMU after its QMP connection closed: " + why.message());
  }
}

void Incarnation::ReadConsole() {
  ReadConsoleLines(console_fd, [this](std::string line) {
    queue->Push(host_id, HostEventKind::kConsoleLine, std::move(line));
  });
  {
    std::lock_guard<std::mutex> lock(mu);
    console_open = false;
  }
  cv.notify_all();
}

void Incarnation::Watch() {
  siginfo_t info{};
  while (waitid(P_PID, pid, &info, WEXITED | WNOWAIT) != 0 && errno == EINTR) {
  }
  int status = 0;
  bool report;
  std::string reason;
  {
    std::unique_lock<std::mutex> lock(mu);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    exited = true;
    cv.notify_all();
    // Let the readers drain what QEMU wrote last, so that kLost/kShutdown is the host's last
    // event.
    cv.wait_for(lock, kDrainTimeout, [&] { return !qmp_open && !console_open; });
    report = started;
    reason = lost_reason;
  }
  if (!report) return;  // Start() failed and says why
  std::string reboot;
  {
    std::lock_guard<std::mutex> lock(reboot_mu);
    reboot = reboot_detail;
  }
  if (reboot.empty() && reset_requested) reboot = "host";  // its SHUTDOWN was not flushed
  if (!reboot.empty() && !expected_exit && reason.empty() && WIFEXITED(status) &&
      WEXITSTATUS(status) == 0 && on_reboot) {
    on_reboot(reboot);  // the host reports kReset and starts the next incarnation
    return;
  }
  ReportEnd(status, std::move(reason));
}

void Incarnation::ReportEnd(int status, std::string reason) {
  reboot_pending = false;
  reset_requested = false;
  if (expected_exit) {
    if (!saw_shutdown) queue->Push(host_id, HostEventKind::kShutdown, "killed");
  } else if (!saw_shutdown || !reason.empty()) {
    reason = "QEMU " + DescribeWaitStatus(status) + (reason.empty() ? "" : " (" + reason + ")");
    std::string tail = ReadFileTail(qemu_log, 300);
    if (!tail.empty()) reason += "; qemu.log: " + tail;
    queue->Push(host_id, HostEventKind::kLost, reason);
  }
}

void Incarnation::Join() {
  if (watcher.joinable()) watcher.join();
  if (console_fd >= 0) shutdown(console_fd, SHUT_RDWR);
  if (console_reader.joinable()) console_reader.join();
  qmp.reset();
}

}  // namespace chaoslab::vm
