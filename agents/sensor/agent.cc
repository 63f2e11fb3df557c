#include "agents/sensor/agent.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "agents/sensor/channel_file.h"
#include "agents/sensor/cloud_client.h"
#include "agents/sensor/content_interpreter.h"
#include "agents/sensor/platform.h"
#include "agents/sensor/sensor_version.h"

// The same source on Linux and Windows: everything system-specific goes through platform.h.

namespace chaoslab::content {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kCloudTimeout{2000};
// While the boot fetch finds no network (a Wi-Fi link still associating, a VPN not up), it tries
// again this often until the first IPC notification. ASSUMPTION (range 10-1000 ms): the real
// sensor's retry interval is not public; a short one lets the link's own delay decide the race.
constexpr std::chrono::milliseconds kBootFetchRetry{50};
// A quarantined channel file keeps its name with this suffix, which ParseChannelFileName refuses.
constexpr char kQuarantinedSuffix[] = ".quarantined";

void Say(std::string line) { platform::WriteLine(std::move(line)); }
using platform::IsDirectory;

// The channel-291 files in `dir` (full paths), oldest first.
std::vector<std::pair<uint32_t, std::string>> ListChannelFiles(const std::string& dir) {
  std::vector<std::pair<uint32_t, std::string>> files;
  for (const std::string& name : platform::ListDirectory(dir)) {
    auto id = ParseChannelFileName(name);
    if (id.ok() && id->channel == kChannel291) {
      files.emplace_back(id->content_version, dir + "/" + name);
    }
  }
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
      Consider(version, platform::ReadWholeFile(path));
    }
  }

  // One round with the content server: manifest, then newer channel-291 content if any. False
  // when the cloud could not be reached at all (said on the console unless `quiet`).
  bool PollCloud(const Endpoint& cloud, bool quiet = false) {
    auto manifest = HttpGet(cloud, "/v1/manifest?host=" + options_.host, kCloudTimeout);
    if (!manifest.ok()) {
      cloud_ok_ = false;
      if (!quiet) Say("csagent: cloud unreachable: " + manifest.status().ToString());
      return false;
    }
    cloud_ok_ = true;
    if (manifest->status != 200) {
      Say("csagent: manifest answered HTTP " + std::to_string(manifest->status));
      return true;
    }
    auto entries = ParseManifest(manifest->body);
    if (!entries.ok()) {
      Say("csagent: ignoring manifest: " + entries.status().ToString());
      return true;
    }
    // The cloud's remediation first: it needs no download, so it is the quicker way out.
    for (const ManifestEntry& e : *entries) {
      if (e.quarantine && e.channel == kChannel291) Quarantine(e);
    }
    std::optional<ManifestEntry> newest;
    for (ManifestEntry& e : *entries) {
      if (!e.quarantine && e.channel == kChannel291 &&
          (!newest || e.content_version > newest->content_version)) {
        newest = std::move(e);
      }
    }
    {
      std::lock_guard lock(mu_);
      if (!newest || newest->content_version <= newest_seen_) return true;
    }
    auto content = HttpGet(cloud, "/v1/content/" + newest->file_name + "?host=" + options_.host,
                           kCloudTimeout);
    if (!content.ok() || content->status != 200) {
      cloud_ok_ = content.ok();
      Say("csagent: cannot fetch " + newest->file_name + ": " +
          (content.ok() ? "HTTP " + std::to_string(content->status) : content.status().ToString()));
      return true;
    }
    Status stored = platform::WriteFileDurably(content_dir_, newest->file_name, content->body);
    if (!stored.ok()) {
      Say("csagent: cannot store " + newest->file_name + ": " + stored.ToString());
      return true;
    }
    std::lock_guard lock(mu_);
    newest_seen_ = std::max(newest_seen_, newest->content_version);
    for (const auto& [version, path] : ListChannelFiles(content_dir_)) {
      if (version < newest->content_version) platform::RemoveFile(path);
    }
    // FAT does not make a rename or a delete durable on a directory fsync (seen in the guest: the
    // renamed file came back empty after the bugcheck), so flush the whole volume before loading.
    platform::SyncVolume(content_dir_);
    // ms=: real milliseconds since the sensor started, so the lab can show how close the race was.
    Say("@@csagent fetched channel=291 version=" + std::to_string(newest->content_version) +
        " ms=" + std::to_string(ElapsedMs()));
    Consider(newest->content_version, std::move(content->body));
    return true;
  }

  // The vendor's cloud remediation: the file leaves the active content (so the next IPC
  // notification does not read it) and is renamed aside in its folder (<name>.quarantined, which
  // the sensor no longer loads). `e.file_name` is a canonical channel file name (ParseManifest),
  // never a path.
  void Quarantine(const ManifestEntry& e) {
    {
      std::lock_guard lock(mu_);
      if (active_ && active_->content_version == e.content_version) active_.reset();
    }
    const std::string path = content_dir_ + "/" + e.file_name;
    const Status moved = platform::RenameFile(path, path + kQuarantinedSuffix);
    if (!moved.ok()) {
      if (moved.code() != ErrorCode::kNotFound) Say("csagent: quarantine: " + moved.ToString());
      return;  // not cached here (or already moved aside on an earlier boot)
    }
    platform::SyncVolume(content_dir_);  // FAT: make the rename durable before the next boot
    Say("@@csagent quarantined channel=291 version=" + std::to_string(e.content_version) +
        " ms=" + std::to_string(ElapsedMs()));
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
        " channel=291 version=" + std::to_string(version) + platform::UptimeField());
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
  ASSIGN_OR_RETURN(std::string text, platform::ReadWholeFile(path));
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
    platform::WriteOut(usage);
    return kAgentExitOk;
  }
  auto options = ParseAgentArgs(args);
  if (!options.ok()) {
    const std::string text = "csagent: " + options.status().message() + "\n" + AgentUsage();
    platform::WriteErr(text);
    return kAgentExitUsage;
  }
  return RunAgent(*options);
}

std::string AgentUsage() {
  return "usage: csagent --root DIR [--host ID] [--cloud IP:PORT] [--poll-ms N] [--ipc-ms N]\n"
         "               [--ready-file PATH] [--no-panic] [--say-ready] [--heartbeats N]\n";
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
    if (flag == "--say-ready" && !value) {
      o.say_ready = true;
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
  platform::InstallBugcheckHandler(!options.no_panic);

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
  std::atomic<bool> notified{false};
  if (cloud) {
    fetcher = std::thread([&] {
      for (int attempt = 0; !sensor.PollCloud(*cloud, attempt > 0) && !notified; ++attempt) {
        std::this_thread::sleep_for(kBootFetchRetry);
      }
    });
  }
  std::this_thread::sleep_until(start + std::chrono::milliseconds(options.ipc_ms));
  notified = true;
  sensor.Notify();
  Say("@@csagent ipc-notification ms=" + std::to_string(sensor.ElapsedMs()));
  if (!options.ready_file.empty()) {
    if (Status s = platform::TouchFile(options.ready_file); !s.ok()) {
      Say("csagent: ready file: " + s.message());
    }
  }
  // The moment winsim's boot manager says "@@winsim ready": the sensor survived its cached
  // content and the first IPC notification. Said even if the ready file could not be written:
  // the line, not the file, is what the lab reads.
  if (options.say_ready) Say("@@winsim ready os=" + std::string(platform::SystemName()));
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
