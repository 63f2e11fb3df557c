// The harnesses' oracles over the seed corpora and simple mutants of every seed, with whatever
// compiler builds the lab (the libFuzzer targets need clang). An oracle that fails aborts.
#include "lab/fuzz/lab_fuzz.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace chaoslab::fuzz {
namespace {

namespace fs = std::filesystem;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

// The seeds run.sh gives `target`: lab/fuzz/corpus/<target>, for yaml also playbooks/, for channel
// also the sensor fuzzers' corpus.
std::vector<std::string> Seeds(Target target) {
  const fs::path source = SourceDir();
  std::vector<fs::path> dirs = {source / "lab/fuzz/corpus" / std::string(TargetName(target))};
  if (target == Target::kYaml) dirs.push_back(source / "playbooks");
  if (target == Target::kChannel) dirs.push_back(source / "agents/sensor/fuzz/corpus");
  std::vector<std::string> seeds;
  for (const fs::path& dir : dirs) {
    for (const auto& entry : fs::recursive_directory_iterator(dir)) {
      if (entry.is_regular_file()) seeds.push_back(ReadFile(entry.path()));
    }
  }
  return seeds;
}

// Cut at `cuts` places, and one byte changed at `flips` places: cheap mutants that reach the error
// paths the seeds do not.
std::vector<std::string> Mutants(const std::string& seed, size_t cuts, size_t flips) {
  std::vector<std::string> out;
  if (seed.empty()) return out;
  for (size_t i = 1; i <= cuts; ++i) out.push_back(seed.substr(0, seed.size() * i / (cuts + 1)));
  const char replacements[] = {'\0', '\n', ':', '{', '"', '-', '\xff', '9'};
  for (size_t i = 0; i < flips; ++i) {
    std::string m = seed;
    m[(i * 7919) % m.size()] = replacements[i % sizeof(replacements)];
    out.push_back(std::move(m));
  }
  return out;
}

void RunTarget(Target target, size_t cuts, size_t flips, size_t min_seeds) {
  Stats stats;
  std::vector<std::string> seeds = Seeds(target);
  ASSERT_GE(seeds.size(), min_seeds) << TargetName(target);
  for (const std::string& seed : seeds) {
    CheckInput(target, seed, stats);
    for (const std::string& mutant : Mutants(seed, cuts, flips)) CheckInput(target, mutant, stats);
  }
  PrintStats(target, stats, stdout);
}

TEST(LabFuzzTest, QmpSeedsAndMutants) { RunTarget(Target::kQmp, 20, 100, 5); }

TEST(LabFuzzTest, ContentServerSeedsAndMutants) { RunTarget(Target::kContentServer, 20, 100, 5); }

TEST(LabFuzzTest, YamlSeedsAndMutants) { RunTarget(Target::kYaml, 3, 6, 20); }

TEST(LabFuzzTest, ChannelSeedsAndMutants) { RunTarget(Target::kChannel, 20, 100, 5); }

TEST(LabFuzzTest, DashboardSeedsAndMutants) { RunTarget(Target::kDashboard, 20, 100, 10); }

TEST(LabFuzzTest, GuestSignalSeedsAndMutants) { RunTarget(Target::kGuestSignal, 20, 100, 5); }

TEST(LabFuzzTest, TargetNamesRoundTrip) {
  for (Target t : {Target::kQmp, Target::kContentServer, Target::kYaml, Target::kChannel,
                   Target::kDashboard, Target::kGuestSignal}) {
    EXPECT_EQ(TargetByName(TargetName(t)), t);
  }
  EXPECT_FALSE(TargetByName("relay").has_value());
}

}  // namespace
}  // namespace chaoslab::fuzz
