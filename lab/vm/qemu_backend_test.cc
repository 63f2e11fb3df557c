// Unit tests of the QEMU backend that start no guest: command line, validation, run folder, overlay
// disks, start failures, and gc against real (machine-less) QEMU processes.
#include "lab/vm/qemu_backend.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/process.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "lab/backend/run_dir.h"
#include "lab/vm/test_util.h"

namespace chaoslab::vm {
namespace {

namespace bp = boost::process;
namespace fs = std::filesystem;
using std::chrono::milliseconds;
using testing::TempDir;
using testing::WriteFile;

bool Has(const std::vector<std::string>& args, const std::string& flag, const std::string& value) {
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == flag && args[i + 1] == value) return true;
  }
  return false;
}

std::string ValueOf(const std::vector<std::string>& args, const std::string& flag,
                    const std::string& starts_with = "") {
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == flag && args[i + 1].rfind(starts_with, 0) == 0) return args[i + 1];
  }
  return "";
}

HostSpec BasicSpec(const std::string& dir, const std::string& id = "ws-01") {
  WriteFile(dir + "/vmlinux", "not really a kernel");
  WriteFile(dir + "/initrd", "");
  WriteFile(dir + "/base.img", std::string(64 * 1024, '\0'));
  HostSpec spec;
  spec.id = id;
  spec.group = "workstations";
  spec.kernel = dir + "/vmlinux";
  spec.initrd = dir + "/initrd";
  spec.base_disk = dir + "/base.img";
  spec.kernel_args = {"winsim.host=" + id};
  spec.network.online = false;
  return spec;
}

QemuOptions Options(const TempDir& dir, const std::string& run_id = "run1") {
  QemuOptions o;
  o.run_id = run_id;
  o.runtime_root = dir.path() + "/rt";
  o.accel = "tcg";
  return o;
}

TEST(QemuArgsTest, OfflineHostHasEssentialsAndNoNetwork) {
  HostSpec spec;
  spec.id = "dc-1";
  spec.kernel = "/img/vmlinux";
  spec.initrd = "/img/initramfs.cpio";
  spec.base_disk = "/img/base.img";
  spec.kernel_args = {"winsim.host=dc-1", "winsim.poll_ms=500"};
  spec.network.online = false;
  spec.memory_mib = 192;
  auto args = QemuArgs("r7", spec, PathsFor("/rt/r7", "dc-1"), "tcg", "/bin/relay");
  EXPECT_TRUE(Has(args, "-name", "chaoslab:r7:dc-1"));
  for (const char* flag : {"-nodefaults", "-no-user-config", "-S"}) {
    EXPECT_NE(std::find(args.begin(), args.end(), flag), args.end()) << flag;
  }
  EXPECT_TRUE(Has(args, "-display", "none"));
  EXPECT_TRUE(Has(args, "-accel", "tcg"));
  EXPECT_TRUE(Has(args, "-m", "192"));
  EXPECT_TRUE(Has(args, "-kernel", "/img/vmlinux"));
  EXPECT_TRUE(Has(args, "-initrd", "/img/initramfs.cpio"));
  EXPECT_TRUE(Has(args, "-append",
                  "console=ttyS0 quiet panic=-1 mitigations=off tsc=reliable no_timer_check "
                  "cryptomgr.notests tsc_early_khz=1000000 winsim.host=dc-1 winsim.poll_ms=500 "
                  "winsim.boot=normal"));
  EXPECT_TRUE(Has(args, "-drive", "file=/rt/r7/dc-1/overlay.qcow2,if=none,id=sys,format=qcow2"));
  EXPECT_TRUE(Has(args, "-device", "virtio-blk-pci,drive=sys"));
  EXPECT_TRUE(Has(args, "-device", "pvpanic-pci"));
  // A reset ends QEMU (SHUTDOWN "guest-reset"); the backend relaunches it: a cold reboot.
  EXPECT_TRUE(Has(args, "-action", "panic=none,reboot=shutdown"));
  EXPECT_TRUE(Has(args, "-serial", "chardev:con0"));
  EXPECT_EQ(ValueOf(args, "-chardev", "socket,id=con0"),
            "socket,id=con0,path=/rt/r7/dc-1/console.sock,server=on,wait=off,"
            "logfile=/rt/r7/dc-1/serial.log,logappend=on");
  EXPECT_TRUE(Has(args, "-mon", "chardev=qmp0,mode=control"));
  EXPECT_EQ(ValueOf(args, "-netdev"), "");
  EXPECT_EQ(ValueOf(args, "-device", "virtio-net"), "");
  EXPECT_EQ(ValueOf(args, "-cpu"), "");
}

