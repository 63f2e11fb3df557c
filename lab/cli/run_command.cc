#include "lab/cli/run_command.h"

#include <fmt/format.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <span>
#include <thread>

#include "agents/sensor/channel_file.h"
#include "agents/sensor/link_shaper.h"
#include "lab/backend/guest_clock.h"
#include "lab/backend/lab_priority.h"
#include "lab/cli/rollout_policy.h"
#include "lab/cli/run_backend.h"
#include "lab/cli/run_report.h"
#include "lab/cli/sim_command.h"
#include "lab/cli/uncertainty_command.h"
#include "lab/common/identifier.h"
#include "lab/common/json_text.h"
#include "lab/common/secret_file.h"
#include "lab/common/subprocess.h"
#include "lab/config/config_loader.h"
#include "lab/content_server/content_server.h"
#include "lab/content_server/key_escrow.h"
#include "lab/dashboard/dashboard_server.h"
#include "lab/engine/engine.h"
#include "lab/journal/journal.h"
#include "lab/libvirt/inventory.h"
#include "lab/libvirt/libvirt_backend.h"
#include "lab/libvirt/windows_golden.h"
#include "lab/report/compare.h"
#include "lab/report/html.h"
#include "lab/report/report.h"
#include "lab/vm/qemu_backend.h"

namespace chaoslab {

using run_internal::AssignRings;
using run_internal::BackendChoice;
using run_internal::CheckBackend;
using run_internal::JournalFailed;
using run_internal::MakeBackend;
using run_internal::MethodText;
using run_internal::Preflight;
using run_internal::RolloutContentPolicy;
using run_internal::RunInputs;
using run_internal::WriteStats;

namespace {

namespace fs = std::filesystem;

// Content versions of channel 291 in a run: what hosts have cached, the faulty update, the revert.
constexpr uint32_t kCachedVersion = 1, kFaultVersion = 2, kRevertVersion = 3;

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

// The host's escrow credential (KeyEscrow::IssueCredential) in a 0600 file of the run's 0700
// credentials folder: the path goes on QEMU's command line, the secret not.
Result<std::string> WriteCredentialFile(const fs::path& dir, const std::string& host_id,
                                        const std::string& credential) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::IoError("cannot create " + dir.string() + ": " + ec.message());
  fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  const std::string path = (dir / host_id).string();
  RETURN_IF_ERROR(WriteSecretFile(path, credential).WithContext("credential file"));
  return path;
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

std::string Trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
    text.pop_back();
  return text;
}

Result<std::string> ReadSmallFile(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status::IoError("cannot read " + path.string());
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return Trimmed(text);
}

}  // namespace

config::SetupConfig ScaleSetup(const config::SetupConfig& setup, int max_vms) {
  const int64_t total = config::TotalHosts(setup);
  if (max_vms <= 0 || total <= max_vms) return setup;
  config::SetupConfig s = config::ScaleSetupTo(setup, max_vms);
  s.description += fmt::format(" (scaled to {} of {} hosts)", config::TotalHosts(s), total);
  return s;
}

nlohmann::json ScenarioInputs(const config::ScenarioConfig& sc, const std::string& backend) {
  nlohmann::json inputs = {{"scenario_file", sc.file},
                           {"setup_file", sc.setup.file},
                           {"runbook_file", sc.runbook.file},
                           {"seed", sc.seed},
                           {"backend", backend}};
  // What `sweep --set` (config_path.h) changed after loading, in the order set.
  if (!sc.overrides.empty()) {
    nlohmann::json overrides = nlohmann::json::array();
    for (const auto& [path, value] : sc.overrides) overrides.push_back({path, value});
    inputs["overrides"] = std::move(overrides);
  }
  return inputs;
}

