// Real-QEMU tests of the backend (label "vm"): a machine's lifecycle, and the winsim guest booting,
// resetting and crash-looping. They cost a few guest boots under TCG.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <boost/process.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>

#include "lab/backend/lab_priority.h"
#include "lab/vm/qemu_accel.h"
#include "lab/vm/qemu_backend.h"
#include "lab/vm/test_util.h"

namespace chaoslab::vm {
namespace {

namespace bp = boost::process;
namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::EventLog;
using testing::TempDir;
using testing::WriteFile;

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

pid_t ReadPid(const std::string& path) {
  std::ifstream in(path);
  long pid = 0;
  in >> pid;
  return static_cast<pid_t>(pid);
}

QemuOptions Options(const TempDir& dir, const std::string& run_id) {
  QemuOptions o;
  o.run_id = run_id;
  o.runtime_root = dir.path() + "/rt";
  return o;  // accel "auto": exercised here, where QEMU really runs
}

// Debian's kernel, for machines whose guest does not matter; "" when none is installed.
std::string DebianKernel() {
  std::string kernel;
  for (const auto& e : fs::directory_iterator("/boot")) {
    if (e.path().filename().string().rfind("vmlinuz-", 0) == 0) kernel = e.path().string();
  }
  return kernel;
}

// Host "h1", offline: `kernel` with an empty initrd and a blank 1 MiB disk (written in `dir`), so
// no root file system: the kernel panics.
HostSpec BareSpec(const TempDir& dir, const std::string& kernel) {
  WriteFile(dir.path() + "/initrd", "");
  WriteFile(dir.path() + "/base.img", std::string(1 << 20, '\0'));
  HostSpec spec;
  spec.id = "h1";
  spec.kernel = kernel;
  spec.initrd = dir.path() + "/initrd";
  spec.base_disk = dir.path() + "/base.img";
  spec.network.online = false;
  return spec;
}

TEST(AccelTest, AutoPicksAWorkingAcceleratorAndCachesIt) {
  if (bp::search_path("qemu-system-x86_64").empty()) GTEST_SKIP() << "QEMU is not installed";
  // A QEMU that counts its launches: the cached answer launches nothing.
  TempDir dir;
  const std::string qemu = dir.path() + "/counting-qemu";
  WriteFile(qemu, "#!/bin/sh\necho launch >> '" + dir.path() +
                      "/launches'\n"
                      "exec qemu-system-x86_64 \"$@\"\n");
  fs::permissions(qemu, fs::perms::owner_all);
  auto launches = [&] {
    std::ifstream in(dir.path() + "/launches");
    return std::count(std::istreambuf_iterator<char>(in), {}, '\n');
  };
  auto first = ResolveAccel(qemu, "auto");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_TRUE(*first == "kvm" || *first == "tcg") << *first;
  const auto probed = launches();
  // Without /dev/kvm (TCG-only machines like CI) the answer needs no probe at all.
  if (access("/dev/kvm", R_OK | W_OK) == 0) {
    EXPECT_GE(probed, 1) << "the first answer probes QEMU";
  }
  EXPECT_EQ(*ResolveAccel(qemu, "auto"), *first);
  EXPECT_EQ(launches(), probed) << "the second answer is cached: no QEMU launched";
  std::cout << "accel auto -> " << *first << "\n";
}

// A machine's lifecycle without caring what the guest does: Debian's kernel and an empty initrd.
TEST(QemuLifecycleTest, PauseResumeResetLostRestartPowerOff) {
  const std::string kernel = DebianKernel();
  if (kernel.empty()) GTEST_SKIP() << "no /boot/vmlinuz-*: apt-get install linux-image-amd64";
  TempDir dir;
  auto backend = MakeQemuBackend(Options(dir, "life"));
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  HostSpec spec = BareSpec(dir, kernel);
  Host* host = *(*backend)->CreateHost(spec);
  EventLog log(backend->get());
  const std::string pid_file = dir.path() + "/rt/life/h1/qemu.pid";

  ASSERT_TRUE(host->Start().ok());
  EXPECT_EQ(host->Start().code(), ErrorCode::kFailedPrecondition);
  ASSERT_EQ(log.WaitKind("h1", HostEventKind::kStarted, seconds(5)), 0) << log.Dump();
  pid_t pid = ReadPid(pid_file);
  ASSERT_GT(pid, 0);
  std::ifstream cmdline("/proc/" + std::to_string(pid) + "/cmdline");
  std::string argv((std::istreambuf_iterator<char>(cmdline)), std::istreambuf_iterator<char>());
  EXPECT_NE(argv.find("chaoslab:life:h1"), std::string::npos);

  ASSERT_TRUE(host->Pause().ok());
  int stopped = log.WaitKind("h1", HostEventKind::kStopped, seconds(5));
  ASSERT_GE(stopped, 0) << log.Dump();
  ASSERT_TRUE(host->Resume().ok());
  ASSERT_GE(log.WaitKind("h1", HostEventKind::kResumed, seconds(5), stopped), 0) << log.Dump();
  ASSERT_TRUE(host->Reset().ok());
  int reset = log.WaitFor(
      [](const HostEvent& e) { return e.kind == HostEventKind::kReset && e.detail == "host"; },
      seconds(5));
  ASSERT_GE(reset, 0) << log.Dump();
  EXPECT_TRUE(host->SendConsole("hello\r").ok());
  // A reset is a cold reboot: a new QEMU for the same host. A Pause() during the relaunch is kept:
  // the new QEMU reports kStopped once it is up, and runs again after Resume().
  ASSERT_TRUE(host->Pause().ok());
  int parked = log.WaitKind("h1", HostEventKind::kStopped, seconds(10), reset);
  ASSERT_GT(parked, reset) << log.Dump();
  pid_t relaunched = ReadPid(pid_file);
  EXPECT_NE(relaunched, pid);
  EXPECT_NE(kill(pid, 0), 0) << "the previous QEMU is gone";
  pid = relaunched;
  ASSERT_TRUE(host->Resume().ok());
  ASSERT_GT(log.WaitKind("h1", HostEventKind::kResumed, seconds(5), parked), parked) << log.Dump();
  EXPECT_TRUE(host->SendConsole("hello\r").ok());

  // Someone kills QEMU behind our back: the host is lost, once, and can be started again.
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  int lost = log.WaitKind("h1", HostEventKind::kLost, seconds(10));
  ASSERT_GE(lost, 0) << log.Dump();
  EXPECT_NE(log.events[lost].detail.find("signal 9"), std::string::npos) << log.events[lost].detail;
  EXPECT_EQ(host->Reset().code(), ErrorCode::kFailedPrecondition);

  ASSERT_TRUE(host->Start().ok());
  int restarted = log.WaitKind("h1", HostEventKind::kStarted, seconds(5), lost);
  ASSERT_GT(restarted, lost) << log.Dump();
  pid_t pid2 = ReadPid(pid_file);
  EXPECT_NE(pid2, pid);

  ASSERT_TRUE(host->PowerOff().ok());
  int off = log.WaitKind("h1", HostEventKind::kShutdown, seconds(5), restarted);
  ASSERT_GE(off, 0) << log.Dump();
  EXPECT_EQ(log.events[off].detail, "host");
  EXPECT_TRUE(host->PowerOff().ok()) << "idempotent";
  EXPECT_NE(kill(pid2, 0), 0) << "QEMU is gone after PowerOff";
  // Nothing after the power-off: in particular no kLost.
  std::vector<HostEvent> later;
  ASSERT_TRUE((*backend)->PollEvents(milliseconds(300), &later).ok());
  for (const auto& e : later) EXPECT_EQ(e.kind, HostEventKind::kConsoleLine) << e.detail;
  for (size_t i = 0; i < log.events.size(); ++i) {
    if (i != size_t(lost)) {
      EXPECT_NE(log.events[i].kind, HostEventKind::kLost) << log.Dump();
    }
  }

  ASSERT_TRUE(host->Start().ok());
  ASSERT_TRUE((*backend)->Destroy().ok());
  EXPECT_FALSE(fs::exists(dir.path() + "/rt/life"));
}

// Reset() right after a relaunch, again and again: QEMU exits for each reset and sometimes closes
// QMP before its reply to system_reset (and its SHUTDOWN event) got out. That is still a reset:
// Reset() succeeds and the host is relaunched, never lost.
TEST(QemuLifecycleTest, RepeatedResetsNeverLoseTheHost) {
  const std::string kernel = DebianKernel();
  if (kernel.empty()) GTEST_SKIP() << "no /boot/vmlinuz-*: apt-get install linux-image-amd64";
  TempDir dir;
  auto backend = MakeQemuBackend(Options(dir, "resets"));
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  HostSpec spec = BareSpec(dir, kernel);
  spec.kernel_args = {"panic=0"};  // no root file system: the kernel panics and waits, no reset
  Host* host = *(*backend)->CreateHost(spec);
  EventLog log(backend->get());
  ASSERT_TRUE(host->Start().ok());
  ASSERT_EQ(log.WaitKind("h1", HostEventKind::kStarted, seconds(5)), 0) << log.Dump();
  size_t from = 0;
  constexpr int kResets = 12;
  for (int i = 0; i < kResets; ++i) {
    // Pause/Resume first: kStopped comes from the running (relaunched) QEMU, so the Reset() below
    // reaches QEMU itself instead of being absorbed by a relaunch still under way.
    ASSERT_TRUE(host->Pause().ok());
    int stopped = log.WaitKind("h1", HostEventKind::kStopped, seconds(20), from);
    ASSERT_GE(stopped, 0) << "reset " << i << "\n" << log.Dump();
    ASSERT_TRUE(host->Resume().ok());
    int resumed = log.WaitKind("h1", HostEventKind::kResumed, seconds(10), stopped);
    ASSERT_GT(resumed, stopped) << "reset " << i << "\n" << log.Dump();
    Status s = host->Reset();
    ASSERT_TRUE(s.ok()) << "reset " << i << ": " << s.ToString() << "\n" << log.Dump();
    int reset = log.WaitKind("h1", HostEventKind::kReset, seconds(20), resumed);
    ASSERT_GT(reset, resumed) << "reset " << i << "\n" << log.Dump();
    EXPECT_EQ(log.events[reset].detail, "host");
    from = reset + 1;
  }
  int resets = 0;
  for (const auto& e : log.events) {
    EXPECT_NE(e.kind, HostEventKind::kLost) << log.Dump();
    EXPECT_NE(e.kind, HostEventKind::kShutdown) << log.Dump();
    resets += e.kind == HostEventKind::kReset;
  }
  EXPECT_EQ(resets, kResets) << log.Dump();
  ASSERT_TRUE(host->PowerOff().ok());
  ASSERT_TRUE((*backend)->Destroy().ok());
}

// The engine's "boot into safe mode" is SetBoot + Reset. When the guest had just reset by itself
// (a boot loop), the Reset is absorbed by the relaunch under way, which may have read the boot
// choice already: that QEMU must not run the old choice. A QEMU that takes a second to start
// (a wrapper that sleeps) holds the relaunch open long enough to land in that window every time.
TEST(QemuLifecycleTest, BootChoiceMadeDuringARelaunchAppliesToThatBoot) {
  const std::string kernel = DebianKernel();
  if (kernel.empty()) GTEST_SKIP() << "no /boot/vmlinuz-*: apt-get install linux-image-amd64";
  const std::string qemu = bp::search_path("qemu-system-x86_64").string();
  if (qemu.empty()) GTEST_SKIP() << "QEMU is not installed";
  auto accel = ResolveAccel(qemu, "auto");
  ASSERT_TRUE(accel.ok()) << accel.status().ToString();
  TempDir dir;
  const std::string slow_qemu = dir.path() + "/slow-qemu";
  WriteFile(slow_qemu, "#!/bin/sh\nsleep 1\nexec " + qemu + " \"$@\"\n");
  fs::permissions(slow_qemu, fs::perms::owner_all);
  QemuOptions options = Options(dir, "choice");
  options.qemu = slow_qemu;
  options.accel = *accel;
  auto backend = MakeQemuBackend(options);
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  HostSpec spec = BareSpec(dir, kernel);
  // No root file system: the kernel panics and (panic=-1) resets at once, a boot loop. The kernel
  // prints its command line, which carries the boot choice (winsim.boot=...).
  spec.kernel_args = {"ignore_loglevel"};
  Host* host = *(*backend)->CreateHost(spec);
  EventLog log(backend->get());
  const auto command_line = [](const HostEvent& e) {
    return e.host_id == "h1" && e.kind == HostEventKind::kConsoleLine &&
           e.detail.find("Command line:") != std::string::npos;
  };
  ASSERT_TRUE(host->Start().ok());
  int first = log.WaitFor(command_line, seconds(60));
  ASSERT_GE(first, 0) << log.Dump();
  EXPECT_NE(log.events[first].detail.find("winsim.boot=normal"), std::string::npos)
      << log.events[first].detail;
  int reset = log.WaitKind("h1", HostEventKind::kReset, seconds(120), first);
  ASSERT_GT(reset, first) << log.Dump();
  EXPECT_EQ(log.events[reset].detail, "guest");
  // The relaunch has read the choice and is starting QEMU (one second).
  std::this_thread::sleep_for(milliseconds(300));
  ASSERT_TRUE(host->SetBoot(BootTarget::kSafeMode).ok());
  ASSERT_TRUE(host->Reset().ok());
  int next = log.WaitFor(command_line, seconds(60), reset);
  ASSERT_GT(next, reset) << log.Dump();
  EXPECT_NE(log.events[next].detail.find("winsim.boot=safe"), std::string::npos)
      << "the boot after SetBoot(safe-mode) + Reset: " << log.events[next].detail;
  // One kReset for that reset, and the host was never lost nor seen starting again.
  int resets_between = 0;
  for (int i = reset; i < next; ++i) {
    resets_between += log.events[i].kind == HostEventKind::kReset;
  }
  EXPECT_EQ(resets_between, 1) << log.Dump();
  for (const auto& e : log.events) {
    EXPECT_NE(e.kind, HostEventKind::kLost) << log.Dump();
    EXPECT_NE(e.kind, HostEventKind::kShutdown) << log.Dump();
  }
  EXPECT_EQ(std::count_if(log.events.begin(), log.events.end(),
                          [](const HostEvent& e) { return e.kind == HostEventKind::kStarted; }),
            1)
      << log.Dump();
  ASSERT_TRUE(host->PowerOff().ok());
  ASSERT_TRUE((*backend)->Destroy().ok());
}

// The winsim guest, if `make image` has built it.
class WinsimTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string source = Env("CHAOSLAB_SOURCE_DIR");
    if (source.empty()) source = fs::current_path().string();
    std::string build = Env("CHAOSLAB_BUILD_DIR");
    std::vector<std::string> candidates = {Env("CHAOSLAB_CSAGENT")};
    if (!build.empty()) candidates.push_back(build + "/bin/csagent");
    candidates.push_back(source + "/build/bin/csagent");
    std::string csagent;
    for (const auto& c : candidates) {
      if (!c.empty() && fs::is_regular_file(c)) {
        csagent = c;
        break;
      }
    }
    if (csagent.empty()) {
      GTEST_SKIP() << "csagent is not built (looked in $CHAOSLAB_CSAGENT, $CHAOSLAB_BUILD_DIR/bin, "
                      "build/bin): build it, then `make image`";
    }
    bp::ipstream out;
    // The image `make image` builds (image.yaml: the purpose-built kernel).
    bp::child check(source + "/images/winsim/build.sh", "--csagent", csagent, "--kernel", "custom",
                    "--check", bp::std_out > out, bp::std_err > bp::null);
    std::string line, last;
    while (std::getline(out, line)) last = line;
    check.wait();
    if (check.exit_code() != 0 || last.empty()) {
      // `make test` builds the image first, so a missing image is a failure, not a skip.
      GTEST_FAIL() << "the winsim image is not built for " << csagent << ": run `make image`";
    }
    image_ = last;
    std::ifstream manifest_file(image_ + "/manifest.json");
    auto manifest = nlohmann::json::parse(manifest_file, nullptr, false);
    ASSERT_FALSE(manifest.is_discarded()) << image_;
    kernel_ = image_ + "/" + manifest.value("kernel", "vmlinux");
    initrd_ = image_ + "/" + manifest.value("initrd", "initramfs.cpio");
    mkdisk_ = source + "/images/winsim/mkdisk.sh";
    mkmedia_ = source + "/images/winsim/mkmedia.sh";
    // The guest learns `winsim.boot=` from another change; until its init reads it, BCD on the
    // system disk decides the boot mode, and the tests check the command line QEMU got instead.
    std::ifstream init_file(source + "/images/winsim/init");
    std::string init((std::istreambuf_iterator<char>(init_file)), std::istreambuf_iterator<char>());
    guest_reads_boot_word_ = init.find("winsim.boot") != std::string::npos;
  }

