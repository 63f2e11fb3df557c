// Reads the machine-readable lines of the winsim console (docs/GUEST-PROTOCOL.md).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace chaoslab {

struct GuestSignal {
  enum class Kind {
    kPhase,        // @@winsim phase=...
    kReady,        // @@winsim ready
    kLoaded,       // @@csagent loaded ...
    kRejected,     // @@csagent rejected ...
    kIpcOk,        // @@csagent ipc-notification
    kFetched,      // @@csagent fetched ...
    kQuarantined,  // @@csagent quarantined ...   the cloud remediation moved a file aside
    kHeartbeat,    // @@csagent heartbeat ...
    kBugcheck,     // @@bugcheck ...
    kCommand,      // @@winsim cmd=<name> rc=<n> ...   a recovery-console command finished
    kRepair,       // @@winsim repair result=ok|failed ...   the PXE repair image finished
    kBootFailed,   // @@winsim boot-failed reason=...   e.g. boot: usb without the stick
  };
  Kind kind;
  std::map<std::string, std::string> fields;  // key=value words of the line

  // Field as an integer, or `fallback` when absent or not a number.
  long long Int(const std::string& key, long long fallback = -1) const;
  std::string Str(const std::string& key) const;
};

// nullopt for lines that are not protocol lines (boot chatter, the blue screen's prose).
// Kernel messages may interleave with a line, so "@@" is looked for anywhere in it.
std::optional<GuestSignal> ParseGuestSignal(std::string_view line);

}  // namespace chaoslab
