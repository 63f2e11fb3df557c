// The seed corpus of the sensor fuzzers, made with the codec: the five files the lab can publish
// and hand-made edge cases of each check the decoder, validators and interpreters make. The copy
// in corpus/ is this function's output (sensor_fuzz_test checks it; sensor_fuzz_seeds rewrites it).
#pragma once

#include <string>
#include <vector>

namespace chaoslab::content::fuzz {

struct Seed {
  std::string name;   // file name in corpus/
  std::string bytes;  // file contents
};

std::vector<Seed> MakeSeeds();

}  // namespace chaoslab::content::fuzz