  // A winsim system disk (sensor 7.11, no channel files) whose BCD says `bootmode`.
  std::string MakeDisk(const std::string& name, const std::string& bootmode) {
    const std::string disk = dir_.path() + "/" + name;
    bp::child mk(mkdisk_, disk, "--sensor", "7.11", "--bootmode", bootmode, bp::std_out > bp::null,
                 bp::std_err > bp::null);
    mk.wait();
    EXPECT_EQ(mk.exit_code(), 0) << "mkdisk.sh failed";
    return disk;
  }

  HostSpec Spec(const std::string& id, const std::string& disk) {
    HostSpec spec;
    spec.id = id;
    spec.kernel = kernel_;
    spec.initrd = initrd_;
    spec.base_disk = disk;
    spec.kernel_args = {"winsim.host=" + id};
    spec.network.online = false;
    return spec;
  }

  // Recovery media (the WinPE stick, also a rescue VM's boot disk). A guest that does not read
  // winsim.boot has no use for media, so then any FAT disk will do.
  std::string MakeMedia(const std::string& name) {
    if (!guest_reads_boot_word_ || !fs::exists(mkmedia_)) return MakeDisk(name, "safe");
    const std::string media = dir_.path() + "/" + name;
    bp::child mk(mkmedia_, media, bp::std_out > bp::null, bp::std_err > bp::null);
    mk.wait();
    EXPECT_EQ(mk.exit_code(), 0) << "mkmedia.sh failed";
    return media;
  }

