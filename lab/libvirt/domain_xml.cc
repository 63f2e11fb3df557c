#include "lab/libvirt/domain_xml.h"

#include <algorithm>
#include <regex>

#include "lab/backend/guest_clock.h"
#include "lab/backend/guest_network.h"

namespace chaoslab::libvirt {
namespace {

std::string Esc(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string Unesc(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      out += s[i];
      continue;
    }
    size_t semi = s.find(';', i);
    if (semi == std::string::npos) {
      out += s.substr(i);
      break;
    }
    const std::string ent = s.substr(i + 1, semi - i - 1);
    if (ent == "amp")
      out += '&';
    else if (ent == "lt")
      out += '<';
    else if (ent == "gt")
      out += '>';
    else if (ent == "quot")
      out += '"';
    else if (ent == "apos")
      out += '\'';
    else
      out += "&" + ent + ";";
    i = semi;
  }
  return out;
}

std::string DiskXml(const DiskImage& disk, const std::string& target) {
  std::string xml = "    <disk type='file' device='disk'>\n      <driver name='qemu' type='" +
                    Esc(disk.format) + "'/>\n      <source file='" + Esc(disk.path) +
                    "'/>\n      <target dev='" + target + "' bus='virtio'/>\n";
  if (disk.read_only) xml += "      <readonly/>\n";
  return xml + "    </disk>\n";
}

void Arg(std::string* xml, const std::string& value) {
  *xml += "    <qemu:arg value='" + Esc(value) + "'/>\n";
}

}  // namespace

std::string OwnershipXml(const Ownership& o) {
  std::string xml = std::string("<") + kMetadataPrefix + ":lab xmlns:" + kMetadataPrefix + "=\"" +
                    kMetadataUri + "\" run=\"" + Esc(o.run_id) + "\" host=\"" + Esc(o.host_id) +
                    "\" owner-machine=\"" + Esc(o.owner_machine) + "\" owner-pid=\"" +
                    std::to_string(o.owner_pid) + "\" owner-start=\"" + Esc(o.owner_start) + "\">";
  for (const auto& f : o.files) {
    xml += std::string("<") + kMetadataPrefix + ":file path=\"" + Esc(f) + "\"/>";
  }
  return xml + "</" + kMetadataPrefix + ":lab>";
}

Result<Ownership> ParseOwnershipXml(const std::string& xml) {
  static const std::regex open(R"re(<([A-Za-z_][\w.-]*:)?lab\b([^>]*)>)re");
  static const std::regex attr(R"re(([\w:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'))re");
  static const std::regex file(R"re(<([A-Za-z_][\w.-]*:)?file\b([^>]*)/?>)re");
  std::smatch m;
  if (!std::regex_search(xml, m, open)) {
    return Status::InvalidArgument("not a chaoslab:lab element: " + xml.substr(0, 80));
  }
  auto attrs = [&](const std::string& text) {
    std::vector<std::pair<std::string, std::string>> out;
    for (std::sregex_iterator it(text.begin(), text.end(), attr), end; it != end; ++it) {
      out.emplace_back((*it)[1], Unesc((*it)[2].matched ? (*it)[2].str() : (*it)[3].str()));
    }
    return out;
  };
  Ownership o;
  // virDomainGetMetadata, asked for our namespace URI, returns the element without prefix or
  // xmlns: the namespace is then implied. Any other namespace is not ours.
  bool namespaced = true;
  for (const auto& [k, v] : attrs(m[2])) {
    if (k == "run")
      o.run_id = v;
    else if (k == "host")
      o.host_id = v;
    else if (k == "owner-machine")
      o.owner_machine = v;
    else if (k == "owner-pid")
      o.owner_pid = std::atoi(v.c_str());
    else if (k == "owner-start")
      o.owner_start = v;
    else if (k.starts_with("xmlns"))
      namespaced = v == kMetadataUri;
  }
  if (!namespaced || o.run_id.empty()) {
    return Status::InvalidArgument("lab element without the chaoslab namespace or a run id");
  }
  const std::string rest = m.suffix();
  for (std::sregex_iterator it(rest.begin(), rest.end(), file), end; it != end; ++it) {
    for (const auto& [k, v] : attrs((*it)[2])) {
      if (k == "path") o.files.push_back(v);
    }
  }
  return o;
}

