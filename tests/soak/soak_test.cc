// The fault soak (`make soak`, issue 15; not in CI): a boot-looping fleet on each backend while a
// seeded schedule SIGKILLs QEMUs of the run, stops and continues a libvirtd, fills the run
// folder's file system (a small tmpfs), holds the journal locked from another process, and sends
// malformed requests to the run's dashboard. Then: the lab exited by itself with a documented code;
// every host whose QEMU was killed (or whose hypervisor stayed away) ends `lost` with its reason,
// the others in a normal state; PRAGMA integrity_check is ok; everything the lab acknowledged
// (progress lines, events pushed to the dashboard) is in the journal; `chaoslab gc` leaves nothing;
// the dashboard answered valid requests throughout. Prints the schedule as it goes and a summary
// (also written to <build>/soak/summary-<backend>.txt).
//
// Needs root: the tmpfs is mounted in a private mount namespace that main() makes for this
// process (and what it starts), so no mount outlives the test; libvirtd instances as in
// libvirt_test. Knobs (environment): SOAK_MINUTES (both backends' soaks together, default 26),
// SOAK_SEED (default 15), SOAK_TMPFS_MIB (default 160).
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "tests/integration/lab_harness.h"
#include "tests/integration/libvirt_hypervisors.h"
#include "tests/soak/dashboard_abuse.h"
#include "tests/soak/fault_schedule.h"
#include "tests/soak/soak_checks.h"

