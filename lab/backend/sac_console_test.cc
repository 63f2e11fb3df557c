// The SAC driver against conversations with a Windows guest's EMS console.
//
// HAND-WRITTEN, NOT CAPTURED: no Windows guest has run on the machines this was written on. The
// guest's side of each conversation below was written from Microsoft's documentation of SAC
// ("Special Administration Console (SAC) and SAC commands", the EMS and `ch` command references:
// the `SAC>` prompt, "The Command Prompt session was successfully launched.", "EVENT: A new
// channel has been created.", "Channel: Cmd0001", the channel's description screen ending "Use any
// other key to view this channel.", the Username/Domain/Password logon) and cmd.exe's usual
// output. Real transcripts may differ in wording and spacing; see docs/WINDOWS.md.
#include "lab/backend/sac_console.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace chaoslab::sac {
namespace {

constexpr char kPrompt[] = "\r\nC:\\Windows\\system32>";
const std::string kSac = "\r\nSAC>";

// The guest's answers to `cmd`, the channel switch, the key press and the logon.
std::vector<std::pair<std::string, std::string>> OpenChannel(const std::string& number) {
  const std::string name = "Cmd" + number;
  return {
      {"\r", kSac},
      {"cmd\r",
       "cmd\r\nThe Command Prompt session was successfully launched.\r\nSAC>\r\nEVENT:   A new "
       "channel has been created.  Use \"ch -?\" for channel help.\r\nChannel: " +
           name + "\r\nSAC>"},
      {"ch -sn " + name + "\r",
       "ch -sn " + name + "\r\n\x1b[2J\x1b[0;0HName:                  " + name +
           "\r\nDescription:           Command\r\nType:                  VT-UTF8\r\n"
           "Channel GUID:          5f1a8b2c-0000-11ef-9a3b-00155d010203\r\n"
           "Application Type GUID: 63d02271-8aa4-11d5-bccf-00b0d014a2d0\r\n\r\n"
           "Press <esc><tab> for next channel.\r\nPress <esc><tab>0 to return to the SAC "
           "channel.\r\nUse any other key to view this channel.\r\n"},
      {"\r", "\x1b[2J\x1b[0;0HPlease enter login credentials.\r\nUsername: "},
      {"Administrator\r", "Administrator\r\nDomain  : "},
      {"\r", "\r\nPassword: "},
      {"s3cret\r",
       "\r\n\r\nAttempting to authenticate...\r\n\r\nMicrosoft Windows [Version "
       "10.0.20348.587]\r\n(c) Microsoft Corporation. All rights reserved.\r\n" +
           std::string(kPrompt)},
  };
}

struct Result {
  std::vector<std::string> lines;
  std::string unexpected;  // first send that differed from the conversation
};

// Plays the guest: each expected send of the driver gets the guest's reply, byte by byte in
// two halves (the driver must not depend on chunking).
Result Play(SacDriver& d, const Job& job,
            const std::vector<std::pair<std::string, std::string>>& talk) {
  Result r;
  auto begun = d.Begin(job);
  EXPECT_TRUE(begun.ok());
  std::string sent = begun->send;
  for (const auto& [expect, reply] : talk) {
    if (sent != expect) {
      r.unexpected = "expected '" + expect + "' but the driver typed '" + sent + "'";
      return r;
    }
    sent.clear();
    const size_t half = reply.size() / 2;
    for (const auto& piece : {reply.substr(0, half), reply.substr(half)}) {
      auto out = d.Feed(piece);
      sent += out.send;
      r.lines.insert(r.lines.end(), out.lines.begin(), out.lines.end());
    }
  }
  if (!sent.empty()) r.unexpected = "typed after the conversation ended: '" + sent + "'";
  return r;
}

SacDriver Driver() { return SacDriver(Credentials{"Administrator", "", "s3cret"}); }

TEST(SacConsole, DeleteTheChannelFile) {
  auto talk = OpenChannel("0001");
  const std::string del =
      "del /f /q \"C:\\Windows\\System32\\drivers\\CrowdStrike\\C-00000291*.sys\"\r";
  talk.push_back({del, del + "\n" + kPrompt});
  talk.push_back({"echo chaoslab-rc=%ERRORLEVEL%\r",
                  "echo chaoslab-rc=%ERRORLEVEL%\r\nchaoslab-rc=0\r\n" + std::string(kPrompt)});
  talk.push_back({"exit\r\x1b\t0", kSac});
  SacDriver d = Driver();
  auto job = TranslateEngineCommand(
      "del 'C:\\Windows\\System32\\drivers\\CrowdStrike\\C-00000291*.sys'\n");
  ASSERT_TRUE(job.ok()) << job.status().message();
  Result r = Play(d, *job, talk);
  EXPECT_EQ(r.unexpected, "");
  ASSERT_EQ(r.lines.size(), 1u);
  EXPECT_EQ(r.lines[0], "@@winsim cmd=del rc=0 via=sac");
  EXPECT_FALSE(d.busy());
}

TEST(SacConsole, DeleteWithNothingToDeleteSaysSoAsWinsimDoes) {
  auto talk = OpenChannel("0002");
  const std::string del =
      "del /f /q \"C:\\Windows\\System32\\drivers\\CrowdStrike\\C-00000291*.sys\"\r";
  // del leaves ERRORLEVEL at 0 when nothing matches; winsim reports deleted=0 then.
  talk.push_back({del, del +
                           "\nCould Not Find C:\\Windows\\System32\\drivers\\CrowdStrike\\"
                           "C-00000291*.sys\r\n" +
                           kPrompt});
  talk.push_back({"echo chaoslab-rc=%ERRORLEVEL%\r",
                  "echo chaoslab-rc=%ERRORLEVEL%\r\nchaoslab-rc=0\r\n" + std::string(kPrompt)});
  talk.push_back({"exit\r\x1b\t0", kSac});
  SacDriver d = Driver();
  Result r = Play(d, DeleteJob("C-00000291*.sys"), talk);
  EXPECT_EQ(r.unexpected, "");
  ASSERT_EQ(r.lines.size(), 1u);
  EXPECT_EQ(r.lines[0], "@@winsim cmd=del rc=0 deleted=0 via=sac");
}

TEST(SacConsole, SafeModeIsBcdeditThenRestartFromSac) {
  auto talk = OpenChannel("0001");
  const std::string set = "bcdedit /set {default} safeboot minimal\r";
  talk.push_back({set, set + "\nThe operation completed successfully.\r\n" + kPrompt});
  talk.push_back({"echo chaoslab-rc=%ERRORLEVEL%\r",
                  "echo chaoslab-rc=%ERRORLEVEL%\r\nchaoslab-rc=0\r\n" + std::string(kPrompt)});
  talk.push_back({"exit\r\x1b\t0", "\x1b[2J\x1b[0;0H" + kSac});
  talk.push_back({"restart\r", "restart\r\n"});
  SacDriver d = Driver();
  Result r = Play(d, EnterSafeModeJob(), talk);
  EXPECT_EQ(r.unexpected, "");
  ASSERT_EQ(r.lines.size(), 1u);
  EXPECT_EQ(r.lines[0], "@@winsim cmd=safe-mode rc=0 via=sac");
}

TEST(SacConsole, RestartLeavesSafeModeFirst) {
  auto job = TranslateEngineCommand("restart\n");
  ASSERT_TRUE(job.ok());
  ASSERT_EQ(job->commands.size(), 1u);
  EXPECT_EQ(job->commands[0], "bcdedit /deletevalue {default} safeboot");
  EXPECT_TRUE(job->restart_after);
  EXPECT_EQ(BootToWinREJob().commands[0], "reagentc /boottore");
}

TEST(SacConsole, FailingCommandGivesItsErrorLevelAndNoRestart) {
  auto talk = OpenChannel("0003");
  const std::string set = "bcdedit /set {default} safeboot minimal\r";
  talk.push_back({set, set +
                           "\nAn error occurred while attempting to reference the specified "
                           "entry.\r\nThe system cannot find the file specified.\r\n" +
                           kPrompt});
  talk.push_back({"echo chaoslab-rc=%ERRORLEVEL%\r",
                  "echo chaoslab-rc=%ERRORLEVEL%\r\nchaoslab-rc=1\r\n" + std::string(kPrompt)});
  talk.push_back({"exit\r\x1b\t0", kSac});  // back to SAC, but no `restart`
  SacDriver d = Driver();
  Result r = Play(d, EnterSafeModeJob(), talk);
  EXPECT_EQ(r.unexpected, "");
  ASSERT_EQ(r.lines.size(), 1u);
  EXPECT_EQ(r.lines[0], "@@winsim cmd=safe-mode rc=1 via=sac");
}

TEST(SacConsole, UnlockInACmdChannel) {
  const std::string pw = "111111-222222-333333-444444-555555-666666-777777-888888";
  auto job = TranslateEngineCommand("manage-bde -unlock C: -RecoveryPassword " + pw + "\n");
  ASSERT_TRUE(job.ok()) << job.status().message();
  auto talk = OpenChannel("0001");
  const std::string cmd = "manage-bde -unlock C: -RecoveryPassword " + pw + "\r";
  talk.push_back({cmd, cmd +
                           "\nBitLocker Drive Encryption: Configuration Tool version "
                           "10.0.20348\r\n\r\nPassword successfully unlocked volume C:.\r\n" +
                           kPrompt});
  talk.push_back({"echo chaoslab-rc=%ERRORLEVEL%\r",
                  "echo chaoslab-rc=%ERRORLEVEL%\r\nchaoslab-rc=0\r\n" + std::string(kPrompt)});
  talk.push_back({"exit\r\x1b\t0", kSac});
  SacDriver d = Driver();
  Result r = Play(d, *job, talk);
  EXPECT_EQ(r.unexpected, "");
  ASSERT_EQ(r.lines.size(), 1u);
  EXPECT_EQ(r.lines[0], "@@winsim cmd=unlock rc=0 via=sac");
}

// The pre-boot recovery screen (boot manager over EMS): the key, digits only, then Enter.
TEST(SacConsole, RecoveryScreenTakesTheKey) {
  const std::string pw = "111111-222222-333333-444444-555555-666666-777777-888888";
  const std::string screen =
      "\x1b[2J\x1b[0;0HBitLocker recovery\r\n\r\nEnter the recovery key for this drive\r\n"
      "________-________-________\r\n";
  {
    SacDriver d = Driver();
    Result r = Play(d, RecoveryScreenJob(pw),
                    {{"", screen},
                     {"111111222222333333444444555555666666777777888888\r",
                      "\r\n\r\nComputer is booting, SAC started and initialized.\r\n"}});
    EXPECT_EQ(r.unexpected, "");
    ASSERT_EQ(r.lines.size(), 1u);
    EXPECT_EQ(r.lines[0], "@@winsim cmd=unlock rc=0 via=sac");
  }
  {
    SacDriver d = Driver();
    Result r = Play(d, RecoveryScreenJob(pw),
                    {{"", screen},
                     {"111111222222333333444444555555666666777777888888\r",
                      "\r\nThat key isn't right. Try again.\r\n"}});
    EXPECT_EQ(r.unexpected, "");
    ASSERT_EQ(r.lines.size(), 1u);
    EXPECT_EQ(r.lines[0], "@@winsim cmd=unlock rc=1 reason=wrong-key via=sac");
  }
}

TEST(SacConsole, RefusalsAreResultsNotHangs) {
  {
    // SAC answers `cmd` before Windows can start cmd.exe (early boot).
    SacDriver d = Driver();
    Result r = Play(d, DeleteJob("C-00000291*.sys"),
                    {{"\r", kSac},
                     {"cmd\r",
                      "cmd\r\nThe SAC Command Console session could not be launched because the "
                      "service is not yet available.\r\nSAC>"}});
    EXPECT_EQ(r.unexpected, "");
    ASSERT_EQ(r.lines.size(), 1u);
    EXPECT_EQ(r.lines[0], "@@winsim cmd=del rc=1 reason=sac-cmd-unavailable via=sac");
  }
  {
    auto talk = OpenChannel("0001");
    talk.back().second = "\r\n\r\nAttempting to authenticate...\r\nUnable to authenticate.\r\n";
    talk.back().first = "s3cret\r";
    SacDriver d = Driver();
    Result r = Play(d, DeleteJob("x.sys"), talk);
    EXPECT_EQ(r.unexpected, "typed after the conversation ended: '\x1b\t0'");
    ASSERT_EQ(r.lines.size(), 1u);
    EXPECT_EQ(r.lines[0], "@@winsim cmd=del rc=1 reason=logon-failed via=sac");
  }
}

TEST(SacConsole, EngineWordsOutsideTheTranslationAreRefused) {
  EXPECT_FALSE(TranslateEngineCommand("del 'C:\\Windows\\System32\\config\\SAM'").ok());
  EXPECT_FALSE(
      TranslateEngineCommand("del 'C:\\Windows\\System32\\drivers\\CrowdStrike\\a&calc.sys'").ok());
  EXPECT_FALSE(TranslateEngineCommand("manage-bde -unlock C: -RecoveryPassword 123").ok());
  EXPECT_FALSE(TranslateEngineCommand("format C:").ok());
  SacDriver d = Driver();
  ASSERT_TRUE(d.Begin(DeleteJob("a.sys")).ok());
  EXPECT_FALSE(d.Begin(DeleteJob("b.sys")).ok());
}

}  // namespace
}  // namespace chaoslab::sac
