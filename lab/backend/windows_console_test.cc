// WindowsConsole against boots of a Windows guest as COM1 shows them with EMS on.
//
// HAND-WRITTEN, NOT CAPTURED (as in sac_console_test.cc): the boot manager's legacy menu, the
// "Advanced Boot Options" list, BitLocker's recovery screen and SAC's messages below follow
// Microsoft's documentation; no Windows guest has run where this was written (docs/WINDOWS.md).
#include "lab/backend/windows_console.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace chaoslab {
namespace {

const std::string kBootManager =
    "\x1b[2J\x1b[1;1HWindows Boot Manager\r\n\r\nChoose an operating system to start, or press "
    "TAB to select a tool:\r\n(Use the arrow keys to highlight your choice, then press ENTER.)"
    "\r\n\r\n\x1b[7m    Windows Server                                   >\x1b[0m\r\n\r\nTo "
    "specify an advanced option for this choice, press F8.\r\nSeconds until the highlighted "
    "choice will be started automatically: 5\r\n";

std::string AdvancedMenu(bool with_winre) {
  std::string s =
      "\x1b[2J\x1b[1;1HAdvanced Boot Options\r\n\r\nChoose Advanced Options for: Windows "
      "Server\r\n(Use the arrow keys to highlight your choice.)\r\n\r\n";
  std::vector<std::string> entries = {"Safe Mode",
                                      "Safe Mode with Networking",
                                      "Safe Mode with Command Prompt",
                                      "",
                                      "Enable Boot Logging",
                                      "Enable low-resolution video",
                                      "Debugging Mode",
                                      "Disable automatic restart on system failure",
                                      "Disable Driver Signature Enforcement",
                                      "Disable Early Launch Anti-Malware Driver",
                                      "",
                                      "Start Windows Normally"};
  if (with_winre) entries.insert(entries.begin(), {"Repair Your Computer", ""});
  int row = 6;
  for (size_t i = 0; i < entries.size(); ++i, ++row) {
    // Cursor-addressed rows, the first entry in reverse video: no line breaks to rely on.
    s += "\x1b[" + std::to_string(row) + ";5H" + (i == 0 ? "\x1b[7m" : "") + entries[i] +
         (i == 0 ? "\x1b[0m" : "");
  }
  return s + "\x1b[20;1HDescription: View a list of system recovery tools";
}

const std::string kSacUp =
    "\r\nComputer is booting, SAC started and initialized.\r\n\r\nUse the \"ch -?\" command for "
    "information about using channels.\r\nUse the \"?\" command for general help.\r\n\r\nSAC>\r\n"
    "EVENT: The CMD command is now available.\r\nSAC>";

const std::string kRecoveryScreen =
    "\x1b[2J\x1b[1;1HBitLocker recovery\r\n\r\nEnter the recovery key for this drive\r\n\r\n"
    "Use the number keys or function keys F1-F10 (use F10 for 0).\r\n\r\nRecovery key ID: "
    "1A2B3C4D\r\n";

const std::string kF8 = std::string(1, '\x1b') + "8";  // as EMS reads function key 8

constexpr char kPassword[] = "111111-222222-333333-444444-555555-666666-777777-888888";

// The SAC conversation of one cmd-channel job (channel Cmd0001), as in sac_console_test.cc.
struct Turn {
  std::string expect;  // what the lab must type
  std::string reply;   // what the guest then shows
};
std::vector<Turn> CmdJob(const std::string& command, const std::string& output) {
  const std::string prompt = "\r\nC:\\Windows\\system32>";
  return {
      {"\r", "\r\nSAC>"},
      {"cmd\r",
       "cmd\r\nThe Command Prompt session was successfully launched.\r\nSAC>\r\nEVENT:   A new "
       "channel has been created.  Use \"ch -?\" for channel help.\r\nChannel: Cmd0001\r\nSAC>"},
      {"ch -sn Cmd0001\r",
       "\x1b[2J\x1b[0;0HName:                  Cmd0001\r\nDescription:           Command\r\n"
       "Use any other key to view this channel.\r\n"},
      {"\r", "Please enter login credentials.\r\nUsername: "},
      {"Administrator\r", "Administrator\r\nDomain  : "},
      {"\r", "\r\nPassword: "},
      {"s3cret\r", "\r\nMicrosoft Windows [Version 10.0.20348.587]\r\n" + prompt},
      {command + "\r", command + "\r\n" + output + prompt},
      {"echo chaoslab-rc=%ERRORLEVEL%\r",
       "echo chaoslab-rc=%ERRORLEVEL%\r\nchaoslab-rc=0\r\n" + prompt},
      {"exit\r\x1b\t0", "\r\nSAC>"},
  };
}

// Plays the guest's side: whenever the console has typed what a turn expects, the reply follows
// (in two chunks). Collects every protocol line.
struct Guest {
  WindowsConsole console{sac::Credentials{"Administrator", "", "s3cret"}};
  std::string typed;  // typed by the console and not yet matched by a turn
  std::vector<std::string> lines;

