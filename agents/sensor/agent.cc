#include "agents/sensor/agent.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "agents/sensor/channel_file.h"
#include "agents/sensor/cloud_client.h"
#include "agents/sensor/content_interpreter.h"
#include "agents/sensor/sensor_version.h"

namespace chaoslab::content {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kCloudTimeout{2000};

// ---- Console: whole lines, one writer at a time (the serial console is shared by threads). ----
std::mutex g_console_mu;
void Say(const std::string& line) {
  std::lock_guard lock(g_console_mu);
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

// " uptime=<seconds>" from /proc/uptime (the guest's clock since its kernel started, as the lab
// reads it from console lines), or "" when it cannot be read.
std::string UptimeField() {
  std::ifstream f("/proc/uptime");
  std::string seconds;
  if (!(f >> seconds) || seconds.empty() ||
      seconds.find_first_not_of("0123456789.") != std::string::npos) {
    return "";
  }
  return " uptime=" + seconds;
}

// ---- The bugcheck: async-signal-safe only (write, open, _exit). ----
volatile sig_atomic_t g_panic_allowed = 0;

void WriteAll(int fd, const char* text, size_t n) {
  while (n > 0) {
    const ssize_t w = write(fd, text, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    text += w;
    n -= static_cast<size_t>(w);
  }
}
void WriteText(const char* text) { WriteAll(STDOUT_FILENO, text, strlen(text)); }

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
  std::ifstream in("/proc/cmdline");
  std::string cmdline;
  std::getline(in, cmdline);
  return cmdline.find("winsim.") != std::string::npos;
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

// ---- Files ----
Result<std::string> ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError("cannot open " + path.string() + ": " + strerror(errno));
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (in.bad()) return Status::IoError("cannot read " + path.string());
  return bytes.str();
}

Status FsyncPath(const fs::path& path, int flags) {
  const int fd = open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno("open " + path.string(), errno);
  const int rc = fsync(fd);
  const int err = errno;
  close(fd);
  // Some file systems refuse fsync on directories; the file itself is already durable then.
  if (rc != 0 && err != EINVAL) return Status::FromErrno("fsync " + path.string(), err);
  return Status::Ok();
}

// Writes `bytes` to dir/name via a temporary file and rename, then fsyncs file and folder.
Status WriteDurably(const fs::path& dir, const std::string& name, std::string_view bytes) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  const fs::path tmp = dir / (name + ".tmp");
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno("create " + tmp.string(), errno);
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      close(fd);
      return Status::FromErrno("write " + tmp.string(), err);
    }
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) {
    const int err = errno;
    close(fd);
    return Status::FromErrno("fsync " + tmp.string(), err);
  }
  close(fd);
  if (rename(tmp.c_str(), (dir / name).c_str()) != 0) {
    return Status::FromErrno("rename to " + (dir / name).string(), errno);
  }
  return FsyncPath(dir, O_RDONLY | O_DIRECTORY);
}

// Flushes every pending write of the file system holding `dir` (data, FAT and directories).
void SyncVolume(const fs::path& dir) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || syncfs(fd) != 0) sync();
  if (fd >= 0) close(fd);
}

// The channel-291 files in `dir`, oldest first.
std::vector<std::pair<uint32_t, fs::path>> ListChannelFiles(const fs::path& dir) {
  std::vector<std::pair<uint32_t, fs::path>> files;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    auto id = ParseChannelFileName(it->path().filename().string());
    if (id.ok() && id->channel == kChannel291) files.emplace_back(id->content_version, it->path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// ---- The sensor ----

// Sensor state shared by the boot path, the cloud thread and the notification loop.
// Thread-safe: the active content is swapped under a mutex.
class Sensor {
 public:
  Sensor(const AgentOptions& options, const SensorVersion& version, IpcNotification notification)
      : options_(options),
        version_(version),
        notification_(std::move(notification)),
        content_dir_(fs::path(options.root) / "Windows/System32/drivers/CrowdStrike") {}

  void LoadCached() {
    std::error_code ec;
    if (!fs::is_directory(content_dir_, ec)) {
      Say("csagent: no content folder " + content_dir_.string() + "; running without content");
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
      std::error_code ec;
      if (version < newest->content_version) fs::remove(path, ec);
    }
    // FAT does not make a rename or a delete durable on a directory fsync (seen in the guest: the
    // renamed file came back empty after the bugcheck), so flush the whole volume before loading.
    SyncVolume(content_dir_);
    Say("@@csagent fetched channel=291 version=" + std::to_string(newest->content_version));
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
  const SensorVersion& version_;
  const IpcNotification notification_;
  const fs::path content_dir_;
  std::atomic<bool> cloud_ok_{false};
  std::mutex mu_;
  std::shared_ptr<const ChannelFile> active_;  // guarded by mu_
  uint32_t newest_seen_ = 0;                   // guarded by mu_: newest version on disk
};

// sensor.ini: "key=value" lines; only version= matters.
Result<const SensorVersion*> ReadSensorIni(const fs::path& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    while (!line.empty() && isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
    if (!line.starts_with("version=")) continue;
    const std::string name = line.substr(8);
    if (const SensorVersion* v = FindSensorVersion(name)) return v;
    return Status::InvalidArgument(path.string() + ": unknown sensor version '" + name + "'");
  }
  return Status::InvalidArgument(path.string() + ": no version= line");
}

bool ParseInt(const std::string& text, int min, int* out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size() && *out >= min;
}

}  // namespace

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
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  InstallBugcheckHandler(!options.no_panic && InsideWinsimGuest());

  const fs::path ini = fs::path(options.root) / "ProgramData/CrowdStrike/sensor.ini";
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
  Sensor sensor(options, **version, std::move(notification).value());
  Say("csagent: sensor " + std::string((*version)->name) + " starting, host " + options.host);
  sensor.LoadCached();

  // The boot race: the cloud fetch runs while the first IPC notification waits for --ipc-ms.
  std::optional<Endpoint> cloud;
  if (!options.cloud.empty()) cloud = ParseEndpoint(options.cloud).value();
  std::thread fetcher;
  if (cloud) fetcher = std::thread([&] { sensor.PollCloud(*cloud); });
  std::this_thread::sleep_until(start + std::chrono::milliseconds(options.ipc_ms));
  sensor.Notify();
  Say("@@csagent ipc-notification");
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
