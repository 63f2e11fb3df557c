// The libvirt backend: the lab's hosts as transient libvirt domains spread over the hypervisors of
// an inventory (lab/libvirt/inventory.h), behind the same Host/Backend interface as lab/vm.
//
// Files: like the QEMU backend, one run folder `<runtime_root>/<run_id>/` (0700, marker
// `chaoslab.owner`, lab/backend/run_dir.h) with a folder per host (with its marker):
// `overlay.qcow2` over the group's raw base disk (internal snapshot `pre-update` taken before the
// first boot), `console.sock` (the serial console, bound by QEMU), `serial.log`. These are local
// paths: the hypervisors must see this machine's files (local libvirtd instances, or a shared
// filesystem at the same path). Uploading volumes to remote storage pools is not done. The
// hypervisor's qemu.conf must allow what the lab needs: QEMU reads the run folder (user root or a
// shared group), and `seccomp_sandbox = 0`, because libvirt's default sandbox forbids the process
// spawn of the guestfwd relay (spawn=deny) and the guest would have no network.
//
// Domains (lab/libvirt/domain_xml.h): named `chaoslab-<run_id>-<host_id>`, started paused with
// VIR_DOMAIN_START_AUTODESTROY (they die when the lab's connection closes, the analogue of the QEMU
// backend's PR_SET_PDEATHSIG), carrying <chaoslab:lab> metadata so `chaoslab gc` finds them.
//
// Events, from libvirt's default event loop (one thread per process): the domain's raw QMP events
// through virConnectDomainQemuMonitorEventRegister give kPanicked (GUEST_PANICKED, detail = its
// data JSON), kReset ("guest"/"host"), kStopped, kResumed — the same events, from the same QEMU
// events, as the QEMU backend. A crash: GUEST_PANICKED then RESET "guest" (the guest reboots
// itself, panic=-1; the domain has <on_crash>preserve</on_crash> and `-action panic=none`). Resets
// are warm (QEMU resets in place; no relaunch, so no cold TCG cache). The domain's end comes from
// the lifecycle event STOPPED: kShutdown ("guest" for a guest power-off, "host" for PowerOff()), or
// kLost when QEMU crashed or someone else destroyed the domain. kStarted is the first event of each
// Start(): the console reader attaches while the domain is still paused, and the RESUME of that
// first resume is not reported. Console lines come from a reader thread per host and may overtake
// or trail a QMP event of the same millisecond, as with the QEMU backend.
//
// Faults of the lab itself: when a hypervisor's connection closes (libvirtd killed, network), every
// host on it turns kLost ("hypervisor ... went away") and the run goes on with the others. A thread
// reconnects every second; once the hypervisor is back, the run's domains still on it are
// destroyed (their hosts are lost to the run) and new hosts may be placed there again. `notice`
// hears about both.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>

#include "lab/backend/backend.h"
#include "lab/common/status.h"
#include "lab/libvirt/inventory.h"
#include "lab/libvirt/windows_golden.h"

namespace chaoslab::libvirt {

struct LibvirtOptions {
  std::string run_id;        // letters, digits, '-', '_', '.'
  std::string runtime_root;  // parent of run folders; empty = /tmp/chaoslab-<uid>
  Inventory inventory;
  std::string relay;  // chaoslab-relay; required for online hosts
  std::string emulator = "/usr/bin/qemu-system-x86_64";  // on the hypervisors
  std::string qemu_img = "qemu-img";
  std::string accel = "auto";  // "auto" (as the QEMU backend decides it, on this machine), kvm, tcg
  std::string bios_rom = "/usr/share/qemu/qboot.rom";  // used when it exists here
  std::function<void(const std::string&)> notice;      // hypervisor lost / reconnected
  // Images of kind windows: every host is a clone of this golden image. Its HostSpec's kernel and
  // initrd are unused, base_disk is the golden windows.qcow2 (the overlay's backing file), and it
  // boots the Windows domain (domain_xml.h, windows = true) with at least 2 GiB. Per host, in its
  // folder: `OVMF_VARS.fd` (a copy of the golden NVRAM), `tpm/` (a copy of the golden TPM state)
  // and, per boot, an swtpm the lab starts on `swtpm.sock` over that copy (the domain's external
  // TPM backend), stopped by pid when the domain ends. ReimageDisk copies NVRAM and TPM afresh;
  // RevertDisk reverts only the disk. The swtpm runs on THIS machine: the hypervisors must be
  // local (as for the run folder). Boot targets other than the disk are not applied to a Windows
  // domain (there is no kernel command line; safe mode is bcdedit over SAC,
  // lab/backend/sac_console.h).
  std::optional<WindowsGolden> windows;
  std::string swtpm = "swtpm";
  int windows_vcpus = 2;
  int windows_memory_mib = 2048;
};

// Connects to every hypervisor of the inventory and creates the run folder. Nothing is started.
// FailedPrecondition naming the hypervisor if one cannot be reached.
Result<std::unique_ptr<Backend>> MakeLibvirtBackend(LibvirtOptions options);

// Opens each hypervisor once: FailedPrecondition naming the first that cannot be reached.
Status CheckReachable(const Inventory& inventory);

// `chaoslab gc` for libvirt (libvirt_gc.cc): on every hypervisor of the inventory, destroys (and
// undefines) the domains carrying chaoslab metadata whose orchestrator is gone, and removes the
// files that metadata lists only if they lie inside that run's folder under `runtime_root`, which
// must carry the run's marker (lab/backend/run_dir.h; no "..", no symlink on the way): the
// metadata is written by whoever defines a domain. Other files are reported and left. Domains
// without the metadata, or of a live orchestrator, are never touched. FailedPrecondition (nothing
// touched) if the runtime root cannot be trusted. An unreachable hypervisor is reported and makes
// the result an error; the others are still done.
Status CollectLibvirtGarbage(const Inventory& inventory, const std::string& runtime_root,
                             std::ostream& log);

// Domain name of a host: "chaoslab-<run_id>-<host_id>".
std::string DomainName(const std::string& run_id, const std::string& host_id);

}  // namespace chaoslab::libvirt
