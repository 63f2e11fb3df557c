// The libvirt inventory: which hypervisors a run may use, how much each holds, and where groups
// must go. YAML (playbooks/inventory/*.yaml, schema in playbooks/README.md), strict like the
// playbooks: unknown, non-scalar or repeated keys, wrong types and bad values are errors with
// file:line:column (lab/config/yaml_keys.h); no YAML shape makes it throw.
//
//   hypervisors:
//     - name: hv1                      # unique; the identifier rule (lab/common/identifier.h)
//       uri: qemu:///system            # on the allow-list of libvirt_uri.h
//       capacity: {guests: 4, memory_mib: 2048}
//       labels: {site: hq}             # free-form key: value pairs
//   pins:                              # optional
//     - group: srv-711                 # a setup group...
//       labels: {site: hq}             # ...goes only to hypervisors carrying all these labels
//
// Placement spreads hosts by capacity: each host goes to the allowed hypervisor with room (guests
// and memory) that is least full relative to its guest capacity (ties: inventory order).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "lab/common/status.h"

namespace chaoslab::libvirt {

struct HypervisorConfig {
  std::string name;
  std::string uri;
  int capacity_guests = 0;
  int capacity_memory_mib = 0;
  std::map<std::string, std::string> labels;
  SourceLocation where;  // of the list item, for later errors
};

struct PinConfig {
  std::string group;
  std::map<std::string, std::string> labels;
  SourceLocation where;
};

struct Inventory {
  std::string path;
  std::vector<HypervisorConfig> hypervisors;
  std::vector<PinConfig> pins;
};

// Parses and checks an inventory (every pin must match at least one hypervisor's labels).
Result<Inventory> LoadInventory(const std::string& path);
Result<Inventory> ParseInventory(const std::string& yaml_text, const std::string& display_path);

// One host to place.
struct PlacementRequest {
  std::string host_id;
  std::string group;
  int memory_mib = 256;
};

// Incremental placement over an inventory (the backend places hosts as they are created).
class Placer {
 public:
  explicit Placer(const Inventory* inventory);
  // The index of the hypervisor for `request`, taking its room; `usable[i]` false skips
  // hypervisor i (down). FailedPrecondition saying why when nothing fits.
  Result<size_t> Place(const PlacementRequest& request, const std::vector<bool>& usable = {});
  void Release(size_t hypervisor, int memory_mib);
  int guests_on(size_t hypervisor) const { return guests_[hypervisor]; }

 private:
  bool Allowed(const std::string& group, size_t hypervisor) const;
  const Inventory* inv_;
  std::vector<int> guests_, memory_;
};

// The whole fleet up front, before anything starts: the chosen hypervisor index per request, or a
// FailedPrecondition naming the inventory and what does not fit. Pins of groups not in `groups`
// are InvalidArgument (a typo would silently not pin).
Result<std::vector<size_t>> PlanPlacement(const Inventory& inventory,
                                          const std::vector<PlacementRequest>& requests,
                                          const std::vector<std::string>& groups);

}  // namespace chaoslab::libvirt
