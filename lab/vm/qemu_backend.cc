#include "lab/vm/qemu_backend.h"

#include <unistd.h>

#include <filesystem>
#include <map>

#include "lab/backend/console_socket.h"
#include "lab/backend/guest_clock.h"
#include "lab/backend/guest_network.h"
#include "lab/backend/run_dir.h"
#include "lab/backend/vm_backend.h"
#include "lab/backend/vm_host_spec.h"
#include "lab/common/identifier.h"
#include "lab/common/secret_file.h"
#include "lab/vm/qemu_accel.h"
#include "lab/vm/qemu_host.h"
#include "lab/vm/qemu_process.h"

namespace chaoslab::vm {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

class QemuBackend : public VmBackend {
 public:
  QemuBackend(QemuOptions options, std::string run_dir, std::string qemu, std::string qemu_img,
              std::string relay, std::string accel)
      : VmBackend(accel), options_(std::move(options)), run_dir_(std::move(run_dir)) {
    run_.run_id = options_.run_id;
    run_.qemu = std::move(qemu);
    run_.qemu_img = std::move(qemu_img);
    run_.relay = std::move(relay);
    run_.accel = std::move(accel);
    run_.queue = &queue();
    run_.shortfall = &shortfall();
    run_.launcher = &launcher_;
  }
  ~QemuBackend() override { Destroy(); }

  std::string_view name() const override { return "qemu"; }
  Result<Host*> CreateHost(const HostSpec& spec) override;
  Status Destroy() override;

 private:
  // The host's folder with its marker, its TPM secret file, and its overlay with the pre-update
  // snapshot.
  Status MakeHostFiles(const HostSpec& spec, const HostPaths& paths);

  const QemuOptions options_;
  const std::string run_dir_;
  Launcher launcher_;
  QemuRun run_;
  std::map<std::string, std::unique_ptr<QemuHost>> hosts_;
  bool destroyed_ = false;
};

Result<Host*> QemuBackend::CreateHost(const HostSpec& spec) {
  if (destroyed_) return Status::FailedPrecondition("qemu backend: CreateHost after Destroy");
  RETURN_IF_ERROR(
      CheckVmHostSpec(spec, {.relay = run_.relay, .relay_option = "QemuOptions.relay"}));
  if (hosts_.count(spec.id)) {
    return Status::InvalidArgument("host '" + spec.id + "' exists already in this run");
  }
  HostPaths paths = PathsFor(run_dir_, spec.id);
  RETURN_IF_ERROR(CheckSocketPath(paths.qmp_socket));
  RETURN_IF_ERROR(CheckSocketPath(paths.console_socket));
  HostSpec absolute = WithAbsolutePaths(spec);
  RETURN_IF_ERROR(MakeHostFiles(absolute, paths));
  auto host = std::make_unique<QemuHost>(&run_, std::move(absolute), paths);
  Host* raw = host.get();
  hosts_.emplace(spec.id, std::move(host));
  return raw;
}

Status QemuBackend::MakeHostFiles(const HostSpec& spec, const HostPaths& paths) {
  if (Status made = MakeOwnedDir(paths.dir, ThisProcessOwns(options_.run_id)); !made.ok()) {
    return made.WithContext("create host folder");
  }
  if (!spec.tpm_secret.empty()) RETURN_IF_ERROR(WriteSecretFile(paths.tpm_secret, spec.tpm_secret));
  const std::string tool_log = paths.dir + "/qemu-img.log";
  Status made = RunTool(run_.qemu_img, OverlayCreateArgs(spec.base_disk, "raw", paths.overlay),
                        tool_log, milliseconds(30000));
  if (!made.ok()) return made.WithContext("host '" + spec.id + "': create overlay disk");
  // What RevertDisk goes back to: the disk before the first boot (before any update it fetches).
  made = RunTool(run_.qemu_img, SnapshotTakeArgs(paths.overlay), tool_log, milliseconds(30000));
  if (!made.ok()) return made.WithContext("host '" + spec.id + "': snapshot the overlay disk");
  return Status::Ok();
}

Status QemuBackend::Destroy() {
  if (destroyed_) return Status::Ok();
  destroyed_ = true;
  for (auto& [id, host] : hosts_) host->BeginPowerOff();
  const auto deadline = Clock::now() + kQuitGrace;
  Status first_error;
  for (auto& [id, host] : hosts_) {
    Status s = host->FinishPowerOff(deadline);
    if (!s.ok() && first_error.ok()) first_error = s;
  }
  hosts_.clear();
  std::error_code ec;
  fs::remove_all(run_dir_, ec);
  if (ec && first_error.ok()) {
    first_error = Status::IoError("remove run folder " + run_dir_ + ": " + ec.message());
  }
  return first_error;
}

}  // namespace

HostPaths PathsFor(const std::string& run_dir, const std::string& host_id) {
  HostPaths p;
  p.dir = run_dir + "/" + host_id;
  p.overlay = p.dir + "/overlay.qcow2";
  p.qmp_socket = p.dir + "/qmp.sock";
  p.console_socket = p.dir + "/console.sock";
  p.serial_log = p.dir + "/serial.log";
  p.qemu_log = p.dir + "/qemu.log";
  p.pid_file = p.dir + "/qemu.pid";
  p.tpm_secret = p.dir + "/tpm.secret";
  return p;
}