// A winsim guest under TCG counts instructions (guest_clock.h): QEMU gets -icount and the guest
// kernel a 1 GHz TSC (QEMU's TSC then counts guest nanoseconds), after the base words, so that a
// host's own kernel_args still come last. Under KVM: neither.
TEST(QemuArgsTest, InstructionCountingUnderTcg) {
  HostSpec spec;
  spec.id = "ws";
  spec.kernel = "/img/vmlinux";
  spec.kernel_args = {"winsim.host=ws"};
  const std::string base =
      "console=ttyS0 quiet panic=-1 mitigations=off tsc=reliable no_timer_check cryptomgr.notests";
  auto tcg = QemuArgs("r", spec, PathsFor("/rt/r", "ws"), "tcg", "");
  EXPECT_EQ(ValueOf(tcg, "-append"),
            base + " tsc_early_khz=1000000 winsim.host=ws winsim.boot=normal");
  EXPECT_EQ(ValueOf(tcg, "-icount"), "shift=0,sleep=on,align=off");
  auto kvm = QemuArgs("r", spec, PathsFor("/rt/r", "ws"), "kvm", "");
  EXPECT_EQ(ValueOf(kvm, "-append"), base + " winsim.host=ws winsim.boot=normal");
  EXPECT_EQ(ValueOf(kvm, "-icount"), "");
}

TEST(QemuArgsTest, OnlineHostGetsOnlyTheRelayedContentServer) {
  HostSpec spec;
  spec.id = "ws";
  spec.network = {true, 40123, 0, 0};
  auto args = QemuArgs("r", spec, PathsFor("/rt/r", "ws"), "kvm", "/opt/bin/chaoslab-relay");
  EXPECT_EQ(ValueOf(args, "-netdev"),
            "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:80-cmd:/opt/bin/chaoslab-relay "
            "--port 40123");
  EXPECT_TRUE(Has(args, "-device", "virtio-net-pci,netdev=n0,romfile="));
  EXPECT_TRUE(Has(args, "-cpu", "host"));

  spec.network = {true, 80, 150, 40};
  args = QemuArgs("r", spec, PathsFor("/rt/r", "ws"), "tcg", "/r");
  EXPECT_EQ(ValueOf(args, "-netdev"),
            "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:80-cmd:/r --port 80 --delay-ms 150 "
            "--jitter-ms 40");
}

TEST(QemuArgsTest, CommasInPathsAreEscaped) {
  HostSpec spec;
  spec.id = "h";
  spec.network.online = false;
  auto args = QemuArgs("r", spec, PathsFor("/a,b", "h"), "tcg", "");
  EXPECT_TRUE(Has(args, "-drive", "file=/a,,b/h/overlay.qcow2,if=none,id=sys,format=qcow2"));
}

// Every launch says what it boots; only the normal boot from the disk gets the TPM's secret.
TEST(QemuArgsTest, BootTargetWordOnEveryLaunchAndTpmSecretOnlyForTheNormalBoot) {
  HostSpec spec;
  spec.id = "ws";
  spec.kernel_args = {"winsim.host=ws"};
  spec.network.online = false;
  const HostPaths paths = PathsFor("/rt/r", "ws");
  const std::string prefix =
      "console=ttyS0 quiet panic=-1 mitigations=off tsc=reliable no_timer_check cryptomgr.notests "
      "winsim.host=ws ";
  EXPECT_EQ(ValueOf(QemuArgs("r", spec, paths, "kvm", ""), "-append"),
            prefix + "winsim.boot=normal")
      << "default: the disk, and no TPM word without a secret";
  spec.tpm_secret = "00c0ffee";
  const std::vector<std::pair<BootTarget, std::string>> targets = {
      {BootTarget::kDisk, "normal"}, {BootTarget::kSafeMode, "safe"},
      {BootTarget::kWinRE, "winre"}, {BootTarget::kUsb, "usb"},
      {BootTarget::kPxe, "pxe"},     {BootTarget::kRescue, "rescue"}};
  for (const auto& [target, word] : targets) {
    BootChoice boot;
    boot.target = target;
    std::vector<std::string> args = QemuArgs("r", spec, paths, "kvm", "", boot);
    EXPECT_EQ(ValueOf(args, "-append"), prefix + "winsim.boot=" + word);
    // The secret is in no argument (/proc/PID/cmdline is world-readable): a 0600 file as fw_cfg,
    // and only for the normal boot from the disk. Before: `winsim.tpm=00c0ffee` in -append.
    for (const auto& arg : args) EXPECT_EQ(arg.find("00c0ffee"), std::string::npos) << arg;
    if (target == BootTarget::kDisk) {
      EXPECT_EQ(ValueOf(args, "-fw_cfg"), "name=opt/chaoslab/tpm,file=" + paths.tpm_secret);
    } else {
      EXPECT_EQ(ValueOf(args, "-fw_cfg"), "") << "no TPM secret outside normal boot";
    }
  }
}

std::vector<std::string> ValuesOf(const std::vector<std::string>& args, const std::string& flag) {
  std::vector<std::string> out;
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == flag) out.push_back(args[i + 1]);
  }
  return out;
}

