#include "lab/config/config.h"

#include <cstdlib>
#include <utility>

namespace chaoslab::config {
namespace {

// One table per enum: the YAML spelling of each value, in declaration order.
template <typename E>
using NameTable = std::vector<std::pair<E, std::string_view>>;

const NameTable<Role>& RoleTable() {
  static const auto* table = new NameTable<Role>{{Role::kWorkstation, "workstation"},
                                                 {Role::kServer, "server"},
                                                 {Role::kDomainController, "domain-controller"},
                                                 {Role::kKiosk, "kiosk"},
                                                 {Role::kCloudVm, "cloud-vm"}};
  return *table;
}

const NameTable<Network>& NetworkTable() {
  static const auto* table = new NameTable<Network>{{Network::kWired, "wired"},
                                                    {Network::kWifi, "wifi"},
                                                    {Network::kVpn, "vpn"},
                                                    {Network::kOffline, "offline"}};
  return *table;
}

const NameTable<FaultKind>& FaultKindTable() {
  static const auto* table = new NameTable<FaultKind>{{FaultKind::kChannel291, "channel-291"},
                                                      {FaultKind::kTruncated, "truncated"},
                                                      {FaultKind::kZeroed, "zeroed"},
                                                      {FaultKind::kBadMagic, "bad-magic"},
                                                      {FaultKind::kGood, "good"}};
  return *table;
}

const NameTable<RolloutPolicy>& RolloutPolicyTable() {
  static const auto* table =
      new NameTable<RolloutPolicy>{{RolloutPolicy::kAllAtOnce, "all-at-once"}};
  return *table;
}

const NameTable<RunbookStart>& RunbookStartTable() {
  static const auto* table = new NameTable<RunbookStart>{
      {RunbookStart::kAtDetection, "at-detection"}, {RunbookStart::kAfterRevert, "after-revert"}};
  return *table;
}

const NameTable<StepKind>& StepKindTable() {
  static const auto* table = new NameTable<StepKind>{{StepKind::kReboot, "reboot"}};
  return *table;
}

const NameTable<BackendKind>& BackendKindTable() {
  static const auto* table = new NameTable<BackendKind>{{BackendKind::kQemu, "qemu"}};
  return *table;
}

template <typename E>
std::string_view NameIn(const NameTable<E>& table, E value) {
  for (const auto& [v, name] : table) {
    if (v == value) return name;
  }
  std::abort();  // every enum value is in its table
}

template <typename E>
std::optional<E> ParseIn(const NameTable<E>& table, std::string_view name) {
  for (const auto& [v, n] : table) {
    if (n == name) return v;
  }
  return std::nullopt;
}

template <typename E>
std::vector<E> ValuesOf(const NameTable<E>& table) {
  std::vector<E> out;
  for (const auto& entry : table) out.push_back(entry.first);
  return out;
}

}  // namespace

std::string_view RoleName(Role r) { return NameIn(RoleTable(), r); }
std::string_view NetworkName(Network n) { return NameIn(NetworkTable(), n); }
std::string_view FaultKindName(FaultKind k) { return NameIn(FaultKindTable(), k); }
std::string_view RolloutPolicyName(RolloutPolicy p) { return NameIn(RolloutPolicyTable(), p); }
std::string_view RunbookStartName(RunbookStart s) { return NameIn(RunbookStartTable(), s); }
std::string_view StepKindName(StepKind k) { return NameIn(StepKindTable(), k); }
std::string_view BackendKindName(BackendKind b) { return NameIn(BackendKindTable(), b); }

std::optional<Role> ParseRole(std::string_view name) { return ParseIn(RoleTable(), name); }
std::optional<Network> ParseNetwork(std::string_view name) { return ParseIn(NetworkTable(), name); }
std::optional<FaultKind> ParseFaultKind(std::string_view name) {
  return ParseIn(FaultKindTable(), name);
}
std::optional<RolloutPolicy> ParseRolloutPolicy(std::string_view name) {
  return ParseIn(RolloutPolicyTable(), name);
}
std::optional<RunbookStart> ParseRunbookStart(std::string_view name) {
  return ParseIn(RunbookStartTable(), name);
}
std::optional<StepKind> ParseStepKind(std::string_view name) {
  return ParseIn(StepKindTable(), name);
}
std::optional<BackendKind> ParseBackendKind(std::string_view name) {
  return ParseIn(BackendKindTable(), name);
}

const std::vector<Role>& AllRoles() {
  static const auto* all = new std::vector<Role>(ValuesOf(RoleTable()));
  return *all;
}
const std::vector<Network>& AllNetworks() {
  static const auto* all = new std::vector<Network>(ValuesOf(NetworkTable()));
  return *all;
}
const std::vector<FaultKind>& AllFaultKinds() {
  static const auto* all = new std::vector<FaultKind>(ValuesOf(FaultKindTable()));
  return *all;
}
const std::vector<RolloutPolicy>& AllRolloutPolicies() {
  static const auto* all = new std::vector<RolloutPolicy>(ValuesOf(RolloutPolicyTable()));
  return *all;
}
const std::vector<RunbookStart>& AllRunbookStarts() {
  static const auto* all = new std::vector<RunbookStart>(ValuesOf(RunbookStartTable()));
  return *all;
}
const std::vector<StepKind>& AllStepKinds() {
  static const auto* all = new std::vector<StepKind>(ValuesOf(StepKindTable()));
  return *all;
}
const std::vector<BackendKind>& AllBackendKinds() {
  static const auto* all = new std::vector<BackendKind>(ValuesOf(BackendKindTable()));
  return *all;
}

const std::vector<std::string>& SensorVersions() {
  static const auto* versions = new std::vector<std::string>{"7.10", "7.11", "7.11-fixed"};
  return *versions;
}

int64_t TotalHosts(const SetupConfig& setup) {
  int64_t total = 0;
  for (const GroupConfig& group : setup.groups) total += group.count;
  return total;
}

}  // namespace chaoslab::config
