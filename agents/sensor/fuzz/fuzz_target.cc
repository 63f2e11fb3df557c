// libFuzzer entry points. Built once per sensor with CHAOSLAB_FUZZ_SENSOR set to the FuzzSensor
// enumerator's name (k711 or k711Fixed); see libfuzzer/CMakeLists.txt and README.md here.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "agents/sensor/fuzz/sensor_fuzz.h"

#ifndef CHAOSLAB_FUZZ_SENSOR
#error "define CHAOSLAB_FUZZ_SENSOR (k711 or k711Fixed)"
#endif

namespace {

using chaoslab::content::fuzz::FuzzSensor;
constexpr FuzzSensor kSensor = FuzzSensor::CHAOSLAB_FUZZ_SENSOR;
chaoslab::content::fuzz::FuzzStats g_stats;

// libFuzzer leaves by exit() when -max_total_time or -runs is reached: the figures go to stderr
// then. After a crash it leaves by _Exit, and the crash report says what happened instead.
void PrintStatsAtExit() { chaoslab::content::fuzz::PrintStats(kSensor, g_stats, stderr); }

}  // namespace

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  std::atexit(PrintStatsAtExit);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  chaoslab::content::fuzz::CheckInput(
      kSensor, std::string_view(reinterpret_cast<const char*>(data), size), g_stats);
  return 0;
}

// Structure-aware when the input decodes, libFuzzer's byte mutations otherwise (see
// MutateChannelFile). Either way the corpus and any crash file hold the exact bytes the harness
// saw: a reproducer is a file for `chaoslab-channel inspect`.
extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size,
                                          unsigned int seed) {
  return chaoslab::content::fuzz::MutateChannelFile(data, size, max_size, seed, LLVMFuzzerMutate);
}
