// csagent.exe: the sensor as a Windows service (README.md here). The sensor itself is the Linux
// agent's code (agent.cc through platform_win32.cc); this file is only the Windows front end:
// service control, install/uninstall, the console mode, safe-mode detection and default paths.
//
//   csagent.exe --install [--log FILE] [--serial COMn] [--sensor-version V] [sensor flags]
//   csagent.exe --uninstall
//   csagent.exe --console [--critical] [--log FILE] [--serial COMn] [sensor flags]
//   csagent.exe [--service] [--log FILE] [--serial COMn] [sensor flags]   (what the SCM runs)
//
// Sensor flags are those of the Linux csagent (agent.h); --root defaults to %SystemDrive%,
// --ready-file to <root>/ProgramData/CrowdStrike/csagent.ready, and --say-ready is always on:
// on Windows no boot manager says "@@winsim ready", so the sensor says it (os=windows) itself.
#include <windows.h>

#include <string>
#include <string_view>
#include <vector>

#include "agents/sensor/agent.h"
#include "agents/sensor/platform.h"
#include "agents/sensor/platform_win32.h"

namespace chaoslab::content::windows {
namespace {

constexpr char kServiceName[] = "CSAgent";
constexpr char kDisplayName[] = "CrowdStrike Falcon Sensor (chaoslab replay)";
// Exit code when the system runs in safe mode: the sensor does not start there, as the real
// csagent.sys driver did not (which is why booting to safe mode was the documented fix).
constexpr int kExitSafeMode = 5;
constexpr int kExitService = 6;  // the service could not be installed, removed or dispatched

std::string Usage() {
  return "usage: csagent.exe --console [--critical] [--log FILE] [--serial COMn] [sensor flags]\n"
         "       csagent.exe --install [--log FILE] [--serial COMn] [--sensor-version V] "
         "[sensor flags]\n"
         "       csagent.exe --uninstall\n"
         "       csagent.exe [--service] [--log FILE] [--serial COMn] [sensor flags]  (the "
         "service, run by the SCM)\n"
         "sensor flags (as the Linux csagent; --root defaults to %SystemDrive%, --say-ready is "
         "always on):\n" +
         AgentUsage();
}

std::string LastError(std::string_view what) {
  char text[256] = {};
  const DWORD err = GetLastError();
  DWORD n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, nullptr, err,
                           0, text, sizeof text, nullptr);
  while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == '.')) --n;
  return std::string(what) + ": " + std::string(text, n) + " (error " + std::to_string(err) + ")";
}

// Safe mode, by both signs: the boot-time metric, and the key Windows creates only in a safe
// boot (HKLM\SYSTEM\CurrentControlSet\Control\SafeBoot\Option, value OptionValue). The key also
// lets a test under Wine stand in for a safe boot.
bool InSafeMode() {
  if (GetSystemMetrics(SM_CLEANBOOT) != 0) return true;
  HKEY key = nullptr;
  if (RegOpenKeyExA(HKEY_LOCAL_MACHINE, "SYSTEM\\CurrentControlSet\\Control\\SafeBoot\\Option", 0,
                    KEY_READ, &key) != ERROR_SUCCESS) {
    return false;
  }
  DWORD value = 0;
  DWORD size = sizeof value;
  const bool set = RegQueryValueExA(key, "OptionValue", nullptr, nullptr,
                                    reinterpret_cast<BYTE*>(&value), &size) == ERROR_SUCCESS;
  RegCloseKey(key);
  return set;
}

bool HasFlag(const std::vector<std::string>& args, std::string_view flag) {
  for (const std::string& a : args) {
    if (a == flag || a.starts_with(std::string(flag) + "=")) return true;
  }
  return false;
}

// Removes "--flag value" / "--flag=value" from args; the value, or "" when absent.
std::string TakeValue(std::vector<std::string>& args, std::string_view flag) {
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == flag && i + 1 < args.size()) {
      std::string value = args[i + 1];
      args.erase(args.begin() + static_cast<long>(i), args.begin() + static_cast<long>(i) + 2);
      return value;
    }
    if (args[i].starts_with(std::string(flag) + "=")) {
      std::string value = args[i].substr(flag.size() + 1);
      args.erase(args.begin() + static_cast<long>(i));
      return value;
    }
  }
  return "";
}

bool TakeSwitch(std::vector<std::string>& args, std::string_view flag) {
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == flag) {
      args.erase(args.begin() + static_cast<long>(i));
      return true;
    }
  }
  return false;
}

std::string SystemDrive() {
  char drive[16] = {};
  const DWORD n = GetEnvironmentVariableA("SystemDrive", drive, sizeof drive);
  return n > 0 && n < sizeof drive ? std::string(drive, n) : "C:";
}

