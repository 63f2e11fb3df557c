// The lab's one strict-YAML reader, for every file it reads as plain structs: playbooks (scenario,
// setup, runbook), image recipes, and the simulator's calibration and mix files (lab/sim).
// ParseFile reads one document; Fields opens a map and refuses unknown, non-scalar and repeated
// keys (yaml_keys.h); the Read* functions check a value's type and range. Every error names
// file:line:column and what was expected; no yaml-cpp exception reaches the caller (Guarded).
// ReadInt, ReadNumber, ReadDuration and ReadPercent (so ReadDistribution's parts too) also take a
// ranged assumption {assume: VALUE, range: [LOW, HIGH]} (assumptions.h).
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lab/config/config.h"
#include "lab/config/yaml_keys.h"

namespace chaoslab::config {
namespace internal {  // for messages

// "a, b, c".
std::string Join(const std::vector<std::string>& items);

template <typename E>
std::string AllowedNames(const std::vector<E>& values, std::string_view (*name_of)(E)) {
  std::vector<std::string> names;
  for (E v : values) names.emplace_back(name_of(v));
  return Join(names);
}

// How a node looks, for "expected X, got Y" messages.
std::string Describe(const YAML::Node& node);

// `path` made absolute and normal (as given if that fails).
std::string AbsolutePath(const std::string& path);

}  // namespace internal

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
  std::string Resolve(const std::string& written) const;

 private:
  std::string path_;
};

// Reads and parses one file (a playbook, recipe, calibration or mix: one YAML document, at most
// 4 MiB). `kind` ("setup", "calibration"...) and `as_written` make the "does not exist" message;
// `named_at`, if not null, is where another file named this one.
Result<YAML::Node> ParseFile(std::string_view kind, const std::string& as_written,
                             const std::string& path, const SourceLocation* named_at);

// The entries of a YAML map, checked against the keys that `what` (e.g. "group") may have:
// unknown keys and duplicate keys are errors.
class Fields {
 public:
  static Result<Fields> Open(const YamlFile& file, const YAML::Node& node, const std::string& what,
                             const std::vector<std::string_view>& allowed) {
    RETURN_IF_ERROR(CheckYamlKeys(file.path(), node, what, {allowed.begin(), allowed.end()}));
    Fields fields(file, node, what);
    for (const auto& entry : node) {
      fields.entries_.emplace(entry.first.Scalar(), std::make_pair(entry.first, entry.second));
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
                               const std::string& what);

// A non-empty string (paths, versions).
Result<std::string> ReadName(const YamlFile& file, const YAML::Node& node, const std::string& what);

// A name that may become a path, a domain name or an argument: the one rule of identifier.h.
Result<std::string> ReadIdentifier(const YamlFile& file, const YAML::Node& node,
                                   const std::string& what);

Result<int64_t> ReadInt(const YamlFile& file, const YAML::Node& node, const std::string& what,
                        int64_t min, int64_t max);

// A non-negative integer up to 2^64 - 1 (seeds).
Result<uint64_t> ReadUnsigned(const YamlFile& file, const YAML::Node& node,
                              const std::string& what);

// A finite number (calibration figures, shares).
Result<double> ReadNumber(const YamlFile& file, const YAML::Node& node, const std::string& what);

Result<bool> ReadBool(const YamlFile& file, const YAML::Node& node, const std::string& what);

Result<Seconds> ReadDuration(const YamlFile& file, const YAML::Node& node, const std::string& what,
                             bool allow_zero);

Result<Seconds> ReadTimeOfDay(const YamlFile& file, const YAML::Node& node,
                              const std::string& what);

// `timezone:` "+02:00", "-04:00", "+05:30", "UTC" or "Z" (-12:00..+14:00) → seconds to add to UTC.
Result<Seconds> ReadUtcOffset(const YamlFile& file, const YAML::Node& node);

template <typename E>
Result<E> ReadEnum(const YamlFile& file, const YAML::Node& node, const std::string& what,
                   std::optional<E> (*parse)(std::string_view), const std::vector<E>& all,
                   std::string_view (*name_of)(E)) {
  const std::string allowed = internal::AllowedNames(all, name_of);
  if (!node.IsScalar()) {
    return file.Error(node,
                      what + ": expected one of " + allowed + ", got " + internal::Describe(node));
  }
  std::optional<E> value = parse(node.Scalar());
  if (!value) {
    return file.Error(node, "unknown " + what + " '" + node.Scalar() + "'; allowed: " + allowed);
  }
  return *value;
}

// A list with at least one element.
Status ExpectNonEmptyList(const YamlFile& file, const YAML::Node& node, const std::string& what);

// A duration ('5m') or a distribution ({uniform: [5m, 20m]}, {triangular: [3m, 5m, 20m]} or
// {lognormal: {median: 10m, p90: 30m}}).
Result<Distribution> ReadDistribution(const YamlFile& file, const YAML::Node& node,
                                      const std::string& what);

// "oob" | "none" → whether the host has an out-of-band console.
Result<bool> ReadConsole(const YamlFile& file, const YAML::Node& node);

// "10%", "10 %" or 10 (percent) → 10. Between 0 and 100.
Result<double> ReadPercent(const YamlFile& file, const YAML::Node& node, const std::string& what);

// Runs `load`, turning any exception that still escapes yaml-cpp or the standard library into an
// error: the promise of config_loader.h is that none reaches the caller.
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

}  // namespace chaoslab::config
