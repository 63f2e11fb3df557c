#include "lab/sim/mix.h"

#include <fmt/format.h>

#include <cmath>
#include <map>

#include "lab/config/config_loader.h"
#include "lab/sim/yaml_util.h"

namespace chaoslab::sim {

namespace {

Result<Mix> Parse(const std::string& path, const config::ScenarioConfig& scenario) {
  ASSIGN_OR_RETURN(YAML::Node root, ParseYamlFile(path, "mix"));
  SimYaml y(path);
  RETURN_IF_ERROR(y.CheckKeys(root, "a mix", {"name", "description", "hosts", "archetypes"}));
  Mix mix;
  mix.file = path;
  ASSIGN_OR_RETURN(YAML::Node name, y.Require(root, "name", "a mix"));
  ASSIGN_OR_RETURN(mix.name, y.Identifier(name, "mix name"));
  if (root["description"]) {
    ASSIGN_OR_RETURN(mix.description, y.String(root["description"], "description"));
  }
  ASSIGN_OR_RETURN(YAML::Node hosts, y.Require(root, "hosts", "a mix"));
  ASSIGN_OR_RETURN(mix.hosts, y.Integer(hosts, "hosts", 1));
  ASSIGN_OR_RETURN(YAML::Node list, y.Require(root, "archetypes", "a mix"));
  if (!list.IsSequence() || list.size() == 0)
    return y.Error(list, "archetypes: expected a list with at least one archetype");
  double sum = 0;
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node& n = list[i];
    const std::string what = "archetypes[" + std::to_string(i) + "]";
    RETURN_IF_ERROR(y.CheckKeys(n, what, {"name", "sector", "setup", "runbook", "share", "size"}));
    Archetype a;
    a.where = y.At(n);
    ASSIGN_OR_RETURN(YAML::Node an, y.Require(n, "name", what));
    ASSIGN_OR_RETURN(a.name, y.Identifier(an, "archetype name"));
    for (const auto& other : mix.archetypes)
      if (other.name == a.name) return y.Error(an, "archetype '" + a.name + "' is listed twice");
    if (n["sector"]) {
      ASSIGN_OR_RETURN(a.sector, y.String(n["sector"], what + " sector"));
    }
    ASSIGN_OR_RETURN(YAML::Node share, y.Require(n, "share", what));
    ASSIGN_OR_RETURN(a.share, y.Number(share, what + " share"));
    if (a.share <= 0 || a.share > 1)
      return y.Error(share, fmt::format("{} share: expected a fraction in (0, 1], got {}", what,
                                        share.Scalar()));
    sum += a.share;
    ASSIGN_OR_RETURN(YAML::Node size, y.Require(n, "size", what));
    ASSIGN_OR_RETURN(a.size, y.Integer(size, what + " size (hosts per organisation)", 1));
    ASSIGN_OR_RETURN(YAML::Node setup_node, y.Require(n, "setup", what));
    ASSIGN_OR_RETURN(std::string setup_path, y.String(setup_node, what + " setup"));
    Result<config::SetupConfig> setup = config::LoadSetup(y.Resolve(setup_path));
    if (!setup.ok()) return setup.status().WithContext(y.At(setup_node).ToString());
    if (setup->image != scenario.image.name) {
      return y.Error(setup_node, "setup " + setup->name + " runs image '" + setup->image +
                                     "'; the mix runs '" + scenario.image.name + "'");
    }
    if (n["runbook"]) {
      ASSIGN_OR_RETURN(std::string rb_path, y.String(n["runbook"], what + " runbook"));
      Result<config::RunbookConfig> rb = config::LoadRunbook(y.Resolve(rb_path));
      if (!rb.ok()) return rb.status().WithContext(y.At(n["runbook"]).ToString());
      a.runbook = *rb;
    } else if (!scenario.runbook.name.empty()) {
      a.runbook = scenario.runbook;
    } else {
      return y.Error(n, what + ": no runbook (give the archetype or the scenario one)");
    }
    a.setup = ScaleSetupTo(*setup, a.size);
    Status fits = config::CheckRunbookFitsSetup(a.runbook, a.setup);
    if (!fits.ok()) return fits.WithContext(y.At(n).ToString() + ": archetype " + a.name);
    a.organisations = std::max<int64_t>(
        1, std::llround(a.share * static_cast<double>(mix.hosts) / static_cast<double>(a.size)));
    mix.archetypes.push_back(std::move(a));
  }
  if (std::abs(sum - 1.0) > 1e-6) {
    return y.Error(list, fmt::format("archetype shares add up to {:g}; expected 1 (every host in "
                                     "exactly one archetype)",
                                     sum));
  }
  return mix;
}

}  // namespace

Result<Mix> LoadMix(const std::string& path, const config::ScenarioConfig& scenario) {
  try {
    return Parse(path, scenario);
  } catch (const std::exception& e) {
    return Status::InvalidArgument(path + ": " + e.what());
  }
}

}  // namespace chaoslab::sim
