#include "lab/config/config_loader.h"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <limits>
#include <map>
#include <sstream>
#include <system_error>
#include <utility>

namespace chaoslab::config {
namespace {

namespace fs = std::filesystem;

// Playbooks are a few kilobytes; anything this big is not one.
constexpr std::uintmax_t kMaxFileBytes = 4 << 20;

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out;
}

template <typename E>
std::string AllowedNames(const std::vector<E>& values, std::string_view (*name_of)(E)) {
  std::vector<std::string> names;
  for (E v : values) names.emplace_back(name_of(v));
  return Join(names);
}

// How a node looks, for "expected X, got Y" messages.
std::string Describe(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "nothing";
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a map";
  return "'" + node.Scalar() + "'";
}

// One YAML file being read. It knows the path shown in messages and turns node marks (0-based) into
// 1-based file:line:column locations.
class YamlFile {
 public:
  explicit YamlFile(std::string display_path) : path_(std::move(display_path)) {}

  const std::string& path() const { return path_; }

  SourceLocation At(const YAML::Mark& mark) const {
    SourceLocation where{path_};
    if (!mark.is_null() && mark.line >= 0) {
      where.line = mark.line + 1;
      where.column = mark.column + 1;
    }
    return where;
  }
  SourceLocation At(const YAML::Node& node) const {
    return node.IsDefined() ? At(node.Mark()) : At(YAML::Mark::null_mark());
  }
  Status Error(const YAML::Node& node, const std::string& msg) const {
    return Status::AtLocation(At(node), msg);
  }
  Status Error(const SourceLocation& where, const std::string& msg) const {
    return Status::AtLocation(where, msg);
  }

  // A path written inside this file, resolved against this file's folder (lexically, for messages).
  std::string Resolve(const std::string& written) const {
    fs::path p(written);
    if (p.is_relative()) p = fs::path(path_).parent_path() / p;
    return p.lexically_normal().string();
  }

 private:
  std::string path_;
};

std::string AbsolutePath(const std::string& path) {
  std::error_code ec;
  fs::path abs = fs::absolute(path, ec);
  if (ec) return path;
  return abs.lexically_normal().string();
}

// Reads and parses one playbook file. `kind` ("setup", "runbook"...) and `as_written` make the
// "does not exist" message; `named_at`, if not null, is where another file named this one.
Result<YAML::Node> ParseFile(std::string_view kind, const std::string& as_written,
                             const std::string& path, const SourceLocation* named_at) {
  auto fail = [&](const std::string& msg) -> Status {
    if (named_at != nullptr) return Status::AtLocation(*named_at, msg);
    return Status::NotFound(msg);
  };
  const std::string described =
      std::string(kind) + " file '" + as_written + "' (resolved to " + AbsolutePath(path) + ")";
  std::error_code ec;
  fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) return fail(described + " does not exist");
  if (!fs::is_regular_file(st)) return fail(described + " is not a regular file");
  std::uintmax_t size = fs::file_size(path, ec);
  if (!ec && size > kMaxFileBytes) {
    return fail(described + " is " + std::to_string(size) + " bytes; a playbook is at most " +
                std::to_string(kMaxFileBytes));
  }

  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::FromErrno("cannot open " + described, errno);
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) return Status::FromErrno("cannot read " + described, errno);

  YamlFile file(path);
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(text.str());
  } catch (const YAML::Exception& e) {
    return file.Error(file.At(e.mark), "YAML syntax error: " + e.msg);
  } catch (const std::exception& e) {
    return Status::Internal("reading " + path + ": " + e.what());
  }
  if (docs.empty()) return YAML::Node();  // empty file: the caller reports "expected a map"
  if (docs.size() > 1) {
    return file.Error(docs[1], "only one YAML document is allowed in a " + std::string(kind) +
                                   " file, found " + std::to_string(docs.size()));
  }
  return docs[0];
}

// The entries of a YAML map, checked against the keys that `what` (e.g. "group") may have:
// unknown keys and duplicate keys are errors.
class Fields {
 public:
  static Result<Fields> Open(const YamlFile& file, const YAML::Node& node, const std::string& what,
                             std::initializer_list<std::string_view> allowed) {
    std::vector<std::string> allowed_names(allowed.begin(), allowed.end());
    if (!node.IsMap()) {
      return file.Error(node, "expected " + what + " (a map with keys " + Join(allowed_names) +
                                  "), got " + Describe(node));
    }
    Fields fields(file, node, what);
    for (const auto& entry : node) {
      const YAML::Node& key = entry.first;
      if (!key.IsScalar()) {
        return file.Error(key, "keys of " + what + " must be plain words, got " + Describe(key));
      }
      const std::string& name = key.Scalar();
      bool known = false;
      for (std::string_view a : allowed) known = known || a == name;
      if (!known) {
        return file.Error(key, "unknown key '" + name + "' in " + what +
                                   "; allowed keys: " + Join(allowed_names));
      }
      auto [it, inserted] = fields.entries_.emplace(name, std::make_pair(key, entry.second));
      if (!inserted) {
        return file.Error(key, "duplicate key '" + name + "' in " + what + " (first at " +
                                   file.At(it->second.first).ToString() + ")");
      }
    }
    return fields;
  }

