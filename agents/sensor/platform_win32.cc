// The sensor's platform layer on Windows (platform.h), built with mingw-w64: csagent.exe, the
// Windows service of agents/sensor/windows. Narrow (ANSI) Win32 calls throughout: the lab's paths
// are ASCII, and Windows accepts '/' as a separator.
#include "agents/sensor/platform_win32.h"

// clang-format off: winsock2.h must come before windows.h.
#include <windows.h>
#include <winsock2.h>
#include <ws2tcpip.h>
// clang-format on

#include <cstdio>
#include <cstring>
#include <mutex>

#include "agents/sensor/agent.h"
#include "agents/sensor/platform.h"

namespace chaoslab::content::platform {
using win32::CriticalResult;
namespace {

using Clock = std::chrono::steady_clock;

// "<what>: <Windows' message> (error N)".
Status FromWin32(const std::string& what, DWORD err, ErrorCode code = ErrorCode::kIoError) {
  char text[256] = {};
  DWORD n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, nullptr, err,
                           0, text, sizeof text, nullptr);
  while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == '.')) --n;
  std::string message = what + ": " + std::string(text, n) + " (error " + std::to_string(err) + ")";
  return code == ErrorCode::kUnavailable ? Status::Unavailable(std::move(message))
                                         : Status::IoError(std::move(message));
}

// Writes everything to a handle; false when the handle refuses.
bool WriteAll(HANDLE h, const char* data, size_t n) {
  while (n > 0) {
    DWORD written = 0;
    const DWORD chunk = n > 1u << 20 ? 1u << 20 : static_cast<DWORD>(n);
    if (!WriteFile(h, data, chunk, &written, nullptr) || written == 0) return false;
    data += written;
    n -= written;
  }
  return true;
}

bool Usable(HANDLE h) { return h != nullptr && h != INVALID_HANDLE_VALUE; }

// Where console lines go: the process's stdout (console mode) and the sinks a service adds
// (its log file, a serial port the lab reads). Fixed-size, so that the fault handler can walk it
// without allocating.
constexpr int kMaxSinks = 4;
std::mutex g_console_mu;
HANDLE g_sinks[kMaxSinks] = {};
int g_sink_count = 0;

void WriteToSinks(const char* data, size_t n) {
  const HANDLE out = GetStdHandle(STD_OUTPUT_HANDLE);
  if (Usable(out)) WriteAll(out, data, n);
  for (int i = 0; i < g_sink_count; ++i) WriteAll(g_sinks[i], data, n);
}

// mkdir -p; a prefix that already is a directory (also "C:") is fine.
Status MakeDirectories(const std::string& dir) {
  for (size_t at = 1; at <= dir.size(); ++at) {
    if (at != dir.size() && dir[at] != '/' && dir[at] != '\\') continue;
    const std::string prefix = dir.substr(0, at);
    if (!CreateDirectoryA(prefix.c_str(), nullptr)) {
      const DWORD err = GetLastError();
      if (err != ERROR_ALREADY_EXISTS && !IsDirectory(prefix)) {
        return FromWin32("mkdir " + prefix, err);
      }
    }
  }
  return Status::Ok();
}

// An exported function of ntdll.dll, or nullptr (Wine lacks some).
template <typename Fn>
Fn NtdllFunction(const char* name) {
  const FARPROC proc = GetProcAddress(GetModuleHandleA("ntdll.dll"), name);
  Fn fn = nullptr;
  static_assert(sizeof fn == sizeof proc);
  std::memcpy(&fn, &proc, sizeof fn);  // not a cast: FARPROC's type differs from Fn's
  return fn;
}

using RtlSetProcessIsCriticalFn = LONG(NTAPI*)(BOOLEAN new_value, BOOLEAN* old_value,
                                               BOOLEAN check_flag);
using NtSetInformationProcessFn = LONG(NTAPI*)(HANDLE process, ULONG info_class, void* info,
                                               ULONG info_length);
constexpr ULONG kProcessBreakOnTermination = 29;  // PROCESSINFOCLASS, not in mingw's headers