// The value of --root in sensor flags ("" when absent).
std::string RootOf(const std::vector<std::string>& args) {
  std::string root;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--root" && i + 1 < args.size()) root = args[i + 1];
    if (args[i].starts_with("--root=")) root = args[i].substr(7);
  }
  return root;
}

// The sensor's own flags, with the Windows defaults filled in.
std::vector<std::string> SensorArgs(std::vector<std::string> args) {
  if (!HasFlag(args, "--root")) {
    args.insert(args.begin(), {"--root", SystemDrive()});
  }
  if (!HasFlag(args, "--ready-file")) {
    args.push_back("--ready-file=" + RootOf(args) + "/ProgramData/CrowdStrike/csagent.ready");
  }
  // The lab's health signal: winsim's boot manager prints "@@winsim ready" when it sees the ready
  // file; Windows has no such boot manager, so the sensor prints it itself at that moment.
  if (!HasFlag(args, "--say-ready")) args.push_back("--say-ready");
  return args;
}

// Console lines to a log file (appended) and/or a serial port the lab reads (COM2 on the lab's
// Windows guests: COM1 belongs to EMS/SAC). A sink that cannot be opened is reported on the
// others (and stdout) and left out; the sensor runs anyway.
void OpenSinks(const std::string& log, const std::string& serial) {
  std::string problems;
  if (!log.empty()) {
    HANDLE h = CreateFileA(log.c_str(), FILE_APPEND_DATA, FILE_SHARE_READ, nullptr, OPEN_ALWAYS,
                           FILE_ATTRIBUTE_NORMAL, nullptr);
    if (h != INVALID_HANDLE_VALUE) {
      platform::win32::AddConsoleSink(h);
    } else {
      problems += "csagent: " + LastError("--log " + log) + "\n";
    }
  }
  if (!serial.empty()) {
    // Read access too, as Microsoft's serial examples open ports: Wine (and possibly Windows)
    // refuses GetCommState's ioctls on a write-only handle, which left the port at its old speed.
    HANDLE h = CreateFileA(("\\\\.\\" + serial).c_str(), GENERIC_READ | GENERIC_WRITE, 0, nullptr,
                           OPEN_EXISTING, 0, nullptr);
    if (h != INVALID_HANDLE_VALUE) {
      DCB dcb{};
      dcb.DCBlength = sizeof dcb;
      if (GetCommState(h, &dcb)) {
        dcb.BaudRate = CBR_115200;
        dcb.ByteSize = 8;
        dcb.Parity = NOPARITY;
        dcb.StopBits = ONESTOPBIT;
        SetCommState(h, &dcb);
      }
      // A write never blocks the sensor for long (a port nobody drains must not stall the fault
      // path): 1 ms per byte plus 1 s, far above 115200 baud's ~0.09 ms per byte.
      COMMTIMEOUTS timeouts{};
      timeouts.WriteTotalTimeoutMultiplier = 1;
      timeouts.WriteTotalTimeoutConstant = 1000;
      SetCommTimeouts(h, &timeouts);  // fails harmlessly where the port is not a tty/UART
      platform::win32::AddConsoleSink(h);
    } else {
      problems += "csagent: " + LastError("--serial " + serial) + "\n";
    }
  }
  if (!problems.empty()) {
    problems.pop_back();
    platform::WriteLine(problems);
  }
}

// ---- Service ----
// ServiceMain runs the sensor on a thread of its own and waits for a stop request or for the
// sensor to end (a configuration error; a fault ends the whole process instead).
SERVICE_STATUS_HANDLE g_status_handle = nullptr;
std::vector<std::string> g_service_args;
HANDLE g_stop_event = nullptr;
volatile LONG g_agent_exit = -1;              // the sensor's exit code once it returned
const char* volatile g_stop_reason = "exit";  // "stop" or "shutdown" when the SCM asked

void Report(DWORD state, DWORD exit_code = NO_ERROR) {
  SERVICE_STATUS status{};
  status.dwServiceType = SERVICE_WIN32_OWN_PROCESS;
  status.dwCurrentState = state;
  status.dwControlsAccepted =
      state == SERVICE_RUNNING ? SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN : 0;
  status.dwWin32ExitCode = exit_code == NO_ERROR ? NO_ERROR : ERROR_SERVICE_SPECIFIC_ERROR;
  status.dwServiceSpecificExitCode = exit_code;
  status.dwWaitHint = state == SERVICE_STOP_PENDING ? 5000 : 0;
  SetServiceStatus(g_status_handle, &status);
}