namespace chaoslab::soak {
namespace {

using namespace std::chrono_literals;
using chaoslab::testing::Eventually;
using chaoslab::testing::Hypervisors;
using chaoslab::testing::LabHarness;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

// Set by main(): whether this process has its own mount namespace (the tmpfs goes there).
std::string g_namespace_error = "main() did not run";

int EnvInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

// A tmpfs over `dir` in this process's private mount namespace; unmounted on destruction (and
// gone with the namespace whatever happens).
class Tmpfs {
 public:
  Tmpfs(const fs::path& dir, int mib) : dir_(dir) {
    fs::create_directories(dir);
    const std::string opts = fmt::format("size={}m,mode=0700", mib);
    if (::mount("soak-tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, opts.c_str()) != 0) {
      error_ = "mount tmpfs on " + dir.string() + ": " + std::strerror(errno);
    }
  }
  ~Tmpfs() {
    if (error_.empty()) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  const std::string& error() const { return error_; }

 private:
  fs::path dir_;
  std::string error_;
};

// The run's QEMU processes: pid → host, from their command lines.
std::map<pid_t, std::string> RunQemus(const std::string& run_id, bool libvirt) {
  std::map<pid_t, std::string> out;
  // QEMU backend: -name chaoslab:<run>:<host>; libvirt: guest=chaoslab-<run>-<host>.
  const std::string tag = libvirt ? "chaoslab-" + run_id + "-" : "chaoslab:" + run_id + ":";
  const std::regex host_re(tag + "([A-Za-z0-9_-]+)");
  for (pid_t pid : LabHarness::Processes("qemu-system", tag)) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/cmdline");
    std::string cmd((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    std::smatch m;
    if (std::regex_search(cmd, m, host_re)) out[pid] = m[1];
  }
  return out;
}

// "placed ws-711-01 on hypervisor hv2" lines of the run's progress.
std::map<std::string, std::string> Placement(const std::string& err) {
  std::map<std::string, std::string> out;
  static const std::regex re("placed (\\S+) on hypervisor (\\S+)");
  for (std::sregex_iterator it(err.begin(), err.end(), re), end; it != end; ++it)
    out[(*it)[1]] = (*it)[2];
  return out;
}

// A string field of a JSON object; "" when it is missing or not a string (null, say).
std::string Str(const json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
}

// A host's final figures as `chaoslab run --json` printed them.
struct HostEnd {
  std::string state, why;
};

class Soak {
 public:
  explicit Soak(bool libvirt)
      : libvirt_(libvirt),
        name_(libvirt ? "libvirt" : "qemu"),
        length_(std::max(120, EnvInt("SOAK_MINUTES", 26) * 60 / 2)),
        seed_(static_cast<uint64_t>(EnvInt("SOAK_SEED", 15))) {}

  void Run();

 private:
  template <typename... A>
  void Log(fmt::format_string<A...> f, A&&... a) {
    const double t = std::chrono::duration<double>(Clock::now() - t0_).count();
    const std::string line =
        fmt::format("[soak {} +{:6.1f}s] ", name_, t) + fmt::format(f, std::forward<A>(a)...);
    std::lock_guard<std::mutex> lock(log_mu_);
    std::cout << line << std::endl;
  }
  double Since() const { return std::chrono::duration<double>(Clock::now() - t0_).count(); }
  // Whether chaoslab still runs (a zombie does not: it is reaped by LabHarness::Wait later).
  bool LabRunning() const {
    std::ifstream stat("/proc/" + std::to_string(pid_) + "/stat");
    std::string line;
    std::getline(stat, line);
    const size_t paren = line.rfind(')');
    return !exited_ && paren != std::string::npos && paren + 2 < line.size() &&
           line[paren + 2] != 'Z';
  }

  void DoFault(const Fault& f);
  void KillQemu(const Fault& f);
  void StopLibvirtd(const Fault& f);
  void FillDisk(const Fault& f);
  void LockJournal(const Fault& f);
  void Abuse();  // the dashboard thread: malformed requests and probes until abuse_stop_
  void CheckAndReport(int exit_code);
  void Summarise();

  const bool libvirt_;
  const std::string name_;
  const int length_;  // seconds of soak (the run's --max-wall)
  const uint64_t seed_;
  Clock::time_point t0_ = Clock::now();
  std::mutex log_mu_;

  LabHarness lab_;
  std::optional<Tmpfs> tmpfs_;
  std::unique_ptr<Hypervisors> hvs_;
  std::string inventory_;
  pid_t pid_ = -1;
  bool exited_ = false;
  std::string run_id_;
  int port_ = 0;
  std::string token_;
  std::vector<std::string> hosts_;

  // What happened, for the checks and the summary.
  std::vector<std::string> schedule_;      // the schedule as it happened
  std::map<std::string, int> faults_;      // kind → times done
  std::map<std::string, double> killed_;   // host → when its QEMU was killed
  std::map<std::string, double> hv_gone_;  // hypervisor → when a stop past the keepalive began
  int hung_ = -1;                          // the hypervisor stopped until the run ended
  std::string hung_line_;
  std::vector<std::pair<double, double>> fills_;            // [from, to] while the disk was full
  std::vector<std::string> fault_problems_;                 // a fault that could not be carried out
  std::map<std::string, std::map<Outcome, int>> requests_;  // kind → outcome → count
  std::map<Outcome, int> probes_;
  std::vector<std::string> bad_answers_;  // malformed requests with no answer or a 5xx
  std::atomic<bool> abuse_stop_{false};
  std::unique_ptr<FeedWatcher> feed_;
  std::vector<std::string> summary_;
};

void Soak::Run() {
  ASSERT_EQ(geteuid(), 0u) << "the soak needs root (a tmpfs, libvirtd instances); not run";
  ASSERT_EQ(g_namespace_error, "") << "no private mount namespace for the tmpfs";
  ASSERT_TRUE(lab_.ImageBuilt()) << "guest image not built: run `make image`";
  if (libvirt_) {
    const std::string why = Hypervisors::Unavailable();
    ASSERT_EQ(why, "") << "libvirt soak not possible here: " << why;
  }
  tmpfs_.emplace(lab_.runtime_root(), EnvInt("SOAK_TMPFS_MIB", 160));
  ASSERT_EQ(tmpfs_->error(), "");
  if (libvirt_) {
    // After the tmpfs: each daemon's mount namespace is a copy of ours, so its QEMUs see it.
    hvs_ = std::make_unique<Hypervisors>(lab_.dir() / "hv", 2);
    ASSERT_TRUE(hvs_->ok()) << hvs_->error();
    inventory_ = hvs_->WriteInventory(3);
  }

  const ScheduleOptions options =
      DefaultOptions(libvirt_, std::chrono::seconds(length_), seed_ + (libvirt_ ? 1 : 0));
  const std::vector<Fault> schedule = MakeSchedule(options);
  std::vector<std::string> args = {"run",
                                   lab_.scenario("soak"),
                                   "--backend",
                                   name_,
                                   "--dashboard",
                                   "--seed",
                                   std::to_string(seed_),
                                   "--max-wall",
                                   std::to_string(length_),
                                   "--json"};  // the journal: CHAOSLAB_JOURNAL (LabHarness)
  if (libvirt_) args.insert(args.end(), {"--inventory", inventory_});
  t0_ = Clock::now();
  pid_ = lab_.Start(args);
  Log("chaoslab {} (pid {}), seed {}, {} s, runtime root on a {} MiB tmpfs; {} faults planned",
      fmt::join(args, " "), pid_, options.seed, length_, EnvInt("SOAK_TMPFS_MIB", 160),
      schedule.size());
  // The dashboard's address comes first, the run's id once its hosts are planned.
  ASSERT_TRUE(lab_.WaitForStderr(pid_, ": scenario soak (", 120s)) << lab_.StderrOf(pid_);
  const std::string err = lab_.StderrOf(pid_);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      err, m,
      std::regex(R"(dashboard: http://127\.0\.0\.1:(\d+)/\?token=([0-9a-f]{32}) \(trainee\))")))
      << err;
  port_ = std::stoi(m[1]);
  token_ = m[2];
  run_id_ = LabHarness::RunIdFrom(err);
  ASSERT_FALSE(run_id_.empty()) << err;
  for (int i = 1; i <= 5; ++i) hosts_.push_back(fmt::format("ws-711-{:02}", i));
  hosts_.push_back("ws-710-01");
  feed_ = std::make_unique<FeedWatcher>(port_, token_);
  std::thread abuse([this] { Abuse(); });
  const bool looping = lab_.WaitForStderr(pid_, "-> remediating", 240s);
  Log("run {} on port {}; the fleet {} boot-looping", run_id_, port_,
      looping ? "is" : "is NOT (yet)");
  EXPECT_TRUE(looping) << "no host reached the runbook's reboot loop in 240 s";

  for (const Fault& f : schedule) {
    while (Clock::now() < t0_ + f.at && LabRunning()) std::this_thread::sleep_for(100ms);
    if (!LabRunning()) {
      fault_problems_.push_back(
          fmt::format("chaoslab ended at +{:.0f} s, before {}", Since(), Describe(f)));
      break;
    }
    DoFault(f);
  }
  // The dashboard goes away with the run: stop asking before its wall limit.
  while (Clock::now() < t0_ + std::chrono::seconds(length_) - 30s && LabRunning())
    std::this_thread::sleep_for(200ms);
  abuse_stop_ = true;
  abuse.join();
  Log("schedule done; waiting for chaoslab to end by itself (--max-wall {})", length_);
  // Its wall limit counts from the engine's start, a little after ours; then it stops in order.
  const auto left = std::chrono::duration_cast<std::chrono::seconds>(
      t0_ + std::chrono::seconds(length_ + 360) - Clock::now());
  const int code = lab_.Wait(pid_, std::max(left, std::chrono::seconds(1)));
  exited_ = true;
  feed_->Stop();
  Log("chaoslab exited with code {} at +{:.0f} s", code, Since());
  if (hung_ >= 0) {
    const bool continued = hvs_->Continue(hung_);
    schedule_.push_back(hung_line_ + fmt::format("; {} at +{:.1f} s, after chaoslab {}",
                                                 continued ? "continued" : "SIGCONT failed",
                                                 Since(), code >= 0 ? "exited" : "gave up"));
    Log("stop-libvirtd {}: continued", hvs_->name(hung_));
  }
  CheckAndReport(code);
}

void Soak::DoFault(const Fault& f) {
  faults_[std::string(FaultName(f.kind))]++;
  switch (f.kind) {
    case FaultKind::kKillQemu:
      return KillQemu(f);
    case FaultKind::kStopLibvirtd:
      return StopLibvirtd(f);
    case FaultKind::kFillDisk:
      return FillDisk(f);
    case FaultKind::kLockJournal:
      return LockJournal(f);
  }
}

void Soak::KillQemu(const Fault& f) {
  const auto qemus = RunQemus(run_id_, libvirt_);
  if (qemus.empty()) {
    fault_problems_.push_back(fmt::format("+{:.0f} s kill-qemu: no QEMU of the run", Since()));
    Log("kill-qemu: no QEMU of run {} to kill", run_id_);
    return;
  }
  auto it = qemus.begin();
  std::advance(it, f.pick % qemus.size());
  const auto [pid, host] = *it;
  const int rc = ::kill(pid, SIGKILL);
  killed_[host] = Since();
  const std::string what =
      fmt::format("kill-qemu {} (pid {}, one of {}){}", host, pid, qemus.size(),
                  rc == 0 ? "" : std::string(": ") + std::strerror(errno));
  const std::string line = fmt::format("+{:6.1f}s {}", killed_[host], what);
  schedule_.push_back(line);
  Log("{}", what);
  const bool gone = Eventually([pid = pid] { return ::kill(pid, 0) != 0; }, 10s);
  if (!gone) fault_problems_.push_back(line + ": the process did not go");
}

void Soak::StopLibvirtd(const Fault& f) {
  const std::string hv = hvs_->name(f.target);
  const pid_t daemon = hvs_->pid(f.target);
  std::string comm;
  std::getline(std::ifstream("/proc/" + std::to_string(daemon) + "/comm"), comm);
  const std::string what =
      f.until_end
          ? fmt::format("stop-libvirtd {} ({} pid {}) until the run has ended", hv, comm, daemon)
          : fmt::format("stop-libvirtd {} ({} pid {}) for {:.1f} s ({} the keepalive)", hv, comm,
                        daemon, f.hold.count() / 1000.0, f.past_keepalive ? "past" : "within");
  std::string line = fmt::format("+{:6.1f}s {}", Since(), what);
  if (!hvs_->Stop(f.target)) {
    fault_problems_.push_back(line + ": SIGSTOP failed");
    schedule_.push_back(line + ": SIGSTOP failed");
    return;
  }
  Log("{}", what);
  if (f.past_keepalive) hv_gone_.emplace(hv, Since());  // the first such stop cost the hosts
  if (f.until_end) {  // continued by Run() once chaoslab has exited
    hung_ = f.target;
    hung_line_ = line;
    return;
  }
  std::this_thread::sleep_for(f.hold);
  const bool continued = hvs_->Continue(f.target);
  line += continued ? "; continued" : "; SIGCONT failed";
  schedule_.push_back(line);
  Log("stop-libvirtd {}: continued after {:.1f} s", hv, f.hold.count() / 1000.0);
}

void Soak::FillDisk(const Fault& f) {
  const fs::path file = fs::path(lab_.runtime_root()) / "soak-fill";
  const double from = Since();
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    fault_problems_.push_back(fmt::format("+{:.0f} s fill-disk: {}", from, std::strerror(errno)));
    return;
  }
  const std::string chunk(1 << 20, 'f');
  size_t written = 0;
  int err = 0;
  for (;;) {
    const ssize_t n = ::write(fd, chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      err = n < 0 ? errno : ENOSPC;
      break;
    }
    written += static_cast<size_t>(n);
  }
  struct statvfs st {};
  ::statvfs(lab_.runtime_root().c_str(), &st);
  const std::string what =
      fmt::format("fill-disk: {:.1f} MiB written until {} ({} KiB left), held {:.1f} s",
                  written / 1048576.0, err == ENOSPC ? "ENOSPC" : std::strerror(err),
                  st.f_bavail * st.f_frsize / 1024, f.hold.count() / 1000.0);
  const std::string line = fmt::format("+{:6.1f}s {}", from, what);
  Log("{}", what);
  std::this_thread::sleep_for(f.hold);
  ::close(fd);
  ::unlink(file.c_str());
  fills_.push_back({from, Since()});
  schedule_.push_back(line);
  Log("fill-disk: freed");
  if (err != ENOSPC) fault_problems_.push_back(line + ": not ENOSPC");
}

void Soak::LockJournal(const Fault& f) {
  int out[2];
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  // Made before fork(): other threads run, so the child only calls dup2 and exec.
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  const std::string ms = std::to_string(f.hold.count());
  const std::string journal = lab_.journal();
  const double from = Since();
  const pid_t child = ::fork();
  if (child == 0) {
    ::dup2(out[1], 1);
    execl(self.c_str(), self.c_str(), "--hold-journal-lock", journal.c_str(), ms.c_str(), nullptr);
    _exit(127);
  }
  ::close(out[1]);
  // "locked" once BEGIN EXCLUSIVE succeeded (a writer of the lab may hold it a moment first).
  char buf[16] = {};
  ssize_t n;
  do {
    n = ::read(out[0], buf, sizeof buf - 1);
  } while (n < 0 && errno == EINTR);
  ::close(out[0]);
  const double locked_at = Since();
  Log("lock-journal: pid {} holds BEGIN EXCLUSIVE (after {:.1f} s) for {:.1f} s", child,
      locked_at - from, f.hold.count() / 1000.0);
  int status = 0;
  ::waitpid(child, &status, 0);
  const bool ok = n > 0 && std::string(buf).starts_with("locked") && WIFEXITED(status) &&
                  WEXITSTATUS(status) == 0;
  const std::string what =
      fmt::format("lock-journal: BEGIN EXCLUSIVE from pid {} after {:.1f} s, held {:.1f} s{}",
                  child, locked_at - from, Since() - locked_at, ok ? "" : " (FAILED to lock)");
  const std::string line = fmt::format("+{:6.1f}s {}", from, what);
  schedule_.push_back(line);
  Log("lock-journal: released");
  if (!ok) fault_problems_.push_back(line);
}

void Soak::Abuse() {
  std::mt19937_64 rng(seed_ * 7919 + (libvirt_ ? 1 : 0));
  DashboardAbuser abuser(port_, token_, hosts_);
  const auto& kinds = DashboardAbuser::Kinds();
  auto next_probe = Clock::now();
  auto next_reap = Clock::now() + 10s;
  auto record = [&](const std::string& kind, const Outcome& o) {
    requests_[kind][o]++;
    const bool server_error = o.size() == 3 && o[0] == '5' && o != "503";
    if (o == "no-answer" || o == "refused" || o == "still-open" || server_error) {
      bad_answers_.push_back(fmt::format("+{:.0f} s {}: {}", Since(), kind, o));
      Log("dashboard: {} -> {}", kind, o);
    }
  };
  while (!abuse_stop_) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500 + rng() % 1500));
    if (abuse_stop_) break;
    if (Clock::now() >= next_probe) {
      const Outcome o = abuser.Probe();
      probes_[o]++;
      if (o != "200") Log("dashboard: a valid request got {}", o);
      next_probe += 2s;
    }
    const std::string& kind = kinds[rng() % kinds.size()];
    record(kind, abuser.Send(kind, rng));
    if (Clock::now() >= next_reap) {
      for (const Outcome& o : abuser.ReapHalfOpen(40s)) record("half-open (40 s later)", o);
      next_reap += 10s;
    }
  }
  for (const Outcome& o : abuser.ReapHalfOpen(0s)) requests_["half-open (at the end)"][o]++;
  probes_[abuser.Probe()]++;  // one more, after the last burst
}

