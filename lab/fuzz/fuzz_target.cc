// libFuzzer entry points, built once per harness with CHAOSLAB_LAB_FUZZ_TARGET set to the Target
// enumerator's name (kQmp, ...); see libfuzzer/CMakeLists.txt and README.md here.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "lab/fuzz/lab_fuzz.h"

#ifndef CHAOSLAB_LAB_FUZZ_TARGET
#error "define CHAOSLAB_LAB_FUZZ_TARGET (kQmp, kContentServer, kYaml, kChannel, ...: lab_fuzz.h)"
#endif

namespace {

constexpr chaoslab::fuzz::Target kTarget = chaoslab::fuzz::Target::CHAOSLAB_LAB_FUZZ_TARGET;
chaoslab::fuzz::Stats g_stats;

// libFuzzer leaves by exit() at -max_total_time or -runs: the counts go to stderr then.
void PrintStatsAtExit() { chaoslab::fuzz::PrintStats(kTarget, g_stats, stderr); }

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  std::atexit(PrintStatsAtExit);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  chaoslab::fuzz::CheckInput(kTarget, std::string_view(reinterpret_cast<const char*>(data), size),
                             g_stats);
  return 0;
}
