// One run of a QEMU process of the QEMU backend, from Start() (or a relaunch after a reset) until
// it exited and its readers finished: its QMP events and console lines become host events. Its
// threads (process watcher, console reader, QMP reader) only touch this object and the event
// queue. Internal to lab/vm.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "lab/backend/host_event_inbox.h"
#include "lab/qmp/qmp_client.h"

namespace chaoslab::vm {

// After QEMU exits, how long to wait for the QMP and console readers to drain what it wrote last.
inline constexpr std::chrono::milliseconds kDrainTimeout(2000);

struct Incarnation {
  std::string host_id;
  HostEventInbox* queue = nullptr;
  std::string qemu_log;

  std::mutex mu;
  std::condition_variable cv;
  pid_t pid = -1;
  bool exited = false;        // reaped: the pid must not be signalled any more
  bool started = false;       // Start() completed; before that, failures are Start()'s to report
  bool qmp_open = false;      // the QMP reader is still running
  bool console_open = false;  // the console reader is still running
  std::string lost_reason;    // why we killed it ourselves, if we did

  std::atomic<bool> expected_exit{false};  // PowerOff/Destroy asked for it
  std::atomic<bool> saw_shutdown{false};
  std::atomic<bool> swallow_resume{false};  // the RESUME of Start()'s own "cont"
  // QEMU runs with -action reboot=shutdown: a reset arrives as SHUTDOWN with reason "guest-reset"
  // or "host-qmp-system-reset" and QEMU exits. This holds "guest"/"host" once that happened; the
  // watcher then hands over to `on_reboot` (the host relaunches QEMU) instead of reporting an end.
  std::mutex reboot_mu;
  std::string reboot_detail;
  std::atomic<bool> reboot_pending{false};
  // Reset() sent "system_reset". QEMU may exit before its reply and SHUTDOWN event reach us (it
  // does not always flush QMP output on the way out); a clean exit then still counts as the reset.
  std::atomic<bool> reset_requested{false};
  std::function<void(const std::string&)> on_reboot;

  std::unique_ptr<qmp::Client> qmp;
  int console_fd = -1;
  std::mutex console_write_mu;
  std::thread watcher;
  std::thread console_reader;

  ~Incarnation() {
    if (console_fd >= 0) close(console_fd);
  }

  bool Exited();
  // SIGKILL unless already reaped (so the pid cannot belong to someone else).
  void Kill(const std::string& reason);
  bool WaitExited(std::chrono::milliseconds timeout);

  // The QMP reader's callbacks.
  void OnQmpEvent(const qmp::Event& e);
  void OnQmpClosed(const Status& why);
  // The console reader's thread: lines until end of file.
  void ReadConsole();
  // The watcher's thread: waits for QEMU to exit, then reports its end or hands over to on_reboot.
  void Watch();
  // Waits for every thread of this incarnation. Only after the process is gone.
  void Join();

 private:
  // Watch(), once QEMU exited and the readers drained: kShutdown or kLost, as the end deserves.
  void ReportEnd(int status, std::string reason);
};

}  // namespace chaoslab::vm
