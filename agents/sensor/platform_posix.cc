// The sensor's platform layer on Linux (platform.h): the winsim guest and the host tests.
//
// Boot time: under QEMU TCG every piece of code a guest runs for the first time is translated
// first, and csagent starts cold on every boot. This file therefore does its I/O with plain POSIX
// calls: no iostreams (their first use builds the whole C++ locale), no std::filesystem, no stdio.
// In the guest that halved the time from exec to `@@csagent loaded` (images/kernel/README.md).
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "agents/sensor/agent.h"
#include "agents/sensor/platform.h"

namespace chaoslab::content::platform {
namespace {

using Clock = std::chrono::steady_clock;

void WriteAll(int fd, const char* text, size_t n) {
  while (n > 0) {
    const ssize_t w = write(fd, text, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    text += w;
    n -= static_cast<size_t>(w);
  }
}

std::mutex g_console_mu;

// mkdir -p.
Status MakeDirectories(const std::string& dir) {
  for (size_t at = 1; at <= dir.size(); ++at) {
    if (at != dir.size() && dir[at] != '/') continue;
    const std::string prefix = dir.substr(0, at);
    if (mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) {
      return Status::FromErrno("mkdir " + prefix, errno);
    }
  }
  return Status::Ok();
}

Status FsyncPath(const std::string& path, int flags) {
  const int fd = open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno("open " + path, errno);
  const int rc = fsync(fd);
  const int err = errno;
  close(fd);
  // Some file systems refuse fsync on directories; the file itself is already durable then.
  if (rc != 0 && err != EINVAL) return Status::FromErrno("fsync " + path, err);
  return Status::Ok();
}

// Closes the socket on every path.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// Waits for `events` on fd until the deadline. Timeout when it passes.
Status WaitFor(int fd, short events, Clock::time_point deadline, std::string_view what) {
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return Status::Timeout(std::string(what) + ": deadline passed");
    pollfd p{fd, events, 0};
    const int n = poll(&p, 1, static_cast<int>(left));
    if (n > 0) return Status::Ok();
    if (n < 0 && errno != EINTR) return Status::FromErrno(what, errno);
  }
}

// ---- The bugcheck: async-signal-safe only (write, open, alarm, tcdrain, _exit). ----
volatile sig_atomic_t g_panic_allowed = 0;

void WriteText(const char* text) { WriteAll(STDOUT_FILENO, text, strlen(text)); }

void OnAlarm(int) {}

// Waits until the console has sent everything written to it, at most ~1 s. The kernel's panic
// output goes straight to the UART; a line still queued in the tty when the panic starts was seen
// garbled or cut on the serial console ("PAGE_FAULT_IIN_NONPAGED_AREA"). A pipe (tests) is not a
// terminal: tcdrain fails at once there.
void DrainConsole() {
  struct sigaction wake {};
  wake.sa_handler = OnAlarm;  // no SA_RESTART: the alarm interrupts a stuck tcdrain
  sigemptyset(&wake.sa_mask);
  sigaction(SIGALRM, &wake, nullptr);
  alarm(1);
  tcdrain(STDOUT_FILENO);  // EINTR when the alarm fired: crash anyway
  alarm(0);
}

void OnFault(int, siginfo_t* info, void*) {
  WriteText(
      "\n"
      ":( Your device ran into a problem and needs to restart.\n"
      "We're just collecting some error info, and then we'll restart for you.\n"
      "\n"
      "Stop code: PAGE_FAULT_IN_NONPAGED_AREA\n"
      "What failed: csagent.sys\n");
  char address[] = "Faulting address: 0x0000000000000000\n";
  uintptr_t a = reinterpret_cast<uintptr_t>(info ? info->si_addr : nullptr);
  for (int i = 0; i < 16; ++i) address[18 + 2 + 15 - i] = "0123456789abcdef"[(a >> (4 * i)) & 0xf];
  WriteText(address);
  WriteText("@@bugcheck code=0x00000050 name=PAGE_FAULT_IN_NONPAGED_AREA module=csagent.sys\n");
  DrainConsole();  // before the kernel's panic text, and before _exit (tests: a pty)
  if (g_panic_allowed) {
    const int fd = open("/proc/sysrq-trigger", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) WriteAll(fd, "c", 1);  // the guest kernel panics here
  }
  _exit(kAgentExitBugcheck);
}

alignas(16) char g_alt_stack[64 * 1024];

// Panicking the kernel is only ever done inside a winsim guest: a developer running csagent on
// their own machine must not lose it. The lab always puts winsim.* words on the guest cmdline.
bool InsideWinsimGuest() {
  auto cmdline = ReadWholeFile("/proc/cmdline");
  return cmdline.ok() && cmdline->find("winsim.") != std::string::npos;
}

}  // namespace

size_t PageSize() { return static_cast<size_t>(sysconf(_SC_PAGESIZE)); }

Result<GuardedPage> MapGuardedPage() {
  const size_t page = PageSize();
  void* mapping =
      mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapping == MAP_FAILED) return Status::FromErrno("mmap input array", errno);
  char* guard = static_cast<char*>(mapping) + page;
  if (mprotect(guard, page, PROT_NONE) != 0) {
    const int err = errno;
    munmap(mapping, 2 * page);
    return Status::FromErrno("mprotect guard page", err);
  }
  return GuardedPage{mapping, 2 * page, guard, page};
}