std::vector<std::string> QemuArgs(const std::string& run_id, const HostSpec& spec,
                                  const HostPaths& paths, const std::string& accel,
                                  const std::string& relay, const BootChoice& boot) {
  const GuestClock clock = GuestClockFor(accel, spec);
  const std::string append = KernelCmdline(spec, boot.target, GuestTscKhz(clock, accel));
  std::vector<std::string> args = {
      "-name",       "chaoslab:" + run_id + ":" + spec.id,
      "-M",          "pc",
      "-nodefaults", "-no-user-config",
      "-display",    "none",
      "-accel",      accel,
      "-smp",        "1",
      "-m",          std::to_string(spec.memory_mib),
      "-kernel",     spec.kernel,
      "-initrd",     spec.initrd,
      "-append",     append,
      "-drive",      "file=" + QemuOptEscape(paths.overlay) + ",if=none,id=sys,format=qcow2",
      "-device",     "virtio-blk-pci,drive=sys",
  };
  // Further disks right after the system disk, so that they get the next PCI slots and the guest
  // names them /dev/vdb, /dev/vdc... in this order: the USB media first, then the extra disks.
  auto add_disk = [&](const std::string& id, const DiskImage& disk) {
    args.insert(args.end(), {"-drive",
                             "file=" + QemuOptEscape(disk.path) + ",if=none,id=" + id +
                                 ",format=" + disk.format + (disk.read_only ? ",readonly=on" : ""),
                             "-device", "virtio-blk-pci,drive=" + id});
  };
  // A TPM unseals its key only for the boot path it was sealed to: the normal boot from the disk.
  // As a 0600 file, not a -append word (/proc/PID/cmdline is readable by every local user).
  if (boot.target == BootTarget::kDisk && !spec.tpm_secret.empty())
    args.insert(args.end(), {"-fw_cfg", "name=" + std::string(kTpmFwCfgName) +
                                            ",file=" + QemuOptEscape(paths.tpm_secret)});
  if (boot.target == BootTarget::kUsb && !boot.media.path.empty()) {
    DiskImage media = boot.media;
    media.read_only = true;
    add_disk("usb", media);
  }
  for (size_t i = 0; i < spec.extra_disks.size(); ++i) {
    add_disk("disk" + std::to_string(i + 1), spec.extra_disks[i]);
  }
  args.insert(
      args.end(),
      {
          "-device", "pvpanic-pci", "-action", "panic=none,reboot=shutdown", "-chardev",
          "socket,id=con0,path=" + QemuOptEscape(paths.console_socket) +
              ",server=on,wait=off,logfile=" + QemuOptEscape(paths.serial_log) + ",logappend=on",
          "-serial", "chardev:con0", "-chardev",
          "socket,id=qmp0,path=" + QemuOptEscape(paths.qmp_socket) + ",server=on,wait=off", "-mon",
          "chardev=qmp0,mode=control",
          "-S",  // vCPUs wait for our "cont", after the console reader is connected
      });
  if (accel == "kvm") {
    args.insert(args.end(), {"-cpu", "host"});
  }
  for (std::string& word : GuestClockArgs(clock)) args.push_back(std::move(word));
  // qboot boots straight into the kernel: no BIOS banner on the console and one RESET per crash
  // (SeaBIOS adds two more). Debian ships it in qemu-system-data.
  static const char* kQboot = "/usr/share/qemu/qboot.rom";
  if (access(kQboot, R_OK) == 0) args.insert(args.end(), {"-bios", kQboot});
  if (spec.network.online) {
    // The guest reaches exactly one thing: 10.0.2.100:80, relayed to the content server's port
    // (ValidateSpec checked the link, so this cannot fail here).
    Result<std::string> netdev = GuestfwdNetdev(relay, spec.network);
    args.insert(args.end(), {"-netdev", netdev.ok() ? *netdev : "user,id=n0,restrict=on", "-device",
                             "virtio-net-pci,netdev=n0,romfile="});  // no iPXE ROM
  }
  return args;
}

Result<std::unique_ptr<Backend>> MakeQemuBackend(QemuOptions options) {
  ASSIGN_OR_RETURN(std::string qemu, FindProgram(options.qemu, ""));
  ASSIGN_OR_RETURN(std::string qemu_img, FindProgram(options.qemu_img, ""));
  std::string relay;
  if (!options.relay.empty()) {
    ASSIGN_OR_RETURN(relay, FindProgram(options.relay, "the content relay"));
    RETURN_IF_ERROR(CheckRelayPath(relay));
  }
  RETURN_IF_ERROR(CheckIdentifier("run id", options.run_id));  // it names the run folder
  ASSIGN_OR_RETURN(std::string accel, ResolveAccel(qemu, options.accel));
  if (options.runtime_root.empty()) options.runtime_root = DefaultRuntimeRoot();
  ASSIGN_OR_RETURN(std::string root, PrepareRuntimeRoot(options.runtime_root));
  std::string run_dir = root + "/" + options.run_id;
  if (Status made = MakeOwnedDir(run_dir, ThisProcessOwns(options.run_id)); !made.ok()) {
    if (made.code() == ErrorCode::kFailedPrecondition) {
      return Status::FailedPrecondition("run folder " + run_dir +
                                        " exists already (run id reused? try `chaoslab gc`)");
    }
    return made.WithContext("create run folder");
  }
  return std::unique_ptr<Backend>(
      new QemuBackend(std::move(options), run_dir, qemu, qemu_img, relay, accel));
}

}  // namespace chaoslab::vm
