#include "lab/sim/mix.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "lab/config/assumptions.h"
#include "lab/config/config_loader.h"
#include "lab/config/yaml_file.h"

namespace chaoslab::sim {

namespace {

using config::Fields;
using config::ReadIdentifier;
using config::ReadInt;
using config::ReadNumber;
using config::ReadString;
using config::YamlFile;

constexpr int64_t kNoLimit = std::numeric_limits<int64_t>::max();

// The archetype's setup (scaled to its size) and runbook (its own, else the scenario's), checked
// against each other.
Status ReadArchetypeFleet(const YamlFile& file, const Fields& fields, const std::string& what,
                          const config::ScenarioConfig& scenario, Archetype* a) {
  ASSIGN_OR_RETURN(YAML::Node setup_node, fields.Require("setup"));
  ASSIGN_OR_RETURN(std::string setup_path, ReadString(file, setup_node, what + " setup"));
  Result<config::SetupConfig> setup = config::LoadSetup(file.Resolve(setup_path));
  if (!setup.ok()) return setup.status().WithContext(file.At(setup_node).ToString());
  if (setup->image != scenario.image.name) {
    return file.Error(setup_node, "setup " + setup->name + " runs image '" + setup->image +
                                      "'; the mix runs '" + scenario.image.name + "'");
  }
  if (fields.Has("runbook")) {
    const YAML::Node runbook = fields.Get("runbook");
    ASSIGN_OR_RETURN(std::string rb_path, ReadString(file, runbook, what + " runbook"));
    Result<config::RunbookConfig> rb = config::LoadRunbook(file.Resolve(rb_path));
    if (!rb.ok()) return rb.status().WithContext(file.At(runbook).ToString());
    a->runbook = *rb;
  } else if (!scenario.runbook.name.empty()) {
    a->runbook = scenario.runbook;
  } else {
    return file.Error(fields.where(),
                      what + ": no runbook (give the archetype or the scenario one)");
  }
  a->setup = ScaleSetupTo(*setup, a->size);
  Status fits = config::CheckToolsAfterRelease(a->runbook, scenario);
  if (!fits.ok()) return fits.WithContext(fields.where().ToString() + ": archetype " + a->name);
  fits = config::CheckRunbookFitsSetup(a->runbook, a->setup);
  if (!fits.ok()) return fits.WithContext(fields.where().ToString() + ": archetype " + a->name);
  fits = config::CheckStaffingFitsRollout(scenario.rollout, a->setup);
  if (!fits.ok()) return fits.WithContext(fields.where().ToString() + ": archetype " + a->name);
  return Status::Ok();
}

// `share:` of an archetype or a region: a fraction of the world in (0, 1].
Result<double> ReadShare(const YamlFile& file, Fields& fields, const std::string& what) {
  ASSIGN_OR_RETURN(YAML::Node share, fields.Require("share"));
  ASSIGN_OR_RETURN(double value, ReadNumber(file, share, what + " share"));
  if (value <= 0 || value > 1) {
    return file.Error(share, fmt::format("{} share: expected a fraction in (0, 1], got {}", what,
                                         share.Scalar()));
  }
  return value;
}

// archetypes[i] of the mix (its organisations are planned once the shares are known).
Result<Archetype> ReadArchetype(const YamlFile& file, const YAML::Node& node,
                                const std::string& what, const std::vector<Archetype>& earlier,
                                const config::ScenarioConfig& scenario) {
  ASSIGN_OR_RETURN(
      Fields fields,
      Fields::Open(file, node, what, {"name", "sector", "setup", "runbook", "share", "size"}));
  Archetype a;
  a.where = fields.where();
  ASSIGN_OR_RETURN(YAML::Node name, fields.Require("name"));
  ASSIGN_OR_RETURN(a.name, ReadIdentifier(file, name, "archetype name"));
  for (const Archetype& other : earlier) {
    if (other.name == a.name) return file.Error(name, "archetype '" + a.name + "' is listed twice");
  }
  if (fields.Has("sector")) {
    ASSIGN_OR_RETURN(a.sector, ReadString(file, fields.Get("sector"), what + " sector"));
  }
  ASSIGN_OR_RETURN(a.share, ReadShare(file, fields, what));
  ASSIGN_OR_RETURN(YAML::Node size, fields.Require("size"));
  ASSIGN_OR_RETURN(a.size,
                   ReadInt(file, size, what + " size (hosts per organisation)", 1, kNoLimit));
  RETURN_IF_ERROR(ReadArchetypeFleet(file, fields, what, scenario, &a));
  return a;
}

// regions[i] of the mix.
Result<Region> ReadRegion(const YamlFile& file, const YAML::Node& node, const std::string& what,
                          const std::vector<Region>& earlier) {
  ASSIGN_OR_RETURN(Fields fields, Fields::Open(file, node, what, {"name", "share", "timezone"}));
  Region r;
  r.where = fields.where();
  ASSIGN_OR_RETURN(YAML::Node name, fields.Require("name"));
  ASSIGN_OR_RETURN(r.name, ReadIdentifier(file, name, "region name"));
  for (const Region& other : earlier) {
    if (other.name == r.name) return file.Error(name, "region '" + r.name + "' is listed twice");
  }
  ASSIGN_OR_RETURN(r.share, ReadShare(file, fields, what));
  ASSIGN_OR_RETURN(YAML::Node tz, fields.Require("timezone"));
  ASSIGN_OR_RETURN(r.utc_offset, config::ReadUtcOffset(file, tz));
  return r;
}

// `regions:`: where the organisations are; shares as written sum to 1, drawn ones are renormalised.
Result<std::vector<Region>> ReadRegions(const YamlFile& file, const YAML::Node& list) {
  if (!list.IsSequence() || list.size() == 0) {
    return file.Error(list, "regions: expected a list with at least one region");
  }
  std::vector<Region> out;
  double sum = 0;
  for (size_t i = 0; i < list.size(); ++i) {
    ASSIGN_OR_RETURN(Region r,
                     ReadRegion(file, list[i], "regions[" + std::to_string(i) + "]", out));
    sum += r.share;
    out.push_back(std::move(r));
  }
  if (std::abs(sum - 1.0) > 1e-6 && !config::DrawingAssumptions()) {
    return file.Error(list, fmt::format("region shares add up to {:g}; expected 1 (every "
                                        "organisation in exactly one region)",
                                        sum));
  }
  for (Region& r : out) r.share /= sum;
  return out;
}

Result<Mix> Parse(const std::string& path, const config::ScenarioConfig& scenario) {
  ASSIGN_OR_RETURN(YAML::Node root, config::ParseFile("mix", path, path, nullptr));
  YamlFile file(path);
  ASSIGN_OR_RETURN(
      Fields fields,
      Fields::Open(file, root, "a mix", {"name", "description", "hosts", "regions", "archetypes"}));
  Mix mix;
  mix.file = path;
  ASSIGN_OR_RETURN(YAML::Node name, fields.Require("name"));
  ASSIGN_OR_RETURN(mix.name, ReadIdentifier(file, name, "mix name"));
  if (fields.Has("description")) {
    ASSIGN_OR_RETURN(mix.description, ReadString(file, fields.Get("description"), "description"));
  }
  ASSIGN_OR_RETURN(YAML::Node hosts, fields.Require("hosts"));
  ASSIGN_OR_RETURN(mix.hosts, ReadInt(file, hosts, "hosts", 1, kNoLimit));
  if (fields.Has("regions")) {
    ASSIGN_OR_RETURN(mix.regions, ReadRegions(file, fields.Get("regions")));
  }
  ASSIGN_OR_RETURN(YAML::Node list, fields.Require("archetypes"));
  if (!list.IsSequence() || list.size() == 0) {
    return file.Error(list, "archetypes: expected a list with at least one archetype");
  }
  double sum = 0;
  for (size_t i = 0; i < list.size(); ++i) {
    ASSIGN_OR_RETURN(Archetype a,
                     ReadArchetype(file, list[i], "archetypes[" + std::to_string(i) + "]",
                                   mix.archetypes, scenario));
    sum += a.share;
    mix.archetypes.push_back(std::move(a));
  }
  // Drawn shares (ranged assumptions) need not add up to 1: they are renormalised. As written,
  // they must.
  if (std::abs(sum - 1.0) > 1e-6 && !config::DrawingAssumptions()) {
    return file.Error(list, fmt::format("archetype shares add up to {:g}; expected 1 (every host "
                                        "in exactly one archetype)",
                                        sum));
  }
  for (Archetype& a : mix.archetypes) a.share /= sum;
  PlanOrganisations(&mix, mix.hosts);
  return mix;
}

}  // namespace

void PlanOrganisations(Mix* mix, int64_t world_hosts) {
  for (Archetype& a : mix->archetypes) {
    a.organisations = std::max<int64_t>(
        1, std::llround(a.share * static_cast<double>(world_hosts) / static_cast<double>(a.size)));
  }
}

int RegionOf(const Mix& mix, int64_t number, int64_t count) {
  if (mix.regions.empty() || count <= 0) return 0;
  // The middle of organisation `number`'s slice of [0, 1), against the regions' cumulative shares.
  const double at = (static_cast<double>(number) + 0.5) / static_cast<double>(count);
  double cumulative = 0;
  for (size_t r = 0; r < mix.regions.size(); ++r) {
    cumulative += mix.regions[r].share;
    if (at < cumulative) return static_cast<int>(r);
  }
  return static_cast<int>(mix.regions.size()) - 1;
}

Result<Mix> LoadMix(const std::string& path, const config::ScenarioConfig& scenario) {
  return config::Guarded<Mix>(path, [&] { return Parse(path, scenario); });
}

}  // namespace chaoslab::sim
