#include "tests/bench/boot_bench.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <deque>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>

#include "lab/backend/backend.h"
#include "lab/common/subprocess.h"
#include "lab/vm/qemu_backend.h"
#include "tests/bench/bench_util.h"

namespace chaoslab::bench {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using std::chrono::seconds;

volatile std::sig_atomic_t g_stop = 0;

constexpr int kFleetHosts = 16;
constexpr int kFleetCycles = 3;

double SecondsSince(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

// The stock kernel boots 3–5x slower under TCG, so it gets longer deadlines.
seconds Deadline(const std::string& kernel, int custom_seconds) {
  return seconds(kernel == "custom" ? custom_seconds : custom_seconds * 4);
}

// Hands a backend's events to waiters in order; events a waiter did not consume stay queued for
// the next one. kLost is always an error: the bench never expects a guest to vanish.
class EventPump {
 public:
  explicit EventPump(Backend* backend) : backend_(backend) {}

  // Calls `done` on each event until it returns true. Timeout after `limit`, Cancelled on a stop
  // request, Unavailable when a host is lost.
  Status Until(seconds limit, const std::string& what,
               const std::function<bool(const HostEvent&)>& done) {
    const auto deadline = Clock::now() + limit;
    while (true) {
      while (!pending_.empty()) {
        HostEvent e = std::move(pending_.front());
        pending_.pop_front();
        if (e.kind == HostEventKind::kStarted && accel_.empty()) {
          size_t at = e.detail.find("accel=");
          if (at != std::string::npos) accel_ = e.detail.substr(at + 6);
        }
        if (e.kind == HostEventKind::kLost) {
          return Status::Unavailable("host " + e.host_id + " was lost while waiting for " + what +
                                     ": " + e.detail);
        }
        if (done(e)) return Status::Ok();
      }
      if (g_stop) return Status::Cancelled("interrupted while waiting for " + what);
      const auto now = Clock::now();
      if (now >= deadline) {
        return Status::Timeout(what + " did not happen within " + std::to_string(limit.count()) +
                               " s");
      }
      std::vector<HostEvent> batch;
      const auto slice = std::min<Clock::duration>(deadline - now, std::chrono::milliseconds(200));
      RETURN_IF_ERROR(backend_->PollEvents(
          std::chrono::duration_cast<std::chrono::milliseconds>(slice), &batch));
      for (auto& e : batch) pending_.push_back(std::move(e));
    }
  }

  // The accelerator QEMU reported on its first start ("tcg", "kvm"), or "".
  const std::string& accel() const { return accel_; }

 private:
  Backend* backend_;
  std::deque<HostEvent> pending_;
  std::string accel_;
};

// A QEMU backend that is destroyed (every guest powered off, its run folder removed) when this
// goes away, also on early returns.
class BackendGuard {
 public:
  BackendGuard(std::unique_ptr<Backend> backend, std::ostream& log)
      : backend_(std::move(backend)), log_(log) {}
  ~BackendGuard() {
    Status s = backend_->Destroy();
    if (!s.ok()) log_ << "bench: boot: cleaning up the QEMU backend: " << s.ToString() << "\n";
  }
  Backend* get() const { return backend_.get(); }

 private:
  std::unique_ptr<Backend> backend_;
  std::ostream& log_;
};

struct GuestImage {
  std::string kernel;
  std::string initrd;
};

Result<ProcessOutput> Run(const std::vector<std::string>& argv, seconds timeout) {
  ASSIGN_OR_RETURN(ProcessOutput r, RunProcess(argv, timeout));
  if (r.exit_code != 0) {
    return Status::Internal(argv[0] + " exited with status " + std::to_string(r.exit_code) + ": " +
                            r.err.substr(r.err.size() > 2000 ? r.err.size() - 2000 : 0));
  }
  return r;
}

std::string LastLine(const std::string& text) {
  std::istringstream in(text);
  std::string line, last;
  while (std::getline(in, line)) {
    if (!line.empty()) last = line;
  }
  return last;
}

// images/winsim/build.sh for one kernel ("custom" builds images/kernel first when needed).
Result<GuestImage> BuildImage(const BootBenchOptions& o, const std::string& kernel) {
  ASSIGN_OR_RETURN(ProcessOutput r, Run({o.source_dir + "/images/winsim/build.sh", "--csagent",
                                         o.bin_dir + "/csagent", "--kernel", kernel},
                                        seconds(3 * 3600)));
  const std::string dir = LastLine(r.out);
  std::ifstream file(dir + "/manifest.json");
  json manifest = json::parse(file, nullptr, false);
  if (dir.empty() || manifest.is_discarded() || !manifest.is_object()) {
    return Status::Corruption("images/winsim/build.sh --kernel " + kernel +
                              ": no readable manifest.json in '" + dir + "'");
  }
  return GuestImage{dir + "/" + manifest.value("kernel", "vmlinux"),
                    dir + "/" + manifest.value("initrd", "initramfs.cpio")};
}

struct Disks {
  std::string healthy;  // sensor 7.11 with good content v1: boots to ready
  std::string looping;  // sensor 7.11 with Channel File 291 v2: bugchecks on every boot
};

Result<Disks> MakeDisks(const BootBenchOptions& o, const std::string& dir) {
  const std::string channel = o.bin_dir + "/chaoslab-channel";
  const std::string good = dir + "/C-00000291-00000000-00000001.sys";
  const std::string bad = dir + "/C-00000291-00000000-00000002.sys";
  RETURN_IF_ERROR(
      Run({channel, "make", "good", "--version", "1", "-o", good}, seconds(30)).status());
  RETURN_IF_ERROR(
      Run({channel, "make", "channel-291", "--version", "2", "-o", bad}, seconds(30)).status());
  Disks disks{dir + "/healthy.img", dir + "/looping.img"};
  const std::string mkdisk = o.source_dir + "/images/winsim/mkdisk.sh";
  RETURN_IF_ERROR(
      Run({mkdisk, disks.healthy, "--sensor", "7.11", "--content", good}, seconds(60)).status());
  RETURN_IF_ERROR(
      Run({mkdisk, disks.looping, "--sensor", "7.11", "--content", bad}, seconds(60)).status());
  return disks;
}

HostSpec Spec(const GuestImage& image, const std::string& id, const std::string& disk) {
  HostSpec spec;
  spec.id = id;
  spec.group = "bench";
  spec.kernel = image.kernel;
  spec.initrd = image.initrd;
  spec.base_disk = disk;
  spec.kernel_args = {"winsim.host=" + id};
  spec.network.online = false;  // offline: no relay, no network device
  return spec;
}

// Powers a host off and consumes its events up to its last one (kShutdown).
Status PowerOffAndDrain(Host* host, EventPump& pump) {
  RETURN_IF_ERROR(host->PowerOff());
  const std::string id = host->spec().id;
  return pump.Until(seconds(15), "the shutdown of " + id, [&](const HostEvent& e) {
    return e.host_id == id && e.kind == HostEventKind::kShutdown;
  });
}

// Healthy boots, one at a time: guest uptime and wall time to `@@csagent loaded`.
Status MeasureBoots(const BootBenchOptions& o, const std::string& kernel, Backend* backend,
                    EventPump& pump, const GuestImage& image, const Disks& disks, json* out,
                    std::ostream& log) {
  ASSIGN_OR_RETURN(Host * host, backend->CreateHost(Spec(image, "boot", disks.healthy)));
  std::vector<double> guest, wall, bootmgr;
  for (int i = 0; i < o.boots; ++i) {
    const auto t0 = Clock::now();
    RETURN_IF_ERROR(host->Start());
    Status bad;
    Status waited = pump.Until(
        Deadline(kernel, 60), "@@csagent loaded (boot " + std::to_string(i + 1) + ")",
        [&](const HostEvent& e) {
          if (e.host_id != "boot") return false;
          if (e.kind == HostEventKind::kPanicked) {
            bad = Status::Internal("the healthy guest panicked: " + e.detail);
            return true;
          }
          if (e.kind != HostEventKind::kConsoleLine) return false;
          if (e.detail.find("@@winsim phase=bootmgr") != std::string::npos) {
            if (auto up = UptimeField(e.detail)) bootmgr.push_back(*up);
            return false;
          }
          if (e.detail.find("@@csagent loaded") == std::string::npos) {
            return false;
          }
          std::optional<double> up = UptimeField(e.detail);
          if (!up) {
            bad = Status::FailedPrecondition("no uptime= on '" + e.detail +
                                             "': the image predates guest time (rebuild csagent)");
            return true;
          }
          guest.push_back(*up);
          wall.push_back(SecondsSince(t0, e.wall));
          return true;
        });
    Status off = PowerOffAndDrain(host, pump);
    RETURN_IF_ERROR(waited);
    RETURN_IF_ERROR(bad);
    RETURN_IF_ERROR(off);
    log << "bench: boot " << kernel << " #" << i + 1 << ": sensor loaded at guest " << guest.back()
        << " s, wall " << wall.back() << " s\n";
  }
  ASSIGN_OR_RETURN((*out)["boot_to_sensor_guest_s_" + kernel], Median(guest));
  ASSIGN_OR_RETURN((*out)["boot_to_sensor_wall_s_" + kernel], Median(wall));
  if (!bootmgr.empty()) {
    ASSIGN_OR_RETURN((*out)["boot_to_bootmgr_guest_s_" + kernel], Median(bootmgr));
  }
  return Status::Ok();
}

// One boot-looping guest: wall time between consecutive kPanicked events.
Status MeasureCrashCycle(const BootBenchOptions& o, const std::string& kernel, Backend* backend,
                         EventPump& pump, const GuestImage& image, const Disks& disks, json* out,
                         std::ostream& log) {
  ASSIGN_OR_RETURN(Host * host, backend->CreateHost(Spec(image, "loop", disks.looping)));
  const auto t0 = Clock::now();
  RETURN_IF_ERROR(host->Start());
  std::vector<Clock::time_point> panics;
  Status waited;
  for (int i = 0; i <= o.crash_cycles && waited.ok(); ++i) {
    waited = pump.Until(Deadline(kernel, 60), "panic " + std::to_string(i + 1) + " of the loop",
                        [&](const HostEvent& e) {
                          if (e.host_id != "loop" || e.kind != HostEventKind::kPanicked) {
                            return false;
                          }
                          panics.push_back(e.wall);
                          return true;
                        });
  }
  Status off = PowerOffAndDrain(host, pump);
  RETURN_IF_ERROR(waited);
  RETURN_IF_ERROR(off);
  std::vector<double> cycles;
  for (size_t i = 1; i < panics.size(); ++i)
    cycles.push_back(SecondsSince(panics[i - 1], panics[i]));
  std::ostringstream list;
  for (double c : cycles) list << " " << c;
  log << "bench: crash cycles " << kernel << " (s):" << list.str() << "\n";
  (*out)["first_crash_wall_s_" + kernel] = SecondsSince(t0, panics.front());
  ASSIGN_OR_RETURN((*out)["crash_cycle_wall_s_" + kernel], Median(cycles));
  return Status::Ok();
}

// 16 boot-looping guests started together: wall time until each has panicked 3 times.
Status MeasureFleet(const std::string& kernel, Backend* backend, EventPump& pump,
                    const GuestImage& image, const Disks& disks, json* out, std::ostream& log) {
  std::vector<Host*> hosts;
  for (int i = 1; i <= kFleetHosts; ++i) {
    std::string id = (i < 10 ? "f0" : "f") + std::to_string(i);
    ASSIGN_OR_RETURN(Host * host, backend->CreateHost(Spec(image, id, disks.looping)));
    hosts.push_back(host);
  }
  const auto t0 = Clock::now();
  for (Host* host : hosts) RETURN_IF_ERROR(host->Start());
  std::map<std::string, int> panics;
  int done = 0;
  Status waited =
      pump.Until(Deadline(kernel, 300), "3 panics of each of 16 guests", [&](const HostEvent& e) {
        if (e.kind != HostEventKind::kPanicked || e.host_id[0] != 'f') return false;
        if (++panics[e.host_id] == kFleetCycles) ++done;
        return done == kFleetHosts;
      });
  const double wall = SecondsSince(t0, Clock::now());
  for (Host* host : hosts) {
    Status off = host->PowerOff();  // the guard's Destroy() also covers early returns
    if (!off.ok()) log << "bench: fleet16 " << kernel << ": " << off.ToString() << "\n";
  }
  if (!waited.ok()) {
    return waited.WithContext(std::to_string(done) + " of 16 guests got there");
  }
  log << "bench: fleet16 " << kernel << ": " << wall << " s\n";
  (*out)["fleet16_3cycles_wall_s_" + kernel] = wall;
  return Status::Ok();
}

Status MeasureKernel(const BootBenchOptions& o, const std::string& kernel, const Disks& disks,
                     const std::string& runtime_root, json* out, std::ostream& log) {
  log << "bench: boot: building the winsim image with the " << kernel << " kernel...\n";
  ASSIGN_OR_RETURN(GuestImage image, BuildImage(o, kernel));
  vm::QemuOptions q;
  q.run_id = "bench-" + kernel + "-" + std::to_string(getpid());
  q.runtime_root = runtime_root;
  ASSIGN_OR_RETURN(std::unique_ptr<Backend> made, vm::MakeQemuBackend(q));
  BackendGuard backend(std::move(made), log);
  EventPump pump(backend.get());

  Status first;
  auto keep = [&](Status s, const std::string& what) {
    if (s.ok()) return;
    log << "bench: boot " << kernel << ": " << what << ": " << s.ToString() << "\n";
    if (first.ok()) first = s.WithContext(kernel + " kernel, " + what);
  };
  log << "bench: boot " << kernel << ": " << o.boots << " healthy boots...\n";
  keep(MeasureBoots(o, kernel, backend.get(), pump, image, disks, out, log), "boot to sensor");
  if (g_stop) return first.ok() ? Status::Cancelled("interrupted") : first;
  log << "bench: boot " << kernel << ": crash loop...\n";
  keep(MeasureCrashCycle(o, kernel, backend.get(), pump, image, disks, out, log), "crash cycle");
  if (g_stop) return first.ok() ? Status::Cancelled("interrupted") : first;
  log << "bench: boot " << kernel << ": 16 guests x 3 crash cycles...\n";
  keep(MeasureFleet(kernel, backend.get(), pump, image, disks, out, log), "fleet16");
  if (pump.accel() == "kvm") (*out)["boot_accel_kvm"] = 1;
  if (pump.accel() == "tcg") (*out)["boot_accel_kvm"] = 0;
  return first;
}

// `images/kernel/build.sh` when its output is cached (median of 3), after making sure it is.
Status MeasureKernelBuild(const BootBenchOptions& o, json* out, std::ostream& log) {
  const std::string build = o.source_dir + "/images/kernel/build.sh";
  RETURN_IF_ERROR(Run({build}, seconds(3 * 3600)).status());
  std::vector<double> cached;
  for (int i = 0; i < 3; ++i) {
    const auto t0 = Clock::now();
    RETURN_IF_ERROR(Run({build}, seconds(600)).status());
    cached.push_back(SecondsSince(t0, Clock::now()));
  }
  ASSIGN_OR_RETURN((*out)["kernel_build_cached_s"], Median(cached));
  if (!o.kernel_scratch) return Status::Ok();

  log << "bench: kernel: building from scratch into a temporary cache (~8 min on an idle "
         "machine)...\n";
  ASSIGN_OR_RETURN(ScratchDir cache, ScratchDir::Make(o.work_dir, "kernel-scratch-"));
  const auto t0 = Clock::now();
  RETURN_IF_ERROR(Run({build, "--cache", cache.path()}, seconds(3 * 3600)).status());
  (*out)["kernel_build_scratch_s"] = SecondsSince(t0, Clock::now());
  return Status::Ok();
}

}  // namespace

void RequestStop() { g_stop = 1; }
bool StopRequested() { return g_stop != 0; }

Status BootSection(const BootBenchOptions& o, std::ostream& log, json* out) {
  if (o.boots < 1 || o.crash_cycles < 1) {
    return Status::InvalidArgument("boot: need at least one boot and one crash cycle");
  }
  if (std::ifstream loadavg("/proc/loadavg"); loadavg) {
    double load = 0;
    if (loadavg >> load) (*out)["boot_loadavg_1m"] = load;
  }
  Status first;
  auto keep = [&](Status s) {
    if (!s.ok() && first.ok()) first = s;
  };
  log << "bench: kernel: timing images/kernel/build.sh...\n";
  Status built = MeasureKernelBuild(o, out, log);
  if (!built.ok()) log << "bench: kernel build: " << built.ToString() << "\n";
  keep(built);

  // Short path: QEMU's unix sockets live below it (108-byte limit).
  ASSIGN_OR_RETURN(ScratchDir scratch, ScratchDir::Make("/tmp", "chaoslab-bench-"));
  ASSIGN_OR_RETURN(Disks disks, MakeDisks(o, scratch.path()));
  for (const std::string& kernel : o.kernels) {
    if (g_stop) break;
    keep(MeasureKernel(o, kernel, disks, scratch.path() + "/rt", out, log));
  }
  if (g_stop && first.ok()) first = Status::Cancelled("interrupted");
  return first;
}

}  // namespace chaoslab::bench
