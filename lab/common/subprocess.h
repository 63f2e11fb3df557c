// Runs a helper program to completion (mkdisk.sh, build.sh, qemu-img): an argv vector, never a
// shell string. Long-running children (QEMU) are managed by their backends, not here. The child
// gets stdin/stdout/stderr only: every other descriptor of the lab is closed at its exec.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "lab/common/status.h"

namespace chaoslab {

struct ProcessOutput {
  int exit_code = -1;
  std::string out;  // standard output
  std::string err;  // standard error
};

// NotFound if argv[0] cannot be executed; Timeout (child killed) past `timeout`.
Result<ProcessOutput> RunProcess(const std::vector<std::string>& argv,
                                 std::chrono::seconds timeout = std::chrono::seconds(300));

}  // namespace chaoslab
