#include "lab/cli/run_backend.h"

#include <filesystem>
#include <vector>

#include "lab/libvirt/libvirt_backend.h"
#include "lab/vm/qemu_backend.h"

namespace chaoslab::run_internal {

namespace fs = std::filesystem;

Result<std::unique_ptr<Backend>> MakeBackend(const LabPaths& paths, const BackendChoice& choice,
                                             const std::string& run_id,
                                             std::function<void(const std::string&)> notice,
                                             const std::optional<libvirt::WindowsGolden>& windows) {
  const std::string relay = paths.bin_dir + "/chaoslab-relay";
  if (windows && choice.kind != "libvirt") {
    return Status::InvalidArgument("images of kind windows run only with --backend libvirt");
  }
  if (choice.kind == "libvirt") {
    libvirt::LibvirtOptions lo;
    lo.windows = windows;
    lo.run_id = run_id;
    lo.runtime_root = paths.runtime_root;
    lo.inventory = *choice.inventory;
    lo.relay = relay;
    lo.notice = std::move(notice);
    return libvirt::MakeLibvirtBackend(std::move(lo));
  }
  vm::QemuOptions qo;
  qo.run_id = run_id;
  qo.runtime_root = paths.runtime_root;
  qo.relay = relay;
  qo.qemu = paths.qemu;
  return vm::MakeQemuBackend(qo);
}

Result<BackendChoice> CheckBackend(const std::string& backend, const std::string& inventory,
                                   std::span<const config::ScenarioConfig> fleets) {
  BackendChoice choice;
  choice.kind = backend.empty() ? "qemu" : backend;  // sim is handled before
  if (choice.kind == "qemu") {
    for (const auto& sc : fleets) {
      if (sc.image.kind == config::ImageKind::kWindows) {
        return Status::InvalidArgument("image '" + sc.image.name +
                                       "' is of kind windows: run it with --backend libvirt "
                                       "--inventory FILE (docs/WINDOWS.md)");
      }
    }
    return choice;
  }
  if (choice.kind != "libvirt") {
    return Status::InvalidArgument("backend '" + choice.kind +
                                   "' is not one of qemu, libvirt, sim");
  }
  if (inventory.empty()) {
    return Status::InvalidArgument("--backend libvirt needs --inventory FILE");
  }
  ASSIGN_OR_RETURN(libvirt::Inventory inv, libvirt::LoadInventory(inventory));
  for (const auto& sc : fleets) {
    std::vector<libvirt::PlacementRequest> hosts;
    std::vector<std::string> groups;
    // What the backend gives each domain: a Windows domain gets at least 2 GiB.
    const int memory_mib = sc.image.kind == config::ImageKind::kWindows ? 2048 : 256;
    for (const auto& g : sc.setup.groups) {
      groups.push_back(g.name);
      for (int i = 1; i <= g.count; ++i)
        hosts.push_back({config::HostName(g.name, i), g.name, memory_mib});
    }
    RETURN_IF_ERROR(libvirt::PlanPlacement(inv, hosts, groups).status());
  }
  RETURN_IF_ERROR(libvirt::CheckReachable(inv));  // once: the hypervisors are the same for all
  choice.inventory = std::move(inv);
  return choice;
}

Status Preflight(const LabPaths& paths, const config::ScenarioConfig& sc) {
  if (!fs::exists(paths.bin_dir + "/chaoslab-relay"))
    return Status::FailedPrecondition("chaoslab-relay not found in " + paths.bin_dir);
  if (sc.image.kind == config::ImageKind::kWindows) return Status::Ok();  // BitLocker: the image's
  bool bitlocker = false;
  for (const auto& g : sc.setup.groups) bitlocker |= g.bitlocker && g.count > 0;
  if (bitlocker && !fs::exists(paths.bin_dir + "/chaoslab-bde"))
    return Status::FailedPrecondition("chaoslab-bde not found in " + paths.bin_dir +
                                      ": run `make build`");
  return Status::Ok();
}

}  // namespace chaoslab::run_internal