// The critical-process flag: when a process carrying it ends, for any reason, the kernel stops
// the system with CRITICAL_PROCESS_DIED (0xEF). Needs SeDebugPrivilege (LocalSystem has it).
// RtlSetProcessIsCritical is the documented-by-use wrapper; NtSetInformationProcess with
// ProcessBreakOnTermination is what it calls, and the fallback where ntdll lacks the wrapper.
CriticalResult SetProcessCritical(bool critical) {
  CriticalResult result;
  HANDLE token = nullptr;
  if (OpenProcessToken(GetCurrentProcess(), TOKEN_ADJUST_PRIVILEGES | TOKEN_QUERY, &token)) {
    TOKEN_PRIVILEGES privileges{};
    privileges.PrivilegeCount = 1;
    privileges.Privileges[0].Attributes = SE_PRIVILEGE_ENABLED;
    if (LookupPrivilegeValueA(nullptr, "SeDebugPrivilege", &privileges.Privileges[0].Luid)) {
      AdjustTokenPrivileges(token, FALSE, &privileges, 0, nullptr, nullptr);
    }
    CloseHandle(token);
  }
  if (auto rtl = NtdllFunction<RtlSetProcessIsCriticalFn>("RtlSetProcessIsCritical")) {
    result.via = "RtlSetProcessIsCritical";
    result.nt_status = static_cast<uint32_t>(rtl(critical ? TRUE : FALSE, nullptr, FALSE));
  } else if (auto nt = NtdllFunction<NtSetInformationProcessFn>("NtSetInformationProcess")) {
    result.via = "NtSetInformationProcess";
    ULONG value = critical ? 1 : 0;
    result.nt_status = static_cast<uint32_t>(
        nt(GetCurrentProcess(), kProcessBreakOnTermination, &value, sizeof value));
  } else {
    result.via = "none";
    result.nt_status = 0xC0000002;  // STATUS_NOT_IMPLEMENTED
  }
  result.ok = result.nt_status == 0;
  return result;
}

// ---- The bugcheck: runs on the faulting thread, allocates nothing. ----
volatile LONG g_critical = 0;  // the critical flag is set: this process's death stops Windows
volatile LONG g_faulted = 0;   // first fault wins; a second one (another thread) just waits

// The process's last-chance handler: an exception nothing else handled, on any thread. That is
// the 7.11 interpreter's read of the guard page (an access violation), or any other crash of the
// sensor, which on real Windows would end the critical process just the same.
LONG WINAPI OnUnhandledException(EXCEPTION_POINTERS* info) {
  const DWORD code = info->ExceptionRecord->ExceptionCode;
  if (InterlockedExchange(&g_faulted, 1) != 0) {
    Sleep(INFINITE);  // the first faulting thread ends the process
  }
  // For an access violation, parameter 1 is the address that was accessed.
  const bool access = code == EXCEPTION_ACCESS_VIOLATION || code == EXCEPTION_IN_PAGE_ERROR;
  const uint64_t address =
      access && info->ExceptionRecord->NumberParameters >= 2
          ? static_cast<uint64_t>(info->ExceptionRecord->ExceptionInformation[1])
          : 0;
  const bool critical = g_critical != 0;
  char line[200];
  if (access) {
    std::snprintf(line, sizeof line, "csagent: access violation at 0x%016llx\n",
                  static_cast<unsigned long long>(address));
    WriteToSinks(line, std::strlen(line));
  }
  std::snprintf(line, sizeof line,
                "@@csagent fault code=0x%08lx address=0x%016llx module=csagent.exe critical=%s\n",
                static_cast<unsigned long>(code), static_cast<unsigned long long>(address),
                critical ? "yes stop=CRITICAL_PROCESS_DIED" : "no stop=none");
  WriteToSinks(line, std::strlen(line));
  for (int i = 0; i < g_sink_count; ++i) FlushFileBuffers(g_sinks[i]);
  // With the critical flag set, Windows bugchecks 0xEF as this process ends. Without it (console
  // mode, or the flag was refused, as under Wine) the process just ends with this code.
  TerminateProcess(GetCurrentProcess(), kAgentExitBugcheck);
  return EXCEPTION_EXECUTE_HANDLER;  // not reached
}

