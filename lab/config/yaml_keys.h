// Strict keys for every YAML file the lab reads (playbooks, image recipes, inventories,
// calibration, mixes): a map's keys are plain scalars, each known, none twice. Errors carry
// file:line:column. Nothing here throws: yaml-cpp's converting accessors (`as<std::string>()`) are
// never used on keys, since a key such as `[x]` or `{a: b}` makes them throw.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "lab/common/status.h"

namespace chaoslab::config {

// Where `node` is in the file `path` (1-based line and column; only the file when it has no mark).
SourceLocation YamlLocation(const std::string& path, const YAML::Node& node);

// Ok when `map` is a YAML map whose keys are plain scalars, each in `allowed` (any word when
// `allowed` is empty) and none given twice. `what` names the map in messages ("a hypervisor").
Status CheckYamlKeys(const std::string& path, const YAML::Node& map, const std::string& what,
                     const std::vector<std::string>& allowed);

}  // namespace chaoslab::config