void Soak::CheckAndReport(int code) {
  const std::string err = lab_.StderrOf(pid_), out = lab_.StdoutOf(pid_);
  // 1. It exited by itself, with a documented code (0 here: nothing should make it fail).
  EXPECT_GE(code, 0) << "chaoslab did not end by itself within its wall limit + 6 min";
  EXPECT_LT(code, 128) << "chaoslab died of signal " << code - 128;
  EXPECT_EQ(code, 0) << err.substr(err.size() > 4000 ? err.size() - 4000 : 0);
  if (code < 0) {
    ::kill(pid_, SIGTERM);
    lab_.Wait(pid_, 60s);
  }
  json run = json::parse(out, nullptr, false);
  std::map<std::string, HostEnd> ends;
  if (run.is_object() && run.contains("hosts")) {
    for (const auto& h : run["hosts"]) ends[Str(h, "id")] = {Str(h, "state"), Str(h, "failed_why")};
  }
  EXPECT_FALSE(ends.empty()) << "no JSON result on stdout: " << out.substr(0, 2000);
  const std::string status = Str(run, "status");
  EXPECT_EQ(status, "timeout") << "the soak's run ends at its wall limit";

  // 2. Nothing left running by the lab itself, before any gc; but a hypervisor that hung until
  // the end keeps what the lab could not reach there (README: gc removes it once it is back).
  const auto placed = Placement(err);
  const std::string hung = hung_ >= 0 ? hvs_->name(hung_) : "";
  int left_qemus = 0, left_on_hung = 0;
  for (const auto& [pid, host] : RunQemus(run_id_, libvirt_)) {
    (placed.count(host) && placed.at(host) == hung ? left_on_hung : left_qemus)++;
  }
  std::vector<std::string> left_domains;
  if (libvirt_) {
    for (int i = 0; i < 2; ++i)
      for (const auto& d : hvs_->Domains(i)) {
        if (d.find("chaoslab-" + run_id_) == std::string::npos) continue;
        if (hvs_->name(i) == hung) {
          left_on_hung++;
        } else {
          left_domains.push_back(d);
        }
      }
  }
  const fs::path run_dir = fs::path(lab_.runtime_root()) / run_id_;
  const bool left_dir = fs::exists(run_dir);
  EXPECT_EQ(left_qemus, 0) << left_qemus << " QEMU(s) of the run still running";
  EXPECT_TRUE(left_domains.empty()) << left_domains.size() << " domain(s) of the run left";

  // 3. The journal is intact. Hosts: killed ones (and those of a hypervisor that stayed away)
  // lost with a reason, soon after.
  const JournalView journal = ReadJournal(lab_.journal(), run_id_);
  EXPECT_EQ(journal.error, "");
  EXPECT_EQ(journal.integrity, "ok");
  std::map<std::string, double> lost_at;  // host → when the dashboard pushed its "-> lost"
  for (const auto& [host, when] : feed_->LostSeen())
    lost_at[host] = std::chrono::duration<double>(when - t0_).count();
  std::vector<std::string> lost_lines, unexplained;
  std::map<std::string, int> end_states;
  for (const auto& [id, e] : ends) {
    end_states[e.state]++;
    const bool killed = killed_.count(id) > 0;
    const bool hv_gone = placed.count(id) && hv_gone_.count(placed.at(id)) > 0;
    if (e.state == "lost") {
      // How soon: from the fault to the "-> lost" event on the dashboard's feed.
      const double fault_at = killed ? killed_[id] : hv_gone ? hv_gone_[placed.at(id)] : -1;
      std::string after;
      if (lost_at.count(id)) {
        after = fault_at >= 0
                    ? fmt::format(" [lost {:.1f} s after the fault]", lost_at[id] - fault_at)
                    : fmt::format(" [lost at +{:.1f} s]", lost_at[id]);
        if (fault_at >= 0) {
          EXPECT_LT(lost_at[id] - fault_at, 60) << id << " was noticed late";
        }
      }
      lost_lines.push_back(fmt::format("{}: {}{}", id, e.why.substr(0, e.why.find('\n')), after));
      EXPECT_FALSE(e.why.empty()) << id << " is lost without a reason";
      // A relaunch that found the disk full is lost for a reason that says so, while it was.
      bool while_full = false;
      for (const auto& [from, to] : fills_) {
        while_full |= lost_at.count(id) && lost_at[id] >= from && lost_at[id] <= to + 10;
      }
      const bool no_space = e.why.find(std::strerror(ENOSPC)) != std::string::npos;
      if (!killed && !hv_gone && !(no_space && while_full)) {
        unexplained.push_back(id + ": " + e.why);
      }
    } else {
      EXPECT_FALSE(killed) << id << "'s QEMU was killed at +" << killed_[id] << " s, yet it ended "
                           << e.state;
      const std::set<std::string> normal = {"remediating", "healthy", "boot-loop", "crashed",
                                            "booting"};
      EXPECT_TRUE(normal.count(e.state)) << id << " ended " << e.state << ": " << e.why;
    }
  }
  for (const auto& [hv, at] : hv_gone_) {
    for (const auto& [id, on] : placed) {
      if (on == hv && ends.count(id)) {
        EXPECT_EQ(ends[id].state, "lost") << id << " on " << hv << ", stopped past the keepalive";
      }
    }
  }
  EXPECT_TRUE(unexplained.empty()) << "lost for no fault of the soak:\n"
                                   << fmt::format("{}", fmt::join(unexplained, "\n"));

  // 4. The journal: the final states as printed, every acknowledged event in it.
  auto report = lab_.Run({"report", run_id_, "--json"});
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->exit_code, 0) << report->err;
  json again = json::parse(report->out, nullptr, false);
  if (again.is_object() && again.contains("hosts")) {
    for (const auto& h : again["hosts"]) {
      const std::string id = Str(h, "id");
      EXPECT_EQ(Str(h, "state"), ends[id].state) << id << ": journal vs printed result";
    }
  }
  std::set<std::string> host_set(hosts_.begin(), hosts_.end());
  const auto acks = ParseProgress(err, host_set);
  const auto missing_acks = UnjournaledProgress(acks, journal.events);
  for (size_t i = 0; i < std::min<size_t>(missing_acks.size(), 10); ++i)
    ADD_FAILURE() << "acknowledged on the progress output, not in the journal: "
                  << missing_acks[i].line;
  const auto pushed = feed_->Events();
  const auto missing_pushes = UnjournaledPushes(pushed, journal.events);
  for (size_t i = 0; i < std::min<size_t>(missing_pushes.size(), 10); ++i)
    ADD_FAILURE() << "pushed to the dashboard, not in the journal: " << missing_pushes[i].host
                  << " " << missing_pushes[i].kind << " " << missing_pushes[i].detail << " @"
                  << missing_pushes[i].wall_us << " us";
  std::map<std::string, int> kinds;
  for (const auto& e : journal.events) kinds[e.kind]++;

  // 5. The dashboard answered every valid request, and every malformed one somehow.
  int probes = 0;
  for (const auto& [o, n] : probes_) probes += n;
  EXPECT_GT(probes, 0);
  EXPECT_EQ(probes_["200"], probes) << "valid requests that were not answered 200";
  EXPECT_TRUE(bad_answers_.empty()) << fmt::format("{}", fmt::join(bad_answers_, "\n"));
  EXPECT_TRUE(fault_problems_.empty()) << fmt::format("{}", fmt::join(fault_problems_, "\n"));

  // 6. gc leaves nothing.
  std::vector<std::string> gc_args = {"gc"};
  if (libvirt_) gc_args.insert(gc_args.end(), {"--inventory", inventory_});
  auto gc = lab_.Run(gc_args);
  ASSERT_TRUE(gc.ok());
  EXPECT_EQ(gc->exit_code, 0) << gc->err;
  EXPECT_TRUE(Eventually([&] { return RunQemus(run_id_, libvirt_).empty(); }, 15s));
  std::vector<std::string> after_gc;
  if (libvirt_) {
    for (int i = 0; i < 2; ++i)
      for (const auto& d : hvs_->Domains(i))
        if (d.find("chaoslab-" + run_id_) != std::string::npos) after_gc.push_back(d);
  }
  EXPECT_TRUE(after_gc.empty()) << fmt::format("{}", fmt::join(after_gc, ", "));
  std::vector<std::string> in_root;
  for (const auto& e : fs::directory_iterator(lab_.runtime_root()))
    in_root.push_back(e.path().filename().string());
  EXPECT_TRUE(in_root.empty()) << "left in the runtime root: "
                               << fmt::format("{}", fmt::join(in_root, ", "));

  // The summary.
  auto& s = summary_;
  s.push_back(fmt::format(
      "soak {}: seed {} (schedule seed {}), {} s (--max-wall), run {}, exit "
      "code {} (status {}), {:.0f} s wall from start to checks",
      name_, seed_, seed_ + (libvirt_ ? 1 : 0), length_, run_id_, code, status, Since()));
  std::vector<std::string> fk;
  for (const auto& [k, n] : faults_) fk.push_back(fmt::format("{} {}", k, n));
  s.push_back(fmt::format("faults: {}", fmt::join(fk, ", ")));
  s.push_back("schedule:");
  for (const auto& l : schedule_) s.push_back("  " + l);
  std::vector<std::string> st;
  for (const auto& [k, n] : end_states) st.push_back(fmt::format("{} {}", k, n));
  s.push_back(
      fmt::format("hosts: {} ({}); lost {}:", ends.size(), fmt::join(st, ", "), lost_lines.size()));
  for (const auto& l : lost_lines) s.push_back("  " + l.substr(0, 220));
  std::vector<std::string> kk;
  for (const auto& [k, n] : kinds) kk.push_back(fmt::format("{} {}", k, n));
  s.push_back(
      fmt::format("events journalled: {} ({})", journal.events.size(), fmt::join(kk, ", ")));
  s.push_back(fmt::format(
      "acknowledged: {} on the progress output ({} not in the journal), {} pushed to the "
      "dashboard feed and seen ({} not in the journal; {} messages, {} connection(s)); "
      "integrity_check: {}",
      acks.size(), missing_acks.size(), pushed.size(), missing_pushes.size(), feed_->messages(),
      feed_->connects(), journal.integrity));
  int sent = 0;
  for (const auto& [k, m2] : requests_)
    for (const auto& [o, n] : m2)
      if (!k.starts_with("half-open (")) sent += n;
  std::vector<std::string> pr;
  for (const auto& [o, n] : probes_) pr.push_back(fmt::format("{} x{}", o, n));
  s.push_back(fmt::format("dashboard: {} malformed requests sent, {} valid requests ({})", sent,
                          probes, fmt::join(pr, ", ")));
  for (const auto& [k, m2] : requests_) {
    std::vector<std::string> os;
    for (const auto& [o, n] : m2) os.push_back(fmt::format("{} x{}", o, n));
    s.push_back(fmt::format("  {:<24} {}", k, fmt::join(os, ", ")));
  }
  s.push_back(fmt::format(
      "left after the lab exited: {} QEMU(s), {} domain(s), run folder {}{}; after gc: {} "
      "domain(s), {} entr(y/ies) in the runtime root",
      left_qemus, left_domains.size(), left_dir ? "yes" : "no",
      hung.empty() ? ""
                   : fmt::format(" (and {} QEMU(s)/domain(s) on {}, hung at the end: for gc)",
                                 left_on_hung, hung),
      after_gc.size(), in_root.size()));
  if (!fault_problems_.empty()) {
    s.push_back("faults that could not be carried out:");
    for (const auto& p : fault_problems_) s.push_back("  " + p);
  }
  Summarise();
}