// ---- Winsock ----
class Socket {
 public:
  explicit Socket(SOCKET s) : s_(s) {}
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket() {
    if (s_ != INVALID_SOCKET) closesocket(s_);
  }
  SOCKET get() const { return s_; }

 private:
  SOCKET s_;
};

Status StartWinsock() {
  static std::once_flag once;
  static int rc = 0;
  std::call_once(once, [] {
    WSADATA data{};
    rc = WSAStartup(MAKEWORD(2, 2), &data);
  });
  if (rc != 0) return FromWin32("WSAStartup", static_cast<DWORD>(rc));
  return Status::Ok();
}

// Waits until the socket is writable (want_write) or readable, or the deadline passes.
Status WaitFor(SOCKET s, bool want_write, Clock::time_point deadline, const std::string& what) {
  const auto left =
      std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now()).count();
  if (left <= 0) return Status::Timeout(what + ": deadline passed");
  fd_set ready;
  fd_set failed;
  FD_ZERO(&ready);
  FD_ZERO(&failed);
  FD_SET(s, &ready);
  FD_SET(s, &failed);  // a refused non-blocking connect shows up here, not as writable
  timeval tv{static_cast<long>(left / 1000000), static_cast<long>(left % 1000000)};
  const int n = select(0, want_write ? nullptr : &ready, want_write ? &ready : nullptr,
                       want_write ? &failed : nullptr, &tv);
  if (n == 0) return Status::Timeout(what + ": deadline passed");
  if (n < 0) return FromWin32(what, static_cast<DWORD>(WSAGetLastError()));
  return Status::Ok();
}

}  // namespace

size_t PageSize() {
  SYSTEM_INFO info{};
  GetSystemInfo(&info);
  return info.dwPageSize;
}