namespace {

// Loads the scenario and applies --setup/--runbook/--max-vms/--seed/--max-wall.
Result<config::ScenarioConfig> LoadForRun(const LabPaths& paths, const std::string& scenario_path,
                                          const std::string& setup_name,
                                          const std::string& runbook_name, int max_vms) {
  ASSIGN_OR_RETURN(config::ScenarioConfig sc,
                   config::LoadScenario(scenario_path, paths.images_dir));
  std::optional<config::SetupConfig> setup;
  std::optional<config::RunbookConfig> runbook;
  if (!setup_name.empty()) {
    ASSIGN_OR_RETURN(std::string path, config::FindPlaybook(sc, "setups", setup_name));
    ASSIGN_OR_RETURN(setup, config::LoadSetup(path));
  }
  if (!runbook_name.empty()) {
    ASSIGN_OR_RETURN(std::string path, config::FindPlaybook(sc, "runbooks", runbook_name));
    ASSIGN_OR_RETURN(runbook, config::LoadRunbook(path));
  }
  if (max_vms > 0) setup = ScaleSetup(setup ? *setup : sc.setup, max_vms);
  if (setup || runbook) {
    ASSIGN_OR_RETURN(sc, config::Recombine(std::move(sc), setup ? &*setup : nullptr,
                                           runbook ? &*runbook : nullptr));
  }
  return sc;
}

// Whether the runbook, or one it may escalate to (on_failure), has a step of `kind`.
bool RunbookUses(const config::RunbookConfig& rb, config::StepKind kind) {
  for (const auto& s : rb.steps)
    if (s.kind == kind) return true;
  for (const auto& e : rb.escalations)
    if (RunbookUses(e.runbook, kind)) return true;
  return false;
}

// The guest's link word for a profile (agents/sensor/link_shaper.h: microseconds, ppm, kbit/s).
std::string GuestLinkWord(const config::NetworkProfile& p) {
  content::LinkProfile link;
  link.rtt_us = static_cast<uint32_t>(p.rtt_ms * 1000);
  link.jitter_us = static_cast<uint32_t>(p.jitter_ms * 1000);
  link.loss_ppm = static_cast<uint32_t>(std::lround(p.loss_percent * 10'000));
  link.rate_kbit = static_cast<uint32_t>(p.bandwidth_mbit * 1000);
  link.up_min_ms = static_cast<uint32_t>(p.usable_after_min_ms);
  link.up_max_ms = static_cast<uint32_t>(p.usable_after_max_ms);
  return content::LinkWord(link);
}

// A host's link as the image's profile for its network makes it (docs/TIME-BASE.md). A winsim
// guest shapes its own adapter (`winsim.link=`), so the delays run on the guest's clock; another
// image (Windows) gets them from the relay, per connection and on the lab machine's clock: half
// the round trip before the first byte of each direction, the loss as dropped connections.
void ApplyNetworkProfile(const config::ImageConfig& image, config::Network network,
                         HostSpec* spec) {
  auto it = image.networks.find(network);
  if (network == config::Network::kOffline || it == image.networks.end()) return;
  const config::NetworkProfile& p = it->second;
  if (image.kind == config::ImageKind::kWinsim) {
    spec->kernel_args.push_back("winsim.link=" + GuestLinkWord(p));
    return;
  }
  spec->network.delay_ms = static_cast<int>(p.rtt_ms / 2);
  spec->network.jitter_ms = static_cast<int>(p.jitter_ms / 2);
  spec->network.loss_percent = static_cast<int>(std::lround(p.loss_percent));
}

// The guest clock of a run's machines (one image, one accelerator: the first host's).
std::string GuestClockOfRun(const Backend& backend, const std::vector<HostPlan>& hosts) {
  if (hosts.empty()) return GuestClockName(GuestClock::kWall);
  return GuestClockName(GuestClockFor(backend.accelerator(), hosts.front().spec));
}

// On the instruction-counting clock, the content server's io thread runs in real time, ahead of
// every ordinary thread (the backends do the same for QEMU's main loop; lab_priority.h), so that
// no other load stretches the host side of a guest's wait. Returns how the run ran, for its inputs
// and method: "realtime", or "ordinary (why)" when the lab may not or the clock is the wall's.
std::string RaiseLabPriority(const std::string& guest_clock, const ContentServer& server) {
  if (guest_clock != GuestClockName(GuestClock::kInstructions)) return "ordinary (wall clock)";
  if (server.io_thread_id() <= 0) return "ordinary (no io thread)";
  const Status s = SetRealtime(server.io_thread_id(), kLabRealtimePriority, /*reset_on_fork=*/true);
  if (s.ok()) return "realtime";
  return "ordinary (could not raise it: " + s.message() + ")";
}

// One run of a scenario on real guests: its own QEMU backend, content server, key escrow and
// disks; everything it started is gone when it returns.
// The content server and the rollout's policy, as the engine publishes and releases content.
class ServerContent final : public ContentChannel {
 public:
  ServerContent(ContentServer* server, std::shared_ptr<RolloutContentPolicy> policy)
      : server_(server), policy_(std::move(policy)) {}
  Status Publish(const ContentVersion& c) override {
    return server_->Publish(c.channel, c.version, c.file_name, c.bytes);
  }
  void ReleaseRing(int ring) override { policy_->Release(ring); }
  void WithdrawFault() override { policy_->Withdraw(); }
  Status Quarantine(const ContentVersion& c, const std::vector<std::string>& hosts) override {
    return server_->Quarantine(c.channel, c.file_name, hosts);
  }

 private:
  ContentServer* server_;
  std::shared_ptr<RolloutContentPolicy> policy_;
};

// The lab's KeyEscrow service as runbooks fetch from it (shared: a game day's page outlives the
// run).
class EscrowService final : public KeyEscrowDesk {
 public:
  explicit EscrowService(std::shared_ptr<KeyEscrow> escrow) : escrow_(std::move(escrow)) {}
  Result<std::string> FetchKey(const std::string& host_id) override {
    return escrow_->Lookup(host_id);
  }
  void SetAvailable(bool up) override { escrow_->SetAvailable(up); }

 private:
  std::shared_ptr<KeyEscrow> escrow_;
};

struct OneRun {
  const LabPaths& paths;
  const GuestImage& image;
  Journal* journal = nullptr;
  const std::atomic<bool>* cancel = nullptr;
  std::function<void(const std::string&)> progress;
  EngineStats* stats = nullptr;
  int max_booting = 0;
  LiveView* live = nullptr;  // the dashboard, when one is served
  BackendChoice backend_choice;
  std::function<void(EngineOptions*)> wire_engine;  // RunRequest::wire_engine

  Result<RunResult> Go(const config::ScenarioConfig& sc, const std::string& run_id,
                       const std::string& comparison_id, int repetition) {
    // A Windows image: every host a clone of the golden image (no winsim disks, media or keys).
    std::optional<libvirt::WindowsGolden> windows;
    if (sc.image.kind == config::ImageKind::kWindows) {
      ASSIGN_OR_RETURN(windows, libvirt::FindWindowsGolden(image.dir));
    }
    ASSIGN_OR_RETURN(std::unique_ptr<Backend> backend,
                     MakeBackend(paths, backend_choice, run_id, progress, windows));
    // From here on, the backend's Destroy() runs on every path out.
    struct Cleanup {
      Backend* b;
      ~Cleanup() { (void)b->Destroy(); }
    } cleanup{backend.get()};

    // Content: what every host has cached, the faulty update and the revert.
    fs::path run_dir = fs::path(paths.runtime_root) / run_id;
    fs::create_directories(run_dir / "disks");
    ContentVersion cached = MakeContent(content::ChannelFileKind::kGood, kCachedVersion);
    ContentVersion fault = MakeContent(FaultFileKind(sc.fault.kind), kFaultVersion);
    ContentVersion revert = MakeContent(content::ChannelFileKind::kGood, kRevertVersion);
    ASSIGN_OR_RETURN(std::string cached_file, WriteFile(run_dir / cached.file_name, cached.bytes));

    // Shared: whatever keeps eo.fetch_key (the game-day dashboard, after this returns) keeps the
    // escrow alive. Made before the content server, which points at it, so it outlives the server.
    auto escrow = std::make_shared<KeyEscrow>();
    ASSIGN_OR_RETURN(std::unique_ptr<ContentServer> server, ContentServer::Start({}));
    RETURN_IF_ERROR(
        server->Publish(cached.channel, cached.version, cached.file_name, cached.bytes));
    server->AttachEscrow(escrow.get());
    // What a PXE boot runs: unlock with the escrowed key when encrypted, delete the bad file.
    server->SetPxePlan("unlock escrow\ndelete C-00000291*.sys\n");

    // Recovery media (WinPE): the USB stick, and the rescue VM's own disk.
    std::string media;
    if (!windows && (RunbookUses(sc.runbook, config::StepKind::kBoot) ||
                     RunbookUses(sc.runbook, config::StepKind::kRescueDisk) ||
                     RunbookUses(sc.runbook, config::StepKind::kHypervisorRepair))) {
      media = (run_dir / "winpe.img").string();
      std::string mkmedia = paths.images_dir + "/" + sc.image.name + "/mkmedia.sh";
      ASSIGN_OR_RETURN(ProcessOutput made, RunProcess({mkmedia, media}, std::chrono::seconds(60)));
      if (made.exit_code != 0) return Status::Internal("making the recovery media: " + made.err);
    }

    // One system disk per group, each host on a copy-on-write overlay of it; BitLocker hosts get
    // their own encrypted disk (own keys, like real devices), the password goes to the escrow.
    std::string mkdisk = paths.images_dir + "/" + sc.image.name + "/mkdisk.sh";
    std::string bde = paths.bin_dir + "/chaoslab-bde";
    std::vector<HostPlan> plans;
    for (const auto& g : sc.setup.groups) {
      // The loader checked the name; checked again here, where it becomes a path.
      RETURN_IF_ERROR(CheckIdentifier("group name", g.name));
      std::string disk = (run_dir / "disks" / (g.name + ".img")).string();
      if (windows) {
        disk = windows->disk;  // the golden image has the sensor and its cached content
      } else {
        ASSIGN_OR_RETURN(ProcessOutput made, RunProcess({mkdisk, disk, "--sensor", g.sensor_version,
                                                         "--content", cached_file},
                                                        std::chrono::seconds(60)));
        if (made.exit_code != 0)
          return Status::Internal("making the system disk of group " + g.name + ": " + made.err);
      }
      bool online = g.online_in_window && g.network != config::Network::kOffline;
      for (int i = 1; i <= g.count; ++i) {
        HostPlan p;
        p.role = g.role;
        p.online = online;
        p.site = g.site;
        p.bitlocker = g.bitlocker;
        p.oob_console = g.oob_console;
        p.cloud = g.cloud;
        p.on_hypervisor = g.on_hypervisor;
        p.reset_is_crash = windows.has_value();
        p.network = std::string(config::NetworkName(g.network));
        p.spec.id = config::HostName(g.name, i);
        p.spec.group = g.name;
        p.spec.kernel = image.kernel;
        p.spec.initrd = image.initrd;
        p.spec.base_disk = disk;
        p.spec.kernel_args = {"winsim.host=" + p.spec.id,
                              "winsim.ipc_ms=" + std::to_string(sc.RaceWindowMs())};
        p.spec.network.online = online;
        p.spec.network.content_port = server->port();
        if (online) ApplyNetworkProfile(sc.image, g.network, &p.spec);
        if (online) {
          p.spec.kernel_args.push_back("winsim.cloud=10.0.2.100:80");
          // The host's own credential: the escrow gives its link this host's key, no other.
          ASSIGN_OR_RETURN(p.spec.network.credential_file,
                           WriteCredentialFile(run_dir / "credentials", p.spec.id,
                                               escrow->IssueCredential(p.spec.id)));
        }
        if (g.bitlocker && windows) {
          // BitLocker is the golden image's own: every clone has its recovery password (one for
          // all clones; a real fleet has one per machine) and its TPM state (the backend's copy).
          RETURN_IF_ERROR(escrow->LoadFromFile(p.spec.id, windows->recovery_password)
                              .WithContext("key escrow for host " + p.spec.id));
        } else if (g.bitlocker) {
          fs::path dir = run_dir / "disks" / p.spec.id;
          fs::create_directories(dir);
          fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace);
          std::string enc = (dir / "system.img").string();
          ASSIGN_OR_RETURN(
              ProcessOutput encrypted,
              RunProcess({bde, "encrypt", "--in", disk, "--out", enc, "--recovery-password-out",
                          (dir / "recovery-password").string(), "--tpm-secret-out",
                          (dir / "tpm-secret").string()},
                         std::chrono::seconds(60)));
          if (encrypted.exit_code != 0)
            return Status::Internal("encrypting the disk of " + p.spec.id + ": " + encrypted.err);
          ASSIGN_OR_RETURN(std::string password, ReadSmallFile(dir / "recovery-password"));
          ASSIGN_OR_RETURN(p.spec.tpm_secret, ReadSmallFile(dir / "tpm-secret"));
          // The lab keeps only what the escrow and the TPM would: the files go.
          fs::remove(dir / "recovery-password");
          fs::remove(dir / "tpm-secret");
          escrow->Store(p.spec.id, password);
          p.spec.base_disk = enc;
        }
        plans.push_back(std::move(p));
      }
    }

    // The rollout: rings by seed, pinned groups, and the server's policy that enforces them.
    std::map<std::string, int> ring_of;
    std::set<std::string> pinned;
    std::vector<HostPlan*> in_rings;
    for (auto& p : plans) {
      for (const auto& g : sc.rollout.pinned)
        if (p.spec.group == g) p.pinned = true;
      if (p.pinned) {
        pinned.insert(p.spec.id);
      } else {
        in_rings.push_back(&p);
      }
    }
    std::vector<int> rings = AssignRings(sc.rollout, in_rings.size(), sc.seed);
    for (size_t i = 0; i < in_rings.size(); ++i) {
      in_rings[i]->ring = rings[i];
      ring_of[in_rings[i]->spec.id] = rings[i];
    }
    auto policy = std::make_shared<RolloutContentPolicy>(kFaultVersion, ring_of, pinned);
    server->SetPolicy(policy);

    ServerContent content(server.get(), policy);
    EngineOptions eo;
    eo.content = &content;
    eo.scenario = &sc;
    eo.run_id = run_id;
    eo.comparison_id = comparison_id;
    eo.repetition = repetition;
    eo.backend = backend.get();
    eo.journal = journal;
    eo.hosts = std::move(plans);
    eo.fault = fault;
    eo.revert = revert;
    eo.escrow = std::make_shared<EscrowService>(escrow);
    eo.usb_media = media;
    eo.rescue_template.kernel = image.kernel;
    eo.rescue_template.initrd = image.initrd;
    eo.rescue_template.base_disk = media;
    ASSIGN_OR_RETURN(eo.priority, config::PriorityRanks(sc.runbook, sc.setup));
    eo.cancel = cancel;
    eo.progress = progress;
    eo.stats = stats;
    eo.live = live;
    eo.max_booting = max_booting;
    const std::string guest_clock = GuestClockOfRun(*backend, eo.hosts);
    const std::string priority = RaiseLabPriority(guest_clock, *server);
    eo.method = MethodText(sc, max_booting, guest_clock, priority);
    nlohmann::json inputs = RunInputs(sc, image, backend_choice, max_booting);
    inputs["guest_clock"] = guest_clock;
    inputs["lab_priority"] = priority;
    eo.inputs = JsonText(inputs);
    if (progress) {
      progress(fmt::format("run {}: scenario {} ({} hosts, setup {}, runbook {}, seed {})", run_id,
                           sc.name, eo.hosts.size(), sc.setup.name, sc.runbook.name, sc.seed));
    }
    if (wire_engine) wire_engine(&eo);
    Result<RunResult> result = RunScenario(eo);
    // A guest whose QEMU main loop stayed ordinary raced on the machine's load: the run says so.
    if (const std::string why = backend->HostPathShortfall(); !why.empty() && result.ok()) {
      if (progress) {
        progress("warning: the host side of a guest's network path ran at ordinary priority (" +
                 why + "): its boot race follows the machine's load (docs/TIME-BASE.md)");
      }
      nlohmann::json in = nlohmann::json::parse(result->inputs, nullptr, false);
      if (in.is_object()) {
        in["lab_priority"] = "ordinary (" + why + ")";
        result->inputs = JsonText(in);
      }
    }
    (void)backend->Destroy();  // before measuring the guests' CPU: they are reaped here
    return result;
  }
};

int MaxBooting(int requested) {
  return requested >= 0 ? requested
                        : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

// Exit code of an error from OneRun::Go: what the machine lacks (QEMU missing, bad options, a
// run folder in the way) is bad input (2: nothing was started); anything else is a failed run (1).
int SetupErrorCode(const Status& s) {
  switch (s.code()) {
    case ErrorCode::kNotFound:
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kFailedPrecondition:
      return 2;
    default:
      return 1;
  }
}

}  // namespace

int RunCommand(const LabPaths& paths, const RunRequest& request, const std::atomic<bool>* cancel,
               std::ostream& out, std::ostream& err) {
  auto fail = [&](const Status& s, int code) {
    err << "chaoslab: " << s.message() << "\n";
    return code;
  };
  if (request.uncertainty != 0) return UncertaintyCommand(paths, request, cancel, out, err);
  // 1. Everything that can be checked before anything starts.
  Result<config::ScenarioConfig> loaded =
      LoadForRun(paths, request.scenario_path, request.setup, request.runbook, request.max_vms);
  if (!loaded.ok()) return fail(loaded.status(), 2);
  config::ScenarioConfig sc = std::move(*loaded);
  if (request.seed) sc.seed = *request.seed;
  if (request.max_wall_s) sc.stop.max_wall = *request.max_wall_s;
  if (request.adjust_scenario) {
    if (Status s = request.adjust_scenario(&sc); !s.ok()) return fail(s, 2);
  }
  if (request.backend == "sim" ||
      (request.backend.empty() && sc.backend == config::BackendKind::kSim)) {
    if (request.dashboard || request.dashboard_hold) {
      return fail(Status::InvalidArgument("--dashboard shows real guests; not with the simulator"),
                  2);
    }
    return SimRunCommand(paths, request, std::move(sc), out, err);
  }
  if (!sc.mix_file.empty())
    return fail(Status::InvalidArgument("a scenario with a mix runs only with --backend sim"), 2);
  Result<GuestImage> image = FindBuiltImage(paths, sc.image);
  if (!image.ok()) return fail(image.status(), 2);
  if (Status s = Preflight(paths, sc); !s.ok()) return fail(s, 2);
  Result<BackendChoice> backend =
      CheckBackend(request.backend, request.inventory, std::span(&sc, 1));
  if (!backend.ok()) return fail(backend.status(), 2);
  Result<std::unique_ptr<Journal>> journal = Journal::Open(paths.journal);
  if (!journal.ok()) return fail(journal.status(), 2);

  EngineStats stats;
  OneRun one{
      paths, *image, journal->get(), cancel, nullptr, &stats, MaxBooting(request.max_booting)};
  one.backend_choice = std::move(*backend);
  one.wire_engine = request.wire_engine;
  if (!request.quiet) one.progress = [&err](const std::string& line) { err << line << std::endl; };
  if (!request.quiet) err << "journal: " << paths.journal << "\n";
  const std::string run_id = NewRunId();
  std::unique_ptr<dashboard::DashboardServer> board;
  std::unique_ptr<LiveView> view;
  if (request.dashboard || request.dashboard_hold) {
    Result<std::unique_ptr<dashboard::DashboardServer>> started = dashboard::DashboardServer::Start(
        {request.dashboard_port,
         paths.dashboard_assets,
         {run_id, sc.name, sc.runbook.name, sc.setup.name, sc.rollout.start, sc.rollout.release,
          sc.rollout.revert}});
    if (!started.ok()) return fail(started.status(), 2);
    board = std::move(*started);
    view = std::make_unique<dashboard::DashboardLiveView>(board.get(), false);
    one.live = view.get();
    // Printed even with --quiet: asking for a dashboard means wanting its address.
    err << "dashboard: " << board->Url(false) << " (trainee)\n"
        << "dashboard: " << board->Url(true) << " (instructor)" << std::endl;
  }
  Result<RunResult> result = one.Go(sc, run_id, "", 0);
  if (board) board->End(result.ok() ? result->status : "failed");
  if (!result.ok()) return fail(result.status(), SetupErrorCode(result.status()));
  if (!request.stats_json.empty()) {
    Status s = WriteStats(request.stats_json, stats, *result);
    if (!s.ok()) err << "chaoslab: " << s.message() << "\n";
  }
  if (request.json) {
    out << ToJsonText(*result) << "\n";
  } else {
    PrintTable(*result, out);
  }
  if (!request.html.empty()) {
    Status s = WriteHtmlReport({*result}, "chaoslab run " + result->run_id, request.html);
    if (!s.ok()) return fail(s, 1);
    if (!request.quiet) err << "HTML report: " << request.html << "\n";
  }
  if (board && request.dashboard_hold && result->status != "interrupted") {
    out << std::flush;
    err << "dashboard: the run " << result->status << "; still serving " << board->Url(false)
        << " until Ctrl-C" << std::endl;
    while (!(cancel && cancel->load())) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  if (!result->journal_error.empty()) return JournalFailed(*result, err);
  if (result->status == "interrupted") return 130;
  return 0;
}

int RunCells(const LabPaths& paths, const CellRunOptions& options,
             const std::vector<config::ScenarioConfig>& cells, const std::atomic<bool>* cancel,
             std::ostream& err, CellRuns* out) {
  auto fail = [&](const Status& s, int code) {
    err << "chaoslab: " << s.message() << "\n";
    return code;
  };
  if (cells.empty()) return fail(Status::InvalidArgument("nothing to run: no cells"), 2);
  const CellRunRequest& req = options.request;
  const int repeat = req.repeat > 0 ? req.repeat : cells.front().repetitions;
  const bool sim = cells.front().backend == config::BackendKind::kSim;
  for (const config::ScenarioConfig& sc : cells) {
    if (sc.backend != config::BackendKind::kSim) {
      if (Status s = Preflight(paths, sc); !s.ok()) return fail(s, 2);
    }
  }
  BackendChoice backend_choice;
  if (!sim) {
    Result<BackendChoice> backend = CheckBackend(req.backend, req.inventory, cells);
    if (!backend.ok()) return fail(backend.status(), 2);
    backend_choice = std::move(*backend);
  }
  Result<GuestImage> image =
      sim ? Result<GuestImage>(GuestImage{}) : FindBuiltImage(paths, cells.front().image);
  if (!image.ok()) return fail(image.status(), 2);
  Result<std::unique_ptr<Journal>> journal = Journal::Open(paths.journal);
  if (!journal.ok()) return fail(journal.status(), 2);

  Comparison& comparison = out->comparison;
  comparison.id = NewRunId();
  comparison.scenario = cells.front().name;
  nlohmann::json cfg = options.config;
  cfg["repeat"] = repeat;
  cfg["backend"] = sim ? "sim" : backend_choice.kind;
  if (backend_choice.inventory) cfg["inventory_file"] = backend_choice.inventory->path;
  if (Status s = (*journal)->BeginComparison(comparison.id, comparison.scenario, JsonText(cfg));
      !s.ok())
    return fail(s, 1);
  if (!req.quiet) {
    err << fmt::format("{} {}: {} cell(s) x {} repetition(s), journal {}\n", options.noun,
                       comparison.id, cells.size(), repeat, paths.journal);
  }
  OneRun one{paths, *image, journal->get(), cancel, nullptr, nullptr, MaxBooting(req.max_booting)};
  one.backend_choice = backend_choice;
  if (!req.quiet) one.progress = [&err](const std::string& line) { err << line << std::endl; };
  for (int rep = 0; rep < repeat && !out->interrupted; ++rep) {
    for (size_t c = 0; c < cells.size(); ++c) {
      config::ScenarioConfig cell = cells[c];
      cell.seed = cells[c].seed + static_cast<uint64_t>(rep);
      SimCliOptions sim_options;
      sim_options.calibration = req.calibration;
      Result<RunResult> r = sim ? RunSimOnce(cell, NewRunId(), comparison.id, rep, journal->get(),
                                             sim_options, one.progress)
                                : one.Go(cell, NewRunId(), comparison.id, rep);
      if (!r.ok()) return fail(r.status(), SetupErrorCode(r.status()));
      if (!req.quiet) {
        err << fmt::format("cell {} repetition {}/{}: {} recovered, {} failed, {:.0f} s wall\n",
                           options.describe ? options.describe(c) : std::to_string(c + 1), rep + 1,
                           repeat, r->fleet.recovered, r->fleet.failed, r->wall_s);
      }
      if (!r->journal_error.empty()) out->journal_failed = JournalFailed(*r, err);
      comparison.runs.push_back(*r);
      out->cell_of_run.push_back(c);
      if (r->status == "interrupted" || (cancel && cancel->load())) {
        out->interrupted = true;
        break;
      }
    }
  }
  (void)(*journal)->FinishComparison(comparison.id, out->interrupted ? "interrupted" : "");
  return 0;
}

int CompareCommand(const LabPaths& paths, const CompareRequest& request,
                   const std::atomic<bool>* cancel, std::ostream& out, std::ostream& err) {
  auto fail = [&](const Status& s, int code) {
    err << "chaoslab: " << s.message() << "\n";
    return code;
  };
  // Every cell is loaded and checked before the first VM starts.
  std::vector<std::string> runbooks = request.runbooks, setups = request.setups;
  if (runbooks.empty()) runbooks.push_back("");
  if (setups.empty()) setups.push_back("");
  std::vector<config::ScenarioConfig> cells;
  for (const auto& setup : setups) {
    for (const auto& runbook : runbooks) {
      Result<config::ScenarioConfig> sc =
          LoadForCells(paths, request.scenario_path, setup, runbook, request.cells);
      if (!sc.ok()) return fail(sc.status(), 2);
      cells.push_back(std::move(*sc));
    }
  }
  CellRunOptions options;
  options.request = request.cells;
  options.config = {{"runbooks", runbooks}, {"setups", setups}};
  options.describe = [&](size_t c) {
    return "runbook=" + cells[c].runbook.name + " setup=" + cells[c].setup.name;
  };
  CellRuns runs;
  if (int code = RunCells(paths, options, cells, cancel, err, &runs); code != 0) return code;
  const Comparison& comparison = runs.comparison;
  if (request.json) {
    out << JsonText(ComparisonToJson(comparison), 2) << "\n";
  } else {
    PrintComparison(comparison, out);
  }
  if (!request.csv.empty()) {
    std::ofstream f(request.csv);
    WriteComparisonCsv(comparison, f);
    if (!f) return fail(Status::IoError("cannot write " + request.csv), 1);
  }
  if (!request.html.empty()) {
    Status s =
        WriteHtmlReport(comparison.runs, "chaoslab comparison " + comparison.id, request.html);
    if (!s.ok()) return fail(s, 1);
    if (!request.cells.quiet) err << "HTML report: " << request.html << "\n";
  }
  if (runs.journal_failed) return runs.journal_failed;
  return runs.interrupted ? 130 : 0;
}

Result<config::ScenarioConfig> LoadForCells(const LabPaths& paths, const std::string& scenario_path,
                                            const std::string& setup, const std::string& runbook,
                                            const CellRunRequest& o) {
  ASSIGN_OR_RETURN(config::ScenarioConfig sc,
                   LoadForRun(paths, scenario_path, setup, runbook, o.max_vms));
  if (o.max_wall_s) sc.stop.max_wall = *o.max_wall_s;
  if (o.seed) sc.seed = *o.seed;
  // --backend overrides the scenario's `backend:`, as in `run`.
  if (!o.backend.empty()) {
    sc.backend = o.backend == "sim" ? config::BackendKind::kSim : config::BackendKind::kQemu;
  }
  return sc;
}

}  // namespace chaoslab
