// The lab's hands on a real Windows guest's COM1 (Emergency Management Services): what the engine
// asks of any host (a boot target, console commands) turned into what a technician at that console
// would do, and the console's answers turned into the winsim protocol lines the engine already
// reads (docs/GUEST-PROTOCOL.md, docs/WINDOWS.md).
//
// One boot, as the lab sees it on COM1:
//   boot manager menu   bcdedit's displaybootmenu with bootmenupolicy legacy (images/windows):
//                       a normal boot gets Enter at once; safe mode and WinRE get F8 (ESC 8) and,
//                       in "Advanced Boot Options", the arrow keys to "Safe Mode" / "Repair Your
//                       Computer" and Enter. A one-time choice: BCD is not changed.
//   BitLocker recovery  the TPM did not unlock C:: `@@winsim phase=bitlocker-recovery` and the
//                       console (`bitlocker=locked`); the engine's `manage-bde -unlock` becomes the
//                       48 digits typed at that screen (sac::RecoveryScreenJob).
//   SAC up              "The CMD command is now available": in safe mode / WinRE the console
//                       (`@@winsim phase=console env=safe|winre bitlocker=unlocked`: Windows runs,
//                       so C: is open); the engine's commands run as SAC jobs (sac::SacDriver), one
//                       at a time, queued until then.
// A normal boot reports nothing here: the agent says `@@winsim ready` on COM2 (agents/sensor).
//
// Every command the engine types gets exactly one `@@winsim cmd=` line, also when it cannot run
// (a reboot under way, no translation): the engine never waits for an answer that cannot come.
//
// NOT RUN AGAINST REAL WINDOWS: the screens' wording comes from Microsoft's documentation, the
// tests' transcripts are hand-written (docs/WINDOWS.md). Pure: no I/O. Not thread-safe.
#pragma once

#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lab/backend/backend.h"
#include "lab/backend/sac_console.h"

namespace chaoslab {

class WindowsConsole {
 public:
  explicit WindowsConsole(sac::Credentials credentials) : cred_(std::move(credentials)) {}

  struct Output {
    std::string send;                // to type on COM1 now
    std::vector<std::string> lines;  // protocol lines for the engine (via=sac or via=ems)
  };

  // A new boot begins (power on, or the restart after a reset) into `target`, the host's boot
  // choice at that moment. Commands still queued or running belong to the boot that ended: each
  // gets its `cmd=... rc=1 reason=rebooted` line.
  Output OnBoot(BootTarget target);
  // The engine typed `text` (one command per line).
  Output Type(std::string_view text);
  // Bytes as COM1 delivered them.
  Output Feed(std::string_view bytes);

 private:
  enum class Stage {
    kBootMenu,      // waiting for the boot manager's menu
    kAdvancedMenu,  // F8 sent: waiting for "Advanced Boot Options" to be painted in full
    kLoading,       // a choice made: Windows loads; watching for BitLocker recovery or SAC
    kRecoveryKey,   // at BitLocker's recovery screen, waiting for the engine's unlock
    kKeyTyped,      // the recovery key job runs (sac_ types it and reads the verdict)
    kSacReady,      // SAC's cmd channel can be opened: jobs run
    kStuck,         // the boot failed where no console answers (a menu without the entry)
  };
  struct Pending {
    std::string name;  // the engine's command name, for the result line
    std::optional<sac::Job> job;
  };
  void Step(Output* out);
  bool OnRecoveryScreen(Output* out);  // true when it was on screen
  void ChooseFromAdvancedMenu(Output* out);
  void StartNextJob(Output* out);
  void Reply(Output* out, const std::string& name, const std::string& rest);
  std::string ConsoleLine(std::string_view bitlocker) const;

  sac::Credentials cred_;
  sac::SacDriver sac_{cred_};
  Stage stage_ = Stage::kBootMenu;
  BootTarget target_ = BootTarget::kDisk;
  bool menu_chosen_ = false;     // this boot's recovery mode came from the one-time F8 choice
  std::string buf_;              // COM1 text not yet consumed by a stage (escapes removed)
  std::string recovery_screen_;  // BitLocker's recovery screen as shown, for the key job
  std::string partial_escape_;   // an escape sequence the last read cut off
  std::deque<Pending> queue_;
  std::string running_;  // name of the job sac_ runs ("" when none)
};

}  // namespace chaoslab
