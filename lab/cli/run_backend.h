// Internal to lab/cli: which backend runs a run's machines (qemu or libvirt; `--backend sim` is
// handled before any of this), what it needs beyond the lab's paths, and the checks made before
// anything starts.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "lab/backend/backend.h"
#include "lab/cli/lab_paths.h"
#include "lab/common/status.h"
#include "lab/config/config.h"
#include "lab/libvirt/inventory.h"
#include "lab/libvirt/windows_golden.h"

namespace chaoslab::run_internal {

// Which backend runs the machines, and what it needs beyond the lab's paths.
struct BackendChoice {
  std::string kind = "qemu";
  std::optional<libvirt::Inventory> inventory;  // libvirt
};

// The one place that knows the backends: every run gets a fresh one for its run id.
Result<std::unique_ptr<Backend>> MakeBackend(const LabPaths& paths, const BackendChoice& choice,
                                             const std::string& run_id,
                                             std::function<void(const std::string&)> notice,
                                             const std::optional<libvirt::WindowsGolden>& windows);

// Before anything starts: the inventory loads, every fleet's groups fit on it, every hypervisor
// answers. `backend` and `inventory` as given on the command line (--backend, --inventory);
// `fleets`: the run's scenario, or every cell of a comparison (setups differ).
Result<BackendChoice> CheckBackend(const std::string& backend, const std::string& inventory,
                                   std::span<const config::ScenarioConfig> fleets);

// The lab's own programs a run of `sc` needs (the relay; chaoslab-bde for BitLocker hosts).
Status Preflight(const LabPaths& paths, const config::ScenarioConfig& sc);

}  // namespace chaoslab::run_internal
