// Playbook configuration: what the user wrote, as plain structs.
//
// Parsing (config_loader.h) turns YAML into these structs and rejects unknown keys, wrong types and
// impossible values with "file:line:column: what was expected". Paths are resolved relative to the
// file that names them. Nothing here opens a VM or a socket: these are inputs to the engine.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lab/common/status.h"

namespace chaoslab::config {

// Seconds of scenario time. Times of day ("04:09") are seconds since the scenario day's midnight.
using Seconds = double;

enum class Role { kWorkstation, kServer, kDomainController, kKiosk, kCloudVm };
enum class Network { kWired, kWifi, kVpn, kOffline };
enum class FaultKind { kChannel291, kTruncated, kZeroed, kBadMagic, kGood };
enum class RolloutPolicy { kAllAtOnce };
enum class RunbookStart { kAtDetection, kAfterRevert };
enum class StepKind { kReboot };
enum class BackendKind { kQemu };

// The spelling of each enum value in YAML ("domain-controller", "channel-291", "after-revert"...).
std::string_view RoleName(Role r);
std::string_view NetworkName(Network n);
std::string_view FaultKindName(FaultKind k);
std::string_view RolloutPolicyName(RolloutPolicy p);
std::string_view RunbookStartName(RunbookStart s);
std::string_view StepKindName(StepKind k);
std::string_view BackendKindName(BackendKind b);

// The reverse: the enum value for a YAML spelling, or nullopt if there is none (exact match).
std::optional<Role> ParseRole(std::string_view name);
std::optional<Network> ParseNetwork(std::string_view name);
std::optional<FaultKind> ParseFaultKind(std::string_view name);
std::optional<RolloutPolicy> ParseRolloutPolicy(std::string_view name);
std::optional<RunbookStart> ParseRunbookStart(std::string_view name);
std::optional<StepKind> ParseStepKind(std::string_view name);
std::optional<BackendKind> ParseBackendKind(std::string_view name);

// Every value of each enum, in declaration order (for help texts and "allowed: ..." messages).
const std::vector<Role>& AllRoles();
const std::vector<Network>& AllNetworks();
const std::vector<FaultKind>& AllFaultKinds();
const std::vector<RolloutPolicy>& AllRolloutPolicies();
const std::vector<RunbookStart>& AllRunbookStarts();
const std::vector<StepKind>& AllStepKinds();
const std::vector<BackendKind>& AllBackendKinds();

// Sensor versions a group may run: "7.10" predates the IPC template type (never affected), "7.11"
// is the affected sensor, "7.11-fixed" has the bounds check and validator fix.
const std::vector<std::string>& SensorVersions();

// Scenario seconds that each VM phase costs, for one role (from the image's timing profile).
struct PhaseTiming {
  Seconds boot = 45;  // power-on or reset to "ready"
  Seconds driver_load =
      20;  // power-on or reset to boot-start drivers (where a bad channel file crashes)
  Seconds crash_dump = 15;     // bugcheck screen and dump until the machine resets
  Seconds content_fetch = 60;  // published content until a running host has fetched it
};

struct ImageConfig {
  std::string name;  // "winsim"
  std::string kind;  // free text from image.yaml, e.g. "winsim"
  std::string description;
  std::string recipe_dir;  // absolute path of images/<name>
  std::string file;        // absolute path of images/<name>/image.yaml
  // One entry for every Role: roles image.yaml does not list, and phases a role does not list, keep
  // the PhaseTiming defaults, so timing.at(role) always works.
  // "custom" (images/kernel, purpose-built and fast) or "debian" (the stock kernel, the fallback).
  std::string kernel = "custom";
  std::map<Role, PhaseTiming> timing;
  SourceLocation where;
};

struct SiteConfig {
  std::string name;
  int technicians = 1;
  SourceLocation where;
};

struct GroupConfig {
  std::string name;
  Role role = Role::kWorkstation;
  int count = 1;
  std::string site;  // as loaded: always one of the setup's sites (the first one if not written)
  std::string sensor_version = "7.11";  // "7.10", "7.11" or "7.11-fixed"
  Network network = Network::kWired;
  bool online_in_window = true;  // online (and so fetching content) during the release window;
                                 // defaults to false for network: offline
  SourceLocation where;
};

struct SetupConfig {
  std::string name;
  std::string file;  // absolute path of the setup YAML
  std::string description;
  std::string image;                // image name, e.g. "winsim"
  SourceLocation image_where;       // where `image:` is written (for "image not found" errors)
  std::vector<SiteConfig> sites;    // at least one; names unique
  std::vector<GroupConfig> groups;  // at least one; names unique; every site names one of `sites`
  SourceLocation where;
};

// Hosts in all groups of a setup.
int64_t TotalHosts(const SetupConfig& setup);

struct FaultConfig {
  FaultKind kind = FaultKind::kChannel291;
  SourceLocation where;
};

struct RolloutConfig {
  RolloutPolicy policy = RolloutPolicy::kAllAtOnce;
  Seconds start = 4 * 3600;             // power-on of the fleet
  Seconds release = 4 * 3600 + 9 * 60;  // FACTS.md: released 04:09 UTC
  Seconds revert = 5 * 3600 + 27 * 60;  // FACTS.md: reverted 05:27 UTC
  SourceLocation where;
};

struct StepConfig {
  StepKind kind = StepKind::kReboot;
  int times = 1;  // reboot: attempts before the host counts as failed
  SourceLocation where;
};

struct RunbookConfig {
  std::string name;
  std::string file;
  std::string description;
  RunbookStart starts = RunbookStart::kAfterRevert;
  std::vector<StepConfig> steps;
  SourceLocation where;
};

struct StopConfig {
  Seconds max_scenario = 24 * 3600;  // scenario time after start
  Seconds max_wall = 900;            // wall seconds for the whole run
  SourceLocation where;
};

struct ScenarioConfig {
  std::string name;
  std::string file;  // absolute path of the scenario YAML
  std::string description;
  SetupConfig setup;
  ImageConfig image;
  FaultConfig fault;
  RolloutConfig rollout;
  RunbookConfig runbook;
  BackendKind backend = BackendKind::kQemu;
  int repetitions = 1;
  uint64_t seed = 291;
  StopConfig stop;
  SourceLocation where;
};

}  // namespace chaoslab::config
