// Sensor versions, validator and content interpreter.
// The same file runs on Linux and, cross-compiled, under Wine (agents/sensor/windows).
#include <gtest/gtest.h>

#include <csignal>
#include <cstdint>

#include "agents/sensor/channel_file.h"
#include "agents/sensor/content_interpreter.h"
#include "agents/sensor/platform.h"
#include "agents/sensor/sensor_version.h"

namespace chaoslab::content {
namespace {

const SensorVersion& Version(std::string_view name) {
  const SensorVersion* v = FindSensorVersion(name);
  if (v == nullptr) std::abort();
  return *v;
}

ChannelFile Good() { return MakeChannelContent(false, 1); }
ChannelFile File291() { return MakeChannelContent(true, 2); }

// How a process dies when it reads the guard page: SIGSEGV on Linux; on Windows an access
// violation, whose code is the exit code (the Windows test main turns an unhandled exception into
// TerminateProcess with its code, so no debugger or error box is involved).
#ifdef _WIN32
#define EXPECT_GUARD_PAGE_FAULT(statement) \
  EXPECT_EXIT(statement, ::testing::ExitedWithCode(static_cast<int>(0xC0000005u)), "")
#else
#define EXPECT_GUARD_PAGE_FAULT(statement) \
  EXPECT_EXIT(statement, ::testing::KilledBySignal(SIGSEGV), "")
#endif

TEST(SensorVersionTest, KnowsTheThreeVersions) {
  EXPECT_EQ(AllSensorVersions().size(), 3u);
  EXPECT_EQ(FindSensorVersion("7.12"), nullptr);
  for (const SensorVersion& v : AllSensorVersions()) {
    EXPECT_EQ(v.ipc_inputs_supplied, 20);
  }
  EXPECT_FALSE(Version("7.10").Supports(kIpcTemplateTypeId));
  EXPECT_TRUE(Version("7.11").Supports(kIpcTemplateTypeId));
  EXPECT_EQ(FindTemplateType(kIpcTemplateTypeId)->declared_fields(), 21);
}

TEST(ValidatorTest, Version710IgnoresIpcContent) {
  for (const ChannelFile& f : {Good(), File291()}) {
    auto rejection = CheckContent(Version("7.10"), f);
    ASSERT_TRUE(rejection.has_value());
    EXPECT_EQ(rejection->reason, "template-type-not-supported");
  }
}

TEST(ValidatorTest, Version711AcceptsBothFiles) {
  EXPECT_FALSE(CheckContent(Version("7.11"), Good()).has_value());
  EXPECT_FALSE(CheckContent(Version("7.11"), File291()).has_value());  // the bug
}

TEST(ValidatorTest, FixedVersionRejectsOnlyTheValueOnField21) {
  EXPECT_FALSE(CheckContent(Version("7.11-fixed"), Good()).has_value());
  auto rejection = CheckContent(Version("7.11-fixed"), File291());
  ASSERT_TRUE(rejection.has_value());
  EXPECT_EQ(rejection->reason, "criterion-on-unsupplied-field");
  EXPECT_NE(rejection->detail.find("field 21 (connection_origin)"), std::string::npos)
      << rejection->detail;
}

TEST(ValidatorTest, EveryVersionRejectsUndeclaredFieldsWrongChannelAndUnknownTypes) {
  ChannelFile beyond = Good();
  beyond.instances[0].criteria.push_back(Criterion::Any(22));
  ChannelFile other_channel = Good();
  other_channel.channel = 290;
  ChannelFile unknown_type = Good();
  unknown_type.template_type = 0x9999;
  for (std::string_view name : {"7.11", "7.11-fixed"}) {
    EXPECT_EQ(CheckContent(Version(name), beyond)->reason, "field-not-declared");
  }
  for (const SensorVersion& v : AllSensorVersions()) {
    EXPECT_EQ(CheckContent(v, other_channel)->reason, "wrong-channel");
    EXPECT_EQ(CheckContent(v, unknown_type)->reason, "template-type-not-supported");
  }
}

TEST(IpcNotificationTest, InputArrayEndsAtAGuardPage) {
  auto n = IpcNotification::Sample();
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(n->size(), kIpcSuppliedInputs);
  const uintptr_t page = platform::PageSize();
  EXPECT_EQ(reinterpret_cast<uintptr_t>(n->guard()) % page, 0u);
  EXPECT_EQ(n->inputs()[0].view(), "\\\\.\\pipe\\spoolss");
  // Reading just past the array faults.
  EXPECT_GUARD_PAGE_FAULT({
    volatile const char* past = static_cast<const char*>(n->guard());
    (void)*past;
  });
}

TEST(IpcNotificationTest, MovedNotificationKeepsItsInputs) {
  auto n = IpcNotification::Create({"a", "bb"});
  ASSERT_TRUE(n.ok());
  IpcNotification moved = std::move(n).value();
  EXPECT_EQ(moved.size(), 2u);
  EXPECT_EQ(moved.inputs()[1].view(), "bb");
}

TEST(InterpreterTest, Version711With291ContentFaultsOnTheGuardPage) {
  auto n = IpcNotification::Sample();
  ASSERT_TRUE(n.ok());
  const ChannelFile file = File291();
  EXPECT_GUARD_PAGE_FAULT((void)Interpret(Version("7.11"), file, *n));
}

TEST(InterpreterTest, Version711WithGoodContentRunsBecauseWildcardsAreNotRead) {
  auto n = IpcNotification::Sample();
  ASSERT_TRUE(n.ok());
  auto outcome = Interpret(Version("7.11"), Good(), *n);
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_EQ(outcome->instances_evaluated, 3u);
  EXPECT_EQ(outcome->instances_matched, 0u);  // spoolss is not an offensive-tool pipe
}

TEST(InterpreterTest, MatchesPipeNames) {
  std::vector<std::string> values(kIpcSuppliedInputs, "x");
  values[0] = "\\\\.\\pipe\\postex_8f1a";
  auto n = IpcNotification::Create(values);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(Interpret(Version("7.11"), Good(), *n)->instances_matched, 1u);
}

TEST(InterpreterTest, FixedVersionBoundsChecksInsteadOfFaulting) {
  auto n = IpcNotification::Sample();
  ASSERT_TRUE(n.ok());
  // Bypass the validator: the interpreter alone must still refuse, without a fault.
  auto outcome = Interpret(Version("7.11-fixed"), File291(), *n);
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.status().code(), ErrorCode::kCorruption);
  EXPECT_NE(outcome.status().message().find("reads input 21"), std::string::npos);
  EXPECT_TRUE(Interpret(Version("7.11-fixed"), Good(), *n).ok());
}

TEST(InterpreterTest, Version710IgnoresIpcContent) {
  auto n = IpcNotification::Sample();
  ASSERT_TRUE(n.ok());
  auto outcome = Interpret(Version("7.10"), File291(), *n);
  ASSERT_TRUE(outcome.ok());
  EXPECT_EQ(outcome->instances_evaluated, 0u);
}

TEST(GlobTest, StarMatchesAnyRun) {
  EXPECT_TRUE(GlobMatch("*", ""));
  EXPECT_TRUE(GlobMatch("a*c", "abbbc"));
  EXPECT_TRUE(GlobMatch("MSSE-*-server", "MSSE-1234-server"));
  EXPECT_TRUE(GlobMatch("*ab*", "xxaxab"));
  EXPECT_FALSE(GlobMatch("a*c", "abcd"));
  EXPECT_FALSE(GlobMatch("abc", "ab"));
  EXPECT_FALSE(GlobMatch("", "a"));
}

}  // namespace
}  // namespace chaoslab::content