void Soak::Summarise() {
  const char* build = std::getenv("CHAOSLAB_BUILD_DIR");
  const fs::path dir = fs::path(build && *build ? build : "build") / "soak";
  fs::create_directories(dir);
  std::ofstream f(dir / ("summary-" + name_ + ".txt"));
  for (const auto& l : summary_) {
    f << l << "\n";
    std::cout << l << "\n";
  }
  std::cout << std::flush;
  // The run's own output, kept for a look afterwards.
  std::ofstream(dir / ("chaoslab-" + name_ + ".err")) << lab_.StderrOf(pid_);
  std::ofstream(dir / ("chaoslab-" + name_ + ".json")) << lab_.StdoutOf(pid_);
}

TEST(Soak, QemuBackend) { Soak(false).Run(); }

TEST(Soak, LibvirtBackend) { Soak(true).Run(); }

// The lock holder (another process, as a `sqlite3` shell would be): BEGIN EXCLUSIVE on the
// journal, "locked" on stdout, hold for `ms`, COMMIT.
int HoldJournalLock(const char* path, long ms) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) return 1;
  sqlite3_busy_timeout(db, 60'000);
  if (sqlite3_exec(db, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) != SQLITE_OK) return 2;
  if (::write(1, "locked\n", 7) != 7) return 3;
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  const int rc = sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  return rc == SQLITE_OK ? 0 : 4;
}

}  // namespace
}  // namespace chaoslab::soak

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "--hold-journal-lock")
    return chaoslab::soak::HoldJournalLock(argv[2], std::atol(argv[3]));
  // A private mount namespace for this process and what it starts (chaoslab, libvirtd), before
  // any thread exists: the soak's tmpfs is seen by them and by nobody else, and goes with them.
  if (geteuid() == 0) {
    if (::unshare(CLONE_NEWNS) != 0) {
      chaoslab::soak::g_namespace_error = std::string("unshare: ") + std::strerror(errno);
    } else if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      chaoslab::soak::g_namespace_error =
          std::string("mount --make-rprivate /: ") + std::strerror(errno);
    } else {
      chaoslab::soak::g_namespace_error = "";
    }
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
