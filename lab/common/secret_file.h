// A secret handed to a child process (QEMU) through a file instead of its command line, which
// every local user can read in /proc/PID/cmdline.
#pragma once

#include <string>

#include "lab/common/status.h"

namespace chaoslab {

// Creates `path` with mode 0600 and writes `content` (no newline added). Refuses a path that
// exists already, a symlink included (O_EXCL | O_NOFOLLOW): nobody can make the lab write its
// secret where they can read it. The parent folder is the caller's (0700 run folders).
Status WriteSecretFile(const std::string& path, const std::string& content);

}  // namespace chaoslab
