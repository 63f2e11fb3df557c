#include "agents/sensor/agent.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "agents/sensor/channel_file.h"
#include "agents/sensor/cloud_client.h"
#include "agents/sensor/content_interpreter.h"
#include "agents/sensor/sensor_version.h"

// Boot time: under QEMU TCG every piece of code a guest runs for the first time is translated
// first, and csagent starts cold on every boot. This file therefore does its I/O with plain POSIX
// calls: no iostreams (their first use builds the whole C++ locale), no std::filesystem, no stdio.
// In the guest that halved the time from exec to `@@csagent loaded` (images/kernel/README.md).

namespace chaoslab::content {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kCloudTimeout{2000};

void WriteAll(int fd, const char* text, size_t n) {
  while (n > 0) {
    const ssize_t w = write(fd, text, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    text += w;
    n -= static_cast<size_t>(w);
  }
}

// ---- Console: whole lines, one writer at a time (the serial console is shared by threads). ----
std::mutex g_console_mu;
void Say(std::string line) {
  line.push_back('\n');
  std::lock_guard lock(g_console_mu);
  WriteAll(STDOUT_FILENO, line.data(), line.size());
}

// ---- Files ----
// The whole file (also /proc files, whose size stat() reports as 0).
Result<std::string> ReadFile(const std::string& path) {
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

// " uptime=<seconds>" from /proc/uptime (the guest's clock since its kernel started, as the lab
// reads it from console lines), or "" when it cannot be read.
std::string UptimeField() {
  auto text = ReadFile("/proc/uptime");
  if (!text.ok()) return "";
  const std::string seconds = text->substr(0, text->find(' '));
  if (seconds.empty() || seconds.find_first_not_of("0123456789.") != std::string::npos) return "";
  return " uptime=" + seconds;
}

bool IsDirectory(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

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
  auto cmdline = ReadFile("/proc/cmdline");
  return cmdline.ok() && cmdline->find("winsim.") != std::string::npos;
}

void InstallBugcheckHandler(bool panic_allowed) {
  g_panic_allowed = panic_allowed ? 1 : 0;
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

// Writes `bytes` to dir/name via a temporary file and rename, then fsyncs file and folder.
Status WriteDurably(const std::string& dir, const std::string& name, std::string_view bytes) {
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

// Flushes every pending write of the file system holding `dir` (data, FAT and directories).
void SyncVolume(const std::string& dir) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || syncfs(fd) != 0) sync();
  if (fd >= 0) close(fd);
}

// The channel-291 files in `dir` (full paths), oldest first.
std::vector<std::pair<uint32_t, std::string>> ListChannelFiles(const std::string& dir) {
  std::vector<std::pair<uint32_t, std::string>> files;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return files;
  while (const dirent* entry = readdir(d)) {
    auto id = ParseChannelFileName(entry->d_name);
    if (id.ok() && id->channel == kChannel291) {
      files.emplace_back(id->content_version, dir + "/" + entry->d_name);
    }
  }
  closedir(d);
  std::sort(files.begin(), files.end());
  return files;
}

// ---- The sensor ----

// Sensor state shared by the boot path, the cloud thread and the notification loop.
// Thread-safe: the active content is swapped under a mutex.
class Sensor {
 public:
  Sensor(const AgentOptions& options, const SensorVersion& version, IpcNotification notification,
         Clock::time_point started)
      : options_(options),
        started_(started),
        version_(version),
        notification_(std::move(notification)),
        content_dir_(options.root + "/Windows/System32/drivers/CrowdStrike") {}

  // Real milliseconds since the sensor started.
  long long ElapsedMs() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started_).count();
  }

  void LoadCached() {
    if (!IsDirectory(content_dir_)) {
      Say("csagent: no content folder " + content_dir_ + "; running without content");
      return;
    }
    for (const auto& [version, path] : ListChannelFiles(content_dir_)) {
      std::lock_guard lock(mu_);
      newest_seen_ = std::max(newest_seen_, version);
      Consider(version, ReadFile(path));
    }
  }

  // One round with the content server: manifest, then newer channel-291 content if any.
  void PollCloud(const Endpoint& cloud) {
    auto manifest = HttpGet(cloud, "/v1/manifest?host=" + options_.host, kCloudTimeout);
    if (!manifest.ok()) {
      cloud_ok_ = false;
      Say("csagent: cloud unreachable: " + manifest.status().ToString());
      return;
    }
    cloud_ok_ = true;
    if (manifest->status != 200) {
      Say("csagent: manifest answered HTTP " + std::to_string(manifest->status));
      return;
    }
    auto entries = ParseManifest(manifest->body);
    if (!entries.ok()) {
      Say("csagent: ignoring manifest: " + entries.status().ToString());
      return;
    }
    std::optional<ManifestEntry> newest;
    for (ManifestEntry& e : *entries) {
      if (e.channel == kChannel291 && (!newest || e.content_version > newest->content_version)) {
        newest = std::move(e);
      }
    }
    {
      std::lock_guard lock(mu_);
      if (!newest || newest->content_version <= newest_seen_) return;
    }
    auto content = HttpGet(cloud, "/v1/content/" + newest->file_name + "?host=" + options_.host,
                           kCloudTimeout);
    if (!content.ok() || content->status != 200) {
      cloud_ok_ = content.ok();
      Say("csagent: cannot fetch " + newest->file_name + ": " +
          (content.ok() ? "HTTP " + std::to_string(content->status) : content.status().ToString()));
      return;
    }
    Status stored = WriteDurably(content_dir_, newest->file_name, content->body);
    if (!stored.ok()) {
      Say("csagent: cannot store " + newest->file_name + ": " + stored.ToString());
      return;
    }
    std::lock_guard lock(mu_);
    newest_seen_ = std::max(newest_seen_, newest->content_version);
    for (const auto& [version, path] : ListChannelFiles(content_dir_)) {
      if (version < newest->content_version) unlink(path.c_str());
    }
    // FAT does not make a rename or a delete durable on a directory fsync (seen in the guest: the
    // renamed file came back empty after the bugcheck), so flush the whole volume before loading.
    SyncVolume(content_dir_);
    // ms=: real milliseconds since the sensor started, so the lab can show how close the race was.
    Say("@@csagent fetched channel=291 version=" + std::to_string(newest->content_version) +
        " ms=" + std::to_string(ElapsedMs()));
    Consider(newest->content_version, std::move(content->body));
  }

  // Interprets the active content for one IPC notification. With the 7.11 interpreter and a
  // criterion on input 21 this does not return: the fault handler bugchecks.
  void Notify() {
    std::shared_ptr<const ChannelFile> content;
    {
      std::lock_guard lock(mu_);
      content = active_;
    }
    if (!content) return;
    auto outcome = Interpret(version_, *content, notification_);
    if (outcome.ok()) return;
    Say("csagent: interpreter refused content: " + outcome.status().ToString());
    Say(RejectedLine(content->content_version, "input-out-of-bounds"));
    std::lock_guard lock(mu_);
    if (active_ == content) active_.reset();
  }

  uint32_t active_version() {
    std::lock_guard lock(mu_);
    return active_ ? active_->content_version : 0;
  }
  bool cloud_ok() const { return cloud_ok_; }

 private:
  std::string RejectedLine(uint32_t version, std::string_view reason) const {
    return "@@csagent rejected sensor=" + std::string(version_.name) +
           " channel=291 version=" + std::to_string(version) + " reason=" + std::string(reason);
  }

  // Decodes and checks one file of channel 291; accepted content newer than the active one
  // becomes active. Caller holds mu_.
  void Consider(uint32_t version, Result<std::string> bytes) {
    const std::string name = ChannelFileName(version);
    if (!bytes.ok()) {
      Say("csagent: " + name + ": " + bytes.status().ToString());
      Say(RejectedLine(version, "unreadable-file"));
      return;
    }
    auto file = DecodeChannelFile(*bytes);
    if (!file.ok()) {
      Say("csagent: " + name + ": " + file.status().ToString());
      Say(RejectedLine(version, "corrupt-file"));
      return;
    }
    std::optional<Rejection> rejection;
    if (file->content_version != version) {
      rejection = Rejection{"version-mismatch",
                            "the header says version " + std::to_string(file->content_version)};
    } else {
      rejection = CheckContent(version_, *file);
    }
    if (rejection) {
      Say("csagent: " + name + ": " + rejection->detail);
      Say(RejectedLine(version, rejection->reason));
      return;
    }
    Say("@@csagent loaded sensor=" + std::string(version_.name) +
        " channel=291 version=" + std::to_string(version) + UptimeField());
    if (!active_ || active_->content_version < version) {
      active_ = std::make_shared<const ChannelFile>(std::move(file).value());
    }
  }

  const AgentOptions& options_;
  const Clock::time_point started_;
  const SensorVersion& version_;
  const IpcNotification notification_;
  const std::string content_dir_;
  std::atomic<bool> cloud_ok_{false};
  std::mutex mu_;
  std::shared_ptr<const ChannelFile> active_;  // guarded by mu_
  uint32_t newest_seen_ = 0;                   // guarded by mu_: newest version on disk
};

// sensor.ini: "key=value" lines; only version= matters.
Result<const SensorVersion*> ReadSensorIni(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  for (size_t begin = 0; begin < text.size();) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + begin, end - begin);
    begin = end + 1;
    while (!line.empty() && isspace(static_cast<unsigned char>(line.back()))) line.remove_suffix(1);
    if (!line.starts_with("version=")) continue;
    const std::string name(line.substr(8));
    if (const SensorVersion* v = FindSensorVersion(name)) return v;
    return Status::InvalidArgument(path + ": unknown sensor version '" + name + "'");
  }
  return Status::InvalidArgument(path + ": no version= line");
}