  std::string image_, kernel_, initrd_, mkdisk_, mkmedia_;
  bool guest_reads_boot_word_ = false;
  TempDir dir_;
};

// The running QEMU's command line (NULs as spaces), from the pid the backend wrote.
std::string QemuCommandLine(const std::string& pid_file) {
  std::ifstream in("/proc/" + std::to_string(ReadPid(pid_file)) + "/cmdline", std::ios::binary);
  std::string argv((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::replace(argv.begin(), argv.end(), '\0', ' ');
  return argv;
}

// Asks the recovery console whether the shell condition `test` holds: types it with an answer that
// the echo of the typed line cannot contain (the quotes split the word), and retypes it every few
// seconds in case the shell was not reading yet. nullopt if no answer came.
std::optional<bool> AskConsole(EventLog& log, Host* host, const std::string& test,
                               const std::string& tag, size_t from) {
  const std::string yes = tag + "-YES", no = tag + "-NO";
  const std::string line = test + " && echo " + tag + "-Y''ES || echo " + tag + "-N''O\r";
  auto deadline = std::chrono::steady_clock::now() + seconds(40);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!host->SendConsole(line).ok()) return std::nullopt;
    int i = log.WaitFor(
        [&](const HostEvent& e) {
          return e.host_id == host->spec().id && e.kind == HostEventKind::kConsoleLine &&
                 (e.detail.find(yes) != std::string::npos ||
                  e.detail.find(no) != std::string::npos);
        },
        seconds(5), from);
    if (i >= 0) return log.events[i].detail.find(yes) != std::string::npos;
  }
  return std::nullopt;
}

