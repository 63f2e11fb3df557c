// A world of organisations for the simulator (playbooks/mixes/*.yaml): archetypes, each an IT
// setup and a recovery runbook, with the share of the world's hosts they hold and the size of one
// organisation. The world is `hosts` hosts split into whole organisations; every organisation is
// an independent copy of its archetype's setup scaled to `size` hosts (its own technicians, key
// escrow, services), so organisations never share resources.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lab/common/status.h"
#include "lab/config/config.h"

namespace chaoslab::sim {

struct Archetype {
  std::string name;    // "hospital"
  std::string sector;  // free text ("healthcare")
  double share = 0;    // of the world's hosts; the shares sum to 1
  int64_t size = 1;    // hosts per organisation
  int64_t organisations = 0;
  // The archetype's setup scaled to `size` hosts, and its runbook.
  config::SetupConfig setup;
  config::RunbookConfig runbook;
  SourceLocation where;
};

// Where organisations are (`regions:`): every archetype's organisations are spread over the
// regions by their shares, and an organisation's sites all take its region's time zone (its
// setup's shifts are local, so office hours move with it).
struct Region {
  std::string name;       // "americas"
  double share = 0;       // of each archetype's organisations; the shares sum to 1
  double utc_offset = 0;  // seconds: local time minus UTC
  SourceLocation where;
};

struct Mix {
  std::string name, description, file;
  int64_t hosts = 0;  // the world's hosts as written
  std::vector<Archetype> archetypes;
  std::vector<Region> regions;  // empty: every organisation keeps its setup's time zones
};

// The region of organisation `number` of `count` of an archetype, stratified by the index: the
// numbers are cut into consecutive blocks of round(share * count) organisations (+-1), one block
// per region in the listed order, whatever the seed. 0 without regions.
int RegionOf(const Mix& mix, int64_t number, int64_t count);

// Scaling a setup up or down: config::ScaleSetupTo.
using config::ScaleSetupTo;

// Splits `world_hosts` hosts into whole organisations of each archetype by its share (at least
// one each). LoadMix plans the world as written; an uncertainty draw may plan a smaller one with
// the same shares (docs/UNCERTAINTY.md).
void PlanOrganisations(Mix* mix, int64_t world_hosts);

// Loads a mix; each archetype's setup and runbook are loaded, scaled and checked against each
// other (config::CheckRunbookFitsSetup). Shares that do not sum to 1, sizes < 1: file:line:column.
// Shares and sizes may be ranged assumptions (config/assumptions.h); drawn shares are renormalised.
// `regions:` (optional): a non-empty list of {name, share, timezone: "+HH:MM"}, unique names,
// shares summing to 1 (renormalised when drawn), as errors with file:line:column.
Result<Mix> LoadMix(const std::string& path, const config::ScenarioConfig& scenario);

}  // namespace chaoslab::sim
