// The QEMU backend: one qemu-system-x86_64 process per host, driven over QMP.
//
// A backend owns one run folder `<runtime_root>/<run_id>/` (mode 0700) holding the marker
// `chaoslab.owner` (this run and process, lab/backend/run_dir.h) and one folder per host (with its
// own marker) with its copy-on-write overlay disk (`overlay.qcow2` over the
// group's raw base disk), `qmp.sock`, `console.sock`, `serial.log` (everything the console
// printed), `qemu.log` (QEMU's own stdout/stderr), `qemu-img.log` and `qemu.pid`. QEMU processes
// are tagged
// `-name chaoslab:<run_id>:<host_id>`, die with this process (PR_SET_PDEATHSIG) and are only ever
// signalled by pid after checking they are ours. `CollectGarbage` cleans up after runs whose
// orchestrator died.
//
// Events: QMP GUEST_PANICKED/RESET/STOP/RESUME/SHUTDOWN become kPanicked (detail: the event's data
// JSON), kReset ("guest" or "host"), kStopped, kResumed, kShutdown ("guest", "host" or "killed");
// console output becomes kConsoleLine (one per line, "\r" removed); a QEMU that exits, or whose QMP
// socket closes, without being asked becomes kLost (detail: why, with the end of qemu.log).
// Resets are cold reboots: QEMU runs with `-action reboot=shutdown`, so a guest reset (or Reset())
// makes it exit with SHUTDOWN "guest-reset" ("host-qmp-system-reset"), and the backend starts a
// new QEMU for the same host (same overlay disk and paths, new pid in qemu.pid). A fresh TCG
// translation cache boots ~0.5 s faster than a warm reset, whose firmware overwrites the old
// kernel's translated code. The engine sees only one kReset ("guest" or "host") per reset: no
// kShutdown or kStarted for the relaunch; a relaunch that fails is kLost. Host calls made while a
// relaunch is under way apply to the new QEMU (Pause: it stays stopped and kStopped is reported;
// SendConsole: typed once it is connected; Reset: nothing, it is resetting already).
// Order, per host: kStarted is the first event of each Start() (QEMU starts with -S and the readers
// attach before the vCPUs run, so no console line is missed; the RESUME of that first "cont" is not
// reported). QMP events keep QEMU's order and console lines keep theirs, but the two travel on
// different sockets, so a console line and a QMP event that happen within a few milliseconds (e.g.
// "@@bugcheck" and GUEST_PANICKED) may arrive in either order. kShutdown/kLost is the last event of
// an incarnation: it is sent after both readers drained (or 2 s passed).
//
// Disks, in guest order (virtio-blk, PCI slots in this order, so the guest names them like this):
// /dev/vda the system disk (the overlay); then, only while the boot target is kUsb, /dev/vdb the
// recovery media (read-only; qcow2 if the file starts with the qcow2 magic, else raw); then
// HostSpec::extra_disks in their order (/dev/vdb... without media, /dev/vdc... with it). A rescue
// VM's extra disk is another host's overlay (its SystemDisk()), attached while that host is off;
// QEMU's image locking refuses to open an overlay that a running QEMU has open read-write, so a
// disk is never written by two machines (the second Start fails with QEMU's "write lock" message).
// Rescue VMs are ordinary hosts of the same backend (their folder is in the same run folder), so
// Destroy() and `chaoslab gc` remove them like any other; the disks they borrow are not theirs.
//
// Boot targets: every launch puts `winsim.boot=<BootTargetWord>` on the kernel command line; only
// kDisk gets the TPM secret (the TPM unseals only for the measured normal boot), as the fw_cfg file
// opt/chaoslab/tpm from the host's 0600 `tpm.secret`, never on the command line.
// SetBoot changes the target for the next launch: Start(), or the relaunch of a reset.
//
// System disk: CreateHost makes the overlay and takes an internal qcow2 snapshot `pre-update` of it
// before the first boot. RevertDisk applies that snapshot (`qemu-img snapshot -a`); ReimageDisk
// recreates the overlay over the base disk and takes the snapshot again. Both only while powered
// off (never started, after PowerOff(), or lost): not during a relaunch. qemu-img honours QEMU's
// locks, so a disk still attached to a running rescue VM is refused too (FailedPrecondition).
//
// Files: qemu_backend.cc (the backend, QEMU's arguments), qemu_host.cc (a host: its lifecycle, the
// relaunch after a reset, its disks), qemu_incarnation.cc (one QEMU process: its QMP events,
// console lines and end), qemu_process.cc (starting processes), qemu_accel.cc, qemu_gc.cc.
//
// Thread-safety: as Backend/Host say (the engine thread drives hosts and polls events); the
// internal reader threads feed the event queue, and a host's relaunch runs on the old QEMU's
// watcher thread under the host's mutex.
#pragma once

#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "lab/backend/backend.h"
#include "lab/backend/vm_disks.h"
#include "lab/common/status.h"

namespace chaoslab::vm {

struct QemuOptions {
  std::string run_id;        // lab/common/identifier.h; names the run folder and QEMU tags
  std::string runtime_root;  // parent of run folders; empty = DefaultRuntimeRoot() (run_dir.h)
  std::string qemu = "qemu-system-x86_64";  // name on PATH or a path
  std::string qemu_img = "qemu-img";
  std::string relay;  // the content relay (chaoslab-relay); required for online hosts
  std::string accel =
      "auto";  // "auto" (KVM if it really works, else TCG: qemu_accel.h), "kvm", "tcg"
};

// Checks the tools, picks the accelerator and creates the run folder (and the runtime root, 0700,
// if missing). Nothing is started. Errors: NotFound if QEMU/qemu-img/the relay are missing,
// InvalidArgument for bad options, FailedPrecondition if the run folder exists already or the
// runtime root cannot be trusted (a symlink, another user's, writable by others).
Result<std::unique_ptr<Backend>> MakeQemuBackend(QemuOptions options);

// For `chaoslab gc` (qemu_gc.cc): for every run folder under `runtime_root` that carries the marker
// of a run whose orchestrator is gone (lab/backend/run_dir.h), kills the QEMUs whose qemu.pid names
// a live process whose command line carries `chaoslab:<run_id>:`, then removes the folder. Runs of
// a live orchestrator and folders without a valid marker are left alone. FailedPrecondition (and
// nothing touched) if the root cannot be trusted; Ok if it does not exist. Says what it did on
// `log`.
Status CollectGarbage(const std::string& runtime_root, std::ostream& log);

// Where a host's files live. Exposed for tests and tools.
struct HostPaths {
  std::string dir;
  std::string overlay;
  std::string qmp_socket;
  std::string console_socket;
  std::string serial_log;
  std::string qemu_log;
  std::string pid_file;
  std::string tpm_secret;  // 0600, given to QEMU as fw_cfg file opt/chaoslab/tpm (never argv)
};
HostPaths PathsFor(const std::string& run_dir, const std::string& host_id);

// The QEMU argument vector (without argv[0]) for one launch of a host (BootChoice: vm_disks.h).
// Exposed for unit tests.
// The guest's clock and the TSC frequency it is told come from lab/backend/guest_clock.h.
std::vector<std::string> QemuArgs(const std::string& run_id, const HostSpec& spec,
                                  const HostPaths& paths, const std::string& accel,
                                  const std::string& relay, const BootChoice& boot = {});

}  // namespace chaoslab::vm