bool ParseInt(const std::string& text, int min, int* out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size() && *out >= min;
}

}  // namespace

int AgentMain(const std::vector<std::string>& args) {
  if (args.size() == 1 && (args[0] == "--help" || args[0] == "-h")) {
    const std::string usage = AgentUsage();
    WriteAll(STDOUT_FILENO, usage.data(), usage.size());
    return kAgentExitOk;
  }
  auto options = ParseAgentArgs(args);
  if (!options.ok()) {
    const std::string text = "csagent: " + options.status().message() + "\n" + AgentUsage();
    WriteAll(STDERR_FILENO, text.data(), text.size());
    return kAgentExitUsage;
  }
  return RunAgent(*options);
}

std::string AgentUsage() {
  return "usage: csagent --root DIR [--host ID] [--cloud IP:PORT] [--poll-ms N] [--ipc-ms N]\n"
         "               [--ready-file PATH] [--no-panic] [--heartbeats N]\n";
}

Result<AgentOptions> ParseAgentArgs(const std::vector<std::string>& args) {
  AgentOptions o;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i];
    std::optional<std::string> value;
    if (const size_t eq = flag.find('='); flag.starts_with("--") && eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag.resize(eq);
    }
    if (flag == "--no-panic" && !value) {
      o.no_panic = true;
      continue;
    }
    if (!value) {
      if (i + 1 >= args.size()) return Status::InvalidArgument(flag + " needs a value");
      value = args[++i];
    }
    auto bad = [&](std::string_view what) {
      return Status::InvalidArgument(flag + " " + *value + ": " + std::string(what));
    };
    if (flag == "--root") {
      o.root = *value;
    } else if (flag == "--host") {
      if (!IsValidHostId(*value)) return bad("expected letters, digits, '-' or '_'");
      o.host = *value;
    } else if (flag == "--cloud") {
      if (!ParseEndpoint(*value).ok()) return bad("expected an IPv4 endpoint like 10.0.2.100:80");
      o.cloud = *value;
    } else if (flag == "--poll-ms") {
      if (!ParseInt(*value, 1, &o.poll_ms)) return bad("expected a positive number");
    } else if (flag == "--ipc-ms") {
      if (!ParseInt(*value, 0, &o.ipc_ms)) return bad("expected a number >= 0");
    } else if (flag == "--heartbeats") {
      if (!ParseInt(*value, 0, &o.heartbeats)) return bad("expected a number >= 0");
    } else if (flag == "--ready-file") {
      o.ready_file = *value;
    } else {
      return Status::InvalidArgument("unknown flag " + flag);
    }
  }
  if (o.root.empty()) return Status::InvalidArgument("--root is required");
  return o;
}

