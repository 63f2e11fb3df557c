#include "lab/libvirt/inventory.h"

#include <yaml-cpp/yaml.h>

#include <exception>
#include <fstream>
#include <set>
#include <sstream>
#include <vector>

#include "lab/common/identifier.h"
#include "lab/config/yaml_keys.h"
#include "lab/libvirt/libvirt_uri.h"

namespace chaoslab::libvirt {
namespace {

class File {
 public:
  explicit File(std::string path) : path_(std::move(path)) {}
  SourceLocation At(const YAML::Node& node) const {
    SourceLocation where{path_};
    if (node.IsDefined() && !node.Mark().is_null()) {
      where.line = node.Mark().line + 1;
      where.column = node.Mark().column + 1;
    }
    return where;
  }
  Status Error(const YAML::Node& node, const std::string& msg) const {
    return Status::AtLocation(At(node), msg);
  }
  // A map with only `allowed` keys, each a plain word given once (and the `required` ones present).
  Status CheckKeys(const YAML::Node& map, const std::string& what,
                   const std::vector<std::string>& allowed,
                   const std::vector<std::string>& required) const {
    RETURN_IF_ERROR(config::CheckYamlKeys(path_, map, what, allowed));
    for (const auto& r : required) {
      if (!map[r]) return Error(map, what + " needs '" + r + "'");
    }
    return Status::Ok();
  }
  // A name that becomes part of paths, domain names or log lines (lab/common/identifier.h).
  Result<std::string> Identifier(const YAML::Node& node, const std::string& what) const {
    ASSIGN_OR_RETURN(std::string name, String(node, what));
    Status ok = CheckIdentifier(what, name);
    if (!ok.ok()) return Error(node, ok.message());
    return name;
  }
  Result<std::string> String(const YAML::Node& node, const std::string& what) const {
    if (!node.IsScalar() || node.Scalar().empty()) {
      return Error(node, what + " must be a non-empty string");
    }
    return node.Scalar();
  }
  Result<int> Int(const YAML::Node& node, const std::string& what, int lo, int hi) const {
    if (!node.IsScalar()) return Error(node, what + " must be an integer");
    const std::string& s = node.Scalar();
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(s, &used);
    } catch (...) {
      used = 0;
    }
    if (used != s.size() || s.empty())
      return Error(node, what + " must be an integer, not '" + s + "'");
    if (v < lo || v > hi) {
      return Error(
          node, what + " " + s + " is outside " + std::to_string(lo) + ".." + std::to_string(hi));
    }
    return static_cast<int>(v);
  }
  Result<std::map<std::string, std::string>> Labels(const YAML::Node& node) const {
    RETURN_IF_ERROR(config::CheckYamlKeys(path_, node, "labels", {}));
    std::map<std::string, std::string> out;
    for (const auto& kv : node) {
      ASSIGN_OR_RETURN(std::string k, String(kv.first, "label key"));
      ASSIGN_OR_RETURN(std::string v, String(kv.second, "label '" + k + "'"));
      out[k] = v;
    }
    return out;
  }

 private:
  std::string path_;
};

std::string LabelText(const std::map<std::string, std::string>& labels) {
  std::string out;
  for (const auto& [k, v] : labels) out += (out.empty() ? "" : ",") + k + "=" + v;
  return out;
}

Result<Inventory> ParseNodes(const std::string& text, const std::string& display_path) {
  File f(display_path);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    SourceLocation where{display_path, e.mark.line + 1, e.mark.column + 1};
    return Status::AtLocation(where, "YAML syntax: " + e.msg);
  } catch (const std::exception& e) {
    return Status::InvalidArgument(display_path + ": " + e.what());
  }
  RETURN_IF_ERROR(f.CheckKeys(root, "the inventory", {"hypervisors", "pins"}, {"hypervisors"}));
  Inventory inv;
  inv.path = display_path;
  const YAML::Node hvs = root["hypervisors"];
  if (!hvs.IsSequence() || hvs.size() == 0) {
    return f.Error(hvs, "hypervisors must be a non-empty list");
  }
  std::set<std::string> names;
  for (const auto& item : hvs) {
    RETURN_IF_ERROR(f.CheckKeys(item, "a hypervisor", {"name", "uri", "capacity", "labels"},
                                {"name", "uri", "capacity"}));
    HypervisorConfig hv;
    hv.where = f.At(item);
    ASSIGN_OR_RETURN(hv.name, f.Identifier(item["name"], "hypervisor name"));
    if (!names.insert(hv.name).second) {
      return f.Error(item["name"], "hypervisor '" + hv.name + "' is listed twice");
    }
    ASSIGN_OR_RETURN(hv.uri, f.String(item["uri"], "uri"));
    if (Status allowed = CheckLibvirtUri(hv.uri); !allowed.ok()) {
      return f.Error(item["uri"], allowed.message());
    }
    const YAML::Node cap = item["capacity"];
    RETURN_IF_ERROR(
        f.CheckKeys(cap, "capacity", {"guests", "memory_mib"}, {"guests", "memory_mib"}));
    ASSIGN_OR_RETURN(hv.capacity_guests, f.Int(cap["guests"], "capacity.guests", 1, 10000));
    ASSIGN_OR_RETURN(hv.capacity_memory_mib,
                     f.Int(cap["memory_mib"], "capacity.memory_mib", 32, 1 << 26));
    if (item["labels"]) {
      ASSIGN_OR_RETURN(hv.labels, f.Labels(item["labels"]));
    }
    inv.hypervisors.push_back(std::move(hv));
  }
  if (root["pins"]) {
    const YAML::Node pins = root["pins"];
    if (!pins.IsSequence()) return f.Error(pins, "pins must be a list");
    for (const auto& item : pins) {
      RETURN_IF_ERROR(f.CheckKeys(item, "a pin", {"group", "labels"}, {"group", "labels"}));
      PinConfig pin;
      pin.where = f.At(item);
      ASSIGN_OR_RETURN(pin.group, f.Identifier(item["group"], "pinned group"));
      ASSIGN_OR_RETURN(pin.labels, f.Labels(item["labels"]));
      bool matched = false;
      for (const auto& hv : inv.hypervisors) {
        bool all = true;
        for (const auto& [k, v] : pin.labels) {
          auto it = hv.labels.find(k);
          all &= it != hv.labels.end() && it->second == v;
        }
        matched |= all;
      }
      if (!matched) {
        return f.Error(item["labels"], "no hypervisor carries the labels " + LabelText(pin.labels) +
                                           " (unknown label?)");
      }
      inv.pins.push_back(std::move(pin));
    }
  }
  return inv;
}

}  // namespace

