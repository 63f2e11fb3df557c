// The fuzz harness's logic: one input through the sensor's content pipeline (decode, validate,
// interpret, as csagent does), with oracles that abort on anything the code must not do.
//
// Kept apart from the libFuzzer entry points (fuzz_target.cc) so the same checks build with g++
// and run as a unit test over the seed corpus (sensor_fuzz_test.cc).
//
// The 7.11 interpreter really reads past its input array on Channel File 291 content and takes a
// SIGSEGV on a guard page. The harness predicts, from the decoded instances alone, which inputs
// are of that class ("291 class") and runs the 7.11 interpreter under a fault handler: a fault on
// the guard page for a 291-class input is the modelled bug and is counted; any other fault, or a
// 291-class input that does not fault, aborts.
//
// Not thread-safe: the fault handler uses process-wide state (libFuzzer runs one input at a time).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string_view>

#include "agents/sensor/channel_file.h"
#include "agents/sensor/sensor_version.h"

namespace chaoslab::content::fuzz {

// The sensor a fuzz target exercises. 7.10 (which ignores IPC content) is checked by both.
enum class FuzzSensor {
  k711,       // the bug: faults must be exactly the 291-class inputs
  k711Fixed,  // bounds check and validator fix: no fault at all, and no validator bypass either
};

// Counters over a run; PrintStats writes them as one "sensor-fuzz ..." line of key=value pairs.
struct FuzzStats {
  uint64_t inputs = 0;
  uint64_t names_parsed = 0;         // inputs that are a valid channel file name
  uint64_t decoded = 0;              // inputs the decoder accepted
  uint64_t class_291 = 0;            // decoded inputs of the 291 class for the target's sensor
  uint64_t accepted = 0;             // decoded inputs the target's sensor validator accepted
  uint64_t interpreted = 0;          // interpreter runs that returned
  uint64_t interpreter_refused = 0;  // bounds-checked runs that refused content (no fault)
  uint64_t faults_291 = 0;           // 7.11: guard-page faults on 291-class inputs
  uint64_t faults_other = 0;         // always 0 when printed: any other fault aborts first
};

// True when `sensor` understands the file's template type and some instance has a non-wildcard
// criterion on a field the sensor does not supply (field > sensor.ipc_inputs_supplied). Worked
// out from the decoded instances only; it does not call the validator it is checking.
bool Is291Class(const SensorVersion& sensor, const ChannelFile& file);

// Runs `bytes` through the pipeline of `sensor` (and of 7.10) and checks every oracle. On a
// violation it prints what went wrong to stderr and calls abort(), which libFuzzer records.
void CheckInput(FuzzSensor sensor, std::string_view bytes, FuzzStats& stats);

// Runs fn(arg) with SIGSEGV and SIGBUS handlers installed; returns the faulting address if it
// faulted (control comes back here by siglongjmp), nullopt if fn returned. fn must not own
// anything that needs a destructor at the time it may fault. The previous handlers are restored.
std::optional<uintptr_t> RunCatchingFault(void (*fn)(void*), void* arg);

// A byte-level mutator: libFuzzer's LLVMFuzzerMutate in the fuzz targets. Returns the new size.
using ByteMutator = size_t (*)(uint8_t* data, size_t size, size_t max_size);

// The fuzz targets' custom mutator. Three times in four a file that decodes is mutated as a file
// (a criterion moved to an interesting field such as 20, 21 or 22, wildcard and value swapped, a
// value's bytes mutated, criteria and instances added, copied or removed, header fields changed)
// and encoded again, so that mutants stay well-formed and reach the validators and interpreters.
// Otherwise its bytes are mutated and, seven times in eight, given a consistent length and CRC.
// Deterministic for a given seed and mutate_bytes. Returns the new size (at most max_size).
size_t MutateChannelFile(uint8_t* data, size_t size, size_t max_size, unsigned seed,
                         ByteMutator mutate_bytes);

// Rewrites the body-length and CRC fields of a channel file in place, so that a mutated file
// passes those two checks and the decoder's structural checks see it. No-op under 28 bytes.
void FixLengthAndCrc(uint8_t* data, size_t size);

const SensorVersion& SensorOf(FuzzSensor sensor);
void PrintStats(FuzzSensor sensor, const FuzzStats& stats, std::FILE* out);

}  // namespace chaoslab::content::fuzz