// The guest names virtio disks in PCI slot order, which is command-line order: system disk (vda),
// USB media (vdb, read-only, only while booting from USB), then the extra disks.
TEST(QemuArgsTest, DisksInGuestOrderWithTheirFormatsAndModes) {
  HostSpec spec;
  spec.id = "rescue-1";
  spec.network.online = false;
  spec.extra_disks = {{"/rt/r/ws-01/overlay.qcow2", "qcow2", false},
                      {"/data/d,1.img", "raw", true}};
  const HostPaths paths = PathsFor("/rt/r", "rescue-1");
  BootChoice usb;
  usb.target = BootTarget::kUsb;
  usb.media = {"/media/fix.img", "raw", false};  // attached read-only whatever the caller said
  auto args = QemuArgs("r", spec, paths, "tcg", "", usb);
  EXPECT_EQ(ValuesOf(args, "-drive"),
            (std::vector<std::string>{
                "file=/rt/r/rescue-1/overlay.qcow2,if=none,id=sys,format=qcow2",
                "file=/media/fix.img,if=none,id=usb,format=raw,readonly=on",
                "file=/rt/r/ws-01/overlay.qcow2,if=none,id=disk1,format=qcow2",
                "file=/data/d,,1.img,if=none,id=disk2,format=raw,readonly=on",
            }));
  std::vector<std::string> devices = ValuesOf(args, "-device");
  ASSERT_GE(devices.size(), 5u);
  EXPECT_EQ(std::vector<std::string>(devices.begin(), devices.begin() + 5),
            (std::vector<std::string>{"virtio-blk-pci,drive=sys", "virtio-blk-pci,drive=usb",
                                      "virtio-blk-pci,drive=disk1", "virtio-blk-pci,drive=disk2",
                                      "pvpanic-pci"}));

  // Any other target: no media, the extra disks move up to vdb.
  BootChoice rescue;
  rescue.target = BootTarget::kRescue;
  args = QemuArgs("r", spec, paths, "tcg", "", rescue);
  auto drives = ValuesOf(args, "-drive");
  ASSERT_EQ(drives.size(), 3u);
  EXPECT_EQ(drives[1], "file=/rt/r/ws-01/overlay.qcow2,if=none,id=disk1,format=qcow2");
  EXPECT_TRUE(ValueOf(args, "-append").ends_with(" winsim.boot=rescue"))
      << ValueOf(args, "-append");
  usb.media = {"/media/fix.qcow2", "qcow2", true};
  spec.extra_disks.clear();
  EXPECT_EQ(
      ValuesOf(QemuArgs("r", spec, paths, "tcg", "", usb), "-drive"),
      (std::vector<std::string>{"file=/rt/r/rescue-1/overlay.qcow2,if=none,id=sys,format=qcow2",
                                "file=/media/fix.qcow2,if=none,id=usb,format=qcow2,readonly=on"}));
}

