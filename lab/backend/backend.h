// The Host and Backend interfaces: what the engine drives, whatever runs the machines.
//
// Implementations: QEMU processes (lab/vm), libvirt domains (later), modelled hosts (sim, later),
// and fakes for unit tests (lab/backend/fake_backend.h). The engine never knows which it drives.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lab/common/status.h"

namespace chaoslab {

using WallClock = std::chrono::steady_clock;

// How a host reaches the lab's content server. Offline hosts get no network device at all.
struct NetworkLink {
  bool online = true;
  int content_port = 0;  // loopback TCP port of the content server (guest sees 10.0.2.100:80)
  int delay_ms = 0;      // added by the lab-side relay, per connection
  int jitter_ms = 0;
  int loss_percent = 0;  // share of connections the relay drops
  // A 0600 file with the host's escrow credential; the relay presents it to the content server,
  // which then hands this host (and only this host) its recovery password. Empty: none.
  std::string credential_file;
};

// A further disk attached to a machine (virtio, after the system disk: /dev/vdb, /dev/vdc...).
struct DiskImage {
  std::string path;            // absolute
  std::string format = "raw";  // "raw" or "qcow2"
  bool read_only = false;

  bool operator==(const DiskImage&) const = default;
};

// What the machine boots into next (the F8 menu, a USB stick, the network). The guest reads it
// as `winsim.boot=<name>` (docs/GUEST-PROTOCOL.md).
enum class BootTarget {
  kDisk,      // normal boot from the system disk ("normal")
  kSafeMode,  // "safe"
  kWinRE,     // "winre"
  kUsb,       // "usb": recovery media attached as the next disk
  kPxe,       // "pxe": the repair image from the lab's server (network)
  kRescue,    // "rescue": this machine is a rescue VM; the disk to repair is its second disk
};
std::string_view BootTargetWord(BootTarget target);  // "normal", "safe", "winre", ...

// Everything a backend needs to create one machine. Paths are absolute.
struct HostSpec {
  std::string id;         // unique within the run, e.g. "ws711-01"; safe for file names
  std::string group;      // host group from the setup
  std::string kernel;     // guest kernel (uncompressed ELF or bzImage)
  std::string initrd;     // guest initramfs
  std::string base_disk;  // read-only system disk image of the host's group (raw)
  std::vector<std::string> kernel_args;  // extra guest cmdline words, e.g. "winsim.host=ws711-01"
  NetworkLink network;
  int memory_mib = 256;
  std::vector<DiskImage> extra_disks;  // always attached, after the system disk
  // The emulated TPM: when set, a boot from the system disk in normal mode (and only that, as a
  // TPM releases a sealed key only to the measured boot path it was sealed to) gets it as the
  // fw_cfg file kTpmFwCfgName, from a 0600 file in the host's folder (never on a command line:
  // docs/GUEST-PROTOCOL.md). Hex.
  std::string tpm_secret;
};

// The fw_cfg entry that carries HostSpec::tpm_secret; the guest reads
// /sys/firmware/qemu_fw_cfg/by_name/opt/chaoslab/tpm/raw.
inline constexpr std::string_view kTpmFwCfgName = "opt/chaoslab/tpm";

enum class HostEventKind {
  kStarted,      // the machine was powered on (process running, vCPUs running)
  kConsoleLine,  // one line of serial console output (detail = the line, without newline)
  kPanicked,     // the guest reported a panic (QMP GUEST_PANICKED); detail = event JSON
  kReset,        // the machine reset (QMP RESET); detail = "guest" or "host"
  kStopped,      // vCPUs stopped (QMP STOP)
  kResumed,      // vCPUs running again (QMP RESUME)
  kShutdown,     // the guest shut down or was powered off (QMP SHUTDOWN)
  kLost,         // the machine vanished (process died, QMP socket closed unexpectedly)
};

std::string_view HostEventKindName(HostEventKind kind);

struct HostEvent {
  std::string host_id;
  HostEventKind kind;
  std::string detail;
  WallClock::time_point wall;  // when the lab received it
};

// One machine of the fleet. Owned by its Backend. Not thread-safe: the engine thread drives it.
// Every call returns promptly (no waiting for the guest); what the guest does arrives as events.
// A call refused with Unavailable means the machine is not there (its QEMU exited, its hypervisor
// went away or cannot be reached): the engine counts the host `lost`, as for kLost. Any other
// error is the call's own failure.
class Host {
 public:
  virtual ~Host() = default;
  virtual const HostSpec& spec() const = 0;
  virtual Status Start() = 0;     // power on; FailedPrecondition if already running
  virtual Status Reset() = 0;     // hard reset, like the reset button
  virtual Status Pause() = 0;     // stop the vCPUs (the machine keeps its state)
  virtual Status Resume() = 0;    // continue after Pause
  virtual Status PowerOff() = 0;  // pull the plug; the host can be started again
  // Types text on the serial console, as a person at the keyboard would.
  virtual Status SendConsole(std::string_view text) = 0;
  // What the next power-on or reset boots into, until changed (default kDisk). `media` is the
  // recovery image to attach for kUsb (read-only, as the next disk); empty otherwise.
  virtual Status SetBoot(BootTarget target, const std::string& media = {}) = 0;
  // Powered off only (FailedPrecondition otherwise): the system disk goes back to how it was when
  // the host was created (the pre-update snapshot), or is replaced by a fresh copy of the golden
  // base disk (reimage). Both discard everything the guest wrote.
  virtual Status RevertDisk() = 0;
  virtual Status ReimageDisk() = 0;
  // The system disk as the backend keeps it (to attach to a rescue VM while this one is off).
  virtual DiskImage SystemDisk() const = 0;
  // Everything the serial console printed so far (for reports and debugging).
  virtual std::string ConsoleLogPath() const = 0;
};

// Creates hosts and delivers their events. PollEvents may be called from one thread only;
// events of one host arrive in the order the host produced them.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  // The accelerator its QEMUs run on ("tcg", "kvm"; "" for a backend without QEMU): with the
  // image it decides the guest's clock (guest_clock.h), which reports name.
  virtual std::string accelerator() const { return ""; }
  // Creates (does not start) a host. The backend owns it until Destroy().
  virtual Result<Host*> CreateHost(const HostSpec& spec) = 0;
  // Waits up to `timeout` for at least one event; appends all pending events to `out`.
  virtual Status PollEvents(std::chrono::milliseconds timeout, std::vector<HostEvent>* out) = 0;
  // Powers off and removes every host and every file the backend created. Idempotent.
  virtual Status Destroy() = 0;
  // Why the host side of a guest's network path (QEMU's main loop) could not run in real time, for
  // the first host where it could not (lab_priority.h); empty when it could, or is not asked.
  virtual std::string HostPathShortfall() const { return ""; }
};

}  // namespace chaoslab
