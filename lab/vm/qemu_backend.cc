#include "lab/vm/qemu_backend.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include <algorithm>
#include <atomic>
#include <boost/process.hpp>
#include <boost/process/extend.hpp>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "lab/backend/console_lines.h"
#include "lab/backend/guest_clock.h"
#include "lab/backend/guest_network.h"
#include "lab/backend/host_event_inbox.h"
#include "lab/backend/lab_priority.h"
#include "lab/backend/run_dir.h"
#include "lab/common/child_fds.h"
#include "lab/common/identifier.h"
#include "lab/common/secret_file.h"
#include "lab/qmp/qmp_client.h"

namespace chaoslab::vm {
namespace {

namespace bp = boost::process;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// How long QEMU gets to start answering QMP, to quit politely, and to die after SIGKILL.
constexpr milliseconds kStartTimeout(15000);
constexpr milliseconds kQuitGrace(3000);
constexpr milliseconds kKillWait(5000);
// After QEMU exits, how long to wait for the QMP and console readers to drain what it wrote last.
constexpr milliseconds kDrainTimeout(2000);
constexpr milliseconds kProbeTimeout(2500);
constexpr size_t kMaxSocketPath = sizeof(sockaddr_un{}.sun_path) - 1;

bool IsIdChar(char c, bool allow_dot) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || (allow_dot && c == '.');
}

std::string OptEscape(const std::string& value) { return QemuOptEscape(value); }

Result<std::string> FindProgram(const std::string& name, const std::string& what) {
  std::string found;
  if (name.find('/') != std::string::npos) {
    if (access(name.c_str(), X_OK) == 0) found = fs::absolute(name).string();
  } else {
    found = bp::search_path(name).string();
  }
  if (found.empty()) {
    return Status::NotFound(name + " not found" + (what.empty() ? "" : " (" + what + ")") +
                            ": run `make setup`");
  }
  return found;
}

std::string ReadFileTail(const std::string& path, size_t max_bytes = 600) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.size() > max_bytes) text = "..." + text.substr(text.size() - max_bytes);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

// The error names the cause (a full disk, say: a lost host's reason is all its report has).
Status WriteTextFile(const std::string& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno("cannot write " + path, errno);
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return Status::FromErrno("cannot write " + path, err);
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) return Status::FromErrno("cannot write " + path, errno);
  return Status::Ok();
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return std::string("killed by signal ") + std::to_string(WTERMSIG(status)) + " (" +
           strsignal(WTERMSIG(status)) + ")";
  }
  return "ended with wait status " + std::to_string(status);
}

// Waits for our child `pid` to end and reaps it. Returns its wait status, or nullopt at the
// deadline (the child is then still ours to kill and reap). Polls: Boost 1.74's child::wait_for can
// sleep for the whole timeout even when the child has already ended.
std::optional<int> WaitChildFor(pid_t pid, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) return -1;
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(milliseconds(5));
  }
}

void KillAndReap(pid_t pid) {
  kill(pid, SIGKILL);
  while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

// In the forked child, before exec: die with the orchestrator, inherit no stray descriptors.
struct ChildSetup {
  pid_t parent;
  template <typename Executor>
  void operator()(Executor&) const {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // the parent died before prctl took effect
    // Its own process group: Ctrl-C at the terminal must reach only the orchestrator, which then
    // stops the run in order and reports; the guests must not die first.
    setpgid(0, 0);
    CloseInheritedFdsOnExec();
  }
};

// Starts processes from one long-lived thread. PR_SET_PDEATHSIG fires when the *thread* that forked
// the child ends, so forking from whatever thread calls Start() could kill guests early.
class Launcher {
 public:
  Launcher() : thread_([this] { Loop(); }) {}
  ~Launcher() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  // Starts `program` with `args`, stdin from /dev/null, stdout+stderr to `log_path`. Returns its
  // pid.
  Result<pid_t> Spawn(const std::string& program, const std::vector<std::string>& args,
                      const std::string& log_path) {
    std::promise<Result<pid_t>> promise;
    auto future = promise.get_future();
    {
      std::lock_guard<std::mutex> lock(mu_);
      tasks_.push_back([&] {
        try {
          bp::child child(program, bp::args(args), (bp::std_in < bp::null),
                          ((bp::std_out & bp::std_err) > log_path),
                          bp::extend::on_exec_setup = ChildSetup{getpid()});
          pid_t pid = child.id();
          child.detach();  // reaped by the host's watcher thread
          promise.set_value(Result<pid_t>(pid));
        } catch (const std::exception& e) {
          promise.set_value(
              Result<pid_t>(Status::IoError("cannot start " + program + ": " + e.what())));
        }
      });
    }
    cv_.notify_all();
    return future.get();
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return stop_ || !tasks_.empty(); });
      if (tasks_.empty()) return;
      auto task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      task();
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stop_ = false;
  std::thread thread_;
};

