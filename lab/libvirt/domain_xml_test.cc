#include "lab/libvirt/domain_xml.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <utility>
#include <vector>

namespace chaoslab::libvirt {
namespace {

DomainXmlInput Sample() {
  DomainXmlInput in;
  in.name = "chaoslab-r1-ws-01";
  in.spec.id = "ws-01";
  in.spec.group = "ws";
  in.spec.kernel = "/img/vmlinux";
  in.spec.initrd = "/img/initramfs.cpio";
  in.spec.base_disk = "/run/disks/ws.img";
  in.spec.kernel_args = {"winsim.host=ws-01"};
  in.spec.network.online = true;
  in.spec.network.content_port = 4242;
  in.spec.network.delay_ms = 40;
  in.spec.network.jitter_ms = 30;
  in.spec.tpm_secret = "abcd";
  in.files = {"/rt/r1/ws-01/overlay.qcow2", "/rt/r1/ws-01/console.sock", "/rt/r1/ws-01/serial.log"};
  in.files.tpm_secret = "/rt/r1/ws-01/tpm.secret";
  in.owner = {"r1", "ws-01", "labbox", 123, "4567", {"/rt/r1/ws-01"}};
  in.relay = "/build/bin/chaoslab-relay";
  in.bios_rom = "/usr/share/qemu/qboot.rom";
  in.tsc_khz = 2000000;
  return in;
}

size_t Count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

// Before: `winsim.tpm=beef` on the command line, readable in /proc by every local user.
TEST(KernelCmdline, NeverCarriesTheTpmSecret) {
  HostSpec spec;
  spec.kernel_args = {"winsim.host=a"};
  spec.tpm_secret = "beef";
  std::string disk = KernelCmdline(spec, BootTarget::kDisk, 1000);
  EXPECT_NE(disk.find("tsc_early_khz=1000 winsim.host=a winsim.boot=normal"), std::string::npos)
      << disk;
  EXPECT_EQ(disk.find("beef"), std::string::npos) << disk;
  std::string safe = KernelCmdline(spec, BootTarget::kSafeMode, 0);
  EXPECT_NE(safe.find("winsim.boot=safe"), std::string::npos);
  EXPECT_EQ(safe.find("winsim.tpm"), std::string::npos);
  EXPECT_EQ(safe.find("tsc_early_khz"), std::string::npos);
}

// The same guest clock as the QEMU backend's (guest_clock.h): libvirt has no element for it, so
// under TCG it goes to QEMU through <qemu:commandline>.
TEST(DomainXml, InstructionCountingUnderTcgOnly) {
  DomainXmlInput in = Sample();
  in.accel = "tcg";
  std::string xml = DomainXml(in);
  EXPECT_NE(
      xml.find("<qemu:arg value='-icount'/>\n    <qemu:arg value='shift=0,sleep=on,align=off'/>"),
      std::string::npos)
      << xml;
  in.accel = "kvm";
  EXPECT_EQ(DomainXml(in).find("-icount"), std::string::npos);
}

TEST(DomainXml, HasWhatTheGuestNeeds) {
  std::string xml = DomainXml(Sample());
  EXPECT_NE(xml.find("<domain type='qemu'"), std::string::npos);
  EXPECT_NE(xml.find("machine='pc'"), std::string::npos);
  EXPECT_NE(xml.find("<loader type='rom'>/usr/share/qemu/qboot.rom</loader>"), std::string::npos);
  EXPECT_NE(xml.find("<kernel>/img/vmlinux</kernel>"), std::string::npos);
  EXPECT_NE(xml.find("winsim.boot=normal</cmdline>"), std::string::npos);
  // The TPM secret from its 0600 file as fw_cfg, not in the document (libvirt shows the domain
  // XML and QEMU's argv to whoever may read them).
  EXPECT_EQ(xml.find("abcd"), std::string::npos) << xml;
  EXPECT_NE(xml.find("<sysinfo type='fwcfg'>\n    <entry name='opt/chaoslab/tpm' "
                     "file='/rt/r1/ws-01/tpm.secret'/>\n  </sysinfo>"),
            std::string::npos)
      << xml;
  // libvirt 9.0 refuses <smbios mode='sysinfo'/> without an SMBIOS <sysinfo> ("sysinfo are not
  // available"); the fwcfg entry alone becomes -fw_cfg (virsh domxml-to-native).
  EXPECT_EQ(xml.find("<smbios"), std::string::npos);
  EXPECT_NE(xml.find("<on_reboot>destroy</on_reboot>"), std::string::npos);
  EXPECT_NE(xml.find("<on_crash>preserve</on_crash>"), std::string::npos);
  EXPECT_NE(xml.find("pvpanic-pci,bus=pci.0,addr=0x1f"), std::string::npos);
  EXPECT_NE(xml.find("<qemu:arg value='panic=none'/>"), std::string::npos);
  EXPECT_NE(xml.find("<source mode='bind' path='/rt/r1/ws-01/console.sock'/>"), std::string::npos);
  EXPECT_NE(xml.find("<log file='/rt/r1/ws-01/serial.log' append='on'/>"), std::string::npos);
  // Exactly one network path: user-mode, restricted, one guestfwd to the relay.
  EXPECT_NE(xml.find("user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:80-cmd:/build/bin/"
                     "chaoslab-relay --port 4242 --delay-ms 40 --jitter-ms 30"),
            std::string::npos)
      << xml;
  EXPECT_EQ(Count(xml, "<interface"), 0u);
  EXPECT_EQ(Count(xml, "-netdev"), 1u);
  EXPECT_NE(xml.find("run=\"r1\" host=\"ws-01\""), std::string::npos);
}

TEST(DomainXml, DisksInGuestOrder) {
  DomainXmlInput in = Sample();
  in.spec.extra_disks = {{"/d/extra.qcow2", "qcow2", false}};
  in.boot = BootTarget::kUsb;
  in.usb_media = {"/d/winpe.img", "raw", false};
  std::string xml = DomainXml(in);
  size_t sys = xml.find("overlay.qcow2' /><target dev='vda'");
  (void)sys;
  size_t a = xml.find("<target dev='vda'"), b = xml.find("<target dev='vdb'"),
         c = xml.find("<target dev='vdc'");
  ASSERT_NE(a, std::string::npos);
  ASSERT_NE(b, std::string::npos);
  ASSERT_NE(c, std::string::npos);
  EXPECT_LT(xml.find("overlay.qcow2"), a);
  EXPECT_LT(xml.find("winpe.img"), b);
  EXPECT_GT(xml.find("winpe.img"), a);
  EXPECT_LT(xml.find("extra.qcow2"), c);
  EXPECT_GT(xml.find("extra.qcow2"), b);
  EXPECT_EQ(Count(xml, "<readonly/>"), 1u);  // the media only
  EXPECT_NE(xml.find("winsim.boot=usb"), std::string::npos);
  EXPECT_EQ(xml.find("winsim.tpm"), std::string::npos);
  EXPECT_EQ(xml.find("tpm.secret"), std::string::npos) << "no TPM secret outside normal boot";
}

TEST(DomainXml, OfflineHostHasNoNetworkAndWindowsGetsHyperV) {
  DomainXmlInput in = Sample();
  in.spec.network.online = false;
  in.windows = true;
  std::string xml = DomainXml(in);
  EXPECT_EQ(xml.find("-netdev"), std::string::npos);
  EXPECT_NE(xml.find("<panic model='hyperv'/>"), std::string::npos);
  EXPECT_EQ(xml.find("pvpanic"), std::string::npos);
}

TEST(DomainXml, EscapesValues) {
  DomainXmlInput in = Sample();
  in.files.overlay = "/tmp/a&b<c>'d.qcow2";
  // A relay path that QEMU would split is refused before any XML is made (GuestfwdNetdev, checked
  // by the backend's spec validation); should one get here, it never reaches the command line.
  in.relay = "/bin/re,lay";
  std::string xml = DomainXml(in);
  EXPECT_NE(xml.find("/tmp/a&amp;b&lt;c&gt;&apos;d.qcow2"), std::string::npos);
  EXPECT_EQ(xml.find("re,lay"), std::string::npos);
  EXPECT_EQ(xml.find("re,,lay"), std::string::npos);
}

DomainXmlInput WindowsSample() {
  DomainXmlInput in = Sample();
  in.name = "chaoslab-r1-win-01";
  in.windows = true;
  in.files = {"/rt/r1/win-01/overlay.qcow2", "/rt/r1/win-01/console.sock",
              "/rt/r1/win-01/serial.log", "/rt/r1/win-01/agent.sock", "/rt/r1/win-01/agent.log"};
  in.nvram = "/rt/r1/win-01/OVMF_VARS.fd";
  return in;
}

TEST(DomainXml, WindowsIsUefiWithTpmHyperVAndEms) {
  std::string xml = DomainXml(WindowsSample());
  EXPECT_NE(xml.find("machine='q35'"), std::string::npos);
  EXPECT_NE(xml.find("<loader readonly='yes' secure='yes' type='pflash'>/usr/share/OVMF/"
                     "OVMF_CODE_4M.ms.fd</loader>"),
            std::string::npos)
      << xml;
  EXPECT_NE(xml.find("<nvram template='/usr/share/OVMF/OVMF_VARS_4M.ms.fd'>/rt/r1/win-01/"
                     "OVMF_VARS.fd</nvram>"),
            std::string::npos);
  EXPECT_NE(xml.find("<smm state='on'/>"), std::string::npos);
  EXPECT_NE(xml.find("<tpm model='tpm-crb'>\n      <backend type='emulator' version='2.0'/>"),
            std::string::npos);
  EXPECT_NE(xml.find("<hyperv mode='custom'>"), std::string::npos);
  EXPECT_NE(xml.find("<relaxed state='on'/>"), std::string::npos);
  // TCG: QEMU 7.2 refuses hv-vpindex without KVM, so none of what needs it.
  EXPECT_EQ(xml.find("vpindex"), std::string::npos);
  EXPECT_EQ(xml.find("synic"), std::string::npos);
  EXPECT_NE(xml.find("<panic model='hyperv'/>"), std::string::npos);
  EXPECT_EQ(xml.find("pvpanic"), std::string::npos);
  // No direct kernel boot, no winsim words.
  EXPECT_EQ(xml.find("<kernel>"), std::string::npos);
  EXPECT_EQ(xml.find("winsim."), std::string::npos);
  // In-box drivers: SATA disk, e1000e NIC; still exactly one network path.
  EXPECT_NE(xml.find("<target dev='sda' bus='sata'/>"), std::string::npos);
  EXPECT_EQ(xml.find("bus='virtio'"), std::string::npos);
  EXPECT_NE(xml.find("guestfwd=tcp:10.0.2.100:80-cmd:/build/bin/chaoslab-relay --port 4242"),
            std::string::npos);
  EXPECT_NE(xml.find("e1000e,netdev=n0,romfile=,bus=pcie.0"), std::string::npos);
  EXPECT_EQ(Count(xml, "-netdev"), 1u);
  EXPECT_EQ(Count(xml, "<interface"), 0u);
  // The EMS/SAC console is the serial port, logged.
  EXPECT_NE(xml.find("<source mode='bind' path='/rt/r1/win-01/console.sock'/>"), std::string::npos);
  // COM2 carries the agent's protocol lines, logged too.
  const size_t com2 = xml.find("<source mode='bind' path='/rt/r1/win-01/agent.sock'/>");
  ASSERT_NE(com2, std::string::npos) << xml;
  EXPECT_NE(
      xml.find("<log file='/rt/r1/win-01/agent.log' append='on'/>\n      <target port='1'/>", com2),
      std::string::npos)
      << xml;
  EXPECT_EQ(Count(xml, "<serial type='unix'>"), 2u);
  EXPECT_NE(xml.find("<memory unit='MiB'>2048</memory>"), std::string::npos);
  EXPECT_NE(xml.find("<vcpu>2</vcpu>"), std::string::npos);
  EXPECT_EQ(xml.find("guest_agent"), std::string::npos);  // only when asked for
}

TEST(DomainXml, WindowsOnKvmWithGoldenTpmAndGuestAgent) {
  DomainXmlInput in = WindowsSample();
  in.accel = "kvm";
  in.tpm_socket = "/rt/r1/win-01/swtpm.sock";
  in.guest_agent_socket = "/rt/r1/win-01/qga.sock";
  in.secure_boot = false;
  in.ovmf_code = "/usr/share/OVMF/OVMF_CODE_4M.fd";
  in.ovmf_vars_template = "/usr/share/OVMF/OVMF_VARS_4M.fd";
  std::string xml = DomainXml(in);
  EXPECT_NE(xml.find("<domain type='kvm'"), std::string::npos);
  EXPECT_NE(xml.find("secure='no' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd"),
            std::string::npos);
  EXPECT_EQ(xml.find("<smm"), std::string::npos);
  EXPECT_NE(xml.find("<vpindex state='on'/>"), std::string::npos);
  EXPECT_NE(xml.find("<timer name='hypervclock' present='yes'/>"), std::string::npos);
  EXPECT_NE(xml.find("<backend type='external'>\n        <source type='unix' mode='connect' "
                     "path='/rt/r1/win-01/swtpm.sock'/>"),
            std::string::npos)
      << xml;
  EXPECT_NE(xml.find("<target type='virtio' name='org.qemu.guest_agent.0'/>"), std::string::npos);
  EXPECT_NE(xml.find("path='/rt/r1/win-01/qga.sock'"), std::string::npos);
}

// libvirt's own schema accepts what we generate (virt-xml-validate from libvirt-clients), for both
// kinds of guest, each in its variants.
TEST(DomainXml, ValidatesAgainstLibvirtSchema) {
  if (std::system("command -v virt-xml-validate >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "virt-xml-validate not installed";
  }
  std::vector<std::pair<std::string, DomainXmlInput>> cases;
  cases.emplace_back("winsim", Sample());
  DomainXmlInput usb = Sample();
  usb.boot = BootTarget::kUsb;
  usb.usb_media = {"/d/winpe.img", "raw", true};
  usb.accel = "kvm";
  cases.emplace_back("winsim usb kvm", usb);
  cases.emplace_back("windows tcg", WindowsSample());
  DomainXmlInput win = WindowsSample();
  win.accel = "kvm";
  win.tpm_socket = "/rt/r1/win-01/swtpm.sock";
  win.guest_agent_socket = "/rt/r1/win-01/qga.sock";
  win.spec.network.online = false;
  win.spec.extra_disks = {{"/d/data.qcow2", "qcow2", true}};
  cases.emplace_back("windows kvm external tpm agent offline", win);
  DomainXmlInput insecure = WindowsSample();
  insecure.secure_boot = false;
  cases.emplace_back("windows without secure boot", insecure);
  for (const auto& [what, in] : cases) {
    auto path = std::filesystem::temp_directory_path() /
                ("chaoslab-domxml-" + std::to_string(getpid()) + ".xml");
    std::ofstream(path) << DomainXml(in);
    int rc = std::system(("virt-xml-validate " + path.string() + " domain >/dev/null").c_str());
    std::filesystem::remove(path);
    EXPECT_EQ(rc, 0) << what << ":\n" << DomainXml(in);
  }
}

TEST(Ownership, RoundTripsThroughXml) {
  Ownership o{"r1", "ws-01", "box", 42, "999", {"/rt/r1/ws-01", "/x/\"q\"&y"}};
  auto back = ParseOwnershipXml(OwnershipXml(o));
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->run_id, "r1");
  EXPECT_EQ(back->host_id, "ws-01");
  EXPECT_EQ(back->owner_machine, "box");
  EXPECT_EQ(back->owner_pid, 42);
  EXPECT_EQ(back->owner_start, "999");
  EXPECT_EQ(back->files, o.files);
  // As libvirt hands it back: its own formatting, single quotes.
  auto libvirt_style = ParseOwnershipXml(
      "<chaoslab:lab xmlns:chaoslab='https://chaoslab.dev/xmlns/1' run='r2' host='h'>\n"
      "  <chaoslab:file path='/a'/>\n</chaoslab:lab>\n");
  ASSERT_TRUE(libvirt_style.ok());
  EXPECT_EQ(libvirt_style->run_id, "r2");
  EXPECT_EQ(libvirt_style->files, std::vector<std::string>{"/a"});
  // What virDomainGetMetadata(..., kMetadataUri) really returns (libvirt 9.0): no prefix, no xmlns.
  auto bare = ParseOwnershipXml("<lab run=\"old\" host=\"h1\" owner-pid=\"7\"/>\n");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->owner_pid, 7);
  EXPECT_FALSE(ParseOwnershipXml("<other:lab xmlns:other='urn:x' run='r'/>").ok());
  EXPECT_FALSE(ParseOwnershipXml("<foo/>").ok());
}

}  // namespace
}  // namespace chaoslab::libvirt