  bool Has(const std::string& key) const { return entries_.count(key) > 0; }

  // The value of `key`, or a null node when it is absent (check Has() first).
  YAML::Node Get(const std::string& key) const {
    auto it = entries_.find(key);
    return it == entries_.end() ? YAML::Node() : it->second.second;
  }

  Result<YAML::Node> Require(const std::string& key) const {
    auto it = entries_.find(key);
    if (it == entries_.end()) {
      return file_->Error(node_, "missing required key '" + key + "' in " + what_);
    }
    return it->second.second;
  }

  SourceLocation where() const { return file_->At(node_); }

 private:
  Fields(const YamlFile& file, YAML::Node node, std::string what)
      : file_(&file), node_(std::move(node)), what_(std::move(what)) {}

  const YamlFile* file_;
  YAML::Node node_;
  std::string what_;
  std::map<std::string, std::pair<YAML::Node, YAML::Node>> entries_;  // name → (key, value)
};

Result<std::string> ReadString(const YamlFile& file, const YAML::Node& node,
                               const std::string& what) {
  if (!node.IsScalar()) {
    return file.Error(node, what + ": expected a string, got " + Describe(node));
  }
  return node.Scalar();
}

// A non-empty string (names, paths).
Result<std::string> ReadName(const YamlFile& file, const YAML::Node& node,
                             const std::string& what) {
  ASSIGN_OR_RETURN(std::string text, ReadString(file, node, what));
  if (text.empty()) return file.Error(node, what + ": expected a non-empty string, got ''");
  return text;
}

Result<int64_t> ReadInt(const YamlFile& file, const YAML::Node& node, const std::string& what,
                        int64_t min, int64_t max) {
  if (!node.IsScalar()) {
    return file.Error(node, what + ": expected an integer, got " + Describe(node));
  }
  const std::string& text = node.Scalar();
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec == std::errc::result_out_of_range) {
    return file.Error(node, what + ": " + text + " is out of range (" + std::to_string(min) +
                                " to " + std::to_string(max) + ")");
  }
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
    return file.Error(node, what + ": expected an integer, got '" + text + "'");
  }
  if (value < min) {
    return file.Error(node, what + " must be at least " + std::to_string(min) + ", got " + text);
  }
  if (value > max) {
    return file.Error(node, what + " must be at most " + std::to_string(max) + ", got " + text);
  }
  return value;
}

Result<uint64_t> ReadUnsigned(const YamlFile& file, const YAML::Node& node,
                              const std::string& what) {
  if (!node.IsScalar()) {
    return file.Error(node, what + ": expected a non-negative integer, got " + Describe(node));
  }
  const std::string& text = node.Scalar();
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec == std::errc::result_out_of_range) {
    return file.Error(node, what + ": " + text + " is out of range (0 to " +
                                std::to_string(std::numeric_limits<uint64_t>::max()) + ")");
  }
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
    return file.Error(node, what + ": expected a non-negative integer, got '" + text + "'");
  }
  return value;
}

Result<bool> ReadBool(const YamlFile& file, const YAML::Node& node, const std::string& what) {
  if (node.IsScalar()) {
    const std::string& text = node.Scalar();
    if (text == "true" || text == "True" || text == "TRUE") return true;
    if (text == "false" || text == "False" || text == "FALSE") return false;
  }
  return file.Error(node, what + ": expected true or false, got " + Describe(node));
}

Result<Seconds> ReadDuration(const YamlFile& file, const YAML::Node& node, const std::string& what,
                             bool allow_zero) {
  if (!node.IsScalar()) {
    return file.Error(
        node, what + ": expected a duration such as '45s', '5m' or '1.5h', got " + Describe(node));
  }
  Result<Seconds> seconds = ParseDuration(node.Scalar());
  if (!seconds.ok()) return file.Error(node, what + ": " + seconds.status().message());
  if (!allow_zero && *seconds <= 0) {
    return file.Error(node, what + " must be longer than zero, got '" + node.Scalar() + "'");
  }
  return *seconds;
}

