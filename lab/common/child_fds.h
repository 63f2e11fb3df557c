// Descriptors a child must not inherit. The lab's sockets (dashboard, content server: Boost.Asio
// opens them without SOCK_CLOEXEC), its journal and log files stay with the lab, not with the
// tools and QEMUs it starts.
#pragma once

namespace chaoslab {

// For a forked child just before exec: marks every descriptor from 3 up close-on-exec, so the
// program starts with stdin, stdout and stderr only. Marking, not closing, keeps the exec-error
// pipe of Boost.Process working until the exec itself. Async-signal-safe (no allocation): use it
// from `bp::extend::on_exec_setup`.
void CloseInheritedFdsOnExec();

}  // namespace chaoslab
