// Issue 15: an inventory is input the lab acts on as root. Keys are strict (a non-scalar key used
// to throw YAML::TypedBadConversion out of the CLI), names follow the one identifier rule, and only
// the libvirt URI transports on the allow-list are accepted (`ext` and `command=` ran a program).
#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include "lab/libvirt/inventory.h"
#include "lab/libvirt/libvirt_backend.h"

namespace chaoslab::libvirt {
namespace {

std::string OneHypervisor(const std::string& uri, const std::string& name = "hv1") {
  return "hypervisors:\n  - name: " + name + "\n    uri: \"" + uri +
         "\"\n    capacity: {guests: 1, memory_mib: 64}\n";
}

void ExpectRejected(const std::string& yaml, const std::string& where,
                    const std::string& words = "") {
  Result<Inventory> inv = Status::Internal("ParseInventory threw");
  EXPECT_NO_THROW(inv = ParseInventory(yaml, "inv.yaml")) << yaml;
  ASSERT_FALSE(inv.ok()) << "accepted:\n" << yaml;
  EXPECT_NE(inv.status().message().find("inv.yaml:" + where + ": "), std::string::npos)
      << inv.status().message();
  EXPECT_NE(inv.status().message().find(words), std::string::npos) << inv.status().message();
}

TEST(InventoryStrict, NonScalarKeysAreErrorsNotExceptions) {
  ExpectRejected(
      "hypervisors:\n  - {[x]: 1, name: hv1, uri: qemu:///system,\n"
      "     capacity: {guests: 1, memory_mib: 64}}\n",
      "2:6", "keys");
  ExpectRejected("{a: b}: 1\nhypervisors: []\n", "1:1", "keys");
  ExpectRejected(OneHypervisor("qemu:///system") + "    labels: {[site]: hq}\n", "5:14", "label");
  ExpectRejected(OneHypervisor("qemu:///system") +
                     "pins:\n  - {group: ws, labels: {a: b}, "
                     "{c: d}: e}\n",
                 "6:33", "keys");
  ExpectRejected(
      "hypervisors:\n  - name: hv1\n    uri: qemu:///system\n"
      "    capacity: {[guests]: 1, memory_mib: 64}\n",
      "4:16", "keys");
}

TEST(InventoryStrict, DuplicateKeysAreErrors) {
  ExpectRejected(OneHypervisor("qemu:///system") + "hypervisors: []\n", "5:1", "duplicate");
  ExpectRejected(
      "hypervisors:\n  - name: hv1\n    name: hv2\n    uri: qemu:///system\n"
      "    capacity: {guests: 1, memory_mib: 64}\n",
      "3:5", "duplicate");
  ExpectRejected(OneHypervisor("qemu:///system") + "    labels: {site: hq, site: dc}\n", "5:24",
                 "duplicate");
}

TEST(InventoryStrict, NamesFollowTheIdentifierRule) {
  ExpectRejected(OneHypervisor("qemu:///system", "../hv"), "2:11", "hypervisor name");
  ExpectRejected(OneHypervisor("qemu:///system", "-hv"), "2:11", "hypervisor name");
  ExpectRejected(OneHypervisor("qemu:///system") +
                     "    labels: {site: hq}\npins:\n"
                     "  - {group: ../ws, labels: {site: hq}}\n",
                 "7:13", "group");
}

TEST(InventoryStrict, UriTransportsOnTheAllowList) {
  for (const char* good :
       {"qemu:///system", "qemu:///session", "qemu:///system?socket=/run/hv1/libvirt-sock",
        "qemu+ssh://root@hv1.example.org/system", "qemu+ssh://hv1:2222/system?keyfile=/root/.ssh/k",
        "qemu+tls://hv2.example.org/system", "qemu+unix:///system?socket=/tmp/hv/sock",
        "qemu+ssh://[fd00::1]/session"}) {
    Result<Inventory> inv = ParseInventory(OneHypervisor(good), "inv.yaml");
    EXPECT_TRUE(inv.ok()) << good << ": " << inv.status().ToString();
  }
  const std::pair<const char*, const char*> bad[] = {
      {"qemu+ext:///system?command=/tmp/pwn", "ext"},
      {"qemu+ext:///system", "ext"},
      {"qemu+ssh://hv1/system?command=/tmp/pwn", "command"},
      {"qemu:///system?command=/tmp/pwn", "command"},
      {"qemu+ssh://hv1/system?netcat=/tmp/pwn", "netcat"},
      {"qemu+tls://hv1/system?no_verify=1", "no_verify"},
      {"qemu+tcp://hv1/system", "tcp"},
      {"xen:///system", "xen"},
      {"test:///default", "test"},
      {"qemu:///embed?root=/tmp/x", "embed"},
      {"qemu+unix:///system?socket=relative/sock", "socket"},
      {"qemu+ssh:///system", "host"},
      {"qemu://hv1/system", "host"},
      {"qemu+ssh://-oProxyCommand=x/system", "host"},
      {"qemu:///system?socket=/a&socket=/b", "twice"},
      {"qemu:///system#x", "qemu:///system#x"},
      {"qemu:///system\n", "qemu:///system"},
  };
  for (const auto& [uri, words] : bad) {
    SCOPED_TRACE(uri);
    ExpectRejected(OneHypervisor(uri), "3:10", words);
  }
}

// An Inventory built in code skips the loader: the backend checks the allow-list again before it
// connects (else libvirt runs the command of a qemu+ext URI).
TEST(InventoryStrict, BackendRefusesAUriOffTheAllowListBeforeConnecting) {
  Inventory inv;
  inv.path = "in-code";
  HypervisorConfig hv;
  hv.name = "hv1";
  hv.uri = "qemu+ext:///system?command=/bin/false";
  hv.capacity_guests = 1;
  hv.capacity_memory_mib = 64;
  inv.hypervisors.push_back(hv);
  Status reach = CheckReachable(inv);
  EXPECT_EQ(reach.code(), ErrorCode::kInvalidArgument) << reach.ToString();
  EXPECT_NE(reach.message().find("ext"), std::string::npos) << reach.ToString();
  std::ostringstream log;
  Status gc = CollectLibvirtGarbage(inv, "/nonexistent/chaoslab-runtime", log);
  EXPECT_EQ(gc.code(), ErrorCode::kInvalidArgument) << gc.ToString() << log.str();
}

}  // namespace
}  // namespace chaoslab::libvirt