Result<Seconds> ReadTimeOfDay(const YamlFile& file, const YAML::Node& node,
                              const std::string& what) {
  if (!node.IsScalar()) {
    return file.Error(node,
                      what + ": expected a time of day such as \"04:09\", got " + Describe(node));
  }
  Result<Seconds> t = ParseTimeOfDay(node.Scalar());
  if (!t.ok()) return file.Error(node, what + ": " + t.status().message());
  return *t;
}

template <typename E>
Result<E> ReadEnum(const YamlFile& file, const YAML::Node& node, const std::string& what,
                   std::optional<E> (*parse)(std::string_view), const std::vector<E>& all,
                   std::string_view (*name_of)(E)) {
  const std::string allowed = AllowedNames(all, name_of);
  if (!node.IsScalar()) {
    return file.Error(node, what + ": expected one of " + allowed + ", got " + Describe(node));
  }
  std::optional<E> value = parse(node.Scalar());
  if (!value) {
    return file.Error(node, "unknown " + what + " '" + node.Scalar() + "'; allowed: " + allowed);
  }
  return *value;
}

// A list with at least one element.
Status ExpectNonEmptyList(const YamlFile& file, const YAML::Node& node, const std::string& what) {
  if (!node.IsSequence()) {
    return file.Error(node, what + ": expected a list, got " + Describe(node));
  }
  if (node.size() == 0) return file.Error(node, what + ": expected at least one entry, got none");
  return Status::Ok();
}

// --- Runbooks -----------------------------------------------------------------------------------

Result<StepConfig> ReadStep(const YamlFile& file, const YAML::Node& node, size_t index) {
  const std::string what = "step " + std::to_string(index + 1);
  const std::string kinds = AllowedNames(AllStepKinds(), StepKindName);
  if (!node.IsMap() || node.size() != 1) {
    return file.Error(node,
                      what + ": expected a map with exactly one key, the step kind (" + kinds +
                          "), e.g. '- reboot: {times: 3}'; got " +
                          (node.IsMap() ? "a map with " + std::to_string(node.size()) + " keys"
                                        : Describe(node)));
  }
  StepConfig step;
  step.where = file.At(node);
  const YAML::Node key = node.begin()->first;
  const YAML::Node args = node.begin()->second;
  ASSIGN_OR_RETURN(step.kind,
                   ReadEnum(file, key, "step kind", ParseStepKind, AllStepKinds(), StepKindName));
  switch (step.kind) {
    case StepKind::kReboot: {
      if (args.IsNull()) break;  // "- reboot:" alone means once
      ASSIGN_OR_RETURN(Fields fields, Fields::Open(file, args, "the reboot step", {"times"}));
      if (fields.Has("times")) {
        ASSIGN_OR_RETURN(step.times, ReadInt(file, fields.Get("times"), "times", 1, 1000));
      }
      break;
    }
  }
  return step;
}

Result<RunbookConfig> ReadRunbookFile(const std::string& as_written, const std::string& path,
                                      const SourceLocation* named_at) {
  ASSIGN_OR_RETURN(YAML::Node root, ParseFile("runbook", as_written, path, named_at));
  YamlFile file(path);
  ASSIGN_OR_RETURN(Fields fields, Fields::Open(file, root, "a runbook",
                                               {"name", "description", "starts", "steps"}));
  RunbookConfig runbook;
  runbook.file = AbsolutePath(path);
  runbook.where = fields.where();
  ASSIGN_OR_RETURN(YAML::Node name, fields.Require("name"));
  ASSIGN_OR_RETURN(runbook.name, ReadName(file, name, "name"));
  if (fields.Has("description")) {
    ASSIGN_OR_RETURN(runbook.description,
                     ReadString(file, fields.Get("description"), "description"));
  }
  if (fields.Has("starts")) {
    ASSIGN_OR_RETURN(runbook.starts,
                     ReadEnum(file, fields.Get("starts"), "starts", ParseRunbookStart,
                              AllRunbookStarts(), RunbookStartName));
  }
  ASSIGN_OR_RETURN(YAML::Node steps, fields.Require("steps"));
  RETURN_IF_ERROR(ExpectNonEmptyList(file, steps, "steps"));
  for (size_t i = 0; i < steps.size(); ++i) {
    ASSIGN_OR_RETURN(StepConfig step, ReadStep(file, steps[i], i));
    runbook.steps.push_back(step);
  }
  return runbook;
}

// --- Setups -------------------------------------------------------------------------------------

