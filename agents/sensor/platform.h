// Everything the sensor asks of the operating system, behind one narrow set of functions: files,
// the console, the clock since boot, the guard-paged input array, one TCP exchange, and the
// bugcheck. The sensor's logic (agent.cc, the channel-file loader, the content interpreter, the
// cloud protocol) is the same source on every system; only this layer differs:
//
//   platform_posix.cc  Linux: the winsim guest's csagent and the host tests.
//   platform_win32.cc  Windows (mingw-w64): csagent.exe, the Windows service
//   (agents/sensor/windows).
//
// Exactly one of the two is linked into a binary. All functions are thread-safe unless noted.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "lab/common/status.h"

namespace chaoslab::content::platform {

// ---- Memory: a page the interpreter's inputs end in, followed by an inaccessible page. ----
struct GuardedPage {
  void* mapping = nullptr;  // both pages; give back with UnmapGuardedPage
  size_t mapping_size = 0;
  char* guard = nullptr;  // the first byte of the inaccessible page
  size_t page_size = 0;
};
size_t PageSize();
Result<GuardedPage> MapGuardedPage();
void UnmapGuardedPage(const GuardedPage& page);

// ---- Files. Paths use '/' (Windows accepts it too); a root like "C:" prefixes them there. ----
// The whole file (also Linux /proc files, whose size stat() reports as 0).
Result<std::string> ReadWholeFile(const std::string& path);
bool IsDirectory(const std::string& path);
// The names of the entries of `dir` (no "." or ".."); empty when it cannot be read.
std::vector<std::string> ListDirectory(const std::string& dir);
// Writes `bytes` to dir/name via a temporary file and a rename, creating `dir` if needed, and
// makes file and folder durable before returning.
Status WriteFileDurably(const std::string& dir, const std::string& name, std::string_view bytes);
void RemoveFile(const std::string& path);
// Renames `from` to `to` in the same folder (replacing `to`), durably (the folder is flushed).
// NotFound when `from` does not exist.
Status RenameFile(const std::string& from, const std::string& to);
// Flushes every pending write of the volume holding `dir` (data, FAT and directories).
void SyncVolume(const std::string& dir);
// Creates (or truncates) an empty file.
Status TouchFile(const std::string& path);

// ---- Console: whole lines, one writer at a time (threads share the console). ----
void WriteLine(std::string line);
// Unbuffered, for usage text and errors before the sensor runs.
void WriteOut(std::string_view text);
void WriteErr(std::string_view text);

// "linux" or "windows": the system this platform layer is for (the os= of "@@winsim ready").
std::string_view SystemName();

// " uptime=<seconds>" since the system started (the lab reads the guest's clock from console
// lines), or "" when it cannot be read.
std::string UptimeField();

// ---- Network: one plain TCP exchange with an IPv4 literal (no name resolution). ----
// Connects to ip:port, sends `request`, reads until the peer closes or `max_bytes` is passed.
// Connecting, sending and reading share `deadline`. Unavailable/Timeout/IoError on network
// failure, Corruption when the answer exceeds max_bytes. `where` prefixes every message.
Result<std::string> TcpExchange(const std::string& ip, uint16_t port, std::string_view request,
                                std::chrono::steady_clock::time_point deadline,
                                const std::string& where, size_t max_bytes);

// ---- The bugcheck ----
// Arms the handler for an access fault (the 7.11 interpreter reading the guard page): it prints
// the stop screen and the @@ line of docs/GUEST-PROTOCOL.md, then takes the system down when
// `crash_system` is set and the platform allows it, otherwise exits the process with
// kAgentExitBugcheck.
//   Linux:   a kernel panic through /proc/sysrq-trigger, only inside a winsim guest.
//   Windows: the process marks itself critical now (RtlSetProcessIsCritical), so its death
//            stops Windows with CRITICAL_PROCESS_DIED (0xEF); prints whether that worked.
// Call once per process, before the interpreter runs.
void InstallBugcheckHandler(bool crash_system);
// Undoes what InstallBugcheckHandler did to the system (Windows: clears the critical flag, so
// that the service may stop or the system shut down). No-op where there is nothing to undo.
void DisarmSystemCrash();

}  // namespace chaoslab::content::platform
