// Every draw of a shipped scenario's ranged assumptions must be a scenario the loaders accept:
// `--uncertainty` stops at the first draw that is not (a group drawn smaller than a service's
// drawn need stopped global-2024 at draw 3). Corners of the ranges (each assumption at its low or
// its high end, at random) find such pairs; uniform draws the rest.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "lab/config/assumptions.h"
#include "lab/config/config_loader.h"
#include "lab/sim/mix.h"

namespace chaoslab::sim {
namespace {

std::string Source() {
  const char* s = std::getenv("CHAOSLAB_SOURCE_DIR");
  return s ? s : ".";
}

// Loads the scenario and, if it has one, its mix (with every archetype's setup and runbook).
Status LoadAll(const std::string& scenario_path) {
  ASSIGN_OR_RETURN(config::ScenarioConfig sc,
                   config::LoadScenario(scenario_path, Source() + "/images"));
  if (!sc.mix_file.empty()) RETURN_IF_ERROR(LoadMix(sc.mix_file, sc).status());
  return Status::Ok();
}

void ExpectEveryDrawLoads(const std::string& name) {
  const std::string path = Source() + "/playbooks/scenarios/" + name + ".yaml";
  config::Assumptions recorded;
  {
    config::AssumptionScope scope(&recorded);
    Status s = LoadAll(path);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  ASSERT_FALSE(recorded.list().empty()) << name << " has no ranged assumption";
  std::mt19937_64 rng(291);
  for (int d = 0; d < 120; ++d) {
    std::map<std::string, double> draw;
    for (const config::Assumption& a : recorded.list()) {
      draw[a.id] = d < 80 ? static_cast<double>(rng() % 2)
                          : std::uniform_real_distribution<double>(0, 1)(rng);
    }
    config::Assumptions drawn(draw);
    config::AssumptionScope scope(&drawn);
    Status s = LoadAll(path);
    ASSERT_TRUE(s.ok()) << name << ", draw " << d << ": " << s.ToString();
  }
}

TEST(ShippedDrawsTest, Global2024LoadsInEveryDraw) { ExpectEveryDrawLoads("global-2024"); }

TEST(ShippedDrawsTest, AirlineHub37kLoadsInEveryDraw) { ExpectEveryDrawLoads("airline-hub-37k"); }

}  // namespace
}  // namespace chaoslab::sim