Result<SiteConfig> ReadSite(const YamlFile& file, const YAML::Node& node) {
  ASSIGN_OR_RETURN(Fields fields, Fields::Open(file, node, "a site", {"name", "technicians"}));
  SiteConfig site;
  site.where = fields.where();
  ASSIGN_OR_RETURN(YAML::Node name, fields.Require("name"));
  ASSIGN_OR_RETURN(site.name, ReadName(file, name, "site name"));
  if (fields.Has("technicians")) {
    ASSIGN_OR_RETURN(site.technicians,
                     ReadInt(file, fields.Get("technicians"), "technicians", 0, 1000000));
  }
  return site;
}

Result<GroupConfig> ReadGroup(const YamlFile& file, const YAML::Node& node,
                              const std::vector<SiteConfig>& sites) {
  ASSIGN_OR_RETURN(Fields fields, Fields::Open(file, node, "a group",
                                               {"name", "role", "count", "site", "sensor",
                                                "network", "online_in_window"}));
  GroupConfig group;
  group.where = fields.where();
  ASSIGN_OR_RETURN(YAML::Node name, fields.Require("name"));
  ASSIGN_OR_RETURN(group.name, ReadName(file, name, "group name"));
  ASSIGN_OR_RETURN(YAML::Node role, fields.Require("role"));
  ASSIGN_OR_RETURN(group.role, ReadEnum(file, role, "role", ParseRole, AllRoles(), RoleName));
  ASSIGN_OR_RETURN(YAML::Node count, fields.Require("count"));
  ASSIGN_OR_RETURN(group.count, ReadInt(file, count, "count", 1, 100000000));

  group.site = sites.front().name;
  if (fields.Has("site")) {
    YAML::Node site = fields.Get("site");
    ASSIGN_OR_RETURN(group.site, ReadName(file, site, "site"));
    bool known = false;
    std::vector<std::string> names;
    for (const SiteConfig& s : sites) {
      known = known || s.name == group.site;
      names.push_back(s.name);
    }
    if (!known) {
      return file.Error(site, "group '" + group.name + "' names unknown site '" + group.site +
                                  "'; sites of this setup: " + Join(names));
    }
  }
  if (fields.Has("sensor")) {
    // The raw scalar text, so an unquoted 7.10 stays "7.10" (YAML would make the float 7.1 of it).
    YAML::Node sensor = fields.Get("sensor");
    ASSIGN_OR_RETURN(group.sensor_version, ReadName(file, sensor, "sensor"));
    bool known = false;
    for (const std::string& v : SensorVersions()) known = known || v == group.sensor_version;
    if (!known) {
      return file.Error(sensor, "unknown sensor version '" + group.sensor_version +
                                    "'; allowed: " + Join(SensorVersions()) +
                                    " (write versions as text, e.g. sensor: \"7.10\")");
    }
  }
  if (fields.Has("network")) {
    ASSIGN_OR_RETURN(group.network, ReadEnum(file, fields.Get("network"), "network", ParseNetwork,
                                             AllNetworks(), NetworkName));
  }
  group.online_in_window = group.network != Network::kOffline;
  if (fields.Has("online_in_window")) {
    YAML::Node online = fields.Get("online_in_window");
    ASSIGN_OR_RETURN(group.online_in_window, ReadBool(file, online, "online_in_window"));
    if (group.online_in_window && group.network == Network::kOffline) {
      return file.Error(online, "group '" + group.name +
                                    "' has network: offline, so it cannot be online_in_window");
    }
  }
  return group;
}