TEST(MakeQemuBackendTest, MissingQemuIsNotFoundBeforeAnythingStarts) {
  TempDir dir;
  QemuOptions o = Options(dir);
  o.qemu = "qemu-system-x86_64-not-installed";
  auto backend = MakeQemuBackend(o);
  ASSERT_FALSE(backend.ok());
  EXPECT_EQ(backend.status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(backend.status().message(),
            "qemu-system-x86_64-not-installed not found: run `make setup`");
  EXPECT_FALSE(fs::exists(o.runtime_root)) << "nothing may be created when QEMU is missing";

  o = Options(dir);
  o.qemu_img = "/nonexistent/qemu-img";
  EXPECT_EQ(MakeQemuBackend(o).status().code(), ErrorCode::kNotFound);
  o = Options(dir);
  o.relay = "/nonexistent/chaoslab-relay";
  EXPECT_EQ(MakeQemuBackend(o).status().code(), ErrorCode::kNotFound);
}

TEST(MakeQemuBackendTest, RejectsBadOptions) {
  TempDir dir;
  for (std::string id :
       std::vector<std::string>{"", "..", "a/b", "a b", "x,y", "-x", std::string(65, 'a')}) {
    QemuOptions o = Options(dir, id);
    EXPECT_EQ(MakeQemuBackend(o).status().code(), ErrorCode::kInvalidArgument) << id;
  }
  QemuOptions o = Options(dir);
  o.accel = "hvf";
  auto bad = MakeQemuBackend(o);
  EXPECT_EQ(bad.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("hvf"), std::string::npos);
}

TEST(MakeQemuBackendTest, CreatesAPrivateRunFolderAndRemovesItOnDestroy) {
  TempDir dir;
  auto backend = MakeQemuBackend(Options(dir, "run-42"));
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  EXPECT_EQ((*backend)->name(), "qemu");
  const std::string run_dir = dir.path() + "/rt/run-42";
  struct stat st {};
  ASSERT_EQ(stat(run_dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  auto owner = ReadOwnedDir(run_dir, "run-42");
  ASSERT_TRUE(owner.ok()) << owner.status().ToString();
  EXPECT_EQ(owner->pid, getpid());

  // The same run id twice is refused.
  EXPECT_EQ(MakeQemuBackend(Options(dir, "run-42")).status().code(),
            ErrorCode::kFailedPrecondition);

  EXPECT_TRUE((*backend)->Destroy().ok());
  EXPECT_FALSE(fs::exists(run_dir));
  EXPECT_TRUE((*backend)->Destroy().ok()) << "Destroy is idempotent";
  EXPECT_EQ((*backend)->CreateHost(BasicSpec(dir.path())).status().code(),
            ErrorCode::kFailedPrecondition);
}

TEST(CreateHostTest, MakesAnOverlayOnTheBaseDisk) {
  TempDir dir;
  auto backend = MakeQemuBackend(Options(dir));
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  HostSpec spec = BasicSpec(dir.path());
  spec.tpm_secret = "00c0ffee";
  auto host = (*backend)->CreateHost(spec);
  ASSERT_TRUE(host.ok()) << host.status().ToString();
  EXPECT_EQ((*host)->spec().id, "ws-01");
  const HostPaths paths = PathsFor(dir.path() + "/rt/run1", "ws-01");
  EXPECT_EQ((*host)->ConsoleLogPath(), paths.serial_log);
  ASSERT_TRUE(fs::exists(paths.overlay));
  // The TPM secret waits for QEMU's fw_cfg in a file only the lab's user can read.
  EXPECT_EQ(fs::status(paths.tpm_secret).permissions(),
            fs::perms::owner_read | fs::perms::owner_write);
  std::ifstream secret(paths.tpm_secret);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(secret), {}), "00c0ffee");
  bp::ipstream info;
  bp::child qemu_img(bp::search_path("qemu-img"), "info", "--output=json", paths.overlay,
                     bp::std_out > info);
  std::string json((std::istreambuf_iterator<char>(info)), std::istreambuf_iterator<char>());
  qemu_img.wait();
  EXPECT_NE(json.find("\"backing-filename\": \"" + spec.base_disk + "\""), std::string::npos)
      << json;
  EXPECT_NE(json.find("\"backing-filename-format\": \"raw\""), std::string::npos) << json;

  // Not started yet: everything but Start and PowerOff is refused.
  EXPECT_EQ((*host)->Reset().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ((*host)->Pause().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ((*host)->Resume().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ((*host)->SendConsole("x").code(), ErrorCode::kFailedPrecondition);
  EXPECT_TRUE((*host)->PowerOff().ok());

  EXPECT_EQ((*backend)->CreateHost(spec).status().code(), ErrorCode::kInvalidArgument)
      << "duplicate id";
}

TEST(CreateHostTest, RejectsBadSpecsWithClearErrors) {
  TempDir dir;
  auto backend = MakeQemuBackend(Options(dir));
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  auto expect = [&](HostSpec spec, ErrorCode code, const std::string& words) {
    auto r = (*backend)->CreateHost(spec);
    ASSERT_FALSE(r.ok()) << words;
    EXPECT_EQ(r.status().code(), code) << r.status().ToString();
    EXPECT_NE(r.status().message().find(words), std::string::npos) << r.status().ToString();
  };
  HostSpec spec = BasicSpec(dir.path());
  // Issue 15: the identifier rule of the loaders (lab/common/identifier.h), checked again here.
  for (const char* id : {"../escape", "-rf", "_x", "a.b"}) {
    spec.id = id;
    expect(spec, ErrorCode::kInvalidArgument, "host name '" + std::string(id) + "'");
  }
  spec = BasicSpec(dir.path());
  spec.kernel = dir.path() + "/missing";
  expect(spec, ErrorCode::kNotFound, "kernel");
  spec = BasicSpec(dir.path());
  spec.base_disk = "";
  expect(spec, ErrorCode::kNotFound, "base disk");
  spec = BasicSpec(dir.path());
  spec.network.online = true;
  spec.network.content_port = 8080;
  expect(spec, ErrorCode::kFailedPrecondition, "relay");
  spec = BasicSpec(dir.path());
  spec.kernel_args.push_back("two words");
  expect(spec, ErrorCode::kInvalidArgument, "kernel argument");
  spec = BasicSpec(dir.path());
  spec.memory_mib = 4;
  expect(spec, ErrorCode::kInvalidArgument, "memory_mib");
}

TEST(CreateHostTest, RejectsBadExtraDisksAndTpmSecrets) {
  TempDir dir;
  auto backend = MakeQemuBackend(Options(dir));
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  HostSpec spec = BasicSpec(dir.path());
  spec.extra_disks = {{dir.path() + "/missing.qcow2", "qcow2", false}};
  auto r = (*backend)->CreateHost(spec);
  EXPECT_EQ(r.status().code(), ErrorCode::kNotFound) << r.status().ToString();
  spec.extra_disks = {{spec.base_disk, "vmdk", false}};
  r = (*backend)->CreateHost(spec);
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument) << r.status().ToString();
  EXPECT_NE(r.status().message().find("vmdk"), std::string::npos) << r.status().ToString();
  spec.extra_disks.clear();
  spec.tpm_secret = "not hex";
  r = (*backend)->CreateHost(spec);
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument) << r.status().ToString();
  spec.tpm_secret = "0123456789abcdefABCDEF";
  spec.extra_disks = {{spec.base_disk, "raw", true}};
  EXPECT_TRUE((*backend)->CreateHost(spec).ok());
}

// Runs qemu-io on `image` with one command; true if it exited 0 (a pattern mismatch is exit 1).
bool QemuIo(const std::string& image, const std::string& command) {
  auto qemu_io = bp::search_path("qemu-io");
  if (qemu_io.empty()) return false;
  bp::child child(qemu_io, "-f", "qcow2", "-c", command, image, bp::std_out > bp::null,
                  bp::std_err > bp::null);
  child.wait();
  return child.exit_code() == 0;
}

std::string SnapshotList(const std::string& image) {
  bp::ipstream out;
  bp::child child(bp::search_path("qemu-img"), "snapshot", "-l", image, bp::std_out > out,
                  bp::std_err > bp::null);
  std::string text((std::istreambuf_iterator<char>(out)), std::istreambuf_iterator<char>());
  child.wait();
  return text;
}

// The disk side of RevertDisk/ReimageDisk, without a guest: qemu-io writes into the overlay as a
// guest would (the base disk is zeros).
TEST(SystemDiskTest, RevertUndoesWritesAndReimageStartsOverFromTheBaseDisk) {
  if (bp::search_path("qemu-io").empty()) GTEST_SKIP() << "qemu-io missing (qemu-utils)";
  TempDir dir;
  auto backend = MakeQemuBackend(Options(dir));
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  Host* host = *(*backend)->CreateHost(BasicSpec(dir.path()));
  const std::string overlay = PathsFor(dir.path() + "/rt/run1", "ws-01").overlay;
  DiskImage disk = host->SystemDisk();
  EXPECT_EQ(disk.path, overlay);
  EXPECT_EQ(disk.format, "qcow2");
  EXPECT_FALSE(disk.read_only);
  EXPECT_NE(SnapshotList(overlay).find("pre-update"), std::string::npos) << "taken at creation";

  ASSERT_TRUE(QemuIo(overlay, "write -P 0x5a 4096 4096"));
  ASSERT_TRUE(QemuIo(overlay, "read -P 0x5a 4096 4096"));
  ASSERT_TRUE(host->RevertDisk().ok());
  EXPECT_TRUE(QemuIo(overlay, "read -P 0 4096 4096")) << "the write is gone";
  ASSERT_TRUE(QemuIo(overlay, "write -P 0x33 0 4096"));
  ASSERT_TRUE(host->RevertDisk().ok()) << "the snapshot stays: revert works more than once";
  EXPECT_TRUE(QemuIo(overlay, "read -P 0 0 4096"));

  // Reimage: a new overlay, whatever happened to the old one (even its snapshot deleted).
  ASSERT_TRUE(QemuIo(overlay, "write -P 0x77 0 4096"));
  bp::child drop(bp::search_path("qemu-img"), "snapshot", "-d", "pre-update", overlay);
  drop.wait();
  ASSERT_EQ(SnapshotList(overlay).find("pre-update"), std::string::npos);
  EXPECT_FALSE(host->RevertDisk().ok()) << "nothing to revert to";
  ASSERT_TRUE(host->ReimageDisk().ok());
  EXPECT_TRUE(QemuIo(overlay, "read -P 0 0 4096"));
  EXPECT_NE(SnapshotList(overlay).find("pre-update"), std::string::npos) << "taken again";
  ASSERT_TRUE(QemuIo(overlay, "write -P 0x11 0 4096"));
  ASSERT_TRUE(host->RevertDisk().ok());
  EXPECT_TRUE(QemuIo(overlay, "read -P 0 0 4096"));
  ASSERT_TRUE((*backend)->Destroy().ok());
  EXPECT_FALSE(fs::exists(overlay));
}

TEST(SystemDiskTest, RevertAndReimageRefuseADiskAnotherQemuHasOpen) {
  auto qemu = bp::search_path("qemu-system-x86_64");
  if (qemu.empty()) GTEST_SKIP() << "qemu-system-x86_64 is not installed (run `make setup`)";
  TempDir dir;
  auto backend = MakeQemuBackend(Options(dir));
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  Host* host = *(*backend)->CreateHost(BasicSpec(dir.path()));
  const std::string overlay = host->SystemDisk().path;
  // A machine-less QEMU holding the disk read-write, as a rescue VM would.
  bp::child holder(qemu, "-M", "none", "-nodefaults", "-no-user-config", "-display", "none",
                   "-drive", "file=" + overlay + ",if=none,id=d,format=qcow2",
                   bp::std_out > bp::null, bp::std_err > bp::null);
  // Wait until QEMU holds its locks on the disk (OFD locks, listed in /proc/locks by inode). Not by
  // trying RevertDisk: QEMU itself gives up if it opens the disk while qemu-img holds it.
  struct stat st {};
  ASSERT_EQ(stat(overlay.c_str(), &st), 0);
  const std::string inode = ":" + std::to_string(st.st_ino);
  auto locked = [&] {
    std::ifstream locks("/proc/locks");
    std::string word;
    while (locks >> word) {
      if (word.size() > inode.size() && word.ends_with(inode)) return true;
    }
    return false;
  };
  for (int i = 0; i < 500 && !locked() && holder.running(); ++i) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  ASSERT_TRUE(locked()) << "QEMU did not open the disk";
  Status revert = host->RevertDisk();
  EXPECT_EQ(revert.code(), ErrorCode::kFailedPrecondition) << revert.ToString();
  EXPECT_NE(revert.message().find("in use by another machine"), std::string::npos)
      << revert.ToString();
  Status reimage = host->ReimageDisk();
  EXPECT_EQ(reimage.code(), ErrorCode::kFailedPrecondition) << reimage.ToString();
  holder.terminate();
  holder.wait();
  // The kernel drops a killed process's locks as it closes its files; on a loaded machine that can
  // trail the wait by a moment (seen once in CI), so wait for /proc/locks as above.
  for (int i = 0; i < 250 && locked(); ++i) std::this_thread::sleep_for(milliseconds(20));
  Status after = host->RevertDisk();
  EXPECT_TRUE(after.ok()) << after.ToString();
  EXPECT_NE(SnapshotList(overlay).find("pre-update"), std::string::npos)
      << "the refused reimage left the disk alone";
}

TEST(SetBootTest, ValidatesTargetAndMedia) {
  TempDir dir;
  auto backend = MakeQemuBackend(Options(dir));
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  Host* host = *(*backend)->CreateHost(BasicSpec(dir.path()));
  EXPECT_EQ(host->SetBoot(BootTarget::kUsb).code(), ErrorCode::kInvalidArgument);
  Status missing = host->SetBoot(BootTarget::kUsb, dir.path() + "/no-such.img");
  EXPECT_EQ(missing.code(), ErrorCode::kNotFound) << missing.ToString();
  EXPECT_NE(missing.message().find("no-such.img"), std::string::npos) << missing.ToString();
  EXPECT_EQ(host->SetBoot(BootTarget::kSafeMode, dir.path() + "/base.img").code(),
            ErrorCode::kInvalidArgument)
      << "media only for usb";
  EXPECT_TRUE(host->SetBoot(BootTarget::kUsb, dir.path() + "/base.img").ok());
  for (BootTarget t : {BootTarget::kDisk, BootTarget::kSafeMode, BootTarget::kWinRE,
                       BootTarget::kPxe, BootTarget::kRescue}) {
    EXPECT_TRUE(host->SetBoot(t).ok()) << BootTargetWord(t);
  }
}

TEST(CreateHostTest, RejectsOnlineHostWithoutPort) {
  TempDir dir;
  QemuOptions o = Options(dir);
  o.relay = "/bin/cat";  // any executable: never started here
  auto backend = MakeQemuBackend(o);
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  HostSpec spec = BasicSpec(dir.path());
  spec.network = {true, 0, 0, 0};
  EXPECT_EQ((*backend)->CreateHost(spec).status().code(), ErrorCode::kInvalidArgument);
  spec.network = {true, 8080, -1, 0};
  EXPECT_EQ((*backend)->CreateHost(spec).status().code(), ErrorCode::kInvalidArgument);
  spec.network = {true, 8080, 10, 5};
  EXPECT_TRUE((*backend)->CreateHost(spec).ok());
}

TEST(CreateHostTest, RefusesSocketPathsOver107Bytes) {
  TempDir dir;
  QemuOptions o = Options(dir, std::string(60, 'r'));
  o.runtime_root = dir.path() + "/a-rather-long-runtime-root";
  auto backend = MakeQemuBackend(o);
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  auto r = (*backend)->CreateHost(BasicSpec(dir.path(), std::string(30, 'h')));
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("longer than 107 bytes"), std::string::npos)
      << r.status().ToString();
}

// Issue 15: a run does not put its folder into a runtime root it cannot trust either.
TEST(MakeQemuBackendTest, RefusesASymlinkedOrSharedRuntimeRoot) {
  TempDir dir;
  fs::create_directories(dir.path() + "/real");
  fs::create_directory_symlink(dir.path() + "/real", dir.path() + "/link");
  fs::create_directories(dir.path() + "/shared");
  ASSERT_EQ(chmod((dir.path() + "/shared").c_str(), 01777), 0);
  for (const char* root : {"/link", "/shared"}) {
    QemuOptions o = Options(dir);
    o.runtime_root = dir.path() + root;
    auto backend = MakeQemuBackend(o);
    EXPECT_EQ(backend.status().code(), ErrorCode::kFailedPrecondition) << root;
    EXPECT_NE(backend.status().message().find(dir.path() + root), std::string::npos)
        << backend.status().ToString();
    EXPECT_FALSE(fs::exists(dir.path() + root + "/run1")) << root;
  }
}

TEST(StartTest, QemuThatCannotBootFailsStartWithItsOwnMessageAndNoEvents) {
  TempDir dir;
  auto backend = MakeQemuBackend(Options(dir));
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  Host* host = *(*backend)->CreateHost(BasicSpec(dir.path()));  // the "kernel" is text
  Status s = host->Start();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("start host ws-01"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("kernel"), std::string::npos)
      << "QEMU's own complaint: " << s.ToString();
  std::vector<HostEvent> events;
  ASSERT_TRUE((*backend)->PollEvents(milliseconds(300), &events).ok());
  EXPECT_TRUE(events.empty()) << "a failed Start reports through its Status only";
  EXPECT_EQ(host->Reset().code(), ErrorCode::kFailedPrecondition);
}

// The fault soak (tests/soak) filled the run folder's file system while hosts boot-looped: a
// relaunch could not write qemu.pid and the host was lost as "QEMU could not be restarted after a
// guest reset: cannot write .../qemu.pid", without saying why. The reason names the cause.
TEST(StartTest, APidFileThatCannotBeWrittenSaysWhy) {
  TempDir dir;
  auto backend = MakeQemuBackend(Options(dir));
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  Host* host = *(*backend)->CreateHost(BasicSpec(dir.path()));
  // A full disk, as the soak's tmpfs was: every write of the pid file fails with ENOSPC.
  const std::string pid_file = dir.path() + "/rt/run1/ws-01/qemu.pid";
  fs::remove(pid_file);
  fs::create_symlink("/dev/full", pid_file);
  Status s = host->Start();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("qemu.pid"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find(std::strerror(ENOSPC)), std::string::npos) << s.ToString();
}

// --- gc
// -------------------------------------------------------------------------------------------

// A folder the lab did not make, two hours old, with a file in it; returns its path.
std::string MakePrecious(const std::string& root) {
  const std::string precious = root + "/precious";
  fs::create_directories(precious);
  WriteFile(precious + "/keep.txt", "not the lab's");
  fs::last_write_time(precious, fs::file_time_type::clock::now() - std::chrono::hours(2));
  return precious;
}

class GcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    qemu_ = bp::search_path("qemu-system-x86_64");
    if (qemu_.empty()) GTEST_SKIP() << "qemu-system-x86_64 is not installed (run `make setup`)";
    root_ = dir_.path() + "/rt";
    fs::create_directories(root_);
    fs::permissions(root_, fs::perms::owner_all, fs::perm_options::replace);  // whatever the umask
  }
  void TearDown() override {
    for (auto& c : children_) {
      if (c.running()) c.terminate();
      c.wait();
    }
  }
  // Starts a machine-less QEMU named `name`; returns its index in children_.
  size_t StartQemu(const std::string& name) {
    children_.emplace_back(qemu_, "-M", "none", "-nodefaults", "-no-user-config", "-display",
                           "none", "-name", name, bp::std_out > bp::null, bp::std_err > bp::null);
    return children_.size() - 1;
  }
  void MakeRun(const std::string& run_id, pid_t owner, const std::string& start = "") {
    ASSERT_TRUE(MakeOwnedDir(root_ + "/" + run_id, {run_id, owner, start}).ok());
  }
  void MakeHost(const std::string& run_id, const std::string& host, pid_t qemu_pid) {
    ASSERT_TRUE(MakeOwnedDir(root_ + "/" + run_id + "/" + host, {run_id, getpid(), ""}).ok());
    WriteFile(root_ + "/" + run_id + "/" + host + "/qemu.pid", std::to_string(qemu_pid) + "\n");
  }
  bool EndsWithin(size_t i, std::chrono::seconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (children_[i].running()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(milliseconds(10));
    }
    return true;
  }
  static pid_t DeadPid() {
    bp::child gone("/bin/true");
    pid_t pid = gone.id();
    gone.wait();
    return pid;
  }

  TempDir dir_;
  std::string root_;
  boost::filesystem::path qemu_;
  std::vector<bp::child> children_;
};