namespace {

// The guest's only network path: user-mode, restricted, one guestfwd to chaoslab-relay.
void NetworkArgs(std::string* xml, const DomainXmlInput& in, const std::string& device) {
  const HostSpec& spec = in.spec;
  if (!spec.network.online) return;
  // The guest reaches exactly one thing: 10.0.2.100:80, relayed to the content server's port
  // (the spec's link was validated before any XML is made, so this cannot fail here).
  Result<std::string> netdev = GuestfwdNetdev(in.relay, spec.network);
  Arg(xml, "-netdev");
  Arg(xml, netdev.ok() ? *netdev : "user,id=n0,restrict=on");
  Arg(xml, "-device");
  Arg(xml, device);
}

std::string SerialXml(const std::string& socket, const std::string& log, int port) {
  return "    <serial type='unix'>\n      <source mode='bind' path='" + Esc(socket) +
         "'/>\n      <log file='" + Esc(log) + "' append='on'/>\n      <target port='" +
         std::to_string(port) + "'/>\n    </serial>\n";
}

// Resets are cold, as with the QEMU backend: on_reboot=destroy makes QEMU exit on any reset
// (-no-reboot) and the backend starts the domain again with the boot target of that moment
// (SetBoot applies to the next reset). A crash is left to the guest (panic=-1 reboots winsim,
// AutoReboot a Windows guest), so libvirt neither pauses nor restarts it behind our back.
constexpr char kLifecycle[] =
    "  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>destroy</on_reboot>\n"
    "  <on_crash>preserve</on_crash>\n";

std::string Head(const DomainXmlInput& in, int memory_mib, int vcpus) {
  std::string xml = "<domain type='" + std::string(in.accel == "kvm" ? "kvm" : "qemu") +
                    "' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>\n";
  xml += "  <name>" + Esc(in.name) + "</name>\n";
  xml += "  <metadata>\n    " + OwnershipXml(in.owner) + "\n  </metadata>\n";
  xml += "  <memory unit='MiB'>" + std::to_string(memory_mib) + "</memory>\n";
  xml += "  <vcpu>" + std::to_string(vcpus) + "</vcpu>\n";
  return xml;
}

std::string WindowsDomainXml(const DomainXmlInput& in) {
  const bool kvm = in.accel == "kvm";
  // Windows Setup and Windows 11 refuse less than 2 GiB; winsim's 256 MiB default is no use here.
  std::string xml = Head(in, std::max(in.spec.memory_mib, 2048), std::max(in.vcpus, 1));
  xml += "  <os>\n    <type arch='x86_64' machine='q35'>hvm</type>\n";
  xml += "    <loader readonly='yes' secure='" + std::string(in.secure_boot ? "yes" : "no") +
         "' type='pflash'>" + Esc(in.ovmf_code) + "</loader>\n";
  xml += "    <nvram template='" + Esc(in.ovmf_vars_template) + "'>" + Esc(in.nvram) + "</nvram>\n";
  xml += "    <boot dev='hd'/>\n  </os>\n";
  // Under TCG QEMU 7.2 refuses hv-vpindex ("kernel doesn't allow setting HyperV VP_INDEX"), and
  // synic and stimer need it: TCG gets the enlightenments that need no KVM support.
  xml += "  <features>\n    <acpi/>\n    <apic/>\n    <hyperv mode='custom'>\n";
  xml +=
      "      <relaxed state='on'/>\n      <vapic state='on'/>\n"
      "      <spinlocks state='on' retries='8191'/>\n";
  if (kvm) {
    xml +=
        "      <vpindex state='on'/>\n      <runtime state='on'/>\n      <synic state='on'/>\n"
        "      <stimer state='on'/>\n      <reset state='on'/>\n"
        "      <frequencies state='on'/>\n";
  }
  xml += "    </hyperv>\n";
  if (in.secure_boot) xml += "    <smm state='on'/>\n";
  xml += "  </features>\n";
  if (kvm) xml += "  <cpu mode='host-passthrough'/>\n";
  // Windows keeps the RTC in local time.
  xml += "  <clock offset='localtime'>\n    <timer name='rtc' tickpolicy='catchup'/>\n";
  if (kvm) xml += "    <timer name='hypervclock' present='yes'/>\n";
  xml += "  </clock>\n";
  xml += kLifecycle;
  xml += "  <devices>\n    <emulator>" + Esc(in.emulator) + "</emulator>\n";
  // SATA (AHCI) has an in-box driver; virtio-blk would need virtio-win in the golden image.
  char next = 'a';
  auto sata = [&](const DiskImage& disk) {
    std::string d = "    <disk type='file' device='disk'>\n      <driver name='qemu' type='" +
                    Esc(disk.format) + "'/>\n      <source file='" + Esc(disk.path) +
                    "'/>\n      <target dev='sd" + std::string(1, next++) + "' bus='sata'/>\n";
    if (disk.read_only) d += "      <readonly/>\n";
    return d + "    </disk>\n";
  };
  xml += sata(DiskImage{in.files.overlay, "qcow2", false});
  for (const auto& disk : in.spec.extra_disks) xml += sata(disk);
  // COM1: Windows' Emergency Management Services (bcdedit /ems on) put SAC here, the lab's console.
  xml += SerialXml(in.files.console_socket, in.files.serial_log, 0);
  // COM2: the agent's protocol lines (`csagent.exe --serial COM2`; `@@winsim ready` and the rest).
  if (!in.files.agent_socket.empty())
    xml += SerialXml(in.files.agent_socket, in.files.agent_log, 1);
  if (!in.guest_agent_socket.empty()) {
    xml += "    <channel type='unix'>\n      <source mode='bind' path='" +
           Esc(in.guest_agent_socket) +
           "'/>\n      <target type='virtio' name='org.qemu.guest_agent.0'/>\n    </channel>\n";
  }
  xml += "    <tpm model='tpm-crb'>\n";
  if (in.tpm_socket.empty()) {
    xml += "      <backend type='emulator' version='2.0'/>\n";
  } else {
    xml += "      <backend type='external'>\n        <source type='unix' mode='connect' path='" +
           Esc(in.tpm_socket) + "'/>\n      </backend>\n";
  }
  xml += "    </tpm>\n";
  xml += "    <controller type='usb' model='none'/>\n    <memballoon model='none'/>\n";
  // hv-crash: Windows writes its bugcheck to the crash MSRs, QEMU sends them in GUEST_PANICKED.
  xml += "    <panic model='hyperv'/>\n";
  xml += "  </devices>\n  <qemu:commandline>\n";
  Arg(&xml, "-action");
  Arg(&xml, "panic=none");
  // e1000e: in-box driver. On q35's root complex, at a slot libvirt does not hand out.
  NetworkArgs(&xml, in, "e1000e,netdev=n0,romfile=,bus=pcie.0,addr=0x1e");
  xml += "  </qemu:commandline>\n</domain>\n";
  return xml;
}

}  // namespace