  void Take(const WindowsConsole::Output& out) {
    typed += out.send;
    lines.insert(lines.end(), out.lines.begin(), out.lines.end());
  }
  bool byte_by_byte = false;  // a serial port may hand over one byte per read
  void Show(const std::string& screen) {
    if (byte_by_byte) {
      for (char c : screen) Take(console.Feed(std::string(1, c)));
      return;
    }
    const size_t half = screen.size() / 2;
    Take(console.Feed(screen.substr(0, half)));
    Take(console.Feed(screen.substr(half)));
  }
  // The console must have typed exactly `expect` since the last turn; then the guest answers.
  void Turn(const std::string& expect, const std::string& reply) {
    ASSERT_EQ(typed, expect);
    typed.clear();
    Show(reply);
  }
  void Play(const std::vector<struct Turn>& turns) {
    for (const auto& t : turns) {
      Turn(t.expect, t.reply);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
  // Boots into `target`, presses F8 at the boot manager and shows "Advanced Boot Options".
  void AtAdvancedMenu(BootTarget target, bool with_winre) {
    Take(console.OnBoot(target));
    Show(kBootManager);
    Turn(kF8, AdvancedMenu(with_winre));
  }
  bool Said(const std::string& line) const {
    return std::find(lines.begin(), lines.end(), line) != lines.end();
  }
};

TEST(WindowsConsole, SafeModeFromTheF8MenuThenDeleteAndRestartOverSac) {
  Guest g;
  g.Take(g.console.OnBoot(BootTarget::kSafeMode));
  g.Show(kBootManager);
  // F8, then in the menu one step down past "Repair Your Computer" to "Safe Mode".
  g.Turn(kF8, AdvancedMenu(true));
  g.Turn("\x1b[B\r", "\x1b[2J\x1b[1;1HLoading files...\r\n" + kSacUp);
  EXPECT_TRUE(g.Said("@@winsim phase=console env=safe bitlocker=unlocked via=sac"));
  g.lines.clear();

  g.Take(g.console.Type("del 'C:\\Windows\\System32\\drivers\\CrowdStrike\\C-00000291*.sys'\n"));
  g.Play(CmdJob("del /f /q \"C:\\Windows\\System32\\drivers\\CrowdStrike\\C-00000291*.sys\"", ""));
  EXPECT_EQ(g.lines, std::vector<std::string>{"@@winsim cmd=del rc=0 via=sac"});
  g.lines.clear();

  // Safe mode was a one-time menu choice: restart needs no bcdedit, only SAC's restart.
  g.Take(g.console.Type("restart\n"));
  g.Turn("\r", "\r\nSAC>");
  EXPECT_EQ(g.typed, "restart\r");
  EXPECT_EQ(g.lines, std::vector<std::string>{"@@winsim cmd=restart rc=0 via=sac"});
}

TEST(WindowsConsole, EscapeSequencesCutByReadsAreNotText) {
  Guest g;
  g.byte_by_byte = true;
  g.AtAdvancedMenu(BootTarget::kSafeMode, true);
  g.Turn("\x1b[B\r", kSacUp);
  EXPECT_TRUE(g.Said("@@winsim phase=console env=safe bitlocker=unlocked via=sac"));
}

TEST(WindowsConsole, WithoutWinReSafeModeIsTheFirstEntry) {
  Guest g;
  g.AtAdvancedMenu(BootTarget::kSafeMode, false);
  EXPECT_EQ(g.typed, "\r");
}

TEST(WindowsConsole, WinReIsRepairYourComputerAndMissingItFailsTheBoot) {
  Guest with;
  with.AtAdvancedMenu(BootTarget::kWinRE, true);
  EXPECT_EQ(with.typed, "\r");  // the first entry

  Guest without;
  without.AtAdvancedMenu(BootTarget::kWinRE, false);
  EXPECT_EQ(without.typed, "");
  EXPECT_TRUE(without.Said("@@winsim boot-failed reason=no-menu-entry entry=winre via=ems"));
  // The runbook's next step types on: answered at once, not left waiting for SAC.
  without.lines.clear();
  without.Take(
      without.console.Type("del 'C:\\Windows\\System32\\drivers\\CrowdStrike\\C-00000291*.sys'\n"));
  EXPECT_EQ(without.lines,
            std::vector<std::string>{"@@winsim cmd=del rc=1 reason=no-console via=ems"});
  EXPECT_EQ(without.typed, "");
}

TEST(WindowsConsole, ANormalBootSkipsTheMenuTimeoutAndReportsNothing) {
  Guest g;
  g.Take(g.console.OnBoot(BootTarget::kDisk));
  g.Show(kBootManager);
  g.Turn("\r", kSacUp);
  EXPECT_TRUE(g.lines.empty());  // healthy is the agent's word, on COM2
  EXPECT_EQ(g.typed, "");
}

TEST(WindowsConsole, SafeModeWithoutAMenuIsAFailedBootNotAHang) {
  Guest g;
  g.Take(g.console.OnBoot(BootTarget::kSafeMode));
  g.Show("\x1b[2J\x1b[1;1HLoading files...\r\n" + kSacUp);
  EXPECT_TRUE(g.Said("@@winsim boot-failed reason=no-boot-menu via=ems"));
}

TEST(WindowsConsole, BitLockerRecoveryScreenTakesTheKeyAndLockedCommandsFail) {
  Guest g;
  g.AtAdvancedMenu(BootTarget::kSafeMode, true);
  g.Turn("\x1b[B\r", kRecoveryScreen);
  EXPECT_EQ(g.lines, (std::vector<std::string>{
                         "@@winsim phase=bitlocker-recovery reason=tpm-refused key-id=1A2B3C4D "
                         "via=ems",
                         "@@winsim phase=console env=safe bitlocker=locked via=ems"}));
  g.lines.clear();

  g.Take(g.console.Type("del 'C:\\Windows\\System32\\drivers\\CrowdStrike\\C-00000291*.sys'\n"));
  EXPECT_EQ(g.lines,
            std::vector<std::string>{"@@winsim cmd=del rc=1 reason=locked deleted=0 via=ems"});
  g.lines.clear();

  // A wrong key first: the screen says so and asks again.
  const std::string wrong = "111111-222222-333333-444444-555555-666666-777777-999999";
  g.Take(g.console.Type(std::string("manage-bde -unlock C: -RecoveryPassword ") + wrong + "\n"));
  g.Turn("111111222222333333444444555555666666777777999999\r",
         "\r\nThat key isn't right. Try again.\r\n" + kRecoveryScreen);
  EXPECT_EQ(g.lines, std::vector<std::string>{"@@winsim cmd=unlock rc=1 reason=wrong-key via=sac"});
  g.lines.clear();

  g.Take(
      g.console.Type(std::string("manage-bde -unlock C: -RecoveryPassword ") + kPassword + "\n"));
  g.Turn("111111222222333333444444555555666666777777888888\r",
         "\x1b[2J\x1b[1;1HWindows is loading files...\r\n");
  EXPECT_EQ(g.lines, std::vector<std::string>{"@@winsim cmd=unlock rc=0 via=sac"});
  g.lines.clear();
  g.Show(kSacUp);
  EXPECT_TRUE(g.Said("@@winsim phase=console env=safe bitlocker=unlocked via=sac"));
}

TEST(WindowsConsole, CommandsWaitForSacAndARebootAnswersThem) {
  Guest g;
  g.Take(g.console.OnBoot(BootTarget::kSafeMode));
  // Typed while Windows still boots: nothing is typed into the boot screens.
  g.Take(
      g.console.Type("del 'C:\\Windows\\System32\\drivers\\CrowdStrike\\C-00000291*.sys'\n"
                     "restart\n"));
  EXPECT_EQ(g.typed, "");
  EXPECT_TRUE(g.lines.empty());
  // The machine resets before SAC was ever up: both commands get their answer.
  g.Take(g.console.OnBoot(BootTarget::kSafeMode));
  EXPECT_EQ(g.lines,
            (std::vector<std::string>{"@@winsim cmd=del rc=1 reason=rebooted via=sac",
                                      "@@winsim cmd=restart rc=1 reason=rebooted via=sac"}));
}

TEST(WindowsConsole, QueuedCommandRunsOnceSacIsUp) {
  Guest g;
  g.AtAdvancedMenu(BootTarget::kSafeMode, true);
  g.Take(g.console.Type("del 'C:\\Windows\\System32\\drivers\\CrowdStrike\\C-00000291*.sys'\n"));
  g.Turn("\x1b[B\r", kSacUp);  // the menu choice; then SAC comes up and the job begins
  g.Play(CmdJob("del /f /q \"C:\\Windows\\System32\\drivers\\CrowdStrike\\C-00000291*.sys\"",
                "Could Not Find C:\\Windows\\System32\\drivers\\CrowdStrike\\C-00000291*.sys\r\n"));
  EXPECT_TRUE(g.Said("@@winsim cmd=del rc=0 deleted=0 via=sac"));
}

TEST(WindowsConsole, WhatCannotBeTranslatedIsAnsweredAtOnce) {
  Guest g;
  g.Take(g.console.OnBoot(BootTarget::kSafeMode));
  g.Take(g.console.Type("format C:\n"));
  EXPECT_EQ(g.lines,
            std::vector<std::string>{"@@winsim cmd=format rc=1 reason=unsupported via=sac"});
  EXPECT_EQ(g.typed, "");
}

}  // namespace
}  // namespace chaoslab