TEST_F(GcTest, KillsTaggedQemuOfDeadRunsOnly) {
  size_t tagged = StartQemu("chaoslab:deadrun:h1");
  size_t untagged = StartQemu("someone-elses-vm");
  size_t live_run = StartQemu("chaoslab:liverun:h1");
  // Give QEMU a moment to exist (its cmdline is there from exec, but be safe on a loaded machine).
  std::this_thread::sleep_for(milliseconds(200));
  MakeRun("deadrun", DeadPid());
  MakeHost("deadrun", "h1", children_[tagged].id());
  MakeHost("deadrun", "h2", children_[untagged].id());  // points at a QEMU that is not ours
  MakeHost("deadrun", "h3", DeadPid());                 // already gone
  MakeRun("liverun", getpid());
  MakeHost("liverun", "h1", children_[live_run].id());
  WriteFile(root_ + "/stray-file", "not a run");

  std::ostringstream log;
  Status s = CollectGarbage(root_, log);
  EXPECT_TRUE(s.ok()) << s.ToString() << "\n" << log.str();

  EXPECT_TRUE(EndsWithin(tagged, std::chrono::seconds(5))) << log.str();
  EXPECT_TRUE(children_[untagged].running()) << "gc must verify the tag before killing";
  EXPECT_TRUE(children_[live_run].running()) << "gc must leave a live orchestrator's run alone";
  EXPECT_FALSE(fs::exists(root_ + "/deadrun"));
  EXPECT_TRUE(fs::exists(root_ + "/liverun/h1/qemu.pid"));
  EXPECT_TRUE(fs::exists(root_ + "/stray-file"));
  EXPECT_NE(log.str().find("not tagged"), std::string::npos) << log.str();
  EXPECT_NE(log.str().find("left alone"), std::string::npos) << log.str();
}