Result<GuardedPage> MapGuardedPage() {
  const size_t page = PageSize();
  void* mapping = VirtualAlloc(nullptr, 2 * page, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
  if (mapping == nullptr) return FromWin32("VirtualAlloc input array", GetLastError());
  char* guard = static_cast<char*>(mapping) + page;
  DWORD old = 0;
  if (!VirtualProtect(guard, page, PAGE_NOACCESS, &old)) {
    const DWORD err = GetLastError();
    VirtualFree(mapping, 0, MEM_RELEASE);
    return FromWin32("VirtualProtect guard page", err);
  }
  return GuardedPage{mapping, 2 * page, guard, page};
}

void UnmapGuardedPage(const GuardedPage& page) {
  if (page.mapping != nullptr) VirtualFree(page.mapping, 0, MEM_RELEASE);
}

Result<std::string> ReadWholeFile(const std::string& path) {
  // Others may read, write or delete meanwhile, as the real sensor's content folder allows.
  HANDLE h = CreateFileA(path.c_str(), GENERIC_READ,
                         FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, nullptr,
                         OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, nullptr);
  if (h == INVALID_HANDLE_VALUE) return FromWin32("cannot open " + path, GetLastError());
  std::string bytes;
  char buf[4096];
  for (;;) {
    DWORD n = 0;
    if (!ReadFile(h, buf, sizeof buf, &n, nullptr)) {
      const DWORD err = GetLastError();
      CloseHandle(h);
      return FromWin32("cannot read " + path, err);
    }
    if (n == 0) break;
    bytes.append(buf, n);
  }
  CloseHandle(h);
  return bytes;
}

bool IsDirectory(const std::string& path) {
  const DWORD attributes = GetFileAttributesA(path.c_str());
  return attributes != INVALID_FILE_ATTRIBUTES && (attributes & FILE_ATTRIBUTE_DIRECTORY) != 0;
}

std::vector<std::string> ListDirectory(const std::string& dir) {
  std::vector<std::string> names;
  WIN32_FIND_DATAA entry{};
  HANDLE find = FindFirstFileA((dir + "/*").c_str(), &entry);
  if (find == INVALID_HANDLE_VALUE) return names;
  do {
    const std::string_view name = entry.cFileName;
    if (name != "." && name != "..") names.emplace_back(name);
  } while (FindNextFileA(find, &entry));
  FindClose(find);
  return names;
}

Status WriteFileDurably(const std::string& dir, const std::string& name, std::string_view bytes) {
  RETURN_IF_ERROR(MakeDirectories(dir));
  const std::string tmp = dir + "/" + name + ".tmp";
  HANDLE h = CreateFileA(tmp.c_str(), GENERIC_WRITE, 0, nullptr, CREATE_ALWAYS,
                         FILE_ATTRIBUTE_NORMAL, nullptr);
  if (h == INVALID_HANDLE_VALUE) return FromWin32("create " + tmp, GetLastError());
  if (!WriteAll(h, bytes.data(), bytes.size())) {
    const DWORD err = GetLastError();
    CloseHandle(h);
    return FromWin32("write " + tmp, err);
  }
  if (!FlushFileBuffers(h)) {
    const DWORD err = GetLastError();
    CloseHandle(h);
    return FromWin32("flush " + tmp, err);
  }
  CloseHandle(h);
  // WRITE_THROUGH: the rename is on disk when the call returns (NTFS logs it).
  const std::string target = dir + "/" + name;
  if (!MoveFileExA(tmp.c_str(), target.c_str(),
                   MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH)) {
    return FromWin32("rename to " + target, GetLastError());
  }
  return Status::Ok();
}

void RemoveFile(const std::string& path) { DeleteFileA(path.c_str()); }

Status RenameFile(const std::string& from, const std::string& to) {
  if (MoveFileExA(from.c_str(), to.c_str(), MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH) ==
      0) {
    const DWORD err = GetLastError();
    const std::string what = "rename " + from + " to " + to + ": error " + std::to_string(err);
    return err == ERROR_FILE_NOT_FOUND ? Status::NotFound(what) : Status::IoError(what);
  }
  return Status::Ok();
}

void SyncVolume(const std::string& dir) {
  // Flushing a whole volume needs its handle ("\\.\C:") and administrator rights; the service
  // has them. Best effort, as on Linux: the files themselves were already flushed.
  if (dir.size() < 2 || dir[1] != ':') return;
  const std::string volume = std::string("\\\\.\\") + dir.substr(0, 2);
  HANDLE h = CreateFileA(volume.c_str(), GENERIC_READ | GENERIC_WRITE,
                         FILE_SHARE_READ | FILE_SHARE_WRITE, nullptr, OPEN_EXISTING, 0, nullptr);
  if (h == INVALID_HANDLE_VALUE) return;
  FlushFileBuffers(h);
  CloseHandle(h);
}

Status TouchFile(const std::string& path) {
  HANDLE h = CreateFileA(path.c_str(), GENERIC_WRITE, FILE_SHARE_READ, nullptr, CREATE_ALWAYS,
                         FILE_ATTRIBUTE_NORMAL, nullptr);
  if (h == INVALID_HANDLE_VALUE) return FromWin32("create " + path, GetLastError());
  CloseHandle(h);
  return Status::Ok();
}

void WriteLine(std::string line) {
  line.push_back('\n');
  std::lock_guard lock(g_console_mu);
  WriteToSinks(line.data(), line.size());
}

void WriteOut(std::string_view text) {
  const HANDLE out = GetStdHandle(STD_OUTPUT_HANDLE);
  if (Usable(out)) WriteAll(out, text.data(), text.size());
}

void WriteErr(std::string_view text) {
  const HANDLE err = GetStdHandle(STD_ERROR_HANDLE);
  if (Usable(err)) WriteAll(err, text.data(), text.size());
}

std::string_view SystemName() { return "windows"; }

std::string UptimeField() {
  const ULONGLONG ms = GetTickCount64();  // since Windows started, as /proc/uptime on Linux
  char text[40];
  std::snprintf(text, sizeof text, " uptime=%llu.%02llu", ms / 1000, (ms % 1000) / 10);
  return text;
}

Result<std::string> TcpExchange(const std::string& ip, uint16_t port, std::string_view request,
                                Clock::time_point deadline, const std::string& where,
                                size_t max_bytes) {
  RETURN_IF_ERROR(StartWinsock());
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (inet_pton(AF_INET, ip.c_str(), &addr.sin_addr) != 1) {
    return Status::InvalidArgument(where + ": not an IPv4 address");
  }
  Socket sock(socket(AF_INET, SOCK_STREAM, IPPROTO_TCP));
  if (sock.get() == INVALID_SOCKET) {
    return FromWin32(where + ": socket", static_cast<DWORD>(WSAGetLastError()));
  }
  u_long non_blocking = 1;
  ioctlsocket(sock.get(), FIONBIO, &non_blocking);
  if (connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    const int err = WSAGetLastError();
    if (err != WSAEWOULDBLOCK) {
      return FromWin32(where + ": connect", static_cast<DWORD>(err), ErrorCode::kUnavailable);
    }
    RETURN_IF_ERROR(WaitFor(sock.get(), true, deadline, where + ": connect"));
    int so_error = 0;
    int len = sizeof so_error;
    getsockopt(sock.get(), SOL_SOCKET, SO_ERROR, reinterpret_cast<char*>(&so_error), &len);
    if (so_error != 0) {
      return FromWin32(where + ": connect", static_cast<DWORD>(so_error), ErrorCode::kUnavailable);
    }
  }
  for (size_t sent = 0; sent < request.size();) {
    RETURN_IF_ERROR(WaitFor(sock.get(), true, deadline, where + ": send"));
    const int n =
        send(sock.get(), request.data() + sent, static_cast<int>(request.size() - sent), 0);
    if (n == SOCKET_ERROR) {
      const int err = WSAGetLastError();
      if (err == WSAEWOULDBLOCK) continue;
      return FromWin32(where + ": send", static_cast<DWORD>(err), ErrorCode::kUnavailable);
    }
    sent += static_cast<size_t>(n);
  }
  std::string raw;
  char buf[16384];
  for (;;) {
    RETURN_IF_ERROR(WaitFor(sock.get(), false, deadline, where + ": read"));
    const int n = recv(sock.get(), buf, sizeof buf, 0);
    if (n == 0) break;
    if (n == SOCKET_ERROR) {
      const int err = WSAGetLastError();
      if (err == WSAEWOULDBLOCK) continue;
      return FromWin32(where + ": read", static_cast<DWORD>(err), ErrorCode::kUnavailable);
    }
    raw.append(buf, static_cast<size_t>(n));
    if (raw.size() > max_bytes) {
      return Status::Corruption(where + ": response larger than " + std::to_string(max_bytes) +
                                " bytes");
    }
  }
  return raw;
}

void InstallBugcheckHandler(bool crash_system) {
  // The last-chance filter, not a vectored handler: system code may take and handle access
  // violations of its own (first-chance); only what nobody handles is the sensor's crash.
  SetUnhandledExceptionFilter(OnUnhandledException);
  if (!crash_system) {
    WriteLine("@@csagent critical=off");
    return;
  }
  const CriticalResult result = SetProcessCritical(true);
  char status[16];
  std::snprintf(status, sizeof status, "0x%08lx", static_cast<unsigned long>(result.nt_status));
  if (result.ok) {
    InterlockedExchange(&g_critical, 1);
    WriteLine(std::string("@@csagent critical=set via=") + result.via);
  } else {
    // Wine, or a process without SeDebugPrivilege: a fault then only ends the process.
    WriteLine(std::string("@@csagent critical=refused via=") + result.via + " status=" + status);
  }
}

void DisarmSystemCrash() {
  if (InterlockedExchange(&g_critical, 0) != 0) SetProcessCritical(false);
}

namespace win32 {

void AddConsoleSink(void* handle) {
  std::lock_guard lock(g_console_mu);
  if (g_sink_count < kMaxSinks && Usable(static_cast<HANDLE>(handle))) {
    g_sinks[g_sink_count++] = static_cast<HANDLE>(handle);
  }
}

CriticalResult SetCritical(bool critical) { return SetProcessCritical(critical); }

}  // namespace win32
}  // namespace chaoslab::content::platform
