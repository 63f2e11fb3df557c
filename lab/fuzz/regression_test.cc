// Regression tests for what the lab fuzzers found in loaders whose own tests live elsewhere; each
// input is also in the seed corpus (README.md here, "Findings").
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "lab/config/config_loader.h"
#include "lab/libvirt/inventory.h"

namespace chaoslab {
namespace {

// lab_fuzz_yaml: a key that is not a scalar threw YAML::TypedBadConversion out of ParseInventory
// (the CLI ended with `terminate called`, exit 134; issue 15, case 4).
TEST(LabFuzzRegression, InventoryWithNonScalarKeyIsAnErrorWithLocation) {
  for (const char* text :
       {"hypervisors:\n  - {[x]: 1, name: hv1, uri: \"qemu:///system\", capacity: {guests: 1, "
        "memory_mib: 512}}\n",
        "hypervisors:\n  - name: hv1\n    uri: qemu:///system\n    capacity: {guests: 1, "
        "memory_mib: 512}\n    labels: {[site]: hq}\n"}) {
    Result<libvirt::Inventory> inventory = Status::Internal("not run");
    EXPECT_NO_THROW(inventory = libvirt::ParseInventory(text, "inv.yaml")) << text;
    ASSERT_FALSE(inventory.ok()) << text;
    EXPECT_TRUE(inventory.status().message().starts_with("inv.yaml:"))
        << inventory.status().ToString();
  }
}

// lab_fuzz_yaml: '"a", b' (a quoted scalar, then a comma outside a flow collection) made yaml-cpp
// 0.7's LoadAll yield empty documents for ever: every loader of lab/config ate memory until the
// kernel killed it. Now it is "only one YAML document", at the second one.
TEST(LabFuzzRegression, EndlessDocumentsAreOneErrorNotAllTheMemory) {
  namespace fs = std::filesystem;
  const fs::path dir =
      fs::temp_directory_path() / ("lab-fuzz-regression-" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "setup.yaml").string();
  for (const char* text : {"\"a\", b\n", "name: x\n\"up to 15\", no more\n"}) {
    std::ofstream(path) << text;
    auto setup = config::LoadSetup(path);
    ASSERT_FALSE(setup.ok()) << text;
    EXPECT_TRUE(setup.status().message().starts_with(path + ":1:") ||
                setup.status().message().starts_with(path + ":2:"))
        << setup.status().ToString();
    EXPECT_NE(setup.status().code(), ErrorCode::kInternal) << setup.status().ToString();
  }
  std::ofstream(path) << "name: a\n---\nname: b\n";
  auto two = config::LoadRunbook(path);
  ASSERT_FALSE(two.ok());
  EXPECT_NE(two.status().message().find(path + ":3:1: only one YAML document"), std::string::npos)
      << two.status().ToString();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace chaoslab
