#include "lab/config/yaml_keys.h"

#include <map>

namespace chaoslab::config {
namespace {

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

std::string Shape(const YAML::Node& node) {
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a map";
  return "nothing";
}

}  // namespace

SourceLocation YamlLocation(const std::string& path, const YAML::Node& node) {
  SourceLocation where{path};
  if (node.IsDefined() && !node.Mark().is_null() && node.Mark().line >= 0) {
    where.line = node.Mark().line + 1;
    where.column = node.Mark().column + 1;
  }
  return where;
}

Status CheckYamlKeys(const std::string& path, const YAML::Node& map, const std::string& what,
                     const std::vector<std::string>& allowed) {
  const std::string keys = allowed.empty() ? "" : " with keys " + Join(allowed);
  if (!map.IsMap()) {
    std::string got = map.IsScalar() ? "'" + map.Scalar() + "'" : Shape(map);
    return Status::AtLocation(YamlLocation(path, map),
                              "expected " + what + " (a map" + keys + "), got " + got);
  }
  std::map<std::string, YAML::Node> seen;
  for (const auto& entry : map) {
    const YAML::Node& key = entry.first;
    const SourceLocation at = YamlLocation(path, key);
    if (!key.IsScalar()) {
      return Status::AtLocation(at, "keys of " + what + " must be plain words, got " + Shape(key));
    }
    const std::string& name = key.Scalar();
    bool known = allowed.empty();
    for (const std::string& a : allowed) known = known || a == name;
    if (!known) {
      return Status::AtLocation(
          at, "unknown key '" + name + "' in " + what + "; allowed keys: " + Join(allowed));
    }
    auto [it, inserted] = seen.emplace(name, key);
    if (!inserted) {
      return Status::AtLocation(at, "duplicate key '" + name + "' in " + what + " (first at " +
                                        YamlLocation(path, it->second).ToString() + ")");
    }
  }
  return Status::Ok();
}

}  // namespace chaoslab::config