// Runs a short tool to completion (qemu-img) with a deadline; output goes to `log_path`.
Status RunTool(const std::string& program, const std::vector<std::string>& args,
               const std::string& log_path, milliseconds timeout) {
  pid_t pid;
  try {
    bp::child child(
        program, bp::args(args), (bp::std_in < bp::null), ((bp::std_out & bp::std_err) > log_path),
        bp::extend::on_exec_setup = [](auto&) { CloseInheritedFdsOnExec(); });
    pid = child.id();
    child.detach();
  } catch (const std::exception& e) {
    return Status::IoError("cannot run " + program + ": " + e.what());
  }
  std::optional<int> status = WaitChildFor(pid, timeout);
  if (!status) {
    KillAndReap(pid);
    return Status::Timeout(program + " did not finish within " + std::to_string(timeout.count()) +
                           " ms");
  }
  if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
    return Status::IoError(program + " failed (" + DescribeWaitStatus(*status) +
                           "): " + ReadFileTail(log_path));
  }
  return Status::Ok();
}

// One run of a QEMU process, from Start() until it exited and its readers finished. Its threads
// (process watcher, console reader, QMP reader) only touch this object and the event queue.
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

  bool Exited() {
    std::lock_guard<std::mutex> lock(mu);
    return exited;
  }

  // SIGKILL unless already reaped (so the pid cannot belong to someone else).
  void Kill(const std::string& reason) {
    std::lock_guard<std::mutex> lock(mu);
    if (exited || pid <= 0) return;
    if (lost_reason.empty()) lost_reason = reason;
    kill(pid, SIGKILL);
  }

  bool WaitExited(milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, timeout, [&] { return exited; });
  }

  void OnQmpEvent(const qmp::Event& e) {
    auto flag = [&](const char* key) {
      return e.data.is_object() && e.data.contains(key) && e.data[key].is_boolean() &&
             e.data[key].get<bool>();
    };
    if (e.name == "GUEST_PANICKED") {
      queue->Push(host_id, HostEventKind::kPanicked, e.data.dump());
    } else if (e.name == "RESET") {
      queue->Push(host_id, HostEventKind::kReset, flag("guest") ? "guest" : "host");
    } else if (e.name == "STOP") {
      queue->Push(host_id, HostEventKind::kStopped);
    } else if (e.name == "RESUME") {
      if (swallow_resume.exchange(false)) return;
      queue->Push(host_id, HostEventKind::kResumed);
    } else if (e.name == "SHUTDOWN") {
      std::string reason =
          e.data.is_object() && e.data.contains("reason") && e.data["reason"].is_string()
              ? e.data["reason"].get<std::string>()
              : "";
      if (reason == "guest-reset" || reason == "host-qmp-system-reset") {
        {
          std::lock_guard<std::mutex> lock(reboot_mu);
          reboot_detail = reason == "guest-reset" ? "guest" : "host";
        }
        reboot_pending = true;
        return;
      }
      saw_shutdown = true;
      queue->Push(host_id, HostEventKind::kShutdown, flag("guest") ? "guest" : "host");
    }
  }

  void OnQmpClosed(const Status& why) {
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

  void ReadConsole() {
    ReadConsoleLines(console_fd, [this](std::string line) {
      queue->Push(host_id, HostEventKind::kConsoleLine, std::move(line));
    });
    {
      std::lock_guard<std::mutex> lock(mu);
      console_open = false;
    }
    cv.notify_all();
  }

  void Watch() {
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

  // Waits for every thread of this incarnation. Only after the process is gone.
  void Join() {
    if (watcher.joinable()) watcher.join();
    if (console_fd >= 0) shutdown(console_fd, SHUT_RDWR);
    if (console_reader.joinable()) console_reader.join();
    qmp.reset();
  }
};

Result<int> ConnectConsole(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::FromErrno("console socket()", errno);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    close(fd);
    return Status::FromErrno("connect to console " + path, err);
  }
  return fd;
}