TEST_F(WinsimTest, BootsPrintsConsoleLinesAndResets) {
  const std::string disk = dir_.path() + "/system.img";
  bp::child mk(mkdisk_, disk, "--sensor", "7.11", bp::std_out > bp::null, bp::std_err > bp::null);
  mk.wait();
  ASSERT_EQ(mk.exit_code(), 0) << "mkdisk.sh failed";
  auto backend = MakeQemuBackend(Options(dir_, "boot"));
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  Host* host = *(*backend)->CreateHost(Spec("ws-1", disk));
  EventLog log(backend->get());
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(host->Start().ok());
  int bootmgr = log.WaitLine("ws-1", "@@winsim phase=bootmgr", seconds(60));
  ASSERT_GE(bootmgr, 0) << log.Dump();
  auto t_bootmgr = log.events[bootmgr].wall;
  int ready = log.WaitLine("ws-1", "@@winsim ready", seconds(60), bootmgr);
  ASSERT_GE(ready, 0) << log.Dump();
  auto ms = [&](auto t) { return std::chrono::duration_cast<milliseconds>(t - t0).count(); };
  std::cout << "winsim: Start -> bootmgr " << ms(t_bootmgr) << " ms, -> ready "
            << ms(log.events[ready].wall) << " ms\n";
  // Issue 16: QEMU's main loop (slirp; the relays it spawns inherit it) runs in real time, its
  // vCPU thread as an ordinary one (lab_priority.h).
  const pid_t qemu_pid = ReadPid(dir_.path() + "/rt/boot/ws-1/qemu.pid");
  ASSERT_GT(qemu_pid, 0);
  EXPECT_EQ(SchedulingOf(qemu_pid).value(), "realtime") << "QEMU's main loop";
  EXPECT_GE(OrdinaryThreadsBesidesMain(qemu_pid), 1) << "the vCPU thread must stay ordinary";
  for (const auto& e : log.events) {
    if (e.kind == HostEventKind::kConsoleLine) {
      EXPECT_EQ(e.detail.find('\r'), std::string::npos);
    }
  }

  ASSERT_TRUE(host->Reset().ok());
  int reset = log.WaitKind("ws-1", HostEventKind::kReset, seconds(10), ready);
  ASSERT_GE(reset, 0) << log.Dump();
  EXPECT_EQ(log.events[reset].detail, "host");
  ASSERT_GE(log.WaitLine("ws-1", "@@winsim phase=bootmgr", seconds(60), reset), 0) << log.Dump();

  std::ifstream serial(host->ConsoleLogPath());
  std::string text((std::istreambuf_iterator<char>(serial)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("@@winsim ready"), std::string::npos) << "serial.log keeps the console";
  ASSERT_TRUE((*backend)->Destroy().ok());
}

TEST_F(WinsimTest, UnreadableSystemDiskCrashLoopsWithPanicEvents) {
  // A disk of zeros is no FAT volume: winsim bugchecks (INACCESSIBLE_BOOT_DEVICE) on every boot.
  const std::string disk = dir_.path() + "/zeros.img";
  WriteFile(disk, std::string(1 << 20, '\0'));
  auto backend = MakeQemuBackend(Options(dir_, "loop"));
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  Host* host = *(*backend)->CreateHost(Spec("ws-2", disk));
  EventLog log(backend->get());
  ASSERT_TRUE(host->Start().ok());
  int bugcheck = log.WaitLine("ws-2", "@@bugcheck", seconds(60));
  ASSERT_GE(bugcheck, 0) << log.Dump();
  int panic = log.WaitKind("ws-2", HostEventKind::kPanicked, seconds(30));
  ASSERT_GE(panic, 0) << log.Dump();
  int reset = log.WaitKind("ws-2", HostEventKind::kReset, seconds(30), panic);
  ASSERT_GT(reset, panic) << log.Dump();
  EXPECT_EQ(log.events[reset].detail, "guest");
  // And again: the boot loop.
  ASSERT_GE(log.WaitKind("ws-2", HostEventKind::kPanicked, seconds(60), reset), 0) << log.Dump();
  std::cout << "panic detail: " << log.events[panic].detail << "\n";
  ASSERT_TRUE(host->PowerOff().ok());
}

// Every guest reset relaunches QEMU (cold reboot), and the engine sees exactly what a warm reset
// showed: kPanicked, then one kReset "guest", then the next boot's console. A Pause() right after
// the kReset (the engine parking a boot-looping host) keeps the new QEMU stopped until Resume().
TEST_F(WinsimTest, BootLoopRelaunchesQemuOnEachResetAndPauseDuringRelaunchHolds) {
  const std::string disk = dir_.path() + "/zeros.img";
  WriteFile(disk, std::string(1 << 20, '\0'));
  auto backend = MakeQemuBackend(Options(dir_, "relaunch"));
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  Host* host = *(*backend)->CreateHost(Spec("ws-3", disk));
  EventLog log(backend->get());
  const std::string pid_file = dir_.path() + "/rt/relaunch/ws-3/qemu.pid";
  ASSERT_TRUE(host->Start().ok());
  ASSERT_EQ(log.WaitKind("ws-3", HostEventKind::kStarted, seconds(5)), 0) << log.Dump();
  std::set<pid_t> pids = {ReadPid(pid_file)};
  int from = 0;
  constexpr int kCycles = 3;
  for (int cycle = 0; cycle < kCycles; ++cycle) {
    int panic = log.WaitKind("ws-3", HostEventKind::kPanicked, seconds(60), from);
    ASSERT_GE(panic, 0) << "cycle " << cycle << "\n" << log.Dump();
    pids.insert(ReadPid(pid_file));  // the QEMU of this boot
    int bugcheck = log.WaitLine("ws-3", "@@bugcheck", seconds(1), from);
    EXPECT_GE(bugcheck, from) << "each boot prints its own bugcheck";
    int reset = log.WaitKind("ws-3", HostEventKind::kReset, seconds(30), panic);
    ASSERT_GT(reset, panic) << log.Dump();
    EXPECT_EQ(log.events[reset].detail, "guest");
    if (cycle + 1 == kCycles) {
      // Park it at once, as the engine does with a boot-looping host.
      ASSERT_TRUE(host->Pause().ok());
      from = reset + 1;
      break;
    }
    from = reset + 1;
  }
  // Parked: the relaunched QEMU reports kStopped and then nothing at all for a while.
  int stopped = log.WaitKind("ws-3", HostEventKind::kStopped, seconds(10), from);
  ASSERT_GE(stopped, from) << log.Dump();
  EXPECT_EQ(log.WaitFor([](const HostEvent&) { return true; }, seconds(4), stopped + 1), -1)
      << "a paused host stays quiet\n"
      << log.Dump();
  pid_t parked = ReadPid(pid_file);
  EXPECT_EQ(kill(parked, 0), 0) << "the parked QEMU is alive";
  pids.insert(parked);
  EXPECT_EQ(pids.size(), size_t(kCycles) + 1) << "each reset started a new QEMU";

  ASSERT_TRUE(host->Resume().ok());
  int resumed = log.WaitKind("ws-3", HostEventKind::kResumed, seconds(5), stopped);
  ASSERT_GT(resumed, stopped) << log.Dump();
  ASSERT_GE(log.WaitKind("ws-3", HostEventKind::kPanicked, seconds(60), resumed), 0) << log.Dump();

  // Never a kShutdown/kLost/second kStarted during the loop, and one kReset per panic.
  int panics = 0, resets = 0;
  for (size_t i = 0; i < log.events.size(); ++i) {
    const auto& e = log.events[i];
    EXPECT_NE(e.kind, HostEventKind::kShutdown) << log.Dump();
    EXPECT_NE(e.kind, HostEventKind::kLost) << log.Dump();
    if (i > 0) {
      EXPECT_NE(e.kind, HostEventKind::kStarted) << log.Dump();
    }
    if (e.kind == HostEventKind::kPanicked) ++panics;
    if (e.kind == HostEventKind::kReset) {
      ++resets;
      EXPECT_EQ(resets, panics) << "kReset follows its kPanicked\n" << log.Dump();
    }
  }
  ASSERT_TRUE(host->PowerOff().ok());
  EXPECT_NE(kill(ReadPid(pid_file), 0), 0) << "nothing left running";
  ASSERT_TRUE((*backend)->Destroy().ok());
}

// SetBoot reaches the guest's command line at the next launch (Start or a reset's relaunch), and
// the TPM's secret only goes with the normal boot.
TEST_F(WinsimTest, SetBootAppliesFromTheNextLaunchWithTheTpmOnlyForNormalBoot) {
  const std::string disk = MakeDisk("normal.img", "normal");
  auto backend = MakeQemuBackend(Options(dir_, "boot-target"));
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  HostSpec spec = Spec("ws-b", disk);
  spec.tpm_secret = "c0ffee01";
  Host* host = *(*backend)->CreateHost(spec);
  const std::string pid_file = dir_.path() + "/rt/boot-target/ws-b/qemu.pid";
  EventLog log(backend->get());
  ASSERT_TRUE(host->SetBoot(BootTarget::kSafeMode).ok());
  ASSERT_TRUE(host->Start().ok());
  int bootmgr = log.WaitLine("ws-b", "@@winsim phase=bootmgr", seconds(60));
  ASSERT_GE(bootmgr, 0) << log.Dump();
  std::string argv = QemuCommandLine(pid_file);
  EXPECT_NE(argv.find(" winsim.boot=safe"), std::string::npos) << argv;
  EXPECT_EQ(argv.find("winsim.tpm"), std::string::npos) << "no TPM key for safe mode: " << argv;
  EXPECT_EQ(argv.find("opt/chaoslab/tpm"), std::string::npos)
      << "no TPM key for safe mode: " << argv;
  if (guest_reads_boot_word_) {
    EXPECT_EQ(log.events[bootmgr].detail.rfind("@@winsim phase=bootmgr mode=safe", 0), 0u)
        << log.Dump();
  } else {
    std::cout << "guest does not read winsim.boot yet: " << log.events[bootmgr].detail << "\n";
  }

  ASSERT_TRUE(host->SetBoot(BootTarget::kDisk).ok());
  ASSERT_TRUE(host->Reset().ok());
  int reset = log.WaitKind("ws-b", HostEventKind::kReset, seconds(10), bootmgr);
  ASSERT_GT(reset, bootmgr) << log.Dump();
  bootmgr = log.WaitLine("ws-b", "@@winsim phase=bootmgr", seconds(60), reset);
  ASSERT_GT(bootmgr, reset) << log.Dump();
  argv = QemuCommandLine(pid_file);
  // The TPM secret reaches a normal boot as a 0600 fw_cfg file, never on the command line.
  EXPECT_NE(argv.find(" winsim.boot=normal"), std::string::npos) << argv;
  EXPECT_EQ(argv.find("c0ffee01"), std::string::npos) << argv;
  EXPECT_NE(argv.find("-fw_cfg name=opt/chaoslab/tpm,file="), std::string::npos) << argv;
  EXPECT_EQ(log.events[bootmgr].detail.rfind("@@winsim phase=bootmgr mode=normal", 0), 0u)
      << log.Dump();

  // A USB stick: attached read-only as the second disk for this boot only.
  const std::string media = MakeMedia("stick.img");
  ASSERT_TRUE(host->SetBoot(BootTarget::kUsb, media).ok());
  Status reset_status = host->Reset();
  ASSERT_TRUE(reset_status.ok()) << reset_status.ToString() << "\n" << log.Dump();
  reset = log.WaitKind("ws-b", HostEventKind::kReset, seconds(10), bootmgr);
  ASSERT_GT(reset, bootmgr) << log.Dump();
  bootmgr = log.WaitLine("ws-b", "@@winsim phase=bootmgr", seconds(60), reset);
  ASSERT_GT(bootmgr, reset) << log.Dump();
  argv = QemuCommandLine(pid_file);
  EXPECT_NE(argv.find("file=" + media + ",if=none,id=usb,format=raw,readonly=on"),
            std::string::npos)
      << argv;
  EXPECT_NE(argv.find(" winsim.boot=usb"), std::string::npos) << argv;
  EXPECT_EQ(argv.find("winsim.tpm"), std::string::npos) << argv;
  if (guest_reads_boot_word_) {
    EXPECT_EQ(log.events[bootmgr].detail.rfind("@@winsim phase=bootmgr mode=usb", 0), 0u)
        << log.Dump();
  }
  ASSERT_TRUE(host->PowerOff().ok());
  ASSERT_TRUE((*backend)->Destroy().ok());
}

// What the guest writes to C: survives a reset (a relaunch keeps the overlay); RevertDisk and
// ReimageDisk, refused while the host runs, undo it. The guest writes through the safe-mode
// console.
TEST_F(WinsimTest, GuestWritesSurviveAResetAndRevertOrReimageUndoThem) {
  const std::string disk = MakeDisk("safe.img", "safe");
  auto backend = MakeQemuBackend(Options(dir_, "revert"));
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  Host* host = *(*backend)->CreateHost(Spec("ws-r", disk));
  ASSERT_TRUE(host->SetBoot(BootTarget::kSafeMode).ok());
  EventLog log(backend->get());
  const std::string marker = "[ -f /mnt/c/marker ]";
  const std::string write = "echo x > /mnt/c/marker && sync && " + marker;
  auto boot_to_console = [&](size_t from) {
    int console = log.WaitLine("ws-r", "@@winsim phase=console", seconds(60), from);
    EXPECT_GE(console, int(from)) << log.Dump();
    return console < 0 ? log.events.size() : size_t(console);
  };
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(host->Start().ok());
  size_t at = boot_to_console(0);
  std::cout << "safe mode: Start -> console "
            << std::chrono::duration_cast<milliseconds>(log.events[at].wall - t0).count()
            << " ms\n";
  ASSERT_EQ(AskConsole(log, host, write, "w1", at), std::optional<bool>(true)) << log.Dump();

  ASSERT_TRUE(host->Reset().ok());
  int reset = log.WaitKind("ws-r", HostEventKind::kReset, seconds(10), at);
  ASSERT_GT(reset, int(at)) << log.Dump();
  at = boot_to_console(reset);
  EXPECT_EQ(AskConsole(log, host, marker, "r1", at), std::optional<bool>(true))
      << "a reset keeps the disk\n"
      << log.Dump();
  EXPECT_EQ(host->RevertDisk().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(host->ReimageDisk().code(), ErrorCode::kFailedPrecondition);

  ASSERT_TRUE(host->PowerOff().ok());
  Status reverted = host->RevertDisk();
  ASSERT_TRUE(reverted.ok()) << reverted.ToString();
  ASSERT_TRUE(host->Start().ok());
  at = boot_to_console(log.events.size());
  EXPECT_EQ(AskConsole(log, host, marker, "r2", at), std::optional<bool>(false))
      << "reverted to before the first boot\n"
      << log.Dump();

  ASSERT_EQ(AskConsole(log, host, write, "w2", at), std::optional<bool>(true)) << log.Dump();
  ASSERT_TRUE(host->PowerOff().ok());
  Status reimaged = host->ReimageDisk();
  ASSERT_TRUE(reimaged.ok()) << reimaged.ToString();
  ASSERT_TRUE(host->Start().ok());
  at = boot_to_console(log.events.size());
  EXPECT_EQ(AskConsole(log, host, marker, "r3", at), std::optional<bool>(false))
      << "a fresh copy of the base disk\n"
      << log.Dump();
  for (const auto& e : log.events) EXPECT_NE(e.kind, HostEventKind::kLost) << log.Dump();
  ASSERT_TRUE((*backend)->Destroy().ok());
}

// Offline repair: a rescue VM boots with a powered-off host's overlay as its second disk and
// writes to it; the host then boots with the change. While the rescue VM has the disk, the host
// can neither start nor revert (QEMU's image lock). Destroy leaves nothing of either behind.
TEST_F(WinsimTest, RescueVmBootsWithAnotherHostsDiskAndWritesReachThatHost) {
  const std::string broken = MakeDisk("broken.img", "safe");
  // The rescue VM boots from WinPE media, which mounts its second disk as C: (a guest without
  // winsim.boot boots the disk's BCD, safe mode, and the test mounts the second disk itself).
  const std::string rescue_disk = MakeMedia("rescue.img");
  auto backend = MakeQemuBackend(Options(dir_, "rescue"));
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  Host* host = *(*backend)->CreateHost(Spec("ws-x", broken));
  HostSpec rescue_spec = Spec("rescue-x", rescue_disk);
  rescue_spec.extra_disks = {host->SystemDisk()};
  Host* rescue = *(*backend)->CreateHost(rescue_spec);
  ASSERT_TRUE(rescue->SetBoot(BootTarget::kRescue).ok());
  EventLog log(backend->get());
  ASSERT_TRUE(rescue->Start().ok());
  int bootmgr = log.WaitLine("rescue-x", "@@winsim phase=bootmgr", seconds(60));
  ASSERT_GE(bootmgr, 0) << log.Dump();
  const std::string rescue_pid_file = dir_.path() + "/rt/rescue/rescue-x/qemu.pid";
  std::string argv = QemuCommandLine(rescue_pid_file);
  EXPECT_NE(argv.find("file=" + host->SystemDisk().path + ",if=none,id=disk1,format=qcow2"),
            std::string::npos)
      << argv;
  EXPECT_NE(argv.find(" winsim.boot=rescue"), std::string::npos) << argv;
  if (guest_reads_boot_word_) {
    EXPECT_EQ(log.events[bootmgr].detail.rfind("@@winsim phase=bootmgr mode=rescue", 0), 0u)
        << log.Dump();
  }

  Status busy = host->RevertDisk();
  EXPECT_EQ(busy.code(), ErrorCode::kFailedPrecondition) << busy.ToString();
  Status start = host->Start();
  EXPECT_FALSE(start.ok()) << "the disk is the rescue VM's now";
  EXPECT_NE(start.message().find("lock"), std::string::npos) << start.ToString();

  int console = log.WaitLine("rescue-x", "@@winsim phase=console", seconds(60), bootmgr);
  ASSERT_GE(console, 0) << log.Dump();
  const std::string repair =
      guest_reads_boot_word_
          ? "grep -q '^/dev/vdb /mnt/c ' /proc/mounts && echo fixed > /mnt/c/rescued && sync"
          : "mkdir -p /mnt/d && (mount -t vfat /dev/vdb /mnt/d || mount -t vfat -o "
            "iocharset=iso8859-1 /dev/vdb /mnt/d) && echo fixed > /mnt/d/rescued && umount /mnt/d";
  EXPECT_EQ(AskConsole(log, rescue, repair, "m", console), std::optional<bool>(true)) << log.Dump();
  pid_t rescue_pid = ReadPid(rescue_pid_file);
  ASSERT_TRUE(rescue->PowerOff().ok());

  ASSERT_TRUE(host->SetBoot(BootTarget::kSafeMode).ok());
  size_t from = log.events.size();
  Status started = host->Start();
  ASSERT_TRUE(started.ok()) << "the rescue VM let go of the disk: " << started.ToString();
  int at = log.WaitLine("ws-x", "@@winsim phase=console", seconds(60), from);
  ASSERT_GE(at, 0) << log.Dump();
  EXPECT_EQ(AskConsole(log, host, "[ -f /mnt/c/rescued ]", "c", at), std::optional<bool>(true))
      << "the rescue VM's write is on the host's disk\n"
      << log.Dump();
  pid_t host_pid = ReadPid(dir_.path() + "/rt/rescue/ws-x/qemu.pid");
  ASSERT_TRUE((*backend)->Destroy().ok());
  EXPECT_FALSE(fs::exists(dir_.path() + "/rt/rescue"));
  EXPECT_NE(kill(host_pid, 0), 0);
  EXPECT_NE(kill(rescue_pid, 0), 0);
}

}  // namespace
}  // namespace chaoslab::vm