Result<SetupConfig> ReadSetupFile(const std::string& as_written, const std::string& path,
                                  const SourceLocation* named_at) {
  ASSIGN_OR_RETURN(YAML::Node root, ParseFile("setup", as_written, path, named_at));
  YamlFile file(path);
  ASSIGN_OR_RETURN(
      Fields fields,
      Fields::Open(file, root, "a setup", {"name", "description", "image", "sites", "groups"}));
  SetupConfig setup;
  setup.file = AbsolutePath(path);
  setup.where = fields.where();
  ASSIGN_OR_RETURN(YAML::Node name, fields.Require("name"));
  ASSIGN_OR_RETURN(setup.name, ReadName(file, name, "name"));
  if (fields.Has("description")) {
    ASSIGN_OR_RETURN(setup.description, ReadString(file, fields.Get("description"), "description"));
  }
  ASSIGN_OR_RETURN(YAML::Node image, fields.Require("image"));
  ASSIGN_OR_RETURN(setup.image, ReadName(file, image, "image"));
  setup.image_where = file.At(image);

  ASSIGN_OR_RETURN(YAML::Node sites, fields.Require("sites"));
  RETURN_IF_ERROR(ExpectNonEmptyList(file, sites, "sites"));
  for (const YAML::Node& node : sites) {
    ASSIGN_OR_RETURN(SiteConfig site, ReadSite(file, node));
    for (const SiteConfig& earlier : setup.sites) {
      if (earlier.name == site.name) {
        return file.Error(node, "duplicate site name '" + site.name + "' (first defined at " +
                                    earlier.where.ToString() + ")");
      }
    }
    setup.sites.push_back(site);
  }

  ASSIGN_OR_RETURN(YAML::Node groups, fields.Require("groups"));
  RETURN_IF_ERROR(ExpectNonEmptyList(file, groups, "groups"));
  for (const YAML::Node& node : groups) {
    ASSIGN_OR_RETURN(GroupConfig group, ReadGroup(file, node, setup.sites));
    for (const GroupConfig& earlier : setup.groups) {
      if (earlier.name == group.name) {
        return file.Error(node, "duplicate group name '" + group.name + "' (first defined at " +
                                    earlier.where.ToString() + ")");
      }
    }
    setup.groups.push_back(group);
  }
  return setup;
}

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

