#include "lab/sim/yaml_util.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "lab/common/identifier.h"
#include "lab/config/yaml_keys.h"

namespace chaoslab::sim {

namespace fs = std::filesystem;

SourceLocation SimYaml::At(const YAML::Node& node) const {
  return config::YamlLocation(path_, node);
}

Status SimYaml::CheckKeys(const YAML::Node& node, const std::string& what,
                          const std::vector<std::string>& allowed) const {
  return config::CheckYamlKeys(path_, node, what, allowed);
}

Result<std::string> SimYaml::Identifier(const YAML::Node& node, const std::string& what) const {
  ASSIGN_OR_RETURN(std::string name, String(node, what));
  if (Status ok = CheckIdentifier(what, name); !ok.ok()) return Error(node, ok.message());
  return name;
}

Result<YAML::Node> SimYaml::Require(const YAML::Node& map, const std::string& key,
                                    const std::string& what) const {
  YAML::Node v = map[key];
  if (!v.IsDefined() || v.IsNull())
    return Error(map, "missing required key '" + key + "' in " + what);
  return v;
}

Result<std::string> SimYaml::String(const YAML::Node& node, const std::string& what) const {
  if (!node.IsScalar()) return Error(node, what + ": expected a string");
  return node.Scalar();
}

Result<double> SimYaml::Number(const YAML::Node& node, const std::string& what) const {
  if (!node.IsScalar()) return Error(node, what + ": expected a number");
  const std::string& text = node.Scalar();
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v))
    return Error(node, what + ": expected a number, got '" + text + "'");
  return v;
}

Result<int64_t> SimYaml::Integer(const YAML::Node& node, const std::string& what,
                                 int64_t min) const {
  if (!node.IsScalar()) return Error(node, what + ": expected an integer");
  const std::string& text = node.Scalar();
  int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size())
    return Error(node, what + ": expected an integer, got '" + text + "'");
  if (v < min)
    return Error(node, what + " must be at least " + std::to_string(min) + ", got " + text);
  return v;
}

std::string SimYaml::Resolve(const std::string& written) const {
  fs::path p(written);
  if (p.is_relative()) p = fs::path(path_).parent_path() / p;
  return p.lexically_normal().string();
}

Result<YAML::Node> ParseYamlFile(const std::string& path, const std::string& kind) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(kind + " file " + path + " does not exist or cannot be read");
  std::stringstream text;
  text << in.rdbuf();
  try {
    YAML::Node root = YAML::Load(text.str());
    if (!root.IsMap()) {
      return Status::AtLocation(SourceLocation{path, 1, 1}, "expected a " + kind + " (a map)");
    }
    return root;
  } catch (const YAML::Exception& e) {
    SourceLocation where{path};
    if (!e.mark.is_null()) where.line = e.mark.line + 1, where.column = e.mark.column + 1;
    return Status::AtLocation(where, "YAML syntax error: " + e.msg);
  } catch (const std::exception& e) {
    return Status::Internal("reading " + path + ": " + e.what());
  }
}

}  // namespace chaoslab::sim