class QemuBackend;

std::vector<std::string> OverlayCreateArgs(const std::string& base, const std::string& overlay) {
  return {"create", "-q", "-f", "qcow2", "-F", "raw", "-b", base, overlay};
}

// One machine. The engine thread calls the Host methods; when the guest (or Reset()) resets the
// machine, QEMU exits (-action reboot=shutdown) and the old incarnation's watcher thread relaunches
// QEMU for the same host ("cold reboot": a fresh TCG translation cache boots ~0.5 s faster than a
// warm reset). `mu_` guards the incarnation swap; commands that arrive during a relaunch are
// remembered and applied to the new incarnation (Pause: it is not started; SendConsole: typed once
// the console is connected; Reset: nothing to do, the machine is resetting already).
class QemuHost : public Host {
 public:
  QemuHost(QemuBackend* backend, HostSpec spec, HostPaths paths)
      : backend_(backend), spec_(std::move(spec)), paths_(std::move(paths)) {}
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
  // RevertDisk/ReimageDisk: requires mu_; refuses unless the host is powered off.
  Status RequirePoweredOffLocked(const std::string& what) const;
  // On the old incarnation's watcher thread, after QEMU exited for a reset.
  void Relaunch(const std::string& detail);
  Status Command(const std::string& command, const std::string& what);
  Status SendConsoleTo(Incarnation* inc, std::string_view text);
  // Joins and frees incarnations replaced by a relaunch. Not from their own watcher thread.
  void ReapRetired();
  // Ends an incarnation that was launched but never ran (its vCPUs never started), silently.
  void Discard(std::unique_ptr<Incarnation> inc);

  QemuBackend* backend_;
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

class QemuBackend : public Backend {
 public:
  QemuBackend(QemuOptions options, std::string run_dir, std::string qemu, std::string qemu_img,
              std::string relay, std::string accel)
      : options_(std::move(options)),
        run_dir_(std::move(run_dir)),
        qemu_(std::move(qemu)),
        qemu_img_(std::move(qemu_img)),
        relay_(std::move(relay)),
        accel_(std::move(accel)) {}
  ~QemuBackend() override { Destroy(); }

  std::string_view name() const override { return "qemu"; }
  std::string accelerator() const override { return accel_; }
  Result<Host*> CreateHost(const HostSpec& spec) override;
  Status PollEvents(milliseconds timeout, std::vector<HostEvent>* out) override {
    queue_.PopAll(timeout, out);
    return Status::Ok();
  }
  Status Destroy() override;

  const std::string& run_id() const { return options_.run_id; }
  const std::string& qemu() const { return qemu_; }
  const std::string& qemu_img() const { return qemu_img_; }
  const std::string& relay() const { return relay_; }
  const std::string& accel() const { return accel_; }
  HostEventInbox& queue() { return queue_; }
  Launcher& launcher() { return launcher_; }
  HostPathShortfallNote& shortfall() { return shortfall_; }
  std::string HostPathShortfall() const override { return shortfall_.Get(); }

 private:
  Status ValidateSpec(const HostSpec& spec) const;

