#include "lab/libvirt/domain_xml.h"

#include <regex>

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

// QEMU option values ("a=b,c=d"): a comma inside a value is doubled.
std::string OptEscape(const std::string& value) {
  std::string out;
  for (char c : value) {
    out += c;
    if (c == ',') out += ',';
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

std::string KernelCmdline(const HostSpec& spec, BootTarget boot, int tsc_khz) {
  std::string append =
      "console=ttyS0 quiet panic=-1 mitigations=off tsc=reliable no_timer_check cryptomgr.notests";
  if (tsc_khz > 0) append += " tsc_early_khz=" + std::to_string(tsc_khz);
  for (const auto& word : spec.kernel_args) append += " " + word;
  append += " winsim.boot=" + std::string(BootTargetWord(boot));
  // A TPM unseals its key only for the boot path it was sealed to: the normal boot from the disk.
  if (boot == BootTarget::kDisk && !spec.tpm_secret.empty()) {
    append += " winsim.tpm=" + spec.tpm_secret;
  }
  return append;
}

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

std::string DomainXml(const DomainXmlInput& in) {
  const HostSpec& spec = in.spec;
  std::string xml = "<domain type='" + std::string(in.accel == "kvm" ? "kvm" : "qemu") +
                    "' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>\n";
  xml += "  <name>" + Esc(in.name) + "</name>\n";
  xml += "  <metadata>\n    " + OwnershipXml(in.owner) + "\n  </metadata>\n";
  xml += "  <memory unit='MiB'>" + std::to_string(spec.memory_mib) + "</memory>\n";
  xml += "  <vcpu>1</vcpu>\n";
  xml += "  <os>\n    <type arch='x86_64' machine='pc'>hvm</type>\n";
  if (!in.bios_rom.empty()) xml += "    <loader type='rom'>" + Esc(in.bios_rom) + "</loader>\n";
  xml += "    <kernel>" + Esc(spec.kernel) + "</kernel>\n";
  xml += "    <initrd>" + Esc(spec.initrd) + "</initrd>\n";
  xml += "    <cmdline>" + Esc(KernelCmdline(spec, in.boot, in.tsc_khz)) + "</cmdline>\n";
  xml += "  </os>\n";
  if (in.windows) {
    xml +=
        "  <features>\n    <acpi/>\n    <hyperv mode='custom'>\n      <relaxed state='on'/>\n"
        "    </hyperv>\n  </features>\n";
  }
  if (in.accel == "kvm") xml += "  <cpu mode='host-passthrough'/>\n";
  // Resets are cold, as with the QEMU backend: on_reboot=destroy makes QEMU exit on any reset
  // (-no-reboot) and the backend starts the domain again with the boot target of that moment
  // (SetBoot applies to the next reset). A crash is left to the guest (panic=-1 reboots it), so
  // libvirt neither pauses nor restarts it behind our back.
  xml +=
      "  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>destroy</on_reboot>\n"
      "  <on_crash>preserve</on_crash>\n";
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
  xml += "    <serial type='unix'>\n      <source mode='bind' path='" +
         Esc(in.files.console_socket) + "'/>\n      <log file='" + Esc(in.files.serial_log) +
         "' append='on'/>\n      <target port='0'/>\n    </serial>\n";
  xml += "    <controller type='usb' model='none'/>\n    <memballoon model='none'/>\n";
  if (in.windows) xml += "    <panic model='hyperv'/>\n";
  xml += "  </devices>\n  <qemu:commandline>\n";
  if (!in.windows) {
    // Without an explicit address pvpanic-pci collides with libvirt's own slot 2.
    Arg(&xml, "-device");
    Arg(&xml, "pvpanic-pci,bus=pci.0,addr=0x1f");
  }
  Arg(&xml, "-action");
  Arg(&xml, "panic=none");
  if (spec.network.online) {
    // The guest reaches exactly one thing: 10.0.2.100:80, relayed to the content server's port.
    // libslirp splits the cmd: string into words itself (no shell); nothing here is unchecked.
    std::string cmd = in.relay + " --port " + std::to_string(spec.network.content_port);
    if (spec.network.loss_percent > 0) {
      cmd += " --loss-percent " + std::to_string(spec.network.loss_percent);
    }
    if (spec.network.delay_ms > 0 || spec.network.jitter_ms > 0) {
      cmd += " --delay-ms " + std::to_string(spec.network.delay_ms) + " --jitter-ms " +
             std::to_string(spec.network.jitter_ms);
    }
    Arg(&xml, "-netdev");
    Arg(&xml, "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:80-cmd:" + OptEscape(cmd));
    Arg(&xml, "-device");
    Arg(&xml, "virtio-net-pci,netdev=n0,romfile=,bus=pci.0,addr=0x1e");
  }
  xml += "  </qemu:commandline>\n</domain>\n";
  return xml;
}

}  // namespace chaoslab::libvirt
