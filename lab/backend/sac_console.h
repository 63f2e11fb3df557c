// The lab's control channel to a real Windows guest: Emergency Management Services' Special
// Administration Console (SAC) on COM1 (images/windows turns EMS on with bcdedit). This driver
// turns the runbook's recovery actions into what an operator types there, and SAC's answers into
// the step results the engine already reads from winsim (`@@winsim cmd=<name> rc=<n> ...`,
// docs/GUEST-PROTOCOL.md), each marked `via=sac`.
//
// What it types (Microsoft's SAC and cmd.exe, no extra software in the guest):
//   SAC> cmd                      opens a command channel ("Channel: Cmd0001")
//   SAC> ch -sn Cmd0001           switches to it; any key shows it; then the logon
//                                 (Username / Domain / Password) of the image's administrator
//   C:\Windows\system32> <command>
//   C:\Windows\system32> echo chaoslab-rc=%ERRORLEVEL%   (a line of its own: cmd expands %...%
//                                 when it reads a line, so `&` on one line would see the old value)
//   <Esc><Tab>0                   back to the SAC channel;  SAC> restart   when the job reboots
// and, at BitLocker's pre-boot recovery screen (boot manager output over EMS), the 48 digits of
// the recovery password and Enter.
//
// The jobs: safe mode = `bcdedit /set {default} safeboot minimal` + restart; leave safe mode =
// `bcdedit /deletevalue {default} safeboot` + restart; WinRE = `reagentc /boottore` + restart;
// delete = `del /f /q "C:\Windows\System32\drivers\CrowdStrike\C-00000291*.sys"`; unlock =
// `manage-bde -unlock C: -RecoveryPassword ...` in a cmd channel, or the key typed at the
// recovery screen.
//
// NOT RUN AGAINST REAL WINDOWS: the prompts it waits for were written from Microsoft's SAC
// documentation, and the unit tests' transcripts are hand-written, not captured (docs/WINDOWS.md).
// Pure: no I/O; the caller feeds console bytes and types what it returns. Not thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "lab/common/status.h"

namespace chaoslab::sac {

// One recovery action, as a sequence of cmd.exe commands and/or a key typed at the recovery
// screen. `name` is the engine's command name in the result line (del, unlock, safe-mode...).
struct Job {
  std::string name;
  std::vector<std::string> commands;  // cmd.exe lines; the job's rc is the first non-zero one
  bool restart_after = false;         // SAC `restart` once the commands succeeded
  std::string recovery_key;           // non-empty: typed at BitLocker's recovery screen instead
};

Job EnterSafeModeJob();                   // bcdedit /set {default} safeboot minimal; restart
Job LeaveSafeModeJob();                   // bcdedit /deletevalue {default} safeboot; restart
Job BootToWinREJob();                     // reagentc /boottore; restart
Job DeleteJob(std::string_view pattern);  // del in C:\Windows\System32\drivers\CrowdStrike
Job UnlockJob(std::string_view recovery_password);          // manage-bde -unlock in a cmd channel
Job RecoveryScreenJob(std::string_view recovery_password);  // typed at the pre-boot prompt

// The engine's console words (what it types into winsim: `del '<path>'`, `manage-bde -unlock C:
// -RecoveryPassword <pw>`, `restart`) as a Job. `restart` leaves safe mode: the safeboot value
// goes first, as the runbooks' "after" step says. InvalidArgument for anything else, and for a
// pattern or password with characters cmd.exe would interpret.
Result<Job> TranslateEngineCommand(std::string_view text);

// The administrator SAC's cmd channel logs on as (images/windows: admin-password.txt).
struct Credentials {
  std::string username = "Administrator";
  std::string domain;  // empty: the machine itself (Enter at "Domain")
  std::string password;
};

class SacDriver {
 public:
  explicit SacDriver(Credentials credentials) : cred_(std::move(credentials)) {}

  struct Output {
    std::string send;                // to type on the console now, in order
    std::vector<std::string> lines;  // finished results: "@@winsim cmd=<name> rc=<n> ... via=sac"
  };

  // Starts `job` (FailedPrecondition while another runs). Types Enter to make SAC show its prompt.
  Result<Output> Begin(Job job);
  // Console output as it arrives (any chunking; CR/LF and VT100 escapes as SAC sends them).
  Output Feed(std::string_view bytes);
  bool busy() const { return state_ != State::kIdle; }

 private:
  enum class State {
    kIdle,
    kSacPrompt,       // waiting for SAC> to type `cmd`
    kChannelCreated,  // waiting for "Channel: CmdNNNN"
    kChannelShown,    // waiting for "Use any other key to view this channel."
    kLogon,           // Username / Domain / Password, then the cmd prompt
    kCommand,         // a command typed, waiting for the prompt after it
    kErrorLevel,      // the echo typed, waiting for chaoslab-rc=<n>
    kBackToSac,       // Esc Tab 0 typed, waiting for SAC> to type `restart`
    kRecoveryScreen,  // waiting for BitLocker's recovery screen
    kKeyTyped,        // key typed: the boot goes on, or the screen says it is wrong
  };
  void Step(Output* out);
  bool StepOnce(Output* out);  // true when it consumed console output
  bool OnSacPrompt(Output* out);
  bool OnLogon(Output* out);
  bool OnErrorLevel(Output* out);
  bool Consume(size_t end);  // drops the buffer up to `end`: always true
  void Finish(Output* out, int rc, const std::string& extra);
  void TypeNextCommand(Output* out);

  Credentials cred_;
  Job job_;
  State state_ = State::kIdle;
  std::string buf_;  // output not yet consumed by a state
  size_t next_command_ = 0;
  int rc_ = 0;
  std::string extra_;  // e.g. " deleted=0" (del: "Could Not Find")
  bool typed_domain_ = false, typed_user_ = false;
};

}  // namespace chaoslab::sac
