// sensor_fuzz_seeds DIR: writes the seed corpus (seeds.h) into DIR, e.g. agents/sensor/fuzz/corpus.
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "agents/sensor/fuzz/seeds.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: sensor_fuzz_seeds DIR\n");
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    std::fprintf(stderr, "sensor_fuzz_seeds: %s: %s\n", dir.c_str(), ec.message().c_str());
    return 1;
  }
  for (const auto& seed : chaoslab::content::fuzz::MakeSeeds()) {
    std::ofstream out(dir / seed.name, std::ios::binary | std::ios::trunc);
    out << seed.bytes;
    if (!out.flush()) {
      std::fprintf(stderr, "sensor_fuzz_seeds: cannot write %s\n", (dir / seed.name).c_str());
      return 1;
    }
  }
  return 0;
}