  const QemuOptions options_;
  const std::string run_dir_;
  const std::string qemu_;
  const std::string qemu_img_;
  const std::string relay_;
  const std::string accel_;
  HostEventInbox queue_;
  Launcher launcher_;
  HostPathShortfallNote shortfall_;
  std::map<std::string, std::unique_ptr<QemuHost>> hosts_;
  bool destroyed_ = false;
};

Result<std::unique_ptr<Incarnation>> QemuHost::Launch(const BootChoice& boot) {
  std::error_code ignored;
  fs::remove(paths_.qmp_socket, ignored);
  fs::remove(paths_.console_socket, ignored);

  auto owned = std::make_unique<Incarnation>();
  Incarnation* inc = owned.get();
  inc->host_id = spec_.id;
  inc->queue = &backend_->queue();
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
      QemuArgs(backend_->run_id(), spec_, paths_, backend_->accel(), backend_->relay(), boot);
  auto pid = backend_->launcher().Spawn(backend_->qemu(), args, paths_.qemu_log);
  if (!pid.ok()) return pid.status();
  inc->pid = *pid;
  inc->watcher = std::thread([inc] { inc->Watch(); });
  if (Status s = WriteTextFile(paths_.pid_file, std::to_string(*pid) + "\n"); !s.ok()) {
    return fail(s);
  }

  // QMP: retry in short slices so that a QEMU that dies at once (bad flag) is noticed at once.
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
      return fail(Status::Unavailable("QEMU exited at start: " + ReadFileTail(paths_.qemu_log)));
    }
    return fail(last);
  }

  // QEMU's main loop (slirp, and the relays it spawns later) in real time (lab_priority.h); its
  // vCPU thread exists by now (QMP answers after machine init) and stays ordinary. Best effort:
  // the run's method says whether the lab may (run_command.cc).
  if (GuestClockFor(backend_->accel(), spec_) == GuestClock::kInstructions) {
    if (Status s = SetRealtime(*pid, kLabRealtimePriority, /*reset_on_fork=*/false); !s.ok()) {
      backend_->shortfall().Note(spec_.id, s);
    }
  }
  auto console = ConnectConsole(paths_.console_socket);
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
  backend_->queue().Push(spec_.id, HostEventKind::kStarted,
                         "pid=" + std::to_string(inc->pid) + " accel=" + backend_->accel());
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
  std::vector<std::unique_ptr<Incarnation>> done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    relaunching_ = true;
    paused_in_relaunch_ = false;
    console_in_relaunch_.clear();
    // Earlier incarnations' watchers have finished their relaunch by now: safe to join here.
    done.swap(retired_);
    // The engine sees what it saw with warm resets: one kReset, then the new boot's console.
    backend_->queue().Push(spec_.id, HostEventKind::kReset, detail);
  }
  for (auto& old : done) old->Join();
  done.clear();

  Result<std::unique_ptr<Incarnation>> launched = Status::Cancelled("powered off");
  // Leaves the loop holding mu_, so that no SetBoot slips in between the last check and the end
  // of the relaunch (a Reset() then would still be absorbed as "resetting already").
  std::unique_lock<std::mutex> lock(mu_);
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

  relaunching_ = false;
  cv_.notify_all();
  if (power_off_requested_) {
    // PowerOff/Destroy came during the relaunch: end like a power-off, leave nothing running.
    if (inc_) inc_->reboot_pending = inc_->reset_requested = false;
    if (launched.ok()) {
      (*launched)->expected_exit = true;  // its watcher reports kShutdown "killed"
      (*launched)->Kill("powered off during a reboot");
      if (inc_) retired_.push_back(std::move(inc_));
      inc_ = std::move(*launched);
    } else {
      backend_->queue().Push(spec_.id, HostEventKind::kShutdown, "killed");
    }
    return;
  }
  if (!launched.ok() || !inc_) {
    if (inc_) inc_->reboot_pending = inc_->reset_requested = false;  // down: Start() may start it
    if (launched.ok()) {  // cannot happen (inc_ only goes away on power-off), but leave nothing
      (*launched)->expected_exit = true;
      (*launched)->Kill("host went away during a reboot");
      retired_.push_back(std::move(*launched));
      return;
    }
    backend_->queue().Push(
        spec_.id, HostEventKind::kLost,
        "QEMU could not be restarted after a " + detail + " reset: " + launched.status().message());
    return;
  }
  retired_.push_back(std::move(inc_));
  inc_ = std::move(*launched);
  Incarnation* inc = inc_.get();
  if (!console_in_relaunch_.empty()) {
    (void)SendConsoleTo(inc, console_in_relaunch_);
    console_in_relaunch_.clear();
  }
  if (paused_in_relaunch_) {
    // Stopped as asked; Resume() will "cont" it (and its RESUME is reported as kResumed).
    backend_->queue().Push(spec_.id, HostEventKind::kStopped);
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
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = send(inc->console_fd, text.data() + off, text.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return Status::Unavailable("console of host " + spec_.id + ": " + std::strerror(errno));
    }
    off += static_cast<size_t>(n);
  }
  return Status::Ok();
}