int RunAgent(const AgentOptions& options) {
  const auto start = Clock::now();
  InstallBugcheckHandler(!options.no_panic && InsideWinsimGuest());

  const std::string ini = options.root + "/ProgramData/CrowdStrike/sensor.ini";
  auto version = ReadSensorIni(ini);
  if (!version.ok()) {
    Say("csagent: " + version.status().ToString());
    Say(std::string("@@csagent rejected sensor=unknown channel=291 version=0 reason=") +
        (version.status().code() == ErrorCode::kIoError ? "sensor-ini-unreadable"
                                                        : "sensor-ini-invalid"));
    return kAgentExitConfig;
  }
  auto notification = IpcNotification::Sample();
  if (!notification.ok()) {
    Say("csagent: " + notification.status().ToString());
    return kAgentExitInternal;
  }
  Sensor sensor(options, **version, std::move(notification).value(), start);
  Say("csagent: sensor " + std::string((*version)->name) + " starting, host " + options.host);
  sensor.LoadCached();

  // The boot race: the cloud fetch runs while the first IPC notification waits for --ipc-ms.
  std::optional<Endpoint> cloud;
  if (!options.cloud.empty()) cloud = ParseEndpoint(options.cloud).value();
  std::thread fetcher;
  if (cloud) fetcher = std::thread([&] { sensor.PollCloud(*cloud); });
  std::this_thread::sleep_until(start + std::chrono::milliseconds(options.ipc_ms));
  sensor.Notify();
  Say("@@csagent ipc-notification ms=" + std::to_string(sensor.ElapsedMs()));
  if (!options.ready_file.empty()) {
    const int fd = open(options.ready_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
      close(fd);
    } else {
      Say("csagent: cannot create ready file " + options.ready_file + ": " + strerror(errno));
    }
  }
  if (fetcher.joinable()) fetcher.join();

  for (int beat = 0; options.heartbeats == 0 || beat < options.heartbeats; ++beat) {
    std::this_thread::sleep_for(std::chrono::milliseconds(options.poll_ms));
    if (cloud) sensor.PollCloud(*cloud);
    sensor.Notify();
    Say("@@csagent heartbeat channel=291 version=" + std::to_string(sensor.active_version()) +
        " cloud=" + (cloud && sensor.cloud_ok() ? "ok" : "unreachable"));
  }
  return kAgentExitOk;
}

}  // namespace chaoslab::content