// Image names become folder names: keep them to one plain path component.
bool IsPlainName(const std::string& name) {
  if (name.empty() || name == "." || name == "..") return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

Result<ImageConfig> ReadImageFile(const std::string& images_root, const std::string& name,
                                  const SourceLocation* named_at) {
  if (!IsPlainName(name)) {
    std::string msg =
        "image name '" + name + "' must be one plain folder name (letters, digits, '-', '_', '.')";
    if (named_at != nullptr) return Status::AtLocation(*named_at, msg);
    return Status::InvalidArgument(msg);
  }
  const std::string recipe_dir = (fs::path(images_root) / name).lexically_normal().string();
  const std::string path = (fs::path(recipe_dir) / "image.yaml").string();
  ASSIGN_OR_RETURN(YAML::Node root, ParseFile("image '" + name + "' recipe", path, path, named_at));
  YamlFile file(path);
  ASSIGN_OR_RETURN(Fields fields,
                   Fields::Open(file, root, "an image recipe",
                                {"name", "kind", "description", "kernel", "timing"}));
  ImageConfig image;
  image.recipe_dir = AbsolutePath(recipe_dir);
  image.file = AbsolutePath(path);
  image.where = fields.where();
  for (Role role : AllRoles()) image.timing[role] = PhaseTiming{};

  ASSIGN_OR_RETURN(YAML::Node name_node, fields.Require("name"));
  ASSIGN_OR_RETURN(image.name, ReadName(file, name_node, "name"));
  if (image.name != name) {
    return file.Error(name_node,
                      "image name '" + image.name + "' does not match its folder '" + name + "'");
  }
  if (fields.Has("kind")) {
    ASSIGN_OR_RETURN(image.kind, ReadName(file, fields.Get("kind"), "kind"));
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
  if (fields.Has("timing")) {
    YAML::Node timing = fields.Get("timing");
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
      ASSIGN_OR_RETURN(image.timing[role], ReadPhaseTiming(file, entry.second, role));
    }
  }
  return image;
}

// --- Scenarios ----------------------------------------------------------------------------------

Result<RolloutConfig> ReadRollout(const YamlFile& file, const YAML::Node& node) {
  ASSIGN_OR_RETURN(Fields fields,
                   Fields::Open(file, node, "rollout", {"policy", "start", "release", "revert"}));
  RolloutConfig rollout;
  rollout.where = fields.where();
  if (fields.Has("policy")) {
    ASSIGN_OR_RETURN(rollout.policy,
                     ReadEnum(file, fields.Get("policy"), "rollout policy", ParseRolloutPolicy,
                              AllRolloutPolicies(), RolloutPolicyName));
  }
  if (fields.Has("start")) {
    ASSIGN_OR_RETURN(rollout.start, ReadTimeOfDay(file, fields.Get("start"), "start"));
  }
  if (fields.Has("release")) {
    ASSIGN_OR_RETURN(rollout.release, ReadTimeOfDay(file, fields.Get("release"), "release"));
  }
  if (fields.Has("revert")) {
    ASSIGN_OR_RETURN(rollout.revert, ReadTimeOfDay(file, fields.Get("revert"), "revert"));
  }
  auto shown = [&](const std::string& key, Seconds t) {
    return key + " (" + FormatTimeOfDay(t) + (fields.Has(key) ? "" : ", the default") + ")";
  };
  auto at = [&](const std::string& key) {
    return fields.Has(key) ? file.At(fields.Get(key)) : fields.where();
  };
  if (rollout.release < rollout.start) {
    return file.Error(at("release"), shown("release", rollout.release) + " is before " +
                                         shown("start", rollout.start) +
                                         "; expected start <= release <= revert");
  }
  if (rollout.revert < rollout.release) {
    return file.Error(at("revert"), shown("revert", rollout.revert) + " is before " +
                                        shown("release", rollout.release) +
                                        "; expected start <= release <= revert");
  }
  return rollout;
}

Result<StopConfig> ReadStop(const YamlFile& file, const YAML::Node& node) {
  ASSIGN_OR_RETURN(Fields fields, Fields::Open(file, node, "stop", {"max_scenario", "max_wall"}));
  StopConfig stop;
  stop.where = fields.where();
  if (fields.Has("max_scenario")) {
    ASSIGN_OR_RETURN(stop.max_scenario,
                     ReadDuration(file, fields.Get("max_scenario"), "max_scenario", false));
  }
  if (fields.Has("max_wall")) {
    ASSIGN_OR_RETURN(stop.max_wall, ReadDuration(file, fields.Get("max_wall"), "max_wall", false));
  }
  return stop;
}

Result<ScenarioConfig> ReadScenarioFile(const std::string& as_written, const std::string& path,
                                        const std::string& images_root) {
  ASSIGN_OR_RETURN(YAML::Node root, ParseFile("scenario", as_written, path, nullptr));
  YamlFile file(path);
  ASSIGN_OR_RETURN(Fields fields,
                   Fields::Open(file, root, "a scenario",
                                {"name", "description", "setup", "fault", "rollout", "runbook",
                                 "backend", "repetitions", "seed", "stop"}));
  ScenarioConfig scenario;
  scenario.file = AbsolutePath(path);
  scenario.where = fields.where();
  ASSIGN_OR_RETURN(YAML::Node name, fields.Require("name"));
  ASSIGN_OR_RETURN(scenario.name, ReadName(file, name, "name"));
  if (fields.Has("description")) {
    ASSIGN_OR_RETURN(scenario.description,
                     ReadString(file, fields.Get("description"), "description"));
  }
  if (fields.Has("fault")) {
    ASSIGN_OR_RETURN(Fields fault, Fields::Open(file, fields.Get("fault"), "fault", {"kind"}));
    scenario.fault.where = fault.where();
    ASSIGN_OR_RETURN(YAML::Node kind, fault.Require("kind"));
    ASSIGN_OR_RETURN(scenario.fault.kind, ReadEnum(file, kind, "fault kind", ParseFaultKind,
                                                   AllFaultKinds(), FaultKindName));
  }
  if (fields.Has("rollout")) {
    ASSIGN_OR_RETURN(scenario.rollout, ReadRollout(file, fields.Get("rollout")));
  } else {
    scenario.rollout.where = fields.where();
  }
  if (fields.Has("backend")) {
    ASSIGN_OR_RETURN(scenario.backend,
                     ReadEnum(file, fields.Get("backend"), "backend", ParseBackendKind,
                              AllBackendKinds(), BackendKindName));
  }
  if (fields.Has("repetitions")) {
    ASSIGN_OR_RETURN(scenario.repetitions,
                     ReadInt(file, fields.Get("repetitions"), "repetitions", 1, 100000));
  }
  if (fields.Has("seed")) {
    ASSIGN_OR_RETURN(scenario.seed, ReadUnsigned(file, fields.Get("seed"), "seed"));
  }
  if (fields.Has("stop")) {
    ASSIGN_OR_RETURN(scenario.stop, ReadStop(file, fields.Get("stop")));
  } else {
    scenario.stop.where = fields.where();
  }

  // The files it names, each resolved against this file's folder.
  ASSIGN_OR_RETURN(YAML::Node setup_node, fields.Require("setup"));
  ASSIGN_OR_RETURN(std::string setup_path, ReadName(file, setup_node, "setup"));
  const SourceLocation setup_at = file.At(setup_node);
  ASSIGN_OR_RETURN(scenario.setup, ReadSetupFile(setup_path, file.Resolve(setup_path), &setup_at));

  ASSIGN_OR_RETURN(YAML::Node runbook_node, fields.Require("runbook"));
  ASSIGN_OR_RETURN(std::string runbook_path, ReadName(file, runbook_node, "runbook"));
  const SourceLocation runbook_at = file.At(runbook_node);
  ASSIGN_OR_RETURN(scenario.runbook,
                   ReadRunbookFile(runbook_path, file.Resolve(runbook_path), &runbook_at));

  ASSIGN_OR_RETURN(scenario.image,
                   ReadImageFile(images_root, scenario.setup.image, &scenario.setup.image_where));
  return scenario;
}

// Runs `load`, turning any exception that still escapes yaml-cpp or the standard library into an
// error: the promise of this file is that none reaches the caller.
template <typename T>
Result<T> Guarded(const std::string& path, const std::function<Result<T>()>& load) {
  try {
    return load();
  } catch (const YAML::Exception& e) {
    SourceLocation where{path};
    if (!e.mark.is_null()) {
      where.line = e.mark.line + 1;
      where.column = e.mark.column + 1;
    }
    return Status::AtLocation(where, e.msg);
  } catch (const std::exception& e) {
    return Status::Internal("reading " + path + ": " + e.what());
  }
}

std::string FormatSeconds(Seconds s) {
  char buf[64];
  if (s >= 3600 && std::fmod(s, 3600) == 0) {
    std::snprintf(buf, sizeof buf, "%gh", s / 3600);
  } else if (s >= 60 && std::fmod(s, 60) == 0) {
    std::snprintf(buf, sizeof buf, "%gm", s / 60);
  } else {
    std::snprintf(buf, sizeof buf, "%gs", s);
  }
  return buf;
}

std::string SetupSummary(const SetupConfig& setup) {
  return std::to_string(TotalHosts(setup)) + " hosts in " + std::to_string(setup.groups.size()) +
         " groups at " + std::to_string(setup.sites.size()) + " site(s), image '" + setup.image +
         "'";
}

}  // namespace