void UnmapGuardedPage(const GuardedPage& page) {
  if (page.mapping != nullptr) munmap(page.mapping, page.mapping_size);
}

Result<std::string> ReadWholeFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno("cannot open " + path, errno);
  std::string bytes;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      close(fd);
      return Status::FromErrno("cannot read " + path, err);
    }
    if (n == 0) break;
    bytes.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return bytes;
}

bool IsDirectory(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::vector<std::string> ListDirectory(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return names;
  while (const dirent* entry = readdir(d)) {
    const std::string_view name = entry->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  closedir(d);
  return names;
}

Status WriteFileDurably(const std::string& dir, const std::string& name, std::string_view bytes) {
  RETURN_IF_ERROR(MakeDirectories(dir));
  const std::string tmp = dir + "/" + name + ".tmp";
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno("create " + tmp, errno);
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      close(fd);
      return Status::FromErrno("write " + tmp, err);
    }
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) {
    const int err = errno;
    close(fd);
    return Status::FromErrno("fsync " + tmp, err);
  }
  close(fd);
  if (rename(tmp.c_str(), (dir + "/" + name).c_str()) != 0) {
    return Status::FromErrno("rename to " + dir + "/" + name, errno);
  }
  return FsyncPath(dir, O_RDONLY | O_DIRECTORY);
}

void RemoveFile(const std::string& path) { unlink(path.c_str()); }

Status RenameFile(const std::string& from, const std::string& to) {
  if (rename(from.c_str(), to.c_str()) != 0) {
    return Status::FromErrno("rename " + from + " to " + to, errno);
  }
  const size_t slash = to.rfind('/');
  return FsyncPath(slash == std::string::npos ? "." : to.substr(0, slash), O_RDONLY | O_DIRECTORY);
}

void SyncVolume(const std::string& dir) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || syncfs(fd) != 0) sync();
  if (fd >= 0) close(fd);
}

Status TouchFile(const std::string& path) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno("create " + path, errno);
  close(fd);
  return Status::Ok();
}

void WriteLine(std::string line) {
  line.push_back('\n');
  std::lock_guard lock(g_console_mu);
  WriteAll(STDOUT_FILENO, line.data(), line.size());
}

void WriteOut(std::string_view text) { WriteAll(STDOUT_FILENO, text.data(), text.size()); }
void WriteErr(std::string_view text) { WriteAll(STDERR_FILENO, text.data(), text.size()); }

std::string_view SystemName() { return "linux"; }

std::string UptimeField() {
  auto text = ReadWholeFile("/proc/uptime");
  if (!text.ok()) return "";
  const std::string seconds = text->substr(0, text->find(' '));
  if (seconds.empty() || seconds.find_first_not_of("0123456789.") != std::string::npos) return "";
  return " uptime=" + seconds;
}

Result<std::string> TcpExchange(const std::string& ip, uint16_t port, std::string_view request,
                                Clock::time_point deadline, const std::string& where,
                                size_t max_bytes) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (inet_pton(AF_INET, ip.c_str(), &addr.sin_addr) != 1) {
    return Status::InvalidArgument(where + ": not an IPv4 address");
  }
  Fd sock(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (sock.get() < 0) return Status::FromErrno(where + ": socket", errno);
  if (connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno != EINPROGRESS) return Status::Unavailable(where + ": connect: " + strerror(errno));
    RETURN_IF_ERROR(WaitFor(sock.get(), POLLOUT, deadline, where + ": connect"));
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(sock.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return Status::Unavailable(where + ": connect: " + strerror(err));
  }
  for (size_t sent = 0; sent < request.size();) {
    RETURN_IF_ERROR(WaitFor(sock.get(), POLLOUT, deadline, where + ": send"));
    const ssize_t n = send(sock.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return Status::Unavailable(where + ": send: " + strerror(errno));
    }
    if (n > 0) sent += static_cast<size_t>(n);
  }
  std::string raw;
  char buf[16384];
  for (;;) {
    RETURN_IF_ERROR(WaitFor(sock.get(), POLLIN, deadline, where + ": read"));
    const ssize_t n = recv(sock.get(), buf, sizeof buf, 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return Status::Unavailable(where + ": read: " + strerror(errno));
    }
    raw.append(buf, static_cast<size_t>(n));
    if (raw.size() > max_bytes) {
      return Status::Corruption(where + ": response larger than " + std::to_string(max_bytes) +
                                " bytes");
    }
  }
  return raw;
}

void InstallBugcheckHandler(bool crash_system) {
  g_panic_allowed = crash_system && InsideWinsimGuest() ? 1 : 0;
  stack_t stack{};
  stack.ss_sp = g_alt_stack;
  stack.ss_size = sizeof g_alt_stack;
  sigaltstack(&stack, nullptr);
  struct sigaction action {};
  action.sa_sigaction = OnFault;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&action.sa_mask);
  sigaction(SIGSEGV, &action, nullptr);
  sigaction(SIGBUS, &action, nullptr);
}

void DisarmSystemCrash() { g_panic_allowed = 0; }

}  // namespace chaoslab::content::platform
