#include "lab/libvirt/inventory.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

namespace chaoslab::libvirt {
namespace {

const char* kTwo = R"(hypervisors:
  - name: hv1
    uri: qemu:///system?socket=/tmp/a
    capacity: {guests: 4, memory_mib: 2048}
    labels: {site: hq}
  - name: hv2
    uri: qemu:///system?socket=/tmp/b
    capacity: {guests: 2, memory_mib: 1024}
    labels: {site: dc}
pins:
  - group: srv
    labels: {site: dc}
)";

TEST(Inventory, Parses) {
  auto inv = ParseInventory(kTwo, "inv.yaml");
  ASSERT_TRUE(inv.ok()) << inv.status().message();
  ASSERT_EQ(inv->hypervisors.size(), 2u);
  EXPECT_EQ(inv->hypervisors[1].uri, "qemu:///system?socket=/tmp/b");
  EXPECT_EQ(inv->hypervisors[0].capacity_guests, 4);
  EXPECT_EQ(inv->hypervisors[1].labels.at("site"), "dc");
  ASSERT_EQ(inv->pins.size(), 1u);
  EXPECT_EQ(inv->pins[0].group, "srv");
}

TEST(Inventory, ErrorsSayFileLineColumn) {
  auto unknown_key = ParseInventory(
      "hypervisors:\n  - name: a\n    uri: qemu:///system\n"
      "    capacity: {guests: 1, memory_mib: 64}\n    color: red\n",
      "inv.yaml");
  ASSERT_FALSE(unknown_key.ok());
  EXPECT_NE(unknown_key.status().message().find("inv.yaml:5:5: unknown key 'color'"),
            std::string::npos)
      << unknown_key.status().message();
  std::string bad_label = kTwo;
  bad_label.replace(bad_label.rfind("site: dc"), 8, "site: moon");
  auto label = ParseInventory(bad_label, "inv.yaml");
  ASSERT_FALSE(label.ok());
  EXPECT_NE(label.status().message().find("inv.yaml:12:13: no hypervisor carries the labels "
                                          "site=moon"),
            std::string::npos)
      << label.status().message();
  auto cap = ParseInventory(
      "hypervisors:\n  - name: a\n    uri: qemu:///system\n"
      "    capacity: {guests: zero, memory_mib: 64}\n",
      "inv.yaml");
  ASSERT_FALSE(cap.ok());
  EXPECT_NE(cap.status().message().find("inv.yaml:4:24: capacity.guests must be an integer"),
            std::string::npos)
      << cap.status().message();
  EXPECT_FALSE(ParseInventory("hypervisors: []\n", "i").ok());
  EXPECT_FALSE(ParseInventory("hypervisors:\n  - {name: a, uri: x, capacity: {guests: 1, "
                              "memory_mib: 64}}\n",
                              "i")
                   .ok());  // not a URI
}

TEST(Placement, SpreadsByCapacityAndHonoursPins) {
  auto inv = ParseInventory(kTwo, "inv.yaml");
  ASSERT_TRUE(inv.ok());
  std::vector<PlacementRequest> reqs;
  for (int i = 0; i < 3; ++i) reqs.push_back({"ws-" + std::to_string(i), "ws", 256});
  reqs.push_back({"srv-1", "srv", 256});
  auto plan = PlanPlacement(*inv, reqs, {"ws", "srv"});
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  // Least full relative to capacity: hv1 (0/4), hv2 (0/2), hv1 (1/4 < 1/2), then srv pinned to hv2.
  EXPECT_EQ(*plan, (std::vector<size_t>{0, 1, 0, 1}));
}

TEST(Placement, TooSmallAndUnknownGroupAreErrors) {
  auto inv = ParseInventory(kTwo, "inv.yaml");
  ASSERT_TRUE(inv.ok());
  std::vector<PlacementRequest> reqs;
  for (int i = 0; i < 3; ++i) reqs.push_back({"srv-" + std::to_string(i), "srv", 256});
  auto plan = PlanPlacement(*inv, reqs, {"srv"});
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.status().message().find("no room for host 'srv-2'"), std::string::npos)
      << plan.status().message();
  EXPECT_NE(plan.status().message().find("capacity too small"), std::string::npos);
  // Memory counts too.
  auto mem = PlanPlacement(*inv, {{"big", "ws", 4096}}, {"ws", "srv"});
  EXPECT_FALSE(mem.ok());
  auto typo = PlanPlacement(*inv, {{"a", "ws", 256}}, {"ws"});
  ASSERT_FALSE(typo.ok());
  EXPECT_NE(typo.status().message().find("inv.yaml:11:5: pin for group 'srv'"), std::string::npos)
      << typo.status().message();
}

TEST(Placement, SkipsHypervisorsThatAreDown) {
  auto inv = ParseInventory(kTwo, "inv.yaml");
  ASSERT_TRUE(inv.ok());
  Placer placer(&*inv);
  auto a = placer.Place({"a", "ws", 256}, {false, true});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, 1u);
  EXPECT_FALSE(placer.Place({"b", "srv", 256}, {true, false}).ok());
}

// Every inventory shipped in playbooks/inventory loads.
TEST(Inventory, ShippedInventoriesLoad) {
  const char* source = std::getenv("CHAOSLAB_SOURCE_DIR");
  const std::string dir = std::string(source ? source : ".") + "/playbooks/inventory";
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".yaml") continue;
    Result<Inventory> inventory = LoadInventory(entry.path().string());
    ASSERT_TRUE(inventory.ok()) << inventory.status().ToString();
    EXPECT_FALSE(inventory->hypervisors.empty()) << entry.path();
    ++count;
  }
  EXPECT_GE(count, 1);
}

}  // namespace
}  // namespace chaoslab::libvirt