std::string DomainXml(const DomainXmlInput& in) {
  if (in.windows) return WindowsDomainXml(in);
  const HostSpec& spec = in.spec;
  std::string xml = Head(in, spec.memory_mib, 1);
  xml += "  <os>\n    <type arch='x86_64' machine='pc'>hvm</type>\n";
  if (!in.bios_rom.empty()) xml += "    <loader type='rom'>" + Esc(in.bios_rom) + "</loader>\n";
  xml += "    <kernel>" + Esc(spec.kernel) + "</kernel>\n";
  xml += "    <initrd>" + Esc(spec.initrd) + "</initrd>\n";
  xml += "    <cmdline>" + Esc(KernelCmdline(spec, in.boot, in.tsc_khz)) + "</cmdline>\n";
  // A TPM unseals its key only for the boot path it was sealed to: the normal boot from the disk.
  // From a 0600 file as fw_cfg, never on the command line (readable in /proc by every user).
  // No <smbios mode='sysinfo'/>: libvirt 9.0 then wants an SMBIOS <sysinfo> and refuses the domain.
  const bool tpm = in.boot == BootTarget::kDisk && !in.files.tpm_secret.empty();
  xml += "  </os>\n";
  if (tpm) {
    xml += "  <sysinfo type='fwcfg'>\n    <entry name='" + std::string(kTpmFwCfgName) + "' file='" +
           Esc(in.files.tpm_secret) + "'/>\n  </sysinfo>\n";
  }
  if (in.accel == "kvm") xml += "  <cpu mode='host-passthrough'/>\n";
  xml += kLifecycle;
  xml += "  <devices>\n    <emulator>" + Esc(in.emulator) + "</emulator>\n";
  // virtio disks in target order get PCI slots in this order, so the guest names them likewise.
  char next = 'a';
  auto target = [&] { return std::string("vd") + next++; };
  xml += DiskXml(DiskImage{in.files.overlay, "qcow2", false}, target());
  if (in.boot == BootTarget::kUsb && !in.usb_media.path.empty()) {
    DiskImage media = in.usb_media;
    media.read_only = true;
    xml += DiskXml(media, target());
  }
  for (const auto& disk : spec.extra_disks) xml += DiskXml(disk, target());
  xml += SerialXml(in.files.console_socket, in.files.serial_log, 0);
  xml += "    <controller type='usb' model='none'/>\n    <memballoon model='none'/>\n";
  xml += "  </devices>\n  <qemu:commandline>\n";
  // Without an explicit address pvpanic-pci collides with libvirt's own slot 2.
  Arg(&xml, "-device");
  Arg(&xml, "pvpanic-pci,bus=pci.0,addr=0x1f");
  Arg(&xml, "-action");
  Arg(&xml, "panic=none");
  NetworkArgs(&xml, in, "virtio-net-pci,netdev=n0,romfile=,bus=pci.0,addr=0x1e");
  // libvirt has no element for instruction counting: the guest's clock goes to QEMU directly.
  for (const std::string& word : GuestClockArgs(GuestClockFor(in.accel, spec))) Arg(&xml, word);
  xml += "  </qemu:commandline>\n</domain>\n";
  return xml;
}

}  // namespace chaoslab::libvirt
