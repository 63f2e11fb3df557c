// csagent, the guest sensor: loads cached channel files at boot, races the cloud for newer content,
// interprets IPC notifications, and turns an interpreter fault into a Windows-style bugcheck and a
// real guest kernel panic. The console contract is docs/GUEST-PROTOCOL.md. The same source runs on
// Windows (agents/sensor/windows): everything system-specific is in platform.h.
#pragma once

#include <string>
#include <vector>

#include "lab/common/status.h"

namespace chaoslab::content {

// Process exit codes of csagent.
inline constexpr int kAgentExitOk = 0;         // --heartbeats N reached
inline constexpr int kAgentExitUsage = 2;      // bad command line
inline constexpr int kAgentExitConfig = 3;     // sensor.ini missing, unreadable or unknown version
inline constexpr int kAgentExitInternal = 4;   // the input array could not be mapped
inline constexpr int kAgentExitBugcheck = 80;  // 0x50: bugcheck printed, no panic (--no-panic, or
                                               // the sysrq write failed / is not allowed)

struct AgentOptions {
  std::string root;  // the mounted system disk, e.g. /mnt/c
  std::string host = "winsim";
  std::string cloud;  // "10.0.2.100:80"; empty = offline
  int poll_ms = 500;
  int ipc_ms = 200;
  std::string ready_file = "/run/csagent.ready";
  bool no_panic = false;  // never write /proc/sysrq-trigger
  int heartbeats = 0;     // exit after this many heartbeats; 0 = run forever
  // Print "@@winsim ready os=<platform::SystemName()>" once the ready file is written. On winsim
  // the boot manager says "@@winsim ready" when it sees that file, so it never sets this; on
  // Windows nothing else would say it, so csagent.exe does (windows/csagent_main.cc).
  bool say_ready = false;
};

// argv[1..] of csagent, as "--flag value" or "--flag=value". InvalidArgument names the flag.
Result<AgentOptions> ParseAgentArgs(const std::vector<std::string>& args);
std::string AgentUsage();

// Runs the sensor; returns only with an exit code above (or never, with heartbeats == 0).
// Installs the process-wide fault handler (platform::InstallBugcheckHandler): call once per
// process.
int RunAgent(const AgentOptions& options);

// The csagent command: argv[1..] → usage text (--help, exit 0), a usage error on stderr
// (kAgentExitUsage) or RunAgent's result.
int AgentMain(const std::vector<std::string>& args);

}  // namespace chaoslab::content
