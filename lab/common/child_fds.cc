#include "lab/common/child_fds.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

namespace chaoslab {

void CloseInheritedFdsOnExec() {
  if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return;
  // Kernels before 5.11: one descriptor at a time, up to the process's limit.
  rlimit limit{};
  rlim_t last = getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY
                    ? limit.rlim_cur
                    : 65536;
  for (rlim_t fd = 3; fd < last; ++fd) fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
}

}  // namespace chaoslab
