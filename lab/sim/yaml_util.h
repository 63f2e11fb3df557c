// Small strict-YAML helpers for the simulator's own files (calibration, mix): every error names
// file:line:column, unknown keys are errors, yaml-cpp exceptions never escape (ParseYamlFile
// catches them; the node accessors used here do not throw on the shapes they check first).
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "lab/common/status.h"

namespace chaoslab::sim {

class SimYaml {
 public:
  explicit SimYaml(std::string path) : path_(std::move(path)) {}
  const std::string& path() const { return path_; }

  SourceLocation At(const YAML::Node& node) const;
  Status Error(const YAML::Node& node, const std::string& msg) const {
    return Status::AtLocation(At(node), msg);
  }
  // `node` is a map whose keys are plain words, each in `allowed` (any when empty), none twice.
  Status CheckKeys(const YAML::Node& node, const std::string& what,
                   const std::vector<std::string>& allowed) const;
  // A name that follows the identifier rule (lab/common/identifier.h).
  Result<std::string> Identifier(const YAML::Node& node, const std::string& what) const;
  Result<YAML::Node> Require(const YAML::Node& map, const std::string& key,
                             const std::string& what) const;
  Result<std::string> String(const YAML::Node& node, const std::string& what) const;
  Result<double> Number(const YAML::Node& node, const std::string& what) const;
  Result<int64_t> Integer(const YAML::Node& node, const std::string& what, int64_t min) const;
  // A path written in this file, resolved against its folder.
  std::string Resolve(const std::string& written) const;

 private:
  std::string path_;
};

// Reads one YAML document (a map) from `path`; `kind` names the file in messages.
Result<YAML::Node> ParseYamlFile(const std::string& path, const std::string& kind);

}  // namespace chaoslab::sim