TEST_F(GcTest, OwnerPidReusedByAnotherProcessCountsAsDead) {
  size_t tagged = StartQemu("chaoslab:reused:h1");
  // Our own pid, but with a start time that is not ours: the orchestrator is gone, the pid reused.
  MakeRun("reused", getpid(), "1");
  MakeHost("reused", "h1", children_[tagged].id());
  std::ostringstream log;
  EXPECT_TRUE(CollectGarbage(root_, log).ok()) << log.str();
  EXPECT_TRUE(EndsWithin(tagged, std::chrono::seconds(5))) << log.str();
  EXPECT_FALSE(fs::exists(root_ + "/reused"));
}

TEST_F(GcTest, RealBackendRunIsLeftAloneWhileItsOwnerLives) {
  QemuOptions o;
  o.run_id = "mine";
  o.runtime_root = root_;
  o.accel = "tcg";
  auto backend = MakeQemuBackend(o);
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  std::ostringstream log;
  EXPECT_TRUE(CollectGarbage(root_, log).ok());
  EXPECT_TRUE(fs::exists(root_ + "/mine/chaoslab.owner")) << log.str();
}

// What cleanup_test checks with a guest, without one: the run folder of an orchestrator killed with
// SIGKILL (its marker, a host folder with its overlay) is the lab's, and gc removes it.
TEST_F(GcTest, RunFolderOfAKilledOrchestratorIsRemoved) {
  TempDir files;
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(ready[0]);
    QemuOptions o;
    o.run_id = "killed";
    o.runtime_root = root_;
    o.accel = "tcg";
    auto backend = MakeQemuBackend(o);
    const char made = backend.ok() && (*backend)->CreateHost(BasicSpec(files.path())).ok();
    if (write(ready[1], &made, 1) != 1) _exit(1);
    pause();  // until SIGKILL: no Destroy()
    _exit(0);
  }
  close(ready[1]);
  pollfd p{ready[0], POLLIN, 0};
  const bool answered = poll(&p, 1, 60000) == 1;  // the child makes its run folder and overlay
  char made = 0;
  const bool read_ok = answered && read(ready[0], &made, 1) == 1;
  close(ready[0]);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  ASSERT_TRUE(read_ok) << "the child did not make its run within 60 s";
  ASSERT_TRUE(made) << "the child could not make its run";
  ASSERT_TRUE(fs::exists(root_ + "/killed/ws-01/overlay.qcow2"));
  std::ostringstream log;
  EXPECT_TRUE(CollectGarbage(root_, log).ok()) << log.str();
  EXPECT_FALSE(fs::exists(root_ + "/killed")) << log.str();
  EXPECT_NE(log.str().find("killed: removed"), std::string::npos) << log.str();
}