Result<Seconds> ParseDuration(const std::string& text) {
  const std::string expected =
      "expected a duration such as '45s', '5m', '1.5h', '2d' or a number of seconds, got '" + text +
      "'";
  if (text.empty()) return Status::InvalidArgument(expected);
  const char* begin = text.data();
  const char* end = begin + text.size();
  double value = 0;
  // from_chars takes no sign and no "inf"/"nan" here only if we check the first character.
  if (!(*begin >= '0' && *begin <= '9')) return Status::InvalidArgument(expected);
  auto [rest, ec] = std::from_chars(begin, end, value, std::chars_format::fixed);
  if (ec != std::errc() || !std::isfinite(value)) return Status::InvalidArgument(expected);
  double unit = 1;
  std::string_view suffix(rest, end - rest);
  if (suffix.empty() || suffix == "s") {
    unit = 1;
  } else if (suffix == "m") {
    unit = 60;
  } else if (suffix == "h") {
    unit = 3600;
  } else if (suffix == "d") {
    unit = 86400;
  } else {
    return Status::InvalidArgument(expected);
  }
  return value * unit;
}

Result<Seconds> ParseTimeOfDay(const std::string& text) {
  const std::string expected =
      "expected a time of day \"HH:MM\" or \"HH:MM:SS\" (quotes optional), got '" + text + "'";
  int parts[3] = {0, 0, 0};
  int count = 0;
  size_t pos = 0;
  while (true) {
    size_t colon = text.find(':', pos);
    std::string_view part(text.data() + pos,
                          (colon == std::string::npos ? text.size() : colon) - pos);
    if (count == 3 || part.empty() || part.size() > 2) return Status::InvalidArgument(expected);
    for (char c : part) {
      if (c < '0' || c > '9') return Status::InvalidArgument(expected);
    }
    if (count > 0 && part.size() != 2) return Status::InvalidArgument(expected);
    std::from_chars(part.data(), part.data() + part.size(), parts[count]);
    ++count;
    if (colon == std::string::npos) break;
    pos = colon + 1;
  }
  if (count < 2) return Status::InvalidArgument(expected);
  if (parts[0] > 23 || parts[1] > 59 || parts[2] > 59) {
    return Status::InvalidArgument("'" + text +
                                   "' is not a time of day: hours run 00-23, minutes and seconds "
                                   "00-59");
  }
  return Seconds(parts[0] * 3600 + parts[1] * 60 + parts[2]);
}

std::string FormatTimeOfDay(Seconds t) {
  long total = std::lround(t);
  char buf[32];
  if (total % 60 == 0) {
    std::snprintf(buf, sizeof buf, "%02ld:%02ld", total / 3600, (total / 60) % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%02ld:%02ld:%02ld", total / 3600, (total / 60) % 60,
                  total % 60);
  }
  return buf;
}

