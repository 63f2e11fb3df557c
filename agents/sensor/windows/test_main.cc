// main() of sensor_windows_test.exe (the Windows tests, run under Wine).
#include <gtest/gtest.h>
#include <windows.h>

namespace {

// An unhandled exception ends the process with its code (0xC0000005 for the guard page), at
// once: no error box on Windows, no debugger started by Wine. gtest's death tests read the code.
LONG WINAPI EndWithExceptionCode(EXCEPTION_POINTERS* info) {
  TerminateProcess(GetCurrentProcess(), info->ExceptionRecord->ExceptionCode);
  return EXCEPTION_EXECUTE_HANDLER;
}

}  // namespace

int main(int argc, char** argv) {
  SetErrorMode(SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX);
  SetUnhandledExceptionFilter(EndWithExceptionCode);
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