// Issue 15: a folder the lab never made (no marker) is never removed, however old.
TEST_F(GcTest, FolderWithoutMarkerIsNeverRemoved) {
  const std::string precious = MakePrecious(root_);
  std::ostringstream log;
  EXPECT_TRUE(CollectGarbage(root_, log).ok()) << log.str();
  EXPECT_TRUE(fs::exists(precious + "/keep.txt")) << log.str();
  EXPECT_EQ(log.str().find("precious: removed"), std::string::npos) << log.str();
}

// Issue 15: gc refuses a runtime root it cannot trust, says which path and why, and touches
// nothing below it.
TEST_F(GcTest, SymlinkedRootIsRefused) {
  const std::string precious = MakePrecious(root_);
  const std::string link = dir_.path() + "/link";
  fs::create_directory_symlink(root_, link);
  std::ostringstream log;
  Status s = CollectGarbage(link, log);
  EXPECT_EQ(s.code(), ErrorCode::kFailedPrecondition) << s.ToString() << "\n" << log.str();
  EXPECT_NE(s.message().find(link), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("symlink"), std::string::npos) << s.ToString();
  EXPECT_TRUE(fs::exists(precious + "/keep.txt")) << log.str();
}

TEST_F(GcTest, WorldOrGroupWritableRootIsRefused) {
  const std::string precious = MakePrecious(root_);
  for (mode_t mode : {01777, 0777, 0770}) {
    ASSERT_EQ(chmod(root_.c_str(), mode), 0);
    std::ostringstream log;
    Status s = CollectGarbage(root_, log);
    EXPECT_EQ(s.code(), ErrorCode::kFailedPrecondition) << std::oct << mode << ": " << s.ToString();
    EXPECT_NE(s.message().find(root_), std::string::npos) << s.ToString();
    EXPECT_NE(s.message().find("writable"), std::string::npos) << s.ToString();
    EXPECT_TRUE(fs::exists(precious + "/keep.txt")) << std::oct << mode << ": " << log.str();
  }
}

TEST_F(GcTest, RootOwnedByAnotherUserIsRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to give a folder to another user";
  const std::string precious = MakePrecious(root_);
  ASSERT_EQ(chown(root_.c_str(), 65534, 65534), 0);  // nobody
  std::ostringstream log;
  Status s = CollectGarbage(root_, log);
  EXPECT_EQ(s.code(), ErrorCode::kFailedPrecondition) << s.ToString() << "\n" << log.str();
  EXPECT_NE(s.message().find("owned by uid 65534"), std::string::npos) << s.ToString();
  EXPECT_TRUE(fs::exists(precious + "/keep.txt")) << log.str();
}

TEST(GcMissingRootTest, NothingToDo) {
  std::ostringstream log;
  EXPECT_TRUE(CollectGarbage("/tmp/chaoslab-gc-no-such-root", log).ok());
  EXPECT_NE(log.str().find("nothing to collect"), std::string::npos);
}

}  // namespace
}  // namespace chaoslab::vm
