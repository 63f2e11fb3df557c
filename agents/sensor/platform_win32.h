// What the Windows side of the platform layer (platform_win32.cc) offers beyond platform.h, for
// the service front end (agents/sensor/windows/csagent_main.cc) and the Windows tests.
#pragma once

#include <cstdint>

namespace chaoslab::content::platform::win32 {

// Console lines also go to this handle (a log file, a serial port), after stdout. The handle
// stays open for the life of the process. At most a few sinks; extra ones are ignored.
void AddConsoleSink(void* handle);

struct CriticalResult {
  bool ok = false;
  const char* via = "";    // the ntdll function used: "RtlSetProcessIsCritical", ...
  uint32_t nt_status = 0;  // its NTSTATUS; 0 = success
};
// Sets or clears this process's critical flag (see InstallBugcheckHandler in platform.h).
CriticalResult SetCritical(bool critical);

}  // namespace chaoslab::content::platform::win32