DWORD WINAPI OnControl(DWORD control, DWORD, void*, void*) {
  if (control == SERVICE_CONTROL_STOP || control == SERVICE_CONTROL_SHUTDOWN) {
    g_stop_reason = control == SERVICE_CONTROL_STOP ? "stop" : "shutdown";
    Report(SERVICE_STOP_PENDING);
    SetEvent(g_stop_event);
    return NO_ERROR;
  }
  return control == SERVICE_CONTROL_INTERROGATE ? NO_ERROR : ERROR_CALL_NOT_IMPLEMENTED;
}

DWORD WINAPI RunSensor(void*) {
  InterlockedExchange(&g_agent_exit, AgentMain(g_service_args));
  SetEvent(g_stop_event);
  return 0;
}

void WINAPI ServiceMain(DWORD, char**) {
  g_status_handle = RegisterServiceCtrlHandlerExA(kServiceName, OnControl, nullptr);
  if (g_status_handle == nullptr) return;
  if (InSafeMode()) {
    platform::WriteLine("@@csagent not-started reason=safe-mode");
    Report(SERVICE_STOPPED);  // not an error: no recovery action, no restart
    return;
  }
  g_stop_event = CreateEventA(nullptr, TRUE, FALSE, nullptr);
  Report(SERVICE_RUNNING);
  HANDLE sensor = CreateThread(nullptr, 0, RunSensor, nullptr, 0, nullptr);
  if (sensor == nullptr) {
    platform::WriteLine("csagent: " + LastError("CreateThread"));
    Report(SERVICE_STOPPED, kAgentExitInternal);
    return;
  }
  WaitForSingleObject(g_stop_event, INFINITE);
  // A critical process may not simply end: clear the flag first, or stopping the service (or
  // shutting Windows down) would itself bugcheck.
  platform::DisarmSystemCrash();
  const LONG code = g_agent_exit;
  platform::WriteLine(std::string("@@csagent stopped reason=") + g_stop_reason +
                      (code >= 0 ? " exit=" + std::to_string(code) : ""));
  Report(SERVICE_STOPPED, code > 0 ? static_cast<DWORD>(code) : NO_ERROR);
  // The SCM has the final status; end here rather than unwind under the running sensor thread.
  TerminateProcess(GetCurrentProcess(), code > 0 ? static_cast<UINT>(code) : 0);
}

// The service's command line: this executable, --service and the given flags, quoted.
std::string ServiceCommandLine(const std::vector<std::string>& args) {
  char exe[MAX_PATH] = {};
  GetModuleFileNameA(nullptr, exe, sizeof exe);
  std::string line = "\"" + std::string(exe) + "\" --service";
  for (const std::string& a : args) {
    line += a.find_first_of(" \t") == std::string::npos ? " " + a : " \"" + a + "\"";
  }
  return line;
}

int Install(std::vector<std::string> args) {
  const std::string version = TakeValue(args, "--sensor-version");
  if (!version.empty()) {
    std::string root = RootOf(args);
    if (root.empty()) {
      root = SystemDrive();
      args.insert(args.begin(), {"--root", root});
    }
    const std::string ini = "version=" + version + "\n";
    Status written =
        platform::WriteFileDurably(root + "/ProgramData/CrowdStrike", "sensor.ini", ini);
    if (!written.ok()) {
      platform::WriteErr("csagent: " + written.ToString() + "\n");
      return kExitService;
    }
  }
  SC_HANDLE scm = OpenSCManagerA(nullptr, nullptr, SC_MANAGER_CREATE_SERVICE);
  if (scm == nullptr) {
    platform::WriteErr("csagent: " + LastError("OpenSCManager") + "\n");
    return kExitService;
  }
  const std::string command = ServiceCommandLine(args);
  // Automatic start, not delayed and without dependencies: the SCM starts it in its first wave.
  // A user-mode service cannot start as early as the boot-start driver csagent.sys did.
  SC_HANDLE service = CreateServiceA(
      scm, kServiceName, kDisplayName, SERVICE_ALL_ACCESS, SERVICE_WIN32_OWN_PROCESS,
      SERVICE_AUTO_START, SERVICE_ERROR_NORMAL, command.c_str(), nullptr, nullptr, nullptr,
      nullptr /* LocalSystem: has SeDebugPrivilege, needed for the critical flag */, nullptr);
  if (service == nullptr) {
    platform::WriteErr("csagent: " + LastError("CreateService") + "\n");
    CloseServiceHandle(scm);
    return kExitService;
  }
  // If it ever stops unexpectedly, start it again (the real sensor is not optional).
  SC_ACTION restart{SC_ACTION_RESTART, 1000};
  SERVICE_FAILURE_ACTIONSA failure{};
  failure.dwResetPeriod = 86400;
  failure.cActions = 1;
  failure.lpsaActions = &restart;
  ChangeServiceConfig2A(service, SERVICE_CONFIG_FAILURE_ACTIONS, &failure);
  SERVICE_DESCRIPTIONA description{};
  std::string text = "chaoslab's model of the CrowdStrike sensor: reads channel files C-00000291*";
  description.lpDescription = text.data();
  ChangeServiceConfig2A(service, SERVICE_CONFIG_DESCRIPTION, &description);
  CloseServiceHandle(service);
  CloseServiceHandle(scm);
  platform::WriteOut("csagent: installed service " + std::string(kServiceName) + ": " + command +
                     "\n");
  return kAgentExitOk;
}

