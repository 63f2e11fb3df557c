// Image recipes (<images_root>/<name>/image.yaml): timings of the boot phases per role, network
// profiles, the recovery paths an image supports; LoadImage.
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "lab/common/identifier.h"
#include "lab/config/config_loader.h"
#include "lab/config/loader_internal.h"
#include "lab/config/yaml_file.h"

namespace chaoslab::config {

using namespace internal;  // NOLINT: what the loaders share (yaml_file.h, loader_internal.h)

namespace {

namespace fs = std::filesystem;

// --- Images -------------------------------------------------------------------------------------

Result<PhaseTiming> ReadPhaseTiming(const YamlFile& file, const YAML::Node& node, Role role) {
  const std::string what = "the timing of role " + std::string(RoleName(role));
  ASSIGN_OR_RETURN(
      Fields fields,
      Fields::Open(file, node, what, {"boot", "driver_load", "crash_dump", "content_fetch"}));
  PhaseTiming timing;
  if (fields.Has("boot")) {
    ASSIGN_OR_RETURN(timing.boot, ReadDuration(file, fields.Get("boot"), "boot", false));
  }
  if (fields.Has("driver_load")) {
    ASSIGN_OR_RETURN(timing.driver_load,
                     ReadDuration(file, fields.Get("driver_load"), "driver_load", true));
  }
  if (fields.Has("crash_dump")) {
    ASSIGN_OR_RETURN(timing.crash_dump,
                     ReadDuration(file, fields.Get("crash_dump"), "crash_dump", true));
  }
  if (fields.Has("content_fetch")) {
    ASSIGN_OR_RETURN(timing.content_fetch,
                     ReadDuration(file, fields.Get("content_fetch"), "content_fetch", true));
  }
  // Boot-start drivers load during boot, so reaching them cannot take longer than the whole boot.
  if (timing.driver_load > timing.boot) {
    YAML::Node at = fields.Has("driver_load") ? fields.Get("driver_load") : node;
    char msg[200];
    std::snprintf(msg, sizeof msg,
                  "driver_load (%gs) must not be longer than boot (%gs): drivers load during boot",
                  timing.driver_load, timing.boot);
    return file.Error(at, msg);
  }
  return timing;
}

// "10%", "10 %" or 10 (percent) → 10. Between 0 and 100.
// One profile of `networks:` (docs/TIME-BASE.md): every figure required, so that a recipe says
// what it assumes.
Result<NetworkProfile> ReadNetworkProfile(const YamlFile& file, const YAML::Node& node,
                                          const std::string& name) {
  const std::string what = "network profile '" + name + "'";
  ASSIGN_OR_RETURN(Fields fields, Fields::Open(file, node, what,
                                               {"rtt_ms", "jitter_ms", "loss_percent",
                                                "bandwidth_mbit", "usable_after_ms"}));
  NetworkProfile p;
  ASSIGN_OR_RETURN(YAML::Node rtt, fields.Require("rtt_ms"));
  ASSIGN_OR_RETURN(p.rtt_ms, ReadInt(file, rtt, what + " rtt_ms", 0, 10'000));
  ASSIGN_OR_RETURN(YAML::Node jitter, fields.Require("jitter_ms"));
  ASSIGN_OR_RETURN(p.jitter_ms, ReadInt(file, jitter, what + " jitter_ms", 0, 10'000));
  if (p.jitter_ms > p.rtt_ms) {
    return file.Error(
        jitter, what + " jitter_ms must not exceed its rtt_ms (" + std::to_string(p.rtt_ms) + ")");
  }
  ASSIGN_OR_RETURN(YAML::Node loss, fields.Require("loss_percent"));
  ASSIGN_OR_RETURN(p.loss_percent, ReadPercent(file, loss, what + " loss_percent"));
  ASSIGN_OR_RETURN(YAML::Node rate, fields.Require("bandwidth_mbit"));
  ASSIGN_OR_RETURN(p.bandwidth_mbit, ReadInt(file, rate, what + " bandwidth_mbit", 0, 100'000));
  ASSIGN_OR_RETURN(YAML::Node after, fields.Require("usable_after_ms"));
  const std::string after_what = what + " usable_after_ms";
  if (after.IsSequence()) {
    if (after.size() != 2) {
      return file.Error(after, after_what +
                                   ": expected a number or a range [min, max], got a "
                                   "list of " +
                                   std::to_string(after.size()));
    }
    ASSIGN_OR_RETURN(p.usable_after_min_ms, ReadInt(file, after[0], after_what, 0, 3'600'000));
    ASSIGN_OR_RETURN(p.usable_after_max_ms, ReadInt(file, after[1], after_what, 0, 3'600'000));
    if (p.usable_after_min_ms > p.usable_after_max_ms) {
      return file.Error(after, after_what + ": the range's minimum is above its maximum");
    }
  } else {
    ASSIGN_OR_RETURN(p.usable_after_min_ms, ReadInt(file, after, after_what, 0, 3'600'000));
    p.usable_after_max_ms = p.usable_after_min_ms;
  }
  return p;
}

Result<std::map<Network, NetworkProfile>> ReadNetworkProfiles(const YamlFile& file,
                                                              const YAML::Node& node) {
  if (!node.IsMap()) {
    return file.Error(node,
                      "networks: expected a map from network (wired, wifi, vpn) to its "
                      "profile, got " +
                          Describe(node));
  }
  std::map<Network, NetworkProfile> out;
  for (const auto& entry : node) {
    ASSIGN_OR_RETURN(Network network, ReadEnum(file, entry.first, "network", ParseNetwork,
                                               AllNetworks(), NetworkName));
    if (network == Network::kOffline) {
      return file.Error(entry.first, "networks: offline hosts have no link to profile");
    }
    ASSIGN_OR_RETURN(out[network],
                     ReadNetworkProfile(file, entry.second, std::string(NetworkName(network))));
  }
  return out;
}

// `recovery:`, the recovery paths an image supports, each once.
Result<std::vector<RecoveryPath>> ReadRecoveryPaths(const YamlFile& file, YAML::Node list) {
  RETURN_IF_ERROR(ExpectNonEmptyList(file, list, "recovery"));
  std::vector<RecoveryPath> recovery;
  std::map<RecoveryPath, SourceLocation> seen;
  for (const auto& item : list) {
    ASSIGN_OR_RETURN(RecoveryPath path, ReadEnum(file, item, "recovery path", ParseRecoveryPath,
                                                 AllRecoveryPaths(), RecoveryPathName));
    if (seen.count(path)) {
      return file.Error(item, "duplicate recovery path '" + std::string(RecoveryPathName(path)) +
                                  "' (first at " + seen[path].ToString() + ")");
    }
    seen[path] = file.At(item);
    recovery.push_back(path);
  }
  return recovery;
}

// `timing:`, a map from role to its phase durations, into `out` (which has every role).
Status ReadTimings(const YamlFile& file, YAML::Node timing, std::map<Role, PhaseTiming>& out) {
  const std::string roles = AllowedNames(AllRoles(), RoleName);
  if (!timing.IsMap()) {
    return file.Error(timing, "timing: expected a map from role (" + roles +
                                  ") to phase durations, got " + Describe(timing));
  }
  std::map<Role, SourceLocation> seen;
  for (const auto& entry : timing) {
    ASSIGN_OR_RETURN(Role role,
                     ReadEnum(file, entry.first, "role", ParseRole, AllRoles(), RoleName));
    if (seen.count(role)) {
      return file.Error(entry.first, "duplicate timing for role '" + std::string(RoleName(role)) +
                                         "' (first at " + seen[role].ToString() + ")");
    }
    seen[role] = file.At(entry.first);
    ASSIGN_OR_RETURN(out[role], ReadPhaseTiming(file, entry.second, role));
  }
  return Status::Ok();
}

}  // namespace

namespace internal {

Result<ImageConfig> ReadImageFile(const std::string& images_root, const std::string& name,
                                  const SourceLocation* named_at) {
  // Image names become folder names and arguments of build.sh.
  if (Status ok = CheckIdentifier("image name", name); !ok.ok()) {
    if (named_at != nullptr) return Status::AtLocation(*named_at, ok.message());
    return ok;
  }
  const std::string recipe_dir = (fs::path(images_root) / name).lexically_normal().string();
  const std::string path = (fs::path(recipe_dir) / "image.yaml").string();
  ASSIGN_OR_RETURN(YAML::Node root, ParseFile("image '" + name + "' recipe", path, path, named_at));
  YamlFile file(path);
  ASSIGN_OR_RETURN(Fields fields,
                   Fields::Open(file, root, "an image recipe",
                                {"name", "kind", "description", "kernel", "race_window_ms",
                                 "networks", "timing", "recovery"}));
  ImageConfig image;
  image.recipe_dir = AbsolutePath(recipe_dir);
  image.file = AbsolutePath(path);
  image.where = fields.where();
  for (Role role : AllRoles()) image.timing[role] = PhaseTiming{};

  ASSIGN_OR_RETURN(YAML::Node name_node, fields.Require("name"));
  ASSIGN_OR_RETURN(image.name, ReadIdentifier(file, name_node, "name"));
  if (image.name != name) {
    return file.Error(name_node,
                      "image name '" + image.name + "' does not match its folder '" + name + "'");
  }
  if (fields.Has("kind")) {
    ASSIGN_OR_RETURN(image.kind, ReadEnum(file, fields.Get("kind"), "image kind", ParseImageKind,
                                          AllImageKinds(), ImageKindName));
  }
  if (fields.Has("recovery")) {
    ASSIGN_OR_RETURN(image.recovery, ReadRecoveryPaths(file, fields.Get("recovery")));
  } else if (image.kind != ImageKind::kWinsim) {
    // What a real Windows image can be taken through depends on how it was built (WinRE present,
    // BitLocker on, a rescue VM that reads NTFS...): the recipe has to say it.
    return file.Error(fields.where(),
                      "an image of kind " + std::string(ImageKindName(image.kind)) +
                          " must list the recovery paths it supports (recovery: [...], from " +
                          AllowedNames(AllRecoveryPaths(), RecoveryPathName) + ")");
  }
  if (fields.Has("description")) {
    ASSIGN_OR_RETURN(image.description, ReadString(file, fields.Get("description"), "description"));
  }
  if (fields.Has("kernel")) {
    YAML::Node kernel = fields.Get("kernel");
    ASSIGN_OR_RETURN(image.kernel, ReadName(file, kernel, "kernel"));
    if (image.kernel != "custom" && image.kernel != "debian") {
      return file.Error(kernel,
                        "kernel: expected one of custom, debian, got '" + image.kernel + "'");
    }
  }
  if (fields.Has("race_window_ms")) {
    ASSIGN_OR_RETURN(image.race_window_ms,
                     ReadInt(file, fields.Get("race_window_ms"), "race_window_ms", 1, 60000));
  }
  if (fields.Has("networks")) {
    ASSIGN_OR_RETURN(image.networks, ReadNetworkProfiles(file, fields.Get("networks")));
  }
  if (fields.Has("timing")) {
    RETURN_IF_ERROR(ReadTimings(file, fields.Get("timing"), image.timing));
  }
  return image;
}

}  // namespace internal

Result<ImageConfig> LoadImage(const std::string& images_root, const std::string& name) {
  return Guarded<ImageConfig>(images_root + "/" + name,
                              [&] { return ReadImageFile(images_root, name, nullptr); });
}

}  // namespace chaoslab::config
