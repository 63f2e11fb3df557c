// The fuzz harness's oracles and fault handling, run with the normal compiler over the seed corpus.
#include "agents/sensor/fuzz/sensor_fuzz.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "agents/sensor/content_interpreter.h"
#include "agents/sensor/fuzz/seeds.h"

namespace chaoslab::content::fuzz {
namespace {

std::filesystem::path CorpusDir() {
  const char* source = std::getenv("CHAOSLAB_SOURCE_DIR");
  return std::filesystem::path(source ? source : ".") / "agents/sensor/fuzz/corpus";
}

std::map<std::string, std::string> Seeds() {
  std::map<std::string, std::string> seeds;
  for (auto& seed : MakeSeeds()) seeds[seed.name] = seed.bytes;
  return seeds;
}

const SensorVersion& Version(std::string_view name) { return *FindSensorVersion(name); }

TEST(SeedCorpusTest, CommittedCorpusIsTheGeneratorsOutput) {
  std::map<std::string, std::string> committed;
  for (const auto& entry : std::filesystem::directory_iterator(CorpusDir())) {
    std::ifstream in(entry.path(), std::ios::binary);
    std::ostringstream bytes;
    bytes << in.rdbuf();
    committed[entry.path().filename().string()] = bytes.str();
  }
  const auto seeds = Seeds();
  EXPECT_EQ(committed.size(), seeds.size());
  for (const auto& [name, bytes] : seeds) {
    EXPECT_EQ(committed[name], bytes)
        << name << " differs; regenerate: build/bin/sensor_fuzz_seeds agents/sensor/fuzz/corpus";
  }
}

TEST(SeedCorpusTest, EverySeedPassesTheOraclesOfBothTargets) {
  FuzzStats fixed, bug;
  for (const auto& [name, bytes] : Seeds()) {
    SCOPED_TRACE(name);
    CheckInput(FuzzSensor::k711Fixed, bytes, fixed);
    CheckInput(FuzzSensor::k711, bytes, bug);
  }
  // 291 class: channel-291, value-21 and value-65535; 7.11's validator lets the first two through
  // (field 65535 is not declared), and both fault on the guard page.
  EXPECT_EQ(bug.class_291, 3u);
  EXPECT_EQ(bug.faults_291, 2u);
  EXPECT_EQ(bug.faults_other, 0u);
  EXPECT_EQ(fixed.class_291, 3u);
  EXPECT_EQ(fixed.faults_291, 0u);
  EXPECT_EQ(fixed.interpreter_refused, 3u);  // the bounds check, with the validator bypassed
  EXPECT_EQ(fixed.names_parsed, 1u);
  EXPECT_EQ(bug.accepted, fixed.accepted + 2);
}

TEST(Is291ClassTest, FollowsTheDefinition) {
  auto seeds = Seeds();
  auto decoded = [&](const std::string& name) { return DecodeChannelFile(seeds[name]).value(); };
  for (std::string_view sensor : {"7.11", "7.11-fixed"}) {
    EXPECT_FALSE(Is291Class(Version(sensor), decoded("good")));
    EXPECT_TRUE(Is291Class(Version(sensor), decoded("channel-291")));
    EXPECT_FALSE(Is291Class(Version(sensor), decoded("wildcard-21")));  // wildcards are not read
    EXPECT_FALSE(Is291Class(Version(sensor), decoded("value-20")));     // the last supplied input
    EXPECT_TRUE(Is291Class(Version(sensor), decoded("value-21")));
    EXPECT_FALSE(Is291Class(Version(sensor), decoded("unknown-type")));  // never interpreted
  }
  EXPECT_FALSE(Is291Class(Version("7.10"), decoded("channel-291")));
}

struct GuardRead {
  const IpcNotification* notification;
};
void ReadPastInputs(void* arg) {
  auto* read = static_cast<GuardRead*>(arg);
  // Like the 7.11 fetch of input 21 of 20.
  const volatile InputValue* past = read->notification->inputs() + read->notification->size();
  (void)past->size;
}
void Harmless(void* arg) { ++*static_cast<int*>(arg); }

TEST(RunCatchingFaultTest, ReportsTheGuardPageAndRestoresTheHandlers) {
  auto notification = IpcNotification::Sample();
  ASSERT_TRUE(notification.ok());
  struct sigaction before {};
  sigaction(SIGSEGV, nullptr, &before);
  GuardRead read{&*notification};
  for (int i = 0; i < 3; ++i) {  // and again: the handler and signal mask are reset each time
    const std::optional<uintptr_t> fault = RunCatchingFault(ReadPastInputs, &read);
    ASSERT_TRUE(fault.has_value());
    const uintptr_t guard = reinterpret_cast<uintptr_t>(notification->guard());
    EXPECT_GE(*fault, guard);
    EXPECT_LT(*fault, guard + sizeof(InputValue));
  }
  int calls = 0;
  EXPECT_FALSE(RunCatchingFault(Harmless, &calls).has_value());
  EXPECT_EQ(calls, 1);
  struct sigaction after {};
  sigaction(SIGSEGV, nullptr, &after);
  EXPECT_EQ(after.sa_handler, before.sa_handler);
}

TEST(FixLengthAndCrcTest, MakesAGrownFileDecodable) {
  std::string bytes = MakeChannelFile(ChannelFileKind::kGood, 1);
  bytes += std::string("\x09\x00\x00\x00\x00\x00", 6);  // instance 9, no criteria
  bytes[16] = 4;                                        // four instances
  ASSERT_FALSE(DecodeChannelFile(bytes).ok());
  FixLengthAndCrc(reinterpret_cast<uint8_t*>(bytes.data()), bytes.size());
  auto decoded = DecodeChannelFile(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->instances.size(), 4u);
  EXPECT_EQ(decoded->instances.back().id, 9u);
  FixLengthAndCrc(reinterpret_cast<uint8_t*>(bytes.data()), 10);  // too short: left alone
  EXPECT_TRUE(DecodeChannelFile(bytes).ok());
}

// A small deterministic byte mutator standing in for LLVMFuzzerMutate: appends or flips a byte.
size_t FlipOrGrow(uint8_t* data, size_t size, size_t max_size) {
  static std::minstd_rand rng(1);
  if (size < max_size && (size == 0 || rng() % 2 == 0)) {
    data[size] = static_cast<uint8_t>(rng());
    return size + 1;
  }
  data[rng() % size] ^= static_cast<uint8_t>(1 + rng() % 255);
  return size;
}

TEST(MutatorTest, MutantsStayWellFormedAndPassTheOraclesOfBothTargets) {
  // Random walks from every seed through both targets' oracles: a small fuzz run without
  // coverage guidance, with the normal compiler.
  constexpr size_t kMaxSize = 4096;
  FuzzStats fixed, bug;
  size_t from_decodable = 0, decodable_children = 0;
  for (const auto& [name, bytes] : Seeds()) {
    SCOPED_TRACE(name);
    std::string current = bytes;
    for (unsigned seed = 0; seed < 300; ++seed) {
      if (seed % 8 == 0) current = bytes;  // short walks: long ones drift into rejected files
      const bool parent_decodes = DecodeChannelFile(current).ok();
      std::string buffer = current;
      buffer.resize(kMaxSize);
      const size_t size = MutateChannelFile(reinterpret_cast<uint8_t*>(buffer.data()),
                                            current.size(), kMaxSize, seed, FlipOrGrow);
      ASSERT_LE(size, kMaxSize);
      buffer.resize(size);
      CheckInput(FuzzSensor::k711Fixed, buffer, fixed);
      CheckInput(FuzzSensor::k711, buffer, bug);
      const bool child_decodes = DecodeChannelFile(buffer).ok();
      from_decodable += parent_decodes;
      decodable_children += parent_decodes && child_decodes;
      if (child_decodes) current = buffer;
    }
  }
  // Three in four mutants of a decodable file are structural, hence decodable.
  EXPECT_GT(decodable_children, from_decodable * 2 / 3);
  EXPECT_GT(bug.faults_291, 10u);
  EXPECT_GT(bug.interpreted, 10u);
  EXPECT_GT(fixed.interpreter_refused, 10u);
  EXPECT_EQ(bug.faults_other, 0u);
}

}  // namespace
}  // namespace chaoslab::content::fuzz