int Uninstall() {
  SC_HANDLE scm = OpenSCManagerA(nullptr, nullptr, SC_MANAGER_CONNECT);
  SC_HANDLE service =
      scm == nullptr ? nullptr : OpenServiceA(scm, kServiceName, SERVICE_STOP | DELETE);
  if (service == nullptr) {
    platform::WriteErr("csagent: " + LastError("OpenService " + std::string(kServiceName)) + "\n");
    if (scm != nullptr) CloseServiceHandle(scm);
    return kExitService;
  }
  SERVICE_STATUS status{};
  ControlService(service, SERVICE_CONTROL_STOP, &status);  // fine if it was not running
  const bool deleted = DeleteService(service);
  const std::string error = deleted ? "" : LastError("DeleteService");
  CloseServiceHandle(service);
  CloseServiceHandle(scm);
  if (!deleted) {
    platform::WriteErr("csagent: " + error + "\n");
    return kExitService;
  }
  platform::WriteOut("csagent: removed service " + std::string(kServiceName) + "\n");
  return kAgentExitOk;
}

// What the SCM runs: the service's command line is "csagent.exe [--service] [flags]", so that a
// service created with sc.exe and only sensor flags works too.
int RunService(std::vector<std::string> args) {
  TakeSwitch(args, "--service");
  std::string log = TakeValue(args, "--log");
  const std::string serial = TakeValue(args, "--serial");
  g_service_args = SensorArgs(std::move(args));
  // Bad flags fail here, before the SCM is told the service runs.
  if (auto parsed = ParseAgentArgs(g_service_args); !parsed.ok()) {
    platform::WriteErr("csagent: " + parsed.status().message() + "\n" + Usage());
    return kAgentExitUsage;
  }
  if (log.empty()) log = RootOf(g_service_args) + "/ProgramData/CrowdStrike/csagent.log";
  OpenSinks(log, serial);
  SERVICE_TABLE_ENTRYA table[] = {{const_cast<char*>(kServiceName), ServiceMain},
                                  {nullptr, nullptr}};
  if (!StartServiceCtrlDispatcherA(table)) {
    platform::WriteErr("csagent: " + LastError("StartServiceCtrlDispatcher") +
                       " (without a mode csagent.exe is the service, for the service control "
                       "manager; run it by hand with --console)\n" +
                       Usage());
    return kExitService;
  }
  return kAgentExitOk;
}

int Main(std::vector<std::string> args) {
  const std::string mode = args.empty() ? "" : args[0];
  if (mode == "--help" || mode == "-h") {
    platform::WriteOut(Usage());
    return kAgentExitOk;
  }
  if (mode == "--install") return Install({args.begin() + 1, args.end()});
  if (mode == "--uninstall") return Uninstall();
  if (mode != "--console") return RunService(std::move(args));
  args.erase(args.begin());
  const bool critical = TakeSwitch(args, "--critical");
  const std::string log = TakeValue(args, "--log");
  OpenSinks(log, TakeValue(args, "--serial"));
  if (InSafeMode()) {
    platform::WriteLine("@@csagent not-started reason=safe-mode");
    return kExitSafeMode;
  }
  // A developer's own machine must not stop: console mode sets the critical flag only when
  // asked to (--critical), the counterpart of Linux's "only inside a winsim guest".
  if (!critical && !HasFlag(args, "--no-panic")) args.push_back("--no-panic");
  return AgentMain(SensorArgs(std::move(args)));
}

}  // namespace
}  // namespace chaoslab::content::windows

int main(int argc, char** argv) {
  // No "program has stopped working" box and no debugger for a fault: a fault is handled (and
  // ends the process) in platform_win32.cc, and nothing may wait for a click on a server.
  SetErrorMode(SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX);
  return chaoslab::content::windows::Main(std::vector<std::string>(argv + 1, argv + argc));
}