Result<Inventory> ParseInventory(const std::string& text, const std::string& display_path) {
  try {
    return ParseNodes(text, display_path);
  } catch (const YAML::Exception& e) {
    // What the checks above missed (e.g. a key that is not a scalar, converted with as<>): the
    // CLI must get an error, never an exception (issue 15: `terminate called`, exit 134).
    SourceLocation where{display_path, e.mark.line + 1, e.mark.column + 1};
    return Status::AtLocation(where, e.msg);
  }
}

Result<Inventory> LoadInventory(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("inventory " + path + ": cannot open");
  std::stringstream text;
  text << in.rdbuf();
  return ParseInventory(text.str(), path);
}

Placer::Placer(const Inventory* inventory)
    : inv_(inventory),
      guests_(inventory->hypervisors.size(), 0),
      memory_(inventory->hypervisors.size(), 0) {}

bool Placer::Allowed(const std::string& group, size_t i) const {
  const auto& labels = inv_->hypervisors[i].labels;
  for (const auto& pin : inv_->pins) {
    if (pin.group != group) continue;
    for (const auto& [k, v] : pin.labels) {
      auto it = labels.find(k);
      if (it == labels.end() || it->second != v) return false;
    }
  }
  return true;
}

Result<size_t> Placer::Place(const PlacementRequest& r, const std::vector<bool>& usable) {
  size_t best = inv_->hypervisors.size();
  double best_fill = 0;
  int allowed = 0;
  for (size_t i = 0; i < inv_->hypervisors.size(); ++i) {
    const auto& hv = inv_->hypervisors[i];
    if (!Allowed(r.group, i)) continue;
    ++allowed;
    if (!usable.empty() && !usable[i]) continue;
    if (guests_[i] + 1 > hv.capacity_guests) continue;
    if (memory_[i] + r.memory_mib > hv.capacity_memory_mib) continue;
    const double fill = static_cast<double>(guests_[i]) / hv.capacity_guests;
    if (best == inv_->hypervisors.size() || fill < best_fill) {
      best = i;
      best_fill = fill;
    }
  }
  if (best == inv_->hypervisors.size()) {
    return Status::FailedPrecondition(
        "inventory " + inv_->path + ": no room for host '" + r.host_id + "' (group " + r.group +
        ", " + std::to_string(r.memory_mib) + " MiB) on the " + std::to_string(allowed) +
        " hypervisor(s) it may use: capacity too small for the fleet");
  }
  guests_[best] += 1;
  memory_[best] += r.memory_mib;
  return best;
}

void Placer::Release(size_t i, int memory_mib) {
  guests_[i] -= 1;
  memory_[i] -= memory_mib;
}

Result<std::vector<size_t>> PlanPlacement(const Inventory& inventory,
                                          const std::vector<PlacementRequest>& requests,
                                          const std::vector<std::string>& groups) {
  for (const auto& pin : inventory.pins) {
    bool known = false;
    for (const auto& g : groups) known |= g == pin.group;
    if (!known) {
      return Status::AtLocation(pin.where,
                                "pin for group '" + pin.group + "', which the setup does not have");
    }
  }
  Placer placer(&inventory);
  std::vector<size_t> out;
  for (const auto& r : requests) {
    ASSIGN_OR_RETURN(size_t i, placer.Place(r));
    out.push_back(i);
  }
  return out;
}

}  // namespace chaoslab::libvirt
