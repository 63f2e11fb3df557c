#include "lab/cli/run_command.h"

#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "agents/sensor/channel_file.h"
#include "lab/common/subprocess.h"
#include "lab/config/config_loader.h"
#include "lab/content_server/content_server.h"
#include "lab/engine/engine.h"
#include "lab/journal/journal.h"
#include "lab/report/report.h"
#include "lab/vm/qemu_backend.h"

namespace chaoslab {
namespace {

namespace fs = std::filesystem;

// Content versions of channel 291 in a run: what hosts have cached, the faulty update, the revert.
constexpr uint32_t kCachedVersion = 1, kFaultVersion = 2, kRevertVersion = 3;
constexpr char kExitNotBuilt = 3;  // build.sh --check: the image is not built
// Real milliseconds from the sensor driver loading its cached content to the first IPC notification
// that interprets it. At boot the sensor also fetches the newest content from the cloud; whichever
// comes first decides the boot (the race of July 2024). Measured here under TCG on the loopback
// link: the fetch completes ~0.3 s after the driver loads, so 450 ms makes the race close, as it
// was.
constexpr int kIpcNotificationMs = 450;

std::string NewRunId() {
  std::random_device rd;
  return fmt::format("{:08x}", rd());
}

Result<std::string> WriteFile(const fs::path& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!f) return Status::IoError("cannot write " + path.string());
  return path.string();
}

ContentVersion MakeContent(content::ChannelFileKind kind, uint32_t version) {
  ContentVersion c;
  c.channel = 291;
  c.version = version;
  c.file_name = content::ChannelFileName(version);
  c.bytes = content::MakeChannelFile(kind, version);
  return c;
}

content::ChannelFileKind FaultFileKind(config::FaultKind k) {
  using F = config::FaultKind;
  using C = content::ChannelFileKind;
  switch (k) {
    case F::kChannel291:
      return C::kChannel291;
    case F::kTruncated:
      return C::kTruncated;
    case F::kZeroed:
      return C::kZeroed;
    case F::kBadMagic:
      return C::kBadMagic;
    case F::kGood:
      return C::kGood;
  }
  return C::kChannel291;
}

std::vector<std::string> ImageScriptArgs(const LabPaths& paths, const config::ImageConfig& image) {
  return {paths.images_dir + "/" + image.name + "/build.sh", "--csagent",
          paths.bin_dir + "/csagent", "--kernel", image.kernel};
}

Result<GuestImage> ImageFromFolder(const std::string& output) {
  std::string dir = output;
  while (!dir.empty() && (dir.back() == '\n' || dir.back() == '\r')) dir.pop_back();
  size_t nl = dir.rfind('\n');
  if (nl != std::string::npos) dir = dir.substr(nl + 1);
  GuestImage img{dir, dir + "/vmlinux", dir + "/initramfs.cpio.gz"};
  std::ifstream mf(dir + "/manifest.json");
  if (mf) {
    try {
      auto m = nlohmann::json::parse(mf);
      if (m.contains("kernel")) img.kernel = dir + "/" + m["kernel"].get<std::string>();
      if (m.contains("initrd")) img.initrd = dir + "/" + m["initrd"].get<std::string>();
    } catch (const std::exception& e) {
      return Status::Corruption(dir + "/manifest.json: " + e.what());
    }
  }
  for (const auto& f : {img.kernel, img.initrd}) {
    if (!fs::exists(f)) return Status::NotFound("guest image file missing: " + f);
  }
  return img;
}

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

double CpuSeconds(int who) {
  rusage u{};
  getrusage(who, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

Status WriteStats(const std::string& path, const EngineStats& stats, const RunResult& run) {
  double self = CpuSeconds(RUSAGE_SELF), guests = CpuSeconds(RUSAGE_CHILDREN);
  nlohmann::json j;
  j["run_wall_s"] = run.wall_s;
  j["run_to_all_boot_loop_wall_s"] = stats.all_boot_loop_wall_s;
  j["orchestrator_cpu_s"] = self;
  j["guests_cpu_s"] = guests;
  j["orchestrator_cpu_share"] = self + guests > 0 ? self / (self + guests) : 0;
  j["qmp_event_to_journal_p50_ms"] = Percentile(stats.event_to_journal_ms, 0.50);
  j["qmp_event_to_journal_p99_ms"] = Percentile(stats.event_to_journal_ms, 0.99);
  j["qmp_events"] = stats.event_to_journal_ms.size();
  std::ofstream f(path);
  f << j.dump(2) << "\n";
  return f ? Status::Ok() : Status::IoError("cannot write " + path);
}

}  // namespace

Result<GuestImage> FindBuiltImage(const LabPaths& paths, const config::ImageConfig& image) {
  const std::string& name = image.name;
  if (!fs::exists(paths.bin_dir + "/csagent")) {
    return Status::FailedPrecondition("csagent not found next to chaoslab in " + paths.bin_dir +
                                      ": run `make build`");
  }
  std::vector<std::string> argv = ImageScriptArgs(paths, image);
  argv.push_back("--check");
  ASSIGN_OR_RETURN(ProcessOutput r, RunProcess(argv, std::chrono::seconds(120)));
  if (r.exit_code == kExitNotBuilt) {
    return Status::FailedPrecondition("guest image " + name + " is not built: run `make image`");
  }
  if (r.exit_code != 0) {
    return Status::FailedPrecondition("checking guest image " + name + " failed: " + r.err);
  }
  return ImageFromFolder(r.out);
}

Result<GuestImage> BuildImage(const LabPaths& paths, const std::string& name, std::ostream& err) {
  ASSIGN_OR_RETURN(config::ImageConfig image, config::LoadImage(paths.images_dir, name));
  err << "building guest image " << name << " with the " << image.kernel
      << " kernel (cached by content hash; a first kernel build takes ~8 min on 2 cores)...\n";
  ASSIGN_OR_RETURN(ProcessOutput r,
                   RunProcess(ImageScriptArgs(paths, image), std::chrono::seconds(3600)));
  if (r.exit_code != 0) return Status::Internal("building image " + name + " failed:\n" + r.err);
  return ImageFromFolder(r.out);
}

int RunCommand(const LabPaths& paths, const RunRequest& request, const std::atomic<bool>* cancel,
               std::ostream& out, std::ostream& err) {
  auto fail = [&](const Status& s, int code) {
    err << "chaoslab: " << s.message() << "\n";
    return code;
  };

  // 1. Everything that can be checked before anything starts.
  Result<config::ScenarioConfig> loaded =
      config::LoadScenario(request.scenario_path, paths.images_dir);
  if (!loaded.ok()) return fail(loaded.status(), 2);
  config::ScenarioConfig sc = std::move(*loaded);
  if (request.seed) sc.seed = *request.seed;
  if (request.max_wall_s) sc.stop.max_wall = *request.max_wall_s;

  Result<GuestImage> image = FindBuiltImage(paths, sc.image);
  if (!image.ok()) return fail(image.status(), 2);
  std::string relay = paths.bin_dir + "/chaoslab-relay";
  if (!fs::exists(relay)) {
    return fail(Status::FailedPrecondition("chaoslab-relay not found in " + paths.bin_dir), 2);
  }
  std::string mkdisk = paths.images_dir + "/" + sc.image.name + "/mkdisk.sh";

  std::string run_id = NewRunId();
  vm::QemuOptions qo;
  qo.run_id = run_id;
  qo.runtime_root = paths.runtime_root;
  qo.relay = relay;
  qo.qemu = paths.qemu;
  Result<std::unique_ptr<Backend>> backend = vm::MakeQemuBackend(qo);
  if (!backend.ok()) return fail(backend.status(), 2);

  // From here on, the backend's Destroy() runs on every path out.
  struct Cleanup {
    Backend* b;
    ~Cleanup() { (void)b->Destroy(); }
  } cleanup{backend->get()};

  // 2. Content: what every host has cached, the faulty update and the revert.
  fs::path run_dir = fs::path(paths.runtime_root) / run_id;
  fs::create_directories(run_dir / "disks");
  ContentVersion cached = MakeContent(content::ChannelFileKind::kGood, kCachedVersion);
  ContentVersion fault = MakeContent(FaultFileKind(sc.fault.kind), kFaultVersion);
  ContentVersion revert = MakeContent(content::ChannelFileKind::kGood, kRevertVersion);
  Result<std::string> cached_file = WriteFile(run_dir / cached.file_name, cached.bytes);
  if (!cached_file.ok()) return fail(cached_file.status(), 1);

  Result<std::unique_ptr<ContentServer>> server = ContentServer::Start({});
  if (!server.ok()) return fail(server.status().WithContext("content server"), 1);
  Status published =
      (*server)->Publish(cached.channel, cached.version, cached.file_name, cached.bytes);
  if (!published.ok()) return fail(published, 1);

  // 3. One system disk per group; each host boots a copy-on-write overlay of it.
  std::vector<HostPlan> plans;
  for (const auto& g : sc.setup.groups) {
    std::string disk = (run_dir / "disks" / (g.name + ".img")).string();
    auto made = RunProcess({mkdisk, disk, "--sensor", g.sensor_version, "--content", *cached_file},
                           std::chrono::seconds(60));
    if (!made.ok()) return fail(made.status(), 1);
    if (made->exit_code != 0) {
      return fail(Status::Internal("making the system disk of group " + g.name + ": " + made->err),
                  1);
    }
    bool online = g.online_in_window && g.network != config::Network::kOffline;
    for (int i = 1; i <= g.count; ++i) {
      HostPlan p;
      p.role = g.role;
      p.online = online;
      p.spec.id = fmt::format("{}-{:02}", g.name, i);
      p.spec.group = g.name;
      p.spec.kernel = image->kernel;
      p.spec.initrd = image->initrd;
      p.spec.base_disk = disk;
      p.spec.kernel_args = {"winsim.host=" + p.spec.id,
                            "winsim.ipc_ms=" + std::to_string(kIpcNotificationMs)};
      p.spec.network.online = online;
      p.spec.network.content_port = (*server)->port();
      if (online) p.spec.kernel_args.push_back("winsim.cloud=10.0.2.100:80");
      plans.push_back(std::move(p));
    }
  }

  // 4. The journal, written as the run goes.
  Result<std::unique_ptr<Journal>> journal = Journal::Open(paths.journal);
  if (!journal.ok()) return fail(journal.status(), 2);

  EngineOptions eo;
  eo.scenario = &sc;
  eo.run_id = run_id;
  eo.backend = backend->get();
  eo.journal = journal->get();
  eo.hosts = std::move(plans);
  eo.fault = fault;
  eo.revert = revert;
  ContentServer* srv = server->get();
  eo.publish = [srv](const ContentVersion& c) {
    return srv->Publish(c.channel, c.version, c.file_name, c.bytes);
  };
  eo.cancel = cancel;
  if (!request.quiet) eo.progress = [&err](const std::string& line) { err << line << std::endl; };

  if (!request.quiet) {
    err << fmt::format("run {}: scenario {} ({} hosts, runbook {}, seed {}), journal {}\n", run_id,
                       sc.name, eo.hosts.size(), sc.runbook.name, sc.seed, paths.journal);
  }
  EngineStats stats;
  eo.stats = &stats;
  Result<RunResult> result = RunScenario(eo);
  (void)backend->get()->Destroy();  // before measuring the guests' CPU: they are reaped here
  if (!result.ok()) return fail(result.status(), 1);
  if (!request.stats_json.empty()) {
    Status s = WriteStats(request.stats_json, stats, *result);
    if (!s.ok()) err << "chaoslab: " << s.message() << "\n";
  }
  if (request.json) {
    out << ToJson(*result).dump(2) << "\n";
  } else {
    PrintTable(*result, out);
  }
  if (result->status == "interrupted") return 130;
  return 0;
}

}  // namespace chaoslab