Result<ScenarioConfig> LoadScenario(const std::string& path, const std::string& images_root) {
  return Guarded<ScenarioConfig>(path, [&] { return ReadScenarioFile(path, path, images_root); });
}

Result<SetupConfig> LoadSetup(const std::string& path) {
  return Guarded<SetupConfig>(path, [&] { return ReadSetupFile(path, path, nullptr); });
}

Result<RunbookConfig> LoadRunbook(const std::string& path) {
  return Guarded<RunbookConfig>(path, [&] { return ReadRunbookFile(path, path, nullptr); });
}

Result<ImageConfig> LoadImage(const std::string& images_root, const std::string& name) {
  return Guarded<ImageConfig>(images_root + "/" + name,
                              [&] { return ReadImageFile(images_root, name, nullptr); });
}

Status ValidateFile(const std::string& path, const std::string& images_root, std::string* summary) {
  enum class Kind { kUnknown, kScenario, kSetup, kRunbook, kImage };
  const fs::path p(path);
  Kind kind = Kind::kUnknown;
  if (p.filename() == "image.yaml") kind = Kind::kImage;

  // By its top-level keys (a file that does not parse is reported by the loader below).
  if (kind == Kind::kUnknown) {
    Result<YAML::Node> root =
        Guarded<YAML::Node>(path, [&] { return ParseFile("playbook", path, path, nullptr); });
    if (!root.ok()) return root.status();
    if (root->IsMap()) {
      for (const auto& entry : *root) {
        if (!entry.first.IsScalar()) continue;
        const std::string& key = entry.first.Scalar();
        if (key == "setup" || key == "runbook" || key == "fault" || key == "rollout" ||
            key == "stop" || key == "backend") {
          kind = Kind::kScenario;
        } else if (key == "groups" || key == "sites") {
          kind = Kind::kSetup;
        } else if (key == "steps" || key == "starts") {
          kind = Kind::kRunbook;
        }
        if (kind != Kind::kUnknown) break;
      }
    }
  }
  // Else by its folder.
  if (kind == Kind::kUnknown) {
    const std::string folder = p.lexically_normal().parent_path().filename().string();
    if (folder == "scenarios") kind = Kind::kScenario;
    if (folder == "setups") kind = Kind::kSetup;
    if (folder == "runbooks") kind = Kind::kRunbook;
  }

  std::string line;
  switch (kind) {
    case Kind::kUnknown:
      return Status::InvalidArgument(
          path +
          ": cannot tell what kind of playbook this is: expected a scenario (keys setup, "
          "runbook, ...), a setup (keys sites, groups), a runbook (key steps) or an image "
          "recipe (a file named image.yaml)");
    case Kind::kScenario: {
      ASSIGN_OR_RETURN(ScenarioConfig s, LoadScenario(path, images_root));
      line = "scenario '" + s.name + "': setup '" + s.setup.name + "' (" + SetupSummary(s.setup) +
             "), fault " + std::string(FaultKindName(s.fault.kind)) + " released " +
             FormatTimeOfDay(s.rollout.release) + ", reverted " +
             FormatTimeOfDay(s.rollout.revert) + ", runbook '" + s.runbook.name + "', backend " +
             std::string(BackendKindName(s.backend)) + ", " + std::to_string(s.repetitions) +
             " repetition(s), seed " + std::to_string(s.seed) + ", stop after " +
             FormatSeconds(s.stop.max_scenario) + " scenario / " + FormatSeconds(s.stop.max_wall) +
             " wall";
      break;
    }
    case Kind::kSetup: {
      ASSIGN_OR_RETURN(SetupConfig s, LoadSetup(path));
      line = "setup '" + s.name + "': " + SetupSummary(s);
      break;
    }
    case Kind::kRunbook: {
      ASSIGN_OR_RETURN(RunbookConfig r, LoadRunbook(path));
      line = "runbook '" + r.name + "': starts " + std::string(RunbookStartName(r.starts)) + ", " +
             std::to_string(r.steps.size()) + " step(s)";
      break;
    }
    case Kind::kImage: {
      const fs::path dir = fs::path(AbsolutePath(path)).parent_path();
      const std::string root = dir.parent_path().string();
      ASSIGN_OR_RETURN(ImageConfig image, LoadImage(root, dir.filename().string()));
      line = "image '" + image.name + "'" + (image.kind.empty() ? "" : " (" + image.kind + ")") +
             ": timing for " + std::to_string(image.timing.size()) + " roles";
      break;
    }
  }
  if (summary != nullptr) *summary = line;
  return Status::Ok();
}

}  // namespace chaoslab::config