// The qcow2 magic, "QFI\xfb": recovery media made as qcow2 are attached as such, anything else raw.
Result<std::string> MediaFormat(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    return Status::NotFound("recovery media '" + path + "' is not a file");
  }
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  if (!in.read(magic, sizeof(magic)) && !in.eof()) {
    return Status::IoError("cannot read recovery media '" + path + "'");
  }
  if (!in) return std::string("raw");  // shorter than 4 bytes
  return std::string(std::memcmp(magic, "QFI\xfb", 4) == 0 ? "qcow2" : "raw");
}

Status QemuHost::SetBoot(BootTarget target, const std::string& media) {
  const std::string what =
      "set boot of host " + spec_.id + " to " + std::string(BootTargetWord(target));
  BootChoice next;
  next.target = target;
  if (target == BootTarget::kUsb) {
    if (media.empty()) return Status::InvalidArgument(what + ": usb needs a media image");
    next.media.path = fs::absolute(media).string();
    auto format = MediaFormat(next.media.path);
    if (!format.ok()) return format.status().WithContext(what);
    next.media.format = *format;
    next.media.read_only = true;
  } else if (!media.empty()) {
    return Status::InvalidArgument(what + ": only usb takes a media image");
  }
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

// qemu-img on a host's overlay. QEMU's image locks make qemu-img fail when another QEMU (a rescue
// VM) has the disk open: that is a precondition, not an I/O fault.
Status DiskTool(const std::string& qemu_img, const std::vector<std::string>& args,
                const std::string& log_path, const std::string& what) {
  Status s = RunTool(qemu_img, args, log_path, milliseconds(30000));
  if (s.ok()) return s;
  if (s.message().find("Failed to get") != std::string::npos &&
      s.message().find("\" lock") != std::string::npos) {
    return Status::FailedPrecondition(what + ": the disk is in use by another machine (a rescue " +
                                      "VM?): " + s.message());
  }
  return s.WithContext(what);
}

Status QemuHost::RevertDisk() {
  const std::string what = "revert disk of host " + spec_.id;
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(RequirePoweredOffLocked(what));
  return DiskTool(backend_->qemu_img(), {"snapshot", "-a", kPreUpdateSnapshot, paths_.overlay},
                  paths_.dir + "/qemu-img.log", what);
}

Status QemuHost::ReimageDisk() {
  const std::string what = "reimage disk of host " + spec_.id;
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(RequirePoweredOffLocked(what));
  // In place rather than via a new file and rename: qemu-img create takes the image's lock, so a
  // disk a rescue VM still has open is refused instead of swapped under it.
  RETURN_IF_ERROR(DiskTool(backend_->qemu_img(), OverlayCreateArgs(spec_.base_disk, paths_.overlay),
                           paths_.dir + "/qemu-img.log", what));
  return DiskTool(backend_->qemu_img(), {"snapshot", "-c", kPreUpdateSnapshot, paths_.overlay},
                  paths_.dir + "/qemu-img.log", what + ": snapshot");
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

Status QemuBackend::ValidateSpec(const HostSpec& spec) const {
  const std::string where = "host '" + spec.id + "'";
  RETURN_IF_ERROR(CheckIdentifier("host name", spec.id));  // it names files and the QEMU
  for (const auto& [file, what] :
       {std::pair{spec.kernel, "kernel"}, std::pair{spec.initrd, "initrd"},
        std::pair{spec.base_disk, "base disk"}}) {
    std::error_code ec;
    if (file.empty() || !fs::is_regular_file(file, ec)) {
      return Status::NotFound(where + ": " + what + " '" + file + "' is not a file");
    }
  }
  if (spec.memory_mib < 32 || spec.memory_mib > 65536) {
    return Status::InvalidArgument(where + ": memory_mib " + std::to_string(spec.memory_mib) +
                                   " is outside 32..65536");
  }
  for (const auto& word : spec.kernel_args) {
    bool bad = word.empty();
    for (unsigned char c : word) bad |= c < 0x20 || c == 0x7f || c == ' ';
    if (bad) {
      return Status::InvalidArgument(where + ": kernel argument '" + word +
                                     "' is empty or contains spaces/control characters");
    }
  }
  if (spec.extra_disks.size() > 8) {
    return Status::InvalidArgument(where + ": at most 8 extra disks");
  }
  for (const auto& disk : spec.extra_disks) {
    std::error_code ec;
    if (disk.path.empty() || !fs::is_regular_file(disk.path, ec)) {
      return Status::NotFound(where + ": extra disk '" + disk.path + "' is not a file");
    }
    if (disk.format != "raw" && disk.format != "qcow2") {
      return Status::InvalidArgument(where + ": extra disk '" + disk.path + "' has format '" +
                                     disk.format + "' (raw or qcow2)");
    }
  }
  // It goes on the kernel command line: hex only, and short.
  if (spec.tpm_secret.size() > 128 ||
      spec.tpm_secret.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
    return Status::InvalidArgument(where + ": tpm_secret must be at most 128 hex digits");
  }
  const NetworkLink& net = spec.network;
  if (net.online) {
    if (relay_.empty()) {
      return Status::FailedPrecondition(where +
                                        " is online but the backend has no content relay "
                                        "(QemuOptions.relay)");
    }
    RETURN_IF_ERROR(GuestfwdNetdev(relay_, net).status().WithContext(where));
    if (net.delay_ms < 0 || net.jitter_ms < 0) {
      return Status::InvalidArgument(where + ": network delay and jitter must be >= 0");
    }
  }
  return Status::Ok();
}

Result<Host*> QemuBackend::CreateHost(const HostSpec& spec) {
  if (destroyed_) return Status::FailedPrecondition("qemu backend: CreateHost after Destroy");
  RETURN_IF_ERROR(ValidateSpec(spec));
  if (hosts_.count(spec.id)) {
    return Status::InvalidArgument("host '" + spec.id + "' exists already in this run");
  }
  HostPaths paths = PathsFor(run_dir_, spec.id);
  for (const std::string* sock : {&paths.qmp_socket, &paths.console_socket}) {
    if (sock->size() > kMaxSocketPath) {
      return Status::InvalidArgument("socket path " + *sock + " is longer than " +
                                     std::to_string(kMaxSocketPath) +
                                     " bytes: use a shorter runtime root, run id or host id");
    }
  }
  if (Status made = MakeOwnedDir(paths.dir, ThisProcessOwns(options_.run_id)); !made.ok()) {
    return made.WithContext("create host folder");
  }
  if (!spec.tpm_secret.empty()) RETURN_IF_ERROR(WriteSecretFile(paths.tpm_secret, spec.tpm_secret));
  std::string base = fs::absolute(spec.base_disk).string();
  const std::string tool_log = paths.dir + "/qemu-img.log";
  Status made =
      RunTool(qemu_img_, OverlayCreateArgs(base, paths.overlay), tool_log, milliseconds(30000));
  if (!made.ok()) return made.WithContext("host '" + spec.id + "': create overlay disk");
  // What RevertDisk goes back to: the disk before the first boot (before any update it fetches).
  made = RunTool(qemu_img_, {"snapshot", "-c", kPreUpdateSnapshot, paths.overlay}, tool_log,
                 milliseconds(30000));
  if (!made.ok()) return made.WithContext("host '" + spec.id + "': snapshot the overlay disk");
  HostSpec absolute = spec;
  absolute.base_disk = base;
  absolute.kernel = fs::absolute(spec.kernel).string();
  absolute.initrd = fs::absolute(spec.initrd).string();
  for (auto& disk : absolute.extra_disks) disk.path = fs::absolute(disk.path).string();
  auto host = std::make_unique<QemuHost>(this, std::move(absolute), paths);
  Host* raw = host.get();
  hosts_.emplace(spec.id, std::move(host));
  return raw;
}

Status QemuBackend::Destroy() {
  if (destroyed_) return Status::Ok();
  destroyed_ = true;
  for (auto& [id, host] : hosts_) host->BeginPowerOff();
  const auto deadline = Clock::now() + kQuitGrace;
  Status first_error;
  for (auto& [id, host] : hosts_) {
    Status s = host->FinishPowerOff(deadline);
    if (!s.ok() && first_error.ok()) first_error = s;
  }
  hosts_.clear();
  std::error_code ec;
  fs::remove_all(run_dir_, ec);
  if (ec && first_error.ok()) {
    first_error = Status::IoError("remove run folder " + run_dir_ + ": " + ec.message());
  }
  return first_error;
}

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
                  "-drive", "file=" + OptEscape(disk) + ",format=raw,if=ide", "-device",
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

std::string DefaultRuntimeRoot() { return "/tmp/chaoslab-" + std::to_string(getuid()); }

HostPaths PathsFor(const std::string& run_dir, const std::string& host_id) {
  HostPaths p;
  p.dir = run_dir + "/" + host_id;
  p.overlay = p.dir + "/overlay.qcow2";
  p.qmp_socket = p.dir + "/qmp.sock";
  p.console_socket = p.dir + "/console.sock";
  p.serial_log = p.dir + "/serial.log";
  p.qemu_log = p.dir + "/qemu.log";
  p.pid_file = p.dir + "/qemu.pid";
  p.tpm_secret = p.dir + "/tpm.secret";
  return p;
}

std::vector<std::string> QemuArgs(const std::string& run_id, const HostSpec& spec,
                                  const HostPaths& paths, const std::string& accel,
                                  const std::string& relay, const BootChoice& boot) {
  const GuestClock clock = GuestClockFor(accel, spec);
  const std::string append = KernelCmdline(spec, boot.target, GuestTscKhz(clock, accel));
  std::vector<std::string> args = {
      "-name",       "chaoslab:" + run_id + ":" + spec.id,
      "-M",          "pc",
      "-nodefaults", "-no-user-config",
      "-display",    "none",
      "-accel",      accel,
      "-smp",        "1",
      "-m",          std::to_string(spec.memory_mib),
      "-kernel",     spec.kernel,
      "-initrd",     spec.initrd,
      "-append",     append,
      "-drive",      "file=" + OptEscape(paths.overlay) + ",if=none,id=sys,format=qcow2",
      "-device",     "virtio-blk-pci,drive=sys",
  };
  // Further disks right after the system disk, so that they get the next PCI slots and the guest
  // names them /dev/vdb, /dev/vdc... in this order: the USB media first, then the extra disks.
  auto add_disk = [&](const std::string& id, const DiskImage& disk) {
    args.insert(args.end(), {"-drive",
                             "file=" + OptEscape(disk.path) + ",if=none,id=" + id +
                                 ",format=" + disk.format + (disk.read_only ? ",readonly=on" : ""),
                             "-device", "virtio-blk-pci,drive=" + id});
  };
  // A TPM unseals its key only for the boot path it was sealed to: the normal boot from the disk.
  // As a 0600 file, not a -append word (/proc/PID/cmdline is readable by every local user).
  if (boot.target == BootTarget::kDisk && !spec.tpm_secret.empty())
    args.insert(args.end(), {"-fw_cfg", "name=" + std::string(kTpmFwCfgName) +
                                            ",file=" + OptEscape(paths.tpm_secret)});
  if (boot.target == BootTarget::kUsb && !boot.media.path.empty()) {
    DiskImage media = boot.media;
    media.read_only = true;
    add_disk("usb", media);
  }
  for (size_t i = 0; i < spec.extra_disks.size(); ++i) {
    add_disk("disk" + std::to_string(i + 1), spec.extra_disks[i]);
  }
  args.insert(
      args.end(),
      {
          "-device", "pvpanic-pci", "-action", "panic=none,reboot=shutdown", "-chardev",
          "socket,id=con0,path=" + OptEscape(paths.console_socket) +
              ",server=on,wait=off,logfile=" + OptEscape(paths.serial_log) + ",logappend=on",
          "-serial", "chardev:con0", "-chardev",
          "socket,id=qmp0,path=" + OptEscape(paths.qmp_socket) + ",server=on,wait=off", "-mon",
          "chardev=qmp0,mode=control",
          "-S",  // vCPUs wait for our "cont", after the console reader is connected
      });
  if (accel == "kvm") {
    args.insert(args.end(), {"-cpu", "host"});
  }
  for (std::string& word : GuestClockArgs(clock)) args.push_back(std::move(word));
  // qboot boots straight into the kernel: no BIOS banner on the console and one RESET per crash
  // (SeaBIOS adds two more). Debian ships it in qemu-system-data.
  static const char* kQboot = "/usr/share/qemu/qboot.rom";
  if (access(kQboot, R_OK) == 0) args.insert(args.end(), {"-bios", kQboot});
  if (spec.network.online) {
    // The guest reaches exactly one thing: 10.0.2.100:80, relayed to the content server's port
    // (ValidateSpec checked the link, so this cannot fail here).
    Result<std::string> netdev = GuestfwdNetdev(relay, spec.network);
    args.insert(args.end(), {"-netdev", netdev.ok() ? *netdev : "user,id=n0,restrict=on", "-device",
                             "virtio-net-pci,netdev=n0,romfile="});  // no iPXE ROM
  }
  return args;
}

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

Result<std::unique_ptr<Backend>> MakeQemuBackend(QemuOptions options) {
  ASSIGN_OR_RETURN(std::string qemu, FindProgram(options.qemu, ""));
  ASSIGN_OR_RETURN(std::string qemu_img, FindProgram(options.qemu_img, ""));
  std::string relay;
  if (!options.relay.empty()) {
    ASSIGN_OR_RETURN(relay, FindProgram(options.relay, "the content relay"));
    for (char c : relay) {
      if (!IsIdChar(c, true) && c != '/' && c != '+') {
        return Status::InvalidArgument("relay path '" + relay +
                                       "' may only hold letters, digits and / . _ - +");
      }
    }
  }
  RETURN_IF_ERROR(CheckIdentifier("run id", options.run_id));  // it names the run folder
  ASSIGN_OR_RETURN(std::string accel, ResolveAccel(qemu, options.accel));
  if (options.runtime_root.empty()) options.runtime_root = DefaultRuntimeRoot();
  ASSIGN_OR_RETURN(std::string root, PrepareRuntimeRoot(options.runtime_root));
  std::string run_dir = root + "/" + options.run_id;
  if (Status made = MakeOwnedDir(run_dir, ThisProcessOwns(options.run_id)); !made.ok()) {
    if (made.code() == ErrorCode::kFailedPrecondition) {
      return Status::FailedPrecondition("run folder " + run_dir +
                                        " exists already (run id reused? try `chaoslab gc`)");
    }
    return made.WithContext("create run folder");
  }
  return std::unique_ptr<Backend>(
      new QemuBackend(std::move(options), run_dir, qemu, qemu_img, relay, accel));
}

}  // namespace chaoslab::vm
