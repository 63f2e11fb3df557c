// Domain XML for one libvirt guest of the lab: a pure function of the host, its files and the boot.
//
// What the guest needs is what lab/vm's QemuArgs gives it, in libvirt's words: TCG ('qemu' domain
// type) or KVM, machine 'pc', one vCPU, qboot as the ROM when present (no BIOS banner, one RESET
// per crash), direct kernel boot with `winsim.boot=` (and the TPM secret's file as a fw_cfg
// <sysinfo> entry only for a normal disk boot), the system overlay as vda, the USB media (kUsb
// only, read-only) and the extra disks as vdb..., the serial console on a unix socket with a log
// file. libvirt 9.0 has no usable panic model for this guest (PLATFORM-NOTES.md), so the
// pvpanic-pci device and `-action panic=none` (the guest reboots itself with panic=-1; QMP
// GUEST_PANICKED {"action":"run"}, then the reset, which ends the domain: on_reboot=destroy, the
// backend starts it again cold, as lab/vm does) go through the qemu:commandline namespace. So does
// the network: libvirt's user-mode interface has no guestfwd, and the guest must reach
// exactly 10.0.2.100:80, relayed by chaoslab-relay to the content server on loopback (restrict=on:
// nothing else).
//
// Windows guests (`windows`, images of kind windows: docs/WINDOWS.md) are a different machine: q35
// with UEFI (OVMF pflash code, read-only, and per-domain NVRAM vars made from the firmware's
// template; Secure Boot with SMM), a TPM 2.0 (swtpm: libvirt's own emulator, or an swtpm the lab
// runs with the golden image's TPM state, which BitLocker's TPM protector is sealed to), Hyper-V
// enlightenments, <panic model='hyperv'/> (QEMU's hv-crash: the bugcheck code and parameters arrive
// in GUEST_PANICKED, lab/backend/bugcheck.h), the golden image's overlay as a SATA disk and an
// e1000e NIC (Windows has drivers for both in the box; virtio needs virtio-win), the serial console
// as COM1 for EMS/SAC, and optionally the QEMU guest agent channel. Its network is the same single
// guestfwd. No kernel, no command line: boot targets are chosen inside Windows (bcdedit over SAC).
//
// Ownership: <metadata><chaoslab:lab .../></metadata> names the run, the host, the orchestrator
// (machine, pid, start time: gc leaves domains of a live orchestrator alone) and the files the lab
// made for this domain, so that `chaoslab gc` can remove exactly those.
#pragma once

#include <string>
#include <vector>

#include "lab/backend/backend.h"
#include "lab/backend/guest_clock.h"  // KernelCmdline, shared with the QEMU backend

namespace chaoslab::libvirt {

inline constexpr const char* kMetadataUri = "https://chaoslab.dev/xmlns/1";
inline constexpr const char* kMetadataPrefix = "chaoslab";

// Who made a domain and what it owns (the attributes of <chaoslab:lab>).
struct Ownership {
  std::string run_id;
  std::string host_id;
  std::string owner_machine;  // hostname of the orchestrator
  int owner_pid = 0;
  std::string owner_start;         // /proc/<pid>/stat field 22: names the process with the pid
  std::vector<std::string> files;  // absolute paths the lab created for this domain
};

struct DomainFiles {
  std::string overlay;         // qcow2 system disk
  std::string console_socket;  // unix socket of the serial console (bound by QEMU)
  std::string serial_log;      // everything the console printed
  // Windows only: COM2, where the lab's agent writes its protocol lines (COM1 belongs to EMS).
  std::string agent_socket;  // unix socket (bound by QEMU); empty: no COM2
  std::string agent_log;
  // 0600 file holding spec.tpm_secret, given to the guest as fw_cfg (normal disk boots only).
  std::string tpm_secret;
};

struct DomainXmlInput {
  std::string name;  // domain name, unique on the hypervisor
  HostSpec spec;     // paths absolute
  DomainFiles files;
  Ownership owner;
  BootTarget boot = BootTarget::kDisk;
  DiskImage usb_media;        // attached as the next disk for kUsb (read-only)
  std::string accel = "tcg";  // "tcg" -> type 'qemu', "kvm" -> type 'kvm'
  std::string emulator = "/usr/bin/qemu-system-x86_64";
  std::string bios_rom;  // e.g. /usr/share/qemu/qboot.rom; empty = libvirt's default firmware
  std::string relay;     // chaoslab-relay path; required when spec.network.online
  int tsc_khz = 0;       // > 0: tsc_early_khz= on the kernel command line
  bool windows = false;  // a Windows guest: everything below; the kernel fields are unused
  // Windows only. UEFI code (read-only pflash) and the template of its variable store; `nvram` is
  // this domain's copy (libvirt creates it from the template when it does not exist).
  std::string ovmf_code = "/usr/share/OVMF/OVMF_CODE_4M.ms.fd";
  std::string ovmf_vars_template = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd";
  std::string nvram;
  bool secure_boot = true;  // Windows 11 needs it; BitLocker binds to it (PCR 7)
  // The TPM: empty = libvirt runs swtpm itself (a fresh TPM per domain: BitLocker then asks for
  // the recovery password at every boot); a path = connect to the swtpm the lab started on this
  // unix socket with a copy of the golden image's TPM state (backend type 'external').
  std::string tpm_socket;
  std::string guest_agent_socket;  // non-empty: the QEMU guest agent channel on this socket
  int vcpus = 2;                   // Windows Setup refuses fewer than 2 for Windows 11
};

// The whole <domain> document. Values are XML-escaped; QEMU option values have commas doubled.
std::string DomainXml(const DomainXmlInput& in);

// The <chaoslab:lab> element alone (what virDomainSetMetadata takes and GetMetadata returns).
std::string OwnershipXml(const Ownership& owner);

// Reads the attributes back from a <chaoslab:lab> element, or from the bare <lab> element that
// virDomainGetMetadata returns for our namespace URI. InvalidArgument if it is not one (another
// namespace, no run id).
Result<Ownership> ParseOwnershipXml(const std::string& xml);

}  // namespace chaoslab::libvirt
